/* labels.h - what a container's ecs-secrets.* labels ask for, as a one-
 * container task definition (issue 19, the Docker-socket intake).
 *
 * A ContainerCreate that reaches the agent's Docker socket may carry:
 *   ecs-secrets.secret.<ENV>=<valueFrom>          a variable from a secret
 *   ecs-secrets.log-secret.<option>=<valueFrom>   a log driver option
 *   ecs-secrets.expand.<PREFIX>=<secret or /path/> many variables from one
 *                                                  reference (td_expand.h)
 *   ecs-secrets.file.<ENV>=<path>[:mode[:uid[:gid]]] that secret as a read-only
 *                                                  file, not a variable (td_files.h;
 *                                                  frozen only: a refreshed file's
 *                                                  directory is its task's, and a
 *                                                  socket container outlives its task)
 *   ecs-secrets.execution-role=<role ARN>          who reads them
 * or
 *   ecs-secrets.task-definition=<family[:revision]>
 *   ecs-secrets.container=<name>
 * which take the role, secrets, secretOptions and log configuration of a
 * registered task definition's container.
 *
 * Either way the result is a task definition with one container, made by the
 * task-definition parser itself (ag_taskdef_parse), so that every valueFrom
 * is held to the rules RegisterTaskDefinition applies (account, region,
 * selectors, json-key) and the secret plan, preflight and resolution are the
 * ones a task gets. Pure: no I/O, no logging; errors name labels, never a
 * value (labels hold references only). */
#ifndef AG_INTAKE_LABELS_H
#define AG_INTAKE_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/tasks/engine.h"
#include "agent/tasks/td_expand.h"
#include "agent/tasks/taskdef.h"
#include "common/json.h"

#define AG_INTAKE_PREFIX "ecs-secrets."
#define AG_INTAKE_LABEL_KEY_MAX 512    /* one ecs-secrets.* label's key */
#define AG_INTAKE_LABEL_VALUE_MAX 2048 /* one ecs-secrets.* label's value (an ARN, a valueFrom) */
#define AG_INTAKE_ERR_MAX 1024
/* the family and container of the one-container definition (the family
 * the engine reserves for the Docker socket's tasks: it is registered under
 * it, engine.h) */
#define AG_INTAKE_FAMILY AG_ENGINE_DOCKER_FAMILY
#define AG_INTAKE_CONTAINER "container"

/* A label's name part and value, borrowed from the parsed body. */
typedef struct ag_intake_ref {
    const char *name;
    const char *value_from;
} ag_intake_ref;

typedef struct ag_intake_req {
    const char *role;      /* ecs-secrets.execution-role */
    const char *td_ref;    /* ecs-secrets.task-definition */
    const char *container; /* ecs-secrets.container */
    ag_intake_ref env[AG_TD_SECRETS_MAX];
    size_t n_env;
    ag_intake_ref log[AG_TD_SECRET_OPTIONS_MAX];
    size_t n_log;
    /* ecs-secrets.expand.*: name is the whole label key (the prefix may be
     * empty), as a definition's dockerLabels hold it */
    ag_intake_ref expand[AG_EXPAND_LABELS_MAX];
    size_t n_expand;
    /* ecs-secrets.file.* and ecs-secrets.file-policy.* (whole keys, as
     * dockerLabels hold them): td_files.c reads them, frozen only here */
    ag_intake_ref files[2 * AG_TD_SECRETS_MAX];
    size_t n_files;
} ag_intake_req;

/* Reads the ecs-secrets.* members of labels (a Labels object, may be NULL).
 * 1: they ask for secrets, req filled (borrowing from labels); 0: there are
 * none; -EINVAL with err: an unknown ecs-secrets.* label, a value that is
 * not a string or is too long, a label given twice, a name too long, too
 * many secrets, labels of the two forms mixed, or a secret-file label
 * (ecs-secrets.file.*, ecs-secrets.file-policy.*: a file needs a mount and a
 * directory of the agent's that a client's create cannot be given). */
int ag_intake_read_labels(const es_json *labels, ag_intake_req *req, char *err, size_t errlen);

/* Splits "family[:revision]": family into fam (famlen bytes), *rev the
 * revision or 0 (the latest ACTIVE). 0 or -EINVAL. */
int ag_intake_td_ref(const char *ref, char *fam, size_t famlen, long long *rev);

/* The one-container task definition of req: from its labels (registered
 * NULL), or from registered's container req->container. ctx as for
 * RegisterTaskDefinition. 0 with *out, -EINVAL with err (a label or the
 * container named, never a value), -ENOMEM. */
int ag_intake_taskdef(const ag_intake_req *req, const ag_taskdef *registered, const ag_td_ctx *ctx,
                      ag_taskdef **out, char *err, size_t errlen);

#endif
