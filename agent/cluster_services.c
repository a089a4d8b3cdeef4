/* cluster_services.c - see cluster_services.h. */
#include "agent/cluster_services.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/api/tasks.h"
#include "agent/metrics.h"
#include "agent/services/redeploy.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"

static void copy_cut(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

int ag_csvc_to_record(const ag_service *v, cl_sv_record *rec)
{
    int64_t mod = rec->mod_revision;
    memset(rec, 0, sizeof *rec);
    rec->mod_revision = mod;
    copy_cut(rec->name, sizeof rec->name, v->name);
    copy_cut(rec->status, sizeof rec->status, ag_svc_status_name(v->status));
    copy_cut(rec->family, sizeof rec->family, v->family);
    rec->revision = v->revision;
    rec->desired = v->desired;
    rec->max_percent = v->max_percent;
    rec->min_healthy = v->min_healthy_percent;
    rec->cb_enable = v->cb_enable;
    rec->cb_rollback = v->cb_rollback;
    rec->created_at = v->created_at;
    rec->inactive_at = v->inactive_at;
    rec->redeployed_at = v->redeployed_at;
    if (v->placement) {
        memcpy(rec->strategies, v->placement->strategies, sizeof rec->strategies);
        rec->n_strategies = v->placement->n_strategies;
        memcpy(rec->constraints, v->placement->constraints, sizeof rec->constraints);
        rec->n_constraints = v->placement->n_constraints;
    }
    if (v->n_deps > CL_SV_DEPLOYMENTS_MAX || v->tags.n > CL_SV_TAGS_MAX)
        return -EINVAL;
    for (size_t i = 0; i < v->n_deps; i++) {
        const ag_svc_deployment *d = &v->deps[i];
        cl_sv_deployment *o = &rec->deps[i];
        copy_cut(o->id, sizeof o->id, d->id);
        copy_cut(o->status, sizeof o->status, ag_dep_status_name(d->status));
        copy_cut(o->family, sizeof o->family, d->family);
        o->revision = d->revision;
        o->desired = d->desired;
        copy_cut(o->rollout, sizeof o->rollout, ag_rollout_name(d->rollout));
        copy_cut(o->rollout_reason, sizeof o->rollout_reason, d->rollout_reason);
        o->created_at = d->created_at;
        o->updated_at = d->updated_at;
    }
    rec->n_deps = v->n_deps;
    size_t ne = v->n_events < CL_SV_EVENTS_MAX ? v->n_events : CL_SV_EVENTS_MAX;
    for (size_t i = 0; i < ne; i++) {
        copy_cut(rec->events[i].id, sizeof rec->events[i].id, v->events[i].id);
        rec->events[i].created_ms = v->events[i].created_ms;
        copy_cut(rec->events[i].message, sizeof rec->events[i].message, v->events[i].message);
    }
    rec->n_events = ne;
    for (size_t i = 0; i < v->tags.n; i++) {
        /* never cut: a cut tag would be another tag */
        if (strlen(v->tags.items[i].key) >= sizeof rec->tags[i].key ||
            strlen(v->tags.items[i].value) >= sizeof rec->tags[i].value)
            return -EINVAL;
        copy_cut(rec->tags[i].key, sizeof rec->tags[i].key, v->tags.items[i].key);
        copy_cut(rec->tags[i].value, sizeof rec->tags[i].value, v->tags.items[i].value);
    }
    rec->n_tags = v->tags.n;
    return 0;
}

/* The record's deployments replace the one ag_service_new made. */
static int set_deployments(ag_service *v, const cl_sv_record *rec)
{
    if (rec->n_deps < 1 || rec->n_deps > AG_SVC_DEPLOYMENTS_MAX)
        return -EINVAL;
    for (size_t i = 0; i < v->n_deps; i++) {
        es_free(v->deps[i].family);
        es_free(v->deps[i].rollout_reason);
    }
    memset(v->deps, 0, sizeof v->deps);
    v->n_deps = 0;
    for (size_t i = 0; i < rec->n_deps; i++) {
        const cl_sv_deployment *r = &rec->deps[i];
        ag_svc_deployment *d = &v->deps[i];
        if (strlen(r->id) >= sizeof d->id || ag_rollout_parse(r->rollout, &d->rollout) < 0)
            return -EINVAL;
        memcpy(d->id, r->id, strlen(r->id) + 1);
        d->status = i == 0 ? AG_DEP_PRIMARY : AG_DEP_ACTIVE;
        d->family = es_strdup(r->family);
        d->rollout_reason = r->rollout_reason[0] ? es_strdup(r->rollout_reason) : NULL;
        v->n_deps = i + 1; /* freed with v from here */
        if (!d->family || (r->rollout_reason[0] && !d->rollout_reason))
            return -ENOMEM;
        d->revision = r->revision;
        d->desired = (int)r->desired;
        d->created_at = r->created_at;
        d->updated_at = r->updated_at;
    }
    return 0;
}

static int set_events(ag_service *v, const cl_sv_record *rec)
{
    for (size_t i = 0; i < rec->n_events && i < AG_SVC_EVENTS_MAX; i++) {
        ag_svc_event *e = &v->events[i];
        snprintf(e->id, sizeof e->id, "%s", rec->events[i].id);
        e->created_ms = rec->events[i].created_ms;
        e->message = es_strdup(rec->events[i].message);
        if (!e->message)
            return -ENOMEM;
        v->n_events = i + 1;
    }
    return 0;
}

static int set_tags(ag_service *v, const cl_sv_record *rec)
{
    for (size_t i = 0; i < rec->n_tags; i++) {
        const cl_sv_tag *t = &rec->tags[i];
        if (i >= AG_TAGS_MAX || !ag_tag_key_ok(t->key) || !ag_tag_value_ok(t->value))
            return -EINVAL;
        v->tags.items[i].key = es_strdup(t->key);
        v->tags.items[i].value = es_strdup(t->value);
        v->tags.n = i + 1;
        if (!v->tags.items[i].key || !v->tags.items[i].value)
            return -ENOMEM;
    }
    ag_redeploy_policy p;
    char err[AG_TAGS_ERR_MAX];
    if (ag_redeploy_policy_read(&v->tags, &p, err, sizeof err) < 0)
        return -EINVAL; /* refused where the tags arrived: not written by us */
    v->redeploy = p.enabled;
    v->redeploy_min_interval_s = p.min_interval_s;
    return 0;
}

int ag_csvc_from_record(const cl_sv_record *rec, const char *region, const char *account,
                        const char *cluster, ag_service **out)
{
    ag_svc_status status;
    if (ag_svc_status_parse(rec->status, &status) < 0)
        return -EINVAL;
    ag_service *v = NULL;
    int r = ag_service_new(region, account, cluster, rec->name, rec->family, rec->revision,
                           (int)rec->desired, (int)rec->max_percent, (int)rec->min_healthy,
                           rec->cb_enable, rec->cb_rollback, rec->created_at, &v);
    if (r < 0)
        return r;
    v->status = status;
    v->inactive_at = rec->inactive_at;
    v->redeployed_at = rec->redeployed_at;
    ag_svc_placement p = {.n_strategies = rec->n_strategies, .n_constraints = rec->n_constraints};
    memcpy(p.strategies, rec->strategies, sizeof p.strategies);
    memcpy(p.constraints, rec->constraints, sizeof p.constraints);
    if ((r = set_deployments(v, rec)) == 0 && (r = set_events(v, rec)) == 0 &&
        (r = set_tags(v, rec)) == 0)
        r = ag_service_set_placement(v, &p);
    if (r < 0) {
        ag_service_free(v);
        return r;
    }
    *out = v;
    return 0;
}

int ag_csvc_task_view(const cl_tk_status *st, const cl_tk_assignment *as, bool stop_asked,
                      const char *arn, ag_svc_task *out)
{
    memset(out, 0, sizeof *out);
    if (!st && !as)
        return -EINVAL;
    out->arn = arn;
    if (!st) {
        /* placed, not launched yet (or its first status not written) */
        out->id = as->task_id;
        out->started_by = as->started_by[0] ? as->started_by : NULL;
        out->last_status = AG_TASK_PROVISIONING;
        out->desired_status = stop_asked ? AG_TASK_STOPPED : AG_TASK_RUNNING;
        out->created_at = as->created_at;
        return 0;
    }
    out->id = st->task_id;
    out->started_by = st->started_by[0] ? st->started_by : NULL;
    out->stopped_reason = st->stopped_reason[0] ? st->stopped_reason : NULL;
    out->created_at = st->created_at;
    out->stopped_at = st->stopped_at;
    if (ag_task_status_parse(st->last_status, &out->last_status) < 0 ||
        ag_task_status_parse(st->desired_status, &out->desired_status) < 0 ||
        (st->stop_code[0] && ag_stop_code_parse(st->stop_code, &out->stop_code) < 0))
        return -EINVAL;
    if (stop_asked)
        out->desired_status = AG_TASK_STOPPED;
    /* a record not STOPPED whose assignment is gone is on its way out
     * (its owner deletes the assignment with the STOPPED write; the
     * leader with a lost host's): not alive any more */
    if (!as && out->last_status != AG_TASK_STOPPED)
        out->desired_status = AG_TASK_STOPPED;
    return 0;
}

bool ag_csvc_backoff_holds(const ag_csvc_backoff *b, uint64_t now_ms, uint64_t gen)
{
    return b->delay_ms && now_ms < b->until_ms && gen == b->gen;
}

void ag_csvc_backoff_placed(ag_csvc_backoff *b, size_t n_placed, size_t n_failed, uint64_t now_ms,
                            uint64_t gen)
{
    if (n_placed || !n_failed) {
        memset(b, 0, sizeof *b); /* something fits again */
        return;
    }
    /* the same capacity as when it last fitted nowhere: longer; else from
     * the start (something changed, and still nothing fits) */
    if (b->delay_ms && gen == b->gen)
        b->delay_ms =
            b->delay_ms * 2 < AG_CSVC_BACKOFF_MAX_MS ? b->delay_ms * 2 : AG_CSVC_BACKOFF_MAX_MS;
    else
        b->delay_ms = AG_CSVC_BACKOFF_MIN_MS;
    b->until_ms = now_ms + b->delay_ms;
    b->gen = gen;
}

/* ---- the runtime ----------------------------------------------------------------- */

#define ANSWER_MAX (1u << 20)

/* What this agent knows of one services/<name> key, and the write of the
 * model's latest change: one at a time per key (a second would compare a
 * revision the first one changes); changes meanwhile are written after it,
 * as one. */
typedef struct name_state {
    struct name_state *next;
    char name[CL_SV_NAME_MAX + 1];
    int64_t rev; /* the key's mod_revision as last seen (0: none) */
    bool inflight;
    uint64_t wanted, sent, done; /* generations: persist asks, a write carries, etcd holds */
    ag_csvc_backoff backoff;     /* the leader's asks while its tasks fit nowhere */
} name_state;

/* an API write answered once etcd holds it */
typedef struct waiter {
    struct waiter *next;
    char name[CL_SV_NAME_MAX + 1];
    uint64_t gen;
    bool with_tags, creation;
    aw_listener_reply *reply;
    /* an UpdateService or a DeleteService: applied again to the fresh
     * record when another agent's write won (at most AG_CSVC_UPDATE_TRIES
     * times) */
    bool has_update, has_delete, force;
    int tries;
    ag_svc_update_req update;
    char family[CL_TK_FAMILY_MAX + 1];
} waiter;

struct ag_cluster_services {
    uv_loop_t *loop;
    cl_member *member;
    ag_cluster_tasks *tasks;
    ag_svc_sched *sched;
    ag_store *store;
    ag_api *api;
    char cluster[CL_CLUSTER_MAX + 1], region[64], account[64];
    char prefix[CL_ETCD_KEY_MAX + 1];
    uv_timer_t flush; /* sends what persist asked, after the pass that asked */
    bool stopping, timer_closed, free_asked;
    name_state *names;
    waiter *waiters;
    ag_cluster_services_stats stats;
};

static name_state *state_of(ag_cluster_services *x, const char *name, bool create)
{
    for (name_state *n = x->names; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return n;
    if (!create)
        return NULL;
    name_state *n = es_calloc(1, sizeof *n);
    if (!n)
        return NULL;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->next = x->names;
    x->names = n;
    return n;
}

/* ---- the census: the cluster's tasks of the service ---- */

typedef struct walk {
    ag_svc_task_fn fn;
    void *arg;
    ag_cluster_services *x;
} walk;

static int walk_task(void *arg, const ag_cluster_task_ref *t)
{
    walk *w = arg;
    if (t->rq) {
        /* not placed yet: its tasks are coming (PROVISIONING, no ARN) */
        for (int64_t i = 0; i < t->rq->count; i++) {
            ag_svc_task v = {.id = t->rq->id,
                             .started_by = t->rq->started_by,
                             .last_status = AG_TASK_PROVISIONING,
                             .desired_status = AG_TASK_RUNNING,
                             .created_at = t->rq->created_at};
            if (w->fn(w->arg, &v))
                return 1;
        }
        return 0;
    }
    ag_svc_task v;
    if (ag_csvc_task_view(t->st, t->as, t->stop_asked, t->arn, &v) < 0) {
        w->x->stats.bad++;
        return 0;
    }
    /* DRAINING: replaced elsewhere first, then stopped (placement puts
     * nothing on a DRAINING instance) */
    const cl_instance *in = cl_member_find(w->x->member, t->as ? t->as->instance : t->st->instance);
    v.to_replace = in && strcmp(in->status, "DRAINING") == 0;
    return w->fn(w->arg, &v);
}

static void ops_foreach_task(void *ctx, const ag_service *v, ag_svc_task_fn fn, void *arg)
{
    ag_cluster_services *x = ctx;
    char group[CL_TK_GROUP_MAX + 1];
    snprintf(group, sizeof group, "service:%s", v->name);
    walk w = {.fn = fn, .arg = arg, .x = x};
    ag_cluster_tasks_foreach_group(x->tasks, group, walk_task, &w);
}

/* ---- launch: the leader's own placement, through requests/ ---- */

static size_t ops_launch(void *ctx, const ag_service *v, const ag_svc_deployment *d, int n,
                         char (*ids)[AG_TASK_ID_HEX + 1], size_t cap)
{
    (void)ids;
    (void)cap;
    ag_cluster_services *x = ctx;
    name_state *ns = state_of(x, v->name, false);
    if (ns && ag_csvc_backoff_holds(&ns->backoff, uv_now(x->loop),
                                    ag_cluster_tasks_capacity_gen(x->tasks))) {
        x->stats.backoffs++;
        return 0; /* nothing fitted and nothing changed: asked again later */
    }
    ag_taskdef *td = NULL;
    if (ag_store_taskdef_get(x->store, d->family, d->revision, &td) < 0) {
        es_err("service %s: task definition %s:%" PRId64 ": %s", v->name, d->family, d->revision,
               ag_store_errmsg(x->store));
        return 0;
    }
    cl_tk_request *rq = es_calloc(1, sizeof *rq);
    size_t got = 0;
    while (rq && n > 0) {
        memset(rq, 0, sizeof *rq);
        snprintf(rq->family, sizeof rq->family, "%s", d->family);
        rq->revision = d->revision;
        rq->count = n < CL_TK_COUNT_MAX ? n : CL_TK_COUNT_MAX;
        rq->cpu = ag_api_td_reservation(td, false);
        rq->memory = ag_api_td_reservation(td, true);
        snprintf(rq->group, sizeof rq->group, "service:%s", v->name);
        snprintf(rq->started_by, sizeof rq->started_by, "%s", d->id);
        snprintf(rq->launch_type, sizeof rq->launch_type, "EC2");
        if (v->placement) {
            memcpy(rq->strategies, v->placement->strategies, sizeof rq->strategies);
            rq->n_strategies = v->placement->n_strategies;
            memcpy(rq->constraints, v->placement->constraints, sizeof rq->constraints);
            rq->n_constraints = v->placement->n_constraints;
        }
        rq->created_at = (int64_t)time(NULL);
        int r = ag_cluster_tasks_request(x->tasks, rq);
        if (r < 0) {
            es_err("service %s: cannot ask the cluster for tasks: %s", v->name, strerror(-r));
            break;
        }
        x->stats.requests++;
        got += (size_t)rq->count;
        n -= (int)rq->count;
    }
    es_free(rq);
    ag_taskdef_free(td);
    return got;
}

static int ops_stop(void *ctx, const ag_service *v, const char *task_arn, const char *reason)
{
    ag_cluster_services *x = ctx;
    const char *slash = strrchr(task_arn, '/');
    int r = ag_cluster_tasks_stop_task(x->tasks, slash ? slash + 1 : task_arn,
                                       AG_STOP_SERVICE_SCHEDULER_INITIATED, reason);
    if (r < 0)
        es_warn("service %s: cannot ask the cluster to stop %s: %s", v->name, task_arn,
                strerror(-r));
    else
        x->stats.stops++;
    return r;
}

/* ---- persist: services/<name>, on the revision last seen ---- */

static void on_flush(uv_timer_t *t);

static void flush_soon(ag_cluster_services *x)
{
    if (!x->stopping)
        uv_timer_start(&x->flush, on_flush, 0, 0);
}

static int ops_persist(void *ctx, const ag_service *v)
{
    ag_cluster_services *x = ctx;
    name_state *n = state_of(x, v->name, true);
    if (!n)
        return -ENOMEM;
    n->wanted++;
    flush_soon(x);
    return 0;
}

/* forget and persist are one thing here: the flush writes what the
 * scheduler holds under the name when it runs (nothing: a delete) */
static int ops_forget(void *ctx, const ag_service *v)
{
    return ops_persist(ctx, v);
}

static int ops_load(void *ctx, int (*fn)(ag_service *v, void *arg), void *arg)
{
    (void)ctx;
    (void)fn;
    (void)arg;
    return 0; /* the services/ mirror brings them */
}

static bool ops_in_charge(void *ctx)
{
    ag_cluster_services *x = ctx;
    return !x->stopping && ag_cluster_tasks_is_leader(x->tasks);
}

static const ag_svc_ops cluster_ops = {.foreach_task = ops_foreach_task,
                                       .launch = ops_launch,
                                       .stop = ops_stop,
                                       .persist = ops_persist,
                                       .forget = ops_forget,
                                       .load = ops_load,
                                       .in_charge = ops_in_charge,
                                       .launch_names_nothing = true};

/* The service of exactly that name the scheduler holds (the ACTIVE one
 * first), or NULL. */
static ag_service *held(ag_cluster_services *x, const char *name)
{
    ag_service *v = ag_svc_find(x->sched, name);
    return v && strcmp(v->name, name) == 0 ? v : NULL;
}

static void answer(ag_cluster_services *x, waiter *w, const char *error_code, const char *error)
{
    if (error_code) {
        ag_api_reply_error(x->api, w->reply, error_code, "%s", error);
        return;
    }
    ag_service *v = held(x, w->name);
    es_buf out;
    es_buf_init(&out, ANSWER_MAX);
    es_jw j;
    es_jw_init(&j, &out);
    es_jw_obj(&j);
    es_jw_key(&j, "service");
    if (v)
        ag_service_write_json(v, w->with_tags, &j);
    else
        es_jw_null(&j);
    es_jw_obj_end(&j);
    if (es_jw_finish(&j) < 0)
        ag_api_reply_error(x->api, w->reply, "ServerException", "the answer is too large");
    else
        aw_listener_reply_ok(w->reply, out.data, out.len);
    es_buf_free(&out);
}

/* Answers the waiters of n whose change etcd now holds (error NULL), or
 * will not hold (error set). */
static void answer_waiters(ag_cluster_services *x, const name_state *n, uint64_t upto,
                           const char *code, const char *error)
{
    for (waiter **pp = &x->waiters; *pp;) {
        waiter *w = *pp;
        if (strcmp(w->name, n->name) != 0 || w->gen > upto) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (code && w->creation && strcmp(code, "InvalidParameterException") == 0)
            answer(x, w, code, "Creation of service was not idempotent.");
        else
            answer(x, w, code, error);
        es_free(w);
    }
}

typedef struct write_op {
    ag_cluster_services *x;
    char name[CL_SV_NAME_MAX + 1];
} write_op;

static void flush(ag_cluster_services *x);
static void adopt_kv(ag_cluster_services *x, const cl_kv *kv);

/* Another write won the race for n: the UpdateService and DeleteService
 * calls whose change was in the losing write are applied again to the
 * record now in the scheduler (the winner's, just adopted) and written
 * again: both calls stand, as when ECS takes two at once. One that no
 * longer applies (the service was deleted meanwhile, or scaled up again
 * for a delete without force) is answered with ECS's error for it; one
 * the winner's record already satisfies (a delete of a service already
 * DRAINING) is answered now. */
static void reapply_updates(ag_cluster_services *x, name_state *n)
{
    for (waiter **pp = &x->waiters; *pp;) {
        waiter *w = *pp;
        if (strcmp(w->name, n->name) != 0 || w->gen > n->sent ||
            !(w->has_update || w->has_delete) || w->tries >= AG_CSVC_UPDATE_TRIES) {
            pp = &w->next;
            continue;
        }
        w->tries++;
        ag_service *v = NULL;
        char err[AG_SVC_ERR_MAX] = "";
        int r = w->has_update ? ag_svc_update(x->sched, &w->update, &v, err, sizeof err)
                              : ag_svc_delete(x->sched, w->name, w->force, &v, err, sizeof err);
        if (r == 0 && n->wanted > n->sent) {
            x->stats.reapplied++;
            es_info("service %s: changed in the cluster meanwhile; %s applied again to the new "
                    "record (try %d)",
                    n->name, w->has_update ? "UpdateService" : "DeleteService", w->tries + 1);
            w->gen = n->wanted; /* persisted: the next write carries it */
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (r == 0)
            answer(x, w, NULL, NULL); /* the record etcd holds already is what was asked */
        else
            ag_api_reply_error(x->api, w->reply, ag_api_services_error_code(r, err), "%s", err);
        es_free(w);
    }
}

static void on_written(void *arg, int err, const cl_answer *a)
{
    write_op *op = arg;
    ag_cluster_services *x = op->x;
    name_state *n = state_of(x, op->name, false);
    es_free(op);
    if (!n)
        return;
    n->inflight = false;
    if (err) {
        x->stats.write_errors++;
        if (err != CL_ETCD_E_CANCELED)
            es_warn("service %s: not written to the cluster (etcd): %s", n->name,
                    cl_etcd_strerror(err));
        answer_waiters(x, n, n->sent, "ServerException",
                       "the cluster (etcd) did not take the change; it is tried again");
        n->done = n->sent; /* asked again: the model still holds the change */
        if (!x->stopping && err != CL_ETCD_E_CANCELED)
            n->wanted++;
    } else if (!a->succeeded) {
        /* another agent (an API call) or an earlier leader wrote first: the
         * failure branch read the record as it is now, which replaces ours
         * in memory at once (waiting for the mirror raced it: a record the
         * mirror had already brought left this agent comparing a revision
         * that would never hold again) */
        x->stats.conflicts++;
        if (a->n_kvs == 1) {
            adopt_kv(x, &a->kvs[0]);
        } else {
            ag_svc_sched_drop(x->sched, n->name); /* deleted meanwhile */
            n->rev = 0;
        }
        reapply_updates(x, n);
        es_notice("service %s: changed in the cluster meanwhile; this agent's change is dropped%s",
                  n->name, n->wanted > n->sent ? " (a call is applied again)" : "");
        answer_waiters(x, n, n->sent, "InvalidParameterException",
                       "the service changed meanwhile (through another agent, or by the "
                       "cluster's leader): read it again and retry");
        n->done = n->sent;
    } else {
        x->stats.writes++;
        n->rev = a->revision;
        n->done = n->sent;
        answer_waiters(x, n, n->done, NULL, NULL);
    }
    flush(x);
}

static int send_one(ag_cluster_services *x, name_state *n)
{
    cl_etcd *e = cl_member_etcd(x->member);
    if (!e)
        return -ECANCELED;
    char key[CL_ETCD_KEY_MAX + 1];
    if (cl_sv_key(x->cluster, n->name, key, sizeof key) < 0)
        return -EINVAL;
    ag_service *v = held(x, n->name);
    if (!v && n->rev <= 0)
        return 1; /* nothing in etcd, nothing to write */
    cl_sv_record *rec = v ? es_calloc(1, sizeof *rec) : NULL;
    es_buf val;
    es_buf_init(&val, CL_SV_VALUE_MAX);
    int r = v && !rec ? -ENOMEM : 0;
    if (r == 0 && v && (r = ag_csvc_to_record(v, rec)) == 0)
        r = cl_sv_write(rec, &val, NULL);
    cl_txn txn;
    memset(&txn, 0, sizeof txn);
    txn.key = key;
    txn.target = CL_CMP_MOD;
    txn.revision = n->rev > 0 ? n->rev : 0;
    txn.failure_range = true; /* a lost race reads the winner's record back */
    txn.success[txn.n_success++] =
        v ? (cl_txn_op){.key = key, .value = val.data, .value_len = val.len}
          : (cl_txn_op){.is_delete = true, .key = key};
    write_op *op = r == 0 ? es_calloc(1, sizeof *op) : NULL;
    if (r == 0 && !op)
        r = -ENOMEM;
    if (r == 0) {
        op->x = x;
        snprintf(op->name, sizeof op->name, "%s", n->name);
        if (cl_etcd_txn(e, &txn, on_written, op) < 0) {
            es_free(op);
            r = -ECANCELED;
        }
    }
    es_buf_free(&val);
    es_free(rec);
    return r;
}

static void flush(ag_cluster_services *x)
{
    if (x->stopping)
        return;
    for (name_state *n = x->names; n; n = n->next) {
        if (n->inflight || n->wanted == n->sent)
            continue;
        uint64_t gen = n->wanted;
        int r = send_one(x, n);
        n->sent = gen;
        if (r == 0) {
            n->inflight = true;
            continue;
        }
        n->done = gen;
        if (r == 1) {
            answer_waiters(x, n, gen, NULL, NULL);
            continue;
        }
        es_err("service %s: cannot be written to the cluster: %s", n->name, strerror(-r));
        answer_waiters(x, n, gen, "ServerException",
                       "the service cannot be written to the cluster");
    }
}

static void on_flush(uv_timer_t *t)
{
    flush(t->data);
}

/* ---- the mirror of services/ ---- */

/* A services/ key's value into the scheduler, unless this agent has seen
 * it or a newer one (n->rev). */
static void adopt_kv(ag_cluster_services *x, const cl_kv *kv)
{
    cl_sv_record *rec = es_malloc(sizeof *rec);
    char why[200];
    if (!rec)
        return;
    if (cl_sv_read(x->prefix, kv, rec, why, sizeof why) < 0) {
        x->stats.bad++;
        es_warn("cluster: service record %.300s skipped: %s", kv->key, why);
        es_free(rec);
        return;
    }
    name_state *n = state_of(x, rec->name, true);
    ag_service *v = NULL;
    if (n && kv->mod_revision <= n->rev) {
        es_free(rec); /* this agent's own write, or older */
        return;
    }
    int r = ag_csvc_from_record(rec, x->region, x->account, x->cluster, &v);
    if (r < 0) {
        x->stats.bad++;
        es_warn("cluster: service record %.300s skipped: %s", kv->key, strerror(-r));
    } else if (ag_svc_sched_adopt(x->sched, v) == 0) {
        x->stats.adopted++;
        if (n)
            n->rev = kv->mod_revision;
    }
    es_free(rec);
}

static void on_sv_put(void *arg, const cl_kv *kv)
{
    ag_cluster_services *x = arg;
    if (!x->stopping)
        adopt_kv(x, kv);
}

static void on_sv_delete(void *arg, const char *key)
{
    ag_cluster_services *x = arg;
    const char *slash = strrchr(key, '/');
    if (x->stopping || !slash || !cl_sv_name_ok(slash + 1))
        return;
    name_state *n = state_of(x, slash + 1, false);
    if (n)
        n->rev = 0;
    ag_svc_sched_drop(x->sched, slash + 1);
    x->stats.dropped++;
}

/* ---- what the placement placed, and could not ---- */

/* The service's events once etcd holds a placement: ECS's "has started N
 * tasks: (task ID) ..." for the placed ones (the launch could not name
 * them), and for the others ECS's "was unable to place a task" with the
 * reason the placement found (e.g. "DistinctInstance placement constraint
 * unsatisfied"), said again only when something else was said in between
 * (the leader asks again every pass). */
static void on_placed(void *arg, const char *group, const char *started_by, const char *const *ids,
                      size_t n_placed, size_t n_failed, const char *reason)
{
    ag_cluster_services *x = arg;
    (void)started_by;
    if (x->stopping || strncmp(group, "service:", 8) != 0)
        return;
    ag_service *v = held(x, group + 8);
    if (!v)
        return;
    name_state *ns = state_of(x, v->name, true);
    if (ns)
        ag_csvc_backoff_placed(&ns->backoff, n_placed, n_failed, uv_now(x->loop),
                               ag_cluster_tasks_capacity_gen(x->tasks));
    int64_t now = (int64_t)time(NULL);
    bool said = false;
    if (n_placed) {
        es_buf b;
        es_buf_init(&b, AG_SVC_EVENT_MAX);
        if (ag_svc_word_started(&b, v->name, ids, n_placed) == 0)
            said = ag_service_event(v, now, "%s", es_buf_cstr(&b)) == 0;
        es_buf_free(&b);
    }
    if (n_failed) {
        char msg[AG_SVC_EVENT_MAX];
        snprintf(msg, sizeof msg,
                 "(service %s) was unable to place a task because no container instance met all "
                 "of its requirements. Reason: %s.",
                 v->name, reason);
        if (!v->n_events || strcmp(v->events[0].message, msg) != 0)
            said = ag_service_event(v, now, "%s", msg) == 0 || said;
    }
    if (said)
        (void)ops_persist(x, v);
}

/* ---- the API's writes ---- */

static int after_write(void *arg, const char *name, bool with_tags, bool creation,
                       const ag_api_services_redo *redo, aw_listener_reply *reply)
{
    ag_cluster_services *x = arg;
    if (x->stopping)
        return -ECANCELED;
    name_state *n = state_of(x, name, false);
    waiter *w = es_calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    snprintf(w->name, sizeof w->name, "%s", name);
    w->with_tags = with_tags;
    w->creation = creation;
    w->reply = reply;
    const ag_svc_update_req *update = redo ? redo->update : NULL;
    if (redo && redo->deletion) {
        w->has_delete = true;
        w->force = redo->force;
    }
    if (update) {
        w->has_update = true;
        w->update = *update;
        snprintf(w->name, sizeof w->name, "%s", name);
        w->update.name = w->name;
        if (update->family) {
            snprintf(w->family, sizeof w->family, "%s", update->family);
            w->update.family = w->family;
        }
    }
    if (!n || n->done >= n->wanted) {
        answer(x, w, NULL, NULL); /* nothing to wait for */
        es_free(w);
        return 0;
    }
    w->gen = n->wanted;
    w->next = x->waiters;
    x->waiters = w;
    return 0;
}

/* ---- leadership ---- */

/* A new leader carries the deployments on from its first turn, not at the
 * scheduler's next tick. */
static void on_member_change(void *arg, cl_member_change what)
{
    ag_cluster_services *x = arg;
    if (!x->stopping && what == CL_MEMBER_CHANGE_LEADER && cl_member_is_leader(x->member))
        ag_svc_sched_soon(x->sched);
}

/* ---- start, stop ---- */

static void metrics(void *arg, ag_metrics *m)
{
    ag_cluster_services *x = arg;
    ag_metrics_sync_counter(m, "ecs_agent_cluster_service_writes_total",
                            "Service records this agent wrote to etcd", NULL,
                            (double)x->stats.writes);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_service_conflicts_total",
                            "Service records whose write met a change by another agent", NULL,
                            (double)x->stats.conflicts);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_service_tasks_asked_total",
                            "Tasks this agent asked the cluster to place for services as leader",
                            NULL, (double)x->stats.requests);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_service_backoffs_total",
                            "Launches this agent held back as leader: the service's tasks fitted "
                            "nowhere and the cluster's capacity had not changed",
                            NULL, (double)x->stats.backoffs);
}

int ag_cluster_services_start(uv_loop_t *loop, cl_member *member, ag_cluster_tasks *tasks,
                              ag_svc_sched *sched, ag_store *store, ag_api *api,
                              ag_api_services *api_services, ag_cluster_services **out)
{
    *out = NULL;
    if (!tasks)
        return 0;
    ag_cluster_services *x = es_calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    *x = (ag_cluster_services){
        .loop = loop, .member = member, .tasks = tasks, .sched = sched, .store = store, .api = api};
    snprintf(x->cluster, sizeof x->cluster, "%s", cl_member_cluster(member));
    snprintf(x->region, sizeof x->region, "%s", ag_api_region(api));
    snprintf(x->account, sizeof x->account, "%s", ag_api_account(api));
    if (cl_sv_prefix(x->cluster, x->prefix, sizeof x->prefix) < 0) {
        es_free(x);
        return -EINVAL;
    }
    uv_timer_init(loop, &x->flush);
    x->flush.data = x;
    *out = x;
    int r = ag_svc_sched_set_ops(sched, &cluster_ops, x);
    if (r == 0)
        r = ag_api_add_metrics_hook(api, metrics, x);
    if (r == 0)
        r = cl_member_subscribe(member, on_member_change, x);
    if (r == 0) {
        cl_mirror_cbs cbs = {.on_put = on_sv_put, .on_delete = on_sv_delete, .arg = x};
        r = cl_member_mirror(member, CL_SV_LEAF, &cbs);
    }
    if (r < 0)
        return r;
    ag_cluster_tasks_on_placed(tasks, on_placed, x);
    ag_api_services_cluster c = {.after_write = after_write, .arg = x};
    ag_api_services_set_cluster(api_services, &c);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    ag_cluster_services *x = h->data;
    x->timer_closed = true;
    if (x->free_asked)
        ag_cluster_services_free(x);
}

void ag_cluster_services_stop(ag_cluster_services *x)
{
    if (!x || x->stopping)
        return;
    x->stopping = true;
    while (x->waiters) {
        waiter *w = x->waiters;
        x->waiters = w->next;
        ag_api_reply_error(x->api, w->reply, "ServerException",
                           "the agent is stopping; the change may still reach the cluster");
        es_free(w);
    }
    uv_close((uv_handle_t *)&x->flush, on_timer_closed);
}

void ag_cluster_services_free(ag_cluster_services *x)
{
    if (!x)
        return;
    if (!x->stopping)
        ag_cluster_services_stop(x);
    if (!x->timer_closed) {
        x->free_asked = true;
        return;
    }
    while (x->names) {
        name_state *n = x->names;
        x->names = n->next;
        es_free(n);
    }
    es_free(x);
}

void ag_cluster_services_get_stats(const ag_cluster_services *x, ag_cluster_services_stats *out)
{
    *out = x->stats;
}
