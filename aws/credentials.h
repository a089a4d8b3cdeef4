/* credentials.h - where the agent's AWS credentials come from.
 *
 * The host's credentials come from the first provider that answers, in
 * the SDKs' order:
 *   1. static keys from the agent's configuration (ECS_SECRETS_ACCESS_KEY_ID
 *      ...), passed in aw_creds_config;
 *   2. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN;
 *   3. the shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials,
 *      "[name]") then AWS_CONFIG_FILE (~/.aws/config, "[default]" /
 *      "[profile name]"), profile AWS_PROFILE or "default"; keys
 *      aws_access_key_id, aws_secret_access_key, aws_session_token;
 *   4. the container credentials endpoint:
 *      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on http://169.254.170.2) or
 *      _FULL_URI (https anywhere, http only to loopback or the ECS/EKS link
 *      local addresses), with Authorization from
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN or the file named by
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
 *   5. IMDSv2 (unless AWS_EC2_METADATA_DISABLED=true): PUT a session token,
 *      GET the role name, GET its credentials; 1 s timeouts; endpoint
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT or http://169.254.169.254.
 *
 * Credentials that expire are fetched again refresh_before_s (default 300)
 * before they do; concurrent asks while a fetch runs wait for that one
 * fetch. When that refresh fails, the old credentials are served until they
 * actually expire (an IMDS or STS hiccup does not stop the agent).
 *
 * aw_creds_assume_role gives a task execution role's credentials: STS
 * AssumeRole signed with the host's credentials, cached per role ARN until
 * refresh_before_s before expiry; concurrent asks for the same role are
 * coalesced into one STS call.
 *
 * Callbacks always run from the loop, never inside the asking call. The
 * credentials handed to a callback are valid during the call only (copy
 * with aw_credentials_copy). No error text carries a key or token. */
#ifndef ES_AWS_CREDENTIALS_H
#define ES_AWS_CREDENTIALS_H

#include <stddef.h>
#include <time.h>

#include "aws/client.h"

#define AW_CREDS_FILE_MAX (1u << 20) /* shared file size */
#define AW_CREDS_LINE_MAX 4096       /* shared file line */
#define AW_CREDS_ROLES_MAX 1024      /* roles cached */
#define AW_CREDS_TOKEN_FILE_MAX 16384

typedef struct aw_credentials {
    char *access_key_id;
    char *secret_access_key; /* secret */
    char *session_token;     /* secret; NULL for none */
    time_t expiration;       /* 0: does not expire */
    const char *source;      /* "static", "environment", "shared-file", "container", "imds",
                                "assume-role" */
} aw_credentials;

/* Copies; 0 or -ENOMEM. */
int aw_credentials_copy(const aw_credentials *src, aw_credentials *dst);
/* Wipes and frees the strings. */
void aw_credentials_clear(aw_credentials *c);
/* View for the signer. */
aw_sigv4_creds aw_credentials_view(const aw_credentials *c);

typedef struct aw_creds_config {
    const char *access_key_id; /* configured static keys, or NULL */
    const char *secret_access_key;
    const char *session_token;
    char *const *envp;         /* NULL: the process environment */
    long imds_timeout_ms;      /* 0: 1000 */
    unsigned refresh_before_s; /* 0: 300 */
    unsigned role_duration_s;  /* AssumeRole DurationSeconds, 0: 3600 */
    const char *session_name;  /* RoleSessionName, NULL: "ecs-secrets-agent" */
} aw_creds_config;

typedef struct aw_creds aw_creds;

/* err NULL on success. */
typedef void (*aw_creds_cb)(void *arg, const aw_error *err, const aw_credentials *creds);
/* region and account from the instance identity document */
typedef void (*aw_creds_identity_cb)(void *arg, const aw_error *err, const char *region,
                                     const char *account);

/* Uses client for STS and its HTTP client for IMDS and the container
 * endpoint; client must outlive the provider. */
int aw_creds_create(aw_client *client, const aw_creds_config *cfg, aw_creds **out);
/* Ends waiting asks with AW_ERR_CANCELED, wipes the caches, frees p once its
 * handle is closed, then closed(arg). NULL-safe. */
void aw_creds_close(aw_creds *p, void (*closed)(void *arg), void *arg);

int aw_creds_get(aw_creds *p, aw_creds_cb cb, void *arg);
int aw_creds_assume_role(aw_creds *p, const char *role_arn, aw_creds_cb cb, void *arg);
int aw_creds_imds_identity(aw_creds *p, aw_creds_identity_cb cb, void *arg);

typedef struct aw_creds_stats {
    unsigned long host_fetches, role_fetches, role_cache_hits, coalesced;
} aw_creds_stats;
void aw_creds_get_stats(const aw_creds *p, aw_creds_stats *out);

/* Parses a shared credentials/config file for profile (exposed for tests
 * and the fuzz driver). config_style: sections are "[profile name]" (and
 * "[default]"). 0 with the keys found (NULL when absent), -ENOENT (no such
 * profile or no keys), -EMSGSIZE (past AW_CREDS_FILE_MAX or a line past
 * AW_CREDS_LINE_MAX), -ENOMEM. */
int aw_creds_parse_ini(const char *text, size_t len, const char *profile, int config_style,
                       aw_credentials *out);

#endif
