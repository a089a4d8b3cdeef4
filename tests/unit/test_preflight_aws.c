/* The preflight in aws mode against tests/aws_fake.py (scripted answers):
 * the host's metadata lookups (DescribeParameters, DescribeSecret,
 * DescribeKey), iam:SimulatePrincipalPolicy per action with the role, the
 * resources and the KMS context, the decisions it can trust (an implicit
 * deny only for ssm:GetParameters, an explicit deny always), and a host
 * that may not simulate: skipped, no value and no role asked for. */
#include "aws_fake.h"

#include <uv.h>

#include "agent/secrets/preflight.h"
#include "agent/tasks/task.h"
#include "agent/tasks/taskdef.h"

#define AK "AKIDTEST"
#define SK "SECRETKEYVALUE0123456789"
#define ROLE "arn:aws:iam::123456789012:role/exec"
#define KEY "arn:aws:kms:us-east-1:123456789012:key/k-1"
#define SECRET "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
#define PARAM "arn:aws:ssm:us-east-1:123456789012:parameter/app/secure"

static fake f;
static uv_loop_t loop;
static aw_client *c;
static aw_creds *creds;
static ag_preflight *pf;
static ag_taskdef *td;

static void setup(void)
{
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    const char *a[] = {"--secret", AK "=" SK, NULL};
    fake_start(&f, a);
    cr_assert_eq(uv_loop_init(&loop), 0);
    aw_client_config cc = {.region = "us-east-1", .base_delay_ms = 5, .max_attempts = 1};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = f.base;
    cr_assert_eq(aw_client_create(&loop, &cc, &c), 0);
    aw_creds_config pc = {.access_key_id = AK, .secret_access_key = SK};
    cr_assert_eq(aw_creds_create(c, &pc, &creds), 0);
    ag_preflight_config cfg = {
        .client = c, .creds = creds, .region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_preflight_create(&cfg, &pf), 0);
    const char *json =
        "{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
        "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"secrets\":["
        "{\"name\":\"SECURE\",\"valueFrom\":\"/app/secure\"},"
        "{\"name\":\"DB\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:123456789012:"
        "secret:db:password::\"}]}]}";
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &td, &e), 0, "%s", e.message);
}

/* The plans the tests started preflights with (freed in teardown). */
#define PLANS_MAX 64
static ag_secret_plan *plans[PLANS_MAX];
static size_t n_plans;

static const ag_secret_plan *plan_of(const ag_taskdef *t)
{
    ag_secret_plan *p = NULL;
    char err[256];
    cr_assert_lt(n_plans, PLANS_MAX);
    cr_assert_eq(ag_secret_plan_build(t, "us-east-1", &p, err, sizeof err), 0, "%s", err);
    plans[n_plans++] = p;
    return p;
}

static void teardown(void)
{
    while (n_plans)
        ag_secret_plan_free(plans[--n_plans]);
    aw_creds_close(creds, NULL, NULL);
    aw_client_close(c, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_preflight_free(pf);
    ag_taskdef_free(td);
    cr_expect_eq(uv_loop_close(&loop), 0);
    cr_expect_eq(fake_stat_int(&f, "bad_signatures"), 0);
    fake_stop(&f);
    expect_no_leaks();
}

TestSuite(preflight_aws, .init = setup, .fini = teardown, .timeout = 60);

/* Queues `times` identical answers for op. */
static void script(const char *op, int status, const char *body, const char *ctype, int times)
{
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_jw w;
    es_jw_init(&w, &b);
    es_jw_obj(&w);
    es_jw_key(&w, op);
    es_jw_arr(&w);
    for (int i = 0; i < times; i++) {
        es_jw_obj(&w);
        es_jw_kint(&w, "status", status);
        es_jw_kstr(&w, "body", body);
        es_jw_kstr(&w, "content_type", ctype);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    es_jw_obj_end(&w);
    cr_assert_eq(es_jw_finish(&w), 0);
    fake_post(&f, "/__script", es_buf_cstr(&b));
    es_buf_free(&b);
}

#define JSON "application/x-amz-json-1.1"

static void script_metadata(void)
{
    script("DescribeParameters", 200,
           "{\"Parameters\":[{\"Name\":\"/app/secure\",\"Type\":\"SecureString\","
           "\"KeyId\":\"alias/custom\"}]}",
           JSON, 1);
    script("DescribeSecret", 200, "{\"ARN\":\"" SECRET "\",\"Name\":\"db\"}", JSON, 1);
    script("DescribeKey", 200,
           "{\"KeyMetadata\":{\"KeyId\":\"k-1\",\"Arn\":\"" KEY "\",\"KeyManager\":\"CUSTOMER\"}}",
           JSON, 1);
}

/* One answer for all three calls (they run at once): each call reads the
 * members of its own pairs. */
static void script_simulation(const char *ssm, const char *sm, const char *kms)
{
    char xml[4096];
    snprintf(xml, sizeof xml,
             "<SimulatePrincipalPolicyResponse><SimulatePrincipalPolicyResult><EvaluationResults>"
             "<member><EvalActionName>ssm:GetParameters</EvalActionName><EvalResourceName>" PARAM
             "</EvalResourceName><EvalDecision>%s</EvalDecision></member>"
             "<member><EvalActionName>secretsmanager:GetSecretValue</EvalActionName>"
             "<EvalResourceName>" SECRET "</EvalResourceName><EvalDecision>%s</EvalDecision>"
             "</member><member><EvalActionName>kms:Decrypt</EvalActionName><EvalResourceName>" KEY
             "</EvalResourceName><EvalDecision>%s</EvalDecision></member></EvaluationResults>"
             "<IsTruncated>false</IsTruncated></SimulatePrincipalPolicyResult>"
             "</SimulatePrincipalPolicyResponse>",
             ssm, sm, kms);
    script("SimulatePrincipalPolicy", 200, xml, "text/xml", 3);
}

typedef struct done {
    int calls;
    ag_pf_outcome outcome;
    char reason[AG_REASON_BUF];
} done;

static void on_done(void *arg, ag_pf_outcome outcome, const char *reason)
{
    done *d = arg;
    d->calls++;
    d->outcome = outcome;
    snprintf(d->reason, sizeof d->reason, "%s", reason ? reason : "");
}

static void run(done *d)
{
    memset(d, 0, sizeof *d);
    cr_assert_eq(ag_preflight_start(pf, plan_of(td), ROLE, on_done, d), 0);
    while (d->calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(d->calls, 1);
}

/* The SimulatePrincipalPolicy request bodies the fake saw, joined. */
static void sim_bodies(char *out, size_t n)
{
    es_json *j = fake_stats(&f);
    const es_json *b = es_json_get(j, "bodies");
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; b && i < es_json_len(b); i++) {
        const char *s = es_json_as_str(es_json_at(b, i));
        if (s && strstr(s, "Action=SimulatePrincipalPolicy") && used < n)
            used += (size_t)snprintf(out + used, n - used, "%s\n", s);
    }
    es_json_free(j);
}

Test(preflight_aws, trusted_denials_are_listed)
{
    script_metadata();
    script_simulation("implicitDeny", "implicitDeny", "explicitDeny");
    done d;
    run(&d);
    cr_assert_eq(d.outcome, AG_PF_MISSING);
    /* the secret's implicit deny may be a resource policy's grant: not named */
    cr_assert_str_eq(d.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: the execution role " ROLE " is missing 2 permissions: "
                               "ssm:GetParameters on " PARAM "; kms:Decrypt on " KEY);
    char bodies[16384];
    sim_bodies(bodies, sizeof bodies);
    cr_assert(strstr(bodies, "PolicySourceArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fexec"),
              "%s", bodies);
    cr_assert(strstr(bodies,
                     "ActionNames.member.1=ssm%3AGetParameters&ResourceArns.member.1="
                     "arn%3Aaws%3Assm%3Aus-east-1%3A123456789012%3Aparameter%2Fapp%2Fsecure"),
              "%s", bodies);
    cr_assert(strstr(bodies, "ActionNames.member.1=kms%3ADecrypt&ResourceArns.member.1="
                             "arn%3Aaws%3Akms%3Aus-east-1%3A123456789012%3Akey%2Fk-1&"
                             "ContextEntries.member.1.ContextKeyName=kms%3AViaService&"
                             "ContextEntries.member.1.ContextKeyType=string&"
                             "ContextEntries.member.1.ContextKeyValues.member.1="
                             "ssm.us-east-1.amazonaws.com"),
              "%s", bodies);
    cr_assert(strstr(bodies, "ActionNames.member.1=secretsmanager%3AGetSecretValue&ResourceArns."
                             "member.1=arn%3Aaws%3Asecretsmanager%3Aus-east-1%3A123456789012%3A"
                             "secret%3Adb-AbCdEf\n"),
              "the partial ARN completed by DescribeSecret: %s", bodies);
    cr_assert_eq(fake_op_count(&f, "SimulatePrincipalPolicy"), 3);
    cr_assert_eq(fake_op_count(&f, "GetParameters"), 0);
    cr_assert_eq(fake_op_count(&f, "GetSecretValue"), 0);
    cr_assert_eq(fake_op_count(&f, "AssumeRole"), 0);
    ag_preflight_stats st;
    ag_preflight_get_stats(pf, &st);
    cr_assert_eq(st.lookups, 3);
    cr_assert_eq(st.simulations, 3);
}

Test(preflight_aws, all_allowed)
{
    script_metadata();
    script_simulation("allowed", "allowed", "allowed");
    done d;
    run(&d);
    cr_assert_eq(d.outcome, AG_PF_OK, "%s", d.reason);
}

Test(preflight_aws, aws_managed_key_needs_nothing)
{
    script("DescribeParameters", 200,
           "{\"Parameters\":[{\"Name\":\"/app/secure\",\"Type\":\"SecureString\","
           "\"KeyId\":\"alias/aws/ssm\"}]}",
           JSON, 1);
    script("DescribeSecret", 200, "{\"ARN\":\"" SECRET "\",\"Name\":\"db\",\"KmsKeyId\":\"k-2\"}",
           JSON, 1);
    script("DescribeKey", 200,
           "{\"KeyMetadata\":{\"KeyId\":\"k-2\",\"Arn\":\"arn:aws:kms:us-east-1:123456789012:key/"
           "k-2\",\"KeyManager\":\"AWS\"}}",
           JSON, 1);
    script_simulation("implicitDeny", "allowed", "explicitDeny");
    done d;
    run(&d);
    cr_assert_eq(d.outcome, AG_PF_MISSING);
    cr_assert_str_eq(d.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: the execution role " ROLE " is missing 1 permission: "
                               "ssm:GetParameters on " PARAM);
    cr_assert_eq(fake_op_count(&f, "DescribeKey"), 1, "k-2 asked, alias/aws/ssm not");
    cr_assert_eq(fake_op_count(&f, "SimulatePrincipalPolicy"), 2, "no kms call");
}

Test(preflight_aws, host_not_allowed_to_simulate_skips)
{
    static const char denied[] =
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
        "arn:aws:sts::123456789012:assumed-role/host/i-1 is not authorized to perform: "
        "iam:SimulatePrincipalPolicy</Message></Error><RequestId>r</RequestId></ErrorResponse>";
    for (int round = 0; round < 2; round++) {
        script_metadata();
        script("SimulatePrincipalPolicy", 403, denied, "text/xml", 3);
        done d;
        run(&d);
        cr_assert_eq(d.outcome, AG_PF_SKIPPED);
        cr_assert_str_empty(d.reason);
    }
    ag_preflight_stats st;
    ag_preflight_get_stats(pf, &st);
    cr_assert_eq(st.skipped, 2);
    cr_assert_eq(fake_op_count(&f, "GetParameters"), 0);
}

/* IAM answers NoSuchEntity when it simulates for a role it does not have:
 * the reason says the role does not exist (before, AssumeRole's AccessDenied
 * was all the task got). */
Test(preflight_aws, a_role_iam_does_not_have_is_named)
{
    static const char nosuch[] =
        "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role "
        "with name exec cannot be found.</Message></Error><RequestId>r</RequestId></ErrorResponse>";
    script_metadata();
    script("SimulatePrincipalPolicy", 404, nosuch, "text/xml", 3);
    done d;
    run(&d);
    cr_assert_eq(d.outcome, AG_PF_MISSING);
    cr_assert_str_eq(d.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: the execution role " ROLE
                               " does not exist (check its name and account)");
    cr_assert_eq(fake_op_count(&f, "GetParameters"), 0, "no value was asked for");
}

Test(preflight_aws, failed_lookups_keep_what_is_known)
{
    script("DescribeParameters", 400, "{\"__type\":\"AccessDeniedException\",\"message\":\"no\"}",
           JSON, 1);
    script("DescribeSecret", 400, "{\"__type\":\"AccessDeniedException\",\"message\":\"no\"}", JSON,
           1);
    script_simulation("implicitDeny", "explicitDeny", "explicitDeny");
    done d;
    run(&d);
    /* no key known, the secret's ARN is partial: only the parameter remains */
    cr_assert_eq(d.outcome, AG_PF_MISSING);
    cr_assert_str_eq(d.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: the execution role " ROLE " is missing 1 permission: "
                               "ssm:GetParameters on " PARAM);
    cr_assert_eq(fake_op_count(&f, "DescribeKey"), 0);
    cr_assert_eq(fake_op_count(&f, "SimulatePrincipalPolicy"), 1);
}

/* The DescribeParameters request bodies the fake saw. */
static size_t describe_bodies(char bodies[][8192], size_t max)
{
    es_json *j = fake_stats(&f);
    const es_json *b = es_json_get(j, "bodies");
    size_t n = 0;
    for (size_t i = 0; b && i < es_json_len(b) && n < max; i++) {
        const char *s = es_json_as_str(es_json_at(b, i));
        if (s && strstr(s, "\"ParameterFilters\""))
            snprintf(bodies[n++], 8192, "%s", s);
    }
    es_json_free(j);
    return n;
}

/* Parameters are looked up by batch: one DescribeParameters per region and
 * per 50 names (Name Equals takes 50 values; MaxResults 50 so that one page
 * holds them), not one call per parameter. */
Test(preflight_aws, describe_parameters_is_batched_per_region)
{
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_buf_printf(&b, "{\"family\":\"many\",\"executionRoleArn\":\"" ROLE
                      "\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"secrets\":[");
    for (int i = 0; i < 60; i++)
        es_buf_printf(&b, "%s{\"name\":\"S%d\",\"valueFrom\":\"/many/p%d\"}", i ? "," : "", i, i);
    for (int i = 0; i < 2; i++)
        es_buf_printf(&b,
                      ",{\"name\":\"E%d\",\"valueFrom\":\"arn:aws:ssm:eu-west-1:123456789012:"
                      "parameter/eu/p%d\"}",
                      i, i);
    /* the same parameter again (another variable) and a selector: no more names */
    es_buf_printf(&b, ",{\"name\":\"DUP\",\"valueFrom\":\"/many/p0\"},"
                      "{\"name\":\"SEL\",\"valueFrom\":\"/many/p1:1\"}]}]}");
    ag_taskdef *many = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(b.data, b.len, &ctx, &many, &e), 0, "%s", e.message);
    es_buf_free(&b);
    /* every parameter a SecureString under the customer key: the answers
     * must be matched name by name to find the one key. The three calls are
     * in flight together and reach the fake in any order, so each gets the
     * same answer (a superset: names a batch did not ask for are ignored). */
    es_buf ans;
    es_buf_init(&ans, 1 << 16);
    es_buf_printf(&ans, "{\"Parameters\":[");
    for (int i = 0; i < 60; i++)
        es_buf_printf(&ans,
                      "%s{\"Name\":\"/many/p%d\",\"Type\":\"SecureString\",\"KeyId\":\"" KEY "\"}",
                      i ? "," : "", i);
    es_buf_printf(&ans, "]}");
    script("DescribeParameters", 200, ans.data, JSON, 3);
    es_buf_free(&ans);
    script("DescribeKey", 200,
           "{\"KeyMetadata\":{\"KeyId\":\"k-1\",\"Arn\":\"" KEY "\",\"KeyManager\":\"CUSTOMER\"}}",
           JSON, 1);
    script_simulation("allowed", "allowed", "explicitDeny");
    done d;
    memset(&d, 0, sizeof d);
    cr_assert_eq(ag_preflight_start(pf, plan_of(many), ROLE, on_done, &d), 0);
    while (d.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(fake_op_count(&f, "DescribeParameters"), 3,
                 "50 + 10 in us-east-1, 2 in eu-west-1");
    static char bodies[4][8192];
    size_t n = describe_bodies(bodies, 4);
    cr_assert_eq(n, 3);
    size_t seen_us = 0, seen_eu = 0;
    for (size_t i = 0; i < n; i++) {
        es_json *j = NULL;
        cr_assert_eq(es_json_parse(bodies[i], strlen(bodies[i]), NULL, &j, NULL, 0), 0);
        const es_json *mr = es_json_get(j, "MaxResults");
        cr_assert(mr && mr->type == ES_JSON_NUMBER, "%s", bodies[i]);
        const es_json *fl = es_json_get(j, "ParameterFilters");
        cr_assert_eq(es_json_len(fl), 1, "%s", bodies[i]);
        const es_json *f0 = es_json_at(fl, 0);
        cr_assert_str_eq(es_json_get_str(f0, "Key"), "Name");
        cr_assert_str_eq(es_json_get_str(f0, "Option"), "Equals");
        const es_json *vals = es_json_get(f0, "Values");
        size_t nv = es_json_len(vals);
        cr_assert_leq(nv, 50, "%s", bodies[i]);
        const char *v0 = es_json_as_str(es_json_at(vals, 0));
        if (strncmp(v0, "/eu/", 4) == 0)
            seen_eu += nv;
        else
            seen_us += nv;
        es_json_free(j);
        cr_assert(strstr(bodies[i], "\"MaxResults\":50"), "%s", bodies[i]);
    }
    cr_assert_eq(seen_us, 60, "every us-east-1 name once");
    cr_assert_eq(seen_eu, 2);
    /* the key was found through the batch's answer, and its explicit deny counts */
    cr_assert_eq(fake_op_count(&f, "DescribeKey"), 1);
    cr_assert_eq(d.outcome, AG_PF_MISSING);
    cr_assert(strstr(d.reason, "kms:Decrypt on " KEY), "%s", d.reason);
    ag_preflight_stats st;
    ag_preflight_get_stats(pf, &st);
    cr_assert_eq(st.lookups, 4, "3 DescribeParameters + 1 DescribeKey");
    ag_taskdef_free(many);
}

/* S15: repositoryCredentials need secretsmanager:GetSecretValue on the
 * credential secret (completed by DescribeSecret) and kms:Decrypt on its
 * customer key via Secrets Manager, like a secret of `secrets`. */
Test(preflight_aws, registry_credentials_need_their_secret)
{
    const char *json = "{\"family\":\"reg\",\"executionRoleArn\":\"" ROLE
                       "\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"r.example/a\","
                       "\"repositoryCredentials\":{\"credentialsParameter\":\"db\"}}]}";
    ag_taskdef *rt = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &rt, &e), 0, "%s", e.message);
    script("DescribeSecret", 200,
           "{\"ARN\":\"" SECRET "\",\"Name\":\"db\",\"KmsKeyId\":\"" KEY "\"}", JSON, 1);
    script("DescribeKey", 200,
           "{\"KeyMetadata\":{\"KeyId\":\"k-1\",\"Arn\":\"" KEY "\",\"KeyManager\":\"CUSTOMER\"}}",
           JSON, 1);
    script_simulation("allowed", "explicitDeny", "allowed");
    done d;
    memset(&d, 0, sizeof d);
    cr_assert_eq(ag_preflight_start(pf, plan_of(rt), ROLE, on_done, &d), 0);
    while (d.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(d.outcome, AG_PF_MISSING);
    cr_assert_str_eq(d.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: the execution role " ROLE " is missing 1 permission: "
                               "secretsmanager:GetSecretValue on " SECRET);
    char bodies[16384];
    sim_bodies(bodies, sizeof bodies);
    cr_assert(strstr(bodies, "ActionNames.member.1=kms%3ADecrypt&ResourceArns.member.1="
                             "arn%3Aaws%3Akms%3Aus-east-1%3A123456789012%3Akey%2Fk-1&"
                             "ContextEntries.member.1.ContextKeyName=kms%3AViaService&"
                             "ContextEntries.member.1.ContextKeyType=string&"
                             "ContextEntries.member.1.ContextKeyValues.member.1="
                             "secretsmanager.us-east-1.amazonaws.com"),
              "%s", bodies);
    cr_assert_eq(fake_op_count(&f, "DescribeParameters"), 0);
    cr_assert_eq(fake_op_count(&f, "GetSecretValue"), 0);
    ag_taskdef_free(rt);
}

/* Issue 20: an ECR image's pairs simulated per action; an implicit deny of
 * ecr:GetAuthorizationToken (asked on "*", which no resource policy covers)
 * is missing, one of ecr:BatchGetImage may be the repository policy's grant
 * and is not; an explicit deny always is. No lookup is needed. */
Test(preflight_aws, ecr_image_implicit_deny_trusted_for_the_token_only)
{
#define REPO "arn:aws:ecr:us-west-2:123456789012:repository/team/app"
    const char *json = "{\"family\":\"ecr\",\"executionRoleArn\":\"" ROLE
                       "\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":"
                       "\"123456789012.dkr.ecr.us-west-2.amazonaws.com/team/app:1\"}]}";
    ag_taskdef *rt = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &rt, &e), 0, "%s", e.message);
    const ag_secret_plan *pl = plan_of(rt);
    char err[256];
    cr_assert_eq(ag_secret_plan_ecr((ag_secret_plan *)pl, rt, NULL, err, sizeof err), 0, "%s", err);
    script(
        "SimulatePrincipalPolicy", 200,
        "<SimulatePrincipalPolicyResponse><SimulatePrincipalPolicyResult><EvaluationResults>"
        "<member><EvalActionName>ecr:GetAuthorizationToken</EvalActionName><EvalResourceName>*"
        "</EvalResourceName><EvalDecision>implicitDeny</EvalDecision></member>"
        "<member><EvalActionName>ecr:BatchGetImage</EvalActionName><EvalResourceName>" REPO
        "</EvalResourceName><EvalDecision>implicitDeny</EvalDecision></member>"
        "<member><EvalActionName>ecr:GetDownloadUrlForLayer</EvalActionName><EvalResourceName>" REPO
        "</EvalResourceName><EvalDecision>explicitDeny</EvalDecision></member>"
        "</EvaluationResults><IsTruncated>false</IsTruncated></SimulatePrincipalPolicyResult>"
        "</SimulatePrincipalPolicyResponse>",
        "text/xml", 3);
    done d;
    memset(&d, 0, sizeof d);
    cr_assert_eq(ag_preflight_start(pf, pl, ROLE, on_done, &d), 0);
    while (d.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(d.outcome, AG_PF_MISSING);
    cr_assert_str_eq(d.reason,
                     "ResourceInitializationError: unable to pull secrets or registry "
                     "auth: the execution role " ROLE " is missing 2 permissions: "
                     "ecr:GetAuthorizationToken on *; ecr:GetDownloadUrlForLayer on " REPO);
    char bodies[16384];
    sim_bodies(bodies, sizeof bodies);
    cr_assert(strstr(bodies, "ActionNames.member.1=ecr%3AGetAuthorizationToken&ResourceArns."
                             "member.1=%2A"),
              "%s", bodies);
    cr_assert(strstr(bodies,
                     "ActionNames.member.1=ecr%3ABatchGetImage&ResourceArns.member.1="
                     "arn%3Aaws%3Aecr%3Aus-west-2%3A123456789012%3Arepository%2Fteam%2Fapp"),
              "%s", bodies);
    cr_assert_eq(fake_op_count(&f, "SimulatePrincipalPolicy"), 3);
    cr_assert_eq(fake_op_count(&f, "DescribeParameters") + fake_op_count(&f, "DescribeSecret"), 0);
    ag_taskdef_free(rt);
#undef REPO
}

/* DescribeParameters may answer a short page and a NextToken: it is followed
 * while a name is unanswered (here the SecureString whose key matters), and
 * not once every name has its answer. */
Test(preflight_aws, describe_parameters_follows_next_token)
{
    const char *json = "{\"family\":\"pg\",\"executionRoleArn\":\"" ROLE
                       "\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"i\",\"secrets\":["
                       "{\"name\":\"P\",\"valueFrom\":\"/app/plain\"},"
                       "{\"name\":\"S\",\"valueFrom\":\"/app/secure\"}]}]}";
    ag_taskdef *pg = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &pg, &e), 0, "%s", e.message);
    script(
        "DescribeParameters", 200,
        "{\"Parameters\":[{\"Name\":\"/app/plain\",\"Type\":\"String\"}],\"NextToken\":\"pg-2\"}",
        JSON, 1);
    script("DescribeParameters", 200,
           "{\"Parameters\":[{\"Name\":\"/app/secure\",\"Type\":\"SecureString\",\"KeyId\":\"" KEY
           "\"}],\"NextToken\":\"pg-3\"}",
           JSON, 1);
    script("DescribeKey", 200,
           "{\"KeyMetadata\":{\"KeyId\":\"k-1\",\"Arn\":\"" KEY "\",\"KeyManager\":\"CUSTOMER\"}}",
           JSON, 1);
    script_simulation("allowed", "allowed", "explicitDeny");
    done d;
    memset(&d, 0, sizeof d);
    cr_assert_eq(ag_preflight_start(pf, plan_of(pg), ROLE, on_done, &d), 0);
    while (d.calls == 0)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(fake_op_count(&f, "DescribeParameters"), 2, "pg-3 not followed: all answered");
    static char bodies[4][8192];
    size_t n = describe_bodies(bodies, 4);
    cr_assert_eq(n, 2);
    cr_assert_null(strstr(bodies[0], "NextToken"), "%s", bodies[0]);
    cr_assert(strstr(bodies[1], "\"NextToken\":\"pg-2\""), "%s", bodies[1]);
    cr_assert(strstr(bodies[1], "\"/app/plain\",\"/app/secure\""), "the same names: %s", bodies[1]);
    cr_assert_eq(d.outcome, AG_PF_MISSING);
    cr_assert(strstr(d.reason, "kms:Decrypt on " KEY), "the key of page 2 was used: %s", d.reason);
    ag_taskdef_free(pg);
}

static void count_closed(void *arg)
{
    (*(int *)arg)++;
}

/* The agent's stop (agent.c) closes the preflight, the credentials provider
 * and the client at once. Closed after `steps` turns of the loop into a run
 * (lookups, then simulations, all scripted as allowed), the run ends exactly
 * once: with its decision when it had one, else AG_PF_STOPPED, never with a
 * denial the close made up; every part reports closed once. */
Test(preflight_aws, closing_at_every_step_ends_each_run_once)
{
    int stopped = 0;
    bool decided = false;
    for (int steps = 0; steps < 300 && !decided; steps++) {
        script_metadata();
        script_simulation("allowed", "allowed", "allowed");
        aw_client_config cc = {.region = "us-east-1", .base_delay_ms = 5, .max_attempts = 1};
        for (int i = 0; i < AW_SVC_COUNT; i++)
            cc.endpoint_override[i] = f.base;
        aw_client *cl;
        aw_creds *cr;
        ag_preflight *p;
        cr_assert_eq(aw_client_create(&loop, &cc, &cl), 0);
        aw_creds_config pc = {.access_key_id = AK, .secret_access_key = SK};
        cr_assert_eq(aw_creds_create(cl, &pc, &cr), 0);
        ag_preflight_config cfg = {
            .client = cl, .creds = cr, .region = "us-east-1", .account = "123456789012"};
        cr_assert_eq(ag_preflight_create(&cfg, &p), 0);
        done d = {0};
        ag_secret_plan *plan = NULL;
        char err[256];
        cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &plan, err, sizeof err), 0, "%s", err);
        cr_assert_eq(ag_preflight_start(p, plan, ROLE, on_done, &d), 0);
        for (int i = 0; i < steps && d.calls == 0; i++)
            uv_run(&loop, UV_RUN_ONCE);
        decided = d.calls == 1;
        int closed = 0;
        ag_preflight_close(p, count_closed, &closed);
        aw_creds_close(cr, count_closed, &closed);
        aw_client_close(cl, count_closed, &closed);
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert_eq(d.calls, 1, "after %d steps: the callback ran %d times", steps, d.calls);
        cr_assert_eq(closed, 3, "after %d steps: %d of 3 parts reported closed", steps, closed);
        cr_assert(d.outcome == AG_PF_STOPPED || d.outcome == AG_PF_OK || d.outcome == AG_PF_SKIPPED,
                  "after %d steps: outcome %d (%s)", steps, d.outcome, d.reason);
        if (d.outcome == AG_PF_STOPPED)
            stopped++;
        ag_secret_plan_free(plan);
        fake_post(&f, "/__reset", "{}");
    }
    cr_assert(decided, "the run concluded before the close at some step");
    cr_assert_gt(stopped, 2, "the close landed inside the run at several steps");
}
