#include "aws/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/xml.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

#define RETRY_COST 5
#define RETRY_COST_TIMEOUT 10
#define NO_RETRY_INCREMENT 1

typedef enum call_state {
    CALL_SENDING = 0,
    CALL_BACKOFF,
    CALL_CLOSING,
} call_state;

typedef struct call call;

struct aw_client {
    uv_loop_t *loop;
    aw_http *http;
    aw_signer *signer;
    char region[AW_REGION_MAX + 1];
    char *override[AW_SVC_COUNT];
    char *unix_socket; /* for the overrides, or NULL */
    char **envp;       /* copy, or NULL for the process environment */
    unsigned max_attempts, base_delay_ms, max_backoff_ms, max_tokens, tokens;
    long timeout_ms, connect_timeout_ms;
    size_t max_body;
    call *calls;
    unsigned live_calls;
    bool closing, http_closed;
    void (*closed)(void *);
    void *closed_arg;
    aw_client_stats stats;
};

/* One call: every attempt of one operation. */
struct call {
    aw_client *c;
    call_state state;
    aw_service svc;
    aw_endpoint ep;
    char operation[128];
    char method[8]; /* REST: "GET"; else "" (POST) */
    char *path;     /* REST: the path sent, encoded; else NULL */
    char *body;
    size_t body_len;
    char *akid, *secret, *token;
    unsigned attempt;
    unsigned spent; /* retry tokens this call took */
    uv_timer_t timer;
    aw_call_cb cb;
    void *arg;
    aw_error err;
    call *prev, *next;
};

/* ---- errors ----------------------------------------------------------- */

static const char *const throttling_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
};

static const char *const transient_codes[] = {
    "RequestTimeout",  "RequestTimeoutException", "PriorRequestNotComplete", "InternalError",
    "InternalFailure", "InternalServerError",     "InternalServiceError",    "ServiceUnavailable",
};

static bool in_set(const char *code, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(code, set[i]) == 0)
            return true;
    return false;
}

bool aw_error_is(const aw_error *e, const char *code)
{
    return e && e->kind == AW_ERR_SERVICE && strcmp(e->code, code) == 0;
}

bool aw_error_is_throttling(const aw_error *e)
{
    if (!e || e->kind != AW_ERR_SERVICE)
        return false;
    return e->status == 429 ||
           in_set(e->code, throttling_codes, sizeof throttling_codes / sizeof *throttling_codes);
}

static const char *const clock_skew_codes[] = {"RequestTimeTooSkewed", "RequestExpired"};
static const char *const signature_codes[] = {"InvalidSignatureException", "SignatureDoesNotMatch",
                                              "AuthFailure"};

bool aw_error_is_clock_skew(const aw_error *e)
{
    if (!e || e->kind != AW_ERR_SERVICE)
        return false;
    if (in_set(e->code, clock_skew_codes, sizeof clock_skew_codes / sizeof *clock_skew_codes))
        return true;
    return in_set(e->code, signature_codes, sizeof signature_codes / sizeof *signature_codes) &&
           (strstr(e->message, "Signature expired") || strstr(e->message, "not yet current"));
}

void aw_error_note_clock(aw_error *e, time_t service_date, time_t now)
{
    if (!aw_error_is_clock_skew(e) || service_date <= 0 || e->clock_skewed)
        return;
    e->clock_skewed = true;
    e->clock_skew_s = (long long)service_date - (long long)now;
    long long off = e->clock_skew_s < 0 ? -e->clock_skew_s : e->clock_skew_s;
    size_t n = strlen(e->message);
    snprintf(e->message + n, sizeof e->message - n,
             "%s(the host's clock is %lld s %s the service's)", n ? " " : "", off,
             e->clock_skew_s > 0 ? "behind" : "ahead of");
}

bool aw_error_retryable(const aw_error *e)
{
    if (!e)
        return false;
    if (e->kind == AW_ERR_TRANSPORT)
        return aw_http_err_retryable(e->http_err);
    if (e->kind != AW_ERR_SERVICE)
        return false;
    if (aw_error_is_throttling(e))
        return true;
    if (in_set(e->code, transient_codes, sizeof transient_codes / sizeof *transient_codes))
        return true;
    return e->status == 500 || e->status == 502 || e->status == 503 || e->status == 504;
}

void aw_error_unreadable(aw_error *e, int rc, const aw_http_response *resp)
{
    memset(e, 0, sizeof *e);
    e->kind = rc == -ENOMEM ? AW_ERR_NOMEM : AW_ERR_RESPONSE;
    e->status = resp->status;
    snprintf(e->request_id, sizeof e->request_id, "%s", resp->request_id);
}

void aw_error_format(const aw_error *e, char *out, size_t outlen)
{
    if (!outlen)
        return;
    switch (e ? e->kind : AW_ERR_NONE) {
    case AW_ERR_NONE:
        snprintf(out, outlen, "no error");
        break;
    case AW_ERR_TRANSPORT:
        snprintf(out, outlen, "%s (after %u attempts)", aw_http_strerror(e->http_err), e->attempts);
        break;
    case AW_ERR_SERVICE:
        snprintf(out, outlen, "%s%s%s (HTTP %ld%s%s)", e->code[0] ? e->code : "error",
                 e->message[0] ? ": " : "", e->message, e->status,
                 e->request_id[0] ? ", request id " : "", e->request_id);
        break;
    case AW_ERR_RESPONSE:
        snprintf(out, outlen, "malformed answer from the service (HTTP %ld)", e->status);
        break;
    case AW_ERR_INVALID:
        snprintf(out, outlen, "invalid request");
        break;
    case AW_ERR_NOMEM:
        snprintf(out, outlen, "out of memory");
        break;
    case AW_ERR_CANCELED:
        snprintf(out, outlen, "canceled");
        break;
    }
}

static void set_text(char *dst, size_t dstlen, const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    /* keep error text printable, one line */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
            dst[i] = ' ';
}

/* S3's error answer: <Error><Code>, <Message>; a HEAD's has no body, its
 * status then names it. */
static void parse_s3_error(aw_error *e, const aw_http_response *r)
{
    static const char *const paths[] = {"Error/Code", "Error/Message", "Error/RequestId"};
    char *v[3];
    if (r->body.len && aw_xml_pick(es_buf_cstr(&r->body), r->body.len, paths, 3, v) == 0) {
        set_text(e->code, sizeof e->code, v[0]);
        set_text(e->message, sizeof e->message, v[1]);
        if (v[2] && !e->request_id[0])
            set_text(e->request_id, sizeof e->request_id, v[2]);
        aw_xml_pick_free(v, 3);
    }
    if (!e->code[0])
        snprintf(e->code, sizeof e->code, "%ld", r->status);
}

/* Fills e from an error answer (JSON 1.1, query XML or S3's XML). */
static void parse_error(aw_error *e, bool query, bool s3, const aw_http_response *r)
{
    e->kind = AW_ERR_SERVICE;
    e->status = r->status;
    e->code[0] = e->message[0] = '\0';
    set_text(e->request_id, sizeof e->request_id, r->request_id);
    if (s3) {
        parse_s3_error(e, r);
        return;
    }
    if (query) {
        static const char *const paths[] = {
            "ErrorResponse/Error/Code", "ErrorResponse/Error/Message", "ErrorResponse/RequestId"};
        char *v[3];
        if (aw_xml_pick(es_buf_cstr(&r->body), r->body.len, paths, 3, v) == 0) {
            set_text(e->code, sizeof e->code, v[0]);
            set_text(e->message, sizeof e->message, v[1]);
            if (v[2] && !e->request_id[0])
                set_text(e->request_id, sizeof e->request_id, v[2]);
            aw_xml_pick_free(v, 3);
        }
        return;
    }
    es_json *j = NULL;
    es_json_limits lim = es_json_default_limits;
    if (es_json_parse(es_buf_cstr(&r->body), r->body.len, &lim, &j, NULL, 0) != 0)
        return;
    const char *type = es_json_get_str(j, "__type");
    if (!type)
        type = es_json_get_str(j, "code");
    if (type) {
        const char *hash = strrchr(type, '#');
        set_text(e->code, sizeof e->code, hash ? hash + 1 : type);
        /* botocore also drops a ":http://..." suffix */
        char *colon = strchr(e->code, ':');
        if (colon)
            *colon = '\0';
    }
    const char *msg = es_json_get_str(j, "message");
    if (!msg)
        msg = es_json_get_str(j, "Message");
    set_text(e->message, sizeof e->message, msg);
    es_json_free_secret(j);
}

/* ---- helpers ---------------------------------------------------------- */

int aw_form_append(es_buf *out, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc;
    if (out->len && (rc = es_buf_append_char(out, '&')) < 0)
        return rc;
    const char *parts[2] = {key, value};
    for (int k = 0; k < 2; k++) {
        if (k && (rc = es_buf_append_char(out, '=')) < 0)
            return rc;
        for (const unsigned char *p = (const unsigned char *)parts[k]; *p; p++) {
            if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '_' || *p == '.' || *p == '~') {
                rc = es_buf_append_char(out, (char)*p);
            } else {
                char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
                rc = es_buf_append(out, e, 3);
            }
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int aw_parse_iso8601(const char *s, time_t *out)
{
    /* YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM) */
    if (!s || strlen(s) < 20)
        return -EINVAL;
    int v[6];
    static const int off[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
    static const char sep[6] = {'-', '-', 'T', ':', ':', 0};
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < len[i]; k++) {
            char c = s[off[i] + k];
            if (c < '0' || c > '9')
                return -EINVAL;
            v[i] = v[i] * 10 + (c - '0');
        }
        if (sep[i] && s[off[i] + len[i]] != sep[i] && !(i == 2 && s[off[i] + len[i]] == 't'))
            return -EINVAL;
    }
    const char *p = s + 19;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    long tz = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
        if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
            return -EINVAL;
        tz = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return -EINVAL;
    struct tm tm = {0};
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out = t - tz;
    return 0;
}

/* ---- client ----------------------------------------------------------- */

static void free_envp(char **envp)
{
    if (!envp)
        return;
    for (char **p = envp; *p; p++)
        es_free(*p);
    es_free(envp);
}

static void client_free(aw_client *c)
{
    for (int i = 0; i < AW_SVC_COUNT; i++)
        es_free(c->override[i]);
    es_free(c->unix_socket);
    free_envp(c->envp);
    aw_signer_free(c->signer);
    void (*closed)(void *) = c->closed;
    void *arg = c->closed_arg;
    es_free(c);
    if (closed)
        closed(arg);
}

static void maybe_free_client(aw_client *c)
{
    if (c->closing && c->http_closed && c->live_calls == 0)
        client_free(c);
}

int aw_client_create(uv_loop_t *loop, const aw_client_config *cfg, aw_client **out)
{
    if (!loop || !cfg || !out || !aw_region_valid(cfg->region))
        return -EINVAL;
    aw_client *c = es_calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int rc = -ENOMEM;
    c->loop = loop;
    snprintf(c->region, sizeof c->region, "%s", cfg->region);
    c->max_attempts = cfg->max_attempts ? cfg->max_attempts : 3;
    c->base_delay_ms = cfg->base_delay_ms ? cfg->base_delay_ms : 100;
    c->max_backoff_ms = cfg->max_backoff_ms ? cfg->max_backoff_ms : 20000;
    c->max_tokens = c->tokens = cfg->retry_tokens ? cfg->retry_tokens : 500;
    c->timeout_ms = cfg->timeout_ms;
    c->connect_timeout_ms = cfg->connect_timeout_ms;
    c->max_body = cfg->max_body;
    for (int i = 0; i < AW_SVC_COUNT; i++)
        if (cfg->endpoint_override[i] && !(c->override[i] = es_strdup(cfg->endpoint_override[i])))
            goto fail;
    if (cfg->unix_socket && !(c->unix_socket = es_strdup(cfg->unix_socket)))
        goto fail;
    if (cfg->envp) {
        size_t n = 0;
        while (cfg->envp[n])
            n++;
        if (!(c->envp = es_calloc(n + 1, sizeof *c->envp)))
            goto fail;
        for (size_t i = 0; i < n; i++)
            if (!(c->envp[i] = es_strdup(cfg->envp[i])))
                goto fail;
    }
    if (!(c->signer = aw_signer_create()))
        goto fail;
    if (aw_http_create(loop, &c->http) != 0) {
        rc = -EIO;
        goto fail;
    }
    if (cfg->ca_file && aw_http_set_ca_file(c->http, cfg->ca_file) != 0) {
        aw_http_close(c->http, NULL, NULL); /* its memory goes as the loop runs */
        goto fail;
    }
    *out = c;
    return 0;
fail:
    c->closed = NULL;
    client_free(c);
    return rc;
}

const char *aw_client_region(const aw_client *c)
{
    return c->region;
}

uv_loop_t *aw_client_loop(const aw_client *c)
{
    return c->loop;
}

aw_http *aw_client_http(aw_client *c)
{
    return c->http;
}

void aw_client_get_stats(const aw_client *c, aw_client_stats *out)
{
    *out = c->stats;
    out->retry_tokens = c->tokens;
}

/* ---- calls ------------------------------------------------------------ */

static void call_set_state(call *k, call_state to);

static void on_call_closed(uv_handle_t *h)
{
    call *k = h->data;
    aw_client *c = k->c;
    es_free(k);
    c->live_calls--;
    maybe_free_client(c);
}

static void call_free_material(call *k)
{
    es_free_secret_str(k->akid);
    es_free_secret_str(k->secret);
    es_free_secret_str(k->token);
    k->akid = k->secret = k->token = NULL;
    es_free(k->path);
    k->path = NULL;
    if (k->body) {
        es_wipe(k->body, k->body_len);
        es_free(k->body);
        k->body = NULL;
    }
}

/* Reports and ends the call. */
static void call_finish(call *k, const aw_error *err, aw_http_response *resp)
{
    aw_client *c = k->c;
    if (k->prev)
        k->prev->next = k->next;
    else
        c->calls = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    call_set_state(k, CALL_CLOSING);
    call_free_material(k);
    k->cb(k->arg, err, resp);
}

static void call_fail(call *k, aw_error_kind kind)
{
    k->err.kind = kind;
    k->err.attempts = k->attempt;
    call_finish(k, &k->err, NULL);
}

static void on_backoff(uv_timer_t *t);
static void on_http(void *arg, int err, aw_http_response *resp);
static void send_attempt(call *k, const aw_http_request *q, aw_sigv4_result *sig);

/* host[:port] of an http(s) URL */
static int url_host(const char *url, char *out, size_t outlen)
{
    const char *p = strstr(url, "://");
    if (!p)
        return -EINVAL;
    p += 3;
    size_t n = strcspn(p, "/?#");
    if (n == 0 || n >= outlen || memchr(p, '@', n))
        return -EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* Signs the request that `in` describes and sends it to url: the headers sent are the signed ones
 * (in->headers, in their order), then X-Amz-Date, the session token and Authorization. */
#define SIGNED_HEADERS_MAX 3
static void sign_and_send(call *k, const char *url, const aw_sigv4_input *in)
{
    aw_client *c = k->c;
    aw_sigv4_creds cr = {k->akid, k->secret, k->token};
    aw_sigv4_result sig;
    if (in->n_headers > SIGNED_HEADERS_MAX ||
        aw_signer_sign(c->signer, &cr, k->ep.signing_region, k->ep.signing_name, time(NULL), in,
                       &sig) != 0) {
        call_fail(k, AW_ERR_INVALID);
        return;
    }
    aw_http_header hh[SIGNED_HEADERS_MAX + 3];
    size_t n = 0;
    for (size_t i = 0; i < in->n_headers; i++)
        hh[n++] = (aw_http_header){in->headers[i].name, in->headers[i].value};
    hh[n++] = (aw_http_header){"X-Amz-Date", sig.amz_date};
    if (k->token && *k->token)
        hh[n++] = (aw_http_header){"X-Amz-Security-Token", k->token};
    hh[n++] = (aw_http_header){"Authorization", es_buf_cstr(&sig.authorization)};
    aw_http_request q = {.method = in->method,
                         .url = url,
                         .headers = hh,
                         .n_headers = n,
                         .body = k->body,
                         .body_len = k->body_len,
                         .timeout_ms = c->timeout_ms,
                         .connect_timeout_ms = c->connect_timeout_ms,
                         .max_body = c->max_body,
                         .unix_socket = c->override[k->svc] ? c->unix_socket : NULL};
    send_attempt(k, &q, &sig);
}

/* One attempt of a REST call (S3): METHOD endpoint+path, signed as S3 signs. */
static void rest_attempt(call *k)
{
    char host[256], url[AW_ENDPOINT_URL_MAX + AW_CALL_PATH_MAX + 1], ph[65];
    if (url_host(k->ep.url, host, sizeof host) < 0) {
        call_fail(k, AW_ERR_INVALID);
        return;
    }
    snprintf(url, sizeof url, "%s%s", k->ep.url, k->path);
    const char *spath = strstr(url, "://") + 3;
    spath += strcspn(spath, "/");
    /* a sub-resource ("/bucket?location") is signed as the canonical query */
    char cpath[AW_CALL_PATH_MAX + 1];
    size_t pl = strcspn(spath, "?");
    snprintf(cpath, sizeof cpath, "%.*s", (int)pl, spath);
    aw_sigv4_sha256_hex(k->body ? k->body : "", k->body_len, ph);
    aw_header sh[2] = {{"Host", host}, {"X-Amz-Content-SHA256", ph}};
    aw_sigv4_input in = {k->method, cpath, spath[pl] ? spath + pl + 1 : NULL, sh, 2u, ph, true};
    sign_and_send(k, url, &in);
}

static void call_attempt(call *k)
{
    if (k->path) {
        rest_attempt(k);
        return;
    }
    bool query = aw_service_target_prefix(k->svc) == NULL;
    char host[256], target[256], url[AW_ENDPOINT_URL_MAX + 2], ph[65];
    const char *ctype =
        query ? "application/x-www-form-urlencoded; charset=utf-8" : "application/x-amz-json-1.1";
    if (url_host(k->ep.url, host, sizeof host) < 0) {
        call_fail(k, AW_ERR_INVALID);
        return;
    }
    snprintf(url, sizeof url, "%s/", k->ep.url);
    /* an endpoint URL may carry a path: sign what is sent */
    const char *spath = strstr(url, "://") + 3;
    spath += strcspn(spath, "/");
    snprintf(target, sizeof target, "%s.%s", query ? "" : aw_service_target_prefix(k->svc),
             k->operation);
    aw_sigv4_sha256_hex(k->body ? k->body : "", k->body_len, ph);
    aw_header sh[3] = {{"Host", host}, {"Content-Type", ctype}, {"X-Amz-Target", target}};
    aw_sigv4_input in = {"POST", spath, NULL, sh, query ? 2u : 3u, ph, false};
    sign_and_send(k, url, &in);
}

/* Sends one attempt's request q (its signature sig is released here). */
static void send_attempt(call *k, const aw_http_request *q, aw_sigv4_result *sig)
{
    aw_client *c = k->c;
    k->attempt++;
    c->stats.attempts++;
    int rc = aw_http_start(c->http, q, on_http, k);
    es_buf_free_secret(&sig->authorization);
    if (rc != 0) {
        k->err.kind = AW_ERR_TRANSPORT;
        k->err.http_err = rc;
        call_fail(k, rc == AW_HTTP_E_NOMEM      ? AW_ERR_NOMEM
                     : rc == AW_HTTP_E_CANCELED ? AW_ERR_CANCELED
                                                : AW_ERR_TRANSPORT);
        return;
    }
    call_set_state(k, CALL_SENDING);
}

static uint64_t backoff_ms(const aw_client *c, unsigned attempt)
{
    uint64_t cap = c->base_delay_ms;
    for (unsigned i = 1; i < attempt && cap < c->max_backoff_ms; i++)
        cap *= 2;
    if (cap > c->max_backoff_ms)
        cap = c->max_backoff_ms;
    uint32_t r = 0;
    if (es_random_bytes(&r, sizeof r) != 0)
        r = (uint32_t)rand();
    return cap ? (uint64_t)r % (cap + 1) : 0;
}

/* Decides between another attempt and the end. */
static void call_after_error(call *k)
{
    aw_client *c = k->c;
    k->err.attempts = k->attempt;
    unsigned cost = k->err.kind == AW_ERR_TRANSPORT && k->err.http_err == AW_HTTP_E_TIMEOUT
                        ? RETRY_COST_TIMEOUT
                        : RETRY_COST;
    if (!c->closing && aw_error_retryable(&k->err) && k->attempt < c->max_attempts) {
        if (c->tokens >= cost) {
            c->tokens -= cost;
            k->spent += cost;
            c->stats.retries++;
            if (uv_timer_start(&k->timer, on_backoff, backoff_ms(c, k->attempt), 0) == 0) {
                call_set_state(k, CALL_BACKOFF);
                return;
            }
        } else {
            c->stats.retry_budget_exhausted++;
        }
    }
    call_finish(k, &k->err, NULL);
}

static void on_backoff(uv_timer_t *t)
{
    call *k = t->data;
    call_attempt(k);
}

static void on_http(void *arg, int err, aw_http_response *resp)
{
    call *k = arg;
    aw_client *c = k->c;
    if (err == AW_HTTP_E_CANCELED) {
        call_fail(k, AW_ERR_CANCELED);
        return;
    }
    memset(&k->err, 0, sizeof k->err);
    if (err != 0) {
        k->err.kind = AW_ERR_TRANSPORT;
        k->err.http_err = err;
        call_after_error(k);
        return;
    }
    if (resp->status >= 200 && resp->status < 300) {
        /* refund: what this call's retries cost, or the small increment */
        unsigned back = k->spent ? k->spent : NO_RETRY_INCREMENT;
        c->tokens = c->tokens + back > c->max_tokens ? c->max_tokens : c->tokens + back;
        call_finish(k, NULL, resp);
        return;
    }
    parse_error(&k->err, aw_service_target_prefix(k->svc) == NULL, k->path != NULL, resp);
    aw_error_note_clock(&k->err, resp->date, time(NULL));
    call_after_error(k);
}

/* The one place a call changes state. */
static void call_set_state(call *k, call_state to)
{
    call_state from = k->state;
    if (from == CALL_CLOSING)
        return;
    k->state = to;
    if (to == CALL_CLOSING) {
        uv_timer_stop(&k->timer);
        uv_close((uv_handle_t *)&k->timer, on_call_closed);
    }
}

/* A REST call's method and path (S3 only: the other services' wire is
 * POST /); -EINVAL for a path that is not "/..." within AW_CALL_PATH_MAX. */
static int rest_fields(call *k, const aw_call *req)
{
    if ((k->svc == AW_SVC_S3) != (req->path != NULL))
        return -EINVAL;
    if (!req->path)
        return 0;
    size_t n = strlen(req->path);
    if (req->path[0] != '/' || n > AW_CALL_PATH_MAX || !req->method ||
        strlen(req->method) >= sizeof k->method)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)req->path[i] <= ' ' || req->path[i] == 0x7f || req->path[i] == '#')
            return -EINVAL;
    snprintf(k->method, sizeof k->method, "%s", req->method);
    return (k->path = es_strdup(req->path)) ? 0 : -ENOMEM;
}

int aw_call_start(aw_client *c, const aw_sigv4_creds *creds, const aw_call *req, aw_call_cb cb,
                  void *arg)
{
    if (!c || !creds || !creds->access_key_id || !creds->secret_access_key || !req || !cb ||
        !req->operation || (req->body_len && !req->body))
        return -EINVAL;
    if (c->closing)
        return -ECANCELED;
    call *k = es_calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    int rc;
    const char *region = req->region ? req->region : c->region;
    if ((rc = aw_endpoint_resolve(req->service, region, c->override[req->service],
                                  c->envp ? c->envp : NULL, &k->ep)) < 0) {
        es_free(k);
        return rc;
    }
    k->c = c;
    k->svc = req->service;
    k->cb = cb;
    k->arg = arg;
    snprintf(k->operation, sizeof k->operation, "%s", req->operation);
    if ((rc = rest_fields(k, req)) < 0) {
        es_free(k);
        return rc;
    }
    k->akid = es_strdup(creds->access_key_id);
    k->secret = es_strdup(creds->secret_access_key);
    k->token =
        creds->session_token && *creds->session_token ? es_strdup(creds->session_token) : NULL;
    if (req->body_len && (k->body = es_malloc(req->body_len)))
        memcpy(k->body, req->body, req->body_len);
    k->body_len = req->body_len;
    if (!k->akid || !k->secret || (creds->session_token && *creds->session_token && !k->token) ||
        (req->body_len && !k->body)) {
        call_free_material(k);
        es_free(k);
        return -ENOMEM;
    }
    if (uv_timer_init(c->loop, &k->timer) != 0) {
        call_free_material(k);
        es_free(k);
        return -EIO;
    }
    k->timer.data = k; /* state: CALL_SENDING (zeroed), then BACKOFF below */
    k->next = c->calls;
    if (c->calls)
        c->calls->prev = k;
    c->calls = k;
    c->live_calls++;
    c->stats.calls++;
    /* the first attempt starts from the loop, never inside this call, so
     * callbacks never run before aw_call_start returns */
    uv_timer_start(&k->timer, on_backoff, 0, 0);
    call_set_state(k, CALL_BACKOFF);
    return 0;
}

static void on_http_closed(void *arg)
{
    aw_client *c = arg;
    c->http_closed = true;
    c->http = NULL;
    maybe_free_client(c);
}

void aw_client_close(aw_client *c, void (*closed)(void *arg), void *arg)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    c->closed = closed;
    c->closed_arg = arg;
    /* calls waiting for a retry (or their first attempt) end here; calls in
     * flight end through the HTTP client's cancellation */
    call *k = c->calls;
    while (k) {
        call *next = k->next;
        if (k->state == CALL_BACKOFF)
            call_fail(k, AW_ERR_CANCELED);
        k = next;
    }
    /* keep the client alive until the HTTP close is done */
    aw_http_close(c->http, on_http_closed, c);
}
