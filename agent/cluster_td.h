/* cluster_td.h - the cluster's task definitions (cluster/taskdefs.h) wired
 * to this agent, when it is in a cluster:
 *
 *   - the ECS API's RegisterTaskDefinition and DeregisterTaskDefinition go
 *     to etcd (ag_api_td_share): a registration takes the next free
 *     revision in a transaction, and what etcd holds then is put into the
 *     store before the call is answered;
 *   - every revision in etcd is mirrored into the store (a read of the
 *     taskdefs/ prefix, then its watch: cluster/mirror.h), so that
 *     Describe/ListTaskDefinitions, RunTask and services on any agent see
 *     the definitions registered through any other, as they see their own.
 *
 * The store stays the one place the agent reads task definitions from;
 * etcd is where they are written. A revision whose value cannot be read,
 * or whose body the task-definition reader refuses, is skipped and logged
 * (never its body). Alone (no etcd) nothing changes: no share is set. */
#ifndef AG_CLUSTER_TD_H
#define AG_CLUSTER_TD_H

#include "agent/api/api.h"
#include "agent/store/store.h"
#include "cluster/member.h"

typedef struct ag_cluster_td ag_cluster_td;

/* Alone: 0 and *out NULL. Else 0, or -ENOMEM / -ENOSPC / the mirror's
 * error (*out may be set then too). The member, the store and the API must
 * outlive it (free it once the member has closed: the mirror's callbacks
 * end with it). */
int ag_cluster_td_start(cl_member *member, ag_store *store, ag_api *api, ag_cluster_td **out);
void ag_cluster_td_free(ag_cluster_td *x);

typedef struct ag_cluster_td_stats {
    unsigned long mirrored, bad, registered, deregistered, conflicts;
} ag_cluster_td_stats;
void ag_cluster_td_get_stats(const ag_cluster_td *x, ag_cluster_td_stats *out);

#endif
