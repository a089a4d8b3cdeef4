/* resolve.h - fetches every secret a task definition names, all at once.
 *
 * One resolution per task launch:
 *
 *   1. every secrets[] and logConfiguration.secretOptions[] valueFrom is
 *      classified (agent/secrets/valuefrom.h), and every repositoryCredentials
 *      credentialsParameter (S15) is taken as a Secrets Manager secret;
 *   2. the fetches are planned across all containers: SSM names grouped by
 *      region and deduplicated (a parameter used by three containers is read
 *      once), `/aws/reference/secretsmanager/...` read through SSM as AWS
 *      does, and one GetSecretValue per distinct (region, secret, stage,
 *      version id);
 *   3. unless turned off, the preflight (agent/secrets/preflight.h) checks the
 *      execution role holds every permission the fetches need; a role
 *      missing some fails the resolution with one reason listing them all,
 *      before any credential or value is asked for;
 *   4. the execution role's credentials are asked for (STS AssumeRole,
 *      cached and coalesced by aws/credentials.h);
 *   5. every SSM batch (<= 10 names per call) and every GetSecretValue is
 *      started at once;
 *   6. when all have answered: any InvalidParameters or error fails the whole
 *      resolution with an ECS-shaped stoppedReason naming the secret, the
 *      service, the region and AWS's error; otherwise json-keys are
 *      extracted and each value is handed over with its source ARN, version
 *      and keyed fingerprint.
 *
 * An expansion label (expand.h) resolves to one entry holding its
 * "NAME=VALUE" list: a JSON secret's keys, or every parameter under an SSM
 * path (aws/ssm.h's GetParametersByPath series, at most AG_EXPAND_MAX);
 * the names are checked against each other and the container's environment
 * and secrets, and any failure names the label.
 *
 * A container's environmentFiles (td_envfiles.h) are fetched in step 5 as
 * well, per distinct object its bucket's GetBucketLocation then its
 * GetObject in that region (aws/s3.h), as ECS's agent does, with the same
 * execution role's credentials, after the same preflight
 * (s3:GetObject, s3:GetBucketLocation); each is read by ECS's rules
 * (envfile.h) and a container's files merged, the first file to define a
 * variable winning, into one "NAME=VALUE\0" list per container that the
 * injector lays under the container's environment and secrets. The files'
 * content is treated as secret: wiped, never in a reason (a file that
 * cannot be read is named by its ARN and line number).
 *
 * A container whose image is ECR's (ecr.h; plan.h's ecr entries) and that
 * names no repositoryCredentials is pulled, as ECS does, with the token of
 * ecr:GetAuthorizationToken asked in step 5 with the execution role's
 * credentials in the registry's region for its account (after the
 * preflight's ecr:GetAuthorizationToken, ecr:BatchGetImage and
 * ecr:GetDownloadUrlForLayer). Tokens are kept per (role, registry) until
 * AG_ECR_TOKEN_MARGIN_S before they expire (at most AG_ECR_CACHE_MAX,
 * wiped when dropped and at the close); a task with an ECR image and no
 * execution role is pulled as before, with dockerd's own credentials. The
 * token becomes the container's X-Registry-Auth value
 * (ag_resolution_registry_auth), never a metadata entry, a log line or a
 * reason.
 *
 * Nothing is half-done: a failure hands back no value at all. Values live
 * only in ag_resolution (wiped by ag_resolution_free); reasons and stats
 * never hold one. */
#ifndef AG_RESOLVE_H
#define AG_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/secrets/ecr.h"
#include "agent/secrets/inject.h"
#include "agent/secrets/preflight.h"
#include "agent/tasks/task.h"
#include "agent/tasks/taskdef.h"
#include "aws/client.h"
#include "aws/credentials.h"

#define AG_RESOLVE_ITEMS_MAX AG_PLAN_ITEMS_MAX /* plan.h */

typedef struct ag_resolved_secret {
    size_t container; /* index into the task definition's containers */
    ag_secret_target target;
    const char *name;       /* borrowed from the task definition */
    const char *value_from; /* borrowed from the task definition */
    char *value;            /* SECRET; NUL-terminated, len counts. AG_SECRET_REGISTRY: the
                               X-Registry-Auth value built from the secret; an expansion:
                               its "NAME=VALUE\0" list (expand.h) */
    size_t len;
    bool binary;
    bool expand;      /* an expansion label's entry: name is the label's key */
    char *source_arn; /* the parameter's or secret's ARN as the store answered */
    char *version;    /* SSM Version or Secrets Manager VersionId; an SSM path's expansion:
                         ag_expand_set_version of its parameters */
    int64_t resolved_at;
    char fingerprint[AG_FINGERPRINT_LEN + 1];
} ag_resolved_secret;

/* One container's environment files, merged (envfile.h). */
typedef struct ag_resolved_envfiles {
    size_t container; /* index into the task definition's containers */
    char *env;        /* SECRET: "NAME=VALUE\0" entries, len bytes; NULL when none */
    size_t len;
} ag_resolved_envfiles;

/* One container's X-Registry-Auth built from an ECR token. */
typedef struct ag_resolved_ecr {
    size_t container;
    char *auth; /* SECRET, NUL-terminated, len bytes */
    size_t len;
} ag_resolved_ecr;

typedef struct ag_resolution {
    ag_resolved_secret *items;
    size_t n;
    ag_resolved_ecr *ecr; /* one per container pulled from ECR with a token */
    size_t n_ecr;
    ag_resolved_envfiles *envfiles; /* one per container with environmentFiles */
    size_t n_envfiles;
} ag_resolution;

/* Wipes every value, frees everything. NULL-safe. */
void ag_resolution_free(ag_resolution *r);
/* Fills out[0..cap) with views of one container's values, for
 * ag_inject_build. Returns how many (never more than cap). */
size_t ag_resolution_values(const ag_resolution *r, size_t container, ag_secret_value *out,
                            size_t cap);
/* The X-Registry-Auth value of a container's repositoryCredentials (S15;
 * inject.h's ag_registry_auth_build) or, without them, of its ECR token,
 * borrowed from r, or NULL. Secret. */
const char *ag_resolution_registry_auth(const ag_resolution *r, size_t container);

/* A container's merged environment files (borrowed from r, SECRET), *len
 * bytes of "NAME=VALUE\0" entries; NULL (and *len 0) when it has none. */
const char *ag_resolution_envfiles(const ag_resolution *r, size_t container, size_t *len);

typedef struct ag_resolver ag_resolver;

typedef struct ag_resolver_config {
    aw_client *client;
    aw_creds *creds;
    const char *region;    /* the task's region, for bare SSM names */
    const uint8_t *fp_key; /* fingerprint key (ag_secret_fingerprint) */
    size_t fp_key_len;
    int64_t (*now)(void);    /* epoch seconds; NULL: time() */
    ag_preflight *preflight; /* borrowed; NULL: no preflight */
    ag_ecr_local ecr_local; /* embedded mode's local ECR registry (ecr.h); copied; all NULL: none */
} ag_resolver_config;

#define AG_ECR_CACHE_MAX 64        /* (role, registry) tokens kept */
#define AG_ECR_TOKEN_MARGIN_S 1800 /* a token is asked again this long before it expires */

typedef struct ag_resolver_stats {
    unsigned long resolutions, failures;
    unsigned long ssm_calls, ssm_names, sm_calls; /* backend calls started */
    unsigned long ssm_paths;                      /* GetParametersByPath series started */
    unsigned long s3_calls;         /* environment files' GetBucketLocation and GetObject started */
    unsigned long ecr_calls;        /* GetAuthorizationToken started */
    unsigned long ecr_cached;       /* ECR tokens answered from the cache */
    unsigned long preflight_denied; /* failed by the preflight */
} ag_resolver_stats;

/* Copies the configuration (client and creds are borrowed and must outlive
 * the resolver). 0 or -ENOMEM / -EINVAL. */
int ag_resolver_create(const ag_resolver_config *cfg, ag_resolver **out);
/* Closes r: every resolution in flight ends at its next step (no call to
 * the preflight, the credentials provider or the client after this) through
 * its callback with AG_REASON_AGENT_STOPPING, unless it had already
 * concluded; r is freed once the last has, then closed(arg), which runs
 * inside this call when none was in flight. The preflight, the credentials
 * provider and the client may close at the same time: resolutions waiting on
 * them end through their cancellation. NULL-safe. */
void ag_resolver_close(ag_resolver *r, void (*closed)(void *arg), void *arg);
/* ag_resolver_close without a callback. */
void ag_resolver_free(ag_resolver *r);
void ag_resolver_get_stats(const ag_resolver *r, ag_resolver_stats *out);

/* res is the resolution (the callee owns it: free with ag_resolution_free)
 * or NULL with reason set (an ECS-shaped stoppedReason, never a value). */
typedef void (*ag_resolve_cb)(void *arg, ag_resolution *res, const char *reason);

/* Starts resolving td's secrets. td must stay valid until cb. cb always runs
 * later from the loop, never inside this call. A task definition with no
 * secrets answers an empty resolution without any backend call.
 * 0, -ENOMEM, -ECANCELED (closing), or -EINVAL with nothing started (cb
 * not called). */
int ag_resolve_start(ag_resolver *r, const ag_taskdef *td, ag_resolve_cb cb, void *arg);
/* The same without the environment files (no S3 call, no S3 permission
 * checked, no ag_resolution.envfiles): a running task's secrets resolved
 * again (its secret files refreshed); the files are read at launch only,
 * as ECS reads them. */
int ag_resolve_start_secrets(ag_resolver *r, const ag_taskdef *td, ag_resolve_cb cb, void *arg);
/* ag_resolve_start without the images' ECR tokens (no ECR call, no ecr:
 * permission checked, no ag_resolution.ecr): a create whose client pulled
 * its image itself (the Docker socket's intake: `docker run` pulls with
 * the client's credentials before it creates). */
int ag_resolve_start_no_pull(ag_resolver *r, const ag_taskdef *td, ag_resolve_cb cb, void *arg);

#endif
