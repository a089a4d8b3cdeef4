/* roles.h - may this caller of the agent's Docker socket name this
 * execution role? (ECS_SECRETS_DOCKER_ROLES, config/docker_roles.h)
 *
 * Root (uid 0) may name any role. Anyone else may name a role that a role
 * pattern of an entry for its uid or one of its groups matches; failing
 * that, an entry mapping it to a user of the embedded IAM lets that user's
 * iam:PassRole decide (with iam:PassedToService ecs-tasks.amazonaws.com),
 * asked of the evaluator the ECS API asks (al_principal_may). Otherwise
 * refused, with the reason. No logging here: the caller logs. */
#ifndef AG_INTAKE_ROLES_H
#define AG_INTAKE_ROLES_H

#include <stddef.h>
#include <sys/types.h>

#include "aws/local/local.h"
#include "config/docker_roles.h"

#define AG_INTAKE_GROUPS_MAX 64 /* groups of one caller looked at */
#define AG_INTAKE_WHY_MAX 1024

typedef struct ag_intake_caller {
    uid_t uid;
    const gid_t *gids; /* its primary group first, then the others */
    size_t ngids;
} ag_intake_caller;

/* 0 allowed; -EACCES refused (why says why, naming the caller and the
 * role); another -errno when the embedded IAM could not decide. iam is the
 * embedded IAM, NULL in aws mode (user entries then never allow). */
int ag_intake_may_pass(const cf_docker_rule *rules, size_t n, al_ctx *iam,
                       const ag_intake_caller *who, const char *role, char *why, size_t whylen);

/* The caller's groups: gid first, then the supplementary groups of uid's
 * user as the system's group database lists them. Returns how many were put
 * in out (at least 1). */
size_t ag_intake_groups(uid_t uid, gid_t gid, gid_t *out, size_t cap);

#endif
