/* cluster_services.h - services across the cluster (issue 23): what an
 * agent's service model (agent/services/service.h) and scheduler
 * (agent/services/scheduler.h) are in etcd's records.
 *
 * This first part is pure: a service to its services/<name> record and
 * back (cluster/services.h), and a task of the cluster (its tasks/ record,
 * its assignments/ record, a stops/ record) as the scheduler's census
 * counts it. The leader's scheduler ops (the census from the tasks/ and
 * assignments/ mirrors, launch through its placement, stop through stops/,
 * persist to services/) build on them; see docs/ARCHITECTURE.md "Services
 * across the cluster". */
#ifndef AG_CLUSTER_SERVICES_H
#define AG_CLUSTER_SERVICES_H

#include "agent/services/scheduler.h"
#include "agent/services/service.h"
#include "cluster/services.h"
#include "cluster/tasks.h"

/* v into rec: its configuration, placement, tags, deployments and its
 * newest CL_SV_EVENTS_MAX events (a rollout reason or an event longer than
 * the record takes is cut). rec->mod_revision is left as it was. 0, or
 * -EINVAL (a field the record's rules refuse: cannot happen for a service
 * the scheduler made). */
int ag_csvc_to_record(const ag_service *v, cl_sv_record *rec);

/* A new service from rec, in region/account/cluster (its ARN made from
 * them). Memory-only fields (counts, steadiness, drift) start empty, as
 * after an agent's restart; the tags go through the agent's tag rules and
 * the redeploy policy is read from them. 0, -EINVAL (a tag the agent's
 * rules refuse, or a deployment the model cannot hold), -ENOMEM. */
int ag_csvc_from_record(const cl_sv_record *rec, const char *region, const char *account,
                        const char *cluster, ag_service **out);

/* One task of the cluster as the census counts it. st: its tasks/ record
 * (NULL: none yet, an assignment not launched: PROVISIONING); as: its
 * assignment (NULL: gone, the task is STOPPED or on its way); stop_asked: a
 * stops/ record exists (desired STOPPED). arn: the task's ARN (the
 * caller's, kept by out). One of st and as is needed; -EINVAL otherwise, or
 * when a status or stop code is not ECS's. */
int ag_csvc_task_view(const cl_tk_status *st, const cl_tk_assignment *as, bool stop_asked,
                      const char *arn, ag_svc_task *out);

/* A service whose tasks fit nowhere is not asked for again every pass
 * (each ask a request, a placement transaction and a result in etcd, every
 * second, for as long as nothing fits): after a placement that placed none
 * of its tasks the leader waits AG_CSVC_BACKOFF_MIN_MS, doubling up to
 * AG_CSVC_BACKOFF_MAX_MS, unless the capacity generation moved
 * (ag_cluster_tasks_capacity_gen: an instance joined or changed, a
 * reservation was freed), and a placement that placed one task ends it. */
#define AG_CSVC_UPDATE_TRIES 5 /* an UpdateService applied again after lost races */
#define AG_CSVC_BACKOFF_MIN_MS 2000
#define AG_CSVC_BACKOFF_MAX_MS 60000
typedef struct ag_csvc_backoff {
    uint64_t delay_ms; /* 0: none */
    uint64_t until_ms; /* no ask before this (uv_now) */
    uint64_t gen;      /* the capacity generation when nothing fitted */
} ag_csvc_backoff;
/* Whether the service's launch waits now. */
bool ag_csvc_backoff_holds(const ag_csvc_backoff *b, uint64_t now_ms, uint64_t gen);
/* A placement of the service's tasks placed n_placed and failed n_failed. */
void ag_csvc_backoff_placed(ag_csvc_backoff *b, size_t n_placed, size_t n_failed, uint64_t now_ms,
                            uint64_t gen);

/* ---- the runtime: the scheduler's cluster ops ---- */

#include <uv.h>

#include "agent/api/services.h"
#include "agent/cluster_tasks.h"
#include "agent/store/store.h"
#include "cluster/member.h"

typedef struct ag_cluster_services ag_cluster_services;

/* Alone (tasks NULL): 0 and *out NULL. Else the scheduler's ops become the
 * cluster's (the leader acts, every agent mirrors services/ and counts),
 * the API's writes answer once etcd holds them. 0 or < 0 (*out may be set:
 * free it as below). Stop it before the scheduler closes; free it once the
 * member has closed (the mirror's callbacks end with it). */
int ag_cluster_services_start(uv_loop_t *loop, cl_member *member, ag_cluster_tasks *tasks,
                              ag_svc_sched *sched, ag_store *store, ag_api *api,
                              ag_api_services *api_services, ag_cluster_services **out);
/* Answers the API calls still waiting (ServerException); no write and no
 * scheduler call from here. NULL-safe. */
void ag_cluster_services_stop(ag_cluster_services *x);
void ag_cluster_services_free(ag_cluster_services *x);

typedef struct ag_cluster_services_stats {
    unsigned long writes, conflicts, write_errors, adopted, dropped, bad, requests, stops,
        backoffs,  /* launches held back: nothing fitted, nothing changed */
        reapplied; /* UpdateService calls applied again after a lost race */
} ag_cluster_services_stats;
void ag_cluster_services_get_stats(const ag_cluster_services *x, ag_cluster_services_stats *out);

#endif
