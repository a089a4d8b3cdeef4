/* PutParameter's AllowedPattern matched off the event loop (issue 17, aws/local/match.h):
 * through a real listener, the match runs on libuv's pool while the loop answers others; the
 * request is run again with the result in a fresh transaction (Overwrite and the stored
 * pattern checked again); a caller that left, or a listener that closed, gets nothing
 * written; matches in flight are bounded (ThrottlingException); the value is in no answer and
 * no log line. */
#include "al_server_helpers.h"

#include <time.h>

#include "aws/local/match.h"
#include "aws/local/ssm.h"
#include "common/log.h"

/* Criterion's workers end without LeakSanitizer's exit check: ask for one (no-op without
 * ASan), as test_al_allowed_pattern.c does: work items outliving their caller must not leak. */
#if defined(__SANITIZE_ADDRESS__)
#define MATCH_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MATCH_HAVE_LSAN 1
#endif
#endif
#ifdef MATCH_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* every log line of the test, to prove that no value reaches one */
static es_buf log_lines;

static void log_sink(es_log_level l, const char *line, void *arg)
{
    (void)l;
    (void)arg;
    es_buf_append_str(&log_lines, line);
    es_buf_append_char(&log_lines, '\n');
}

static void match_setup(void)
{
    alt_setup();
    es_buf_init(&log_lines, 1u << 20);
    es_log_set_level(ES_LOG_DEBUG);
    es_log_set_sink(log_sink, NULL);
}

static void match_teardown(void)
{
    es_log_set_sink(NULL, NULL);
    es_buf_free(&log_lines);
    alt_teardown();
#ifdef MATCH_HAVE_LSAN
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (see the report above)");
#endif
}

TestSuite(al_match, .init = match_setup, .fini = match_teardown);

#define PUT "AmazonSSM.PutParameter"
/* A match that runs until the store's CPU ceiling (200 ms) stops it: every step re-reads a
 * 4000-character lookbehind (test_al_allowed_pattern.c). Needs the Advanced tier. */
#define SLOW_PATTERN "^(?:(?<=[a-z]{4000})a|a)*$"
#define SLOW_FILL 8000
#define SLOW_TAIL "!"
/* the back-referencing pattern, JSON-escaped */
#define BACKREF_JSON "^((a+)\\\\2)+b$"
#define MISMATCH "ParameterPatternMismatchException"

/* A PutParameter body: value = n copies of fill then tail; pattern_json already JSON-escaped
 * (NULL: none); extra members appended (",\"Overwrite\":true"). Fresh es_malloc'ed text. */
static char *put_body(const char *name, const char *pattern_json, char fill, size_t n,
                      const char *tail, const char *extra)
{
    es_buf b;
    es_buf_init(&b, 64u << 10);
    es_buf_printf(&b, "{\"Name\":\"%s\",\"Type\":\"String\",\"Value\":\"", name);
    for (size_t i = 0; i < n; i++)
        es_buf_append_char(&b, fill);
    es_buf_printf(&b, "%s\"", tail);
    if (pattern_json)
        es_buf_printf(&b, ",\"AllowedPattern\":\"%s\"", pattern_json);
    es_buf_printf(&b, "%s}", extra);
    return b.data; /* the buffer's, now the caller's */
}

/* Sends a PutParameter without reading its answer. */
static void send_put(run *r, int fd, const char *name, const char *pattern_json, char fill,
                     size_t n, const char *tail, const char *extra)
{
    char *body = put_body(name, pattern_json, fill, n, tail, extra);
    es_buf b;
    es_buf_init(&b, 1 << 20);
    build(r, &b, PUT, body, r->akid, r->secret);
    send_all(fd, b.data, b.len);
    es_buf_free(&b);
    es_free(body);
}

static void send_slow_put(run *r, int fd, const char *name, const char *extra)
{
    char x[256];
    snprintf(x, sizeof x, ",\"Tier\":\"Advanced\"%s", extra);
    send_put(r, fd, name, SLOW_PATTERN, 'a', SLOW_FILL, SLOW_TAIL, x);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* No answer has arrived on fd yet. */
static bool nothing_yet(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

static al_match_stats match_stats(void)
{
    al_match_stats st;
    al_match_get_stats(T.ctx, &st);
    return st;
}

/* ---- answers ---- */

static void c_answers(run *r)
{
    int fd = dial(r->port);
    resp a;
    send_put(r, fd, "/m/num", "^[0-9]+$", '1', 3, "", "");
    read_resp(fd, &a, 5000);
    CK(a.status == 200);
    CK(strstr(a.body, "\"Version\":1") != NULL);
    /* the stored pattern applies to an overwrite that names none; refused, not quoted */
    send_put(r, fd, "/m/num", NULL, 'x', 0, "VALUE-MARKER-12a", ",\"Overwrite\":true");
    read_resp(fd, &a, 5000);
    CK(a.status == 400);
    CK(strcmp(a.body, "{\"__type\":\"" MISMATCH "\",\"message\":\"Parameter value, cannot be "
                      "validated against allowedPattern: ^[0-9]+$\"}") == 0);
    /* a pattern that does not compile: refused from the worker as from the loop */
    send_put(r, fd, "/m/bad", "(", 'a', 1, "", "");
    read_resp(fd, &a, 5000);
    CK(a.status == 400);
    CK(strstr(a.body, "\"__type\":\"InvalidAllowedPatternException\"") != NULL);
    /* the back-reference pattern: an ordinary mismatch, then a refusal as too costly,
     * each well inside the 100 ms on an idle machine (asserted generously: shared) */
    double t0 = now_ms();
    send_put(r, fd, "/m/p17", BACKREF_JSON, 'a', 1600, "", "");
    read_resp(fd, &a, 5000);
    double t1 = now_ms();
    CK(a.status == 400 && strstr(a.body, MISMATCH) != NULL);
    send_put(r, fd, "/m/p17", BACKREF_JSON, 'a', 1599, "b", "");
    read_resp(fd, &a, 5000);
    double t2 = now_ms();
    CK(a.status == 400 && strstr(a.body, "too costly to evaluate") != NULL);
    CK(strstr(a.body, "aaaaaaaaaaaaaaaa") == NULL);
    fprintf(stderr, "al_match: back-reference pattern answered in %.1f ms and %.1f ms\n", t1 - t0,
            t2 - t1);
    CK(t1 - t0 < 1000 && t2 - t1 < 1000);
    /* nothing refused was written */
    request(r, fd, "AmazonSSM.GetParameter", "{\"Name\":\"/m/num\"}", &a);
    CK(a.status == 200 && strstr(a.body, "\"Value\":\"111\"") != NULL);
    CK(strstr(a.body, "\"Version\":1") != NULL);
    request(r, fd, "AmazonSSM.GetParameter", "{\"Name\":\"/m/p17\"}", &a);
    CK(a.status == 400 && strstr(a.body, "ParameterNotFound") != NULL);
    close(fd);
}

Test(al_match, pattern_answers_come_back_from_the_worker)
{
    run_and_check(c_answers, NULL);
    al_match_stats st = match_stats();
    cr_assert_eq(st.queued, 5, "every pattern put went to the pool: %lu", (unsigned long)st.queued);
    cr_assert_eq(st.throttled + st.orphaned + st.rounds, 0);
    cr_assert_eq(last_stats.deferred, 5);
    /* the value was in no log line */
    cr_assert_null(memmem(log_lines.data ? log_lines.data : "", log_lines.len, "VALUE-MARKER", 12));
}

/* A call without a pattern, or straight to the store (al_dispatch), matches inline. */
Test(al_match, calls_outside_the_listener_match_inline)
{
    fails(
        PUT,
        "{\"Name\":\"/m/i\",\"Type\":\"String\",\"Value\":\"abc\",\"AllowedPattern\":\"^\\\\d+$\"}",
        MISMATCH);
    ok(PUT,
       "{\"Name\":\"/m/i\",\"Type\":\"String\",\"Value\":\"123\",\"AllowedPattern\":\"^\\\\d+$\"}");
    al_match_stats st = match_stats();
    cr_assert_eq(st.queued, 0);
}

/* ---- the loop is free while a match runs ---- */

static void c_loop_free(run *r)
{
    int slow = dial(r->port), quick = dial(r->port);
    resp a;
    request(r, quick, PUT, "{\"Name\":\"/m/cheap\",\"Type\":\"String\",\"Value\":\"v\"}", &a);
    CK(a.status == 200);
    send_slow_put(r, slow, "/m/slow", "");
    usleep(50000); /* the slow match is running (it takes 200 ms of CPU) */
    double t0 = now_ms();
    request(r, quick, "AmazonSSM.GetParameter", "{\"Name\":\"/m/cheap\"}", &a);
    double t1 = now_ms();
    CK(a.status == 200);
    /* answered while the match still ran: on the loop, it would have waited for it */
    CK(nothing_yet(slow));
    read_resp(slow, &a, 10000);
    double t2 = now_ms();
    CK(a.status == 400 && strstr(a.body, "too costly to evaluate") != NULL);
    fprintf(stderr, "al_match: GetParameter answered in %.1f ms while the match ran %.1f ms more\n",
            t1 - t0, t2 - t1);
    close(slow);
    close(quick);
}

Test(al_match, the_loop_answers_while_a_match_runs)
{
    run_and_check(c_loop_free, NULL);
}

/* ---- the caller gone ---- */

static void c_caller_leaves(run *r)
{
    int fd = dial(r->port);
    send_slow_put(r, fd, "/m/gone", "");
    usleep(20000); /* read and deferred */
    close(fd);
    /* the result comes back to nobody (or the listener closes first: the same for it) */
    usleep(500000);
    fd = dial(r->port);
    resp a;
    request(r, fd, "AmazonSSM.GetParameter", "{\"Name\":\"/m/gone\"}", &a);
    CK(a.status == 400 && strstr(a.body, "ParameterNotFound") != NULL);
    close(fd);
}

Test(al_match, a_result_after_the_connection_closed_is_dropped)
{
    run_and_check(c_caller_leaves, NULL);
    al_match_stats st = match_stats();
    cr_assert_eq(st.queued, 1);
    cr_assert_eq(st.orphaned, 1, "the result found its caller gone");
    cr_assert_eq(call("AmazonSSM.GetParameter", "{\"Name\":\"/m/gone\"}"), 400);
    cr_assert_str_eq(T.err.code, "ParameterNotFound");
}

/* the client ends with the match in flight: the listener closes under it (the daemon's stop) */
static void c_stop_in_flight(run *r)
{
    int fd = dial(r->port);
    send_slow_put(r, fd, "/m/stop", "");
    usleep(20000);
    close(fd);
}

Test(al_match, the_listener_closing_with_a_match_in_flight_ends_cleanly)
{
    /* run_client asserts that the loop ends with nothing left open */
    run_and_check(c_stop_in_flight, NULL);
    al_match_stats st = match_stats();
    cr_assert_eq(st.queued, 1);
    cr_assert_eq(st.orphaned, 1);
    cr_assert_eq(call("AmazonSSM.GetParameter", "{\"Name\":\"/m/stop\"}"), 400);
    cr_assert_str_eq(T.err.code, "ParameterNotFound");
}

/* ---- the bound ---- */

#define OVER 2
static void c_in_flight_limit(run *r)
{
    int fds[AL_MATCH_IN_FLIGHT_MAX + OVER];
    size_t n = sizeof fds / sizeof fds[0];
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "/m/t/%zu", i);
        fds[i] = dial(r->port);
        send_slow_put(r, fds[i], name, "");
    }
    int throttled = 0, costly = 0;
    for (size_t i = 0; i < n; i++) {
        resp a;
        read_resp(fds[i], &a, 10000);
        if (a.status == 400 &&
            strcmp(a.body, "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}") ==
                0)
            throttled++;
        else if (a.status == 400 && strstr(a.body, "too costly to evaluate"))
            costly++;
        close(fds[i]);
    }
    CK(throttled == OVER);
    CK(costly == AL_MATCH_IN_FLIGHT_MAX);
}

Test(al_match, matches_in_flight_are_bounded)
{
    run_and_check(c_in_flight_limit, NULL);
    al_match_stats st = match_stats();
    cr_assert_eq(st.queued, AL_MATCH_IN_FLIGHT_MAX);
    cr_assert_eq(st.throttled, OVER);
}

/* ---- checked again in the write's own transaction ---- */

static void c_overwrite_race(run *r)
{
    int slow = dial(r->port), quick = dial(r->port);
    resp a;
    send_slow_put(r, slow, "/m/race", ""); /* no Overwrite: creates, or is refused */
    usleep(50000);
    request(r, quick, PUT, "{\"Name\":\"/m/race\",\"Type\":\"String\",\"Value\":\"first\"}", &a);
    CK(a.status == 200);
    CK(nothing_yet(slow));
    /* the parameter exists by the time the match is back: refused as AWS refuses it, before
     * the pattern's own refusal */
    read_resp(slow, &a, 10000);
    CK(a.status == 400 && strstr(a.body, "\"__type\":\"ParameterAlreadyExists\"") != NULL);
    request(r, quick, "AmazonSSM.GetParameter", "{\"Name\":\"/m/race\"}", &a);
    CK(a.status == 200 && strstr(a.body, "\"Value\":\"first\"") != NULL);
    close(slow);
    close(quick);
}

Test(al_match, overwrite_is_checked_again_after_the_match)
{
    run_and_check(c_overwrite_race, NULL);
}

static void c_pattern_changed(run *r)
{
    int slow = dial(r->port), quick = dial(r->port);
    resp a;
    /* the parameter's pattern is the slow one; "a" satisfies it at once */
    send_put(r, quick, "/m/chg", SLOW_PATTERN, 'a', 1, "", ",\"Tier\":\"Advanced\"");
    read_resp(quick, &a, 5000);
    CK(a.status == 200);
    /* an overwrite naming no pattern: matched against the stored one (slow, too costly) */
    send_put(r, slow, "/m/chg", NULL, 'a', SLOW_FILL, SLOW_TAIL, ",\"Overwrite\":true");
    usleep(50000);
    /* meanwhile the pattern changes */
    send_put(r, quick, "/m/chg", "^[a!]+$", 'a', 2, "", ",\"Overwrite\":true");
    read_resp(quick, &a, 5000);
    CK(a.status == 200 && strstr(a.body, "\"Version\":2") != NULL);
    CK(nothing_yet(slow));
    /* the first result was for a pattern the parameter no longer has: matched again against
     * the new one, which the value satisfies */
    read_resp(slow, &a, 10000);
    CK(a.status == 200 && strstr(a.body, "\"Version\":3") != NULL);
    close(slow);
    close(quick);
}

Test(al_match, a_pattern_changed_during_the_match_is_matched_again)
{
    run_and_check(c_pattern_changed, NULL);
    al_match_stats st = match_stats();
    cr_assert_eq(st.rounds, 1);
    cr_assert_eq(st.queued, 4);
    ok("AmazonSSM.GetParameter", "{\"Name\":\"/m/chg\"}");
    cr_assert_str_eq(jstr(es_json_get(T.resp, "Parameter"), "Value") + SLOW_FILL, SLOW_TAIL);
}

/* ---- the value nowhere ---- */

#define SECRET "s3cr3t-VALUE-7d1f"
static void c_value_hidden(run *r)
{
    int fd = dial(r->port);
    resp a;
    /* refused by the pattern */
    send_put(r, fd, "/m/h", "^[0-9]+$", 'x', 0, SECRET, "");
    read_resp(fd, &a, 5000);
    CK(a.status == 400 && strstr(a.body, MISMATCH) != NULL);
    CK(strstr(a.body, SECRET) == NULL && strstr(a.head, SECRET) == NULL);
    /* refused as too costly */
    send_put(r, fd, "/m/h", BACKREF_JSON, 'a', 1599, "b" SECRET, "");
    read_resp(fd, &a, 5000);
    CK(a.status == 400 && strstr(a.body, SECRET) == NULL);
    /* accepted: the answer is the version, not the value */
    send_put(r, fd, "/m/h", "^s3", 'x', 0, SECRET, "");
    read_resp(fd, &a, 5000);
    CK(a.status == 200 && strstr(a.body, SECRET) == NULL);
    /* a caller that leaves */
    int gone = dial(r->port);
    send_put(r, gone, "/m/h2", BACKREF_JSON, 'a', 1599, "b" SECRET, "");
    close(gone);
    close(fd);
}

Test(al_match, the_value_is_in_no_answer_and_no_log_line)
{
    run_and_check(c_value_hidden, NULL);
    /* the caller that left may be gone before its request was read: 3 or 4 */
    cr_assert_geq(match_stats().queued, 3);
    cr_assert_null(
        memmem(log_lines.data ? log_lines.data : "", log_lines.len, SECRET, strlen(SECRET)),
        "logged: %s", es_buf_cstr(&log_lines));
}
