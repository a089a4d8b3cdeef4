#include "aws/local/ssm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "aws/local/kms.h"
#include "aws/local/match.h"
#include "aws/local/secretsmanager.h"
#include "aws/local/tags.h"
#include "common/alloc.h"
#include "common/secure.h"

#define ARN_MAX 2200
/* a SecureString's plaintext opened on the stack up to this size with its NUL
 * (the standard tier's 4096 bytes), on the heap above */
#define AL_SSM_VALUE_OPEN_STACK 4097
#define TOKEN_MAX 4096
#define AL_SSM_KEY_ID_MAX 256        /* PutParameter's KeyId (SSM's limit) */
#define AL_SSM_FILTER_VALUE_MAX 1024 /* one of DescribeParameters' filter Values */

/* AllowedPattern ran on the event loop (issue 17: a back-referencing pattern froze it for
 * 5.8 s in glibc's regexec); it now runs on a worker thread (match.h), which holds one of
 * libuv's pool threads and a core for as long as it runs, so its cost stays bounded as
 * before: a value that reaches a bound is refused as too costly to evaluate. An ordinary pattern
 * takes a few backtracking steps per character at most (measured: up to 53 K backtracking points,
 * 61 K items and 5 MiB of frames on the largest, 8 KB value); the bounds leave it ample room and
 * stop a runaway within tens of milliseconds (a crafted one within AL_SSM_PATTERN_CPU_LIMIT_MS).
 *
 * PCRE2's match limit: backtracking points of one match attempt (PCRE2 counts it afresh at
 * every start position of an unanchored pattern; the step limit below is over all of them).
 * 500000 is 9 times what the costliest ordinary pattern needs, 10-30 ms of backtracking. */
#define AL_SSM_PATTERN_MATCH_LIMIT 500000
/* PCRE2's depth limit: nested backtracking frames. A group repeated once per character takes
 * two or three per character (measured: up to 24.6 K on the largest value): 65536 is 2.5 times
 * that; the heap limit bounds the frames' memory. */
#define AL_SSM_PATTERN_DEPTH_LIMIT 65536
/* PCRE2's heap limit, in KiB, for the backtracking frames (PCRE2's default is 20 GB): 16 MiB,
 * three times what a five-group alternation repeated per character needs on the largest value
 * (5 MiB, held in a vector that doubles). */
#define AL_SSM_PATTERN_HEAP_LIMIT_KIB 16384
/* Pattern items entered over the whole match, every start position included (counted by a
 * callout before each item, PCRE2_AUTO_CALLOUT): an unanchored pattern that stays under the
 * match limit at each of 8 K start positions would otherwise run for minutes. 250000 is 4
 * times what the costliest ordinary pattern needs (61 K items). It was 1000000: the issue's
 * back-reference pattern on 1599 'a' + 'b' reached it in 46 ms (median, Release) and 232 ms
 * at p99 on a machine at load 11, against issue 17's goal of an answer under 100 ms; a
 * quarter of the steps is a quarter of that time. */
#define AL_SSM_PATTERN_STEP_LIMIT 250000
/* CPU time of the match (the thread's, so a busy machine does not count), checked every
 * AL_SSM_PATTERN_CLOCK_EVERY steps: the limits above count steps, and one step can be long (a
 * 4000-character lookbehind read at each step), so this ceiling bounds the time however the
 * steps are made. The costliest ordinary patterns measured, a group of alternatives repeated
 * per character, take 50-80 ms on the largest value (mostly growing the frames): 200 leaves
 * them room on a slow machine. */
#define AL_SSM_PATTERN_CPU_LIMIT_MS 200
#define AL_SSM_PATTERN_CLOCK_EVERY 1024

struct pv_cache;

/* One version of a parameter, loaded from the database, or lent by the
 * cache of versions (load_pv_kept; then lender is set and the strings are
 * the cache's: pv_clear gives them back). */
typedef struct pv {
    char *canon, *name, *type, *key_id, *key_ref, *description, *pattern, *tier, *data_type, *user;
    char *policies; /* the parameter's, normalised JSON array (parse_policies), or NULL */
    /* strlen of name, type and data_type (what an answer writes of them),
     * and whether type is "SecureString": made once per row read */
    size_t name_len, type_len, data_type_len;
    bool secure;
    uint8_t *value; /* String: text; SecureString: KMS blob */
    size_t value_len;
    int64_t version, latest;
    double modified;
    double expires;      /* its Expiration policy's time, 0: none */
    int aws_managed_key; /* -1 unknown, else al_kms_is_aws_managed(key_id) */
    /* modified as the answer writes it (es_jw_double_text), made once when
     * the version is kept between reads (the cache drops it with the row);
     * modified_len 0: made when written */
    unsigned char modified_len;
    char modified_text[24];
    /* The answer's members but Value, encoded once when the version is kept
     * (pv_meta_make; the cache drops them with the row), for the ARN at
     * meta + meta_head + meta_arn_at: meta[0..meta_head) is Name's value
     * through Type's ("n","Type":"SecureString"), the rest Version's value
     * through DataType's, LastModifiedDate's value at meta_date_at of it and
     * Version's meta_ver_len long. Writing them member by member was 11.7 K
     * instructions a GetParameters of 10 (each string scanned for escapes
     * per request); copied, 3.5 K. NULL: written member by member. */
    char *meta;
    size_t meta_len, meta_head, meta_ver_len, meta_date_at, meta_arn_at, meta_arn_len;
    struct pv_cache *lender; /* NULL: the strings are this pv's own */
    char *own_name;          /* lent: the name as asked (an ARN), this pv's own */
} pv;

static void pv_cache_give_back(struct pv_cache *k);

static void pv_clear(pv *p)
{
    if (p->lender) {
        pv_cache_give_back(p->lender);
        es_free(p->own_name);
        memset(p, 0, sizeof *p);
        return;
    }
    es_free(p->canon);
    es_free(p->name);
    es_free(p->type);
    es_free(p->key_id);
    es_free(p->key_ref);
    es_free(p->description);
    es_free(p->pattern);
    es_free(p->tier);
    es_free(p->data_type);
    es_free(p->user);
    es_free(p->policies);
    es_free(p->value);
    es_free(p->meta);
    memset(p, 0, sizeof *p);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? es_strdup(s) : NULL;
}

/* col_dup, and the text's length (0 for NULL) */
static char *col_dup_len(sqlite3_stmt *st, int i, size_t *len)
{
    char *s = col_dup(st, i);
    *len = s ? strlen(s) : 0;
    return s;
}

/* Every row of the store belongs to one region: the request's. */
static void bind_region(const al_ctx *c, sqlite3_stmt *st, int i)
{
    sqlite3_bind_text(st, i, al_region(c), -1, SQLITE_STATIC);
}

#define PV_COLUMNS                                                                                 \
    "p.canon, p.name, p.version, v.version, v.type, v.value, v.key_id, v.key_ref, "                \
    "v.description, v.allowed_pattern, v.tier, v.data_type, v.modified, v.modified_user, "         \
    "p.policies, p.expires"

static int pv_from_row(sqlite3_stmt *st, pv *p)
{
    memset(p, 0, sizeof *p);
    p->aws_managed_key = -1;
    p->canon = col_dup(st, 0);
    p->name = col_dup_len(st, 1, &p->name_len);
    p->latest = sqlite3_column_int64(st, 2);
    p->version = sqlite3_column_int64(st, 3);
    p->type = col_dup_len(st, 4, &p->type_len);
    p->secure = p->type && strcmp(p->type, "SecureString") == 0;
    int n = sqlite3_column_bytes(st, 5);
    const void *b = sqlite3_column_blob(st, 5);
    p->value = es_malloc((size_t)n + 1);
    if (p->value) {
        if (n)
            memcpy(p->value, b, (size_t)n);
        p->value[n] = 0;
        p->value_len = (size_t)n;
    }
    p->key_id = col_dup(st, 6);
    p->key_ref = col_dup(st, 7);
    p->description = col_dup(st, 8);
    p->pattern = col_dup(st, 9);
    p->tier = col_dup(st, 10);
    p->data_type = col_dup_len(st, 11, &p->data_type_len);
    p->modified = sqlite3_column_double(st, 12);
    p->user = col_dup(st, 13);
    p->policies = col_dup(st, 14);
    p->expires = sqlite3_column_double(st, 15);
    if (!p->canon || !p->name || !p->type || !p->value || !p->tier || !p->data_type || !p->user) {
        pv_clear(p);
        return -ENOMEM;
    }
    return 0;
}

/* ---- names ---- */

/* a-zA-Z0-9_.-/ : one look-up a byte (every name read is checked) */
static const uint8_t name_chars[256] = {
    ['-'] = 1, ['.'] = 1, ['/'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,
    ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,
    ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['_'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static bool name_char(char ch)
{
    return name_chars[(unsigned char)ch];
}

static const char *canon_of(const char *name)
{
    return name[0] == '/' && !strchr(name + 1, '/') ? name + 1 : name;
}

/* Appends s to out[*at..n) like snprintf would: cut at n - 1, NUL-ended. */
static void put(char *out, size_t n, size_t *at, const char *s)
{
    size_t l = strlen(s);
    if (*at + 1 >= n)
        return;
    if (l > n - 1 - *at)
        l = n - 1 - *at;
    memcpy(out + *at, s, l);
    *at += l;
    out[*at] = '\0';
}

/* "arn:PARTITION:ssm:REGION:ACCOUNT:parameter" of the region being served:
 * the part every parameter ARN of a request shares, made once per request
 * (per al_region_enter: al_ctx's rq_seq) rather than from six pieces per
 * name or compared by region and account per name. Kept in the context's
 * cache of versions (below); len 0: it did not fit (never with AWS's
 * regions and accounts), made each time. */
typedef struct arn_prefix {
    uint64_t seq; /* c->rq_seq + 1 it was made for; 0: not made */
    size_t len;
    char text[160];
} arn_prefix;

static arn_prefix *arn_prefix_slot(al_ctx *c);

static void arn_prefix_make(al_ctx *c, char *out, size_t n, size_t *at)
{
    put(out, n, at, "arn:");
    put(out, n, at, al_partition(c));
    put(out, n, at, ":ssm:");
    put(out, n, at, al_region(c));
    put(out, n, at, ":");
    put(out, n, at, c->account);
    put(out, n, at, ":parameter");
}

/* The request's prefix, or NULL when it cannot be kept (then made by the
 * caller: arn_prefix_make) */
static const arn_prefix *arn_prefix_of(al_ctx *c)
{
    arn_prefix *a = arn_prefix_slot(c);
    if (!a)
        return NULL;
    if (a->seq != c->rq_seq + 1 || !a->seq) {
        size_t pl = 0;
        a->text[0] = '\0';
        arn_prefix_make(c, a->text, sizeof a->text, &pl);
        a->len = pl < sizeof a->text - 1 ? pl : 0;
        a->seq = c->rq_seq + 1;
    }
    return a->len ? a : NULL;
}

/* "arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME" in the request's region,
 * without printf, cut at n - 1 like snprintf: its length. canon is
 * canon_len bytes long. */
static size_t param_arn_n(al_ctx *c, const char *canon, size_t canon_len, char *out, size_t n)
{
    size_t at = 0;
    if (n == 0)
        return 0;
    out[0] = '\0';
    const arn_prefix *a = arn_prefix_of(c);
    if (a) {
        at = a->len < n - 1 ? a->len : n - 1;
        memcpy(out, a->text, at);
    } else {
        arn_prefix_make(c, out, n, &at);
    }
    if (canon[0] != '/' && at + 1 < n)
        out[at++] = '/';
    size_t l = canon_len < n - 1 - at ? canon_len : n - 1 - at;
    memcpy(out + at, canon, l);
    at += l;
    out[at] = '\0';
    return at;
}

static size_t param_arn(al_ctx *c, const char *canon, char *out, size_t n)
{
    return param_arn_n(c, canon, strlen(canon), out, n);
}

/* strlen of what param_arn writes, without writing it (every name read is
 * checked against AL_SSM_ARN_MAX) */
static size_t param_arn_len(al_ctx *c, const char *canon, size_t canon_len)
{
    const arn_prefix *a = arn_prefix_of(c);
    size_t prefix = a ? a->len
                      : strlen("arn:") + strlen(al_partition(c)) + strlen(":ssm:") +
                            strlen(al_region(c)) + 1 + strlen(c->account) + strlen(":parameter");
    return prefix + (canon[0] != '/') + canon_len;
}

static bool reserved_prefix(const char *s)
{
    return strncasecmp(s, "aws", 3) == 0 || strncasecmp(s, "ssm", 3) == 0;
}

/* Validates a parameter name of n bytes (without selector). write: also
 * refuse the reserved prefixes. *canon_off (may be NULL): where
 * canon_of(name) starts (1 for "/name", else 0). */
static int check_name_n(al_ctx *c, const char *name, size_t n, bool write, size_t *canon_off,
                        al_error *e)
{
    if (n < 1 || n > AL_SSM_NAME_MAX)
        return al_fail(e, 400, "ValidationException",
                       "Parameter name must be 1 to %d characters long.", AL_SSM_NAME_MAX);
    /* one pass over the known length gathers what the checks below ask,
     * in their order; a slash is rare, so its branch is predicted */
    size_t slashes = 0;
    unsigned char good = 1;
    bool empty_level = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        good &= name_chars[ch];
        if (ch == '/') {
            slashes++;
            empty_level |= i > 0 && name[i - 1] == '/';
        }
    }
    if (!good)
        return al_fail(e, 400, "ValidationException",
                       "Parameter name '%s' is not valid: only a-zA-Z0-9_.- and '/' are "
                       "allowed.",
                       name);
    if (slashes && name[0] != '/')
        return al_fail(e, 400, "ValidationException",
                       "Parameter name '%s' is not valid: a hierarchical name must be fully "
                       "qualified, beginning with '/'.",
                       name);
    if (empty_level || name[n - 1] == '/')
        return al_fail(e, 400, "ValidationException",
                       "Parameter name '%s' is not valid: empty hierarchy level.", name);
    size_t levels = 1 + slashes - (name[0] == '/');
    if (levels > AL_SSM_MAX_LEVELS)
        return al_fail(e, 400, "HierarchyLevelLimitExceededException",
                       "Parameter name '%s' has %zu levels; a hierarchy can have a maximum of %d "
                       "levels.",
                       name, levels, AL_SSM_MAX_LEVELS);
    /* canon_of: "/name" (one slash, leading) is stored as "name" */
    size_t off = name[0] == '/' && slashes == 1;
    size_t arn_len = param_arn_len(c, name + off, n - off);
    if (arn_len > AL_SSM_ARN_MAX)
        return al_fail(e, 400, "ValidationException",
                       "Parameter name is too long: the fully qualified name including the ARN "
                       "(%zu characters) must be at most %d characters.",
                       arn_len, AL_SSM_ARN_MAX);
    if (write && reserved_prefix(name[0] == '/' ? name + 1 : name))
        return al_fail(e, 400, "ValidationException",
                       "Parameter name: can't be prefixed with \"aws\" or \"ssm\" "
                       "(case-insensitive). If formed as a path, it can consist of sub-paths "
                       "divided by slash symbol; each sub-path can be formed as a mix of letters, "
                       "numbers and the following 3 symbols .-_");
    if (canon_off)
        *canon_off = off;
    return 0;
}

static int check_name(al_ctx *c, const char *name, bool write, al_error *e)
{
    return check_name_n(c, name, strnlen(name, AL_SSM_NAME_MAX + 1), write, NULL, e);
}

/* Splits "name[:selector]" into a name copy and selector. *version > 0 for a
 * numeric selector, *label for a label selector. */
typedef struct sel {
    char name[AL_SSM_NAME_MAX + 1];
    size_t name_len;
    const char *selector; /* points into the request string, at ':' */
    int64_t version;
    const char *label;
} sel;

static int parse_selector(const char *in, size_t len, sel *s, al_error *e)
{
    /* field by field: the name's 2 KiB are written up to its NUL only
     * (a memset of the whole was 256 stores a name read) */
    s->selector = NULL;
    s->version = 0;
    s->label = NULL;
    s->name[0] = '\0';
    const char *colon = memrchr(in, ':', len);
    size_t n = colon ? (size_t)(colon - in) : len;
    if (n > AL_SSM_NAME_MAX)
        return al_fail(e, 400, "ValidationException",
                       "Parameter name must be 1 to %d characters long.", AL_SSM_NAME_MAX);
    memcpy(s->name, in, n);
    s->name[n] = '\0';
    s->name_len = n;
    if (!colon)
        return 0;
    const char *x = colon + 1;
    s->selector = colon;
    if (!*x || len - n - 1 > AL_SSM_LABEL_MAX)
        return al_fail(e, 400, "ValidationException",
                       "Invalid selector in '%s': use name:version or name:label.", in);
    if (x[0] >= '0' && x[0] <= '9') {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(x, &end, 10);
        if (errno || *end || v < 1)
            return al_fail(e, 400, "ValidationException",
                           "Invalid version selector in '%s': versions are positive integers.", in);
        s->version = v;
    } else {
        s->label = x;
    }
    return 0;
}

/* Has the parameter's Expiration passed? Then it is gone for every read,
 * before the next write's sweep deletes it (sweep_expired). */
static bool pv_expired(al_ctx *c, const pv *p)
{
    return p->expires > 0 && p->expires <= al_now(c);
}

/* Loads a version: version 0 and label NULL mean the latest. -ENOENT: no such
 * parameter; -ESRCH: no such version/label; -EIO. */
static int load_pv(al_ctx *c, const char *canon, int64_t version, const char *label, pv *out)
{
    sqlite3_stmt *st;
    if (label)
        st = al_db_prepare(c->db, "SELECT " PV_COLUMNS " FROM ssm_param p JOIN ssm_label l ON "
                                  "l.region=p.region AND l.canon=p.canon JOIN ssm_version v ON "
                                  "v.region=p.region AND v.canon=p.canon AND v.version=l.version "
                                  "WHERE p.region=?4 AND p.canon=?1 AND l.label=?2");
    else
        st = al_db_prepare(c->db, "SELECT " PV_COLUMNS " FROM ssm_param p JOIN ssm_version v ON "
                                  "v.region=p.region AND v.canon=p.canon WHERE p.region=?4 AND "
                                  "p.canon=?1 AND v.version=CASE WHEN ?3 > 0 THEN ?3 ELSE "
                                  "p.version END");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    bind_region(c, st, 4);
    if (label)
        sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 3, version);
    int r, s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        r = pv_from_row(st, out);
        if (r == 0 && pv_expired(c, out)) {
            pv_clear(out);
            r = -ENOENT;
        }
    } else if (s == SQLITE_DONE) {
        r = -ESRCH;
        if (version > 0 || label) {
            sqlite3_stmt *q =
                al_db_prepare(c->db, "SELECT 1 FROM ssm_param WHERE canon=? AND region=?");
            if (!q) {
                r = -EIO;
            } else {
                sqlite3_bind_text(q, 1, canon, -1, SQLITE_STATIC);
                bind_region(c, q, 2);
                if (sqlite3_step(q) != SQLITE_ROW)
                    r = -ENOENT;
                al_db_release(c->db, q);
            }
        } else {
            r = -ENOENT;
        }
    } else {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

/* ---- versions kept between reads ----
 *
 * GetParameter(s) read the same rows again and again (the agent's launches,
 * the benchmark): each name cost a two-table SELECT, eleven string copies and
 * a lookup of its key's manager. The cache keeps what load_pv answered per
 * (name, version or label asked for) - metadata and the value as stored: the
 * KMS blob of a SecureString (never its plaintext), the text of a String -
 * while the database is unchanged (al_db_stamp: any write drops it all).
 * Bounded by PV_CACHE_SLOTS entries and PV_CACHE_BYTES, round robin. An
 * entry is lent to one pv at a time at most: while any pv holds a lent entry
 * nothing is evicted or dropped (a lookup then reads the database instead),
 * so a lent pv stays valid until pv_clear. Only the read paths of
 * GetParameter and GetParameters use it. */
#define PV_CACHE_SLOTS 256
#define PV_CACHE_BYTES (4u << 20)
/* Buckets of the entries' index by (name, version or label, region): a
 * look-up compares one short chain instead of every entry before the one it
 * finds (5 string comparisons a name on average with 10 names kept, 128 with
 * 256). Entries are 1 + their slot number in a chain; 0 ends it. */
#define PV_INDEX 512

typedef struct pv_slot {
    bool used;
    uint16_t next;    /* the next entry of its index chain */
    uint64_t hash;    /* pv_key_hash of what it was asked as */
    size_t canon_len; /* strlen(p.canon) */
    /* c->rq_seq + 1 when region was last found to be the request's (see
     * kms.c's key_keep_slot): compared once a request, not once a name */
    uint64_t region_seq;
    char region[AW_REGION_MAX + 1]; /* the parameter's */
    char *label;                    /* asked for by label (es_malloc'ed), or NULL */
    int64_t asked_version;
    size_t bytes;
    pv p;
} pv_slot;

struct pv_cache {
    arn_prefix arn; /* not a version: kept whatever the stamp */
    /* the request's region's part of pv_key_hash, for c->rq_seq + 1 ==
     * region_seq (not a version: kept whatever the stamp) */
    uint64_t region_seq, region_h;
    al_db_stamp stamp;
    uint16_t head[PV_INDEX]; /* per bucket, its chain's first entry */
    unsigned lent;           /* pvs holding an entry */
    size_t bytes;
    unsigned next;
    pv_slot slot[PV_CACHE_SLOTS];
};

static size_t pv_bytes(const pv *p)
{
    const char *s[] = {p->canon,   p->name, p->type,      p->key_id, p->key_ref, p->description,
                       p->pattern, p->tier, p->data_type, p->user,   p->policies};
    size_t n = sizeof(pv_slot) + p->value_len + p->meta_len;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        n += s[i] ? strlen(s[i]) + 1 : 0;
    return n;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return al_hash_mix(h, s, strlen(s));
}

/* The index's key of a look-up: what load_pv_kept compares, hashed. region_h:
 * the region's part (pv_region_part), made once per request rather than per
 * name; canon is canon_len bytes long. */
static uint64_t pv_key_hash(uint64_t region_h, const char *canon, size_t canon_len, int64_t version,
                            const char *label)
{
    uint64_t h = al_hash_mix(region_h ^ (uint64_t)version, canon, canon_len);
    if (label)
        h = mix_str(h ^ 1, label);
    /* MurmurHash3's finaliser: names differing in their last bytes spread */
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}

static void pv_index_unlink(struct pv_cache *k, pv_slot *s)
{
    uint16_t me = (uint16_t)(s - k->slot + 1);
    uint16_t *at = &k->head[s->hash % PV_INDEX];
    while (*at && *at != me)
        at = &k->slot[*at - 1].next;
    if (*at)
        *at = s->next;
}

static void pv_slot_clear(struct pv_cache *k, pv_slot *s)
{
    if (!s->used)
        return;
    pv_index_unlink(k, s);
    k->bytes -= s->bytes;
    es_free(s->label);
    if (s->p.value)
        es_wipe(s->p.value, s->p.value_len);
    pv_clear(&s->p);
    memset(s, 0, sizeof *s);
}

static void pv_cache_give_back(struct pv_cache *k)
{
    k->lent--;
}

void al_ssm_cache_free(al_ctx *c)
{
    struct pv_cache *k = c->ssm_cache;
    if (!k)
        return;
    for (size_t i = 0; i < PV_CACHE_SLOTS; i++)
        pv_slot_clear(k, &k->slot[i]);
    es_free(k);
    c->ssm_cache = NULL;
}

static arn_prefix *arn_prefix_slot(al_ctx *c)
{
    if (!c->ssm_cache && !(c->ssm_cache = es_calloc(1, sizeof *c->ssm_cache)))
        return NULL;
    return &c->ssm_cache->arn;
}

/* The cache when it may be used now (emptied if the database changed);
 * NULL when an entry is lent out or no memory. */
static struct pv_cache *pv_cache_of(al_ctx *c)
{
    if (!c->ssm_cache && !(c->ssm_cache = es_calloc(1, sizeof *c->ssm_cache)))
        return NULL;
    struct pv_cache *k = c->ssm_cache;
    if (k->lent)
        return NULL;
    if (!al_db_stamp_renew(c->db, &k->stamp)) {
        bool had = k->bytes > 0;
        for (size_t i = 0; i < PV_CACHE_SLOTS; i++)
            pv_slot_clear(k, &k->slot[i]);
        if (had)
            c->cache_stats.flushes++;
    }
    return k;
}

static void pv_lend(struct pv_cache *k, const pv_slot *s, pv *out)
{
    *out = s->p;
    out->lender = k;
    out->own_name = NULL;
    k->lent++;
}

/* A parameter's answer members before its Value: Name and Type. */
static void write_head_members(es_jw *w, const pv *p)
{
    es_jw_kstrn_lit(w, ES_JW_LIT("Name"), p->name, p->name_len);
    es_jw_kstrn_lit(w, ES_JW_LIT("Type"), p->type, p->type_len);
}

/* A parameter's answer members after its Value: Version, the Selector when one
 * was asked, LastModifiedDate, ARN, DataType. at, when not NULL, receives the
 * length of out (the buffer w writes) after Version, LastModifiedDate and ARN:
 * where pv_meta_make cuts the kept members. */
static void write_tail_members(es_jw *w, const pv *p, const char *selector, const char *arn,
                               size_t arn_len, const es_buf *out, size_t at[3])
{
    es_jw_kint_lit(w, ES_JW_LIT("Version"), p->version);
    if (at)
        at[0] = out->len;
    if (selector)
        es_jw_kstrn_lit(w, ES_JW_LIT("Selector"), selector, strlen(selector));
    if (p->modified_len) {
        es_jw_knum_lit(w, ES_JW_LIT("LastModifiedDate"), p->modified_text, p->modified_len);
    } else {
        es_jw_key_lit(w, ES_JW_LIT("LastModifiedDate"));
        es_jw_double(w, p->modified);
    }
    if (at)
        at[1] = out->len;
    es_jw_kstrn_lit(w, ES_JW_LIT("ARN"), arn, arn_len);
    if (at)
        at[2] = out->len;
    es_jw_kstrn_lit(w, ES_JW_LIT("DataType"), p->data_type, p->data_type_len);
}

/* Sets p's meta (see pv) as write_parameter would write those members for
 * the request's ARN now; leaves it NULL when it cannot (no memory, an ARN
 * that JSON escapes: then the answer is written member by member). */
static void pv_meta_make(al_ctx *c, pv *p)
{
    static const char name_key[] = "{\"Name\":", version_key[] = "{\"Version\":",
                      date_key[] = ",\"LastModifiedDate\":", arn_key[] = ",\"ARN\":\"";
    char arn[ARN_MAX];
    size_t arn_len = param_arn(c, p->canon, arn, sizeof arn);
    es_buf head, tail;
    es_buf_init(&head, AL_RESPONSE_MAX);
    es_buf_init(&tail, AL_RESPONSE_MAX);
    es_jw w;
    es_jw_init(&w, &head);
    es_jw_obj(&w);
    write_head_members(&w, p);
    es_jw_obj_end(&w);
    int r = es_jw_finish(&w);
    es_jw_init(&w, &tail);
    es_jw_obj(&w);
    size_t at[3] = {0};
    write_tail_members(&w, p, NULL, arn, arn_len, &tail, at);
    size_t ver_end = at[0], date_end = at[1], arn_end = at[2];
    es_jw_obj_end(&w);
    if (r == 0)
        r = es_jw_finish(&w);
    /* the members' values without the objects' braces and first keys */
    size_t hn = head.len - (sizeof name_key - 1) - 1;
    size_t tn = tail.len - (sizeof version_key - 1) - 1;
    if (r == 0 && arn_end - date_end == sizeof arn_key - 1 + arn_len + 1 &&
        (p->meta = es_malloc(hn + tn))) {
        memcpy(p->meta, head.data + sizeof name_key - 1, hn);
        memcpy(p->meta + hn, tail.data + sizeof version_key - 1, tn);
        p->meta_len = hn + tn;
        p->meta_head = hn;
        p->meta_ver_len = ver_end - (sizeof version_key - 1);
        p->meta_date_at = p->meta_ver_len + sizeof date_key - 1;
        p->meta_arn_at = date_end - (sizeof version_key - 1) + sizeof arn_key - 1;
        p->meta_arn_len = arn_len;
    }
    es_buf_free(&head);
    es_buf_free(&tail);
}

/* The region's part of pv_key_hash: its hash, made once per request (per
 * al_region_enter/leave: rq_seq) - a GetParameters of 10 names hashed and
 * measured it 10 times. */
static uint64_t pv_region_part(al_ctx *c, struct pv_cache *k, const char *region)
{
    if (k->region_seq != c->rq_seq + 1 || !k->region_seq) {
        k->region_h = mix_str(0x84222325CBF29CE4ull, region);
        k->region_seq = c->rq_seq + 1;
    }
    return k->region_h;
}

/* load_pv through the cache: *out is lent (pv_clear gives it back). canon is
 * canon_len bytes long (NUL-ended). */
static int load_pv_kept(al_ctx *c, const char *canon, size_t canon_len, int64_t version,
                        const char *label, pv *out)
{
    struct pv_cache *k = pv_cache_of(c);
    if (!k)
        return load_pv(c, canon, version, label, out);
    const char *region = al_region(c);
    uint64_t h = pv_key_hash(pv_region_part(c, k, region), canon, canon_len, version, label);
    for (uint16_t i = k->head[h % PV_INDEX]; i; i = k->slot[i - 1].next) {
        pv_slot *s = &k->slot[i - 1];
        if (s->hash == h && s->asked_version == version && s->canon_len == canon_len &&
            memcmp(s->p.canon, canon, canon_len) == 0 &&
            (s->region_seq == c->rq_seq + 1 || strcmp(s->region, region) == 0) &&
            (label ? s->label && strcmp(s->label, label) == 0 : !s->label)) {
            s->region_seq = c->rq_seq + 1;
            if (pv_expired(c, &s->p))
                return -ENOENT;
            c->cache_stats.param_hits++;
            pv_lend(k, s, out);
            return 0;
        }
    }
    pv fresh;
    int r = load_pv(c, canon, version, label, &fresh);
    if (r < 0)
        return r;
    c->cache_stats.param_loads++;
    if (fresh.key_id)
        fresh.aws_managed_key = al_kms_is_aws_managed(c, fresh.key_id) ? 1 : 0;
    char num[ES_JW_NUM_MAX];
    int nl = es_jw_double_text(fresh.modified, num);
    if (nl > 0 && (size_t)nl < sizeof fresh.modified_text) {
        memcpy(fresh.modified_text, num, (size_t)nl + 1);
        fresh.modified_len = (unsigned char)nl;
    }
    pv_meta_make(c, &fresh);
    size_t bytes = pv_bytes(&fresh) + (label ? strlen(label) + 1 : 0);
    char *lcopy = label ? es_strdup(label) : NULL;
    if (bytes > PV_CACHE_BYTES / 4 || (label && !lcopy)) {
        es_free(lcopy);
        *out = fresh; /* not kept: the pv's own */
        return 0;
    }
    /* room: evict round robin until the new entry fits */
    for (size_t i = 0; i < PV_CACHE_SLOTS && k->bytes + bytes > PV_CACHE_BYTES; i++)
        pv_slot_clear(k, &k->slot[(k->next + i) % PV_CACHE_SLOTS]);
    pv_slot *s = &k->slot[k->next];
    k->next = (k->next + 1) % PV_CACHE_SLOTS;
    pv_slot_clear(k, s);
    uint16_t *head = &k->head[h % PV_INDEX];
    *s = (pv_slot){.used = true,
                   .next = *head,
                   .hash = h,
                   .canon_len = strlen(fresh.canon),
                   .label = lcopy,
                   .asked_version = version,
                   .bytes = bytes,
                   .p = fresh};
    *head = (uint16_t)(s - k->slot + 1);
    snprintf(s->region, sizeof s->region, "%s", region);
    k->bytes += bytes;
    pv_lend(k, s, out);
    return 0;
}

static int not_found(al_error *e, const char *requested, int r)
{
    if (r == -ENOENT)
        return al_fail(e, 400, "ParameterNotFound", "Parameter %s not found.", requested);
    if (r == -ESRCH)
        return al_fail(e, 400, "ParameterVersionNotFound",
                       "Systems Manager could not find version %s of the parameter. Verify the "
                       "version or label and try again.",
                       requested);
    if (r == -ENOMEM)
        return al_fail_internal(e, "InternalServerError");
    return al_fail_internal(e, "InternalServerError");
}

/* ---- values ---- */

/* The member "Value": key and value in one es_jw_kstrn_lit where it is
 * text (the key alone was 128 instructions, 1.3 K a GetParameters of 10);
 * a SecureString's key is written once it is opened (a failure fails the
 * whole answer). */
static int write_value(al_ctx *c, const char *principal, const pv *p, const char *arn, bool decrypt,
                       es_jw *w, al_error *e)
{
    if (!p->secure) {
        es_jw_kstrn_lit(w, ES_JW_LIT("Value"), (const char *)p->value, p->value_len);
        return 0;
    }
    if (!decrypt) {
        es_jw_key_lit(w, ES_JW_LIT("Value"));
        al_jw_b64(w, p->value, p->value_len);
        return 0;
    }
    char key_arn[256];
    int r;
    if (p->key_id && !(p->aws_managed_key >= 0 ? p->aws_managed_key == 1
                                               : al_kms_is_aws_managed(c, p->key_id))) {
        al_kms_key_arn(c, p->key_id, key_arn, sizeof key_arn);
        if ((r = al_authorize(c, principal, "kms:Decrypt", key_arn, e)) < 0)
            return r;
    }
    al_kv kv = {"PARAMETER_ARN", arn};
    /* opened on the stack when it fits (every standard-tier value does):
     * nothing allocated per value; wiped below either way */
    uint8_t small[AL_SSM_VALUE_OPEN_STACK];
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    r = al_kms_unseal_into(c, p->value, p->value_len, &kv, 1, small, sizeof small, &ptlen);
    if (r == -ENOSPC)
        r = al_kms_unseal(c, p->value, p->value_len, &kv, 1, &pt, &ptlen, NULL);
    else if (r == 0)
        pt = small;
    if (r == -EPERM)
        return al_fail(e, 400, "InvalidKeyId", "The KMS key of parameter %s is disabled.", p->name);
    if (r == -EKEYREVOKED) {
        /* SSM wraps KMS's refusal: its reason, then KMS's code */
        char why[512];
        al_kms_reason(c, r, p->key_id, why, sizeof why);
        return al_fail(e, 400, "InvalidKeyId",
                       "%s (Service: AWSKMS; Status Code: 400; Error Code: "
                       "KMSInvalidStateException)",
                       why);
    }
    if (r == -ENOENT)
        return al_fail(e, 400, "InvalidKeyId", "The KMS key of parameter %s no longer exists.",
                       p->name);
    if (r < 0)
        return al_fail(e, 500, "InternalServerError",
                       "The value of parameter %s could not be decrypted.", p->name);
    es_jw_kstrn_lit(w, ES_JW_LIT("Value"), (const char *)pt, ptlen);
    es_wipe(pt, ptlen + 1);
    if (pt != small)
        es_free(pt);
    return 0;
}

/* arn: the parameter's, as resolve_param built it (arn_len long), or NULL
 * (made here). The keys are literals (ES_JW_LIT): each member one copy. */
static int write_parameter(al_ctx *c, const char *principal, const pv *p, const char *arn_made,
                           size_t arn_len, const char *selector, bool decrypt, es_jw *w,
                           al_error *e)
{
    char own[ARN_MAX];
    const char *arn = arn_made;
    if (!arn) {
        arn_len = param_arn(c, p->canon, own, sizeof own);
        arn = own;
    }
    const char *tail = p->meta ? p->meta + p->meta_head : NULL;
    if (tail && arn_len == p->meta_arn_len && memcmp(arn, tail + p->meta_arn_at, arn_len) == 0) {
        /* the kept members as they were encoded (see pv's meta), copied whole */
        size_t tail_len = p->meta_len - p->meta_head;
        es_jw_obj(w);
        es_jw_kraw_lit(w, ES_JW_LIT("Name"), p->meta, p->meta_head);
        int r = write_value(c, principal, p, arn, decrypt, w, e);
        if (r < 0)
            return r;
        if (selector) {
            es_jw_kraw_lit(w, ES_JW_LIT("Version"), tail, p->meta_ver_len);
            es_jw_kstrn_lit(w, ES_JW_LIT("Selector"), selector, strlen(selector));
            es_jw_kraw_lit(w, ES_JW_LIT("LastModifiedDate"), tail + p->meta_date_at,
                           tail_len - p->meta_date_at);
        } else {
            es_jw_kraw_lit(w, ES_JW_LIT("Version"), tail, tail_len);
        }
        es_jw_obj_end(w);
        return 0;
    }
    es_jw_obj(w);
    write_head_members(w, p);
    int r = write_value(c, principal, p, arn, decrypt, w, e);
    if (r < 0)
        return r;
    write_tail_members(w, p, selector, arn, arn_len, NULL, NULL);
    es_jw_obj_end(w);
    return 0;
}

/* ---- GetParameter(s) ---- */

static bool is_reference_n(const char *name, size_t n)
{
    static const char prefix[] = AL_SSM_REFERENCE_PREFIX;
    /* the second byte first: a plain "/path" differs there mostly */
    return n >= sizeof prefix - 1 && name[1] == prefix[1] &&
           memcmp(name, prefix, sizeof prefix - 1) == 0;
}

static bool is_reference(const char *name)
{
    return is_reference_n(name, strlen(name));
}

/* Validates "name[:selector]", asks the hook, loads the version. -ENOENT /
 * -ESRCH: no such parameter / version (e filled); -EINVAL: malformed (e
 * filled, code ValidationException or HierarchyLevelLimitExceededException);
 * other negatives with e filled. *selector points into requested. */
/* Is in "arn:PARTITION:ssm:REGION:ACCOUNT:parameter/..." for any
 * partition, region and account? */
static bool is_param_arn(const char *in)
{
    const char *p = in + 4; /* after "arn:" */
    const char *svc = strchr(p, ':');
    return svc && strncmp(svc, ":ssm:", 5) == 0 && strstr(svc, ":parameter/");
}

/* A parameter may be named by its ARN (GetParameter(s), history, labels,
 * delete, tags): answers where the name part ("/a/b" or "/a") starts inside
 * in, 0 for a plain name; -ENOENT (e filled: ParameterNotFound) for an ARN
 * of another partition, region or account (as AWS answers it: the request's
 * region holds no such parameter), -EINVAL for a malformed ARN. */
static int arn_name_offset(al_ctx *c, const char *in, size_t *off, al_error *e)
{
    *off = 0;
    if (!(in[0] == 'a' && in[1] == 'r' && in[2] == 'n' && in[3] == ':'))
        return 0;
    char prefix[160];
    int n = snprintf(prefix, sizeof prefix, "arn:%s:ssm:%s:%s:parameter/", al_partition(c),
                     al_region(c), c->account);
    if (n > 0 && strncmp(in, prefix, (size_t)n) == 0 && in[n] && in[n] != '/') {
        *off = (size_t)n - 1; /* keep the '/' */
        return 0;
    }
    if (is_param_arn(in)) {
        al_fail(e, 400, "ParameterNotFound", "Parameter %s not found.", in);
        return -ENOENT;
    }
    return al_fail(e, 400, "ValidationException",
                   "'%s' is not a parameter name or a parameter ARN "
                   "(arn:%s:ssm:REGION:ACCOUNT:parameter/NAME).",
                   in, al_partition(c));
}

/* Validates "name[:selector]" (or "ARN[:selector]"), asks the hook, loads the
 * version. -ENOENT / -ESRCH: no such parameter / version (e filled);
 * -EINVAL: malformed (e filled, code ValidationException or
 * HierarchyLevelLimitExceededException); other negatives with e filled.
 * *selector points into requested. A parameter asked for by ARN answers with
 * that ARN as its Name. */
static int resolve_param(al_ctx *c, const char *principal, const char *action,
                         const char *requested, size_t requested_len, pv *out,
                         const char **selector, char arn[ARN_MAX], size_t *arn_len, al_error *e)
{
    sel s;
    size_t off, canon_off;
    int r = arn_name_offset(c, requested, &off, e);
    if (r < 0)
        return r;
    if ((r = parse_selector(requested + off, requested_len - off, &s, e)) < 0)
        return r;
    if ((r = check_name_n(c, s.name, s.name_len, false, &canon_off, e)) < 0)
        return r;
    const char *canon = s.name + canon_off;
    *arn_len = param_arn_n(c, canon, s.name_len - canon_off, arn, ARN_MAX);
    if ((r = al_authorize_n(c, principal, action, arn, *arn_len, e)) < 0)
        return r;
    r = load_pv_kept(c, canon, s.name_len - canon_off, s.version, s.label, out);
    if (r == -ENOENT || r == -ESRCH) {
        not_found(e, requested, r);
        return r;
    }
    if (r < 0)
        return not_found(e, requested, r);
    if (off) {
        size_t n = s.selector ? (size_t)(s.selector - requested) : requested_len;
        char *as_asked = es_strndup(requested, n);
        if (!as_asked) {
            pv_clear(out);
            return al_fail_internal(e, "InternalServerError");
        }
        if (out->lender) {
            out->own_name = as_asked;
        } else {
            es_free(out->name);
            es_free(out->meta);
        }
        /* the kept members name it as stored: written member by member */
        out->meta = NULL;
        out->name = as_asked;
        out->name_len = n;
    }
    *selector = s.selector;
    return 0;
}

/* Writes one Parameter for the requested string. -ENOENT/-ESRCH: not found
 * (e filled with the single-parameter error); other negatives: e filled. */
static int get_one(al_ctx *c, const char *principal, const char *action, const char *requested,
                   bool decrypt, es_jw *w, al_error *e)
{
    if (is_reference(requested)) {
        if (!decrypt)
            return al_fail(e, 400, "ValidationException",
                           "WithDecryption flag must be True for retrieving a Secret Manager "
                           "secret.");
        const char *id = requested + strlen(AL_SSM_REFERENCE_PREFIX);
        char idbuf[AL_SSM_NAME_MAX + 1], name[AL_SSM_NAME_MAX + 1];
        const char *colon = strchr(id, ':');
        /* a secret id may itself be an ARN (with colons): only a trailing
         * ":selector" after a plain name is a selector */
        const char *selector = NULL;
        if (colon && strncmp(id, "arn:", 4) != 0) {
            selector = colon + 1;
            snprintf(idbuf, sizeof idbuf, "%.*s", (int)(colon - id), id);
            id = idbuf;
        }
        snprintf(name, sizeof name, "%.*s",
                 (int)(strlen(requested) - (selector ? strlen(selector) + 1 : 0)), requested);
        if (!*id)
            return al_fail(e, 400, "ValidationException",
                           "A Secrets Manager reference needs a secret id after %s.",
                           AL_SSM_REFERENCE_PREFIX);
        es_jw_obj(w);
        int r = al_sm_reference_parameter(c, principal, name, id, selector, w, e);
        if (r == -ENOENT) {
            al_fail(e, 400, "ParameterNotFound", "Secret %s referenced by %s not found.", id,
                    requested);
            return -ENOENT;
        }
        if (r < 0)
            return r;
        es_jw_obj_end(w);
        return 0;
    }
    pv p;
    const char *selector = NULL;
    char arn[ARN_MAX];
    size_t arn_len;
    int r = resolve_param(c, principal, action, requested, strlen(requested), &p, &selector, arn,
                          &arn_len, e);
    if (r < 0)
        return r;
    r = write_parameter(c, principal, &p, arn, arn_len, selector, decrypt, w, e);
    pv_clear(&p);
    return r;
}

static int op_get_parameter(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                            al_error *e)
{
    const char *name;
    bool decrypt;
    if (!al_opt_str(req, "Name", &name, e) ||
        !al_opt_bool(req, "WithDecryption", false, &decrypt, e))
        return -EINVAL;
    if (!name)
        return al_fail(e, 400, "ValidationException", "Name is required.");
    es_jw_obj(w);
    es_jw_key(w, "Parameter");
    int r = get_one(c, principal, "ssm:GetParameter", name, decrypt, w, e);
    if (r < 0)
        return r;
    es_jw_obj_end(w);
    return 0;
}

static int op_get_parameters(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                             al_error *e)
{
    bool decrypt;
    if (!al_opt_bool(req, "WithDecryption", false, &decrypt, e))
        return -EINVAL;
    const es_json *names = es_json_get(req, "Names");
    if (!names || names->type != ES_JSON_ARRAY || names->u.array.n < 1 ||
        names->u.array.n > AL_SSM_GET_MAX_NAMES)
        return al_fail(e, 400, "ValidationException",
                       "Names must be a list of 1 to %d parameter names.", AL_SSM_GET_MAX_NAMES);
    size_t n = names->u.array.n;
    for (size_t i = 0; i < n; i++) {
        const char *s = es_json_as_str(names->u.array.items[i]);
        /* (the dispatcher refused strings holding a NUL: len is strlen) */
        size_t l = s ? names->u.array.items[i]->u.string.len : 0;
        if (!s || l < 1 || l > AL_SSM_NAME_MAX)
            return al_fail(e, 400, "ValidationException",
                           "Each of Names must be a string of 1 to %d characters.",
                           AL_SSM_NAME_MAX);
        if (is_reference_n(s, l) && !decrypt)
            return al_fail(e, 400, "ValidationException",
                           "WithDecryption flag must be True for retrieving a Secret Manager "
                           "secret.");
    }
    bool invalid[AL_SSM_GET_MAX_NAMES] = {false};
    /* A name asked twice is answered once: each name's length and first and
     * last 8 bytes compared before its bytes (names of one request mostly
     * share their start and length and differ at the end) */
    uint64_t digest[AL_SSM_GET_MAX_NAMES];
    for (size_t i = 0; i < n; i++) {
        const es_json *x = names->u.array.items[i];
        size_t l = x->u.string.len;
        uint64_t a = 0, b = 0;
        memcpy(&a, x->u.string.s, l < 8 ? l : 8);
        if (l > 8)
            memcpy(&b, x->u.string.s + l - (l < 16 ? l - 8 : 8), l < 16 ? l - 8 : 8);
        digest[i] = (a * 0x9E3779B97F4A7C15ull) ^ b ^ ((uint64_t)l << 48);
    }
    es_jw_obj(w);
    es_jw_key_lit(w, ES_JW_LIT("Parameters"));
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        const char *s = es_json_as_str(names->u.array.items[i]);
        size_t slen = names->u.array.items[i]->u.string.len;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = digest[j] == digest[i] && strcmp(s, es_json_as_str(names->u.array.items[j])) == 0;
        if (dup) {
            invalid[i] = false;
            continue;
        }
        if (!is_reference_n(s, slen)) {
            pv p;
            const char *selector = NULL;
            al_error e1;
            char arn[ARN_MAX];
            size_t arn_len;
            int r = resolve_param(c, principal, "ssm:GetParameters", s, slen, &p, &selector, arn,
                                  &arn_len, &e1);
            if (r == -ENOENT || r == -ESRCH || r == -EINVAL) {
                if (strcmp(e1.code, "AccessDeniedException") == 0) {
                    *e = e1;
                    return r;
                }
                invalid[i] = true;
                continue;
            }
            if (r < 0) {
                *e = e1;
                return r;
            }
            /* a failure from here on fails the whole call (the dispatcher
             * drops the half-written answer) */
            r = write_parameter(c, principal, &p, arn, arn_len, selector, decrypt, w, e);
            pv_clear(&p);
            if (r < 0)
                return r;
            continue;
        }
        /* A missing secret must not leave half an object in the output:
         * write the reference into a scratch buffer first. */
        es_buf one;
        es_buf_init(&one, AL_RESPONSE_MAX);
        es_jw ow;
        es_jw_init(&ow, &one);
        al_error e1;
        int r = get_one(c, principal, "ssm:GetParameters", s, decrypt, &ow, &e1);
        int wr = es_jw_finish(&ow);
        if (r == -ENOENT || r == -ESRCH ||
            (r < 0 && strcmp(e1.code, "ValidationException") == 0 && !is_reference(s)) ||
            (r < 0 && strcmp(e1.code, "HierarchyLevelLimitExceededException") == 0)) {
            invalid[i] = true;
        } else if (r < 0) {
            *e = e1;
            es_buf_free_secret(&one);
            return r;
        } else if (wr < 0) {
            es_buf_free_secret(&one);
            return al_fail_internal(e, "InternalServerError");
        } else {
            es_json *parsed = NULL;
            if (es_json_parse(one.data, one.len, &es_json_default_limits, &parsed, NULL, 0) < 0) {
                es_buf_free_secret(&one);
                return al_fail_internal(e, "InternalServerError");
            }
            es_jw_value(w, parsed);
            es_json_free_secret(parsed);
        }
        es_buf_free_secret(&one);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "InvalidParameters");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        if (invalid[i])
            es_jw_str(w, es_json_as_str(names->u.array.items[i]));
    es_jw_arr_end(w);
    es_jw_obj_end(w);
    return 0;
}

/* ---- PutParameter ---- */

static bool type_ok(const char *t)
{
    return strcmp(t, "String") == 0 || strcmp(t, "StringList") == 0 ||
           strcmp(t, "SecureString") == 0;
}

static bool key_id_syntax_ok(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > AL_SSM_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = k[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == ':' || ch == '/' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* PCRE2 allocates through the project's allocator (failure injection, ASan's accounting) */
static void *pattern_malloc(PCRE2_SIZE n, void *arg)
{
    (void)arg;
    return es_malloc(n);
}

static void pattern_free(void *p, void *arg)
{
    (void)arg;
    es_free(p);
}

typedef struct pattern_budget {
    uint32_t steps;
    struct timespec start; /* thread CPU time when the match began */
} pattern_budget;

static double cpu_ms_since(const struct timespec *t0)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0)
        return 0;
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Called before each item of the pattern (auto callouts) and at its own (?C) callouts:
 * a negative answer abandons the match with that code. */
static int pattern_step(pcre2_callout_block *cb, void *arg)
{
    (void)cb;
    pattern_budget *b = arg;
    if (++b->steps > AL_SSM_PATTERN_STEP_LIMIT)
        return PCRE2_ERROR_MATCHLIMIT;
    if (b->steps % AL_SSM_PATTERN_CLOCK_EVERY == 0 &&
        cpu_ms_since(&b->start) > AL_SSM_PATTERN_CPU_LIMIT_MS)
        return PCRE2_ERROR_MATCHLIMIT;
    return 0;
}

/* Does value satisfy pattern? AWS's AllowedPattern is a Java regex: PCRE2 reads it closely
 * (\d, \w, \s, lookarounds, lazy and possessive quantifiers; characters, not bytes; '.' and
 * '$' stop at line ends) and, as before, finds the pattern anywhere in the value unless it is
 * anchored. The pattern is compiled once per request, and its cost bounded (the limits
 * above). Errors never quote the value, which may be a secret. */
int al_ssm_check_pattern(const char *pattern, const char *value, al_error *e)
{
    if (!pattern || !*pattern)
        return 0;
    pcre2_general_context *gen = NULL;
    pcre2_compile_context *cc = NULL;
    pcre2_code *code = NULL;
    pcre2_match_context *mc = NULL;
    pcre2_match_data *md = NULL;
    pattern_budget budget = {0};
    int r = -ENOMEM, err = 0, m;
    PCRE2_SIZE at = 0;
    gen = pcre2_general_context_create(pattern_malloc, pattern_free, NULL);
    if (!gen || !(cc = pcre2_compile_context_create(gen)))
        goto out;
    pcre2_set_newline(cc, PCRE2_NEWLINE_ANYCRLF);
    pcre2_set_max_pattern_length(cc, AL_SSM_PATTERN_MAX);
    code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C |
                             PCRE2_AUTO_CALLOUT,
                         &err, &at, cc);
    if (!code) {
        if (err != PCRE2_ERROR_HEAP_FAILED)
            r = al_fail(e, 400, "InvalidAllowedPatternException",
                        "The allowed pattern '%s' is not a valid regular expression.", pattern);
        goto out;
    }
    if (!(mc = pcre2_match_context_create(gen)) || !(md = pcre2_match_data_create(1, gen)))
        goto out;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &budget.start) != 0)
        memset(&budget.start, 0, sizeof budget.start);
    pcre2_set_match_limit(mc, AL_SSM_PATTERN_MATCH_LIMIT);
    pcre2_set_depth_limit(mc, AL_SSM_PATTERN_DEPTH_LIMIT);
    pcre2_set_heap_limit(mc, AL_SSM_PATTERN_HEAP_LIMIT_KIB);
    pcre2_set_callout(mc, pattern_step, &budget);
    m = pcre2_match(code, (PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED, 0, 0, md, mc);
    if (m >= 0) /* 0: matched, with more groups than md holds */
        r = 0;
    else if (m == PCRE2_ERROR_NOMEMORY)
        r = -ENOMEM;
    else if (m == PCRE2_ERROR_MATCHLIMIT || m == PCRE2_ERROR_DEPTHLIMIT ||
             m == PCRE2_ERROR_HEAPLIMIT)
        r = al_fail(e, 400, "ParameterPatternMismatchException",
                    "Parameter value, cannot be validated against allowedPattern: the pattern is "
                    "too costly to evaluate against this value (it backtracks beyond the "
                    "embedded store's limits; simplify it): %s",
                    pattern);
    else /* PCRE2_ERROR_NOMATCH, and any other failure to match */
        r = al_fail(e, 400, "ParameterPatternMismatchException",
                    "Parameter value, cannot be validated against allowedPattern: %s", pattern);
out:
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    pcre2_code_free(code);
    pcre2_compile_context_free(cc);
    pcre2_general_context_free(gen);
    if (r == -ENOMEM)
        return al_fail_internal(e, "InternalServerError");
    return r;
}

static int count_versions(al_ctx *c, const char *canon, int64_t *n, int64_t *oldest)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT count(*), min(version) FROM ssm_version WHERE canon=? AND region=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    bind_region(c, st, 2);
    int r = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        *oldest = sqlite3_column_int64(st, 1);
        r = 0;
    }
    al_db_release(c->db, st);
    return r;
}

static int exec_bound(al_ctx *c, const char *sql, const char *t1, int64_t i2)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, i2);
    bind_region(c, st, 3);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

static int label_count(al_ctx *c, const char *canon, int64_t version, int64_t *n)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT count(*) FROM ssm_label WHERE canon=? AND version=? AND region=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    bind_region(c, st, 3);
    int r = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        r = 0;
    }
    al_db_release(c->db, st);
    return r;
}

/* ---- parameter policies (PutParameter's Policies, Advanced tier only) ---- */

#define AL_SSM_POLICIES_MAX 10        /* policies per parameter */
#define AL_SSM_POLICIES_TEXT_MAX 4096 /* the Policies string (botocore: ParameterPolicies) */

static int policy_attr_fail(al_error *e, const char *type, const char *why)
{
    return al_fail(e, 400, "InvalidPolicyAttributeException",
                   "A policy attribute or its value is invalid. %s policy: %s", type, why);
}

/* "2030-01-01T00:00:00Z", with optional fraction and a Z or +HH:MM / -HH:MM
 * offset (ISO 8601, what AWS's examples use): epoch seconds, or -1. */
static double parse_timestamp(const char *s)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    double frac = 0;
    if (*p == '.') {
        char *end;
        frac = strtod(p, &end);
        if (end == p + 1)
            return -1;
        p = end;
    }
    long off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6 || hh > 23 || mm > 59)
            return -1;
        off = (*p == '+' ? 1 : -1) * (hh * 3600L + mm * 60L);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    return (double)(timegm(&tm) - off) + frac;
}

/* A notification's count ("Before" / "After"): a positive integer, as a
 * string (AWS's examples) or a number. */
static bool policy_count_ok(const es_json *v)
{
    int64_t n;
    const char *s = es_json_as_str(v);
    if (s) {
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        return *s && !*end && !errno && x > 0;
    }
    return v && es_json_as_int64(v, &n) && n > 0;
}

/* Checks one policy object's Type, Version and Attributes; *expires gets an
 * Expiration's time. */
static int check_policy(al_ctx *c, const es_json *p, const char **type, double *expires,
                        al_error *e)
{
    const char *t = p && p->type == ES_JSON_OBJECT ? es_json_get_str(p, "Type") : NULL;
    if (!t || (strcmp(t, "Expiration") != 0 && strcmp(t, "ExpirationNotification") != 0 &&
               strcmp(t, "NoChangeNotification") != 0))
        return al_fail(e, 400, "InvalidPolicyTypeException",
                       "The policy type isn't supported. Parameter Store supports the following "
                       "policy types: Expiration, ExpirationNotification, and "
                       "NoChangeNotification.");
    *type = t;
    const char *version = es_json_get_str(p, "Version");
    const es_json *attrs = es_json_get(p, "Attributes");
    if (!version || strcmp(version, "1.0") != 0)
        return policy_attr_fail(e, t, "Version must be \"1.0\".");
    if (!attrs || attrs->type != ES_JSON_OBJECT)
        return policy_attr_fail(e, t, "Attributes must be an object.");
    if (strcmp(t, "Expiration") == 0) {
        const char *ts = es_json_get_str(attrs, "Timestamp");
        double at = ts ? parse_timestamp(ts) : -1;
        if (at < 0)
            return policy_attr_fail(e, t,
                                    "Timestamp must be an ISO 8601 time such as "
                                    "2030-12-02T21:34:33.000Z.");
        if (at <= al_now(c))
            return policy_attr_fail(e, t, "Timestamp must be in the future.");
        *expires = at;
        return 0;
    }
    const char *count = strcmp(t, "ExpirationNotification") == 0 ? "Before" : "After";
    const char *unit = es_json_get_str(attrs, "Unit");
    if (!policy_count_ok(es_json_get(attrs, count)))
        return policy_attr_fail(e, t,
                                strcmp(count, "Before") == 0
                                    ? "Before must be a positive whole number."
                                    : "After must be a positive whole number.");
    if (!unit || (strcmp(unit, "Days") != 0 && strcmp(unit, "Hours") != 0))
        return policy_attr_fail(e, t, "Unit must be Days or Hours.");
    return 0;
}

/* ---- tags (PutParameter's Tags, AddTagsToResource) ---- */

#define TAG_PATTERN "^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$"

/* SSM's words for the shared tag rules (tags.h): fields named as
 * "tags.1.member.key", "tagKeys.2.member". */
static int ssm_tag_refuse(const al_tag_fault *f, al_error *e)
{
    char field[64];
    if (f->in_keys)
        snprintf(field, sizeof field, "tagKeys.%zu.member", f->index + 1);
    else
        snprintf(field, sizeof field, "tags.%zu.member.key", f->index + 1);
    switch (f->kind) {
    case AL_TAG_NOT_LIST:
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value at 'tags' failed to satisfy "
                       "constraint: Member must be a list of at most %zu tags.",
                       f->max);
    case AL_TAG_KEY_BAD:
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value '%s' at '%s' failed to satisfy "
                       "constraint: Member must have length between 1 and %d and satisfy regular "
                       "expression pattern: %s",
                       f->text ? f->text : "null", field, AL_TAG_KEY_MAX, TAG_PATTERN);
    case AL_TAG_VALUE_BAD:
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value at 'tags.%zu.member.value' failed "
                       "to satisfy constraint: Member must have length less than or equal to "
                       "%d and satisfy regular expression pattern: %s",
                       f->index + 1, AL_TAG_VALUE_MAX, TAG_PATTERN);
    case AL_TAG_RESERVED:
        return al_fail(e, 400, "ValidationException",
                       "Value '%s' at '%s' is not valid: tag keys beginning with \"aws:\" are "
                       "reserved for AWS use.",
                       f->text, field);
    case AL_TAG_TOO_MANY: /* the error's text in SSM's service model */
        return al_fail(e, 400, "TooManyTagsError",
                       "The Targets parameter includes too many tags. Remove one or more tags and "
                       "try the command again.");
    default:
        return al_fail_internal(e, "InternalServerError");
    }
}

static const al_tag_rules SSM_TAGS = {.key_field = "Key",
                                      .value_field = "Value",
                                      .pattern = true,
                                      .keys_reserved = true,
                                      .refuse = ssm_tag_refuse};

/* ---- PutParameter ---- */

typedef struct put_req {
    const char *name, *value, *type, *key_ref, *description, *tier, *data_type, *pattern;
    bool overwrite;
    const es_json *tags;
    bool policies_given; /* Policies was in the request ("[]" too) */
    char *policies;      /* normalised (parse_policies), NULL: none */
    double expires;      /* its Expiration, 0: none */
} put_req;

/* Parses PutParameter's Policies (a JSON array of policy objects) into
 * q->policies (the array written back compactly, es_malloc'ed; NULL when
 * empty: "[]" removes a parameter's policies) and q->expires. */
static int parse_policies(al_ctx *c, const char *text, put_req *q, al_error *e)
{
    size_t n = strlen(text);
    if (n < 1 || n > AL_SSM_POLICIES_TEXT_MAX)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value at 'policies' failed to satisfy "
                       "constraint: Member must have length between 1 and %d.",
                       AL_SSM_POLICIES_TEXT_MAX);
    es_json *arr = NULL;
    if (es_json_parse(text, n, &es_json_default_limits, &arr, NULL, 0) < 0 ||
        arr->type != ES_JSON_ARRAY) {
        es_json_free(arr);
        return al_fail(e, 400, "InvalidPolicyAttributeException",
                       "A policy attribute or its value is invalid. Policies must be a JSON array "
                       "of policy objects.");
    }
    int r = 0;
    bool seen[3] = {false};
    static const char *const types[3] = {"Expiration", "ExpirationNotification",
                                         "NoChangeNotification"};
    if (arr->u.array.n > AL_SSM_POLICIES_MAX)
        r = al_fail(e, 400, "PoliciesLimitExceededException",
                    "You specified more than the maximum number of allowed policies for the "
                    "parameter. The maximum is %d.",
                    AL_SSM_POLICIES_MAX);
    for (size_t i = 0; r == 0 && i < arr->u.array.n; i++) {
        const char *type = NULL;
        if ((r = check_policy(c, arr->u.array.items[i], &type, &q->expires, e)) < 0)
            break;
        for (size_t t = 0; t < 3; t++) {
            if (strcmp(type, types[t]) != 0)
                continue;
            if (seen[t])
                r = al_fail(e, 400, "IncompatiblePolicyException",
                            "There is a conflict in the policies specified for this parameter. "
                            "You can't, for example, specify two %s policies for a parameter. "
                            "Review your policies, and try again.",
                            type);
            seen[t] = true;
        }
    }
    if (r == 0 && arr->u.array.n) {
        es_buf b;
        es_buf_init(&b, AL_SSM_POLICIES_TEXT_MAX * 2);
        es_jw w;
        es_jw_init(&w, &b);
        es_jw_value(&w, arr);
        if (es_jw_finish(&w) < 0 || !(q->policies = es_strndup(b.data, b.len)))
            r = al_fail_internal(e, "InternalServerError");
        es_buf_free(&b);
    }
    es_json_free(arr);
    q->policies_given = true;
    return r;
}

/* PutParameter's fields, checked as AWS checks them before it looks at the
 * store. */
static int check_put_fields(al_ctx *c, const put_req *q, al_error *e)
{
    int r = check_name(c, q->name, true, e);
    if (r < 0)
        return r;
    if (!*q->value)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value at 'value' failed to satisfy "
                       "constraint: Member must have length greater than or equal to 1.");
    if (q->type && !type_ok(q->type))
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value '%s' at 'type' failed to satisfy "
                       "constraint: Member must satisfy enum value set: [SecureString, "
                       "StringList, String]",
                       q->type);
    if (q->key_ref && !key_id_syntax_ok(q->key_ref))
        return al_fail(e, 400, "ValidationException",
                       "KeyId must match ^([a-zA-Z0-9:/_-]+)$ and be 1 to %d characters.",
                       AL_SSM_KEY_ID_MAX);
    if (q->key_ref && q->type && strcmp(q->type, "SecureString") != 0)
        return al_fail(e, 400, "ValidationException",
                       "KeyId is only valid for a SecureString parameter, not %s.", q->type);
    if (q->description && strlen(q->description) > AL_SSM_DESCRIPTION_MAX)
        return al_fail(e, 400, "ValidationException", "Description must be at most %d characters.",
                       AL_SSM_DESCRIPTION_MAX);
    if (q->pattern && strlen(q->pattern) > AL_SSM_PATTERN_MAX)
        return al_fail(e, 400, "ValidationException",
                       "AllowedPattern must be at most %d characters.", AL_SSM_PATTERN_MAX);
    if (q->tier && strcmp(q->tier, "Standard") != 0 && strcmp(q->tier, "Advanced") != 0 &&
        strcmp(q->tier, "Intelligent-Tiering") != 0)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value '%s' at 'tier' failed to satisfy "
                       "constraint: Member must satisfy enum value set: [Standard, Advanced, "
                       "Intelligent-Tiering]",
                       q->tier);
    if (q->data_type && strcmp(q->data_type, "text") != 0)
        return al_fail(e, 400, "ValidationException",
                       "DataType '%s' is not supported by the embedded store; use 'text'.",
                       q->data_type);
    return 0;
}

/* Fills q from the request; q->policies must be freed (put_req_free). */
static int parse_put(al_ctx *c, const es_json *req, put_req *q, al_error *e)
{
    const char *policies;
    memset(q, 0, sizeof *q);
    if (!al_opt_str(req, "Name", &q->name, e) || !al_opt_str(req, "Value", &q->value, e) ||
        !al_opt_str(req, "Type", &q->type, e) || !al_opt_str(req, "KeyId", &q->key_ref, e) ||
        !al_opt_str(req, "Description", &q->description, e) ||
        !al_opt_str(req, "Tier", &q->tier, e) || !al_opt_str(req, "DataType", &q->data_type, e) ||
        !al_opt_str(req, "AllowedPattern", &q->pattern, e) ||
        !al_opt_str(req, "Policies", &policies, e) ||
        !al_opt_bool(req, "Overwrite", false, &q->overwrite, e))
        return -EINVAL;
    if (!q->name)
        return al_fail(e, 400, "ValidationException", "Name is required.");
    if (!q->value)
        return al_fail(e, 400, "ValidationException", "Value is required.");
    int r = check_put_fields(c, q, e);
    if (r < 0)
        return r;
    q->tags = es_json_get(req, "Tags");
    if (q->tags && q->tags->type == ES_JSON_NULL)
        q->tags = NULL;
    if (q->tags) {
        if ((r = al_tags_check(q->tags, AL_SSM_TAGS_MAX, &SSM_TAGS, e)) < 0)
            return r;
        /* AWS refuses the pair whether or not the parameter exists */
        if (q->overwrite && q->tags->u.array.n)
            return al_fail(e, 400, "ValidationException",
                           "Invalid request: tags and overwrite can't be used together. To create "
                           "a parameter with tags, please remove overwrite flag. To update tags "
                           "for an existing parameter, please use AddTagsToResource or "
                           "RemoveTagsFromResource.");
    }
    return policies ? parse_policies(c, policies, q, e) : 0;
}

static void put_req_free(put_req *q)
{
    es_free(q->policies);
    q->policies = NULL;
}

/* What the new version will be, from the request and the version it
 * replaces. */
typedef struct put_plan {
    const char *type, *description, *pattern, *key_ref, *tier, *policies;
    double expires;
    size_t vlen;
    int64_t version;
} put_plan;

/* The tier: Intelligent-Tiering picks Advanced when the value, the policies
 * or the old version need it; no downgrade; policies need Advanced. */
/* AWS's words (as terraform-provider-aws#18521 and aws-sdk-net#3157 quote
 * them) */
#define STANDARD_VALUE_MSG                                                                         \
    "Standard tier parameters support a maximum parameter value of %d characters. To create a "    \
    "larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more "  \
    "information, see "                                                                            \
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/"                                \
    "parameter-store-advanced-parameters.html"

static int plan_tier(const put_req *q, const pv *old, put_plan *pl, al_error *e)
{
    const char *tier = q->tier ? q->tier : old ? old->tier : "Standard";
    if (strcmp(tier, "Intelligent-Tiering") == 0)
        tier = pl->vlen > AL_SSM_STANDARD_VALUE_MAX || pl->policies ||
                       (old && strcmp(old->tier, "Advanced") == 0)
                   ? "Advanced"
                   : "Standard";
    if (old && strcmp(old->tier, "Advanced") == 0 && strcmp(tier, "Standard") == 0)
        return al_fail(e, 400, "ValidationException",
                       "This parameter uses the advanced-parameter tier. You can't downgrade a "
                       "parameter from the advanced-parameter tier to the standard-parameter tier. "
                       "If necessary, you can delete the advanced parameter and recreate it as a "
                       "standard parameter.");
    if (strcmp(tier, "Standard") == 0 && pl->policies)
        return al_fail(e, 400, "ValidationException",
                       "Standard tier parameters don't support parameter policies. To assign "
                       "policies, use the advanced-parameter tier (Tier Advanced or "
                       "Intelligent-Tiering).");
    bool adv = strcmp(tier, "Advanced") == 0;
    if (pl->vlen > (adv ? AL_SSM_ADVANCED_VALUE_MAX : AL_SSM_STANDARD_VALUE_MAX))
        return adv ? al_fail(e, 400, "ValidationException",
                             "Advanced tier parameters support a maximum parameter value of %d "
                             "characters; this value has %zu.",
                             AL_SSM_ADVANCED_VALUE_MAX, pl->vlen)
                   : al_fail(e, 400, "ValidationException", STANDARD_VALUE_MSG,
                             AL_SSM_STANDARD_VALUE_MAX);
    pl->tier = adv ? "Advanced" : "Standard"; /* a literal: it outlives the old version */
    return 0;
}

/* Fills pl: what is left out of the request is the old version's (type,
 * description, pattern, key; policies until new ones or "[]" are sent). */
static int plan_put(al_ctx *c, const put_req *q, const pv *old, put_plan *pl, al_error *e)
{
    memset(pl, 0, sizeof *pl);
    if (old && !q->overwrite)
        return al_fail(e, 400, "ParameterAlreadyExists",
                       "The parameter already exists. To overwrite this value, set the overwrite "
                       "option in the request to true.");
    pl->type = q->type ? q->type : old ? old->type : NULL;
    if (!pl->type)
        return al_fail(e, 400, "ValidationException",
                       "A parameter type is required when you create a parameter.");
    pl->description = q->description ? q->description : old ? old->description : NULL;
    pl->pattern = q->pattern ? q->pattern : old ? old->pattern : NULL;
    if (strcmp(pl->type, "SecureString") == 0)
        pl->key_ref = q->key_ref ? q->key_ref
                      : old && old->key_ref && strcmp(old->type, "SecureString") == 0
                          ? old->key_ref
                          : "alias/aws/ssm";
    else if (q->key_ref)
        return al_fail(e, 400, "ValidationException",
                       "KeyId is only valid for a SecureString parameter, not %s.", pl->type);
    pl->policies = q->policies_given ? q->policies : old ? old->policies : NULL;
    pl->expires = q->policies_given ? q->expires : old ? old->expires : 0;
    pl->vlen = strlen(q->value);
    int r = plan_tier(q, old, pl, e);
    if (r < 0)
        return r;
    /* on a worker thread when the call came through the listener (match.h) */
    return al_match_check(c, pl->pattern, q->value, e);
}

/* The new version's number; makes room when AL_SSM_VERSIONS_KEPT are kept
 * (the oldest goes unless a label holds it). */
static int plan_version(al_ctx *c, const char *canon, const char *name, put_plan *pl, al_error *e)
{
    int64_t n = 0, oldest = 0, labels = 0;
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT next_version FROM ssm_param WHERE canon=? AND region=?");
    if (!st || count_versions(c, canon, &n, &oldest) < 0) {
        al_db_release(c->db, st);
        return al_fail_internal(e, "InternalServerError");
    }
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    bind_region(c, st, 2);
    pl->version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 1;
    al_db_release(c->db, st);
    if (n < AL_SSM_VERSIONS_KEPT)
        return 0;
    if (label_count(c, canon, oldest, &labels) < 0)
        return al_fail_internal(e, "InternalServerError");
    if (labels)
        return al_fail(e, 400, "ParameterMaxVersionLimitExceeded",
                       "You attempted to create a new version of %s by calling the PutParameter "
                       "API with the overwrite flag. Version %lld, the oldest version, can't be "
                       "deleted because it has a label associated with it. Move the label to "
                       "another version of the parameter, and try again.",
                       name, (long long)oldest);
    if (exec_bound(c, "DELETE FROM ssm_version WHERE canon=? AND version=? AND region=?", canon,
                   oldest) < 0)
        return al_fail_internal(e, "InternalServerError");
    return 0;
}

/* A SecureString's value sealed under its key in the request's region, the
 * parameter's ARN bound in: *blob (es_malloc'ed) and key_id. */
static int seal_value(al_ctx *c, const char *principal, const put_plan *pl, const char *arn,
                      const char *value, char key_id[AL_KEY_ID_LEN + 1], uint8_t **blob,
                      size_t *bloblen, al_error *e)
{
    int r = al_kms_resolve_e(c, pl->key_ref, "InvalidKeyId", key_id, e);
    if (r < 0)
        return r;
    if (!al_kms_is_aws_managed(c, key_id)) {
        char key_arn[256];
        al_kms_key_arn(c, key_id, key_arn, sizeof key_arn);
        if ((r = al_authorize(c, principal, "kms:Encrypt", key_arn, e)) < 0)
            return r;
    }
    al_kv kv = {"PARAMETER_ARN", arn};
    r = al_kms_seal(c, key_id, &kv, 1, (const uint8_t *)value, pl->vlen, blob, bloblen);
    if (r == -EPERM)
        return al_fail(e, 400, "InvalidKeyId", "The KMS key %s is disabled.", pl->key_ref);
    if (r == -EKEYREVOKED) { /* pending deletion: SSM wraps KMS's refusal */
        char why[512];
        al_kms_reason(c, r, key_id, why, sizeof why);
        return al_fail(e, 400, "InvalidKeyId",
                       "%s (Service: AWSKMS; Status Code: 400; Error Code: "
                       "KMSInvalidStateException)",
                       why);
    }
    return r < 0 ? al_fail_internal(e, "InternalServerError") : 0;
}

/* The parameter row: inserted, or moved to the new version. */
static int write_param_row(al_ctx *c, const char *canon, const char *name, bool have_old,
                           const put_plan *pl)
{
    sqlite3_stmt *st =
        have_old ? al_db_prepare(c->db, "UPDATE ssm_param SET version=?2, next_version=?2+1, "
                                        "policies=?5, expires=?6 WHERE canon=?1 AND region=?4")
                 : al_db_prepare(c->db, "INSERT INTO ssm_param(canon, name, version, "
                                        "next_version, region, policies, expires) VALUES (?1, ?3, "
                                        "?2, ?2+1, ?4, ?5, ?6)");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, pl->version);
    if (!have_old)
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    bind_region(c, st, 4);
    if (pl->policies)
        sqlite3_bind_text(st, 5, pl->policies, -1, SQLITE_STATIC);
    if (pl->policies && pl->expires > 0)
        sqlite3_bind_double(st, 6, pl->expires);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 0 : -EIO;
}

static int write_version_row(al_ctx *c, const char *principal, const char *canon,
                             const put_plan *pl, const uint8_t *stored, size_t stored_len,
                             const char *key_id)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "INSERT INTO ssm_version(canon, version, type, value, key_id, "
                             "key_ref, description, allowed_pattern, tier, data_type, modified, "
                             "modified_user, region) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!st)
        return -EIO;
    char user[512];
    snprintf(user, sizeof user, "%s", principal ? principal : "");
    if (!*user)
        snprintf(user, sizeof user, "arn:%s:iam::%s:root", al_partition(c), c->account);
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, pl->version);
    sqlite3_bind_text(st, 3, pl->type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, stored, (int)stored_len, SQLITE_STATIC);
    if (pl->key_ref) {
        sqlite3_bind_text(st, 5, key_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, pl->key_ref, -1, SQLITE_STATIC);
    }
    if (pl->description)
        sqlite3_bind_text(st, 7, pl->description, -1, SQLITE_STATIC);
    if (pl->pattern)
        sqlite3_bind_text(st, 8, pl->pattern, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, pl->tier, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, "text", -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 11, al_now(c));
    sqlite3_bind_text(st, 12, user, -1, SQLITE_STATIC);
    bind_region(c, st, 13);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 0 : -EIO;
}

/* Adds (or replaces) the tags of an array of {Key, Value}. 0 or -EIO. */
static int write_tags(al_ctx *c, const char *canon, const es_json *tags)
{
    for (size_t i = 0; tags && i < tags->u.array.n; i++) {
        const es_json *t = tags->u.array.items[i];
        sqlite3_stmt *st = al_db_prepare(
            c->db, "INSERT OR REPLACE INTO ssm_tag(canon, key, value, region) VALUES (?,?,?,?)");
        if (!st)
            return -EIO;
        sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, es_json_get_str(t, "Key"), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, es_json_get_str(t, "Value"), -1, SQLITE_STATIC);
        bind_region(c, st, 4);
        int s = sqlite3_step(st);
        al_db_release(c->db, st);
        if (s != SQLITE_DONE)
            return -EIO;
    }
    return 0;
}

/* Deletes the parameters whose Expiration has passed, in every region: AWS
 * deletes them at that time; here the next write does (inside its
 * transaction), and every read already answers as if they were gone
 * (pv_expired, the scans' "expires" condition). 0 or -EIO. */
static int sweep_expired(al_ctx *c)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM ssm_param WHERE expires <= ?");
    if (!st)
        return -EIO;
    sqlite3_bind_double(st, 1, al_now(c));
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 0 : -EIO;
}

/* Starts a write: the transaction, then the sweep of expired parameters. */
static int write_begin(al_ctx *c, al_error *e)
{
    if (al_db_begin(c->db) < 0)
        return al_fail_internal(e, "InternalServerError");
    if (sweep_expired(c) < 0) {
        al_db_rollback(c->db);
        return al_fail_internal(e, "InternalServerError");
    }
    return 0;
}

/* Inside the transaction: plans, seals and writes the new version. */
static int put_in_tx(al_ctx *c, const char *principal, const put_req *q, const char *canon,
                     const char *arn, put_plan *pl, al_error *e)
{
    pv old;
    memset(&old, 0, sizeof old); /* load_pv leaves it untouched when there is none */
    int r = load_pv(c, canon, 0, NULL, &old);
    if (r < 0 && r != -ENOENT)
        return al_fail_internal(e, "InternalServerError");
    bool have_old = r == 0;
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    char key_id[AL_KEY_ID_LEN + 1] = "";
    if ((r = plan_put(c, q, have_old ? &old : NULL, pl, e)) < 0 ||
        (have_old && (r = plan_version(c, canon, q->name, pl, e)) < 0) ||
        (pl->key_ref &&
         (r = seal_value(c, principal, pl, arn, q->value, key_id, &blob, &bloblen, e)) < 0))
        goto out;
    if (!have_old)
        pl->version = 1;
    if (write_param_row(c, canon, q->name, have_old, pl) < 0 ||
        write_version_row(c, principal, canon, pl, blob ? blob : (const uint8_t *)q->value,
                          blob ? bloblen : pl->vlen, key_id) < 0 ||
        (!have_old && write_tags(c, canon, q->tags) < 0))
        r = al_fail_internal(e, "InternalServerError");
out:
    pv_clear(&old); /* pl's strings may point into it: only pl->tier is used after */
    es_free(blob);
    return r;
}

static int op_put_parameter(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                            al_error *e)
{
    put_req q;
    put_plan pl;
    int r = parse_put(c, req, &q, e);
    if (r < 0)
        goto out;
    const char *canon = canon_of(q.name);
    char arn[ARN_MAX];
    param_arn(c, canon, arn, sizeof arn);
    if ((r = al_authorize(c, principal, "ssm:PutParameter", arn, e)) < 0 ||
        (r = write_begin(c, e)) < 0)
        goto out;
    r = put_in_tx(c, principal, &q, canon, arn, &pl, e);
    if (r < 0) {
        al_db_rollback(c->db);
        goto out;
    }
    if (al_db_commit(c->db) < 0) {
        r = al_fail_internal(e, "InternalServerError");
        goto out;
    }
    es_jw_obj(w);
    es_jw_kint(w, "Version", pl.version);
    es_jw_kstr(w, "Tier", pl.tier);
    es_jw_obj_end(w);
out:
    put_req_free(&q);
    return r;
}

/* ---- paths, filters, listing ---- */

/* The name with a leading '/' (one-level names are matched as "/name"). */
static void slash_form(const char *canon, char *out, size_t n)
{
    snprintf(out, n, "%s%s", canon[0] == '/' ? "" : "/", canon);
}

/* path[0..pl) is a checked path without trailing '/' (or "/"). */
static bool path_match_n(const char *path, size_t pl, const char *canon, bool recursive)
{
    char full[AL_SSM_NAME_MAX + 2];
    slash_form(canon, full, sizeof full);
    const char *rest;
    if (pl == 1) {
        rest = full + 1;
    } else {
        if (strncmp(full, path, pl) != 0 || full[pl] != '/')
            return false;
        rest = full + pl + 1;
    }
    return *rest && (recursive || !strchr(rest, '/'));
}

static bool path_match(const char *path, const char *canon, bool recursive)
{
    return path_match_n(path, strlen(path), canon, recursive);
}

/* Validates Path and copies it without a trailing '/' into out. */
static int check_path(const char *path, char *out, size_t outlen, al_error *e)
{
    size_t n = strlen(path);
    if (n < 1 || n > AL_SSM_NAME_MAX || path[0] != '/')
        return al_fail(e, 400, "ValidationException",
                       "Path '%s' is not valid: it must begin with '/' and be at most %d "
                       "characters.",
                       path, AL_SSM_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if (!name_char(path[i]))
            return al_fail(e, 400, "ValidationException",
                           "Path '%s' is not valid: only a-zA-Z0-9_.- and '/' are allowed.", path);
    if (n > 1 && path[n - 1] == '/')
        n--;
    if (strstr(path, "//"))
        return al_fail(e, 400, "ValidationException",
                       "Path '%s' is not valid: empty hierarchy level.", path);
    size_t levels = 0;
    for (size_t i = 0; i < n; i++)
        levels += path[i] == '/';
    if (levels > AL_SSM_MAX_LEVELS)
        return al_fail(e, 400, "HierarchyLevelLimitExceededException",
                       "Path '%s' is deeper than %d levels.", path, AL_SSM_MAX_LEVELS);
    snprintf(out, outlen, "%.*s", (int)n, path);
    return 0;
}

/* NextToken: base64 of the last canon answered. */
static int token_decode(const char *tok, char *out, size_t outlen, al_error *e)
{
    out[0] = '\0';
    if (!tok)
        return 0;
    uint8_t *d = NULL;
    size_t n = 0;
    if (strlen(tok) > TOKEN_MAX || al_b64_decode(tok, strlen(tok), &d, &n) < 0 || n == 0 ||
        n >= outlen || memchr(d, 0, n)) {
        es_free(d);
        return al_fail(e, 400, "InvalidNextToken", "The specified token is not valid.");
    }
    memcpy(out, d, n + 1);
    es_free(d);
    return 0;
}

static void token_write(es_jw *w, const char *canon)
{
    es_jw_key(w, "NextToken");
    al_jw_b64(w, (const uint8_t *)canon, strlen(canon));
}

typedef enum fkey { F_NAME, F_PATH, F_TYPE, F_KEYID, F_TIER, F_DATATYPE, F_LABEL, F_TAG } fkey;

typedef struct filter {
    fkey key;
    const char *tag; /* F_TAG: the tag key */
    enum { O_EQUALS, O_BEGINS, O_CONTAINS, O_RECURSIVE, O_ONELEVEL } opt;
    const es_json *values;
    char key_ids[50][AL_KEY_ID_LEN + 1]; /* F_KEYID: resolved values, "" when unknown */
    size_t path_len[50];                 /* F_PATH: the value's length without a trailing '/' */
} filter;

#define MAX_FILTERS 10
#define FILTER_KEY_PATTERN "tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType"

/* The key of a filter, as ParameterFilters (pf) or the deprecated Filters
 * name it; what each operation accepts is checked after. */
static int filter_key(const char *k, bool pf, size_t i, filter *fi, al_error *e)
{
    static const struct {
        const char *name;
        fkey key;
    } keys[] = {{"Name", F_NAME}, {"Type", F_TYPE},         {"KeyId", F_KEYID}, {"Path", F_PATH},
                {"Tier", F_TIER}, {"DataType", F_DATATYPE}, {"Label", F_LABEL}};
    size_t nk = pf ? sizeof keys / sizeof keys[0] : 3;
    for (size_t j = 0; k && j < nk; j++)
        if (strcmp(k, keys[j].name) == 0) {
            fi->key = keys[j].key;
            return 0;
        }
    if (pf && k && strncmp(k, "tag:", 4) == 0 && k[4] && strlen(k) <= 132) {
        fi->key = F_TAG, fi->tag = k + 4;
        return 0;
    }
    if (!pf)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value '%s' at 'filters.%zu.member.key' failed "
                       "to satisfy constraint: Member must satisfy enum value set: [Name, Type, "
                       "KeyId]",
                       k ? k : "null", i + 1);
    return al_fail(e, 400, "ValidationException",
                   "1 validation error detected: Value '%s' at 'parameterFilters.%zu.member.key' "
                   "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                   "%s",
                   k ? k : "null", i + 1, FILTER_KEY_PATTERN);
}

/* Keys an operation does not take: Label in DescribeParameters; Name, Path,
 * Tier, DataType and tags in GetParametersByPath. */
static int filter_key_allowed(const filter *fi, const char *k, bool by_path, al_error *e)
{
    if (!by_path && fi->key == F_LABEL)
        return al_fail(e, 400, "InvalidFilterKey",
                       "The following filter key is not valid: Label. Valid filter keys include: "
                       "[Path, Name, Type, KeyId, Tier].");
    if (by_path && fi->key != F_TYPE && fi->key != F_KEYID && fi->key != F_LABEL)
        return al_fail(e, 400, "InvalidFilterKey",
                       "The following filter key is not valid: %s. Valid filter keys include: "
                       "[Type, KeyId].",
                       k);
    return 0;
}

/* Values: 1 to 50 strings of 1 to AL_SSM_FILTER_VALUE_MAX characters
 * (tag:KEY may leave them out: any value). */
static int filter_values(const filter *fi, const char *k, size_t i, bool pf, al_error *e)
{
    const char *field = pf ? "parameterFilters" : "filters";
    const es_json *v = fi->values;
    if (!v || v->type == ES_JSON_NULL || (v->type == ES_JSON_ARRAY && v->u.array.n == 0)) {
        if (fi->key == F_TAG)
            return 0;
        return al_fail(e, 400, "InvalidFilterValue",
                       "The following filter values are missing : null for filter key %s.", k);
    }
    if (v->type != ES_JSON_ARRAY || v->u.array.n > 50)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value at '%s.%zu.member.values' failed to "
                       "satisfy constraint: Member must have length less than or equal to 50",
                       field, i + 1);
    for (size_t j = 0; j < v->u.array.n; j++) {
        const char *s = es_json_as_str(v->u.array.items[j]);
        if (!s || !*s || strlen(s) > AL_SSM_FILTER_VALUE_MAX)
            return al_fail(e, 400, "ValidationException",
                           "1 validation error detected: Value at '%s.%zu.member.values' failed "
                           "to satisfy constraint: [Member must have length less than or equal to "
                           "%d, Member must have length greater than or equal to 1]",
                           field, i + 1, AL_SSM_FILTER_VALUE_MAX);
    }
    return 0;
}

/* A Path filter's value: fully qualified, not under /aws or /ssm. */
static int filter_path_value(const char *v, size_t *len, al_error *e)
{
    if (strncasecmp(v, "/aws", 4) == 0 || strncasecmp(v, "/ssm", 4) == 0)
        return al_fail(e, 400, "ValidationException",
                       "Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" "
                       "(case-insensitive). When using global parameters, please specify within "
                       "a global namespace.");
    bool ok = v[0] == '/' && !strstr(v, "//");
    for (const char *p = v; ok && *p; p++)
        ok = name_char(*p);
    if (!ok)
        return al_fail(e, 400, "ValidationException",
                       "The parameter doesn't meet the parameter name requirements. The parameter "
                       "name must begin with a forward slash \"/\". It can't be prefixed with "
                       "\"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, "
                       "or the following symbols: . (period), - (hyphen), _ (underscore). Special "
                       "characters are not allowed. All sub-paths, if specified, must use the "
                       "forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.");
    char norm[AL_SSM_NAME_MAX + 1];
    int r = check_path(v, norm, sizeof norm, e);
    *len = strlen(norm);
    return r;
}

/* Type, Tier and DataType take only the values of their enum. */
static int filter_enum_value(const filter *fi, const char *v, al_error *e)
{
    const char *valid = fi->key == F_TYPE       ? "String, StringList, SecureString"
                        : fi->key == F_TIER     ? "Standard, Advanced, Intelligent-Tiering"
                        : fi->key == F_DATATYPE ? "text, aws:ec2:image, aws:ssm:integration"
                                                : NULL;
    if (!valid)
        return 0;
    /* a whole item of the list: "v" followed by ',' or the end */
    for (const char *p = valid; (p = strstr(p, v)); p++)
        if ((p == valid || p[-2] == ',') && (p[strlen(v)] == ',' || !p[strlen(v)]))
            return 0;
    return al_fail(e, 400, "InvalidFilterOption",
                   "The following filter value is not valid: %s. Valid values include: [%s].", v,
                   valid);
}

/* The Option: Path takes OneLevel (its default) or Recursive; the others
 * Equals (default) or BeginsWith, Name also Contains; Label in
 * GetParametersByPath only Equals. The deprecated Filters' Name matches
 * prefixes. */
static int filter_option(filter *fi, const char *opt, size_t i, bool pf, al_error *e)
{
    fi->opt = fi->key == F_PATH ? O_ONELEVEL : !pf && fi->key == F_NAME ? O_BEGINS : O_EQUALS;
    if (!opt)
        return 0;
    if (strlen(opt) > 10 || !*opt)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value '%s' at "
                       "'parameterFilters.%zu.member.option' failed to satisfy constraint: Member "
                       "must have length less than or equal to 10",
                       opt, i + 1);
    if (fi->key == F_PATH) {
        if (strcmp(opt, "Recursive") == 0 || strcmp(opt, "OneLevel") == 0) {
            fi->opt = opt[0] == 'R' ? O_RECURSIVE : O_ONELEVEL;
            return 0;
        }
        return al_fail(e, 400, "InvalidFilterOption",
                       "The following filter option is not valid: %s. Valid options include: "
                       "[Recursive, OneLevel].",
                       opt);
    }
    if (strcmp(opt, "Equals") == 0)
        fi->opt = O_EQUALS;
    else if (strcmp(opt, "BeginsWith") == 0 && fi->key != F_LABEL)
        fi->opt = O_BEGINS;
    else if (strcmp(opt, "Contains") == 0 && fi->key == F_NAME)
        fi->opt = O_CONTAINS;
    else
        return al_fail(e, 400, "InvalidFilterOption",
                       "The following filter option is not valid: %s. Valid options include: [%s].",
                       opt,
                       fi->key == F_LABEL  ? "Equals"
                       : fi->key == F_NAME ? "BeginsWith, Equals, Contains"
                                           : "BeginsWith, Equals");
    return 0;
}

/* One filter of the list, checked in AWS's order: key, operation, values,
 * option, each value. */
static int parse_filter(al_ctx *c, const es_json *x, size_t i, bool pf, bool by_path, filter *fi,
                        al_error *e)
{
    memset(fi, 0, sizeof *fi);
    const char *k = es_json_get_str(x, "Key");
    const char *opt = es_json_get_str(x, "Option");
    fi->values = es_json_get(x, "Values");
    int r;
    if ((r = filter_key(k, pf, i, fi, e)) < 0 || (r = filter_key_allowed(fi, k, by_path, e)) < 0 ||
        (r = filter_values(fi, k, i, pf, e)) < 0 || (r = filter_option(fi, opt, i, pf, e)) < 0)
        return r;
    if (fi->values && fi->values->type == ES_JSON_NULL)
        fi->values = NULL;
    for (size_t j = 0; fi->values && j < fi->values->u.array.n; j++) {
        const char *v = es_json_as_str(fi->values->u.array.items[j]);
        if (fi->key == F_KEYID && al_kms_resolve(c, v, fi->key_ids[j]) < 0)
            fi->key_ids[j][0] = '\0';
        if (fi->key == F_PATH && (r = filter_path_value(v, &fi->path_len[j], e)) < 0)
            return r;
        if ((r = filter_enum_value(fi, v, e)) < 0)
            return r;
    }
    return 0;
}

static int parse_filters(al_ctx *c, const es_json *req, bool by_path, filter *f, size_t *nf,
                         al_error *e)
{
    *nf = 0;
    const es_json *pf = es_json_get(req, "ParameterFilters");
    const es_json *legacy = by_path ? NULL : es_json_get(req, "Filters");
    if (pf && pf->type == ES_JSON_NULL)
        pf = NULL;
    if (legacy && legacy->type == ES_JSON_NULL)
        legacy = NULL;
    if (pf && legacy)
        return al_fail(e, 400, "ValidationException",
                       "You can use either Filters or ParameterFilters in a single request.");
    const es_json *list = pf ? pf : legacy;
    if (!list)
        return 0;
    if (list->type != ES_JSON_ARRAY || list->u.array.n > MAX_FILTERS)
        return al_fail(e, 400, "ValidationException", "At most %d filters may be given.",
                       MAX_FILTERS);
    for (size_t i = 0; i < list->u.array.n; i++) {
        int r = parse_filter(c, list->u.array.items[i], i, pf != NULL, by_path, &f[i], e);
        if (r < 0)
            return r;
        for (size_t j = 0; j < i; j++)
            if (f[j].key == f[i].key && (f[i].key != F_TAG || strcmp(f[j].tag, f[i].tag) == 0))
                return al_fail(e, 400, "InvalidFilterKey",
                               "The following filter is duplicated in the request: %s. A request "
                               "can contain only one occurrence of a specific filter.",
                               es_json_get_str(list->u.array.items[i], "Key"));
    }
    *nf = list->u.array.n;
    return 0;
}

static bool has_label(al_ctx *c, const char *canon, const char *label)

{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT 1 FROM ssm_label WHERE canon=? AND label=? AND region=?");
    if (!st)
        return false;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    bind_region(c, st, 3);
    bool yes = sqlite3_step(st) == SQLITE_ROW;
    al_db_release(c->db, st);
    return yes;
}

/* Has the parameter the tag key (with value, or a value beginning with it
 * when begins; any value when value is NULL)? */
static bool tag_matches(al_ctx *c, const char *canon, const char *key, const char *value,
                        bool begins)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT 1 FROM ssm_tag WHERE canon=? AND key=? AND (?3 IS NULL OR value=?3 OR "
               "(?5 AND substr(value, 1, length(?3))=?3)) AND region=?4");
    if (!st)
        return false;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    bind_region(c, st, 4);
    sqlite3_bind_int(st, 5, begins);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (value)
        sqlite3_bind_text(st, 3, value, -1, SQLITE_STATIC);
    bool yes = sqlite3_step(st) == SQLITE_ROW;
    al_db_release(c->db, st);
    return yes;
}

/* s compared with v by the filter's option (Equals, BeginsWith, Contains) */
static bool str_matches(int opt, const char *s, const char *v)
{
    if (!s)
        return false;
    if (opt == O_BEGINS)
        return strncmp(s, v, strlen(v)) == 0;
    if (opt == O_CONTAINS)
        return strstr(s, v) != NULL;
    return strcmp(s, v) == 0;
}

static bool filter_one(al_ctx *c, const filter *f, const pv *p, const char *v, size_t j)
{
    switch (f->key) {
    case F_NAME: {
        /* names compare in their '/' form: "/a" and "a" are one parameter */
        char name[AL_SSM_NAME_MAX + 2], want[AL_SSM_FILTER_VALUE_MAX + 2];
        slash_form(p->canon, name, sizeof name);
        if (f->opt == O_CONTAINS)
            return strstr(name, v) != NULL;
        slash_form(v, want, sizeof want);
        return str_matches(f->opt, name, want);
    }
    case F_PATH:
        return path_match_n(v, f->path_len[j], p->canon, f->opt == O_RECURSIVE);
    case F_TYPE:
        return str_matches(f->opt, p->type, v);
    case F_KEYID:
        if (f->opt == O_EQUALS)
            return p->key_id && ((f->key_ids[j][0] && strcmp(f->key_ids[j], p->key_id) == 0) ||
                                 (p->key_ref && strcmp(p->key_ref, v) == 0));
        return str_matches(f->opt, p->key_ref, v);
    case F_TIER:
        return str_matches(f->opt, p->tier, v);
    case F_DATATYPE:
        return str_matches(f->opt, p->data_type, v);
    case F_LABEL:
        return has_label(c, p->canon, v);
    case F_TAG:
        return tag_matches(c, p->canon, f->tag, v, f->opt == O_BEGINS);
    }
    return false;
}

static bool filters_match(al_ctx *c, const filter *f, size_t nf, const pv *p)
{
    for (size_t i = 0; i < nf; i++) {
        bool any = false;
        if (f[i].key == F_TAG && !f[i].values)
            any = tag_matches(c, p->canon, f[i].tag, NULL, false);
        for (size_t j = 0; !any && f[i].values && j < f[i].values->u.array.n; j++)
            any = filter_one(c, &f[i], p, es_json_as_str(f[i].values->u.array.items[j]), j);
        if (!any)
            return false;
    }
    return true;
}

/* Iterates the latest version of every parameter after `after` (canon
 * order) whose canon lies in [lo, hi) when lo is not NULL. */
static sqlite3_stmt *scan_latest(al_ctx *c, const char *after, const char *lo, const char *hi)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT " PV_COLUMNS " FROM ssm_param p JOIN ssm_version v ON v.region=p.region "
               "AND v.canon=p.canon AND v.version=p.version WHERE p.region=?4 AND p.canon > ?1 AND "
               "(?2 IS NULL OR (p.canon >= ?2 AND p.canon < ?3)) AND (p.expires IS NULL OR "
               "p.expires > ?5) ORDER BY p.canon");
    if (!st)
        return NULL;
    bind_region(c, st, 4);
    sqlite3_bind_double(st, 5, al_now(c));
    sqlite3_bind_text(st, 1, after, -1, SQLITE_TRANSIENT);
    if (lo) {
        sqlite3_bind_text(st, 2, lo, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, hi, -1, SQLITE_TRANSIENT);
    }
    return st;
}

static int op_get_parameters_by_path(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                     al_error *e)
{
    const char *path_in, *tok;
    bool recursive, decrypt;
    int64_t max;
    char path[AL_SSM_NAME_MAX + 1], after[AL_SSM_NAME_MAX + 1];
    filter *f = NULL;
    size_t nf = 0;
    int r;
    if (!al_opt_str(req, "Path", &path_in, e) || !al_opt_str(req, "NextToken", &tok, e) ||
        !al_opt_bool(req, "Recursive", false, &recursive, e) ||
        !al_opt_bool(req, "WithDecryption", false, &decrypt, e) ||
        !al_opt_int(req, "MaxResults", 1, 10, 10, &max, e))
        return -EINVAL;
    if (!path_in)
        return al_fail(e, 400, "ValidationException", "Path is required.");
    if ((r = check_path(path_in, path, sizeof path, e)) < 0 ||
        (r = token_decode(tok, after, sizeof after, e)) < 0)
        return r;
    f = es_calloc(MAX_FILTERS, sizeof *f);
    if (!f)
        return al_fail_internal(e, "InternalServerError");
    if ((r = parse_filters(c, req, true, f, &nf, e)) < 0)
        goto out;
    char arn[ARN_MAX];
    param_arn(c, path[1] ? path : "", arn, sizeof arn);
    if ((r = al_authorize(c, principal, "ssm:GetParametersByPath", arn, e)) < 0)
        goto out;
    /* hierarchical names under the path share the prefix "path/" */
    char lo[AL_SSM_NAME_MAX + 2], hi[AL_SSM_NAME_MAX + 2];
    snprintf(lo, sizeof lo, "%s/", path);
    snprintf(hi, sizeof hi, "%s0", path); /* '0' follows '/' */
    sqlite3_stmt *st = scan_latest(c, after, path[1] ? lo : NULL, hi);
    if (!st) {
        r = al_fail_internal(e, "InternalServerError");
        goto out;
    }
    es_jw_obj(w);
    es_jw_key(w, "Parameters");
    es_jw_arr(w);
    int64_t n = 0;
    char last[AL_SSM_NAME_MAX + 1] = "";
    bool more = false;
    r = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        pv p;
        if (pv_from_row(st, &p) < 0) {
            r = al_fail_internal(e, "InternalServerError");
            break;
        }
        if (path_match(path, p.canon, recursive) && filters_match(c, f, nf, &p)) {
            if (n == max) {
                more = true;
                pv_clear(&p);
                break;
            }
            r = write_parameter(c, principal, &p, NULL, 0, NULL, decrypt, w, e);
            snprintf(last, sizeof last, "%s", p.canon);
            n++;
        }
        pv_clear(&p);
        if (r < 0)
            break;
    }
    al_db_release(c->db, st);
    if (r < 0)
        goto out;
    es_jw_arr_end(w);
    if (more)
        token_write(w, last);
    es_jw_obj_end(w);
out:
    es_free(f);
    return r;
}

/* "Policies": each of the parameter's policies with its text, type and
 * status (Pending: an Expiration that had passed would have made the
 * parameter invisible; notifications are recorded, not sent). */
static void write_policies(const pv *p, es_jw *w)
{
    es_json *arr = NULL;
    es_jw_key(w, "Policies");
    es_jw_arr(w);
    if (p->policies && es_json_parse(p->policies, strlen(p->policies), &es_json_default_limits,
                                     &arr, NULL, 0) == 0) {
        for (size_t i = 0; arr->type == ES_JSON_ARRAY && i < arr->u.array.n; i++) {
            es_buf b;
            es_buf_init(&b, AL_SSM_POLICIES_TEXT_MAX * 2);
            es_jw one;
            es_jw_init(&one, &b);
            es_jw_value(&one, arr->u.array.items[i]);
            if (es_jw_finish(&one) == 0) {
                es_jw_obj(w);
                es_jw_key(w, "PolicyText");
                es_jw_strn(w, b.data, b.len);
                es_jw_kstr(w, "PolicyType", es_json_get_str(arr->u.array.items[i], "Type"));
                es_jw_kstr(w, "PolicyStatus", "Pending");
                es_jw_obj_end(w);
            }
            es_buf_free(&b);
        }
    }
    es_json_free(arr);
    es_jw_arr_end(w);
}

static void write_metadata(al_ctx *c, const pv *p, es_jw *w)
{
    char arn[ARN_MAX];
    param_arn(c, p->canon, arn, sizeof arn);
    es_jw_kstr(w, "Name", p->name);
    es_jw_kstr(w, "ARN", arn);
    es_jw_kstr(w, "Type", p->type);
    if (p->key_ref)
        es_jw_kstr(w, "KeyId", p->key_ref);
    es_jw_key(w, "LastModifiedDate");
    es_jw_double(w, p->modified);
    es_jw_kstr(w, "LastModifiedUser", p->user);
    if (p->description)
        es_jw_kstr(w, "Description", p->description);
    if (p->pattern)
        es_jw_kstr(w, "AllowedPattern", p->pattern);
    es_jw_kint(w, "Version", p->version);
    es_jw_kstr(w, "Tier", p->tier);
    write_policies(p, w);
    es_jw_kstr(w, "DataType", p->data_type);
}

static int op_describe_parameters(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                  al_error *e)
{
    const char *tok;
    int64_t max;
    char after[AL_SSM_NAME_MAX + 1];
    filter *f = NULL;
    size_t nf = 0;
    int r;
    if (!al_opt_str(req, "NextToken", &tok, e) ||
        !al_opt_int(req, "MaxResults", 1, 50, 50, &max, e))
        return -EINVAL;
    if ((r = token_decode(tok, after, sizeof after, e)) < 0)
        return r;
    f = es_calloc(MAX_FILTERS, sizeof *f);
    if (!f)
        return al_fail_internal(e, "InternalServerError");
    if ((r = parse_filters(c, req, false, f, &nf, e)) < 0)
        goto out;
    if ((r = al_authorize(c, principal, "ssm:DescribeParameters", "*", e)) < 0)
        goto out;
    sqlite3_stmt *st = scan_latest(c, after, NULL, NULL);
    if (!st) {
        r = al_fail_internal(e, "InternalServerError");
        goto out;
    }
    es_jw_obj(w);
    es_jw_key(w, "Parameters");
    es_jw_arr(w);
    int64_t n = 0;
    char last[AL_SSM_NAME_MAX + 1] = "";
    bool more = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        pv p;
        if (pv_from_row(st, &p) < 0) {
            r = al_fail_internal(e, "InternalServerError");
            break;
        }
        if (filters_match(c, f, nf, &p)) {
            if (n == max) {
                more = true;
                pv_clear(&p);
                break;
            }
            es_jw_obj(w);
            write_metadata(c, &p, w);
            es_jw_obj_end(w);
            snprintf(last, sizeof last, "%s", p.canon);
            n++;
        }
        pv_clear(&p);
    }
    al_db_release(c->db, st);
    if (r < 0)
        goto out;
    es_jw_arr_end(w);
    if (more)
        token_write(w, last);
    es_jw_obj_end(w);
out:
    es_free(f);
    return r;
}

/* ---- history ---- */

static int write_labels(al_ctx *c, const char *canon, int64_t version, es_jw *w)
{
    sqlite3_stmt *st = al_db_prepare(
        c->db,
        "SELECT label FROM ssm_label WHERE canon=? AND version=? AND region=? ORDER BY label");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    bind_region(c, st, 3);
    sqlite3_bind_int64(st, 2, version);
    es_jw_key(w, "Labels");
    es_jw_arr(w);
    while (sqlite3_step(st) == SQLITE_ROW)
        es_jw_str(w, (const char *)sqlite3_column_text(st, 0));
    es_jw_arr_end(w);
    al_db_release(c->db, st);
    return 0;
}

static int op_get_parameter_history(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                    al_error *e)
{
    const char *name, *tok;
    bool decrypt;
    int64_t max;
    if (!al_opt_str(req, "Name", &name, e) || !al_opt_str(req, "NextToken", &tok, e) ||
        !al_opt_bool(req, "WithDecryption", false, &decrypt, e) ||
        !al_opt_int(req, "MaxResults", 1, 50, 50, &max, e))
        return -EINVAL;
    if (!name)
        return al_fail(e, 400, "ValidationException", "Name is required.");
    size_t off;
    int r = arn_name_offset(c, name, &off, e);
    if (r < 0)
        return r;
    name += off;
    r = check_name(c, name, false, e);
    if (r < 0)
        return r;
    int64_t after = 0;
    if (tok && !al_number_token(tok, &after))
        return al_fail(e, 400, "InvalidNextToken", "The specified token is not valid.");
    const char *canon = canon_of(name);
    char arn[ARN_MAX];
    param_arn(c, canon, arn, sizeof arn);
    if ((r = al_authorize(c, principal, "ssm:GetParameterHistory", arn, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT " PV_COLUMNS " FROM ssm_param p JOIN ssm_version v ON v.region=p.region "
               "AND v.canon=p.canon WHERE p.canon=?1 AND v.version > ?2 AND p.region=?4 AND "
               "(p.expires IS NULL OR p.expires > ?5) ORDER BY v.version LIMIT ?3");
    if (!st)
        return al_fail_internal(e, "InternalServerError");
    bind_region(c, st, 4);
    sqlite3_bind_double(st, 5, al_now(c));
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, max + 1);
    es_jw_obj(w);
    es_jw_key(w, "Parameters");
    es_jw_arr(w);
    int64_t n = 0, last = 0;
    bool more = false;
    r = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == max) {
            more = true;
            break;
        }
        pv p;
        if (pv_from_row(st, &p) < 0) {
            r = al_fail_internal(e, "InternalServerError");
            break;
        }
        es_jw_obj(w);
        write_metadata(c, &p, w);
        r = write_value(c, principal, &p, arn, decrypt, w, e); /* p.canon is canon */
        if (r == 0)
            r = write_labels(c, p.canon, p.version, w) < 0
                    ? al_fail_internal(e, "InternalServerError")
                    : 0;
        es_jw_obj_end(w);
        last = p.version;
        n++;
        pv_clear(&p);
        if (r < 0)
            break;
    }
    al_db_release(c->db, st);
    if (r < 0)
        return r;
    if (n == 0 && !tok) {
        pv p;
        r = load_pv(c, canon, 0, NULL, &p);
        if (r == 0)
            pv_clear(&p);
        else
            return not_found(e, name, r);
    }
    es_jw_arr_end(w);
    if (more) {
        char t[32];
        snprintf(t, sizeof t, "%lld", (long long)last);
        es_jw_kstr(w, "NextToken", t);
    }
    es_jw_obj_end(w);
    return 0;
}

/* ---- delete ---- */

static int delete_one(al_ctx *c, const char *principal, const char *action, const char *name,
                      al_error *e)
{
    size_t off;
    int r = arn_name_offset(c, name, &off, e);
    if (r < 0)
        return r;
    name += off;
    r = check_name(c, name, false, e);
    if (r < 0)
        return r;
    const char *canon = canon_of(name);
    char arn[ARN_MAX];
    param_arn(c, canon, arn, sizeof arn);
    if ((r = al_authorize(c, principal, action, arn, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM ssm_param WHERE canon=? AND region=?");
    if (!st)
        return al_fail_internal(e, "InternalServerError");
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    bind_region(c, st, 2);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "InternalServerError");
    if (sqlite3_changes(al_db_handle(c->db)) == 0) {
        al_fail(e, 400, "ParameterNotFound", "Parameter %s not found.", name);
        return -ENOENT;
    }
    return 0;
}

static int op_delete_parameter(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                               al_error *e)
{
    const char *name;
    if (!al_opt_str(req, "Name", &name, e))
        return -EINVAL;
    if (!name)
        return al_fail(e, 400, "ValidationException", "Name is required.");
    int r = write_begin(c, e);
    if (r < 0)
        return r;
    r = delete_one(c, principal, "ssm:DeleteParameter", name, e);
    if (r < 0) {
        al_db_rollback(c->db);
        return r == -ENOENT ? -EINVAL : r;
    }
    if (al_db_commit(c->db) < 0)
        return al_fail_internal(e, "InternalServerError");
    es_jw_obj(w);
    es_jw_obj_end(w);
    return 0;
}

static int op_delete_parameters(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                al_error *e)
{
    const es_json *names = es_json_get(req, "Names");
    if (!names || names->type != ES_JSON_ARRAY || names->u.array.n < 1 ||
        names->u.array.n > AL_SSM_GET_MAX_NAMES)
        return al_fail(e, 400, "ValidationException",
                       "Names must be a list of 1 to %d parameter names.", AL_SSM_GET_MAX_NAMES);
    size_t n = names->u.array.n;
    bool deleted[AL_SSM_GET_MAX_NAMES] = {false};
    for (size_t i = 0; i < n; i++)
        if (!es_json_as_str(names->u.array.items[i]))
            return al_fail(e, 400, "ValidationException", "Names must be strings.");
    int r0 = write_begin(c, e);
    if (r0 < 0)
        return r0;
    for (size_t i = 0; i < n; i++) {
        al_error e1;
        int r = delete_one(c, principal, "ssm:DeleteParameters",
                           es_json_as_str(names->u.array.items[i]), &e1);
        if (r == 0)
            deleted[i] = true;
        else if (r == -ENOENT || strcmp(e1.code, "ValidationException") == 0 ||
                 strcmp(e1.code, "HierarchyLevelLimitExceededException") == 0)
            continue;
        else {
            al_db_rollback(c->db);
            *e = e1;
            return r;
        }
    }
    if (al_db_commit(c->db) < 0)
        return al_fail_internal(e, "InternalServerError");
    es_jw_obj(w);
    es_jw_key(w, "DeletedParameters");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        if (deleted[i])
            es_jw_str(w, es_json_as_str(names->u.array.items[i]));
    es_jw_arr_end(w);
    es_jw_key(w, "InvalidParameters");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        if (!deleted[i])
            es_jw_str(w, es_json_as_str(names->u.array.items[i]));
    es_jw_arr_end(w);
    es_jw_obj_end(w);
    return 0;
}

/* ---- labels ---- */

static bool label_ok(const char *l)
{
    size_t n = strlen(l);
    if (n < 1 || n > AL_SSM_LABEL_MAX || (l[0] >= '0' && l[0] <= '9') || reserved_prefix(l))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = l[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

/* The part (Un)LabelParameterVersion share after their Name checks: the
 * Labels list (1 to AL_SSM_LABELS_PER_VERSION strings) in *labels, *name
 * without an ARN prefix and checked, action authorised on the parameter. */
static int label_request(al_ctx *c, const char *principal, const es_json *req, const char *action,
                         const char **name, const es_json **labels, al_error *e)
{
    const es_json *l = es_json_get(req, "Labels");
    if (!l || l->type != ES_JSON_ARRAY || l->u.array.n < 1 ||
        l->u.array.n > AL_SSM_LABELS_PER_VERSION)
        return al_fail(e, 400, "ValidationException", "Labels must be a list of 1 to %d labels.",
                       AL_SSM_LABELS_PER_VERSION);
    for (size_t i = 0; i < l->u.array.n; i++)
        if (!es_json_as_str(l->u.array.items[i]))
            return al_fail(e, 400, "ValidationException", "Labels must be strings.");
    size_t off;
    int r = arn_name_offset(c, *name, &off, e);
    if (r < 0)
        return r;
    const char *n = *name + off;
    if ((r = check_name(c, n, false, e)) < 0)
        return r;
    char arn[ARN_MAX];
    param_arn(c, canon_of(n), arn, sizeof arn);
    if ((r = al_authorize(c, principal, action, arn, e)) < 0)
        return r;
    *name = n;
    *labels = l;
    return 0;
}

/* Runs the label write sql with its parameters (canon, label, version):
 * 0 or -EIO. */
static int label_write(al_ctx *c, const char *sql, const char *canon, const char *label,
                       int64_t version)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, version);
    bind_region(c, st, 4);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 0 : -EIO;
}

static int op_label_parameter_version(al_ctx *c, const char *principal, const es_json *req,
                                      es_jw *w, al_error *e)
{
    const char *name;
    int64_t version;
    if (!al_opt_str(req, "Name", &name, e) ||
        !al_opt_int(req, "ParameterVersion", 1, INT64_MAX, 0, &version, e))
        return -EINVAL;
    if (!name)
        return al_fail(e, 400, "ValidationException", "Name is required.");
    const es_json *labels;
    int r = label_request(c, principal, req, "ssm:LabelParameterVersion", &name, &labels, e);
    if (r < 0)
        return r;
    const char *canon = canon_of(name);
    if ((r = write_begin(c, e)) < 0)
        return r;
    pv p;
    r = load_pv(c, canon, version, NULL, &p);
    if (r < 0) {
        al_db_rollback(c->db);
        if (r == -ESRCH)
            return al_fail(e, 400, "ParameterVersionNotFound",
                           "Systems Manager could not find version %lld of %s. Verify the "
                           "version and try again.",
                           (long long)version, name);
        return not_found(e, name, r);
    }
    version = p.version;
    pv_clear(&p);
    for (size_t i = 0; i < labels->u.array.n; i++) {
        const char *l = es_json_as_str(labels->u.array.items[i]);
        if (!label_ok(l))
            continue;
        if (label_write(c,
                        "INSERT OR REPLACE INTO ssm_label(canon, label, version, region) VALUES "
                        "(?,?,?,?)",
                        canon, l, version) < 0) {
            al_db_rollback(c->db);
            return al_fail_internal(e, "InternalServerError");
        }
    }
    int64_t count = 0;
    if (label_count(c, canon, version, &count) < 0) {
        al_db_rollback(c->db);
        return al_fail_internal(e, "InternalServerError");
    }
    if (count > AL_SSM_LABELS_PER_VERSION) {
        al_db_rollback(c->db);
        return al_fail(e, 400, "ParameterVersionLabelLimitExceeded",
                       "A parameter version can have maximum %d labels. Move one or more labels "
                       "to another version and try again.",
                       AL_SSM_LABELS_PER_VERSION);
    }
    if (al_db_commit(c->db) < 0)
        return al_fail_internal(e, "InternalServerError");
    es_jw_obj(w);
    es_jw_key(w, "InvalidLabels");
    es_jw_arr(w);
    for (size_t i = 0; i < labels->u.array.n; i++) {
        const char *l = es_json_as_str(labels->u.array.items[i]);
        if (!label_ok(l))
            es_jw_str(w, l);
    }
    es_jw_arr_end(w);
    es_jw_kint(w, "ParameterVersion", version);
    es_jw_obj_end(w);
    return 0;
}

/* Labels that are not on that version are "invalid"; the others go. */
static int op_unlabel_parameter_version(al_ctx *c, const char *principal, const es_json *req,
                                        es_jw *w, al_error *e)
{
    const char *name;
    int64_t version;
    if (!al_opt_str(req, "Name", &name, e) ||
        !al_opt_int(req, "ParameterVersion", 1, INT64_MAX, 0, &version, e))
        return -EINVAL;
    if (!name || !version)
        return al_fail(e, 400, "ValidationException", "Name and ParameterVersion are required.");
    const es_json *labels;
    int r = label_request(c, principal, req, "ssm:UnlabelParameterVersion", &name, &labels, e);
    if (r < 0)
        return r;
    const char *canon = canon_of(name);
    pv p;
    r = load_pv(c, canon, version, NULL, &p);
    if (r < 0) {
        if (r == -ESRCH)
            return al_fail(e, 400, "ParameterVersionNotFound",
                           "Systems Manager could not find version %lld of %s.", (long long)version,
                           name);
        return not_found(e, name, r);
    }
    pv_clear(&p);
    if ((r = write_begin(c, e)) < 0)
        return r;
    bool removed[AL_SSM_LABELS_PER_VERSION] = {false};
    for (size_t i = 0; i < labels->u.array.n; i++) {
        if (label_write(
                c, "DELETE FROM ssm_label WHERE canon=? AND label=? AND version=? AND region=?",
                canon, es_json_as_str(labels->u.array.items[i]), version) < 0) {
            al_db_rollback(c->db);
            return al_fail_internal(e, "InternalServerError");
        }
        removed[i] = sqlite3_changes(al_db_handle(c->db)) > 0;
    }
    if (al_db_commit(c->db) < 0)
        return al_fail_internal(e, "InternalServerError");
    es_jw_obj(w);
    for (int pass = 0; pass < 2; pass++) {
        es_jw_key(w, pass == 0 ? "RemovedLabels" : "InvalidLabels");
        es_jw_arr(w);
        for (size_t i = 0; i < labels->u.array.n; i++)
            if (removed[i] == (pass == 0))
                es_jw_str(w, es_json_as_str(labels->u.array.items[i]));
        es_jw_arr_end(w);
    }
    es_jw_obj_end(w);
    return 0;
}

/* ---- tags: AddTagsToResource, ListTagsForResource, RemoveTagsFromResource ---- */

/* The tagging operations' ResourceType and ResourceId: a Parameter (by name
 * or by ARN in the request's region) that exists, action authorised on its
 * ARN. canon receives its row key. Refusals as AWS words them:
 * ValidationException for a type outside the enum, InvalidResourceType for
 * one the store does not hold, InvalidResourceId for a parameter that is
 * not there. */
static int tag_resource(al_ctx *c, const char *principal, const es_json *req, const char *action,
                        char canon[AL_SSM_NAME_MAX + 1], al_error *e)
{
    const char *type, *id;
    if (!al_opt_str(req, "ResourceType", &type, e) || !al_opt_str(req, "ResourceId", &id, e))
        return -EINVAL;
    static const char *const types[] = {
        "Document", "ManagedInstance", "MaintenanceWindow", "Parameter",   "PatchBaseline",
        "OpsItem",  "OpsMetadata",     "Automation",        "Association", "CloudConnector"};
    bool known = false;
    for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
        known = known || strcmp(type, types[i]) == 0;
    if (!known)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value '%s' at 'resourceType' failed to "
                       "satisfy constraint: Member must satisfy enum value set: [Document, "
                       "ManagedInstance, MaintenanceWindow, Parameter, PatchBaseline, OpsItem, "
                       "OpsMetadata, Automation, Association, CloudConnector]",
                       type ? type : "null");
    if (strcmp(type, "Parameter") != 0)
        return al_fail(e, 400, "InvalidResourceType",
                       "The resource type isn't valid: the embedded store holds only parameters "
                       "(ResourceType Parameter), not %s.",
                       type);
    if (!id)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value null at 'resourceId' failed to satisfy "
                       "constraint: Member must not be null");
    size_t off;
    al_error ignored;
    if (arn_name_offset(c, id, &off, &ignored) < 0 || check_name(c, id + off, false, &ignored) < 0)
        return al_fail(e, 400, "InvalidResourceId",
                       "The resource ID isn't valid. Verify that you entered the correct ID and "
                       "try again.");
    snprintf(canon, AL_SSM_NAME_MAX + 1, "%s", canon_of(id + off));
    char arn[ARN_MAX];
    param_arn(c, canon, arn, sizeof arn);
    int r = al_authorize(c, principal, action, arn, e);
    if (r < 0)
        return r;
    pv p;
    if ((r = load_pv(c, canon, 0, NULL, &p)) == 0) {
        pv_clear(&p);
        return 0;
    }
    if (r == -ENOENT)
        return al_fail(e, 400, "InvalidResourceId",
                       "The resource ID isn't valid. Verify that you entered the correct ID and "
                       "try again.");
    return al_fail_internal(e, "InternalServerError");
}

static int tag_count(al_ctx *c, const char *canon, int64_t *n)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT count(*) FROM ssm_tag WHERE canon=? AND region=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    bind_region(c, st, 2);
    int r = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
    *n = sqlite3_column_int64(st, 0);
    al_db_release(c->db, st);
    return r;
}

/* Inside the transaction: the tags written, then the resource's count
 * checked against AWS's 50. */
static int add_tags_in_tx(al_ctx *c, const char *principal, const es_json *req, const es_json *tags,
                          al_error *e)
{
    char canon[AL_SSM_NAME_MAX + 1];
    int64_t n = 0;
    int r = tag_resource(c, principal, req, "ssm:AddTagsToResource", canon, e);
    if (r < 0)
        return r;
    if (write_tags(c, canon, tags) < 0 || tag_count(c, canon, &n) < 0)
        return al_fail_internal(e, "InternalServerError");
    return al_tags_total_check(n, &SSM_TAGS, e);
}

static int op_add_tags_to_resource(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                   al_error *e)
{
    const es_json *tags = es_json_get(req, "Tags");
    if (!tags || tags->type == ES_JSON_NULL)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value null at 'tags' failed to satisfy "
                       "constraint: Member must not be null");
    /* botocore's TagList; the 50 are counted after */
    int r = al_tags_check(tags, 1000, &SSM_TAGS, e);
    if (r < 0)
        return r;
    if ((r = write_begin(c, e)) < 0)
        return r;
    if ((r = add_tags_in_tx(c, principal, req, tags, e)) < 0) {
        al_db_rollback(c->db);
        return r;
    }
    if (al_db_commit(c->db) < 0)
        return al_fail_internal(e, "InternalServerError");
    es_jw_obj(w);
    es_jw_obj_end(w);
    return 0;
}

static int op_list_tags_for_resource(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                     al_error *e)
{
    char canon[AL_SSM_NAME_MAX + 1];
    int r = tag_resource(c, principal, req, "ssm:ListTagsForResource", canon, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT key, value FROM ssm_tag WHERE canon=? AND region=? ORDER BY key");
    if (!st)
        return al_fail_internal(e, "InternalServerError");
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    bind_region(c, st, 2);
    es_jw_obj(w);
    es_jw_key(w, "TagList");
    es_jw_arr(w);
    while (sqlite3_step(st) == SQLITE_ROW) {
        es_jw_obj(w);
        es_jw_kstr(w, "Key", (const char *)sqlite3_column_text(st, 0));
        es_jw_kstr(w, "Value", (const char *)sqlite3_column_text(st, 1));
        es_jw_obj_end(w);
    }
    al_db_release(c->db, st);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
    return 0;
}

static int remove_tags_in_tx(al_ctx *c, const char *principal, const es_json *req,
                             const es_json *keys, al_error *e)
{
    char canon[AL_SSM_NAME_MAX + 1];
    int r = tag_resource(c, principal, req, "ssm:RemoveTagsFromResource", canon, e);
    if (r < 0)
        return r;
    for (size_t i = 0; i < keys->u.array.n; i++) {
        sqlite3_stmt *st =
            al_db_prepare(c->db, "DELETE FROM ssm_tag WHERE canon=? AND key=? AND region=?");
        if (!st)
            return al_fail_internal(e, "InternalServerError");
        sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, es_json_as_str(keys->u.array.items[i]), -1, SQLITE_STATIC);
        bind_region(c, st, 3);
        int s = sqlite3_step(st);
        al_db_release(c->db, st);
        if (s != SQLITE_DONE)
            return al_fail_internal(e, "InternalServerError");
    }
    return 0;
}

static int op_remove_tags_from_resource(al_ctx *c, const char *principal, const es_json *req,
                                        es_jw *w, al_error *e)
{
    const es_json *keys = es_json_get(req, "TagKeys");
    if (!keys || keys->type != ES_JSON_ARRAY)
        return al_fail(e, 400, "ValidationException",
                       "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                       "constraint: Member must not be null");
    int r = al_tag_keys_check(keys, &SSM_TAGS, e);
    if (r < 0)
        return r;
    r = write_begin(c, e);
    if (r < 0)
        return r;
    if ((r = remove_tags_in_tx(c, principal, req, keys, e)) < 0) {
        al_db_rollback(c->db);
        return r;
    }
    if (al_db_commit(c->db) < 0)
        return al_fail_internal(e, "InternalServerError");
    es_jw_obj(w);
    es_jw_obj_end(w);
    return 0;
}

const al_op al_ssm_ops[] = {
    {"PutParameter", op_put_parameter},
    {"GetParameter", op_get_parameter},
    {"GetParameters", op_get_parameters},
    {"GetParametersByPath", op_get_parameters_by_path},
    {"GetParameterHistory", op_get_parameter_history},
    {"DescribeParameters", op_describe_parameters},
    {"DeleteParameter", op_delete_parameter},
    {"DeleteParameters", op_delete_parameters},
    {"LabelParameterVersion", op_label_parameter_version},
    {"UnlabelParameterVersion", op_unlabel_parameter_version},
    {"AddTagsToResource", op_add_tags_to_resource},
    {"ListTagsForResource", op_list_tags_for_resource},
    {"RemoveTagsFromResource", op_remove_tags_from_resource},
    {NULL, NULL},
};

int al_ssm_adopt_home(al_ctx *c)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE ssm_param SET region=? WHERE region=''");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, c->region, -1, SQLITE_STATIC);
    int s = sqlite3_step(st); /* the children follow: ON UPDATE CASCADE */
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 0 : -EIO;
}
