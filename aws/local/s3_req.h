/* s3_req.h - an S3 REST request's method, path and query read into the
 * operation it names (path-style addressing: /BUCKET/KEY).
 *
 * Outside input, so bounded: a path of at most AL_S3_PATH_MAX bytes, a
 * bucket name by S3's rules (3-63 of [a-z0-9.-], starting and ending with a
 * letter or digit), a key of 1 to AL_S3_KEY_MAX bytes once percent-decoded
 * (no NUL, no bad escape), at most AL_S3_QUERY_PARAMS_MAX query pairs, each
 * value within its field's size. A sub-resource this subset does not serve
 * (?acl, ?tagging, ?versioning, ...) is named in the refusal
 * (NotImplemented). Pure: no store, no log. */
#ifndef AL_S3_REQ_H
#define AL_S3_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/local/local.h"

#define AL_S3_BUCKET_MIN 3
#define AL_S3_BUCKET_MAX 63
#define AL_S3_KEY_MAX 1024
#define AL_S3_PATH_MAX (3 * (AL_S3_BUCKET_MAX + AL_S3_KEY_MAX) + 2)
#define AL_S3_QUERY_MAX 4096
#define AL_S3_QUERY_PARAMS_MAX 16
#define AL_S3_LIST_MAX 1000 /* ListObjectsV2's MaxKeys, as S3's */
#define AL_S3_DELIMITER_MAX 16
#define AL_S3_TOKEN_MAX (2 * AL_S3_KEY_MAX) /* a continuation token: the last key in hex */

typedef enum al_s3_op {
    AL_S3_LIST_BUCKETS,
    AL_S3_CREATE_BUCKET,
    AL_S3_DELETE_BUCKET,
    AL_S3_HEAD_BUCKET,
    AL_S3_GET_BUCKET_LOCATION,
    AL_S3_PUT_BUCKET_POLICY,
    AL_S3_GET_BUCKET_POLICY,
    AL_S3_DELETE_BUCKET_POLICY,
    AL_S3_LIST_OBJECTS_V2,
    AL_S3_PUT_OBJECT,
    AL_S3_GET_OBJECT,
    AL_S3_HEAD_OBJECT,
    AL_S3_DELETE_OBJECT,
} al_s3_op;

typedef struct al_s3_req {
    al_s3_op op;
    char bucket[AL_S3_BUCKET_MAX + 1];
    char key[AL_S3_KEY_MAX + 1];
    /* ListObjectsV2 */
    char prefix[AL_S3_KEY_MAX + 1];
    char delimiter[AL_S3_DELIMITER_MAX + 1];
    char start_after[AL_S3_KEY_MAX + 1];
    char token[AL_S3_TOKEN_MAX + 1];
    int max_keys;
    bool url_encoding; /* encoding-type=url */
} al_s3_req;

/* Reads method, path (as on the wire, without the query) and query (NULL
 * or without '?'). 0, or -EINVAL with e filled in S3's codes
 * (InvalidBucketName, KeyTooLongError, InvalidArgument, NotImplemented,
 * MethodNotAllowed, InvalidURI). */
int al_s3_parse(const char *method, const char *path, const char *query, al_s3_req *out,
                al_error *e);

/* Whether name is a bucket name S3 accepts. */
bool al_s3_bucket_name_ok(const char *name);

#endif
