/* client.c - the connection pool, the request queue and API version
 * negotiation. */
#include "docker/internal.h"

#include "common/alloc.h"
#include "common/json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

typedef enum neg_state {
    NEG_NONE,
    NEG_PENDING,
    NEG_DONE,
} neg_state;

struct dk_client {
    uv_loop_t *loop;
    char *path;
    uint64_t timeout_ms;
    uint64_t create_timeout_ms, start_timeout_ms;
    size_t max_conns;
    es_http_limits lim;
    dk__conn *conns;
    size_t nconns;
    dk__req *qhead, *qtail;
    neg_state neg;
    char version[16]; /* "1.41" */
    bool freeing;
    int in_callbacks; /* > 0 while user callbacks may run: no destroy yet */
    dk_stats stats;
    /* finished request blocks kept for the next operations, wiped, with
     * their buffers: a request then allocates nothing (its op context,
     * path, body and answer buffers are all in or hung on the block), and
     * does not walk malloc's cold metadata after every sleep */
    dk__req *spares;
    size_t nspares;
};

#define SPARES_MAX 4

static const dk__conn_owner pool_ops;

const char *dk_strerror(int err)
{
    switch (err) {
    case DK_E_BAD_REQUEST:
        return "Docker rejected the request (400)";
    case DK_E_NOT_FOUND:
        return "Docker: no such object (404)";
    case DK_E_CONFLICT:
        return "Docker: conflict (409)";
    case DK_E_SERVER:
        return "Docker daemon error (500)";
    case DK_E_STATUS:
        return "unexpected Docker response status";
    case DK_E_PROTOCOL:
        return "unexpected Docker response body";
    case DK_E_PULL:
        return "image pull failed";
    case DK_E_LINE_TOO_LONG:
        return "Docker stream line too long";
    case DK_E_BAD_HOST:
        return "Docker host is not a unix:// socket path";
    default:
        return es_http_strerror(err);
    }
}

int dk_client_create(uv_loop_t *loop, const dk_options *opt, dk_client **out)
{
    const char *h = opt->host;
    if (!h || strncmp(h, "unix://", 7) != 0 || h[7] != '/')
        return DK_E_BAD_HOST;
    if (strlen(h + 7) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    dk_client *c = es_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->path = es_strdup(h + 7);
    if (!c->path) {
        es_free(c);
        return -ENOMEM;
    }
    c->loop = loop;
    c->timeout_ms = opt->timeout_ms ? opt->timeout_ms : DK__DEFAULT_TIMEOUT_MS;
    c->create_timeout_ms = opt->create_timeout_ms ? opt->create_timeout_ms : DK__CREATE_TIMEOUT_MS;
    c->start_timeout_ms = opt->start_timeout_ms ? opt->start_timeout_ms : DK__START_TIMEOUT_MS;
    c->max_conns = opt->max_conns ? opt->max_conns : 4;
    c->lim = es_http_default_limits;
    c->lim.max_header_bytes = opt->max_header_bytes ? opt->max_header_bytes : 16 * 1024;
    c->lim.max_headers = opt->max_headers ? opt->max_headers : 100;
    c->lim.max_body = opt->max_body ? opt->max_body : 8 * 1024 * 1024;
    *out = c;
    return 0;
}

static void destroy(dk_client *c)
{
    while (c->spares) {
        dk__req *r = c->spares;
        c->spares = r->next;
        dk__req_free(r);
    }
    es_free(c->path);
    es_free(c);
}

dk__req *dk__client_req(dk_client *c, const char *method, bool versioned)
{
    dk__req *r = c->spares;
    if (r) {
        c->spares = r->next;
        c->nspares--;
    } else if (!(r = dk__req_alloc())) {
        return NULL;
    }
    if (dk__req_setup(r, method, versioned) < 0) {
        dk__req_free(r);
        return NULL;
    }
    return r;
}

void dk__client_recycle(dk_client *c, dk__req *r)
{
    if (!r)
        return;
    if (c->freeing || c->nspares >= SPARES_MAX || !dk__req_reusable(r)) {
        dk__req_free(r);
        return;
    }
    dk__req_clear(r);
    r->next = c->spares;
    c->spares = r;
    c->nspares++;
}

/* A user callback may free the client: hold it while they run. */
static void hold(dk_client *c)
{
    c->in_callbacks++;
}

static void release(dk_client *c)
{
    if (--c->in_callbacks == 0 && c->freeing && c->nconns == 0)
        destroy(c);
}

static dk__req *pop(dk_client *c)
{
    dk__req *r = c->qhead;
    if (r) {
        c->qhead = r->next;
        if (!c->qhead)
            c->qtail = NULL;
        r->next = NULL;
    }
    return r;
}

void dk_client_free(dk_client *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = true;
    hold(c);
    dk__req *r;
    while ((r = pop(c)))
        r->done(r, -ECANCELED);
    for (dk__conn *k = c->conns; k; k = k->next)
        dk__conn_close(k, -ECANCELED);
    release(c);
}

const char *dk_client_api_version(const dk_client *c)
{
    return c->neg == NEG_DONE ? c->version : NULL;
}

void dk_client_stats(const dk_client *c, dk_stats *out)
{
    *out = c->stats;
}

uint64_t dk__client_create_timeout(const dk_client *c)
{
    return c->create_timeout_ms;
}

uint64_t dk__client_start_timeout(const dk_client *c)
{
    return c->start_timeout_ms;
}

uv_loop_t *dk__client_loop(dk_client *c)
{
    return c->loop;
}

const char *dk__client_path(dk_client *c)
{
    return c->path;
}

const es_http_limits *dk__client_limits(dk_client *c)
{
    return &c->lim;
}

/* "1.43" -> 43 when the major is 1; -1 when unparsable. */
static int minor_of(const char *v)
{
    if (strncmp(v, "1.", 2) != 0 || v[2] < '0' || v[2] > '9')
        return -1;
    int m = 0;
    for (const char *s = v + 2; *s; s++) {
        if (*s < '0' || *s > '9' || m > 1000)
            return -1;
        m = m * 10 + (*s - '0');
    }
    return m;
}

static void negotiated(dk_client *c, const char *server)
{
    int m = 24; /* no header: API 1.24 */
    if (server && *server) {
        int s = minor_of(server);
        if (s >= 0)
            m = s;
    }
    if (m > DK_API_MINOR)
        m = DK_API_MINOR;
    snprintf(c->version, sizeof(c->version), "%d.%d", DK_API_MAJOR, m);
    c->neg = NEG_DONE;
}

static void pump(dk_client *c);

static void enqueue_front(dk_client *c, dk__req *r)
{
    r->next = c->qhead;
    c->qhead = r;
    if (!c->qtail)
        c->qtail = r;
}

/* The internal ping that gates versioned requests. */
static void on_negotiation(dk__req *r, int err)
{
    dk_client *c = r->op;
    hold(c);
    if (!err && r->status == 200) {
        negotiated(c, r->api_version);
    } else {
        /* fail what waited for it with the same cause; the next request
         * tries again */
        c->neg = NEG_NONE;
        int e = err ? err : dk__status_error(r, NULL);
        if (e == 0)
            e = DK_E_STATUS;
        dk__req *keep = NULL, **tail = &keep, *q;
        while ((q = pop(c))) {
            if (q->versioned) {
                q->done(q, e);
            } else {
                *tail = q;
                tail = &q->next;
            }
        }
        for (q = keep; q;) {
            dk__req *n = q->next;
            q->next = NULL;
            if (c->qtail)
                c->qtail->next = q;
            else
                c->qhead = q;
            c->qtail = q;
            q = n;
        }
    }
    dk__req_free(r);
    if (!c->freeing)
        pump(c);
    release(c);
}

static dk__conn *idle_conn(dk_client *c)
{
    for (dk__conn *k = c->conns; k; k = k->next)
        if (k->state == DK__CONN_IDLE && !k->req)
            return k;
    return NULL;
}

static void pump(dk_client *c)
{
    hold(c);
    while (c->qhead && !c->freeing) {
        dk__req *r = c->qhead;
        if (r->versioned && c->neg == NEG_NONE) {
            dk__req *p = dk__req_new("GET", "/_ping", false);
            if (!p) {
                pop(c)->done(r, -ENOMEM);
                continue;
            }
            p->negotiation = true;
            p->op = c;
            p->done = on_negotiation;
            p->timeout_ms = c->timeout_ms;
            p->deadline = uv_now(c->loop) + c->timeout_ms;
            c->neg = NEG_PENDING;
            enqueue_front(c, p);
            continue;
        }
        if (r->versioned && c->neg == NEG_PENDING)
            break;
        uint64_t now = uv_now(c->loop);
        if (r->deadline <= now) {
            pop(c)->done(r, -ETIMEDOUT);
            continue;
        }
        /* a retry goes to a new connection: the idle ones may be as stale
         * as the one it failed on (dockerd restarted) */
        dk__conn *k = r->fresh_only ? NULL : idle_conn(c);
        if (!k) {
            if (c->nconns >= c->max_conns)
                break;
            k = dk__conn_new(c->loop, c->path, &c->lim, &pool_ops, c);
            if (!k) {
                pop(c)->done(r, -ENOMEM);
                continue;
            }
            k->next = c->conns;
            c->conns = k;
            c->nconns++;
            c->stats.connects++;
        } else {
            c->stats.reused++;
        }
        pop(c);
        c->stats.requests++;
        dk__conn_send(k, r, r->versioned ? c->version : NULL, now);
    }
    release(c);
}

static void pool_idle(dk__conn *k, void *owner)
{
    (void)k;
    pump(owner);
}

static void pool_closed(dk__conn *k, void *owner)
{
    dk_client *c = owner;
    for (dk__conn **pp = &c->conns; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    c->nconns--;
    if (c->freeing) {
        if (c->nconns == 0 && c->in_callbacks == 0)
            destroy(c);
        return;
    }
    pump(c);
}

/* The request failed on a stale kept-alive connection (conn.c, "Retries"):
 * first in line again, with its deadline unchanged. */
static void pool_retry(dk__conn *k, dk__req *r, void *owner)
{
    (void)k;
    dk_client *c = owner;
    c->stats.retries++;
    if (c->freeing) {
        hold(c);
        r->done(r, -ECANCELED);
        release(c);
        return;
    }
    enqueue_front(c, r);
    pump(c);
}

static const dk__conn_owner pool_ops = {pool_idle, pool_closed, pool_retry};

void dk__client_submit(dk_client *c, dk__req *r)
{
    if (c->freeing) {
        hold(c);
        r->done(r, -ECANCELED);
        release(c);
        return;
    }
    if (!r->timeout_ms)
        r->timeout_ms = c->timeout_ms;
    /* the loop's clock is the time its iteration began: a caller that
     * blocked (outside the loop, or long in a callback) would get a deadline
     * already past, fail with ETIMEDOUT and cost a kept-alive connection
     * (bench_docker: 8-12 connections instead of 4, all from this) */
    uv_update_time(c->loop);
    r->deadline = uv_now(c->loop) + r->timeout_ms;
    r->resp.max = c->lim.max_body;
    r->next = NULL;
    if (c->qtail)
        c->qtail->next = r;
    else
        c->qhead = r;
    c->qtail = r;
    pump(c);
}

int dk__status_error(const dk__req *r, char **msg)
{
    if (r->status >= 200 && r->status < 300)
        return 0;
    if (msg && r->resp.len) {
        es_json *j = NULL;
        if (es_json_parse(r->resp.data, r->resp.len, &es_json_default_limits, &j, NULL, 0) == 0) {
            const char *m = es_json_get_str(j, "message");
            if (m)
                *msg = es_strdup(m);
            es_json_free(j);
        }
    }
    switch (r->status) {
    case 400:
        return DK_E_BAD_REQUEST;
    case 404:
        return DK_E_NOT_FOUND;
    case 409:
        return DK_E_CONFLICT;
    case 500:
        return DK_E_SERVER;
    default:
        return DK_E_STATUS;
    }
}

/* Unreserved characters (RFC 3986 2.3) are copied in runs, the rest
 * percent-encoded; no printf: names and ids are encoded for every request. */
int dk__urlencode(es_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (;;) {
        size_t run = 0;
        for (unsigned char ch; (ch = (unsigned char)s[run]) != 0; run++)
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~'))
                break;
        int e = run ? es_buf_append(out, s, run) : 0;
        if (e < 0)
            return e;
        s += run;
        if (!*s)
            return 0;
        unsigned char ch = (unsigned char)*s++;
        char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
        if ((e = es_buf_append(out, esc, sizeof(esc))) < 0)
            return e;
    }
}
