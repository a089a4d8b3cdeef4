/* Credential providers against tests/aws_fake.py: static, environment,
 * shared files, container endpoint, IMDSv2, expiry refresh, AssumeRole
 * cache and coalescing. */
#include "aws_fake.h"

#include <errno.h>
#include <uv.h>

#include "aws/credentials.h"

#define AK "AKIDHOST"
#define SK "HOSTSECRETKEY0123"

static fake f;
static uv_loop_t loop;
static aw_client *c;
static aw_creds *p;

typedef struct cg {
    int calls;
    bool failed;
    aw_error err;
    char akid[64], secret[64], token[64], source[32];
    time_t exp;
} cg;

static void on_creds(void *arg, const aw_error *err, const aw_credentials *cr)
{
    cg *g = arg;
    g->calls++;
    if (err) {
        g->failed = true;
        g->err = *err;
        return;
    }
    snprintf(g->akid, sizeof g->akid, "%s", cr->access_key_id);
    snprintf(g->secret, sizeof g->secret, "%s", cr->secret_access_key);
    snprintf(g->token, sizeof g->token, "%s", cr->session_token ? cr->session_token : "");
    snprintf(g->source, sizeof g->source, "%s", cr->source);
    g->exp = cr->expiration;
}

static void start(const char *const *fake_args, aw_creds_config *cfg)
{
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    const char *a[16] = {"--secret", AK "=" SK};
    int n = 2;
    for (; fake_args && *fake_args; fake_args++)
        a[n++] = *fake_args;
    a[n] = NULL;
    fake_start(&f, a);
    cr_assert_eq(uv_loop_init(&loop), 0);
    aw_client_config cc = {.region = "us-east-1", .base_delay_ms = 5};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = f.base;
    cr_assert_eq(aw_client_create(&loop, &cc, &c), 0);
    cr_assert_eq(aw_creds_create(c, cfg, &p), 0);
}

static void teardown(void)
{
    aw_creds_close(p, NULL, NULL);
    aw_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    cr_expect_eq(fake_stat_int(&f, "bad_signatures"), 0);
    fake_stop(&f);
    expect_no_leaks();
}

static void get(cg *g)
{
    cr_assert_eq(aw_creds_get(p, on_creds, g), 0);
    cr_expect_eq(g->calls, 0, "answered inside the call");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(g->calls, 1);
}

static void on_sleep(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, NULL);
}

static void sleep_ms(uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_sleep, ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
}

TestSuite(creds, .fini = teardown, .timeout = 60);

Test(creds, static_keys_first)
{
    char *env[] = {"AWS_ACCESS_KEY_ID=ENVKEY", "AWS_SECRET_ACCESS_KEY=envsecret", NULL};
    aw_creds_config cfg = {.access_key_id = "STATICKEY",
                           .secret_access_key = "staticsecret",
                           .session_token = "stok",
                           .envp = env};
    start(NULL, &cfg);
    cg g = {0};
    get(&g);
    cr_assert(!g.failed);
    cr_expect_str_eq(g.akid, "STATICKEY");
    cr_expect_str_eq(g.token, "stok");
    cr_expect_str_eq(g.source, "static");
    aw_creds_config half = {.access_key_id = "X"};
    aw_creds *q = NULL;
    cr_expect_eq(aw_creds_create(c, &half, &q), -EINVAL);
}

Test(creds, environment)
{
    char *env[] = {"AWS_ACCESS_KEY_ID=ENVKEY", "AWS_SECRET_ACCESS_KEY=envsecret",
                   "AWS_SESSION_TOKEN=envtoken", "AWS_EC2_METADATA_DISABLED=true", NULL};
    aw_creds_config cfg = {.envp = env};
    start(NULL, &cfg);
    cg g = {0};
    get(&g);
    cr_assert(!g.failed);
    cr_expect_str_eq(g.akid, "ENVKEY");
    cr_expect_str_eq(g.secret, "envsecret");
    cr_expect_str_eq(g.token, "envtoken");
    cr_expect_str_eq(g.source, "environment");
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    cr_assert(fp);
    fputs(text, fp);
    fclose(fp);
}

Test(creds, shared_files_and_profiles)
{
    char dir[] = "/tmp/aw-creds-XXXXXX";
    cr_assert(mkdtemp(dir));
    char cred[128], conf[128], e1[160], e2[160];
    snprintf(cred, sizeof cred, "%s/credentials", dir);
    snprintf(conf, sizeof conf, "%s/config", dir);
    write_file(cred, "# comment\n[default]\naws_access_key_id = DEFKEY\naws_secret_access_key = "
                     "defsecret\n\n[prod]\naws_access_key_id=PRODKEY\r\naws_secret_access_key="
                     "prodsecret\r\naws_session_token = prodtoken\n");
    write_file(conf, "[default]\nregion = eu-west-1\n[profile cfgonly]\naws_access_key_id = "
                     "CFGKEY\naws_secret_access_key = cfgsecret\n");
    snprintf(e1, sizeof e1, "AWS_SHARED_CREDENTIALS_FILE=%s", cred);
    snprintf(e2, sizeof e2, "AWS_CONFIG_FILE=%s", conf);
    char *env[] = {e1, e2, "AWS_PROFILE=prod", "AWS_EC2_METADATA_DISABLED=true", NULL};
    aw_creds_config cfg = {.envp = env};
    start(NULL, &cfg);
    cg g = {0};
    get(&g);
    cr_assert(!g.failed, "%s", g.err.message);
    cr_expect_str_eq(g.akid, "PRODKEY");
    cr_expect_str_eq(g.secret, "prodsecret");
    cr_expect_str_eq(g.token, "prodtoken");
    cr_expect_str_eq(g.source, "shared-file");
    /* a profile only in the config file */
    aw_creds *q;
    char *env2[] = {e1, e2, "AWS_PROFILE=cfgonly", "AWS_EC2_METADATA_DISABLED=true", NULL};
    aw_creds_config cfg2 = {.envp = env2};
    cr_assert_eq(aw_creds_create(c, &cfg2, &q), 0);
    aw_creds *keep = p;
    p = q;
    cg g2 = {0};
    get(&g2);
    cr_expect_str_eq(g2.akid, "CFGKEY");
    aw_creds_close(q, NULL, NULL);
    p = keep;
    /* an unknown profile: nothing found, IMDS disabled */
    char *env3[] = {e1, e2, "AWS_PROFILE=nope", "AWS_EC2_METADATA_DISABLED=true", NULL};
    aw_creds_config cfg3 = {.envp = env3};
    cr_assert_eq(aw_creds_create(c, &cfg3, &q), 0);
    p = q;
    cg g3 = {0};
    get(&g3);
    cr_expect(g3.failed);
    cr_expect_str_eq(g3.err.code, "NoCredentialProviders");
    aw_creds_close(q, NULL, NULL);
    p = keep;
    unlink(cred);
    unlink(conf);
    rmdir(dir);
}

Test(creds_ini, parser_bad_input)
{
    aw_credentials o = {0};
    const char *t = "[a]\naws_access_key_id=K\n";
    cr_expect_eq(aw_creds_parse_ini(t, strlen(t), "a", 0, &o), -ENOENT); /* no secret */
    t = "[a\naws_access_key_id=K\naws_secret_access_key=S\n";
    cr_expect_eq(aw_creds_parse_ini(t, strlen(t), "a", 0, &o), -ENOENT);
    t = "[profile a]\naws_access_key_id=K\naws_secret_access_key=S\n";
    cr_expect_eq(aw_creds_parse_ini(t, strlen(t), "a", 0, &o), -ENOENT); /* credentials style */
    cr_assert_eq(aw_creds_parse_ini(t, strlen(t), "a", 1, &o), 0);
    cr_expect_str_eq(o.access_key_id, "K");
    aw_credentials_clear(&o);
    es_buf b;
    es_buf_init(&b, 1 << 22);
    es_buf_printf(&b, "[a]\naws_access_key_id=%0*d\n", AW_CREDS_LINE_MAX, 0);
    cr_expect_eq(aw_creds_parse_ini(b.data, b.len, "a", 0, &o), -EMSGSIZE);
    cr_expect_eq(aw_creds_parse_ini(b.data, AW_CREDS_FILE_MAX + 1, "a", 0, &o), -EMSGSIZE);
    es_buf_free(&b);
}

Test(creds, container_endpoint_with_token)
{
    const char *fa[] = {"--container-token", "Bearer tok", NULL};
    char full[128];
    setenv("no_proxy", "127.0.0.1", 1);
    /* the fake's port is known after start: create the provider after */
    start(fa, &(aw_creds_config){.access_key_id = NULL});
    aw_creds_close(p, NULL, NULL);
    snprintf(full, sizeof full, "AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", f.base);
    char *env[] = {full, "AWS_CONTAINER_AUTHORIZATION_TOKEN=Bearer tok", NULL};
    aw_creds_config cfg = {.envp = env};
    cr_assert_eq(aw_creds_create(c, &cfg, &p), 0);
    cg g = {0};
    get(&g);
    cr_assert(!g.failed, "%s %s", g.err.code, g.err.message);
    cr_expect_str_eq(g.akid, "AKCONTAINER1");
    cr_expect_str_eq(g.token, "token-container-1");
    cr_expect_str_eq(g.source, "container");
    cr_expect(g.exp > time(NULL) + 3000);

    aw_creds *q;
    /* the token from a file (trailing newline dropped) wins over the variable */
    char tf[] = "/tmp/aw-token-XXXXXX";
    int fd = mkstemp(tf);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "Bearer tok\n", 11), 11);
    close(fd);
    char tfe[96];
    snprintf(tfe, sizeof tfe, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s", tf);
    char *fenv[] = {full, tfe, "AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong", NULL};
    aw_creds_config cf = {.envp = fenv};
    cr_assert_eq(aw_creds_create(c, &cf, &q), 0);
    aw_creds *keep0 = p;
    p = q;
    cg gf = {0};
    get(&gf);
    cr_expect(!gf.failed, "%s %s", gf.err.code, gf.err.message);
    cr_expect_str_eq(gf.akid, "AKCONTAINER2");
    aw_creds_close(q, NULL, NULL);
    p = keep0;
    unlink(tf);

    char *bad[] = {full, "AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong", NULL};
    aw_creds_config cb = {.envp = bad};
    cr_assert_eq(aw_creds_create(c, &cb, &q), 0);
    aw_creds *keep = p;
    p = q;
    cg g2 = {0};
    get(&g2);
    cr_expect(g2.failed);
    cr_expect_str_eq(g2.err.code, "ContainerCredentialsUnavailable");
    cr_expect_str_eq(g2.err.message, "HTTP 401");
    aw_creds_close(q, NULL, NULL);
    const char *remote_urls[] = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://198.51.100.1/creds",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.evil.example/creds",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1.evil.example/creds",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://localhost.evil.example/creds",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.2@evil.example/creds",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI=ftp://127.0.0.1/creds",
    };
    for (size_t i = 0; i < sizeof remote_urls / sizeof *remote_urls; i++) {
        char *remote[] = {(char *)remote_urls[i], NULL};
        aw_creds_config cr = {.envp = remote};
        cr_assert_eq(aw_creds_create(c, &cr, &q), 0);
        p = q;
        cg g3 = {0};
        get(&g3);
        cr_expect(g3.failed);
        cr_expect_str_eq(g3.err.code, "InvalidContainerCredentialsUri", "%s", remote_urls[i]);
        aw_creds_close(q, NULL, NULL);
    }
    p = keep;
}

static void imds_env(char *buf, size_t n)
{
    snprintf(buf, n, "AWS_EC2_METADATA_SERVICE_ENDPOINT=%s", f.base);
}

static void on_identity(void *arg, const aw_error *err, const char *region, const char *account)
{
    char *out = arg;
    if (err)
        snprintf(out, 64, "error %.50s", err->code);
    else
        snprintf(out, 64, "%s %s", region, account);
}

Test(creds, imds_v2_and_coalesced_host_fetch)
{
    start(NULL, &(aw_creds_config){0});
    aw_creds_close(p, NULL, NULL);
    char e[128];
    imds_env(e, sizeof e);
    char *env[] = {e, NULL};
    aw_creds_config cfg = {.envp = env};
    cr_assert_eq(aw_creds_create(c, &cfg, &p), 0);
    cg g[5] = {{0}};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(aw_creds_get(p, on_creds, &g[i]), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(g[i].calls, 1);
        cr_assert(!g[i].failed, "%s %s", g[i].err.code, g[i].err.message);
        cr_expect_str_eq(g[i].akid, "AKIMDS1");
        cr_expect_str_eq(g[i].source, "imds");
    }
    cr_expect_eq(fake_stat_int(&f, "imds_tokens"), 1);
    cr_expect_eq(fake_op_count(&f, "creds-imds"), 1);
    char id[64] = "";
    cr_assert_eq(aw_creds_imds_identity(p, on_identity, id), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_str_eq(id, "eu-west-3 123456789012");

    aw_creds *q;
    char *off[] = {e, "AWS_EC2_METADATA_DISABLED=true", NULL};
    aw_creds_config co = {.envp = off};
    cr_assert_eq(aw_creds_create(c, &co, &q), 0);
    aw_creds *keep = p;
    p = q;
    cg d = {0};
    get(&d);
    cr_expect(d.failed);
    cr_expect_str_eq(d.err.code, "NoCredentialProviders");
    cr_expect_eq(aw_creds_imds_identity(q, on_identity, id), -EPERM);
    aw_creds_close(q, NULL, NULL);
    p = keep;
}

Test(creds, imds_unreachable_times_out_quickly)
{
    start(NULL, &(aw_creds_config){0});
    aw_creds_close(p, NULL, NULL);
    /* a fake that never answers: the /stall path as the IMDS base */
    char e[128];
    snprintf(e, sizeof e, "AWS_EC2_METADATA_SERVICE_ENDPOINT=%s/stall?", f.base);
    char *env[] = {e, NULL};
    aw_creds_config cfg = {.envp = env, .imds_timeout_ms = 300};
    cr_assert_eq(aw_creds_create(c, &cfg, &p), 0);
    cg g = {0};
    uint64_t t0 = uv_hrtime();
    get(&g);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    cr_expect(g.failed);
    cr_expect(ms < 2000, "took %lu ms", (unsigned long)ms);
}

Test(creds, expiring_credentials_refreshed_before_expiry)
{
    const char *fa[] = {"--expiry", "4", NULL};
    start(fa, &(aw_creds_config){0});
    aw_creds_close(p, NULL, NULL);
    char full[128];
    snprintf(full, sizeof full, "AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", f.base);
    char *env[] = {full, NULL};
    aw_creds_config cfg = {.envp = env, .refresh_before_s = 2};
    cr_assert_eq(aw_creds_create(c, &cfg, &p), 0);
    cg a = {0}, b = {0}, d = {0};
    get(&a);
    get(&b);
    cr_expect_str_eq(a.akid, "AKCONTAINER1");
    cr_expect_str_eq(b.akid, "AKCONTAINER1");
    cr_expect_eq(fake_op_count(&f, "creds-container"), 1);
    sleep_ms(2600); /* now inside the refresh window (expiry 4 s, refresh 2 s before) */
    get(&d);
    cr_expect_str_eq(d.akid, "AKCONTAINER2");
    cr_expect_eq(fake_op_count(&f, "creds-container"), 2);
}

Test(creds, failed_refresh_keeps_serving_unexpired_credentials)
{
    const char *fa[] = {"--expiry", "5", NULL};
    start(fa, &(aw_creds_config){0});
    aw_creds_close(p, NULL, NULL);
    char full[128];
    snprintf(full, sizeof full, "AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", f.base);
    char *env[] = {full, NULL};
    aw_creds_config cfg = {.envp = env, .refresh_before_s = 3};
    cr_assert_eq(aw_creds_create(c, &cfg, &p), 0);
    cg a = {0}, b = {0}, d = {0};
    get(&a);
    cr_expect_str_eq(a.akid, "AKCONTAINER1");
    fake_post(&f, "/__script",
              "{\"container\":[{\"status\":500,\"body\":\"down\"},"
              "{\"status\":500,\"body\":\"down\"},{\"status\":500,\"body\":\"down\"}]}");
    sleep_ms(2200); /* inside the refresh window, not expired */
    get(&b);
    cr_expect(!b.failed, "%s", b.err.code);
    cr_expect_str_eq(b.akid, "AKCONTAINER1");
    cr_expect_eq(fake_op_count(&f, "container"), 2, "the refresh was tried");
    sleep_ms(3500); /* expired now: the failure shows */
    get(&d);
    cr_expect(d.failed);
    cr_expect_str_eq(d.err.code, "ContainerCredentialsUnavailable");
}

#define ROLE "arn:aws:iam::123456789012:role/exec"

Test(creds, assume_role_coalesced_and_cached)
{
    aw_creds_config cfg = {.access_key_id = AK, .secret_access_key = SK};
    start(NULL, &cfg);
    cg g[10] = {{0}};
    for (int i = 0; i < 10; i++)
        cr_assert_eq(aw_creds_assume_role(p, ROLE, on_creds, &g[i]), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(g[i].calls, 1);
        cr_assert(!g[i].failed, "%s", g[i].err.code);
        cr_expect_str_eq(g[i].akid, "AKSTS1");
        cr_expect_str_eq(g[i].token, "token-sts-1");
        cr_expect_str_eq(g[i].source, "assume-role");
    }
    cr_expect_eq(fake_op_count(&f, "AssumeRole"), 1);
    /* cached */
    cg again = {0};
    cr_assert_eq(aw_creds_assume_role(p, ROLE, on_creds, &again), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_str_eq(again.akid, "AKSTS1");
    cr_expect_eq(fake_op_count(&f, "AssumeRole"), 1);
    /* another role is another call */
    cg other = {0};
    cr_assert_eq(aw_creds_assume_role(p, "arn:aws:iam::123456789012:role/other", on_creds, &other),
                 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_str_eq(other.akid, "AKSTS2");
    cr_expect_eq(fake_op_count(&f, "AssumeRole"), 2);
    /* the STS calls were signed with the host's keys */
    es_json *st = fake_stats(&f);
    cr_expect_str_eq(es_json_as_str(es_json_at(es_json_get(st, "akids"), 0)), AK);
    es_json_free(st);
    aw_creds_stats cs;
    aw_creds_get_stats(p, &cs);
    cr_expect_eq(cs.role_fetches, 2);
    cr_expect_eq(cs.coalesced, 9);
    cr_expect_eq(aw_creds_assume_role(p, "arn:aws:iam::123456789012:user/x", on_creds, &other),
                 -EINVAL);
}

Test(creds, assume_role_refreshed_before_expiry)
{
    const char *fa[] = {"--expiry", "4", NULL};
    aw_creds_config cfg = {.access_key_id = AK, .secret_access_key = SK, .refresh_before_s = 2};
    start(fa, &cfg);
    cg a = {0}, b = {0};
    cr_assert_eq(aw_creds_assume_role(p, ROLE, on_creds, &a), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_str_eq(a.akid, "AKSTS1");
    sleep_ms(2600);
    cr_assert_eq(aw_creds_assume_role(p, ROLE, on_creds, &b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_str_eq(b.akid, "AKSTS2");
    cr_expect_eq(fake_op_count(&f, "AssumeRole"), 2);
}

Test(creds, assume_role_failed_refresh_keeps_unexpired_credentials)
{
    const char *fa[] = {"--expiry", "5", NULL};
    aw_creds_config cfg = {.access_key_id = AK, .secret_access_key = SK, .refresh_before_s = 3};
    start(fa, &cfg);
    cg a = {0}, b = {0};
    cr_assert_eq(aw_creds_assume_role(p, ROLE, on_creds, &a), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_str_eq(a.akid, "AKSTS1");
    fake_post(&f, "/__script",
              "{\"AssumeRole\":[{\"status\":403,\"content_type\":\"text/xml\",\"body\":"
              "\"<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error>"
              "</ErrorResponse>\"}]}");
    sleep_ms(2200);
    cr_assert_eq(aw_creds_assume_role(p, ROLE, on_creds, &b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect(!b.failed, "%s", b.err.code);
    cr_expect_str_eq(b.akid, "AKSTS1");
    cr_expect_eq(fake_op_count(&f, "AssumeRole"), 2, "the refresh was tried");
}

Test(creds, assume_role_denied_goes_to_every_waiter_and_is_not_cached)
{
    aw_creds_config cfg = {.access_key_id = AK, .secret_access_key = SK};
    start(NULL, &cfg);
    cg g[3] = {{0}};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(
            aw_creds_assume_role(p, "arn:aws:iam::123456789012:role/denied", on_creds, &g[i]), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 3; i++) {
        cr_expect(g[i].failed);
        cr_expect_str_eq(g[i].err.code, "AccessDenied");
    }
    cr_expect_eq(fake_op_count(&f, "AssumeRole"), 1);
    cg again = {0};
    cr_assert_eq(aw_creds_assume_role(p, "arn:aws:iam::123456789012:role/denied", on_creds, &again),
                 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect(again.failed);
    cr_expect_eq(fake_op_count(&f, "AssumeRole"), 2);
}

Test(creds, close_with_asks_pending)
{
    aw_creds_config cfg = {.access_key_id = AK, .secret_access_key = SK};
    start(NULL, &cfg);
    fake_post(&f, "/__script", "{\"AssumeRole\":[{\"delay\":3,\"body\":\"x\"}]}");
    cg g = {0}, h = {0};
    cr_assert_eq(aw_creds_assume_role(p, ROLE, on_creds, &g), 0);
    for (int i = 0; i < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(aw_creds_get(p, on_creds, &h), 0);
    aw_creds_close(p, NULL, NULL);
    aw_client_close(c, NULL, NULL);
    p = NULL;
    c = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(g.calls, 1);
    cr_expect(g.failed);
    cr_expect_eq(h.calls, 1);
    cr_expect(h.failed);
}
