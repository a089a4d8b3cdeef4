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

/* A closed top-level array or object ends the parse without
 * yajl_complete_parse (json.c: its end-of-input token cost the lexer a 2 KiB
 * buffer): every strict prefix of such a document is still refused, what
 * follows it but whitespace is refused, and a top-level scalar (a number
 * ends only at the end of input) still takes yajl_complete_parse's word. */
Test(json, complete_documents_and_every_prefix)
{
    static const char *docs[] = {
        "{\"Names\":[\"/a/b\",\"/c\"],\"WithDecryption\":true}",
        "[1,-2.5e3,{\"k\":[null,false]},\"s\\n\",[]]",
        "{\"a\":{\"b\":{\"c\":12}}}",
        "[[[0]]]",
        "{}",
        "[]",
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        const char *s = docs[d];
        size_t n = strlen(s);
        for (size_t k = 0; k < n; k++) {
            es_json *j = NULL;
            int r = es_json_parse(s, k, NULL, &j, NULL, 0);
            cr_assert_eq(r, ES_JSON_E_SYNTAX, "prefix %zu of %s: %d", k, s, r);
            cr_assert_null(j);
        }
        es_json_free(parse_ok(s));
        static const char *ok_tails[] = {" ", "\n", " \t\r\n "};
        /* (a string left open after the document, "{}\"", yajl takes as
         * whitespace still to come: accepted before and after) */
        static const char *bad_tails[] = {"x",    "]",   "}",   " 1",    "1",    "-",   ",",
                                          " {}",  " /",  "tru", " nul",  "0.",   "1e5", "[",
                                          " [1]", "\t7", "\n{", " \"\"", "\r\nf"};
        char buf[256];
        for (size_t t = 0; t < sizeof ok_tails / sizeof ok_tails[0]; t++) {
            snprintf(buf, sizeof buf, "%s%s", s, ok_tails[t]);
            es_json_free(parse_ok(buf));
        }
        for (size_t t = 0; t < sizeof bad_tails / sizeof bad_tails[0]; t++) {
            snprintf(buf, sizeof buf, "%s%s", s, bad_tails[t]);
            cr_assert_eq(parse_err(buf, NULL), ES_JSON_E_SYNTAX, "%s", buf);
        }
    }
    /* scalars at the top: whole only at the end of input */
    es_json *j = parse_ok("123");
    cr_assert_str_eq(j->u.number.text, "123");
    es_json_free(j);
    j = parse_ok(" -1.5e3 ");
    cr_assert_str_eq(j->u.number.text, "-1.5e3");
    es_json_free(j);
    j = parse_ok("true");
    cr_assert_eq(j->type, ES_JSON_BOOL);
    es_json_free(j);
    j = parse_ok("\"s\"");
    cr_assert_str_eq(es_json_as_str(j), "s");
    es_json_free(j);
    cr_assert_eq(parse_err("tru", NULL), ES_JSON_E_SYNTAX);
    cr_assert_eq(parse_err("1.", NULL), ES_JSON_E_SYNTAX);
    cr_assert_eq(parse_err("\"s", NULL), ES_JSON_E_SYNTAX);
    cr_assert_eq(parse_err("1 2", NULL), ES_JSON_E_SYNTAX);
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

/* ---- the parse's arena ---- */

/* es_json_value written back: the compact text of a parsed compact document
 * is the document (the writer writes what yajl reads). */
static void assert_round_trip(const char *s, size_t len, const es_json_limits *lim)
{
    es_json *j = NULL;
    char err[128];
    int r = es_json_parse(s, len, lim, &j, err, sizeof err);
    cr_assert_eq(r, 0, "parse failed: %s", err);
    es_buf out;
    es_buf_init(&out, 4u << 20);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_value(&w, j);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_eq(out.len, len, "written %zu bytes, read %zu", out.len, len);
    cr_assert_eq(memcmp(out.data, s, len), 0);
    es_buf_free(&out);
    es_json_free_secret(j);
}

/* A request body's tree is one allocation (the document with its first
 * block; yajl's own memory is on the parser's stack): the first allocation
 * failing fails the parse, none after it is asked for. */
Test(json, arena_one_allocation_for_a_request_body)
{
    const char *s =
        "{\"Names\":[\"/bench/db/secret01\",\"/bench/db/secret02\",\"/bench/db/secret03\","
        "\"/bench/db/secret04\",\"/bench/db/secret05\",\"/bench/db/secret06\","
        "\"/bench/db/secret07\",\"/bench/db/secret08\",\"/bench/db/secret09\","
        "\"/bench/db/secret10\"],\"WithDecryption\":true}";
    es_json *j = NULL;
    es_alloc_fail_after(0);
    int r = es_json_parse(s, strlen(s), NULL, &j, NULL, 0);
    es_alloc_fail_after(-1);
    cr_assert_eq(r, ES_JSON_E_NOMEM);
    cr_assert_null(j);
    es_alloc_fail_after(1);
    r = es_json_parse(s, strlen(s), NULL, &j, NULL, 0);
    es_alloc_fail_after(-1);
    cr_assert_eq(r, 0, "a second allocation was asked for");
    cr_assert_eq(es_json_len(es_json_get(j, "Names")), 10);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(j, "Names"), 9)), "/bench/db/secret10");
    es_json_free_secret(j);
    assert_round_trip(s, strlen(s), NULL);
}

/* Limits at their edge, each needing blocks beyond the first: the whole
 * value at the limit is read back, one more is refused with its error. */
Test(json, arena_grows_at_every_limit)
{
    es_json_limits lim = {
        .max_bytes = 1u << 21, .max_depth = 32, .max_string = 300000, .max_values = 5001};
    size_t cap = 700000;
    char *s = malloc(cap);
    cr_assert_not_null(s);

    /* a string of max_string bytes (larger than any block grown so far) */
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t n = 0, sl = lim.max_string + extra;
        s[n++] = '[';
        s[n++] = '"';
        for (size_t i = 0; i < sl; i++)
            s[n++] = (char)('a' + i % 26);
        s[n++] = '"';
        s[n++] = ']';
        if (!extra) {
            assert_round_trip(s, n, &lim);
        } else {
            es_json *j = NULL;
            cr_assert_eq(es_json_parse(s, n, &lim, &j, NULL, 0), ES_JSON_E_STRING_TOO_LONG);
        }
    }
    /* a key of max_string bytes */
    {
        size_t n = 0;
        s[n++] = '{';
        s[n++] = '"';
        for (size_t i = 0; i < lim.max_string; i++)
            s[n++] = 'k';
        memcpy(s + n, "\":1}", 4);
        n += 4;
        assert_round_trip(s, n, &lim);
    }
    /* max_values values: an array of 5000 numbers and strings (the array
     * is a value too), then one more */
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t n = 0;
        s[n++] = '[';
        for (size_t i = 0; i < lim.max_values - 1 + extra; i++)
            n += (size_t)snprintf(s + n, cap - n, i % 2 ? "%s%zu" : "%s\"v%zu\"", i ? "," : "", i);
        s[n++] = ']';
        if (!extra) {
            assert_round_trip(s, n, &lim);
        } else {
            es_json *j = NULL;
            cr_assert_eq(es_json_parse(s, n, &lim, &j, NULL, 0), ES_JSON_E_TOO_MANY_VALUES);
        }
    }
    /* an object of 2000 keys (more children than the builder keeps on
     * its stack) */
    {
        size_t n = 0;
        s[n++] = '{';
        for (size_t i = 0; i < 2000; i++)
            n += (size_t)snprintf(s + n, cap - n, "%s\"k%zu\":[%zu,{\"x\":null}]", i ? "," : "", i,
                                  i);
        s[n++] = '}';
        es_json_limits many = lim;
        many.max_values = 100000;
        assert_round_trip(s, n, &many);
        es_json *j = NULL;
        cr_assert_eq(es_json_parse(s, n, &many, &j, NULL, 0), 0);
        cr_assert_eq(es_json_len(j), 2000);
        int64_t v = 0;
        cr_assert(es_json_as_int64(es_json_at(es_json_get(j, "k1234"), 0), &v));
        cr_assert_eq(v, 1234);
        es_json_free(j);
    }
    /* max_depth levels, each with children before and after the next */
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t n = 0, d = lim.max_depth + extra;
        for (size_t i = 0; i < d; i++)
            n += (size_t)snprintf(s + n, cap - n, i % 2 ? "{\"a\":1,\"b\":" : "[\"x\",");
        s[n++] = '0';
        for (size_t i = d; i-- > 0;)
            n += (size_t)snprintf(s + n, cap - n, i % 2 ? ",\"c\":true}" : ",null]");
        if (!extra) {
            assert_round_trip(s, n, &lim);
        } else {
            es_json *j = NULL;
            cr_assert_eq(es_json_parse(s, n, &lim, &j, NULL, 0), ES_JSON_E_TOO_DEEP);
        }
    }
    /* max_bytes exactly: a document of that size (spaces after it), one
     * byte more */
    for (size_t extra = 0; extra <= 1; extra++) {
        es_json_limits small = {
            .max_bytes = 4096, .max_depth = 4, .max_string = 4096, .max_values = 100};
        size_t n = small.max_bytes + extra;
        memset(s, ' ', n);
        memcpy(s, "[\"abc\",[1,2]]", 13);
        es_json *j = NULL;
        int r = es_json_parse(s, n, &small, &j, NULL, 0);
        cr_assert_eq(r, extra ? ES_JSON_E_TOO_BIG : 0, "extra %zu: %d", extra, r);
        if (!extra)
            cr_assert_str_eq(es_json_as_str(es_json_at(j, 0)), "abc");
        es_json_free(j);
    }
    free(s);
}

/* Out of memory at every allocation of a document that needs several
 * blocks and the builder's slots on the heap: NOMEM, nothing leaked (ASan),
 * until the parse succeeds whole. */
Test(json, arena_allocation_failures_at_every_step)
{
    char s[40000];
    size_t n = 0;
    s[n++] = '[';
    for (size_t i = 0; i < 1500; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "%s\"value %zu\"", i ? "," : "", i);
    s[n++] = ']';
    s[n] = '\0';
    for (long k = 0;; k++) {
        cr_assert_lt(k, 100, "never succeeded");
        es_json *j = NULL;
        es_alloc_fail_after(k);
        int r = es_json_parse(s, n, NULL, &j, NULL, 0);
        es_alloc_fail_after(-1);
        if (r == 0) {
            cr_assert_gt(k, 2, "more than one block and the slots: several allocations");
            cr_assert_eq(es_json_len(j), 1500);
            cr_assert_str_eq(es_json_as_str(es_json_at(j, 1499)), "value 1499");
            es_json_free_secret(j);
            break;
        }
        cr_assert_eq(r, ES_JSON_E_NOMEM, "k=%ld r=%d", k, r);
        cr_assert_null(j);
    }
}

/* es_json_free_secret's wipe: every string, key and number of the tree,
 * in the first block and in later ones, reads as zeros after it. */
typedef struct seen_str {
    const char *p;
    size_t len;
} seen_str;

static void collect(const es_json *v, seen_str *seen, size_t *ns, size_t max)
{
    cr_assert_lt(*ns + 1, max);
    switch (v->type) {
    case ES_JSON_STRING:
        seen[(*ns)++] = (seen_str){v->u.string.s, v->u.string.len};
        break;
    case ES_JSON_NUMBER:
        seen[(*ns)++] = (seen_str){v->u.number.text, strlen(v->u.number.text)};
        break;
    case ES_JSON_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++)
            collect(v->u.array.items[i], seen, ns, max);
        break;
    case ES_JSON_OBJECT:
        for (size_t i = 0; i < v->u.object.n; i++) {
            seen[(*ns)++] = (seen_str){v->u.object.keys[i], strlen(v->u.object.keys[i])};
            collect(v->u.object.values[i], seen, ns, max);
        }
        break;
    default:
        break;
    }
}

Test(json, arena_wipe_covers_every_string)
{
    static char s[40000];
    static seen_str seen[2100];
    /* 1000 one-digit numbers: 42 bytes of tree each for 2 of text, so the
     * strings after them are in later blocks */
    size_t n = (size_t)snprintf(s, sizeof s, "{\"SecretString\":\"hunter2\",\"many\":[");
    for (size_t i = 0; i < 1000; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "%s%zu", i ? "," : "", i % 10);
    n += (size_t)snprintf(s + n, sizeof s - n,
                          "],\"later\":[\"after the many\",\"esc\\n\\u00e9\",67890]}");
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(s, n, NULL, &j, NULL, 0), 0);
    size_t ns = 0;
    collect(j, seen, &ns, sizeof seen / sizeof seen[0]);
    cr_assert_eq(ns, 2 + 1 + 1000 + 1 + 3, "%zu strings", ns);
    cr_assert_eq(seen[1].len, 7);
    cr_assert_eq(memcmp(seen[1].p, "hunter2", 7), 0);
    cr_assert_eq(memcmp(seen[ns - 2].p, "esc\n\xc3\xa9", 6), 0);
    es_json_wipe(j);
    for (size_t i = 0; i < ns; i++)
        for (size_t k = 0; k <= seen[i].len; k++)
            cr_assert_eq(seen[i].p[k], 0, "string %zu byte %zu not wiped", i, k);
    es_json_free(j);
}

/* yajl's own memory: a string long enough that its decode buffer (escapes)
 * outgrows the scratch area and is reallocated on the heap, read whole. */
Test(json, long_escaped_strings_through_yajls_heap_buffers)
{
    size_t reps = 20000, n = 0;
    char *s = malloc(reps * 2 + 16);
    cr_assert_not_null(s);
    s[n++] = '[';
    s[n++] = '"';
    for (size_t i = 0; i < reps; i++) {
        s[n++] = '\\';
        s[n++] = i % 2 ? 'n' : 't';
    }
    s[n++] = '"';
    s[n++] = ']';
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(s, n, NULL, &j, NULL, 0), 0);
    const es_json *v = es_json_at(j, 0);
    cr_assert_eq(v->u.string.len, reps);
    for (size_t i = 0; i < reps; i++)
        cr_assert_eq(v->u.string.s[i], i % 2 ? '\n' : '\t', "at %zu", i);
    es_json_free_secret(j);
    free(s);
}

/* The writer's one-pass copy (json.c, copy_plain: words of 8, the last one
 * overlapping, 4-byte halves under 8, bytes under 4) inside containers,
 * where it is taken: every byte value at every position of strings 0 to 49
 * bytes long (with SSE2, words of 16: three whole ones and every overlap of
 * the last), as an array's second item, an object's key and its value, and
 * a literal key's value (es_jw_kstrn_lit), is written as yajl writes it or
 * refused as yajl refuses it. */
Test(json, writer_one_pass_copy_sees_every_byte_everywhere)
{
    for (size_t len = 0; len <= 49; len++) {
        for (size_t pos = 0; pos < (len ? len : 1); pos++) {
            for (unsigned v = 0; v < (len ? 256u : 1u); v++) {
                char s[56];
                memset(s, 'A' + (int)(len % 26), len);
                if (len)
                    s[pos] = (char)v;
                es_buf mine, theirs;
                es_buf_init(&mine, 1024);
                es_buf_init(&theirs, 1024);
                es_jw w;
                es_jw_init(&w, &mine);
                es_jw_arr(&w);
                es_jw_str(&w, "x");
                es_jw_strn(&w, s, len);
                es_jw_obj(&w);
                es_jw_strn(&w, s, len); /* a key */
                es_jw_strn(&w, s, len); /* its value */
                es_jw_kstrn_lit(&w, ES_JW_LIT("k"), s, len);
                es_jw_obj_end(&w);
                es_jw_arr_end(&w);
                int r = es_jw_finish(&w);
                yajl_gen g = yajl_gen_alloc(NULL);
                yajl_gen_config(g, yajl_gen_print_callback, yajl_print, &theirs);
                yajl_gen_config(g, yajl_gen_validate_utf8, 1);
                const unsigned char *u = (const unsigned char *)s;
                bool yajl_failed = yajl_gen_array_open(g) != yajl_gen_status_ok ||
                                   yajl_gen_string(g, (const unsigned char *)"x", 1) ||
                                   yajl_gen_string(g, u, len) || yajl_gen_map_open(g) ||
                                   yajl_gen_string(g, u, len) || yajl_gen_string(g, u, len) ||
                                   yajl_gen_string(g, (const unsigned char *)"k", 1) ||
                                   yajl_gen_string(g, u, len) || yajl_gen_map_close(g) ||
                                   yajl_gen_array_close(g);
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

/* Every buffer limit around a string that needs escaping at its first or
 * its last byte, a control character, UTF-8 and a plain one: whole or
 * -EMSGSIZE, never cut; and what the one-pass copy wrote past the contents
 * before it found the escape is inside the extent a secret wipe covers. */
Test(json, writer_one_pass_copy_at_every_limit_and_wipe_extent)
{
    static const char *const cases[] = {
        "\"SECRETSECRETSECRET",
        "SECRETSECRETSECRET\\",
        "SECR\x01TSECRETSECRET",
        "SECRET\xc3\xa9SECRET",
        "SECRETSECRETSECRETSECRET",
        "SECR",
        "SE\n",
        "\tSECRET",
        "",
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *v = cases[c];
        size_t vl = strlen(v);
        /* the whole document, as yajl writes it */
        es_buf want;
        es_buf_init(&want, 4096);
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_config(g, yajl_gen_print_callback, yajl_print, &want);
        cr_assert_eq(yajl_gen_map_open(g), yajl_gen_status_ok);
        yajl_gen_string(g, (const unsigned char *)"Value", 5);
        cr_assert_eq(yajl_gen_string(g, (const unsigned char *)v, vl), yajl_gen_status_ok);
        yajl_gen_map_close(g);
        yajl_gen_free(g);
        for (size_t max = 0; max <= want.len + 40; max++) {
            es_buf out;
            es_buf_init(&out, max);
            es_jw w;
            es_jw_init(&w, &out);
            es_jw_obj(&w);
            es_jw_kstr(&w, "Value", v);
            es_jw_obj_end(&w);
            int r = es_jw_finish(&w);
            if (max < want.len) {
                cr_assert_eq(r, -EMSGSIZE, "case %zu max %zu: %d", c, max, r);
            } else {
                cr_assert_eq(r, 0, "case %zu max %zu", c, max);
                cr_assert_str_eq(es_buf_cstr(&out), want.data, "case %zu max %zu", c, max);
            }
            if (out.data && out.cap > out.dirty) {
                const char *past = memmem(out.data + out.dirty, out.cap - out.dirty, "SECR", 4);
                cr_assert_null(past, "case %zu max %zu: a value's bytes past the wiped extent", c,
                               max);
            }
            es_buf_free_secret(&out);
        }
        es_buf_free_secret(&want);
    }
}

/* ---- literal keys (ES_JW_LIT) ---- */

/* One parameter written twice, with the literal-key calls and with the
 * general ones (es_jw_kstr, es_jw_kint, es_jw_key + es_jw_double): the same
 * text and the same error at every buffer maximum and for values that need
 * escapes or are not UTF-8, and no value byte past the wiped extent. */
static int write_param(es_buf *out, bool lit, const char *value, double modified)
{
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    if (lit) {
        es_jw_key_lit(&w, ES_JW_LIT("Parameters"));
    } else {
        es_jw_key(&w, "Parameters");
    }
    es_jw_arr(&w);
    es_jw_obj(&w);
    if (lit) {
        char num[ES_JW_NUM_MAX];
        int n = es_jw_double_text(modified, num);
        cr_assert_gt(n, 0);
        es_jw_kstrn_lit(&w, ES_JW_LIT("Name"), "/a/b", 4);
        es_jw_key_lit(&w, ES_JW_LIT("Value"));
        es_jw_strn(&w, value, strlen(value));
        es_jw_kstrn_lit(&w, ES_JW_LIT("Secret"), value, strlen(value));
        es_jw_kint_lit(&w, ES_JW_LIT("Version"), -12);
        es_jw_knum_lit(&w, ES_JW_LIT("LastModifiedDate"), num, (size_t)n);
        es_jw_kstrn_lit(&w, ES_JW_LIT("Empty"), "", 0);
    } else {
        es_jw_kstr(&w, "Name", "/a/b");
        es_jw_kstr(&w, "Value", value);
        es_jw_kstr(&w, "Secret", value);
        es_jw_kint(&w, "Version", -12);
        es_jw_key(&w, "LastModifiedDate");
        es_jw_double(&w, modified);
        es_jw_kstr(&w, "Empty", "");
    }
    es_jw_obj_end(&w);
    es_jw_arr_end(&w);
    es_jw_obj_end(&w);
    return es_jw_finish(&w);
}

Test(json, writer_literal_keys_write_what_the_general_path_writes)
{
    static const char *const values[] = {
        "SECRETSECRETSECRET",
        "SECRET\"SECRET",
        "SE\\CRET",
        "SECR\x01TSECRET",
        "SECRET\xc3\xa9SECRET",
        "SECRET\xff",
        "",
        "S",
        "SECRETSECRETSECRETSECRETSECRET",
    };
    static const double dates[] = {1700000000.5, 0, 1e15, 1700000000.0005};
    for (size_t c = 0; c < sizeof values / sizeof values[0]; c++) {
        for (size_t d = 0; d < sizeof dates / sizeof dates[0]; d++) {
            es_buf full;
            es_buf_init(&full, 1u << 16);
            int fr = write_param(&full, false, values[c], dates[d]);
            cr_assert(fr == 0 || (fr == -EINVAL && strchr(values[c], '\xff')), "value %zu: %d", c,
                      fr);
            for (size_t max = 0; max <= full.len + 40; max++) {
                es_buf want, out;
                es_buf_init(&want, max);
                es_buf_init(&out, max);
                int wr = write_param(&want, false, values[c], dates[d]);
                int r = write_param(&out, true, values[c], dates[d]);
                cr_assert_eq(r, wr, "value %zu date %zu max %zu: %d (general %d)", c, d, max, r,
                             wr);
                if (r == 0)
                    cr_assert_str_eq(es_buf_cstr(&out), es_buf_cstr(&want),
                                     "value %zu date %zu max %zu", c, d, max);
                if (out.data && out.cap > out.dirty && values[c][0]) {
                    const char *past = memmem(out.data + out.dirty, out.cap - out.dirty, "SECR", 4);
                    cr_assert_null(past, "value %zu max %zu: a value's bytes past the wiped extent",
                                   c, max);
                }
                es_buf_free_secret(&out);
                es_buf_free_secret(&want);
            }
            es_buf_free_secret(&full);
        }
    }
}

/* A literal key only where an object's key goes; the number text is
 * es_jw_double's. */
Test(json, writer_literal_keys_refuse_misuse)
{
    es_buf out;
    es_buf_init(&out, 4096);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_key_lit(&w, ES_JW_LIT("k"));
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "a key at the top level");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    es_jw_arr(&w);
    es_jw_kstrn_lit(&w, ES_JW_LIT("k"), "v", 1);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "a key in an array");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_key_lit(&w, ES_JW_LIT("k"));
    es_jw_kint_lit(&w, ES_JW_LIT("j"), 1);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "a key where a value is due");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_key_lit(&w, ES_JW_LIT("k"));
    es_jw_obj_end(&w);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "a literal key without a value");
    es_buf_free(&out);

    char num[ES_JW_NUM_MAX];
    cr_assert_eq(es_jw_double_text(NAN, num), -EINVAL);
    cr_assert_eq(es_jw_double_text(INFINITY, num), -EINVAL);
    cr_assert_eq(es_jw_double_text(1700000000.25, num), 14);
    cr_assert_str_eq(num, "1700000000.250");
    cr_assert_eq(es_jw_double_text(-1.5, num), 6);
    cr_assert_str_eq(num, "-1.500");
}

/* A literal key is copied as two overlapping words of the widest size that
 * fits (json.c, copy_short): keys of every length 0 to 40 between their
 * quotes, every byte of them distinct, as an object's first and second
 * member, through es_jw_kstrn_lit, es_jw_knum_lit and es_jw_kint_lit, are
 * written as the general path (es_jw_key + value) writes them. */
Test(json, writer_literal_keys_of_every_length)
{
    char q[64], k[64];
    for (size_t kl = 0; kl <= 40; kl++) {
        for (size_t i = 0; i < kl; i++)
            k[i] = (char)('A' + (i * 7 + kl) % 58 % 26 + (i % 2 ? 32 : 0));
        k[kl] = '\0';
        q[0] = '"';
        memcpy(q + 1, k, kl);
        q[kl + 1] = '"';
        q[kl + 2] = '\0';
        size_t qn = kl + 2;
        es_buf want, out;
        es_buf_init(&want, 1u << 12);
        es_buf_init(&out, 1u << 12);
        es_jw a, b;
        es_jw_init(&a, &want);
        es_jw_init(&b, &out);
        es_jw_obj(&a);
        es_jw_obj(&b);
        for (int round = 0; round < 2; round++) {
            es_jw_key(&a, k);
            es_jw_str(&a, "value");
            es_jw_kstrn_lit(&b, q, qn, "value", 5);
            es_jw_key(&a, k);
            es_jw_double(&a, 1700000000.25);
            es_jw_knum_lit(&b, q, qn, "1700000000.250", 14);
            es_jw_key(&a, k);
            es_jw_int(&a, -42);
            es_jw_kint_lit(&b, q, qn, -42);
        }
        es_jw_obj_end(&a);
        es_jw_obj_end(&b);
        cr_assert_eq(es_jw_finish(&a), 0);
        cr_assert_eq(es_jw_finish(&b), 0, "key length %zu", kl);
        cr_assert_str_eq(es_buf_cstr(&out), es_buf_cstr(&want), "key length %zu", kl);
        es_buf_free(&want);
        es_buf_free(&out);
    }
}

/* Members kept pre-encoded (es_jw_kraw_lit: a value and more members after
 * it) read as the members written one by one, first in an object and after
 * another member, at every buffer maximum around the text's size: the text is
 * whole, or the writer fails with -EMSGSIZE. */
Test(json, writer_raw_members_after_a_literal_key)
{
    const char want[] = "{\"Name\":\"a\\\"b\",\"Type\":\"String\",\"Value\":\"v\","
                        "\"Version\":3,\"DataType\":\"text\"}";
    const char head[] = "\"a\\\"b\",\"Type\":\"String\"";
    const char tail[] = "3,\"DataType\":\"text\"";
    for (size_t max = 0; max <= sizeof want + 4; max++) {
        es_buf out;
        es_buf_init(&out, max);
        es_jw w;
        es_jw_init(&w, &out);
        es_jw_obj(&w);
        es_jw_kraw_lit(&w, ES_JW_LIT("Name"), head, sizeof head - 1);
        es_jw_kstrn_lit(&w, ES_JW_LIT("Value"), "v", 1);
        es_jw_kraw_lit(&w, ES_JW_LIT("Version"), tail, sizeof tail - 1);
        es_jw_obj_end(&w);
        int r = es_jw_finish(&w);
        if (max >= sizeof want - 1) {
            cr_assert_eq(r, 0, "max %zu", max);
            cr_assert_str_eq(es_buf_cstr(&out), want);
        } else {
            cr_assert_eq(r, -EMSGSIZE, "max %zu: %d", max, r);
        }
        es_buf_free(&out);
    }
}

/* Opening a container inside another takes one step when the buffer has
 * room (json.c, open_level): at every buffer maximum around the text's size
 * the text is whole or the error is -EMSGSIZE with only whole steps
 * written before it; the depth limit and a container where a key is due
 * are refused as before. */
Test(json, writer_nested_opens_at_every_limit)
{
    const char want[] = "[{},[],{\"a\":[{},[[]]],\"b\":{}},[{\"c\":[]}]]";
    for (size_t max = 0; max <= sizeof want + 4; max++) {
        es_buf out;
        es_buf_init(&out, max);
        es_jw w;
        es_jw_init(&w, &out);
        es_jw_arr(&w);
        es_jw_obj(&w);
        es_jw_obj_end(&w);
        es_jw_arr(&w);
        es_jw_arr_end(&w);
        es_jw_obj(&w);
        es_jw_key(&w, "a");
        es_jw_arr(&w);
        es_jw_obj(&w);
        es_jw_obj_end(&w);
        es_jw_arr(&w);
        es_jw_arr(&w);
        es_jw_arr_end(&w);
        es_jw_arr_end(&w);
        es_jw_arr_end(&w);
        es_jw_key(&w, "b");
        es_jw_obj(&w);
        es_jw_obj_end(&w);
        es_jw_obj_end(&w);
        es_jw_arr(&w);
        es_jw_obj(&w);
        es_jw_key(&w, "c");
        es_jw_arr(&w);
        es_jw_arr_end(&w);
        es_jw_obj_end(&w);
        es_jw_arr_end(&w);
        es_jw_arr_end(&w);
        int r = es_jw_finish(&w);
        if (max < sizeof want - 1) {
            cr_assert_eq(r, -EMSGSIZE, "max %zu: %d", max, r);
            cr_assert_eq(strncmp(es_buf_cstr(&out), want, out.len), 0, "max %zu: %s", max,
                         es_buf_cstr(&out));
        } else {
            cr_assert_eq(r, 0, "max %zu", max);
            cr_assert_str_eq(es_buf_cstr(&out), want);
        }
        es_buf_free(&out);
    }
    es_buf out;
    es_buf_init(&out, 1u << 12);
    es_jw w;
    es_jw_init(&w, &out);
    for (int i = 0; i < ES_JW_DEPTH_MAX; i++)
        es_jw_arr(&w);
    cr_assert_eq(w.err, 0);
    cr_assert_eq(out.len, ES_JW_DEPTH_MAX);
    es_jw_obj(&w);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "past the depth limit");
    cr_assert_eq(out.len, ES_JW_DEPTH_MAX, "nothing written past it");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_arr(&w);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "an array where a key is due");
    cr_assert_str_eq(es_buf_cstr(&out), "{");
    es_buf_reset(&out);
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_obj_end(&w);
    es_jw_obj(&w);
    cr_assert_eq(es_jw_finish(&w), -EINVAL, "a second top-level value");
    cr_assert_str_eq(es_buf_cstr(&out), "{}");
    es_buf_free(&out);
}

/* A string in a container is taken with its node and slot in one step when
 * the block has room for both and a slot is free (json.c, cb_string); else
 * the general path grows the block or the slots. Strings of every length
 * 0-300 beside each other fill the first block to each edge (its size
 * follows the text's); arrays of 1-130 strings cross the 64 slots kept on
 * the stack; the limit on values is kept to the value with strings only.
 * Every string reads back with its bytes and length (NULs too). */
Test(json, strings_at_every_block_and_slot_edge)
{
    static char s[4096], a[512];
    for (size_t la = 0; la <= 300; la += 1) {
        for (size_t lb = 0; lb <= 300; lb += 37) {
            size_t n = 0;
            s[n++] = '[';
            s[n++] = '"';
            for (size_t i = 0; i < la; i++)
                s[n++] = (char)('a' + i % 26);
            memcpy(s + n, "\",[\"", 4);
            n += 4;
            for (size_t i = 0; i < lb; i++)
                s[n++] = (char)('A' + i % 26);
            memcpy(s + n, "\",\"x\\u0000y\"]]", 14);
            n += 14;
            es_json *j = NULL;
            cr_assert_eq(es_json_parse(s, n, NULL, &j, NULL, 0), 0, "la %zu lb %zu", la, lb);
            const es_json *x = es_json_at(j, 0), *in = es_json_at(j, 1);
            cr_assert_eq(x->type, ES_JSON_STRING);
            cr_assert_eq(x->u.string.len, la);
            cr_assert_eq(memcmp(x->u.string.s, s + 2, la), 0);
            cr_assert_eq(x->u.string.s[la], '\0');
            cr_assert_eq(es_json_len(in), 2);
            cr_assert_eq(es_json_at(in, 0)->u.string.len, lb);
            cr_assert_eq(memcmp(es_json_at(in, 0)->u.string.s, s + 2 + la + 4, lb), 0);
            cr_assert_eq(es_json_at(in, 1)->u.string.len, 3);
            cr_assert_eq(memcmp(es_json_at(in, 1)->u.string.s, "x\0y", 4), 0);
            es_json_free_secret(j);
        }
    }
    for (size_t count = 1; count <= 130; count++) {
        size_t n = 0;
        n += (size_t)snprintf(s + n, sizeof s - n, "{\"k\":[");
        for (size_t i = 0; i < count; i++)
            n += (size_t)snprintf(s + n, sizeof s - n, "%s\"v%zu\"", i ? "," : "", i);
        n += (size_t)snprintf(s + n, sizeof s - n, "]}");
        assert_round_trip(s, n, NULL);
        es_json *j = NULL;
        cr_assert_eq(es_json_parse(s, n, NULL, &j, NULL, 0), 0);
        const es_json *arr = es_json_get(j, "k");
        cr_assert_eq(es_json_len(arr), count);
        for (size_t i = 0; i < count; i++) {
            snprintf(a, sizeof a, "v%zu", i);
            cr_assert_str_eq(es_json_as_str(es_json_at(arr, i)), a);
        }
        es_json_free(j);
        /* the object, the array and count strings: count + 2 values */
        for (size_t lim_v = count; lim_v <= count + 2; lim_v++) {
            es_json_limits lim = es_json_default_limits;
            lim.max_values = lim_v;
            j = NULL;
            int r = es_json_parse(s, n, &lim, &j, NULL, 0);
            cr_assert_eq(r, lim_v == count + 2 ? 0 : ES_JSON_E_TOO_MANY_VALUES,
                         "count %zu limit %zu: %d", count, lim_v, r);
            es_json_free(j);
        }
    }
    /* a top-level string takes the general path (it is the root) */
    es_json *j = NULL;
    cr_assert_eq(es_json_parse("\"top\"", 5, NULL, &j, NULL, 0), 0);
    cr_assert_str_eq(es_json_as_str(j), "top");
    es_json_free(j);
}
