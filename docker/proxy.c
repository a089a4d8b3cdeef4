/* proxy.c - the pass-through Docker socket (proxy.h has the design).
 *
 * Memory. Every read lands in a chunk (DK_PROXY_READ_CHUNK bytes, or
 * DK_PROXY_BULK_CHUNK while a stream flows on that side: the previous read
 * filled a whole read chunk; each size recycled through a small spare
 * list); bytes are forwarded straight from the chunk, first by uv_try_write
 * (what the socket takes at once: no request, no callback) and what it did
 * not take by uv_write, which holds a reference to the chunk. Bytes kept
 * past the read callback (a queued write, unparsed client bytes) that fill
 * less than half of their read chunk move into a chunk of their own size
 * (held_chunk), so chunks hold at most twice the bytes kept in them. A side
 * is read only while the writes queued towards the other side hold at most
 * max_queued bytes, so one connection holds at most about
 * 2 x 2 x (max_queued + DK_PROXY_BULK_CHUNK) whatever flows through it
 * (stats.buffered counts the chunks alive).
 *
 * Why not splice(2) (profiles in docs/BENCHMARKS.md, "The proxy's CPU per
 * byte"): about four fifths of the proxy's CPU over a 1 GiB docker cp is
 * the kernel's, most of it the wake-up per batch read (epoll_wait, the
 * context switch) and the socket buffers' allocation; the two copies that
 * splice would save are a fifth. And docker cp is chunked both ways (Go's
 * server and client write a chunk per 32 KiB write of a body of unknown
 * length, as for build contexts, logs and events): splice would have to
 * stop at every chunk's size line, at least four syscalls per 32 KiB where a read and a
 * write now carry up to 229 KiB (dockerd's send buffer). Only hijacked
 * streams and Content-Length bodies could be spliced whole.
 *
 * A connection (struct dk_proxy_call, also the create call's handle) owns
 * three handles: the accepted client pipe, the upstream pipe and the head
 * timer; it is freed when all three have closed.
 *
 * Client bytes wait in `inq` until they can be parsed: only one request is
 * in flight per connection, so the next head is parsed once the answer has
 * ended; bytes of a head being parsed are kept in `headq` until the head is
 * complete (a create's are dropped: its head is written anew with the
 * body's new length). Client EOF and upstream EOF are passed on as
 * shutdown(SHUT_WR) of the other side once what was queued is written; the
 * connection closes when both directions have ended, or on any error. */
#include "docker/proxy.h"

#include "common/alloc.h"
#include "common/buf.h"
#include "common/http.h"
#include "common/json.h"
#include "common/secure.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SPARES 32     /* read chunks kept for reuse (2 MiB) */
#define MAX_BULK_SPARES 4 /* bulk chunks kept for reuse (1 MiB) */
#define LISTEN_BACKLOG 1024
#define REPLY_MAX 8192 /* one of our own error answers */

typedef struct chunk {
    dk_proxy *p;
    size_t refs, cap;
    bool wipe;          /* held a rewritten create body */
    struct chunk *next; /* the spare list */
    char data[];
} chunk;

typedef struct slice {
    chunk *c;
    size_t off, len;
    struct slice *next;
} slice;

typedef struct slice_q {
    slice *head, *tail;
    size_t bytes;
} slice_q;

typedef struct dk_proxy_call pconn;

typedef struct pwr {
    uv_write_t w;
    chunk *c;
    size_t n;
    pconn *k;
    bool to_up;
} pwr;

struct dk_proxy_call {
    dk_proxy *p;
    uv_pipe_t cl, up;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_shutdown_t sd_cl, sd_up;
    int handles;
    bool closing, busy;
    bool up_connected, up_failed;
    bool raw;              /* hijacked: bytes both ways, no parsing */
    bool cl_eof, up_eof;   /* read EOF from that side */
    bool cl_shut, up_shut; /* shutdown of our writing to that side asked */
    bool cl_shut_done, up_shut_done;
    bool cl_reading, up_reading;
    bool cl_bulk, up_bulk; /* the last read from that side filled a read chunk */
    bool in_head;          /* the request parser is in a head */
    bool collect;          /* the current request is an intercepted create */
    bool create_wait;      /* its callback has not answered */
    bool upgrade;          /* the current request asks for an upgrade */
    bool head_method;      /* the current request is a HEAD */
    bool resp_pending;     /* a request went upstream, its answer has not ended */
    bool waiting_resp;     /* the request ended: the next waits for the answer's end */
    bool close_after;      /* our own final answer: close once it is written */
    size_t q_up, q_cl;     /* bytes queued in writes to each side */
    slice_q inq, headq;
    es_http_parser *rq, *rs;
    es_buf body; /* a create's body */
    dk_proxy_peer peer;
    pconn *prev, *next;
};

typedef struct spare_list {
    chunk *head;
    size_t n, max;
} spare_list;

struct dk_proxy {
    uv_loop_t *loop;
    uv_pipe_t listener;
    dk_proxy_options o;
    char *path, *upstream;
    es_http_limits rq_lim, rs_lim;
    pconn *conns;
    size_t nconns;
    int pending; /* the listener + each connection's memory */
    bool accept_waiting, closing, bound;
    spare_list spares, bulk_spares;
    dk_proxy_stats st;
    void (*done)(void *arg);
    void *done_arg;
};

/* ------------------------------------------------------------- chunks */

static void account(dk_proxy *p, size_t add, size_t sub)
{
    p->st.buffered = p->st.buffered + add - sub;
    if (p->st.buffered > p->st.buffered_peak)
        p->st.buffered_peak = p->st.buffered;
}

/* The spare list chunks of cap bytes go back to, or NULL. */
static spare_list *spares_of(dk_proxy *p, size_t cap)
{
    return cap == DK_PROXY_READ_CHUNK   ? &p->spares
           : cap == DK_PROXY_BULK_CHUNK ? &p->bulk_spares
                                        : NULL;
}

static chunk *chunk_new(dk_proxy *p, size_t cap)
{
    chunk *c;
    spare_list *sl = spares_of(p, cap);
    if (sl && sl->head) {
        c = sl->head;
        sl->head = c->next;
        sl->n--;
    } else if (!(c = es_malloc(sizeof(*c) + cap))) {
        return NULL;
    }
    c->p = p;
    c->refs = 1;
    c->cap = cap;
    c->wipe = false;
    c->next = NULL;
    account(p, cap, 0);
    return c;
}

static void chunk_unref(chunk *c)
{
    if (!c || --c->refs > 0)
        return;
    dk_proxy *p = c->p;
    account(p, 0, c->cap);
    if (c->wipe)
        es_wipe(c->data, c->cap);
    spare_list *sl = spares_of(p, c->cap);
    if (sl && sl->n < sl->max && !p->closing) {
        c->next = sl->head;
        sl->head = c;
        sl->n++;
        return;
    }
    es_free(c);
}

static chunk *chunk_copy(dk_proxy *p, const char *d, size_t n, bool wipe)
{
    chunk *c = chunk_new(p, n ? n : 1);
    if (c) {
        memcpy(c->data, d, n);
        c->wipe = wipe;
    }
    return c;
}

static int q_push(slice_q *q, chunk *c, size_t off, size_t len)
{
    slice *s = es_malloc(sizeof(*s));
    if (!s)
        return -ENOMEM;
    c->refs++;
    *s = (slice){.c = c, .off = off, .len = len};
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    q->bytes += len;
    return 0;
}

static void q_pop(slice_q *q)
{
    slice *s = q->head;
    q->head = s->next;
    if (!q->head)
        q->tail = NULL;
    q->bytes -= s->len;
    chunk_unref(s->c);
    es_free(s);
}

/* Takes n bytes off the front slice. */
static void q_advance(slice_q *q, size_t n)
{
    slice *s = q->head;
    s->off += n;
    s->len -= n;
    q->bytes -= n;
    if (s->len == 0)
        q_pop(q);
}

static void q_clear(slice_q *q)
{
    while (q->head)
        q_pop(q);
}

/* ------------------------------------------------------- the connection */

static void process_client(pconn *k);
static void close_conn(pconn *k);
static void accept_one(dk_proxy *p);

static void spares_free(spare_list *sl)
{
    while (sl->head) {
        chunk *c = sl->head;
        sl->head = c->next;
        es_free(c);
    }
    sl->n = 0;
}

static void proxy_release(dk_proxy *p)
{
    if (--p->pending > 0)
        return;
    spares_free(&p->spares);
    spares_free(&p->bulk_spares);
    void (*done)(void *) = p->done;
    void *arg = p->done_arg;
    es_free(p->path);
    es_free(p->upstream);
    es_free(p);
    if (done)
        done(arg);
}

static void on_conn_closed(uv_handle_t *h)
{
    pconn *k = h->data;
    if (--k->handles > 0)
        return;
    dk_proxy *p = k->p;
    es_http_parser_free(k->rq);
    es_http_parser_free(k->rs);
    es_buf_free_secret(&k->body);
    if (k->prev)
        k->prev->next = k->next;
    else
        p->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    p->nconns--;
    p->st.active--;
    es_free(k);
    if (p->accept_waiting && !p->closing) {
        p->accept_waiting = false;
        accept_one(p);
    }
    proxy_release(p);
}

static void close_conn(pconn *k)
{
    if (k->closing)
        return;
    k->closing = true;
    if (k->create_wait) {
        k->create_wait = false;
        if (k->p->o.on_cancel)
            k->p->o.on_cancel(k->p->o.ud, k);
    }
    q_clear(&k->inq);
    q_clear(&k->headq);
    uv_close((uv_handle_t *)&k->cl, on_conn_closed);
    uv_close((uv_handle_t *)&k->up, on_conn_closed);
    uv_close((uv_handle_t *)&k->timer, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    pconn *k = h->data;
    bool bulk = h == (uv_handle_t *)&k->cl ? k->cl_bulk : k->up_bulk;
    size_t cap = bulk ? DK_PROXY_BULK_CHUNK : DK_PROXY_READ_CHUNK;
    chunk *c = chunk_new(k->p, cap);
    *buf = c ? uv_buf_init(c->data, (unsigned)cap) : uv_buf_init(NULL, 0);
}

static chunk *chunk_of(const uv_buf_t *buf)
{
    return buf->base ? (chunk *)(void *)(buf->base - offsetof(chunk, data)) : NULL;
}

/* A new reference to a chunk holding the len bytes of c at *off, kept
 * past the read callback (a queued write, unparsed client bytes): c itself,
 * unless c is a read chunk (64 or 256 KiB) that those bytes fill less than
 * half of; then they move into a chunk of their own size (*off becomes 0)
 * and the read chunk goes back to the spares at once. So chunks hold at
 * most twice the bytes kept in them: a thousand clients each holding a
 * request head of a few hundred bytes, or dockerd's short answers waiting
 * for a slow client, hold kilobytes instead of a thousand read chunks (64
 * MiB, seen with 1000 concurrent docker ps). Only what is kept is copied:
 * bytes a socket takes at once are written from the read chunk. NULL: no
 * memory. */
static chunk *held_chunk(dk_proxy *p, chunk *c, size_t *off, size_t len)
{
    if (!spares_of(p, c->cap) || len >= c->cap / 2) {
        c->refs++;
        return c;
    }
    chunk *h = chunk_copy(p, c->data + *off, len, c->wipe);
    if (h)
        *off = 0;
    return h;
}

/* Gives every slice of q that holds a read chunk mostly empty of it a
 * chunk of its own size (held_chunk); -ENOMEM. */
static int q_compact(dk_proxy *p, slice_q *q)
{
    for (slice *s = q->head; s; s = s->next) {
        size_t off = s->off;
        chunk *h = held_chunk(p, s->c, &off, s->len);
        if (!h)
            return -ENOMEM;
        chunk_unref(s->c);
        s->c = h;
        s->off = off;
    }
    return 0;
}

static void on_read_cl(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_read_up(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void set_reading(pconn *k, uv_stream_t *s, bool *reading, bool want, uv_read_cb cb)
{
    if (want == *reading)
        return;
    if (want && uv_read_start(s, on_alloc, cb) < 0) {
        close_conn(k);
        return;
    }
    if (!want)
        uv_read_stop(s);
    *reading = want;
}

/* Reads a side only while the other side has taken what came from it
 * (backpressure) and, for the client, while few unparsed bytes wait. */
static void update_reading(pconn *k)
{
    if (k->closing)
        return;
    size_t max = k->p->o.max_queued;
    bool cl = !k->cl_eof && !k->close_after && k->q_up <= max && k->inq.bytes <= max;
    bool up = k->up_connected && !k->up_eof && k->q_cl <= max;
    if ((k->cl_reading && (k->q_up > max || k->inq.bytes > max)) ||
        (k->up_reading && k->q_cl > max))
        k->p->st.paused++;
    set_reading(k, (uv_stream_t *)&k->cl, &k->cl_reading, cl, on_read_cl);
    if (!k->closing)
        set_reading(k, (uv_stream_t *)&k->up, &k->up_reading, up, on_read_up);
}

/* Both directions ended and every byte went through: nothing more to do. */
static void check_finished(pconn *k)
{
    if (k->closing)
        return;
    if (k->close_after && k->q_cl == 0) {
        close_conn(k);
        return;
    }
    if (k->cl_eof && k->up_eof && k->cl_shut_done && k->up_shut_done)
        close_conn(k);
}

static void on_write(uv_write_t *w, int status)
{
    pwr *pw = w->data;
    pconn *k = pw->k;
    if (pw->to_up)
        k->q_up -= pw->n;
    else
        k->q_cl -= pw->n;
    chunk_unref(pw->c);
    es_free(pw);
    if (k->closing)
        return;
    if (status < 0) {
        close_conn(k);
        return;
    }
    update_reading(k);
    check_finished(k);
}

/* Writes len bytes of c at off to one side: at once as far as the socket
 * takes them (uv_try_write), the rest queued (uv_write, which holds a
 * reference to c). Why not uv_write alone: libuv answers every uv_write
 * that completes at once with a deferred callback whose drain asks the
 * kernel for an epoll_ctl, one per read forwarded (21 000 a GiB of docker
 * cp, a quarter of the proxy's syscalls; BENCHMARKS.md). uv_try_write
 * refuses (EAGAIN) while anything is queued on that side, so bytes keep
 * their order. */
static void send_to(pconn *k, bool to_up, chunk *c, size_t off, size_t len)
{
    if (k->closing || len == 0)
        return;
    uv_stream_t *s = to_up ? (uv_stream_t *)&k->up : (uv_stream_t *)&k->cl;
    uv_buf_t now = uv_buf_init(c->data + off, (unsigned)len);
    int n = uv_try_write(s, &now, 1);
    if (n < 0 && n != UV_EAGAIN) {
        close_conn(k); /* the peer is gone: as a failed uv_write would */
        return;
    }
    if (n > 0) {
        if (to_up)
            k->p->st.bytes_up += (size_t)n;
        else
            k->p->st.bytes_down += (size_t)n;
        off += (size_t)n;
        len -= (size_t)n;
        if (len == 0)
            return;
    }
    k->p->st.writes_queued++;
    pwr *pw = es_malloc(sizeof(*pw));
    chunk *held = pw ? held_chunk(k->p, c, &off, len) : NULL;
    if (!held) {
        es_free(pw);
        close_conn(k);
        return;
    }
    *pw = (pwr){.c = held, .n = len, .k = k, .to_up = to_up};
    pw->w.data = pw;
    uv_buf_t b = uv_buf_init(held->data + off, (unsigned)len);
    if (uv_write(&pw->w, s, &b, 1, on_write) < 0) {
        chunk_unref(held);
        es_free(pw);
        close_conn(k);
        return;
    }
    if (to_up) {
        k->q_up += len;
        k->p->st.bytes_up += len;
    } else {
        k->q_cl += len;
        k->p->st.bytes_down += len;
    }
}

/* Our own bytes (an answer, a rewritten create) to one side. */
static void send_copy(pconn *k, bool to_up, const char *d, size_t n, bool wipe)
{
    chunk *c = chunk_copy(k->p, d, n, wipe);
    if (!c) {
        close_conn(k);
        return;
    }
    send_to(k, to_up, c, 0, n);
    chunk_unref(c);
}

static void on_shutdown(uv_shutdown_t *r, int status)
{
    (void)status; /* a peer already gone has nothing left to tell */
    pconn *k = r->data;
    if (r == &k->sd_up)
        k->up_shut_done = true;
    else
        k->cl_shut_done = true;
    check_finished(k);
}

/* shutdown(SHUT_WR) towards one side once its queued writes are out: how
 * EOF (the CLI's CloseWrite when stdin ends) travels through. */
static void shut(pconn *k, bool to_up)
{
    bool *asked = to_up ? &k->up_shut : &k->cl_shut;
    if (k->closing || *asked)
        return;
    *asked = true;
    uv_shutdown_t *r = to_up ? &k->sd_up : &k->sd_cl;
    r->data = k;
    uv_stream_t *s = to_up ? (uv_stream_t *)&k->up : (uv_stream_t *)&k->cl;
    if (uv_shutdown(r, s, on_shutdown) < 0) {
        if (to_up)
            k->up_shut_done = true;
        else
            k->cl_shut_done = true;
        check_finished(k);
    }
}

/* ------------------------------------------------------ our own answers */

/* dockerd's error shape: status, JSON {"message": ...} and a newline. */
static void reply(pconn *k, int status, const char *message, bool close_after)
{
    es_buf body, out;
    es_buf_init(&body, REPLY_MAX);
    es_buf_init(&out, 2 * REPLY_MAX);
    es_jw w;
    es_jw_init(&w, &body);
    es_jw_obj(&w);
    es_jw_kstr(&w, "message", message);
    es_jw_obj_end(&w);
    int e = es_jw_finish(&w);
    if (!e)
        e = es_buf_append_char(&body, '\n');
    if (!e)
        e = es_http_write_status_line(&out, status, NULL);
    if (!e && close_after)
        e = es_http_write_header(&out, "Connection", "close");
    if (!e)
        e = es_http_write_body(&out, "application/json", body.data, body.len);
    if (e)
        close_conn(k);
    else
        send_copy(k, false, out.data, out.len, false);
    es_buf_free(&body);
    es_buf_free(&out);
    if (close_after && !k->closing) {
        k->close_after = true;
        q_clear(&k->inq);
        q_clear(&k->headq);
        update_reading(k);
        check_finished(k);
    }
}

static void refuse_request(pconn *k, int err)
{
    dk_proxy *p = k->p;
    char msg[256];
    int status = 400;
    if (err == ES_HTTP_E_HEADER_TOO_LARGE || err == ES_HTTP_E_TOO_MANY_HEADERS) {
        snprintf(msg, sizeof msg, "request head too large (more than %zu bytes or %u fields)",
                 p->o.max_head, DK_PROXY_MAX_HEADERS);
    } else if (err == -EMSGSIZE) {
        status = 413;
        snprintf(msg, sizeof msg, "containers/create body too large (more than %zu bytes)",
                 p->o.max_create);
    } else {
        snprintf(msg, sizeof msg, "malformed HTTP request: %s", es_http_strerror(err));
    }
    p->st.bad_requests++;
    reply(k, status, msg, true);
}

/* ------------------------------------------------------ client requests */

static void arm_head_timer(pconn *k);

/* The request's answer ended (or was ours): the next head may come. */
static void exchange_done(pconn *k)
{
    k->waiting_resp = false;
    arm_head_timer(k);
    process_client(k);
}

static bool wants_upgrade(const es_http_parser *rq)
{
    const char *c = es_http_parser_header(rq, "Connection");
    return es_http_parser_header(rq, "Upgrade") || (c && es_http_token_in_list(c, "upgrade"));
}

static void on_req_head(pconn *k)
{
    dk_proxy *p = k->p;
    p->st.requests++;
    uv_timer_stop(&k->timer);
    k->in_head = false;
    const char *method = es_http_parser_method(k->rq);
    k->upgrade = wants_upgrade(k->rq);
    k->head_method = strcmp(method, "HEAD") == 0;
    if (k->up_failed) {
        char msg[200 + 108];
        snprintf(msg, sizeof msg,
                 "Cannot connect to the Docker daemon at unix://%s. Is the docker daemon running?",
                 p->upstream);
        p->st.upstream_failures++;
        reply(k, 502, msg, true);
        return;
    }
    if (p->o.on_create && dk_proxy_is_create(method, es_http_parser_target(k->rq))) {
        int64_t cl = es_http_parser_content_length(k->rq);
        if (cl > 0 && (uint64_t)cl > p->o.max_create) {
            refuse_request(k, -EMSGSIZE);
            return;
        }
        k->collect = true;
        es_buf_reset_secret(&k->body);
        q_clear(&k->headq); /* written anew with the new body's length */
        if (es_http_parser_expect_continue(k->rq))
            send_copy(k, false, "HTTP/1.1 100 Continue\r\n\r\n", 25, false);
    } else {
        /* popped one by one: a failed write closes, which clears headq */
        while (!k->closing && k->headq.head) {
            send_to(k, true, k->headq.head->c, k->headq.head->off, k->headq.head->len);
            if (!k->closing)
                q_pop(&k->headq);
        }
    }
    k->resp_pending = true;
    es_http_parser_reset(k->rs);
    es_http_parser_set_head_response(k->rs, k->head_method);
}

static void call_create(pconn *k)
{
    dk_proxy *p = k->p;
    const char *target = es_http_parser_target(k->rq);
    const char *q = strchr(target, '?');
    dk_proxy_create req = {.target = target,
                           .query = q ? q + 1 : "",
                           .body = k->body.data ? k->body.data : "",
                           .len = k->body.len,
                           .peer = k->peer};
    p->st.creates++;
    k->create_wait = true;
    p->o.on_create(p->o.ud, k, &req);
}

static void on_req_done(pconn *k)
{
    if (k->collect) {
        call_create(k); /* the parser keeps the head until the answer */
        return;
    }
    es_http_parser_reset(k->rq);
    k->in_head = true;
    if (k->resp_pending)
        k->waiting_resp = true;
    else
        arm_head_timer(k);
}

/* What the request parser said. A head that ends where the bytes end may
 * be the whole request (no body): a feed of nothing says so now rather
 * than at the next read, which may never come. */
static void req_event(pconn *k, int rc)
{
    if (rc == ES_HTTP_HEADERS) {
        on_req_head(k);
        if (k->closing || k->close_after)
            return;
        size_t used = 0;
        rc = es_http_parser_feed(k->rq, "", 0, &used);
    }
    if (rc == ES_HTTP_DONE)
        on_req_done(k);
    else if (rc < 0)
        refuse_request(k, rc);
}

/* Feeds the front of inq to the request parser; false: stop for now. */
static bool feed_front(pconn *k)
{
    slice *s = k->inq.head;
    chunk *c = s->c;
    size_t off = s->off, used = 0;
    int rc = es_http_parser_feed(k->rq, c->data + off, s->len, &used);
    if (used && k->in_head) {
        if (q_push(&k->headq, c, off, used) < 0) {
            close_conn(k);
            return false;
        }
    } else if (used && !k->collect) {
        send_to(k, true, c, off, used);
    }
    if (k->closing)
        return false;
    q_advance(&k->inq, used);
    req_event(k, rc);
    return !k->closing;
}

static bool can_parse(const pconn *k)
{
    return (k->up_connected || k->up_failed) && !k->waiting_resp && !k->create_wait &&
           !k->close_after;
}

/* Client EOF goes on as a shutdown once every byte before it went through
 * (not in the middle of a create, which is dropped: dockerd never saw it). */
static void client_eof_done(pconn *k)
{
    if (!k->cl_eof || k->inq.head || k->closing)
        return;
    if (k->collect || !k->up_connected) {
        if (!k->close_after)
            close_conn(k);
        return;
    }
    shut(k, true);
}

static void process_client(pconn *k)
{
    if (k->busy || k->closing)
        return;
    k->busy = true;
    while (!k->closing && k->inq.head) {
        if (k->raw) {
            send_to(k, true, k->inq.head->c, k->inq.head->off, k->inq.head->len);
            if (!k->closing)
                q_pop(&k->inq);
            continue;
        }
        if (!can_parse(k) || !feed_front(k))
            break;
    }
    k->busy = false;
    if (k->closing)
        return;
    client_eof_done(k);
    update_reading(k);
}

static void on_read_cl(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pconn *k = s->data;
    chunk *c = chunk_of(buf);
    if (nread > 0)
        k->cl_bulk = (size_t)nread >= DK_PROXY_READ_CHUNK;
    if (nread > 0 && !k->closing && q_push(&k->inq, c, 0, (size_t)nread) < 0)
        close_conn(k);
    chunk_unref(c); /* inq's reference, if any, keeps it */
    if (k->closing || nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            close_conn(k);
            return;
        }
        k->cl_eof = true;
        set_reading(k, s, &k->cl_reading, false, on_read_cl);
    }
    process_client(k);
    /* what parsing left (a head in part, a request waiting for the answer
     * before it) is kept in chunks of its size */
    if (!k->closing && (q_compact(k->p, &k->inq) < 0 || q_compact(k->p, &k->headq) < 0))
        close_conn(k);
}

/* ----------------------------------------------------- dockerd's answers */

static bool raw_stream_type(const char *ct)
{
    return ct && (strncasecmp(ct, "application/vnd.docker.raw-stream", 33) == 0 ||
                  strncasecmp(ct, "application/vnd.docker.multiplexed-stream", 41) == 0);
}

/* 101, or the 200 dockerd answers an upgrade request with when it hijacks. */
static bool switches(const pconn *k, int status)
{
    return status == 101 || (status == 200 && k->upgrade &&
                             raw_stream_type(es_http_parser_header(k->rs, "Content-Type")));
}

static void go_raw(pconn *k)
{
    k->raw = true;
    k->p->st.upgrades++;
    k->resp_pending = false;
    k->waiting_resp = false;
    uv_timer_stop(&k->timer); /* hijacked streams have no deadline */
    process_client(k);
}

/* One read from dockerd, in HTTP mode: forwarded as it is, parsed to find
 * where the answer ends and whether the connection switches to raw. */
static void process_up(pconn *k, chunk *c, size_t n)
{
    size_t off = 0;
    while (!k->closing) {
        if (!k->resp_pending) {
            if (off < n)
                close_conn(k); /* bytes nobody asked for: out of sync */
            return;
        }
        /* after a head, fed even with nothing left: a bodiless answer
         * ends there */
        size_t used = 0;
        int rc = es_http_parser_feed(k->rs, c->data + off, n - off, &used);
        send_to(k, false, c, off, used);
        off += used;
        if (rc < 0) {
            close_conn(k);
            return;
        }
        if (rc == ES_HTTP_NEED_MORE)
            return;
        if (rc == ES_HTTP_HEADERS && switches(k, es_http_parser_status(k->rs))) {
            send_to(k, false, c, off, n - off);
            go_raw(k);
            return;
        }
        if (rc == ES_HTTP_DONE && es_http_parser_status(k->rs) < 200) {
            es_http_parser_reset(k->rs); /* 100 Continue: the answer follows */
            es_http_parser_set_head_response(k->rs, k->head_method);
        } else if (rc == ES_HTTP_DONE) {
            k->resp_pending = false;
            if (k->waiting_resp)
                exchange_done(k);
        }
    }
}

static void on_read_up(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    pconn *k = s->data;
    chunk *c = chunk_of(buf);
    if (nread > 0)
        k->up_bulk = (size_t)nread >= DK_PROXY_READ_CHUNK;
    if (nread > 0 && !k->closing) {
        if (k->raw)
            send_to(k, false, c, 0, (size_t)nread);
        else
            process_up(k, c, (size_t)nread);
    }
    chunk_unref(c);
    if (k->closing || nread >= 0) {
        if (!k->closing)
            update_reading(k);
        return;
    }
    if (nread != UV_EOF) {
        close_conn(k);
        return;
    }
    /* dockerd ended its side (a close-delimited answer, a hijacked stream's
     * end, an idle connection closed): the client sees the same */
    k->up_eof = true;
    set_reading(k, s, &k->up_reading, false, on_read_up);
    if (!k->raw && k->resp_pending && es_http_parser_eof(k->rs) == ES_HTTP_DONE) {
        k->resp_pending = false;
        k->waiting_resp = false;
    }
    shut(k, false);
}

/* ------------------------------------------------- connect and accept */

/* A send buffer that takes a bulk read whole: one write per read instead of
 * a partial write and a wait for POLLOUT (the default, about 208 KiB, split
 * most bulk writes in two). The kernel caps it at net.core.wmem_max; it is
 * a wish, so a refusal changes nothing. */
static void grow_sndbuf(uv_pipe_t *pipe)
{
    uv_os_fd_t fd;
    int want = DK_PROXY_SOCK_SNDBUF;
    if (uv_fileno((uv_handle_t *)pipe, &fd) == 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
}

static void on_up_connect(uv_connect_t *r, int status)
{
    pconn *k = r->data;
    if (k->closing)
        return;
    if (status < 0) {
        k->up_failed = true; /* each head now gets the 502 */
    } else {
        k->up_connected = true;
        grow_sndbuf(&k->up);
    }
    process_client(k);
}

static void on_head_timeout(uv_timer_t *t)
{
    pconn *k = t->data;
    if (k->raw || !k->in_head || k->waiting_resp || k->create_wait)
        return;
    k->p->st.head_timeouts++;
    close_conn(k);
}

static void arm_head_timer(pconn *k)
{
    if (!k->closing && !k->raw && k->p->o.head_timeout_ms)
        uv_timer_start(&k->timer, on_head_timeout, k->p->o.head_timeout_ms, 0);
}

static void read_peer(pconn *k)
{
    uv_os_fd_t fd;
    struct ucred uc;
    socklen_t len = sizeof uc;
    if (uv_fileno((uv_handle_t *)&k->cl, &fd) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 && len == sizeof uc)
        k->peer = (dk_proxy_peer){.known = true, .uid = uc.uid, .gid = uc.gid, .pid = uc.pid};
}

static pconn *conn_new(dk_proxy *p)
{
    pconn *k = es_calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    if (es_http_parser_create(ES_HTTP_REQUEST, &p->rq_lim, &k->rq) < 0 ||
        es_http_parser_create(ES_HTTP_RESPONSE, &p->rs_lim, &k->rs) < 0) {
        es_http_parser_free(k->rq);
        es_free(k);
        return NULL;
    }
    k->p = p;
    k->in_head = true;
    es_buf_init(&k->body, p->o.max_create);
    uv_pipe_init(p->loop, &k->cl, 0);
    uv_pipe_init(p->loop, &k->up, 0);
    uv_timer_init(p->loop, &k->timer);
    k->cl.data = k->up.data = k->timer.data = k->creq.data = k;
    k->handles = 3;
    k->next = p->conns;
    if (p->conns)
        p->conns->prev = k;
    p->conns = k;
    p->nconns++;
    p->pending++;
    p->st.active++;
    return k;
}

static int on_create_body(void *ud, const char *d, size_t n);
static int discard_body(void *ud, const char *d, size_t n);

static void accept_one(dk_proxy *p)
{
    pconn *k = conn_new(p);
    if (!k) {
        /* out of memory: left in the backlog until a connection closes */
        p->accept_waiting = true;
        return;
    }
    p->st.accepted++;
    es_http_parser_set_body_cb(k->rq, on_create_body, k);
    es_http_parser_set_body_cb(k->rs, discard_body, k);
    if (uv_accept((uv_stream_t *)&p->listener, (uv_stream_t *)&k->cl) < 0) {
        close_conn(k);
        return;
    }
    read_peer(k);
    grow_sndbuf(&k->cl);
    arm_head_timer(k);
    uv_pipe_connect(&k->creq, &k->up, p->upstream, on_up_connect);
    update_reading(k);
}

static void on_connection(uv_stream_t *server, int status)
{
    dk_proxy *p = server->data;
    if (status < 0 || p->closing)
        return;
    if (p->nconns >= p->o.max_conns) {
        /* left in the backlog: libuv stops polling the listener until the
         * accept, which the next close makes */
        p->accept_waiting = true;
        p->st.deferred++;
        return;
    }
    accept_one(p);
}

/* Answers' bodies went to the client raw already. */
static int discard_body(void *ud, const char *d, size_t n)
{
    (void)ud;
    (void)d;
    (void)n;
    return 0;
}

/* A create's decoded body, whole, bounded; other bodies go through raw. */
static int on_create_body(void *ud, const char *d, size_t n)
{
    pconn *k = ud;
    if (!k->collect)
        return 0;
    int e = es_buf_append(&k->body, d, n);
    return e == -EMSGSIZE ? -EMSGSIZE : e;
}

/* --------------------------------------------------- the create's answer */

static bool framing_header(const char *name)
{
    return strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0 ||
           strcasecmp(name, "Expect") == 0;
}

/* The create's head as the client sent it, with the framing of body. */
static int write_create(pconn *k, es_buf *w, const char *body, size_t len)
{
    int e =
        es_http_write_request_line(w, es_http_parser_method(k->rq), es_http_parser_target(k->rq));
    const char *name, *value;
    for (size_t i = 0; !e && es_http_parser_header_at(k->rq, i, &name, &value); i++)
        if (!framing_header(name))
            e = es_http_write_header(w, name, value);
    char n[24];
    snprintf(n, sizeof n, "%zu", len);
    if (!e)
        e = es_http_write_header(w, "Content-Length", n);
    if (!e)
        e = es_buf_append(w, "\r\n", 2);
    if (!e)
        e = es_buf_append(w, body, len);
    return e;
}

/* The create is answered: the connection goes on with the next request. */
static void create_answered(pconn *k)
{
    k->create_wait = false;
    k->collect = false;
    es_buf_reset_secret(&k->body);
    es_http_parser_reset(k->rq);
    k->in_head = true;
    if (k->resp_pending)
        k->waiting_resp = true;
    else
        arm_head_timer(k);
    process_client(k);
}

int dk_proxy_create_forward(dk_proxy_call *k, const char *body, size_t len)
{
    if (!k || !k->create_wait || k->closing)
        return -EINVAL;
    if (!body) {
        body = k->body.data ? k->body.data : "";
        len = k->body.len;
    }
    es_buf w;
    es_buf_init(&w, k->p->o.max_head + len + 256);
    int e = write_create(k, &w, body, len);
    if (e == 0)
        send_copy(k, true, w.data, w.len, true);
    es_buf_free_secret(&w);
    if (e < 0)
        return e;
    create_answered(k);
    return 0;
}

int dk_proxy_create_refuse(dk_proxy_call *k, int status, const char *message)
{
    if (!k || !k->create_wait || k->closing || status < 100 || status > 599)
        return -EINVAL;
    k->p->st.creates_refused++;
    k->resp_pending = false;
    reply(k, status, message ? message : "", false);
    create_answered(k);
    return 0;
}

/* ---------------------------------------------------------- the listener */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The next character of the path, percent-decoded (the router matches the
 * decoded path); -1 at its end (NUL or the query's '?'). */
static int path_next(const char **s)
{
    const char *p = *s;
    if (!*p || *p == '?')
        return -1;
    if (p[0] == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
        *s = p + 3;
        return hexval(p[1]) * 16 + hexval(p[2]);
    }
    *s = p + 1;
    return (unsigned char)*p;
}

static bool path_rest_is(const char **s, const char *want)
{
    for (; *want; want++)
        if (path_next(s) != (unsigned char)*want)
            return false;
    return path_next(s) == -1;
}

bool dk_proxy_is_create(const char *method, const char *target)
{
    if (!method || !target || strcmp(method, "POST") != 0)
        return false;
    /* absolute-form: Go's server routes on the path alone */
    if (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0) {
        target = strchr(strstr(target, "//") + 2, '/');
        if (!target)
            return false;
    }
    /* moby's routes: /containers/create and /v{version:[0-9.]+}/containers/create,
     * the version unbounded in length (a bounded copy would let a long one by) */
    const char *s = target;
    if (path_next(&s) != '/')
        return false;
    int c = path_next(&s);
    if (c == 'c')
        return path_rest_is(&s, "ontainers/create");
    if (c != 'v')
        return false;
    size_t digits = 0;
    while ((c = path_next(&s)) == '.' || (c >= '0' && c <= '9'))
        digits++;
    return digits > 0 && c == '/' && path_rest_is(&s, "containers/create");
}

/* A socket file from an earlier run is removed only when nothing listens
 * on it: a second agent must not steal the first one's socket. */
static int clear_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (r == 0)
        return -EADDRINUSE;
    if (e != ECONNREFUSED)
        return -e;
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static void listener_closed(uv_handle_t *h)
{
    proxy_release(h->data);
}

static void defaults(dk_proxy_options *o)
{
    if (!o->max_conns)
        o->max_conns = DK_PROXY_MAX_CONNS;
    if (!o->max_head)
        o->max_head = DK_PROXY_MAX_HEAD;
    if (!o->max_create)
        o->max_create = DK_PROXY_MAX_CREATE;
    if (!o->max_queued)
        o->max_queued = DK_PROXY_MAX_QUEUED;
    if (!o->head_timeout_ms)
        o->head_timeout_ms = DK_PROXY_HEAD_TIMEOUT_MS;
}

static dk_proxy *proxy_new(uv_loop_t *loop, const dk_proxy_options *opt)
{
    dk_proxy *p = es_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->loop = loop;
    p->o = *opt;
    p->spares.max = MAX_SPARES;
    p->bulk_spares.max = MAX_BULK_SPARES;
    defaults(&p->o);
    p->path = es_strdup(opt->path);
    p->upstream = es_strdup(opt->upstream);
    if (!p->path || !p->upstream) {
        es_free(p->path);
        es_free(p->upstream);
        es_free(p);
        return NULL;
    }
    /* bodies are endless streams to the parsers (creates are bounded by
     * on_create_body); dockerd's own answer heads are trusted up to 1 MiB */
    p->rq_lim = (es_http_limits){p->o.max_head, DK_PROXY_MAX_HEADERS, SIZE_MAX, 1024};
    p->rs_lim = (es_http_limits){DK_PROXY_MAX_HEAD, DK_PROXY_MAX_HEADERS, SIZE_MAX, 1024};
    p->o.path = p->path;
    p->o.upstream = p->upstream;
    p->pending = 1;
    return p;
}

static int bind_socket(dk_proxy *p)
{
    int r = clear_stale(p->path);
    if (r < 0)
        return r;
    uv_pipe_init(p->loop, &p->listener, 0);
    p->listener.data = p;
    /* created 0660 from the start: no moment with a wider mode */
    mode_t old = umask(0117);
    r = uv_pipe_bind(&p->listener, p->path);
    umask(old);
    if (r < 0)
        return r;
    p->bound = true;
    if (p->o.set_group && chown(p->path, (uid_t)-1, p->o.group) < 0)
        return -errno;
    if (chmod(p->path, 0660) < 0)
        return -errno;
    return uv_listen((uv_stream_t *)&p->listener, LISTEN_BACKLOG, on_connection);
}

int dk_proxy_start(uv_loop_t *loop, const dk_proxy_options *opt, dk_proxy **out)
{
    *out = NULL;
    if (!opt || !opt->path || !opt->upstream)
        return -EINVAL;
    if (strlen(opt->path) >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
        strlen(opt->upstream) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    dk_proxy *p = proxy_new(loop, opt);
    if (!p)
        return -ENOMEM;
    int r = bind_socket(p);
    if (r < 0) {
        bool inited = p->listener.loop != NULL;
        if (p->bound)
            unlink(p->path);
        p->closing = true;
        if (inited)
            uv_close((uv_handle_t *)&p->listener, listener_closed);
        else
            proxy_release(p);
        return r;
    }
    *out = p;
    return 0;
}

void dk_proxy_close(dk_proxy *p, void (*done)(void *arg), void *arg)
{
    if (!p)
        return;
    p->closing = true;
    p->done = done;
    p->done_arg = arg;
    if (p->bound)
        unlink(p->path);
    for (pconn *k = p->conns; k; k = k->next)
        close_conn(k);
    uv_close((uv_handle_t *)&p->listener, listener_closed);
}

void dk_proxy_get_stats(const dk_proxy *p, dk_proxy_stats *out)
{
    *out = p->st;
}
