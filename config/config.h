/* config.h - the agent's configuration.
 *
 * Layers, each overriding the one before: built-in defaults, the file
 * (/etc/ecs-secrets-agent/agent.conf, or --config FILE, read as systemd's
 * EnvironmentFile= reads it), the process environment, then command-line
 * flags. Every flag is also a key; cf_keys[] is the one table that defines
 * them all, their defaults, validation and help text.
 *
 * Errors name where the bad value came from: "FILE:LINE: KEY: reason",
 * "environment: KEY: reason" or "--flag: reason". */
#ifndef ES_CONFIG_CONFIG_H
#define ES_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/log.h"

#define CF_DEFAULT_FILE "/etc/ecs-secrets-agent/agent.conf"
/* Limits on the configuration file: it is input like any other. */
#define CF_FILE_MAX (1u << 20)
#define CF_LINE_MAX 8192
#define CF_KEY_MAX 256 /* a variable name in the file (ours are under 40) */
#define CF_VALUE_MAX 4096
/* A configuration error's message (it quotes a key, its origin and the value's
 * first bytes, never a secret's). */
#define CF_ERROR_MAX 4096
/* ECS_SECRETS_ROTATION_TIME_SCALE's largest value: AWS's shortest schedule,
 * rate(4 hours), then comes round every second, the rotation timer's tick. */
#define CF_ROTATION_TIME_SCALE_MAX 14400

typedef enum cf_mode {
    CF_MODE_EMBEDDED,
    CF_MODE_AWS,
} cf_mode;

/* Identifies each key; the order is the order of cf_keys[] and of the
 * --check-config output. */
typedef enum cf_key_id {
    CF_CONFIG_FILE,
    CF_MODE,
    CF_CLUSTER,
    CF_REGION,
    CF_ACCOUNT_ID,
    CF_DOCKER_HOST,
    CF_DOCKER_PROXY,
    CF_DOCKER_PROXY_GROUP,
    CF_DOCKER_ROLES,
    CF_STATE_DIR,
    CF_FILES_DIR,
    CF_LISTEN,
    CF_TASK_ENDPOINT,
    CF_TLS_CERT,
    CF_TLS_KEY,
    CF_LOG_LEVEL,
    CF_ENDPOINT_SSM,
    CF_ENDPOINT_SECRETSMANAGER,
    CF_ENDPOINT_KMS,
    CF_ENDPOINT_STS,
    CF_ENDPOINT_IAM,
    CF_CA_FILE,
    CF_ACCESS_KEY_ID,
    CF_SECRET_ACCESS_KEY,
    CF_SESSION_TOKEN,
    CF_PREFLIGHT,
    CF_ROTATION_DIR,
    CF_ROTATION_TIME_SCALE,
    CF_ECR_REGISTRY,
    CF_ECR_CREDENTIALS_FILE,

    CF_DRIFT_INTERVAL,
    CF_TASK_CLEANUP_WAIT,
    CF_RECONCILE_INTERVAL,
    CF_CONTAINER_CREATE_TIMEOUT,
    CF_CONTAINER_START_TIMEOUT,
    CF_DESCRIBE_WAIT_MS,
    CF_ETCD_ENDPOINTS,
    CF_ETCD_CACERT,
    CF_ETCD_CERT,
    CF_ETCD_KEY,
    CF_ETCD_LEASE_TTL,
    CF_CLUSTER_STOPPED_TTL,
    CF_INSTANCE_ATTRIBUTES,
    CF_INSTANCE_TYPE,
    CF_INSTANCE_CPU,
    CF_INSTANCE_MEMORY,
    CF_KEY_COUNT
} cf_key_id;

typedef struct cf_key {
    const char *name;    /* KEY in files and the environment */
    const char *flag;    /* long flag without "--", or NULL */
    const char *metavar; /* for --help */
    const char *def;     /* default, or NULL for unset */
    bool secret;         /* masked in --check-config and errors */
    const char *help;
    /* 0, or -EINVAL with a reason written into err */
    int (*validate)(const char *value, char *err, size_t errlen);
} cf_key;

extern const cf_key cf_keys[CF_KEY_COUNT];

typedef struct cf_config {
    char *value[CF_KEY_COUNT];  /* NULL when unset */
    char *source[CF_KEY_COUNT]; /* "default", "FILE:LINE", "environment", "--flag" */

    /* derived, typed views, filled by cf_load */
    cf_mode mode;
    es_log_level log_level;
    char *listen_host;
    int listen_port;
    char *task_endpoint_host;     /* ECS_SECRETS_TASK_ENDPOINT; NULL when off */
    int task_endpoint_port;       /* 0: any free port */
    bool listen_tls;              /* ECS_SECRETS_TLS_CERT and ECS_SECRETS_TLS_KEY are both set */
    char *docker_socket;          /* path part of DOCKER_HOST unix:///path */
    unsigned rotation_time_scale; /* ECS_SECRETS_ROTATION_TIME_SCALE (1: real time) */
} cf_config;

typedef enum cf_action {
    CF_ACTION_RUN,
    CF_ACTION_CHECK,
    CF_ACTION_HELP,
    CF_ACTION_VERSION,
} cf_action;

/* Loads every layer. envp may be NULL (no environment layer). On failure
 * returns -EINVAL (or -ENOMEM) with the reason in err, and c is freed. */
int cf_load(cf_config *c, int argc, char *const argv[], char *const envp[], cf_action *action,
            es_buf *err);
void cf_free(cf_config *c);

const char *cf_get(const cf_config *c, cf_key_id k);
/* A duration written as seconds ("90") or with one unit ("90s", "15m", "3h"),
 * as the ECS agent's ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION; 0 or -EINVAL. */
int cf_parse_duration(const char *v, long *seconds);
/* Where key k's value came from ("default", "FILE:LINE", ...), or NULL. */
const char *cf_source(const cf_config *c, cf_key_id k);

/* Whether a listen host (as cf_load splits ECS_SECRETS_LISTEN: no brackets)
 * is loopback: 127.0.0.0/8, ::1, ::ffff:127.x.x.x, or the name "localhost".
 * A listener anywhere else needs TLS (ECS_SECRETS_TLS_CERT and
 * ECS_SECRETS_TLS_KEY): cf_load refuses it without, since the answers carry
 * secret values. */
bool cf_host_is_loopback(const char *host);

/* Moves key k's value and source from fresh (a configuration just loaded)
 * into live, freeing live's old ones, and updates live's typed view of k
 * (log_level, mode). For a reload (SIGHUP) of the keys that may change while
 * running; -EINVAL for keys whose typed view cf_adopt does not redo
 * (ECS_SECRETS_LISTEN, DOCKER_HOST), and then nothing moves. */
int cf_adopt(cf_config *live, cf_config *fresh, cf_key_id k);

/* Writes the effective configuration with sources, secrets masked. */
void cf_print(const cf_config *c, FILE *out);
/* Writes the --help text. */
void cf_print_help(FILE *out, const char *argv0);

/* Parses one line of an EnvironmentFile into key and value; exposed for the
 * tests and the fuzz driver. Returns 1 for an assignment, 0 for a blank or
 * comment line, -EINVAL with a reason. Continuation lines are joined by the
 * caller (cf_parse_text). */
typedef int (*cf_assign_fn)(const char *key, const char *value, unsigned line, void *arg);
int cf_parse_text(const char *text, size_t len, cf_assign_fn fn, void *arg, unsigned *bad_line,
                  char *err, size_t errlen);
/* Reads a configuration file (at most CF_FILE_MAX bytes) and passes each
 * assignment to fn, as cf_load does. A missing file is 0 unless must_exist.
 * 0, or -EINVAL (or fn's error) with the reason in err ("FILE:LINE: ..."). */
int cf_read_file(const char *path, bool must_exist, cf_assign_fn fn, void *arg, es_buf *err);

#endif
