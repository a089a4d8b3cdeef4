/* ECR pulls (issue 20), the pure parts: an image name read as an ECR image
 * (account, region, partition, repository; the local registry standing for
 * the account's ECR; every rule's refusal, and what is not ECR's left
 * alone), the repository's ARN, ECR's API endpoint, the
 * GetAuthorizationToken answer (good and bad), and the plan's ECR entries
 * (containers with repositoryCredentials keep them; registries shared). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/secrets/ecr.h"
#include "agent/secrets/plan.h"
#include "aws/ecr.h"
#include "aws/endpoint.h"
#include "common/buf.h"

#define HOST "123456789012.dkr.ecr.us-west-2.amazonaws.com"
#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const ag_ecr_local LOCAL = {
    .host = "127.0.0.1:5000", .account = "210987654321", .region = "eu-west-1"};

static ag_ecr_image parse_ok(const char *image, const ag_ecr_local *local)
{
    ag_ecr_image img;
    char err[512] = "";
    int rc = ag_ecr_image_parse(image, local, &img, err, sizeof err);
    cr_assert_eq(rc, 1, "%s: %d %s", image, rc, err);
    return img;
}

static void parse_bad(const char *image, const char *why)
{
    ag_ecr_image img;
    char err[512] = "";
    int rc = ag_ecr_image_parse(image, &LOCAL, &img, err, sizeof err);
    cr_assert_eq(rc, -EINVAL, "%s: %d", image, rc);
    cr_assert(strstr(err, why), "%s: '%s' lacks '%s'", image, err, why);
}

static void not_ecr(const char *image, const ag_ecr_local *local)
{
    ag_ecr_image img;
    memset(&img, 0x5a, sizeof img);
    char err[64] = "";
    cr_assert_eq(ag_ecr_image_parse(image, local, &img, err, sizeof err), 0, "%s", image);
    cr_assert_eq(img.account[0], 0x5a, "%s: left untouched", image);
    cr_assert_str_empty(err);
}

Test(ecr_image, ecr_hosts_read_into_their_parts)
{
    ag_ecr_image i = parse_ok(HOST "/team/app:1.0", NULL);
    cr_assert_str_eq(i.host, HOST);
    cr_assert_str_eq(i.account, "123456789012");
    cr_assert_str_eq(i.region, "us-west-2");
    cr_assert_str_eq(i.partition, "aws");
    cr_assert_str_eq(i.repo, "team/app");
    cr_assert(!i.local);
    char arn[AG_ECR_ARN_MAX];
    cr_assert_eq(ag_ecr_repository_arn(&i, arn, sizeof arn), 0);
    cr_assert_str_eq(arn, "arn:aws:ecr:us-west-2:123456789012:repository/team/app");

    i = parse_ok(HOST "/app", NULL);
    cr_assert_str_eq(i.repo, "app", "no tag: latest, as Docker reads it");
    i = parse_ok(HOST "/app@" DIGEST, NULL);
    cr_assert_str_eq(i.repo, "app");
    i = parse_ok(HOST "/a.b_c-d/e_f:v1.2-rc_3@" DIGEST, NULL);
    cr_assert_str_eq(i.repo, "a.b_c-d/e_f");
    i = parse_ok("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app:1", NULL);
    cr_assert_str_eq(i.partition, "aws-cn");
    cr_assert_eq(ag_ecr_repository_arn(&i, arn, sizeof arn), 0);
    cr_assert_str_eq(arn, "arn:aws-cn:ecr:cn-north-1:123456789012:repository/app");
    i = parse_ok("123456789012.DKR.ECR.us-east-1.AMAZONAWS.COM/app", NULL);
    cr_assert_str_eq(i.host, "123456789012.DKR.ECR.us-east-1.AMAZONAWS.COM", "kept as given");
}

Test(ecr_image, the_local_registry_is_the_accounts_ecr)
{
    ag_ecr_image i = parse_ok("127.0.0.1:5000/busybox:latest", &LOCAL);
    cr_assert(i.local);
    cr_assert_str_eq(i.host, "127.0.0.1:5000");
    cr_assert_str_eq(i.account, "210987654321");
    cr_assert_str_eq(i.region, "eu-west-1");
    cr_assert_str_eq(i.repo, "busybox");
    i = parse_ok("LOCALHOST:5000/x/y", &(ag_ecr_local){.host = "localhost:5000",
                                                       .account = "210987654321",
                                                       .region = "us-east-1"});
    cr_assert_str_eq(i.repo, "x/y", "hosts compare without case");
    /* another port, or no local registry: not ECR's */
    not_ecr("127.0.0.1:5001/busybox", &LOCAL);
    not_ecr("127.0.0.1:5000/busybox", NULL);
    ag_ecr_image img;
    char err[256] = "";
    cr_assert_eq(ag_ecr_image_parse("127.0.0.1:5000/busybox",
                                    &(ag_ecr_local){.host = "127.0.0.1:5000"}, &img, err,
                                    sizeof err),
                 -EINVAL);
    cr_assert(strstr(err, "no account or region"), "%s", err);
}

Test(ecr_image, other_registries_are_left_alone)
{
    not_ecr("busybox", &LOCAL);
    not_ecr("library/busybox:latest", &LOCAL);
    not_ecr("docker.io/library/busybox", &LOCAL);
    not_ecr("quay.io/team/app:1", &LOCAL);
    not_ecr("public.ecr.aws/docker/library/busybox", &LOCAL);
    not_ecr("123456789012.dkr.ecr.us-west-2.example.com/app", &LOCAL);
    not_ecr("/app", &LOCAL);
    not_ecr("", &LOCAL);
    not_ecr(NULL, &LOCAL);
}

Test(ecr_image, every_rule_refused_by_name)
{
    parse_bad("12345678901.dkr.ecr.us-west-2.amazonaws.com/app", "account is not 12 digits");
    parse_bad("1234567890123.dkr.ecr.us-west-2.amazonaws.com/app", "account is not 12 digits");
    parse_bad("12345678901x.dkr.ecr.us-west-2.amazonaws.com/app", "account is not 12 digits");
    parse_bad("123456789012.dkr.ecr.us-west-9.amazonaws.com/app", "us-west-9 is not a region");
    parse_bad("123456789012.dkr.ecr..amazonaws.com/app", "is not a region");
    parse_bad("123456789012.dkr.ecr.cn-north-1.amazonaws.com/app",
              "region cn-north-1 is reached under amazonaws.com.cn");
    parse_bad("123456789012.dkr.ecr.us-west-2.x.amazonaws.com/app", "is reached under");
    parse_bad(HOST "/App", "repository name breaks ECR's rule");
    parse_bad(HOST "/a", "repository name"); /* under 2 */
    parse_bad(HOST "/", "repository name");
    parse_bad(HOST "/a//b", "repository name");
    parse_bad(HOST "/a/", "repository name");
    parse_bad(HOST "/-ab", "repository name");
    parse_bad(HOST "/ab-", "repository name");
    parse_bad(HOST "/a..b", "repository name");
    parse_bad(HOST "/e__f", "repository name"); /* one separator between components */
    parse_bad(HOST "/a b", "repository name");
    parse_bad(HOST "/app:", "tag breaks Docker's rule");
    parse_bad(HOST "/app:.x", "tag");
    parse_bad(HOST "/app:a/b", "repository name"); /* the ':' is in a path component */
    parse_bad(HOST "/app:t@g", "digest");
    parse_bad(HOST "/app@sha256:abc", "digest");
    parse_bad(HOST "/app@sha256:"
                   "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
              "digest");
    parse_bad(HOST "/app@", "digest");
    parse_bad(HOST "/app@:abc", "digest");
    parse_bad("127.0.0.1:5000/Busy", "repository name");
    char longrepo[AG_ECR_REPO_MAX + 64];
    memset(longrepo, 'a', sizeof longrepo);
    memcpy(longrepo, HOST "/", sizeof HOST);
    longrepo[sizeof HOST + AG_ECR_REPO_MAX] = '\0'; /* 256 characters: the most */
    parse_ok(longrepo, NULL);
    longrepo[sizeof HOST + AG_ECR_REPO_MAX] = 'a';
    longrepo[sizeof HOST + AG_ECR_REPO_MAX + 1] = '\0';
    parse_bad(longrepo, "repository name");
    char longtag[sizeof HOST + 200];
    snprintf(longtag, sizeof longtag, HOST "/app:%0129d", 0);
    parse_bad(longtag, "tag");
    snprintf(longtag, sizeof longtag, HOST "/app:%0128d", 0);
    parse_ok(longtag, NULL);
}

Test(ecr_endpoint, api_host_and_signing_name)
{
    aw_endpoint e;
    char *env[] = {NULL};
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_ECR, "us-west-2", NULL, env, &e), 0);
    cr_assert_str_eq(e.url, "https://api.ecr.us-west-2.amazonaws.com");
    cr_assert_str_eq(e.signing_name, "ecr");
    cr_assert_str_eq(e.signing_region, "us-west-2");
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_ECR, "cn-north-1", NULL, env, &e), 0);
    cr_assert_str_eq(e.url, "https://api.ecr.cn-north-1.amazonaws.com.cn");
    char *env2[] = {"AWS_ENDPOINT_URL_ECR=http://127.0.0.1:9/", NULL};
    cr_assert_eq(aw_endpoint_resolve(AW_SVC_ECR, "us-east-1", NULL, env2, &e), 0);
    cr_assert_str_eq(e.url, "http://127.0.0.1:9");
    cr_assert_str_eq(aw_service_target_prefix(AW_SVC_ECR), "AmazonEC2ContainerRegistry_V20150921");
}

static int token(const char *body, aw_ecr_token *t)
{
    memset(t, 0, sizeof *t);
    return aw_ecr_parse_token(body, strlen(body), t);
}

Test(ecr_token, the_answer_read)
{
    aw_ecr_token t;
    /* base64("AWS:pa:ss") */
    cr_assert_eq(token("{\"authorizationData\":[{\"authorizationToken\":\"QVdTOnBhOnNz\","
                       "\"expiresAt\":1.7e9,\"proxyEndpoint\":\"https://" HOST "\"}]}",
                       &t),
                 0);
    cr_assert_str_eq(t.username, "AWS");
    cr_assert_str_eq(t.password, "pa:ss", "the first ':' ends the user");
    cr_assert_eq(t.password_len, 5);
    cr_assert_eq(t.expires_at, 1700000000);
    cr_assert_str_eq(t.proxy_endpoint, "https://" HOST);
    aw_ecr_token_clear(&t);
    cr_assert_null(t.password);
    /* no proxyEndpoint, an integer time, more members: the first is taken */
    cr_assert_eq(token("{\"authorizationData\":[{\"authorizationToken\":\"dTpw\","
                       "\"expiresAt\":1893456000},{\"authorizationToken\":\"eDp5\","
                       "\"expiresAt\":1}]}",
                       &t),
                 0);
    cr_assert_str_eq(t.username, "u");
    cr_assert_str_eq(t.password, "p");
    cr_assert_null(t.proxy_endpoint);
    aw_ecr_token_clear(&t);
}

Test(ecr_token, bad_answers_refused)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"authorizationData\":[]}",
        "{\"authorizationData\":{}}",
        "{\"authorizationData\":[1]}",
        "{\"authorizationData\":[{\"expiresAt\":1}]}",                 /* no token */
        "{\"authorizationData\":[{\"authorizationToken\":\"dTpw\"}]}", /* no time */
        "{\"authorizationData\":[{\"authorizationToken\":\"dTpw\",\"expiresAt\":\"1\"}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"dTpw\",\"expiresAt\":0}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"dTpw\",\"expiresAt\":-5}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"dTpw\",\"expiresAt\":1e300}]}",
        "{\"authorizationData\":[{\"authorizationToken\":7,\"expiresAt\":1}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"\",\"expiresAt\":1}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"dTp\",\"expiresAt\":1}]}", /* length */
        "{\"authorizationData\":[{\"authorizationToken\":\"d Tpw\",\"expiresAt\":1}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"dT=w\",\"expiresAt\":1}]}",
        "{\"authorizationData\":[{\"authorizationToken\":\"dXNlcg==\",\"expiresAt\":1}]}", /* user
                                                                                            */
        "{\"authorizationData\":[{\"authorizationToken\":\"OnA=\",\"expiresAt\":1}]}", /* ":p" */
        "{\"authorizationData\":[{\"authorizationToken\":\"dTo=\",\"expiresAt\":1}]}", /* "u:" */
        "{\"authorizationData\":[{\"authorizationToken\":\"dQA6cA==\",\"expiresAt\":1}]}", /* NUL */
        "{\"authorizationData\":[{\"authorizationToken\":\"dTpw\",\"expiresAt\":1,"
        "\"proxyEndpoint\":5}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aw_ecr_token t;
        cr_assert_eq(token(bad[i], &t), -EPROTO, "%zu: %s", i, bad[i]);
        cr_assert_null(t.password, "%zu: nothing handed out", i);
    }
    /* past the bounds */
    es_buf b;
    es_buf_init(&b, AW_ECR_TOKEN_MAX * 2);
    es_buf_append_str(&b, "{\"authorizationData\":[{\"expiresAt\":1,\"authorizationToken\":\"");
    for (size_t i = 0; i < AW_ECR_TOKEN_MAX / 4 + 1; i++)
        es_buf_append_str(&b, "dTpw");
    es_buf_append_str(&b, "\"}]}");
    aw_ecr_token t;
    cr_assert_eq(aw_ecr_parse_token(b.data, b.len, &t), -EPROTO);
    es_buf_free(&b);
}

/* ---- the plan's ECR entries */

static ag_taskdef *parse(const char *body)
{
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0, "%s", e.message);
    return td;
}

Test(ecr_plan, ecr_containers_and_their_registries)
{
    ag_taskdef *td =
        parse("{\"family\":\"f\",\"executionRoleArn\":\"arn:aws:iam::123456789012:role/exec\","
              "\"containerDefinitions\":["
              "{\"name\":\"a\",\"image\":\"" HOST "/app:1\",\"memory\":32},"
              "{\"name\":\"b\",\"image\":\"busybox\",\"memory\":32,\"essential\":false},"
              "{\"name\":\"c\",\"image\":\"" HOST "/other@" DIGEST
              "\",\"memory\":32,\"essential\":false},"
              "{\"name\":\"d\",\"image\":\"127.0.0.1:5000/app\",\"memory\":32,\"essential\":false},"
              "{\"name\":\"e\",\"image\":\"" HOST "/own\",\"memory\":32,\"essential\":false,"
              "\"repositoryCredentials\":{\"credentialsParameter\":\"creds\"}}]}");
    ag_secret_plan *p = NULL;
    char err[512] = "";
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p->n_ecr, 0, "none until asked");
    cr_assert_eq(ag_secret_plan_ecr(p, td, &LOCAL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p->n_ecr, 3, "a, c and d; e has its own credentials, b is Docker Hub's");
    cr_assert_eq(p->ecr[0].container, 0);
    cr_assert_eq(p->ecr[1].container, 2);
    cr_assert_eq(p->ecr[2].container, 3);
    cr_assert_eq(p->n_ecr_registries, 2);
    cr_assert_eq(p->ecr[0].registry, p->ecr[1].registry, "one token for one registry");
    cr_assert_neq(p->ecr[0].registry, p->ecr[2].registry);
    cr_assert_str_eq(p->ecr[2].image.account, "210987654321");
    cr_assert_eq(p->n_items, 1, "e's repositoryCredentials stays an item");
    ag_secret_plan_free(p);
    ag_taskdef_free(td);

    td = parse("{\"family\":\"f\",\"executionRoleArn\":\"arn:aws:iam::123456789012:role/exec\","
               "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32},"
               "{\"name\":\"z\",\"image\":\"123456789012.dkr.ecr.mars-1.amazonaws.com/app\","
               "\"memory\":32,\"essential\":false}]}");
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ag_secret_plan_ecr(p, td, NULL, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "container z: the ECR registry") && strstr(err, "mars-1 is not a region"),
              "%s", err);
    cr_assert_eq(p->n_ecr, 0);
    ag_secret_plan_free(p);
    ag_taskdef_free(td);
}

Test(ecr_plan, embedded_mode_takes_only_the_local_registry)
{
    ag_taskdef *td = parse(
        "{\"family\":\"f\",\"executionRoleArn\":\"arn:aws:iam::123456789012:role/exec\","
        "\"containerDefinitions\":["
        "{\"name\":\"a\",\"image\":\"" HOST "/app:1\",\"memory\":32},"
        "{\"name\":\"d\",\"image\":\"127.0.0.1:5000/app\",\"memory\":32,\"essential\":false}]}");
    ag_secret_plan *p = NULL;
    char err[512] = "";
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), 0, "%s", err);
    ag_ecr_local only = LOCAL;
    only.only = true;
    cr_assert_eq(ag_secret_plan_ecr(p, td, &only, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p->n_ecr, 1, "AWS's ECR host is out of the embedded ECR's reach");
    cr_assert_eq(p->ecr[0].container, 1);
    cr_assert(p->ecr[0].image.local);
    ag_secret_plan_free(p);
    ag_taskdef_free(td);
}
