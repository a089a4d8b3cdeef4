/* sigv4.h - AWS Signature Version 4, for signing (client) and verifying
 * (aws/local, the embedded endpoints).
 *
 * The pieces are exposed one by one so that a server can rebuild exactly
 * what the client signed:
 *
 *   aw_sigv4_canonical_request  method, canonical URI, canonical query,
 *                               canonical headers, signed headers, payload
 *                               hash (PROTOCOLS.md "SigV4")
 *   aw_sigv4_string_to_sign     "AWS4-HMAC-SHA256", x-amz-date, scope,
 *                               hex SHA-256 of the canonical request
 *   aw_sigv4_signing_key        HMAC chain from "AWS4"+secret
 *   aw_sigv4_signature_hex      HMAC of the string to sign, in hex
 *   aw_sigv4_mac_new / _hex     a kept key's HMAC states (ipad, opad blocks
 *                               hashed once), for servers keeping keys
 *   aw_sigv4_parse_authorization  the incoming Authorization header
 *   aw_sigv4_verify             all of the above + constant-time compare
 *
 * and aw_signer wraps them for the client with a small cache of signing keys
 * (one key per day/region/service/credential; the HMAC chain is four HMACs
 * we need not redo per request).
 *
 * Canonicalisation follows botocore (which the real `aws` CLI runs): the
 * path given is the path as sent on the wire (already percent-encoded); for
 * every service but S3 it is normalised (empty and "." segments dropped,
 * ".." resolved, a trailing "/" kept) and percent-encoded again. The query
 * is split on '&' and '=', each part decoded then encoded keeping only
 * A-Za-z0-9-_.~, and sorted by key then value. Header names are lower-cased,
 * values trimmed with inner whitespace runs folded into one space, repeated
 * headers joined by ',' in the order given.
 *
 * Secrets: the secret access key, the signing key, the signature and the
 * Authorization value are wiped from every buffer this module owns. No error
 * carries any of them; functions return 0 or a negative errno. */
#ifndef ES_AWS_SIGV4_H
#define ES_AWS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"

#define AW_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
/* Limits on what we canonicalise and parse (outside input on the server). */
#define AW_SIGV4_CANONICAL_MAX (256u * 1024u) /* canonical request bytes */
#define AW_SIGV4_HEADERS_MAX 128              /* headers considered */
#define AW_SIGV4_QUERY_PARAMS_MAX 256         /* query pairs */
#define AW_SIGV4_AUTH_MAX 4096                /* Authorization header bytes */
#define AW_SIGV4_SIGNED_HEADERS_MAX 64        /* names in SignedHeaders */
#define AW_SIGV4_AKID_MAX 128                 /* access key id bytes */
#define AW_SIGV4_SCOPE_PART_MAX 63            /* region / service bytes */
#define AW_SIGV4_SIGNED_LIST_MAX 2048         /* SignedHeaders value bytes */
#define AW_SIGV4_SCOPE_MAX 512                /* credential scope bytes (149 at most) */
#define AW_SIGV4_STS_MAX 1024                 /* string-to-sign bytes (248 at most) */
#define AW_SIGV4_SECRET_MAX 1024              /* secret access key bytes (AWS issues 40) */

/* One request header, NUL-terminated name and value, as received/sent. */
typedef struct aw_header {
    const char *name;
    const char *value;
} aw_header;

typedef struct aw_sigv4_input {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* as on the wire, percent-encoded, no query */
    const char *query;        /* as on the wire without '?'; NULL or "" */
    const aw_header *headers; /* every header of the request */
    size_t n_headers;
    const char *payload_hash; /* 64 lowercase hex digits */
    bool s3;                  /* true: no normalisation, single encoding */
} aw_sigv4_input;

/* Builds the canonical request into out (reset first).
 *
 * signed_headers NULL (signing): signs every header present except
 * authorization, user-agent, expect and x-amzn-trace-id (botocore's choice),
 * and writes the ';'-joined names into signed_out (reset first; may be NULL).
 * signed_headers non-NULL (verifying): uses exactly that ';'-joined list;
 * a listed header absent from the request gives -ENOENT.
 *
 * Errors: -EINVAL (bad argument / malformed list), -E2BIG (more than
 * AW_SIGV4_HEADERS_MAX headers or AW_SIGV4_QUERY_PARAMS_MAX pairs),
 * -EMSGSIZE (past AW_SIGV4_CANONICAL_MAX or out's own max), -ENOENT, -ENOMEM. */
int aw_sigv4_canonical_request(const aw_sigv4_input *in, const char *signed_headers, es_buf *out,
                               es_buf *signed_out);

/* "YYYYMMDDTHHMMSSZ" (16 chars + NUL) for t in UTC. 0 or -EINVAL. */
int aw_sigv4_amz_date(time_t t, char out[17]);
/* Parses "YYYYMMDDTHHMMSSZ"; 0 or -EINVAL. */
int aw_sigv4_parse_amz_date(const char *s, time_t *out);

/* scope = "date8/region/service/aws4_request" into out (reset first). */
int aw_sigv4_scope(const char *date8, const char *region, const char *service, es_buf *out);

/* String to sign into out (reset first). */
int aw_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq,
                            size_t creq_len, es_buf *out);

/* key = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date8), region), service),
 * "aws4_request"). 0 or -EINVAL (a secret past AW_SIGV4_SECRET_MAX) / -EIO.
 * Callers wipe key after use. */
int aw_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, uint8_t key[32]);

/* hex(HMAC(key, sts)) into hex (64 chars + NUL). 0 or -EIO. */
int aw_sigv4_signature_hex(const uint8_t key[32], const char *sts, size_t sts_len, char hex[65]);

/* Lowercase hex SHA-256 of data. */
void aw_sigv4_sha256_hex(const void *data, size_t len, char hex[65]);
extern const char aw_sigv4_empty_sha256[65];

/* A parsed "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b;c, Signature=<64 hex>" header. */
typedef struct aw_sigv4_auth {
    char access_key_id[AW_SIGV4_AKID_MAX + 1];
    char date[9];
    char region[AW_SIGV4_SCOPE_PART_MAX + 1];
    char service[AW_SIGV4_SCOPE_PART_MAX + 1];
    char signed_headers[AW_SIGV4_SIGNED_LIST_MAX + 1];
    size_t n_signed_headers;
    char signature[65];
} aw_sigv4_auth;

/* Parses value[0..len). The three components may come in any order, each
 * once, separated by ',' and optional spaces. Errors: -EMSGSIZE (longer than
 * AW_SIGV4_AUTH_MAX or a part past its limit), -E2BIG (more than
 * AW_SIGV4_SIGNED_HEADERS_MAX signed headers), -EPROTONOSUPPORT (another
 * algorithm), -EINVAL (malformed). out is untouched on failure. */
int aw_sigv4_parse_authorization(const char *value, size_t len, aw_sigv4_auth *out);
/* Copies a parsed header field by field (the struct is 2.4 KB, mostly
 * SignedHeaders' bound; only what each field holds is copied). */
void aw_sigv4_auth_copy(aw_sigv4_auth *out, const aw_sigv4_auth *a);

/* Server side: recomputes the signature of `in` for `auth` with the secret
 * of auth->access_key_id, using amz_date (the request's X-Amz-Date, whose day
 * must equal auth->date). 0 when it matches, -EACCES when it does not,
 * another negative errno when the request cannot be canonicalised. */
int aw_sigv4_verify(const aw_sigv4_input *in, const aw_sigv4_auth *auth, const char *amz_date,
                    const char *secret);
/* The same with the signing key of (secret, auth->date, auth->region,
 * auth->service) already derived (aw_sigv4_signing_key): a server that keeps
 * derived keys skips the four HMACs of the derivation. */
int aw_sigv4_verify_with_key(const aw_sigv4_input *in, const aw_sigv4_auth *auth,
                             const char *amz_date, const uint8_t key[32]);

/* A signing key's HMAC-SHA256 states after its ipad and opad blocks, made
 * once for a key kept across requests: each MAC then hashes only the
 * message and the inner digest. Key-equivalent: aw_sigv4_mac_free frees it
 * cleansed. One MAC at a time per object (it holds a working copy). NULL
 * without memory or on an OpenSSL failure. */
typedef struct aw_sigv4_mac aw_sigv4_mac;
aw_sigv4_mac *aw_sigv4_mac_new(const uint8_t key[32]);
void aw_sigv4_mac_free(aw_sigv4_mac *m);
/* hex(HMAC(key of m, sts)), as aw_sigv4_signature_hex. 0 or -EIO. */
int aw_sigv4_mac_hex(aw_sigv4_mac *m, const char *sts, size_t sts_len, char hex[65]);
/* Lowercase hex SHA-256 of data, as aw_sigv4_sha256_hex, on m's working
 * digest context (a verifier holding m hashes the request's body with it:
 * no digest context made and freed per hash). Not a MAC: m's key is not
 * involved. 0, -EINVAL (m NULL) or -EIO. */
int aw_sigv4_mac_sha256_hex(aw_sigv4_mac *m, const void *data, size_t len, char hex[65]);
/* aw_sigv4_verify_with_key with the key's kept states. */
int aw_sigv4_verify_with_mac(const aw_sigv4_input *in, const aw_sigv4_auth *auth,
                             const char *amz_date, aw_sigv4_mac *mac);

/* ---- client signer ---------------------------------------------------- */

typedef struct aw_sigv4_creds {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "" for none */
} aw_sigv4_creds;

typedef struct aw_signer aw_signer;

typedef struct aw_sigv4_result {
    char amz_date[17];
    /* The Authorization value; a secret: release with es_buf_free_secret. */
    es_buf authorization;
} aw_sigv4_result;

aw_signer *aw_signer_create(void);
/* Wipes the cached keys. NULL-safe. */
void aw_signer_free(aw_signer *s);

/* Signs in at time now: adds x-amz-date and (with a session token)
 * x-amz-security-token to the signed headers (any such headers, and any
 * authorization header, in `in` are ignored), and fills res (whose
 * authorization buffer is initialised here). The caller sends the headers
 * X-Amz-Date: res->amz_date, X-Amz-Security-Token (if any) and
 * Authorization: res->authorization. */
int aw_signer_sign(aw_signer *s, const aw_sigv4_creds *creds, const char *region,
                   const char *service, time_t now, const aw_sigv4_input *in, aw_sigv4_result *res);
/* Signing keys derived so far (tests prove the cache works). */
unsigned long aw_signer_derivations(const aw_signer *s);

#endif
