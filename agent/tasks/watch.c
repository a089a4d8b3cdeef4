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

static void container_exited(etask *et, size_t i, const int *exit_code, const char *reason)
{
    ag_task_container *c = &et->t->containers[i];
    bool was_stopped = ag_eng_container_stopped(c);
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

void ag_eng_on_event(void *ud, const dk_event *ev)
{
    ag_engine *e = ud;
    if (e->closing || !ev->id)
        return;
    ag_series_add(e->m_events, 1);
    size_t i = 0;
    etask *et = ag_eng_find_by_container(e, ev->id, &i);
    if (!et) {
        if (ev->type == DK_EV_CREATE && ev->task_arn && !ag_eng_find(e, ev->task_arn))
            es_notice("docker: container %.12s carries the task ARN %s, which this agent does "
                      "not know; left alone",
                      ev->id, ev->task_arn);
        return;
    }
    switch (ev->type) {
    case DK_EV_START:
        if (!ag_eng_container_stopped(&et->t->containers[i]))
            ag_eng_container_set(et, i, NULL, "RUNNING", NULL, NULL);
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
    case DK_EV_DESTROY:
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
            } else if (s->state &&
                       (strcmp(s->state, "exited") == 0 || strcmp(s->state, "dead") == 0)) {
                exited++;
                container_exited(et, i, parse_exit(s->status, &code) ? &code : NULL, NULL);
            }
        }
        ag_eng_advance(et);
    }
    for (size_t k = 0; k < n; k++) {
        const char *arn = NULL;
        for (size_t l = 0; l < items[k].nlabels; l++)
            if (strcmp(items[k].labels[l].key, DK_TASK_ARN_LABEL) == 0)
                arn = items[k].labels[l].value;
        if (arn && !ag_eng_find(e, arn) && e->list_trigger != REC_PERIODIC)
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
               ag_eng_rec_trigger_names[e->list_trigger], n, adopted, exited, vanished,
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

void ag_eng_on_sweep(uv_timer_t *timer)
{
    ag_engine *e = timer->data;
    int64_t now = ag_eng_now_s();
    for (etask *et = e->tasks; et; et = et->next) {
        ag_task *t = et->t;
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
