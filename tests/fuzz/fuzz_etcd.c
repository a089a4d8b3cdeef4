/* Fuzzes what the cluster reads from etcd: one answer or watch line
 * (cl_wire_parse) and a container instance's record (cl_instance_read).
 * The first byte picks the parser. Whatever parses must write back: a
 * record read is written and read again to the same record. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cluster/etcd_wire.h"
#include "cluster/instance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char why[160];
    if (data[0] & 1) {
        static cl_instance in, again;
        if (cl_instance_read(text, len, &in, why, sizeof why) != 0)
            return 0;
        es_buf out;
        es_buf_init(&out, CL_RECORD_MAX * 2);
        if (cl_instance_write(&in, &out) == 0 &&
            (cl_instance_read(out.data, out.len, &again, why, sizeof why) != 0 ||
             strcmp(again.arn, in.arn) != 0 || again.n_attrs != in.n_attrs))
            __builtin_trap();
        es_buf_free(&out);
        return 0;
    }
    cl_answer a;
    if (cl_wire_parse(text, len, &a, why, sizeof why) != 0)
        return 0;
    /* every kv holds a non-empty key and a NUL-terminated value */
    for (size_t i = 0; i < a.n_kvs; i++)
        if (!a.kvs[i].key[0] || a.kvs[i].value[a.kvs[i].value_len] != '\0')
            __builtin_trap();
    for (size_t i = 0; i < a.n_events; i++)
        if (!a.events[i].kv.key[0])
            __builtin_trap();
    cl_answer_free(&a);
    return 0;
}
