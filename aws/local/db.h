/* db.h - the embedded stores' SQLite database.
 *
 * One file, <state-dir>/embedded.db, created 0600 (SQLite gives its -wal and
 * -shm files the same mode). Journal mode WAL with synchronous=FULL: a call
 * that answered success has its change on disk. secure_delete is on so that
 * freed pages are zeroed (we never write a plaintext secret, but metadata of
 * deleted items should not linger either). foreign_keys on, busy timeout
 * AL_DB_BUSY_TIMEOUT_MS (only matters if another process opens the file).
 *
 * Ownership: the connection holds the file in locking_mode=EXCLUSIVE from
 * al_db_open to al_db_close, so no other connection (another daemon on the
 * same state directory, a sqlite3 shell) can read or write it meanwhile: it
 * waits AL_DB_BUSY_TIMEOUT_MS, then al_db_open fails (-EBUSY). That makes
 * this connection the only writer, which the in-memory caches of aws/local
 * rely on (al_db_stamp), and spares every transaction the WAL's shared-memory
 * locks (fcntl system calls).
 *
 * Threading: one connection, used only from the loop thread. This is a
 * deliberate choice against DESIGN.md's "no blocking on the loop": every
 * statement the embedded services run touches a handful of rows through an
 * index (one API call is one short transaction of a few statements), so the
 * cost per call is tens of microseconds plus one fsync per write; a worker
 * thread would add locking without removing that fsync from the answer's
 * latency. Should writes ever need batching, this module is the one place.
 *
 * Schema: versioned with PRAGMA user_version; al_db_open applies every
 * migration newer than the file's version, each in its own transaction, and
 * refuses a file written by a newer schema (-EPROTO). */
#ifndef AL_DB_H
#define AL_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AL_DB_FILE "embedded.db"
#define AL_DB_BUSY_TIMEOUT_MS 2000

typedef struct al_db al_db;

/* Opens (creating when absent) path and migrates it. 0, -ENOMEM, -EIO
 * (SQLite failure, reason in err), -EPROTO (schema newer than ours), -EBUSY
 * (another connection holds the file). */
int al_db_open(const char *path, al_db **out, char *err, size_t errlen);
/* The same, migrating only up to schema version (tests of a migration build
 * a file as an older program wrote it). -EINVAL for a version we lack. */
int al_db_open_at(const char *path, int version, al_db **out, char *err, size_t errlen);
/* NULL-safe. */
void al_db_close(al_db *db);
sqlite3 *al_db_handle(al_db *db);
/* The schema version the code writes. */
int al_db_schema_version(void);
int al_db_file_version(al_db *db);

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK. 0 or -EIO. */
int al_db_begin(al_db *db);
/* One deferred transaction around a read-only operation, so that its
 * statements share one snapshot and one set of locks (each statement in
 * autocommit mode took and dropped the WAL read locks: a third of the CPU of
 * a GetParameters). A plain write statement inside upgrades it (committed by
 * al_db_read_end); al_db_begin inside commits it first and runs as usual.
 * Does nothing inside another transaction. The BEGIN runs before the
 * operation's first statement (al_db_prepare), so that a read answered from
 * the caches alone runs neither BEGIN nor COMMIT. 0 or -EIO. */
int al_db_read_begin(al_db *db);
/* Commits what al_db_read_begin opened (rolls back if that fails). */
void al_db_read_end(al_db *db);
int al_db_commit(al_db *db);
void al_db_rollback(al_db *db);

/* Prepares sql, or lends the statement prepared earlier for the same text
 * (the first AL_DB_STMT_CACHE distinct texts are kept until al_db_close):
 * parsing and planning was most of the cost of a read (a GetParameters of
 * 10 names prepared some 40 statements). A statement in use is not lent
 * twice: a second user of the same text gets a fresh one. Give every
 * statement back with al_db_release (never sqlite3_finalize). NULL on
 * failure. */
#define AL_DB_STMT_CACHE 128
sqlite3_stmt *al_db_prepare(al_db *db, const char *sql);
/* Resets a kept statement (bindings cleared) for the next user, finalizes
 * any other. NULL-safe. */
void al_db_release(al_db *db, sqlite3_stmt *st);
/* Runs SQL with no result rows and no parameters. 0 or -EIO. */
int al_db_exec(al_db *db, const char *sql);

/* The first SQLite failure seen (a statement given back after a failed
 * step, a failed exec, a rollback after an error) since the last take: its
 * extended result code (SQLITE_FULL, SQLITE_IOERR_WRITE, ...) and SQLite's
 * message. The dispatcher takes it after each operation, so that a 500 says
 * why and the daemon logs each failure once. */
typedef struct al_db_failure {
    int code;
    char message[160];
} al_db_failure;
/* Copies the failure into out (NULL: drops it) and clears it; false when
 * there was none. */
bool al_db_failure_take(al_db *db, al_db_failure *out);

/* What the database held, as a value that changes whenever a row may have
 * changed: the rows inserted, updated or deleted through this connection so
 * far (sqlite3_total_changes64: counted as each statement completes, so also
 * inside a transaction that is not committed yet), the transactions rolled
 * back (explicitly or by SQLite after an error: what was seen inside one may
 * be gone), and the pager's data version (moves when another connection
 * commits; cannot happen while we hold the file exclusively, kept as a second
 * line; inside al_db_read_begin/_end it is asked once and reused, as only
 * another connection's commit moves it). A cache filled under one stamp is
 * valid while al_db_stamp_eq says the stamp is the same; it may be stale
 * otherwise. */
typedef struct al_db_stamp {
    int64_t changes;
    uint64_t rollbacks;
    unsigned data_version;
} al_db_stamp;
al_db_stamp al_db_stamp_now(al_db *db);
bool al_db_stamp_eq(al_db_stamp a, al_db_stamp b);
/* al_db_stamp_eq(*kept, al_db_stamp_now(db)) in one call, for a cache's
 * check before each use: true when it is; false after setting *kept to
 * the stamp now (the cache is then to be emptied). Inside
 * al_db_read_begin/_end, once the data version is known, it compares two
 * counters of this connection and the kept version and makes no call
 * into SQLite's file layer. */
bool al_db_stamp_renew(al_db *db, al_db_stamp *kept);

#endif
