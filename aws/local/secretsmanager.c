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
#include "aws/region.h"
#include "aws/local/sm_hook.h"
#include "aws/local/sm_password.h"
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
    /* rotation (RotateSecret): settings and what the last one did */
    bool rot_enabled;
    char *rot_lambda, *rot_schedule, *rot_window, *rot_failure;
    int64_t rot_days; /* 0: none */
    double last_rotated, next_rotation;
    char *primary_region; /* a replica's primary region; NULL for a primary */
} secret;

static void secret_clear(secret *s)
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
        secret_clear(s);
        return -ENOMEM;
    }
    return 0;
}

/* Finds a secret of the request's region by name, full ARN or partial ARN
 * (ARN without the random suffix). An ARN of another region, partition or
 * account names no secret here, as in AWS. -ENOENT or -EIO. */
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

static int hooks_poll(al_ctx *c);
static int rotate_if_due(al_ctx *c, secret *s, double now);

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
    (void)hooks_poll(c); /* rotation hooks move on whenever a secret is touched */
    int r = find_secret(c, id, s);
    if (r < 0)
        return not_found(e, r);
    if ((r = al_authorize(c, principal, action, s->arn, e)) < 0) {
        secret_clear(s);
        return r;
    }
    /* a scheduled rotation that is due happens before the caller sees the
     * secret, as if the schedule had run on time */
    if (rotate_if_due(c, s, al_now(c)) > 0) {
        char arn[ARN_MAX];
        snprintf(arn, sizeof arn, "%s", s->arn);
        secret_clear(s);
        if ((r = find_secret(c, arn, s)) < 0)
            return not_found(e, r);
    }
    if (live && s->deletion > 0) {
        secret_clear(s);
        return al_fail(e, 400, "InvalidRequestException", SCHEDULED_MSG);
    }
    return 0;
}

/* load_target for a write: a replica is changed only through its primary. */
static int load_primary(al_ctx *c, const char *principal, const es_json *req, const char *action,
                        bool live, secret *s, al_error *e)
{
    int r = load_target(c, principal, req, action, live, s, e);
    if (r == 0 && s->primary_region) {
        secret_clear(s);
        return al_fail(e, 400, "InvalidParameterException", AL_SM_REPLICA_MSG);
    }
    return r;
}

/* ---- replication: what the operations before its section use ---- */

#define AL_SM_REPLICAS_MAX 64 /* regions of one request (more than a partition has) */

/* One member of AddReplicaRegions. */
typedef struct add_region {
    const char *region, *kms; /* kms NULL: alias/aws/secretsmanager of the region */
} add_region;

static int parse_add_regions(al_ctx *c, const es_json *req, add_region *out, size_t *n,
                             al_error *e);
static int replicate_all(al_ctx *c, const char *principal, const secret *p, const add_region *add,
                         size_t n, bool force, al_error *e);
static void write_replication_status(al_ctx *c, const char *arn, es_jw *w);
static int sync_replicas(al_ctx *c, const char *arn);
static int refuse_replicated(al_ctx *c, const secret *s, const char *id, al_error *e);
static void write_primary_region(al_ctx *c, const secret *s, bool list, es_jw *w);

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

/* Stores a sealed version of arn. */
static int insert_blob(al_ctx *c, const char *arn, const char *vid, bool binary,
                       const uint8_t *blob, size_t bloblen, double created)
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
    r = insert_blob(c, s->arn, vid, v->str == NULL, blob, bloblen, al_now(c));
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

#define AL_SM_TAGS_MAX 50

/* Does a tag key or value start with AWS's reserved prefix? */
static bool aws_reserved(const char *s)
{
    return s && strncasecmp(s, "aws:", 4) == 0;
}

/* Tags: a list of at most AL_SM_TAGS_MAX {Key 1-128, Value 0-256}, no key
 * with the aws: prefix (AWS keeps it for itself). */
static int parse_tags(const es_json *req, const es_json **out, al_error *e)
{
    const es_json *tags = es_json_get(req, "Tags");
    *out = NULL;
    if (!tags || tags->type == ES_JSON_NULL)
        return 0;
    if (tags->type != ES_JSON_ARRAY || tags->u.array.n > AL_SM_TAGS_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "Tags must be a list of at most %d tags.", AL_SM_TAGS_MAX);
    if (!al_tags_ok(tags))
        return al_fail(e, 400, "InvalidParameterException", AL_TAG_RULE);
    for (size_t i = 0; i < tags->u.array.n; i++)
        if (aws_reserved(es_json_get_str(tags->u.array.items[i], "Key")))
            return al_fail(e, 400, "InvalidParameterException",
                           "Tag keys can't start with aws: (reserved for AWS use).");
    *out = tags;
    return 0;
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

static int64_t count_rows(al_ctx *c, const char *sql, const char *arn)
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
    if (q->token && (r = check_token(q->token, e)) < 0)
        return r;
    if ((r = parse_tags(req, &q->tags, e)) < 0)
        return r;
    if ((r = parse_add_regions(c, req, q->add, &q->nadd, e)) < 0)
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
    int r = insert_version(c, s, q->vid, &q->v);
    if (r == 0)
        r = move_stage(c, s->arn, "AWSCURRENT", q->vid);
    return r < 0 ? value_error(e, r) : 0;
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
    r = find_secret(c, q.name, &old);
    if (r == 0 && strcmp(old.name, q.name) == 0) {
        r = create_existing(c, &q, &old, w, e);
        goto out;
    }
    if (r < 0 && r != -ENOENT) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if ((r = create_insert(c, &q, prefix, &s, e)) < 0 ||
        (q.nadd && (r = replicate_all(c, principal, &s, q.add, q.nadd, q.force, e)) < 0))
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
        write_replication_status(c, s.arn, w);
    es_jw_obj_end(w);
    r = 0;
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&old);
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
    if ((r = load_primary(c, principal, req, "secretsmanager:PutSecretValue", true, &s, e)) < 0) {
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
    if (r == 0 && (r = sync_replicas(c, s.arn)) < 0)
        r = value_error(e, r);
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
    write_primary_region(c, s, list, w);
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
    int r = load_primary(c, principal, req, "secretsmanager:UpdateSecretVersionStage", true, &s, e);
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
    if (r == 0 && (r = sync_replicas(c, s.arn)) < 0) {
        r = value_error(e, r);
        goto out;
    }
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
    int r = load_primary(c, principal, req, "secretsmanager:DeleteSecret", false, &s, e);
    if (r < 0)
        return r;
    if ((r = refuse_replicated(c, &s, es_json_get_str(req, "SecretId"), e)) < 0) {
        secret_clear(&s);
        return r;
    }
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
    int r = load_primary(c, principal, req, "secretsmanager:RestoreSecret", false, &s, e);
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
    return rc == SQLITE_DONE ? touch_changed(c, s->arn) : -EIO;
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
    if ((r = load_primary(c, principal, req, "secretsmanager:UpdateSecret", true, &s, e)) < 0) {
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
    if ((desc || kms) && update_settings(c, &s, desc, kms, key_id) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if (v.present && (r = store_version(c, &s, vid, &v, NULL, e)) < 0)
        goto out;
    if ((r = sync_replicas(c, s.arn)) < 0) {
        r = value_error(e, r);
        goto out;
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
    secret_clear(&s);
    value_clear(&v);
    return r;
}

/* ---- rotation: schedules ---- */

#define AL_SM_ROTATION_DAYS_MAX 1000
#define AL_SM_SCHEDULE_MAX 256
#define AL_SM_LAMBDA_ARN_MAX 2048
#define AL_SM_HOOK_NAME_MAX 64
#define PREVIOUS_ROTATION_MSG                                                                      \
    "A previous rotation isn't complete. That rotation will be reattempted."
#define NO_LAMBDA_MSG                                                                              \
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "       \
    "policy grants access to the principal secretsmanager.amazonaws.com."

typedef struct rules {
    bool present;
    int64_t days;         /* 0: none */
    const char *schedule; /* NULL: none */
    const char *window;   /* Duration, NULL: none */
} rules;

/* One item of a cron field: a star or '?', N, N-M, each optionally with a
 * step /S; names (JAN, MON) where names is given (index + lo is the
 * value). */
static bool cron_item(const char *s, size_t n, int lo, int hi, const char *const *names, int v,
                      bool *bad);

static int cron_value(const char *s, size_t n, int lo, const char *const *names, bool *bad)
{
    if (n == 0) {
        *bad = true;
        return -1;
    }
    if (names && n == 3)
        for (int i = 0; names[i]; i++)
            if (strncasecmp(s, names[i], 3) == 0)
                return lo + i;
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || x > 10000) {
            *bad = true;
            return -1;
        }
        x = x * 10 + (s[i] - '0');
    }
    return x;
}

static bool cron_item(const char *s, size_t n, int lo, int hi, const char *const *names, int v,
                      bool *bad)
{
    const char *slash = memchr(s, '/', n);
    size_t rn = slash ? (size_t)(slash - s) : n;
    int step = slash ? cron_value(slash + 1, n - rn - 1, 0, NULL, bad) : 1;
    int a = lo, b = hi;
    if (!(rn == 1 && (s[0] == '*' || s[0] == '?'))) {
        const char *dash = memchr(s, '-', rn);
        a = cron_value(s, dash ? (size_t)(dash - s) : rn, lo, names, bad);
        b = dash ? cron_value(dash + 1, rn - (size_t)(dash - s) - 1, lo, names, bad)
                 : (slash ? hi : a);
    }
    if (step < 1 || a < lo || b > hi || a > b)
        *bad = true;
    return !*bad && v >= a && v <= b && (v - a) % step == 0;
}

/* Does v match the comma-separated field f[0..n)? *bad on a syntax error. */
static bool cron_field(const char *f, size_t n, int lo, int hi, const char *const *names, int v,
                       bool *bad)
{
    bool any = false;
    while (n > 0) {
        const char *comma = memchr(f, ',', n);
        size_t len = comma ? (size_t)(comma - f) : n;
        any |= cron_item(f, len, lo, hi, names, v, bad);
        f += len + (comma ? 1 : 0);
        n -= len + (comma ? 1 : 0);
        if (comma && n == 0)
            *bad = true;
    }
    return any && !*bad;
}

typedef struct cron {
    const char *f[6];
    size_t n[6];
} cron;

static const char *const MONTHS[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                     "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const DAYS[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

/* Splits "cron(m h dom mon dow year)" into its six fields. */
static bool cron_split(const char *e, cron *c)
{
    size_t len = strlen(e);
    if (len < 7 || strncmp(e, "cron(", 5) != 0 || e[len - 1] != ')')
        return false;
    const char *p = e + 5, *end = e + len - 1;
    for (int i = 0; i < 6; i++) {
        while (p < end && *p == ' ')
            p++;
        const char *q = p;
        while (q < end && *q != ' ')
            q++;
        if (q == p)
            return false;
        c->f[i] = p;
        c->n[i] = (size_t)(q - p);
        p = q;
    }
    while (p < end && *p == ' ')
        p++;
    return p == end;
}

/* Does the hour of tm (its day, month, year, weekday, hour) match? */
static bool cron_hour_match(const cron *c, const struct tm *tm, bool *bad)
{
    return cron_field(c->f[5], c->n[5], 1970, 2199, NULL, tm->tm_year + 1900, bad) &&
           cron_field(c->f[3], c->n[3], 1, 12, MONTHS, tm->tm_mon + 1, bad) &&
           cron_field(c->f[2], c->n[2], 1, 31, NULL, tm->tm_mday, bad) &&
           cron_field(c->f[4], c->n[4], 1, 7, DAYS, tm->tm_wday + 1, bad) &&
           cron_field(c->f[1], c->n[1], 0, 23, NULL, tm->tm_hour, bad);
}

/* The first minute after t (UTC) the expression names, within 5 years; 0
 * when none or the expression is malformed. Hour by hour, then the minute
 * inside a matching hour. */
static double cron_next(const char *expr, double t)
{
    cron c;
    bool bad = false;
    if (!cron_split(expr, &c))
        return 0;
    time_t x = (time_t)t / 3600 * 3600 + 3600; /* from the next hour on */
    for (int h = 0; h < 24 * 366 * 5 && !bad; h++, x += 3600) {
        struct tm tm;
        gmtime_r(&x, &tm);
        if (!cron_hour_match(&c, &tm, &bad))
            continue;
        for (int m = 0; m < 60 && !bad; m++)
            if (cron_field(c.f[0], c.n[0], 0, 59, NULL, m, &bad))
                return (double)(x + m * 60);
    }
    return 0;
}

/* rate(N days) / rate(N hours): the period in seconds; 0 when malformed. */
static double rate_period(const char *e)
{
    unsigned n = 0;
    char unit[8] = "";
    int used = 0;
    if (sscanf(e, "rate(%u %7[a-z])%n", &n, unit, &used) != 2 || (size_t)used != strlen(e))
        return 0;
    if ((strcmp(unit, "days") == 0 || strcmp(unit, "day") == 0) && n >= 1 &&
        n <= AL_SM_ROTATION_DAYS_MAX)
        return n * 86400.0;
    if ((strcmp(unit, "hours") == 0 || strcmp(unit, "hour") == 0) && n >= 4 && n <= 23)
        return n * 3600.0;
    return 0;
}

/* When the next rotation after t falls by the schedule as AWS reads it
 * (0: no schedule). */
static double schedule_next(int64_t days, const char *schedule, double t)
{
    if (days > 0)
        return t + (double)days * 86400.0;
    if (schedule && strncmp(schedule, "rate(", 5) == 0)
        return rate_period(schedule) > 0 ? t + rate_period(schedule) : 0;
    if (schedule)
        return cron_next(schedule, t);
    return 0;
}

static int parse_rules(const es_json *req, double now, rules *ru, al_error *e)
{
    const es_json *r = es_json_get(req, "RotationRules");
    memset(ru, 0, sizeof *ru);
    if (!r || r->type == ES_JSON_NULL)
        return 0;
    if (r->type != ES_JSON_OBJECT)
        return al_fail(e, 400, "InvalidParameterException", "RotationRules must be an object.");
    ru->present = true;
    if (!al_opt_int(r, "AutomaticallyAfterDays", INT64_MIN, INT64_MAX, 0, &ru->days, e) ||
        !al_opt_str(r, "ScheduleExpression", &ru->schedule, e) ||
        !al_opt_str(r, "Duration", &ru->window, e))
        return -EINVAL;
    const es_json *days = es_json_get(r, "AutomaticallyAfterDays");
    if (days && days->type != ES_JSON_NULL && (ru->days < 1 || ru->days > AL_SM_ROTATION_DAYS_MAX))
        return al_fail(e, 400, "InvalidParameterException",
                       "RotationRules.AutomaticallyAfterDays must be within 1-%d.",
                       AL_SM_ROTATION_DAYS_MAX); /* as moto and LocalStack word it */
    if (ru->days && ru->schedule)
        return al_fail(e, 400, "InvalidParameterException",
                       "You cannot specify both rotation frequency and schedule expression "
                       "together."); /* AWS's words (terraform-provider-aws#33329) */
    if (!ru->days && !ru->schedule)
        return al_fail(e, 400, "InvalidParameterException",
                       "RotationRules needs AutomaticallyAfterDays or ScheduleExpression.");
    if (ru->schedule &&
        (strlen(ru->schedule) > AL_SM_SCHEDULE_MAX || schedule_next(0, ru->schedule, now) == 0))
        return al_fail(e, 400, "InvalidParameterException",
                       "The schedule expression %.256s is not valid: use rate(N days) (1-1000), "
                       "rate(N hours) (4-23) or cron(minutes hours day-of-month month "
                       "day-of-week year).",
                       ru->schedule);
    unsigned h = 0;
    int used = 0;
    if (ru->window && (sscanf(ru->window, "%uh%n", &h, &used) != 1 ||
                       (size_t)used != strlen(ru->window) || h < 1 || h > 24))
        return al_fail(e, 400, "InvalidParameterException",
                       "Duration must be a number of hours from 1h to 24h.");
    return 0;
}

/* ---- rotation: the state of the hooks in flight ---- */

typedef struct hook_run {
    bool used;
    char arn[ARN_MAX];
    char region[AW_REGION_MAX + 1];
    char token[AL_SM_TOKEN_MAX + 1];
    char exe[PATH_MAX];
    int step; /* index in STEPS */
    pid_t pid;
    double started;
} hook_run;

static const char *const STEPS[] = {"createSecret", "setSecret", "testSecret", "finishSecret"};

struct al_sm_state {
    char *rotation_dir, *state_dir, *endpoint;
    unsigned time_scale;        /* al_options.rotation_time_scale */
    al_rotation_event_fn event; /* al_options.rotation_event */
    void *event_arg;
    hook_run runs[AL_SM_HOOKS_MAX];
    bool polling; /* hooks_poll in progress (a completion touches secrets) */
};

int al_sm_state_init(al_ctx *c, const al_options *opt)
{
    c->sm = es_calloc(1, sizeof *c->sm);
    if (!c->sm)
        return -ENOMEM;
    c->sm->rotation_dir = opt->rotation_dir ? es_strdup(opt->rotation_dir) : NULL;
    c->sm->state_dir = opt->state_dir ? es_strdup(opt->state_dir) : NULL;
    c->sm->time_scale = opt->rotation_time_scale;
    c->sm->event = opt->rotation_event;
    c->sm->event_arg = opt->rotation_event_arg;
    if ((opt->rotation_dir && !c->sm->rotation_dir) || (opt->state_dir && !c->sm->state_dir))
        return -ENOMEM;
    return 0;
}

/* When the next rotation after t falls here: the schedule's wait divided by
 * the time scale (al_options.rotation_time_scale), so that NextRotationDate
 * says when the rotation really happens (0: no schedule). */
static double next_rotation(al_ctx *c, int64_t days, const char *schedule, double t)
{
    double at = schedule_next(days, schedule, t);
    unsigned scale = c->sm->time_scale;
    return at > 0 && scale > 1 ? t + (at - t) / scale : at;
}

void al_sm_state_free(al_ctx *c)
{
    if (!c->sm)
        return;
    char why[128];
    for (size_t i = 0; i < AL_SM_HOOKS_MAX; i++)
        if (c->sm->runs[i].used)
            (void)al_sm_hook_poll(c->sm->runs[i].pid, 1, why, sizeof why);
    es_free(c->sm->rotation_dir);
    es_free(c->sm->state_dir);
    es_free(c->sm->endpoint);
    es_free(c->sm);
    c->sm = NULL;
}

int al_set_endpoint_url(al_ctx *c, const char *url)
{
    char *copy = url ? es_strdup(url) : NULL;
    if (url && !copy)
        return -ENOMEM;
    es_free(c->sm->endpoint);
    c->sm->endpoint = copy;
    return 0;
}

/* A rotation that did not go as asked, told to the daemon (which logs it). */
static void rotation_event(al_ctx *c, const char *arn, const char *step, const char *message)
{
    if (c->sm->event)
        c->sm->event(c->sm->event_arg, arn, step, message);
}

static hook_run *run_of(al_ctx *c, const char *arn)
{
    for (size_t i = 0; i < AL_SM_HOOKS_MAX; i++)
        if (c->sm->runs[i].used && strcmp(c->sm->runs[i].arn, arn) == 0)
            return &c->sm->runs[i];
    return NULL;
}

/* The executable a RotationLambdaARN of this region and account names, in
 * the hooks directory. -ENOENT (AWS's refusal for a function it cannot
 * invoke) when the ARN or the file is not one. */
static int hook_exe(al_ctx *c, const char *lambda, char *exe, size_t n)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "arn:%s:lambda:%s:%s:function:", al_partition(c), al_region(c),
             c->account);
    if (!c->sm->rotation_dir || strncmp(lambda, prefix, strlen(prefix)) != 0)
        return -ENOENT;
    const char *name = lambda + strlen(prefix);
    size_t len = strlen(name);
    if (len < 1 || len > AL_SM_HOOK_NAME_MAX)
        return -ENOENT;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return -ENOENT;
    if ((size_t)snprintf(exe, n, "%s/%s", c->sm->rotation_dir, name) >= n)
        return -ENOENT;
    return access(exe, X_OK) == 0 ? 0 : -ENOENT;
}

static int start_step(al_ctx *c, hook_run *run, char *why, size_t whylen)
{
    al_sm_hook_env env = {
        .endpoint_url = c->sm->endpoint, .state_dir = c->sm->state_dir, .region = run->region};
    run->started = al_now(c);
    return al_sm_hook_spawn(run->exe, &env, run->arn, run->token, STEPS[run->step], &run->pid, why,
                            whylen);
}

/* ---- rotation: the built-in rotator ---- */

/* The rotated value of cur (NULL: no current value): cur with a new
 * "password" when it is a JSON object holding a string one, else a new
 * password. Appended to out (a secret: the caller wipes it). */
static int rotated_value(const plain *cur, es_buf *out, al_error *e)
{
    al_sm_pw_opts o;
    al_sm_pw_defaults(&o);
    char *pw;
    int r = al_sm_random_password(&o, &pw, e);
    if (r < 0)
        return r;
    es_json *j = NULL;
    char why[64];
    if (cur && !cur->binary &&
        es_json_parse((const char *)cur->pt, cur->len, &es_json_default_limits, &j, why,
                      sizeof why) == 0 &&
        j->type == ES_JSON_OBJECT && es_json_get_str(j, "password")) {
        es_jw w;
        es_jw_init(&w, out);
        es_jw_obj(&w);
        for (size_t i = 0; i < j->u.object.n; i++) {
            es_jw_key(&w, j->u.object.keys[i]);
            if (strcmp(j->u.object.keys[i], "password") == 0)
                es_jw_str(&w, pw);
            else
                es_jw_value(&w, j->u.object.values[i]);
        }
        es_jw_obj_end(&w);
        r = es_jw_finish(&w);
    } else {
        r = es_buf_append_str(out, pw);
    }
    es_json_free_secret(j);
    es_free_secret_str(pw);
    return r < 0 ? al_fail_internal(e, "InternalServiceError") : 0;
}

/* Records a completed rotation: LastRotatedDate now, the next one from now
 * when scheduled, no failure. */
static int mark_rotated(al_ctx *c, const secret *s)
{
    double now = al_now(c);
    double next = s->rot_enabled ? next_rotation(c, s->rot_days, s->rot_schedule, now) : 0;
    sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET last_rotated=?1, "
                                            "next_rotation=?2, rotation_failure=NULL, changed=?1 "
                                            "WHERE arn=?3");
    if (!st)
        return -EIO;
    sqlite3_bind_double(st, 1, now);
    if (next > 0)
        sqlite3_bind_double(st, 2, next);
    sqlite3_bind_text(st, 3, s->arn, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Inside a transaction: the new value under token, AWSPENDING, then
 * AWSCURRENT (the old version keeps AWSPREVIOUS), AWSPENDING removed. */
static int rotate_builtin(al_ctx *c, const secret *s, const char *token, al_error *e)
{
    char cur_vid[AL_SM_TOKEN_MAX + 1];
    plain cur;
    memset(&cur, 0, sizeof cur);
    int r = stage_holder(c, s->arn, "AWSCURRENT", cur_vid, sizeof cur_vid);
    if (r == 0)
        r = load_version(c, s, cur_vid, &cur);
    if (r < 0 && r != -ENOENT)
        return value_error(e, r);
    es_buf nv;
    es_buf_init(&nv, AL_SM_VALUE_MAX + 1);
    r = rotated_value(r == 0 ? &cur : NULL, &nv, e);
    plain_clear(&cur);
    if (r < 0) {
        es_buf_free_secret(&nv);
        return r;
    }
    value v = {.str = es_buf_cstr(&nv), .present = true};
    r = version_exists(c, s->arn, token) ? -EEXIST : insert_version(c, s, token, &v);
    es_buf_free_secret(&nv);
    if (r == -EEXIST)
        return al_fail(e, 400, "ResourceExistsException",
                       "You can't modify an existing version, you can only create a new version.");
    if (r == 0)
        r = set_stage(c, s->arn, "AWSPENDING", token);
    if (r == 0)
        r = move_stage(c, s->arn, "AWSCURRENT", token);
    if (r == 0)
        r = remove_stage(c, s->arn, "AWSPENDING");
    if (r == 0)
        r = prune_versions(c, s->arn);
    if (r == 0)
        r = mark_rotated(c, s);
    if (r == 0)
        r = sync_replicas(c, s->arn);
    return r < 0 ? value_error(e, r) : 0;
}

/* ---- rotation: hooks ---- */

static int set_failure(al_ctx *c, const char *arn, const char *why)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET rotation_failure=? WHERE arn=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, why, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, arn, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

static void run_failed(al_ctx *c, hook_run *run, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg, "rotation step %s of %.200s failed: %.200s", STEPS[run->step],
             run->exe, why);
    char told[600];
    snprintf(told, sizeof told, "%s (AWSCURRENT unchanged, AWSPENDING kept)", msg);
    rotation_event(c, run->arn, STEPS[run->step], told);
    (void)set_failure(c, run->arn, msg);
    run->used = false;
}

/* finishSecret succeeded: AWSPENDING leaves the version the hook made
 * AWSCURRENT, and the rotation is recorded. */
static void run_finished(al_ctx *c, hook_run *run)
{
    secret s;
    char cur[AL_SM_TOKEN_MAX + 1] = "";
    run->used = false;
    if (al_region_enter(c, run->region) < 0)
        return;
    if (find_secret(c, run->arn, &s) == 0) {
        if (al_db_begin(c->db) == 0) {
            int r = stage_holder(c, s.arn, "AWSCURRENT", cur, sizeof cur);
            if (r == 0 && strcmp(cur, run->token) == 0)
                r = remove_stage(c, s.arn, "AWSPENDING");
            if (r == 0)
                r = mark_rotated(c, &s);
            if (r == 0)
                r = sync_replicas(c, s.arn);
            if (r < 0 || al_db_commit(c->db) < 0)
                al_db_rollback(c->db);
        }
        secret_clear(&s);
    }
    al_region_leave(c);
}

/* Advances one run: its step still running, or the next started, or the
 * rotation finished or failed. 1 when something changed. */
static int run_advance(al_ctx *c, hook_run *run)
{
    char why[256] = "";
    int timed_out = al_now(c) - run->started > AL_SM_HOOK_STEP_TIMEOUT;
    int r = al_sm_hook_poll(run->pid, timed_out, why, sizeof why);
    if (r == 1)
        return 0;
    if (r < 0) {
        run_failed(c, run, why);
        return 1;
    }
    if (++run->step == (int)(sizeof STEPS / sizeof STEPS[0])) {
        run_finished(c, run);
        return 1;
    }
    if (start_step(c, run, why, sizeof why) < 0)
        run_failed(c, run, why);
    return 1;
}

/* Polls every run (not from inside a poll: a completion touches secrets). */
static int hooks_poll(al_ctx *c)
{
    if (c->sm->polling)
        return 0;
    c->sm->polling = true;
    char saved[AW_REGION_MAX + 1];
    snprintf(saved, sizeof saved, "%s", c->rq_region);
    int n = 0;
    for (size_t i = 0; i < AL_SM_HOOKS_MAX; i++)
        if (c->sm->runs[i].used)
            n += run_advance(c, &c->sm->runs[i]);
    if (saved[0])
        (void)al_region_enter(c, saved);
    c->sm->polling = false;
    return n;
}

/* Starts a rotation by the hook exe under token (its createSecret step). */
static int hook_start(al_ctx *c, const secret *s, const char *exe, const char *token, al_error *e)
{
    hook_run *run = NULL;
    for (size_t i = 0; i < AL_SM_HOOKS_MAX && !run; i++)
        if (!c->sm->runs[i].used)
            run = &c->sm->runs[i];
    if (!run)
        return al_fail(e, 400, "LimitExceededException",
                       "Too many rotations are in progress (at most %d); try again later.",
                       AL_SM_HOOKS_MAX);
    memset(run, 0, sizeof *run);
    snprintf(run->arn, sizeof run->arn, "%s", s->arn);
    snprintf(run->region, sizeof run->region, "%s", al_region(c));
    snprintf(run->token, sizeof run->token, "%s", token);
    snprintf(run->exe, sizeof run->exe, "%s", exe);
    char why[256];
    if (start_step(c, run, why, sizeof why) < 0) {
        rotation_event(c, s->arn, STEPS[0], why);
        return al_fail(e, 400, "AccessDeniedException", NO_LAMBDA_MSG);
    }
    run->used = true;
    return 0;
}

/* ---- RotateSecret / CancelRotateSecret ---- */

typedef struct rotate_req {
    const char *token, *lambda;
    rules ru;
    bool immediately;
} rotate_req;

static int parse_rotate(al_ctx *c, const es_json *req, rotate_req *q, al_error *e)
{
    int r;
    if (!al_opt_str(req, "ClientRequestToken", &q->token, e) ||
        !al_opt_str(req, "RotationLambdaARN", &q->lambda, e) ||
        !al_opt_bool(req, "RotateImmediately", true, &q->immediately, e))
        return -EINVAL;
    if (q->token && (r = check_token(q->token, e)) < 0)
        return r;
    if (q->lambda && strlen(q->lambda) > AL_SM_LAMBDA_ARN_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "RotationLambdaARN must be at most %d characters.", AL_SM_LAMBDA_ARN_MAX);
    if (q->lambda && !*q->lambda)
        q->lambda = NULL;
    return parse_rules(req, al_now(c), &q->ru, e);
}

/* Stores the rotation settings the request gives (rules, hook) into s and
 * the database. */
static int save_rotation(al_ctx *c, secret *s, const rotate_req *q)
{
    if (q->ru.present) {
        s->rot_enabled = true;
        s->rot_days = q->ru.days;
        es_free(s->rot_schedule);
        es_free(s->rot_window);
        s->rot_schedule = q->ru.schedule ? es_strdup(q->ru.schedule) : NULL;
        s->rot_window = q->ru.window ? es_strdup(q->ru.window) : NULL;
    }
    double next = s->rot_enabled ? next_rotation(c, s->rot_days, s->rot_schedule, al_now(c)) : 0;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "UPDATE sm_secret SET rotation_enabled=?1, rotation_lambda=?2, rotation_days=?3, "
               "rotation_schedule=?4, rotation_window=?5, next_rotation=?6 WHERE arn=?7");
    if (!st)
        return -EIO;
    sqlite3_bind_int(st, 1, s->rot_enabled ? 1 : 0);
    sqlite3_bind_text(st, 2, q->lambda ? q->lambda : s->rot_lambda, -1, SQLITE_STATIC);
    if (s->rot_days)
        sqlite3_bind_int64(st, 3, s->rot_days);
    sqlite3_bind_text(st, 4, s->rot_schedule, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, s->rot_window, -1, SQLITE_STATIC);
    if (next > 0)
        sqlite3_bind_double(st, 6, next);
    sqlite3_bind_text(st, 7, s->arn, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* The version id of a rotation: the caller's token, else the AWSPENDING
 * version a failed rotation left (reattempted, as AWS does), else new. */
static int rotation_token(al_ctx *c, const secret *s, const char *given, bool hook, char *out)
{
    char cur[AL_SM_TOKEN_MAX + 1] = "", pend[AL_SM_TOKEN_MAX + 1] = "";
    if (given) {
        snprintf(out, AL_SM_TOKEN_MAX + 1, "%s", given);
        return 0;
    }
    (void)stage_holder(c, s->arn, "AWSCURRENT", cur, sizeof cur);
    if (hook && stage_holder(c, s->arn, "AWSPENDING", pend, sizeof pend) == 0 &&
        strcmp(pend, cur) != 0) {
        snprintf(out, AL_SM_TOKEN_MAX + 1, "%s", pend);
        return 0;
    }
    return al_uuid(out) < 0 ? -EIO : 0;
}

/* Rotates s now with its stored settings (its hook, or the built-in
 * rotator). Commits. */
static int rotate_now(al_ctx *c, secret *s, const char *given_token, char *token, al_error *e)
{
    char exe[PATH_MAX];
    bool hook = s->rot_lambda != NULL;
    if (hook && hook_exe(c, s->rot_lambda, exe, sizeof exe) < 0)
        return al_fail(e, 400, "AccessDeniedException", NO_LAMBDA_MSG);
    if (rotation_token(c, s, given_token, hook, token) < 0)
        return al_fail_internal(e, "InternalServiceError");
    if (hook)
        return hook_start(c, s, exe, token, e);
    if (al_db_begin(c->db) < 0)
        return al_fail_internal(e, "InternalServiceError");
    int r = rotate_builtin(c, s, token, e);
    if (r == 0 && al_db_commit(c->db) < 0)
        r = al_fail_internal(e, "InternalServiceError");
    if (r < 0)
        al_db_rollback(c->db);
    return r;
}

static int op_rotate_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                            al_error *e)
{
    rotate_req q;
    secret s;
    char exe[PATH_MAX], token[AL_SM_TOKEN_MAX + 1];
    int r = parse_rotate(c, req, &q, e);
    if (r < 0)
        return r;
    if ((r = load_primary(c, principal, req, "secretsmanager:RotateSecret", true, &s, e)) < 0)
        return r;
    if (run_of(c, s.arn)) {
        r = al_fail(e, 400, "InvalidRequestException", PREVIOUS_ROTATION_MSG);
        goto out;
    }
    if (q.lambda && hook_exe(c, q.lambda, exe, sizeof exe) < 0) {
        r = al_fail(e, 400, "AccessDeniedException", NO_LAMBDA_MSG);
        goto out;
    }
    if (save_rotation(c, &s, &q) < 0 || sync_replicas(c, s.arn) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if (q.lambda && !s.rot_lambda && !(s.rot_lambda = es_strdup(q.lambda))) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if (q.lambda && strcmp(s.rot_lambda, q.lambda) != 0) {
        es_free(s.rot_lambda);
        if (!(s.rot_lambda = es_strdup(q.lambda))) {
            r = al_fail_internal(e, "InternalServiceError");
            goto out;
        }
    }
    if (q.immediately && (r = rotate_now(c, &s, q.token, token, e)) < 0)
        goto out;
    al_sm_write_secret_ref(w, s.arn, s.name, q.immediately ? token : NULL);
    r = 0;
out:
    secret_clear(&s);
    return r;
}

static int op_cancel_rotate_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                   al_error *e)
{
    secret s;
    int r = load_primary(c, principal, req, "secretsmanager:CancelRotateSecret", true, &s, e);
    if (r < 0)
        return r;
    hook_run *run = run_of(c, s.arn);
    if (run) {
        char why[64];
        (void)al_sm_hook_poll(run->pid, 1, why, sizeof why);
        run->used = false;
    }
    sqlite3_stmt *st = al_db_prepare(
        c->db, "UPDATE sm_secret SET rotation_enabled=0, next_rotation=NULL WHERE arn=?");
    if (!st ||
        (sqlite3_bind_text(st, 1, s.arn, -1, SQLITE_STATIC), sqlite3_step(st)) != SQLITE_DONE) {
        al_db_release(c->db, st);
        secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    al_db_release(c->db, st);
    if (sync_replicas(c, s.arn) < 0) {
        secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    char pend[AL_SM_TOKEN_MAX + 1];
    bool pending = stage_holder(c, s.arn, "AWSPENDING", pend, sizeof pend) == 0;
    al_sm_write_secret_ref(w, s.arn, s.name, pending ? pend : NULL);
    secret_clear(&s);
    return 0;
}

/* A scheduled rotation of s due now, carried out (errors are logged: the
 * caller's operation goes on). 1 when one was started or done. */
static int rotate_if_due(al_ctx *c, secret *s, double now)
{
    if (!s->rot_enabled || s->next_rotation <= 0 || s->next_rotation > now || s->deletion > 0 ||
        s->primary_region || run_of(c, s->arn))
        return 0;
    char token[AL_SM_TOKEN_MAX + 1];
    al_error e;
    if (rotate_now(c, s, NULL, token, &e) < 0) {
        char told[AL_MESSAGE_MAX + 32];
        snprintf(told, sizeof told, "scheduled rotation: %s", e.message);
        rotation_event(c, s->arn, "schedule", told);
        (void)set_failure(c, s->arn, e.message);
        /* not again at every touch: the next try is the next period's */
        double next = next_rotation(c, s->rot_days, s->rot_schedule, now);
        sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET next_rotation=? WHERE arn=?");
        if (st) {
            sqlite3_bind_double(st, 1, next);
            sqlite3_bind_text(st, 2, s->arn, -1, SQLITE_STATIC);
            (void)sqlite3_step(st);
            al_db_release(c->db, st);
        }
        return 0;
    }
    return 1;
}

#define DUE_BATCH 32 /* rotations per call (the timer comes back for more) */

int al_sm_rotate_due(al_ctx *c, double now)
{
    int n = hooks_poll(c);
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT arn, region FROM sm_secret WHERE "
                                            "rotation_enabled=1 AND next_rotation <= ? AND "
                                            "deletion IS NULL AND primary_region IS NULL "
                                            "ORDER BY next_rotation LIMIT ?2");
    if (!st)
        return -EIO;
    sqlite3_bind_double(st, 1, now);
    sqlite3_bind_int(st, 2, DUE_BATCH);
    char arns[DUE_BATCH][ARN_MAX], regions[DUE_BATCH][AW_REGION_MAX + 1];
    size_t k = 0;
    while (k < DUE_BATCH && sqlite3_step(st) == SQLITE_ROW) {
        snprintf(arns[k], ARN_MAX, "%s", sqlite3_column_text(st, 0));
        snprintf(regions[k++], AW_REGION_MAX + 1, "%s", sqlite3_column_text(st, 1));
    }
    al_db_release(c->db, st);
    for (size_t i = 0; i < k; i++) {
        secret s;
        if (al_region_enter(c, regions[i]) < 0)
            continue;
        if (find_secret(c, arns[i], &s) == 0) {
            n += rotate_if_due(c, &s, now);
            secret_clear(&s);
        }
        al_region_leave(c);
    }
    return n;
}

/* ---- TagResource / UntagResource ---- */

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
    if ((r = load_primary(c, principal, req, "secretsmanager:TagResource", true, &s, e)) < 0)
        return r;
    if (al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    for (size_t i = 0; r == 0 && i < tags->u.array.n; i++)
        r = put_tag(c, s.arn, tags->u.array.items[i]);
    int64_t n = r < 0 ? r : count_rows(c, "SELECT count(*) FROM sm_tag WHERE arn=?", s.arn);
    if (n < 0 || (r = touch_changed(c, s.arn)) < 0 || (r = sync_replicas(c, s.arn)) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if (n > AL_SM_TAGS_MAX) {
        r = al_fail(e, 400, "InvalidParameterException",
                    "A secret can have at most %d tags; this request would leave %lld.",
                    AL_SM_TAGS_MAX, (long long)n);
        goto out;
    }
    if (al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    es_jw_obj(w);
    es_jw_obj_end(w);
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&s);
    return r;
}

/* TagKeys: a list of keys of 1 to 128 characters, none reserved. */
static int parse_tag_keys(const es_json *req, const es_json **out, al_error *e)
{
    const es_json *keys = es_json_get(req, "TagKeys");
    if (!keys || keys->type != ES_JSON_ARRAY)
        return al_fail(e, 400, "InvalidParameterException",
                       "You must provide TagKeys (a list of tag keys).");
    for (size_t i = 0; i < keys->u.array.n; i++) {
        const char *k = es_json_as_str(keys->u.array.items[i]);
        if (!k || !*k || strlen(k) > AL_TAG_KEY_MAX)
            return al_fail(e, 400, "InvalidParameterException",
                           "Each tag key must be 1 to %d characters.", AL_TAG_KEY_MAX);
        if (aws_reserved(k))
            return al_fail(e, 400, "InvalidParameterException",
                           "Tag keys can't start with aws: (reserved for AWS use).");
    }
    *out = keys;
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
    if ((r = load_primary(c, principal, req, "secretsmanager:UntagResource", true, &s, e)) < 0)
        return r;
    if (al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    for (size_t i = 0; r == 0 && i < keys->u.array.n; i++) {
        sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM sm_tag WHERE arn=? AND key=?");
        if (!st) {
            r = -EIO;
            break;
        }
        sqlite3_bind_text(st, 1, s.arn, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, es_json_as_str(keys->u.array.items[i]), -1, SQLITE_STATIC);
        r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
        al_db_release(c->db, st);
    }
    if (r < 0 || touch_changed(c, s.arn) < 0 || sync_replicas(c, s.arn) < 0 ||
        al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    es_jw_obj(w);
    es_jw_obj_end(w);
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&s);
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
    int r = find_secret(c, id, &s);
    if (r < 0) {
        not_found(e, r);
    } else {
        if ((r = al_authorize(c, principal, "secretsmanager:GetSecretValue", s.arn, e)) == 0) {
            if (s.deletion > 0)
                r = al_fail(e, 400, "InvalidRequestException", SCHEDULED_MSG);
            else if ((r = pick_version(c, principal, &s, NULL, NULL, &p, e)) == 0) {
                write_secret_value(c, &s, &p, w);
                plain_clear(&p);
            }
        }
        secret_clear(&s);
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
        if (find_secret(c, name, &s) < 0)
            continue;
        bool match = list_filter_match(filters, &s);
        secret_clear(&s);
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

/* ---- replication ----
 *
 * A replica is an sm_secret row of its own region with primary_region set,
 * the primary's name and the primary's ARN with the region changed. Its
 * versions are the primary's values sealed again under the replica
 * region's key and bound to the replica's ARN (so, like a primary's, a
 * version cannot be moved to another secret). sync_replicas brings every
 * replica in step inside the transaction of each change to the primary:
 * replication is synchronous here, InSync at once. sm_replica (migration 8)
 * lists the regions a primary replicates to and their outcome. */

#define REGION_TEXT_MAX 128 /* RegionType's maximum */
#define INVALID_REGION_MSG "Invalid replica region."

/* Serves the next calls in region, the current one saved (al_region's
 * regional lookups, KMS keys included, follow). */
static void region_swap(al_ctx *c, const char *region, char saved[AW_REGION_MAX + 1])
{
    snprintf(saved, AW_REGION_MAX + 1, "%s", c->rq_region);
    (void)al_region_enter(c, region);
}

static void region_back(al_ctx *c, const char *saved)
{
    if (saved[0])
        (void)al_region_enter(c, saved);
    else
        al_region_leave(c);
}

/* arn with its region changed to region: a replica's ARN from its
 * primary's, or the primary's from a replica's (the suffix is kept, as AWS
 * keeps it). */
static void arn_in_region(const char *arn, const char *region, char *out, size_t n)
{
    const char *svc = strstr(arn, ":secretsmanager:");
    const char *tail = svc ? strchr(svc + 16, ':') : NULL;
    if (!tail) {
        snprintf(out, n, "%s", arn);
        return;
    }
    snprintf(out, n, "%.*s%s%s", (int)(svc + 16 - arn), arn, region, tail);
}

/* Runs sql with ?1 = a and ?2 = b. */
static int exec2(al_ctx *c, const char *sql, const char *a, const char *b)
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

/* The first text column of sql's first row (?1 = a, ?2 = b) into out.
 * -ENOENT when no row. */
static int query_text(al_ctx *c, const char *sql, const char *a, const char *b, char *out, size_t n)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = -ENOENT;
    if (rc == SQLITE_ROW) {
        snprintf(out, n, "%s",
                 sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
        r = 0;
    } else if (rc != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

/* Copies primary version vid to the replica rarn of region, sealed under
 * that region's key_id: opened in the primary's region (the current one),
 * sealed in the replica's. */
static int copy_version(al_ctx *c, const char *parn, const char *rarn, const char *region,
                        const char *key_id, const char *vid)
{
    secret p;
    plain pl;
    memset(&p, 0, sizeof p);
    snprintf(p.arn, sizeof p.arn, "%s", parn);
    int r = load_version(c, &p, vid, &pl);
    if (r < 0)
        return r;
    char saved[AW_REGION_MAX + 1];
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    al_kv kv[2] = {{"SecretARN", rarn}, {"SecretVersionId", vid}};
    region_swap(c, region, saved);
    r = al_kms_seal(c, key_id, kv, 2, pl.pt, pl.len, &blob, &bloblen);
    region_back(c, saved);
    if (r == 0)
        r = insert_blob(c, rarn, vid, pl.binary, blob, bloblen, pl.created);
    es_free(blob);
    plain_clear(&pl);
    return r;
}

/* What a replica takes from its primary besides versions: ?1 the primary's
 * ARN, ?2 the replica's. The replica keeps its own key, dates of creation
 * and access. */
static const char *const SYNC_SQL[] = {
    "UPDATE sm_secret SET (description, changed, rotation_enabled, rotation_lambda, "
    "rotation_days, rotation_schedule, rotation_window, last_rotated, next_rotation) = (SELECT "
    "description, changed, rotation_enabled, rotation_lambda, rotation_days, rotation_schedule, "
    "rotation_window, last_rotated, next_rotation FROM sm_secret WHERE arn=?1) WHERE arn=?2",
    "DELETE FROM sm_tag WHERE arn=?2",
    "INSERT INTO sm_tag(arn, key, value) SELECT ?2, key, value FROM sm_tag WHERE arn=?1",
    "DELETE FROM sm_stage WHERE arn=?2",
    "DELETE FROM sm_version WHERE arn=?2 AND version_id NOT IN (SELECT version_id FROM "
    "sm_version WHERE arn=?1)",
};

/* Brings the replica of primary parn in region in step: settings, tags,
 * versions (values sealed again, only those it lacks: versions never
 * change), then the staging labels. */
static int sync_replica(al_ctx *c, const char *parn, const char *region)
{
    char rarn[ARN_MAX], key_id[AL_KEY_ID_LEN + 1], vid[AL_SM_TOKEN_MAX + 1];
    arn_in_region(parn, region, rarn, sizeof rarn);
    int r = query_text(c, "SELECT key_id FROM sm_secret WHERE arn=?1", rarn, NULL, key_id,
                       sizeof key_id);
    for (size_t i = 0; r == 0 && i < sizeof SYNC_SQL / sizeof SYNC_SQL[0]; i++)
        r = exec2(c, SYNC_SQL[i], parn, rarn);
    while (r == 0) {
        r = query_text(c,
                       "SELECT version_id FROM sm_version WHERE arn=?1 AND version_id NOT IN "
                       "(SELECT version_id FROM sm_version WHERE arn=?2) LIMIT 1",
                       parn, rarn, vid, sizeof vid);
        if (r == 0)
            r = copy_version(c, parn, rarn, region, key_id, vid);
    }
    if (r != -ENOENT)
        return r;
    return exec2(c,
                 "INSERT INTO sm_stage(arn, stage, version_id) SELECT ?2, stage, version_id "
                 "FROM sm_stage WHERE arn=?1",
                 parn, rarn);
}

/* The regions arn replicates to, InSync ones only when in_sync; their
 * number or -EIO. */
static int replica_regions(al_ctx *c, const char *arn, bool in_sync, char (*out)[AW_REGION_MAX + 1])
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT region FROM sm_replica WHERE arn=?1 AND "
                                            "(NOT ?2 OR status='InSync') ORDER BY region LIMIT ?3");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, in_sync ? 1 : 0);
    sqlite3_bind_int(st, 3, AL_SM_REPLICAS_MAX);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out[n++], AW_REGION_MAX + 1, "%s", sqlite3_column_text(st, 0));
    al_db_release(c->db, st);
    return n;
}

/* Inside the transaction of a change to the primary arn: every InSync
 * replica in step. */
static int sync_replicas(al_ctx *c, const char *arn)
{
    char regions[AL_SM_REPLICAS_MAX][AW_REGION_MAX + 1];
    int n = replica_regions(c, arn, true, regions), r = n < 0 ? n : 0;
    for (int i = 0; r == 0 && i < n; i++)
        r = sync_replica(c, arn, regions[i]);
    return r;
}

/* DeleteSecret of a primary that still has replicas is refused, as moto
 * words it (id as the caller named the secret, the regions joined by
 * commas): they go first, by RemoveRegionsFromReplication. */
static int refuse_replicated(al_ctx *c, const secret *s, const char *id, al_error *e)
{
    char regions[AL_SM_REPLICAS_MAX][AW_REGION_MAX + 1], list[1024] = "";
    int n = replica_regions(c, s->arn, false, regions);
    if (n < 0)
        return al_fail_internal(e, "InternalServiceError");
    if (n == 0)
        return 0;
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? "," : "", regions[i]);
    return al_fail(e, 400, "InvalidParameterException",
                   "You can't delete secret %.200s that still has replica regions [%s]", id, list);
}

/* ReplicationStatus: the regions of the primary arn, their key, status and
 * message, and when the replica was last read. */
static void write_replication_status(al_ctx *c, const char *arn, es_jw *w)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT r.region, r.kms_key_ref, r.status, r.status_message, s.accessed FROM "
               "sm_replica r LEFT JOIN sm_secret s ON s.region=r.region AND s.primary_region IS "
               "NOT NULL AND s.name=(SELECT name FROM sm_secret WHERE arn=r.arn) WHERE r.arn=? "
               "ORDER BY r.region");
    es_jw_key(w, "ReplicationStatus");
    es_jw_arr(w);
    if (!st) {
        w->err = -EIO;
        es_jw_arr_end(w);
        return;
    }
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *kms = (const char *)sqlite3_column_text(st, 1);
        es_jw_obj(w);
        es_jw_kstr(w, "Region", (const char *)sqlite3_column_text(st, 0));
        es_jw_kstr(w, "KmsKeyId", kms ? kms : "alias/aws/secretsmanager");
        es_jw_kstr(w, "Status", (const char *)sqlite3_column_text(st, 2));
        if (sqlite3_column_type(st, 3) != SQLITE_NULL)
            es_jw_kstr(w, "StatusMessage", (const char *)sqlite3_column_text(st, 3));
        if (sqlite3_column_double(st, 4) > 0) {
            es_jw_key(w, "LastAccessedDate");
            es_jw_double(w, sqlite3_column_double(st, 4));
        }
        es_jw_obj_end(w);
    }
    al_db_release(c->db, st);
    es_jw_arr_end(w);
}

/* PrimaryRegion for a replica (its primary's) and for a replicated primary
 * (its own, with ReplicationStatus in DescribeSecret); nothing for a secret
 * that takes no part in replication. */
static void write_primary_region(al_ctx *c, const secret *s, bool list, es_jw *w)
{
    if (s->primary_region) {
        es_jw_kstr(w, "PrimaryRegion", s->primary_region);
        return;
    }
    if (count_rows(c, "SELECT count(*) FROM sm_replica WHERE arn=?", s->arn) <= 0)
        return;
    es_jw_kstr(w, "PrimaryRegion", al_region(c));
    if (!list)
        write_replication_status(c, s->arn, w);
}

/* RegionType: 1 to 128 characters, ^([a-z]+-)+\d+$. */
static bool region_text_ok(const char *r)
{
    size_t n = r ? strlen(r) : 0, i = 0, groups = 0;
    if (n < 1 || n > REGION_TEXT_MAX)
        return false;
    while (i < n && r[i] >= 'a' && r[i] <= 'z') {
        size_t j = i;
        while (j < n && r[j] >= 'a' && r[j] <= 'z')
            j++;
        if (j >= n || r[j] != '-')
            return false;
        groups++;
        i = j + 1;
    }
    if (!groups || i >= n)
        return false;
    for (; i < n; i++)
        if (!isdigit((unsigned char)r[i]))
            return false;
    return true;
}

/* A region a secret of this region may replicate to: one AWS has, of the
 * same partition, not this one. */
static bool replica_region_ok(al_ctx *c, const char *r)
{
    const char *p = region_text_ok(r) ? aw_region_partition(r) : NULL;
    return p && strcmp(p, al_partition(c)) == 0 && strcmp(r, al_region(c)) != 0;
}

static int parse_add_regions(al_ctx *c, const es_json *req, add_region *out, size_t *n, al_error *e)
{
    const es_json *l = es_json_get(req, "AddReplicaRegions");
    *n = 0;
    if (!l || l->type == ES_JSON_NULL)
        return 0;
    if (l->type != ES_JSON_ARRAY || l->u.array.n < 1 || l->u.array.n > AL_SM_REPLICAS_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "AddReplicaRegions must be a list of 1 to %d Regions.", AL_SM_REPLICAS_MAX);
    for (size_t i = 0; i < l->u.array.n; i++) {
        const es_json *it = l->u.array.items[i];
        add_region *a = &out[i];
        if (it->type != ES_JSON_OBJECT)
            return al_fail(e, 400, "InvalidParameterException", INVALID_REGION_MSG);
        if (!al_opt_str(it, "Region", &a->region, e) || !al_opt_str(it, "KmsKeyId", &a->kms, e))
            return -EINVAL;
        if (!a->region || !replica_region_ok(c, a->region))
            return al_fail(e, 400, "InvalidParameterException", INVALID_REGION_MSG);
        if (a->kms && strlen(a->kms) > AL_KMS_REF_MAX)
            return al_fail(e, 400, "InvalidParameterException",
                           "KmsKeyId must be at most %d characters.", AL_KMS_REF_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(out[j].region, a->region) == 0)
                return al_fail(e, 400, "InvalidParameterException", INVALID_REGION_MSG);
    }
    *n = l->u.array.n;
    return 0;
}

/* In the replica's region: is the name free? A secret holding it fails the
 * region (msg) unless force and it is a plain secret, which is removed
 * (one that is a replica or a replicated primary is never overwritten). */
static int make_room(al_ctx *c, const char *name, bool force, char *msg, size_t n)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT arn, primary_region IS NOT NULL OR EXISTS (SELECT 1 FROM sm_replica r "
               "WHERE r.arn=s.arn) FROM sm_secret s WHERE region=? AND name=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, al_region(c), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    char arn[ARN_MAX] = "";
    bool linked = false;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(arn, sizeof arn, "%s", sqlite3_column_text(st, 0));
        linked = sqlite3_column_int(st, 1) != 0;
    }
    al_db_release(c->db, st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : -EIO;
    if (!force || linked) {
        snprintf(msg, n, "Replication failed: Secret name %s already exists in region %s.", name,
                 al_region(c));
        return 0;
    }
    return exec2(c, "DELETE FROM sm_secret WHERE arn=?1", arn, NULL);
}

/* In the replica's region: the key of a->kms (default
 * alias/aws/secretsmanager of that region), usable; a key that is not
 * fails the region (msg). */
static int replica_key(al_ctx *c, const char *principal, const add_region *a, char *key_id,
                       char *msg, size_t n, al_error *e)
{
    const char *ref = a->kms ? a->kms : "alias/aws/secretsmanager";
    int r = al_kms_resolve(c, ref, key_id);
    if (r == -ENOENT || r == -EINVAL) {
        snprintf(msg, n, "Replication failed: KMS key %.256s is not found in region %s.", ref,
                 al_region(c));
        return 0;
    }
    if (r == 0 && (r = al_kms_usable(c, key_id)) < 0 && r != -EIO) {
        char why[512];
        al_kms_reason(c, r, key_id, why, sizeof why);
        snprintf(msg, n, "Replication failed: %s", why);
        return 0;
    }
    if (r < 0)
        return r;
    if (al_kms_is_aws_managed(c, key_id))
        return 0;
    char key_arn[256];
    al_kms_key_arn(c, key_id, key_arn, sizeof key_arn);
    if ((r = al_authorize(c, principal, "kms:GenerateDataKey", key_arn, e)) == 0)
        r = al_authorize(c, principal, "kms:Encrypt", key_arn, e);
    return r;
}

/* In the replica's region: its row, a copy of the primary's settings. */
static int insert_replica(al_ctx *c, const secret *p, const char *rarn, const char *kms,
                          const char *key_id)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "INSERT INTO sm_secret(arn, region, name, description, kms_key_ref, key_id, "
               "created, changed, primary_region) SELECT ?1, ?2, name, description, ?3, ?4, ?5, "
               "changed, region FROM sm_secret WHERE arn=?6");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, rarn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, al_region(c), -1, SQLITE_STATIC);
    if (kms)
        sqlite3_bind_text(st, 3, kms, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, al_now(c));
    sqlite3_bind_text(st, 6, p->arn, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

static int record_replica(al_ctx *c, const char *arn, const add_region *a, const char *failure)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "INSERT OR REPLACE INTO sm_replica(arn, region, "
                                            "kms_key_ref, status, status_message) "
                                            "VALUES (?,?,?,?,?)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->region, -1, SQLITE_STATIC);
    if (a->kms)
        sqlite3_bind_text(st, 3, a->kms, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, failure ? "Failed" : "InSync", -1, SQLITE_STATIC);
    if (failure)
        sqlite3_bind_text(st, 5, failure, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Inside the transaction: the replica of p in a->region, or the reason it
 * failed recorded. < 0 (e filled) fails the whole request. */
static int replicate_to(al_ctx *c, const char *principal, const secret *p, const add_region *a,
                        bool force, al_error *e)
{
    char rarn[ARN_MAX], key_id[AL_KEY_ID_LEN + 1], msg[768] = "", saved[AW_REGION_MAX + 1];
    arn_in_region(p->arn, a->region, rarn, sizeof rarn);
    e->code[0] = '\0';
    region_swap(c, a->region, saved);
    int r = make_room(c, p->name, force, msg, sizeof msg);
    if (r == 0 && !msg[0])
        r = replica_key(c, principal, a, key_id, msg, sizeof msg, e);
    if (r == 0 && !msg[0])
        r = insert_replica(c, p, rarn, a->kms, key_id);
    region_back(c, saved);
    if (r == 0)
        r = record_replica(c, p->arn, a, msg[0] ? msg : NULL);
    if (r == 0 && !msg[0])
        r = sync_replica(c, p->arn, a->region);
    if (r < 0 && !e->code[0])
        return value_error(e, r);
    return r;
}

static int replicate_all(al_ctx *c, const char *principal, const secret *p, const add_region *add,
                         size_t n, bool force, al_error *e)
{
    for (size_t i = 0; i < n; i++) {
        char status[16];
        int r = query_text(c, "SELECT status FROM sm_replica WHERE arn=?1 AND region=?2", p->arn,
                           add[i].region, status, sizeof status);
        if (r == 0 && strcmp(status, "InSync") == 0)
            return al_fail(e, 400, "InvalidRequestException",
                           "The secret is already replicated to %s.", add[i].region);
        if (r < 0 && r != -ENOENT)
            return al_fail_internal(e, "InternalServiceError");
        if ((r = replicate_to(c, principal, p, &add[i], force, e)) < 0)
            return r;
    }
    return 0;
}

/* {"ARN": arn, "ReplicationStatus": [...]}, the answer of both replication
 * operations of the primary. */
static void write_primary_answer(al_ctx *c, const char *arn, es_jw *w)
{
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", arn);
    write_replication_status(c, arn, w);
    es_jw_obj_end(w);
}

static int op_replicate_secret_to_regions(al_ctx *c, const char *principal, const es_json *req,
                                          es_jw *w, al_error *e)
{
    add_region add[AL_SM_REPLICAS_MAX];
    size_t n;
    bool force;
    secret s;
    if (!al_opt_bool(req, "ForceOverwriteReplicaSecret", false, &force, e))
        return -EINVAL;
    int r = parse_add_regions(c, req, add, &n, e);
    if (r < 0)
        return r;
    if (n == 0)
        return al_fail(e, 400, "InvalidParameterException",
                       "AddReplicaRegions is required (a list of 1 to %d Regions).",
                       AL_SM_REPLICAS_MAX);
    r = load_primary(c, principal, req, "secretsmanager:ReplicateSecretToRegions", true, &s, e);
    if (r < 0)
        return r;
    if (!al_kms_is_aws_managed(c, s.key_id)) {
        char key_arn[256];
        al_kms_key_arn(c, s.key_id, key_arn, sizeof key_arn);
        if ((r = al_authorize(c, principal, "kms:Decrypt", key_arn, e)) < 0)
            goto out;
    }
    if (al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if ((r = replicate_all(c, principal, &s, add, n, force, e)) < 0)
        goto out;
    if (al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    write_primary_answer(c, s.arn, w);
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&s);
    return r;
}

/* RemoveReplicaRegions: 1 or more RegionType strings. */
static int parse_remove_regions(const es_json *req, const es_json **out, al_error *e)
{
    const es_json *l = es_json_get(req, "RemoveReplicaRegions");
    if (!l || l->type != ES_JSON_ARRAY || l->u.array.n < 1)
        return al_fail(e, 400, "InvalidParameterException",
                       "RemoveReplicaRegions is required (a list of 1 or more Regions).");
    for (size_t i = 0; i < l->u.array.n; i++)
        if (!region_text_ok(es_json_as_str(l->u.array.items[i])))
            return al_fail(e, 400, "InvalidParameterException", INVALID_REGION_MSG);
    *out = l;
    return 0;
}

/* Removes the replica of arn in region and its entry (none: nothing to do,
 * as AWS answers). */
static int remove_replica(al_ctx *c, const char *arn, const char *region)
{
    char rarn[ARN_MAX];
    arn_in_region(arn, region, rarn, sizeof rarn);
    int r =
        exec2(c, "DELETE FROM sm_secret WHERE arn=?1 AND primary_region IS NOT NULL", rarn, NULL);
    if (r == 0)
        r = exec2(c, "DELETE FROM sm_replica WHERE arn=?1 AND region=?2", arn, region);
    return r;
}

static int op_remove_regions_from_replication(al_ctx *c, const char *principal, const es_json *req,
                                              es_jw *w, al_error *e)
{
    const es_json *l;
    secret s;
    int r = parse_remove_regions(req, &l, e);
    if (r < 0)
        return r;
    r = load_primary(c, principal, req, "secretsmanager:RemoveRegionsFromReplication", true, &s, e);
    if (r < 0)
        return r;
    if (al_db_begin(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    for (size_t i = 0; r == 0 && i < l->u.array.n; i++)
        r = remove_replica(c, s.arn, es_json_as_str(l->u.array.items[i]));
    if (r < 0 || al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    write_primary_answer(c, s.arn, w);
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&s);
    return r;
}

/* Promotes a replica (asked in its own region) to a standalone secret: it
 * keeps its ARN, values and key; the primary forgets the region. */
static int op_stop_replication_to_replica(al_ctx *c, const char *principal, const es_json *req,
                                          es_jw *w, al_error *e)
{
    secret s;
    int r = load_target(c, principal, req, "secretsmanager:StopReplicationToReplica", true, &s, e);
    if (r < 0)
        return r;
    if (!s.primary_region) {
        r = al_fail(e, 400, "InvalidRequestException", "The secret %s is not a replica secret.",
                    s.name);
        goto out;
    }
    char parn[ARN_MAX];
    arn_in_region(s.arn, s.primary_region, parn, sizeof parn);
    if (al_db_begin(c->db) < 0 ||
        exec2(c, "UPDATE sm_secret SET primary_region=NULL WHERE arn=?1", s.arn, NULL) < 0 ||
        exec2(c, "DELETE FROM sm_replica WHERE arn=?1 AND region=?2", parn, al_region(c)) < 0 ||
        al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    es_jw_obj(w);
    es_jw_kstr(w, "ARN", s.arn);
    es_jw_obj_end(w);
out:
    if (r < 0)
        al_db_rollback(c->db);
    secret_clear(&s);
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
    {"GetRandomPassword", al_sm_get_random_password}, /* sm_password.c */
    {"TagResource", op_tag_resource},
    {"UntagResource", op_untag_resource},
    {"BatchGetSecretValue", op_batch_get_secret_value},
    {"RotateSecret", op_rotate_secret},
    {"CancelRotateSecret", op_cancel_rotate_secret},
    {"ReplicateSecretToRegions", op_replicate_secret_to_regions},
    {"RemoveRegionsFromReplication", op_remove_regions_from_replication},
    {"StopReplicationToReplica", op_stop_replication_to_replica},
    /* resource policies: aws/local/sm_policy.c */
    {"PutResourcePolicy", al_sm_put_resource_policy},
    {"GetResourcePolicy", al_sm_get_resource_policy},
    {"DeleteResourcePolicy", al_sm_delete_resource_policy},
    {NULL, NULL},
};
