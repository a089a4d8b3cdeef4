/* inject.h - from a container definition, RunTask overrides and resolved
 * secret values to Docker's create parameters. Pure: no I/O, no logging.
 *
 * A secret with an ecs-secrets.file.* label (agent/tasks/td_files.h) is not
 * put in Env: the engine writes it to a file (agent/secrets/files.h) and
 * passes the bind mounts in the context.
 *
 * Env precedence (as ECS): the container's environment files (merged at
 * resolution, the first file to define a variable winning: envfile.h),
 * then the definition's environment (same name replaces), then the RunTask
 * override's environment (same name replaces in place, new names append),
 * then secrets (same name replaces, new names append): a secret always wins;
 * then the expansion labels' variables (their names were checked against
 * environment and secrets at resolution; over an override's they win).
 * Command: the override's replaces the definition's.
 *
 * HostConfig.LogConfig: logDriver with options, then the resolved
 * secretOptions (a secret option replaces an option of the same name);
 * awslogs's as ECS gives them to Docker (agent/tasks/td_awslogs.h:
 * awslogs-stream-prefix made awslogs-stream, defaults, the execution role's
 * credentials endpoint).
 *
 * Labels: the definition's dockerLabels, then ours, which win:
 * com.amazonaws.ecs.task-arn, .container-name, .task-definition-family,
 * .task-definition-version, .cluster.
 *
 * Values are secrets. Every buffer that held one is wiped: the params'
 * Env and log options are wiped by ag_create_params_free; a JSON body from
 * ag_create_params_write_json must be released with es_buf_free_secret. No
 * error text quotes a value. */
#ifndef AG_INJECT_H
#define AG_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/secrets/values.h"
#include "agent/tasks/task.h"
#include "agent/tasks/taskdef.h"
#include "common/buf.h"
#include "docker/docker.h"

#define AG_CREATE_BODY_MAX (4u << 20)
#define AG_INJECT_ERR_MAX 512

/* One resolved secret of one container, after json-key extraction. */
typedef struct ag_secret_value {
    ag_secret_target target; /* AG_SECRET_ENV: secrets[], AG_SECRET_LOG: secretOptions[] */
    const char *name;        /* the secret's name in the definition */
    const char *value;       /* not NUL-terminated necessarily: len counts */
    size_t len;
    bool binary; /* a SecretBinary: cannot become an env var or option */
    /* an expansion label's variables (expand.h): name is the label's key,
     * value its "NAME=VALUE\0" list, each put in Env as a secret is */
    bool expand;
} ag_secret_value;

typedef struct ag_inject_ctx {
    const char *task_arn;
    const char *cluster;
    const char *family;
    int64_t revision;
    /* in a cluster: the container-instance ARN, labelled
     * com.amazonaws.ecs.container-instance-arn; NULL: no such label */
    const char *instance_arn;
    /* HostConfig.NetworkMode ("bridge", "host", "none", a network name);
     * NULL leaves it to Docker. The engine picks it (the definition's
     * networkMode or its configured default). */
    const char *network_mode;
    /* HostConfig.PidMode and IpcMode: the task's pidMode and ipcMode
     * ("host", "none"); NULL leaves them to Docker (the container's own) */
    const char *pid_mode, *ipc_mode;
    /* HostConfig.Mounts: the container's secret files (agent/secrets/files.h),
     * borrowed until the create is sent; the engine lays them out */
    const dk_mount *mounts;
    size_t nmounts;
    /* "NAME=value" the agent itself gives the container (the task role's
     * credentials endpoint and token, the metadata endpoint: agent/endpoints/):
     * put in Env last, replacing a variable of the same name, as ECS's agent
     * does. Borrowed; may hold a secret (the token), wiped with Env. */
    const char *const *agent_env;
    size_t n_agent_env;
    /* The container's environment files, merged: "NAME=VALUE\0" entries,
     * envfile_len bytes (resolve.h ag_resolution_envfiles); laid under
     * everything else. Borrowed; SECRET. */
    const char *envfile_env;
    size_t envfile_len;
    /* awslogs (agent/tasks/td_awslogs.h): the task's id (the stream
     * prefix's name), its region (awslogs-region when not given), and
     * awslogs-credentials-endpoint's value when the task has an execution
     * role (agent/endpoints/; NULL: none, Docker's own credentials). The
     * last is a bearer secret: wiped with the log options. Borrowed. */
    const char *task_id;
    const char *region;
    const char *log_credentials_uri;
} ag_inject_ctx;

typedef struct ag_create_params {
    char *name; /* ecs-<family>-<rev>-<container>-<16 hex> */
    char *image;
    char **cmd; /* NULL: the image's */
    size_t n_cmd;
    char **entrypoint; /* NULL: the image's */
    size_t n_entrypoint;
    char **env; /* "NAME=value"; SECRET */
    size_t n_env;
    ag_kv *labels;
    size_t n_labels;
    char *log_type;    /* NULL: the daemon's default driver */
    ag_kv *log_config; /* values may be SECRET */
    size_t n_log_config;
    char *working_dir, *user;  /* NULL when unset */
    char *network_mode;        /* HostConfig.NetworkMode; NULL: Docker's default */
    char *pid_mode, *ipc_mode; /* HostConfig.PidMode, IpcMode; NULL: Docker's default */
    bool has_stop_timeout, has_memory, has_cpu;
    int64_t stop_timeout; /* seconds */
    int64_t memory_bytes; /* HostConfig.Memory */
    int64_t cpu_shares;   /* HostConfig.CpuShares */
    /* the same as docker/'s create spec (views into the fields above), which
     * dk_container_create sends: docker/ is the one writer of the body */
    dk_create_spec spec;
    dk_kv *label_views, *log_views;
    /* ---- issue 20: the runtime members (td_runtime.h), spec.rt. Views into
     * the container definition, which must outlive the params, and what had
     * to be formatted for Docker ---- */
    dk_create_runtime rt;
    char **extra_hosts; /* "hostname:ip" */
    size_t n_extra_hosts;
    dk_ulimit *ulimit_views;
    dk_kv *sysctl_views;
    dk_device *device_views;
    char (*device_perms)[4]; /* "rwm" per device */
    dk_kv *tmpfs_views;      /* values owned: "size=Nm,options" */
    dk_healthcheck health;   /* healthCheck, with ECS's defaults applied */
    const dk_mount *mounts;  /* borrowed from the ag_inject_ctx */
    size_t n_mounts;
} ag_create_params;

/* Builds the parameters. ov may be NULL. Every secrets[] / secretOptions[]
 * entry of cd needs exactly one value in `values`. 0, -EINVAL or -ENOENT
 * (err says which secret and why, never the value), -ENOMEM. */
int ag_inject_build(const ag_container_def *cd, const ag_container_override *ov,
                    const ag_secret_value *values, size_t n_values, const ag_inject_ctx *ctx,
                    ag_create_params **out, char *err, size_t errlen);
/* Wipes Env and log options, frees everything. NULL-safe. */
void ag_create_params_free(ag_create_params *p);

/* "ecs-<family>-<rev>-<name>-<16 random hex>", characters outside
 * [a-zA-Z0-9_.-] replaced by '-'. 0, -EMSGSIZE, -EIO (no randomness). */
int ag_container_name(const char *family, int64_t revision, const char *name, char *out,
                      size_t outlen);

#endif
