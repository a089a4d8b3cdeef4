#include "common/secure.h"
#include "common/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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

static atomic_uint uuid_fork_gen = 1; /* 0: a thread's pool not drawn yet */
static pthread_once_t uuid_fork_once = PTHREAD_ONCE_INIT;

static void uuid_forked(void)
{
    atomic_fetch_add_explicit(&uuid_fork_gen, 1, memory_order_relaxed);
}

static void uuid_fork_register(void)
{
    (void)pthread_atfork(NULL, NULL, uuid_forked);
}

int es_uuid(char out[ES_UUID_LEN + 1])
{
    /* Random bytes drawn 64 UUIDs at a time (one per answer, for the request
     * id: the RNG call's fixed cost dominated). They become public
     * identifiers only; per thread and per process. */
    static __thread uint8_t pool[64 * 16];
    static __thread size_t left;
    static __thread unsigned owner; /* fork generation: a forked child draws its own */
    uint8_t u[16];
    /* forks are counted by an atfork handler rather than asking getpid() per
     * call: glibc does not cache it, so it was one system call per answer */
    (void)pthread_once(&uuid_fork_once, uuid_fork_register);
    unsigned gen = atomic_load_explicit(&uuid_fork_gen, memory_order_relaxed);
    if (left < sizeof u || owner != gen) {
        if (es_random_bytes(pool, sizeof pool) < 0)
            return -EIO;
        left = sizeof pool;
        owner = gen;
    }
    memcpy(u, pool + sizeof pool - left, sizeof u);
    left -= sizeof u;
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    /* 8-4-4-4-12 lowercase hex (one per answer: no printf) */
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;
    for (size_t i = 0; i < sizeof u; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[u[i] >> 4];
        out[j++] = hex[u[i] & 15];
    }
    out[j] = '\0';
    return 0;
}
