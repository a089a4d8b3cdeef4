/* Fuzzes the decoder of encoded authorization messages
 * (sts:DecodeAuthorizationMessage, al_authz_message_decode): any input is
 * either refused (-EINVAL) with nothing appended, or - for a message this
 * store sealed - opened to JSON. The first byte picks the mode:
 *   0x00-0x7f  the input itself as the encoded message;
 *   0x80-0xff  a real message with the input's bytes written over it. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/authz.h"
#include "aws/local/local.h"
#include "common/alloc.h"
#include "common/buf.h"

static al_ctx *ctx;
static es_buf sealed;

static al_ctx *store(void)
{
    if (ctx)
        return ctx;
    static char dir[] = "/tmp/fuzz-alm-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
    char err[256];
    if (al_open(&o, &ctx, err, sizeof err) != 0) {
        fprintf(stderr, "al_open: %s\n", err);
        abort();
    }
    al_authz_install(ctx);
    es_buf_init(&sealed, 1u << 16);
    if (al_authz_message_encode(ctx, "arn:aws:iam::123456789012:user/u", "ssm:GetParameters",
                                "arn:aws:ssm:us-east-1:123456789012:parameter/x", &sealed) != 0)
        abort();
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    al_ctx *c = store();
    char *msg = es_malloc(size > sealed.len ? size : sealed.len + 1);
    if (!msg)
        abort();
    if (data[0] >= 0x80) {
        memcpy(msg, sealed.data, sealed.len);
        msg[sealed.len] = 0;
        size_t at = (size_t)data[0] % sealed.len;
        for (size_t i = 1; i < size && at < sealed.len; i++, at++)
            msg[at] = data[i] ? (char)data[i] : 'A';
    } else {
        memcpy(msg, data + 1, size - 1);
        msg[size - 1] = 0;
    }
    es_buf json;
    es_buf_init(&json, 16384);
    int r = al_authz_message_decode(c, msg, &json);
    if (r == 0 && (json.len == 0 || json.data[0] != '{'))
        abort(); /* an opened message is the JSON sealed */
    if (r != 0 && json.len != 0)
        abort(); /* a refusal appends nothing */
    if (r != 0 && r != -EINVAL)
        abort(); /* nothing but "not a message" (no allocation fails here) */
    es_buf_free(&json);
    es_free(msg);
    return 0;
}
