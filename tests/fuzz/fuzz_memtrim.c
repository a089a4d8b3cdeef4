/* Fuzzes the /proc/self/smaps parser of agent/memtrim.c and checks what it promises about
 * its output: only whole, non-empty ranges, each resident, within the maximum. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/memtrim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_memtrim_range r[MAX];
    size_t n = 0;
    int rc = ag_memtrim_clean_ranges((const char *)data, size, r, MAX, &n);
    if (rc != 0 && rc != -EINVAL && rc != -E2BIG)
        __builtin_trap();
    if (n > MAX)
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (r[i].end <= r[i].start || r[i].rss_kb == 0)
            __builtin_trap();
    return 0;
}
