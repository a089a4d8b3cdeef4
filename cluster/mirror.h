/* mirror.h - a prefix of etcd's keys followed from the loop: read whole (in
 * pages of CL_MIRROR_PAGE keys, all at the first page's revision), then
 * watched from the revision after; each key's value reaches on_put, each
 * deletion on_delete, and each whole read on_synced. A watch that breaks
 * (a member gone, a stream cut) is started again after retry_ms from the
 * revision after the last one delivered, on the next endpoint: the events
 * meanwhile, deletions included, arrive in order. When etcd no longer has
 * them (compacted) or ends the watch itself, the prefix is read whole
 * again: on_put sees every live key again, so the receiver's puts must be
 * idempotent (a key's mod_revision tells a newer value from an older), and
 * every key delivered before that the read no longer finds reaches
 * on_delete (the mirror remembers the keys it delivered, at most
 * CL_MIRROR_KEYS_MAX).
 *
 * Uses an etcd client it does not own: stop the mirror before the client
 * closes, free it once the client has reported closed. A library: nothing
 * is logged (on_error reports a failed call, which is retried). */
#ifndef ES_CLUSTER_MIRROR_H
#define ES_CLUSTER_MIRROR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/etcd.h"

/* keys per page: CL_ETCD_VALUE_MAX values in base64 stay well inside
 * CL_ETCD_ANSWER_MAX (64 x 64 KiB x 4/3 = 5.3 MiB) */
#define CL_MIRROR_PAGE 64
/* keys remembered for the sweep after a compaction: ten times the agent's
 * bound on the tasks it keeps (AG_CLUSTER_TASKS_MAX) */
#define CL_MIRROR_KEYS_MAX 100000

typedef struct cl_mirror cl_mirror;

typedef struct cl_mirror_cbs {
    void (*on_put)(void *arg, const cl_kv *kv);
    void (*on_delete)(void *arg, const char *key);
    /* a whole read was delivered: n keys at revision */
    void (*on_synced)(void *arg, size_t n, int64_t revision);
    void (*on_error)(void *arg, const char *detail);
    void *arg;
} cl_mirror_cbs;

/* Starts reading prefix (copied). 0, -EINVAL, -ENOMEM. */
int cl_mirror_start(uv_loop_t *loop, cl_etcd *etcd, const char *prefix, uint64_t retry_ms,
                    const cl_mirror_cbs *cbs, cl_mirror **out);
/* No callback but the cancelled ones' after this. NULL-safe. */
void cl_mirror_stop(cl_mirror *m);
/* After cl_mirror_stop, once the etcd client has closed: frees m when its
 * timer is closed, then done(arg). NULL-safe (done still called). */
void cl_mirror_free(cl_mirror *m, void (*done)(void *arg), void *arg);

typedef struct cl_mirror_stats {
    unsigned long syncs, pages, puts, deletes;
    unsigned long resumes;   /* watches started again after the last revision delivered */
    unsigned long compacted; /* watches that found their revisions compacted */
    unsigned long swept;     /* deletions found by a whole read (part of deletes) */
} cl_mirror_stats;
void cl_mirror_get_stats(const cl_mirror *m, cl_mirror_stats *out);

#endif
