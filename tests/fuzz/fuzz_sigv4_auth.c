/* Fuzzes the Authorization header parser and, with the parsed result,
 * verification of a small request whose query and header value come from
 * the input too. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aw_sigv4_auth a;
    if (aw_sigv4_parse_authorization((const char *)data, size, &a) == 0) {
        if (strlen(a.access_key_id) == 0 || strlen(a.date) != 8 || strlen(a.signature) != 64)
            __builtin_trap();
        aw_header h[] = {{"host", "example.com"}, {"x-amz-date", "20150830T123600Z"}};
        aw_sigv4_input in = {"GET", "/a/../b", a.region, h, 2, aw_sigv4_empty_sha256, false};
        (void)aw_sigv4_verify(&in, &a, "20150830T123600Z", "secret");
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
