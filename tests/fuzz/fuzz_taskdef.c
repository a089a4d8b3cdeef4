/* Fuzzes RegisterTaskDefinition parsing and validation; whatever is accepted
 * must write back (request and describe shapes) and parse again to the same
 * request text, and a RunTask override may be parsed against it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/tasks/taskdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    ag_taskdef *td = NULL;
    ag_td_error e;
    if (ag_taskdef_parse((const char *)data, size, &ctx, &td, &e) != 0) {
        if (!e.code || !e.message[0])
            __builtin_trap();
        return 0;
    }
    es_buf a, b;
    es_buf_init(&a, 1 << 20);
    es_buf_init(&b, 1 << 20);
    es_jw w;
    es_jw_init(&w, &a);
    ag_taskdef_write_request(td, &w);
    int r = es_jw_finish(&w);
    if (r != 0)
        __builtin_trap(); /* whatever is accepted can be stored */
    {
        ag_taskdef *td2 = NULL;
        if (ag_taskdef_parse(a.data, a.len, &ctx, &td2, &e) != 0)
            __builtin_trap();
        es_jw_init(&w, &b);
        ag_taskdef_write_request(td2, &w);
        if (es_jw_finish(&w) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
            __builtin_trap();
        ag_taskdef_free(td2);
    }
    es_buf_reset(&b);
    es_jw_init(&w, &b);
    ag_taskdef_write_describe(td, "us-east-1", "123456789012", &w);
    (void)es_jw_finish(&w);
    /* the input may also hold an "overrides" member: parse it against td */
    es_json *j = NULL;
    if (es_json_parse((const char *)data, size, NULL, &j, NULL, 0) == 0) {
        ag_overrides *o = NULL;
        if (ag_overrides_parse(es_json_get(j, "overrides"), td, &o, &e) == 0)
            ag_overrides_free(o);
        es_json_free(j);
    }
    es_buf_free(&a);
    es_buf_free(&b);
    ag_taskdef_free(td);
    return 0;
}
