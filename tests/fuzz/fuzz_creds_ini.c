/* Fuzzes the shared credentials/config file parser. */
#include <stddef.h>
#include <stdint.h>

#include "aws/credentials.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const profiles[] = {"default", "a", "prod"};
    for (int i = 0; i < 3; i++)
        for (int style = 0; style < 2; style++) {
            aw_credentials c = {0};
            if (aw_creds_parse_ini((const char *)data, size, profiles[i], style, &c) == 0) {
                if (!c.access_key_id || !c.secret_access_key)
                    __builtin_trap();
                aw_credentials_clear(&c);
            }
        }
    return 0;
}
