/* s3.h - S3 GetObject and GetBucketLocation, path-style, over the signed
 * client (aws/client.h):
 * what ECS's environmentFiles need, in mode aws from real S3 and in
 * embedded mode from the embedded S3 subset (aws/local/s3.h).
 *
 * An object ARN (arn:PARTITION:s3:::BUCKET/KEY) is read into its bucket and
 * key by aw_s3_parse_arn. The object's content is a secret: the callback's
 * buffer is wiped when it returns (take it with es_buf_steal and wipe it
 * yourself). The library does not log. */
#ifndef ES_AWS_S3_H
#define ES_AWS_S3_H

#include <stddef.h>

#include "aws/client.h"
#include "common/buf.h"

#define AW_S3_BUCKET_MAX 63
#define AW_S3_KEY_MAX 1024
#define AW_S3_OBJECT_MAX (1u << 20) /* what a GetObject here reads at most */

/* arn:PARTITION:s3:::BUCKET/KEY into bucket and key (bucket by S3's naming
 * rules, key 1..AW_S3_KEY_MAX bytes). 0 or -EINVAL. */
int aw_s3_parse_arn(const char *arn, char bucket[AW_S3_BUCKET_MAX + 1],
                    char key[AW_S3_KEY_MAX + 1]);

/* /BUCKET/KEY percent-encoded as S3 signs it (unreserved and '/' kept)
 * into out (reset first). 0, -ENOMEM, -EMSGSIZE. */
int aw_s3_object_path(const char *bucket, const char *key, es_buf *out);

/* err NULL: content holds the object (a secret). */
typedef void (*aw_s3_get_cb)(void *arg, const aw_error *err, es_buf *content);
/* GetObject of bucket/key in region (NULL: the client's). 0, or -EINVAL /
 * -ENOMEM (cb not called). An object larger than AW_S3_OBJECT_MAX fails
 * the call (AW_ERR_RESPONSE). */
int aw_s3_get_object(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                     const char *bucket, const char *key, aw_s3_get_cb cb, void *arg);

/* GetBucketLocation of bucket, asked in region (NULL: the client's): err
 * NULL and region the bucket's (S3's empty LocationConstraint is
 * us-east-1, its legacy "EU" eu-west-1). */
typedef void (*aw_s3_location_cb)(void *arg, const aw_error *err, const char *region);
/* 0, or -EINVAL / -ENOMEM (cb not called). An answer that names no valid
 * region fails the call (AW_ERR_RESPONSE). */
int aw_s3_get_bucket_location(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                              const char *bucket, aw_s3_location_cb cb, void *arg);
/* The region a GetBucketLocation answer (<LocationConstraint>) names, into
 * out (AW_REGION_MAX + 1 bytes). 0; -EINVAL: unreadable XML, or not a
 * region name. Pure. */
int aw_s3_parse_location(const char *doc, size_t len, char *out, size_t outlen);

#endif
