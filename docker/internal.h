/* internal.h - shared between the files of docker/ only (dk__ names).
 *
 * A dk__conn is one unix-socket connection carrying one dk__req at a time.
 * Its owner (the client's pool, or an events watcher) is told when it becomes
 * idle again and when it has closed. */
#ifndef ES_DOCKER_INTERNAL_H
#define ES_DOCKER_INTERNAL_H

#include "docker/docker.h"

#include <stddef.h>
#include <uv.h>

#define DK__MAX_REQUEST (4u * 1024u * 1024u) /* serialized request */
#define DK__PATH_MAX 8192                    /* path and query (dk__req.path) */
#define DK__EXTRA_MAX (64 * 1024)            /* extra header lines (dk__req.extra) */
#define DK__HEAD_ROOM 4096                   /* serialized: request line, fixed headers */
#define DK__DEFAULT_TIMEOUT_MS 30000u
#define DK__CREATE_TIMEOUT_MS (4u * 60u * 1000u)
#define DK__START_TIMEOUT_MS (3u * 60u * 1000u)
#define DK__ID_LEN 64  /* a container id: 64 lower-case hex digits */
#define DK__REQ_CTX 96 /* room for the operation's context in the request's block */

typedef struct dk__req dk__req;
typedef struct dk__conn dk__conn;

/* err: 0 when a complete response arrived (look at r->status). */
typedef void (*dk__done_fn)(dk__req *r, int err);
/* Body bytes of a 2xx response, as they arrive; negative aborts. */
typedef int (*dk__stream_fn)(dk__req *r, const char *d, size_t n);

struct dk__req {
    char method[8];
    es_buf path;                /* after the version prefix, e.g. "/containers/x/json" */
    bool versioned;             /* prefix with /v1.xx */
    bool secret;                /* body or extra headers hold secrets */
    bool negotiation;           /* a /_ping whose Api-Version header is wanted */
    bool no_timeout_after_head; /* streams */
    bool fresh_only;            /* a retry: send it on a new connection */
    bool retried;               /* sent a second time already */
    es_buf body;                /* JSON body, may be empty */
    es_buf extra;               /* extra header lines "Name: value\r\n" */
    uint64_t timeout_ms;
    uint64_t deadline; /* uv_now() based, set when queued */
    int status;
    char api_version[16]; /* the answer's Api-Version header, "" if none */
    es_buf resp;          /* body of non-streamed (or non-2xx) answers */
    dk__done_fn done;
    dk__stream_fn stream;
    void (*on_head)(dk__req *r); /* the answer's head arrived (status set) */
    void *op;                    /* the operation's context (often ctx) */
    dk__req *next;
    /* the typed operation's context lives here, in the request's own
     * block (ops.c): one allocation per operation, recycled with it */
    _Alignas(max_align_t) unsigned char ctx[DK__REQ_CTX];
};

typedef struct dk__conn_owner {
    void (*on_idle)(dk__conn *k, void *owner);
    void (*on_closed)(dk__conn *k, void *owner);
    /* Optional: r failed on a stale kept-alive connection in a way that
     * proves it may be sent again (conn.c, "Retries"); the owner takes it
     * back (r->done has not run) and sends it on a fresh connection. */
    void (*retry)(dk__conn *k, dk__req *r, void *owner);
} dk__conn_owner;

typedef enum dk__conn_state {
    DK__CONN_CONNECTING,
    DK__CONN_IDLE,
    DK__CONN_BUSY,
    DK__CONN_CLOSING,
} dk__conn_state;

struct dk__conn {
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    int open_handles; /* freed when both handles have closed */
    dk__conn_state state;
    bool connected, writing;
    bool reused;     /* carried an exchange before the current request */
    bool answered;   /* a byte of the current request's answer arrived */
    bool req_reused; /* the current request was sent on a reused connection */
    bool untimed;    /* the current request is a stream past its head */
    uint64_t due;    /* when the timer, if active, fires (uv_now based) */
    es_http_parser *parser;
    dk__req *req;
    es_buf wbuf; /* the bytes being written; wiped after the write */
    size_t max_body;
    const dk__conn_owner *ops;
    void *owner;
    dk__conn *next; /* the owner's list */
    char rbuf[65536];
};

/* Starts connecting to path. NULL on allocation failure. */
dk__conn *dk__conn_new(uv_loop_t *loop, const char *path, const es_http_limits *lim,
                       const dk__conn_owner *ops, void *owner);
/* Assigns r (the conn must be idle or connecting): serializes it with the
 * version prefix ver ("v1.41", or NULL), writes it once connected. r->done
 * runs exactly once, possibly from inside this call. */
void dk__conn_send(dk__conn *k, dk__req *r, const char *ver, uint64_t now);
/* Fails the current request (if any) with err and closes. Idempotent. */
void dk__conn_close(dk__conn *k, int err);

dk__req *dk__req_new(const char *method, const char *path, bool versioned);
/* A request with an empty path (append it to r->path), or NULL. */
dk__req *dk__req_alloc(void);
/* Makes r (new, or cleared) a fresh request: every field but the buffers
 * reset. -EINVAL for a method that does not fit. */
int dk__req_setup(dk__req *r, const char *method, bool versioned);
/* Wipes what r carried (body, extra headers, answer) and empties its path,
 * keeping the allocations: for a request block about to be used again. */
void dk__req_clear(dk__req *r);
/* Whether r's buffers are small enough to be kept for the next request. */
bool dk__req_reusable(const dk__req *r);
void dk__req_free(dk__req *r);

/* A request block from the client's spares (or a new one), set up as
 * dk__req_setup does; NULL on allocation failure or a bad method. */
dk__req *dk__client_req(dk_client *c, const char *method, bool versioned);
/* Gives a finished request back: wiped and kept as a spare, or freed. */
void dk__client_recycle(dk_client *c, dk__req *r);
/* Queues r on the client (takes ownership; r->done runs exactly once,
 * possibly before this returns). */
void dk__client_submit(dk_client *c, dk__req *r);
uv_loop_t *dk__client_loop(dk_client *c);
/* the deadlines of a container create and start (dk_options) */
uint64_t dk__client_create_timeout(const dk_client *c);
uint64_t dk__client_start_timeout(const dk_client *c);
const char *dk__client_path(dk_client *c);
const es_http_limits *dk__client_limits(dk_client *c);

/* The typed error for a finished request: 0 for 2xx, else a dk_err with
 * Docker's message copied into *msg (caller frees; may stay NULL). */
int dk__status_error(const dk__req *r, char **msg);

/* Percent-encodes s for a query or path component. */
int dk__urlencode(es_buf *out, const char *s);

#endif
