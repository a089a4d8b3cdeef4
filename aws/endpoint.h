/* endpoint.h - which URL, signing name and signing region a service call
 * goes to.
 *
 * Order: the configured override (config keys ECS_SECRETS_ENDPOINT_SSM, ...,
 * passed in by the caller), then AWS_ENDPOINT_URL_<SERVICE> (SSM,
 * SECRETS_MANAGER, KMS, STS, IAM, ECS, S3, ECR), then AWS_ENDPOINT_URL, then the
 * public endpoint of the region's partition (aws: amazonaws.com, aws-cn:
 * amazonaws.com.cn, aws-us-gov; ECR's API is api.ecr.REGION.DNS, not
 * ecr.REGION.DNS). IAM is global: it is signed for us-east-1
 * (cn-north-1, us-gov-west-1 in the other partitions). */
#ifndef ES_AWS_ENDPOINT_H
#define ES_AWS_ENDPOINT_H

#include "common/buf.h"

typedef enum aw_service {
    AW_SVC_SSM,
    AW_SVC_SECRETSMANAGER,
    AW_SVC_KMS,
    AW_SVC_STS,
    AW_SVC_IAM,
    AW_SVC_ECS,
    AW_SVC_S3,  /* REST (aw_call.method / path), path-style */
    AW_SVC_ECR, /* JSON 1.1, signed "ecr", reached at api.ecr.REGION.DNS */
    AW_SVC_COUNT
} aw_service;

#define AW_ENDPOINT_URL_MAX 2048
#define AW_REGION_MAX 63

/* "ssm", "secretsmanager", "kms", "sts", "iam", "ecs" */
const char *aw_service_signing_name(aw_service s);
/* "AmazonSSM", "secretsmanager", "TrentService", "AmazonEC2ContainerServiceV20141113";
 * NULL for the query services (STS, IAM). */
const char *aw_service_target_prefix(aw_service s);

typedef struct aw_endpoint {
    char url[AW_ENDPOINT_URL_MAX + 1]; /* no trailing '/' */
    char signing_region[AW_REGION_MAX + 1];
    const char *signing_name;
} aw_endpoint;

/* A region is [a-z0-9-], 1..AW_REGION_MAX, no leading/trailing '-'. */
int aw_region_valid(const char *region);

/* envp: "KEY=VALUE" strings ending with NULL, or NULL for the process
 * environment. 0, -EINVAL (bad region or override URL: not http(s)://),
 * -EMSGSIZE (URL past AW_ENDPOINT_URL_MAX). An override may carry a path
 * (requests go to, and are signed for, PATH/); not a query or fragment. */
int aw_endpoint_resolve(aw_service s, const char *region, const char *override, char *const *envp,
                        aw_endpoint *out);

#endif
