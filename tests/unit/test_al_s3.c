/* test_al_s3.c - the embedded S3 subset: the request parser, aws-chunked
 * bodies (AWS's own published example), and the operations' shapes through
 * al_s3_serve with requests signed as the SDKs sign them. */
#include <fcntl.h>

#include "al_helpers.h"
#include "aws/local/auth.h"
#include "aws/local/s3.h"
#include "aws/local/s3_chunked.h"
#include "aws/local/s3_req.h"
#include "aws/sigv4.h"
#include "common/secure.h"

/* ---- the parser ---- */

static al_s3_op op_of(const char *method, const char *path, const char *query)
{
    al_s3_req q;
    al_error e = {0};
    cr_assert_eq(al_s3_parse(method, path, query, &q, &e), 0, "%s %s?%s: %s %s", method, path,
                 query ? query : "", e.code, e.message);
    return q.op;
}

static const char *refusal(const char *method, const char *path, const char *query)
{
    static al_error e;
    al_s3_req q;
    memset(&e, 0, sizeof e);
    cr_assert_lt(al_s3_parse(method, path, query, &q, &e), 0, "%s %s accepted", method, path);
    cr_assert_geq(e.status, 400);
    return e.code;
}

Test(s3_parse, operations)
{
    cr_assert_eq(op_of("GET", "/", NULL), AL_S3_LIST_BUCKETS);
    cr_assert_eq(op_of("PUT", "/my-bucket", NULL), AL_S3_CREATE_BUCKET);
    cr_assert_eq(op_of("PUT", "/my-bucket/", NULL), AL_S3_CREATE_BUCKET);
    cr_assert_eq(op_of("DELETE", "/my-bucket", NULL), AL_S3_DELETE_BUCKET);
    cr_assert_eq(op_of("HEAD", "/my-bucket", NULL), AL_S3_HEAD_BUCKET);
    cr_assert_eq(op_of("GET", "/my-bucket", "location"), AL_S3_GET_BUCKET_LOCATION);
    cr_assert_eq(op_of("PUT", "/my-bucket", "policy"), AL_S3_PUT_BUCKET_POLICY);
    cr_assert_eq(op_of("GET", "/my-bucket", "policy="), AL_S3_GET_BUCKET_POLICY);
    cr_assert_eq(op_of("DELETE", "/my-bucket", "policy"), AL_S3_DELETE_BUCKET_POLICY);
    cr_assert_eq(op_of("GET", "/my-bucket", "list-type=2&prefix=a%2Fb&delimiter=%2F"),
                 AL_S3_LIST_OBJECTS_V2);
    cr_assert_eq(op_of("PUT", "/my-bucket/app.env", NULL), AL_S3_PUT_OBJECT);
    cr_assert_eq(op_of("GET", "/my-bucket/dir/app.env", "x-id=GetObject"), AL_S3_GET_OBJECT);
    cr_assert_eq(op_of("HEAD", "/my-bucket/k", NULL), AL_S3_HEAD_OBJECT);
    cr_assert_eq(op_of("DELETE", "/my-bucket/k", NULL), AL_S3_DELETE_OBJECT);
}

Test(s3_parse, fields)
{
    al_s3_req q;
    al_error e = {0};
    cr_assert_eq(al_s3_parse("GET", "/b12/a%20b/c%2Bd", NULL, &q, &e), 0);
    cr_assert_str_eq(q.bucket, "b12");
    cr_assert_str_eq(q.key, "a b/c+d");
    cr_assert_eq(al_s3_parse("GET", "/b12",
                             "list-type=2&prefix=x%2F&delimiter=%2F&max-keys=5000&start-after=x"
                             "&encoding-type=url&fetch-owner=true",
                             &q, &e),
                 0);
    cr_assert_str_eq(q.prefix, "x/");
    cr_assert_str_eq(q.delimiter, "/");
    cr_assert_str_eq(q.start_after, "x");
    cr_assert_eq(q.max_keys, AL_S3_LIST_MAX, "max-keys is capped at S3's 1000");
    cr_assert(q.url_encoding);
}

Test(s3_parse, bad_input)
{
    cr_assert_str_eq(refusal("PUT", "/ab", NULL), "InvalidBucketName");
    cr_assert_str_eq(refusal("PUT", "/UpperCase", NULL), "InvalidBucketName");
    cr_assert_str_eq(refusal("PUT", "/-dash", NULL), "InvalidBucketName");
    cr_assert_str_eq(refusal("PUT", "/a..b", NULL), "InvalidBucketName");
    cr_assert_str_eq(refusal("PUT", "/bucket%00x", NULL), "InvalidBucketName");
    cr_assert_str_eq(refusal("GET", "/bucket/a%0", NULL), "InvalidURI");
    cr_assert_str_eq(refusal("GET", "/bucket/a%zz", NULL), "InvalidURI");
    cr_assert_str_eq(refusal("GET", "/bucket/a%00b", NULL), "InvalidURI");
    cr_assert_str_eq(refusal("GET", "nope", NULL), "InvalidURI");
    cr_assert_str_eq(refusal("GET", "/bucket/k", "acl"), "NotImplemented");
    cr_assert_str_eq(refusal("GET", "/bucket", "versioning"), "NotImplemented");
    cr_assert_str_eq(refusal("GET", "/bucket", NULL), "NotImplemented"); /* ListObjects v1 */
    cr_assert_str_eq(refusal("POST", "/bucket/k", NULL), "MethodNotAllowed");
    cr_assert_str_eq(refusal("PUT", "/", NULL), "MethodNotAllowed");
    cr_assert_str_eq(refusal("GET", "/bucket", "list-type=2&max-keys=-1"), "InvalidArgument");
    cr_assert_str_eq(refusal("GET", "/bucket", "list-type=2&max-keys=x"), "InvalidArgument");
    cr_assert_str_eq(refusal("GET", "/bucket", "list-type=2&encoding-type=base64"),
                     "InvalidArgument");
    cr_assert_str_eq(refusal("GET", "/bucket",
                             "list-type=2&delimiter=%2F%2F%2F%2F%2F%2F%2F%2F"
                             "%2F%2F%2F%2F%2F%2F%2F%2F%2F"),
                     "InvalidArgument");
    char q[512] = "list-type=2";
    size_t qn = strlen(q);
    for (int i = 0; i < AL_S3_QUERY_PARAMS_MAX && qn < sizeof q; i++)
        qn += (size_t)snprintf(q + qn, sizeof q - qn, "&x-id=1");
    cr_assert(qn < sizeof q);
    cr_assert_str_eq(refusal("GET", "/bucket", q), "InvalidURI");
    /* a key past 1024 bytes */
    char path[AL_S3_PATH_MAX + 64] = "/bucket/";
    memset(path + 8, 'k', AL_S3_KEY_MAX + 1);
    path[8 + AL_S3_KEY_MAX + 1] = '\0';
    cr_assert_str_eq(refusal("GET", path, NULL), "KeyTooLongError");
    memset(path + 8, 'k', AL_S3_PATH_MAX);
    path[8 + AL_S3_PATH_MAX] = '\0';
    cr_assert_str_eq(refusal("GET", path, NULL), "InvalidURI");
}

/* ---- aws-chunked: AWS's example "PUT Object" in chunks (S3 API
 * reference, sigv4-streaming): 65536 + 1024 bytes of 'a', secret
 * wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z, us-east-1 */

#define EX_SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define EX_SIG1 "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define EX_SIG2 "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define EX_SIG3 "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"

static void example_body(es_buf *b, const char *sig1)
{
    es_buf_init(b, 1 << 20);
    es_buf_printf(b, "10000;chunk-signature=%s\r\n", sig1);
    for (int i = 0; i < 65536; i++)
        es_buf_append_char(b, 'a');
    es_buf_printf(b, "\r\n400;chunk-signature=%s\r\n", EX_SIG2);
    for (int i = 0; i < 1024; i++)
        es_buf_append_char(b, 'a');
    es_buf_printf(b, "\r\n0;chunk-signature=%s\r\n\r\n", EX_SIG3);
}

static int example_decode(const es_buf *body, size_t max, es_buf *out, const char **why)
{
    uint8_t key[32];
    cr_assert_eq(aw_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524",
                                      "us-east-1", "s3", key),
                 0);
    al_s3_chunk_sig sig = {key, EX_SEED, "20130524T000000Z", "20130524/us-east-1/s3/aws4_request"};
    es_buf_init(out, 1 << 20);
    return al_s3_dechunk(body->data, body->len, &sig, max, out, why);
}

Test(s3_chunked, aws_example)
{
    es_buf body, out;
    const char *why;
    example_body(&body, EX_SIG1);
    cr_assert_eq(body.len, 66824, "the example's Content-Length");
    cr_assert_eq(example_decode(&body, 1 << 20, &out, &why), 0, "%s", why);
    cr_assert_eq(out.len, 66560);
    cr_assert_eq(out.data[0], 'a');
    es_buf_free(&out);
    cr_assert_eq(example_decode(&body, 66559, &out, &why), -EMSGSIZE, "over the maximum");
    es_buf_free(&out);
    body.data[100] = 'b'; /* one byte of the first chunk changed */
    cr_assert_eq(example_decode(&body, 1 << 20, &out, &why), -EACCES);
    es_buf_free(&out);
    es_buf_free(&body);
}

Test(s3_chunked, bad_bodies)
{
    es_buf body, out;
    const char *why;
    /* a signature that is not the chain's */
    example_body(&body, EX_SIG2);
    cr_assert_eq(example_decode(&body, 1 << 20, &out, &why), -EACCES);
    es_buf_free(&out);
    es_buf_free(&body);
    /* truncated: the last chunk's data cut short */
    example_body(&body, EX_SIG1);
    body.len -= 90;
    cr_assert_eq(example_decode(&body, 1 << 20, &out, &why), -EINVAL);
    es_buf_free(&out);
    es_buf_free(&body);
    static const char *const bad[] = {
        "",
        "zz;chunk-signature=" EX_SIG1 "\r\n",
        "123456789;chunk-signature=" EX_SIG1 "\r\n",
        "1;chunk-signature=abc\r\nA\r\n",
        "1\r\nA\r\n0\r\n\r\n", /* unsigned chunks in a signed body */
        "5;chunk-signature=" EX_SIG1 "\r\nA\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        es_buf_init(&body, 1 << 10);
        es_buf_append_str(&body, bad[i]);
        int r = example_decode(&body, 1 << 20, &out, &why);
        cr_assert(r == -EINVAL || r == -EMSGSIZE, "bad body %zu: %d", i, r);
        cr_assert_str_neq(why, "");
        es_buf_free(&out);
        es_buf_free(&body);
    }
}

Test(s3_chunked, unsigned_trailer)
{
    static const char ok[] =
        "5\r\nA=1\nB\r\n3\r\n=2\n\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
    es_buf out;
    es_buf_init(&out, 1 << 10);
    const char *why;
    cr_assert_eq(al_s3_dechunk(ok, sizeof ok - 1, NULL, 100, &out, &why), 0, "%s", why);
    cr_assert_eq(out.len, 8);
    cr_assert(memcmp(out.data, "A=1\nB=2\n", 8) == 0);
    static const char extra[] = "1\r\nA\r\n0\r\n\r\nmore";
    cr_assert_eq(al_s3_dechunk(extra, sizeof extra - 1, NULL, 100, &out, &why), -EINVAL);
    static const char no_end[] = "1\r\nA\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n";
    cr_assert_eq(al_s3_dechunk(no_end, sizeof no_end - 1, NULL, 100, &out, &why), -EINVAL);
    es_buf_free(&out);
}

/* ---- the operations, through al_s3_serve ---- */

#define AKID "AKIAS3UNITTEST000001"
#define SECRET "s3unit0secret0s3unit0secret0s3unit0secr"

static aw_rest_answer A;

static void s3_setup(void)
{
    alt_setup();
    cr_assert_eq(al_access_key_add(T.ctx, AKID, SECRET, "arn:aws:iam::123456789012:user/tester"),
                 0);
    memset(&A, 0, sizeof A);
}

static void s3_teardown(void)
{
    es_buf_free_secret(&A.body);
    alt_teardown();
}

/* Signs and serves one request; sha is x-amz-content-sha256 (NULL: the
 * body's digest). The answer is in A; its status is returned. */
static int s3_send(const char *method, const char *path, const char *query, const char *body,
                   size_t len, const char *sha, char seed[65])
{
    es_buf_free_secret(&A.body);
    memset(&A, 0, sizeof A);
    es_buf_init(&A.body, AW_LISTENER_RESPONSE_MAX);
    char digest[65];
    aw_sigv4_sha256_hex(body ? body : "", len, digest);
    aw_header hs[8] = {{"Host", "127.0.0.1:4577"}, {"x-amz-content-sha256", sha ? sha : digest}};
    size_t nh = 2;
    if (sha && strncmp(sha, "STREAMING", 9) == 0)
        hs[nh++] = (aw_header){"Content-Encoding", "aws-chunked"};
    aw_sigv4_input in = {.method = method,
                         .path = path,
                         .query = query,
                         .headers = hs,
                         .n_headers = nh,
                         .payload_hash = sha ? sha : digest,
                         .s3 = true};
    aw_signer *s = aw_signer_create();
    aw_sigv4_result res;
    aw_sigv4_creds cr = {AKID, SECRET, NULL};
    cr_assert_eq(aw_signer_sign(s, &cr, "us-east-2", "s3", (time_t)T.now, &in, &res), 0);
    aw_signer_free(s);
    hs[nh++] = (aw_header){"X-Amz-Date", res.amz_date};
    hs[nh++] = (aw_header){"Authorization", es_buf_cstr(&res.authorization)};
    if (seed)
        snprintf(seed, 65, "%s", strstr(es_buf_cstr(&res.authorization), "Signature=") + 10);
    aw_listener_request rq = {method, path, query, hs, nh, body ? body : "", len};
    al_s3_serve(T.ctx, &rq, NULL, (time_t)T.now, &A);
    es_buf_free_secret(&res.authorization);
    return A.status;
}

static int s3(const char *method, const char *path, const char *query, const char *body)
{
    return s3_send(method, path, query, body, body ? strlen(body) : 0, NULL, NULL);
}

static const char *header(const char *name)
{
    for (size_t i = 0; i < A.n_headers; i++)
        if (strcasecmp(A.headers[i].name, name) == 0)
            return A.headers[i].value;
    return NULL;
}

static bool body_has(const char *s)
{
    return A.body.data && strstr(es_buf_cstr(&A.body), s);
}

#define LOC                                                                                        \
    "<CreateBucketConfiguration><LocationConstraint>us-east-2</LocationConstraint>"                \
    "</CreateBucketConfiguration>"

TestSuite(s3_ops, .init = s3_setup, .fini = s3_teardown);

Test(s3_ops, buckets_and_objects)
{
    cr_assert_eq(s3("PUT", "/envs", NULL, LOC), 200, "%s", es_buf_cstr(&A.body));
    cr_assert_str_eq(header("Location"), "/envs");
    cr_assert_eq(s3("PUT", "/envs", NULL, LOC), 409);
    cr_assert(body_has("<Code>BucketAlreadyOwnedByYou</Code>"));
    cr_assert_eq(s3("PUT", "/other", NULL, NULL), 400, "no constraint: us-east-1, not ours");
    cr_assert(body_has("IllegalLocationConstraintException"));
    cr_assert_eq(s3("PUT", "/envs/app.env", NULL, "A=1\nB=2\n"), 200);
    cr_assert_str_eq(header("ETag"), "\"1182cf6f64a0ed20b412bfd8ce1c49a5\"",
                     "the content's MD5, as S3's");
    cr_assert_eq(s3("GET", "/envs/app.env", NULL, NULL), 200);
    cr_assert_eq(A.body.len, 8);
    cr_assert(memcmp(A.body.data, "A=1\nB=2\n", 8) == 0);
    cr_assert_str_eq(header("Content-Type"), "binary/octet-stream");
    cr_assert_not_null(header("Last-Modified"));
    cr_assert_eq(s3("HEAD", "/envs/app.env", NULL, NULL), 200);
    cr_assert_eq(A.body.len, 8, "a HEAD announces the length");
    cr_assert_eq(s3("GET", "/envs/nope", NULL, NULL), 404);
    cr_assert(body_has("<Code>NoSuchKey</Code>"));
    cr_assert_eq(s3("GET", "/nobucket/k", NULL, NULL), 404);
    cr_assert(body_has("<Code>NoSuchBucket</Code>"));
    cr_assert_eq(s3("GET", "/envs", "location", NULL), 200);
    cr_assert(body_has(">us-east-2</LocationConstraint>"));
    cr_assert_eq(s3("GET", "/", NULL, NULL), 200);
    cr_assert(body_has("<Bucket><Name>envs</Name>"));
    cr_assert_eq(s3("DELETE", "/envs", NULL, NULL), 409);
    cr_assert(body_has("<Code>BucketNotEmpty</Code>"));
    cr_assert_eq(s3("DELETE", "/envs/app.env", NULL, NULL), 204);
    cr_assert_eq(s3("DELETE", "/envs/app.env", NULL, NULL), 204, "S3 does not say it was gone");
    cr_assert_eq(s3("DELETE", "/envs", NULL, NULL), 204);
    cr_assert_eq(s3("HEAD", "/envs", NULL, NULL), 404);
}

Test(s3_ops, list_objects_v2)
{
    cr_assert_eq(s3("PUT", "/envs", NULL, LOC), 200);
    const char *keys[] = {"a.env", "dir/b.env", "dir/c.env", "dir/sub/d.env", "e f.env"};
    for (size_t i = 0; i < 5; i++) {
        char p[96], esc[64];
        snprintf(esc, sizeof esc, "%s", keys[i]);
        if (strchr(esc, ' '))
            snprintf(esc, sizeof esc, "e%%20f.env");
        snprintf(p, sizeof p, "/envs/%s", esc);
        cr_assert_eq(s3("PUT", p, NULL, "X=1\n"), 200);
    }
    cr_assert_eq(s3("GET", "/envs", "list-type=2&delimiter=%2F&encoding-type=url", NULL), 200);
    cr_assert(body_has("<KeyCount>3</KeyCount>"), "%s", es_buf_cstr(&A.body));
    cr_assert(body_has("<Key>a.env</Key>"));
    cr_assert(body_has("<Key>e%20f.env</Key>"));
    cr_assert(body_has("<CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes>"));
    cr_assert_eq(s3("GET", "/envs", "list-type=2&prefix=dir%2F&max-keys=2", NULL), 200);
    cr_assert(body_has("<IsTruncated>true</IsTruncated>"));
    cr_assert(body_has("<Key>dir/b.env</Key>") && body_has("<Key>dir/c.env</Key>"));
    const char *t = strstr(es_buf_cstr(&A.body), "<NextContinuationToken>") + 23;
    char q[256];
    snprintf(q, sizeof q, "list-type=2&prefix=dir%%2F&continuation-token=%.*s",
             (int)(strchr(t, '<') - t), t);
    cr_assert_eq(s3("GET", "/envs", q, NULL), 200);
    cr_assert(body_has("<KeyCount>1</KeyCount>") && body_has("<Key>dir/sub/d.env</Key>"));
    cr_assert(body_has("<IsTruncated>false</IsTruncated>"));
    cr_assert_eq(s3("GET", "/envs", "list-type=2&continuation-token=zz", NULL), 400);
}

Test(s3_ops, bucket_policy)
{
    cr_assert_eq(s3("PUT", "/envs", NULL, LOC), 200);
    cr_assert_eq(s3("GET", "/envs", "policy", NULL), 404);
    cr_assert(body_has("NoSuchBucketPolicy"));
    const char *pol = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\","
                      "\"Principal\":\"*\",\"Action\":\"s3:GetObject\","
                      "\"Resource\":\"arn:aws:s3:::envs/*\"}]}";
    cr_assert_eq(s3("PUT", "/envs", "policy", pol), 204, "%s", es_buf_cstr(&A.body));
    cr_assert_eq(s3("GET", "/envs", "policy", NULL), 200);
    cr_assert_str_eq(es_buf_cstr(&A.body), pol);
    cr_assert_eq(s3("PUT", "/envs", "policy", "{\"Statement\":"), 400);
    cr_assert(body_has("MalformedPolicy"));
    cr_assert_eq(s3("DELETE", "/envs", "policy", NULL), 204);
    cr_assert_eq(s3("GET", "/envs", "policy", NULL), 404);
}

Test(s3_ops, payload_modes)
{
    cr_assert_eq(s3("PUT", "/envs", NULL, LOC), 200);
    /* a digest that is not the body's */
    cr_assert_eq(s3_send("PUT", "/envs/k", NULL, "A=1\n", 4, aw_sigv4_empty_sha256, NULL), 400);
    cr_assert(body_has("XAmzContentSHA256Mismatch"));
    cr_assert_eq(s3_send("PUT", "/envs/k", NULL, "A=1\n", 4, "UNSIGNED-PAYLOAD", NULL), 200);
    /* chunked and signed: the seed is the request's own signature */
    char seed[65];
    const char *mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    /* first a request to learn the seed the signer makes for this head */
    s3_send("PUT", "/envs/c", NULL, "", 0, mode, seed);
    uint8_t key[32];
    char date[17];
    aw_sigv4_amz_date((time_t)T.now, date);
    cr_assert_eq(aw_sigv4_signing_key(SECRET, "20231114", "us-east-2", "s3", key), 0);
    cr_assert_eq(strncmp(date, "20231114", 8), 0);
    const char *scope = "20231114/us-east-2/s3/aws4_request";
    char prev[65], sig1[65], sig2[65], h[65], sts[512];
    snprintf(prev, sizeof prev, "%s", seed);
    aw_sigv4_sha256_hex("S=3\n", 4, h);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", date, scope, prev,
             aw_sigv4_empty_sha256, h);
    aw_sigv4_signature_hex(key, sts, strlen(sts), sig1);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", date, scope, sig1,
             aw_sigv4_empty_sha256, aw_sigv4_empty_sha256);
    aw_sigv4_signature_hex(key, sts, strlen(sts), sig2);
    char body[512];
    int n = snprintf(body, sizeof body,
                     "4;chunk-signature=%s\r\nS=3\n\r\n0;chunk-signature=%s\r\n\r\n", sig1, sig2);
    /* the same head again (same time: same seed), now with the body */
    cr_assert_eq(s3_send("PUT", "/envs/c", NULL, body, (size_t)n, mode, NULL), 200, "%s",
                 es_buf_cstr(&A.body));
    cr_assert_eq(s3("GET", "/envs/c", NULL, NULL), 200);
    cr_assert_eq(A.body.len, 4);
    cr_assert(memcmp(A.body.data, "S=3\n", 4) == 0);
    body[30] ^= 1; /* a signature byte */
    cr_assert_eq(s3_send("PUT", "/envs/c", NULL, body, (size_t)n, mode, NULL), 403);
    cr_assert(body_has("SignatureDoesNotMatch"));
    es_wipe(key, sizeof key);
}

Test(s3_ops, content_never_in_clear_on_disk)
{
    cr_assert_eq(s3("PUT", "/envs", NULL, LOC), 200);
    const char *marker = "DB_PASSWORD=never-on-disk-7c1f0e\n";
    cr_assert_eq(s3("PUT", "/envs/app.env", NULL, marker), 200);
    alt_reopen(); /* everything written out */
    char p[128];
    snprintf(p, sizeof p, "%s/embedded.db", T.dir);
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    static char buf[8 << 20];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    cr_assert_gt(n, 0);
    cr_assert_null(memmem(buf, (size_t)n, "never-on-disk", 13));
    cr_assert_eq(s3("GET", "/envs/app.env", NULL, NULL), 200);
    cr_assert_eq(A.body.len, strlen(marker));
}

Test(s3_ops, bad_signature_is_s3_worded)
{
    cr_assert_eq(s3("PUT", "/envs", NULL, LOC), 200);
    aw_header hs[] = {{"Host", "h"},
                      {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
                      {"X-Amz-Date", "20231114T221320Z"},
                      {"Authorization", "AWS4-HMAC-SHA256 Credential=" AKID
                                        "/20231114/us-east-2/s3/aws4_request, SignedHeaders="
                                        "host;x-amz-content-sha256;x-amz-date, Signature="
                                        "0000000000000000000000000000000000000000000000000000000000"
                                        "000000"}};
    es_buf_free_secret(&A.body);
    memset(&A, 0, sizeof A);
    es_buf_init(&A.body, AW_LISTENER_RESPONSE_MAX);
    aw_listener_request rq = {"GET", "/envs/k", NULL, hs, 4, "", 0};
    al_s3_serve(T.ctx, &rq, NULL, (time_t)T.now, &A);
    cr_assert_eq(A.status, 403);
    cr_assert(body_has("<Code>SignatureDoesNotMatch</Code>"), "%s", es_buf_cstr(&A.body));
}
