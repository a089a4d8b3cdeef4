#include "aws/endpoint.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *signing;
    const char *prefix;
    const char *env;
} svc[AW_SVC_COUNT] = {
    [AW_SVC_SSM] = {"ssm", "AmazonSSM", "AWS_ENDPOINT_URL_SSM"},
    [AW_SVC_SECRETSMANAGER] = {"secretsmanager", "secretsmanager",
                               "AWS_ENDPOINT_URL_SECRETS_MANAGER"},
    [AW_SVC_KMS] = {"kms", "TrentService", "AWS_ENDPOINT_URL_KMS"},
    [AW_SVC_STS] = {"sts", NULL, "AWS_ENDPOINT_URL_STS"},
    [AW_SVC_IAM] = {"iam", NULL, "AWS_ENDPOINT_URL_IAM"},
    [AW_SVC_ECS] = {"ecs", "AmazonEC2ContainerServiceV20141113", "AWS_ENDPOINT_URL_ECS"},
    [AW_SVC_S3] = {"s3", NULL, "AWS_ENDPOINT_URL_S3"},
    [AW_SVC_ECR] = {"ecr", "AmazonEC2ContainerRegistry_V20150921", "AWS_ENDPOINT_URL_ECR"},
};

const char *aw_service_signing_name(aw_service s)
{
    return (unsigned)s < AW_SVC_COUNT ? svc[s].signing : NULL;
}

const char *aw_service_target_prefix(aw_service s)
{
    return (unsigned)s < AW_SVC_COUNT ? svc[s].prefix : NULL;
}

int aw_region_valid(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > AW_REGION_MAX || r[0] == '-' || r[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return 0;
    return 1;
}

static const char *env_get(char *const *envp, const char *key)
{
    if (!envp)
        return getenv(key);
    size_t kl = strlen(key);
    for (; *envp; envp++)
        if (strncmp(*envp, key, kl) == 0 && (*envp)[kl] == '=')
            return *envp + kl + 1;
    return NULL;
}

static int set_url(aw_endpoint *out, const char *url)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return -EINVAL;
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    if (n > AW_ENDPOINT_URL_MAX)
        return -EMSGSIZE;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f || url[i] == '?' || url[i] == '#')
            return -EINVAL;
    memcpy(out->url, url, n);
    out->url[n] = '\0';
    return 0;
}

int aw_endpoint_resolve(aw_service s, const char *region, const char *override, char *const *envp,
                        aw_endpoint *out)
{
    if ((unsigned)s >= AW_SVC_COUNT || !out || !aw_region_valid(region))
        return -EINVAL;
    aw_endpoint e;
    memset(&e, 0, sizeof e);
    e.signing_name = svc[s].signing;
    bool cn = strncmp(region, "cn-", 3) == 0, gov = strncmp(region, "us-gov-", 7) == 0;
    const char *sr = region;
    if (s == AW_SVC_IAM)
        sr = cn ? "cn-north-1" : gov ? "us-gov-west-1" : "us-east-1";
    snprintf(e.signing_region, sizeof e.signing_region, "%s", sr);
    const char *url = override && *override ? override : env_get(envp, svc[s].env);
    if (!url || !*url)
        url = env_get(envp, "AWS_ENDPOINT_URL");
    int rc;
    if (url && *url) {
        if ((rc = set_url(&e, url)) < 0)
            return rc;
    } else if (s == AW_SVC_IAM) {
        snprintf(e.url, sizeof e.url, "%s",
                 cn    ? "https://iam.cn-north-1.amazonaws.com.cn"
                 : gov ? "https://iam.us-gov.amazonaws.com"
                       : "https://iam.amazonaws.com");
    } else {
        /* ECR's API host is api.ecr.REGION (ecr.REGION is not served) */
        snprintf(e.url, sizeof e.url, "https://%s%s.%s.amazonaws.com%s",
                 s == AW_SVC_ECR ? "api." : "", svc[s].signing, region, cn ? ".cn" : "");
    }
    *out = e;
    return 0;
}
