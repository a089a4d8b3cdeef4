/* engine.c - see engine.h; how the engine is split: engine_int.h. */
#include "agent/tasks/engine_int.h"
#include "agent/secrets/files.h"
#include "agent/secrets/inject.h"
#include "agent/secrets/plan.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- small helpers ---- */

int64_t ag_eng_now_s(void)
{
    return (int64_t)time(NULL);
}

static void tdref_unref(tdref *r)
{
    if (!r || --r->refs > 0)
        return;
    ag_taskdef_free(r->td);
    ag_overrides_free(r->ov);
    es_free(r);
}

const ag_container_def *ag_eng_cdef(const etask *et, size_t i)
{
    if (!et->td || !et->td->td)
        return NULL;
    return ag_taskdef_container(et->td->td, et->t->containers[i].name);
}

bool ag_eng_essential(const etask *et, size_t i)
{
    const ag_container_def *cd = ag_eng_cdef(et, i);
    return cd ? cd->essential : true;
}

int ag_eng_stop_timeout(const etask *et, size_t i)
{
    const ag_container_def *cd = ag_eng_cdef(et, i);
    return cd && cd->has_stop_timeout ? (int)cd->stop_timeout : DEFAULT_STOP_TIMEOUT_S;
}

/* Task rows are written behind: a change marks its task dirty, and the
 * tasks that changed during one loop iteration are written together, in one
 * transaction, when the iteration's callbacks are done (a uv_check). A burst
 * of 1,000 containers' die events was 4,000 commits on the loop thread, one
 * fsync each, seconds during which no API call was answered. The state in
 * memory is the truth; a crash between a change and its write is what a
 * restart reconciles with Docker anyway. Only a new task's first row is
 * written at once and durably (RunTask fails without it: nothing is launched
 * that is not recorded).
 *
 * Nor does the loop wait for the disk: the transaction is committed without
 * its fsync (ag_store_tasks_put_behind: in the OS's cache, so a crash of the
 * agent keeps it) and the write-ahead log is fdatasync'ed on libuv's thread
 * pool. The loop waited for that fsync at every flush (1-40 ms on a busy
 * disk, issue 22): PENDING -> RUNNING was written while a DescribeTasks that
 * would have shown RUNNING waited behind it. What a crash of the machine can
 * lose is what it could before (a change not yet synced, reconciled with
 * Docker at the restart): only the window is the fsync's, as it was.
 *
 * A write the store does not take (a full disk, an I/O error), or a sync
 * that fails, leaves its tasks dirty and marked unpersisted: tried again at
 * every sweep and at close, with one line when a task stops being written
 * and one when it is again. (Refusing the transition instead left a launch
 * PENDING over running containers.) After a failed sync the flushes write
 * durably on the loop, as before, until one succeeds. */
static void note_persisted(etask *et, bool ok, const char *why)
{
    ag_engine *e = et->e;
    if (!ok && !et->unpersisted)
        es_err("task %s: cannot persist: %s; kept in memory and written again every sweep",
               et->t->id, why ? why : ag_store_errmsg(e->cfg.store));
    else if (ok && et->unpersisted)
        es_notice("task %s: persisted again", et->t->id);
    et->unpersisted = !ok;
}

/* A task's write ended: ok and durable, ok and behind (written_gen: durable
 * once a sync covers it), or refused. */
static void mark_written(etask *et, bool ok, uint64_t behind_gen)
{
    if (ok && et->dirty) {
        et->dirty = false;
        et->e->ndirty--;
    }
    if (ok)
        et->written_gen = behind_gen; /* 0: durable, no sync to wait for */
    if (ok && behind_gen)
        return; /* note_persisted once the sync says (sync_done) */
    note_persisted(et, ok, NULL);
}

static void start_sync(ag_engine *e);

static void sync_done(ag_engine *e, int res)
{
    e->syncing = false;
    e->inflight--;
    if (res < 0) {
        /* the pages may be lost: written again (durably) by the sweep */
        char why[96];
        snprintf(why, sizeof why, "fdatasync of the store's log: %s", uv_strerror(res));
        e->sync_failed = true;
        for (etask *et = e->tasks; et; et = et->next)
            if (!et->dirty && et->written_gen > e->durable_gen && et->written_gen <= e->sync_gen) {
                et->dirty = true;
                e->ndirty++;
                note_persisted(et, false, why);
            }
    } else {
        for (etask *et = e->tasks; et; et = et->next)
            if (et->unpersisted && !et->dirty && et->written_gen > e->durable_gen &&
                et->written_gen <= e->sync_gen)
                note_persisted(et, true, NULL);
        e->durable_gen = e->sync_gen;
    }
    if (e->closing) {
        ag_eng_maybe_free(e); /* its last flush is durable */
        return;
    }
    if (e->sync_again) {
        e->sync_again = false;
        start_sync(e);
    }
}

static void on_synced(uv_fs_t *req)
{
    int res = (int)req->result;
    uv_fs_req_cleanup(req);
    sync_done(req->data, res);
}

/* The log's fdatasync for every write behind so far, on the thread pool. */
static void start_sync(ag_engine *e)
{
    if (e->syncing) {
        e->sync_again = true;
        return;
    }
    e->sync_gen = e->write_gen;
    e->sync_req.data = e;
    int fd = ag_store_sync_fd(e->cfg.store);
    int rc = fd < 0 ? fd : uv_fs_fdatasync(e->loop, &e->sync_req, fd, on_synced);
    e->syncing = true;
    e->inflight++;
    if (rc < 0)
        sync_done(e, rc); /* as a failed sync, in this iteration */
}

void ag_eng_flush(ag_engine *e)
{
    if (e->flush_armed) {
        uv_check_stop(&e->flush);
        e->flush_armed = false;
    }
    if (!e->ndirty)
        return;
    /* behind while the loop runs; durably when no iteration follows (the
     * start, the close) or after a failed sync */
    bool behind = !e->closing && e->flush_ready && !e->sync_failed;
    size_t n = 0, cap = e->ndirty;
    const ag_task **ts = es_malloc(cap * sizeof *ts);
    if (!ts) { /* one at a time, then */
        for (etask *et = e->tasks; et && e->ndirty; et = et->next)
            if (et->dirty)
                mark_written(et, ag_store_task_put(e->cfg.store, et->t) == 0, 0);
        return;
    }
    for (etask *et = e->tasks; et && n < cap; et = et->next)
        if (et->dirty)
            ts[n++] = et->t;
    bool ok = (behind ? ag_store_tasks_put_behind(e->cfg.store, ts, n)
                      : ag_store_tasks_put(e->cfg.store, ts, n)) == 0;
    es_free(ts);
    uint64_t gen = ok && behind ? ++e->write_gen : 0;
    if (ok && !behind)
        e->sync_failed = false; /* the disk takes writes again */
    for (etask *et = e->tasks; et; et = et->next)
        if (et->dirty)
            mark_written(et, ok, gen);
    if (gen)
        start_sync(e);
}

static void on_flush(uv_check_t *h)
{
    ag_eng_flush(h->data);
}

void ag_eng_persist(etask *et)
{
    ag_engine *e = et->e;
    if (!et->dirty) {
        et->dirty = true;
        e->ndirty++;
    }
    if (e->closing || !e->flush_ready) {
        ag_eng_flush(e); /* no loop iteration to wait for */
        return;
    }
    if (!e->flush_armed) {
        uv_check_start(&e->flush, on_flush);
        e->flush_armed = true;
    }
}

/* The engine's ag_task_commit_fn: the models know no store. Never refuses
 * (the write follows at the end of the iteration). */
int ag_eng_commit_task(void *arg, const ag_task *t)
{
    ag_engine *e = arg;
    etask *et = ag_eng_find(e, t->arn);
    if (et)
        ag_eng_persist(et);
    else if (ag_store_task_put(e->cfg.store, t) < 0)
        es_err("task %s: cannot persist: %s", t->id, ag_store_errmsg(e->cfg.store));
    return 0;
}

void ag_eng_release_values(etask *et)
{
    ag_resolution_free(et->res); /* wipes */
    et->res = NULL;
}

/* The ECS error class a failed launch's stoppedReason begins with, as the
 * reason label of ecs_agent_task_launches_total{result="failed"}: a closed
 * set, so that the label cannot grow without bound. */
static const char *reason_class(const char *reason)
{
    static const char *const classes[] = {
        "ResourceInitializationError", "CannotPullContainerError", "CannotCreateContainerError",
        "CannotStartContainerError",   "TaskFailedToStart",
    };
    for (size_t i = 0; reason && i < sizeof classes / sizeof *classes; i++) {
        size_t n = strlen(classes[i]);
        if (strncmp(reason, classes[i], n) == 0 && (reason[n] == ':' || reason[n] == '\0'))
            return classes[i];
    }
    return "Other";
}

static void count_failed_launch(ag_engine *e, const char *reason)
{
    if (!e->cfg.metrics)
        return;
    const char *labels[] = {"result", "failed", "reason", reason_class(reason), NULL};
    ag_series_add(ag_metrics_series(e->cfg.metrics, AG_METRIC_COUNTER,
                                    "ecs_agent_task_launches_total", "Task launches by outcome.",
                                    labels, NULL, 0),
                  1);
}

/* The one place lastStatus changes (through ag_task_transition). */
void ag_eng_move(etask *et, ag_task_status to)
{
    ag_engine *e = et->e;
    ag_task_status from = et->t->last_status;
    if (from == to)
        return;
    if (ag_task_transition(et->t, to, ag_eng_now_s(), ag_eng_commit_task, e) < 0) {
        es_err("task %s: %s -> %s refused", et->t->id, ag_task_status_name(from),
               ag_task_status_name(to));
        return;
    }
    if (to == AG_TASK_RUNNING) {
        ag_series_add(e->m_launched, 1);
        uint64_t ms = uv_now(e->loop) - et->launch_started_ms;
        if (et->launch_started_ms)
            ag_series_observe(e->m_launch_seconds, (double)ms / 1000.0);
    }
    if (to == AG_TASK_STOPPED) {
        et->stopped_at_list = e->lists_issued;
        ag_eng_files_remove(et); /* its secret files, wiped */
    }
    if (to == AG_TASK_STOPPED && et->t->stop_code == AG_STOP_TASK_FAILED_TO_START)
        count_failed_launch(e, et->t->stopped_reason);
    for (size_t i = 0; i < e->nobservers; i++)
        e->observers[i].fn(e->observers[i].arg, et->t, from);
}

void ag_eng_container_set(etask *et, size_t i, const char *docker_id, const char *status,
                          const int *exit_code, const char *reason)
{
    if (ag_task_container_update(et->t, et->t->containers[i].name, docker_id, status, exit_code,
                                 reason) < 0)
        es_err("task %s: container %s: cannot update", et->t->id, et->t->containers[i].name);
}

bool ag_eng_container_stopped(const ag_task_container *c)
{
    return c->last_status && strcmp(c->last_status, "STOPPED") == 0;
}

bool ag_eng_container_running(const ag_task_container *c)
{
    return c->last_status && strcmp(c->last_status, "RUNNING") == 0;
}

/* Ends one callback the engine waited for; false when the engine is closing
 * (the caller then touches nothing more). */
bool ag_eng_op_end(etask *et)
{
    ag_engine *e = et->e;
    et->ops--;
    e->inflight--;
    if (e->closing) {
        ag_eng_maybe_free(e);
        return false;
    }
    return true;
}

void ag_eng_op_begin(etask *et)
{
    et->ops++;
    et->e->inflight++;
}

/* Takes back a container call's context: false when the engine is closing
 * (the callback then touches nothing more). */
bool ag_eng_cop_end(void *ud, etask **et, size_t *idx)
{
    cop *c = ud;
    *et = c->et;
    *idx = c->idx;
    es_free(c);
    return ag_eng_op_end(*et);
}

/* A launch that failed on container i: the container carries the reason too
 * (containers[].reason in DescribeTasks, as ECS fills it), then the task. */
void ag_eng_fail_container(etask *et, size_t i, const char *reason)
{
    ag_eng_container_set(et, i, NULL, NULL, NULL, reason);
    ag_eng_fail_launch(et, reason);
}

void ag_eng_fail_launch(etask *et, const char *reason)
{
    es_warn("task %s: failed to start: %s", et->t->id, reason);
    if (ag_task_request_stop(et->t, AG_STOP_TASK_FAILED_TO_START, reason, ag_eng_commit_task,
                             et->e) < 0)
        es_err("task %s: cannot record the stop", et->t->id);
}

/* ---- tasks in memory ---- */

static etask *etask_new(ag_engine *e, ag_task *t, tdref *td)
{
    etask *et = es_calloc(1, sizeof *et);
    if (!et)
        return NULL;
    et->e = e;
    et->t = t;
    et->td = td;
    if (td)
        td->refs++;
    for (size_t i = 0; i < t->n_containers; i++) {
        const ag_container_def *cd = ag_eng_cdef(et, i);
        t->containers[i].essential = cd ? cd->essential : true;
        t->containers[i].health_checked = cd && cd->rt.health_check;
    }
    et->next = e->tasks;
    if (e->tasks)
        e->tasks->prev = et;
    e->tasks = et;
    e->ntasks++;
    return et;
}

static void etask_unlink_free(ag_engine *e, etask *et)
{
    if (et->dirty)
        e->ndirty--;
    if (et->prev)
        et->prev->next = et->next;
    else
        e->tasks = et->next;
    if (et->next)
        et->next->prev = et->prev;
    e->ntasks--;
    ag_eng_release_values(et);
    ag_task_free(et->t);
    tdref_unref(et->td);
    es_free(et);
}

etask *ag_eng_find(ag_engine *e, const char *task)
{
    for (etask *et = e->tasks; et; et = et->next)
        if (strcmp(et->t->arn, task) == 0 || strcmp(et->t->id, task) == 0)
            return et;
    return NULL;
}

etask *ag_eng_find_by_container(ag_engine *e, const char *docker_id, size_t *idx)
{
    for (etask *et = e->tasks; et; et = et->next)
        for (size_t i = 0; i < et->t->n_containers; i++)
            if (et->t->containers[i].docker_id &&
                strcmp(et->t->containers[i].docker_id, docker_id) == 0) {
                *idx = i;
                return et;
            }
    return NULL;
}

bool ag_engine_task_external(const ag_task *t)
{
    return t->family && strcmp(t->family, AG_ENGINE_DOCKER_FAMILY) == 0;
}

bool ag_eng_external(const etask *et)
{
    return ag_engine_task_external(et->t);
}

/* Records where each of res's values came from (never a value) and binds
 * the references; 0 or -ENOMEM. */
int ag_eng_record_secrets(etask *et, const ag_resolution *res)
{
    const ag_taskdef *td = et->td->td;
    for (size_t i = 0; i < res->n; i++) {
        const ag_resolved_secret *s = &res->items[i];
        if (ag_task_add_secret_meta(et->t, td->containers[s->container].name, s->target, s->name,
                                    s->value_from, s->source_arn, s->version, s->resolved_at,
                                    s->fingerprint) < 0)
            return -ENOMEM;
    }
    ag_eng_bind_refs(et);
    return 0;
}

/* Makes room by forgetting the oldest stopped tasks that were cleaned up
 * (or are the Docker socket's: their containers are their owners'). */
static bool make_room(ag_engine *e, size_t need)
{
    etask *last = e->tasks;
    while (last && last->next)
        last = last->next;
    for (etask *et = last; et && e->ntasks + need > AG_ENGINE_TASKS_MAX;) {
        etask *prev = et->prev;
        if (et->t->last_status == AG_TASK_STOPPED && !et->ops &&
            (et->cleaned || ag_eng_external(et))) {
            ag_store_task_delete(e->cfg.store, et->t->arn);
            etask_unlink_free(e, et);
        }
        et = prev;
    }
    return e->ntasks + need <= AG_ENGINE_TASKS_MAX;
}

/* ---- API ---- */

int ag_engine_run_task(ag_engine *e, ag_run_request *req, ag_task **tasks)
{
    int rc = 0;
    tdref *r = es_calloc(1, sizeof *r);
    if (!r) {
        ag_taskdef_free(req->td);
        ag_overrides_free(req->overrides);
        return -ENOMEM;
    }
    r->td = req->td;
    r->ov = req->overrides;
    r->refs = 1; /* ours, dropped at the end */
    req->td = NULL;
    req->overrides = NULL;
    const ag_taskdef *td = r->td;
    if (req->count < 1 || req->count > AG_ENGINE_RUN_MAX) {
        rc = -EINVAL;
        goto out;
    }
    if (!make_room(e, (size_t)req->count)) {
        rc = -ENOSPC;
        goto out;
    }
    char group[300];
    snprintf(group, sizeof group, "family:%s", td->family);
    etask *made[AG_ENGINE_RUN_MAX];
    int n = 0;
    for (; n < req->count; n++) {
        ag_task *t = NULL;
        rc = ag_task_create_id(e->region, e->account, e->cluster, td->family, td->revision,
                               req->started_by, req->group ? req->group : group,
                               req->launch_type ? req->launch_type : "EC2", ag_eng_now_s(),
                               req->task_ids ? req->task_ids[n] : NULL, &t);
        if (rc == 0 && req->task_ids && ag_engine_find_task(e, t->id)) {
            ag_task_free(t); /* placed here before (a resynced mirror): launched once */
            t = NULL;
            rc = -EEXIST;
        }
        for (size_t i = 0; rc == 0 && i < td->n_containers; i++)
            rc = ag_task_add_container(t, td->containers[i].name, td->containers[i].image);
        etask *et = rc == 0 ? etask_new(e, t, r) : NULL;
        if (!et) {
            ag_task_free(t);
            rc = rc ? rc : -ENOMEM;
            break;
        }
        /* a new etask starts in L_RESOLVE (etask_new) */
        et->launch_started_ms = uv_now(e->loop);
        made[n] = et;
    }
    /* the tasks' first rows, durably and in one transaction: one fsync for
     * the count, not one each (a RunTask of 10 waited for 10) */
    if (rc == 0) {
        const ag_task *rows[AG_ENGINE_RUN_MAX];
        for (int i = 0; i < n; i++)
            rows[i] = made[i]->t;
        if (ag_store_tasks_put(e->cfg.store, rows, (size_t)n) < 0)
            rc = -EIO;
    }
    if (rc < 0) {
        /* nothing was started nor stored (the rows go all or none, last):
         * forget the tasks made so far; the store's error stays the one
         * the caller reports */
        for (int i = 0; i < n; i++)
            etask_unlink_free(e, made[i]);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        etask *et = made[i];
        es_info("task %s: launching %s:%lld", et->t->id, td->family, (long long)td->revision);
        char why[AG_REASON_BUF], reason[AG_REASON_BUF + 64];
        if (e->check_fn && e->check_fn(e->check_arg, et->t, td, why, sizeof why) < 0) {
            snprintf(reason, sizeof reason, "ResourceInitializationError: %s", why);
            ag_eng_fail_launch(et, reason);
            ag_eng_advance(et);
            tasks[i] = et->t;
            continue;
        }
        int s = ag_resolve_start(e->cfg.resolver, td, ag_eng_on_resolved, et);
        if (s < 0) {
            ag_eng_fail_launch(et,
                               "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: cannot start the resolution");
            ag_eng_advance(et);
        } else {
            ag_eng_op_begin(et);
        }
        tasks[i] = et->t;
    }
out:
    tdref_unref(r);
    return rc;
}

/* The adopted task, in the engine and the store; 0 or -errno (t freed). */
static int adopt_task(ag_engine *e, tdref *r, ag_task *t, const ag_resolution *res, etask **out)
{
    etask *et = etask_new(e, t, r);
    if (!et) {
        ag_task_free(t);
        return -ENOMEM;
    }
    ag_eng_set_phase(et, L_DONE); /* nothing to launch: Docker's client does */
    et->launch_started_ms = uv_now(e->loop);
    /* a list asked for before now cannot know the container yet */
    et->created_at_list = e->lists_issued;
    int rc = res ? ag_eng_record_secrets(et, res) : 0;
    if (rc == 0 && ag_store_task_put(e->cfg.store, t) < 0)
        rc = -EIO;
    if (rc < 0) {
        ag_store_task_delete(e->cfg.store, t->arn);
        etask_unlink_free(e, et);
        return rc;
    }
    *out = et;
    return 0;
}

int ag_engine_adopt(ag_engine *e, ag_adopt_request *req, ag_task **out)
{
    tdref *r = es_calloc(1, sizeof *r);
    if (!r) {
        ag_taskdef_free(req->td);
        req->td = NULL;
        return -ENOMEM;
    }
    *r = (tdref){.refs = 1, .td = req->td};
    req->td = NULL;
    const ag_taskdef *td = r->td;
    ag_task *t = NULL;
    etask *et = NULL;
    int rc = make_room(e, 1) ? 0 : -ENOSPC;
    if (rc == 0)
        rc = ag_task_create(e->region, e->account, e->cluster, td->family, td->revision,
                            req->started_by, req->group, "EC2", ag_eng_now_s(), &t);
    if (rc == 0)
        rc = ag_task_add_container(t, td->containers[0].name,
                                   req->image ? req->image : td->containers[0].image);
    if (rc == 0)
        rc = adopt_task(e, r, t, req->res, &et);
    else
        ag_task_free(t);
    if (rc == 0) {
        /* its secrets are resolved: as a launched task once its values are */
        ag_eng_move(et, AG_TASK_PENDING);
        es_info("task %s: a container created through the Docker socket (%s)", et->t->id,
                req->started_by ? req->started_by : "docker");
        *out = et->t;
    }
    tdref_unref(r);
    return rc;
}

/* A copy of a Docker-socket task (definition, startedBy, group, the
 * secrets' metadata: the values the container was created with), for its
 * container started again; NULL when out of memory. */
static ag_task *external_copy(ag_engine *e, const ag_task *o)
{
    ag_task *t = NULL;
    if (ag_task_create(e->region, e->account, e->cluster, o->family, o->revision, o->started_by,
                       o->group, o->launch_type, ag_eng_now_s(), &t) < 0)
        return NULL;
    int rc = ag_task_add_container(t, o->containers[0].name, o->containers[0].image);
    for (size_t i = 0; rc == 0 && i < o->n_secrets; i++) {
        const ag_secret_meta *m = &o->secrets[i];
        rc = ag_task_add_secret_meta(t, m->container_name, m->target, m->name, m->value_from,
                                     m->source_arn, m->version, m->resolved_at, m->fingerprint);
    }
    if (rc < 0) {
        ag_task_free(t);
        return NULL;
    }
    return t;
}

etask *ag_eng_readopt(etask *old)
{
    ag_engine *e = old->e;
    tdref *r = old->td; /* held: making room may forget the old task */
    ag_task *t = external_copy(e, old->t);
    if (!t || !r) {
        ag_task_free(t);
        return NULL;
    }
    r->refs++;
    etask *et = NULL;
    int rc = make_room(e, 1) ? adopt_task(e, r, t, NULL, &et) : -ENOSPC;
    if (rc == -ENOSPC)
        ag_task_free(t);
    tdref_unref(r);
    if (rc < 0)
        return NULL;
    ag_eng_bind_refs(et);
    ag_eng_move(et, AG_TASK_PENDING);
    return et;
}

int ag_engine_stop_task(ag_engine *e, const char *task, ag_stop_code code, const char *reason,
                        ag_task **out)
{
    etask *et = ag_eng_find(e, task);
    if (!et)
        return -ENOENT;
    if (et->t->last_status != AG_TASK_STOPPED && et->t->desired_status != AG_TASK_STOPPED) {
        es_info("task %s: stop requested (%s): %s", et->t->id, ag_stop_code_name(code),
                reason ? reason : "");
        int rc = ag_task_request_stop(et->t, code, reason, ag_eng_commit_task, e);
        if (rc < 0)
            return rc;
        ag_eng_advance(et);
    }
    *out = et->t;
    return 0;
}

ag_task *ag_engine_find_task(ag_engine *e, const char *task)
{
    etask *et = ag_eng_find(e, task);
    return et ? et->t : NULL;
}

void ag_engine_foreach_task(ag_engine *e, ag_engine_task_fn fn, void *arg)
{
    for (etask *et = e->tasks; et; et = et->next)
        if (fn(arg, et->t))
            return;
}

void ag_engine_get_counts(const ag_engine *e, ag_engine_counts *out)
{
    memset(out, 0, sizeof *out);
    for (const etask *et = e->tasks; et; et = et->next) {
        out->by_status[et->t->last_status]++;
        for (size_t i = 0; i < et->t->n_containers; i++)
            if (ag_eng_container_running(&et->t->containers[i]))
                out->running_containers++;
    }
}

void ag_engine_set_env_hook(ag_engine *e, ag_engine_env_fn fn, void *arg)
{
    e->env_fn = fn;
    e->env_arg = arg;
}

void ag_engine_set_launch_check(ag_engine *e, ag_engine_check_fn fn, void *arg)
{
    e->check_fn = fn;
    e->check_arg = arg;
}

const ag_taskdef *ag_engine_task_def(ag_engine *e, const ag_task *t)
{
    etask *et = ag_eng_find(e, t->arn);
    return et && et->td ? et->td->td : NULL;
}

int ag_engine_observe(ag_engine *e, ag_engine_observer fn, void *arg)
{
    if (e->nobservers >= MAX_OBSERVERS)
        return -ENOSPC;
    e->observers[e->nobservers].fn = fn;
    e->observers[e->nobservers].arg = arg;
    e->nobservers++;
    return 0;
}

void ag_engine_unobserve(ag_engine *e, ag_engine_observer fn, void *arg)
{
    for (size_t i = 0; i < e->nobservers; i++)
        if (e->observers[i].fn == fn && e->observers[i].arg == arg) {
            memmove(&e->observers[i], &e->observers[i + 1],
                    (e->nobservers - i - 1) * sizeof e->observers[0]);
            e->nobservers--;
            return;
        }
}

/* ---- life ---- */

/* Points each secret's metadata at its reference in the task's definition
 * (ag_secret_meta.vf): parsed once at registration, never again. */
void ag_eng_bind_refs(etask *et)
{
    const ag_taskdef *td = et->td ? et->td->td : NULL;
    for (size_t i = 0; i < et->t->n_secrets; i++) {
        ag_secret_meta *m = &et->t->secrets[i];
        const ag_secret_ref *ref = ag_secret_ref_find(td, m->container_name, m->target, m->name);
        m->vf = ref ? &ref->vf : NULL;
    }
}

static int load_task(ag_task *t, void *arg)
{
    ag_engine *e = arg;
    tdref *r = es_calloc(1, sizeof *r);
    if (!r) {
        ag_task_free(t);
        return -ENOMEM;
    }
    r->refs = 1; /* ours, dropped below */
    if (ag_store_taskdef_get(e->cfg.store, t->family, t->revision, &r->td) < 0)
        r->td = NULL; /* defaults: ag_eng_essential, 30 s stop timeout */
    etask *et = etask_new(e, t, r);
    tdref_unref(r);
    if (!et) {
        ag_task_free(t);
        return -ENOMEM;
    }
    ag_eng_bind_refs(et);
    /* cleaned stays false even for stopped tasks: the sweep removes their
     * leftovers again after a restart (a 404 is fine) */
    ag_eng_set_phase(et, L_DONE);
    return 0;
}

int ag_engine_create(const ag_engine_config *cfg, ag_engine **out)
{
    if (!cfg->loop || !cfg->store || !cfg->docker || !cfg->resolver || !cfg->region ||
        !cfg->account || !cfg->cluster)
        return -EINVAL;
    ag_engine *e = es_calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->cfg = *cfg;
    e->loop = cfg->loop;
    e->reconcile_ms = cfg->reconcile_interval_ms;
    if (e->cfg.cleanup_delay_s <= 0)
        e->cfg.cleanup_delay_s = 3600;
    e->region = es_strdup(cfg->region);
    e->account = es_strdup(cfg->account);
    e->cluster = es_strdup(cfg->cluster);
    e->network_mode = cfg->network_mode ? es_strdup(cfg->network_mode) : NULL;
    e->files_dir = es_strdup(cfg->files_dir ? cfg->files_dir : AG_FILES_DIR_DEFAULT);
    int rc = -ENOMEM;
    if (cfg->instance_arn) {
        size_t n = sizeof AG_ENGINE_INSTANCE_LABEL + 1 + strlen(cfg->instance_arn);
        e->instance_arn = es_strdup(cfg->instance_arn);
        e->instance_filter = es_malloc(n);
        if (e->instance_filter)
            snprintf(e->instance_filter, n, "%s=%s", AG_ENGINE_INSTANCE_LABEL, cfg->instance_arn);
        if (!e->instance_arn || !e->instance_filter)
            goto fail;
    }
    if (!e->region || !e->account || !e->cluster || (cfg->network_mode && !e->network_mode) ||
        !e->files_dir)
        goto fail;
    if (cfg->metrics) {
        const char *ok[] = {"result", "running", NULL};
        double b[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
        e->m_launched =
            ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER, "ecs_agent_task_launches_total",
                              "Task launches by outcome.", ok, NULL, 0);
        e->m_launch_seconds =
            ag_metrics_series(cfg->metrics, AG_METRIC_HISTOGRAM, "ecs_agent_task_launch_seconds",
                              "From RunTask to RUNNING, secrets resolution included.", NULL, b, 9);
        e->m_resolve_seconds = ag_metrics_series(
            cfg->metrics, AG_METRIC_HISTOGRAM, "ecs_agent_secrets_resolve_seconds",
            "From RunTask to every secret of the task fetched (or the resolution failed).", NULL, b,
            9);
        e->m_events =
            ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER, "ecs_agent_docker_events_total",
                              "Docker events seen for the agent's containers.", NULL, NULL, 0);
        for (int k = 0; k < REC_TRIGGERS; k++) {
            const char *l[] = {"trigger", ag_eng_rec_trigger_names[k], NULL};
            e->m_rec_runs[k] = ag_metrics_series(
                cfg->metrics, AG_METRIC_COUNTER, "ecs_agent_docker_reconciles_total",
                "Lists of the labelled containers applied to the tasks, by what asked for them.", l,
                NULL, 0);
        }
        e->m_rec_failed = ag_metrics_series(
            cfg->metrics, AG_METRIC_COUNTER, "ecs_agent_docker_reconcile_errors_total",
            "Reconciling lists Docker did not answer.", NULL, NULL, 0);
        e->m_rec_skipped = ag_metrics_series(
            cfg->metrics, AG_METRIC_COUNTER, "ecs_agent_docker_reconcile_skipped_total",
            "Periodic reconciles not started because a list was still in flight.", NULL, NULL, 0);
        const char *ex[] = {"found", "exited", NULL};
        const char *va[] = {"found", "vanished", NULL};
        const char *rh = "Containers of live tasks a reconciling list found exited or gone "
                         "(each one an event the agent had not seen).";
        e->m_rec_exited =
            ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER,
                              "ecs_agent_docker_reconcile_found_total", rh, ex, NULL, 0);
        e->m_rec_vanished =
            ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER,
                              "ecs_agent_docker_reconcile_found_total", rh, va, NULL, 0);
    }
    rc = ag_store_task_foreach(cfg->store, true, load_task, e);
    if (rc < 0)
        goto fail;
    /* oldest first from the store, newest first here: already so, since
     * every load pushes to the front */
    uv_timer_init(e->loop, &e->sweep);
    e->sweep.data = e;
    uv_timer_init(e->loop, &e->rec);
    e->rec.data = e;
    uv_check_init(e->loop, &e->flush);
    e->flush.data = e;
    e->flush_ready = true;
    *out = e;
    return 0;
fail:
    while (e->tasks)
        etask_unlink_free(e, e->tasks);
    es_free(e->region);
    es_free(e->account);
    es_free(e->cluster);
    es_free(e->network_mode);
    es_free(e->files_dir);
    es_free(e->instance_arn);
    es_free(e->instance_filter);
    es_free(e);
    return rc;
}

int ag_engine_start(ag_engine *e)
{
    if (e->started)
        return 0;
    /* tasks whose launch the previous agent did not finish cannot finish
     * now (the values are gone with it): they fail, and leave nothing */
    size_t interrupted = 0, adopted = 0;
    for (etask *et = e->tasks; et; et = et->next) {
        ag_task *t = et->t;
        if (ag_eng_external(et)) {
            /* not ours to launch: the reconciling list says where it is */
            if (t->last_status != AG_TASK_STOPPED)
                adopted++;
        } else if (t->last_status == AG_TASK_PROVISIONING || t->last_status == AG_TASK_PENDING ||
                   t->last_status == AG_TASK_ACTIVATING) {
            interrupted++;
            ag_eng_fail_launch(
                et, "TaskFailedToStart: the agent restarted while the task was starting");
        } else if (t->last_status != AG_TASK_STOPPED) {
            adopted++;
        }
    }
    if (interrupted || adopted)
        es_notice("engine: %zu tasks to adopt, %zu interrupted launches to clean up", adopted,
                  interrupted);
    /* a crash may have left the values of tasks that have stopped since */
    ag_eng_files_sweep(e);
    dk_events_cbs cbs = {.on_event = ag_eng_on_event,
                         .on_connected = ag_eng_on_connected,
                         .on_error = ag_eng_on_events_error};
    int rc = dk_events_start(e->cfg.docker, NULL, &cbs, e, &e->events);
    if (rc < 0)
        return rc;
    uint64_t sweep = e->cfg.sweep_interval_ms ? e->cfg.sweep_interval_ms : AG_ENGINE_SWEEP_MS;
    uv_timer_start(&e->sweep, ag_eng_on_sweep, sweep, sweep);
    e->started = true;
    ag_engine_set_reconcile_interval(e, e->reconcile_ms);
    /* the stop decisions above act once Docker answers (advance issues the
     * calls now; the client queues them until the socket is there) */
    for (etask *et = e->tasks; et; et = et->next)
        ag_eng_advance(et);
    return 0;
}

/* The engine is freed, and done() runs, once it is closing, both timers
 * have closed and no callback it waits for is left. */
void ag_eng_maybe_free(ag_engine *e)
{
    if (!e->closing || e->inflight || !e->sweep_closed || !e->rec_closed || !e->flush_closed)
        return;
    ag_eng_flush(e); /* what the last callbacks changed */
    void (*done)(void *) = e->done;
    void *arg = e->done_arg;
    while (e->tasks)
        etask_unlink_free(e, e->tasks);
    es_free(e->region);
    es_free(e->account);
    es_free(e->cluster);
    es_free(e->network_mode);
    es_free(e->files_dir);
    es_free(e->instance_arn);
    es_free(e->instance_filter);
    es_free(e);
    if (done)
        done(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    ag_engine *e = h->data;
    if (h == (uv_handle_t *)&e->sweep)
        e->sweep_closed = true;
    else if (h == (uv_handle_t *)&e->flush)
        e->flush_closed = true;
    else
        e->rec_closed = true;
    ag_eng_maybe_free(e);
}

void ag_engine_close(ag_engine *e, void (*done)(void *arg), void *arg)
{
    if (!e)
        return;
    e->closing = true;
    e->done = done;
    e->done_arg = arg;
    dk_events_free(e->events);
    e->events = NULL;
    /* values held for launches in flight go now; their calls end through
     * the clients' cancellation */
    for (etask *et = e->tasks; et; et = et->next)
        ag_eng_release_values(et);
    ag_eng_flush(e); /* what is dirty, and a last try for what the store refused */
    size_t behind = 0;
    for (etask *et = e->tasks; et; et = et->next)
        behind += et->unpersisted;
    if (behind)
        es_notice("engine: the store is behind for %zu tasks (it could not be written); the "
                  "next start reconciles them with Docker",
                  behind);
    uv_close((uv_handle_t *)&e->rec, on_timer_closed);
    uv_close((uv_handle_t *)&e->sweep, on_timer_closed);
    uv_close((uv_handle_t *)&e->flush, on_timer_closed);
}
