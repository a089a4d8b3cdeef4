/* Fuzzes the EnvironmentFile parser: no crash, no leak, no overrun. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"

static int assign(const char *k, const char *v, unsigned line, void *arg)
{
    (void)line;
    (void)arg;
    /* keys are validated identifiers; values fit the limit */
    if (!k[0] || strlen(v) > CF_VALUE_MAX)
        __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    unsigned line = 0;
    cf_parse_text((const char *)data, size, assign, NULL, &line, err, sizeof err);
    return 0;
}
