/* Fuzzes what the cluster reads from etcd: one answer or watch line
 * (cl_wire_parse), a container instance's record (cl_instance_read) and a
 * task definition's key and value (cl_td_read: the input's first line is
 * the key after the prefix, the rest the value). The first byte picks the
 * parser. Whatever parses must write back: a record read is written and
 * read again to the same record. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/etcd_wire.h"
#include "cluster/instance.h"
#include "cluster/taskdefs.h"

#define TD_PREFIX "/ecs-secrets/clusters/c/taskdefs/"

static void fuzz_taskdef(const char *text, size_t len)
{
    const char *nl = memchr(text, '\n', len);
    if (!nl || (size_t)(nl - text) > CL_ETCD_KEY_MAX - sizeof TD_PREFIX)
        return;
    char key[CL_ETCD_KEY_MAX + 1];
    snprintf(key, sizeof key, "%s%.*s", TD_PREFIX, (int)(nl - text), text);
    size_t vlen = len - (size_t)(nl + 1 - text);
    char *value = malloc(vlen + 1);
    if (!value)
        return;
    memcpy(value, nl + 1, vlen);
    value[vlen] = '\0';
    cl_kv kv = {.key = key, .value = value, .value_len = vlen};
    cl_td_record rec, again;
    char why[160];
    if (cl_td_read(TD_PREFIX, &kv, &rec, why, sizeof why) == 0) {
        es_buf out;
        es_buf_init(&out, CL_ETCD_VALUE_MAX);
        cl_kv back = {.key = key};
        if (cl_td_write(&rec, &out) == 0) {
            back.value = out.data;
            back.value_len = out.len;
            if (cl_td_read(TD_PREFIX, &back, &again, why, sizeof why) != 0 ||
                again.revision != rec.revision || again.body_len != rec.body_len ||
                memcmp(again.body, rec.body, rec.body_len) != 0)
                __builtin_trap();
        }
        es_buf_free(&out);
    }
    free(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char why[160];
    if ((data[0] & 3) == 2) {
        fuzz_taskdef(text, len);
        return 0;
    }
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
