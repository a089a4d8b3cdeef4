/* Fuzzes SigV4 verification of the embedded endpoints: the input is a
 * request head ("Name: value" lines up to an empty line) and a body; the
 * store holds an administrator key. Whatever the input, al_verify answers 0
 * or a complete AWS error, and never accepts a request it cannot have
 * signed (the secret is random per run). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/auth.h"
#include "aws/local/local.h"
#include "common/alloc.h"

static al_ctx *ctx;

static al_ctx *store(void)
{
    if (ctx)
        return ctx;
    static char dir[] = "/tmp/fuzz-al-verify-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
    char err[256], akid[AL_AKID_LEN + 1];
    if (al_open(&o, &ctx, err, sizeof err) != 0 || al_admin_init(ctx, dir, akid, err, sizeof err))
        abort();
    /* a known key too, so that inputs can reach the signature comparison */
    if (al_access_key_add(ctx, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                          "arn:aws:iam::123456789012:user/fuzz") < 0)
        abort();
    return ctx;
}

#define MAXH 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    al_ctx *c = store();
    char *copy = es_malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    aw_header h[MAXH];
    size_t nh = 0;
    char *p = copy, *body = copy + size;
    while (p < copy + size && nh < MAXH) {
        char *nl = memchr(p, '\n', (size_t)(copy + size - p));
        if (!nl)
            nl = copy + size;
        *nl = 0;
        if (nl == p) { /* empty line: the body follows */
            body = nl + 1 <= copy + size ? nl + 1 : copy + size;
            break;
        }
        char *colon = strchr(p, ':');
        if (colon) {
            *colon = 0;
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            h[nh++] = (aw_header){p, v};
        }
        p = nl + 1;
    }
    size_t blen = body <= copy + size ? (size_t)(copy + size - body) : 0;
    al_request rq = {"POST", "/", NULL, h, nh, body, blen};
    char principal[AL_PRINCIPAL_MAX], region[AW_REGION_MAX + 1];
    al_error e;
    memset(&e, 0, sizeof e);
    int r = al_verify(c, &rq, "ssm", 1440938160 /* 20150830T123600Z */, principal, sizeof principal,
                      region, &e);
    if (r < 0 && (e.status < 400 || !e.code[0]))
        __builtin_trap();
    if (r == 0 && strcmp(principal, "arn:aws:iam::123456789012:user/fuzz") != 0)
        __builtin_trap(); /* only the known key can be forged by the fuzzer */
    es_free(copy);
    return 0;
}
