#include "aws/local/sm_policy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aws/local/secretsmanager.h"
#include "aws/policy.h"
#include "common/alloc.h"

#define ARN_MAX 768

/* The live secret named by SecretId (name, ARN, or ARN without its suffix). */
static int resolve(al_ctx *c, const char *principal, const es_json *req, const char *action,
                   char *arn, char *name, al_error *e)
{
    const char *id;
    if (!al_opt_str(req, "SecretId", &id, e))
        return -EINVAL;
    if (!id || !*id || strlen(id) > AL_SM_SECRET_ID_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "You must provide a SecretId of 1 to %d characters.", AL_SM_SECRET_ID_MAX);
    char prefix[256];
    snprintf(prefix, sizeof prefix, "arn:%s:secretsmanager:%s:%s:secret:", al_partition(c),
             al_region(c), c->account);
    /* an ARN of another region, partition or account names nothing here */
    bool other = strncmp(id, "arn:", 4) == 0 && strncmp(id, prefix, strlen(prefix)) != 0;
    const char *nm = strncmp(id, prefix, strlen(prefix)) == 0 ? id + strlen(prefix) : id;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT arn, name, deletion, primary_region FROM "
                                            "sm_secret WHERE "
                                            "region=?3 AND NOT ?4 AND (arn=?1 OR name=?2) "
                                            "ORDER BY arn=?1 DESC LIMIT 1");
    if (!st)
        return al_fail_internal(e, "InternalServiceError");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, nm, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, other ? 1 : 0);
    int s = sqlite3_step(st), r = 0;
    bool deleted = false, replica = false;
    if (s == SQLITE_ROW) {
        snprintf(arn, ARN_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(name, ARN_MAX, "%s", (const char *)sqlite3_column_text(st, 1));
        deleted = sqlite3_column_type(st, 2) != SQLITE_NULL;
        replica = sqlite3_column_type(st, 3) != SQLITE_NULL;
    } else if (s == SQLITE_DONE) {
        r = al_fail(e, 400, "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret.");
    } else {
        r = al_fail_internal(e, "InternalServiceError");
    }
    al_db_release(c->db, st);
    if (r < 0)
        return r;
    if ((r = al_authorize(c, principal, action, arn, e)) < 0)
        return r;
    /* a replica's policy is its primary's business, as in AWS */
    if (replica)
        return al_fail(e, 400, "InvalidParameterException", AL_SM_REPLICA_MSG);
    if (deleted)
        return al_fail(e, 400, "InvalidRequestException",
                       "You can't perform this operation on the secret because it was marked for "
                       "deletion.");
    return 0;
}

/* Does an Allow statement name Principal "*" (or {"AWS": "*"})? */
static bool is_public(const es_json *doc)
{
    const es_json *sts = es_json_get(doc, "Statement");
    size_t n = !sts ? 0 : sts->type == ES_JSON_ARRAY ? sts->u.array.n : 1;
    for (size_t i = 0; i < n; i++) {
        const es_json *st = sts->type == ES_JSON_ARRAY ? sts->u.array.items[i] : sts;
        const char *eff = es_json_get_str(st, "Effect");
        const es_json *p = es_json_get(st, "Principal");
        if (!eff || strcmp(eff, "Allow") != 0 || !p)
            continue;
        if (p->type == ES_JSON_STRING && strcmp(p->u.string.s, "*") == 0)
            return true;
        const es_json *aws = p->type == ES_JSON_OBJECT ? es_json_get(p, "AWS") : NULL;
        size_t m = !aws ? 0 : aws->type == ES_JSON_ARRAY ? aws->u.array.n : 1;
        for (size_t k = 0; k < m; k++) {
            const char *v =
                es_json_as_str(aws->type == ES_JSON_ARRAY ? aws->u.array.items[k] : aws);
            if (v && strcmp(v, "*") == 0)
                return true;
        }
    }
    return false;
}

/* Stores pol as the resource policy of the secret arn (pol NULL: removes it)
 * and answers {ARN, Name}, as PutResourcePolicy and DeleteResourcePolicy do. */
static int store_policy(al_ctx *c, const char *arn, const char *name, const char *pol, es_jw *w,
                        al_error *e)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, pol ? "INSERT OR REPLACE INTO sm_resource_policy(arn, policy) VALUES (?,?)"
                   : "DELETE FROM sm_resource_policy WHERE arn=?");
    if (!st)
        return al_fail_internal(e, "InternalServiceError");
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    if (pol)
        sqlite3_bind_text(st, 2, pol, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "InternalServiceError");
    al_sm_write_secret_ref(w, arn, name, NULL);
    return 0;
}

int al_sm_put_resource_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e)
{
    char arn[ARN_MAX], name[ARN_MAX];
    const char *pol;
    bool block;
    int r;
    if (!al_opt_str(req, "ResourcePolicy", &pol, e) ||
        !al_opt_bool(req, "BlockPublicPolicy", false, &block, e))
        return -EINVAL;
    if (!pol || !*pol)
        return al_fail(e, 400, "InvalidParameterException", "You must provide a ResourcePolicy.");
    if ((r = resolve(c, principal, req, "secretsmanager:PutResourcePolicy", arn, name, e)) < 0)
        return r;
    char why[256] = "";
    aw_policy *p = NULL;
    int pr = aw_policy_parse(pol, strlen(pol), AW_POLICY_RESOURCE, NULL, NULL, &p, why, sizeof why);
    aw_policy_free(p);
    if (pr == AW_POLICY_E_NOMEM)
        return al_fail_internal(e, "InternalServiceError");
    if (pr != AW_POLICY_OK)
        return al_fail(e, 400, "MalformedPolicyDocumentException",
                       "This resource policy contains an unsupported or malformed statement: %s",
                       why);
    if (block) {
        es_json *j = NULL;
        if (es_json_parse(pol, strlen(pol), &es_json_default_limits, &j, NULL, 0) == 0) {
            bool pub = is_public(j);
            es_json_free(j);
            if (pub)
                return al_fail(e, 400, "PublicPolicyException",
                               "The BlockPublicPolicy parameter is set to true, and the resource "
                               "policy did not prevent broad access to the secret.");
        }
    }
    return store_policy(c, arn, name, pol, w, e);
}

int al_sm_resource_policy_of(al_ctx *c, const char *arn, char **out)
{
    *out = NULL;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT policy FROM sm_resource_policy WHERE arn=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    int s = sqlite3_step(st), r = 0;
    if (s == SQLITE_ROW) {
        *out = es_strdup((const char *)sqlite3_column_text(st, 0));
        r = *out ? 0 : -ENOMEM;
    } else if (s != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

int al_sm_get_resource_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e)
{
    char arn[ARN_MAX], name[ARN_MAX], *pol = NULL;
    int r = resolve(c, principal, req, "secretsmanager:GetResourcePolicy", arn, name, e);
    if (r < 0)
        return r;
    if (al_sm_resource_policy_of(c, arn, &pol) < 0)
        return al_fail_internal(e, "InternalServiceError");
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", arn);
    es_jw_kstr(w, "Name", name);
    if (pol)
        es_jw_kstr(w, "ResourcePolicy", pol);
    es_jw_obj_end(w);
    es_free(pol);
    return 0;
}

int al_sm_delete_resource_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                 al_error *e)
{
    char arn[ARN_MAX], name[ARN_MAX];
    int r = resolve(c, principal, req, "secretsmanager:DeleteResourcePolicy", arn, name, e);
    if (r < 0)
        return r;
    return store_policy(c, arn, name, NULL, w, e);
}
