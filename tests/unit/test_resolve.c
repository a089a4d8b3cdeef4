/* Secret resolution for a whole task definition, against tests/aws_fake.py:
 * planning (dedupe, batches of 10, one GetSecretValue per distinct secret),
 * the execution role assumed once, json-key extraction, and failures that
 * hand back no value at all. */
#include "aws_fake.h"

#include <uv.h>

#include "agent/secrets/resolve.h"

#define AK "AKIDTEST"
#define SK "SECRETKEYVALUE0123456789"

static fake f;
static uv_loop_t loop;
static aw_client *c;
static aw_creds *creds;
static ag_resolver *r;
static const uint8_t fp_key[32] = {1, 2, 3};

static void setup(void)
{
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    const char *a[] = {"--secret", AK "=" SK, NULL};
    fake_start(&f, a);
    cr_assert_eq(uv_loop_init(&loop), 0);
    aw_client_config cc = {.region = "us-east-1", .base_delay_ms = 5};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = f.base;
    cr_assert_eq(aw_client_create(&loop, &cc, &c), 0);
    aw_creds_config pc = {.access_key_id = AK, .secret_access_key = SK};
    cr_assert_eq(aw_creds_create(c, &pc, &creds), 0);
    ag_resolver_config rc = {.client = c,
                             .creds = creds,
                             .region = "us-east-1",
                             .fp_key = fp_key,
                             .fp_key_len = sizeof fp_key};
    cr_assert_eq(ag_resolver_create(&rc, &r), 0);
}

static void teardown(void)
{
    aw_creds_close(creds, NULL, NULL);
    aw_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_resolver_free(r);
    cr_expect_eq(uv_loop_close(&loop), 0);
    cr_expect_eq(fake_stat_int(&f, "bad_signatures"), 0);
    fake_stop(&f);
    expect_no_leaks();
}

TestSuite(resolve, .init = setup, .fini = teardown, .timeout = 60);

typedef struct outcome {
    int calls;
    ag_resolution *res;
    char reason[AG_REASON_BUF];
} outcome;

static void on_done(void *arg, ag_resolution *res, const char *reason)
{
    outcome *o = arg;
    o->calls++;
    o->res = res;
    if (reason)
        snprintf(o->reason, sizeof o->reason, "%s", reason);
}

static ag_taskdef *td_parse(const char *json)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    int rc = ag_taskdef_parse(json, strlen(json), &ctx, &td, &e);
    cr_assert_eq(rc, 0, "task definition refused: %s", e.message);
    return td;
}

static void run(ag_taskdef *td, outcome *o)
{
    memset(o, 0, sizeof *o);
    cr_assert_eq(ag_resolve_start(r, td, on_done, o), 0);
    cr_assert_eq(o->calls, 0, "the callback never runs inside the start call");
    while (o->calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(o->calls, 1);
}

static const ag_resolved_secret *find(const ag_resolution *res, size_t container, const char *name)
{
    for (size_t i = 0; i < res->n; i++)
        if (res->items[i].container == container && strcmp(res->items[i].name, name) == 0)
            return &res->items[i];
    return NULL;
}

#define ROLE "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"

Test(resolve, plan_dedupes_batches_and_extracts)
{
    /* container a: 12 distinct SSM names; container b: two of the same
     * names again, a json-key and a whole secret, and a log secret option */
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_buf_printf(&b, "{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\","
                      "\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"busybox\","
                      "\"secrets\":[");
    for (int i = 0; i < 12; i++)
        es_buf_printf(&b, "%s{\"name\":\"S%d\",\"valueFrom\":\"/app/p%d\"}", i ? "," : "", i, i);
    es_buf_printf(&b, "]},{\"name\":\"b\",\"image\":\"busybox\",\"essential\":false,\"secrets\":["
                      "{\"name\":\"DUP\",\"valueFrom\":\"/app/p3\"},"
                      "{\"name\":\"DUP_ARN\",\"valueFrom\":"
                      "\"arn:aws:ssm:us-east-1:123456789012:parameter/app/p4\"},"
                      "{\"name\":\"PW\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:"
                      "123456789012:secret:db-AbCdEf:password::\"},"
                      "{\"name\":\"WHOLE\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:"
                      "123456789012:secret:db-AbCdEf\"}],"
                      "\"logConfiguration\":{\"logDriver\":\"splunk\",\"secretOptions\":["
                      "{\"name\":\"splunk-token\",\"valueFrom\":\"/app/p0\"}]}}]}");
    ag_taskdef *td = td_parse(b.data);
    es_buf_free(&b);
    outcome o;
    run(td, &o);
    cr_assert_not_null(o.res, "failed: %s", o.reason);
    cr_assert_eq(o.res->n, 12 + 5);
    const ag_resolved_secret *s = find(o.res, 0, "S7");
    cr_assert_str_eq(s->value, "value-of-/app/p7");
    cr_assert_str_eq(s->version, "1");
    cr_assert_str_eq(s->source_arn, "arn:aws:ssm:us-east-1:123456789012:parameter/app/p7");
    cr_assert_eq(strncmp(s->fingerprint, "hmac-sha256:", 12), 0);
    cr_assert_str_eq(find(o.res, 1, "DUP")->value, "value-of-/app/p3");
    cr_assert_str_eq(find(o.res, 1, "DUP_ARN")->value, "value-of-/app/p4");
    cr_assert_str_eq(find(o.res, 1, "PW")->value, "p@ss");
    cr_assert_str_eq(find(o.res, 1, "WHOLE")->value, "{\"user\":\"u\",\"password\":\"p@ss\"}");
    const ag_resolved_secret *tok = find(o.res, 1, "splunk-token");
    cr_assert_eq(tok->target, AG_SECRET_LOG);
    cr_assert_str_eq(tok->value, "value-of-/app/p0");
    cr_assert_str_eq(tok->fingerprint, find(o.res, 0, "S0")->fingerprint,
                     "equal values, equal fingerprints");
    cr_assert_str_neq(find(o.res, 0, "S1")->fingerprint, find(o.res, 0, "S0")->fingerprint);

    /* the minimum of backend calls: 12 distinct names -> 2 GetParameters,
     * one distinct secret -> 1 GetSecretValue, the role assumed once */
    cr_assert_eq(fake_op_count(&f, "GetParameters"), 2);
    cr_assert_eq(fake_op_count(&f, "GetSecretValue"), 1);
    cr_assert_eq(fake_op_count(&f, "AssumeRole"), 1);
    ag_resolver_stats st;
    ag_resolver_get_stats(r, &st);
    cr_assert_eq(st.ssm_calls, 2);
    cr_assert_eq(st.ssm_names, 12);

    ag_secret_value views[32];
    cr_assert_eq(ag_resolution_values(o.res, 1, views, 32), 5);
    ag_resolution_free(o.res);

    /* a second task: the role's credentials come from the cache */
    run(td, &o);
    cr_assert_not_null(o.res);
    cr_assert_eq(fake_op_count(&f, "AssumeRole"), 1);
    ag_resolution_free(o.res);
    ag_taskdef_free(td);
}

Test(resolve, invalid_parameters_fail_the_whole_task_naming_them)
{
    ag_taskdef *td =
        td_parse("{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":[{"
                 "\"name\":\"a\",\"image\":\"busybox\",\"secrets\":["
                 "{\"name\":\"OK\",\"valueFrom\":\"/app/ok\"},"
                 "{\"name\":\"GONE\",\"valueFrom\":\"missing-param\"}]}]}");
    outcome o;
    run(td, &o);
    cr_assert_null(o.res, "no value is handed over when one secret fails");
    cr_assert_not_null(strstr(o.reason, "ResourceInitializationError: unable to pull secrets"),
                       "%s", o.reason);
    cr_assert_not_null(strstr(o.reason, "missing-param"), "%s", o.reason);
    cr_assert_not_null(strstr(o.reason, "InvalidParameters"), "%s", o.reason);
    cr_assert_not_null(strstr(o.reason, "us-east-1"), "%s", o.reason);
    cr_assert_null(strstr(o.reason, "value-of-"), "a value leaked into: %s", o.reason);
    ag_taskdef_free(td);
}

Test(resolve, secrets_manager_errors_and_denied_roles)
{
    ag_taskdef *td =
        td_parse("{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":[{"
                 "\"name\":\"a\",\"image\":\"busybox\",\"secrets\":["
                 "{\"name\":\"X\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:123456789012:"
                 "secret:missing-secret-AbCdEf\"}]}]}");
    outcome o;
    run(td, &o);
    cr_assert_null(o.res);
    cr_assert_not_null(strstr(o.reason, "ResourceNotFoundException"), "%s", o.reason);
    cr_assert_not_null(strstr(o.reason, "asm"), "%s", o.reason);
    ag_taskdef_free(td);

    td = td_parse("{\"family\":\"web\",\"executionRoleArn\":"
                  "\"arn:aws:iam::123456789012:role/denied-role\",\"containerDefinitions\":[{"
                  "\"name\":\"a\",\"image\":\"busybox\",\"secrets\":["
                  "{\"name\":\"X\",\"valueFrom\":\"/app/x\"}]}]}");
    run(td, &o);
    cr_assert_null(o.res, "resolved %zu with a denied role: %s", o.res ? o.res->n : 0,
                   o.res && o.res->n ? o.res->items[0].value : "");
    cr_assert_not_null(strstr(o.reason, "denied-role"), "%s", o.reason);
    cr_assert_not_null(strstr(o.reason, "AccessDenied"), "%s", o.reason);
    cr_assert_eq(fake_op_count(&f, "GetParameters"), 0, "nothing fetched without the role");
    ag_taskdef_free(td);
}

Test(resolve, json_key_missing_is_a_clear_error_without_the_value)
{
    ag_taskdef *td =
        td_parse("{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":[{"
                 "\"name\":\"a\",\"image\":\"busybox\",\"secrets\":["
                 "{\"name\":\"X\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:123456789012:"
                 "secret:db-AbCdEf:nokey::\"}]}]}");
    outcome o;
    run(td, &o);
    cr_assert_null(o.res);
    cr_assert_not_null(strstr(o.reason, "nokey"), "%s", o.reason);
    cr_assert_null(strstr(o.reason, "p@ss"), "%s", o.reason);
    ag_taskdef_free(td);
}

Test(resolve, no_secrets_no_backend_call)
{
    ag_taskdef *td = td_parse("{\"family\":\"web\",\"containerDefinitions\":[{"
                              "\"name\":\"a\",\"image\":\"busybox\"}]}");
    outcome o;
    run(td, &o);
    cr_assert_not_null(o.res);
    cr_assert_eq(o.res->n, 0);
    ag_resolution_free(o.res);
    cr_assert_eq(fake_op_count(&f, "AssumeRole"), 0);
    ag_taskdef_free(td);
}

static int count_scope(const char *scope)
{
    es_json *j = fake_stats(&f);
    const es_json *sc = es_json_get(j, "scopes");
    int n = 0;
    for (size_t i = 0; i < es_json_len(sc); i++)
        n += strcmp(es_json_as_str(es_json_at(sc, i)), scope) == 0;
    es_json_free(j);
    return n;
}

Test(resolve, each_region_gets_its_own_call_signed_for_it)
{
    /* S8: a bare name is the task's region; an ARN names its own */
    ag_taskdef *td =
        td_parse("{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":[{"
                 "\"name\":\"a\",\"image\":\"busybox\",\"secrets\":["
                 "{\"name\":\"BARE\",\"valueFrom\":\"/app/bare\"},"
                 "{\"name\":\"SAME\",\"valueFrom\":\"arn:aws:ssm:us-east-1:123456789012:parameter/"
                 "app/same\"},"
                 "{\"name\":\"WEST\",\"valueFrom\":\"arn:aws:ssm:us-west-2:123456789012:parameter/"
                 "app/west\"},"
                 "{\"name\":\"EU\",\"valueFrom\":\"arn:aws:secretsmanager:eu-west-1:123456789012:"
                 "secret:db-AbCdEf\"}],"
                 /* S9: log-driver secret options follow the same region rule */
                 "\"logConfiguration\":{\"logDriver\":\"splunk\",\"secretOptions\":["
                 "{\"name\":\"splunk-token\",\"valueFrom\":\"arn:aws:ssm:ap-northeast-1:"
                 "123456789012:parameter/app/log\"},"
                 "{\"name\":\"splunk-url\",\"valueFrom\":\"/app/url\"}]}}]}");
    outcome o;
    run(td, &o);
    cr_assert_not_null(o.res, "%s", o.reason);
    cr_assert_str_eq(find(o.res, 0, "BARE")->value, "value-of-/app/bare");
    cr_assert_str_eq(find(o.res, 0, "WEST")->value, "value-of-/app/west");
    const ag_resolved_secret *tok = find(o.res, 0, "splunk-token");
    cr_assert_eq(tok->target, AG_SECRET_LOG);
    cr_assert_str_eq(tok->value, "value-of-/app/log");
    cr_assert_str_eq(find(o.res, 0, "splunk-url")->value, "value-of-/app/url");
    cr_assert_eq(count_scope("GetParameters us-east-1"), 1,
                 "bare and same-region ARN share a call (the log option's too)");
    cr_assert_eq(count_scope("GetParameters ap-northeast-1"), 1);
    cr_assert_eq(count_scope("GetParameters us-west-2"), 1);
    cr_assert_eq(fake_op_count(&f, "GetParameters"), 3, "one call per region, no other");
    cr_assert_eq(count_scope("GetSecretValue eu-west-1"), 1);
    ag_resolution_free(o.res);
    ag_taskdef_free(td);
}

/* S15: repositoryCredentials fetched with the execution role beside the
 * secrets, handed over as the X-Registry-Auth value (not an env value), its
 * metadata kept as any secret's; a secret that is not {username, password}
 * fails the task without quoting it. */
Test(resolve, registry_credentials_become_the_pull_auth)
{
    ag_taskdef *td =
        td_parse("{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
                 "{\"name\":\"a\",\"image\":\"registry.example.com/team/app:1\","
                 "\"repositoryCredentials\":{\"credentialsParameter\":\"reg/hub\"},"
                 "\"secrets\":[{\"name\":\"X\",\"valueFrom\":\"/app/x\"}]},"
                 "{\"name\":\"b\",\"image\":\"busybox\"}]}");
    outcome o;
    run(td, &o);
    cr_assert_not_null(o.res, "%s", o.reason);
    cr_assert_eq(o.res->n, 2);
    const ag_resolved_secret *reg = find(o.res, 0, "repositoryCredentials");
    cr_assert_not_null(reg);
    cr_assert_eq(reg->target, AG_SECRET_REGISTRY);
    cr_assert_str_eq(reg->value_from, "reg/hub");
    cr_assert_str_eq(reg->source_arn,
                     "arn:aws:secretsmanager:us-east-1:123456789012:secret:reg/hub-AbCdEf");
    cr_assert_str_eq(reg->version, "v-1");
    cr_assert_eq(strncmp(reg->fingerprint, "hmac-sha256:", 12), 0);
    /* the fingerprint is the secret's own, not the header's */
    char fp[AG_FINGERPRINT_LEN + 1];
    const char *raw = "{\"username\":\"reg-user\",\"password\":\"reg-p@ss\"}";
    cr_assert_eq(ag_secret_fingerprint(fp_key, sizeof fp_key, raw, strlen(raw), fp, sizeof fp), 0);
    cr_assert_str_eq(reg->fingerprint, fp);
    /* the value is the header: base64url of the JSON with serveraddress */
    es_buf want;
    es_buf_init(&want, AG_REGISTRY_AUTH_MAX);
    char err[256];
    cr_assert_eq(ag_registry_auth_build("registry.example.com/team/app:1", raw, strlen(raw), &want,
                                        err, sizeof err),
                 0);
    cr_assert_str_eq(ag_resolution_registry_auth(o.res, 0), want.data);
    es_buf_free_secret(&want);
    cr_assert_null(ag_resolution_registry_auth(o.res, 1), "container b has none");
    ag_secret_value views[4];
    size_t nv = ag_resolution_values(o.res, 0, views, 4);
    cr_assert_eq(nv, 1, "the registry auth is no env value");
    cr_assert_str_eq(views[0].name, "X");
    cr_assert_eq(fake_op_count(&f, "GetSecretValue"), 1);
    cr_assert_eq(fake_op_count(&f, "AssumeRole"), 1);
    ag_resolution_free(o.res);
    ag_taskdef_free(td);

    /* the fake answers {"user", "password"} for other secrets: not registry credentials */
    td = td_parse("{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
                  "{\"name\":\"a\",\"image\":\"busybox\","
                  "\"repositoryCredentials\":{\"credentialsParameter\":"
                  "\"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf\"}}]}");
    run(td, &o);
    cr_assert_null(o.res);
    cr_assert(strstr(o.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: "),
              "%s", o.reason);
    cr_assert(strstr(o.reason, "secret:db-AbCdEf"), "%s", o.reason);
    cr_assert(strstr(o.reason, "\"username\" and \"password\""), "%s", o.reason);
    cr_assert_null(strstr(o.reason, "p@ss"), "a value leaked into: %s", o.reason);
    ag_taskdef_free(td);

    /* a missing secret: the fetch's error, as for any secret */
    td = td_parse("{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
                  "{\"name\":\"a\",\"image\":\"busybox\","
                  "\"repositoryCredentials\":{\"credentialsParameter\":\"missing-reg\"}}]}");
    run(td, &o);
    cr_assert_null(o.res);
    cr_assert(strstr(o.reason, "missing-reg"), "%s", o.reason);
    cr_assert(strstr(o.reason, "ResourceNotFoundException"), "%s", o.reason);
    ag_taskdef_free(td);
}

/* ---- the agent's stop: closing everything at once, at every step ---- */

static void count_closed(void *arg)
{
    (*(int *)arg)++;
}

/* As the agent stops (agent.c): the resolver, the credentials provider and
 * the client told to close at once, after `steps` turns of the loop into a
 * resolution. The resolution ends exactly once, with its values or with a
 * reason, and never asks a closed part for anything (issue 24's crash: an
 * AssumeRole asked of a freed provider); every part reports closed once. */
static void close_after(int steps, outcome *o, bool *finished_first)
{
    aw_client_config cc = {.region = "us-east-1", .base_delay_ms = 5};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = f.base;
    aw_client *cl;
    aw_creds *cr;
    ag_resolver *rs;
    cr_assert_eq(aw_client_create(&loop, &cc, &cl), 0);
    aw_creds_config pc = {.access_key_id = AK, .secret_access_key = SK};
    cr_assert_eq(aw_creds_create(cl, &pc, &cr), 0);
    ag_resolver_config rc = {
        .client = cl, .creds = cr, .region = "us-east-1", .fp_key = fp_key, .fp_key_len = 32};
    cr_assert_eq(ag_resolver_create(&rc, &rs), 0);
    ag_taskdef *td =
        td_parse("{\"family\":\"web\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":[{"
                 "\"name\":\"a\",\"image\":\"busybox\",\"secrets\":["
                 "{\"name\":\"P\",\"valueFrom\":\"/app/p1\"},"
                 "{\"name\":\"S\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:123456789012:"
                 "secret:db-AbCdEf:password::\"}]}]}");
    memset(o, 0, sizeof *o);
    cr_assert_eq(ag_resolve_start(rs, td, on_done, o), 0);
    for (int i = 0; i < steps && o->calls == 0; i++)
        uv_run(&loop, UV_RUN_ONCE);
    *finished_first = o->calls == 1;
    int closed = 0;
    ag_resolver_close(rs, count_closed, &closed);
    aw_creds_close(cr, count_closed, &closed);
    aw_client_close(cl, count_closed, &closed);
    cr_assert_eq(ag_resolve_start(rs, td, on_done, o), -ECANCELED,
                 "a closing resolver starts nothing");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(o->calls, 1, "after %d steps: the callback ran %d times", steps, o->calls);
    cr_assert_eq(closed, 3, "after %d steps: %d of 3 parts reported closed", steps, closed);
    ag_taskdef_free(td);
}

Test(resolve, closing_at_every_step_ends_each_resolution_once)
{
    int stopped = 0, resolved = 0;
    for (int steps = 0; steps < 200; steps++) {
        outcome o;
        bool done_first;
        close_after(steps, &o, &done_first);
        if (o.res) {
            resolved++;
            ag_resolution_free(o.res);
        } else {
            cr_assert_str_eq(o.reason, AG_REASON_AGENT_STOPPING, "after %d steps", steps);
            cr_assert_null(strstr(o.reason, "value-of-"), "a value leaked: %s", o.reason);
            stopped++;
        }
        if (done_first)
            break; /* every later step finds it finished too */
    }
    cr_assert_gt(stopped, 2, "the close landed inside the resolution at several steps");
    cr_assert_eq(resolved, 1, "the last round resolved before the close");
}
