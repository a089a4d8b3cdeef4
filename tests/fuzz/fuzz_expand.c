/* Fuzzes what a secret's value becomes through a nested json-key and an
 * expansion (issue 21): the first line is a json-key (a JSON Pointer when
 * it starts with '/') and, again, a parameter name under "/app"; the rest is
 * the secret. No crash; a refusal says why and never quotes the value; an
 * expansion gives only "NAME=VALUE" entries with valid names, at most
 * AG_EXPAND_MAX. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/secrets/expand.h"
#include "agent/secrets/values.h"
#include "common/alloc.h"
#include "common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AG_SECRET_VALUE_MAX)
        return 0;
    const char *nl = memchr(data, '\n', size);
    size_t kl = nl ? (size_t)(nl - (const char *)data) : size;
    if (kl > AG_JSON_POINTER_MAX + 8)
        return 0;
    char key[AG_JSON_POINTER_MAX + 9];
    memcpy(key, data, kl);
    key[kl] = '\0';
    const char *secret = nl ? nl + 1 : "";
    size_t sl = nl ? size - kl - 1 : 0;
    char err[AG_SECRET_ERR_MAX] = "";

    es_buf out;
    es_buf_init(&out, AG_SECRET_VALUE_MAX);
    if (ag_secret_json_key(secret, sl, key, &out, err, sizeof err) != 0 && !err[0])
        __builtin_trap();
    if (out.len > sl)
        __builtin_trap(); /* a selected value is never longer than its source text */
    es_buf_free_secret(&out);

    es_buf env;
    es_buf_init(&env, AG_EXPAND_ENV_MAX);
    size_t n = 0;
    err[0] = '\0';
    if (ag_expand_json("P_", secret, sl, &env, &n, err, sizeof err) == 0) {
        size_t seen = 0;
        for (size_t o = 0; o < env.len; seen++) {
            const char *e = env.data + o, *eq = strchr(e, '=');
            if (!eq || strncmp(e, "P_", 2) != 0 || !ag_expand_name_ok(e, (size_t)(eq - e)))
                __builtin_trap();
            o += strlen(e) + 1;
        }
        if (seen != n || n > AG_EXPAND_MAX)
            __builtin_trap();
    } else if (!err[0] || env.len != 0) {
        __builtin_trap(); /* a refusal says why and leaves nothing behind */
    }
    es_buf_free_secret(&env);

    char var[AG_EXPAND_NAME_MAX + 1];
    err[0] = '\0';
    if (ag_expand_ssm_var("A_", "/app", key, var, sizeof var, err, sizeof err) == 0) {
        if (strncmp(key, "/app/", 5) != 0 || !ag_expand_name_ok(var, strlen(var)))
            __builtin_trap();
    } else if (!err[0]) {
        __builtin_trap();
    }
    return 0;
}
