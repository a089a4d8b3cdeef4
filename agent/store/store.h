/* store.h - the agent's persisted state: task definitions and tasks, in SQLite.
 *
 * THIS STORE NEVER HOLDS A SECRET VALUE. It keeps task definitions (which
 * hold secret references, valueFrom, not values) and, per task, where each
 * injected secret came from: source ARN, resolved version, when, and a keyed
 * fingerprint (HMAC, see ag_secret_fingerprint) - never the value. Anything
 * added here must keep it that way; test_store scans the file for a known
 * value to prove it.
 *
 * One file, STATE_DIR/agent.db, mode 0600 (SQLite gives its -wal and -shm
 * files the same mode). journal_mode=WAL, synchronous=FULL: a registered
 * revision or a task state change survives a crash once the call returns
 * (but ag_store_tasks_put_behind's: durable once the log is synced).
 * The schema is versioned with PRAGMA user_version; ag_store_open applies
 * the migrations a file lacks, in one transaction each, and refuses a file
 * from a newer agent.
 *
 * Revisions: per family, the last revision ever handed out is kept in its
 * own table, so a revision number is never reused, even after
 * deregistration or deletion of rows.
 *
 * Calls are synchronous and small (one statement or one short transaction);
 * the caller keeps them off hot paths. */
#ifndef AG_STORE_H
#define AG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/services/service.h"
#include "agent/tasks/task.h"
#include "agent/tasks/taskdef.h"

typedef struct ag_store ag_store;

#define AG_STORE_FILE "agent.db"
#define AG_STORE_SCHEMA_VERSION 5
#define AG_STORE_ERR_MAX 256

/* Opens (creating) dir/agent.db. On failure returns -errno / -EIO / -EPROTO
 * (newer schema) with a reason in err. */
int ag_store_open(const char *dir, ag_store **out, char *err, size_t errlen);
void ag_store_close(ag_store *st);
/* Gives back the connection's unused page-cache memory (sqlite3_db_release_memory): once
 * start-up's migrations and loads are done (agent/memtrim.h). NULL-safe. */
void ag_store_release_memory(ag_store *st);
const char *ag_store_path(const ag_store *st);
/* The last SQLite error text (for the caller's log); never holds values. */
const char *ag_store_errmsg(const ag_store *st);

/* Registers td as the next revision of its family: sets td->revision,
 * td->status ACTIVE, td->registered_at = now. 0 or -EIO. */
int ag_store_taskdef_register(ag_store *st, ag_taskdef *td, int64_t now);
/* A revision as the cluster keeps it (agent/cluster_td.c): inserted, or
 * replaced when the family and revision are there; the family's last
 * revision raised to it; a new revision's tags taken from its body. body
 * is request-shaped JSON (ag_taskdef_write_request's). 0, -EINVAL, -EIO. */
typedef struct ag_store_td_row {
    const char *family;
    int64_t revision;
    bool active;
    int64_t registered_at, deregistered_at; /* 0: not deregistered */
    const char *body;
    size_t body_len;
} ag_store_td_row;
int ag_store_taskdef_put(ag_store *st, const ag_store_td_row *row);
/* revision 0: the latest ACTIVE revision. 0, -ENOENT, -EIO, -ENOMEM. */
int ag_store_taskdef_get(ag_store *st, const char *family, int64_t revision, ag_taskdef **out);
/* Marks a revision INACTIVE (deregisteredAt = now). 0, -ENOENT, -EIO. */
int ag_store_taskdef_deregister(ag_store *st, const char *family, int64_t revision, int64_t now);
/* Calls fn(family, revision, status) for each stored revision, ordered by
 * family then revision; family NULL for every family, status NULL for
 * both statuses ("ACTIVE" / "INACTIVE"). fn returning non-zero stops the
 * walk and that value is returned. */
typedef int (*ag_store_td_fn)(const char *family, int64_t revision, ag_td_status status, void *arg);
int ag_store_taskdef_list(ag_store *st, const char *family, const ag_td_status *status,
                          ag_store_td_fn fn, void *arg);
/* The last revision ever registered for family (0 if none). */
int ag_store_taskdef_last_revision(ag_store *st, const char *family, int64_t *out);

/* Deleting a task (ag_store_task_delete) removes its tags too.
 * Inserts or replaces the whole task (row, containers, secret metadata) in
 * one transaction. 0 or -EIO. */
int ag_store_task_put(ag_store *st, const ag_task *t);
/* n tasks in one transaction (one fsync): the engine writes the tasks that
 * changed during a loop iteration together. All or none. */
int ag_store_tasks_put(ag_store *st, const ag_task *const *ts, size_t n);
/* ag_store_tasks_put committed without waiting for the disk (synchronous
 * NORMAL for this one transaction): when it returns the rows are in the
 * write-ahead log in the OS's cache, so they survive the process's crash,
 * and they survive the machine's once the log is synced (an fdatasync of
 * ag_store_sync_fd, or the next durable write, which syncs the log whole).
 * For the engine's writes behind, whose fsync it does on libuv's thread pool
 * instead of the loop thread. Every other write stays durable at return. */
int ag_store_tasks_put_behind(ag_store *st, const ag_task *const *ts, size_t n);
/* A read-only descriptor of the write-ahead log (opened at the first call,
 * closed with the store): fdatasync on it makes every commit before the
 * call durable (what a checkpoint moved to the database file SQLite synced
 * then). Safe to fdatasync from another thread while the store is in use;
 * not after ag_store_close. -errno with the reason in ag_store_errmsg. */
int ag_store_sync_fd(ag_store *st);
/* ag_store_task_put as an ag_task_commit_fn (arg: the store). */
int ag_store_task_commit(void *store, const ag_task *t);
/* 0, -ENOENT, -EIO, -ENOMEM. */
int ag_store_task_get(ag_store *st, const char *arn, ag_task **out);
/* Calls fn for every task (oldest first); stopped ones only when
 * include_stopped. The task passed belongs to fn (free it with ag_task_free).
 * fn returning non-zero stops the walk and that value is returned. */
typedef int (*ag_store_task_fn)(ag_task *t, void *arg);
int ag_store_task_foreach(ag_store *st, bool include_stopped, ag_store_task_fn fn, void *arg);
int ag_store_task_delete(ag_store *st, const char *arn);

/* Services (agent/services/service.h): the record, its deployments and its events
 * (what ECS shows; never a value). put replaces all three in one
 * transaction; the counts a pass recomputes are not stored. 0 or -EIO. */
int ag_store_service_put(ag_store *st, const ag_service *s);
/* Calls fn for every stored service (oldest first); the service belongs to
 * fn (ag_service_free). fn non-zero stops the walk and is returned. */
typedef int (*ag_store_service_fn)(ag_service *s, void *arg);
int ag_store_service_foreach(ag_store *st, ag_store_service_fn fn, void *arg);
/* Also removes the service's tags. */
int ag_store_service_delete(ag_store *st, const char *arn);

/* ECS tags (agent/tasks/tags.h) of a task definition, task or service,
 * kept under the resource part of its ARN (task-definition/F:R, task/C/ID,
 * service/C/N: ag_store_tag_resource), so that they need no region or
 * account. A service's are also written by ag_store_service_put (from
 * s->tags) and read back into it; deleting a task or service removes its
 * tags. set replaces them all in one transaction. 0, -EIO, -ENOMEM. */
const char *ag_store_tag_resource(const char *arn);
int ag_store_tags_set(ag_store *st, const char *arn, const ag_tags *t);
int ag_store_tags_get(ag_store *st, const char *arn, ag_tags *out);

/* The key of the secret fingerprints (ag_secret_fingerprint): 32 random
 * bytes in dir/fingerprint.key (0600), created on first use. It lives
 * apart from agent.db so that the database alone cannot be used to test
 * guesses of a value against its fingerprint. 0, -EIO (short or unreadable
 * file, no randomness), or -errno; out untouched on failure. */
#define AG_FINGERPRINT_KEY_FILE "fingerprint.key"
#define AG_FINGERPRINT_KEY_LEN 32
int ag_fingerprint_key_load(const char *dir, unsigned char out[AG_FINGERPRINT_KEY_LEN]);

#endif
