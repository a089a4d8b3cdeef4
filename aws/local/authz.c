#include "aws/local/authz.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws/local/iam.h"
#include "aws/local/internal.h"
#include "aws/local/kms_policy.h"
#include "aws/local/sm_policy.h"
#include "common/alloc.h"

#define CTX_MAX 10

static const char allow_all[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"AccountRoot\",\"Effect\":\"Allow\","
    "\"Action\":\"*\",\"Resource\":\"*\"}]}";

/* The key's policy: the stored one, or KMS's default (kms_policy.h). A
 * policy that no longer parses (cannot happen: validated when stored)
 * grants nothing. */
static int key_policy_of(al_ctx *c, const char *arn, aw_policy **out)
{
    const char *id = strstr(arn, ":key/") + 5;
    char *doc = NULL;
    int r = al_kms_key_policy_of(c, id, &doc);
    if (r < 0)
        return r;
    static const char none[] = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                               "\"Allow\",\"Principal\":\"*\",\"NotAction\":\"*\","
                               "\"Resource\":\"*\"}]}";
    int pr =
        aw_policy_parse(doc, strlen(doc), AW_POLICY_RESOURCE, "key policy", NULL, out, NULL, 0);
    es_free(doc);
    if (pr == AW_POLICY_E_NOMEM)
        return -ENOMEM;
    if (pr != AW_POLICY_OK && aw_policy_parse(none, sizeof none - 1, AW_POLICY_RESOURCE,
                                              "key policy", NULL, out, NULL, 0) != AW_POLICY_OK)
        return -ENOMEM;
    return 0;
}

static bool is_kms_key(const char *arn)
{
    /* arn:aws:kms:REGION:ACCOUNT:key/ID */
    if (strncmp(arn, "arn:aws:kms:", 12) != 0)
        return false;
    const char *p = arn + 12;
    for (int i = 0; i < 2 && p; i++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    return p && strncmp(p, "key/", 4) == 0;
}

/* ROLE of arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, for our account. */
static bool session_role(al_ctx *c, const char *principal, char *role, size_t n)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "arn:aws:sts::%s:assumed-role/", c->account);
    size_t pl = strlen(prefix);
    if (strncmp(principal, prefix, pl) != 0)
        return false;
    const char *name = principal + pl, *slash = strchr(name, '/');
    if (!slash || slash == name || (size_t)(slash - name) >= n || !slash[1])
        return false;
    memcpy(role, name, (size_t)(slash - name));
    role[slash - name] = '\0';
    return true;
}

int al_authz_evaluate(al_ctx *c, const al_authz_req *q, char *why, size_t whylen,
                      aw_decision_kind *kind)
{
    const char *principal = q->principal, *action = q->action, *resource = q->resource;
    const aw_policy *resource_policy = q->resource_policy;
    const aw_ctx_entry *extra = q->extra;
    size_t nextra = q->nextra;
    al_iam_policies pol = {0};
    aw_policy *root = NULL, *key_policy = NULL;
    const aw_policy *const *identity = NULL;
    size_t n_identity = 0;
    int r = 0;
    char root_arn[64], role[AL_ROLE_NAME_MAX + 1];
    snprintf(root_arn, sizeof root_arn, "arn:aws:iam::%s:root", c->account);
    if (!principal)
        principal = "anonymous";

    /* context */
    aw_ctx_entry ctx[CTX_MAX + 8];
    size_t nctx = 0;
    const char *v_parn[1], *v_acct[1] = {c->account}, *v_type[1], *v_uid[1], *v_now[1], *v_epoch[1],
                           *v_region[1] = {c->region};
    char now_iso[32], epoch[32], userid[AL_ROLE_NAME_MAX + 128];
    double now = al_now(c);
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now_iso, sizeof now_iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(epoch, sizeof epoch, "%lld", (long long)t);
    v_now[0] = now_iso;
    v_epoch[0] = epoch;
    al_iam_role ri = {0};

    if (strcmp(principal, root_arn) == 0) {
        if (aw_policy_parse(allow_all, sizeof allow_all - 1, AW_POLICY_IDENTITY, "account root",
                            NULL, &root, NULL, 0) != AW_POLICY_OK) {
            r = -ENOMEM;
            goto out;
        }
        identity = (const aw_policy *const *)&root;
        n_identity = 1;
        v_parn[0] = root_arn;
        v_type[0] = "Account";
        v_uid[0] = c->account;
    } else if (session_role(c, principal, role, sizeof role)) {
        r = al_iam_role_policies(c, role, &pol);
        if (r < 0 && r != -ENOENT)
            goto out;
        if (r == 0 && al_iam_role_get(c, role, &ri) == 0) {
            v_parn[0] = ri.arn;
            snprintf(userid, sizeof userid, "%s:%s", ri.role_id, strrchr(principal, '/') + 1);
        } else {
            v_parn[0] = principal;
            snprintf(userid, sizeof userid, "%s", strrchr(principal, '/') + 1);
        }
        r = 0;
        identity = (const aw_policy *const *)pol.identity;
        n_identity = pol.n_identity;
        v_type[0] = "AssumedRole";
        v_uid[0] = userid;
    } else {
        v_parn[0] = principal;
        v_type[0] = "User";
        v_uid[0] = principal;
    }
    ctx[nctx++] = (aw_ctx_entry){"aws:PrincipalArn", v_parn, 1, false};
    ctx[nctx++] = (aw_ctx_entry){"aws:PrincipalAccount", v_acct, 1, false};
    ctx[nctx++] = (aw_ctx_entry){"aws:PrincipalType", v_type, 1, false};
    ctx[nctx++] = (aw_ctx_entry){"aws:userid", v_uid, 1, false};
    ctx[nctx++] = (aw_ctx_entry){"aws:CurrentTime", v_now, 1, false};
    ctx[nctx++] = (aw_ctx_entry){"aws:EpochTime", v_epoch, 1, false};
    ctx[nctx++] = (aw_ctx_entry){"aws:RequestedRegion", v_region, 1, false};
    /* KMS used by SSM or Secrets Manager on the caller's behalf */
    char via[96];
    const char *v_via[1] = {via}, *v_caller_acct[1] = {c->account};
    if (strncmp(action, "kms:", 4) == 0) {
        const char *svc = NULL;
        if (c->calling_service && strcmp(c->calling_service, "AmazonSSM") == 0)
            svc = "ssm";
        else if (c->calling_service && strcmp(c->calling_service, "secretsmanager") == 0)
            svc = "secretsmanager";
        if (svc) {
            snprintf(via, sizeof via, "%s.%s.amazonaws.com", svc, c->region);
            ctx[nctx++] = (aw_ctx_entry){"kms:ViaService", v_via, 1, false};
        }
        ctx[nctx++] = (aw_ctx_entry){"kms:CallerAccount", v_caller_acct, 1, false};
    }
    for (size_t i = 0; i < nextra && nctx < sizeof ctx / sizeof ctx[0]; i++)
        ctx[nctx++] = extra[i];

    if (!resource_policy && is_kms_key(resource)) {
        if ((r = key_policy_of(c, resource, &key_policy)) < 0)
            goto out;
        resource_policy = key_policy;
    } else if (!resource_policy && strncmp(resource, "arn:aws:secretsmanager:", 23) == 0) {
        char *doc = NULL;
        if ((r = al_sm_resource_policy_of(c, resource, &doc)) < 0)
            goto out;
        /* stored policies were validated; one that no longer parses grants nothing */
        int pr = doc ? aw_policy_parse(doc, strlen(doc), AW_POLICY_RESOURCE, "resource policy",
                                       NULL, &key_policy, NULL, 0)
                     : AW_POLICY_E_MALFORMED;
        es_free(doc);
        if (pr == AW_POLICY_E_NOMEM) {
            r = -ENOMEM; /* its Deny statements must not be lost */
            goto out;
        }
        if (pr == AW_POLICY_OK)
            resource_policy = key_policy;
    }
    if (q->no_identity) {
        identity = NULL;
        n_identity = 0;
    }
    aw_policy_set set = {.identity = identity,
                         .n_identity = n_identity,
                         .boundary = pol.boundary ? (const aw_policy *const *)&pol.boundary : NULL,
                         .n_boundary = pol.boundary ? 1 : 0,
                         .resource = resource_policy};
    aw_request req = {.principal_arn = principal,
                      .action = action,
                      .resource = resource,
                      /* AWS managed policies (account "aws") are readable as our own */
                      .resource_account = q->resource_account ? q->resource_account
                                          : strncmp(resource, "arn:aws:iam::aws:", 17) == 0
                                              ? c->account
                                              : NULL,
                      .ctx = ctx,
                      .nctx = nctx};
    aw_decision d;
    if (aw_policy_evaluate(&set, &req, &d) != 0) {
        r = -EINVAL;
        goto out;
    }
    if (kind)
        *kind = d.kind;
    if (d.kind != AW_DECISION_ALLOW) {
        if (why && whylen)
            aw_decision_message(&req, &d, why, whylen);
        r = -EACCES;
    }
out:
    al_iam_role_clear(&ri);
    al_iam_policies_clear(&pol);
    aw_policy_free(root);
    aw_policy_free(key_policy);
    return r;
}

int al_authz_check(al_ctx *c, const char *principal, const char *action, const char *resource,
                   char *why, size_t whylen)
{
    al_authz_req q = {.principal = principal, .action = action, .resource = resource};
    return al_authz_evaluate(c, &q, why, whylen, NULL);
}

static int hook(void *arg, const char *principal, const char *action, const char *resource,
                char *why, size_t whylen)
{
    return al_authz_check(arg, principal, action, resource, why, whylen);
}

void al_authz_install(al_ctx *c)
{
    c->authz_msg = hook;
    c->authz_msg_arg = c;
}
