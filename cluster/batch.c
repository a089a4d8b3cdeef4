/* The leader's batch of placements (batch.h): the bounds first, then each
 * request placed over what the ones before it left. */
#include "cluster/batch.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Keys under our root: the longest is an assignment's. */
#define KEY_MAX (sizeof CL_KEY_ROOT + CL_CLUSTER_MAX + 16 + CL_INSTANCE_ID_MAX + 1 + CL_TK_ID_HEX)
/* A result's value: its fixed fields and CL_TK_COUNT_MAX tasks' IDs and
 * instances (each at most 2 * 64 characters), with the reason. */
#define RESULT_MAX (256 + CL_TK_COUNT_MAX * (64 + CL_TK_ID_HEX + CL_INSTANCE_ID_MAX) + 128)
/* An assignment's value less its strings of variable length: IDs,
 * numbers, names, the JSON punctuation. */
#define ASSIGNMENT_FIXED 512
#define OP_JSON 96 /* {"request_put":{"key":"","value":""}}, and a compare's words */

static size_t b64(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* A text written by es_jw: at most twice its length (quotes and
 * backslashes escaped; the records refuse control characters). */
static size_t json_str(const char *s)
{
    return 2 * strnlen(s, 4096);
}

size_t cl_bt_request_ops(const cl_tk_request *rq)
{
    return (size_t)(rq->count > 0 ? rq->count : 0) + 2;
}

size_t cl_bt_request_bytes(const cl_tk_request *rq)
{
    size_t count = (size_t)(rq->count > 0 ? rq->count : 0);
    size_t asg = ASSIGNMENT_FIXED + json_str(rq->family) + json_str(rq->group) +
                 json_str(rq->started_by) + json_str(rq->launch_type) + 1 +
                 (rq->overrides ? rq->overrides_len : 0);
    size_t key = b64(KEY_MAX);
    return count * (OP_JSON + key + b64(asg)) /* the assignments */
           + OP_JSON + key + b64(RESULT_MAX)  /* the result */
           + OP_JSON + key                    /* the request's delete */
           + OP_JSON + key + 24;              /* its compare and revision */
}

size_t cl_bt_failure_ops(void)
{
    return 2;
}

size_t cl_bt_failure_bytes(void)
{
    size_t key = b64(KEY_MAX);
    return OP_JSON + key + b64(RESULT_MAX) + OP_JSON + key + OP_JSON + key + 24;
}

/* A placement of o operations and b bytes fits no transaction even alone. */
static bool exceeds_one_txn(size_t o, size_t b)
{
    return o > CL_BT_OPS_MAX || b > CL_BT_BYTES_MAX;
}

bool cl_bt_request_too_large(const cl_tk_request *rq)
{
    return exceeds_one_txn(cl_bt_request_ops(rq), cl_bt_request_bytes(rq));
}

int cl_bt_place(cl_pl_candidate *cands, size_t n_cands, cl_bt_group_fn group_tasks, void *arg,
                cl_tk_request *const *rqs, size_t n, size_t max_requests, uint64_t seed,
                cl_bt_outcome *out, size_t *taken)
{
    if (!rqs || !out || !taken || n == 0 || (n_cands && !cands))
        return -EINVAL;
    *taken = 0;
    if (max_requests == 0 || max_requests > CL_BT_REQUESTS_MAX)
        max_requests = CL_BT_REQUESTS_MAX;
    size_t ops = 0, bytes = 0, k = 0;
    for (; k < n && k < max_requests; k++) {
        const cl_tk_request *rq = rqs[k];
        if (!rq || rq->count < 1 || rq->count > CL_TK_COUNT_MAX)
            return -EINVAL;
        size_t o = cl_bt_request_ops(rq), b = cl_bt_request_bytes(rq);
        bool too_large = exceeds_one_txn(o, b); /* cl_bt_request_too_large's, on o and b */
        if (too_large) {
            /* never writable: its failure goes in instead, so that it
             * leaves the queue rather than stop it */
            o = cl_bt_failure_ops();
            b = cl_bt_failure_bytes();
        }
        if (k > 0 && (ops + o > CL_BT_OPS_MAX || bytes + b > CL_BT_BYTES_MAX))
            break;
        ops += o;
        bytes += b;
        memset(&out[k], 0, sizeof out[k]);
        if (too_large)
            out[k].err = -E2BIG;
    }
    for (size_t i = 0; i < k; i++) {
        const cl_tk_request *rq = rqs[i];
        cl_bt_outcome *oc = &out[i];
        if (oc->err)
            continue;
        /* the group's tasks on each candidate: the live ones, and this
         * batch's own placed so far */
        for (size_t c = 0; c < n_cands; c++) {
            cands[c].group_tasks = group_tasks ? group_tasks(arg, cands[c].in->id, rq->group) : 0;
            for (size_t j = 0; j < i; j++) {
                if (out[j].err || strcmp(rqs[j]->group, rq->group) != 0)
                    continue;
                for (size_t t = 0; t < out[j].placed; t++)
                    cands[c].group_tasks += out[j].where[t] == c;
            }
        }
        cl_pl_strategy strategies[CL_PL_STRATEGIES_MAX];
        cl_pl_constraint constraints[CL_PL_CONSTRAINTS_MAX];
        char why[200];
        int r = cl_tk_request_compile(rq, strategies, constraints, why, sizeof why);
        if (r < 0) {
            oc->err = r;
            continue;
        }
        /* a draw of its own for each request (splitmix64's increment) */
        cl_pl_request pr = {.cpu = rq->cpu,
                            .memory = rq->memory,
                            .count = (size_t)rq->count,
                            .strategies = strategies,
                            .n_strategies = rq->n_strategies,
                            .constraints = constraints,
                            .n_constraints = rq->n_constraints,
                            .seed = seed + (uint64_t)i * 0x9e3779b97f4a7c15ull};
        r = cl_pl_place(cands, n_cands, &pr, oc->where, &oc->placed, &oc->reason);
        for (size_t c = 0; c < rq->n_constraints; c++)
            cl_pl_constraint_clear(&constraints[c]);
        if (r < 0) {
            oc->err = r;
            oc->placed = 0;
        }
    }
    *taken = k;
    return 0;
}

/* ---- the queue after a transaction ---- */

void cl_bt_pace_init(cl_bt_pace *p)
{
    p->cap = CL_BT_REQUESTS_MAX;
    p->unanswered = 0;
}

cl_bt_next cl_bt_after(cl_bt_pace *p, size_t n, cl_bt_end end)
{
    if (p->cap == 0 || p->cap > CL_BT_REQUESTS_MAX)
        p->cap = CL_BT_REQUESTS_MAX;
    if (n == 0)
        return CL_BT_NEXT_ON;
    if (end != CL_BT_UNANSWERED)
        p->unanswered = 0;
    switch (end) {
    case CL_BT_WRITTEN:
        p->cap = p->cap * 2 < CL_BT_REQUESTS_MAX ? p->cap * 2 : CL_BT_REQUESTS_MAX;
        return CL_BT_NEXT_ON;
    case CL_BT_CONFLICT:
    case CL_BT_REFUSED:
        if (n > 1) {
            p->cap = n / 2;
            return CL_BT_NEXT_SPLIT;
        }
        return end == CL_BT_CONFLICT ? CL_BT_NEXT_DROP : CL_BT_NEXT_FAIL;
    case CL_BT_UNANSWERED:
        if (++p->unanswered < CL_BT_TRIES)
            return CL_BT_NEXT_AGAIN;
        p->unanswered = 0;
        if (n > 1) {
            p->cap = n / 2;
            return CL_BT_NEXT_SPLIT;
        }
        return CL_BT_NEXT_BACK;
    }
    return CL_BT_NEXT_AGAIN;
}
