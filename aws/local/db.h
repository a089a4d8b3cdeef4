/* db.h - the embedded stores' SQLite database.
 *
 * One file, <state-dir>/embedded.db, created 0600 (SQLite gives its -wal and
 * -shm files the same mode). Journal mode WAL with synchronous=FULL: a call
 * that answered success has its change on disk. secure_delete is on so that
 * freed pages are zeroed (we never write a plaintext secret, but metadata of
 * deleted items should not linger either). foreign_keys on, busy timeout
 * AL_DB_BUSY_TIMEOUT_MS (only matters if another process opens the file).
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

#define AL_DB_FILE "embedded.db"
#define AL_DB_BUSY_TIMEOUT_MS 2000

typedef struct al_db al_db;

/* Opens (creating when absent) path and migrates it. 0, -ENOMEM, -EIO
 * (SQLite failure, reason in err), -EPROTO (schema newer than ours). */
int al_db_open(const char *path, al_db **out, char *err, size_t errlen);
/* NULL-safe. */
void al_db_close(al_db *db);
sqlite3 *al_db_handle(al_db *db);
/* The schema version the code writes. */
int al_db_schema_version(void);
int al_db_file_version(al_db *db);

/* Transactions: BEGIN IMMEDIATE / COMMIT / ROLLBACK. 0 or -EIO. */
int al_db_begin(al_db *db);
int al_db_commit(al_db *db);
void al_db_rollback(al_db *db);

/* Prepares sql (cached per call site is not worth it at our rates). NULL on
 * failure. */
sqlite3_stmt *al_db_prepare(al_db *db, const char *sql);
/* Runs SQL with no result rows and no parameters. 0 or -EIO. */
int al_db_exec(al_db *db, const char *sql);

#endif
