/* td_restart.h - a container definition's restartPolicy (issue 20), as ECS
 * runs it on EC2:
 *
 *   "restartPolicy": {"enabled": true, "ignoredExitCodes": [0],
 *                     "restartAttemptPeriod": 60}
 *
 * When the container exits and its policy is enabled, the task is not
 * stopping, the exit code is known and not one of ignoredExitCodes, and the
 * container has run for at least restartAttemptPeriod seconds since it
 * started (or since its last restart), ECS's agent starts the same
 * container again: a restart in place, which keeps everything the
 * container was created with (its Env, and so the secret values it got).
 * Otherwise the exit counts as it would without a policy (an essential
 * container's stops the task).
 *
 * ECS's rules: enabled is required; at most 50 ignoredExitCodes;
 * restartAttemptPeriod 60 to 1800 seconds, 300 when not given. Refusals
 * are ClientExceptions naming the member. Pure: no I/O, no logging. */
#ifndef AG_TD_RESTART_H
#define AG_TD_RESTART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/json.h"

struct ag_td_error;

#define AG_RESTART_IGNORED_MAX 50
#define AG_RESTART_PERIOD_MIN 60
#define AG_RESTART_PERIOD_MAX 1800
#define AG_RESTART_PERIOD_DEFAULT 300
#define AG_RESTART_WHY_MAX 96 /* ag_restart_decide's reason */

typedef struct ag_restart_policy {
    bool present; /* restartPolicy was given (and is described back) */
    bool enabled;
    bool has_ignored; /* ignoredExitCodes given (an empty list is described back) */
    int ignored[AG_RESTART_IGNORED_MAX];
    size_t n_ignored;
    bool has_period; /* restartAttemptPeriod given */
    int64_t period;  /* seconds; AG_RESTART_PERIOD_DEFAULT when not given */
} ag_restart_policy;

/* Reads cd's restartPolicy (prefix: the container's field path) into out
 * (zeroed first: absent is not present). 0, -EINVAL (e filled). */
int ag_td_restart_parse(const es_json *cd, const char *prefix, ag_restart_policy *out,
                        struct ag_td_error *e);
/* "restartPolicy": {...} as registered; nothing when not present. */
void ag_td_restart_write(es_jw *w, const ag_restart_policy *p);

/* ECS's agent's decision on a container's exit: true to start it again.
 * task_stopping: the task's desired status is STOPPED; exit_code NULL when
 * unknown; ran_s: seconds since it started or was last restarted. When
 * false, why says which rule held it (for the log). */
bool ag_restart_decide(const ag_restart_policy *p, bool task_stopping, const int *exit_code,
                       int64_t ran_s, char *why, size_t whylen);

#endif
