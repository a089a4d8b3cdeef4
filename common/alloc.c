#include "common/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Countdown to an injected failure; < 0 means never. Process-global on
 * purpose: it exists for single-threaded tests only. */
static long fail_countdown = -1;

static int should_fail(void)
{
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown == 0)
        return 1;
    fail_countdown--;
    return 0;
}

void es_alloc_fail_after(long n)
{
    fail_countdown = n;
}

void *es_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

/* malloc and memset, not calloc: glibc's calloc (2.36) skips the per-thread
 * cache and takes the arena's slow path every time, and the daemon callocs
 * small structs on every request (Docker client, embedded store); a cold
 * arena costs cache misses after each sleep. Large blocks still go to
 * calloc, which knows that fresh mmap'd pages are zero already. */
void *es_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    count = count ? count : 1;
    size = size ? size : 1;
    if (count > SIZE_MAX / size)
        return NULL;
    size_t n = count * size;
    if (n > 1024)
        return calloc(count, size);
    void *p = malloc(n);
    if (!p)
        return NULL;
    /* an opaque barrier: else gcc fuses malloc and memset back into calloc */
    __asm__ volatile("" : : "r"(p) : "memory");
    memset(p, 0, n);
    return p;
}

void *es_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *es_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = es_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *es_strdup(const char *s)
{
    return es_strndup(s, strlen(s));
}

void es_free(void *p)
{
    if (p) /* no call into libc for the many NULLs of cleanup paths */
        free(p);
}
