/* service.h - an ECS service on one host: the model (pure data, its
 * arithmetic and its wording; agent/services/scheduler.h keeps desiredCount
 * tasks RUNNING, persists and logs).
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
 * The model functions are pure (unit-tested arithmetic and wording); they
 * know no store and no engine. No secret value is ever in a service. */
#ifndef AG_SERVICES_SERVICE_H
#define AG_SERVICES_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/tasks/tags.h"
#include "cluster/tasks.h" /* the placement's texts */
#include "common/buf.h"
#include "common/json.h"

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

/* placementStrategy and placementConstraints as CreateService was given
 * them (checked by cluster/placement.c's parsers there): the cluster's
 * leader places the service's tasks by them. Alone (one instance) they
 * change nothing, and agent.db does not keep them. */
typedef struct ag_svc_placement {
    cl_tk_strategy_text strategies[CL_PL_STRATEGIES_MAX];
    size_t n_strategies;
    cl_tk_constraint_text constraints[CL_PL_CONSTRAINTS_MAX];
    size_t n_constraints;
} ag_svc_placement;

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
    /* drift, from what agent/secrets/drift.c marked on the tasks (memory only) */
    int stale_tasks;
    char *drift_sig;     /* what the last drift event said, to say it once */
    int64_t inactive_at; /* when it went INACTIVE (stored; 0: not INACTIVE, or not yet known) */
    /* its ECS tags (stored in the store's tag table, under its ARN) and
     * what they say of redeploy on rotation (agent/services/redeploy.h) */
    ag_tags tags;
    bool redeploy;
    int64_t redeploy_min_interval_s;
    int64_t redeployed_at;       /* the last automatic deployment (stored; 0: none) */
    int64_t redeploy_told;       /* the TOO_SOON event said for this wait's end (memory only) */
    ag_svc_placement *placement; /* NULL: none given */
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

/* The one transition of a deployment's rolloutState: IN_PROGRESS ->
 * COMPLETED or FAILED, and COMPLETED -> IN_PROGRESS again when a rollback
 * makes it the target; anything else is refused (logged). Logged old -> new. */
void ag_service_set_rollout(const ag_service *v, ag_svc_deployment *d, ag_rollout to, int64_t now);
/* The rollout's reason, cut to AG_SVC_EVENT_MAX. 0 or -ENOMEM. */
int ag_service_set_reason(ag_svc_deployment *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The one transition of a service's status: ACTIVE -> DRAINING (deleted) ->
 * INACTIVE (the retention starts at now); anything else is refused (logged).
 * Logged old -> new. */
void ag_service_set_status(ag_service *v, ag_svc_status to, int64_t now);
/* Sets (a copy of p) or clears (p NULL, or nothing in it) v's placement.
 * 0 or -ENOMEM (v unchanged). */
int ag_service_set_placement(ag_service *v, const ag_svc_placement *p);
/* Forgets deployment i (its tasks are gone). */
void ag_service_drop_deployment(ag_service *v, size_t i);

const char *ag_svc_status_name(ag_svc_status s);
const char *ag_dep_status_name(ag_dep_status s);
const char *ag_rollout_name(ag_rollout r);
int ag_svc_status_parse(const char *s, ag_svc_status *out);
int ag_rollout_parse(const char *s, ag_rollout *out);

/* The DescribeServices "Service" object, plus our extra fields
 * ("staleTasks", and per deployment "staleTasks"); "tags" when with_tags
 * (include TAGS, CreateService); placementStrategy and
 * placementConstraints when it has them. */
void ag_service_write_json(const ag_service *s, bool with_tags, es_jw *w);

#endif
