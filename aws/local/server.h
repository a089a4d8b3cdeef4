/* server.h - the loopback listener of the embedded endpoints.
 *
 * One TCP listener (CF_LISTEN, default 127.0.0.1:4577) on the daemon's loop,
 * HTTP/1.1 with keep-alive through the common/http.h codec. Each request is
 *   POST / with X-Amz-Target: <prefix>.<Operation> (JSON 1.1: SSM, Secrets
 *   Manager, KMS) -> SigV4-verified (aws/local/auth.h) -> al_dispatch
 *   POST / form-encoded with Action=... (query protocol: STS, IAM) ->
 *   al_query_serve (aws/local/query.h): verified for the service of the
 *   credential scope, answered in XML
 * and answered with x-amzn-RequestId. Errors are AWS-shaped:
 * {"__type": code, "message": text} (Secrets Manager: "Message").
 *
 * Limits, each with its own answer and counter (al_server_stats):
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
 * A POST's head is checked before its body is read (al_precheck: the
 * Authorization parses, the date is current, the access key is known): an
 * unknown caller's body is discarded as it arrives, never buffered, and the
 * refusal answered when the request ends. The first-byte and head deadlines
 * are never longer than the idle and request ones.
 * One request per connection is processed at a time: reading stops while
 * an answer is being written, so a client that does not read its answers
 * cannot make us queue more than one.
 *
 * TLS (al_server_set_tls, issue 17): every connection speaks TLS only. The
 * socket's bytes go through the connection's al_tls_conn (aws/local/tls.h)
 * on the loop: what it decrypts is fed to the same HTTP parser, answers are
 * encrypted before the same writes. The handshake runs under the deadlines
 * above: its first byte within first_byte_timeout_ms, and the handshake plus
 * the first request's head within head_timeout_ms of that byte. A client
 * that speaks plain HTTP to it is answered, in plain HTTP, 400 "this
 * listener speaks HTTPS" and closed.
 *
 * Memory: each connection is one struct holding its uv_tcp_t and uv_timer_t;
 * it is freed in the close callback of the last of the two. Request and
 * response bodies (which can hold secret values) are wiped when released. */
#ifndef AL_SERVER_H
#define AL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "aws/local/local.h"
#include "aws/local/tls.h"

typedef struct al_server_limits {
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
} al_server_limits;

/* 16 KiB head, 1 MiB body, 256 connections (64 per remote peer), 60 s idle,
 * 30 s per request, 5 s to the first byte, 10 s to the end of the head,
 * 32 MiB of bodies. */
extern const al_server_limits al_server_default_limits;

typedef struct al_server_stats {
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
    uint64_t tls_handshakes; /* completed */
    uint64_t tls_failures;   /* handshakes that failed or ran out of time, bad records */
    uint64_t tls_plain_http; /* plain HTTP sent to the TLS listener */
} al_server_stats;

typedef struct al_server al_server;

/* Wall clock for SigV4 checks (tests move it); NULL means time(NULL). */
typedef time_t (*al_server_clock_fn)(void *arg);

/* Binds host:port and starts listening. port 0 picks a free port (see
 * al_server_port). 0 or -errno (e.g. -EADDRINUSE). */
int al_server_start(uv_loop_t *loop, al_ctx *store, const char *host, int port,
                    const al_server_limits *limits, al_server **out);
void al_server_set_clock(al_server *s, al_server_clock_fn fn, void *arg);
/* Serves HTTPS with tls (al_tls_load), which the server takes (freed when
 * it is); call right after al_server_start, before the loop runs again, so
 * that no connection is accepted without it. */
void al_server_set_tls(al_server *s, al_tls *tls);
bool al_server_tls(const al_server *s);

/* Routes served by other modules on the same listener (the agent's ECS API,
 * its metrics), so that the embedded store does not depend on them.
 *
 * A JSON 1.1 route takes every X-Amz-Target beginning with target_prefix
 * (e.g. "AmazonEC2ContainerServiceV20141113."), verified with SigV4 for the
 * signing name `signing_name` like the store's own operations; fn gets the
 * operation (the target after the prefix), the caller's principal and the
 * body, and answers 0 with a JSON body in out, or < 0 with err filled.
 *
 * A GET route answers GET <path> without authentication (loopback only:
 * metrics); fn appends the body and names its content type. */
#define AL_SERVER_ROUTES_MAX 8
typedef int (*al_json_route_fn)(void *arg, const char *operation, const char *principal,
                                const char *body, size_t len, es_buf *out, al_error *err);
typedef int (*al_get_route_fn)(void *arg, const char *path, es_buf *out, const char **content_type);
int al_server_add_json_route(al_server *s, const char *target_prefix, const char *signing_name,
                             al_json_route_fn fn, void *arg);
int al_server_add_get_route(al_server *s, const char *path, al_get_route_fn fn, void *arg);
/* Whether the store's own operations (SSM, Secrets Manager, KMS, and any
 * query-protocol service) are served (the default). The agent's aws mode
 * turns them off: the store is then only the keeper of the access keys that
 * authenticate the routes above, and anything else answers
 * UnknownOperationException. */
void al_server_serve_store(al_server *s, bool serve);
int al_server_port(const al_server *s);
void al_server_get_stats(const al_server *s, al_server_stats *out);
/* Closes the listener and every connection; the memory goes once every
 * handle has closed (run the loop). done (may be NULL) is then called.
 * NULL-safe; call once. */
void al_server_close(al_server *s, void (*done)(void *arg), void *arg);

#endif
