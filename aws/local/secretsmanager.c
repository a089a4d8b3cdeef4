#include "aws/local/secretsmanager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/kms.h"
#include "aws/local/sm_policy.h"
#include "common/alloc.h"
#include "common/secure.h"

#define ARN_MAX 768
#define AL_SM_DESCRIPTION_MAX 2048 /* Description (Secrets Manager's limit) */
#define AL_SM_FILTER_VALUE_MAX 512 /* one of ListSecrets' filter Values */
#define AL_SM_NEXT_TOKEN_MAX 1024  /* ListSecrets' NextToken: base64 of a name */
#define SCHEDULED_MSG                                                                              \
    "You can't perform this operation on the secret because it was marked for deletion."

typedef struct secret {
    char arn[ARN_MAX];
    char name[AL_SM_NAME_MAX + 1];
    char *description;
    char *kms_key_ref;
    char key_id[AL_KEY_ID_LEN + 1];
    double created, changed, accessed, deletion; /* 0: none */
} secret;

static void secret_clear(secret *s)
{
    es_free(s->description);
    es_free(s->kms_key_ref);
    s->description = s->kms_key_ref = NULL;
}

#define PURGE_EVERY 60.0 /* seconds between sweeps; lookups hide expired rows meanwhile */

/* Deletes secrets whose recovery window has passed. A write, so it runs at
 * most every PURGE_EVERY seconds unless forced (CreateSecret needs the name). */
static int purge_expired(al_ctx *c, bool force)
{
    double t = al_now(c);
    if (!force && t < c->sm_next_purge)
        return 0;
    sqlite3_stmt *st =
        al_db_prepare(c->db, "DELETE FROM sm_secret WHERE deletion IS NOT NULL AND deletion <= ?");
    if (!st)
        return -EIO;
    sqlite3_bind_double(st, 1, t);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    if (r == 0)
        c->sm_next_purge = t + PURGE_EVERY;
    return r;
}

static void arn_prefix(al_ctx *c, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:secretsmanager:%s:%s:secret:", c->region, c->account);
}

/* Finds a secret by name, full ARN or partial ARN (ARN without the random
 * suffix). -ENOENT or -EIO. */
static int find_secret(al_ctx *c, const char *id, secret *s)
{
    char prefix[256];
    arn_prefix(c, prefix, sizeof prefix);
    const char *name = id;
    if (strncmp(id, "arn:", 4) == 0) {
        if (strncmp(id, prefix, strlen(prefix)) != 0)
            return -ENOENT;
        name = id + strlen(prefix);
    }
    sqlite3_stmt *st = al_db_prepare(
        c->db,
        "SELECT arn, name, description, kms_key_ref, key_id, created, changed, accessed, "
        "deletion FROM sm_secret WHERE (arn=?1 OR name=?2) AND (deletion IS NULL OR deletion > "
        "?3) ORDER BY arn=?1 DESC LIMIT 1");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, al_now(c));
    int r = -ENOENT, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(s, 0, sizeof *s);
        snprintf(s->arn, sizeof s->arn, "%s", sqlite3_column_text(st, 0));
        snprintf(s->name, sizeof s->name, "%s", sqlite3_column_text(st, 1));
        const char *d = (const char *)sqlite3_column_text(st, 2);
        const char *k = (const char *)sqlite3_column_text(st, 3);
        s->description = d ? es_strdup(d) : NULL;
        s->kms_key_ref = k ? es_strdup(k) : NULL;
        snprintf(s->key_id, sizeof s->key_id, "%s", sqlite3_column_text(st, 4));
        s->created = sqlite3_column_double(st, 5);
        s->changed = sqlite3_column_double(st, 6);
        s->accessed = sqlite3_column_double(st, 7);
        s->deletion = sqlite3_column_double(st, 8);
        r = (d && !s->description) || (k && !s->kms_key_ref) ? -ENOMEM : 0;
        if (r < 0)
            secret_clear(s);
    } else if (rc != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

static int not_found(al_error *e, int r)
{
    if (r == -ENOENT)
        return al_fail(e, 400, "ResourceNotFoundException",
                       "Secrets Manager can't find the specified secret.");
    return al_fail_internal(e, "InternalServiceError");
}

/* Reads SecretId, purges expired secrets, finds the secret, authorises the
 * action. live: refuse a secret scheduled for deletion. */
static int load_target(al_ctx *c, const char *principal, const es_json *req, const char *action,
                       bool live, secret *s, al_error *e)
{
    const char *id;
    if (!al_opt_str(req, "SecretId", &id, e))
        return -EINVAL;
    if (!id || !*id || strlen(id) > AL_SM_SECRET_ID_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "SecretId is required (a secret name or ARN of 1 to %d characters).",
                       AL_SM_SECRET_ID_MAX);
    if (purge_expired(c, false) < 0)
        return al_fail_internal(e, "InternalServiceError");
    int r = find_secret(c, id, s);
    if (r < 0)
        return not_found(e, r);
    if ((r = al_authorize(c, principal, action, s->arn, e)) < 0) {
        secret_clear(s);
        return r;
    }
    if (live && s->deletion > 0) {
        secret_clear(s);
        return al_fail(e, 400, "InvalidRequestException", SCHEDULED_MSG);
    }
    return 0;
}

/* ---- values ---- */

typedef struct value {
    const char *str; /* request member; not owned */
    uint8_t *bin;    /* decoded SecretBinary, owned (wiped) */
    size_t bin_len;
    bool present;
} value;

static void value_clear(value *v)
{
    if (v->bin) {
        es_wipe(v->bin, v->bin_len);
        es_free(v->bin);
    }
    memset(v, 0, sizeof *v);
}

static const uint8_t *value_bytes(const value *v, size_t *n)
{
    if (v->str) {
        *n = strlen(v->str);
        return (const uint8_t *)v->str;
    }
    *n = v->bin_len;
    return v->bin;
}

static int parse_value(const es_json *req, value *v, al_error *e)
{
    const char *str, *bin64;
    memset(v, 0, sizeof *v);
    if (!al_opt_str(req, "SecretString", &str, e) || !al_opt_str(req, "SecretBinary", &bin64, e))
        return -EINVAL;
    if (str && bin64)
        return al_fail(e, 400, "InvalidParameterException",
                       "You can't specify both a binary secret value and a string secret value "
                       "in the same secret.");
    if (str) {
        if (strlen(str) > AL_SM_VALUE_MAX)
            return al_fail(e, 400, "InvalidParameterException",
                           "SecretString must be at most %d bytes.", AL_SM_VALUE_MAX);
        v->str = str;
        v->present = true;
    } else if (bin64) {
        if (strlen(bin64) > (AL_SM_VALUE_MAX + 2) / 3 * 4)
            return al_fail(e, 400, "InvalidParameterException",
                           "SecretBinary must be at most %d bytes.", AL_SM_VALUE_MAX);
        int r = al_b64_decode(bin64, strlen(bin64), &v->bin, &v->bin_len);
        if (r == -ENOMEM)
            return al_fail_internal(e, "InternalServiceError");
        if (r < 0)
            return al_fail(e, 400, "InvalidParameterException",
                           "SecretBinary is not valid base64.");
        v->present = true;
    }
    return 0;
}

static int check_token(const char *tok, al_error *e)
{
    size_t n = strlen(tok);
    if (n < AL_SM_TOKEN_MIN || n > AL_SM_TOKEN_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "ClientRequestToken must be %d to %d characters.", AL_SM_TOKEN_MIN,
                       AL_SM_TOKEN_MAX);
    for (size_t i = 0; i < n; i++)
        if (!((tok[i] >= 'a' && tok[i] <= 'z') || (tok[i] >= 'A' && tok[i] <= 'Z') ||
              (tok[i] >= '0' && tok[i] <= '9') || tok[i] == '-'))
            return al_fail(e, 400, "InvalidParameterException",
                           "ClientRequestToken may hold only letters, digits and '-'.");
    return 0;
}

/* A stored version, decrypted. */
typedef struct plain {
    char version_id[AL_SM_TOKEN_MAX + 1];
    bool binary;
    uint8_t *pt;
    size_t len;
    double created;
} plain;

static void plain_clear(plain *p)
{
    if (p->pt) {
        es_wipe(p->pt, p->len);
        es_free(p->pt);
    }
    memset(p, 0, sizeof *p);
}

/* Loads and decrypts version_id. -ENOENT, -EBADMSG, -EIO, ... */
static int load_version(al_ctx *c, const secret *s, const char *version_id, plain *out)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT binary, blob, created FROM sm_version WHERE arn=? AND version_id=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, s->arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, version_id, -1, SQLITE_STATIC);
    int r = -ENOENT, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->version_id, sizeof out->version_id, "%s", version_id);
        out->binary = sqlite3_column_int(st, 0) != 0;
        out->created = sqlite3_column_double(st, 2);
        al_kv kv[2] = {{"SecretARN", s->arn}, {"SecretVersionId", version_id}};
        r = al_kms_unseal(c, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), kv, 2,
                          &out->pt, &out->len, NULL);
    } else if (rc != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

static int stage_holder(al_ctx *c, const char *arn, const char *stage, char *vid, size_t n)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT version_id FROM sm_stage WHERE arn=? AND stage=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, stage, -1, SQLITE_STATIC);
    int r = -ENOENT, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(vid, n, "%s", sqlite3_column_text(st, 0));
        r = 0;
    } else if (rc != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

static int set_stage(al_ctx *c, const char *arn, const char *stage, const char *vid)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "INSERT OR REPLACE INTO sm_stage(arn, stage, version_id) VALUES (?,?,?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, stage, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, vid, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

static int remove_stage(al_ctx *c, const char *arn, const char *stage)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM sm_stage WHERE arn=? AND stage=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, stage, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Moves stage to vid; moving AWSCURRENT hands AWSPREVIOUS to the version
 * that loses it. */
static int move_stage(al_ctx *c, const char *arn, const char *stage, const char *vid)
{
    if (strcmp(stage, "AWSCURRENT") == 0) {
        char old[AL_SM_TOKEN_MAX + 1];
        int r = stage_holder(c, arn, "AWSCURRENT", old, sizeof old);
        if (r == 0 && strcmp(old, vid) != 0 && set_stage(c, arn, "AWSPREVIOUS", old) < 0)
            return -EIO;
        if (r < 0 && r != -ENOENT)
            return r;
    }
    return set_stage(c, arn, stage, vid);
}

/* Drops the oldest versions without a staging label past the limit. */
static int prune_versions(al_ctx *c, const char *arn)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "DELETE FROM sm_version WHERE arn=?1 AND version_id IN (SELECT version_id FROM "
               "sm_version v WHERE v.arn=?1 AND NOT EXISTS (SELECT 1 FROM sm_stage s WHERE "
               "s.arn=v.arn AND s.version_id=v.version_id) ORDER BY created LIMIT max(0, (SELECT "
               "count(*) FROM sm_version WHERE arn=?1) - ?2))");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, AL_SM_VERSIONS_KEPT);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

static int insert_version(al_ctx *c, const secret *s, const char *vid, const value *v)
{
    size_t n;
    const uint8_t *p = value_bytes(v, &n);
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    al_kv kv[2] = {{"SecretARN", s->arn}, {"SecretVersionId", vid}};
    int r = al_kms_seal(c, s->key_id, kv, 2, p, n, &blob, &bloblen);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "INSERT INTO sm_version(arn, version_id, binary, blob, created) VALUES (?,?,?,?,?)");
    if (!st) {
        es_free(blob);
        return -EIO;
    }
    sqlite3_bind_text(st, 1, s->arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, vid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, v->str ? 0 : 1);
    sqlite3_bind_blob(st, 4, blob, (int)bloblen, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, al_now(c));
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    es_free(blob);
    return r;
}

static int touch_changed(al_ctx *c, const char *arn)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET changed=? WHERE arn=?");
    if (!st)
        return -EIO;
    sqlite3_bind_double(st, 1, al_now(c));
    sqlite3_bind_text(st, 2, arn, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Compares a stored version's value with v (constant time in length). 1 same,
 * 0 different, negative on error. */
static int same_value(al_ctx *c, const secret *s, const char *vid, const value *v)
{
    plain p;
    int r = load_version(c, s, vid, &p);
    if (r < 0)
        return r;
    size_t n;
    const uint8_t *b = value_bytes(v, &n);
    bool same = p.binary == (v->str == NULL) && p.len == n && es_ct_equal(p.pt, b, n);
    plain_clear(&p);
    return same ? 1 : 0;
}

static void write_stages(al_ctx *c, const char *arn, const char *vid, es_jw *w)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT stage FROM sm_stage WHERE arn=? AND version_id=? ORDER BY stage");
    es_jw_arr(w);
    if (st) {
        sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, vid, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW)
            es_jw_str(w, (const char *)sqlite3_column_text(st, 0));
        al_db_release(c->db, st);
    } else {
        w->err = -EIO;
    }
    es_jw_arr_end(w);
}

static void write_versions_to_stages(al_ctx *c, const char *arn, es_jw *w)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT DISTINCT version_id FROM sm_stage WHERE arn=? "
                                            "ORDER BY version_id");
    es_jw_obj(w);
    if (st) {
        sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *vid = (const char *)sqlite3_column_text(st, 0);
            es_jw_key(w, vid);
            write_stages(c, arn, vid, w);
        }
        al_db_release(c->db, st);
    } else {
        w->err = -EIO;
    }
    es_jw_obj_end(w);
}

static void write_tags(al_ctx *c, const char *arn, es_jw *w)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT key, value FROM sm_tag WHERE arn=? ORDER BY key");
    es_jw_arr(w);
    if (st) {
        sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            es_jw_obj(w);
            es_jw_kstr(w, "Key", (const char *)sqlite3_column_text(st, 0));
            es_jw_kstr(w, "Value", (const char *)sqlite3_column_text(st, 1));
            es_jw_obj_end(w);
        }
        al_db_release(c->db, st);
    } else {
        w->err = -EIO;
    }
    es_jw_arr_end(w);
}

static int value_error(al_error *e, int r)
{
    if (r == -EPERM)
        return al_fail(e, 400, "DecryptionFailure",
                       "Secrets Manager can't decrypt the protected secret text using the "
                       "provided KMS key: the key is disabled.");
    if (r == -ENOENT || r == -EBADMSG)
        return al_fail(e, 400, "DecryptionFailure",
                       "Secrets Manager can't decrypt the protected secret text using the "
                       "provided KMS key.");
    return al_fail_internal(e, "InternalServiceError");
}

/* ---- CreateSecret ---- */

static bool name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len < 1 || len > AL_SM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = n[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("/_+=.@-", ch)))
            return false;
    }
    return true;
}

/* The {ARN, Name[, VersionId]} answer of the writes (version_id NULL: none). */
void al_sm_write_secret_ref(es_jw *w, const char *arn, const char *name, const char *version_id)
{
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", arn);
    es_jw_kstr(w, "Name", name);
    if (version_id)
        es_jw_kstr(w, "VersionId", version_id);
    es_jw_obj_end(w);
}

static int parse_tags(const es_json *req, const es_json **out, al_error *e)
{
    const es_json *tags = es_json_get(req, "Tags");
    *out = NULL;
    if (!tags || tags->type == ES_JSON_NULL)
        return 0;
    if (tags->type != ES_JSON_ARRAY || tags->u.array.n > 50)
        return al_fail(e, 400, "InvalidParameterException",
                       "Tags must be a list of at most 50 tags.");
    if (!al_tags_ok(tags))
        return al_fail(e, 400, "InvalidParameterException", AL_TAG_RULE);
    *out = tags;
    return 0;
}

static int op_create_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                            al_error *e)
{
    const char *name, *token, *desc, *kms;
    const es_json *tags;
    value v;
    secret s, old;
    memset(&s, 0, sizeof s);
    memset(&old, 0, sizeof old);
    char vid[AL_SM_TOKEN_MAX + 1];
    if (!al_opt_str(req, "Name", &name, e) || !al_opt_str(req, "ClientRequestToken", &token, e) ||
        !al_opt_str(req, "Description", &desc, e) || !al_opt_str(req, "KmsKeyId", &kms, e))
        return -EINVAL;
    if (!name)
        return al_fail(e, 400, "InvalidParameterException", "Name is required.");
    if (!name_ok(name))
        return al_fail(e, 400, "ValidationException",
                       "Invalid name. Must be a valid name of 1 to %d characters containing "
                       "alphanumeric characters, or any of the following: /_+=.@-",
                       AL_SM_NAME_MAX);
    if (desc && strlen(desc) > AL_SM_DESCRIPTION_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "Description must be at most %d characters.", AL_SM_DESCRIPTION_MAX);
    int r;
    if (token && (r = check_token(token, e)) < 0)
        return r;
    if ((r = parse_tags(req, &tags, e)) < 0)
        return r;
    if (token)
        snprintf(vid, sizeof vid, "%s", token);
    else if (al_uuid(vid) < 0)
        return al_fail_internal(e, "InternalServiceError");
    if ((r = parse_value(req, &v, e)) < 0)
        return r;
    char prefix[256];
    arn_prefix(c, prefix, sizeof prefix);
    char partial[ARN_MAX];
    snprintf(partial, sizeof partial, "%s%s", prefix, name);
    if ((r = al_authorize(c, principal, "secretsmanager:CreateSecret", partial, e)) < 0)
        goto out;
    if ((r = al_kms_resolve_e(c, kms ? kms : "alias/aws/secretsmanager",
                              "ResourceNotFoundException", s.key_id, e)) < 0)
        goto out;
    if (kms && !al_kms_is_aws_managed(c, s.key_id)) {
        char key_arn[256];
        al_kms_key_arn(c, s.key_id, key_arn, sizeof key_arn);
        if ((r = al_authorize(c, principal, "kms:GenerateDataKey", key_arn, e)) < 0)
            goto out;
    }
    if (purge_expired(c, true) < 0 || al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    r = find_secret(c, name, &old);
    if (r == 0 && strcmp(old.name, name) == 0) {
        if (old.deletion > 0) {
            r = al_fail(e, 400, "InvalidRequestException",
                        "You can't create this secret because a secret with this name is already "
                        "scheduled for deletion.");
            goto out;
        }
        /* idempotent retry: same token, same value */
        int same = token && v.present ? same_value(c, &old, vid, &v) : 0;
        if (same == 1) {
            al_db_rollback(c->db);
            al_sm_write_secret_ref(w, old.arn, old.name, vid);
            r = 0;
            goto out;
        }
        r = al_fail(e, 400, "ResourceExistsException",
                    "The operation failed because the secret %s already exists.", name);
        goto out;
    }
    if (r < 0 && r != -ENOENT) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    char suffix[7];
    if (al_random_alnum(suffix, 6) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    snprintf(s.arn, sizeof s.arn, "%s%s-%s", prefix, name, suffix);
    snprintf(s.name, sizeof s.name, "%s", name);
    double now = al_now(c);
    sqlite3_stmt *st = al_db_prepare(c->db, "INSERT INTO sm_secret(arn, name, description, "
                                            "kms_key_ref, key_id, created, changed) VALUES "
                                            "(?,?,?,?,?,?,?)");
    if (!st) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    sqlite3_bind_text(st, 1, s.arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (desc)
        sqlite3_bind_text(st, 3, desc, -1, SQLITE_STATIC);
    if (kms)
        sqlite3_bind_text(st, 4, kms, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, s.key_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 6, now);
    sqlite3_bind_double(st, 7, now);
    int rc = sqlite3_step(st);
    al_db_release(c->db, st);
    if (rc != SQLITE_DONE) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    for (size_t i = 0; tags && i < tags->u.array.n; i++) {
        st = al_db_prepare(c->db, "INSERT OR REPLACE INTO sm_tag(arn, key, value) VALUES (?,?,?)");
        if (!st) {
            r = al_fail_internal(e, "InternalServiceError");
            goto out;
        }
        sqlite3_bind_text(st, 1, s.arn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, es_json_get_str(tags->u.array.items[i], "Key"), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, es_json_get_str(tags->u.array.items[i], "Value"), -1,
                          SQLITE_STATIC);
        rc = sqlite3_step(st);
        al_db_release(c->db, st);
        if (rc != SQLITE_DONE) {
            r = al_fail_internal(e, "InternalServiceError");
            goto out;
        }
    }
    if (v.present) {
        r = insert_version(c, &s, vid, &v);
        if (r == 0)
            r = move_stage(c, s.arn, "AWSCURRENT", vid);
        if (r < 0) {
            r = value_error(e, r);
            goto out;
        }
    }
    if (al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    al_sm_write_secret_ref(w, s.arn, s.name, v.present ? vid : NULL);
    r = 0;
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&old);
    value_clear(&v);
    return r;
}

/* ---- PutSecretValue ---- */

static int parse_stages(const es_json *req, const es_json **out, al_error *e)
{
    const es_json *st = es_json_get(req, "VersionStages");
    *out = NULL;
    if (!st || st->type == ES_JSON_NULL)
        return 0;
    if (st->type != ES_JSON_ARRAY || st->u.array.n < 1 || st->u.array.n > AL_SM_STAGES_PER_VERSION)
        return al_fail(e, 400, "InvalidParameterException",
                       "VersionStages must be a list of 1 to %d staging labels.",
                       AL_SM_STAGES_PER_VERSION);
    for (size_t i = 0; i < st->u.array.n; i++) {
        const char *s = es_json_as_str(st->u.array.items[i]);
        if (!s || !*s || strlen(s) > AL_SM_STAGE_MAX)
            return al_fail(e, 400, "InvalidParameterException",
                           "Each staging label must be 1 to %d characters.", AL_SM_STAGE_MAX);
    }
    *out = st;
    return 0;
}

/* Inside a transaction: adds version vid with value v and moves stages to
 * it (default AWSCURRENT). 1: the same version with the same value exists
 * already (an idempotent retry; nothing changed); 0: added; < 0 with e
 * filled. */
static int store_version(al_ctx *c, secret *s, const char *vid, const value *v,
                         const es_json *stages, al_error *e)
{
    int r = same_value(c, s, vid, v);
    if (r == 1)
        return 1;
    if (r == 0)
        return al_fail(e, 400, "ResourceExistsException",
                       "You can't modify an existing version, you can only create a new version.");
    if (r != -ENOENT)
        return value_error(e, r);
    r = insert_version(c, s, vid, v);
    for (size_t i = 0; r == 0 && i < (stages ? stages->u.array.n : 1); i++)
        r = move_stage(c, s->arn, stages ? es_json_as_str(stages->u.array.items[i]) : "AWSCURRENT",
                       vid);
    if (r == 0)
        r = prune_versions(c, s->arn);
    if (r == 0)
        r = touch_changed(c, s->arn);
    return r < 0 ? value_error(e, r) : 0;
}

static int op_put_secret_value(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                               al_error *e)
{
    const char *token;
    const es_json *stages;
    value v;
    secret s;
    char vid[AL_SM_TOKEN_MAX + 1];
    int r;
    if (!al_opt_str(req, "ClientRequestToken", &token, e))
        return -EINVAL;
    if (token && (r = check_token(token, e)) < 0)
        return r;
    if ((r = parse_stages(req, &stages, e)) < 0)
        return r;
    if ((r = parse_value(req, &v, e)) < 0)
        return r;
    if (!v.present) {
        value_clear(&v);
        return al_fail(e, 400, "InvalidParameterException",
                       "You must provide either SecretString or SecretBinary.");
    }
    if (token)
        snprintf(vid, sizeof vid, "%s", token);
    else if (al_uuid(vid) < 0) {
        value_clear(&v);
        return al_fail_internal(e, "InternalServiceError");
    }
    if ((r = load_target(c, principal, req, "secretsmanager:PutSecretValue", true, &s, e)) < 0) {
        value_clear(&v);
        return r;
    }
    if (al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    r = store_version(c, &s, vid, &v, stages, e);
    if (r == 1) {
        al_db_rollback(c->db);
        goto answer; /* idempotent retry */
    }
    if (r < 0)
        goto out;
    if (al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
answer:
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", s.arn);
    es_jw_kstr(w, "Name", s.name);
    es_jw_kstr(w, "VersionId", vid);
    es_jw_key(w, "VersionStages");
    write_stages(c, s.arn, vid, w);
    es_jw_obj_end(w);
    r = 0;
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&s);
    value_clear(&v);
    return r;
}

/* ---- GetSecretValue ---- */

/* Picks the version by id and/or stage (default AWSCURRENT), decrypts it.
 * -ENOENT with e filled when it does not exist. */
static int pick_version(al_ctx *c, const char *principal, const secret *s, const char *version_id,
                        const char *stage, plain *p, al_error *e)
{
    char vid[AL_SM_TOKEN_MAX + 1];
    int r;
    if (!version_id && !stage)
        stage = "AWSCURRENT";
    if (stage) {
        r = stage_holder(c, s->arn, stage, vid, sizeof vid);
        if (r == -ENOENT || (r == 0 && version_id && strcmp(vid, version_id) != 0)) {
            al_fail(e, 400, "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret value for staging label: "
                    "%s",
                    stage);
            return -ENOENT;
        }
        if (r < 0)
            return al_fail_internal(e, "InternalServiceError");
    } else {
        snprintf(vid, sizeof vid, "%s", version_id);
    }
    if (!al_kms_is_aws_managed(c, s->key_id)) {
        char key_arn[256];
        al_kms_key_arn(c, s->key_id, key_arn, sizeof key_arn);
        if ((r = al_authorize(c, principal, "kms:Decrypt", key_arn, e)) < 0)
            return r;
    }
    r = load_version(c, s, vid, p);
    if (r == -ENOENT) {
        sqlite3_stmt *st =
            al_db_prepare(c->db, "SELECT 1 FROM sm_version WHERE arn=? AND version_id=?");
        bool exists = false;
        if (st) {
            sqlite3_bind_text(st, 1, s->arn, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, vid, -1, SQLITE_STATIC);
            exists = sqlite3_step(st) == SQLITE_ROW;
            al_db_release(c->db, st);
        }
        if (exists)
            return value_error(e, r); /* the KMS key is gone */
        al_fail(e, 400, "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret value for VersionId: %s", vid);
        return -ENOENT;
    }
    if (r < 0)
        return value_error(e, r);
    /* LastAccessedDate has day granularity: write at most once a day. */
    double day = (double)((int64_t)(al_now(c) / 86400.0)) * 86400.0;
    if (s->accessed < day) {
        sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET accessed=? WHERE arn=?");
        if (st) {
            sqlite3_bind_double(st, 1, day);
            sqlite3_bind_text(st, 2, s->arn, -1, SQLITE_STATIC);
            (void)sqlite3_step(st);
            al_db_release(c->db, st);
        }
    }
    return 0;
}

static void write_secret_value(al_ctx *c, const secret *s, const plain *p, es_jw *w)
{
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", s->arn);
    es_jw_kstr(w, "Name", s->name);
    es_jw_kstr(w, "VersionId", p->version_id);
    if (p->binary) {
        es_jw_key(w, "SecretBinary");
        al_jw_b64(w, p->pt, p->len);
    } else {
        es_jw_key(w, "SecretString");
        es_jw_strn(w, (const char *)p->pt, p->len);
    }
    es_jw_key(w, "VersionStages");
    write_stages(c, s->arn, p->version_id, w);
    es_jw_key(w, "CreatedDate");
    es_jw_double(w, p->created);
    es_jw_obj_end(w);
}

static int op_get_secret_value(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                               al_error *e)
{
    const char *version_id, *stage;
    secret s;
    plain p;
    if (!al_opt_str(req, "VersionId", &version_id, e) ||
        !al_opt_str(req, "VersionStage", &stage, e))
        return -EINVAL;
    int r;
    if (version_id && (r = check_token(version_id, e)) < 0)
        return r;
    if ((r = load_target(c, principal, req, "secretsmanager:GetSecretValue", true, &s, e)) < 0)
        return r;
    r = pick_version(c, principal, &s, version_id, stage, &p, e);
    if (r == 0) {
        write_secret_value(c, &s, &p, w);
        plain_clear(&p);
    }
    secret_clear(&s);
    return r;
}

int al_sm_reference_parameter(al_ctx *c, const char *principal, const char *param_name,
                              const char *secret_id, const char *selector, es_jw *w, al_error *e)
{
    secret s;
    plain p;
    if (purge_expired(c, false) < 0)
        return al_fail_internal(e, "InternalServerError");
    int r = find_secret(c, secret_id, &s);
    if (r == -ENOENT)
        return r;
    if (r < 0)
        return al_fail_internal(e, "InternalServerError");
    if ((r = al_authorize(c, principal, "secretsmanager:GetSecretValue", s.arn, e)) < 0)
        goto out;
    if (s.deletion > 0) {
        r = al_fail(e, 400, "InvalidRequestException", SCHEDULED_MSG);
        goto out;
    }
    const char *vid = NULL, *stage = NULL;
    if (selector) {
        char tmp[AL_SM_TOKEN_MAX + 1];
        if (stage_holder(c, s.arn, selector, tmp, sizeof tmp) == 0)
            stage = selector;
        else
            vid = selector;
    }
    al_error e1;
    r = pick_version(c, principal, &s, vid, stage, &p, &e1);
    if (r == -ENOENT)
        goto out;
    if (r < 0) {
        *e = e1;
        goto out;
    }
    es_buf src;
    es_buf_init(&src, AL_RESPONSE_MAX);
    es_jw sw;
    es_jw_init(&sw, &src);
    write_secret_value(c, &s, &p, &sw);
    int wr = es_jw_finish(&sw);
    es_jw_kstr(w, "Name", param_name);
    es_jw_kstr(w, "Type", "SecureString");
    es_jw_key(w, "Value");
    if (p.binary)
        al_jw_b64(w, p.pt, p.len);
    else
        es_jw_strn(w, (const char *)p.pt, p.len);
    es_jw_kint(w, "Version", 0);
    if (selector) {
        char sel[AL_SM_TOKEN_MAX + AL_SM_STAGE_MAX + 2];
        snprintf(sel, sizeof sel, ":%s", selector);
        es_jw_kstr(w, "Selector", sel);
    }
    es_jw_key(w, "SourceResult");
    es_jw_strn(w, es_buf_cstr(&src), src.len);
    es_jw_key(w, "LastModifiedDate");
    es_jw_double(w, p.created);
    es_jw_kstr(w, "ARN", s.arn);
    es_jw_kstr(w, "DataType", "text");
    es_buf_free_secret(&src);
    plain_clear(&p);
    r = wr < 0 ? al_fail_internal(e, "InternalServerError") : 0;
out:
    secret_clear(&s);
    return r;
}

/* ---- DescribeSecret / ListSecrets ---- */

static void write_entry(al_ctx *c, const secret *s, bool list, es_jw *w)
{
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", s->arn);
    es_jw_kstr(w, "Name", s->name);
    if (s->description)
        es_jw_kstr(w, "Description", s->description);
    if (s->kms_key_ref)
        es_jw_kstr(w, "KmsKeyId", s->kms_key_ref);
    es_jw_kbool(w, "RotationEnabled", false);
    es_jw_key(w, "LastChangedDate");
    es_jw_double(w, s->changed);
    if (s->accessed > 0) {
        es_jw_key(w, "LastAccessedDate");
        es_jw_double(w, s->accessed);
    }
    if (s->deletion > 0) {
        es_jw_key(w, "DeletedDate");
        es_jw_double(w, s->deletion);
    }
    es_jw_key(w, "Tags");
    write_tags(c, s->arn, w);
    es_jw_key(w, list ? "SecretVersionsToStages" : "VersionIdsToStages");
    write_versions_to_stages(c, s->arn, w);
    es_jw_key(w, "CreatedDate");
    es_jw_double(w, s->created);
    es_jw_obj_end(w);
}

static int op_describe_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e)
{
    secret s;
    int r = load_target(c, principal, req, "secretsmanager:DescribeSecret", false, &s, e);
    if (r < 0)
        return r;
    write_entry(c, &s, false, w);
    secret_clear(&s);
    return 0;
}

static bool list_filter_match(const es_json *filters, const secret *s)
{
    for (size_t i = 0; filters && i < filters->u.array.n; i++) {
        const char *k = es_json_get_str(filters->u.array.items[i], "Key");
        const es_json *vals = es_json_get(filters->u.array.items[i], "Values");
        bool any = false;
        for (size_t j = 0; !any && j < es_json_len(vals); j++) {
            const char *v = es_json_as_str(es_json_at(vals, j));
            bool neg = v[0] == '!';
            const char *x = neg ? v + 1 : v;
            bool m = false;
            if (strcmp(k, "name") == 0 || strcmp(k, "all") == 0)
                m = strncmp(s->name, x, strlen(x)) == 0;
            if (!m && (strcmp(k, "description") == 0 || strcmp(k, "all") == 0))
                m = s->description && strncmp(s->description, x, strlen(x)) == 0;
            any = neg ? !m : m;
        }
        if (!any)
            return false;
    }
    return true;
}

static int op_list_secrets(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    int64_t max;
    const char *tok;
    bool planned;
    if (!al_opt_int(req, "MaxResults", 1, 100, 100, &max, e) ||
        !al_opt_str(req, "NextToken", &tok, e) ||
        !al_opt_bool(req, "IncludePlannedDeletion", false, &planned, e))
        return -EINVAL;
    const es_json *filters = es_json_get(req, "Filters");
    if (filters && filters->type == ES_JSON_NULL)
        filters = NULL;
    if (filters) {
        if (filters->type != ES_JSON_ARRAY || filters->u.array.n > 10)
            return al_fail(e, 400, "InvalidParameterException",
                           "Filters must be a list of at most 10 filters.");
        for (size_t i = 0; i < filters->u.array.n; i++) {
            const char *k = es_json_get_str(filters->u.array.items[i], "Key");
            const es_json *vals = es_json_get(filters->u.array.items[i], "Values");
            if (!k ||
                (strcmp(k, "name") != 0 && strcmp(k, "description") != 0 && strcmp(k, "all") != 0))
                return al_fail(e, 400, "InvalidParameterException",
                               "Filter key must be one of name, description, all.");
            if (!vals || vals->type != ES_JSON_ARRAY || vals->u.array.n < 1 || vals->u.array.n > 10)
                return al_fail(e, 400, "InvalidParameterException",
                               "Each filter needs 1 to 10 Values.");
            for (size_t j = 0; j < vals->u.array.n; j++) {
                const char *v = es_json_as_str(vals->u.array.items[j]);
                if (!v || !*v || strlen(v) > AL_SM_FILTER_VALUE_MAX)
                    return al_fail(e, 400, "InvalidParameterException",
                                   "Filter values must be strings of 1 to %d characters.",
                                   AL_SM_FILTER_VALUE_MAX);
            }
        }
    }
    char after[AL_SM_NAME_MAX + 1] = "";
    if (tok) {
        uint8_t *d = NULL;
        size_t n = 0;
        if (strlen(tok) > AL_SM_NEXT_TOKEN_MAX || al_b64_decode(tok, strlen(tok), &d, &n) < 0 ||
            n == 0 || n > AL_SM_NAME_MAX || memchr(d, 0, n)) {
            es_free(d);
            return al_fail(e, 400, "InvalidNextTokenException", "The NextToken is not valid.");
        }
        memcpy(after, d, n + 1);
        es_free(d);
    }
    int r = al_authorize(c, principal, "secretsmanager:ListSecrets", "*", e);
    if (r < 0)
        return r;
    if (purge_expired(c, false) < 0)
        return al_fail_internal(e, "InternalServiceError");
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT name FROM sm_secret WHERE name > ? ORDER BY name");
    if (!st)
        return al_fail_internal(e, "InternalServiceError");
    sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
    es_jw_obj(w);
    es_jw_key(w, "SecretList");
    es_jw_arr(w);
    int64_t n = 0;
    bool more = false;
    char last[AL_SM_NAME_MAX + 1] = "";
    while (sqlite3_step(st) == SQLITE_ROW) {
        secret s;
        if (find_secret(c, (const char *)sqlite3_column_text(st, 0), &s) < 0)
            continue;
        if ((s.deletion == 0 || planned) && list_filter_match(filters, &s)) {
            if (n == max) {
                more = true;
                secret_clear(&s);
                break;
            }
            write_entry(c, &s, true, w);
            snprintf(last, sizeof last, "%s", s.name);
            n++;
        }
        secret_clear(&s);
    }
    al_db_release(c->db, st);
    es_jw_arr_end(w);
    if (more) {
        es_jw_key(w, "NextToken");
        al_jw_b64(w, (const uint8_t *)last, strlen(last));
    }
    es_jw_obj_end(w);
    return 0;
}

/* ---- UpdateSecretVersionStage ---- */

static bool version_exists(al_ctx *c, const char *arn, const char *vid)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT 1 FROM sm_version WHERE arn=? AND version_id=?");
    if (!st)
        return false;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, vid, -1, SQLITE_STATIC);
    bool yes = sqlite3_step(st) == SQLITE_ROW;
    al_db_release(c->db, st);
    return yes;
}

static int op_update_secret_version_stage(al_ctx *c, const char *principal, const es_json *req,
                                          es_jw *w, al_error *e)
{
    const char *stage, *from, *to;
    secret s;
    if (!al_opt_str(req, "VersionStage", &stage, e) ||
        !al_opt_str(req, "RemoveFromVersionId", &from, e) ||
        !al_opt_str(req, "MoveToVersionId", &to, e))
        return -EINVAL;
    if (!stage || !*stage || strlen(stage) > AL_SM_STAGE_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "VersionStage is required (1 to %d characters).", AL_SM_STAGE_MAX);
    if (!from && !to)
        return al_fail(e, 400, "InvalidParameterException",
                       "Specify MoveToVersionId, RemoveFromVersionId or both.");
    int r = load_target(c, principal, req, "secretsmanager:UpdateSecretVersionStage", true, &s, e);
    if (r < 0)
        return r;
    char cur[AL_SM_TOKEN_MAX + 1] = "";
    if (al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    r = stage_holder(c, s.arn, stage, cur, sizeof cur);
    if (r < 0 && r != -ENOENT) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if (to && !version_exists(c, s.arn, to)) {
        r = al_fail(e, 400, "InvalidParameterException", "Version %s does not exist in secret %s.",
                    to, s.name);
        goto out;
    }
    if (cur[0] && (!to || strcmp(cur, to) != 0) && (!from || strcmp(from, cur) != 0)) {
        r = al_fail(e, 400, "InvalidParameterException",
                    "The staging label %s is currently attached to version %s, but you didn't "
                    "specify the RemoveFromVersionId parameter with that version ID.",
                    stage, cur);
        goto out;
    }
    if (from && strcmp(from, cur) != 0) {
        r = al_fail(e, 400, "InvalidParameterException",
                    "The staging label %s is not attached to version %s.", stage, from);
        goto out;
    }
    if (!to && strcmp(stage, "AWSCURRENT") == 0) {
        r = al_fail(e, 400, "InvalidParameterException",
                    "You can't remove the staging label AWSCURRENT from a version without moving "
                    "it to another version (MoveToVersionId).");
        goto out;
    }
    r = to ? move_stage(c, s.arn, stage, to) : remove_stage(c, s.arn, stage);
    if (r == 0)
        r = prune_versions(c, s.arn);
    if (r == 0)
        r = touch_changed(c, s.arn);
    if (r < 0 || al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    al_sm_write_secret_ref(w, s.arn, s.name, NULL);
    r = 0;
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&s);
    return r;
}

/* ---- DeleteSecret / RestoreSecret ---- */

static int op_delete_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                            al_error *e)
{
    bool force;
    int64_t days;
    secret s;
    if (!al_opt_bool(req, "ForceDeleteWithoutRecovery", false, &force, e))
        return -EINVAL;
    const es_json *window = es_json_get(req, "RecoveryWindowInDays");
    if (window && window->type != ES_JSON_NULL && force)
        return al_fail(e, 400, "InvalidParameterException",
                       "You can't use ForceDeleteWithoutRecovery in conjunction with "
                       "RecoveryWindowInDays.");
    if (!es_json_get_int64(req, "RecoveryWindowInDays", &days)) {
        if (window && window->type != ES_JSON_NULL)
            return al_fail(e, 400, "InvalidParameterException",
                           "RecoveryWindowInDays must be an integer.");
        days = 30;
    }
    if (days < 7 || days > 30)
        return al_fail(e, 400, "InvalidParameterException",
                       "The recovery window must be between 7 and 30 days (given %lld).",
                       (long long)days);
    int r = load_target(c, principal, req, "secretsmanager:DeleteSecret", false, &s, e);
    if (r < 0)
        return r;
    if (s.deletion > 0 && !force) {
        secret_clear(&s);
        return al_fail(e, 400, "InvalidRequestException", SCHEDULED_MSG);
    }
    double when = force ? al_now(c) : al_now(c) + (double)days * 86400.0;
    sqlite3_stmt *st = force
                           ? al_db_prepare(c->db, "DELETE FROM sm_secret WHERE arn=?2")
                           : al_db_prepare(c->db, "UPDATE sm_secret SET deletion=?1 WHERE arn=?2");
    if (!st) {
        secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    if (!force)
        sqlite3_bind_double(st, 1, when);
    sqlite3_bind_text(st, 2, s.arn, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    al_db_release(c->db, st);
    if (rc != SQLITE_DONE) {
        secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", s.arn);
    es_jw_kstr(w, "Name", s.name);
    es_jw_key(w, "DeletionDate");
    es_jw_double(w, when);
    es_jw_obj_end(w);
    secret_clear(&s);
    return 0;
}

static int op_restore_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                             al_error *e)
{
    secret s;
    int r = load_target(c, principal, req, "secretsmanager:RestoreSecret", false, &s, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET deletion=NULL WHERE arn=?");
    if (!st ||
        (sqlite3_bind_text(st, 1, s.arn, -1, SQLITE_STATIC), sqlite3_step(st)) != SQLITE_DONE) {
        al_db_release(c->db, st);
        secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    al_db_release(c->db, st);
    al_sm_write_secret_ref(w, s.arn, s.name, NULL);
    secret_clear(&s);
    return 0;
}

static int op_list_secret_version_ids(al_ctx *c, const char *principal, const es_json *req,
                                      es_jw *w, al_error *e)
{
    int64_t max;
    const char *tok;
    bool deprecated;
    secret s;
    if (!al_opt_int(req, "MaxResults", 1, 100, 100, &max, e) ||
        !al_opt_str(req, "NextToken", &tok, e) ||
        !al_opt_bool(req, "IncludeDeprecated", false, &deprecated, e))
        return -EINVAL;
    int64_t after = 0;
    if (tok && !al_number_token(tok, &after))
        return al_fail(e, 400, "InvalidNextTokenException", "The NextToken is not valid.");
    int r = load_target(c, principal, req, "secretsmanager:ListSecretVersionIds", true, &s, e);
    if (r < 0)
        return r;
    /* versions in creation order; the token is the rowid of the last one */
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT v.rowid, v.version_id, v.created FROM sm_version v WHERE v.arn=?1 AND "
               "v.rowid > ?2 AND (?3 OR EXISTS (SELECT 1 FROM sm_stage g WHERE g.arn=v.arn AND "
               "g.version_id=v.version_id)) ORDER BY v.rowid LIMIT ?4");
    if (!st) {
        secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    sqlite3_bind_text(st, 1, s.arn, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int(st, 3, deprecated ? 1 : 0);
    sqlite3_bind_int64(st, 4, max + 1);
    es_jw_obj(w);
    es_jw_key(w, "Versions");
    es_jw_arr(w);
    int64_t n = 0, last = 0;
    bool more = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == max) {
            more = true;
            break;
        }
        const char *vid = (const char *)sqlite3_column_text(st, 1);
        es_jw_obj(w);
        es_jw_kstr(w, "VersionId", vid);
        es_jw_key(w, "VersionStages");
        write_stages(c, s.arn, vid, w);
        es_jw_key(w, "CreatedDate");
        es_jw_double(w, sqlite3_column_double(st, 2));
        es_jw_obj_end(w);
        last = sqlite3_column_int64(st, 0);
        n++;
    }
    al_db_release(c->db, st);
    es_jw_arr_end(w);
    if (more) {
        char t[32];
        snprintf(t, sizeof t, "%lld", (long long)last);
        es_jw_kstr(w, "NextToken", t);
    }
    es_jw_kstr(w, "ARN", s.arn);
    es_jw_kstr(w, "Name", s.name);
    es_jw_obj_end(w);
    secret_clear(&s);
    return 0;
}

/* UpdateSecret: description and/or KMS key, and with a value a new version
 * that becomes AWSCURRENT (as PutSecretValue). */
static int op_update_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                            al_error *e)
{
    const char *token, *desc, *kms;
    value v;
    secret s;
    char vid[AL_SM_TOKEN_MAX + 1], key_id[AL_KEY_ID_LEN + 1];
    int r;
    if (!al_opt_str(req, "ClientRequestToken", &token, e) ||
        !al_opt_str(req, "Description", &desc, e) || !al_opt_str(req, "KmsKeyId", &kms, e))
        return -EINVAL;
    if (token && (r = check_token(token, e)) < 0)
        return r;
    if (desc && strlen(desc) > AL_SM_DESCRIPTION_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "Description must be at most %d characters.", AL_SM_DESCRIPTION_MAX);
    if ((r = parse_value(req, &v, e)) < 0)
        return r;
    if (token)
        snprintf(vid, sizeof vid, "%s", token);
    else if (al_uuid(vid) < 0) {
        value_clear(&v);
        return al_fail_internal(e, "InternalServiceError");
    }
    if ((r = load_target(c, principal, req, "secretsmanager:UpdateSecret", true, &s, e)) < 0) {
        value_clear(&v);
        return r;
    }
    if (kms) {
        if ((r = al_kms_resolve_e(c, kms, "ResourceNotFoundException", key_id, e)) < 0)
            goto out;
        if (!al_kms_is_aws_managed(c, key_id)) {
            char key_arn[256];
            al_kms_key_arn(c, key_id, key_arn, sizeof key_arn);
            if ((r = al_authorize(c, principal, "kms:GenerateDataKey", key_arn, e)) < 0)
                goto out;
        }
    }
    if (al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if (desc || kms) {
        sqlite3_stmt *st =
            al_db_prepare(c->db, "UPDATE sm_secret SET description=coalesce(?1, description), "
                                 "kms_key_ref=CASE WHEN ?2 IS NULL THEN kms_key_ref ELSE ?2 END, "
                                 "key_id=coalesce(?3, key_id) WHERE arn=?4");
        if (!st) {
            r = al_fail_internal(e, "InternalServiceError");
            goto out;
        }
        if (desc)
            sqlite3_bind_text(st, 1, desc, -1, SQLITE_STATIC);
        if (kms) {
            sqlite3_bind_text(st, 2, kms, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, key_id, -1, SQLITE_STATIC);
            memcpy(s.key_id, key_id, sizeof key_id); /* new versions go under the new key */
        }
        sqlite3_bind_text(st, 4, s.arn, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        al_db_release(c->db, st);
        if (rc != SQLITE_DONE || touch_changed(c, s.arn) < 0) {
            r = al_fail_internal(e, "InternalServiceError");
            goto out;
        }
    }
    if (v.present && (r = store_version(c, &s, vid, &v, NULL, e)) < 0)
        goto out;
    if (al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    al_sm_write_secret_ref(w, s.arn, s.name, v.present ? vid : NULL);
    r = 0;
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&s);
    value_clear(&v);
    return r;
}

const al_op al_sm_ops[] = {
    {"CreateSecret", op_create_secret},
    {"PutSecretValue", op_put_secret_value},
    {"GetSecretValue", op_get_secret_value},
    {"DescribeSecret", op_describe_secret},
    {"ListSecrets", op_list_secrets},
    {"UpdateSecretVersionStage", op_update_secret_version_stage},
    {"DeleteSecret", op_delete_secret},
    {"RestoreSecret", op_restore_secret},
    {"ListSecretVersionIds", op_list_secret_version_ids},
    {"UpdateSecret", op_update_secret},
    /* resource policies: aws/local/sm_policy.c */
    {"PutResourcePolicy", al_sm_put_resource_policy},
    {"GetResourcePolicy", al_sm_get_resource_policy},
    {"DeleteResourcePolicy", al_sm_delete_resource_policy},
    {NULL, NULL},
};
