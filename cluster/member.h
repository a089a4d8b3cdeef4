/* member.h - this agent as a member of its cluster: its container instance
 * registered in etcd under a lease kept alive from the loop, and a view of
 * every instance of the cluster kept current by a watch.
 *
 * With etcd: read the instance's record (a restart within the old lease's
 * TTL finds it: its status and registeredAt are kept), grant a lease (the
 * configured TTL less etcd's own part, cl_member_asked_ttl; etcd's answer
 * is the TTL used from then on), put the record under it, then keep the
 * lease alive every granted TTL/3 (cl_member_keepalive_ms). A leader whose
 * renewals fail steps down cl_member_lead_ms after sending the last one
 * that succeeded, before etcd could expire the lease. A keepalive that says the lease is gone (TTL
 * 0, lease not found) means the instance was dropped from the cluster: grant a new lease and
 * register again (same ID, same registeredAt, the status last seen). A keepalive no endpoint
 * answered is tried again after cl_member_retry_ms (a sixth of the TTL, at most
 * CL_MEMBER_RETRY_MS), so that several tries fit before the lease runs out and it is not lost to
 * one member's death while others live; each request's timeout is cl_member_request_ms (a quarter
 * of the TTL, at most CL_ETCD_TIMEOUT_MS), so that a silent member cannot hold a keepalive past the
 * TTL. The view: a range read of the cluster's instances, then a watch from the revision after it;
 * a watch that ends (a member gone, compaction) is resynced the same way. Stop: revoke the lease
 * (the instance is gone at once), bounded by CL_MEMBER_STOP_MS, then close.
 *
 * Without etcd the member is alone: the view is its own instance, and a
 * status change applies at once (in memory).
 *
 * Writes to another instance's record (UpdateContainerInstancesState) are
 * transactions on the record's mod_revision, retried on a concurrent change,
 * and keep the record's lease. The member also runs the cluster's election
 * (cluster/election.h) with its lease: the agent leads while the election
 * key holds its ID under that lease. A library: events are reported to a callback,
 * never logged. */
#ifndef ES_CLUSTER_MEMBER_H
#define ES_CLUSTER_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/etcd.h"
#include "cluster/instance.h"
#include "cluster/mirror.h"

/* The configured TTL (ECS_SECRETS_ETCD_LEASE_TTL) is the promise: a dead
 * host's lease is gone, and another agent leads, within it. */
#define CL_MEMBER_TTL_MIN 2
#define CL_MEMBER_TTL_MAX 3600
#define CL_MEMBER_TTL_DEFAULT 15
/* What etcd's part after the lease's end takes, asked off the configured
 * TTL: its lessor looks for expired leases every 500 ms, then revokes
 * through a consensus round, and a keepalive's own latency. */
#define CL_MEMBER_TTL_MARGIN_S 1
/* etcd's shortest lease: 3/2 of its election timeout (1 s by default),
 * rounded up to seconds; a shorter ask is granted this (etcd 3.4's
 * minLeaseTTL, seen in LeaseGrant's answer). */
#define CL_MEMBER_ETCD_MIN_TTL 2
/* A leader that cannot renew steps down this long (at most a tenth of
 * the TTL) before etcd could expire its lease: the loop's timer may fire late. */
#define CL_MEMBER_LEAD_MARGIN_MS 500
#define CL_MEMBER_RETRY_MS 1000     /* after a failed call to etcd (at most: cl_member_retry_ms) */
#define CL_MEMBER_STOP_MS 3000      /* the stop's revoke, at most */
#define CL_MEMBER_VIEW_MAX 1000     /* instances in one cluster */
#define CL_MEMBER_UPDATE_TRIES 5    /* a status write that keeps meeting a concurrent change */
#define CL_MEMBER_MIRRORS_MAX 8     /* cl_member_mirror's */
#define CL_MEMBER_SUBSCRIBERS_MAX 4 /* cl_member_subscribe's */

typedef enum cl_member_state {
    CL_MEMBER_ALONE,      /* no etcd */
    CL_MEMBER_JOINING,    /* granting a lease, putting the record */
    CL_MEMBER_REGISTERED, /* the record is there; keepalives run */
    CL_MEMBER_STOPPING,
    CL_MEMBER_STOPPED,
} cl_member_state;
const char *cl_member_state_name(cl_member_state s);

typedef enum cl_member_event {
    CL_MEMBER_EV_STATE,       /* detail: "OLD -> NEW" */
    CL_MEMBER_EV_REGISTERED,  /* detail: the lease's ID and TTL */
    CL_MEMBER_EV_LEASE_LOST,  /* the lease expired: registering again */
    CL_MEMBER_EV_ETCD_FAILED, /* detail: the call and why */
    CL_MEMBER_EV_VIEW,        /* detail: the view was read whole (count) */
    CL_MEMBER_EV_BAD_RECORD,  /* detail: the key and why it was skipped */
    CL_MEMBER_EV_REVOKED,     /* the stop's revoke */
    CL_MEMBER_EV_LEADER,      /* detail: who leads now (cluster/election.h) */
} cl_member_event;
typedef void (*cl_member_event_fn)(void *arg, cl_member_event ev, const char *detail);

typedef struct cl_member_config {
    uv_loop_t *loop;
    const cl_etcd_config *etcd; /* NULL: alone */
    const char *cluster;
    int64_t lease_ttl;       /* seconds; 0: CL_MEMBER_TTL_DEFAULT */
    const cl_instance *self; /* copied: id, arn, resources, attributes, registeredAt */
    cl_member_event_fn on_event;
    void *event_arg;
} cl_member_config;

typedef struct cl_member cl_member;

/* Creates the member and starts joining (or is alone). 0, or < 0 with why. */
int cl_member_start(const cl_member_config *cfg, cl_member **out, char *why, size_t whylen);
/* Revokes the lease (bounded), ends the calls and the watch, frees m once
 * its handles are closed, then calls done(arg). NULL-safe. */
void cl_member_close(cl_member *m, void (*done)(void *arg), void *arg);

cl_member_state cl_member_get_state(const cl_member *m);
bool cl_member_is_clustered(const cl_member *m);
const cl_instance *cl_member_self(const cl_member *m);
/* The view: every instance known, in ID order. Valid until the loop runs. */
const cl_instance *cl_member_instances(const cl_member *m, size_t *n);
/* By ID or ARN; NULL when unknown. */
const cl_instance *cl_member_find(const cl_member *m, const char *id_or_arn);

/* The election (cluster/election.h): whether this agent leads the cluster
 * (alone: always; with etcd only until cl_member_lead_ms after the last
 * successful renewal was sent, on the clock, before the lead timer tells
 * the subscribers), and the leader's instance ID ("" while none is known;
 * alone: this instance's). */
bool cl_member_is_leader(const cl_member *m);
const char *cl_member_leader(const cl_member *m);

/* Whether the view holds every instance change up to the revision at
 * which the election key was last seen gone (alone: true). A leader's
 * instance lives under the lease its key does, so a new leader whose view
 * is current no longer sees the old leader's instance (placing there would
 * place on a dead host). A new leader whose view lags has it read whole
 * again if no watch event catches it up first. */
bool cl_member_view_current(const cl_member *m);

/* What changed, for cl_member_subscribe's callbacks (on the loop, never
 * after cl_member_close): who leads (cl_member_is_leader may have changed),
 * or the view (events applied, or read whole). */
typedef enum cl_member_change {
    CL_MEMBER_CHANGE_LEADER,
    CL_MEMBER_CHANGE_VIEW,
} cl_member_change;
typedef void (*cl_member_change_fn)(void *arg, cl_member_change what);
/* fn(arg) on every change for the member's life (arg must live until the
 * member's done). 0, -ENOSPC, -EINVAL. Alone nothing ever changes. */
int cl_member_subscribe(cl_member *m, cl_member_change_fn fn, void *arg);

/* Follows /ecs-secrets/clusters/<cluster>/<leaf> (cluster/mirror.h) for
 * the member's life: the mirror is stopped when the member closes and freed
 * after its etcd client, so cbs (and their arg) must live until the
 * member's done. 0, -ENOTCONN (alone), -ENOSPC, -EINVAL, -ENOMEM. */
int cl_member_mirror(cl_member *m, const char *leaf, const cl_mirror_cbs *cbs);
/* The member's etcd client for calls of other modules (cluster/taskdefs.h);
 * NULL alone or once closing. Their callbacks run before the member's done. */
cl_etcd *cl_member_etcd(cl_member *m);
const char *cl_member_cluster(const cl_member *m);

/* Sets instance id's status (ACTIVE, DRAINING). Alone: applied now, answers
 * 0 and cb is not called. With etcd: answers 1 and cb follows with err 0 and
 * the record as written, or < 0 (CL_ETCD_E_*, -ENOENT: the instance is gone)
 * and NULL. < 0 now: -ENOENT (unknown id), -EINVAL. */
typedef void (*cl_member_update_cb)(void *arg, int err, const cl_instance *updated);
int cl_member_set_status(cl_member *m, const char *id, const char *status, cl_member_update_cb cb,
                         void *arg);

/* The TTL to ask etcd for: the configured one less CL_MEMBER_TTL_MARGIN_S,
 * at least CL_MEMBER_ETCD_MIN_TTL; *no_room (may be NULL): the configured
 * TTL leaves no room for the margin (the promise cannot be kept). */
int64_t cl_member_asked_ttl(int64_t configured, bool *no_room);
/* How long after SENDING the grant or keepalive that last renewed a lease
 * of this granted TTL the agent may count itself leader: the TTL less
 * CL_MEMBER_LEAD_MARGIN_MS (at most a tenth of it). 0 for a TTL <= 0. */
uint64_t cl_member_lead_ms(int64_t granted);
/* The keepalive period for a (granted) TTL: a third of it (etcd's own clients renew
 * at TTL/3), at least 500 ms. */
uint64_t cl_member_keepalive_ms(int64_t ttl);
/* After a failed call: a sixth of the TTL, 200 ms to CL_MEMBER_RETRY_MS. */
uint64_t cl_member_retry_ms(int64_t ttl);
/* One request's timeout: a quarter of the TTL, 500 ms to CL_ETCD_TIMEOUT_MS. */
long cl_member_request_ms(int64_t ttl);

typedef struct cl_member_stats {
    unsigned long keepalives, keepalive_failures, registrations, leases_lost, view_syncs,
        watch_events, bad_records, updates, update_conflicts, elections_won, leader_changes,
        step_downs; /* leading given up: the lease not renewed in time */
} cl_member_stats;
void cl_member_get_stats(const cl_member *m, cl_member_stats *out);
/* The etcd client's counters; false (out untouched) when alone. */
bool cl_member_etcd_stats(const cl_member *m, cl_etcd_stats *out);

#endif
