/* conn.c - one unix-socket connection carrying one request at a time.
 *
 * States: CONNECTING -> (BUSY <-> IDLE) -> CLOSING; conn_state() is the only
 * writer of k->state. The connection's memory holds two uv handles (pipe and
 * timer) and is freed when both close callbacks have run.
 *
 * Retries. A kept-alive connection can be closed by dockerd while it sits
 * idle in the pool (dockerd restarting, or closing a connection idle for
 * 300 s, as 20.10 does); when a request is handed to it before the loop has
 * read the EOF, the request fails although dockerd may never have seen it. Such a
 * request is given back to the owner once (dk__conn_owner.retry), to be sent
 * on a fresh connection, when all of these hold:
 *  - the connection had carried an exchange before (a fresh connection that
 *    fails says something about dockerd, not about staleness: as Go's
 *    net/http and curl, no retry);
 *  - not a byte of the answer arrived (then dockerd did answer: the failure
 *    is reported);
 *  - the request was not retried already, and it did not time out;
 *  - and the failure proves that dockerd never acted on the request, or the
 *    request may be repeated:
 *    * FAIL_WRITE_REFUSED: the first write of the request failed (EPIPE,
 *      ECONNRESET, ENOTCONN) and the socket accepted none of its bytes. On
 *      a unix socket EPIPE means the peer socket was already closed: no
 *      process can ever read what we tried to write. Any method.
 *    * FAIL_RESET_UNREAD: the read failed with ECONNRESET. Linux reports
 *      ECONNRESET (instead of EOF) on a unix stream socket exactly when the
 *      peer closed it with bytes still unread in its receive queue
 *      (unix_release_sock); since we send one request at a time and the
 *      previous answer was complete, those bytes are this request's, so
 *      dockerd never had all of it: for the bodies we send (one JSON
 *      document, decoded whole before anything is done) and for bodiless
 *      requests, it cannot have acted on it. Any method.
 *    * FAIL_EOF: EOF before any answer byte, the request possibly read by
 *      dockerd. That is what a Go server closing an idle connection looks
 *      like, but also what a dockerd killed while handling the request
 *      looks like: only GET and HEAD are sent again. POST (create, start,
 *      stop, kill, pull) and DELETE (remove: a second one would answer 404
 *      for a container the first removed) are not, and report the error;
 *      Go's net/http draws the same line (isReplayable).
 *    * FAIL_WRITE_PARTIAL: a write failed after some bytes were accepted:
 *      GET and HEAD only.
 * Timeouts, parse errors and limits are never retried. To be sent again the
 * request keeps its own copy of the body and extra headers while a retry is
 * possible (sent on a reused connection, no answer byte yet); the copies
 * are wiped when the first answer byte arrives, at once after serializing
 * on a fresh connection, and in any case when the request is freed.
 *
 * Deadlines. The timer is armed lazily: a request whose deadline is no
 * earlier than the armed one leaves it alone, and nothing stops it when a
 * request ends; when it fires, it looks at the request then in flight and
 * either fails it (deadline passed), arms itself again for the rest, or
 * does nothing (idle connection, or a stream past its head). With one
 * timeout for all requests that is one timer operation per timeout period
 * instead of a heap insert and removal per request, on a path that runs on
 * cold caches after every sleep (docs/ARCHITECTURE.md, Docker client CPU). */
#include "docker/internal.h"

#include "common/alloc.h"
#include "common/secure.h"

#include <errno.h>
#include <string.h>

static void conn_state(dk__conn *k, dk__conn_state s)
{
    k->state = s;
}

dk__req *dk__req_alloc(void)
{
    dk__req *r = es_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    es_buf_init(&r->path, DK__PATH_MAX);
    es_buf_init(&r->body, DK__MAX_REQUEST);
    es_buf_init(&r->extra, DK__EXTRA_MAX);
    es_buf_init(&r->resp, 0); /* max set by the connection's limits */
    return r;
}

int dk__req_setup(dk__req *r, const char *method, bool versioned)
{
    size_t ml = strlen(method);
    if (ml >= sizeof(r->method))
        return -EINVAL;
    memcpy(r->method, method, ml + 1);
    r->versioned = versioned;
    r->secret = r->negotiation = r->no_timeout_after_head = false;
    r->fresh_only = r->retried = false;
    r->timeout_ms = r->deadline = 0;
    r->status = 0;
    r->api_version[0] = '\0';
    r->done = NULL;
    r->stream = NULL;
    r->on_head = NULL;
    r->op = NULL;
    r->next = NULL;
    return 0;
}

dk__req *dk__req_new(const char *method, const char *path, bool versioned)
{
    dk__req *r = dk__req_alloc();
    if (r && (dk__req_setup(r, method, versioned) < 0 || es_buf_append_str(&r->path, path) < 0)) {
        dk__req_free(r);
        return NULL;
    }
    return r;
}

/* The request's own copy of what may hold secrets: no longer needed. Wiped;
 * the allocation stays for the block's next request (dk__req_free or the
 * client's recycling releases it). */
static void drop_copy(dk__req *r)
{
    es_buf_reset_secret(&r->body);
    es_buf_reset_secret(&r->extra);
}

void dk__req_clear(dk__req *r)
{
    es_buf_reset_secret(&r->body);
    es_buf_reset_secret(&r->extra);
    es_buf_reset_secret(&r->resp);
    es_buf_reset_secret(&r->path); /* a path names no secret, but costs nothing here */
}

bool dk__req_reusable(const dk__req *r)
{
    /* a spare keeps what a usual request needs, not a pull's or a list's
     * big answer or a create's large body */
    const size_t keep = 4096;
    return r->path.cap <= keep && r->body.cap <= keep && r->extra.cap <= keep &&
           r->resp.cap <= keep;
}

void dk__req_free(dk__req *r)
{
    if (!r)
        return;
    es_buf_free_secret(&r->body);
    es_buf_free_secret(&r->extra);
    es_buf_free_secret(&r->resp);
    es_buf_free(&r->path);
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

typedef enum fail_kind {
    FAIL_OTHER,
    FAIL_WRITE_REFUSED, /* the first write failed, nothing accepted */
    FAIL_WRITE_PARTIAL, /* a write failed after bytes were accepted */
    FAIL_RESET_UNREAD,  /* ECONNRESET on read: the peer left our bytes unread */
    FAIL_EOF,           /* EOF, nothing of the answer received */
} fail_kind;

static bool idempotent(const dk__req *r)
{
    return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

/* The rules of "Retries" at the top of this file. */
static bool retryable(const dk__conn *k, const dk__req *r, fail_kind kind)
{
    if (!k->ops->retry || !k->req_reused || k->answered || r->retried)
        return false;
    switch (kind) {
    case FAIL_WRITE_REFUSED:
    case FAIL_RESET_UNREAD:
        return true;
    case FAIL_WRITE_PARTIAL:
    case FAIL_EOF:
        return idempotent(r);
    case FAIL_OTHER:
        break;
    }
    return false;
}

/* The connection failed under its request: closes it, and either hands the
 * request back to the owner for one more attempt or fails it with err. */
static void fail(dk__conn *k, int err, fail_kind kind)
{
    dk__req *r = k->req;
    if (r && k->state != DK__CONN_CLOSING && retryable(k, r, kind)) {
        k->req = NULL;
        r->retried = true;
        r->fresh_only = true;
        dk__conn_close(k, err);
        k->ops->retry(k, r, k->owner);
        return;
    }
    dk__conn_close(k, err);
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

static void on_timeout(uv_timer_t *t);

/* The timer fires at deadline or earlier ("Deadlines" above). */
static void arm(dk__conn *k, uint64_t deadline, uint64_t now)
{
    if (uv_is_active((uv_handle_t *)&k->timer) && k->due <= deadline)
        return;
    uint64_t left = deadline > now ? deadline - now : 1;
    k->due = now + left;
    uv_timer_start(&k->timer, on_timeout, left, 0);
}

static void on_timeout(uv_timer_t *t)
{
    dk__conn *k = t->data;
    dk__req *r = k->req;
    if (!r || k->untimed)
        return;
    uint64_t now = uv_now(t->loop);
    if (r->deadline > now) {
        arm(k, r->deadline, now); /* fired for an earlier request */
        return;
    }
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
    if (r->negotiation) {
        const char *v = es_http_parser_header(k->parser, "Api-Version");
        if (v && strlen(v) < sizeof(r->api_version))
            memcpy(r->api_version, v, strlen(v) + 1);
    }
    /* a body of known length is collected in one allocation, not grown by
     * doubling (every step of which copies and wipes what came before) */
    int64_t cl = es_http_parser_content_length(k->parser);
    if (cl > 0 && (uint64_t)cl <= r->resp.max &&
        !(r->stream && r->status >= 200 && r->status < 300)) {
        (void)es_buf_expect(&r->resp, (size_t)cl); /* on failure the appends report it */
    }
    if (r->no_timeout_after_head && r->status >= 200 && r->status < 300)
        k->untimed = true;
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
        fail_kind kind = FAIL_OTHER;
        if (!k->answered && nread == UV_EOF)
            kind = FAIL_EOF;
        else if (!k->answered && nread == UV_ECONNRESET)
            kind = FAIL_RESET_UNREAD;
        fail(k, rc == 0 ? -ECONNRESET : rc, kind);
        return;
    }
    if (!k->req) {
        dk__conn_close(k, 0); /* unsolicited bytes: out of sync */
        return;
    }
    if (!k->answered) {
        /* dockerd answers: the request can no longer be sent again */
        k->answered = true;
        drop_copy(k->req);
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
        fail(k, status, FAIL_WRITE_PARTIAL);
}

static bool stale_write_error(int e)
{
    return e == UV_EPIPE || e == UV_ECONNRESET || e == UV_ENOTCONN;
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
        /* a failed write(2) took none of the bytes */
        es_buf_reset_secret(&k->wbuf);
        fail(k, n, stale_write_error(n) ? FAIL_WRITE_REFUSED : FAIL_OTHER);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    b = uv_buf_init(k->wbuf.data + done, (unsigned)(k->wbuf.len - done));
    k->write_req.data = k;
    int e = uv_write(&k->write_req, (uv_stream_t *)&k->pipe, &b, 1, on_write);
    if (e < 0) {
        es_buf_reset_secret(&k->wbuf);
        fail(k, e, done ? FAIL_WRITE_PARTIAL : FAIL_OTHER);
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
    es_buf_init(&k->wbuf, DK__MAX_REQUEST + DK__EXTRA_MAX + DK__HEAD_ROOM);
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

/* Appends the decimal digits of v. */
static int append_size(es_buf *w, size_t v)
{
    char d[24];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return es_buf_append(w, d + i, sizeof(d) - i);
}

/* The request into k->wbuf. Plain appends, no printf: this runs for every
 * request, and after a sleep of hundreds of milliseconds (a create) with
 * caches that dockerd's work has emptied, every line of code it touches
 * costs a miss. */
static int serialize(dk__conn *k, dk__req *r, const char *ver)
{
    es_buf *w = &k->wbuf;
    int e = es_buf_append_str(w, r->method);
    if (!e)
        e = es_buf_append_char(w, ' ');
    if (!e && ver && !(e = es_buf_append(w, "/v", 2)))
        e = es_buf_append_str(w, ver);
    if (!e)
        e = es_buf_append(w, r->path.data, r->path.len);
    if (!e)
        e = es_buf_append_str(w, " HTTP/1.1\r\nHost: docker\r\n");
    if (!e && r->extra.len)
        e = es_buf_append(w, r->extra.data, r->extra.len);
    if (e)
        return e;
    if (r->body.len) {
        e = es_buf_append_str(w, "Content-Type: application/json\r\nContent-Length: ");
        if (!e)
            e = append_size(w, r->body.len);
        if (!e)
            e = es_buf_append(w, "\r\n\r\n", 4);
        if (!e)
            e = es_buf_append(w, r->body.data, r->body.len);
    } else if (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0) {
        e = es_buf_append_str(w, "Content-Length: 0\r\n\r\n");
    } else {
        e = es_buf_append_str(w, "\r\n");
    }
    /* on a fresh connection the bytes now live in wbuf only; on a reused
     * one the request keeps its copy while it may be sent again */
    if (!k->reused)
        drop_copy(r);
    return e;
}

void dk__conn_send(dk__conn *k, dk__req *r, const char *ver, uint64_t now)
{
    k->req = r;
    k->answered = false;
    k->req_reused = k->reused;
    k->untimed = false;
    r->status = 0;
    r->api_version[0] = '\0';
    r->resp.max = k->max_body;
    es_http_parser_reset(k->parser);
    es_http_parser_set_head_response(k->parser, strcmp(r->method, "HEAD") == 0);
    es_buf_reset(&k->wbuf); /* empty already: wiped after the last write */
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
    arm(k, r->deadline, now);
    conn_state(k, DK__CONN_BUSY);
    if (k->connected)
        start_write(k);
}
