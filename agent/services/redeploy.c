/* redeploy.c - see redeploy.h. */
#include "agent/services/redeploy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Decimal digits of AG_REDEPLOY_INTERVAL_MAX and a little room: a longer
 * text is refused before it is read as a number. */
#define INTERVAL_DIGITS_MAX 10

static int read_interval(const char *v, int64_t *out)
{
    size_t n = strlen(v);
    if (n == 0 || n > INTERVAL_DIGITS_MAX)
        return -EINVAL;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -EINVAL;
        x = x * 10 + (v[i] - '0');
    }
    if (x > AG_REDEPLOY_INTERVAL_MAX)
        return -EINVAL;
    *out = x;
    return 0;
}

int ag_redeploy_policy_read(const ag_tags *tags, ag_redeploy_policy *out, char *err, size_t errlen)
{
    *out = (ag_redeploy_policy){.enabled = false, .min_interval_s = AG_REDEPLOY_INTERVAL_DEFAULT};
    const char *on = ag_tags_get(tags, AG_REDEPLOY_TAG);
    const char *iv = ag_tags_get(tags, AG_REDEPLOY_INTERVAL_TAG);
    bool enabled = false;
    int64_t interval = AG_REDEPLOY_INTERVAL_DEFAULT;
    if (on && strcmp(on, "true") == 0)
        enabled = true;
    else if (on && strcmp(on, "false") != 0) {
        snprintf(err, errlen, "tags: %s: must be true or false", AG_REDEPLOY_TAG);
        return -EINVAL;
    }
    if (iv && read_interval(iv, &interval) < 0) {
        snprintf(err, errlen, "tags: %s: must be a whole number of seconds from 0 to %d",
                 AG_REDEPLOY_INTERVAL_TAG, AG_REDEPLOY_INTERVAL_MAX);
        return -EINVAL;
    }
    out->enabled = enabled;
    out->min_interval_s = interval;
    return 0;
}

ag_redeploy_verdict ag_redeploy_decide(const ag_redeploy_in *in, int64_t *wait_s)
{
    if (wait_s)
        *wait_s = 0;
    if (!in->policy.enabled)
        return AG_REDEPLOY_OFF;
    if (in->status != AG_SVC_ACTIVE)
        return AG_REDEPLOY_NOT_ACTIVE;
    if (in->stale_tasks <= 0)
        return AG_REDEPLOY_NOTHING_STALE;
    if (in->primary_rollout == AG_ROLLOUT_IN_PROGRESS)
        return AG_REDEPLOY_IN_PROGRESS;
    if (in->primary_rollout == AG_ROLLOUT_FAILED)
        return AG_REDEPLOY_FAILED;
    /* a clock set back (last_at in the future) counts as the interval
     * passed: waiting for the clock to catch up could take hours */
    int64_t since = in->now - in->last_at;
    if (in->last_at > 0 && since >= 0 && since < in->policy.min_interval_s) {
        if (wait_s)
            *wait_s = in->policy.min_interval_s - since;
        return AG_REDEPLOY_TOO_SOON;
    }
    return AG_REDEPLOY_GO;
}

const char *ag_redeploy_verdict_name(ag_redeploy_verdict v)
{
    static const char *const names[] = {
        "OFF", "NOT_ACTIVE", "NOTHING_STALE", "IN_PROGRESS", "FAILED", "TOO_SOON", "GO"};
    return (size_t)v < sizeof names / sizeof *names ? names[v] : "?";
}
