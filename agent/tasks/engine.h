/* engine.h - the task engine: from RunTask to running containers and back.
 *
 * The engine owns every task the agent knows (in memory, mirrored in the
 * store) and drives each through its lifecycle:
 *
 *   RunTask ─► PROVISIONING: secrets resolved (agent/secrets/resolve.h), all or none
 *           ─► PENDING: every container created with its values injected
 *              (agent/secrets/inject.h), then every container started
 *           ─► RUNNING
 *   an essential container exits, or StopTask ─► DEACTIVATING: the other
 *              containers stopped with their stopTimeout ─► STOPPED
 *   any failure before RUNNING ─► the containers created so far removed,
 *              STOPPED with stopCode TaskFailedToStart and an ECS-shaped
 *              stoppedReason (never a value)
 *
 * Docker is the source of truth for containers: the engine follows the
 * events stream and, when it (re)connects and every reconcile interval,
 * lists the labelled containers to reconcile (a container that vanished or died while nobody
 * watched stops its task; a labelled container of an unknown task is reported and left alone).
 * Stopped tasks' containers are removed after a delay.
 *
 * Every API-facing call is synchronous and answers from memory; launches
 * and stops proceed on the loop afterwards. The engine logs (it is agent/). */
#ifndef AG_ENGINE_H
#define AG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/metrics.h"
#include "agent/secrets/resolve.h"
#include "agent/store/store.h"
#include "agent/tasks/task.h"
#include "agent/tasks/taskdef.h"
#include "docker/docker.h"

#define AG_ENGINE_RUN_MAX 10 /* RunTask count, as ECS */
/* The Docker client pool the agent gives the engine. A container stop holds
 * its connection for the container's stopTimeout (a process that ignores
 * SIGTERM waits it out), so with the client's default of 4 a deployment's
 * stops starved its creates: bench_service, 20 tasks, `sleep` containers:
 * 8.97 s with 4 connections, 4.98 s with 16. */
#define AG_DOCKER_MAX_CONNS 16
#define AG_ENGINE_TASKS_MAX 10000

typedef struct ag_engine ag_engine;

typedef struct ag_engine_config {
    uv_loop_t *loop;
    ag_store *store;       /* borrowed */
    dk_client *docker;     /* borrowed */
    ag_resolver *resolver; /* borrowed */
    ag_metrics *metrics;   /* borrowed; may be NULL */
    const char *region, *account, *cluster;
    int64_t cleanup_delay_s;        /* stopped tasks' containers removed after; default 3600 */
    const char *network_mode;       /* containers' NetworkMode; NULL: "none" unless the
                                       definition names one */
    uint64_t reconcile_interval_ms; /* periodic reconciling list; 0: only on (re)connect */
    uint64_t sweep_interval_ms;     /* stopped tasks' cleanup and failed stops' retries;
                                       0: AG_ENGINE_SWEEP_MS (tests shorten it) */
    /* where secret files are written (agent/secrets/files.h): a tmpfs;
     * NULL: AG_FILES_DIR_DEFAULT */
    const char *files_dir;
    /* In a cluster: this host's container-instance ARN. Every container the
     * engine creates is labelled with it (AG_ENGINE_INSTANCE_LABEL), and the
     * reconciling lists ask only for containers that carry it, so that
     * agents sharing one Docker engine never touch each other's. NULL: alone
     * (no label, every task-labelled container listed, as before). */
    const char *instance_arn;
} ag_engine_config;
#define AG_ENGINE_INSTANCE_LABEL "com.amazonaws.ecs.container-instance-arn"

#define AG_ENGINE_SWEEP_MS 15000

/* The periodic reconcile: every ms (0: off), a list of the labelled
 * containers applied as after an events-stream reconnect. dockerd drops
 * events for a subscriber that falls 1024 behind for 100 ms, so a container
 * can die unheard; this bounds how long a task stays RUNNING after that.
 * Takes effect at once on a started engine (SIGHUP). */
void ag_engine_set_reconcile_interval(ag_engine *e, uint64_t ms);
uint64_t ag_engine_reconcile_interval(const ag_engine *e);

/* Loads the persisted tasks; does not touch Docker yet. 0 or -errno. */
int ag_engine_create(const ag_engine_config *cfg, ag_engine **out);
/* Starts following Docker (events, then a reconciling list). */
int ag_engine_start(ag_engine *e);
/* Stops following Docker and every timer; tasks keep running (a restarted
 * agent adopts them). done(arg) runs once the engine's handle is closed.
 * The engine's memory goes once the Docker and resolver calls still in
 * flight have ended: close or free those clients after this call (their
 * cancellation ends the calls). */
void ag_engine_close(ag_engine *e, void (*done)(void *arg), void *arg);

typedef struct ag_run_request {
    ag_taskdef *td;          /* the engine takes ownership (freed with the tasks) */
    ag_overrides *overrides; /* taken too; may be NULL */
    int count;               /* 1..AG_ENGINE_RUN_MAX */
    const char *started_by;  /* may be NULL */
    const char *group;       /* may be NULL: "family:<family>" */
    const char *launch_type; /* may be NULL: "EC2" */
    /* the tasks' IDs (count of them), as the cluster's leader chose them;
     * NULL: new ones */
    const char *const *task_ids;
} ag_run_request;

/* Creates count tasks in PROVISIONING and starts launching them. On success
 * tasks[0..count) point at the engine's tasks (valid until the next engine
 * call that may remove tasks; write their JSON right away). On failure the
 * request's td/overrides are still freed. 0, -ENOMEM, -ENOSPC (too many
 * tasks), -EIO (store). */
int ag_engine_run_task(ag_engine *e, ag_run_request *req, ag_task **tasks);

/* Containers Docker's own clients create and start through the agent's
 * Docker socket (agent/intake/docker.h) are tasks too, but the engine does
 * not launch them: their definition is registered under this reserved
 * family (the ECS API refuses to register it), which is also how the engine
 * knows such a task after a restart. The engine follows them as it follows
 * its own (events, reconciling lists): PENDING until Docker starts the
 * container, RUNNING, STOPPED when it exits or is removed; it never removes
 * their containers (`docker rm` is their owner's). */
#define AG_ENGINE_DOCKER_FAMILY "ecs-secrets-docker"
/* A container the client never created (dockerd refused the create, the
 * client went away) leaves its task PENDING without a container: after this
 * long the task is STOPPED (TaskFailedToStart). */
#define AG_ENGINE_ADOPT_WAIT_S 120

typedef struct ag_adopt_request {
    ag_taskdef *td;           /* taken (freed with the task); registered: family
                                 AG_ENGINE_DOCKER_FAMILY, one container */
    const char *image;        /* the client's Image */
    const char *started_by;   /* "docker:<uid>" */
    const char *group;        /* "compose:<project>" or NULL */
    const ag_resolution *res; /* its secrets' metadata is recorded, never a value */
} ag_adopt_request;

/* A task for a container the client is about to create: PENDING, its
 * secrets' metadata recorded, its container not yet known (the create
 * event, or a reconciling list, finds it by its task-ARN label). *out valid
 * as for ag_engine_run_task. 0, -ENOMEM, -ENOSPC, -EIO. On failure td is
 * still freed. */
int ag_engine_adopt(ag_engine *e, ag_adopt_request *req, ag_task **out);
/* Is t a task of the agent's Docker socket (not launched by the engine)? */
bool ag_engine_task_external(const ag_task *t);

/* A container's bind mounts of its secret files (agent/tasks/task_files.c). */
typedef struct ag_eng_mounts {
    dk_mount *m;
    size_t n;
    char *paths; /* the sources and targets m points into */
} ag_eng_mounts;
void ag_eng_mounts_free(ag_eng_mounts *m);

/* The secret files of an adopted task's container (its definition's
 * frozen ecs-secrets.file.* labels), written from res under
 * <files_dir>/docker/<task id>/ before the client's create goes on, and the
 * bind mounts the create must carry (*out; empty when it has no file). The
 * directory follows the container, not the task: a socket container outlives
 * its task (`docker start` makes a new one), so the files stay until Docker
 * removes the container (its destroy event, or a reconciling list that no
 * longer shows it), or at once when the task stops before its container
 * appeared. 0, or <0 with reason (the task's stoppedReason, ECS-shaped). */
int ag_engine_adopt_files(ag_engine *e, const char *task, const ag_resolution *res,
                          ag_eng_mounts *out, char *reason, size_t rlen);

/* Asks a task to stop (desiredStatus STOPPED, the given code and reason).
 * A task already STOPPED is answered as it is. -ENOENT for an unknown task
 * (ARN or bare id). */
int ag_engine_stop_task(ag_engine *e, const char *task, ag_stop_code code, const char *reason,
                        ag_task **out);

/* A task by ARN or id; NULL when unknown. */
ag_task *ag_engine_find_task(ag_engine *e, const char *task);

/* Visits the tasks (newest first); stops when fn answers non-zero. */
typedef int (*ag_engine_task_fn)(void *arg, ag_task *t);
void ag_engine_foreach_task(ag_engine *e, ag_engine_task_fn fn, void *arg);

typedef struct ag_engine_counts {
    size_t by_status[AG_TASK_STATUS_COUNT];
    size_t running_containers;
} ag_engine_counts;
void ag_engine_get_counts(const ag_engine *e, ag_engine_counts *out);

/* After a drift round (agent/secrets/drift.h): every RUNNING task holding a
 * stale secret as a `refresh` file (agent/tasks/td_files.h) gets the new
 * value resolved with its execution role and swapped into the file; the
 * secret is then recorded as current. Env and frozen files keep theirs. */
void ag_engine_refresh_files(ag_engine *e);

/* The agent's own variables for a container's Env (the container endpoints,
 * agent/endpoints/endpoints.h): fn fills env for container i of t (whose
 * definition is td) just before its create, or answers < 0 with why, which
 * fails the launch (CannotCreateContainerError). The values may be secret
 * (a token): the engine wipes env after the create. */
#define AG_ENGINE_ENV_MAX 4
#define AG_ENGINE_ENV_LEN 512
typedef struct ag_engine_env {
    char v[AG_ENGINE_ENV_MAX][AG_ENGINE_ENV_LEN]; /* "NAME=value" */
    size_t n;
    /* an awslogs container of a task with an execution role: the value of
     * its awslogs-credentials-endpoint (agent/tasks/td_awslogs.h); "" none */
    char log_credentials_uri[AG_ENGINE_ENV_LEN];
} ag_engine_env;
typedef int (*ag_engine_env_fn)(void *arg, const ag_task *t, const ag_taskdef *td, size_t i,
                                ag_engine_env *env, char *why, size_t whylen);
void ag_engine_set_env_hook(ag_engine *e, ag_engine_env_fn fn, void *arg);
/* A check of a task launched by RunTask (or a service) before its secrets
 * are resolved (the container endpoints: can the task reach them, may its
 * task role be assumed for it): < 0 with why fails the launch
 * (ResourceInitializationError: why) before any credential is asked for. */
typedef int (*ag_engine_check_fn)(void *arg, const ag_task *t, const ag_taskdef *td, char *why,
                                  size_t whylen);
void ag_engine_set_launch_check(ag_engine *e, ag_engine_check_fn fn, void *arg);
/* The definition a task runs (NULL when unknown: the revision left the
 * store); valid as the task is. */
const ag_taskdef *ag_engine_task_def(ag_engine *e, const ag_task *t);
/* Observers: called after every lastStatus change (services use it). */
typedef void (*ag_engine_observer)(void *arg, ag_task *t, ag_task_status from);
int ag_engine_observe(ag_engine *e, ag_engine_observer fn, void *arg);
/* Removes an observer (a part closing before the engine). */
void ag_engine_unobserve(ag_engine *e, ag_engine_observer fn, void *arg);

#endif
