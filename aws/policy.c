/* policy.c - IAM policy parser, compiler and evaluator. See policy.h. */
#include "aws/policy.h"

#include "common/alloc.h"
#include "common/json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const aw_policy_limits aw_policy_inline_limits = {
    .max_bytes = 10240,
    .max_raw_bytes = 65536,
    .max_statements = 100,
    .max_values = 256,
    .max_conditions = 64,
    .max_depth = 8,
    .max_string = 2048,
};
const aw_policy_limits aw_policy_managed_limits = {
    .max_bytes = 6144,
    .max_raw_bytes = 65536,
    .max_statements = 100,
    .max_values = 256,
    .max_conditions = 64,
    .max_depth = 8,
    .max_string = 2048,
};
const aw_policy_limits aw_policy_resource_limits = {
    .max_bytes = 20480,
    .max_raw_bytes = 131072,
    .max_statements = 100,
    .max_values = 256,
    .max_conditions = 64,
    .max_depth = 8,
    .max_string = 2048,
};

/* A compiled value may hold at most this many wildcard/variable/literal
 * tokens: evaluation resolves variables into a stack array of this size. */
#define MAX_TOKENS 64
/* Longest action ("service:Action") and principal ARN handled on the stack. */
#define MAX_NAME 512

/* ---------------------------------------------------------------- arena */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

typedef struct arena {
    chunk *head;
} arena;

static void *arena_alloc(arena *a, size_t n)
{
    size_t al = _Alignof(max_align_t);
    n = (n + al - 1) / al * al;
    if (n == 0)
        n = al;
    chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        chunk *nc = es_malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->next = a->head;
        nc->used = 0;
        nc->cap = cap;
        a->head = nc;
        c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void arena_free(arena *a)
{
    chunk *c = a->head;
    while (c) {
        chunk *n = c->next;
        es_free(c);
        c = n;
    }
    a->head = NULL;
}

/* ------------------------------------------------------ compiled form */

enum { T_LIT, T_STAR, T_QMARK, T_VAR };

typedef struct tok {
    uint8_t kind;
    bool has_def;
    size_t len; /* literal or variable-name length */
    const char *s;
    const char *def; /* default value of ${key, 'def'} */
    size_t deflen;
} tok;

typedef struct pat {
    const tok *t;
    uint32_t n;
    bool has_var;
} pat;

/* An ARN pattern: six parts, or everything ("*"), or nothing. */
typedef struct arnpat {
    bool all;
    bool never;
    pat part[6];
} arnpat;

typedef struct actpat {
    bool all;
    const char *service; /* lowercased */
    size_t service_len;
    pat action; /* glob, compared case-insensitively */
} actpat;

enum { PR_ANY, PR_AWS, PR_SERVICE, PR_FEDERATED, PR_CANONICAL };

typedef struct princ {
    uint8_t type;
    bool account; /* AWS principal naming a whole account */
    const char *s;
    char acct[16];
} princ;

typedef enum op {
    OP_STR_EQ,
    OP_STR_NE,
    OP_STR_EQI,
    OP_STR_NEI,
    OP_STR_LIKE,
    OP_STR_NLIKE,
    OP_NUM_EQ,
    OP_NUM_NE,
    OP_NUM_LT,
    OP_NUM_LE,
    OP_NUM_GT,
    OP_NUM_GE,
    OP_DATE_EQ,
    OP_DATE_NE,
    OP_DATE_LT,
    OP_DATE_LE,
    OP_DATE_GT,
    OP_DATE_GE,
    OP_BOOL,
    OP_BIN,
    OP_IP,
    OP_NIP,
    OP_ARN_EQ,
    OP_ARN_LIKE,
    OP_ARN_NE,
    OP_ARN_NLIKE,
    OP_NULL,
} op;

static const struct {
    const char *name;
    op op;
} op_names[] = {
    {"StringEquals", OP_STR_EQ},
    {"StringNotEquals", OP_STR_NE},
    {"StringEqualsIgnoreCase", OP_STR_EQI},
    {"StringNotEqualsIgnoreCase", OP_STR_NEI},
    {"StringLike", OP_STR_LIKE},
    {"StringNotLike", OP_STR_NLIKE},
    {"NumericEquals", OP_NUM_EQ},
    {"NumericNotEquals", OP_NUM_NE},
    {"NumericLessThan", OP_NUM_LT},
    {"NumericLessThanEquals", OP_NUM_LE},
    {"NumericGreaterThan", OP_NUM_GT},
    {"NumericGreaterThanEquals", OP_NUM_GE},
    {"DateEquals", OP_DATE_EQ},
    {"DateNotEquals", OP_DATE_NE},
    {"DateLessThan", OP_DATE_LT},
    {"DateLessThanEquals", OP_DATE_LE},
    {"DateGreaterThan", OP_DATE_GT},
    {"DateGreaterThanEquals", OP_DATE_GE},
    {"Bool", OP_BOOL},
    {"BinaryEquals", OP_BIN},
    {"IpAddress", OP_IP},
    {"NotIpAddress", OP_NIP},
    {"ArnEquals", OP_ARN_EQ},
    {"ArnLike", OP_ARN_LIKE},
    {"ArnNotEquals", OP_ARN_NE},
    {"ArnNotLike", OP_ARN_NLIKE},
    {"Null", OP_NULL},
};

static bool op_negated(op o)
{
    return o == OP_STR_NE || o == OP_STR_NEI || o == OP_STR_NLIKE || o == OP_NUM_NE ||
           o == OP_DATE_NE || o == OP_NIP || o == OP_ARN_NE || o == OP_ARN_NLIKE;
}

enum { SET_NONE, SET_ANY, SET_ALL };

typedef struct cidr {
    int family; /* 4 or 6; 0 when the value is not an address */
    unsigned prefix;
    uint8_t addr[16];
} cidr;

typedef struct cval {
    pat p;       /* string/bool/binary/null values */
    arnpat a;    /* Arn* values */
    double num;  /* Numeric* */
    int64_t sec; /* Date*, epoch seconds */
    bool ok;     /* number/date parsed */
    cidr ip;
} cval;

typedef struct cond {
    op op;
    uint8_t set;
    bool if_exists;
    const char *key;
    size_t keylen;
    const cval *v;
    uint32_t nv;
} cond;

typedef struct stmt {
    const char *sid;
    bool deny;
    bool not_action, not_resource, not_principal, has_principal;
    const actpat *act;
    uint32_t nact;
    const arnpat *res;
    uint32_t nres;
    const princ *pr;
    uint32_t npr;
    bool pr_any; /* a "*" principal is among pr */
    const cond *c;
    uint32_t nc;
} stmt;

struct aw_policy {
    arena ar;
    aw_policy_kind kind;
    const char *name;
    bool vars; /* Version 2012-10-17: policy variables substituted */
    stmt *st;
    size_t nst;
};

/* ----------------------------------------------------------- compiler */

typedef struct comp {
    aw_policy *p;
    const aw_policy_limits *lim;
    char *err;
    size_t errlen;
    int rc;
    size_t si; /* statement being compiled, for messages */
    bool in_stmt;
} comp;

__attribute__((format(printf, 3, 4))) static int cfail(comp *c, int rc, const char *fmt, ...)
{
    if (c->rc)
        return c->rc;
    c->rc = rc;
    if (c->err && c->errlen) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (c->in_stmt)
            snprintf(c->err, c->errlen, "%s (Statement %zu)", msg, c->si);
        else
            snprintf(c->err, c->errlen, "%s", msg);
    }
    return rc;
}

static int nomem(comp *c)
{
    return cfail(c, AW_POLICY_E_NOMEM, "out of memory");
}

/* Compiles s[0..n) into tokens. wild: '*' and '?' are wildcards; vars:
 * ${...} is a policy variable. */
static int compile_pat(comp *c, const char *s, size_t n, bool wild, bool vars, pat *out)
{
    tok tmp[MAX_TOKENS];
    uint32_t nt = 0;
    char *copy = arena_strndup(&c->p->ar, s, n);
    if (!copy)
        return nomem(c);
    size_t lit = 0, i = 0;
    bool has_var = false;
#define EMIT(k, ptr, l)                                                                            \
    do {                                                                                           \
        if (nt >= MAX_TOKENS)                                                                      \
            return cfail(c, AW_POLICY_E_LIMIT,                                                     \
                         "a value has more than %d wildcards, variables or literal runs",          \
                         MAX_TOKENS);                                                              \
        tmp[nt] = (tok){.kind = (k), .s = (ptr), .len = (l)};                                      \
        nt++;                                                                                      \
    } while (0)
    while (i < n) {
        char ch = copy[i];
        if (wild && (ch == '*' || ch == '?')) {
            if (i > lit)
                EMIT(T_LIT, copy + lit, i - lit);
            EMIT(ch == '*' ? T_STAR : T_QMARK, NULL, 0);
            i++;
            lit = i;
            continue;
        }
        if (vars && ch == '$' && i + 1 < n && copy[i + 1] == '{') {
            const char *end = memchr(copy + i + 2, '}', n - i - 2);
            if (!end) {
                i++;
                continue;
            }
            if (i > lit)
                EMIT(T_LIT, copy + lit, i - lit);
            const char *in = copy + i + 2;
            size_t inlen = (size_t)(end - in);
            if (inlen == 1 && (in[0] == '*' || in[0] == '?' || in[0] == '$')) {
                EMIT(T_LIT, in, 1);
            } else {
                /* ${key, 'default'}: split at the first ", "; spaces
                 * around the key and the quoted default are ignored */
                size_t keylen = inlen;
                const char *def = NULL;
                size_t deflen = 0;
                for (size_t k = 0; k + 1 < inlen; k++) {
                    if (in[k] == ',' && in[k + 1] == ' ') {
                        const char *d = in + k + 2;
                        size_t dl = inlen - k - 2;
                        while (dl && *d == ' ') {
                            d++;
                            dl--;
                        }
                        while (dl && d[dl - 1] == ' ')
                            dl--;
                        if (dl >= 2 && d[0] == '\'' && d[dl - 1] == '\'') {
                            def = d + 1;
                            deflen = dl - 2;
                        }
                        keylen = k;
                        break;
                    }
                }
                while (keylen && isspace((unsigned char)in[keylen - 1]))
                    keylen--;
                while (keylen && isspace((unsigned char)*in)) {
                    in++;
                    keylen--;
                }
                EMIT(T_VAR, in, keylen);
                tmp[nt - 1].def = def;
                tmp[nt - 1].deflen = deflen;
                tmp[nt - 1].has_def = def != NULL;
                has_var = true;
            }
            i = (size_t)(end - copy) + 1;
            lit = i;
            continue;
        }
        i++;
    }
    if (i > lit)
        EMIT(T_LIT, copy + lit, i - lit);
#undef EMIT
    tok *t = arena_alloc(&c->p->ar, (nt ? nt : 1) * sizeof *t);
    if (!t)
        return nomem(c);
    memcpy(t, tmp, nt * sizeof *t);
    out->t = t;
    out->n = nt;
    out->has_var = has_var;
    return 0;
}

/* Splits an ARN pattern at its first five ':' and compiles each part. */
static int compile_arn(comp *c, const char *s, size_t n, bool wild, bool vars, bool short_expand,
                       arnpat *out)
{
    memset(out, 0, sizeof *out);
    if (n == 1 && s[0] == '*') {
        out->all = true;
        return 0;
    }
    const char *start[6];
    size_t len[6];
    size_t np = 0;
    const char *p = s, *end = s + n;
    while (np < 5) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!colon)
            break;
        start[np] = p;
        len[np] = (size_t)(colon - p);
        np++;
        p = colon + 1;
    }
    start[np] = p;
    len[np] = (size_t)(end - p);
    np++;
    if (np < 6) {
        bool has_wild = wild && memchr(s, '*', n) != NULL;
        if (!short_expand && !has_wild) {
            out->never = true;
            return 0;
        }
        for (size_t k = np; k < 6; k++) {
            start[k] = "*";
            len[k] = 1;
        }
    }
    for (size_t k = 0; k < 6; k++) {
        int rc = compile_pat(c, start[k], len[k], wild, vars, &out->part[k]);
        if (rc)
            return rc;
    }
    return 0;
}

/* A value of an element: a string, or an array of strings. Returns the
 * items through items and n (a single string is an array of one). */
static int element_strings(comp *c, const es_json *v, const char *what,
                           const es_json *const **items, size_t *n, const es_json **single)
{
    if (v->type == ES_JSON_STRING) {
        *single = v;
        *items = single;
        *n = 1;
        return 0;
    }
    if (v->type != ES_JSON_ARRAY)
        return cfail(c, AW_POLICY_E_MALFORMED, "%s must be a string or an array of strings", what);
    if (v->u.array.n == 0)
        return cfail(c, AW_POLICY_E_MALFORMED, "%s must not be an empty array", what);
    if (v->u.array.n > c->lim->max_values)
        return cfail(c, AW_POLICY_E_LIMIT, "%s has %zu values, more than the limit of %zu", what,
                     v->u.array.n, c->lim->max_values);
    for (size_t i = 0; i < v->u.array.n; i++)
        if (v->u.array.items[i]->type != ES_JSON_STRING)
            return cfail(c, AW_POLICY_E_MALFORMED, "%s must contain only strings", what);
    *items = (const es_json *const *)v->u.array.items;
    *n = v->u.array.n;
    return 0;
}

static bool has_nul(const es_json *s)
{
    return strlen(s->u.string.s) != s->u.string.len;
}

static int compile_actions(comp *c, stmt *st, const es_json *v, const char *what)
{
    const es_json *const *items;
    const es_json *single;
    size_t n;
    int rc = element_strings(c, v, what, &items, &n, &single);
    if (rc)
        return rc;
    actpat *a = arena_alloc(&c->p->ar, n * sizeof *a);
    if (!a)
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        const char *s = items[i]->u.string.s;
        size_t len = items[i]->u.string.len;
        if (has_nul(items[i]))
            return cfail(c, AW_POLICY_E_MALFORMED, "%s contains a NUL character", what);
        if (len == 1 && s[0] == '*') {
            a[i].all = true;
            continue;
        }
        const char *colon = memchr(s, ':', len);
        if (!colon || colon == s || colon + 1 == s + len ||
            memchr(colon + 1, ':', (size_t)(s + len - colon - 1)))
            return cfail(c, AW_POLICY_E_MALFORMED,
                         "%s value \"%.64s\" must be \"*\" or \"service:action\"", what, s);
        for (const char *q = s; q < s + len; q++)
            if (isspace((unsigned char)*q))
                return cfail(c, AW_POLICY_E_MALFORMED, "%s value \"%.64s\" contains whitespace",
                             what, s);
        size_t sl = (size_t)(colon - s);
        char *svc = arena_strndup(&c->p->ar, s, sl);
        if (!svc)
            return nomem(c);
        for (size_t k = 0; k < sl; k++)
            svc[k] = (char)tolower((unsigned char)svc[k]);
        a[i].service = svc;
        a[i].service_len = sl;
        rc = compile_pat(c, colon + 1, len - sl - 1, true, false, &a[i].action);
        if (rc)
            return rc;
    }
    st->act = a;
    st->nact = (uint32_t)n;
    return 0;
}

static int compile_resources(comp *c, stmt *st, const es_json *v, const char *what)
{
    const es_json *const *items;
    const es_json *single;
    size_t n;
    int rc = element_strings(c, v, what, &items, &n, &single);
    if (rc)
        return rc;
    arnpat *a = arena_alloc(&c->p->ar, n * sizeof *a);
    if (!a)
        return nomem(c);
    for (size_t i = 0; i < n; i++) {
        if (has_nul(items[i]))
            return cfail(c, AW_POLICY_E_MALFORMED, "%s contains a NUL character", what);
        if (items[i]->u.string.len == 0)
            return cfail(c, AW_POLICY_E_MALFORMED, "%s must not be an empty string", what);
        const char *rs = items[i]->u.string.s;
        if (strcmp(rs, "*") != 0 && strncmp(rs, "arn:", 4) != 0)
            return cfail(c, AW_POLICY_E_MALFORMED, "%s \"%.64s\" must be in ARN format or \"*\"",
                         what, rs);
        rc = compile_arn(c, items[i]->u.string.s, items[i]->u.string.len, true, c->p->vars,
                         c->p->kind != AW_POLICY_RESOURCE, &a[i]);
        if (rc)
            return rc;
    }
    st->res = a;
    st->nres = (uint32_t)n;
    return 0;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* "123456789012" or "arn:PARTITION:iam::123456789012:root" */
static bool account_principal(const char *s, char acct[16])
{
    size_t n = strlen(s);
    if (n == 12 && all_digits(s, n)) {
        memcpy(acct, s, 13);
        return true;
    }
    if (strncmp(s, "arn:", 4) != 0)
        return false;
    const char *p = strchr(s + 4, ':');
    if (!p || strncmp(p, ":iam::", 6) != 0)
        return false;
    p += 6;
    const char *q = strchr(p, ':');
    if (!q || q - p != 12 || !all_digits(p, 12) || strcmp(q, ":root") != 0)
        return false;
    memcpy(acct, p, 12);
    acct[12] = '\0';
    return true;
}

static int compile_principal(comp *c, stmt *st, const es_json *v, const char *what)
{
    if (v->type == ES_JSON_STRING) {
        if (strcmp(v->u.string.s, "*") != 0)
            return cfail(c, AW_POLICY_E_MALFORMED,
                         "%s must be \"*\" or an object such as {\"AWS\": ...}", what);
        princ *p = arena_alloc(&c->p->ar, sizeof *p);
        if (!p)
            return nomem(c);
        p->type = PR_ANY;
        st->pr = p;
        st->npr = 1;
        st->pr_any = true;
        return 0;
    }
    if (v->type != ES_JSON_OBJECT || v->u.object.n == 0)
        return cfail(c, AW_POLICY_E_MALFORMED,
                     "%s must be \"*\" or a non-empty object such as {\"AWS\": ...}", what);
    size_t total = 0;
    for (size_t i = 0; i < v->u.object.n; i++) {
        const es_json *x = v->u.object.values[i];
        total += x->type == ES_JSON_ARRAY ? x->u.array.n : 1;
    }
    if (total > c->lim->max_values)
        return cfail(c, AW_POLICY_E_LIMIT, "%s has %zu values, more than the limit of %zu", what,
                     total, c->lim->max_values);
    princ *p = arena_alloc(&c->p->ar, total * sizeof *p);
    if (!p)
        return nomem(c);
    size_t k = 0;
    for (size_t i = 0; i < v->u.object.n; i++) {
        const char *type = v->u.object.keys[i];
        uint8_t t;
        if (strcmp(type, "AWS") == 0)
            t = PR_AWS;
        else if (strcmp(type, "Service") == 0)
            t = PR_SERVICE;
        else if (strcmp(type, "Federated") == 0)
            t = PR_FEDERATED;
        else if (strcmp(type, "CanonicalUser") == 0)
            t = PR_CANONICAL;
        else
            return cfail(c, AW_POLICY_E_MALFORMED,
                         "%s has an unknown principal type \"%.32s\" (expected AWS, Service, "
                         "Federated or CanonicalUser)",
                         what, type);
        const es_json *const *items;
        const es_json *single;
        size_t n;
        int rc = element_strings(c, v->u.object.values[i], what, &items, &n, &single);
        if (rc)
            return rc;
        for (size_t j = 0; j < n; j++, k++) {
            const char *s = items[j]->u.string.s;
            if (has_nul(items[j]) || items[j]->u.string.len == 0)
                return cfail(c, AW_POLICY_E_MALFORMED, "%s has an empty or invalid value", what);
            p[k].type = t;
            if (t == PR_AWS && strcmp(s, "*") == 0) {
                p[k].type = PR_ANY;
                st->pr_any = true;
                continue;
            }
            if (t == PR_AWS) {
                if (account_principal(s, p[k].acct))
                    p[k].account = true;
                else if (strncmp(s, "arn:", 4) != 0)
                    return cfail(c, AW_POLICY_E_MALFORMED,
                                 "%s has an invalid AWS principal \"%.64s\" (expected an ARN or "
                                 "a 12-digit account ID)",
                                 what, s);
                else if (strpbrk(s, "*?"))
                    return cfail(c, AW_POLICY_E_MALFORMED,
                                 "%s \"%.64s\": wildcards are not allowed in principal ARNs (use "
                                 "\"*\" with a Condition on aws:PrincipalArn)",
                                 what, s);
            }
            p[k].s = arena_strndup(&c->p->ar, s, items[j]->u.string.len);
            if (!p[k].s)
                return nomem(c);
        }
    }
    st->pr = p;
    st->npr = (uint32_t)k;
    return 0;
}

/* ---- dates, numbers, addresses ---- */

static bool parse_digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || !isdigit((unsigned char)**p))
            return false;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Epoch seconds ("1700000000") or ISO 8601 / W3C-DTF: YYYY, YYYY-MM,
 * YYYY-MM-DD, YYYY-MM-DDThh:mm[:ss[.frac]](Z|+hh:mm|-hh:mm). Fractions are
 * truncated to whole seconds. */
static bool parse_date(const char *s, size_t n, int64_t *out)
{
    const char *p = s, *end = s + n;
    if (n == 0)
        return false;
    if (all_digits(s, n) && n != 4) {
        if (n > 15)
            return false;
        int64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v = v * 10 + (s[i] - '0');
        *out = v;
        return true;
    }
    int y, mo = 1, d = 1, h = 0, mi = 0, sec = 0;
    if (!parse_digits(&p, end, 4, &y))
        return false;
    if (p < end && *p == '-') {
        p++;
        if (!parse_digits(&p, end, 2, &mo))
            return false;
        if (p < end && *p == '-') {
            p++;
            if (!parse_digits(&p, end, 2, &d))
                return false;
        }
    }
    int64_t off = 0;
    if (p < end && (*p == 'T' || *p == 't')) {
        p++;
        if (!parse_digits(&p, end, 2, &h) || p >= end || *p != ':')
            return false;
        p++;
        if (!parse_digits(&p, end, 2, &mi))
            return false;
        if (p < end && *p == ':') {
            p++;
            if (!parse_digits(&p, end, 2, &sec))
                return false;
            if (p < end && *p == '.') {
                p++;
                if (p >= end || !isdigit((unsigned char)*p))
                    return false;
                while (p < end && isdigit((unsigned char)*p))
                    p++;
            }
        }
        if (p < end && (*p == 'Z' || *p == 'z')) {
            p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p == '-' ? -1 : 1, oh, om;
            p++;
            if (!parse_digits(&p, end, 2, &oh) || p >= end || *p != ':')
                return false;
            p++;
            if (!parse_digits(&p, end, 2, &om))
                return false;
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (p != end)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || sec > 60)
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    return true;
}

/* Decimal numbers only (no hex, inf or nan, which strtod would take). */
static bool parse_number(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    size_t i = 0;
    if (s[i] == '-' || s[i] == '+')
        i++;
    bool digits = false;
    while (i < n && isdigit((unsigned char)s[i])) {
        i++;
        digits = true;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && isdigit((unsigned char)s[i])) {
            i++;
            digits = true;
        }
    }
    if (!digits || i != n)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return true;
}

/* "a.b.c.d", "a.b.c.d/n", IPv6 and IPv6/n. */
static bool parse_cidr(const char *s, size_t n, bool allow_prefix, cidr *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash) {
        if (!allow_prefix)
            return false;
        *slash = '\0';
        const char *q = slash + 1;
        if (!*q || strlen(q) > 3 || !all_digits(q, strlen(q)))
            return false;
        prefix = strtol(q, NULL, 10);
    }
    cidr c = {0};
    if (inet_pton(AF_INET, buf, c.addr) == 1) {
        c.family = 4;
        if (prefix > 32)
            return false;
        c.prefix = prefix < 0 ? 32u : (unsigned)prefix;
    } else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
        c.family = 6;
        if (prefix > 128)
            return false;
        c.prefix = prefix < 0 ? 128u : (unsigned)prefix;
    } else {
        return false;
    }
    *out = c;
    return true;
}

static bool cidr_contains(const cidr *net, const cidr *ip)
{
    if (net->family != ip->family)
        return false;
    unsigned bits = net->prefix;
    size_t full = bits / 8;
    if (memcmp(net->addr, ip->addr, full) != 0)
        return false;
    unsigned rem = bits % 8;
    if (rem) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rem));
        if ((net->addr[full] & mask) != (ip->addr[full] & mask))
            return false;
    }
    return true;
}

static int parse_op(comp *c, const char *name, cond *out)
{
    const char *n = name;
    out->set = SET_NONE;
    if (strncasecmp(n, "ForAnyValue:", 12) == 0) {
        out->set = SET_ANY;
        n += 12;
    } else if (strncasecmp(n, "ForAllValues:", 13) == 0) {
        out->set = SET_ALL;
        n += 13;
    }
    size_t len = strlen(n);
    out->if_exists = false;
    if (len > 8 && strcasecmp(n + len - 8, "IfExists") == 0) {
        out->if_exists = true;
        len -= 8;
    }
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++) {
        if (strlen(op_names[i].name) == len && strncasecmp(op_names[i].name, n, len) == 0) {
            out->op = op_names[i].op;
            if (out->op == OP_NULL && (out->if_exists || out->set != SET_NONE))
                return cfail(c, AW_POLICY_E_MALFORMED,
                             "Condition operator \"%.64s\": Null takes no IfExists or set prefix",
                             name);
            return 0;
        }
    }
    return cfail(c, AW_POLICY_E_MALFORMED, "Condition has an unknown operator \"%.64s\"", name);
}

/* A condition value may be written as a string, number or boolean. */
static const char *scalar_text(const es_json *v, size_t *len)
{
    switch (v->type) {
    case ES_JSON_STRING:
        *len = v->u.string.len;
        return v->u.string.s;
    case ES_JSON_NUMBER:
        *len = strlen(v->u.number.text);
        return v->u.number.text;
    case ES_JSON_BOOL:
        *len = v->u.boolean ? 4 : 5;
        return v->u.boolean ? "true" : "false";
    default:
        return NULL;
    }
}

static int compile_cond_values(comp *c, cond *cd, const es_json *v, const char *opname)
{
    const es_json *const *items;
    size_t n;
    const es_json *single = v;
    if (v->type == ES_JSON_ARRAY) {
        if (v->u.array.n == 0)
            return cfail(c, AW_POLICY_E_MALFORMED,
                         "Condition %.64s key \"%.64s\" has an empty array of values", opname,
                         cd->key);
        if (v->u.array.n > c->lim->max_values)
            return cfail(c, AW_POLICY_E_LIMIT,
                         "Condition %.64s key \"%.64s\" has %zu values, more than the limit of %zu",
                         opname, cd->key, v->u.array.n, c->lim->max_values);
        items = (const es_json *const *)v->u.array.items;
        n = v->u.array.n;
    } else {
        items = &single;
        n = 1;
    }
    cval *cv = arena_alloc(&c->p->ar, n * sizeof *cv);
    if (!cv)
        return nomem(c);
    bool vars = c->p->vars;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = scalar_text(items[i], &len);
        if (!s || strlen(s) != len)
            return cfail(c, AW_POLICY_E_MALFORMED,
                         "Condition %.64s key \"%.64s\" values must be strings, numbers or "
                         "booleans",
                         opname, cd->key);
        int rc = 0;
        switch (cd->op) {
        case OP_STR_EQ:
        case OP_STR_NE:
        case OP_STR_EQI:
        case OP_STR_NEI:
        case OP_BOOL:
        case OP_BIN:
        case OP_NULL:
            rc = compile_pat(c, s, len, false, vars && cd->op != OP_BIN && cd->op != OP_NULL,
                             &cv[i].p);
            break;
        case OP_STR_LIKE:
        case OP_STR_NLIKE:
            rc = compile_pat(c, s, len, true, vars, &cv[i].p);
            break;
        case OP_ARN_EQ:
        case OP_ARN_LIKE:
        case OP_ARN_NE:
        case OP_ARN_NLIKE:
            rc = compile_arn(c, s, len, true, vars, false, &cv[i].a);
            /* "*" is not special for Arn operators: it is an ARN pattern
             * with too few parts, which matches nothing. */
            if (!rc && cv[i].a.all) {
                cv[i].a.all = false;
                cv[i].a.never = true;
            }
            break;
        case OP_NUM_EQ:
        case OP_NUM_NE:
        case OP_NUM_LT:
        case OP_NUM_LE:
        case OP_NUM_GT:
        case OP_NUM_GE:
            cv[i].ok = parse_number(s, len, &cv[i].num);
            break;
        case OP_DATE_EQ:
        case OP_DATE_NE:
        case OP_DATE_LT:
        case OP_DATE_LE:
        case OP_DATE_GT:
        case OP_DATE_GE:
            cv[i].ok = parse_date(s, len, &cv[i].sec);
            break;
        case OP_IP:
        case OP_NIP:
            cv[i].ok = parse_cidr(s, len, true, &cv[i].ip);
            break;
        }
        if (rc)
            return rc;
    }
    cd->v = cv;
    cd->nv = (uint32_t)n;
    return 0;
}

static int compile_conditions(comp *c, stmt *st, const es_json *v)
{
    if (v->type != ES_JSON_OBJECT)
        return cfail(c, AW_POLICY_E_MALFORMED,
                     "Condition must be an object of operators, each an object of keys");
    size_t total = 0;
    for (size_t i = 0; i < v->u.object.n; i++) {
        const es_json *blk = v->u.object.values[i];
        if (blk->type != ES_JSON_OBJECT)
            return cfail(c, AW_POLICY_E_MALFORMED,
                         "Condition operator \"%.64s\" must map to an object of keys",
                         v->u.object.keys[i]);
        total += blk->u.object.n;
    }
    if (total > c->lim->max_conditions)
        return cfail(c, AW_POLICY_E_LIMIT, "Condition has %zu keys, more than the limit of %zu",
                     total, c->lim->max_conditions);
    cond *cd = arena_alloc(&c->p->ar, (total ? total : 1) * sizeof *cd);
    if (!cd)
        return nomem(c);
    size_t k = 0;
    for (size_t i = 0; i < v->u.object.n; i++) {
        const char *opname = v->u.object.keys[i];
        const es_json *blk = v->u.object.values[i];
        cond proto = {0};
        int rc = parse_op(c, opname, &proto);
        if (rc)
            return rc;
        for (size_t j = 0; j < blk->u.object.n; j++, k++) {
            cd[k] = proto;
            const char *key = blk->u.object.keys[j];
            if (!*key)
                return cfail(c, AW_POLICY_E_MALFORMED, "Condition %.64s has an empty condition key",
                             opname);
            cd[k].keylen = strlen(key);
            cd[k].key = arena_strndup(&c->p->ar, key, cd[k].keylen);
            if (!cd[k].key)
                return nomem(c);
            rc = compile_cond_values(c, &cd[k], blk->u.object.values[j], opname);
            if (rc)
                return rc;
        }
    }
    st->c = cd;
    st->nc = (uint32_t)k;
    return 0;
}

static int compile_statement(comp *c, stmt *st, const es_json *s)
{
    if (s->type != ES_JSON_OBJECT)
        return cfail(c, AW_POLICY_E_MALFORMED, "Statement must be an object");
    const es_json *effect = NULL, *action = NULL, *notaction = NULL, *resource = NULL,
                  *notresource = NULL, *principal = NULL, *notprincipal = NULL, *condition = NULL;
    for (size_t i = 0; i < s->u.object.n; i++) {
        const char *k = s->u.object.keys[i];
        const es_json *v = s->u.object.values[i];
        const es_json **slot = NULL;
        if (strcmp(k, "Sid") == 0) {
            if (v->type != ES_JSON_STRING || has_nul(v))
                return cfail(c, AW_POLICY_E_MALFORMED, "Sid must be a string");
            if (st->sid)
                return cfail(c, AW_POLICY_E_MALFORMED, "Sid appears twice");
            st->sid = arena_strndup(&c->p->ar, v->u.string.s, v->u.string.len);
            if (!st->sid)
                return nomem(c);
            continue;
        }
        if (strcmp(k, "Effect") == 0)
            slot = &effect;
        else if (strcmp(k, "Action") == 0)
            slot = &action;
        else if (strcmp(k, "NotAction") == 0)
            slot = &notaction;
        else if (strcmp(k, "Resource") == 0)
            slot = &resource;
        else if (strcmp(k, "NotResource") == 0)
            slot = &notresource;
        else if (strcmp(k, "Principal") == 0)
            slot = &principal;
        else if (strcmp(k, "NotPrincipal") == 0)
            slot = &notprincipal;
        else if (strcmp(k, "Condition") == 0)
            slot = &condition;
        else
            return cfail(c, AW_POLICY_E_MALFORMED, "Statement has an unknown element \"%.64s\"", k);
        if (*slot)
            return cfail(c, AW_POLICY_E_MALFORMED, "Statement element %s appears twice", k);
        *slot = v;
    }
    if (!effect)
        return cfail(c, AW_POLICY_E_MALFORMED, "Statement is missing Effect");
    if (effect->type != ES_JSON_STRING ||
        (strcmp(effect->u.string.s, "Allow") != 0 && strcmp(effect->u.string.s, "Deny") != 0))
        return cfail(c, AW_POLICY_E_MALFORMED, "Effect must be \"Allow\" or \"Deny\"");
    st->deny = effect->u.string.s[0] == 'D';
    if (!action == !notaction)
        return cfail(c, AW_POLICY_E_MALFORMED,
                     action ? "Statement has both Action and NotAction"
                            : "Statement is missing Action or NotAction");
    if (!resource == !notresource)
        return cfail(c, AW_POLICY_E_MALFORMED,
                     resource ? "Statement has both Resource and NotResource"
                              : "Statement is missing Resource or NotResource");
    if (principal && notprincipal)
        return cfail(c, AW_POLICY_E_MALFORMED, "Statement has both Principal and NotPrincipal");
    bool has_pr = principal || notprincipal;
    if (c->p->kind == AW_POLICY_RESOURCE && !has_pr)
        return cfail(c, AW_POLICY_E_MALFORMED,
                     "Statement in a resource-based policy is missing Principal or NotPrincipal");
    if (c->p->kind != AW_POLICY_RESOURCE && has_pr)
        return cfail(c, AW_POLICY_E_MALFORMED,
                     "Policy document should not specify a principal (Principal/NotPrincipal "
                     "belong in resource-based policies)");
    if (notprincipal && !st->deny && c->p->kind == AW_POLICY_RESOURCE) {
        /* IAM accepts NotPrincipal only with Deny */
        return cfail(c, AW_POLICY_E_MALFORMED, "NotPrincipal is only supported with Effect Deny");
    }
    int rc;
    st->not_action = notaction != NULL;
    rc = compile_actions(c, st, action ? action : notaction, action ? "Action" : "NotAction");
    if (rc)
        return rc;
    st->not_resource = notresource != NULL;
    rc = compile_resources(c, st, resource ? resource : notresource,
                           resource ? "Resource" : "NotResource");
    if (rc)
        return rc;
    if (has_pr) {
        st->has_principal = true;
        st->not_principal = notprincipal != NULL;
        rc = compile_principal(c, st, principal ? principal : notprincipal,
                               principal ? "Principal" : "NotPrincipal");
        if (rc)
            return rc;
    }
    if (condition) {
        rc = compile_conditions(c, st, condition);
        if (rc)
            return rc;
    }
    return 0;
}

static int compile_doc(comp *c, const es_json *doc)
{
    if (doc->type != ES_JSON_OBJECT)
        return cfail(c, AW_POLICY_E_MALFORMED, "Policy document must be a JSON object");
    const es_json *version = NULL, *statement = NULL;
    for (size_t i = 0; i < doc->u.object.n; i++) {
        const char *k = doc->u.object.keys[i];
        const es_json *v = doc->u.object.values[i];
        if (strcmp(k, "Version") == 0) {
            if (version)
                return cfail(c, AW_POLICY_E_MALFORMED, "Version appears twice");
            version = v;
        } else if (strcmp(k, "Statement") == 0) {
            if (statement)
                return cfail(c, AW_POLICY_E_MALFORMED, "Statement appears twice");
            statement = v;
        } else if (strcmp(k, "Id") == 0) {
            if (v->type != ES_JSON_STRING)
                return cfail(c, AW_POLICY_E_MALFORMED, "Id must be a string");
        } else {
            return cfail(c, AW_POLICY_E_MALFORMED,
                         "Policy document has an unknown element \"%.64s\"", k);
        }
    }
    c->p->vars = false;
    if (version) {
        const char *vs = es_json_as_str(version);
        if (vs && strcmp(vs, "2012-10-17") == 0)
            c->p->vars = true;
        else if (!vs || strcmp(vs, "2008-10-17") != 0)
            return cfail(c, AW_POLICY_E_MALFORMED,
                         "Version must be \"2012-10-17\" or \"2008-10-17\"");
    }
    if (!statement)
        return cfail(c, AW_POLICY_E_MALFORMED, "Policy document is missing Statement");
    const es_json *const *items;
    size_t n;
    const es_json *single = statement;
    if (statement->type == ES_JSON_ARRAY) {
        items = (const es_json *const *)statement->u.array.items;
        n = statement->u.array.n;
    } else if (statement->type == ES_JSON_OBJECT) {
        items = &single;
        n = 1;
    } else {
        return cfail(c, AW_POLICY_E_MALFORMED, "Statement must be an object or an array");
    }
    if (n == 0)
        return cfail(c, AW_POLICY_E_MALFORMED, "Statement must not be empty");
    if (n > c->lim->max_statements)
        return cfail(c, AW_POLICY_E_LIMIT, "Policy has %zu statements, more than the limit of %zu",
                     n, c->lim->max_statements);
    c->p->st = arena_alloc(&c->p->ar, n * sizeof *c->p->st);
    if (!c->p->st)
        return nomem(c);
    c->p->nst = n;
    c->in_stmt = true;
    for (size_t i = 0; i < n; i++) {
        c->si = i;
        int rc = compile_statement(c, &c->p->st[i], items[i]);
        if (rc)
            return rc;
        for (size_t k = 0; k < i && c->p->st[i].sid && *c->p->st[i].sid; k++)
            if (c->p->st[k].sid && strcmp(c->p->st[k].sid, c->p->st[i].sid) == 0)
                return cfail(c, AW_POLICY_E_MALFORMED,
                             "Statement IDs (Sid) must be unique in a policy: \"%.64s\" is also "
                             "used by Statement %zu",
                             c->p->st[i].sid, k);
    }
    c->in_stmt = false;
    return 0;
}

/* Characters IAM counts: everything but whitespace outside strings. */
static size_t counted_chars(const char *s, size_t n)
{
    size_t c = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            c++;
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
            c++;
        } else if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            c++;
        }
    }
    return c;
}

int aw_policy_parse(const char *text, size_t len, aw_policy_kind kind, const char *name,
                    const aw_policy_limits *lim, aw_policy **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!text || !out || kind > AW_POLICY_RESOURCE)
        return AW_POLICY_E_INVAL;
    if (!lim)
        lim = kind == AW_POLICY_RESOURCE ? &aw_policy_resource_limits : &aw_policy_inline_limits;
    comp c = {.lim = lim, .err = err, .errlen = errlen};
    if (len > lim->max_raw_bytes) {
        cfail(&c, AW_POLICY_E_TOO_BIG,
              "Policy document is %zu bytes with whitespace, more than the limit of %zu", len,
              lim->max_raw_bytes);
        return c.rc;
    }
    size_t counted = counted_chars(text, len);
    if (counted > lim->max_bytes) {
        cfail(&c, AW_POLICY_E_TOO_BIG,
              "Policy document is %zu characters without whitespace, more than the limit of %zu",
              counted, lim->max_bytes);
        return c.rc;
    }
    es_json_limits jl = {
        .max_bytes = lim->max_raw_bytes,
        .max_depth = lim->max_depth,
        .max_string = lim->max_string,
        .max_values = lim->max_bytes, /* a value takes at least one counted byte */
    };
    es_json *doc = NULL;
    char jerr[128];
    int jrc = es_json_parse(text, len, &jl, &doc, jerr, sizeof jerr);
    if (jrc == ES_JSON_E_NOMEM)
        return cfail(&c, AW_POLICY_E_NOMEM, "out of memory");
    if (jrc) {
        cfail(&c, jrc == ES_JSON_E_SYNTAX ? AW_POLICY_E_MALFORMED : AW_POLICY_E_LIMIT,
              "Policy document is not valid JSON: %s", jerr);
        return c.rc;
    }
    aw_policy *p = es_calloc(1, sizeof *p);
    if (!p) {
        es_json_free(doc);
        return cfail(&c, AW_POLICY_E_NOMEM, "out of memory");
    }
    p->kind = kind;
    c.p = p;
    if (name) {
        p->name = arena_strndup(&p->ar, name, strlen(name));
        if (!p->name)
            nomem(&c);
    }
    if (!c.rc)
        compile_doc(&c, doc);
    es_json_free(doc);
    if (c.rc) {
        aw_policy_free(p);
        return c.rc;
    }
    *out = p;
    return 0;
}

aw_policy *aw_policy_free(aw_policy *p)
{
    if (p) {
        arena_free(&p->ar);
        es_free(p);
    }
    return NULL;
}

size_t aw_policy_statement_count(const aw_policy *p)
{
    return p ? p->nst : 0;
}

const char *aw_policy_name(const aw_policy *p)
{
    return p ? p->name : NULL;
}

bool aw_policy_uses_context(const aw_policy *p)
{
    if (!p)
        return false;
    for (size_t i = 0; i < p->nst; i++) {
        const stmt *s = &p->st[i];
        if (s->nc > 0)
            return true;
        for (uint32_t j = 0; j < s->nres; j++)
            for (int k = 0; k < 6; k++)
                if (s->res[j].part[k].has_var)
                    return true;
    }
    return false;
}

/* ---------------------------------------------------------- evaluation */

typedef struct span {
    const char *s;
    size_t n;
} span;

typedef struct ectx {
    const aw_request *req;
    span svc, act; /* request action split; compared case-insensitively */
    bool res_all;
    span rpart[6]; /* resource ARN split */
    bool res_arn;  /* resource has six parts */
    span paccount, raccount;
    bool has_boundary;
    /* caller shapes for principal matching */
    bool caller_session; /* arn:...:sts::A:assumed-role/R/S */
    span session_role;   /* R */
    bool caller_fed;     /* arn:...:sts::A:federated-user/N */
    span fed_user;       /* N */
    bool caller_role;    /* arn:...:iam::A:role/... */
    bool caller_service; /* not an ARN: a service principal */
} ectx;

/* ASCII case folding: ARNs, actions and condition keys are ASCII, and
 * locale-dependent tolower() would be both slower and wrong here. */
static inline unsigned char lc(unsigned char c)
{
    return (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static inline bool ch_eq(char a, char b, bool icase)
{
    if (icase)
        return lc((unsigned char)a) == lc((unsigned char)b);
    return a == b;
}

static bool span_eq_case(const char *a, const char *b, size_t n, bool icase)
{
    if (!icase)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
            return false;
    return true;
}

static const aw_ctx_entry *ctx_find(const aw_request *r, const char *key, size_t len)
{
    if (len == 0)
        return NULL;
    unsigned char first = lc((unsigned char)key[0]);
    for (size_t i = 0; i < r->nctx; i++) {
        const char *k = r->ctx[i].key;
        /* cheap first-character test before the full comparison */
        if (k && lc((unsigned char)k[0]) == first && strncasecmp(k, key, len) == 0 &&
            k[len] == '\0')
            return &r->ctx[i];
    }
    return NULL;
}

/* Resolves variables into out[]. Returns false when a variable cannot be
 * resolved; that token becomes a '*' so the caller can still tell whether
 * the value could have matched at all. */
static bool resolve(const pat *p, const aw_request *r, tok out[MAX_TOKENS])
{
    bool ok = true;
    for (uint32_t i = 0; i < p->n; i++) {
        out[i] = p->t[i];
        if (p->t[i].kind != T_VAR)
            continue;
        const aw_ctx_entry *e = ctx_find(r, p->t[i].s, p->t[i].len);
        if (e && !e->multi && e->n == 1 && e->values[0] && e->values[0][0]) {
            out[i].kind = T_LIT;
            out[i].s = e->values[0];
            out[i].len = strlen(e->values[0]);
        } else if (p->t[i].has_def && p->t[i].deflen) {
            out[i].kind = T_LIT;
            out[i].s = p->t[i].def;
            out[i].len = p->t[i].deflen;
        } else {
            out[i].kind = T_STAR;
            ok = false;
        }
    }
    return ok;
}

/* Glob over tokens: '*' any run (non-greedy with backtracking), '?' one
 * character, literal runs compared with ch_eq. */
static bool glob_tokens(const tok *t, uint32_t nt, const char *s, size_t n, bool icase)
{
    /* fast paths for the shapes most policies use: "literal", "*",
     * "prefix*" */
    if (nt == 1 && t[0].kind == T_LIT)
        return t[0].len == n && span_eq_case(t[0].s, s, n, icase);
    if (nt == 1 && t[0].kind == T_STAR)
        return true;
    if (nt == 2 && t[0].kind == T_LIT && t[1].kind == T_STAR)
        return t[0].len <= n && span_eq_case(t[0].s, s, t[0].len, icase);
    uint32_t pi = 0;
    size_t po = 0, si = 0;
    uint32_t star_pi = UINT32_MAX;
    size_t star_si = 0;
    for (;;) {
        while (pi < nt && t[pi].kind == T_LIT && po == t[pi].len) {
            pi++;
            po = 0;
        }
        if (si == n) {
            while (pi < nt && (t[pi].kind == T_STAR || (t[pi].kind == T_LIT && t[pi].len == po))) {
                pi++;
                po = 0;
            }
            if (pi == nt)
                return true;
        } else if (pi < nt) {
            const tok *k = &t[pi];
            if (k->kind == T_STAR) {
                star_pi = ++pi;
                po = 0;
                star_si = si;
                continue;
            }
            if (k->kind == T_QMARK) {
                pi++;
                si++;
                continue;
            }
            if (ch_eq(k->s[po], s[si], icase)) {
                po++;
                si++;
                continue;
            }
        }
        if (star_pi == UINT32_MAX || star_si >= n)
            return false;
        pi = star_pi;
        po = 0;
        si = ++star_si;
    }
}

/* 1 match, 0 no match, -1 a variable is unresolvable. strict (conditions):
 * -1 whenever a variable is unresolvable; otherwise (Resource) -1 only when
 * the value could have matched, so that a plain mismatch stays a mismatch. */
static int pat_match(const pat *p, const aw_request *r, const char *s, size_t n, bool icase,
                     bool strict)
{
    if (!p->has_var)
        return glob_tokens(p->t, p->n, s, n, icase);
    tok tmp[MAX_TOKENS];
    bool ok = resolve(p, r, tmp);
    if (!ok && strict)
        return -1;
    bool m = glob_tokens(tmp, p->n, s, n, icase);
    return !m ? 0 : ok ? 1 : -1;
}

/* Splits s at its first five ':' into six spans; false with fewer parts. */
static bool split_arn(const char *s, span parts[6])
{
    const char *p = s;
    for (int i = 0; i < 5; i++) {
        const char *c = strchr(p, ':');
        if (!c)
            return false;
        parts[i] = (span){p, (size_t)(c - p)};
        p = c + 1;
    }
    parts[5] = (span){p, strlen(p)};
    return true;
}

/* icase_head: partition/service/region/account compare case-insensitively. */
static int arn_match(const arnpat *a, const aw_request *r, const span parts[6], bool icase_head,
                     bool strict)
{
    if (a->all)
        return 1;
    if (a->never)
        return 0;
    int res = 1;
    for (int i = 0; i < 6; i++) {
        int m = pat_match(&a->part[i], r, parts[i].s, parts[i].n, icase_head && i < 5, strict);
        if (m < 0 && strict)
            return -1;
        if (m == 0)
            return 0; /* a plain mismatch wins over an unresolvable variable */
        if (m < 0)
            res = -1;
    }
    return res;
}

static bool action_matches(const stmt *st, const ectx *e)
{
    bool any = false;
    for (uint32_t i = 0; i < st->nact && !any; i++) {
        const actpat *a = &st->act[i];
        if (a->all)
            any = true;
        else if (a->service_len == e->svc.n && strncasecmp(a->service, e->svc.s, e->svc.n) == 0 &&
                 glob_tokens(a->action.t, a->action.n, e->act.s, e->act.n, true))
            any = true;
    }
    return st->not_action ? !any : any;
}

static bool resource_matches(const stmt *st, const ectx *e)
{
    bool any = false;
    for (uint32_t i = 0; i < st->nres && !any; i++) {
        const arnpat *a = &st->res[i];
        int m;
        if (a->all)
            m = 1;
        else if (e->res_all || !e->res_arn)
            m = 0;
        else
            m = arn_match(a, e->req, e->rpart, true, false);
        if (m < 0 && st->not_resource)
            return false; /* NotResource cannot exclude what it cannot name */
        if (m > 0)
            any = true;
    }
    return st->not_resource ? !any : any;
}

/* ---- conditions ---- */

static bool str_value_match(const cond *c, const cval *v, const aw_request *r, const char *s,
                            int *unres)
{
    size_t n = strlen(s);
    int m;
    switch (c->op) {
    case OP_STR_EQ:
    case OP_STR_NE:
    case OP_STR_LIKE:
    case OP_STR_NLIKE:
        m = pat_match(&v->p, r, s, n, false, true);
        break;
    case OP_STR_EQI:
    case OP_STR_NEI:
        m = pat_match(&v->p, r, s, n, true, true);
        break;
    case OP_BIN:
        m = pat_match(&v->p, r, s, n, false, true);
        break;
    case OP_BOOL: {
        if (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0)
            return false;
        tok tmp[MAX_TOKENS];
        const tok *t = v->p.t;
        if (v->p.has_var) {
            if (!resolve(&v->p, r, tmp)) {
                *unres = 1;
                return false;
            }
            t = tmp;
        }
        /* the policy value must itself read true or false */
        size_t tl = 0;
        char buf[8];
        for (uint32_t i = 0; i < v->p.n; i++) {
            if (tl + t[i].len > 5)
                return false;
            memcpy(buf + tl, t[i].s, t[i].len);
            tl += t[i].len;
        }
        buf[tl] = '\0';
        if (strcasecmp(buf, "true") != 0 && strcasecmp(buf, "false") != 0)
            return false;
        return strcasecmp(buf, s) == 0;
    }
    default:
        m = 0;
    }
    if (m < 0) {
        *unres = 1;
        return false;
    }
    return m > 0;
}

static int num_cmp_ok(op o, double a, double b)
{
    switch (o) {
    case OP_NUM_EQ:
    case OP_NUM_NE:
        return a == b;
    case OP_NUM_LT:
        return a < b;
    case OP_NUM_LE:
        return a <= b;
    case OP_NUM_GT:
        return a > b;
    case OP_NUM_GE:
        return a >= b;
    default:
        return 0;
    }
}

static int date_cmp_ok(op o, int64_t a, int64_t b)
{
    switch (o) {
    case OP_DATE_EQ:
    case OP_DATE_NE:
        return a == b;
    case OP_DATE_LT:
        return a < b;
    case OP_DATE_LE:
        return a <= b;
    case OP_DATE_GT:
        return a > b;
    case OP_DATE_GE:
        return a >= b;
    default:
        return 0;
    }
}

/* One request value against the condition's values, with the operator's
 * own polarity: positive ops are "any value matches", negated ops are "no
 * value matches" (and false when a value could not be evaluated). */
static bool cond_single(const cond *c, const aw_request *r, const char *s)
{
    bool neg = op_negated(c->op);
    bool any = false;
    int unres = 0;
    size_t n = strlen(s);
    switch (c->op) {
    case OP_NUM_EQ:
    case OP_NUM_NE:
    case OP_NUM_LT:
    case OP_NUM_LE:
    case OP_NUM_GT:
    case OP_NUM_GE: {
        double x;
        if (!parse_number(s, n, &x))
            return false;
        for (uint32_t i = 0; i < c->nv && !any; i++) {
            if (!c->v[i].ok)
                unres = 1;
            else if (num_cmp_ok(c->op, x, c->v[i].num))
                any = true;
        }
        break;
    }
    case OP_DATE_EQ:
    case OP_DATE_NE:
    case OP_DATE_LT:
    case OP_DATE_LE:
    case OP_DATE_GT:
    case OP_DATE_GE: {
        int64_t x;
        if (!parse_date(s, n, &x))
            return false;
        for (uint32_t i = 0; i < c->nv && !any; i++) {
            if (!c->v[i].ok)
                unres = 1;
            else if (date_cmp_ok(c->op, x, c->v[i].sec))
                any = true;
        }
        break;
    }
    case OP_IP:
    case OP_NIP: {
        cidr ip;
        if (!parse_cidr(s, n, false, &ip))
            return false;
        for (uint32_t i = 0; i < c->nv && !any; i++) {
            if (!c->v[i].ok)
                unres = 1;
            else if (cidr_contains(&c->v[i].ip, &ip))
                any = true;
        }
        break;
    }
    case OP_ARN_EQ:
    case OP_ARN_LIKE:
    case OP_ARN_NE:
    case OP_ARN_NLIKE: {
        span parts[6];
        if (!split_arn(s, parts))
            return false;
        for (uint32_t i = 0; i < c->nv && !any; i++) {
            if (c->v[i].a.never) {
                unres = 1;
                continue;
            }
            int m = arn_match(&c->v[i].a, r, parts, false, true);
            if (m < 0)
                unres = 1;
            else if (m > 0)
                any = true;
        }
        break;
    }
    default:
        for (uint32_t i = 0; i < c->nv && !any; i++)
            if (str_value_match(c, &c->v[i], r, s, &unres))
                any = true;
        break;
    }
    if (neg)
        return !any && !unres;
    return any;
}

static bool cond_matches(const cond *c, const aw_request *r)
{
    const aw_ctx_entry *e = ctx_find(r, c->key, c->keylen);
    if (c->op == OP_NULL) {
        bool want_absent = false, want_present = false;
        for (uint32_t i = 0; i < c->nv; i++) {
            /* compiled as a literal-only pattern */
            const pat *p = &c->v[i].p;
            size_t tl = 0;
            char buf[8];
            bool ok = true;
            for (uint32_t k = 0; k < p->n && ok; k++) {
                if (tl + p->t[k].len > 5)
                    ok = false;
                else {
                    memcpy(buf + tl, p->t[k].s, p->t[k].len);
                    tl += p->t[k].len;
                }
            }
            if (!ok)
                continue;
            buf[tl] = '\0';
            if (strcasecmp(buf, "true") == 0)
                want_absent = true;
            else if (strcasecmp(buf, "false") == 0)
                want_present = true;
        }
        return e ? want_present : want_absent;
    }
    if (c->set == SET_NONE) {
        if (!e)
            return c->if_exists || op_negated(c->op);
        if (e->multi || e->n != 1 || !e->values[0])
            return false;
        return cond_single(c, r, e->values[0]);
    }
    if (!e) /* IfExists: a missing key makes the condition true, set or not */
        return c->set == SET_ALL || c->if_exists;
    if (c->set == SET_ANY) {
        for (size_t i = 0; i < e->n; i++)
            if (e->values[i] && cond_single(c, r, e->values[i]))
                return true;
        return false;
    }
    for (size_t i = 0; i < e->n; i++)
        if (!e->values[i] || !cond_single(c, r, e->values[i]))
            return false;
    return true;
}

static bool conditions_match(const stmt *st, const aw_request *r)
{
    for (uint32_t i = 0; i < st->nc; i++)
        if (!cond_matches(&st->c[i], r))
            return false;
    return true;
}

/* ---- principals ---- */

enum { PM_NONE, PM_ACCOUNT, PM_SESSION, PM_DIRECT };

static bool span_eq(span a, const char *s, size_t n)
{
    return a.n == n && memcmp(a.s, s, n) == 0;
}

/* Does one principal entry name the caller? */
static int principal_entry(const princ *p, const ectx *e)
{
    const char *caller = e->req->principal_arn;
    switch (p->type) {
    case PR_ANY:
        return PM_DIRECT;
    case PR_SERVICE:
    case PR_FEDERATED:
    case PR_CANONICAL:
        return strcmp(p->s, caller) == 0 ? PM_DIRECT : PM_NONE;
    default:
        break;
    }
    if (p->account)
        return span_eq(e->paccount, p->acct, strlen(p->acct)) ? PM_ACCOUNT : PM_NONE;
    if (strcmp(p->s, caller) == 0)
        return PM_DIRECT;
    span parts[6];
    if (!split_arn(p->s, parts) || !span_eq(parts[2], "iam", 3) ||
        !span_eq(parts[4], e->paccount.s, e->paccount.n))
        return PM_NONE;
    if (e->caller_session && parts[5].n > 5 && memcmp(parts[5].s, "role/", 5) == 0) {
        /* the role ARN, with any path, of an assumed-role session */
        const char *last = parts[5].s + parts[5].n;
        while (last > parts[5].s && last[-1] != '/')
            last--;
        size_t ln = (size_t)(parts[5].s + parts[5].n - last);
        if (span_eq(e->session_role, last, ln))
            return PM_SESSION;
    }
    if (e->caller_fed && parts[5].n > 5 && memcmp(parts[5].s, "user/", 5) == 0 &&
        span_eq(e->fed_user, parts[5].s + 5, parts[5].n - 5))
        return PM_SESSION;
    return PM_NONE;
}

static int principal_match(const stmt *st, const ectx *e, bool *exact_star)
{
    int best = PM_NONE;
    *exact_star = false;
    for (uint32_t i = 0; i < st->npr; i++) {
        int m = principal_entry(&st->pr[i], e);
        if (m == PM_DIRECT && (st->pr[i].type == PR_ANY))
            *exact_star = true;
        if (m > best)
            best = m;
    }
    if (!st->not_principal)
        return best;
    /* NotPrincipal: applies to callers it does not name (at any level) */
    *exact_star = false;
    return best == PM_NONE ? PM_DIRECT : PM_NONE;
}

/* ---- the decision ---- */

typedef struct hit {
    const aw_policy *p;
    size_t si;
    aw_policy_source src;
    bool set;
} hit;

static void hit_set(hit *h, const aw_policy *p, size_t si, aw_policy_source src)
{
    if (!h->set)
        *h = (hit){.p = p, .si = si, .src = src, .set = true};
}

static bool stmt_core(const stmt *st, const ectx *e)
{
    return action_matches(st, e) && resource_matches(st, e) && conditions_match(st, e->req);
}

static void scan_identity(const aw_policy *const *ps, size_t n, aw_policy_source src, const ectx *e,
                          hit *allow, hit *deny)
{
    for (size_t i = 0; i < n; i++) {
        const aw_policy *p = ps[i];
        if (!p)
            continue;
        for (size_t s = 0; s < p->nst; s++) {
            const stmt *st = &p->st[s];
            if (deny->set)
                return; /* an explicit deny decides; nothing else can change it */
            if (!st->deny && allow->set)
                continue; /* already allowed; only a deny can still matter */
            if (stmt_core(st, e)) {
                if (st->deny)
                    hit_set(deny, p, s, src);
                else
                    hit_set(allow, p, s, src);
            }
        }
    }
}

static void prepare(ectx *e, const aw_request *r)
{
    memset(e, 0, sizeof *e);
    e->req = r;
    const char *colon = strchr(r->action, ':');
    if (colon) {
        e->svc = (span){r->action, (size_t)(colon - r->action)};
        e->act = (span){colon + 1, strlen(colon + 1)};
    } else {
        e->svc = (span){r->action, strlen(r->action)};
        e->act = (span){"", 0};
    }
    e->res_all = strcmp(r->resource, "*") == 0;
    if (!e->res_all)
        e->res_arn = split_arn(r->resource, e->rpart);
    if (r->resource_account)
        e->raccount = (span){r->resource_account, strlen(r->resource_account)};
    else if (e->res_arn)
        e->raccount = e->rpart[4];
    span pp[6];
    if (split_arn(r->principal_arn, pp) && strncmp(r->principal_arn, "arn:", 4) == 0) {
        e->paccount = pp[4];
        if (span_eq(pp[2], "sts", 3) && pp[5].n > 13 && memcmp(pp[5].s, "assumed-role/", 13) == 0) {
            const char *rs = pp[5].s + 13;
            const char *sl = memchr(rs, '/', pp[5].n - 13);
            if (sl) {
                e->caller_session = true;
                e->session_role = (span){rs, (size_t)(sl - rs)};
            }
        } else if (span_eq(pp[2], "sts", 3) && pp[5].n > 15 &&
                   memcmp(pp[5].s, "federated-user/", 15) == 0) {
            e->caller_fed = true;
            e->fed_user = (span){pp[5].s + 15, pp[5].n - 15};
        } else if (span_eq(pp[2], "iam", 3) && pp[5].n > 5 && memcmp(pp[5].s, "role/", 5) == 0) {
            e->caller_role = true;
        }
    } else {
        e->caller_service = true;
        e->paccount = (span){"", 0};
    }
}

static void decide(aw_decision *out, aw_decision_kind k, const hit *h, aw_implicit_reason why)
{
    memset(out, 0, sizeof *out);
    out->kind = k;
    out->reason = why;
    if (h && h->set) {
        out->source = h->src;
        out->policy = h->p;
        out->statement_index = h->si;
        out->sid = h->p->st[h->si].sid;
    }
}

int aw_policy_evaluate(const aw_policy_set *set, const aw_request *req, aw_decision *out)
{
    if (!set || !req || !out || !req->principal_arn || !req->action || !req->resource ||
        (set->n_identity && !set->identity) || (set->n_boundary && !set->boundary) ||
        (req->nctx && !req->ctx))
        return AW_POLICY_E_INVAL;
    ectx e;
    prepare(&e, req);
    e.has_boundary = set->n_boundary > 0;

    hit id_allow = {0}, id_deny = {0}, pb_allow = {0}, pb_deny = {0};
    hit rp_deny = {0}, rp_direct = {0}, rp_account = {0}, rp_bypass = {0};
    scan_identity(set->identity, set->n_identity, AW_SOURCE_IDENTITY, &e, &id_allow, &id_deny);
    if (e.has_boundary)
        scan_identity(set->boundary, set->n_boundary, AW_SOURCE_BOUNDARY, &e, &pb_allow, &pb_deny);
    const aw_policy *rp = set->resource;
    if (rp) {
        for (size_t s = 0; s < rp->nst; s++) {
            const stmt *st = &rp->st[s];
            bool star = false;
            int pm = principal_match(st, &e, &star);
            /* IAM: a Deny with NotPrincipal always applies to a caller that
             * has a permissions boundary. */
            if (st->deny && st->not_principal && e.has_boundary)
                pm = PM_DIRECT;
            if (pm == PM_NONE || !stmt_core(st, &e))
                continue;
            if (st->deny) {
                hit_set(&rp_deny, rp, s, AW_SOURCE_RESOURCE);
            } else if (pm == PM_ACCOUNT) {
                hit_set(&rp_account, rp, s, AW_SOURCE_RESOURCE);
            } else {
                hit_set(&rp_direct, rp, s, AW_SOURCE_RESOURCE);
                /* names the caller exactly: not limited by a boundary */
                bool exact = pm == PM_DIRECT && !st->not_principal && (e.caller_role ? star : true);
                if (exact)
                    hit_set(&rp_bypass, rp, s, AW_SOURCE_RESOURCE);
            }
        }
    }

    if (id_deny.set) {
        decide(out, AW_DECISION_EXPLICIT_DENY, &id_deny, AW_IMPLICIT_NONE);
        return 0;
    }
    if (rp_deny.set) {
        decide(out, AW_DECISION_EXPLICIT_DENY, &rp_deny, AW_IMPLICIT_NONE);
        return 0;
    }
    if (pb_deny.set) {
        decide(out, AW_DECISION_EXPLICIT_DENY, &pb_deny, AW_IMPLICIT_NONE);
        return 0;
    }

    /* a resource without an account ("*", S3-style ARNs) is the caller's own */
    bool same = !e.caller_service && e.paccount.n > 0 &&
                (e.raccount.n == 0 || (e.paccount.n == e.raccount.n &&
                                       memcmp(e.paccount.s, e.raccount.s, e.paccount.n) == 0));
    bool kms_key = !e.res_all && e.res_arn && span_eq(e.rpart[2], "kms", 3) && e.rpart[5].n >= 4 &&
                   strncasecmp(e.rpart[5].s, "key/", 4) == 0;
    const hit *allow = NULL;
    aw_implicit_reason why = AW_IMPLICIT_NO_IDENTITY_ALLOW;
    if (e.caller_service) {
        allow = rp_direct.set ? &rp_direct : NULL;
        why = AW_IMPLICIT_NO_RESOURCE_ALLOW;
    } else if (same) {
        bool trust_identity = kms_key ? rp_account.set : true;
        if (id_allow.set && trust_identity)
            allow = &id_allow;
        else if (rp_direct.set)
            allow = &rp_direct;
        else if (kms_key && !rp_account.set)
            why = AW_IMPLICIT_NO_RESOURCE_ALLOW;
    } else {
        if (!rp_direct.set && !rp_account.set)
            why = AW_IMPLICIT_NO_RESOURCE_ALLOW;
        else if (id_allow.set)
            allow = &id_allow;
    }
    if (!allow) {
        decide(out, AW_DECISION_IMPLICIT_DENY, NULL, why);
        return 0;
    }
    if (e.has_boundary && !pb_allow.set && !(same && rp_bypass.set)) {
        decide(out, AW_DECISION_IMPLICIT_DENY, NULL, AW_IMPLICIT_NO_BOUNDARY_ALLOW);
        return 0;
    }
    if (e.has_boundary && !pb_allow.set)
        allow = &rp_bypass;
    decide(out, AW_DECISION_ALLOW, allow, AW_IMPLICIT_NONE);
    return 0;
}

const char *aw_decision_kind_name(aw_decision_kind k)
{
    switch (k) {
    case AW_DECISION_ALLOW:
        return "Allowed";
    case AW_DECISION_EXPLICIT_DENY:
        return "ExplicitlyDenied";
    case AW_DECISION_IMPLICIT_DENY:
        return "ImplicitlyDenied";
    }
    return "Unknown";
}

size_t aw_decision_message(const aw_request *req, const aw_decision *d, char *buf, size_t size)
{
    if (!req || !d)
        return 0;
    const char *who = req->principal_arn ? req->principal_arn : "";
    const char *act = req->action ? req->action : "";
    const char *res = req->resource ? req->resource : "";
    int n;
    if (d->kind == AW_DECISION_ALLOW) {
        const char *src =
            d->source == AW_SOURCE_RESOURCE ? "resource-based policy" : "identity-based policy";
        if (d->sid)
            n = snprintf(buf, size, "allowed by statement \"%s\" of the %s%s%s", d->sid, src,
                         d->policy && d->policy->name ? " " : "",
                         d->policy && d->policy->name ? d->policy->name : "");
        else
            n = snprintf(buf, size, "allowed by statement %zu of the %s%s%s", d->statement_index,
                         src, d->policy && d->policy->name ? " " : "",
                         d->policy && d->policy->name ? d->policy->name : "");
        return n < 0 ? 0 : (size_t)n;
    }
    const char *tail;
    bool explicit_deny = d->kind == AW_DECISION_EXPLICIT_DENY;
    if (explicit_deny) {
        tail = d->source == AW_SOURCE_RESOURCE ? "with an explicit deny in a resource-based policy"
               : d->source == AW_SOURCE_BOUNDARY
                   ? "with an explicit deny in a permissions boundary"
                   : "with an explicit deny in an identity-based policy";
        n = snprintf(buf, size, "User: %s is not authorized to perform: %s on resource: %s %s", who,
                     act, res, tail);
    } else {
        tail = d->reason == AW_IMPLICIT_NO_RESOURCE_ALLOW   ? "resource-based policy"
               : d->reason == AW_IMPLICIT_NO_BOUNDARY_ALLOW ? "permissions boundary"
                                                            : "identity-based policy";
        n = snprintf(buf, size,
                     "User: %s is not authorized to perform: %s on resource: %s because no %s "
                     "allows the %s action",
                     who, act, res, tail, act);
    }
    return n < 0 ? 0 : (size_t)n;
}
