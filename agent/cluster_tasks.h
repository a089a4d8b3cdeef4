/* cluster_tasks.h - RunTask across the cluster's hosts (issue 23), wired to
 * this agent when it is in a cluster (records: cluster/tasks.h):
 *
 *   - RunTask on any agent (agent/api/tasks.c, after its authorisation and
 *     checks) writes requests/<id>; the agent waits for results/<id>
 *     (AG_CLUSTER_RUN_WAIT_MS at most) and answers with ECS's shape;
 *   - the leader follows requests/, places each with cl_pl_place over the
 *     member's view (CPU and memory left: the instance's less its live
 *     assignments'), and writes the assignments, the result and the
 *     request's deletion in one transaction on the request's mod_revision
 *     (so a request is placed once, even across a change of leader);
 *   - every agent follows assignments/ and launches its own instance's with
 *     the engine (the task's ID as placed), writes tasks/<id> at every
 *     lastStatus change, and at STOPPED deletes its assignment (freeing
 *     the reservation) and the task's stop, if any;
 *   - the leader marks the tasks of an instance gone from the view (its lease
 *     expired) STOPPED, TerminationNotice, and deletes their assignments, in
 *     transactions on the records' mod_revision; the owner writes only while
 *     its assignment exists (create_revision compared), and stops a task the
 *     cluster took from it when it comes back;
 *   - DescribeTasks, ListTasks and StopTask answer for the whole cluster
 *     from tasks/ (StopTask of another host's task writes stops/<id>; the
 *     owner stops the task).
 *
 * Alone (no etcd) nothing is set and the API runs tasks here as before. */
#ifndef AG_CLUSTER_TASKS_H
#define AG_CLUSTER_TASKS_H

#include "agent/api/api.h"
#include "agent/api/tasks.h"
#include "agent/store/store.h"
#include "agent/tasks/engine.h"
#include "cluster/member.h"

#define AG_CLUSTER_RUN_WAIT_MS 20000 /* a RunTask waits this long for the leader */
#define AG_CLUSTER_TICK_MS 500       /* retries: placements, launches, waits' deadlines */
#define AG_CLUSTER_TASKS_MAX 10000   /* tasks, assignments, requests each, kept in memory */
/* An instance out of the leader's view this long is lost (its lease
 * expired): its tasks are marked STOPPED. A margin over the watches' lag:
 * a view and the assignments' mirror are two streams. */
#define AG_CLUSTER_LOST_GRACE_MS 2000

typedef struct ag_cluster_tasks ag_cluster_tasks;

/* Alone: 0 and *out NULL. Else 0 or < 0 (*out may be set then too: free it
 * as below). member, engine, store, api and tasks must outlive it; call
 * ag_cluster_tasks_stop before the engine closes, and free it once the
 * member has closed (the mirrors' callbacks end with it). */
int ag_cluster_tasks_start(uv_loop_t *loop, cl_member *member, ag_engine *engine, ag_store *store,
                           ag_api *api, ag_api_tasks *tasks, ag_cluster_tasks **out);
/* Answers the RunTasks still waiting (ServerException), stops launching
 * and observing. NULL-safe. */
void ag_cluster_tasks_stop(ag_cluster_tasks *x);
/* After the stop: frees x once its timer is closed. NULL-safe. */
void ag_cluster_tasks_free(ag_cluster_tasks *x);

/* ---- for the services across the cluster (agent/cluster_services.c) ---- */

/* One task of a group as the cluster knows it: its tasks/ record (st, NULL:
 * none yet), its assignment (as, NULL: gone: STOPPED or on its way), a
 * stops/ record for it (stop_asked), its ARN; or a request not placed yet
 * (rq: rq->count tasks to come; st and as NULL, arn NULL). Valid during
 * the callback. */
typedef struct ag_cluster_task_ref {
    const cl_tk_status *st;
    const cl_tk_assignment *as;
    const cl_tk_request *rq;
    bool stop_asked;
    const char *arn;
} ag_cluster_task_ref;
typedef int (*ag_cluster_task_fn)(void *arg, const ag_cluster_task_ref *t); /* non-zero: stop */
/* Every task and pending request of group, from the mirrors (and what this
 * agent wrote and the mirror has not brought back yet). */
void ag_cluster_tasks_foreach_group(ag_cluster_tasks *x, const char *group, ag_cluster_task_fn fn,
                                    void *arg);
/* Asks the leader to place rq (its id and from are set here): requests/<id>
 * is written with no RunTask waiting (its result is deleted when it comes),
 * and counted by foreach_group at once. 0, -ECANCELED (not in the cluster
 * now), -EINVAL, -ENOMEM. */
int ag_cluster_tasks_request(ag_cluster_tasks *x, cl_tk_request *rq);
/* Asks the owner to stop task_id (stops/<id>) with code and reason (the
 * owner stops it with them), counted by foreach_group at once. 0, -ENOENT
 * (not the cluster's), -ECANCELED, -EINVAL, -ENOMEM. */
int ag_cluster_tasks_stop_task(ag_cluster_tasks *x, const char *task_id, ag_stop_code code,
                               const char *reason);
bool ag_cluster_tasks_is_leader(const ag_cluster_tasks *x);
/* Changes whenever the cluster's free capacity may have grown: a
 * reservation freed (an assignment gone), or the view changed (an
 * instance joined, or came back ACTIVE). A service whose tasks fit nowhere
 * asks again at once when it moves (agent/cluster_services.c). */
uint64_t ag_cluster_tasks_capacity_gen(const ag_cluster_tasks *x);
/* STOPPED tasks' records are deleted by the leader this long after their
 * stoppedAt (ECS_SECRETS_CLUSTER_STOPPED_TTL; 0: kept). NULL-safe. */
void ag_cluster_tasks_set_stopped_keep(ag_cluster_tasks *x, int64_t seconds);
/* Told, on the leader, once etcd holds a placement it wrote: the tasks
 * placed (their IDs) and how many it could not place (cl_pl_reason_name's
 * reason): a service says both in its events. One listener. */
typedef void (*ag_cluster_placed_fn)(void *arg, const char *group, const char *started_by,
                                     const char *const *task_ids, size_t n_placed, size_t n_failed,
                                     const char *reason);
void ag_cluster_tasks_on_placed(ag_cluster_tasks *x, ag_cluster_placed_fn fn, void *arg);

typedef struct ag_cluster_tasks_stats {
    unsigned long requests, placed, unplaced, place_conflicts, launched, launch_failures,
        status_writes, stops, bad, lost_marked, lost_conflicts, lost_stopped, batches,
        batched_requests, /* the leader's placement transactions, their requests */
        expired,          /* STOPPED records the leader deleted for their age */
        too_large;        /* RunTasks refused here: their placement fits no transaction */
} ag_cluster_tasks_stats;
void ag_cluster_tasks_get_stats(const ag_cluster_tasks *x, ag_cluster_tasks_stats *out);

#endif
