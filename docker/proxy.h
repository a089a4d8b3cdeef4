/* proxy.h - a Docker socket of the agent's own, passing everything through to
 * the real engine's socket (issue 19, part 1).
 *
 * Design
 * - One upstream connection per client connection: the client's keep-alive
 *   maps onto the same upstream connection, so dockerd sees exactly the
 *   connections and requests the client makes (EOF, half-close and resets
 *   travel through in both directions).
 * - Each request head is parsed (common/http, bounded) before it goes on, so
 *   that POST /[v1.NN/]containers/create can be intercepted: its body is read
 *   whole (bounded) and handed to dk_proxy_create_fn, which forwards it
 *   (unchanged or rewritten) or answers itself. Every other body is
 *   forwarded as it arrives, never held whole. One request at a time per
 *   connection: the next head is parsed once the answer has ended (Go's
 *   client, which the Docker CLI uses, does not pipeline).
 * - Answers are parsed only to find where they end and whether they switch
 *   protocols; their bytes go to the client as they arrive.
 * - Hijacked connections (attach, exec start, run -i): after a request with
 *   Connection: Upgrade / Upgrade, a 101, or a 200 with Docker's raw-stream or
 *   multiplexed-stream content type, the connection becomes raw bytes both
 *   ways; a shutdown of either side's write direction is passed on as one.
 * - Backpressure: bytes read from one side are written to the other at
 *   once as far as its socket takes them (uv_try_write); the rest stays in
 *   memory until it does, and a side is not read while more than
 *   dk_proxy_options.max_queued bytes wait to be written to the other.
 * - Big streams (docker cp, a build context, attach output): once a read
 *   fills DK_PROXY_READ_CHUNK, that side is read DK_PROXY_BULK_CHUNK at a
 *   time until a read comes back shorter: fewer reads, writes and wake-ups
 *   per byte. One connection holds at most about
 *   2 x 2 x (max_queued + DK_PROXY_BULK_CHUNK) bytes (proxy.c).
 * - A dockerd that is down answers 502 with dockerd's {"message"} shape;
 *   each client connection connects anew, so the proxy serves again as soon
 *   as dockerd is back.
 *
 * The library never logs; dk_proxy_get_stats has its counters. All calls
 * and callbacks run on the loop thread. */
#ifndef ES_DOCKER_PROXY_H
#define ES_DOCKER_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#define DK_PROXY_MAX_CONNS 1024                     /* client connections at once */
#define DK_PROXY_MAX_HEAD (1024u * 1024u)           /* a request head: dockerd's (Go's) own */
#define DK_PROXY_MAX_HEADERS 1000u                  /* header fields in one head */
#define DK_PROXY_MAX_CREATE (4u * 1024u * 1024u)    /* a containers/create body */
#define DK_PROXY_MAX_QUEUED (256u * 1024u)          /* bytes waiting for one side */
#define DK_PROXY_HEAD_TIMEOUT_MS (5u * 60u * 1000u) /* moby's ReadHeaderTimeout */
#define DK_PROXY_READ_CHUNK (64u * 1024u)           /* one read */
#define DK_PROXY_BULK_CHUNK (256u * 1024u)          /* one read while a stream flows */
#define DK_PROXY_SOCK_SNDBUF (512 * 1024)           /* SO_SNDBUF asked for both sockets */

/* The caller of a client connection (SO_PEERCRED), known = false when the
 * kernel did not say. */
typedef struct dk_proxy_peer {
    bool known;
    uid_t uid;
    gid_t gid;
    pid_t pid;
} dk_proxy_peer;

/* An intercepted containers/create. Valid during the callback only (copy
 * what must outlive it); the call handle stays valid until it is answered
 * or cancelled. */
typedef struct dk_proxy_create {
    const char *target; /* the request target as sent, e.g. "/v1.41/containers/create?name=x" */
    const char *query;  /* what follows '?', "" when none */
    const char *body;   /* NUL-terminated, len bytes (the decoded body) */
    size_t len;
    dk_proxy_peer peer;
} dk_proxy_create;

typedef struct dk_proxy_call dk_proxy_call;

/* Must end, now or later, in exactly one of dk_proxy_create_forward or
 * dk_proxy_create_refuse, unless the cancel callback ran first. */
typedef void (*dk_proxy_create_fn)(void *ud, dk_proxy_call *call, const dk_proxy_create *req);
/* The client went away (or the proxy closes) before the call was answered:
 * the handle is invalid once this returns. */
typedef void (*dk_proxy_cancel_fn)(void *ud, dk_proxy_call *call);

typedef struct dk_proxy_options {
    const char *path;             /* the socket to listen on */
    const char *upstream;         /* dockerd's socket path (no unix://) */
    gid_t group;                  /* the socket's group (mode 0660) */
    bool set_group;               /* false: leave the group the process gives it */
    dk_proxy_create_fn on_create; /* NULL: creates pass through unchanged */
    dk_proxy_cancel_fn on_cancel;
    void *ud;
    /* 0 = the DK_PROXY_ defaults above */
    size_t max_conns, max_head, max_create, max_queued;
    uint64_t head_timeout_ms;
} dk_proxy_options;

typedef struct dk_proxy dk_proxy;

/* Listens on opt->path: a socket file left there is replaced only when
 * nothing listens on it (-EADDRINUSE otherwise; -EEXIST when the path is not
 * a socket). 0 or a negative errno / libuv error. */
int dk_proxy_start(uv_loop_t *loop, const dk_proxy_options *opt, dk_proxy **out);
/* Stops listening, removes the socket file, closes every connection (a
 * pending create is cancelled); done(arg) runs once every handle has closed.
 * The loop must run until then. */
void dk_proxy_close(dk_proxy *p, void (*done)(void *arg), void *arg);

/* Sends body (copied; the proxy wipes its copy once written) to dockerd in
 * place of the client's, with Content-Length set to len. body NULL: the
 * client's body unchanged. 0, -ENOMEM, -EINVAL (already answered). */
int dk_proxy_create_forward(dk_proxy_call *call, const char *body, size_t len);
/* Answers the client status with dockerd's {"message": message} body;
 * nothing reaches dockerd. The connection stays usable. */
int dk_proxy_create_refuse(dk_proxy_call *call, int status, const char *message);

typedef struct dk_proxy_stats {
    uint64_t accepted; /* client connections */
    uint64_t active;   /* open now */
    uint64_t deferred; /* times the connection maximum held back an accept */
    uint64_t requests; /* request heads parsed */
    uint64_t creates;  /* intercepted */
    uint64_t creates_refused;
    uint64_t upgrades;          /* connections switched to raw bytes */
    uint64_t upstream_failures; /* 502s: dockerd could not be reached */
    uint64_t bad_requests;      /* 400 / 413 refusals (head, framing, create size) */
    uint64_t head_timeouts;
    uint64_t bytes_up, bytes_down; /* forwarded to dockerd / to clients */
    uint64_t buffered;             /* bytes held in read chunks now (not the spares) */
    uint64_t buffered_peak;        /* the most ever held at once */
    uint64_t paused;               /* times a side stopped being read for backpressure */
    uint64_t writes_queued;        /* forwards the socket did not take whole at once */
} dk_proxy_stats;
void dk_proxy_get_stats(const dk_proxy *p, dk_proxy_stats *out);

/* Whether target (a request target) names containers/create, with or
 * without a /vMAJOR.MINOR prefix. Exposed for tests and fuzzing. */
bool dk_proxy_is_create(const char *method, const char *target);

#endif
