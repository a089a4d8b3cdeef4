/* The embedded IAM's SimulatePrincipalPolicy (aws/local/iam_simulate.c):
 * decisions of identity policies and boundaries, KMS keys judged as if
 * their policy delegated to IAM, context entries, paging, every refusal,
 * the caller's own authorisation, and agreement with the decision the
 * preflight takes in-process (al_role_may). */
#include "iam_helpers.h"

#include "aws/local/authz.h"

TestSuite(al_iam_simulate, .init = alt_setup, .fini = alt_teardown);

#define ROLE_ARN "arn:aws:iam::123456789012:role/exec"
#define P_DB "arn:aws:ssm:us-east-1:123456789012:parameter/app/db"
#define P_SECRET "arn:aws:ssm:us-east-1:123456789012:parameter/app/secret"
#define P_OTHER "arn:aws:ssm:us-east-1:123456789012:parameter/other/x"
#define KEY "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

static const char policy[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":["
    "{\"Effect\":\"Allow\",\"Action\":[\"ssm:GetParameters\",\"secretsmanager:GetSecretValue\"],"
    "\"Resource\":\"arn:aws:ssm:us-east-1:123456789012:parameter/app/*\"},"
    "{\"Effect\":\"Deny\",\"Action\":\"ssm:GetParameters\",\"Resource\":\"" P_SECRET "\"},"
    "{\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":"
    "{\"StringEquals\":{\"kms:ViaService\":\"ssm.us-east-1.amazonaws.com\"}}}]}";

static void exec_role(void)
{
    make_role("exec", ECS_TRUST);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "read", "PolicyDocument", policy,
        NULL);
}

/* The n-th EvaluationResults member's decision (from 0). */
static const char *decision(int n)
{
    return xml_nth("EvalDecision", n);
}

Test(al_iam_simulate, identity_policy_decisions)
{
    exec_role();
    qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN, "ActionNames.member.1",
        "ssm:GetParameters", "ActionNames.member.2", "ssm:PutParameter", "ResourceArns.member.1",
        P_DB, "ResourceArns.member.2", P_SECRET, "ResourceArns.member.3", P_OTHER, NULL);
    /* actions outermost, resources in the order given */
    const char *want[][3] = {
        {"ssm:GetParameters", P_DB, "allowed"},
        {"ssm:GetParameters", P_SECRET, "explicitDeny"},
        {"ssm:GetParameters", P_OTHER, "implicitDeny"},
        {"ssm:PutParameter", P_DB, "implicitDeny"},
        {"ssm:PutParameter", P_SECRET, "implicitDeny"},
        {"ssm:PutParameter", P_OTHER, "implicitDeny"},
    };
    for (int i = 0; i < 6; i++) {
        cr_assert_str_eq(xml_nth("EvalActionName", i), want[i][0], "member %d", i);
        cr_assert_str_eq(xml_nth("EvalResourceName", i), want[i][1], "member %d", i);
        cr_assert_str_eq(decision(i), want[i][2], "member %d", i);
    }
    cr_assert_null(xml_nth("EvalDecision", 6));
    cr_assert_str_eq(xml("IsTruncated"), "false");
    /* the deciding policy is named for an allow and an explicit deny */
    cr_assert_str_eq(xml_nth("SourcePolicyId", 0), "read");
    cr_assert_str_eq(xml_nth("SourcePolicyId", 1), "read");
    cr_assert_null(xml_nth("SourcePolicyId", 2));
}

Test(al_iam_simulate, no_resource_means_star)
{
    exec_role();
    qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN, "ActionNames.member.1",
        "kms:Decrypt", NULL);
    cr_assert_str_eq(xml("EvalResourceName"), "*");
    cr_assert_str_eq(decision(0), "implicitDeny"); /* the condition has no kms:ViaService */
}

Test(al_iam_simulate, kms_keys_and_context_entries)
{
    exec_role();
    /* no ViaService given: the condition does not match */
    qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN, "ActionNames.member.1",
        "kms:Decrypt", "ResourceArns.member.1", KEY, NULL);
    cr_assert_str_eq(decision(0), "implicitDeny");
    /* given: allowed on identity alone, the key's policy not consulted */
    qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN, "ActionNames.member.1",
        "kms:Decrypt", "ResourceArns.member.1", KEY, "ContextEntries.member.1.ContextKeyName",
        "kms:ViaService", "ContextEntries.member.1.ContextKeyType", "string",
        "ContextEntries.member.1.ContextKeyValues.member.1", "ssm.us-east-1.amazonaws.com", NULL);
    cr_assert_str_eq(decision(0), "allowed");
    qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN, "ActionNames.member.1",
        "kms:Decrypt", "ResourceArns.member.1", KEY, "ContextEntries.member.1.ContextKeyName",
        "kms:ViaService", "ContextEntries.member.1.ContextKeyType", "string",
        "ContextEntries.member.1.ContextKeyValues.member.1",
        "secretsmanager.us-east-1.amazonaws.com", NULL);
    cr_assert_str_eq(decision(0), "implicitDeny");
}

Test(al_iam_simulate, boundary_limits_the_role)
{
    exec_role();
    qok("iam", "CreatePolicy", "PolicyName", "only-db", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:*\","
        "\"Resource\":\"" P_DB "\"}]}",
        NULL);
    qok("iam", "PutRolePermissionsBoundary", "RoleName", "exec", "PermissionsBoundary",
        "arn:aws:iam::123456789012:policy/only-db", NULL);
    qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN, "ActionNames.member.1",
        "secretsmanager:GetSecretValue", "ResourceArns.member.1", P_DB, NULL);
    cr_assert_str_eq(decision(0), "implicitDeny"); /* allowed by identity, outside the boundary */
    qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN, "ActionNames.member.1",
        "ssm:GetParameters", "ResourceArns.member.1", P_DB, NULL);
    cr_assert_str_eq(decision(0), "allowed");
}

Test(al_iam_simulate, users_are_simulated)
{
    qok("iam", "CreateUser", "UserName", "dev", NULL);
    qok("iam", "PutUserPolicy", "UserName", "dev", "PolicyName", "p", "PolicyDocument", policy,
        NULL);
    qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", "arn:aws:iam::123456789012:user/dev",
        "ActionNames.member.1", "ssm:GetParameters", "ResourceArns.member.1", P_DB,
        "ResourceArns.member.2", P_SECRET, NULL);
    cr_assert_str_eq(decision(0), "allowed");
    cr_assert_str_eq(decision(1), "explicitDeny");
    qfail(404, "NoSuchEntity", "iam", "SimulatePrincipalPolicy", "PolicySourceArn",
          "arn:aws:iam::123456789012:user/ghost", "ActionNames.member.1", "ssm:GetParameters",
          NULL);
}

Test(al_iam_simulate, pages)
{
    exec_role();
    char marker[32] = "";
    const char *seen[4];
    char buf[4][32];
    int got = 0;
    for (int page = 0; page < 4; page++) {
        if (page == 0)
            qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
                "ActionNames.member.1", "ssm:GetParameters", "ActionNames.member.2",
                "ssm:PutParameter", "ResourceArns.member.1", P_DB, "ResourceArns.member.2",
                P_SECRET, "MaxItems", "3", NULL);
        else
            qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
                "ActionNames.member.1", "ssm:GetParameters", "ActionNames.member.2",
                "ssm:PutParameter", "ResourceArns.member.1", P_DB, "ResourceArns.member.2",
                P_SECRET, "MaxItems", "3", "Marker", marker, NULL);
        for (int i = 0; decision(i); i++, got++) {
            cr_assert_lt(got, 4);
            snprintf(buf[got], sizeof buf[got], "%s", decision(i));
            seen[got] = buf[got];
        }
        if (strcmp(xml("IsTruncated"), "false") == 0)
            break;
        snprintf(marker, sizeof marker, "%s", xml("Marker"));
    }
    cr_assert_eq(got, 4);
    cr_assert_str_eq(seen[0], "allowed");
    cr_assert_str_eq(seen[1], "explicitDeny");
    cr_assert_str_eq(seen[2], "implicitDeny");
    cr_assert_str_eq(seen[3], "implicitDeny");
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "Marker", "7", NULL);
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "Marker", "x", NULL);
}

Test(al_iam_simulate, refusals)
{
    exec_role();
    qfail(400, "ValidationError", "iam", "SimulatePrincipalPolicy", "ActionNames.member.1",
          "ssm:GetParameters", NULL);
    qfail(400, "ValidationError", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          NULL);
    qfail(404, "NoSuchEntity", "iam", "SimulatePrincipalPolicy", "PolicySourceArn",
          "arn:aws:iam::123456789012:role/ghost", "ActionNames.member.1", "ssm:GetParameters",
          NULL);
    /* the role's name under another path is not the role */
    qfail(404, "NoSuchEntity", "iam", "SimulatePrincipalPolicy", "PolicySourceArn",
          "arn:aws:iam::123456789012:role/team/exec", "ActionNames.member.1", "ssm:GetParameters",
          NULL);
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn",
          "arn:aws:iam::999999999999:role/exec", "ActionNames.member.1", "ssm:GetParameters", NULL);
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn",
          "arn:aws:iam::123456789012:group/g", "ActionNames.member.1", "ssm:GetParameters", NULL);
    cr_assert_not_null(strstr(T.err.message, "role or user"));
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "not an action", NULL);
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:Get*", NULL);
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "ResourceArns.member.1", "not-an-arn", NULL);
    qfail(400, "ValidationError", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "MaxItems", "0", NULL);
    /* what would change the question is refused by name, not ignored */
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "ResourcePolicy", "{}", NULL);
    cr_assert_not_null(strstr(T.err.message, "ResourcePolicy is not supported"));
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "PolicyInputList.member.1", "{}", NULL);
    cr_assert_not_null(strstr(T.err.message, "PolicyInputList is not supported"));
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "CallerArn",
          "arn:aws:iam::123456789012:user/x", NULL);
    /* context entries: a type, one value for a single type, a name */
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "ContextEntries.member.1.ContextKeyName",
          "aws:x", "ContextEntries.member.1.ContextKeyType", "weird",
          "ContextEntries.member.1.ContextKeyValues.member.1", "v", NULL);
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "ContextEntries.member.1.ContextKeyName",
          "aws:x", "ContextEntries.member.1.ContextKeyType", "string",
          "ContextEntries.member.1.ContextKeyValues.member.1", "a",
          "ContextEntries.member.1.ContextKeyValues.member.2", "b", NULL);
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "ContextEntries.member.1.ContextKeyType",
          "string", "ContextEntries.member.1.ContextKeyValues.member.1", "a", NULL);
    qfail(400, "InvalidInput", "iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
          "ActionNames.member.1", "ssm:GetParameters", "ContextEntries.member.1.ContextKeyName",
          "aws:x", "ContextEntries.member.1.ContextKeyType", "string", NULL);
}

Test(al_iam_simulate, bounds)
{
    exec_role();
    /* 101 actions: one past the bound */
    es_buf body;
    es_buf_init(&body, 1u << 20);
    form_add(&body, "Action", "SimulatePrincipalPolicy");
    form_add(&body, "Version", "2010-05-08");
    form_add(&body, "PolicySourceArn", ROLE_ARN);
    for (int i = 1; i <= 101; i++) {
        char k[64];
        snprintf(k, sizeof k, "ActionNames.member.%d", i);
        form_add(&body, k, "ssm:GetParameters");
    }
    es_buf_reset(&T.out);
    cr_assert_lt(al_query_dispatch(T.ctx, "iam", ROOT, body.data, body.len, &T.out, &T.err), 0);
    cr_assert_str_eq(T.err.code, "InvalidInput");
    cr_assert_not_null(strstr(T.err.message, "At most 100 ActionNames"));
    /* 100 actions x 10 resources: 1000 results, paged by MaxItems 1000 */
    es_buf_reset(&body);
    form_add(&body, "Action", "SimulatePrincipalPolicy");
    form_add(&body, "Version", "2010-05-08");
    form_add(&body, "PolicySourceArn", ROLE_ARN);
    form_add(&body, "MaxItems", "1000");
    for (int i = 1; i <= 100; i++) {
        char k[64];
        snprintf(k, sizeof k, "ActionNames.member.%d", i);
        form_add(&body, k, "ssm:GetParameters");
    }
    for (int i = 1; i <= 10; i++) {
        char k[64], v[128];
        snprintf(k, sizeof k, "ResourceArns.member.%d", i);
        snprintf(v, sizeof v, "arn:aws:ssm:us-east-1:123456789012:parameter/app/p%d", i);
        form_add(&body, k, v);
    }
    es_buf_reset(&T.out);
    cr_assert_eq(al_query_dispatch(T.ctx, "iam", ROOT, body.data, body.len, &T.out, &T.err), 0,
                 "%s", T.err.message);
    cr_assert_str_eq(xml_nth("EvalDecision", 999), "allowed");
    cr_assert_null(xml_nth("EvalDecision", 1000));
    cr_assert_str_eq(xml("IsTruncated"), "false");
    es_buf_free(&body);
}

Test(al_iam_simulate, the_caller_must_be_allowed)
{
    al_authz_install(T.ctx);
    exec_role();
    make_role("viewer", ECS_TRUST);
    int st =
        qcall("iam", "arn:aws:sts::123456789012:assumed-role/viewer/s", "SimulatePrincipalPolicy",
              "PolicySourceArn", ROLE_ARN, "ActionNames.member.1", "ssm:GetParameters", NULL);
    cr_assert_eq(st, 403);
    cr_assert_str_eq(T.err.code, "AccessDenied");
    cr_assert_not_null(strstr(T.err.message, "iam:SimulatePrincipalPolicy on resource: " ROLE_ARN));
    qok("iam", "PutRolePolicy", "RoleName", "viewer", "PolicyName", "sim", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"iam:SimulatePrincipalPolicy\",\"Resource\":\"" ROLE_ARN "\"}]}",
        NULL);
    cr_assert_eq(qcall("iam", "arn:aws:sts::123456789012:assumed-role/viewer/s",
                       "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
                       "ActionNames.member.1", "ssm:GetParameters", "ResourceArns.member.1", P_DB,
                       NULL),
                 0);
    cr_assert_str_eq(decision(0), "allowed");
}

/* The simulator and the preflight's in-process decision agree on identity
 * policies: a preflight against the store node decides what it would here. */
Test(al_iam_simulate, agrees_with_the_in_process_preflight)
{
    exec_role();
    const char *res[] = {P_DB, P_SECRET, P_OTHER};
    const char *act[] = {"ssm:GetParameters", "secretsmanager:GetSecretValue", "ssm:PutParameter"};
    for (size_t a = 0; a < 3; a++)
        for (size_t r = 0; r < 3; r++) {
            qok("iam", "SimulatePrincipalPolicy", "PolicySourceArn", ROLE_ARN,
                "ActionNames.member.1", act[a], "ResourceArns.member.1", res[r], NULL);
            bool sim = strcmp(decision(0), "allowed") == 0;
            bool pre = al_role_may(T.ctx, "123456789012", ROLE_ARN, act[a], res[r], NULL) == 0;
            cr_assert_eq(sim, pre, "%s on %s: simulator %s, preflight %s", act[a], res[r],
                         decision(0), pre ? "allowed" : "denied");
        }
}
