/* Fuzzes the records of RunTask across the cluster read from etcd
 * (cluster/tasks.h): the first byte picks the record (request, assignment,
 * result, task status, stop), the input's first line is the key after the
 * leaf's prefix, the rest the value. Whatever is read must write back and
 * read again to the same record (the leader and the owners write what they
 * read). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/tasks.h"

#define ROOT "/ecs-secrets/clusters/c/"

static char *copy(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* reads kv, writes it, reads the written value: the same key fields back */
#define ROUND(type, leaf, rd, wr, same)                                                            \
    do {                                                                                           \
        static type a, b;                                                                          \
        char why[200];                                                                             \
        if (rd(ROOT leaf, &kv, &a, why, sizeof why) != 0)                                          \
            break;                                                                                 \
        es_buf out;                                                                                \
        es_buf_init(&out, CL_TK_VALUE_MAX + 64);                                                   \
        if (wr(&a, &out) == 0) {                                                                   \
            if (es_buf_append(&out, "", 1) != 0)                                                   \
                __builtin_trap();                                                                  \
            cl_kv back = {.key = kv.key, .value = out.data, .value_len = out.len - 1};             \
            if (rd(ROOT leaf, &back, &b, why, sizeof why) != 0 || !(same))                         \
                __builtin_trap();                                                                  \
        }                                                                                          \
        es_buf_free(&out);                                                                         \
    } while (0)

/* Every record a reader takes makes a lost host's STOPPED record that the
 * writer takes (the leader never fails on a record etcd gave it). */
static void lost_round(const cl_kv *kv, bool assignment)
{
    static cl_tk_status st, lost;
    static cl_tk_assignment as;
    char why[200];
    int r = assignment
                ? cl_tk_assignment_read(ROOT CL_TK_ASSIGNMENTS_LEAF, kv, &as, why, sizeof why)
                : cl_tk_status_read(ROOT CL_TK_TASKS_LEAF, kv, &st, why, sizeof why);
    if (r != 0)
        return;
    if (cl_tk_status_lost(assignment ? NULL : &st, assignment ? &as : NULL, "i-0123456789abcdef0",
                          1, &lost) != 0 ||
        strcmp(lost.last_status, "STOPPED") != 0)
        __builtin_trap();
    es_buf out;
    es_buf_init(&out, CL_TK_VALUE_MAX + 64);
    if (cl_tk_status_write(&lost, &out) != 0)
        __builtin_trap();
    es_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(text, '\n', len);
    if (!nl || (size_t)(nl - text) > 200)
        return 0;
    static const char *const leaves[] = {CL_TK_REQUESTS_LEAF, CL_TK_ASSIGNMENTS_LEAF,
                                         CL_TK_RESULTS_LEAF, CL_TK_TASKS_LEAF, CL_TK_STOPS_LEAF};
    unsigned which = data[0] % 5;
    char key[CL_ETCD_KEY_MAX + 1];
    snprintf(key, sizeof key, "%s%s%.*s", ROOT, leaves[which], (int)(nl - text), text);
    char *value = copy(nl + 1, len - (size_t)(nl + 1 - text));
    if (!value)
        return 0;
    cl_kv kv = {.key = key, .value = value, .value_len = len - (size_t)(nl + 1 - text)};
    switch (which) {
    case 0:
        ROUND(cl_tk_request, CL_TK_REQUESTS_LEAF, cl_tk_request_read, cl_tk_request_write,
              b.count == a.count && b.n_constraints == a.n_constraints &&
                  b.overrides_len == a.overrides_len &&
                  (!a.overrides_len || memcmp(a.overrides, b.overrides, a.overrides_len) == 0));
        break;
    case 1:
        ROUND(cl_tk_assignment, CL_TK_ASSIGNMENTS_LEAF, cl_tk_assignment_read,
              cl_tk_assignment_write,
              strcmp(a.task_id, b.task_id) == 0 && a.memory == b.memory &&
                  a.overrides_len == b.overrides_len);
        lost_round(&kv, true);
        break;
    case 2:
        ROUND(cl_tk_result, CL_TK_RESULTS_LEAF, cl_tk_result_read, cl_tk_result_write,
              a.n_placed == b.n_placed && a.n_failed == b.n_failed);
        break;
    case 3:
        ROUND(cl_tk_status, CL_TK_TASKS_LEAF, cl_tk_status_read, cl_tk_status_write,
              strcmp(a.last_status, b.last_status) == 0 && a.n_containers == b.n_containers);
        lost_round(&kv, false);
        break;
    default:
        ROUND(cl_tk_stop, CL_TK_STOPS_LEAF, cl_tk_stop_read, cl_tk_stop_write,
              strcmp(a.reason, b.reason) == 0 && strcmp(a.code, b.code) == 0);
        break;
    }
    free(value);
    return 0;
}
