/* Embedded KMS: keys, aliases, key references, envelope encryption. */
#include "al_helpers.h"

#include <ctype.h>
#include <sys/wait.h>

#include <fcntl.h>

#include <sqlite3.h>

#include "aws/local/db.h"
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
    fails("TrentService.ConnectCustomKeyStore", "{}", "UnknownOperationException");
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
    memset(&T.ctx->cache_stats, 0, sizeof T.ctx->cache_stats);
    for (size_t f = 0; f < sizeof flips / sizeof flips[0]; f++) {
        al_kms_memo_begin(T.ctx);
        uint8_t *pt = NULL;
        size_t n = 0;
        cr_assert_eq(al_kms_unseal(T.ctx, blob[0], bl[0], &kv, 1, &pt, &n, NULL), 0);
        cr_assert_eq(n, strlen(vals[0]));
        cr_assert_eq(memcmp(pt, vals[0], n), 0);
        es_free(pt);
        al_cache_stats s0;
        al_get_cache_stats(T.ctx, &s0);
        cr_assert_eq(s0.kms_key_loads, 1, "the first value did not keep its key");
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
        al_cache_stats s1;
        al_get_cache_stats(T.ctx, &s1);
        cr_assert_eq(s1.kms_key_loads, 1, "the key was unwrapped again");
        cr_assert_eq(s1.kms_key_hits, s0.kms_key_hits + 3, "not every value took the kept key");
        al_kms_memo_end(T.ctx);
        al_kms_keep_free(T.ctx); /* the next flip starts from nothing kept */
        memset(&T.ctx->cache_stats, 0, sizeof T.ctx->cache_stats);
    }
    for (size_t i = 0; i < 3; i++)
        es_free(blob[i]);
}

/* The kept context takes each value's own IV with its tag (one parameter
 * call, no init): values of one key with distinct IVs open in any order,
 * the same value twice in a row (its IV spent by the first final, given
 * again), empty plaintexts too; a value carrying another value's IV, or an
 * empty one with a flipped tag, is refused, and the next good value opens. */
Test(al_kms, kept_context_takes_each_values_iv)
{
    char key[AL_KEY_ID_LEN + 1];
    cr_assert_eq(al_kms_resolve(T.ctx, "alias/aws/ssm", key), 0);
    al_kv kv = {"PARAMETER_ARN", "arn:aws:ssm:us-east-2:123456789012:parameter/p"};
    const char *vals[] = {"", "x", "a value longer than two AES blocks: 0123456789", ""};
    enum { NV = 4 };
    uint8_t *blob[NV];
    size_t bl[NV];
    for (size_t i = 0; i < NV; i++)
        cr_assert_eq(al_kms_seal(T.ctx, key, &kv, 1, (const uint8_t *)vals[i], strlen(vals[i]),
                                 &blob[i], &bl[i]),
                     0);
    size_t hdr = 2 + AL_KEY_ID_LEN;
    cr_assert_neq(memcmp(blob[0] + hdr, blob[3] + hdr, AL_KMS_IV_LEN), 0);
    memset(&T.ctx->cache_stats, 0, sizeof T.ctx->cache_stats);
    al_kms_memo_begin(T.ctx);
    const size_t order[] = {0, 1, 2, 3, 3, 2, 1, 0, 2, 2, 0, 3, 1};
    size_t opened = 0;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        size_t i = order[k];
        uint8_t *pt = NULL;
        size_t n = 99;
        cr_assert_eq(al_kms_unseal(T.ctx, blob[i], bl[i], &kv, 1, &pt, &n, NULL), 0,
                     "value %zu at step %zu", i, k);
        cr_assert_eq(n, strlen(vals[i]));
        cr_assert_eq(memcmp(pt, vals[i], n), 0);
        es_free(pt);
        opened++;
        /* value 1 with value 2's IV, then value 3 (empty) with a flipped
         * tag: refused on the kept context, nothing of them stays */
        uint8_t *bad = es_malloc(bl[1]);
        memcpy(bad, blob[1], bl[1]);
        memcpy(bad + hdr, blob[2] + hdr, AL_KMS_IV_LEN);
        pt = NULL;
        cr_assert_eq(al_kms_unseal(T.ctx, bad, bl[1], &kv, 1, &pt, &n, NULL), -EBADMSG,
                     "another value's IV accepted at step %zu", k);
        cr_assert_null(pt);
        es_free(bad);
        blob[3][hdr + AL_KMS_IV_LEN] ^= 0x40;
        cr_assert_eq(al_kms_unseal(T.ctx, blob[3], bl[3], &kv, 1, &pt, &n, NULL), -EBADMSG);
        cr_assert_null(pt);
        blob[3][hdr + AL_KMS_IV_LEN] ^= 0x40;
    }
    al_cache_stats st;
    al_get_cache_stats(T.ctx, &st);
    cr_assert_eq(st.kms_key_loads, 1, "the key was unwrapped again");
    cr_assert_eq(st.kms_key_hits, 3 * opened - 1, "not every value took the kept key");
    al_kms_memo_end(T.ctx);
    al_kms_keep_free(T.ctx);
    for (size_t i = 0; i < NV; i++)
        es_free(blob[i]);
}

/* A blob's key id must be 8-4-4-4-12 lower-case hex: a dash or a digit out
 * of place anywhere in the 36 characters is a malformed blob (-EBADMSG),
 * while a well-formed id of no key is answered as another error. */
Test(al_kms, blob_key_id_shape_checked_at_every_place)
{
    char key[AL_KEY_ID_LEN + 1];
    cr_assert_eq(al_kms_resolve(T.ctx, "alias/aws/ssm", key), 0);
    al_kv kv = {"PARAMETER_ARN", "arn:aws:ssm:us-east-2:123456789012:parameter/p"};
    uint8_t *blob = NULL, *pt = NULL;
    size_t bl = 0, n = 0;
    cr_assert_eq(al_kms_seal(T.ctx, key, &kv, 1, (const uint8_t *)"v", 1, &blob, &bl), 0);
    for (size_t i = 0; i < AL_KEY_ID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        const char *bad = dash ? "a0G" : "-GA/:` ";
        for (const char *b = bad; *b; b++) {
            uint8_t was = blob[2 + i];
            blob[2 + i] = (uint8_t)*b;
            cr_assert_eq(al_kms_unseal(T.ctx, blob, bl, &kv, 1, &pt, &n, NULL), -EBADMSG,
                         "'%c' at %zu", *b, i);
            cr_assert_null(pt);
            blob[2 + i] = was;
        }
        if (!dash) { /* another digit: well-formed, no such key */
            uint8_t was = blob[2 + i];
            blob[2 + i] = was == 'f' ? 'e' : (was == '9' ? 'a' : (uint8_t)(was + 1));
            int r = al_kms_unseal(T.ctx, blob, bl, &kv, 1, &pt, &n, NULL);
            cr_assert(r < 0 && r != -EBADMSG, "digit at %zu: %d", i, r);
            cr_assert_null(pt);
            blob[2 + i] = was;
        }
    }
    cr_assert_eq(al_kms_unseal(T.ctx, blob, bl, &kv, 1, &pt, &n, NULL), 0);
    cr_assert_eq(n, 1);
    es_free(pt);
    es_free(blob);
}

/* Two keys kept at once inside a memo: each has its own expanded context,
 * and values of the two, interleaved, open with their own key only (a
 * context set up for one key never decrypts under the other's state); a
 * failed value of one key leaves both keys' next values opening. After
 * al_kms_keep_free (which frees the contexts cleansed) the values open again
 * from the keys' rows. */
Test(al_kms, two_kept_keys_never_mix_their_contexts)
{
    char ka[AL_KEY_ID_LEN + 1], kb[AL_KEY_ID_LEN + 1];
    snprintf(ka, sizeof ka, "%s", new_key());
    snprintf(kb, sizeof kb, "%s", new_key());
    cr_assert_str_neq(ka, kb);
    al_kv kv = {"PARAMETER_ARN", "arn:aws:ssm:us-east-2:123456789012:parameter/p"};
    const char *vals[] = {"value-a0", "value-b0", "value-a1-longer-than-one-block", "value-b1"};
    uint8_t *blob[4];
    size_t bl[4];
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(al_kms_seal(T.ctx, i % 2 ? kb : ka, &kv, 1, (const uint8_t *)vals[i],
                                 strlen(vals[i]), &blob[i], &bl[i]),
                     0);
    size_t tagpos = 2 + AL_KEY_ID_LEN + AL_KMS_IV_LEN;
    for (int round = 0; round < 2; round++) {
        memset(&T.ctx->cache_stats, 0, sizeof T.ctx->cache_stats);
        al_kms_memo_begin(T.ctx);
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < 4; i++) {
                uint8_t *pt = NULL;
                size_t n = 0;
                cr_assert_eq(al_kms_unseal(T.ctx, blob[i], bl[i], &kv, 1, &pt, &n, NULL), 0,
                             "value %zu, pass %d, round %d", i, pass, round);
                cr_assert_eq(n, strlen(vals[i]));
                cr_assert_eq(memcmp(pt, vals[i], n), 0);
                es_free(pt);
                pt = NULL;
                /* the other key's value with this one's tag flipped: refused,
                 * and nothing of it stays for the next value */
                size_t j = (i + 1) % 4;
                blob[j][tagpos] ^= 0x80;
                cr_assert_eq(al_kms_unseal(T.ctx, blob[j], bl[j], &kv, 1, &pt, &n, NULL), -EBADMSG);
                cr_assert_null(pt);
                blob[j][tagpos] ^= 0x80;
            }
        }
        al_cache_stats st;
        al_get_cache_stats(T.ctx, &st);
        cr_assert_eq(st.kms_key_loads, 2, "each key unwrapped once, round %d", round);
        al_kms_memo_end(T.ctx);
        al_kms_keep_free(T.ctx);
    }
    for (size_t i = 0; i < 4; i++)
        es_free(blob[i]);
}

/* One pair of context (SSM's) is joined to the blob's header on the stack
 * and authenticated in one AAD update; a longer one takes the general path
 * (two updates). Both open what al_kms_seal sealed, with or without the
 * kept key, and both refuse another context of the same length. */
Test(al_kms, one_pair_context_joined_or_not_binds_the_value)
{
    char key[AL_KEY_ID_LEN + 1];
    cr_assert_eq(al_kms_resolve(T.ctx, "alias/aws/ssm", key), 0);
    static char longv[700];
    memset(longv, 'a', sizeof longv - 1);
    const char *ctxv[] = {"arn:aws:ssm:us-east-2:123456789012:parameter/p", longv};
    for (int memo = 0; memo < 2; memo++) {
        for (size_t i = 0; i < 2; i++) {
            al_kv kv = {"PARAMETER_ARN", ctxv[i]};
            uint8_t *blob = NULL, *pt = NULL;
            size_t bl = 0, n = 0;
            cr_assert_eq(
                al_kms_seal(T.ctx, key, &kv, 1, (const uint8_t *)"the value", 9, &blob, &bl), 0);
            if (memo)
                al_kms_memo_begin(T.ctx);
            for (int round = 0; round < 2; round++) { /* the second with the key kept */
                cr_assert_eq(al_kms_unseal(T.ctx, blob, bl, &kv, 1, &pt, &n, NULL), 0,
                             "context %zu, memo %d", i, memo);
                cr_assert_eq(n, 9);
                cr_assert_eq(memcmp(pt, "the value", 9), 0);
                es_free(pt);
                pt = NULL;
                char *other = es_strdup(ctxv[i]);
                other[strlen(other) - 1] ^= 0x01;
                al_kv wrong = {"PARAMETER_ARN", other};
                cr_assert_eq(al_kms_unseal(T.ctx, blob, bl, &wrong, 1, &pt, &n, NULL), -EBADMSG,
                             "another context opened it (context %zu, memo %d)", i, memo);
                cr_assert_null(pt);
                al_kv wrongk = {"PARAMETER_ARM", ctxv[i]};
                cr_assert_eq(al_kms_unseal(T.ctx, blob, bl, &wrongk, 1, &pt, &n, NULL), -EBADMSG);
                es_free(other);
            }
            if (memo) {
                al_kms_memo_end(T.ctx);
                al_kms_keep_free(T.ctx);
            }
            es_free(blob);
        }
    }
}

/* ---- regions, migration 4, tags, ReEncrypt, random, deletion, aliases,
 * rotation ---- */

/* call() in region (al_dispatch_in: the region of the request's scope). */
static int call_in(const char *region, const char *target, const char *body)
{
    es_json_free(T.resp);
    T.resp = NULL;
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    int r = al_dispatch_in(T.ctx, region, target, "arn:aws:iam::123456789012:user/tester", body,
                           strlen(body), &T.out, &T.err);
    if (r < 0)
        return T.err.status;
    char why[128];
    cr_assert_eq(
        es_json_parse(T.out.data, T.out.len, &es_json_default_limits, &T.resp, why, sizeof why), 0,
        "response not JSON: %s", why);
    return 0;
}

static const es_json *ok_in(const char *region, const char *target, const char *body)
{
    int st = call_in(region, target, body);
    cr_assert_eq(st, 0, "%s %s in %s -> %d %s: %s", target, body, region, st, T.err.code,
                 T.err.message);
    return T.resp;
}

static void fails_in(const char *region, const char *target, const char *body, const char *code,
                     const char *message)
{
    int st = call_in(region, target, body);
    cr_assert_neq(st, 0, "%s %s in %s succeeded", target, body, region);
    cr_assert_str_eq(T.err.code, code, "%s -> %s (%s), want %s", target, T.err.code, T.err.message,
                     code);
    if (message)
        cr_assert_str_eq(T.err.message, message);
}

static void fails_msg(const char *target, const char *body, const char *code, const char *message)
{
    fails_in("us-east-2", target, body, code, message);
}

static const char *new_key_in(const char *region)
{
    static char id[64];
    const es_json *r = ok_in(region, "TrentService.CreateKey", "{}");
    snprintf(id, sizeof id, "%s", jstr(es_json_get(r, "KeyMetadata"), "KeyId"));
    return id;
}

static char *encrypt_in(const char *region, const char *key, const char *text)
{
    char body[1024];
    char *pt = b64(text);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"Plaintext\":\"%s\"}", key, pt);
    es_free(pt);
    return es_strdup(jstr(ok_in(region, "TrentService.Encrypt", body), "CiphertextBlob"));
}

/* Decrypts blob in region and checks the plaintext. */
static void decrypts_in(const char *region, const char *blob, const char *want)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"CiphertextBlob\":\"%s\"}", blob);
    char *pt = unb64(jstr(ok_in(region, "TrentService.Decrypt", body), "Plaintext"));
    cr_assert_str_eq(pt, want);
    es_free(pt);
}

Test(al_kms, keys_and_aliases_live_in_one_region)
{
    char home[64], eu[64], body[512], msg[512];
    snprintf(home, sizeof home, "%s", new_key());
    snprintf(eu, sizeof eu, "%s", new_key_in("eu-west-1"));
    const es_json *m = es_json_get(T.resp, "KeyMetadata");
    snprintf(msg, sizeof msg, "arn:aws:kms:eu-west-1:123456789012:key/%s", eu);
    cr_assert_str_eq(jstr(m, "Arn"), msg);
    /* the eu-west-1 key is not in us-east-2, by id or by ARN */
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", eu);
    snprintf(msg, sizeof msg, "Key 'arn:aws:kms:us-east-2:123456789012:key/%s' does not exist", eu);
    fails_msg("TrentService.DescribeKey", body, "NotFoundException", msg);
    snprintf(body, sizeof body, "{\"KeyId\":\"arn:aws:kms:eu-west-1:123456789012:key/%s\"}", eu);
    snprintf(msg, sizeof msg, "Key 'arn:aws:kms:eu-west-1:123456789012:key/%s' does not exist", eu);
    fails_msg("TrentService.DescribeKey", body, "NotFoundException", msg);
    ok_in("eu-west-1", "TrentService.DescribeKey", body);
    /* ListKeys: each region its own (home: 2 managed + 1) */
    cr_assert_eq(es_json_len(es_json_get(ok("TrentService.ListKeys", "{}"), "Keys")), 3);
    cr_assert_eq(
        es_json_len(es_json_get(ok_in("eu-west-1", "TrentService.ListKeys", "{}"), "Keys")), 1);
    /* one alias name, two regions, two aliases */
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/app\",\"TargetKeyId\":\"%s\"}", home);
    ok("TrentService.CreateAlias", body);
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/app\",\"TargetKeyId\":\"%s\"}", eu);
    ok_in("eu-west-1", "TrentService.CreateAlias", body);
    m = es_json_get(ok_in("eu-west-1", "TrentService.DescribeKey", "{\"KeyId\":\"alias/app\"}"),
                    "KeyMetadata");
    cr_assert_str_eq(jstr(m, "KeyId"), eu);
    m = es_json_get(ok("TrentService.DescribeKey", "{\"KeyId\":\"alias/app\"}"), "KeyMetadata");
    cr_assert_str_eq(jstr(m, "KeyId"), home);
    fails_in("ap-south-1", "TrentService.DescribeKey", "{\"KeyId\":\"alias/app\"}",
             "NotFoundException",
             "Alias arn:aws:kms:ap-south-1:123456789012:alias/app is not found.");
}

Test(al_kms, managed_keys_are_made_per_region_on_first_use)
{
    char home[64];
    const es_json *m =
        es_json_get(ok("TrentService.DescribeKey", "{\"KeyId\":\"alias/aws/ssm\"}"), "KeyMetadata");
    snprintf(home, sizeof home, "%s", jstr(m, "KeyId"));
    cr_assert_eq(
        es_json_len(es_json_get(ok_in("eu-west-1", "TrentService.ListAliases", "{}"), "Aliases")),
        0);
    m = es_json_get(ok_in("eu-west-1", "TrentService.DescribeKey", "{\"KeyId\":\"alias/aws/ssm\"}"),
                    "KeyMetadata");
    cr_assert_str_neq(jstr(m, "KeyId"), home);
    cr_assert_str_eq(jstr(m, "KeyManager"), "AWS");
    cr_assert(strstr(jstr(m, "Arn"), "arn:aws:kms:eu-west-1:"));
    cr_assert_eq(
        es_json_len(es_json_get(ok_in("eu-west-1", "TrentService.ListAliases", "{}"), "Aliases")),
        1);
    /* another partition: its own ARNs */
    m = es_json_get(ok_in("cn-north-1", "TrentService.CreateKey", "{}"), "KeyMetadata");
    cr_assert(strncmp(jstr(m, "Arn"), "arn:aws-cn:kms:cn-north-1:123456789012:key/", 43) == 0);
}

Test(al_kms, ciphertext_does_not_decrypt_in_another_region)
{
    char eu[64];
    snprintf(eu, sizeof eu, "%s", new_key_in("eu-west-1"));
    char *blob = encrypt_in("eu-west-1", eu, "regional");
    decrypts_in("eu-west-1", blob, "regional");
    char body[2048];
    snprintf(body, sizeof body, "{\"CiphertextBlob\":\"%s\"}", blob);
    fails("TrentService.Decrypt", body, "InvalidCiphertextException");
    es_free(blob);
}

Test(al_kms, ssm_refuses_a_key_of_another_region)
{
    char eu[64], body[512];
    snprintf(eu, sizeof eu, "%s", new_key_in("eu-west-1"));
    snprintf(body, sizeof body,
             "{\"Name\":\"/p\",\"Value\":\"v\",\"Type\":\"SecureString\",\"KeyId\":"
             "\"arn:aws:kms:eu-west-1:123456789012:key/%s\"}",
             eu);
    fails_in("us-east-1", "AmazonSSM.PutParameter", body, "InvalidKeyId", NULL);
    ok_in("eu-west-1", "AmazonSSM.PutParameter", body);
}

/* The schema as version 3 left it (migrations 1-3 of aws/local/db.c). */
static const char v3_schema[] =
    "CREATE TABLE kms_key ("
    " key_id TEXT PRIMARY KEY,"
    " description TEXT NOT NULL DEFAULT '',"
    " manager TEXT NOT NULL,"
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " created REAL NOT NULL,"
    " wrapped BLOB NOT NULL);"
    "CREATE TABLE kms_alias ("
    " name TEXT PRIMARY KEY,"
    " key_id TEXT NOT NULL REFERENCES kms_key(key_id),"
    " created REAL NOT NULL,"
    " updated REAL NOT NULL);"
    "CREATE TABLE ssm_param ("
    " canon TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " next_version INTEGER NOT NULL);"
    "CREATE TABLE ssm_version ("
    " canon TEXT NOT NULL REFERENCES ssm_param(canon) ON DELETE CASCADE,"
    " version INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " value BLOB NOT NULL,"
    " key_id TEXT,"
    " key_ref TEXT,"
    " description TEXT,"
    " allowed_pattern TEXT,"
    " tier TEXT NOT NULL,"
    " data_type TEXT NOT NULL,"
    " modified REAL NOT NULL,"
    " modified_user TEXT NOT NULL,"
    " PRIMARY KEY (canon, version));"
    "CREATE TABLE ssm_label ("
    " canon TEXT NOT NULL REFERENCES ssm_param(canon) ON DELETE CASCADE,"
    " label TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " PRIMARY KEY (canon, label));"
    "CREATE TABLE ssm_tag ("
    " canon TEXT NOT NULL REFERENCES ssm_param(canon) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (canon, key));"
    "CREATE TABLE sm_secret ("
    " arn TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " description TEXT,"
    " kms_key_ref TEXT,"
    " key_id TEXT NOT NULL,"
    " created REAL NOT NULL,"
    " changed REAL NOT NULL,"
    " accessed REAL,"
    " deletion REAL);"
    "CREATE TABLE sm_version ("
    " arn TEXT NOT NULL REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " version_id TEXT NOT NULL,"
    " binary INTEGER NOT NULL,"
    " blob BLOB NOT NULL,"
    " created REAL NOT NULL,"
    " PRIMARY KEY (arn, version_id));"
    "CREATE TABLE sm_stage ("
    " arn TEXT NOT NULL REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " stage TEXT NOT NULL,"
    " version_id TEXT NOT NULL,"
    " PRIMARY KEY (arn, stage));"
    "CREATE TABLE sm_tag ("
    " arn TEXT NOT NULL REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (arn, key));"
    "CREATE TABLE iam_access_key ("
    " akid TEXT PRIMARY KEY,"
    " wrapped BLOB NOT NULL,"
    " principal TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'Active',"
    " created REAL NOT NULL);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE iam_role ("
    " name TEXT PRIMARY KEY COLLATE NOCASE,"
    " role_id TEXT NOT NULL UNIQUE,"
    " path TEXT NOT NULL,"
    " trust TEXT NOT NULL,"
    " description TEXT,"
    " max_session INTEGER NOT NULL,"
    " boundary TEXT,"
    " created REAL NOT NULL,"
    " source TEXT);"
    "CREATE TABLE iam_role_policy ("
    " role TEXT NOT NULL COLLATE NOCASE REFERENCES iam_role(name) ON DELETE CASCADE,"
    " name TEXT NOT NULL COLLATE NOCASE,"
    " document TEXT NOT NULL,"
    " PRIMARY KEY (role, name));"
    "CREATE TABLE iam_policy ("
    " arn TEXT PRIMARY KEY,"
    " name TEXT NOT NULL COLLATE NOCASE UNIQUE,"
    " policy_id TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " description TEXT,"
    " document TEXT NOT NULL,"
    " created REAL NOT NULL);"
    "CREATE TABLE iam_role_attached ("
    " role TEXT NOT NULL COLLATE NOCASE REFERENCES iam_role(name) ON DELETE CASCADE,"
    " policy_arn TEXT NOT NULL,"
    " PRIMARY KEY (role, policy_arn));"
    "CREATE TABLE sts_session ("
    " akid TEXT PRIMARY KEY,"
    " wrapped BLOB NOT NULL,"
    " token_hash BLOB NOT NULL,"
    " principal TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " role_id TEXT NOT NULL,"
    " expires REAL NOT NULL,"
    " created REAL NOT NULL);"
    "CREATE TABLE kms_key_policy ("
    " key_id TEXT PRIMARY KEY REFERENCES kms_key(key_id) ON DELETE CASCADE,"
    " policy TEXT NOT NULL);"
    "CREATE TABLE sm_resource_policy ("
    " arn TEXT PRIMARY KEY REFERENCES sm_secret(arn) ON DELETE CASCADE,"
    " policy TEXT NOT NULL);";

Test(al_kms, migration_moves_old_keys_to_the_home_region)
{
    /* a state directory written by version 3: one customer key, its alias */
    al_close(T.ctx);
    T.ctx = NULL;
    alt_rm_dir();
    cr_assert_eq(mkdir(T.dir, 0700), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/kms-master.key", T.dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    uint8_t k[32] = {1};
    cr_assert_eq(write(fd, k, sizeof k), 32);
    close(fd);
    snprintf(path, sizeof path, "%s/%s", T.dir, AL_DB_FILE);
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, v3_schema, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_exec(h,
                              "INSERT INTO kms_key(key_id, description, manager, created, wrapped) "
                              "VALUES ('11111111-2222-4333-8444-555555555555', 'old', 'CUSTOMER', "
                              "1, zeroblob(60));"
                              "INSERT INTO kms_alias VALUES ('alias/old', "
                              "'11111111-2222-4333-8444-555555555555', 1, 1);"
                              "PRAGMA user_version = 3;",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
    alt_open();
    const es_json *m =
        es_json_get(ok("TrentService.DescribeKey", "{\"KeyId\":\"alias/old\"}"), "KeyMetadata");
    cr_assert_str_eq(jstr(m, "Description"), "old");
    cr_assert_str_eq(jstr(m, "Arn"),
                     "arn:aws:kms:us-east-2:123456789012:key/11111111-2222-4333-8444-555555555555");
    /* the home region's managed keys were made; nothing is in another region */
    cr_assert_eq(es_json_len(es_json_get(ok("TrentService.ListAliases", "{}"), "Aliases")), 3);
    fails_in("us-west-2", "TrentService.DescribeKey",
             "{\"KeyId\":\"11111111-2222-4333-8444-555555555555\"}", "NotFoundException", NULL);
    fails_in("us-west-2", "TrentService.DescribeKey", "{\"KeyId\":\"alias/old\"}",
             "NotFoundException", NULL);
    /* a reopen changes nothing more */
    alt_reopen();
    cr_assert_eq(es_json_len(es_json_get(ok("TrentService.ListAliases", "{}"), "Aliases")), 3);
}

Test(al_kms, tags)
{
    char id[64], body[8192];
    snprintf(id, sizeof id, "%s", new_key());
    snprintf(body, sizeof body,
             "{\"KeyId\":\"%s\",\"Tags\":[{\"TagKey\":\"b\",\"TagValue\":\"2\"},"
             "{\"TagKey\":\"a\",\"TagValue\":\"\"}]}",
             id);
    ok("TrentService.TagResource", body);
    cr_assert_str_eq(T.last_action, "kms:TagResource");
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"Limit\":1}", id);
    const es_json *r = ok("TrentService.ListResourceTags", body);
    cr_assert_eq(es_json_len(es_json_get(r, "Tags")), 1);
    cr_assert_str_eq(jstr(es_json_at(es_json_get(r, "Tags"), 0), "TagKey"), "a");
    cr_assert_str_eq(jstr(r, "NextMarker"), "a");
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"TagKeys\":[\"a\"]}", id);
    ok("TrentService.UntagResource", body);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    r = ok("TrentService.ListResourceTags", body);
    cr_assert_eq(es_json_len(es_json_get(r, "Tags")), 1);
    cr_assert_eq(es_json_get(r, "Truncated")->u.boolean, false);
    /* reserved prefix, lengths, the 50-tag limit */
    snprintf(body, sizeof body,
             "{\"KeyId\":\"%s\",\"Tags\":[{\"TagKey\":\"aws:x\",\"TagValue\":\"1\"}]}", id);
    fails_msg("TrentService.TagResource", body, "TagException",
              "Tags beginning with aws: are reserved");
    /* KMS's words, as LocalStack's snapshots recorded them against AWS */
    snprintf(body, sizeof body,
             "{\"KeyId\":\"%s\",\"Tags\":[{\"TagKey\":\"AWS:x\",\"TagValue\":\"1\"}]}", id);
    fails_msg("TrentService.TagResource", body, "TagException",
              "Tags beginning with aws: are reserved");
    snprintf(body, sizeof body,
             "{\"KeyId\":\"%s\",\"Tags\":[{\"TagKey\":\"d\",\"TagValue\":\"1\"},"
             "{\"TagKey\":\"d\",\"TagValue\":\"2\"}]}",
             id);
    fails_msg("TrentService.TagResource", body, "TagException", "Duplicate tag keys");
    char longv[AL_TAG_VALUE_MAX + 2];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    snprintf(body, sizeof body,
             "{\"KeyId\":\"%s\",\"Tags\":[{\"TagKey\":\"a\",\"TagValue\":\"%s\"}]}", id, longv);
    fails("TrentService.TagResource", body, "ValidationException");
    cr_assert_not_null(strstr(T.err.message,
                              "' at 'tags.1.member.tagValue' failed to satisfy constraint: Member "
                              "must have length less than or equal to 256"),
                       "%s", T.err.message);
    snprintf(body, sizeof body,
             "{\"KeyId\":\"%s\",\"Tags\":[{\"TagKey\":\"\",\"TagValue\":\"1\"}]}", id);
    fails("TrentService.TagResource", body, "ValidationException");
    int n = snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"Tags\":[", id);
    for (int i = 0; i < 50; i++)
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "%s{\"TagKey\":\"k%d\",\"TagValue\":\"v\"}", i ? "," : "", i);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    fails_msg("TrentService.TagResource", body, "TagException", "Too many tags"); /* 51 with "b" */
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    cr_assert_eq(es_json_len(es_json_get(ok("TrentService.ListResourceTags", body), "Tags")), 1);
    fails("TrentService.TagResource",
          "{\"KeyId\":\"alias/aws/ssm\",\"Tags\":[{\"TagKey\":\"a\",\"TagValue\":\"1\"}]}",
          "UnsupportedOperationException");
}

Test(al_kms, re_encrypt_moves_a_ciphertext_to_another_key_and_context)
{
    char a[64], b[64], body[4096];
    snprintf(a, sizeof a, "%s", new_key());
    snprintf(b, sizeof b, "%s", new_key());
    char *blob = encrypt(a, "moving", "{\"x\":\"1\"}");
    snprintf(body, sizeof body,
             "{\"CiphertextBlob\":\"%s\",\"SourceEncryptionContext\":{\"x\":\"2\"},"
             "\"DestinationKeyId\":\"%s\"}",
             blob, b);
    fails("TrentService.ReEncrypt", body, "InvalidCiphertextException");
    snprintf(body, sizeof body,
             "{\"CiphertextBlob\":\"%s\",\"SourceEncryptionContext\":{\"x\":\"1\"},"
             "\"DestinationKeyId\":\"%s\",\"DestinationEncryptionContext\":{\"y\":\"3\"}}",
             blob, b);
    const es_json *r = ok("TrentService.ReEncrypt", body);
    cr_assert(strstr(jstr(r, "SourceKeyId"), a));
    cr_assert(strstr(jstr(r, "KeyId"), b));
    char *moved = es_strdup(jstr(r, "CiphertextBlob"));
    cr_assert_eq(decrypt(moved, "{\"y\":\"3\"}", b), 0);
    cr_assert_eq(decrypt(moved, "{\"x\":\"1\"}", NULL), 400);
    fails("TrentService.ReEncrypt", "{\"CiphertextBlob\":\"AAAA\"}", "ValidationException");
    es_free(moved);
    es_free(blob);
}

Test(al_kms, generate_random_and_data_key_without_plaintext)
{
    fails_msg("TrentService.GenerateRandom", "{\"NumberOfBytes\":0}", "ValidationException", NULL);
    fails("TrentService.GenerateRandom", "{\"NumberOfBytes\":1025}", "ValidationException");
    fails("TrentService.GenerateRandom", "{}", "ValidationException");
    const es_json *r = ok("TrentService.GenerateRandom", "{\"NumberOfBytes\":1024}");
    cr_assert_str_eq(T.last_action, "kms:GenerateRandom");
    uint8_t *d = NULL;
    size_t n = 0;
    const char *p = jstr(r, "Plaintext");
    cr_assert_eq(al_b64_decode(p, strlen(p), &d, &n), 0);
    cr_assert_eq(n, 1024);
    es_free(d);
    char id[64], body[256];
    snprintf(id, sizeof id, "%s", new_key());
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"KeySpec\":\"AES_128\"}", id);
    r = ok("TrentService.GenerateDataKeyWithoutPlaintext", body);
    cr_assert_null(es_json_get(r, "Plaintext"));
    cr_assert_str_eq(T.last_action, "kms:GenerateDataKeyWithoutPlaintext");
    char *blob = es_strdup(jstr(r, "CiphertextBlob"));
    cr_assert_eq(decrypt(blob, NULL, NULL), 0);
    p = jstr(T.resp, "Plaintext");
    cr_assert_eq(al_b64_decode(p, strlen(p), &d, &n), 0);
    cr_assert_eq(n, 16);
    es_free(d);
    es_free(blob);
}

Test(al_kms, key_deletion_schedule_cancel_and_expiry)
{
    char id[64], body[512], msg[512];
    snprintf(id, sizeof id, "%s", new_key());
    char *blob = encrypt(id, "doomed", NULL);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"PendingWindowInDays\":6}", id);
    fails("TrentService.ScheduleKeyDeletion", body, "ValidationException");
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"PendingWindowInDays\":31}", id);
    fails("TrentService.ScheduleKeyDeletion", body, "ValidationException");
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"PendingWindowInDays\":7}", id);
    const es_json *r = ok("TrentService.ScheduleKeyDeletion", body);
    cr_assert_str_eq(jstr(r, "KeyState"), "PendingDeletion");
    cr_assert_eq(jint(r, "PendingWindowInDays"), 7);
    snprintf(msg, sizeof msg, "arn:aws:kms:us-east-2:123456789012:key/%s is pending deletion.", id);
    snprintf(body, sizeof body, "{\"CiphertextBlob\":\"%s\"}", blob);
    fails_msg("TrentService.Decrypt", body, "KMSInvalidStateException", msg);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"Plaintext\":\"eA==\"}", id);
    fails_msg("TrentService.Encrypt", body, "KMSInvalidStateException", msg);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    fails_msg("TrentService.EnableKey", body, "KMSInvalidStateException", msg);
    fails("TrentService.ScheduleKeyDeletion", body, "KMSInvalidStateException");
    r = es_json_get(ok("TrentService.DescribeKey", body), "KeyMetadata");
    cr_assert_str_eq(jstr(r, "KeyState"), "PendingDeletion");
    /* cancel: Disabled, as AWS leaves it; enable: usable again */
    ok("TrentService.CancelKeyDeletion", body);
    r = es_json_get(ok("TrentService.DescribeKey", body), "KeyMetadata");
    cr_assert_str_eq(jstr(r, "KeyState"), "Disabled");
    fails("TrentService.CancelKeyDeletion", body, "KMSInvalidStateException");
    ok("TrentService.EnableKey", body);
    cr_assert_eq(decrypt(blob, NULL, NULL), 0);
    /* the window passes: the key and its alias are gone */
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"PendingWindowInDays\":7}", id);
    ok("TrentService.ScheduleKeyDeletion", body);
    T.now += 7 * 86400 + 1;
    fails("TrentService.DescribeKey", body, "NotFoundException");
    cr_assert_eq(es_json_len(es_json_get(ok("TrentService.ListKeys", "{}"), "Keys")), 2);
    fails("TrentService.ScheduleKeyDeletion", "{\"KeyId\":\"alias/aws/ssm\"}",
          "UnsupportedOperationException");
    es_free(blob);
}

Test(al_kms, ssm_parameter_under_a_key_pending_deletion_fails_with_kms_reason)
{
    char id[64], body[512];
    snprintf(id, sizeof id, "%s", new_key());
    snprintf(
        body, sizeof body,
        "{\"Name\":\"/db/pw\",\"Value\":\"s3cret\",\"Type\":\"SecureString\",\"KeyId\":\"%s\"}",
        id);
    ok("AmazonSSM.PutParameter", body);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"PendingWindowInDays\":7}", id);
    ok("TrentService.ScheduleKeyDeletion", body);
    fails("AmazonSSM.GetParameter", "{\"Name\":\"/db/pw\",\"WithDecryption\":true}",
          "InvalidKeyId");
    cr_assert(strstr(T.err.message, "is pending deletion."), "%s", T.err.message);
    cr_assert(strstr(T.err.message, "KMSInvalidStateException"), "%s", T.err.message);
    cr_assert_null(strstr(T.err.message, "s3cret"));
}

Test(al_kms, update_and_delete_alias)
{
    char a[64], b[64], body[512];
    snprintf(a, sizeof a, "%s", new_key());
    snprintf(b, sizeof b, "%s", new_key());
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/app\",\"TargetKeyId\":\"%s\"}", a);
    ok("TrentService.CreateAlias", body);
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/app\",\"TargetKeyId\":\"%s\"}", b);
    ok("TrentService.UpdateAlias", body);
    cr_assert_str_eq(T.last_action, "kms:UpdateAlias");
    const es_json *m =
        es_json_get(ok("TrentService.DescribeKey", "{\"KeyId\":\"alias/app\"}"), "KeyMetadata");
    cr_assert_str_eq(jstr(m, "KeyId"), b);
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/nope\",\"TargetKeyId\":\"%s\"}", b);
    fails_msg("TrentService.UpdateAlias", body, "NotFoundException",
              "Alias arn:aws:kms:us-east-2:123456789012:alias/nope is not found.");
    snprintf(body, sizeof body, "{\"AliasName\":\"alias/aws/ssm\",\"TargetKeyId\":\"%s\"}", b);
    fails("TrentService.UpdateAlias", body, "NotAuthorizedException");
    fails("TrentService.DeleteAlias", "{\"AliasName\":\"alias/aws/ssm\"}",
          "NotAuthorizedException");
    fails("TrentService.DeleteAlias", "{\"AliasName\":\"nope\"}", "ValidationException");
    ok("TrentService.DeleteAlias", "{\"AliasName\":\"alias/app\"}");
    fails("TrentService.DescribeKey", "{\"KeyId\":\"alias/app\"}", "NotFoundException");
    fails("TrentService.DeleteAlias", "{\"AliasName\":\"alias/app\"}", "NotFoundException");
}

Test(al_kms, rotation_on_demand_and_scheduled_keeps_old_ciphertexts)
{
    char id[64], body[512];
    snprintf(id, sizeof id, "%s", new_key());
    char *v1 = encrypt(id, "one", NULL);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"RotationPeriodInDays\":89}", id);
    fails("TrentService.EnableKeyRotation", body, "ValidationException");
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"RotationPeriodInDays\":2561}", id);
    fails("TrentService.EnableKeyRotation", body, "ValidationException");
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    const es_json *r = ok("TrentService.GetKeyRotationStatus", body);
    cr_assert_eq(es_json_get(r, "KeyRotationEnabled")->u.boolean, false);
    ok("TrentService.RotateKeyOnDemand", body);
    char *v2 = encrypt(id, "two", NULL);
    char *raw = unb64(v2);
    cr_assert_eq((uint8_t)raw[0], AL_KMS_BLOB_VERSION_ROTATED);
    es_free(raw);
    raw = unb64(v1);
    cr_assert_eq((uint8_t)raw[0], AL_KMS_BLOB_VERSION);
    es_free(raw);
    cr_assert_eq(decrypt(v1, NULL, NULL), 0);
    cr_assert_eq(decrypt(v2, NULL, NULL), 0);
    /* scheduled: 90 days on, the next encryption rotates first */
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\",\"RotationPeriodInDays\":90}", id);
    ok("TrentService.EnableKeyRotation", body);
    snprintf(body, sizeof body, "{\"KeyId\":\"%s\"}", id);
    r = ok("TrentService.GetKeyRotationStatus", body);
    cr_assert_eq(es_json_get(r, "KeyRotationEnabled")->u.boolean, true);
    cr_assert_eq(jint(r, "RotationPeriodInDays"), 90);
    T.now += 90 * 86400 + 1;
    char *v3 = encrypt(id, "three", NULL);
    r = ok("TrentService.ListKeyRotations", body);
    const es_json *rot = es_json_get(r, "Rotations");
    cr_assert_eq(es_json_len(rot), 2);
    cr_assert_str_eq(jstr(es_json_at(rot, 0), "RotationType"), "ON_DEMAND");
    cr_assert_str_eq(jstr(es_json_at(rot, 1), "RotationType"), "AUTOMATIC");
    cr_assert_eq(decrypt(v1, NULL, NULL), 0);
    cr_assert_eq(decrypt(v2, NULL, NULL), 0);
    cr_assert_eq(decrypt(v3, NULL, NULL), 0);
    alt_reopen();
    cr_assert_eq(decrypt(v1, NULL, NULL), 0);
    cr_assert_eq(decrypt(v3, NULL, NULL), 0);
    ok("TrentService.DisableKeyRotation", body);
    r = ok("TrentService.GetKeyRotationStatus", body);
    cr_assert_eq(es_json_get(r, "KeyRotationEnabled")->u.boolean, false);
    fails("TrentService.EnableKeyRotation", "{\"KeyId\":\"alias/aws/ssm\"}",
          "UnsupportedOperationException");
    es_free(v1);
    es_free(v2);
    es_free(v3);
}
