/* sts.h - STS AssumeRole and GetCallerIdentity (query protocol; answers
 * parsed with expat through aws/xml.h).
 *
 * Results are valid during the callback only; the secret access key and
 * session token are wiped when it returns (steal by setting to NULL). */
#ifndef ES_AWS_STS_H
#define ES_AWS_STS_H

#include <stddef.h>
#include <time.h>

#include "aws/client.h"

#define AW_STS_SESSION_NAME_MIN 2
#define AW_STS_SESSION_NAME_MAX 64
#define AW_STS_DURATION_MIN 900
#define AW_STS_DURATION_MAX 43200

typedef struct aw_sts_credentials {
    char *access_key_id;
    char *secret_access_key; /* secret */
    char *session_token;     /* secret */
    time_t expiration;
    char *assumed_role_arn;
    char *assumed_role_id;
} aw_sts_credentials;

typedef struct aw_sts_identity {
    char *account;
    char *arn;
    char *user_id;
} aw_sts_identity;

typedef void (*aw_sts_creds_cb)(void *arg, const aw_error *err, aw_sts_credentials *creds);
typedef void (*aw_sts_identity_cb)(void *arg, const aw_error *err, aw_sts_identity *id);

/* role_arn an IAM role ARN; session_name 2..64 of [A-Za-z0-9+=,.@_-];
 * duration_s 900..43200 (0: 900). */
int aw_sts_assume_role(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                       const char *role_arn, const char *session_name, unsigned duration_s,
                       aw_sts_creds_cb cb, void *arg);
int aw_sts_get_caller_identity(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                               aw_sts_identity_cb cb, void *arg);

/* Exposed for tests and the fuzz driver: 0, -EPROTO, -ENOMEM. */
int aw_sts_parse_assume_role(const char *body, size_t len, aw_sts_credentials *out);
int aw_sts_parse_caller_identity(const char *body, size_t len, aw_sts_identity *out);
void aw_sts_credentials_clear(aw_sts_credentials *c);
void aw_sts_identity_clear(aw_sts_identity *id);

#endif
