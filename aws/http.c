#include "aws/http.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "common/alloc.h"
#include "common/secure.h"

/* One request header line "Name: value" handed to curl; the longest we send is
 * X-Amz-Security-Token (a session token, a few KiB). */
#define AW_HTTP_HEADER_LINE_MAX (64 * 1024)

/* One socket curl asked us to watch. Freed in its close callback. */
typedef struct http_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    aw_http *h;
    struct http_sock *next;
} http_sock;

/* One request in flight. */
typedef struct http_req {
    aw_http *h;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    size_t body_len;
    size_t max_body;
    bool too_big;
    bool aborted; /* on_data asked to end the stream */
    int (*on_data)(void *arg, const char *p, size_t n);
    aw_http_cb cb;
    void *arg;
    aw_http_response resp;
    struct http_req *prev, *next;
} http_req;

struct aw_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    http_sock *socks;
    http_req *reqs;
    int open_handles; /* timer + polls not yet closed */
    bool closing;
    void (*closed)(void *);
    void *closed_arg;
    aw_http_stats stats;
    char *ca_file; /* aw_http_set_ca_file, or NULL */
};

const char *aw_http_strerror(int err)
{
    switch (err) {
    case AW_HTTP_OK:
        return "ok";
    case AW_HTTP_E_TIMEOUT:
        return "request timed out";
    case AW_HTTP_E_CONNECT:
        return "could not connect";
    case AW_HTTP_E_TLS:
        return "TLS handshake or certificate verification failed";
    case AW_HTTP_E_BODY_TOO_BIG:
        return "response body larger than allowed";
    case AW_HTTP_E_PROTOCOL:
        return "HTTP protocol error";
    case AW_HTTP_E_CANCELED:
        return "request canceled";
    case AW_HTTP_E_NOMEM:
        return "out of memory";
    case AW_HTTP_E_INVALID:
        return "invalid request";
    default:
        return "unknown HTTP error";
    }
}

bool aw_http_err_retryable(int err)
{
    return err == AW_HTTP_E_TIMEOUT || err == AW_HTTP_E_CONNECT || err == AW_HTTP_E_PROTOCOL;
}

static int map_curl(CURLcode c, bool too_big)
{
    if (too_big)
        return AW_HTTP_E_BODY_TOO_BIG;
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return AW_HTTP_E_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return AW_HTTP_E_CONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return AW_HTTP_E_TLS;
    case CURLE_FILESIZE_EXCEEDED:
        return AW_HTTP_E_BODY_TOO_BIG;
    case CURLE_OUT_OF_MEMORY:
        return AW_HTTP_E_NOMEM;
    default:
        return AW_HTTP_E_PROTOCOL;
    }
}

/* ---- requests --------------------------------------------------------- */

static void slist_free_secret(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        if (p->data)
            es_wipe(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static void req_free(http_req *r)
{
    if (!r)
        return;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    slist_free_secret(r->headers);
    if (r->body) {
        es_wipe(r->body, r->body_len);
        es_free(r->body);
    }
    es_buf_free_secret(&r->resp.body);
    es_free(r);
}

static void req_unlink(http_req *r)
{
    aw_http *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    h->stats.in_flight--;
}

/* Ends a request: out of the multi, callback, free. */
static void req_finish(http_req *r, int err)
{
    aw_http *h = r->h;
    CURLMcode mc = curl_multi_remove_handle(h->multi, r->easy);
    if (mc != CURLM_OK && err == 0)
        err = AW_HTTP_E_PROTOCOL;
    req_unlink(r);
    if (err == 0) {
        long code = 0, nconn = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nconn);
        r->resp.status = code;
        h->stats.connects += (unsigned long)(nconn > 0 ? nconn : 0);
        h->stats.completed++;
    } else {
        h->stats.failed++;
        h->stats.body_too_big += err == AW_HTTP_E_BODY_TOO_BIG;
        h->stats.timeouts += err == AW_HTTP_E_TIMEOUT;
    }
    r->cb(r->arg, err, &r->resp);
    req_free(r);
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    http_req *r = ud;
    size_t len = size * n;
    if (r->on_data) {
        if (r->on_data(r->arg, p, len) < 0) {
            r->aborted = true;
            return 0; /* CURLE_WRITE_ERROR */
        }
        return len;
    }
    if (r->resp.body.len + len > r->max_body) {
        r->too_big = true;
        return 0; /* CURLE_WRITE_ERROR */
    }
    if (es_buf_append(&r->resp.body, p, len) < 0)
        return 0;
    return len;
}

static void copy_header_value(char *dst, size_t dstlen, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    http_req *r = ud;
    size_t len = size * n;
    static const char rid1[] = "x-amzn-requestid:", rid2[] = "x-amz-request-id:",
                      ct[] = "content-type:", date[] = "date:";
    if (len > sizeof rid1 - 1 && strncasecmp(p, rid1, sizeof rid1 - 1) == 0)
        copy_header_value(r->resp.request_id, sizeof r->resp.request_id, p + sizeof rid1 - 1,
                          len - (sizeof rid1 - 1));
    else if (len > sizeof rid2 - 1 && strncasecmp(p, rid2, sizeof rid2 - 1) == 0 &&
             !r->resp.request_id[0])
        copy_header_value(r->resp.request_id, sizeof r->resp.request_id, p + sizeof rid2 - 1,
                          len - (sizeof rid2 - 1));
    else if (len > sizeof ct - 1 && strncasecmp(p, ct, sizeof ct - 1) == 0)
        copy_header_value(r->resp.content_type, sizeof r->resp.content_type, p + sizeof ct - 1,
                          len - (sizeof ct - 1));
    else if (len > sizeof date - 1 && strncasecmp(p, date, sizeof date - 1) == 0) {
        char v[AW_HTTP_DATE_MAX + 1];
        copy_header_value(v, sizeof v, p + sizeof date - 1, len - (sizeof date - 1));
        time_t t = curl_getdate(v, NULL);
        r->resp.date = t > 0 ? t : 0;
    }
    /* a new response (after 100-continue or a proxy CONNECT) starts over */
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        r->resp.request_id[0] = '\0';
        r->resp.date = 0;
        es_buf_reset_secret(&r->resp.body);
    }
    return len;
}

static int header_line(struct curl_slist **l, const char *name, const char *value)
{
    es_buf b;
    es_buf_init(&b, AW_HTTP_HEADER_LINE_MAX);
    int rc = es_buf_printf(&b, "%s: %s", name, value);
    if (rc == 0 && (strchr(es_buf_cstr(&b), '\r') || strchr(es_buf_cstr(&b), '\n')))
        rc = -EINVAL;
    if (rc < 0) {
        es_buf_free_secret(&b);
        return rc == -ENOMEM ? AW_HTTP_E_NOMEM : AW_HTTP_E_INVALID;
    }
    struct curl_slist *n = curl_slist_append(*l, es_buf_cstr(&b));
    es_buf_free_secret(&b);
    if (!n)
        return AW_HTTP_E_NOMEM;
    *l = n;
    return 0;
}

#define SETOPT(e, o, v)                                                                            \
    do {                                                                                           \
        if (curl_easy_setopt(e, o, v) != CURLE_OK) {                                               \
            rc = AW_HTTP_E_INVALID;                                                                \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

int aw_http_start(aw_http *h, const aw_http_request *q, aw_http_cb cb, void *arg)
{
    if (!h || !q || !q->url || !q->method || !cb || (q->n_headers && !q->headers) ||
        q->n_headers > AW_HTTP_MAX_HEADERS || (q->body_len && !q->body))
        return AW_HTTP_E_INVALID;
    if (h->closing)
        return AW_HTTP_E_CANCELED;
    int rc;
    http_req *r = es_calloc(1, sizeof *r);
    if (!r)
        return AW_HTTP_E_NOMEM;
    r->h = h;
    r->cb = cb;
    r->arg = arg;
    r->on_data = q->on_data;
    r->max_body = q->max_body ? q->max_body : AW_HTTP_DEFAULT_MAX_BODY;
    es_buf_init(&r->resp.body, r->max_body);
    r->easy = curl_easy_init();
    if (!r->easy) {
        rc = AW_HTTP_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < q->n_headers; i++)
        if ((rc = header_line(&r->headers, q->headers[i].name, q->headers[i].value)) < 0)
            goto out;
    /* curl would add these otherwise */
    if ((rc = header_line(&r->headers, "Expect", "")) < 0)
        goto out;
    if (q->body_len) {
        r->body = es_malloc(q->body_len);
        if (!r->body) {
            rc = AW_HTTP_E_NOMEM;
            goto out;
        }
        memcpy(r->body, q->body, q->body_len);
        r->body_len = q->body_len;
    }
    CURL *e = r->easy;
    SETOPT(e, CURLOPT_URL, q->url);
    SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(e, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(e, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    SETOPT(e, CURLOPT_TIMEOUT_MS,
           q->timeout_ms > 0   ? q->timeout_ms
           : q->timeout_ms < 0 ? 0L
                               : AW_HTTP_DEFAULT_TIMEOUT_MS);
    SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS,
           q->connect_timeout_ms > 0 ? q->connect_timeout_ms : AW_HTTP_DEFAULT_CONNECT_TIMEOUT_MS);
    if (!r->on_data)
        SETOPT(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_body);
    SETOPT(e, CURLOPT_HTTPHEADER, r->headers);
    SETOPT(e, CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(e, CURLOPT_WRITEDATA, r);
    SETOPT(e, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(e, CURLOPT_HEADERDATA, r);
    SETOPT(e, CURLOPT_PRIVATE, r);
    SETOPT(e, CURLOPT_USERAGENT, "ecs-secrets-agent/0.1");
    SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (q->no_proxy || q->unix_socket)
        SETOPT(e, CURLOPT_NOPROXY, "*");
    if (q->unix_socket)
        SETOPT(e, CURLOPT_UNIX_SOCKET_PATH, q->unix_socket);
    if (q->ca_file || h->ca_file) {
        SETOPT(e, CURLOPT_CAINFO, q->ca_file ? q->ca_file : h->ca_file);
        SETOPT(e, CURLOPT_CAPATH, (char *)NULL);
    }
    if (q->client_cert)
        SETOPT(e, CURLOPT_SSLCERT, q->client_cert);
    if (q->client_key)
        SETOPT(e, CURLOPT_SSLKEY, q->client_key);
    if (strcmp(q->method, "GET") == 0) {
        SETOPT(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(q->method, "POST") == 0 || strcmp(q->method, "PUT") == 0) {
        SETOPT(e, CURLOPT_POST, 1L);
        SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        SETOPT(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        if (q->method[1] == 'U')
            SETOPT(e, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (strcmp(q->method, "DELETE") == 0) {
        SETOPT(e, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        rc = AW_HTTP_E_INVALID;
        goto out;
    }
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        rc = AW_HTTP_E_PROTOCOL;
        goto out;
    }
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    h->stats.started++;
    h->stats.in_flight++;
    return 0;
out:
    req_free(r);
    return rc;
}

/* ---- the loop side ---------------------------------------------------- */

static void check_multi_info(aw_http *h)
{
    CURLMsg *m;
    int pending;
    while (!h->closing && (m = curl_multi_info_read(h->multi, &pending))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        void *priv = NULL;
        CURLcode res = m->data.result;
        if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
            continue;
        http_req *r = priv;
        req_finish(r, r->aborted ? AW_HTTP_E_CANCELED : map_curl(res, r->too_big));
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    http_sock *s = p->data;
    aw_http *h = s->h;
    if (h->closing)
        return;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    int running;
    /* s may be freed by the socket callback inside; use the copied fd */
    curl_socket_t fd = s->fd;
    if (curl_multi_socket_action(h->multi, fd, flags, &running) != CURLM_OK)
        return; /* the multi is unusable only on a bug; requests time out */
    check_multi_info(h);
}

static void on_timer(uv_timer_t *t)
{
    aw_http *h = t->data;
    int running;
    if (h->closing)
        return;
    h->stats.timer_wakeups++;
    if (curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running) != CURLM_OK)
        return;
    check_multi_info(h);
}

static void maybe_done(aw_http *h)
{
    if (h->open_handles > 0)
        return;
    void (*closed)(void *) = h->closed;
    void *arg = h->closed_arg;
    es_free(h->ca_file);
    es_free(h);
    if (closed)
        closed(arg);
}

static void on_sock_closed(uv_handle_t *hd)
{
    http_sock *s = hd->data;
    aw_http *h = s->h;
    es_free(s);
    h->open_handles--;
    if (h->closing)
        maybe_done(h);
}

static void sock_close(http_sock *s)
{
    aw_http *h = s->h;
    for (http_sock **pp = &h->socks; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static int on_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    (void)easy;
    aw_http *h = userp;
    http_sock *s = socketp;
    if (action == CURL_POLL_REMOVE) {
        if (s) {
            if (!h->closing)
                curl_multi_assign(h->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = es_calloc(1, sizeof *s);
        if (!s)
            return -1;
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            es_free(s);
            return -1;
        }
        s->fd = fd;
        s->h = h;
        s->poll.data = s;
        s->next = h->socks;
        h->socks = s;
        h->open_handles++;
        if (curl_multi_assign(h->multi, fd, s) != CURLM_OK) {
            sock_close(s);
            return -1;
        }
    }
    int ev = 0;
    if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    if (uv_poll_start(&s->poll, ev, on_poll) != 0) {
        curl_multi_assign(h->multi, fd, NULL);
        sock_close(s);
        return -1;
    }
    return 0;
}

static int on_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    aw_http *h = userp;
    if (timeout_ms < 0)
        return uv_timer_stop(&h->timer) == 0 ? 0 : -1;
    /* 0 means "now": a 0 ms libuv timer runs on the next loop turn, never
     * from inside this callback (curl is not reentrant) */
    return uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

static void on_timer_closed(uv_handle_t *hd)
{
    aw_http *h = hd->data;
    h->open_handles--;
    maybe_done(h);
}

static void curl_global(void)
{
    /* curl_global_init is not thread-safe before 7.84 but is refcounted;
     * the daemon is single-threaded here. */
    static bool done;
    if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
        done = true;
}

int aw_http_set_ca_file(aw_http *h, const char *path)
{
    char *copy = NULL;
    if (path && !(copy = es_strdup(path)))
        return AW_HTTP_E_NOMEM;
    es_free(h->ca_file);
    h->ca_file = copy;
    return 0;
}

int aw_http_create(uv_loop_t *loop, aw_http **out)
{
    if (!loop || !out)
        return AW_HTTP_E_INVALID;
    curl_global();
    aw_http *h = es_calloc(1, sizeof *h);
    if (!h)
        return AW_HTTP_E_NOMEM;
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi) {
        es_free(h);
        return AW_HTTP_E_NOMEM;
    }
    if (uv_timer_init(loop, &h->timer) != 0) {
        curl_multi_cleanup(h->multi);
        es_free(h);
        return AW_HTTP_E_PROTOCOL;
    }
    h->timer.data = h;
    h->open_handles = 1;
    if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timeout) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 128L) != CURLM_OK) {
        aw_http_close(h, NULL, NULL);
        return AW_HTTP_E_PROTOCOL;
    }
    *out = h;
    return 0;
}

void aw_http_close(aw_http *h, void (*closed)(void *arg), void *arg)
{
    if (!h || h->closing)
        return;
    h->closing = true;
    h->closed = closed;
    h->closed_arg = arg;
    while (h->reqs)
        req_finish(h->reqs, AW_HTTP_E_CANCELED);
    /* closes the cached connections; curl may report CURL_POLL_REMOVE */
    curl_multi_cleanup(h->multi);
    h->multi = NULL;
    while (h->socks)
        sock_close(h->socks);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

void aw_http_get_stats(const aw_http *h, aw_http_stats *out)
{
    *out = h->stats;
}
