#include "common/json.h"
#include "common/alloc.h"
#include "common/secure.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <malloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

const es_json_limits es_json_default_limits = {
    .max_bytes = 1u << 20,
    .max_depth = 32,
    .max_string = 256u << 10,
    .max_values = 100000,
};

/* ---- the tree's memory: one arena per parse ----
 *
 * A parsed document lives in one arena. Its first block comes with the
 * document (which holds the root node) in one allocation sized from the
 * input; more blocks, each at least twice the last, only when that one is
 * full. Nodes and pointer arrays are taken from a block's start upwards,
 * strings from its end downwards, so that neither pays for the other's
 * alignment. Freeing is one free per block, and es_json_free_secret wipes
 * each block's used bytes (both ends) in one go: a request body parsed to be
 * answered made about forty allocations, a node and a string each, every
 * string wiped on its own (issue 22). */

typedef struct json_block json_block;
struct json_block {
    json_block *prev;    /* the block filled before this one */
    unsigned char *data; /* cap bytes, aligned for pointers */
    size_t lo;           /* data[0..lo): nodes and arrays */
    size_t hi;           /* data[hi..cap): strings */
    size_t cap;
};

/* The root node first: es_json_free(root) finds its document. */
typedef struct json_doc {
    es_json root;
    json_block *cur;  /* where allocations come from */
    json_block first; /* its data follows the document */
} json_doc;

#define DOC_FIRST_MIN 256u
#define DOC_FIRST_MAX (64u << 10)
#define BLOCK_GROWTH_MAX (1u << 20) /* later blocks stop doubling here */
#define PTR_ALIGN(n) (((n) + 7u) & ~(size_t)7u)

/* The first block's size: a request body's tree (nodes of 32 bytes, its
 * strings, the arrays) takes about three times the text of a small
 * document; a larger one grows into more blocks. */
static size_t first_block_size(size_t len)
{
    size_t n = len < (DOC_FIRST_MAX - 128) / 3 ? len * 3 + 128 : DOC_FIRST_MAX;
    return PTR_ALIGN(n < DOC_FIRST_MIN ? DOC_FIRST_MIN : n);
}

static json_doc *doc_new(size_t len)
{
    size_t cap = first_block_size(len);
    json_doc *d = es_malloc(sizeof *d + cap);
    if (!d)
        return NULL;
    memset(&d->root, 0, sizeof d->root);
    d->first = (json_block){.data = (unsigned char *)(d + 1), .lo = 0, .hi = cap, .cap = cap};
    d->cur = &d->first;
    return d;
}

/* A new current block with at least need free bytes; NULL when out of memory
 * (the document stays as it was). */
static json_block *doc_grow(json_doc *d, size_t need)
{
    size_t cap = d->cur->cap < BLOCK_GROWTH_MAX / 2 ? d->cur->cap * 2 : BLOCK_GROWTH_MAX;
    if (cap < need)
        cap = PTR_ALIGN(need);
    if (cap > SIZE_MAX - sizeof(json_block) || cap < need)
        return NULL;
    json_block *b = es_malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    *b = (json_block){
        .prev = d->cur, .data = (unsigned char *)(b + 1), .lo = 0, .hi = cap, .cap = cap};
    d->cur = b;
    return b;
}

/* n bytes aligned for pointers (a node, an array). */
static void *doc_take_low(json_doc *d, size_t n)
{
    json_block *b = d->cur;
    if (n > SIZE_MAX - 7)
        return NULL;
    n = PTR_ALIGN(n);
    if (n > b->hi - b->lo && !(b = doc_grow(d, n)))
        return NULL;
    void *p = b->data + b->lo;
    b->lo += n;
    return p;
}

/* n bytes for a string (no alignment). */
static char *doc_take_high(json_doc *d, size_t n)
{
    json_block *b = d->cur;
    if (n > b->hi - b->lo && !(b = doc_grow(d, n)))
        return NULL;
    b->hi -= n;
    return (char *)b->data + b->hi;
}

/* Every byte of the document that was handed out, in one wipe a block. */
static void doc_wipe(json_doc *d)
{
    for (json_block *b = d->cur; b; b = b->prev) {
        es_wipe(b->data, b->lo);
        es_wipe(b->data + b->hi, b->cap - b->hi);
    }
}

static void doc_free(json_doc *d)
{
    json_block *b = d->cur;
    while (b != &d->first) {
        json_block *prev = b->prev;
        es_free(b);
        b = prev;
    }
    es_free(d);
}

void es_json_free(es_json *j)
{
    if (j)
        doc_free((json_doc *)j);
}

void es_json_wipe(es_json *j)
{
    if (j)
        doc_wipe((json_doc *)j);
}

void es_json_free_secret(es_json *j)
{
    if (!j)
        return;
    doc_wipe((json_doc *)j);
    doc_free((json_doc *)j);
}

/* ---- tree building through yajl's callbacks ---- */

#define STACK_MAX 128 /* hard ceiling on depth, whatever the limits say */
#define SLOTS_LOCAL 64

/* A child of an open container, not yet in the tree: an object's children
 * are its keys and values, in turn. */
typedef union slot {
    es_json *v;
    char *k;
} slot;

/* The open containers' children wait in slots (a stack shared by all
 * levels) until their container ends; then they are copied into one array
 * of the right size in the document: nothing reallocated per child. */
typedef struct builder {
    const es_json_limits *lim;
    json_doc *doc;
    bool has_root;
    es_json *stack[STACK_MAX]; /* the open containers */
    size_t first[STACK_MAX];   /* where each one's children start in slots */
    size_t depth;
    size_t values;
    slot *slots; /* local, or es_malloc'ed once more are needed */
    size_t nslots, slots_cap;
    slot local[SLOTS_LOCAL];
    int err;
    yajl_handle h;
    size_t root_end; /* input offset past the top-level container's close */
} builder;

static int fail(builder *b, int err)
{
    if (!b->err)
        b->err = err;
    return 0; /* tells yajl to stop */
}

static int push_slot(builder *b, slot s)
{
    if (b->nslots == b->slots_cap) {
        /* bounded by the limit on values: at most two slots a value */
        size_t cap = b->slots_cap * 2;
        slot *n = b->slots == b->local ? es_malloc(cap * sizeof *n)
                                       : es_realloc(b->slots, cap * sizeof *n);
        if (!n)
            return fail(b, ES_JSON_E_NOMEM);
        if (b->slots == b->local)
            memcpy(n, b->local, sizeof b->local);
        b->slots = n;
        b->slots_cap = cap;
    }
    b->slots[b->nslots++] = s;
    return 1;
}

/* Counts a new node and hands it to its container (the root has none). */
static int attach(builder *b, es_json *n)
{
    if (++b->values > b->lim->max_values)
        return fail(b, ES_JSON_E_TOO_MANY_VALUES);
    if (b->depth == 0)
        return 1;
    return push_slot(b, (slot){.v = n});
}

static es_json *new_node(builder *b, es_json_type t)
{
    es_json *n;
    if (!b->has_root) {
        n = &b->doc->root;
        b->has_root = true;
    } else if (!(n = doc_take_low(b->doc, sizeof *n))) {
        fail(b, ES_JSON_E_NOMEM);
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->type = t;
    return n;
}

/* s[0..len) NUL-terminated in the document. */
static char *copy_str(builder *b, const void *s, size_t len)
{
    char *d = doc_take_high(b->doc, len + 1);
    if (!d) {
        fail(b, ES_JSON_E_NOMEM);
        return NULL;
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
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
    if (!n || !(n->u.number.text = copy_str(b, s, len)))
        return 0;
    return attach(b, n);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    builder *b = ctx;
    if (len > b->lim->max_string)
        return fail(b, ES_JSON_E_STRING_TOO_LONG);
    /* Inside a container, with room in the block for the node and the
     * string and a free slot: the node, its copy and its slot in one go,
     * with one room check. new_node, copy_str, attach and their helpers
     * were six calls and 137 instructions a string; a GetParameters body
     * has one a name (issue 22). The limit on values is checked first
     * here: nothing is taken from the block for a value refused. */
    json_block *blk = b->doc->cur;
    size_t need = PTR_ALIGN(sizeof(es_json));
    if (b->depth && b->nslots < b->slots_cap && len < blk->hi - blk->lo &&
        need <= blk->hi - blk->lo - len - 1) {
        if (++b->values > b->lim->max_values)
            return fail(b, ES_JSON_E_TOO_MANY_VALUES);
        es_json *n = (es_json *)(void *)(blk->data + blk->lo);
        blk->lo += need;
        blk->hi -= len + 1;
        char *d = (char *)blk->data + blk->hi;
        memcpy(d, s, len);
        d[len] = '\0';
        *n = (es_json){.type = ES_JSON_STRING, .u.string = {.s = d, .len = len}};
        b->slots[b->nslots++] = (slot){.v = n};
        return 1;
    }
    es_json *n = new_node(b, ES_JSON_STRING);
    if (!n || !(n->u.string.s = copy_str(b, s, len)))
        return 0;
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
    b->first[b->depth] = b->nslots;
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
    char *k = copy_str(b, s, len);
    return k ? push_slot(b, (slot){.k = k}) : 0;
}

/* The container closed: its children from the slots into its arrays. */
static int cb_end(void *ctx)
{
    builder *b = ctx;
    es_json *n = b->stack[--b->depth];
    if (b->depth == 0)
        b->root_end = yajl_get_bytes_consumed(b->h); /* yajl's offset, live */
    size_t first = b->first[b->depth], count = b->nslots - first;
    const slot *s = b->slots + first;
    b->nslots = first;
    if (!count)
        return 1;
    if (n->type == ES_JSON_ARRAY) {
        es_json **items = doc_take_low(b->doc, count * sizeof *items);
        if (!items)
            return fail(b, ES_JSON_E_NOMEM);
        for (size_t i = 0; i < count; i++)
            items[i] = s[i].v;
        n->u.array.items = items;
        n->u.array.n = count;
        return 1;
    }
    if (count % 2)
        return fail(b, ES_JSON_E_SYNTAX); /* a key without its value: yajl would not */
    size_t pairs = count / 2;
    char **keys = doc_take_low(b->doc, pairs * sizeof *keys);
    es_json **vals = keys ? doc_take_low(b->doc, pairs * sizeof *vals) : NULL;
    if (!vals)
        return fail(b, ES_JSON_E_NOMEM);
    for (size_t i = 0; i < pairs; i++) {
        keys[i] = s[2 * i].k;
        vals[i] = s[2 * i + 1].v;
    }
    n->u.object.keys = keys;
    n->u.object.values = vals;
    n->u.object.n = pairs;
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

/* ---- yajl's own memory ----
 *
 * yajl's buffers (its lexer keeps string bytes while it decodes escapes)
 * may hold a secret value: they are wiped before they are freed. Its
 * handle, lexer, buffer heads and state stack (about 500 bytes: five
 * allocations a parse) come from a scratch area on the parser's stack,
 * wiped once when the parse ends; what does not fit (a decode buffer for
 * long escaped strings) goes to malloc and is wiped when yajl frees it
 * (malloc_usable_size says how much: yajl does not pass sizes to free).
 * Neither goes through es_malloc: yajl does not check its own allocations
 * (yajl_alloc writes through a NULL), so injected failures must not reach
 * it; it runs out of memory as a process would. */

#define SCRATCH_BYTES 1024
#define SCRATCH_HEAD 16 /* a block's size, before it; keeps blocks 16-aligned */

typedef struct scratch {
    size_t used; /* mem[0..used) handed out */
    size_t last; /* offset of the last block's data (0: none) */
    _Alignas(16) unsigned char mem[SCRATCH_BYTES];
} scratch;

static bool in_scratch(const scratch *s, const void *p)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)s->mem;
    return a >= lo && a < lo + SCRATCH_BYTES;
}

static size_t scratch_round(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static void *heap_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

static void heap_free(void *p)
{
    if (p)
        es_wipe(p, malloc_usable_size(p));
    free(p);
}

static void *scratch_malloc(void *ctx, size_t n)
{
    scratch *s = ctx;
    if (n <= SCRATCH_BYTES && SCRATCH_HEAD + scratch_round(n) <= SCRATCH_BYTES - s->used) {
        unsigned char *p = s->mem + s->used + SCRATCH_HEAD;
        memcpy(p - SCRATCH_HEAD, &n, sizeof n);
        s->last = s->used + SCRATCH_HEAD;
        s->used += SCRATCH_HEAD + scratch_round(n);
        return p;
    }
    return heap_malloc(n);
}

static void scratch_free(void *ctx, void *p)
{
    if (!in_scratch(ctx, p))
        heap_free(p); /* scratch blocks are wiped with the scratch */
}

static void *scratch_realloc(void *ctx, void *p, size_t n)
{
    scratch *s = ctx;
    if (!p)
        return scratch_malloc(ctx, n);
    size_t old;
    if (in_scratch(s, p)) {
        memcpy(&old, (unsigned char *)p - SCRATCH_HEAD, sizeof old);
        size_t at = (size_t)((unsigned char *)p - s->mem);
        if (at == s->last && n <= SCRATCH_BYTES && scratch_round(n) <= SCRATCH_BYTES - at) {
            /* the last block grows in place */
            memcpy((unsigned char *)p - SCRATCH_HEAD, &n, sizeof n);
            s->used = at + scratch_round(n);
            return p;
        }
    } else {
        old = malloc_usable_size(p);
    }
    void *q = scratch_malloc(ctx, n);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    scratch_free(ctx, p);
    return q;
}

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
    /* field by field: the open containers' stacks and the local slots
     * (2.5 KiB) are written before they are read, and an initializer
     * zeroed them all at every parse (issue 22) */
    builder b;
    b.lim = lim;
    b.doc = NULL;
    b.has_root = false;
    b.depth = 0;
    b.values = 0;
    b.slots = b.local;
    b.nslots = 0;
    b.slots_cap = SLOTS_LOCAL;
    b.err = 0;
    b.h = NULL;
    b.root_end = SIZE_MAX;
    int ret = 0;
    if (len > lim->max_bytes) {
        ret = ES_JSON_E_TOO_BIG;
        goto out;
    }
    if (!(b.doc = doc_new(len))) {
        ret = ES_JSON_E_NOMEM;
        goto out;
    }
    scratch sc;
    sc.used = sc.last = 0;
    yajl_alloc_funcs af = {scratch_malloc, scratch_realloc, scratch_free, &sc};
    yajl_handle h = yajl_alloc(&callbacks, &af, &b);
    if (!h) {
        es_wipe(sc.mem, sc.used);
        ret = ES_JSON_E_NOMEM;
        goto out;
    }
    b.h = h;
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    /* A top-level array or object that closed, followed by nothing or
     * whitespace only, is a complete document: all yajl_complete_parse
     * would do is lex one more " " to its end. That end-of-input token made
     * yajl's lexer allocate its 2 KiB buffer (to keep the zero bytes left),
     * which heap_free then wiped whole: 2.8 K of the parse's 10.5 K
     * instructions (issue 22). Anything else after the close (yajl_parse
     * keeps a token cut by the end of input, "[] 1", for that call to
     * judge), a scalar at the top (a number ends only there) or an open
     * container still takes yajl_complete_parse's word. */
    bool closed = st == yajl_status_ok && b.has_root && b.depth == 0 && !b.err &&
                  (b.doc->root.type == ES_JSON_OBJECT || b.doc->root.type == ES_JSON_ARRAY) &&
                  b.root_end <= len;
    for (size_t i = closed ? b.root_end : len; i < len; i++) {
        char c = text[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            closed = false;
            break;
        }
    }
    if (st == yajl_status_ok && !closed)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok || !b.has_root || b.depth) {
        ret = b.err ? b.err : ES_JSON_E_SYNTAX;
        if (ret == ES_JSON_E_SYNTAX && err && errlen) {
            /* Offset only: yajl's verbose message quotes the input. */
            snprintf(err, errlen, "invalid JSON near byte %zu", yajl_get_bytes_consumed(h));
            err = NULL;
        }
    }
    yajl_free(h);
    es_wipe(sc.mem, sc.used);
out:
    if (b.slots != b.local)
        es_free(b.slots); /* pointers only */
    if (ret) {
        /* a partial tree may hold a secret */
        if (b.doc) {
            doc_wipe(b.doc);
            doc_free(b.doc);
        }
        if (err && errlen)
            snprintf(err, errlen, "%s", err_text(ret));
        return ret;
    }
    *out = &b.doc->root;
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
        es_buf_mark_dirty(b, b->len + 1); /* what es_buf_commit keeps (buf.h) */
        return;
    }
    int r = es_buf_append(b, s, n);
    if (r)
        w->err = r;
}

/* One byte (a brace, a bracket, a separator, a quote) stored, not copied:
 * put's memcpy call for one byte was most of its 55 instructions, and an
 * answer writes about 45 of them (issue 22). */
static void put_byte(es_jw *w, char c)
{
    if (w->err)
        return;
    es_buf *b = w->out;
    if (b->data && b->len < b->max && b->len + 1 < b->cap) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        es_buf_mark_dirty(b, b->len + 1);
        return;
    }
    put(w, &c, 1);
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
            put_byte(w, ':');
            *lv &= (unsigned char)~LV_VALUE;
            return !w->err;
        }
        if (!key) {
            w->err = -EINVAL; /* keys must be strings */
            return false;
        }
        if (*lv & LV_ITEMS)
            put_byte(w, ',');
        *lv |= LV_ITEMS | LV_VALUE;
        return !w->err;
    }
    if (*lv & LV_ITEMS)
        put_byte(w, ',');
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

static bool separator(const es_jw *w, bool is_string, char *sep, unsigned char *next);
static char *room(es_jw *w, size_t n);
static void commit_to(es_jw *w, const char *end);

static void open_level(es_jw *w, bool object)
{
    char sep, *d;
    unsigned char next;
    if (separator(w, false, &sep, &next) && w->depth < ES_JW_DEPTH_MAX && (d = room(w, 2))) {
        /* inside a container with room: the separator and the bracket in
         * one step, without before()'s and put_byte's calls (an answer
         * opens one object a parameter: 87 instructions each; issue 22) */
        if (sep)
            *d++ = sep;
        *d++ = object ? '{' : '[';
        commit_to(w, d);
        w->level[w->depth - 1] = next;
        w->level[w->depth++] = object ? LV_OBJECT : 0;
        return;
    }
    if (!before(w, false))
        return;
    if (w->depth >= ES_JW_DEPTH_MAX) {
        w->err = -EINVAL;
        return;
    }
    put_byte(w, object ? '{' : '[');
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
    put_byte(w, object ? '}' : ']');
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
        es_buf_mark_dirty(b, b->len + 1);
        return;
    }
    put_byte(w, '"');
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
    put_byte(w, '"');
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
    es_buf_mark_dirty(b, b->len + 1); /* what es_buf_commit keeps (buf.h) */
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

/* The bytes of x that need escaping (plain_byte is 0), as their high bits:
 * word_plain's test without the final compare, for accumulating. */
static inline uint64_t special64(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
}

static inline uint32_t special32(uint32_t x)
{
    const uint32_t ones = 0x01010101u, highs = 0x80808080u;
    uint32_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
}

#if defined(__SSE2__)
/* The bytes of x that need escaping, as a mask of 16 lanes: compared as
 * signed bytes, the controls (< 0x20) and the bytes >= 0x80 (negative) are
 * both below 0x20, so one comparison finds both; '"' and '\\' one each. */
static inline __attribute__((always_inline)) __m128i special128(__m128i x)
{
    const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'),
                  bslash = _mm_set1_epi8('\\');
    return _mm_or_si128(_mm_cmplt_epi8(x, space),
                        _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)));
}
#endif

/* Copies s[0..n) to d and says whether every byte was plain: one pass, a
 * word at a time, without a branch per word (the strings of an answer are
 * nearly always plain, so the copy is rarely wasted); the last word
 * overlaps the one before it instead of a loop over the rest. Words of 16
 * bytes where SSE2 is (every x86-64: 11 instructions for 16 bytes against
 * 36 for two words of 8; issue 22), of 8 otherwise and under 16. */
static inline __attribute__((always_inline)) bool copy_plain(unsigned char *d,
                                                             const unsigned char *s, size_t n)
{
    uint64_t acc = 0;
#if defined(__SSE2__)
    if (n >= 16) {
        __m128i x, vacc = _mm_setzero_si128();
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            vacc = _mm_or_si128(vacc, special128(x));
            _mm_storeu_si128((__m128i *)(void *)(d + i), x);
        }
        if (i < n) {
            x = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
            vacc = _mm_or_si128(vacc, special128(x));
            _mm_storeu_si128((__m128i *)(void *)(d + n - 16), x);
        }
        return _mm_movemask_epi8(vacc) == 0;
    }
#endif
    if (n >= 8) {
        uint64_t x;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, s + i, 8);
            acc |= special64(x);
            memcpy(d + i, &x, 8);
        }
        if (i < n) {
            memcpy(&x, s + n - 8, 8);
            acc |= special64(x);
            memcpy(d + n - 8, &x, 8);
        }
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        acc = special32(a) | special32(b);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++) {
            acc |= plain_byte[s[i]] ^ 1u;
            d[i] = s[i];
        }
    }
    return acc == 0;
}

/* The quoted string with its separator, copied once into the buffer's room
 * while it is checked, when it is plain and fits; false (nothing committed)
 * otherwise. */
static bool put_plain_fast(es_jw *w, const char *s, size_t n)
{
    char sep;
    unsigned char next;
    if (!separator(w, true, &sep, &next) || n > SIZE_MAX - 3)
        return false;
    char *d = room(w, n + 3);
    if (!d)
        return false;
    if (sep)
        *d++ = sep;
    *d++ = '"';
    if (!copy_plain((unsigned char *)d, (const unsigned char *)s, n)) {
        /* written past the contents before it was known: a value's bytes
         * there are wiped with the buffer (buf.h's dirty) */
        es_buf_mark_dirty(w->out, (size_t)(d - w->out->data) + n);
        return false;
    }
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

/* Not inlined: inlined into a caller's loop (secretsmanager.c's
 * batch_write_errors) GCC's LTO took the strlen for a read past an empty
 * region (a -Wstringop-overread false positive) once put_byte was there. */
__attribute__((noinline)) void es_jw_str(es_jw *w, const char *s)
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

/* v in decimal, not NUL-ended: its length */
static size_t int_text(int64_t v, char out[24])
{
    char tmp[24];
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
    return j;
}

void es_jw_int(es_jw *w, int64_t v)
{
    char out[24];
    put_number(w, out, int_text(v, out));
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

int es_jw_double_text(double v, char out[ES_JW_NUM_MAX])
{
    /* yajl printed doubles with %.20g; epoch timestamps look better with
     * millisecond precision, as AWS writes them. JSON has no NaN or
     * infinity: such a value is an error of the writer, not text. */
    if (!isfinite(v))
        return -EINVAL;
    int n = fmt_millis(v, out, ES_JW_NUM_MAX);
    if (n < 0)
        n = snprintf(out, ES_JW_NUM_MAX, "%.3f", v);
    if (n <= 0 || n >= ES_JW_NUM_MAX)
        return -EINVAL;
    return n;
}

void es_jw_double(es_jw *w, double v)
{
    char num[ES_JW_NUM_MAX];
    int n = es_jw_double_text(v, num);
    if (n < 0) {
        if (!w->err)
            w->err = n;
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

/* A literal key as ES_JW_LIT makes it: quoted, plain inside (asserted:
 * the literals are the program's, so a debug build's tests see them all). */
#ifndef NDEBUG
static bool lit_ok(const char *q, size_t n)
{
    if (n < 2 || q[0] != '"' || q[n - 1] != '"')
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if (!plain_byte[(unsigned char)q[i]])
            return false;
    return true;
}
#endif

/* memcpy of a literal key (a few to about 30 bytes) as two overlapping
 * loads and stores of the widest size that fits: GCC's inline memcpy of an
 * unknown length was a loop of 8-byte words with an alignment prologue,
 * about a third of es_jw_kstrn_lit's 140 instructions a call (issue 22). */
static inline __attribute__((always_inline)) void copy_short(char *d, const char *s, size_t n)
{
#if defined(__SSE2__)
    if (n >= 16 && n <= 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s),
                b = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        _mm_storeu_si128((__m128i *)(void *)d, a);
        _mm_storeu_si128((__m128i *)(void *)(d + n - 16), b);
        return;
    }
#endif
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        memcpy(d, s, n);
    }
}

/* Where an object waits for its next key and the buffer has room for the
 * separator, the key, ':' and more bytes: those three written there, and
 * where the value goes. NULL when the general path must decide (not a key's
 * place, an error, no room yet). Nothing is committed. */
static char *lit_start(es_jw *w, const char *q, size_t qn, size_t more)
{
    if (w->err || w->depth == 0 || more > SIZE_MAX / 2 || qn > SIZE_MAX / 4)
        return NULL;
    unsigned char lv = w->level[w->depth - 1];
    if ((lv & (LV_OBJECT | LV_VALUE)) != LV_OBJECT)
        return NULL;
    char *d = room(w, 1 + qn + 1 + more);
    if (!d)
        return NULL;
    if (lv & LV_ITEMS)
        *d++ = ',';
    copy_short(d, q, qn);
    d += qn;
    *d++ = ':';
    return d;
}

/* The key and value written by lit_start's caller up to end: committed,
 * the object's state after a complete member. */
static void lit_commit(es_jw *w, char *end)
{
    commit_to(w, end);
    w->level[w->depth - 1] |= LV_ITEMS;
}

void es_jw_key_lit(es_jw *w, const char *q, size_t qn)
{
    assert(lit_ok(q, qn));
    if (w->err)
        return;
    if (!key_due(w)) {
        w->err = -EINVAL; /* not where an object's key goes */
        return;
    }
    if (!before(w, true))
        return;
    put(w, q, qn);
}

void es_jw_kstrn_lit(es_jw *w, const char *q, size_t qn, const char *s, size_t n)
{
    assert(lit_ok(q, qn));
    char *d = lit_start(w, q, qn, n + 2);
    if (d) {
        *d++ = '"';
        if (copy_plain((unsigned char *)d, (const unsigned char *)s, n)) {
            d[n] = '"';
            lit_commit(w, d + n + 1);
            return;
        }
        /* written past the contents before it was known (put_plain_fast) */
        es_buf_mark_dirty(w->out, (size_t)(d - w->out->data) + n);
    }
    es_jw_key_lit(w, q, qn);
    es_jw_strn(w, s, n);
}

void es_jw_kraw_lit(es_jw *w, const char *q, size_t qn, const char *json, size_t n)
{
    assert(lit_ok(q, qn));
    char *d = lit_start(w, q, qn, n);
    if (d) {
        memcpy(d, json, n);
        lit_commit(w, d + n);
        return;
    }
    es_jw_key_lit(w, q, qn);
    put_number(w, json, n); /* the same copy after the separator */
}

void es_jw_knum_lit(es_jw *w, const char *q, size_t qn, const char *num, size_t n)
{
    es_jw_kraw_lit(w, q, qn, num, n);
}

void es_jw_kint_lit(es_jw *w, const char *q, size_t qn, int64_t v)
{
    char out[24];
    es_jw_knum_lit(w, q, qn, out, int_text(v, out));
}

int es_jw_finish(es_jw *w)
{
    if (!w->err && w->depth)
        w->err = -EINVAL; /* left open */
    return w->err;
}
