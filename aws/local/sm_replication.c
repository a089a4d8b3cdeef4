/* sm_replication.c - the embedded Secrets Manager's replicas in other
 * regions (sm_int.h): ReplicateSecretToRegions,
 * RemoveRegionsFromReplication, StopReplicationToReplica, and the sync
 * inside every change to a primary. */
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
#include "aws/region.h"
#include "common/alloc.h"
#include "common/secure.h"

/* ---- replication ----
 *
 * A replica is an sm_secret row of its own region with primary_region set,
 * the primary's name and the primary's ARN with the region changed. Its
 * versions are the primary's values sealed again under the replica
 * region's key and bound to the replica's ARN (so, like a primary's, a
 * version cannot be moved to another secret). al_sm_sync_replicas brings every
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
    int r = al_sm_load_version(c, &p, vid, &pl);
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
        r = al_sm_insert_blob(c, rarn, vid, pl.binary, blob, bloblen, pl.created);
    es_free(blob);
    al_sm_plain_clear(&pl);
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
        r = al_sm_exec2(c, SYNC_SQL[i], parn, rarn);
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
    return al_sm_exec2(c,
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
int al_sm_sync_replicas(al_ctx *c, const char *arn)
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
int al_sm_refuse_replicated(al_ctx *c, const secret *s, const char *id, al_error *e)
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
void al_sm_write_replication_status(al_ctx *c, const char *arn, es_jw *w)
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
void al_sm_write_primary_region(al_ctx *c, const secret *s, bool list, es_jw *w)
{
    if (s->primary_region) {
        es_jw_kstr(w, "PrimaryRegion", s->primary_region);
        return;
    }
    if (al_sm_count_rows(c, "SELECT count(*) FROM sm_replica WHERE arn=?", s->arn) <= 0)
        return;
    es_jw_kstr(w, "PrimaryRegion", al_region(c));
    if (!list)
        al_sm_write_replication_status(c, s->arn, w);
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

int al_sm_parse_add_regions(al_ctx *c, const es_json *req, add_region *out, size_t *n, al_error *e)
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
    return al_sm_exec2(c, "DELETE FROM sm_secret WHERE arn=?1", arn, NULL);
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
        return al_sm_value_error(e, r);
    return r;
}

int al_sm_replicate_all(al_ctx *c, const char *principal, const secret *p, const add_region *add,
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
    al_sm_write_replication_status(c, arn, w);
    es_jw_obj_end(w);
}

typedef struct replicate_change {
    const char *principal;
    const add_region *add;
    size_t n;
    bool force;
} replicate_change;

static int replicate_change_fn(al_ctx *c, secret *s, void *arg, al_error *e)
{
    const replicate_change *q = arg;
    return al_sm_replicate_all(c, q->principal, s, q->add, q->n, q->force, e);
}

int al_sm_op_replicate_secret_to_regions(al_ctx *c, const char *principal, const es_json *req,
                                         es_jw *w, al_error *e)
{
    add_region add[AL_SM_REPLICAS_MAX];
    size_t n;
    bool force;
    secret s;
    if (!al_opt_bool(req, "ForceOverwriteReplicaSecret", false, &force, e))
        return -EINVAL;
    int r = al_sm_parse_add_regions(c, req, add, &n, e);
    if (r < 0)
        return r;
    if (n == 0)
        return al_fail(e, 400, "InvalidParameterException",
                       "AddReplicaRegions is required (a list of 1 to %d Regions).",
                       AL_SM_REPLICAS_MAX);
    r = al_sm_load_primary(c, principal, req, "secretsmanager:ReplicateSecretToRegions", true, &s,
                           e);
    if (r < 0)
        return r;
    if (!al_kms_is_aws_managed(c, s.key_id)) {
        char key_arn[256];
        al_kms_key_arn(c, s.key_id, key_arn, sizeof key_arn);
        if ((r = al_authorize(c, principal, "kms:Decrypt", key_arn, e)) < 0)
            goto out;
    }
    replicate_change q = {principal, add, n, force};
    if ((r = al_sm_change(c, &s, replicate_change_fn, &q, e)) == 0)
        write_primary_answer(c, s.arn, w);
out:
    al_sm_secret_clear(&s);
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
    int r = al_sm_exec2(c, "DELETE FROM sm_secret WHERE arn=?1 AND primary_region IS NOT NULL",
                        rarn, NULL);
    if (r == 0)
        r = al_sm_exec2(c, "DELETE FROM sm_replica WHERE arn=?1 AND region=?2", arn, region);
    return r;
}

/* RemoveRegionsFromReplication's change: each region's replica deleted. */
static int remove_change(al_ctx *c, secret *s, void *arg, al_error *e)
{
    const es_json *l = arg;
    for (size_t i = 0; i < l->u.array.n; i++)
        if (remove_replica(c, s->arn, es_json_as_str(l->u.array.items[i])) < 0)
            return al_fail_internal(e, "InternalServiceError");
    return 0;
}

int al_sm_op_remove_regions_from_replication(al_ctx *c, const char *principal, const es_json *req,
                                             es_jw *w, al_error *e)
{
    const es_json *l;
    secret s;
    int r = parse_remove_regions(req, &l, e);
    if (r < 0)
        return r;
    r = al_sm_load_primary(c, principal, req, "secretsmanager:RemoveRegionsFromReplication", true,
                           &s, e);
    if (r < 0)
        return r;
    if ((r = al_sm_change(c, &s, remove_change, (void *)l, e)) == 0)
        write_primary_answer(c, s.arn, w);
    al_sm_secret_clear(&s);
    return r;
}

/* StopReplicationToReplica's change: the replica stands alone, its primary
 * forgets the region. */
static int promote_change(al_ctx *c, secret *s, void *arg, al_error *e)
{
    (void)arg;
    char parn[ARN_MAX];
    arn_in_region(s->arn, s->primary_region, parn, sizeof parn);
    if (al_sm_exec2(c, "UPDATE sm_secret SET primary_region=NULL WHERE arn=?1", s->arn, NULL) < 0 ||
        al_sm_exec2(c, "DELETE FROM sm_replica WHERE arn=?1 AND region=?2", parn, al_region(c)) < 0)
        return al_fail_internal(e, "InternalServiceError");
    return 0;
}

/* Promotes a replica (asked in its own region) to a standalone secret: it
 * keeps its ARN, values and key; the primary forgets the region. */
int al_sm_op_stop_replication_to_replica(al_ctx *c, const char *principal, const es_json *req,
                                         es_jw *w, al_error *e)
{
    secret s;
    int r = al_sm_load_target(c, principal, req, "secretsmanager:StopReplicationToReplica", true,
                              &s, e);
    if (r < 0)
        return r;
    if (!s.primary_region) {
        r = al_fail(e, 400, "InvalidRequestException", "The secret %s is not a replica secret.",
                    s.name);
        goto out;
    }
    if ((r = al_sm_change(c, &s, promote_change, NULL, e)) == 0) {
        es_jw_obj(w);
        es_jw_kstr(w, "ARN", s.arn);
        es_jw_obj_end(w);
    }
out:
    al_sm_secret_clear(&s);
    return r;
}
