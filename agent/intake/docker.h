/* docker.h - launches through the agent's Docker socket get their secrets
 * (issue 19 part 2). The proxy (docker/proxy.h) hands every
 * containers/create to ag_intake_docker_on_create:
 *
 *   1. the body is parsed (docker/create_body.h) and its ecs-secrets.*
 *      labels read (labels.h); a create without them goes on untouched, byte
 *      for byte;
 *   2. the caller (SO_PEERCRED) must be allowed to name the execution role
 *      (roles.h), else 403;
 *   3. the labels become a one-container task definition through the
 *      task-definition parser, and the task's resolution runs on it
 *      (agent/secrets/resolve.h: plan, preflight, AssumeRole, fetch);
 *   4. the one-container definition is registered under the engine's
 *      reserved family (AG_ENGINE_DOCKER_FAMILY) and the container becomes
 *      a task of the engine (ag_engine_adopt: startedBy docker:<uid>, group
 *      compose:<project> from Compose's label, its secrets' metadata); the
 *      task's labels (com.amazonaws.ecs.task-arn, ...) are added, so that
 *      the engine's event watch follows the container Docker creates;
 *   5. the values go into Env (a secret overrides a variable of the same
 *      name) and HostConfig.LogConfig.Config, the rewritten body goes to
 *      dockerd, and every buffer that held a value is wiped. One audit line
 *      says who launched what with which role and which secret versions
 *      (ARN, version, fingerprint), never a value.
 *
 * A failure answers as dockerd does, {"message": ...}: 400 for labels that
 * cannot be read, 403 for a role the caller may not name or that lacks
 * permissions (the preflight's ECS-shaped reason, so `docker run` prints
 * "docker: Error response from daemon: ResourceInitializationError: ..."),
 * 500 when a secret could not be fetched. Nothing is created then. */
#ifndef AG_INTAKE_DOCKER_H
#define AG_INTAKE_DOCKER_H

#include <stddef.h>

#include "agent/secrets/resolve.h"
#include "agent/store/store.h"
#include "agent/tasks/engine.h"
#include "aws/local/local.h"
#include "config/docker_roles.h"
#include "docker/proxy.h"

#define AG_INTAKE_NAME_MAX 128   /* a container name as the audit line quotes it */
#define AG_INTAKE_AUDIT_MAX 3800 /* one audit line (the log's line is 4 KiB) */
#define AG_INTAKE_GROUP_MAX 255  /* a task's group, as ECS bounds it */
#define AG_INTAKE_COMPOSE_PROJECT "com.docker.compose.project"

typedef struct ag_intake_docker_config {
    ag_resolver *resolver; /* borrowed: the task's resolution */
    ag_store *store;       /* borrowed: registered task definitions */
    ag_engine *engine;     /* borrowed: each injected container becomes its task */
    al_ctx *iam;           /* embedded mode: user entries' PassRole; NULL in aws mode */
    const char *region;    /* the tasks' region and account (bare names, ARN checks) */
    const char *account;
    const char *roles; /* ECS_SECRETS_DOCKER_ROLES, NULL: root only */
} ag_intake_docker_config;

typedef struct ag_intake_docker_stats {
    unsigned long creates;  /* every create seen */
    unsigned long injected; /* forwarded with values */
    unsigned long refused;  /* answered with an error */
} ag_intake_docker_stats;

typedef struct ag_intake_docker ag_intake_docker;

/* Copies the configuration (borrowed parts must outlive it). 0, -EINVAL
 * (the roles do not parse: err says why), -ENOMEM. */
int ag_intake_docker_create(const ag_intake_docker_config *cfg, ag_intake_docker **out, char *err,
                            size_t errlen);
/* Frees x. Every create in flight must have ended: the proxy closed (its
 * calls cancelled) and the resolver closed (its resolutions ended). */
void ag_intake_docker_free(ag_intake_docker *x);
void ag_intake_docker_get_stats(const ag_intake_docker *x, ag_intake_docker_stats *out);

/* dk_proxy_options.on_create / on_cancel, with ud = the intake. */
void ag_intake_docker_on_create(void *ud, dk_proxy_call *call, const dk_proxy_create *req);
void ag_intake_docker_on_cancel(void *ud, dk_proxy_call *call);

#endif
