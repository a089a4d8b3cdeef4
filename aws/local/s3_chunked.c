/* s3_chunked.c - aws-chunked bodies (s3_chunked.h). */
#include "aws/local/s3_chunked.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "aws/sigv4.h"
#include "common/secure.h"

#define SIG_PREFIX ";chunk-signature="
#define STS_MAX 512

typedef struct cursor {
    const char *p;
    size_t left;
} cursor;

/* A line up to "\r\n" (not included) of at most max bytes; false when
 * there is none. */
static bool take_line(cursor *c, size_t max, const char **line, size_t *n)
{
    size_t lim = c->left < max + 2 ? c->left : max + 2;
    for (size_t i = 0; i + 1 < lim; i++) {
        if (c->p[i] == '\r' && c->p[i + 1] == '\n') {
            *line = c->p;
            *n = i;
            c->p += i + 2;
            c->left -= i + 2;
            return true;
        }
    }
    return false;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* "hex[;chunk-signature=SIG]": the size and the signature (NUL when none). */
static int parse_chunk_line(const char *l, size_t n, bool signed_, size_t *size, char sig[65],
                            const char **why)
{
    size_t i = 0, v = 0;
    for (; i < n && i <= AL_S3_CHUNK_HEX_MAX && hex_digit(l[i]) >= 0; i++)
        v = v * 16 + (size_t)hex_digit(l[i]);
    if (i == 0 || i > AL_S3_CHUNK_HEX_MAX) {
        *why = "a chunk's size is not 1 to 8 hex digits";
        return -EINVAL;
    }
    *size = v;
    sig[0] = '\0';
    size_t pl = sizeof SIG_PREFIX - 1;
    if (!signed_) {
        if (i != n) {
            *why = "an unsigned chunk carries an extension";
            return -EINVAL;
        }
        return 0;
    }
    if (n - i != pl + 64 || memcmp(l + i, SIG_PREFIX, pl) != 0) {
        *why = "a chunk lacks its ';chunk-signature=' of 64 hex digits";
        return -EINVAL;
    }
    for (size_t k = 0; k < 64; k++) {
        if (hex_digit(l[i + pl + k]) < 0) {
            *why = "a chunk's signature is not hex";
            return -EINVAL;
        }
    }
    memcpy(sig, l + i + pl, 64);
    sig[64] = '\0';
    return 0;
}

/* Checks sig of data chained to prev (then prev becomes sig). */
static int check_sig(const al_s3_chunk_sig *s, char prev[65], const char *data, size_t n,
                     const char sig[65])
{
    char h[65], want[65], sts[STS_MAX];
    aw_sigv4_sha256_hex(data, n, h);
    int k = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", s->amz_date,
                     s->scope, prev, aw_sigv4_empty_sha256, h);
    if (k < 0 || (size_t)k >= sizeof sts)
        return -EINVAL;
    if (aw_sigv4_signature_hex(s->key, sts, (size_t)k, want) < 0)
        return -EIO;
    if (!es_ct_equal(want, sig, 64))
        return -EACCES;
    memcpy(prev, sig, 65);
    return 0;
}

/* The trailer after an unsigned body's last chunk: "name:value" lines, then
 * an empty line, and nothing after. */
static int take_trailer(cursor *c, const char **why)
{
    size_t total = 0;
    for (;;) {
        const char *l;
        size_t n;
        if (!take_line(c, AL_S3_TRAILER_MAX, &l, &n)) {
            *why = "the trailer does not end with an empty line";
            return -EINVAL;
        }
        if (n == 0)
            return 0;
        total += n;
        if (total > AL_S3_TRAILER_MAX || !memchr(l, ':', n)) {
            *why = "a trailer line is malformed or the trailer is too long";
            return -EINVAL;
        }
    }
}

/* One chunk's data and its "\r\n", checked against its signature. */
static int take_data(cursor *c, const al_s3_chunk_sig *s, char prev[65], size_t size,
                     const char sig[65], es_buf *out, const char **why)
{
    if (c->left < size + 2 || c->p[size] != '\r' || c->p[size + 1] != '\n') {
        *why = "a chunk is shorter than its size or lacks its CRLF";
        return -EINVAL;
    }
    int r = s ? check_sig(s, prev, c->p, size, sig) : 0;
    if (r == -EACCES)
        *why = "a chunk's signature does not match";
    if (r == 0)
        r = es_buf_append(out, c->p, size);
    c->p += size + 2;
    c->left -= size + 2;
    return r;
}

/* After the last (0-size) chunk: its signature, then the end. */
static int take_end(cursor *c, const al_s3_chunk_sig *s, char prev[65], const char sig[65],
                    const char **why)
{
    if (!s)
        return take_trailer(c, why);
    int r = check_sig(s, prev, "", 0, sig);
    if (r == -EACCES) {
        *why = "the final chunk's signature does not match";
        return r;
    }
    if (r < 0)
        return r;
    /* the final CRLF; some clients send the body ending right after the
     * last chunk line */
    if (c->left >= 2 && c->p[0] == '\r' && c->p[1] == '\n') {
        c->p += 2;
        c->left -= 2;
    }
    return 0;
}

int al_s3_dechunk(const char *body, size_t len, const al_s3_chunk_sig *sig, size_t max, es_buf *out,
                  const char **why)
{
    static const char *none = "";
    *why = none;
    es_buf_reset_secret(out);
    cursor c = {body, len};
    char prev[65] = "";
    if (sig)
        snprintf(prev, sizeof prev, "%s", sig->seed);
    for (size_t k = 0;; k++) {
        const char *l;
        size_t n, size;
        char csig[65];
        if (k >= AL_S3_CHUNKS_MAX) {
            *why = "too many chunks";
            return -EMSGSIZE;
        }
        if (!take_line(&c, AL_S3_CHUNK_HEX_MAX + AL_S3_CHUNK_EXT_MAX, &l, &n)) {
            *why = "a chunk line is missing, too long or not ended by CRLF";
            return -EINVAL;
        }
        int r = parse_chunk_line(l, n, sig != NULL, &size, csig, why);
        if (r < 0)
            return r;
        if (size == 0) {
            r = take_end(&c, sig, prev, csig, why);
            if (r == 0 && c.left) {
                *why = "bytes follow the final chunk";
                r = -EINVAL;
            }
            return r;
        }
        if (size > max || out->len + size > max) {
            *why = "the object is larger than the embedded S3 accepts";
            return -EMSGSIZE;
        }
        if ((r = take_data(&c, sig, prev, size, csig, out, why)) < 0)
            return r;
    }
}
