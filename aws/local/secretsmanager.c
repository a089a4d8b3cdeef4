#include "aws/local/secretsmanager.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aws/local/kms.h"
#include "aws/local/sm_int.h"
#include "aws/local/sm_password.h"
#include "aws/local/sm_policy.h"
#include "aws/local/tags.h"
#include "aws/region.h"
#include "common/alloc.h"
#include "common/secure.h"

#define AL_SM_DESCRIPTION_MAX 2048 /* Description (Secrets Manager's limit) */
#define AL_SM_FILTER_VALUE_MAX 512 /* one of ListSecrets' filter Values */
#define AL_SM_NEXT_TOKEN_MAX 1024  /* ListSecrets' NextToken: base64 of a name */

void al_sm_secret_clear(secret *s)
{
    es_free(s->description);
    es_free(s->kms_key_ref);
    es_free(s->rot_lambda);
    es_free(s->rot_schedule);
    es_free(s->rot_window);
    es_free(s->rot_failure);
    es_free(s->primary_region);
    s->description = s->kms_key_ref = NULL;
    s->rot_lambda = s->rot_schedule = s->rot_window = s->rot_failure = NULL;
    s->primary_region = NULL;
}

#define PURGE_EVERY 60.0 /* seconds between sweeps; lookups hide expired rows meanwhile */

/* Deletes secrets whose recovery window has passed (in every region: the
 * sweep is the store's, not the request's). A write, so it runs at most
 * every PURGE_EVERY seconds unless forced (CreateSecret needs the name). */
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

/* The ARN prefix of secrets in the request's region and partition. */
static void arn_prefix(al_ctx *c, char *out, size_t n)
{
    snprintf(out, n, "arn:%s:secretsmanager:%s:%s:secret:", al_partition(c), al_region(c),
             c->account);
}

#define SECRET_COLUMNS                                                                             \
    "arn, name, description, kms_key_ref, key_id, created, changed, accessed, deletion, "          \
    "rotation_enabled, rotation_lambda, rotation_days, rotation_schedule, rotation_window, "       \
    "last_rotated, next_rotation, rotation_failure, primary_region"

/* An optional text column, copied; false when the copy failed. */
static bool col_dup(sqlite3_stmt *st, int i, char **out)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    *out = v ? es_strdup(v) : NULL;
    return !v || *out;
}

/* Fills s from a row of SECRET_COLUMNS. 0 or -ENOMEM (s cleared). */
static int secret_from_row(sqlite3_stmt *st, secret *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->arn, sizeof s->arn, "%s", sqlite3_column_text(st, 0));
    snprintf(s->name, sizeof s->name, "%s", sqlite3_column_text(st, 1));
    snprintf(s->key_id, sizeof s->key_id, "%s", sqlite3_column_text(st, 4));
    s->created = sqlite3_column_double(st, 5);
    s->changed = sqlite3_column_double(st, 6);
    s->accessed = sqlite3_column_double(st, 7);
    s->deletion = sqlite3_column_double(st, 8);
    s->rot_enabled = sqlite3_column_int(st, 9) != 0;
    s->rot_days = sqlite3_column_int64(st, 11);
    s->last_rotated = sqlite3_column_double(st, 14);
    s->next_rotation = sqlite3_column_double(st, 15);
    bool ok = col_dup(st, 2, &s->description) && col_dup(st, 3, &s->kms_key_ref) &&
              col_dup(st, 10, &s->rot_lambda) && col_dup(st, 12, &s->rot_schedule) &&
              col_dup(st, 13, &s->rot_window) && col_dup(st, 16, &s->rot_failure) &&
              col_dup(st, 17, &s->primary_region);
    if (!ok) {
        al_sm_secret_clear(s);
        return -ENOMEM;
    }
    return 0;
}

/* Finds a secret of the request's region by name, full ARN or partial ARN
 * (ARN without the random suffix). An ARN of another region, partition or
 * account names no secret here, as in AWS. -ENOENT or -EIO. */
int al_sm_find_secret(al_ctx *c, const char *id, secret *s)
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
        c->db, "SELECT " SECRET_COLUMNS " FROM sm_secret WHERE region=?4 AND (arn=?1 OR name=?2) "
               "AND (deletion IS NULL OR deletion > ?3) ORDER BY arn=?1 DESC LIMIT 1");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, al_now(c));
    sqlite3_bind_text(st, 4, al_region(c), -1, SQLITE_STATIC);
    int r = -ENOENT, rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        r = secret_from_row(st, s);
    else if (rc != SQLITE_DONE)
        r = -EIO;
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
int al_sm_load_target(al_ctx *c, const char *principal, const es_json *req, const char *action,
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
    (void)al_sm_hooks_poll(c); /* rotation hooks move on whenever a secret is touched */
    int r = al_sm_find_secret(c, id, s);
    if (r < 0)
        return not_found(e, r);
    if ((r = al_authorize(c, principal, action, s->arn, e)) < 0) {
        al_sm_secret_clear(s);
        return r;
    }
    /* a scheduled rotation that is due happens before the caller sees the
     * secret, as if the schedule had run on time */
    if (al_sm_rotate_if_due(c, s, al_now(c)) > 0) {
        char arn[ARN_MAX];
        snprintf(arn, sizeof arn, "%s", s->arn);
        al_sm_secret_clear(s);
        if ((r = al_sm_find_secret(c, arn, s)) < 0)
            return not_found(e, r);
    }
    if (live && s->deletion > 0) {
        al_sm_secret_clear(s);
        return al_fail(e, 400, "InvalidRequestException", SCHEDULED_MSG);
    }
    return 0;
}

/* al_sm_load_target for a write: a replica is changed only through its primary. */
int al_sm_load_primary(al_ctx *c, const char *principal, const es_json *req, const char *action,
                       bool live, secret *s, al_error *e)
{
    int r = al_sm_load_target(c, principal, req, action, live, s, e);
    if (r == 0 && s->primary_region) {
        al_sm_secret_clear(s);
        return al_fail(e, 400, "InvalidParameterException", AL_SM_REPLICA_MSG);
    }
    return r;
}

/* ---- values ---- */

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

int al_sm_check_token(const char *tok, al_error *e)
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

void al_sm_plain_clear(plain *p)
{
    if (p->pt) {
        es_wipe(p->pt, p->len);
        es_free(p->pt);
    }
    memset(p, 0, sizeof *p);
}

/* Loads and decrypts version_id. -ENOENT, -EBADMSG, -EIO, ... */
int al_sm_load_version(al_ctx *c, const secret *s, const char *version_id, plain *out)
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

int al_sm_stage_holder(al_ctx *c, const char *arn, const char *stage, char *vid, size_t n)
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

int al_sm_set_stage(al_ctx *c, const char *arn, const char *stage, const char *vid)
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

/* Runs sql with ?1 = a and ?2 = b. */
int al_sm_exec2(al_ctx *c, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

int al_sm_remove_stage(al_ctx *c, const char *arn, const char *stage)
{
    return al_sm_exec2(c, "DELETE FROM sm_stage WHERE arn=?1 AND stage=?2", arn, stage);
}

/* Moves stage to vid; moving AWSCURRENT hands AWSPREVIOUS to the version
 * that loses it. */
int al_sm_move_stage(al_ctx *c, const char *arn, const char *stage, const char *vid)
{
    if (strcmp(stage, "AWSCURRENT") == 0) {
        char old[AL_SM_TOKEN_MAX + 1];
        int r = al_sm_stage_holder(c, arn, "AWSCURRENT", old, sizeof old);
        if (r == 0 && strcmp(old, vid) != 0 && al_sm_set_stage(c, arn, "AWSPREVIOUS", old) < 0)
            return -EIO;
        if (r < 0 && r != -ENOENT)
            return r;
    }
    return al_sm_set_stage(c, arn, stage, vid);
}

/* Drops the oldest versions without a staging label past the limit. */
int al_sm_prune_versions(al_ctx *c, const char *arn)
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

/* Stores a sealed version of arn. */
int al_sm_insert_blob(al_ctx *c, const char *arn, const char *vid, bool binary, const uint8_t *blob,
                      size_t bloblen, double created)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "INSERT INTO sm_version(arn, version_id, binary, blob, created) VALUES (?,?,?,?,?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, vid, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, binary ? 1 : 0);
    sqlite3_bind_blob(st, 4, blob, (int)bloblen, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, created);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

int al_sm_insert_version(al_ctx *c, const secret *s, const char *vid, const value *v)
{
    size_t n;
    const uint8_t *p = value_bytes(v, &n);
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    al_kv kv[2] = {{"SecretARN", s->arn}, {"SecretVersionId", vid}};
    int r = al_kms_seal(c, s->key_id, kv, 2, p, n, &blob, &bloblen);
    if (r < 0)
        return r;
    r = al_sm_insert_blob(c, s->arn, vid, v->str == NULL, blob, bloblen, al_now(c));
    es_free(blob);
    return r;
}

int al_sm_touch_changed(al_ctx *c, const char *arn)
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
    int r = al_sm_load_version(c, s, vid, &p);
    if (r < 0)
        return r;
    size_t n;
    const uint8_t *b = value_bytes(v, &n);
    bool same = p.binary == (v->str == NULL) && p.len == n && es_ct_equal(p.pt, b, n);
    al_sm_plain_clear(&p);
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

int al_sm_value_error(al_error *e, int r)
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

#define AL_SM_TAGS_MAX AL_TAGS_MAX

/* Secrets Manager's words for the shared tag rules (tags.h). */
static int sm_tag_refuse(const al_tag_fault *f, al_error *e)
{
    switch (f->kind) {
    case AL_TAG_NOT_LIST:
        if (f->in_keys)
            return al_fail(e, 400, "InvalidParameterException",
                           "You must provide TagKeys (a list of tag keys).");
        return al_fail(e, 400, "InvalidParameterException",
                       "Tags must be a list of at most %d tags.", AL_SM_TAGS_MAX);
    case AL_TAG_KEY_BAD:
        if (f->in_keys)
            return al_fail(e, 400, "InvalidParameterException",
                           "Each tag key must be 1 to %d characters.", AL_TAG_KEY_MAX);
        return al_fail(e, 400, "InvalidParameterException", AL_TAG_RULE);
    case AL_TAG_VALUE_BAD:
        return al_fail(e, 400, "InvalidParameterException", AL_TAG_RULE);
    case AL_TAG_RESERVED:
        return al_fail(e, 400, "InvalidParameterException",
                       "Tag keys can't start with aws: (reserved for AWS use).");
    case AL_TAG_TOO_MANY:
        return al_fail(e, 400, "InvalidParameterException",
                       "A secret can have at most %d tags; this request would leave %lld.",
                       AL_SM_TAGS_MAX, (long long)f->count);
    default:
        return al_fail_internal(e, "InternalServiceError");
    }
}

static const al_tag_rules SM_TAGS = {
    .key_field = "Key", .value_field = "Value", .keys_reserved = true, .refuse = sm_tag_refuse};

/* Tags (absent: none), by the shared rules. */
static int parse_tags(const es_json *req, const es_json **out, al_error *e)
{
    const es_json *tags = es_json_get(req, "Tags");
    *out = NULL;
    if (!tags || tags->type == ES_JSON_NULL)
        return 0;
    int r = al_tags_check(tags, AL_SM_TAGS_MAX, &SM_TAGS, e);
    if (r == 0)
        *out = tags;
    return r;
}

static int put_tag(al_ctx *c, const char *arn, const es_json *tag)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "INSERT OR REPLACE INTO sm_tag(arn, key, value) VALUES (?,?,?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, es_json_get_str(tag, "Key"), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, es_json_get_str(tag, "Value"), -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

int64_t al_sm_count_rows(al_ctx *c, const char *sql, const char *arn)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -EIO;
    al_db_release(c->db, st);
    return n;
}

/* CreateSecret's request, read and checked. */
typedef struct create_req {
    const char *name, *token, *desc, *kms;
    const es_json *tags;
    value v;
    char vid[AL_SM_TOKEN_MAX + 1];
    add_region add[AL_SM_REPLICAS_MAX];
    size_t nadd;
    bool force;
} create_req;

static int parse_create(al_ctx *c, const es_json *req, create_req *q, al_error *e)
{
    memset(q, 0, sizeof *q);
    if (!al_opt_str(req, "Name", &q->name, e) ||
        !al_opt_str(req, "ClientRequestToken", &q->token, e) ||
        !al_opt_str(req, "Description", &q->desc, e) || !al_opt_str(req, "KmsKeyId", &q->kms, e) ||
        !al_opt_bool(req, "ForceOverwriteReplicaSecret", false, &q->force, e))
        return -EINVAL;
    if (!q->name)
        return al_fail(e, 400, "InvalidParameterException", "Name is required.");
    if (!name_ok(q->name))
        return al_fail(e, 400, "ValidationException",
                       "Invalid name. Must be a valid name of 1 to %d characters containing "
                       "alphanumeric characters, or any of the following: /_+=.@-",
                       AL_SM_NAME_MAX);
    if (q->desc && strlen(q->desc) > AL_SM_DESCRIPTION_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "Description must be at most %d characters.", AL_SM_DESCRIPTION_MAX);
    int r;
    if (q->token && (r = al_sm_check_token(q->token, e)) < 0)
        return r;
    if ((r = parse_tags(req, &q->tags, e)) < 0)
        return r;
    if ((r = al_sm_parse_add_regions(c, req, q->add, &q->nadd, e)) < 0)
        return r;
    if (q->token)
        snprintf(q->vid, sizeof q->vid, "%s", q->token);
    else if (al_uuid(q->vid) < 0)
        return al_fail_internal(e, "InternalServiceError");
    return parse_value(req, &q->v, e);
}

/* Authorises the creation (and its replicas, and a customer key) and
 * resolves the key into key_id. */
static int create_authorize(al_ctx *c, const char *principal, const create_req *q,
                            const char *partial, char *key_id, al_error *e)
{
    int r = al_authorize(c, principal, "secretsmanager:CreateSecret", partial, e);
    if (r == 0 && q->nadd)
        r = al_authorize(c, principal, "secretsmanager:ReplicateSecretToRegions", partial, e);
    if (r < 0)
        return r;
    if ((r = al_kms_resolve_e(c, q->kms ? q->kms : "alias/aws/secretsmanager",
                              "ResourceNotFoundException", key_id, e)) < 0)
        return r;
    if (q->kms && !al_kms_is_aws_managed(c, key_id)) {
        char key_arn[256];
        al_kms_key_arn(c, key_id, key_arn, sizeof key_arn);
        return al_authorize(c, principal, "kms:GenerateDataKey", key_arn, e);
    }
    return 0;
}

/* The name is taken by old: an idempotent retry (same token, same value)
 * answers the first creation (0, the transaction rolled back); else the
 * refusal. */
static int create_existing(al_ctx *c, const create_req *q, const secret *old, es_jw *w, al_error *e)
{
    if (old->deletion > 0)
        return al_fail(e, 400, "InvalidRequestException",
                       "You can't create this secret because a secret with this name is already "
                       "scheduled for deletion.");
    int same = q->token && q->v.present ? same_value(c, old, q->vid, &q->v) : 0;
    if (same == 1) {
        al_db_rollback(c->db);
        al_sm_write_secret_ref(w, old->arn, old->name, q->vid);
        return 0;
    }
    return al_fail(e, 400, "ResourceExistsException",
                   "The operation failed because the secret %s already exists.", q->name);
}

/* Inside the transaction: the new secret's row (ARN prefix + name + a
 * random suffix), its tags and its first version. */
static int create_insert(al_ctx *c, const create_req *q, const char *prefix, secret *s, al_error *e)
{
    char suffix[7];
    if (al_random_alnum(suffix, 6) < 0)
        return al_fail_internal(e, "InternalServiceError");
    snprintf(s->arn, sizeof s->arn, "%s%s-%s", prefix, q->name, suffix);
    snprintf(s->name, sizeof s->name, "%s", q->name);
    double now = al_now(c);
    sqlite3_stmt *st = al_db_prepare(c->db, "INSERT INTO sm_secret(arn, name, description, "
                                            "kms_key_ref, key_id, created, changed, region) "
                                            "VALUES (?,?,?,?,?,?,?,?)");
    if (!st)
        return al_fail_internal(e, "InternalServiceError");
    sqlite3_bind_text(st, 1, s->arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, q->name, -1, SQLITE_STATIC);
    if (q->desc)
        sqlite3_bind_text(st, 3, q->desc, -1, SQLITE_STATIC);
    if (q->kms)
        sqlite3_bind_text(st, 4, q->kms, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, s->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 6, now);
    sqlite3_bind_double(st, 7, now);
    sqlite3_bind_text(st, 8, al_region(c), -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    al_db_release(c->db, st);
    if (rc != SQLITE_DONE)
        return al_fail_internal(e, "InternalServiceError");
    for (size_t i = 0; q->tags && i < q->tags->u.array.n; i++)
        if (put_tag(c, s->arn, q->tags->u.array.items[i]) < 0)
            return al_fail_internal(e, "InternalServiceError");
    if (!q->v.present)
        return 0;
    int r = al_sm_insert_version(c, s, q->vid, &q->v);
    if (r == 0)
        r = al_sm_move_stage(c, s->arn, "AWSCURRENT", q->vid);
    return r < 0 ? al_sm_value_error(e, r) : 0;
}

static int op_create_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                            al_error *e)
{
    create_req q;
    secret s, old;
    memset(&s, 0, sizeof s);
    memset(&old, 0, sizeof old);
    int r = parse_create(c, req, &q, e);
    if (r < 0)
        goto out;
    char prefix[256], partial[ARN_MAX];
    arn_prefix(c, prefix, sizeof prefix);
    snprintf(partial, sizeof partial, "%s%s", prefix, q.name);
    if ((r = create_authorize(c, principal, &q, partial, s.key_id, e)) < 0)
        goto out;
    if (purge_expired(c, true) < 0 || al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    r = al_sm_find_secret(c, q.name, &old);
    if (r == 0 && strcmp(old.name, q.name) == 0) {
        r = create_existing(c, &q, &old, w, e);
        goto out;
    }
    if (r < 0 && r != -ENOENT) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if ((r = create_insert(c, &q, prefix, &s, e)) < 0 ||
        (q.nadd && (r = al_sm_replicate_all(c, principal, &s, q.add, q.nadd, q.force, e)) < 0))
        goto out;
    if (al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", s.arn);
    es_jw_kstr(w, "Name", s.name);
    if (q.v.present)
        es_jw_kstr(w, "VersionId", q.vid);
    if (q.nadd)
        al_sm_write_replication_status(c, s.arn, w);
    es_jw_obj_end(w);
    r = 0;
out:
    if (r < 0)
        al_db_rollback(c->db);
    al_sm_secret_clear(&old);
    value_clear(&q.v);
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
        return al_sm_value_error(e, r);
    r = al_sm_insert_version(c, s, vid, v);
    for (size_t i = 0; r == 0 && i < (stages ? stages->u.array.n : 1); i++)
        r = al_sm_move_stage(c, s->arn,
                             stages ? es_json_as_str(stages->u.array.items[i]) : "AWSCURRENT", vid);
    if (r == 0)
        r = al_sm_prune_versions(c, s->arn);
    if (r == 0)
        r = al_sm_touch_changed(c, s->arn);
    return r < 0 ? al_sm_value_error(e, r) : 0;
}

/* One change to secret s in one transaction: fn's answer >= 0 commits,
 * its error rolls back; a store that fails to begin or commit is
 * InternalServiceError. Answers fn's answer. */
typedef int (*al_sm_change_fn)(al_ctx *c, secret *s, void *arg, al_error *e);

int al_sm_change(al_ctx *c, secret *s, al_sm_change_fn fn, void *arg, al_error *e)
{
    if (al_db_begin(c->db) < 0)
        return al_fail_internal(e, "InternalServiceError");
    int r = fn(c, s, arg, e);
    if (r >= 0 && al_db_commit(c->db) < 0)
        r = al_fail_internal(e, "InternalServiceError");
    if (r < 0)
        al_db_rollback(c->db);
    return r;
}

typedef struct put_change {
    const char *vid;
    const value *v;
    const es_json *stages;
} put_change;

/* PutSecretValue's change: the version, then the replicas. 1: an
 * idempotent retry (nothing changed). */
static int put_value_change(al_ctx *c, secret *s, void *arg, al_error *e)
{
    const put_change *p = arg;
    int r = store_version(c, s, p->vid, p->v, p->stages, e);
    if (r == 0 && (r = al_sm_sync_replicas(c, s->arn)) < 0)
        r = al_sm_value_error(e, r);
    return r;
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
    if (token && (r = al_sm_check_token(token, e)) < 0)
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
    if ((r = al_sm_load_primary(c, principal, req, "secretsmanager:PutSecretValue", true, &s, e)) <
        0) {
        value_clear(&v);
        return r;
    }
    put_change p = {.vid = vid, .v = &v, .stages = stages};
    if ((r = al_sm_change(c, &s, put_value_change, &p, e)) >= 0) { /* 1: a retry, answered alike */
        es_jw_obj(w);
        es_jw_kstr(w, "ARN", s.arn);
        es_jw_kstr(w, "Name", s.name);
        es_jw_kstr(w, "VersionId", vid);
        es_jw_key(w, "VersionStages");
        write_stages(c, s.arn, vid, w);
        es_jw_obj_end(w);
        r = 0;
    }
    al_sm_secret_clear(&s);
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
        r = al_sm_stage_holder(c, s->arn, stage, vid, sizeof vid);
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
    r = al_sm_load_version(c, s, vid, p);
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
            return al_sm_value_error(e, r); /* the KMS key is gone */
        al_fail(e, 400, "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret value for VersionId: %s", vid);
        return -ENOENT;
    }
    if (r < 0)
        return al_sm_value_error(e, r);
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
    if (version_id && (r = al_sm_check_token(version_id, e)) < 0)
        return r;
    if ((r = al_sm_load_target(c, principal, req, "secretsmanager:GetSecretValue", true, &s, e)) <
        0)
        return r;
    r = pick_version(c, principal, &s, version_id, stage, &p, e);
    if (r == 0) {
        write_secret_value(c, &s, &p, w);
        al_sm_plain_clear(&p);
    }
    al_sm_secret_clear(&s);
    return r;
}

int al_sm_reference_parameter(al_ctx *c, const char *principal, const char *param_name,
                              const char *secret_id, const char *selector, es_jw *w, al_error *e)
{
    secret s;
    plain p;
    if (purge_expired(c, false) < 0)
        return al_fail_internal(e, "InternalServerError");
    int r = al_sm_find_secret(c, secret_id, &s);
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
        if (al_sm_stage_holder(c, s.arn, selector, tmp, sizeof tmp) == 0)
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
    al_sm_plain_clear(&p);
    r = wr < 0 ? al_fail_internal(e, "InternalServerError") : 0;
out:
    al_sm_secret_clear(&s);
    return r;
}

/* ---- DescribeSecret / ListSecrets ---- */

/* RotationEnabled, RotationLambdaARN, RotationRules, LastRotatedDate,
 * NextRotationDate as DescribeSecret shows them. */
static void write_rotation(const secret *s, es_jw *w)
{
    es_jw_kbool(w, "RotationEnabled", s->rot_enabled);
    if (s->rot_lambda)
        es_jw_kstr(w, "RotationLambdaARN", s->rot_lambda);
    if (s->rot_days || s->rot_schedule) {
        es_jw_key(w, "RotationRules");
        es_jw_obj(w);
        if (s->rot_days)
            es_jw_kint(w, "AutomaticallyAfterDays", s->rot_days);
        if (s->rot_schedule)
            es_jw_kstr(w, "ScheduleExpression", s->rot_schedule);
        if (s->rot_window)
            es_jw_kstr(w, "Duration", s->rot_window);
        es_jw_obj_end(w);
    }
    if (s->last_rotated > 0) {
        es_jw_key(w, "LastRotatedDate");
        es_jw_double(w, s->last_rotated);
    }
    if (s->rot_enabled && s->next_rotation > 0) {
        es_jw_key(w, "NextRotationDate");
        es_jw_double(w, s->next_rotation);
    }
}

static void write_entry(al_ctx *c, const secret *s, bool list, es_jw *w)
{
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", s->arn);
    es_jw_kstr(w, "Name", s->name);
    if (s->description)
        es_jw_kstr(w, "Description", s->description);
    if (s->kms_key_ref)
        es_jw_kstr(w, "KmsKeyId", s->kms_key_ref);
    write_rotation(s, w);
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
    al_sm_write_primary_region(c, s, list, w);
    es_jw_obj_end(w);
}

static int op_describe_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e)
{
    secret s;
    int r = al_sm_load_target(c, principal, req, "secretsmanager:DescribeSecret", false, &s, e);
    if (r < 0)
        return r;
    write_entry(c, &s, false, w);
    al_sm_secret_clear(&s);
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

/* ListSecrets' and BatchGetSecretValue's Filters: at most 10, keys name,
 * description or all, 1 to 10 values each. */
static int parse_filters(const es_json *req, const es_json **out, al_error *e)
{
    const es_json *filters = es_json_get(req, "Filters");
    *out = NULL;
    if (!filters || filters->type == ES_JSON_NULL)
        return 0;
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
    *out = filters;
    return 0;
}

/* A listing's NextToken: base64 of the last name answered. */
static int parse_list_token(const char *tok, char *after, al_error *e)
{
    uint8_t *d = NULL;
    size_t n = 0;
    if (strlen(tok) > AL_SM_NEXT_TOKEN_MAX || al_b64_decode(tok, strlen(tok), &d, &n) < 0 ||
        n == 0 || n > AL_SM_NAME_MAX || memchr(d, 0, n)) {
        es_free(d);
        return al_fail(e, 400, "InvalidNextTokenException", "The NextToken is not valid.");
    }
    memcpy(after, d, n);
    after[n] = '\0';
    es_free(d);
    return 0;
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
    const es_json *filters;
    char after[AL_SM_NAME_MAX + 1] = "";
    if (parse_filters(req, &filters, e) < 0 || (tok && parse_list_token(tok, after, e) < 0))
        return -EINVAL;
    int r = al_authorize(c, principal, "secretsmanager:ListSecrets", "*", e);
    if (r < 0)
        return r;
    if (purge_expired(c, false) < 0)
        return al_fail_internal(e, "InternalServiceError");
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT name FROM sm_secret WHERE region=? AND name > ? ORDER BY name");
    if (!st)
        return al_fail_internal(e, "InternalServiceError");
    sqlite3_bind_text(st, 1, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
    es_jw_obj(w);
    es_jw_key(w, "SecretList");
    es_jw_arr(w);
    int64_t n = 0;
    bool more = false;
    char last[AL_SM_NAME_MAX + 1] = "";
    while (sqlite3_step(st) == SQLITE_ROW) {
        secret s;
        if (al_sm_find_secret(c, (const char *)sqlite3_column_text(st, 0), &s) < 0)
            continue;
        if ((s.deletion == 0 || planned) && list_filter_match(filters, &s)) {
            if (n == max) {
                more = true;
                al_sm_secret_clear(&s);
                break;
            }
            write_entry(c, &s, true, w);
            snprintf(last, sizeof last, "%s", s.name);
            n++;
        }
        al_sm_secret_clear(&s);
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

bool al_sm_version_exists(al_ctx *c, const char *arn, const char *vid)
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

typedef struct stage_change {
    const char *stage, *from, *to;
} stage_change;

/* UpdateSecretVersionStage's change: AWS's checks on where the label is,
 * then the move (or removal). */
static int stage_move_change(al_ctx *c, secret *s, void *arg, al_error *e)
{
    const stage_change *q = arg;
    const char *stage = q->stage, *from = q->from, *to = q->to;
    char cur[AL_SM_TOKEN_MAX + 1] = "";
    int r = al_sm_stage_holder(c, s->arn, stage, cur, sizeof cur);
    if (r < 0 && r != -ENOENT)
        return al_fail_internal(e, "InternalServiceError");
    if (to && !al_sm_version_exists(c, s->arn, to))
        return al_fail(e, 400, "InvalidParameterException",
                       "Version %s does not exist in secret %s.", to, s->name);
    if (cur[0] && (!to || strcmp(cur, to) != 0) && (!from || strcmp(from, cur) != 0))
        return al_fail(e, 400, "InvalidParameterException",
                       "The staging label %s is currently attached to version %s, but you didn't "
                       "specify the RemoveFromVersionId parameter with that version ID.",
                       stage, cur);
    if (from && strcmp(from, cur) != 0)
        return al_fail(e, 400, "InvalidParameterException",
                       "The staging label %s is not attached to version %s.", stage, from);
    if (!to && strcmp(stage, "AWSCURRENT") == 0)
        return al_fail(e, 400, "InvalidParameterException",
                       "You can't remove the staging label AWSCURRENT from a version without "
                       "moving it to another version (MoveToVersionId).");
    r = to ? al_sm_move_stage(c, s->arn, stage, to) : al_sm_remove_stage(c, s->arn, stage);
    if (r == 0)
        r = al_sm_prune_versions(c, s->arn);
    if (r == 0)
        r = al_sm_touch_changed(c, s->arn);
    if (r < 0)
        return al_fail_internal(e, "InternalServiceError");
    return (r = al_sm_sync_replicas(c, s->arn)) < 0 ? al_sm_value_error(e, r) : 0;
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
    int r = al_sm_load_primary(c, principal, req, "secretsmanager:UpdateSecretVersionStage", true,
                               &s, e);
    if (r < 0)
        return r;
    stage_change q = {.stage = stage, .from = from, .to = to};
    if ((r = al_sm_change(c, &s, stage_move_change, &q, e)) == 0)
        al_sm_write_secret_ref(w, s.arn, s.name, NULL);
    al_sm_secret_clear(&s);
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
    int r = al_sm_load_primary(c, principal, req, "secretsmanager:DeleteSecret", false, &s, e);
    if (r < 0)
        return r;
    if ((r = al_sm_refuse_replicated(c, &s, es_json_get_str(req, "SecretId"), e)) < 0) {
        al_sm_secret_clear(&s);
        return r;
    }
    if (s.deletion > 0 && !force) {
        al_sm_secret_clear(&s);
        return al_fail(e, 400, "InvalidRequestException", SCHEDULED_MSG);
    }
    double when = force ? al_now(c) : al_now(c) + (double)days * 86400.0;
    sqlite3_stmt *st = force
                           ? al_db_prepare(c->db, "DELETE FROM sm_secret WHERE arn=?2")
                           : al_db_prepare(c->db, "UPDATE sm_secret SET deletion=?1 WHERE arn=?2");
    if (!st) {
        al_sm_secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    if (!force)
        sqlite3_bind_double(st, 1, when);
    sqlite3_bind_text(st, 2, s.arn, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    al_db_release(c->db, st);
    if (rc != SQLITE_DONE) {
        al_sm_secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", s.arn);
    es_jw_kstr(w, "Name", s.name);
    es_jw_key(w, "DeletionDate");
    es_jw_double(w, when);
    es_jw_obj_end(w);
    al_sm_secret_clear(&s);
    return 0;
}

static int op_restore_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                             al_error *e)
{
    secret s;
    int r = al_sm_load_primary(c, principal, req, "secretsmanager:RestoreSecret", false, &s, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET deletion=NULL WHERE arn=?");
    if (!st ||
        (sqlite3_bind_text(st, 1, s.arn, -1, SQLITE_STATIC), sqlite3_step(st)) != SQLITE_DONE) {
        al_db_release(c->db, st);
        al_sm_secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    al_db_release(c->db, st);
    al_sm_write_secret_ref(w, s.arn, s.name, NULL);
    al_sm_secret_clear(&s);
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
    int r =
        al_sm_load_target(c, principal, req, "secretsmanager:ListSecretVersionIds", true, &s, e);
    if (r < 0)
        return r;
    /* versions in creation order; the token is the rowid of the last one */
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT v.rowid, v.version_id, v.created FROM sm_version v WHERE v.arn=?1 AND "
               "v.rowid > ?2 AND (?3 OR EXISTS (SELECT 1 FROM sm_stage g WHERE g.arn=v.arn AND "
               "g.version_id=v.version_id)) ORDER BY v.rowid LIMIT ?4");
    if (!st) {
        al_sm_secret_clear(&s);
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
    al_sm_secret_clear(&s);
    return 0;
}

/* UpdateSecret's Description and/or KmsKeyId (resolved to key_id) into the
 * row and s: versions made from now on go under the new key. */
static int update_settings(al_ctx *c, secret *s, const char *desc, const char *kms,
                           const char *key_id)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "UPDATE sm_secret SET description=coalesce(?1, description), "
                             "kms_key_ref=CASE WHEN ?2 IS NULL THEN kms_key_ref ELSE ?2 END, "
                             "key_id=coalesce(?3, key_id) WHERE arn=?4");
    if (!st)
        return -EIO;
    if (desc)
        sqlite3_bind_text(st, 1, desc, -1, SQLITE_STATIC);
    if (kms) {
        sqlite3_bind_text(st, 2, kms, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, key_id, -1, SQLITE_STATIC);
        snprintf(s->key_id, sizeof s->key_id, "%s", key_id);
    }
    sqlite3_bind_text(st, 4, s->arn, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    al_db_release(c->db, st);
    return rc == SQLITE_DONE ? al_sm_touch_changed(c, s->arn) : -EIO;
}

/* UpdateSecret: description and/or KMS key, and with a value a new version
 * that becomes AWSCURRENT (as PutSecretValue). */
typedef struct update_change {
    const char *desc, *kms, *key_id, *vid;
    const value *v;
} update_change;

/* UpdateSecret's change: settings, a new version when a value is given,
 * the replicas. */
static int update_change_fn(al_ctx *c, secret *s, void *arg, al_error *e)
{
    const update_change *u = arg;
    int r = 0;
    if ((u->desc || u->kms) && update_settings(c, s, u->desc, u->kms, u->key_id) < 0)
        return al_fail_internal(e, "InternalServiceError");
    if (u->v->present && (r = store_version(c, s, u->vid, u->v, NULL, e)) < 0)
        return r;
    return (r = al_sm_sync_replicas(c, s->arn)) < 0 ? al_sm_value_error(e, r) : 0;
}

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
    if (token && (r = al_sm_check_token(token, e)) < 0)
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
    if ((r = al_sm_load_primary(c, principal, req, "secretsmanager:UpdateSecret", true, &s, e)) <
        0) {
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
    update_change u = {desc, kms, key_id, vid, &v};
    if ((r = al_sm_change(c, &s, update_change_fn, &u, e)) >= 0) {
        al_sm_write_secret_ref(w, s.arn, s.name, v.present ? vid : NULL);
        r = 0;
    }
out:
    al_sm_secret_clear(&s);
    value_clear(&v);
    return r;
}

/* ---- TagResource / UntagResource ---- */

static void answer_empty(es_jw *w)
{
    es_jw_obj(w);
    es_jw_obj_end(w);
}

/* TagResource's change: the tags written, then at most AL_SM_TAGS_MAX. */
static int tag_change(al_ctx *c, secret *s, void *arg, al_error *e)
{
    const es_json *tags = arg;
    int r = 0;
    for (size_t i = 0; r == 0 && i < tags->u.array.n; i++)
        r = put_tag(c, s->arn, tags->u.array.items[i]);
    int64_t n = r < 0 ? r : al_sm_count_rows(c, "SELECT count(*) FROM sm_tag WHERE arn=?", s->arn);
    if (n < 0 || al_sm_touch_changed(c, s->arn) < 0 || al_sm_sync_replicas(c, s->arn) < 0)
        return al_fail_internal(e, "InternalServiceError");
    return al_tags_total_check(n, &SM_TAGS, e);
}

static int op_tag_resource(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    const es_json *tags;
    secret s;
    int r = parse_tags(req, &tags, e);
    if (r < 0)
        return r;
    if (!tags)
        return al_fail(e, 400, "InvalidParameterException", "You must provide Tags.");
    if ((r = al_sm_load_primary(c, principal, req, "secretsmanager:TagResource", true, &s, e)) < 0)
        return r;
    if ((r = al_sm_change(c, &s, tag_change, (void *)tags, e)) == 0)
        answer_empty(w);
    al_sm_secret_clear(&s);
    return r;
}

/* TagKeys: a list of keys, by the shared rules (none reserved). */
static int parse_tag_keys(const es_json *req, const es_json **out, al_error *e)
{
    const es_json *keys = es_json_get(req, "TagKeys");
    int r = al_tag_keys_check(keys, &SM_TAGS, e);
    *out = keys;
    return r;
}

/* UntagResource's change: the keys removed (absent ones are no error). */
static int untag_change(al_ctx *c, secret *s, void *arg, al_error *e)
{
    const es_json *keys = arg;
    int r = 0;
    for (size_t i = 0; r == 0 && i < keys->u.array.n; i++) {
        sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM sm_tag WHERE arn=? AND key=?");
        if (!st)
            return al_fail_internal(e, "InternalServiceError");
        sqlite3_bind_text(st, 1, s->arn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, es_json_as_str(keys->u.array.items[i]), -1, SQLITE_STATIC);
        r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
        al_db_release(c->db, st);
    }
    if (r < 0 || al_sm_touch_changed(c, s->arn) < 0 || al_sm_sync_replicas(c, s->arn) < 0)
        return al_fail_internal(e, "InternalServiceError");
    return 0;
}

static int op_untag_resource(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                             al_error *e)
{
    const es_json *keys;
    secret s;
    int r = parse_tag_keys(req, &keys, e);
    if (r < 0)
        return r;
    if ((r = al_sm_load_primary(c, principal, req, "secretsmanager:UntagResource", true, &s, e)) <
        0)
        return r;
    if ((r = al_sm_change(c, &s, untag_change, (void *)keys, e)) == 0)
        answer_empty(w);
    al_sm_secret_clear(&s);
    return r;
}

/* ---- BatchGetSecretValue ---- */

#define AL_SM_BATCH_MAX 20

/* What one secret of a batch could not give: its Errors entry. */
typedef struct batch_err {
    char id[AL_SM_SECRET_ID_MAX + 1];
    al_error e;
} batch_err;

typedef struct batch {
    batch_err *errs;
    size_t nerrs;
} batch;

/* GetSecretValue of one secret into the SecretValues array w has open; a
 * failure becomes an Errors entry instead (the batch answers the rest). */
static void batch_one(al_ctx *c, const char *principal, const char *id, batch *b, es_jw *w)
{
    secret s;
    plain p;
    al_error *e = &b->errs[b->nerrs].e;
    memset(e, 0, sizeof *e);
    int r = al_sm_find_secret(c, id, &s);
    if (r < 0) {
        not_found(e, r);
    } else {
        if ((r = al_authorize(c, principal, "secretsmanager:GetSecretValue", s.arn, e)) == 0) {
            if (s.deletion > 0)
                r = al_fail(e, 400, "InvalidRequestException", SCHEDULED_MSG);
            else if ((r = pick_version(c, principal, &s, NULL, NULL, &p, e)) == 0) {
                write_secret_value(c, &s, &p, w);
                al_sm_plain_clear(&p);
            }
        }
        al_sm_secret_clear(&s);
    }
    if (r < 0)
        snprintf(b->errs[b->nerrs++].id, sizeof b->errs[0].id, "%s", id);
}

static void batch_write_errors(const batch *b, es_jw *w)
{
    es_jw_key(w, "Errors");
    es_jw_arr(w);
    for (size_t i = 0; i < b->nerrs; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "SecretId", b->errs[i].id);
        es_jw_kstr(w, "ErrorCode", b->errs[i].e.code);
        es_jw_kstr(w, "Message", b->errs[i].e.message);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

/* SecretIdList: 1 to 20 names or ARNs of 1 to 2048 characters. */
static int batch_check_ids(const es_json *ids, al_error *e)
{
    if (ids->type != ES_JSON_ARRAY || ids->u.array.n < 1 || ids->u.array.n > AL_SM_BATCH_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "SecretIdList must be a list of 1 to %d secret names or ARNs.",
                       AL_SM_BATCH_MAX);
    for (size_t i = 0; i < ids->u.array.n; i++) {
        const char *id = es_json_as_str(ids->u.array.items[i]);
        if (!id || !*id || strlen(id) > AL_SM_SECRET_ID_MAX)
            return al_fail(e, 400, "InvalidParameterException",
                           "Each SecretId must be 1 to %d characters.", AL_SM_SECRET_ID_MAX);
    }
    return 0;
}

static int parse_filters(const es_json *req, const es_json **out, al_error *e);
static bool list_filter_match(const es_json *filters, const secret *s);
static int parse_list_token(const char *tok, char *after, al_error *e);

/* The secrets of the region matching filters, by name after the token's,
 * at most max; *more when some are left (last: the name to go on from). */
static int batch_filtered(al_ctx *c, const char *principal, const es_json *filters,
                          const char *after, int64_t max, batch *b, es_jw *w, char *last)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT name FROM sm_secret WHERE region=? AND name > ? AND deletion IS NULL "
               "ORDER BY name");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
    int64_t n = 0;
    int more = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        secret s;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (al_sm_find_secret(c, name, &s) < 0)
            continue;
        bool match = list_filter_match(filters, &s);
        al_sm_secret_clear(&s);
        if (!match)
            continue;
        if (n == max) {
            more = 1;
            break;
        }
        batch_one(c, principal, name, b, w);
        snprintf(last, AL_SM_NAME_MAX + 1, "%s", name);
        n++;
    }
    al_db_release(c->db, st);
    return more;
}

static int batch_request(const es_json *req, const es_json **ids, const es_json **filters,
                         int64_t *max, char *after, al_error *e)
{
    const char *tok;
    *ids = es_json_get(req, "SecretIdList");
    if (*ids && (*ids)->type == ES_JSON_NULL)
        *ids = NULL;
    int r = parse_filters(req, filters, e);
    if (r < 0)
        return r;
    if (!al_opt_int(req, "MaxResults", 1, AL_SM_BATCH_MAX, AL_SM_BATCH_MAX, max, e) ||
        !al_opt_str(req, "NextToken", &tok, e))
        return -EINVAL;
    if ((*ids != NULL) == (*filters != NULL))
        return al_fail(e, 400, "InvalidParameterException",
                       "Either SecretIdList or Filters must be provided, but not both.");
    if (*ids && (es_json_get(req, "MaxResults") || tok))
        return al_fail(e, 400, "InvalidParameterException",
                       "MaxResults and NextToken can be used only with Filters.");
    if (*ids)
        return batch_check_ids(*ids, e);
    return tok ? parse_list_token(tok, after, e) : 0;
}

static int op_batch_get_secret_value(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                     al_error *e)
{
    const es_json *ids, *filters;
    int64_t max;
    char after[AL_SM_NAME_MAX + 1] = "", last[AL_SM_NAME_MAX + 1] = "";
    int r = batch_request(req, &ids, &filters, &max, after, e);
    if (r < 0)
        return r;
    if ((r = al_authorize(c, principal, "secretsmanager:BatchGetSecretValue", "*", e)) < 0 ||
        (filters && (r = al_authorize(c, principal, "secretsmanager:ListSecrets", "*", e)) < 0))
        return r;
    if (purge_expired(c, false) < 0)
        return al_fail_internal(e, "InternalServiceError");
    batch b = {.errs = es_calloc(AL_SM_BATCH_MAX, sizeof(batch_err))};
    if (!b.errs)
        return al_fail_internal(e, "InternalServiceError");
    es_jw_obj(w);
    es_jw_key(w, "SecretValues");
    es_jw_arr(w);
    int more = 0;
    for (size_t i = 0; ids && i < ids->u.array.n; i++)
        batch_one(c, principal, es_json_as_str(ids->u.array.items[i]), &b, w);
    if (filters)
        more = batch_filtered(c, principal, filters, after, max, &b, w, last);
    es_jw_arr_end(w);
    batch_write_errors(&b, w);
    if (more > 0) {
        es_jw_key(w, "NextToken");
        al_jw_b64(w, (const uint8_t *)last, strlen(last));
    }
    es_jw_obj_end(w);
    es_free(b.errs);
    return more < 0 ? al_fail_internal(e, "InternalServiceError") : 0;
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
    {"GetRandomPassword", al_sm_get_random_password}, /* sm_password.c */
    {"TagResource", op_tag_resource},
    {"UntagResource", op_untag_resource},
    {"BatchGetSecretValue", op_batch_get_secret_value},
    {"RotateSecret", al_sm_op_rotate_secret},
    {"CancelRotateSecret", al_sm_op_cancel_rotate_secret},
    {"ReplicateSecretToRegions", al_sm_op_replicate_secret_to_regions},
    {"RemoveRegionsFromReplication", al_sm_op_remove_regions_from_replication},
    {"StopReplicationToReplica", al_sm_op_stop_replication_to_replica},
    /* resource policies: aws/local/sm_policy.c */
    {"PutResourcePolicy", al_sm_put_resource_policy},
    {"GetResourcePolicy", al_sm_get_resource_policy},
    {"DeleteResourcePolicy", al_sm_delete_resource_policy},
    {NULL, NULL},
};
