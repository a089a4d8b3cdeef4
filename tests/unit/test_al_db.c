/* The embedded stores' SQLite database: pragmas, modes, migrations. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/local/db.h"

static char dir[64], path[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/al-db-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%s", dir, AL_DB_FILE);
}

static void teardown(void)
{
    char p[192];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

TestSuite(al_db, .init = setup, .fini = teardown);

static int pragma_int(al_db *db, const char *sql)
{
    sqlite3_stmt *st = al_db_prepare(db, sql);
    cr_assert_not_null(st);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    al_db_release(db, st);
    return v;
}

Test(al_db, fresh_file_is_migrated_private_and_durable)
{
    umask(022);
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_db_file_version(db), al_db_schema_version());
    cr_assert_geq(al_db_schema_version(), 1);
    cr_assert_eq(pragma_int(db, "PRAGMA synchronous"), 2); /* FULL */
    cr_assert_eq(pragma_int(db, "PRAGMA foreign_keys"), 1);
    cr_assert_eq(pragma_int(db, "PRAGMA secure_delete"), 1);
    sqlite3_stmt *st = al_db_prepare(db, "PRAGMA journal_mode");
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    al_db_release(db, st);
    /* the tables exist */
    cr_assert_eq(al_db_exec(db, "SELECT count(*) FROM ssm_param"), 0);
    cr_assert_eq(al_db_exec(db, "SELECT count(*) FROM sm_secret"), 0);
    cr_assert_eq(al_db_exec(db, "SELECT count(*) FROM kms_key"), 0);
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('k','', 'AWS', 1, 0, x'00')"),
                 0);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    char wal[192];
    snprintf(wal, sizeof wal, "%s-wal", path);
    cr_assert_eq(stat(wal, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    al_db_close(db);
    /* reopening keeps the data and does not migrate again */
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 1);
    al_db_close(db);
    al_db_close(NULL);
}

Test(al_db, newer_schema_is_refused)
{
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", al_db_schema_version() + 1);
    cr_assert_eq(al_db_exec(db, sql), 0);
    al_db_close(db);
    db = NULL;
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), -EPROTO);
    cr_assert_null(db);
    cr_assert_not_null(strstr(err, "newer"), "%s", err);
}

Test(al_db, transactions_roll_back)
{
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_db_begin(db), 0);
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('k','', 'AWS', 1, 0, x'00')"),
                 0);
    al_db_rollback(db);
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 0);
    al_db_rollback(db); /* no transaction: harmless */
    cr_assert_eq(al_db_begin(db), 0);
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('k','', 'AWS', 1, 0, x'00')"),
                 0);
    cr_assert_eq(al_db_commit(db), 0);
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 1);
    al_db_close(db);
}

Test(al_db, unopenable_path_reports)
{
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open("/nonexistent-dir/x.db", &db, err, sizeof err), -ENOENT);
    cr_assert_null(db);
    cr_assert_not_null(strstr(err, "/nonexistent-dir/x.db"));
}

Test(al_db, older_file_is_migrated_forward_keeping_data)
{
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    cr_assert_geq(al_db_schema_version(), 2);
    /* make it look like a version-1 file with data in it */
    cr_assert_eq(
        al_db_exec(
            db, "DROP TABLE iam_access_key; DROP TABLE meta; "
                /* version 9: the embedded S3 */
                "DROP TABLE s3_object; DROP TABLE s3_bucket; "
                /* version 8: Secrets Manager replication */
                "DROP TABLE sm_replica; "
                /* version 4: IAM users, groups */
                "DROP TABLE iam_group_member; DROP TABLE iam_group_attached; "
                "DROP TABLE iam_group_policy; DROP TABLE iam_group; DROP TABLE iam_user_attached; "
                "DROP TABLE iam_user_policy; DROP TABLE iam_user_tag; DROP TABLE iam_user; "
                /* version 3: IAM, STS, resource policies */
                "DROP TABLE sm_resource_policy; DROP TABLE kms_key_policy; DROP TABLE sts_session; "
                "DROP TABLE iam_role_attached; DROP TABLE iam_policy; "
                "DROP TABLE iam_role_policy; DROP TABLE iam_role; "
                /* version 4: regional KMS (kms_key and kms_alias as version 1 had them) */
                "DROP TABLE kms_tag; DROP TABLE kms_key_material; DROP TABLE kms_alias; "
                "DROP TABLE kms_key; "
                "CREATE TABLE kms_key (key_id TEXT PRIMARY KEY, description TEXT NOT NULL "
                "DEFAULT '', manager TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1, "
                "created REAL NOT NULL, wrapped BLOB NOT NULL); "
                "CREATE TABLE kms_alias (name TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES "
                "kms_key(key_id), created REAL NOT NULL, updated REAL NOT NULL); "
                "PRAGMA user_version=1"),
        0);
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('k','', 'AWS', 1, 0, x'00')"),
                 0);
    al_db_close(db);
    db = NULL;
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_db_file_version(db), al_db_schema_version());
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM iam_access_key"), 0);
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 1);
    al_db_close(db);
}

Test(al_db, statements_are_kept_lent_once_and_reset_on_release)
{
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('a','', 'AWS', 1, 0, x'00');"
                                "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('b','', 'AWS', 1, 0, x'00')"),
                 0);
    const char *q = "SELECT key_id FROM kms_key WHERE key_id>=? ORDER BY key_id";
    sqlite3_stmt *st = al_db_prepare(db, q);
    cr_assert_not_null(st);
    sqlite3_bind_text(st, 1, "a", -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    /* the same text while the first is in use (half-stepped): another statement */
    char copy[128];
    snprintf(copy, sizeof copy, "%s", q);
    sqlite3_stmt *st2 = al_db_prepare(db, copy);
    cr_assert_not_null(st2);
    cr_assert_neq(st2, st);
    sqlite3_bind_text(st2, 1, "b", -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st2), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st2, 0), "b");
    al_db_release(db, st2);
    al_db_release(db, st);
    /* given back: the same statement again, reset, with no binding left */
    sqlite3_stmt *st3 = al_db_prepare(db, q);
    cr_assert(st3 == st || st3 == st2);
    cr_assert_eq(sqlite3_bind_parameter_count(st3), 1);
    cr_assert_eq(sqlite3_step(st3), SQLITE_DONE, "NULL binding matches nothing: bindings cleared");
    al_db_release(db, st3);
    /* a write is not blocked by a read left open: release ended it */
    sqlite3_stmt *r = al_db_prepare(db, q);
    sqlite3_bind_text(r, 1, "a", -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(r), SQLITE_ROW);
    al_db_release(db, r);
    cr_assert_eq(sqlite3_get_autocommit(al_db_handle(db)), 1);
    cr_assert_eq(al_db_begin(db), 0);
    cr_assert_eq(al_db_exec(db, "DELETE FROM kms_key WHERE key_id='a'"), 0);
    cr_assert_eq(al_db_commit(db), 0);
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 1);
    al_db_release(db, NULL);
    al_db_close(db);
}

Test(al_db, past_the_cache_statements_are_finalized)
{
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    /* more distinct texts than the cache keeps: every one still works and
     * the extra ones are finalized on release (ASan would report a leak) */
    for (int i = 0; i < AL_DB_STMT_CACHE + 20; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d", i);
        cr_assert_eq(pragma_int(db, sql), i);
        cr_assert_eq(pragma_int(db, sql), i);
    }
    al_db_close(db);
}

Test(al_db, read_transaction_holds_one_snapshot_and_yields_to_writes)
{
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    sqlite3 *h = al_db_handle(db);
    /* a read that runs no statement (answered from the caches) opens and
     * commits nothing */
    uint64_t rollbacks = al_db_stamp_now(db).rollbacks;
    cr_assert_eq(al_db_read_begin(db), 0);
    cr_assert_eq(sqlite3_get_autocommit(h), 1, "no BEGIN before the first statement");
    al_db_read_end(db);
    cr_assert_eq(sqlite3_get_autocommit(h), 1);
    cr_assert_eq(al_db_stamp_now(db).rollbacks, rollbacks);
    cr_assert_eq(al_db_read_begin(db), 0);
    cr_assert_eq(al_db_read_begin(db), 0, "nested: nothing added");
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 0);
    cr_assert_eq(sqlite3_get_autocommit(h), 0, "the first statement opened the transaction");
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 0);
    cr_assert_eq(sqlite3_get_autocommit(h), 0, "one transaction for the read's statements");
    /* a plain write inside upgrades it; read_end commits it */
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('a','', 'AWS', 1, 0, x'00')"),
                 0);
    al_db_read_end(db);
    cr_assert_eq(sqlite3_get_autocommit(h), 1);
    al_db_close(db);
    db = NULL;
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 1, "committed to disk");
    /* al_db_begin inside: the read ends, the write runs and commits as usual */
    cr_assert_eq(al_db_read_begin(db), 0);
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 1);
    cr_assert_eq(al_db_begin(db), 0);
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('b','', 'AWS', 1, 0, x'00')"),
                 0);
    cr_assert_eq(al_db_commit(db), 0);
    al_db_read_end(db);
    cr_assert_eq(sqlite3_get_autocommit(al_db_handle(db)), 1);
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 2);
    /* inside a write transaction, read_begin adds nothing and read_end ends nothing */
    cr_assert_eq(al_db_begin(db), 0);
    cr_assert_eq(al_db_read_begin(db), 0);
    al_db_read_end(db);
    cr_assert_eq(sqlite3_get_autocommit(al_db_handle(db)), 0, "still the write transaction");
    al_db_rollback(db);
    al_db_close(db);
}

static int insert_key(al_db *db, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO kms_key(key_id, description, manager, enabled, created, wrapped) "
             "VALUES ('%s','', 'AWS', 1, 0, x'00')",
             id);
    return al_db_exec(db, sql);
}

/* al_db_stamp_renew answers what al_db_stamp_eq(kept, al_db_stamp_now) would,
 * and leaves kept at the stamp now; inside a read, its shortcut (two
 * counters and the kept data version) still sees a write made in the read,
 * and a rollback. */
Test(al_db, a_kept_stamp_is_renewed_exactly_when_the_stamp_moves)
{
    al_db *db = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    al_db_stamp kept = al_db_stamp_now(db);
    cr_assert(al_db_stamp_renew(db, &kept), "unchanged");
    cr_assert_eq(insert_key(db, "a"), 0);
    cr_assert_not(al_db_stamp_renew(db, &kept), "a write moves it");
    cr_assert(al_db_stamp_eq(kept, al_db_stamp_now(db)), "kept is the stamp now");
    cr_assert(al_db_stamp_renew(db, &kept));
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(al_db_read_begin(db), 0);
        cr_assert(al_db_stamp_renew(db, &kept), "a read begun changes nothing");
        cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 1 + round);
        cr_assert(al_db_stamp_renew(db, &kept), "reads leave it");
        cr_assert(al_db_stamp_renew(db, &kept), "and again (the read's shortcut)");
        /* a write inside the read */
        cr_assert_eq(insert_key(db, round ? "c" : "b"), 0);
        cr_assert_not(al_db_stamp_renew(db, &kept), "a write inside the read moves it");
        cr_assert(al_db_stamp_eq(kept, al_db_stamp_now(db)));
        cr_assert(al_db_stamp_renew(db, &kept));
        al_db_read_end(db);
        /* the read's COMMIT may move the data version: whichever, renew
         * agrees with the stamp made in full */
        al_db_stamp now = al_db_stamp_now(db);
        bool same = al_db_stamp_eq(kept, now);
        cr_assert_eq(al_db_stamp_renew(db, &kept), same);
        cr_assert(al_db_stamp_eq(kept, now));
    }
    /* a rollback */
    cr_assert_eq(al_db_begin(db), 0);
    cr_assert_eq(insert_key(db, "d"), 0);
    cr_assert_not(al_db_stamp_renew(db, &kept), "an uncommitted insert moves it");
    al_db_rollback(db);
    cr_assert_not(al_db_stamp_renew(db, &kept), "a rollback moves it");
    cr_assert_eq(al_db_read_begin(db), 0);
    cr_assert(al_db_stamp_renew(db, &kept));
    al_db_read_end(db);
    /* an unknown stamp is never the stamp now */
    kept.changes = -1;
    cr_assert_not(al_db_stamp_renew(db, &kept));
    cr_assert_eq(al_db_read_begin(db), 0);
    (void)al_db_stamp_now(db); /* the read's data version known: the shortcut */
    kept.changes = -1;
    cr_assert_not(al_db_stamp_renew(db, &kept), "inside a read too");
    cr_assert(al_db_stamp_renew(db, &kept));
    al_db_read_end(db);
    al_db_close(db);
}

Test(al_db, the_file_is_held_exclusively_and_changes_move_the_stamp)
{
    al_db *db = NULL, *other = NULL;
    char err[256] = "";
    cr_assert_eq(al_db_open(path, &db, err, sizeof err), 0, "%s", err);
    /* WAL in exclusive locking mode: the index lives in memory */
    char shm[192];
    snprintf(shm, sizeof shm, "%s-shm", path);
    cr_assert_eq(access(shm, F_OK), -1, "no -shm file");
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 0);
    /* a second connection (another daemon on the same state directory) is
     * refused once the busy timeout has passed */
    cr_assert_eq(al_db_open(path, &other, err, sizeof err), -EBUSY);
    cr_assert_not_null(strstr(err, "in use by another process"), "%s", err);
    cr_assert_null(other);

    al_db_stamp s0 = al_db_stamp_now(db);
    cr_assert(al_db_stamp_eq(s0, al_db_stamp_now(db)));
    cr_assert_eq(pragma_int(db, "SELECT count(*) FROM kms_key"), 0);
    cr_assert(al_db_stamp_eq(s0, al_db_stamp_now(db)), "reads leave it");
    /* inside a transaction, before its commit */
    cr_assert_eq(al_db_begin(db), 0);
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('a','', 'AWS', 1, 0, x'00')"),
                 0);
    al_db_stamp s1 = al_db_stamp_now(db);
    cr_assert_not(al_db_stamp_eq(s0, s1), "an uncommitted insert moves it");
    al_db_rollback(db);
    /* what a cache saw inside the transaction is gone: the stamp moves on */
    cr_assert_not(al_db_stamp_eq(s1, al_db_stamp_now(db)), "a rollback moves it");
    cr_assert_not(al_db_stamp_eq(s0, al_db_stamp_now(db)), "and not back");
    s1 = al_db_stamp_now(db);
    /* a COMMIT that fails (a deferred foreign key violation) ends in a
     * rollback */
    cr_assert_eq(al_db_begin(db), 0);
    cr_assert_eq(al_db_exec(db, "PRAGMA defer_foreign_keys=ON"), 0);
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_alias(region, name, key_id, created, updated) "
                                "VALUES ('r','alias/x','missing',0,0)"),
                 0);
    al_db_stamp in_txn = al_db_stamp_now(db);
    cr_assert_eq(al_db_commit(db), -EIO);
    cr_assert_eq(sqlite3_get_autocommit(al_db_handle(db)), 1);
    cr_assert_not(al_db_stamp_eq(in_txn, al_db_stamp_now(db)), "that rollback moves it");
    cr_assert_not(al_db_stamp_eq(s1, al_db_stamp_now(db)));
    cr_assert_eq(al_db_exec(db, "INSERT INTO kms_key(key_id, description, manager, enabled, "
                                "created, wrapped) VALUES ('b','', 'AWS', 1, 0, x'00')"),
                 0);
    al_db_stamp s2 = al_db_stamp_now(db);
    cr_assert_not(al_db_stamp_eq(s1, s2));
    cr_assert_eq(al_db_exec(db, "UPDATE kms_key SET enabled=0 WHERE key_id='b'"), 0);
    cr_assert_not(al_db_stamp_eq(s2, al_db_stamp_now(db)), "an update moves it");
    al_db_close(db);
    /* closed: the file is free again */
    cr_assert_eq(al_db_open(path, &other, err, sizeof err), 0, "%s", err);
    al_db_close(other);
}
