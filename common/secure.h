/* secure.h - wiping and constant-time comparison.
 *
 * Any buffer that held a secret value, a secret access key, a session token
 * or a signing key is wiped with es_wipe before it is freed or reused; MACs
 * and signatures are compared with es_ct_equal. */
#ifndef ES_COMMON_SECURE_H
#define ES_COMMON_SECURE_H

#include <stdbool.h>
#include <stddef.h>

void es_wipe(void *p, size_t n);
/* Wipes the NUL-terminated string (if any) and frees it. NULL-safe. */
void es_free_secret_str(char *s);
/* Frees v[0..n) and v; secret: each string wiped first. NULL-safe. */
void es_strv_free(char **v, size_t n, bool secret);
/* Constant time in n; true when the n bytes are equal. */
bool es_ct_equal(const void *a, const void *b, size_t n);
/* Constant time in the longer length for equal-length inputs; differing
 * lengths answer false (length is not secret). */
bool es_ct_streq(const char *a, const char *b);
/* Cryptographically random bytes; 0 or -EIO. */
int es_random_bytes(void *out, size_t n);

#define ES_UUID_LEN 36
/* A random (version 4) UUID, lowercase 8-4-4-4-12: request ids and key ids,
 * public identifiers. 0 or -EIO. Cheap: the RNG is asked once per 64. */
int es_uuid(char out[ES_UUID_LEN + 1]);

#endif
