/* match.h - PutParameter's AllowedPattern matched off the event loop (issue 17).
 *
 * A match is bounded (ssm.c al_ssm_check_pattern: PCRE2's limits and a CPU ceiling of
 * AL_SSM_PATTERN_CPU_LIMIT_MS) but can still take tens of milliseconds, and three clients
 * matching at once held the loop's /metrics for 131 ms. So a call that came through the
 * listener (al_mount) has it run on libuv's thread pool:
 *
 *   1. The operation runs on the loop as ever; when it reaches a pattern check
 *      (al_match_check) it asks for the match and answers AL_MATCH_LATER instead, having
 *      rolled its write transaction back: nothing is held open while the worker runs.
 *   2. mount.c hands the call to al_match_start, which copies the request, queues the match
 *      (uv_queue_work) and takes the listener's reply (aw_listener_defer).
 *   3. Back on the loop with the result, the same request is dispatched again, whole, in a
 *      new transaction: everything the first run checked (the caller's authorisation,
 *      whether the parameter exists, Overwrite, its version, its stored pattern) is checked
 *      again, and the pattern check answers the worker's result when the pattern and the
 *      value are those matched. If the pattern changed meanwhile (another PutParameter), the
 *      new one is matched in its turn, at most AL_MATCH_ROUNDS_MAX times, then TooManyUpdates.
 *
 * Matches in flight are bounded by AL_MATCH_IN_FLIGHT_MAX (over it: ThrottlingException,
 * "Rate exceeded", as SSM answers a caller over its rate), so no peer queues unbounded work.
 * A caller that went away before the result (its connection closed, the listener closing at
 * the stop) is not answered and nothing is written. The copies hold the value: wiped.
 *
 * Not thread-safe beyond that: every function here runs on the loop; the worker touches
 * only its own copies of the pattern and the value. */
#ifndef AL_MATCH_H
#define AL_MATCH_H

#include <errno.h>
#include <stdint.h>
#include <uv.h>

#include "aws/local/internal.h"

/* Matches queued or running at once, over every listener of the store. libuv's pool has
 * four threads (UV_THREADPOOL_SIZE) and the machine may have two cores: four keeps every
 * thread busy without queueing work behind the pool, each bounded by the CPU ceiling. */
#define AL_MATCH_IN_FLIGHT_MAX 4
/* Matches one request may need when other writes keep changing its parameter's pattern. */
#define AL_MATCH_ROUNDS_MAX 3
/* An operation's answer: it needs a match; run it again with the result. */
#define AL_MATCH_LATER (-EINPROGRESS)

typedef struct al_match_stats {
    uint64_t queued;    /* matches given to the pool */
    uint64_t throttled; /* calls refused over AL_MATCH_IN_FLIGHT_MAX */
    uint64_t orphaned;  /* results whose caller was gone: not written, not answered */
    uint64_t rounds;    /* requests whose pattern changed while it was matched */
} al_match_stats;

/* Lets calls through listeners on loop defer their matches (al_mount). 0 or -ENOMEM. */
int al_match_enable(al_ctx *c, uv_loop_t *loop);
/* al_close: results still to come find their store gone and are dropped. NULL-safe. */
void al_match_free(al_ctx *c);

/* The pattern check of an operation: 0 when value satisfies pattern (or there is none), or
 * an error in e as al_ssm_check_pattern answers it. Inline, unless the call can defer (it
 * came through al_match_dispatch): then the worker's result for this pattern and value, or
 * AL_MATCH_LATER having asked for it. */
int al_match_check(al_ctx *c, const char *pattern, const char *value, al_error *e);

/* A JSON 1.1 call from the listener (mount.c): dispatched, its match deferred when it needs
 * one. Answers as a route does: 0 with out, < 0 with e, or AW_LISTENER_LATER. */
int al_match_dispatch(al_ctx *c, const aw_listener_call *k, es_buf *out, al_error *e);

void al_match_get_stats(const al_ctx *c, al_match_stats *out);

#endif
