/* match.c - AllowedPattern matched off the event loop (match.h). */
#include "aws/local/match.h"

#include <stdio.h>
#include <string.h>

#include "aws/local/ssm.h"
#include "common/alloc.h"
#include "common/secure.h"

/* One request waiting for its match. Everything it holds is its own copy: the connection
 * and its buffers may be gone when the result comes back. */
typedef struct al_work {
    uv_work_t req;
    al_ctx *c; /* NULL once the store closed */
    aw_listener_reply *reply;
    char region[AW_REGION_MAX + 1];
    char *target, *principal;
    char *body; /* may hold the value: wiped */
    size_t len;
    char *pattern, *value; /* what the worker matches (value wiped) */
    int r;                 /* the worker's answer, and its error */
    al_error err;
    unsigned rounds;
    struct al_work *prev, *next;
} al_work;

struct al_match {
    uv_loop_t *loop;
    al_work *works; /* in flight */
    size_t n;
    bool can_defer; /* a call of al_match_dispatch is being served */
    /* while a request runs again: the result of its match */
    const al_work *given;
    /* what the operation asked to have matched (AL_MATCH_LATER) */
    char *ask_pattern, *ask_value;
    al_match_stats st;
};

int al_match_enable(al_ctx *c, uv_loop_t *loop)
{
    if (c->match)
        return 0; /* a second listener on the same store: the same loop */
    if (!(c->match = es_calloc(1, sizeof *c->match)))
        return -ENOMEM;
    c->match->loop = loop;
    return 0;
}

static void ask_clear(struct al_match *m)
{
    es_free(m->ask_pattern);
    es_free_secret_str(m->ask_value);
    m->ask_pattern = m->ask_value = NULL;
}

void al_match_free(al_ctx *c)
{
    struct al_match *m = c->match;
    if (!m)
        return;
    for (al_work *w = m->works; w; w = w->next)
        w->c = NULL; /* its result, when it comes, is dropped */
    ask_clear(m);
    es_free(m);
    c->match = NULL;
}

void al_match_get_stats(const al_ctx *c, al_match_stats *out)
{
    memset(out, 0, sizeof *out);
    if (c->match)
        *out = c->match->st;
}

int al_match_check(al_ctx *c, const char *pattern, const char *value, al_error *e)
{
    if (!pattern || !*pattern)
        return 0;
    struct al_match *m = c->match;
    if (m && m->given && strcmp(m->given->pattern, pattern) == 0 &&
        strcmp(m->given->value, value) == 0) {
        if (m->given->r < 0)
            *e = m->given->err;
        return m->given->r;
    }
    if (!m || !m->can_defer)
        return al_ssm_check_pattern(pattern, value, e);
    ask_clear(m);
    m->ask_pattern = es_strdup(pattern);
    m->ask_value = es_strdup(value);
    if (!m->ask_pattern || !m->ask_value) {
        ask_clear(m);
        return al_fail_internal(e, "InternalServerError");
    }
    memset(e, 0, sizeof *e); /* no error: a question */
    return AL_MATCH_LATER;
}

/* ---- the work ---- */

static void work_free(al_work *w)
{
    es_free(w->target);
    es_free(w->principal);
    if (w->body) {
        es_wipe(w->body, w->len);
        es_free(w->body);
    }
    es_free(w->pattern);
    es_free_secret_str(w->value);
    es_wipe(&w->err, sizeof w->err);
    es_free(w);
}

/* A copy of the call (the listener's buffers are released when the route returns). */
static al_work *work_new(al_ctx *c, const aw_listener_call *k)
{
    al_work *w = es_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->c = c;
    w->req.data = w;
    snprintf(w->region, sizeof w->region, "%s", k->region ? k->region : "");
    w->target = es_strdup(k->target);
    w->principal = es_strdup(k->principal ? k->principal : "");
    w->body = es_malloc(k->len + 1);
    if (!w->target || !w->principal || !w->body) {
        work_free(w);
        return NULL;
    }
    memcpy(w->body, k->body, k->len);
    w->body[k->len] = '\0';
    w->len = k->len;
    return w;
}

/* On a pool thread: only the work's own copies are touched. */
static void work_run(uv_work_t *req)
{
    al_work *w = req->data;
    w->r = al_ssm_check_pattern(w->pattern, w->value, &w->err);
}

static void work_done(uv_work_t *req, int status);

/* Gives w what the operation asked to have matched and queues it. 0, or < 0 with e filled
 * (the ask is dropped either way). */
static int work_queue(struct al_match *m, al_work *w, al_error *e)
{
    if (m->n >= AL_MATCH_IN_FLIGHT_MAX) {
        ask_clear(m);
        m->st.throttled++;
        return al_fail(e, 400, "ThrottlingException", "Rate exceeded");
    }
    es_free(w->pattern);
    es_free_secret_str(w->value);
    w->pattern = m->ask_pattern;
    w->value = m->ask_value;
    m->ask_pattern = m->ask_value = NULL;
    if (uv_queue_work(m->loop, &w->req, work_run, work_done) < 0)
        return al_fail_internal(e, "InternalServerError");
    w->next = m->works;
    if (m->works)
        m->works->prev = w;
    m->works = w;
    w->prev = NULL;
    m->n++;
    m->st.queued++;
    return 0;
}

static void work_unlink(struct al_match *m, al_work *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        m->works = w->next;
    if (w->next)
        w->next->prev = w->prev;
    m->n--;
}

/* The request run again with the worker's result: 0 with out, < 0 with e, or
 * AL_MATCH_LATER when its pattern changed meanwhile (a new ask is made). */
static int work_rerun(al_ctx *c, al_work *w, es_buf *out, al_error *e)
{
    struct al_match *m = c->match;
    m->given = w;
    m->can_defer = true;
    int r = al_dispatch_in(c, w->region, w->target, w->principal, w->body, w->len, out, e);
    m->can_defer = false;
    m->given = NULL;
    return r;
}

/* Back on the loop: the request answered, or matched again, or dropped. */
static void work_done(uv_work_t *req, int status)
{
    al_work *w = req->data;
    al_ctx *c = w->c;
    if (c)
        work_unlink(c->match, w);
    if (!c || !w->reply || !aw_listener_reply_open(w->reply)) {
        if (c)
            c->match->st.orphaned++;
        if (w->reply)
            aw_listener_reply_drop(w->reply);
        work_free(w);
        return;
    }
    al_error e = {0};
    es_buf out;
    es_buf_init(&out, AL_RESPONSE_MAX);
    int r = status < 0 ? al_fail_internal(&e, "InternalServerError") : work_rerun(c, w, &out, &e);
    if (r == AL_MATCH_LATER) {
        c->match->st.rounds++;
        if (++w->rounds >= AL_MATCH_ROUNDS_MAX) {
            ask_clear(c->match);
            r = al_fail(&e, 400, "TooManyUpdates",
                        "There are concurrent updates for a resource that supports one update "
                        "at a time.");
        } else if ((r = work_queue(c->match, w, &e)) == 0) {
            es_buf_free_secret(&out);
            return;
        }
    }
    if (r < 0)
        aw_listener_reply_error(w->reply, &e);
    else
        aw_listener_reply_ok(w->reply, out.data, out.len);
    es_buf_free_secret(&out);
    work_free(w);
}

/* The call asked for a match: queued, and the listener's reply taken. AW_LISTENER_LATER, or
 * < 0 with e filled. */
static int defer_call(al_ctx *c, const aw_listener_call *k, al_error *e)
{
    struct al_match *m = c->match;
    if (m->n >= AL_MATCH_IN_FLIGHT_MAX) { /* before copying anything */
        ask_clear(m);
        m->st.throttled++;
        return al_fail(e, 400, "ThrottlingException", "Rate exceeded");
    }
    al_work *w = work_new(c, k);
    if (!w) {
        ask_clear(m);
        return al_fail_internal(e, "InternalServerError");
    }
    int r = work_queue(m, w, e);
    if (r < 0) {
        work_free(w);
        return r;
    }
    /* queued first: its result comes on a later turn of the loop, never before this */
    if (!(w->reply = aw_listener_defer(k)))
        return al_fail_internal(e, "InternalServerError"); /* w is dropped when it is back */
    return AW_LISTENER_LATER;
}

int al_match_dispatch(al_ctx *c, const aw_listener_call *k, es_buf *out, al_error *e)
{
    struct al_match *m = c->match;
    if (m)
        m->can_defer = true;
    int r = al_dispatch_in(c, k->region, k->target, k->principal, k->body, k->len, out, e);
    if (m)
        m->can_defer = false;
    if (r != AL_MATCH_LATER)
        return r;
    return defer_call(c, k, e);
}
