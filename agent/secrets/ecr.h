/* ecr.h - which images are ECR's, and what an ECR pull needs (issue 20).
 *
 * ECS pulls an image named ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG]
 * [@DIGEST] with the token of ecr:GetAuthorizationToken asked with the
 * task's execution role; the role needs that action on "*" and
 * ecr:BatchGetImage / ecr:GetDownloadUrlForLayer on the repository
 * (arn:PARTITION:ecr:REGION:ACCOUNT:repository/REPO), as the managed
 * AmazonECSTaskExecutionRolePolicy grants.
 *
 * In embedded mode a configured local registry ("host:port",
 * ECS_SECRETS_ECR_REGISTRY) stands for the embedded account's ECR host in
 * the embedded region: an image on that host is that account's repository.
 *
 * Pure: no I/O, no allocation. The image name is the task definition's,
 * i.e. outside input: every part is checked against ECR's rules and
 * bounded. */
#ifndef AG_SECRETS_ECR_H
#define AG_SECRETS_ECR_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/endpoint.h"
#include "aws/region.h"

#define AG_ECR_HOST_MAX 253 /* a DNS name (":port" included for the local host) */
#define AG_ECR_REPO_MIN 2   /* ECR's repositoryName: 2..256 characters */
#define AG_ECR_REPO_MAX 256
#define AG_ECR_TAG_MAX 128    /* Docker's tag rule: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
#define AG_ECR_DIGEST_MAX 256 /* ALGORITHM:HEX */
#define AG_ECR_ACCOUNT_LEN 12
#define AG_ECR_ARN_MAX (AG_ECR_REPO_MAX + AW_REGION_MAX + AW_PARTITION_MAX + 64)

/* The local registry that stands for an account's ECR host (embedded
 * mode), or all NULL. */
typedef struct ag_ecr_local {
    const char *host;    /* "127.0.0.1:5000", compared case-insensitively */
    const char *account; /* the embedded account, 12 digits */
    const char *region;  /* the embedded region */
    /* embedded mode: only the local registry is ECR's; images on AWS's ECR
     * hosts are out of the embedded ECR's reach and pulled as any other
     * registry's (ag_secret_plan_ecr skips them) */
    bool only;
} ag_ecr_local;

typedef struct ag_ecr_image {
    char host[AG_ECR_HOST_MAX + 1]; /* the registry, X-Registry-Auth's serveraddress */
    char account[AG_ECR_ACCOUNT_LEN + 1];
    char region[AW_REGION_MAX + 1];
    char partition[AW_PARTITION_MAX + 1];
    char repo[AG_ECR_REPO_MAX + 1];
    bool local; /* the configured local registry */
} ag_ecr_image;

/* Reads image: 1 an ECR image (out filled), 0 not one (another registry,
 * Docker Hub: out untouched), -EINVAL with err set when the host is an ECR
 * host (or the local one) and the rest breaks ECR's rules (account not 12
 * digits, an unknown region, a repository, tag or digest out of their
 * grammar or bounds). local may be NULL. */
int ag_ecr_image_parse(const char *image, const ag_ecr_local *local, ag_ecr_image *out, char *err,
                       size_t errlen);

/* arn:PARTITION:ecr:REGION:ACCOUNT:repository/REPO. 0 or -EMSGSIZE. */
int ag_ecr_repository_arn(const ag_ecr_image *img, char *out, size_t outlen);

#endif
