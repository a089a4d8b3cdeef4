/* Fuzzes the Authorization header parser and, with the parsed result,
 * verification of a small request whose query and header value come from
 * the input too. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *last_blank_line(const char *s)
{
    const char *last = NULL;
    for (const char *p = strstr(s, "\n\n"); p; p = strstr(p + 1, "\n\n"))
        last = p;
    return last;
}

/* A request with one header per name of a parsed SignedHeaders list (in
 * upper case, in the list's order): verifying with the list finds every one
 * (in any order of the list, ascending or not: by place or by name) and
 * writes the header lines the signer writes for the same headers. */
static void same_headers_as_signer(const char *list)
{
    static const char *const unsigned_by_signer[] = {"authorization", "user-agent", "expect",
                                                     "x-amzn-trace-id"};
    char names[AW_SIGV4_SIGNED_LIST_MAX + 1];
    aw_header h[AW_SIGV4_SIGNED_HEADERS_MAX];
    size_t n = 0, len = strlen(list);
    memcpy(names, list, len + 1);
    for (char *p = names; n < AW_SIGV4_SIGNED_HEADERS_MAX;) {
        char *semi = strchr(p, ';');
        if (semi)
            *semi = '\0';
        for (size_t i = 0; i < sizeof unsigned_by_signer / sizeof unsigned_by_signer[0]; i++)
            if (strcmp(p, unsigned_by_signer[i]) == 0)
                return;
        for (char *c = p; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
        h[n] = (aw_header){p, "v"};
        n++;
        if (!semi)
            break;
        p = semi + 1;
    }
    aw_sigv4_input in = {"GET", "/", NULL, h, n, aw_sigv4_empty_sha256, false};
    es_buf v, s;
    es_buf_init(&v, AW_SIGV4_CANONICAL_MAX);
    es_buf_init(&s, AW_SIGV4_CANONICAL_MAX);
    if (aw_sigv4_canonical_request(&in, list, &v, NULL) != 0 ||
        aw_sigv4_canonical_request(&in, NULL, &s, NULL) != 0)
        __builtin_trap();
    /* equal up to the blank line after the headers, the last one (the
     * empty query line makes the first; the lists after it differ when the
     * sent one is not sorted or names a header twice) */
    const char *vb = es_buf_cstr(&v), *sb = es_buf_cstr(&s);
    const char *ve = last_blank_line(vb), *se = last_blank_line(sb);
    if (!ve || !se || ve - vb != se - sb || memcmp(vb, sb, (size_t)(ve - vb)) != 0)
        __builtin_trap();
    es_buf_free(&v);
    es_buf_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aw_sigv4_auth a;
    if (aw_sigv4_parse_authorization((const char *)data, size, &a) == 0) {
        if (strlen(a.access_key_id) == 0 || strlen(a.date) != 8 || strlen(a.signature) != 64)
            __builtin_trap();
        aw_header h[] = {{"host", "example.com"}, {"x-amz-date", "20150830T123600Z"}};
        aw_sigv4_input in = {"GET", "/a/../b", a.region, h, 2, aw_sigv4_empty_sha256, false};
        (void)aw_sigv4_verify(&in, &a, "20150830T123600Z", "secret");
        same_headers_as_signer(a.signed_headers);
    }
    /* the input as a query string and as a path */
    if (size < 4096) {
        char s[4097];
        memcpy(s, data, size);
        s[size] = '\0';
        aw_header h[] = {{"host", s}};
        aw_sigv4_input in = {"GET", s, s, h, 1, aw_sigv4_empty_sha256, false};
        es_buf out;
        es_buf_init(&out, AW_SIGV4_CANONICAL_MAX);
        (void)aw_sigv4_canonical_request(&in, NULL, &out, NULL);
        (void)aw_sigv4_canonical_request(&in, s, &out, NULL);
        es_buf_free(&out);
    }
    return 0;
}
