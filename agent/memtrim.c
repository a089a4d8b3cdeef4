/* memtrim.c - start-up's leftovers given back (memtrim.h says what and why). */
#include "agent/memtrim.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/alloc.h"

/* ---- the parser (pure) ---- */

typedef struct mapping {
    bool open;     /* a header was read */
    bool eligible; /* private, read-only, an absolute path */
    bool anon_seen;
    size_t anon_kb, rss_kb;
    uintptr_t start, end;
} mapping;

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* "START-END PERMS OFFSET DEV INODE [PATH]" */
static int parse_header(const char *l, size_t len, mapping *m)
{
    char line[AG_MEMTRIM_LINE_MAX + 1];
    memcpy(line, l, len);
    line[len] = '\0';
    unsigned long long a, b, off, ino;
    unsigned maj, min;
    char perms[5];
    int pos = -1;
    /* the addresses as the kernel writes them, bare hex: sscanf's %llx alone would take a
     * sign, a 0x or blanks, and a range read wrong is a range dropped wrong */
    size_t h1 = strspn(line, "0123456789abcdef");
    size_t h2 = h1 && line[h1] == '-' ? strspn(line + h1 + 1, "0123456789abcdef") : 0;
    if (!h2 || line[h1 + 1 + h2] != ' ' || h1 > 16 || h2 > 16)
        return -EINVAL;
    if (sscanf(line, "%llx-%llx %4[-rwxps] %llx %x:%x %llu%n", &a, &b, perms, &off, &maj, &min,
               &ino, &pos) != 7 ||
        pos < 0 || strlen(perms) != 4 || b <= a || b > UINTPTR_MAX)
        return -EINVAL;
    const char *p = line + pos;
    if (*p && *p != ' ')
        return -EINVAL;
    while (*p == ' ')
        p++;
    *m = (mapping){.open = true, .start = (uintptr_t)a, .end = (uintptr_t)b};
    m->eligible = perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p' && p[0] == '/';
    return 0;
}

/* "Name:   N kB" -> N for the two fields wanted; other fields are skipped */
static int parse_field(const char *l, size_t len, mapping *m)
{
    const char *colon = memchr(l, ':', len);
    if (!colon || colon == l)
        return -EINVAL;
    size_t klen = (size_t)(colon - l);
    size_t *dst = NULL;
    if (klen == 3 && !memcmp(l, "Rss", 3))
        dst = &m->rss_kb;
    else if (klen == 9 && !memcmp(l, "Anonymous", 9))
        dst = &m->anon_kb;
    if (!dst)
        return 0;
    size_t i = klen + 1;
    while (i < len && l[i] == ' ')
        i++;
    size_t v = 0, digits = 0;
    for (; i < len && l[i] >= '0' && l[i] <= '9'; i++, digits++) {
        if (v > (SIZE_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (size_t)(l[i] - '0');
    }
    if (!digits || len - i != 3 || memcmp(l + i, " kB", 3))
        return -EINVAL;
    *dst = v;
    if (dst == &m->anon_kb)
        m->anon_seen = true;
    return 0;
}

static int flush(const mapping *m, ag_memtrim_range *out, size_t max, size_t *n)
{
    if (!m->open || !m->eligible || !m->anon_seen || m->anon_kb || !m->rss_kb)
        return 0;
    if (*n == max)
        return -E2BIG;
    out[(*n)++] = (ag_memtrim_range){.start = m->start, .end = m->end, .rss_kb = m->rss_kb};
    return 0;
}

int ag_memtrim_clean_ranges(const char *smaps, size_t len, ag_memtrim_range *out, size_t max,
                            size_t *n)
{
    *n = 0;
    mapping m = {0};
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(smaps + at, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - (smaps + at)) : len - at;
        const char *l = smaps + at;
        at += ll + (nl ? 1 : 0);
        if (ll == 0)
            continue;
        if (ll > AG_MEMTRIM_LINE_MAX)
            return -EINVAL;
        int r;
        if (is_hex(l[0])) {
            if ((r = flush(&m, out, max, n)) < 0)
                return r;
            r = parse_header(l, ll, &m);
        } else {
            r = m.open ? parse_field(l, ll, &m) : -EINVAL;
        }
        if (r < 0)
            return r;
    }
    return flush(&m, out, max, n);
}

/* ---- the process ---- */

static size_t resident_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long size = 0, res = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE) / 1024;
}

static ssize_t read_all(const char *path, char *buf, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    for (;;) {
        if (got == max) {
            close(fd);
            return -E2BIG;
        }
        ssize_t k = read(fd, buf + got, max - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    return (ssize_t)got;
}

int ag_memtrim_self(ag_memtrim_stats *st)
{
    *st = (ag_memtrim_stats){.rss_before_kb = resident_kb()};
    /* the heap first: its free tail and free pages inside go back to the kernel */
    malloc_trim(0);
    int r = 0;
    char *text = es_malloc(AG_MEMTRIM_SMAPS_MAX);
    ag_memtrim_range *ranges = es_calloc(AG_MEMTRIM_RANGES_MAX, sizeof *ranges);
    size_t n = 0;
    if (!text || !ranges) {
        r = -ENOMEM;
        goto out;
    }
    ssize_t len = read_all("/proc/self/smaps", text, AG_MEMTRIM_SMAPS_MAX);
    if (len < 0) {
        r = (int)len;
        goto out;
    }
    if ((r = ag_memtrim_clean_ranges(text, (size_t)len, ranges, AG_MEMTRIM_RANGES_MAX, &n)) < 0)
        goto out;
    /* the text is freed before the entries are dropped: nothing here is touched after */
    es_free(text);
    text = NULL;
    for (size_t i = 0; i < n; i++) {
        if (madvise((void *)ranges[i].start, ranges[i].end - ranges[i].start, MADV_DONTNEED) < 0)
            continue; /* a mapping gone or changed since: left as it is */
        st->mappings++;
        st->file_kb += ranges[i].rss_kb;
    }
out:
    es_free(text);
    es_free(ranges);
    st->rss_after_kb = resident_kb();
    return r;
}

/* ---- the heap, while the agent runs ---- */

bool ag_memtrim_heap_due(size_t free_now, size_t *mark)
{
    if (free_now < *mark)
        *mark = free_now; /* chunks reused: what is freed again counts from here */
    return free_now >= AG_MEMTRIM_HEAP_SLACK && free_now - *mark >= AG_MEMTRIM_HEAP_GROWTH;
}

size_t ag_memtrim_heap_free(void)
{
    /* every arena's free chunks, fast bins and top included */
    return mallinfo2().fordblks;
}

void ag_memtrim_heap(size_t *mark, ag_memtrim_heap_stats *st)
{
    size_t free_now = ag_memtrim_heap_free();
    *st = (ag_memtrim_heap_stats){.free_kb = free_now / 1024};
    if (!ag_memtrim_heap_due(free_now, mark))
        return;
    st->rss_before_kb = resident_kb();
    malloc_trim(0);
    st->rss_after_kb = resident_kb();
    st->trimmed = true;
    /* the chunks stay free (their pages only are given back): the mark is the free
     * bytes now, so that only what is freed from here on is counted */
    *mark = ag_memtrim_heap_free();
}
