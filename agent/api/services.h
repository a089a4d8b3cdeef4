/* services.h - the ECS API's service operations over the scheduler
 * (agent/services/service.h).
 *
 *   CreateService     serviceName, taskDefinition (family, family:rev, ARN),
 *                     desiredCount (0..1000), placementStrategy,
 *                     placementConstraints (RunTask's rules; the cluster's
 *                     leader places by them), deploymentConfiguration
 *                     {maximumPercent, minimumHealthyPercent,
 *                     deploymentCircuitBreaker {enable, rollback}},
 *                     launchType (EC2 / EXTERNAL), schedulingStrategy REPLICA
 *                     -> service
 *   UpdateService     service (name or ARN), taskDefinition, desiredCount,
 *                     deploymentConfiguration, forceNewDeployment -> service
 *   DescribeServices  services[] 1..10 -> services[], failures[] (MISSING)
 *   DeleteService     service, force -> service (DRAINING, then INACTIVE)
 *   ListServices      maxResults (1..100, default 10), nextToken ->
 *                     serviceArns (ACTIVE and DRAINING ones)
 *
 * Errors as ECS words them: ServiceNotFoundException "Service not found.",
 * ServiceNotActiveException "Service was not ACTIVE.",
 * InvalidParameterException "Creation of service was not idempotent.", and
 * "The service cannot be stopped while it is scaled above 0." (DeleteService
 * without force).
 *
 * DescribeServices answers ECS's Service shape (deployments[] with
 * rolloutState, events[] newest first) plus "staleTasks": the service's
 * tasks that hold a rotated secret value (agent/secrets/drift.h). include
 * ["DRIFT"] (ours; ECS knows only TAGS) also starts a drift check on
 * demand: the answer shows the last completed round, the next describe the
 * new one (a handler answers synchronously).
 */
#ifndef AG_API_SERVICES_H
#define AG_API_SERVICES_H

#include "agent/api/api.h"
#include "agent/secrets/drift.h"
#include "agent/services/scheduler.h"

#define AG_API_SERVICES_DESCRIBE_MAX 10 /* DescribeServices.services, ECS's */

typedef struct ag_api_services ag_api_services;

/* Adds the service operations to api. sched (and drift, which may be NULL)
 * must outlive the returned object. 0, -ENOMEM, -ENOSPC. */
int ag_api_services_attach(ag_api *api, ag_svc_sched *sched, ag_drift *drift,
                           ag_api_services **out);
void ag_api_services_free(ag_api_services *s);

/* In a cluster (agent/cluster_services.c): Create/Update/DeleteService
 * answer once etcd holds the change. after_write takes the call's reply
 * (which service, whether the answer shows its tags, whether it was a
 * creation) and answers it then; 0, or < 0 (the reply is still the
 * caller's: ServerException). Alone nothing is set and the answer is at
 * once (agent.db is written synchronously). */
/* A call the cluster applies again to the record etcd holds now when
 * another agent's write won the race, and writes that, as ECS takes two
 * calls at once: an UpdateService's change (ag_svc_update; its strings live
 * only for the call), or a DeleteService (ag_svc_delete with its force). */
typedef struct ag_api_services_redo {
    const ag_svc_update_req *update; /* an UpdateService; NULL: not one */
    bool deletion, force;            /* a DeleteService, and its force */
} ag_api_services_redo;
typedef struct ag_api_services_cluster {
    /* redo: NULL for a CreateService (a lost race refuses it) */
    int (*after_write)(void *arg, const char *name, bool with_tags, bool creation,
                       const ag_api_services_redo *redo, aw_listener_reply *reply);
    void *arg;
} ag_api_services_cluster;
/* ECS's error code for an ag_svc_* failure (rc, and its message err). */
const char *ag_api_services_error_code(int rc, const char *err);
void ag_api_services_set_cluster(ag_api_services *s, const ag_api_services_cluster *c);

#endif
