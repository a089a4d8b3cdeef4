/* iam_simulate.c - iam:SimulatePrincipalPolicy of the embedded IAM.
 *
 * Why it is served: an agent in mode aws asks it for its execution roles'
 * preflight (agent/secrets/preflight.c). When a cluster's agents point their
 * ECS_SECRETS_ENDPOINT_* at one agent's embedded store (issue 23, the store
 * node), that store is their IAM: without this operation their preflight was
 * skipped and a role missing a permission failed later, on the fetch, with
 * one permission named instead of all of them.
 *
 * What it decides, as IAM's simulator does without a ResourcePolicy: the
 * principal's identity-based policies (a role's inline and attached managed
 * policies within its permissions boundary; a user's and its groups'), with
 * no resource policy. A KMS key is judged as if its policy delegated to IAM
 * (KMS's default key policy): the simulator does not read key policies. The
 * decision is the one the store takes on a call (al_authz_evaluate, the same
 * context keys), so the two cannot disagree on identity policies.
 *
 * Served: PolicySourceArn (a role or user of this account), ActionNames,
 * ResourceArns (default "*"), ContextEntries, MaxItems, Marker. Refused by
 * name (InvalidInput): PolicyInputList, PermissionsBoundaryPolicyInputList,
 * ResourcePolicy, ResourceOwner, CallerArn, ResourceHandlingOption - a
 * simulation that silently ignored them would answer another question.
 * Answer: one EvaluationResults member per (action, resource), actions
 * outermost, in the order given: EvalActionName, EvalResourceName,
 * EvalDecision (allowed | explicitDeny | implicitDeny), MatchedStatements
 * (the deciding policy's name as SourcePolicyId), MissingContextValues
 * (empty), paged by MaxItems with an opaque Marker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/authz.h"
#include "aws/local/iam_int.h"
#include "aws/local/internal.h"
#include "aws/local/qops.h"
#include "aws/local/query.h"
#include "aws/policy.h"

#define SIM_ACTIONS_MAX 100       /* ActionNames members */
#define SIM_RESOURCES_MAX 100     /* ResourceArns members */
#define SIM_CONTEXT_MAX 8         /* ContextEntries members */
#define SIM_CONTEXT_VALUES_MAX 16 /* values of one entry */
#define SIM_ACTION_LEN_MAX 128    /* "service:Action" */
#define SIM_RESOURCE_LEN_MAX 2048 /* one ARN (IAM's ResourceNameType) */
#define SIM_CONTEXT_KEY_MAX 256   /* ContextKeyName */
#define SIM_MATCHED_MAX 256

/* "service:Action": letters, digits and '-' before the colon, then letters,
 * digits and '*' / '?' (a pattern is what a policy's Action may hold, but a
 * simulated call names one action). */
static bool action_ok(const char *a)
{
    size_t n = strlen(a);
    const char *colon = strchr(a, ':');
    if (!n || n > SIM_ACTION_LEN_MAX || !colon || colon == a || !colon[1])
        return false;
    for (const char *p = a; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-'))
            return false;
    for (const char *p = colon + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

/* "*" or an ARN of printable ASCII. */
static bool resource_ok(const char *r)
{
    size_t n = strlen(r);
    if (!n || n > SIM_RESOURCE_LEN_MAX)
        return false;
    if (strcmp(r, "*") == 0)
        return true;
    if (strncmp(r, "arn:", 4) != 0)
        return false;
    for (const char *p = r; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

/* The members of a list parameter, each checked by ok, at most max. */
static int read_list(const al_form *f, const char *name, bool (*ok)(const char *),
                     const char *not_ok, const char **out, size_t max, size_t *n, al_error *e)
{
    *n = 0;
    for (const char *v; (v = al_form_member(f, name, *n + 1));) {
        if (*n == max)
            return al_fail(e, 400, "InvalidInput",
                           "At most %zu %s are supported by the embedded IAM.", max, name);
        if (!ok(v))
            return al_fail(e, 400, "InvalidInput", "%s: %s %s.", name, v, not_ok);
        out[(*n)++] = v;
    }
    return 0;
}

static const char *const context_types[] = {
    "string", "stringList", "numeric", "numericList", "boolean", "booleanList",
    "ip",     "ipList",     "binary",  "binaryList",  "date",    "dateList",
};

typedef struct sim_context {
    aw_ctx_entry entry[SIM_CONTEXT_MAX];
    const char *values[SIM_CONTEXT_MAX][SIM_CONTEXT_VALUES_MAX];
    size_t n;
} sim_context;

static int read_context(const al_form *f, sim_context *cx, al_error *e)
{
    char key[AL_FORM_KEY_MAX];
    cx->n = 0;
    for (size_t i = 1;; i++) {
        snprintf(key, sizeof key, "ContextEntries.member.%zu.ContextKeyName", i);
        const char *name = al_form_get(f, key);
        snprintf(key, sizeof key, "ContextEntries.member.%zu.ContextKeyType", i);
        const char *type = al_form_get(f, key);
        if (!name && !type)
            break;
        if (cx->n == SIM_CONTEXT_MAX)
            return al_fail(e, 400, "InvalidInput",
                           "At most %d context entries are supported by the embedded IAM.",
                           SIM_CONTEXT_MAX);
        if (!name || !*name || strlen(name) > SIM_CONTEXT_KEY_MAX)
            return al_fail(e, 400, "InvalidInput",
                           "A context entry needs a ContextKeyName of 1 to %d characters.",
                           SIM_CONTEXT_KEY_MAX);
        bool list = false, known = false;
        for (size_t t = 0; type && t < sizeof context_types / sizeof context_types[0]; t++)
            if (strcmp(type, context_types[t]) == 0) {
                known = true;
                list = strstr(type, "List") != NULL;
            }
        if (!known)
            return al_fail(e, 400, "InvalidInput",
                           "The context entry %s needs a ContextKeyType: string, "
                           "stringList, numeric, numericList, boolean, booleanList, ip, "
                           "ipList, binary, binaryList, date or dateList.",
                           name);
        snprintf(key, sizeof key, "ContextEntries.member.%zu.ContextKeyValues", i);
        size_t nv = 0;
        for (const char *v; (v = al_form_member(f, key, nv + 1));) {
            if (nv == SIM_CONTEXT_VALUES_MAX)
                return al_fail(e, 400, "InvalidInput",
                               "At most %d values of one context entry are supported by the "
                               "embedded IAM.",
                               SIM_CONTEXT_VALUES_MAX);
            cx->values[cx->n][nv++] = v;
        }
        if (!nv || (!list && nv > 1))
            return al_fail(e, 400, "InvalidInput",
                           "The context entry %s needs one value (several for a List "
                           "type).",
                           name);
        cx->entry[cx->n] = (aw_ctx_entry){name, cx->values[cx->n], nv, list};
        cx->n++;
    }
    return 0;
}

/* The principal the store would see for source: a session of the role (its
 * policies and boundary, aws:PrincipalArn the role's ARN), or the user. */
static int principal_of(al_ctx *c, const char *source, char *out, size_t n, al_error *e)
{
    char role_prefix[64], user_name[AL_USER_NAME_MAX + 1];
    snprintf(role_prefix, sizeof role_prefix, "arn:aws:iam::%s:role/", c->account);
    if (strncmp(source, role_prefix, strlen(role_prefix)) == 0) {
        const char *name = strrchr(source, '/') + 1;
        al_iam_role ri = {0};
        int r = al_iam_name_ok(name, AL_ROLE_NAME_MAX) ? al_iam_role_get(c, name, &ri) : -ENOENT;
        bool same = r == 0 && strcmp(ri.arn, source) == 0;
        al_iam_role_clear(&ri);
        if (r == -EIO)
            return al_fail_internal(e, "ServiceFailure");
        if (!same)
            return al_fail(e, 404, "NoSuchEntity", "The role with name %s cannot be found.", name);
        snprintf(out, n, "arn:aws:sts::%s:assumed-role/%s/SimulatePrincipalPolicy", c->account,
                 name);
        return 0;
    }
    if (al_iam_user_of_principal(c, source, user_name, sizeof user_name)) {
        al_iam_user u;
        int r = al_iam_user_get(c, user_name, &u);
        if (r == -EIO)
            return al_fail_internal(e, "ServiceFailure");
        if (r < 0 || strcmp(u.arn, source) != 0)
            return al_fail(e, 404, "NoSuchEntity", "The user with name %s cannot be found.",
                           user_name);
        snprintf(out, n, "%s", source);
        return 0;
    }
    return al_fail(e, 400, "InvalidInput",
                   "PolicySourceArn %s is not a role or user of this account (the embedded "
                   "IAM simulates roles and users).",
                   source);
}

static const char *decision_name(aw_decision_kind k)
{
    return k == AW_DECISION_ALLOW           ? "allowed"
           : k == AW_DECISION_EXPLICIT_DENY ? "explicitDeny"
                                            : "implicitDeny";
}

static int op_simulate_principal_policy(al_ctx *c, const char *principal, const al_form *f,
                                        al_xw *w, al_error *e)
{
    static const char *const unsupported[] = {
        "PolicyInputList.member.1",
        "PermissionsBoundaryPolicyInputList.member.1",
        "ResourcePolicy",
        "ResourceOwner",
        "CallerArn",
        "ResourceHandlingOption",
    };
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (al_form_get(f, unsupported[i])) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(unsupported[i], "."), unsupported[i]);
            return al_fail(e, 400, "InvalidInput",
                           "%s is not supported by the embedded IAM's simulator.", name);
        }
    const char *source;
    int64_t max;
    int r;
    if ((r = al_iam_need(f, "PolicySourceArn", "policySourceArn", &source, e)) < 0 ||
        (r = al_iam_opt_int_in_range(f, "MaxItems", "maxItems", 1, 1000, 100, &max, e)) < 0)
        return r;
    const char *actions[SIM_ACTIONS_MAX], *resources[SIM_RESOURCES_MAX];
    size_t na = 0, nr = 0;
    if ((r = read_list(f, "ActionNames", action_ok, "is not of the form service:Action", actions,
                       SIM_ACTIONS_MAX, &na, e)) < 0 ||
        (r = read_list(f, "ResourceArns", resource_ok, "is not an ARN or *", resources,
                       SIM_RESOURCES_MAX, &nr, e)) < 0)
        return r;
    if (!na)
        return al_iam_invalid(e, "actionNames", NULL, "Member must not be null");
    if (!nr)
        resources[nr++] = "*";
    size_t first = 0, total = na * nr;
    const char *marker = al_form_get(f, "Marker");
    if (marker) {
        char *end = NULL;
        errno = 0;
        unsigned long long m = strtoull(marker, &end, 10);
        if (errno || !*marker || *end || m == 0 || m >= total)
            return al_fail(e, 400, "InvalidInput", "Marker %s is not one this simulation gave.",
                           marker);
        first = (size_t)m;
    }
    sim_context cx;
    if ((r = read_context(f, &cx, e)) < 0 ||
        (r = al_authorize(c, principal, "iam:SimulatePrincipalPolicy", source, e)) < 0)
        return r;
    char who[AL_ROLE_ARN_MAX + 64];
    if ((r = principal_of(c, source, who, sizeof who, e)) < 0)
        return r;

    /* the simulator reads no resource policy; KMS keys as if their policy
     * delegated to IAM (KMS's default), so identity policies decide */
    char doc[256];
    snprintf(doc, sizeof doc,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"
             "{\"AWS\":\"arn:aws:iam::%s:root\"},\"Action\":\"*\",\"Resource\":\"*\"}]}",
             c->account);
    aw_policy *delegate = NULL;
    if (aw_policy_parse(doc, strlen(doc), AW_POLICY_RESOURCE, "simulated resource policy", NULL,
                        &delegate, NULL, 0) != AW_POLICY_OK)
        return al_fail_internal(e, "ServiceFailure");
    al_xw_open(w, "EvaluationResults");
    size_t i = first;
    for (; i < total && i - first < (size_t)max; i++) {
        const char *action = actions[i / nr], *resource = resources[i % nr];
        char matched[SIM_MATCHED_MAX] = "";
        aw_decision_kind kind = AW_DECISION_IMPLICIT_DENY;
        al_authz_req q = {.principal = who,
                          .action = action,
                          .resource = resource,
                          .resource_policy = delegate,
                          .extra = cx.entry,
                          .nextra = cx.n,
                          .matched = matched,
                          .matchedlen = sizeof matched};
        r = al_authz_evaluate(c, &q, NULL, 0, &kind);
        if (r < 0 && r != -EACCES) {
            aw_policy_free(delegate);
            return r == -ENOMEM ? al_fail(e, 500, "ServiceFailure", "Out of memory.")
                                : al_fail(e, 500, "PolicyEvaluation",
                                          "The policies of %s could not be evaluated.", source);
        }
        al_xw_open(w, "member");
        al_xw_elem(w, "EvalActionName", action);
        al_xw_elem(w, "EvalResourceName", resource);
        al_xw_elem(w, "EvalDecision", decision_name(kind));
        al_xw_open(w, "MatchedStatements");
        if (matched[0]) {
            al_xw_open(w, "member");
            al_xw_elem(w, "SourcePolicyId", matched);
            al_xw_close(w, "member");
        }
        al_xw_close(w, "MatchedStatements");
        al_xw_open(w, "MissingContextValues");
        al_xw_close(w, "MissingContextValues");
        al_xw_close(w, "member");
    }
    aw_policy_free(delegate);
    al_xw_close(w, "EvaluationResults");
    al_xw_elem(w, "IsTruncated", i < total ? "true" : "false");
    if (i < total)
        al_xw_elemf(w, "Marker", "%zu", i);
    return 0;
}

const al_qop al_iam_sim_qops[] = {
    {"SimulatePrincipalPolicy", op_simulate_principal_policy, true},
    {NULL, NULL, false},
};
