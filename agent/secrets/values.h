/* values.h - what a secret's value becomes before it is injected, each
 * written once: the json-key extraction ECS does for Secrets Manager
 * references, the registry credentials of repositoryCredentials (S15) and
 * the keyed fingerprint recorded instead of a value.
 *
 * Values are secrets: every buffer that held one is wiped, and no error text
 * quotes a value (only keys and member names). Pure: no I/O, no logging. */
#ifndef AG_SECRETS_VALUES_H
#define AG_SECRETS_VALUES_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "docker/docker.h"

#define AG_SECRET_VALUE_MAX 65536 /* Secrets Manager's SecretString maximum */
#define AG_FINGERPRINT_PREFIX "hmac-sha256:"
#define AG_FINGERPRINT_LEN (sizeof AG_FINGERPRINT_PREFIX - 1 + 32)
#define AG_SECRET_ERR_MAX 512 /* an error text of the functions below */

/* json-key extraction from the top level of a SecretString that is a JSON
 * object: a string as is, a number / boolean / null / object / array as its
 * JSON text. Appends to out (a secret buffer). 0; -EINVAL with err when the
 * secret is not a JSON object or lacks the key (err names the key, never the
 * value); -EMSGSIZE; -ENOMEM. */
int ag_secret_json_key(const char *secret, size_t len, const char *key, es_buf *out, char *err,
                       size_t errlen);

/* The registry an image reference names (Docker's rule: the first
 * path component when it holds '.' or ':' or is "localhost"), or Docker
 * Hub's "https://index.docker.io/v1/". 0 or -EMSGSIZE. */
int ag_image_registry(const char *image, char *out, size_t outlen);

/* an X-Registry-Auth value: what the Docker client sends (a credential whose
 * encoding is longer is refused when built, not when the pull starts) */
#define AG_REGISTRY_AUTH_MAX DK_REGISTRY_AUTH_MAX

/* repositoryCredentials (S15): from the secret's value, a JSON object with
 * string members "username" and "password" (others ignored), to the
 * X-Registry-Auth header value Docker's POST /images/create takes:
 * base64url (with padding) of {"username","password","serveraddress"},
 * serveraddress being ag_image_registry(image). out receives it
 * (NUL-terminated; a secret: release with es_buf_free_secret). Errors never
 * quote the secret: -EINVAL (err says which member is wrong), -ENOMEM,
 * -EMSGSIZE. */
int ag_registry_auth_build(const char *image, const char *secret, size_t len, es_buf *out,
                           char *err, size_t errlen);

/* Keyed fingerprint of a value: "hmac-sha256:" + 32 hex (the first 16 bytes
 * of HMAC-SHA256(key, value)). Lets an operator tell whether two tasks got
 * the same value without the store holding anything that reveals it. out
 * must hold AG_FINGERPRINT_LEN + 1. 0 or -EIO. */
int ag_secret_fingerprint(const void *key, size_t keylen, const char *value, size_t len, char *out,
                          size_t outlen);

#endif
