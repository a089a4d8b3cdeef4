/* store.c - see store.h. THIS STORE NEVER HOLDS A SECRET VALUE. */
#include "agent/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/secure.h"

/* How long opening agent.db waits for another process's lock. */
#define STORE_OPEN_BUSY_MS 2000

struct ag_store {
    sqlite3 *db;
    char path[PATH_MAX];
    char err[AG_STORE_ERR_MAX];
    /* synchronous is NORMAL (a write behind was committed and FULL could
     * not be set again): every durable write sets FULL first */
    bool sync_normal;
    int wal_fd; /* the write-ahead log, for ag_store_sync_fd; -1 until asked */
};

/* Migration N (0-based) brings a file from user_version N to N + 1. Never
 * edit one that has shipped: add the next. */
static const char *const migrations[] = {
    /* 1: task definitions, revision counters, tasks, containers, secret metadata */
    "CREATE TABLE taskdef_families ("
    "  family TEXT PRIMARY KEY,"
    "  last_revision INTEGER NOT NULL);"
    "CREATE TABLE taskdefs ("
    "  family TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),"
    "  registered_at INTEGER NOT NULL,"
    "  deregistered_at INTEGER,"
    "  body TEXT NOT NULL," /* request-shaped JSON: references, never values */
    "  PRIMARY KEY (family, revision));"
    "CREATE TABLE tasks ("
    "  arn TEXT PRIMARY KEY,"
    "  family TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  cluster TEXT NOT NULL,"
    "  last_status TEXT NOT NULL,"
    "  desired_status TEXT NOT NULL,"
    "  started_by TEXT,"
    "  grp TEXT,"
    "  launch_type TEXT,"
    "  stopped_reason TEXT,"
    "  stop_code TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  pull_started_at INTEGER NOT NULL DEFAULT 0,"
    "  pull_stopped_at INTEGER NOT NULL DEFAULT 0,"
    "  started_at INTEGER NOT NULL DEFAULT 0,"
    "  stopping_at INTEGER NOT NULL DEFAULT 0,"
    "  stopped_at INTEGER NOT NULL DEFAULT 0,"
    "  execution_stopped_at INTEGER NOT NULL DEFAULT 0,"
    "  version INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tasks_by_status ON tasks (last_status);"
    "CREATE TABLE task_containers ("
    "  task_arn TEXT NOT NULL REFERENCES tasks (arn) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  image TEXT,"
    "  docker_id TEXT,"
    "  last_status TEXT,"
    "  exit_code INTEGER,"
    "  reason TEXT,"
    "  PRIMARY KEY (task_arn, idx));"
    /* where a value came from, never the value */
    "CREATE TABLE task_secrets ("
    "  task_arn TEXT NOT NULL REFERENCES tasks (arn) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  container_name TEXT NOT NULL,"
    "  target TEXT NOT NULL CHECK (target IN ('environment', 'logConfiguration')),"
    "  name TEXT NOT NULL,"
    "  value_from TEXT NOT NULL,"
    "  source_arn TEXT,"
    "  version TEXT,"
    "  resolved_at INTEGER NOT NULL DEFAULT 0,"
    "  fingerprint TEXT,"
    "  PRIMARY KEY (task_arn, idx));",
    /* 2: services, their deployments and events (agent/services/service.h) */
    "CREATE TABLE services ("
    "  arn TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  cluster TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'DRAINING', 'INACTIVE')),"
    "  family TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  desired INTEGER NOT NULL,"
    "  max_percent INTEGER NOT NULL,"
    "  min_healthy INTEGER NOT NULL,"
    "  cb_enable INTEGER NOT NULL,"
    "  cb_rollback INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  steady INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE service_deployments ("
    "  service_arn TEXT NOT NULL REFERENCES services (arn) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  id TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  family TEXT NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  desired INTEGER NOT NULL,"
    "  rollout TEXT NOT NULL,"
    "  rollout_reason TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  PRIMARY KEY (service_arn, idx));"
    "CREATE TABLE service_events ("
    "  service_arn TEXT NOT NULL REFERENCES services (arn) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  id TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  message TEXT NOT NULL,"
    "  PRIMARY KEY (service_arn, idx));",
    /* 3: task_secrets' target may be repositoryCredentials (S15); SQLite
     * cannot alter a CHECK, so the table is rebuilt */
    "CREATE TABLE task_secrets_3 ("
    "  task_arn TEXT NOT NULL REFERENCES tasks (arn) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  container_name TEXT NOT NULL,"
    "  target TEXT NOT NULL CHECK (target IN ('environment', 'logConfiguration',"
    "                                         'repositoryCredentials')),"
    "  name TEXT NOT NULL,"
    "  value_from TEXT NOT NULL,"
    "  source_arn TEXT,"
    "  version TEXT,"
    "  resolved_at INTEGER NOT NULL DEFAULT 0,"
    "  fingerprint TEXT,"
    "  PRIMARY KEY (task_arn, idx));"
    "INSERT INTO task_secrets_3 SELECT task_arn, idx, container_name, target, name, value_from,"
    "  source_arn, version, resolved_at, fingerprint FROM task_secrets;"
    "DROP TABLE task_secrets;"
    "ALTER TABLE task_secrets_3 RENAME TO task_secrets;",
    /* 4: when a service went INACTIVE, so that its retention does not start
     * again when the agent restarts (0: not INACTIVE, or not known) */
    "ALTER TABLE services ADD COLUMN inactive_at INTEGER NOT NULL DEFAULT 0;",
    /* 5: ECS tags of task definitions, tasks and services (issue 21), under
     * the resource part of their ARN (task-definition/F:R, task/C/ID,
     * service/C/N); a definition's tags registered before are copied out of
     * its body; when a service last redeployed itself on rotation */
    "CREATE TABLE resource_tags ("
    "  resource TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (resource, key));"
    "INSERT OR IGNORE INTO resource_tags (resource, key, value)"
    "  SELECT 'task-definition/' || t.family || ':' || t.revision,"
    "         json_extract(j.value, '$.key'), coalesce(json_extract(j.value, '$.value'), '')"
    "  FROM taskdefs t, json_each(t.body, '$.tags') j"
    "  WHERE json_valid(t.body) AND json_type(t.body, '$.tags') = 'array'"
    "    AND json_type(j.value, '$.key') = 'text';"
    "ALTER TABLE services ADD COLUMN redeployed_at INTEGER NOT NULL DEFAULT 0;",
};
_Static_assert(sizeof migrations / sizeof *migrations == AG_STORE_SCHEMA_VERSION,
               "AG_STORE_SCHEMA_VERSION must equal the number of migrations");

static int set_err(ag_store *st, int ret, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_err(ag_store *st, int ret, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
    return ret;
}

static int sq(ag_store *st, const char *what)
{
    return set_err(st, -EIO, "%s: %s", what, sqlite3_errmsg(st->db));
}

static int exec(ag_store *st, const char *sql)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq(st, "exec");
    return 0;
}

static int prepare(ag_store *st, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK)
        return sq(st, "prepare");
    return 0;
}

static void rollback(ag_store *st)
{
    (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* synchronous FULL (a commit waits for the disk) or NORMAL (in WAL mode: a
 * commit is in the OS's cache when it returns, on the disk once the log is
 * synced: ag_store_tasks_put_behind). */
static int set_synchronous(ag_store *st, bool full)
{
    int r = exec(st, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    if (r == 0)
        st->sync_normal = !full;
    return r;
}

/* Every write but ag_store_tasks_put_behind's begins here: it commits
 * durably, whatever a write behind before it left. */
static int begin(ag_store *st)
{
    int r;
    if (st->sync_normal && (r = set_synchronous(st, true)))
        return r;
    return exec(st, "BEGIN IMMEDIATE");
}

static int bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

/* Runs a one-parameter DELETE (the rows of one task or service); no row is
 * fine: a put clears children before writing them again. */
static int clear_by_arn(ag_store *st, const char *sql, const char *arn, const char *what)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st, sql, &s);
    if (r)
        return r;
    bind_text(s, 1, arn);
    if (sqlite3_step(s) != SQLITE_DONE)
        r = sq(st, what);
    sqlite3_finalize(s);
    return r;
}

static int user_version(ag_store *st, int *out)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st, "PRAGMA user_version", &s);
    if (r)
        return r;
    if (sqlite3_step(s) != SQLITE_ROW) {
        r = sq(st, "user_version");
    } else {
        *out = sqlite3_column_int(s, 0);
    }
    sqlite3_finalize(s);
    return r;
}

static int migrate(ag_store *st)
{
    int v = 0;
    int r = user_version(st, &v);
    if (r)
        return r;
    if (v > AG_STORE_SCHEMA_VERSION)
        return set_err(st, -EPROTO,
                       "%s: schema version %d is newer than this agent's (%d); refusing to "
                       "open it",
                       st->path, v, AG_STORE_SCHEMA_VERSION);
    for (; v < AG_STORE_SCHEMA_VERSION; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if ((r = begin(st)))
            return r;
        if ((r = exec(st, migrations[v])) || (r = exec(st, pragma))) {
            rollback(st);
            return r;
        }
        if ((r = exec(st, "COMMIT"))) {
            rollback(st);
            return r;
        }
    }
    return 0;
}

/* Creates the file 0600 ourselves (SQLite would use 0644 & ~umask) and
 * tightens an existing one; refuses anything but a regular file. */
static int prepare_file(ag_store *st)
{
    int fd = open(st->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return set_err(st, -errno, "%s: %s", st->path, strerror(errno));
    struct stat sb;
    int r = 0;
    if (fstat(fd, &sb) < 0)
        r = set_err(st, -errno, "%s: %s", st->path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        r = set_err(st, -EINVAL, "%s: not a regular file", st->path);
    else if ((sb.st_mode & 0777) != 0600 && fchmod(fd, 0600) < 0)
        r = set_err(st, -errno, "%s: chmod 0600: %s", st->path, strerror(errno));
    close(fd);
    return r;
}

int ag_store_open(const char *dir, ag_store **out, char *err, size_t errlen)
{
    ag_store *st = es_calloc(1, sizeof *st);
    if (!st) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = 0;
    st->wal_fd = -1;
    int n = snprintf(st->path, sizeof st->path, "%s/%s", dir, AG_STORE_FILE);
    if (n < 0 || (size_t)n >= sizeof st->path) {
        r = set_err(st, -ENAMETOOLONG, "state directory path too long");
        goto fail;
    }
    if ((r = prepare_file(st)))
        goto fail;
    if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        r = set_err(st, -EIO, "%s: %s", st->path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    /* Only the opening may wait for another process's lock (briefly). After
     * it the daemon holds the database exclusively (locking_mode EXCLUSIVE,
     * as the embedded store does): no other process can take a lock that
     * would make a request wait, and the busy timeout drops to 0, so that
     * nothing ever waits on the loop thread. */
    sqlite3_busy_timeout(st->db, STORE_OPEN_BUSY_MS);
    /* WAL: readers never block the writer; FULL: a committed change survives
     * power loss; secure_delete: freed pages are zeroed. */
    sqlite3_stmt *s = NULL;
    if ((r = exec(st, "PRAGMA locking_mode = EXCLUSIVE;")))
        goto fail;
    if ((r = prepare(st, "PRAGMA journal_mode = WAL", &s)))
        goto fail;
    if (sqlite3_step(s) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
        sqlite3_finalize(s);
        r = set_err(st, -EIO, "%s: cannot switch to WAL journal mode", st->path);
        goto fail;
    }
    sqlite3_finalize(s);
    if ((r = exec(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                      "PRAGMA secure_delete = ON;")))
        goto fail;
    if ((r = migrate(st)))
        goto fail;
    sqlite3_busy_timeout(st->db, 0);
    *out = st;
    return 0;
fail:
    if (err && errlen)
        snprintf(err, errlen, "%s", st->err);
    ag_store_close(st);
    return r;
}

void ag_store_release_memory(ag_store *st)
{
    if (st && st->db)
        sqlite3_db_release_memory(st->db);
}

void ag_store_close(ag_store *st)
{
    if (!st)
        return;
    if (st->db)
        sqlite3_close_v2(st->db);
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    es_free(st);
}

const char *ag_store_path(const ag_store *st)
{
    return st->path;
}

const char *ag_store_errmsg(const ag_store *st)
{
    return st->err;
}

/* ---- task definitions ---- */

int ag_store_taskdef_last_revision(ag_store *st, const char *family, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st, "SELECT last_revision FROM taskdef_families WHERE family = ?", &s);
    if (r)
        return r;
    bind_text(s, 1, family);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE)
        *out = 0;
    else
        r = sq(st, "last revision");
    sqlite3_finalize(s);
    return r;
}

int ag_store_taskdef_register(ag_store *st, ag_taskdef *td, int64_t now)
{
    es_buf body;
    es_buf_init(&body, 4 * AG_TD_BODY_MAX);
    es_jw w;
    es_jw_init(&w, &body);
    ag_taskdef_write_request(td, &w);
    int r = es_jw_finish(&w);
    if (r) {
        es_buf_free(&body);
        return set_err(st, r, "task definition cannot be encoded");
    }
    sqlite3_stmt *s = NULL;
    int64_t rev = 0;
    if ((r = begin(st)))
        goto out;
    if ((r = prepare(st,
                     "INSERT INTO taskdef_families (family, last_revision) VALUES (?, 1) "
                     "ON CONFLICT (family) DO UPDATE SET last_revision = last_revision + 1 "
                     "RETURNING last_revision",
                     &s)))
        goto fail;
    bind_text(s, 1, td->family);
    if (sqlite3_step(s) != SQLITE_ROW) {
        r = sq(st, "next revision");
        goto fail;
    }
    rev = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    s = NULL;
    if ((r = prepare(st,
                     "INSERT INTO taskdefs (family, revision, status, registered_at, body) "
                     "VALUES (?, ?, 'ACTIVE', ?, ?)",
                     &s)))
        goto fail;
    bind_text(s, 1, td->family);
    sqlite3_bind_int64(s, 2, rev);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_text(s, 4, es_buf_cstr(&body), (int)body.len, SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE) {
        r = sq(st, "insert task definition");
        goto fail;
    }
    sqlite3_finalize(s);
    s = NULL;
    if ((r = exec(st, "COMMIT")))
        goto fail;
    td->revision = rev; /* status: ACTIVE, as parsed */
    td->registered_at = now;
    td->deregistered_at = 0;
    goto out;
fail:
    sqlite3_finalize(s);
    rollback(st);
out:
    es_buf_free(&body);
    return r;
}

/* One statement of ag_store_taskdef_put's transaction, bound from row
 * (?1 family, ?2 revision, ?3 status, ?4 registered, ?5 deregistered, ?6
 * body; a statement that names fewer leaves the others unbound: SQLite
 * refuses those binds with SQLITE_RANGE, harmlessly). */
static int put_step(ag_store *st, const char *sql, const ag_store_td_row *row, const char *what)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st, sql, &s);
    if (r)
        return r;
    bind_text(s, 1, row->family);
    sqlite3_bind_int64(s, 2, row->revision);
    sqlite3_bind_text(s, 3, row->active ? "ACTIVE" : "INACTIVE", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, row->registered_at);
    if (row->deregistered_at > 0)
        sqlite3_bind_int64(s, 5, row->deregistered_at);
    else
        sqlite3_bind_null(s, 5);
    sqlite3_bind_text(s, 6, row->body, (int)row->body_len, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        r = sq(st, what);
    sqlite3_finalize(s);
    return r;
}

int ag_store_taskdef_put(ag_store *st, const ag_store_td_row *row)
{
    if (row->body_len > (size_t)4 * AG_TD_BODY_MAX || row->revision < 1)
        return set_err(st, -EINVAL, "task definition %s: not a row to keep", row->family);
    int r = begin(st);
    if (r)
        return r;
    /* a new revision's tags come out of its body, as migration 5 copied them */
    if ((r = put_step(st,
                      "INSERT OR IGNORE INTO resource_tags (resource, key, value)"
                      "  SELECT 'task-definition/' || ?1 || ':' || ?2,"
                      "    json_extract(j.value, '$.key'), "
                      "    coalesce(json_extract(j.value, '$.value'), '')"
                      "  FROM json_each(?6, '$.tags') j"
                      "  WHERE json_valid(?6) AND json_type(?6, '$.tags') = 'array'"
                      "    AND json_type(j.value, '$.key') = 'text'"
                      "    AND NOT EXISTS (SELECT 1 FROM taskdefs WHERE family = ?1 AND "
                      "revision = ?2)",
                      row, "tags of a shared task definition")) ||
        (r = put_step(st,
                      "INSERT INTO taskdefs (family, revision, status, registered_at, "
                      "deregistered_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                      "ON CONFLICT (family, revision) DO UPDATE SET status = ?3, "
                      "registered_at = ?4, deregistered_at = ?5, body = ?6",
                      row, "put task definition")) ||
        (r = put_step(st,
                      "INSERT INTO taskdef_families (family, last_revision) "
                      "VALUES (?1, ?2) ON CONFLICT (family) DO UPDATE SET last_revision = "
                      "max(last_revision, excluded.last_revision)",
                      row, "the family's last revision")) ||
        (r = exec(st, "COMMIT"))) {
        rollback(st);
        return r;
    }
    return 0;
}

int ag_store_taskdef_get(ag_store *st, const char *family, int64_t revision, ag_taskdef **out)
{
    sqlite3_stmt *s = NULL;
    int r =
        prepare(st,
                revision > 0 ? "SELECT revision, status, registered_at, deregistered_at, body FROM "
                               "taskdefs WHERE family = ?1 AND revision = ?2"
                             : "SELECT revision, status, registered_at, deregistered_at, body FROM "
                               "taskdefs WHERE family = ?1 AND status = 'ACTIVE' "
                               "ORDER BY revision DESC LIMIT 1",
                &s);
    if (r)
        return r;
    bind_text(s, 1, family);
    if (revision > 0)
        sqlite3_bind_int64(s, 2, revision);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(s);
        return set_err(st, -ENOENT, "task definition %s:%lld not found", family,
                       (long long)revision);
    }
    if (rc != SQLITE_ROW) {
        r = sq(st, "get task definition");
        sqlite3_finalize(s);
        return r;
    }
    const char *body = (const char *)sqlite3_column_text(s, 4);
    int blen = sqlite3_column_bytes(s, 4);
    es_json *j = NULL;
    es_json_limits lim = es_json_default_limits;
    ag_taskdef *td = NULL;
    ag_td_error e;
    int jr = es_json_parse(body, (size_t)blen, &lim, &j, NULL, 0);
    if (jr == ES_JSON_E_NOMEM) {
        r = set_err(st, -ENOMEM, "out of memory");
    } else if (jr != 0) {
        r = set_err(st, -EIO, "stored task definition %s is not valid JSON", family);
    } else if ((r = ag_taskdef_from_json(j, &(ag_td_ctx){0}, &td, &e))) {
        r = set_err(st, r == -ENOMEM ? -ENOMEM : -EIO, "stored task definition: %s", e.message);
    } else {
        td->revision = sqlite3_column_int64(s, 0);
        td->registered_at = sqlite3_column_int64(s, 2);
        if (strcmp((const char *)sqlite3_column_text(s, 1), "ACTIVE") != 0)
            ag_taskdef_deregister(td, sqlite3_column_int64(s, 3));
        *out = td;
    }
    es_json_free(j);
    sqlite3_finalize(s);
    return r;
}

int ag_store_taskdef_list(ag_store *st, const char *family, const ag_td_status *status,
                          ag_store_td_fn fn, void *arg)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st,
                    "SELECT family, revision, status FROM taskdefs WHERE (?1 IS NULL OR family = "
                    "?1) AND (?2 IS NULL OR status = ?2) ORDER BY family, revision",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, family);
    bind_text(s, 2, status ? ag_td_status_name(*status) : NULL);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *st_name = (const char *)sqlite3_column_text(s, 2);
        ag_td_status ts = strcmp(st_name, "ACTIVE") == 0 ? AG_TD_ACTIVE : AG_TD_INACTIVE;
        if ((r = fn((const char *)sqlite3_column_text(s, 0), sqlite3_column_int64(s, 1), ts, arg)))
            break;
    }
    if (!r && rc != SQLITE_DONE)
        r = sq(st, "list task definitions");
    sqlite3_finalize(s);
    return r;
}

int ag_store_taskdef_deregister(ag_store *st, const char *family, int64_t revision, int64_t now)
{
    sqlite3_stmt *s = NULL;
    int r = st->sync_normal ? set_synchronous(st, true) : 0;
    if (r)
        return r;
    r = prepare(st,
                "UPDATE taskdefs SET status = 'INACTIVE', deregistered_at = "
                "COALESCE(deregistered_at, ?3) WHERE family = ?1 AND revision = ?2",
                &s);
    if (r)
        return r;
    bind_text(s, 1, family);
    sqlite3_bind_int64(s, 2, revision);
    sqlite3_bind_int64(s, 3, now);
    if (sqlite3_step(s) != SQLITE_DONE)
        r = sq(st, "deregister");
    else if (sqlite3_changes(st->db) == 0)
        r = set_err(st, -ENOENT, "task definition %s:%lld not found", family, (long long)revision);
    sqlite3_finalize(s);
    return r;
}

/* ---- tasks ---- */

static const char *target_name(ag_secret_target t)
{
    return ag_secret_target_name(t);
}

static ag_secret_target target_from(const char *s)
{
    if (strcmp(s, "environment") == 0)
        return AG_SECRET_ENV;
    if (strcmp(s, "repositoryCredentials") == 0)
        return AG_SECRET_REGISTRY;
    return AG_SECRET_LOG;
}

/* The rows of one task, inside the caller's transaction. */
static int put_task_rows(ag_store *st, const ag_task *t)
{
    sqlite3_stmt *s = NULL;
    int r;
    if ((r = prepare(st,
                     "INSERT INTO tasks (arn, family, revision, cluster, last_status, "
                     "desired_status, started_by, grp, launch_type, stopped_reason, stop_code, "
                     "created_at, pull_started_at, pull_stopped_at, started_at, stopping_at, "
                     "stopped_at, execution_stopped_at, version) VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                     "?17, ?18, ?19) ON CONFLICT (arn) DO UPDATE SET "
                     "last_status = ?5, desired_status = ?6, stopped_reason = ?10, "
                     "stop_code = ?11, pull_started_at = ?13, pull_stopped_at = ?14, "
                     "started_at = ?15, stopping_at = ?16, stopped_at = ?17, "
                     "execution_stopped_at = ?18, version = ?19",
                     &s)))
        goto fail;
    bind_text(s, 1, t->arn);
    bind_text(s, 2, t->family);
    sqlite3_bind_int64(s, 3, t->revision);
    bind_text(s, 4, t->cluster);
    bind_text(s, 5, ag_task_status_name(t->last_status));
    bind_text(s, 6, ag_task_status_name(t->desired_status));
    bind_text(s, 7, t->started_by);
    bind_text(s, 8, t->group);
    bind_text(s, 9, t->launch_type);
    bind_text(s, 10, t->stopped_reason);
    bind_text(s, 11, ag_stop_code_name(t->stop_code));
    sqlite3_bind_int64(s, 12, t->created_at);
    sqlite3_bind_int64(s, 13, t->pull_started_at);
    sqlite3_bind_int64(s, 14, t->pull_stopped_at);
    sqlite3_bind_int64(s, 15, t->started_at);
    sqlite3_bind_int64(s, 16, t->stopping_at);
    sqlite3_bind_int64(s, 17, t->stopped_at);
    sqlite3_bind_int64(s, 18, t->execution_stopped_at);
    sqlite3_bind_int64(s, 19, t->version);
    if (sqlite3_step(s) != SQLITE_DONE) {
        r = sq(st, "put task");
        goto fail;
    }
    sqlite3_finalize(s);
    s = NULL;

    if ((r = clear_by_arn(st, "DELETE FROM task_containers WHERE task_arn = ?", t->arn,
                          "put task containers")))
        goto fail;
    if ((r = prepare(st,
                     "INSERT INTO task_containers (task_arn, idx, name, image, docker_id, "
                     "last_status, exit_code, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     &s)))
        goto fail;
    for (size_t i = 0; i < t->n_containers; i++) {
        const ag_task_container *c = &t->containers[i];
        sqlite3_reset(s);
        bind_text(s, 1, t->arn);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        bind_text(s, 3, c->name);
        bind_text(s, 4, c->image);
        bind_text(s, 5, c->docker_id);
        bind_text(s, 6, c->last_status);
        if (c->has_exit_code)
            sqlite3_bind_int(s, 7, c->exit_code);
        else
            sqlite3_bind_null(s, 7);
        bind_text(s, 8, c->reason);
        if (sqlite3_step(s) != SQLITE_DONE) {
            r = sq(st, "put task container");
            goto fail;
        }
    }
    sqlite3_finalize(s);
    s = NULL;

    if ((r = clear_by_arn(st, "DELETE FROM task_secrets WHERE task_arn = ?", t->arn,
                          "put task secrets")))
        goto fail;
    if ((r = prepare(st,
                     "INSERT INTO task_secrets (task_arn, idx, container_name, target, name, "
                     "value_from, source_arn, version, resolved_at, fingerprint) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     &s)))
        goto fail;
    for (size_t i = 0; i < t->n_secrets; i++) {
        const ag_secret_meta *m = &t->secrets[i];
        sqlite3_reset(s);
        bind_text(s, 1, t->arn);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        bind_text(s, 3, m->container_name);
        bind_text(s, 4, target_name(m->target));
        bind_text(s, 5, m->name);
        bind_text(s, 6, m->value_from);
        bind_text(s, 7, m->source_arn);
        bind_text(s, 8, m->version);
        sqlite3_bind_int64(s, 9, m->resolved_at);
        bind_text(s, 10, m->fingerprint);
        if (sqlite3_step(s) != SQLITE_DONE) {
            r = sq(st, "put task secret");
            goto fail;
        }
    }
    sqlite3_finalize(s);
    return 0;
fail:
    sqlite3_finalize(s);
    return r;
}

int ag_store_tasks_put(ag_store *st, const ag_task *const *ts, size_t n)
{
    int r;
    if ((r = begin(st)))
        return r;
    for (size_t i = 0; i < n; i++)
        if ((r = put_task_rows(st, ts[i]))) {
            rollback(st);
            return r;
        }
    if ((r = exec(st, "COMMIT"))) {
        rollback(st);
        return r;
    }
    return 0;
}

int ag_store_task_put(ag_store *st, const ag_task *t)
{
    return ag_store_tasks_put(st, &t, 1);
}

int ag_store_tasks_put_behind(ag_store *st, const ag_task *const *ts, size_t n)
{
    int r = set_synchronous(st, false);
    if (r)
        return r;
    r = exec(st, "BEGIN IMMEDIATE");
    for (size_t i = 0; r == 0 && i < n; i++)
        r = put_task_rows(st, ts[i]);
    if (r == 0)
        r = exec(st, "COMMIT");
    if (r)
        rollback(st);
    /* FULL again; should that fail, the next durable write sets it (begin) */
    (void)set_synchronous(st, true);
    return r;
}

int ag_store_sync_fd(ag_store *st)
{
    if (st->wal_fd >= 0)
        return st->wal_fd;
    char wal[PATH_MAX + 8];
    int n = snprintf(wal, sizeof wal, "%s-wal", st->path);
    if (n < 0 || (size_t)n >= sizeof wal)
        return set_err(st, -ENAMETOOLONG, "%s-wal: path too long", st->path);
    /* fdatasync flushes the file, not the descriptor: ours, read-only,
     * syncs what SQLite's wrote */
    int fd = open(wal, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return set_err(st, -errno, "%s: %s", wal, strerror(errno));
    st->wal_fd = fd;
    return fd;
}

static char *col_dup(sqlite3_stmt *s, int i, bool *oom)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    if (!v)
        return NULL;
    char *d = es_strdup((const char *)v);
    if (!d)
        *oom = true;
    return d;
}

#define TASK_COLS                                                                                  \
    "arn, family, revision, cluster, last_status, desired_status, started_by, grp, "               \
    "launch_type, stopped_reason, stop_code, created_at, pull_started_at, pull_stopped_at, "       \
    "started_at, stopping_at, stopped_at, execution_stopped_at, version"

/* Builds a task from a row of TASK_COLS and its child rows. */
static int load_task(ag_store *st, sqlite3_stmt *row, ag_task **out)
{
    ag_task *t = es_calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    bool oom = false;
    int r = 0;
    sqlite3_stmt *s = NULL;
    t->arn = col_dup(row, 0, &oom);
    t->family = col_dup(row, 1, &oom);
    t->revision = sqlite3_column_int64(row, 2);
    t->started_by = col_dup(row, 6, &oom);
    t->group = col_dup(row, 7, &oom);
    t->launch_type = col_dup(row, 8, &oom);
    t->stopped_reason = col_dup(row, 9, &oom);
    t->created_at = sqlite3_column_int64(row, 11);
    t->pull_started_at = sqlite3_column_int64(row, 12);
    t->pull_stopped_at = sqlite3_column_int64(row, 13);
    t->started_at = sqlite3_column_int64(row, 14);
    t->stopping_at = sqlite3_column_int64(row, 15);
    t->stopped_at = sqlite3_column_int64(row, 16);
    t->execution_stopped_at = sqlite3_column_int64(row, 17);
    t->version = sqlite3_column_int64(row, 18);
    if (oom || !t->arn || !t->family) {
        r = oom ? -ENOMEM : set_err(st, -EIO, "stored task lacks its ARN or family");
        goto fail;
    }
    char region[256], account[256], cluster[256], id[256];
    if (ag_task_arn_split(t->arn, region, account, cluster, id, sizeof region) != 0) {
        r = set_err(st, -EIO, "stored task has a malformed ARN");
        goto fail;
    }
    t->region = es_strdup(region);
    t->account = es_strdup(account);
    t->cluster = es_strdup(cluster);
    t->id = es_strdup(id);
    if (!t->region || !t->account || !t->cluster || !t->id) {
        r = -ENOMEM;
        goto fail;
    }
    if (ag_task_status_parse((const char *)sqlite3_column_text(row, 4), &t->last_status) ||
        ag_task_status_parse((const char *)sqlite3_column_text(row, 5), &t->desired_status) ||
        ag_stop_code_parse((const char *)sqlite3_column_text(row, 10), &t->stop_code)) {
        r = set_err(st, -EIO, "stored task %s has an unknown status or stop code", t->id);
        goto fail;
    }

    if ((r = prepare(st,
                     "SELECT name, image, docker_id, last_status, exit_code, reason FROM "
                     "task_containers WHERE task_arn = ? ORDER BY idx",
                     &s)))
        goto fail;
    bind_text(s, 1, t->arn);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        if ((r = ag_task_add_container(t, name, (const char *)sqlite3_column_text(s, 1))))
            goto fail;
        int exit_code = sqlite3_column_int(s, 4);
        bool has_exit = sqlite3_column_type(s, 4) != SQLITE_NULL;
        if ((r = ag_task_container_update(t, name, (const char *)sqlite3_column_text(s, 2),
                                          (const char *)sqlite3_column_text(s, 3),
                                          has_exit ? &exit_code : NULL,
                                          (const char *)sqlite3_column_text(s, 5))))
            goto fail;
    }
    if (rc != SQLITE_DONE) {
        r = sq(st, "load task containers");
        goto fail;
    }
    sqlite3_finalize(s);
    s = NULL;

    if ((r = prepare(st,
                     "SELECT container_name, target, name, value_from, source_arn, version, "
                     "resolved_at, fingerprint FROM task_secrets WHERE task_arn = ? "
                     "ORDER BY idx",
                     &s)))
        goto fail;
    bind_text(s, 1, t->arn);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *target = (const char *)sqlite3_column_text(s, 1);
        if ((r = ag_task_add_secret_meta(
                 t, (const char *)sqlite3_column_text(s, 0), target_from(target ? target : ""),
                 (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3),
                 (const char *)sqlite3_column_text(s, 4), (const char *)sqlite3_column_text(s, 5),
                 sqlite3_column_int64(s, 6), (const char *)sqlite3_column_text(s, 7))))
            goto fail;
    }
    if (rc != SQLITE_DONE) {
        r = sq(st, "load task secrets");
        goto fail;
    }
    sqlite3_finalize(s);
    *out = t;
    return 0;
fail:
    sqlite3_finalize(s);
    ag_task_free(t);
    return r;
}

int ag_store_task_commit(void *store, const ag_task *t)
{
    return ag_store_task_put(store, t);
}

int ag_store_task_get(ag_store *st, const char *arn, ag_task **out)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st, "SELECT " TASK_COLS " FROM tasks WHERE arn = ?", &s);
    if (r)
        return r;
    bind_text(s, 1, arn);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        r = load_task(st, s, out);
    else if (rc == SQLITE_DONE)
        r = set_err(st, -ENOENT, "task not found");
    else
        r = sq(st, "get task");
    sqlite3_finalize(s);
    return r;
}

int ag_store_task_foreach(ag_store *st, bool include_stopped, ag_store_task_fn fn, void *arg)
{
    sqlite3_stmt *s = NULL;
    int r =
        prepare(st,
                include_stopped ? "SELECT " TASK_COLS " FROM tasks ORDER BY created_at, rowid"
                                : "SELECT " TASK_COLS " FROM tasks WHERE last_status <> 'STOPPED' "
                                  "ORDER BY created_at, rowid",
                &s);
    if (r)
        return r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ag_task *t = NULL;
        if ((r = load_task(st, s, &t)))
            break;
        if ((r = fn(t, arg)))
            break;
    }
    if (!r && rc != SQLITE_DONE)
        r = sq(st, "list tasks");
    sqlite3_finalize(s);
    return r;
}

/* One row by ARN; what names it in errors ("task", "service"). */
static int delete_by_arn(ag_store *st, const char *sql, const char *arn, const char *what)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st, sql, &s);
    if (r)
        return r;
    bind_text(s, 1, arn);
    if (sqlite3_step(s) != SQLITE_DONE)
        r = set_err(st, -EIO, "delete %s: %s", what, sqlite3_errmsg(st->db));
    else if (sqlite3_changes(st->db) == 0)
        r = set_err(st, -ENOENT, "%s not found", what);
    sqlite3_finalize(s);
    return r;
}

static int step_done(ag_store *st, sqlite3_stmt *s, const char *what)
{
    return sqlite3_step(s) == SQLITE_DONE ? 0 : sq(st, what);
}

/* A row and its tags, in one transaction. */
static int delete_with_tags(ag_store *st, const char *sql, const char *arn, const char *what)
{
    int r = begin(st);
    if (r)
        return r;
    if ((r = delete_by_arn(st, sql, arn, what)) ||
        (r = clear_by_arn(st, "DELETE FROM resource_tags WHERE resource = ?",
                          ag_store_tag_resource(arn), "delete tags")) ||
        (r = exec(st, "COMMIT"))) {
        rollback(st);
        return r;
    }
    return 0;
}

int ag_store_task_delete(ag_store *st, const char *arn)
{
    return delete_with_tags(st, "DELETE FROM tasks WHERE arn = ?", arn, "task");
}

/* ---- tags ---- */

const char *ag_store_tag_resource(const char *arn)
{
    /* arn:PARTITION:ecs:REGION:ACCOUNT:RESOURCE */
    const char *p = arn;
    for (int colons = 0; p && colons < 5; colons++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    return p && *p ? p : arn;
}

/* Replaces the tags of arn's resource; inside the caller's transaction. */
static int tags_write(ag_store *st, const char *arn, const ag_tags *t)
{
    const char *res = ag_store_tag_resource(arn);
    int r = clear_by_arn(st, "DELETE FROM resource_tags WHERE resource = ?", res, "put tags");
    sqlite3_stmt *s = NULL;
    if (r || t->n == 0 ||
        (r = prepare(st, "INSERT INTO resource_tags (resource, key, value) VALUES (?, ?, ?)", &s)))
        return r;
    for (size_t i = 0; r == 0 && i < t->n; i++) {
        sqlite3_reset(s);
        bind_text(s, 1, res);
        bind_text(s, 2, t->items[i].key);
        bind_text(s, 3, t->items[i].value);
        r = step_done(st, s, "put tag");
    }
    sqlite3_finalize(s);
    return r;
}

int ag_store_tags_set(ag_store *st, const char *arn, const ag_tags *t)
{
    int r = begin(st);
    if (r)
        return r;
    if ((r = tags_write(st, arn, t)) || (r = exec(st, "COMMIT"))) {
        rollback(st);
        return r;
    }
    return 0;
}

int ag_store_tags_get(ag_store *st, const char *arn, ag_tags *out)
{
    ag_tags_clear(out);
    sqlite3_stmt *s = NULL;
    int r =
        prepare(st, "SELECT key, value FROM resource_tags WHERE resource = ? ORDER BY rowid", &s);
    if (r)
        return r;
    bind_text(s, 1, ag_store_tag_resource(arn));
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && out->n < AG_TAGS_MAX) {
        ag_tag *t = &out->items[out->n++];
        t->key = es_strdup((const char *)sqlite3_column_text(s, 0));
        t->value = es_strdup((const char *)sqlite3_column_text(s, 1));
        if (!t->key || !t->value) {
            r = -ENOMEM;
            break;
        }
    }
    if (!r && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sq(st, "get tags");
    sqlite3_finalize(s);
    if (r)
        ag_tags_clear(out);
    return r;
}

/* ---- services ---- */

int ag_store_service_put(ag_store *st, const ag_service *v)
{
    sqlite3_stmt *s = NULL;
    int r;
    if ((r = begin(st)))
        return r;
    if ((r = prepare(st,
                     "INSERT INTO services (arn, name, cluster, status, family, "
                     "revision, desired, max_percent, min_healthy, cb_enable, cb_rollback, "
                     "created_at, steady, inactive_at, redeployed_at) VALUES (?1, ?2, ?3, ?4, "
                     "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) ON CONFLICT (arn) DO "
                     "UPDATE SET status = ?4, family = ?5, revision = ?6, desired = ?7, "
                     "max_percent = ?8, min_healthy = ?9, cb_enable = ?10, cb_rollback = ?11, "
                     "steady = ?13, inactive_at = ?14, redeployed_at = ?15",
                     &s)))
        goto fail;
    bind_text(s, 1, v->arn);
    bind_text(s, 2, v->name);
    bind_text(s, 3, v->cluster);
    bind_text(s, 4, ag_svc_status_name(v->status));
    bind_text(s, 5, v->family);
    sqlite3_bind_int64(s, 6, v->revision);
    sqlite3_bind_int(s, 7, v->desired);
    sqlite3_bind_int(s, 8, v->max_percent);
    sqlite3_bind_int(s, 9, v->min_healthy_percent);
    sqlite3_bind_int(s, 10, v->cb_enable);
    sqlite3_bind_int(s, 11, v->cb_rollback);
    sqlite3_bind_int64(s, 12, v->created_at);
    sqlite3_bind_int(s, 13, v->steady);
    sqlite3_bind_int64(s, 14, v->inactive_at);
    sqlite3_bind_int64(s, 15, v->redeployed_at);
    if ((r = step_done(st, s, "put service")))
        goto fail;
    sqlite3_finalize(s);
    s = NULL;
    if ((r = tags_write(st, v->arn, &v->tags)))
        goto fail;
    if ((r = clear_by_arn(st, "DELETE FROM service_deployments WHERE service_arn = ?", v->arn,
                          "put service deployments")))
        goto fail;
    if ((r = prepare(st,
                     "INSERT INTO service_deployments (service_arn, idx, id, status, family, "
                     "revision, desired, rollout, rollout_reason, created_at, updated_at) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     &s)))
        goto fail;
    for (size_t i = 0; i < v->n_deps; i++) {
        const ag_svc_deployment *d = &v->deps[i];
        sqlite3_reset(s);
        bind_text(s, 1, v->arn);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        bind_text(s, 3, d->id);
        bind_text(s, 4, ag_dep_status_name(d->status));
        bind_text(s, 5, d->family);
        sqlite3_bind_int64(s, 6, d->revision);
        sqlite3_bind_int(s, 7, d->desired);
        bind_text(s, 8, ag_rollout_name(d->rollout));
        bind_text(s, 9, d->rollout_reason);
        sqlite3_bind_int64(s, 10, d->created_at);
        sqlite3_bind_int64(s, 11, d->updated_at);
        if ((r = step_done(st, s, "put service deployment")))
            goto fail;
    }
    sqlite3_finalize(s);
    s = NULL;
    if ((r = clear_by_arn(st, "DELETE FROM service_events WHERE service_arn = ?", v->arn,
                          "put service events")))
        goto fail;
    if ((r = prepare(st,
                     "INSERT INTO service_events (service_arn, idx, id, created_at, message) "
                     "VALUES (?, ?, ?, ?, ?)",
                     &s)))
        goto fail;
    for (size_t i = 0; i < v->n_events; i++) {
        sqlite3_reset(s);
        bind_text(s, 1, v->arn);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        bind_text(s, 3, v->events[i].id);
        sqlite3_bind_int64(s, 4, v->events[i].created_ms);
        bind_text(s, 5, v->events[i].message);
        if ((r = step_done(st, s, "put service event")))
            goto fail;
    }
    sqlite3_finalize(s);
    s = NULL;
    if ((r = exec(st, "COMMIT")))
        goto fail;
    return 0;
fail:
    sqlite3_finalize(s);
    rollback(st);
    return r;
}

static int load_service_children(ag_store *st, ag_service *v)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st,
                    "SELECT id, status, family, revision, desired, rollout, rollout_reason, "
                    "created_at, updated_at FROM service_deployments WHERE service_arn = ? "
                    "ORDER BY idx",
                    &s);
    if (r)
        return r;
    bind_text(s, 1, v->arn);
    int rc;
    bool oom = false;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && v->n_deps < AG_SVC_DEPLOYMENTS_MAX) {
        ag_svc_deployment *d = &v->deps[v->n_deps++];
        memset(d, 0, sizeof *d);
        snprintf(d->id, sizeof d->id, "%s", (const char *)sqlite3_column_text(s, 0));
        const char *stn = (const char *)sqlite3_column_text(s, 1);
        d->status = strcmp(stn, "PRIMARY") == 0  ? AG_DEP_PRIMARY
                    : strcmp(stn, "ACTIVE") == 0 ? AG_DEP_ACTIVE
                                                 : AG_DEP_INACTIVE;
        d->family = col_dup(s, 2, &oom);
        d->revision = sqlite3_column_int64(s, 3);
        d->desired = sqlite3_column_int(s, 4);
        if (ag_rollout_parse((const char *)sqlite3_column_text(s, 5), &d->rollout) < 0)
            d->rollout = AG_ROLLOUT_IN_PROGRESS;
        d->rollout_reason = col_dup(s, 6, &oom);
        d->created_at = sqlite3_column_int64(s, 7);
        d->updated_at = sqlite3_column_int64(s, 8);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sq(st, "load service deployments");
    sqlite3_finalize(s);
    s = NULL;
    if (r || oom)
        return r ? r : -ENOMEM;
    if ((r = prepare(st,
                     "SELECT id, created_at, message FROM service_events WHERE service_arn = ? "
                     "ORDER BY idx",
                     &s)))
        return r;
    bind_text(s, 1, v->arn);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && v->n_events < AG_SVC_EVENTS_MAX) {
        ag_svc_event *e = &v->events[v->n_events];
        snprintf(e->id, sizeof e->id, "%s", (const char *)sqlite3_column_text(s, 0));
        e->created_ms = sqlite3_column_int64(s, 1);
        if (e->created_ms < 100000000000) /* rows written before milliseconds (seconds) */
            e->created_ms *= 1000;
        e->message = col_dup(s, 2, &oom);
        if (!e->message)
            break;
        v->n_events++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = sq(st, "load service events");
    sqlite3_finalize(s);
    return r ? r : oom ? -ENOMEM : 0;
}

int ag_store_service_foreach(ag_store *st, ag_store_service_fn fn, void *arg)
{
    sqlite3_stmt *s = NULL;
    int r = prepare(st,
                    "SELECT arn, name, cluster, status, family, revision, desired, max_percent, "
                    "min_healthy, cb_enable, cb_rollback, created_at, steady, inactive_at, "
                    "redeployed_at FROM services ORDER BY created_at, rowid",
                    &s);
    if (r)
        return r;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *arn = (const char *)sqlite3_column_text(s, 0);
        /* arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME */
        char region[64] = "", account[64] = "";
        if (sscanf(arn, "arn:aws:ecs:%63[^:]:%63[^:]:", region, account) != 2) {
            r = set_err(st, -EIO, "stored service has a malformed ARN");
            break;
        }
        ag_service *v = NULL;
        r = ag_service_new(region, account, (const char *)sqlite3_column_text(s, 2),
                           (const char *)sqlite3_column_text(s, 1),
                           (const char *)sqlite3_column_text(s, 4), sqlite3_column_int64(s, 5),
                           sqlite3_column_int(s, 6), sqlite3_column_int(s, 7),
                           sqlite3_column_int(s, 8), sqlite3_column_int(s, 9) != 0,
                           sqlite3_column_int(s, 10) != 0, sqlite3_column_int64(s, 11), &v);
        if (r) {
            r = r == -ENOMEM ? r : set_err(st, -EIO, "stored service is not valid");
            break;
        }
        if (ag_svc_status_parse((const char *)sqlite3_column_text(s, 3), &v->status) < 0)
            v->status = AG_SVC_ACTIVE;
        v->steady = sqlite3_column_int(s, 12) != 0;
        v->inactive_at = v->status == AG_SVC_INACTIVE ? sqlite3_column_int64(s, 13) : 0;
        v->redeployed_at = sqlite3_column_int64(s, 14);
        /* the deployments come from their table, not from ag_service_new */
        for (size_t i = 0; i < v->n_deps; i++) {
            es_free(v->deps[i].family);
            es_free(v->deps[i].rollout_reason);
        }
        v->n_deps = 0;
        for (size_t i = 0; i < v->n_events; i++)
            es_free(v->events[i].message);
        v->n_events = 0;
        if ((r = load_service_children(st, v)) || (r = ag_store_tags_get(st, v->arn, &v->tags))) {
            ag_service_free(v);
            break;
        }
        if ((r = fn(v, arg)))
            break;
    }
    if (!r && rc != SQLITE_DONE)
        r = sq(st, "list services");
    sqlite3_finalize(s);
    return r;
}

int ag_store_service_delete(ag_store *st, const char *arn)
{
    return delete_with_tags(st, "DELETE FROM services WHERE arn = ?", arn, "service");
}

/* ---- fingerprint key ---- */

static int read_key(int fd, unsigned char *key)
{
    size_t got = 0;
    while (got < AG_FINGERPRINT_KEY_LEN) {
        ssize_t n = read(fd, key + got, AG_FINGERPRINT_KEY_LEN - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EIO;
        got += (size_t)n;
    }
    char extra;
    return read(fd, &extra, 1) == 0 ? 0 : -EIO;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int ag_fingerprint_key_load(const char *dir, unsigned char out[AG_FINGERPRINT_KEY_LEN])
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, AG_FINGERPRINT_KEY_FILE);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    unsigned char key[AG_FINGERPRINT_KEY_LEN];
    int r = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        r = read_key(fd, key);
        close(fd);
    } else if (errno == ENOENT) {
        /* create it under a temporary name, then link: never a half-written key */
        char tmp[PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        (void)unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        r = es_random_bytes(key, sizeof key);
        if (!r)
            r = write_all(fd, key, sizeof key);
        if (!r && fsync(fd) < 0)
            r = -errno;
        close(fd);
        if (!r && link(tmp, path) < 0) {
            r = -errno;
            if (r == -EEXIST) {
                /* someone else made it first: use theirs */
                (void)unlink(tmp);
                es_wipe(key, sizeof key);
                return ag_fingerprint_key_load(dir, out);
            }
        }
        (void)unlink(tmp);
    } else {
        return -errno;
    }
    if (!r)
        memcpy(out, key, sizeof key);
    es_wipe(key, sizeof key);
    return r;
}
