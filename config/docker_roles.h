/* docker_roles.h - ECS_SECRETS_DOCKER_ROLES: which callers of the agent's
 * Docker socket may name which execution role (issue 19).
 *
 *   ECS_SECRETS_DOCKER_ROLES="uid:1000=arn:aws:iam::123456789012:role/app-*;
 *                             gid:2000=arn:aws:iam::123456789012:role/ci-?,
 *                                      arn:aws:iam::123456789012:role/build;
 *                             uid:1001=arn:aws:iam::123456789012:user/alice"
 *
 * Entries are separated by ';', each "uid:N=" or "gid:N=" (a number) and a
 * ','-separated list of ARNs (spaces around the separators are ignored):
 *   - a role ARN pattern  arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME, where
 *     '*' matches any run of characters (also '/') and '?' one, as IAM's
 *     ARN matching does: the caller may name every role it matches;
 *   - an IAM user ARN     arn:PARTITION:iam::ACCOUNT:user/[PATH/]NAME (no
 *     wildcards; embedded mode only): the caller acts as that user of the
 *     embedded IAM, and the user's iam:PassRole (with iam:PassedToService
 *     ecs-tasks.amazonaws.com) decides, as for the ECS API.
 * Root (uid 0) may name any role whatever this says; anyone else nothing
 * unless an entry of its uid, or of its group (primary or supplementary),
 * grants it. Pure parsing: no I/O, no logging. */
#ifndef ES_CONFIG_DOCKER_ROLES_H
#define ES_CONFIG_DOCKER_ROLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_DOCKER_RULES_MAX 256 /* ARNs in the whole value */
#define CF_DOCKER_RULE_ARN_MAX 2048
#define CF_DOCKER_ID_MAX 4294967294UL /* (uid_t)-1 means "no id" */

typedef struct cf_docker_rule {
    bool gid;       /* the entry names a group; else a user id */
    uint32_t id;    /* the uid or gid */
    bool principal; /* arn is an IAM user of the embedded IAM, not a role pattern */
    char *arn;      /* the role pattern or the user's ARN */
} cf_docker_rule;

/* Parses v (the key's value). embedded: whether user entries are allowed.
 * 0 with *out (free with cf_docker_rules_free) and *n (0 and NULL for an
 * empty value); -EINVAL with a reason in err naming the entry; -ENOMEM. */
int cf_docker_roles_parse(const char *v, bool embedded, cf_docker_rule **out, size_t *n, char *err,
                          size_t errlen);
void cf_docker_rules_free(cf_docker_rule *r, size_t n);

#endif
