/* election.h - one leader among the cluster's agents, through etcd.
 *
 * The election key (/ecs-secrets/clusters/<cluster>/leader) holds the
 * leader's instance ID and lives under the leader's lease (the member's:
 * the lease its instance record lives under, kept alive from the loop). A
 * candidate writes it in a transaction that holds only while the key does
 * not exist (create_revision == 0), so at most one agent writes it per
 * life of the key; the others read the winner from the failed compare.
 * Every agent watches the key: a PUT names the leader, a DELETE (the
 * leader's lease expired or was revoked, the leader stopped) sends every
 * candidate with a lease back to the transaction, and the first to commit
 * leads. A new leader therefore follows within the old lease's TTL plus a
 * watch delivery and one transaction.
 *
 * The member hands the lease over (cl_election_set_lease) when it has
 * registered, and takes it back (0) when the lease is lost or has not been
 * renewed for a whole TTL: an agent never claims to lead on a lease it
 * cannot vouch for. A watch that ends is resynced (a read, then a watch
 * from the revision after it) after retry_ms; a failed transaction is tried
 * again after retry_ms.
 *
 * Uses an etcd client it does not own: close the election (which cancels
 * its watch and its timer) before the client, and free it only once the
 * client has reported closed (every callback has run by then). A library:
 * changes are reported to callbacks, never logged. */
#ifndef ES_CLUSTER_ELECTION_H
#define ES_CLUSTER_ELECTION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/etcd.h"
#include "cluster/instance.h"

typedef struct cl_election cl_election;

typedef struct cl_election_config {
    uv_loop_t *loop;
    cl_etcd *etcd;   /* borrowed */
    const char *key; /* the election key (copied) */
    const char *id;  /* this candidate's instance ID (copied) */
    uint64_t retry_ms;
    /* the leader changed (leader_id "" : none known), or whether we lead */
    void (*on_change)(void *arg, bool leading, const char *leader_id);
    void (*on_error)(void *arg, const char *detail); /* a failed call, retried */
    void *arg;
} cl_election_config;

typedef struct cl_election_stats {
    unsigned long campaigns, /* transactions sent */
        won,                 /* times this candidate became the leader */
        leader_changes;      /* times a different leader was seen */
} cl_election_stats;

/* Starts watching the key (no campaign until a lease is set). 0, -EINVAL, -ENOMEM. */
int cl_election_start(const cl_election_config *cfg, cl_election **out);
/* The lease to campaign with; 0: none (stops leading at once). */
void cl_election_set_lease(cl_election *e, int64_t lease);
/* Stops: no call is started after this; the watch is cancelled. */
void cl_election_stop(cl_election *e);
/* After cl_election_stop, once the etcd client has closed: frees e when its
 * timer is closed, then done(arg). NULL-safe. */
void cl_election_free(cl_election *e, void (*done)(void *arg), void *arg);

bool cl_election_leading(const cl_election *e);
/* The leader's instance ID; "" when none is known. */
const char *cl_election_leader(const cl_election *e);
/* The revision at which the key was last seen gone: its DELETE event's, or
 * the revision of a read that found no key; 0 before either. */
int64_t cl_election_vacant_revision(const cl_election *e);
void cl_election_get_stats(const cl_election *e, cl_election_stats *out);

#endif
