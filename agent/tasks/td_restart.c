/* td_restart.c - a container definition's restartPolicy (td_restart.h). */
#include "agent/tasks/td_restart.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "agent/tasks/td_json.h"

#define CLIENT "ClientException"
#define INVALID "InvalidParameterException"

static const char *const members[] = {"enabled", "ignoredExitCodes", "restartAttemptPeriod"};

static int parse_ignored(const es_json *rp, const char *path, ag_restart_policy *out,
                         ag_td_error *e)
{
    char lpath[AG_TD_FIELD_PATH_MAX];
    int rc = 0;
    const es_json *list = ag_td_list_member(rp, path, "ignoredExitCodes", AG_RESTART_IGNORED_MAX,
                                            lpath, sizeof lpath, &rc, e);
    if (!list)
        return rc;
    out->has_ignored = true;
    for (size_t i = 0; i < es_json_len(list) && rc == 0; i++) {
        char ipath[AG_TD_FIELD_PATH_MAX];
        ag_td_pathf(ipath, sizeof ipath, "%s[%zu]", lpath, i);
        int64_t v = 0;
        rc = ag_td_int_at(es_json_at(list, i), ipath, INT_MIN, INT_MAX, &v, e);
        out->ignored[out->n_ignored++] = (int)v;
    }
    return rc;
}

int ag_td_restart_parse(const es_json *cd, const char *prefix, ag_restart_policy *out,
                        ag_td_error *e)
{
    memset(out, 0, sizeof *out);
    out->period = AG_RESTART_PERIOD_DEFAULT;
    const es_json *rp = ag_td_member(cd, "restartPolicy");
    if (!rp)
        return 0;
    char path[AG_TD_FIELD_PATH_MAX];
    ag_td_pathf(path, sizeof path, "%s.restartPolicy", prefix);
    if (rp->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID,
                         "%s: must be an object {enabled, ignoredExitCodes, "
                         "restartAttemptPeriod}",
                         path);
    int rc = ag_td_known_members(rp, path, "ContainerRestartPolicy", members,
                                 sizeof members / sizeof *members, e);
    ag_opt_bool enabled = {0};
    if (rc == 0)
        rc = ag_td_bool_member(rp, path, "enabled", &enabled, e);
    if (rc == 0 && !enabled.set)
        rc = ag_td_bad(e, CLIENT, "%s.enabled: required", path);
    if (rc == 0)
        rc = parse_ignored(rp, path, out, e);
    if (rc == 0)
        rc = ag_td_int_member(rp, path, "restartAttemptPeriod", AG_RESTART_PERIOD_MIN,
                              AG_RESTART_PERIOD_MAX, &out->has_period, &out->period, e);
    if (rc)
        return rc;
    if (!out->has_period)
        out->period = AG_RESTART_PERIOD_DEFAULT;
    out->present = true;
    out->enabled = enabled.value;
    return 0;
}

void ag_td_restart_write(es_jw *w, const ag_restart_policy *p)
{
    if (!p->present)
        return;
    es_jw_key(w, "restartPolicy");
    es_jw_obj(w);
    es_jw_kbool(w, "enabled", p->enabled);
    if (p->has_ignored) {
        es_jw_key(w, "ignoredExitCodes");
        es_jw_arr(w);
        for (size_t i = 0; i < p->n_ignored; i++)
            es_jw_int(w, p->ignored[i]);
        es_jw_arr_end(w);
    }
    if (p->has_period)
        es_jw_kint(w, "restartAttemptPeriod", p->period);
    es_jw_obj_end(w);
}

bool ag_restart_decide(const ag_restart_policy *p, bool task_stopping, const int *exit_code,
                       int64_t ran_s, char *why, size_t whylen)
{
    if (!p->enabled) {
        snprintf(why, whylen, "restart policy is not enabled");
        return false;
    }
    if (task_stopping) {
        snprintf(why, whylen, "the task is stopping");
        return false;
    }
    if (!exit_code) {
        snprintf(why, whylen, "exit code is unknown");
        return false;
    }
    for (size_t i = 0; i < p->n_ignored; i++)
        if (p->ignored[i] == *exit_code) {
            snprintf(why, whylen, "exit code %d is ignored", *exit_code);
            return false;
        }
    if (ran_s < p->period) {
        snprintf(why, whylen,
                 "it ran %" PRId64 " s, less than its restartAttemptPeriod (%" PRId64 " s)", ran_s,
                 p->period);
        return false;
    }
    return true;
}
