/* tags.h - ECS resource tags: the model and ECS's rules, shared by the
 * task definitions, tasks and services that carry them (agent/api/tags.c
 * serves TagResource, UntagResource and ListTagsForResource; the store
 * keeps them; agent/services/redeploy.h reads a service's).
 *
 * ECS's rules (the Tag shape of the ECS API reference):
 *   at most AG_TAGS_MAX (50) per resource; keys unique;
 *   key 1..128 characters, value 0..256 characters (UTF-8 characters, not
 *   bytes), both of letters, numbers, spaces and + - = . _ : / @ (any
 *   character beyond ASCII is taken as a letter: an approximation of
 *   \p{L}\p{Z}\p{N}, kept because no client checks more);
 *   keys beginning with aws: (any case) are reserved: refused on tagging
 *   and on untagging.
 * Refusals are InvalidParameterException in ECS's manner; the message
 * names the member (tags[i].key, tagKeys[i]) and never quotes more than the
 * key. Pure: no store, no log. */
#ifndef AG_TASKS_TAGS_H
#define AG_TASKS_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/json.h"

#define AG_TAGS_MAX 50
#define AG_TAG_KEY_MAX 128   /* characters */
#define AG_TAG_VALUE_MAX 256 /* characters */
#define AG_TAGS_ERR_MAX 320

typedef struct ag_tag {
    char *key, *value;
} ag_tag;

typedef struct ag_tags {
    ag_tag items[AG_TAGS_MAX];
    size_t n;
} ag_tags;

void ag_tags_clear(ag_tags *t);
/* The value of key, or NULL. */
const char *ag_tags_get(const ag_tags *t, const char *key);

/* true when key / value follow ECS's length and character rules (not the
 * reserved prefix: ag_tag_key_reserved). */
bool ag_tag_key_ok(const char *key);
bool ag_tag_value_ok(const char *value);
bool ag_tag_key_reserved(const char *key);

/* Reads an ECS tags list ([{"key": K, "value": V}, ...]; field names the
 * member in messages, "tags") into out (cleared first). 0; -EINVAL with
 * err filled (out cleared); -ENOMEM. A repeated key is refused. */
int ag_tags_read(const es_json *list, const char *field, ag_tags *out, char *err, size_t errlen);
/* Checks a tagKeys list (strings: the key rules, reserved refused). 0 or
 * -EINVAL with err. */
int ag_tag_keys_check(const es_json *keys, const char *field, char *err, size_t errlen);

/* into = into + add (a key in both takes add's value). 0; -EINVAL with err
 * when the result would hold more than AG_TAGS_MAX (into unchanged);
 * -ENOMEM (into unchanged). */
int ag_tags_merge(ag_tags *into, const ag_tags *add, char *err, size_t errlen);
/* Removes the keys named by a tagKeys list (unknown ones are no error). */
void ag_tags_remove(ag_tags *t, const es_json *keys);
/* Copies src into dst (cleared first). 0, -ENOMEM or -ENOSPC (dst cleared). */
int ag_tags_copy(ag_tags *dst, const ag_tags *src);

/* Writes "tags": [{"key", "value"}, ...] (a member of the open object). */
void ag_tags_write(const ag_tags *t, es_jw *w);

#endif
