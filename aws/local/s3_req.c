/* s3_req.c - S3 REST requests read into operations (s3_req.h). */
#include "aws/local/s3_req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/internal.h"

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (max bytes and a NUL): -EINVAL for a
 * bad escape or a NUL, -EMSGSIZE when too long. */
static int pct_decode(const char *s, size_t n, char *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ch == '\0')
            return -EINVAL;
        if (k >= max)
            return -EMSGSIZE;
        out[k++] = ch;
    }
    out[k] = '\0';
    return 0;
}

bool al_s3_bucket_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < AL_S3_BUCKET_MIN || n > AL_S3_BUCKET_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '.' && ch != '-')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
        if (ch == '.' && i > 0 && (name[i - 1] == '.' || name[i - 1] == '-'))
            return false;
        if (ch == '-' && i > 0 && name[i - 1] == '.')
            return false;
    }
    return true;
}

typedef struct qparam {
    const char *name;
    size_t name_len;
    const char *value; /* NULL: no '=' */
    size_t value_len;
} qparam;

static int split_query(const char *q, qparam *ps, size_t *np, al_error *e)
{
    *np = 0;
    if (!q || !*q)
        return 0;
    if (strlen(q) > AL_S3_QUERY_MAX)
        return al_fail(e, 400, "InvalidURI", "The query string is longer than %u bytes.",
                       (unsigned)AL_S3_QUERY_MAX);
    while (*q) {
        size_t n = strcspn(q, "&");
        if (n) {
            if (*np >= AL_S3_QUERY_PARAMS_MAX)
                return al_fail(e, 400, "InvalidURI", "More than %d query parameters.",
                               AL_S3_QUERY_PARAMS_MAX);
            const char *eq = memchr(q, '=', n);
            ps[*np] = (qparam){q, eq ? (size_t)(eq - q) : n, eq ? eq + 1 : NULL,
                               eq ? n - (size_t)(eq - q) - 1 : 0};
            (*np)++;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

static bool is(const qparam *p, const char *name)
{
    return p->name_len == strlen(name) && memcmp(p->name, name, p->name_len) == 0;
}

/* One ListObjectsV2 parameter into its field. */
static int list_param(const qparam *p, al_s3_req *r, al_error *e)
{
    char v[AL_S3_TOKEN_MAX + 1];
    int d = pct_decode(p->value ? p->value : "", p->value_len, v, sizeof v - 1);
    if (d < 0)
        return al_fail(e, 400, "InvalidArgument", "A query parameter is malformed or too long.");
    struct {
        const char *name;
        char *field;
        size_t size;
    } strs[] = {{"prefix", r->prefix, sizeof r->prefix},
                {"delimiter", r->delimiter, sizeof r->delimiter},
                {"start-after", r->start_after, sizeof r->start_after},
                {"continuation-token", r->token, sizeof r->token}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (!is(p, strs[i].name))
            continue;
        if (strlen(v) >= strs[i].size)
            return al_fail(e, 400, "InvalidArgument", "The %s is too long.", strs[i].name);
        snprintf(strs[i].field, strs[i].size, "%s", v);
        return 0;
    }
    if (is(p, "max-keys")) {
        char *end;
        long m = strtol(v, &end, 10);
        if (!*v || *end || m < 0)
            return al_fail(e, 400, "InvalidArgument",
                           "Provided max-keys not an integer or "
                           "within integer range");
        r->max_keys = m > AL_S3_LIST_MAX ? AL_S3_LIST_MAX : (int)m;
        return 0;
    }
    if (is(p, "encoding-type")) {
        if (strcmp(v, "url") != 0)
            return al_fail(e, 400, "InvalidArgument",
                           "Invalid Encoding Method specified in "
                           "Request");
        r->url_encoding = true;
        return 0;
    }
    return 1; /* not a list parameter */
}

/* Parameters that change nothing here (botocore's x-id, fetch-owner). */
static bool ignorable(const qparam *p)
{
    return is(p, "x-id") || is(p, "fetch-owner");
}

static int bucket_op(const char *method, const qparam *ps, size_t np, al_s3_req *r, al_error *e)
{
    bool policy = false, location = false, list2 = false;
    for (size_t i = 0; i < np; i++) {
        if (is(&ps[i], "policy"))
            policy = true;
        else if (is(&ps[i], "location"))
            location = true;
        else if (is(&ps[i], "list-type"))
            list2 = ps[i].value && ps[i].value_len == 1 && ps[i].value[0] == '2';
        else if (!ignorable(&ps[i])) {
            int lr = list_param(&ps[i], r, e);
            if (lr < 0)
                return lr;
            if (lr > 0)
                return al_fail(e, 501, "NotImplemented",
                               "The embedded S3 does not serve the sub-resource or parameter "
                               "'%.*s'.",
                               (int)(ps[i].name_len > 64 ? 64 : ps[i].name_len), ps[i].name);
        }
    }
    bool get = strcmp(method, "GET") == 0, put = strcmp(method, "PUT") == 0,
         del = strcmp(method, "DELETE") == 0, head = strcmp(method, "HEAD") == 0;
    if (policy && (get || put || del))
        r->op = get   ? AL_S3_GET_BUCKET_POLICY
                : put ? AL_S3_PUT_BUCKET_POLICY
                      : AL_S3_DELETE_BUCKET_POLICY;
    else if (location && get)
        r->op = AL_S3_GET_BUCKET_LOCATION;
    else if (get && list2)
        r->op = AL_S3_LIST_OBJECTS_V2;
    else if (get)
        return al_fail(e, 501, "NotImplemented",
                       "The embedded S3 lists objects with ListObjectsV2 (list-type=2) only.");
    else if (put && !policy && !location)
        r->op = AL_S3_CREATE_BUCKET;
    else if (del && !location)
        r->op = AL_S3_DELETE_BUCKET;
    else if (head)
        r->op = AL_S3_HEAD_BUCKET;
    else
        return al_fail(e, 405, "MethodNotAllowed",
                       "The specified method is not allowed against this resource.");
    return 0;
}

static int object_op(const char *method, const qparam *ps, size_t np, al_s3_req *r, al_error *e)
{
    for (size_t i = 0; i < np; i++)
        if (!ignorable(&ps[i]))
            return al_fail(e, 501, "NotImplemented",
                           "The embedded S3 does not serve the sub-resource or parameter "
                           "'%.*s'.",
                           (int)(ps[i].name_len > 64 ? 64 : ps[i].name_len), ps[i].name);
    if (strcmp(method, "PUT") == 0)
        r->op = AL_S3_PUT_OBJECT;
    else if (strcmp(method, "GET") == 0)
        r->op = AL_S3_GET_OBJECT;
    else if (strcmp(method, "HEAD") == 0)
        r->op = AL_S3_HEAD_OBJECT;
    else if (strcmp(method, "DELETE") == 0)
        r->op = AL_S3_DELETE_OBJECT;
    else
        return al_fail(e, 405, "MethodNotAllowed",
                       "The specified method is not allowed against this resource.");
    return 0;
}

/* "/BUCKET[/KEY]" into r's bucket and key. */
static int split_path(const char *path, al_s3_req *r, al_error *e)
{
    if (path[0] != '/' || strlen(path) > AL_S3_PATH_MAX)
        return al_fail(e, 400, "InvalidURI", "Couldn't parse the specified URI.");
    const char *b = path + 1;
    size_t bn = strcspn(b, "/");
    if (bn > AL_S3_BUCKET_MAX || pct_decode(b, bn, r->bucket, AL_S3_BUCKET_MAX) < 0 ||
        (bn && !al_s3_bucket_name_ok(r->bucket)))
        return al_fail(e, 400, "InvalidBucketName", "The specified bucket is not valid.");
    if (b[bn] != '/' || !b[bn + 1])
        return 0; /* "/", "/bucket", "/bucket/" */
    int d = pct_decode(b + bn + 1, strlen(b + bn + 1), r->key, AL_S3_KEY_MAX);
    if (d == -EMSGSIZE)
        return al_fail(e, 400, "KeyTooLongError", "Your key is too long");
    if (d < 0)
        return al_fail(e, 400, "InvalidURI", "Couldn't parse the specified URI.");
    return 0;
}

int al_s3_parse(const char *method, const char *path, const char *query, al_s3_req *out,
                al_error *e)
{
    memset(out, 0, sizeof *out);
    out->max_keys = AL_S3_LIST_MAX;
    int r = split_path(path, out, e);
    if (r < 0)
        return r;
    qparam ps[AL_S3_QUERY_PARAMS_MAX];
    size_t np;
    if ((r = split_query(query, ps, &np, e)) < 0)
        return r;
    if (!out->bucket[0]) {
        if (strcmp(method, "GET") != 0)
            return al_fail(e, 405, "MethodNotAllowed",
                           "The specified method is not allowed against this resource.");
        out->op = AL_S3_LIST_BUCKETS;
        return 0;
    }
    return out->key[0] ? object_op(method, ps, np, out, e) : bucket_op(method, ps, np, out, e);
}
