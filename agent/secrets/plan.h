/* plan.h - one task definition's secrets as one plan.
 *
 * Every reference a task's containers name (secrets[], logConfiguration's
 * secretOptions[], repositoryCredentials) becomes an item; the items point at
 * the distinct things to fetch, de-duplicated (the same parameter, or the same
 * secret version, named twice is fetched once) and grouped as the backends
 * take them: SSM names by region (aws/ssm.h batches them AW_SSM_NAMES_PER_CALL
 * a call), one GetSecretValue per distinct secret version.
 *
 * An expansion label (ecs-secrets.expand.<PREFIX>, td_expand.h) is an item
 * too (target AG_SECRET_ENV, expand set): a JSON secret is an ordinary
 * GetSecretValue fetch (shared with secrets[] naming the same version); an
 * SSM path is a fetch of its own (ssm_path: GetParametersByPath's page
 * series, one per distinct region and path).
 *
 * A container's environmentFiles (td_envfiles.h) are the plan's too: one
 * envfile per (container, file), pointing at the distinct S3 objects to
 * read (the same object ARN named by two containers is read once), which
 * the preflight checks (s3:GetObject, s3:GetBucketLocation) and the
 * resolver fetches with the same execution role's credentials.
 *
 * A container whose image is ECR's (ecr.h) and that names no
 * repositoryCredentials is pulled with an ECR token (ag_secret_plan_ecr): one
 * ecr entry per such container, pointing at the distinct registries (host,
 * account, region) whose GetAuthorizationToken the resolver asks with the
 * execution role, and whose repositories the preflight checks
 * (ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer).
 *
 * The plan is built once per launch from the references as registration
 * parsed them (taskdef.h's ag_secret_ref.vf: nothing is parsed here), and it
 * is what the execution role's preflight checks (preflight.h) and what the
 * resolver fetches (resolve.h). Pure data: no I/O, no logging; it borrows the
 * task definition, which must outlive it. */
#ifndef AG_SECRETS_PLAN_H
#define AG_SECRETS_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/tasks/task.h"
#include "agent/secrets/ecr.h"
#include "agent/secrets/envfile.h"
#include "agent/tasks/taskdef.h"

#define AG_PLAN_ITEMS_MAX 1000 /* 10 containers x (100 secrets + 50 options) */
#define AG_PLAN_ENVFILES_MAX (AG_TD_CONTAINERS_MAX * AG_ENVFILES_MAX)

typedef struct ag_plan_item {
    size_t container; /* index into the task definition's containers */
    ag_secret_target target;
    const ag_secret_ref *ref;       /* borrowed from the task definition */
    size_t fetch;                   /* index into the plan's fetches */
    const ag_secret_expand *expand; /* an expansion label's item, else NULL (borrowed) */
} ag_plan_item;

typedef struct ag_plan_fetch {
    bool ssm;               /* ssm:GetParameters, else secretsmanager:GetSecretValue */
    bool ssm_path;          /* ssm:GetParametersByPath of ssm_request (ssm is set too) */
    const ag_valuefrom *vf; /* the first item's reference (borrowed) */
    const char *region;     /* the reference's region, else the task's (borrowed) */
    char *ssm_request;      /* SSM: the name as asked, ":selector" included (a path:
                               without its trailing '/'); NULL else */
    const char *secret_id;  /* Secrets Manager: SecretId (borrowed from vf) */
    const char *stage;      /* VersionStage or NULL */
    const char *version_id; /* VersionId or NULL */
} ag_plan_fetch;

/* The SSM fetches of one region, asked together. */
typedef struct ag_plan_ssm_group {
    const char *region; /* borrowed */
    size_t *fetches;    /* indexes into the plan's fetches */
    size_t n;
} ag_plan_ssm_group;

/* One of a container's environmentFiles. */
typedef struct ag_plan_envfile {
    size_t container; /* index into the task definition's containers */
    size_t file;      /* index into that container's env_files */
    size_t object;    /* index into the plan's objects */
} ag_plan_envfile;

/* A container's image pulled from ECR with a token. */
typedef struct ag_plan_ecr {
    size_t container; /* index into the task definition's containers */
    ag_ecr_image image;
    size_t registry; /* index into the plan's ecr_registries */
} ag_plan_ecr;

typedef struct ag_secret_plan {
    ag_plan_item *items;
    size_t n_items;
    ag_plan_fetch *fetches;
    size_t n_fetches;
    ag_plan_ssm_group *ssm_groups;
    size_t n_ssm_groups;
    size_t *sm_fetches; /* the Secrets Manager fetches, one call each */
    size_t n_sm;
    size_t *path_fetches; /* the SSM paths, one page series each */
    size_t n_paths;
    ag_plan_envfile *envfiles; /* in container order, each container's in its order */
    size_t n_envfiles;
    const ag_env_file **objects; /* the distinct S3 objects (borrowed: the first
                                    file naming each), one GetObject each */
    size_t n_objects;
    ag_plan_ecr *ecr; /* ag_secret_plan_ecr's, in container order */
    size_t n_ecr;
    size_t *ecr_registries; /* per distinct registry, the index of its first ecr entry */
    size_t n_ecr_registries;
} ag_secret_plan;

/* Builds td's plan; task_region fills bare names' region when registration
 * had none. 0; -EINVAL with err set (more than AG_PLAN_ITEMS_MAX references,
 * or a reference that registration did not parse); -ENOMEM. */
int ag_secret_plan_build(const ag_taskdef *td, const char *task_region, ag_secret_plan **out,
                         char *err, size_t errlen);
/* NULL-safe. */
void ag_secret_plan_free(ag_secret_plan *p);
/* Adds to p the containers of td whose image is ECR's (local: the embedded
 * mode's local registry, or NULL) and that have no repositoryCredentials
 * (those are pulled with their own credentials); with local->only, the
 * local registry's images alone. 0; -EINVAL with err set
 * (an ECR-looking image that breaks ECR's rules: ecr.h); -ENOMEM. */
int ag_secret_plan_ecr(ag_secret_plan *p, const ag_taskdef *td, const ag_ecr_local *local,
                       char *err, size_t errlen);

/* The reference of td that a task's secret metadata names: container's
 * secrets[] (AG_SECRET_ENV) or secretOptions[] (AG_SECRET_LOG) entry called
 * name, or its repositoryCredentials (AG_SECRET_REGISTRY). An expansion's
 * entry is AG_SECRET_ENV named by its label's key
 * ("ecs-secrets.expand.DB_"), which no secrets[] name can be. NULL if none. */
const ag_secret_ref *ag_secret_ref_find(const ag_taskdef *td, const char *container,
                                        ag_secret_target target, const char *name);
/* The expansion of td's container whose label's key is name, or NULL. */
const ag_secret_expand *ag_secret_expand_find(const ag_taskdef *td, const char *container,
                                              const char *name);

#endif
