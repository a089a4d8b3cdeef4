/* Fuzzes the embedded endpoints: the first byte picks an operation, the rest
 * is its JSON request body; a second mode feeds raw bytes to the KMS blob
 * opener and the base64 decoder. One store lives for the whole run (in a
 * fresh temporary directory), so requests build on each other's state. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/internal.h"
#include "aws/local/kms.h"
#include "aws/local/local.h"
#include "common/alloc.h"
#include "common/secure.h"

static const char *const targets[] = {
    "AmazonSSM.PutParameter",
    "AmazonSSM.GetParameter",
    "AmazonSSM.GetParameters",
    "AmazonSSM.GetParametersByPath",
    "AmazonSSM.GetParameterHistory",
    "AmazonSSM.DescribeParameters",
    "AmazonSSM.DeleteParameter",
    "AmazonSSM.DeleteParameters",
    "AmazonSSM.LabelParameterVersion",
    "secretsmanager.CreateSecret",
    "secretsmanager.PutSecretValue",
    "secretsmanager.GetSecretValue",
    "secretsmanager.DescribeSecret",
    "secretsmanager.ListSecrets",
    "secretsmanager.UpdateSecretVersionStage",
    "secretsmanager.DeleteSecret",
    "secretsmanager.RestoreSecret",
    "secretsmanager.PutResourcePolicy",
    "secretsmanager.GetResourcePolicy",
    "secretsmanager.DeleteResourcePolicy",
    "TrentService.PutKeyPolicy",
    "TrentService.GetKeyPolicy",
    "TrentService.CreateKey",
    "TrentService.DescribeKey",
    "TrentService.ListKeys",
    "TrentService.CreateAlias",
    "TrentService.ListAliases",
    "TrentService.Encrypt",
    "TrentService.Decrypt",
    "TrentService.GenerateDataKey",
    "AmazonSSM.UnlabelParameterVersion",
    "secretsmanager.ListSecretVersionIds",
    "secretsmanager.UpdateSecret",
    "TrentService.EnableKey",
    "TrentService.DisableKey",
};
#define NTARGETS (sizeof targets / sizeof targets[0])

static al_ctx *ctx;

static al_ctx *store(void)
{
    if (ctx)
        return ctx;
    static char dir[] = "/tmp/fuzz-al-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
    char err[256];
    if (al_open(&o, &ctx, err, sizeof err) != 0) {
        fprintf(stderr, "al_open: %s\n", err);
        abort();
    }
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    al_ctx *c = store();
    uint8_t sel = data[0];
    data++;
    size--;
    if (sel >= 0xf0) {
        /* raw blob to the KMS opener, and to base64 */
        uint8_t *pt = NULL, *d = NULL;
        size_t n = 0;
        al_kv kv = {"k", "v"};
        if (al_kms_unseal(c, data, size, &kv, sel & 1, &pt, &n, NULL) == 0) {
            es_wipe(pt, n);
            es_free(pt);
        }
        if (al_b64_decode((const char *)data, size, &d, &n) == 0) {
            es_buf b;
            es_buf_init(&b, 1 << 22);
            if (al_b64_encode(&b, d, n) == 0 && (b.len != size || memcmp(b.data, data, size)))
                __builtin_trap(); /* strict base64 round-trips exactly */
            es_buf_free(&b);
            es_free(d);
        }
        return 0;
    }
    es_buf out;
    es_buf_init(&out, AL_RESPONSE_MAX);
    al_error e;
    memset(&e, 0, sizeof e);
    int r = al_dispatch(c, targets[sel % NTARGETS], "arn:aws:iam::123456789012:root",
                        (const char *)data, size, &out, &e);
    if (r == 0) {
        es_json *j = NULL;
        if (es_json_parse(out.data, out.len, &es_json_default_limits, &j, NULL, 0) != 0)
            __builtin_trap(); /* every answer is JSON */
        es_json_free_secret(j);
    } else if (e.status < 400 || !e.code[0] || out.len != 0) {
        __builtin_trap(); /* every failure is a complete AWS error */
    }
    es_buf_free_secret(&out);
    return 0;
}
