/* Fuzzes the ECS tag readers and the redeploy-on-rotation policy (issue 21):
 * the input is a JSON document read as a `tags` list (ag_tags_read) and as a
 * tagKeys list (ag_tag_keys_check). Any input is refused with -EINVAL and
 * nothing kept, or read into at most AG_TAGS_MAX tags that each pass the
 * key and value rules, with unique, unreserved keys; the policy read from
 * them is off or on with an interval within its bounds; merging them into
 * themselves changes nothing. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/services/redeploy.h"
#include "agent/tasks/tags.h"
#include "common/json.h"

static void check_read(const ag_tags *t)
{
    if (t->n > AG_TAGS_MAX)
        abort();
    for (size_t i = 0; i < t->n; i++) {
        if (!ag_tag_key_ok(t->items[i].key) || ag_tag_key_reserved(t->items[i].key) ||
            !ag_tag_value_ok(t->items[i].value))
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->items[i].key, t->items[j].key) == 0)
                abort();
    }
    ag_redeploy_policy p;
    char err[256];
    int r = ag_redeploy_policy_read(t, &p, err, sizeof err);
    if (r != 0 && (r != -EINVAL || p.enabled))
        abort();
    if (p.min_interval_s < 0 || p.min_interval_s > AG_REDEPLOY_INTERVAL_MAX)
        abort();
    ag_tags again = {.n = 0};
    if (ag_tags_copy(&again, t) != 0 || ag_tags_merge(&again, t, err, sizeof err) != 0 ||
        again.n != t->n)
        abort();
    ag_tags_clear(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    es_json *j = NULL;
    char why[128];
    if (es_json_parse((const char *)data, size, &es_json_default_limits, &j, why, sizeof why) != 0)
        return 0;
    ag_tags t = {.n = 0};
    char err[AG_TAGS_ERR_MAX];
    int r = ag_tags_read(j, "tags", &t, err, sizeof err);
    if (r != 0 && (r != -EINVAL || t.n != 0))
        abort();
    if (r == 0)
        check_read(&t);
    r = ag_tag_keys_check(j, "tagKeys", err, sizeof err);
    if (r != 0 && r != -EINVAL)
        abort();
    if (r == 0)
        ag_tags_remove(&t, j);
    ag_tags_clear(&t);
    es_json_free(j);
    return 0;
}
