/* Authorisation of the embedded SSM / Secrets Manager / KMS calls for an
 * assumed-role session: the seed's execution-role policy (S7) allows exactly
 * its reads, the AWS managed AmazonECSTaskExecutionRolePolicy alone grants
 * no secret, a customer managed key needs kms:Decrypt, with AWS's wording. */
#include "iam_helpers.h"

#include <stdarg.h>

#include "aws/local/internal.h"

TestSuite(al_authz, .init = alt_setup, .fini = alt_teardown);

#define SESSION "arn:aws:sts::123456789012:assumed-role/exec/task-1"
#define PARAM_ARN "arn:aws:ssm:us-east-2:123456789012:parameter/test/database_password"

static char key_id[64], key_arn[160], secret_arn[256];

/* JSON call as principal; 0 or the status. */
static int jcall(const char *principal, const char *target, const char *fmt, ...)
{
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    es_json_free(T.resp);
    T.resp = NULL;
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    int r = al_dispatch(T.ctx, target, principal, body, strlen(body), &T.out, &T.err);
    if (r < 0) {
        cr_assert_eq(T.out.len, 0);
        return T.err.status;
    }
    char why[128];
    cr_assert_eq(
        es_json_parse(T.out.data, T.out.len, &es_json_default_limits, &T.resp, why, sizeof why), 0);
    return 0;
}

#define jok(principal, target, ...)                                                                \
    do {                                                                                           \
        int st_ = jcall(principal, target, __VA_ARGS__);                                           \
        cr_assert_eq(st_, 0, "%s -> %d %s: %s", target, st_, T.err.code, T.err.message);           \
    } while (0)

static void denied(const char *principal, const char *target, const char *want, const char *body)
{
    int st = jcall(principal, target, "%s", body);
    cr_assert_eq(st, 400, "%s %s: %d %s", target, body, st, es_buf_cstr(&T.out));
    cr_assert_str_eq(T.err.code, "AccessDeniedException");
    cr_assert_eq(strncmp(T.err.message, want, strlen(want)), 0, "%s\nwant %s", T.err.message, want);
}

/* The store as the administrator fills it; the role "exec" with only the
 * AWS managed policy attached. */
static void setup(void)
{
    alt_setup();
    al_authz_install(T.ctx);
    jok(ROOT, "TrentService.CreateKey", "{\"Description\":\"app\"}");
    const es_json *md = es_json_get(T.resp, "KeyMetadata");
    snprintf(key_id, sizeof key_id, "%s", es_json_get_str(md, "KeyId"));
    snprintf(key_arn, sizeof key_arn, "arn:aws:kms:us-east-2:123456789012:key/%s", key_id);
    jok(ROOT, "AmazonSSM.PutParameter",
        "{\"Name\":\"/test/database_password\",\"Type\":\"SecureString\",\"Value\":\"pw-1\","
        "\"KeyId\":\"%s\"}",
        key_id);
    jok(ROOT, "AmazonSSM.PutParameter",
        "{\"Name\":\"/test/other\",\"Type\":\"SecureString\",\"Value\":\"pw-2\"}");
    jok(ROOT, "AmazonSSM.PutParameter",
        "{\"Name\":\"/test/default_key\",\"Type\":\"SecureString\",\"Value\":\"pw-3\"}");
    jok(ROOT, "secretsmanager.CreateSecret",
        "{\"Name\":\"test/api_key\",\"SecretString\":\"sk-1\",\"KmsKeyId\":\"%s\"}", key_id);
    snprintf(secret_arn, sizeof secret_arn, "%s", es_json_get_str(T.resp, "ARN"));
    make_role("exec", ECS_TRUST);
    qok("iam", "AttachRolePolicy", "RoleName", "exec", "PolicyArn", EXEC_POLICY_ARN, NULL);
}

TestSuite(al_authz_seed, .init = setup, .fini = alt_teardown);

static void put_seed_policy(bool with_kms)
{
    char doc[2048];
    snprintf(doc, sizeof doc,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
             "\"ssm:GetParameters\",\"secretsmanager:GetSecretValue\"%s],\"Resource\":[\"%s\","
             "\"%s\"%s%s%s]}]}",
             with_kms ? ",\"kms:Decrypt\"" : "", PARAM_ARN, secret_arn, with_kms ? ",\"" : "",
             with_kms ? key_arn : "", with_kms ? "\"" : "");
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "secrets", "PolicyDocument", doc,
        NULL);
}

Test(al_authz_seed, managed_policy_alone_grants_no_secret)
{
    denied(SESSION, "AmazonSSM.GetParameters",
           "User: " SESSION
           " is not authorized to perform: ssm:GetParameters on resource: " PARAM_ARN
           " because no identity-based policy allows the ssm:GetParameters action",
           "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
    cr_assert_eq(strlen(T.err.message),
                 strlen("User: " SESSION " is not authorized to perform: ssm:GetParameters on "
                        "resource: " PARAM_ARN " because no identity-based policy allows the "
                        "ssm:GetParameters action"));
    char want[512];
    snprintf(want, sizeof want,
             "User: " SESSION " is not authorized to perform: secretsmanager:GetSecretValue on "
             "resource: %s because no identity-based policy allows the "
             "secretsmanager:GetSecretValue action",
             secret_arn);
    denied(SESSION, "secretsmanager.GetSecretValue", want, "{\"SecretId\":\"test/api_key\"}");
    /* the administrator may */
    jok(ROOT, "AmazonSSM.GetParameters",
        "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "pw-1"));
}

Test(al_authz_seed, seed_policy_allows_exactly_its_reads)
{
    put_seed_policy(true);
    jok(SESSION, "AmazonSSM.GetParameters",
        "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "\"pw-1\""));
    jok(SESSION, "secretsmanager.GetSecretValue", "{\"SecretId\":\"%s\"}", secret_arn);
    cr_assert_str_eq(es_json_get_str(T.resp, "SecretString"), "sk-1");
    /* nothing else */
    denied(SESSION, "AmazonSSM.GetParameters",
           "User: " SESSION " is not authorized to perform: ssm:GetParameters on resource: "
           "arn:aws:ssm:us-east-2:123456789012:parameter/test/other because",
           "{\"Names\":[\"/test/other\"],\"WithDecryption\":true}");
    denied(SESSION, "AmazonSSM.GetParameter",
           "User: " SESSION
           " is not authorized to perform: ssm:GetParameter on resource: " PARAM_ARN,
           "{\"Name\":\"/test/database_password\",\"WithDecryption\":true}");
    denied(SESSION, "AmazonSSM.PutParameter",
           "User: " SESSION
           " is not authorized to perform: ssm:PutParameter on resource: " PARAM_ARN,
           "{\"Name\":\"/test/database_password\",\"Type\":\"String\",\"Value\":\"x\","
           "\"Overwrite\":true}");
    denied(SESSION, "secretsmanager.DescribeSecret",
           "User: " SESSION " is not authorized to perform: secretsmanager:DescribeSecret",
           "{\"SecretId\":\"test/api_key\"}");
    denied(SESSION, "TrentService.Encrypt",
           "User: " SESSION " is not authorized to perform: kms:Encrypt on resource: arn:aws:kms:",
           "{\"KeyId\":\"alias/aws/ssm\",\"Plaintext\":\"eA==\"}");
    /* KMS's own Decrypt of the key is granted by kms:Decrypt through the
     * default key policy, without the relayed-service suffix on denials */
    jok(ROOT, "TrentService.Encrypt", "{\"KeyId\":\"%s\",\"Plaintext\":\"eA==\"}", key_id);
    char blob[1024];
    snprintf(blob, sizeof blob, "%s", es_json_get_str(T.resp, "CiphertextBlob"));
    jok(SESSION, "TrentService.Decrypt", "{\"CiphertextBlob\":\"%s\"}", blob);
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "secrets", NULL);
    char body[1100], want[512];
    snprintf(body, sizeof body, "{\"CiphertextBlob\":\"%s\"}", blob);
    snprintf(want, sizeof want,
             "User: " SESSION " is not authorized to perform: kms:Decrypt on resource: %s because "
             "no identity-based policy allows the kms:Decrypt action",
             key_arn);
    denied(SESSION, "TrentService.Decrypt", want, body);
    cr_assert_eq(strlen(T.err.message), strlen(want), "no relayed-service suffix: %s",
                 T.err.message);
}

Test(al_authz_seed, customer_key_needs_kms_decrypt)
{
    put_seed_policy(false);
    char want[512];
    snprintf(want, sizeof want,
             "User: " SESSION " is not authorized to perform: kms:Decrypt on resource: %s because "
             "no identity-based policy allows the kms:Decrypt action (Service: AWSKMS; Status "
             "Code: 400; Error Code: AccessDeniedException; Request ID: ",
             key_arn);
    denied(SESSION, "AmazonSSM.GetParameters", want,
           "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
    cr_assert_null(strstr(T.err.message, "pw-1"));
    denied(SESSION, "secretsmanager.GetSecretValue", want, "{\"SecretId\":\"test/api_key\"}");
    /* without decryption the ciphertext is readable with ssm:GetParameters alone */
    jok(SESSION, "AmazonSSM.GetParameters", "{\"Names\":[\"/test/database_password\"]}");
    cr_assert_null(strstr(es_buf_cstr(&T.out), "pw-1"));
}

Test(al_authz_seed, aws_managed_key_needs_no_kms_grant)
{
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "p", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:us-east-2:123456789012:parameter/test/"
        "default_key\"}]}",
        NULL);
    jok(SESSION, "AmazonSSM.GetParameters",
        "{\"Names\":[\"/test/default_key\"],\"WithDecryption\":true}");
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "\"pw-3\""));
}

Test(al_authz_seed, explicit_deny_and_boundary)
{
    put_seed_policy(true);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "deny", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":"
        "\"secretsmanager:*\",\"Resource\":\"*\"}]}",
        NULL);
    char want[512];
    snprintf(want, sizeof want,
             "User: " SESSION " is not authorized to perform: secretsmanager:GetSecretValue on "
             "resource: %s with an explicit deny in an identity-based policy",
             secret_arn);
    denied(SESSION, "secretsmanager.GetSecretValue", want, "{\"SecretId\":\"test/api_key\"}");
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "deny", NULL);
    jok(SESSION, "secretsmanager.GetSecretValue", "{\"SecretId\":\"test/api_key\"}");
    /* a boundary that allows only SSM and KMS */
    qok("iam", "CreatePolicy", "PolicyName", "boundary", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"ssm:*\","
        "\"kms:*\"],\"Resource\":\"*\"}]}",
        NULL);
    qok("iam", "PutRolePermissionsBoundary", "RoleName", "exec", "PermissionsBoundary",
        "arn:aws:iam::123456789012:policy/boundary", NULL);
    snprintf(want, sizeof want,
             "User: " SESSION " is not authorized to perform: secretsmanager:GetSecretValue on "
             "resource: %s because no permissions boundary allows the "
             "secretsmanager:GetSecretValue action",
             secret_arn);
    denied(SESSION, "secretsmanager.GetSecretValue", want, "{\"SecretId\":\"test/api_key\"}");
    jok(SESSION, "AmazonSSM.GetParameters",
        "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
}

Test(al_authz_seed, conditions_see_the_principal)
{
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "p", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"*\",\"Condition\":{\"ArnEquals\":{"
        "\"aws:PrincipalArn\":\"arn:aws:iam::123456789012:role/exec\"},\"StringEquals\":{"
        "\"aws:PrincipalType\":\"AssumedRole\"}}}]}",
        NULL);
    jok(SESSION, "AmazonSSM.GetParameters", "{\"Names\":[\"/test/default_key\"]}");
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "p", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"*\",\"Condition\":{\"ArnEquals\":{"
        "\"aws:PrincipalArn\":\"arn:aws:iam::123456789012:role/other\"}}}]}",
        NULL);
    cr_assert_eq(jcall(SESSION, "AmazonSSM.GetParameters", "{\"Names\":[\"/test/default_key\"]}"),
                 400);
}

Test(al_authz_seed, unknown_principals_and_deleted_roles)
{
    denied("arn:aws:iam::123456789012:user/tester", "AmazonSSM.GetParameters",
           "User: arn:aws:iam::123456789012:user/tester is not authorized",
           "{\"Names\":[\"/test/default_key\"]}");
    denied("arn:aws:iam::210987654321:root", "AmazonSSM.GetParameters",
           "User: arn:aws:iam::210987654321:root is not authorized",
           "{\"Names\":[\"/test/default_key\"]}");
    put_seed_policy(true);
    jok(SESSION, "AmazonSSM.GetParameters", "{\"Names\":[\"/test/database_password\"]}");
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "secrets", NULL);
    qok("iam", "DetachRolePolicy", "RoleName", "exec", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qok("iam", "DeleteRole", "RoleName", "exec", NULL);
    /* a session of a deleted role holds nothing */
    cr_assert_eq(
        jcall(SESSION, "AmazonSSM.GetParameters", "{\"Names\":[\"/test/database_password\"]}"),
        400);
}

Test(al_authz, root_may_do_everything)
{
    al_authz_install(T.ctx);
    char why[512];
    cr_assert_eq(al_authz_check(T.ctx, ROOT, "ssm:PutParameter",
                                "arn:aws:ssm:us-east-2:123456789012:parameter/x", why, sizeof why),
                 0);
    cr_assert_eq(al_authz_check(T.ctx, ROOT, "kms:Decrypt",
                                "arn:aws:kms:us-east-2:123456789012:key/abc", why, sizeof why),
                 0);
    cr_assert_eq(al_authz_check(T.ctx, SESSION, "kms:Decrypt",
                                "arn:aws:kms:us-east-2:123456789012:key/abc", why, sizeof why),
                 -EACCES);
    cr_assert_eq(al_authz_check(T.ctx, NULL, "ssm:GetParameters", "*", why, sizeof why), -EACCES);
}

Test(al_authz_seed, secret_resource_policies)
{
    jok(ROOT, "secretsmanager.CreateSecret", "{\"Name\":\"shared\",\"SecretString\":\"sh-1\"}");
    char arn[256];
    snprintf(arn, sizeof arn, "%s", es_json_get_str(T.resp, "ARN"));
    char want[512];
    snprintf(want, sizeof want,
             "User: " SESSION " is not authorized to perform: secretsmanager:GetSecretValue on "
             "resource: %s because no identity-based policy allows",
             arn);
    denied(SESSION, "secretsmanager.GetSecretValue", want, "{\"SecretId\":\"shared\"}");
    /* a resource policy naming the role grants its sessions */
    jok(ROOT, "secretsmanager.PutResourcePolicy",
        "{\"SecretId\":\"shared\",\"ResourcePolicy\":\"{\\\"Version\\\":\\\"2012-10-17\\\","
        "\\\"Statement\\\":[{\\\"Effect\\\":\\\"Allow\\\",\\\"Principal\\\":{\\\"AWS\\\":"
        "\\\"arn:aws:iam::123456789012:role/exec\\\"},\\\"Action\\\":\\\"secretsmanager:"
        "GetSecretValue\\\",\\\"Resource\\\":\\\"*\\\"}]}\"}");
    cr_assert_str_eq(jstr(T.resp, "ARN"), arn);
    cr_assert_str_eq(jstr(T.resp, "Name"), "shared");
    jok(SESSION, "secretsmanager.GetSecretValue", "{\"SecretId\":\"shared\"}");
    cr_assert_str_eq(jstr(T.resp, "SecretString"), "sh-1");
    jok(ROOT, "secretsmanager.GetResourcePolicy", "{\"SecretId\":\"%s\"}", arn);
    cr_assert_not_null(strstr(jstr(T.resp, "ResourcePolicy"), "role/exec"));
    /* a Deny in it stops even the administrator */
    jok(ROOT, "secretsmanager.PutResourcePolicy",
        "{\"SecretId\":\"shared\",\"ResourcePolicy\":\"{\\\"Version\\\":\\\"2012-10-17\\\","
        "\\\"Statement\\\":[{\\\"Effect\\\":\\\"Deny\\\",\\\"Principal\\\":\\\"*\\\","
        "\\\"Action\\\":"
        "\\\"secretsmanager:GetSecretValue\\\",\\\"Resource\\\":\\\"*\\\"}]}\"}");
    snprintf(want, sizeof want,
             "User: " ROOT " is not authorized to perform: secretsmanager:GetSecretValue on "
             "resource: %s with an explicit deny in a resource-based policy",
             arn);
    denied(ROOT, "secretsmanager.GetSecretValue", want, "{\"SecretId\":\"shared\"}");
    jok(ROOT, "secretsmanager.DeleteResourcePolicy", "{\"SecretId\":\"shared\"}");
    jok(ROOT, "secretsmanager.GetResourcePolicy", "{\"SecretId\":\"shared\"}");
    cr_assert_null(es_json_get(T.resp, "ResourcePolicy"));
    jok(ROOT, "secretsmanager.GetSecretValue", "{\"SecretId\":\"shared\"}");
    denied(SESSION, "secretsmanager.GetSecretValue", "User: " SESSION, "{\"SecretId\":\"shared\"}");
    /* errors */
    cr_assert_eq(jcall(ROOT, "secretsmanager.PutResourcePolicy",
                       "{\"SecretId\":\"shared\",\"ResourcePolicy\":\"{\\\"Statement\\\":[{"
                       "\\\"Effect\\\":\\\"Allow\\\",\\\"Action\\\":\\\"*\\\",\\\"Resource\\\":"
                       "\\\"*\\\"}]}\"}"),
                 400);
    cr_assert_str_eq(T.err.code, "MalformedPolicyDocumentException");
    cr_assert_eq(jcall(ROOT, "secretsmanager.PutResourcePolicy",
                       "{\"SecretId\":\"shared\",\"BlockPublicPolicy\":true,\"ResourcePolicy\":"
                       "\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Effect\\\":"
                       "\\\"Allow\\\",\\\"Principal\\\":{\\\"AWS\\\":\\\"*\\\"},\\\"Action\\\":"
                       "\\\"secretsmanager:*\\\",\\\"Resource\\\":\\\"*\\\"}]}\"}"),
                 400);
    cr_assert_str_eq(T.err.code, "PublicPolicyException");
    cr_assert_eq(jcall(ROOT, "secretsmanager.GetResourcePolicy", "{\"SecretId\":\"nope\"}"), 400);
    cr_assert_str_eq(T.err.code, "ResourceNotFoundException");
    denied(SESSION, "secretsmanager.PutResourcePolicy",
           "User: " SESSION " is not authorized to perform: secretsmanager:PutResourcePolicy",
           "{\"SecretId\":\"shared\",\"ResourcePolicy\":\"{}\"}");
}

Test(al_authz_seed, a_deleted_boundary_allows_nothing)
{
    put_seed_policy(true);
    qok("iam", "CreatePolicy", "PolicyName", "b", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\","
        "\"Resource\":\"*\"}]}",
        NULL);
    qok("iam", "PutRolePermissionsBoundary", "RoleName", "exec", "PermissionsBoundary",
        "arn:aws:iam::123456789012:policy/b", NULL);
    jok(SESSION, "AmazonSSM.GetParameters", "{\"Names\":[\"/test/database_password\"]}");
    qok("iam", "DeletePolicy", "PolicyArn", "arn:aws:iam::123456789012:policy/b", NULL);
    denied(SESSION, "AmazonSSM.GetParameters",
           "User: " SESSION
           " is not authorized to perform: ssm:GetParameters on resource: " PARAM_ARN
           " because no permissions boundary allows the ssm:GetParameters action",
           "{\"Names\":[\"/test/database_password\"]}");
}

static void put_key_policy(const char *stmts, bool bypass, int want_status)
{
    char body[2048], esc[1600];
    size_t j = 0;
    for (const char *p = stmts; *p && j + 2 < sizeof esc; p++) {
        if (*p == '"')
            esc[j++] = '\\';
        esc[j++] = *p;
    }
    esc[j] = 0;
    snprintf(body, sizeof body,
             "{\"KeyId\":\"%s\",\"PolicyName\":\"default\",\"BypassPolicyLockoutSafetyCheck\":%s,"
             "\"Policy\":\"{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[%s]}\"}",
             key_id, bypass ? "true" : "false", esc);
    int st = jcall(ROOT, "TrentService.PutKeyPolicy", "%s", body);
    cr_assert_eq(st, want_status, "%d %s: %s", st, T.err.code, T.err.message);
}

Test(al_authz_seed, key_policies)
{
    put_seed_policy(true);
    jok(ROOT, "TrentService.GetKeyPolicy", "{\"KeyId\":\"%s\",\"PolicyName\":\"default\"}", key_id);
    cr_assert_not_null(strstr(jstr(T.resp, "Policy"), "\"arn:aws:iam::123456789012:root\""));
    jok(ROOT, "TrentService.ListKeyPolicies", "{\"KeyId\":\"%s\"}", key_id);
    /* default policy: the role's kms:Decrypt grant counts */
    jok(SESSION, "AmazonSSM.GetParameters",
        "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
    /* a key policy that no longer delegates kms:Decrypt to the account */
    put_key_policy("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:"
                   "root\"},\"Action\":[\"kms:PutKeyPolicy\",\"kms:GetKeyPolicy\"],"
                   "\"Resource\":\"*\"}",
                   false, 0);
    char want[512];
    snprintf(want, sizeof want,
             "User: " SESSION " is not authorized to perform: kms:Decrypt on resource: %s because "
             "no resource-based policy allows the kms:Decrypt action",
             key_arn);
    denied(SESSION, "AmazonSSM.GetParameters", want,
           "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
    /* naming the role directly grants without the account's IAM policies */
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "secrets", NULL);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "ssm-only", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"*\"}]}",
        NULL);
    put_key_policy("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:"
                   "root\"},\"Action\":\"kms:*\",\"Resource\":\"*\",\"Condition\":{"
                   "\"StringEquals\":{\"aws:PrincipalType\":\"Account\"}}},{\"Effect\":\"Allow\","
                   "\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:role/exec\"},\"Action\":"
                   "\"kms:Decrypt\",\"Resource\":\"*\"}",
                   false, 0);
    jok(SESSION, "AmazonSSM.GetParameters",
        "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "\"pw-1\""));
    /* errors */
    put_key_policy("{\"Effect\":\"Allow\",\"Action\":\"kms:*\",\"Resource\":\"*\"}", true, 400);
    cr_assert_str_eq(T.err.code, "MalformedPolicyDocumentException", "no Principal");
    cr_assert_eq(
        jcall(ROOT, "TrentService.PutKeyPolicy",
              "{\"KeyId\":\"alias/aws/ssm\",\"PolicyName\":\"default\",\"Policy\":\"{}\"}"),
        400);
    cr_assert_eq(jcall(ROOT, "TrentService.GetKeyPolicy",
                       "{\"KeyId\":\"alias/aws/ssm\",\"PolicyName\":\"other\"}"),
                 400);
    cr_assert_str_eq(T.err.code, "NotFoundException");
    /* the lockout safety check */
    const char *lockout =
        "{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::"
        "123456789012:role/exec\"},\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"}";
    put_key_policy(lockout, false, 400);
    cr_assert_str_eq(T.err.code, "MalformedPolicyDocumentException");
    cr_assert_str_eq(T.err.message, "The new key policy will not allow you to update the key "
                                    "policy in the future.");
    put_key_policy(lockout, true, 0);
    cr_assert_eq(jcall(ROOT, "TrentService.GetKeyPolicy", "{\"KeyId\":\"%s\"}", key_id), 400);
    cr_assert_str_eq(T.err.code, "AccessDeniedException");
}

Test(al_authz_seed, kms_via_service_condition)
{
    /* kms:Decrypt only when SSM uses the key: the common execution-role pattern */
    char doc[2048];
    snprintf(doc, sizeof doc,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
             "\"ssm:GetParameters\",\"Resource\":\"%s\"},{\"Effect\":\"Allow\",\"Action\":"
             "\"kms:Decrypt\",\"Resource\":\"%s\",\"Condition\":{\"StringEquals\":{"
             "\"kms:ViaService\":\"ssm.us-east-2.amazonaws.com\",\"kms:CallerAccount\":"
             "\"123456789012\"}}}]}",
             PARAM_ARN, key_arn);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "via", "PolicyDocument", doc,
        NULL);
    jok(SESSION, "AmazonSSM.GetParameters",
        "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}");
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "\"pw-1\""));
    /* the same key directly, or through Secrets Manager: not via SSM */
    jok(ROOT, "TrentService.Encrypt", "{\"KeyId\":\"%s\",\"Plaintext\":\"eA==\"}", key_id);
    char body[1100];
    snprintf(body, sizeof body, "{\"CiphertextBlob\":\"%s\"}",
             es_json_get_str(T.resp, "CiphertextBlob"));
    denied(SESSION, "TrentService.Decrypt",
           "User: " SESSION " is not authorized to perform: kms:Decrypt", body);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "sm", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}",
        NULL);
    denied(SESSION, "secretsmanager.GetSecretValue",
           "User: " SESSION " is not authorized to perform: kms:Decrypt",
           "{\"SecretId\":\"test/api_key\"}");
}

/* S6: a Parameter Store reference to a secret needs secretsmanager:GetSecretValue (and
 * kms:Decrypt for its customer key) */
Test(al_authz_seed, secret_through_a_parameter_reference)
{
    const char *body =
        "{\"Names\":[\"/aws/reference/secretsmanager/test/api_key\"],\"WithDecryption\":true}";
    char want[512];
    snprintf(want, sizeof want,
             "User: " SESSION " is not authorized to perform: secretsmanager:GetSecretValue on "
             "resource: %s because no identity-based policy allows",
             secret_arn);
    denied(SESSION, "AmazonSSM.GetParameters", want, body);
    put_seed_policy(true);
    jok(SESSION, "AmazonSSM.GetParameters", "%s", body);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "\"sk-1\""));
    put_seed_policy(false);
    denied(SESSION, "AmazonSSM.GetParameters",
           "User: " SESSION " is not authorized to perform: kms:Decrypt on resource: ", body);
}

/* ---- the compiled-policy cache (authz.c): kept while nothing changes,
 * and every change in force from the very next request ---- */

static al_cache_stats cstats(void)
{
    al_cache_stats st;
    al_get_cache_stats(T.ctx, &st);
    return st;
}

#define GET_PW "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}"

/* Two allowed calls; the second reads and compiles nothing and decides
 * nothing again: its Allows (ssm:GetParameters, kms:Decrypt on the customer
 * key) were kept, the policies they came from using no request context. */
static void allowed_from_the_cache(const char *principal)
{
    unsigned long decisions = 2; /* the root account is asked for both as well */
    jok(principal, "AmazonSSM.GetParameters", GET_PW);
    al_cache_stats a = cstats();
    jok(principal, "AmazonSSM.GetParameters", GET_PW);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "\"pw-1\""));
    al_cache_stats b = cstats();
    cr_assert_eq(b.policy_loads, a.policy_loads, "policies read again: %lu -> %lu", a.policy_loads,
                 b.policy_loads);
    cr_assert_eq(b.decision_hits, a.decision_hits + decisions, "%lu -> %lu", a.decision_hits,
                 b.decision_hits);
    cr_assert_eq(b.policy_hits, a.policy_hits, "a kept decision consults no policy");
    cr_assert_eq(b.flushes, a.flushes, "a read changed nothing");
}

static void denied_now(const char *why)
{
    denied(SESSION, "AmazonSSM.GetParameters", "User: " SESSION " is not authorized", GET_PW);
    cr_assert_not_null(strstr(T.err.message, why), "%s\nwant %s", T.err.message, why);
}

Test(al_authz_seed, kept_policies_and_every_change_on_the_next_request)
{
    put_seed_policy(true);
    allowed_from_the_cache(SESSION);
    allowed_from_the_cache(ROOT);
    /* inline policies: PutRolePolicy, DeleteRolePolicy */
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "deny", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"*\"}]}",
        NULL);
    denied_now("with an explicit deny in an identity-based policy");
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "deny", NULL);
    allowed_from_the_cache(SESSION);
    /* managed policies: AttachRolePolicy, DetachRolePolicy, DeletePolicy */
    qok("iam", "CreatePolicy", "PolicyName", "no-kms", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":"
        "\"kms:Decrypt\",\"Resource\":\"*\"}]}",
        NULL);
    allowed_from_the_cache(SESSION);
    qok("iam", "AttachRolePolicy", "RoleName", "exec", "PolicyArn",
        "arn:aws:iam::123456789012:policy/no-kms", NULL);
    denied_now("kms:Decrypt");
    qok("iam", "DetachRolePolicy", "RoleName", "exec", "PolicyArn",
        "arn:aws:iam::123456789012:policy/no-kms", NULL);
    allowed_from_the_cache(SESSION);
    /* permissions boundary: put, delete */
    qok("iam", "CreatePolicy", "PolicyName", "kms-only", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:*\","
        "\"Resource\":\"*\"}]}",
        NULL);
    qok("iam", "PutRolePermissionsBoundary", "RoleName", "exec", "PermissionsBoundary",
        "arn:aws:iam::123456789012:policy/kms-only", NULL);
    denied_now("because no permissions boundary allows the ssm:GetParameters action");
    qok("iam", "DeleteRolePermissionsBoundary", "RoleName", "exec", NULL);
    allowed_from_the_cache(SESSION);
    /* the key's policy: PutKeyPolicy without the account's delegation of Decrypt */
    put_key_policy("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:"
                   "root\"},\"Action\":[\"kms:PutKeyPolicy\",\"kms:GetKeyPolicy\"],"
                   "\"Resource\":\"*\"}",
                   false, 0);
    denied_now("because no resource-based policy allows the kms:Decrypt action");
    put_key_policy("{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:"
                   "root\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}",
                   false, 0);
    allowed_from_the_cache(SESSION);
    /* the role deleted (and made again: another role, no policies) */
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "secrets", NULL);
    denied_now("because no identity-based policy allows the ssm:GetParameters action");
    put_seed_policy(true);
    allowed_from_the_cache(SESSION);
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "secrets", NULL);
    qok("iam", "DetachRolePolicy", "RoleName", "exec", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qok("iam", "DeleteRole", "RoleName", "exec", NULL);
    denied_now("because no identity-based policy allows");
    make_role("exec", ECS_TRUST);
    denied_now("because no identity-based policy allows");
}

Test(al_authz_seed, kept_secret_policies_change_on_the_next_request)
{
    put_seed_policy(true);
    const char *get = "{\"SecretId\":\"test/api_key\"}";
    /* the first read of the day stamps LastAccessedDate: a change */
    jok(SESSION, "secretsmanager.GetSecretValue", "%s", get);
    jok(SESSION, "secretsmanager.GetSecretValue", "%s", get);
    al_cache_stats a = cstats();
    jok(SESSION, "secretsmanager.GetSecretValue", "%s", get);
    cr_assert_eq(cstats().policy_loads, a.policy_loads);
    jok(ROOT, "secretsmanager.PutResourcePolicy",
        "{\"SecretId\":\"test/api_key\",\"ResourcePolicy\":\"{\\\"Version\\\":\\\"2012-10-17\\\","
        "\\\"Statement\\\":[{\\\"Effect\\\":\\\"Deny\\\",\\\"Principal\\\":\\\"*\\\","
        "\\\"Action\\\":\\\"secretsmanager:GetSecretValue\\\",\\\"Resource\\\":\\\"*\\\"}]}\"}");
    denied(SESSION, "secretsmanager.GetSecretValue", "User: " SESSION " is not authorized", get);
    cr_assert_not_null(strstr(T.err.message, "with an explicit deny in a resource-based policy"));
    jok(ROOT, "secretsmanager.DeleteResourcePolicy", "{\"SecretId\":\"test/api_key\"}");
    jok(SESSION, "secretsmanager.GetSecretValue", "%s", get);
}

/* A change is seen inside the transaction that makes it (before COMMIT),
 * and what was seen there is dropped when it rolls back. */
Test(al_authz_seed, changes_inside_a_transaction_and_rollbacks)
{
    put_seed_policy(true);
    char why[512];
    cr_assert_eq(al_authz_check(T.ctx, SESSION, "ssm:GetParameters", PARAM_ARN, why, sizeof why),
                 0);
    cr_assert_eq(al_authz_check(T.ctx, SESSION, "ssm:GetParameters", PARAM_ARN, why, sizeof why),
                 0);
    sqlite3 *h = al_db_handle(T.ctx->db);
    cr_assert_eq(al_db_begin(T.ctx->db), 0);
    cr_assert_eq(sqlite3_exec(h,
                              "UPDATE iam_role_policy SET document='{\"Version\":\"2012-10-17\","
                              "\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":"
                              "\"*\"}]}' WHERE role='exec'",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    cr_assert_eq(al_authz_check(T.ctx, SESSION, "ssm:GetParameters", PARAM_ARN, why, sizeof why),
                 -EACCES, "the uncommitted deny is in force");
    cr_assert_eq(al_authz_check(T.ctx, SESSION, "ssm:GetParameters", PARAM_ARN, why, sizeof why),
                 -EACCES);
    al_db_rollback(T.ctx->db);
    cr_assert_eq(al_authz_check(T.ctx, SESSION, "ssm:GetParameters", PARAM_ARN, why, sizeof why), 0,
                 "the rolled-back deny is gone: %s", why);
}

/* Many roles and keys: the cache stays bounded and every answer is right. */
Test(al_authz_seed, more_principals_than_slots)
{
    put_seed_policy(true);
    char why[512], role[32], session[128];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 40; i++) {
            snprintf(session, sizeof session, "arn:aws:sts::123456789012:assumed-role/r%d/s", i);
            if (round == 0) {
                snprintf(role, sizeof role, "r%d", i);
                make_role(role, ECS_TRUST);
                if (i % 2)
                    qok("iam", "PutRolePolicy", "RoleName", role, "PolicyName", "p",
                        "PolicyDocument",
                        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                        "\"Action\":\"ssm:GetParameters\",\"Resource\":\"*\"}]}",
                        NULL);
                continue;
            }
            cr_assert_eq(
                al_authz_check(T.ctx, session, "ssm:GetParameters", PARAM_ARN, why, sizeof why),
                i % 2 ? 0 : -EACCES, "%s", session);
        }
    }
    cr_assert_eq(al_authz_check(T.ctx, SESSION, "ssm:GetParameters", PARAM_ARN, why, sizeof why),
                 0);
}

/* aws:RequestedRegion is the region the request is served in (its SigV4
 * scope's), not the store's home region: a policy that keeps a role to one
 * region holds on the one endpoint that serves them all. */
Test(al_authz_seed, requested_region_is_the_requests)
{
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "p", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{"
        "\"aws:RequestedRegion\":\"eu-west-1\"}}}]}",
        NULL);
    const char *body = "{\"Names\":[\"/test/default_key\"]}";
    /* home (us-east-2): refused */
    cr_assert_eq(jcall(SESSION, "AmazonSSM.GetParameters", "%s", body), 400);
    cr_assert_str_eq(T.err.code, "AccessDeniedException");
    /* eu-west-1: allowed (the parameter does not exist there: InvalidParameters) */
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    cr_assert_eq(al_dispatch_in(T.ctx, "eu-west-1", "AmazonSSM.GetParameters", SESSION, body,
                                strlen(body), &T.out, &T.err),
                 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "\"InvalidParameters\":[\"/test/default_key\"]"),
                       "%s", es_buf_cstr(&T.out));
    /* us-west-2: refused */
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    cr_assert_lt(al_dispatch_in(T.ctx, "us-west-2", "AmazonSSM.GetParameters", SESSION, body,
                                strlen(body), &T.out, &T.err),
                 0);
    cr_assert_str_eq(T.err.code, "AccessDeniedException");
}

/* ---- kept decisions (authz.c): only Allows, only from policies that use no
 * request context, dropped by every write ---- */

static int check(const char *principal, const char *action, const char *resource)
{
    char why[512];
    return al_authz_check(T.ctx, principal, action, resource, why, sizeof why);
}

/* A decision under a Condition or a policy variable is made again every time:
 * the clock (aws:CurrentTime) decides it differently from one second to the
 * next. */
Test(al_authz_seed, decisions_under_conditions_are_not_kept)
{
    /* 1700000000 is 2023-11-14T22:13:20Z (T.now at setup) */
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "until", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"*\",\"Condition\":{\"DateLessThan\":{"
        "\"aws:CurrentTime\":\"2023-11-14T22:13:30Z\"}}}]}",
        NULL);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    al_cache_stats a = cstats();
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    cr_assert_eq(cstats().decision_hits, a.decision_hits, "a conditional Allow was kept");
    T.now += 20; /* past the date: the same question, now refused */
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), -EACCES);
    T.now -= 20;
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);

    /* a policy variable in Resource: the context's value decides (a session
     * has no aws:username: the default is taken) */
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "until", NULL);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "var", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:*:*:parameter/test/${aws:username, "
        "'database_password'}\"}]}",
        NULL);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    a = cstats();
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    cr_assert_eq(cstats().decision_hits, a.decision_hits, "an Allow through a variable was kept");

    /* a Condition in another of the role's policies than the one that allows
     * is enough: every policy that took part must be free of context */
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "var", NULL);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "plain", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"*\"}]}",
        NULL);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    a = cstats();
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    cr_assert_eq(cstats().decision_hits, a.decision_hits + 1, "a plain Allow is kept");
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "deny-later", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"*\",\"Condition\":{\"DateGreaterThan\":{"
        "\"aws:CurrentTime\":\"2023-11-14T22:13:30Z\"}}}]}",
        NULL);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    a = cstats();
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    cr_assert_eq(cstats().decision_hits, a.decision_hits, "kept beside a conditional Deny");
    T.now += 20;
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), -EACCES);
}

/* Refusals are decided (and worded) every time; asked by another principal,
 * for another action or resource, the question is another one. */
Test(al_authz_seed, only_the_same_allow_is_kept)
{
    put_seed_policy(false);
    cr_assert_eq(check(SESSION, "kms:Decrypt", key_arn), -EACCES);
    al_cache_stats a = cstats();
    cr_assert_eq(check(SESSION, "kms:Decrypt", key_arn), -EACCES);
    cr_assert_eq(cstats().decision_hits, a.decision_hits, "a refusal was kept");
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    a = cstats();
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    cr_assert_eq(cstats().decision_hits, a.decision_hits + 1);
    cr_assert_eq(check(SESSION, "ssm:GetParameter", PARAM_ARN), -EACCES);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN "x"), -EACCES);
    cr_assert_eq(
        check("arn:aws:sts::123456789012:assumed-role/exec/task-2", "ssm:GetParameters", PARAM_ARN),
        0);
    cr_assert_eq(check("arn:aws:sts::123456789012:assumed-role/other/task-1", "ssm:GetParameters",
                       PARAM_ARN),
                 -EACCES);
    /* the same strings split differently are another question */
    cr_assert_eq(check(SESSION "s", "sm:GetParameters", PARAM_ARN), -EACCES);
}

/* The dispatcher hands the caller's string to the decisions, which make its
 * length and its part of a kept decision's hash once per operation, by its
 * address. The same buffer holding another caller in the next operation is
 * another caller: were the first one's length and hash used for it, user
 * "bobby"'s Allow would be kept under the question of "bob" (its first
 * bytes) and "bob" allowed from then on. */
Test(al_authz_seed, the_callers_hash_lives_one_operation)
{
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
             "\"ssm:GetParameters\",\"Resource\":\"%s\"}]}",
             PARAM_ARN);
    qok("iam", "CreateUser", "UserName", "bob", NULL);
    qok("iam", "CreateUser", "UserName", "bobby", NULL);
    qok("iam", "PutUserPolicy", "UserName", "bobby", "PolicyName", "p", "PolicyDocument", doc,
        NULL);
    const char *get = "{\"Names\":[\"/test/database_password\"]}";
    char who[128];
    for (int round = 0; round < 2; round++) {
        snprintf(who, sizeof who, "arn:aws:iam::123456789012:user/bob");
        denied(who, "AmazonSSM.GetParameters",
               "User: arn:aws:iam::123456789012:user/bob is not authorized", get);
        snprintf(who, sizeof who, "arn:aws:iam::123456789012:user/bobby");
        jok(who, "AmazonSSM.GetParameters", "%s", get);
        cr_assert_not_null(strstr(es_buf_cstr(&T.out), PARAM_ARN), "%s", es_buf_cstr(&T.out));
    }
    /* outside an operation no caller is remembered: each question is its own */
    cr_assert_eq(check("arn:aws:iam::123456789012:user/bob", "ssm:GetParameters", PARAM_ARN),
                 -EACCES);
    cr_assert_eq(check("arn:aws:iam::123456789012:user/bobby", "ssm:GetParameters", PARAM_ARN), 0);
}

/* Inside an operation the caller's hash with the action asked last is kept,
 * the action compared by its bytes: two actions of one length asked in turn
 * from one buffer each get their own question's hash. Were the kept hash
 * reused for the second (its length alone compared), its Allow would be kept
 * under the first one's hash and not found again when asked afresh. */
Test(al_authz_seed, the_callers_action_hash_follows_the_action)
{
    char doc[512];
    snprintf(doc, sizeof doc,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
             "\"ssm:*\",\"Resource\":\"%s\"}]}",
             PARAM_ARN);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "all-ssm", "PolicyDocument", doc,
        NULL);
    static const char *const actions[] = {"ssm:GetParameter", "ssm:PutParameter",
                                          "ssm:GetParameter"};
    char who[128], act[64];
    snprintf(who, sizeof who, "%s", SESSION);
    al_rq_caller outer = T.ctx->rq_caller;
    T.ctx->rq_caller = (al_rq_caller){.principal = who};
    for (size_t i = 0; i < 3; i++) {
        snprintf(act, sizeof act, "%s", actions[i]);
        cr_assert_eq(check(who, act, PARAM_ARN), 0, "%s", act);
    }
    /* not allowed: decided, not taken from the kept Allow of its length */
    snprintf(act, sizeof act, "ssm:GetParameterX");
    cr_assert_eq(check(who, act, PARAM_ARN), 0);
    snprintf(act, sizeof act, "sts:GetParameter");
    cr_assert_eq(check(who, act, PARAM_ARN), -EACCES);
    T.ctx->rq_caller = outer;
    /* asked afresh (no operation: every hash made in full), each is kept */
    for (size_t i = 0; i < 2; i++) {
        al_cache_stats a = cstats();
        cr_assert_eq(check(SESSION, actions[i], PARAM_ARN), 0);
        cr_assert_eq(cstats().decision_hits, a.decision_hits + 1, "%s kept under its own hash",
                     actions[i]);
    }
}

/* A write of any kind drops what was kept, inside its transaction already:
 * a parameter written, the role's policy taken away by SQL that no API
 * call made (rolled back: kept again from the next decision). */
Test(al_authz_seed, kept_decisions_follow_every_write)
{
    put_seed_policy(true);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    al_cache_stats a = cstats();
    jok(ROOT, "AmazonSSM.PutParameter",
        "{\"Name\":\"/test/unrelated\",\"Type\":\"String\",\"Value\":\"v\"}");
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
    cr_assert_eq(cstats().decision_hits, a.decision_hits, "kept across a write");
    cr_assert_gt(cstats().policy_loads, a.policy_loads);
    sqlite3 *h = al_db_handle(T.ctx->db);
    cr_assert_eq(al_db_begin(T.ctx->db), 0);
    cr_assert_eq(sqlite3_exec(h, "DELETE FROM iam_role_policy WHERE role='exec'", NULL, NULL, NULL),
                 SQLITE_OK);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), -EACCES,
                 "the kept Allow outlived the policy");
    al_db_rollback(T.ctx->db);
    cr_assert_eq(check(SESSION, "ssm:GetParameters", PARAM_ARN), 0);
}

/* More questions than entries: every answer right, the table bounded (at
 * most 256 Allows remembered), a few questions asked again all kept. */
Test(al_authz_seed, more_decisions_than_entries)
{
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "odd", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:us-east-2:123456789012:parameter/"
        "p*1\"}]}",
        NULL);
    char arn[160];
    al_cache_stats a = cstats();
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(arn, sizeof arn, "arn:aws:ssm:us-east-2:123456789012:parameter/p%d", i);
            cr_assert_eq(check(SESSION, "ssm:GetParameters", arn), i % 10 == 1 ? 0 : -EACCES, "%s",
                         arn);
        }
        if (round == 0)
            a = cstats();
    }
    /* 500 Allows a round, each asked once: the second round finds at most
     * what 256 entries can hold */
    cr_assert_leq(cstats().decision_hits - a.decision_hits, 256);
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            a = cstats();
        for (int i = 0; i < 8; i++) {
            snprintf(arn, sizeof arn, "arn:aws:ssm:us-east-2:123456789012:parameter/p%d1", i);
            cr_assert_eq(check(SESSION, "ssm:GetParameters", arn), 0, "%s", arn);
        }
    }
    cr_assert_eq(cstats().decision_hits - a.decision_hits, 8);
    /* names that differ only in their last characters, as a GetParameters of
     * ten names asks them: all ten kept (a weak hash once put them all in
     * one set of four) */
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            a = cstats();
        for (int i = 1; i <= 10; i++) {
            snprintf(arn, sizeof arn,
                     "arn:aws:ssm:us-east-2:123456789012:parameter/pbench/db/secret%02d1", i);
            cr_assert_eq(check(SESSION, "ssm:GetParameters", arn), 0, "%s", arn);
        }
    }
    cr_assert_eq(cstats().decision_hits - a.decision_hits, 10);
}
