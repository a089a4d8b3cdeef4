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
 * request body (cl_bt_request_bytes) within CL_BT_BYTES_MAX. A request
 * whose placement cannot fit even alone (count x overrides) is taken as
 * its failure (err -E2BIG: a result and a delete), never as a transaction
 * etcd would refuse every time with the requests behind it waiting.
 *
 * Capacity: request i is placed over the candidates as requests 0..i-1
 * left them: CPU and memory taken, and its group's tasks counted (those
 * already on an instance from group_tasks, plus the batch's own). */
#ifndef ES_CLUSTER_BATCH_H
#define ES_CLUSTER_BATCH_H

#include <stdbool.h>
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
    int err; /* 0; -EINVAL / -ENOMEM: not compiled, left out; -E2BIG: its placement cannot fit
                one transaction even alone (count x overrides): the batch carries its failure
                instead (cl_bt_failure_ops, cl_bt_failure_bytes), so it never comes back */
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
/* Whether rq's placement cannot fit one transaction even alone (its
 * operations over CL_BT_OPS_MAX or its body over CL_BT_BYTES_MAX: count x
 * overrides): the leader answers it CL_TK_REASON_TOO_LARGE (cl_bt_place's
 * -E2BIG), and the agent that receives the RunTask refuses it so at once,
 * without a trip through etcd. */
bool cl_bt_request_too_large(const cl_tk_request *rq);

/* What a request's failure adds: its result (every task failed) and its
 * delete, and its compare. */
size_t cl_bt_failure_ops(void);
size_t cl_bt_failure_bytes(void);

/* Takes rqs[0..n) in order while the bounds above allow (max_requests 0:
 * CL_BT_REQUESTS_MAX, never more), places each over cands (updated),
 * and writes *taken outcomes into out (n entries at least). A request that
 * does not compile has out[i].err set and nothing placed; the others are
 * unaffected. 0, or -EINVAL (no request, a request's count outside
 * 1..CL_TK_COUNT_MAX, NULL arguments). */
int cl_bt_place(cl_pl_candidate *cands, size_t n_cands, cl_bt_group_fn group_tasks, void *arg,
                cl_tk_request *const *rqs, size_t n, size_t max_requests, uint64_t seed,
                cl_bt_outcome *out, size_t *taken);

/* ---- after a batch's transaction: the queue goes on ----
 *
 * No request may stop the ones behind it. A batch that etcd refuses or
 * whose compare fails is tried again in halves, until the request at
 * fault is alone: one whose compare fails alone is dropped (gone, or
 * changed: the mirror brings a newer version, placed then), one refused
 * alone (etcd's InvalidArgument: too large, too many operations; or a body
 * we could not build) is answered as not placed and removed. A batch that
 * etcd does not answer (unavailable, a timeout) is tried again as it is
 * after a tick, CL_BT_TRIES times, then in halves, and a request that
 * goes unanswered alone that often goes behind the others, so that a
 * request whose body always times out cannot hold the queue either. */
#define CL_BT_TRIES 3

typedef enum cl_bt_end {
    CL_BT_WRITTEN,    /* committed: the batch's requests are placed */
    CL_BT_CONFLICT,   /* a compare failed (etcd does not say which) */
    CL_BT_REFUSED,    /* will not be written as it is (etcd's refusal, or not built) */
    CL_BT_UNANSWERED, /* no answer (no endpoint, a timeout, an answer not read) */
} cl_bt_end;

typedef enum cl_bt_next {
    CL_BT_NEXT_ON,    /* the next batch (after a success the cap doubles back) */
    CL_BT_NEXT_SPLIT, /* the same requests in batches of the new cap (half) */
    CL_BT_NEXT_AGAIN, /* the same batch, after a tick */
    CL_BT_NEXT_DROP,  /* the request alone: out of the queue, unless a newer version came */
    CL_BT_NEXT_FAIL,  /* the request alone: answered as not placed, out of the queue */
    CL_BT_NEXT_BACK,  /* the request alone: behind the others */
} cl_bt_next;

typedef struct cl_bt_pace {
    size_t cap;          /* requests in the next batch, 1..CL_BT_REQUESTS_MAX */
    unsigned unanswered; /* batches unanswered in a row */
} cl_bt_pace;

void cl_bt_pace_init(cl_bt_pace *p);
/* After the transaction of a batch of n requests ended as end: what to do
 * with them; p->cap is the next batch's size. */
cl_bt_next cl_bt_after(cl_bt_pace *p, size_t n, cl_bt_end end);

#endif
