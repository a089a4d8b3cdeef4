/* Embedded Secrets Manager: secrets, versions, stages, deletion. */
#include "al_helpers.h"

#include "aws/local/internal.h"
#include "aws/local/secretsmanager.h"
#include "common/alloc.h"

#include <ctype.h>

TestSuite(al_sm, .init = alt_setup, .fini = alt_teardown);

#define CREATE "secretsmanager.CreateSecret"
#define PUTV "secretsmanager.PutSecretValue"
#define GETV "secretsmanager.GetSecretValue"
#define DESCR "secretsmanager.DescribeSecret"
#define LIST "secretsmanager.ListSecrets"
#define STAGE "secretsmanager.UpdateSecretVersionStage"
#define DEL "secretsmanager.DeleteSecret"
#define RESTORE "secretsmanager.RestoreSecret"

#define TOK1 "11111111-1111-4111-8111-111111111111"
#define TOK2 "22222222-2222-4222-8222-222222222222"
#define TOK3 "33333333-3333-4333-8333-333333333333"

static char arn[512];

static void create(const char *name, const char *value)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"Name\":\"%s\",\"ClientRequestToken\":\"" TOK1 "\",\"SecretString\":\"%s\"}", name,
             value);
    snprintf(arn, sizeof arn, "%s", jstr(ok(CREATE, body), "ARN"));
}

static const char *get_value(const char *body)
{
    return jstr(ok(GETV, body), "SecretString");
}

Test(al_sm, create_arn_and_version)
{
    const es_json *r = ok(CREATE, "{\"Name\":\"prod/db\",\"ClientRequestToken\":\"" TOK1
                                  "\",\"SecretString\":\"pw1\",\"Description\":\"d\"}");
    const char *a = jstr(r, "ARN");
    const char *prefix = "arn:aws:secretsmanager:us-east-2:123456789012:secret:prod/db-";
    cr_assert_eq(strncmp(a, prefix, strlen(prefix)), 0, "%s", a);
    cr_assert_eq(strlen(a), strlen(prefix) + 6);
    for (size_t i = strlen(prefix); i < strlen(a); i++)
        cr_assert(isalnum((unsigned char)a[i]));
    cr_assert_str_eq(jstr(r, "Name"), "prod/db");
    cr_assert_str_eq(jstr(r, "VersionId"), TOK1);
    /* without a token a UUID is made up */
    r = ok(CREATE, "{\"Name\":\"other\",\"SecretString\":\"x\"}");
    cr_assert_eq(strlen(jstr(r, "VersionId")), 36);
    /* without a value: no version */
    r = ok(CREATE, "{\"Name\":\"empty\"}");
    cr_assert_null(es_json_get(r, "VersionId"));
    fails(GETV, "{\"SecretId\":\"empty\"}", "ResourceNotFoundException");
}

Test(al_sm, create_validation)
{
    fails(CREATE, "{\"SecretString\":\"x\"}", "InvalidParameterException");
    fails(CREATE, "{\"Name\":\"bad name\",\"SecretString\":\"x\"}", "ValidationException");
    fails(CREATE, "{\"Name\":\"bad#name\",\"SecretString\":\"x\"}", "ValidationException");
    fails(CREATE, "{\"Name\":\"n\",\"SecretString\":\"x\",\"SecretBinary\":\"eA==\"}",
          "InvalidParameterException");
    fails(CREATE, "{\"Name\":\"n\",\"SecretBinary\":\"e\"}", "InvalidParameterException");
    fails(CREATE, "{\"Name\":\"n\",\"SecretString\":\"x\",\"ClientRequestToken\":\"short\"}",
          "InvalidParameterException");
    fails(CREATE, "{\"Name\":\"n\",\"SecretString\":\"x\",\"KmsKeyId\":\"alias/none\"}",
          "ResourceNotFoundException");
    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_buf_append_str(&b, "{\"Name\":\"big\",\"SecretString\":\"");
    for (int i = 0; i < 65537; i++)
        es_buf_append_char(&b, 'x');
    es_buf_append_str(&b, "\"}");
    fails(CREATE, es_buf_cstr(&b), "InvalidParameterException");
    es_buf_free(&b);
    char name[600];
    memset(name, 'n', 513);
    name[513] = 0;
    char body[800];
    snprintf(body, sizeof body, "{\"Name\":\"%s\"}", name);
    fails(CREATE, body, "ValidationException");
}

Test(al_sm, create_is_idempotent_per_token)
{
    create("idem", "v");
    char first[512];
    snprintf(first, sizeof first, "%s", arn);
    create("idem", "v"); /* same token, same value: same answer */
    cr_assert_str_eq(arn, first);
    fails(CREATE, "{\"Name\":\"idem\",\"ClientRequestToken\":\"" TOK1 "\",\"SecretString\":\"w\"}",
          "ResourceExistsException");
    fails(CREATE, "{\"Name\":\"idem\",\"ClientRequestToken\":\"" TOK2 "\",\"SecretString\":\"v\"}",
          "ResourceExistsException");
    cr_assert_null(strstr(T.err.message, "\"v\""));
}

Test(al_sm, get_by_name_full_and_partial_arn)
{
    create("app/key", "s3cr3t");
    char body[1024];
    cr_assert_str_eq(get_value("{\"SecretId\":\"app/key\"}"), "s3cr3t");
    snprintf(body, sizeof body, "{\"SecretId\":\"%s\"}", arn);
    cr_assert_str_eq(get_value(body), "s3cr3t");
    const es_json *r = T.resp;
    cr_assert_str_eq(jstr(r, "ARN"), arn);
    cr_assert_str_eq(jstr(r, "Name"), "app/key");
    cr_assert_str_eq(jstr(r, "VersionId"), TOK1);
    cr_assert_eq(es_json_len(es_json_get(r, "VersionStages")), 1);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(r, "VersionStages"), 0)), "AWSCURRENT");
    cr_assert_eq(jint(r, "CreatedDate"), 1700000000);
    /* partial ARN: without the random suffix */
    snprintf(body, sizeof body, "{\"SecretId\":\"%.*s\"}", (int)(strlen(arn) - 7), arn);
    cr_assert_str_eq(get_value(body), "s3cr3t");
    snprintf(body, sizeof body,
             "{\"SecretId\":\"arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/key\"}");
    fails(GETV, body, "ResourceNotFoundException");
    fails(GETV, "{\"SecretId\":\"nope\"}", "ResourceNotFoundException");
    fails(GETV, "{}", "InvalidParameterException");
}

Test(al_sm, put_moves_stages)
{
    create("rot", "v1");
    T.now += 5;
    const es_json *r = ok(PUTV, "{\"SecretId\":\"rot\",\"ClientRequestToken\":\"" TOK2
                                "\",\"SecretString\":\"v2\"}");
    cr_assert_str_eq(jstr(r, "VersionId"), TOK2);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(r, "VersionStages"), 0)), "AWSCURRENT");
    cr_assert_str_eq(get_value("{\"SecretId\":\"rot\"}"), "v2");
    cr_assert_str_eq(get_value("{\"SecretId\":\"rot\",\"VersionStage\":\"AWSPREVIOUS\"}"), "v1");
    cr_assert_str_eq(get_value("{\"SecretId\":\"rot\",\"VersionId\":\"" TOK1 "\"}"), "v1");
    cr_assert_eq(jint(T.resp, "CreatedDate"), 1700000000);
    ok(PUTV, "{\"SecretId\":\"rot\",\"ClientRequestToken\":\"" TOK3 "\",\"SecretString\":\"v3\"}");
    cr_assert_str_eq(get_value("{\"SecretId\":\"rot\",\"VersionStage\":\"AWSPREVIOUS\"}"), "v2");
    /* v1 lost every stage, but is still kept */
    cr_assert_str_eq(get_value("{\"SecretId\":\"rot\",\"VersionId\":\"" TOK1 "\"}"), "v1");
    cr_assert_eq(es_json_len(es_json_get(T.resp, "VersionStages")), 0);
    /* DescribeSecret lists only staged versions */
    r = ok(DESCR, "{\"SecretId\":\"rot\"}");
    const es_json *v2s = es_json_get(r, "VersionIdsToStages");
    cr_assert_eq(es_json_len(v2s), 2);
    cr_assert_null(es_json_get(v2s, TOK1));
    cr_assert_not_null(es_json_get(v2s, TOK3));
    cr_assert_null(es_json_get(r, "SecretString"));
    /* id and stage together must agree */
    fails(GETV, "{\"SecretId\":\"rot\",\"VersionId\":\"" TOK1 "\",\"VersionStage\":\"AWSCURRENT\"}",
          "ResourceNotFoundException");
    fails(GETV, "{\"SecretId\":\"rot\",\"VersionStage\":\"NOPE\"}", "ResourceNotFoundException");
}

Test(al_sm, put_with_custom_stages_and_idempotency)
{
    create("st", "v1");
    ok(PUTV, "{\"SecretId\":\"st\",\"ClientRequestToken\":\"" TOK2
             "\",\"SecretString\":\"v2\",\"VersionStages\":[\"AWSPENDING\"]}");
    cr_assert_str_eq(get_value("{\"SecretId\":\"st\"}"), "v1");
    cr_assert_str_eq(get_value("{\"SecretId\":\"st\",\"VersionStage\":\"AWSPENDING\"}"), "v2");
    /* retry with the same token and value: fine; another value: refused */
    ok(PUTV, "{\"SecretId\":\"st\",\"ClientRequestToken\":\"" TOK2
             "\",\"SecretString\":\"v2\",\"VersionStages\":[\"AWSPENDING\"]}");
    fails(PUTV, "{\"SecretId\":\"st\",\"ClientRequestToken\":\"" TOK2 "\",\"SecretString\":\"v9\"}",
          "ResourceExistsException");
    fails(PUTV, "{\"SecretId\":\"st\"}", "InvalidParameterException");
    fails(PUTV, "{\"SecretId\":\"st\",\"SecretString\":\"x\",\"VersionStages\":[]}",
          "InvalidParameterException");
    fails(PUTV, "{\"SecretId\":\"nope\",\"SecretString\":\"x\"}", "ResourceNotFoundException");
}

Test(al_sm, update_secret_version_stage)
{
    create("u", "v1");
    ok(PUTV, "{\"SecretId\":\"u\",\"ClientRequestToken\":\"" TOK2
             "\",\"SecretString\":\"v2\",\"VersionStages\":[\"AWSPENDING\"]}");
    /* moving AWSCURRENT needs RemoveFromVersionId naming its holder */
    fails(STAGE,
          "{\"SecretId\":\"u\",\"VersionStage\":\"AWSCURRENT\",\"MoveToVersionId\":\"" TOK2 "\"}",
          "InvalidParameterException");
    cr_assert_not_null(strstr(T.err.message, TOK1));
    ok(STAGE, "{\"SecretId\":\"u\",\"VersionStage\":\"AWSCURRENT\",\"MoveToVersionId\":\"" TOK2
              "\",\"RemoveFromVersionId\":\"" TOK1 "\"}");
    cr_assert_str_eq(get_value("{\"SecretId\":\"u\"}"), "v2");
    cr_assert_str_eq(get_value("{\"SecretId\":\"u\",\"VersionStage\":\"AWSPREVIOUS\"}"), "v1");
    /* remove a custom label */
    ok(STAGE,
       "{\"SecretId\":\"u\",\"VersionStage\":\"AWSPENDING\",\"RemoveFromVersionId\":\"" TOK2 "\"}");
    fails(GETV, "{\"SecretId\":\"u\",\"VersionStage\":\"AWSPENDING\"}",
          "ResourceNotFoundException");
    fails(STAGE,
          "{\"SecretId\":\"u\",\"VersionStage\":\"AWSCURRENT\",\"RemoveFromVersionId\":\"" TOK2
          "\"}",
          "InvalidParameterException");
    fails(STAGE, "{\"SecretId\":\"u\",\"VersionStage\":\"X\",\"MoveToVersionId\":\"" TOK3 "\"}",
          "InvalidParameterException");
    fails(STAGE, "{\"SecretId\":\"u\",\"VersionStage\":\"X\"}", "InvalidParameterException");
}

Test(al_sm, binary_secret)
{
    ok(CREATE, "{\"Name\":\"bin\",\"SecretBinary\":\"AAEC/w==\"}");
    const es_json *r = ok(GETV, "{\"SecretId\":\"bin\"}");
    cr_assert_str_eq(jstr(r, "SecretBinary"), "AAEC/w==");
    cr_assert_null(es_json_get(r, "SecretString"));
}

Test(al_sm, describe_and_list)
{
    ok(CREATE, "{\"Name\":\"a/one\",\"SecretString\":\"1\",\"Description\":\"first\","
               "\"Tags\":[{\"Key\":\"team\",\"Value\":\"x\"}]}");
    ok(CREATE, "{\"Name\":\"a/two\",\"SecretString\":\"2\"}");
    fails(CREATE, "{\"Name\":\"a/bad\",\"SecretString\":\"1\",\"Tags\":[{\"Value\":\"x\"}]}",
          "InvalidParameterException");
    cr_assert_str_eq(T.err.message,
                     "Each tag needs a Key (1-128 characters) and a Value (up to 256).");
    ok(CREATE, "{\"Name\":\"b/three\",\"SecretString\":\"3\",\"KmsKeyId\":\"alias/aws/ssm\"}");
    const es_json *r = ok(DESCR, "{\"SecretId\":\"a/one\"}");
    cr_assert_str_eq(jstr(r, "Description"), "first");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Tags"), 0), "Key"), "team");
    cr_assert_null(es_json_get(r, "KmsKeyId"));
    cr_assert_eq(jint(r, "CreatedDate"), 1700000000);
    r = ok(DESCR, "{\"SecretId\":\"b/three\"}");
    cr_assert_str_eq(jstr(r, "KmsKeyId"), "alias/aws/ssm");
    r = ok(LIST, "{}");
    cr_assert_eq(es_json_len(es_json_get(r, "SecretList")), 3);
    cr_assert_not_null(
        es_json_get(es_json_at(es_json_get(r, "SecretList"), 0), "SecretVersionsToStages"));
    r = ok(LIST, "{\"Filters\":[{\"Key\":\"name\",\"Values\":[\"a/\"]}]}");
    cr_assert_eq(es_json_len(es_json_get(r, "SecretList")), 2);
    r = ok(LIST, "{\"MaxResults\":2}");
    cr_assert_eq(es_json_len(es_json_get(r, "SecretList")), 2);
    char body[256];
    snprintf(body, sizeof body, "{\"MaxResults\":2,\"NextToken\":\"%s\"}", jstr(r, "NextToken"));
    r = ok(LIST, body);
    cr_assert_eq(es_json_len(es_json_get(r, "SecretList")), 1);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "SecretList"), 0), "Name"), "b/three");
    fails(LIST, "{\"Filters\":[{\"Key\":\"colour\",\"Values\":[\"x\"]}]}",
          "InvalidParameterException");
    fails(LIST, "{\"NextToken\":\"?\"}", "InvalidNextTokenException");
    fails(LIST, "{\"MaxResults\":101}", "ValidationException");
}

Test(al_sm, delete_schedule_restore_purge)
{
    create("gone", "v");
    fails(DEL, "{\"SecretId\":\"gone\",\"RecoveryWindowInDays\":6}", "InvalidParameterException");
    fails(DEL, "{\"SecretId\":\"gone\",\"RecoveryWindowInDays\":31}", "InvalidParameterException");
    fails(DEL,
          "{\"SecretId\":\"gone\",\"RecoveryWindowInDays\":7,\"ForceDeleteWithoutRecovery\":true}",
          "InvalidParameterException");
    const es_json *r = ok(DEL, "{\"SecretId\":\"gone\",\"RecoveryWindowInDays\":7}");
    cr_assert_eq(jint(r, "DeletionDate"), 1700000000 + 7 * 86400);
    /* scheduled: reads and writes refused, describe allowed */
    fails(GETV, "{\"SecretId\":\"gone\"}", "InvalidRequestException");
    fails(PUTV, "{\"SecretId\":\"gone\",\"SecretString\":\"x\"}", "InvalidRequestException");
    fails(DEL, "{\"SecretId\":\"gone\"}", "InvalidRequestException");
    fails(CREATE, "{\"Name\":\"gone\",\"SecretString\":\"x\"}", "InvalidRequestException");
    r = ok(DESCR, "{\"SecretId\":\"gone\"}");
    cr_assert_not_null(es_json_get(r, "DeletedDate"));
    cr_assert_eq(es_json_len(es_json_get(ok(LIST, "{}"), "SecretList")), 0);
    cr_assert_eq(
        es_json_len(es_json_get(ok(LIST, "{\"IncludePlannedDeletion\":true}"), "SecretList")), 1);
    ok(RESTORE, "{\"SecretId\":\"gone\"}");
    cr_assert_str_eq(get_value("{\"SecretId\":\"gone\"}"), "v");
    /* scheduled again, then the window passes: purged */
    ok(DEL, "{\"SecretId\":\"gone\",\"RecoveryWindowInDays\":7}");
    T.now += 7 * 86400 + 1;
    fails(DESCR, "{\"SecretId\":\"gone\"}", "ResourceNotFoundException");
    ok(CREATE, "{\"Name\":\"gone\",\"SecretString\":\"again\"}");
    /* forced deletion is immediate */
    ok(DEL, "{\"SecretId\":\"gone\",\"ForceDeleteWithoutRecovery\":true}");
    fails(DESCR, "{\"SecretId\":\"gone\"}", "ResourceNotFoundException");
    fails(RESTORE, "{\"SecretId\":\"gone\"}", "ResourceNotFoundException");
}

Test(al_sm, custom_key_and_authorisation)
{
    const es_json *k = ok("TrentService.CreateKey", "{}");
    char id[64], body[512];
    snprintf(id, sizeof id, "%s", jstr(es_json_get(k, "KeyMetadata"), "KeyId"));
    snprintf(body, sizeof body, "{\"Name\":\"ck\",\"SecretString\":\"v\",\"KmsKeyId\":\"%s\"}", id);
    ok(CREATE, body);
    cr_assert_str_eq(get_value("{\"SecretId\":\"ck\"}"), "v");
    cr_assert_str_eq(T.last_action, "kms:Decrypt");
    T.deny_action = "kms:Decrypt";
    fails(GETV, "{\"SecretId\":\"ck\"}", "AccessDeniedException");
    T.deny_action = "secretsmanager:GetSecretValue";
    fails(GETV, "{\"SecretId\":\"ck\"}", "AccessDeniedException");
    cr_assert_not_null(
        strstr(T.err.message, "arn:aws:secretsmanager:us-east-2:123456789012:secret:ck-"));
}

Test(al_sm, data_survives_reopen_and_no_plaintext_on_disk)
{
    create("disk", "Sm-Plaintext-Marker-0001");
    ok(PUTV, "{\"SecretId\":\"disk\",\"SecretString\":\"Sm-Plaintext-Marker-0002\"}");
    ok(CREATE, "{\"Name\":\"disk-bin\",\"SecretBinary\":\"U20tQmluYXJ5LU1hcmtlcg==\"}");
    alt_reopen();
    cr_assert_str_eq(get_value("{\"SecretId\":\"disk\"}"), "Sm-Plaintext-Marker-0002");
    cr_assert_str_eq(get_value("{\"SecretId\":\"disk\",\"VersionStage\":\"AWSPREVIOUS\"}"),
                     "Sm-Plaintext-Marker-0001");
    al_close(T.ctx);
    T.ctx = NULL;
    cr_assert(dir_contains("disk-bin"), "the scan cannot see stored names");
    cr_assert_not(dir_contains("Sm-Plaintext-Marker"));
    cr_assert_not(dir_contains("Sm-Binary-Marker"));
    cr_assert_not(dir_contains("U20tQmluYXJ5"));
    alt_open();
}

Test(al_sm, stored_version_bound_to_its_secret)
{
    create("s1", "value-one");
    ok(CREATE,
       "{\"Name\":\"s2\",\"ClientRequestToken\":\"" TOK2 "\",\"SecretString\":\"value-two\"}");
    sqlite3 *h = al_db_handle(T.ctx->db);
    cr_assert_eq(sqlite3_exec(h,
                              "UPDATE sm_version SET blob=(SELECT blob FROM sm_version WHERE "
                              "version_id='" TOK1 "') WHERE version_id='" TOK2 "'",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    fails(GETV, "{\"SecretId\":\"s2\"}", "DecryptionFailure");
    cr_assert_null(strstr(T.err.message, "value-"));
}

Test(al_sm, list_secret_version_ids)
{
    create("lv", "v1");
    ok(PUTV, "{\"SecretId\":\"lv\",\"ClientRequestToken\":\"" TOK2 "\",\"SecretString\":\"v2\"}");
    ok(PUTV, "{\"SecretId\":\"lv\",\"ClientRequestToken\":\"" TOK3 "\",\"SecretString\":\"v3\"}");
    /* v1 has lost its stages: deprecated */
    const es_json *r = ok("secretsmanager.ListSecretVersionIds", "{\"SecretId\":\"lv\"}");
    const es_json *v = es_json_get(r, "Versions");
    cr_assert_eq(es_json_len(v), 2);
    cr_assert_str_eq(jstr(es_json_at(v, 0), "VersionId"), TOK2);
    cr_assert_str_eq(es_json_as_str(es_json_at(es_json_get(es_json_at(v, 1), "VersionStages"), 0)),
                     "AWSCURRENT");
    cr_assert_str_eq(jstr(r, "Name"), "lv");
    r = ok("secretsmanager.ListSecretVersionIds",
           "{\"SecretId\":\"lv\",\"IncludeDeprecated\":true,\"MaxResults\":2}");
    cr_assert_eq(es_json_len(es_json_get(r, "Versions")), 2);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Versions"), 0), "VersionId"), TOK1);
    char body[256];
    snprintf(
        body, sizeof body,
        "{\"SecretId\":\"lv\",\"IncludeDeprecated\":true,\"MaxResults\":2,\"NextToken\":\"%s\"}",
        jstr(r, "NextToken"));
    r = ok("secretsmanager.ListSecretVersionIds", body);
    cr_assert_eq(es_json_len(es_json_get(r, "Versions")), 1);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Versions"), 0), "VersionId"), TOK3);
    cr_assert_null(es_json_get(r, "NextToken"));
    fails("secretsmanager.ListSecretVersionIds", "{\"SecretId\":\"lv\",\"NextToken\":\"x\"}",
          "InvalidNextTokenException");
    fails("secretsmanager.ListSecretVersionIds", "{\"SecretId\":\"lv\",\"NextToken\":\"-1\"}",
          "InvalidNextTokenException");
    cr_assert_str_eq(T.err.message, "The NextToken is not valid.");
    fails("secretsmanager.ListSecretVersionIds", "{\"SecretId\":\"none\"}",
          "ResourceNotFoundException");
}

Test(al_sm, update_secret)
{
    create("up", "v1");
    const es_json *r =
        ok("secretsmanager.UpdateSecret", "{\"SecretId\":\"up\",\"ClientRequestToken\":\"" TOK2
                                          "\",\"SecretString\":\"v2\",\"Description\":\"new\"}");
    cr_assert_str_eq(jstr(r, "VersionId"), TOK2);
    cr_assert_str_eq(get_value("{\"SecretId\":\"up\"}"), "v2");
    cr_assert_str_eq(get_value("{\"SecretId\":\"up\",\"VersionStage\":\"AWSPREVIOUS\"}"), "v1");
    cr_assert_str_eq(jstr(ok(DESCR, "{\"SecretId\":\"up\"}"), "Description"), "new");
    /* only metadata: no version */
    r = ok("secretsmanager.UpdateSecret", "{\"SecretId\":\"up\",\"Description\":\"newer\"}");
    cr_assert_null(es_json_get(r, "VersionId"));
    cr_assert_str_eq(get_value("{\"SecretId\":\"up\"}"), "v2");
    /* a new key: the next version is sealed under it, the old ones still read */
    const es_json *k = ok("TrentService.CreateKey", "{}");
    char id[64], body[512];
    snprintf(id, sizeof id, "%s", jstr(es_json_get(k, "KeyMetadata"), "KeyId"));
    snprintf(
        body, sizeof body,
        "{\"SecretId\":\"up\",\"KmsKeyId\":\"%s\",\"SecretString\":\"v3\",\"ClientRequestToken\":"
        "\"" TOK3 "\"}",
        id);
    ok("secretsmanager.UpdateSecret", body);
    cr_assert_str_eq(get_value("{\"SecretId\":\"up\"}"), "v3");
    cr_assert_str_eq(jstr(ok(DESCR, "{\"SecretId\":\"up\"}"), "KmsKeyId"), id);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    ok("TrentService.DisableKey", body);
    fails(GETV, "{\"SecretId\":\"up\"}", "DecryptionFailure");
    cr_assert_str_eq(get_value("{\"SecretId\":\"up\",\"VersionStage\":\"AWSPREVIOUS\"}"), "v2");
    fails("secretsmanager.UpdateSecret", "{\"SecretId\":\"up\",\"KmsKeyId\":\"alias/none\"}",
          "ResourceNotFoundException");
    fails("secretsmanager.UpdateSecret", "{\"SecretId\":\"none\",\"Description\":\"x\"}",
          "ResourceNotFoundException");
}
