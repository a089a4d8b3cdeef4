/* The embedded IAM: every action and its errors, the AWS managed policy,
 * roles declared in files. */
#include "iam_helpers.h"

#include <stdarg.h>

TestSuite(al_iam, .init = alt_setup, .fini = alt_teardown);

#define INLINE                                                                                     \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"                 \
    "\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:us-east-2:123456789012:parameter/x\"}]}"

Test(al_iam, create_get_role)
{
    const char *x =
        qok("iam", "CreateRole", "RoleName", "app-exec", "AssumeRolePolicyDocument", ECS_TRUST,
            "Description", "runs <app> & co", "MaxSessionDuration", "7200", NULL);
    cr_assert_not_null(strstr(x, "<CreateRoleResult><Role><Path>/</Path><RoleName>app-exec<"));
    const char *id = xml("RoleId");
    cr_assert_eq(strlen(id), 21);
    cr_assert_eq(strncmp(id, "AROA", 4), 0);
    for (const char *p = id + 4; *p; p++)
        cr_assert((*p >= 'A' && *p <= 'Z') || (*p >= '2' && *p <= '7'));
    char first_id[32];
    snprintf(first_id, sizeof first_id, "%s", id);
    cr_assert_str_eq(xml("Arn"), "arn:aws:iam::123456789012:role/app-exec");
    cr_assert_str_eq(xml("Description"), "runs &lt;app&gt; &amp; co");
    cr_assert_str_eq(xml("MaxSessionDuration"), "7200");
    cr_assert_str_eq(xml("CreateDate"), "2023-11-14T22:13:20Z");
    char doc[4096];
    snprintf(doc, sizeof doc, "%s", xml("AssumeRolePolicyDocument"));
    cr_assert_null(strchr(doc, '{'), "documents are URL-encoded");
    cr_assert_str_eq(urldecode(doc), ECS_TRUST);

    qok("iam", "GetRole", "RoleName", "APP-EXEC", NULL);
    cr_assert_str_eq(xml("RoleName"), "app-exec", "names are case-insensitive");
    cr_assert_str_eq(xml("RoleId"), first_id);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "<RoleLastUsed></RoleLastUsed>"));

    qok("iam", "CreateRole", "RoleName", "pathed", "Path", "/team/a/", "AssumeRolePolicyDocument",
        ECS_TRUST, NULL);
    cr_assert_str_eq(xml("Arn"), "arn:aws:iam::123456789012:role/team/a/pathed");
    cr_assert_str_eq(xml("MaxSessionDuration"), "3600");
}

Test(al_iam, create_role_errors)
{
    make_role("dup", ECS_TRUST);
    qfail(409, "EntityAlreadyExists", "iam", "CreateRole", "RoleName", "DUP",
          "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    cr_assert_str_eq(T.err.message, "Role with name DUP already exists.");
    qfail(400, "ValidationError", "iam", "CreateRole", "RoleName", "bad/name",
          "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    cr_assert_not_null(strstr(T.err.message, "'roleName'"));
    char longname[70];
    memset(longname, 'a', 65);
    longname[65] = 0;
    qfail(400, "ValidationError", "iam", "CreateRole", "RoleName", longname,
          "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    longname[64] = 0;
    make_role(longname, ECS_TRUST);
    qfail(400, "ValidationError", "iam", "CreateRole", "RoleName", "nodoc", NULL);
    cr_assert_not_null(strstr(T.err.message, "'assumeRolePolicyDocument'"));
    qfail(400, "ValidationError", "iam", "CreateRole", "RoleName", "p", "Path", "/no-slash",
          "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    qfail(400, "ValidationError", "iam", "CreateRole", "RoleName", "m", "MaxSessionDuration",
          "3599", "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    qfail(400, "ValidationError", "iam", "CreateRole", "RoleName", "m", "MaxSessionDuration",
          "43201", "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    cr_assert_str_eq(T.err.message,
                     "1 validation error detected: Value '43201' at 'maxSessionDuration' failed "
                     "to satisfy constraint: Member must have value less than or equal to 43200 "
                     "and greater than or equal to 3600");
    /* a trust policy needs a Principal */
    qfail(400, "MalformedPolicyDocument", "iam", "CreateRole", "RoleName", "t",
          "AssumeRolePolicyDocument", INLINE, NULL);
    qfail(400, "MalformedPolicyDocument", "iam", "CreateRole", "RoleName", "t",
          "AssumeRolePolicyDocument", "{not json", NULL);
    /* over 2048 characters */
    es_buf big;
    es_buf_init(&big, 1 << 16);
    es_buf_append_str(&big, "{\"Version\":\"2012-10-17\",\"Statement\":[");
    for (int i = 0; i < 30; i++)
        es_buf_printf(&big,
                      "%s{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"svc%02d.amazonaws."
                      "com\"},\"Action\":\"sts:AssumeRole\"}",
                      i ? "," : "", i);
    es_buf_append_str(&big, "]}");
    qfail(409, "LimitExceeded", "iam", "CreateRole", "RoleName", "t", "AssumeRolePolicyDocument",
          es_buf_cstr(&big), NULL);
    es_buf_free(&big);
    qfail(400, "InvalidInput", "iam", "CreateRole", "RoleName", "b", "PermissionsBoundary",
          "arn:aws:iam::123456789012:policy/none", "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    qfail(404, "NoSuchEntity", "iam", "GetRole", "RoleName", "ghost", NULL);
    cr_assert_str_eq(T.err.message, "The role with name ghost cannot be found.");
}

Test(al_iam, list_roles_paged)
{
    make_role("c-role", ECS_TRUST);
    make_role("a-role", ECS_TRUST);
    qok("iam", "CreateRole", "RoleName", "b-role", "Path", "/svc/", "AssumeRolePolicyDocument",
        ECS_TRUST, NULL);
    qok("iam", "ListRoles", NULL);
    cr_assert_str_eq(xml_nth("RoleName", 0), "a-role");
    cr_assert_str_eq(xml_nth("RoleName", 1), "b-role");
    cr_assert_str_eq(xml_nth("RoleName", 2), "c-role");
    cr_assert_null(xml_nth("RoleName", 3));
    cr_assert_str_eq(xml("IsTruncated"), "false");
    qok("iam", "ListRoles", "PathPrefix", "/svc/", NULL);
    cr_assert_str_eq(xml_nth("RoleName", 0), "b-role");
    cr_assert_null(xml_nth("RoleName", 1));
    qok("iam", "ListRoles", "MaxItems", "2", NULL);
    cr_assert_str_eq(xml("IsTruncated"), "true");
    cr_assert_null(xml_nth("RoleName", 2));
    char marker[80];
    snprintf(marker, sizeof marker, "%s", xml("Marker"));
    qok("iam", "ListRoles", "MaxItems", "2", "Marker", marker, NULL);
    cr_assert_str_eq(xml_nth("RoleName", 0), "c-role");
    cr_assert_str_eq(xml("IsTruncated"), "false");
    qfail(400, "ValidationError", "iam", "ListRoles", "MaxItems", "0", NULL);
    cr_assert_str_eq(T.err.message,
                     "1 validation error detected: Value '0' at 'maxItems' failed to satisfy "
                     "constraint: Member must have value less than or equal to 1000 and greater "
                     "than or equal to 1");
}

Test(al_iam, inline_policies)
{
    make_role("r", ECS_TRUST);
    qok("iam", "PutRolePolicy", "RoleName", "r", "PolicyName", "read", "PolicyDocument", INLINE,
        NULL);
    cr_assert_null(strstr(es_buf_cstr(&T.out), "Result>"), "no result element");
    qok("iam", "GetRolePolicy", "RoleName", "r", "PolicyName", "read", NULL);
    cr_assert_str_eq(xml("RoleName"), "r");
    cr_assert_str_eq(xml("PolicyName"), "read");
    char doc[4096];
    snprintf(doc, sizeof doc, "%s", xml("PolicyDocument"));
    cr_assert_str_eq(urldecode(doc), INLINE);
    qok("iam", "PutRolePolicy", "RoleName", "r", "PolicyName", "also", "PolicyDocument", INLINE,
        NULL);
    qok("iam", "ListRolePolicies", "RoleName", "r", NULL);
    cr_assert_not_null(
        strstr(es_buf_cstr(&T.out), "<PolicyNames><member>also</member><member>read</member>"));
    /* errors */
    qfail(404, "NoSuchEntity", "iam", "PutRolePolicy", "RoleName", "ghost", "PolicyName", "p",
          "PolicyDocument", INLINE, NULL);
    qfail(400, "MalformedPolicyDocument", "iam", "PutRolePolicy", "RoleName", "r", "PolicyName",
          "p", "PolicyDocument", ECS_TRUST, NULL); /* Principal in an identity policy */
    qfail(400, "ValidationError", "iam", "PutRolePolicy", "RoleName", "r", "PolicyName", "a b",
          "PolicyDocument", INLINE, NULL);
    qfail(404, "NoSuchEntity", "iam", "GetRolePolicy", "RoleName", "r", "PolicyName", "none", NULL);
    cr_assert_str_eq(T.err.message, "The role policy with name none cannot be found.");
    qok("iam", "DeleteRolePolicy", "RoleName", "r", "PolicyName", "read", NULL);
    qfail(404, "NoSuchEntity", "iam", "DeleteRolePolicy", "RoleName", "r", "PolicyName", "read",
          NULL);
    qok("iam", "ListRolePolicies", "RoleName", "r", NULL);
    cr_assert_null(strstr(es_buf_cstr(&T.out), "<member>read</member>"));
}

Test(al_iam, managed_policies_and_delete_role)
{
    make_role("r", ECS_TRUST);
    qok("iam", "AttachRolePolicy", "RoleName", "r", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qok("iam", "AttachRolePolicy", "RoleName", "r", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qok("iam", "ListAttachedRolePolicies", "RoleName", "r", NULL);
    cr_assert_str_eq(xml("PolicyName"), "AmazonECSTaskExecutionRolePolicy");
    cr_assert_str_eq(xml("PolicyArn"), EXEC_POLICY_ARN);
    cr_assert_null(xml_nth("PolicyArn", 1), "attached once");
    qfail(404, "NoSuchEntity", "iam", "AttachRolePolicy", "RoleName", "r", "PolicyArn",
          "arn:aws:iam::aws:policy/AdministratorAccess", NULL);
    cr_assert_str_eq(T.err.message,
                     "Policy arn:aws:iam::aws:policy/AdministratorAccess does not exist or is not "
                     "attachable.");
    /* the AWS managed policy: ECR pull and logs, nothing else */
    qok("iam", "GetPolicy", "PolicyArn", EXEC_POLICY_ARN, NULL);
    cr_assert_str_eq(xml("Path"), "/service-role/");
    cr_assert_str_eq(xml("AttachmentCount"), "1");
    cr_assert_str_eq(xml("DefaultVersionId"), "v1");
    qok("iam", "GetPolicyVersion", "PolicyArn", EXEC_POLICY_ARN, "VersionId", "v1", NULL);
    char doc[4096];
    snprintf(doc, sizeof doc, "%s", xml("Document"));
    urldecode(doc);
    const char *actions[] = {"ecr:GetAuthorizationToken",  "ecr:BatchCheckLayerAvailability",
                             "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
                             "logs:CreateLogStream",       "logs:PutLogEvents"};
    for (size_t i = 0; i < 6; i++)
        cr_assert_not_null(strstr(doc, actions[i]), "%s", actions[i]);
    cr_assert_null(strstr(doc, "ssm:"));
    cr_assert_null(strstr(doc, "secretsmanager:"));
    cr_assert_null(strstr(doc, "kms:"));
    qfail(403, "AccessDenied", "iam", "DeletePolicy", "PolicyArn", EXEC_POLICY_ARN, NULL);

    /* customer managed */
    qok("iam", "CreatePolicy", "PolicyName", "mine", "PolicyDocument", INLINE, "Description", "d",
        NULL);
    cr_assert_str_eq(xml("Arn"), "arn:aws:iam::123456789012:policy/mine");
    cr_assert_eq(strncmp(xml("PolicyId"), "ANPA", 4), 0);
    qfail(409, "EntityAlreadyExists", "iam", "CreatePolicy", "PolicyName", "mine", "PolicyDocument",
          INLINE, NULL);
    qfail(400, "MalformedPolicyDocument", "iam", "CreatePolicy", "PolicyName", "bad",
          "PolicyDocument", "{\"Statement\":[{\"Effect\":\"Maybe\"}]}", NULL);
    qok("iam", "AttachRolePolicy", "RoleName", "r", "PolicyArn",
        "arn:aws:iam::123456789012:policy/mine", NULL);
    qok("iam", "GetPolicy", "PolicyArn", "arn:aws:iam::123456789012:policy/mine", NULL);
    cr_assert_str_eq(xml("AttachmentCount"), "1");
    cr_assert_str_eq(xml("Description"), "d");
    qok("iam", "GetPolicyVersion", "PolicyArn", "arn:aws:iam::123456789012:policy/mine",
        "VersionId", "v1", NULL);
    snprintf(doc, sizeof doc, "%s", xml("Document"));
    cr_assert_str_eq(urldecode(doc), INLINE);
    qfail(404, "NoSuchEntity", "iam", "GetPolicyVersion", "PolicyArn",
          "arn:aws:iam::123456789012:policy/mine", "VersionId", "v2", NULL);
    qfail(409, "DeleteConflict", "iam", "DeletePolicy", "PolicyArn",
          "arn:aws:iam::123456789012:policy/mine", NULL);
    qfail(404, "NoSuchEntity", "iam", "GetPolicy", "PolicyArn",
          "arn:aws:iam::123456789012:policy/nothing", NULL);

    /* DeleteRole needs the role bare */
    qok("iam", "PutRolePolicy", "RoleName", "r", "PolicyName", "p", "PolicyDocument", INLINE, NULL);
    qfail(409, "DeleteConflict", "iam", "DeleteRole", "RoleName", "r", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must delete policies first.");
    qok("iam", "DeleteRolePolicy", "RoleName", "r", "PolicyName", "p", NULL);
    qfail(409, "DeleteConflict", "iam", "DeleteRole", "RoleName", "r", NULL);
    cr_assert_str_eq(T.err.message, "Cannot delete entity, must detach all policies first.");
    qok("iam", "DetachRolePolicy", "RoleName", "r", "PolicyArn", EXEC_POLICY_ARN, NULL);
    qfail(404, "NoSuchEntity", "iam", "DetachRolePolicy", "RoleName", "r", "PolicyArn",
          EXEC_POLICY_ARN, NULL);
    qok("iam", "DetachRolePolicy", "RoleName", "r", "PolicyArn",
        "arn:aws:iam::123456789012:policy/mine", NULL);
    qok("iam", "DeletePolicy", "PolicyArn", "arn:aws:iam::123456789012:policy/mine", NULL);
    qok("iam", "DeleteRole", "RoleName", "r", NULL);
    qfail(404, "NoSuchEntity", "iam", "GetRole", "RoleName", "r", NULL);
    qfail(404, "NoSuchEntity", "iam", "DeleteRole", "RoleName", "r", NULL);
}

Test(al_iam, attach_limit)
{
    make_role("r", ECS_TRUST);
    for (int i = 0; i < AL_ROLE_MANAGED_MAX + 1; i++) {
        char name[16], arn[80];
        snprintf(name, sizeof name, "p%d", i);
        snprintf(arn, sizeof arn, "arn:aws:iam::123456789012:policy/p%d", i);
        qok("iam", "CreatePolicy", "PolicyName", name, "PolicyDocument", INLINE, NULL);
        if (i < AL_ROLE_MANAGED_MAX) {
            qok("iam", "AttachRolePolicy", "RoleName", "r", "PolicyArn", arn, NULL);
        } else {
            qfail(409, "LimitExceeded", "iam", "AttachRolePolicy", "RoleName", "r", "PolicyArn",
                  arn, NULL);
            /* re-attaching one already attached is fine at the limit */
            qok("iam", "AttachRolePolicy", "RoleName", "r", "PolicyArn",
                "arn:aws:iam::123456789012:policy/p0", NULL);
        }
    }
}

Test(al_iam, trust_and_boundary_updates)
{
    make_role("r", ECS_TRUST);
    const char *other = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                        "\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:root\"},\"Action\":"
                        "\"sts:AssumeRole\"}]}";
    qok("iam", "UpdateAssumeRolePolicy", "RoleName", "r", "PolicyDocument", other, NULL);
    qok("iam", "GetRole", "RoleName", "r", NULL);
    char doc[4096];
    snprintf(doc, sizeof doc, "%s", xml("AssumeRolePolicyDocument"));
    cr_assert_str_eq(urldecode(doc), other);
    qfail(400, "MalformedPolicyDocument", "iam", "UpdateAssumeRolePolicy", "RoleName", "r",
          "PolicyDocument", INLINE, NULL);
    qok("iam", "PutRolePermissionsBoundary", "RoleName", "r", "PermissionsBoundary",
        EXEC_POLICY_ARN, NULL);
    qok("iam", "GetRole", "RoleName", "r", NULL);
    cr_assert_str_eq(xml("PermissionsBoundaryArn"), EXEC_POLICY_ARN);
    qok("iam", "DeleteRolePermissionsBoundary", "RoleName", "r", NULL);
    qok("iam", "GetRole", "RoleName", "r", NULL);
    cr_assert_null(xml("PermissionsBoundaryArn"));
}

Test(al_iam, calls_are_authorised)
{
    al_authz_install(T.ctx);
    make_role("r", ECS_TRUST);
    int st = qcall("iam", "arn:aws:sts::123456789012:assumed-role/r/s", "CreateRole", "RoleName",
                   "x", "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    cr_assert_eq(st, 403);
    cr_assert_str_eq(T.err.code, "AccessDenied");
    cr_assert_str_eq(T.err.message,
                     "User: arn:aws:sts::123456789012:assumed-role/r/s is not authorized to "
                     "perform: iam:CreateRole on resource: arn:aws:iam::123456789012:role/x "
                     "because no identity-based policy allows the iam:CreateRole action");
    qok("iam", "PutRolePolicy", "RoleName", "r", "PolicyName", "iam", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iam:Get*\","
        "\"Resource\":\"*\"}]}",
        NULL);
    cr_assert_eq(qcall("iam", "arn:aws:sts::123456789012:assumed-role/r/s", "GetRole", "RoleName",
                       "r", NULL),
                 0);
}

/* ---- roles from files ---- */

static char rdir[128];

static void write_role(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", rdir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void rm_roles(void)
{
    DIR *d = opendir(rdir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", rdir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(rdir);
}

static int load(char *err, size_t n)
{
    err[0] = 0;
    return al_iam_load_roles_dir(T.ctx, rdir, err, n);
}

#define GOOD_FILE                                                                                  \
    "{\"RoleName\": \"web-exec\", \"Path\": \"/ecs/\", \"Description\": \"from a file\",\n"        \
    " \"AssumeRolePolicyDocument\": " ECS_TRUST ",\n"                                              \
    " \"Policies\": [{\"PolicyName\": \"read\", \"PolicyDocument\": " INLINE "}],\n"               \
    " \"ManagedPolicyArns\": [\"" EXEC_POLICY_ARN "\"]}\n"

Test(al_iam, roles_from_files)
{
    snprintf(rdir, sizeof rdir, "%s/roles", T.dir);
    cr_assert_eq(mkdir(rdir, 0700), 0);
    char err[600];
    write_role("web.json", GOOD_FILE);
    write_role("stem-named.json", "{\"AssumeRolePolicyDocument\": \""
                                  "{\\\"Version\\\":"
                                  "\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Effect\\\":"
                                  "\\\"Allow\\\",\\\"Principal\\\":{\\\"Service\\\":"
                                  "\\\"ecs-tasks.amazonaws.com\\\"},\\\"Action\\\":"
                                  "\\\"sts:AssumeRole\\\"}]}\"}");
    write_role("ignored.txt", "not a role");
    cr_assert_eq(load(err, sizeof err), 0, "%s", err);
    qok("iam", "GetRole", "RoleName", "web-exec", NULL);
    cr_assert_str_eq(xml("Arn"), "arn:aws:iam::123456789012:role/ecs/web-exec");
    char id[32];
    snprintf(id, sizeof id, "%s", xml("RoleId"));
    qok("iam", "GetRole", "RoleName", "stem-named", NULL);
    qok("iam", "GetRolePolicy", "RoleName", "web-exec", "PolicyName", "read", NULL);
    qok("iam", "ListAttachedRolePolicies", "RoleName", "web-exec", NULL);
    cr_assert_str_eq(xml("PolicyArn"), EXEC_POLICY_ARN);
    /* read-only through the API */
    qfail(400, "UnmodifiableEntity", "iam", "PutRolePolicy", "RoleName", "web-exec", "PolicyName",
          "x", "PolicyDocument", INLINE, NULL);
    cr_assert_not_null(strstr(T.err.message, "web.json"));
    qfail(400, "UnmodifiableEntity", "iam", "DeleteRole", "RoleName", "web-exec", NULL);
    qfail(409, "EntityAlreadyExists", "iam", "CreateRole", "RoleName", "web-exec",
          "AssumeRolePolicyDocument", ECS_TRUST, NULL);
    /* reload: same id; a removed file removes its role */
    char p[256];
    snprintf(p, sizeof p, "%s/stem-named.json", rdir);
    unlink(p);
    cr_assert_eq(load(err, sizeof err), 0, "%s", err);
    qok("iam", "GetRole", "RoleName", "web-exec", NULL);
    cr_assert_str_eq(xml("RoleId"), id);
    qfail(404, "NoSuchEntity", "iam", "GetRole", "RoleName", "stem-named", NULL);
    /* an API role of the same name as a file's */
    make_role("api-role", ECS_TRUST);
    write_role("clash.json",
               "{\"RoleName\":\"api-role\",\"AssumeRolePolicyDocument\":" ECS_TRUST "}");
    cr_assert_eq(load(err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "clash.json: role \"api-role\" already exists"), "%s", err);
    /* all or nothing: web-exec is still there */
    qok("iam", "GetRole", "RoleName", "web-exec", NULL);
    rm_roles();
    cr_assert_eq(load(err, sizeof err), 0, "a missing directory loads nothing: %s", err);
    qfail(404, "NoSuchEntity", "iam", "GetRole", "RoleName", "web-exec", NULL);
}

Test(al_iam, role_file_errors)
{
    snprintf(rdir, sizeof rdir, "%s/roles", T.dir);
    cr_assert_eq(mkdir(rdir, 0700), 0);
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{", "bad.json: not valid JSON"},
        {"[]", "bad.json: must hold one JSON object"},
        {"{\"RoleName\":\"x\",\"Trust\":{}}", "bad.json: unknown member \"Trust\""},
        {"{\"RoleName\":\"x\"}",
         "bad.json: AssumeRolePolicyDocument (the trust policy) is required"},
        {"{\"RoleName\":\"a b\",\"AssumeRolePolicyDocument\":" ECS_TRUST "}",
         "bad.json: RoleName \"a b\" must be"},
        {"{\"AssumeRolePolicyDocument\":" INLINE "}", "bad.json: AssumeRolePolicyDocument: "},
        {"{\"AssumeRolePolicyDocument\":" ECS_TRUST ",\"Path\":\"x\"}", "bad.json: Path must"},
        {"{\"AssumeRolePolicyDocument\":" ECS_TRUST ",\"MaxSessionDuration\":60}",
         "bad.json: MaxSessionDuration must"},
        {"{\"AssumeRolePolicyDocument\":" ECS_TRUST ",\"Policies\":[{\"PolicyName\":\"p\"}]}",
         "bad.json: each Policies entry needs"},
        {"{\"AssumeRolePolicyDocument\":" ECS_TRUST ",\"Policies\":[{\"PolicyName\":\"p\","
         "\"PolicyDocument\":" ECS_TRUST "}]}",
         "bad.json: policy \"p\": "},
        {"{\"AssumeRolePolicyDocument\":" ECS_TRUST ",\"ManagedPolicyArns\":[\"arn:aws:iam::aws:"
         "policy/Nope\"]}",
         "bad.json: ManagedPolicyArns: Policy arn:aws:iam::aws:policy/Nope does not exist"},
        {"{\"AssumeRolePolicyDocument\":" ECS_TRUST ",\"PermissionsBoundary\":\"arn:x\"}",
         "bad.json: PermissionsBoundary must"},
    };
    char err[600];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_role("bad.json", cases[i].text);
        cr_assert_eq(load(err, sizeof err), -EINVAL, "case %zu loaded", i);
        cr_assert_eq(strncmp(err, cases[i].want, strlen(cases[i].want)), 0, "case %zu: %s, want %s",
                     i, err, cases[i].want);
    }
    qok("iam", "ListRoles", NULL);
    cr_assert_null(xml("RoleName"), "nothing loaded");
    rm_roles();
}
