/* The agent's own path through the embedded endpoints, in one loop: the
 * project's STS client (aws/sts.h) assumes the task execution role from the
 * embedded STS with the administrator's key (as the agent does for a task),
 * then its SSM client reads with the session's credentials: the seed's
 * inline policy allows /test/database_password, the role holds nothing
 * else, and the refusal comes back as AWS words it. */
#include "iam_helpers.h"

#include <stdarg.h>
#include <time.h>
#include <uv.h>

#include "aws/client.h"
#include "aws/local/auth.h"
#include "aws/listener.h"
#include "aws/ssm.h"
#include "aws/sts.h"
#include "common/alloc.h"
#include "common/secure.h"

TestSuite(al_iam_client, .init = alt_setup, .fini = alt_teardown);

typedef struct flow {
    uv_loop_t loop;
    aw_listener *srv;
    aw_client *client;
    char admin_akid[AL_AKID_LEN + 1];
    char admin_secret[64];
    aw_sts_credentials session;
    char value[64];
    char denial[AW_ERROR_MESSAGE_MAX + 1];
    char denial_code[AW_ERROR_CODE_MAX + 1];
    int steps, closed;
    char fail[AW_ERROR_CODE_MAX + AW_ERROR_MESSAGE_MAX + 64];
} flow;

static void finish(flow *f);

static void on_denied(void *arg, const aw_error *err, aw_ssm_result *res)
{
    flow *f = arg;
    (void)res;
    if (!err)
        snprintf(f->fail, sizeof f->fail, "the other parameter was readable");
    else {
        snprintf(f->denial_code, sizeof f->denial_code, "%s", err->code);
        snprintf(f->denial, sizeof f->denial, "%s", err->message);
    }
    f->steps++;
    finish(f);
}

static void on_params(void *arg, const aw_error *err, aw_ssm_result *res)
{
    flow *f = arg;
    if (err) {
        snprintf(f->fail, sizeof f->fail, "GetParameters: %s %s", err->code, err->message);
        finish(f);
        return;
    }
    if (res->n_params == 1)
        snprintf(f->value, sizeof f->value, "%s", res->params[0].value);
    f->steps++;
    aw_sigv4_creds sc = {f->session.access_key_id, f->session.secret_access_key,
                         f->session.session_token};
    const char *names[] = {"/test/other"};
    if (aw_ssm_get_parameters(f->client, &sc, NULL, names, 1, on_denied, f) < 0) {
        snprintf(f->fail, sizeof f->fail, "second call not started");
        finish(f);
    }
}

static void on_role(void *arg, const aw_error *err, aw_sts_credentials *creds)
{
    flow *f = arg;
    if (err) {
        snprintf(f->fail, sizeof f->fail, "AssumeRole: %s %s", err->code, err->message);
        finish(f);
        return;
    }
    f->session = *creds;
    memset(creds, 0, sizeof *creds); /* taken */
    f->steps++;
    aw_sigv4_creds sc = {f->session.access_key_id, f->session.secret_access_key,
                         f->session.session_token};
    const char *names[] = {"/test/database_password"};
    if (aw_ssm_get_parameters(f->client, &sc, NULL, names, 1, on_params, f) < 0) {
        snprintf(f->fail, sizeof f->fail, "GetParameters not started");
        finish(f);
    }
}

static void on_closed(void *arg)
{
    ((flow *)arg)->closed++;
}

static void finish(flow *f)
{
    aw_client_close(f->client, on_closed, f);
    aw_listener_close(f->srv, on_closed, f);
}

static double real_now(void)
{
    return (double)time(NULL);
}

Test(al_iam_client, agent_assumes_the_role_and_reads_as_it)
{
    T.now = real_now(); /* the client signs with the real clock */
    al_authz_install(T.ctx);
    flow f;
    memset(&f, 0, sizeof f);
    char err[256];
    cr_assert_eq(al_admin_init(T.ctx, T.dir, f.admin_akid, err, sizeof err), 0, "%s", err);
    char *secret = NULL, akid[AL_AKID_LEN + 1];
    cr_assert_eq(al_admin_credentials(T.ctx, akid, &secret), 0);
    snprintf(f.admin_secret, sizeof f.admin_secret, "%s", secret);
    es_free_secret_str(secret);

    /* the store: a customer key, two parameters, the role with the seed's policy */
    const char *b = "{\"Description\":\"k\"}";
    cr_assert_eq(al_dispatch(T.ctx, "TrentService.CreateKey", ROOT, b, strlen(b), &T.out, &T.err),
                 0);
    char key[64], body[1024];
    snprintf(key, sizeof key, "%.36s", strstr(es_buf_cstr(&T.out), "\"KeyId\":\"") + 9);
    snprintf(body, sizeof body,
             "{\"Name\":\"/test/database_password\",\"Type\":\"SecureString\",\"Value\":"
             "\"Db-7c2\",\"KeyId\":\"%s\"}",
             key);
    es_buf_reset(&T.out);
    cr_assert_eq(
        al_dispatch(T.ctx, "AmazonSSM.PutParameter", ROOT, body, strlen(body), &T.out, &T.err), 0);
    b = "{\"Name\":\"/test/other\",\"Type\":\"String\",\"Value\":\"o\"}";
    es_buf_reset(&T.out);
    cr_assert_eq(al_dispatch(T.ctx, "AmazonSSM.PutParameter", ROOT, b, strlen(b), &T.out, &T.err),
                 0);
    make_role("exec", ECS_TRUST);
    qok("iam", "AttachRolePolicy", "RoleName", "exec", "PolicyArn", EXEC_POLICY_ARN, NULL);
    char pol[1024];
    snprintf(pol, sizeof pol,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
             "\"ssm:GetParameters\",\"kms:Decrypt\"],\"Resource\":[\"arn:aws:ssm:us-east-2:"
             "123456789012:parameter/test/database_password\",\"arn:aws:kms:us-east-2:"
             "123456789012:key/%s\"]}]}",
             key);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "secrets", "PolicyDocument", pol,
        NULL);

    cr_assert_eq(uv_loop_init(&f.loop), 0);
    cr_assert_eq(alt_listen(&f.loop, T.ctx, NULL, &f.srv), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", aw_listener_port(f.srv));
    aw_client_config cfg = {.region = "us-east-2", .max_attempts = 1};
    cfg.endpoint_override[AW_SVC_STS] = url;
    cfg.endpoint_override[AW_SVC_SSM] = url;
    cr_assert_eq(aw_client_create(&f.loop, &cfg, &f.client), 0);
    aw_sigv4_creds admin = {f.admin_akid, f.admin_secret, NULL};
    cr_assert_eq(aw_sts_assume_role(f.client, &admin, NULL, "arn:aws:iam::123456789012:role/exec",
                                    "task-1", 900, on_role, &f),
                 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    cr_assert_eq(f.closed, 2);
    cr_assert_eq(uv_loop_close(&f.loop), 0, "handles left open");
    es_wipe(f.admin_secret, sizeof f.admin_secret);
    cr_assert_str_empty(f.fail, "%s", f.fail);
    cr_assert_eq(f.steps, 3);
    cr_assert_str_eq(f.session.assumed_role_arn,
                     "arn:aws:sts::123456789012:assumed-role/exec/task-1");
    cr_assert_str_eq(f.value, "Db-7c2");
    cr_assert_str_eq(f.denial_code, "AccessDeniedException");
    cr_assert_str_eq(f.denial,
                     "User: arn:aws:sts::123456789012:assumed-role/exec/task-1 is not authorized "
                     "to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-2:"
                     "123456789012:parameter/test/other because no identity-based policy allows "
                     "the ssm:GetParameters action");
    aw_sts_credentials_clear(&f.session);
}

/* ---- GetParametersByPath through the agent's client ---------------------- */

typedef struct path_flow {
    uv_loop_t loop;
    aw_listener *srv;
    aw_client *client;
    int answers, closed;
    bool failed, truncated;
    char code[AW_ERROR_CODE_MAX + 1];
    size_t n;
    char names[40][64];
    char values[40][32];
} path_flow;

static void on_path_closed(void *arg)
{
    ((path_flow *)arg)->closed++;
}

static void on_path(void *arg, const aw_error *err, aw_ssm_result *res)
{
    path_flow *f = arg;
    f->answers++;
    if (err) {
        f->failed = true;
        snprintf(f->code, sizeof f->code, "%s", err->code);
    } else {
        f->n = res->n_params;
        f->truncated = res->truncated;
        for (size_t i = 0; i < res->n_params && i < 40; i++) {
            snprintf(f->names[i], sizeof f->names[i], "%s", res->params[i].name);
            snprintf(f->values[i], sizeof f->values[i], "%s", res->params[i].value);
        }
    }
    aw_client_close(f->client, on_path_closed, f);
    aw_listener_close(f->srv, on_path_closed, f);
}

static void put_param(const char *name, const char *type, const char *value)
{
    char body[512];
    snprintf(body, sizeof body, "{\"Name\":\"%s\",\"Type\":\"%s\",\"Value\":\"%s\"}", name, type,
             value);
    es_buf_reset(&T.out);
    cr_assert_eq(
        al_dispatch(T.ctx, "AmazonSSM.PutParameter", ROOT, body, strlen(body), &T.out, &T.err), 0,
        "%s", body);
}

/* One series as the administrator: path, decrypt, max_params. */
static void run_path(path_flow *f, const char *akid, const char *secret, const char *path,
                     bool decrypt, size_t max)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    cr_assert_eq(alt_listen(&f->loop, T.ctx, NULL, &f->srv), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", aw_listener_port(f->srv));
    aw_client_config cfg = {.region = "us-east-2", .max_attempts = 1};
    cfg.endpoint_override[AW_SVC_SSM] = url;
    cr_assert_eq(aw_client_create(&f->loop, &cfg, &f->client), 0);
    aw_sigv4_creds admin = {akid, secret, NULL};
    cr_assert_eq(
        aw_ssm_get_parameters_by_path(f->client, &admin, NULL, path, decrypt, max, on_path, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_assert_eq(f->closed, 2);
    cr_assert_eq(uv_loop_close(&f->loop), 0, "handles left open");
    cr_assert_eq(f->answers, 1);
}

Test(al_iam_client, parameters_by_path_page_after_page)
{
    T.now = real_now();
    al_authz_install(T.ctx);
    char akid[AL_AKID_LEN + 1], err[256];
    cr_assert_eq(al_admin_init(T.ctx, T.dir, akid, err, sizeof err), 0, "%s", err);
    char *secret = NULL, akid2[AL_AKID_LEN + 1];
    cr_assert_eq(al_admin_credentials(T.ctx, akid2, &secret), 0);
    /* 23 under /app/prod (nested, one SecureString), two beside it */
    char name[64], value[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "/app/prod/p%02d", i);
        snprintf(value, sizeof value, "v%02d", i);
        put_param(name, "String", value);
    }
    put_param("/app/prod/db/user", "String", "admin");
    put_param("/app/prod/db/pass", "SecureString", "S3cr3t");
    put_param("/app/prod/db/deep/x", "StringList", "a,b");
    put_param("/app/prodx", "String", "beside");
    put_param("/app/other/y", "String", "beside");

    path_flow f;
    run_path(&f, akid2, secret, "/app/prod", true, 100);
    cr_assert(!f.failed, "%s", f.code);
    cr_expect_eq(f.n, 23, "three pages of 10, 10 and 3 give 23, got %zu", f.n);
    cr_expect(!f.truncated);
    bool pass = false, deep = false;
    for (size_t i = 0; i < f.n && i < 40; i++) {
        cr_expect(strncmp(f.names[i], "/app/prod/", 10) == 0, "%s", f.names[i]);
        if (strcmp(f.names[i], "/app/prod/db/pass") == 0)
            pass = strcmp(f.values[i], "S3cr3t") == 0;
        if (strcmp(f.names[i], "/app/prod/db/deep/x") == 0)
            deep = true;
    }
    cr_expect(pass, "the SecureString decrypted");
    cr_expect(deep, "recursive");

    /* the trailing '/' is the same path; the bound stops with truncated set */
    run_path(&f, akid2, secret, "/app/prod/", true, 15);
    cr_assert(!f.failed, "%s", f.code);
    cr_expect_eq(f.n, 15);
    cr_expect(f.truncated);
    /* exactly as many as the bound: not truncated */
    run_path(&f, akid2, secret, "/app/prod", true, 23);
    cr_expect_eq(f.n, 23);
    cr_expect(!f.truncated);

    /* without decryption the SecureString is not its value */
    run_path(&f, akid2, secret, "/app/prod/db", false, 100);
    cr_assert(!f.failed, "%s", f.code);
    cr_expect_eq(f.n, 3);
    for (size_t i = 0; i < f.n; i++)
        cr_expect_str_neq(f.values[i], "S3cr3t");

    /* an empty path is an empty result, not an error */
    run_path(&f, akid2, secret, "/nothing/here", true, 100);
    cr_assert(!f.failed, "%s", f.code);
    cr_expect_eq(f.n, 0);
    es_free_secret_str(secret);

    /* a key that is not the store's: refused, no result */
    run_path(&f, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "/app/prod",
             true, 100);
    cr_expect(f.failed);
    cr_expect_str_neq(f.code, "");

    aw_client *c = NULL;
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    aw_client_config cfg = {.region = "us-east-2"};
    cr_assert_eq(aw_client_create(&loop, &cfg, &c), 0);
    aw_sigv4_creds k = {"a", "b", NULL};
    cr_expect_eq(aw_ssm_get_parameters_by_path(c, &k, NULL, "app", true, 10, on_path, NULL),
                 -EINVAL);
    cr_expect_eq(aw_ssm_get_parameters_by_path(c, &k, NULL, "/app", true, 0, on_path, NULL),
                 -EINVAL);
    cr_expect_eq(aw_ssm_get_parameters_by_path(c, &k, NULL, "/app", true,
                                               AW_SSM_PATH_PARAMS_MAX + 1, on_path, NULL),
                 -EINVAL);
    aw_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
