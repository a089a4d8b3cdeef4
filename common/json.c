#include "common/json.h"
#include "common/alloc.h"
#include "common/secure.h"

#include <errno.h>
#include <math.h>
#include <malloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

const es_json_limits es_json_default_limits = {
    .max_bytes = 1u << 20,
    .max_depth = 32,
    .max_string = 256u << 10,
    .max_values = 100000,
};

/* ---- tree building through yajl's callbacks ---- */

#define STACK_MAX 128 /* hard ceiling on depth, whatever the limits say */

typedef struct builder {
    const es_json_limits *lim;
    es_json *root;
    es_json *stack[STACK_MAX];
    size_t depth;
    size_t values;
    char *pending_key; /* key waiting for its value */
    int err;
} builder;

static void node_free(es_json *j, bool secret);

static void free_str(char *s, size_t len, bool secret)
{
    if (!s)
        return;
    if (secret)
        es_wipe(s, len);
    es_free(s);
}

static void node_free(es_json *j, bool secret)
{
    if (!j)
        return;
    switch (j->type) {
    case ES_JSON_STRING:
        free_str(j->u.string.s, j->u.string.len, secret);
        break;
    case ES_JSON_NUMBER:
        free_str(j->u.number.text, strlen(j->u.number.text), secret);
        break;
    case ES_JSON_ARRAY:
        for (size_t i = 0; i < j->u.array.n; i++)
            node_free(j->u.array.items[i], secret);
        es_free(j->u.array.items);
        break;
    case ES_JSON_OBJECT:
        for (size_t i = 0; i < j->u.object.n; i++) {
            free_str(j->u.object.keys[i], strlen(j->u.object.keys[i]), secret);
            node_free(j->u.object.values[i], secret);
        }
        es_free(j->u.object.keys);
        es_free(j->u.object.values);
        break;
    default:
        break;
    }
    es_free(j);
}

void es_json_free(es_json *j)
{
    node_free(j, false);
}

void es_json_free_secret(es_json *j)
{
    node_free(j, true);
}

static int fail(builder *b, int err)
{
    if (!b->err)
        b->err = err;
    return 0; /* tells yajl to stop */
}

/* Attaches a new node to the current container (or makes it the root). */
static int attach(builder *b, es_json *n)
{
    if (++b->values > b->lim->max_values) {
        node_free(n, true);
        return fail(b, ES_JSON_E_TOO_MANY_VALUES);
    }
    if (b->depth == 0) {
        b->root = n;
        return 1;
    }
    es_json *p = b->stack[b->depth - 1];
    if (p->type == ES_JSON_ARRAY) {
        es_json **items = es_realloc(p->u.array.items, (p->u.array.n + 1) * sizeof *items);
        if (!items) {
            node_free(n, true);
            return fail(b, ES_JSON_E_NOMEM);
        }
        items[p->u.array.n++] = n;
        p->u.array.items = items;
        return 1;
    }
    char **keys = es_realloc(p->u.object.keys, (p->u.object.n + 1) * sizeof *keys);
    if (!keys) {
        node_free(n, true);
        return fail(b, ES_JSON_E_NOMEM);
    }
    p->u.object.keys = keys;
    es_json **vals = es_realloc(p->u.object.values, (p->u.object.n + 1) * sizeof *vals);
    if (!vals) {
        node_free(n, true);
        return fail(b, ES_JSON_E_NOMEM);
    }
    p->u.object.values = vals;
    keys[p->u.object.n] = b->pending_key;
    vals[p->u.object.n] = n;
    p->u.object.n++;
    b->pending_key = NULL;
    return 1;
}

static es_json *new_node(builder *b, es_json_type t)
{
    es_json *n = es_calloc(1, sizeof *n);
    if (!n)
        fail(b, ES_JSON_E_NOMEM);
    else
        n->type = t;
    return n;
}

static int cb_null(void *ctx)
{
    builder *b = ctx;
    es_json *n = new_node(b, ES_JSON_NULL);
    return n ? attach(b, n) : 0;
}

static int cb_bool(void *ctx, int v)
{
    builder *b = ctx;
    es_json *n = new_node(b, ES_JSON_BOOL);
    if (!n)
        return 0;
    n->u.boolean = v != 0;
    return attach(b, n);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    builder *b = ctx;
    if (len > b->lim->max_string)
        return fail(b, ES_JSON_E_STRING_TOO_LONG);
    es_json *n = new_node(b, ES_JSON_NUMBER);
    if (!n)
        return 0;
    n->u.number.text = es_strndup(s, len);
    if (!n->u.number.text) {
        es_free(n);
        return fail(b, ES_JSON_E_NOMEM);
    }
    return attach(b, n);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    builder *b = ctx;
    if (len > b->lim->max_string)
        return fail(b, ES_JSON_E_STRING_TOO_LONG);
    es_json *n = new_node(b, ES_JSON_STRING);
    if (!n)
        return 0;
    n->u.string.s = es_malloc(len + 1);
    if (!n->u.string.s) {
        es_free(n);
        return fail(b, ES_JSON_E_NOMEM);
    }
    memcpy(n->u.string.s, s, len);
    n->u.string.s[len] = '\0';
    n->u.string.len = len;
    return attach(b, n);
}

static int open_container(builder *b, es_json_type t)
{
    if (b->depth >= b->lim->max_depth || b->depth >= STACK_MAX)
        return fail(b, ES_JSON_E_TOO_DEEP);
    es_json *n = new_node(b, t);
    if (!n)
        return 0;
    if (!attach(b, n))
        return 0;
    b->stack[b->depth++] = n;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, ES_JSON_OBJECT);
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
    builder *b = ctx;
    if (len > b->lim->max_string)
        return fail(b, ES_JSON_E_STRING_TOO_LONG);
    if (memchr(s, '\0', len))
        return fail(b, ES_JSON_E_SYNTAX); /* keys are C strings for us */
    b->pending_key = es_strndup((const char *)s, len);
    return b->pending_key ? 1 : fail(b, ES_JSON_E_NOMEM);
}

static int cb_end(void *ctx)
{
    builder *b = ctx;
    b->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, ES_JSON_ARRAY);
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end,
};

/* yajl's own buffers (its lexer keeps string bytes while it decodes
 * escapes) may hold a secret value: they are wiped before they are freed.
 * yajl does not pass sizes to free, so malloc_usable_size says how much.
 * These go to malloc directly, not through es_malloc: yajl does not check
 * its own allocations (yajl_alloc writes through a NULL), so injected
 * failures must not reach it; it runs out of memory as a process would. */
static void *wipe_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}

static void wipe_free(void *ctx, void *p)
{
    (void)ctx;
    if (p)
        es_wipe(p, malloc_usable_size(p));
    free(p);
}

static void *wipe_realloc(void *ctx, void *p, size_t n)
{
    if (!p)
        return wipe_malloc(ctx, n);
    void *q = malloc(n ? n : 1);
    if (!q)
        return NULL;
    size_t old = malloc_usable_size(p);
    memcpy(q, p, old < n ? old : n);
    wipe_free(ctx, p);
    return q;
}

static yajl_alloc_funcs wiping_alloc = {wipe_malloc, wipe_realloc, wipe_free, NULL};

static const char *err_text(int e)
{
    switch (e) {
    case ES_JSON_E_TOO_BIG:
        return "document too large";
    case ES_JSON_E_TOO_DEEP:
        return "nesting too deep";
    case ES_JSON_E_STRING_TOO_LONG:
        return "string too long";
    case ES_JSON_E_TOO_MANY_VALUES:
        return "too many values";
    case ES_JSON_E_NOMEM:
        return "out of memory";
    default:
        return "syntax error";
    }
}

int es_json_parse(const char *text, size_t len, const es_json_limits *lim, es_json **out, char *err,
                  size_t errlen)
{
    if (!lim)
        lim = &es_json_default_limits;
    builder b = {.lim = lim};
    int ret = 0;
    if (len > lim->max_bytes) {
        ret = ES_JSON_E_TOO_BIG;
        goto out;
    }
    yajl_handle h = yajl_alloc(&callbacks, &wiping_alloc, &b);
    if (!h) {
        ret = ES_JSON_E_NOMEM;
        goto out;
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok || !b.root) {
        ret = b.err ? b.err : ES_JSON_E_SYNTAX;
        if (ret == ES_JSON_E_SYNTAX && err && errlen) {
            /* Offset only: yajl's verbose message quotes the input. */
            snprintf(err, errlen, "invalid JSON near byte %zu", yajl_get_bytes_consumed(h));
            err = NULL;
        }
    }
    yajl_free(h);
out:
    if (ret) {
        /* on error the partial tree hangs from root */
        node_free(b.root, true);
        if (b.pending_key)
            es_free(b.pending_key);
        if (err && errlen)
            snprintf(err, errlen, "%s", err_text(ret));
        return ret;
    }
    *out = b.root;
    if (err && errlen)
        err[0] = '\0';
    return 0;
}

const es_json *es_json_get(const es_json *obj, const char *key)
{
    if (!obj || obj->type != ES_JSON_OBJECT)
        return NULL;
    /* Last one wins, as in most JSON readers (and botocore). */
    for (size_t i = obj->u.object.n; i-- > 0;)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

const char *es_json_as_str(const es_json *j)
{
    return j && j->type == ES_JSON_STRING ? j->u.string.s : NULL;
}

const char *es_json_get_str(const es_json *obj, const char *key)
{
    return es_json_as_str(es_json_get(obj, key));
}

bool es_json_get_bool(const es_json *obj, const char *key, bool *out)
{
    const es_json *j = es_json_get(obj, key);
    if (!j || j->type != ES_JSON_BOOL)
        return false;
    *out = j->u.boolean;
    return true;
}

bool es_json_as_int64(const es_json *j, int64_t *out)
{
    if (!j || j->type != ES_JSON_NUMBER)
        return false;
    const char *s = j->u.number.text;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        /* Allow integral values written with a fraction or exponent (1.0, 1e3),
         * as JSON 1.1 clients sometimes send them. */
        double d = strtod(s, &end);
        if (*end != '\0' || d != d || d < -9.2e18 || d > 9.2e18 || (double)(long long)d != d)
            return false;
        v = (long long)d;
    }
    *out = (int64_t)v;
    return true;
}

bool es_json_get_int64(const es_json *obj, const char *key, int64_t *out)
{
    return es_json_as_int64(es_json_get(obj, key), out);
}

size_t es_json_len(const es_json *j)
{
    if (!j)
        return 0;
    if (j->type == ES_JSON_ARRAY)
        return j->u.array.n;
    if (j->type == ES_JSON_OBJECT)
        return j->u.object.n;
    return 0;
}

const es_json *es_json_at(const es_json *arr, size_t i)
{
    if (!arr || arr->type != ES_JSON_ARRAY || i >= arr->u.array.n)
        return NULL;
    return arr->u.array.items[i];
}

/* ---- writer ---- */

#define LV_OBJECT 1u /* else an array */
#define LV_ITEMS 2u  /* something written in it already */
#define LV_VALUE 4u  /* object: a key was written, its value is due */

static void put(es_jw *w, const char *s, size_t n)
{
    if (w->err)
        return;
    es_buf *b = w->out;
    if (b->data && n <= b->max - b->len && b->len + n < b->cap) {
        /* room already: what es_buf_append does, without its calls */
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        if (b->len + 1 > b->dirty)
            b->dirty = b->len + 1; /* what es_buf_commit keeps (buf.h) */
        return;
    }
    int r = es_buf_append(b, s, n);
    if (r)
        w->err = r;
}

/* Before a value (key = false) or an object's key (key = true): checks the
 * state and writes the separator. false when the writer is in error. */
static bool before(es_jw *w, bool key)
{
    if (w->err)
        return false;
    if (w->depth == 0) {
        if (key || w->done) {
            w->err = -EINVAL; /* a key outside an object, a second document */
            return false;
        }
        return true;
    }
    unsigned char *lv = &w->level[w->depth - 1];
    if (*lv & LV_OBJECT) {
        if (*lv & LV_VALUE) {
            if (key) {
                /* defensive: es_jw_strn asks key_due, which says a value
                 * is due here, so a string is written as the value */
                w->err = -EINVAL;
                return false;
            }
            put(w, ":", 1);
            *lv &= (unsigned char)~LV_VALUE;
            return !w->err;
        }
        if (!key) {
            w->err = -EINVAL; /* keys must be strings */
            return false;
        }
        if (*lv & LV_ITEMS)
            put(w, ",", 1);
        *lv |= LV_ITEMS | LV_VALUE;
        return !w->err;
    }
    if (*lv & LV_ITEMS)
        put(w, ",", 1);
    *lv |= LV_ITEMS;
    return !w->err;
}

/* After a complete value at the top level. */
static void after(es_jw *w)
{
    if (w->depth == 0)
        w->done = true;
}

/* True when an object of w waits for a key (a string written now is one). */
static bool key_due(const es_jw *w)
{
    if (w->depth == 0)
        return false;
    unsigned char lv = w->level[w->depth - 1];
    return (lv & LV_OBJECT) && !(lv & LV_VALUE);
}

void es_jw_init(es_jw *w, es_buf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

static void open_level(es_jw *w, bool object)
{
    if (!before(w, false))
        return;
    if (w->depth >= ES_JW_DEPTH_MAX) {
        w->err = -EINVAL;
        return;
    }
    put(w, object ? "{" : "[", 1);
    w->level[w->depth++] = object ? LV_OBJECT : 0;
}

static void close_level(es_jw *w, bool object)
{
    if (w->err)
        return;
    if (w->depth == 0 || ((w->level[w->depth - 1] & LV_OBJECT) != 0) != object ||
        (w->level[w->depth - 1] & LV_VALUE)) {
        w->err = -EINVAL; /* nothing open, the other kind, or a key without value */
        return;
    }
    w->depth--;
    put(w, object ? "}" : "]", 1);
    after(w);
}

void es_jw_obj(es_jw *w)
{
    open_level(w, true);
}

void es_jw_obj_end(es_jw *w)
{
    close_level(w, true);
}

void es_jw_arr(es_jw *w)
{
    open_level(w, false);
}

void es_jw_arr_end(es_jw *w)
{
    close_level(w, false);
}

/* Length of the UTF-8 sequence starting at s[0..n) as yajl's check
 * (yajl_string_validate_utf8) accepts it - lead bytes 110xxxxx + 1,
 * 1110xxxx + 2, 11110xxx + 3 continuation bytes 10xxxxxx -, 0 when invalid.
 * s[0] >= 0x80. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t more = (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 0;
    if (!more || more > n - 1)
        return 0;
    for (size_t k = 1; k <= more; k++)
        if ((s[k] >> 6) != 0x2)
            return 0;
    return more + 1;
}

/* Bytes copied as they are: printable ASCII but '"' and '\\' (one table
 * look-up per byte instead of four comparisons: strings are most of an answer). */
static const unsigned char plain_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xa0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xb0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xc0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xd0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xe0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xf0 */
};

/* Are the 8 bytes at p all plain (plain_byte)? Word at a time: no byte with
 * the high bit, below 0x20, '"' or '\\' (the exact "has a zero byte" and "has
 * a byte less than" tests of bit-twiddling lore). A GetParameters answer is
 * 2.3 KB of strings, and the table look-up per byte was most of its writing. */
static bool word_plain(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t x, q, b;
    memcpy(&x, p, sizeof x);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    uint64_t special = x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b);
    return (special & highs) == 0;
}

/* The quoted, escaped string in one pass: runs of plain bytes copied at
 * once, escapes as yajl wrote them, invalid UTF-8 an error (-EINVAL; what
 * was written before stays, as with yajl: the writer's error is sticky). */
static void put_string(es_jw *w, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)str;
    int err = 0;
    /* the common case needs n + 2 bytes; make room for that much up front */
    if (w->err)
        return;
    if ((err = es_buf_expect(w->out, n + 2)) < 0) {
        w->err = err;
        return;
    }
    size_t i = 0;
    while (i + 8 <= n && word_plain(s + i))
        i += 8;
    while (i < n && plain_byte[s[i]])
        i++;
    if (i == n) {
        /* all plain (names, ARNs, most values): one copy into the room
         * es_buf_expect made, as put does */
        es_buf *b = w->out;
        char *d = b->data + b->len;
        d[0] = '"';
        memcpy(d + 1, str, n);
        d[n + 1] = '"';
        b->len += n + 2;
        b->data[b->len] = '\0';
        if (b->len + 1 > b->dirty)
            b->dirty = b->len + 1;
        return;
    }
    put(w, "\"", 1);
    size_t run = 0;
    for (i = 0; i < n;) {
        if (i + 8 <= n && word_plain(s + i)) {
            i += 8;
            continue;
        }
        unsigned char c = s[i];
        if (plain_byte[c]) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(s + i, n - i);
            if (!l) {
                if (!w->err)
                    w->err = -EINVAL;
                return;
            }
            i += l;
            continue;
        }
        char u[6];
        const char *esc = u;
        size_t el = 2;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            el = 6;
        }
        put(w, str + run, i - run);
        put(w, esc, el);
        run = ++i;
    }
    put(w, str + run, n - run);
    put(w, "\"", 1);
}

/* Plain (nothing to escape: plain_byte) throughout? */
static bool all_plain(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n && word_plain(s + i))
        i += 8;
    while (i < n && plain_byte[s[i]])
        i++;
    return i == n;
}

/* Room for n more bytes in w's buffer without growing it (what put checks),
 * or NULL: the caller takes the general path, which grows or fails. */
static char *room(es_jw *w, size_t n)
{
    es_buf *b = w->out;
    if (b->data && n <= b->max - b->len && b->len + n < b->cap)
        return b->data + b->len;
    return NULL;
}

/* The bytes end..: written into room() by the caller; ends the string and
 * keeps the dirty mark (as put). */
static void commit_to(es_jw *w, const char *end)
{
    es_buf *b = w->out;
    b->len = (size_t)(end - b->data);
    b->data[b->len] = '\0';
    if (b->len + 1 > b->dirty)
        b->dirty = b->len + 1; /* what es_buf_commit keeps (buf.h) */
}

/* Inside a container, the separator a string or number written now takes
 * (',' before an object's next key or an array's next item, ':' before a
 * key's value, none first) and the level's state after it, decided without
 * before()'s calls: an answer's keys and values are most of the writer's
 * calls (a GetParameters of 10 makes about 120). false when before() must
 * decide: the top level, an error, or a non-string where a key is due. */
static bool separator(const es_jw *w, bool is_string, char *sep, unsigned char *next)
{
    if (w->err || w->depth == 0)
        return false;
    unsigned char lv = w->level[w->depth - 1];
    if (!(lv & LV_OBJECT)) {
        *sep = (lv & LV_ITEMS) ? ',' : 0;
        *next = lv | LV_ITEMS;
    } else if (lv & LV_VALUE) {
        *sep = ':';
        *next = lv & (unsigned char)~LV_VALUE;
    } else if (is_string) {
        *sep = (lv & LV_ITEMS) ? ',' : 0;
        *next = lv | LV_ITEMS | LV_VALUE;
    } else {
        return false; /* a key must be a string: before() says so */
    }
    return true;
}

/* The quoted string with its separator in one copy when it is plain and
 * fits the buffer's room; false (nothing written) otherwise. */
static bool put_plain_fast(es_jw *w, const char *s, size_t n)
{
    char sep;
    unsigned char next;
    if (!separator(w, true, &sep, &next) || n > SIZE_MAX - 3 ||
        !all_plain((const unsigned char *)s, n))
        return false;
    char *d = room(w, n + 3);
    if (!d)
        return false;
    if (sep)
        *d++ = sep;
    *d++ = '"';
    memcpy(d, s, n);
    d += n;
    *d++ = '"';
    commit_to(w, d);
    w->level[w->depth - 1] = next;
    return true;
}

void es_jw_strn(es_jw *w, const char *s, size_t n)
{
    if (put_plain_fast(w, s, n))
        return; /* inside a container: no after() */
    bool key = key_due(w);
    if (!before(w, key))
        return;
    put_string(w, s, n);
    if (!key)
        after(w);
}

void es_jw_str(es_jw *w, const char *s)
{
    if (!s) {
        es_jw_null(w);
        return;
    }
    es_jw_strn(w, s, strlen(s));
}

void es_jw_key(es_jw *w, const char *k)
{
    es_jw_str(w, k);
}

/* A number's text, as given. */
static void put_number(es_jw *w, const char *text, size_t n)
{
    char sep;
    unsigned char next;
    char *d;
    if (separator(w, false, &sep, &next) && (d = room(w, n + 1))) {
        if (sep)
            *d++ = sep;
        memcpy(d, text, n);
        commit_to(w, d + n);
        w->level[w->depth - 1] = next;
        return;
    }
    if (!before(w, false))
        return;
    put(w, text, n);
    after(w);
}

void es_jw_int(es_jw *w, int64_t v)
{
    char tmp[24], out[24];
    size_t t = 0, j = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[t++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[j++] = '-';
    while (t)
        out[j++] = tmp[--t];
    put_number(w, out, j);
}

/* "%.3f" of v without printf (timestamps: one or two per item written) when
 * that is exact: v in [0, 2^40) and its thousandths not within 1e-6 of a
 * rounding tie (where the product's rounding error could matter); -1 when
 * printf must do it. */
static int fmt_millis(double v, char *out, size_t n)
{
    if (!(v >= 0 && v < 1099511627776.0) || n < 32)
        return -1;
    uint64_t ip = (uint64_t)v;
    double f = (v - (double)ip) * 1000.0;              /* v - ip is exact */
    double fl = (double)(uint64_t)f, d = f - fl - 0.5; /* f >= 0: truncation is floor */
    if (d < 1e-6 && d > -1e-6)
        return -1;
    uint64_t ms = (uint64_t)fl + (f - fl > 0.5 ? 1 : 0);
    if (ms == 1000) {
        ip++;
        ms = 0;
    }
    char tmp[24];
    size_t t = 0;
    do {
        tmp[t++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    size_t j = 0;
    while (t)
        out[j++] = tmp[--t];
    out[j++] = '.';
    out[j++] = (char)('0' + ms / 100);
    out[j++] = (char)('0' + ms / 10 % 10);
    out[j++] = (char)('0' + ms % 10);
    out[j] = '\0';
    return (int)j;
}

void es_jw_double(es_jw *w, double v)
{
    /* yajl printed doubles with %.20g; epoch timestamps look better with
     * millisecond precision, as AWS writes them. JSON has no NaN or
     * infinity: such a value is an error of the writer, not text. */
    if (!isfinite(v)) {
        if (!w->err)
            w->err = -EINVAL;
        return;
    }
    char num[64];
    int n = fmt_millis(v, num, sizeof num);
    if (n < 0)
        n = snprintf(num, sizeof num, "%.3f", v);
    if (n <= 0 || (size_t)n >= sizeof num) {
        if (!w->err)
            w->err = -EINVAL;
        return;
    }
    put_number(w, num, (size_t)n);
}

void es_jw_bool(es_jw *w, bool v)
{
    put_number(w, v ? "true" : "false", v ? 4 : 5);
}

void es_jw_null(es_jw *w)
{
    put_number(w, "null", 4);
}

void es_jw_value(es_jw *w, const es_json *j)
{
    if (w->err)
        return;
    switch (j->type) {
    case ES_JSON_NULL:
        es_jw_null(w);
        break;
    case ES_JSON_BOOL:
        es_jw_bool(w, j->u.boolean);
        break;
    case ES_JSON_NUMBER:
        put_number(w, j->u.number.text, strlen(j->u.number.text));
        break;
    case ES_JSON_STRING:
        es_jw_strn(w, j->u.string.s, j->u.string.len);
        break;
    case ES_JSON_ARRAY:
        es_jw_arr(w);
        for (size_t i = 0; i < j->u.array.n; i++)
            es_jw_value(w, j->u.array.items[i]);
        es_jw_arr_end(w);
        break;
    case ES_JSON_OBJECT:
        es_jw_obj(w);
        for (size_t i = 0; i < j->u.object.n; i++) {
            es_jw_key(w, j->u.object.keys[i]);
            es_jw_value(w, j->u.object.values[i]);
        }
        es_jw_obj_end(w);
        break;
    }
}

void es_jw_kstr(es_jw *w, const char *k, const char *s)
{
    es_jw_key(w, k);
    es_jw_str(w, s);
}

void es_jw_kint(es_jw *w, const char *k, int64_t v)
{
    es_jw_key(w, k);
    es_jw_int(w, v);
}

void es_jw_kbool(es_jw *w, const char *k, bool v)
{
    es_jw_key(w, k);
    es_jw_bool(w, v);
}

int es_jw_finish(es_jw *w)
{
    if (!w->err && w->depth)
        w->err = -EINVAL; /* left open */
    return w->err;
}
