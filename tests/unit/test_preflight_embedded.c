/* The execution role's preflight (agent/secrets/preflight.h), pure parts and embedded side: the
 * pairs each valueFrom form needs (deduplicated, AWS managed keys skipped, partial secret ARNs
 * completed), the reason's wording and cap, the SimulatePrincipalPolicy answer, and whole runs in
 * one loop against the embedded endpoints: missing permissions listed at once, all allowed once the
 * seed's policy is in place, skipped when there is nothing to evaluate against. */
#include "iam_helpers.h"

#include <stdarg.h>
#include <time.h>
#include <uv.h>

#include "agent/secrets/preflight.h"
#include "agent/tasks/task.h"
#include "agent/tasks/taskdef.h"
#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/local/auth.h"
#include "aws/listener.h"
#include "aws/xml.h"
#include "common/alloc.h"
#include "common/secure.h"

#define ACCT "123456789012"
#define REGION "us-east-2"
#define ROLE "arn:aws:iam::" ACCT ":role/exec"

/* ------------------------------------------------------------ pure parts */

Test(preflight_pairs, dedupe_and_limits)
{
    ag_pf_pairs p = {0};
    cr_assert_eq(ag_pf_pairs_add(&p, "ssm:GetParameters", "arn:a", NULL), 1);
    cr_assert_eq(ag_pf_pairs_add(&p, "ssm:GetParameters", "arn:a", NULL), 0);
    cr_assert_eq(ag_pf_pairs_add(&p, "kms:Decrypt", "arn:a", "ssm"), 1);
    cr_assert_eq(ag_pf_pairs_add(&p, "kms:Decrypt", "arn:a", "secretsmanager"), 1);
    cr_assert_eq(ag_pf_pairs_add(&p, "kms:Decrypt", "arn:a", "ssm"), 0);
    cr_assert_eq(ag_pf_pairs_add(&p, "kms:Decrypt", "", NULL), -EINVAL);
    cr_assert_eq(p.n, 3);
    cr_assert_eq(ag_pf_pairs_missing(&p), 0);
    char r[32];
    for (int i = 0; i < AG_PF_PAIRS_MAX; i++) {
        snprintf(r, sizeof r, "arn:%d", i);
        int rc = ag_pf_pairs_add(&p, "ssm:GetParameters", r, NULL);
        if (p.n == AG_PF_PAIRS_MAX && rc != 1) {
            cr_assert_eq(rc, -E2BIG);
            break;
        }
    }
    cr_assert_eq(p.n, AG_PF_PAIRS_MAX);
    cr_assert_eq(ag_pf_pairs_add(&p, "ssm:GetParameters", "arn:new", NULL), -E2BIG);
    ag_pf_pairs_clear(&p);
    cr_assert_eq(p.n, 0);
    ag_pf_pairs_clear(&p);
}

Test(preflight_pairs, managed_keys_and_complete_arns)
{
    cr_assert(ag_pf_key_is_aws_alias("alias/aws/ssm"));
    cr_assert(ag_pf_key_is_aws_alias("alias/aws/secretsmanager"));
    cr_assert(ag_pf_key_is_aws_alias("arn:aws:kms:us-east-2:" ACCT ":alias/aws/ssm"));
    cr_assert_not(ag_pf_key_is_aws_alias("alias/MyAliasName"));
    cr_assert_not(ag_pf_key_is_aws_alias("alias/awsish"));
    cr_assert_not(ag_pf_key_is_aws_alias("arn:aws:kms:us-east-2:" ACCT ":alias/MyAliasName"));
    cr_assert_not(ag_pf_key_is_aws_alias("1234abcd-12ab-34cd-56ef-1234567890ab"));
    cr_assert_not(ag_pf_key_is_aws_alias(NULL));

    cr_assert(
        ag_pf_secret_arn_complete("arn:aws:secretsmanager:us-east-2:" ACCT ":secret:db-AbC123"));
    cr_assert(
        ag_pf_secret_arn_complete("arn:aws:secretsmanager:us-east-2:" ACCT ":secret:a/b-x-AbC123"));
    cr_assert_not(ag_pf_secret_arn_complete("arn:aws:secretsmanager:us-east-2:" ACCT ":secret:db"));
    cr_assert_not(
        ag_pf_secret_arn_complete("arn:aws:secretsmanager:us-east-2:" ACCT ":secret:db-AbC1"));
    cr_assert_not(
        ag_pf_secret_arn_complete("arn:aws:secretsmanager:us-east-2:" ACCT ":secret:db-AbC1_3"));
    cr_assert_not(ag_pf_secret_arn_complete("db-AbC123"));
}

Test(preflight_reason, wording_lists_every_missing_pair)
{
    ag_pf_pairs p = {0};
    cr_assert_eq(ag_pf_pairs_add(&p, "ssm:GetParameters", "arn:aws:ssm:r:1:parameter/a", NULL), 1);
    cr_assert_eq(ag_pf_pairs_add(&p, "ssm:GetParameters", "arn:aws:ssm:r:1:parameter/ok", NULL), 1);
    cr_assert_eq(ag_pf_pairs_add(&p, "kms:Decrypt", "arn:aws:kms:r:1:key/k", "ssm"), 1);
    p.v[0].missing = true;
    p.v[2].missing = true;
    char out[AG_REASON_BUF];
    ag_preflight_reason(out, sizeof out, ROLE, &p);
    cr_assert_str_eq(out, "ResourceInitializationError: unable to pull secrets or registry auth: "
                          "the execution role arn:aws:iam::123456789012:role/exec is missing 2 "
                          "permissions: ssm:GetParameters on arn:aws:ssm:r:1:parameter/a; "
                          "kms:Decrypt on arn:aws:kms:r:1:key/k");
    p.v[2].missing = false;
    ag_preflight_reason(out, sizeof out, ROLE, &p);
    cr_assert_str_eq(out, "ResourceInitializationError: unable to pull secrets or registry auth: "
                          "the execution role arn:aws:iam::123456789012:role/exec is missing 1 "
                          "permission: ssm:GetParameters on arn:aws:ssm:r:1:parameter/a");
    ag_pf_pairs_clear(&p);
}

Test(preflight_reason, capped_at_ecs_length)
{
    ag_pf_pairs p = {0};
    char r[128];
    for (int i = 0; i < 200; i++) {
        snprintf(r, sizeof r, "arn:aws:ssm:us-east-2:" ACCT ":parameter/app/p%03d", i);
        cr_assert_eq(ag_pf_pairs_add(&p, "ssm:GetParameters", r, NULL), 1);
        p.v[i].missing = true;
    }
    char out[AG_REASON_BUF];
    size_t n = ag_preflight_reason(out, sizeof out, ROLE, &p);
    cr_assert_eq(n, strlen(out));
    cr_assert_leq(n, AG_STOPPED_REASON_MAX);
    cr_assert_gt(n, AG_STOPPED_REASON_MAX - 8);
    cr_assert(strstr(out, "is missing 200 permissions: ssm:GetParameters on "));
    cr_assert_str_eq(out + n - 3, "...");
    ag_pf_pairs_clear(&p);
}

/* ------------------------------------------- SimulatePrincipalPolicy */

#define SIM_HEAD                                                                                   \
    "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"        \
    "<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>"
#define SIM_TAIL                                                                                   \
    "</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>r"           \
    "</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>"

static size_t sim(const char *doc, ag_pf_sim_result **out)
{
    size_t n = 99;
    int r = ag_pf_parse_simulate(doc, strlen(doc), out, &n);
    cr_assert_eq(r, 0, "%d", r);
    return n;
}

Test(preflight_simulate, members)
{
    const char *doc =
        SIM_HEAD "<member><EvalActionName>ssm:GetParameters</EvalActionName>"
                 "<EvalResourceName>arn:aws:ssm:us-east-2:1:parameter/a</EvalResourceName>"
                 "<EvalDecision>implicitDeny</EvalDecision><MatchedStatements/>"
                 "<MissingContextValues/></member>"
                 "<member><EvalActionName>ssm:GetParameters</EvalActionName>"
                 "<EvalResourceName>arn:aws:ssm:us-east-2:1:parameter/b</EvalResourceName>"
                 "<EvalDecision>allowed</EvalDecision><MatchedStatements><member><SourcePolicyId>"
                 "p</SourcePolicyId></member></MatchedStatements></member>" SIM_TAIL;
    ag_pf_sim_result *r = NULL;
    size_t n = sim(doc, &r);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(r[0].action, "ssm:GetParameters");
    cr_assert_str_eq(r[0].resource, "arn:aws:ssm:us-east-2:1:parameter/a");
    cr_assert_str_eq(r[0].decision, "implicitDeny");
    cr_assert_str_eq(r[1].resource, "arn:aws:ssm:us-east-2:1:parameter/b");
    cr_assert_str_eq(r[1].decision, "allowed");
    ag_pf_sim_results_free(r, n);

    /* per-resource answers replace the member's own */
    doc = SIM_HEAD "<member><EvalActionName>kms:Decrypt</EvalActionName>"
                   "<EvalResourceName>*</EvalResourceName><EvalDecision>implicitDeny</EvalDecision>"
                   "<ResourceSpecificResults><member><EvalResourceName>arn:k1</EvalResourceName>"
                   "<EvalResourceDecision>allowed</EvalResourceDecision></member><member>"
                   "<EvalResourceName>arn:k2</EvalResourceName><EvalResourceDecision>explicitDeny"
                   "</EvalResourceDecision></member></ResourceSpecificResults></member>" SIM_TAIL;
    n = sim(doc, &r);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(r[0].action, "kms:Decrypt");
    cr_assert_str_eq(r[0].resource, "arn:k1");
    cr_assert_str_eq(r[0].decision, "allowed");
    cr_assert_str_eq(r[1].resource, "arn:k2");
    cr_assert_str_eq(r[1].decision, "explicitDeny");
    ag_pf_sim_results_free(r, n);

    n = sim(SIM_HEAD SIM_TAIL, &r);
    cr_assert_eq(n, 0);
    ag_pf_sim_results_free(r, n);
}

Test(preflight_simulate, bad_input)
{
    ag_pf_sim_result *r = (ag_pf_sim_result *)0x1;
    size_t n = 7;
    const char *bad[] = {
        "",
        "<a>",
        "<!DOCTYPE x [<!ENTITY e \"x\">]><a>&e;</a>",
        SIM_HEAD "<member><EvalActionName>a</EvalActionName><EvalDecision>allowed</EvalDecision>"
                 "</member>" SIM_TAIL,
        SIM_HEAD "<member><EvalResourceName>r</EvalResourceName><EvalDecision>allowed"
                 "</EvalDecision></member>" SIM_TAIL,
    };
    int want[] = {AG_PF_SIM_E_XML, AG_PF_SIM_E_XML, AG_PF_SIM_E_XML, AG_PF_SIM_E_INCOMPLETE,
                  AG_PF_SIM_E_INCOMPLETE};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = ag_pf_parse_simulate(bad[i], strlen(bad[i]), &r, &n);
        cr_assert_eq(rc, want[i], "case %zu: %d", i, rc);
        cr_assert_eq(r, (ag_pf_sim_result *)0x1, "out untouched");
        cr_assert_eq(n, 7);
    }
    /* too deep */
    es_buf b;
    es_buf_init(&b, 1 << 16);
    for (int i = 0; i < AW_XML_MAX_DEPTH + 2; i++)
        es_buf_append_str(&b, "<a>");
    for (int i = 0; i < AW_XML_MAX_DEPTH + 2; i++)
        es_buf_append_str(&b, "</a>");
    cr_assert_eq(ag_pf_parse_simulate(b.data, b.len, &r, &n), AG_PF_SIM_E_XML);
    es_buf_free(&b);
    /* too many members */
    es_buf_init(&b, 1 << 20);
    es_buf_append_str(&b, SIM_HEAD);
    for (int i = 0; i <= AG_PF_SIM_RESULTS_MAX; i++)
        es_buf_append_str(&b, "<member><EvalActionName>a</EvalActionName><EvalResourceName>r"
                              "</EvalResourceName><EvalDecision>allowed</EvalDecision></member>");
    es_buf_append_str(&b, SIM_TAIL);
    cr_assert_lt(b.len, AW_XML_MAX_BYTES);
    cr_assert_eq(ag_pf_parse_simulate(b.data, b.len, &r, &n), AG_PF_SIM_E_TOO_MANY);
    es_buf_free(&b);
    /* too big */
    char *big = es_calloc(1, AW_XML_MAX_BYTES + 2);
    memset(big, ' ', AW_XML_MAX_BYTES + 1);
    cr_assert_eq(ag_pf_parse_simulate(big, AW_XML_MAX_BYTES + 1, &r, &n), AG_PF_SIM_E_XML);
    es_free(big);
}

/* --------------------------------------------- whole runs in one loop */

TestSuite(preflight_run, .init = alt_setup, .fini = alt_teardown);

static int jcall(const char *target, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jcall(const char *target, const char *fmt, ...)
{
    char body[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    es_json_free(T.resp);
    T.resp = NULL;
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    int r = al_dispatch(T.ctx, target, ROOT, body, strlen(body), &T.out, &T.err);
    cr_assert_eq(r, 0, "%s -> %s: %s", target, T.err.code, T.err.message);
    char why[128];
    cr_assert_eq(
        es_json_parse(T.out.data, T.out.len, &es_json_default_limits, &T.resp, why, sizeof why), 0);
    return 0;
}

static char key_arn[160], secret_arn[256], key2_arn[160], secret2_arn[256];

/* The store: a customer key under alias/MyAliasName; a String, a SecureString
 * under that key and one under the default key; a secret under the default
 * key and one under the customer key; the role with only the AWS managed
 * AmazonECSTaskExecutionRolePolicy. */
static void fill_store(void)
{
    al_authz_install(T.ctx);
    jcall("TrentService.CreateKey", "{\"Description\":\"app\"}");
    const es_json *md = es_json_get(T.resp, "KeyMetadata");
    snprintf(key_arn, sizeof key_arn, "%s", es_json_get_str(md, "Arn"));
    char key_id[64];
    snprintf(key_id, sizeof key_id, "%s", es_json_get_str(md, "KeyId"));
    jcall("TrentService.CreateAlias",
          "{\"AliasName\":\"alias/MyAliasName\",\"TargetKeyId\":\"%s\"}", key_id);
    jcall("TrentService.CreateKey", "{\"Description\":\"other\"}");
    snprintf(key2_arn, sizeof key2_arn, "%s",
             es_json_get_str(es_json_get(T.resp, "KeyMetadata"), "Arn"));
    jcall("AmazonSSM.PutParameter",
          "{\"Name\":\"/app/plain\",\"Type\":\"String\",\"Value\":\"p\"}");
    jcall("AmazonSSM.PutParameter", "{\"Name\":\"/app/secure\",\"Type\":\"SecureString\","
                                    "\"Value\":\"s\",\"KeyId\":\"alias/MyAliasName\"}");
    jcall("AmazonSSM.PutParameter",
          "{\"Name\":\"/app/default\",\"Type\":\"SecureString\",\"Value\":\"d\"}");
    jcall("secretsmanager.CreateSecret",
          "{\"Name\":\"db\",\"SecretString\":\"{\\\"pw\\\":\\\"x\\\"}\"}");
    snprintf(secret_arn, sizeof secret_arn, "%s", es_json_get_str(T.resp, "ARN"));
    jcall("secretsmanager.CreateSecret",
          "{\"Name\":\"api\",\"SecretString\":\"k\",\"KmsKeyId\":\"%s\"}", key2_arn);
    snprintf(secret2_arn, sizeof secret2_arn, "%s", es_json_get_str(T.resp, "ARN"));
    make_role("exec", ECS_TRUST);
    qok("iam", "AttachRolePolicy", "RoleName", "exec", "PolicyArn", EXEC_POLICY_ARN, NULL);
}

static ag_taskdef *td_parse(const char *json)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = REGION, .account = ACCT};
    int rc = ag_taskdef_parse(json, strlen(json), &ctx, &td, &e);
    cr_assert_eq(rc, 0, "task definition refused: %s", e.message);
    return td;
}

/* Every valueFrom form, with repeats across containers. */
static const char TD[] =
    "{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
    "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"secrets\":["
    "{\"name\":\"PLAIN\",\"valueFrom\":\"/app/plain\"},"
    "{\"name\":\"PLAIN_ARN\",\"valueFrom\":\"arn:aws:ssm:us-east-2:123456789012:parameter/app/"
    "plain\"},"
    "{\"name\":\"SECURE\",\"valueFrom\":\"/app/secure\"},"
    "{\"name\":\"SECURE_V1\",\"valueFrom\":\"/app/secure:1\"},"
    "{\"name\":\"DEFAULT\",\"valueFrom\":\"/app/default\"},"
    "{\"name\":\"DB\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-2:123456789012:secret:db:pw::"
    "\"}]},"
    "{\"name\":\"b\",\"image\":\"busybox\",\"memory\":32,\"secrets\":["
    "{\"name\":\"REF\",\"valueFrom\":\"/aws/reference/secretsmanager/api\"},"
    "{\"name\":\"PLAIN\",\"valueFrom\":\"/app/plain\"}],"
    "\"logConfiguration\":{\"logDriver\":\"json-file\",\"secretOptions\":["
    "{\"name\":\"opt\",\"valueFrom\":\"/app/secure\"}]}}]}";

typedef struct run {
    uv_loop_t loop;
    aw_listener *srv;
    aw_client *client;
    aw_creds *creds;
    ag_preflight *pf;
    int calls, closed;
    ag_pf_outcome outcome;
    char reason[AG_REASON_BUF];
    char akid[AL_AKID_LEN + 1], secret[128]; /* the administrator's, for S3 PUTs */
} run;

static void on_closed(void *arg)
{
    ((run *)arg)->closed++;
}

static double real_now(void)
{
    return (double)time(NULL);
}

static void run_open(run *r, bool embedded)
{
    T.now = real_now(); /* the client signs with the real clock */
    memset(r, 0, sizeof *r);
    char akid[AL_AKID_LEN + 1], err[256], *secret = NULL;
    cr_assert_eq(al_admin_init(T.ctx, T.dir, akid, err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_admin_credentials(T.ctx, akid, &secret), 0);
    cr_assert_eq(uv_loop_init(&r->loop), 0);
    cr_assert_eq(alt_listen(&r->loop, T.ctx, NULL, &r->srv), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", aw_listener_port(r->srv));
    aw_client_config cfg = {.region = REGION, .max_attempts = 1};
    for (int s = 0; s < AW_SVC_COUNT; s++)
        cfg.endpoint_override[s] = url;
    cr_assert_eq(aw_client_create(&r->loop, &cfg, &r->client), 0);
    aw_creds_config kc = {.access_key_id = akid, .secret_access_key = secret};
    cr_assert_eq(aw_creds_create(r->client, &kc, &r->creds), 0);
    snprintf(r->akid, sizeof r->akid, "%s", akid);
    snprintf(r->secret, sizeof r->secret, "%s", secret);
    es_free_secret_str(secret);
    ag_preflight_config pc = {.client = r->client,
                              .creds = r->creds,
                              .embedded = embedded ? T.ctx : NULL,
                              .region = REGION,
                              .account = ACCT};
    cr_assert_eq(ag_preflight_create(&pc, &r->pf), 0);
}

static void on_done(void *arg, ag_pf_outcome outcome, const char *reason)
{
    run *r = arg;
    r->calls++;
    r->outcome = outcome;
    cr_assert_eq(reason != NULL, outcome == AG_PF_MISSING);
    snprintf(r->reason, sizeof r->reason, "%s", reason ? reason : "");
}

static void run_once(run *r, const ag_taskdef *td, const char *role)
{
    r->calls = 0;
    ag_secret_plan *plan = NULL;
    char err[256];
    cr_assert_eq(ag_secret_plan_build(td, REGION, &plan, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ag_preflight_start(r->pf, plan, role, on_done, r), 0);
    cr_assert_eq(r->calls, 0, "the callback never runs inside the start call");
    while (r->calls == 0)
        uv_run(&r->loop, UV_RUN_ONCE);
    ag_secret_plan_free(plan);
}

static void run_close(run *r)
{
    /* the provider first: it uses the client */
    aw_creds_close(r->creds, on_closed, r);
    while (r->closed < 1)
        uv_run(&r->loop, UV_RUN_ONCE);
    aw_client_close(r->client, on_closed, r);
    aw_listener_close(r->srv, on_closed, r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    ag_preflight_free(r->pf);
    es_wipe(r->secret, sizeof r->secret);
    cr_assert_eq(r->closed, 3);
    cr_assert_eq(uv_loop_close(&r->loop), 0, "handles left open");
}

Test(preflight_run, embedded_lists_every_missing_permission_then_allows)
{
    fill_store();
    ag_taskdef *td = td_parse(TD);
    run r;
    run_open(&r, true);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_MISSING);
    char want[AG_REASON_BUF];
    snprintf(want, sizeof want,
             "ResourceInitializationError: unable to pull secrets or registry auth: the "
             "execution role " ROLE " is missing 7 permissions: "
             "ssm:GetParameters on arn:aws:ssm:us-east-2:" ACCT ":parameter/app/plain; "
             "ssm:GetParameters on arn:aws:ssm:us-east-2:" ACCT ":parameter/app/secure; "
             "ssm:GetParameters on arn:aws:ssm:us-east-2:" ACCT ":parameter/app/default; "
             "secretsmanager:GetSecretValue on %s; secretsmanager:GetSecretValue on %s; "
             "kms:Decrypt on %s; kms:Decrypt on %s",
             secret_arn, secret2_arn, key_arn, key2_arn);
    cr_assert_str_eq(r.reason, want);

    /* the seed's inline policy for exactly these resources */
    char pol[2048];
    snprintf(pol, sizeof pol,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
             "\"ssm:GetParameters\",\"secretsmanager:GetSecretValue\",\"kms:Decrypt\"],"
             "\"Resource\":[\"arn:aws:ssm:us-east-2:" ACCT ":parameter/app/*\",\"%s\",\"%s\","
             "\"%s\",\"%s\"]}]}",
             secret_arn, secret2_arn, key_arn, key2_arn);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "secrets", "PolicyDocument", pol,
        NULL);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_OK, "%s", r.reason);

    /* kms:ViaService as the embedded stores set it: SSM decrypts the
     * SecureString and the referenced secret (without the context key the
     * Deny's StringNotEquals would match) */
    snprintf(pol, sizeof pol,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":"
             "\"kms:Decrypt\",\"Resource\":\"*\",\"Condition\":{\"StringNotEquals\":{"
             "\"kms:ViaService\":\"ssm.us-east-2.amazonaws.com\"}}}]}");
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "via", "PolicyDocument", pol,
        NULL);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_OK, "%s", r.reason);
    /* and an explicit deny on one key is named */
    snprintf(pol, sizeof pol,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":"
             "\"kms:Decrypt\",\"Resource\":\"%s\"}]}",
             key2_arn);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "via", "PolicyDocument", pol,
        NULL);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_MISSING);
    snprintf(want, sizeof want,
             "ResourceInitializationError: unable to pull secrets or registry auth: the "
             "execution role " ROLE " is missing 1 permission: kms:Decrypt on %s",
             key2_arn);
    cr_assert_str_eq(r.reason, want);

    /* a role of this account the embedded IAM does not have: it does not
     * exist, and the reason says so (not AccessDenied on sts:AssumeRole) */
    run_once(&r, td, "arn:aws:iam::" ACCT ":role/nobody");
    cr_assert_eq(r.outcome, AG_PF_MISSING);
    cr_assert_str_eq(r.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: the execution role arn:aws:iam::" ACCT
                               ":role/nobody does not exist (check its name and account)");
    ag_preflight_stats st;
    ag_preflight_get_stats(r.pf, &st);
    cr_assert_eq(st.runs, 5);
    cr_assert_eq(st.missing, 3);
    cr_assert_eq(st.ok, 2);
    cr_assert_eq(st.skipped, 0);
    /* per run: 3 parameters of one region in one DescribeParameters, 2 secrets,
     * 2 keys (the default ones are not asked) */
    cr_assert_eq(st.lookups, 5 * 5, "%lu", st.lookups);
    cr_assert_eq(st.simulations, 0);
    run_close(&r);
    ag_taskdef_free(td);
}

/* An expansion's path: ssm:GetParametersByPath on the path's ARN (no '/'
 * at its end), kms:Decrypt on the customer keys of the SecureStrings under
 * it (alias/MyAliasName's; the default key needs nothing); the JSON secret
 * as a secret. */
Test(preflight_run, expansion_path_and_its_keys)
{
    fill_store();
    jcall("AmazonSSM.PutParameter",
          "{\"Name\":\"/app/deep/k2\",\"Type\":\"SecureString\","
          "\"Value\":\"s2\",\"KeyId\":\"%s\"}",
          key2_arn);
    ag_taskdef *td =
        td_parse("{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
                 "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"dockerLabels\":{"
                 "\"ecs-secrets.expand.APP_\":\"/app/\",\"ecs-secrets.expand.DB_\":\"db\"}}]}");
    run r;
    run_open(&r, true);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_MISSING);
    /* the two keys in the order the store lists the parameters under the path */
    char want[AG_REASON_BUF], want2[AG_REASON_BUF];
    const char *fmt = "ResourceInitializationError: unable to pull secrets or registry auth: the "
                      "execution role " ROLE " is missing 4 permissions: "
                      "ssm:GetParametersByPath on arn:aws:ssm:us-east-2:" ACCT ":parameter/app; "
                      "secretsmanager:GetSecretValue on %s; kms:Decrypt on %s; kms:Decrypt on %s";
    snprintf(want, sizeof want, fmt, secret_arn, key_arn, key2_arn);
    snprintf(want2, sizeof want2, fmt, secret_arn, key2_arn, key_arn);
    cr_assert(strcmp(r.reason, want) == 0 || strcmp(r.reason, want2) == 0, "%s", r.reason);
    char pol[2048];
    snprintf(pol, sizeof pol,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
             "\"ssm:GetParametersByPath\",\"secretsmanager:GetSecretValue\",\"kms:Decrypt\"],"
             "\"Resource\":[\"arn:aws:ssm:us-east-2:" ACCT ":parameter/app\",\"%s\",\"%s\","
             "\"%s\"]}]}",
             secret_arn, key_arn, key2_arn);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "secrets", "PolicyDocument", pol,
        NULL);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_OK, "%s", r.reason);
    run_close(&r);
    ag_taskdef_free(td);
}

Test(preflight_run, unknown_secret_and_parameter_drop_only_their_pairs)
{
    fill_store();
    ag_taskdef *td =
        td_parse("{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
                 "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"secrets\":["
                 "{\"name\":\"NOPE\",\"valueFrom\":\"/app/nope\"},"
                 "{\"name\":\"GONE\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-2:" ACCT
                 ":secret:gone\"},"
                 "{\"name\":\"GONE2\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-2:" ACCT
                 ":secret:gone2-AbC123\"}]}]}");
    run r;
    run_open(&r, true);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_MISSING);
    cr_assert_str_eq(r.reason,
                     "ResourceInitializationError: unable to pull secrets or registry auth: the "
                     "execution role " ROLE " is missing 2 permissions: ssm:GetParameters on "
                     "arn:aws:ssm:us-east-2:" ACCT
                     ":parameter/app/nope (which does not exist: check its name and region); "
                     "secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-2:" ACCT
                     ":secret:gone2-AbC123");
    run_close(&r);
    ag_taskdef_free(td);
}

/* A definition read back from the agent's store is parsed without a region
 * (agent/store/store.c): the resource ARNs still carry the task's region (the
 * plan's), not an empty one ("arn:aws:ssm::ACCT:parameter/..." was the
 * regression the parse-once change first had). */
Test(preflight_run, a_stored_definition_names_the_task_region)
{
    fill_store();
    const char *json =
        "{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
        "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"secrets\":["
        "{\"name\":\"NOPE\",\"valueFrom\":\"/app/nope\"}]}]}";
    ag_taskdef *td = NULL;
    ag_td_error e;
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &(ag_td_ctx){0}, &td, &e), 0, "%s",
                 e.message);
    run r;
    run_open(&r, true);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_MISSING);
    cr_assert_str_eq(r.reason,
                     "ResourceInitializationError: unable to pull secrets or registry auth: the "
                     "execution role " ROLE " is missing 1 permission: ssm:GetParameters on "
                     "arn:aws:ssm:us-east-2:" ACCT
                     ":parameter/app/nope (which does not exist: check its name and region)");
    run_close(&r);
    ag_taskdef_free(td);
}

/* Mode aws with the embedded store as its AWS (a cluster's store node): the
 * preflight asks the embedded IAM's SimulatePrincipalPolicy. The simulation
 * sees no resource policy, so an implicit deny counts as missing only for
 * parameters (which have none); secrets and keys are left to the fetch. */
Test(preflight_run, aws_mode_simulates_against_the_embedded_iam)
{
    fill_store();
    ag_taskdef *td = td_parse(TD);
    run r;
    run_open(&r, false);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_MISSING, "%s", r.reason);
    cr_assert_str_eq(r.reason,
                     "ResourceInitializationError: unable to pull secrets or registry auth: the "
                     "execution role " ROLE " is missing 3 permissions: "
                     "ssm:GetParameters on arn:aws:ssm:us-east-2:" ACCT ":parameter/app/plain; "
                     "ssm:GetParameters on arn:aws:ssm:us-east-2:" ACCT ":parameter/app/secure; "
                     "ssm:GetParameters on arn:aws:ssm:us-east-2:" ACCT ":parameter/app/default");
    ag_preflight_stats st;
    ag_preflight_get_stats(r.pf, &st);
    cr_assert_eq(st.lookups, 5, "1 DescribeParameters, 2 secrets, 2 keys: %lu", st.lookups);
    cr_assert_eq(st.simulations, 3, "ssm, secretsmanager, kms (both via ssm): %lu", st.simulations);

    /* an explicit Deny counts for a secret too */
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "params", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:us-east-2:" ACCT ":parameter/app/*\"},"
        "{\"Effect\":\"Deny\",\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}",
        NULL);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_MISSING, "%s", r.reason);
    cr_assert_not_null(
        strstr(r.reason, "is missing 2 permissions: secretsmanager:GetSecretValue on "), "%s",
        r.reason);
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "params", NULL);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "params", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ssm:GetParameters\",\"Resource\":\"arn:aws:ssm:us-east-2:" ACCT ":parameter/app/*\"}]}",
        NULL);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_OK, "%s", r.reason);
    run_close(&r);
    ag_taskdef_free(td);
}

Test(preflight_run, no_secrets_is_ok_without_a_call)
{
    ag_taskdef *td = td_parse("{\"family\":\"app\",\"containerDefinitions\":[{\"name\":\"a\","
                              "\"image\":\"busybox\",\"memory\":32}]}");
    run r;
    run_open(&r, true);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_OK);
    ag_preflight_stats st;
    ag_preflight_get_stats(r.pf, &st);
    cr_assert_eq(st.lookups, 0);
    run_close(&r);
    ag_taskdef_free(td);
}

/* ------------------------------------------- wired into the resolver */

#include "agent/secrets/resolve.h"

typedef struct rdone {
    int calls;
    ag_resolution *res;
    char reason[AG_REASON_BUF];
} rdone;

static void on_resolved(void *arg, ag_resolution *res, const char *reason)
{
    rdone *d = arg;
    d->calls++;
    d->res = res;
    snprintf(d->reason, sizeof d->reason, "%s", reason ? reason : "");
}

static void resolve_once(run *r, ag_resolver *rs, const ag_taskdef *td, rdone *d)
{
    memset(d, 0, sizeof *d);
    cr_assert_eq(ag_resolve_start(rs, td, on_resolved, d), 0);
    while (d->calls == 0)
        uv_run(&r->loop, UV_RUN_ONCE);
}

Test(preflight_run, resolver_stops_before_any_credential_or_fetch)
{
    fill_store();
    ag_taskdef *td =
        td_parse("{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
                 "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"secrets\":["
                 "{\"name\":\"SECURE\",\"valueFrom\":\"/app/secure\"},"
                 "{\"name\":\"DB\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-2:" ACCT
                 ":secret:db:pw::\"}]}]}");
    run r;
    run_open(&r, true);
    uint8_t fp[32] = {1};
    ag_resolver_config rc = {.client = r.client,
                             .creds = r.creds,
                             .region = REGION,
                             .fp_key = fp,
                             .fp_key_len = sizeof fp,
                             .preflight = r.pf};
    ag_resolver *rs = NULL;
    cr_assert_eq(ag_resolver_create(&rc, &rs), 0);
    rdone d;
    resolve_once(&r, rs, td, &d);
    cr_assert_null(d.res);
    char want[AG_REASON_BUF];
    snprintf(want, sizeof want,
             "ResourceInitializationError: unable to pull secrets or registry auth: the "
             "execution role " ROLE " is missing 3 permissions: ssm:GetParameters on "
             "arn:aws:ssm:us-east-2:" ACCT ":parameter/app/secure; secretsmanager:GetSecretValue "
             "on %s; kms:Decrypt on %s",
             secret_arn, key_arn);
    cr_assert_str_eq(d.reason, want);
    ag_resolver_stats st;
    ag_resolver_get_stats(rs, &st);
    cr_assert_eq(st.ssm_calls + st.sm_calls, 0, "no value fetched");
    cr_assert_eq(st.preflight_denied, 1);
    aw_creds_stats cs;
    aw_creds_get_stats(r.creds, &cs);
    cr_assert_eq(cs.role_fetches, 0, "the role was not assumed");

    char pol[2048];
    snprintf(pol, sizeof pol,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
             "\"ssm:GetParameters\",\"secretsmanager:GetSecretValue\",\"kms:Decrypt\"],"
             "\"Resource\":[\"arn:aws:ssm:us-east-2:" ACCT ":parameter/app/secure\",\"%s\","
             "\"%s\"]}]}",
             secret_arn, key_arn);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "secrets", "PolicyDocument", pol,
        NULL);
    resolve_once(&r, rs, td, &d);
    cr_assert_not_null(d.res, "%s", d.reason);
    cr_assert_eq(d.res->n, 2);
    cr_assert_str_eq(d.res->items[0].value, "s");
    cr_assert_str_eq(d.res->items[1].value, "x");
    ag_resolution_free(d.res);
    ag_resolver_get_stats(rs, &st);
    cr_assert_eq(st.ssm_calls, 1);
    cr_assert_eq(st.sm_calls, 1);
    run_close(&r);
    ag_resolver_free(rs);
    ag_taskdef_free(td);
}

Test(preflight_run, single_level_parameter_by_arn_finds_its_key)
{
    fill_store();
    jcall("AmazonSSM.PutParameter", "{\"Name\":\"top\",\"Type\":\"SecureString\","
                                    "\"Value\":\"t\",\"KeyId\":\"alias/MyAliasName\"}");
    ag_taskdef *td = td_parse(
        "{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
        "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"secrets\":["
        "{\"name\":\"TOP\",\"valueFrom\":\"arn:aws:ssm:us-east-2:" ACCT ":parameter/top\"},"
        "{\"name\":\"TOP2\",\"valueFrom\":\"top\"}]}]}");
    run r;
    run_open(&r, true);
    run_once(&r, td, ROLE);
    cr_assert_eq(r.outcome, AG_PF_MISSING);
    char want[AG_REASON_BUF];
    snprintf(want, sizeof want,
             "ResourceInitializationError: unable to pull secrets or registry auth: the "
             "execution role " ROLE " is missing 2 permissions: ssm:GetParameters on "
             "arn:aws:ssm:us-east-2:" ACCT ":parameter/top; kms:Decrypt on %s",
             key_arn);
    cr_assert_str_eq(r.reason, want);
    ag_preflight_stats st;
    ag_preflight_get_stats(r.pf, &st);
    cr_assert_eq(st.lookups, 2, "one parameter, one key: %lu", st.lookups);
    run_close(&r);
    ag_taskdef_free(td);
}

/* ------------------------------------- issue 20: environment files */

typedef struct put_done {
    bool done, failed;
    aw_error err;
} put_done;

static void on_put(void *arg, const aw_error *err, aw_http_response *resp)
{
    (void)resp;
    put_done *d = arg;
    d->done = true;
    d->failed = err != NULL;
    if (err)
        d->err = *err;
}

/* An S3 PUT (a bucket, or an object with its body) as the administrator. */
static void s3_put(run *r, const char *path, const char *body)
{
    put_done d = {0};
    aw_sigv4_creds cr = {r->akid, r->secret, NULL};
    aw_call call = {.service = AW_SVC_S3,
                    .operation = "PUT",
                    .method = "PUT",
                    .path = path,
                    .body = body,
                    .body_len = body ? strlen(body) : 0};
    cr_assert_eq(aw_call_start(r->client, &cr, &call, on_put, &d), 0);
    while (!d.done)
        uv_run(&r->loop, UV_RUN_ONCE);
    cr_assert_not(d.failed, "PUT %s: %s: %s", path, d.err.code, d.err.message);
}

static const char *env_in(const char *list, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t o = 0; o < len; o += strlen(list + o) + 1)
        if (strncmp(list + o, name, n) == 0 && list[o + n] == '=')
            return list + o + n + 1;
    return NULL;
}

/* The files are checked by the same preflight as the secrets (s3:GetObject
 * on the object, s3:GetBucketLocation on its bucket), one refusal naming
 * every missing permission; once allowed they are fetched with the role's
 * credentials, read by ECS's rules and merged per container, the first file
 * to name a variable winning; a file that is not there is named by its
 * ARN, and a file that breaks a limit by its line, never its content. */
Test(preflight_run, environment_files_are_checked_and_fetched_with_the_secrets)
{
    fill_store();
    run r;
    run_open(&r, true);
    s3_put(&r, "/envs",
           "<CreateBucketConfiguration><LocationConstraint>" REGION "</LocationConstraint>"
           "</CreateBucketConfiguration>");
    s3_put(&r, "/envs/app.env", "# app\nA=from-app\nBOTH=app\n\nVALUE_SECRET_MARK=x\n");
    s3_put(&r, "/envs/dir/common.env", "BOTH=common\r\nC=from-common\nnot a line\n");
    ag_taskdef *td = td_parse(
        "{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
        "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,"
        "\"secrets\":[{\"name\":\"SECURE\",\"valueFrom\":\"/app/secure\"}],"
        "\"environmentFiles\":[{\"value\":\"arn:aws:s3:::envs/app.env\",\"type\":\"s3\"},"
        "{\"value\":\"arn:aws:s3:::envs/dir/common.env\",\"type\":\"s3\"}]},"
        "{\"name\":\"b\",\"image\":\"busybox\",\"memory\":32,\"essential\":false,"
        "\"environmentFiles\":[{\"value\":\"arn:aws:s3:::envs/dir/common.env\",\"type\":\"s3\"},"
        "{\"value\":\"arn:aws:s3:::envs/app.env\",\"type\":\"s3\"}]},"
        "{\"name\":\"c\",\"image\":\"busybox\",\"memory\":32,\"essential\":false}]}");
    uint8_t fp[32] = {1};
    ag_resolver_config rc = {.client = r.client,
                             .creds = r.creds,
                             .region = REGION,
                             .fp_key = fp,
                             .fp_key_len = sizeof fp,
                             .preflight = r.pf};
    ag_resolver *rs = NULL;
    cr_assert_eq(ag_resolver_create(&rc, &rs), 0);
    rdone d;
    resolve_once(&r, rs, td, &d);
    cr_assert_null(d.res);
    char want[AG_REASON_BUF];
    snprintf(want, sizeof want,
             "ResourceInitializationError: unable to pull secrets or registry auth: the "
             "execution role " ROLE " is missing 5 permissions: ssm:GetParameters on "
             "arn:aws:ssm:us-east-2:" ACCT ":parameter/app/secure; s3:GetObject on "
             "arn:aws:s3:::envs/app.env; s3:GetBucketLocation on arn:aws:s3:::envs; "
             "s3:GetObject on arn:aws:s3:::envs/dir/common.env; kms:Decrypt on %s",
             key_arn);
    cr_assert_str_eq(d.reason, want);
    ag_resolver_stats st;
    ag_resolver_get_stats(rs, &st);
    cr_assert_eq(st.s3_calls, 0, "no file fetched before the role may read it");

    /* the secret allowed, the files not: only the files are named */
    char pol[2048];
    snprintf(pol, sizeof pol,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
             "\"ssm:GetParameters\",\"kms:Decrypt\"],\"Resource\":[\"arn:aws:ssm:us-east-2:" ACCT
             ":parameter/app/secure\",\"%s\"]},{\"Effect\":\"Allow\",\"Action\":"
             "\"s3:GetBucketLocation\",\"Resource\":\"arn:aws:s3:::envs\"}]}",
             key_arn);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "secrets", "PolicyDocument", pol,
        NULL);
    resolve_once(&r, rs, td, &d);
    cr_assert_null(d.res);
    cr_assert_str_eq(d.reason,
                     "ResourceInitializationError: unable to pull secrets or registry auth: the "
                     "execution role " ROLE " is missing 2 permissions: s3:GetObject on "
                     "arn:aws:s3:::envs/app.env; s3:GetObject on arn:aws:s3:::envs/dir/common.env");

    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "files", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::envs/*\"}]}",
        NULL);
    resolve_once(&r, rs, td, &d);
    cr_assert_not_null(d.res, "%s", d.reason);
    cr_assert_eq(d.res->n, 1);
    cr_assert_str_eq(d.res->items[0].value, "s");
    cr_assert_eq(d.res->n_envfiles, 2, "containers a and b; c has no files");
    size_t len = 0;
    const char *a = ag_resolution_envfiles(d.res, 0, &len);
    cr_assert_not_null(a);
    cr_assert_str_eq(env_in(a, len, "A"), "from-app");
    cr_assert_str_eq(env_in(a, len, "BOTH"), "app", "the first file wins");
    cr_assert_str_eq(env_in(a, len, "C"), "from-common", "a CR before the LF is dropped");
    cr_assert_null(env_in(a, len, "not a line"));
    const char *b = ag_resolution_envfiles(d.res, 1, &len);
    cr_assert_str_eq(env_in(b, len, "BOTH"), "common", "b names common.env first");
    cr_assert_str_eq(env_in(b, len, "A"), "from-app");
    cr_assert_null(ag_resolution_envfiles(d.res, 2, &len));
    cr_assert_eq(len, 0);
    ag_resolution_free(d.res);
    ag_resolver_get_stats(rs, &st);
    cr_assert_eq(st.s3_calls, 4, "per distinct object its bucket's location, then the object");

    /* a refresh of the secrets alone: no file read, no S3 permission asked
     * (the role may no longer read the files) */
    qok("iam", "DeleteRolePolicy", "RoleName", "exec", "PolicyName", "files", NULL);
    memset(&d, 0, sizeof d);
    cr_assert_eq(ag_resolve_start_secrets(rs, td, on_resolved, &d), 0);
    while (d.calls == 0)
        uv_run(&r.loop, UV_RUN_ONCE);
    cr_assert_not_null(d.res, "%s", d.reason);
    cr_assert_eq(d.res->n, 1);
    cr_assert_eq(d.res->n_envfiles, 0);
    ag_resolution_free(d.res);
    ag_resolver_get_stats(rs, &st);
    cr_assert_eq(st.s3_calls, 4, "no S3 call for a refresh");
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "files", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::envs/*\"}]}",
        NULL);

    /* a file that is not there: the resolution fails naming it */
    ag_taskdef *gone =
        td_parse("{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
                 "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"environmentFiles\":["
                 "{\"value\":\"arn:aws:s3:::envs/gone.env\",\"type\":\"s3\"}]}]}");
    resolve_once(&r, rs, gone, &d);
    cr_assert_null(d.res);
    cr_assert(strstr(d.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: execution resource retrieval failed: unable to retrieve "
                               "environment file arn:aws:s3:::envs/gone.env from s3: NoSuchKey: "
                               "The specified key does not exist.") == d.reason,
              "%s", d.reason);
    ag_taskdef_free(gone);

    /* a name past the limit: the line is named, not its content */
    char big[AG_ENVFILE_NAME_MAX + 64];
    memset(big, 'N', AG_ENVFILE_NAME_MAX + 1);
    snprintf(big + AG_ENVFILE_NAME_MAX + 1, sizeof big - AG_ENVFILE_NAME_MAX - 1, "=MARKVALUE\n");
    char body[AG_ENVFILE_NAME_MAX + 128];
    snprintf(body, sizeof body, "OK=1\n%s", big);
    s3_put(&r, "/envs/long.env", body);
    ag_taskdef *lng =
        td_parse("{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
                 "{\"name\":\"a\",\"image\":\"busybox\",\"memory\":32,\"environmentFiles\":["
                 "{\"value\":\"arn:aws:s3:::envs/long.env\",\"type\":\"s3\"}]}]}");
    resolve_once(&r, rs, lng, &d);
    cr_assert_null(d.res);
    cr_assert(strstr(d.reason, "environment file arn:aws:s3:::envs/long.env from s3: line 2: the "
                               "variable's name is longer than 255 characters"),
              "%s", d.reason);
    cr_assert_null(strstr(d.reason, "MARKVALUE"));
    ag_taskdef_free(lng);

    run_close(&r);
    ag_resolver_free(rs);
    ag_taskdef_free(td);
}

/* ------------------------------------------- images from ECR (issue 20) */

#include <fcntl.h>
#include <sys/stat.h>

/* Decodes base64url with padding (what dockerd reads from X-Registry-Auth). */
static size_t b64url_decode(const char *in, char *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *q = strchr(alphabet, *p);
        cr_assert_not_null(q, "not base64url: %c", *p);
        acc = (acc << 6) | (unsigned)(q - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            cr_assert_lt(n, cap);
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    return n;
}

#define ECR_HOST ACCT ".dkr.ecr.us-east-2.amazonaws.com"

/* A clock at which the embedded ECR's 12-hour tokens expire within the
 * resolver's margin. */
static int64_t late_clock(void)
{
    return (int64_t)time(NULL) + 12 * 3600 - AG_ECR_TOKEN_MARGIN_S + 60;
}
#define ECR_PW "ecr-Pa55-9d1c"

/* An image on the local registry (the account's ECR) and one on the
 * account's real ECR host: the preflight names ecr:GetAuthorizationToken on
 * "*" and ecr:BatchGetImage / ecr:GetDownloadUrlForLayer on each
 * repository; the managed AmazonECSTaskExecutionRolePolicy grants them; the
 * token, asked once per registry with the role, becomes each container's
 * X-Registry-Auth for its own host, and is taken from the cache the next
 * time; a container with repositoryCredentials or a Docker Hub image gets
 * none. */
Test(preflight_run, ecr_images_checked_then_pulled_with_the_token)
{
    char cred[600];
    snprintf(cred, sizeof cred, "%s/ecr-credentials", T.dir);
    int fd = open(cred, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "reguser:" ECR_PW "\n", 21), 21);
    close(fd);
    T.ecr_registry = "127.0.0.1:5000";
    T.ecr_credentials_file = cred;
    alt_reopen();
    fill_store();
    ag_taskdef *td = td_parse(
        "{\"family\":\"app\",\"executionRoleArn\":\"" ROLE "\",\"containerDefinitions\":["
        "{\"name\":\"a\",\"image\":\"127.0.0.1:5000/team/app:1\",\"memory\":32},"
        "{\"name\":\"b\",\"image\":\"busybox\",\"memory\":32,\"essential\":false},"
        "{\"name\":\"c\",\"image\":\"" ECR_HOST "/base\",\"memory\":32,\"essential\":false}]}");
    run r;
    run_open(&r, true);
    uint8_t fp[32] = {1};
    ag_resolver_config rc = {
        .client = r.client,
        .creds = r.creds,
        .region = REGION,
        .fp_key = fp,
        .fp_key_len = sizeof fp,
        .preflight = r.pf,
        .ecr_local = {.host = "127.0.0.1:5000", .account = ACCT, .region = REGION}};
    ag_resolver *rs = NULL;
    cr_assert_eq(ag_resolver_create(&rc, &rs), 0);
    rdone d;

    /* the managed policy grants what ECS's pull needs */
    resolve_once(&r, rs, td, &d);
    cr_assert_not_null(d.res, "%s", d.reason);
    cr_assert_eq(d.res->n, 0, "no secret");
    cr_assert_eq(d.res->n_ecr, 2);
    char doc[1024];
    const char *auth = ag_resolution_registry_auth(d.res, 0);
    cr_assert_not_null(auth);
    b64url_decode(auth, doc, sizeof doc - 1);
    cr_assert_str_eq(doc, "{\"username\":\"reguser\",\"password\":\"" ECR_PW
                          "\",\"serveraddress\":\"127.0.0.1:5000\"}");
    cr_assert_null(ag_resolution_registry_auth(d.res, 1), "Docker Hub's image: none");
    auth = ag_resolution_registry_auth(d.res, 2);
    cr_assert_not_null(auth);
    b64url_decode(auth, doc, sizeof doc - 1);
    cr_assert_str_eq(doc, "{\"username\":\"reguser\",\"password\":\"" ECR_PW
                          "\",\"serveraddress\":\"" ECR_HOST "\"}");
    ag_resolution_free(d.res);
    ag_resolver_stats st;
    ag_resolver_get_stats(rs, &st);
    cr_assert_eq(st.ecr_calls, 2, "one GetAuthorizationToken per registry");
    cr_assert_eq(st.ecr_cached, 0);
    resolve_once(&r, rs, td, &d);
    cr_assert_not_null(d.res, "%s", d.reason);
    ag_resolution_free(d.res);
    ag_resolver_get_stats(rs, &st);
    cr_assert_eq(st.ecr_calls, 2, "the tokens were kept");
    cr_assert_eq(st.ecr_cached, 2);

    /* without the managed policy: every permission named, nothing asked */
    qok("iam", "DetachRolePolicy", "RoleName", "exec", "PolicyArn", EXEC_POLICY_ARN, NULL);
    resolve_once(&r, rs, td, &d);
    cr_assert_null(d.res);
    cr_assert_str_eq(
        d.reason, "ResourceInitializationError: unable to pull secrets or registry auth: the "
                  "execution role " ROLE " is missing 5 permissions: ecr:GetAuthorizationToken "
                  "on *; ecr:BatchGetImage on arn:aws:ecr:us-east-2:" ACCT
                  ":repository/team/app; ecr:GetDownloadUrlForLayer on arn:aws:ecr:us-east-2:" ACCT
                  ":repository/team/app; ecr:BatchGetImage on arn:aws:ecr:us-east-2:" ACCT
                  ":repository/base; ecr:GetDownloadUrlForLayer on arn:aws:ecr:us-east-2:" ACCT
                  ":repository/base");
    /* a create whose client pulled its image (the Docker socket): nothing of ECR asked */
    memset(&d, 0, sizeof d);
    cr_assert_eq(ag_resolve_start_no_pull(rs, td, on_resolved, &d), 0);
    while (d.calls == 0)
        uv_run(&r.loop, UV_RUN_ONCE);
    cr_assert_not_null(d.res, "%s", d.reason);
    cr_assert_eq(d.res->n_ecr, 0);
    ag_resolution_free(d.res);
    /* all but ecr:BatchGetImage on one repository: that one is named */
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "ecr", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
        "\"ecr:GetAuthorizationToken\",\"ecr:GetDownloadUrlForLayer\"],\"Resource\":\"*\"},"
        "{\"Effect\":\"Allow\",\"Action\":\"ecr:BatchGetImage\",\"Resource\":"
        "\"arn:aws:ecr:us-east-2:" ACCT ":repository/base\"}]}",
        NULL);
    resolve_once(&r, rs, td, &d);
    cr_assert_null(d.res);
    cr_assert_str_eq(d.reason,
                     "ResourceInitializationError: unable to pull secrets or registry "
                     "auth: the execution role " ROLE " is missing 1 permission: "
                     "ecr:BatchGetImage on arn:aws:ecr:us-east-2:" ACCT ":repository/team/app");
    cr_assert_null(strstr(d.reason, ECR_PW));

    /* a role whose token call fails (the preflight off): ECS's words, no
     * token; another role, so no kept token answers for it */
    ag_resolver *bare = NULL;
    rc.preflight = NULL;
    cr_assert_eq(ag_resolver_create(&rc, &bare), 0);
    qok("iam", "PutRolePolicy", "RoleName", "exec", "PolicyName", "ecr", "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":"
        "\"ecr:BatchGetImage\",\"Resource\":\"*\"}]}",
        NULL);
    resolve_once(&r, bare, td, &d);
    cr_assert_null(d.res);
    cr_assert(strstr(d.reason, "ResourceInitializationError: unable to pull secrets or registry "
                               "auth: execution resource retrieval failed: unable to retrieve "
                               "ecr registry auth for ") == d.reason,
              "%s", d.reason);
    cr_assert(strstr(d.reason, "AccessDeniedException"), "%s", d.reason);
    cr_assert_null(strstr(d.reason, ECR_PW));
    ag_resolver_free(bare);

    /* a token that expires within AG_ECR_TOKEN_MARGIN_S is used once, not kept */
    qok("iam", "AttachRolePolicy", "RoleName", "exec", "PolicyArn", EXEC_POLICY_ARN, NULL);
    rc.now = late_clock;
    rc.preflight = r.pf;
    ag_resolver *late = NULL;
    cr_assert_eq(ag_resolver_create(&rc, &late), 0);
    for (int i = 0; i < 2; i++) {
        resolve_once(&r, late, td, &d);
        cr_assert_not_null(d.res, "%s", d.reason);
        cr_assert_eq(d.res->n_ecr, 2);
        ag_resolution_free(d.res);
    }
    ag_resolver_get_stats(late, &st);
    cr_assert_eq(st.ecr_calls, 4, "asked again each time");
    cr_assert_eq(st.ecr_cached, 0);
    ag_resolver_free(late);

    /* no execution role: pulled as before, with dockerd's own credentials */
    ag_taskdef *norole = td_parse("{\"family\":\"app\",\"containerDefinitions\":["
                                  "{\"name\":\"a\",\"image\":\"127.0.0.1:5000/team/app:1\","
                                  "\"memory\":32}]}");
    resolve_once(&r, rs, norole, &d);
    cr_assert_not_null(d.res, "%s", d.reason);
    cr_assert_eq(d.res->n_ecr, 0);
    ag_resolution_free(d.res);
    ag_taskdef_free(norole);
    run_close(&r);
    ag_resolver_free(rs);
    ag_taskdef_free(td);
}
