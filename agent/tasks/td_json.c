/* td_json.c - see td_json.h. */
#include "agent/tasks/td_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
