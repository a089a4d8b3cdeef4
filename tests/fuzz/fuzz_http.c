/* libFuzzer driver for common/http.
 *
 * The first byte picks the mode, HEAD-response flag, small or default limits
 * and a split step; the rest is the stream. The stream is parsed (pipelined
 * messages included) once whole and once cut into pieces; both runs must end
 * with the same result, the same body bytes and the same heads, and every
 * accessor must be callable after HEADERS. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http.h"

typedef struct run {
    int rc;
    size_t msgs;
    uint64_t body_sum; /* order-sensitive checksum of the body bytes */
    uint64_t body_len;
    uint64_t head_sum;
} run;

static int on_body(void *ud, const char *d, size_t n)
{
    run *r = ud;
    if (n == 0)
        abort();
    for (size_t i = 0; i < n; i++)
        r->body_sum = r->body_sum * 31 + (unsigned char)d[i];
    r->body_len += n;
    return 0;
}

static uint64_t mix(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = h * 131 + (unsigned char)*s;
    return h * 7 + 1;
}

/* The field rules checked byte by byte here, whatever word or vector steps
 * the parser takes (http.c: plain_name_colon, value_ok): a name is 1*tchar,
 * a value field bytes (HTAB, SP and up but DEL) without OWS at its ends. */
static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_field(const char *n, const char *v)
{
    for (const unsigned char *c = (const unsigned char *)n; *c; c++)
        if (!tchar(*c))
            abort();
    size_t vl = strlen(v);
    if (vl && (v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        abort();
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c != '\t' && (c < 0x20 || c == 0x7f))
            abort();
    }
}

static void heads(const es_http_parser *p, run *r)
{
    uint64_t h = r->head_sum;
    h = mix(h, es_http_parser_method(p));
    h = mix(h, es_http_parser_target(p));
    h = mix(h, es_http_parser_reason(p));
    h = h * 3 + (uint64_t)es_http_parser_status(p);
    h = h * 3 + (uint64_t)es_http_parser_keep_alive(p);
    h = h * 3 + (uint64_t)es_http_parser_expect_continue(p);
    h = h * 3 + (uint64_t)es_http_parser_chunked(p);
    h = h * 3 + (uint64_t)es_http_parser_content_length(p);
    const char *n, *v;
    for (size_t i = 0; es_http_parser_header_at(p, i, &n, &v); i++) {
        if (strlen(n) == 0)
            abort();
        check_field(n, v);
        h = mix(mix(h, n), v);
        /* the look-up (an index for the known names, a scan for the
         * others) gives the first field of that name in any case */
        const char *first = NULL, *fn, *fv;
        for (size_t k = 0; !first && es_http_parser_header_at(p, k, &fn, &fv); k++)
            if (strcasecmp(fn, n) == 0)
                first = fv;
        if (es_http_parser_header(p, n) != first)
            abort();
    }
    r->head_sum = h;
}

static void parse(const uint8_t *data, size_t len, es_http_mode mode, bool head,
                  const es_http_limits *lim, size_t step, run *r)
{
    memset(r, 0, sizeof(*r));
    es_http_parser *p;
    if (es_http_parser_create(mode, lim, &p) < 0)
        abort();
    es_http_parser_set_body_cb(p, on_body, r);
    es_http_parser_set_head_response(p, head);
    size_t off = 0;
    int rc = 0;
    while (off <= len) {
        size_t piece = step ? step : len - off;
        if (piece > len - off)
            piece = len - off;
        size_t c = 0;
        rc = es_http_parser_feed(p, (const char *)data + off, piece, &c);
        if (c > piece)
            abort();
        off += c;
        if (rc < 0)
            break;
        if (rc == ES_HTTP_HEADERS) {
            heads(p, r);
            continue;
        }
        if (rc == ES_HTTP_DONE) {
            r->msgs++;
            es_http_parser_reset(p);
            es_http_parser_set_head_response(p, head);
            if (off == len)
                break;
            continue;
        }
        if (c != piece)
            abort(); /* NEED_MORE consumes everything */
        if (off == len) {
            rc = es_http_parser_eof(p);
            if (rc == ES_HTTP_DONE)
                r->msgs++;
            break;
        }
    }
    r->rc = rc;
    es_http_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    es_http_mode mode = (ctl & 1) ? ES_HTTP_RESPONSE : ES_HTTP_REQUEST;
    bool head = (ctl & 2) != 0;
    es_http_limits small = {
        .max_header_bytes = 96, .max_headers = 4, .max_body = 64, .max_chunk_line = 12};
    const es_http_limits *lim = (ctl & 4) ? &small : NULL;
    size_t step = (size_t)(ctl >> 3) + 1;
    data++;
    size--;
    run whole, split;
    parse(data, size, mode, head, lim, 0, &whole);
    parse(data, size, mode, head, lim, step, &split);
    if (whole.rc != split.rc || whole.msgs != split.msgs || whole.body_sum != split.body_sum ||
        whole.body_len != split.body_len || whole.head_sum != split.head_sum)
        abort();
    const char *e = es_http_strerror(whole.rc);
    if (!e || !*e)
        abort();
    return 0;
}
