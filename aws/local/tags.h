/* tags.h - the tag rules SSM, Secrets Manager and KMS share (private to
 * aws/local).
 *
 * The three services limit tags alike: a key of 1..AL_TAG_KEY_MAX
 * characters, a value of 0..AL_TAG_VALUE_MAX, no key beginning with "aws:"
 * in any case (AWS keeps it), at most AL_TAGS_MAX on a resource. They word
 * the refusals each their own way, so the rules live here and the words in
 * each service: al_tags_check finds the first fault and hands it to the
 * service's refuse function.
 *
 * Order of the checks, as AWS's request validation comes before the
 * service's own: every member's presence, lengths (and pattern) first, then
 * the reserved prefix, then duplicate keys. */
#ifndef ES_AWS_LOCAL_TAGS_H
#define ES_AWS_LOCAL_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/local/local.h"
#include "common/json.h"

#define AL_TAGS_MAX 50 /* tags on one resource, in all three services */

typedef enum al_tag_fault_kind {
    AL_TAG_NOT_LIST,  /* not a list, or more members than the call allows */
    AL_TAG_KEY_BAD,   /* no key string, its length (or pattern, when asked) */
    AL_TAG_VALUE_BAD, /* no value string, its length (or pattern, when asked) */
    AL_TAG_RESERVED,  /* a key beginning with aws: */
    AL_TAG_DUPLICATE, /* a key twice in one request */
    AL_TAG_TOO_MANY,  /* the resource would hold more than AL_TAGS_MAX */
} al_tag_fault_kind;

typedef struct al_tag_fault {
    al_tag_fault_kind kind;
    size_t index;     /* the member at fault, 0-based */
    const char *text; /* its key or value (NULL: there is none) */
    bool in_keys;     /* found in a TagKeys list (else a Tags list) */
    size_t max;       /* AL_TAG_NOT_LIST: the members the call allows */
    int64_t count;    /* AL_TAG_TOO_MANY: the tags the resource would hold */
} al_tag_fault;

/* How one service names tag members and words refusals. */
typedef struct al_tag_rules {
    const char *key_field, *value_field; /* "Key"/"Value"; KMS "TagKey"/"TagValue" */
    bool pattern;                        /* keys and values must match AWS's tag pattern (SSM) */
    bool duplicates;                     /* a key twice in one request is refused (KMS) */
    bool keys_reserved; /* TagKeys naming an aws: key are refused (SSM, Secrets Manager) */
    /* Fills e with the service's code and words for f; answers its errno. */
    int (*refuse)(const al_tag_fault *f, al_error *e);
} al_tag_rules;

/* A Tags list of at most max members: [{key_field: K, value_field: V},
 * ...]. 0 or refuse's answer. */
int al_tags_check(const es_json *tags, size_t max, const al_tag_rules *r, al_error *e);
/* A TagKeys list: [K, ...] (AL_TAG_VALUE_BAD and AL_TAG_DUPLICATE never
 * arise; AL_TAG_RESERVED only with keys_reserved). */
int al_tag_keys_check(const es_json *keys, const al_tag_rules *r, al_error *e);
/* After the tags are written: count on the resource over AL_TAGS_MAX is
 * refused (the caller rolls back). */
int al_tags_total_check(int64_t count, const al_tag_rules *r, al_error *e);
/* Is s min..max characters (UTF-8 code points) of AWS's tag pattern
 * [\p{L}\p{Z}\p{N}_.:/=+\-@] (pattern false: any characters)? */
bool al_tag_text_ok(const char *s, size_t min, size_t max, bool pattern);

#endif
