/* redeploy.h - redeploy on rotation: a service tagged
 * ecs-secrets:redeploy-on-rotation = true starts a forced new deployment by
 * itself when drift finds tasks holding a rotated value (issue 21). Pure:
 * the policy read from the service's tags and the decision, on a clock the
 * caller passes; agent/services/scheduler.c acts on it.
 *
 * Tags (ECS service tags, so the aws CLI and boto3 pass them unchanged):
 *   ecs-secrets:redeploy-on-rotation   "true" or "false" (absent: false)
 *   ecs-secrets:redeploy-min-interval  whole seconds, 0..AG_REDEPLOY_INTERVAL_MAX
 *                                      (absent: AG_REDEPLOY_INTERVAL_DEFAULT): the
 *                                      least time between two automatic
 *                                      deployments of one service
 * Anything else is refused naming the tag (InvalidParameterException).
 *
 * The decision, in this order (the first that holds answers):
 *   not tagged                          OFF
 *   the service is not ACTIVE           NOT_ACTIVE
 *   no task holds a rotated value       NOTHING_STALE
 *   the PRIMARY deployment IN_PROGRESS  IN_PROGRESS (a rollout already
 *                                       replaces tasks; its new ones resolve
 *                                       their values afresh)
 *   the PRIMARY deployment FAILED       FAILED (the circuit breaker stopped
 *                                       it; deploying the same definition
 *                                       again would fail again: a user's
 *                                       deployment comes first)
 *   the last automatic one was less     TOO_SOON (wait_s: how long yet)
 *   than min-interval ago
 *   else                                GO (the first comes as soon as drift
 *                                       sees the rotation) */
#ifndef AG_SERVICES_REDEPLOY_H
#define AG_SERVICES_REDEPLOY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/services/service.h"
#include "agent/tasks/tags.h"

#define AG_REDEPLOY_TAG "ecs-secrets:redeploy-on-rotation"
#define AG_REDEPLOY_INTERVAL_TAG "ecs-secrets:redeploy-min-interval"
#define AG_REDEPLOY_INTERVAL_DEFAULT 300
#define AG_REDEPLOY_INTERVAL_MAX (366 * 86400) /* a year: longer is "never" */

typedef struct ag_redeploy_policy {
    bool enabled;
    int64_t min_interval_s;
} ag_redeploy_policy;

/* The policy of a service's tags. 0; -EINVAL with err naming the tag (out
 * set to the defaults: off). */
int ag_redeploy_policy_read(const ag_tags *tags, ag_redeploy_policy *out, char *err, size_t errlen);

typedef enum ag_redeploy_verdict {
    AG_REDEPLOY_OFF,
    AG_REDEPLOY_NOT_ACTIVE,
    AG_REDEPLOY_NOTHING_STALE,
    AG_REDEPLOY_IN_PROGRESS,
    AG_REDEPLOY_FAILED,
    AG_REDEPLOY_TOO_SOON,
    AG_REDEPLOY_GO,
} ag_redeploy_verdict;

typedef struct ag_redeploy_in {
    ag_redeploy_policy policy;
    ag_svc_status status;
    ag_rollout primary_rollout;
    int stale_tasks; /* alive tasks holding a rotated value */
    int64_t last_at; /* the last automatic deployment (epoch s); 0: none yet */
    int64_t now;     /* epoch s */
} ag_redeploy_in;

/* The decision; *wait_s (may be NULL) the seconds left when TOO_SOON, else 0. */
ag_redeploy_verdict ag_redeploy_decide(const ag_redeploy_in *in, int64_t *wait_s);
const char *ag_redeploy_verdict_name(ag_redeploy_verdict v);

#endif
