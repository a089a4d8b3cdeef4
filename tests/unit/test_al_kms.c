/* Embedded KMS: keys, aliases, key references, envelope encryption. */
#include "al_helpers.h"

#include <ctype.h>
#include <sys/wait.h>

#include <fcntl.h>

#include "aws/local/internal.h"
#include "aws/local/kms.h"
#include "common/alloc.h"

TestSuite(al_kms, .init = alt_setup, .fini = alt_teardown);

static char *b64(const char *s)
{
    es_buf b;
    es_buf_init(&b, 1 << 20);
    cr_assert_eq(al_b64_encode(&b, (const uint8_t *)s, strlen(s)), 0);
    return es_buf_steal(&b);
}

static char *unb64(const char *s)
{
    uint8_t *d = NULL;
    size_t n = 0;
    cr_assert_eq(al_b64_decode(s, strlen(s), &d, &n), 0);
    return (char *)d;
}

/* Creates a key and answers its id (static buffer). */
static const char *new_key(void)
{
    static char id[64];
    const es_json *r = ok("TrentService.CreateKey", "{\"Description\":\"test key\"}");
    snprintf(id, sizeof id, "%s", jstr(es_json_get(r, "KeyMetadata"), "KeyId"));
    return id;
}

Test(al_kms, managed_aliases_exist_from_the_start)
{
    const es_json *r = ok("TrentService.ListAliases", "{}");
    const es_json *a = es_json_get(r, "Aliases");
    cr_assert_eq(es_json_len(a), 2);
    cr_assert_str_eq(jstr(es_json_at(a, 0), "AliasName"), "alias/aws/secretsmanager");
    cr_assert_str_eq(jstr(es_json_at(a, 1), "AliasName"), "alias/aws/ssm");
    cr_assert_str_eq(jstr(es_json_at(a, 1), "AliasArn"),
                     "arn:aws:kms:us-east-2:123456789012:alias/aws/ssm");
    r = ok("TrentService.DescribeKey", "{\"KeyId\":\"alias/aws/ssm\"}");
    cr_assert_str_eq(jstr(es_json_get(r, "KeyMetadata"), "KeyManager"), "AWS");
    /* a reopen does not create them twice */
    alt_reopen();
    r = ok("TrentService.ListKeys", "{}");
    cr_assert_eq(es_json_len(es_json_get(r, "Keys")), 2);
}

Test(al_kms, create_key_metadata_shape)
{
    const es_json *r = ok("TrentService.CreateKey", "{\"Description\":\"d1\"}");
    const es_json *m = es_json_get(r, "KeyMetadata");
    const char *id = jstr(m, "KeyId");
    cr_assert_eq(strlen(id), 36);
    char arn[128];
    snprintf(arn, sizeof arn, "arn:aws:kms:us-east-2:123456789012:key/%s", id);
    cr_assert_str_eq(jstr(m, "Arn"), arn);
    cr_assert_str_eq(jstr(m, "KeyState"), "Enabled");
    cr_assert_str_eq(jstr(m, "KeyManager"), "CUSTOMER");
    cr_assert_str_eq(jstr(m, "Description"), "d1");
    cr_assert_str_eq(jstr(m, "AWSAccountId"), "123456789012");
    int64_t t;
    cr_assert(es_json_as_int64(es_json_get(m, "CreationDate"), &t));
    cr_assert_eq(t, 1700000000);
    cr_assert_eq(es_json_get(m, "Enabled")->u.boolean, true);
}

Test(al_kms, create_key_rejects_unsupported_specs)
{
    fails("TrentService.CreateKey", "{\"KeyUsage\":\"SIGN_VERIFY\"}",
          "UnsupportedOperationException");
    fails("TrentService.CreateKey", "{\"KeySpec\":\"RSA_2048\"}", "UnsupportedOperationException");
    fails("TrentService.CreateKey", "{\"Description\":5}", "ValidationException");
}

Test(al_kms, key_references_in_four_forms)
{
    char id[64], body[512];
    snprintf(id, sizeof id, "%s", new_key());
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/MyAliasName\",\"TargetKeyId\":\"%s\"}", id);
    ok("TrentService.CreateAlias", body);
    const char *forms[] = {"%s", "arn:aws:kms:us-east-2:123456789012:key/%s", "alias/MyAliasName",
                           "arn:aws:kms:us-east-2:123456789012:alias/MyAliasName"};
    for (size_t i = 0; i < 4; i++) {
        char ref[256];
        snprintf(ref, sizeof ref, forms[i], id);
        snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", ref);
        const es_json *r = ok("TrentService.DescribeKey", body);
        cr_assert_str_eq(jstr(es_json_get(r, "KeyMetadata"), "KeyId"), id, "form %s", ref);
    }
    /* another region or account is not ours */
    snprintf(body, sizeof body, "{\"KeyId\":\"arn:aws:kms:eu-west-1:123456789012:key/%s\"}", id);
    fails("TrentService.DescribeKey", body, "NotFoundException");
    snprintf(body, sizeof body, "{\"KeyId\":\"arn:aws:kms:us-east-2:999999999999:key/%s\"}", id);
    fails("TrentService.DescribeKey", body, "NotFoundException");
    fails("TrentService.DescribeKey", "{\"KeyId\":\"alias/nope\"}", "NotFoundException");
    fails("TrentService.DescribeKey", "{\"KeyId\":\"00000000-0000-4000-8000-000000000000\"}",
          "NotFoundException");
    fails("TrentService.DescribeKey", "{\"KeyId\":\"MyAliasName\"}", "NotFoundException");
    fails("TrentService.DescribeKey", "{}", "ValidationException");
}

Test(al_kms, create_alias_errors)
{
    char id[64], body[512];
    snprintf(id, sizeof id, "%s", new_key());
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/a1\",\"TargetKeyId\":\"%s\"}", id);
    ok("TrentService.CreateAlias", body);
    fails("TrentService.CreateAlias", body, "AlreadyExistsException");
    snprintf(body, sizeof body, "{\"AliasName\":\"a1\",\"TargetKeyId\":\"%s\"}", id);
    fails("TrentService.CreateAlias", body, "ValidationException");
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/a b\",\"TargetKeyId\":\"%s\"}", id);
    fails("TrentService.CreateAlias", body, "ValidationException");
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/aws/mine\",\"TargetKeyId\":\"%s\"}", id);
    fails("TrentService.CreateAlias", body, "NotAuthorizedException");
    fails("TrentService.CreateAlias",
          "{\"AliasName\":\"alias/a2\",\"TargetKeyId\":\"00000000-0000-4000-8000-000000000000\"}",
          "NotFoundException");
    fails("TrentService.CreateAlias", "{\"AliasName\":\"alias/a3\",\"TargetKeyId\":\"alias/a1\"}",
          "ValidationException");
    /* ListAliases filtered by key */
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    const es_json *r = ok("TrentService.ListAliases", body);
    cr_assert_eq(es_json_len(es_json_get(r, "Aliases")), 1);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Aliases"), 0), "TargetKeyId"), id);
}

Test(al_kms, list_keys_pages)
{
    for (int i = 0; i < 3; i++)
        new_key();
    const es_json *r = ok("TrentService.ListKeys", "{\"Limit\":2}");
    cr_assert_eq(es_json_len(es_json_get(r, "Keys")), 2);
    cr_assert(es_json_get(r, "Truncated")->u.boolean);
    char body[256];
    snprintf(body, sizeof body, "{\"Limit\":2,\"Marker\":\"%s\"}", jstr(r, "NextMarker"));
    r = ok("TrentService.ListKeys", body);
    cr_assert_eq(es_json_len(es_json_get(r, "Keys")), 2);
    snprintf(body, sizeof body, "{\"Limit\":2,\"Marker\":\"%s\"}", jstr(r, "NextMarker"));
    r = ok("TrentService.ListKeys", body);
    cr_assert_eq(es_json_len(es_json_get(r, "Keys")), 1); /* 3 + 2 managed = 5 */
    cr_assert_not(es_json_get(r, "Truncated")->u.boolean);
    fails("TrentService.ListKeys", "{\"Limit\":0}", "ValidationException");
}

/* Encrypts text under key with context (JSON object text or NULL); answers
 * the base64 blob (es_free it). */
static char *encrypt(const char *key, const char *text, const char *context)
{
    char *pt = b64(text);
    es_buf body;
    es_buf_init(&body, 1 << 20);
    es_buf_printf(&body, "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\"%s%s}", key, pt,
                  context ? ",\"EncryptionContext\":" : "", context ? context : "");
    const es_json *r = ok("TrentService.Encrypt", es_buf_cstr(&body));
    char *blob = es_strdup(jstr(r, "CiphertextBlob"));
    cr_assert_str_eq(jstr(r, "EncryptionAlgorithm"), "SYMMETRIC_DEFAULT");
    cr_assert_not_null(strstr(jstr(r, "KeyId"), ":key/"));
    es_buf_free(&body);
    es_free(pt);
    return blob;
}

static int decrypt(const char *blob, const char *context, const char *keyid)
{
    es_buf body;
    es_buf_init(&body, 1 << 20);
    es_buf_printf(&body, "{\"CiphertextBlob\":\"%s\"", blob);
    if (context)
        es_buf_printf(&body, ",\"EncryptionContext\":%s", context);
    if (keyid)
        es_buf_printf(&body, ",\"KeyId\":\"%s\"", keyid);
    es_buf_append_str(&body, "}");
    int st = call("TrentService.Decrypt", es_buf_cstr(&body));
    es_buf_free(&body);
    return st;
}

Test(al_kms, encrypt_decrypt_round_trip_with_context)
{
    const char *ctx = "{\"purpose\":\"test\",\"app\":\"x\"}";
    char *blob = encrypt("alias/aws/ssm", "MyFirstParameter", ctx);
    /* context order does not matter */
    cr_assert_eq(decrypt(blob, "{\"app\":\"x\",\"purpose\":\"test\"}", NULL), 0, "%s",
                 T.err.message);
    char *pt = unb64(jstr(T.resp, "Plaintext"));
    cr_assert_str_eq(pt, "MyFirstParameter");
    es_free(pt);
    /* wrong, missing or extra context */
    cr_assert_eq(decrypt(blob, "{\"purpose\":\"other\",\"app\":\"x\"}", NULL), 400);
    cr_assert_str_eq(T.err.code, "InvalidCiphertextException");
    cr_assert_eq(decrypt(blob, NULL, NULL), 400);
    cr_assert_str_eq(T.err.code, "InvalidCiphertextException");
    cr_assert_eq(decrypt(blob, "{\"purpose\":\"test\",\"app\":\"x\",\"z\":\"1\"}", NULL), 400);
    /* the error never echoes the plaintext */
    cr_assert_null(strstr(T.err.message, "MyFirstParameter"));
    es_free(blob);
}

Test(al_kms, tampered_ciphertext_rejected_everywhere)
{
    char *blob = encrypt("alias/aws/ssm", "tamper-me-please", NULL);
    uint8_t *raw = NULL;
    size_t n = 0;
    cr_assert_eq(al_b64_decode(blob, strlen(blob), &raw, &n), 0);
    /* every byte: version, key-id length, key id, iv, tag, ciphertext */
    size_t positions[] = {0, 1, 2, 37, 38, 38 + 11, 50, 50 + 15, 66, n - 1};
    for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
        raw[positions[i]] ^= 0x01;
        es_buf b;
        es_buf_init(&b, 1 << 20);
        cr_assert_eq(al_b64_encode(&b, raw, n), 0);
        int st = decrypt(es_buf_cstr(&b), NULL, NULL);
        cr_assert_eq(st, 400, "flip at %zu accepted", positions[i]);
        cr_assert_str_eq(T.err.code, "InvalidCiphertextException", "flip at %zu: %s", positions[i],
                         T.err.code);
        es_buf_free(&b);
        raw[positions[i]] ^= 0x01;
    }
    /* truncated */
    es_buf b;
    es_buf_init(&b, 1 << 20);
    cr_assert_eq(al_b64_encode(&b, raw, 40), 0);
    cr_assert_eq(decrypt(es_buf_cstr(&b), NULL, NULL), 400);
    cr_assert_str_eq(T.err.code, "InvalidCiphertextException");
    es_buf_free(&b);
    cr_assert_eq(decrypt("not base64!", NULL, NULL), 400);
    cr_assert_str_eq(T.err.code, "InvalidCiphertextException");
    /* untouched still decrypts */
    cr_assert_eq(decrypt(blob, NULL, NULL), 0);
    es_free(raw);
    es_free(blob);
}

Test(al_kms, decrypt_with_the_wrong_key_id)
{
    char other[64];
    snprintf(other, sizeof other, "%s", new_key());
    char *blob = encrypt("alias/aws/ssm", "abc", NULL);
    cr_assert_eq(decrypt(blob, NULL, other), 400);
    cr_assert_str_eq(T.err.code, "IncorrectKeyException");
    cr_assert_eq(decrypt(blob, NULL, "alias/aws/ssm"), 0);
    es_free(blob);
}

Test(al_kms, encrypt_limits)
{
    char big[4098];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    char *pt = b64(big);
    es_buf body;
    es_buf_init(&body, 1 << 20);
    es_buf_printf(&body, "{\"KeyId\":\"alias/aws/ssm\",\"Plaintext\":\"%s\"}", pt);
    fails("TrentService.Encrypt", es_buf_cstr(&body), "ValidationException");
    es_buf_free(&body);
    es_free(pt);
    fails("TrentService.Encrypt", "{\"KeyId\":\"alias/aws/ssm\",\"Plaintext\":\"\"}",
          "ValidationException");
    fails("TrentService.Encrypt", "{\"KeyId\":\"alias/aws/ssm\",\"Plaintext\":\"@@@@\"}",
          "ValidationException");
    fails("TrentService.Encrypt", "{\"KeyId\":\"alias/missing\",\"Plaintext\":\"YQ==\"}",
          "NotFoundException");
    fails("TrentService.Encrypt",
          "{\"KeyId\":\"alias/aws/ssm\",\"Plaintext\":\"YQ==\",\"EncryptionContext\":{\"a\":1}}",
          "ValidationException");
    fails("TrentService.Encrypt",
          "{\"KeyId\":\"alias/aws/"
          "ssm\",\"Plaintext\":\"YQ==\",\"EncryptionAlgorithm\":\"RSAES_OAEP_SHA_1\"}",
          "InvalidKeyUsageException");
}

Test(al_kms, generate_data_key)
{
    const es_json *r =
        ok("TrentService.GenerateDataKey", "{\"KeyId\":\"alias/aws/ssm\",\"KeySpec\":\"AES_256\","
                                           "\"EncryptionContext\":{\"k\":\"v\"}}");
    uint8_t *dk = NULL;
    size_t n = 0;
    const char *p64 = jstr(r, "Plaintext");
    cr_assert_eq(al_b64_decode(p64, strlen(p64), &dk, &n), 0);
    cr_assert_eq(n, 32);
    char *blob = es_strdup(jstr(r, "CiphertextBlob"));
    char *p64copy = es_strdup(p64);
    cr_assert_eq(decrypt(blob, "{\"k\":\"v\"}", NULL), 0);
    cr_assert_str_eq(jstr(T.resp, "Plaintext"), p64copy);
    r = ok("TrentService.GenerateDataKey", "{\"KeyId\":\"alias/aws/ssm\",\"NumberOfBytes\":7}");
    cr_assert_eq(strlen(jstr(r, "Plaintext")), 12); /* 7 bytes in base64 */
    fails("TrentService.GenerateDataKey", "{\"KeyId\":\"alias/aws/ssm\"}", "ValidationException");
    fails("TrentService.GenerateDataKey",
          "{\"KeyId\":\"alias/aws/ssm\",\"KeySpec\":\"AES_256\",\"NumberOfBytes\":7}",
          "ValidationException");
    fails("TrentService.GenerateDataKey", "{\"KeyId\":\"alias/aws/ssm\",\"NumberOfBytes\":1025}",
          "ValidationException");
    es_free(dk);
    es_free(blob);
    es_free(p64copy);
}

Test(al_kms, ciphertext_survives_reopen)
{
    char *blob = encrypt("alias/aws/secretsmanager", "persist", NULL);
    alt_reopen();
    cr_assert_eq(decrypt(blob, NULL, NULL), 0, "%s", T.err.message);
    char *pt = unb64(jstr(T.resp, "Plaintext"));
    cr_assert_str_eq(pt, "persist");
    es_free(pt);
    es_free(blob);
}

Test(al_kms, key_material_is_wrapped_under_the_master_key)
{
    /* a different master key cannot unwrap the stored keys */
    char *blob = encrypt("alias/aws/ssm", "x", NULL);
    al_close(T.ctx);
    T.ctx = NULL;
    char p[256];
    snprintf(p, sizeof p, "%s/%s", T.dir, AL_MASTER_KEY_FILE);
    int fd = open(p, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    uint8_t other[32];
    memset(other, 7, sizeof other);
    cr_assert_eq(write(fd, other, sizeof other), (ssize_t)sizeof other);
    close(fd);
    alt_open();
    cr_assert_eq(decrypt(blob, NULL, NULL), 500);
    es_free(blob);
}

Test(al_kms, files_are_private)
{
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", T.dir, AL_MASTER_KEY_FILE);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(st.st_size, 32);
    snprintf(p, sizeof p, "%s/%s", T.dir, AL_DB_FILE);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* a master key readable by others is refused */
    al_close(T.ctx);
    T.ctx = NULL;
    snprintf(p, sizeof p, "%s/%s", T.dir, AL_MASTER_KEY_FILE);
    cr_assert_eq(chmod(p, 0644), 0);
    al_options o = {.state_dir = T.dir, .region = "us-east-2", .account = "123456789012"};
    char err[256] = "";
    al_ctx *c = NULL;
    cr_assert_eq(al_open(&o, &c, err, sizeof err), -EPERM);
    cr_assert_null(c);
    cr_assert_not_null(strstr(err, "0600"), "%s", err);
    cr_assert_eq(chmod(p, 0600), 0);
    alt_open();
}

Test(al_kms, authorisation_hook_is_asked)
{
    char *blob = encrypt("alias/aws/ssm", "x", NULL);
    cr_assert_str_eq(T.last_action, "kms:Encrypt");
    cr_assert_not_null(strstr(T.last_resource, "arn:aws:kms:us-east-2:123456789012:key/"));
    T.deny_action = "kms:Decrypt";
    cr_assert_eq(decrypt(blob, NULL, NULL), 400);
    cr_assert_str_eq(T.err.code, "AccessDeniedException");
    cr_assert_not_null(strstr(T.err.message, "kms:Decrypt"));
    es_free(blob);
}

Test(al_kms, dispatcher_rejects_unknown_and_malformed)
{
    fails("TrentService.ScheduleKeyDeletion", "{}", "UnknownOperationException");
    fails("Nope", "{}", "UnknownOperationException");
    fails("TrentService.ListKeys", "{not json", "SerializationException");
    fails("TrentService.ListKeys", "[1]", "SerializationException");
    /* a value with a NUL would be cut short: refused instead */
    fails("secretsmanager.CreateSecret", "{\"Name\":\"n\",\"SecretString\":\"a\\u0000b\"}",
          "SerializationException");
    fails("AmazonSSM.GetParameters", "{\"Names\":[\"/a\\u0000b\"]}", "SerializationException");
    cr_assert(al_knows_target("TrentService.Encrypt"));
    cr_assert(al_knows_target("AmazonSSM.GetParameter"));
    cr_assert(al_knows_target("secretsmanager.GetSecretValue"));
    cr_assert_not(al_knows_target("AmazonSSM.Encrypt"));
    /* an empty body is an empty request */
    es_buf_reset(&T.out);
    cr_assert_eq(al_dispatch(T.ctx, "TrentService.ListKeys", NULL, "", 0, &T.out, &T.err), 0);
}

Test(al_kms, base64_strict)
{
    uint8_t *d = NULL;
    size_t n = 0;
    cr_assert_eq(al_b64_decode("YWJj", 4, &d, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(d, "abc", 3), 0);
    es_free(d);
    cr_assert_eq(al_b64_decode("YQ==", 4, &d, &n), 0);
    cr_assert_eq(n, 1);
    es_free(d);
    cr_assert_eq(al_b64_decode("YQ=", 3, &d, &n), -EINVAL);
    cr_assert_eq(al_b64_decode("Y=Q=", 4, &d, &n), -EINVAL);
    cr_assert_eq(al_b64_decode("YQ =", 4, &d, &n), -EINVAL);
    cr_assert_eq(al_b64_decode("", 0, &d, &n), 0);
    cr_assert_eq(n, 0);
    es_free(d);
}

Test(al_kms, missing_master_key_is_not_silently_replaced)
{
    al_close(T.ctx);
    T.ctx = NULL;
    char p[256];
    snprintf(p, sizeof p, "%s/%s", T.dir, AL_MASTER_KEY_FILE);
    cr_assert_eq(unlink(p), 0);
    al_options o = {.state_dir = T.dir, .region = "us-east-2", .account = "123456789012"};
    char err[512] = "";
    al_ctx *c = NULL;
    cr_assert_eq(al_open(&o, &c, err, sizeof err), -ENOKEY);
    cr_assert_null(c);
    cr_assert_not_null(strstr(err, "missing"), "%s", err);
    cr_assert_eq(access(p, F_OK), -1, "a new master key was made");
    /* a fresh directory (no database) still gets one */
    alt_rm_dir();
    cr_assert_eq(mkdir(T.dir, 0700), 0);
    alt_open();
    cr_assert_eq(access(p, F_OK), 0);
}

Test(al_kms, disabled_keys_refuse_work)
{
    char id[64], body[256];
    snprintf(id, sizeof id, "%s", new_key());
    char *blob = encrypt(id, "while-enabled", NULL);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    ok("TrentService.DisableKey", body);
    const es_json *m = es_json_get(ok("TrentService.DescribeKey", body), "KeyMetadata");
    cr_assert_not(es_json_get(m, "Enabled")->u.boolean);
    cr_assert_str_eq(jstr(m, "KeyState"), "Disabled");
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"Plaintext\":\"YQ==\"}", id);
    fails("TrentService.Encrypt", body, "DisabledException");
    cr_assert_eq(decrypt(blob, NULL, NULL), 400);
    cr_assert_str_eq(T.err.code, "DisabledException");
    /* survives a reopen, and comes back when enabled */
    alt_reopen();
    cr_assert_eq(decrypt(blob, NULL, NULL), 400);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    ok("TrentService.EnableKey", body);
    cr_assert_eq(decrypt(blob, NULL, NULL), 0);
    fails("TrentService.DisableKey", "{\"KeyId\":\"alias/aws/ssm\"}", "NotAuthorizedException");
    fails("TrentService.DisableKey", "{\"KeyId\":\"alias/none\"}", "NotFoundException");
    es_free(blob);
}

/* Request and key ids: version-4 UUIDs, all different, also across a fork
 * (the random bytes are drawn ahead in a per-process pool). */
Test(al_kms, uuids_are_v4_unique_and_fork_safe)
{
    static char seen[300][AL_KEY_ID_LEN + 1];
    for (size_t i = 0; i < 300; i++) {
        cr_assert_eq(al_uuid(seen[i]), 0);
        cr_assert_eq(strlen(seen[i]), 36);
        cr_assert_eq(seen[i][14], '4', "%s", seen[i]);
        cr_assert(strchr("89ab", seen[i][19]), "%s", seen[i]);
        for (size_t j = 0; j < 36; j++)
            cr_assert(j == 8 || j == 13 || j == 18 || j == 23 ? seen[i][j] == '-'
                                                              : isxdigit((unsigned char)seen[i][j]),
                      "%s", seen[i]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(seen[i], seen[j]);
    }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char id[AL_KEY_ID_LEN + 1];
        al_uuid(id);
        ssize_t w = write(fds[1], id, sizeof id);
        _exit(w == (ssize_t)sizeof id ? 0 : 1);
    }
    char child[AL_KEY_ID_LEN + 1] = "", mine[AL_KEY_ID_LEN + 1];
    cr_assert_eq(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    int st = 0;
    waitpid(pid, &st, 0);
    close(fds[0]);
    close(fds[1]);
    cr_assert_eq(al_uuid(mine), 0);
    cr_assert_str_neq(child, mine, "parent and child drew the same id");
}

Test(al_kms, memo_path_checks_every_tag)
{
    /* Inside a memo (GetParameters), the second value on with the same key
     * takes the expanded-key path, which sets the tag with the IV: a flipped
     * tag, IV or ciphertext byte there must fail, and the next good value
     * still decrypt (a failure leaves no tag or state behind). */
    char key[AL_KEY_ID_LEN + 1];
    cr_assert_eq(al_kms_resolve(T.ctx, "alias/aws/ssm", key), 0);
    al_kv kv = {"PARAMETER_ARN", "arn:aws:ssm:us-east-2:123456789012:parameter/p"};
    const char *vals[] = {"first-value", "second-value", "third-value-longer-than-a-block"};
    uint8_t *blob[3];
    size_t bl[3];
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(al_kms_seal(T.ctx, key, &kv, 1, (const uint8_t *)vals[i], strlen(vals[i]),
                                 &blob[i], &bl[i]),
                     0);
    size_t hdr = 2 + AL_KEY_ID_LEN;
    size_t flips[] = {hdr, hdr + AL_KMS_IV_LEN, hdr + AL_KMS_IV_LEN + AL_KMS_TAG_LEN - 1,
                      bl[1] - 1};
    for (size_t f = 0; f < sizeof flips / sizeof flips[0]; f++) {
        al_kms_memo_begin(T.ctx);
        uint8_t *pt = NULL;
        size_t n = 0;
        cr_assert_eq(al_kms_unseal(T.ctx, blob[0], bl[0], &kv, 1, &pt, &n, NULL), 0);
        cr_assert_eq(n, strlen(vals[0]));
        cr_assert_eq(memcmp(pt, vals[0], n), 0);
        es_free(pt);
        cr_assert(T.ctx->memo_gcm_ready, "the first value did not prepare the memo");
        blob[1][flips[f]] ^= 0x01;
        pt = NULL;
        cr_assert_eq(al_kms_unseal(T.ctx, blob[1], bl[1], &kv, 1, &pt, &n, NULL), -EBADMSG,
                     "flip at %zu accepted on the memo path", flips[f]);
        cr_assert_null(pt);
        blob[1][flips[f]] ^= 0x01;
        for (size_t i = 1; i < 3; i++) {
            cr_assert_eq(al_kms_unseal(T.ctx, blob[i], bl[i], &kv, 1, &pt, &n, NULL), 0);
            cr_assert_eq(n, strlen(vals[i]));
            cr_assert_eq(memcmp(pt, vals[i], n), 0);
            es_free(pt);
        }
        al_kms_memo_end(T.ctx);
    }
    for (size_t i = 0; i < 3; i++)
        es_free(blob[i]);
}
