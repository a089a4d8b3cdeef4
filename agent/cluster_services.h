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

#endif
