/* Fuzzes what a container sends the container endpoints (agent/endpoints/shapes.h): the
 * first line as an Authorization header against a token, the rest as a metadata v4 path.
 * No crash; only the token itself matches; a path is accepted only as /v4/<32 hex>[/task]
 * with the id copied whole, and as an awslogs credentials path only as
 * /v2/credentials/<64 lowercase hex>. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/endpoints/shapes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AG_EP_AUTH_MAX * 2)
        return 0;
    char buf[AG_EP_AUTH_MAX * 2 + 1];
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *nl = strchr(buf, '\n');
    const char *path = nl ? nl + 1 : "";
    if (nl)
        *nl = '\0';
    static const char token[AG_EP_TOKEN_HEX + 1] =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    if (ag_ep_token_matches(buf, token) != (strcmp(buf, token) == 0))
        __builtin_trap();
    char id[AG_EP_ID_HEX + 1];
    bool task = false;
    if (ag_ep_parse_meta_path(path, id, &task)) {
        if (strlen(id) != AG_EP_ID_HEX || strncmp(path + 4, id, AG_EP_ID_HEX) != 0)
            __builtin_trap();
        if (strcmp(path + 4 + AG_EP_ID_HEX, task ? "/task" : "") != 0)
            __builtin_trap();
    }
    char lid[AG_EP_TOKEN_HEX + 1];
    if (ag_ep_parse_logs_path(path, lid)) {
        if (strlen(lid) != AG_EP_TOKEN_HEX || strlen(path) != 16 + AG_EP_TOKEN_HEX ||
            strcmp(path + 16, lid) != 0 || strspn(lid, "0123456789abcdef") != AG_EP_TOKEN_HEX)
            __builtin_trap();
    }
    return 0;
}
