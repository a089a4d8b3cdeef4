/* scheduler.h - the service scheduler: keeps each ACTIVE service's
 * desiredCount tasks RUNNING through the engine, rolls deployments, trips
 * the circuit breaker, and persists the services (the model,
 * agent/services/service.h, knows no store).
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
 * Redeploy on rotation (agent/services/redeploy.h): a pass that finds a
 *   tagged ACTIVE service's tasks holding a rotated value (drift's marks)
 *   starts a new deployment of the same definition, as UpdateService
 *   --force-new-deployment does (new_deployment: one path), when the
 *   decision says GO; the event names the secret and its new version.
 * Circuit breaker (when enabled): a rollout IN_PROGRESS whose tasks failed
 *   (stopped by a launch failure or an essential exit, not by us or a user)
 *   threshold times - threshold = ceil(0.5 * desired) within [3, 200], as
 *   ECS documents - goes FAILED with the reason of the last failure, stops
 *   launching, and (rollback) starts a new deployment of the last
 *   COMPLETED task definition.
 *
 * The scheduler logs what it does (it is agent/); no secret value is ever
 * in a service. */
#ifndef AG_SERVICES_SCHEDULER_H
#define AG_SERVICES_SCHEDULER_H

#include <uv.h>

#include "agent/services/service.h"
#include "agent/tasks/task.h"

typedef struct ag_engine ag_engine;
typedef struct ag_store ag_store;
typedef struct ag_metrics ag_metrics;

typedef struct ag_svc_sched ag_svc_sched;

/* What the scheduler sees of one task: enough to count it for its
 * deployment (startedBy), judge a failure for the circuit breaker, and read
 * drift's marks. The pointers live only for the callback. */
typedef struct ag_svc_task {
    const char *id, *arn, *started_by, *stopped_reason;
    ag_task_status last_status, desired_status;
    ag_stop_code stop_code;
    int64_t created_at, stopped_at;
    const ag_secret_meta *secrets; /* drift's marks; none where drift does not look */
    size_t n_secrets;
    /* its instance is DRAINING (a cluster's UpdateContainerInstancesState):
     * replaced as an older deployment's task is, within maximumPercent
     * first, then stopped down to minimumHealthyPercent, as ECS drains */
    bool to_replace;
} ag_svc_task;
typedef int (*ag_svc_task_fn)(void *arg, const ag_svc_task *t); /* non-zero: stop iterating */

/* The scheduler's effects, apart from its decisions: where the tasks are
 * counted, how they are launched and stopped, where a service is kept. The
 * decisions (the census, the plan, the breaker, the rollout) are the same
 * whoever carries them out: on one agent the engine and agent.db (the
 * default, cfg.ops NULL), in a cluster the leader's placement and etcd
 * (agent/cluster_services.c). Every operation logs its own failures (only
 * it knows the detail: the store's message, etcd's answer). */
typedef struct ag_svc_ops {
    /* Every task that may belong to v (the census keeps those whose
     * startedBy names one of v's deployments). */
    void (*foreach_task)(void *ctx, const ag_service *v, ag_svc_task_fn fn, void *arg);
    /* Launches n tasks of v's deployment d (group "service:<name>",
     * startedBy d->id); the first cap IDs into ids. How many started. */
    size_t (*launch)(void *ctx, const ag_service *v, const ag_svc_deployment *d, int n,
                     char (*ids)[AG_TASK_ID_HEX + 1], size_t cap);
    /* Asks one task (by ARN) to stop, ServiceSchedulerInitiated with reason.
     * 0 when the stop was taken. */
    int (*stop)(void *ctx, const ag_service *v, const char *task_arn, const char *reason);
    /* Makes v durable, or forgets it (an INACTIVE one past its retention, or
     * replaced by a new service of its name). 0 or a negative errno. */
    int (*persist)(void *ctx, const ag_service *v);
    int (*forget)(void *ctx, const ag_service *v);
    /* Hands every kept service to fn (which owns it); stops at fn's
     * negative answer and returns it. 0 or a negative errno. */
    int (*load)(void *ctx, int (*fn)(ag_service *v, void *arg), void *arg);
    /* Whether this agent acts (launches, stops, writes, forgets) or only
     * counts: in a cluster the leader acts and the other agents count, so
     * that their DescribeServices shows the counts. NULL: always acts. */
    bool (*in_charge)(void *ctx);
    /* The launch cannot name its tasks (a cluster's leader learns them
     * when the placement is written): it fills none of ids, and the
     * "has started" event is the ops' to say then. */
    bool launch_names_nothing;
} ag_svc_ops;

typedef struct ag_svc_sched_config {
    uv_loop_t *loop;
    ag_engine *engine;     /* borrowed; NULL only with ops (tests) */
    ag_store *store;       /* borrowed: the task definitions; the services too without ops */
    const ag_svc_ops *ops; /* NULL: the engine and the store (this agent alone) */
    void *ops_ctx;
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
    const ag_tags *tags;               /* NULL: none; checked as ECS tags by the caller, the
                                          redeploy-on-rotation ones here (-EINVAL naming the tag) */
    const ag_svc_placement *placement; /* NULL: none; compiled by the caller */
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
/* Replaces a service's tags (ECS's rules checked by the caller) and its
 * redeploy-on-rotation policy (agent/services/redeploy.h), stored. 0,
 * -EINVAL (a malformed redeploy tag, named in err), -ENOMEM, -EIO: the
 * service unchanged. */
int ag_svc_set_tags(ag_svc_sched *s, ag_service *v, const ag_tags *tags, char *err, size_t errlen);
/* By name or ARN; NULL when unknown. INACTIVE ones are found too. */
ag_service *ag_svc_find(ag_svc_sched *s, const char *name_or_arn);
typedef int (*ag_svc_fn)(void *arg, ag_service *svc);
void ag_svc_foreach(ag_svc_sched *s, ag_svc_fn fn, void *arg);
/* Replaces the ops (a cluster's, once the member is up): the services in
 * memory are forgotten (the old ops' store keeps them) and the new ops'
 * load hands over theirs. 0, or the load's error. */
int ag_svc_sched_set_ops(ag_svc_sched *s, const ag_svc_ops *ops, void *ctx);
/* A service's record from elsewhere (the cluster's mirror): it replaces the
 * one of its name, whose memory-only state (steadiness, drift's last word,
 * the counts) it keeps, or joins them. Takes v. 0, or -ENOSPC (v freed). */
int ag_svc_sched_adopt(ag_svc_sched *s, ag_service *v);
/* Forgets the services of that name (their record is gone). */
void ag_svc_sched_drop(ag_svc_sched *s, const char *name);
/* A pass on the loop's next turn rather than at the next tick (a cluster's
 * new leader carries the deployments on at once). NULL-safe. */
void ag_svc_sched_soon(ag_svc_sched *s);
/* Runs one pass now (tests; the timer does it otherwise). */
void ag_svc_sched_pass(ag_svc_sched *s);

#endif
