/* service.h - ECS services on one host: the model, its persistence shape,
 * and the scheduler that keeps desiredCount tasks RUNNING.
 *
 * Model (ECS's Service, as DescribeServices answers it):
 *   name, ARN arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME, status
 *   ACTIVE / DRAINING / INACTIVE, desiredCount, taskDefinition family:rev,
 *   deploymentConfiguration {maximumPercent (default 200),
 *   minimumHealthyPercent (default 100), deploymentCircuitBreaker {enable,
 *   rollback}}, deployments[] (deps[0] is the PRIMARY one, the rest ACTIVE:
 *   older deployments still holding tasks) and events[] (newest first, at
 *   most AG_SVC_EVENTS_MAX, worded as ECS words them).
 *
 * Tasks belong to a deployment by startedBy = the deployment's id
 * ("ecs-svc/<19 digits>", as ECS does) and carry group "service:<name>".
 * Counts (running, pending, failed) are recomputed from the engine's tasks
 * on every scheduler pass, so nothing but the service record itself needs
 * persisting: an agent restarted mid-deployment reloads the services, the
 * engine reloads the tasks, and the next pass carries on.
 *
 * Scheduler pass (one per tick, and soon after any task's lastStatus
 * changes; the engine observer only marks the scheduler dirty, so no
 * engine call re-enters it):
 *   upper = floor(desired * maximumPercent / 100)   RUNNING + PENDING at most
 *   lower = ceil(desired * minimumHealthyPercent / 100)  RUNNING at least
 *   - older deployments' tasks are stopped first: the not yet running ones,
 *     then running ones while the RUNNING total stays >= lower;
 *   - then the primary starts min(desired - its alive tasks, upper - what
 *     stays alive) tasks (tasks being stopped do not count, as ECS counts
 *     RUNNING and PENDING tasks against maximumPercent); surplus primary
 *     tasks are stopped when desiredCount went down;
 *   - the rollout COMPLETES when the primary runs desired tasks and nothing
 *     else is alive or stopping; older deployments are then dropped.
 *   A replaced task's replacement resolves its secrets afresh (a new
 *   RunTask): this is how a rotated value reaches a service (S4). A full
 *   replacement takes at least ag_svc_waves() waves.
 * Circuit breaker (when enabled): a rollout IN_PROGRESS whose tasks failed
 *   (stopped by a launch failure or an essential exit, not by us or a user)
 *   threshold times - threshold = ceil(0.5 * desired) within [3, 200], as
 *   ECS documents - goes FAILED with the reason of the last failure, stops
 *   launching, and (rollback) starts a new deployment of the last
 *   COMPLETED task definition.
 *
 * The model functions are pure (unit-tested arithmetic and wording); the
 * scheduler logs (it is agent/). No secret value is ever in a service. */
#ifndef AG_SERVICE_H
#define AG_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/json.h"

typedef struct ag_engine ag_engine;
typedef struct ag_store ag_store;
typedef struct ag_metrics ag_metrics;

#define AG_SVC_NAME_MAX 255
#define AG_SVC_DESIRED_MAX 1000
#define AG_SVC_EVENTS_MAX 100
#define AG_SVC_EVENT_MAX 1024 /* characters of one event message */
#define AG_SVC_DEPLOYMENTS_MAX 16
#define AG_SVC_MAX 500 /* services per agent */
#define AG_SVC_DEP_ID_MAX 32
#define AG_SVC_CB_MIN 3
#define AG_SVC_CB_MAX 200

typedef enum ag_svc_status { AG_SVC_ACTIVE, AG_SVC_DRAINING, AG_SVC_INACTIVE } ag_svc_status;
typedef enum ag_dep_status { AG_DEP_PRIMARY, AG_DEP_ACTIVE, AG_DEP_INACTIVE } ag_dep_status;
typedef enum ag_rollout {
    AG_ROLLOUT_IN_PROGRESS,
    AG_ROLLOUT_COMPLETED,
    AG_ROLLOUT_FAILED
} ag_rollout;

typedef struct ag_svc_deployment {
    char id[AG_SVC_DEP_ID_MAX]; /* ecs-svc/NNNNNNNNNNNNNNNNNNN */
    ag_dep_status status;
    char *family;
    int64_t revision;
    int desired;
    /* recomputed by every pass (not persisted) */
    int running, pending, failed;
    ag_rollout rollout;
    char *rollout_reason;
    int64_t created_at, updated_at;
} ag_svc_deployment;

typedef struct ag_svc_event {
    char id[40];        /* uuid-shaped */
    int64_t created_ms; /* epoch milliseconds */
    char *message;
} ag_svc_event;

typedef struct ag_service {
    char *name, *arn, *cluster, *region, *account;
    ag_svc_status status;
    char *family; /* the service's task definition */
    int64_t revision;
    int desired;
    int max_percent, min_healthy_percent;
    bool cb_enable, cb_rollback;
    int64_t created_at;
    ag_svc_deployment deps[AG_SVC_DEPLOYMENTS_MAX]; /* [0] PRIMARY */
    size_t n_deps;
    ag_svc_event events[AG_SVC_EVENTS_MAX]; /* [0] newest */
    size_t n_events;
    bool steady; /* the last pass found it steady (the event is said once) */
    /* drift, from what agent/drift.c marked on the tasks (memory only) */
    int stale_tasks;
    char *drift_sig;     /* what the last drift event said, to say it once */
    int64_t inactive_at; /* when it went INACTIVE (stored; 0: not INACTIVE, or not yet known) */
} ag_service;

/* ---- pure model ---- */

/* A new ACTIVE service with one PRIMARY deployment of family:revision.
 * max_percent 0 / min_healthy < 0 -> ECS defaults (200 / 100). 0, -EINVAL,
 * -ENOMEM. */
int ag_service_new(const char *region, const char *account, const char *cluster, const char *name,
                   const char *family, int64_t revision, int desired, int max_percent,
                   int min_healthy, bool cb_enable, bool cb_rollback, int64_t now,
                   ag_service **out);
void ag_service_free(ag_service *s);

/* Service names: letters, digits, hyphens, underscores, 1..255. */
bool ag_service_name_ok(const char *name);
/* Checks a deployment configuration as ECS does: maximumPercent in
 * [100, 2000]... simplified: max >= 100, min in [0, 100], and a rolling
 * update must be able to move (upper > lower, or desired 0). NULL when
 * fine, else the message. */
const char *ag_service_config_error(int desired, int max_percent, int min_healthy);

/* The rolling-update bounds. */
int ag_svc_upper(int desired, int max_percent); /* floor(d * max / 100) */
int ag_svc_lower(int desired, int min_healthy); /* ceil(d * min / 100) */
/* How many waves a full replacement needs at least: ceil(d / (upper -
 * lower)), where upper - lower >= 1; 0 for d = 0. */
int ag_svc_waves(int desired, int max_percent, int min_healthy);
/* ceil(0.5 * desired) within [AG_SVC_CB_MIN, AG_SVC_CB_MAX]. */
int ag_svc_cb_threshold(int desired);

/* What one pass should do, from the counts. */
typedef struct ag_svc_plan_in {
    int desired, upper, lower;
    int new_running, new_pending; /* primary deployment, alive */
    int old_running, old_pending; /* every other deployment, alive */
    int draining;            /* asked to stop, not stopped yet (not counted: ECS counts RUNNING and
                                PENDING against maximumPercent) */
    bool primary_may_launch; /* false once the rollout FAILED */
} ag_svc_plan_in;
typedef struct ag_svc_plan {
    int start;         /* new primary tasks to launch */
    int stop_new;      /* surplus primary tasks to stop (pending first) */
    int stop_old_pend; /* old deployments' not-yet-running tasks to stop */
    int stop_old_run;  /* old deployments' running tasks to stop */
} ag_svc_plan;
void ag_svc_plan_step(const ag_svc_plan_in *in, ag_svc_plan *out);

/* Adds an event (newest first, the oldest dropped past AG_SVC_EVENTS_MAX).
 * The message is cut to AG_SVC_EVENT_MAX. 0 or -ENOMEM. */
int ag_service_event(ag_service *s, int64_t now, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "(service NAME) has started N tasks: (task ID) (task ID)." into b. */
int ag_svc_word_started(es_buf *b, const char *name, const char *const *ids, size_t n);
/* "(service NAME) has stopped N running tasks: (task ID) ...". */
int ag_svc_word_stopped(es_buf *b, const char *name, const char *const *ids, size_t n);

/* Adds a PRIMARY deployment of family:revision (the old primary becomes
 * ACTIVE). -ENOSPC past AG_SVC_DEPLOYMENTS_MAX, -ENOMEM. */
int ag_service_deploy(ag_service *s, const char *family, int64_t revision, int64_t now);
/* The circuit breaker's rollback: a new PRIMARY deployment of the most
 * recent COMPLETED deployment's task definition (deps[1..]), that one turned
 * IN_PROGRESS (not a target again until it completes), s->family/revision
 * set to it. 0; -ENOENT (none completed), -ENOSPC, -ENOMEM: s unchanged. */
int ag_service_roll_back(ag_service *s, int64_t now);

const char *ag_svc_status_name(ag_svc_status s);
const char *ag_dep_status_name(ag_dep_status s);
const char *ag_rollout_name(ag_rollout r);
int ag_svc_status_parse(const char *s, ag_svc_status *out);
int ag_rollout_parse(const char *s, ag_rollout *out);

/* The DescribeServices "Service" object, plus our extra fields
 * ("staleTasks", and per deployment "staleTasks"). */
void ag_service_write_json(const ag_service *s, es_jw *w);

/* ---- scheduler ---- */

typedef struct ag_svc_sched ag_svc_sched;

typedef struct ag_svc_sched_config {
    uv_loop_t *loop;
    ag_engine *engine;   /* borrowed */
    ag_store *store;     /* borrowed */
    ag_metrics *metrics; /* borrowed; may be NULL */
    const char *region, *account, *cluster;
    uint64_t interval_ms; /* pass interval; 0: 1000 */
    /* an INACTIVE service is forgotten (memory and store) this long after
     * the scheduler first saw it INACTIVE; 0: AG_SVC_INACTIVE_RETENTION_S */
    uint64_t inactive_retention_s;
} ag_svc_sched_config;
#define AG_SVC_INACTIVE_RETENTION_S 3600 /* ECS shows deleted services for about an hour */

/* Loads the persisted services, registers the engine observer, starts the
 * timer. 0, -ENOMEM, -EIO. */
int ag_svc_sched_create(const ag_svc_sched_config *cfg, ag_svc_sched **out);
/* Closes the timer; done(arg) once closed (then the memory is gone). */
void ag_svc_sched_close(ag_svc_sched *s, void (*done)(void *arg), void *arg);

/* API-facing calls: synchronous, answer from memory; the tasks follow on
 * the loop. Errors: -EINVAL (err says why), -EEXIST (an ACTIVE service of
 * that name), -ENOENT (no such service, or task definition), -ENOSPC,
 * -ESRCH (not ACTIVE), -ENOMEM, -EIO (store). err gets an ECS-style message (AG_SVC_ERR_MAX). */
#define AG_SVC_ERR_MAX 512
typedef struct ag_svc_create_req {
    const char *name;
    const char *family;
    int64_t revision; /* 0: latest ACTIVE */
    int desired;
    int max_percent; /* 0: 200 */
    int min_healthy; /* < 0: 100 */
    bool cb_enable, cb_rollback;
} ag_svc_create_req;
int ag_svc_create(ag_svc_sched *s, const ag_svc_create_req *req, ag_service **out, char *err,
                  size_t errlen);
typedef struct ag_svc_update_req {
    const char *name;
    const char *family; /* NULL: unchanged */
    int64_t revision;   /* with family; 0: latest ACTIVE */
    int desired;        /* < 0: unchanged */
    int max_percent;    /* 0: unchanged */
    int min_healthy;    /* < 0: unchanged */
    bool force_new_deployment;
} ag_svc_update_req;
int ag_svc_update(ag_svc_sched *s, const ag_svc_update_req *req, ag_service **out, char *err,
                  size_t errlen);
/* force: delete with tasks running (desired set to 0 and they are stopped);
 * without, desiredCount must be 0. The service becomes DRAINING, then
 * INACTIVE once its tasks have stopped. */
int ag_svc_delete(ag_svc_sched *s, const char *name, bool force, ag_service **out, char *err,
                  size_t errlen);
/* By name or ARN; NULL when unknown. INACTIVE ones are found too. */
ag_service *ag_svc_find(ag_svc_sched *s, const char *name_or_arn);
typedef int (*ag_svc_fn)(void *arg, ag_service *svc);
void ag_svc_foreach(ag_svc_sched *s, ag_svc_fn fn, void *arg);
/* Runs one pass now (tests; the timer does it otherwise). */
void ag_svc_sched_pass(ag_svc_sched *s);

#endif
