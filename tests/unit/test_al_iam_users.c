/* The embedded IAM's users, groups and access keys, and the STS actions
 * that serve users: every action, its validation and IAM's codes, the
 * quotas, DeleteConflict, inactive keys, and a group's policy in force. */
#include "iam_helpers.h"

#include <stdarg.h>

#include "aws/local/auth.h"
#include "aws/local/internal.h"
#include "aws/sigv4.h"
#include "common/alloc.h"

TestSuite(al_iam_users, .init = alt_setup, .fini = alt_teardown);

#define OPERATOR "arn:aws:iam::123456789012:user/operator"
#define ALLOW(action, resource)                                                                    \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"" action        \
    "\",\"Resource\":\"" resource "\"}]}"
#define PARAM "arn:aws:ssm:us-east-2:123456789012:parameter/app/db"

/* Signs body for service with the key and serves it (al_query_serve). */
static int serve(const char *akid, const char *secret, const char *token, const char *service,
                 const char *body)
{
    aw_header h[8];
    size_t n = 0;
    h[n++] = (aw_header){"Host", "127.0.0.1:4577"};
    h[n++] = (aw_header){"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
    if (token)
        h[n++] = (aw_header){"X-Amz-Security-Token", token};
    char hash[65], date[17];
    aw_sigv4_sha256_hex(body, strlen(body), hash);
    aw_sigv4_input in = {"POST", "/", NULL, h, n, hash, false};
    aw_signer *s = aw_signer_create();
    aw_sigv4_creds creds = {akid, secret, token};
    aw_sigv4_result res;
    cr_assert_eq(aw_signer_sign(s, &creds, "us-east-2", service, 1700000000, &in, &res), 0);
    aw_signer_free(s);
    memcpy(date, res.amz_date, sizeof date);
    h[n++] = (aw_header){"X-Amz-Date", date};
    h[n++] = (aw_header){"Authorization", es_buf_cstr(&res.authorization)};
    al_request rq = {"POST", "/", NULL, h, n, body, strlen(body)};
    es_buf_reset(&T.out);
    int st = al_query_serve(T.ctx, &rq, 1700000000, &T.out);
    es_buf_free_secret(&res.authorization);
    return st;
}

/* The user's new key into akid/secret. */
static void new_key(const char *user, char akid[32], char secret[64])
{
    qok("iam", "CreateAccessKey", "UserName", user, NULL);
    snprintf(akid, 32, "%s", xml("AccessKeyId"));
    snprintf(secret, 64, "%s", xml("SecretAccessKey"));
}

static int may(const char *principal, const char *action, const char *resource)
{
    char why[512];
    return al_authz_check(T.ctx, principal, action, resource, why, sizeof why);
}

Test(al_iam_users, create_get_list_delete_user)
{
    qok("iam", "CreateUser", "UserName", "operator", "Tags.member.1.Key", "team",
        "Tags.member.1.Value", "ops", NULL);
    cr_assert_not_null(
        strstr(es_buf_cstr(&T.out), "<CreateUserResult><User><Path>/</Path><UserName>operator<"));
    cr_assert_str_eq(xml("Arn"), OPERATOR);
    cr_assert_eq(strncmp(xml("UserId"), "AIDA", 4), 0);
    cr_assert_eq(strlen(xml("UserId")), 21);
    cr_assert_str_eq(xml("Key"), "team");
    cr_assert_str_eq(xml("Value"), "ops");
    qok("iam", "GetUser", "UserName", "OPERATOR", NULL);
    cr_assert_str_eq(xml("UserName"), "operator", "names are case-insensitive");
    qok("iam", "CreateUser", "UserName", "dev", "Path", "/team/", NULL);
    cr_assert_str_eq(xml("Arn"), "arn:aws:iam::123456789012:user/team/dev");
    qok("iam", "ListUsers", NULL);
    cr_assert_str_eq(xml_nth("UserName", 0), "dev");
    cr_assert_str_eq(xml_nth("UserName", 1), "operator");
    cr_assert_str_eq(xml("IsTruncated"), "false");
    qok("iam", "ListUsers", "PathPrefix", "/team/", NULL);
    cr_assert_str_eq(xml_nth("UserName", 0), "dev");
    cr_assert_null(xml_nth("UserName", 1));
    qok("iam", "ListUsers", "MaxItems", "1", NULL);
    cr_assert_str_eq(xml("IsTruncated"), "true");
    cr_assert_str_eq(xml("Marker"), "dev");
    qok("iam", "ListUsers", "Marker", "dev", NULL);
    cr_assert_str_eq(xml_nth("UserName", 0), "operator");
    /* GetUser without a name: the caller */
    cr_assert_eq(qcall("iam", OPERATOR, "GetUser", NULL), 0);
    cr_assert_str_eq(xml("UserName"), "operator");
    qok("iam", "GetUser", NULL);
    cr_assert_str_eq(xml("Arn"), ROOT);
    cr_assert_str_eq(xml("UserId"), "123456789012");
    cr_assert_eq(qcall("iam", "arn:aws:sts::123456789012:assumed-role/r/s", "GetUser", NULL), 400);
    cr_assert_str_eq(T.err.message, "Must specify userName when calling with non-User credentials");
    qok("iam", "DeleteUser", "UserName", "dev", NULL);
    qfail(404, "NoSuchEntity", "iam", "GetUser", "UserName", "dev", NULL);
    cr_assert_str_eq(T.err.message, "The user with name dev cannot be found.");
}

Test(al_iam_users, user_validation)
{
    qok("iam", "CreateUser", "UserName", "dup", NULL);
    qfail(409, "EntityAlreadyExists", "iam", "CreateUser", "UserName", "DUP", NULL);
    cr_assert_str_eq(T.err.message, "User with name DUP already exists.");
    qfail(400, "ValidationError", "iam", "CreateUser", NULL);
    cr_assert_str_eq(T.err.message, "1 validation error detected: Value null at 'userName' "
                                    "failed to satisfy constraint: Member must not be null");
    qfail(400, "ValidationError", "iam", "CreateUser", "UserName", "a/b", NULL);
    cr_assert_not_null(strstr(T.err.message, "at 'userName'"));
    char name[80];
    memset(name, 'u', 65);
    name[65] = 0;
    qfail(400, "ValidationError", "iam", "CreateUser", "UserName", name, NULL);
    cr_assert_not_null(strstr(T.err.message, "length 1..64"));
    name[64] = 0;
    qok("iam", "CreateUser", "UserName", name, NULL);
    qfail(400, "ValidationError", "iam", "CreateUser", "UserName", "p", "Path", "nope", NULL);
    cr_assert_not_null(strstr(T.err.message, "at 'path'"));
    qfail(400, "ValidationError", "iam", "CreateUser", "UserName", "t", "Tags.member.1.Key", "",
          "Tags.member.1.Value", "v", NULL);
    cr_assert_not_null(strstr(T.err.message, "at 'tags.1.member.key'"));
    qfail(400, "InvalidInput", "iam", "CreateUser", "UserName", "t", "Tags.member.1.Key", "k",
          "Tags.member.1.Value", "v", "Tags.member.2.Key", "K", "Tags.member.2.Value", "w", NULL);
    qfail(400, "ValidationError", "iam", "ListUsers", "MaxItems", "0", NULL);
    cr_assert_not_null(strstr(T.err.message, "at 'maxItems'"));
    qfail(400, "ValidationError", "iam", "ListUsers", "PathPrefix", "x", NULL);
    cr_assert_not_null(strstr(T.err.message, "at 'pathPrefix'"));
    qfail(404, "NoSuchEntity", "iam", "DeleteUser", "UserName", "ghost", NULL);
}

Test(al_iam_users, access_keys_and_their_limit)
{
    qok("iam", "CreateUser", "UserName", "operator", NULL);
    char a1[32], s1[64], a2[32], s2[64];
    new_key("operator", a1, s1);
    cr_assert_eq(strlen(a1), 20);
    cr_assert_eq(strncmp(a1, "AKIA", 4), 0);
    cr_assert_eq(strlen(s1), 40);
    cr_assert_str_eq(xml("Status"), "Active");
    new_key("operator", a2, s2);
    qfail(409, "LimitExceeded", "iam", "CreateAccessKey", "UserName", "operator", NULL);
    cr_assert_str_eq(T.err.message, "Cannot exceed quota for AccessKeysPerUser: 2");
    qok("iam", "ListAccessKeys", "UserName", "operator", NULL);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), a1));
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), a2));
    cr_assert_null(strstr(es_buf_cstr(&T.out), s1), "no secret in a listing");
    /* the secret is stored wrapped */
    sqlite3 *h = al_db_handle(T.ctx->db);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT wrapped, principal FROM iam_access_key WHERE akid=?",
                                    -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_null(memmem(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), s1, 40));
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 1), OPERATOR);
    sqlite3_finalize(st);
    qfail(409, "DeleteConflict", "iam", "DeleteUser", "UserName", "operator", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must delete access keys first.");
    qfail(400, "ValidationError", "iam", "UpdateAccessKey", "UserName", "operator", "AccessKeyId",
          a1, "Status", "Off", NULL);
    cr_assert_not_null(strstr(T.err.message, "at 'status'"));
    qfail(400, "ValidationError", "iam", "DeleteAccessKey", "UserName", "operator", "AccessKeyId",
          "short", NULL);
    cr_assert_not_null(strstr(T.err.message, "at 'accessKeyId'"));
    qfail(404, "NoSuchEntity", "iam", "DeleteAccessKey", "UserName", "operator", "AccessKeyId",
          "AKIAAAAAAAAAAAAAAAAA", NULL);
    cr_assert_str_eq(T.err.message, "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.");
    qok("iam", "DeleteAccessKey", "UserName", "operator", "AccessKeyId", a1, NULL);
    /* the caller's own keys without UserName */
    cr_assert_eq(qcall("iam", OPERATOR, "ListAccessKeys", NULL), 0);
    cr_assert_null(strstr(es_buf_cstr(&T.out), a1));
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), a2));
    qfail(400, "ValidationError", "iam", "CreateAccessKey", NULL);
    qok("iam", "DeleteAccessKey", "UserName", "operator", "AccessKeyId", a2, NULL);
    qok("iam", "DeleteUser", "UserName", "operator", NULL);
}

Test(al_iam_users, inactive_key_is_refused_as_invalid)
{
    al_authz_install(T.ctx);
    qok("iam", "CreateUser", "UserName", "operator", NULL);
    char akid[32], secret[64];
    new_key("operator", akid, secret);
    const char *body = "Action=GetCallerIdentity&Version=2011-06-15";
    cr_assert_eq(serve(akid, secret, NULL, "sts", body), 200, "%s", es_buf_cstr(&T.out));
    cr_assert_str_eq(xml("Arn"), OPERATOR);
    qok("iam", "UpdateAccessKey", "UserName", "operator", "AccessKeyId", akid, "Status", "Inactive",
        NULL);
    qok("iam", "ListAccessKeys", "UserName", "operator", NULL);
    cr_assert_str_eq(xml("Status"), "Inactive");
    cr_assert_eq(serve(akid, secret, NULL, "sts", body), 403);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "<Code>InvalidClientTokenId</Code>"));
    cr_assert_not_null(
        strstr(es_buf_cstr(&T.out), "The security token included in the request is invalid."));
    qok("iam", "UpdateAccessKey", "UserName", "operator", "AccessKeyId", akid, "Status", "Active",
        NULL);
    cr_assert_eq(serve(akid, secret, NULL, "sts", body), 200);
}

Test(al_iam_users, user_policies_inline_and_attached)
{
    qok("iam", "CreateUser", "UserName", "operator", NULL);
    qok("iam", "PutUserPolicy", "UserName", "operator", "PolicyName", "read", "PolicyDocument",
        ALLOW("ssm:GetParameters", PARAM), NULL);
    qok("iam", "GetUserPolicy", "UserName", "operator", "PolicyName", "READ", NULL);
    cr_assert_str_eq(xml("UserName"), "operator");
    cr_assert_str_eq(xml("PolicyName"), "read");
    qok("iam", "ListUserPolicies", "UserName", "operator", NULL);
    cr_assert_str_eq(xml("member"), "read");
    qfail(400, "MalformedPolicyDocument", "iam", "PutUserPolicy", "UserName", "operator",
          "PolicyName", "bad", "PolicyDocument", "{nope", NULL);
    qfail(404, "NoSuchEntity", "iam", "GetUserPolicy", "UserName", "operator", "PolicyName", "x",
          NULL);
    cr_assert_str_eq(T.err.message, "The user policy with name x cannot be found.");
    qfail(404, "NoSuchEntity", "iam", "PutUserPolicy", "UserName", "ghost", "PolicyName", "p",
          "PolicyDocument", ALLOW("ssm:GetParameters", "*"), NULL);
    qfail(409, "DeleteConflict", "iam", "DeleteUser", "UserName", "operator", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must delete policies first.");
    qok("iam", "DeleteUserPolicy", "UserName", "operator", "PolicyName", "read", NULL);
    qfail(404, "NoSuchEntity", "iam", "DeleteUserPolicy", "UserName", "operator", "PolicyName",
          "read", NULL);
    qok("iam", "AttachUserPolicy", "UserName", "operator", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qok("iam", "ListAttachedUserPolicies", "UserName", "operator", NULL);
    cr_assert_str_eq(xml("PolicyArn"), EXEC_POLICY_ARN);
    qfail(404, "NoSuchEntity", "iam", "AttachUserPolicy", "UserName", "operator", "PolicyArn",
          "arn:aws:iam::123456789012:policy/none", NULL);
    qfail(409, "DeleteConflict", "iam", "DeleteUser", "UserName", "operator", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must detach all policies first.");
    qok("iam", "DetachUserPolicy", "UserName", "operator", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qfail(404, "NoSuchEntity", "iam", "DetachUserPolicy", "UserName", "operator", "PolicyArn",
          EXEC_POLICY_ARN, NULL);
    qok("iam", "DeleteUser", "UserName", "operator", NULL);
}

/* Inline policies count together: 2048 characters for a user, 5120 for a
 * group (whitespace not counted); 10 managed policies each. */
Test(al_iam_users, policy_quotas)
{
    qok("iam", "CreateUser", "UserName", "u", NULL);
    qok("iam", "CreateGroup", "GroupName", "g", NULL);
    char doc[4096], res[1200];
    memset(res, 'r', 1000);
    res[1000] = 0;
    snprintf(doc, sizeof doc, ALLOW("s3:GetObject", "arn:aws:s3:::%s"), res);
    qok("iam", "PutUserPolicy", "UserName", "u", "PolicyName", "a", "PolicyDocument", doc, NULL);
    qok("iam", "PutUserPolicy", "UserName", "u", "PolicyName", "a", "PolicyDocument", doc, NULL);
    qfail(409, "LimitExceeded", "iam", "PutUserPolicy", "UserName", "u", "PolicyName", "b",
          "PolicyDocument", doc, NULL);
    cr_assert_str_eq(T.err.message, "Maximum policy size of 2048 bytes exceeded for user u");
    for (const char *n = "abcd"; *n; n++) {
        char pn[2] = {*n, 0};
        qok("iam", "PutGroupPolicy", "GroupName", "g", "PolicyName", pn, "PolicyDocument", doc,
            NULL);
        if (*n == 'd')
            break;
    }
    qfail(409, "LimitExceeded", "iam", "PutGroupPolicy", "GroupName", "g", "PolicyName", "e",
          "PolicyDocument", doc, NULL);
    cr_assert_str_eq(T.err.message, "Maximum policy size of 5120 bytes exceeded for group g");
    for (int i = 0; i < 11; i++) {
        char arn[128], pn[16];
        snprintf(pn, sizeof pn, "m%d", i);
        qok("iam", "CreatePolicy", "PolicyName", pn, "PolicyDocument", ALLOW("s3:GetObject", "*"),
            NULL);
        snprintf(arn, sizeof arn, "arn:aws:iam::123456789012:policy/%s", pn);
        if (i < 10) {
            qok("iam", "AttachGroupPolicy", "GroupName", "g", "PolicyArn", arn, NULL);
        } else {
            qfail(409, "LimitExceeded", "iam", "AttachGroupPolicy", "GroupName", "g", "PolicyArn",
                  arn, NULL);
            cr_assert_str_eq(T.err.message, "Cannot exceed quota for PoliciesPerGroup: 10");
        }
    }
    qfail(409, "DeleteConflict", "iam", "DeletePolicy", "PolicyArn",
          "arn:aws:iam::123456789012:policy/m0", NULL);
}

Test(al_iam_users, groups_and_members)
{
    qok("iam", "CreateUser", "UserName", "operator", NULL);
    qok("iam", "CreateGroup", "GroupName", "readers", "Path", "/ops/", NULL);
    cr_assert_str_eq(xml("Arn"), "arn:aws:iam::123456789012:group/ops/readers");
    cr_assert_eq(strncmp(xml("GroupId"), "AGPA", 4), 0);
    qfail(409, "EntityAlreadyExists", "iam", "CreateGroup", "GroupName", "Readers", NULL);
    cr_assert_str_eq(T.err.message, "Group with name Readers already exists.");
    char name[140];
    memset(name, 'g', 129);
    name[129] = 0;
    qfail(400, "ValidationError", "iam", "CreateGroup", "GroupName", name, NULL);
    cr_assert_not_null(strstr(T.err.message, "at 'groupName'"));
    name[128] = 0;
    qok("iam", "CreateGroup", "GroupName", name, NULL);
    qok("iam", "AddUserToGroup", "GroupName", "readers", "UserName", "operator", NULL);
    qok("iam", "AddUserToGroup", "GroupName", "readers", "UserName", "operator", NULL);
    qfail(404, "NoSuchEntity", "iam", "AddUserToGroup", "GroupName", "readers", "UserName", "ghost",
          NULL);
    qfail(404, "NoSuchEntity", "iam", "AddUserToGroup", "GroupName", "ghost", "UserName",
          "operator", NULL);
    cr_assert_str_eq(T.err.message, "The group with name ghost cannot be found.");
    qok("iam", "GetGroup", "GroupName", "readers", NULL);
    cr_assert_str_eq(xml("GroupName"), "readers");
    cr_assert_str_eq(xml("UserName"), "operator");
    qok("iam", "ListGroupsForUser", "UserName", "operator", NULL);
    cr_assert_str_eq(xml("GroupName"), "readers");
    qok("iam", "ListGroups", "PathPrefix", "/ops/", NULL);
    cr_assert_str_eq(xml_nth("GroupName", 0), "readers");
    cr_assert_null(xml_nth("GroupName", 1));
    qok("iam", "PutGroupPolicy", "GroupName", "readers", "PolicyName", "p", "PolicyDocument",
        ALLOW("ssm:GetParameters", "*"), NULL);
    qok("iam", "GetGroupPolicy", "GroupName", "readers", "PolicyName", "p", NULL);
    cr_assert_str_eq(xml("GroupName"), "readers");
    qok("iam", "ListGroupPolicies", "GroupName", "readers", NULL);
    cr_assert_str_eq(xml("member"), "p");
    qok("iam", "AttachGroupPolicy", "GroupName", "readers", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qok("iam", "ListAttachedGroupPolicies", "GroupName", "readers", NULL);
    cr_assert_str_eq(xml("PolicyArn"), EXEC_POLICY_ARN);
    qfail(409, "DeleteConflict", "iam", "DeleteUser", "UserName", "operator", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must remove users from group first.");
    qfail(409, "DeleteConflict", "iam", "DeleteGroup", "GroupName", "readers", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must remove users from group first.");
    qok("iam", "RemoveUserFromGroup", "GroupName", "readers", "UserName", "operator", NULL);
    qfail(404, "NoSuchEntity", "iam", "RemoveUserFromGroup", "GroupName", "readers", "UserName",
          "operator", NULL);
    qfail(409, "DeleteConflict", "iam", "DeleteGroup", "GroupName", "readers", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must delete policies first.");
    qok("iam", "DeleteGroupPolicy", "GroupName", "readers", "PolicyName", "p", NULL);
    qfail(409, "DeleteConflict", "iam", "DeleteGroup", "GroupName", "readers", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must detach all policies first.");
    qok("iam", "DetachGroupPolicy", "GroupName", "readers", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qok("iam", "DeleteGroup", "GroupName", "readers", NULL);
    qfail(404, "NoSuchEntity", "iam", "GetGroup", "GroupName", "readers", NULL);
    qok("iam", "DeleteUser", "UserName", "operator", NULL);
}

Test(al_iam_users, a_users_policies_and_its_groups_authorise_it)
{
    al_authz_install(T.ctx);
    qok("iam", "CreateUser", "UserName", "operator", NULL);
    cr_assert_eq(may(OPERATOR, "ssm:GetParameters", PARAM), -EACCES);
    char why[512];
    cr_assert_eq(al_authz_check(T.ctx, OPERATOR, "ssm:GetParameters", PARAM, why, sizeof why),
                 -EACCES);
    cr_assert_str_eq(why, "User: " OPERATOR " is not authorized to perform: ssm:GetParameters on "
                          "resource: " PARAM " because no identity-based policy allows the "
                          "ssm:GetParameters action");
    qok("iam", "CreateGroup", "GroupName", "readers", NULL);
    qok("iam", "PutGroupPolicy", "GroupName", "readers", "PolicyName", "p", "PolicyDocument",
        ALLOW("ssm:GetParameters", PARAM), NULL);
    cr_assert_eq(may(OPERATOR, "ssm:GetParameters", PARAM), -EACCES, "not a member yet");
    qok("iam", "AddUserToGroup", "GroupName", "readers", "UserName", "operator", NULL);
    cr_assert_eq(may(OPERATOR, "ssm:GetParameters", PARAM), 0, "the group's inline policy");
    qok("iam", "RemoveUserFromGroup", "GroupName", "readers", "UserName", "operator", NULL);
    cr_assert_eq(may(OPERATOR, "ssm:GetParameters", PARAM), -EACCES);
    /* a group's attached managed policy */
    qok("iam", "CreatePolicy", "PolicyName", "run", "PolicyDocument", ALLOW("ecs:RunTask", "*"),
        NULL);
    qok("iam", "AttachGroupPolicy", "GroupName", "readers", "PolicyArn",
        "arn:aws:iam::123456789012:policy/run", NULL);
    qok("iam", "AddUserToGroup", "GroupName", "readers", "UserName", "operator", NULL);
    cr_assert_eq(may(OPERATOR, "ecs:RunTask", "*"), 0);
    /* the user's own: an explicit deny wins over the group's allow */
    qok("iam", "PutUserPolicy", "UserName", "operator", "PolicyName", "no", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":"
        "\"ecs:RunTask\",\"Resource\":\"*\"}]}",
        NULL);
    cr_assert_eq(may(OPERATOR, "ecs:RunTask", "*"), -EACCES);
    /* another path under the same name is another principal */
    cr_assert_eq(may("arn:aws:iam::123456789012:user/x/operator", "ssm:GetParameters", PARAM),
                 -EACCES);
    /* IAM's own actions are authorised: the user may not make users */
    cr_assert_eq(qcall("iam", OPERATOR, "CreateUser", "UserName", "x", NULL), 403);
    cr_assert_str_eq(T.err.code, "AccessDenied");
    cr_assert_not_null(strstr(T.err.message, "iam:CreateUser on resource: "
                                             "arn:aws:iam::123456789012:user/x"));
    /* nor learn whether a user exists */
    cr_assert_eq(qcall("iam", OPERATOR, "GetUser", "UserName", "ghost", NULL), 403);
    qok("iam", "PutUserPolicy", "UserName", "operator", "PolicyName", "iam", "PolicyDocument",
        ALLOW("iam:GetUser", "*"), NULL);
    cr_assert_eq(qcall("iam", OPERATOR, "GetUser", "UserName", "ghost", NULL), 404);
}

Test(al_iam_users, get_session_token)
{
    al_authz_install(T.ctx);
    qok("iam", "CreateUser", "UserName", "operator", NULL);
    qok("iam", "PutUserPolicy", "UserName", "operator", "PolicyName", "p", "PolicyDocument",
        ALLOW("sts:GetAccessKeyInfo", "*"), NULL);
    char akid[32], secret[64];
    new_key("operator", akid, secret);
    cr_assert_eq(serve(akid, secret, NULL, "sts",
                       "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=899"),
                 400);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out),
                              "Value &apos;899&apos; at &apos;durationSeconds&apos; failed to "
                              "satisfy constraint: Member must have value greater than or equal "
                              "to 900") ||
                           strstr(es_buf_cstr(&T.out), "'899' at 'durationSeconds'"),
                       "%s", es_buf_cstr(&T.out));
    cr_assert_eq(serve(akid, secret, NULL, "sts",
                       "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=129601"),
                 400);
    cr_assert_eq(serve(akid, secret, NULL, "sts", "Action=GetSessionToken&Version=2011-06-15"), 200,
                 "%s", es_buf_cstr(&T.out));
    cr_assert_str_eq(xml("Expiration"), "2023-11-15T10:13:20Z", "43200 s by default");
    char sa[32], ss[64], tok[256];
    snprintf(sa, sizeof sa, "%s", xml("AccessKeyId"));
    snprintf(ss, sizeof ss, "%s", xml("SecretAccessKey"));
    snprintf(tok, sizeof tok, "%s", xml("SessionToken"));
    cr_assert_eq(strncmp(sa, "ASIA", 4), 0);
    /* the session acts as the user */
    cr_assert_eq(serve(sa, ss, tok, "sts", "Action=GetCallerIdentity&Version=2011-06-15"), 200);
    cr_assert_str_eq(xml("Arn"), OPERATOR);
    char body[128];
    snprintf(body, sizeof body, "Action=GetAccessKeyInfo&Version=2011-06-15&AccessKeyId=%s", akid);
    cr_assert_eq(serve(sa, ss, tok, "sts", body), 200, "%s", es_buf_cstr(&T.out));
    cr_assert_str_eq(xml("Account"), "123456789012");
    /* not with session credentials */
    cr_assert_eq(serve(sa, ss, tok, "sts", "Action=GetSessionToken&Version=2011-06-15"), 403);
    cr_assert_not_null(
        strstr(es_buf_cstr(&T.out), "Cannot call GetSessionToken with session credentials"));
    /* the root's are cut to an hour */
    qok("sts", "GetSessionToken", "DurationSeconds", "7200", NULL);
    cr_assert_str_eq(xml("Expiration"), "2023-11-14T23:13:20Z");
    cr_assert_eq(
        qcall("sts", "arn:aws:sts::123456789012:assumed-role/r/s", "GetSessionToken", NULL), 403);
    /* a deleted user's session no longer verifies */
    qok("iam", "DeleteUserPolicy", "UserName", "operator", "PolicyName", "p", NULL);
    qok("iam", "DeleteAccessKey", "UserName", "operator", "AccessKeyId", akid, NULL);
    qok("iam", "DeleteUser", "UserName", "operator", NULL);
    cr_assert_eq(serve(sa, ss, tok, "sts", "Action=GetCallerIdentity&Version=2011-06-15"), 403);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "InvalidClientTokenId"));
}

Test(al_iam_users, get_access_key_info)
{
    al_authz_install(T.ctx);
    qok("iam", "CreateUser", "UserName", "operator", NULL);
    char akid[32], secret[64];
    new_key("operator", akid, secret);
    qok("sts", "GetAccessKeyInfo", "AccessKeyId", akid, NULL);
    cr_assert_str_eq(xml("Account"), "123456789012");
    qfail(400, "ValidationError", "sts", "GetAccessKeyInfo", NULL);
    qfail(400, "ValidationError", "sts", "GetAccessKeyInfo", "AccessKeyId", "AKIA-bad-id-000000",
          NULL);
    qfail(400, "ValidationError", "sts", "GetAccessKeyInfo", "AccessKeyId", "AKIASHORT", NULL);
    qfail(400, "InvalidParameterValue", "sts", "GetAccessKeyInfo", "AccessKeyId",
          "AKIAIOSFODNN7EXAMPLE", NULL);
    /* it needs sts:GetAccessKeyInfo */
    cr_assert_eq(qcall("sts", OPERATOR, "GetAccessKeyInfo", "AccessKeyId", akid, NULL), 403);
    cr_assert_str_eq(T.err.code, "AccessDenied");
}

Test(al_iam_users, decode_authorization_message)
{
    al_authz_install(T.ctx);
    qok("iam", "CreateUser", "UserName", "operator", NULL);
    es_buf enc;
    es_buf_init(&enc, 1u << 16);
    cr_assert_eq(al_authz_message_encode(T.ctx, OPERATOR, "ssm:GetParameters", PARAM, &enc), 0);
    qok("sts", "DecodeAuthorizationMessage", "EncodedMessage", es_buf_cstr(&enc), NULL);
    const char *m = xml("DecodedMessage");
    cr_assert_not_null(strstr(m, "&quot;allowed&quot;:false"), "%s", m);
    cr_assert_not_null(strstr(m, "&quot;explicitDeny&quot;:false"));
    cr_assert_not_null(strstr(m, "&quot;matchedStatements&quot;"));
    cr_assert_not_null(strstr(m, "&quot;arn&quot;:&quot;" OPERATOR "&quot;"));
    cr_assert_not_null(strstr(m, "&quot;action&quot;:&quot;ssm:GetParameters&quot;"));
    cr_assert_not_null(strstr(m, "&quot;resource&quot;:&quot;" PARAM "&quot;"));
    /* it needs sts:DecodeAuthorizationMessage */
    cr_assert_eq(qcall("sts", OPERATOR, "DecodeAuthorizationMessage", "EncodedMessage",
                       es_buf_cstr(&enc), NULL),
                 403);
    /* garbled: one character changed, not base64, empty, too long */
    char *bad = es_strdup(es_buf_cstr(&enc));
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    qfail(400, "InvalidAuthorizationMessageException", "sts", "DecodeAuthorizationMessage",
          "EncodedMessage", bad, NULL);
    es_free(bad);
    qfail(400, "InvalidAuthorizationMessageException", "sts", "DecodeAuthorizationMessage",
          "EncodedMessage", "not base64!", NULL);
    qfail(400, "InvalidAuthorizationMessageException", "sts", "DecodeAuthorizationMessage",
          "EncodedMessage", "AAAA", NULL);
    qfail(400, "ValidationError", "sts", "DecodeAuthorizationMessage", "EncodedMessage", "", NULL);
    qfail(400, "ValidationError", "sts", "DecodeAuthorizationMessage", NULL);
    es_buf_free(&enc);
}
