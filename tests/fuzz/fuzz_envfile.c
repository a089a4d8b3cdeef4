/* Fuzzes the reading of an ECS environment file (ag_envfile_parse) and the
 * merge of two files under taken names: whatever the input, 0 with entries
 * that are each NAME=VALUE (a name once, no empty part, no line end), or a
 * refusal with a reason and nothing kept. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/secrets/envfile.h"

static void check_entries(const es_buf *env)
{
    for (size_t at = 0; at < env->len;) {
        const char *e = env->data + at;
        size_t el = strnlen(e, env->len - at);
        const char *eq = memchr(e, '=', el);
        if (at + el >= env->len || !eq || eq == e || eq == e + el - 1 || memchr(e, '\n', el))
            abort();
        if (ag_envfile_defines(env->data + at + el + 1, env->len - at - el - 1, e,
                               (size_t)(eq - e)))
            abort(); /* a name twice */
        at += el + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    es_buf files[2], out;
    es_buf_init(&files[0], AG_ENVFILE_ENV_MAX);
    es_buf_init(&files[1], AG_ENVFILE_ENV_MAX);
    es_buf_init(&out, AG_ENVFILE_ENV_MAX);
    char err[256] = "";
    size_t half = size / 2;
    int r0 = ag_envfile_parse((const char *)data, half, &files[0], err, sizeof err);
    if (r0 < 0 && (!err[0] || files[0].len))
        abort();
    err[0] = '\0';
    int r1 = ag_envfile_parse((const char *)data + half, size - half, &files[1], err, sizeof err);
    if (r1 < 0 && (!err[0] || files[1].len))
        abort();
    check_entries(&files[0]);
    check_entries(&files[1]);
    const char *taken[] = {"A", "PATH"};
    if (ag_envfile_merge(files, 2, taken, 2, &out) == 0) {
        check_entries(&out);
        if (ag_envfile_defines(out.data ? out.data : "", out.len, "A", 1))
            abort();
    }
    es_buf_free_secret(&files[0]);
    es_buf_free_secret(&files[1]);
    es_buf_free_secret(&out);
    return 0;
}
