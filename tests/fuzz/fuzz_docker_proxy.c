/* Fuzzes the proxy's containers/create matcher (docker/proxy.c) against a
 * second, plainer reading of moby's routes: decode the whole path first,
 * then compare. A disagreement would let a create by the interception (or
 * catch what is not one). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "docker/proxy.h"

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool reference(const char *method, const char *t)
{
    if (strcmp(method, "POST") != 0)
        return false;
    if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
        t = strchr(strstr(t, "//") + 2, '/');
        if (!t)
            return false;
    }
    size_t n = strlen(t), o = 0;
    char *d = malloc(n + 1);
    for (size_t i = 0; i < n && t[i] != '?'; i++) {
        if (t[i] == '%' && i + 2 < n && hex(t[i + 1]) >= 0 && hex(t[i + 2]) >= 0) {
            d[o++] = (char)(hex(t[i + 1]) * 16 + hex(t[i + 2]));
            i += 2;
        } else {
            d[o++] = t[i];
        }
    }
    d[o] = '\0';
    /* a decoded NUL is a character of the path like any other */
    const char *suffix = "/containers/create";
    size_t sl = strlen(suffix);
    bool r = false;
    if (o >= sl && memcmp(d + o - sl, suffix, sl) == 0) {
        size_t pre = o - sl;
        if (pre == 0)
            r = true;
        else if (pre >= 3 && d[0] == '/' && d[1] == 'v') {
            r = true;
            for (size_t i = 2; i < pre; i++)
                r = r && (d[i] == '.' || (d[i] >= '0' && d[i] <= '9'));
        }
    }
    free(d);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    const char *method = (data[0] & 1) ? "POST" : "GET";
    char *t = es_strndup((const char *)data + 1, size - 1);
    if (!t)
        return 0;
    if (dk_proxy_is_create(method, t) != reference(method, t))
        __builtin_trap();
    es_free(t);
    return 0;
}
