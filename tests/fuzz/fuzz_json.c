/* Fuzzes the bounded JSON parser and the writer's round trip. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/json.h"

#include <yajl/yajl_parse.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    es_json_limits lim = {
        .max_bytes = 1 << 16, .max_depth = 16, .max_string = 4096, .max_values = 2000};
    es_json *j = NULL;
    char err[128];
    if (es_json_parse((const char *)data, size, &lim, &j, err, sizeof err) != 0)
        return 0;
    /* what we accept yajl accepts whole, yajl_complete_parse included (we
     * leave that out after a closed top-level container: json.c) */
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    if (!h)
        __builtin_trap();
    if (yajl_parse(h, data, size) != yajl_status_ok || yajl_complete_parse(h) != yajl_status_ok)
        __builtin_trap();
    yajl_free(h);
    es_buf out;
    es_buf_init(&out, 1 << 20);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_value(&w, j);
    int r = es_jw_finish(&w);
    /* whatever we parsed, we can write back and parse again */
    if (r == 0) {
        es_json *k = NULL;
        es_json_limits big = lim;
        big.max_bytes = 1 << 20;
        if (es_json_parse(out.data, out.len, &big, &k, err, sizeof err) != 0) {
            /* yajl validates UTF-8 when writing, not when reading: a string
             * with invalid UTF-8 fails the writer, never the re-parse */
            __builtin_trap();
        }
        es_json_free(k);
    }
    es_buf_free(&out);
    es_json_free(j);
    return 0;
}
