#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"

#include <yajl/yajl_gen.h>

static es_json *parse_ok(const char *s)
{
    es_json *j = NULL;
    char err[128];
    int r = es_json_parse(s, strlen(s), NULL, &j, err, sizeof err);
    cr_assert_eq(r, 0, "parse of %s failed: %s", s, err);
    return j;
}

Test(json, parse_and_lookup)
{
    es_json *j = parse_ok("{\"Name\":\"/a/b\",\"WithDecryption\":true,\"Version\":3,"
                          "\"Names\":[\"x\",\"y\"],\"Big\":12345678901234567890,\"N\":null}");
    cr_assert_str_eq(es_json_get_str(j, "Name"), "/a/b");
    bool b = false;
    cr_assert(es_json_get_bool(j, "WithDecryption", &b));
    cr_assert(b);
    int64_t v = 0;
    cr_assert(es_json_get_int64(j, "Version", &v));
    cr_assert_eq(v, 3);
    cr_assert_not(es_json_get_int64(j, "Big", &v), "out of range must not convert");
    cr_assert_str_eq(es_json_get(j, "Big")->u.number.text, "12345678901234567890");
    const es_json *names = es_json_get(j, "Names");
    cr_assert_eq(es_json_len(names), 2);
    cr_assert_str_eq(es_json_as_str(es_json_at(names, 1)), "y");
    cr_assert_null(es_json_at(names, 2));
    cr_assert_null(es_json_get_str(j, "Missing"));
    cr_assert_null(es_json_get_str(j, "Version"), "a number is not a string");
    cr_assert_eq(es_json_get(j, "N")->type, ES_JSON_NULL);
    es_json_free(j);
}

Test(json, embedded_nul_in_string_keeps_length)
{
    es_json *j = parse_ok("[\"a\\u0000b\"]");
    const es_json *s = es_json_at(j, 0);
    cr_assert_eq(s->u.string.len, 3);
    cr_assert_eq(memcmp(s->u.string.s, "a\0b", 3), 0);
    es_json_free_secret(j);
}

static int parse_err(const char *s, const es_json_limits *lim)
{
    es_json *j = NULL;
    char err[128] = "";
    int r = es_json_parse(s, strlen(s), lim, &j, err, sizeof err);
    cr_assert_null(j);
    cr_assert_neq(err[0], '\0', "an error says why");
    return r;
}

Test(json, limits_each_have_their_error)
{
    es_json_limits lim = {.max_bytes = 64, .max_depth = 3, .max_string = 5, .max_values = 6};
    cr_assert_eq(parse_err("[[[[1]]]]", &lim), ES_JSON_E_TOO_DEEP);
    cr_assert_eq(parse_err("[\"toolong\"]", &lim), ES_JSON_E_STRING_TOO_LONG);
    cr_assert_eq(parse_err("{\"longkey\":1}", &lim), ES_JSON_E_STRING_TOO_LONG);
    cr_assert_eq(parse_err("[1,2,3,4,5,6,7]", &lim), ES_JSON_E_TOO_MANY_VALUES);
    char big[100];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[0] = '1';
    cr_assert_eq(parse_err(big, &lim), ES_JSON_E_TOO_BIG);
}

Test(json, syntax_errors_do_not_echo_input)
{
    es_json *j = NULL;
    char err[128];
    const char *s = "{\"SecretString\": \"hunter2\" oops}";
    int r = es_json_parse(s, strlen(s), NULL, &j, err, sizeof err);
    cr_assert_eq(r, ES_JSON_E_SYNTAX);
    cr_assert_null(strstr(err, "hunter2"), "error text quotes the input: %s", err);
    cr_assert_eq(parse_err("", NULL), ES_JSON_E_SYNTAX);
    cr_assert_eq(parse_err("{} {}", NULL), ES_JSON_E_SYNTAX);
    cr_assert_eq(parse_err("[1,]", NULL), ES_JSON_E_SYNTAX);
}

Test(json, allocation_failures_never_leak)
{
    /* under ASan a leak on any failure path fails the test run */
    const char *s = "{\"a\":[1,{\"b\":\"c\"},true,null],\"d\":\"e\"}";
    for (long n = 0; n < 40; n++) {
        es_json *j = NULL;
        es_alloc_fail_after(n);
        int r = es_json_parse(s, strlen(s), NULL, &j, NULL, 0);
        es_alloc_fail_after(-1);
        if (r == 0) {
            es_json_free(j);
            return;
        }
        cr_assert(r == ES_JSON_E_NOMEM || r == ES_JSON_E_SYNTAX, "n=%ld r=%d", n, r);
    }
    cr_assert_fail("parse never succeeded");
}

Test(json, writer_refuses_nan_and_infinity)
{
    double bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_buf out;
        es_buf_init(&out, 4096);
        es_jw w;
        es_jw_init(&w, &out);
        es_jw_arr(&w);
        es_jw_double(&w, bad[i]);
        es_jw_arr_end(&w);
        cr_assert_eq(es_jw_finish(&w), -EINVAL, "value %zu was written: %s", i,
                     out.data ? out.data : "");
        es_buf_free(&out);
    }
}

Test(json, writer_round_trip)
{
    es_buf out;
    es_buf_init(&out, 4096);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "Name", "quote\" and \\ and \n");
    es_jw_kint(&w, "Version", -7);
    es_jw_kbool(&w, "Ok", true);
    es_jw_key(&w, "When");
    es_jw_double(&w, 1700000000.5);
    es_jw_key(&w, "List");
    es_jw_arr(&w);
    es_jw_str(&w, "a");
    es_jw_null(&w);
    es_jw_arr_end(&w);
    es_jw_obj_end(&w);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_str_eq(out.data,
                     "{\"Name\":\"quote\\\" and \\\\ and \\n\",\"Version\":-7,\"Ok\":true,"
                     "\"When\":1700000000.500,\"List\":[\"a\",null]}");
    es_json *j = parse_ok(out.data);
    es_buf again;
    es_buf_init(&again, 4096);
    es_jw_init(&w, &again);
    es_jw_value(&w, j);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_str_eq(again.data, out.data);
    es_json_free(j);
    es_buf_free(&out);
    es_buf_free(&again);
}

Test(json, writer_errors_are_sticky)
{
    es_buf out;
    es_buf_init(&out, 10);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_arr(&w);
    es_jw_str(&w, "this does not fit");
    es_jw_arr_end(&w);
    cr_assert_eq(es_jw_finish(&w), -EMSGSIZE);
    es_buf_free(&out);

    es_buf_init(&out, 100);
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_int(&w, 1); /* a value where a key must be */
    cr_assert_neq(es_jw_finish(&w), 0);
    es_buf_free(&out);
}

/* es_jw_double writes what printf("%.3f") writes, by its own path for
 * timestamps and through printf for the rest: compared on edge values and
 * 200000 pseudo-random ones (millisecond timestamps, ties, fractions). */
Test(json, doubles_as_printf_writes_them)
{
    double edge[] = {0,
                     0.0004,
                     0.0005,
                     0.0015,
                     0.9995,
                     0.9999999,
                     1.0005,
                     1700000000.5,
                     1700000000.123,
                     1700000000.9999,
                     4294967296.1,
                     1099511627775.9,
                     1099511627776.0,
                     1e15,
                     -1.5,
                     -0.0004,
                     123456.0625,
                     2.675,
                     1732871234.567};
    char want[400], got[400];
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < sizeof edge / sizeof edge[0] + 200000; i++) {
        double v;
        if (i < sizeof edge / sizeof edge[0]) {
            v = edge[i];
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            switch (i % 4) {
            case 0: /* a stored timestamp: whole milliseconds */
                v = (double)(1600000000000u + x % 200000000000u) / 1000.0;
                break;
            case 1: /* a tie at the half millisecond */
                v = (double)(x % 4000000000u) + (double)(x % 1000) / 1000.0 + 0.0005;
                break;
            case 2:
                v = (double)(x >> 11) / (double)(1u << 30);
                break;
            default:
                v = (double)(x % 100000) / 7.0;
            }
        }
        snprintf(want, sizeof want, "[%.3f]", v);
        es_buf out;
        es_buf_init(&out, 512);
        es_jw w;
        es_jw_init(&w, &out);
        es_jw_arr(&w);
        es_jw_double(&w, v);
        es_jw_arr_end(&w);
        cr_assert_eq(es_jw_finish(&w), 0, "%.17g", v);
        snprintf(got, sizeof got, "%s", out.data);
        es_buf_free(&out);
        cr_assert_str_eq(got, want, "%.17g", v);
    }
}

/* The writer against yajl_gen (which it replaced): the same text for random
 * documents of strings with every byte class (controls, quotes, UTF-8 of 2,
 * 3 and 4 bytes, broken sequences), numbers, booleans and nesting; an error
 * from both for what yajl refuses (invalid UTF-8). */
static void yajl_print(void *ctx, const char *s, size_t len)
{
    es_buf_append(ctx, s, len);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

Test(json, writer_writes_what_yajl_wrote)
{
    uint64_t x = 88172645463325252u;
#define RND() xorshift(&x)
    static const char *pieces[] = {"a",
                                   "\"",
                                   "\\",
                                   "/",
                                   "\b",
                                   "\f",
                                   "\n",
                                   "\r",
                                   "\t",
                                   "\x01",
                                   "\x1f",
                                   " ",
                                   "~",
                                   "\x7f",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80",
                                   "\xc3",
                                   "\xe2\x82",
                                   "\xff",
                                   "\x80",
                                   "\xf8\x88\x80\x80\x80"};
    for (int doc = 0; doc < 3000; doc++) {
        es_buf mine, theirs;
        es_buf_init(&mine, 1u << 20);
        es_buf_init(&theirs, 1u << 20);
        es_jw w;
        es_jw_init(&w, &mine);
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_config(g, yajl_gen_print_callback, yajl_print, &theirs);
        yajl_gen_config(g, yajl_gen_validate_utf8, 1);
        bool yajl_failed = false;
        es_jw_obj(&w);
        yajl_failed |= yajl_gen_map_open(g) != yajl_gen_status_ok;
        int members = (int)(RND() % 8);
        for (int m = 0; m < members; m++) {
            char key[16];
            snprintf(key, sizeof key, "k%d", m);
            es_jw_key(&w, key);
            yajl_failed |=
                yajl_gen_string(g, (const unsigned char *)key, strlen(key)) != yajl_gen_status_ok;
            switch (RND() % 5) {
            case 0: {
                char s[256];
                size_t n = 0, parts = RND() % 12;
                for (size_t i = 0; i < parts; i++) {
                    const char *p = pieces[RND() % (sizeof pieces / sizeof pieces[0])];
                    if (doc % 3 && (unsigned char)p[0] >= 0x80 && strlen(p) < 2)
                        p = "b"; /* mostly valid documents */
                    memcpy(s + n, p, strlen(p));
                    n += strlen(p);
                }
                es_jw_strn(&w, s, n);
                yajl_failed |=
                    yajl_gen_string(g, (const unsigned char *)s, n) != yajl_gen_status_ok;
                break;
            }
            case 1: {
                unsigned shift = (unsigned)(RND() % 63);
                int64_t v = (int64_t)RND() >> shift;
                es_jw_int(&w, v);
                yajl_failed |= yajl_gen_integer(g, (long long)v) != yajl_gen_status_ok;
                break;
            }
            case 2:
                es_jw_bool(&w, x % 2);
                yajl_failed |= yajl_gen_bool(g, (int)(x % 2)) != yajl_gen_status_ok;
                break;
            case 3:
                es_jw_null(&w);
                yajl_failed |= yajl_gen_null(g) != yajl_gen_status_ok;
                break;
            default:
                es_jw_arr(&w);
                yajl_failed |= yajl_gen_array_open(g) != yajl_gen_status_ok;
                for (int i = 0, n = (int)(RND() % 4); i < n; i++) {
                    es_jw_str(&w, "x\ty");
                    yajl_failed |=
                        yajl_gen_string(g, (const unsigned char *)"x\ty", 3) != yajl_gen_status_ok;
                    es_jw_arr(&w);
                    es_jw_arr_end(&w);
                    yajl_failed |= yajl_gen_array_open(g) != yajl_gen_status_ok;
                    yajl_failed |= yajl_gen_array_close(g) != yajl_gen_status_ok;
                    /* plain strings and numbers as items, and an object in
                     * the array: the writer's separator fast path */
                    es_jw_str(&w, "plain");
                    es_jw_int(&w, i);
                    es_jw_obj(&w);
                    es_jw_kstr(&w, "a", "b");
                    es_jw_kint(&w, "n", -i);
                    es_jw_kbool(&w, "t", true);
                    es_jw_key(&w, "z");
                    es_jw_null(&w);
                    es_jw_obj_end(&w);
                    yajl_failed |=
                        yajl_gen_string(g, (const unsigned char *)"plain", 5) != yajl_gen_status_ok;
                    yajl_failed |= yajl_gen_integer(g, i) != yajl_gen_status_ok;
                    yajl_failed |= yajl_gen_map_open(g) != yajl_gen_status_ok;
                    yajl_failed |=
                        yajl_gen_string(g, (const unsigned char *)"a", 1) != yajl_gen_status_ok;
                    yajl_failed |=
                        yajl_gen_string(g, (const unsigned char *)"b", 1) != yajl_gen_status_ok;
                    yajl_failed |=
                        yajl_gen_string(g, (const unsigned char *)"n", 1) != yajl_gen_status_ok;
                    yajl_failed |= yajl_gen_integer(g, -i) != yajl_gen_status_ok;
                    yajl_failed |=
                        yajl_gen_string(g, (const unsigned char *)"t", 1) != yajl_gen_status_ok;
                    yajl_failed |= yajl_gen_bool(g, 1) != yajl_gen_status_ok;
                    yajl_failed |=
                        yajl_gen_string(g, (const unsigned char *)"z", 1) != yajl_gen_status_ok;
                    yajl_failed |= yajl_gen_null(g) != yajl_gen_status_ok;
                    yajl_failed |= yajl_gen_map_close(g) != yajl_gen_status_ok;
                }
                es_jw_arr_end(&w);
                yajl_failed |= yajl_gen_array_close(g) != yajl_gen_status_ok;
            }
        }
        es_jw_obj_end(&w);
        yajl_failed |= yajl_gen_map_close(g) != yajl_gen_status_ok;
        yajl_gen_free(g);
        int r = es_jw_finish(&w);
        if (yajl_failed) {
            cr_assert_eq(r, -EINVAL, "yajl refused document %d, we wrote %s", doc,
                         es_buf_cstr(&mine));
        } else {
            cr_assert_eq(r, 0, "document %d", doc);
            cr_assert_eq(mine.len, theirs.len, "document %d: %s vs %s", doc, es_buf_cstr(&mine),
                         es_buf_cstr(&theirs));
            cr_assert_eq(memcmp(mine.data, theirs.data, mine.len), 0, "document %d: %s vs %s", doc,
                         es_buf_cstr(&mine), es_buf_cstr(&theirs));
        }
        es_buf_free(&mine);
        es_buf_free(&theirs);
    }
#undef RND
}

/* Strings are checked 8 bytes at a time (json.c, word_plain): every byte
 * value at every position of strings 1 to 33 bytes long (around and across
 * word boundaries), in plain text, is written as yajl writes it, or refused
 * as yajl refuses it (a lone byte >= 0x80 is invalid UTF-8). */
Test(json, writer_word_at_a_time_sees_every_byte_everywhere)
{
    for (size_t len = 1; len <= 33; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (unsigned v = 0; v < 256; v++) {
                char s[40];
                memset(s, 'a' + (int)(len % 26), len);
                s[pos] = (char)v;
                es_buf mine, theirs;
                es_buf_init(&mine, 1024);
                es_buf_init(&theirs, 1024);
                es_jw w;
                es_jw_init(&w, &mine);
                es_jw_strn(&w, s, len);
                int r = es_jw_finish(&w);
                yajl_gen g = yajl_gen_alloc(NULL);
                yajl_gen_config(g, yajl_gen_print_callback, yajl_print, &theirs);
                yajl_gen_config(g, yajl_gen_validate_utf8, 1);
                bool yajl_failed =
                    yajl_gen_string(g, (const unsigned char *)s, len) != yajl_gen_status_ok;
                yajl_gen_free(g);
                if (yajl_failed) {
                    cr_assert_eq(r, -EINVAL, "byte 0x%02x at %zu of %zu accepted", v, pos, len);
                } else {
                    cr_assert_eq(r, 0, "byte 0x%02x at %zu of %zu", v, pos, len);
                    cr_assert_eq(mine.len, theirs.len, "byte 0x%02x at %zu of %zu: %s vs %s", v,
                                 pos, len, es_buf_cstr(&mine), es_buf_cstr(&theirs));
                    cr_assert_eq(memcmp(mine.data, theirs.data, mine.len), 0,
                                 "byte 0x%02x at %zu of %zu: %s vs %s", v, pos, len,
                                 es_buf_cstr(&mine), es_buf_cstr(&theirs));
                }
                es_buf_free(&mine);
                es_buf_free(&theirs);
            }
        }
    }
}

/* The writer's fast path (a plain string or number with its separator in
 * one copy when the buffer has room) and its general path give the same
 * text and the same limit: a document written into buffers of every
 * maximum from 0 to its length + 1 is either whole or -EMSGSIZE, never cut
 * or changed; and a number where a key is due is refused on either path. */
Test(json, writer_fast_path_keeps_text_and_limits)
{
    static const char want[] =
        "{\"Parameters\":[{\"Name\":\"/a/b\",\"Type\":\"SecureString\",\"Value\":\"v\\tx\","
        "\"Version\":12,\"LastModifiedDate\":1700000000.500,\"ARN\":\"arn:aws:ssm:r:1:parameter/a/"
        "b\"},"
        "\"x\",7,true,null],\"InvalidParameters\":[]}";
    size_t len = strlen(want);
    for (size_t max = 0; max <= len + 1; max++) {
        es_buf out;
        es_buf_init(&out, max);
        es_jw w;
        es_jw_init(&w, &out);
        es_jw_obj(&w);
        es_jw_key(&w, "Parameters");
        es_jw_arr(&w);
        es_jw_obj(&w);
        es_jw_kstr(&w, "Name", "/a/b");
        es_jw_kstr(&w, "Type", "SecureString");
        es_jw_kstr(&w, "Value", "v\tx");
        es_jw_kint(&w, "Version", 12);
        es_jw_key(&w, "LastModifiedDate");
        es_jw_double(&w, 1700000000.5);
        es_jw_kstr(&w, "ARN", "arn:aws:ssm:r:1:parameter/a/b");
        es_jw_obj_end(&w);
        es_jw_str(&w, "x");
        es_jw_int(&w, 7);
        es_jw_bool(&w, true);
        es_jw_null(&w);
        es_jw_arr_end(&w);
        es_jw_key(&w, "InvalidParameters");
        es_jw_arr(&w);
        es_jw_arr_end(&w);
        es_jw_obj_end(&w);
        int r = es_jw_finish(&w);
        if (max < len) {
            cr_assert_eq(r, -EMSGSIZE, "max %zu: %d", max, r);
        } else {
            cr_assert_eq(r, 0, "max %zu", max);
            cr_assert_str_eq(es_buf_cstr(&out), want, "max %zu", max);
        }
        es_buf_free(&out);
    }
    es_buf out;
    es_buf_init(&out, 4096);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_kint(&w, "a", 1);
    es_jw_int(&w, 2); /* where the next key is due */
    cr_assert_eq(es_jw_finish(&w), -EINVAL);
    es_buf_free(&out);
}

/* Misuse is an error, not invalid JSON. */
Test(json, writer_refuses_misuse)
{
    es_buf out;
    es_buf_init(&out, 4096);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_arr(&w);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "left open");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    es_jw_arr(&w);
    es_jw_obj_end(&w);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "closing the other kind");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_key(&w, "k");
    es_jw_obj_end(&w);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "a key without a value");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    es_jw_str(&w, "one");
    es_jw_str(&w, "two");
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "two documents");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    for (int i = 0; i < ES_JW_DEPTH_MAX + 1; i++)
        es_jw_arr(&w);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "too deep");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    for (int i = 0; i < ES_JW_DEPTH_MAX; i++)
        es_jw_arr(&w);
    for (int i = 0; i < ES_JW_DEPTH_MAX; i++)
        es_jw_arr_end(&w);
    cr_assert_eq(es_jw_finish(&w), 0, "deep enough");
    es_buf_free(&out);
}
