/* ARN parser: each recognised form, the three partitions, and bad input. */
#include <criterion/criterion.h>

#include "aws_fake.h"

#include <string.h>

#include "aws/arn.h"
#include "common/buf.h"

static aw_arn a;

static int P(const char *s)
{
    memset(&a, 0, sizeof a);
    return aw_arn_parse_str(s, &a);
}

TestSuite(arn, .fini = expect_no_leaks);

Test(arn, ssm_parameter)
{
    cr_assert_eq(P("arn:aws:ssm:us-east-1:123456789012:parameter/plain"), 0);
    cr_expect_eq(a.kind, AW_ARN_SSM_PARAMETER);
    cr_expect_str_eq(a.name, "plain");
    cr_expect_str_eq(a.partition, "aws");
    cr_expect_str_eq(a.region, "us-east-1");
    cr_expect_str_eq(a.account, "123456789012");
    cr_expect_str_eq(a.resource, "parameter/plain");
    cr_assert_eq(P("arn:aws-cn:ssm:cn-north-1:123456789012:parameter/app/prod/db-pass"), 0);
    cr_expect_str_eq(a.name, "/app/prod/db-pass");
    cr_expect_str_eq(a.partition, "aws-cn");
    cr_expect_str_eq(a.selector, "");
    cr_assert_eq(P("arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/a/b:3"), 0);
    cr_expect_str_eq(a.name, "/a/b");
    cr_expect_str_eq(a.selector, "3");
    cr_assert_eq(P("arn:aws:ssm:us-east-1:123456789012:parameter/a:label_1"), 0);
    cr_expect_str_eq(a.selector, "label_1");
}

Test(arn, secret_forms)
{
    cr_assert_eq(P("arn:aws:secretsmanager:us-east-1:123456789012:secret:db/pass-AbCdEf"), 0);
    cr_expect_eq(a.kind, AW_ARN_SECRET);
    cr_expect_str_eq(a.name, "db/pass-AbCdEf");
    cr_expect(a.name_has_suffix);
    cr_expect_str_eq(a.json_key, "");
    cr_assert_eq(P("arn:aws:secretsmanager:us-east-1:123456789012:secret:db"), 0);
    cr_expect_str_eq(a.name, "db");
    cr_expect(!a.name_has_suffix);
    cr_assert_eq(
        P("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:password:AWSPREVIOUS:"),
        0);
    cr_expect_str_eq(a.json_key, "password");
    cr_expect_str_eq(a.version_stage, "AWSPREVIOUS");
    cr_expect_str_eq(a.version_id, "");
    cr_assert_eq(P("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf::"
                   ":01234567-89ab-cdef-0123-456789abcdef"),
                 0);
    cr_expect_str_eq(a.json_key, "");
    cr_expect_str_eq(a.version_stage, "");
    cr_expect_str_eq(a.version_id, "01234567-89ab-cdef-0123-456789abcdef");
    cr_assert_eq(P("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:user"), 0);
    cr_expect_str_eq(a.json_key, "user");
    char id[256];
    cr_assert_eq(aw_arn_secret_id(&a, id, sizeof id), 0);
    cr_expect_str_eq(id, "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf");
    cr_expect_eq(aw_arn_secret_id(&a, id, 10), AW_ARN_E_TOO_LONG);
}

Test(arn, kms_and_iam)
{
    cr_assert_eq(P("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
                 0);
    cr_expect_eq(a.kind, AW_ARN_KMS_KEY);
    cr_expect_str_eq(a.name, "1234abcd-12ab-34cd-56ef-1234567890ab");
    cr_assert_eq(P("arn:aws:kms:us-east-1:123456789012:alias/aws/ssm"), 0);
    cr_expect_eq(a.kind, AW_ARN_KMS_ALIAS);
    cr_expect_str_eq(a.name, "alias/aws/ssm");
    cr_assert_eq(P("arn:aws:iam::123456789012:role/ecsTaskExecutionRole"), 0);
    cr_expect_eq(a.kind, AW_ARN_IAM_ROLE);
    cr_expect_str_eq(a.name, "ecsTaskExecutionRole");
    cr_expect_str_eq(a.path, "/");
    cr_assert_eq(P("arn:aws-us-gov:iam::123456789012:role/service-role/team/exec+role=1,2.@_-"), 0);
    cr_expect_str_eq(a.name, "exec+role=1,2.@_-");
    cr_expect_str_eq(a.path, "/service-role/team/");
    /* generic ARNs of other services still parse */
    cr_assert_eq(P("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"), 0);
    cr_expect_eq(a.kind, AW_ARN_OTHER);
    cr_expect_str_eq(a.resource, "task-definition/web:3");
    cr_assert_eq(P("arn:aws:iam::123456789012:user/alice"), 0);
    cr_expect_eq(a.kind, AW_ARN_OTHER);
    cr_assert_eq(P("arn:aws:s3:::bucket/key:with:colons"), 0);
    cr_expect_str_eq(a.resource, "bucket/key:with:colons");
}

Test(arn, bad_input)
{
    struct {
        const char *s;
        int rc;
    } bad[] = {
        {"", AW_ARN_E_SYNTAX},
        {"arn", AW_ARN_E_SYNTAX},
        {"arn:aws:ssm:us-east-1:123456789012", AW_ARN_E_SYNTAX},
        {"ARN:aws:ssm:us-east-1:123456789012:parameter/a", AW_ARN_E_SYNTAX},
        {"arn:aws-xx:ssm:us-east-1:123456789012:parameter/a", AW_ARN_E_PARTITION},
        {"arn::ssm:us-east-1:123456789012:parameter/a", AW_ARN_E_PARTITION},
        {"arn:aws::us-east-1:123456789012:parameter/a", AW_ARN_E_SERVICE},
        {"arn:aws:SSM:us-east-1:123456789012:parameter/a", AW_ARN_E_SERVICE},
        {"arn:aws:ssm:US-EAST-1:123456789012:parameter/a", AW_ARN_E_REGION},
        {"arn:aws:ssm:-us:123456789012:parameter/a", AW_ARN_E_REGION},
        {"arn:aws:ssm:us-east-1:12345678901:parameter/a", AW_ARN_E_ACCOUNT},
        {"arn:aws:ssm:us-east-1:12345678901x:parameter/a", AW_ARN_E_ACCOUNT},
        {"arn:aws:ssm:us-east-1:123456789012:", AW_ARN_E_RESOURCE},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/", AW_ARN_E_RESOURCE},
        {"arn:aws:ssm:us-east-1:123456789012:parameter//a", AW_ARN_E_RESOURCE},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/a//b", AW_ARN_E_RESOURCE},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/a/", AW_ARN_E_RESOURCE},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/a b", AW_ARN_E_RESOURCE},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/a:", AW_ARN_E_RESOURCE},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/a:1:2", AW_ARN_E_RESOURCE},
        {"arn:aws:ssm::123456789012:parameter/a", AW_ARN_E_REGION},
        {"arn:aws:ssm:us-east-1::parameter/a", AW_ARN_E_ACCOUNT},
        {"arn:aws:secretsmanager:us-east-1:123456789012:secret:", AW_ARN_E_RESOURCE},
        {"arn:aws:secretsmanager:us-east-1:123456789012:secret:a b", AW_ARN_E_RESOURCE},
        {"arn:aws:secretsmanager:us-east-1:123456789012:secret:a:k:s:i:extra", AW_ARN_E_RESOURCE},
        {"arn:aws:secretsmanager:us-east-1:123456789012:secret:a:k:s:bad_id", AW_ARN_E_RESOURCE},
        {"arn:aws:secretsmanager:us-east-1:123456789012:secret:a:k:st age:", AW_ARN_E_RESOURCE},
        {"arn:aws:kms:us-east-1:123456789012:key/", AW_ARN_E_RESOURCE},
        {"arn:aws:kms:us-east-1:123456789012:key/a_b", AW_ARN_E_RESOURCE},
        {"arn:aws:kms:us-east-1:123456789012:alias/", AW_ARN_E_RESOURCE},
        {"arn:aws:iam:us-east-1:123456789012:role/r", AW_ARN_E_REGION},
        {"arn:aws:iam:::role/r", AW_ARN_E_ACCOUNT},
        {"arn:aws:iam::123456789012:role/", AW_ARN_E_RESOURCE},
        {"arn:aws:iam::123456789012:role//r", AW_ARN_E_RESOURCE},
        {"arn:aws:iam::123456789012:role/a//r", AW_ARN_E_RESOURCE},
        {"arn:aws:iam::123456789012:role/r!", AW_ARN_E_RESOURCE},
        {"arn:aws:iam::123456789012:role/"
         "r12345678901234567890123456789012345678901234567890123456789012345",
         AW_ARN_E_PART_TOO_LONG},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/a\tb", AW_ARN_E_SYNTAX},
    };
    aw_arn keep;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&a, 0x33, sizeof a);
        keep = a;
        cr_expect_eq(aw_arn_parse_str(bad[i].s, &a), bad[i].rc, "case %zu: %s -> %d", i, bad[i].s,
                     aw_arn_parse_str(bad[i].s, &a));
        cr_expect(memcmp(&a, &keep, sizeof a) == 0, "case %zu touched out", i);
        cr_expect(strlen(aw_arn_strerror(bad[i].rc)) > 0);
    }
    /* embedded NUL */
    const char nul[] = "arn:aws:ssm:us-east-1:123456789012:parameter/a\0b";
    cr_expect_eq(aw_arn_parse(nul, sizeof nul - 1, &a), AW_ARN_E_SYNTAX);
}

Test(arn, limits)
{
    es_buf b;
    es_buf_init(&b, 1 << 16);
    /* whole ARN */
    es_buf_printf(&b, "arn:aws:ssm:us-east-1:123456789012:parameter/%0*d", AW_ARN_MAX, 0);
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), AW_ARN_E_TOO_LONG);
    /* 15 levels fine, 16 not */
    es_buf_reset(&b);
    es_buf_printf(&b, "arn:aws:ssm:us-east-1:123456789012:parameter/l");
    for (int i = 1; i < AW_ARN_SSM_LEVELS_MAX; i++)
        es_buf_printf(&b, "/l");
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), 0);
    es_buf_printf(&b, "/l");
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), AW_ARN_E_PART_TOO_LONG);
    /* secret name, json key, stage, version id */
    es_buf_reset(&b);
    es_buf_printf(&b, "arn:aws:secretsmanager:us-east-1:123456789012:secret:%0*d",
                  AW_ARN_SECRET_NAME_MAX + 1, 0);
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), AW_ARN_E_PART_TOO_LONG);
    es_buf_reset(&b);
    es_buf_printf(&b, "arn:aws:secretsmanager:us-east-1:123456789012:secret:s:%0*d",
                  AW_ARN_JSON_KEY_MAX + 1, 0);
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), AW_ARN_E_PART_TOO_LONG);
    es_buf_reset(&b);
    es_buf_printf(&b, "arn:aws:secretsmanager:us-east-1:123456789012:secret:s:k:%0*d",
                  AW_ARN_VERSION_STAGE_MAX + 1, 0);
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), AW_ARN_E_PART_TOO_LONG);
    es_buf_reset(&b);
    es_buf_printf(&b, "arn:aws:secretsmanager:us-east-1:123456789012:secret:s:k::%0*d",
                  AW_ARN_VERSION_ID_MAX + 1, 0);
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), AW_ARN_E_PART_TOO_LONG);
    es_buf_reset(&b);
    es_buf_printf(&b, "arn:aws:secretsmanager:us-east-1:123456789012:secret:s:k::%0*d",
                  AW_ARN_VERSION_ID_MAX, 0);
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), 0);
    es_buf_reset(&b);
    es_buf_printf(&b, "arn:aws:ssm:%0*d:123456789012:parameter/a", AW_ARN_REGION_MAX + 1, 0);
    cr_expect_eq(aw_arn_parse_str(es_buf_cstr(&b), &a), AW_ARN_E_PART_TOO_LONG);
    es_buf_free(&b);
}
