/* s3.c - S3 GetObject (s3.h). */
#include "aws/s3.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "aws/endpoint.h"
#include "aws/xml.h"
#include "common/alloc.h"
#include "common/secure.h"

static bool bucket_ok(const char *b, size_t n)
{
    if (n < 3 || n > AW_S3_BUCKET_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '.' && ch != '-')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
    }
    return true;
}

int aw_s3_parse_arn(const char *arn, char bucket[AW_S3_BUCKET_MAX + 1], char key[AW_S3_KEY_MAX + 1])
{
    if (!arn || strncmp(arn, "arn:", 4) != 0)
        return -EINVAL;
    const char *p = strchr(arn + 4, ':'); /* after the partition */
    if (!p || p == arn + 4 || strncmp(p, ":s3:::", 6) != 0)
        return -EINVAL;
    p += 6;
    size_t bn = strcspn(p, "/");
    size_t kn = p[bn] ? strlen(p + bn + 1) : 0;
    if (!bucket_ok(p, bn) || p[bn] != '/' || kn == 0 || kn > AW_S3_KEY_MAX)
        return -EINVAL;
    memcpy(bucket, p, bn);
    bucket[bn] = '\0';
    memcpy(key, p + bn + 1, kn + 1);
    return 0;
}

int aw_s3_object_path(const char *bucket, const char *key, es_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    es_buf_reset(out);
    int r = es_buf_printf(out, "/%s/", bucket);
    for (const unsigned char *p = (const unsigned char *)key; r == 0 && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~/", *p))
            r = es_buf_append_char(out, (char)*p);
        else
            r = es_buf_printf(out, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
    if (r == 0 && out->len > AW_CALL_PATH_MAX)
        r = -EMSGSIZE;
    return r;
}

typedef struct get_call {
    aw_s3_get_cb cb;
    void *arg;
} get_call;

static void on_get(void *arg, const aw_error *err, aw_http_response *resp)
{
    get_call *g = arg;
    if (err) {
        g->cb(g->arg, err, NULL);
    } else if (resp->body.len > AW_S3_OBJECT_MAX) {
        aw_error e = {.kind = AW_ERR_RESPONSE, .status = resp->status};
        snprintf(e.message, sizeof e.message, "the object is larger than %u bytes",
                 (unsigned)AW_S3_OBJECT_MAX);
        g->cb(g->arg, &e, NULL);
    } else {
        g->cb(g->arg, NULL, &resp->body);
    }
    es_free(g);
}

int aw_s3_get_object(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                     const char *bucket, const char *key, aw_s3_get_cb cb, void *arg)
{
    if (!bucket_ok(bucket, strlen(bucket)) || !*key || strlen(key) > AW_S3_KEY_MAX || !cb)
        return -EINVAL;
    es_buf path;
    es_buf_init(&path, AW_CALL_PATH_MAX + 1);
    int r = aw_s3_object_path(bucket, key, &path);
    get_call *g = r == 0 ? es_calloc(1, sizeof *g) : NULL;
    if (r == 0 && !g)
        r = -ENOMEM;
    if (r == 0) {
        *g = (get_call){cb, arg};
        aw_call call = {.service = AW_SVC_S3,
                        .region = region,
                        .operation = "GetObject",
                        .method = "GET",
                        .path = es_buf_cstr(&path)};
        if ((r = aw_call_start(c, creds, &call, on_get, g)) < 0)
            es_free(g);
    }
    es_buf_free(&path);
    return r;
}

int aw_s3_parse_location(const char *doc, size_t len, char *out, size_t outlen)
{
    static const char *const paths[] = {"LocationConstraint"};
    char *v[1];
    if (aw_xml_pick(doc, len, paths, 1, v) != 0)
        return -EINVAL;
    /* S3's two old spellings: no constraint is us-east-1, "EU" eu-west-1 */
    const char *r = !v[0] || !*v[0] ? "us-east-1" : strcmp(v[0], "EU") == 0 ? "eu-west-1" : v[0];
    int rc = aw_region_valid(r) && strlen(r) < outlen ? 0 : -EINVAL;
    if (rc == 0)
        snprintf(out, outlen, "%s", r);
    aw_xml_pick_free(v, 1);
    return rc;
}

typedef struct location_call {
    aw_s3_location_cb cb;
    void *arg;
} location_call;

static void on_location(void *arg, const aw_error *err, aw_http_response *resp)
{
    location_call *l = arg;
    char region[AW_REGION_MAX + 1];
    if (err) {
        l->cb(l->arg, err, NULL);
    } else if (aw_s3_parse_location(es_buf_cstr(&resp->body), resp->body.len, region,
                                    sizeof region) < 0) {
        aw_error e = {.kind = AW_ERR_RESPONSE, .status = resp->status};
        snprintf(e.message, sizeof e.message, "GetBucketLocation answered no region");
        l->cb(l->arg, &e, NULL);
    } else {
        l->cb(l->arg, NULL, region);
    }
    es_free(l);
}

int aw_s3_get_bucket_location(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                              const char *bucket, aw_s3_location_cb cb, void *arg)
{
    if (!bucket_ok(bucket, strlen(bucket)) || !cb)
        return -EINVAL;
    char path[AW_S3_BUCKET_MAX + 16];
    snprintf(path, sizeof path, "/%s?location", bucket);
    location_call *l = es_calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    *l = (location_call){cb, arg};
    aw_call call = {.service = AW_SVC_S3,
                    .region = region,
                    .operation = "GetBucketLocation",
                    .method = "GET",
                    .path = path};
    int r = aw_call_start(c, creds, &call, on_location, l);
    if (r < 0)
        es_free(l);
    return r;
}
