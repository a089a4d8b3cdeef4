/* Fuzzes the drift answer parsers (DescribeParameters, GetParameter for a
 * label, DescribeSecret) and
 * checks what they promise: a version only on success, within the buffer. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/secrets/drift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t v = -1;
    double mod = 0;
    int rc = ag_drift_parse_ssm((const char *)data, size, &v, &mod);
    if (rc == 0 && v < 1)
        __builtin_trap();
    if (rc != 0 && rc != -ENOENT && rc != -EPROTO)
        __builtin_trap();
    v = -1;
    rc = ag_drift_parse_ssm_label((const char *)data, size, &v, &mod);
    if (rc == 0 && v < 1)
        __builtin_trap();
    if (rc != 0 && rc != -EPROTO)
        __builtin_trap();
    char ver[16];
    memset(ver, 'x', sizeof ver);
    rc = ag_drift_parse_sm((const char *)data, size, "AWSCURRENT", ver, sizeof ver, &mod);
    if (rc == 0 && strnlen(ver, sizeof ver) >= sizeof ver)
        __builtin_trap();
    return 0;
}
