#include "agent/tasks/engine.h"
#include "agent/secrets/inject.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SWEEP_INTERVAL_MS 15000
#define DEFAULT_STOP_TIMEOUT_S 30 /* ECS's default stopTimeout */
#define MAX_OBSERVERS 8

/* A task definition (and RunTask's overrides) shared by the tasks of one
 * RunTask call. */
typedef struct tdref {
    unsigned refs;
    ag_taskdef *td; /* NULL when the revision is gone from the store */
    ag_overrides *ov;
} tdref;

/* Why a reconciling list was taken. */
typedef enum rec_trigger {
    REC_CONNECT,   /* the events stream connected for the first time */
    REC_RECONNECT, /* it came back after a loss: events may be missing */
    REC_PERIODIC,  /* the interval: dockerd drops events for a slow reader */
    REC_TRIGGERS
} rec_trigger;

static const char *const rec_trigger_names[REC_TRIGGERS] = {"connect", "reconnect", "periodic"};

typedef enum launch_phase {
    L_RESOLVE, /* secrets being fetched */
    L_CREATE,  /* containers[step] being created */
    L_START,   /* containers[step] being started */
    L_DONE,    /* launched (or adopted after a restart) */
} launch_phase;

static const char *const phase_names[] = {"resolve", "create", "start", "done"};

typedef struct etask etask;
struct etask {
    etask *prev, *next;
    ag_engine *e;
    ag_task *t;
    tdref *td;
    launch_phase phase;
    size_t step;
    size_t pulled_step; /* step+1 of the last pull, so a pull is tried once */
    unsigned ops;       /* Docker or resolver calls in flight for this task */
    ag_resolution *res; /* values, between resolution and the last create */
    bool cleaned;       /* stopped containers removed */
    uint64_t launch_started_ms;
    /* e->lists_issued when a create of this task last answered: a list
     * issued at or before that may predate the container */
    uint64_t created_at_list;
};

/* One Docker call about one container of one task. */
typedef struct cop {
    etask *et;
    size_t idx;
} cop;

struct ag_engine {
    ag_engine_config cfg;
    char *region, *account, *cluster, *network_mode;
    uv_loop_t *loop;
    etask *tasks; /* newest first */
    size_t ntasks;
    dk_events *events;
    uv_timer_t sweep, rec;
    bool started, closing, sweep_closed, rec_closed;
    /* reconciling lists: one at a time; another asked for while one is in
     * flight runs after it */
    uint64_t lists_issued;
    bool listing, list_again;
    rec_trigger list_trigger, again_trigger;
    uint64_t reconcile_ms; /* 0: no periodic reconcile */
    unsigned inflight;     /* every callback the engine still waits for */
    void (*done)(void *arg);
    void *done_arg;
    struct {
        ag_engine_observer fn;
        void *arg;
    } observers[MAX_OBSERVERS];
    size_t nobservers;
    ag_series *m_launched, *m_launch_seconds, *m_resolve_seconds, *m_events;
    ag_series *m_rec_runs[REC_TRIGGERS], *m_rec_failed, *m_rec_exited, *m_rec_vanished,
        *m_rec_skipped;
};

static void advance(etask *et);

/* ---- small helpers ---- */

static int64_t now_s(void)
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

static const ag_container_def *cdef(const etask *et, size_t i)
{
    if (!et->td || !et->td->td)
        return NULL;
    return ag_taskdef_container(et->td->td, et->t->containers[i].name);
}

static bool essential(const etask *et, size_t i)
{
    const ag_container_def *cd = cdef(et, i);
    return cd ? cd->essential : true;
}

static int stop_timeout(const etask *et, size_t i)
{
    const ag_container_def *cd = cdef(et, i);
    return cd && cd->has_stop_timeout ? (int)cd->stop_timeout : DEFAULT_STOP_TIMEOUT_S;
}

static void persist(etask *et)
{
    ag_engine *e = et->e;
    if (ag_store_task_put(e->cfg.store, et->t) < 0)
        es_err("task %s: cannot persist: %s", et->t->id, ag_store_errmsg(e->cfg.store));
}

/* The engine's ag_task_commit_fn: the models know no store. */
static int commit_task(void *arg, const ag_task *t)
{
    ag_engine *e = arg;
    int r = ag_store_task_put(e->cfg.store, t);
    if (r < 0)
        es_err("task %s: cannot persist: %s", t->id, ag_store_errmsg(e->cfg.store));
    return r;
}

static void release_values(etask *et)
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
static void move(etask *et, ag_task_status to)
{
    ag_engine *e = et->e;
    ag_task_status from = et->t->last_status;
    if (from == to)
        return;
    if (ag_task_transition(et->t, to, now_s(), commit_task, e) < 0) {
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
    if (to == AG_TASK_STOPPED && et->t->stop_code == AG_STOP_TASK_FAILED_TO_START)
        count_failed_launch(e, et->t->stopped_reason);
    for (size_t i = 0; i < e->nobservers; i++)
        e->observers[i].fn(e->observers[i].arg, et->t, from);
}

static void container_set(etask *et, size_t i, const char *docker_id, const char *status,
                          const int *exit_code, const char *reason)
{
    if (ag_task_container_update(et->t, et->t->containers[i].name, docker_id, status, exit_code,
                                 reason) < 0)
        es_err("task %s: container %s: cannot update", et->t->id, et->t->containers[i].name);
}

static bool container_stopped(const ag_task_container *c)
{
    return c->last_status && strcmp(c->last_status, "STOPPED") == 0;
}

static bool container_running(const ag_task_container *c)
{
    return c->last_status && strcmp(c->last_status, "RUNNING") == 0;
}

static void maybe_free(ag_engine *e);

/* Ends one callback the engine waited for; false when the engine is closing
 * (the caller then touches nothing more). */
static bool op_end(etask *et)
{
    ag_engine *e = et->e;
    et->ops--;
    e->inflight--;
    if (e->closing) {
        maybe_free(e);
        return false;
    }
    return true;
}

static void op_begin(etask *et)
{
    et->ops++;
    et->e->inflight++;
}

/* Takes back a container call's context: false when the engine is closing
 * (the callback then touches nothing more). */
static bool cop_end(void *ud, etask **et, size_t *idx)
{
    cop *c = ud;
    *et = c->et;
    *idx = c->idx;
    es_free(c);
    return op_end(*et);
}

static void fail_launch(etask *et, const char *reason);

/* A launch that failed on container i: the container carries the reason too
 * (containers[].reason in DescribeTasks, as ECS fills it), then the task. */
static void fail_container(etask *et, size_t i, const char *reason)
{
    container_set(et, i, NULL, NULL, NULL, reason);
    fail_launch(et, reason);
}

static void fail_launch(etask *et, const char *reason)
{
    es_warn("task %s: failed to start: %s", et->t->id, reason);
    if (ag_task_request_stop(et->t, AG_STOP_TASK_FAILED_TO_START, reason, commit_task, et->e) < 0)
        es_err("task %s: cannot record the stop", et->t->id);
}

/* ---- launching ---- */

/* The one transition of a launch's phase: resolve -> create -> start ->
 * done, or done from anywhere (a stop, a failure, an adopted task). Entering
 * create or start begins at the first container. Logged old -> new (debug). */
static void set_phase(etask *et, launch_phase to)
{
    launch_phase from = et->phase;
    bool ok = to == L_DONE || (from == L_RESOLVE && to == L_CREATE) ||
              (from == L_CREATE && to == L_START);
    if (!ok) {
        es_err("task %s: launch phase %s -> %s refused", et->t->id, phase_names[from],
               phase_names[to]);
        return;
    }
    if (from == to)
        return;
    et->phase = to;
    if (to == L_CREATE || to == L_START)
        et->step = 0;
    es_debug("task %s: launch phase %s -> %s", et->t->id, phase_names[from], phase_names[to]);
}

static void on_resolved(void *arg, ag_resolution *res, const char *reason)
{
    etask *et = arg;
    if (!op_end(et)) {
        ag_resolution_free(res);
        return;
    }
    if (et->launch_started_ms)
        ag_series_observe(et->e->m_resolve_seconds,
                          (double)(uv_now(et->e->loop) - et->launch_started_ms) / 1000.0);
    if (!res) {
        fail_launch(et, reason ? reason : "ResourceInitializationError: unknown failure");
        advance(et);
        return;
    }
    const ag_taskdef *td = et->td->td;
    for (size_t i = 0; i < res->n; i++) {
        const ag_resolved_secret *s = &res->items[i];
        if (ag_task_add_secret_meta(et->t, td->containers[s->container].name, s->target, s->name,
                                    s->value_from, s->source_arn, s->version, s->resolved_at,
                                    s->fingerprint) < 0) {
            ag_resolution_free(res);
            fail_launch(et, "ResourceInitializationError: out of memory");
            advance(et);
            return;
        }
    }
    et->res = res;
    set_phase(et, L_CREATE);
    if (et->t->desired_status != AG_TASK_STOPPED)
        move(et, AG_TASK_PENDING);
    advance(et);
}

static void split_image(const char *image, char *name, size_t nlen, char *tag, size_t tlen)
{
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(image, ':');
    const char *at = strchr(image, '@');
    if (at || !colon || (slash && colon < slash)) {
        snprintf(name, nlen, "%s", image);
        snprintf(tag, tlen, "%s", at ? "" : "latest");
        return;
    }
    snprintf(name, nlen, "%.*s", (int)(colon - image), image);
    snprintf(tag, tlen, "%s", colon + 1);
}

static void on_pulled(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!cop_end(ud, &et, &i))
        return;
    if (r->err) {
        char reason[AG_REASON_BUF];
        snprintf(reason, sizeof reason, "CannotPullContainerError: %s: %s",
                 et->t->containers[i].image, r->message ? r->message : dk_strerror(r->err));
        fail_container(et, i, reason);
    }
    advance(et); /* retries the create */
}

static void on_created(void *ud, const dk_result *r, const char *id)
{
    etask *et;
    size_t i;
    if (!cop_end(ud, &et, &i))
        return;
    if (r->err == DK_E_NOT_FOUND && et->pulled_step != et->step + 1 &&
        et->t->desired_status != AG_TASK_STOPPED) {
        /* no such image: pull it once, then create again */
        char name[512], tag[256];
        split_image(et->t->containers[i].image, name, sizeof name, tag, sizeof tag);
        cop *p = es_calloc(1, sizeof *p);
        et->pulled_step = et->step + 1;
        /* repositoryCredentials (S15): the X-Registry-Auth value lives in
         * the resolution, wiped with it after the last create; the Docker
         * client wipes its copy of the request once written */
        const ag_container_def *cd = cdef(et, i);
        const char *auth =
            cd ? ag_resolution_registry_auth(et->res, (size_t)(cd - et->td->td->containers)) : NULL;
        if (p) {
            *p = (cop){et, i};
            if (dk_image_pull(et->e->cfg.docker, name, tag[0] ? tag : NULL, auth, on_pulled, p) ==
                0) {
                es_info("task %s: pulling %s%s", et->t->id, et->t->containers[i].image,
                        auth ? " with the registry credentials of repositoryCredentials" : "");
                op_begin(et);
                return;
            }
            es_free(p);
        }
        fail_container(et, i, "CannotPullContainerError: cannot start the pull");
        advance(et);
        return;
    }
    if (r->err) {
        char reason[AG_REASON_BUF];
        snprintf(reason, sizeof reason, "CannotCreateContainerError: %s: %s",
                 et->t->containers[i].name, r->message ? r->message : dk_strerror(r->err));
        fail_container(et, i, reason);
        advance(et);
        return;
    }
    container_set(et, i, id, "PENDING", NULL, NULL);
    et->created_at_list = et->e->lists_issued;
    persist(et);
    et->step++;
    advance(et);
}

static void on_started(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!cop_end(ud, &et, &i))
        return;
    if (r->err) {
        char reason[AG_REASON_BUF];
        snprintf(reason, sizeof reason, "CannotStartContainerError: %s: %s",
                 et->t->containers[i].name, r->message ? r->message : dk_strerror(r->err));
        fail_container(et, i, reason);
        advance(et);
        return;
    }
    /* the events stream may already have said it died: keep STOPPED */
    if (!container_stopped(&et->t->containers[i]))
        container_set(et, i, NULL, "RUNNING", NULL, NULL);
    et->step++;
    advance(et);
}

static int issue_create(etask *et)
{
    ag_engine *e = et->e;
    size_t i = et->step;
    const ag_container_def *cd = cdef(et, i);
    char err[AG_INJECT_ERR_MAX] = "";
    char reason[AG_REASON_BUF];
    if (!cd) {
        fail_launch(et, "CannotCreateContainerError: the task definition is gone");
        return -ENOENT;
    }
    ag_secret_value views[AG_TD_SECRETS_MAX + AG_TD_SECRET_OPTIONS_MAX];
    size_t nv = ag_resolution_values(et->res, i, views, sizeof views / sizeof *views);
    /* ECS network modes on one Docker host: none and host as they are;
     * bridge (and awsvpc, which needs ENIs we do not have) as the agent's
     * configured mode, "bridge" unless told otherwise */
    const char *nm = et->td->td->network_mode;
    const char *mode = nm && (strcmp(nm, "none") == 0 || strcmp(nm, "host") == 0)
                           ? nm
                           : (e->network_mode ? e->network_mode : "bridge");
    ag_inject_ctx ctx = {.task_arn = et->t->arn,
                         .cluster = et->t->cluster,
                         .family = et->t->family,
                         .revision = et->t->revision,
                         .network_mode = mode};
    ag_create_params *p = NULL;
    int rc = ag_inject_build(cd, ag_overrides_for(et->td->ov, cd->name), views, nv, &ctx, &p, err,
                             sizeof err);
    if (rc < 0) {
        snprintf(reason, sizeof reason, "CannotCreateContainerError: %s: %s", cd->name, err);
        fail_container(et, i, reason);
        return rc;
    }
    cop *c = es_calloc(1, sizeof *c);
    rc = -ENOMEM;
    if (c) {
        *c = (cop){et, i};
        es_debug("task %s: creating container %s as %s", et->t->id, cd->name, p->name);
        /* the body is written (docker/) and the params' values wiped right away */
        rc = dk_container_create(e->cfg.docker, &p->spec, on_created, c);
    }
    ag_create_params_free(p);
    if (rc < 0) {
        es_free(c);
        snprintf(reason, sizeof reason, "CannotCreateContainerError: %s: %s", cd->name,
                 rc == -ENOMEM ? "out of memory" : dk_strerror(rc));
        fail_container(et, i, reason);
        return rc;
    }
    op_begin(et);
    return 0;
}

static int issue_start(etask *et)
{
    size_t i = et->step;
    cop *c = es_calloc(1, sizeof *c);
    int rc = -ENOMEM;
    if (c) {
        *c = (cop){et, i};
        rc = dk_container_start(et->e->cfg.docker, et->t->containers[i].docker_id, on_started, c);
    }
    if (rc < 0) {
        es_free(c);
        char reason[AG_REASON_BUF];
        snprintf(reason, sizeof reason, "CannotStartContainerError: %s: %s",
                 et->t->containers[i].name, dk_strerror(rc));
        fail_container(et, i, reason);
        return rc;
    }
    op_begin(et);
    return 0;
}

/* ---- stopping ---- */

static void on_container_stopped(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!cop_end(ud, &et, &i))
        return;
    if (r->err && r->err != DK_E_NOT_FOUND)
        es_warn("task %s: container %s: stop failed: %s", et->t->id, et->t->containers[i].name,
                r->message ? r->message : dk_strerror(r->err));
    /* stopped (or gone): the die event brings the exit code if it comes */
    if (!r->err || r->err == DK_E_NOT_FOUND) {
        if (!container_stopped(&et->t->containers[i]))
            container_set(et, i, NULL, "STOPPED", NULL, NULL);
    } else {
        /* cannot stop it: say so, and do not wait forever */
        container_set(et, i, NULL, "STOPPED", NULL, "the agent could not stop the container");
    }
    persist(et);
    advance(et);
}

static void on_container_removed(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!cop_end(ud, &et, &i))
        return;
    if (r->err && r->err != DK_E_NOT_FOUND)
        es_warn("task %s: container %s: remove failed: %s", et->t->id, et->t->containers[i].name,
                r->message ? r->message : dk_strerror(r->err));
    if (!container_stopped(&et->t->containers[i]))
        container_set(et, i, NULL, "STOPPED", NULL, NULL);
    persist(et);
    advance(et);
}

static void issue_container_op(etask *et, size_t i, bool remove)
{
    cop *c = es_calloc(1, sizeof *c);
    int rc = -ENOMEM;
    if (c) {
        *c = (cop){et, i};
        const char *id = et->t->containers[i].docker_id;
        rc = remove ? dk_container_remove(et->e->cfg.docker, id, true, on_container_removed, c)
                    : dk_container_stop(et->e->cfg.docker, id, stop_timeout(et, i),
                                        on_container_stopped, c);
    }
    if (rc < 0) {
        es_free(c);
        es_warn("task %s: container %s: cannot %s: %s", et->t->id, et->t->containers[i].name,
                remove ? "remove" : "stop", dk_strerror(rc));
        container_set(et, i, NULL, "STOPPED", NULL, "the agent could not stop the container");
        return;
    }
    op_begin(et);
}

/* Drives a task one step: called after every answer and event that may let
 * it move. Nothing happens while a call about the task is in flight. */
static void advance(etask *et)
{
    ag_engine *e = et->e;
    ag_task *t = et->t;
    if (et->ops || e->closing || t->last_status == AG_TASK_STOPPED)
        return;
    if (t->desired_status == AG_TASK_STOPPED) {
        release_values(et);
        set_phase(et, L_DONE);
        if (t->last_status == AG_TASK_RUNNING || t->last_status == AG_TASK_ACTIVATING)
            move(et, AG_TASK_DEACTIVATING);
        /* a task that failed to start leaves nothing behind: its containers
         * are removed at once; the others are stopped, kept for the logs */
        bool failed = t->stop_code == AG_STOP_TASK_FAILED_TO_START;
        for (size_t i = 0; i < t->n_containers; i++) {
            ag_task_container *c = &t->containers[i];
            if (!c->docker_id)
                continue;
            if (failed && !et->cleaned)
                issue_container_op(et, i, true);
            else if (!container_stopped(c))
                issue_container_op(et, i, false);
        }
        if (failed)
            et->cleaned = true;
        if (et->ops)
            return;
        for (size_t i = 0; i < t->n_containers; i++)
            if (!container_stopped(&t->containers[i]))
                container_set(et, i, NULL, "STOPPED", NULL, NULL);
        move(et, AG_TASK_STOPPED);
        persist(et);
        return;
    }
    switch (et->phase) {
    case L_RESOLVE:
        return; /* the resolver answers */
    case L_CREATE:
        if (et->step < t->n_containers) {
            if (issue_create(et) < 0)
                advance(et);
            return;
        }
        /* every container has its values: none stays in our memory */
        release_values(et);
        set_phase(et, L_START);
        /* fall through */
    case L_START:
        if (et->step < t->n_containers) {
            if (issue_start(et) < 0)
                advance(et);
            return;
        }
        set_phase(et, L_DONE);
        move(et, AG_TASK_RUNNING);
        return;
    case L_DONE:
        return;
    }
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
    et->next = e->tasks;
    if (e->tasks)
        e->tasks->prev = et;
    e->tasks = et;
    e->ntasks++;
    return et;
}

static void etask_unlink_free(ag_engine *e, etask *et)
{
    if (et->prev)
        et->prev->next = et->next;
    else
        e->tasks = et->next;
    if (et->next)
        et->next->prev = et->prev;
    e->ntasks--;
    release_values(et);
    ag_task_free(et->t);
    tdref_unref(et->td);
    es_free(et);
}

static etask *find(ag_engine *e, const char *task)
{
    for (etask *et = e->tasks; et; et = et->next)
        if (strcmp(et->t->arn, task) == 0 || strcmp(et->t->id, task) == 0)
            return et;
    return NULL;
}

static etask *find_by_container(ag_engine *e, const char *docker_id, size_t *idx)
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

/* Makes room by forgetting the oldest stopped tasks that were cleaned up. */
static bool make_room(ag_engine *e, size_t need)
{
    etask *last = e->tasks;
    while (last && last->next)
        last = last->next;
    for (etask *et = last; et && e->ntasks + need > AG_ENGINE_TASKS_MAX;) {
        etask *prev = et->prev;
        if (et->t->last_status == AG_TASK_STOPPED && !et->ops && et->cleaned) {
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
        rc = ag_task_create(e->region, e->account, e->cluster, td->family, td->revision,
                            req->started_by, req->group ? req->group : group,
                            req->launch_type ? req->launch_type : "EC2", now_s(), &t);
        for (size_t i = 0; rc == 0 && i < td->n_containers; i++)
            rc = ag_task_add_container(t, td->containers[i].name, td->containers[i].image);
        if (rc == 0 && ag_store_task_put(e->cfg.store, t) < 0)
            rc = -EIO;
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
    if (rc < 0) {
        /* nothing was started yet: forget the tasks made so far */
        for (int i = 0; i < n; i++) {
            ag_store_task_delete(e->cfg.store, made[i]->t->arn);
            etask_unlink_free(e, made[i]);
        }
        goto out;
    }
    for (int i = 0; i < n; i++) {
        etask *et = made[i];
        es_info("task %s: launching %s:%lld", et->t->id, td->family, (long long)td->revision);
        int s = ag_resolve_start(e->cfg.resolver, td, on_resolved, et);
        if (s < 0) {
            fail_launch(et, "ResourceInitializationError: unable to pull secrets or registry "
                            "auth: cannot start the resolution");
            advance(et);
        } else {
            op_begin(et);
        }
        tasks[i] = et->t;
    }
out:
    tdref_unref(r);
    return rc;
}

int ag_engine_stop_task(ag_engine *e, const char *task, ag_stop_code code, const char *reason,
                        ag_task **out)
{
    etask *et = find(e, task);
    if (!et)
        return -ENOENT;
    if (et->t->last_status != AG_TASK_STOPPED && et->t->desired_status != AG_TASK_STOPPED) {
        es_info("task %s: stop requested (%s): %s", et->t->id, ag_stop_code_name(code),
                reason ? reason : "");
        int rc = ag_task_request_stop(et->t, code, reason, commit_task, e);
        if (rc < 0)
            return rc;
        advance(et);
    }
    *out = et->t;
    return 0;
}

ag_task *ag_engine_find_task(ag_engine *e, const char *task)
{
    etask *et = find(e, task);
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
            if (container_running(&et->t->containers[i]))
                out->running_containers++;
    }
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

/* ---- Docker's view ---- */

static void container_exited(etask *et, size_t i, const int *exit_code, const char *reason)
{
    ag_task_container *c = &et->t->containers[i];
    bool was_stopped = container_stopped(c);
    if (!was_stopped || (exit_code && !c->has_exit_code))
        container_set(et, i, NULL, "STOPPED", exit_code, reason);
    if (!was_stopped && essential(et, i) && et->t->desired_status != AG_TASK_STOPPED) {
        if (et->phase != L_DONE)
            fail_launch(et, "CannotStartContainerError: an essential container exited while "
                            "the task was starting");
        else if (ag_task_request_stop(et->t, AG_STOP_ESSENTIAL_CONTAINER_EXITED,
                                      "Essential container in task exited", commit_task, et->e) < 0)
            es_err("task %s: cannot record the stop", et->t->id);
    }
    persist(et);
}

static void on_event(void *ud, const dk_event *ev)
{
    ag_engine *e = ud;
    if (e->closing || !ev->id)
        return;
    ag_series_add(e->m_events, 1);
    size_t i = 0;
    etask *et = find_by_container(e, ev->id, &i);
    if (!et) {
        if (ev->type == DK_EV_CREATE && ev->task_arn && !find(e, ev->task_arn))
            es_notice("docker: container %.12s carries the task ARN %s, which this agent does "
                      "not know; left alone",
                      ev->id, ev->task_arn);
        return;
    }
    switch (ev->type) {
    case DK_EV_START:
        if (!container_stopped(&et->t->containers[i]))
            container_set(et, i, NULL, "RUNNING", NULL, NULL);
        break;
    case DK_EV_OOM:
        container_set(et, i, NULL, NULL, NULL,
                      "OutOfMemoryError: Container killed due to memory usage");
        break;
    case DK_EV_DIE: {
        int code = ev->exit_code;
        container_exited(et, i, ev->has_exit_code ? &code : NULL, NULL);
        break;
    }
    case DK_EV_DESTROY:
        container_exited(et, i, NULL, NULL);
        break;
    default:
        return;
    }
    advance(et);
}

/* "Exited (137) 3 seconds ago" -> 137 */
static bool parse_exit(const char *status, int *code)
{
    if (!status || strncmp(status, "Exited (", 8) != 0)
        return false;
    char *end = NULL;
    long v = strtol(status + 8, &end, 10);
    if (!end || *end != ')')
        return false;
    *code = (int)v;
    return true;
}

static void reconcile(ag_engine *e, rec_trigger why);

/* Applies one list of the labelled containers to the tasks. A container
 * whose create answered after the list was asked for may be missing from it
 * (dockerd answered the list first): its task is left for the next list. */
static void on_listed(void *ud, const dk_result *r, const dk_container_summary *items, size_t n)
{
    ag_engine *e = ud;
    e->inflight--;
    e->listing = false;
    if (e->closing) {
        maybe_free(e);
        return;
    }
    uint64_t seq = e->lists_issued;
    if (r->err) {
        ag_series_add(e->m_rec_failed, 1);
        es_warn("docker: cannot list containers to reconcile: %s",
                r->message ? r->message : dk_strerror(r->err));
        goto again;
    }
    size_t adopted = 0, exited = 0, vanished = 0, later = 0;
    for (etask *et = e->tasks; et; et = et->next) {
        ag_task *t = et->t;
        if (t->last_status == AG_TASK_STOPPED)
            continue;
        if (et->created_at_list >= seq) {
            later++;
            continue;
        }
        for (size_t i = 0; i < t->n_containers; i++) {
            ag_task_container *c = &t->containers[i];
            if (!c->docker_id || container_stopped(c))
                continue;
            const dk_container_summary *s = NULL;
            for (size_t k = 0; k < n && !s; k++)
                if (items[k].id && strcmp(items[k].id, c->docker_id) == 0)
                    s = &items[k];
            if (!s) {
                vanished++;
                container_exited(et, i, NULL,
                                 e->list_trigger == REC_PERIODIC
                                     ? "the container vanished without a Docker event"
                                     : "the container vanished while the agent was away");
                continue;
            }
            int code;
            if (s->state && strcmp(s->state, "running") == 0) {
                adopted++;
                if (!container_running(c))
                    container_set(et, i, NULL, "RUNNING", NULL, NULL);
            } else if (s->state &&
                       (strcmp(s->state, "exited") == 0 || strcmp(s->state, "dead") == 0)) {
                exited++;
                container_exited(et, i, parse_exit(s->status, &code) ? &code : NULL, NULL);
            }
        }
        advance(et);
    }
    for (size_t k = 0; k < n; k++) {
        const char *arn = NULL;
        for (size_t l = 0; l < items[k].nlabels; l++)
            if (strcmp(items[k].labels[l].key, DK_TASK_ARN_LABEL) == 0)
                arn = items[k].labels[l].value;
        if (arn && !find(e, arn) && e->list_trigger != REC_PERIODIC)
            es_notice("docker: container %.12s carries the task ARN %s, which this agent does "
                      "not know; left alone",
                      items[k].id ? items[k].id : "?", arn);
    }
    ag_series_add(e->m_rec_runs[e->list_trigger], 1);
    ag_series_add(e->m_rec_exited, (double)exited);
    ag_series_add(e->m_rec_vanished, (double)vanished);
    if (e->list_trigger != REC_PERIODIC || exited || vanished)
        es_log(e->list_trigger == REC_PERIODIC ? ES_LOG_NOTICE : ES_LOG_INFO,
               "docker: reconciled (%s): %zu containers seen, %zu running adopted, %zu found "
               "exited, %zu gone%s",
               rec_trigger_names[e->list_trigger], n, adopted, exited, vanished,
               later ? "; tasks launched meanwhile left for the next list" : "");
again:
    if (e->list_again) {
        e->list_again = false;
        reconcile(e, e->again_trigger);
    }
}

/* Asks Docker for the labelled containers; one list at a time: asked for
 * while one is in flight, another follows it (a reconnect's list must be
 * taken after the stream is back). */
static void reconcile(ag_engine *e, rec_trigger why)
{
    if (e->listing) {
        if (why == REC_PERIODIC) {
            ag_series_add(e->m_rec_skipped, 1); /* the list in flight serves */
        } else {
            e->list_again = true;
            e->again_trigger = why;
        }
        return;
    }
    const char *filter = DK_TASK_ARN_LABEL;
    e->lists_issued++;
    if (dk_container_list(e->cfg.docker, &filter, 1, on_listed, e) == 0) {
        e->inflight++;
        e->listing = true;
        e->list_trigger = why;
    } else {
        ag_series_add(e->m_rec_failed, 1);
        es_warn("docker: cannot list containers to reconcile");
    }
}

static void on_reconcile_timer(uv_timer_t *timer)
{
    ag_engine *e = timer->data;
    if (!e->closing)
        reconcile(e, REC_PERIODIC);
}

void ag_engine_set_reconcile_interval(ag_engine *e, uint64_t ms)
{
    e->reconcile_ms = ms;
    if (!e->started || e->closing)
        return;
    uv_timer_stop(&e->rec);
    if (ms)
        uv_timer_start(&e->rec, on_reconcile_timer, ms, ms);
}

uint64_t ag_engine_reconcile_interval(const ag_engine *e)
{
    return e->reconcile_ms;
}

static void on_connected(void *ud, bool reconnected)
{
    ag_engine *e = ud;
    if (e->closing)
        return;
    if (reconnected)
        es_notice("docker: events stream reconnected; reconciling tasks with a list");
    else
        es_info("docker: following the events stream");
    reconcile(e, reconnected ? REC_RECONNECT : REC_CONNECT);
}

static void on_events_error(void *ud, int err, unsigned attempt, uint64_t delay_ms)
{
    (void)ud;
    if (attempt == 1 || attempt % 10 == 0)
        es_warn("docker: events stream lost (%s); retrying in %llu ms (attempt %u)",
                dk_strerror(err), (unsigned long long)delay_ms, attempt);
}

/* ---- cleanup of stopped tasks ---- */

static void on_sweep(uv_timer_t *timer)
{
    ag_engine *e = timer->data;
    int64_t now = now_s();
    for (etask *et = e->tasks; et; et = et->next) {
        ag_task *t = et->t;
        if (t->last_status != AG_TASK_STOPPED || et->cleaned || et->ops)
            continue;
        if (now - t->stopped_at < e->cfg.cleanup_delay_s)
            continue;
        et->cleaned = true;
        for (size_t i = 0; i < t->n_containers; i++)
            if (t->containers[i].docker_id)
                issue_container_op(et, i, true);
    }
}

/* ---- life ---- */

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
        r->td = NULL; /* defaults: essential, 30 s stop timeout */
    etask *et = etask_new(e, t, r);
    tdref_unref(r);
    if (!et) {
        ag_task_free(t);
        return -ENOMEM;
    }
    /* cleaned stays false even for stopped tasks: the sweep removes their
     * leftovers again after a restart (a 404 is fine) */
    set_phase(et, L_DONE);
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
    int rc = -ENOMEM;
    if (!e->region || !e->account || !e->cluster || (cfg->network_mode && !e->network_mode))
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
            const char *l[] = {"trigger", rec_trigger_names[k], NULL};
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
    *out = e;
    return 0;
fail:
    while (e->tasks)
        etask_unlink_free(e, e->tasks);
    es_free(e->region);
    es_free(e->account);
    es_free(e->cluster);
    es_free(e->network_mode);
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
        if (t->last_status == AG_TASK_PROVISIONING || t->last_status == AG_TASK_PENDING ||
            t->last_status == AG_TASK_ACTIVATING) {
            interrupted++;
            fail_launch(et, "TaskFailedToStart: the agent restarted while the task was starting");
        } else if (t->last_status != AG_TASK_STOPPED) {
            adopted++;
        }
    }
    if (interrupted || adopted)
        es_notice("engine: %zu tasks to adopt, %zu interrupted launches to clean up", adopted,
                  interrupted);
    dk_events_cbs cbs = {
        .on_event = on_event, .on_connected = on_connected, .on_error = on_events_error};
    int rc = dk_events_start(e->cfg.docker, NULL, &cbs, e, &e->events);
    if (rc < 0)
        return rc;
    uv_timer_start(&e->sweep, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    e->started = true;
    ag_engine_set_reconcile_interval(e, e->reconcile_ms);
    /* the stop decisions above act once Docker answers (advance issues the
     * calls now; the client queues them until the socket is there) */
    for (etask *et = e->tasks; et; et = et->next)
        advance(et);
    return 0;
}

/* The engine is freed, and done() runs, once it is closing, both timers
 * have closed and no callback it waits for is left. */
static void maybe_free(ag_engine *e)
{
    if (!e->closing || e->inflight || !e->sweep_closed || !e->rec_closed)
        return;
    void (*done)(void *) = e->done;
    void *arg = e->done_arg;
    while (e->tasks)
        etask_unlink_free(e, e->tasks);
    es_free(e->region);
    es_free(e->account);
    es_free(e->cluster);
    es_free(e->network_mode);
    es_free(e);
    if (done)
        done(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    ag_engine *e = h->data;
    if (h == (uv_handle_t *)&e->sweep)
        e->sweep_closed = true;
    else
        e->rec_closed = true;
    maybe_free(e);
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
        release_values(et);
    uv_close((uv_handle_t *)&e->rec, on_timer_closed);
    uv_close((uv_handle_t *)&e->sweep, on_timer_closed);
}
