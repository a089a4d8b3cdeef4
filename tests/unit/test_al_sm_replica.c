/* Embedded Secrets Manager: replication (ReplicateSecretToRegions,
 * RemoveRegionsFromReplication, StopReplicationToReplica, CreateSecret's
 * AddReplicaRegions, PrimaryRegion and ReplicationStatus). */
#include "al_helpers.h"

#include "aws/local/db.h"
#include "aws/local/internal.h"
#include "aws/local/secretsmanager.h"

TestSuite(al_smr, .init = alt_setup, .fini = alt_teardown);

#define SM "secretsmanager."
#define HOME_ARN "arn:aws:secretsmanager:us-east-2:123456789012:secret:"
#define INVALID_REGION "Invalid replica region."

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

static char primary_arn[512];

/* Makes "app/db" = v1 in the home region and replicates it to eu-west-1 and
 * ap-southeast-2. */
static void make_replicated(void)
{
    const es_json *r =
        ok_in(NULL, SM "CreateSecret", "{\"Name\":\"app/db\",\"SecretString\":\"v1\"}");
    snprintf(primary_arn, sizeof primary_arn, "%s", jstr(r, "ARN"));
    r = ok_in(NULL, SM "ReplicateSecretToRegions",
              "{\"SecretId\":\"app/db\",\"AddReplicaRegions\":[{\"Region\":\"eu-west-1\"},"
              "{\"Region\":\"ap-southeast-2\"}]}");
    cr_assert_str_eq(jstr(r, "ARN"), primary_arn);
    const es_json *rs = es_json_get(r, "ReplicationStatus");
    cr_assert_eq(es_json_len(rs), 2);
    cr_assert_str_eq(jstr(es_json_at(rs, 0), "Region"), "ap-southeast-2");
    cr_assert_str_eq(jstr(es_json_at(rs, 1), "Region"), "eu-west-1");
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(jstr(es_json_at(rs, i), "Status"), "InSync");
        cr_assert_str_eq(jstr(es_json_at(rs, i), "KmsKeyId"), "alias/aws/secretsmanager");
        cr_assert_null(es_json_get(es_json_at(rs, i), "StatusMessage"));
    }
}

/* The replica's ARN: the primary's with the region changed. */
static void replica_arn(const char *region, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:secretsmanager:%s:123456789012:secret:%s", region,
             primary_arn + strlen(HOME_ARN));
}

static const char *value_in(const char *region, const char *stage)
{
    char body[256];
    snprintf(body, sizeof body, "{\"SecretId\":\"app/db\",\"VersionStage\":\"%s\"}", stage);
    return jstr(ok_in(region, SM "GetSecretValue", body), "SecretString");
}

Test(al_smr, replicas_read_in_their_regions)
{
    make_replicated();
    char arn[512], body[700];
    replica_arn("eu-west-1", arn, sizeof arn);
    const es_json *r = ok_in("eu-west-1", SM "GetSecretValue", "{\"SecretId\":\"app/db\"}");
    cr_assert_str_eq(jstr(r, "ARN"), arn);
    cr_assert_str_eq(jstr(r, "SecretString"), "v1");
    char vid[128];
    snprintf(vid, sizeof vid, "%s", jstr(r, "VersionId"));
    cr_assert_str_eq(
        jstr(ok_in(NULL, SM "GetSecretValue", "{\"SecretId\":\"app/db\"}"), "VersionId"), vid);
    /* by the replica's full ARN, and in the third region */
    snprintf(body, sizeof body, "{\"SecretId\":\"%s\"}", arn);
    ok_in("eu-west-1", SM "GetSecretValue", body);
    cr_assert_str_eq(value_in("ap-southeast-2", "AWSCURRENT"), "v1");
    /* the replica says where its primary is; the primary lists its replicas */
    r = ok_in("eu-west-1", SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    cr_assert_str_eq(jstr(r, "PrimaryRegion"), "us-east-2");
    cr_assert_null(es_json_get(r, "ReplicationStatus"));
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    cr_assert_str_eq(jstr(r, "PrimaryRegion"), "us-east-2");
    const es_json *rs = es_json_get(r, "ReplicationStatus");
    cr_assert_eq(es_json_len(rs), 2);
    /* reading the replica shows in the primary's status */
    cr_assert_not_null(es_json_get(es_json_at(rs, 1), "LastAccessedDate"));
    r = ok_in("eu-west-1", SM "ListSecrets", "{}");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "SecretList"), 0), "PrimaryRegion"),
                     "us-east-2");
    /* a secret outside replication shows neither */
    r = ok_in(NULL, SM "CreateSecret", "{\"Name\":\"alone\",\"SecretString\":\"a\"}");
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"alone\"}");
    cr_assert_null(es_json_get(r, "PrimaryRegion"));
    cr_assert_null(es_json_get(r, "ReplicationStatus"));
}

Test(al_smr, primary_changes_reach_replicas)
{
    make_replicated();
    ok_in(NULL, SM "PutSecretValue", "{\"SecretId\":\"app/db\",\"SecretString\":\"v2\"}");
    cr_assert_str_eq(value_in("eu-west-1", "AWSCURRENT"), "v2");
    cr_assert_str_eq(value_in("ap-southeast-2", "AWSPREVIOUS"), "v1");
    ok_in(NULL, SM "UpdateSecret",
          "{\"SecretId\":\"app/db\",\"Description\":\"d\",\"SecretString\":\"v3\"}");
    cr_assert_str_eq(value_in("eu-west-1", "AWSCURRENT"), "v3");
    cr_assert_str_eq(
        jstr(ok_in("eu-west-1", SM "DescribeSecret", "{\"SecretId\":\"app/db\"}"), "Description"),
        "d");
    /* a label moved back */
    char v2[128], body[512];
    snprintf(v2, sizeof v2, "%s",
             jstr(ok_in(NULL, SM "GetSecretValue",
                        "{\"SecretId\":\"app/db\",\"VersionStage\":\"AWSPREVIOUS\"}"),
                  "VersionId"));
    char cur[128];
    snprintf(cur, sizeof cur, "%s",
             jstr(ok_in(NULL, SM "GetSecretValue", "{\"SecretId\":\"app/db\"}"), "VersionId"));
    snprintf(body, sizeof body,
             "{\"SecretId\":\"app/db\",\"VersionStage\":\"AWSCURRENT\",\"MoveToVersionId\":\"%s\","
             "\"RemoveFromVersionId\":\"%s\"}",
             v2, cur);
    ok_in(NULL, SM "UpdateSecretVersionStage", body);
    cr_assert_str_eq(value_in("eu-west-1", "AWSCURRENT"), "v2");
    /* tags */
    ok_in(NULL, SM "TagResource",
          "{\"SecretId\":\"app/db\",\"Tags\":[{\"Key\":\"t\",\"Value\":\"1\"}]}");
    const es_json *r = ok_in("ap-southeast-2", SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    cr_assert_eq(es_json_len(es_json_get(r, "Tags")), 1);
    ok_in(NULL, SM "UntagResource", "{\"SecretId\":\"app/db\",\"TagKeys\":[\"t\"]}");
    r = ok_in("ap-southeast-2", SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    cr_assert_eq(es_json_len(es_json_get(r, "Tags")), 0);
    /* a rotation by the built-in rotator */
    ok_in(NULL, SM "RotateSecret", "{\"SecretId\":\"app/db\"}");
    char rotated[128];
    snprintf(rotated, sizeof rotated, "%s", value_in(NULL, "AWSCURRENT"));
    cr_assert_str_neq(rotated, "v2");
    cr_assert_str_eq(value_in("eu-west-1", "AWSCURRENT"), rotated);
    cr_assert_str_eq(value_in("eu-west-1", "AWSPREVIOUS"), "v2");
    r = ok_in("eu-west-1", SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    cr_assert_not_null(es_json_get(r, "LastRotatedDate"));
}

Test(al_smr, replica_writes_refused)
{
    make_replicated();
    static const char *const ops[][2] = {
        {"PutSecretValue", "\"SecretString\":\"x\""},
        {"UpdateSecret", "\"Description\":\"x\""},
        {"UpdateSecretVersionStage", "\"VersionStage\":\"L\",\"MoveToVersionId\":\"x\""},
        {"DeleteSecret", "\"ForceDeleteWithoutRecovery\":true"},
        {"RestoreSecret", "\"Description\":null"},
        {"TagResource", "\"Tags\":[{\"Key\":\"k\",\"Value\":\"v\"}]"},
        {"UntagResource", "\"TagKeys\":[\"k\"]"},
        {"RotateSecret", "\"RotateImmediately\":true"},
        {"CancelRotateSecret", "\"Description\":null"},
        {"PutResourcePolicy", "\"ResourcePolicy\":\"{}\""},
        {"DeleteResourcePolicy", "\"Description\":null"},
        {"ReplicateSecretToRegions", "\"AddReplicaRegions\":[{\"Region\":\"us-west-2\"}]"},
        {"RemoveRegionsFromReplication", "\"RemoveReplicaRegions\":[\"us-west-2\"]"},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        char target[128], body[512];
        snprintf(target, sizeof target, SM "%s", ops[i][0]);
        snprintf(body, sizeof body, "{\"SecretId\":\"app/db\",%s}", ops[i][1]);
        fails_in("eu-west-1", target, body, "InvalidParameterException", AL_SM_REPLICA_MSG);
    }
    cr_assert_str_eq(value_in("eu-west-1", "AWSCURRENT"), "v1");
}

Test(al_smr, name_taken_fails_the_region_unless_forced)
{
    const es_json *r =
        ok_in("eu-west-1", SM "CreateSecret", "{\"Name\":\"x\",\"SecretString\":\"eu\"}");
    char eu_arn[512], body[700];
    snprintf(eu_arn, sizeof eu_arn, "%s", jstr(r, "ARN"));
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"x\",\"SecretString\":\"home\"}");
    r = ok_in(NULL, SM "ReplicateSecretToRegions",
              "{\"SecretId\":\"x\",\"AddReplicaRegions\":[{\"Region\":\"eu-west-1\"},"
              "{\"Region\":\"us-west-2\"}]}");
    const es_json *rs = es_json_get(r, "ReplicationStatus");
    cr_assert_str_eq(jstr(es_json_at(rs, 0), "Region"), "eu-west-1");
    cr_assert_str_eq(jstr(es_json_at(rs, 0), "Status"), "Failed");
    cr_assert_str_eq(jstr(es_json_at(rs, 0), "StatusMessage"),
                     "Replication failed: Secret name x already exists in region eu-west-1.");
    cr_assert_str_eq(jstr(es_json_at(rs, 1), "Status"), "InSync");
    /* the other secret is untouched, and the failure stays in the status */
    cr_assert_str_eq(
        jstr(ok_in("eu-west-1", SM "GetSecretValue", "{\"SecretId\":\"x\"}"), "SecretString"),
        "eu");
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"x\"}");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "ReplicationStatus"), 0), "Status"), "Failed");
    /* forced: the other secret gives way to the replica */
    r = ok_in(NULL, SM "ReplicateSecretToRegions",
              "{\"SecretId\":\"x\",\"ForceOverwriteReplicaSecret\":true,"
              "\"AddReplicaRegions\":[{\"Region\":\"eu-west-1\"}]}");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "ReplicationStatus"), 0), "Status"), "InSync");
    cr_assert_str_eq(
        jstr(ok_in("eu-west-1", SM "GetSecretValue", "{\"SecretId\":\"x\"}"), "SecretString"),
        "home");
    snprintf(body, sizeof body, "{\"SecretId\":\"%s\"}", eu_arn);
    fails_in("eu-west-1", SM "GetSecretValue", body, "ResourceNotFoundException", NULL);
    /* a replica is never overwritten by another primary's replication */
    ok_in("us-west-1", SM "CreateSecret", "{\"Name\":\"x\",\"SecretString\":\"w1\"}");
    r = ok_in("us-west-1", SM "ReplicateSecretToRegions",
              "{\"SecretId\":\"x\",\"ForceOverwriteReplicaSecret\":true,"
              "\"AddReplicaRegions\":[{\"Region\":\"eu-west-1\"}]}");
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "ReplicationStatus"), 0), "Status"), "Failed");
}

Test(al_smr, replicate_validation)
{
    ok_in(NULL, SM "CreateSecret", "{\"Name\":\"v\",\"SecretString\":\"1\"}");
    static const char *const bad[] = {
        "[{\"Region\":\"us-east-2\"}]",                            /* its own region */
        "[{\"Region\":\"xx-nowhere-9\"}]",                         /* no such region */
        "[{\"Region\":\"EU\"}]",                                   /* not a region */
        "[{\"Region\":\"cn-north-1\"}]",                           /* another partition */
        "[{\"Region\":\"eu-west-1\"},{\"Region\":\"eu-west-1\"}]", /* twice */
        "[{\"KmsKeyId\":\"alias/x\"}]",                            /* no Region */
        "[\"eu-west-1\"]",                                         /* not an object */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"SecretId\":\"v\",\"AddReplicaRegions\":%s}", bad[i]);
        fails_in(NULL, SM "ReplicateSecretToRegions", body, "InvalidParameterException",
                 INVALID_REGION);
    }
    fails_in(NULL, SM "ReplicateSecretToRegions", "{\"SecretId\":\"v\",\"AddReplicaRegions\":[]}",
             "InvalidParameterException", NULL);
    fails_in(NULL, SM "ReplicateSecretToRegions", "{\"SecretId\":\"v\"}",
             "InvalidParameterException", NULL);
    fails_in(NULL, SM "ReplicateSecretToRegions",
             "{\"SecretId\":\"none\",\"AddReplicaRegions\":[{\"Region\":\"eu-west-1\"}]}",
             "ResourceNotFoundException", NULL);
    fails_in(NULL, SM "CreateSecret",
             "{\"Name\":\"w\",\"AddReplicaRegions\":[{\"Region\":\"us-east-2\"}]}",
             "InvalidParameterException", INVALID_REGION);
    ok_in(NULL, SM "ReplicateSecretToRegions",
          "{\"SecretId\":\"v\",\"AddReplicaRegions\":[{\"Region\":\"eu-west-1\"}]}");
    fails_in(NULL, SM "ReplicateSecretToRegions",
             "{\"SecretId\":\"v\",\"AddReplicaRegions\":[{\"Region\":\"eu-west-1\"}]}",
             "InvalidRequestException", "The secret is already replicated to eu-west-1.");
    /* refused as a whole: nothing was made for the first region */
    fails_in(NULL, SM "ReplicateSecretToRegions",
             "{\"SecretId\":\"v\",\"AddReplicaRegions\":[{\"Region\":\"us-west-2\"},"
             "{\"Region\":\"eu-west-1\"}]}",
             "InvalidRequestException", NULL);
    fails_in("us-west-2", SM "DescribeSecret", "{\"SecretId\":\"v\"}", "ResourceNotFoundException",
             NULL);
    /* denied */
    T.deny_action = "secretsmanager:ReplicateSecretToRegions";
    fails_in(NULL, SM "ReplicateSecretToRegions",
             "{\"SecretId\":\"v\",\"AddReplicaRegions\":[{\"Region\":\"us-west-2\"}]}",
             "AccessDeniedException", NULL);
}

Test(al_smr, remove_regions_then_delete)
{
    make_replicated();
    fails_in(NULL, SM "DeleteSecret", "{\"SecretId\":\"app/db\"}", "InvalidParameterException",
             "You can't delete secret app/db that still has replica regions "
             "[ap-southeast-2,eu-west-1]");
    const es_json *r = ok_in(NULL, SM "RemoveRegionsFromReplication",
                             "{\"SecretId\":\"app/db\",\"RemoveReplicaRegions\":[\"eu-west-1\"]}");
    cr_assert_str_eq(jstr(r, "ARN"), primary_arn);
    cr_assert_eq(es_json_len(es_json_get(r, "ReplicationStatus")), 1);
    fails_in("eu-west-1", SM "DescribeSecret", "{\"SecretId\":\"app/db\"}",
             "ResourceNotFoundException", NULL);
    ok_in("ap-southeast-2", SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    /* again: nothing to do */
    ok_in(NULL, SM "RemoveRegionsFromReplication",
          "{\"SecretId\":\"app/db\",\"RemoveReplicaRegions\":[\"eu-west-1\"]}");
    fails_in(NULL, SM "RemoveRegionsFromReplication",
             "{\"SecretId\":\"app/db\",\"RemoveReplicaRegions\":[\"Eu\"]}",
             "InvalidParameterException", INVALID_REGION);
    fails_in(NULL, SM "RemoveRegionsFromReplication",
             "{\"SecretId\":\"app/db\",\"RemoveReplicaRegions\":[]}", "InvalidParameterException",
             NULL);
    r = ok_in(NULL, SM "RemoveRegionsFromReplication",
              "{\"SecretId\":\"app/db\",\"RemoveReplicaRegions\":[\"ap-southeast-2\"]}");
    cr_assert_eq(es_json_len(es_json_get(r, "ReplicationStatus")), 0);
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    cr_assert_null(es_json_get(r, "PrimaryRegion"));
    ok_in(NULL, SM "DeleteSecret", "{\"SecretId\":\"app/db\"}");
    /* the name is free again in the replica's region */
    ok_in("eu-west-1", SM "CreateSecret", "{\"Name\":\"app/db\",\"SecretString\":\"new\"}");
}

Test(al_smr, stop_replication_promotes_the_replica)
{
    make_replicated();
    char arn[512];
    replica_arn("eu-west-1", arn, sizeof arn);
    fails_in(NULL, SM "StopReplicationToReplica", "{\"SecretId\":\"app/db\"}",
             "InvalidRequestException", "The secret app/db is not a replica secret.");
    const es_json *r =
        ok_in("eu-west-1", SM "StopReplicationToReplica", "{\"SecretId\":\"app/db\"}");
    cr_assert_str_eq(jstr(r, "ARN"), arn);
    /* standalone now: its own writes, no primary */
    ok_in("eu-west-1", SM "PutSecretValue", "{\"SecretId\":\"app/db\",\"SecretString\":\"own\"}");
    r = ok_in("eu-west-1", SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    cr_assert_null(es_json_get(r, "PrimaryRegion"));
    /* the primary forgot the region and no longer reaches it */
    r = ok_in(NULL, SM "DescribeSecret", "{\"SecretId\":\"app/db\"}");
    const es_json *rs = es_json_get(r, "ReplicationStatus");
    cr_assert_eq(es_json_len(rs), 1);
    cr_assert_str_eq(jstr(es_json_at(rs, 0), "Region"), "ap-southeast-2");
    ok_in(NULL, SM "PutSecretValue", "{\"SecretId\":\"app/db\",\"SecretString\":\"v2\"}");
    cr_assert_str_eq(value_in("eu-west-1", "AWSCURRENT"), "own");
    cr_assert_str_eq(value_in("ap-southeast-2", "AWSCURRENT"), "v2");
}

Test(al_smr, create_with_replicas_and_keys)
{
    const es_json *r = ok_in("eu-west-1", "TrentService.CreateKey", "{}");
    char key[64], body[512];
    snprintf(key, sizeof key, "%s", jstr(es_json_get(r, "KeyMetadata"), "KeyId"));
    snprintf(body, sizeof body,
             "{\"Name\":\"c\",\"SecretString\":\"cv\",\"AddReplicaRegions\":["
             "{\"Region\":\"eu-west-1\",\"KmsKeyId\":\"%s\"},"
             "{\"Region\":\"us-west-2\",\"KmsKeyId\":\"alias/none\"}]}",
             key);
    r = ok_in(NULL, SM "CreateSecret", body);
    cr_assert_not_null(es_json_get(r, "VersionId"));
    const es_json *rs = es_json_get(r, "ReplicationStatus");
    cr_assert_eq(es_json_len(rs), 2);
    cr_assert_str_eq(jstr(es_json_at(rs, 0), "Status"), "InSync");
    cr_assert_str_eq(jstr(es_json_at(rs, 0), "KmsKeyId"), key);
    cr_assert_str_eq(jstr(es_json_at(rs, 1), "Status"), "Failed");
    cr_assert_str_eq(jstr(es_json_at(rs, 1), "StatusMessage"),
                     "Replication failed: KMS key alias/none is not found in region us-west-2.");
    r = ok_in("eu-west-1", SM "DescribeSecret", "{\"SecretId\":\"c\"}");
    cr_assert_str_eq(jstr(r, "KmsKeyId"), key);
    cr_assert_str_eq(
        jstr(ok_in("eu-west-1", SM "GetSecretValue", "{\"SecretId\":\"c\"}"), "SecretString"),
        "cv");
    /* a key of the primary's region is no key in the replica's */
    r = ok_in(NULL, "TrentService.CreateKey", "{}");
    snprintf(key, sizeof key, "%s", jstr(es_json_get(r, "KeyMetadata"), "KeyId"));
    snprintf(body, sizeof body,
             "{\"SecretId\":\"c\",\"AddReplicaRegions\":[{\"Region\":\"ap-south-1\","
             "\"KmsKeyId\":\"%s\"}]}",
             key);
    r = ok_in(NULL, SM "ReplicateSecretToRegions", body);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "ReplicationStatus"), 0), "Status"), "Failed");
}

/* What the replica stores: KMS ciphertext under its own region's key,
 * never the value. */
Test(al_smr, replica_values_sealed_under_its_region)
{
    make_replicated();
    char arn[512];
    replica_arn("eu-west-1", arn, sizeof arn);
    sqlite3 *h = al_db_handle(T.ctx->db);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h,
                                    "SELECT v.blob, (SELECT region FROM kms_key k WHERE "
                                    "k.key_id=substr(CAST(v.blob AS TEXT), 3, 36)) FROM "
                                    "sm_version v WHERE v.arn=?",
                                    -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    const uint8_t *b = sqlite3_column_blob(st, 0);
    int n = sqlite3_column_bytes(st, 0);
    cr_assert_gt(n, 40);
    cr_assert_null(memmem(b, (size_t)n, "v1", 2));
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 1), "eu-west-1");
    sqlite3_finalize(st);
}
