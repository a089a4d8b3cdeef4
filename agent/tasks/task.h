/* task.h - one ECS task: its lifecycle state machine and its DescribeTasks shape.
 *
 * lastStatus follows ECS's task lifecycle, always forward:
 *
 *   PROVISIONING -> PENDING -> ACTIVATING -> RUNNING -> DEACTIVATING -> STOPPING
 *                -> DEPROVISIONING -> STOPPED
 *
 * with the shortcuts ECS takes: a task that fails to start goes from
 * PROVISIONING or PENDING straight to DEPROVISIONING or STOPPED, ACTIVATING
 * and DEACTIVATING may be skipped. ag_task_transition is the one function
 * that changes lastStatus: it refuses an illegal move, records the lifecycle
 * timestamp that goes with the new state, has the caller commit it (the
 * model knows no store: the engine passes a commit that writes the task to
 * the store; when the commit fails the task is left as it was) and logs
 * old -> new.
 *
 *   entering   sets (once)
 *   PENDING    pullStartedAt
 *   RUNNING    pullStoppedAt (if unset), startedAt
 *   DEACTIVATING / STOPPING   stoppingAt
 *   DEPROVISIONING            executionStoppedAt
 *   STOPPED    executionStoppedAt (if unset), stoppedAt
 * createdAt is set by ag_task_create.
 *
 * The record is public data (the store and the API read it); nothing but
 * ag_task_transition assigns last_status, and nothing but ag_task_request_stop
 * assigns desired_status, stop_code and stopped_reason.
 *
 * Secret metadata (ag_secret_meta) names where each injected value came from,
 * which version, when, and a keyed fingerprint: never the value. */
#ifndef AG_TASK_H
#define AG_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/json.h"

#define AG_TASK_ID_HEX 32
#define AG_STOPPED_REASON_MAX 1024  /* characters, as ECS */
#define AG_CONTAINER_REASON_MAX 255 /* Container.reason, as ECS */
#define AG_FINGERPRINT_MAX 80

typedef enum ag_task_status {
    AG_TASK_PROVISIONING,
    AG_TASK_PENDING,
    AG_TASK_ACTIVATING,
    AG_TASK_RUNNING,
    AG_TASK_DEACTIVATING,
    AG_TASK_STOPPING,
    AG_TASK_DEPROVISIONING,
    AG_TASK_STOPPED,
} ag_task_status;
#define AG_TASK_STATUS_COUNT 8

typedef enum ag_stop_code {
    AG_STOP_NONE,
    AG_STOP_TASK_FAILED_TO_START,
    AG_STOP_ESSENTIAL_CONTAINER_EXITED,
    AG_STOP_USER_INITIATED,
    AG_STOP_SERVICE_SCHEDULER_INITIATED,
    AG_STOP_TERMINATION_NOTICE, /* the cluster lost the task's host (cluster/tasks.h) */
} ag_stop_code;

typedef enum ag_secret_target {
    AG_SECRET_ENV,      /* containerDefinitions[].secrets[]: an environment variable */
    AG_SECRET_LOG,      /* logConfiguration.secretOptions[]: a log driver option */
    AG_SECRET_REGISTRY, /* repositoryCredentials: the image pull's registry auth (S15) */
} ag_secret_target;
/* "environment", "logConfiguration", "repositoryCredentials" (DescribeTasks,
 * the store) */
const char *ag_secret_target_name(ag_secret_target t);

/* healthStatus of a container and of a task, as ECS names them. */
typedef enum ag_health {
    AG_HEALTH_UNKNOWN, /* no health check, or not yet evaluated */
    AG_HEALTH_HEALTHY,
    AG_HEALTH_UNHEALTHY,
} ag_health;

const char *ag_health_name(ag_health h);

/* stoppedReason of a service's task stopped for its health (ECS's words);
 * the scheduler counts such a task as failed (the circuit breaker) */
#define AG_HEALTH_STOP_REASON "Task failed container health checks"

typedef struct ag_task_container {
    char *name;
    char *image;
    char *docker_id; /* runtimeId; NULL until created */
    char
        *docker_name; /* the create's name (memory only: task metadata's DockerName); may be NULL */
    char *last_status; /* "PENDING", "RUNNING", "STOPPED" */
    bool has_exit_code;
    int exit_code;
    char *reason; /* NULL or <= AG_CONTAINER_REASON_MAX */
    /* Memory only, from the task definition (the engine sets them) and
     * Docker's health_status events: what the task's healthStatus is
     * computed from. A restarted agent learns health again from Docker. */
    bool essential;      /* the definition's essential (default true) */
    bool health_checked; /* it has a healthCheck */
    ag_health health;
    /* Memory only: its restartPolicy's bookkeeping (td_restart.h), on the
     * engine's clock (uv_now, ms); 0 when not known (an adopted container) */
    uint64_t started_ms, restarted_ms;
    unsigned restart_count;
    bool restarting; /* its start again is in flight */
} ag_task_container;

typedef struct ag_secret_meta {
    char *container_name;
    ag_secret_target target;
    char *name;       /* the variable / option name */
    char *value_from; /* as written in the task definition */
    char *source_arn; /* the ARN the store answered with (parameter or secret) */
    char *version;    /* SSM version number or Secrets Manager VersionId */
    int64_t resolved_at;
    char *fingerprint; /* keyed fingerprint of the value (ag_secret_fingerprint) */
    /* The reference as parsed at registration: a view into the task's
     * definition, which the engine keeps for the task's life (it binds the
     * view when the values are resolved and when it reloads the task); NULL
     * when the definition is unknown. Memory only. Readers (drift) use it
     * and never parse value_from again. */
    const struct ag_valuefrom *vf;
    /* Drift (agent/secrets/drift.h), in memory only, never persisted: is the
     * version this task holds still the store's current one? */
    int drift;                /* AG_DRIFT_UNKNOWN, AG_DRIFT_CURRENT, AG_DRIFT_STALE */
    char latest_version[72];  /* the store's current version when last checked */
    int64_t drift_checked_at; /* epoch seconds; 0: never (set for an UNKNOWN
                                 secret drift cannot judge, too) */
} ag_secret_meta;
#define AG_DRIFT_UNKNOWN 0
#define AG_DRIFT_CURRENT 1
#define AG_DRIFT_STALE 2

typedef struct ag_task {
    char *arn;    /* arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID */
    char *region; /* parts of the ARN, kept for building the other ARNs */
    char *account;
    char *cluster;
    char *id; /* 32 hex */
    char *family;
    int64_t revision;
    ag_task_status last_status;
    ag_task_status desired_status; /* RUNNING or STOPPED */
    char *started_by;              /* NULL when absent */
    char *group;                   /* NULL when absent */
    char *launch_type;             /* "EC2" unless told otherwise */
    char *stopped_reason;
    ag_stop_code stop_code;
    int64_t created_at, pull_started_at, pull_stopped_at, started_at, stopping_at, stopped_at,
        execution_stopped_at;
    int64_t version; /* bumped by every persisted change */
    ag_task_container *containers;
    size_t n_containers;
    ag_secret_meta *secrets;
    size_t n_secrets;
} ag_task;

/* A new task in PROVISIONING, desired RUNNING, createdAt = now, with a
 * random id. cluster must be a valid cluster name (letters, digits, -, _;
 * up to 255). started_by, group, launch_type may be NULL. 0, -EINVAL, -ENOMEM, -EIO. */
int ag_task_create(const char *region, const char *account, const char *cluster, const char *family,
                   int64_t revision, const char *started_by, const char *group,
                   const char *launch_type, int64_t now, ag_task **out);
/* The same with the task's ID given (32 lower-case hex digits: a task the
 * cluster's leader placed here, agent/cluster_tasks.c); NULL: a new one. */
int ag_task_create_id(const char *region, const char *account, const char *cluster,
                      const char *family, int64_t revision, const char *started_by,
                      const char *group, const char *launch_type, int64_t now, const char *id,
                      ag_task **out);
void ag_task_free(ag_task *t);

/* Adds a container (lastStatus PENDING); 0 or -ENOMEM. */
int ag_task_add_container(ag_task *t, const char *name, const char *image);
ag_task_container *ag_task_find_container(ag_task *t, const char *name);
/* Sets a container's fields (NULL leaves one unchanged). 0, -ENOENT, -ENOMEM. */
int ag_task_container_update(ag_task *t, const char *name, const char *docker_id,
                             const char *last_status, const int *exit_code, const char *reason);
/* Records where a secret came from; never its value. 0 or -ENOMEM. */
int ag_task_add_secret_meta(ag_task *t, const char *container_name, ag_secret_target target,
                            const char *name, const char *value_from, const char *source_arn,
                            const char *version, int64_t resolved_at, const char *fingerprint);

/* A refreshed secret file (issue 21, agent/secrets/files.h) now holds a new
 * version: m records it (source, version, when, fingerprint) and counts as
 * current for drift. 0 or -ENOMEM (m unchanged). */
int ag_task_secret_meta_refreshed(ag_secret_meta *m, const char *source_arn, const char *version,
                                  int64_t resolved_at, const char *fingerprint);

/* Is from -> to a legal lifecycle move? */
bool ag_task_transition_ok(ag_task_status from, ag_task_status to);
/* Makes a changed task durable (the edge's business: the engine writes it to
 * its store). 0, or a negative errno: the change is then undone. NULL: no
 * commit (tests, tasks not yet stored). */
typedef int (*ag_task_commit_fn)(void *arg, const ag_task *t);
/* The one function that changes lastStatus. -EINVAL for an illegal move (the
 * task is unchanged), the commit's error (the task is unchanged), or 0. */
int ag_task_transition(ag_task *t, ag_task_status to, int64_t now, ag_task_commit_fn commit,
                       void *arg);
/* Sets desiredStatus STOPPED with a stop code and reason (cut to
 * AG_STOPPED_REASON_MAX); the first reason given sticks. Commits as
 * ag_task_transition does. 0, -ENOMEM or the commit's error (task unchanged). */
int ag_task_request_stop(ag_task *t, ag_stop_code code, const char *reason,
                         ag_task_commit_fn commit, void *arg);

const char *ag_task_status_name(ag_task_status s);
/* The task's healthStatus as ECS computes it from its essential
 * containers: UNHEALTHY if any is UNHEALTHY; HEALTHY if every one with a
 * health check is HEALTHY (and there is one); else UNKNOWN. */
ag_health ag_task_health(const ag_task *t);
int ag_task_status_parse(const char *s, ag_task_status *out);
const char *ag_stop_code_name(ag_stop_code c); /* NULL for AG_STOP_NONE */
int ag_stop_code_parse(const char *s, ag_stop_code *out);

/* Splits arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID; 0 or -EINVAL. Writes
 * NUL-terminated copies into the given buffers (each >= 256 bytes). */
int ag_task_arn_split(const char *arn, char *region, char *account, char *cluster, char *id,
                      size_t buflen);

/* The reason a task that could not get its secrets stops with, shaped like
 * ECS's: "ResourceInitializationError: unable to pull secrets or registry
 * auth: execution resource retrieval failed: unable to retrieve secret from
 * <service>: failed to fetch secret <secret> from <service> in <region>:
 * <aws_code>: <detail>". Never a value: the caller passes what AWS said
 * about the request (codes and messages, which name resources, not values).
 * Control characters become spaces; the result is cut at
 * AG_STOPPED_REASON_MAX characters (on a UTF-8 boundary, ending in "...").
 * out must hold AG_STOPPED_REASON_MAX * 4 + 1 bytes to be safe; returns the
 * length written. */
typedef struct ag_secret_failure {
    const char *service; /* "ssm" or "asm" (as ECS names Secrets Manager) */
    const char *region;
    const char *secret;   /* the valueFrom, or the names that failed */
    const char *aws_code; /* e.g. "AccessDeniedException", "ParameterNotFound"; may be NULL */
    const char *detail;   /* AWS's message; may be NULL */
} ag_secret_failure;
#define AG_REASON_BUF (AG_STOPPED_REASON_MAX * 4 + 1)
/* How ECS begins the stoppedReason of every task that could not get its
 * secrets or registry credentials; written here once. */
#define AG_REASON_SECRETS "ResourceInitializationError: unable to pull secrets or registry auth: "
/* The reason a launch interrupted by the agent's own stop is given (the next
 * start reports such tasks as it finds them: agent.c's recovery). */
#define AG_REASON_AGENT_STOPPING AG_REASON_SECRETS "the agent is stopping"
size_t ag_reason_secret_failure(char *out, size_t outlen, const ag_secret_failure *f);
/* AG_REASON_SECRETS followed by the formatted text, sanitised and cut as
 * ag_reason_clip does; returns the length. */
size_t ag_reason_secrets(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies reason into out sanitised and cut as above; returns the length. */
size_t ag_reason_clip(char *out, size_t outlen, const char *reason);

/* Writes the DescribeTasks "Task" object, plus "secretsResolved" (our own
 * field: aws ecs passes unknown fields through) listing ag_secret_meta;
 * once drift has checked a secret, its entry says "current" (true/false)
 * and "currentVersion", and the task says "staleSecrets" (a count). */
void ag_task_write_json(const ag_task *t, es_jw *w);

#endif
