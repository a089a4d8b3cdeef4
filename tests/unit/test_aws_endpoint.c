#include <criterion/criterion.h>

#include "aws_fake.h"

#include <errno.h>

#include "aws/endpoint.h"

TestSuite(endpoint, .fini = expect_no_leaks);

Test(endpoint, defaults_per_partition)
{
    aw_endpoint e;
    char *env[] = {NULL};
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_SSM, "eu-west-3", NULL, env, &e), 0);
    cr_expect_str_eq(e.url, "https://ssm.eu-west-3.amazonaws.com");
    cr_expect_str_eq(e.signing_region, "eu-west-3");
    cr_expect_str_eq(e.signing_name, "ssm");
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_SECRETSMANAGER, "cn-north-1", NULL, env, &e), 0);
    cr_expect_str_eq(e.url, "https://secretsmanager.cn-north-1.amazonaws.com.cn");
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_IAM, "eu-west-3", NULL, env, &e), 0);
    cr_expect_str_eq(e.url, "https://iam.amazonaws.com");
    cr_expect_str_eq(e.signing_region, "us-east-1");
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_IAM, "us-gov-east-1", NULL, env, &e), 0);
    cr_expect_str_eq(e.signing_region, "us-gov-west-1");
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_STS, "us-gov-east-1", NULL, env, &e), 0);
    cr_expect_str_eq(e.url, "https://sts.us-gov-east-1.amazonaws.com");
    cr_expect_str_eq(aw_service_target_prefix(AW_SVC_KMS), "TrentService");
    cr_expect_null(aw_service_target_prefix(AW_SVC_STS));
}

Test(endpoint, overrides_in_order)
{
    aw_endpoint e;
    char *env[] = {"AWS_ENDPOINT_URL=http://127.0.0.1:1/",
                   "AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:2", NULL};
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_SSM, "us-east-1", NULL, env, &e), 0);
    cr_expect_str_eq(e.url, "http://127.0.0.1:1");
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_SECRETSMANAGER, "us-east-1", NULL, env, &e), 0);
    cr_expect_str_eq(e.url, "http://127.0.0.1:2");
    cr_assert_eq(
        aw_endpoint_resolve(AW_SVC_SECRETSMANAGER, "us-east-1", "https://sm.local:8443", env, &e),
        0);
    cr_expect_str_eq(e.url, "https://sm.local:8443");
    cr_expect_eq(aw_endpoint_resolve(AW_SVC_SSM, "us-east-1", "ftp://x", env, &e), -EINVAL);
    cr_expect_eq(aw_endpoint_resolve(AW_SVC_SSM, "us-east-1", "http://a b", env, &e), -EINVAL);
    cr_expect_eq(aw_endpoint_resolve(AW_SVC_SSM, "us-east-1", "http://a/?x", env, &e), -EINVAL);
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_SSM, "us-east-1", "http://a/p/", env, &e), 0);
    cr_expect_str_eq(e.url, "http://a/p");
    cr_expect_eq(aw_endpoint_resolve(AW_SVC_SSM, "US-EAST-1", NULL, env, &e), -EINVAL);
    cr_expect_eq(aw_endpoint_resolve(AW_SVC_SSM, "", NULL, env, &e), -EINVAL);
    cr_expect_eq(aw_endpoint_resolve(AW_SVC_SSM, "us-east-1/../x", NULL, env, &e), -EINVAL);
}
