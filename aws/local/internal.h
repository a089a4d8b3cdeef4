/* internal.h - what the aws/local services share; not for other modules. */
#ifndef AL_INTERNAL_H
#define AL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/endpoint.h"
#include "aws/local/db.h"
#include "aws/local/local.h"
#include "common/buf.h"
#include "common/json.h"

#define AL_MASTER_KEY_FILE "kms-master.key"
#define AL_KEY_BYTES 32
#define AL_KEY_ID_LEN 36 /* uuid */

/* See al_ctx's rq_caller. */
typedef struct al_rq_caller {
    const char *principal;
    size_t len;
    uint64_t hash;
    bool hashed; /* len and hash made */
    /* the last action asked for this caller (a copy: compared by its bytes),
     * and the hash of principal then action; action_len 0: none yet */
    size_t action_len;
    uint64_t action_hash;
    char action[48];
} al_rq_caller;

struct al_ctx {
    al_db *db;
    char *region;          /* the home region: al_dispatch's, where older state lives */
    const char *partition; /* the home region's (aws/region.h) */
    char *account;
    /* The region of the request being served (its SigV4 scope's) and its
     * partition, set by al_dispatch_in / al_query_dispatch_in for one call;
     * empty outside one. Read them through al_region / al_partition. */
    char rq_region[AW_REGION_MAX + 1];
    const char *rq_partition;
    /* moves with every al_region_enter / al_region_leave: what was made
     * from al_region and al_partition under one value (ssm.c's ARN
     * prefix) holds while it does not move */
    uint64_t rq_seq;
    al_authz_fn authz;
    void *authz_arg;
    al_clock_fn clock;
    void *clock_arg;
    al_store_failure_fn store_failure;
    void *store_failure_arg;
    uint8_t master[AL_KEY_BYTES];
    al_authz_msg_fn authz_msg; /* authz.h; NULL: none */
    void *authz_msg_arg;
    const char *calling_service; /* the JSON service being dispatched, for messages */
    /* The caller of the operation being served, as the dispatcher received
     * it: one string for the whole operation, neither written nor freed
     * while it runs, so a question naming this very address is asked for
     * this caller. Its length, and the first part of a kept decision's hash
     * (authz.c), are made at its first decision rather than at each (a
     * GetParameters of 10 names asks 10). principal NULL outside an
     * operation. */
    al_rq_caller rq_caller;
    /* the request being served was signed with temporary (ASIA...)
     * credentials: GetSessionToken refuses them, as STS does */
    bool caller_temporary;
    double sm_next_purge;   /* Secrets Manager: next sweep of expired deletions */
    struct al_sm_state *sm; /* Secrets Manager's rotation (secretsmanager.c) */
    /* Inside one read-only operation (al_kms_memo_begin/_end) KMS keys are
     * taken from, and put in, the keys kept between reads (kms.c: unwrapped
     * and expanded for AES-GCM, valid for one database stamp, wiped when
     * dropped, evicted or at al_close). */
    bool key_memo_on;
    struct al_kms_keep *kms_keep;
    /* Caches of what the database holds, valid while al_db_stamp_now is
     * unchanged (db.h): SigV4 signing keys (auth.c), compiled policies
     * (authz.c), parameter versions (ssm.c), KMS keys (kms.c). Allocated on first use, wiped
     * and freed by al_close. */
    struct al_auth_cache *auth_cache;
    struct al_authz_cache *authz_cache;
    struct pv_cache *ssm_cache; /* ssm.c: parameter versions as stored */
    struct al_match *match;     /* match.c: AllowedPattern off the loop; NULL: inline */
    char *ecr_registry, *ecr_credentials_file; /* ecr.c (al_options'); NULL: none */
    al_cache_stats cache_stats;
};

void al_auth_cache_free(al_ctx *c);
void al_authz_cache_free(al_ctx *c);
void al_ssm_cache_free(al_ctx *c);
void al_kms_keep_free(al_ctx *c);

/* Fills e and answers -EINVAL (status < 500) or -EIO (status >= 500). */
int al_fail(al_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 500 InternalServerError/InternalFailure for a storage failure. */
int al_fail_internal(al_error *e, const char *code);
/* After an operation: when it failed with a 5xx and the database had
 * failed (db.h, al_db_failure_take), says why in e's message ("the embedded
 * store could not write: database or disk is full (SQLITE_FULL)") and tells
 * al_options.store_failure once. Clears the failure either way. */
void al_store_failure_report(al_ctx *c, const char *service, const char *operation, int r,
                             al_error *e);
/* Asks the authorisation hook; on refusal fills e (AccessDeniedException). */
int al_authorize(al_ctx *c, const char *principal, const char *action, const char *resource,
                 al_error *e);
/* The same for a resource whose length the caller has (resource_len ==
 * strlen(resource)): not measured again. */
int al_authorize_n(al_ctx *c, const char *principal, const char *action, const char *resource,
                   size_t resource_len, al_error *e);

double al_now(al_ctx *c);

/* The region the current request is served in (its credential scope's; the
 * home region outside a request) and its partition ("aws", "aws-cn", ...):
 * every regional resource lives in one, every ARN names both. */
const char *al_region(const al_ctx *c);
const char *al_partition(const al_ctx *c);
/* Serves the next operations in region (a known one: aws/region.h; NULL or
 * "" the home region) until al_region_leave. -EINVAL for an unknown region. */
int al_region_enter(al_ctx *c, const char *region);
void al_region_leave(al_ctx *c);

/* Base64 (standard alphabet, padded). Encode appends to b. Decode is strict
 * (padding required, no whitespace); -EINVAL on bad input, -ENOMEM. The
 * decoded buffer is es_malloc'ed (wipe it when it held a secret). */
int al_b64_encode(es_buf *b, const uint8_t *p, size_t n);
int al_b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);
/* Writes a base64 JSON string value. */
void al_jw_b64(es_jw *w, const uint8_t *p, size_t n);

/* n random characters drawn evenly from the an characters of alphabet (an
 * at most 256), then a NUL. 0 or -EIO. */
int al_random_from(const char *alphabet, size_t an, char *out, size_t n);
/* Random characters from [A-Za-z0-9] (n chars, then a NUL). */
int al_random_alnum(char *out, size_t n);
/* A random version-4 UUID into out[37]. */
int al_uuid(char out[AL_KEY_ID_LEN + 1]);

/* Reads an optional string member; false with e filled when present but not a
 * string. */
bool al_opt_str(const es_json *req, const char *key, const char **out, al_error *e);
bool al_opt_bool(const es_json *req, const char *key, bool def, bool *out, al_error *e);
bool al_opt_int(const es_json *req, const char *key, int64_t lo, int64_t hi, int64_t def,
                int64_t *out, al_error *e);

/* Reads a paging token that is a decimal number >= 0 (a rowid) into *out;
 * false (*out untouched) for anything else. */
bool al_number_token(const char *tok, int64_t *out);

/* Tag limits (the rules themselves: tags.h). AL_TAG_RULE is Secrets
 * Manager's wording of a bad key or value. */
#define AL_TAG_KEY_MAX 128
#define AL_TAG_VALUE_MAX 256
#define AL_TAG_RULE "Each tag needs a Key (1-128 characters) and a Value (up to 256)."

/* Operation tables, one per service. */
typedef int (*al_op_fn)(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                        al_error *e);
typedef struct al_op {
    const char *name;
    al_op_fn fn;
} al_op;

extern const al_op al_kms_ops[];
extern const al_op al_ssm_ops[];
extern const al_op al_sm_ops[];
extern const al_op al_ecr_ops[];

/* A word-at-a-time hash of s[0..n) continuing h, the length ending it
 * ("ab","c" and "a","bc" differ): for the store's in-memory indexes (kept
 * versions, operations), whose entries are compared in full, so not a
 * defence against chosen collisions. */
static inline uint64_t al_hash_mix(uint64_t h, const char *s, size_t n)
{
    size_t at = 0;
    uint64_t w;
    for (; at + 8 <= n; at += 8) {
        memcpy(&w, s + at, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s + at, n - at);
    h = (h ^ w ^ ((uint64_t)n << 56)) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

#endif
