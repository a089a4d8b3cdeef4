/* SSM, Secrets Manager and STS clients, retries and batching, against
 * tests/aws_fake.py (which re-signs every request with botocore and refuses
 * a bad signature). */
#include "aws_fake.h"

#include <uv.h>

#include "aws/ecr.h"
#include "aws/secretsmanager.h"
#include "aws/ssm.h"
#include "aws/sts.h"

#define AK "AKIDTEST"
#define SK "SECRETKEYVALUE0123456789"

static fake f;
static uv_loop_t loop;
static aw_client *c;
static const aw_sigv4_creds creds = {AK, SK, NULL};

static void start_client(const aw_client_config *extra)
{
    aw_client_config cfg = {0};
    if (extra)
        cfg = *extra;
    cfg.region = "us-east-1";
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cfg.endpoint_override[i] = f.base;
    if (!cfg.base_delay_ms)
        cfg.base_delay_ms = 5;
    cr_assert_eq(aw_client_create(&loop, &cfg, &c), 0);
}

static void setup_with(const char *const *args)
{
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    const char *a[16] = {"--secret", AK "=" SK};
    int n = 2;
    for (; args && *args; args++)
        a[n++] = *args;
    a[n] = NULL;
    fake_start(&f, a);
    cr_assert_eq(uv_loop_init(&loop), 0);
}

static void setup(void)
{
    setup_with(NULL);
    start_client(NULL);
}

static void teardown(void)
{
    aw_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    cr_expect_eq(fake_stat_int(&f, "bad_signatures"), 0);
    fake_stop(&f);
    expect_no_leaks();
}

typedef struct got {
    int calls;
    aw_error err;
    bool failed;
    size_t n_params, n_invalid;
    char names[32][64];
    char values[32][96];
    char invalid[8][64];
} got;

static void on_ssm(void *arg, const aw_error *err, aw_ssm_result *r)
{
    got *g = arg;
    g->calls++;
    if (err) {
        g->failed = true;
        g->err = *err;
        return;
    }
    g->n_params = r->n_params;
    g->n_invalid = r->n_invalid;
    for (size_t i = 0; i < r->n_params && i < 32; i++) {
        snprintf(g->names[i], sizeof g->names[i], "%s", r->params[i].name);
        snprintf(g->values[i], sizeof g->values[i], "%s", r->params[i].value);
    }
    for (size_t i = 0; i < r->n_invalid && i < 8; i++)
        snprintf(g->invalid[i], sizeof g->invalid[i], "%s", r->invalid[i]);
}

TestSuite(svc, .init = setup, .fini = teardown, .timeout = 60);
/* tests that start the fake and the client themselves */
TestSuite(svcx, .fini = teardown, .timeout = 60);

Test(svc, ssm_get_parameters_valid_and_invalid)
{
    const char *names[] = {"/app/db", "plain", "missing-one"};
    got g = {0};
    cr_assert_eq(aw_ssm_get_parameters(c, &creds, NULL, names, 3, on_ssm, &g), 0);
    cr_expect_eq(g.calls, 0, "callback ran inside the call");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(g.calls, 1);
    cr_assert(!g.failed, "error %s", g.err.code);
    cr_expect_eq(g.n_params, 2);
    cr_expect_str_eq(g.names[0], "/app/db");
    cr_expect_str_eq(g.values[0], "value-of-/app/db");
    cr_expect_str_eq(g.values[1], "value-of-plain");
    cr_expect_eq(g.n_invalid, 1);
    cr_expect_str_eq(g.invalid[0], "missing-one");
    es_json *st = fake_stats(&f);
    const char *body = es_json_as_str(es_json_at(es_json_get(st, "bodies"), 0));
    cr_expect(strstr(body, "\"WithDecryption\":true"), "%s", body);
    cr_expect(strstr(body, "\"Names\":[\"/app/db\",\"plain\",\"missing-one\"]"), "%s", body);
    es_json_free(st);
    /* argument checks */
    const char *eleven[11] = {"a", "a", "a", "a", "a", "a", "a", "a", "a", "a", "a"};
    cr_expect_eq(aw_ssm_get_parameters(c, &creds, NULL, eleven, 11, on_ssm, &g), -EINVAL);
    cr_expect_eq(aw_ssm_get_parameters(c, &creds, NULL, eleven, 0, on_ssm, &g), -EINVAL);
}

Test(svc, ssm_get_parameter_not_found_not_retried)
{
    got g = {0};
    cr_assert_eq(aw_ssm_get_parameter(c, &creds, NULL, "missing-x", on_ssm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(g.failed);
    cr_expect_eq(g.err.kind, AW_ERR_SERVICE);
    cr_expect_str_eq(g.err.code, "ParameterNotFound");
    cr_expect_eq(g.err.status, 400);
    cr_expect_eq(g.err.attempts, 1);
    cr_expect(strncmp(g.err.request_id, "req-", 4) == 0);
    cr_expect_eq(fake_op_count(&f, "GetParameter"), 1);
    got g2 = {0};
    cr_assert_eq(aw_ssm_get_parameter(c, &creds, NULL, "found", on_ssm, &g2), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(!g2.failed);
    cr_expect_str_eq(g2.values[0], "value-of-found");
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

Test(svcx, ssm_batch_23_names_three_calls_in_flight_at_once)
{
    const char *args[] = {"--delay", "GetParameters=0.4", NULL};
    setup_with(args);
    start_client(NULL);
    char buf[23][16];
    const char *names[23];
    for (int i = 0; i < 23; i++) {
        snprintf(buf[i], sizeof buf[i], "/p/n%02d", i);
        names[i] = buf[i];
    }
    got g = {0};
    uint64_t t0 = uv_hrtime();
    cr_assert_eq(aw_ssm_get_parameters_batch(c, &creds, NULL, names, 23, on_ssm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    cr_assert_eq(g.calls, 1);
    cr_assert(!g.failed);
    cr_expect_eq(g.n_params, 23);
    cr_expect_eq(fake_op_count(&f, "GetParameters"), 3);
    cr_expect_eq(fake_stat_int(&f, "max_concurrent"), 3);
    cr_expect(ms < 1100, "took %lu ms: not concurrent", (unsigned long)ms);
    es_json *st = fake_stats(&f);
    const es_json *bodies = es_json_get(st, "bodies");
    size_t sizes[3];
    cr_assert_eq(es_json_len(bodies), 3);
    for (size_t i = 0; i < 3; i++) {
        const char *b = es_json_as_str(es_json_at(bodies, i));
        es_json *j = NULL;
        cr_assert_eq(es_json_parse(b, strlen(b), &es_json_default_limits, &j, NULL, 0), 0);
        sizes[i] = es_json_len(es_json_get(j, "Names"));
        es_json_free(j);
    }
    qsort(sizes, 3, sizeof *sizes, cmp_size);
    cr_expect_eq(sizes[0], 3);
    cr_expect_eq(sizes[1], 10);
    cr_expect_eq(sizes[2], 10);
    es_json_free(st);
}

typedef struct sgot {
    int calls;
    bool failed;
    aw_error err;
    char string[128];
    uint8_t bin[16];
    size_t bin_len;
    bool is_binary;
    char version_id[64];
    char stage[64];
} sgot;

static void on_sm(void *arg, const aw_error *err, aw_secret_value *v)
{
    sgot *g = arg;
    g->calls++;
    if (err) {
        g->failed = true;
        g->err = *err;
        return;
    }
    g->is_binary = v->is_binary;
    if (v->string)
        snprintf(g->string, sizeof g->string, "%s", v->string);
    if (v->binary && v->binary_len <= sizeof g->bin) {
        memcpy(g->bin, v->binary, v->binary_len);
        g->bin_len = v->binary_len;
    }
    snprintf(g->version_id, sizeof g->version_id, "%s", v->version_id ? v->version_id : "");
    snprintf(g->stage, sizeof g->stage, "%s", v->n_stages ? v->stages[0] : "");
}

Test(svc, secrets_manager_string_binary_stage_version)
{
    sgot g = {0};
    cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "db", NULL, NULL, on_sm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(!g.failed);
    cr_expect(!g.is_binary);
    cr_expect_str_eq(g.string, "{\"user\":\"u\",\"password\":\"p@ss\"}");
    cr_expect_str_eq(g.stage, "AWSCURRENT");
    sgot b = {0};
    cr_assert_eq(
        aw_sm_get_secret_value(c, &creds, "us-east-1", "bin1", "v-7", "AWSPREVIOUS", on_sm, &b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(!b.failed);
    cr_expect(b.is_binary);
    cr_expect_eq(b.bin_len, 5);
    const uint8_t want[5] = {0, 1, 2, 3, 4};
    cr_expect(memcmp(b.bin, want, 5) == 0);
    cr_expect_str_eq(b.version_id, "v-7");
    cr_expect_str_eq(b.stage, "AWSPREVIOUS");
    sgot m = {0};
    cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "missing", NULL, NULL, on_sm, &m), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(m.failed);
    cr_expect_str_eq(m.err.code, "ResourceNotFoundException");
    cr_expect_str_eq(m.err.message, "Secrets Manager can't find the specified secret.");
    cr_expect_eq(fake_op_count(&f, "GetSecretValue"), 3);
}

typedef struct egot {
    bool failed;
    aw_error err;
    char user[64], password[64], endpoint[128];
    int64_t expires_at;
} egot;

static void on_ecr(void *arg, const aw_error *err, aw_ecr_token *t)
{
    egot *g = arg;
    if (err) {
        g->failed = true;
        g->err = *err;
        return;
    }
    snprintf(g->user, sizeof g->user, "%s", t->username);
    snprintf(g->password, sizeof g->password, "%s", t->password);
    snprintf(g->endpoint, sizeof g->endpoint, "%s", t->proxy_endpoint ? t->proxy_endpoint : "");
    g->expires_at = t->expires_at;
}

/* Issue 20: ECR's GetAuthorizationToken, signed "ecr" (the fake re-signs with botocore), the
 * image's registry asked by id; AccessDenied is not retried; a bad registry id is refused
 * before any call. */
Test(svc, ecr_authorization_token)
{
    egot g = {0};
    cr_assert_eq(aw_ecr_get_authorization_token(c, &creds, "us-east-1", "123456789012", on_ecr, &g),
                 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(!g.failed, "%s %s", g.err.code, g.err.message);
    cr_expect_str_eq(g.user, "AWS");
    cr_expect_str_eq(g.password, "ecr-pass-123456789012");
    cr_expect_str_eq(g.endpoint, "https://123456789012.dkr.ecr.us-east-1.amazonaws.com");
    cr_expect_gt(g.expires_at, 1000000000);
    egot d = {0};
    cr_assert_eq(aw_ecr_get_authorization_token(c, &creds, NULL, "999999999999", on_ecr, &d), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(d.failed);
    cr_expect_str_eq(d.err.code, "AccessDeniedException");
    cr_expect_eq(d.err.attempts, 1);
    cr_expect_eq(fake_op_count(&f, "GetAuthorizationToken"), 2);
    cr_assert_eq(aw_ecr_get_authorization_token(c, &creds, NULL, "12345", on_ecr, &d), -EINVAL);
    cr_assert_eq(aw_ecr_get_authorization_token(c, &creds, NULL, "12345678901x", on_ecr, &d),
                 -EINVAL);
    cr_expect_eq(fake_op_count(&f, "GetAuthorizationToken"), 2);
}

Test(svc, throttling_and_5xx_retried_then_success)
{
    fake_post(&f, "/__script",
              "{\"GetSecretValue\":[{\"status\":400,\"body\":\"{\\\"__type\\\":"
              "\\\"ThrottlingException\\\",\\\"message\\\":\\\"Rate exceeded\\\"}\"},"
              "{\"status\":500,\"body\":\"{\\\"__type\\\":\\\"InternalServiceError\\\"}\"}]}");
    sgot g = {0};
    cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "db", NULL, NULL, on_sm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(!g.failed, "%s", g.err.code);
    cr_expect_eq(fake_op_count(&f, "GetSecretValue"), 3);
    aw_client_stats st;
    aw_client_get_stats(c, &st);
    cr_expect_eq(st.retries, 2);
    cr_expect_eq(st.retry_tokens, 500, "tokens refunded on success: %u", st.retry_tokens);
}

Test(svc, retries_stop_at_max_attempts)
{
    fake_post(&f, "/__script",
              "{\"GetSecretValue\":[{\"status\":429,\"body\":\"{}\"},"
              "{\"status\":400,\"body\":\"{\\\"__type\\\":\\\"LimitExceededException\\\"}\"},"
              "{\"status\":400,\"body\":\"{\\\"__type\\\":\\\"TooManyRequestsException\\\"}\"},"
              "{\"status\":200,\"body\":\"never reached\"}]}");
    sgot g = {0};
    cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "db", NULL, NULL, on_sm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(g.failed);
    cr_expect_str_eq(g.err.code, "TooManyRequestsException");
    cr_expect_eq(g.err.attempts, 3);
    cr_expect(aw_error_is_throttling(&g.err));
    cr_expect_eq(fake_op_count(&f, "GetSecretValue"), 3);
}

Test(svc, access_denied_and_validation_never_retried)
{
    fake_post(
        &f, "/__script",
        "{\"GetParameters\":[{\"status\":400,\"body\":\"{\\\"__type\\\":"
        "\\\"com.amazon.coral.service#AccessDeniedException\\\",\\\"Message\\\":\\\"no\\\"}\"}"
        "]}");
    const char *n[] = {"a"};
    got g = {0};
    cr_assert_eq(aw_ssm_get_parameters(c, &creds, NULL, n, 1, on_ssm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(g.failed);
    cr_expect_str_eq(g.err.code, "AccessDeniedException");
    cr_expect_str_eq(g.err.message, "no");
    cr_expect_eq(g.err.attempts, 1);
    cr_expect_eq(fake_op_count(&f, "GetParameters"), 1);
}

typedef struct cgot {
    int calls;
    bool failed;
    aw_error err;
    char akid[64], secret[64], token[64], arn[128], account[16];
    time_t exp;
} cgot;

static void on_creds(void *arg, const aw_error *err, aw_sts_credentials *cr)
{
    cgot *g = arg;
    g->calls++;
    if (err) {
        g->failed = true;
        g->err = *err;
        return;
    }
    snprintf(g->akid, sizeof g->akid, "%s", cr->access_key_id);
    snprintf(g->secret, sizeof g->secret, "%s", cr->secret_access_key);
    snprintf(g->token, sizeof g->token, "%s", cr->session_token);
    snprintf(g->arn, sizeof g->arn, "%s", cr->assumed_role_arn ? cr->assumed_role_arn : "");
    g->exp = cr->expiration;
}

static void on_ident(void *arg, const aw_error *err, aw_sts_identity *id)
{
    cgot *g = arg;
    g->calls++;
    if (err) {
        g->failed = true;
        g->err = *err;
        return;
    }
    snprintf(g->account, sizeof g->account, "%s", id->account);
    snprintf(g->arn, sizeof g->arn, "%s", id->arn);
}

Test(svc, sts_assume_role_and_caller_identity)
{
    cgot g = {0};
    cr_assert_eq(aw_sts_assume_role(c, &creds, NULL, "arn:aws:iam::123456789012:role/exec",
                                    "ecs-task-1", 900, on_creds, &g),
                 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(!g.failed, "%s", g.err.code);
    cr_expect_str_eq(g.akid, "AKSTS1");
    cr_expect_str_eq(g.secret, "secret-sts-1");
    cr_expect_str_eq(g.token, "token-sts-1");
    cr_expect_str_eq(g.arn, "arn:aws:iam::123456789012:role/exec");
    time_t now = time(NULL);
    cr_expect(g.exp > now + 3500 && g.exp < now + 3700);
    es_json *st = fake_stats(&f);
    const char *body = es_json_as_str(es_json_at(es_json_get(st, "bodies"), 0));
    cr_expect_str_eq(body, "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%"
                           "3A123456789012%3Arole%2Fexec&RoleSessionName=ecs-task-1&"
                           "DurationSeconds=900");
    es_json_free(st);

    /* the assumed credentials (with their session token) sign the next call */
    aw_sigv4_creds role = {g.akid, g.secret, g.token};
    cgot id = {0};
    cr_assert_eq(aw_sts_get_caller_identity(c, &role, NULL, on_ident, &id), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(!id.failed, "%s", id.err.code);
    cr_expect_str_eq(id.account, "123456789012");
    st = fake_stats(&f);
    cr_expect_str_eq(es_json_as_str(es_json_at(es_json_get(st, "tokens"), 1)), "token-sts-1");
    cr_expect_str_eq(es_json_as_str(es_json_at(es_json_get(st, "akids"), 1)), "AKSTS1");
    es_json_free(st);

    cr_expect_eq(aw_sts_assume_role(c, &creds, NULL, "arn:aws:iam::123456789012:user/x", "s1", 900,
                                    on_creds, &g),
                 -EINVAL);
    cr_expect_eq(aw_sts_assume_role(c, &creds, NULL, "arn:aws:iam::123456789012:role/x", "s", 900,
                                    on_creds, &g),
                 -EINVAL);
    cr_expect_eq(aw_sts_assume_role(c, &creds, NULL, "arn:aws:iam::123456789012:role/x", "s 1", 900,
                                    on_creds, &g),
                 -EINVAL);
    cr_expect_eq(aw_sts_assume_role(c, &creds, NULL, "arn:aws:iam::123456789012:role/x", "s1", 899,
                                    on_creds, &g),
                 -EINVAL);
}

Test(svc, sts_access_denied_not_retried_and_no_secret_in_error_text)
{
    cgot g = {0};
    cr_assert_eq(aw_sts_assume_role(c, &creds, NULL, "arn:aws:iam::123456789012:role/denied", "s1",
                                    0, on_creds, &g),
                 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(g.failed);
    cr_expect_eq(g.err.kind, AW_ERR_SERVICE);
    cr_expect_eq(g.err.status, 403);
    cr_expect_str_eq(g.err.code, "AccessDenied");
    cr_expect_str_eq(g.err.message, "User is not authorized to perform: sts:AssumeRole");
    cr_expect_eq(g.err.attempts, 1);
    cr_expect_eq(fake_op_count(&f, "AssumeRole"), 1);
    char text[1024];
    aw_error_format(&g.err, text, sizeof text);
    cr_expect(strstr(text, "AccessDenied"));
    cr_expect(!strstr(text, SK) && !strstr(text, AK "/"), "%s", text);
}

Test(svc, bad_signature_is_refused)
{
    aw_sigv4_creds wrong = {AK, "not-the-secret", NULL};
    got g = {0};
    const char *n[] = {"a"};
    cr_assert_eq(aw_ssm_get_parameters(c, &wrong, NULL, n, 1, on_ssm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(g.failed);
    cr_expect_str_eq(g.err.code, "InvalidSignatureException");
    cr_expect_eq(g.err.attempts, 1);
    /* the fake counted it; reset so that teardown's check holds */
    cr_expect_eq(fake_stat_int(&f, "bad_signatures"), 1);
    fake_post(&f, "/__reset", "{}");
}

Test(svcx, endpoint_with_a_path_is_signed_as_sent)
{
    setup_with(NULL);
    char url[128];
    snprintf(url, sizeof url, "%s/prefix/ssm", f.base);
    aw_client_config cfg = {.region = "us-east-1", .base_delay_ms = 5};
    cfg.endpoint_override[AW_SVC_SSM] = url;
    cr_assert_eq(aw_client_create(&loop, &cfg, &c), 0);
    got g = {0};
    cr_assert_eq(aw_ssm_get_parameter(c, &creds, NULL, "p", on_ssm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(!g.failed, "%s", g.err.code);
    cr_expect_str_eq(g.values[0], "value-of-p");
}

Test(svcx, timeout_retried_then_reported)
{
    setup_with(NULL);
    aw_client_config cfg = {.timeout_ms = 300, .max_attempts = 2};
    start_client(&cfg);
    fake_post(&f, "/__script",
              "{\"GetParameter\":[{\"delay\":3,\"body\":\"{}\"},{\"delay\":3,\"body\":\"{}\"}]}");
    got g = {0};
    uint64_t t0 = uv_hrtime();
    cr_assert_eq(aw_ssm_get_parameter(c, &creds, NULL, "slow", on_ssm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    cr_assert(g.failed);
    cr_expect_eq(g.err.kind, AW_ERR_TRANSPORT);
    cr_expect_eq(g.err.http_err, AW_HTTP_E_TIMEOUT);
    cr_expect_eq(g.err.attempts, 2);
    cr_expect(ms >= 550 && ms < 2500, "took %lu ms", (unsigned long)ms);
    cr_expect_eq(fake_op_count(&f, "GetParameter"), 2);
}

Test(svcx, oversize_answer_rejected_not_retried)
{
    setup_with(NULL);
    aw_client_config cfg = {.max_body = 100};
    start_client(&cfg);
    sgot g = {0};
    cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "db", NULL, NULL, on_sm, &g), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(g.failed);
    cr_expect_eq(g.err.kind, AW_ERR_TRANSPORT);
    cr_expect_eq(g.err.http_err, AW_HTTP_E_BODY_TOO_BIG);
    cr_expect_eq(g.err.attempts, 1);
    cr_expect_eq(fake_op_count(&f, "GetSecretValue"), 1);
}

Test(svcx, retry_budget_runs_out)
{
    setup_with(NULL);
    aw_client_config cfg = {.retry_tokens = 12, .max_attempts = 3};
    start_client(&cfg);
    es_buf script;
    es_buf_init(&script, 4096);
    es_buf_append_str(&script, "{\"GetSecretValue\":[");
    for (int i = 0; i < 9; i++)
        es_buf_printf(&script, "%s{\"status\":503,\"body\":\"{}\"}", i ? "," : "");
    es_buf_append_str(&script, "]}");
    fake_post(&f, "/__script", es_buf_cstr(&script));
    es_buf_free(&script);
    /* 3 calls: the budget (12 tokens, 5 a retry) pays for 2 retries only */
    sgot g[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "db", NULL, NULL, on_sm, &g[i]), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert(g[i].failed);
    }
    aw_client_stats st;
    aw_client_get_stats(c, &st);
    cr_expect_eq(st.retries, 2);
    cr_expect_eq(st.retry_budget_exhausted, 2);
    cr_expect_eq(fake_op_count(&f, "GetSecretValue"), 5);
}

static void on_cancel(void *arg, const aw_error *err, aw_secret_value *v)
{
    (void)v;
    sgot *g = arg;
    g->calls++;
    g->failed = err != NULL;
    if (err)
        g->err = *err;
}

Test(svc, close_cancels_calls)
{
    fake_post(&f, "/__script", "{\"GetSecretValue\":[{\"delay\":3,\"body\":\"{}\"}]}");
    sgot g1 = {0}, g2 = {0};
    cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "db", NULL, NULL, on_cancel, &g1), 0);
    /* let the first go out */
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "db2", NULL, NULL, on_cancel, &g2), 0);
    aw_client_close(c, NULL, NULL);
    c = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(g1.calls, 1);
    cr_expect_eq(g1.err.kind, AW_ERR_CANCELED);
    cr_expect_eq(g2.calls, 1);
    cr_expect_eq(g2.err.kind, AW_ERR_CANCELED);
}

static void close_client_from_callback(void *arg, const aw_error *err, aw_ssm_result *r)
{
    on_ssm(arg, err, r);
    aw_client_close(c, NULL, NULL);
    c = NULL;
}

Test(svc, close_from_a_callback_with_calls_in_flight_and_waiting)
{
    /* one slow call in flight, one waiting for a retry, one fast whose
     * callback closes the client */
    /* GetParameters answers 503 ten times; with 10 attempts and a 5 s base
     * delay it cannot run out of attempts before the close */
    es_buf sc;
    es_buf_init(&sc, 4096);
    es_buf_append_str(&sc, "{\"GetSecretValue\":[{\"delay\":3,\"body\":\"{}\"}],"
                           "\"GetParameters\":[");
    for (int i = 0; i < 10; i++)
        es_buf_printf(&sc, "%s{\"status\":503,\"body\":\"{}\"}", i ? "," : "");
    es_buf_append_str(&sc, "]}");
    fake_post(&f, "/__script", es_buf_cstr(&sc));
    es_buf_free(&sc);
    aw_client_close(c, NULL, NULL);
    aw_client_config cfg = {.region = "us-east-1", .base_delay_ms = 5000, .max_attempts = 10};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cfg.endpoint_override[i] = f.base;
    cr_assert_eq(aw_client_create(&loop, &cfg, &c), 0);
    sgot slow = {0};
    got retrying = {0}, fast = {0};
    const char *n[] = {"a"};
    cr_assert_eq(aw_sm_get_secret_value(c, &creds, NULL, "db", NULL, NULL, on_cancel, &slow), 0);
    cr_assert_eq(aw_ssm_get_parameters(c, &creds, NULL, n, 1, on_ssm, &retrying), 0);
    /* let both go out and the 503 come back */
    for (int i = 0; i < 50 && fake_op_count(&f, "GetParameters") < 1; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    uint64_t t0 = uv_hrtime();
    while ((uv_hrtime() - t0) < 300000000ull)
        uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(aw_ssm_get_parameter(c, &creds, NULL, "quick", close_client_from_callback, &fast),
                 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(fast.calls, 1);
    cr_expect(!fast.failed);
    cr_expect_eq(slow.calls, 1);
    cr_expect_eq(slow.err.kind, AW_ERR_CANCELED);
    cr_expect_eq(retrying.calls, 1);
    cr_expect_eq(retrying.err.kind, AW_ERR_CANCELED);
}
