/* aws/local/tags.c: the tag rules SSM, Secrets Manager and KMS share. The
 * services' own wording is tested with each service (test_al_ssm,
 * test_al_sm_ops, test_al_kms); here, which fault is found. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aws/local/internal.h"
#include "aws/local/tags.h"

static al_tag_fault seen;
static char seen_text[512]; /* seen.text, copied: the request is freed after the check */
static int calls;

/* Records the fault instead of wording it. */
static int record(const al_tag_fault *f, al_error *e)
{
    seen = *f;
    snprintf(seen_text, sizeof seen_text, "%s", f->text ? f->text : "");
    seen.text = f->text ? seen_text : NULL;
    calls++;
    return al_fail(e, 400, "Test", "fault %d", (int)f->kind);
}

static const al_tag_rules PLAIN = {.key_field = "Key", .value_field = "Value", .refuse = record};
static const al_tag_rules STRICT = {.key_field = "Key",
                                    .value_field = "Value",
                                    .pattern = true,
                                    .duplicates = true,
                                    .keys_reserved = true,
                                    .refuse = record};

static es_json *parse(const char *text)
{
    es_json *j = NULL;
    char why[128];
    cr_assert_eq(es_json_parse(text, strlen(text), &es_json_default_limits, &j, why, sizeof why), 0,
                 "%s: %s", text, why);
    return j;
}

/* Checks a Tags list; answers the fault kind, or -1 when it passed. */
static int tags(const char *text, size_t max, const al_tag_rules *r)
{
    es_json *j = parse(text);
    al_error e;
    calls = 0;
    int rc = al_tags_check(j, max, r, &e);
    es_json_free(j);
    cr_assert_eq(rc < 0, calls == 1, "%s: rc %d, %d calls", text, rc, calls);
    return rc < 0 ? (int)seen.kind : -1;
}

static int keys(const char *text, const al_tag_rules *r)
{
    es_json *j = parse(text);
    al_error e;
    calls = 0;
    int rc = al_tag_keys_check(j, r, &e);
    es_json_free(j);
    cr_assert_eq(rc < 0, calls == 1, "%s: rc %d, %d calls", text, rc, calls);
    return rc < 0 ? (int)seen.kind : -1;
}

Test(al_tags, limits)
{
    cr_assert_eq(tags("[]", 50, &PLAIN), -1);
    cr_assert_eq(tags("[{\"Key\":\"a\",\"Value\":\"\"}]", 50, &PLAIN), -1);
    cr_assert_eq(tags("{}", 50, &PLAIN), AL_TAG_NOT_LIST);
    cr_assert_eq(tags("[{\"Key\":\"a\",\"Value\":\"\"},{\"Key\":\"b\",\"Value\":\"\"}]", 1, &PLAIN),
                 AL_TAG_NOT_LIST);
    cr_assert_eq(seen.max, 1);
    cr_assert_eq(tags("[{\"Key\":\"\",\"Value\":\"v\"}]", 50, &PLAIN), AL_TAG_KEY_BAD);
    cr_assert_eq(tags("[{\"Value\":\"v\"}]", 50, &PLAIN), AL_TAG_KEY_BAD);
    cr_assert_null(seen.text);
    cr_assert_eq(tags("[{\"Key\":\"k\"}]", 50, &PLAIN), AL_TAG_VALUE_BAD);
    cr_assert_eq(tags("[{\"Key\":\"k\",\"Value\":7}]", 50, &PLAIN), AL_TAG_VALUE_BAD);
    /* lengths in characters, not bytes: 128 two-byte characters pass, 129 do not */
    char text[1024] = "[{\"Key\":\"";
    size_t at = strlen(text);
    for (int i = 0; i < 128; i++)
        at += (size_t)snprintf(text + at, sizeof text - at, "\xc3\xa9");
    snprintf(text + at, sizeof text - at, "\",\"Value\":\"v\"}]");
    cr_assert_eq(tags(text, 50, &PLAIN), -1);
    memmove(text + 11, text + 9, strlen(text + 9) + 1);
    memcpy(text + 9, "\xc3\xa9", 2);
    cr_assert_eq(tags(text, 50, &PLAIN), AL_TAG_KEY_BAD);
    char value[400] = "[{\"Key\":\"k\",\"Value\":\"";
    size_t head = strlen(value);
    memset(value + head, 'v', 257);
    snprintf(value + head + 257, sizeof value - head - 257, "\"}]");
    cr_assert_eq(tags(value, 50, &PLAIN), AL_TAG_VALUE_BAD);
    cr_assert_eq(seen.index, 0);
}

Test(al_tags, reserved_pattern_duplicates)
{
    cr_assert_eq(tags("[{\"Key\":\"aws:x\",\"Value\":\"v\"}]", 50, &PLAIN), AL_TAG_RESERVED);
    cr_assert_eq(tags("[{\"Key\":\"AwS:x\",\"Value\":\"v\"}]", 50, &PLAIN), AL_TAG_RESERVED);
    cr_assert_str_eq(seen.text, "AwS:x");
    cr_assert_eq(tags("[{\"Key\":\"awsx\",\"Value\":\"v\"}]", 50, &PLAIN), -1);
    /* lengths before the reserved prefix, whatever the members' order */
    cr_assert_eq(
        tags("[{\"Key\":\"aws:x\",\"Value\":\"v\"},{\"Key\":\"\",\"Value\":\"v\"}]", 50, &PLAIN),
        AL_TAG_KEY_BAD);
    cr_assert_eq(seen.index, 1);
    /* the pattern only where asked */
    cr_assert_eq(tags("[{\"Key\":\"a#b\",\"Value\":\"v\"}]", 50, &PLAIN), -1);
    cr_assert_eq(tags("[{\"Key\":\"a#b\",\"Value\":\"v\"}]", 50, &STRICT), AL_TAG_KEY_BAD);
    cr_assert_eq(tags("[{\"Key\":\"a b/c=d+e-f@g.h_i:\xc3\xa9\",\"Value\":\"x;y\"}]", 50, &STRICT),
                 AL_TAG_VALUE_BAD);
    /* duplicates only where asked */
    const char *dup = "[{\"Key\":\"d\",\"Value\":\"1\"},{\"Key\":\"d\",\"Value\":\"2\"}]";
    cr_assert_eq(tags(dup, 50, &PLAIN), -1);
    cr_assert_eq(tags(dup, 50, &STRICT), AL_TAG_DUPLICATE);
    cr_assert_eq(seen.index, 1);
    cr_assert_not(seen.in_keys);
}

Test(al_tags, tag_keys)
{
    cr_assert_eq(keys("[\"a\",\"b\"]", &PLAIN), -1);
    cr_assert_eq(keys("null", &PLAIN), AL_TAG_NOT_LIST);
    cr_assert(seen.in_keys);
    cr_assert_eq(keys("[\"a\",\"\"]", &PLAIN), AL_TAG_KEY_BAD);
    cr_assert_eq(seen.index, 1);
    cr_assert_eq(keys("[3]", &PLAIN), AL_TAG_KEY_BAD);
    /* an aws: key named for removal: refused only by services that say so */
    cr_assert_eq(keys("[\"aws:x\"]", &PLAIN), -1);
    cr_assert_eq(keys("[\"aws:x\"]", &STRICT), AL_TAG_RESERVED);
    /* the same key twice in TagKeys is no fault */
    cr_assert_eq(keys("[\"a\",\"a\"]", &STRICT), -1);
}

Test(al_tags, total)
{
    al_error e;
    calls = 0;
    cr_assert_eq(al_tags_total_check(AL_TAGS_MAX, &PLAIN, &e), 0);
    cr_assert_eq(calls, 0);
    cr_assert_lt(al_tags_total_check(AL_TAGS_MAX + 1, &PLAIN, &e), 0);
    cr_assert_eq(seen.kind, AL_TAG_TOO_MANY);
    cr_assert_eq(seen.count, AL_TAGS_MAX + 1);
}
