/* buf.h - growable byte buffers created with a maximum (curl's dynbuf idea).
 *
 * A buffer never grows past the `max` it was initialised with: an append
 * that would cross it fails with -EMSGSIZE and leaves the contents as they
 * were, so a peer cannot make us allocate without bound. The contents are
 * always NUL-terminated (the terminator is not counted in len).
 *
 * A buffer that held a secret is released with es_buf_free_secret, which
 * wipes every byte that may have been written, not just len bytes: the
 * buffer keeps the extent of its allocation that was ever handed out for
 * writing (`dirty`). Wiping that and not the whole allocation matters on
 * the request paths: a block reserved large and filled little would
 * otherwise cost a cache miss per untouched line at every wipe. */
#ifndef ES_COMMON_BUF_H
#define ES_COMMON_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct es_buf {
    char *data; /* NULL until the first append */
    size_t len; /* bytes in use, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* len may never exceed this */
    /* data[0..dirty) may hold what was written (contents, terminators, what
     * a truncation left past len, space handed out by es_buf_reserve); the
     * rest of the allocation was never written through the buffer. Any
     * code writing into data directly keeps this up to date
     * (es_buf_mark_dirty). */
    size_t dirty;
} es_buf;

/* data[0..end) may now hold written bytes: the wipe covers them. */
static inline void es_buf_mark_dirty(es_buf *b, size_t end)
{
    if (end > b->dirty)
        b->dirty = end;
}

void es_buf_init(es_buf *b, size_t max);
/* Frees and reinitialises (keeps max). */
void es_buf_free(es_buf *b);
/* Wipes every byte that may have been written, then frees. */
void es_buf_free_secret(es_buf *b);
/* Keeps the allocation, sets len to 0. */
void es_buf_reset(es_buf *b);
/* Wipes the contents and sets len to 0, keeping the allocation. */
void es_buf_reset_secret(es_buf *b);

/* es_buf_append's general path: grows the buffer or fails. */
int es_buf_append_grow(es_buf *b, const void *p, size_t n);
/* Appends p[0..n); -EMSGSIZE past max, -ENOMEM, contents unchanged then.
 * Inline where the allocation has room already (the usual case on the
 * request paths: a request's head line by line, an answer's pieces); the
 * call, the reservation's checks and the commit were 80 instructions an
 * append (issue 22). */
static inline int es_buf_append(es_buf *b, const void *p, size_t n)
{
    if (b->data && n < b->cap - b->len && n <= b->max - b->len) {
        if (n)
            __builtin_memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        es_buf_mark_dirty(b, b->len + 1);
        return 0;
    }
    return es_buf_append_grow(b, p, n);
}
int es_buf_append_str(es_buf *b, const char *s);
int es_buf_append_char(es_buf *b, char c);
int es_buf_printf(es_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes a one-line error into err[0..errlen) (when err is not NULL) and
 * returns code: `return es_errf(err, n, -EINVAL, "...", ...);`. */
int es_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int es_buf_vprintf(es_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Makes room for n more bytes; returns a pointer to write them at. Commit
 * them with es_buf_commit. NULL with *err set on failure. */
char *es_buf_reserve(es_buf *b, size_t n, int *err);
/* Makes room for n more bytes without handing it out: a size hint before
 * appends, so that they need one allocation. */
int es_buf_expect(es_buf *b, size_t n);
void es_buf_commit(es_buf *b, size_t n);
/* Removes the first n bytes (n <= len). */
void es_buf_consume(es_buf *b, size_t n);
/* Hands the data to the caller (who frees it with es_free) and reinitialises
 * the buffer. Never NULL on success; NULL only when allocation failed. */
char *es_buf_steal(es_buf *b);
/* The contents, or "" for a buffer never appended to. */
const char *es_buf_cstr(const es_buf *b);

#endif
