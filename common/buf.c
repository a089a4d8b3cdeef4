#include "common/buf.h"
#include "common/alloc.h"
#include "common/secure.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BUF_MIN_ALLOC 64

void es_buf_init(es_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->dirty = 0;
}

void es_buf_free(es_buf *b)
{
    es_free(b->data);
    es_buf_init(b, b->max);
}

void es_buf_free_secret(es_buf *b)
{
    es_wipe(b->data, b->dirty);
    es_buf_free(b);
}

void es_buf_reset(es_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void es_buf_reset_secret(es_buf *b)
{
    es_wipe(b->data, b->dirty); /* data[0] is 0 again: dirty >= 1 once allocated */
    b->len = 0;
    b->dirty = 0;
}

/* Grows so that `need` bytes plus the NUL fit. A growing buffer that held a
 * secret must not leave a copy behind in freed memory, so we never use
 * realloc: allocate, copy, wipe the old block, free it. */
static int grow(es_buf *b, size_t need)
{
    if (need > b->max)
        return -EMSGSIZE;
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : BUF_MIN_ALLOC;
    while (cap < need + 1)
        cap = cap > ((size_t)-1) / 2 ? need + 1 : cap * 2;
    if (b->max != SIZE_MAX && cap > b->max + 1) /* SIZE_MAX + 1 would wrap to 0 */
        cap = b->max + 1;
    char *n = es_malloc(cap);
    if (!n)
        return -ENOMEM;
    if (b->data) {
        memcpy(n, b->data, b->len);
        es_wipe(b->data, b->dirty);
        es_free(b->data);
    }
    n[b->len] = '\0';
    b->data = n;
    b->cap = cap;
    b->dirty = b->len + 1;
    return 0;
}

char *es_buf_reserve(es_buf *b, size_t n, int *err)
{
    if (n > b->max || b->len > b->max - n) {
        *err = -EMSGSIZE;
        return NULL;
    }
    int r = grow(b, b->len + n);
    if (r < 0) {
        *err = r;
        return NULL;
    }
    es_buf_mark_dirty(b, b->len + n + 1); /* the caller may write all of it */
    return b->data + b->len;
}

int es_buf_expect(es_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -EMSGSIZE;
    return grow(b, b->len + n);
}

void es_buf_commit(es_buf *b, size_t n)
{
    b->len += n;
    b->data[b->len] = '\0';
    es_buf_mark_dirty(b, b->len + 1);
}

int es_buf_append_grow(es_buf *b, const void *p, size_t n)
{
    int err = 0;
    char *dst = es_buf_reserve(b, n, &err);
    if (!dst)
        return err;
    if (n)
        memcpy(dst, p, n);
    es_buf_commit(b, n);
    return 0;
}

int es_buf_append_str(es_buf *b, const char *s)
{
    return es_buf_append(b, s, strlen(s));
}

int es_buf_append_char(es_buf *b, char c)
{
    return es_buf_append(b, &c, 1);
}

int es_buf_vprintf(es_buf *b, const char *fmt, va_list ap)
{
    /* one pass when the spare room takes it (the usual case), a second
     * after growing otherwise */
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n >= 0 && (size_t)n < room && (size_t)n <= b->max && b->len <= b->max - (size_t)n) {
        es_buf_commit(b, (size_t)n);
        return 0;
    }
    if (room) {
        /* what the first pass left past the end goes (it may be secret) */
        es_buf_mark_dirty(b, b->cap);
        es_wipe(b->data + b->len, room);
    }
    if (n < 0)
        return -EINVAL;
    int err = 0;
    char *dst = es_buf_reserve(b, (size_t)n, &err);
    if (!dst)
        return err;
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    es_buf_commit(b, (size_t)n);
    return 0;
}

int es_buf_printf(es_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = es_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

void es_buf_consume(es_buf *b, size_t n)
{
    if (n >= b->len) {
        es_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *es_buf_steal(es_buf *b)
{
    if (!b->data && grow(b, 0) < 0)
        return NULL;
    char *d = b->data;
    es_buf_init(b, b->max);
    return d;
}

const char *es_buf_cstr(const es_buf *b)
{
    return b->data ? b->data : "";
}

int es_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
