/* Fuzzes a service's record read from etcd (cluster/services.h): the
 * input's first line is the key after the services/ prefix, the rest the
 * value. Whatever is read must write back and read again to the same
 * record (the leader writes what it read, and a new leader reads what the
 * old one wrote). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/services.h"

#define PREFIX "/ecs-secrets/clusters/c/" CL_SV_LEAF

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    if (!nl || (size_t)(nl - text) > CL_SV_NAME_MAX + 1)
        return 0;
    static char key[sizeof PREFIX + CL_SV_NAME_MAX + 2];
    size_t kl = (size_t)(nl - text);
    memcpy(key, PREFIX, sizeof PREFIX - 1);
    memcpy(key + sizeof PREFIX - 1, text, kl);
    key[sizeof PREFIX - 1 + kl] = '\0';
    size_t vl = size - kl - 1;
    char *value = malloc(vl + 1);
    if (!value)
        return 0;
    memcpy(value, nl + 1, vl);
    value[vl] = '\0';
    cl_kv kv = {.key = key, .value = value, .value_len = vl, .mod_revision = 5};
    static cl_sv_record a, b;
    char why[200];
    if (cl_sv_read(PREFIX, &kv, &a, why, sizeof why) == 0) {
        es_buf out;
        es_buf_init(&out, CL_SV_VALUE_MAX + 1);
        size_t ev = 0;
        if (cl_sv_write(&a, &out, &ev) != 0 || es_buf_append(&out, "", 1) != 0)
            __builtin_trap();
        cl_kv back = {.key = key, .value = out.data, .value_len = out.len - 1, .mod_revision = 5};
        /* the same record back, less the oldest events if the writer's
         * form (every list written, even empty) no longer fitted them all */
        if (ev > a.n_events)
            __builtin_trap();
        memset(&a.events[ev], 0, (a.n_events - ev) * sizeof a.events[0]);
        a.n_events = ev;
        if (cl_sv_read(PREFIX, &back, &b, why, sizeof why) != 0 || memcmp(&a, &b, sizeof a) != 0)
            __builtin_trap();
        es_buf_free(&out);
    }
    free(value);
    return 0;
}
