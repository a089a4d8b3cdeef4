/* td_envfiles.c - a container definition's environmentFiles (td_envfiles.h). */
#include "agent/tasks/td_envfiles.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/secrets/envfile.h"
#include "agent/tasks/td_json.h"
#include "common/alloc.h"

#define CLIENT "ClientException"
#define INVALID "InvalidParameterException"

static const char *const members[] = {"value", "type"};

void ag_td_envfiles_free(ag_env_file *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        es_free(f[i].value);
    es_free(f);
}

/* The partition of arn:PART:s3:::..., which aw_s3_parse_arn checked. */
static int take_partition(const char *arn, char *out, size_t outlen)
{
    const char *p = arn + 4;
    size_t n = strcspn(p, ":");
    if (n == 0 || n >= outlen)
        return -EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int parse_one(const es_json *j, const char *path, ag_env_file *f, ag_td_error *e)
{
    if (j->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be an object {value, type}", path);
    int rc = ag_td_known_members(j, path, "EnvironmentFile", members,
                                 sizeof members / sizeof *members, e);
    char *type = NULL;
    if (rc == 0)
        rc = ag_td_str_member(j, path, "type", 16, true, &type, e);
    if (rc == 0 && strcmp(type, "s3") != 0)
        rc = ag_td_bad(e, CLIENT, "%s.type: must be s3 (the one type of environment file)", path);
    es_free(type);
    if (rc == 0)
        rc = ag_td_str_member(j, path, "value", AG_ENVFILE_ARN_MAX, true, &f->value, e);
    if (rc == 0 && (aw_s3_parse_arn(f->value, f->bucket, f->key) < 0 ||
                    take_partition(f->value, f->partition, sizeof f->partition) < 0))
        rc = ag_td_bad(e, CLIENT,
                       "%s.value: not an S3 object ARN (arn:aws:s3:::BUCKET/KEY, the bucket "
                       "named by S3's rules, a key of 1 to %d bytes)",
                       path, AW_S3_KEY_MAX);
    return rc;
}

int ag_td_envfiles_parse(const es_json *cd, const char *prefix, ag_env_file **out, size_t *n,
                         ag_td_error *e)
{
    char lpath[AG_TD_FIELD_PATH_MAX];
    int rc = 0;
    *out = NULL;
    *n = 0;
    const es_json *list = ag_td_list_member(cd, prefix, "environmentFiles", AG_ENVFILES_MAX, lpath,
                                            sizeof lpath, &rc, e);
    size_t len = list ? es_json_len(list) : 0;
    if (!list || len == 0)
        return rc;
    ag_env_file *f = es_calloc(len, sizeof *f);
    if (!f)
        return ag_td_nomem(e);
    for (size_t i = 0; i < len && rc == 0; i++) {
        char path[AG_TD_FIELD_PATH_MAX];
        ag_td_pathf(path, sizeof path, "%s[%zu]", lpath, i);
        rc = parse_one(es_json_at(list, i), path, &f[i], e);
    }
    if (rc) {
        ag_td_envfiles_free(f, len);
        return rc;
    }
    *out = f;
    *n = len;
    return 0;
}

void ag_td_envfiles_write(es_jw *w, const ag_env_file *f, size_t n)
{
    if (!n)
        return;
    es_jw_key(w, "environmentFiles");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "value", f[i].value);
        es_jw_kstr(w, "type", "s3");
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

int ag_env_file_bucket_arn(const ag_env_file *f, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "arn:%s:s3:::%s", f->partition, f->bucket);
    return n < 0 || (size_t)n >= outlen ? -EMSGSIZE : 0;
}
