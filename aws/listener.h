/* listener.h - the signed HTTP listener: the one door of the daemon.
 *
 * One listening socket (TCP host:port, or a unix socket) on the daemon's
 * loop, HTTP/1.1 with keep-alive through the common/http.h codec. It owns
 * the connections (accept, TLS, parsing, limits, deadlines, eviction, the
 * per-peer cap, stats) and the routing; what is served is mounted on it:
 *
 *   JSON 1.1 routes   POST / with X-Amz-Target: <prefix><Operation>, the
 *                     prefix naming the route ("AmazonSSM.", the embedded
 *                     services; "AmazonEC2ContainerServiceV20141113.", the
 *                     agent's ECS API), verified with SigV4 for the route's
 *                     signing name, then handed the caller and the body
 *   the query route   POST / form-encoded with Action=... (IAM, STS): the
 *                     mounter verifies and answers (XML)
 *   GET routes        GET <path> without authentication (/metrics)
 *   GET prefix routes GET <prefix>... without SigV4, the route seeing the
 *                     headers and naming the status (the container
 *                     endpoints: agent/endpoints/, which check their own
 *                     token)
 *   the REST route    GET, HEAD, PUT, DELETE of any other path (S3): the
 *                     mounter verifies and answers (XML)
 *
 * and answered with x-amzn-RequestId. Errors are AWS-shaped:
 * {"__type": code, "message": text} (a route may name the key "Message", as
 * Secrets Manager does).
 *
 * Who a caller is, the listener does not know: the mounter that keeps the
 * access keys provides the authenticator (aw_listener_auth): `precheck`, the
 * head's check before any body is read, and `verify`, the whole request's
 * SigV4 check naming the principal and the scope's region. The embedded
 * services provide it (aws/local: al_mount); without one every signed
 * request is refused.
 *
 * Limits, each with its own answer and counter (aw_listener_stats):
 *   max_header_bytes  431 and close          max_body       413 and close
 *   max_connections   when full, the oldest connection that holds no request
 *                     (idle, or not yet sent a byte) is closed to make room;
 *                     with none, the new one is accepted then closed
 *   malformed         400 and close
 *   first_byte_timeout_ms  a new connection that sends nothing is closed
 *   idle_timeout_ms   a kept-alive connection with no request is closed
 *   head_timeout_ms   a request's head must be whole within this: 408
 *   request_timeout_ms a request must arrive whole within this (slow
 *                     clients, slowloris): 408 and close
 *   max_buffered_bodies  request bodies held across all connections: past
 *                     it, 503 SlowDown and close
 * A POST's head is checked before its body is read (precheck: the
 * Authorization parses, the date is current, the access key is known): an
 * unknown caller's body is discarded as it arrives, never buffered, and the
 * refusal answered when the request ends. The first-byte and head deadlines
 * are never longer than the idle and request ones.
 * One request per connection is processed at a time: reading stops while
 * an answer is being written, so a client that does not read its answers
 * cannot make us queue more than one.
 *
 * TLS (aw_listener_set_tls, issue 17): every connection speaks TLS only. The
 * socket's bytes go through the connection's aw_tls_conn (aws/tls.h) on the
 * loop: what it decrypts is fed to the same HTTP parser, answers are
 * encrypted before the same writes. The handshake runs under the deadlines
 * above: its first byte within first_byte_timeout_ms, and the handshake plus
 * the first request's head within head_timeout_ms of that byte. A client
 * that speaks plain HTTP to it is answered, in plain HTTP, 400 "this
 * listener speaks HTTPS" and closed.
 *
 * A unix socket (aw_listener_start_unix) is made with the mode asked for
 * (the agent's own calls: 0600); its peers are local and not counted by the
 * per-peer cap.
 *
 * Memory: each connection is one struct holding its socket handle and
 * uv_timer_t; it is freed in the close callback of the last of the two.
 * Request and response bodies (which can hold secret values) are wiped when
 * released. The library does not log. */
#ifndef AW_LISTENER_H
#define AW_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "aws/endpoint.h"
#include "aws/sigv4.h"
#include "aws/tls.h"
#include "common/buf.h"

#define AW_LISTENER_CODE_MAX 64
#define AW_LISTENER_MESSAGE_MAX 512
/* Largest answer a route may write (GetParametersByPath, secrets: 64 KiB). */
#define AW_LISTENER_RESPONSE_MAX (4u << 20)
/* A caller's principal ARN. */
#define AW_LISTENER_PRINCIPAL_MAX 256
/* A unix socket's path (sun_path less its NUL). */
#define AW_LISTENER_PATH_MAX 107

/* An AWS error answer: HTTP status, "__type" and message. (aws/local calls
 * it al_error.) */
typedef struct aw_listener_error {
    int status;
    char code[AW_LISTENER_CODE_MAX];
    char message[AW_LISTENER_MESSAGE_MAX];
} aw_listener_error;

/* One request as the authenticator and the query route see it. */
typedef struct aw_listener_request {
    const char *method;
    const char *path;  /* as on the wire, without the query */
    const char *query; /* NULL or without '?' */
    const aw_header *headers;
    size_t n_headers;
    const char *body;
    size_t body_len;
} aw_listener_request;

typedef struct aw_listener_limits {
    size_t max_header_bytes;
    size_t max_body;
    size_t max_connections;
    uint64_t idle_timeout_ms;
    uint64_t request_timeout_ms;
    /* 0 in the three below: the default's value */
    uint64_t first_byte_timeout_ms; /* a new connection's first byte */
    uint64_t head_timeout_ms;       /* a request's head, from its first byte */
    size_t max_buffered_bodies;     /* request bodies held at once, all connections */
    /* connections of one peer address (not 127.0.0.1 or ::1, where every
     * local client shares one address: there the total cap and its eviction
     * apply); over it, that peer's oldest idle connection makes room, or the
     * new one is refused */
    size_t max_connections_per_peer;
} aw_listener_limits;

/* 16 KiB head, 1 MiB body, 256 connections (64 per remote peer), 60 s idle,
 * 30 s per request, 5 s to the first byte, 10 s to the end of the head,
 * 32 MiB of bodies. */
extern const aw_listener_limits aw_listener_default_limits;

typedef struct aw_listener_stats {
    uint64_t connections_accepted;
    uint64_t connections_refused; /* over max_connections */
    uint64_t peer_refused;        /* over max_connections_per_peer, none of its own idle */
    uint64_t requests;
    uint64_t errors_4xx, errors_5xx;
    uint64_t header_too_large, body_too_large, malformed;
    uint64_t idle_timeouts, request_timeouts;
    uint64_t auth_failures;
    uint64_t refused_at_head; /* refused from the head: unknown caller, body not kept */
    uint64_t evicted_idle;    /* idle connections closed to make room for a new one */
    uint64_t bodies_over_budget;
    uint64_t tls_handshakes;   /* completed */
    uint64_t tls_failures;     /* handshakes that failed or ran out of time, bad records */
    uint64_t tls_plain_http;   /* plain HTTP sent to the TLS listener */
    uint64_t deferred;         /* answers a route gave later (aw_listener_defer) */
    uint64_t deferred_orphans; /* ... whose connection was gone by then */
    uint64_t deferred_waiting; /* (a gauge) deferred answers awaited now */
    /* plain-HTTP answers held for the end of the loop's turn, and those of
     * them written before it because TURN_ANSWERS_MAX were held */
    uint64_t answers_held, answers_written_early;
} aw_listener_stats;

typedef struct aw_listener aw_listener;

/* Binds host:port and starts listening. port 0 picks a free port (see
 * aw_listener_port). 0 or -errno (e.g. -EADDRINUSE). */
int aw_listener_start(uv_loop_t *loop, const char *host, int port, const aw_listener_limits *limits,
                      aw_listener **out);
/* Listens on a unix socket at path with the given mode (0600: its owner
 * only). A stale socket file is replaced; anything else at path is not
 * (-EEXIST). The file is removed when the listener closes. 0 or -errno. */
int aw_listener_start_unix(uv_loop_t *loop, const char *path, mode_t mode,
                           const aw_listener_limits *limits, aw_listener **out);

/* Wall clock for SigV4 checks (tests move it); NULL means time(NULL). */
typedef time_t (*aw_listener_clock_fn)(void *arg);
void aw_listener_set_clock(aw_listener *l, aw_listener_clock_fn fn, void *arg);
/* Serves HTTPS with tls (aw_tls_load), which the listener takes (freed when
 * it is); call right after aw_listener_start, before the loop runs again, so
 * that no connection is accepted without it. */
void aw_listener_set_tls(aw_listener *l, aw_tls *tls);
bool aw_listener_tls(const aw_listener *l);

/* The authenticator (see the top). precheck: what the head alone tells
 * (Authorization, X-Amz-Date, the session token) at now; 0, or < 0 with e
 * filled (the body is then discarded and e answered). verify: the whole
 * request for signing_name ("ssm", "ecs", ...); 0 with the principal and
 * the credential scope's region written, or < 0 with e filled. */
typedef struct aw_listener_auth {
    int (*precheck)(void *arg, const char *authorization, const char *amz_date, const char *token,
                    time_t now, aw_listener_error *e);
    int (*verify)(void *arg, const aw_listener_request *rq, const char *signing_name, time_t now,
                  char principal[AW_LISTENER_PRINCIPAL_MAX], char region[AW_REGION_MAX + 1],
                  aw_listener_error *e);
    void *arg;
} aw_listener_auth;
void aw_listener_set_auth(aw_listener *l, const aw_listener_auth *auth); /* copied */

/* One verified JSON 1.1 call, as a route gets it. */
typedef struct aw_listener_call {
    const char *target;    /* "AmazonSSM.GetParameter" */
    const char *operation; /* the target after the route's prefix: "GetParameter" */
    const char *principal; /* the caller, as verify named it */
    const char *region;    /* its credential scope's */
    const char *body;
    size_t len;
    void *priv; /* the listener's (aw_listener_defer) */
} aw_listener_call;

#define AW_LISTENER_ROUTES_MAX 8
/* A route answers 0 with a JSON body appended to out (released with
 * es_buf_free_secret: it may hold a value), or < 0 with err filled, or
 * AW_LISTENER_LATER when it took the call's reply (aw_listener_defer) to
 * answer it later. */
#define AW_LISTENER_LATER 1
typedef int (*aw_json_route_fn)(void *arg, const aw_listener_call *call, es_buf *out,
                                aw_listener_error *err);
typedef struct aw_json_route {
    const char *target_prefix; /* borrowed (a string literal): "AmazonSSM." */
    const char *signing_name;  /* borrowed: "ssm" */
    const char *message_key;   /* the error's message key; NULL: "message" */
    /* Whether the route serves target; NULL: every target of the prefix. An
     * operation it does not serve is refused before any signature check. */
    bool (*knows)(const char *target);
    aw_json_route_fn fn;
    void *arg;
} aw_json_route;
/* Copied; when prefixes overlap, the route added last wins. 0 or -ENOSPC. */
int aw_listener_add_json_route(aw_listener *l, const aw_json_route *route);

/* Deferred answers: a route whose work must not run on the loop (a worker
 * thread's, uv_queue_work) takes the call's reply and answers
 * AW_LISTENER_LATER; once the work is back on the loop, it answers through
 * the reply, exactly once. Meanwhile the connection reads no further request
 * (what arrives is kept, within a bound, for after the answer) and its
 * request deadline runs: past it, or when the peer goes, the connection
 * closes and the reply is orphaned (aw_listener_reply_open says so; the
 * answer is then discarded). The listener's close waits for every reply
 * taken to be answered or dropped before it reports done, so the work's
 * owner can rely on the listener's mounter (its store) to the end.
 *
 * aw_listener_defer: the reply of call (only inside the route's call), or
 * NULL when out of memory (answer the call now). */
typedef struct aw_listener_reply aw_listener_reply;
aw_listener_reply *aw_listener_defer(const aw_listener_call *call);
/* Whether the reply's connection is still there to be answered. */
bool aw_listener_reply_open(const aw_listener_reply *r);
/* Answers 200 with the JSON body, or the error in the route's wording;
 * either releases r (whether or not anyone was there to read it). */
void aw_listener_reply_ok(aw_listener_reply *r, const char *body, size_t len);
void aw_listener_reply_error(aw_listener_reply *r, const aw_listener_error *e);
/* Releases r without an answer: its connection is closed if still open. */
void aw_listener_reply_drop(aw_listener_reply *r);
/* The loop the listener runs on (for the work a route queues). */
uv_loop_t *aw_listener_loop(const aw_listener *l);

/* The query protocol (form-encoded Action=...): serve verifies and runs one
 * request at now, appending the XML answer (or its ErrorResponse) to out,
 * and answers the HTTP status (-ENOMEM when not even an error could be
 * written); error renders the refusal e (the head's precheck's) for rq and
 * answers its status, or < 0. Without a query route a request naming no
 * target is refused as not served, in XML when form-encoded. */
typedef struct aw_query_route {
    int (*serve)(void *arg, const aw_listener_request *rq, time_t now, es_buf *out);
    int (*error)(void *arg, const aw_listener_request *rq, const aw_listener_error *e, es_buf *out);
    void *arg;
} aw_query_route;
void aw_listener_set_query_route(aw_listener *l, const aw_query_route *route); /* copied */

/* The REST route (S3's wire, issue 20): every request that is neither a
 * GET route's, nor a POST / (JSON 1.1 or query) - GET, HEAD, PUT and DELETE
 * of any path, a POST of a path other than "/" - is handed over whole. The
 * route verifies it itself (S3's SigV4 differs: x-amz-content-sha256, the
 * chunked upload's signatures) and answers in its own wire (XML). head_err
 * is the head's precheck's refusal (its body was discarded unread), or
 * NULL. serve fills a; the listener sends it (a HEAD answer's body is not
 * sent, its length is announced) and releases a->body with
 * es_buf_free_secret. */
#define AW_REST_HEADERS_MAX 8
#define AW_REST_HEADER_VALUE_MAX 128
typedef struct aw_rest_answer {
    int status;
    const char *content_type; /* borrowed (a literal); NULL: none */
    size_t n_headers;
    struct {
        char name[48];
        char value[AW_REST_HEADER_VALUE_MAX];
    } headers[AW_REST_HEADERS_MAX];
    es_buf body; /* initialised by the listener with AW_LISTENER_RESPONSE_MAX */
} aw_rest_answer;
/* Adds a header to a (ignored past AW_REST_HEADERS_MAX). */
void aw_rest_answer_header(aw_rest_answer *a, const char *name, const char *value);
typedef struct aw_rest_route {
    void (*serve)(void *arg, const aw_listener_request *rq, const aw_listener_error *head_err,
                  time_t now, aw_rest_answer *a);
    void *arg;
} aw_rest_route;
void aw_listener_set_rest_route(aw_listener *l, const aw_rest_route *route); /* copied */

/* What a request that no route serves is told when no query route is
 * mounted (the agent's aws mode names what is served). Borrowed; NULL: a
 * general text. */
void aw_listener_set_unserved_text(aw_listener *l, const char *text);

/* A GET route answers GET <path> without authentication (local callers:
 * metrics); fn appends the body and names its content type. */
typedef int (*aw_get_route_fn)(void *arg, const char *path, es_buf *out, const char **content_type);
int aw_listener_add_get_route(aw_listener *l, const char *path, aw_get_route_fn fn, void *arg);

/* A GET prefix route answers GET <prefix>... without SigV4 (the container
 * endpoints: the route checks its own token): fn sees the whole request
 * (headers for its Authorization), appends the body, names its content type
 * and answers the HTTP status (200, 401, 404, ...), or < 0 for a 500.
 * Exact GET routes are tried first; among prefixes the first added wins. */
typedef int (*aw_get_prefix_fn)(void *arg, const aw_listener_request *rq, es_buf *out,
                                const char **content_type);
int aw_listener_add_get_prefix_route(aw_listener *l, const char *prefix, aw_get_prefix_fn fn,
                                     void *arg);

/* The TCP port bound (0 for a unix socket). */
int aw_listener_port(const aw_listener *l);
void aw_listener_get_stats(const aw_listener *l, aw_listener_stats *out);
/* Closes the listener and every connection; the memory goes once every
 * handle has closed (run the loop). done (may be NULL) is then called.
 * NULL-safe; call once. */
void aw_listener_close(aw_listener *l, void (*done)(void *arg), void *arg);

#endif
