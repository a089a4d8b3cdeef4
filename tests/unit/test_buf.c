#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/secure.h"

Test(buf, append_and_terminate)
{
    es_buf b;
    es_buf_init(&b, 100);
    cr_assert_str_eq(es_buf_cstr(&b), "");
    cr_assert_eq(es_buf_append_str(&b, "hello"), 0);
    cr_assert_eq(es_buf_printf(&b, " %d-%s", 42, "x"), 0);
    cr_assert_str_eq(b.data, "hello 42-x");
    cr_assert_eq(b.len, 10);
    es_buf_free(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.max, 100);
}

Test(buf, maximum_is_enforced_and_contents_kept)
{
    es_buf b;
    es_buf_init(&b, 8);
    cr_assert_eq(es_buf_append_str(&b, "12345678"), 0);
    cr_assert_eq(es_buf_append_char(&b, '9'), -EMSGSIZE);
    cr_assert_str_eq(b.data, "12345678");
    cr_assert_eq(es_buf_printf(&b, "%s", "x"), -EMSGSIZE);
    cr_assert_eq(b.len, 8);
    cr_assert_leq(b.cap, 9, "never allocates past max+1 (cap %zu)", b.cap);
    es_buf_free(&b);
}

/* es_buf_printf formats into the spare room in one pass when it fits, and
 * grows and formats again when it does not; past the maximum it fails with
 * the buffer as it was and nothing of the attempt left past its end. */
Test(buf, printf_in_room_growing_and_over_maximum)
{
    es_buf b;
    es_buf_init(&b, 200);
    int err = 0;
    cr_assert_not_null(es_buf_reserve(&b, 100, &err));
    size_t cap = b.cap;
    cr_assert_eq(es_buf_printf(&b, "%s=%d", "k", 7), 0);
    cr_assert_str_eq(b.data, "k=7");
    cr_assert_eq(b.cap, cap, "fitted in the room: no new allocation");
    char big[150];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(es_buf_printf(&b, "%s", big), 0);
    cr_assert_eq(b.len, 3 + 149);
    cr_assert_eq(b.data[b.len], '\0');
    cr_assert_eq(memcmp(b.data, "k=7xxx", 6), 0);
    es_buf_reset(&b);
    cr_assert_eq(es_buf_append_str(&b, "head"), 0);
    /* 4 + 199 > 200, though the room (cap is past 152) holds part of it */
    char over[200];
    memset(over, 's', sizeof(over) - 1);
    over[sizeof(over) - 1] = '\0';
    cr_assert_eq(es_buf_printf(&b, "%s", over), -EMSGSIZE);
    cr_assert_eq(b.len, 4);
    cr_assert_str_eq(b.data, "head");
    for (size_t i = b.len; i < b.cap; i++)
        cr_assert_eq(b.data[i], '\0', "byte %zu past the end kept from the failed attempt", i);
    /* over the maximum although it would fit in the allocation */
    es_buf c;
    es_buf_init(&c, 4);
    cr_assert_not_null(es_buf_reserve(&c, 4, &err));
    c.max = 2;
    cr_assert_eq(es_buf_printf(&c, "%s", "abc"), -EMSGSIZE);
    cr_assert_eq(c.len, 0);
    es_buf_free(&c);
    es_buf_free(&b);
}

Test(buf, huge_request_does_not_overflow)
{
    es_buf b;
    es_buf_init(&b, 16);
    es_buf_append_str(&b, "abc");
    int err = 0;
    cr_assert_null(es_buf_reserve(&b, (size_t)-2, &err));
    cr_assert_eq(err, -EMSGSIZE);
    cr_assert_str_eq(b.data, "abc");
    es_buf_free(&b);
}

Test(buf, consume_and_steal)
{
    es_buf b;
    es_buf_init(&b, 1000);
    es_buf_append_str(&b, "header\r\nbody");
    es_buf_consume(&b, 8);
    cr_assert_str_eq(b.data, "body");
    char *s = es_buf_steal(&b);
    cr_assert_str_eq(s, "body");
    cr_assert_null(b.data);
    es_free(s);
    s = es_buf_steal(&b); /* never appended: still a valid empty string */
    cr_assert_str_eq(s, "");
    es_free(s);
}

Test(buf, growth_keeps_contents)
{
    es_buf b;
    es_buf_init(&b, 1 << 20);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(es_buf_append_char(&b, (char)('a' + i % 26)), 0);
    cr_assert_eq(b.len, 10000);
    for (size_t i = 0; i < b.len; i++)
        cr_assert_eq(b.data[i], 'a' + (int)(i % 26));
    es_buf_free_secret(&b);
}

Test(buf, allocation_failure_is_reported)
{
    es_buf b;
    es_buf_init(&b, 1000);
    es_alloc_fail_after(0);
    int r = es_buf_append_str(&b, "x");
    es_alloc_fail_after(-1);
    cr_assert_eq(r, -ENOMEM);
    cr_assert_eq(b.len, 0);
    es_buf_free(&b);
}

Test(secure, ct_compare)
{
    cr_assert(es_ct_equal("abcd", "abcd", 4));
    cr_assert_not(es_ct_equal("abcd", "abce", 4));
    cr_assert(es_ct_streq("sig", "sig"));
    cr_assert_not(es_ct_streq("sig", "sig2"));
    char k[8] = "secret!";
    es_wipe(k, sizeof k);
    for (size_t i = 0; i < sizeof k; i++)
        cr_assert_eq(k[i], 0);
    unsigned char r1[16] = {0}, r2[16] = {0};
    cr_assert_eq(es_random_bytes(r1, sizeof r1), 0);
    cr_assert_eq(es_random_bytes(r2, sizeof r2), 0);
    cr_assert_neq(memcmp(r1, r2, sizeof r1), 0);
}

/* es_calloc hands out zeroed memory on both of its paths (malloc+memset up
 * to 1 KiB, calloc above), even where a freed block of the same size held
 * data, and refuses a product that overflows. */
Test(alloc, calloc_zeroes_and_checks_overflow)
{
    static const size_t sizes[] = {1, 24, 1024, 1025, 64 * 1024};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *a = es_malloc(sizes[i]);
        cr_assert_not_null(a);
        memset(a, 0xa5, sizes[i]);
        es_free(a);
        unsigned char *z = es_calloc(1, sizes[i]);
        cr_assert_not_null(z);
        for (size_t k = 0; k < sizes[i]; k++)
            cr_assert_eq(z[k], 0, "size %zu byte %zu", sizes[i], k);
        es_free(z);
    }
    cr_assert_null(es_calloc(SIZE_MAX / 2, 3), "count * size overflows");
    cr_assert_null(es_calloc((size_t)1 << 33, (size_t)1 << 33));
    void *p = es_calloc(0, 0);
    cr_assert_not_null(p, "zero bytes is a valid, freeable block");
    es_free(p);
}

/* Every byte that may have been written is wiped by reset_secret (and so by
 * free_secret, which wipes the same extent): contents, what a consume or a
 * truncation left past len, space handed out by reserve but never
 * committed, and what the JSON writer put in directly. Space made by
 * es_buf_expect and never written is not in the extent. */
static void assert_zero(const es_buf *b, size_t upto, const char *what)
{
    cr_assert_leq(upto, b->cap);
    for (size_t i = 0; i < upto; i++)
        cr_assert_eq(b->data[i], '\0', "%s: byte %zu of %zu not wiped", what, i, upto);
}

Test(buf, secret_wipes_every_written_byte)
{
    es_buf b;
    es_buf_init(&b, 4096);
    cr_assert_eq(es_buf_append_str(&b, "password=hunter2"), 0);
    es_buf_consume(&b, 9); /* "hunter2", the old tail still in memory */
    cr_assert_str_eq(b.data, "hunter2");
    es_buf_reset_secret(&b);
    assert_zero(&b, 17, "after consume");

    int err = 0;
    char *p = es_buf_reserve(&b, 300, &err);
    cr_assert_not_null(p);
    memset(p, 'S', 300); /* written, never committed */
    es_buf_reset_secret(&b);
    assert_zero(&b, 300, "reserved, not committed");

    cr_assert_eq(es_buf_append_str(&b, "0123456789"), 0);
    b.len = 2; /* a truncation, as config.c does */
    b.data[2] = '\0';
    es_buf_reset_secret(&b);
    assert_zero(&b, 11, "truncated");

    es_jw w;
    es_jw_init(&w, &b);
    es_jw_obj(&w);
    es_jw_kstr(&w, "k", "a secret value written by the JSON writer");
    es_jw_obj_end(&w);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_geq(b.dirty, b.len + 1);
    size_t written = b.len + 1;
    es_buf_reset_secret(&b);
    assert_zero(&b, written, "JSON writer");
    es_buf_free_secret(&b);

    /* a size hint is not written space: a later wipe covers what was */
    es_buf c;
    es_buf_init(&c, 1 << 20);
    cr_assert_eq(es_buf_expect(&c, 8000), 0);
    cr_assert_geq(c.cap, 8001);
    cr_assert_eq(es_buf_append_str(&c, "tiny"), 0);
    cr_assert_eq(c.dirty, 5, "dirty %zu", c.dirty);
    cr_assert_eq(es_buf_expect(&c, (1 << 20) - 3), -EMSGSIZE);
    cr_assert_str_eq(c.data, "tiny");
    es_buf_free_secret(&c);
}

/* SIZE_MAX is "no maximum" (common/http.h's endless bodies): max + 1 wraps */
Test(buf, an_unbounded_buffer_grows)
{
    es_buf b;
    es_buf_init(&b, SIZE_MAX);
    char d[300];
    memset(d, 'x', sizeof d);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(es_buf_append(&b, d, sizeof d), 0);
    cr_assert_eq(b.len, 3000);
    cr_assert_geq(b.cap, 3001);
    es_buf_free(&b);
}

/* es_buf_append in the room it has (inline, buf.h) and past it (grown):
 * at every maximum and every room around an append of 0 to 40 bytes, the
 * same contents, length, terminator and error as appending byte by byte
 * would give, and the dirty extent covers what was written. */
Test(buf, append_in_room_and_past_it)
{
    char src[41];
    for (int i = 0; i < 41; i++)
        src[i] = (char)('a' + i % 26);
    for (size_t max = 0; max <= 72; max++) {
        for (size_t first = 0; first <= 32; first++) {
            for (size_t n = 0; n <= 40; n++) {
                es_buf b;
                es_buf_init(&b, max);
                int r0 = es_buf_append(&b, src, first);
                size_t before = b.len;
                int r = es_buf_append(&b, src, n);
                if (first > max) {
                    cr_assert_eq(r0, -EMSGSIZE);
                    cr_assert_eq(before, 0);
                }
                if (before + n > max) {
                    cr_assert_eq(r, -EMSGSIZE, "max %zu first %zu n %zu", max, first, n);
                    cr_assert_eq(b.len, before);
                } else {
                    cr_assert_eq(r, 0, "max %zu first %zu n %zu", max, first, n);
                    cr_assert_eq(b.len, before + n);
                    cr_assert_eq(memcmp(b.data + before, src, n), 0);
                    cr_assert_eq(b.data[b.len], '\0');
                    cr_assert_geq(b.dirty, b.len + 1);
                    cr_assert_lt(b.len, b.cap);
                }
                es_buf_free_secret(&b);
            }
        }
    }
}
