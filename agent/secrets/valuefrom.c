/* valuefrom.c - see valuefrom.h. */
#include "agent/secrets/valuefrom.h"
#include "aws/region.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

#define SSM_REF_PREFIX "/aws/reference/secretsmanager/"

/* One allocation holds every string of the result, NUL-separated. */
typedef struct arena {
    char *mem;
    size_t used, cap;
} arena;

static const char *arena_put(arena *a, const char *s, size_t n)
{
    /* cap is sized so that this cannot overflow; keep the check anyway */
    if (a->used + n + 1 > a->cap)
        return NULL;
    char *p = a->mem + a->used;
    memcpy(p, s, n);
    p[n] = '\0';
    a->used += n + 1;
    return p;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool all_of(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && !strchr(extra, s[i]))
            return false;
    return true;
}

static bool ci_prefix(const char *s, size_t n, const char *p)
{
    size_t pn = strlen(p);
    if (n < pn)
        return false;
    for (size_t i = 0; i < pn; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != p[i])
            return false;
    }
    return true;
}

/* An SSM name without selector: a-zA-Z0-9_.-/, hierarchical names start with
 * '/', no empty level, at most AG_VF_SSM_LEVELS_MAX levels. */
static int check_ssm_name(const char *s, size_t n, char *err, size_t errlen)
{
    if (n == 0 || (n == 1 && s[0] == '/'))
        return es_errf(err, errlen, AG_VF_E_NAME, "the parameter name is empty");
    if (!all_of(s, n, "_.-/"))
        return es_errf(err, errlen, AG_VF_E_NAME,
                       "the parameter name may hold only letters, digits and _.-/");
    if (memchr(s, '/', n)) {
        if (s[0] != '/')
            return es_errf(err, errlen, AG_VF_E_NAME,
                           "a hierarchical parameter name must start with '/'");
        unsigned levels = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] != '/')
                continue;
            levels++;
            if (i + 1 == n || s[i + 1] == '/')
                return es_errf(err, errlen, AG_VF_E_NAME,
                               "the parameter name has an empty hierarchy level");
        }
        if (levels > AG_VF_SSM_LEVELS_MAX)
            return es_errf(err, errlen, AG_VF_E_NAME,
                           "the parameter name has %u hierarchy levels (at most %d)", levels,
                           AG_VF_SSM_LEVELS_MAX);
    }
    return 0;
}

/* ":3" or ":label"; sel points after the colon. */
static int parse_selector(const char *sel, size_t n, uint64_t *version, const char **label_start,
                          size_t *label_len, char *err, size_t errlen)
{
    if (n == 0)
        return es_errf(err, errlen, AG_VF_E_SELECTOR, "the selector after ':' is empty");
    /* a version too: leading zeros must not make it longer than aws/arn.h
     * (which reads the same reference in an ARN) takes a selector */
    if (n > AG_VF_SSM_LABEL_MAX)
        return es_errf(err, errlen, AG_VF_E_SELECTOR, "the selector after ':' is longer than %d",
                       AG_VF_SSM_LABEL_MAX);
    bool digits = true;
    for (size_t i = 0; i < n; i++)
        digits = digits && is_digit(sel[i]);
    if (digits) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            if (v > (UINT64_MAX - 9) / 10 || v * 10 + (uint64_t)(sel[i] - '0') > INT64_MAX)
                return es_errf(err, errlen, AG_VF_E_SELECTOR, "the version selector is too large");
            v = v * 10 + (uint64_t)(sel[i] - '0');
        }
        if (v == 0)
            return es_errf(err, errlen, AG_VF_E_SELECTOR, "parameter versions start at 1");
        *version = v;
        return 0;
    }
    if (!all_of(sel, n, "_.-"))
        return es_errf(err, errlen, AG_VF_E_SELECTOR,
                       "a label may hold only letters, digits and _.- (or be a version number)");
    if (is_digit(sel[0]))
        return es_errf(err, errlen, AG_VF_E_SELECTOR, "a label may not start with a digit");
    if (ci_prefix(sel, n, "aws") || ci_prefix(sel, n, "ssm"))
        return es_errf(err, errlen, AG_VF_E_SELECTOR, "a label may not start with aws or ssm");
    *label_start = sel;
    *label_len = n;
    return 0;
}

/* A Secrets Manager secret name (with its random suffix, if any). */
static int check_sm_name(const char *s, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return es_errf(err, errlen, AG_VF_E_NAME, "the secret name is empty");
    if (n > AG_VF_SM_NAME_MAX)
        return es_errf(err, errlen, AG_VF_E_NAME, "the secret name is longer than %d",
                       AG_VF_SM_NAME_MAX);
    if (!all_of(s, n, "/_+=.@-"))
        return es_errf(err, errlen, AG_VF_E_NAME,
                       "the secret name may hold only letters, digits and /_+=.@-");
    return 0;
}

/* SSM name part (bare, or after "parameter" in an ARN), possibly with a
 * selector, possibly a Secrets Manager reference. */
static int parse_ssm_part(const char *s, size_t n, ag_valuefrom *v, arena *a, char *err,
                          size_t errlen)
{
    size_t plen = strlen(SSM_REF_PREFIX);
    if (n >= plen && memcmp(s, SSM_REF_PREFIX, plen) == 0) {
        const char *id = s + plen;
        size_t idn = n - plen;
        if (memchr(id, ':', idn))
            return es_errf(err, errlen, AG_VF_E_SELECTOR,
                           "a selector or ARN is not supported after " SSM_REF_PREFIX);
        int r = check_sm_name(id, idn, err, errlen);
        if (r)
            return r;
        /* it is still an SSM name: SSM's characters and hierarchy rules (a
         * secret whose name holds + = @ is reached with its own ARN) */
        if ((r = check_ssm_name(s, n, err, errlen)))
            return r;
        v->kind = AG_VF_SSM_REFERENCE;
        v->ssm_name = arena_put(a, s, n);
        v->secret_id = arena_put(a, id, idn);
        return 0;
    }
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    int r = check_ssm_name(s, name_len, err, errlen);
    if (r)
        return r;
    uint64_t version = 0;
    const char *label = NULL;
    size_t label_len = 0;
    if (colon) {
        const char *sel = colon + 1;
        size_t seln = n - name_len - 1;
        if (memchr(sel, ':', seln))
            return es_errf(err, errlen, AG_VF_E_SELECTOR, "more than one ':' selector");
        r = parse_selector(sel, seln, &version, &label, &label_len, err, errlen);
        if (r)
            return r;
    }
    v->kind = AG_VF_SSM;
    v->ssm_name = arena_put(a, s, name_len);
    v->ssm_version = version;
    v->ssm_label = label ? arena_put(a, label, label_len) : NULL;
    return 0;
}

static int parse_sm_tail(const char *rest, size_t n, ag_valuefrom *v, arena *a,
                         const char *arn_prefix, size_t arn_prefix_len, char *err, size_t errlen)
{
    const char *part[4] = {NULL};
    size_t len[4] = {0};
    size_t np = 0;
    const char *p = rest, *end = rest + n;
    for (;;) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        if (np == 4)
            return es_errf(err, errlen, AG_VF_E_TAIL,
                           "too many ':' parts after the secret name (at most "
                           ":json-key:version-stage:version-id)");
        part[np] = p;
        len[np] = c ? (size_t)(c - p) : (size_t)(end - p);
        np++;
        if (!c)
            break;
        p = c + 1;
    }
    int r = check_sm_name(part[0], len[0], err, errlen);
    if (r)
        return r;
    if (np > 1 && len[1] > AG_VF_SM_JSON_KEY_MAX)
        return es_errf(err, errlen, AG_VF_E_TAIL, "the json key is longer than %d",
                       AG_VF_SM_JSON_KEY_MAX);
    if (np > 2 && len[2] > AG_VF_SM_STAGE_MAX)
        return es_errf(err, errlen, AG_VF_E_TAIL, "the version stage is longer than %d",
                       AG_VF_SM_STAGE_MAX);
    if (np > 2 && !all_of(part[2], len[2], "_.-+=@/"))
        return es_errf(err, errlen, AG_VF_E_TAIL, "the version stage holds invalid characters");
    if (np > 3 && len[3] > 0) {
        if (len[3] < 32 || len[3] > AG_VF_SM_VERSION_ID_MAX || !all_of(part[3], len[3], "-"))
            return es_errf(err, errlen, AG_VF_E_TAIL,
                           "the version id must be 32 to %d letters, digits or hyphens",
                           AG_VF_SM_VERSION_ID_MAX);
    }
    v->kind = AG_VF_SECRETSMANAGER;
    /* secret_id = the ARN up to the end of the name */
    v->secret_id = arena_put(a, arn_prefix, arn_prefix_len + len[0]);
    v->json_key = np > 1 && len[1] ? arena_put(a, part[1], len[1]) : NULL;
    v->version_stage = np > 2 && len[2] ? arena_put(a, part[2], len[2]) : NULL;
    v->version_id = np > 3 && len[3] ? arena_put(a, part[3], len[3]) : NULL;
    return 0;
}

static int parse_arn(const char *s, size_t n, ag_valuefrom *v, arena *a, char *err, size_t errlen)
{
    /* arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE (resource may hold ':') */
    const char *f[6];
    size_t fl[6];
    const char *p = s, *end = s + n;
    for (int i = 0; i < 5; i++) {
        const char *c = memchr(p, ':', (size_t)(end - p));
        if (!c)
            return es_errf(err, errlen, AG_VF_E_ARN,
                           "not an ARN (arn:partition:service:region:account:resource)");
        f[i] = p;
        fl[i] = (size_t)(c - p);
        p = c + 1;
    }
    f[5] = p;
    fl[5] = (size_t)(end - p);
    /* the partitions aws/region.h knows (as aws/arn.h does) */
    if (!aw_partition_known(f[1], fl[1]))
        return es_errf(err, errlen, AG_VF_E_ARN,
                       "the ARN's partition '%.*s' is not one AWS has (aws, aws-cn, aws-us-gov, "
                       "aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc)",
                       (int)(fl[1] > 16 ? 16 : fl[1]), f[1]);
    bool ssm = fl[2] == 3 && memcmp(f[2], "ssm", 3) == 0;
    bool sm = fl[2] == 14 && memcmp(f[2], "secretsmanager", 14) == 0;
    if (!ssm && !sm)
        return es_errf(err, errlen, AG_VF_E_SERVICE,
                       "the ARN's service is '%.*s': only ssm and secretsmanager hold secrets",
                       (int)(fl[2] > 32 ? 32 : fl[2]), f[2]);
    if (fl[3] == 0)
        return es_errf(err, errlen, AG_VF_E_REGION, "the ARN has no region");
    bool region_ok = fl[3] <= AG_VF_REGION_MAX && f[3][0] != '-' && f[3][fl[3] - 1] != '-';
    for (size_t i = 0; region_ok && i < fl[3]; i++)
        region_ok = (f[3][i] >= 'a' && f[3][i] <= 'z') || is_digit(f[3][i]) || f[3][i] == '-';
    if (!region_ok)
        return es_errf(err, errlen, AG_VF_E_REGION,
                       "the ARN's region is malformed (lowercase letters, digits, hyphens)");
    /* a region AWS has, in the ARN's partition: a typo would otherwise
     * surface only when the task's fetch fails */
    char region[AG_VF_REGION_MAX + 1];
    memcpy(region, f[3], fl[3]);
    region[fl[3]] = '\0';
    const char *part = aw_region_partition(region);
    if (!part) {
        const char *near = aw_region_nearest(region);
        return es_errf(err, errlen, AG_VF_E_REGION,
                       "the ARN's region '%s' is not an AWS region%s%s%s", region,
                       near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
    }
    if (strlen(part) != fl[1] || memcmp(part, f[1], fl[1]) != 0)
        return es_errf(err, errlen, AG_VF_E_ARN,
                       "the ARN's region %s is in the partition %s, not %.*s", region, part,
                       (int)fl[1], f[1]);
    if (fl[4] != 12 || !all_of(f[4], fl[4], ""))
        return es_errf(err, errlen, AG_VF_E_ACCOUNT, "the ARN's account is not 12 digits");
    for (size_t i = 0; i < 12; i++)
        if (!is_digit(f[4][i]))
            return es_errf(err, errlen, AG_VF_E_ACCOUNT, "the ARN's account is not 12 digits");
    v->is_arn = true;
    v->partition = arena_put(a, f[1], fl[1]);
    v->region = arena_put(a, f[3], fl[3]);
    v->account = arena_put(a, f[4], fl[4]);
    if (ssm) {
        if (fl[5] < 10 || memcmp(f[5], "parameter/", 10) != 0)
            return es_errf(err, errlen, AG_VF_E_RESOURCE,
                           "an SSM ARN must name a parameter (...:parameter/NAME)");
        /* keep the '/' after "parameter": the name is "/NAME" */
        return parse_ssm_part(f[5] + 9, fl[5] - 9, v, a, err, errlen);
    }
    if (fl[5] < 7 || memcmp(f[5], "secret:", 7) != 0)
        return es_errf(err, errlen, AG_VF_E_RESOURCE,
                       "a Secrets Manager ARN must name a secret (...:secret:NAME)");
    return parse_sm_tail(f[5] + 7, fl[5] - 7, v, a, s, (size_t)(f[5] + 7 - s), err, errlen);
}

/* A reference is 1..AG_VF_MAX characters; *n its length. */
static int check_length(const char *s, size_t *n, char *err, size_t errlen)
{
    if (!s || !*s)
        return es_errf(err, errlen, AG_VF_E_EMPTY, "empty");
    *n = strnlen(s, AG_VF_MAX + 1);
    if (*n > AG_VF_MAX)
        return es_errf(err, errlen, AG_VF_E_TOO_LONG, "longer than %d characters", AG_VF_MAX);
    return 0;
}

int ag_valuefrom_parse(const char *vf, const char *task_region, ag_valuefrom *out, char *err,
                       size_t errlen)
{
    size_t n = 0;
    int lr = check_length(vf, &n, err, errlen);
    if (lr)
        return lr;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)vf[i];
        if (c <= 0x20 || c == 0x7f)
            return es_errf(err, errlen, AG_VF_E_CHARS,
                           "holds a space or control character at offset %zu", i);
    }
    if (!task_region)
        task_region = "";
    size_t rn = strnlen(task_region, AG_VF_REGION_MAX + 1);
    if (rn > AG_VF_REGION_MAX)
        rn = AG_VF_REGION_MAX;
    ag_valuefrom v;
    memset(&v, 0, sizeof v);
    arena a = {.cap = 3 * n + rn + 64, .used = 0};
    a.mem = es_malloc(a.cap);
    if (!a.mem)
        return es_errf(err, errlen, AG_VF_E_NOMEM, "out of memory");
    int r;
    if (n >= 4 && memcmp(vf, "arn:", 4) == 0) {
        r = parse_arn(vf, n, &v, &a, err, errlen);
    } else {
        v.partition = arena_put(&a, "aws", 3);
        v.region = arena_put(&a, task_region, rn);
        v.account = arena_put(&a, "", 0);
        r = parse_ssm_part(vf, n, &v, &a, err, errlen);
    }
    if (r) {
        es_free(a.mem);
        return r;
    }
    v.mem_ = a.mem;
    *out = v;
    if (err && errlen)
        err[0] = '\0';
    return 0;
}

int ag_valuefrom_parse_secret(const char *id, const char *task_region, ag_valuefrom *out, char *err,
                              size_t errlen)
{
    size_t n = 0;
    int lr = check_length(id, &n, err, errlen);
    if (lr)
        return lr;
    if (n >= 4 && memcmp(id, "arn:", 4) == 0) {
        ag_valuefrom v;
        int r = ag_valuefrom_parse(id, task_region, &v, err, errlen);
        if (r)
            return r;
        if (v.kind != AG_VF_SECRETSMANAGER) {
            ag_valuefrom_clear(&v);
            return es_errf(err, errlen, AG_VF_E_SERVICE,
                           "must be a Secrets Manager secret (arn:PARTITION:secretsmanager:REGION:"
                           "ACCOUNT:secret:NAME) or a secret name");
        }
        if (v.json_key || v.version_stage || v.version_id || strlen(v.secret_id) != n) {
            ag_valuefrom_clear(&v);
            return es_errf(err, errlen, AG_VF_E_TAIL,
                           "a secret ARN without json-key, version-stage or version-id");
        }
        *out = v;
        return 0;
    }
    int r = check_sm_name(id, n, err, errlen);
    if (r)
        return r;
    if (!task_region)
        task_region = "";
    size_t rn = strnlen(task_region, AG_VF_REGION_MAX + 1);
    if (rn > AG_VF_REGION_MAX)
        rn = AG_VF_REGION_MAX;
    ag_valuefrom v;
    memset(&v, 0, sizeof v);
    arena a = {.cap = n + rn + 16, .used = 0};
    if (!(a.mem = es_malloc(a.cap)))
        return es_errf(err, errlen, AG_VF_E_NOMEM, "out of memory");
    v.kind = AG_VF_SECRETSMANAGER;
    v.partition = arena_put(&a, "aws", 3);
    v.region = arena_put(&a, task_region, rn);
    v.account = arena_put(&a, "", 0);
    v.secret_id = arena_put(&a, id, n);
    v.mem_ = a.mem;
    *out = v;
    if (err && errlen)
        err[0] = '\0';
    return 0;
}

void ag_valuefrom_clear(ag_valuefrom *v)
{
    if (!v)
        return;
    es_free(v->mem_);
    memset(v, 0, sizeof *v);
}

int ag_valuefrom_resource_arn(const ag_valuefrom *v, const char *task_account, char *out,
                              size_t outlen)
{
    int n;
    if (v->kind == AG_VF_SECRETSMANAGER) {
        n = snprintf(out, outlen, "%s", v->secret_id);
    } else {
        const char *acct = v->account && *v->account ? v->account : task_account;
        n = snprintf(out, outlen, "arn:%s:ssm:%s:%s:parameter%s%s", v->partition, v->region,
                     acct ? acct : "", v->ssm_name[0] == '/' ? "" : "/", v->ssm_name);
    }
    return n < 0 || (size_t)n >= outlen ? -EMSGSIZE : 0;
}

const char *ag_vf_kind_name(ag_vf_kind k)
{
    switch (k) {
    case AG_VF_SSM:
        return "ssm";
    case AG_VF_SSM_REFERENCE:
        return "ssm (secretsmanager reference)";
    case AG_VF_SECRETSMANAGER:
        return "secretsmanager";
    }
    return "?";
}
