/* instances.h - the ECS API's container-instance operations (issue 23):
 *
 *   ListContainerInstances          cluster, status, filter (the cluster
 *                                   query language: cluster/placement.h),
 *                                   maxResults, nextToken
 *                                   -> containerInstanceArns (ID order)
 *   DescribeContainerInstances      cluster, containerInstances[] (IDs or
 *                                   ARNs), include -> containerInstances,
 *                                   failures (MISSING)
 *   UpdateContainerInstancesState   cluster, containerInstances[] (1..10),
 *                                   status ACTIVE|DRAINING ->
 *                                   containerInstances, failures
 *
 * The instances are the cluster member's view (cluster/member.h): with etcd
 * the cluster's instances as registered there, answered from the watched
 * view; alone, this host as the one instance. A status change goes to etcd
 * (a transaction on the record's revision) and is answered once written
 * (a deferred answer), or, alone, applied at once. Authorised as ECS does:
 * ecs:ListContainerInstances on the cluster's ARN;
 * ecs:DescribeContainerInstances and ecs:UpdateContainerInstancesState on
 * each instance's ARN with ecs:cluster. DescribeClusters'
 * registeredContainerInstancesCount is the view's size. */
#ifndef AG_API_INSTANCES_H
#define AG_API_INSTANCES_H

#include "agent/api/api.h"
#include "cluster/member.h"

#define AG_API_UPDATE_INSTANCES_MAX 10 /* UpdateContainerInstancesState's, ECS's */
/* the ports ECS reserves on every container instance (registeredResources PORTS) */
#define AG_API_RESERVED_PORTS                                                                      \
    {                                                                                              \
        "22", "2375", "2376", "51678", "51679"                                                     \
    }

/* the attribute that marks the cluster's elected leader */
#define AG_API_LEADER_ATTR "ecs-secrets.cluster-leader"

typedef struct ag_api_instances ag_api_instances;

/* Adds the three operations and the instance count. member is borrowed and
 * must outlive the API's listener. 0, -ENOMEM, -ENOSPC. */
int ag_api_instances_attach(ag_api *api, cl_member *member, ag_api_instances **out);
void ag_api_instances_free(ag_api_instances *x);

/* The ECS shape of one instance (an object), as the three operations write
 * it; tasks: this host's counts when in is this host, else NULL; leader:
 * in leads the cluster (the attribute AG_API_LEADER_ATTR = "true" is added,
 * made at answer time from the election, never stored in the record). */
void ag_api_write_instance(es_jw *w, const cl_instance *in, const size_t *tasks, bool leader);

#endif
