/* task_waits.c - DescribeTasks answers held while a task moves (task_waits.h).
 *
 * The held questions are one list in the order they came; every one waits
 * as long (wait_ms), so that order is also their deadlines' and one timer,
 * set for the first deadline, serves them all. A task's move marks the
 * questions naming it ready and sets the timer to fire at once: the answers
 * are written on the loop's next turn, never inside the engine's observer
 * call (an answer lets its connection read the next request, which could
 * act on the engine while it is still notifying). */
#include "agent/api/task_waits.h"

#include <errno.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"

#define ANSWER_MAX (4u << 20)
#define TASK_ID_LEN 32

typedef struct waiter {
    struct waiter *next;
    aw_listener_reply *reply;
    uint64_t deadline; /* uv_now */
    bool ready;        /* a task it names moved */
    size_t n;
    char ids[AG_TASK_WAITS_TASKS_MAX][TASK_ID_LEN + 1];
    const char *refs[AG_TASK_WAITS_TASKS_MAX]; /* into text */
    char text[];                               /* the refs, NUL-separated */
} waiter;

struct ag_task_waits {
    ag_task_waits_config cfg;
    uv_timer_t timer;
    waiter *head, *tail;
    ag_task_waits_stats st;
    bool observing, closing;
    void (*done)(void *);
    void *done_arg;
};

bool ag_task_waits_in_transition(const ag_task *t)
{
    if (t->desired_status == AG_TASK_RUNNING)
        return t->last_status < AG_TASK_RUNNING;
    return t->desired_status == AG_TASK_STOPPED && t->last_status != AG_TASK_STOPPED;
}

bool ag_task_waits_should_hold(const ag_task_waits *w, ag_task *const *tasks, size_t n)
{
    if (!w || w->closing || w->cfg.wait_ms == 0 || n == 0 || n > AG_TASK_WAITS_TASKS_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ag_task_waits_in_transition(tasks[i]))
            return true;
    return false;
}

/* Writes w's answer now, through its reply (which it releases). */
static void answer(ag_task_waits *tw, waiter *w)
{
    es_buf out;
    es_buf_init(&out, ANSWER_MAX);
    es_jw jw;
    es_jw_init(&jw, &out);
    es_jw_obj(&jw);
    int r = tw->cfg.write(tw->cfg.write_arg, w->refs, w->n, &jw);
    es_jw_obj_end(&jw);
    if (r == 0)
        r = es_jw_finish(&jw);
    if (r < 0)
        ag_api_reply_error(tw->cfg.api, w->reply, "ServerException",
                           "the answer could not be written");
    else
        aw_listener_reply_ok(w->reply, out.data, out.len);
    es_buf_free(&out);
    es_free(w);
}

/* Answers the ready and the expired questions (all of them when closing),
 * then sets the timer for the first still waiting. */
static void sweep(ag_task_waits *tw)
{
    uint64_t now = uv_now(tw->cfg.loop);
    waiter **pp = &tw->head, *last = NULL;
    while (*pp) {
        waiter *w = *pp;
        bool expired = w->deadline <= now;
        if (!tw->closing && !w->ready && !expired) {
            last = w;
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        tw->st.waiting--;
        if (w->ready)
            tw->st.by_change++;
        else if (expired)
            tw->st.by_timeout++;
        answer(tw, w);
    }
    tw->tail = last;
}

static void on_timer(uv_timer_t *t)
{
    ag_task_waits *tw = t->data;
    sweep(tw);
    if (tw->head && !tw->closing) {
        uint64_t now = uv_now(tw->cfg.loop);
        uint64_t due = tw->head->deadline > now ? tw->head->deadline - now : 0;
        uv_timer_start(&tw->timer, on_timer, due, 0);
    }
}

static void on_task_moved(void *arg, ag_task *t, ag_task_status from)
{
    (void)from;
    ag_task_waits *tw = arg;
    bool any = false;
    for (waiter *w = tw->head; w; w = w->next)
        for (size_t i = 0; i < w->n && !w->ready; i++)
            if (strcmp(w->ids[i], t->id) == 0)
                w->ready = any = true;
    if (any)
        uv_timer_start(&tw->timer, on_timer, 0, 0);
}

int ag_task_waits_create(const ag_task_waits_config *cfg, ag_task_waits **out)
{
    if (!cfg->loop || !cfg->engine || !cfg->write || cfg->wait_ms > AG_TASK_WAITS_MS_MAX)
        return -EINVAL;
    ag_task_waits *tw = es_calloc(1, sizeof *tw);
    if (!tw)
        return -ENOMEM;
    tw->cfg = *cfg;
    int r;
    if (cfg->wait_ms > 0) {
        if ((r = ag_engine_observe(cfg->engine, on_task_moved, tw)) < 0) {
            es_free(tw);
            return r;
        }
        tw->observing = true;
    }
    if ((r = uv_timer_init(cfg->loop, &tw->timer)) < 0) {
        if (tw->observing)
            ag_engine_unobserve(cfg->engine, on_task_moved, tw);
        es_free(tw);
        return r;
    }
    tw->timer.data = tw;
    *out = tw;
    return 0;
}

int ag_task_waits_hold(ag_task_waits *tw, const aw_listener_call *call, const char *const *refs,
                       ag_task *const *tasks, size_t n)
{
    if (!call || !ag_task_waits_should_hold(tw, tasks, n))
        return 0;
    if (tw->st.waiting >= AG_TASK_WAITS_MAX) {
        tw->st.refused++;
        return 0;
    }
    size_t text = 0;
    for (size_t i = 0; i < n; i++)
        text += strlen(refs[i]) + 1;
    waiter *w = es_calloc(1, sizeof *w + text);
    if (!w)
        return 0;
    char *p = w->text;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(refs[i]);
        memcpy(p, refs[i], len + 1);
        w->refs[i] = p;
        p += len + 1;
        snprintf(w->ids[i], sizeof w->ids[i], "%s", tasks[i]->id);
    }
    w->n = n;
    if (!(w->reply = aw_listener_defer(call))) {
        es_free(w);
        return 0;
    }
    w->deadline = uv_now(tw->cfg.loop) + tw->cfg.wait_ms;
    if (tw->tail)
        tw->tail->next = w;
    else
        tw->head = w;
    tw->tail = w;
    tw->st.held++;
    tw->st.waiting++;
    if (tw->head == w)
        uv_timer_start(&tw->timer, on_timer, tw->cfg.wait_ms, 0);
    return AW_LISTENER_LATER;
}

void ag_task_waits_get_stats(const ag_task_waits *tw, ag_task_waits_stats *out)
{
    *out = tw->st;
}

static void on_closed(uv_handle_t *h)
{
    ag_task_waits *tw = h->data;
    if (tw->done)
        tw->done(tw->done_arg);
}

void ag_task_waits_close(ag_task_waits *tw, void (*done)(void *arg), void *arg)
{
    tw->closing = true;
    tw->done = done;
    tw->done_arg = arg;
    if (tw->observing) {
        ag_engine_unobserve(tw->cfg.engine, on_task_moved, tw);
        tw->observing = false;
    }
    if (tw->st.waiting)
        es_debug("DescribeTasks: %zu held answers written at the stop", tw->st.waiting);
    sweep(tw);
    uv_close((uv_handle_t *)&tw->timer, on_closed);
}

void ag_task_waits_free(ag_task_waits *tw)
{
    es_free(tw);
}
