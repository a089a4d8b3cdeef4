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
#include "common/json.h"
#include "docker/docker.h"

#define AG_SECRET_VALUE_MAX 65536 /* Secrets Manager's SecretString maximum */
#define AG_FINGERPRINT_PREFIX "hmac-sha256:"
#define AG_FINGERPRINT_LEN (sizeof AG_FINGERPRINT_PREFIX - 1 + 32)
#define AG_SECRET_ERR_MAX 512 /* an error text of the functions below */

/* A json-key below the top level is a JSON Pointer (RFC 6901): at most this
 * long (the json-key's own maximum, AG_VF_SM_JSON_KEY_MAX) and this deep
 * (the secret's JSON nesting limit). */
#define AG_JSON_POINTER_MAX 1024
#define AG_JSON_POINTER_DEPTH_MAX 32

/* json-key extraction from a SecretString that is a JSON object: the
 * top-level member named key, matched literally first (as ECS does); when
 * there is none and key starts with '/', the value the JSON Pointer key
 * selects (objects' members, arrays' indexes). A string as is, a number /
 * boolean / null / object / array as its JSON text. Appends to out (a secret
 * buffer). 0; -EINVAL with err when the secret is not a JSON object, lacks
 * the key, or the pointer is malformed (err names the key, never the value);
 * -EMSGSIZE; -ENOMEM. */
int ag_secret_json_key(const char *secret, size_t len, const char *key, es_buf *out, char *err,
                       size_t errlen);

/* Parses a secret's value as a JSON object (release with
 * es_json_free_secret): 0, -ENOMEM, or -EINVAL when it is not one. */
int ag_secret_json_object(const char *secret, size_t len, es_json **out);
/* Appends what a selected member gives: a string as is, anything else as
 * its JSON text. 0, -EMSGSIZE, -ENOMEM, -EINVAL (encoding). */
int ag_secret_json_text(const es_json *v, es_buf *out);

/* Evaluates the JSON Pointer ptr on root: 0 with *out the value; -ENOENT
 * when it selects nothing; -EINVAL with why set when ptr is malformed (not
 * starting with '/', a '~' not followed by 0 or 1, over the limits above).
 * Pure: no allocation. */
int ag_json_pointer_get(const es_json *root, const char *ptr, const es_json **out, char *why,
                        size_t whylen);

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
