/* expand.c - see expand.h. */
#include "agent/secrets/expand.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/secrets/values.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

bool ag_expand_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > AG_EXPAND_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

/* Takes back what one variable appended (wiped), and says why. */
static int undo(es_buf *env, size_t before, int r, char *err, size_t errlen, const char *what,
                const char *key)
{
    if (env->data && env->len > before) {
        es_wipe(env->data + before, env->len - before);
        env->len = before;
        env->data[before] = '\0';
    }
    return es_errf(err, errlen, r, "%s '%.128s': %s", what, key,
                   r == -EMSGSIZE ? "the variables are too large"
                   : r == -ENOMEM ? "out of memory"
                   : r == -EILSEQ ? "the value holds a NUL byte, which a variable cannot carry"
                                  : "the value cannot be encoded");
}

/* Appends "name=" + v's text + NUL. */
static int add_json_var(es_buf *env, const char *prefix, const char *key, const es_json *v,
                        char *err, size_t errlen)
{
    size_t before = env->len, plen = strlen(prefix), klen = strlen(key);
    if (!ag_expand_name_ok(key, klen) || plen + klen > AG_EXPAND_NAME_MAX)
        return es_errf(err, errlen, -EINVAL,
                       "key '%.128s' of the secret does not make a variable name "
                       "([A-Za-z_][A-Za-z0-9_]*, at most %d characters) with the prefix '%s'",
                       key, AG_EXPAND_NAME_MAX, prefix);
    int r = es_buf_append(env, prefix, plen);
    if (!r)
        r = es_buf_append(env, key, klen);
    if (!r)
        r = es_buf_append(env, "=", 1);
    size_t vstart = env->len;
    if (!r)
        r = ag_secret_json_text(v, env);
    if (!r && memchr(env->data + vstart, '\0', env->len - vstart))
        r = -EILSEQ;
    if (!r)
        r = es_buf_append(env, "", 1);
    return r ? undo(env, before, r, err, errlen, "key", key) : 0;
}

/* A key given twice counts once, its last value (as json-key reads it). */
static bool overridden(const es_json *obj, size_t i)
{
    for (size_t j = i + 1; j < obj->u.object.n; j++)
        if (strcmp(obj->u.object.keys[i], obj->u.object.keys[j]) == 0)
            return true;
    return false;
}

int ag_expand_json(const char *prefix, const char *secret, size_t len, es_buf *env, size_t *n,
                   char *err, size_t errlen)
{
    es_json *j = NULL;
    int r = ag_secret_json_object(secret, len, &j);
    if (r == -ENOMEM)
        return es_errf(err, errlen, -ENOMEM, "out of memory");
    if (r)
        return es_errf(err, errlen, -EINVAL,
                       "the secret's value is not a JSON object (an expansion takes its keys)");
    size_t before = env->len, added = 0;
    for (size_t i = 0; i < j->u.object.n && !r; i++) {
        if (overridden(j, i))
            continue;
        if (*n + added + 1 > AG_EXPAND_MAX) {
            r = es_errf(err, errlen, -EINVAL, "more than %d variables from one expansion",
                        AG_EXPAND_MAX);
            break;
        }
        r = add_json_var(env, prefix, j->u.object.keys[i], j->u.object.values[i], err, errlen);
        added += r == 0;
    }
    es_json_free_secret(j);
    if (r) {
        undo(env, before, r, NULL, 0, "", "");
        return r;
    }
    *n += added;
    return 0;
}

int ag_expand_ssm_var(const char *prefix, const char *path, const char *name, char *out,
                      size_t outlen, char *err, size_t errlen)
{
    size_t pl = strlen(path);
    if (strncmp(name, path, pl) != 0 || name[pl] != '/' || name[pl + 1] == '\0')
        return es_errf(err, errlen, -EINVAL, "parameter '%.256s' is not under the path '%.256s/'",
                       name, path);
    int w = snprintf(out, outlen, "%s%s", prefix, name + pl + 1);
    if (w < 0 || (size_t)w >= outlen)
        return es_errf(err, errlen, -EMSGSIZE, "parameter '%.256s': the variable name is too long",
                       name);
    for (char *p = out + strlen(prefix); *p; p++)
        if (*p == '/')
            *p = '_';
    if (!ag_expand_name_ok(out, (size_t)w))
        return es_errf(err, errlen, -EINVAL,
                       "parameter '%.256s' gives '%.256s', which is not a variable name "
                       "([A-Za-z_][A-Za-z0-9_]*, at most %d characters)",
                       name, out, AG_EXPAND_NAME_MAX);
    return 0;
}

int ag_expand_add_param(const char *prefix, const char *path, const char *name, const char *value,
                        size_t vlen, es_buf *env, size_t *n, char *err, size_t errlen)
{
    char var[AG_EXPAND_NAME_MAX + 1];
    int r = ag_expand_ssm_var(prefix, path, name, var, sizeof var, err, errlen);
    if (r)
        return r;
    if (*n + 1 > AG_EXPAND_MAX)
        return es_errf(err, errlen, -EINVAL, "more than %d parameters under the path '%.256s/'",
                       AG_EXPAND_MAX, path);
    size_t before = env->len;
    r = value && memchr(value, '\0', vlen) ? -EILSEQ : 0;
    if (!r)
        r = es_buf_append_str(env, var);
    if (!r)
        r = es_buf_append(env, "=", 1);
    if (!r)
        r = es_buf_append(env, value ? value : "", value ? vlen : 0);
    if (!r)
        r = es_buf_append(env, "", 1);
    if (r)
        return undo(env, before, r, err, errlen, "parameter", name);
    (*n)++;
    return 0;
}

/* Where name (len bytes) is given by the container other than set s at
 * offset off: a description, or NULL. */
static const char *other_source(const ag_container_def *c, const char *const *sets,
                                const size_t *lens, size_t s, size_t off, const char *name,
                                size_t len, char *buf, size_t buflen)
{
    for (size_t i = 0; i < c->n_environment; i++)
        if (strlen(c->environment[i].name) == len && !memcmp(c->environment[i].name, name, len))
            return "environment";
    for (size_t i = 0; i < c->n_secrets; i++)
        if (strlen(c->secrets[i].name) == len && !memcmp(c->secrets[i].name, name, len))
            return "secrets";
    for (size_t t = 0; t <= s; t++) {
        size_t end = t == s ? off : lens[t];
        for (size_t o = 0; o < end;) {
            const char *e = sets[t] + o;
            size_t el = strlen(e);
            const char *eq = memchr(e, '=', el);
            if (eq && (size_t)(eq - e) == len && !memcmp(e, name, len)) {
                snprintf(buf, buflen, "the label %s", c->expands[t].ref->name);
                return buf;
            }
            o += el + 1;
        }
    }
    return NULL;
}

int ag_expand_check_names(const ag_container_def *c, const char *const *sets, const size_t *lens,
                          char *err, size_t errlen)
{
    char other[AG_TD_LABEL_KEY_MAX + 16];
    for (size_t s = 0; s < c->n_expands; s++) {
        for (size_t o = 0; o < lens[s];) {
            const char *e = sets[s] + o;
            size_t el = strlen(e);
            const char *eq = memchr(e, '=', el);
            size_t nl = eq ? (size_t)(eq - e) : el;
            const char *who = other_source(c, sets, lens, s, o, e, nl, other, sizeof other);
            if (who)
                return es_errf(err, errlen, -EINVAL,
                               "the variable %.*s of the label %s is also given by %s", (int)nl, e,
                               c->expands[s].ref->name, who);
            o += el + 1;
        }
    }
    return 0;
}

typedef struct name_version {
    const char *name;
    int64_t version;
} name_version;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const name_version *)a)->name, ((const name_version *)b)->name);
}

int ag_expand_set_version(const char **names, int64_t *versions, size_t n, char *out, size_t outlen)
{
    if (outlen < AG_EXPAND_VERSION_LEN + 1)
        return -EINVAL;
    name_version *nv = es_calloc(n ? n : 1, sizeof *nv);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!nv || !md) {
        es_free(nv);
        EVP_MD_CTX_free(md);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        nv[i] = (name_version){names[i], versions[i]};
    qsort(nv, n, sizeof *nv, by_name);
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    int ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; ok && i < n; i++) {
        char v[32];
        int vl = snprintf(v, sizeof v, "\t%lld\n", (long long)nv[i].version);
        names[i] = nv[i].name;
        versions[i] = nv[i].version;
        ok = EVP_DigestUpdate(md, nv[i].name, strlen(nv[i].name)) &&
             EVP_DigestUpdate(md, v, (size_t)vl);
    }
    ok = ok && EVP_DigestFinal_ex(md, h, &hl);
    EVP_MD_CTX_free(md);
    es_free(nv);
    if (!ok || hl != 32)
        return -EIO;
    size_t o = (size_t)snprintf(out, outlen, "set-sha256:");
    for (unsigned i = 0; i < AG_EXPAND_VERSION_BYTES; i++) /* fits ag_secret_meta's 72 */
        snprintf(out + o + 2 * i, 3, "%02x", h[i]);
    return 0;
}
