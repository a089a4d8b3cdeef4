/* Embedded Secrets Manager: regions (one store per region, the schema
 * migration that made it so), GetRandomPassword, tags, BatchGetSecretValue,
 * rotation. */
#include "al_helpers.h"

#include "aws/local/db.h"
#include "aws/local/internal.h"
#include "aws/local/secretsmanager.h"
#include "common/alloc.h"

#include <ctype.h>

TestSuite(al_smx, .init = alt_setup, .fini = alt_teardown);

#define TOK1 "11111111-1111-4111-8111-111111111111"
#define TOK2 "22222222-2222-4222-8222-222222222222"

/* call() in region (NULL: the home region, us-east-2). */
static int call_in(const char *region, const char *target, const char *body)
{
    es_json_free(T.resp);
    T.resp = NULL;
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    int r = al_dispatch_in(T.ctx, region, target, "arn:aws:iam::123456789012:user/tester", body,
                           strlen(body), &T.out, &T.err);
    if (r < 0) {
        cr_assert_eq(T.out.len, 0, "output left after an error");
        return T.err.status;
    }
    char why[128];
    cr_assert_eq(
        es_json_parse(T.out.data, T.out.len, &es_json_default_limits, &T.resp, why, sizeof why), 0,
        "response not JSON: %s", why);
    return 0;
}

static const es_json *ok_in(const char *region, const char *target, const char *body)
{
    int st = call_in(region, target, body);
    cr_assert_eq(st, 0, "%s %s -> %d %s: %s", target, body, st, T.err.code, T.err.message);
    return T.resp;
}

static void fails_in(const char *region, const char *target, const char *body, const char *code,
                     const char *message)
{
    int st = call_in(region, target, body);
    cr_assert_neq(st, 0, "%s %s succeeded: %s", target, body, es_buf_cstr(&T.out));
    cr_assert_str_eq(T.err.code, code, "%s %s -> %s (%s)", target, body, T.err.code, T.err.message);
    if (message)
        cr_assert_str_eq(T.err.message, message);
}

#define SM "secretsmanager."
#define NOT_FOUND_MSG "Secrets Manager can't find the specified secret."

/* ---- regions ---- */

Test(al_smx, same_name_in_two_regions_is_two_secrets)
{
    const es_json *r =
        ok_in("eu-west-1", SM "CreateSecret", "{\"Name\":\"db\",\"SecretString\":\"eu-value\"}");
    char eu_arn[512];
    snprintf(eu_arn, sizeof eu_arn, "%s", jstr(r, "ARN"));
    const char *p = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-";
    cr_assert_eq(strncmp(eu_arn, p, strlen(p)), 0, "%s", eu_arn);
    /* not visible in the home region until made there */
    fails_in(NULL, SM "GetSecretValue", "{\"SecretId\":\"db\"}", "ResourceNotFoundException",
             NOT_FOUND_MSG);
    r = ok_in(NULL, SM "CreateSecret", "{\"Name\":\"db\",\"SecretString\":\"home-value\"}");
    cr_assert_eq(strncmp(jstr(r, "ARN"), "arn:aws:secretsmanager:us-east-2:", 33), 0);
    cr_assert_str_eq(
        jstr(ok_in(NULL, SM "GetSecretValue", "{\"SecretId\":\"db\"}"), "SecretString"),
        "home-value");
    cr_assert_str_eq(
        jstr(ok_in("eu-west-1", SM "GetSecretValue", "{\"SecretId\":\"db\"}"), "SecretString"),
        "eu-value");
    /* the eu ARN asked in the home region: not found, as AWS answers */
    char body[700];
    snprintf(body, sizeof body, "{\"SecretId\":\"%s\"}", eu_arn);
    fails_in(NULL, SM "GetSecretValue", body, "ResourceNotFoundException", NOT_FOUND_MSG);
    fails_in(NULL, SM "DescribeSecret", body, "ResourceNotFoundException", NOT_FOUND_MSG);
    fails_in(NULL, SM "GetResourcePolicy", body, "ResourceNotFoundException", NOT_FOUND_MSG);
    ok_in("eu-west-1", SM "DescribeSecret", body);
    /* each region lists its own */
    r = ok_in("eu-west-1", SM "ListSecrets", "{}");
    cr_assert_eq(es_json_len(es_json_get(r, "SecretList")), 1);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "SecretList"), 0), "ARN"), eu_arn);
    /* deleting one leaves the other */
    ok_in("eu-west-1", SM "DeleteSecret",
          "{\"SecretId\":\"db\",\"ForceDeleteWithoutRecovery\":true}");
    cr_assert_str_eq(
        jstr(ok_in(NULL, SM "GetSecretValue", "{\"SecretId\":\"db\"}"), "SecretString"),
        "home-value");
}

Test(al_smx, partition_of_the_region_in_arns)
{
    const es_json *r =
        ok_in("cn-north-1", SM "CreateSecret", "{\"Name\":\"cn\",\"SecretString\":\"v\"}");
    const char *p = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:cn-";
    cr_assert_eq(strncmp(jstr(r, "ARN"), p, strlen(p)), 0, "%s", jstr(r, "ARN"));
    /* the same ARN in the aws partition names nothing */
    fails_in("cn-north-1", SM "GetSecretValue",
             "{\"SecretId\":\"arn:aws:secretsmanager:cn-north-1:123456789012:secret:cn\"}",
             "ResourceNotFoundException", NOT_FOUND_MSG);
    ok_in("cn-north-1", SM "GetSecretValue",
          "{\"SecretId\":\"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:cn\"}");
}

/* A database as the schema before the regional migration left it (version
 * 3: the last one before any regional store), with one secret, opened by
 * al_open: the secret is served in the home region only. */
Test(al_smx, migration_moves_old_secrets_to_their_region)
{
    al_close(T.ctx);
    T.ctx = NULL;
    char path[128], err[256] = "";
    snprintf(path, sizeof path, "%s/" AL_DB_FILE, T.dir);
    unlink(path);
    al_db *db = NULL;
    cr_assert_eq(al_db_open_at(path, 3, &db, err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_db_file_version(db), 3);
    sqlite3 *h = al_db_handle(db);
    cr_assert_eq(sqlite3_exec(h,
                              "INSERT INTO sm_secret(arn, name, description, key_id, created, "
                              "changed) VALUES ('arn:aws:secretsmanager:us-east-2:123456789012:"
                              "secret:old-AbCdEf', 'old', 'from v3', 'k', 1, 2);"
                              "INSERT INTO sm_tag VALUES ('arn:aws:secretsmanager:us-east-2:"
                              "123456789012:secret:old-AbCdEf', 'team', 'a');",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    al_db_close(db);
    alt_open();
    cr_assert_eq(al_db_file_version(T.ctx->db), al_db_schema_version());
    const es_json *r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"old\"}");
    cr_assert_str_eq(jstr(r, "ARN"),
                     "arn:aws:secretsmanager:us-east-2:123456789012:secret:old-AbCdEf");
    cr_assert_str_eq(jstr(r, "Description"), "from v3");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Tags"), 0), "Value"), "a");
    fails_in("us-west-2", SM "DescribeSecret", "{\"SecretId\":\"old\"}",
             "ResourceNotFoundException", NOT_FOUND_MSG);
    /* the name is free in another region, taken in its own */
    ok_in("us-west-2", SM "CreateSecret", "{\"Name\":\"old\"}");
    fails_in(NULL, SM "CreateSecret", "{\"Name\":\"old\"}", "ResourceExistsException", NULL);
    /* the children's foreign keys follow the renamed parent */
    cr_assert_eq(
        sqlite3_exec(al_db_handle(T.ctx->db), "PRAGMA foreign_key_check", NULL, NULL, NULL),
        SQLITE_OK);
    ok_in(NULL, SM "DeleteSecret", "{\"SecretId\":\"old\",\"ForceDeleteWithoutRecovery\":true}");
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(al_db_handle(T.ctx->db), "SELECT count(*) FROM sm_tag", -1, &st, NULL);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 0, "the tag did not cascade with its secret");
    sqlite3_finalize(st);
}

/* ---- GetRandomPassword ---- */

static const char *password(const char *body)
{
    return jstr(ok_in(NULL, SM "GetRandomPassword", body), "RandomPassword");
}

Test(al_smx, random_password_defaults_and_options)
{
    const char *p = password("{}");
    cr_assert_eq(strlen(p), 32);
    bool up = false, lo = false, dig = false, pun = false;
    for (const char *q = p; *q; q++) {
        up |= isupper((unsigned char)*q);
        lo |= islower((unsigned char)*q);
        dig |= isdigit((unsigned char)*q);
        pun |= ispunct((unsigned char)*q);
        cr_assert_neq(*q, ' ');
    }
    cr_assert(up && lo && dig && pun, "%s", p);
    cr_assert_str_eq(T.last_action, "secretsmanager:GetRandomPassword");
    p = password("{\"PasswordLength\":4096,\"ExcludePunctuation\":true,\"ExcludeNumbers\":true}");
    cr_assert_eq(strlen(p), 4096);
    for (const char *q = p; *q; q++)
        cr_assert(isalpha((unsigned char)*q));
    p = password("{\"PasswordLength\":50,\"ExcludeCharacters\":\"abcdefghijklmnopqrstuvwxyz0123\","
                 "\"ExcludeUppercase\":true,\"ExcludePunctuation\":true}");
    for (const char *q = p; *q; q++)
        cr_assert(*q >= '4' && *q <= '9', "%s", p);
    /* one of each type, even at the shortest length */
    for (int i = 0; i < 20; i++) {
        p = password("{\"PasswordLength\":5,\"IncludeSpace\":true}");
        cr_assert_not_null(strchr(p, ' '), "'%s'", p);
    }
    p = password("{\"PasswordLength\":1,\"ExcludeLowercase\":true,\"ExcludeUppercase\":true,"
                 "\"ExcludePunctuation\":true}");
    cr_assert(isdigit((unsigned char)p[0]) && !p[1]);
    password("{\"PasswordLength\":2,\"RequireEachIncludedType\":false}");
}

Test(al_smx, random_password_validation)
{
    fails_in(NULL, SM "GetRandomPassword", "{\"PasswordLength\":0}", "ValidationException",
             "1 validation error detected: Value '0' at 'passwordLength' failed to satisfy "
             "constraint: Member must have value greater than or equal to 1");
    fails_in(NULL, SM "GetRandomPassword", "{\"PasswordLength\":4097}", "ValidationException",
             "1 validation error detected: Value '4097' at 'passwordLength' failed to satisfy "
             "constraint: Member must have value less than or equal to 4096");
    fails_in(NULL, SM "GetRandomPassword",
             "{\"ExcludeLowercase\":true,\"ExcludeUppercase\":true,\"ExcludeNumbers\":true,"
             "\"ExcludePunctuation\":true}",
             "InvalidParameterException", NULL);
    fails_in(NULL, SM "GetRandomPassword", "{\"PasswordLength\":3}", "InvalidParameterException",
             "Password length is too short based on the required types.");
    fails_in(NULL, SM "GetRandomPassword", "{\"ExcludeNumbers\":\"yes\"}", "ValidationException",
             NULL);
    T.deny_action = "secretsmanager:GetRandomPassword";
    fails_in(NULL, SM "GetRandomPassword", "{}", "AccessDeniedException", NULL);
}

/* ---- tags ---- */

Test(al_smx, tag_and_untag)
{
    ok_in(NULL, SM "CreateSecret",
          "{\"Name\":\"t\",\"SecretString\":\"v\",\"Tags\":[{\"Key\":\"a\",\"Value\":\"1\"}]}");
    ok_in(NULL, SM "TagResource",
          "{\"SecretId\":\"t\",\"Tags\":[{\"Key\":\"b\",\"Value\":\"\"},{\"Key\":\"a\","
          "\"Value\":\"2\"}]}");
    cr_assert_str_eq(T.last_action, "secretsmanager:TagResource");
    const es_json *tags =
        es_json_get(ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"t\"}"), "Tags");
    cr_assert_eq(es_json_len(tags), 2);
    cr_assert_str_eq(jstr(es_json_at(tags, 0), "Value"), "2");
    ok_in(NULL, SM "UntagResource", "{\"SecretId\":\"t\",\"TagKeys\":[\"a\",\"absent\"]}");
    tags = es_json_get(ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"t\"}"), "Tags");
    cr_assert_eq(es_json_len(tags), 1);
    cr_assert_str_eq(jstr(es_json_at(tags, 0), "Key"), "b");
    /* the same name in another region is another secret */
    fails_in("eu-west-1", SM "TagResource",
             "{\"SecretId\":\"t\",\"Tags\":[{\"Key\":\"x\",\"Value\":\"y\"}]}",
             "ResourceNotFoundException", NOT_FOUND_MSG);
}

Test(al_smx, tag_validation)
{
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"t\"}");
    fails_in(NULL, SM "TagResource", "{\"SecretId\":\"t\"}", "InvalidParameterException",
             "You must provide Tags.");
    fails_in(NULL, SM "TagResource",
             "{\"SecretId\":\"t\",\"Tags\":[{\"Key\":\"aws:x\",\"Value\":\"y\"}]}",
             "InvalidParameterException", "Tag keys can't start with aws: (reserved for AWS use).");
    fails_in(NULL, SM "CreateSecret",
             "{\"Name\":\"u\",\"Tags\":[{\"Key\":\"AWS:x\",\"Value\":\"y\"}]}",
             "InvalidParameterException", NULL);
    fails_in(NULL, SM "TagResource",
             "{\"SecretId\":\"t\",\"Tags\":[{\"Key\":\"\",\"Value\":\"y\"}]}",
             "InvalidParameterException", AL_TAG_RULE);
    char body[8192];
    int n = snprintf(body, sizeof body, "{\"SecretId\":\"t\",\"Tags\":[");
    for (int i = 0; i < 30; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s{\"Key\":\"k%d\",\"Value\":\"v\"}",
                      i ? "," : "", i);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    ok_in(NULL, SM "TagResource", body);
    n = snprintf(body, sizeof body, "{\"SecretId\":\"t\",\"Tags\":[");
    for (int i = 30; i < 51; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s{\"Key\":\"k%d\",\"Value\":\"v\"}",
                      i > 30 ? "," : "", i);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    fails_in(NULL, SM "TagResource", body, "InvalidParameterException",
             "A secret can have at most 50 tags; this request would leave 51.");
    fails_in(NULL, SM "UntagResource", "{\"SecretId\":\"t\"}", "InvalidParameterException", NULL);
    fails_in(NULL, SM "UntagResource", "{\"SecretId\":\"t\",\"TagKeys\":[\"aws:cloudformation\"]}",
             "InvalidParameterException", NULL);
    T.deny_action = "secretsmanager:UntagResource";
    fails_in(NULL, SM "UntagResource", "{\"SecretId\":\"t\",\"TagKeys\":[\"k1\"]}",
             "AccessDeniedException", NULL);
}

/* ---- BatchGetSecretValue ---- */

Test(al_smx, batch_get_by_ids_and_filters)
{
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"app/a\",\"SecretString\":\"va\"}");
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"app/b\",\"SecretString\":\"vb\"}");
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"other\",\"SecretString\":\"vo\"}");
    ok_in("eu-west-1", SM "CreateSecret", "{\"Name\":\"app/c\",\"SecretString\":\"vc\"}");
    const es_json *r = ok_in(NULL, SM "BatchGetSecretValue",
                             "{\"SecretIdList\":[\"app/a\",\"nope\",\"app/b\",\"app/c\"]}");
    const es_json *vals = es_json_get(r, "SecretValues"), *errs = es_json_get(r, "Errors");
    cr_assert_eq(es_json_len(vals), 2);
    cr_assert_str_eq(jstr(es_json_at(vals, 0), "SecretString"), "va");
    cr_assert_str_eq(jstr(es_json_at(vals, 1), "Name"), "app/b");
    cr_assert_eq(es_json_len(errs), 2);
    cr_assert_str_eq(jstr(es_json_at(errs, 0), "SecretId"), "nope");
    cr_assert_str_eq(jstr(es_json_at(errs, 0), "ErrorCode"), "ResourceNotFoundException");
    cr_assert_str_eq(jstr(es_json_at(errs, 0), "Message"), NOT_FOUND_MSG);
    cr_assert_str_eq(jstr(es_json_at(errs, 1), "SecretId"), "app/c");
    /* filters, paged */
    r = ok_in(NULL, SM "BatchGetSecretValue",
              "{\"Filters\":[{\"Key\":\"name\",\"Values\":[\"app/\"]}],\"MaxResults\":1}");
    cr_assert_eq(es_json_len(es_json_get(r, "SecretValues")), 1);
    char body[512];
    snprintf(body, sizeof body,
             "{\"Filters\":[{\"Key\":\"name\",\"Values\":[\"app/\"]}],\"MaxResults\":1,"
             "\"NextToken\":\"%s\"}",
             jstr(r, "NextToken"));
    r = ok_in(NULL, SM "BatchGetSecretValue", body);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "SecretValues"), 0), "SecretString"), "vb");
    cr_assert_null(es_json_get(r, "NextToken"));
    /* a refusal per secret lands in Errors */
    T.deny_action = "secretsmanager:GetSecretValue";
    r = ok_in(NULL, SM "BatchGetSecretValue", "{\"SecretIdList\":[\"app/a\"]}");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Errors"), 0), "ErrorCode"),
                     "AccessDeniedException");
    cr_assert_eq(es_json_len(es_json_get(r, "SecretValues")), 0);
    T.deny_action = "secretsmanager:BatchGetSecretValue";
    fails_in(NULL, SM "BatchGetSecretValue", "{\"SecretIdList\":[\"app/a\"]}",
             "AccessDeniedException", NULL);
}

Test(al_smx, batch_get_validation)
{
    fails_in(NULL, SM "BatchGetSecretValue", "{}", "InvalidParameterException",
             "Either SecretIdList or Filters must be provided, but not both.");
    fails_in(NULL, SM "BatchGetSecretValue",
             "{\"SecretIdList\":[\"a\"],\"Filters\":[{\"Key\":\"name\",\"Values\":[\"a\"]}]}",
             "InvalidParameterException", NULL);
    fails_in(NULL, SM "BatchGetSecretValue", "{\"SecretIdList\":[]}", "InvalidParameterException",
             NULL);
    char body[1024];
    int n = snprintf(body, sizeof body, "{\"SecretIdList\":[");
    for (int i = 0; i < 21; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s\"s%d\"", i ? "," : "", i);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    fails_in(NULL, SM "BatchGetSecretValue", body, "InvalidParameterException",
             "SecretIdList must be a list of 1 to 20 secret names or ARNs.");
    fails_in(NULL, SM "BatchGetSecretValue", "{\"SecretIdList\":[\"a\"],\"MaxResults\":5}",
             "InvalidParameterException",
             "MaxResults and NextToken can be used only with Filters.");
    fails_in(NULL, SM "BatchGetSecretValue",
             "{\"Filters\":[{\"Key\":\"name\",\"Values\":[\"a\"]}],\"MaxResults\":21}",
             "ValidationException", NULL);
    fails_in(NULL, SM "BatchGetSecretValue",
             "{\"Filters\":[{\"Key\":\"name\",\"Values\":[\"a\"]}],\"NextToken\":\"!!\"}",
             "InvalidNextTokenException", NULL);
}

/* ---- rotation ---- */

static const char *value_at(const char *stage)
{
    char body[256];
    snprintf(body, sizeof body, "{\"SecretId\":\"r\",\"VersionStage\":\"%s\"}", stage);
    return jstr(ok_in(NULL, SM "GetSecretValue", body), "SecretString");
}

Test(al_smx, rotate_builtin_plain_and_json)
{
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"r\",\"SecretString\":\"old-value\"}");
    const es_json *r = ok_in(NULL, SM "RotateSecret", "{\"SecretId\":\"r\"}");
    cr_assert_str_eq(T.last_action, "secretsmanager:RotateSecret");
    char vid[64];
    snprintf(vid, sizeof vid, "%s", jstr(r, "VersionId"));
    char cur[128];
    snprintf(cur, sizeof cur, "%s", value_at("AWSCURRENT"));
    cr_assert_eq(strlen(cur), 32);
    cr_assert_str_eq(jstr(T.resp, "VersionId"), vid);
    cr_assert_str_eq(value_at("AWSPREVIOUS"), "old-value");
    fails_in(NULL, SM "GetSecretValue", "{\"SecretId\":\"r\",\"VersionStage\":\"AWSPENDING\"}",
             "ResourceNotFoundException", NULL);
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_eq(jint(r, "LastRotatedDate"), 1700000000);
    /* a JSON object: only "password" changes, the rest is kept as written */
    ok_in(NULL, SM "PutSecretValue",
          "{\"SecretId\":\"r\",\"SecretString\":\"{\\\"username\\\":\\\"app\\\",\\\"password\\\":"
          "\\\"pw0\\\",\\\"port\\\":5432.0}\"}");
    ok_in(NULL, SM "RotateSecret", "{\"SecretId\":\"r\",\"ClientRequestToken\":\"" TOK2 "\"}");
    cr_assert_str_eq(jstr(T.resp, "VersionId"), TOK2);
    es_json *j = NULL;
    char why[64];
    const char *v = value_at("AWSCURRENT");
    cr_assert_eq(es_json_parse(v, strlen(v), &es_json_default_limits, &j, why, sizeof why), 0);
    cr_assert_str_eq(es_json_get_str(j, "username"), "app");
    cr_assert_eq(strlen(es_json_get_str(j, "password")), 32);
    cr_assert_not_null(strstr(v, "\"port\":5432.0"), "%s", v);
    es_json_free(j);
    cr_assert_not_null(strstr(value_at("AWSPREVIOUS"), "pw0"));
    /* the same token again: that version exists */
    fails_in(NULL, SM "RotateSecret", "{\"SecretId\":\"r\",\"ClientRequestToken\":\"" TOK2 "\"}",
             "ResourceExistsException", NULL);
}

Test(al_smx, rotation_rules_schedule_and_due)
{
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"r\",\"SecretString\":\"v0\"}");
    ok_in(NULL, SM "RotateSecret",
          "{\"SecretId\":\"r\",\"RotateImmediately\":false,\"RotationRules\":"
          "{\"AutomaticallyAfterDays\":7,\"Duration\":\"3h\"}}");
    cr_assert_null(es_json_get(T.resp, "VersionId"));
    const es_json *r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert(es_json_get(r, "RotationEnabled")->u.boolean);
    cr_assert_eq(jint(es_json_get(r, "RotationRules"), "AutomaticallyAfterDays"), 7);
    cr_assert_str_eq(jstr(es_json_get(r, "RotationRules"), "Duration"), "3h");
    cr_assert_eq(jint(r, "NextRotationDate"), 1700000000 + 7 * 86400);
    cr_assert_null(es_json_get(r, "LastRotatedDate"));
    cr_assert_str_eq(value_at("AWSCURRENT"), "v0");
    /* due: the timer's call rotates it */
    T.now += 7 * 86400 + 1;
    cr_assert_eq(al_sm_rotate_due(T.ctx, T.now), 1);
    cr_assert_str_eq(value_at("AWSPREVIOUS"), "v0");
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_eq(jint(r, "NextRotationDate"), (int64_t)T.now + 7 * 86400);
    cr_assert_eq(al_sm_rotate_due(T.ctx, T.now), 0);
    /* due again: touching the secret rotates it first */
    char before[64];
    snprintf(before, sizeof before, "%s", value_at("AWSCURRENT"));
    T.now += 8 * 86400;
    cr_assert_str_eq(value_at("AWSPREVIOUS"), before);
    /* schedules */
    ok_in(NULL, SM "RotateSecret",
          "{\"SecretId\":\"r\",\"RotateImmediately\":false,\"RotationRules\":"
          "{\"ScheduleExpression\":\"rate(10 hours)\"}}");
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_eq(jint(r, "NextRotationDate"), (int64_t)T.now + 36000);
    cr_assert_null(es_json_get(es_json_get(r, "RotationRules"), "AutomaticallyAfterDays"));
    /* 1700000000 + 15 days is Thu 2023-11-29 22:13 UTC: the next 16:00 on a day 1 or 15 */
    ok_in(NULL, SM "RotateSecret",
          "{\"SecretId\":\"r\",\"RotateImmediately\":false,\"RotationRules\":"
          "{\"ScheduleExpression\":\"cron(0 16 1,15 * ? *)\"}}");
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_eq(jint(r, "NextRotationDate"), 1701446400, "%lld",
                 (long long)jint(r, "NextRotationDate")); /* 2023-12-01 16:00 UTC */
    ok_in(NULL, SM "CancelRotateSecret", "{\"SecretId\":\"r\"}");
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_not(es_json_get(r, "RotationEnabled")->u.boolean);
    cr_assert_null(es_json_get(r, "NextRotationDate"));
}

Test(al_smx, rotation_validation)
{
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"r\",\"SecretString\":\"v0\"}");
    const char *bad[] = {
        "{\"AutomaticallyAfterDays\":0}",
        "{\"AutomaticallyAfterDays\":1001}",
        "{\"AutomaticallyAfterDays\":3,\"ScheduleExpression\":\"rate(3 days)\"}",
        "{\"ScheduleExpression\":\"rate(3 weeks)\"}",
        "{\"ScheduleExpression\":\"rate(2 hours)\"}",
        "{\"ScheduleExpression\":\"cron(0 16 1,15 *)\"}",
        "{\"ScheduleExpression\":\"cron(0 25 * * ? *)\"}",
        "{\"AutomaticallyAfterDays\":3,\"Duration\":\"25h\"}",
        "{\"AutomaticallyAfterDays\":3,\"Duration\":\"3d\"}",
        "{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"SecretId\":\"r\",\"RotationRules\":%s}", bad[i]);
        int st = call_in(NULL, SM "RotateSecret", body);
        cr_assert_eq(st, 400, "%s accepted", bad[i]);
        cr_assert(strcmp(T.err.code, "InvalidParameterException") == 0 ||
                      strcmp(T.err.code, "ValidationException") == 0,
                  "%s: %s", bad[i], T.err.code);
    }
    fails_in(NULL, SM "RotateSecret",
             "{\"SecretId\":\"r\",\"RotationRules\":{\"AutomaticallyAfterDays\":1001}}",
             "InvalidParameterException",
             "RotationRules.AutomaticallyAfterDays must be within 1-1000.");
    fails_in(NULL, SM "RotateSecret",
             "{\"SecretId\":\"r\",\"RotationRules\":{\"AutomaticallyAfterDays\":3,"
             "\"ScheduleExpression\":\"rate(3 days)\"}}",
             "InvalidParameterException",
             "You cannot specify both rotation frequency and schedule expression together.");
    /* no hooks directory configured: AWS's refusal for a function it cannot invoke */
    fails_in(NULL, SM "RotateSecret",
             "{\"SecretId\":\"r\",\"RotationLambdaARN\":\"arn:aws:lambda:us-east-2:123456789012:"
             "function:rot\"}",
             "AccessDeniedException",
             "Secrets Manager cannot invoke the specified Lambda function. Ensure that the "
             "function policy grants access to the principal secretsmanager.amazonaws.com.");
    cr_assert_str_eq(value_at("AWSCURRENT"), "v0");
    fails_in(NULL, SM "RotateSecret", "{\"SecretId\":\"nope\"}", "ResourceNotFoundException",
             NOT_FOUND_MSG);
}

/* ---- rotation hooks ---- */

static char hookdir[128];

static void open_with_hooks(const char *script)
{
    snprintf(hookdir, sizeof hookdir, "%s-hooks", T.dir);
    mkdir(hookdir, 0700);
    char path[256];
    snprintf(path, sizeof path, "%s/rot", hookdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", script);
    fclose(f);
    chmod(path, 0700);
    al_close(T.ctx);
    al_options o = {.state_dir = T.dir,
                    .region = "us-east-2",
                    .account = "123456789012",
                    .clock = alt_clock,
                    .clock_arg = &T,
                    .rotation_dir = hookdir};
    char err[256];
    cr_assert_eq(al_open(&o, &T.ctx, err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_set_endpoint_url(T.ctx, "http://127.0.0.1:1"), 0);
}

static void hook_cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", hookdir);
    cr_assert_eq(system(cmd), 0);
}

Test(al_smx, hook_runs_four_steps_with_the_event)
{
    open_with_hooks("cat >> \"$0.events\"; echo >> \"$0.events\"; "
                    "echo \"$ES_ROTATION_STEP $AWS_REGION $AWS_ENDPOINT_URL $AWS_PROFILE\" >> "
                    "\"$0.log\"");
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"r\",\"SecretString\":\"v0\"}");
    const es_json *r =
        ok_in(NULL, SM "RotateSecret",
              "{\"SecretId\":\"r\",\"ClientRequestToken\":\"" TOK1
              "\",\"RotationLambdaARN\":\"arn:aws:lambda:us-east-2:123456789012:function:rot\","
              "\"RotationRules\":{\"AutomaticallyAfterDays\":30}}");
    cr_assert_str_eq(jstr(r, "VersionId"), TOK1);
    /* a second rotation while this one runs */
    fails_in(NULL, SM "RotateSecret", "{\"SecretId\":\"r\"}", "InvalidRequestException",
             "A previous rotation isn't complete. That rotation will be reattempted.");
    for (int i = 0; i < 400; i++) {
        al_sm_rotate_due(T.ctx, T.now);
        r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
        if (es_json_get(r, "LastRotatedDate"))
            break;
        usleep(10000);
    }
    cr_assert_not_null(es_json_get(r, "LastRotatedDate"), "the hook did not finish");
    cr_assert_str_eq(jstr(r, "RotationLambdaARN"),
                     "arn:aws:lambda:us-east-2:123456789012:function:rot");
    char path[256], log[1024] = "";
    snprintf(path, sizeof path, "%s/rot.log", hookdir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    cr_assert_str_eq(log, "createSecret us-east-2 http://127.0.0.1:1 ecs-secrets-agent\n"
                          "setSecret us-east-2 http://127.0.0.1:1 ecs-secrets-agent\n"
                          "testSecret us-east-2 http://127.0.0.1:1 ecs-secrets-agent\n"
                          "finishSecret us-east-2 http://127.0.0.1:1 ecs-secrets-agent\n");
    snprintf(path, sizeof path, "%s/rot.events", hookdir);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    cr_assert_not_null(strstr(log, "{\"SecretId\":\"arn:aws:secretsmanager:us-east-2:123456789012:"
                                   "secret:r-"));
    cr_assert_not_null(
        strstr(log, "\"ClientRequestToken\":\"" TOK1 "\",\"Step\":\"finishSecret\"}"));
    hook_cleanup();
}

Test(al_smx, failing_hook_leaves_awscurrent)
{
    open_with_hooks("[ \"$ES_ROTATION_STEP\" = setSecret ] && exit 3; exit 0");
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"r\",\"SecretString\":\"v0\"}");
    ok_in(NULL, SM "PutSecretValue",
          "{\"SecretId\":\"r\",\"ClientRequestToken\":\"" TOK2
          "\",\"SecretString\":\"pending\",\"VersionStages\":[\"AWSPENDING\"]}");
    ok_in(NULL, SM "RotateSecret",
          "{\"SecretId\":\"r\",\"RotationLambdaARN\":\"arn:aws:lambda:us-east-2:123456789012:"
          "function:rot\"}");
    /* the pending version a failed rotation left is reattempted */
    cr_assert_str_eq(jstr(T.resp, "VersionId"), TOK2);
    bool done = false;
    for (int i = 0; i < 400 && !done; i++) {
        al_sm_rotate_due(T.ctx, T.now);
        done = call_in(NULL, SM "RotateSecret",
                       "{\"SecretId\":\"r\",\"RotateImmediately\":false}") == 0;
        usleep(10000);
    }
    cr_assert(done, "the failing hook never ended");
    cr_assert_str_eq(value_at("AWSCURRENT"), "v0");
    cr_assert_str_eq(value_at("AWSPENDING"), "pending");
    const es_json *r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_null(es_json_get(r, "LastRotatedDate"));
    hook_cleanup();
}

/* al_options.rotation_time_scale: the stored schedule stays AWS's,
 * NextRotationDate is when the scaled rotation falls, and the timer's call
 * rotates then and not before. */
Test(al_smx, rotation_time_scale_divides_the_wait)
{
    al_close(T.ctx);
    al_options o = {.state_dir = T.dir,
                    .region = "us-east-2",
                    .account = "123456789012",
                    .clock = alt_clock,
                    .clock_arg = &T,
                    .rotation_time_scale = 1440};
    char err[256];
    cr_assert_eq(al_open(&o, &T.ctx, err, sizeof err), 0, "%s", err);
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"r\",\"SecretString\":\"v0\"}");
    ok_in(NULL, SM "RotateSecret",
          "{\"SecretId\":\"r\",\"RotateImmediately\":false,\"RotationRules\":"
          "{\"ScheduleExpression\":\"rate(4 hours)\"}}");
    const es_json *r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_str_eq(jstr(es_json_get(r, "RotationRules"), "ScheduleExpression"), "rate(4 hours)");
    cr_assert_eq(jint(r, "NextRotationDate"), 1700000000 + 10);
    T.now += 9;
    cr_assert_eq(al_sm_rotate_due(T.ctx, T.now), 0);
    cr_assert_str_eq(value_at("AWSCURRENT"), "v0");
    T.now += 1;
    cr_assert_eq(al_sm_rotate_due(T.ctx, T.now), 1);
    cr_assert_str_eq(value_at("AWSPREVIOUS"), "v0");
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_eq(jint(r, "NextRotationDate"), 1700000000 + 20);
    cr_assert_eq(jint(r, "LastRotatedDate"), 1700000000 + 10);
    /* a minimum AWS refuses is refused whatever the scale */
    fails_in(NULL, SM "RotateSecret",
             "{\"SecretId\":\"r\",\"RotateImmediately\":false,\"RotationRules\":"
             "{\"ScheduleExpression\":\"rate(1 hours)\"}}",
             "InvalidParameterException", NULL);
    /* days: one day is 60 s at this scale */
    ok_in(NULL, SM "RotateSecret",
          "{\"SecretId\":\"r\",\"RotateImmediately\":false,\"RotationRules\":"
          "{\"AutomaticallyAfterDays\":1}}");
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"r\"}");
    cr_assert_eq(jint(r, "NextRotationDate"), 1700000000 + 10 + 60);
}
