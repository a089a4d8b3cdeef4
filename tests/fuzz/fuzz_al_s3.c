/* Fuzzes the embedded S3's outside input that needs no store: the request
 * line's reading (al_s3_parse) and aws-chunked bodies (al_s3_dechunk),
 * signed and unsigned. The first byte picks which; the rest is
 * "METHOD PATH[?QUERY]" or the body. Whatever the input: 0 with a result
 * within its limits, or a refusal with S3's code / a reason. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/s3_chunked.h"
#include "aws/local/s3_req.h"
#include "common/alloc.h"

#define FUZZ_OBJECT_MAX 4096

static void parse_one(const char *s)
{
    char method[16];
    size_t m = strcspn(s, " ");
    if (m == 0 || m >= sizeof method || !s[m])
        return;
    memcpy(method, s, m);
    method[m] = '\0';
    const char *target = s + m + 1;
    char *path = es_strdup(target);
    if (!path)
        return;
    char *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    al_s3_req r;
    al_error e = {0};
    int rc = al_s3_parse(method, path, q, &r, &e);
    if (rc < 0 && (!e.code[0] || e.status < 400))
        abort();
    if (rc == 0 && (strlen(r.key) > AL_S3_KEY_MAX || r.max_keys > AL_S3_LIST_MAX ||
                    (r.bucket[0] && !al_s3_bucket_name_ok(r.bucket))))
        abort();
    es_free(path);
}

static void dechunk_one(const char *body, size_t len, bool signed_)
{
    static const uint8_t key[32] = {1, 2, 3};
    al_s3_chunk_sig sig = {key, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
                           "20130524T000000Z", "20130524/us-east-1/s3/aws4_request"};
    es_buf out;
    es_buf_init(&out, FUZZ_OBJECT_MAX);
    const char *why = NULL;
    int rc = al_s3_dechunk(body, len, signed_ ? &sig : NULL, FUZZ_OBJECT_MAX, &out, &why);
    if (!why || (rc < 0 && rc != -ENOMEM && !*why) || out.len > FUZZ_OBJECT_MAX || out.len > len)
        abort();
    es_buf_free_secret(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *copy = es_malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0:
        parse_one(copy);
        break;
    case 1:
        dechunk_one(copy, size - 1, true);
        break;
    default:
        dechunk_one(copy, size - 1, false);
        break;
    }
    es_free(copy);
    return 0;
}
