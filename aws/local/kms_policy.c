#include "aws/local/kms_policy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aws/local/authz.h"
#include "aws/local/kms.h"
#include "aws/policy.h"
#include "common/alloc.h"

int al_kms_key_policy_of(al_ctx *c, const char *key_id, char **out)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT policy FROM kms_key_policy WHERE key_id=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st), r = 0;
    if (s == SQLITE_ROW) {
        *out = es_strdup((const char *)sqlite3_column_text(st, 0));
    } else if (s == SQLITE_DONE) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n"
                 "  \"Statement\" : [ {\n    \"Sid\" : \"Enable IAM User Permissions\",\n"
                 "    \"Effect\" : \"Allow\",\n    \"Principal\" : {\n      \"AWS\" : "
                 "\"arn:%s:iam::%s:root\"\n    },\n    \"Action\" : \"kms:*\",\n"
                 "    \"Resource\" : \"*\"\n  } ]\n}",
                 al_partition(c), c->account);
        *out = es_strdup(doc);
    } else {
        r = -EIO;
    }
    al_db_release(c->db, st);
    if (r == 0 && !*out)
        r = -ENOMEM;
    return r;
}

/* Resolves KeyId, checks PolicyName, authorises action on the key. */
static int key_of(al_ctx *c, const char *principal, const es_json *req, const char *action,
                  bool needs_name, char id[AL_KEY_ID_LEN + 1], char *arn, size_t arnlen,
                  al_error *e)
{
    const char *ref, *name;
    if (!al_opt_str(req, "KeyId", &ref, e) || !al_opt_str(req, "PolicyName", &name, e))
        return -EINVAL;
    if (!ref)
        return al_fail(e, 400, "ValidationException", "KeyId is required.");
    int r = al_kms_resolve_e(c, ref, NULL, id, e);
    if (r < 0)
        return r;
    al_kms_key_arn(c, id, arn, arnlen);
    if ((r = al_authorize(c, principal, action, arn, e)) < 0)
        return r;
    if (needs_name && (!name || strcmp(name, "default") != 0))
        return al_fail(e, 400, name ? "NotFoundException" : "ValidationException",
                       name ? "No such policy exists" : "PolicyName is required.");
    return 0;
}

int al_kms_put_key_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                          al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    const char *pol;
    bool bypass;
    int r = key_of(c, principal, req, "kms:PutKeyPolicy", true, id, arn, sizeof arn, e);
    if (r < 0)
        return r;
    if (!al_opt_str(req, "Policy", &pol, e) ||
        !al_opt_bool(req, "BypassPolicyLockoutSafetyCheck", false, &bypass, e))
        return -EINVAL;
    if (!pol || !*pol)
        return al_fail(e, 400, "ValidationException", "Policy is required.");
    if (al_kms_is_aws_managed(c, id))
        return al_fail(e, 400, "AccessDeniedException",
                       "The key policy of an AWS managed key cannot be changed.");
    aw_policy_limits lim = aw_policy_resource_limits;
    lim.max_bytes = AL_KMS_POLICY_MAX;
    lim.max_raw_bytes = AL_KMS_POLICY_MAX;
    char why[256] = "";
    aw_policy *p = NULL;
    int pr = aw_policy_parse(pol, strlen(pol), AW_POLICY_RESOURCE, "key policy", &lim, &p, why,
                             sizeof why);
    if (pr == AW_POLICY_E_NOMEM)
        return al_fail_internal(e, "KMSInternalException");
    if (pr == AW_POLICY_E_TOO_BIG)
        return al_fail(e, 400, "LimitExceededException",
                       "The key policy is larger than %d characters.", AL_KMS_POLICY_MAX);
    if (pr != AW_POLICY_OK)
        return al_fail(e, 400, "MalformedPolicyDocumentException", "%s", why);
    if (!bypass) {
        /* the lockout safety check: could the caller change it again? */
        al_authz_req q = {.principal = principal,
                          .action = "kms:PutKeyPolicy",
                          .resource = arn,
                          .resource_policy = p};
        r = al_authz_evaluate(c, &q, NULL, 0, NULL);
        if (r == -EACCES) {
            aw_policy_free(p);
            return al_fail(e, 400, "MalformedPolicyDocumentException",
                           "The new key policy will not allow you to update the key policy in "
                           "the future.");
        }
        if (r < 0) {
            aw_policy_free(p);
            return al_fail_internal(e, "KMSInternalException");
        }
    }
    aw_policy_free(p);
    sqlite3_stmt *st =
        al_db_prepare(c->db, "INSERT OR REPLACE INTO kms_key_policy(key_id, policy) VALUES (?,?)");
    if (!st)
        return al_fail_internal(e, "KMSInternalException");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pol, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "KMSInternalException");
    es_jw_obj(w);
    es_jw_obj_end(w);
    return 0;
}

int al_kms_get_key_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                          al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256], *doc = NULL;
    int r = key_of(c, principal, req, "kms:GetKeyPolicy", false, id, arn, sizeof arn, e);
    if (r < 0)
        return r;
    const char *name;
    if (!al_opt_str(req, "PolicyName", &name, e))
        return -EINVAL;
    if (name && strcmp(name, "default") != 0)
        return al_fail(e, 400, "NotFoundException", "No such policy exists");
    if (al_kms_key_policy_of(c, id, &doc) < 0)
        return al_fail_internal(e, "KMSInternalException");
    es_jw_obj(w);
    es_jw_kstr(w, "Policy", doc);
    es_jw_kstr(w, "PolicyName", "default");
    es_jw_obj_end(w);
    es_free(doc);
    return 0;
}

int al_kms_list_key_policies(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                             al_error *e)
{
    char id[AL_KEY_ID_LEN + 1], arn[256];
    int r = key_of(c, principal, req, "kms:ListKeyPolicies", false, id, arn, sizeof arn, e);
    if (r < 0)
        return r;
    es_jw_obj(w);
    es_jw_key(w, "PolicyNames");
    es_jw_arr(w);
    es_jw_str(w, "default");
    es_jw_arr_end(w);
    es_jw_kbool(w, "Truncated", false);
    es_jw_obj_end(w);
    return 0;
}
