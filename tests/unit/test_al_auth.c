/* Embedded endpoints' callers: the administrator key, its files, and SigV4
 * verification with AWS's error codes. Requests are signed with the
 * project's own signer (aws/sigv4.h); the integration tests sign with
 * botocore. */
#include "iam_helpers.h"

#include "aws/local/auth.h"
#include "aws/local/internal.h"
#include "common/alloc.h"
#include "common/secure.h"

TestSuite(al_auth, .init = alt_setup, .fini = alt_teardown);

static char akid[AL_AKID_LEN + 1], secret[64];

static void read_file(const char *name, char *out, size_t n)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", T.dir, name);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f, "%s", p);
    size_t got = fread(out, 1, n - 1, f);
    out[got] = 0;
    fclose(f);
}

static void admin(void)
{
    char err[256] = "";
    cr_assert_eq(al_admin_init(T.ctx, T.dir, akid, err, sizeof err), 0, "%s", err);
    char text[1024];
    read_file(AL_CREDENTIALS_FILE, text, sizeof text);
    const char *s = strstr(text, "aws_secret_access_key = ");
    cr_assert_not_null(s);
    s += strlen("aws_secret_access_key = ");
    size_t n = strcspn(s, "\n");
    cr_assert_eq(n, AL_SECRET_LEN);
    memcpy(secret, s, n);
    secret[n] = 0;
}

/* The X-Amz-Target signed with each request (NULL: none is signed). */
static const char *sign_target = "AmazonSSM.GetParameter";

/* A request as the CLI sends it, signed at signed_at; the verifier runs at now. */
typedef struct req {
    aw_header h[12];
    size_t n;
    char date[17];
    es_buf authz;
    const char *body;
} req;

static void sign_token(req *r, const char *id, const char *key, const char *token,
                       const char *region, const char *service, time_t signed_at, const char *body,
                       bool with_host)
{
    memset(r, 0, sizeof *r);
    r->body = body;
    if (with_host)
        r->h[r->n++] = (aw_header){"Host", "127.0.0.1:4577"};
    r->h[r->n++] = (aw_header){"Content-Type", "application/x-amz-json-1.1"};
    if (sign_target)
        r->h[r->n++] = (aw_header){"X-Amz-Target", sign_target};
    char hash[65];
    aw_sigv4_sha256_hex(body, strlen(body), hash);
    aw_sigv4_input in = {"POST", "/", NULL, r->h, r->n, hash, false};
    aw_signer *s = aw_signer_create();
    aw_sigv4_creds creds = {id, key, token};
    aw_sigv4_result res;
    cr_assert_eq(aw_signer_sign(s, &creds, region, service, signed_at, &in, &res), 0);
    aw_signer_free(s);
    memcpy(r->date, res.amz_date, sizeof r->date);
    r->authz = res.authorization;
    if (token)
        r->h[r->n++] = (aw_header){"X-Amz-Security-Token", token};
    r->h[r->n++] = (aw_header){"X-Amz-Date", r->date};
    r->h[r->n++] = (aw_header){"Authorization", es_buf_cstr(&r->authz)};
}

static void sign(req *r, const char *id, const char *key, const char *region, const char *service,
                 time_t signed_at, const char *body, bool with_host)
{
    sign_token(r, id, key, NULL, region, service, signed_at, body, with_host);
}

static int verify(req *r, const char *service, time_t now, char *principal)
{
    al_request rq = {"POST", "/", NULL, r->h, r->n, r->body, strlen(r->body)};
    char p[AL_PRINCIPAL_MAX] = "";
    memset(&T.err, 0, sizeof T.err);
    T.region[0] = '\0';
    return al_verify(T.ctx, &rq, service, now, principal ? principal : p, AL_PRINCIPAL_MAX,
                     T.region, &T.err);
}

static void expect(req *r, const char *service, time_t now, const char *code)
{
    int rc = verify(r, service, now, NULL);
    cr_assert_lt(rc, 0, "accepted, want %s", code);
    cr_assert_str_eq(T.err.code, code, "%s (%s), want %s", T.err.code, T.err.message, code);
    cr_assert_eq(T.err.status, 400);
    /* never the secret or the signature in the message */
    cr_assert_null(strstr(T.err.message, secret));
    const char *sig = strstr(es_buf_cstr(&r->authz), "Signature=");
    if (sig)
        cr_assert_null(strstr(T.err.message, sig + 10));
}

static const time_t NOW = 1700000000;
#define SIG64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
static const char *BODY = "{\"Name\":\"/x\"}";

Test(al_auth, admin_files_and_stable_key)
{
    admin();
    cr_assert_eq(strncmp(akid, "AKIA", 4), 0);
    cr_assert_eq(strlen(akid), 20);
    char text[1024];
    read_file(AL_CREDENTIALS_FILE, text, sizeof text);
    cr_assert_not_null(strstr(text, "[ecs-secrets-agent]\n"));
    char want[64];
    snprintf(want, sizeof want, "aws_access_key_id = %s\n", akid);
    cr_assert_not_null(strstr(text, want));
    read_file(AL_CONFIG_FILE, text, sizeof text);
    cr_assert_not_null(strstr(text, "[profile ecs-secrets-agent]\nregion = us-east-2\n"));
    const char *files[] = {AL_CREDENTIALS_FILE, AL_CONFIG_FILE};
    for (int i = 0; i < 2; i++) {
        char p[256];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", T.dir, files[i]);
        cr_assert_eq(stat(p, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600, "%s", files[i]);
    }
    /* a start with nothing changed writes nothing (a full disk must not stop
     * it): the same inode, not a replacement */
    {
        char cp[256];
        struct stat before, after;
        snprintf(cp, sizeof cp, "%s/%s", T.dir, AL_CREDENTIALS_FILE);
        cr_assert_eq(stat(cp, &before), 0);
        alt_reopen();
        admin();
        cr_assert_eq(stat(cp, &after), 0);
        cr_assert_eq(before.st_ino, after.st_ino, "the unchanged credentials file was rewritten");
    }
    /* the next start keeps the key (and rewrites a deleted file) */
    char first[AL_AKID_LEN + 1], first_secret[64];
    memcpy(first, akid, sizeof first);
    memcpy(first_secret, secret, sizeof first_secret);
    char p[256];
    snprintf(p, sizeof p, "%s/%s", T.dir, AL_CREDENTIALS_FILE);
    unlink(p);
    alt_reopen();
    admin();
    cr_assert_str_eq(akid, first);
    cr_assert_str_eq(secret, first_secret);
    /* the database holds the secret only wrapped */
    al_close(T.ctx);
    T.ctx = NULL;
    unlink(p);
    cr_assert(dir_contains(akid));
    cr_assert_not(dir_contains(secret));
    alt_open();
}

Test(al_auth, good_request_names_the_principal)
{
    admin();
    req r;
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    char principal[AL_PRINCIPAL_MAX] = "";
    cr_assert_eq(verify(&r, "ssm", NOW + 60, principal), 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_str_eq(principal, "arn:aws:iam::123456789012:root");
    /* 14 minutes either way is still fine */
    cr_assert_eq(verify(&r, "ssm", NOW + 14 * 60, NULL), 0);
    cr_assert_eq(verify(&r, "ssm", NOW - 14 * 60, NULL), 0);
    es_buf_free_secret(&r.authz);
}

Test(al_auth, rejections_with_aws_codes)
{
    admin();
    req r;
    /* unsigned */
    memset(&r, 0, sizeof r);
    r.body = BODY;
    r.h[r.n++] = (aw_header){"Host", "127.0.0.1:4577"};
    expect(&r, "ssm", NOW, "MissingAuthenticationTokenException");
    /* changed body */
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    r.body = "{\"Name\":\"/y\"}";
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    es_buf_free_secret(&r.authz);
    /* wrong secret */
    sign(&r, akid, "0123456789012345678901234567890123456789", "us-east-2", "ssm", NOW, BODY, true);
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    cr_assert_not_null(strstr(T.err.message, "does not match"));
    es_buf_free_secret(&r.authz);
    /* tampered signature */
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    char *sig = strstr(r.authz.data, "Signature=") + 10;
    sig[5] = sig[5] == 'a' ? 'b' : 'a';
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    es_buf_free_secret(&r.authz);
    /* unknown key */
    sign(&r, "AKIAUNKNOWNUNKNOWN00", secret, "us-east-2", "ssm", NOW, BODY, true);
    expect(&r, "ssm", NOW, "UnrecognizedClientException");
    es_buf_free_secret(&r.authz);
    /* expired and from the future */
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    expect(&r, "ssm", NOW + 16 * 60, "InvalidSignatureException");
    cr_assert_not_null(strstr(T.err.message, "expired"), "%s", T.err.message);
    expect(&r, "ssm", NOW - 16 * 60, "InvalidSignatureException");
    cr_assert_not_null(strstr(T.err.message, "not yet current"));
    /* scope: service and region */
    expect(&r, "kms", NOW, "InvalidSignatureException");
    cr_assert_not_null(strstr(T.err.message, "correct service"));
    es_buf_free_secret(&r.authz);
    /* one endpoint serves every region: the scope names the request's */
    sign(&r, akid, secret, "eu-west-1", "ssm", NOW, BODY, true);
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0, "%s", T.err.message);
    cr_assert_str_eq(T.region, "eu-west-1");
    es_buf_free_secret(&r.authz);
    sign(&r, akid, secret, "cn-north-1", "ssm", NOW, BODY, true);
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0, "%s", T.err.message);
    cr_assert_str_eq(T.region, "cn-north-1");
    es_buf_free_secret(&r.authz);
    /* a region AWS does not have, with the nearest one named */
    sign(&r, akid, secret, "us-wst-2", "ssm", NOW, BODY, true);
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    cr_assert_str_eq(T.err.message, "Credential should be scoped to a valid region, not "
                                    "'us-wst-2'. (Did you mean 'us-west-2'?)");
    es_buf_free_secret(&r.authz);
    sign(&r, akid, secret, "mars-north-9", "ssm", NOW, BODY, true);
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    cr_assert_str_eq(T.err.message, "Credential should be scoped to a valid region, not "
                                    "'mars-north-9'.");
    es_buf_free_secret(&r.authz);
    /* host not signed */
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, false);
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    cr_assert_not_null(strstr(T.err.message, "Host"));
    es_buf_free_secret(&r.authz);
    /* a session token with a long-term key */
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    r.h[r.n++] = (aw_header){"X-Amz-Security-Token", "FwoGZXIvYXdzEJr"};
    expect(&r, "ssm", NOW, "UnrecognizedClientException");
    r.n--;
    /* a payload hash header that lies */
    r.h[r.n++] = (aw_header){"X-Amz-Content-Sha256", aw_sigv4_empty_sha256};
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    r.n--;
    /* no date, bad date */
    r.h[r.n - 2].value = "2023-11-14";
    expect(&r, "ssm", NOW, "IncompleteSignatureException");
    r.h[r.n - 2].name = "X-Other";
    expect(&r, "ssm", NOW, "IncompleteSignatureException");
    es_buf_free_secret(&r.authz);
    /* X-Amz-Target picks the operation: sent but not signed, a captured
     * request could be re-aimed (DescribeSecret -> GetSecretValue) */
    sign_target = NULL;
    sign(&r, akid, secret, "us-east-2", "secretsmanager", NOW, BODY, true);
    sign_target = "AmazonSSM.GetParameter";
    cr_assert_eq(verify(&r, "secretsmanager", NOW, NULL), 0, "%s", T.err.message);
    r.h[r.n++] = (aw_header){"X-Amz-Target", "secretsmanager.GetSecretValue"};
    expect(&r, "secretsmanager", NOW, "InvalidSignatureException");
    cr_assert_not_null(strstr(T.err.message, "'X-Amz-Target' must be a 'SignedHeader'"), "%s",
                       T.err.message);
    es_buf_free_secret(&r.authz);
    /* garbage Authorization */
    memset(&r, 0, sizeof r);
    r.body = BODY;
    r.h[r.n++] = (aw_header){"Host", "127.0.0.1:4577"};
    r.h[r.n++] = (aw_header){"X-Amz-Date", "20231114T221320Z"};
    r.h[r.n++] = (aw_header){"Authorization", "AWS4-HMAC-SHA256 Credential=x"};
    expect(&r, "ssm", NOW, "IncompleteSignatureException");
    r.h[r.n - 1].value = "Basic dXNlcjpwYXNz";
    expect(&r, "ssm", NOW, "IncompleteSignatureException");
}

Test(al_auth, admin_credentials_for_in_process_clients)
{
    char id[AL_AKID_LEN + 1];
    char *sec = NULL;
    cr_assert_eq(al_admin_credentials(T.ctx, id, &sec), -ENOENT);
    admin();
    cr_assert_eq(al_admin_credentials(T.ctx, id, &sec), 0);
    cr_assert_str_eq(id, akid);
    cr_assert_str_eq(sec, secret);
    es_free_secret_str(sec);
}

Test(al_auth, signing_names)
{
    cr_assert_str_eq(al_signing_name("AmazonSSM.GetParameters"), "ssm");
    cr_assert_str_eq(al_signing_name("secretsmanager.GetSecretValue"), "secretsmanager");
    cr_assert_str_eq(al_signing_name("TrentService.Decrypt"), "kms");
    cr_assert_null(al_signing_name("AmazonEC2ContainerServiceV20141113.RunTask"));
    cr_assert_null(al_signing_name(NULL));
}

static al_cache_stats stats(void)
{
    al_cache_stats st;
    al_get_cache_stats(T.ctx, &st);
    return st;
}

/* Signing keys are derived once per (key, day, region, service) and kept;
 * everything the lookup checked is still checked on every request. */
Test(al_auth, signing_keys_are_kept_and_dropped_when_the_key_changes)
{
    admin();
    req r;
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    al_cache_stats s0 = stats();
    char principal[AL_PRINCIPAL_MAX] = "";
    cr_assert_eq(verify(&r, "ssm", NOW, principal), 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_eq(stats().key_derivations, s0.key_derivations + 1);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(verify(&r, "ssm", NOW, principal), 0, "%s: %s", T.err.code, T.err.message);
        cr_assert_str_eq(principal, "arn:aws:iam::123456789012:root");
    }
    cr_assert_eq(stats().key_derivations, s0.key_derivations + 1, "derived once");
    cr_assert_eq(stats().key_hits, s0.key_hits + 3);
    /* the kept key still checks each signature and body */
    r.body = "{\"Name\":\"/y\"}";
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    r.body = BODY;
    char *sig = strstr(r.authz.data, "Signature=") + 10, was = sig[7];
    sig[7] = was == 'a' ? 'b' : 'a';
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    sig[7] = was;
    /* a stray session token is refused on a kept key too */
    r.h[r.n++] = (aw_header){"X-Amz-Security-Token", "FwoGZXIvYXdzEJr"};
    expect(&r, "ssm", NOW, "UnrecognizedClientException");
    r.n--;
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0);
    /* another service or day is another key */
    req k;
    sign(&k, akid, secret, "us-east-2", "kms", NOW, BODY, true);
    cr_assert_eq(verify(&k, "kms", NOW, NULL), 0);
    cr_assert_eq(stats().key_derivations, s0.key_derivations + 2);
    es_buf_free_secret(&k.authz);
    /* the key deactivated: refused on the very next request */
    sqlite3 *h = al_db_handle(T.ctx->db);
    cr_assert_eq(sqlite3_exec(h, "UPDATE iam_access_key SET status='Inactive'", NULL, NULL, NULL),
                 SQLITE_OK);
    expect(&r, "ssm", NOW, "UnrecognizedClientException");
    cr_assert_eq(sqlite3_exec(h, "UPDATE iam_access_key SET status='Active'", NULL, NULL, NULL),
                 SQLITE_OK);
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0);
    /* ... and inside a transaction, before it commits; the rollback brings it back */
    cr_assert_eq(al_db_begin(T.ctx->db), 0);
    cr_assert_eq(sqlite3_exec(h, "DELETE FROM iam_access_key", NULL, NULL, NULL), SQLITE_OK);
    expect(&r, "ssm", NOW, "UnrecognizedClientException");
    al_db_rollback(T.ctx->db);
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0, "%s: %s", T.err.code, T.err.message);
    es_buf_free_secret(&r.authz);
}

/* Two access keys kept side by side: each verifies its own requests with
 * its kept HMAC states; a request naming one key but signed with the other's
 * secret is refused, whichever was kept first, and neither kept key is
 * disturbed by the refusal. */
Test(al_auth, kept_keys_verify_only_their_own_signatures)
{
    admin();
    const char *akid2 = "AKIAOTHERKEY00000001",
               *secret2 = "otherSecretOtherSecretOtherSecret0000001";
    cr_assert_eq(al_access_key_add(T.ctx, akid2, secret2, "arn:aws:iam::123456789012:user/other"),
                 0);
    req a, b, forged;
    sign(&a, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    sign(&b, akid2, secret2, "us-east-2", "ssm", NOW, BODY, true);
    sign(&forged, akid, secret2, "us-east-2", "ssm", NOW, BODY, true);
    char principal[AL_PRINCIPAL_MAX] = "";
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(verify(&a, "ssm", NOW, principal), 0, "%s: %s", T.err.code, T.err.message);
        cr_assert_str_eq(principal, "arn:aws:iam::123456789012:root");
        cr_assert_eq(verify(&b, "ssm", NOW, principal), 0, "%s: %s", T.err.code, T.err.message);
        cr_assert_str_eq(principal, "arn:aws:iam::123456789012:user/other");
        expect(&forged, "ssm", NOW, "InvalidSignatureException");
    }
    es_buf_free_secret(&a.authz);
    es_buf_free_secret(&b.authz);
    es_buf_free_secret(&forged.authz);
}

/* Session credentials' refusals are 403s. */
static void refused(req *r, time_t now, const char *code)
{
    cr_assert_lt(verify(r, "ssm", now, NULL), 0, "accepted, want %s", code);
    cr_assert_str_eq(T.err.code, code, "%s (%s)", T.err.code, T.err.message);
    cr_assert_eq(T.err.status, 403);
}

Test(al_auth, kept_session_keys_still_check_token_expiry_and_role)
{
    make_role("exec", ECS_TRUST);
    char id[AL_STS_AKID_LEN + 1], sec[AL_STS_SECRET_LEN + 1], tok[AL_STS_TOKEN_LEN + 1];
    double expires;
    cr_assert_eq(al_sts_issue(T.ctx, "exec", "s1", 900, id, sec, tok, &expires), 0);
    time_t at = (time_t)T.now;
    req r;
    sign_token(&r, id, sec, tok, "us-east-2", "ssm", at, BODY, true);
    char principal[AL_PRINCIPAL_MAX] = "";
    al_cache_stats s0 = stats();
    cr_assert_eq(verify(&r, "ssm", at, principal), 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_eq(verify(&r, "ssm", at + 60, principal), 0);
    cr_assert_str_eq(principal, "arn:aws:sts::123456789012:assumed-role/exec/s1");
    cr_assert_eq(stats().key_derivations, s0.key_derivations + 1);
    cr_assert_eq(stats().key_hits, s0.key_hits + 1);
    /* another token with the same key id */
    char wrong[AL_STS_TOKEN_LEN + 1];
    memcpy(wrong, tok, sizeof wrong);
    wrong[10] = wrong[10] == 'A' ? 'B' : 'A';
    r.h[r.n - 3].value = wrong;
    refused(&r, at, "UnrecognizedClientException");
    r.h[r.n - 3] = (aw_header){"X-Other", "x"};
    refused(&r, at, "UnrecognizedClientException");
    r.h[r.n - 3] = (aw_header){"X-Amz-Security-Token", tok};
    cr_assert_eq(verify(&r, "ssm", at, NULL), 0);
    /* expiry: the signature is still within its 15 minutes */
    refused(&r, (time_t)expires, "ExpiredTokenException");
    cr_assert_eq(verify(&r, "ssm", (time_t)expires - 1, NULL), 0);
    /* the session's token sent but left out of the signature: refused */
    req u;
    sign_token(&u, id, sec, NULL, "us-east-2", "ssm", at, BODY, true);
    u.h[u.n++] = (aw_header){"X-Amz-Security-Token", tok};
    cr_assert_lt(verify(&u, "ssm", at, NULL), 0);
    cr_assert_str_eq(T.err.code, "InvalidSignatureException", "%s", T.err.message);
    cr_assert_not_null(strstr(T.err.message, "'X-Amz-Security-Token' must be a 'SignedHeader'"),
                       "%s", T.err.message);
    es_buf_free_secret(&u.authz);
    /* the role deleted: its sessions hold nothing from the next request on */
    qok("iam", "DeleteRole", "RoleName", "exec", NULL);
    refused(&r, at, "UnrecognizedClientException");
    es_buf_free_secret(&r.authz);
}

static int precheck(req *r, time_t now)
{
    const char *authz = NULL, *date = NULL;
    for (size_t i = 0; i < r->n; i++) {
        if (strcasecmp(r->h[i].name, "Authorization") == 0)
            authz = r->h[i].value;
        else if (strcasecmp(r->h[i].name, "X-Amz-Date") == 0)
            date = r->h[i].value;
    }
    memset(&T.err, 0, sizeof T.err);
    return al_precheck(T.ctx, authz, date, NULL, now, &T.err);
}

/* The head's check parses the Authorization header once for the
 * verification (auth.c, auth_memo): taken only for the very same header,
 * once, and the verification still checks everything - a wrong signature
 * or body behind a memo hit is refused, another request's header is parsed
 * again, and a refused head leaves nothing to take. */
Test(al_auth, the_head_checks_parse_is_taken_once_for_the_same_header)
{
    admin();
    req r, other;
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    sign(&other, akid, secret, "us-east-2", "ssm", NOW + 1, BODY, true);
    al_cache_stats s0 = stats();
    cr_assert_eq(precheck(&r, NOW), 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_eq(stats().auth_memo_hits, s0.auth_memo_hits + 1, "the parse was taken");
    /* once: the next verification parses */
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0);
    cr_assert_eq(stats().auth_memo_hits, s0.auth_memo_hits + 1, "taken twice");
    /* another request's header after the check: parsed, its own verdict */
    cr_assert_eq(precheck(&r, NOW), 0);
    cr_assert_eq(verify(&other, "ssm", NOW, NULL), 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_eq(stats().auth_memo_hits, s0.auth_memo_hits + 1, "another header was taken");
    /* the same header with another body: refused on a memo hit */
    cr_assert_eq(precheck(&r, NOW), 0);
    r.body = "{\"Name\":\"/y\"}";
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    cr_assert_eq(stats().auth_memo_hits, s0.auth_memo_hits + 2);
    r.body = BODY;
    /* a wrong signature passes the head's check (which cannot see it) and
     * is refused by the verification that takes its parse; the header put
     * back is not served from the wrong one's parse */
    char *sig = strstr(r.authz.data, "Signature=") + 10, was = sig[7];
    sig[7] = was == 'a' ? 'b' : 'a';
    cr_assert_eq(precheck(&r, NOW), 0);
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    cr_assert_eq(stats().auth_memo_hits, s0.auth_memo_hits + 3);
    cr_assert_eq(precheck(&r, NOW), 0);
    sig[7] = was;
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0, "%s: %s", T.err.code, T.err.message);
    cr_assert_eq(stats().auth_memo_hits, s0.auth_memo_hits + 3, "a changed header was taken");
    /* a head refused (unknown key) leaves nothing for the next verification */
    req stranger;
    sign(&stranger, "AKIAXXXXXXXXXXXXXXXX", secret, "us-east-2", "ssm", NOW, BODY, true);
    cr_assert_lt(precheck(&stranger, NOW), 0);
    cr_assert_str_eq(T.err.code, "UnrecognizedClientException");
    expect(&stranger, "ssm", NOW, "UnrecognizedClientException");
    cr_assert_eq(stats().auth_memo_hits, s0.auth_memo_hits + 3, "a refused head was taken");
    es_buf_free_secret(&stranger.authz);
    es_buf_free_secret(&other.authz);
    es_buf_free_secret(&r.authz);
}

/* verify_req reads its five headers in one pass (sig_headers_of): each the
 * first of its name, in any case, as al_request_header found them. */
Test(al_auth, the_verifications_headers_are_the_first_of_each_name_in_any_case)
{
    admin();
    req r;
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    /* names in other cases: the same headers */
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(r.h[i].name, "Authorization") == 0)
            r.h[i].name = "AUTHORIZATION";
        else if (strcmp(r.h[i].name, "X-Amz-Date") == 0)
            r.h[i].name = "x-AMZ-date";
    }
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0, "%s: %s", T.err.code, T.err.message);
    /* a second Authorization after the first is not the one read */
    r.h[r.n++] = (aw_header){"authorization", "AWS4-HMAC-SHA256 Credential=x"};
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0, "%s: %s", T.err.code, T.err.message);
    /* before it, it is */
    aw_header first = r.h[0];
    r.h[0] = r.h[r.n - 1];
    r.h[r.n - 1] = first;
    expect(&r, "ssm", NOW, "IncompleteSignatureException");
    r.h[r.n - 1] = r.h[0];
    r.h[0] = first;
    r.n--;
    /* a wrong body hash claimed in capitals is still checked; a right one
     * passes */
    r.h[r.n++] = (aw_header){"X-AMZ-CONTENT-SHA256", "00"};
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    char hash[65];
    aw_sigv4_sha256_hex(BODY, strlen(BODY), hash);
    r.h[r.n - 1].value = hash;
    cr_assert_eq(verify(&r, "ssm", NOW, NULL), 0, "%s: %s", T.err.code, T.err.message);
    r.n--;
    /* an unsigned X-Amz-Security-Token (any case) on a long-term key */
    r.h[r.n++] = (aw_header){"x-amz-SECURITY-token", "tok"};
    expect(&r, "ssm", NOW, "UnrecognizedClientException");
    r.n--;
    /* an unsigned target, named in capitals, is refused */
    es_buf_free_secret(&r.authz);
    const char *was = sign_target;
    sign_target = NULL;
    sign(&r, akid, secret, "us-east-2", "ssm", NOW, BODY, true);
    sign_target = was;
    r.h[r.n++] = (aw_header){"X-AMZ-TARGET", "AmazonSSM.GetParameters"};
    expect(&r, "ssm", NOW, "InvalidSignatureException");
    cr_assert_not_null(strstr(T.err.message, "X-Amz-Target"), "%s", T.err.message);
    es_buf_free_secret(&r.authz);
}

/* The names a verification requires signed (host, x-amz-date, x-amz-target
 * when sent) are found in one pass over SignedHeaders (signed_required): each
 * matched whole, wherever it stands in the list; a longer or shorter name
 * sharing its letters is not it. A list passing these checks reaches the
 * signature comparison ("does not match": the signature here is made up). */
Test(al_auth, the_required_signed_names_are_matched_whole_anywhere_in_the_list)
{
    admin();
    static const struct {
        const char *list;
        const char *refused; /* the header named in the refusal; NULL: passes */
    } cases[] = {
        {"host;x-amz-date;x-amz-target", NULL},
        {"x-amz-target;host;x-amz-date", NULL},
        {"x-amz-date;x-amz-target;host", NULL},
        {"content-type;host;x-amz-date;x-amz-target", NULL},
        {"hosts;x-amz-date;x-amz-target", "'Host'"},
        {"hos;x-amz-date;x-amz-target", "'Host'"},
        {"x-amz-date;x-amz-target", "'Host'"},
        {"host;x-amz-dates;x-amz-target", "'X-Amz-Date'"},
        {"host;x-amz-dat;x-amz-target", "'X-Amz-Date'"},
        {"host;x-amz-target", "'X-Amz-Date'"},
        {"host;x-amz-date;x-amz-targets", "'X-Amz-Target'"},
        {"host;x-amz-date;x-amz-targe", "'X-Amz-Target'"},
        {"host;x-amz-date", "'X-Amz-Target'"},
    };
    char authz[512];
    char id[AL_AKID_LEN + 1];
    memcpy(id, akid, sizeof id);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(authz, sizeof authz,
                 "AWS4-HMAC-SHA256 Credential=%s/20231114/us-east-2/ssm/aws4_request, "
                 "SignedHeaders=%s, Signature=" SIG64,
                 id, cases[i].list);
        aw_header h[] = {{"Host", "127.0.0.1:4577"},
                         {"Content-Type", "application/x-amz-json-1.1"},
                         {"X-Amz-Target", "AmazonSSM.GetParameter"},
                         {"X-Amz-Date", "20231114T221320Z"},
                         {"Authorization", authz}};
        req r = {.n = 0, .body = BODY};
        for (size_t k = 0; k < sizeof h / sizeof h[0]; k++)
            r.h[r.n++] = h[k];
        expect(&r, "ssm", NOW, "InvalidSignatureException");
        if (cases[i].refused) {
            cr_assert_not_null(strstr(T.err.message, cases[i].refused), "%s: %s", cases[i].list,
                               T.err.message);
            cr_assert_not_null(strstr(T.err.message, "must be a 'SignedHeader'"), "%s: %s",
                               cases[i].list, T.err.message);
        } else {
            cr_assert_not_null(strstr(T.err.message, "does not match"), "%s: %s", cases[i].list,
                               T.err.message);
        }
    }
}
