/* Fuzzes the cluster query language (cluster/placement_expr.c): whatever
 * compiles is evaluated on an instance with a few attributes, as a
 * memberOf constraint placing tasks on two instances. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/placement.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CL_PL_EXPR_MAX + 16)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static cl_instance in[2];
    memset(in, 0, sizeof in);
    for (int i = 0; i < 2; i++) {
        memcpy(in[i].id, i ? "b2" : "a1", 3);
        memcpy(in[i].status, "ACTIVE", 7);
        in[i].running_tasks = 3 * i;
        cl_instance_set_attr(&in[i], "ecs.instance-type", i ? "m5.large" : "t3.micro");
        cl_instance_set_attr(&in[i], "stack", "prod");
    }
    cl_pl_constraint c;
    char why[160];
    if (cl_pl_constraint_parse("memberOf", text, &c, why, sizeof why) == 0) {
        cl_pl_candidate cands[2] = {{.in = &in[0], .cpu_left = 100, .mem_left = 100},
                                    {.in = &in[1], .cpu_left = 100, .mem_left = 100}};
        cl_pl_request rq = {
            .cpu = 1, .memory = 1, .count = 4, .constraints = &c, .n_constraints = 1};
        size_t where[4], placed;
        cl_pl_reason reason;
        if (cl_pl_place(cands, 2, &rq, where, &placed, &reason) != 0 || placed > 4 ||
            (placed < 4 && reason == CL_PL_R_OK))
            __builtin_trap();
        cl_pl_constraint_clear(&c);
    }
    free(text);
    return 0;
}
