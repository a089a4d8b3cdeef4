/* td_envfiles.h - a container definition's environmentFiles (issue 20):
 *
 *   "environmentFiles": [{"value": "arn:aws:s3:::BUCKET/KEY", "type": "s3"}]
 *
 * read once at registration into typed records (ag_container_def.env_files):
 * the type must be "s3" (ECS's one EnvironmentFileType), the value an S3
 * object ARN (aws/s3.h aw_s3_parse_arn: the bucket by S3's naming rules,
 * a key), at most AG_ENVFILES_MAX files (agent/secrets/envfile.h). The
 * files are fetched at launch with the execution role, together with the
 * secrets (agent/secrets/plan.h, resolve.h). Refusals are ClientExceptions
 * naming the member ("containerDefinitions[0].environmentFiles[1].value:
 * ..."). Pure: no I/O, no logging. */
#ifndef AG_TD_ENVFILES_H
#define AG_TD_ENVFILES_H

#include <stddef.h>

#include "aws/s3.h"
#include "common/json.h"

struct ag_td_error;

#define AG_ENVFILE_ARN_MAX (AW_S3_BUCKET_MAX + AW_S3_KEY_MAX + 32) /* arn:PART:s3:::B/K */
#define AG_ENVFILE_PARTITION_MAX 32

typedef struct ag_env_file {
    char *value; /* the object's ARN as registered */
    char partition[AG_ENVFILE_PARTITION_MAX + 1];
    char bucket[AW_S3_BUCKET_MAX + 1];
    char key[AW_S3_KEY_MAX + 1];
} ag_env_file;

/* Reads cd's environmentFiles (prefix: the container's field path) into
 * *out / *n (NULL / 0 when absent or empty). 0, -EINVAL (e filled),
 * -ENOMEM. */
int ag_td_envfiles_parse(const es_json *cd, const char *prefix, ag_env_file **out, size_t *n,
                         struct ag_td_error *e);
/* "environmentFiles": [...] as registered; nothing when n is 0. */
void ag_td_envfiles_write(es_jw *w, const ag_env_file *f, size_t n);
void ag_td_envfiles_free(ag_env_file *f, size_t n);
/* arn:PART:s3:::BUCKET, the bucket's ARN (s3:GetBucketLocation's
 * resource), into out. 0 or -EMSGSIZE. */
int ag_env_file_bucket_arn(const ag_env_file *f, char *out, size_t outlen);

#endif
