/* http.h - HTTP(S) requests on the libuv loop: libcurl's multi socket API.
 *
 * The shape of curl's docs/examples/multi-uv.c, with its missing checks
 * added: one uv_poll_t per socket curl tells us about (created on its first
 * CURL_POLL_*, closed on CURL_POLL_REMOVE, its memory freed only in the
 * close callback), one uv_timer_t for curl's timeout, a poll status < 0
 * handed to curl as CURL_CSELECT_ERR, and every curl/uv return checked.
 *
 * One aw_http per loop holds the curl multi handle, so connections (and TLS
 * sessions) are reused across requests to the same host. Each request has
 * its own timeouts and a maximum response body (AW_HTTP_E_BODY_TOO_BIG past
 * it, checked as data arrives and against Content-Length up front). TLS
 * peer and host verification are always on; only http and https are
 * allowed; redirects are not followed; proxies come from the usual
 * environment variables (http_proxy, https_proxy, no_proxy), which curl
 * reads itself.
 *
 * Secrets: the request headers (Authorization, X-Amz-Security-Token, IMDS
 * tokens) are wiped when the request ends; the response body is handed to
 * the callback, which may take it (es_buf move) and must treat it as
 * secret; whatever is left is wiped. Error texts never hold header values.
 *
 * Callbacks run on the loop, never from inside aw_http_request. */
#ifndef ES_AWS_HTTP_H
#define ES_AWS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <uv.h>

#include "common/buf.h"

#define AW_HTTP_DEFAULT_TIMEOUT_MS 10000
#define AW_HTTP_DEFAULT_CONNECT_TIMEOUT_MS 3000
#define AW_HTTP_DEFAULT_MAX_BODY (1u << 20)
#define AW_HTTP_MAX_HEADERS 32     /* request headers per request */
#define AW_HTTP_REQUEST_ID_MAX 127 /* x-amzn-RequestId kept */
#define AW_HTTP_DATE_MAX 63        /* a Date header longer than this is not a date */

typedef enum aw_http_err {
    AW_HTTP_OK = 0,
    AW_HTTP_E_TIMEOUT = -1000,      /* request or connect timeout */
    AW_HTTP_E_CONNECT = -1001,      /* could not resolve / connect */
    AW_HTTP_E_TLS = -1002,          /* TLS handshake or verification */
    AW_HTTP_E_BODY_TOO_BIG = -1003, /* response body past max_body */
    AW_HTTP_E_PROTOCOL = -1004,     /* malformed answer, reset, other curl error */
    AW_HTTP_E_CANCELED = -1005,     /* the client closed first */
    AW_HTTP_E_NOMEM = -1006,
    AW_HTTP_E_INVALID = -1007, /* bad request description */
} aw_http_err;

const char *aw_http_strerror(int err);
/* Timeouts and connection failures: worth another attempt. */
bool aw_http_err_retryable(int err);

typedef struct aw_http aw_http;

typedef struct aw_http_header {
    const char *name;
    const char *value;
} aw_http_header;

typedef struct aw_http_request {
    const char *method; /* "GET", "POST", "PUT" */
    const char *url;
    const aw_http_header *headers; /* copied */
    size_t n_headers;
    const void *body; /* copied; NULL for none */
    size_t body_len;
    long timeout_ms;         /* 0: AW_HTTP_DEFAULT_TIMEOUT_MS; < 0: none (a stream) */
    long connect_timeout_ms; /* 0: AW_HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    size_t max_body;         /* 0: AW_HTTP_DEFAULT_MAX_BODY */
    bool no_proxy;           /* never through a proxy (instance metadata, container
                                credentials: link-local, and they answer with keys) */
    const char *unix_socket; /* connect to this unix socket (the URL's host is then only
                                the Host header; never through a proxy); NULL: TCP */
    /* TLS client side for this request (etcd's client certificates): a CA file
     * in place of the client's (aw_http_set_ca_file) and the system's, and a
     * client certificate and key (PEM files); NULL: none. */
    const char *ca_file, *client_cert, *client_key;
    /* A streamed answer (a watch): when set, each piece of the body is handed
     * to on_data as it arrives instead of being kept (resp.body stays empty);
     * on_data answers 0, or < 0 to end the request (the callback then gets
     * AW_HTTP_E_CANCELED). Called on the loop, with the request's arg;
     * max_body is then the bound of one piece, not of the whole stream. */
    int (*on_data)(void *arg, const char *p, size_t n);
} aw_http_request;

typedef struct aw_http_response {
    long status;                                 /* HTTP status, 0 when none arrived */
    es_buf body;                                 /* secret: wipe; the callback may move it out */
    char request_id[AW_HTTP_REQUEST_ID_MAX + 1]; /* x-amzn-RequestId / x-amz-request-id */
    char content_type[64];
    time_t date; /* the Date header (the service's clock), 0 without one */
} aw_http_response;

/* err is 0 when an HTTP answer arrived (whatever its status), else an
 * aw_http_err; resp is valid only during the call. */
typedef void (*aw_http_cb)(void *arg, int err, aw_http_response *resp);

/* 0 or AW_HTTP_E_NOMEM / AW_HTTP_E_PROTOCOL. */
int aw_http_create(uv_loop_t *loop, aw_http **out);

/* The CA certificates (a PEM file) that https:// peers are verified with,
 * in place of the system's (curl's CA file and CA path), for every request
 * started after; NULL: the system's again. 0 or AW_HTTP_E_NOMEM. */
int aw_http_set_ca_file(aw_http *h, const char *path);

/* Starts a request. 0, or an error (and cb is not called). */
int aw_http_start(aw_http *h, const aw_http_request *req, aw_http_cb cb, void *arg);

/* Cancels what is in flight (callbacks get AW_HTTP_E_CANCELED, from inside
 * this call), closes the handles, and frees h once they are closed; then
 * calls closed(arg) if given. Safe from inside a request callback. NULL-safe. */
void aw_http_close(aw_http *h, void (*closed)(void *arg), void *arg);

/* Counters (tests, metrics). */
typedef struct aw_http_stats {
    unsigned long started, completed, failed, connects, in_flight;
    unsigned long timer_wakeups; /* loop turns spent on curl's timer */
    unsigned long body_too_big;  /* answers refused past max_body */
    unsigned long timeouts;      /* requests past their timeout */
} aw_http_stats;
void aw_http_get_stats(const aw_http *h, aw_http_stats *out);

#endif
