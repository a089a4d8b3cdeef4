/* cluster/batch.c: the leader's batch of placements. Capacity taken by
 * the earlier requests of a batch, a group's tasks counted across it, the
 * bounds (requests, etcd's operations, the body's bytes: the estimate is
 * an upper bound of the real transaction), a request that does not
 * compile left out alone, bad arguments refused; no request stops the
 * ones behind it (too large alone, refused, conflicting, unanswered). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cluster/batch.h"
#include "cluster/etcd_wire.h"

#define N 3
#define RQ_MAX 60
static cl_instance ins[N];
static cl_pl_candidate cands[N];
static cl_tk_request rq_store[RQ_MAX];
static cl_tk_request *rqs[RQ_MAX];
static cl_bt_outcome out[RQ_MAX];

static void setup(void)
{
    for (int i = 0; i < N; i++) {
        memset(&ins[i], 0, sizeof ins[i]);
        snprintf(ins[i].id, sizeof ins[i].id, "%032x", i + 1);
        snprintf(ins[i].status, sizeof ins[i].status, "ACTIVE");
        ins[i].agent_connected = true;
        ins[i].cpu = 4096;
        ins[i].memory = 1024;
        cands[i] = (cl_pl_candidate){.in = &ins[i], .cpu_left = 4096, .mem_left = 1024};
    }
    for (int i = 0; i < RQ_MAX; i++) {
        cl_tk_request *r = &rq_store[i];
        memset(r, 0, sizeof *r);
        snprintf(r->id, sizeof r->id, "%032x", 0x100 + i);
        snprintf(r->from, sizeof r->from, "%032x", 1);
        snprintf(r->family, sizeof r->family, "web");
        r->revision = 1;
        r->count = 1;
        r->cpu = 0;
        r->memory = 256;
        snprintf(r->group, sizeof r->group, "family:web");
        snprintf(r->launch_type, sizeof r->launch_type, "EC2");
        r->mod_revision = 10 + i;
        rqs[i] = r;
    }
}

TestSuite(cluster_batch, .init = setup);

static void strategy(cl_tk_request *r, const char *type, const char *field)
{
    snprintf(r->strategies[r->n_strategies].type, sizeof r->strategies[0].type, "%s", type);
    snprintf(r->strategies[r->n_strategies].field, sizeof r->strategies[0].field, "%s",
             field ? field : "");
    r->n_strategies++;
}

static size_t tasks_on(size_t taken, size_t inst)
{
    size_t n = 0;
    for (size_t i = 0; i < taken; i++)
        for (size_t t = 0; t < out[i].placed; t++)
            n += out[i].where[t] == inst;
    return n;
}

Test(cluster_batch, capacity_taken_by_earlier_requests_of_the_batch)
{
    /* 13 requests of 256 MiB, binpack on memory: 4 fill an instance of
     * 1024 MiB, then the next, then the third; the 13th finds no memory */
    for (int i = 0; i < 13; i++)
        strategy(rqs[i], "binpack", "memory");
    size_t taken = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 13, 0, 7, out, &taken), 0);
    cr_assert_eq(taken, 13);
    for (size_t i = 0; i < 12; i++) {
        cr_assert_eq(out[i].err, 0);
        cr_assert_eq(out[i].placed, 1, "request %zu", i);
        cr_assert_eq(out[i].where[0], i / 4, "request %zu on %zu", i, out[i].where[0]);
    }
    cr_assert_eq(out[12].placed, 0);
    cr_assert_eq(out[12].reason, CL_PL_R_MEMORY);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(cands[i].mem_left, 0);
}

/* The live tasks the glue would count: two of family:web on instance 0. */
static size_t two_on_first(void *arg, const char *instance, const char *group)
{
    (void)arg;
    return strcmp(instance, ins[0].id) == 0 && strcmp(group, "family:web") == 0 ? 2 : 0;
}

Test(cluster_batch, a_groups_tasks_counted_across_the_batch)
{
    /* spread over instances, count 1 each: 6 in one batch are 2, 2, 2 */
    for (int i = 0; i < 6; i++)
        strategy(rqs[i], "spread", "instanceId");
    size_t taken = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 6, 0, 1, out, &taken), 0);
    cr_assert_eq(taken, 6);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(tasks_on(taken, i), 2, "instance %zu: %zu", i, tasks_on(taken, i));
    /* with two already on the first (the live assignments): the next 4
     * go 2 and 2 to the others; another group is not counted */
    setup();
    for (int i = 0; i < 5; i++)
        strategy(rqs[i], "spread", "instanceId");
    snprintf(rqs[4]->group, sizeof rqs[4]->group, "family:other");
    cr_assert_eq(cl_bt_place(cands, N, two_on_first, NULL, rqs, 5, 0, 1, out, &taken), 0);
    cr_assert_eq(taken, 5);
    cr_assert_eq(tasks_on(4, 0), 0);
    cr_assert_eq(tasks_on(4, 1), 2);
    cr_assert_eq(tasks_on(4, 2), 2);
    cr_assert_eq(out[4].where[0], 0, "the other group's task goes to the first, its fewest");
}

Test(cluster_batch, distinct_instance_across_requests_of_one_group)
{
    for (int i = 0; i < 4; i++) {
        snprintf(rqs[i]->group, sizeof rqs[i]->group, "service:web");
        snprintf(rqs[i]->constraints[0].type, sizeof rqs[i]->constraints[0].type,
                 "distinctInstance");
        rqs[i]->n_constraints = 1;
    }
    size_t taken = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 4, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, 4);
    bool seen[N] = {false};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(out[i].placed, 1);
        cr_assert_not(seen[out[i].where[0]], "two on instance %zu", out[i].where[0]);
        seen[out[i].where[0]] = true;
    }
    cr_assert_eq(out[3].placed, 0);
    cr_assert_eq(out[3].reason, CL_PL_R_DISTINCT);
}

Test(cluster_batch, the_request_cap)
{
    for (int i = 0; i < RQ_MAX; i++)
        rqs[i]->memory = 0;
    size_t taken = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, RQ_MAX, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, CL_BT_REQUESTS_MAX);
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, RQ_MAX, 5, 3, out, &taken), 0);
    cr_assert_eq(taken, 5);
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, RQ_MAX, 1000, 3, out, &taken), 0);
    cr_assert_eq(taken, CL_BT_REQUESTS_MAX, "a cap over the maximum is the maximum");
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 3, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, 3, "fewer pending than the cap: all of them");
}

Test(cluster_batch, etcds_operations_bound)
{
    /* count 10: 12 operations each, 10 requests are 120, an 11th would be 132 > 128 */
    for (int i = 0; i < RQ_MAX; i++) {
        rqs[i]->count = 10;
        rqs[i]->memory = 0;
    }
    cr_assert_eq(cl_bt_request_ops(rqs[0]), 12);
    size_t taken = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, RQ_MAX, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, 10);
    size_t ops = 0;
    for (size_t i = 0; i < taken; i++)
        ops += cl_bt_request_ops(rqs[i]);
    cr_assert_leq(ops, CL_BT_OPS_MAX);
    cr_assert_leq(taken, CL_BT_OPS_MAX, "one compare a request");
    /* one task and one of ten: 3 + 12 */
    rqs[0]->count = 1;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 2, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, 2);
    cr_assert_eq(out[0].placed, 1);
    cr_assert_eq(out[1].placed, 10);
}

static char big_ov[CL_TK_OVERRIDES_MAX];

Test(cluster_batch, the_bodys_bytes_bound)
{
    memset(big_ov, ' ', sizeof big_ov);
    big_ov[0] = '{';
    big_ov[sizeof big_ov - 1] = '}';
    for (int i = 0; i < RQ_MAX; i++) {
        rqs[i]->memory = 0;
        rqs[i]->overrides = big_ov;
        rqs[i]->overrides_len = sizeof big_ov;
    }
    size_t taken = 0, bytes = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, RQ_MAX, 0, 3, out, &taken), 0);
    cr_assert_gt(taken, 1);
    cr_assert_lt(taken, 10, "32 KiB of overrides each: a few a body (%zu)", taken);
    for (size_t i = 0; i < taken; i++)
        bytes += cl_bt_request_bytes(rqs[i]);
    cr_assert_leq(bytes, CL_BT_BYTES_MAX);
    cr_assert_gt(bytes + cl_bt_request_bytes(rqs[taken]), CL_BT_BYTES_MAX);
}

/* Head-of-queue blocking: a request whose placement cannot fit one
 * transaction even alone (10 tasks with 32 KiB of overrides each) used to
 * be taken alone, its body refused, and taken again forever with every
 * request behind it waiting. Now it is taken as its failure (a result and
 * a delete, a few hundred bytes) and the requests behind it are placed in
 * the same batch. */
Test(cluster_batch, a_request_too_large_even_alone_does_not_stop_the_others)
{
    memset(big_ov, ' ', sizeof big_ov);
    big_ov[0] = '{';
    big_ov[sizeof big_ov - 1] = '}';
    rqs[0]->count = 10;
    rqs[0]->overrides = big_ov;
    rqs[0]->overrides_len = sizeof big_ov;
    cr_assert_gt(cl_bt_request_bytes(rqs[0]), CL_BT_BYTES_MAX);
    cr_assert(cl_bt_request_too_large(rqs[0]));
    for (int i = 1; i < 6; i++)
        rqs[i]->memory = 128;
    size_t taken = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 6, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, 6, "the ones behind it in the same batch");
    cr_assert_eq(out[0].err, -E2BIG);
    cr_assert_eq(out[0].placed, 0);
    for (size_t i = 1; i < taken; i++) {
        cr_assert_eq(out[i].err, 0);
        cr_assert_eq(out[i].placed, 1, "request %zu", i);
    }
    /* in the middle too: the five around it placed */
    rq_store[RQ_MAX - 1] = *rqs[0];
    cl_tk_request *order[6] = {rqs[1], rqs[2], &rq_store[RQ_MAX - 1], rqs[3], rqs[4], rqs[5]};
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, order, 6, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, 6);
    cr_assert_eq(out[2].err, -E2BIG);
    size_t placed = 0;
    for (size_t i = 0; i < taken; i++)
        placed += out[i].placed;
    cr_assert_eq(placed, 5);
    /* its failure counts as small in the bounds: a batch of such requests
     * holds as many as etcd's operations allow (2 each) */
    for (int i = 0; i < RQ_MAX; i++) {
        rq_store[i].count = 10;
        rq_store[i].overrides = big_ov;
        rq_store[i].overrides_len = sizeof big_ov;
    }
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, RQ_MAX, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, CL_BT_REQUESTS_MAX);
    cr_assert_leq(taken * cl_bt_failure_ops(), CL_BT_OPS_MAX);
    cr_assert_leq(taken * cl_bt_failure_bytes(), CL_BT_BYTES_MAX);
}

/* ---- the queue after a transaction (cl_bt_after), as the leader runs it:
 * take the first pace.cap requests, send them, apply what cl_bt_after says.
 * A fake etcd decides each batch's end by whether it holds the bad request. */

#define QN 40
typedef struct queue {
    int ids[QN + 1];
    size_t n;
    bool written[QN + 1], failed[QN + 1], dropped[QN + 1];
} queue;

static void q_remove(queue *q, size_t pos)
{
    memmove(&q->ids[pos], &q->ids[pos + 1], (q->n - pos - 1) * sizeof q->ids[0]);
    q->n--;
}

/* Runs the queue until it is empty or rounds run out; the bad request
 * (id 0, first in the queue) ends every batch that holds it as bad_end, the
 * others are written. Returns the rounds (transactions) used. */
static int run_queue(queue *q, cl_bt_end bad_end, int rounds)
{
    cl_bt_pace pace;
    cl_bt_pace_init(&pace);
    memset(q, 0, sizeof *q);
    for (int i = 0; i < QN; i++)
        q->ids[q->n++] = i;
    int r = 0;
    for (; r < rounds && q->n; r++) {
        size_t n = q->n < pace.cap ? q->n : pace.cap;
        bool holds_bad = false;
        for (size_t i = 0; i < n; i++)
            holds_bad |= q->ids[i] == 0;
        cl_bt_end end = holds_bad ? bad_end : CL_BT_WRITTEN;
        switch (cl_bt_after(&pace, n, end)) {
        case CL_BT_NEXT_ON:
            for (size_t i = 0; i < n; i++)
                q->written[q->ids[i]] = true;
            for (size_t i = 0; i < n; i++)
                q_remove(q, 0);
            break;
        case CL_BT_NEXT_SPLIT:
            cr_assert_gt(n, 1);
            cr_assert_eq(pace.cap, n / 2);
            break;
        case CL_BT_NEXT_AGAIN:
            break;
        case CL_BT_NEXT_DROP:
            cr_assert_eq(n, 1);
            q->dropped[q->ids[0]] = true;
            q_remove(q, 0);
            break;
        case CL_BT_NEXT_FAIL:
            cr_assert_eq(n, 1);
            q->failed[q->ids[0]] = true;
            q_remove(q, 0);
            break;
        case CL_BT_NEXT_BACK: {
            cr_assert_eq(n, 1);
            int id = q->ids[0];
            q_remove(q, 0);
            q->ids[q->n++] = id;
            break;
        }
        }
    }
    return r;
}

Test(cluster_batch, a_request_etcd_always_refuses_is_failed_alone_the_others_written)
{
    queue q;
    int rounds = run_queue(&q, CL_BT_REFUSED, 100);
    cr_assert_eq(q.n, 0, "%zu requests still queued after %d transactions", q.n, rounds);
    cr_assert(q.failed[0], "the refused one answered as not placed");
    for (int i = 1; i < QN; i++)
        cr_assert(q.written[i] && !q.failed[i], "request %d", i);
    /* 40 -> 20 -> 10 -> 5 -> 2 -> 1 (failed), then the rest: a few more */
    cr_assert_leq(rounds, 14, "%d transactions", rounds);
}

Test(cluster_batch, a_request_whose_compare_always_fails_is_dropped_the_others_written)
{
    queue q;
    int rounds = run_queue(&q, CL_BT_CONFLICT, 100);
    cr_assert_eq(q.n, 0, "%zu requests still queued after %d transactions", q.n, rounds);
    cr_assert(q.dropped[0]);
    for (int i = 1; i < QN; i++)
        cr_assert(q.written[i], "request %d", i);
    cr_assert_leq(rounds, 14, "%d transactions", rounds);
}

Test(cluster_batch, a_request_never_answered_goes_behind_the_others)
{
    queue q;
    int rounds = run_queue(&q, CL_BT_UNANSWERED, 200);
    /* every other request written; the unanswered one is still queued (it
     * may be answered later: etcd away is not a refusal), alone */
    for (int i = 1; i < QN; i++)
        cr_assert(q.written[i], "request %d after %d transactions", i, rounds);
    cr_assert_eq(q.n, 1);
    cr_assert_eq(q.ids[0], 0);
    cr_assert(!q.failed[0] && !q.dropped[0]);
}

Test(cluster_batch, the_pace_after_each_end)
{
    cl_bt_pace p;
    cl_bt_pace_init(&p);
    cr_assert_eq(p.cap, CL_BT_REQUESTS_MAX);
    cr_assert_eq(cl_bt_after(&p, 40, CL_BT_CONFLICT), CL_BT_NEXT_SPLIT);
    cr_assert_eq(p.cap, 20);
    cr_assert_eq(cl_bt_after(&p, 20, CL_BT_WRITTEN), CL_BT_NEXT_ON);
    cr_assert_eq(p.cap, 40, "doubled back after a success");
    cr_assert_eq(cl_bt_after(&p, 40, CL_BT_WRITTEN), CL_BT_NEXT_ON);
    cr_assert_eq(p.cap, CL_BT_REQUESTS_MAX, "never past the maximum");
    /* unanswered: the same batch CL_BT_TRIES - 1 times, then halves */
    for (int i = 1; i < CL_BT_TRIES; i++)
        cr_assert_eq(cl_bt_after(&p, 40, CL_BT_UNANSWERED), CL_BT_NEXT_AGAIN);
    cr_assert_eq(cl_bt_after(&p, 40, CL_BT_UNANSWERED), CL_BT_NEXT_SPLIT);
    cr_assert_eq(p.cap, 20);
    /* an answer in between starts the count again */
    cr_assert_eq(cl_bt_after(&p, 20, CL_BT_UNANSWERED), CL_BT_NEXT_AGAIN);
    cr_assert_eq(cl_bt_after(&p, 20, CL_BT_CONFLICT), CL_BT_NEXT_SPLIT);
    cr_assert_eq(cl_bt_after(&p, 10, CL_BT_UNANSWERED), CL_BT_NEXT_AGAIN);
    cr_assert_eq(cl_bt_after(&p, 1, CL_BT_REFUSED), CL_BT_NEXT_FAIL);
    cr_assert_eq(cl_bt_after(&p, 1, CL_BT_CONFLICT), CL_BT_NEXT_DROP);
    cr_assert_eq(cl_bt_after(&p, 0, CL_BT_REFUSED), CL_BT_NEXT_ON, "nothing sent: nothing to do");
    p.cap = 0; /* a pace never initialised: the maximum */
    cr_assert_eq(cl_bt_after(&p, 1, CL_BT_WRITTEN), CL_BT_NEXT_ON);
    cr_assert_eq(p.cap, CL_BT_REQUESTS_MAX);
}

/* The estimate is an upper bound: the real records of a full batch,
 * with the longest strings the rules allow, in one txn body. */
Test(cluster_batch, the_estimate_bounds_the_real_body)
{
    static char keys[CL_BT_OPS_MAX][CL_ETCD_KEY_MAX + 1];
    static es_buf vals[CL_BT_OPS_MAX];
    static cl_txn t;
    static cl_txn_cmp more[CL_BT_REQUESTS_MAX];
    char cluster[CL_CLUSTER_MAX + 1];
    memset(cluster, 'c', CL_CLUSTER_MAX);
    cluster[CL_CLUSTER_MAX] = '\0';
    for (int i = 0; i < RQ_MAX; i++) {
        cl_tk_request *r = rqs[i];
        r->memory = 0;
        memset(r->family, 'f', CL_TK_FAMILY_MAX);
        r->family[CL_TK_FAMILY_MAX] = '\0';
        memset(r->group, '"', CL_TK_GROUP_MAX); /* escaped: twice as long */
        r->group[CL_TK_GROUP_MAX] = '\0';
        memset(r->started_by, '\\', CL_TK_STARTED_BY_MAX);
        r->started_by[CL_TK_STARTED_BY_MAX] = '\0';
        r->overrides = "{\"containerOverrides\":[]}";
        r->overrides_len = strlen(r->overrides);
        r->created_at = 1700000000;
        r->revision = 9999999999LL;
    }
    size_t taken = 0, bytes = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, RQ_MAX, 0, 3, out, &taken), 0);
    memset(&t, 0, sizeof t);
    size_t nv = 0;
    for (size_t i = 0; i < taken; i++) {
        const cl_tk_request *r = rqs[i];
        bytes += cl_bt_request_bytes(r);
        cl_tk_result res;
        memset(&res, 0, sizeof res);
        snprintf(res.request, sizeof res.request, "%s", r->id);
        snprintf(res.from, sizeof res.from, "%s", r->from);
        for (size_t k = 0; k < out[i].placed; k++) {
            cl_tk_assignment as;
            memset(&as, 0, sizeof as);
            snprintf(as.instance, sizeof as.instance, "%s", ins[out[i].where[k]].id);
            snprintf(as.task_id, sizeof as.task_id, "%032zx", 0xabc000 + i);
            snprintf(as.request, sizeof as.request, "%s", r->id);
            memcpy(as.family, r->family, sizeof as.family);
            as.revision = r->revision;
            as.cpu = as.memory = 2147483647;
            memcpy(as.group, r->group, sizeof as.group);
            memcpy(as.started_by, r->started_by, sizeof as.started_by);
            memcpy(as.launch_type, r->launch_type, sizeof as.launch_type);
            as.overrides = r->overrides;
            as.overrides_len = r->overrides_len;
            as.created_at = r->created_at;
            snprintf(res.placed[k].task_id, sizeof res.placed[k].task_id, "%s", as.task_id);
            snprintf(res.placed[k].instance, sizeof res.placed[k].instance, "%s", as.instance);
            res.n_placed = k + 1;
            cr_assert_geq(
                cl_tk_assignment_key(cluster, as.instance, as.task_id, keys[nv], sizeof keys[nv]),
                0);
            es_buf_init(&vals[nv], CL_TK_VALUE_MAX);
            cr_assert_eq(cl_tk_assignment_write(&as, &vals[nv]), 0);
            t.success[t.n_success++] =
                (cl_txn_op){.key = keys[nv], .value = vals[nv].data, .value_len = vals[nv].len};
            nv++;
        }
        res.n_failed = (size_t)r->count - out[i].placed;
        if (res.n_failed)
            snprintf(res.reason, sizeof res.reason, "%s", cl_pl_reason_name(out[i].reason));
        cr_assert_geq(cl_tk_result_key(cluster, r->id, keys[nv], sizeof keys[nv]), 0);
        cr_assert_geq(cl_tk_request_key(cluster, r->id, keys[nv + 1], sizeof keys[nv + 1]), 0);
        es_buf_init(&vals[nv], CL_TK_VALUE_MAX);
        es_buf_init(&vals[nv + 1], 1);
        cr_assert_eq(cl_tk_result_write(&res, &vals[nv]), 0);
        t.success[t.n_success++] =
            (cl_txn_op){.key = keys[nv], .value = vals[nv].data, .value_len = vals[nv].len};
        t.success[t.n_success++] = (cl_txn_op){.is_delete = true, .key = keys[nv + 1]};
        if (i == 0) {
            t.key = keys[nv + 1];
            t.revision = r->mod_revision;
        } else {
            more[t.n_more++] = (cl_txn_cmp){
                .key = keys[nv + 1], .target = CL_CMP_MOD, .revision = r->mod_revision};
        }
        nv += 2;
    }
    t.more = more;
    es_buf body;
    es_buf_init(&body, CL_ETCD_REQUEST_MAX);
    cr_assert_eq(cl_wire_txn(&body, &t), 0);
    cr_assert_leq(body.len, bytes + 64, "body %zu, estimate %zu", body.len, bytes);
    cr_assert_eq(t.n_more + 1, taken);
    es_buf_free(&body);
    for (size_t i = 0; i < nv; i++)
        es_buf_free(&vals[i]);
}

Test(cluster_batch, a_request_that_does_not_compile_is_left_out_alone)
{
    strategy(rqs[1], "spread", "nowhere");
    for (int i = 0; i < 3; i++)
        rqs[i]->memory = 1024;
    size_t taken = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 3, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, 3);
    cr_assert_eq(out[0].placed, 1);
    cr_assert_eq(out[1].err, -EINVAL);
    cr_assert_eq(out[1].placed, 0);
    cr_assert_eq(out[2].placed, 1);
    cr_assert_neq(out[0].where[0], out[2].where[0], "the bad one took no capacity");
}

Test(cluster_batch, bad_arguments)
{
    size_t taken = 9;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 0, 0, 3, out, &taken), -EINVAL);
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, NULL, 1, 0, 3, out, &taken), -EINVAL);
    rqs[0]->count = 0;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 1, 0, 3, out, &taken), -EINVAL);
    rqs[0]->count = CL_TK_COUNT_MAX + 1;
    cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, rqs, 1, 0, 3, out, &taken), -EINVAL);
    /* no instance at all: placed nowhere, for AGENT */
    rqs[0]->count = 2;
    cr_assert_eq(cl_bt_place(NULL, 0, NULL, NULL, rqs, 1, 0, 3, out, &taken), 0);
    cr_assert_eq(taken, 1);
    cr_assert_eq(out[0].placed, 0);
    cr_assert_eq(out[0].reason, CL_PL_R_NO_INSTANCE);
}

/* The receiving agent refuses a RunTask by cl_bt_request_too_large, the
 * leader by cl_bt_place's -E2BIG: they must agree on every request, or one
 * would be refused that the leader places (or sent on to a certain refusal). */
Test(cluster_batch, too_large_alone_is_what_the_leader_fails)
{
    memset(big_ov, ' ', sizeof big_ov);
    big_ov[0] = '{';
    big_ov[sizeof big_ov - 1] = '}';
    int seen_large = 0, seen_fits = 0;
    for (int64_t count = 1; count <= CL_TK_COUNT_MAX; count++)
        for (size_t len = 1024; len <= sizeof big_ov; len += 1024) {
            rq_store[0].count = count;
            rq_store[0].memory = 1;
            rq_store[0].overrides = big_ov;
            rq_store[0].overrides_len = len;
            big_ov[len - 1] = '}';
            cl_tk_request *one[1] = {&rq_store[0]};
            size_t taken = 0;
            cr_assert_eq(cl_bt_place(cands, N, NULL, NULL, one, 1, 0, 3, out, &taken), 0);
            cr_assert_eq(taken, 1);
            bool large = cl_bt_request_too_large(&rq_store[0]);
            cr_assert_eq(out[0].err == -E2BIG, large, "count %lld, %zu bytes of overrides",
                         (long long)count, len);
            cr_assert_eq(large, cl_bt_request_bytes(&rq_store[0]) > CL_BT_BYTES_MAX ||
                                    cl_bt_request_ops(&rq_store[0]) > CL_BT_OPS_MAX);
            seen_large += large;
            seen_fits += !large;
            big_ov[len - 1] = ' ';
        }
    cr_assert_gt(seen_large, 0);
    cr_assert_gt(seen_fits, 0);
    /* no overrides: every count fits */
    rq_store[0].overrides = NULL;
    rq_store[0].overrides_len = 0;
    rq_store[0].count = CL_TK_COUNT_MAX;
    cr_assert_not(cl_bt_request_too_large(&rq_store[0]));
}
