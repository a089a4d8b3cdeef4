/* s3_chunked.h - S3's aws-chunked request bodies, decoded and checked.
 *
 * A PUT with x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD sends
 * its object as chunks, each "hex-size;chunk-signature=SIG\r\n" DATA "\r\n",
 * ending with a chunk of size 0 (and a last "\r\n"). Each chunk's signature
 * is HMAC(signing key, "AWS4-HMAC-SHA256-PAYLOAD\n" date "\n" scope "\n"
 * previous signature "\n" SHA256("") "\n" SHA256(DATA)), the first chunk's
 * previous signature being the request's own (the seed): a chunk changed,
 * dropped, reordered or added makes every later signature wrong.
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER (newer SDKs over TLS) sends
 * "hex-size\r\n" DATA "\r\n" chunks without signatures, then trailer header
 * lines (x-amz-checksum-crc32:...) and an empty line.
 *
 * The body is outside input: sizes in bounded hex, a bounded number of
 * chunks, a decoded size within max, nothing after the end. The library
 * does not log. */
#ifndef AL_S3_CHUNKED_H
#define AL_S3_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define AL_S3_CHUNK_HEX_MAX 8   /* hex digits of one chunk's size */
#define AL_S3_CHUNKS_MAX 4096   /* chunks in one body */
#define AL_S3_CHUNK_EXT_MAX 128 /* a chunk line's ";..." extension */
#define AL_S3_TRAILER_MAX 1024  /* the trailer's header lines, all together */

/* The request's signing context (al_s3_auth's); NULL for unsigned chunks. */
typedef struct al_s3_chunk_sig {
    const uint8_t *key; /* 32 bytes */
    const char *seed;   /* the Authorization's signature, 64 hex */
    const char *amz_date;
    const char *scope; /* date/region/s3/aws4_request */
} al_s3_chunk_sig;

/* Decodes body[0..len) into out (reset first; a secret buffer: the caller
 * wipes it), at most max bytes of data. With sig every chunk's signature is
 * checked; without, chunks carry none and a trailer may follow the last.
 * 0; -EINVAL malformed (why says how); -EACCES a signature that does not
 * match; -EMSGSIZE over max or AL_S3_CHUNKS_MAX; -ENOMEM. */
int al_s3_dechunk(const char *body, size_t len, const al_s3_chunk_sig *sig, size_t max, es_buf *out,
                  const char **why);

#endif
