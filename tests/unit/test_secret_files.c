/* Secrets as files (issue 21): the label parser (agent/tasks/td_files.h,
 * through ag_taskdef_parse as registration runs it) and the file writer
 * (agent/secrets/files.h) on a real tmpfs (/dev/shm) and a real disk. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/secrets/files.h"
#include "agent/tasks/taskdef.h"
#include "docker/docker.h"

static const ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};

#define ROLE "\"executionRoleArn\":\"arn:aws:iam::123456789012:role/ecsTaskExecutionRole\""
#define SECRETS                                                                                    \
    "\"secrets\":[{\"name\":\"DB\",\"valueFrom\":\"/app/db\"},{\"name\":\"API\",\"valueFrom\":"    \
    "\"/app/api\"},{\"name\":\"TLS\",\"valueFrom\":\"/app/tls\"}]"

/* One container with the three secrets, `user` (may be NULL) and labels. */
static char *body(const char *user, const char *labels)
{
    static char buf[16384];
    char u[128] = "";
    if (user)
        snprintf(u, sizeof u, ",\"user\":\"%s\"", user);
    snprintf(buf, sizeof buf,
             "{\"family\":\"web\"," ROLE ",\"containerDefinitions\":[{\"name\":\"app\","
             "\"image\":\"busybox\"," SECRETS "%s,\"dockerLabels\":{%s}}]}",
             u, labels);
    return buf;
}

static ag_taskdef *ok(const char *user, const char *labels)
{
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    const char *b = body(user, labels);
    int r = ag_taskdef_parse(b, strlen(b), &ctx, &td, &e);
    cr_assert_eq(r, 0, "refused: %s: %s\n%s", e.code, e.message, b);
    return td;
}

/* A ClientException naming the label, with `why` in the message. */
static void bad(const char *labels, const char *label, const char *why)
{
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    const char *b = body(NULL, labels);
    int r = ag_taskdef_parse(b, strlen(b), &ctx, &td, &e);
    cr_assert_eq(r, -EINVAL, "must be refused: %s", labels);
    cr_assert_null(td);
    cr_assert_str_eq(e.code, "ClientException");
    char path[512];
    snprintf(path, sizeof path, "containerDefinitions[0].dockerLabels[\"%s\"]: ", label);
    cr_assert_eq(strncmp(e.message, path, strlen(path)), 0, "message '%s', expected '%s'",
                 e.message, path);
    cr_assert(strstr(e.message, why), "message '%s' lacks '%s'", e.message, why);
}

Test(file_labels, defaults_and_full_form)
{
    ag_taskdef *td = ok(NULL, "\"ecs-secrets.file.DB\":\"/run/secrets/db\","
                              "\"ecs-secrets.file.API\":\"/run/api/key:0440:1000:2000\","
                              "\"ecs-secrets.file-policy.API\":\"refresh\","
                              "\"other\":\"kept\"");
    const ag_container_def *c = &td->containers[0];
    cr_assert_eq(c->n_files, 2);
    const ag_secret_file *db = ag_td_file_for(c, "DB"), *api = ag_td_file_for(c, "API");
    cr_assert_not_null(db);
    cr_assert_not_null(api);
    cr_assert_null(ag_td_file_for(c, "TLS"), "TLS stays an environment variable");
    cr_assert_str_eq(db->path, "/run/secrets/db");
    cr_assert_eq(db->mode, 0400);
    cr_assert_eq(db->uid, 0);
    cr_assert_eq(db->gid, 0);
    cr_assert_eq(db->policy, AG_FILE_FROZEN);
    cr_assert_str_eq(api->path, "/run/api/key");
    cr_assert_eq(api->mode, 0440);
    cr_assert_eq(api->uid, 1000);
    cr_assert_eq(api->gid, 2000);
    cr_assert_eq(api->policy, AG_FILE_REFRESH);
    cr_assert_eq(c->n_docker_labels, 4, "the labels stay as registered");
    ag_taskdef_free(td);
}

Test(file_labels, owner_defaults_to_a_numeric_user)
{
    ag_taskdef *td = ok("1001:1002", "\"ecs-secrets.file.DB\":\"/s/db:0600\"");
    cr_assert_eq(td->containers[0].files[0].uid, 1001);
    cr_assert_eq(td->containers[0].files[0].gid, 1002);
    cr_assert_eq(td->containers[0].files[0].mode, 0600);
    ag_taskdef_free(td);
    td = ok("1001", "\"ecs-secrets.file.DB\":\"/s/db\"");
    cr_assert_eq(td->containers[0].files[0].uid, 1001);
    cr_assert_eq(td->containers[0].files[0].gid, 0);
    ag_taskdef_free(td);
    td = ok("nobody", "\"ecs-secrets.file.DB\":\"/s/db\"");
    cr_assert_eq(td->containers[0].files[0].uid, 0, "a user name is not resolved: root");
    ag_taskdef_free(td);
}

Test(file_labels, frozen_anywhere_refresh_not_over_system_dirs)
{
    ag_taskdef *td = ok(NULL, "\"ecs-secrets.file.DB\":\"/etc/app.key\"");
    ag_taskdef_free(td);
    const char *dirs[] = {"/etc", "/usr", "/bin", "/lib", "/sbin", "/proc", "/sys", "/dev", "/var"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char l[256];
        snprintf(l, sizeof l,
                 "\"ecs-secrets.file.DB\":\"%s/db\",\"ecs-secrets.file-policy.DB\":\"refresh\"",
                 dirs[i]);
        bad(l, "ecs-secrets.file.DB", "system directory");
    }
    bad("\"ecs-secrets.file.DB\":\"/db\",\"ecs-secrets.file-policy.DB\":\"refresh\"",
        "ecs-secrets.file.DB", "'/'");
    td = ok(NULL, "\"ecs-secrets.file.DB\":\"/var/run/secrets/db\","
                  "\"ecs-secrets.file-policy.DB\":\"refresh\"");
    ag_taskdef_free(td);
}

Test(file_labels, malformed_values_are_refused_by_name)
{
    const char *L = "ecs-secrets.file.DB";
    bad("\"ecs-secrets.file.NOPE\":\"/s/x\"", "ecs-secrets.file.NOPE", "no secret named 'NOPE'");
    bad("\"ecs-secrets.file.DB\":\"s/db\"", L, "absolute");
    bad("\"ecs-secrets.file.DB\":\"\"", L, "empty");
    bad("\"ecs-secrets.file.DB\":\"/\"", L, "root directory");
    bad("\"ecs-secrets.file.DB\":\"/s/../etc/shadow\"", L, "'..'");
    bad("\"ecs-secrets.file.DB\":\"/s/./db\"", L, "'.'");
    bad("\"ecs-secrets.file.DB\":\"/s//db\"", L, "empty component");
    bad("\"ecs-secrets.file.DB\":\"/s/db/\"", L, "empty component");
    bad("\"ecs-secrets.file.DB\":\"/s/d\\tb\"", L, "control");
    bad("\"ecs-secrets.file.DB\":\"/s/db:0800\"", L, "octal");
    bad("\"ecs-secrets.file.DB\":\"/s/db:1777\"", L, "octal");
    bad("\"ecs-secrets.file.DB\":\"/s/db:\"", L, "octal");
    bad("\"ecs-secrets.file.DB\":\"/s/db:rw\"", L, "octal");
    bad("\"ecs-secrets.file.DB\":\"/s/db:0400:root\"", L, "uid");
    bad("\"ecs-secrets.file.DB\":\"/s/db:0400:-1\"", L, "uid");
    bad("\"ecs-secrets.file.DB\":\"/s/db:0400:4294967295\"", L, "uid");
    bad("\"ecs-secrets.file.DB\":\"/s/db:0400:1:x\"", L, "gid");
    bad("\"ecs-secrets.file.DB\":\"/s/db:0400:1:2:3\"", L, "too many");
    bad("\"ecs-secrets.file.DB\":\"/s/db\",\"ecs-secrets.file-policy.DB\":\"often\"",
        "ecs-secrets.file-policy.DB", "'frozen' or 'refresh'");
    bad("\"ecs-secrets.file-policy.DB\":\"refresh\"", "ecs-secrets.file-policy.DB", "not a file");
    bad("\"ecs-secrets.file-policy.NOPE\":\"refresh\"", "ecs-secrets.file-policy.NOPE",
        "no secret named");
    bad("\"ecs-secrets.file.DB\":\"/s/one\",\"ecs-secrets.file.API\":\"/s/one\"", L,
        "also secret API's");
}

Test(file_labels, limits)
{
    char l[4096], comp[300];
    memset(comp, 'a', 256);
    comp[256] = '\0';
    snprintf(l, sizeof l, "\"ecs-secrets.file.DB\":\"/s/%s\"", comp);
    bad(l, "ecs-secrets.file.DB", "longer than 255");
    char deep[512] = "";
    size_t at = 0;
    for (int i = 0; i < AG_FILE_DEPTH_MAX + 1; i++)
        at += (size_t)snprintf(deep + at, sizeof deep - at, "/d");
    snprintf(l, sizeof l, "\"ecs-secrets.file.DB\":\"%s\"", deep);
    bad(l, "ecs-secrets.file.DB", "deeper");
    /* 1025 bytes: over AG_FILE_PATH_MAX though within the label's 4096 */
    char lng[1100];
    size_t n = 0;
    while (n + 201 < AG_FILE_PATH_MAX + 1) {
        lng[n++] = '/';
        memset(lng + n, 'x', 200);
        n += 200;
    }
    lng[n++] = '/';
    memset(lng + n, 'y', AG_FILE_PATH_MAX + 1 - n);
    n = AG_FILE_PATH_MAX + 1;
    lng[n] = '\0';
    snprintf(l, sizeof l, "\"ecs-secrets.file.DB\":\"%s\"", lng);
    bad(l, "ecs-secrets.file.DB", "longer than 1024");
}

Test(file_labels, refresh_directories_hold_refresh_files_only)
{
    ag_taskdef *td = ok(NULL, "\"ecs-secrets.file.DB\":\"/run/s/db\","
                              "\"ecs-secrets.file-policy.DB\":\"refresh\","
                              "\"ecs-secrets.file.API\":\"/run/s/api\","
                              "\"ecs-secrets.file-policy.API\":\"refresh\","
                              "\"ecs-secrets.file.TLS\":\"/run/t/tls\","
                              "\"ecs-secrets.file-policy.TLS\":\"refresh\"");
    cr_assert_eq(td->containers[0].n_files, 3);
    ag_taskdef_free(td);
    bad("\"ecs-secrets.file.DB\":\"/run/s/db\",\"ecs-secrets.file-policy.DB\":\"refresh\","
        "\"ecs-secrets.file.API\":\"/run/s/api\"",
        "ecs-secrets.file.DB", "cannot be in it");
    bad("\"ecs-secrets.file.DB\":\"/run/s/db\",\"ecs-secrets.file-policy.DB\":\"refresh\","
        "\"ecs-secrets.file.API\":\"/run/s/x/api\",\"ecs-secrets.file-policy.API\":\"refresh\"",
        "ecs-secrets.file.DB", "cannot be in it");
}

Test(file_labels, the_description_round_trips)
{
    ag_taskdef *td = ok(NULL, "\"ecs-secrets.file.DB\":\"/run/secrets/db:0440:7\"");
    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_jw w;
    es_jw_init(&w, &b);
    ag_taskdef_write_request(td, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    ag_taskdef *again = NULL;
    ag_td_error e = {0};
    cr_assert_eq(ag_taskdef_parse(b.data, b.len, &ctx, &again, &e), 0, "%s", e.message);
    cr_assert_eq(again->containers[0].n_files, 1);
    cr_assert_eq(again->containers[0].files[0].uid, 7);
    es_buf_free(&b);
    ag_taskdef_free(td);
    ag_taskdef_free(again);
}

/* ---- the writer ---- */

#define SHM "/dev/shm"

static char *tmp_dir(const char *base)
{
    static char p[256];
    snprintf(p, sizeof p, "%s/es-files-XXXXXX", base);
    cr_assert_not_null(mkdtemp(p));
    return p;
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(files_writer, memory_only)
{
    char err[AG_FILES_ERR_MAX];
    struct stat st;
    if (stat(SHM, &st) < 0)
        cr_skip_test("no /dev/shm");
    cr_assert_eq(ag_files_check_memory_fs(SHM, err, sizeof err), 0, "%s", err);
    char disk[256];
    snprintf(disk, sizeof disk, "%s", tmp_dir(ES_SOURCE_DIR));
    int r = ag_files_check_memory_fs(disk, err, sizeof err);
    cr_assert_eq(r, -EXDEV, "the source tree is on a disk: %d", r);
    cr_assert(strstr(err, "not on tmpfs"), "%s", err);
    rmdir(disk);
    cr_assert_eq(ag_files_check_memory_fs("/nonexistent/x", err, sizeof err), -ENOENT);
}

Test(files_writer, mode_owner_and_no_clobber)
{
    char err[AG_FILES_ERR_MAX], p[512];
    char *dir = tmp_dir(SHM);
    snprintf(p, sizeof p, "%s/a/b", dir);
    cr_assert_eq(ag_files_mkdirs(p, 0700, err, sizeof err), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700);
    snprintf(p, sizeof p, "%s/a/b/f", dir);
    cr_assert_eq(ag_files_write(p, "s3cret", 6, 0440, 1000, 2000, err, sizeof err), 0, "%s", err);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0440);
    if (geteuid() == 0) {
        cr_assert_eq(st.st_uid, 1000);
        cr_assert_eq(st.st_gid, 2000);
    }
    cr_assert_str_eq(slurp(p), "s3cret");
    cr_assert_eq(ag_files_write(p, "x", 1, 0400, 0, 0, err, sizeof err), -EEXIST);
    cr_assert_str_eq(slurp(p), "s3cret", "never over an existing file");
    /* binary values and NUL bytes are a file's business */
    snprintf(p, sizeof p, "%s/a/b/bin", dir);
    cr_assert_eq(ag_files_write(p, "a\0b", 3, 0400, 0, 0, err, sizeof err), 0);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_size, 3);
    cr_assert_eq(ag_files_remove_tree(dir), 0);
    cr_assert_eq(stat(dir, &st), -1, "removed");
    cr_assert_eq(ag_files_remove_tree(dir), 0, "a missing tree is no error");
}

static void expect_link(const char *dir, const char *name, const char *target)
{
    char p[512], t[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    ssize_t n = readlink(p, t, sizeof t - 1);
    cr_assert_gt(n, 0, "%s is a link", p);
    t[n] = '\0';
    cr_assert_str_eq(t, target);
}

Test(files_writer, atomic_update_swaps_and_cleans)
{
    char err[AG_FILES_ERR_MAX], p[512];
    char *dir = tmp_dir(SHM);
    ag_files_entry e[2] = {{.name = "db", .value = "one", .len = 3, .mode = 0400},
                           {.name = "api", .value = "k1", .len = 2, .mode = 0444}};
    cr_assert_eq(ag_files_atomic_update(dir, e, 2, err, sizeof err), 0, "%s", err);
    expect_link(dir, "db", "..data/db");
    expect_link(dir, "api", "..data/api");
    char first[256];
    snprintf(p, sizeof p, "%s/..data", dir);
    ssize_t n = readlink(p, first, sizeof first - 1);
    cr_assert_gt(n, 2);
    first[n] = '\0';
    cr_assert_eq(strncmp(first, "..", 2), 0);
    snprintf(p, sizeof p, "%s/db", dir);
    cr_assert_str_eq(slurp(p), "one");
    /* a reader holding the old file keeps reading the old value whole */
    int held = open(p, O_RDONLY);
    cr_assert_geq(held, 0);
    e[0].value = "two-longer";
    e[0].len = 10;
    cr_assert_eq(ag_files_atomic_update(dir, e, 2, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(slurp(p), "two-longer");
    char old[16] = "";
    cr_assert_eq(read(held, old, sizeof old), 3, "the open file is the old inode");
    close(held);
    /* the previous version is gone, nothing but the links, ..data and one stamp */
    snprintf(p, sizeof p, "%s/%s", dir, first);
    struct stat st;
    cr_assert_eq(lstat(p, &st), -1, "the previous stamp directory is removed");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 4", dir);
    cr_assert_eq(system(cmd), 0, "db, api, ..data and one ..<stamp>");
    snprintf(p, sizeof p, "%s/api", dir);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0444);
    /* a bad name fails and leaves the current version whole */
    ag_files_entry badname = {.name = "../x", .value = "v", .len = 1, .mode = 0400};
    cr_assert_eq(ag_files_atomic_update(dir, &badname, 1, err, sizeof err), -EINVAL);
    snprintf(p, sizeof p, "%s/db", dir);
    cr_assert_str_eq(slurp(p), "two-longer");
    cr_assert_eq(system(cmd), 0, "no .tmp directory left");
    cr_assert_eq(ag_files_remove_tree(dir), 0);
}

/* docker/ writes the bind mounts as HostConfig.Mounts */
Test(files_writer, create_body_mounts)
{
    dk_mount m[2] = {{.source = "/run/x/t/c0/f0", .target = "/run/secrets/db", .read_only = true},
                     {.source = "/run/x/t/c0/r1", .target = "/run/s", .read_only = true}};
    dk_create_spec s = {.image = "busybox", .mounts = m, .nmounts = 2};
    es_buf b;
    es_buf_init(&b, 1 << 16);
    cr_assert_eq(dk_create_body(&s, &b), 0);
    cr_assert(strstr(es_buf_cstr(&b),
                     "\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/run/x/t/c0/f0\",\"Target\":"
                     "\"/run/secrets/db\",\"ReadOnly\":true},{\"Type\":\"bind\",\"Source\":"
                     "\"/run/x/t/c0/r1\",\"Target\":\"/run/s\",\"ReadOnly\":true}]"),
              "%s", es_buf_cstr(&b));
    es_buf_free_secret(&b);
}
