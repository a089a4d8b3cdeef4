/* al_helpers.h - shared fixture for the aws/local unit tests (not a test
 * file itself: only test_*.c are built). */
#ifndef TEST_AL_HELPERS_H
#define TEST_AL_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/listener.h"
#include "aws/local/local.h"
#include "common/buf.h"
#include "common/json.h"

typedef struct alt {
    char dir[64];
    al_ctx *ctx;
    double now;
    es_buf out;
    al_error err;
    es_json *resp;
    /* authorisation hook record */
    const char *deny_action; /* deny this action (NULL: allow all) */
    char last_action[128];
    char last_resource[1024];
    int authz_calls;
    char region[64]; /* al_verify's region out */
    /* the embedded ECR's registry and credentials file (alt_reopen) */
    const char *ecr_registry, *ecr_credentials_file;
} alt;

static alt T;

static double alt_clock(void *arg)
{
    return ((alt *)arg)->now;
}

static int alt_authz(void *arg, const char *principal, const char *action, const char *resource)
{
    alt *t = arg;
    (void)principal;
    t->authz_calls++;
    snprintf(t->last_action, sizeof t->last_action, "%s", action);
    snprintf(t->last_resource, sizeof t->last_resource, "%s", resource);
    return t->deny_action && strcmp(t->deny_action, action) == 0 ? -1 : 0;
}

static void alt_open(void)
{
    al_options o = {.state_dir = T.dir,
                    .region = "us-east-2",
                    .account = "123456789012",
                    .authz = alt_authz,
                    .authz_arg = &T,
                    .clock = alt_clock,
                    .clock_arg = &T,
                    .ecr_registry = T.ecr_registry,
                    .ecr_credentials_file = T.ecr_credentials_file};
    char err[256] = "";
    int r = al_open(&o, &T.ctx, err, sizeof err);
    cr_assert_eq(r, 0, "al_open: %s", err);
}

static void alt_setup(void)
{
    memset(&T, 0, sizeof T);
    snprintf(T.dir, sizeof T.dir, "/dev/shm/al-test-XXXXXX");
    cr_assert_not_null(mkdtemp(T.dir));
    T.now = 1700000000.0;
    es_buf_init(&T.out, AL_RESPONSE_MAX);
    alt_open();
}

static void alt_rm_dir(void)
{
    DIR *d = opendir(T.dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", T.dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(T.dir);
}

static void alt_teardown(void)
{
    es_json_free(T.resp);
    T.resp = NULL;
    al_close(T.ctx);
    es_buf_free_secret(&T.out);
    alt_rm_dir();
}

__attribute__((unused)) static void alt_reopen(void)
{
    al_close(T.ctx);
    T.ctx = NULL;
    alt_open();
}

/* Calls target with body; answers the status (0 for success) and leaves the
 * parsed response in T.resp. */
static int call(const char *target, const char *body)
{
    es_json_free(T.resp);
    T.resp = NULL;
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    int r = al_dispatch(T.ctx, target, "arn:aws:iam::123456789012:user/tester", body, strlen(body),
                        &T.out, &T.err);
    if (r < 0) {
        cr_assert_eq(T.out.len, 0, "output left after an error");
        cr_assert(T.err.status >= 400, "error without status");
        cr_assert(T.err.code[0], "error without code");
        return T.err.status;
    }
    char why[128];
    cr_assert_eq(
        es_json_parse(T.out.data, T.out.len, &es_json_default_limits, &T.resp, why, sizeof why), 0,
        "response not JSON: %s: %s", why, es_buf_cstr(&T.out));
    return 0;
}

/* Succeeds or fails the test with the error. */
__attribute__((unused)) static const es_json *ok(const char *target, const char *body)
{
    int st = call(target, body);
    cr_assert_eq(st, 0, "%s %s -> %d %s: %s", target, body, st, T.err.code, T.err.message);
    return T.resp;
}

/* Expects an error with the code. */
__attribute__((unused)) static void fails(const char *target, const char *body, const char *code)
{
    int st = call(target, body);
    cr_assert_neq(st, 0, "%s %s succeeded: %s", target, body, es_buf_cstr(&T.out));
    cr_assert_str_eq(T.err.code, code, "%s %s -> %s (%s), want %s", target, body, T.err.code,
                     T.err.message, code);
}

__attribute__((unused)) static const char *jstr(const es_json *j, const char *key)
{
    const char *s = es_json_get_str(j, key);
    cr_assert_not_null(s, "missing string %s", key);
    return s;
}

__attribute__((unused)) static int64_t jint(const es_json *j, const char *key)
{
    int64_t v = 0;
    cr_assert(es_json_get_int64(j, key, &v), "missing integer %s", key);
    return v;
}

/* True when the bytes of needle occur anywhere in any file of the state
 * directory. */
__attribute__((unused)) static bool dir_contains(const char *needle)
{
    bool found = false;
    DIR *d = opendir(T.dir);
    cr_assert_not_null(d);
    struct dirent *de;
    size_t nl = strlen(needle);
    while ((de = readdir(d)) && !found) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", T.dir, de->d_name);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        es_buf b;
        es_buf_init(&b, 64u << 20);
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            cr_assert_eq(es_buf_append(&b, chunk, n), 0);
        fclose(f);
        found = b.len >= nl && memmem(b.data, b.len, needle, nl) != NULL;
        es_buf_free(&b);
    }
    closedir(d);
    return found;
}

/* A listener on 127.0.0.1 (a port the kernel picks) serving the store c. */
static inline int alt_listen(uv_loop_t *loop, al_ctx *c, const aw_listener_limits *lim,
                             aw_listener **out)
{
    int r = aw_listener_start(loop, "127.0.0.1", 0, lim, out);
    return r < 0 ? r : al_mount(c, *out);
}

#endif
