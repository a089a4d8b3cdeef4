/* etcd.h - an etcd v3 client over its JSON gateway, on the libuv loop.
 *
 * HTTP through aws/http.h (libcurl's multi socket API driven from the loop:
 * no call here blocks). The wire is etcd_wire.h. Several endpoints, tried in
 * turn: a request that cannot connect, times out, or is told the member is
 * unavailable (no leader, no quorum) goes to the next endpoint, once round
 * the list; the endpoint that answered stays the first choice. TLS client
 * settings (a CA file, a client certificate and key) go to curl as they are.
 *
 * Calls: range (a key or a prefix), put, delete (a key or a prefix), txn
 * (one compare on a key's mod_revision, create_revision or version; puts and
 * deletes on success; the key read back on failure), lease grant,
 * keepalive (one round: the TTL left, 0 when the lease is gone), revoke, and
 * watch (a long streaming POST, its lines parsed one at a time, each at most
 * CL_ETCD_ANSWER_MAX).
 *
 * Callbacks run on the loop, never from inside the call that started them.
 * A library: it never logs. */
#ifndef ES_CLUSTER_ETCD_H
#define ES_CLUSTER_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/etcd_wire.h"

#define CL_ETCD_ENDPOINTS_MAX 16
#define CL_ETCD_URL_MAX 512
#define CL_ETCD_TIMEOUT_MS 5000 /* one request to one endpoint */

typedef enum cl_etcd_err {
    CL_ETCD_OK = 0,
    CL_ETCD_E_UNAVAILABLE = -2000, /* no endpoint answered */
    CL_ETCD_E_ANSWER = -2001,      /* an answer we could not read */
    CL_ETCD_E_REFUSED = -2002,     /* etcd answered an error (the answer says which) */
    CL_ETCD_E_CANCELED = -2003,    /* the client closed first */
    CL_ETCD_E_NOMEM = -2004,
    CL_ETCD_E_INVALID = -2005, /* a bad request (key too long, ...) */
} cl_etcd_err;
const char *cl_etcd_strerror(int err);

typedef struct cl_etcd cl_etcd;

typedef struct cl_etcd_config {
    const char *endpoints;            /* "http://10.0.0.1:2379,https://..." (copied) */
    const char *ca_file, *cert, *key; /* PEM files; NULL: none (copied) */
    long timeout_ms;                  /* 0: CL_ETCD_TIMEOUT_MS */
} cl_etcd_config;

/* 0, or CL_ETCD_E_INVALID (why says which endpoint) / CL_ETCD_E_NOMEM. */
int cl_etcd_create(uv_loop_t *loop, const cl_etcd_config *cfg, cl_etcd **out, char *why,
                   size_t whylen);
/* Ends what is in flight (callbacks get CL_ETCD_E_CANCELED) and frees e once
 * its handles are closed, then calls closed(arg). NULL-safe. */
void cl_etcd_close(cl_etcd *e, void (*closed)(void *arg), void *arg);

/* err 0: a is etcd's answer (a->is_error: etcd refused: err is then
 * CL_ETCD_E_REFUSED and a says why); else a is NULL. a lives during the call. */
typedef void (*cl_etcd_cb)(void *arg, int err, const cl_answer *a);

int cl_etcd_range(cl_etcd *e, const char *key, bool prefix, cl_etcd_cb cb, void *arg);
/* A page of a prefix's keys (cl_wire_range_page); a->more: more follow
 * (the next page starts at the last key, which it repeats). */
int cl_etcd_range_page(cl_etcd *e, const char *from, const char *prefix, int64_t limit,
                       int64_t revision, cl_etcd_cb cb, void *arg);
int cl_etcd_put(cl_etcd *e, const char *key, const char *value, size_t len, int64_t lease,
                cl_etcd_cb cb, void *arg);
int cl_etcd_delete(cl_etcd *e, const char *key, bool prefix, cl_etcd_cb cb, void *arg);
int cl_etcd_txn(cl_etcd *e, const cl_txn *t, cl_etcd_cb cb, void *arg);
int cl_etcd_lease_grant(cl_etcd *e, int64_t ttl, cl_etcd_cb cb, void *arg);
/* a->ttl: seconds left; 0 (or a NOT_FOUND refusal): the lease is gone. */
int cl_etcd_lease_keepalive(cl_etcd *e, int64_t id, cl_etcd_cb cb, void *arg);
int cl_etcd_lease_revoke(cl_etcd *e, int64_t id, cl_etcd_cb cb, void *arg);

/* A watch from start_revision (0: now) on key or its prefix. on_msg gets
 * each message (created, events, canceled, compacted); on_end the end of
 * the stream, once (err: why, CL_ETCD_E_CANCELED after cl_etcd_watch_cancel),
 * after which w is gone. */
typedef struct cl_etcd_watch cl_etcd_watch;
typedef struct cl_etcd_watch_cbs {
    void (*on_msg)(void *arg, const cl_answer *a);
    void (*on_end)(void *arg, int err);
    void *arg;
} cl_etcd_watch_cbs;
int cl_etcd_watch_start(cl_etcd *e, const char *key, bool prefix, int64_t start_revision,
                        const cl_etcd_watch_cbs *cbs, cl_etcd_watch **out);
/* Ends the watch: on_end(CL_ETCD_E_CANCELED) follows (on the loop). */
void cl_etcd_watch_cancel(cl_etcd_watch *w);

/* Splits and checks an endpoint list (the configuration's validator):
 * 1..CL_ETCD_ENDPOINTS_MAX http:// or https:// URLs without a path. The
 * count, or -EINVAL with why. */
int cl_etcd_parse_endpoints(const char *list, char urls[][CL_ETCD_URL_MAX], size_t max, char *why,
                            size_t whylen);

typedef struct cl_etcd_stats {
    unsigned long requests, failovers, failures, watch_messages, watch_bad_lines;
} cl_etcd_stats;
void cl_etcd_get_stats(const cl_etcd *e, cl_etcd_stats *out);
/* The endpoint tried first now (tests, the log). */
const char *cl_etcd_current(const cl_etcd *e);

#endif
