/* auth.h - who calls the embedded endpoints: access keys and SigV4.
 *
 * Access keys live in the store's iam_access_key table, the secret wrapped
 * by the host master key (label "iam access key <AKID>" as AAD). On first
 * start al_admin_init creates the administrator's key (principal
 * arn:aws:iam::<account>:root) and, on every start, writes two files into the
 * state directory, both 0600, replaced atomically:
 *
 *   aws-credentials   [ecs-secrets-agent] aws_access_key_id / _secret_access_key
 *   aws-config        [profile ecs-secrets-agent] region = <region>
 *
 * so that AWS_SHARED_CREDENTIALS_FILE=<dir>/aws-credentials
 * AWS_CONFIG_FILE=<dir>/aws-config aws --profile ecs-secrets-agent
 * --endpoint-url http://127.0.0.1:4577 ... works. (The secret is on disk in
 * that file by design: it is how the CLI reads credentials. It is never
 * logged, and the database holds it only wrapped.)
 *
 * al_verify checks one request as AWS does, answering AWS's codes:
 *   no Authorization header            MissingAuthenticationTokenException
 *   malformed header / missing parts   IncompleteSignatureException
 *   unknown or Inactive access key,
 *   stray token                        UnrecognizedClientException
 *   wrong scope (date/region/service),
 *   host or x-amz-date not signed, x-amz-target or
 *   x-amz-security-token sent but not signed,
 *   outside +-15 minutes, bad signature InvalidSignatureException
 * The payload hash is computed from the body received, so a changed body is
 * a bad signature; the comparison is constant-time (aw_sigv4_verify). */
#ifndef AL_AUTH_H
#define AL_AUTH_H

#include <stddef.h>
#include <time.h>

#include "aws/endpoint.h"
#include "aws/local/local.h"
#include "aws/sigv4.h"

#define AL_AUTH_SKEW_MAX 900 /* seconds either way */
#define AL_SECRET_LEN 40
#define AL_PRINCIPAL_MAX AW_LISTENER_PRINCIPAL_MAX

/* One request as the listener hands it over (aws/listener.h). */
typedef aw_listener_request al_request;
/* The value of header name (any case) in rq, or NULL. */
const char *al_request_header(const al_request *rq, const char *name);

/* Ensures the administrator key exists and writes the two files. akid
 * receives its access key id. 0 or -errno with a reason in err. */
int al_admin_init(al_ctx *c, const char *state_dir, char akid[AL_AKID_LEN + 1], char *err,
                  size_t errlen);

/* The administrator's key, for in-process clients of the endpoints (the
 * agent's own SSM/Secrets Manager client in embedded mode, until tasks get
 * their role credentials from the embedded STS). *secret is es_malloc'ed:
 * release it with es_free_secret_str. 0, -ENOENT (al_admin_init not run),
 * -EIO. */
int al_admin_credentials(al_ctx *c, char akid[AL_AKID_LEN + 1], char **secret);

/* Adds an access key for principal (tests, and IAM later). secret must be
 * AL_SECRET_LEN characters at most. 0, -EEXIST, -EIO. */
int al_access_key_add(al_ctx *c, const char *akid, const char *secret, const char *principal);
/* The same for an IAM user's key (CreateAccessKey): user names the owner
 * (iam_access_key.user_name), principal is its ARN. */
int al_access_key_add_user(al_ctx *c, const char *akid, const char *secret, const char *principal,
                           const char *user);

/* Verifies rq for the signing name `service` ("ssm", "secretsmanager",
 * "kms") at time now. On success writes the caller's principal ARN and, when
 * region is not NULL, the region of its credential scope (any region of
 * aws/region.h: one endpoint serves them all). On failure fills e and
 * answers a negative errno. */
int al_verify(al_ctx *c, const al_request *rq, const char *service, time_t now, char *principal,
              size_t principal_len, char region[AW_REGION_MAX + 1], al_error *e);

/* S3's payload modes (x-amz-content-sha256, which S3 requires). */
typedef enum al_s3_payload {
    AL_S3_PAYLOAD_SIGNED,           /* the body's SHA-256, checked */
    AL_S3_PAYLOAD_UNSIGNED,         /* UNSIGNED-PAYLOAD */
    AL_S3_PAYLOAD_STREAMING,        /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD: chunks signed */
    AL_S3_PAYLOAD_STREAMING_TRAILER /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
} al_s3_payload;

/* What an S3 request's verification leaves for its chunks' signatures: the
 * signing key (a secret: al_s3_auth_wipe), the seed signature, the date and
 * the scope. */
typedef struct al_s3_auth {
    char principal[AL_PRINCIPAL_MAX];
    char region[AW_REGION_MAX + 1];
    al_s3_payload payload;
    uint8_t key[32];
    char seed[65];
    char amz_date[17];
    char scope[8 + 2 * (AW_SIGV4_SCOPE_PART_MAX + 1) + 16]; /* date/region/s3/aws4_request */
} al_s3_auth;
void al_s3_auth_wipe(al_s3_auth *a);

/* al_verify for S3 (signing name "s3"): the canonical URI encoded once, the
 * payload hash the x-amz-content-sha256 header's (required: a hex digest
 * must match the body; the three special values are taken as they are, the
 * chunks then checked by the caller with out). 0, or < 0 with e filled in
 * al_verify's codes. */
int al_verify_s3(al_ctx *c, const al_request *rq, time_t now, al_s3_auth *out, al_error *e);

/* What can be checked of a request from its head alone, before its body is
 * read (the listener's first line of defence: a caller we do not know gets
 * no buffer): an Authorization header that parses, an X-Amz-Date within 15
 * minutes, and an access key we know (a session's with its own token). 0 or
 * a negative errno with e filled with AWS's code, as al_verify would. */
int al_precheck(al_ctx *c, const char *authorization, const char *amz_date, const char *token,
                time_t now, al_error *e);

/* The SigV4 signing name for an X-Amz-Target value, NULL when unknown. */
const char *al_signing_name(const char *target);

#endif
