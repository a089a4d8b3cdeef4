/* Fuzzes repositoryCredentials (S15): the credential secret's value (outside
 * input: whatever the secret holds) into the X-Registry-Auth value, and the
 * credentialsParameter classifier. No crash; a success is base64url with
 * padding and nothing else (a CR or LF would split the request head); a
 * refusal says why. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/secrets/inject.h"
#include "agent/secrets/valuefrom.h"
#include "common/alloc.h"
#include "common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AG_SECRET_VALUE_MAX)
        return 0;
    char *s = es_strndup((const char *)data, size);
    if (!s)
        return 0;
    /* the first line doubles as an image reference */
    char image[256];
    size_t il = strcspn(s, "\n");
    if (il >= sizeof image)
        il = sizeof image - 1;
    memcpy(image, s, il);
    image[il] = '\0';
    char reg[300];
    if (ag_image_registry(image, reg, sizeof reg) != 0 || !reg[0])
        __builtin_trap();

    es_buf out;
    es_buf_init(&out, AG_REGISTRY_AUTH_MAX);
    char err[AG_INJECT_ERR_MAX] = "";
    if (ag_registry_auth_build(image, (const char *)data, size, &out, err, sizeof err) == 0) {
        if (!out.data || out.len == 0 || out.len % 4 != 0)
            __builtin_trap();
        for (size_t i = 0; i < out.len; i++) {
            char c = out.data[i];
            bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || (c == '=' && i + 2 >= out.len);
            if (!ok)
                __builtin_trap();
        }
    } else if (!err[0]) {
        __builtin_trap(); /* every refusal says why */
    }
    es_buf_free_secret(&out);

    ag_valuefrom v;
    if (ag_valuefrom_parse_secret(s, "us-east-1", &v, err, sizeof err) == 0) {
        if (v.kind != AG_VF_SECRETSMANAGER || !v.secret_id || !*v.secret_id || v.json_key ||
            v.version_stage || v.version_id)
            __builtin_trap();
        ag_valuefrom_clear(&v);
    } else if (!err[0]) {
        __builtin_trap();
    }
    es_free(s);
    return 0;
}
