/* taskdef.h - the task definition model: RegisterTaskDefinition in, describe
 * shape out.
 *
 * ag_taskdef_parse reads an ECS RegisterTaskDefinition request (JSON 1.1
 * body, field names as in botocore's ecs/2014-11-13 model) into a typed
 * ag_taskdef and validates it. Each failure carries ECS's error code and a
 * message that starts with the field path, e.g.
 *   "containerDefinitions[1].secrets[0].valueFrom: the ARN's account is not 12 digits"
 * Codes: ClientException for what the content says (names, limits, missing
 * fields, rules between fields: this is what ECS answers for task
 * definitions), InvalidParameterException for the request's shape (a field of
 * the wrong JSON type, a body that is not a JSON object).
 *
 * No member is ignored: td_fields.h's table says of each whether it works,
 * is kept as registered with no effect (the reason in the table), or is
 * refused by name; a member the table does not know is refused.
 *
 * The model is a plain data record (public fields): the API, the store, the
 * injector and the resolver all read it; only this module builds it. A task
 * definition holds references to secrets (valueFrom), never their values.
 *
 * Deviation kept on purpose: the seed document shows logConfiguration as a
 * one-element array; such an array is accepted as the object ECS takes, and
 * a warning (td->warnings) says so, for the API to put in its answer. */
#ifndef AG_TASKDEF_H
#define AG_TASKDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/secrets/valuefrom.h"
#include "agent/tasks/td_envfiles.h"
#include "agent/tasks/td_expand.h"
#include "agent/tasks/td_restart.h"
#include "agent/tasks/td_files.h"
#include "agent/tasks/td_runtime.h"
#include "agent/tasks/td_volumes.h"
#include "common/buf.h"
#include "common/json.h"

/* Named limits. ECS's own: names 255 (S11, S12), image 255, 10 containers,
 * 64 KiB per task definition. The rest are ours, chosen well above real use. */
#define AG_TD_BODY_MAX (64u << 10)
#define AG_TD_NAME_MAX 255 /* family, container name */
#define AG_TD_IMAGE_MAX 255
#define AG_TD_CONTAINERS_MAX 10
#define AG_TD_ARN_MAX 2048 /* executionRoleArn, taskRoleArn */
#define AG_TD_ENV_MAX 1000 /* environment entries per container */
#define AG_TD_ENV_NAME_MAX 255
#define AG_TD_ENV_VALUE_MAX 32768
#define AG_TD_SECRETS_MAX 100       /* secrets per container */
#define AG_TD_SECRET_OPTIONS_MAX 50 /* logConfiguration.secretOptions */
#define AG_TD_LOG_OPTIONS_MAX 50    /* logConfiguration.options */
#define AG_TD_LOG_OPTION_MAX 4096   /* one option name or value */
#define AG_TD_LABELS_MAX 100        /* dockerLabels */
#define AG_TD_LABEL_KEY_MAX 255
#define AG_TD_LABEL_VALUE_MAX 4096
#define AG_TD_ARGV_MAX 256  /* command / entryPoint items */
#define AG_TD_ARG_MAX 8192  /* one command / entryPoint item */
#define AG_TD_PATH_MAX 4096 /* workingDirectory */
#define AG_TD_USER_MAX 255
#define AG_TD_SIZE_STR_MAX 32 /* task cpu / memory strings */
#define AG_TD_DEPENDS_MAX 10
#define AG_TD_STOP_TIMEOUT_MAX 120 /* seconds, as ECS */
/* startTimeout: how long a container's dependents wait for it to reach a
 * COMPLETE, SUCCESS or HEALTHY condition. ECS on EC2 defaults to its
 * agent's ECS_CONTAINER_START_TIMEOUT, 3 minutes on Linux; 2 s is ECS's
 * minimum (Fargate's range is 2-120); our maximum is a day. */
#define AG_TD_START_TIMEOUT_MIN 2
#define AG_TD_START_TIMEOUT_MAX 86400
#define AG_TD_START_TIMEOUT_DEFAULT 180
#define AG_TD_CONTAINER_MEMORY_MIN 6 /* MiB: Docker's minimum */
#define AG_TD_CONTAINER_MEMORY_MAX (1 << 24)
#define AG_TD_CONTAINER_CPU_MAX 262144
#define AG_TD_ERR_MAX 512 /* an error message */
#define AG_TD_WARNINGS_MAX 10

typedef struct ag_kv {
    char *name;
    char *value;
} ag_kv;

/* secrets[] / secretOptions[] / repositoryCredentials: a name and where its
 * value lives, as given and as parsed. The reference is parsed once, here at
 * registration (bare names take the task definition's region, ag_td_ctx);
 * every later reader (the secret plan, preflight, resolution) uses vf and
 * never parses value_from again. */
typedef struct ag_secret_ref {
    char *name;
    char *value_from;
    ag_valuefrom vf;
} ag_secret_ref;

typedef struct ag_logconf {
    char *driver; /* one of ECS's LogDriver values */
    ag_kv *options;
    size_t n_options;
    ag_secret_ref *secret_options;
    size_t n_secret_options;
} ag_logconf;

/* dependsOn[]: the container starts once the one named reaches condition. */
typedef enum ag_dep_condition {
    AG_DEP_START,    /* it has started */
    AG_DEP_COMPLETE, /* it has exited (any code); it must be non-essential */
    AG_DEP_SUCCESS,  /* it has exited 0; it must be non-essential */
    AG_DEP_HEALTHY,  /* its health check passed; it must have a healthCheck */
} ag_dep_condition;

typedef struct ag_dependency {
    size_t container; /* index into ag_taskdef.containers */
    ag_dep_condition condition;
} ag_dependency;

const char *ag_dep_condition_name(ag_dep_condition c);

typedef struct ag_container_def {
    char *name;
    char *image;
    bool essential; /* default true */
    char **command; /* NULL when absent */
    size_t n_command;
    char **entry_point; /* NULL when absent */
    size_t n_entry_point;
    ag_kv *environment;
    size_t n_environment;
    /* environmentFiles (td_envfiles.h): S3 objects read at launch with the
     * execution role, laid under environment; NULL when none */
    ag_env_file *env_files;
    size_t n_env_files;
    ag_secret_ref *secrets;
    size_t n_secrets;
    ag_logconf *log; /* NULL when absent */
    /* repositoryCredentials (S15): NULL when absent; name is
     * "repositoryCredentials", value_from the credentialsParameter (a Secrets
     * Manager secret's ARN or name, holding {"username", "password"}) */
    ag_secret_ref *repository_credentials;
    ag_kv *docker_labels;
    size_t n_docker_labels;
    bool has_stop_timeout, has_memory, has_cpu, has_start_timeout;
    int64_t stop_timeout, memory, cpu, start_timeout;
    char *working_directory; /* NULL when absent */
    char *user;              /* NULL when absent */
    char *depends_on_json;   /* dependsOn as JSON array text, NULL when absent */
    ag_dependency *depends;  /* the same, typed; NULL when absent */
    size_t n_depends;
    ag_kv *kept; /* members kept as registered (td_fields.h KEPT, or an empty
                    value of a refused one): name and JSON text, in order */
    size_t n_kept;
    /* What changes Docker's create beyond the above (issue 20): hostname,
     * DNS, privileges, ulimits, ... (td_runtime.h) */
    ag_container_runtime rt;
    /* mountPoints, volumesFrom, portMappings (td_volumes.h) */
    ag_container_volumes cv;
    /* restartPolicy (td_restart.h): not present when absent */
    ag_restart_policy restart;
    /* issue 21: the secrets delivered as files (td_files.h), from the
     * ecs-secrets.file.* labels of docker_labels; NULL when none */
    ag_secret_file *files;
    size_t n_files;
    /* issue 21: the ecs-secrets.expand.* labels of docker_labels
     * (td_expand.h); NULL when none */
    ag_secret_expand *expands;
    size_t n_expands;
} ag_container_def;

typedef enum ag_td_status {
    AG_TD_ACTIVE,
    AG_TD_INACTIVE,
} ag_td_status;

typedef struct ag_taskdef {
    char *family;
    int64_t revision; /* 0 until registered in the store */
    ag_td_status status;
    int64_t registered_at;     /* epoch seconds; 0 until registered */
    int64_t deregistered_at;   /* 0 while ACTIVE */
    char *execution_role_arn;  /* NULL when absent */
    char *task_role_arn;       /* NULL when absent */
    char *network_mode;        /* NULL when absent (ECS's default: bridge) */
    char *pid_mode, *ipc_mode; /* "host" / "host" or "none"; NULL when absent (the
                                  container's own namespace) */
    char **requires_compatibilities;
    size_t n_requires_compatibilities;
    char *cpu, *memory;                 /* task-level strings, NULL when absent */
    char *cpu_architecture, *os_family; /* runtimePlatform, NULL when absent */
    ag_td_volume *volumes;              /* td_volumes.h; NULL when absent */
    size_t n_volumes;
    ag_container_def *containers;
    size_t n_containers;
    /* The order containers start in: dependsOn's START conditions first
     * (a topological order; a cycle is refused). n_containers entries. */
    size_t *start_order;
    ag_kv *kept; /* as ag_container_def.kept, for the task's own members */
    size_t n_kept;
    /* Not persisted: notes for the API's answer (see the header comment). */
    char *warnings[AG_TD_WARNINGS_MAX];
    size_t n_warnings;
} ag_taskdef;

/* What validation needs to know about the place the task will run. */
typedef struct ag_td_ctx {
    const char *region;  /* the task's region, for bare SSM names; may be NULL */
    const char *account; /* the configured account: an SSM parameter ARN in
                            another account is refused (S2). NULL skips the
                            check (reloading from our own store). */
    /* Real ECS (since about 2022) refuses a secret that shares its name with
     * an environment variable of the same container; by default we accept it
     * and the secret wins at injection. true: refuse as ECS does. */
    bool reject_env_secret_clash;
} ag_td_ctx;

typedef struct ag_td_error {
    const char *code; /* "ClientException" | "InvalidParameterException" | "ServerException" */
    char message[AG_TD_ERR_MAX];
} ag_td_error;

/* Parses and validates a request body (at most AG_TD_BODY_MAX bytes). 0, or
 * -EINVAL (err filled), -EMSGSIZE (too big; err filled), -ENOMEM. */
int ag_taskdef_parse(const char *body, size_t len, const ag_td_ctx *ctx, ag_taskdef **out,
                     ag_td_error *err);
/* The same from a parsed request object. */
int ag_taskdef_from_json(const es_json *req, const ag_td_ctx *ctx, ag_taskdef **out,
                         ag_td_error *err);
void ag_taskdef_free(ag_taskdef *td);

/* Finds a container definition by name; NULL if none. */
const ag_container_def *ag_taskdef_container(const ag_taskdef *td, const char *name);
/* True when any container has secrets or secretOptions. */
bool ag_taskdef_has_secrets(const ag_taskdef *td);
/* True when any container has environmentFiles. */
bool ag_taskdef_has_env_files(const ag_taskdef *td);
/* True when any container has repositoryCredentials. */
bool ag_taskdef_has_registry_auth(const ag_taskdef *td);

const char *ag_td_status_name(ag_td_status s);
/* The one transition of a definition's status: ACTIVE -> INACTIVE, stamped
 * with when (DeregisterTaskDefinition, or reading back a deregistered one).
 * A parsed definition begins ACTIVE. false when it already was INACTIVE. */
bool ag_taskdef_deregister(ag_taskdef *td, int64_t when);

/* Writes the request-shaped object (what RegisterTaskDefinition takes):
 * what the store keeps, and what ag_taskdef_from_json reads back. */
void ag_taskdef_write_request(const ag_taskdef *td, es_jw *w);
/* Writes ECS's TaskDefinition object, as DescribeTaskDefinition and
 * RegisterTaskDefinition answer it: taskDefinitionArn
 * (arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REV), revision, status,
 * registeredAt (epoch seconds), compatibilities, and every request field. */
void ag_taskdef_write_describe(const ag_taskdef *td, const char *region, const char *account,
                               es_jw *w);
/* arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REV into out; 0 or -EMSGSIZE. */
int ag_taskdef_arn(const ag_taskdef *td, const char *region, const char *account, char *out,
                   size_t outlen);

/* RunTask overrides.containerOverrides[]: per container, a command and
 * environment to lay over the definition. */
typedef struct ag_container_override {
    char *name;
    char **command; /* NULL when not overridden */
    size_t n_command;
    ag_kv *environment;
    size_t n_environment;
} ag_container_override;

typedef struct ag_overrides {
    ag_container_override *containers;
    size_t n_containers;
} ag_overrides;

/* Parses RunTask's `overrides` object (NULL or absent: no overrides) against
 * td: each override must name one of td's containers, once. */
int ag_overrides_parse(const es_json *overrides, const ag_taskdef *td, ag_overrides **out,
                       ag_td_error *err);
void ag_overrides_free(ag_overrides *o);
const ag_container_override *ag_overrides_for(const ag_overrides *o, const char *name);

#endif
