/* test_aws_s3.c - the S3 client (aws/s3.h, aw_call's REST form) against the
 * embedded S3 on a real listener: PUT and GET through the signed client,
 * S3's errors read from its XML, object ARNs. */
#include <uv.h>

#include "al_helpers.h"
#include "aws/client.h"
#include "aws/local/auth.h"
#include "aws/s3.h"
#include "common/secure.h"

static uv_loop_t loop;
static aw_listener *srv;
static aw_client *cli;
static char akid[AL_AKID_LEN + 1], secret[64];

typedef struct got {
    bool done;
    aw_error err;
    bool failed;
    char content[256];
    size_t len;
} got;

static void setup(void)
{
    alt_setup();
    T.now = (double)time(NULL); /* the client signs with the real clock */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    char err[256];
    cr_assert_eq(al_admin_init(T.ctx, T.dir, akid, err, sizeof err), 0, "%s", err);
    char *s = NULL;
    cr_assert_eq(al_admin_credentials(T.ctx, akid, &s), 0);
    snprintf(secret, sizeof secret, "%s", s);
    es_free_secret_str(s);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(aw_listener_start(&loop, "127.0.0.1", 0, NULL, &srv), 0);
    cr_assert_eq(al_mount(T.ctx, srv), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", aw_listener_port(srv));
    aw_client_config cfg = {.region = "us-east-2", .max_attempts = 1};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cfg.endpoint_override[i] = url;
    cr_assert_eq(aw_client_create(&loop, &cfg, &cli), 0);
}

static void teardown(void)
{
    aw_client_close(cli, NULL, NULL);
    aw_listener_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    es_wipe(secret, sizeof secret);
    alt_teardown();
}

static void on_call(void *arg, const aw_error *err, aw_http_response *resp)
{
    got *g = arg;
    g->done = true;
    if (err) {
        g->failed = true;
        g->err = *err;
        return;
    }
    g->len = resp->body.len < sizeof g->content ? resp->body.len : sizeof g->content - 1;
    memcpy(g->content, resp->body.data ? resp->body.data : "", g->len);
}

static void on_get(void *arg, const aw_error *err, es_buf *content)
{
    got *g = arg;
    g->done = true;
    if (err) {
        g->failed = true;
        g->err = *err;
        return;
    }
    g->len = content->len < sizeof g->content ? content->len : sizeof g->content - 1;
    memcpy(g->content, content->data ? content->data : "", g->len);
}

static void wait_for(got *g)
{
    while (!g->done)
        uv_run(&loop, UV_RUN_ONCE);
}

/* A REST call through the client: method path body -> the HTTP status. */
static got rest(const char *method, const char *path, const char *body)
{
    got g = {0};
    aw_sigv4_creds cr = {akid, secret, NULL};
    aw_call call = {.service = AW_SVC_S3,
                    .operation = method,
                    .method = method,
                    .path = path,
                    .body = body,
                    .body_len = body ? strlen(body) : 0};
    cr_assert_eq(aw_call_start(cli, &cr, &call, on_call, &g), 0);
    wait_for(&g);
    return g;
}

static got get_object(const char *bucket, const char *key)
{
    got g = {0};
    aw_sigv4_creds cr = {akid, secret, NULL};
    cr_assert_eq(aw_s3_get_object(cli, &cr, NULL, bucket, key, on_get, &g), 0);
    wait_for(&g);
    return g;
}

TestSuite(aws_s3, .init = setup, .fini = teardown);

Test(aws_s3, put_and_get_through_the_listener)
{
    got g = rest("PUT", "/envs",
                 "<CreateBucketConfiguration><LocationConstraint>us-east-2</LocationConstraint>"
                 "</CreateBucketConfiguration>");
    cr_assert_not(g.failed, "%s: %s", g.err.code, g.err.message);
    g = rest("PUT", "/envs/dir/app%20one.env", "A=1\nB=2\n");
    cr_assert_not(g.failed, "%s: %s", g.err.code, g.err.message);
    g = get_object("envs", "dir/app one.env");
    cr_assert_not(g.failed, "%s: %s", g.err.code, g.err.message);
    cr_assert_eq(g.len, 8);
    cr_assert(memcmp(g.content, "A=1\nB=2\n", 8) == 0);
    g = get_object("envs", "nope.env");
    cr_assert(g.failed);
    cr_assert_eq(g.err.kind, AW_ERR_SERVICE);
    cr_assert_eq(g.err.status, 404);
    cr_assert_str_eq(g.err.code, "NoSuchKey");
    g = get_object("nobucket", "k");
    cr_assert_str_eq(g.err.code, "NoSuchBucket");
    T.deny_action = "s3:GetObject";
    g = get_object("envs", "dir/app one.env");
    cr_assert_eq(g.err.status, 403);
    cr_assert_str_eq(g.err.code, "AccessDenied");
}

Test(aws_s3, arns_and_paths)
{
    char b[AW_S3_BUCKET_MAX + 1], k[AW_S3_KEY_MAX + 1];
    cr_assert_eq(aw_s3_parse_arn("arn:aws:s3:::envs/dir/app.env", b, k), 0);
    cr_assert_str_eq(b, "envs");
    cr_assert_str_eq(k, "dir/app.env");
    cr_assert_eq(aw_s3_parse_arn("arn:aws-cn:s3:::my.bucket-1/a", b, k), 0);
    const char *bad[] = {"arn:aws:s3:::envs",    "arn:aws:s3:::envs/",
                         "arn:aws:s3:::Envs/k",  "arn:aws:s3:us-east-1::envs/k",
                         "arn:aws:ssm:::envs/k", "envs/k",
                         "arn::s3:::envs/k",     "arn:aws:s3:::-bad/k",
                         "arn:aws:s3:::ab/k"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(aw_s3_parse_arn(bad[i], b, k), -EINVAL, "%s", bad[i]);
    es_buf p;
    es_buf_init(&p, AW_CALL_PATH_MAX + 1);
    cr_assert_eq(aw_s3_object_path("envs", "d/a b+c~.env", &p), 0);
    cr_assert_str_eq(es_buf_cstr(&p), "/envs/d/a%20b%2Bc~.env");
    es_buf_free(&p);
    aw_sigv4_creds cr = {akid, secret, NULL};
    aw_call call = {.service = AW_SVC_SSM, .operation = "X", .method = "GET", .path = "/x"};
    cr_assert_eq(aw_call_start(cli, &cr, &call, on_call, NULL), -EINVAL, "a REST form only for S3");
    call = (aw_call){.service = AW_SVC_S3, .operation = "X", .method = "GET", .path = "x"};
    cr_assert_eq(aw_call_start(cli, &cr, &call, on_call, NULL), -EINVAL, "a path is /...");
}

typedef struct loc {
    bool done, failed;
    aw_error err;
    char region[AW_REGION_MAX + 1];
} loc;

static void on_loc(void *arg, const aw_error *err, const char *region)
{
    loc *l = arg;
    l->done = true;
    if (err) {
        l->failed = true;
        l->err = *err;
        return;
    }
    snprintf(l->region, sizeof l->region, "%s", region);
}

static loc location(const char *bucket, const char *region)
{
    loc l = {0};
    aw_sigv4_creds cr = {akid, secret, NULL};
    cr_assert_eq(aw_s3_get_bucket_location(cli, &cr, region, bucket, on_loc, &l), 0);
    while (!l.done)
        uv_run(&loop, UV_RUN_ONCE);
    return l;
}

/* GetBucketLocation through the client (its "?location" signed as the
 * canonical query): the bucket's region, whichever region asks. */
Test(aws_s3, bucket_location_through_the_listener)
{
    got g = rest("PUT", "/east",
                 "<CreateBucketConfiguration><LocationConstraint>us-east-2</LocationConstraint>"
                 "</CreateBucketConfiguration>");
    cr_assert_not(g.failed, "%s: %s", g.err.code, g.err.message);
    loc l = location("east", NULL);
    cr_assert_not(l.failed, "%s: %s", l.err.code, l.err.message);
    cr_assert_str_eq(l.region, "us-east-2");
    l = location("east", "eu-west-3");
    cr_assert_not(l.failed, "%s: %s", l.err.code, l.err.message);
    cr_assert_str_eq(l.region, "us-east-2", "asked from another region");
    l = location("nobucket", NULL);
    cr_assert(l.failed);
    cr_assert_str_eq(l.err.code, "NoSuchBucket");
    T.deny_action = "s3:GetBucketLocation";
    l = location("east", NULL);
    cr_assert_str_eq(l.err.code, "AccessDenied");
    aw_sigv4_creds cr = {akid, secret, NULL};
    cr_assert_eq(aw_s3_get_bucket_location(cli, &cr, NULL, "No_Such", on_loc, &l), -EINVAL);
}

Test(aws_s3, location_answers)
{
    char r[AW_REGION_MAX + 1];
    const char *ns = "http://s3.amazonaws.com/doc/2006-03-01/";
    char doc[256];
    snprintf(doc, sizeof doc, "<LocationConstraint xmlns=\"%s\">ap-south-1</LocationConstraint>",
             ns);
    cr_assert_eq(aw_s3_parse_location(doc, strlen(doc), r, sizeof r), 0);
    cr_assert_str_eq(r, "ap-south-1");
    snprintf(doc, sizeof doc, "<LocationConstraint xmlns=\"%s\"/>", ns);
    cr_assert_eq(aw_s3_parse_location(doc, strlen(doc), r, sizeof r), 0);
    cr_assert_str_eq(r, "us-east-1", "no constraint: us-east-1");
    snprintf(doc, sizeof doc, "<LocationConstraint>EU</LocationConstraint>");
    cr_assert_eq(aw_s3_parse_location(doc, strlen(doc), r, sizeof r), 0);
    cr_assert_str_eq(r, "eu-west-1", "the legacy EU");
    const char *bad[] = {"<LocationConstraint>Us East</LocationConstraint>",
                         "<LocationConstraint>-x</LocationConstraint>", "<Location", "",
                         "<!DOCTYPE a [<!ENTITY e \"x\">]><LocationConstraint>&e;"
                         "</LocationConstraint>"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(aw_s3_parse_location(bad[i], strlen(bad[i]), r, sizeof r), -EINVAL, "%s",
                     bad[i]);
    cr_assert_eq(
        aw_s3_parse_location("<LocationConstraint>us-east-2</LocationConstraint>", 49, r, 4),
        -EINVAL, "too small a buffer");
}
