/* batch.h - the leader's batch of placements (issue 23): which of the
 * pending RunTask requests go into one etcd transaction, and where their
 * tasks go. Pure: no I/O, no clock; random draws from a seed.
 *
 * Why batches: the leader placed one requests/<id> per transaction, one
 * transaction at a time, and under load each took a round of etcd's
 * consensus (bench/cluster_runtask.py: three agents at 0.15x one agent
 * alone). Every request still carries its own compare (its mod_revision),
 * so a batch is all or nothing and no request is placed twice across a
 * change of leader; the glue (agent/cluster_tasks.c) retries a batch whose
 * compare failed in smaller ones.
 *
 * A batch takes the requests in order while it stays within etcd's and our
 * bounds: at most max_requests (CL_BT_REQUESTS_MAX) requests, at most
 * CL_BT_OPS_MAX operations in the success branch (a request is count + 2:
 * its assignments, its result, its delete; compares are one a request, and
 * etcd's --max-txn-ops applies to each list) and an upper bound of the
 * request body (cl_bt_request_bytes) within CL_BT_BYTES_MAX. The first
 * request is always taken (alone it is the transaction as before).
 *
 * Capacity: request i is placed over the candidates as requests 0..i-1
 * left them: CPU and memory taken, and its group's tasks counted (those
 * already on an instance from group_tasks, plus the batch's own). */
#ifndef ES_CLUSTER_BATCH_H
#define ES_CLUSTER_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd_wire.h"
#include "cluster/placement.h"
#include "cluster/tasks.h"

#define CL_BT_REQUESTS_MAX 40                        /* requests in one transaction */
#define CL_BT_OPS_MAX CL_ETCD_TXN_OPS_MAX            /* etcd's default --max-txn-ops */
#define CL_BT_BYTES_MAX (CL_ETCD_REQUEST_MAX - 4096) /* the body, less the envelope */

/* The tasks of group already on instance (the live assignments). */
typedef size_t (*cl_bt_group_fn)(void *arg, const char *instance_id, const char *group);

typedef struct cl_bt_outcome {
    int err;                       /* 0; -EINVAL / -ENOMEM: not compiled, left out */
    size_t where[CL_TK_COUNT_MAX]; /* the candidate of each placed task */
    size_t placed;                 /* tasks placed; count - placed were not, for reason */
    cl_pl_reason reason;
} cl_bt_outcome;

/* An upper bound of what rq adds to a transaction's body (its compare,
 * its assignments' puts, its result's put, its delete, in base64 JSON),
 * for count tasks. */
size_t cl_bt_request_bytes(const cl_tk_request *rq);
/* The success branch's operations of rq (count + 2). */
size_t cl_bt_request_ops(const cl_tk_request *rq);

/* Takes rqs[0..n) in order while the bounds above allow (max_requests 0:
 * CL_BT_REQUESTS_MAX, never more), places each over cands (updated),
 * and writes *taken outcomes into out (n entries at least). A request that
 * does not compile has out[i].err set and nothing placed; the others are
 * unaffected. 0, or -EINVAL (no request, a request's count outside
 * 1..CL_TK_COUNT_MAX, NULL arguments). */
int cl_bt_place(cl_pl_candidate *cands, size_t n_cands, cl_bt_group_fn group_tasks, void *arg,
                cl_tk_request *const *rqs, size_t n, size_t max_requests, uint64_t seed,
                cl_bt_outcome *out, size_t *taken);

#endif
