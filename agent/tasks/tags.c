/* tags.c - see tags.h. */
#include "agent/tasks/tags.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/utf8.h"

#define RESERVED_PREFIX "aws:"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

void ag_tags_clear(ag_tags *t)
{
    for (size_t i = 0; i < t->n; i++) {
        es_free(t->items[i].key);
        es_free(t->items[i].value);
    }
    t->n = 0;
}

const char *ag_tags_get(const ag_tags *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].key, key) == 0)
            return t->items[i].value;
    return NULL;
}

/* Characters (not bytes) of letters, numbers, spaces and + - = . _ : / @;
 * beyond ASCII any valid character counts as a letter. */
static bool text_ok(const char *s, size_t min, size_t max)
{
    size_t len = strlen(s), chars = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len; chars++) {
        size_t n = es_utf8_len(p + i, len - i);
        if (n == 0)
            return false;
        if (n == 1 && !((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
                        (p[i] >= '0' && p[i] <= '9') || strchr(" +-=._:/@", p[i])))
            return false;
        i += n;
    }
    return chars >= min && chars <= max;
}

bool ag_tag_key_ok(const char *key)
{
    return key && text_ok(key, 1, AG_TAG_KEY_MAX);
}

bool ag_tag_value_ok(const char *value)
{
    return value && text_ok(value, 0, AG_TAG_VALUE_MAX);
}

bool ag_tag_key_reserved(const char *key)
{
    return strncasecmp(key, RESERVED_PREFIX, strlen(RESERVED_PREFIX)) == 0;
}

/* A JSON string without NUL bytes, or NULL. */
static const char *plain_str(const es_json *j)
{
    const char *s = es_json_as_str(j);
    return s && strlen(s) == j->u.string.len ? s : NULL;
}

static int check_key(const char *key, const char *field, size_t i, const char *what, char *err,
                     size_t errlen)
{
    if (!key || !ag_tag_key_ok(key))
        return fail(err, errlen,
                    "%s[%zu]%s: a tag key is 1 to %d letters, numbers, spaces or + - = . _ : / @",
                    field, i, what, AG_TAG_KEY_MAX);
    if (ag_tag_key_reserved(key))
        return fail(err, errlen,
                    "%s[%zu]%s: the aws: prefix is reserved for AWS use; tags with it cannot be "
                    "added, changed or removed",
                    field, i, what);
    return 0;
}

static int read_one(const es_json *m, const char *field, size_t i, ag_tags *out, char *err,
                    size_t errlen)
{
    if (!m || m->type != ES_JSON_OBJECT)
        return fail(err, errlen, "%s[%zu]: a tag is an object with key and value", field, i);
    const es_json *kj = es_json_get(m, "key"), *vj = es_json_get(m, "value");
    const char *k = kj ? plain_str(kj) : NULL;
    int r = check_key(k, field, i, ".key", err, errlen);
    if (r)
        return r;
    const char *v = vj ? plain_str(vj) : "";
    if (!v || !ag_tag_value_ok(v))
        return fail(err, errlen,
                    "%s[%zu].value: a tag value is 0 to %d letters, numbers, spaces or + - = . _ : "
                    "/ @",
                    field, i, AG_TAG_VALUE_MAX);
    if (ag_tags_get(out, k))
        return fail(err, errlen, "%s[%zu].key: the key %s is given twice; tag keys are unique",
                    field, i, k);
    ag_tag *t = &out->items[out->n];
    t->key = es_strdup(k);
    t->value = es_strdup(v);
    out->n++; /* counted even when half made, so ag_tags_clear frees it */
    return t->key && t->value ? 0 : -ENOMEM;
}

int ag_tags_read(const es_json *list, const char *field, ag_tags *out, char *err, size_t errlen)
{
    ag_tags_clear(out);
    if (!list || list->type != ES_JSON_ARRAY)
        return fail(err, errlen, "%s: must be a list of tags", field);
    if (list->u.array.n > AG_TAGS_MAX)
        return fail(err, errlen, "%s: %zu tags; a resource has at most %d", field, list->u.array.n,
                    AG_TAGS_MAX);
    for (size_t i = 0; i < list->u.array.n; i++) {
        int r = read_one(list->u.array.items[i], field, i, out, err, errlen);
        if (r) {
            ag_tags_clear(out);
            return r;
        }
    }
    return 0;
}

int ag_tag_keys_check(const es_json *keys, const char *field, char *err, size_t errlen)
{
    if (!keys || keys->type != ES_JSON_ARRAY)
        return fail(err, errlen, "%s: must be a list of tag keys", field);
    if (keys->u.array.n > AG_TAGS_MAX)
        return fail(err, errlen, "%s: %zu keys; a resource has at most %d tags", field,
                    keys->u.array.n, AG_TAGS_MAX);
    for (size_t i = 0; i < keys->u.array.n; i++) {
        int r = check_key(plain_str(keys->u.array.items[i]), field, i, "", err, errlen);
        if (r)
            return r;
    }
    return 0;
}

static int set_one(ag_tags *t, const char *key, const char *value)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].key, key) == 0) {
            char *v = es_strdup(value);
            if (!v)
                return -ENOMEM;
            es_free(t->items[i].value);
            t->items[i].value = v;
            return 0;
        }
    if (t->n == AG_TAGS_MAX)
        return -ENOSPC;
    char *k = es_strdup(key), *v = es_strdup(value);
    if (!k || !v) {
        es_free(k);
        es_free(v);
        return -ENOMEM;
    }
    t->items[t->n++] = (ag_tag){.key = k, .value = v};
    return 0;
}

int ag_tags_merge(ag_tags *into, const ag_tags *add, char *err, size_t errlen)
{
    size_t total = into->n;
    for (size_t i = 0; i < add->n; i++)
        total += ag_tags_get(into, add->items[i].key) == NULL;
    if (total > AG_TAGS_MAX)
        return fail(err, errlen,
                    "tags: the resource would have %zu tags; a resource has at most %d", total,
                    AG_TAGS_MAX);
    /* on a copy, so that an allocation failure leaves into as it was */
    ag_tags work = {.n = 0};
    int r = ag_tags_copy(&work, into);
    for (size_t i = 0; r == 0 && i < add->n; i++)
        r = set_one(&work, add->items[i].key, add->items[i].value);
    if (r) {
        ag_tags_clear(&work);
        return r;
    }
    ag_tags_clear(into);
    *into = work;
    return 0;
}

void ag_tags_remove(ag_tags *t, const es_json *keys)
{
    for (size_t j = 0; keys && keys->type == ES_JSON_ARRAY && j < keys->u.array.n; j++) {
        const char *k = plain_str(keys->u.array.items[j]);
        for (size_t i = 0; k && i < t->n; i++) {
            if (strcmp(t->items[i].key, k) != 0)
                continue;
            es_free(t->items[i].key);
            es_free(t->items[i].value);
            memmove(&t->items[i], &t->items[i + 1], (t->n - i - 1) * sizeof t->items[0]);
            t->n--;
            break;
        }
    }
}

int ag_tags_copy(ag_tags *dst, const ag_tags *src)
{
    ag_tags_clear(dst);
    for (size_t i = 0; i < src->n; i++) {
        int r = set_one(dst, src->items[i].key, src->items[i].value);
        if (r < 0) {
            ag_tags_clear(dst);
            return r;
        }
    }
    return 0;
}

void ag_tags_write(const ag_tags *t, es_jw *w)
{
    es_jw_key(w, "tags");
    es_jw_arr(w);
    for (size_t i = 0; i < t->n; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "key", t->items[i].key);
        es_jw_kstr(w, "value", t->items[i].value);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}
