#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/secrets/valuefrom.h"
#include "aws/arn.h"
#include "common/alloc.h"

static ag_valuefrom ok(const char *vf, const char *region)
{
    ag_valuefrom v;
    char err[256] = "";
    int r = ag_valuefrom_parse(vf, region, &v, err, sizeof err);
    cr_assert_eq(r, 0, "%s: %d %s", vf, r, err);
    return v;
}

static int bad(const char *vf, const char *want_in_err)
{
    ag_valuefrom v;
    memset(&v, 0x5a, sizeof v);
    char err[256] = "";
    int r = ag_valuefrom_parse(vf, "eu-west-1", &v, err, sizeof err);
    cr_assert_lt(r, 0, "%s must be refused", vf);
    cr_assert_neq(err[0], '\0', "an error says why");
    if (want_in_err)
        cr_assert_not_null(strstr(err, want_in_err), "%s: '%s' lacks '%s'", vf, err, want_in_err);
    /* out untouched on failure */
    unsigned char *p = (unsigned char *)&v;
    for (size_t i = 0; i < sizeof v; i++)
        cr_assert_eq(p[i], 0x5a);
    return r;
}

Test(valuefrom, bare_name_is_ssm_in_task_region)
{
    ag_valuefrom v = ok("database_password", "eu-west-1");
    cr_assert_eq(v.kind, AG_VF_SSM);
    cr_assert_not(v.is_arn);
    cr_assert_str_eq(v.ssm_name, "database_password");
    cr_assert_str_eq(v.region, "eu-west-1");
    cr_assert_str_eq(v.account, "");
    cr_assert_null(v.ssm_label);
    cr_assert_eq(v.ssm_version, 0);
    ag_valuefrom_clear(&v);

    v = ok("/test/database_password", NULL);
    cr_assert_str_eq(v.ssm_name, "/test/database_password");
    cr_assert_str_eq(v.region, "");
    ag_valuefrom_clear(&v);
    ag_valuefrom_clear(&v); /* twice is harmless */
}

Test(valuefrom, ssm_selectors)
{
    ag_valuefrom v = ok("/test/db:3", "us-east-1");
    cr_assert_str_eq(v.ssm_name, "/test/db");
    cr_assert_eq(v.ssm_version, 3);
    cr_assert_null(v.ssm_label);
    ag_valuefrom_clear(&v);
    v = ok("/test/db:prod-1", "us-east-1");
    cr_assert_str_eq(v.ssm_label, "prod-1");
    cr_assert_eq(v.ssm_version, 0);
    ag_valuefrom_clear(&v);
    bad("/test/db:", "selector");
    bad("/test/db:0", "start at 1");
    bad("/test/db:1a", "digit");
    bad("/test/db:awslabel", "aws or ssm");
    bad("/test/db:a:b", "more than one");
    bad("/test/db:99999999999999999999", "too large");
    /* at most 100 characters, a version with leading zeros too (found by
     * fuzz_valuefrom: aws/arn.h refused the ARN of such a reference) */
    char sel[160];
    snprintf(sel, sizeof sel, "/test/db:%0100d", 42);
    v = ok(sel, "us-east-1");
    cr_assert_eq(v.ssm_version, 42);
    ag_valuefrom_clear(&v);
    snprintf(sel, sizeof sel, "/test/db:%0101d", 42);
    bad(sel, "longer than 100");
    snprintf(sel, sizeof sel, "/test/db:l%0100d", 42);
    bad(sel, "longer than 100");
    snprintf(sel, sizeof sel, "arn:aws:ssm:us-east-1:123456789012:parameter/db:%0100d", 42);
    v = ok(sel, "us-east-1");
    static aw_arn a;
    cr_assert_eq(aw_arn_parse_str(sel, &a), 0, "aws/arn.h takes what valuefrom takes");
    cr_assert_eq(strlen(a.selector), 100);
    ag_valuefrom_clear(&v);
}

Test(valuefrom, ssm_arn_keeps_its_region_and_account)
{
    ag_valuefrom v =
        ok("arn:aws:ssm:us-east-2:123456789012:parameter/test/database_password", "eu-west-1");
    cr_assert_eq(v.kind, AG_VF_SSM);
    cr_assert(v.is_arn);
    cr_assert_str_eq(v.partition, "aws");
    cr_assert_str_eq(v.region, "us-east-2");
    cr_assert_str_eq(v.account, "123456789012");
    cr_assert_str_eq(v.ssm_name, "/test/database_password");
    ag_valuefrom_clear(&v);

    v = ok("arn:aws-cn:ssm:cn-north-1:123456789012:parameter/flat:2", NULL);
    cr_assert_str_eq(v.partition, "aws-cn");
    cr_assert_str_eq(v.ssm_name, "/flat");
    cr_assert_eq(v.ssm_version, 2);
    ag_valuefrom_clear(&v);
}

Test(valuefrom, secretsmanager_arn_with_every_tail)
{
    const char *base = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
    ag_valuefrom v = ok(base, "eu-west-1");
    cr_assert_eq(v.kind, AG_VF_SECRETSMANAGER);
    cr_assert_str_eq(v.secret_id, base);
    cr_assert_str_eq(v.region, "us-east-1");
    cr_assert_null(v.json_key);
    cr_assert_null(v.version_stage);
    cr_assert_null(v.version_id);
    ag_valuefrom_clear(&v);

    v = ok("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:password::", NULL);
    cr_assert_str_eq(v.secret_id, base);
    cr_assert_str_eq(v.json_key, "password");
    cr_assert_null(v.version_stage);
    cr_assert_null(v.version_id);
    ag_valuefrom_clear(&v);

    v = ok("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf::AWSPREVIOUS:", NULL);
    cr_assert_null(v.json_key);
    cr_assert_str_eq(v.version_stage, "AWSPREVIOUS");
    ag_valuefrom_clear(&v);

    v = ok("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:user:AWSCURRENT:"
           "01234567-89ab-cdef-0123-456789abcdef",
           NULL);
    cr_assert_str_eq(v.json_key, "user");
    cr_assert_str_eq(v.version_stage, "AWSCURRENT");
    cr_assert_str_eq(v.version_id, "01234567-89ab-cdef-0123-456789abcdef");
    ag_valuefrom_clear(&v);

    /* partial ARN (no random suffix) and names with /_+=.@- */
    v = ok("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app+x=y.z@w_1", NULL);
    cr_assert_str_eq(v.secret_id,
                     "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app+x=y.z@w_1");
    ag_valuefrom_clear(&v);
}

Test(valuefrom, secretsmanager_errors)
{
    bad("arn:aws:secretsmanager:us-east-1:123456789012:secret:db:k:s:01234567-89ab-cdef-0123-"
        "456789abcdef:extra",
        "too many");
    bad("arn:aws:secretsmanager:us-east-1:123456789012:secret:", "secret name is empty");
    bad("arn:aws:secretsmanager:us-east-1:123456789012:secret::key", "secret name is empty");
    bad("arn:aws:secretsmanager:us-east-1:123456789012:secret:db:k:s:short", "version id");
    bad("arn:aws:secretsmanager:us-east-1:123456789012:secret:d#b", "secret name");
    bad("arn:aws:secretsmanager:us-east-1:123456789012:db", "must name a secret");
}

Test(valuefrom, reference_to_secretsmanager_via_ssm)
{
    ag_valuefrom v = ok("/aws/reference/secretsmanager/prod/db", "us-west-2");
    cr_assert_eq(v.kind, AG_VF_SSM_REFERENCE);
    cr_assert_str_eq(v.secret_id, "prod/db");
    cr_assert_str_eq(v.ssm_name, "/aws/reference/secretsmanager/prod/db");
    cr_assert_str_eq(v.region, "us-west-2");
    ag_valuefrom_clear(&v);
    v = ok("arn:aws:ssm:us-east-1:123456789012:parameter/aws/reference/secretsmanager/x.y", NULL);
    cr_assert_eq(v.kind, AG_VF_SSM_REFERENCE);
    cr_assert_str_eq(v.secret_id, "x.y");
    cr_assert_str_eq(v.region, "us-east-1");
    ag_valuefrom_clear(&v);
    bad("/aws/reference/secretsmanager/", "secret name is empty");
    bad("/aws/reference/secretsmanager/db:2", "not supported");
    bad("/aws/reference/secretsmanager/x@y", "only letters, digits and _.-/");
    bad("/aws/reference/secretsmanager//x", "empty hierarchy level");
}

Test(valuefrom, malformed_inputs_have_precise_errors)
{
    cr_assert_eq(bad("", "empty"), AG_VF_E_EMPTY);
    cr_assert_eq(bad("a b", "space"), AG_VF_E_CHARS);
    cr_assert_eq(bad("a\nb", "control"), AG_VF_E_CHARS);
    cr_assert_eq(bad("arn:aws:ssm", "not an ARN"), AG_VF_E_ARN);
    cr_assert_eq(bad("arn::ssm:us-east-1:123456789012:parameter/x", "partition"), AG_VF_E_ARN);
    cr_assert_eq(bad("arn:aws-xx:ssm:us-east-1:123456789012:parameter/x", "partition"),
                 AG_VF_E_ARN);
    cr_assert_eq(bad("arn:aws:s3:us-east-1:123456789012:bucket", "only ssm and secretsmanager"),
                 AG_VF_E_SERVICE);
    cr_assert_eq(bad("arn:aws:ssm::123456789012:parameter/x", "no region"), AG_VF_E_REGION);
    cr_assert_eq(bad("arn:aws:ssm:US_EAST:123456789012:parameter/x", "region"), AG_VF_E_REGION);
    /* the documentation's placeholder, copied as is: the first wrong part is named */
    cr_assert_eq(bad("arn:aws:ssm:region:aws_account_id:parameter/parameter_name",
                     "the ARN's region 'region' is not an AWS region"),
                 AG_VF_E_REGION);
    cr_assert_eq(bad("arn:aws:ssm:us-east-1:aws_account_id:parameter/parameter_name", "12 digits"),
                 AG_VF_E_ACCOUNT);
    /* a typo in the region, and a region in another partition than the ARN's */
    cr_assert_eq(bad("arn:aws:ssm:us-wst-2:123456789012:parameter/x",
                     "the ARN's region 'us-wst-2' is not an AWS region (did you mean us-west-2?)"),
                 AG_VF_E_REGION);
    cr_assert_eq(bad("arn:aws:ssm:cn-north-1:123456789012:parameter/x",
                     "the ARN's region cn-north-1 is in the partition aws-cn, not aws"),
                 AG_VF_E_ARN);
    cr_assert_eq(bad("arn:aws:ssm:us-east-1:12345678901:parameter/x", "12 digits"),
                 AG_VF_E_ACCOUNT);
    cr_assert_eq(bad("arn:aws:ssm:us-east-1:123456789012:document/x", "must name a parameter"),
                 AG_VF_E_RESOURCE);
    cr_assert_eq(bad("arn:aws:ssm:us-east-1:123456789012:parameter/", "empty"), AG_VF_E_NAME);
    cr_assert_eq(bad("a/b", "start with '/'"), AG_VF_E_NAME);
    cr_assert_eq(bad("/a//b", "empty hierarchy level"), AG_VF_E_NAME);
    cr_assert_eq(bad("/a/b/", "empty hierarchy level"), AG_VF_E_NAME);
    cr_assert_eq(bad("/a$b", "letters"), AG_VF_E_NAME);
    cr_assert_eq(bad("/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", "levels"), AG_VF_E_NAME);
    ag_valuefrom v = ok("/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15", NULL);
    ag_valuefrom_clear(&v);
    char big[AG_VF_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(bad(big, "longer"), AG_VF_E_TOO_LONG);
    big[AG_VF_MAX] = '\0'; /* exactly the maximum is fine */
    v = ok(big, NULL);
    ag_valuefrom_clear(&v);
}

Test(valuefrom, allocation_failure_is_reported)
{
    ag_valuefrom v;
    char err[64];
    es_alloc_fail_after(0);
    int r = ag_valuefrom_parse("/a", NULL, &v, err, sizeof err);
    es_alloc_fail_after(-1);
    cr_assert_eq(r, AG_VF_E_NOMEM);
}

static void arn_is(const char *vf, const char *want)
{
    ag_valuefrom v = ok(vf, "eu-west-1");
    char arn[AG_VF_MAX + 128];
    cr_assert_eq(ag_valuefrom_resource_arn(&v, "123456789012", arn, sizeof arn), 0);
    cr_assert_str_eq(arn, want, "%s", vf);
    char small[8];
    cr_assert_eq(ag_valuefrom_resource_arn(&v, "123456789012", small, sizeof small), -EMSGSIZE);
    ag_valuefrom_clear(&v);
}

Test(valuefrom, resource_arn_for_iam)
{
    arn_is("db", "arn:aws:ssm:eu-west-1:123456789012:parameter/db");
    arn_is("/test/db:3", "arn:aws:ssm:eu-west-1:123456789012:parameter/test/db");
    arn_is("arn:aws:ssm:us-east-2:210987654321:parameter/x:lab",
           "arn:aws:ssm:us-east-2:210987654321:parameter/x");
    arn_is("/aws/reference/secretsmanager/s",
           "arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/secretsmanager/s");
    arn_is("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:k::",
           "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf");
}

/* Until valuefrom moves onto aws/arn.h, the two must agree: every ARN we
 * accept, aw_arn_parse accepts, with the same parts. */
static void agrees(const char *s)
{
    ag_valuefrom v = ok(s, NULL);
    static aw_arn a;
    int r = aw_arn_parse_str(s, &a);
    cr_assert_eq(r, 0, "%s: aws/arn refuses what valuefrom accepts: %s", s, aw_arn_strerror(r));
    cr_assert_str_eq(a.partition, v.partition);
    cr_assert_str_eq(a.region, v.region);
    cr_assert_str_eq(a.account, v.account);
    if (v.kind == AG_VF_SECRETSMANAGER) {
        cr_assert_eq(a.kind, AW_ARN_SECRET);
        char id[AW_ARN_MAX + 1];
        cr_assert_eq(aw_arn_secret_id(&a, id, sizeof id), 0);
        cr_assert_str_eq(id, v.secret_id);
        cr_assert_str_eq(a.json_key, v.json_key ? v.json_key : "");
        cr_assert_str_eq(a.version_stage, v.version_stage ? v.version_stage : "");
        cr_assert_str_eq(a.version_id, v.version_id ? v.version_id : "");
    } else {
        cr_assert_eq(a.kind, AW_ARN_SSM_PARAMETER);
        /* SSM: "/a" and "a" name the same parameter */
        const char *an = a.name[0] == '/' ? a.name + 1 : a.name;
        const char *vn = v.ssm_name[0] == '/' ? v.ssm_name + 1 : v.ssm_name;
        cr_assert_str_eq(an, vn);
        char sel[32] = "";
        if (v.ssm_version)
            snprintf(sel, sizeof sel, "%llu", (unsigned long long)v.ssm_version);
        cr_assert_str_eq(a.selector, v.ssm_label ? v.ssm_label : sel);
    }
    ag_valuefrom_clear(&v);
}

Test(valuefrom, agrees_with_aws_arn)
{
    agrees("arn:aws:ssm:us-east-1:123456789012:parameter/a");
    agrees("arn:aws:ssm:us-east-1:123456789012:parameter/a/b/c");
    agrees("arn:aws-cn:ssm:cn-north-1:123456789012:parameter/a:3");
    agrees("arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/a/b:lab_1");
    agrees("arn:aws:ssm:us-east-1:123456789012:parameter/aws/reference/secretsmanager/x");
    agrees("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf");
    agrees("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:k::");
    agrees("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf::AWSPREVIOUS:");
    agrees("arn:aws:secretsmanager:us-east-1:123456789012:secret:a/b+c=d.e@f_g-h:k:AWSCURRENT:"
           "01234567-89ab-cdef-0123-456789abcdef");
    /* and refuses at least what aws/arn refuses */
    const char *refused[] = {
        "arn:aws-iso:ssm:us-east-1:123456789012:parameter/a",
        "arn:aws:ssm::123456789012:parameter/a",
        "arn:aws:ssm:us-east-1::parameter/a",
        "arn:aws:ssm:us-east-1:123456789012:parameter//a",
        "arn:aws:secretsmanager:uS-east-1:123456789012:secret:db",
        "arn:aws:secretsmanager:us-:123456789012:secret:db",
        "arn:aws:ssm:us-east-1:123456789012:parameter/a:",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db:k:s:i:x",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:d#b",
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        static aw_arn a;
        cr_assert_neq(aw_arn_parse_str(refused[i], &a), 0, "%s", refused[i]);
        ag_valuefrom v;
        char err[256];
        cr_assert_lt(ag_valuefrom_parse(refused[i], NULL, &v, err, sizeof err), 0, "%s",
                     refused[i]);
    }
}

/* repositoryCredentials' credentialsParameter: a secret ARN without tail, or
 * a bare secret name in the task's region (never an SSM name). */
Test(valuefrom, secret_id_for_registry_credentials)
{
    ag_valuefrom v;
    char err[256];
    cr_assert_eq(ag_valuefrom_parse_secret("reg/hub", "eu-west-1", &v, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(v.kind, AG_VF_SECRETSMANAGER);
    cr_assert_not(v.is_arn);
    cr_assert_str_eq(v.secret_id, "reg/hub");
    cr_assert_str_eq(v.region, "eu-west-1");
    cr_assert_str_eq(v.account, "");
    cr_assert_null(v.json_key);
    ag_valuefrom_clear(&v);
    const char *arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:hub-AbCdEf";
    cr_assert_eq(ag_valuefrom_parse_secret(arn, "eu-west-1", &v, err, sizeof err), 0, "%s", err);
    cr_assert(v.is_arn);
    cr_assert_str_eq(v.secret_id, arn);
    cr_assert_str_eq(v.region, "us-west-2");
    ag_valuefrom_clear(&v);
    static const struct {
        const char *in;
        int code;
        const char *why;
    } bads[] = {
        {"", AG_VF_E_EMPTY, "empty"},
        {"a b", AG_VF_E_NAME, "secret name"},
        {"a#b", AG_VF_E_NAME, "secret name"},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/a", AG_VF_E_SERVICE, "Secrets Manager"},
        {"arn:aws:secretsmanager:us-east-1:123456789012:secret:a:k::", AG_VF_E_TAIL, "without"},
        {"arn:aws:secretsmanager:us-east-1:123456789012:secret:a:", AG_VF_E_TAIL, "without"},
        {"arn:aws:secretsmanager:us-east-1:1234:secret:a", AG_VF_E_ACCOUNT, "12 digits"},
    };
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        memset(&v, 0x5a, sizeof v);
        ag_valuefrom before = v;
        int r = ag_valuefrom_parse_secret(bads[i].in, "us-east-1", &v, err, sizeof err);
        cr_assert_eq(r, bads[i].code, "%s: %d (%s)", bads[i].in, r, err);
        cr_assert(strstr(err, bads[i].why), "%s: %s", bads[i].in, err);
        cr_assert_eq(memcmp(&v, &before, sizeof v), 0, "out untouched");
    }
    char big[AG_VF_SM_NAME_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(ag_valuefrom_parse_secret(big, "us-east-1", &v, err, sizeof err), AG_VF_E_NAME);
}
