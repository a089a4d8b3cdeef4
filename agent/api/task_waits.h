/* task_waits.h - DescribeTasks answers held while a task they name is in
 * transition, until it moves or a short wait ends (issue 22).
 *
 * Why: a client that waits for a launch (or a stop) asks DescribeTasks in a
 * loop. At a tight loop's rate (issue 22's client asks every 2 ms) each
 * question costs the client about 2 ms of CPU and the daemon a few tens of
 * µs, and on a small host that CPU is taken from runc and dockerd, whose
 * container start *is* the launch: measured on the 2-core development
 * machine, launches polled that way took 1.11x the same container started
 * directly, and 0.94x a direct start with the same polling running beside
 * it (docs/BENCHMARKS.md, "DescribeTasks held while a task moves"). Held,
 * a question is answered the moment one of its tasks changes lastStatus
 * (the client learns of RUNNING then, not at its next poll), or when the
 * wait (ECS_SECRETS_DESCRIBE_WAIT_MS, default 50 ms; 0: never held) ends
 * with nothing changed; a polling client asks tens of times a launch, not
 * hundreds. The answer is always written when it is sent: what it says is
 * the tasks' state at that moment, as an immediate answer's is.
 *
 * Which questions wait: the DescribeTasks of this host's own tasks (not
 * the cluster's records of other hosts'), at most AG_TASK_WAITS_TASKS_MAX
 * of them, every one found, at least one in transition (lastStatus short
 * of its desiredStatus: PROVISIONING, PENDING or ACTIVATING towards
 * RUNNING; DEACTIVATING, STOPPING or DEPROVISIONING towards STOPPED), and
 * only through the listener (a deferred reply). At most AG_TASK_WAITS_MAX
 * wait at once; beyond that a question is answered at once. The listener's
 * close waits for the held replies: ag_task_waits_close answers them all.
 * One thread (the loop). */
#ifndef AG_API_TASK_WAITS_H
#define AG_API_TASK_WAITS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/api/api.h"
#include "agent/tasks/engine.h"
#include "aws/listener.h"
#include "common/json.h"

#define AG_TASK_WAITS_MAX 256      /* questions held at once */
#define AG_TASK_WAITS_TASKS_MAX 16 /* tasks a held question may name */
#define AG_TASK_WAITS_MS_MAX 20000 /* ECS_SECRETS_DESCRIBE_WAIT_MS's ceiling */
#define AG_TASK_WAITS_MS_DEFAULT 50

typedef struct ag_task_waits ag_task_waits;

/* Writes a held question's answer (the members of the open object: tasks
 * and failures) for its references as the client gave them, looked up
 * again now. 0, or < 0: the answer is a ServerException. */
typedef int (*ag_task_waits_write_fn)(void *arg, const char *const *refs, size_t n, es_jw *w);

typedef struct ag_task_waits_config {
    uv_loop_t *loop;
    ag_engine *engine; /* observed for lastStatus changes */
    ag_api *api;       /* for error answers */
    uint64_t wait_ms;  /* 0: nothing is held */
    ag_task_waits_write_fn write;
    void *write_arg;
} ag_task_waits_config;

/* 0, -EINVAL (wait_ms above AG_TASK_WAITS_MS_MAX), -ENOSPC (no observer
 * slot), -ENOMEM. */
int ag_task_waits_create(const ag_task_waits_config *cfg, ag_task_waits **out);

/* Whether t is in transition (lastStatus short of desiredStatus). */
bool ag_task_waits_in_transition(const ag_task *t);

/* Whether a DescribeTasks of these found tasks (n of them, none NULL)
 * should wait. */
bool ag_task_waits_should_hold(const ag_task_waits *w, ag_task *const *tasks, size_t n);

/* Holds the question: takes its reply from call and keeps copies of refs
 * (what the client asked, for the answer's lookups) and of the tasks' ids
 * (what a change is matched on). AW_LISTENER_LATER when held; 0 when it
 * could not be (out of memory, the reply not taken: answer now). */
int ag_task_waits_hold(ag_task_waits *w, const aw_listener_call *call, const char *const *refs,
                       ag_task *const *tasks, size_t n);

typedef struct ag_task_waits_stats {
    uint64_t held;       /* questions held */
    uint64_t by_change;  /* ... answered because a task moved */
    uint64_t by_timeout; /* ... answered at the end of the wait */
    uint64_t refused;    /* not held: AG_TASK_WAITS_MAX were waiting */
    size_t waiting;      /* held now */
} ag_task_waits_stats;
void ag_task_waits_get_stats(const ag_task_waits *w, ag_task_waits_stats *out);

/* Stops observing, answers every held question with the tasks' state now,
 * and calls done once its timer has closed. Then ag_task_waits_free. */
void ag_task_waits_close(ag_task_waits *w, void (*done)(void *arg), void *arg);
void ag_task_waits_free(ag_task_waits *w);

#endif
