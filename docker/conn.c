/* conn.c - one unix-socket connection carrying one request at a time.
 *
 * States: CONNECTING -> (BUSY <-> IDLE) -> CLOSING; conn_state() is the only
 * writer of k->state. The connection's memory holds two uv handles (pipe and
 * timer) and is freed when both close callbacks have run. */
#include "docker/internal.h"

#include "common/alloc.h"
#include "common/secure.h"

#include <errno.h>
#include <string.h>

static void conn_state(dk__conn *k, dk__conn_state s)
{
    k->state = s;
}

dk__req *dk__req_new(const char *method, const char *path, bool versioned)
{
    dk__req *r = es_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    size_t ml = strlen(method);
    if (ml >= sizeof(r->method) || !(r->path = es_strdup(path))) {
        es_free(r);
        return NULL;
    }
    memcpy(r->method, method, ml + 1);
    r->versioned = versioned;
    es_buf_init(&r->body, DK__MAX_REQUEST);
    es_buf_init(&r->extra, 64 * 1024);
    es_buf_init(&r->resp, 0); /* max set by the connection's limits */
    return r;
}

void dk__req_free(dk__req *r)
{
    if (!r)
        return;
    es_buf_free_secret(&r->body);
    es_buf_free_secret(&r->extra);
    es_buf_free_secret(&r->resp);
    es_free(r->path);
    es_free(r);
}

static void on_close(uv_handle_t *h)
{
    dk__conn *k = h->data;
    if (--k->open_handles > 0)
        return;
    k->ops->on_closed(k, k->owner);
    es_http_parser_free(k->parser);
    es_buf_free_secret(&k->wbuf);
    es_wipe(k->rbuf, sizeof(k->rbuf)); /* answers may have carried Env values */
    es_free(k);
}

/* Detaches the request and runs its completion. */
static void finish(dk__conn *k, int err)
{
    dk__req *r = k->req;
    if (!r)
        return;
    k->req = NULL;
    uv_timer_stop(&k->timer);
    r->done(r, err);
}

void dk__conn_close(dk__conn *k, int err)
{
    if (k->state == DK__CONN_CLOSING)
        return;
    conn_state(k, DK__CONN_CLOSING);
    uv_close((uv_handle_t *)&k->pipe, on_close);
    uv_close((uv_handle_t *)&k->timer, on_close);
    finish(k, err ? err : -ECANCELED);
}

/* A complete answer arrived; keep the connection when the exchange allows. */
static void complete(dk__conn *k)
{
    if (!es_http_parser_keep_alive(k->parser) || k->writing) {
        dk__req *r = k->req;
        k->req = NULL;
        dk__conn_close(k, 0);
        r->done(r, 0);
        return;
    }
    conn_state(k, DK__CONN_IDLE);
    k->reused = true;
    finish(k, 0);
    if (k->state == DK__CONN_IDLE)
        k->ops->on_idle(k, k->owner);
}

static int on_body(void *ud, const char *d, size_t n)
{
    dk__conn *k = ud;
    dk__req *r = k->req;
    if (!r)
        return -EPROTO;
    if (r->stream && r->status >= 200 && r->status < 300)
        return r->stream(r, d, n);
    int e = es_buf_append(&r->resp, d, n);
    return e == -EMSGSIZE ? ES_HTTP_E_BODY_TOO_LARGE : e;
}

static void on_timeout(uv_timer_t *t)
{
    dk__conn *k = t->data;
    dk__conn_close(k, -ETIMEDOUT);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    dk__conn *k = h->data;
    buf->base = k->rbuf;
    buf->len = sizeof(k->rbuf);
}

static void on_headers(dk__conn *k)
{
    dk__req *r = k->req;
    r->status = es_http_parser_status(k->parser);
    const char *v = es_http_parser_header(k->parser, "Api-Version");
    if (v && strlen(v) < sizeof(r->api_version))
        memcpy(r->api_version, v, strlen(v) + 1);
    if (r->no_timeout_after_head && r->status >= 200 && r->status < 300)
        uv_timer_stop(&k->timer);
    if (r->on_head && r->status >= 200)
        r->on_head(r);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    dk__conn *k = s->data;
    if (k->state == DK__CONN_CLOSING)
        return;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (!k->req) {
            dk__conn_close(k, 0); /* idle connection closed by dockerd */
            return;
        }
        int rc = nread == UV_EOF ? es_http_parser_eof(k->parser) : (int)nread;
        if (rc == ES_HTTP_DONE) {
            complete(k);
            return;
        }
        dk__conn_close(k, rc == 0 ? -ECONNRESET : rc);
        return;
    }
    if (!k->req) {
        dk__conn_close(k, 0); /* unsolicited bytes: out of sync */
        return;
    }
    size_t off = 0, len = (size_t)nread;
    for (;;) {
        size_t used = 0;
        int rc = es_http_parser_feed(k->parser, buf->base + off, len - off, &used);
        off += used;
        if (k->state == DK__CONN_CLOSING || !k->req)
            return; /* a stream callback ended it */
        if (rc == ES_HTTP_HEADERS) {
            on_headers(k);
            if (k->state == DK__CONN_CLOSING || !k->req)
                return;
            continue;
        }
        if (rc == ES_HTTP_DONE) {
            if (es_http_parser_status(k->parser) < 200) {
                es_http_parser_reset(k->parser); /* 1xx: the real answer follows */
                continue;
            }
            if (off != len) {
                dk__conn_close(k, -EPROTO); /* bytes after the answer */
                return;
            }
            complete(k);
            return;
        }
        if (rc < 0) {
            dk__conn_close(k, rc);
            return;
        }
        return; /* need more */
    }
}

static void on_write(uv_write_t *w, int status)
{
    dk__conn *k = w->data;
    k->writing = false;
    /* the request is out (or failed): nothing of it stays in memory */
    es_buf_reset_secret(&k->wbuf);
    if (status < 0 && k->state != DK__CONN_CLOSING)
        dk__conn_close(k, status);
}

/* Writes the request: synchronously when the socket takes it all (the usual
 * case for a small request: no write request, no extra loop turn), else the
 * rest through uv_write. */
static void start_write(dk__conn *k)
{
    uv_buf_t b = uv_buf_init(k->wbuf.data, (unsigned)k->wbuf.len);
    int n = uv_try_write((uv_stream_t *)&k->pipe, &b, 1);
    if (n >= 0 && (size_t)n == k->wbuf.len) {
        es_buf_reset_secret(&k->wbuf); /* the request is out: wipe it */
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        es_buf_reset_secret(&k->wbuf);
        dk__conn_close(k, n);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    b = uv_buf_init(k->wbuf.data + done, (unsigned)(k->wbuf.len - done));
    k->write_req.data = k;
    int e = uv_write(&k->write_req, (uv_stream_t *)&k->pipe, &b, 1, on_write);
    if (e < 0) {
        es_buf_reset_secret(&k->wbuf);
        dk__conn_close(k, e);
        return;
    }
    k->writing = true;
}

static void on_connect(uv_connect_t *cr, int status)
{
    dk__conn *k = cr->data;
    if (k->state == DK__CONN_CLOSING)
        return;
    if (status < 0) {
        dk__conn_close(k, status);
        return;
    }
    k->connected = true;
    int e = uv_read_start((uv_stream_t *)&k->pipe, on_alloc, on_read);
    if (e < 0) {
        dk__conn_close(k, e);
        return;
    }
    if (k->req)
        start_write(k);
    else {
        conn_state(k, DK__CONN_IDLE);
        k->ops->on_idle(k, k->owner);
    }
}

dk__conn *dk__conn_new(uv_loop_t *loop, const char *path, const es_http_limits *lim,
                       const dk__conn_owner *ops, void *owner)
{
    dk__conn *k = es_calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    /* the parser lets bodies run (streams are endless); non-streamed
     * bodies are capped by r->resp's maximum instead */
    es_http_limits pl = *lim;
    pl.max_body = SIZE_MAX;
    if (es_http_parser_create(ES_HTTP_RESPONSE, &pl, &k->parser) < 0) {
        es_free(k);
        return NULL;
    }
    es_http_parser_set_body_cb(k->parser, on_body, k);
    k->max_body = lim->max_body;
    es_buf_init(&k->wbuf, DK__MAX_REQUEST + 64 * 1024 + 4096);
    k->ops = ops;
    k->owner = owner;
    uv_pipe_init(loop, &k->pipe, 0);
    uv_timer_init(loop, &k->timer);
    k->pipe.data = k;
    k->timer.data = k;
    k->connect_req.data = k;
    k->open_handles = 2;
    conn_state(k, DK__CONN_CONNECTING);
    uv_pipe_connect(&k->connect_req, &k->pipe, path, on_connect);
    return k;
}

static int serialize(dk__conn *k, dk__req *r, const char *ver)
{
    es_buf *w = &k->wbuf;
    int e = es_buf_printf(w, "%s %s%s%s HTTP/1.1\r\nHost: docker\r\n", r->method, ver ? "/v" : "",
                          ver ? ver : "", r->path);
    if (e < 0)
        return e;
    if (r->extra.len && (e = es_buf_append(w, r->extra.data, r->extra.len)) < 0)
        return e;
    if (r->body.len) {
        e = es_buf_printf(w, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                          r->body.len);
        if (e == 0)
            e = es_buf_append(w, r->body.data, r->body.len);
    } else if (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0) {
        e = es_buf_append_str(w, "Content-Length: 0\r\n\r\n");
    } else {
        e = es_buf_append_str(w, "\r\n");
    }
    /* the bytes now live in wbuf only */
    es_buf_free_secret(&r->body);
    es_buf_free_secret(&r->extra);
    return e;
}

void dk__conn_send(dk__conn *k, dk__req *r, const char *ver, uint64_t now)
{
    k->req = r;
    r->status = 0;
    r->api_version[0] = '\0';
    r->resp.max = k->max_body;
    es_http_parser_reset(k->parser);
    es_http_parser_set_head_response(k->parser, strcmp(r->method, "HEAD") == 0);
    es_buf_reset_secret(&k->wbuf);
    int e = serialize(k, r, ver);
    if (e < 0) {
        es_buf_reset_secret(&k->wbuf);
        /* the connection itself is fine */
        k->req = NULL;
        r->done(r, e);
        if (k->state == DK__CONN_IDLE)
            k->ops->on_idle(k, k->owner);
        return;
    }
    uint64_t left = r->deadline > now ? r->deadline - now : 1;
    uv_timer_start(&k->timer, on_timeout, left, 0);
    conn_state(k, DK__CONN_BUSY);
    if (k->connected)
        start_write(k);
}
