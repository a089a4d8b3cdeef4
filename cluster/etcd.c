#include "cluster/etcd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aws/http.h"
#include "common/alloc.h"
#include "common/secure.h"

/* gRPC's Unavailable: the member has no leader or lost its quorum; another
 * member may well answer */
#define GRPC_UNAVAILABLE 14

struct cl_etcd {
    uv_loop_t *loop;
    aw_http *http;
    char urls[CL_ETCD_ENDPOINTS_MAX][CL_ETCD_URL_MAX];
    size_t n_urls, current;
    char *ca_file, *cert, *key;
    long timeout_ms;
    bool closing;
    cl_etcd_watch *watches;
    unsigned pending_close; /* watches' own http clients not yet closed */
    void (*closed)(void *);
    void *closed_arg;
    cl_etcd_stats stats;
};

/* One call, retried across the endpoints. */
typedef struct etcd_call {
    cl_etcd *e;
    char path[48];
    es_buf body;
    size_t tries;
    size_t at; /* the endpoint it was sent to */
    cl_etcd_cb cb;
    void *arg;
} etcd_call;

struct cl_etcd_watch {
    cl_etcd *e;
    aw_http *http; /* its own: closing it is how a stream is ended */
    size_t at;     /* the endpoint it was sent to */
    es_buf body, line;
    cl_etcd_watch_cbs cbs;
    int end_err;
    bool ended;
    bool in_data;     /* inside curl's write callback: curl may not be re-entered */
    bool close_later; /* ended there: the client is closed when curl lets go */
    cl_etcd_watch *next;
};

const char *cl_etcd_strerror(int err)
{
    switch (err) {
    case CL_ETCD_OK:
        return "ok";
    case CL_ETCD_E_UNAVAILABLE:
        return "no etcd endpoint answered";
    case CL_ETCD_E_ANSWER:
        return "etcd's answer could not be read";
    case CL_ETCD_E_REFUSED:
        return "etcd refused the request";
    case CL_ETCD_E_CANCELED:
        return "canceled";
    case CL_ETCD_E_NOMEM:
        return "out of memory";
    case CL_ETCD_E_INVALID:
        return "invalid request";
    default:
        return "unknown etcd error";
    }
}

/* ---- endpoints -------------------------------------------------------- */

static int check_url(const char *u, size_t n, char *why, size_t whylen)
{
    size_t skip = strncmp(u, "http://", 7) == 0 ? 7 : strncmp(u, "https://", 8) == 0 ? 8 : 0;
    if (!skip)
        return es_errf(why, whylen, -EINVAL, "'%.*s' is not an http:// or https:// URL",
                       (int)(n > 64 ? 64 : n), u);
    if (n == skip || n >= CL_ETCD_URL_MAX)
        return es_errf(why, whylen, -EINVAL, "'%.64s': no host, or longer than %d", u,
                       CL_ETCD_URL_MAX - 1);
    for (size_t i = skip; i < n; i++)
        if (u[i] == '/' && i != n - 1)
            return es_errf(why, whylen, -EINVAL, "'%.*s': a path is not allowed",
                           (int)(n > 64 ? 64 : n), u);
        else if ((unsigned char)u[i] <= ' ' || u[i] == '?' || u[i] == '#' || u[i] == '@')
            return es_errf(why, whylen, -EINVAL, "'%.*s': not a plain host:port",
                           (int)(n > 64 ? 64 : n), u);
    return 0;
}

int cl_etcd_parse_endpoints(const char *list, char urls[][CL_ETCD_URL_MAX], size_t max, char *why,
                            size_t whylen)
{
    size_t n = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            int r = check_url(p, len, why, whylen);
            if (r < 0)
                return r;
            if (n >= max)
                return es_errf(why, whylen, -EINVAL, "more than %zu endpoints", max);
            if (p[len - 1] == '/')
                len--;
            memcpy(urls[n], p, len);
            urls[n][len] = '\0';
            n++;
        }
        p += end ? (size_t)(end - p) + 1 : strlen(p);
    }
    if (n == 0)
        return es_errf(why, whylen, -EINVAL, "no endpoint");
    return (int)n;
}

const char *cl_etcd_current(const cl_etcd *e)
{
    return e->urls[e->current];
}

void cl_etcd_get_stats(const cl_etcd *e, cl_etcd_stats *out)
{
    *out = e->stats;
}

/* ---- unary calls ------------------------------------------------------ */

static int send_call(etcd_call *c);

static void call_free(etcd_call *c)
{
    es_buf_free_secret(&c->body);
    es_free(c);
}

/* The failures another member may not have. */
static bool try_next(int http_err, long status, const cl_answer *a)
{
    if (http_err)
        return http_err == AW_HTTP_E_CONNECT || http_err == AW_HTTP_E_TIMEOUT ||
               http_err == AW_HTTP_E_PROTOCOL || http_err == AW_HTTP_E_TLS;
    return status == 502 || status == 503 || (a && a->is_error && a->code == GRPC_UNAVAILABLE);
}

static void on_call_done(void *arg, int err, aw_http_response *resp)
{
    etcd_call *c = arg;
    cl_etcd *e = c->e;
    cl_answer a = {0};
    bool parsed = false;
    int r = 0;
    if (err == AW_HTTP_E_CANCELED || e->closing) {
        r = CL_ETCD_E_CANCELED;
    } else if (!err) {
        char why[128];
        parsed = cl_wire_parse(resp->body.data ? resp->body.data : "", resp->body.len, &a, why,
                               sizeof why) == 0;
        if (!parsed)
            r = CL_ETCD_E_ANSWER;
        else if (a.is_error || resp->status != 200)
            r = CL_ETCD_E_REFUSED;
    }
    if (r != CL_ETCD_E_CANCELED && try_next(err, err ? 0 : resp->status, parsed ? &a : NULL) &&
        ++c->tries < e->n_urls) {
        cl_answer_free(&a);
        /* calls in flight together meet the same dead endpoint: only the
         * first to fail moves the current one on; the others follow it
         * rather than move it again (back to the dead one, with two) */
        if (e->current == c->at)
            e->current = (c->at + 1) % e->n_urls;
        e->stats.failovers++;
        if (send_call(c) == 0)
            return;
        r = CL_ETCD_E_UNAVAILABLE;
    } else if (err && r == 0) {
        r = CL_ETCD_E_UNAVAILABLE;
    } else if (!err) {
        e->current = c->at; /* the endpoint that answered stays the first choice */
    }
    if (r && r != CL_ETCD_E_REFUSED)
        e->stats.failures++;
    c->cb(c->arg, r, parsed ? &a : NULL);
    cl_answer_free(&a);
    call_free(c);
}

static int send_call(etcd_call *c)
{
    cl_etcd *e = c->e;
    char url[CL_ETCD_URL_MAX + 64];
    c->at = e->current;
    snprintf(url, sizeof url, "%s%s", e->urls[c->at], c->path);
    aw_http_header h[] = {{"Content-Type", "application/json"}};
    aw_http_request q = {.method = "POST",
                         .url = url,
                         .headers = h,
                         .n_headers = 1,
                         .body = c->body.data,
                         .body_len = c->body.len,
                         .timeout_ms = e->timeout_ms,
                         .connect_timeout_ms = e->timeout_ms,
                         .max_body = CL_ETCD_ANSWER_MAX,
                         .no_proxy = true,
                         .ca_file = e->ca_file,
                         .client_cert = e->cert,
                         .client_key = e->key};
    e->stats.requests++;
    return aw_http_start(e->http, &q, on_call_done, c) == 0 ? 0 : CL_ETCD_E_UNAVAILABLE;
}

/* Takes body (moved into the call). */
static int call(cl_etcd *e, const char *path, es_buf *body, cl_etcd_cb cb, void *arg)
{
    if (e->closing) {
        es_buf_free_secret(body);
        return CL_ETCD_E_CANCELED;
    }
    etcd_call *c = es_calloc(1, sizeof *c);
    if (!c) {
        es_buf_free_secret(body);
        return CL_ETCD_E_NOMEM;
    }
    c->e = e;
    snprintf(c->path, sizeof c->path, "%s", path);
    c->body = *body;
    es_buf_init(body, 0);
    c->cb = cb;
    c->arg = arg;
    int r = send_call(c);
    if (r < 0)
        call_free(c);
    return r;
}

static int built(int r, es_buf *b)
{
    if (r < 0) {
        es_buf_free_secret(b);
        return r == -ENOMEM ? CL_ETCD_E_NOMEM : CL_ETCD_E_INVALID;
    }
    return 0;
}

#define CALL(e, path, build, cb, arg)                                                              \
    do {                                                                                           \
        es_buf b_;                                                                                 \
        es_buf_init(&b_, CL_ETCD_REQUEST_MAX);                                                     \
        int r_ = built(build, &b_);                                                                \
        return r_ < 0 ? r_ : call(e, path, &b_, cb, arg);                                          \
    } while (0)

int cl_etcd_range(cl_etcd *e, const char *key, bool prefix, cl_etcd_cb cb, void *arg)
{
    CALL(e, "/v3/kv/range", cl_wire_range(&b_, key, prefix), cb, arg);
}

int cl_etcd_range_page(cl_etcd *e, const char *from, const char *prefix, int64_t limit,
                       int64_t revision, cl_etcd_cb cb, void *arg)
{
    CALL(e, "/v3/kv/range", cl_wire_range_page(&b_, from, prefix, limit, revision), cb, arg);
}

int cl_etcd_put(cl_etcd *e, const char *key, const char *value, size_t len, int64_t lease,
                cl_etcd_cb cb, void *arg)
{
    CALL(e, "/v3/kv/put", cl_wire_put(&b_, key, value, len, lease), cb, arg);
}

int cl_etcd_delete(cl_etcd *e, const char *key, bool prefix, cl_etcd_cb cb, void *arg)
{
    CALL(e, "/v3/kv/deleterange", cl_wire_delete(&b_, key, prefix), cb, arg);
}

int cl_etcd_txn(cl_etcd *e, const cl_txn *t, cl_etcd_cb cb, void *arg)
{
    CALL(e, "/v3/kv/txn", cl_wire_txn(&b_, t), cb, arg);
}

int cl_etcd_lease_grant(cl_etcd *e, int64_t ttl, cl_etcd_cb cb, void *arg)
{
    CALL(e, "/v3/lease/grant", cl_wire_lease_grant(&b_, ttl), cb, arg);
}

int cl_etcd_lease_keepalive(cl_etcd *e, int64_t id, cl_etcd_cb cb, void *arg)
{
    CALL(e, "/v3/lease/keepalive", cl_wire_lease_id(&b_, id), cb, arg);
}

int cl_etcd_lease_revoke(cl_etcd *e, int64_t id, cl_etcd_cb cb, void *arg)
{
    CALL(e, "/v3/lease/revoke", cl_wire_lease_id(&b_, id), cb, arg);
}

/* ---- watch ------------------------------------------------------------ */

static void watch_unlink(cl_etcd_watch *w)
{
    for (cl_etcd_watch **pp = &w->e->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            return;
        }
}

static void maybe_free(cl_etcd *e)
{
    if (!e->closing || e->pending_close > 0)
        return;
    void (*closed)(void *) = e->closed;
    void *carg = e->closed_arg;
    es_free(e->ca_file);
    es_free(e->cert);
    es_free(e->key);
    es_free(e);
    if (closed)
        closed(carg);
}

/* The watch's http client is closed: the end is reported, w freed. */
static void on_watch_closed(void *arg)
{
    cl_etcd_watch *w = arg;
    cl_etcd *e = w->e;
    if (w->cbs.on_end)
        w->cbs.on_end(w->cbs.arg, w->end_err);
    es_buf_free(&w->body);
    es_buf_free_secret(&w->line);
    es_free(w);
    e->pending_close--;
    maybe_free(e);
}

static void watch_end(cl_etcd_watch *w, int err)
{
    if (w->ended)
        return;
    w->ended = true;
    w->end_err = err;
    watch_unlink(w);
    w->e->pending_close++;
    if (w->in_data) {
        w->close_later = true; /* on_watch_data answers -1; on_watch_done closes */
        return;
    }
    aw_http_close(w->http, on_watch_closed, w);
}

static int watch_line(cl_etcd_watch *w, const char *p, size_t n)
{
    cl_answer a;
    char why[128];
    if (n == 0)
        return 0;
    if (cl_wire_parse(p, n, &a, why, sizeof why) < 0) {
        w->e->stats.watch_bad_lines++;
        return CL_ETCD_E_ANSWER;
    }
    w->e->stats.watch_messages++;
    int r = a.is_error ? CL_ETCD_E_REFUSED : 0;
    if (!r && w->cbs.on_msg)
        w->cbs.on_msg(w->cbs.arg, &a);
    cl_answer_free(&a);
    return r;
}

/* Lines are whole messages: cut at each newline, bounded. */
static int on_watch_data(void *arg, const char *p, size_t n)
{
    cl_etcd_watch *w = arg;
    if (w->ended)
        return -1;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (es_buf_append(&w->line, p, take) < 0) {
            w->end_err = CL_ETCD_E_ANSWER; /* a line past CL_ETCD_ANSWER_MAX */
            return -1;
        }
        p += take;
        n -= take;
        if (nl) {
            p++;
            n--;
            w->in_data = true;
            int r = watch_line(w, w->line.data ? w->line.data : "", w->line.len);
            w->in_data = false;
            es_buf_reset_secret(&w->line);
            if (r < 0 || w->ended) {
                w->end_err = r < 0 ? r : w->end_err;
                return -1;
            }
        }
    }
    return 0;
}

static void on_watch_done(void *arg, int err, aw_http_response *resp)
{
    cl_etcd_watch *w = arg;
    if (w->ended) {
        if (w->close_later) {
            w->close_later = false;
            aw_http_close(w->http, on_watch_closed, w);
        }
        return;
    }
    int r = w->end_err;
    if (!r && w->line.len) /* a last line without its newline */
        r = watch_line(w, w->line.data, w->line.len);
    if (!r)
        r = err == AW_HTTP_E_CANCELED ? CL_ETCD_E_CANCELED
            : err                     ? CL_ETCD_E_UNAVAILABLE
            : resp->status != 200     ? CL_ETCD_E_REFUSED
                                      : CL_ETCD_E_UNAVAILABLE; /* the stream ended */
    if (err && aw_http_err_retryable(err) && w->e->n_urls > 1) {
        /* the next watch (the caller restarts it) goes elsewhere, unless
         * another call has moved on from this endpoint already */
        if (w->e->current == w->at)
            w->e->current = (w->at + 1) % w->e->n_urls;
        w->e->stats.failovers++;
    }
    watch_end(w, r);
}

int cl_etcd_watch_start(cl_etcd *e, const char *key, bool prefix, int64_t start_revision,
                        const cl_etcd_watch_cbs *cbs, cl_etcd_watch **out)
{
    if (e->closing)
        return CL_ETCD_E_CANCELED;
    cl_etcd_watch *w = es_calloc(1, sizeof *w);
    if (!w)
        return CL_ETCD_E_NOMEM;
    w->e = e;
    w->cbs = *cbs;
    es_buf_init(&w->body, CL_ETCD_REQUEST_MAX);
    es_buf_init(&w->line, CL_ETCD_ANSWER_MAX);
    int r = built(cl_wire_watch(&w->body, key, prefix, start_revision), &w->body);
    if (r == 0 && aw_http_create(e->loop, &w->http) != 0)
        r = CL_ETCD_E_NOMEM;
    if (r < 0) {
        es_buf_free(&w->body);
        es_free(w);
        return r;
    }
    char url[CL_ETCD_URL_MAX + 16];
    w->at = e->current;
    snprintf(url, sizeof url, "%s/v3/watch", e->urls[w->at]);
    aw_http_header h[] = {{"Content-Type", "application/json"}};
    aw_http_request q = {.method = "POST",
                         .url = url,
                         .headers = h,
                         .n_headers = 1,
                         .body = w->body.data,
                         .body_len = w->body.len,
                         .timeout_ms = -1,
                         .connect_timeout_ms = e->timeout_ms,
                         .max_body = CL_ETCD_ANSWER_MAX,
                         .no_proxy = true,
                         .ca_file = e->ca_file,
                         .client_cert = e->cert,
                         .client_key = e->key,
                         .on_data = on_watch_data};
    e->stats.requests++;
    if (aw_http_start(w->http, &q, on_watch_done, w) != 0) {
        aw_http_close(w->http, NULL, NULL);
        es_buf_free(&w->body);
        es_free(w);
        return CL_ETCD_E_UNAVAILABLE;
    }
    w->next = e->watches;
    e->watches = w;
    if (out)
        *out = w;
    return 0;
}

void cl_etcd_watch_cancel(cl_etcd_watch *w)
{
    if (w && !w->ended)
        watch_end(w, CL_ETCD_E_CANCELED);
}

/* ---- life ------------------------------------------------------------- */

static char *dup_opt(const char *s, bool *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = es_strdup(s);
    if (!d)
        *oom = true;
    return d;
}

int cl_etcd_create(uv_loop_t *loop, const cl_etcd_config *cfg, cl_etcd **out, char *why,
                   size_t whylen)
{
    cl_etcd *e = es_calloc(1, sizeof *e);
    if (!e)
        return CL_ETCD_E_NOMEM;
    int n = cl_etcd_parse_endpoints(cfg->endpoints, e->urls, CL_ETCD_ENDPOINTS_MAX, why, whylen);
    if (n < 0) {
        es_free(e);
        return CL_ETCD_E_INVALID;
    }
    bool oom = false;
    e->loop = loop;
    e->n_urls = (size_t)n;
    e->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : CL_ETCD_TIMEOUT_MS;
    e->ca_file = dup_opt(cfg->ca_file, &oom);
    e->cert = dup_opt(cfg->cert, &oom);
    e->key = dup_opt(cfg->key, &oom);
    if (oom || aw_http_create(loop, &e->http) != 0) {
        es_free(e->ca_file);
        es_free(e->cert);
        es_free(e->key);
        es_free(e);
        return CL_ETCD_E_NOMEM;
    }
    *out = e;
    return 0;
}

static void on_http_closed(void *arg)
{
    cl_etcd *e = arg;
    e->pending_close--;
    maybe_free(e);
}

void cl_etcd_close(cl_etcd *e, void (*closed)(void *arg), void *arg)
{
    if (!e || e->closing)
        return;
    e->closing = true;
    e->closed = closed;
    e->closed_arg = arg;
    e->pending_close++; /* the unary client */
    while (e->watches)
        watch_end(e->watches, CL_ETCD_E_CANCELED);
    aw_http_close(e->http, on_http_closed, e);
}
