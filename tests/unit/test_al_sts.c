/* The embedded STS: AssumeRole's checks, the credentials it issues, and
 * their verification by al_verify (token required and matching, expiry). */
#include "iam_helpers.h"

#include <stdarg.h>

#include "aws/local/auth.h"
#include "aws/sigv4.h"
#include "aws/sts.h"
#include "common/secure.h"

TestSuite(al_sts, .init = alt_setup, .fini = alt_teardown);

static const char *ROLE_ARN = "arn:aws:iam::123456789012:role/exec";

Test(al_sts, assume_role_as_ecs)
{
    make_role("exec", ECS_TRUST);
    qok("sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "task-1", NULL);
    cr_assert_not_null(strstr(es_buf_cstr(&T.out),
                              "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/"
                              "2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>ASIA"));
    const char *akid = xml("AccessKeyId");
    cr_assert_eq(strlen(akid), 20);
    cr_assert_eq(strlen(xml("SecretAccessKey")), 40);
    cr_assert_eq(strlen(xml("SessionToken")), AL_STS_TOKEN_LEN);
    cr_assert_str_eq(xml("Expiration"), "2023-11-14T23:13:20Z", "default 3600 s");
    cr_assert_str_eq(xml("Arn"), "arn:aws:sts::123456789012:assumed-role/exec/task-1");
    const char *arid = xml("AssumedRoleId");
    cr_assert_eq(strncmp(arid, "AROA", 4), 0);
    cr_assert_not_null(strstr(arid, ":task-1"));
    qok("sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "ss", "DurationSeconds", "900",
        NULL);
    cr_assert_str_eq(xml("Expiration"), "2023-11-14T22:28:20Z");
}

Test(al_sts, assume_role_errors)
{
    make_role("exec", ECS_TRUST);
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleArn", ROLE_ARN, NULL);
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleSessionName", "ss", NULL);
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "ss",
          "DurationSeconds", "899", NULL);
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "ss",
          "DurationSeconds", "43201", NULL);
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "ss",
          "DurationSeconds", "12x", NULL);
    /* within the bounds but over the role's MaxSessionDuration (3600) */
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "ss",
          "DurationSeconds", "3601", NULL);
    cr_assert_str_eq(T.err.message,
                     "The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                     "role.");
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName",
          "bad name", NULL);
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "x",
          NULL); /* 2..64 */
    qfail(400, "ValidationError", "sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "ss",
          "Policy", "{}", NULL);
    /* no such role / another account: AccessDenied, as AWS answers */
    qfail(403, "AccessDenied", "sts", "AssumeRole", "RoleArn",
          "arn:aws:iam::123456789012:role/ghost", "RoleSessionName", "ss", NULL);
    cr_assert_str_eq(T.err.message,
                     "User: arn:aws:iam::123456789012:root is not authorized to perform: "
                     "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/ghost");
    qfail(403, "AccessDenied", "sts", "AssumeRole", "RoleArn",
          "arn:aws:iam::210987654321:role/exec", "RoleSessionName", "ss", NULL);
    qfail(403, "AccessDenied", "sts", "AssumeRole", "RoleArn",
          "arn:aws:iam::123456789012:role/wrongpath/exec", "RoleSessionName", "ss", NULL);
    /* a trust policy that names neither ECS nor the caller */
    make_role("other", "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                       "\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":"
                       "\"sts:AssumeRole\"}]}");
    qfail(403, "AccessDenied", "sts", "AssumeRole", "RoleArn",
          "arn:aws:iam::123456789012:role/other", "RoleSessionName", "ss", NULL);
    /* a Deny for ECS in the trust policy wins */
    make_role("denied", "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                        "\"Principal\":{\"Service\":\"ecs-tasks.amazonaws.com\"},\"Action\":"
                        "\"sts:AssumeRole\"},{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":"
                        "\"sts:*\"}]}");
    qfail(403, "AccessDenied", "sts", "AssumeRole", "RoleArn",
          "arn:aws:iam::123456789012:role/denied", "RoleSessionName", "ss", NULL);
}

Test(al_sts, assume_role_by_account_trust_and_external_id)
{
    /* the account root named in the trust policy, with an ExternalId
     * condition */
    make_role("ext", "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                     "\"Principal\":{\"AWS\":\"arn:aws:iam::123456789012:root\"},\"Action\":"
                     "\"sts:AssumeRole\",\"Condition\":{\"StringEquals\":{\"sts:ExternalId\":"
                     "\"abc\"}}}]}");
    qfail(403, "AccessDenied", "sts", "AssumeRole", "RoleArn", "arn:aws:iam::123456789012:role/ext",
          "RoleSessionName", "ss", NULL);
    qfail(403, "AccessDenied", "sts", "AssumeRole", "RoleArn", "arn:aws:iam::123456789012:role/ext",
          "RoleSessionName", "ss", "ExternalId", "abd", NULL);
    qok("sts", "AssumeRole", "RoleArn", "arn:aws:iam::123456789012:role/ext", "RoleSessionName",
        "ss", "ExternalId", "abc", NULL);
}

Test(al_sts, role_chaining)
{
    al_authz_install(T.ctx);
    make_role("first", ECS_TRUST);
    qok("iam", "CreateRole", "RoleName", "second", "MaxSessionDuration", "7200",
        "AssumeRolePolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
        "\"arn:aws:iam::123456789012:role/first\"},\"Action\":\"sts:AssumeRole\"}]}",
        NULL);
    const char *sess = "arn:aws:sts::123456789012:assumed-role/first/s";
    /* the trust policy names the caller's role: allowed without identity grant */
    cr_assert_eq(qcall("sts", sess, "AssumeRole", "RoleArn",
                       "arn:aws:iam::123456789012:role/second", "RoleSessionName", "chained", NULL),
                 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_eq(qcall("sts", sess, "AssumeRole", "RoleArn",
                       "arn:aws:iam::123456789012:role/second", "RoleSessionName", "chained",
                       "DurationSeconds", "7200", NULL),
                 400);
    cr_assert_not_null(strstr(T.err.message, "role chaining"));
    /* another session cannot */
    cr_assert_eq(qcall("sts", "arn:aws:sts::123456789012:assumed-role/second/x", "AssumeRole",
                       "RoleArn", "arn:aws:iam::123456789012:role/second", "RoleSessionName", "cc",
                       NULL),
                 403);
}

Test(al_sts, get_caller_identity)
{
    qok("sts", "GetCallerIdentity", NULL);
    cr_assert_str_eq(xml("UserId"), "123456789012");
    cr_assert_str_eq(xml("Account"), "123456789012");
    cr_assert_str_eq(xml("Arn"), ROOT);
    make_role("exec", ECS_TRUST);
    qok("iam", "GetRole", "RoleName", "exec", NULL);
    char id[32];
    snprintf(id, sizeof id, "%s", xml("RoleId"));
    al_authz_install(T.ctx); /* needs no permission */
    cr_assert_eq(
        qcall("sts", "arn:aws:sts::123456789012:assumed-role/exec/sess", "GetCallerIdentity", NULL),
        0);
    char want[64];
    snprintf(want, sizeof want, "%s:sess", id);
    cr_assert_str_eq(xml("UserId"), want);
    cr_assert_str_eq(xml("Arn"), "arn:aws:sts::123456789012:assumed-role/exec/sess");
}

/* ---- the credentials on the wire ---- */

typedef struct sreq {
    aw_header h[8];
    size_t n;
    char date[17];
    es_buf authz;
} sreq;

static void sign(sreq *r, const char *akid, const char *secret, const char *token,
                 const char *sent_token, time_t at, const char *body)
{
    memset(r, 0, sizeof *r);
    r->h[r->n++] = (aw_header){"Host", "127.0.0.1:4577"};
    r->h[r->n++] = (aw_header){"Content-Type", "application/x-amz-json-1.1"};
    r->h[r->n++] = (aw_header){"X-Amz-Target", "AmazonSSM.GetParameters"};
    if (sent_token)
        r->h[r->n++] = (aw_header){"X-Amz-Security-Token", sent_token};
    char hash[65];
    aw_sigv4_sha256_hex(body, strlen(body), hash);
    aw_sigv4_input in = {"POST", "/", NULL, r->h, r->n, hash, false};
    aw_signer *s = aw_signer_create();
    aw_sigv4_creds creds = {akid, secret, token};
    aw_sigv4_result res;
    cr_assert_eq(aw_signer_sign(s, &creds, "us-east-2", "ssm", at, &in, &res), 0);
    aw_signer_free(s);
    memcpy(r->date, res.amz_date, sizeof r->date);
    r->authz = res.authorization;
    r->h[r->n++] = (aw_header){"X-Amz-Date", r->date};
    r->h[r->n++] = (aw_header){"Authorization", es_buf_cstr(&r->authz)};
}

static int verify(sreq *r, const char *body, time_t now, char *principal)
{
    al_request rq = {"POST", "/", NULL, r->h, r->n, body, strlen(body)};
    memset(&T.err, 0, sizeof T.err);
    int rc = al_verify(T.ctx, &rq, "ssm", now, principal, AL_PRINCIPAL_MAX, NULL, &T.err);
    es_buf_free_secret(&r->authz);
    return rc;
}

Test(al_sts, session_credentials_verify)
{
    make_role("exec", ECS_TRUST);
    char akid[32], secret[64], token[256], principal[AL_PRINCIPAL_MAX] = "";
    assume("exec", "task-9", akid, secret, token);
    const char *body = "{\"Names\":[\"/x\"]}";
    time_t now = 1700000000;
    sreq r;
    sign(&r, akid, secret, token, token, now, body);
    cr_assert_eq(verify(&r, body, now, principal), 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_str_eq(principal, "arn:aws:sts::123456789012:assumed-role/exec/task-9");

    /* the token must be sent */
    sign(&r, akid, secret, NULL, NULL, now, body);
    cr_assert_lt(verify(&r, body, now, principal), 0);
    cr_assert_str_eq(T.err.code, "UnrecognizedClientException");
    cr_assert_str_eq(T.err.message, "The security token included in the request is invalid.");
    /* and match */
    char other[256];
    snprintf(other, sizeof other, "%s", token);
    other[10] = other[10] == 'A' ? 'B' : 'A';
    sign(&r, akid, secret, other, other, now, body);
    cr_assert_lt(verify(&r, body, now, principal), 0);
    cr_assert_str_eq(T.err.code, "UnrecognizedClientException");
    /* the secret must be right */
    char bad[64];
    snprintf(bad, sizeof bad, "%s", secret);
    bad[0] = bad[0] == 'a' ? 'b' : 'a';
    sign(&r, akid, bad, token, token, now, body);
    cr_assert_lt(verify(&r, body, now, principal), 0);
    cr_assert_str_eq(T.err.code, "InvalidSignatureException");
    /* an unknown ASIA key */
    sign(&r, "ASIAAAAAAAAAAAAAAAAA", secret, token, token, now, body);
    cr_assert_lt(verify(&r, body, now, principal), 0);
    cr_assert_str_eq(T.err.code, "UnrecognizedClientException");
    /* one second before expiry, then at expiry */
    sign(&r, akid, secret, token, token, now + 3599, body);
    cr_assert_eq(verify(&r, body, now + 3599, principal), 0);
    sign(&r, akid, secret, token, token, now + 3600, body);
    cr_assert_lt(verify(&r, body, now + 3600, principal), 0);
    cr_assert_str_eq(T.err.code, "ExpiredTokenException");
    cr_assert_str_eq(T.err.message, "The security token included in the request is expired");
    /* secrets and tokens are stored only wrapped / hashed */
    al_close(T.ctx);
    T.ctx = NULL;
    cr_assert(dir_contains(akid));
    cr_assert_not(dir_contains(secret));
    cr_assert_not(dir_contains(token));
    alt_open();
    /* and survive a restart */
    sign(&r, akid, secret, token, token, now, body);
    cr_assert_eq(verify(&r, body, now, principal), 0, "%s", T.err.message);
}

Test(al_sts, expired_token_for_query_services)
{
    make_role("exec", ECS_TRUST);
    char akid[32], sec[AL_STS_SECRET_LEN + 1], tok[AL_STS_TOKEN_LEN + 1], principal[256];
    double exp;
    cr_assert_eq(al_sts_issue(T.ctx, "exec", "s1", 900, akid, sec, tok, &exp), 0);
    cr_assert_eq(exp, T.now + 900);
    char *secret = NULL;
    cr_assert_eq(al_sts_lookup(T.ctx, akid, tok, "sts", (time_t)T.now + 900, &secret, principal,
                               sizeof principal, &T.err),
                 -EINVAL);
    cr_assert_str_eq(T.err.code, "ExpiredToken");
    cr_assert_eq(T.err.status, 403);
    cr_assert_eq(al_sts_lookup(T.ctx, akid, "wrong", "iam", (time_t)T.now, &secret, principal,
                               sizeof principal, &T.err),
                 -EINVAL);
    cr_assert_str_eq(T.err.code, "InvalidClientTokenId");
    cr_assert_eq(al_sts_lookup(T.ctx, akid, tok, "sts", (time_t)T.now, &secret, principal,
                               sizeof principal, &T.err),
                 0);
    cr_assert_str_eq(secret, sec);
    es_free_secret_str(secret);
    cr_assert_eq(al_sts_issue(T.ctx, "nope", "s1", 900, akid, sec, tok, &exp), -ENOENT);
    cr_assert_eq(al_sts_issue(T.ctx, "exec", "s", 900, akid, sec, tok, &exp), -EINVAL);
    cr_assert_eq(al_sts_issue(T.ctx, "exec", "s1", 899, akid, sec, tok, &exp), -EINVAL);
}

/* ---- the server's query path: al_query_serve ---- */

static int serve(const char *akid, const char *secret, const char *token, const char *service,
                 const char *body)
{
    aw_header h[8];
    size_t n = 0;
    h[n++] = (aw_header){"Host", "127.0.0.1:4577"};
    h[n++] = (aw_header){"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
    if (token)
        h[n++] = (aw_header){"X-Amz-Security-Token", token};
    char hash[65], date[17];
    aw_sigv4_sha256_hex(body, strlen(body), hash);
    aw_sigv4_input in = {"POST", "/", NULL, h, n, hash, false};
    aw_signer *s = aw_signer_create();
    aw_sigv4_creds creds = {akid, secret, token};
    aw_sigv4_result res;
    cr_assert_eq(aw_signer_sign(s, &creds, "us-east-2", service, 1700000000, &in, &res), 0);
    aw_signer_free(s);
    memcpy(date, res.amz_date, sizeof date);
    h[n++] = (aw_header){"X-Amz-Date", date};
    h[n++] = (aw_header){"Authorization", es_buf_cstr(&res.authorization)};
    al_request rq = {"POST", "/", NULL, h, n, body, strlen(body)};
    es_buf_reset(&T.out);
    int st = al_query_serve(T.ctx, &rq, 1700000000, &T.out);
    es_buf_free_secret(&res.authorization);
    return st;
}

Test(al_sts, served_with_signatures)
{
    al_authz_install(T.ctx);
    char admin[AL_AKID_LEN + 1], err[256];
    cr_assert_eq(al_admin_init(T.ctx, T.dir, admin, err, sizeof err), 0, "%s", err);
    char path[256], text[1024] = "";
    snprintf(path, sizeof path, "%s/%s", T.dir, AL_CREDENTIALS_FILE);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    text[fread(text, 1, sizeof text - 1, f)] = 0;
    fclose(f);
    char admin_secret[64];
    cr_assert_eq(sscanf(strstr(text, "aws_secret_access_key = "), "aws_secret_access_key = %63s",
                        admin_secret),
                 1);
    const char *gci = "Action=GetCallerIdentity&Version=2011-06-15";
    cr_assert_eq(serve(admin, admin_secret, NULL, "sts", gci), 200, "%s", es_buf_cstr(&T.out));
    cr_assert_str_eq(xml("Arn"), ROOT);
    /* signed for another service than the query services */
    cr_assert_eq(serve(admin, admin_secret, NULL, "ssm", gci), 400);
    cr_assert_str_eq(xml("Code"), "InvalidAction");
    /* a wrong secret: the query services' code */
    cr_assert_eq(serve(admin, "wrong", NULL, "sts", gci), 403);
    cr_assert_str_eq(xml("Code"), "SignatureDoesNotMatch");
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "<Type>Sender</Type>"));
    cr_assert_eq(serve("AKIAUNKNOWNUNKNOWN00", admin_secret, NULL, "iam",
                       "Action=ListRoles&Version=2010-05-08"),
                 403);
    cr_assert_str_eq(xml("Code"), "InvalidClientTokenId");
    /* the session: IAM denies what its role lacks, in XML with 403 */
    make_role("exec", ECS_TRUST);
    char akid[32], secret[64], token[256];
    assume("exec", "task-1", akid, secret, token);
    cr_assert_eq(serve(akid, secret, token, "sts", gci), 200);
    cr_assert_str_eq(xml("Arn"), "arn:aws:sts::123456789012:assumed-role/exec/task-1");
    cr_assert_eq(serve(akid, secret, token, "iam", "Action=ListRoles&Version=2010-05-08"), 403);
    cr_assert_str_eq(xml("Code"), "AccessDenied");
    cr_assert_eq(serve(akid, secret, NULL, "sts", gci), 403);
    cr_assert_str_eq(xml("Code"), "InvalidClientTokenId");
    T.now += 3600; /* the store's clock; the signature time is checked against `now` */
    cr_assert_eq(serve(akid, secret, token, "sts", gci), 200, "expiry follows the request time");
    /* the AssumeRole answer holds the credentials; the error answer none */
    cr_assert_eq(serve(admin, admin_secret, NULL, "sts",
                       "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
                       "123456789012%3Arole%2Fexec&RoleSessionName=t2"),
                 200);
    cr_assert_not_null(xml("SessionToken"));
}

Test(al_sts, sessions_end_with_their_role)
{
    make_role("exec", ECS_TRUST);
    char akid[AL_STS_AKID_LEN + 1], sec[AL_STS_SECRET_LEN + 1], tok[AL_STS_TOKEN_LEN + 1],
        principal[256];
    double exp;
    char *secret = NULL;
    cr_assert_eq(al_sts_issue(T.ctx, "exec", "s1", 900, akid, sec, tok, &exp), 0);
    cr_assert_eq(al_sts_lookup(T.ctx, akid, tok, "ssm", (time_t)T.now, &secret, principal,
                               sizeof principal, &T.err),
                 0);
    es_free_secret_str(secret);
    qok("iam", "DeleteRole", "RoleName", "exec", NULL);
    cr_assert_lt(al_sts_lookup(T.ctx, akid, tok, "ssm", (time_t)T.now, &secret, principal,
                               sizeof principal, &T.err),
                 0);
    cr_assert_str_eq(T.err.code, "UnrecognizedClientException");
    /* the same name again is another role: the old session stays dead */
    make_role("EXEC", ECS_TRUST);
    cr_assert_lt(al_sts_lookup(T.ctx, akid, tok, "ssm", (time_t)T.now, &secret, principal,
                               sizeof principal, &T.err),
                 0);
    cr_assert_eq(al_sts_issue(T.ctx, "exec", "s2", 900, akid, sec, tok, &exp), 0);
    cr_assert_eq(al_sts_lookup(T.ctx, akid, tok, "ssm", (time_t)T.now, &secret, principal,
                               sizeof principal, &T.err),
                 0);
    cr_assert_str_eq(principal, "arn:aws:sts::123456789012:assumed-role/EXEC/s2");
    es_free_secret_str(secret);
}

/* The project's own STS client (aws/sts.h) reads what the embedded STS writes. */
Test(al_sts, answers_parse_with_the_client)
{
    make_role("exec", ECS_TRUST);
    qok("sts", "AssumeRole", "RoleArn", ROLE_ARN, "RoleSessionName", "task-7", NULL);
    aw_sts_credentials cr;
    memset(&cr, 0, sizeof cr);
    cr_assert_eq(aw_sts_parse_assume_role(T.out.data, T.out.len, &cr), 0);
    cr_assert_eq(strncmp(cr.access_key_id, "ASIA", 4), 0);
    cr_assert_eq(strlen(cr.secret_access_key), AL_STS_SECRET_LEN);
    cr_assert_eq(strlen(cr.session_token), AL_STS_TOKEN_LEN);
    cr_assert_eq(cr.expiration, (time_t)T.now + 3600);
    cr_assert_str_eq(cr.assumed_role_arn, "arn:aws:sts::123456789012:assumed-role/exec/task-7");
    aw_sts_credentials_clear(&cr);
    qok("sts", "GetCallerIdentity", NULL);
    aw_sts_identity id;
    memset(&id, 0, sizeof id);
    cr_assert_eq(aw_sts_parse_caller_identity(T.out.data, T.out.len, &id), 0);
    cr_assert_str_eq(id.account, "123456789012");
    cr_assert_str_eq(id.arn, ROOT);
    aw_sts_identity_clear(&id);
}
