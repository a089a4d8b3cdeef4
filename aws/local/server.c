#include "aws/local/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/local/auth.h"
#include "aws/local/query.h"
#include "aws/local/internal.h"
#include "common/alloc.h"
#include "common/http.h"
#include "common/log.h"
#include "common/secure.h"

const al_server_limits al_server_default_limits = {
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
#define HEAD_MAX 4096                            /* our own response heads */
#define XML_ERROR_MAX (2 * AL_MESSAGE_MAX + 256) /* a query-protocol error answer */
#define MAX_REQ_HEADERS 128

typedef struct conn conn;

struct al_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open;
    al_ctx *store;
    al_server_limits lim;
    es_http_limits hlim;
    al_server_stats st;
    conn *conns;
    size_t nconns;
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
    al_server_clock_fn clock;
    void *clock_arg;
    int port;
    struct {
        const char *prefix, *signing_name; /* borrowed: string literals of the caller */
        al_json_route_fn fn;
        void *arg;
    } json_routes[AL_SERVER_ROUTES_MAX];
    size_t n_json_routes;
    struct {
        const char *path;
        al_get_route_fn fn;
        void *arg;
    } get_routes[AL_SERVER_ROUTES_MAX];
    size_t n_get_routes;
    bool no_store_ops; /* al_server_serve_store(s, false) */
    size_t buffered;   /* request body bytes held, all connections */
    al_tls *tls;       /* HTTPS (al_server_set_tls), or NULL */
};

int al_server_add_json_route(al_server *s, const char *target_prefix, const char *signing_name,
                             al_json_route_fn fn, void *arg)
{
    if (s->n_json_routes >= AL_SERVER_ROUTES_MAX)
        return -ENOSPC;
    s->json_routes[s->n_json_routes].prefix = target_prefix;
    s->json_routes[s->n_json_routes].signing_name = signing_name;
    s->json_routes[s->n_json_routes].fn = fn;
    s->json_routes[s->n_json_routes].arg = arg;
    s->n_json_routes++;
    return 0;
}

void al_server_serve_store(al_server *s, bool serve)
{
    s->no_store_ops = !serve;
}

int al_server_add_get_route(al_server *s, const char *path, al_get_route_fn fn, void *arg)
{
    if (s->n_get_routes >= AL_SERVER_ROUTES_MAX)
        return -ENOSPC;
    s->get_routes[s->n_get_routes].path = path;
    s->get_routes[s->n_get_routes].fn = fn;
    s->get_routes[s->n_get_routes].arg = arg;
    s->n_get_routes++;
    return 0;
}

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    al_server *srv;
    conn *prev, *next;
    es_http_parser *parser;
    es_buf body;    /* request body (may hold a secret value) */
    es_buf pending; /* bytes read while an answer was being written */
    int open_handles;
    bool closing;
    bool writing;
    bool close_after_write;
    bool in_request;
    bool over_budget;  /* the body was refused by the budget, not the maximum */
    bool head_refused; /* al_precheck refused the head: the body is discarded
                          unread and head_err answered */
    bool known;        /* a request of it passed SigV4: a client, not a stranger */
    /* the peer's address (sin_addr / sin6_addr bytes), for the per-peer cap;
     * peer_len 0 for a local peer (127.0.0.1, ::1), which it does not count */
    uint8_t peer[16];
    uint8_t peer_len;
    al_error head_err;
    /* TLS (NULL when off): the handshake's first byte arrived; its deadline
     * still runs for the first request's head; counted in the stats */
    al_tls_conn *tls;
    bool tls_started, tls_deadline, tls_counted;
    char rbuf[READ_CHUNK]; /* what the socket read; with TLS, reused for what it decrypts */
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
static void send_xml_error(conn *c, const al_error *e);

static void maybe_finish(al_server *s)
{
    if (!s->closing || s->listener_open || s->conns)
        return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    al_tls_free(s->tls);
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
    al_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    es_http_parser_free(c->parser);
    al_tls_conn_free(c->tls);
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
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_timer(uv_timer_t *t);
static void resume_reading(conn *c);

static void arm_timer(conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
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
    if (c->pending.len) {
        es_buf more = c->pending;
        es_buf_init(&c->pending, c->pending.max);
        conn_feed(c, more.data, more.len);
        es_buf_free_secret(&more);
    }
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
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Writes an answer's buffers (total bytes): when the socket takes them
 * whole the exchange ends here; otherwise what is left is copied into a write
 * request and reading pauses until it is out. Copies what it keeps. */
static void write_answer(conn *c, const uv_buf_t *bufs, unsigned nbufs, size_t total)
{
    int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
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
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* a client that does not read its answer gets the request timeout */
    arm_timer(c, c->srv->lim.request_timeout_ms);
    uv_buf_t b = uv_buf_init(w->data.data, (unsigned)w->data.len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        es_buf_free_secret(&w->data);
        es_free(w);
        conn_close(c);
    }
}

/* TLS: the answer encrypted (and close_notify after it when the connection
 * closes), then written as above. The plaintext stays the caller's. */
static void send_tls_answer(conn *c, const uv_buf_t *bufs, unsigned nbufs)
{
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    es_buf rec; /* records: ciphertext; what the engine already held goes first */
    size_t room = al_tls_conn_pending(c->tls) + total + (total / 16384 + 4) * 256 + 1024;
    es_buf_init(&rec, room);
    int r = es_buf_expect(&rec, room);
    for (unsigned i = 0; i < nbufs && r == 0; i++)
        if (bufs[i].len)
            r = al_tls_conn_write(c->tls, bufs[i].base, bufs[i].len);
    if (r == 0 && c->close_after_write)
        al_tls_conn_shutdown(c->tls);
    if (r == 0)
        r = al_tls_conn_pull(c->tls, &rec);
    if (r < 0) {
        es_buf_free(&rec);
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(rec.data, (unsigned)rec.len);
    write_answer(c, &b, 1, rec.len);
    es_buf_free(&rec);
}

/* TLS: writes what the engine has to send outside an answer (handshake
 * flights, alerts, 100 Continue): at once when the socket takes it, else
 * queued behind what is queued already (libuv keeps the order). */
static void tls_flush(conn *c)
{
    size_t pending = al_tls_conn_pending(c->tls);
    if (c->closing || !pending)
        return;
    es_buf rec;
    es_buf_init(&rec, pending);
    if (al_tls_conn_pull(c->tls, &rec) < 0) {
        es_buf_free(&rec);
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(rec.data, (unsigned)rec.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    size_t done = n > 0 ? (size_t)n : 0;
    wreq *w = NULL;
    if ((n >= 0 || n == UV_EAGAIN) && done < rec.len && (w = es_calloc(1, sizeof *w))) {
        w->c = c;
        w->raw = true;
        es_buf_init(&w->data, rec.len - done);
        if (es_buf_append(&w->data, rec.data + done, rec.len - done) < 0 ||
            uv_write(&w->req, (uv_stream_t *)&c->tcp,
                     &(uv_buf_t){.base = w->data.data, .len = w->data.len}, 1, on_written) < 0) {
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
static void send_answer(conn *c, int status, const char *content_type, const char *body, size_t len,
                        bool close)
{
    es_buf head; /* status line and headers: no secret */
    es_buf_init(&head, HEAD_MAX);
    int r = 0;
    (void)es_buf_reserve(&head, 511, &r); /* one allocation; a failure shows below */
    char rid[AL_KEY_ID_LEN + 1];
    if (al_uuid(rid) < 0)
        snprintf(rid, sizeof rid, "00000000-0000-4000-8000-000000000000");
    c->close_after_write = close || !es_http_parser_keep_alive(c->parser);
    r = es_http_write_status_line(&head, status, NULL);
    if (r == 0)
        r = es_http_write_header(&head, "x-amzn-RequestId", rid);
    if (r == 0 && c->close_after_write)
        r = es_http_write_header(&head, "Connection", "close");
    if (r == 0 && content_type)
        r = es_http_write_header(&head, "Content-Type", content_type);
    if (r == 0) {
        /* "Content-Length: N\r\n\r\n" without printf */
        char num[24];
        size_t k = sizeof num;
        size_t v = len;
        do {
            num[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        r = es_buf_append(&head, "Content-Length: ", 16);
        if (r == 0)
            r = es_buf_append(&head, num + k, sizeof num - k);
        if (r == 0)
            r = es_buf_append(&head, "\r\n\r\n", 4);
    }
    if (r < 0) {
        es_buf_free(&head);
        conn_close(c);
        return;
    }
    if (status >= 500)
        c->srv->st.errors_5xx++;
    else if (status >= 400)
        c->srv->st.errors_4xx++;
    uv_buf_t bufs[2] = {uv_buf_init(head.data, (unsigned)head.len),
                        uv_buf_init((char *)body, (unsigned)len)};
    if (c->tls)
        send_tls_answer(c, bufs, len ? 2 : 1);
    else
        write_answer(c, bufs, len ? 2 : 1, head.len + len);
    es_buf_free(&head);
}

static void send_json_error(conn *c, const al_error *e, bool sm_style, bool close)
{
    es_buf b;
    es_buf_init(&b, 2 * AL_MESSAGE_MAX + 256);
    es_jw w;
    es_jw_init(&w, &b);
    es_jw_obj(&w);
    es_jw_kstr(&w, "__type", e->code);
    es_jw_kstr(&w, sm_style ? "Message" : "message", e->message);
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
    al_error e;
    al_fail(&e, status, code, "%s", msg);
    send_json_error(c, &e, false, close);
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

/* The server's clock: the test hook when set, else the wall clock. */
static time_t server_now(const al_server *s)
{
    return s->clock ? s->clock(s->clock_arg) : time(NULL);
}

static void handle_request(conn *c)
{
    al_server *s = c->srv;
    es_http_parser *p = c->parser;
    s->st.requests++;
    const char *method = es_http_parser_method(p);
    const char *target = es_http_parser_target(p);
    char path[2048];
    const char *q = strchr(target, '?');
    size_t pl = q ? (size_t)(q - target) : strlen(target);
    if (pl >= sizeof path) {
        send_simple_error(c, 414, "RequestURITooLong", "The request target is too long.", true);
        return;
    }
    memcpy(path, target, pl);
    path[pl] = '\0';
    aw_header hs[MAX_REQ_HEADERS];
    size_t nh = 0;
    const char *n, *v;
    for (size_t i = 0; nh < MAX_REQ_HEADERS && es_http_parser_header_at(p, i, &n, &v); i++)
        hs[nh++] = (aw_header){n, v};
    const char *amz_target = es_http_parser_header(p, "x-amz-target");
    const char *ctype = es_http_parser_header(p, "content-type");
    if (strcmp(method, "GET") == 0) {
        for (size_t i = 0; i < s->n_get_routes; i++) {
            if (strcmp(path, s->get_routes[i].path) != 0)
                continue;
            es_buf out;
            es_buf_init(&out, AL_RESPONSE_MAX);
            const char *ct = "text/plain";
            if (s->get_routes[i].fn(s->get_routes[i].arg, path, &out, &ct) < 0)
                send_simple_error(c, 500, "InternalFailure", "The route failed.", false);
            else
                send_answer(c, 200, ct, out.data ? out.data : "", out.len, false);
            es_buf_free(&out);
            return;
        }
    }
    if (strcmp(method, "POST") != 0) {
        send_simple_error(c, 405, "UnknownOperationException",
                          "The embedded endpoints answer POST / only.", false);
        return;
    }
    if (!amz_target && s->no_store_ops) {
        /* aws mode: no query services (IAM, STS) either; only the routes */
        if (ctype && strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0) {
            static const char x[] =
                "<ErrorResponse><Error><Type>Sender</Type><Code>UnknownOperationException</Code>"
                "<Message>Only the agent's ECS API is served here (mode aws).</Message></Error>"
                "<RequestId>0</RequestId></ErrorResponse>";
            send_answer(c, 400, "text/xml", x, sizeof x - 1, false);
        } else {
            send_simple_error(c, 400, "UnknownOperationException",
                              "Only the agent's ECS API is served here (mode aws).", false);
        }
        return;
    }
    /* what aws/local verifies, either protocol */
    al_request rq = {.method = method,
                     .path = path,
                     .query = q ? q + 1 : NULL,
                     .headers = hs,
                     .n_headers = nh,
                     .body = c->body.data ? c->body.data : "",
                     .body_len = c->body.len};
    if (!amz_target && c->head_refused) {
        s->st.auth_failures++;
        send_xml_error(c, &c->head_err);
        return;
    }
    if (!amz_target) {
        char action[128];
        if (ctype && strncasecmp(ctype, "application/x-www-form-urlencoded", 33) == 0 &&
            form_action(c->body.data ? c->body.data : "", c->body.len, action, sizeof action)) {
            /* the query protocol: IAM and STS (aws/local/query.h) */
            es_buf x;
            es_buf_init(&x, AL_RESPONSE_MAX);
            int st = al_query_serve(s->store, &rq, server_now(s), &x);
            if (st == 200)
                c->known = true;
            if (st < 0)
                send_simple_error(c, 503, "ServiceUnavailable", "Out of memory.", true);
            else
                send_answer(c, st, "text/xml", x.data ? x.data : "", x.len, false);
            es_buf_free_secret(&x);
            return;
        }
        send_simple_error(c, 400, "UnknownOperationException",
                          "Missing X-Amz-Target (JSON 1.1) or Action (query) in the request.",
                          false);
        return;
    }
    bool sm = strncmp(amz_target, "secretsmanager.", 15) == 0;
    const char *service = al_signing_name(amz_target);
    size_t route = SIZE_MAX;
    for (size_t i = 0; i < s->n_json_routes; i++) {
        size_t pn = strlen(s->json_routes[i].prefix);
        if (strncmp(amz_target, s->json_routes[i].prefix, pn) == 0 && amz_target[pn]) {
            route = i;
            service = s->json_routes[i].signing_name;
        }
    }
    if (route == SIZE_MAX && (s->no_store_ops || !service || !al_knows_target(amz_target))) {
        send_simple_error(c, 400, "UnknownOperationException",
                          "The operation named by X-Amz-Target is not served here.", false);
        return;
    }
    time_t now = server_now(s);
    char principal[AL_PRINCIPAL_MAX], region[AW_REGION_MAX + 1];
    al_error e;
    if (c->head_refused) {
        s->st.auth_failures++;
        send_json_error(c, &c->head_err, sm, false);
        return;
    }
    if (al_verify(s->store, &rq, service, now, principal, sizeof principal, region, &e) < 0) {
        s->st.auth_failures++;
        send_json_error(c, &e, sm, false);
        return;
    }
    c->known = true;
    es_buf out;
    es_buf_init(&out, AL_RESPONSE_MAX);
    int rc;
    if (route != SIZE_MAX)
        rc = s->json_routes[route].fn(s->json_routes[route].arg,
                                      amz_target + strlen(s->json_routes[route].prefix), principal,
                                      rq.body, rq.body_len, &out, &e);
    else
        rc =
            al_dispatch_in(s->store, region, amz_target, principal, rq.body, rq.body_len, &out, &e);
    if (rc < 0)
        send_json_error(c, &e, sm, false);
    else
        send_answer(c, 200, "application/x-amz-json-1.1", out.data ? out.data : "{}",
                    out.data ? out.len : 2, false);
    es_buf_free_secret(&out);
}

/* A POST from a caller we cannot know: its body is discarded as it arrives
 * (never buffered) and the refusal answered once the request is over. */
static void check_head(conn *c)
{
    al_server *s = c->srv;
    es_http_parser *p = c->parser;
    const char *method = es_http_parser_method(p);
    if (!method || strcmp(method, "POST") != 0)
        return; /* GET routes; anything else is refused after */
    if (!es_http_parser_header(p, "x-amz-target") && s->no_store_ops)
        return; /* aws mode serves no query protocol: refused by name after */
    memset(&c->head_err, 0, sizeof c->head_err);
    if (al_precheck(s->store, es_http_parser_header(p, "authorization"),
                    es_http_parser_header(p, "x-amz-date"),
                    es_http_parser_header(p, "x-amz-security-token"), server_now(s),
                    &c->head_err) == 0)
        return;
    s->st.refused_at_head++;
    c->head_refused = true;
}

/* The query protocol's (IAM, STS) error answer: XML, in its own codes
 * (MissingAuthenticationToken, 403), as al_query_serve answers them. */
static void send_xml_error(conn *c, const al_error *head_err)
{
    const char *authz = es_http_parser_header(c->parser, "authorization");
    const char *service = authz && strstr(authz, "/iam/aws4_request") ? "iam" : "sts";
    al_error e = *head_err;
    al_query_error_from_json(&e);
    es_buf x;
    es_buf_init(&x, XML_ERROR_MAX);
    if (al_query_error_xml(service, &e, &x) < 0)
        send_simple_error(c, 503, "ServiceUnavailable", "Out of memory.", true);
    else
        send_answer(c, e.status ? e.status : 400, "text/xml", x.data ? x.data : "", x.len, false);
    es_buf_free(&x);
}

static void answer_parse_error(conn *c, int err)
{
    al_server *s = c->srv;
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
        after_head = false;
        if (c->writing) {
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
                    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
                else if (al_tls_conn_write(c->tls, cont, sizeof cont - 1) == 0)
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
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    conn_close(c);
}

/* TLS: the socket's bytes into the engine; what it decrypts (into rbuf, the
 * ciphertext being the engine's now) to the parser, as plain reads go. */
static void tls_read(conn *c, size_t nread)
{
    al_server *s = c->srv;
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
    if (al_tls_conn_push(c->tls, c->rbuf, nread) < 0) {
        conn_close(c);
        return;
    }
    while (!c->closing) {
        ssize_t got = al_tls_conn_read(c->tls, c->rbuf, sizeof c->rbuf);
        if (got == 0)
            break;
        if (got == AL_TLS_CLOSED && c->writing) {
            c->close_after_write = true; /* the answer goes out first */
            break;
        }
        if (got < 0) {
            if (got == AL_TLS_FAILED) {
                s->st.tls_failures++;
                es_debug("listener: TLS %s failed: %s",
                         al_tls_conn_established(c->tls) ? "record" : "handshake",
                         al_tls_conn_error(c->tls));
            }
            tls_flush(c); /* the alert, if any */
            conn_close(c);
            return;
        }
        if (!c->tls_counted) {
            c->tls_counted = true;
            s->st.tls_handshakes++;
        }
        conn_feed(c, c->rbuf, (size_t)got);
    }
    if (!c->tls_counted && al_tls_conn_established(c->tls)) {
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
    if (c->closing)
        return;
    if (c->tls && c->tls_started && !al_tls_conn_established(c->tls)) {
        c->srv->st.tls_failures++; /* the handshake did not end in time */
        conn_close(c);
        return;
    }
    if (c->writing) {
        conn_close(c); /* the client does not read its answer */
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
    al_server *s = c->srv;
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
static bool make_room(al_server *s, const conn *arriving, const conn *peer)
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

/* Records c's peer address; local peers (127.0.0.1, ::1) are not counted:
 * every local client shares that address, the agent's own included. */
static void note_peer(conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    c->peer_len = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0)
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
static bool peer_admitted(al_server *s, conn *c)
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
    al_server *s = ls->data;
    if (status < 0 || s->closing)
        return;
    conn *c = es_calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = s;
    es_buf_init(&c->body, s->lim.max_body);
    es_buf_init(&c->pending, 2 * READ_CHUNK);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
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
    if (s->tls && !(c->tls = al_tls_conn_new(s->tls))) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    arm_timer(c, s->lim.first_byte_timeout_ms < s->lim.idle_timeout_ms
                     ? s->lim.first_byte_timeout_ms
                     : s->lim.idle_timeout_ms);
    resume_reading(c);
}

static void listener_closed(uv_handle_t *h)
{
    al_server *s = h->data;
    s->listener_open = false;
    maybe_finish(s);
}

int al_server_start(uv_loop_t *loop, al_ctx *store, const char *host, int port,
                    const al_server_limits *limits, al_server **out)
{
    struct sockaddr_storage ss;
    int r = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                              : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (r < 0)
        return r;
    al_server *s = es_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->store = store;
    s->lim = limits ? *limits : al_server_default_limits;
    if (!s->lim.first_byte_timeout_ms)
        s->lim.first_byte_timeout_ms = al_server_default_limits.first_byte_timeout_ms;
    if (!s->lim.head_timeout_ms)
        s->lim.head_timeout_ms = al_server_default_limits.head_timeout_ms;
    if (!s->lim.max_buffered_bodies)
        s->lim.max_buffered_bodies = al_server_default_limits.max_buffered_bodies;
    if (!s->lim.max_connections_per_peer)
        s->lim.max_connections_per_peer = al_server_default_limits.max_connections_per_peer;
    s->hlim = es_http_default_limits;
    s->hlim.max_header_bytes = s->lim.max_header_bytes;
    s->hlim.max_body = s->lim.max_body;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    r = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (r == 0) {
        struct sockaddr_storage bound;
        int len = sizeof bound;
        r = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
        if (r == 0)
            s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                        : ((struct sockaddr_in *)&bound)->sin_port);
    }
    if (r < 0) {
        /* the memory goes in the close callback; the caller runs the loop */
        s->closing = true;
        uv_close((uv_handle_t *)&s->listener, listener_closed);
        return r;
    }
    *out = s;
    return 0;
}

void al_server_set_tls(al_server *s, al_tls *tls)
{
    al_tls_free(s->tls);
    s->tls = tls;
}

bool al_server_tls(const al_server *s)
{
    return s->tls != NULL;
}

void al_server_set_clock(al_server *s, al_server_clock_fn fn, void *arg)
{
    s->clock = fn;
    s->clock_arg = arg;
}

int al_server_port(const al_server *s)
{
    return s->port;
}

void al_server_get_stats(const al_server *s, al_server_stats *out)
{
    *out = s->st;
}

void al_server_close(al_server *s, void (*done)(void *arg), void *arg)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->done = done;
    s->done_arg = arg;
    uv_close((uv_handle_t *)&s->listener, listener_closed);
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
}
