/* watch.c - Docker's view of the tasks: events, reconciling lists and the
 * sweep of stopped tasks (engine_int.h). */
#include "agent/tasks/engine_int.h"
#include "agent/secrets/inject.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const ag_eng_rec_trigger_names[REC_TRIGGERS] = {"connect", "reconnect", "periodic"};

/* ---- Docker's view ---- */

static bool restart_in_place(etask *et, size_t i, const int *exit_code);

static void container_exited(etask *et, size_t i, const int *exit_code, const char *reason)
{
    ag_task_container *c = &et->t->containers[i];
    bool was_stopped = ag_eng_container_stopped(c);
    if (c->restarting)
        return; /* a list or event of before the start again: the start says how it went */
    if (!was_stopped && restart_in_place(et, i, exit_code))
        return;
    if (!was_stopped || (exit_code && !c->has_exit_code))
        ag_eng_container_set(et, i, NULL, "STOPPED", exit_code, reason);
    if (!was_stopped && ag_eng_essential(et, i) && et->t->desired_status != AG_TASK_STOPPED) {
        if (et->phase != L_DONE)
            ag_eng_fail_launch(et, "CannotStartContainerError: an essential container exited while "
                                   "the task was starting");
        else if (ag_task_request_stop(et->t, AG_STOP_ESSENTIAL_CONTAINER_EXITED,
                                      "Essential container in task exited", ag_eng_commit_task,
                                      et->e) < 0)
            es_err("task %s: cannot record the stop", et->t->id);
    }
    ag_eng_persist(et);
}

static void on_restarted(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!ag_eng_cop_end(ud, &et, &i))
        return;
    ag_task_container *c = &et->t->containers[i];
    c->restarting = false;
    if (r->err) {
        char reason[AG_CONTAINER_REASON_MAX + 1];
        snprintf(reason, sizeof reason, "CannotStartContainerError: restart: %s",
                 r->message ? r->message : dk_strerror(r->err));
        es_warn("task %s: container %s: %s", et->t->id, c->name, reason);
        container_exited(et, i, NULL, reason);
    }
    ag_eng_advance(et);
}

/* A container whose restartPolicy says so (td_restart.h) is started again
 * in place, as ECS's agent does: the same container, so the same Env and
 * values it was created with. true when its start was issued. */
static bool restart_in_place(etask *et, size_t i, const int *exit_code)
{
    ag_task_container *c = &et->t->containers[i];
    const ag_container_def *cd = ag_eng_cdef(et, i);
    if (!cd || !cd->restart.enabled || et->phase != L_DONE || !c->docker_id)
        return false;
    uint64_t now = uv_now(et->e->loop), since = c->restarted_ms ? c->restarted_ms : c->started_ms;
    bool stopping = et->t->desired_status == AG_TASK_STOPPED;
    char why[AG_RESTART_WHY_MAX];
    if (!ag_restart_decide(&cd->restart, stopping, exit_code,
                           (int64_t)((now - (since < now ? since : now)) / 1000), why,
                           sizeof why)) {
        if (!stopping)
            es_info("task %s: container %s exited: not started again (%s)", et->t->id, c->name,
                    why);
        return false;
    }
    cop *op = es_calloc(1, sizeof *op);
    int rc = op ? 0 : -ENOMEM;
    if (op) {
        *op = (cop){et, i};
        rc = dk_container_start(et->e->cfg.docker, c->docker_id, on_restarted, op);
    }
    if (rc < 0) {
        es_free(op);
        es_warn("task %s: container %s: cannot start it again: %s", et->t->id, c->name,
                dk_strerror(rc));
        return false;
    }
    ag_eng_op_begin(et);
    c->restarting = true;
    c->restarted_ms = now;
    c->restart_count++;
    es_notice("task %s: container %s exited with code %d: starting it again in place (restart %u, "
              "the values it was created with)",
              et->t->id, c->name, *exit_code, c->restart_count);
    return true;
}

/* Docker's health_status event: the container's healthStatus. "starting"
 * (the start period, or no verdict yet) is ECS's UNKNOWN. A standalone task
 * goes on whatever its health, as ECS's does; a HEALTHY dependency waits on
 * this (launch.c). */
static void container_health(etask *et, size_t i, const char *status)
{
    ag_task_container *c = &et->t->containers[i];
    /* as ECS's agent: only the health checks of the task definition are
     * reported, not one the image brings (its HEALTHCHECK) */
    if (!c->health_checked)
        return;
    ag_health h = strcmp(status, "healthy") == 0     ? AG_HEALTH_HEALTHY
                  : strcmp(status, "unhealthy") == 0 ? AG_HEALTH_UNHEALTHY
                                                     : AG_HEALTH_UNKNOWN;
    if (c->health == h)
        return;
    es_info("task %s: container %s is %s", et->t->id, c->name, ag_health_name(h));
    c->health = h;
    /* a service's task that turns UNHEALTHY is stopped, and its service
     * starts another, as ECS's service scheduler does */
    ag_task *t = et->t;
    if (ag_task_health(t) == AG_HEALTH_UNHEALTHY && t->group &&
        strncmp(t->group, "service:", 8) == 0 && t->desired_status != AG_TASK_STOPPED &&
        ag_task_request_stop(t, AG_STOP_SERVICE_SCHEDULER_INITIATED, AG_HEALTH_STOP_REASON,
                             ag_eng_commit_task, et->e) < 0)
        es_err("task %s: cannot record the stop", t->id);
}

/* A Docker-socket task learns its container from the container's task-ARN
 * label (the create event, or a reconciling list when the event was
 * missed): true when arn is such a task still waiting for it. */
static bool bind_external(ag_engine *e, const char *arn, const char *docker_id)
{
    etask *et = ag_eng_find(e, arn);
    if (!et || !ag_eng_external(et) || et->t->last_status == AG_TASK_STOPPED ||
        et->t->containers[0].docker_id)
        return false;
    ag_eng_container_set(et, 0, docker_id, "PENDING", NULL, NULL);
    ag_eng_persist(et);
    es_info("task %s: its container is %.12s", et->t->id, docker_id);
    return true;
}

/* A Docker-socket container started again after its task STOPPED (docker
 * start, restart, a restart policy) holds the values its create got: it is
 * a new task with the same definition and secrets' metadata, so that drift
 * still names it. */
static void external_restarted(etask *old, const char *docker_id)
{
    etask *et = ag_eng_readopt(old); /* old may be gone after this */
    if (!et) {
        es_err("docker: container %.12s started again: cannot make its task", docker_id);
        return;
    }
    ag_eng_container_set(et, 0, docker_id, "RUNNING", NULL, NULL);
    es_info("task %s: container %.12s started again (its values as created)", et->t->id, docker_id);
    ag_eng_persist(et);
    ag_eng_advance(et);
}

/* `docker rm` of a Docker-socket task's container ends the task (its
 * container says why); nothing is left for the sweep. */
static void external_removed(etask *et, size_t i)
{
    container_exited(et, i, NULL, NULL);
    if (!et->t->containers[i].reason)
        ag_eng_container_set(et, i, NULL, NULL, NULL, "the container was removed (docker rm)");
    et->cleaned = true;
    ag_eng_persist(et);
}

/* A list asked for after a Docker-socket task STOPPED shows its container
 * running: the container's start event was missed. */
static void restarted_unseen(ag_engine *e, const dk_container_summary *s, uint64_t seq)
{
    size_t i = 0;
    etask *et = ag_eng_find_by_container(e, s->id, &i);
    if (et && ag_eng_external(et) && et->t->last_status == AG_TASK_STOPPED &&
        et->stopped_at_list < seq && s->state && strcmp(s->state, "running") == 0)
        external_restarted(et, s->id);
}

void ag_eng_on_event(void *ud, const dk_event *ev)
{
    ag_engine *e = ud;
    if (e->closing || !ev->id)
        return;
    ag_series_add(e->m_events, 1);
    /* a Docker-socket container's files are named by the task its create
     * made (its task-ARN label), whichever task holds it now, if any */
    if (ev->type == DK_EV_DESTROY && ev->task_arn)
        ag_eng_files_remove_docker(e, ev->task_arn);
    size_t i = 0;
    etask *et = ag_eng_find_by_container(e, ev->id, &i);
    if (!et && ev->type == DK_EV_CREATE && ev->task_arn && bind_external(e, ev->task_arn, ev->id))
        return;
    if (!et) {
        if (ev->type == DK_EV_CREATE && ev->task_arn && !ag_eng_find(e, ev->task_arn))
            es_notice("docker: container %.12s carries the task ARN %s, which this agent does "
                      "not know; left alone",
                      ev->id, ev->task_arn);
        return;
    }
    switch (ev->type) {
    case DK_EV_START:
        if (ag_eng_external(et) && et->t->last_status == AG_TASK_STOPPED) {
            external_restarted(et, ev->id);
            return;
        }
        if (!ag_eng_container_stopped(&et->t->containers[i])) {
            ag_eng_container_set(et, i, NULL, "RUNNING", NULL, NULL);
            if (!et->t->containers[i].started_ms)
                et->t->containers[i].started_ms = uv_now(e->loop);
        }
        break;
    case DK_EV_OOM:
        ag_eng_container_set(et, i, NULL, NULL, NULL,
                             "OutOfMemoryError: Container killed due to memory usage");
        break;
    case DK_EV_DIE: {
        int code = ev->exit_code;
        container_exited(et, i, ev->has_exit_code ? &code : NULL, NULL);
        break;
    }
    case DK_EV_HEALTH:
        container_health(et, i, ev->health);
        break;
    case DK_EV_DESTROY:
        if (ag_eng_external(et))
            external_removed(et, i);
        else
            container_exited(et, i, NULL, NULL);
        break;
    default:
        return;
    }
    ag_eng_advance(et);
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

/* A list's Status carries the health Docker last judged ("Up 5 minutes
 * (healthy)", "(unhealthy)", "(health: starting)"): after a restart, or
 * with the health_status event dropped, the container's healthStatus comes
 * from there. */
static void listed_health(etask *et, size_t i, const char *status)
{
    if (!status)
        return;
    if (strstr(status, "(healthy)"))
        container_health(et, i, "healthy");
    else if (strstr(status, "(unhealthy)"))
        container_health(et, i, "unhealthy");
}

static const char *label_of(const dk_container_summary *s, const char *key)
{
    const char *v = NULL;
    for (size_t l = 0; l < s->nlabels; l++)
        if (strcmp(s->labels[l].key, key) == 0)
            v = s->labels[l].value;
    return v;
}

/* In a cluster whose agents share one Docker engine, a container labelled
 * with another container instance is that agent's: never adopted, stopped
 * or reported here. (The engine only ever acts on its own tasks' containers,
 * found by task ARN and container ID; this keeps the list's notices quiet.) */
static bool other_instance(const ag_engine *e, const dk_container_summary *s)
{
    const char *v = e->instance_arn ? label_of(s, AG_ENGINE_INSTANCE_LABEL) : NULL;
    return v && strcmp(v, e->instance_arn) != 0;
}

/* A STOPPED task's container that the list shows still there when it
 * should not be: running (a stop Docker never carried out: dockerd went away
 * mid-call, or came back with the container), or, for a task that failed to
 * start, present at all (its removal failed the same way). Stopped, or
 * removed, again; the number of calls issued. A list asked for before the
 * task stopped may predate the stop, and a call in flight will answer. */
static size_t stop_leftovers(etask *et, const dk_container_summary *items, size_t n, uint64_t seq)
{
    ag_task *t = et->t;
    if (ag_eng_external(et) || et->ops || et->stopped_at_list >= seq)
        return 0;
    bool failed = t->stop_code == AG_STOP_TASK_FAILED_TO_START && et->cleaned;
    size_t issued = 0;
    for (size_t i = 0; i < t->n_containers; i++) {
        const char *id = t->containers[i].docker_id;
        for (size_t k = 0; id && k < n; k++) {
            if (!items[k].id || strcmp(items[k].id, id) != 0)
                continue;
            bool running = items[k].state && strcmp(items[k].state, "running") == 0;
            if (!running && !failed)
                break;
            es_notice("task %s: container %s (%.12s) is still %s after the task STOPPED; %s "
                      "it again",
                      t->id, t->containers[i].name, id, running ? "running" : "there",
                      failed ? "removing" : "stopping");
            ag_eng_issue_container_op(et, i, failed);
            issued++;
            break;
        }
    }
    return issued;
}

/* Applies one list of the labelled containers to the tasks. A container
 * whose create answered after the list was asked for may be missing from it
 * (dockerd answered the list first): its task is left for the next list. */
static void on_listed(void *ud, const dk_result *r, const dk_container_summary *items, size_t n)
{
    ag_engine *e = ud;
    e->inflight--;
    e->listing = false;
    if (e->closing) {
        ag_eng_maybe_free(e);
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
    for (size_t k = 0; k < n; k++) {
        const char *arn = label_of(&items[k], DK_TASK_ARN_LABEL);
        if (other_instance(e, &items[k]))
            continue;
        if (arn && items[k].id && !bind_external(e, arn, items[k].id))
            restarted_unseen(e, &items[k], seq);
    }
    size_t outlived = 0;
    for (etask *et = e->tasks; et; et = et->next) {
        ag_task *t = et->t;
        if (t->last_status == AG_TASK_STOPPED) {
            outlived += stop_leftovers(et, items, n, seq);
            continue;
        }
        if (et->created_at_list >= seq) {
            later++;
            continue;
        }
        for (size_t i = 0; i < t->n_containers; i++) {
            ag_task_container *c = &t->containers[i];
            if (!c->docker_id || ag_eng_container_stopped(c))
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
                if (!ag_eng_container_running(c))
                    ag_eng_container_set(et, i, NULL, "RUNNING", NULL, NULL);
                listed_health(et, i, s->status);
            } else if (s->state &&
                       (strcmp(s->state, "exited") == 0 || strcmp(s->state, "dead") == 0)) {
                exited++;
                container_exited(et, i, parse_exit(s->status, &code) ? &code : NULL, NULL);
            }
        }
        ag_eng_advance(et);
    }
    for (size_t k = 0; k < n; k++) {
        const char *arn = label_of(&items[k], DK_TASK_ARN_LABEL);
        if (arn && !other_instance(e, &items[k]) && !ag_eng_find(e, arn) &&
            e->list_trigger != REC_PERIODIC)
            es_notice("docker: container %.12s carries the task ARN %s, which this agent does "
                      "not know; left alone",
                      items[k].id ? items[k].id : "?", arn);
    }
    /* the socket's containers' files: kept for the containers listed (a
     * cluster's lists show only containers of this instance's label, which
     * the socket's do not carry: those keep their files until destroyed) */
    if (!e->instance_arn)
        ag_eng_files_sweep_docker(e, items, n);
    ag_series_add(e->m_rec_runs[e->list_trigger], 1);
    ag_series_add(e->m_rec_exited, (double)exited);
    ag_series_add(e->m_rec_vanished, (double)vanished);
    if (e->list_trigger != REC_PERIODIC || exited || vanished || outlived)
        es_log(e->list_trigger == REC_PERIODIC ? ES_LOG_NOTICE : ES_LOG_INFO,
               "docker: reconciled (%s): %zu containers seen, %zu running adopted, %zu found "
               "exited, %zu gone, %zu outlived their stopped tasks%s",
               ag_eng_rec_trigger_names[e->list_trigger], n, adopted, exited, vanished, outlived,
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

void ag_eng_on_connected(void *ud, bool reconnected)
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

void ag_eng_on_events_error(void *ud, int err, unsigned attempt, uint64_t delay_ms)
{
    (void)ud;
    if (attempt == 1 || attempt % 10 == 0)
        es_warn("docker: events stream lost (%s); retrying in %llu ms (attempt %u)",
                dk_strerror(err), (unsigned long long)delay_ms, attempt);
}

/* ---- cleanup of stopped tasks ---- */

/* A Docker-socket task whose container never appeared (dockerd refused the
 * create, the client went away) stops after AG_ENGINE_ADOPT_WAIT_S. */
static void external_unborn(etask *et, int64_t now)
{
    ag_task *t = et->t;
    if (t->last_status == AG_TASK_STOPPED || t->containers[0].docker_id ||
        now - t->created_at < AG_ENGINE_ADOPT_WAIT_S)
        return;
    ag_eng_fail_launch(et, "CannotCreateContainerError: Docker did not create the container "
                           "(the create was refused, or its client went away)");
    ag_eng_advance(et);
}

/* The stops Docker did not carry out, tried again. One at a time from the
 * list's head: advancing a task may tell observers (the scheduler), which
 * may start tasks and forget old ones, so no list position is kept across
 * the call. Each pass clears a flag that only a later answer sets again. */
static void retry_stops(ag_engine *e)
{
    for (;;) {
        etask *et = e->tasks;
        while (et && !(et->stop_retry && !et->ops))
            et = et->next;
        if (!et)
            return;
        et->stop_retry = false;
        ag_eng_advance(et);
    }
}

void ag_eng_on_sweep(uv_timer_t *timer)
{
    ag_engine *e = timer->data;
    int64_t now = ag_eng_now_s();
    retry_stops(e);
    ag_eng_flush(e); /* the writes the store refused, again */
    for (etask *et = e->tasks; et; et = et->next) {
        ag_task *t = et->t;
        if (ag_eng_dep_waiting(et))
            ag_eng_advance(et); /* a dependency's startTimeout may have passed */
        if (ag_eng_external(et)) {
            external_unborn(et, now);
            continue; /* their containers are their owners' */
        }
        if (t->last_status != AG_TASK_STOPPED || et->cleaned || et->ops)
            continue;
        if (now - t->stopped_at < e->cfg.cleanup_delay_s)
            continue;
        et->cleaned = true;
        for (size_t i = 0; i < t->n_containers; i++)
            if (t->containers[i].docker_id)
                ag_eng_issue_container_op(et, i, true);
    }
}
