#include "common/http.h"
#include "common/alloc.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

const es_http_limits es_http_default_limits = {
    .max_header_bytes = 16 * 1024,
    .max_headers = 100,
    .max_body = 1024 * 1024,
    .max_chunk_line = 1024,
};

/* The parser's states. Only enter() assigns p->state. */
typedef enum pstate {
    ST_HEAD,        /* collecting the head line by line */
    ST_BODY_LEN,    /* Content-Length body, `remaining` bytes to go */
    ST_BODY_EOF,    /* close-delimited body */
    ST_CHUNK_SIZE,  /* hex digits of a chunk-size line */
    ST_CHUNK_BWS,   /* whitespace after the digits */
    ST_CHUNK_EXT,   /* chunk extension, ignored */
    ST_CHUNK_LF,    /* the LF ending the chunk-size line */
    ST_CHUNK_DATA,  /* `remaining` bytes of chunk data */
    ST_CHUNK_CR,    /* the CRLF after chunk data */
    ST_CHUNK_CRLF,  /* ... its LF */
    ST_TRAILER_BOL, /* start of a trailer line (or the final CRLF) */
    ST_TRAILER,     /* inside a trailer line */
    ST_TRAILER_LF,  /* LF ending a trailer line */
    ST_END_LF,      /* LF of the final empty line */
    ST_DONE,        /* message complete */
} pstate;

typedef struct hdr {
    const char *name;
    const char *value;
    size_t name_len; /* lets lookups skip names of another length */
    int known;       /* hknown */
} hdr;

/* The header fields the parser and its callers ask for by name: known when
 * parsed (by length and first letter, then one case-folded compare), so that
 * framing and look-ups take the first one's index instead of comparing every
 * name with strncasecmp (a request asks for eight of them; issue 22). */
typedef enum hknown {
    HK_NONE,
    HK_CONTENT_LENGTH,
    HK_TRANSFER_ENCODING,
    HK_CONNECTION,
    HK_EXPECT,
    HK_AUTHORIZATION,
    HK_CONTENT_TYPE,
    HK_HOST,
    HK_X_AMZ_DATE,
    HK_X_AMZ_TARGET,
    HK_X_AMZ_SECURITY_TOKEN,
    HK_X_AMZ_CONTENT_SHA256,
    HK_COUNT,
} hknown;

#define LINE_ENDS_KEPT 32 /* a SigV4 request's head has about ten lines */

struct es_http_parser {
    es_http_mode mode;
    es_http_limits lim;
    es_http_body_cb cb;
    void *cb_ud;

    pstate state;
    int err;            /* sticky */
    bool started;       /* a byte of this message arrived */
    bool head_response; /* RESPONSE to a HEAD request */

    es_buf head;       /* the raw head, NUL-terminated in place once parsed */
    size_t line_start; /* offset in head of the line being collected */
    size_t head_lines; /* complete lines in head */
    size_t skipped;    /* empty lines before a request line */
    /* head.len after line i's LF, for the first lines (as collected): the
     * fields are not searched for their ends a second time (parse_head) */
    size_t line_end[LINE_ENDS_KEPT];

    /* parsed head; the start line is parsed as soon as it is complete, into
     * offsets (the buffer may still move), turned into pointers at the end */
    size_t method_off, target_off, reason_off;
    bool has_reason;
    const char *method, *target, *reason;
    int status, minor;
    hdr *hdrs;
    size_t nhdrs, hdrs_cap; /* hdrs is kept across messages, grown when needed */
    /* per known name (hknown), 1 + the index in hdrs of its first field; 0:
     * none. Duplicates stay in hdrs, where header_at and framing see them. */
    size_t known[HK_COUNT];
    bool keep_alive, expect_continue, chunked;
    int64_t content_length;

    /* body */
    uint64_t remaining; /* Content-Length left, or current chunk left */
    uint64_t body_bytes;
    size_t line_len; /* chunk-size line / trailer bytes so far */
    size_t ntrailers;
    unsigned ndigits;
    es_buf body; /* only without a callback */
};

static void enter(es_http_parser *p, pstate s)
{
    p->state = s;
}

const char *es_http_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case ES_HTTP_E_HEADER_TOO_LARGE:
        return "HTTP header section too large";
    case ES_HTTP_E_TOO_MANY_HEADERS:
        return "too many HTTP header fields";
    case ES_HTTP_E_BODY_TOO_LARGE:
        return "HTTP body too large";
    case ES_HTTP_E_BAD_CHUNK:
        return "malformed HTTP chunked encoding";
    case ES_HTTP_E_CHUNK_LINE_TOO_LONG:
        return "HTTP chunk-size line too long";
    case ES_HTTP_E_BAD_STATUS_LINE:
        return "malformed HTTP status line";
    case ES_HTTP_E_BAD_REQUEST_LINE:
        return "malformed HTTP request line";
    case ES_HTTP_E_BAD_VERSION:
        return "unsupported HTTP version";
    case ES_HTTP_E_BAD_HEADER:
        return "malformed HTTP header field";
    case ES_HTTP_E_BAD_CONTENT_LENGTH:
        return "invalid or conflicting HTTP Content-Length";
    case ES_HTTP_E_CL_AND_TE:
        return "HTTP request with both Content-Length and Transfer-Encoding";
    case ES_HTTP_E_UNSUPPORTED_TE:
        return "unsupported HTTP transfer coding";
    case ES_HTTP_E_TRUNCATED:
        return "HTTP message truncated by end of stream";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown HTTP error";
}

int es_http_parser_create(es_http_mode mode, const es_http_limits *limits, es_http_parser **out)
{
    es_http_parser *p = es_calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->mode = mode;
    p->lim = limits ? *limits : es_http_default_limits;
    es_buf_init(&p->head, p->lim.max_header_bytes);
    es_buf_init(&p->body, p->lim.max_body);
    es_http_parser_reset(p);
    *out = p;
    return 0;
}

void es_http_parser_free(es_http_parser *p)
{
    if (!p)
        return;
    es_free(p->hdrs);
    es_buf_free(&p->head);
    es_buf_free(&p->body);
    es_free(p);
}

void es_http_parser_set_body_cb(es_http_parser *p, es_http_body_cb cb, void *ud)
{
    p->cb = cb;
    p->cb_ud = ud;
}

void es_http_parser_set_head_response(es_http_parser *p, bool head)
{
    p->head_response = head;
}

void es_http_parser_reset(es_http_parser *p)
{
    enter(p, ST_HEAD);
    p->err = 0;
    p->started = false;
    p->head_response = false;
    es_buf_reset(&p->head);
    p->line_start = 0;
    p->head_lines = 0;
    p->skipped = 0;
    p->method = p->target = NULL;
    p->method_off = p->target_off = p->reason_off = 0;
    p->has_reason = false;
    p->reason = "";
    p->status = 0;
    p->minor = 1;
    p->nhdrs = 0;
    memset(p->known, 0, sizeof p->known);
    p->keep_alive = false;
    p->expect_continue = false;
    p->chunked = false;
    p->content_length = -1;
    p->remaining = 0;
    p->body_bytes = 0;
    p->line_len = 0;
    p->ntrailers = 0;
    p->ndigits = 0;
    es_buf_reset(&p->body);
}

/* ---- character classes (RFC 9110 5.6.2) ---- */

/* tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~", as a table: names are checked
 * byte by byte on every message */
static const unsigned char tchar_table[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool is_tchar(unsigned char c)
{
    return tchar_table[c] != 0;
}

/* field-vchar / SP / HTAB, obs-text allowed: every byte but the controls
 * other than HTAB, and DEL. A table: every value byte is checked. */
#define FC16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
static const unsigned char field_table[256] = {
    0,    0,    0,    0,    0,    0,    0,    0,    0, 1, 0, 0, 0, 0, 0, 0, /* 0x00: HTAB only */
    0,    0,    0,    0,    0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    FC16, FC16, FC16, FC16, FC16,                                           /* 0x20-0x6f */
    1,    1,    1,    1,    1,    1,    1,    1,    1, 1, 1, 1, 1, 1, 1, 0, /* 0x70: not DEL */
    FC16, FC16, FC16, FC16, FC16, FC16, FC16, FC16, /* 0x80-0xff: obs-text */
};
#undef FC16

static bool is_field_char(unsigned char c)
{
    return field_table[c] != 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool es_http_token_in_list(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *s = list;
    while (*s) {
        while (*s == ',' || is_ows(*s))
            s++;
        const char *b = s;
        while (*s && *s != ',')
            s++;
        const char *e = s;
        while (e > b && is_ows(e[-1]))
            e--;
        if ((size_t)(e - b) == tl && tl && strncasecmp(b, token, tl) == 0)
            return true;
    }
    return false;
}

/* ---- head ---- */

/* "HTTP/1.0" or "HTTP/1.1" exactly; other HTTP versions are unsupported. */
static int parse_version(const char *v, size_t n, int *minor, int bad)
{
    if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return bad;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return ES_HTTP_E_BAD_VERSION;
    *minor = v[7] - '0';
    return 0;
}

static int parse_request_line(es_http_parser *p, char *line, size_t n)
{
    char *sp1 = memchr(line, ' ', n);
    if (!sp1 || sp1 == line)
        return ES_HTTP_E_BAD_REQUEST_LINE;
    for (char *c = line; c < sp1; c++)
        if (!is_tchar((unsigned char)*c))
            return ES_HTTP_E_BAD_REQUEST_LINE;
    char *tgt = sp1 + 1;
    char *sp2 = memchr(tgt, ' ', n - (size_t)(tgt - line));
    if (!sp2 || sp2 == tgt)
        return ES_HTTP_E_BAD_REQUEST_LINE;
    for (char *c = tgt; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return ES_HTTP_E_BAD_REQUEST_LINE;
    char *ver = sp2 + 1;
    int r = parse_version(ver, n - (size_t)(ver - line), &p->minor, ES_HTTP_E_BAD_REQUEST_LINE);
    if (r < 0)
        return r;
    *sp1 = '\0';
    *sp2 = '\0';
    p->method_off = 0;
    p->target_off = (size_t)(tgt - line);
    return 0;
}

static int parse_status_line(es_http_parser *p, char *line, size_t n)
{
    if (n < 12 || line[8] != ' ')
        return ES_HTTP_E_BAD_STATUS_LINE;
    int r = parse_version(line, 8, &p->minor, ES_HTTP_E_BAD_STATUS_LINE);
    if (r < 0)
        return r;
    int st = 0;
    for (size_t i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return ES_HTTP_E_BAD_STATUS_LINE;
        st = st * 10 + (line[i] - '0');
    }
    if (st < 100)
        return ES_HTTP_E_BAD_STATUS_LINE;
    if (n > 12 && line[12] != ' ')
        return ES_HTTP_E_BAD_STATUS_LINE;
    for (size_t i = 13; i < n; i++)
        if (!is_field_char((unsigned char)line[i]))
            return ES_HTTP_E_BAD_STATUS_LINE;
    p->status = st;
    p->has_reason = n > 12;
    p->reason_off = 13;
    return 0;
}

/* Does any of the 8 bytes at p need a look of its own: a control (HTAB
 * among them, which is allowed) or DEL? The "has a byte less than" and "has
 * a zero byte" tests of bit-twiddling lore: exact about whether there is
 * one, which is all that is asked; the bytes of such a word are then checked
 * one by one. A request head is mostly the values (SigV4's Authorization
 * alone is 200 bytes), checked a byte at a time before (issue 22). */
static bool word_suspect(const char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t x, d;
    memcpy(&x, p, sizeof x);
    d = x ^ (ones * 0x7f);
    return (((x - ones * 0x20) & ~x) | ((d - ones) & ~d)) & highs;
}

/* Inline in both callers: out of line it was a call a field, 107
 * instructions a request (issue 22). */
static inline __attribute__((always_inline)) bool value_ok(const char *v, const char *e)
{
#if defined(__SSE2__)
    /* 16 bytes a step, the last step overlapping, the verdict once at the
     * end: a control (HTAB too) or DEL anywhere sends the whole value to
     * the byte-by-byte check below. Unsigned min(x, 0x1f) == x is x <= 0x1f.
     * A SigV4 head's values are about 450 bytes: 12 instructions each 8
     * bytes (word_suspect) became about 10 each 16 (issue 22). */
    if (e - v >= 16) {
        const __m128i ctl = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
        __m128i x, acc = _mm_setzero_si128();
        const char *s = v;
        for (; e - s >= 16; s += 16) {
            x = _mm_loadu_si128((const __m128i *)(const void *)s);
            acc = _mm_or_si128(
                acc, _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, ctl), x), _mm_cmpeq_epi8(x, del)));
        }
        if (s < e) {
            x = _mm_loadu_si128((const __m128i *)(const void *)(e - 16));
            acc = _mm_or_si128(
                acc, _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, ctl), x), _mm_cmpeq_epi8(x, del)));
        }
        if (_mm_movemask_epi8(acc) == 0)
            return true;
        for (; v < e; v++)
            if (!is_field_char((unsigned char)*v))
                return false;
        return true;
    }
#endif
    while (e - v >= 8) {
        if (word_suspect(v)) {
            for (int k = 0; k < 8; k++)
                if (!is_field_char((unsigned char)v[k]))
                    return false;
        }
        v += 8;
    }
    for (; v < e; v++)
        if (!is_field_char((unsigned char)*v))
            return false;
    return true;
}

/* The ASCII lower-case letters of the 8 bytes at lc (all below 0x80) as
 * 0x20 in their byte, 0 elsewhere: the bit that tells a letter's cases
 * apart. */
static uint64_t letter_bits(uint64_t l)
{
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t from_a = l + ones * (0x80 - 'a'), past_z = l + ones * (0x80 - 'z' - 1);
    return ((from_a & ~past_z) & (ones * 0x80)) >> 2;
}

/* The 8 bytes at s are the 8 at lc (lower case, below 0x80) in any case:
 * exact, a letter of lc matching either case, every other byte itself. */
static bool word_folded(const char *s, const char *lc)
{
    uint64_t x, l;
    memcpy(&x, s, 8);
    memcpy(&l, lc, 8);
    return (x | letter_bits(l)) == l;
}

/* s[0..n) is lc in any case (lc: n bytes, letters in lower case): 8 bytes
 * a step, the last word overlapping, byte by byte under 8 (issue 22: the
 * byte-by-byte fold was 135 instructions a name). */
static bool same_folded(const char *s, const char *lc, size_t n)
{
    if (n < 8) {
        for (size_t i = 0; i < n; i++) {
            unsigned char l = (unsigned char)lc[i], c = (unsigned char)s[i];
            if ((l >= 'a' && l <= 'z' ? (c | 0x20) : c) != l)
                return false;
        }
        return true;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (!word_folded(s + i, lc + i))
            return false;
    return i == n || word_folded(s + n - 8, lc + n - 8);
}

/* The known names in lower case, by known_slot's number. */
static const struct {
    const char *lc;
    hknown id;
} known_names[] = {
    {"content-length", HK_CONTENT_LENGTH},
    {"transfer-encoding", HK_TRANSFER_ENCODING},
    {"connection", HK_CONNECTION},
    {"expect", HK_EXPECT},
    {"authorization", HK_AUTHORIZATION},
    {"content-type", HK_CONTENT_TYPE},
    {"host", HK_HOST},
    {"x-amz-date", HK_X_AMZ_DATE},
    {"x-amz-target", HK_X_AMZ_TARGET},
    {"x-amz-security-token", HK_X_AMZ_SECURITY_TOKEN},
    {"x-amz-content-sha256", HK_X_AMZ_CONTENT_SHA256},
};

/* The one known name s[0..n) may be, by length first, then the first
 * letter (the last byte for the two of 20): its number in known_names, or
 * -1. Most names compare no byte. */
static int known_slot(const char *s, size_t n)
{
    unsigned char c = n ? (unsigned char)(s[0] | 0x20) : 0;
    switch (n) {
    case 4:
        return 6;
    case 6:
        return 3;
    case 10:
        return c == 'c' ? 2 : 7;
    case 12:
        return c == 'c' ? 5 : 8;
    case 13:
        return 4;
    case 14:
        return 0;
    case 17:
        return 1;
    case 20:
        return s[n - 1] == '6' ? 10 : 9;
    default:
        return -1;
    }
}

/* The known name s[0..n) is, HK_NONE for the others. */
static hknown known_name(const char *s, size_t n)
{
    int k = known_slot(s, n);
    if (k < 0 || (unsigned char)known_names[k].lc[0] != (unsigned char)(s[0] | 0x20) ||
        !same_folded(s, known_names[k].lc, n))
        return HK_NONE;
    return known_names[k].id;
}

#if defined(__SSE2__)
/* The colon ending a name that is letters, digits and '-' only (every name
 * a client sends us), found 16 bytes a step while the line has 16 left;
 * NULL when the name has another byte, or its colon is not found so: the
 * byte-by-byte scan decides then. The table look-up a byte was about 5
 * instructions a byte of ten names of 4 to 20 bytes a request (issue 22). */
/* known_names' names under 16 bytes, each in 16 bytes (zeros after it):
 * compared with a plain name's lower-case vector in plain_name_colon. */
static const char known_lc16[][16] = {
    "content-length",
    "",
    "connection",
    "expect",
    "authorization",
    "content-type",
    "host",
    "x-amz-date",
    "x-amz-target",
    "",
    "",
};

static char *plain_name_colon(char *line, size_t n, int *id)
{
    const __m128i fold = _mm_set1_epi8(0x20), a1 = _mm_set1_epi8('a' - 1),
                  z1 = _mm_set1_epi8('z' + 1), d1 = _mm_set1_epi8('0' - 1),
                  d2 = _mm_set1_epi8('9' + 1), dash = _mm_set1_epi8('-'),
                  colon = _mm_set1_epi8(':');
    for (size_t i = 0; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(line + i));
        /* signed compares: bytes from 0x80 are negative, outside both
         * ranges; x | 0x20 takes A-Z (only) into a-z */
        __m128i l = _mm_or_si128(x, fold);
        __m128i ok =
            _mm_or_si128(_mm_and_si128(_mm_cmpgt_epi8(l, a1), _mm_cmplt_epi8(l, z1)),
                         _mm_or_si128(_mm_and_si128(_mm_cmpgt_epi8(x, d1), _mm_cmplt_epi8(x, d2)),
                                      _mm_cmpeq_epi8(x, dash)));
        unsigned plain = (unsigned)_mm_movemask_epi8(ok);
        unsigned c = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, colon));
        if (c) {
            unsigned at = (unsigned)__builtin_ctz(c), before = (1u << at) - 1;
            if ((plain & before) != before)
                return NULL;
            if (i == 0) {
                /* a plain name under 16 bytes: which known name it is,
                 * from the lower-case vector at hand (x | 0x20 is the
                 * lower case of letters, digits and '-'); known_name was
                 * 52 instructions a field (issue 22) */
                int k = known_slot(line, at);
                *id = HK_NONE;
                if (k >= 0) {
                    __m128i want = _mm_loadu_si128((const __m128i *)(const void *)known_lc16[k]);
                    unsigned same = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(l, want));
                    if ((same & before) == before)
                        *id = known_names[k].id;
                }
            }
            return line + i + at;
        }
        if (plain != 0xffffu)
            return NULL;
    }
    return NULL;
}
#endif

static int parse_field(hdr *h, char *line, size_t n)
{
    if (n == 0 || is_ows(line[0]))
        return ES_HTTP_E_BAD_HEADER; /* obs-fold or empty */
    char *colon = NULL, *e = line + n;
    int id = -1; /* which known name: not decided */
#if defined(__SSE2__)
    colon = plain_name_colon(line, n, &id);
#endif
    if (!colon) {
        colon = line;
        while (colon < e && is_tchar((unsigned char)*colon))
            colon++;
    }
    /* the first byte that is not a tchar must be the colon: whitespace
     * before it is refused too */
    if (colon == e || *colon != ':' || colon == line)
        return ES_HTTP_E_BAD_HEADER;
    char *v = colon + 1;
    if (!value_ok(v, e))
        return ES_HTTP_E_BAD_HEADER;
    while (v < e && is_ows(*v))
        v++;
    while (e > v && is_ows(e[-1]))
        e--;
    *colon = '\0';
    *e = '\0';
    h->name = line;
    h->name_len = (size_t)(colon - line);
    h->known = id >= 0 ? id : (int)known_name(line, h->name_len);
    h->value = v;
    return 0;
}

/* Content-Length: 1*DIGIT, or a list of identical values ("5, 5"). */
static int parse_content_length(const char *v, int64_t *cl)
{
    const char *s = v;
    bool any = false;
    while (*s) {
        while (is_ows(*s))
            s++;
        if (*s < '0' || *s > '9')
            return ES_HTTP_E_BAD_CONTENT_LENGTH;
        int64_t x = 0;
        while (*s >= '0' && *s <= '9') {
            if (x > (INT64_MAX - 9) / 10)
                return ES_HTTP_E_BAD_CONTENT_LENGTH;
            x = x * 10 + (*s - '0');
            s++;
        }
        while (is_ows(*s))
            s++;
        if (*s == ',')
            s++;
        else if (*s)
            return ES_HTTP_E_BAD_CONTENT_LENGTH;
        if (*cl >= 0 && *cl != x)
            return ES_HTTP_E_BAD_CONTENT_LENGTH;
        *cl = x;
        any = true;
    }
    return any ? 0 : ES_HTTP_E_BAD_CONTENT_LENGTH;
}

/* Transfer-Encoding must be exactly "chunked" (possibly repeated in lists
 * or lines is not allowed: chunked twice is an error per RFC 9112 6.1). */
static int parse_te(const char *v, bool *chunked)
{
    const char *s = v;
    while (*s) {
        while (*s == ',' || is_ows(*s))
            s++;
        if (!*s)
            break;
        const char *b = s;
        while (*s && *s != ',')
            s++;
        const char *e = s;
        while (e > b && is_ows(e[-1]))
            e--;
        if (*chunked) /* anything after chunked, or chunked twice */
            return ES_HTTP_E_UNSUPPORTED_TE;
        if ((size_t)(e - b) != 7 || strncasecmp(b, "chunked", 7) != 0)
            return ES_HTTP_E_UNSUPPORTED_TE;
        *chunked = true;
    }
    return 0;
}

static int check_limit(es_http_parser *p, uint64_t n)
{
    if (n > p->lim.max_body)
        return ES_HTTP_E_BODY_TOO_LARGE;
    return 0;
}

/* Framing from every field of the four names that decide it (each field:
 * a repeated Content-Length must agree, Transfer-Encoding lines add up). */
static int decide_framing(es_http_parser *p)
{
    bool has_te = false, has_cl = false, conn_close = false, conn_ka = false;
    for (size_t i = 0; i < p->nhdrs; i++) {
        const hdr *h = &p->hdrs[i];
        int r = 0;
        if (h->known == HK_CONTENT_LENGTH) {
            has_cl = true;
            r = parse_content_length(h->value, &p->content_length);
        } else if (h->known == HK_TRANSFER_ENCODING) {
            has_te = true;
            r = parse_te(h->value, &p->chunked);
        } else if (h->known == HK_CONNECTION) {
            conn_close |= es_http_token_in_list(h->value, "close");
            conn_ka |= es_http_token_in_list(h->value, "keep-alive");
        } else if (p->mode == ES_HTTP_REQUEST && h->known == HK_EXPECT) {
            if (strcasecmp(h->value, "100-continue") == 0)
                p->expect_continue = true;
        }
        if (r < 0)
            return r;
    }
    p->keep_alive = p->minor == 1 ? !conn_close : (conn_ka && !conn_close);
    if (has_te && p->minor == 0)
        return ES_HTTP_E_UNSUPPORTED_TE;
    if (has_te && !p->chunked)
        return ES_HTTP_E_UNSUPPORTED_TE; /* an empty Transfer-Encoding */

    if (p->mode == ES_HTTP_REQUEST) {
        if (has_te && has_cl)
            return ES_HTTP_E_CL_AND_TE;
    } else {
        if (p->head_response || p->status < 200 || p->status == 204 || p->status == 304) {
            p->chunked = false;
            enter(p, ST_DONE);
            return 0;
        }
        if (has_te && has_cl) {
            /* RFC 9112 6.3: chunked wins, and the connection must close. */
            p->content_length = -1;
            p->keep_alive = false;
        }
    }
    if (p->chunked) {
        enter(p, ST_CHUNK_SIZE);
        return 0;
    }
    if (p->content_length >= 0) {
        int r = check_limit(p, (uint64_t)p->content_length);
        if (r < 0)
            return r;
        p->remaining = (uint64_t)p->content_length;
        enter(p, p->remaining ? ST_BODY_LEN : ST_DONE);
        return 0;
    }
    if (p->mode == ES_HTTP_REQUEST) {
        enter(p, ST_DONE);
        return 0;
    }
    p->keep_alive = false;
    enter(p, ST_BODY_EOF);
    return 0;
}

/* The LF ending line i of the head, which starts at s: where head_bytes
 * saw it for the first lines (memchr a line there and again here was 19
 * calls a request; issue 22), searched for past those. */
static char *line_lf(const es_http_parser *p, size_t i, char *s, char *end)
{
    if (i < LINE_ENDS_KEPT)
        return p->head.data + p->line_end[i] - 1;
    return memchr(s, '\n', (size_t)(end - s));
}

static int parse_head(es_http_parser *p)
{
    char *s = p->head.data, *end = p->head.data + p->head.len;
    /* field lines: every line but the first and the final empty one */
    size_t nfields = p->head_lines - 2;
    if (nfields > p->lim.max_headers)
        return ES_HTTP_E_TOO_MANY_HEADERS;
    if (nfields > p->hdrs_cap) {
        hdr *n = es_calloc(nfields, sizeof(hdr));
        if (!n)
            return -ENOMEM;
        es_free(p->hdrs);
        p->hdrs = n;
        p->hdrs_cap = nfields;
    }
    /* every line ends in CRLF: checked while collecting; the start line was
     * parsed when it completed */
    if (p->mode == ES_HTTP_REQUEST) {
        p->method = s + p->method_off;
        p->target = s + p->target_off;
    } else if (p->has_reason) {
        p->reason = s + p->reason_off;
    }
    char *nl = line_lf(p, 0, s, end);
    size_t n;
    int r;
    s = nl + 1;
    for (size_t i = 0; i < nfields; i++) {
        nl = line_lf(p, i + 1, s, end);
        n = (size_t)(nl - s) - 1;
        s[n] = '\0';
        hdr *h = &p->hdrs[i];
        r = parse_field(h, s, n);
        if (r < 0)
            return r;
        hknown id = (hknown)h->known;
        if (id != HK_NONE && !p->known[id])
            p->known[id] = i + 1;
        p->nhdrs++;
        s = nl + 1;
    }
    return decide_framing(p);
}

/* Collects the head from data[*off..len). Returns 0 (need more),
 * ES_HTTP_HEADERS or an error. */
static int head_bytes(es_http_parser *p, const char *data, size_t len, size_t *off)
{
    while (*off < len) {
        const char *b = data + *off;
        size_t avail = len - *off;
        const char *nl = memchr(b, '\n', avail);
        size_t take = nl ? (size_t)(nl - b) + 1 : avail;
        p->started = true;
        if (p->skipped + p->head.len + take > p->lim.max_header_bytes)
            return ES_HTTP_E_HEADER_TOO_LARGE;
        int r = es_buf_append(&p->head, b, take);
        if (r < 0)
            return r == -EMSGSIZE ? ES_HTTP_E_HEADER_TOO_LARGE : r;
        *off += take;
        if (!nl)
            return 0;
        if (p->head_lines < LINE_ENDS_KEPT)
            p->line_end[p->head_lines] = p->head.len;
        p->head_lines++;
        char *line = p->head.data + p->line_start;
        size_t ll = p->head.len - p->line_start;
        bool first = p->line_start == 0;
        if (ll < 2 || line[ll - 2] != '\r') {
            if (first)
                return p->mode == ES_HTTP_REQUEST ? ES_HTTP_E_BAD_REQUEST_LINE
                                                  : ES_HTTP_E_BAD_STATUS_LINE;
            return ES_HTTP_E_BAD_HEADER; /* bare LF */
        }
        if (ll == 2) {
            if (first && p->mode == ES_HTTP_REQUEST) {
                /* RFC 9112 2.2: ignore empty lines before a request line */
                p->skipped += 2;
                es_buf_reset(&p->head);
                p->head_lines = 0;
                continue;
            }
            if (first)
                return ES_HTTP_E_BAD_STATUS_LINE;
            r = parse_head(p);
            return r < 0 ? r : ES_HTTP_HEADERS;
        }
        if (first) {
            /* reject a bad start line before waiting for the rest */
            line[ll - 2] = '\0';
            r = p->mode == ES_HTTP_REQUEST ? parse_request_line(p, line, ll - 2)
                                           : parse_status_line(p, line, ll - 2);
            if (r < 0)
                return r;
        }
        p->line_start = p->head.len;
    }
    return 0;
}

/* ---- body ---- */

static int deliver_piece(es_http_parser *p, const char *d, size_t n);

static int deliver(es_http_parser *p, const char *d, size_t n)
{
    if (n == 0)
        return 0;
    int over = 0;
    if (p->body_bytes + n > p->lim.max_body) {
        /* hand out what fits, so the result does not depend on how the
         * input was split */
        over = ES_HTTP_E_BODY_TOO_LARGE;
        n = (size_t)(p->lim.max_body - p->body_bytes);
        if (n == 0)
            return over;
    }
    int r = deliver_piece(p, d, n);
    return r < 0 ? r : over;
}

static int deliver_piece(es_http_parser *p, const char *d, size_t n)
{
    p->body_bytes += n;
    if (p->cb) {
        int r = p->cb(p->cb_ud, d, n);
        return r < 0 ? r : 0;
    }
    int r = es_buf_append(&p->body, d, n);
    return r == -EMSGSIZE ? ES_HTTP_E_BODY_TOO_LARGE : r;
}

/* One byte of chunk framing (size line, CRLF after data, trailers). */
static int chunk_byte(es_http_parser *p, unsigned char c)
{
    switch (p->state) {
    case ST_CHUNK_SIZE:
    case ST_CHUNK_BWS:
    case ST_CHUNK_EXT:
    case ST_CHUNK_LF:
        if (++p->line_len > p->lim.max_chunk_line)
            return ES_HTTP_E_CHUNK_LINE_TOO_LONG;
        break;
    case ST_TRAILER_BOL:
    case ST_TRAILER:
    case ST_TRAILER_LF:
    case ST_END_LF:
        if (++p->line_len > p->lim.max_header_bytes)
            return ES_HTTP_E_HEADER_TOO_LARGE;
        break;
    default:
        break;
    }
    switch (p->state) {
    case ST_CHUNK_SIZE: {
        int h = hexval(c);
        if (h >= 0) {
            if (p->remaining > (UINT64_MAX >> 4))
                return ES_HTTP_E_BAD_CHUNK;
            p->remaining = (p->remaining << 4) | (uint64_t)h;
            p->ndigits++;
            return 0;
        }
        if (p->ndigits == 0)
            return ES_HTTP_E_BAD_CHUNK;
        if (is_ows((char)c))
            enter(p, ST_CHUNK_BWS);
        else if (c == ';')
            enter(p, ST_CHUNK_EXT);
        else if (c == '\r')
            enter(p, ST_CHUNK_LF);
        else
            return ES_HTTP_E_BAD_CHUNK;
        return 0;
    }
    case ST_CHUNK_BWS:
        if (c == ';')
            enter(p, ST_CHUNK_EXT);
        else if (c == '\r')
            enter(p, ST_CHUNK_LF);
        else if (!is_ows((char)c))
            return ES_HTTP_E_BAD_CHUNK;
        return 0;
    case ST_CHUNK_EXT:
        if (c == '\r')
            enter(p, ST_CHUNK_LF);
        else if (!is_field_char(c))
            return ES_HTTP_E_BAD_CHUNK;
        return 0;
    case ST_CHUNK_LF:
        if (c != '\n')
            return ES_HTTP_E_BAD_CHUNK;
        if (p->remaining == 0) {
            p->line_len = 0;
            enter(p, ST_TRAILER_BOL);
            return 0;
        }
        if (p->remaining > p->lim.max_body || p->body_bytes + p->remaining > p->lim.max_body)
            return ES_HTTP_E_BODY_TOO_LARGE;
        enter(p, ST_CHUNK_DATA);
        return 0;
    case ST_CHUNK_CR:
        if (c != '\r')
            return ES_HTTP_E_BAD_CHUNK;
        enter(p, ST_CHUNK_CRLF);
        return 0;
    case ST_CHUNK_CRLF:
        if (c != '\n')
            return ES_HTTP_E_BAD_CHUNK;
        p->line_len = 0;
        p->ndigits = 0;
        p->remaining = 0;
        enter(p, ST_CHUNK_SIZE);
        return 0;
    case ST_TRAILER_BOL:
        if (c == '\r') {
            enter(p, ST_END_LF);
            return 0;
        }
        if (c == ' ' || c == '\t' || c == ':' || !is_tchar(c))
            return ES_HTTP_E_BAD_HEADER;
        if (++p->ntrailers > p->lim.max_headers)
            return ES_HTTP_E_TOO_MANY_HEADERS;
        enter(p, ST_TRAILER);
        return 0;
    case ST_TRAILER:
        if (c == '\r')
            enter(p, ST_TRAILER_LF);
        else if (!is_field_char(c) && c != ':')
            return ES_HTTP_E_BAD_HEADER;
        return 0;
    case ST_TRAILER_LF:
        if (c != '\n')
            return ES_HTTP_E_BAD_HEADER;
        enter(p, ST_TRAILER_BOL);
        return 0;
    case ST_END_LF:
        if (c != '\n')
            return ES_HTTP_E_BAD_HEADER;
        enter(p, ST_DONE);
        return 0;
    default:
        return ES_HTTP_E_BAD_CHUNK;
    }
}

int es_http_parser_feed(es_http_parser *p, const char *data, size_t len, size_t *consumed)
{
    size_t off = 0;
    int rc = ES_HTTP_NEED_MORE;
    if (p->err) {
        *consumed = 0;
        return p->err;
    }
    for (;;) {
        if (p->state == ST_DONE) {
            rc = ES_HTTP_DONE;
            break;
        }
        if (off == len)
            break;
        if (p->state == ST_HEAD) {
            rc = head_bytes(p, data, len, &off);
            if (rc != 0)
                break;
            continue;
        }
        if (p->state == ST_BODY_LEN || p->state == ST_CHUNK_DATA) {
            size_t n = len - off;
            if ((uint64_t)n > p->remaining)
                n = (size_t)p->remaining;
            rc = deliver(p, data + off, n);
            if (rc < 0)
                break;
            off += n;
            p->remaining -= n;
            if (p->remaining == 0)
                enter(p, p->state == ST_BODY_LEN ? ST_DONE : ST_CHUNK_CR);
            continue;
        }
        if (p->state == ST_BODY_EOF) {
            rc = deliver(p, data + off, len - off);
            if (rc < 0)
                break;
            off = len;
            continue;
        }
        rc = chunk_byte(p, (unsigned char)data[off]);
        if (rc < 0)
            break;
        off++;
    }
    if (off)
        p->started = true;
    *consumed = off;
    if (rc < 0)
        p->err = rc;
    return rc;
}

int es_http_parser_eof(es_http_parser *p)
{
    if (p->err)
        return p->err;
    if (p->state == ST_DONE)
        return ES_HTTP_DONE;
    if (p->state == ST_BODY_EOF) {
        enter(p, ST_DONE);
        return ES_HTTP_DONE;
    }
    if (p->state == ST_HEAD && !p->started)
        return 0;
    p->err = ES_HTTP_E_TRUNCATED;
    return p->err;
}

/* ---- accessors ---- */

const char *es_http_parser_method(const es_http_parser *p)
{
    return p->method;
}

const char *es_http_parser_target(const es_http_parser *p)
{
    return p->target;
}

int es_http_parser_status(const es_http_parser *p)
{
    return p->status;
}

const char *es_http_parser_reason(const es_http_parser *p)
{
    return p->reason;
}

int es_http_parser_version_minor(const es_http_parser *p)
{
    return p->minor;
}

size_t es_http_parser_header_count(const es_http_parser *p)
{
    return p->nhdrs;
}

bool es_http_parser_header_at(const es_http_parser *p, size_t i, const char **name,
                              const char **value)
{
    if (i >= p->nhdrs)
        return false;
    *name = p->hdrs[i].name;
    *value = p->hdrs[i].value;
    return true;
}

const char *es_http_parser_header_n(const es_http_parser *p, const char *name, size_t n)
{
    hknown id = known_name(name, n);
    if (id != HK_NONE)
        return p->known[id] ? p->hdrs[p->known[id] - 1].value : NULL;
    for (size_t i = 0; i < p->nhdrs; i++)
        if (p->hdrs[i].name_len == n && strncasecmp(p->hdrs[i].name, name, n) == 0)
            return p->hdrs[i].value;
    return NULL;
}

bool es_http_parser_keep_alive(const es_http_parser *p)
{
    return p->keep_alive;
}

bool es_http_parser_expect_continue(const es_http_parser *p)
{
    return p->expect_continue;
}

bool es_http_parser_chunked(const es_http_parser *p)
{
    return p->chunked;
}

int64_t es_http_parser_content_length(const es_http_parser *p)
{
    return p->content_length;
}

uint64_t es_http_parser_body_bytes(const es_http_parser *p)
{
    return p->body_bytes;
}

const char *es_http_parser_body(const es_http_parser *p, size_t *len)
{
    if (len)
        *len = p->body.len;
    return es_buf_cstr(&p->body);
}

/* ---- serializer ---- */

static bool safe_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

int es_http_write_request_line(es_buf *out, const char *method, const char *target)
{
    if (!safe_token(method) || !*target)
        return -EINVAL;
    for (const char *c = target; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return -EINVAL;
    return es_buf_printf(out, "%s %s HTTP/1.1\r\n", method, target);
}

int es_http_write_status_line(es_buf *out, int status, const char *reason)
{
    if (status < 100 || status > 999)
        return -EINVAL;
    if (!reason)
        reason = es_http_reason_phrase(status);
    size_t rl = 0;
    for (; reason[rl]; rl++)
        if (!is_field_char((unsigned char)reason[rl]))
            return -EINVAL;
    /* no printf, one reservation: a server writes one per answer */
    int r = 0;
    char *d = es_buf_reserve(out, 13 + rl + 2, &r);
    if (!d)
        return r;
    memcpy(d, "HTTP/1.1 ", 9);
    d[9] = (char)('0' + status / 100);
    d[10] = (char)('0' + status / 10 % 10);
    d[11] = (char)('0' + status % 10);
    d[12] = ' ';
    memcpy(d + 13, reason, rl);
    memcpy(d + 13 + rl, "\r\n", 2);
    es_buf_commit(out, 13 + rl + 2);
    return 0;
}

/* Checked and measured in one pass each, written through one reservation:
 * whole or not at all (a server writes a few per answer; issue 22). The
 * value measured by strlen and checked 8 bytes a step (value_ok, as the
 * parser checks a value): a table look-up a byte made this 413 instructions
 * a call for an answer's x-amzn-RequestId and Content-Type. */
int es_http_write_header(es_buf *out, const char *name, const char *value)
{
    size_t nl = 0, vl = strlen(value);
    for (; name[nl]; nl++)
        if (!is_tchar((unsigned char)name[nl]))
            return -EINVAL;
    if (!nl)
        return -EINVAL;
    if (!value_ok(value, value + vl))
        return -EINVAL;
    if (vl > SIZE_MAX - 4 - nl)
        return -EMSGSIZE;
    int r = 0;
    char *d = es_buf_reserve(out, nl + vl + 4, &r);
    if (!d)
        return r;
    memcpy(d, name, nl);
    memcpy(d + nl, ": ", 2);
    memcpy(d + nl + 2, value, vl);
    memcpy(d + nl + 2 + vl, "\r\n", 2);
    es_buf_commit(out, nl + vl + 4);
    return 0;
}

int es_http_write_body(es_buf *out, const char *content_type, const void *body, size_t len)
{
    int r = 0;
    if (content_type && (r = es_http_write_header(out, "Content-Type", content_type)) < 0)
        return r;
    if ((r = es_buf_printf(out, "Content-Length: %zu\r\n\r\n", len)) < 0)
        return r;
    return es_buf_append(out, body, len);
}

int es_http_write_end_head(es_buf *out)
{
    return es_buf_append(out, "\r\n", 2);
}

int es_http_write_chunk(es_buf *out, const void *data, size_t len)
{
    if (len == 0)
        return es_buf_append(out, "0\r\n\r\n", 5);
    int r = es_buf_printf(out, "%zx\r\n", len);
    if (r < 0)
        return r;
    if ((r = es_buf_append(out, data, len)) < 0)
        return r;
    return es_buf_append(out, "\r\n", 2);
}

const char *es_http_reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}
