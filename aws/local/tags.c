/* tags.c - the tag rules SSM, Secrets Manager and KMS share (tags.h). */
#include "aws/local/tags.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "aws/local/internal.h"

bool al_tag_text_ok(const char *s, size_t min, size_t max, bool pattern)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        chars += (*p & 0xC0) != 0x80;
    if (chars < min || chars > max)
        return false;
    if (!pattern)
        return true;
    int err;
    PCRE2_SIZE at;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR) "^[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*$", PCRE2_ZERO_TERMINATED,
                      PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &at, NULL);
    if (!code)
        return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    bool ok = md && pcre2_match(code, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return ok;
}

static int fault(const al_tag_rules *r, al_tag_fault_kind kind, size_t i, const char *text,
                 bool in_keys, al_error *e)
{
    al_tag_fault f = {.kind = kind, .index = i, .text = text, .in_keys = in_keys};
    return r->refuse(&f, e);
}

static bool reserved(const char *k)
{
    return strncasecmp(k, "aws:", 4) == 0;
}

/* The key of member i: a Tags member's key_field, or a TagKeys string. */
static const char *key_at(const es_json *list, size_t i, const al_tag_rules *r, bool keys_only)
{
    const es_json *m = list->u.array.items[i];
    return keys_only ? es_json_as_str(m) : es_json_get_str(m, r->key_field);
}

/* Reserved prefixes and duplicates, once every member passed its lengths. */
static int check_keys(const es_json *list, const al_tag_rules *r, bool keys_only, al_error *e)
{
    for (size_t i = 0; (!keys_only || r->keys_reserved) && i < list->u.array.n; i++)
        if (reserved(key_at(list, i, r, keys_only)))
            return fault(r, AL_TAG_RESERVED, i, key_at(list, i, r, keys_only), keys_only, e);
    for (size_t i = 0; r->duplicates && !keys_only && i < list->u.array.n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(key_at(list, i, r, keys_only), key_at(list, j, r, keys_only)) == 0)
                return fault(r, AL_TAG_DUPLICATE, i, key_at(list, i, r, keys_only), keys_only, e);
    return 0;
}

int al_tags_check(const es_json *tags, size_t max, const al_tag_rules *r, al_error *e)
{
    if (!tags || tags->type != ES_JSON_ARRAY || tags->u.array.n > max) {
        al_tag_fault f = {.kind = AL_TAG_NOT_LIST, .max = max};
        return r->refuse(&f, e);
    }
    for (size_t i = 0; i < tags->u.array.n; i++) {
        const es_json *t = tags->u.array.items[i];
        const char *k = es_json_get_str(t, r->key_field), *v = es_json_get_str(t, r->value_field);
        if (!k || !al_tag_text_ok(k, 1, AL_TAG_KEY_MAX, r->pattern))
            return fault(r, AL_TAG_KEY_BAD, i, k, false, e);
        if (!v || !al_tag_text_ok(v, 0, AL_TAG_VALUE_MAX, r->pattern))
            return fault(r, AL_TAG_VALUE_BAD, i, v, false, e);
    }
    return check_keys(tags, r, false, e);
}

int al_tag_keys_check(const es_json *keys, const al_tag_rules *r, al_error *e)
{
    if (!keys || keys->type != ES_JSON_ARRAY)
        return fault(r, AL_TAG_NOT_LIST, 0, NULL, true, e);
    for (size_t i = 0; i < keys->u.array.n; i++) {
        const char *k = es_json_as_str(keys->u.array.items[i]);
        if (!k || !al_tag_text_ok(k, 1, AL_TAG_KEY_MAX, r->pattern))
            return fault(r, AL_TAG_KEY_BAD, i, k, true, e);
    }
    return check_keys(keys, r, true, e);
}

int al_tags_total_check(int64_t count, const al_tag_rules *r, al_error *e)
{
    if (count <= AL_TAGS_MAX)
        return 0;
    al_tag_fault f = {.kind = AL_TAG_TOO_MANY, .count = count};
    return r->refuse(&f, e);
}
