/* events.c - the /events watcher with reconnect.
 *
 * States (watch_state() is the only writer):
 *   PINGING   connection opened, GET /_ping sent (negotiates the version)
 *   OPENING   GET /events sent, waiting for its 200 head
 *   STREAMING the chunked body is being cut into lines and decoded
 *   BACKOFF   waiting for the retry timer after a failure
 *   STOPPED   dk_events_free was called; no callback runs any more
 * The watcher's memory holds the backoff timer and is freed when that timer
 * and every connection it opened have closed. */
#include "docker/internal.h"

#include "common/alloc.h"
#include "common/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* The GET /events path: the URL-encoded label filter and a since= timestamp. */
#define DK_EVENTS_PATH_MAX 4096

typedef enum watch_st {
    W_PINGING,
    W_OPENING,
    W_STREAMING,
    W_BACKOFF,
    W_STOPPED,
} watch_st;

struct dk_events {
    uv_loop_t *loop;
    char *path;
    es_http_limits lim;
    dk_events_options opt;
    dk_events_cbs cbs;
    void *ud;
    watch_st state;
    uv_timer_t timer;
    bool timer_closed;
    dk__conn *conn;
    size_t open_conns;
    char version[16];
    unsigned attempt;
    bool ever_connected;
    es_buf line;
    bool discarding; /* skipping the rest of an oversized line */
    /* resume point */
    int64_t last_nano;      /* timeNano of the last delivered event */
    int64_t connected_nano; /* wall clock when the stream last opened */
    char last_id[128];
    char last_action[64];
};

static const dk__conn_owner watch_ops;
static void connect_now(dk_events *w);

static void watch_state(dk_events *w, watch_st s)
{
    w->state = s;
}

static int64_t wall_nano(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void maybe_destroy(dk_events *w)
{
    if (w->state != W_STOPPED || !w->timer_closed || w->open_conns)
        return;
    es_buf_free(&w->line);
    es_free(w->path);
    es_free(w);
}

static void on_timer_closed(uv_handle_t *h)
{
    dk_events *w = h->data;
    w->timer_closed = true;
    maybe_destroy(w);
}

static void on_backoff(uv_timer_t *t)
{
    dk_events *w = t->data;
    if (w->state == W_BACKOFF)
        connect_now(w);
}

/* Something failed: drop the connection and try again later. */
static void retry(dk_events *w, int err)
{
    if (w->state == W_STOPPED || w->state == W_BACKOFF)
        return;
    watch_state(w, W_BACKOFF);
    if (w->conn) {
        dk__conn *k = w->conn;
        w->conn = NULL;
        dk__conn_close(k, 0);
    }
    w->attempt++;
    uint64_t d = w->opt.backoff_min_ms;
    for (unsigned i = 1; i < w->attempt && d < w->opt.backoff_max_ms; i++)
        d *= 2;
    if (d > w->opt.backoff_max_ms)
        d = w->opt.backoff_max_ms;
    if (w->cbs.on_error)
        w->cbs.on_error(w->ud, err ? err : -ENOTCONN, w->attempt, d);
    if (w->state == W_BACKOFF) /* not stopped from inside the callback */
        uv_timer_start(&w->timer, on_backoff, d, 0);
}

#define HEALTH_ACTION "health_status"

static dk_event_type type_of(const char *a)
{
    if (!a)
        return DK_EV_OTHER;
    if (strcmp(a, "create") == 0)
        return DK_EV_CREATE;
    if (strcmp(a, "start") == 0)
        return DK_EV_START;
    if (strcmp(a, "die") == 0)
        return DK_EV_DIE;
    if (strcmp(a, "oom") == 0)
        return DK_EV_OOM;
    if (strcmp(a, "destroy") == 0)
        return DK_EV_DESTROY;
    if (strncmp(a, HEALTH_ACTION, strlen(HEALTH_ACTION)) == 0)
        return DK_EV_HEALTH;
    return DK_EV_OTHER;
}

/* "health_status: healthy" -> "healthy" (Docker writes the status after a
 * colon and a space; exec_* actions carry a colon too, health ones this
 * prefix). NULL when nothing follows. */
static const char *health_of(const char *a)
{
    const char *p = a + strlen(HEALTH_ACTION);
    if (*p == ':')
        p++;
    while (*p == ' ')
        p++;
    return *p ? p : NULL;
}

static bool parse_int(const char *s, int *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < -2147483647L || v > 2147483647L)
        return false;
    *out = (int)v;
    return true;
}

/* Decodes one line and delivers it unless it repeats what we saw before a
 * reconnect (since= is inclusive). */
static void event_line(dk_events *w, const char *s, size_t n)
{
    if (n == 0)
        return;
    es_json *j = NULL;
    if (es_json_parse(s, n, &es_json_default_limits, &j, NULL, 0) != 0) {
        if (w->cbs.on_error)
            w->cbs.on_error(w->ud, DK_E_PROTOCOL, 0, 0);
        return;
    }
    dk_event ev;
    memset(&ev, 0, sizeof(ev));
    const char *type = es_json_get_str(j, "Type");
    const es_json *actor = es_json_get(j, "Actor");
    const es_json *attrs = actor ? es_json_get(actor, "Attributes") : NULL;
    ev.action = es_json_get_str(j, "Action");
    ev.id = actor ? es_json_get_str(actor, "ID") : NULL;
    if (!ev.id)
        ev.id = es_json_get_str(j, "id");
    if (!ev.action)
        ev.action = es_json_get_str(j, "status");
    if ((type && strcmp(type, "container") != 0) || !ev.id || !ev.action) {
        es_json_free(j);
        return;
    }
    ev.type = type_of(ev.action);
    if (ev.type == DK_EV_HEALTH && !(ev.health = health_of(ev.action)))
        ev.type = DK_EV_OTHER;
    if (attrs) {
        ev.name = es_json_get_str(attrs, "name");
        ev.image = es_json_get_str(attrs, "image");
        ev.task_arn = es_json_get_str(attrs, DK_TASK_ARN_LABEL);
        ev.has_exit_code = parse_int(es_json_get_str(attrs, "exitCode"), &ev.exit_code);
    }
    es_json_get_int64(j, "time", &ev.time);
    es_json_get_int64(j, "timeNano", &ev.time_nano);
    /* seconds as nanoseconds, when that fits (a time past 2262 does not:
     * it is outside input, and the product would overflow) */
    if (!ev.time_nano && ev.time > 0 && ev.time <= INT64_MAX / 1000000000)
        ev.time_nano = ev.time * 1000000000;
    bool dup = ev.time_nano < w->last_nano ||
               (ev.time_nano == w->last_nano && strcmp(ev.id, w->last_id) == 0 &&
                strcmp(ev.action, w->last_action) == 0);
    if (!dup) {
        w->last_nano = ev.time_nano;
        snprintf(w->last_id, sizeof(w->last_id), "%s", ev.id);
        snprintf(w->last_action, sizeof(w->last_action), "%s", ev.action);
        if (w->cbs.on_event)
            w->cbs.on_event(w->ud, &ev);
    }
    es_json_free(j);
}

static int events_stream(dk__req *r, const char *d, size_t n)
{
    dk_events *w = r->op;
    while (n && w->state == W_STREAMING) {
        const char *nl = memchr(d, '\n', n);
        size_t take = nl ? (size_t)(nl - d) : n;
        if (!w->discarding && es_buf_append(&w->line, d, take) < 0) {
            /* skip this line, keep the stream: reconnecting would replay it */
            w->discarding = true;
            es_buf_reset(&w->line);
            if (w->cbs.on_error)
                w->cbs.on_error(w->ud, DK_E_LINE_TOO_LONG, 0, 0);
        }
        if (!nl)
            return 0;
        if (!w->discarding)
            event_line(w, w->line.data, w->line.len);
        w->discarding = false;
        es_buf_reset(&w->line);
        d += take + 1;
        n -= take + 1;
    }
    return 0;
}

static void events_head(dk__req *r)
{
    dk_events *w = r->op;
    if (w->state != W_OPENING || r->status != 200)
        return; /* the error is reported when the request completes */
    watch_state(w, W_STREAMING);
    w->attempt = 0;
    w->connected_nano = wall_nano();
    es_buf_reset(&w->line);
    w->discarding = false;
    bool again = w->ever_connected;
    w->ever_connected = true;
    if (w->cbs.on_connected)
        w->cbs.on_connected(w->ud, again);
}

static void events_done(dk__req *r, int err)
{
    dk_events *w = r->op;
    int e = err;
    if (!e && r->status != 200)
        e = dk__status_error(r, NULL);
    dk__req_free(r);
    retry(w, e ? e : -ENOTCONN); /* an events stream never ends by itself */
}

static void ping_done(dk__req *r, int err)
{
    dk_events *w = r->op;
    int e = err;
    if (!e && r->status != 200)
        e = dk__status_error(r, NULL);
    if (!e && w->state == W_PINGING) {
        int m = 24;
        const char *v = r->api_version;
        if (strncmp(v, "1.", 2) == 0) {
            int x = 0;
            bool ok = v[2] != '\0';
            for (const char *s = v + 2; *s && ok; s++) {
                ok = *s >= '0' && *s <= '9' && x < 1000;
                x = x * 10 + (*s - '0');
            }
            if (ok)
                m = x;
        }
        if (m > DK_API_MINOR)
            m = DK_API_MINOR;
        snprintf(w->version, sizeof(w->version), "%d.%d", DK_API_MAJOR, m);
        watch_state(w, W_OPENING);
    }
    dk__req_free(r);
    if (e)
        retry(w, e);
    /* on success the connection turns idle next: watch_idle sends /events */
}

static int events_path(dk_events *w, es_buf *p)
{
    int e = es_buf_append_str(p, "/events?filters=");
    if (!e)
        e = dk__urlencode(p, "{\"type\":[\"container\"],\"label\":[\"" DK_TASK_ARN_LABEL "\"]}");
    int64_t since = w->last_nano ? w->last_nano : w->connected_nano;
    if (!e && since > 0)
        e = es_buf_printf(p, "&since=%lld.%09lld", (long long)(since / 1000000000),
                          (long long)(since % 1000000000));
    return e;
}

static void watch_idle(dk__conn *k, void *owner)
{
    dk_events *w = owner;
    if (w->state != W_OPENING || k != w->conn)
        return;
    es_buf p;
    es_buf_init(&p, DK_EVENTS_PATH_MAX);
    int e = events_path(w, &p);
    dk__req *r = e ? NULL : dk__req_new("GET", es_buf_cstr(&p), true);
    es_buf_free(&p);
    if (!r) {
        retry(w, e ? e : -ENOMEM);
        return;
    }
    r->op = w;
    r->done = events_done;
    r->stream = events_stream;
    r->on_head = events_head;
    r->no_timeout_after_head = true;
    r->resp.max = w->lim.max_body;
    uv_update_time(w->loop); /* as dk__client_submit: the cached clock may be old */
    r->deadline = uv_now(w->loop) + w->opt.connect_timeout_ms;
    dk__conn_send(k, r, w->version, uv_now(w->loop));
}

static void watch_closed(dk__conn *k, void *owner)
{
    dk_events *w = owner;
    if (w->conn == k)
        w->conn = NULL;
    w->open_conns--;
    if (w->state == W_STOPPED) {
        maybe_destroy(w);
        return;
    }
    /* closed without a request to report it (e.g. while idle) */
    if (w->state == W_PINGING || w->state == W_OPENING || w->state == W_STREAMING)
        if (!w->conn)
            retry(w, -ECONNRESET);
}

static const dk__conn_owner watch_ops = {watch_idle, watch_closed,
                                         NULL}; /* no retries: the watcher reconnects itself */

static void connect_now(dk_events *w)
{
    watch_state(w, W_PINGING);
    dk__conn *k = dk__conn_new(w->loop, w->path, &w->lim, &watch_ops, w);
    dk__req *r = k ? dk__req_new("GET", "/_ping", false) : NULL;
    if (!r) {
        if (k)
            dk__conn_close(k, 0);
        watch_state(w, W_OPENING); /* let retry run */
        retry(w, -ENOMEM);
        return;
    }
    w->conn = k;
    w->open_conns++;
    r->op = w;
    r->negotiation = true;
    r->done = ping_done;
    r->resp.max = w->lim.max_body;
    uv_update_time(w->loop); /* as dk__client_submit: the cached clock may be old */
    r->deadline = uv_now(w->loop) + w->opt.connect_timeout_ms;
    dk__conn_send(k, r, NULL, uv_now(w->loop));
}

int dk_events_start(dk_client *c, const dk_events_options *opt, const dk_events_cbs *cbs, void *ud,
                    dk_events **out)
{
    dk_events *w = es_calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->path = es_strdup(dk__client_path(c));
    if (!w->path) {
        es_free(w);
        return -ENOMEM;
    }
    w->loop = dk__client_loop(c);
    w->lim = *dk__client_limits(c);
    if (opt)
        w->opt = *opt;
    if (!w->opt.backoff_min_ms)
        w->opt.backoff_min_ms = 100;
    if (!w->opt.backoff_max_ms)
        w->opt.backoff_max_ms = 10000;
    if (w->opt.backoff_max_ms < w->opt.backoff_min_ms)
        w->opt.backoff_max_ms = w->opt.backoff_min_ms;
    if (!w->opt.max_line)
        w->opt.max_line = 64 * 1024;
    if (!w->opt.connect_timeout_ms)
        w->opt.connect_timeout_ms = 10000;
    w->cbs = *cbs;
    w->ud = ud;
    es_buf_init(&w->line, w->opt.max_line);
    uv_timer_init(w->loop, &w->timer);
    w->timer.data = w;
    connect_now(w);
    *out = w;
    return 0;
}

void dk_events_free(dk_events *w)
{
    if (!w || w->state == W_STOPPED)
        return;
    watch_state(w, W_STOPPED);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
    if (w->conn) {
        dk__conn *k = w->conn;
        w->conn = NULL;
        dk__conn_close(k, -ECANCELED);
    }
}
