#include "aws/arn.h"
#include "aws/region.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

typedef struct span {
    const char *p;
    size_t n;
} span;

static bool span_eq(span s, const char *lit)
{
    size_t l = strlen(lit);
    return s.n == l && memcmp(s.p, lit, l) == 0;
}

static bool span_prefix(span s, const char *lit)
{
    size_t l = strlen(lit);
    return s.n >= l && memcmp(s.p, lit, l) == 0;
}

static void copy(char *dst, span s)
{
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool all_of(span s, bool (*ok)(char))
{
    for (size_t i = 0; i < s.n; i++)
        if (!ok(s.p[i]))
            return false;
    return true;
}

static bool svc_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool ssm_char(char c)
{
    return is_alnum(c) || c == '_' || c == '.' || c == '-' || c == '/';
}

static bool selector_char(char c)
{
    return is_alnum(c) || c == '_' || c == '.' || c == '-';
}

static bool secret_char(char c)
{
    return is_alnum(c) || c == '/' || c == '_' || c == '+' || c == '=' || c == '.' || c == '@' ||
           c == '-';
}

static bool stage_char(char c)
{
    return c > ' ' && c < 0x7f && c != ':';
}

static bool version_id_char(char c)
{
    return is_alnum(c) || c == '-';
}

static bool kms_id_char(char c)
{
    return is_alnum(c) || c == '-';
}

static bool alias_char(char c)
{
    return is_alnum(c) || c == '/' || c == '_' || c == '-';
}

static bool role_char(char c)
{
    return is_alnum(c) || c == '+' || c == '=' || c == ',' || c == '.' || c == '@' || c == '_' ||
           c == '-';
}

static bool path_char(char c)
{
    return c > ' ' && c < 0x7f;
}

/* Splits s at the first c: head before, tail after (tail.p NULL if none). */
static bool split(span s, char c, span *head, span *tail)
{
    const char *q = NULL;
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] == c) {
            q = s.p + i;
            break;
        }
    if (!q) {
        *head = s;
        *tail = (span){NULL, 0};
        return false;
    }
    *head = (span){s.p, (size_t)(q - s.p)};
    *tail = (span){q + 1, s.n - (size_t)(q - s.p) - 1};
    return true;
}

static int parse_ssm(span res, aw_arn *a)
{
    span name, sel;
    bool has_sel = split(res, ':', &name, &sel);
    if (name.n == 0 || name.p[0] == '/' || name.p[name.n - 1] == '/')
        return AW_ARN_E_RESOURCE;
    if (name.n > AW_ARN_SSM_NAME_MAX)
        return AW_ARN_E_PART_TOO_LONG;
    if (!all_of(name, ssm_char))
        return AW_ARN_E_RESOURCE;
    size_t levels = 1;
    for (size_t i = 0; i < name.n; i++) {
        if (name.p[i] == '/') {
            if (name.p[i + 1] == '/')
                return AW_ARN_E_RESOURCE;
            levels++;
        }
    }
    if (levels > AW_ARN_SSM_LEVELS_MAX)
        return AW_ARN_E_PART_TOO_LONG;
    if (has_sel) {
        if (sel.n == 0 || !all_of(sel, selector_char))
            return AW_ARN_E_RESOURCE;
        if (sel.n >= sizeof a->selector)
            return AW_ARN_E_PART_TOO_LONG;
        copy(a->selector, sel);
    }
    if (levels > 1) {
        a->name[0] = '/';
        copy(a->name + 1, name);
    } else {
        copy(a->name, name);
    }
    a->kind = AW_ARN_SSM_PARAMETER;
    return 0;
}

static int parse_secret(span res, aw_arn *a)
{
    span name, rest, key, rest2, stage, id, extra;
    split(res, ':', &name, &rest);
    if (name.n == 0)
        return AW_ARN_E_RESOURCE;
    if (name.n > AW_ARN_SECRET_NAME_MAX)
        return AW_ARN_E_PART_TOO_LONG;
    if (!all_of(name, secret_char))
        return AW_ARN_E_RESOURCE;
    key = stage = id = (span){NULL, 0};
    if (rest.p) {
        split(rest, ':', &key, &rest2);
        if (rest2.p) {
            split(rest2, ':', &stage, &extra);
            if (extra.p) {
                split(extra, ':', &id, &rest);
                if (rest.p)
                    return AW_ARN_E_RESOURCE; /* more than three tail parts */
            }
        }
    }
    if (key.n > AW_ARN_JSON_KEY_MAX || stage.n > AW_ARN_VERSION_STAGE_MAX ||
        id.n > AW_ARN_VERSION_ID_MAX)
        return AW_ARN_E_PART_TOO_LONG;
    for (size_t i = 0; i < key.n; i++)
        if (key.p[i] == '\0')
            return AW_ARN_E_RESOURCE;
    if (!all_of(stage, stage_char) || !all_of(id, version_id_char))
        return AW_ARN_E_RESOURCE;
    copy(a->name, name);
    if (key.p)
        copy(a->json_key, key);
    if (stage.p)
        copy(a->version_stage, stage);
    if (id.p)
        copy(a->version_id, id);
    a->name_has_suffix = false;
    if (name.n > 7 && name.p[name.n - 7] == '-') {
        a->name_has_suffix = true;
        for (size_t i = name.n - 6; i < name.n; i++)
            if (!is_alnum(name.p[i]))
                a->name_has_suffix = false;
    }
    a->kind = AW_ARN_SECRET;
    return 0;
}

static int parse_kms(span res, aw_arn *a)
{
    if (span_prefix(res, "key/")) {
        span id = {res.p + 4, res.n - 4};
        if (id.n == 0 || !all_of(id, kms_id_char))
            return AW_ARN_E_RESOURCE;
        if (id.n > AW_ARN_KMS_ID_MAX)
            return AW_ARN_E_PART_TOO_LONG;
        copy(a->name, id);
        a->kind = AW_ARN_KMS_KEY;
        return 0;
    }
    if (span_prefix(res, "alias/")) {
        span al = {res.p + 6, res.n - 6};
        if (al.n == 0 || !all_of(al, alias_char))
            return AW_ARN_E_RESOURCE;
        if (res.n > AW_ARN_KMS_ID_MAX)
            return AW_ARN_E_PART_TOO_LONG;
        copy(a->name, res);
        a->kind = AW_ARN_KMS_ALIAS;
        return 0;
    }
    return 1; /* not a form we know */
}

static int parse_role(span res, aw_arn *a)
{
    span rest = {res.p + 5, res.n - 5}; /* after "role/" */
    size_t last = 0;
    bool slash = false;
    for (size_t i = 0; i < rest.n; i++)
        if (rest.p[i] == '/') {
            last = i;
            slash = true;
        }
    span name = slash ? (span){rest.p + last + 1, rest.n - last - 1} : rest;
    if (name.n == 0 || !all_of(name, role_char))
        return AW_ARN_E_RESOURCE;
    if (name.n > AW_ARN_ROLE_NAME_MAX)
        return AW_ARN_E_PART_TOO_LONG;
    if (slash) {
        /* path "/" + rest[0..last] + "/" */
        span p = {rest.p, last};
        if (p.n == 0 || p.p[p.n - 1] == '/' || !all_of(p, path_char))
            return AW_ARN_E_RESOURCE;
        for (size_t i = 0; i + 1 < p.n; i++)
            if (p.p[i] == '/' && p.p[i + 1] == '/')
                return AW_ARN_E_RESOURCE;
        if (p.p[0] == '/' || p.n + 2 > AW_ARN_ROLE_PATH_MAX)
            return p.p[0] == '/' ? AW_ARN_E_RESOURCE : AW_ARN_E_PART_TOO_LONG;
        a->path[0] = '/';
        memcpy(a->path + 1, p.p, p.n);
        a->path[p.n + 1] = '/';
        a->path[p.n + 2] = '\0';
    } else {
        a->path[0] = '/';
        a->path[1] = '\0';
    }
    copy(a->name, name);
    a->kind = AW_ARN_IAM_ROLE;
    return 0;
}

int aw_arn_parse(const char *s, size_t len, aw_arn *out)
{
    if (!s || !out)
        return AW_ARN_E_SYNTAX;
    if (len > AW_ARN_MAX)
        return AW_ARN_E_TOO_LONG;
    span all = {s, len}, f[6];
    span rest = all;
    for (int i = 0; i < 5; i++)
        if (!split(rest, ':', &f[i], &rest))
            return AW_ARN_E_SYNTAX;
    f[5] = rest;
    if (!span_eq(f[0], "arn"))
        return AW_ARN_E_SYNTAX;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return AW_ARN_E_SYNTAX; /* no control characters (or NUL) anywhere */
    if (!aw_partition_known(f[1].p, f[1].n))
        return AW_ARN_E_PARTITION;
    if (f[2].n > AW_ARN_SERVICE_MAX)
        return AW_ARN_E_PART_TOO_LONG;
    if (f[2].n == 0 || !all_of(f[2], svc_char))
        return AW_ARN_E_SERVICE;
    if (f[3].n > AW_ARN_REGION_MAX)
        return AW_ARN_E_PART_TOO_LONG;
    if (!all_of(f[3], svc_char) || (f[3].n && (f[3].p[0] == '-' || f[3].p[f[3].n - 1] == '-')))
        return AW_ARN_E_REGION;
    if (f[3].n) { /* a region AWS has belongs to one partition */
        char rg[AW_ARN_REGION_MAX + 1];
        memcpy(rg, f[3].p, f[3].n);
        rg[f[3].n] = '\0';
        const char *part = aw_region_partition(rg);
        if (part && !span_eq(f[1], part))
            return AW_ARN_E_PARTITION;
    }
    if (f[4].n != 0 && (f[4].n != 12 || !all_of(f[4], digit)))
        return AW_ARN_E_ACCOUNT;
    if (f[5].n == 0)
        return AW_ARN_E_RESOURCE;

    aw_arn *a = es_calloc(1, sizeof *a);
    if (!a)
        return AW_ARN_E_NOMEM;
    copy(a->partition, f[1]);
    copy(a->service, f[2]);
    copy(a->region, f[3]);
    copy(a->account, f[4]);
    copy(a->resource, f[5]);
    a->path[0] = '/';
    int rc = 0;
    span res = f[5];
    if (span_eq(f[2], "ssm") && span_prefix(res, "parameter/")) {
        if (!f[3].n || !f[4].n)
            rc = f[3].n ? AW_ARN_E_ACCOUNT : AW_ARN_E_REGION;
        else
            rc = parse_ssm((span){res.p + 10, res.n - 10}, a);
    } else if (span_eq(f[2], "secretsmanager") && span_prefix(res, "secret:")) {
        if (!f[3].n || !f[4].n)
            rc = f[3].n ? AW_ARN_E_ACCOUNT : AW_ARN_E_REGION;
        else
            rc = parse_secret((span){res.p + 7, res.n - 7}, a);
    } else if (span_eq(f[2], "kms")) {
        rc = parse_kms(res, a);
        if (rc == 0 && (!f[3].n || !f[4].n))
            rc = f[3].n ? AW_ARN_E_ACCOUNT : AW_ARN_E_REGION;
        if (rc == 1)
            rc = 0; /* another KMS resource: generic */
    } else if (span_eq(f[2], "iam") && span_prefix(res, "role/")) {
        if (f[3].n)
            rc = AW_ARN_E_REGION;
        else if (!f[4].n)
            rc = AW_ARN_E_ACCOUNT;
        else
            rc = parse_role(res, a);
    }
    if (rc == 0)
        *out = *a;
    es_free(a);
    return rc;
}

int aw_arn_parse_str(const char *s, aw_arn *out)
{
    if (!s)
        return AW_ARN_E_SYNTAX;
    return aw_arn_parse(s, strnlen(s, AW_ARN_MAX + 1), out);
}

const char *aw_arn_strerror(int err)
{
    switch (err) {
    case AW_ARN_OK:
        return "ok";
    case AW_ARN_E_TOO_LONG:
        return "ARN too long";
    case AW_ARN_E_SYNTAX:
        return "not an ARN (arn:partition:service:region:account:resource)";
    case AW_ARN_E_PARTITION:
        return "unknown ARN partition (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, "
               "aws-iso-f, aws-eusc)";
    case AW_ARN_E_SERVICE:
        return "invalid service in ARN";
    case AW_ARN_E_REGION:
        return "invalid region in ARN";
    case AW_ARN_E_ACCOUNT:
        return "invalid account id in ARN";
    case AW_ARN_E_RESOURCE:
        return "invalid resource in ARN";
    case AW_ARN_E_PART_TOO_LONG:
        return "ARN component too long";
    case AW_ARN_E_NOMEM:
        return "out of memory";
    default:
        return "unknown ARN error";
    }
}

int aw_arn_secret_id(const aw_arn *a, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "arn:%s:secretsmanager:%s:%s:secret:%s", a->partition, a->region,
                     a->account, a->name);
    if (n < 0 || (size_t)n >= outlen)
        return AW_ARN_E_TOO_LONG;
    return 0;
}
