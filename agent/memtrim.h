/* memtrim.h - what start-up left resident and no longer needs, given back once the agent
 * is ready (issue 22: idle resident memory).
 *
 * Two kinds of memory are given back:
 *  - the heap's free tail (malloc_trim): start-up's parsing and migrations free
 *    more than they keep;
 *  - the page-table entries of clean, read-only, file-backed mappings (the
 *    libraries' and the executable's code and constants). The kernel maps up to
 *    fault_around_bytes (64 KiB) around every page a process touches, so a start-up
 *    that touches a few functions of each of 40 libraries holds 11 MiB of their
 *    pages. Dropping the entries (madvise MADV_DONTNEED on a private mapping that
 *    holds no anonymous page) frees no page of the system's page cache and changes
 *    no byte the process reads: a later touch maps the same page again from the
 *    file (a minor fault). It lowers the resident set to the pages used after it.
 * A mapping holding any anonymous page (a relocated RELRO, a patched text) is never
 * touched: dropping it would lose what was written there.
 *
 * The parser of /proc/self/smaps is pure and bounded (ag_memtrim_clean_ranges): the
 * kernel writes that text, but it is read as any outside input. */
#ifndef AG_MEMTRIM_H
#define AG_MEMTRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* /proc/self/smaps read at most (the daemon maps about 200 regions, 1.3 KiB of text each) */
#define AG_MEMTRIM_SMAPS_MAX (1024 * 1024)
/* mappings given back at most in one trim */
#define AG_MEMTRIM_RANGES_MAX 1024
/* one line of smaps read at most (a header with a path of PATH_MAX) */
#define AG_MEMTRIM_LINE_MAX 4352
/* how long after READY=1 the trim runs: the first reconcile's list and events are in */
#define AG_MEMTRIM_DELAY_MS 1000

typedef struct ag_memtrim_range {
    uintptr_t start, end; /* [start, end) */
    size_t rss_kb;        /* resident when read */
} ag_memtrim_range;

/* The mappings of smaps text that may be dropped: private, not writable, backed by a
 * file named by an absolute path, with no anonymous page (Anonymous: 0 kB) and some page
 * resident. Fills out[0..*n). Returns 0, or -EINVAL for text that is not smaps' shape
 * (a header line that does not parse, a field before the first header, a line over
 * AG_MEMTRIM_LINE_MAX), -E2BIG when more than max mappings qualify. */
int ag_memtrim_clean_ranges(const char *smaps, size_t len, ag_memtrim_range *out, size_t max,
                            size_t *n);

typedef struct ag_memtrim_stats {
    size_t mappings;      /* mappings whose entries were dropped */
    size_t file_kb;       /* their resident pages before */
    size_t rss_before_kb; /* the process's resident set (statm) before the trim and after */
    size_t rss_after_kb;
} ag_memtrim_stats;

/* Trims this process as described above. Returns 0 or a negative errno (smaps
 * unreadable or not parsed: nothing dropped; the heap is trimmed all the same). */
int ag_memtrim_self(ag_memtrim_stats *st);

/* ---- the heap's free pages, while the agent runs ----
 *
 * glibc gives back to the kernel only the top of its heap when memory is freed
 * (M_TRIM_THRESHOLD); pages of free chunks below the top stay resident. Tasks
 * launched and forgotten by the thousand leave such holes: with the bytes in use
 * flat (the engine's table full), the resident set rose by 1.1 MiB in one step
 * when the heap's free bytes grew from 0.9 to 2.0 MiB (bench/tasks_memory.py
 * --inside). malloc_trim(0) hands the whole free pages inside the heap back
 * (madvise), so the agent checks the heap's free bytes every
 * AG_MEMTRIM_HEAP_PERIOD_MS and trims when they grew by AG_MEMTRIM_HEAP_GROWTH
 * since the last trim (or since they last fell: chunks reused are resident again)
 * and are at least AG_MEMTRIM_HEAP_SLACK. */
#define AG_MEMTRIM_HEAP_PERIOD_MS 10000
#define AG_MEMTRIM_HEAP_SLACK (1024 * 1024)
#define AG_MEMTRIM_HEAP_GROWTH (512 * 1024)

/* The decision (pure): free_now the heap's free bytes, *mark the free bytes after the
 * last trim, lowered here when they fell since. True when a trim is due; the caller
 * then sets *mark to the free bytes after it. */
bool ag_memtrim_heap_due(size_t free_now, size_t *mark);

typedef struct ag_memtrim_heap_stats {
    bool trimmed;
    size_t free_kb;       /* the heap's free bytes seen, kB */
    size_t rss_before_kb; /* the resident set before and after, when trimmed */
    size_t rss_after_kb;
} ag_memtrim_heap_stats;

/* The heap's free bytes now (every arena's: mallinfo2's fordblks), the first mark. */
size_t ag_memtrim_heap_free(void);

/* Checks the heap (mallinfo2) and trims it when ag_memtrim_heap_due says so. */
void ag_memtrim_heap(size_t *mark, ag_memtrim_heap_stats *st);

#endif
