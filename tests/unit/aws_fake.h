/* aws_fake.h - starts tests/aws_fake.py (a loopback stand-in for AWS
 * endpoints, IMDS and the container credentials endpoint) and talks to its
 * control endpoints with blocking curl. Test-only; static helpers. */
#ifndef ES_TESTS_AWS_FAKE_H
#define ES_TESTS_AWS_FAKE_H

#include <criterion/criterion.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"

/* Criterion's workers end without LeakSanitizer's exit check: tests ask
 * for one at the end (no-op without ASan). */
#if defined(__SANITIZE_ADDRESS__)
#define FAKE_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAKE_HAVE_LSAN 1
#endif
#endif
#ifdef FAKE_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static __attribute__((unused)) void expect_no_leaks(void)
{
#ifdef FAKE_HAVE_LSAN
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (see the report above)");
#endif
}

typedef struct fake {
    pid_t pid;
    int port;
    char base[64]; /* http://127.0.0.1:PORT */
} fake;

/* argv: extra arguments for the script, NULL-terminated (may be NULL). */
static __attribute__((unused)) void fake_start(fake *f, const char *const *extra)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    const char *argv[32] = {"/usr/bin/python3", ES_SOURCE_DIR "/tests/aws_fake.py"};
    int n = 2;
    for (; extra && *extra && n < 30; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    size_t got = 0;
    while (got < sizeof line - 1) {
        ssize_t r = read(fds[0], line + got, 1);
        if (r <= 0 || line[got] == '\n')
            break;
        got++;
    }
    close(fds[0]);
    f->pid = pid;
    f->port = (int)strtol(line, NULL, 10);
    cr_assert(f->port > 0, "fake server did not start");
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
}

static __attribute__((unused)) void fake_stop(fake *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
}

static size_t fake_sink(char *p, size_t s, size_t n, void *ud)
{
    es_buf_append(ud, p, s * n);
    return s * n;
}

static __attribute__((unused)) void fake_post(fake *f, const char *path, const char *json)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    CURL *c = curl_easy_init();
    es_buf b;
    es_buf_init(&b, 1 << 20);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fake_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    es_buf_free(&b);
}

/* The /__stats document; free with es_json_free. */
static __attribute__((unused)) es_json *fake_stats(fake *f)
{
    char url[128];
    snprintf(url, sizeof url, "%s/__stats", f->base);
    CURL *c = curl_easy_init();
    es_buf b;
    es_buf_init(&b, 1 << 22);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fake_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    es_json *j = NULL;
    es_json_limits lim = es_json_default_limits;
    lim.max_bytes = 1 << 22;
    cr_assert_eq(es_json_parse(b.data, b.len, &lim, &j, NULL, 0), 0);
    es_buf_free(&b);
    return j;
}

static __attribute__((unused)) int64_t fake_stat_int(fake *f, const char *key)
{
    es_json *j = fake_stats(f);
    int64_t v = -1;
    es_json_get_int64(j, key, &v);
    es_json_free(j);
    return v;
}

static __attribute__((unused)) int64_t fake_op_count(fake *f, const char *op)
{
    es_json *j = fake_stats(f);
    int64_t v = 0;
    es_json_get_int64(es_json_get(j, "ops"), op, &v);
    es_json_free(j);
    return v;
}

#endif
