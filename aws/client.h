/* client.h - one signed AWS call, with retries, on the loop.
 *
 * aw_client holds what calls share: the HTTP client (aws/http.h: one curl
 * multi, connections reused), the signer (aws/sigv4.h: cached signing
 * keys), the default region, endpoint overrides, timeouts, and the retry
 * policy of the SDKs' "standard" mode:
 *
 *   - at most max_attempts attempts (default 3);
 *   - retried: throttling (ThrottlingException, Throttling,
 *     TooManyRequestsException, LimitExceededException,
 *     RequestLimitExceeded, ... or HTTP 429), transient errors (HTTP 500,
 *     502, 503, 504, InternalFailure, ServiceUnavailable, RequestTimeout...),
 *     connection failures and timeouts;
 *   - never retried: anything else (AccessDenied, validation, not found,
 *     an oversized answer);
 *   - wait before attempt n+1: full jitter, random in [0, min(max_backoff,
 *     base * 2^n));
 *   - a retry budget (token bucket, 500 tokens): a retry costs 5 tokens (10
 *     after a timeout), a success refunds what its retries cost (or 1 when
 *     it needed none); an empty bucket stops retrying, so an outage does
 *     not multiply the load on the service.
 *
 * Service clients (ssm.h, secretsmanager.h, sts.h) build on aw_call_start.
 * Credentials are passed per call (copied, wiped when the call ends): the
 * client never fetches them itself (see credentials.h). */
#ifndef ES_AWS_CLIENT_H
#define ES_AWS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "aws/endpoint.h"
#include "aws/http.h"
#include "aws/sigv4.h"

#define AW_ERROR_CODE_MAX 127
#define AW_CALL_PATH_MAX 4096 /* a REST call's encoded path */
#define AW_ERROR_MESSAGE_MAX 511

typedef enum aw_error_kind {
    AW_ERR_NONE = 0,
    AW_ERR_TRANSPORT, /* no HTTP answer: http_err says why */
    AW_ERR_SERVICE,   /* the service answered an error: status, code, message */
    AW_ERR_RESPONSE,  /* an answer we could not parse */
    AW_ERR_INVALID,   /* bad arguments (nothing was sent) */
    AW_ERR_NOMEM,
    AW_ERR_CANCELED, /* the client closed */
} aw_error_kind;

/* A typed error. code/message come from the service (botocore's rules:
 * __type after '#', message or Message; <Code>/<Message> for query
 * services); they never hold a credential or a secret value. */
typedef struct aw_error {
    aw_error_kind kind;
    int http_err; /* AW_ERR_TRANSPORT: an aw_http_err */
    long status;  /* HTTP status, 0 without one */
    char code[AW_ERROR_CODE_MAX + 1];
    char message[AW_ERROR_MESSAGE_MAX + 1];
    char request_id[AW_HTTP_REQUEST_ID_MAX + 1];
    unsigned attempts;
    /* A signature refused for its time (aw_error_is_clock_skew) by a service whose answer
     * carried a Date: how far the service's clock is ahead of the host's (negative: behind).
     * message then ends with what the host's clock is off by, in words. */
    bool clock_skewed;
    long long clock_skew_s;
} aw_error;

/* The error for a 2xx answer a service client could not read: rc is the
 * parser's (-ENOMEM gives AW_ERR_NOMEM, anything else AW_ERR_RESPONSE). */
void aw_error_unreadable(aw_error *e, int rc, const aw_http_response *resp);
/* "ParameterNotFound: ... (HTTP 400, request id ...)" style text. */
void aw_error_format(const aw_error *e, char *out, size_t outlen);
bool aw_error_is_throttling(const aw_error *e);
/* A signature refused for its time: RequestTimeTooSkewed, RequestExpired, or
 * InvalidSignatureException / SignatureDoesNotMatch / AuthFailure saying "Signature expired"
 * or "not yet current" (what SSM, Secrets Manager, KMS, STS and IAM answer). */
bool aw_error_is_clock_skew(const aw_error *e);
/* For such an error, given the service's Date (0: none) and the host's time when the answer
 * came: sets clock_skewed / clock_skew_s and appends to message "(the host's clock is N s
 * behind|ahead of the service's)". The SDKs the CLI uses do not correct their clock (botocore
 * does not), nor does this client: the host's clock must be set right (NTP). */
void aw_error_note_clock(aw_error *e, time_t service_date, time_t now);
bool aw_error_retryable(const aw_error *e);
/* True for the given service error code. */
bool aw_error_is(const aw_error *e, const char *code);

typedef struct aw_client_config {
    const char *region;                          /* default region */
    const char *endpoint_override[AW_SVC_COUNT]; /* NULL for none */
    char *const *envp;                           /* NULL: process environment */
    unsigned max_attempts;                       /* 0: 3 */
    unsigned base_delay_ms;                      /* 0: 100 */
    unsigned max_backoff_ms;                     /* 0: 20000 */
    unsigned retry_tokens;                       /* 0: 500 */
    long timeout_ms;                             /* 0: AW_HTTP_DEFAULT_TIMEOUT_MS */
    long connect_timeout_ms;                     /* 0: AW_HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
    size_t max_body;                             /* 0: AW_HTTP_DEFAULT_MAX_BODY */
    const char *ca_file; /* CA certificates (PEM) for https:// endpoints in place of the
                            system's (aw_http_set_ca_file); NULL: the system's */
    /* The endpoint overrides (endpoint_override, not AWS's or the
     * environment's) are reached through this unix socket: the embedded
     * services' reserved door (aws/listener.h); NULL: over TCP. */
    const char *unix_socket;
} aw_client_config;

typedef struct aw_client aw_client;

/* Copies cfg. 0 or -EINVAL (bad region) / -ENOMEM / -EIO. */
int aw_client_create(uv_loop_t *loop, const aw_client_config *cfg, aw_client **out);
/* Cancels calls in flight (their callbacks get AW_ERR_CANCELED), closes the
 * handles, frees the client once they are closed, then closed(arg).
 * NULL-safe. */
void aw_client_close(aw_client *c, void (*closed)(void *arg), void *arg);
const char *aw_client_region(const aw_client *c);
uv_loop_t *aw_client_loop(const aw_client *c);

typedef struct aw_client_stats {
    unsigned long calls, attempts, retries, retry_budget_exhausted;
    unsigned retry_tokens;
} aw_client_stats;
void aw_client_get_stats(const aw_client *c, aw_client_stats *out);
aw_http *aw_client_http(aw_client *c);

typedef struct aw_call {
    aw_service service;
    const char *region;    /* NULL: the client's */
    const char *operation; /* JSON services: X-Amz-Target operation; query: unused */
    const char *body;      /* JSON document or form body; copied */
    size_t body_len;
    /* REST services (AW_SVC_S3): the method ("GET") and the path after the
     * endpoint, percent-encoded as sent ("/bucket/key", or with a query:
     * "/bucket?location", signed as the canonical query); the request is
     * signed as S3 signs (x-amz-content-sha256, the path encoded once) and
     * an error answer is S3's XML. operation is then only a name. */
    const char *method;
    const char *path;
} aw_call;

/* err is NULL on success (HTTP 2xx; resp holds the answer) or the error
 * (resp then NULL). resp->body is secret material: the callback may move it
 * out; whatever is left is wiped. */
typedef void (*aw_call_cb)(void *arg, const aw_error *err, aw_http_response *resp);

/* 0, or -EINVAL / -ENOMEM (cb not called). */
int aw_call_start(aw_client *c, const aw_sigv4_creds *creds, const aw_call *call, aw_call_cb cb,
                  void *arg);

/* Helpers for the service clients: form-encodes (unreserved kept) into out. */
int aw_form_append(es_buf *out, const char *key, const char *value);
/* ISO 8601 "2030-01-01T00:00:00Z" (fraction and offsets tolerated) to time_t. */
int aw_parse_iso8601(const char *s, time_t *out);

#endif
