/* Redeploy on rotation (issue 21): ECS's tag rules (agent/tasks/tags.h),
 * the redeploy tags' policy and the decision on a test clock
 * (agent/services/redeploy.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/services/redeploy.h"
#include "agent/tasks/tags.h"
#include "common/alloc.h"
#include "common/json.h"

static es_json *parse(const char *text)
{
    es_json *j = NULL;
    char why[128];
    cr_assert_eq(es_json_parse(text, strlen(text), &es_json_default_limits, &j, why, sizeof why), 0,
                 "%s: %s", text, why);
    return j;
}

/* ag_tags_read on text: 0 or -EINVAL with err. */
static int read_text(const char *text, ag_tags *out, char *err, size_t errlen)
{
    es_json *j = parse(text);
    int r = ag_tags_read(j, "tags", out, err, errlen);
    es_json_free(j);
    return r;
}

static void refused(const char *text, const char *want)
{
    ag_tags t = {.n = 0};
    char err[AG_TAGS_ERR_MAX] = "";
    cr_assert_eq(read_text(text, &t, err, sizeof err), -EINVAL, "%s accepted", text);
    cr_assert(strstr(err, want), "%s: '%s' lacks '%s'", text, err, want);
    cr_assert_eq(t.n, 0);
}

Test(tags, ecs_rules_accept)
{
    ag_tags t = {.n = 0};
    char err[AG_TAGS_ERR_MAX] = "";
    cr_assert_eq(read_text("[{\"key\": \"team\", \"value\": \"blue\"}, {\"key\": \"a b+-=._:/@\","
                           " \"value\": \"\"}, {\"key\": \"caf\\u00e9\"}, {\"key\": \"AWS\"}]",
                           &t, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(t.n, 4);
    cr_assert_str_eq(ag_tags_get(&t, "team"), "blue");
    cr_assert_str_eq(ag_tags_get(&t, "café"), "", "a missing value is empty");
    cr_assert_null(ag_tags_get(&t, "Team"), "keys are case-sensitive");
    ag_tags_clear(&t);
    /* lengths count characters, not bytes: 128 two-byte characters pass */
    char key[2 * AG_TAG_KEY_MAX + 1] = "";
    for (int i = 0; i < AG_TAG_KEY_MAX; i++)
        memcpy(key + 2 * i, "\xc3\xa9", 3); /* with its NUL, overwritten by the next */
    cr_assert(ag_tag_key_ok(key));
    char value[AG_TAG_VALUE_MAX + 2];
    memset(value, 'v', AG_TAG_VALUE_MAX);
    value[AG_TAG_VALUE_MAX] = '\0';
    cr_assert(ag_tag_value_ok(value));
    value[AG_TAG_VALUE_MAX] = 'v';
    value[AG_TAG_VALUE_MAX + 1] = '\0';
    cr_assert_not(ag_tag_value_ok(value), "257 characters");
}

Test(tags, ecs_rules_refuse)
{
    refused("{}", "tags: must be a list");
    refused("[\"k\"]", "tags[0]: a tag is an object");
    refused("[{\"value\": \"v\"}]", "tags[0].key: a tag key is 1 to 128");
    refused("[{\"key\": \"\"}]", "tags[0].key");
    refused("[{\"key\": \"a;b\"}]", "tags[0].key");
    refused("[{\"key\": \"k\", \"value\": \"semi;colon\"}]",
            "tags[0].value: a tag value is 0 to 256");
    refused("[{\"key\": \"k\", \"value\": 3}]", "tags[0].value");
    refused("[{\"key\": \"a\\u0000b\"}]", "tags[0].key");
    refused("[{\"key\": \"k\"}, {\"key\": \"k\"}]", "tags[1].key: the key k is given twice");
    refused("[{\"key\": \"aws:x\"}]", "aws: prefix is reserved");
    refused("[{\"key\": \"AwS:x\"}]", "aws: prefix is reserved");
    char key[AG_TAG_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    cr_assert_not(ag_tag_key_ok(key), "129 characters");
    cr_assert_not(ag_tag_key_ok("bad\xff"), "not UTF-8");
    /* 51 tags */
    char list[51 * 32] = "[";
    for (int i = 0; i < 51; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s{\"key\": \"k%d\"}",
                 i ? "," : "", i);
    snprintf(list + strlen(list), sizeof list - strlen(list), "]");
    refused(list, "tags: 51 tags; a resource has at most 50");
}

Test(tags, keys_merge_remove)
{
    char err[AG_TAGS_ERR_MAX] = "";
    es_json *keys = parse("[\"a\", \"gone\"]");
    cr_assert_eq(ag_tag_keys_check(keys, "tagKeys", err, sizeof err), 0, "%s", err);
    es_json *bad = parse("[\"aws:x\"]");
    cr_assert_eq(ag_tag_keys_check(bad, "tagKeys", err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "tagKeys[0]: the aws: prefix"), "%s", err);
    es_json_free(bad);

    ag_tags have = {.n = 0}, add = {.n = 0};
    cr_assert_eq(
        read_text("[{\"key\": \"a\", \"value\": \"1\"}, {\"key\": \"b\", \"value\": \"2\"}]", &have,
                  err, sizeof err),
        0);
    cr_assert_eq(
        read_text("[{\"key\": \"b\", \"value\": \"3\"}, {\"key\": \"c\", \"value\": \"4\"}]", &add,
                  err, sizeof err),
        0);
    cr_assert_eq(ag_tags_merge(&have, &add, err, sizeof err), 0);
    cr_assert_eq(have.n, 3);
    cr_assert_str_eq(ag_tags_get(&have, "b"), "3", "a given key replaces its value");
    ag_tags_remove(&have, keys);
    cr_assert_eq(have.n, 2);
    cr_assert_null(ag_tags_get(&have, "a"));
    cr_assert_str_eq(ag_tags_get(&have, "c"), "4");
    es_json_free(keys);

    /* 49 + 2 new > 50: refused, nothing changed */
    ag_tags many = {.n = 0};
    char k[16];
    for (int i = 0; i < 49; i++) {
        snprintf(k, sizeof k, "k%d", i);
        many.items[many.n++] = (ag_tag){es_strdup(k), es_strdup("")};
    }
    cr_assert_eq(ag_tags_merge(&many, &add, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "would have 51 tags"), "%s", err);
    cr_assert_eq(many.n, 49);
    ag_tags_clear(&many);
    ag_tags_clear(&have);
    ag_tags_clear(&add);
}

/* ---- the redeploy tags ---- */

static int policy_of(const char *on, const char *interval, ag_redeploy_policy *p, char *err,
                     size_t errlen)
{
    ag_tags t = {.n = 0};
    if (on)
        t.items[t.n++] = (ag_tag){es_strdup(AG_REDEPLOY_TAG), es_strdup(on)};
    if (interval)
        t.items[t.n++] = (ag_tag){es_strdup(AG_REDEPLOY_INTERVAL_TAG), es_strdup(interval)};
    int r = ag_redeploy_policy_read(&t, p, err, errlen);
    ag_tags_clear(&t);
    return r;
}

Test(redeploy, policy_from_tags)
{
    ag_redeploy_policy p;
    char err[256] = "";
    cr_assert_eq(policy_of(NULL, NULL, &p, err, sizeof err), 0);
    cr_assert_not(p.enabled, "untagged: off");
    cr_assert_eq(p.min_interval_s, AG_REDEPLOY_INTERVAL_DEFAULT);
    cr_assert_eq(policy_of("true", NULL, &p, err, sizeof err), 0);
    cr_assert(p.enabled);
    cr_assert_eq(p.min_interval_s, 300, "the default interval");
    cr_assert_eq(policy_of("false", "5", &p, err, sizeof err), 0);
    cr_assert_not(p.enabled);
    cr_assert_eq(p.min_interval_s, 5);
    cr_assert_eq(policy_of("true", "0", &p, err, sizeof err), 0);
    cr_assert_eq(p.min_interval_s, 0);
    cr_assert_eq(policy_of("true", "31622400", &p, err, sizeof err), 0, "the maximum");

    static const char *const bad_on[] = {"TRUE", "yes", "1", "", " true"};
    for (size_t i = 0; i < sizeof bad_on / sizeof *bad_on; i++) {
        cr_assert_eq(policy_of(bad_on[i], NULL, &p, err, sizeof err), -EINVAL, "'%s'", bad_on[i]);
        cr_assert_str_eq(err, "tags: ecs-secrets:redeploy-on-rotation: must be true or false");
        cr_assert_not(p.enabled, "a refusal leaves it off");
    }
    static const char *const bad_iv[] = {"",   "-1",       "5s",          "1.5",
                                         " 5", "31622401", "99999999999", "0x10"};
    for (size_t i = 0; i < sizeof bad_iv / sizeof *bad_iv; i++) {
        cr_assert_eq(policy_of("true", bad_iv[i], &p, err, sizeof err), -EINVAL, "'%s'", bad_iv[i]);
        cr_assert(strstr(err, "tags: ecs-secrets:redeploy-min-interval: must be a whole number"),
                  "%s", err);
        cr_assert_not(p.enabled);
    }
}

/* ---- the decision, on a test clock ---- */

#define T0 1700000000

static ag_redeploy_in tagged(int stale, ag_rollout rollout, int64_t last_at, int64_t now)
{
    return (ag_redeploy_in){.policy = {.enabled = true, .min_interval_s = 5},
                            .status = AG_SVC_ACTIVE,
                            .primary_rollout = rollout,
                            .stale_tasks = stale,
                            .last_at = last_at,
                            .now = now};
}

Test(redeploy, decision)
{
    int64_t wait = -1;
    ag_redeploy_in in = tagged(2, AG_ROLLOUT_COMPLETED, 0, T0);
    cr_assert_eq(ag_redeploy_decide(&in, &wait), AG_REDEPLOY_GO, "the first comes at once");
    cr_assert_eq(wait, 0);

    in.policy.enabled = false;
    cr_assert_eq(ag_redeploy_decide(&in, NULL), AG_REDEPLOY_OFF, "untagged");

    in = tagged(0, AG_ROLLOUT_COMPLETED, 0, T0);
    cr_assert_eq(ag_redeploy_decide(&in, NULL), AG_REDEPLOY_NOTHING_STALE);
    in = tagged(1, AG_ROLLOUT_COMPLETED, 0, T0);
    cr_assert_eq(ag_redeploy_decide(&in, NULL), AG_REDEPLOY_GO, "one stale task is enough");

    in = tagged(2, AG_ROLLOUT_IN_PROGRESS, 0, T0);
    cr_assert_eq(ag_redeploy_decide(&in, NULL), AG_REDEPLOY_IN_PROGRESS);
    in = tagged(2, AG_ROLLOUT_FAILED, 0, T0);
    cr_assert_eq(ag_redeploy_decide(&in, NULL), AG_REDEPLOY_FAILED);

    in = tagged(2, AG_ROLLOUT_COMPLETED, 0, T0);
    in.status = AG_SVC_DRAINING;
    cr_assert_eq(ag_redeploy_decide(&in, NULL), AG_REDEPLOY_NOT_ACTIVE);
}

Test(redeploy, min_interval_both_sides)
{
    int64_t wait = -1;
    /* deployed at T0, interval 5: T0+4 is too soon (1 s left), T0+5 goes */
    ag_redeploy_in in = tagged(2, AG_ROLLOUT_COMPLETED, T0, T0 + 4);
    cr_assert_eq(ag_redeploy_decide(&in, &wait), AG_REDEPLOY_TOO_SOON);
    cr_assert_eq(wait, 1);
    in.now = T0;
    cr_assert_eq(ag_redeploy_decide(&in, &wait), AG_REDEPLOY_TOO_SOON);
    cr_assert_eq(wait, 5);
    in.now = T0 + 5;
    cr_assert_eq(ag_redeploy_decide(&in, &wait), AG_REDEPLOY_GO);
    cr_assert_eq(wait, 0);
    /* an IN_PROGRESS rollout is said before the interval */
    in = tagged(2, AG_ROLLOUT_IN_PROGRESS, T0, T0 + 1);
    cr_assert_eq(ag_redeploy_decide(&in, &wait), AG_REDEPLOY_IN_PROGRESS);
    /* interval 0: every completed rollout may be followed at once */
    in = tagged(2, AG_ROLLOUT_COMPLETED, T0, T0);
    in.policy.min_interval_s = 0;
    cr_assert_eq(ag_redeploy_decide(&in, NULL), AG_REDEPLOY_GO);
    /* the default, 300 s */
    in = tagged(2, AG_ROLLOUT_COMPLETED, T0, T0 + 299);
    in.policy.min_interval_s = AG_REDEPLOY_INTERVAL_DEFAULT;
    cr_assert_eq(ag_redeploy_decide(&in, &wait), AG_REDEPLOY_TOO_SOON);
    cr_assert_eq(wait, 1);
    /* a clock set back does not hold it for ever */
    in = tagged(2, AG_ROLLOUT_COMPLETED, T0 + 3600, T0);
    cr_assert_eq(ag_redeploy_decide(&in, NULL), AG_REDEPLOY_GO);
    cr_assert_str_eq(ag_redeploy_verdict_name(AG_REDEPLOY_TOO_SOON), "TOO_SOON");
}
