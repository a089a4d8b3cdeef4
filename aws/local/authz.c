#include "aws/local/authz.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aws/local/iam.h"
#include "aws/local/internal.h"
#include "aws/local/kms.h"
#include "aws/local/kms_policy.h"
#include "aws/local/s3.h"
#include "aws/local/sm_policy.h"
#include "common/alloc.h"

#define CTX_MAX 10

static const char allow_all[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"AccountRoot\",\"Effect\":\"Allow\","
    "\"Action\":\"*\",\"Resource\":\"*\"}]}";

/* The key's policy: the stored one, or KMS's default (kms_policy.h). A
 * policy that no longer parses (cannot happen: validated when stored)
 * grants nothing. */
static int key_policy_of(al_ctx *c, const char *arn, aw_policy **out)
{
    const char *id = strstr(arn, ":key/") + 5;
    char *doc = NULL;
    int r = al_kms_key_policy_of(c, id, &doc);
    if (r < 0)
        return r;
    static const char none[] = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                               "\"Allow\",\"Principal\":\"*\",\"NotAction\":\"*\","
                               "\"Resource\":\"*\"}]}";
    int pr =
        aw_policy_parse(doc, strlen(doc), AW_POLICY_RESOURCE, "key policy", NULL, out, NULL, 0);
    es_free(doc);
    if (pr == AW_POLICY_E_NOMEM)
        return -ENOMEM;
    if (pr != AW_POLICY_OK && aw_policy_parse(none, sizeof none - 1, AW_POLICY_RESOURCE,
                                              "key policy", NULL, out, NULL, 0) != AW_POLICY_OK)
        return -ENOMEM;
    return 0;
}

/* A secret's resource policy; *out NULL when it has none. Stored policies
 * were validated; one that no longer parses grants nothing (NULL). */
static int secret_policy_of(al_ctx *c, const char *arn, aw_policy **out)
{
    char *doc = NULL;
    int r = al_sm_resource_policy_of(c, arn, &doc);
    if (r < 0)
        return r;
    int pr = doc ? aw_policy_parse(doc, strlen(doc), AW_POLICY_RESOURCE, "resource policy", NULL,
                                   out, NULL, 0)
                 : AW_POLICY_E_MALFORMED;
    es_free(doc);
    if (pr == AW_POLICY_E_NOMEM)
        return -ENOMEM; /* its Deny statements must not be lost */
    if (pr != AW_POLICY_OK)
        *out = NULL;
    return 0;
}

/* An S3 bucket's policy, for a bucket or object ARN (arn:PART:s3:::B or
 * arn:PART:s3:::B/KEY); *out NULL when it has none. */
static int bucket_policy_of(al_ctx *c, const char *arn, aw_policy **out)
{
    const char *b = strstr(arn, ":s3:::") + 6;
    char bucket[AL_S3_BUCKET_MAX + 1];
    size_t n = strcspn(b, "/");
    if (n > AL_S3_BUCKET_MAX)
        return 0;
    memcpy(bucket, b, n);
    bucket[n] = '\0';
    char *doc = NULL;
    int r = al_s3_bucket_policy_of(c, bucket, &doc);
    if (r < 0)
        return r;
    int pr = doc ? aw_policy_parse(doc, strlen(doc), AW_POLICY_RESOURCE, "bucket policy", NULL, out,
                                   NULL, 0)
                 : AW_POLICY_E_MALFORMED;
    es_free(doc);
    if (pr == AW_POLICY_E_NOMEM)
        return -ENOMEM;
    if (pr != AW_POLICY_OK)
        *out = NULL;
    return 0;
}

/* Strings every decision needs: made once per store (names) and once per
 * second (times) rather than printed for each of a request's decisions. */
typedef struct fixed_strings {
    char root_arn[64];       /* arn:aws:iam::ACCOUNT:root */
    char session_prefix[64]; /* arn:aws:sts::ACCOUNT:assumed-role/ */
} fixed_strings;

typedef struct clock_strings {
    time_t t;
    char iso[32];   /* aws:CurrentTime */
    char epoch[32]; /* aws:EpochTime */
} clock_strings;

static void fixed_make(al_ctx *c, fixed_strings *f)
{
    snprintf(f->root_arn, sizeof f->root_arn, "arn:aws:iam::%s:root", c->account);
    snprintf(f->session_prefix, sizeof f->session_prefix, "arn:aws:sts::%s:assumed-role/",
             c->account);
}

static void clock_make(time_t t, clock_strings *cs)
{
    struct tm tm;
    cs->t = t;
    gmtime_r(&t, &tm);
    strftime(cs->iso, sizeof cs->iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(cs->epoch, sizeof cs->epoch, "%lld", (long long)t);
}

/* ---- compiled policies kept between decisions ----
 *
 * Reading a role's policies (three to five SQLite statements) and compiling
 * them (aw_policy_parse) was most of a decision's cost, and a GetParameters
 * of 10 names makes 10 decisions for one caller. The cache keeps, per role
 * name, what al_iam_role_policies and al_iam_role_get answered (compiled
 * identity policies, boundary, role ARN and id, or "no such role"), and per
 * resource ARN its compiled resource policy (a KMS key's policy, a secret's
 * resource policy, or none), plus the administrator's allow-all compiled
 * once. Every entry was read under one database stamp (db.h); when the stamp
 * moves - any row inserted, updated or deleted: PutRolePolicy,
 * AttachRolePolicy, DeleteRolePolicy, a new managed policy version,
 * PutPermissionsBoundary, DeleteRole, PutKeyPolicy, PutResourcePolicy, but
 * also any parameter write - the whole cache is dropped before the next
 * decision, so a change is in force for the very next decision, even inside
 * the transaction that made it. Conditions are evaluated per decision (the
 * context - time, caller, kms:ViaService - is never cached), as are the
 * decisions themselves. Bounded: ROLE_SLOTS and RESOURCE_SLOTS entries,
 * round robin. */
#define ROLE_SLOTS 16
#define RESOURCE_SLOTS 64

typedef struct role_slot {
    bool used;
    bool user; /* an IAM user's entry (al_iam_user_policies), else a role's */
    char name[AL_ROLE_NAME_MAX + 1];
    bool exists; /* al_iam_role_policies answered 0 (else -ENOENT) */
    al_iam_policies pol;
    bool have_role; /* al_iam_role_get (al_iam_user_get) answered 0: arn and role_id */
    char arn[AL_ROLE_ARN_MAX];
    char role_id[32];
} role_slot;

typedef struct res_slot {
    bool used;
    char *arn;         /* es_malloc'ed */
    aw_policy *policy; /* NULL: no resource policy */
} res_slot;

/* ---- decisions kept between requests ----
 *
 * After the caches above, the decisions themselves were what was left of
 * authorisation (1.8 K instructions each, ten ssm:GetParameters per
 * GetParameters of 10 names). An Allow is kept per (principal, action,
 * resource) when it can be decided again only the same way: every policy
 * that took part (identity policies, boundary, resource policy) uses no
 * request context (aw_policy_uses_context: no Condition, no policy variable
 * in Resource), so time, region, caller's address and kms:ViaService cannot
 * change it, and the question was the plain one (al_authz_check: no resource
 * policy or context given by the caller, no matched-policy name wanted).
 * Only Allows are kept: a denial is evaluated every time, so its message is
 * made as before. The entries live under the same database stamp as the
 * compiled policies: any write (an IAM policy, a boundary, a key policy, a
 * resource policy, a role or user deleted, a parameter written) drops them
 * with the rest. Bounded: DECISION_SETS x DECISION_WAYS entries, a set
 * chosen by a hash of the three strings, round robin within it. */
#define DECISION_SETS 64
#define DECISION_WAYS 4

typedef struct decision_slot {
    uint64_t hash;
    char *key; /* principal NUL action NUL resource NUL, es_malloc'ed; NULL: free */
    size_t keylen;
} decision_slot;

struct al_authz_cache {
    al_db_stamp stamp;
    decision_slot dec[DECISION_SETS][DECISION_WAYS];
    unsigned char dec_next[DECISION_SETS];
    fixed_strings fixed; /* made on first use (root_arn[0] != 0) */
    clock_strings clock; /* for the second clock.t */
    aw_policy *root;     /* the administrator's allow-all (depends on nothing stored) */
    role_slot role[ROLE_SLOTS];
    unsigned next_role;
    res_slot res[RESOURCE_SLOTS];
    unsigned next_res;
};

static void role_slot_clear(role_slot *r)
{
    al_iam_policies_clear(&r->pol);
    memset(r, 0, sizeof *r);
}

static void res_slot_clear(res_slot *r)
{
    es_free(r->arn);
    aw_policy_free(r->policy);
    memset(r, 0, sizeof *r);
}

static void decisions_drop(struct al_authz_cache *k)
{
    for (size_t i = 0; i < DECISION_SETS; i++) {
        for (size_t j = 0; j < DECISION_WAYS; j++) {
            es_free(k->dec[i][j].key);
            k->dec[i][j] = (decision_slot){0};
        }
        k->dec_next[i] = 0;
    }
}

static void cache_drop(al_ctx *c, struct al_authz_cache *k)
{
    bool had = false;
    decisions_drop(k);
    for (size_t i = 0; i < ROLE_SLOTS; i++) {
        had = had || k->role[i].used;
        role_slot_clear(&k->role[i]);
    }
    for (size_t i = 0; i < RESOURCE_SLOTS; i++) {
        had = had || k->res[i].used;
        res_slot_clear(&k->res[i]);
    }
    if (had)
        c->cache_stats.flushes++;
}

void al_authz_cache_free(al_ctx *c)
{
    if (!c->authz_cache)
        return;
    cache_drop(c, c->authz_cache);
    aw_policy_free(c->authz_cache->root);
    es_free(c->authz_cache);
    c->authz_cache = NULL;
}

/* The cache, emptied when the database changed since it was filled; NULL
 * when it cannot be allocated (then every decision reads and compiles). */
static struct al_authz_cache *policy_cache(al_ctx *c)
{
    if (!c->authz_cache && !(c->authz_cache = es_calloc(1, sizeof *c->authz_cache)))
        return NULL;
    struct al_authz_cache *k = c->authz_cache;
    if (!al_db_stamp_renew(c->db, &k->stamp))
        cache_drop(c, k);
    return k;
}

/* The role's policies and identity: from the cache, or read into *fresh
 * and kept when the cache has room for it (*fresh is then left empty; the
 * caller clears it either way). */
/* What a user's or a role's entry holds: its policies, ARN and id. */
static int slot_load(al_ctx *c, bool user, const char *name, role_slot *fresh, bool *keep)
{
    int r = user ? al_iam_user_policies(c, name, &fresh->pol)
                 : al_iam_role_policies(c, name, &fresh->pol);
    if (r < 0 && r != -ENOENT)
        return r;
    fresh->exists = r == 0;
    *keep = true;
    if (!fresh->exists)
        return 0;
    int g;
    if (user) {
        al_iam_user u;
        if ((g = al_iam_user_get(c, name, &u)) == 0) {
            snprintf(fresh->arn, sizeof fresh->arn, "%s", u.arn);
            snprintf(fresh->role_id, sizeof fresh->role_id, "%s", u.user_id);
        }
    } else {
        al_iam_role ri = {0};
        if ((g = al_iam_role_get(c, name, &ri)) == 0) {
            snprintf(fresh->arn, sizeof fresh->arn, "%s", ri.arn);
            snprintf(fresh->role_id, sizeof fresh->role_id, "%s", ri.role_id);
        }
        al_iam_role_clear(&ri);
    }
    fresh->have_role = g == 0;
    *keep = g == 0 || g == -ENOENT; /* a failed read is not remembered */
    return 0;
}

static int role_of(al_ctx *c, struct al_authz_cache *k, bool user, const char *name,
                   role_slot *fresh, const role_slot **out)
{
    for (size_t i = 0; k && i < ROLE_SLOTS; i++) {
        if (k->role[i].used && k->role[i].user == user && strcmp(k->role[i].name, name) == 0) {
            c->cache_stats.policy_hits++;
            *out = &k->role[i];
            return 0;
        }
    }
    memset(fresh, 0, sizeof *fresh);
    bool keep;
    int r = slot_load(c, user, name, fresh, &keep);
    if (r < 0)
        return r;
    c->cache_stats.policy_loads++;
    snprintf(fresh->name, sizeof fresh->name, "%s", name);
    fresh->user = user;
    fresh->used = true;
    if (keep && k && strlen(name) < sizeof fresh->name) {
        role_slot *s = &k->role[k->next_role];
        k->next_role = (k->next_role + 1) % ROLE_SLOTS;
        role_slot_clear(s);
        *s = *fresh;
        memset(fresh, 0, sizeof *fresh);
        *out = s;
        return 0;
    }
    *out = fresh;
    return 0;
}

/* The resource policy of a KMS key or a secret (NULL: none), from the cache
 * or read and compiled; *fresh receives what could not be kept (the caller
 * frees it). */
enum res_kind { RES_KMS_KEY, RES_SECRET, RES_S3 };

static int resource_policy_of(al_ctx *c, struct al_authz_cache *k, const char *arn,
                              enum res_kind kind, aw_policy **fresh, const aw_policy **out)
{
    for (size_t i = 0; k && i < RESOURCE_SLOTS; i++) {
        if (k->res[i].used && strcmp(k->res[i].arn, arn) == 0) {
            c->cache_stats.policy_hits++;
            *out = k->res[i].policy;
            return 0;
        }
    }
    aw_policy *p = NULL;
    int r = kind == RES_KMS_KEY  ? key_policy_of(c, arn, &p)
            : kind == RES_SECRET ? secret_policy_of(c, arn, &p)
                                 : bucket_policy_of(c, arn, &p);
    if (r < 0)
        return r;
    c->cache_stats.policy_loads++;
    char *copy = k ? es_strdup(arn) : NULL;
    if (copy) {
        res_slot *s = &k->res[k->next_res];
        k->next_res = (k->next_res + 1) % RESOURCE_SLOTS;
        res_slot_clear(s);
        *s = (res_slot){.used = true, .arn = copy, .policy = p};
    } else {
        *fresh = p;
    }
    *out = p;
    return 0;
}

static int root_policy(struct al_authz_cache *k, aw_policy **fresh, const aw_policy **out)
{
    if (k && k->root) {
        *out = k->root;
        return 0;
    }
    aw_policy *p = NULL;
    if (aw_policy_parse(allow_all, sizeof allow_all - 1, AW_POLICY_IDENTITY, "account root", NULL,
                        &p, NULL, 0) != AW_POLICY_OK)
        return -ENOMEM;
    if (k)
        k->root = p;
    else
        *fresh = p;
    *out = p;
    return 0;
}

/* The part of arn after "arn:PARTITION:SERVICE:" (any partition), or NULL
 * when arn is not of service. */
static const char *arn_after_service(const char *arn, const char *service)
{
    if (strncmp(arn, "arn:", 4) != 0)
        return NULL;
    const char *p = strchr(arn + 4, ':');
    size_t n = strlen(service);
    if (!p || strncmp(p + 1, service, n) != 0 || p[1 + n] != ':')
        return NULL;
    return p + 2 + n;
}

static bool is_s3(const char *arn)
{
    const char *p = arn_after_service(arn, "s3");
    return p && strncmp(p, "::", 2) == 0 && p[2];
}

static bool is_kms_key(const char *arn)
{
    /* arn:PARTITION:kms:REGION:ACCOUNT:key/ID */
    const char *p = arn_after_service(arn, "kms");
    if (!p)
        return false;
    for (int i = 0; i < 2 && p; i++) {
        p = strchr(p, ':');
        if (p)
            p++;
    }
    return p && strncmp(p, "key/", 4) == 0;
}

/* ROLE of arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, for our account. */
static bool session_role(const char *prefix, const char *principal, char *role, size_t n)
{
    size_t pl = strlen(prefix);
    if (strncmp(principal, prefix, pl) != 0)
        return false;
    const char *name = principal + pl, *slash = strchr(name, '/');
    if (!slash || slash == name || (size_t)(slash - name) >= n || !slash[1])
        return false;
    memcpy(role, name, (size_t)(slash - name));
    role[slash - name] = '\0';
    return true;
}

/* Who the caller is, as the evaluation needs it: its identity policies and
 * the values of the aws:Principal* context keys. */
typedef struct caller {
    const aw_policy *const *identity;
    size_t n_identity;
    const role_slot *rs; /* a role's or user's policies (boundary too); NULL for others */
    const aw_policy *root;
    const char *parn, *type, *uid, *uname;
    char userid[AL_ROLE_NAME_MAX + 128];
    char name[AL_ROLE_NAME_MAX + 1]; /* the role or user name */
} caller;

/* The fixed strings (root ARN, session prefix) and the clock's, from the
 * cache when there is one, else made into the locals. */
static void strings_of(al_ctx *c, struct al_authz_cache *k, fixed_strings *fixed_local,
                       clock_strings *clock_local, const fixed_strings **fixed,
                       const clock_strings **clk)
{
    time_t t = (time_t)al_now(c);
    if (k) {
        if (!k->fixed.root_arn[0])
            fixed_make(c, &k->fixed);
        if (k->clock.t != t || !k->clock.iso[0])
            clock_make(t, &k->clock);
        *fixed = &k->fixed;
        *clk = &k->clock;
        return;
    }
    fixed_make(c, fixed_local);
    clock_make(t, clock_local);
    *fixed = fixed_local;
    *clk = clock_local;
}

/* The account root, a role's session, an IAM user (its key or its
 * GetSessionToken session), or anyone else (no identity policy). */
static int identify(al_ctx *c, struct al_authz_cache *k, const fixed_strings *fixed,
                    const char *principal, caller *w, role_slot *fresh_role, aw_policy **fresh_root)
{
    int r;
    w->parn = principal;
    w->type = "User";
    w->uid = principal;
    if (strcmp(principal, fixed->root_arn) == 0) {
        if ((r = root_policy(k, fresh_root, &w->root)) < 0)
            return r;
        w->identity = &w->root;
        w->n_identity = 1;
        w->parn = fixed->root_arn;
        w->type = "Account";
        w->uid = c->account;
    } else if (session_role(fixed->session_prefix, principal, w->name, sizeof w->name)) {
        if ((r = role_of(c, k, false, w->name, fresh_role, &w->rs)) < 0)
            return r;
        const char *session = strrchr(principal, '/') + 1;
        if (w->rs->exists && w->rs->have_role) {
            w->parn = w->rs->arn;
            snprintf(w->userid, sizeof w->userid, "%s:%s", w->rs->role_id, session);
        } else {
            snprintf(w->userid, sizeof w->userid, "%s", session);
        }
        w->identity = (const aw_policy *const *)w->rs->pol.identity;
        w->n_identity = w->rs->pol.n_identity;
        w->type = "AssumedRole";
        w->uid = w->userid;
    } else if (al_iam_user_of_principal(c, principal, w->name, sizeof w->name)) {
        /* its own and its groups' policies, when the user still exists under
         * that very ARN (a user deleted and made again is another user) */
        if ((r = role_of(c, k, true, w->name, fresh_role, &w->rs)) < 0)
            return r;
        bool same = w->rs->exists && w->rs->have_role && strcmp(w->rs->arn, principal) == 0;
        snprintf(w->userid, sizeof w->userid, "%s", same ? w->rs->role_id : principal);
        w->identity = same ? (const aw_policy *const *)w->rs->pol.identity : NULL;
        w->n_identity = same ? w->rs->pol.n_identity : 0;
        w->uid = w->userid;
        w->uname = w->name;
    }
    return 0;
}

/* The request context: the caller's keys, the clock's, the region the
 * request is served in (aws:RequestedRegion, kms:ViaService), the KMS keys
 * when SSM or Secrets Manager use KMS on the caller's behalf, then the
 * caller's extra entries. Every value points into w, clk, c or vals. */
typedef struct ctx_values {
    const char *parn[1], *acct[1], *type[1], *uid[1], *uname[1], *now[1], *epoch[1], *region[1],
        *via[1], *caller_acct[1];
    char via_name[96];
} ctx_values;

static size_t build_context(al_ctx *c, const caller *w, const clock_strings *clk,
                            const char *action, const aw_ctx_entry *extra, size_t nextra,
                            ctx_values *v, aw_ctx_entry *ctx, size_t max)
{
    size_t n = 0;
    *v = (ctx_values){.parn = {w->parn},
                      .acct = {c->account},
                      .type = {w->type},
                      .uid = {w->uid},
                      .uname = {w->uname},
                      .now = {clk->iso},
                      .epoch = {clk->epoch},
                      .region = {al_region(c)},
                      .caller_acct = {c->account}};
    ctx[n++] = (aw_ctx_entry){"aws:PrincipalArn", v->parn, 1, false};
    ctx[n++] = (aw_ctx_entry){"aws:PrincipalAccount", v->acct, 1, false};
    ctx[n++] = (aw_ctx_entry){"aws:PrincipalType", v->type, 1, false};
    ctx[n++] = (aw_ctx_entry){"aws:userid", v->uid, 1, false};
    if (w->uname)
        ctx[n++] = (aw_ctx_entry){"aws:username", v->uname, 1, false};
    ctx[n++] = (aw_ctx_entry){"aws:CurrentTime", v->now, 1, false};
    ctx[n++] = (aw_ctx_entry){"aws:EpochTime", v->epoch, 1, false};
    ctx[n++] = (aw_ctx_entry){"aws:RequestedRegion", v->region, 1, false};
    if (strncmp(action, "kms:", 4) == 0) {
        const char *svc = NULL;
        if (c->calling_service && strcmp(c->calling_service, "AmazonSSM") == 0)
            svc = "ssm";
        else if (c->calling_service && strcmp(c->calling_service, "secretsmanager") == 0)
            svc = "secretsmanager";
        if (svc) {
            snprintf(v->via_name, sizeof v->via_name, "%s.%s.amazonaws.com", svc, al_region(c));
            v->via[0] = v->via_name;
            ctx[n++] = (aw_ctx_entry){"kms:ViaService", v->via, 1, false};
        }
        ctx[n++] = (aw_ctx_entry){"kms:CallerAccount", v->caller_acct, 1, false};
    }
    for (size_t i = 0; i < nextra && n < max; i++)
        ctx[n++] = extra[i];
    return n;
}

/* The three strings of a decision's question, their lengths and hash (a
 * word at a time: a byte-at-a-time FNV over the ~110 bytes of a question was
 * most of a kept decision's cost). The hash runs over the principal, then
 * the action, then the resource, so the principal's part depends on it
 * alone: the request's caller's is made once per operation (rq_caller).
 * Not a defence against chosen collisions - a collision only shares a set of
 * DECISION_WAYS entries; the strings are compared in full. */
typedef struct question {
    const char *s[3];
    size_t len[3];
    size_t keylen;
    uint64_t hash;
} question;

#define QUESTION_SEED 0x84222325CBF29CE4ull

/* 64 x 64 -> 128-bit product folded to 64 bits (wyhash's mum): 16 bytes of
 * a string per multiplication, where a multiply per 8 bytes was a third of
 * a kept decision's cost (the ~60 bytes of a parameter ARN) */
static uint64_t mum(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static uint64_t mix_bytes(uint64_t h, const char *s, size_t n)
{
    size_t at = 0;
    uint64_t a, b;
    for (; at + 16 <= n; at += 16) {
        memcpy(&a, s + at, 8);
        memcpy(&b, s + at + 8, 8);
        h = mum(a ^ h ^ 0xA0761D6478BD642Full, b ^ 0xE7037ED1A0B428DBull);
    }
    size_t left = n - at;
    a = b = 0;
    memcpy(&a, s + at, left < 8 ? left : 8);
    if (left > 8)
        memcpy(&b, s + at + 8, left - 8);
    /* the length ends each string: "ab","c" and "a","bc" differ */
    return mum(a ^ h ^ 0x8EBC6AF09C88C6E3ull, b ^ ((uint64_t)n << 40) ^ 0x589965CC75374CC3ull);
}

/* The principal's length and part of the hash: the operation's caller's
 * made once (see al_ctx's rq_caller), any other principal's each time. */
static void principal_part(al_ctx *c, const char *principal, size_t *len, uint64_t *h)
{
    al_rq_caller *m = &c->rq_caller;
    if (principal != m->principal) {
        *len = strlen(principal);
        *h = mix_bytes(QUESTION_SEED, principal, *len);
        return;
    }
    if (!m->hashed) {
        m->len = strlen(principal);
        m->hash = mix_bytes(QUESTION_SEED, principal, m->len);
        m->hashed = true;
    }
    *len = m->len;
    *h = m->hash;
}

/* The hash of principal then action: the operation's caller's with the
 * action it asked last kept (a GetParameters of 10 asks "ssm:GetParameters"
 * 10 times: its hash was 76 instructions, the comparison with the copy is
 * about 20), any other made each time. */
static uint64_t principal_action_part(al_ctx *c, const char *principal, size_t *plen,
                                      const char *action, size_t alen)
{
    uint64_t h;
    principal_part(c, principal, plen, &h);
    al_rq_caller *m = &c->rq_caller;
    if (principal != m->principal)
        return mix_bytes(h, action, alen);
    if (m->action_len == alen && memcmp(m->action, action, alen) == 0)
        return m->action_hash;
    h = mix_bytes(h, action, alen);
    if (alen > 0 && alen < sizeof m->action) {
        memcpy(m->action, action, alen);
        m->action_len = alen;
        m->action_hash = h;
    }
    return h;
}

/* resource_len: strlen(resource), or 0 when not known */
static void question_make(al_ctx *c, const char *principal, const char *action,
                          const char *resource, size_t resource_len, question *x)
{
    x->s[0] = principal;
    x->s[1] = action;
    x->s[2] = resource;
    x->len[1] = strlen(action);
    uint64_t h = principal_action_part(c, principal, &x->len[0], action, x->len[1]);
    x->len[2] = resource_len ? resource_len : strlen(resource);
    h = mix_bytes(h, resource, x->len[2]);
    x->keylen = x->len[0] + x->len[1] + x->len[2] + 3;
    /* MurmurHash3's finaliser: without it, names differing only in their
     * last characters (secret01..secret09) all fell into one set */
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    x->hash = h;
}

static bool question_is(const decision_slot *d, const question *x)
{
    if (!d->key || d->hash != x->hash || d->keylen != x->keylen)
        return false;
    const char *k = d->key;
    for (int i = 0; i < 3; i++) {
        if (memcmp(k, x->s[i], x->len[i] + 1) != 0)
            return false;
        k += x->len[i] + 1;
    }
    return true;
}

static bool decision_kept(struct al_authz_cache *k, const question *x)
{
    const decision_slot *set = k->dec[x->hash % DECISION_SETS];
    for (size_t j = 0; j < DECISION_WAYS; j++)
        if (question_is(&set[j], x))
            return true;
    return false;
}

static void decision_keep(struct al_authz_cache *k, const question *x)
{
    char *key = es_malloc(x->keylen);
    if (!key)
        return; /* not kept: decided again next time */
    char *at = key;
    for (int i = 0; i < 3; i++) {
        memcpy(at, x->s[i], x->len[i] + 1);
        at += x->len[i] + 1;
    }
    size_t set = x->hash % DECISION_SETS;
    decision_slot *d = &k->dec[set][k->dec_next[set]];
    k->dec_next[set] = (unsigned char)((k->dec_next[set] + 1) % DECISION_WAYS);
    es_free(d->key);
    *d = (decision_slot){.hash = x->hash, .key = key, .keylen = x->keylen};
}

/* May this decision be kept (see "decisions kept between requests")? */
static bool keepable(const aw_policy_set *set)
{
    for (size_t i = 0; i < set->n_identity; i++)
        if (aw_policy_uses_context(set->identity[i]))
            return false;
    for (size_t i = 0; i < set->n_boundary; i++)
        if (aw_policy_uses_context(set->boundary[i]))
            return false;
    return !aw_policy_uses_context(set->resource);
}

int al_authz_evaluate(al_ctx *c, const al_authz_req *q, char *why, size_t whylen,
                      aw_decision_kind *kind)
{
    const char *principal = q->principal ? q->principal : "anonymous";
    const char *action = q->action, *resource = q->resource;
    const aw_policy *resource_policy = q->resource_policy;
    struct al_authz_cache *k = policy_cache(c);
    /* the plain question (al_authz_check): its Allow may have been kept */
    bool plain = k && q->principal && !resource_policy && !q->nextra && !q->no_identity &&
                 !q->resource_account && !q->matched;
    question x;
    if (plain) {
        question_make(c, principal, action, resource, q->resource_len, &x);
        if (decision_kept(k, &x)) {
            c->cache_stats.decision_hits++;
            if (kind)
                *kind = AW_DECISION_ALLOW;
            return 0;
        }
    }
    /* what the cache could not keep, freed at the end (declared after the
     * kept decision's return: the role's entry is 2 KiB to zero, which was
     * half of a kept decision's cost) */
    role_slot fresh_role = {0};
    aw_policy *fresh_root = NULL, *fresh_resource = NULL;
    fixed_strings fixed_local;
    clock_strings clock_local;
    const fixed_strings *fixed;
    const clock_strings *clk;
    strings_of(c, k, &fixed_local, &clock_local, &fixed, &clk);

    caller w = {0};
    int r = identify(c, k, fixed, principal, &w, &fresh_role, &fresh_root);
    if (r < 0)
        goto out;
    aw_ctx_entry ctx[CTX_MAX + 8];
    ctx_values vals;
    size_t nctx = build_context(c, &w, clk, action, q->extra, q->nextra, &vals, ctx,
                                sizeof ctx / sizeof ctx[0]);
    if (!resource_policy && is_kms_key(resource)) {
        if ((r = resource_policy_of(c, k, resource, RES_KMS_KEY, &fresh_resource,
                                    &resource_policy)) < 0)
            goto out;
    } else if (!resource_policy && arn_after_service(resource, "secretsmanager")) {
        if ((r = resource_policy_of(c, k, resource, RES_SECRET, &fresh_resource,
                                    &resource_policy)) < 0)
            goto out;
    } else if (!resource_policy && is_s3(resource)) {
        if ((r = resource_policy_of(c, k, resource, RES_S3, &fresh_resource, &resource_policy)) < 0)
            goto out;
    }
    const aw_policy *boundary = w.rs ? w.rs->pol.boundary : NULL;
    aw_policy_set set = {.identity = q->no_identity ? NULL : w.identity,
                         .n_identity = q->no_identity ? 0 : w.n_identity,
                         .boundary = boundary ? &boundary : NULL,
                         .n_boundary = boundary ? 1 : 0,
                         .resource = resource_policy};
    aw_request req = {.principal_arn = principal,
                      .action = action,
                      .resource = resource,
                      /* AWS managed policies (account "aws") are readable as our own */
                      /* and S3's ARNs name no account: every bucket here is ours */
                      .resource_account =
                          q->resource_account ? q->resource_account
                          : strncmp(resource, "arn:aws:iam::aws:", 17) == 0 || is_s3(resource)
                              ? c->account
                              : NULL,
                      .ctx = ctx,
                      .nctx = nctx};
    aw_decision d;
    if (aw_policy_evaluate(&set, &req, &d) != 0) {
        r = -EINVAL;
        goto out;
    }
    if (kind)
        *kind = d.kind;
    if (q->matched && q->matchedlen) {
        const char *name = d.policy ? aw_policy_name(d.policy) : NULL;
        snprintf(q->matched, q->matchedlen, "%s", name ? name : "");
    }
    if (d.kind != AW_DECISION_ALLOW) {
        if (why && whylen)
            aw_decision_message(&req, &d, why, whylen);
        r = -EACCES;
    } else if (plain && !fresh_role.used && !fresh_root && !fresh_resource && keepable(&set)) {
        /* everything it was decided from is kept under the same stamp */
        decision_keep(k, &x);
    }
out:
    role_slot_clear(&fresh_role);
    aw_policy_free(fresh_root);
    aw_policy_free(fresh_resource);
    return r;
}

int al_authz_check(al_ctx *c, const char *principal, const char *action, const char *resource,
                   char *why, size_t whylen)
{
    al_authz_req q = {.principal = principal, .action = action, .resource = resource};
    return al_authz_evaluate(c, &q, why, whylen, NULL);
}

static int hook(void *arg, const char *principal, const char *action, const char *resource,
                size_t resource_len, char *why, size_t whylen)
{
    al_authz_req q = {.principal = principal,
                      .action = action,
                      .resource = resource,
                      .resource_len = resource_len};
    return al_authz_evaluate(arg, &q, why, whylen, NULL);
}

int al_principal_may(al_ctx *c, const char *principal, const char *action, const char *resource,
                     const aw_ctx_entry *extra, size_t nextra, char *why, size_t whylen)
{
    al_authz_req q = {.principal = principal,
                      .action = action,
                      .resource = resource,
                      .extra = extra,
                      .nextra = nextra};
    return al_authz_evaluate(c, &q, why, whylen, NULL);
}

void al_authz_install(al_ctx *c)
{
    c->authz_msg = hook;
    c->authz_msg_arg = c;
}

int al_role_may(al_ctx *c, const char *account, const char *role_arn, const char *action,
                const char *resource, const char *kms_via_service)
{
    if (!c || !account || !role_arn || !action || !resource)
        return -EINVAL;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "arn:aws:iam::%s:role/", account);
    if (strncmp(role_arn, prefix, strlen(prefix)) != 0)
        return -EXDEV; /* another account's role: not one of ours */
    const char *name = strrchr(role_arn, '/') + 1;
    if (!*name || strlen(name) > AL_ROLE_NAME_MAX)
        return -EINVAL;
    al_iam_role ri = {0};
    if (al_iam_role_get(c, name, &ri) < 0)
        return -ENOENT;
    al_iam_role_clear(&ri);
    char principal[AL_ROLE_ARN_MAX + 64];
    snprintf(principal, sizeof principal, "arn:aws:sts::%s:assumed-role/%s/preflight", account,
             name);
    const char *vv[1] = {kms_via_service};
    aw_ctx_entry extra = {"kms:ViaService", vv, 1, false};
    al_authz_req q = {.principal = principal,
                      .action = action,
                      .resource = resource,
                      .extra = kms_via_service ? &extra : NULL,
                      .nextra = kms_via_service ? 1 : 0};
    return al_authz_evaluate(c, &q, NULL, 0, NULL);
}

/* ---- encoded authorization messages (sts:DecodeAuthorizationMessage) ----
 *
 * The message is the decision in AWS's decoded JSON shape, sealed under the
 * host master key (AES-256-GCM, label AUTHZ_MSG_LABEL as AAD) and base64
 * encoded: opaque to the caller, and anything not made here fails to open. */
#define AUTHZ_MSG_LABEL "authorization message"
#define AUTHZ_MSG_JSON_MAX 8192

static void message_json(es_jw *w, const char *principal, const char *action, const char *resource,
                         aw_decision_kind kind)
{
    es_jw_obj(w);
    es_jw_kbool(w, "allowed", kind == AW_DECISION_ALLOW);
    es_jw_kbool(w, "explicitDeny", kind == AW_DECISION_EXPLICIT_DENY);
    es_jw_key(w, "matchedStatements");
    es_jw_obj(w);
    es_jw_key(w, "items");
    es_jw_arr(w);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
    es_jw_key(w, "failures");
    es_jw_obj(w);
    es_jw_key(w, "items");
    es_jw_arr(w);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
    es_jw_key(w, "context");
    es_jw_obj(w);
    es_jw_key(w, "principal");
    es_jw_obj(w);
    es_jw_kstr(w, "arn", principal);
    es_jw_obj_end(w);
    es_jw_kstr(w, "action", action);
    es_jw_kstr(w, "resource", resource);
    es_jw_key(w, "conditions");
    es_jw_obj(w);
    es_jw_key(w, "items");
    es_jw_arr(w);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
    es_jw_obj_end(w);
    es_jw_obj_end(w);
}

int al_authz_message_encode(al_ctx *c, const char *principal, const char *action,
                            const char *resource, es_buf *out)
{
    aw_decision_kind kind = AW_DECISION_IMPLICIT_DENY;
    al_authz_req q = {.principal = principal, .action = action, .resource = resource};
    int r = al_authz_evaluate(c, &q, NULL, 0, &kind);
    if (r < 0 && r != -EACCES)
        return r;
    es_buf json;
    es_jw w;
    es_buf_init(&json, AUTHZ_MSG_JSON_MAX);
    es_jw_init(&w, &json);
    message_json(&w, principal, action, resource, kind);
    uint8_t *blob = NULL;
    size_t n = 0;
    if ((r = es_jw_finish(&w)) == 0 &&
        (r = al_kms_wrap(c, AUTHZ_MSG_LABEL, (const uint8_t *)json.data, json.len, &blob, &n)) == 0)
        r = al_b64_encode(out, blob, n);
    es_free(blob);
    es_buf_free(&json);
    return r;
}

int al_authz_message_decode(al_ctx *c, const char *encoded, es_buf *json)
{
    uint8_t *blob = NULL, *pt = NULL;
    size_t n = 0, ptn = 0;
    int r = al_b64_decode(encoded, strlen(encoded), &blob, &n);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return -EINVAL;
    r = al_kms_unwrap(c, AUTHZ_MSG_LABEL, blob, n, &pt, &ptn);
    es_free(blob);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return -EINVAL;
    r = es_buf_append(json, pt, ptn);
    es_free(pt);
    return r;
}
