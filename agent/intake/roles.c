/* roles.c - who may name which execution role (roles.h). */
#include "agent/intake/roles.h"

#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PASSED_TO "ecs-tasks.amazonaws.com"
#define PWBUF_MAX 16384 /* getpwuid_r's buffer */

static bool rule_is_for(const cf_docker_rule *r, const ag_intake_caller *who)
{
    if (!r->gid)
        return r->id == (uint32_t)who->uid;
    for (size_t i = 0; i < who->ngids; i++)
        if (r->id == (uint32_t)who->gids[i])
            return true;
    return false;
}

/* The embedded user's iam:PassRole on role. */
static int user_may_pass(al_ctx *iam, const char *user, const char *role, char *why, size_t whylen)
{
    const char *vals[1] = {PASSED_TO};
    aw_ctx_entry ctx = {"iam:PassedToService", vals, 1, false};
    return al_principal_may(iam, user, "iam:PassRole", role, &ctx, 1, why, whylen);
}

int ag_intake_may_pass(const cf_docker_rule *rules, size_t n, al_ctx *iam,
                       const ag_intake_caller *who, const char *role, char *why, size_t whylen)
{
    if (who->uid == 0)
        return 0;
    const cf_docker_rule *user = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!rule_is_for(&rules[i], who))
            continue;
        if (!rules[i].principal && fnmatch(rules[i].arn, role, FNM_NOESCAPE) == 0)
            return 0;
        if (rules[i].principal && !user)
            user = &rules[i];
    }
    /* the first user the caller maps to decides (one identity per caller) */
    if (user && iam) {
        char iam_why[AG_INTAKE_WHY_MAX] = "";
        int r = user_may_pass(iam, user->arn, role, iam_why, sizeof iam_why);
        if (r == -EACCES)
            snprintf(why, whylen, "uid %u (as %s) may not name the execution role %s: %s",
                     (unsigned)who->uid, user->arn, role, iam_why);
        return r;
    }
    snprintf(why, whylen,
             "uid %u may not name the execution role %s: no entry of ECS_SECRETS_DOCKER_ROLES "
             "for its uid or groups allows it (only root may name any role)",
             (unsigned)who->uid, role);
    return -EACCES;
}

size_t ag_intake_groups(uid_t uid, gid_t gid, gid_t *out, size_t cap)
{
    out[0] = gid;
    struct passwd pw, *res = NULL;
    char buf[PWBUF_MAX];
    gid_t all[AG_INTAKE_GROUPS_MAX];
    if (cap < 2 || getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res)
        return 1;
    int ng = AG_INTAKE_GROUPS_MAX;
    if (getgrouplist(pw.pw_name, gid, all, &ng) < 0)
        ng = AG_INTAKE_GROUPS_MAX; /* more than that: the first ones are there */
    size_t k = 1;
    for (int i = 0; i < ng && k < cap; i++)
        if (all[i] != gid)
            out[k++] = all[i];
    return k;
}
