/* Unit tests for common/http: the incremental HTTP/1.1 parser and the
 * serializer. Every message is also fed split at every byte boundary and one
 * byte at a time, and must give the same result as when fed whole. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http.h"

typedef struct result {
    int rc;       /* last answer: DONE, NEED_MORE or an error */
    int nheaders; /* ES_HTTP_HEADERS events */
    char summary[4096];
    char body[65536];
    size_t body_len;
    size_t pieces; /* callback calls */
    size_t pos;    /* bytes consumed in total */
} result;

static int collect(void *ud, const char *d, size_t n)
{
    result *r = ud;
    cr_assert(n > 0, "empty body piece");
    cr_assert(r->body_len + n < sizeof(r->body));
    memcpy(r->body + r->body_len, d, n);
    r->body_len += n;
    r->pieces++;
    return 0;
}

static void summarize(const es_http_parser *p, result *r)
{
    int o = 0;
    size_t cap = sizeof(r->summary);
    if (es_http_parser_method(p))
        o += snprintf(r->summary + o, cap - (size_t)o, "%s %s ", es_http_parser_method(p),
                      es_http_parser_target(p));
    o += snprintf(r->summary + o, cap - (size_t)o, "%d [%s] 1.%d ka=%d ec=%d ch=%d cl=%lld\n",
                  es_http_parser_status(p), es_http_parser_reason(p),
                  es_http_parser_version_minor(p), es_http_parser_keep_alive(p),
                  es_http_parser_expect_continue(p), es_http_parser_chunked(p),
                  (long long)es_http_parser_content_length(p));
    const char *n, *v;
    for (size_t i = 0; es_http_parser_header_at(p, i, &n, &v); i++)
        o += snprintf(r->summary + o, cap - (size_t)o, "%s=%s\n", n, v);
    cr_assert(o < (int)cap);
}

typedef struct opts {
    es_http_mode mode;
    const es_http_limits *lim;
    bool head;    /* response to HEAD */
    bool eof;     /* call eof after the input */
    bool use_buf; /* no callback: collect into the parser's buffer */
} opts;

/* Feeds msg cut at the given offsets (ascending, inside (0, len)). */
static void run_cuts(const opts *o, const char *msg, size_t len, const size_t *cuts, size_t ncuts,
                     result *res)
{
    memset(res, 0, sizeof(*res));
    es_http_parser *p = NULL;
    cr_assert_eq(es_http_parser_create(o->mode, o->lim, &p), 0);
    if (!o->use_buf)
        es_http_parser_set_body_cb(p, collect, res);
    es_http_parser_set_head_response(p, o->head);
    size_t a = 0;
    int rc = 0;
    bool stop = false;
    for (size_t k = 0; k <= ncuts && !stop; k++) {
        size_t b = k < ncuts ? cuts[k] : len;
        for (;;) {
            size_t c = 12345;
            rc = es_http_parser_feed(p, msg + a, b - a, &c);
            cr_assert(c <= b - a);
            a += c;
            if (rc == ES_HTTP_HEADERS) {
                res->nheaders++;
                summarize(p, res);
                continue;
            }
            if (rc == ES_HTTP_NEED_MORE)
                cr_assert_eq(a, b, "NEED_MORE but not all consumed");
            else
                stop = true;
            break;
        }
    }
    if (!stop && o->eof)
        rc = es_http_parser_eof(p);
    if (o->use_buf) {
        size_t bl = 0;
        const char *bd = es_http_parser_body(p, &bl);
        cr_assert(bl < sizeof(res->body));
        memcpy(res->body, bd, bl);
        res->body_len = bl;
        cr_assert_eq(bl, es_http_parser_body_bytes(p));
    }
    res->rc = rc;
    res->pos = a;
    es_http_parser_free(p);
}

static void run_whole(const opts *o, const char *msg, size_t len, result *res)
{
    run_cuts(o, msg, len, NULL, 0, res);
}

static void same(const result *a, const result *b, const char *what, size_t at)
{
    cr_assert_eq(a->rc, b->rc, "%s at %zu: rc %d vs %d", what, at, a->rc, b->rc);
    cr_assert_eq(a->nheaders, b->nheaders, "%s at %zu", what, at);
    cr_assert_str_eq(a->summary, b->summary, "%s at %zu", what, at);
    cr_assert_eq(a->body_len, b->body_len, "%s at %zu", what, at);
    cr_assert(memcmp(a->body, b->body, a->body_len) == 0, "%s at %zu", what, at);
    if (a->rc >= 0)
        cr_assert_eq(a->pos, b->pos, "%s at %zu", what, at);
}

/* Whole vs every two-piece split vs one byte at a time vs parser buffer. */
static void check_splits(const opts *o, const char *msg, size_t len, result *whole)
{
    static result r; /* large: keep off the stack */
    run_whole(o, msg, len, whole);
    for (size_t i = 1; i < len; i++) {
        run_cuts(o, msg, len, &i, 1, &r);
        same(whole, &r, "split", i);
    }
    if (len > 1) {
        size_t *cuts = calloc(len - 1, sizeof(size_t));
        for (size_t i = 0; i + 1 < len; i++)
            cuts[i] = i + 1;
        run_cuts(o, msg, len, cuts, len - 1, &r);
        same(whole, &r, "bytewise", 0);
        free(cuts);
    }
    opts ob = *o;
    ob.use_buf = true;
    run_whole(&ob, msg, len, &r);
    if (whole->rc != ES_HTTP_E_BODY_TOO_LARGE)
        same(whole, &r, "buffered", 0);
}

#define S(x) x, sizeof(x) - 1

static const opts REQ = {ES_HTTP_REQUEST, NULL, false, false, false};
static const opts RESP = {ES_HTTP_RESPONSE, NULL, false, false, false};
static const opts RESP_EOF = {ES_HTTP_RESPONSE, NULL, false, true, false};

static result res;

/* ---- requests ---- */

Test(http_request, get_keep_alive_and_header_lookup)
{
    const char m[] = "GET /v1/tasks?x=1 HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: "
                     "AmazonEC2ContainerServiceV20141113.RunTask\r\nAccept:   */*  \r\n\r\n";
    check_splits(&REQ, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.pos, sizeof(m) - 1);
    cr_assert_str_eq(res.summary, "GET /v1/tasks?x=1 0 [] 1.1 ka=1 ec=0 ch=0 cl=-1\n"
                                  "Host=localhost\n"
                                  "X-Amz-Target=AmazonEC2ContainerServiceV20141113.RunTask\n"
                                  "Accept=*/*\n");
    es_http_parser *p;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    size_t c;
    cr_assert_eq(es_http_parser_feed(p, S(m), &c), ES_HTTP_HEADERS);
    cr_assert_str_eq(es_http_parser_header(p, "x-amz-TARGET"),
                     "AmazonEC2ContainerServiceV20141113.RunTask");
    cr_assert_null(es_http_parser_header(p, "Content-Type"));
    cr_assert_eq(es_http_parser_feed(p, m + c, 0, &c), ES_HTTP_DONE);
    cr_assert_eq(c, 0);
    es_http_parser_free(p);
}

Test(http_request, post_content_length_body)
{
    const char m[] = "POST /x HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: "
                     "application/json\r\n\r\n{\"a\":\"bcd\"}";
    check_splits(&REQ, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.body_len, 11);
    cr_assert(memcmp(res.body, "{\"a\":\"bcd\"}", 11) == 0);
}

Test(http_request, chunked_request_body)
{
    const char m[] = "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n1;name=val\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
    check_splits(&REQ, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.body_len, 11);
    cr_assert(memcmp(res.body, "hello world", 11) == 0);
    cr_assert(strstr(res.summary, "ch=1"));
}

Test(http_request, keep_alive_rules)
{
    struct {
        const char *m;
        int ka;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
        {"GET / HTTP/1.0\r\nconnection: keep-alive, close\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        es_http_parser *p;
        cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
        size_t c;
        cr_assert_eq(es_http_parser_feed(p, cases[i].m, strlen(cases[i].m), &c), ES_HTTP_HEADERS);
        cr_assert_eq(es_http_parser_keep_alive(p), cases[i].ka, "case %zu", i);
        es_http_parser_free(p);
    }
}

Test(http_request, expect_continue_visible_before_body)
{
    const char m[] = "POST /big HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc";
    es_http_parser *p;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    size_t c;
    /* only the head has arrived: the server must be able to answer 100 */
    size_t headlen = sizeof(m) - 1 - 3;
    cr_assert_eq(es_http_parser_feed(p, m, headlen, &c), ES_HTTP_HEADERS);
    cr_assert_eq(c, headlen);
    cr_assert(es_http_parser_expect_continue(p));
    cr_assert_eq(es_http_parser_feed(p, m + headlen, 0, &c), ES_HTTP_NEED_MORE);
    cr_assert_eq(es_http_parser_feed(p, m + headlen, 3, &c), ES_HTTP_DONE);
    size_t bl;
    cr_assert_str_eq(es_http_parser_body(p, &bl), "abc");
    es_http_parser_free(p);
}

Test(http_request, pipelined_with_reset_and_leading_crlf)
{
    const char m[] = "POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\r\nGET /b HTTP/1.1\r\n\r\n";
    es_http_parser *p;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    size_t c, off = 0;
    cr_assert_eq(es_http_parser_feed(p, m, sizeof(m) - 1, &c), ES_HTTP_HEADERS);
    off += c;
    cr_assert_eq(es_http_parser_feed(p, m + off, sizeof(m) - 1 - off, &c), ES_HTTP_DONE);
    off += c;
    cr_assert_str_eq(m + off, "\r\nGET /b HTTP/1.1\r\n\r\n");
    es_http_parser_reset(p);
    cr_assert_eq(es_http_parser_eof(p), 0, "clean close between messages");
    cr_assert_eq(es_http_parser_feed(p, m + off, sizeof(m) - 1 - off, &c), ES_HTTP_HEADERS);
    cr_assert_str_eq(es_http_parser_target(p), "/b");
    off += c;
    cr_assert_eq(off, sizeof(m) - 1);
    es_http_parser_free(p);
}

/* The header array is kept from one message to the next: a message with
 * more fields grows it, one with fewer must not show the old ones, and
 * look-ups match names of the same length only, in any case. */
Test(http_request, header_array_reused_across_messages)
{
    es_http_parser *p;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    const char *msgs[] = {
        "GET /1 HTTP/1.1\r\nA: 1\r\n\r\n",
        "GET /2 HTTP/1.1\r\nA: 2\r\nBb: 2\r\nCcc: 2\r\nDddd: 2\r\nContent-Length: 0\r\n\r\n",
        "GET /3 HTTP/1.1\r\nbB: 3\r\n\r\n",
    };
    for (int i = 0; i < 3; i++) {
        es_http_parser_reset(p);
        size_t used = 0, n = strlen(msgs[i]);
        cr_assert_eq(es_http_parser_feed(p, msgs[i], n, &used), ES_HTTP_HEADERS);
        cr_assert_eq(es_http_parser_feed(p, msgs[i] + used, n - used, &used), ES_HTTP_DONE);
    }
    cr_assert_str_eq(es_http_parser_target(p), "/3");
    cr_assert_eq(es_http_parser_header_count(p), 1);
    cr_assert_str_eq(es_http_parser_header(p, "BB"), "3");
    cr_assert_null(es_http_parser_header(p, "A"), "a field of an earlier message");
    cr_assert_null(es_http_parser_header(p, "Ccc"));
    cr_assert_null(es_http_parser_header(p, "B"), "a prefix of a name is not the name");
    cr_assert_null(es_http_parser_header(p, "Bbb"));
    es_http_parser_free(p);
}

Test(http_request, content_length_duplicates)
{
    check_splits(&REQ, S("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
                 &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    check_splits(&REQ, S("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc"), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    check_splits(&REQ, S("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
                 &res);
    cr_assert_eq(res.rc, ES_HTTP_E_BAD_CONTENT_LENGTH);
    check_splits(&REQ, S("POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd"), &res);
    cr_assert_eq(res.rc, ES_HTTP_E_BAD_CONTENT_LENGTH);
}

/* ---- request errors ---- */

typedef struct bad {
    const char *m;
    int err;
} bad;

static void check_bad(const opts *o, const bad *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        check_splits(o, cases[i].m, strlen(cases[i].m), &res);
        cr_assert_eq(res.rc, cases[i].err, "case %zu (%s): got %d %s", i, cases[i].m, res.rc,
                     es_http_strerror(res.rc));
    }
}

Test(http_request, errors)
{
    static const bad cases[] = {
        {"GET /\r\n\r\n", ES_HTTP_E_BAD_REQUEST_LINE},
        {"GET  / HTTP/1.1\r\n\r\n", ES_HTTP_E_BAD_REQUEST_LINE},
        {" GET / HTTP/1.1\r\n\r\n", ES_HTTP_E_BAD_REQUEST_LINE},
        {"G(T / HTTP/1.1\r\n\r\n", ES_HTTP_E_BAD_REQUEST_LINE},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", ES_HTTP_E_BAD_REQUEST_LINE},
        {"GET / HTTP/1.1 \r\n\r\n", ES_HTTP_E_BAD_REQUEST_LINE},
        {"GET / HTTX/1.1\r\n\r\n", ES_HTTP_E_BAD_REQUEST_LINE},
        {"GET / HTTP/1.1\n\n", ES_HTTP_E_BAD_REQUEST_LINE},
        {"GET / HTTP/2.0\r\n\r\n", ES_HTTP_E_BAD_VERSION},
        {"GET / HTTP/1.2\r\n\r\n", ES_HTTP_E_BAD_VERSION},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {"GET / HTTP/1.1\r\n: empty-name\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", ES_HTTP_E_BAD_CONTENT_LENGTH},
        {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", ES_HTTP_E_BAD_CONTENT_LENGTH},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", ES_HTTP_E_BAD_CONTENT_LENGTH},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
         ES_HTTP_E_BAD_CONTENT_LENGTH},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         ES_HTTP_E_CL_AND_TE},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
         ES_HTTP_E_CL_AND_TE},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", ES_HTTP_E_UNSUPPORTED_TE},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ES_HTTP_E_UNSUPPORTED_TE},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", ES_HTTP_E_UNSUPPORTED_TE},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         ES_HTTP_E_UNSUPPORTED_TE},
        {"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", ES_HTTP_E_UNSUPPORTED_TE},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ES_HTTP_E_UNSUPPORTED_TE},
        {"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", ES_HTTP_E_BODY_TOO_LARGE},
    };
    check_bad(&REQ, cases, sizeof(cases) / sizeof(cases[0]));
}

Test(http_request, header_limits)
{
    es_http_limits lim = es_http_default_limits;
    lim.max_headers = 3;
    opts o = REQ;
    o.lim = &lim;
    /* exactly the limit is fine, one more byte is not */
    const char ok[] = "GET /0123456789012345678901234567890 HTTP/1.1\r\nA: 12345678\r\n\r\n";
    lim.max_header_bytes = sizeof(ok) - 1;
    check_splits(&o, S(ok), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    check_splits(&o, S("GET /0123456789012345678901234567890 HTTP/1.1\r\nA: 123456789\r\n\r\n"),
                 &res);
    cr_assert_eq(res.rc, ES_HTTP_E_HEADER_TOO_LARGE);
    /* a head that never ends is cut at the limit, not buffered */
    char big[200];
    memset(big, 'a', sizeof(big));
    check_splits(&o, big, sizeof(big), &res);
    cr_assert_eq(res.rc, ES_HTTP_E_HEADER_TOO_LARGE);
    check_splits(&o, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    check_splits(&o, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), &res);
    cr_assert_eq(res.rc, ES_HTTP_E_TOO_MANY_HEADERS);
}

Test(http_request, body_limit_and_errors_are_sticky)
{
    es_http_limits lim = es_http_default_limits;
    lim.max_body = 4;
    opts o = REQ;
    o.lim = &lim;
    check_splits(&o, S("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    check_splits(&o, S("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde"), &res);
    cr_assert_eq(res.rc, ES_HTTP_E_BODY_TOO_LARGE);
    check_splits(&o,
                 S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"
                   "2\r\ncd\r\n0\r\n\r\n"),
                 &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    check_splits(&o,
                 S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"
                   "3\r\ncde\r\n0\r\n\r\n"),
                 &res);
    cr_assert_eq(res.rc, ES_HTTP_E_BODY_TOO_LARGE);
    cr_assert_eq(res.body_len, 2, "the first chunk was delivered before the limit");
    opts oe = RESP_EOF;
    oe.lim = &lim;
    check_splits(&oe, S("HTTP/1.1 200 OK\r\n\r\nabcd"), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    check_splits(&oe, S("HTTP/1.1 200 OK\r\n\r\nabcdef"), &res);
    cr_assert_eq(res.rc, ES_HTTP_E_BODY_TOO_LARGE);
    cr_assert_eq(res.body_len, 4, "exactly the limit was delivered, however split");

    es_http_parser *p;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    size_t c;
    cr_assert_eq(es_http_parser_feed(p, S("BAD\r\n"), &c), ES_HTTP_E_BAD_REQUEST_LINE);
    cr_assert_eq(es_http_parser_feed(p, S("GET / HTTP/1.1\r\n\r\n"), &c),
                 ES_HTTP_E_BAD_REQUEST_LINE);
    cr_assert_eq(c, 0);
    cr_assert_eq(es_http_parser_eof(p), ES_HTTP_E_BAD_REQUEST_LINE);
    es_http_parser_reset(p);
    cr_assert_eq(es_http_parser_feed(p, S("GET / HTTP/1.1\r\n\r\n"), &c), ES_HTTP_HEADERS);
    es_http_parser_free(p);
}

static int abort_cb(void *ud, const char *d, size_t n)
{
    (void)d;
    (void)n;
    (*(int *)ud)++;
    return -ECANCELED;
}

Test(http_request, callback_error_stops_parser)
{
    es_http_parser *p;
    int calls = 0;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    es_http_parser_set_body_cb(p, abort_cb, &calls);
    const char m[] = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd";
    size_t c, off = 0;
    cr_assert_eq(es_http_parser_feed(p, S(m), &c), ES_HTTP_HEADERS);
    off += c;
    cr_assert_eq(es_http_parser_feed(p, m + off, sizeof(m) - 1 - off, &c), -ECANCELED);
    cr_assert_eq(es_http_parser_feed(p, m + off, sizeof(m) - 1 - off, &c), -ECANCELED);
    cr_assert_eq(calls, 1);
    cr_assert_str_eq(es_http_strerror(-ECANCELED), strerror(ECANCELED));
    es_http_parser_free(p);
}

/* ---- responses ---- */

Test(http_response, content_length)
{
    const char m[] = "HTTP/1.1 201 Created\r\nApi-Version: 1.41\r\nContent-Length: 12\r\n\r\n"
                     "{\"Id\":\"ab\"}\n";
    check_splits(&RESP, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_str_eq(res.summary, "201 [Created] 1.1 ka=1 ec=0 ch=0 cl=12\n"
                                  "Api-Version=1.41\nContent-Length=12\n");
    cr_assert_eq(res.body_len, 12);
}

Test(http_response, chunked_with_extensions_and_trailers)
{
    const char m[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1A;foo=bar;baz=\"q\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                     "0003 \t; ext\r\n123\r\n"
                     "0;last=1\r\nX-Trailer: yes\r\nOther: 2\r\n\r\n";
    check_splits(&RESP, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.pos, sizeof(m) - 1, "trailers consumed");
    cr_assert_eq(res.body_len, 29);
    cr_assert(memcmp(res.body, "abcdefghijklmnopqrstuvwxyz123", 29) == 0);
}

Test(http_response, chunked_zero_length_only)
{
    const char m[] = "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n";
    check_splits(&RESP, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.body_len, 0);
    cr_assert_eq(res.pieces, 0);
    cr_assert_eq(res.pos, sizeof(m) - 1);
}

Test(http_response, chunked_incomplete_needs_more_and_eof_truncates)
{
    check_splits(&RESP, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"), &res);
    cr_assert_eq(res.rc, ES_HTTP_NEED_MORE);
    cr_assert_eq(res.body_len, 3, "partial chunk data delivered as it arrives");
    check_splits(&RESP_EOF, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
                 &res);
    cr_assert_eq(res.rc, ES_HTTP_E_TRUNCATED);
    check_splits(&RESP_EOF, S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"), &res);
    cr_assert_eq(res.rc, ES_HTTP_E_TRUNCATED);
    check_splits(&RESP_EOF, S("HTTP/1.1 200 OK\r\nContent-"), &res);
    cr_assert_eq(res.rc, ES_HTTP_E_TRUNCATED);
}

Test(http_response, chunk_errors)
{
    es_http_limits lim = es_http_default_limits;
    lim.max_chunk_line = 16;
    lim.max_body = 100;
    opts o = RESP;
    o.lim = &lim;
#define CH "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    static const bad cases[] = {
        {CH "g\r\n", ES_HTTP_E_BAD_CHUNK},
        {CH "\r\n", ES_HTTP_E_BAD_CHUNK},
        {CH ";ext\r\n", ES_HTTP_E_BAD_CHUNK},
        {CH "-1\r\n", ES_HTTP_E_BAD_CHUNK},
        {CH "0x5\r\n", ES_HTTP_E_BAD_CHUNK},
        {CH "5 5\r\n", ES_HTTP_E_BAD_CHUNK},
        {CH "5\n", ES_HTTP_E_BAD_CHUNK},
        {CH "5\rX", ES_HTTP_E_BAD_CHUNK},
        {CH "2\r\nabc\r\n", ES_HTTP_E_BAD_CHUNK},
        {CH "2\r\nab\n", ES_HTTP_E_BAD_CHUNK},
        {CH "2;a\x01\r\n", ES_HTTP_E_BAD_CHUNK},
        {CH "11111111111111111\r\n", ES_HTTP_E_CHUNK_LINE_TOO_LONG},
        {CH "1;aaaaaaaaaaaaaaaaaaaaaa\r\n", ES_HTTP_E_CHUNK_LINE_TOO_LONG},
        {CH "65\r\n", ES_HTTP_E_BODY_TOO_LARGE}, /* 101 > 100: refused before any data */
        {CH "40\r\n"
            "0123456789012345678901234567890123456789012345678901234567890123\r\n"
            "40\r\n",
         ES_HTTP_E_BODY_TOO_LARGE},
        {CH "0\r\n: bad\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {CH "0\r\n folded\r\n\r\n", ES_HTTP_E_BAD_HEADER},
        {CH "0\r\nA: b\n", ES_HTTP_E_BAD_HEADER},
        {CH "0\r\n\rX", ES_HTTP_E_BAD_HEADER},
    };
    check_bad(&o, cases, sizeof(cases) / sizeof(cases[0]));
    /* a 64-bit overflowing size with a longer line limit */
    lim.max_chunk_line = 100;
    static const bad ovf[] = {{CH "10000000000000000\r\n", ES_HTTP_E_BAD_CHUNK},
                              {CH "ffffffffffffffff\r\n", ES_HTTP_E_BODY_TOO_LARGE}};
    check_bad(&o, ovf, 2);
    /* trailer count and size */
    lim.max_headers = 1;
    lim.max_header_bytes = 80;
    static const bad tr[] = {
        {CH "0\r\nA: 1\r\nB: 2\r\n\r\n", ES_HTTP_E_TOO_MANY_HEADERS},
        {CH "0\r\nA: 0123456789012345678901234567890123456789012345678901234567890123456789"
            "0123456789\r\n\r\n",
         ES_HTTP_E_HEADER_TOO_LARGE},
    };
    check_bad(&o, tr, 2);
#undef CH
}

Test(http_response, close_delimited)
{
    const char m[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body\r\nmore";
    check_splits(&RESP_EOF, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert(strstr(res.summary, "ka=0"), "close-delimited is never keep-alive");
    cr_assert_eq(res.body_len, 15);
    check_splits(&RESP, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_NEED_MORE, "without eof it is not finished");
    /* HTTP/1.0 with no length */
    check_splits(&RESP_EOF, S("HTTP/1.0 200 OK\r\n\r\nx"), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.body_len, 1);
}

Test(http_response, no_body_statuses_and_head)
{
    const char *ms[] = {
        "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        check_splits(&RESP, ms[i], strlen(ms[i]), &res);
        cr_assert_eq(res.rc, ES_HTTP_DONE, "%s", ms[i]);
        cr_assert_eq(res.pos, strlen(ms[i]));
        cr_assert_eq(res.body_len, 0);
    }
    opts o = RESP;
    o.head = true;
    const char m[] = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
    check_splits(&o, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.pos, sizeof(m) - 1);
    check_splits(&RESP, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_NEED_MORE, "not a HEAD answer: body expected");
}

Test(http_response, continue_then_final_on_one_stream)
{
    const char m[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    es_http_parser *p;
    cr_assert_eq(es_http_parser_create(ES_HTTP_RESPONSE, NULL, &p), 0);
    size_t c, off = 0;
    cr_assert_eq(es_http_parser_feed(p, S(m), &c), ES_HTTP_HEADERS);
    off += c;
    cr_assert_eq(es_http_parser_status(p), 100);
    cr_assert_eq(es_http_parser_feed(p, m + off, sizeof(m) - 1 - off, &c), ES_HTTP_DONE);
    es_http_parser_reset(p);
    cr_assert_eq(es_http_parser_feed(p, m + off, sizeof(m) - 1 - off, &c), ES_HTTP_HEADERS);
    off += c;
    cr_assert_eq(es_http_parser_status(p), 200);
    cr_assert_eq(es_http_parser_feed(p, m + off, sizeof(m) - 1 - off, &c), ES_HTTP_DONE);
    cr_assert_eq(off + c, sizeof(m) - 1);
    es_http_parser_free(p);
}

Test(http_response, te_and_cl_response_chunked_wins_and_closes)
{
    const char m[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "2\r\nok\r\n0\r\n\r\n";
    check_splits(&RESP, S(m), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert(strstr(res.summary, "ka=0 ec=0 ch=1 cl=-1"), "%s", res.summary);
    cr_assert_eq(res.body_len, 2);
}

Test(http_response, status_line_forms_and_errors)
{
    check_splits(&RESP, S("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert(strstr(res.summary, "200 [] "));
    check_splits(&RESP, S("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    static const bad cases[] = {
        {"HTTP/1.1 20 OK\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"HTTP/1.1 2000 OK\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"HTTP/1.1 099 OK\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"HTTP/1.1  200 OK\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"HTTP/1.1 2x0 OK\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"HTTP/1.1 200 O\x01K\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"http/1.1 200 OK\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"\r\nHTTP/1.1 200 OK\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"HTTP/1.1 200 OK\n\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"HTTP/2 200 OK\r\n\r\n", ES_HTTP_E_BAD_STATUS_LINE},
        {"HTTP/3.0 200 OK\r\n\r\n", ES_HTTP_E_BAD_VERSION},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         ES_HTTP_E_BAD_CONTENT_LENGTH},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", ES_HTTP_E_UNSUPPORTED_TE},
        {"HTTP/1.1 200 OK\r\nX: 1\r\n\tfold\r\n\r\n", ES_HTTP_E_BAD_HEADER},
    };
    check_bad(&RESP, cases, sizeof(cases) / sizeof(cases[0]));
}

Test(http_response, streaming_pieces_arrive_before_end)
{
    /* the /events use: body bytes come out as soon as they are fed */
    es_http_parser *p;
    result r = {0};
    cr_assert_eq(es_http_parser_create(ES_HTTP_RESPONSE, NULL, &p), 0);
    es_http_parser_set_body_cb(p, collect, &r);
    size_t c;
    const char h[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    cr_assert_eq(es_http_parser_feed(p, S(h), &c), ES_HTTP_HEADERS);
    cr_assert_eq(es_http_parser_feed(p, S("8\r\n{\"x\":1}\n\r\n"), &c), ES_HTTP_NEED_MORE);
    cr_assert_eq(r.body_len, 8);
    cr_assert_eq(es_http_parser_feed(p, S("9\r\n{\"x\":2"), &c), ES_HTTP_NEED_MORE);
    cr_assert_eq(r.body_len, 14);
    cr_assert_eq(es_http_parser_feed(p, S("2}\n\r\n"), &c), ES_HTTP_NEED_MORE);
    cr_assert_eq(r.body_len, 17);
    cr_assert(memcmp(r.body, "{\"x\":1}\n{\"x\":22}\n", 17) == 0);
    es_http_parser_free(p);
}

/* ---- serializer ---- */

Test(http_write, request_round_trip)
{
    es_buf b;
    es_buf_init(&b, 4096);
    cr_assert_eq(es_http_write_request_line(&b, "POST", "/v1.41/containers/create?name=x"), 0);
    cr_assert_eq(es_http_write_header(&b, "Host", "docker"), 0);
    cr_assert_eq(es_http_write_body(&b, "application/json", "{}", 2), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "POST /v1.41/containers/create?name=x HTTP/1.1\r\n"
                                      "Host: docker\r\nContent-Type: application/json\r\n"
                                      "Content-Length: 2\r\n\r\n{}");
    check_splits(&REQ, b.data, b.len, &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.body_len, 2);
    cr_assert_eq(es_http_write_header(&b, "X", "a\r\nInjected: 1"), -EINVAL);
    cr_assert_eq(es_http_write_header(&b, "X Y", "a"), -EINVAL);
    cr_assert_eq(es_http_write_header(&b, "", "a"), -EINVAL);
    cr_assert_eq(es_http_write_request_line(&b, "GET", "/a b"), -EINVAL);
    cr_assert_eq(es_http_write_request_line(&b, "G ET", "/"), -EINVAL);
    es_buf_free(&b);
}

Test(http_write, response_chunked_round_trip)
{
    es_buf b;
    es_buf_init(&b, 4096);
    cr_assert_eq(es_http_write_status_line(&b, 200, NULL), 0);
    cr_assert_eq(es_http_write_header(&b, "Transfer-Encoding", "chunked"), 0);
    cr_assert_eq(es_http_write_end_head(&b), 0);
    char big[300];
    memset(big, 'z', sizeof(big));
    cr_assert_eq(es_http_write_chunk(&b, "hello", 5), 0);
    cr_assert_eq(es_http_write_chunk(&b, big, sizeof(big)), 0);
    cr_assert_eq(es_http_write_chunk(&b, NULL, 0), 0);
    cr_assert(strstr(es_buf_cstr(&b), "\r\n12c\r\nzzz"));
    check_splits(&RESP, b.data, b.len, &res);
    cr_assert_eq(res.rc, ES_HTTP_DONE);
    cr_assert_eq(res.body_len, 305);
    cr_assert_eq(es_http_write_status_line(&b, 99, NULL), -EINVAL);
    cr_assert_str_eq(es_http_reason_phrase(409), "Conflict");
    es_buf_free(&b);
    es_buf small;
    es_buf_init(&small, 10);
    cr_assert_eq(es_http_write_status_line(&small, 200, NULL), -EMSGSIZE);
    es_buf_free(&small);
}

Test(http_misc, strerror_names_every_error)
{
    for (int e = ES_HTTP_E_TRUNCATED; e <= ES_HTTP_E_HEADER_TOO_LARGE; e++) {
        const char *s = es_http_strerror(e);
        cr_assert(strstr(s, "HTTP"), "%d: %s", e, s);
    }
    cr_assert(es_http_token_in_list(" a , Keep-Alive,b", "keep-alive"));
    cr_assert(!es_http_token_in_list("keep-alived", "keep-alive"));
    cr_assert(!es_http_token_in_list("", "close"));
}

#include "common/alloc.h"

/* Every allocation failure is an error return with nothing leaked (ASan). */
Test(http_misc, allocation_failures_are_clean)
{
    const char m[] = "POST /x HTTP/1.1\r\nA: 1\r\nB: 2\r\nContent-Length: 5\r\n\r\nhello";
    bool succeeded = false;
    for (long n = 0; n < 50 && !succeeded; n++) {
        es_alloc_fail_after(n);
        es_http_parser *p = NULL;
        int r = es_http_parser_create(ES_HTTP_REQUEST, NULL, &p);
        if (r < 0) {
            cr_assert_eq(r, -ENOMEM);
            cr_assert_null(p, "out-param untouched on failure");
            continue;
        }
        size_t c, off = 0;
        int rc;
        while ((rc = es_http_parser_feed(p, m + off, sizeof(m) - 1 - off, &c)) == ES_HTTP_HEADERS)
            off += c;
        cr_assert(rc == ES_HTTP_DONE || rc == -ENOMEM, "n=%ld rc=%d", n, rc);
        succeeded = rc == ES_HTTP_DONE;
        es_http_parser_free(p);
    }
    es_alloc_fail_after(-1);
    cr_assert(succeeded, "enough allocations eventually succeed");
}

/* Header values are checked 16 bytes at a time (http.c, value_ok): every
 * byte value at every position of values 1 to 40 bytes long (under one
 * step, whole steps, an overlapping tail) is accepted exactly when it is a
 * field character (RFC 9110 5.5: VCHAR, SP, HTAB, obs-text), and so is
 * every byte of a name 1 to 40 bytes long (a tchar, or the colon ending
 * it): names of letters, digits and '-' are scanned 16 bytes a step
 * (plain_name_colon) while the line has 16 left, so the colon falls in the
 * first step, the second, the third, and at their edges. */
Test(http_request, header_bytes_checked_everywhere)
{
    for (size_t len = 1; len <= 40; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (unsigned v = 0; v < 256; v++) {
                if (v == '\r' || v == '\n')
                    continue; /* line ends: their own errors */
                char val[48];
                memset(val, 'a', len);
                val[pos] = (char)v;
                char m[128];
                int n = snprintf(m, sizeof m, "GET / HTTP/1.1\r\nX-V: ");
                memcpy(m + n, val, len);
                memcpy(m + n + len, "\r\n\r\n", 4);
                bool ok = v == '\t' || (v >= 0x20 && v != 0x7f);
                es_http_parser *p;
                cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
                size_t used;
                int rc = es_http_parser_feed(p, m, (size_t)n + len + 4, &used);
                cr_assert_eq(rc, ok ? ES_HTTP_HEADERS : ES_HTTP_E_BAD_HEADER,
                             "value byte 0x%02x at %zu of %zu: %d", v, pos, len, rc);
                es_http_parser_free(p);
            }
        }
    }
    static const char tchars[] = "!#$%&'*+-.^_`|~";
    for (size_t len = 1; len <= 40; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (unsigned v = 0; v < 256; v++) {
                if (v == '\r' || v == '\n' || v == ':')
                    continue;
                char m[96];
                int n = snprintf(m, sizeof m, "GET / HTTP/1.1\r\n");
                memset(m + n, 'n', len);
                m[(size_t)n + pos] = (char)v;
                memcpy(m + n + len, ": x\r\n\r\n", 7);
                bool ok = (v >= '0' && v <= '9') || ((v | 0x20) >= 'a' && (v | 0x20) <= 'z') ||
                          (v && strchr(tchars, (int)v));
                es_http_parser *p;
                cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
                size_t used;
                int rc = es_http_parser_feed(p, m, (size_t)n + len + 7, &used);
                cr_assert_eq(rc, ok ? ES_HTTP_HEADERS : ES_HTTP_E_BAD_HEADER,
                             "name byte 0x%02x at %zu of %zu: %d", v, pos, len, rc);
                es_http_parser_free(p);
            }
        }
    }
}

/* The names known by length and first letter (http.c, known_name): found in
 * any case, the first of duplicates, never for a name of the same length
 * and first letter that differs elsewhere; framing sees every field of its
 * names, however spelled. */
Test(http_request, known_header_names)
{
    static const char *const names[] = {
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "authorization",
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-target",
        "x-amz-security-token",
        "x-amz-content-sha256",
    };
    static const char *const near[] = {
        "content-lengtH2",
        "content-lengti",
        "transfer-encodinf",
        "connectioN ",
        "connectiom",
        "expecT1",
        "expecu",
        "authorizatiom",
        "content-typf",
        "hosu",
        "x-amz-datf",
        "x-amz-targeu",
        "x-amz-security-tokem",
        "x-amz-content-sha257",
        "y-amz-date",
        "b-amz-target",
        "d",
        "",
        /* bytes that equal a name's byte once 0x20 is set where it is not a
         * letter, and letters' neighbours 0x20 below */
        "content\rlength",
        "x\ramz-target",
        "ho3t",
        "expe\x03t",
        "x-amz-security\rtoken",
        "x-amz-content\rsha256",
        "x-amz-content-sha\x12"
        "56",
    };
    es_buf m;
    es_buf_init(&m, 1 << 14);
    es_buf_append_str(&m, "POST / HTTP/1.1\r\n");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (i <= 1)
            continue; /* framing: below */
        char mixed[32];
        size_t n = strlen(names[i]);
        for (size_t k = 0; k < n; k++)
            mixed[k] =
                (char)(k % 2 == 0 && names[i][k] >= 'a' && names[i][k] <= 'z' ? names[i][k] - 32
                                                                              : names[i][k]);
        mixed[n] = '\0';
        es_buf_printf(&m, "%s: first-%zu\r\n%s: second-%zu\r\n", mixed, i, names[i], i);
    }
    es_buf_append_str(&m, "x-amz-datf: near\r\ncOnTeNt-LeNgTh: 3\r\nCONTENT-LENGTH: 3\r\n\r\nabc");
    es_http_parser *p;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    size_t used;
    cr_assert_eq(es_http_parser_feed(p, m.data, m.len, &used), ES_HTTP_HEADERS);
    cr_assert_eq(es_http_parser_content_length(p), 3);
    for (size_t i = 2; i < sizeof names / sizeof names[0]; i++) {
        char want[32], upper[32];
        snprintf(want, sizeof want, "first-%zu", i);
        size_t n = strlen(names[i]);
        for (size_t k = 0; k <= n; k++)
            upper[k] =
                (char)(names[i][k] >= 'a' && names[i][k] <= 'z' ? names[i][k] - 32 : names[i][k]);
        const char *v = es_http_parser_header(p, names[i]);
        cr_assert(v && strcmp(v, want) == 0, "%s: %s", names[i], v ? v : "(none)");
        v = es_http_parser_header(p, upper);
        cr_assert(v && strcmp(v, want) == 0, "%s: %s", upper, v ? v : "(none)");
    }
    cr_assert_str_eq(es_http_parser_header(p, "Content-Length"), "3");
    cr_assert_null(es_http_parser_header(p, "Transfer-Encoding"));
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        const char *v = es_http_parser_header(p, near[i]);
        if (strcmp(near[i], "x-amz-datf") == 0)
            cr_assert(v && strcmp(v, "near") == 0);
        else
            cr_assert_null(v, "%s", near[i]);
    }
    cr_assert_eq(es_http_parser_feed(p, m.data + used, m.len - used, &used), ES_HTTP_DONE);
    /* the next message on the parser knows none of them */
    es_http_parser_reset(p);
    cr_assert_eq(es_http_parser_feed(p, "GET / HTTP/1.1\r\n\r\n", 18, &used), ES_HTTP_HEADERS);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_assert_null(es_http_parser_header(p, names[i]));
    es_http_parser_free(p);
    es_buf_free(&m);
}

/* The status line and a header are written whole or not at all: at every
 * buffer maximum around their size, the contents before stay as they were;
 * a reason or value with a control byte and a name that is not a token are
 * refused and write nothing. */
Test(http_write, status_line_and_header_whole_or_nothing)
{
    const char want[] = "HTTP/1.1 404 Not Found\r\nx-amzn-RequestId: 0123-abcd\r\n";
    for (size_t max = 0; max <= sizeof want + 4; max++) {
        es_buf b;
        es_buf_init(&b, max);
        int r1 = es_http_write_status_line(&b, 404, NULL);
        size_t after1 = b.len;
        int r2 = r1 ? r1 : es_http_write_header(&b, "x-amzn-RequestId", "0123-abcd");
        if (max < 24) {
            cr_assert_eq(r1, -EMSGSIZE, "max %zu", max);
            cr_assert_eq(b.len, 0);
        } else if (max < sizeof want - 1) {
            cr_assert_eq(r1, 0, "max %zu", max);
            cr_assert_eq(r2, -EMSGSIZE, "max %zu", max);
            cr_assert_eq(b.len, after1);
            cr_assert_str_eq(es_buf_cstr(&b), "HTTP/1.1 404 Not Found\r\n");
        } else {
            cr_assert_eq(r2, 0, "max %zu", max);
            cr_assert_str_eq(es_buf_cstr(&b), want);
        }
        es_buf_free(&b);
    }
    es_buf b;
    es_buf_init(&b, 4096);
    cr_assert_eq(es_http_write_status_line(&b, 200, "O\x01K"), -EINVAL);
    cr_assert_eq(es_http_write_status_line(&b, 99, NULL), -EINVAL);
    cr_assert_eq(es_http_write_status_line(&b, 1000, NULL), -EINVAL);
    cr_assert_eq(es_http_write_header(&b, "X", "a\x7f"), -EINVAL);
    cr_assert_eq(es_http_write_header(&b, "X:", "a"), -EINVAL);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(es_http_write_status_line(&b, 299, "Tab\tand obs-text \xe9"), 0);
    cr_assert_eq(es_http_write_header(&b, "X-!#$%&'*+-.^_`|~9", "\t v\xff"), 0);
    cr_assert_str_eq(es_buf_cstr(&b),
                     "HTTP/1.1 299 Tab\tand obs-text \xe9\r\nX-!#$%&'*+-.^_`|~9: \t v\xff\r\n");
    es_buf_free(&b);
}

/* A header value is checked 8 bytes a step (value_ok): every byte value at
 * every position of values 1 to 40 bytes long (whole words, the tail, both)
 * is accepted exactly when it is a field byte (HTAB, SP and up but DEL,
 * obs-text), and then written as given; refused, nothing is written. */
Test(http_write, header_value_every_byte_everywhere)
{
    char v[41];
    es_buf b;
    es_buf_init(&b, 4096);
    for (size_t len = 1; len <= 40; len++) {
        for (size_t at = 0; at < len; at++) {
            for (int c = 1; c < 256; c++) {
                memset(v, 'a', len);
                v[len] = '\0';
                v[at] = (char)c;
                bool field = c == '\t' || (c >= 0x20 && c != 0x7f);
                es_buf_reset(&b);
                int r = es_http_write_header(&b, "X-V", v);
                if (!field) {
                    cr_assert_eq(r, -EINVAL, "len %zu at %zu byte 0x%02x", len, at, c);
                    cr_assert_eq(b.len, 0);
                    continue;
                }
                cr_assert_eq(r, 0, "len %zu at %zu byte 0x%02x", len, at, c);
                cr_assert_eq(b.len, len + 7);
                cr_assert_eq(memcmp(b.data, "X-V: ", 5), 0);
                cr_assert_eq(memcmp(b.data + 5, v, len), 0);
                cr_assert_eq(memcmp(b.data + 5 + len, "\r\n", 2), 0);
            }
        }
    }
    es_buf_reset(&b);
    cr_assert_eq(es_http_write_header(&b, "X-V", ""), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "X-V: \r\n");
    es_buf_free(&b);
}

/* The head's line ends are kept as collected for the first 32 lines and
 * searched for past them (http.c, line_lf): heads of 0 to 40 fields, after
 * empty lines that are skipped, whole, split anywhere and byte by byte,
 * give every field's name and value (the summary built here from what was
 * sent); a second message on the same parser has its own. */
Test(http_request, field_lines_around_the_kept_line_ends)
{
    static const size_t counts[] = {0, 1, 2, 30, 31, 32, 33, 40};
    static char m[8192], want[4096];
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        size_t nf = counts[c];
        for (int lead = 0; lead <= 1; lead++) {
            int o = snprintf(m, sizeof m, "%sPOST /x HTTP/1.1\r\n", lead ? "\r\n\r\n" : "");
            int w = snprintf(want, sizeof want, "POST /x 0 [] 1.1 ka=1 ec=0 ch=0 cl=3\n");
            for (size_t i = 0; i < nf; i++) {
                /* names and values of different lengths: a wrong line end
                 * cuts or shifts them */
                o += snprintf(m + o, sizeof m - (size_t)o, "X-F%zu:  v%0*zu \r\n", i,
                              (int)(i % 7 + 1), i);
                w += snprintf(want + w, sizeof want - (size_t)w, "X-F%zu=v%0*zu\n", i,
                              (int)(i % 7 + 1), i);
            }
            o += snprintf(m + o, sizeof m - (size_t)o, "Content-Length: 3\r\n\r\nabc");
            w += snprintf(want + w, sizeof want - (size_t)w, "Content-Length=3\n");
            check_splits(&REQ, m, (size_t)o, &res);
            cr_assert_eq(res.rc, ES_HTTP_DONE, "%zu fields", nf);
            cr_assert_str_eq(res.summary, want, "%zu fields", nf);
            cr_assert_eq(res.body_len, 3);
        }
    }
    /* two messages on one parser: the second's lines are its own */
    es_http_parser *p = NULL;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    const char a[] = "GET /a HTTP/1.1\r\nX-Long-Name-One: first value here\r\nX-B: 2\r\n\r\n";
    const char b[] = "GET /b HTTP/1.1\r\nY: z\r\nX-Second-Long: another\r\n\r\n";
    size_t used = 0;
    cr_assert_eq(es_http_parser_feed(p, a, sizeof a - 1, &used), ES_HTTP_HEADERS);
    cr_assert_str_eq(es_http_parser_header(p, "x-long-name-one"), "first value here");
    es_http_parser_reset(p);
    cr_assert_eq(es_http_parser_feed(p, b, sizeof b - 1, &used), ES_HTTP_HEADERS);
    cr_assert_str_eq(es_http_parser_target(p), "/b");
    cr_assert_str_eq(es_http_parser_header(p, "y"), "z");
    cr_assert_str_eq(es_http_parser_header(p, "x-second-long"), "another");
    cr_assert_null(es_http_parser_header(p, "x-b"));
    es_http_parser_free(p);
}

/* es_http_parser_header_n takes the name's length (es_http_parser_header,
 * inline, gives strlen's, known where a literal is written): a slice of a
 * longer buffer finds exactly its name, known or not, in any case; a
 * prefix or a longer slice of a name does not; a name read at run time
 * gives what the literal gives. */
Test(http_request, header_look_up_by_length)
{
    static const char msg[] = "GET / HTTP/1.1\r\n"
                              "X-Amz-Date: d1\r\n"
                              "x-other: o1\r\n"
                              "Host: h1\r\n"
                              "X-Other: o2\r\n"
                              "\r\n";
    es_http_parser *p;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
    size_t used;
    cr_assert_eq(es_http_parser_feed(p, msg, sizeof msg - 1, &used), ES_HTTP_HEADERS);
    static const char buf[] = "x-amz-datehostX-OTHERx";
    cr_assert_str_eq(es_http_parser_header_n(p, buf, 10), "d1");
    cr_assert_str_eq(es_http_parser_header_n(p, buf + 10, 4), "h1");
    cr_assert_str_eq(es_http_parser_header_n(p, buf + 14, 7), "o1");
    cr_assert_null(es_http_parser_header_n(p, buf, 9));
    cr_assert_null(es_http_parser_header_n(p, buf, 11));
    cr_assert_null(es_http_parser_header_n(p, buf + 10, 3));
    cr_assert_null(es_http_parser_header_n(p, buf + 14, 8));
    cr_assert_null(es_http_parser_header_n(p, buf, 0));
    cr_assert_str_eq(es_http_parser_header(p, "x-amz-date"), "d1");
    cr_assert_str_eq(es_http_parser_header(p, "HOST"), "h1");
    cr_assert_str_eq(es_http_parser_header(p, "x-other"), "o1");
    cr_assert_null(es_http_parser_header(p, "x-othe"));
    cr_assert_null(es_http_parser_header(p, ""));
    char run[16];
    snprintf(run, sizeof run, "%s", getenv("ES_NO_SUCH_VARIABLE") ? "" : "X-OTHER");
    cr_assert_str_eq(es_http_parser_header(p, run), "o1");
    es_http_parser_free(p);
}

/* A plain name under 16 bytes on a line of 16 or more is known from the
 * 16-byte step's lower-case vector (http.c, plain_name_colon), a shorter
 * line's by known_name: every known name and its near misses, in lower,
 * upper and alternating case, with a short and a long value, is found by
 * each known name's look-up exactly when they are equal in any case. */
Test(http_request, known_names_from_the_16_byte_step)
{
    static const char *const known[] = {"content-length",
                                        "transfer-encoding",
                                        "connection",
                                        "expect",
                                        "authorization",
                                        "content-type",
                                        "host",
                                        "x-amz-date",
                                        "x-amz-target",
                                        "x-amz-security-token",
                                        "x-amz-content-sha256"};
    static const char *const tried[] = {"content-length",
                                        "connection",
                                        "expect",
                                        "authorization",
                                        "content-type",
                                        "host",
                                        "x-amz-date",
                                        "x-amz-target",
                                        "x-amz-security-token",
                                        "x-amz-content-sha256",
                                        "content-lengti",
                                        "connectiom",
                                        "expecu",
                                        "authorizatiom",
                                        "content-typf",
                                        "hosu",
                                        "x-amz-datf",
                                        "x-amz-targeu",
                                        "y-amz-date",
                                        "b-amz-target",
                                        "c0ntent-type",
                                        "ho5t",
                                        "x-amz-date1",
                                        "x-amz-dat",
                                        "h",
                                        "hostt",
                                        "x-amz-security-tokem",
                                        "connection-"};
    for (size_t t = 0; t < sizeof tried / sizeof tried[0]; t++) {
        for (int cs = 0; cs < 3; cs++) {
            for (int longv = 0; longv <= 1; longv++) {
                char name[32], m[128];
                size_t n = strlen(tried[t]);
                for (size_t k = 0; k <= n; k++) {
                    char c = tried[t][k];
                    bool up = cs == 1 || (cs == 2 && k % 2 == 0);
                    name[k] = (char)(up && c >= 'a' && c <= 'z' ? c - 32 : c);
                }
                const char *value = longv ? "00000000000000000000" : "0"; /* Content-Length too */
                int len = snprintf(m, sizeof m, "GET / HTTP/1.1\r\n%s: %s\r\n\r\n", name, value);
                es_http_parser *p;
                cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &p), 0);
                size_t used;
                cr_assert_eq(es_http_parser_feed(p, m, (size_t)len, &used), ES_HTTP_HEADERS);
                for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
                    const char *got = es_http_parser_header(p, known[k]);
                    if (strcasecmp(name, known[k]) == 0)
                        cr_assert(got && strcmp(got, value) == 0, "%s as %s", name, known[k]);
                    else
                        cr_assert_null(got, "%s found as %s", name, known[k]);
                }
                cr_assert_str_eq(es_http_parser_header(p, name), value);
                es_http_parser_free(p);
            }
        }
    }
}
