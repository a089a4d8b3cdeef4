/* td_expand.h - expansion labels (issue 21): the dockerLabels
 *
 *   ecs-secrets.expand.<PREFIX> = <valueFrom>
 *
 * of a container definition, read once at registration into typed
 * ag_secret_expand records (ag_container_def.expands). The valueFrom is
 * parsed by agent/secrets/valuefrom.h, as secrets[] are:
 *
 *   a Secrets Manager secret (a name, or an ARN, optionally with
 *   "::version-stage:version-id" as in secrets[]; the json-key part must be
 *   empty): every top-level key of its JSON object becomes <PREFIX><key>;
 *
 *   an SSM path ending in '/' ("/app/prod/", or
 *   "arn:aws:ssm:REGION:ACCOUNT:parameter/app/prod/"): every parameter under
 *   it, recursively (GetParametersByPath), becomes <PREFIX> + its name
 *   relative to the path with every '/' turned into '_'
 *   ("/app/prod/db/user" under "/app/prod/" with PREFIX "APP_" gives
 *   "APP_db_user").
 *
 * PREFIX is empty or [A-Za-z_][A-Za-z0-9_]*. What the names become is only
 * known at launch (agent/secrets/expand.h checks them there).
 *
 * Refusals are ClientExceptions naming the label:
 *   containerDefinitions[0].dockerLabels["ecs-secrets.expand.DB_"]: ...
 * Pure: no I/O, no logging. Private to agent/tasks/ and its readers. */
#ifndef AG_TD_EXPAND_H
#define AG_TD_EXPAND_H

#include <stdbool.h>
#include <stddef.h>

struct ag_td_error;
struct ag_td_ctx;
struct ag_container_def;

#define AG_EXPAND_LABEL_PREFIX "ecs-secrets.expand."
#define AG_EXPAND_LABELS_MAX 10  /* expansion labels of one container */
#define AG_EXPAND_PREFIX_MAX 128 /* PREFIX */
#define AG_EXPAND_MAX 100        /* variables one label may give */

/* One expansion: ref.name is the label's key ("ecs-secrets.expand.DB_"),
 * ref.value_from its value, ref.vf the parsed reference: AG_VF_SECRETSMANAGER
 * (json_key NULL) for a secret; AG_VF_SSM for a path, ssm_name the path
 * without its trailing '/' ("/app/prod"). */
typedef struct ag_secret_expand {
    char *prefix;
    bool ssm_path;
    struct ag_secret_ref *ref; /* one allocated ag_secret_ref (taskdef.h) */
} ag_secret_expand;

/* Reads c's expansion labels (c->docker_labels already parsed) into
 * c->expands. prefix is the container's field path
 * ("containerDefinitions[0]"); ctx as ag_taskdef_parse's (region for bare
 * names, the account an SSM ARN must be in). 0, -EINVAL (e filled),
 * -ENOMEM. */
int ag_td_expand_parse(struct ag_container_def *c, const char *prefix, const struct ag_td_ctx *ctx,
                       struct ag_td_error *e);
void ag_td_expand_free(ag_secret_expand *x, size_t n);
/* Whether s is a valid PREFIX (empty or [A-Za-z_][A-Za-z0-9_]*, at most
 * AG_EXPAND_PREFIX_MAX). */
bool ag_td_expand_prefix_ok(const char *s);

#endif
