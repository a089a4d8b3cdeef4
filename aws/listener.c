/* listener.c - the signed HTTP listener (listener.h). */
#include "aws/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/http.h"
#include "common/json.h"
#include "common/secure.h"

const aw_listener_limits aw_listener_default_limits = {
    .max_header_bytes = 16u << 10,
    .max_body = 1u << 20,
    .max_connections = 256,
    .idle_timeout_ms = 60000,
    .request_timeout_ms = 30000,
    .first_byte_timeout_ms = 5000,
    .head_timeout_ms = 10000,
    .max_buffered_bodies = 32u << 20,
    .max_connections_per_peer = 64,
};

#define READ_CHUNK 65536
#define HEAD_MAX 4096 /* our own response heads */
#define MAX_REQ_HEADERS 128
#define JSON_ANSWER_ROOM 8192 /* bytes asked for before a JSON route answers */
/* Plain-HTTP answers up to this size wait for the end of the loop's turn
 * (see "the turn's answers"); larger ones are written at once, uncopied. */
#define TURN_ANSWER_MAX (64u << 10)
/* Answers held in one turn before they are written anyway: the first of a
 * turn waits for the work of the others (about 30 us each), at most this
 * many. */
#define TURN_ANSWERS_MAX 32
/* the room of a connection's out buffer kept from one answer to the next */
#define TURN_OUT_KEEP (16u << 10)

typedef struct conn conn;

/* a connection's socket, whichever kind */
#define STREAM(c) ((uv_stream_t *)&(c)->sock)

struct aw_listener {
    uv_loop_t *loop;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener;
    bool listener_open;
    bool is_unix;
    aw_listener_limits lim;
    es_http_limits hlim;
    aw_listener_stats st;
    conn *conns;
    size_t nconns;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
    aw_listener_clock_fn clock;
    void *clock_arg;
    int port;
    aw_listener_auth auth; /* fns NULL: nobody is authenticated */
    aw_json_route json_routes[AW_LISTENER_ROUTES_MAX];
    size_t n_json_routes;
    aw_query_route query; /* serve NULL: none */
    aw_rest_route rest;   /* serve NULL: none */
    const char *unserved_text;
    struct {
        const char *path;
        aw_get_route_fn fn;
        void *arg;
    } get_routes[AW_LISTENER_ROUTES_MAX];
    size_t n_get_routes;
    struct {
        const char *prefix;
        aw_get_prefix_fn fn;
        void *arg;
    } prefix_routes[AW_LISTENER_ROUTES_MAX];
    size_t n_prefix_routes;
    size_t buffered; /* request body bytes held, all connections */
    aw_tls *tls;     /* HTTPS (aw_listener_set_tls), or NULL */
    size_t replies;  /* deferred replies taken and not yet released */
    /* the turn's answers: the connections with an answer held (or bytes to
     * feed after it), oldest first; written after the poll's callbacks by
     * turn_end, while turn_hold keeps the poll from blocking */
    conn *turn_first, *turn_last;
    size_t turn_unwritten; /* answers held, not yet written */
    uv_check_t turn_end;
    uv_idle_t turn_hold;
    int turn_handles; /* open; closed with the listener */
};

int aw_listener_add_json_route(aw_listener *s, const aw_json_route *route)
{
    if (s->n_json_routes >= AW_LISTENER_ROUTES_MAX)
        return -ENOSPC;
    s->json_routes[s->n_json_routes++] = *route;
    return 0;
}

void aw_listener_set_query_route(aw_listener *s, const aw_query_route *route)
{
    s->query = *route;
}

void aw_listener_set_rest_route(aw_listener *s, const aw_rest_route *route)
{
    s->rest = *route;
}

void aw_rest_answer_header(aw_rest_answer *a, const char *name, const char *value)
{
    if (a->n_headers >= AW_REST_HEADERS_MAX)
        return;
    snprintf(a->headers[a->n_headers].name, sizeof a->headers[0].name, "%s", name);
    snprintf(a->headers[a->n_headers].value, sizeof a->headers[0].value, "%s", value);
    a->n_headers++;
}

void aw_listener_set_auth(aw_listener *s, const aw_listener_auth *auth)
{
    s->auth = *auth;
}

void aw_listener_set_unserved_text(aw_listener *s, const char *text)
{
    s->unserved_text = text;
}

int aw_listener_add_get_route(aw_listener *s, const char *path, aw_get_route_fn fn, void *arg)
{
    if (s->n_get_routes >= AW_LISTENER_ROUTES_MAX)
        return -ENOSPC;
    s->get_routes[s->n_get_routes].path = path;
    s->get_routes[s->n_get_routes].fn = fn;
    s->get_routes[s->n_get_routes].arg = arg;
    s->n_get_routes++;
    return 0;
}

int aw_listener_add_get_prefix_route(aw_listener *s, const char *prefix, aw_get_prefix_fn fn,
                                     void *arg)
{
    if (s->n_prefix_routes >= AW_LISTENER_ROUTES_MAX)
        return -ENOSPC;
    s->prefix_routes[s->n_prefix_routes].prefix = prefix;
    s->prefix_routes[s->n_prefix_routes].fn = fn;
    s->prefix_routes[s->n_prefix_routes].arg = arg;
    s->n_prefix_routes++;
    return 0;
}

struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } sock; /* the listener's kind */
    uv_timer_t timer;
    /* the connection's one deadline (loop time, ms) and when the timer is
     * set to fire (0: not set): see arm_timer */
    uint64_t deadline, timer_at;
    aw_listener *srv;
    conn *prev, *next;
    es_http_parser *parser;
    es_buf body;    /* request body (may hold a secret value) */
    es_buf pending; /* bytes read while an answer was being written */
    es_buf out;     /* the answer held until the turn's end (may hold a secret value) */
    conn *turn_prev, *turn_next;
    bool in_turn; /* on the listener's turn list */
    int open_handles;
    bool closing;
    bool writing;
    bool close_after_write;
    bool in_request;
    bool over_budget;  /* the body was refused by the budget, not the maximum */
    bool head_refused; /* the precheck refused the head: the body is discarded
                          unread and head_err answered */
    bool known;        /* a request of it passed SigV4: a client, not a stranger */
    /* the peer's address (sin_addr / sin6_addr bytes), for the per-peer cap;
     * peer_len 0 for a local peer (127.0.0.1, ::1), which it does not count */
    uint8_t peer[16];
    uint8_t peer_len;
    aw_listener_error head_err;
    /* TLS (NULL when off): the handshake's first byte arrived; its deadline
     * still runs for the first request's head; counted in the stats */
    aw_tls_conn *tls;
    bool tls_started, tls_deadline, tls_counted;
    const aw_json_route *route; /* the route serving the request (aw_listener_defer) */
    bool replied_in_call;       /* the route's reply was answered before its call returned */
    aw_listener_reply *reply;   /* a route's deferred answer is awaited */
    char rbuf[READ_CHUNK];      /* what the socket read; with TLS, reused for what it decrypts */
};

/* A deferred answer (listener.h): c is NULL once the connection is gone. */
struct aw_listener_reply {
    aw_listener *srv;
    conn *c;
    const char *message_key;
};

typedef struct wreq {
    uv_write_t req;
    conn *c;
    bool raw;    /* TLS records outside an answer (handshake, alerts): no exchange ends */
    es_buf data; /* may hold a secret value */
} wreq;

static void conn_close(conn *c);
static void conn_feed(conn *c, const char *data, size_t len);
static void on_written(uv_write_t *req, int status);
static void turn_remove(conn *c);

static void maybe_finish(aw_listener *s)
{
    if (!s->closing || s->listener_open || s->conns || s->replies || s->turn_handles)
        return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    aw_tls_free(s->tls);
    es_free(s);
    if (done)
        done(arg);
}

/* Drops the request body, and its bytes from the budget. */
static void body_release(conn *c)
{
    c->srv->buffered -= c->body.len;
    es_buf_reset_secret(&c->body);
}

static void conn_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    aw_listener *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->reply)
        c->reply->c = NULL; /* orphaned: its answer will be discarded */
    if (c->in_turn) {
        if (c->out.len)
            s->turn_unwritten--;
        turn_remove(c);
    }
    es_buf_free_secret(&c->out);
    es_http_parser_free(c->parser);
    aw_tls_conn_free(c->tls);
    s->buffered -= c->body.len;
    es_buf_free_secret(&c->body);
    es_buf_free_secret(&c->pending);
    es_wipe(c->rbuf, sizeof c->rbuf);
    es_free(c);
    maybe_finish(s);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->sock, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_timer(uv_timer_t *t);
static void resume_reading(conn *c);

/* The connection's deadline is now ms from the loop's time. A request moves
 * it three times (the head's, the whole request's, the idle one), mostly
 * later; restarting the libuv timer each time was a heap removal and insert
 * (uv_timer_start and its uv_timer_stop: 700 instructions a request, issue
 * 22). The timer is restarted only for a deadline earlier than the one it
 * is set for; one set earlier fires, and on_timer sets it again for the
 * rest when the deadline moved on. */
static void arm_timer(conn *c, uint64_t ms)
{
    uint64_t now = uv_now(c->srv->loop);
    uint64_t at = ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
    c->deadline = at;
    if (c->timer_at && c->timer_at <= at)
        return;
    uv_timer_start(&c->timer, on_timer, ms, 0);
    c->timer_at = at;
}

/* ---- writing answers ---- */

/* The answer is out: ready for the next request on this connection. */
static void exchange_done(conn *c)
{
    c->writing = false;
    c->in_request = false;
    es_http_parser_reset(c->parser);
    body_release(c);
    arm_timer(c, c->srv->lim.idle_timeout_ms);
}

/* The bytes that arrived while an answer was awaited or written: the next
 * requests, now that the exchange is over. */
static void feed_pending(conn *c)
{
    if (c->closing || c->writing || c->reply || !c->pending.len)
        return;
    es_buf more = c->pending;
    es_buf_init(&c->pending, c->pending.max);
    conn_feed(c, more.data, more.len);
    es_buf_free_secret(&more);
}

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req; /* req is the first member */
    conn *c = w->c;
    bool raw = w->raw;
    es_buf_free_secret(&w->data);
    es_free(w);
    if (c->closing)
        return;
    if (raw) {
        if (status < 0)
            conn_close(c);
        return;
    }
    if (status < 0 || c->close_after_write) {
        conn_close(c);
        return;
    }
    exchange_done(c);
    feed_pending(c);
    if (!c->closing && !c->writing)
        resume_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    buf->base = c->rbuf;
    buf->len = sizeof c->rbuf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void resume_reading(conn *c)
{
    uv_read_start(STREAM(c), on_alloc, on_read);
}

/* Writes an answer's buffers (total bytes) now: when the socket takes them
 * whole the exchange ends here; otherwise what is left is copied into a write
 * request and reading pauses until it is out. Copies what it keeps. */
static void write_now(conn *c, const uv_buf_t *bufs, unsigned nbufs, size_t total)
{
    int n = uv_try_write(STREAM(c), bufs, nbufs);
    if (n >= 0 && (size_t)n == total) {
        if (c->close_after_write)
            conn_close(c);
        else
            exchange_done(c);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    wreq *w = es_calloc(1, sizeof *w);
    if (!w) {
        conn_close(c);
        return;
    }
    w->c = c;
    es_buf_init(&w->data, total - done);
    int r = 0;
    for (unsigned i = 0; i < nbufs && r == 0; i++) {
        if (done >= bufs[i].len) {
            done -= bufs[i].len;
            continue;
        }
        r = es_buf_append(&w->data, bufs[i].base + done, bufs[i].len - done);
        done = 0;
    }
    if (r < 0) {
        es_buf_free_secret(&w->data);
        es_free(w);
        conn_close(c);
        return;
    }
    c->writing = true;
    uv_read_stop(STREAM(c));
    /* a client that does not read its answer gets the request timeout */
    arm_timer(c, c->srv->lim.request_timeout_ms);
    uv_buf_t b = uv_buf_init(w->data.data, (unsigned)w->data.len);
    if (uv_write(&w->req, STREAM(c), &b, 1, on_written) < 0) {
        es_buf_free_secret(&w->data);
        es_free(w);
        conn_close(c);
    }
}

/* ---- the turn's answers ----
 * A plain-HTTP answer is not written when it is made but held in its
 * connection's `out` until the loop has run every callback of its poll (a
 * check handle, as Redis writes its replies before it sleeps): the turn's
 * answers then go out back to back. Each write to a socket wakes its reader,
 * and waking a sleeping thread on another CPU costs the writer more kernel
 * time than the write itself: written as they were made, 30 us of work
 * apart, every answer found its client asleep again; back to back, the
 * client is still awake for the next ones (issue 22, docs/BENCHMARKS.md). One
 * exchange at a time on a connection: while its answer is held the
 * connection counts as writing; a pipelined request behind it has the held
 * answer written first (conn_feed), what arrives otherwise waits in
 * `pending`, fed at the turn's end. At most TURN_ANSWERS_MAX answers wait in
 * one turn; an answer over TURN_ANSWER_MAX and TLS records are written at
 * once. While any answer is held the idle handle keeps the poll from
 * blocking, so that an answer made outside the poll's callbacks (a timer's)
 * waits for no other event. */

static void turn_add(conn *c)
{
    aw_listener *s = c->srv;
    if (c->in_turn)
        return;
    c->in_turn = true;
    c->turn_next = NULL;
    c->turn_prev = s->turn_last;
    if (s->turn_last)
        s->turn_last->turn_next = c;
    else
        s->turn_first = c;
    s->turn_last = c;
}

static void turn_remove(conn *c)
{
    aw_listener *s = c->srv;
    if (c->turn_prev)
        c->turn_prev->turn_next = c->turn_next;
    else
        s->turn_first = c->turn_next;
    if (c->turn_next)
        c->turn_next->turn_prev = c->turn_prev;
    else
        s->turn_last = c->turn_prev;
    c->turn_prev = c->turn_next = NULL;
    c->in_turn = false;
}

/* Writes c's held answer (write_now ends the exchange or queues the rest);
 * the bytes are wiped, the buffer kept for the next answer (up to
 * TURN_OUT_KEEP). */
static void write_held(conn *c)
{
    aw_listener *s = c->srv;
    if (!c->out.len)
        return;
    s->turn_unwritten--;
    if (c->closing) {
        es_buf_reset_secret(&c->out);
        return;
    }
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->writing = false; /* write_now decides: done, or a write request under way */
    write_now(c, &b, 1, c->out.len);
    if (c->out.cap > TURN_OUT_KEEP)
        es_buf_free_secret(&c->out); /* a rare large answer's room is not kept */
    else
        es_buf_reset_secret(&c->out);
}

/* Every held answer, written now (TURN_ANSWERS_MAX reached, or the
 * listener closing); their connections stay on the list to have their
 * pending bytes fed at the turn's end (never from here: this runs inside
 * another connection's answer). */
static void write_all_held(aw_listener *s)
{
    for (conn *c = s->turn_first; c && s->turn_unwritten; c = c->turn_next)
        write_held(c);
}

static void on_turn_end(uv_check_t *h)
{
    aw_listener *s = h->data;
    /* oldest first; feeding a connection may hold new answers at the end */
    while (s->turn_first) {
        conn *c = s->turn_first;
        turn_remove(c);
        write_held(c);
        feed_pending(c);
    }
    uv_check_stop(&s->turn_end);
    uv_idle_stop(&s->turn_hold);
}

static void on_turn_hold(uv_idle_t *h)
{
    (void)h; /* only there to keep the poll from blocking */
}

/* Holds c's answer (its head already in c->out, the body appended here)
 * for the turn's end. */
static void hold_answer(conn *c, const char *body, size_t len)
{
    aw_listener *s = c->srv;
    if (len && es_buf_append(&c->out, body, len) < 0) {
        es_buf_reset_secret(&c->out);
        conn_close(c);
        return;
    }
    c->writing = true;
    s->turn_unwritten++;
    s->st.answers_held++;
    if (!s->turn_first) {
        uv_check_start(&s->turn_end, on_turn_end);
        uv_idle_start(&s->turn_hold, on_turn_hold);
    }
    turn_add(c);
    if (s->turn_unwritten >= TURN_ANSWERS_MAX) {
        s->st.answers_written_early += s->turn_unwritten;
        write_all_held(s);
    }
}

static void turn_handle_closed(uv_handle_t *h)
{
    aw_listener *s = h->data;
    s->turn_handles--;
    maybe_finish(s);
}

static void turn_handles_init(aw_listener *s)
{
    uv_check_init(s->loop, &s->turn_end);
    uv_idle_init(s->loop, &s->turn_hold);
    s->turn_end.data = s->turn_hold.data = s;
    /* they never keep the loop alive alone: a connection does */
    uv_unref((uv_handle_t *)&s->turn_end);
    uv_unref((uv_handle_t *)&s->turn_hold);
    s->turn_handles = 2;
}

static void turn_handles_close(aw_listener *s)
{
    if (uv_is_closing((uv_handle_t *)&s->turn_end))
        return;
    uv_close((uv_handle_t *)&s->turn_end, turn_handle_closed);
    uv_close((uv_handle_t *)&s->turn_hold, turn_handle_closed);
}

/* TLS: the answer encrypted (and close_notify after it when the connection
 * closes), then written as above. The plaintext stays the caller's. */
static void send_tls_answer(conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    es_buf rec; /* records: ciphertext; what the engine already held goes first */
    size_t room = aw_tls_conn_pending(c->tls) + total + (total / 16384 + 4) * 256 + 1024;
    es_buf_init(&rec, room);
    int r = es_buf_expect(&rec, room);
    for (unsigned i = 0; i < nbufs && r == 0; i++)
        if (bufs[i].len)
            r = aw_tls_conn_write(c->tls, bufs[i].base, bufs[i].len);
    if (r == 0 && c->close_after_write)
        aw_tls_conn_shutdown(c->tls);
    if (r == 0)
        r = aw_tls_conn_pull(c->tls, &rec);
    if (r < 0) {
        es_buf_free(&rec);
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(rec.data, (unsigned)rec.len);
    /* at once, never held for the turn's end: the engine's other records
     * (tls_flush) are written as they come and must not overtake it */
    write_now(c, &b, 1, rec.len);
    es_buf_free(&rec);
}

/* TLS: writes what the engine has to send outside an answer (handshake
 * flights, alerts, 100 Continue): at once when the socket takes it, else
 * queued behind what is queued already (libuv keeps the order). */
static void tls_flush(conn *c)
{
    size_t pending = aw_tls_conn_pending(c->tls);
    if (c->closing || !pending)
        return;
    es_buf rec;
    es_buf_init(&rec, pending);
    if (aw_tls_conn_pull(c->tls, &rec) < 0) {
        es_buf_free(&rec);
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(rec.data, (unsigned)rec.len);
    int n = uv_try_write(STREAM(c), &b, 1);
    size_t done = n > 0 ? (size_t)n : 0;
    wreq *w = NULL;
    if ((n >= 0 || n == UV_EAGAIN) && done < rec.len && (w = es_calloc(1, sizeof *w))) {
        w->c = c;
        w->raw = true;
        es_buf_init(&w->data, rec.len - done);
        if (es_buf_append(&w->data, rec.data + done, rec.len - done) < 0 ||
            uv_write(&w->req, STREAM(c), &(uv_buf_t){.base = w->data.data, .len = w->data.len}, 1,
                     on_written) < 0) {
            es_buf_free(&w->data);
            es_free(w);
            w = NULL;
        }
    }
    bool failed = (n < 0 && n != UV_EAGAIN) || (done < rec.len && !w);
    es_buf_free(&rec);
    if (failed)
        conn_close(c);
}

/* Sends status + headers + body; takes nothing (body copied when needed).
 * close: answer with Connection: close and close once written.
 * Head and body are tried at once with one writev() (the body is not copied);
 * when the socket takes it all, which is the usual case for answers below the
 * socket buffer, the exchange ends here: reading is never stopped and restarted
 * (each costs epoll_ctl calls) and no write request is allocated. Otherwise
 * what is left is copied into a write request queued with uv_write, and
 * reading pauses until it is out. */
static void send_answer_rest(conn *c, int status, const char *content_type,
                             const aw_rest_answer *extra, const char *body, size_t len,
                             size_t announced, bool close);

static void send_answer(conn *c, int status, const char *content_type, const char *body, size_t len,
                        bool close)
{
    send_answer_rest(c, status, content_type, NULL, body, len, len, close);
}

/* send_answer with a REST route's extra headers (may be NULL) and the length
 * announced (a HEAD answer's: its body's, which is not sent). */
static void send_answer_rest(conn *c, int status, const char *content_type,
                             const aw_rest_answer *extra, const char *body, size_t len,
                             size_t announced, bool close)
{
    /* the head is written into the connection's out buffer (kept from one
     * answer to the next: no allocation a request), the body after it when
     * the answer is held for the turn's end */
    es_buf *head = &c->out;
    int r = 0;
    if (head->len) { /* one exchange at a time: nothing is held here yet */
        conn_close(c);
        return;
    }
    (void)es_buf_reserve(head, 511, &r); /* a failure shows below */
    char rid[ES_UUID_LEN + 1];
    if (es_uuid(rid) < 0)
        snprintf(rid, sizeof rid, "00000000-0000-4000-8000-000000000000");
    c->close_after_write = close || !es_http_parser_keep_alive(c->parser);
    r = es_http_write_status_line(head, status, NULL);
    if (r == 0)
        r = es_http_write_header(head, "x-amzn-RequestId", rid);
    if (r == 0 && c->close_after_write)
        r = es_http_write_header(head, "Connection", "close");
    if (r == 0 && content_type)
        r = es_http_write_header(head, "Content-Type", content_type);
    for (size_t i = 0; r == 0 && extra && i < extra->n_headers; i++)
        r = es_http_write_header(head, extra->headers[i].name, extra->headers[i].value);
    if (r == 0) {
        /* "Content-Length: N\r\n\r\n" without printf */
        char num[24];
        size_t k = sizeof num;
        size_t v = announced;
        do {
            num[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        r = es_buf_append(head, "Content-Length: ", 16);
        if (r == 0)
            r = es_buf_append(head, num + k, sizeof num - k);
        if (r == 0)
            r = es_buf_append(head, "\r\n\r\n", 4);
    }
    if (r < 0) {
        es_buf_reset(head);
        conn_close(c);
        return;
    }
    if (status >= 500)
        c->srv->st.errors_5xx++;
    else if (status >= 400)
        c->srv->st.errors_4xx++;
    if (head->len > HEAD_MAX) { /* the routes' extra headers are bounded: never */
        es_buf_reset(head);
        conn_close(c);
        return;
    }
    if (!c->tls && len <= TURN_ANSWER_MAX && !c->srv->closing) {
        hold_answer(c, body, len);
        return;
    }
    /* written now: the head alone is in out, no secret */
    uv_buf_t bufs[2] = {uv_buf_init(head->data, (unsigned)head->len),
                        uv_buf_init((char *)body, (unsigned)len)};
    if (c->tls)
        send_tls_answer(c, bufs, len ? 2 : 1);
    else
        write_now(c, bufs, len ? 2 : 1, head->len + len);
    es_buf_reset(head);
}

/* key: the message's key ("Message" for Secrets Manager); NULL: "message" */
static void send_json_error(conn *c, const aw_listener_error *e, const char *key, bool close)
{
    es_buf b;
    es_buf_init(&b, 2 * AW_LISTENER_MESSAGE_MAX + 256);
    es_jw w;
    es_jw_init(&w, &b);
    es_jw_obj(&w);
    es_jw_kstr(&w, "__type", e->code);
    es_jw_kstr(&w, key ? key : "message", e->message);
    es_jw_obj_end(&w);
    if (es_jw_finish(&w) < 0) {
        es_buf_reset(&b);
        es_buf_append_str(&b, "{\"__type\":\"InternalFailure\"}");
    }
    send_answer(c, e->status, "application/x-amz-json-1.1", b.data, b.len, close);
    es_buf_free(&b);
}

static void send_simple_error(conn *c, int status, const char *code, const char *msg, bool close)
{
    aw_listener_error e = {.status = status};
    snprintf(e.code, sizeof e.code, "%s", code);
    snprintf(e.message, sizeof e.message, "%s", msg);
    send_json_error(c, &e, NULL, close);
}

/* ---- requests ---- */

static bool form_action(const char *body, size_t len, char *action, size_t n)
{
    for (size_t i = 0; i + 7 <= len; i++) {
        if ((i == 0 || body[i - 1] == '&') && strncmp(body + i, "Action=", 7) == 0) {
            size_t j = i + 7, k = 0;
            while (j < len && body[j] != '&' && k + 1 < n) {
                char ch = body[j++];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9')))
                    return false;
                action[k++] = ch;
            }
            action[k] = '\0';
            return k > 0;
        }
    }
    return false;
}

/* The listener's clock: the test hook when set, else the wall clock. */
static time_t listener_now(const aw_listener *s)
{
    return s->clock ? s->clock(s->clock_arg) : time(NULL);
}

static bool is_form(const char *ctype)
{
    return ctype && strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0;
}

/* Whether target (with its query) is a GET route's path. */
static bool is_get_route(const aw_listener *s, const char *target)
{
    size_t pl = strcspn(target, "?");
    for (size_t i = 0; i < s->n_get_routes; i++)
        if (strlen(s->get_routes[i].path) == pl && strncmp(target, s->get_routes[i].path, pl) == 0)
            return true;
    for (size_t i = 0; i < s->n_prefix_routes; i++) /* served before the REST route too */
        if (strncmp(target, s->prefix_routes[i].prefix, strlen(s->prefix_routes[i].prefix)) == 0)
            return true;
    return false;
}

/* GET <path> of a route: true when one answered. */
static bool serve_get(conn *c, const char *path)
{
    aw_listener *s = c->srv;
    for (size_t i = 0; i < s->n_get_routes; i++) {
        if (strcmp(path, s->get_routes[i].path) != 0)
            continue;
        es_buf out;
        es_buf_init(&out, AW_LISTENER_RESPONSE_MAX);
        const char *ct = "text/plain";
        if (s->get_routes[i].fn(s->get_routes[i].arg, path, &out, &ct) < 0)
            send_simple_error(c, 500, "InternalFailure", "The route failed.", false);
        else
            send_answer(c, 200, ct, out.data ? out.data : "", out.len, false);
        es_buf_free(&out);
        return true;
    }
    return false;
}

#define MAX_REQ_HEADERS 128

/* GET <prefix>... of a prefix route, with the request's headers: true when
 * one answered. */
static bool serve_get_prefix(conn *c, const char *path, const char *query)
{
    aw_listener *s = c->srv;
    for (size_t i = 0; i < s->n_prefix_routes; i++) {
        const char *pre = s->prefix_routes[i].prefix;
        if (strncmp(path, pre, strlen(pre)) != 0)
            continue;
        es_http_parser *p = c->parser;
        aw_header hs[MAX_REQ_HEADERS];
        size_t nh = 0;
        const char *n, *v;
        for (size_t k = 0; nh < MAX_REQ_HEADERS && es_http_parser_header_at(p, k, &n, &v); k++)
            hs[nh++] = (aw_header){n, v};
        aw_listener_request rq = {.method = "GET",
                                  .path = path,
                                  .query = query,
                                  .headers = hs,
                                  .n_headers = nh,
                                  .body = "",
                                  .body_len = 0};
        es_buf out;
        es_buf_init(&out, AW_LISTENER_RESPONSE_MAX);
        const char *ct = "application/json";
        int status = s->prefix_routes[i].fn(s->prefix_routes[i].arg, &rq, &out, &ct);
        if (status < 100 || status > 599)
            send_simple_error(c, 500, "InternalFailure", "The route failed.", false);
        else
            send_answer(c, status, ct, out.data ? out.data : "", out.len, false);
        /* a credentials answer holds a secret key */
        es_buf_free_secret(&out);
        return true;
    }
    return false;
}

#define UNSERVED_DEFAULT "Only JSON 1.1 operations (X-Amz-Target) are served here."
#define UNSERVED_XML_MAX (AW_LISTENER_MESSAGE_MAX + 256)

/* A request naming no target, and no query route: refused by name, in XML
 * when it was form-encoded (what a query client reads). */
static void serve_unserved(conn *c, const char *ctype)
{
    const char *text = c->srv->unserved_text ? c->srv->unserved_text : UNSERVED_DEFAULT;
    if (!is_form(ctype)) {
        send_simple_error(c, 400, "UnknownOperationException", text, false);
        return;
    }
    char x[UNSERVED_XML_MAX];
    int n = snprintf(x, sizeof x,
                     "<ErrorResponse><Error><Type>Sender</Type><Code>UnknownOperationException"
                     "</Code><Message>%s</Message></Error><RequestId>0</RequestId></ErrorResponse>",
                     text);
    send_answer(c, 400, "text/xml", x, n > 0 && (size_t)n < sizeof x ? (size_t)n : 0, false);
}

/* The query route's answer (status and XML), or 503 when it had none. */
static void send_query_answer(conn *c, int status, es_buf *x)
{
    if (status < 0)
        send_simple_error(c, 503, "ServiceUnavailable", "Out of memory.", true);
    else
        send_answer(c, status, "text/xml", x->data ? x->data : "", x->len, false);
    es_buf_free_secret(x);
}

/* POST without X-Amz-Target: the query protocol (IAM, STS). */
static void serve_query(conn *c, const aw_listener_request *rq, const char *ctype)
{
    aw_listener *s = c->srv;
    es_buf x;
    es_buf_init(&x, AW_LISTENER_RESPONSE_MAX);
    if (c->head_refused) {
        s->st.auth_failures++;
        send_query_answer(c, s->query.error(s->query.arg, rq, &c->head_err, &x), &x);
        return;
    }
    char action[128];
    if (!is_form(ctype) || !form_action(rq->body, rq->body_len, action, sizeof action)) {
        es_buf_free(&x);
        send_simple_error(c, 400, "UnknownOperationException",
                          "Missing X-Amz-Target (JSON 1.1) or Action (query) in the request.",
                          false);
        return;
    }
    int st = s->query.serve(s->query.arg, rq, listener_now(s), &x);
    if (st == 200)
        c->known = true;
    send_query_answer(c, st, &x);
}

/* The JSON route serving target (the last added of those whose prefix it
 * starts with), or NULL. */
static const aw_json_route *find_route(const aw_listener *s, const char *target)
{
    const aw_json_route *found = NULL;
    for (size_t i = 0; i < s->n_json_routes; i++) {
        size_t pn = strlen(s->json_routes[i].target_prefix);
        if (strncmp(target, s->json_routes[i].target_prefix, pn) == 0 && target[pn])
            found = &s->json_routes[i];
    }
    if (found && found->knows && !found->knows(target))
        return NULL;
    return found;
}

/* Verifies the caller of a JSON call; false when refused (answered). */
static bool authenticate(conn *c, const aw_listener_request *rq, const aw_json_route *rt,
                         char principal[AW_LISTENER_PRINCIPAL_MAX], char region[AW_REGION_MAX + 1])
{
    aw_listener *s = c->srv;
    aw_listener_error e = {.status = 400};
    if (c->head_refused) {
        e = c->head_err;
    } else if (!s->auth.verify) {
        snprintf(e.code, sizeof e.code, "UnrecognizedClientException");
        snprintf(e.message, sizeof e.message, "No caller can be authenticated here.");
    } else if (s->auth.verify(s->auth.arg, rq, rt->signing_name, listener_now(s), principal, region,
                              &e) == 0) {
        c->known = true;
        return true;
    }
    s->st.auth_failures++;
    send_json_error(c, &e, rt->message_key, false);
    return false;
}

/* A route took the reply: the request's body is the route's business now
 * (it copied what it needs), reading goes on (what arrives is kept in
 * pending; a peer that leaves closes the connection) and the request
 * deadline, counted afresh, bounds the wait. */
static void await_reply(conn *c)
{
    c->srv->st.deferred++;
    body_release(c);
    arm_timer(c, c->srv->lim.request_timeout_ms);
}

/* POST with X-Amz-Target: a JSON 1.1 route. */
static void serve_json(conn *c, const aw_listener_request *rq, const char *target)
{
    const aw_json_route *rt = find_route(c->srv, target);
    if (!rt) {
        send_simple_error(c, 400, "UnknownOperationException",
                          "The operation named by X-Amz-Target is not served here.", false);
        return;
    }
    char principal[AW_LISTENER_PRINCIPAL_MAX] = "", region[AW_REGION_MAX + 1] = "";
    if (!authenticate(c, rq, rt, principal, region))
        return;
    aw_listener_call call = {.target = target,
                             .operation = target + strlen(rt->target_prefix),
                             .principal = principal,
                             .region = region,
                             .body = rq->body,
                             .len = rq->body_len,
                             .priv = c};
    aw_listener_error e = {0};
    es_buf out;
    es_buf_init(&out, AW_LISTENER_RESPONSE_MAX);
    /* room for a usual answer at once (GetParameters of 10: 2.3 KB, a
     * DescribeTasks of a task with 10 secrets: 5 KB): grown from 64 bytes
     * it was copied and wiped at every doubling, each request (issue 22);
     * without the room the answer grows as before */
    (void)es_buf_expect(&out, JSON_ANSWER_ROOM);
    c->route = rt;
    c->replied_in_call = false;
    int r = rt->fn(rt->arg, &call, &out, &e);
    c->route = NULL;
    /* a route that took the reply may answer it before it returns (a
     * refusal found before any wait): that was the answer, and a second one
     * would be read as the answer to the connection's next request; one
     * that dropped its reply closed the connection */
    bool answered = c->closing || (r == AW_LISTENER_LATER && !c->reply && c->replied_in_call);
    if (answered) {
        /* nothing more to send */
    } else if (r == AW_LISTENER_LATER && c->reply) {
        await_reply(c);
    } else if (r == AW_LISTENER_LATER) {
        send_simple_error(c, 500, "InternalFailure", "The route deferred without a reply.", false);
    } else if (r < 0) {
        send_json_error(c, &e, rt->message_key, false);
    } else {
        send_answer(c, 200, "application/x-amz-json-1.1", out.data ? out.data : "{}",
                    out.data ? out.len : 2, false);
    }
    es_buf_free_secret(&out);
}

#define PATH_MAX_LEN 2048

/* A request for the REST route: any method but POST, or a POST of a path
 * other than "/" (POST / is JSON 1.1 or the query protocol). */
static bool is_rest(const char *method, const char *path)
{
    return strcmp(method, "POST") != 0 || strcmp(path, "/") != 0;
}

static size_t request_headers(es_http_parser *p, aw_header *hs)
{
    size_t nh = 0;
    const char *n, *v;
    for (size_t i = 0; nh < MAX_REQ_HEADERS && es_http_parser_header_at(p, i, &n, &v); i++)
        hs[nh++] = (aw_header){n, v};
    return nh;
}

/* The REST route's request: handed whole, answered as the route says. */
static void serve_rest(conn *c, const char *method, const char *path, const char *q)
{
    aw_listener *s = c->srv;
    aw_header hs[MAX_REQ_HEADERS];
    size_t nh = request_headers(c->parser, hs);
    aw_listener_request rq = {.method = method,
                              .path = path,
                              .query = q ? q + 1 : NULL,
                              .headers = hs,
                              .n_headers = nh,
                              .body = c->body.data ? c->body.data : "",
                              .body_len = c->body.len};
    aw_rest_answer *a = es_calloc(1, sizeof *a);
    if (!a) {
        send_simple_error(c, 503, "ServiceUnavailable", "Out of memory.", true);
        return;
    }
    es_buf_init(&a->body, AW_LISTENER_RESPONSE_MAX);
    if (c->head_refused)
        s->st.auth_failures++;
    s->rest.serve(s->rest.arg, &rq, c->head_refused ? &c->head_err : NULL, listener_now(s), a);
    if (a->status == 0)
        a->status = 500;
    if (a->status < 400)
        c->known = true;
    bool head = strcmp(method, "HEAD") == 0;
    const char *body = a->body.data ? a->body.data : "";
    send_answer_rest(c, a->status, a->content_type, a, body, head ? 0 : a->body.len, a->body.len,
                     false);
    es_buf_free_secret(&a->body);
    es_free(a);
}

static void handle_request(conn *c)
{
    aw_listener *s = c->srv;
    es_http_parser *p = c->parser;
    s->st.requests++;
    const char *method = es_http_parser_method(p);
    const char *target = es_http_parser_target(p);
    char path[PATH_MAX_LEN];
    const char *q = strchr(target, '?');
    size_t pl = q ? (size_t)(q - target) : strlen(target);
    if (pl >= sizeof path) {
        send_simple_error(c, 414, "RequestURITooLong", "The request target is too long.", true);
        return;
    }
    memcpy(path, target, pl);
    path[pl] = '\0';
    if (strcmp(method, "GET") == 0 &&
        (serve_get(c, path) || serve_get_prefix(c, path, q ? q + 1 : NULL)))
        return;
    if (s->rest.serve && is_rest(method, path)) {
        serve_rest(c, method, path, q);
        return;
    }
    if (strcmp(method, "POST") != 0) {
        send_simple_error(c, 405, "UnknownOperationException",
                          "The embedded endpoints answer POST / only.", false);
        return;
    }
    const char *amz_target = es_http_parser_header(p, "x-amz-target");
    const char *ctype = es_http_parser_header(p, "content-type");
    if (!amz_target && !s->query.serve) {
        serve_unserved(c, ctype);
        return;
    }
    aw_header hs[MAX_REQ_HEADERS];
    size_t nh = 0;
    const char *n, *v;
    for (size_t i = 0; nh < MAX_REQ_HEADERS && es_http_parser_header_at(p, i, &n, &v); i++)
        hs[nh++] = (aw_header){n, v};
    aw_listener_request rq = {.method = method,
                              .path = path,
                              .query = q ? q + 1 : NULL,
                              .headers = hs,
                              .n_headers = nh,
                              .body = c->body.data ? c->body.data : "",
                              .body_len = c->body.len};
    if (amz_target)
        serve_json(c, &rq, amz_target);
    else
        serve_query(c, &rq, ctype);
}

/* A POST from a caller we cannot know: its body is discarded as it arrives
 * (never buffered) and the refusal answered once the request is over. */
static void check_head(conn *c)
{
    aw_listener *s = c->srv;
    es_http_parser *p = c->parser;
    const char *method = es_http_parser_method(p);
    if (!method || !s->auth.precheck)
        return;
    const char *target = es_http_parser_target(p);
    bool root = target && (strcmp(target, "/") == 0 || strncmp(target, "/?", 2) == 0);
    bool rest = s->rest.serve && (strcmp(method, "POST") != 0 || !root);
    if (!rest && strcmp(method, "POST") != 0)
        return; /* GET routes; anything else is refused after */
    if (!rest && !es_http_parser_header(p, "x-amz-target") && !s->query.serve)
        return; /* no query protocol served: refused by name after */
    if (rest && strcmp(method, "GET") == 0 && is_get_route(s, target))
        return;
    memset(&c->head_err, 0, sizeof c->head_err);
    if (s->auth.precheck(s->auth.arg, es_http_parser_header(p, "authorization"),
                         es_http_parser_header(p, "x-amz-date"),
                         es_http_parser_header(p, "x-amz-security-token"), listener_now(s),
                         &c->head_err) == 0)
        return;
    s->st.refused_at_head++;
    c->head_refused = true;
}

static void answer_parse_error(conn *c, int err)
{
    aw_listener *s = c->srv;
    if (err == ES_HTTP_E_HEADER_TOO_LARGE || err == ES_HTTP_E_TOO_MANY_HEADERS) {
        s->st.header_too_large++;
        send_simple_error(c, 431, "RequestHeaderFieldsTooLarge",
                          "The request head is larger than the server accepts.", true);
    } else if (err == ES_HTTP_E_BODY_TOO_LARGE && c->over_budget) {
        s->st.bodies_over_budget++;
        send_simple_error(c, 503, "SlowDown",
                          "Too many request bodies are being received at once; retry.", true);
    } else if (err == ES_HTTP_E_BODY_TOO_LARGE) {
        s->st.body_too_large++;
        send_simple_error(c, 413, "RequestEntityTooLarge",
                          "The request body is larger than the server accepts (1 MiB).", true);
    } else if (err == -ENOMEM) {
        send_simple_error(c, 503, "ServiceUnavailable", "Out of memory.", true);
    } else {
        s->st.malformed++;
        send_simple_error(c, 400, "BadRequest", "The request is not valid HTTP/1.1.", true);
    }
}

static void conn_feed(conn *c, const char *data, size_t len)
{
    bool after_head = false; /* a message without body ends right after its head */
    while ((len > 0 || after_head) && !c->closing) {
        if (c->writing && c->out.len) {
            /* a pipelined request behind an answer held for the turn's end:
             * that answer goes now, so that one connection's requests are
             * served as they come, not piled up in pending */
            write_held(c);
            continue;
        }
        after_head = false;
        if (c->writing || c->reply) {
            if (es_buf_append(&c->pending, data, len) < 0)
                conn_close(c);
            return;
        }
        if (!c->in_request) {
            c->in_request = true;
            c->over_budget = false;
            c->head_refused = false;
            uint64_t head = c->srv->lim.head_timeout_ms, whole = c->srv->lim.request_timeout_ms;
            if (c->tls_deadline)
                c->tls_deadline = false; /* armed at the handshake's first byte: it still runs */
            else
                arm_timer(c, head < whole ? head : whole);
        }
        size_t used = 0;
        int ev = es_http_parser_feed(c->parser, data, len, &used);
        data += used;
        len -= used;
        if (ev < 0) {
            answer_parse_error(c, ev);
            return;
        }
        if (ev == ES_HTTP_HEADERS) {
            check_head(c);
            arm_timer(c, c->srv->lim.request_timeout_ms);
            if (es_http_parser_expect_continue(c->parser)) {
                /* small, written ahead of the answer; order is kept */
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
                if (!c->tls)
                    (void)uv_try_write(STREAM(c), &b, 1);
                else if (aw_tls_conn_write(c->tls, cont, sizeof cont - 1) == 0)
                    tls_flush(c);
            }
            after_head = true;
            continue;
        }
        if (ev == ES_HTTP_DONE)
            handle_request(c);
    }
}

/* Plain HTTP sent to the TLS listener: told so in plain HTTP, then closed. */
static void refuse_plain_http(conn *c)
{
    static const char body[] = "{\"__type\":\"BadRequest\",\"message\":\"This listener speaks "
                               "HTTPS (TLS) only: use an https:// endpoint.\"}";
    char a[512];
    int n = snprintf(a, sizeof a,
                     "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                     "Content-Type: application/x-amz-json-1.1\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof body - 1, body);
    c->srv->st.tls_plain_http++;
    c->srv->st.errors_4xx++;
    uv_buf_t b = uv_buf_init(a, (unsigned)n);
    (void)uv_try_write(STREAM(c), &b, 1);
    conn_close(c);
}

/* TLS: the socket's bytes into the engine; what it decrypts (into rbuf, the
 * ciphertext being the engine's now) to the parser, as plain reads go. */
static void tls_read(conn *c, size_t nread)
{
    aw_listener *s = c->srv;
    if (!c->tls_started) {
        c->tls_started = true;
        /* a handshake starts with record type 22; a method is uppercase */
        if (c->rbuf[0] >= 'A' && c->rbuf[0] <= 'Z') {
            refuse_plain_http(c);
            return;
        }
        /* the handshake and the first request's head: the head deadline */
        uint64_t head = s->lim.head_timeout_ms, whole = s->lim.request_timeout_ms;
        arm_timer(c, head < whole ? head : whole);
        c->tls_deadline = true;
    }
    if (aw_tls_conn_push(c->tls, c->rbuf, nread) < 0) {
        conn_close(c);
        return;
    }
    while (!c->closing) {
        ssize_t got = aw_tls_conn_read(c->tls, c->rbuf, sizeof c->rbuf);
        if (got == 0)
            break;
        if (got == AW_TLS_CLOSED && c->writing) {
            c->close_after_write = true; /* the answer goes out first */
            break;
        }
        if (got < 0) {
            if (got == AW_TLS_FAILED)
                s->st.tls_failures++; /* OpenSSL's reason: aw_tls_conn_error */
            tls_flush(c);             /* the alert, if any */
            conn_close(c);
            return;
        }
        if (!c->tls_counted) {
            c->tls_counted = true;
            s->st.tls_handshakes++;
        }
        conn_feed(c, c->rbuf, (size_t)got);
    }
    if (!c->tls_counted && aw_tls_conn_established(c->tls)) {
        c->tls_counted = true;
        s->st.tls_handshakes++;
    }
    tls_flush(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = st->data;
    (void)buf;
    if (c->closing)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->tls && nread > 0)
        tls_read(c, (size_t)nread);
    else if (!c->tls)
        conn_feed(c, c->rbuf, (size_t)nread);
}

static void on_timer(uv_timer_t *t)
{
    conn *c = t->data;
    c->timer_at = 0;
    if (c->closing)
        return;
    uint64_t now = uv_now(c->srv->loop);
    if (c->deadline > now) {
        arm_timer(c, c->deadline - now); /* the deadline moved on since it was set */
        return;
    }
    if (c->tls && c->tls_started && !aw_tls_conn_established(c->tls)) {
        c->srv->st.tls_failures++; /* the handshake did not end in time */
        conn_close(c);
        return;
    }
    if (c->writing) {
        conn_close(c); /* the client does not read its answer */
    } else if (c->reply) {
        c->srv->st.request_timeouts++; /* the route's answer came too late */
        conn_close(c);
    } else if (c->in_request) {
        c->srv->st.request_timeouts++;
        send_simple_error(c, 408, "RequestTimeout",
                          "The request did not arrive completely in time.", true);
    } else {
        c->srv->st.idle_timeouts++;
        conn_close(c);
    }
}

static int body_cb(void *ud, const char *data, size_t len)
{
    conn *c = ud;
    aw_listener *s = c->srv;
    if (c->head_refused)
        return 0; /* an unknown caller's body: counted by the parser, never kept */
    if (s->buffered + len > s->lim.max_buffered_bodies) {
        c->over_budget = true;
        return ES_HTTP_E_BODY_TOO_LARGE;
    }
    if (es_buf_append(&c->body, data, len) < 0)
        return ES_HTTP_E_BODY_TOO_LARGE;
    s->buffered += len;
    return 0;
}

/* Room for one more connection: the oldest that holds no request (never
 * sent a byte, or kept alive between requests; a TLS handshake under way
 * counts as a request) is closed, a stranger's before a client's: a peer
 * that opens hundreds of silent connections would otherwise push out the
 * keep-alive connection of a CLI between two of its calls, and that call
 * fail on a closed connection. False when every connection is busy with a
 * request (the arriving connection itself is not a candidate). */
static bool same_peer(const conn *a, const conn *b)
{
    return a->peer_len && a->peer_len == b->peer_len && memcmp(a->peer, b->peer, a->peer_len) == 0;
}

/* peer: when not NULL, only that peer's connections are candidates. */
static bool make_room(aw_listener *s, const conn *arriving, const conn *peer)
{
    conn *stranger = NULL, *client = NULL;
    for (conn *c = s->conns; c; c = c->next) /* newest first: the last idle is the oldest */
        if (c != arriving && !c->closing && !c->in_request && !c->writing && !c->tls_deadline &&
            (!peer || same_peer(c, peer))) {
            if (c->known)
                client = c;
            else
                stranger = c;
        }
    conn *victim = stranger ? stranger : client;
    if (!victim)
        return false;
    s->st.evicted_idle++;
    conn_close(victim);
    return true;
}

/* Records c's peer address; local peers (127.0.0.1, ::1, a unix socket's)
 * are not counted: every local client shares that address. */
static void note_peer(conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    c->peer_len = 0;
    if (c->srv->is_unix || uv_tcp_getpeername(&c->sock.tcp, (struct sockaddr *)&ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        if (ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK)
            return;
        memcpy(c->peer, &in->sin_addr, 4);
        c->peer_len = 4;
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return;
        memcpy(c->peer, &in6->sin6_addr, 16);
        c->peer_len = 16;
    }
}

/* Over its cap, a peer's own idle connection makes room (a stranger's
 * first), or the new one is refused: one remote peer cannot take the slots
 * of the others. */
static bool peer_admitted(aw_listener *s, conn *c)
{
    note_peer(c);
    if (!c->peer_len)
        return true;
    size_t mine = 0;
    for (conn *o = s->conns; o; o = o->next)
        mine += !o->closing && same_peer(o, c);
    return mine <= s->lim.max_connections_per_peer || make_room(s, c, c);
}

static void on_connection(uv_stream_t *ls, int status)
{
    aw_listener *s = ls->data;
    if (status < 0 || s->closing)
        return;
    conn *c = es_calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    es_buf_init(&c->body, s->lim.max_body);
    es_buf_init(&c->pending, 2 * READ_CHUNK);
    es_buf_init(&c->out, HEAD_MAX + TURN_ANSWER_MAX);
    if (s->is_unix)
        uv_pipe_init(s->loop, &c->sock.pipe, 0);
    else
        uv_tcp_init(s->loop, &c->sock.tcp);
    uv_timer_init(s->loop, &c->timer);
    c->sock.tcp.data = c->timer.data = c; /* data: the handles' common member */
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(ls, STREAM(c)) < 0) {
        conn_close(c);
        return;
    }
    /* the closing ones still count until their handles are gone */
    size_t live = 0;
    for (conn *o = s->conns; o; o = o->next)
        live += !o->closing;
    if (live > s->lim.max_connections && !make_room(s, c, NULL)) {
        s->st.connections_refused++;
        conn_close(c);
        return;
    }
    if (!peer_admitted(s, c)) {
        s->st.peer_refused++;
        conn_close(c);
        return;
    }
    s->st.connections_accepted++;
    if (es_http_parser_create(ES_HTTP_REQUEST, &s->hlim, &c->parser) < 0) {
        conn_close(c);
        return;
    }
    es_http_parser_set_body_cb(c->parser, body_cb, c);
    if (s->tls && !(c->tls = aw_tls_conn_new(s->tls))) {
        conn_close(c);
        return;
    }
    if (!s->is_unix)
        uv_tcp_nodelay(&c->sock.tcp, 1);
    arm_timer(c, s->lim.first_byte_timeout_ms < s->lim.idle_timeout_ms
                     ? s->lim.first_byte_timeout_ms
                     : s->lim.idle_timeout_ms);
    resume_reading(c);
}

static void listener_closed(uv_handle_t *h)
{
    aw_listener *s = h->data;
    s->listener_open = false;
    maybe_finish(s);
}

/* A new listener with its limits (defaults filled in); NULL when out of
 * memory. */
static aw_listener *listener_new(uv_loop_t *loop, const aw_listener_limits *limits)
{
    aw_listener *s = es_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->lim = limits ? *limits : aw_listener_default_limits;
    if (!s->lim.first_byte_timeout_ms)
        s->lim.first_byte_timeout_ms = aw_listener_default_limits.first_byte_timeout_ms;
    if (!s->lim.head_timeout_ms)
        s->lim.head_timeout_ms = aw_listener_default_limits.head_timeout_ms;
    if (!s->lim.max_buffered_bodies)
        s->lim.max_buffered_bodies = aw_listener_default_limits.max_buffered_bodies;
    if (!s->lim.max_connections_per_peer)
        s->lim.max_connections_per_peer = aw_listener_default_limits.max_connections_per_peer;
    s->hlim = es_http_default_limits;
    s->hlim.max_header_bytes = s->lim.max_header_bytes;
    s->hlim.max_body = s->lim.max_body;
    turn_handles_init(s);
    return s;
}

/* Ends a start that failed after the handle was made: the memory goes in
 * the close callback (the caller runs the loop). Answers r. */
static int start_failed(aw_listener *s, int r)
{
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, listener_closed);
    turn_handles_close(s);
    return r;
}

int aw_listener_start(uv_loop_t *loop, const char *host, int port, const aw_listener_limits *limits,
                      aw_listener **out)
{
    struct sockaddr_storage ss;
    int r = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                              : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (r < 0)
        return r;
    aw_listener *s = listener_new(loop, limits);
    if (!s)
        return -ENOMEM;
    uv_tcp_init(loop, &s->listener.tcp);
    s->listener.tcp.data = s;
    s->listener_open = true;
    r = uv_tcp_bind(&s->listener.tcp, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (r == 0) {
        struct sockaddr_storage bound;
        int len = sizeof bound;
        r = uv_tcp_getsockname(&s->listener.tcp, (struct sockaddr *)&bound, &len);
        if (r == 0)
            s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                        : ((struct sockaddr_in *)&bound)->sin_port);
    }
    if (r < 0)
        return start_failed(s, r);
    *out = s;
    return 0;
}

/* A socket file left at path by a process that is gone is removed;
 * anything else there is kept (-EEXIST). 0 when path is free. */
static int clear_stale_socket(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    return unlink(path) < 0 ? -errno : 0;
}

int aw_listener_start_unix(uv_loop_t *loop, const char *path, mode_t mode,
                           const aw_listener_limits *limits, aw_listener **out)
{
    if (strlen(path) > AW_LISTENER_PATH_MAX)
        return -ENAMETOOLONG;
    int r = clear_stale_socket(path);
    if (r < 0)
        return r;
    aw_listener *s = listener_new(loop, limits);
    if (!s)
        return -ENOMEM;
    s->is_unix = true;
    uv_pipe_init(loop, &s->listener.pipe, 0);
    s->listener.pipe.data = s;
    s->listener_open = true;
    /* given its mode before it listens: until then a connect is refused, so
     * nobody gets in under the umask's mode (libuv removes the file at the
     * close) */
    r = uv_pipe_bind(&s->listener.pipe, path);
    if (r < 0)
        return start_failed(s, r);
    if (chmod(path, mode) < 0)
        r = -errno;
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (r < 0)
        return start_failed(s, r);
    *out = s;
    return 0;
}

void aw_listener_set_tls(aw_listener *s, aw_tls *tls)
{
    aw_tls_free(s->tls);
    s->tls = tls;
}

bool aw_listener_tls(const aw_listener *s)
{
    return s->tls != NULL;
}

void aw_listener_set_clock(aw_listener *s, aw_listener_clock_fn fn, void *arg)
{
    s->clock = fn;
    s->clock_arg = arg;
}

int aw_listener_port(const aw_listener *s)
{
    return s->port;
}

void aw_listener_get_stats(const aw_listener *s, aw_listener_stats *out)
{
    *out = s->st;
    out->deferred_waiting = s->replies;
}

void aw_listener_close(aw_listener *s, void (*done)(void *arg), void *arg)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->done = done;
    s->done_arg = arg;
    /* the answers held for the turn's end go first (a stop answers what
     * waits, e.g. held DescribeTasks questions, then closes) */
    write_all_held(s);
    uv_close((uv_handle_t *)&s->listener, listener_closed);
    turn_handles_close(s);
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
}

/* ---- deferred answers ---- */

uv_loop_t *aw_listener_loop(const aw_listener *s)
{
    return s->loop;
}

aw_listener_reply *aw_listener_defer(const aw_listener_call *call)
{
    conn *c = call->priv;
    if (!c || c->reply || c->closing)
        return NULL;
    aw_listener_reply *r = es_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = c->srv;
    r->c = c;
    r->message_key = c->route ? c->route->message_key : NULL;
    c->reply = r;
    c->srv->replies++;
    return r;
}

bool aw_listener_reply_open(const aw_listener_reply *r)
{
    return r->c && !r->c->closing;
}

/* Releases r: its connection when it can still be answered, else NULL (and
 * the listener, if closing, may finish). */
static conn *reply_release(aw_listener_reply *r)
{
    aw_listener *s = r->srv;
    conn *c = r->c;
    if (c) {
        c->reply = NULL;
        c->replied_in_call = c->route != NULL; /* inside the route's own call */
    }
    s->replies--;
    es_free(r);
    if (c && !c->closing)
        return c;
    s->st.deferred_orphans++;
    maybe_finish(s); /* no connection of s is touched after this */
    return NULL;
}

void aw_listener_reply_ok(aw_listener_reply *r, const char *body, size_t len)
{
    conn *c = reply_release(r);
    if (!c)
        return;
    send_answer(c, 200, "application/x-amz-json-1.1", body ? body : "{}", body ? len : 2, false);
    feed_pending(c);
}

void aw_listener_reply_error(aw_listener_reply *r, const aw_listener_error *e)
{
    const char *key = r->message_key;
    conn *c = reply_release(r);
    if (!c)
        return;
    send_json_error(c, e, key, false);
    feed_pending(c);
}

void aw_listener_reply_drop(aw_listener_reply *r)
{
    conn *c = reply_release(r);
    if (c)
        conn_close(c);
}
