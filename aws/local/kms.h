/* kms.h - the embedded KMS: symmetric keys, aliases, envelope encryption.
 *
 * Keys: 256-bit material from OpenSSL's RNG, stored in kms_key wrapped with
 * AES-256-GCM under the host master key (<state-dir>/kms-master.key, 32
 * random bytes, created 0600 on first start and refused when group or world
 * can read it); the wrap binds the key id as AAD so rows cannot be swapped.
 *
 * Keys live in one region (the request's: al_region); a key, alias or
 * ciphertext of another region is not found in this one. The AWS managed
 * keys behind alias/aws/ssm and alias/aws/secretsmanager are created in
 * the home region on first open and in another region on first use.
 *
 * Key material has versions: rotation (scheduled, checked lazily when the
 * key encrypts, or on demand) adds one; new ciphertexts use the newest, old
 * ones keep opening with theirs.
 *
 * Ciphertext blob (what Encrypt answers, and what SSM / Secrets Manager
 * store), self-describing:
 *     byte 0      AL_KMS_BLOB_VERSION (1): material version 1, or
 *                 AL_KMS_BLOB_VERSION_ROTATED (2): a later material version
 *     byte 1      n = length of the key id (36)
 *     2..2+n      key id (ASCII uuid)
 *     (version 2 only) 4 bytes: the material version, big-endian
 *     12 bytes    GCM IV (random)
 *     16 bytes    GCM tag
 *     rest        AES-256-GCM ciphertext of the plaintext
 * AAD = the header (everything before the IV), then the encryption context
 * in canonical form (pairs sorted by key; each key and value preceded by
 * its length as 4 bytes big-endian), so a changed header, context, IV, tag
 * or ciphertext fails to decrypt (InvalidCiphertextException). Blobs of
 * material version 1 are written in format 1, so every blob written before
 * rotation existed still opens.
 *
 * A KeyId is accepted as key id, key ARN, alias name ("alias/x") or alias
 * ARN (seed S10); ARNs must name the request's partition, region and
 * account. */
#ifndef AL_KMS_H
#define AL_KMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/local/internal.h"

#define AL_KMS_BLOB_VERSION 1
#define AL_KMS_BLOB_VERSION_ROTATED 2
#define AL_KMS_IV_LEN 12
#define AL_KMS_TAG_LEN 16
#define AL_KMS_PLAINTEXT_MAX 4096  /* Encrypt's limit */
#define AL_KMS_SEAL_MAX (1u << 20) /* what SSM/Secrets Manager may seal */
#define AL_KMS_CONTEXT_MAX_PAIRS 64
#define AL_KMS_CONTEXT_MAX_BYTES 8192
#define AL_KMS_ALIAS_MAX 256
#define AL_KMS_REF_MAX 2048  /* a key reference: id, alias or either's ARN */
#define AL_KMS_TAGS_MAX 50   /* tags on one key */
#define AL_KMS_PENDING_MIN 7 /* ScheduleKeyDeletion's PendingWindowInDays */
#define AL_KMS_PENDING_MAX 30
#define AL_KMS_ROTATION_MIN 90 /* EnableKeyRotation's RotationPeriodInDays */
#define AL_KMS_ROTATION_MAX 2560
#define AL_KMS_ROTATION_DEFAULT 365
#define AL_KMS_ON_DEMAND_MAX 10 /* on-demand rotations of one key */

typedef struct al_kv {
    const char *k;
    const char *v;
} al_kv;

/* Loads or creates the master key, ensures the AWS managed keys. */
int al_kms_init(al_ctx *c, const char *state_dir, char *err, size_t errlen);

/* Resolves ref to a key id. 0; -ENOENT no such key or alias; -EINVAL
 * malformed reference (or longer than AL_KMS_REF_MAX); -EIO storage. */
int al_kms_resolve(al_ctx *c, const char *ref, char key_id[AL_KEY_ID_LEN + 1]);
/* Resolves, answering NotFoundException (or `code`, when not NULL) in e. */
int al_kms_resolve_e(al_ctx *c, const char *ref, const char *code, char key_id[AL_KEY_ID_LEN + 1],
                     al_error *e);
void al_kms_key_arn(al_ctx *c, const char *key_id, char *out, size_t n);
bool al_kms_is_aws_managed(al_ctx *c, const char *key_id);
/* May key_id (of this region) encrypt and decrypt? 0; -ENOENT; -EPERM
 * disabled; -EKEYREVOKED pending deletion; -EIO. */
int al_kms_usable(al_ctx *c, const char *key_id);
/* KMS's words for why key_id refused (r from al_kms_usable, _seal or
 * _unseal): "ARN is pending deletion.", "ARN is disabled.", ... - what a
 * service wraps in its own error, as SSM does. */
void al_kms_reason(al_ctx *c, int r, const char *key_id, char *out, size_t n);
/* Around one read-only operation: keys are taken from the keys kept
 * between reads (unwrapped and expanded once per database stamp, bounded,
 * wiped when dropped or evicted; kms.c), and keys unwrapped meanwhile are
 * kept. Outside (writes) every use reads the key's row and unwraps it. */
void al_kms_memo_begin(al_ctx *c);
void al_kms_memo_end(al_ctx *c);

/* Encrypts under key_id's newest material with the context bound in (a
 * scheduled rotation that is due happens first). *blob is es_malloc'ed.
 * 0, -ENOENT (no such key), -EPERM, -EKEYREVOKED, -EMSGSIZE, -ENOMEM, -EIO. */
int al_kms_seal(al_ctx *c, const char *key_id, const al_kv *ctx, size_t nctx, const uint8_t *pt,
                size_t ptlen, uint8_t **blob, size_t *bloblen);
/* Decrypts a blob. *pt is es_malloc'ed with a NUL after ptlen bytes; wipe
 * it. key_id (may be NULL) receives the key that sealed it. 0, -EBADMSG
 * (malformed, tampered, wrong context), -ENOENT (key gone, or of another
 * region), -EPERM (key disabled), -EKEYREVOKED (key pending deletion),
 * -ENOMEM, -EIO. */
int al_kms_unseal(al_ctx *c, const uint8_t *blob, size_t bloblen, const al_kv *ctx, size_t nctx,
                  uint8_t **pt, size_t *ptlen, char key_id[AL_KEY_ID_LEN + 1]);
/* The same into buf[0..cap) (a NUL after ptlen bytes), nothing allocated:
 * GetParameters opens its values into one stack buffer each. -ENOSPC when
 * the plaintext and its NUL need more than cap (nothing decrypted). The
 * caller wipes buf[0..ptlen]. */
int al_kms_unseal_into(al_ctx *c, const uint8_t *blob, size_t bloblen, const al_kv *ctx,
                       size_t nctx, uint8_t *buf, size_t cap, size_t *ptlen);
/* Wraps a small secret (an access key's secret) under the host master key,
 * with label bound in as AAD: out = iv | tag | ciphertext, es_malloc'ed.
 * Unwrap answers -EBADMSG for a blob or label that does not match; *pt has
 * a NUL after ptlen bytes (wipe it). */
int al_kms_wrap(al_ctx *c, const char *label, const uint8_t *pt, size_t ptlen, uint8_t **out,
                size_t *outlen);
int al_kms_unwrap(al_ctx *c, const char *label, const uint8_t *blob, size_t bloblen, uint8_t **pt,
                  size_t *ptlen);
/* al_kms_wrap for content up to AL_KMS_WRAP_LARGE_MAX (an S3 object's). */
#define AL_KMS_WRAP_LARGE_MAX (1u << 20)
int al_kms_wrap_large(al_ctx *c, const char *label, const uint8_t *pt, size_t ptlen, uint8_t **out,
                      size_t *outlen);

/* Reads the key id out of a blob without decrypting. */
int al_kms_blob_key_id(const uint8_t *blob, size_t bloblen, char key_id[AL_KEY_ID_LEN + 1]);

#endif
