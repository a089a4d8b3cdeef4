/* agent/memtrim: the smaps parser (which mappings may be dropped, bad input refused) and the
 * trim of this very process (code and constants read the same afterwards). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/memtrim.h"

#define HDR_LIB_X "7f0000001000-7f0000003000 r-xp 00001000 fe:01 1234       /usr/lib/libx.so.1\n"
#define FIELDS(rss, anon)                                                                          \
    "Size:                  8 kB\nKernelPageSize:        4 kB\nRss:                 " #rss         \
    " kB\nPss:                   " #rss " kB\nAnonymous:           " #anon " kB\n"                 \
    "VmFlags: rd ex mr mw me sd\n"

static int parse(const char *text, ag_memtrim_range *out, size_t max, size_t *n)
{
    return ag_memtrim_clean_ranges(text, strlen(text), out, max, n);
}

Test(memtrim, picks_private_read_only_file_mappings_without_anonymous_pages)
{
    const char *smaps =
        /* 1: library code, clean: picked */
        HDR_LIB_X FIELDS(8, 0)
        /* 2: RELRO with relocated (anonymous) pages: kept */
        "7f0000003000-7f0000004000 r--p 00003000 fe:01 1234       /usr/lib/libx.so.1\n" FIELDS(4, 4)
        /* 3: data: writable, kept */
        "7f0000004000-7f0000005000 rw-p 00004000 fe:01 1234       /usr/lib/libx.so.1\n" FIELDS(4, 0)
        /* 4: constants, clean: picked */
        "7f0000005000-7f0000009000 r--p 00005000 fe:01 1234       /usr/lib/libx.so.1\n" FIELDS(12,
                                                                                               0)
        /* 5: a shared file mapping (SQLite's -shm): kept */
        "7f000000a000-7f000000b000 r--s 00000000 fe:01 99         /var/lib/x/db-shm\n" FIELDS(4, 0)
        /* 6: anonymous and named pseudo mappings: kept */
        "7f000000b000-7f000000c000 r-xp 00000000 00:00 0 \n" FIELDS(
            4, 0) "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          "
                  "[vdso]\n" FIELDS(8, 0)
        /* 7: nothing resident: nothing to drop */
        "7f000000d000-7f000000e000 r--p 00000000 fe:01 55         /usr/lib/liby.so\n" FIELDS(0, 0)
        /* 8: a replaced binary, a path with a space: picked */
        "55d000000000-55d000010000 r-xp 00000000 fe:01 77         /opt/a b/agent "
        "(deleted)\n" FIELDS(64, 0)
        /* 9: no Anonymous line at all: kept (nothing says it is clean) */
        "7f000000f000-7f0000010000 r-xp 00000000 fe:01 56         /usr/lib/libz.so\n"
        "Rss:                   4 kB\n";
    ag_memtrim_range r[16];
    size_t n = 99;
    cr_assert_eq(parse(smaps, r, 16, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(r[0].start, 0x7f0000001000u);
    cr_assert_eq(r[0].end, 0x7f0000003000u);
    cr_assert_eq(r[0].rss_kb, 8);
    cr_assert_eq(r[1].start, 0x7f0000005000u);
    cr_assert_eq(r[1].rss_kb, 12);
    cr_assert_eq(r[2].start, 0x55d000000000u);
    cr_assert_eq(r[2].end, 0x55d000010000u);
    cr_assert_eq(r[2].rss_kb, 64);
}

Test(memtrim, empty_text_and_a_missing_last_newline)
{
    ag_memtrim_range r[2];
    size_t n = 5;
    cr_assert_eq(parse("", r, 2, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(parse(HDR_LIB_X "Rss: 8 kB\nAnonymous: 0 kB", r, 2, &n), 0);
    cr_assert_eq(n, 1);
}

Test(memtrim, refuses_text_that_is_not_smaps)
{
    ag_memtrim_range r[4];
    size_t n;
    static const char *const bad[] = {
        "Rss:                 8 kB\n",                              /* a field before any header */
        "7f0000001000 r-xp 00001000 fe:01 1234 /usr/lib/x\n",       /* no end address */
        "7f0000003000-7f0000001000 r-xp 0 fe:01 1 /usr/lib/x\n",    /* end before start */
        "7f0000001000-7f0000001000 r-xp 0 fe:01 1 /usr/lib/x\n",    /* empty */
        "7f0000001000-7f0000003000 rwxq 0 fe:01 1 /usr/lib/x\n",    /* permissions */
        "7f0000001000-7f0000003000 r-x 0 fe:01 1 /usr/lib/x\n",     /* three permissions */
        "7f0000001000-7f0000003000 r-xp 0 fe01 1 /usr/lib/x\n",     /* device */
        "7f0000001000-7f0000003000 r-xp 0 fe:01 /usr/lib/x\n",      /* no inode */
        "7f0000001000-7f0000003000 r-xp 0 fe:01 1x /usr/lib/x\n",   /* inode */
        "fffffffffffffffff-ffffffffffffffffff r-xp 0 fe:01 1 /x\n", /* over 64 bits */
        "7f0000001000--7f0000003000 r-xp 0 fe:01 1 /usr/lib/x\n",   /* a signed end */
        "7f0000001000-0x7f0000003000 r-xp 0 fe:01 1 /usr/lib/x\n",  /* 0x */
        "7f0000001000- 7f0000003000 r-xp 0 fe:01 1 /usr/lib/x\n",   /* a blank */
        "7F0000001000-7f0000003000 r-xp 0 fe:01 1 /usr/lib/x\n",    /* upper case */
        HDR_LIB_X "Rss: 8 MB\n",                                    /* unit */
        HDR_LIB_X "Rss: kB\n",                                      /* no number */
        HDR_LIB_X "Rss: -8 kB\n",                                   /* sign */
        HDR_LIB_X "Anonymous: 0 kB trailing\n",                     /* trailing text */
        HDR_LIB_X "Anonymous: 99999999999999999999999 kB\n",        /* overflow */
        HDR_LIB_X "no colon here\n",                                /* not a field */
        HDR_LIB_X ": 8 kB\n",                                       /* no name */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(parse(bad[i], r, 4, &n), -EINVAL, "input %zu: %s", i, bad[i]);
}

Test(memtrim, a_line_over_the_maximum_is_refused)
{
    size_t len = AG_MEMTRIM_LINE_MAX + 100;
    char *text = malloc(len + 1);
    cr_assert_not_null(text);
    int k = snprintf(text, len + 1, "7f0000001000-7f0000003000 r-xp 0 fe:01 1 /");
    memset(text + k, 'a', len - (size_t)k);
    text[len] = '\0';
    ag_memtrim_range r[1];
    size_t n;
    cr_assert_eq(parse(text, r, 1, &n), -EINVAL);
    /* at the maximum it parses */
    text[AG_MEMTRIM_LINE_MAX] = '\0';
    cr_assert_eq(parse(text, r, 1, &n), 0);
    cr_assert_eq(n, 0); /* no fields: no Anonymous line, kept */
    free(text);
}

Test(memtrim, more_mappings_than_the_maximum)
{
    const char *smaps = HDR_LIB_X FIELDS(8, 0) HDR_LIB_X FIELDS(8, 0) HDR_LIB_X FIELDS(8, 0);
    ag_memtrim_range r[3];
    size_t n;
    cr_assert_eq(parse(smaps, r, 2, &n), -E2BIG);
    cr_assert_eq(parse(smaps, r, 3, &n), 0);
    cr_assert_eq(n, 3);
}

/* constants in the executable's read-only mappings, read again after their entries
 * were dropped: the same bytes come back from the file */
static const unsigned char table[64 * 1024] = {
    [0] = 0x5a, [4095] = 0xa5, [40000] = 0x17, [65535] = 0x42};

static unsigned checksum(const volatile unsigned char *p, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31u + p[i];
    return s;
}

Test(memtrim, trims_this_process_and_its_code_and_constants_read_the_same)
{
    unsigned before = checksum(table, sizeof table);
    ag_memtrim_stats st;
    cr_assert_eq(ag_memtrim_self(&st), 0);
    cr_assert_gt(st.mappings, 0, "the test links libc and more: clean mappings were resident");
    cr_assert_gt(st.file_kb, 0);
    cr_assert_gt(st.rss_before_kb, 0);
    cr_assert_gt(st.rss_after_kb, 0);
    cr_assert_eq(checksum(table, sizeof table), before);
    cr_assert_eq(table[40000], 0x17);
    /* libc's code runs as before */
    char buf[32];
    snprintf(buf, sizeof buf, "%d-%s", 42, "x");
    cr_assert_str_eq(buf, "42-x");
    /* and a second trim finds the process as it left it */
    cr_assert_eq(ag_memtrim_self(&st), 0);
}

/* ---- the heap's check while the agent runs ---- */

#define MIB (1024u * 1024u)

Test(memtrim_heap, not_due_below_the_slack_whatever_the_growth)
{
    size_t mark = 0;
    cr_assert_not(ag_memtrim_heap_due(AG_MEMTRIM_HEAP_SLACK - 1, &mark));
    cr_assert_eq(mark, 0, "a rise leaves the mark where it was");
}

Test(memtrim_heap, due_once_the_free_bytes_grew_by_the_growth_above_the_slack)
{
    size_t mark = MIB; /* after the last trim */
    cr_assert_not(ag_memtrim_heap_due(MIB + AG_MEMTRIM_HEAP_GROWTH - 1, &mark));
    cr_assert(ag_memtrim_heap_due(MIB + AG_MEMTRIM_HEAP_GROWTH, &mark));
    cr_assert_eq(mark, MIB, "the caller sets the mark after its trim");
}

Test(memtrim_heap, free_bytes_that_fell_lower_the_mark_so_that_freeing_again_counts)
{
    /* 3 MiB free after a trim; chunks reused (1 MiB free: resident again), then freed again */
    size_t mark = 3 * MIB;
    cr_assert_not(ag_memtrim_heap_due(MIB, &mark));
    cr_assert_eq(mark, MIB);
    cr_assert_not(ag_memtrim_heap_due(MIB + AG_MEMTRIM_HEAP_GROWTH / 2, &mark));
    cr_assert(ag_memtrim_heap_due(MIB + AG_MEMTRIM_HEAP_GROWTH, &mark),
              "freed again, the same bytes are resident again: due, though below the old mark");
}

Test(memtrim_heap, a_steady_heap_is_not_trimmed_again)
{
    size_t mark = 2 * MIB;
    for (int i = 0; i < 100; i++)
        cr_assert_not(ag_memtrim_heap_due(2 * MIB + (size_t)(i % 7) * 1024, &mark));
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* The real allocator: holes below the heap's top are given back. ASan's allocator
 * is not glibc's (mallinfo2 does not see it): this part runs only without it. */
Test(memtrim_heap, holes_left_below_the_top_are_given_back)
{
#ifdef UNDER_ASAN
    cr_skip_test("ASan's allocator is not glibc's");
#else
    enum { N = 1024, SIZE = 16000 }; /* a hole holds three whole pages */
    static void *keep[N];
    for (int i = 0; i < N; i++) {
        keep[i] = malloc(SIZE);
        cr_assert_not_null(keep[i]);
        memset(keep[i], 0x5a, SIZE); /* resident */
    }
    /* every other block freed: holes no trim of the top can give back */
    for (int i = 0; i < N; i += 2) {
        free(keep[i]);
        keep[i] = NULL;
    }
    size_t mark = 0;
    ag_memtrim_heap_stats st;
    ag_memtrim_heap(&mark, &st);
    cr_assert(st.trimmed, "%zu kB free", st.free_kb);
    cr_assert_geq(st.free_kb, (size_t)N / 2 * SIZE / 1024);
    cr_assert_lt(st.rss_after_kb, st.rss_before_kb, "%zu -> %zu kB", st.rss_before_kb,
                 st.rss_after_kb);
    cr_assert_geq(mark, (size_t)N / 2 * SIZE, "the mark is the free bytes after the trim");
    /* nothing freed since: not again */
    ag_memtrim_heap(&mark, &st);
    cr_assert_not(st.trimmed);
    for (int i = 1; i < N; i += 2) {
        cr_assert_eq(((unsigned char *)keep[i])[SIZE - 1], 0x5a, "the blocks in use are intact");
        free(keep[i]);
    }
#endif
}
