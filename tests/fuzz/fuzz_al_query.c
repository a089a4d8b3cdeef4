/* Fuzzes the query protocol of the embedded IAM and STS: the first byte
 * picks a mode -
 *   0x00-0x3f  form decoding alone (every decoded pair is found again);
 *   0x40-0x7f  the XML text writer: its output inside an element must be
 *              well-formed XML to expat;
 *   0x80-0xff  a whole request to al_query_dispatch (IAM or STS, as the
 *              administrator or as an assumed-role session, with the IAM
 *              authorisation hook installed): every answer is well-formed
 *              XML, every failure a complete error with an empty output.
 * One store lives for the whole run, so requests build on each other. */
#include <expat.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/authz.h"
#include "aws/local/local.h"
#include "aws/local/query.h"
#include "common/buf.h"

static al_ctx *ctx;

static al_ctx *store(void)
{
    if (ctx)
        return ctx;
    static char dir[] = "/tmp/fuzz-alq-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
    char err[256];
    if (al_open(&o, &ctx, err, sizeof err) != 0) {
        fprintf(stderr, "al_open: %s\n", err);
        abort();
    }
    al_authz_install(ctx);
    return ctx;
}

static bool well_formed(const char *s, size_t n)
{
    XML_Parser p = XML_ParserCreate("UTF-8");
    if (!p)
        abort();
    bool ok = XML_Parse(p, s, (int)n, 1) == XML_STATUS_OK;
    XML_ParserFree(p);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > AL_FORM_MAX_BYTES)
        return 0;
    uint8_t sel = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (sel < 0x40) {
        al_form *f = NULL;
        if (al_form_parse(body, len, &f) == 0) {
            if (al_form_count(f) > AL_FORM_MAX_PARAMS)
                __builtin_trap();
            al_form_free(f);
        }
        return 0;
    }
    es_buf out;
    es_buf_init(&out, AL_RESPONSE_MAX);
    if (sel < 0x80) {
        al_xw w;
        al_xw_init(&w, &out);
        al_xw_open(&w, "A");
        al_xw_text(&w, body, len);
        al_xw_close(&w, "A");
        if (w.err || !well_formed(out.data, out.len))
            __builtin_trap();
        es_buf_free(&out);
        return 0;
    }
    al_ctx *c = store();
    static const char *const principals[] = {
        "arn:aws:iam::123456789012:root",
        "arn:aws:sts::123456789012:assumed-role/r/s",
        "arn:aws:sts::123456789012:assumed-role/exec/task",
        "arn:aws:iam::210987654321:root",
    };
    const char *service = sel & 1 ? "sts" : "iam";
    al_error e;
    memset(&e, 0, sizeof e);
    int r = al_query_dispatch(c, service, principals[(sel >> 1) & 3], body, len, &out, &e);
    if (r == 0) {
        if (!well_formed(out.data, out.len))
            __builtin_trap();
    } else {
        if (e.status < 400 || !e.code[0] || out.len != 0)
            __builtin_trap();
        if (al_query_error_xml(service, &e, &out) != 0 || !well_formed(out.data, out.len))
            __builtin_trap();
    }
    es_buf_free_secret(&out);
    return 0;
}
