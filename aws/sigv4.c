#include "aws/sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/alloc.h"
#include "common/secure.h"

const char aw_sigv4_empty_sha256[65] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static const char hexup[] = "0123456789ABCDEF";

/* Every byte's two lowercase hex digits: one load and one two-byte store a
 * byte where the nibble look-ups took two of each (to_hex runs three times a
 * verified request: the body's hash, the canonical request's, the MAC). */
static const char hexpair[513] = "000102030405060708090a0b0c0d0e0f"
                                 "101112131415161718191a1b1c1d1e1f"
                                 "202122232425262728292a2b2c2d2e2f"
                                 "303132333435363738393a3b3c3d3e3f"
                                 "404142434445464748494a4b4c4d4e4f"
                                 "505152535455565758595a5b5c5d5e5f"
                                 "606162636465666768696a6b6c6d6e6f"
                                 "707172737475767778797a7b7c7d7e7f"
                                 "808182838485868788898a8b8c8d8e8f"
                                 "909192939495969798999a9b9c9d9e9f"
                                 "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
                                 "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                                 "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
                                 "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                                 "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
                                 "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static void to_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hexpair + 2 * p[i], 2);
    out[2 * n] = '\0';
}

/* SHA-256 fetched once: SHA256() and HMAC() make OpenSSL 3 look the
 * implementation up again on every call (EVP_Q_digest / EVP_Q_mac), a third
 * of their cost for the short inputs of SigV4. Process-wide, read-only once
 * set. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    (void)pthread_once(&sha256_once, fetch_sha256);
    return sha256_md ? sha256_md : EVP_sha256();
}

/* out = SHA-256(a || b); 0 or -EIO. */
static int sha256_two(EVP_MD_CTX *x, const void *a, size_t alen, const void *b, size_t blen,
                      uint8_t out[32])
{
    unsigned int olen = 0;
    if (EVP_DigestInit_ex(x, sha256(), NULL) != 1 || EVP_DigestUpdate(x, a, alen) != 1 ||
        (blen && EVP_DigestUpdate(x, b, blen) != 1) || EVP_DigestFinal_ex(x, out, &olen) != 1 ||
        olen != 32)
        return -EIO;
    return 0;
}

void aw_sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    if (EVP_Digest(data, len, md, NULL, sha256(), NULL) != 1)
        SHA256(data, len, md);
    to_hex(md, sizeof md, hex);
}

/* aw_sigv4_sha256_hex on a digest context the caller keeps: EVP_Digest
 * makes and frees an EVP_MD_CTX per call (about 450 instructions of each
 * hash beside the blocks). The context is left holding the digest's final
 * state only: SHA-256's final cleanses its block buffer, so no byte of data
 * stays in it. 0 or -EIO (the context reset). */
static int sha256_hex_on(EVP_MD_CTX *x, const void *data, size_t len, char hex[65])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    unsigned int olen = 0;
    if (EVP_DigestInit_ex2(x, sha256(), NULL) != 1 || EVP_DigestUpdate(x, data, len) != 1 ||
        EVP_DigestFinal_ex(x, md, &olen) != 1 || olen != sizeof md) {
        (void)EVP_MD_CTX_reset(x);
        return -EIO;
    }
    to_hex(md, sizeof md, hex);
    return 0;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-encodes s[0..n) keeping unreserved characters (and '/' when
 * keep_slash). */
static int encode(es_buf *out, const char *s, size_t n, bool keep_slash)
{
    /* a run of characters kept as they are goes in one append */
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (run < n && (is_unreserved((unsigned char)s[run]) || (keep_slash && s[run] == '/')))
            run++;
        int rc;
        if (run > i && (rc = es_buf_append(out, s + i, run - i)) < 0)
            return rc;
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        char e[3] = {'%', hexup[c >> 4], hexup[c & 15]};
        if ((rc = es_buf_append(out, e, 3)) < 0)
            return rc;
        i = run + 1;
    }
    return 0;
}

/* Decodes %XX sequences of s[0..n) (others kept as they are) then encodes. */
static int decode_encode(es_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n) {
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h >= 0 && l >= 0) {
                c = (unsigned char)(h * 16 + l);
                i += 2;
            }
        }
        int rc = encode(out, (const char *)&c, 1, false);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* botocore's remove_dot_segments, then encoded (keeping '/'). */
static int canonical_path(es_buf *out, const char *path, bool s3)
{
    /* "/" (every JSON and query API's path) is its own canonical form */
    if (!path || !*path || (path[0] == '/' && !path[1]))
        return es_buf_append_char(out, '/');
    size_t plen = strlen(path);
    if (s3)
        return encode(out, path, plen, true);

    /* segment stack as (offset, length) pairs into path */
    size_t cap = 16, n = 0;
    size_t *seg = es_malloc(cap * 2 * sizeof *seg);
    if (!seg)
        return -ENOMEM;
    int rc = 0;
    const char *p = path, *end = path + plen;
    while (p <= end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (!q)
            q = end;
        size_t l = (size_t)(q - p);
        if (l == 0 || (l == 1 && p[0] == '.')) {
            /* dropped */
        } else if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (n)
                n--;
        } else {
            if (n == cap) {
                size_t *ns = es_realloc(seg, cap * 4 * sizeof *seg);
                if (!ns) {
                    rc = -ENOMEM;
                    goto out;
                }
                seg = ns;
                cap *= 2;
            }
            seg[2 * n] = (size_t)(p - path);
            seg[2 * n + 1] = l;
            n++;
        }
        p = q + 1;
    }
    if (path[0] == '/' && (rc = es_buf_append_char(out, '/')) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (i && (rc = es_buf_append_char(out, '/')) < 0)
            goto out;
        if ((rc = encode(out, path + seg[2 * i], seg[2 * i + 1], true)) < 0)
            goto out;
    }
    if (path[plen - 1] == '/' && n && (rc = es_buf_append_char(out, '/')) < 0)
        goto out;
    if (out->len == 0)
        rc = es_buf_append_char(out, '/');
out:
    es_free(seg);
    return rc;
}

typedef struct qpair {
    char *kv;    /* "key=value" encoded, NUL-terminated */
    size_t klen; /* length of the key part */
} qpair;

static int qpair_cmp(const void *a, const void *b)
{
    const qpair *x = a, *y = b;
    size_t m = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->kv, y->kv, m);
    if (c)
        return c;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return strcmp(x->kv + x->klen + 1, y->kv + y->klen + 1);
}

static int canonical_query(es_buf *out, const char *query)
{
    if (!query || !*query)
        return 0;
    size_t n = 0, qlen = strlen(query);
    for (size_t i = 0; i < qlen; i++)
        n += query[i] == '&';
    n++;
    if (n > AW_SIGV4_QUERY_PARAMS_MAX)
        return -E2BIG;
    qpair *pairs = es_calloc(n, sizeof *pairs);
    if (!pairs)
        return -ENOMEM;
    size_t np = 0;
    int rc = 0;
    es_buf tmp;
    es_buf_init(&tmp, AW_SIGV4_CANONICAL_MAX);
    const char *p = query, *end = query + qlen;
    while (p <= end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (!amp)
            amp = end;
        if (amp != p) { /* botocore keeps empty pairs out */
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            const char *kend = eq ? eq : amp;
            es_buf_reset(&tmp);
            if ((rc = decode_encode(&tmp, p, (size_t)(kend - p))) < 0)
                goto out;
            size_t klen = tmp.len;
            if ((rc = es_buf_append_char(&tmp, '=')) < 0)
                goto out;
            if (eq && (rc = decode_encode(&tmp, eq + 1, (size_t)(amp - eq - 1))) < 0)
                goto out;
            pairs[np].kv = es_strndup(es_buf_cstr(&tmp), tmp.len);
            if (!pairs[np].kv) {
                rc = -ENOMEM;
                goto out;
            }
            pairs[np].klen = klen;
            np++;
        }
        p = amp + 1;
    }
    qsort(pairs, np, sizeof *pairs, qpair_cmp);
    for (size_t i = 0; i < np; i++) {
        if (i && (rc = es_buf_append_char(out, '&')) < 0)
            goto out;
        if ((rc = es_buf_append_str(out, pairs[i].kv)) < 0)
            goto out;
    }
out:
    for (size_t i = 0; i < np; i++)
        es_free(pairs[i].kv);
    es_free(pairs);
    es_buf_free(&tmp);
    return rc;
}

typedef struct hdr {
    /* lower-cased: a copy in the one block of them all (signing), or the
     * SignedHeaders list's own name (verifying); nlen bytes, not
     * NUL-terminated */
    const char *name;
    size_t nlen;
    const char *value;
    size_t vlen;
    bool plain;  /* no whitespace in the value: folded, it is itself */
    size_t idx;  /* order in the request, kept for repeated headers */
    size_t rank; /* verifying an ascending list: the name's place in it */
} hdr;

/* The byte order of two names of known lengths (strcmp's, for names
 * without NUL), without walking them for their ends. */
static int name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

static bool same_name(const hdr *x, const hdr *y)
{
    return x->nlen == y->nlen && (x->name == y->name || memcmp(x->name, y->name, x->nlen) == 0);
}

static int hdr_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = name_cmp(x->name, x->nlen, y->name, y->nlen);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : (x->idx > y->idx ? 1 : 0);
}

/* hdr_cmp's order when every name is a name of a strictly ascending
 * SignedHeaders list: the list's order is the names' byte order. */
static int hdr_rank_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx ? 1 : 0);
}

/* The usual request has about ten headers to order: an insertion sort
 * calls hdr_cmp directly, without qsort's merge buffer and indirect calls
 * (700 instructions a verified request under callgrind); past a few dozen,
 * qsort. Both give the one order hdr_cmp defines (idx breaks every tie). */
#define HDR_INSERTION_MAX 24
static void sort_headers(hdr *h, size_t nh, bool by_rank)
{
    int (*cmp)(const void *, const void *) = by_rank ? hdr_rank_cmp : hdr_cmp;
    if (nh > HDR_INSERTION_MAX) {
        qsort(h, nh, sizeof *h, cmp);
        return;
    }
    for (size_t i = 1; i < nh; i++) {
        hdr t = h[i];
        size_t j = i;
        for (; j > 0 && cmp(&h[j - 1], &t) > 0; j--)
            h[j] = h[j - 1];
        h[j] = t;
    }
}

static bool excluded_when_signing(const char *lname)
{
    static const char *const ex[] = {"authorization", "user-agent", "expect", "x-amzn-trace-id"};
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++)
        if (strcmp(lname, ex[i]) == 0)
            return true;
    return false;
}

static const bool ws_class[256] = {
    [' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1};

static bool is_ws(char c)
{
    return ws_class[(unsigned char)c];
}

/* No byte of v[0..n) is below 0x21 (so none is whitespace): eight bytes a
 * step, a word having a byte below 0x21 exactly when
 * (x - 0x21..21) & ~x & 0x80..80 is not zero (the bit hack "hasless", exact
 * for a bound up to 128). */
static bool none_below_0x21(const char *v, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, v + i, 8);
        if ((x - ones * 0x21) & ~x & highs)
            return false;
    }
    for (; i < n; i++)
        if ((unsigned char)v[i] < 0x21)
            return false;
    return true;
}

/* The length of v[0..n) trimmed with whitespace runs folded into one space;
 * *plain: v has no whitespace (its folded form is v itself: copied whole,
 * not walked a second time). A value with no byte below '!' (every usual
 * one) is known plain a word at a time: the byte walk was 8 instructions a
 * byte of every signed value. */
static size_t folded_len(const char *v, size_t n, bool *plain)
{
    if (none_below_0x21(v, n)) {
        *plain = true;
        return n;
    }
    size_t out = 0;
    bool pending = false, any = false, ws = false;
    for (const char *e = v + n; v < e; v++) {
        if (is_ws(*v)) {
            pending = any;
            ws = true;
            continue;
        }
        out += pending ? 2 : 1;
        pending = false;
        any = true;
    }
    *plain = !ws;
    return out;
}

/* Writes v[0..n) trimmed, folded (folded_len bytes) at dst; returns the end. */
static char *put_folded(char *dst, const char *v, size_t n)
{
    bool pending = false, any = false;
    for (const char *e = v + n; v < e; v++) {
        if (is_ws(*v)) {
            pending = any;
            continue;
        }
        if (pending)
            *dst++ = ' ';
        *dst++ = *v;
        pending = false;
        any = true;
    }
    return dst;
}

/* A name of a SignedHeaders list: where it starts in the list, its length. */
typedef struct name_ref {
    const char *p;
    size_t n;
} name_ref;

/* Checks a SignedHeaders list (non-empty, at most AW_SIGV4_SIGNED_LIST_MAX
 * bytes, no empty name, no upper case, at most AW_SIGV4_SIGNED_HEADERS_MAX
 * names) and splits it into names[] in the same pass: each header is then
 * looked for by length and bytes, not by walking the list again with strchr
 * and strlen per header. *count: the names; *ascending: each name sorts
 * strictly after the one before (as every SigV4 client sends the list). */
static int check_signed_list(const char *list, name_ref names[AW_SIGV4_SIGNED_HEADERS_MAX],
                             size_t *count, bool *ascending)
{
    size_t len = strlen(list);
    if (!len || len > AW_SIGV4_SIGNED_LIST_MAX)
        return -EINVAL;
    *ascending = true;
    size_t k = 0;
    const char *start = list;
    for (const char *p = list;; p++) {
        if (*p == ';' || !*p) {
            if (p == start) /* leading, doubled or trailing ';' */
                return -EINVAL;
            if (k < AW_SIGV4_SIGNED_HEADERS_MAX) {
                names[k] = (name_ref){start, (size_t)(p - start)};
                if (k && name_cmp(names[k - 1].p, names[k - 1].n, start, names[k].n) >= 0)
                    *ascending = false;
            }
            k++;
            if (!*p)
                break;
            start = p + 1;
        } else if (*p >= 'A' && *p <= 'Z') {
            return -EINVAL;
        }
    }
    if (k > AW_SIGV4_SIGNED_HEADERS_MAX)
        return -E2BIG;
    *count = k;
    return 0;
}

/* n bytes of a header name as received equal the lower-case name l (only
 * A-Z folded, as the canonical form lower-cases). */
static bool lower_eq(const char *name, const char *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != l[i])
            return false;
    }
    return true;
}

/* The first name of the list that the header name[0..n) is, any case; -1
 * when it is none. */
static long listed_index(const name_ref *names, size_t count, const char *name, size_t n)
{
    for (size_t i = 0; i < count; i++)
        if (names[i].n == n && lower_eq(name, names[i].p, n))
            return (long)i;
    return -1;
}

/* The canonical request's header lines, the blank line, the signed list
 * and the payload hash, from the sorted headers h[0..nh): sized exactly
 * first (names, folded values, separators), then written into one
 * reservation of c and one of names (an append per piece and per value's
 * character was 86 es_buf calls a signed request). signed_headers (slen
 * bytes) and its split names: NULL when signing. */
static int put_headers(es_buf *c, es_buf *names, hdr *h, size_t nh, const char *signed_headers,
                       size_t slen, const name_ref *listed, size_t nlisted,
                       const char *payload_hash)
{
    size_t clen = 0, nlen = 0;
    for (size_t i = 0; i < nh; i++) {
        bool first = i == 0 || !same_name(&h[i], &h[i - 1]);
        if (first) {
            clen += (i ? 1u : 0u) + h[i].nlen + 1; /* '\n' before, name, ':' */
            nlen += (nlen ? 1u : 0u) + h[i].nlen;
        } else {
            clen += 1; /* ',' */
        }
        clen += folded_len(h[i].value, h[i].vlen, &h[i].plain);
    }
    if (!signed_headers)
        slen = nlen;
    size_t plen = strlen(payload_hash);
    clen += (nh ? 1u : 0u) + 1 + slen + 1 + plen;
    int rc = 0;
    char *nw = es_buf_reserve(names, nlen, &rc);
    if (!nw)
        return rc;
    char *w = es_buf_reserve(c, clen, &rc);
    if (!w)
        return rc;
    char *const n0 = nw, *const w0 = w;
    for (size_t i = 0; i < nh; i++) {
        bool first = i == 0 || !same_name(&h[i], &h[i - 1]);
        if (first) {
            if (i)
                *w++ = '\n';
            memcpy(w, h[i].name, h[i].nlen);
            w += h[i].nlen;
            *w++ = ':';
            if (nw != n0)
                *nw++ = ';';
            memcpy(nw, h[i].name, h[i].nlen);
            nw += h[i].nlen;
        } else {
            *w++ = ',';
        }
        if (h[i].plain) {
            memcpy(w, h[i].value, h[i].vlen);
            w += h[i].vlen;
        } else {
            w = put_folded(w, h[i].value, h[i].vlen);
        }
    }
    es_buf_commit(names, (size_t)(nw - n0));
    if (nh)
        *w++ = '\n';
    *w++ = '\n';
    if (signed_headers) {
        /* every listed header must be present */
        if (names->len != slen || memcmp(n0, signed_headers, slen) != 0) {
            for (size_t k = 0; k < nlisted; k++) {
                bool found = false;
                for (size_t i = 0; i < nh && !found; i++)
                    found = h[i].nlen == listed[k].n &&
                            memcmp(h[i].name, listed[k].p, listed[k].n) == 0;
                if (!found)
                    return -ENOENT;
            }
        }
        /* the list is signed as sent */
        memcpy(w, signed_headers, slen);
    } else if (slen) {
        memcpy(w, names->data, slen);
    }
    w += slen;
    *w++ = '\n';
    memcpy(w, payload_hash, plen);
    w += plen;
    es_buf_commit(c, (size_t)(w - w0));
    return 0;
}

/* Header names lower-cased into a buffer on the stack when they fit (every
 * usual request), else into an allocation. */
#define LOWER_STACK 1024

int aw_sigv4_canonical_request(const aw_sigv4_input *in, const char *signed_headers, es_buf *out,
                               es_buf *signed_out)
{
    if (!in || !in->method || !in->payload_hash || !out || (in->n_headers && !in->headers))
        return -EINVAL;
    if (in->n_headers > AW_SIGV4_HEADERS_MAX)
        return -E2BIG;
    int rc;
    name_ref listed[AW_SIGV4_SIGNED_HEADERS_MAX];
    size_t nlisted = 0, slen = 0;
    bool ascending = false;
    if (signed_headers) {
        if ((rc = check_signed_list(signed_headers, listed, &nlisted, &ascending)) < 0)
            return rc;
        slen = (size_t)(listed[nlisted - 1].p + listed[nlisted - 1].n - signed_headers);
    }

    es_buf names;
    es_buf_init(&names, AW_SIGV4_SIGNED_LIST_MAX);
    /* built in out itself (reset first; wiped and reset on failure), at
     * most AW_SIGV4_CANONICAL_MAX bytes: no second buffer and copy */
    size_t limit = out->max < AW_SIGV4_CANONICAL_MAX ? out->max : AW_SIGV4_CANONICAL_MAX;
    es_buf_reset(out);
    /* the headers on the stack (AW_SIGV4_HEADERS_MAX of them at most), each
     * name's and value's length measured once */
    hdr h[AW_SIGV4_HEADERS_MAX];
    char lower_stack[LOWER_STACK];
    char *lower = lower_stack, *lower_heap = NULL;
    size_t nh = 0, total = 0, values = 0;
    for (size_t i = 0; i < in->n_headers; i++) {
        if (!in->headers[i].name || !in->headers[i].value) {
            rc = -EINVAL;
            goto out;
        }
        h[i].nlen = strlen(in->headers[i].name);
        h[i].vlen = strlen(in->headers[i].value);
        total += h[i].nlen + 1;
        values += h[i].vlen + 2;
    }
    if (signed_headers) {
        /* verifying: each header found in the list by its length and its
         * letters in any case, and named by the list's own lower-case
         * name: no lower-cased copy of every name. With an ascending list
         * (every client's) its order is the headers' order, and they sort
         * by place in it, not by comparing names (copies and strcmp were
         * a third of the canonical request's 4.4 K instructions). The taken
         * headers move to the front (nh <= i: nothing unread is
         * overwritten). */
        for (size_t i = 0; i < in->n_headers; i++) {
            long k = listed_index(listed, nlisted, in->headers[i].name, h[i].nlen);
            if (k < 0)
                continue;
            size_t vlen = h[i].vlen;
            h[nh] = (hdr){.name = listed[k].p,
                          .nlen = listed[k].n,
                          .value = in->headers[i].value,
                          .vlen = vlen,
                          .idx = i,
                          .rank = (size_t)k};
            nh++;
        }
    } else {
        if (total > sizeof lower_stack && !(lower = lower_heap = es_malloc(total))) {
            rc = -ENOMEM;
            goto out;
        }
        /* signing: names lower-cased side by side in one block; the taken
         * headers move to the front (nh <= i: nothing unread is
         * overwritten) */
        for (size_t i = 0, off = 0; i < in->n_headers; i++) {
            char *ln = lower + off;
            const char *src = in->headers[i].name;
            size_t l = h[i].nlen, vlen = h[i].vlen;
            for (size_t j = 0; j < l; j++)
                ln[j] = (src[j] >= 'A' && src[j] <= 'Z') ? (char)(src[j] - 'A' + 'a') : src[j];
            ln[l] = '\0';
            off += l + 1;
            if (!l || excluded_when_signing(ln))
                continue;
            h[nh].name = ln;
            h[nh].nlen = l;
            h[nh].value = in->headers[i].value;
            h[nh].vlen = vlen;
            h[nh].idx = i;
            nh++;
        }
    }
    sort_headers(h, nh, signed_headers && ascending);

    /* one allocation for the usual request: the method, the path and query
     * as sent (their encoding may grow them: then the buffer grows), the
     * headers and the lists */
    size_t mlen = strlen(in->method);
    size_t guess = mlen + (in->path ? strlen(in->path) : 0) + (in->query ? strlen(in->query) : 0) +
                   total + values + (signed_headers ? slen : total) + 80;
    if (guess < limit && (rc = es_buf_expect(out, guess)) < 0)
        goto out;
    if ((rc = es_buf_append(out, in->method, mlen)) < 0 ||
        (rc = es_buf_append_char(out, '\n')) < 0 ||
        (rc = canonical_path(out, in->path, in->s3)) < 0 ||
        (rc = es_buf_append_char(out, '\n')) < 0 || (rc = canonical_query(out, in->query)) < 0 ||
        (rc = es_buf_append_char(out, '\n')) < 0 ||
        (rc = put_headers(out, &names, h, nh, signed_headers, slen, listed, nlisted,
                          in->payload_hash)) < 0)
        goto out;
    if (out->len > limit) {
        rc = -EMSGSIZE;
        goto out;
    }
    if (signed_out) {
        es_buf_reset(signed_out);
        if ((rc = es_buf_append(signed_out, es_buf_cstr(&names), names.len)) < 0)
            goto out;
    }
    rc = 0;
out:
    es_free(lower_heap);
    /* the canonical request holds the session token when one is signed */
    if (rc < 0)
        es_buf_reset_secret(out);
    es_buf_free(&names);
    return rc;
}

int aw_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        return -EINVAL;
    if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return -EINVAL;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar, for
 * 0 <= y <= 9999, 1 <= m <= 12 and any d (a day past the month's end counts
 * on into the next, as timegm normalises it). Arithmetic instead of glibc's
 * timegm (about 950 instructions a call, twice a verified request): the
 * year shifted to start in March puts the leap day last, so a month's first
 * day is (153 * month + 2) / 5 days into the shifted year. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;                    /* floor(y / 400) */
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* from March 1 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* Two digits at s; -1 when either is not one (s[1] is not read when s[0]
 * is not a digit: a NUL there ends the string). */
static int two_digits(const char *s)
{
    unsigned a = (unsigned)(unsigned char)s[0] - '0';
    if (a > 9)
        return -1;
    unsigned b = (unsigned)(unsigned char)s[1] - '0';
    return b > 9 ? -1 : (int)(a * 10 + b);
}

int aw_sigv4_parse_amz_date(const char *s, time_t *out)
{
    /* fixed places read in order (each read stops at an earlier NUL: a
     * shorter string fails at its NUL's place), then the NUL at 16: no
     * strlen, no loop tables (329 instructions a call, twice a request,
     * before) */
    if (!s)
        return -EINVAL;
    int y1 = two_digits(s), y2 = y1 < 0 ? -1 : two_digits(s + 2);
    int mo = y2 < 0 ? -1 : two_digits(s + 4), d = mo < 0 ? -1 : two_digits(s + 6);
    if (d < 0 || s[8] != 'T')
        return -EINVAL;
    int h = two_digits(s + 9), mi = h < 0 ? -1 : two_digits(s + 11);
    int se = mi < 0 ? -1 : two_digits(s + 13);
    if (se < 0 || s[15] != 'Z' || s[16] != '\0')
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    *out = (time_t)days_from_civil(y1 * 100 + y2, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

int aw_sigv4_scope(const char *date8, const char *region, const char *service, es_buf *out)
{
    if (!date8 || !region || !service)
        return -EINVAL;
    es_buf_reset(out);
    /* appended, not printed: twice per request verified (vsnprintf was 4 K
     * instructions of each) */
    const char *part[] = {date8, "/", region, "/", service, "/aws4_request"};
    for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
        int r = es_buf_append_str(out, part[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

int aw_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq,
                            size_t creq_len, es_buf *out)
{
    if (!amz_date || !scope || !creq)
        return -EINVAL;
    char h[65];
    aw_sigv4_sha256_hex(creq, creq_len, h);
    es_buf_reset(out);
    const char *part[] = {AW_SIGV4_ALGORITHM "\n", amz_date, "\n", scope, "\n", h};
    for (size_t i = 0; i < sizeof part / sizeof part[0]; i++) {
        int r = es_buf_append_str(out, part[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

/* HMAC-SHA256 as RFC 2104 defines it, H((K ^ opad) || H((K ^ ipad) || m))
 * with K the key zero-padded to the 64-byte block (hashed first when
 * longer), on the SHA-256 fetched once. The pads hold the key: wiped. */
static int hmac(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32])
{
    uint8_t k0[64] = {0}, pad[64], inner[32];
    int rc = -EIO;
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    if (!x)
        return -ENOMEM;
    if (klen > sizeof k0) {
        if (sha256_two(x, key, klen, NULL, 0, k0) < 0)
            goto out;
    } else if (klen) {
        memcpy(k0, key, klen);
    }
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (uint8_t)(k0[i] ^ 0x36);
    if (sha256_two(x, pad, sizeof pad, msg, mlen, inner) < 0)
        goto out;
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (uint8_t)(k0[i] ^ 0x5c);
    if (sha256_two(x, pad, sizeof pad, inner, sizeof inner, out) < 0)
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(x);
    es_wipe(k0, sizeof k0);
    es_wipe(pad, sizeof pad);
    es_wipe(inner, sizeof inner);
    return rc;
}

int aw_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, uint8_t key[32])
{
    if (!secret || !date8 || !region || !service)
        return -EINVAL;
    size_t sl = strlen(secret);
    if (sl > AW_SIGV4_SECRET_MAX)
        return -EINVAL;
    char k0[4 + AW_SIGV4_SECRET_MAX];
    uint8_t a[32], b[32];
    int rc;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, sl);
    if ((rc = hmac(k0, 4 + sl, date8, strlen(date8), a)) < 0)
        goto out;
    if ((rc = hmac(a, 32, region, strlen(region), b)) < 0)
        goto out;
    if ((rc = hmac(b, 32, service, strlen(service), a)) < 0)
        goto out;
    if ((rc = hmac(a, 32, "aws4_request", 12, b)) < 0)
        goto out;
    memcpy(key, b, 32);
out:
    es_wipe(k0, sizeof k0);
    es_wipe(a, sizeof a);
    es_wipe(b, sizeof b);
    return rc;
}

int aw_sigv4_signature_hex(const uint8_t key[32], const char *sts, size_t sts_len, char hex[65])
{
    uint8_t mac[32];
    int rc = hmac(key, 32, sts, sts_len, mac);
    if (rc == 0)
        to_hex(mac, 32, hex);
    es_wipe(mac, sizeof mac);
    return rc;
}

/* ---- Authorization header parser ------------------------------------- */

/* The Authorization header's character classes, one table look-up a
 * byte (the range tests per character were most of the parse's 3.3 K
 * instructions, twice a request before the head's parse was kept). */
enum {
    CC_AKID = 1,  /* access key id: letters and digits */
    CC_SCOPE = 2, /* region / service: letters, digits, "-_." */
    CC_TOKEN = 4, /* a lower-case header name (RFC 9110 token, no upper case) */
    CC_HEX = 8,   /* the signature: lower-case hex */
};
#define CC_DIGIT (CC_AKID | CC_SCOPE | CC_TOKEN | CC_HEX)
#define CC_UPPER (CC_AKID | CC_SCOPE)
#define CC_LOWER (CC_AKID | CC_SCOPE | CC_TOKEN)
#define CC_SPAN2(c, v) [(c)] = (v), [(c) + 1] = (v)
#define CC_SPAN6(c, v) CC_SPAN2(c, v), CC_SPAN2((c) + 2, v), CC_SPAN2((c) + 4, v)
#define CC_SPAN10(c, v) CC_SPAN6(c, v), CC_SPAN2((c) + 6, v), CC_SPAN2((c) + 8, v)
#define CC_SPAN20(c, v) CC_SPAN10(c, v), CC_SPAN10((c) + 10, v)
static const uint8_t cclass[256] = {
    CC_SPAN10('0', CC_DIGIT),
    CC_SPAN20('A', CC_UPPER),
    CC_SPAN6('U', CC_UPPER), /* U-Z */
    CC_SPAN6('a', CC_LOWER | CC_HEX),
    CC_SPAN20('g', CC_LOWER), /* g-z */
    ['-'] = CC_SCOPE | CC_TOKEN,
    ['_'] = CC_SCOPE | CC_TOKEN,
    ['.'] = CC_SCOPE | CC_TOKEN,
    ['!'] = CC_TOKEN,
    ['#'] = CC_TOKEN,
    ['$'] = CC_TOKEN,
    ['%'] = CC_TOKEN,
    ['&'] = CC_TOKEN,
    ['\''] = CC_TOKEN,
    ['*'] = CC_TOKEN,
    ['+'] = CC_TOKEN,
    ['^'] = CC_TOKEN,
    ['`'] = CC_TOKEN,
    ['|'] = CC_TOKEN,
    ['~'] = CC_TOKEN,
};

/* Every byte of p[0..n) in class cls, one class bit: the classes of all
 * bytes are and-ed, without a test and branch a byte (the bounded parts are
 * read whole even when an early byte fails). */
static bool all_in(const char *p, size_t n, uint8_t cls)
{
    uint8_t acc = 0xff;
    for (size_t i = 0; i < n; i++)
        acc &= cclass[(unsigned char)p[i]];
    return (acc & cls) != 0;
}

static bool valid_scope_part(const char *p, size_t n)
{
    return n && n <= AW_SIGV4_SCOPE_PART_MAX && all_in(p, n, CC_SCOPE);
}

static int parse_credential(const char *p, size_t n, aw_sigv4_auth *a)
{
    /* AK/DATE/REGION/SERVICE/aws4_request */
    const char *part[5];
    size_t plen[5];
    size_t k = 0;
    const char *s = p, *end = p + n;
    while (k < 5) {
        const char *sl = memchr(s, '/', (size_t)(end - s));
        const char *e = sl ? sl : end;
        part[k] = s;
        plen[k] = (size_t)(e - s);
        k++;
        if (!sl)
            break;
        s = sl + 1;
    }
    if (k != 5 || part[4] + plen[4] != end)
        return -EINVAL;
    if (plen[0] == 0)
        return -EINVAL;
    if (plen[0] > AW_SIGV4_AKID_MAX)
        return -EMSGSIZE;
    if (!all_in(part[0], plen[0], CC_AKID))
        return -EINVAL;
    if (plen[1] != 8)
        return -EINVAL;
    for (size_t i = 0; i < 8; i++)
        if (part[1][i] < '0' || part[1][i] > '9')
            return -EINVAL;
    if (plen[2] > AW_SIGV4_SCOPE_PART_MAX || plen[3] > AW_SIGV4_SCOPE_PART_MAX)
        return -EMSGSIZE;
    if (!valid_scope_part(part[2], plen[2]) || !valid_scope_part(part[3], plen[3]))
        return -EINVAL;
    if (plen[4] != 12 || memcmp(part[4], "aws4_request", 12) != 0)
        return -EINVAL;
    memcpy(a->access_key_id, part[0], plen[0]);
    a->access_key_id[plen[0]] = '\0';
    memcpy(a->date, part[1], 8);
    a->date[8] = '\0';
    memcpy(a->region, part[2], plen[2]);
    a->region[plen[2]] = '\0';
    memcpy(a->service, part[3], plen[3]);
    a->service[plen[3]] = '\0';
    return 0;
}

static int parse_signed_headers(const char *p, size_t n, aw_sigv4_auth *a)
{
    if (n == 0)
        return -EINVAL;
    if (n > AW_SIGV4_SIGNED_LIST_MAX)
        return -EMSGSIZE;
    size_t count = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ';') {
            if (i == 0 || i + 1 == n || p[i + 1] == ';')
                return -EINVAL;
            count++;
            continue;
        }
        /* lower-case token characters only */
        if (!(cclass[c] & CC_TOKEN))
            return -EINVAL;
    }
    if (count > AW_SIGV4_SIGNED_HEADERS_MAX)
        return -E2BIG;
    memcpy(a->signed_headers, p, n);
    a->signed_headers[n] = '\0';
    a->n_signed_headers = count;
    return 0;
}

static int parse_signature(const char *p, size_t n, aw_sigv4_auth *a)
{
    if (n != 64)
        return n > 64 ? -EMSGSIZE : -EINVAL;
    if (!all_in(p, 64, CC_HEX))
        return -EINVAL;
    memcpy(a->signature, p, 64);
    a->signature[64] = '\0';
    return 0;
}

static const char *find_char(const char *p, const char *end, char c)
{
    return p < end ? memchr(p, c, (size_t)(end - p)) : NULL;
}

static void copy_str(char *dst, const char *src)
{
    memcpy(dst, src, strlen(src) + 1);
}

void aw_sigv4_auth_copy(aw_sigv4_auth *out, const aw_sigv4_auth *a)
{
    copy_str(out->access_key_id, a->access_key_id);
    copy_str(out->date, a->date);
    copy_str(out->region, a->region);
    copy_str(out->service, a->service);
    copy_str(out->signed_headers, a->signed_headers);
    out->n_signed_headers = a->n_signed_headers;
    memcpy(out->signature, a->signature, sizeof a->signature);
}

int aw_sigv4_parse_authorization(const char *value, size_t len, aw_sigv4_auth *out)
{
    if (!value || !out)
        return -EINVAL;
    if (len > AW_SIGV4_AUTH_MAX)
        return -EMSGSIZE;
    if (memchr(value, '\0', len))
        return -EINVAL;
    const size_t alen = sizeof AW_SIGV4_ALGORITHM - 1;
    const char *p = value, *end = value + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *alg = p;
    while (p < end && *p != ' ')
        p++;
    if ((size_t)(p - alg) != alen || memcmp(alg, AW_SIGV4_ALGORITHM, alen) != 0)
        return p == alg ? -EINVAL : -EPROTONOSUPPORT;

    /* Parsed on the stack and copied field by field: the struct is 2.4 KB
     * (SignedHeaders' bound), and zeroing, copying and wiping it whole was
     * a tenth of a verification, twice per request (the head's check and
     * the verification). Every field is set before it is copied: the three
     * components are all required. Only the signature is wiped after. */
    aw_sigv4_auth st, *a = &st;
    a->n_signed_headers = 0;
    a->signature[0] = '\0';
    int rc = 0;
    bool seen[3] = {false, false, false};
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            break;
        const char *comp = p;
        const char *comma = find_char(p, end, ',');
        const char *cend = comma ? comma : end;
        /* trim trailing blanks of the component */
        const char *ce = cend;
        while (ce > comp && (ce[-1] == ' ' || ce[-1] == '\t'))
            ce--;
        const char *eq = find_char(comp, ce, '=');
        if (!eq) {
            rc = -EINVAL;
            goto out;
        }
        size_t klen = (size_t)(eq - comp);
        const char *v = eq + 1;
        size_t vlen = (size_t)(ce - v);
        int which;
        if (klen == 10 && memcmp(comp, "Credential", 10) == 0)
            which = 0;
        else if (klen == 13 && memcmp(comp, "SignedHeaders", 13) == 0)
            which = 1;
        else if (klen == 9 && memcmp(comp, "Signature", 9) == 0)
            which = 2;
        else {
            rc = -EINVAL;
            goto out;
        }
        if (seen[which]) {
            rc = -EINVAL;
            goto out;
        }
        seen[which] = true;
        if (which == 0)
            rc = parse_credential(v, vlen, a);
        else if (which == 1)
            rc = parse_signed_headers(v, vlen, a);
        else
            rc = parse_signature(v, vlen, a);
        if (rc < 0)
            goto out;
        if (!comma)
            break;
        p = comma + 1;
        /* a trailing comma with nothing after it is malformed */
        const char *t = p;
        while (t < end && (*t == ' ' || *t == '\t'))
            t++;
        if (t == end) {
            rc = -EINVAL;
            goto out;
        }
    }
    if (!seen[0] || !seen[1] || !seen[2]) {
        rc = -EINVAL;
        goto out;
    }
    aw_sigv4_auth_copy(out, a);
    rc = 0;
out:
    es_wipe(a->signature, sizeof a->signature);
    return rc;
}

/* ---- a kept signing key's HMAC states ----
 *
 * HMAC-SHA256 hashes the key's ipad block before the message and its opad
 * block before the inner digest (RFC 2104). A server keeps a signing key
 * for a day of requests (aws/local/auth.c): the two blocks are hashed once
 * here, and each MAC starts from copies of those states - two SHA-256
 * blocks and two digest inits fewer per verified request (9.4 K instead of
 * 14.3 K instructions a MAC under callgrind, about half the time on this
 * machine's CPU). The states are as good as the key: EVP_MD_CTX_free and
 * EVP_MD_CTX_reset free them cleansed (the SHA-256 provider's freectx), and
 * the working copy is reset after every MAC, so no state of a message's
 * MAC outlives the call. */
struct aw_sigv4_mac {
    EVP_MD_CTX *inner; /* after (K ^ ipad) */
    EVP_MD_CTX *outer; /* after (K ^ opad) */
    EVP_MD_CTX *work;  /* a copy of one of them while a MAC is made */
};

static int pad_state(EVP_MD_CTX *x, const uint8_t key[32], uint8_t byte)
{
    uint8_t pad[64];
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ byte);
    int ok = EVP_DigestInit_ex(x, sha256(), NULL) == 1 && EVP_DigestUpdate(x, pad, sizeof pad) == 1;
    es_wipe(pad, sizeof pad);
    return ok ? 0 : -EIO;
}

aw_sigv4_mac *aw_sigv4_mac_new(const uint8_t key[32])
{
    aw_sigv4_mac *m = es_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (!(m->inner = EVP_MD_CTX_new()) || !(m->outer = EVP_MD_CTX_new()) ||
        !(m->work = EVP_MD_CTX_new()) || pad_state(m->inner, key, 0x36) < 0 ||
        pad_state(m->outer, key, 0x5c) < 0) {
        aw_sigv4_mac_free(m);
        return NULL;
    }
    return m;
}

void aw_sigv4_mac_free(aw_sigv4_mac *m)
{
    if (!m)
        return;
    EVP_MD_CTX_free(m->inner); /* cleansed by the provider's freectx */
    EVP_MD_CTX_free(m->outer);
    EVP_MD_CTX_free(m->work);
    es_free(m);
}

/* out = HMAC(key of m, msg); 0 or -EIO. */
static int mac_of(aw_sigv4_mac *m, const void *msg, size_t len, uint8_t out[32])
{
    uint8_t inner[32];
    unsigned int olen = 0;
    int rc = -EIO;
    if (EVP_MD_CTX_copy_ex(m->work, m->inner) != 1 || EVP_DigestUpdate(m->work, msg, len) != 1 ||
        EVP_DigestFinal_ex(m->work, inner, &olen) != 1 || olen != 32)
        goto out;
    if (EVP_MD_CTX_copy_ex(m->work, m->outer) != 1 ||
        EVP_DigestUpdate(m->work, inner, sizeof inner) != 1 ||
        EVP_DigestFinal_ex(m->work, out, &olen) != 1 || olen != 32)
        goto out;
    rc = 0;
out:
    (void)EVP_MD_CTX_reset(m->work); /* its state ends as the MAC: freed cleansed */
    es_wipe(inner, sizeof inner);
    return rc;
}

int aw_sigv4_mac_sha256_hex(aw_sigv4_mac *m, const void *data, size_t len, char hex[65])
{
    if (!m)
        return -EINVAL;
    return sha256_hex_on(m->work, data, len, hex);
}

int aw_sigv4_mac_hex(aw_sigv4_mac *m, const char *sts, size_t sts_len, char hex[65])
{
    uint8_t mac[32];
    int rc = mac_of(m, sts, sts_len, mac);
    if (rc == 0)
        to_hex(mac, 32, hex);
    es_wipe(mac, sizeof mac);
    return rc;
}

/* n bytes of s at p; the bytes written. */
static size_t put_n(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return n;
}

/* The string to sign of a verification, written into sts (at least
 * AW_SIGV4_STS_MAX bytes) in one pass: the parsed header's fields are
 * bounded (8 + 2 * AW_SIGV4_SCOPE_PART_MAX scope bytes), so the 248 bytes at
 * most need no buffer growing, and the scope is not built apart (two
 * es_bufs and twelve appends a request before). Its length. */
static size_t verify_sts(const aw_sigv4_auth *auth, const char *amz_date, const char h[65],
                         char *sts)
{
    static const char algo[] = AW_SIGV4_ALGORITHM "\n", term[] = "/aws4_request\n";
    size_t n = put_n(sts, algo, sizeof algo - 1);
    n += put_n(sts + n, amz_date, 16);
    sts[n++] = '\n';
    n += put_n(sts + n, auth->date, strnlen(auth->date, sizeof auth->date - 1));
    sts[n++] = '/';
    n += put_n(sts + n, auth->region, strnlen(auth->region, sizeof auth->region - 1));
    sts[n++] = '/';
    n += put_n(sts + n, auth->service, strnlen(auth->service, sizeof auth->service - 1));
    n += put_n(sts + n, term, sizeof term - 1);
    n += put_n(sts + n, h, 64);
    return n;
}

_Static_assert(sizeof AW_SIGV4_ALGORITHM "\n" - 1 + 16 + 1 + 8 + 1 + 2 * AW_SIGV4_SCOPE_PART_MAX +
                       1 + sizeof "/aws4_request\n" - 1 + 64 <=
                   AW_SIGV4_STS_MAX,
               "a verification's string to sign fits AW_SIGV4_STS_MAX");

/* The verification with either the key or its kept HMAC states. */
static int verify_signed(const aw_sigv4_input *in, const aw_sigv4_auth *auth, const char *amz_date,
                         const uint8_t *key, aw_sigv4_mac *mac)
{
    if (!in || !auth || !amz_date || (!key && !mac))
        return -EINVAL;
    if (strlen(amz_date) != 16 || memcmp(amz_date, auth->date, 8) != 0)
        return -EACCES;
    es_buf creq;
    es_buf_init(&creq, AW_SIGV4_CANONICAL_MAX);
    char sig[65], creq_hash[65], sts[AW_SIGV4_STS_MAX];
    int rc;
    if ((rc = aw_sigv4_canonical_request(in, auth->signed_headers, &creq, NULL)) < 0)
        goto out;
    /* with kept states, the canonical request is hashed on their working
     * context (a digest context made and freed fewer) */
    if (mac)
        rc = sha256_hex_on(mac->work, es_buf_cstr(&creq), creq.len, creq_hash);
    else
        aw_sigv4_sha256_hex(es_buf_cstr(&creq), creq.len, creq_hash);
    if (rc < 0)
        goto out;
    size_t sts_len = verify_sts(auth, amz_date, creq_hash, sts);
    rc = mac ? aw_sigv4_mac_hex(mac, sts, sts_len, sig)
             : aw_sigv4_signature_hex(key, sts, sts_len, sig);
    if (rc < 0)
        goto out;
    rc = es_ct_equal(sig, auth->signature, 64) ? 0 : -EACCES;
out:
    es_wipe(sig, sizeof sig);
    es_buf_free_secret(&creq);
    return rc;
}

int aw_sigv4_verify_with_key(const aw_sigv4_input *in, const aw_sigv4_auth *auth,
                             const char *amz_date, const uint8_t key[32])
{
    return key ? verify_signed(in, auth, amz_date, key, NULL) : -EINVAL;
}

int aw_sigv4_verify_with_mac(const aw_sigv4_input *in, const aw_sigv4_auth *auth,
                             const char *amz_date, aw_sigv4_mac *mac)
{
    return mac ? verify_signed(in, auth, amz_date, NULL, mac) : -EINVAL;
}

int aw_sigv4_verify(const aw_sigv4_input *in, const aw_sigv4_auth *auth, const char *amz_date,
                    const char *secret)
{
    if (!in || !auth || !amz_date || !secret)
        return -EINVAL;
    uint8_t key[32];
    int rc = aw_sigv4_signing_key(secret, auth->date, auth->region, auth->service, key);
    if (rc == 0)
        rc = aw_sigv4_verify_with_key(in, auth, amz_date, key);
    es_wipe(key, sizeof key);
    return rc;
}

/* ---- client signer ---------------------------------------------------- */

#define SIGNER_CACHE 8

typedef struct key_entry {
    bool used;
    char akid[AW_SIGV4_AKID_MAX + 1];
    uint8_t secret_fp[32]; /* SHA-256 of the secret: tells rotated keys apart */
    char date[9];
    char region[AW_SIGV4_SCOPE_PART_MAX + 1];
    char service[AW_SIGV4_SCOPE_PART_MAX + 1];
    uint8_t key[32];
} key_entry;

struct aw_signer {
    key_entry cache[SIGNER_CACHE];
    unsigned next; /* round-robin victim */
    unsigned long derivations;
};

aw_signer *aw_signer_create(void)
{
    return es_calloc(1, sizeof(aw_signer));
}

void aw_signer_free(aw_signer *s)
{
    if (!s)
        return;
    es_wipe(s, sizeof *s);
    es_free(s);
}

unsigned long aw_signer_derivations(const aw_signer *s)
{
    return s ? s->derivations : 0;
}

static int signer_key(aw_signer *s, const aw_sigv4_creds *c, const char *date8, const char *region,
                      const char *service, uint8_t key[32])
{
    uint8_t fp[32];
    SHA256((const unsigned char *)c->secret_access_key, strlen(c->secret_access_key), fp);
    int rc = 0;
    for (unsigned i = 0; i < SIGNER_CACHE; i++) {
        key_entry *e = &s->cache[i];
        if (e->used && strcmp(e->akid, c->access_key_id) == 0 &&
            es_ct_equal(e->secret_fp, fp, 32) && strcmp(e->date, date8) == 0 &&
            strcmp(e->region, region) == 0 && strcmp(e->service, service) == 0) {
            memcpy(key, e->key, 32);
            goto out;
        }
    }
    if ((rc = aw_sigv4_signing_key(c->secret_access_key, date8, region, service, key)) < 0)
        goto out;
    s->derivations++;
    key_entry *e = &s->cache[s->next];
    s->next = (s->next + 1) % SIGNER_CACHE;
    es_wipe(e, sizeof *e);
    e->used = true;
    memcpy(e->akid, c->access_key_id, strlen(c->access_key_id) + 1);
    memcpy(e->secret_fp, fp, 32);
    memcpy(e->date, date8, 9);
    memcpy(e->region, region, strlen(region) + 1);
    memcpy(e->service, service, strlen(service) + 1);
    memcpy(e->key, key, 32);
out:
    es_wipe(fp, sizeof fp);
    return rc;
}

static bool is_name(const char *a, const char *lname)
{
    return strcasecmp(a, lname) == 0;
}

int aw_signer_sign(aw_signer *s, const aw_sigv4_creds *creds, const char *region,
                   const char *service, time_t now, const aw_sigv4_input *in, aw_sigv4_result *res)
{
    if (!s || !creds || !creds->access_key_id || !creds->secret_access_key || !region || !service ||
        !in || !res)
        return -EINVAL;
    if (!*creds->access_key_id || strlen(creds->access_key_id) > AW_SIGV4_AKID_MAX ||
        !valid_scope_part(region, strlen(region)) || !valid_scope_part(service, strlen(service)))
        return -EINVAL;
    if (in->n_headers + 2 > AW_SIGV4_HEADERS_MAX)
        return -E2BIG;
    bool token = creds->session_token && *creds->session_token;
    char amz_date[17], date8[9], sig[65];
    uint8_t key[32];
    es_buf creq, names, scope, sts, auth;
    es_buf_init(&creq, AW_SIGV4_CANONICAL_MAX);
    es_buf_init(&names, AW_SIGV4_SIGNED_LIST_MAX);
    es_buf_init(&scope, AW_SIGV4_SCOPE_MAX);
    es_buf_init(&sts, AW_SIGV4_STS_MAX);
    es_buf_init(&auth, AW_SIGV4_AUTH_MAX);
    int rc;
    aw_header *h = es_calloc(in->n_headers + 2, sizeof *h);
    if (!h)
        return -ENOMEM;
    if ((rc = aw_sigv4_amz_date(now, amz_date)) < 0)
        goto out;
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    size_t n = 0;
    for (size_t i = 0; i < in->n_headers; i++) {
        const char *nm = in->headers[i].name;
        if (!nm) {
            rc = -EINVAL;
            goto out;
        }
        if (is_name(nm, "x-amz-date") || is_name(nm, "x-amz-security-token") ||
            is_name(nm, "authorization"))
            continue;
        h[n++] = in->headers[i];
    }
    h[n++] = (aw_header){"x-amz-date", amz_date};
    if (token)
        h[n++] = (aw_header){"x-amz-security-token", creds->session_token};
    aw_sigv4_input in2 = *in;
    in2.headers = h;
    in2.n_headers = n;
    if ((rc = aw_sigv4_canonical_request(&in2, NULL, &creq, &names)) < 0)
        goto out;
    if ((rc = aw_sigv4_scope(date8, region, service, &scope)) < 0)
        goto out;
    if ((rc = aw_sigv4_string_to_sign(amz_date, es_buf_cstr(&scope), es_buf_cstr(&creq), creq.len,
                                      &sts)) < 0)
        goto out;
    if ((rc = signer_key(s, creds, date8, region, service, key)) < 0)
        goto out;
    if ((rc = aw_sigv4_signature_hex(key, es_buf_cstr(&sts), sts.len, sig)) < 0)
        goto out;
    if ((rc = es_buf_printf(
             &auth, AW_SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
             creds->access_key_id, es_buf_cstr(&scope), es_buf_cstr(&names), sig)) < 0)
        goto out;
    memcpy(res->amz_date, amz_date, sizeof amz_date);
    res->authorization = auth;
    es_buf_init(&auth, AW_SIGV4_AUTH_MAX);
    rc = 0;
out:
    es_wipe(key, sizeof key);
    es_wipe(sig, sizeof sig);
    es_free(h);
    es_buf_free_secret(&creq);
    es_buf_free(&names);
    es_buf_free(&scope);
    es_buf_free(&sts);
    es_buf_free_secret(&auth);
    return rc;
}
