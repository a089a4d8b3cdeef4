/* Fuzzes the ARN parser and checks what it promises about its output. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/arn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aw_arn a;
    int rc = aw_arn_parse((const char *)data, size, &a);
    if (rc != 0) {
        if (aw_arn_strerror(rc)[0] == '\0')
            __builtin_trap();
        return 0;
    }
    if (strncmp((const char *)data, "arn:", 4) != 0 || !a.service[0] || !a.resource[0])
        __builtin_trap();
    if (a.kind == AW_ARN_SSM_PARAMETER && !a.name[0])
        __builtin_trap();
    if (a.kind == AW_ARN_IAM_ROLE && (a.region[0] || a.path[0] != '/'))
        __builtin_trap();
    if (a.kind == AW_ARN_SECRET) {
        char id[AW_ARN_MAX + 64];
        if (aw_arn_secret_id(&a, id, sizeof id) != 0 ||
            strncmp(id, (const char *)data, strlen(id)) != 0)
            __builtin_trap();
    }
    return 0;
}
