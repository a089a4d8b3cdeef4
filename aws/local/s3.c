/* s3.c - the embedded S3 subset (s3.h). */
#include "aws/local/s3.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "aws/local/internal.h"
#include "aws/local/s3_chunked.h"
#include "aws/policy.h"
#include "aws/xml.h"
#include "common/alloc.h"
#include "common/secure.h"

#define XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define LABEL_MAX (16 + AL_S3_BUCKET_MAX + AL_S3_KEY_MAX)
#define ARN_MAX (16 + AL_S3_BUCKET_MAX + AL_S3_KEY_MAX)
#define CONTENT_TYPE_MAX 128
#define CREATE_BODY_MAX 4096 /* a CreateBucketConfiguration */

/* ---- XML ---- */

static void xml_text(es_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            es_buf_append_str(b, "&amp;");
            break;
        case '<':
            es_buf_append_str(b, "&lt;");
            break;
        case '>':
            es_buf_append_str(b, "&gt;");
            break;
        case '"':
            es_buf_append_str(b, "&quot;");
            break;
        case '\'':
            es_buf_append_str(b, "&apos;");
            break;
        default:
            es_buf_append_char(b, *s);
        }
    }
}

/* s as encoding-type=url asks: percent-encoded but for unreserved and '/' */
static void xml_url(es_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~/", *p))
            es_buf_append_char(b, (char)*p);
        else
            es_buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
}

static void xml_elem(es_buf *b, const char *name, const char *text, bool url)
{
    es_buf_printf(b, "<%s>", name);
    if (url)
        xml_url(b, text);
    else
        xml_text(b, text);
    es_buf_printf(b, "</%s>", name);
}

static void iso_time(double t, char out[32])
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static void http_time(double t, char out[40])
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* ---- errors ---- */

/* S3's code and status for a SigV4 refusal worded for the JSON services. */
static void s3_auth_error(al_error *e)
{
    static const struct {
        const char *json, *s3;
        int status;
    } map[] = {
        {"InvalidSignatureException", "SignatureDoesNotMatch", 403},
        {"UnrecognizedClientException", "InvalidAccessKeyId", 403},
        {"MissingAuthenticationTokenException", "AccessDenied", 403},
        {"IncompleteSignatureException", "AuthorizationHeaderMalformed", 400},
        {"ExpiredTokenException", "ExpiredToken", 400},
        {"AccessDeniedException", "AccessDenied", 403},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(e->code, map[i].json) == 0) {
            snprintf(e->code, sizeof e->code, "%s", map[i].s3);
            e->status = map[i].status;
            return;
        }
    }
}

static void answer_error(aw_rest_answer *a, const al_error *e, const char *resource)
{
    a->status = e->status ? e->status : 500;
    a->content_type = "application/xml";
    es_buf_reset_secret(&a->body);
    es_buf_append_str(&a->body, XML_HEAD "<Error>");
    xml_elem(&a->body, "Code", e->code, false);
    xml_elem(&a->body, "Message", e->message, false);
    if (resource)
        xml_elem(&a->body, "Resource", resource, false);
    es_buf_append_str(&a->body, "</Error>");
}

static int no_bucket(al_error *e)
{
    return al_fail(e, 404, "NoSuchBucket", "The specified bucket does not exist");
}

/* ---- the store ---- */

/* 1 when the bucket exists (its region into region, may be NULL), 0 when
 * not, < 0 on a store failure. */
static int bucket_get(al_ctx *c, const char *bucket, char region[AW_REGION_MAX + 1])
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT region FROM s3_bucket WHERE name=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW && region)
        snprintf(region, AW_REGION_MAX + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    al_db_release(c->db, st);
    return s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : -EIO;
}

/* The bucket must exist: 0 (its region in region, AW_REGION_MAX + 1 bytes,
 * when not NULL), or < 0 with e filled. */
static int need_bucket_in(al_ctx *c, const char *bucket, char *region, al_error *e)
{
    int r = bucket_get(c, bucket, region);
    if (r < 0)
        return al_fail_internal(e, "InternalError");
    return r ? 0 : no_bucket(e);
}

static int need_bucket(al_ctx *c, const char *bucket, al_error *e)
{
    return need_bucket_in(c, bucket, NULL, e);
}

static int exec_bind2(al_ctx *c, const char *sql, const char *a1, const char *a2, al_error *e)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return al_fail_internal(e, "InternalError");
    sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC);
    if (a2)
        sqlite3_bind_text(st, 2, a2, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 0 : al_fail_internal(e, "InternalError");
}

int al_s3_bucket_policy_of(al_ctx *c, const char *bucket, char **doc)
{
    *doc = NULL;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT policy FROM s3_bucket WHERE name=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    int r = s == SQLITE_ROW || s == SQLITE_DONE ? 0 : -EIO;
    if (s == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL &&
        !(*doc = es_strdup((const char *)sqlite3_column_text(st, 0))))
        r = -ENOMEM;
    al_db_release(c->db, st);
    return r;
}

/* ---- a call ---- */

typedef struct call {
    al_ctx *c;
    const al_request *rq;
    const al_s3_auth *auth;
    al_s3_req q;
    aw_rest_answer *a;
    al_error e;
} call;

static int authorize_bucket(call *k, const char *action)
{
    char arn[ARN_MAX];
    snprintf(arn, sizeof arn, "arn:%s:s3:::%s", al_partition(k->c), k->q.bucket);
    return al_authorize(k->c, k->auth->principal, action, arn, &k->e);
}

static int authorize_object(call *k, const char *action)
{
    char arn[ARN_MAX];
    snprintf(arn, sizeof arn, "arn:%s:s3:::%s/%s", al_partition(k->c), k->q.bucket, k->q.key);
    return al_authorize(k->c, k->auth->principal, action, arn, &k->e);
}

static void ok_empty(call *k, int status)
{
    k->a->status = status;
}

static void xml_answer_begin(call *k, const char *root)
{
    k->a->status = 200;
    k->a->content_type = "application/xml";
    es_buf_printf(&k->a->body, XML_HEAD "<%s xmlns=\"" XMLNS "\">", root);
}

static int list_buckets(call *k)
{
    if (al_authorize(k->c, k->auth->principal, "s3:ListAllMyBuckets", "*", &k->e) < 0)
        return -EACCES;
    sqlite3_stmt *st =
        al_db_prepare(k->c->db, "SELECT name, created FROM s3_bucket ORDER BY name LIMIT ?");
    if (!st)
        return al_fail_internal(&k->e, "InternalError");
    sqlite3_bind_int(st, 1, AL_S3_BUCKETS_MAX);
    xml_answer_begin(k, "ListAllMyBucketsResult");
    es_buf *b = &k->a->body;
    es_buf_append_str(b, "<Owner>");
    xml_elem(b, "ID", k->c->account, false);
    es_buf_append_str(b, "</Owner><Buckets>");
    while (sqlite3_step(st) == SQLITE_ROW) {
        char t[32];
        iso_time(sqlite3_column_double(st, 1), t);
        es_buf_append_str(b, "<Bucket>");
        xml_elem(b, "Name", (const char *)sqlite3_column_text(st, 0), false);
        xml_elem(b, "CreationDate", t, false);
        es_buf_append_str(b, "</Bucket>");
    }
    al_db_release(k->c->db, st);
    es_buf_append_str(b, "</Buckets></ListAllMyBucketsResult>");
    return 0;
}

/* CreateBucket's optional body: its LocationConstraint must be the scope's
 * region (none: us-east-1), as S3 asks. */
static int check_location(call *k)
{
    const char *want = k->auth->region;
    char *loc = NULL;
    if (k->rq->body_len) {
        static const char *const path[] = {"CreateBucketConfiguration/LocationConstraint"};
        if (k->rq->body_len > CREATE_BODY_MAX ||
            aw_xml_pick(k->rq->body, k->rq->body_len, path, 1, &loc) != AW_XML_OK)
            return al_fail(&k->e, 400, "MalformedXML",
                           "The XML you provided was not well-formed or did not validate "
                           "against our published schema");
    }
    bool ok = loc && *loc ? strcmp(loc, want) == 0 : strcmp(want, "us-east-1") == 0;
    int r = ok ? 0
               : al_fail(&k->e, 400, "IllegalLocationConstraintException",
                         "The %s location constraint is incompatible for the region specific "
                         "endpoint this request was sent to.",
                         loc && *loc ? loc : "unspecified");
    aw_xml_pick_free(&loc, 1);
    return r;
}

static int count_buckets(al_ctx *c)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT count(*) FROM s3_bucket");
    int n = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    al_db_release(c->db, st);
    return n;
}

static int create_bucket(call *k)
{
    if (authorize_bucket(k, "s3:CreateBucket") < 0)
        return -EACCES;
    int r = check_location(k);
    if (r < 0)
        return r;
    if ((r = bucket_get(k->c, k->q.bucket, NULL)) < 0)
        return al_fail_internal(&k->e, "InternalError");
    if (r)
        return al_fail(&k->e, 409, "BucketAlreadyOwnedByYou",
                       "Your previous request to create the named bucket succeeded and you "
                       "already own it.");
    if (count_buckets(k->c) >= AL_S3_BUCKETS_MAX)
        return al_fail(&k->e, 400, "TooManyBuckets",
                       "You have attempted to create more buckets than allowed");
    sqlite3_stmt *st = al_db_prepare(
        k->c->db, "INSERT INTO s3_bucket(name, region, created, policy) VALUES (?,?,?,NULL)");
    if (!st)
        return al_fail_internal(&k->e, "InternalError");
    sqlite3_bind_text(st, 1, k->q.bucket, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->auth->region, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, al_now(k->c));
    int s = sqlite3_step(st);
    al_db_release(k->c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(&k->e, "InternalError");
    char loc[AL_S3_BUCKET_MAX + 2];
    snprintf(loc, sizeof loc, "/%s", k->q.bucket);
    aw_rest_answer_header(k->a, "Location", loc);
    ok_empty(k, 200);
    return 0;
}

static int bucket_is_empty(al_ctx *c, const char *bucket)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT 1 FROM s3_object WHERE bucket=? LIMIT 1");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, bucket, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_DONE ? 1 : s == SQLITE_ROW ? 0 : -EIO;
}

static int delete_bucket(call *k)
{
    if (authorize_bucket(k, "s3:DeleteBucket") < 0)
        return -EACCES;
    int r = need_bucket(k->c, k->q.bucket, &k->e);
    if (r < 0)
        return r;
    if ((r = bucket_is_empty(k->c, k->q.bucket)) < 0)
        return al_fail_internal(&k->e, "InternalError");
    if (!r)
        return al_fail(&k->e, 409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    if ((r = exec_bind2(k->c, "DELETE FROM s3_bucket WHERE name=?", k->q.bucket, NULL, &k->e)) < 0)
        return r;
    ok_empty(k, 204);
    return 0;
}

static int head_bucket(call *k)
{
    if (authorize_bucket(k, "s3:ListBucket") < 0)
        return -EACCES;
    char region[AW_REGION_MAX + 1];
    int r = need_bucket_in(k->c, k->q.bucket, region, &k->e);
    if (r < 0)
        return r;
    aw_rest_answer_header(k->a, "x-amz-bucket-region", region);
    ok_empty(k, 200);
    return 0;
}

static int get_bucket_location(call *k)
{
    if (authorize_bucket(k, "s3:GetBucketLocation") < 0)
        return -EACCES;
    char region[AW_REGION_MAX + 1];
    int r = need_bucket_in(k->c, k->q.bucket, region, &k->e);
    if (r < 0)
        return r;
    k->a->status = 200;
    k->a->content_type = "application/xml";
    /* us-east-1 is S3's empty constraint */
    es_buf_printf(&k->a->body,
                  XML_HEAD "<LocationConstraint xmlns=\"" XMLNS "\">%s</LocationConstraint>",
                  strcmp(region, "us-east-1") == 0 ? "" : region);
    return 0;
}

static int put_bucket_policy(call *k)
{
    if (authorize_bucket(k, "s3:PutBucketPolicy") < 0)
        return -EACCES;
    int r = need_bucket(k->c, k->q.bucket, &k->e);
    if (r < 0)
        return r;
    if (k->rq->body_len > AL_S3_POLICY_MAX)
        return al_fail(&k->e, 400, "PolicyTooLarge",
                       "Policy exceeds the maximum allowed document size.");
    char why[256] = "";
    aw_policy *p = NULL;
    int pr = aw_policy_parse(k->rq->body, k->rq->body_len, AW_POLICY_RESOURCE, "bucket policy",
                             NULL, &p, why, sizeof why);
    aw_policy_free(p);
    if (pr != AW_POLICY_OK)
        return al_fail(&k->e, 400, "MalformedPolicy", "%s",
                       why[0] ? why : "Policies must be valid JSON.");
    char *doc = es_malloc(k->rq->body_len + 1);
    if (!doc)
        return al_fail_internal(&k->e, "InternalError");
    memcpy(doc, k->rq->body, k->rq->body_len);
    doc[k->rq->body_len] = '\0';
    r = exec_bind2(k->c, "UPDATE s3_bucket SET policy=?2 WHERE name=?1", k->q.bucket, doc, &k->e);
    es_free(doc);
    if (r == 0)
        ok_empty(k, 204);
    return r;
}

static int get_bucket_policy(call *k)
{
    if (authorize_bucket(k, "s3:GetBucketPolicy") < 0)
        return -EACCES;
    int r = need_bucket(k->c, k->q.bucket, &k->e);
    if (r < 0)
        return r;
    char *doc = NULL;
    if (al_s3_bucket_policy_of(k->c, k->q.bucket, &doc) < 0)
        return al_fail_internal(&k->e, "InternalError");
    if (!doc)
        return al_fail(&k->e, 404, "NoSuchBucketPolicy", "The bucket policy does not exist");
    k->a->status = 200;
    k->a->content_type = "application/json";
    es_buf_append_str(&k->a->body, doc);
    es_free(doc);
    return 0;
}

static int delete_bucket_policy(call *k)
{
    if (authorize_bucket(k, "s3:DeleteBucketPolicy") < 0)
        return -EACCES;
    int r = need_bucket(k->c, k->q.bucket, &k->e);
    if (r == 0)
        r = exec_bind2(k->c, "UPDATE s3_bucket SET policy=NULL WHERE name=?", k->q.bucket, NULL,
                       &k->e);
    if (r == 0)
        ok_empty(k, 204);
    return r;
}

/* ---- objects ---- */

static void object_label(const call *k, char label[LABEL_MAX])
{
    snprintf(label, LABEL_MAX, "s3 object %s/%s", k->q.bucket, k->q.key);
}

static int md5_hex(const char *p, size_t n, char out[33], uint8_t raw[16])
{
    unsigned len = 0;
    if (EVP_Digest(p, n, raw, &len, EVP_md5(), NULL) != 1 || len != 16)
        return -EIO;
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

/* The aws-chunked body's content into out, its chunks' signatures checked
 * when the request was signed so. */
static int dechunk(call *k, es_buf *out)
{
    const al_s3_auth *au = k->auth;
    al_s3_chunk_sig sig = {au->key, au->seed, au->amz_date, au->scope};
    const char *why = "";
    int r = al_s3_dechunk(k->rq->body, k->rq->body_len,
                          au->payload == AL_S3_PAYLOAD_STREAMING ? &sig : NULL, AL_S3_OBJECT_MAX,
                          out, &why);
    if (r == -EACCES)
        return al_fail(&k->e, 403, "SignatureDoesNotMatch",
                       "The request signature we calculated does not match the signature you "
                       "provided (%s).",
                       why);
    if (r == -EMSGSIZE)
        return al_fail(&k->e, 400, "EntityTooLarge",
                       "Your proposed upload exceeds the maximum allowed size (%s).", why);
    if (r == -ENOMEM || r == -EIO)
        return al_fail_internal(&k->e, "InternalError");
    if (r < 0)
        return al_fail(&k->e, 400, "IncompleteBody", "The aws-chunked body is malformed: %s.", why);
    const char *decoded = al_request_header(k->rq, "x-amz-decoded-content-length");
    char n[24];
    snprintf(n, sizeof n, "%zu", out->len);
    if (decoded && strcmp(decoded, n) != 0)
        return al_fail(&k->e, 400, "IncompleteBody",
                       "The decoded body's length is not x-amz-decoded-content-length.");
    return 0;
}

/* The object's content as the payload mode sends it, into out (secret). */
static int object_content(call *k, es_buf *out)
{
    if (k->auth->payload == AL_S3_PAYLOAD_STREAMING ||
        k->auth->payload == AL_S3_PAYLOAD_STREAMING_TRAILER)
        return dechunk(k, out);
    if (k->rq->body_len > AL_S3_OBJECT_MAX)
        return al_fail(&k->e, 400, "EntityTooLarge",
                       "Your proposed upload exceeds the maximum allowed size (%u bytes).",
                       (unsigned)AL_S3_OBJECT_MAX);
    return es_buf_append(out, k->rq->body, k->rq->body_len) < 0
               ? al_fail_internal(&k->e, "InternalError")
               : 0;
}

/* Content-MD5 (base64 of the digest), when sent, must be the content's. */
static int check_md5(call *k, const uint8_t raw[16])
{
    const char *want = al_request_header(k->rq, "content-md5");
    if (!want)
        return 0;
    es_buf b;
    es_buf_init(&b, 64);
    int r = al_b64_encode(&b, raw, 16);
    bool ok = r == 0 && strcmp(es_buf_cstr(&b), want) == 0;
    es_buf_free(&b);
    return ok ? 0
              : al_fail(&k->e, 400, "BadDigest",
                        "The Content-MD5 you specified did not match what we received.");
}

static int store_object(call *k, const es_buf *content, const char *etag)
{
    const char *ctype = al_request_header(k->rq, "content-type");
    if (!ctype || !*ctype)
        ctype = "binary/octet-stream";
    if (strlen(ctype) > CONTENT_TYPE_MAX)
        return al_fail(&k->e, 400, "InvalidArgument", "The Content-Type is too long.");
    char label[LABEL_MAX];
    object_label(k, label);
    uint8_t *sealed = NULL;
    size_t n = 0;
    if (al_kms_wrap_large(k->c, label, (const uint8_t *)(content->data ? content->data : ""),
                          content->len, &sealed, &n) < 0)
        return al_fail_internal(&k->e, "InternalError");
    sqlite3_stmt *st =
        al_db_prepare(k->c->db, "INSERT OR REPLACE INTO s3_object(bucket, key, sealed, size, etag, "
                                "content_type, modified) VALUES (?,?,?,?,?,?,?)");
    int s = SQLITE_ERROR;
    if (st) {
        sqlite3_bind_text(st, 1, k->q.bucket, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, k->q.key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, sealed, (int)n, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)content->len);
        sqlite3_bind_text(st, 5, etag, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, ctype, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 7, al_now(k->c));
        s = sqlite3_step(st);
        al_db_release(k->c->db, st);
    }
    es_free(sealed);
    return s == SQLITE_DONE ? 0 : al_fail_internal(&k->e, "InternalError");
}

static int put_object(call *k)
{
    if (authorize_object(k, "s3:PutObject") < 0)
        return -EACCES;
    int r = need_bucket(k->c, k->q.bucket, &k->e);
    if (r < 0)
        return r;
    es_buf content;
    es_buf_init(&content, AL_S3_OBJECT_MAX);
    char md5[33], etag[40];
    uint8_t raw[16];
    if ((r = object_content(k, &content)) == 0 &&
        md5_hex(content.data ? content.data : "", content.len, md5, raw) < 0)
        r = al_fail_internal(&k->e, "InternalError");
    if (r == 0)
        r = check_md5(k, raw);
    snprintf(etag, sizeof etag, "\"%s\"", md5);
    if (r == 0)
        r = store_object(k, &content, etag);
    es_buf_free_secret(&content);
    if (r < 0)
        return r;
    aw_rest_answer_header(k->a, "ETag", etag);
    ok_empty(k, 200);
    return 0;
}

/* GetObject and HeadObject: the content is unsealed for both (a HEAD's
 * answer announces its length; the listener sends no body). */
static int get_object(call *k)
{
    if (authorize_object(k, "s3:GetObject") < 0)
        return -EACCES;
    int r = need_bucket(k->c, k->q.bucket, &k->e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(k->c->db, "SELECT sealed, etag, content_type, modified FROM "
                                               "s3_object WHERE bucket=? AND key=?");
    if (!st)
        return al_fail_internal(&k->e, "InternalError");
    sqlite3_bind_text(st, 1, k->q.bucket, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->q.key, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s != SQLITE_ROW) {
        al_db_release(k->c->db, st);
        return s == SQLITE_DONE
                   ? al_fail(&k->e, 404, "NoSuchKey", "The specified key does not exist.")
                   : al_fail_internal(&k->e, "InternalError");
    }
    char label[LABEL_MAX], lm[40];
    object_label(k, label);
    uint8_t *pt = NULL;
    size_t n = 0;
    r = al_kms_unwrap(k->c, label, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                      &pt, &n);
    aw_rest_answer_header(k->a, "ETag", (const char *)sqlite3_column_text(st, 1));
    aw_rest_answer_header(k->a, "Content-Type", (const char *)sqlite3_column_text(st, 2));
    http_time(sqlite3_column_double(st, 3), lm);
    aw_rest_answer_header(k->a, "Last-Modified", lm);
    al_db_release(k->c->db, st);
    if (r < 0)
        return al_fail_internal(&k->e, "InternalError");
    r = es_buf_append(&k->a->body, pt, n);
    es_wipe(pt, n);
    es_free(pt);
    if (r < 0)
        return al_fail_internal(&k->e, "InternalError");
    aw_rest_answer_header(k->a, "Accept-Ranges", "bytes");
    k->a->status = 200;
    return 0;
}

static int delete_object(call *k)
{
    if (authorize_object(k, "s3:DeleteObject") < 0)
        return -EACCES;
    int r = need_bucket(k->c, k->q.bucket, &k->e);
    if (r == 0)
        r = exec_bind2(k->c, "DELETE FROM s3_object WHERE bucket=? AND key=?", k->q.bucket,
                       k->q.key, &k->e);
    if (r == 0)
        ok_empty(k, 204); /* S3 answers so whether or not the key existed */
    return r;
}

/* ---- ListObjectsV2 ---- */

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The continuation token (the last key looked at, in hex) into out. */
static bool token_decode(const char *tok, char out[AL_S3_KEY_MAX + 1])
{
    size_t n = strlen(tok);
    if (n % 2 || n / 2 > AL_S3_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(tok[i]), lo = hexval(tok[i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return false;
        out[i / 2] = (char)(hi * 16 + lo);
    }
    out[n / 2] = '\0';
    return true;
}

typedef struct listing {
    es_buf items; /* <Contents> and <CommonPrefixes> */
    int count;
    bool truncated;
    char last[AL_S3_KEY_MAX + 1];    /* the last key looked at */
    char last_cp[AL_S3_KEY_MAX + 1]; /* the last common prefix emitted */
} listing;

/* One row: a key, or its common prefix; false once the listing is full. */
static bool list_row(call *k, listing *L, sqlite3_stmt *st)
{
    const char *key = (const char *)sqlite3_column_text(st, 0);
    size_t pl = strlen(k->q.prefix);
    const char *d = k->q.delimiter[0] ? strstr(key + pl, k->q.delimiter) : NULL;
    size_t cpl = d ? (size_t)(d - key) + strlen(k->q.delimiter) : 0;
    if (d && strlen(L->last_cp) == cpl && strncmp(L->last_cp, key, cpl) == 0) {
        snprintf(L->last, sizeof L->last, "%s", key); /* within the prefix emitted */
        return true;
    }
    if (L->count >= k->q.max_keys) {
        L->truncated = true;
        return false;
    }
    bool url = k->q.url_encoding;
    if (d) {
        snprintf(L->last_cp, sizeof L->last_cp, "%.*s", (int)cpl, key);
        es_buf_append_str(&L->items, "<CommonPrefixes>");
        xml_elem(&L->items, "Prefix", L->last_cp, url);
        es_buf_append_str(&L->items, "</CommonPrefixes>");
    } else {
        char t[32], size[24];
        iso_time(sqlite3_column_double(st, 3), t);
        snprintf(size, sizeof size, "%lld", (long long)sqlite3_column_int64(st, 1));
        es_buf_append_str(&L->items, "<Contents>");
        xml_elem(&L->items, "Key", key, url);
        xml_elem(&L->items, "LastModified", t, false);
        xml_elem(&L->items, "ETag", (const char *)sqlite3_column_text(st, 2), false);
        xml_elem(&L->items, "Size", size, false);
        es_buf_append_str(&L->items, "<StorageClass>STANDARD</StorageClass></Contents>");
    }
    L->count++;
    snprintf(L->last, sizeof L->last, "%s", key);
    return true;
}

static int list_scan(call *k, listing *L, const char *after)
{
    sqlite3_stmt *st = al_db_prepare(k->c->db, "SELECT key, size, etag, modified FROM s3_object "
                                               "WHERE bucket=? AND key>? ORDER BY key");
    if (!st)
        return al_fail_internal(&k->e, "InternalError");
    sqlite3_bind_text(st, 1, k->q.bucket, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, after, -1, SQLITE_STATIC);
    size_t pl = strlen(k->q.prefix);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        int cmp = strncmp(key, k->q.prefix, pl);
        if (cmp > 0)
            break; /* sorted: past every key of the prefix */
        if (cmp < 0)
            continue;
        if (!list_row(k, L, st))
            break;
    }
    al_db_release(k->c->db, st);
    return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : al_fail_internal(&k->e, "InternalError");
}

static void list_answer(call *k, const listing *L)
{
    bool url = k->q.url_encoding;
    es_buf *b = &k->a->body;
    char n[24];
    xml_answer_begin(k, "ListBucketResult");
    xml_elem(b, "Name", k->q.bucket, false);
    xml_elem(b, "Prefix", k->q.prefix, url);
    if (k->q.delimiter[0])
        xml_elem(b, "Delimiter", k->q.delimiter, url);
    snprintf(n, sizeof n, "%d", k->q.max_keys);
    xml_elem(b, "MaxKeys", n, false);
    snprintf(n, sizeof n, "%d", L->count);
    xml_elem(b, "KeyCount", n, false);
    if (url)
        xml_elem(b, "EncodingType", "url", false);
    xml_elem(b, "IsTruncated", L->truncated ? "true" : "false", false);
    if (k->q.token[0])
        xml_elem(b, "ContinuationToken", k->q.token, false);
    if (k->q.start_after[0])
        xml_elem(b, "StartAfter", k->q.start_after, url);
    if (L->truncated) {
        es_buf_append_str(b, "<NextContinuationToken>");
        for (const unsigned char *p = (const unsigned char *)L->last; *p; p++)
            es_buf_printf(b, "%02x", *p);
        es_buf_append_str(b, "</NextContinuationToken>");
    }
    es_buf_append(b, L->items.data ? L->items.data : "", L->items.len);
    es_buf_append_str(b, "</ListBucketResult>");
}

static int list_objects(call *k)
{
    if (authorize_bucket(k, "s3:ListBucket") < 0)
        return -EACCES;
    int r = need_bucket(k->c, k->q.bucket, &k->e);
    if (r < 0)
        return r;
    char after[AL_S3_KEY_MAX + 1];
    snprintf(after, sizeof after, "%s", k->q.start_after);
    if (k->q.token[0] && !token_decode(k->q.token, after))
        return al_fail(&k->e, 400, "InvalidArgument",
                       "The continuation token provided is incorrect");
    listing *L = es_calloc(1, sizeof *L);
    if (!L)
        return al_fail_internal(&k->e, "InternalError");
    es_buf_init(&L->items, AW_LISTENER_RESPONSE_MAX / 2);
    r = list_scan(k, L, after);
    if (r == 0)
        list_answer(k, L);
    es_buf_free(&L->items);
    es_free(L);
    return r;
}

static int run(call *k)
{
    switch (k->q.op) {
    case AL_S3_LIST_BUCKETS:
        return list_buckets(k);
    case AL_S3_CREATE_BUCKET:
        return create_bucket(k);
    case AL_S3_DELETE_BUCKET:
        return delete_bucket(k);
    case AL_S3_HEAD_BUCKET:
        return head_bucket(k);
    case AL_S3_GET_BUCKET_LOCATION:
        return get_bucket_location(k);
    case AL_S3_PUT_BUCKET_POLICY:
        return put_bucket_policy(k);
    case AL_S3_GET_BUCKET_POLICY:
        return get_bucket_policy(k);
    case AL_S3_DELETE_BUCKET_POLICY:
        return delete_bucket_policy(k);
    case AL_S3_LIST_OBJECTS_V2:
        return list_objects(k);
    case AL_S3_PUT_OBJECT:
        return put_object(k);
    case AL_S3_GET_OBJECT: /* a HEAD is answered as a GET without its body */
    case AL_S3_HEAD_OBJECT:
        return get_object(k);
    case AL_S3_DELETE_OBJECT:
        return delete_object(k);
    }
    return al_fail(&k->e, 501, "NotImplemented", "Not implemented.");
}

void al_s3_serve(al_ctx *c, const al_request *rq, const al_error *head_err, time_t now,
                 aw_rest_answer *a)
{
    call *k = es_calloc(1, sizeof *k);
    al_s3_auth *auth = es_calloc(1, sizeof *auth);
    if (!k || !auth) {
        es_free(k);
        es_free(auth);
        al_error e = {.status = 503, .code = "SlowDown", .message = "Out of memory."};
        answer_error(a, &e, NULL);
        return;
    }
    k->c = c;
    k->rq = rq;
    k->a = a;
    k->auth = auth;
    int r;
    if (head_err) {
        k->e = *head_err;
        r = -EACCES;
    } else {
        r = al_verify_s3(c, rq, now, auth, &k->e);
    }
    if (r < 0) {
        s3_auth_error(&k->e);
    } else if ((r = al_s3_parse(rq->method, rq->path, rq->query, &k->q, &k->e)) == 0 &&
               (r = al_region_enter(c, auth->region)) == 0) {
        al_db_failure_take(c->db, NULL);
        r = run(k);
        al_store_failure_report(c, "s3", "request", r, &k->e);
        al_region_leave(c);
        s3_auth_error(&k->e); /* AccessDeniedException is S3's AccessDenied */
    }
    if (r < 0)
        answer_error(a, &k->e, rq->path);
    al_s3_auth_wipe(auth);
    es_free(auth);
    es_free(k);
}
