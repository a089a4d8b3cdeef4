#include "common/secure.h"
#include "common/alloc.h"

#include <errno.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* explicit_bzero: glibc's memset that the compiler may not drop. Not
 * OPENSSL_cleanse, which stores byte by byte: the daemon wipes every request
 * and answer buffer that may have carried a secret, on the hot paths of the
 * Docker client and the embedded store. */
void es_wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

void es_free_secret_str(char *s)
{
    if (!s)
        return;
    es_wipe(s, strlen(s));
    es_free(s);
}

void es_strv_free(char **v, size_t n, bool secret)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        secret ? es_free_secret_str(v[i]) : es_free(v[i]);
    es_free(v);
}

bool es_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

bool es_ct_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}

int es_random_bytes(void *out, size_t n)
{
    if (n > (size_t)0x7fffffff)
        return -EINVAL;
    return RAND_bytes(out, (int)n) == 1 ? 0 : -EIO;
}
