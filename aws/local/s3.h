/* s3.h - the embedded S3 subset (issue 20): enough of S3 for ECS's
 * environmentFiles and for the CLI's `aws s3 mb / cp / ls / rm` and
 * `aws s3api put-bucket-policy / head-object` with --endpoint-url.
 *
 * Served on the listener's REST route (aws/listener.h, mounted by
 * al_mount), path-style (/BUCKET/KEY), in every region (a bucket is made in
 * its creator's scope's region and answered from any; S3 itself would
 * redirect): ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
 * GetBucketLocation, Put/Get/DeleteBucketPolicy, ListObjectsV2, PutObject,
 * GetObject, HeadObject, DeleteObject. Answers and errors are S3's XML
 * (NoSuchBucket, NoSuchKey, BucketAlreadyOwnedByYou, BucketAlreadyExists,
 * BucketNotEmpty, NoSuchBucketPolicy, MalformedPolicy, AccessDenied,
 * SignatureDoesNotMatch, InvalidAccessKeyId, EntityTooLarge, ...).
 *
 * Authentication: SigV4 for "s3" (al_verify_s3) with each payload mode of
 * x-amz-content-sha256 (a digest, UNSIGNED-PAYLOAD, the chunked
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD whose chunks' signatures are checked,
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER). Authorisation: the IAM evaluator
 * with the bucket policy as the resource policy (authz.c), on S3's actions
 * and ARNs: s3:ListAllMyBuckets on *, s3:CreateBucket / s3:DeleteBucket /
 * s3:ListBucket / s3:GetBucketLocation / s3:PutBucketPolicy /
 * s3:GetBucketPolicy / s3:DeleteBucketPolicy on arn:aws:s3:::BUCKET,
 * s3:PutObject / s3:GetObject / s3:DeleteObject on arn:aws:s3:::BUCKET/KEY.
 *
 * Objects: at most AL_S3_OBJECT_MAX bytes (and within the listener's body
 * limit), sealed under the host master key with "s3 object BUCKET/KEY" as
 * AAD: nothing of an object's content is on disk in clear. The library does
 * not log. */
#ifndef AL_S3_H
#define AL_S3_H

#include <time.h>

#include "aws/listener.h"
#include "aws/local/auth.h"
#include "aws/local/kms.h"
#include "aws/local/local.h"
#include "aws/local/s3_req.h"

#define AL_S3_OBJECT_MAX AL_KMS_WRAP_LARGE_MAX
#define AL_S3_POLICY_MAX 20480 /* S3's bucket policy limit */
#define AL_S3_BUCKETS_MAX 1000 /* buckets one account may hold here */

/* One request of the REST route (head_err: the head's refusal, or NULL). */
void al_s3_serve(al_ctx *c, const al_request *rq, const al_error *head_err, time_t now,
                 aw_rest_answer *a);

/* The bucket's policy (es_malloc'ed JSON) or *doc NULL when it has none or
 * there is no such bucket. 0 or -EIO. */
int al_s3_bucket_policy_of(al_ctx *c, const char *bucket, char **doc);

#endif
