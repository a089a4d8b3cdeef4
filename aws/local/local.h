/* local.h - the embedded AWS endpoints: SSM Parameter Store, Secrets Manager
 * and KMS over one SQLite database (aws/local/db.h).
 *
 * Shape: every operation is a pure function of (store, principal, parsed JSON
 * request) answering either a JSON 1.1 response body or an AWS error (HTTP
 * status, code such as "ParameterNotFound", message). al_dispatch picks the
 * operation from the X-Amz-Target value ("AmazonSSM.GetParameter",
 * "secretsmanager.GetSecretValue", "TrentService.Encrypt") so that the HTTP
 * layer only has to verify the signature, name the principal and plug the
 * body in. Nothing here does I/O besides SQLite and the master-key file.
 *
 * Secrets at rest: SecureString values and secret values are stored only as
 * KMS ciphertext (AES-256-GCM under the named KMS key, the encryption context
 * bound in as AAD); KMS key material is stored wrapped by a host master key
 * (<state-dir>/kms-master.key, 0600). Error messages name parameters, secrets
 * and keys, never a value. Response bodies may hold plaintext: the caller
 * releases them with es_buf_free_secret.
 *
 * Authorisation: al_options.authz, when not NULL, is asked before each
 * action on each resource ("ssm:GetParameters" on a parameter ARN,
 * "kms:Decrypt" on a customer key's ARN, "secretsmanager:GetSecretValue" on a
 * secret ARN, ...). NULL allows everything. A refusal answers
 * AccessDeniedException.
 *
 * Not thread-safe: one al_ctx is used from one thread (the loop); the only
 * work given to other threads is an AllowedPattern match, on copies of the
 * pattern and value (match.h). */
#ifndef AL_LOCAL_H
#define AL_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/listener.h"
#include "aws/policy.h"
#include "common/buf.h"
#include "common/json.h"

typedef struct al_ctx al_ctx;

#define AL_CODE_MAX AW_LISTENER_CODE_MAX
#define AL_MESSAGE_MAX AW_LISTENER_MESSAGE_MAX
/* Largest request body the dispatcher parses. */
#define AL_REQUEST_MAX (1u << 20)
/* Largest response body (GetParametersByPath: 10 x 8 KiB; secrets 64 KiB). */
#define AL_RESPONSE_MAX (4u << 20)

/* An AWS error: HTTP status (400, 404, 500, ...), code ("__type") and
 * message; the listener's own type, as the listener answers it. */
typedef aw_listener_error al_error;

/* May principal do action on resource? 0 allows; anything else denies. */
typedef int (*al_authz_fn)(void *arg, const char *principal, const char *action,
                           const char *resource);
/* The same, writing AWS's AccessDenied message into why on refusal (-EACCES;
 * other negative values are internal failures). resource_len is
 * strlen(resource) when the caller knows it, else 0 (then measured). aws/local/authz.h
 * installs one (al_authz_install); it is asked before al_options.authz. */
typedef int (*al_authz_msg_fn)(void *arg, const char *principal, const char *action,
                               const char *resource, size_t resource_len, char *why, size_t whylen);
/* Epoch seconds (with fraction). Tests pass their own clock. */
typedef double (*al_clock_fn)(void *arg);
/* Told once per operation that failed because the database did (disk full,
 * I/O error, ...): operation ("AmazonSSM.PutParameter"), SQLite's extended
 * result code and its name ("SQLITE_FULL"), SQLite's message. Never a value:
 * SQLite's messages do not quote bound parameters. The library does not log;
 * the daemon does, here. */
typedef void (*al_store_failure_fn)(void *arg, const char *operation, int sqlite_code,
                                    const char *code_name, const char *message);

/* Told when a Secrets Manager rotation did not go as asked: a hook's step
 * failed or could not start (step "createSecret" ... "finishSecret"), or a
 * scheduled rotation failed (step "schedule"). secret_arn names the secret,
 * message says why (never a value). The caller's operation goes on; the
 * secret's state says the same (AWSCURRENT unchanged). The library does not
 * log; the daemon does, here. */
typedef void (*al_rotation_event_fn)(void *arg, const char *secret_arn, const char *step,
                                     const char *message);

typedef struct al_options {
    const char *state_dir; /* holds embedded.db and kms-master.key */
    const char *region;    /* home region (aws/region.h), e.g. "us-east-1": al_dispatch's */
    const char *account;   /* 12 digits */
    al_authz_fn authz;     /* NULL: allow */
    void *authz_arg;
    al_clock_fn clock; /* NULL: the real clock */
    void *clock_arg;
    al_store_failure_fn store_failure; /* NULL: not told */
    void *store_failure_arg;
    /* Secrets Manager rotation hooks: RotationLambdaARN
     * arn:aws:lambda:R:A:function:NAME runs the executable NAME of this
     * directory (secretsmanager.h says how). NULL: hooks are refused. */
    const char *rotation_dir;
    /* Rotation schedules run this many times faster than the clock (0 or
     * 1: as AWS runs them). Stored schedules stay AWS-valid (rate(4 hours)
     * at the least); only the wait until the next rotation is divided, so
     * rate(4 hours) with 1440 rotates every 10 s. For experiments. */
    unsigned rotation_time_scale;
    al_rotation_event_fn rotation_event; /* NULL: not told */
    void *rotation_event_arg;
    /* The embedded ECR (ecr.h): the local registry ("host:port") standing
     * for the account's ECR host, and the file holding the USERNAME:PASSWORD
     * line its GetAuthorizationToken hands out. NULL: no registry (the
     * operation answers that). */
    const char *ecr_registry;
    const char *ecr_credentials_file;
} al_options;

/* Opens (or creates) the database and master key, and makes sure the AWS
 * managed keys alias/aws/ssm and alias/aws/secretsmanager exist. 0 or -errno
 * with a reason in err. */
int al_open(const al_options *opt, al_ctx **out, char *err, size_t errlen);
/* Wipes the master key; NULL-safe. */
void al_close(al_ctx *c);
/* Gives back the database's unused page-cache memory (sqlite3_db_release_memory): once
 * start-up's migrations and loads are done (agent/memtrim.h). NULL-safe. */
void al_release_memory(al_ctx *c);
/* The URL clients reach the listener at ("http://127.0.0.1:8099"): what a
 * rotation hook gets as AWS_ENDPOINT_URL. Copied; NULL forgets it. */
int al_set_endpoint_url(al_ctx *c, const char *url);

/* Runs the operation named by target on body[0..len). On success answers 0
 * with the response body appended to out (JSON); on failure a negative errno
 * and *err filled (never any value in its message); out is then left empty.
 * principal names the caller ("arn:aws:iam::123456789012:root"). */
int al_dispatch(al_ctx *c, const char *target, const char *principal, const char *body, size_t len,
                es_buf *out, al_error *err);
/* The same in region (the request's SigV4 scope's; NULL: the home region,
 * which is what al_dispatch serves). Regional resources (parameters,
 * secrets, keys, aliases) live in one region as in AWS; IAM is global. An
 * unknown region answers InvalidSignatureException as AWS's credential scope
 * check does. */
int al_dispatch_in(al_ctx *c, const char *region, const char *target, const char *principal,
                   const char *body, size_t len, es_buf *out, al_error *err);

/* The same, with the service prefix and operation apart and the request
 * already parsed. */
int al_dispatch_json(al_ctx *c, const char *region, const char *service, const char *operation,
                     const char *principal, const es_json *req, es_buf *out, al_error *err);

/* What the store's caches did (tests prove they work; benchmarks). Every
 * cache is dropped as a whole when the database changes (db.h,
 * al_db_stamp). */
typedef struct al_cache_stats {
    unsigned long key_derivations; /* SigV4 signing keys derived (cache misses) */
    unsigned long key_hits;        /* requests verified with a kept key */
    unsigned long auth_memo_hits;  /* verifications that took the head check's parse (auth.c) */
    unsigned long policy_loads;    /* a principal's or resource's policies read and compiled */
    unsigned long policy_hits;     /* decisions that reused compiled policies */
    unsigned long decision_hits;   /* allows answered from a kept decision (authz.c) */
    unsigned long param_loads;     /* SSM parameter versions read from the database */
    unsigned long param_hits;      /* ... and reused */
    unsigned long kms_key_loads;   /* KMS keys read and unwrapped inside a read-only operation */
    unsigned long kms_key_hits;    /* ... and values opened with a kept key */
    unsigned long flushes;         /* caches dropped because the database changed */
} al_cache_stats;
void al_get_cache_stats(const al_ctx *c, al_cache_stats *out);

/* True when target names an operation we serve. */
bool al_knows_target(const char *target);

/* ---- the facade the daemon uses (agent/ includes this header only; the
 * listener is aws/listener.h); the declarations below are defined in
 * mount.c, auth.c, authz.c and iam.c, whose headers are the module's own. ---- */

/* Mounts the embedded services on a listener (aws/listener.h): the
 * authenticator (SigV4 against the store's access keys, the head's check
 * before any body), the JSON 1.1 routes of SSM, Secrets Manager and KMS and
 * the query route of IAM and STS; PutParameter's AllowedPattern is then
 * matched on libuv's thread pool, its answer deferred (match.h). c must
 * outlive l. 0, -ENOSPC or -ENOMEM. */
int al_mount(al_ctx *c, aw_listener *l);
/* Only the authenticator: the store keeps the keys that authenticate the
 * listener's other routes (the agent's ECS API in aws mode) and serves
 * nothing itself. */
void al_mount_auth(al_ctx *c, aw_listener *l);

#define AL_AKID_LEN 20 /* an access key id */
/* The administrator's key, as the CLI reads it: STATE_DIR/AL_CREDENTIALS_FILE
 * and AL_CONFIG_FILE, profile AL_AUTH_PROFILE. */
#define AL_AUTH_PROFILE "ecs-secrets-agent"
#define AL_CREDENTIALS_FILE "aws-credentials"
#define AL_CONFIG_FILE "aws-config"

/* Creates the administrator's key on the first start (STATE_DIR/aws-credentials
 * and aws-config for the CLI) or reads it back; akid receives its access key
 * id. 0 or -errno with a reason in err. */
int al_admin_init(al_ctx *c, const char *state_dir, char akid[AL_AKID_LEN + 1], char *err,
                  size_t errlen);
/* The administrator's key for in-process clients; *secret is es_malloc'ed
 * (release with es_free_secret_str). 0, -ENOENT, -EIO. */
int al_admin_credentials(al_ctx *c, char akid[AL_AKID_LEN + 1], char **secret);
/* Makes every action of the store ask the embedded IAM (identity, resource
 * and key policies) as AWS does. */
void al_authz_install(al_ctx *c);
/* Carries out the scheduled rotations that are due at now (NextRotationDate
 * passed) in every region, and advances the hooks' steps. The daemon calls
 * it from a timer. Answers the number of rotations started or completed, or
 * -errno. */
int al_sm_rotate_due(al_ctx *c, double now);

/* Loads the roles of a directory of JSON files (iam.h says the format). 0 or
 * -errno with a reason in err. */
int al_iam_load_roles_dir(al_ctx *c, const char *dir, char *err, size_t errlen);

/* The in-process authorisation question the execution role's preflight
 * asks: may a session of the role role_arn (in account) do action on
 * resource, as the embedded store would decide it (identity, resource and
 * key policies)? kms_via_service, when not NULL, is the kms:ViaService
 * context ("ssm.us-east-1.amazonaws.com"). 0 allowed, -EACCES denied,
 * -ENOENT no such role in this account, -EXDEV a role of another account,
 * -EINVAL a malformed ARN, other -errno when it could not be decided. */
int al_role_may(al_ctx *c, const char *account, const char *role_arn, const char *action,
                const char *resource, const char *kms_via_service);
/* The task role's preflight question: does role_arn's trust policy let
 * ecs-tasks.amazonaws.com call sts:AssumeRole, as the embedded STS decides
 * it when the agent assumes the role for a task? 0 yes, -EACCES no (or an
 * unreadable trust policy), -ENOENT no such role, -EXDEV another account's,
 * -EINVAL a malformed ARN. */
int al_role_trusts_ecs_tasks(al_ctx *c, const char *account, const char *role_arn);
/* The authorisation question of the other doors on the listener (the ECS
 * API): may principal, the caller the listener authenticated, do action on
 * resource with the extra condition keys given ("ecs:cluster",
 * "iam:PassedToService", ...)? Decided as the embedded services decide
 * their own actions: the account root may do everything in the account, a
 * role session what its identity policies allow within its permissions
 * boundary, anything else nothing. 0 allowed; -EACCES denied, with AWS's
 * message ("User: ARN is not authorized to perform: ACTION on resource:
 * ARN because ...") in why; other -errno when it could not be decided. */
int al_principal_may(al_ctx *c, const char *principal, const char *action, const char *resource,
                     const aw_ctx_entry *extra, size_t nextra, char *why, size_t whylen);

#endif
