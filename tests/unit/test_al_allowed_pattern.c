/* Embedded SSM PutParameter's AllowedPattern (issue 17): matched with PCRE2 under bounded
 * cost, so that a pattern that backtracks without end is refused in milliseconds instead of
 * freezing the event loop; ordinary patterns accept and refuse as before (or as AWS's Java
 * regex does); a pattern that does not compile keeps its error; the value is never quoted. */
#include "al_helpers.h"

#include <time.h>

#include "aws/local/ssm.h"
#include "common/alloc.h"

/* Criterion's workers end without LeakSanitizer's exit check: ask for one (no-op without
 * ASan), as aws_fake.h's expect_no_leaks does. */
#if defined(__SANITIZE_ADDRESS__)
#define PAT_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PAT_HAVE_LSAN 1
#endif
#endif
#ifdef PAT_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static void pat_teardown(void)
{
    alt_teardown();
#ifdef PAT_HAVE_LSAN
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (see the report above)");
#endif
}

TestSuite(al_pattern, .init = alt_setup, .fini = pat_teardown);

#define PUT "AmazonSSM.PutParameter"
#define MISMATCH "ParameterPatternMismatchException"
#define TOO_COSTLY "too costly to evaluate"

/* JSON string contents of s (backslashes and quotes escaped; the tests use no control
 * characters) appended at *at. */
static void put_json_str(char **at, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            *(*at)++ = '\\';
        *(*at)++ = *s;
    }
}

/* The request body of a PutParameter of name with value and pattern (NULL: none), extra
 * JSON members (e.g. ",\"Tier\":\"Advanced\"") appended. Static buffers here and below:
 * an assertion that fails leaves nothing for the suite's leak check to report. */
static const char *put_body(const char *name, const char *pattern, const char *value,
                            const char *extra)
{
    static char body[2 * (AL_SSM_ADVANCED_VALUE_MAX + AL_SSM_PATTERN_MAX) + 512];
    size_t need =
        2 * (strlen(value) + (pattern ? strlen(pattern) : 0)) + strlen(name) + strlen(extra) + 128;
    cr_assert_lt(need, sizeof body);
    char *at = body;
    char *const end = body + sizeof body;
    at += snprintf(at, (size_t)(end - at),
                   "{\"Name\":\"%s\",\"Type\":\"String\",\"Overwrite\":true,\"Value\":\"", name);
    put_json_str(&at, value);
    *at++ = '"';
    if (pattern) {
        at += snprintf(at, (size_t)(end - at), ",\"AllowedPattern\":\"");
        put_json_str(&at, pattern);
        *at++ = '"';
    }
    snprintf(at, (size_t)(end - at), "%s}", extra);
    return body;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static double last_cpu_ms; /* this thread's CPU time in the last put_pattern */

/* That PutParameter through call(): its status, and the wall time it took in *ms (its CPU
 * time in last_cpu_ms) */
static int put_pattern(const char *name, const char *pattern, const char *value, const char *extra,
                       double *ms)
{
    const char *body = put_body(name, pattern, value, extra);
    struct timespec w0, w1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    int st = call(PUT, body);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    last_cpu_ms = ms_between(&c0, &c1);
    if (ms)
        *ms = ms_between(&w0, &w1);
    return st;
}

/* n copies of c, then tail, in a static buffer (the next call overwrites it) */
static const char *repeat(char c, size_t n, const char *tail)
{
    static char s[AL_SSM_ADVANCED_VALUE_MAX + 1];
    cr_assert_lt(n + strlen(tail), sizeof s);
    memset(s, c, n);
    memcpy(s + n, tail, strlen(tail) + 1); /* fits: asserted above */
    return s;
}

/* The answer was a refusal because the pattern costs too much, quickly, and did not quote
 * the value (a run of 'a' longer than anything in the pattern). */
static void refused_as_too_costly(int st, double ms, const char *what)
{
    fprintf(stderr, "al_pattern: %s: answered in %.1f ms (%.1f ms CPU) (%s)\n", what, ms,
            last_cpu_ms, T.err.code);
    cr_assert_eq(st, 400, "%s: status %d %s: %s", what, st, T.err.code, T.err.message);
    cr_assert_str_eq(T.err.code, MISMATCH, "%s: %s", what, T.err.message);
    cr_assert_not_null(strstr(T.err.message, TOO_COSTLY), "%s: %s", what, T.err.message);
    cr_assert_null(strstr(T.err.message, "aaaaaaaaaaaaaaaaaaaaaaaa"), "value quoted: %s",
                   T.err.message);
    /* generous: the machine is shared; the point is milliseconds, not seconds */
    cr_assert_lt(ms, 1000.0, "%s took %.1f ms", what, ms);
}

Test(al_pattern, issue_17_backreference_pattern_answers_in_milliseconds)
{
    /* the issue's request: glibc's regexec took 5.8 s on the event loop. PCRE2 sees that no
     * 'b' occurs and answers at once: an ordinary mismatch */
    const char *v = repeat('a', 1600, "");
    double ms = 0;
    int st = put_pattern("/p17", "^((a+)\\2)+b$", v, "", &ms);
    fprintf(stderr,
            "al_pattern: ^((a+)\\2)+b$ on 1600 'a': answered in %.1f ms (%.1f ms CPU) (%s)\n", ms,
            last_cpu_ms, T.err.code);
    cr_assert_eq(st, 400);
    cr_assert_str_eq(T.err.code, MISMATCH, "%s", T.err.message);
    cr_assert_null(strstr(T.err.message, "aaaaaaaaaaaaaaaaaaaaaaaa"), "%s", T.err.message);
    cr_assert_lt(ms, 1000.0, "took %.1f ms", ms);

    /* with the 'b' present the backtracking really runs: it hits the limits and the
     * request is refused as too costly */
    v = repeat('a', 1599, "b");
    st = put_pattern("/p17", "^((a+)\\2)+b$", v, "", &ms);
    refused_as_too_costly(st, ms, "^((a+)\\2)+b$ on 1599 'a' and 'b'");

    /* nothing was stored; the store answers normally, and the pattern itself is fine */
    cr_assert_eq(call("AmazonSSM.GetParameter", "{\"Name\":\"/p17\"}"), 400);
    cr_assert_str_eq(T.err.code, "ParameterNotFound");
    cr_assert_eq(put_pattern("/p17", "^((a+)\\2)+b$", "aaaab", "", NULL), 0);
}

Test(al_pattern, unanchored_runaway_is_bounded_across_start_positions)
{
    /* PCRE2's match limit counts per start position: 1001 starts of 2^17 steps each took
     * 2.9 s with the match limit alone; the store's own step count is over all of them */
    const char *v = repeat('a', 1000, "b");
    double ms = 0;
    int st = put_pattern("/run", "(?:a|a){17}b", v, "", &ms);
    refused_as_too_costly(st, ms, "(?:a|a){17}b on 1000 'a' and 'b'");
    v = repeat('a', 40, "!");
    st = put_pattern("/run", "^(a+)+$", v, "", &ms);
    refused_as_too_costly(st, ms, "^(a+)+$ on 40 'a' and '!'");
}

Test(al_pattern, expensive_steps_are_bounded_in_time)
{
    /* every step re-reads a 4000-character lookbehind: the step count alone would allow
     * about a second; the store's CPU-time ceiling (200 ms) stops it. Asserted on this
     * thread's CPU time: a loaded machine may stretch the wall time past it */
    const char *v = repeat('a', 8000, "!");
    double ms = 0;
    int st = put_pattern("/slow", "^(?:(?<=[a-z]{4000})a|a)*$", v, ",\"Tier\":\"Advanced\"", &ms);
    fprintf(stderr,
            "al_pattern: 4000-character lookbehind on 8000 'a': answered in %.1f ms "
            "(%.1f ms CPU) (%s)\n",
            ms, last_cpu_ms, T.err.code);
    cr_assert_eq(st, 400, "status %d %s: %s", st, T.err.code, T.err.message);
    cr_assert_str_eq(T.err.code, MISMATCH, "%s", T.err.message);
    cr_assert_not_null(strstr(T.err.message, TOO_COSTLY), "%s", T.err.message);
    cr_assert_lt(last_cpu_ms, 1000.0, "took %.1f ms of CPU", last_cpu_ms);
}

typedef struct pcase {
    const char *pattern, *value;
    bool accepted;
} pcase;

Test(al_pattern, ordinary_patterns_accept_and_refuse)
{
    static const pcase cases[] = {
        {"^[0-9]+$", "123", true},
        {"^[0-9]+$", "abc", false},
        /* Java's (AWS's) shorthand classes, which POSIX ERE did not have */
        {"^\\d+$", "123", true},
        {"^\\d+$", "12a", false},
        {"^\\w+$", "snake_case1", true},
        {"^\\S+$", "two words", false},
        /* unanchored: found anywhere, as regexec did */
        {"[0-9]", "abc1", true},
        {"[0-9]", "abc", false},
        {"^[a-zA-Z0-9_.-]+$", "my-value_1.0", true},
        {"^[a-zA-Z0-9_.-]+$", "bad value", false},
        {"^(dev|test|prod)$", "prod", true},
        {"^(dev|test|prod)$", "stage", false},
        {"^[A-Za-z0-9+/]*={0,2}$", "QUJDRA==", true},
        {"^https?://[^ ]+$", "https://example.com/x", true},
        {"^https?://[^ ]+$", "ftp://example.com", false},
        {"^[^@\\s]+@[^@\\s]+\\.\\w{2,}$", "ops@example.com", true},
        {"^[^@\\s]+@[^@\\s]+\\.\\w{2,}$", "ops at example.com", false},
        {"^(?:(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)$",
         "192.168.100.200", true},
        {"^(?:(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)$",
         "192.168.100.256", false},
        /* characters, not bytes, as in Java: 'é' is one */
        {"^.{5}$", "h\xc3\xa9llo", true},
        {"^[a-z]{3,8}$", "ab", false},
        {"^((a+)\\2)+b$", "aaaab", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "/ord/%zu", i);
        int st = put_pattern(name, cases[i].pattern, cases[i].value, "", NULL);
        if (cases[i].accepted) {
            cr_assert_eq(st, 0, "%s on '%s': %s %s", cases[i].pattern, cases[i].value, T.err.code,
                         T.err.message);
        } else {
            cr_assert_eq(st, 400, "%s on '%s' accepted", cases[i].pattern, cases[i].value);
            cr_assert_str_eq(T.err.code, MISMATCH, "%s on '%s': %s", cases[i].pattern,
                             cases[i].value, T.err.message);
            cr_assert_null(strstr(T.err.message, TOO_COSTLY), "%s", T.err.message);
        }
    }
    /* the mismatch message names the pattern, never the value (it may be a secret) */
    cr_assert_eq(put_pattern("/ord/msg", "^\\d+$", "s3cr3t-value", "", NULL), 400);
    cr_assert_str_eq(T.err.message,
                     "Parameter value, cannot be validated against allowedPattern: ^\\d+$");
    cr_assert_null(strstr(T.err.message, "s3cr3t"));
}

Test(al_pattern, largest_values_stay_within_the_limits)
{
    /* patterns that backtrack a step or two per character, on an 8 KB Advanced value: the
     * limits leave them ample room */
    static const char *const patterns[] = {
        "^(?:[a-z]|-)+$", "^(([a-z])|(-))+$", "^((a)|(b)|(c)|(d)|(-))+$",
        "^(\\w+-)*\\w+$", "^([a-z]+-?)+$",
    };
    static char v[AL_SSM_ADVANCED_VALUE_MAX + 1];
    for (size_t i = 0; i < AL_SSM_ADVANCED_VALUE_MAX; i++)
        v[i] = "abc-"[i % 4];
    v[AL_SSM_ADVANCED_VALUE_MAX - 1] = 'd';
    v[AL_SSM_ADVANCED_VALUE_MAX] = '\0';
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        double ms = 0;
        int st = put_pattern("/big", patterns[i], v, ",\"Tier\":\"Advanced\"", &ms);
        fprintf(stderr, "al_pattern: %s on %d characters: %s in %.1f ms (%.1f ms CPU)\n",
                patterns[i], AL_SSM_ADVANCED_VALUE_MAX, st ? T.err.code : "accepted", ms,
                last_cpu_ms);
        cr_assert_eq(st, 0, "%s: %s %s", patterns[i], T.err.code, T.err.message);
    }
}

Test(al_pattern, invalid_patterns_keep_their_error)
{
    static const char *const bad[] = {"[", "(", "a{2,1}", "\\", "*a", "(?<name", "a)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(put_pattern("/bad", bad[i], "v", "", NULL), 400, "%s accepted", bad[i]);
        cr_assert_str_eq(T.err.code, "InvalidAllowedPatternException", "%s: %s", bad[i],
                         T.err.message);
    }
    cr_assert_eq(put_pattern("/bad", "[", "v", "", NULL), 400);
    cr_assert_str_eq(T.err.message, "The allowed pattern '[' is not a valid regular expression.");
}

Test(al_pattern, inherited_pattern_is_bounded_too)
{
    /* an overwrite without AllowedPattern checks the version's pattern the same way */
    cr_assert_eq(put_pattern("/inh", "^((a+)\\2)+b$", "aab", "", NULL), 0);
    const char *v = repeat('a', 1599, "b");
    double ms = 0;
    int st = put_pattern("/inh", NULL, v, "", &ms);
    refused_as_too_costly(st, ms, "inherited ^((a+)\\2)+b$");
}

/* Every allocation of the check (PCRE2's contexts, code, match data and frames go through
 * es_malloc) failing in turn: a complete error each time, nothing leaked (the suite's leak
 * check), and the store usable afterwards. */
static void pattern_under_failures(const char *pattern, const char *value, const char *want)
{
    const char *body = put_body("/alloc", pattern, value, "");
    for (long n = 0; n < 4000; n++) {
        es_buf_reset(&T.out);
        memset(&T.err, 0, sizeof T.err);
        es_alloc_fail_after(n);
        int r = al_dispatch(T.ctx, PUT, "arn:aws:iam::123456789012:user/tester", body, strlen(body),
                            &T.out, &T.err);
        es_alloc_fail_after(-1);
        if (r == 0) {
            cr_assert_gt(n, 0, "%s never allocated", pattern);
            cr_assert_null(want, "%s n=%ld succeeded, want %s", pattern, n, want);
            return;
        }
        cr_assert(T.err.status >= 400 && T.err.code[0], "%s n=%ld: incomplete error", pattern, n);
        cr_assert_eq(T.out.len, 0, "%s n=%ld: half an answer", pattern, n);
        /* an injected failure: an internal error, or the body's parse failing */
        if (T.err.status >= 500 || strcmp(T.err.code, "SerializationException") == 0)
            continue;
        cr_assert_gt(n, 0, "%s never allocated", pattern);
        cr_assert_not_null(want, "%s n=%ld: %s %s", pattern, n, T.err.code, T.err.message);
        cr_assert_str_eq(T.err.code, want, "%s n=%ld: %s", pattern, n, T.err.message);
        return;
    }
    cr_assert_fail("%s never completed", pattern);
}

Test(al_pattern, allocation_failures)
{
    pattern_under_failures("^(a|b)+$", "abababababababababababababababab", NULL);
    pattern_under_failures("^\\d+$", "abc", MISMATCH);
    pattern_under_failures("(", "abc", "InvalidAllowedPatternException");
    const char *v = repeat('a', 41, "!");
    pattern_under_failures("^(a+)+$", v, MISMATCH);
    cr_assert_eq(put_pattern("/alloc", "^\\d+$", "42", "", NULL), 0);
}
