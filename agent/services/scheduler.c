/* scheduler.c - see scheduler.h. */
#include "agent/services/scheduler.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/services/redeploy.h"
#include "agent/tasks/engine.h"
#include "agent/metrics.h"
#include "agent/store/store.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

/* What a service's last drift event said, "valueFrom=count;" per stale value:
 * bounded, so a service with very many stale references says the first ones. */
#define DRIFT_SIG_MAX (64 * 1024)
/* The rotated secret an automatic deployment's event names: its ARN (an
 * SSM parameter's or a Secrets Manager secret's) and version. */
#define ROTATED_ARN_MAX 2048
#define ROTATED_VERSION_MAX 72 /* ag_secret_meta.latest_version */

struct ag_svc_sched {
    ag_svc_sched_config cfg;
    const ag_svc_ops *ops; /* cfg.ops, or local_ops over the engine and the store */
    void *ops_ctx;
    char *region, *account, *cluster;
    uv_timer_t timer;
    ag_service *svcs[AG_SVC_MAX];
    size_t n;
    bool closing, dirty;
    void (*done)(void *arg);
    void *done_arg;
    ag_series *m_services, *m_launches, *m_stops, *m_cb, *m_stale, *m_redeploys;
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static void persist(ag_svc_sched *s, ag_service *v)
{
    (void)s->ops->persist(s->ops_ctx, v); /* logged by the ops; the next change tries again */
}

#define RESTART_REASON "TaskFailedToStart: the agent restarted"

/* A task that failed on its own (not stopped by us, a user, or an agent
 * restart that interrupted its launch). */
static bool task_failed(const ag_svc_task *t)
{
    if (t->last_status != AG_TASK_STOPPED)
        return false;
    if (t->stop_code == AG_STOP_TASK_FAILED_TO_START)
        return !t->stopped_reason ||
               strncmp(t->stopped_reason, RESTART_REASON, strlen(RESTART_REASON)) != 0;
    /* as ECS's circuit breaker, a task that failed its health checks counts */
    if (t->stop_code == AG_STOP_SERVICE_SCHEDULER_INITIATED)
        return t->stopped_reason && strcmp(t->stopped_reason, AG_HEALTH_STOP_REASON) == 0;
    return t->stop_code == AG_STOP_ESSENTIAL_CONTAINER_EXITED;
}

/* ---- the local ops: this agent's engine and agent.db ---- */

typedef struct local_walk {
    ag_svc_task_fn fn;
    void *arg;
} local_walk;

static int local_task(void *arg, ag_task *t)
{
    local_walk *w = arg;
    ag_svc_task v = {.id = t->id,
                     .arn = t->arn,
                     .started_by = t->started_by,
                     .stopped_reason = t->stopped_reason,
                     .last_status = t->last_status,
                     .desired_status = t->desired_status,
                     .stop_code = t->stop_code,
                     .created_at = t->created_at,
                     .stopped_at = t->stopped_at,
                     .secrets = t->secrets,
                     .n_secrets = t->n_secrets};
    return w->fn(w->arg, &v);
}

static void local_foreach_task(void *ctx, const ag_service *v, ag_svc_task_fn fn, void *arg)
{
    (void)v;
    ag_svc_sched *s = ctx;
    local_walk w = {.fn = fn, .arg = arg};
    ag_engine_foreach_task(s->cfg.engine, local_task, &w);
}

static size_t local_launch(void *ctx, const ag_service *v, const ag_svc_deployment *d, int n,
                           char (*ids)[AG_TASK_ID_HEX + 1], size_t cap)
{
    ag_svc_sched *s = ctx;
    char group[AG_SVC_NAME_MAX + 16];
    snprintf(group, sizeof group, "service:%s", v->name);
    size_t got = 0;
    while (n > 0) {
        int count = (n < AG_ENGINE_RUN_MAX ? n : AG_ENGINE_RUN_MAX);
        ag_taskdef *td = NULL;
        int rc = ag_store_taskdef_get(s->cfg.store, d->family, d->revision, &td);
        if (rc < 0) {
            es_err("service %s: task definition %s:%" PRId64 ": %s", v->name, d->family,
                   d->revision, ag_store_errmsg(s->cfg.store));
            break;
        }
        ag_run_request req = {.td = td, .count = count, .started_by = d->id, .group = group};
        ag_task *tasks[AG_ENGINE_RUN_MAX];
        rc = ag_engine_run_task(s->cfg.engine, &req, tasks);
        if (rc < 0) {
            es_err("service %s: cannot start tasks: %s", v->name, strerror(-rc));
            break;
        }
        for (int i = 0; i < count; i++) {
            if (got < cap)
                snprintf(ids[got], sizeof ids[got], "%s", tasks[i]->id);
            got++;
        }
        n -= count;
    }
    return got;
}

static int local_stop(void *ctx, const ag_service *v, const char *task_arn, const char *reason)
{
    (void)v;
    ag_svc_sched *s = ctx;
    ag_task *t = NULL;
    return ag_engine_stop_task(s->cfg.engine, task_arn, AG_STOP_SERVICE_SCHEDULER_INITIATED, reason,
                               &t);
}

static int local_persist(void *ctx, const ag_service *v)
{
    ag_svc_sched *s = ctx;
    int rc = ag_store_service_put(s->cfg.store, v);
    if (rc < 0)
        es_err("service %s: cannot persist: %s", v->name, ag_store_errmsg(s->cfg.store));
    return rc;
}

static int local_forget(void *ctx, const ag_service *v)
{
    ag_svc_sched *s = ctx;
    int rc = ag_store_service_delete(s->cfg.store, v->arn);
    if (rc < 0)
        es_err("service %s: cannot remove it from the store: %s", v->name,
               ag_store_errmsg(s->cfg.store));
    return rc;
}

static int local_load(void *ctx, int (*fn)(ag_service *v, void *arg), void *arg)
{
    ag_svc_sched *s = ctx;
    return ag_store_service_foreach(s->cfg.store, fn, arg);
}

static const ag_svc_ops local_ops = {.foreach_task = local_foreach_task,
                                     .launch = local_launch,
                                     .stop = local_stop,
                                     .persist = local_persist,
                                     .forget = local_forget,
                                     .load = local_load};

typedef struct tref {
    char *arn;
    char id[AG_TASK_ID_HEX + 1];
    bool running;
} tref;

/* What one pass sees of one service. */
typedef struct census {
    ag_service *svc;
    tref *alive[AG_SVC_DEPLOYMENTS_MAX]; /* desired RUNNING, not stopped */
    size_t n_alive[AG_SVC_DEPLOYMENTS_MAX];
    int draining;
    /* alive tasks on a DRAINING instance, of any deployment: counted as an
     * older deployment's, so that the rolling-update plan replaces them */
    tref *replace;
    size_t n_replace;
    int replace_running, replace_pending;
    int stale_tasks;
    int alive_tasks, unchecked_tasks;    /* unchecked: a secret drift has no verdict on yet */
    char last_failure[AG_SVC_EVENT_MAX]; /* newest failed task of the primary */
    int64_t last_failure_at;
    bool oom;
    /* drift per valueFrom: names and counts */
    char *vf[64];
    int vf_count[64];
    size_t n_vf;
    /* the first rotated secret seen (the automatic deployment names it) */
    char rotated_arn[ROTATED_ARN_MAX];
    char rotated_version[ROTATED_VERSION_MAX];
} census;

static int census_task(void *arg, const ag_svc_task *t)
{
    census *c = arg;
    ag_service *v = c->svc;
    if (!t->started_by)
        return 0;
    size_t di = 0;
    for (; di < v->n_deps; di++)
        if (strcmp(t->started_by, v->deps[di].id) == 0)
            break;
    if (di == v->n_deps)
        return 0;
    ag_svc_deployment *d = &v->deps[di];
    if (t->last_status == AG_TASK_STOPPED) {
        if (task_failed(t) && t->created_at >= d->created_at) {
            d->failed++;
            if (di == 0 && t->stopped_at >= c->last_failure_at) {
                c->last_failure_at = t->stopped_at;
                snprintf(c->last_failure, sizeof c->last_failure, "(task %s) %s", t->id,
                         t->stopped_reason ? t->stopped_reason : "stopped");
            }
        }
        return 0;
    }
    if (t->desired_status == AG_TASK_STOPPED) {
        c->draining++;
        return 0;
    }
    bool running = t->last_status == AG_TASK_RUNNING;
    if (t->to_replace) {
        tref *rl = es_realloc(c->replace, (c->n_replace + 1) * sizeof *rl);
        if (!rl) {
            c->oom = true;
            return 1;
        }
        c->replace = rl;
        tref *x = &rl[c->n_replace];
        x->arn = t->arn ? es_strdup(t->arn) : NULL;
        if (t->arn && !x->arn) {
            c->oom = true;
            return 1;
        }
        snprintf(x->id, sizeof x->id, "%s", t->id ? t->id : "");
        x->running = running;
        c->n_replace++;
        if (running)
            c->replace_running++;
        else
            c->replace_pending++;
        return 0;
    }
    if (running)
        d->running++;
    else
        d->pending++;
    tref *arr = es_realloc(c->alive[di], (c->n_alive[di] + 1) * sizeof *arr);
    if (!arr) {
        c->oom = true;
        return 1;
    }
    c->alive[di] = arr;
    tref *r = &arr[c->n_alive[di]];
    /* no ARN: counted, cannot be stopped (a cluster's task not placed yet) */
    r->arn = t->arn ? es_strdup(t->arn) : NULL;
    if (t->arn && !r->arn) {
        c->oom = true;
        return 1;
    }
    snprintf(r->id, sizeof r->id, "%s", t->id ? t->id : "");
    r->running = running;
    c->n_alive[di]++;
    /* drift: what drift.c marked on this task */
    bool stale = false, unchecked = false;
    c->alive_tasks++;
    for (size_t i = 0; i < t->n_secrets; i++) {
        /* no verdict yet: drift has not looked at it (a secret it can
         * never judge is marked looked-at, not left pending for ever) */
        unchecked = unchecked || (t->secrets[i].drift == AG_DRIFT_UNKNOWN &&
                                  t->secrets[i].drift_checked_at == 0);
        if (t->secrets[i].drift != AG_DRIFT_STALE)
            continue;
        stale = true;
        if (!c->rotated_arn[0]) {
            const ag_secret_meta *m = &t->secrets[i];
            snprintf(c->rotated_arn, sizeof c->rotated_arn, "%s",
                     m->source_arn ? m->source_arn : m->value_from);
            snprintf(c->rotated_version, sizeof c->rotated_version, "%s", m->latest_version);
        }
        size_t k = 0;
        for (; k < c->n_vf; k++)
            if (strcmp(c->vf[k], t->secrets[i].value_from) == 0)
                break;
        if (k == c->n_vf) {
            if (c->n_vf == sizeof c->vf / sizeof *c->vf)
                continue;
            c->vf[k] = es_strdup(t->secrets[i].value_from);
            if (!c->vf[k])
                continue;
            c->vf_count[k] = 0;
            c->n_vf++;
        }
        /* count a task once per valueFrom */
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || (t->secrets[j].drift == AG_DRIFT_STALE &&
                            strcmp(t->secrets[j].value_from, t->secrets[i].value_from) == 0);
        if (!seen)
            c->vf_count[k]++;
    }
    c->stale_tasks += stale;
    c->unchecked_tasks += unchecked;
    return 0;
}

static void census_free(census *c)
{
    for (size_t d = 0; d < AG_SVC_DEPLOYMENTS_MAX; d++) {
        for (size_t i = 0; i < c->n_alive[d]; i++)
            es_free(c->alive[d][i].arn);
        es_free(c->alive[d]);
    }
    for (size_t k = 0; k < c->n_vf; k++)
        es_free(c->vf[k]);
    for (size_t i = 0; i < c->n_replace; i++)
        es_free(c->replace[i].arn);
    es_free(c->replace);
}

#define EVENT_TASKS_MAX 50 /* task ids named in one event */

typedef struct idlist {
    const char *ids[EVENT_TASKS_MAX];
    size_t n;     /* named */
    size_t total; /* counted */
} idlist;

/* Stops up to n of list's tasks that are (not) running; returns how many. */
static int stop_some(ag_svc_sched *s, const ag_service *c_svc, tref *list, size_t nlist, int n,
                     bool want_running, const char *reason, idlist *out)
{
    int got = 0;
    for (size_t i = 0; i < nlist && got < n; i++) {
        if (list[i].running != want_running || !list[i].arn)
            continue;
        if (s->ops->stop(s->ops_ctx, c_svc, list[i].arn, reason) == 0) {
            if (out->n < EVENT_TASKS_MAX)
                out->ids[out->n++] = list[i].id;
            out->total++;
            ag_series_add(s->m_stops, 1);
        }
        es_free(list[i].arn);
        list[i].arn = NULL;
        got++;
    }
    return got;
}

/* Launches n tasks of the primary deployment; their ids into ids. */
static size_t launch(ag_svc_sched *s, ag_service *v, int n, char (*ids)[AG_TASK_ID_HEX + 1],
                     size_t cap)
{
    size_t got = s->ops->launch(s->ops_ctx, v, &v->deps[0], n, ids, cap);
    ag_series_add(s->m_launches, (double)got);
    return got;
}

static void say_tasks(ag_service *v, int64_t now, bool started, const char *const *ids,
                      size_t shown, size_t n)
{
    if (n == 0)
        return;
    es_buf b;
    es_buf_init(&b, 64 + EVENT_TASKS_MAX * 48);
    int r = started ? ag_svc_word_started(&b, v->name, ids, shown)
                    : ag_svc_word_stopped(&b, v->name, ids, shown);
    if (r == 0 && shown < n) {
        /* the count says all of them; the list names the first ones */
        es_buf_reset(&b);
        r = es_buf_printf(&b, "(service %s) has %s %zu %stasks:", v->name,
                          started ? "started" : "stopped", n, started ? "" : "running ");
        for (size_t i = 0; r == 0 && i < shown; i++)
            r = es_buf_printf(&b, " (task %s)", ids[i]);
        if (r == 0)
            r = es_buf_append_str(&b, " ...");
    }
    if (r == 0)
        (void)ag_service_event(v, now, "%s", es_buf_cstr(&b));
    es_buf_free(&b);
}

/* One pass over one service; true when it changed (persist). */
typedef enum trip { TRIP_NONE, TRIP_ROLLED_BACK } trip;

/* The circuit breaker: a rollout IN_PROGRESS whose tasks failed threshold
 * times goes FAILED, and rolls back when asked to. */
static trip trip_breaker(ag_svc_sched *s, ag_service *v, const census *c, int desired, int64_t now,
                         bool *changed)
{
    ag_svc_deployment *p = &v->deps[0];
    if (v->cb_enable && p->rollout == AG_ROLLOUT_IN_PROGRESS &&
        p->failed >= ag_svc_cb_threshold(desired)) {
        ag_service_set_rollout(v, p, AG_ROLLOUT_FAILED, now);
        (void)ag_service_set_reason(p, "ECS deployment circuit breaker: tasks failed to start.");
        (void)ag_service_event(v, now,
                               "(service %s) (deployment %s) deployment failed: tasks failed to "
                               "start. %d tasks failed (threshold %d); the last: %s",
                               v->name, p->id, p->failed, ag_svc_cb_threshold(desired),
                               c->last_failure[0] ? c->last_failure : "no reason recorded");
        es_warn("service %s: deployment %s failed by the circuit breaker: %s", v->name, p->id,
                c->last_failure);
        ag_series_add(s->m_cb, 1);
        *changed = true;
        char from[AG_SVC_DEP_ID_MAX];
        snprintf(from, sizeof from, "%s", p->id);
        int rb = v->cb_rollback ? ag_service_roll_back(v, now) : -ENOENT;
        if (v->cb_rollback && rb == -ENOENT)
            (void)ag_service_event(v, now,
                                   "(service %s) (deployment %s) no completed deployment to roll "
                                   "back to.",
                                   v->name, from);
        if (v->cb_rollback && rb < 0 && rb != -ENOENT)
            es_err("service %s: cannot roll back deployment %s: %s", v->name, from, strerror(-rb));
        if (rb == 0) {
            (void)ag_service_event(v, now,
                                   "(service %s) rolling back to deployment %s: deployment %s "
                                   "failed.",
                                   v->name, v->deps[0].id, from);
            /* the census belongs to the old numbering: next pass */
            return TRIP_ROLLED_BACK;
        }
    }
    return TRIP_NONE;
}

/* One step of the rollout: stops what the plan says (pending first), starts
 * what it says, and says so in the service's events. */
static void step_rollout(ag_svc_sched *s, ag_service *v, const census *c, int desired, int64_t now,
                         ag_svc_plan *plan_out, size_t *nstopped_out, bool *changed)
{
    ag_svc_deployment *p = &v->deps[0];
    /* a failed rollout launches nothing more and leaves the older tasks;
     * a service being deleted stops everything whatever its rollouts */
    bool may_launch = p->rollout != AG_ROLLOUT_FAILED || v->status == AG_SVC_DRAINING;

    ag_svc_plan_in in = {.desired = desired,
                         .upper = desired == 0 ? 0 : ag_svc_upper(desired, v->max_percent),
                         .lower = ag_svc_lower(desired, v->min_healthy_percent),
                         .new_running = p->running,
                         .new_pending = p->pending,
                         .draining = c->draining,
                         .primary_may_launch = may_launch};
    for (size_t i = 1; i < v->n_deps; i++) {
        in.old_running += v->deps[i].running;
        in.old_pending += v->deps[i].pending;
    }
    in.old_running += c->replace_running;
    in.old_pending += c->replace_pending;
    ag_svc_plan plan;
    ag_svc_plan_step(&in, &plan);
    *plan_out = plan;

    idlist stopped = {.n = 0};
    char reason[128];
    snprintf(reason, sizeof reason, "Scaling activity initiated by (deployment %s)", p->id);
    if (plan.stop_new) {
        int k = stop_some(s, v, c->alive[0], c->n_alive[0], plan.stop_new, false, reason, &stopped);
        stop_some(s, v, c->alive[0], c->n_alive[0], plan.stop_new - k, true, reason, &stopped);
    }
    int left_pend = plan.stop_old_pend, left_run = plan.stop_old_run;
    /* a draining instance's tasks go first: they must go whatever happens */
    left_pend -= stop_some(s, v, c->replace, c->n_replace, left_pend, false, reason, &stopped);
    left_run -= stop_some(s, v, c->replace, c->n_replace, left_run, true, reason, &stopped);
    for (size_t i = v->n_deps; i-- > 1 && (left_pend > 0 || left_run > 0);) {
        left_pend -=
            stop_some(s, v, c->alive[i], c->n_alive[i], left_pend, false, reason, &stopped);
        left_run -= stop_some(s, v, c->alive[i], c->n_alive[i], left_run, true, reason, &stopped);
    }
    size_t nstopped = stopped.total;
    if (nstopped) {
        say_tasks(v, now, false, stopped.ids, stopped.n, nstopped);
        *changed = true;
    }
    if (plan.start > 0) {
        char ids[EVENT_TASKS_MAX][AG_TASK_ID_HEX + 1];
        size_t n = launch(s, v, plan.start, ids, EVENT_TASKS_MAX);
        const char *idp[EVENT_TASKS_MAX];
        for (size_t i = 0; i < n && i < EVENT_TASKS_MAX; i++)
            idp[i] = ids[i];
        if (n) {
            /* a launch that cannot name its tasks says so when it can */
            if (!s->ops->launch_names_nothing)
                say_tasks(v, now, true, idp, n < EVENT_TASKS_MAX ? n : EVENT_TASKS_MAX, n);
            p->pending += (int)n;
            *changed = true;
            es_info("service %s: started %zu tasks for %s", v->name, n, p->id);
        }
    }

    *nstopped_out = nstopped;
}

/* What the pass concludes: the rollout completed, older deployments gone,
 * the steady state, a drained service INACTIVE. */
static void settle(ag_service *v, const census *c, int desired, const ag_svc_plan *plan,
                   size_t nstopped, int64_t now, bool *changed)
{
    ag_svc_deployment *p = &v->deps[0];
    /* rollout completion: the primary has them all, nothing else is left */
    bool others_gone = true;
    for (size_t i = 1; i < v->n_deps; i++)
        if (v->deps[i].running + v->deps[i].pending > 0)
            others_gone = false;
    if (c->n_replace)
        others_gone = false;
    if (p->rollout == AG_ROLLOUT_IN_PROGRESS && p->running == desired && p->pending == 0 &&
        others_gone && c->draining == 0 && nstopped == 0 && plan->start == 0) {
        ag_service_set_rollout(v, p, AG_ROLLOUT_COMPLETED, now);
        (void)ag_service_set_reason(p, "ECS deployment %s completed.", p->id);
        (void)ag_service_event(v, now, "(service %s) (deployment %s) deployment completed.",
                               v->name, p->id);
        *changed = true;
    }
    if (p->rollout != AG_ROLLOUT_IN_PROGRESS) {
        /* older deployments with nothing left go (a failed rollout keeps
         * the ones still serving) */
        for (size_t i = v->n_deps; i-- > 1;)
            if (v->deps[i].running + v->deps[i].pending == 0 && c->draining == 0 &&
                p->rollout == AG_ROLLOUT_COMPLETED) {
                ag_service_drop_deployment(v, i);
                *changed = true;
            }
    }
    bool steady = p->rollout == AG_ROLLOUT_COMPLETED && v->n_deps == 1 && p->running == desired &&
                  p->pending == 0 && c->draining == 0 && nstopped == 0 && plan->start == 0 &&
                  c->n_replace == 0;
    if (steady && !v->steady && v->status == AG_SVC_ACTIVE) {
        (void)ag_service_event(v, now, "(service %s) has reached a steady state.", v->name);
        *changed = true;
    }
    if (steady != v->steady)
        *changed = true;
    v->steady = steady;
    if (v->status == AG_SVC_DRAINING && c->draining == 0 && p->running + p->pending == 0 &&
        others_gone) {
        ag_service_set_status(v, AG_SVC_INACTIVE, now);
        *changed = true;
    }
}

/* Drift: says which values went stale, once per change. */
static void say_drift(ag_service *v, const census *c, int64_t now, bool *changed)
{
    es_buf sig;
    es_buf_init(&sig, DRIFT_SIG_MAX);
    for (size_t k = 0; k < c->n_vf; k++)
        (void)es_buf_printf(&sig, "%s=%d;", c->vf[k], c->vf_count[k]);
    const char *sg = es_buf_cstr(&sig);
    const char *was = v->drift_sig ? v->drift_sig : "";
    bool all_checked = c->unchecked_tasks == 0 && c->draining == 0;
    if (!*sg && *was && all_checked) {
        /* the stale ones are gone (stopped, not stopping) and drift has
         * checked every task left */
        (void)ag_service_event(v, now, "(service %s) all %d tasks hold current secret values.",
                               v->name, c->alive_tasks);
        *changed = true;
    }
    /* while tasks await their first check, "no stale task" is not news yet */
    if (strcmp(sg, was) != 0 && (*sg || all_checked)) {
        for (size_t k = 0; k < c->n_vf; k++)
            (void)ag_service_event(v, now, "(service %s) %d tasks hold a rotated value of %s",
                                   v->name, c->vf_count[k], c->vf[k]);
        es_free(v->drift_sig);
        v->drift_sig = es_strdup(sg);
        if (c->n_vf)
            *changed = true;
    }
    es_buf_free(&sig);
}

/* Says once per wait (the time it ends names it) why no deployment starts
 * yet; true when it said so. */
static bool tell_too_soon(ag_service *v, const census *c, int64_t now, int64_t wait)
{
    int64_t due = v->redeployed_at + v->redeploy_min_interval_s;
    if (v->redeploy_told == due)
        return false;
    v->redeploy_told = due;
    (void)ag_service_event(v, now,
                           "(service %s) %d tasks hold a rotated value of %s; the next automatic "
                           "deployment may start in %" PRId64 " seconds (%s %" PRId64 ").",
                           v->name, c->stale_tasks, c->rotated_arn, wait, AG_REDEPLOY_INTERVAL_TAG,
                           v->redeploy_min_interval_s);
    es_notice("service %s: %d stale tasks; automatic deployment due in %" PRId64 " s", v->name,
              c->stale_tasks, wait);
    return true;
}

static int new_deployment(ag_svc_sched *s, ag_service *v, const char *family, int64_t rev,
                          int64_t now);

/* Redeploy on rotation (redeploy.h): true when a deployment was started
 * (the census belongs to the old numbering: the next pass rolls it). */
static bool redeploy(ag_svc_sched *s, ag_service *v, const census *c, int64_t now, bool *changed)
{
    ag_redeploy_in in = {
        .policy = {.enabled = v->redeploy, .min_interval_s = v->redeploy_min_interval_s},
        .status = v->status,
        .primary_rollout = v->deps[0].rollout,
        .stale_tasks = c->stale_tasks,
        .last_at = v->redeployed_at,
        .now = now};
    int64_t wait = 0;
    ag_redeploy_verdict verdict = ag_redeploy_decide(&in, &wait);
    if (verdict == AG_REDEPLOY_TOO_SOON && tell_too_soon(v, c, now, wait))
        *changed = true;
    if (verdict != AG_REDEPLOY_GO)
        return false;
    int rc = new_deployment(s, v, v->family, v->revision, now);
    if (rc < 0) {
        es_err("service %s: cannot start the deployment for a rotation: %s", v->name,
               strerror(-rc));
        return false;
    }
    v->redeployed_at = now;
    size_t more = c->n_vf > 1 ? c->n_vf - 1 : 0;
    char extra[64] = "";
    if (more)
        snprintf(extra, sizeof extra, " (and %zu more rotated secrets)", more);
    (void)ag_service_event(v, now,
                           "(service %s) has started a new deployment %s: secret %s version %s "
                           "rotated%s (%s).",
                           v->name, v->deps[0].id, c->rotated_arn,
                           c->rotated_version[0] ? c->rotated_version : "unknown", extra,
                           AG_REDEPLOY_TAG);
    es_notice("service %s: deployment %s started on rotation: %d stale tasks, %s version %s",
              v->name, v->deps[0].id, c->stale_tasks, c->rotated_arn, c->rotated_version);
    ag_series_add(s->m_redeploys, 1);
    *changed = true;
    return true;
}

static bool in_charge(ag_svc_sched *s)
{
    return !s->ops->in_charge || s->ops->in_charge(s->ops_ctx);
}

static bool pass_one(ag_svc_sched *s, ag_service *v)
{
    if (v->status == AG_SVC_INACTIVE)
        return false;
    int64_t now = now_s();
    bool changed = false;
    for (size_t i = 0; i < v->n_deps; i++)
        v->deps[i].running = v->deps[i].pending = v->deps[i].failed = 0;
    census c = {.svc = v};
    s->ops->foreach_task(s->ops_ctx, v, census_task, &c);
    if (c.oom) {
        es_err("service %s: out of memory in a pass", v->name);
        census_free(&c);
        return false;
    }
    v->stale_tasks = c.stale_tasks;
    ag_svc_deployment *p = &v->deps[0];
    int desired = v->status == AG_SVC_DRAINING ? 0 : v->desired;
    p->desired = desired;
    if (!in_charge(s)) {
        /* counted for DescribeServices; the one in charge acts */
        census_free(&c);
        return false;
    }

    if (trip_breaker(s, v, &c, desired, now, &changed) == TRIP_ROLLED_BACK ||
        redeploy(s, v, &c, now, &changed)) {
        census_free(&c);
        return true;
    }
    ag_svc_plan plan;
    size_t nstopped = 0;
    step_rollout(s, v, &c, desired, now, &plan, &nstopped, &changed);
    settle(v, &c, desired, &plan, nstopped, now, &changed);
    say_drift(v, &c, now, &changed);
    census_free(&c);
    return changed;
}

/* INACTIVE services stay visible (DescribeServices) for a while, as in ECS,
 * then go from memory and the store. The time a service went INACTIVE is
 * stored with it, so a restart does not start its retention again; one
 * stored before that time was kept (schema 3) gets it when first seen. */
static void forget_inactive(ag_svc_sched *s)
{
    int64_t now = now_s();
    int64_t keep = s->cfg.inactive_retention_s ? (int64_t)s->cfg.inactive_retention_s
                                               : AG_SVC_INACTIVE_RETENTION_S;
    for (size_t i = 0; i < s->n;) {
        ag_service *v = s->svcs[i];
        if (v->status == AG_SVC_INACTIVE && !v->inactive_at) {
            v->inactive_at = now;
            persist(s, v);
        }
        if (v->status != AG_SVC_INACTIVE || now - v->inactive_at < keep) {
            i++;
            continue;
        }
        if (s->ops->forget(s->ops_ctx, v) < 0) {
            v->inactive_at = now; /* try again later */
            i++;
            continue;
        }
        es_info("service %s: INACTIVE for %" PRId64 " s: forgotten", v->name, now - v->inactive_at);
        ag_service_free(v);
        memmove(&s->svcs[i], &s->svcs[i + 1], (s->n - i - 1) * sizeof s->svcs[0]);
        s->n--;
    }
}

void ag_svc_sched_pass(ag_svc_sched *s)
{
    s->dirty = false;
    if (in_charge(s))
        forget_inactive(s);
    int stale = 0, active = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (pass_one(s, s->svcs[i]))
            persist(s, s->svcs[i]);
        stale += s->svcs[i]->stale_tasks;
        active += s->svcs[i]->status != AG_SVC_INACTIVE;
    }
    ag_series_set(s->m_services, active);
    ag_series_set(s->m_stale, stale);
}

static void on_tick(uv_timer_t *t)
{
    ag_svc_sched *s = t->data;
    if (!s->closing)
        ag_svc_sched_pass(s);
}

void ag_svc_sched_soon(ag_svc_sched *s)
{
    if (s && !s->closing)
        uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
}

/* The engine says a task moved: look soon (not from inside the engine). */
static void on_task(void *arg, ag_task *t, ag_task_status from)
{
    (void)from;
    ag_svc_sched *s = arg;
    if (s->closing || s->dirty || !t->started_by || strncmp(t->started_by, "ecs-svc/", 8) != 0)
        return;
    s->dirty = true;
    uv_timer_start(&s->timer, on_tick, 50, s->cfg.interval_ms);
}

static int load_one(ag_service *v, void *arg)
{
    ag_svc_sched *s = arg;
    if (s->n == AG_SVC_MAX) {
        ag_service_free(v);
        return -ENOSPC;
    }
    s->svcs[s->n++] = v;
    char err[AG_SVC_ERR_MAX];
    ag_redeploy_policy p;
    if (ag_redeploy_policy_read(&v->tags, &p, err, sizeof err) < 0)
        es_err("service %s: stored tags: %s; redeploy on rotation is off", v->name, err);
    v->redeploy = p.enabled;
    v->redeploy_min_interval_s = p.min_interval_s;
    return 0;
}

int ag_svc_sched_create(const ag_svc_sched_config *cfg, ag_svc_sched **out)
{
    if (!cfg->loop || (!cfg->engine && !cfg->ops) || !cfg->store || !cfg->region || !cfg->account ||
        !cfg->cluster)
        return -EINVAL;
    ag_svc_sched *s = es_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->cfg = *cfg;
    s->ops = cfg->ops ? cfg->ops : &local_ops;
    s->ops_ctx = cfg->ops ? cfg->ops_ctx : s;
    if (!s->cfg.interval_ms)
        s->cfg.interval_ms = 1000;
    s->region = es_strdup(cfg->region);
    s->account = es_strdup(cfg->account);
    s->cluster = es_strdup(cfg->cluster);
    s->cfg.region = s->region;
    s->cfg.account = s->account;
    s->cfg.cluster = s->cluster;
    int rc = -ENOMEM;
    if (!s->region || !s->account || !s->cluster)
        goto fail;
    if ((rc = s->ops->load(s->ops_ctx, load_one, s)) < 0)
        goto fail;
    if (cfg->engine && (rc = ag_engine_observe(cfg->engine, on_task, s)) < 0)
        goto fail;
    if (cfg->metrics) {
        s->m_services = ag_metrics_series(cfg->metrics, AG_METRIC_GAUGE, "ecs_agent_services",
                                          "Services not INACTIVE.", NULL, NULL, 0);
        s->m_launches = ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER,
                                          "ecs_agent_service_tasks_started_total",
                                          "Tasks the service scheduler started.", NULL, NULL, 0);
        s->m_stops = ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER,
                                       "ecs_agent_service_tasks_stopped_total",
                                       "Tasks the service scheduler stopped.", NULL, NULL, 0);
        s->m_cb = ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER,
                                    "ecs_agent_service_deployments_failed_total",
                                    "Deployments failed by the circuit breaker.", NULL, NULL, 0);
        s->m_redeploys = ag_metrics_series(
            cfg->metrics, AG_METRIC_COUNTER, "ecs_agent_service_redeployments_total",
            "Deployments services started by themselves when drift found a rotated value "
            "(ecs-secrets:redeploy-on-rotation).",
            NULL, NULL, 0);
        s->m_stale = ag_metrics_series(cfg->metrics, AG_METRIC_GAUGE, "ecs_agent_stale_tasks",
                                       "Service tasks holding a rotated (stale) secret value.",
                                       NULL, NULL, 0);
    }
    uv_timer_init(cfg->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
    if (s->n)
        es_notice("services: %zu loaded from the store", s->n);
    *out = s;
    return 0;
fail:
    for (size_t i = 0; i < s->n; i++)
        ag_service_free(s->svcs[i]);
    es_free(s->region);
    es_free(s->account);
    es_free(s->cluster);
    es_free(s);
    return rc;
}

static void on_closed(uv_handle_t *h)
{
    ag_svc_sched *s = h->data;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    for (size_t i = 0; i < s->n; i++)
        ag_service_free(s->svcs[i]);
    es_free(s->region);
    es_free(s->account);
    es_free(s->cluster);
    es_free(s);
    if (done)
        done(arg);
}

void ag_svc_sched_close(ag_svc_sched *s, void (*done)(void *arg), void *arg)
{
    if (!s)
        return;
    s->closing = true;
    s->done = done;
    s->done_arg = arg;
    uv_close((uv_handle_t *)&s->timer, on_closed);
}

int ag_svc_sched_set_ops(ag_svc_sched *s, const ag_svc_ops *ops, void *ctx)
{
    for (size_t i = 0; i < s->n; i++)
        ag_service_free(s->svcs[i]);
    if (s->n)
        es_notice("services: %zu of this agent's own left aside (agent.db keeps them); the "
                  "cluster's services replace them",
                  s->n);
    s->n = 0;
    s->ops = ops ? ops : &local_ops;
    s->ops_ctx = ops ? ctx : s;
    int rc = s->ops->load(s->ops_ctx, load_one, s);
    uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
    return rc;
}

int ag_svc_sched_adopt(ag_svc_sched *s, ag_service *v)
{
    char err[AG_SVC_ERR_MAX];
    ag_redeploy_policy p;
    if (ag_redeploy_policy_read(&v->tags, &p, err, sizeof err) == 0) {
        v->redeploy = p.enabled;
        v->redeploy_min_interval_s = p.min_interval_s;
    }
    for (size_t i = 0; i < s->n; i++) {
        ag_service *old = s->svcs[i];
        if (strcmp(old->name, v->name) != 0)
            continue;
        /* what only memory knows: said once, counted each pass */
        v->steady = old->steady;
        v->stale_tasks = old->stale_tasks;
        v->redeploy_told = old->redeploy_told;
        es_free(v->drift_sig);
        v->drift_sig = old->drift_sig;
        old->drift_sig = NULL;
        for (size_t d = 0; d < v->n_deps; d++)
            for (size_t k = 0; k < old->n_deps; k++)
                if (strcmp(v->deps[d].id, old->deps[k].id) == 0) {
                    v->deps[d].running = old->deps[k].running;
                    v->deps[d].pending = old->deps[k].pending;
                    v->deps[d].failed = old->deps[k].failed;
                }
        ag_service_free(old);
        s->svcs[i] = v;
        uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
        return 0;
    }
    if (s->n == AG_SVC_MAX) {
        es_err("service %s: more than %d services: not followed", v->name, AG_SVC_MAX);
        ag_service_free(v);
        return -ENOSPC;
    }
    s->svcs[s->n++] = v;
    uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
    return 0;
}

void ag_svc_sched_drop(ag_svc_sched *s, const char *name)
{
    for (size_t i = 0; i < s->n;) {
        if (strcmp(s->svcs[i]->name, name) != 0) {
            i++;
            continue;
        }
        ag_service_free(s->svcs[i]);
        memmove(&s->svcs[i], &s->svcs[i + 1], (s->n - i - 1) * sizeof s->svcs[0]);
        s->n--;
    }
}

ag_service *ag_svc_find(ag_svc_sched *s, const char *name_or_arn)
{
    if (!name_or_arn)
        return NULL;
    ag_service *found = NULL;
    /* an ACTIVE one wins over INACTIVE ones of the same name */
    for (size_t i = 0; i < s->n; i++) {
        ag_service *v = s->svcs[i];
        if (strcmp(v->name, name_or_arn) == 0 || strcmp(v->arn, name_or_arn) == 0)
            if (!found || v->status != AG_SVC_INACTIVE)
                found = v;
    }
    return found;
}

void ag_svc_foreach(ag_svc_sched *s, ag_svc_fn fn, void *arg)
{
    for (size_t i = 0; i < s->n; i++)
        if (fn(arg, s->svcs[i]))
            return;
}

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static int check_td(ag_svc_sched *s, const char *family, int64_t *revision, char *err,
                    size_t errlen)
{
    ag_taskdef *td = NULL;
    int rc = ag_store_taskdef_get(s->cfg.store, family, *revision, &td);
    if (rc == -ENOENT)
        return errf(err, errlen, -ENOENT, "TaskDefinition not found.");
    if (rc < 0)
        return errf(err, errlen, rc, "the task definition cannot be read");
    if (td->status != AG_TD_ACTIVE) {
        ag_taskdef_free(td);
        return errf(err, errlen, -EINVAL, "TaskDefinition is inactive");
    }
    *revision = td->revision;
    ag_taskdef_free(td);
    return 0;
}

int ag_svc_create(ag_svc_sched *s, const ag_svc_create_req *req, ag_service **out, char *err,
                  size_t errlen)
{
    if (!ag_service_name_ok(req->name))
        return errf(err, errlen, -EINVAL,
                    "Service name must be 1-255 letters, numbers, hyphens and underscores.");
    int max = req->max_percent ? req->max_percent : 200;
    int min = req->min_healthy >= 0 ? req->min_healthy : 100;
    const char *bad = ag_service_config_error(req->desired, max, min);
    if (bad)
        return errf(err, errlen, -EINVAL, "%s", bad);
    ag_service *old = ag_svc_find(s, req->name);
    if (old && old->status != AG_SVC_INACTIVE)
        return errf(err, errlen, -EEXIST, "Creation of service was not idempotent.");
    int64_t rev = req->revision;
    int rc = check_td(s, req->family, &rev, err, errlen);
    if (rc < 0)
        return rc;
    if (s->n == AG_SVC_MAX && !old)
        return errf(err, errlen, -ENOSPC, "too many services");
    ag_redeploy_policy policy;
    if (req->tags && ag_redeploy_policy_read(req->tags, &policy, err, errlen) < 0)
        return -EINVAL;
    ag_service *v = NULL;
    rc = ag_service_new(s->region, s->account, s->cluster, req->name, req->family, rev,
                        req->desired, max, min, req->cb_enable, req->cb_rollback, now_s(), &v);
    if (rc < 0)
        return errf(err, errlen, rc, "the service cannot be created");
    if (ag_service_set_placement(v, req->placement) < 0) {
        ag_service_free(v);
        return errf(err, errlen, -ENOMEM, "the service cannot be created");
    }
    if (req->tags) {
        if (ag_tags_copy(&v->tags, req->tags) < 0) {
            ag_service_free(v);
            return errf(err, errlen, -ENOMEM, "the service cannot be created");
        }
        v->redeploy = policy.enabled;
        v->redeploy_min_interval_s = policy.min_interval_s;
    }
    if (old) {
        /* an INACTIVE service of that name is replaced */
        (void)s->ops->forget(s->ops_ctx, old);
        for (size_t i = 0; i < s->n; i++)
            if (s->svcs[i] == old)
                s->svcs[i] = v;
        ag_service_free(old);
    } else {
        s->svcs[s->n++] = v;
    }
    if (s->ops->persist(s->ops_ctx, v) < 0) {
        /* forget it: nothing was started yet */
        for (size_t i = 0; i < s->n; i++)
            if (s->svcs[i] == v)
                s->svcs[i] = s->svcs[--s->n];
        ag_service_free(v);
        return errf(err, errlen, -EIO, "the service cannot be stored");
    }
    es_info("service %s: created (%s:%" PRId64 ", desired %d)", v->name, v->family, v->revision,
            v->desired);
    uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
    *out = v;
    return 0;
}

/* A new PRIMARY deployment of family:rev (UpdateService's, and redeploy on
 * rotation's: one path); the scheduler's next pass rolls it out. 0, -ENOSPC,
 * -ENOMEM: v unchanged. */
static int new_deployment(ag_svc_sched *s, ag_service *v, const char *family, int64_t rev,
                          int64_t now)
{
    char *nf = es_strdup(family);
    if (!nf)
        return -ENOMEM;
    int rc = ag_service_deploy(v, nf, rev, now);
    if (rc < 0) {
        es_free(nf);
        return rc;
    }
    es_free(v->family);
    v->family = nf;
    v->revision = v->deps[0].revision;
    uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
    return 0;
}

int ag_svc_update(ag_svc_sched *s, const ag_svc_update_req *req, ag_service **out, char *err,
                  size_t errlen)
{
    ag_service *v = ag_svc_find(s, req->name);
    if (!v)
        return errf(err, errlen, -ENOENT, "Service not found.");
    if (v->status != AG_SVC_ACTIVE)
        return errf(err, errlen, -ESRCH, "Service was not ACTIVE.");
    int desired = req->desired >= 0 ? req->desired : v->desired;
    int max = req->max_percent ? req->max_percent : v->max_percent;
    int min = req->min_healthy >= 0 ? req->min_healthy : v->min_healthy_percent;
    const char *bad = ag_service_config_error(desired, max, min);
    if (bad)
        return errf(err, errlen, -EINVAL, "%s", bad);
    int64_t rev = req->revision;
    const char *family = req->family;
    if (family) {
        int rc = check_td(s, family, &rev, err, errlen);
        if (rc < 0)
            return rc;
    }
    bool new_td = family && (strcmp(family, v->family) != 0 || rev != v->revision);
    if (new_td || req->force_new_deployment) {
        if (v->n_deps >= AG_SVC_DEPLOYMENTS_MAX)
            return errf(err, errlen, -ENOSPC, "too many deployments in progress");
        int old_desired = v->desired;
        v->desired = desired;
        int rc =
            new_deployment(s, v, new_td ? family : v->family, new_td ? rev : v->revision, now_s());
        if (rc < 0) {
            v->desired = old_desired;
            return errf(err, errlen, rc, "the deployment cannot be created");
        }
        es_info("service %s: new deployment %s (%s:%" PRId64 ")%s", v->name, v->deps[0].id,
                v->family, v->revision, req->force_new_deployment ? ", forced" : "");
    }
    if (desired != v->desired)
        v->steady = false;
    v->desired = desired;
    v->max_percent = max;
    v->min_healthy_percent = min;
    persist(s, v);
    uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
    *out = v;
    return 0;
}

int ag_svc_set_tags(ag_svc_sched *s, ag_service *v, const ag_tags *tags, char *err, size_t errlen)
{
    ag_redeploy_policy policy;
    if (ag_redeploy_policy_read(tags, &policy, err, errlen) < 0)
        return -EINVAL;
    ag_tags was = {.n = 0};
    if (ag_tags_copy(&was, &v->tags) < 0 || ag_tags_copy(&v->tags, tags) < 0) {
        ag_tags_clear(&was);
        (void)ag_tags_copy(&v->tags, &was);
        return errf(err, errlen, -ENOMEM, "out of memory");
    }
    if (s->ops->persist(s->ops_ctx, v) < 0) {
        ag_tags_clear(&v->tags);
        v->tags = was; /* the store kept the old ones */
        return errf(err, errlen, -EIO, "the tags cannot be stored");
    }
    ag_tags_clear(&was);
    if (policy.enabled != v->redeploy || policy.min_interval_s != v->redeploy_min_interval_s)
        es_info("service %s: redeploy on rotation %s, min interval %" PRId64 " s", v->name,
                policy.enabled ? "on" : "off", policy.min_interval_s);
    v->redeploy = policy.enabled;
    v->redeploy_min_interval_s = policy.min_interval_s;
    uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
    return 0;
}

int ag_svc_delete(ag_svc_sched *s, const char *name, bool force, ag_service **out, char *err,
                  size_t errlen)
{
    ag_service *v = ag_svc_find(s, name);
    if (!v || v->status == AG_SVC_INACTIVE)
        return errf(err, errlen, -ENOENT, "Service not found.");
    if (v->status == AG_SVC_ACTIVE) {
        if (v->desired > 0 && !force)
            return errf(err, errlen, -EINVAL,
                        "The service cannot be stopped while it is scaled above 0.");
        ag_service_set_status(v, AG_SVC_DRAINING, now_s());
        v->desired = 0;
        v->steady = false;
        persist(s, v);
        uv_timer_start(&s->timer, on_tick, 0, s->cfg.interval_ms);
    }
    *out = v;
    return 0;
}
