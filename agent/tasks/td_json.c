/* td_json.c - see td_json.h. */
#include "agent/tasks/td_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <inttypes.h>

#include "common/alloc.h"
#include "common/utf8.h"

#define CLIENT "ClientException"
#define INVALID "InvalidParameterException"

int ag_td_bad(ag_td_error *e, const char *code, const char *fmt, ...)
{
    if (e) {
        e->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int ag_td_nomem(ag_td_error *e)
{
    if (e) {
        e->code = "ServerException";
        snprintf(e->message, sizeof e->message, "out of memory");
    }
    return -ENOMEM;
}

void ag_td_pathf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

const es_json *ag_td_member(const es_json *obj, const char *key)
{
    const es_json *j = es_json_get(obj, key);
    return j && j->type != ES_JSON_NULL ? j : NULL;
}

bool ag_td_in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

void ag_td_w_strv(es_jw *w, const char *key, char *const *v, size_t n)
{
    if (!v)
        return;
    es_jw_key(w, key);
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        es_jw_str(w, v[i]);
    es_jw_arr_end(w);
}

/* A string of at most max bytes, UTF-8, no NUL; empty refused unless
 * allow_empty. */
int ag_td_str_at(const es_json *j, const char *path, size_t max, bool allow_empty, char **out,
                 ag_td_error *e)
{
    if (j->type != ES_JSON_STRING)
        return ag_td_bad(e, INVALID, "%s: must be a string", path);
    size_t len = j->u.string.len;
    if (strlen(j->u.string.s) != len || !es_utf8_valid(j->u.string.s, len))
        return ag_td_bad(e, CLIENT, "%s: must be valid UTF-8 without NUL characters", path);
    if (len == 0 && !allow_empty)
        return ag_td_bad(e, CLIENT, "%s: should not be null or empty", path);
    if (len > max)
        return ag_td_bad(e, CLIENT, "%s: longer than %zu characters", path, max);
    if (!(*out = es_strndup(j->u.string.s, len)))
        return ag_td_nomem(e);
    return 0;
}

/* obj.key as a string; absent leaves *out NULL unless required. */
int ag_td_str_member(const es_json *obj, const char *path, const char *key, size_t max,
                     bool required, char **out, ag_td_error *e)
{
    char p[AG_TD_FIELD_PATH_MAX];
    ag_td_pathf(p, sizeof p, "%s.%s", path, key);
    const es_json *j = ag_td_member(obj, key);
    *out = NULL;
    if (!j)
        return required ? ag_td_bad(e, CLIENT, "%s: required", p) : 0;
    return ag_td_str_at(j, p, max, false, out, e);
}

int ag_td_int_at(const es_json *j, const char *path, int64_t min, int64_t max, int64_t *out,
                 ag_td_error *e)
{
    int64_t v;
    if (!es_json_as_int64(j, &v))
        return ag_td_bad(e, INVALID, "%s: must be an integer", path);
    if (v < min || v > max)
        return ag_td_bad(e, CLIENT, "%s: must be between %" PRId64 " and %" PRId64, path, min, max);
    *out = v;
    return 0;
}

int ag_td_int_member(const es_json *obj, const char *path, const char *key, int64_t min,
                     int64_t max, bool *has, int64_t *out, ag_td_error *e)
{
    char p[AG_TD_FIELD_PATH_MAX];
    ag_td_pathf(p, sizeof p, "%s.%s", path, key);
    const es_json *j = ag_td_member(obj, key);
    *has = false;
    if (!j)
        return 0;
    int r = ag_td_int_at(j, p, min, max, out, e);
    *has = r == 0;
    return r;
}

int ag_td_bool_member(const es_json *obj, const char *path, const char *key, ag_opt_bool *out,
                      ag_td_error *e)
{
    const es_json *j = ag_td_member(obj, key);
    *out = (ag_opt_bool){0};
    if (!j)
        return 0;
    if (j->type != ES_JSON_BOOL)
        return ag_td_bad(e, INVALID, "%s.%s: must be a boolean", path, key);
    *out = (ag_opt_bool){true, j->u.boolean};
    return 0;
}

/* A list member: NULL when absent (*n 0), else a checked array. */
const es_json *ag_td_list_member(const es_json *obj, const char *path, const char *key, size_t max,
                                 char *lpath, size_t lpath_len, int *rc, ag_td_error *e)
{
    ag_td_pathf(lpath, lpath_len, "%s.%s", path, key);
    const es_json *arr = ag_td_member(obj, key);
    *rc = 0;
    if (!arr)
        return NULL;
    if (arr->type != ES_JSON_ARRAY) {
        *rc = ag_td_bad(e, INVALID, "%s: must be a list", lpath);
        return NULL;
    }
    if (es_json_len(arr) > max) {
        *rc = ag_td_bad(e, CLIENT, "%s: more than %zu entries", lpath, max);
        return NULL;
    }
    return arr;
}

/* obj's members must all be in names (n of them): a sub-member this agent
 * does not know is refused by name, as the top-level ones are. */
int ag_td_known_members(const es_json *obj, const char *path, const char *shape,
                        const char *const *names, size_t n, ag_td_error *e)
{
    for (size_t i = 0; i < obj->u.object.n; i++)
        if (!ag_td_in_list(obj->u.object.keys[i], names, n))
            return ag_td_bad(e, CLIENT, "%s.%.64s: not a member of %s that this agent knows", path,
                             obj->u.object.keys[i], shape);
    return 0;
}
