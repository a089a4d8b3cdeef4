#include <criterion/criterion.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/secrets/inject.h"
#include "agent/services/service.h"
#include "agent/store/store.h"
#include "common/alloc.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/es-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store, .init = setup, .fini = teardown);

static ag_store *open_ok(void)
{
    ag_store *st = NULL;
    char err[AG_STORE_ERR_MAX];
    int r = ag_store_open(dir, &st, err, sizeof err);
    cr_assert_eq(r, 0, "open: %d %s", r, err);
    return st;
}

static ag_taskdef *td_parse(const char *body)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0, "%s", e.message);
    return td;
}

#define TD_BODY                                                                                    \
    "{\"family\":\"web\",\"executionRoleArn\":\"arn:aws:iam::123456789012:role/exec\","            \
    "\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","                           \
    "\"environment\":[{\"name\":\"MODE\",\"value\":\"prod\"}],"                                    \
    "\"secrets\":[{\"name\":\"DB_PASSWORD\",\"valueFrom\":\"/test/database_password\"}],"          \
    "\"logConfiguration\":{\"logDriver\":\"fluentd\",\"options\":{\"tag\":\"t\"},"                 \
    "\"secretOptions\":[{\"name\":\"fluentd-address\",\"valueFrom\":\"/test/fluentd\"}]}}]}"

static void exec_sql(const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/agent.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_close(db);
}

static int int_pragma(const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/agent.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    int v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

Test(store, file_mode_wal_and_schema_version)
{
    ag_store *st = open_ok();
    char path[128];
    snprintf(path, sizeof path, "%s/agent.db", dir);
    cr_assert_str_eq(ag_store_path(st), path);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    ag_taskdef *td = td_parse(TD_BODY);
    cr_assert_eq(ag_store_taskdef_register(st, td, 100), 0);
    ag_taskdef_free(td);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", path);
    cr_assert_eq(stat(wal, &sb), 0, "WAL mode keeps a -wal file while open");
    cr_assert_eq(sb.st_mode & 0777, 0600, "the WAL file has the database's mode");
    ag_store_close(st);
    cr_assert_eq(int_pragma("PRAGMA user_version"), AG_STORE_SCHEMA_VERSION);
    /* journal_mode=WAL is persistent in the file */
    char jm[16] = "";
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    snprintf(jm, sizeof jm, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    cr_assert_str_eq(jm, "wal");
}

Test(store, loose_mode_is_tightened_and_non_files_refused)
{
    char path[128];
    snprintf(path, sizeof path, "%s/agent.db", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    chmod(path, 0644);
    ag_store *st = open_ok();
    struct stat sb;
    stat(path, &sb);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    ag_store_close(st);
    unlink(path);
    mkdir(path, 0700);
    char err[AG_STORE_ERR_MAX] = "";
    cr_assert_lt(ag_store_open(dir, &st, err, sizeof err), 0);
    cr_assert_neq(err[0], '\0');
}

Test(store, newer_schema_is_refused)
{
    ag_store_close(open_ok());
    exec_sql("PRAGMA user_version = 99");
    ag_store *st = NULL;
    char err[AG_STORE_ERR_MAX] = "";
    cr_assert_eq(ag_store_open(dir, &st, err, sizeof err), -EPROTO);
    cr_assert_not_null(strstr(err, "newer"), "%s", err);
    cr_assert_null(st);
}

Test(store, revisions_start_at_1_and_are_never_reused)
{
    ag_store *st = open_ok();
    int64_t last = -1;
    cr_assert_eq(ag_store_taskdef_last_revision(st, "web", &last), 0);
    cr_assert_eq(last, 0);
    for (int64_t want = 1; want <= 3; want++) {
        ag_taskdef *td = td_parse(TD_BODY);
        cr_assert_eq(ag_store_taskdef_register(st, td, 100 + want), 0);
        cr_assert_eq(td->revision, want);
        cr_assert_eq(td->status, AG_TD_ACTIVE);
        cr_assert_eq(td->registered_at, 100 + want);
        ag_taskdef_free(td);
    }
    cr_assert_eq(ag_store_taskdef_deregister(st, "web", 3, 200), 0);
    cr_assert_eq(ag_store_taskdef_deregister(st, "web", 9, 200), -ENOENT);
    ag_store_close(st);
    /* even if the rows are gone, the counter is not */
    exec_sql("DELETE FROM taskdefs WHERE revision = 3");
    st = open_ok();
    ag_taskdef *td = td_parse(TD_BODY);
    cr_assert_eq(ag_store_taskdef_register(st, td, 300), 0);
    cr_assert_eq(td->revision, 4, "revision 3 was handed out once: never again");
    ag_taskdef_free(td);
    /* another family counts on its own */
    td = td_parse("{\"family\":\"other\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":"
                  "\"i\"}]}");
    cr_assert_eq(ag_store_taskdef_register(st, td, 300), 0);
    cr_assert_eq(td->revision, 1);
    ag_taskdef_free(td);
    cr_assert_eq(ag_store_taskdef_last_revision(st, "web", &last), 0);
    cr_assert_eq(last, 4);
    ag_store_close(st);
}

Test(store, task_definitions_survive_close_and_reopen)
{
    ag_store *st = open_ok();
    ag_taskdef *td = td_parse(TD_BODY);
    cr_assert_eq(ag_store_taskdef_register(st, td, 1234), 0);
    ag_taskdef *td2 = td_parse(TD_BODY);
    cr_assert_eq(ag_store_taskdef_register(st, td2, 1300), 0);
    cr_assert_eq(ag_store_taskdef_deregister(st, "web", 2, 1400), 0);
    ag_store_close(st);

    st = open_ok();
    ag_taskdef *got = NULL;
    cr_assert_eq(ag_store_taskdef_get(st, "web", 0, &got), 0);
    cr_assert_eq(got->revision, 1, "latest ACTIVE");
    cr_assert_eq(got->registered_at, 1234);
    cr_assert_eq(got->status, AG_TD_ACTIVE);
    cr_assert_str_eq(got->execution_role_arn, td->execution_role_arn);
    cr_assert_eq(got->n_containers, 1);
    const ag_container_def *c = &got->containers[0];
    cr_assert_str_eq(c->secrets[0].value_from, "/test/database_password");
    cr_assert_str_eq(c->log->secret_options[0].name, "fluentd-address");
    cr_assert_str_eq(c->environment[0].value, "prod");
    ag_taskdef_free(got);
    cr_assert_eq(ag_store_taskdef_get(st, "web", 2, &got), 0);
    cr_assert_eq(got->status, AG_TD_INACTIVE);
    cr_assert_eq(got->deregistered_at, 1400);
    ag_taskdef_free(got);
    got = (ag_taskdef *)0x1;
    cr_assert_eq(ag_store_taskdef_get(st, "web", 7, &got), -ENOENT);
    cr_assert_eq(ag_store_taskdef_get(st, "none", 0, &got), -ENOENT);
    cr_assert_eq(got, (ag_taskdef *)0x1);
    ag_store_close(st);
    ag_taskdef_free(td);
    ag_taskdef_free(td2);
}

static ag_task *sample_task(void)
{
    ag_task *t = NULL;
    cr_assert_eq(ag_task_create("us-east-1", "123456789012", "default", "web", 1, "svc:web",
                                "service:web", NULL, 1000, &t),
                 0);
    cr_assert_eq(ag_task_add_container(t, "app", "busybox"), 0);
    cr_assert_eq(ag_task_add_container(t, "side", "busybox"), 0);
    int code = 3;
    cr_assert_eq(ag_task_container_update(t, "side", "cafe", "STOPPED", &code, "Exited (3)"), 0);
    cr_assert_eq(ag_task_add_secret_meta(t, "app", AG_SECRET_ENV, "DB_PASSWORD",
                                         "/test/database_password",
                                         "arn:aws:ssm:us-east-1:123456789012:parameter/test/"
                                         "database_password",
                                         "7", 1001, "hmac-sha256:00112233445566778899aabbccddeeff"),
                 0);
    cr_assert_eq(ag_task_add_secret_meta(t, "app", AG_SECRET_LOG, "fluentd-address",
                                         "/test/fluentd", NULL, "1", 1001, NULL),
                 0);
    return t;
}

Test(store, tasks_survive_close_and_reopen)
{
    ag_store *st = open_ok();
    ag_task *t = sample_task();
    cr_assert_eq(ag_task_transition(t, AG_TASK_PENDING, 1001, ag_store_task_commit, st), 0);
    cr_assert_eq(ag_task_transition(t, AG_TASK_RUNNING, 1002, ag_store_task_commit, st), 0);
    char arn[256];
    snprintf(arn, sizeof arn, "%s", t->arn);
    ag_store_close(st);

    st = open_ok();
    ag_task *g = NULL;
    cr_assert_eq(ag_store_task_get(st, arn, &g), 0);
    cr_assert_str_eq(g->arn, t->arn);
    cr_assert_str_eq(g->id, t->id);
    cr_assert_str_eq(g->region, "us-east-1");
    cr_assert_str_eq(g->account, "123456789012");
    cr_assert_str_eq(g->cluster, "default");
    cr_assert_str_eq(g->family, "web");
    cr_assert_eq(g->revision, 1);
    cr_assert_eq(g->last_status, AG_TASK_RUNNING);
    cr_assert_eq(g->desired_status, AG_TASK_RUNNING);
    cr_assert_str_eq(g->started_by, "svc:web");
    cr_assert_str_eq(g->group, "service:web");
    cr_assert_eq(g->created_at, 1000);
    cr_assert_eq(g->pull_started_at, 1001);
    cr_assert_eq(g->started_at, 1002);
    cr_assert_eq(g->version, t->version);
    cr_assert_eq(g->n_containers, 2);
    cr_assert_str_eq(g->containers[1].docker_id, "cafe");
    cr_assert(g->containers[1].has_exit_code && g->containers[1].exit_code == 3);
    cr_assert_str_eq(g->containers[1].reason, "Exited (3)");
    cr_assert_not(g->containers[0].has_exit_code);
    cr_assert_eq(g->n_secrets, 2);
    cr_assert_eq(g->secrets[0].target, AG_SECRET_ENV);
    cr_assert_str_eq(g->secrets[0].version, "7");
    cr_assert_str_eq(g->secrets[0].fingerprint, "hmac-sha256:00112233445566778899aabbccddeeff");
    cr_assert_eq(g->secrets[0].resolved_at, 1001);
    cr_assert_eq(g->secrets[1].target, AG_SECRET_LOG);
    cr_assert_null(g->secrets[1].source_arn);
    ag_task_free(g);

    /* a stop is persisted too */
    cr_assert_eq(ag_task_request_stop(t, AG_STOP_ESSENTIAL_CONTAINER_EXITED,
                                      "Essential container in task exited", ag_store_task_commit,
                                      st),
                 0);
    cr_assert_eq(ag_task_transition(t, AG_TASK_STOPPED, 1010, ag_store_task_commit, st), 0);
    ag_store_close(st);
    st = open_ok();
    cr_assert_eq(ag_store_task_get(st, arn, &g), 0);
    cr_assert_eq(g->last_status, AG_TASK_STOPPED);
    cr_assert_eq(g->stop_code, AG_STOP_ESSENTIAL_CONTAINER_EXITED);
    cr_assert_str_eq(g->stopped_reason, "Essential container in task exited");
    cr_assert_eq(g->stopped_at, 1010);
    ag_task_free(g);
    ag_task_free(t);
    ag_store_close(st);
}

static int collect(ag_task *t, void *arg)
{
    int *n = arg;
    (*n)++;
    ag_task_free(t);
    return 0;
}

static int stop_at_first(ag_task *t, void *arg)
{
    (void)arg;
    ag_task_free(t);
    return 42;
}

Test(store, foreach_and_delete)
{
    ag_store *st = open_ok();
    ag_task *a = sample_task(), *b = sample_task();
    cr_assert_eq(ag_store_task_put(st, a), 0);
    cr_assert_eq(ag_task_transition(b, AG_TASK_STOPPED, 1005, ag_store_task_commit, st), 0);
    int n = 0;
    cr_assert_eq(ag_store_task_foreach(st, false, collect, &n), 0);
    cr_assert_eq(n, 1, "running ones only");
    n = 0;
    cr_assert_eq(ag_store_task_foreach(st, true, collect, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(ag_store_task_foreach(st, true, stop_at_first, NULL), 42);
    cr_assert_eq(ag_store_task_delete(st, a->arn), 0);
    cr_assert_eq(ag_store_task_delete(st, a->arn), -ENOENT);
    ag_task *g = NULL;
    cr_assert_eq(ag_store_task_get(st, a->arn, &g), -ENOENT);
    ag_store_close(st);
    /* child rows went with it */
    cr_assert_eq(int_pragma("SELECT count(*) FROM task_containers"), 2);
    cr_assert_eq(int_pragma("SELECT count(*) FROM task_secrets"), 2);
    ag_task_free(a);
    ag_task_free(b);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    bool found = memmem(buf, got, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

/* The whole path a value takes on our side - json-key extraction, injection,
 * fingerprint, metadata - and then the database files are scanned for it. */
Test(store, database_never_holds_a_secret_value)
{
    static const char value[] = "S3cr3t-Value-7f3a9c-For-The-Scan";
    ag_store *st = open_ok();
    ag_taskdef *td = td_parse(TD_BODY);
    cr_assert_eq(ag_store_taskdef_register(st, td, 100), 0);
    ag_task *t = NULL;
    cr_assert_eq(ag_task_create("us-east-1", "123456789012", "default", td->family, td->revision,
                                NULL, NULL, NULL, 1000, &t),
                 0);
    cr_assert_eq(ag_task_add_container(t, "app", "busybox"), 0);

    /* the SecretString a store would answer, and the json-key extraction */
    es_buf secret_string, extracted;
    es_buf_init(&secret_string, 4096);
    es_buf_init(&extracted, 4096);
    es_buf_printf(&secret_string, "{\"password\":\"%s\",\"user\":\"u\"}", value);
    char err[256];
    cr_assert_eq(ag_secret_json_key(secret_string.data, secret_string.len, "password", &extracted,
                                    err, sizeof err),
                 0);
    ag_secret_value vals[] = {
        {.target = AG_SECRET_ENV,
         .name = "DB_PASSWORD",
         .value = extracted.data,
         .len = extracted.len},
        {.target = AG_SECRET_LOG,
         .name = "fluentd-address",
         .value = value,
         .len = sizeof value - 1},
    };
    ag_inject_ctx ictx = {
        .task_arn = t->arn, .cluster = "default", .family = td->family, .revision = td->revision};
    ag_create_params *p = NULL;
    cr_assert_eq(ag_inject_build(&td->containers[0], NULL, vals, 2, &ictx, &p, err, sizeof err), 0,
                 "%s", err);
    char fp[AG_FINGERPRINT_LEN + 1];
    static const unsigned char key[32] = {1, 2, 3};
    cr_assert_eq(
        ag_secret_fingerprint(key, sizeof key, extracted.data, extracted.len, fp, sizeof fp), 0);
    cr_assert_eq(ag_task_add_secret_meta(t, "app", AG_SECRET_ENV, "DB_PASSWORD",
                                         "/test/database_password",
                                         "arn:aws:ssm:us-east-1:123456789012:parameter/test/"
                                         "database_password",
                                         "3", 1001, fp),
                 0);
    cr_assert_eq(ag_task_transition(t, AG_TASK_PENDING, 1001, ag_store_task_commit, st), 0);
    cr_assert_eq(ag_task_transition(t, AG_TASK_RUNNING, 1002, ag_store_task_commit, st), 0);
    char reason[AG_REASON_BUF];
    ag_secret_failure f = {.service = "ssm",
                           .region = "us-east-1",
                           .secret = "/test/database_password",
                           .aws_code = "Throttling"};
    ag_reason_secret_failure(reason, sizeof reason, &f);
    cr_assert_eq(
        ag_task_request_stop(t, AG_STOP_TASK_FAILED_TO_START, reason, ag_store_task_commit, st), 0);
    ag_create_params_free(p);
    es_buf_free_secret(&secret_string);
    es_buf_free_secret(&extracted);

    char db[128], wal[140];
    snprintf(db, sizeof db, "%s/agent.db", dir);
    snprintf(wal, sizeof wal, "%s/agent.db-wal", dir);
    /* before and after the checkpoint that closing runs */
    cr_assert(file_contains(wal, "/test/database_password") || file_contains(db, "/test/"),
              "the scan reads the files the store writes");
    cr_assert_not(file_contains(db, value));
    cr_assert_not(file_contains(wal, value));
    ag_store_close(st);
    cr_assert(file_contains(db, "/test/database_password"), "references are kept");
    cr_assert(file_contains(db, fp), "the fingerprint is kept");
    cr_assert_not(file_contains(db, value), "the value is not");
    ag_task_free(t);
    ag_taskdef_free(td);
}

Test(store, fingerprint_key_is_created_once_and_private)
{
    unsigned char a[AG_FINGERPRINT_KEY_LEN], b[AG_FINGERPRINT_KEY_LEN];
    memset(a, 0, sizeof a);
    cr_assert_eq(ag_fingerprint_key_load(dir, a), 0);
    static const unsigned char zero[AG_FINGERPRINT_KEY_LEN];
    cr_assert_neq(memcmp(a, zero, sizeof a), 0);
    cr_assert_eq(ag_fingerprint_key_load(dir, b), 0);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "the same key on every start");
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, AG_FINGERPRINT_KEY_FILE);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    cr_assert_eq(sb.st_size, AG_FINGERPRINT_KEY_LEN);
    /* a truncated key file is an error, not a silently weaker key */
    cr_assert_eq(truncate(path, 10), 0);
    memset(b, 0x77, sizeof b);
    cr_assert_eq(ag_fingerprint_key_load(dir, b), -EIO);
    cr_assert_eq(b[0], 0x77, "out untouched");
}

static int td_collect(const char *family, int64_t revision, ag_td_status status, void *arg)
{
    es_buf *b = arg;
    es_buf_printf(b, "%s:%lld:%s ", family, (long long)revision, ag_td_status_name(status));
    return 0;
}

Test(store, list_task_definitions)
{
    ag_store *st = open_ok();
    for (int i = 0; i < 3; i++) {
        ag_taskdef *td = td_parse(i == 1 ? "{\"family\":\"alpha\",\"containerDefinitions\":[{"
                                           "\"name\":\"a\",\"image\":\"i\"}]}"
                                         : TD_BODY);
        cr_assert_eq(ag_store_taskdef_register(st, td, 10), 0);
        ag_taskdef_free(td);
    }
    cr_assert_eq(ag_store_taskdef_deregister(st, "web", 1, 20), 0);
    es_buf b;
    es_buf_init(&b, 4096);
    cr_assert_eq(ag_store_taskdef_list(st, NULL, NULL, td_collect, &b), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "alpha:1:ACTIVE web:1:INACTIVE web:2:ACTIVE ");
    es_buf_reset(&b);
    ag_td_status active = AG_TD_ACTIVE;
    cr_assert_eq(ag_store_taskdef_list(st, "web", &active, td_collect, &b), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "web:2:ACTIVE ");
    es_buf_free(&b);
    ag_store_close(st);
}

Test(store, allocation_failures_when_loading_are_clean)
{
    ag_store *st = open_ok();
    ag_task *t = sample_task();
    cr_assert_eq(ag_store_task_put(st, t), 0);
    ag_taskdef *td = td_parse(TD_BODY);
    cr_assert_eq(ag_store_taskdef_register(st, td, 1), 0);
    int failures = 0;
    for (long n = 0; n < 300; n++) {
        ag_task *g = NULL;
        es_alloc_fail_after(n);
        int r = ag_store_task_get(st, t->arn, &g);
        es_alloc_fail_after(-1);
        if (r == 0) {
            cr_assert_str_eq(g->arn, t->arn);
            ag_task_free(g);
            break;
        }
        cr_assert_eq(r, -ENOMEM, "n=%ld: %d %s", n, r, ag_store_errmsg(st));
        failures++;
    }
    cr_assert_gt(failures, 10);
    failures = 0;
    for (long n = 0; n < 300; n++) {
        ag_taskdef *g = NULL;
        es_alloc_fail_after(n);
        int r = ag_store_taskdef_get(st, "web", 0, &g);
        es_alloc_fail_after(-1);
        if (r == 0) {
            ag_taskdef_free(g);
            break;
        }
        cr_assert_eq(r, -ENOMEM, "n=%ld: %d %s", n, r, ag_store_errmsg(st));
        failures++;
    }
    cr_assert_gt(failures, 10);
    ag_taskdef_free(td);
    ag_task_free(t);
    ag_store_close(st);
}

/* Schema 3: task_secrets' target may be repositoryCredentials (S15). A
 * schema-2 database (the old CHECK) is migrated with its rows kept. */
Test(store, registry_credentials_metadata_and_migration_from_2)
{
    ag_store *st = open_ok();
    ag_task *t = sample_task();
    cr_assert_eq(ag_store_task_put(st, t), 0);
    ag_store_close(st);
    /* back to schema 2: the table as migration 1 made it, and no column of
     * a later migration */
    exec_sql("CREATE TABLE old_secrets ("
             "  task_arn TEXT NOT NULL REFERENCES tasks (arn) ON DELETE CASCADE,"
             "  idx INTEGER NOT NULL, container_name TEXT NOT NULL,"
             "  target TEXT NOT NULL CHECK (target IN ('environment', 'logConfiguration')),"
             "  name TEXT NOT NULL, value_from TEXT NOT NULL, source_arn TEXT, version TEXT,"
             "  resolved_at INTEGER NOT NULL DEFAULT 0, fingerprint TEXT,"
             "  PRIMARY KEY (task_arn, idx));"
             "INSERT INTO old_secrets SELECT * FROM task_secrets;"
             "DROP TABLE task_secrets;"
             "ALTER TABLE old_secrets RENAME TO task_secrets;"
             "ALTER TABLE services DROP COLUMN inactive_at;"   /* migration 4's */
             "ALTER TABLE services DROP COLUMN redeployed_at;" /* migration 5's */
             "DROP TABLE resource_tags;"
             "PRAGMA user_version = 2;");
    st = open_ok();
    ag_task *g = NULL;
    cr_assert_eq(ag_store_task_get(st, t->arn, &g), 0);
    cr_assert_eq(g->n_secrets, 2, "rows kept by the migration");
    cr_assert_str_eq(g->secrets[0].fingerprint, "hmac-sha256:00112233445566778899aabbccddeeff");
    ag_task_free(g);
    cr_assert_eq(
        ag_task_add_secret_meta(t, "app", AG_SECRET_REGISTRY, "repositoryCredentials", "reg/hub",
                                "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
                                "reg/hub-AbCdEf",
                                "v-1", 1001, "hmac-sha256:ffeeddccbbaa99887766554433221100"),
        0);
    cr_assert_eq(ag_store_task_put(st, t), 0, "%s", ag_store_errmsg(st));
    ag_store_close(st);
    st = open_ok();
    cr_assert_eq(ag_store_task_get(st, t->arn, &g), 0);
    cr_assert_eq(g->n_secrets, 3);
    cr_assert_eq(g->secrets[2].target, AG_SECRET_REGISTRY);
    cr_assert_str_eq(g->secrets[2].value_from, "reg/hub");
    cr_assert_str_eq(g->secrets[2].version, "v-1");
    cr_assert_str_eq(ag_secret_target_name(g->secrets[2].target), "repositoryCredentials");
    ag_task_free(g);
    ag_task_free(t);
    ag_store_close(st);
}

static int take_service(ag_service *v, void *arg)
{
    ag_service **out = arg;
    if (*out)
        ag_service_free(*out);
    *out = v;
    return 0;
}

static ag_service *only_service(ag_store *st)
{
    ag_service *v = NULL;
    cr_assert_eq(ag_store_service_foreach(st, take_service, &v), 0, "%s", ag_store_errmsg(st));
    cr_assert_not_null(v);
    return v;
}

/* When a service went INACTIVE is stored with it (schema 4); a file of
 * schema 3 gains the column with 0 (not known) for its rows. */
Test(store, inactive_at_stored_and_migration_from_3)
{
    ag_store *st = open_ok();
    ag_service *v = NULL;
    cr_assert_eq(ag_service_new("us-east-1", "123456789012", "default", "web", "fam", 3, 1, 200,
                                100, false, false, 1700000000, &v),
                 0);
    v->status = AG_SVC_INACTIVE;
    v->inactive_at = 1700000500;
    cr_assert_eq(ag_store_service_put(st, v), 0, "%s", ag_store_errmsg(st));
    ag_store_close(st);
    st = open_ok();
    ag_service *back = only_service(st);
    cr_assert_eq(back->status, AG_SVC_INACTIVE);
    cr_assert_eq(back->inactive_at, 1700000500);
    ag_service_free(back);
    ag_store_close(st);

    /* back to schema 3: the services table as migration 2 made it */
    exec_sql("ALTER TABLE services DROP COLUMN inactive_at; ALTER TABLE services DROP COLUMN "
             "redeployed_at; DROP TABLE resource_tags; PRAGMA user_version = 3;");
    st = open_ok();
    back = only_service(st);
    cr_assert_eq(back->status, AG_SVC_INACTIVE, "the row kept by the migration");
    cr_assert_eq(back->inactive_at, 0, "not known for a row of schema 3");
    ag_service_free(back);
    ag_store_close(st);
    cr_assert_eq(int_pragma("PRAGMA user_version"), AG_STORE_SCHEMA_VERSION);

    /* only an INACTIVE service has the time */
    st = open_ok();
    v->status = AG_SVC_DRAINING;
    cr_assert_eq(ag_store_service_put(st, v), 0, "%s", ag_store_errmsg(st));
    back = only_service(st);
    cr_assert_eq(back->inactive_at, 0);
    ag_service_free(back);
    ag_service_free(v);
    ag_store_close(st);
}

/* ECS tags (schema 5): stored under the resource part of the ARN, replaced
 * whole, gone with their task or service; a service's come back with it,
 * with when it last redeployed itself. */
Test(store, tags_set_get_and_deleted_with_their_resource)
{
    ag_store *st = open_ok();
    ag_service *v = NULL;
    cr_assert_eq(ag_service_new("us-east-1", "123456789012", "default", "web", "fam", 3, 1, 200,
                                100, false, false, 1700000000, &v),
                 0);
    v->tags.items[0] = (ag_tag){es_strdup("ecs-secrets:redeploy-on-rotation"), es_strdup("true")};
    v->tags.items[1] = (ag_tag){es_strdup("team"), es_strdup("")};
    v->tags.n = 2;
    v->redeployed_at = 1700000100;
    cr_assert_eq(ag_store_service_put(st, v), 0, "%s", ag_store_errmsg(st));
    ag_store_close(st);
    st = open_ok();
    ag_service *back = only_service(st);
    cr_assert_eq(back->tags.n, 2);
    cr_assert_str_eq(ag_tags_get(&back->tags, "ecs-secrets:redeploy-on-rotation"), "true");
    cr_assert_str_eq(ag_tags_get(&back->tags, "team"), "");
    cr_assert_eq(back->redeployed_at, 1700000100);
    ag_service_free(back);
    cr_assert_str_eq(ag_store_tag_resource(v->arn), "service/default/web");

    const char *task = "arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef";
    ag_tags t = {.n = 1};
    t.items[0] = (ag_tag){es_strdup("k"), es_strdup("v1")};
    cr_assert_eq(ag_store_tags_set(st, task, &t), 0, "%s", ag_store_errmsg(st));
    es_free(t.items[0].value);
    t.items[0].value = es_strdup("v2");
    cr_assert_eq(ag_store_tags_set(st, task, &t), 0, "replaced whole");
    ag_tags got = {.n = 0};
    cr_assert_eq(ag_store_tags_get(st, task, &got), 0);
    cr_assert_eq(got.n, 1);
    cr_assert_str_eq(got.items[0].value, "v2");
    /* another region's ARN of the same resource names the same row: the
     * API checks region and account before it asks */
    cr_assert_eq(
        ag_store_tags_get(st, "arn:aws:ecs:eu-west-1:1:task/default/0123456789abcdef", &got), 0);
    cr_assert_eq(got.n, 1);
    ag_tags_clear(&t);
    cr_assert_eq(ag_store_tags_set(st, task, &t), 0, "an empty set");
    cr_assert_eq(ag_store_tags_get(st, task, &got), 0);
    cr_assert_eq(got.n, 0);

    cr_assert_eq(ag_store_service_delete(st, v->arn), 0);
    cr_assert_eq(ag_store_tags_get(st, v->arn, &got), 0);
    cr_assert_eq(got.n, 0, "the service's tags went with it");
    ag_service_free(v);
    ag_store_close(st);
}

/* Migration 5 copies a definition's registered tags out of its body. */
Test(store, migration_5_copies_task_definition_tags)
{
    ag_store *st = open_ok();
    static const char body[] =
        "{\"family\": \"tagged\", \"tags\": [{\"key\": \"team\", \"value\": \"blue\"}, "
        "{\"key\": \"x\"}], \"containerDefinitions\": [{\"name\": \"app\", \"image\": "
        "\"busybox\"}]}";
    ag_taskdef *td = td_parse(body);
    cr_assert_eq(ag_store_taskdef_register(st, td, 1700000000), 0, "%s", ag_store_errmsg(st));
    ag_taskdef_free(td);
    ag_store_close(st);
    exec_sql("DROP TABLE resource_tags; ALTER TABLE services DROP COLUMN redeployed_at; "
             "PRAGMA user_version = 4;");
    st = open_ok();
    ag_tags got = {.n = 0};
    cr_assert_eq(
        ag_store_tags_get(st, "arn:aws:ecs:us-east-1:123456789012:task-definition/tagged:1", &got),
        0, "%s", ag_store_errmsg(st));
    cr_assert_eq(got.n, 2);
    cr_assert_str_eq(ag_tags_get(&got, "team"), "blue");
    cr_assert_str_eq(ag_tags_get(&got, "x"), "", "a tag without a value");
    ag_tags_clear(&got);
    ag_store_close(st);
    cr_assert_eq(int_pragma("PRAGMA user_version"), AG_STORE_SCHEMA_VERSION);
}

/* A revision as the cluster keeps it (agent/cluster_td.c): inserted at its
 * revision, replaced when it comes again, the family's counter raised (never
 * lowered), a new revision's tags taken from its body. */
Test(store, taskdef_put_from_the_cluster)
{
    ag_store *st = open_ok();
    const char *body = "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":"
                       "\"i\"}],\"tags\":[{\"key\":\"team\",\"value\":\"blue\"}]}";
    ag_store_td_row row = {.family = "web",
                           .revision = 7,
                           .active = true,
                           .registered_at = 1700000000,
                           .body = body,
                           .body_len = strlen(body)};
    cr_assert_eq(ag_store_taskdef_put(st, &row), 0, "%s", ag_store_errmsg(st));
    ag_taskdef *td = NULL;
    cr_assert_eq(ag_store_taskdef_get(st, "web", 7, &td), 0);
    cr_assert_eq(td->revision, 7);
    cr_assert_eq(td->status, AG_TD_ACTIVE);
    cr_assert_eq(td->registered_at, 1700000000);
    ag_taskdef_free(td);
    int64_t last = 0;
    cr_assert_eq(ag_store_taskdef_last_revision(st, "web", &last), 0);
    cr_assert_eq(last, 7);
    ag_tags tags = {.n = 0};
    cr_assert_eq(ag_store_tags_get(st, "arn:aws:ecs:us-east-1:1:task-definition/web:7", &tags), 0);
    cr_assert_eq(tags.n, 1);
    cr_assert_str_eq(tags.items[0].value, "blue");
    ag_tags_clear(&tags);
    /* again, INACTIVE: replaced; a tag set since (TagResource) is not overwritten */
    ag_tags t = {.n = 1};
    t.items[0] = (ag_tag){es_strdup("team"), es_strdup("red")};
    cr_assert_eq(ag_store_tags_set(st, "arn:aws:ecs:us-east-1:1:task-definition/web:7", &t), 0);
    ag_tags_clear(&t);
    row.active = false;
    row.deregistered_at = 1700000100;
    cr_assert_eq(ag_store_taskdef_put(st, &row), 0, "%s", ag_store_errmsg(st));
    cr_assert_eq(ag_store_taskdef_get(st, "web", 7, &td), 0);
    cr_assert_eq(td->status, AG_TD_INACTIVE);
    cr_assert_eq(td->deregistered_at, 1700000100);
    ag_taskdef_free(td);
    cr_assert_eq(ag_store_tags_get(st, "arn:aws:ecs:us-east-1:1:task-definition/web:7", &tags), 0);
    cr_assert_str_eq(tags.items[0].value, "red");
    ag_tags_clear(&tags);
    /* an older revision arriving later does not lower the counter; the next
     * local registration comes after the highest */
    row.revision = 3;
    row.active = true;
    row.deregistered_at = 0;
    cr_assert_eq(ag_store_taskdef_put(st, &row), 0);
    cr_assert_eq(ag_store_taskdef_last_revision(st, "web", &last), 0);
    cr_assert_eq(last, 7);
    td = td_parse(TD_BODY);
    cr_assert_eq(ag_store_taskdef_register(st, td, 300), 0);
    cr_assert_eq(td->revision, 8);
    ag_taskdef_free(td);
    row.revision = 0;
    cr_assert_eq(ag_store_taskdef_put(st, &row), -EINVAL);
    ag_store_close(st);
}

/* A write behind (the engine's flushes, issue 22) is read back at once,
 * survives a close and reopen, and leaves the writes after it durable: a
 * task definition registered next is there after a reopen too. The sync
 * descriptor is the write-ahead log's, opened once. */
Test(store, tasks_put_behind_then_synced)
{
    ag_store *st = open_ok();
    ag_task *t = sample_task();
    cr_assert_eq(ag_store_task_put(st, t), 0);
    cr_assert_eq(ag_task_transition(t, AG_TASK_PENDING, 1001, NULL, NULL), 0);
    const ag_task *ts[] = {t};
    cr_assert_eq(ag_store_tasks_put_behind(st, ts, 1), 0);
    ag_task *g = NULL;
    cr_assert_eq(ag_store_task_get(st, t->arn, &g), 0);
    cr_assert_eq(g->last_status, AG_TASK_PENDING);
    ag_task_free(g);
    int fd = ag_store_sync_fd(st);
    cr_assert_geq(fd, 0, "%s", ag_store_errmsg(st));
    cr_assert_eq(ag_store_sync_fd(st), fd, "opened once");
    cr_assert_eq(fdatasync(fd), 0);
    char wal[128];
    snprintf(wal, sizeof wal, "%s/agent.db-wal", dir);
    struct stat a, b;
    cr_assert_eq(fstat(fd, &a), 0);
    cr_assert_eq(stat(wal, &b), 0);
    cr_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "not the write-ahead log");
    ag_taskdef *td = td_parse(TD_BODY);
    cr_assert_eq(ag_store_taskdef_register(st, td, 1700000000), 0);
    cr_assert_eq(ag_task_transition(t, AG_TASK_RUNNING, 1002, NULL, NULL), 0);
    cr_assert_eq(ag_store_tasks_put_behind(st, ts, 1), 0);
    cr_assert_eq(fdatasync(fd), 0);
    char arn[256];
    snprintf(arn, sizeof arn, "%s", t->arn);
    ag_store_close(st);

    st = open_ok();
    cr_assert_eq(ag_store_task_get(st, arn, &g), 0);
    cr_assert_eq(g->last_status, AG_TASK_RUNNING);
    ag_task_free(g);
    ag_taskdef *back = NULL;
    cr_assert_eq(ag_store_taskdef_get(st, "web", 1, &back), 0);
    ag_taskdef_free(back);
    ag_taskdef_free(td);
    ag_task_free(t);
    ag_store_close(st);
}

/* Without a write-ahead log file the sync descriptor is refused, named. */
Test(store, sync_fd_without_the_log_is_refused)
{
    ag_store *st = open_ok();
    ag_task *t = sample_task();
    cr_assert_eq(ag_store_task_put(st, t), 0);
    char wal[128];
    snprintf(wal, sizeof wal, "%s/agent.db-wal", dir);
    cr_assert_eq(unlink(wal), 0);
    cr_assert_eq(ag_store_sync_fd(st), -ENOENT);
    cr_assert(strstr(ag_store_errmsg(st), "agent.db-wal"), "%s", ag_store_errmsg(st));
    ag_task_free(t);
    ag_store_close(st);
}
