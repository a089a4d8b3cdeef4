/* docker_roles.c - ECS_SECRETS_DOCKER_ROLES (docker_roles.h). */
#include "config/docker_roles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#define ENTRY_QUOTE_MAX 64 /* bytes of an entry quoted in an error */

typedef struct parser {
    cf_docker_rule *rules;
    size_t n;
    bool embedded;
    char *err;
    size_t errlen;
} parser;

static const char *trim(const char *s, const char *end, const char **tend)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *tend = end;
    return s;
}

static int bad(parser *p, const char *entry, size_t len, const char *why)
{
    snprintf(p->err, p->errlen, "entry '%.*s%s': %s",
             (int)(len < ENTRY_QUOTE_MAX ? len : ENTRY_QUOTE_MAX), entry,
             len > ENTRY_QUOTE_MAX ? "..." : "", why);
    return -EINVAL;
}

/* arn:PARTITION:iam::ACCOUNT:role/... (a pattern) or :user/... (exact). */
static const char *check_arn(const char *a, size_t len, bool *principal)
{
    if (len == 0)
        return "an empty ARN";
    if (len > CF_DOCKER_RULE_ARN_MAX)
        return "an ARN longer than 2048 characters";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= ' ' || c == 0x7f || c == '[' || c == ']' || c == '\\' || c == '=')
            return "an ARN holds a space, a control character or one of [ ] \\ =";
    }
    const char *f[6];
    size_t fl[6];
    const char *s = a, *end = a + len;
    for (int i = 0; i < 5; i++) {
        const char *c = memchr(s, ':', (size_t)(end - s));
        if (!c)
            return "not an ARN (arn:aws:iam::ACCOUNT:role/NAME)";
        f[i] = s;
        fl[i] = (size_t)(c - s);
        s = c + 1;
    }
    f[5] = s;
    fl[5] = (size_t)(end - s);
    if (fl[0] != 3 || memcmp(f[0], "arn", 3) != 0 || fl[1] == 0)
        return "not an ARN (arn:aws:iam::ACCOUNT:role/NAME)";
    if (fl[2] != 3 || memcmp(f[2], "iam", 3) != 0 || fl[3] != 0)
        return "not an IAM ARN (arn:aws:iam::ACCOUNT:...: no region)";
    bool wild_account = strcspn(f[4], "*?") < fl[4];
    if (strspn(f[4], "0123456789*?") < fl[4] || (!wild_account && fl[4] != 12))
        return "the account is not 12 digits (or a pattern of digits, '*' and '?')";
    *principal = fl[5] > 5 && memcmp(f[5], "user/", 5) == 0;
    if (!*principal && !(fl[5] > 5 && memcmp(f[5], "role/", 5) == 0))
        return "names neither a role (...:role/NAME) nor a user (...:user/NAME)";
    if (*principal && strcspn(a, "*?") < len)
        return "a user ARN may not hold '*' or '?' (it names one principal)";
    return NULL;
}

static int add_rule(parser *p, bool gid, uint32_t id, const char *a, size_t len, const char *entry,
                    size_t elen)
{
    bool principal = false;
    const char *why = check_arn(a, len, &principal);
    if (why)
        return bad(p, entry, elen, why);
    if (principal && !p->embedded)
        return bad(p, entry, elen,
                   "a user ARN maps to the embedded IAM, which aws mode does not have: name "
                   "role patterns");
    if (p->n >= CF_DOCKER_RULES_MAX)
        return bad(p, entry, elen, "more than 256 ARNs in all");
    char *copy = es_strndup(a, len);
    if (!copy)
        return -ENOMEM;
    p->rules[p->n++] = (cf_docker_rule){.gid = gid, .id = id, .principal = principal, .arn = copy};
    return 0;
}

static int parse_entry(parser *p, const char *e, size_t len)
{
    bool gid = len > 4 && memcmp(e, "gid:", 4) == 0;
    if (!gid && !(len > 4 && memcmp(e, "uid:", 4) == 0))
        return bad(p, e, len, "must begin with uid:N= or gid:N=");
    const char *eq = memchr(e, '=', len), *num = e + 4;
    size_t nl = eq ? (size_t)(eq - num) : 0;
    while (nl > 0 && (num[nl - 1] == ' ' || num[nl - 1] == '\t'))
        nl--;
    if (!eq || nl == 0 || nl > 10 || strspn(num, "0123456789") < nl)
        return bad(p, e, len, "the uid or gid must be a number followed by '='");
    uint64_t id = strtoull(num, NULL, 10);
    if (id > CF_DOCKER_ID_MAX)
        return bad(p, e, len, "the uid or gid is out of range");
    const char *s = eq + 1, *end = e + len;
    bool any = false;
    while (s <= end) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        const char *stop = c ? c : end, *tend;
        const char *t = trim(s, stop, &tend);
        if (tend > t) {
            int r = add_rule(p, gid, (uint32_t)id, t, (size_t)(tend - t), e, len);
            if (r)
                return r;
            any = true;
        }
        s = stop + 1;
    }
    return any ? 0 : bad(p, e, len, "names no ARN after '='");
}

int cf_docker_roles_parse(const char *v, bool embedded, cf_docker_rule **out, size_t *n, char *err,
                          size_t errlen)
{
    parser p = {.embedded = embedded, .err = err, .errlen = errlen};
    *out = NULL;
    *n = 0;
    if (!(p.rules = es_calloc(CF_DOCKER_RULES_MAX, sizeof *p.rules)))
        return -ENOMEM;
    const char *s = v, *end = v + strlen(v);
    int r = 0;
    while (s <= end && !r) {
        const char *c = memchr(s, ';', (size_t)(end - s));
        const char *stop = c ? c : end, *tend;
        const char *t = trim(s, stop, &tend);
        if (tend > t)
            r = parse_entry(&p, t, (size_t)(tend - t));
        s = stop + 1;
    }
    if (r || p.n == 0) {
        cf_docker_rules_free(p.rules, p.n);
        return r;
    }
    *out = p.rules;
    *n = p.n;
    return 0;
}

void cf_docker_rules_free(cf_docker_rule *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        es_free(r[i].arn);
    es_free(r);
}
