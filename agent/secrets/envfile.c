/* envfile.c - ECS environment files (envfile.h). */
#include "agent/secrets/envfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

bool ag_envfile_defines(const char *env, size_t env_len, const char *name, size_t n)
{
    for (size_t at = 0; at < env_len;) {
        const char *e = env + at;
        size_t el = strnlen(e, env_len - at);
        if (el > n && e[n] == '=' && memcmp(e, name, n) == 0)
            return true;
        at += el + 1;
    }
    return false;
}

/* Removes the entry for name[0..n) from env, if any (a later line wins). */
static void drop_entry(es_buf *env, const char *name, size_t n)
{
    for (size_t at = 0; at < env->len;) {
        char *e = env->data + at;
        size_t el = strnlen(e, env->len - at) + 1;
        if (el > n + 1 && e[n] == '=' && memcmp(e, name, n) == 0) {
            memmove(e, e + el, env->len - at - el);
            memset(env->data + env->len - el, 0, el); /* no copy of a value left behind */
            env->len -= el;
            return;
        }
        at += el;
    }
}

/* One line (without its end): kept, skipped, or refused. */
static int take_line(const char *l, size_t n, size_t lineno, es_buf *env, size_t *vars, char *err,
                     size_t errlen)
{
    if (n && l[n - 1] == '\r')
        n--;
    if (n == 0 || l[0] == '#')
        return 0;
    const char *eq = memchr(l, '=', n);
    if (!eq || eq == l || eq == l + n - 1)
        return 0; /* ECS skips a line without a name, a '=' or a value */
    size_t nl = (size_t)(eq - l);
    if (nl > AG_ENVFILE_NAME_MAX) {
        snprintf(err, errlen, "line %zu: the variable's name is longer than %d characters", lineno,
                 AG_ENVFILE_NAME_MAX);
        return -EMSGSIZE;
    }
    if (ag_envfile_defines(env->data, env->len, l, nl))
        drop_entry(env, l, nl);
    else if (++*vars > AG_ENVFILE_VARS_MAX) {
        snprintf(err, errlen, "more than %d variables", AG_ENVFILE_VARS_MAX);
        return -EMSGSIZE;
    }
    int r = es_buf_append(env, l, n);
    if (r == 0)
        r = es_buf_append_char(env, '\0');
    return r;
}

int ag_envfile_parse(const char *data, size_t len, es_buf *env, char *err, size_t errlen)
{
    es_buf_reset_secret(env);
    if (len > AG_ENVFILE_BYTES_MAX) {
        snprintf(err, errlen, "the file is larger than %u bytes", (unsigned)AG_ENVFILE_BYTES_MAX);
        return -EMSGSIZE;
    }
    if (memchr(data, '\0', len)) {
        snprintf(err, errlen, "the file holds a NUL byte, which an environment cannot carry");
        return -EINVAL;
    }
    size_t vars = 0, lineno = 1;
    for (size_t at = 0; at < len; lineno++) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (data + at)) : len - at;
        int r = take_line(data + at, n, lineno, env, &vars, err, errlen);
        if (r < 0) {
            es_buf_reset_secret(env);
            return r;
        }
        at += n + (nl ? 1 : 0);
    }
    return 0;
}

static bool is_taken(const char *e, size_t nl, const char *const *taken, size_t n_taken)
{
    for (size_t i = 0; i < n_taken; i++)
        if (strlen(taken[i]) == nl && memcmp(taken[i], e, nl) == 0)
            return true;
    return false;
}

int ag_envfile_merge(const es_buf *files, size_t n, const char *const *taken, size_t n_taken,
                     es_buf *out)
{
    size_t start = out->len; /* what the files give, to tell an earlier file's */
    for (size_t f = 0; f < n; f++) {
        for (size_t at = 0; at < files[f].len;) {
            const char *e = files[f].data + at;
            size_t el = strnlen(e, files[f].len - at);
            size_t nl = (size_t)((const char *)memchr(e, '=', el) - e);
            at += el + 1;
            const char *given = out->data ? out->data + start : "";
            if (is_taken(e, nl, taken, n_taken) ||
                ag_envfile_defines(given, out->len - start, e, nl))
                continue;
            int r = es_buf_append(out, e, el + 1);
            if (r < 0)
                return r;
        }
    }
    return 0;
}
