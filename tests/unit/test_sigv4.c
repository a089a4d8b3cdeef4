/* SigV4: AWS's own test vectors (read at test time from
 * tests/data/sigv4-test-suite), the Authorization parser, verification,
 * the signing-key cache, and a differential test against botocore. */
#include <criterion/criterion.h>

#include "aws_fake.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "aws/sigv4.h"
#include "common/alloc.h"
#include "common/json.h"

/* AWS's SigV4 test vectors (Apache-2.0, from awslabs/aws-c-auth) are kept
 * in the tree, with their LICENSE, so that the suite needs nothing beside
 * the checkout. */
static const char *suite(void)
{
    return ES_SOURCE_DIR "/tests/data/sigv4-test-suite";
}
#define SUITE suite()

static char *slurp(const char *dir, const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    es_buf b;
    es_buf_init(&b, 1 << 20);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        cr_assert_eq(es_buf_append(&b, tmp, n), 0);
    fclose(f);
    es_buf_append(&b, "", 0);
    char *s = es_buf_steal(&b);
    return s;
}

/* A request.txt: "METHOD PATH[?QUERY] HTTP/1.1", header lines (a line that
 * starts with blanks continues the previous value), blank line, body. */
typedef struct req {
    char method[16];
    char *path;
    char *query;
    char *names[32];
    char *values[32];
    size_t nh;
    char *body;
} req;

static void req_parse(const char *text, req *r)
{
    memset(r, 0, sizeof *r);
    const char *nl = strchr(text, '\n');
    cr_assert(nl);
    const char *sp = strchr(text, ' ');
    cr_assert(sp && sp < nl);
    memcpy(r->method, text, (size_t)(sp - text));
    const char *proto = nl;
    while (proto > sp && *proto != ' ')
        proto--;
    char *target = es_strndup(sp + 1, (size_t)(proto - sp - 1));
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        r->query = es_strdup(q + 1);
    }
    r->path = target;
    const char *p = nl + 1;
    while (*p && *p != '\n') {
        const char *e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        if ((*p == ' ' || *p == '\t') && r->nh) {
            size_t ol = strlen(r->values[r->nh - 1]);
            char *v = es_malloc(ol + (size_t)(e - p) + 2);
            memcpy(v, r->values[r->nh - 1], ol);
            v[ol] = '\n';
            memcpy(v + ol + 1, p, (size_t)(e - p));
            v[ol + 1 + (size_t)(e - p)] = '\0';
            es_free(r->values[r->nh - 1]);
            r->values[r->nh - 1] = v;
        } else {
            const char *c = memchr(p, ':', (size_t)(e - p));
            cr_assert(c);
            r->names[r->nh] = es_strndup(p, (size_t)(c - p));
            r->values[r->nh] = es_strndup(c + 1, (size_t)(e - c - 1));
            r->nh++;
        }
        p = *e ? e + 1 : e;
    }
    r->body = es_strdup(*p == '\n' ? p + 1 : p);
}

static void req_free(req *r)
{
    es_free(r->path);
    es_free(r->query);
    for (size_t i = 0; i < r->nh; i++) {
        es_free(r->names[i]);
        es_free(r->values[i]);
    }
    es_free(r->body);
}

/* The Authorization value in a header-signed-request.txt. */
static char *auth_of(const char *signed_req)
{
    const char *a = strstr(signed_req, "\nAuthorization:");
    cr_assert(a);
    a += strlen("\nAuthorization:");
    const char *e = strchr(a, '\n');
    return es_strndup(a, e ? (size_t)(e - a) : strlen(a));
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static const char *jstr(const es_json *j, const char *a, const char *b)
{
    const es_json *o = b ? es_json_get(j, a) : j;
    return es_json_get_str(o, b ? b : a);
}

static int run_case(const char *name, int *query_ok)
{
    char dir[1024 + 256];
    snprintf(dir, sizeof dir, "%s/%s", SUITE, name);
    char *ctx_text = slurp(dir, "context.json");
    char *req_text = slurp(dir, "request.txt");
    char *exp_creq = slurp(dir, "header-canonical-request.txt");
    char *exp_sts = slurp(dir, "header-string-to-sign.txt");
    char *exp_sig = slurp(dir, "header-signature.txt");
    char *exp_signed = slurp(dir, "header-signed-request.txt");
    cr_assert(ctx_text && req_text && exp_creq && exp_sts && exp_sig && exp_signed, "%s", name);
    chomp(exp_sig);
    es_json *ctx = NULL;
    cr_assert_eq(es_json_parse(ctx_text, strlen(ctx_text), &es_json_default_limits, &ctx, NULL, 0),
                 0);
    const char *akid = jstr(ctx, "credentials", "access_key_id");
    const char *secret = jstr(ctx, "credentials", "secret_access_key");
    const char *token = jstr(ctx, "credentials", "token");
    const char *region = jstr(ctx, "region", NULL);
    const char *service = jstr(ctx, "service", NULL);
    bool normalize = true, sign_body = false, omit = false;
    es_json_get_bool(ctx, "normalize", &normalize);
    es_json_get_bool(ctx, "sign_body", &sign_body);
    es_json_get_bool(ctx, "omit_session_token", &omit);
    time_t now;
    cr_assert_eq(aw_sigv4_parse_amz_date("20150830T123600Z", &now), 0);

    req r;
    req_parse(req_text, &r);
    char body_hash[65];
    aw_sigv4_sha256_hex(r.body, strlen(r.body), body_hash);
    aw_header h[40];
    size_t nh = 0;
    for (size_t i = 0; i < r.nh; i++)
        h[nh++] = (aw_header){r.names[i], r.values[i]};
    if (sign_body)
        h[nh++] = (aw_header){"X-Amz-Content-Sha256", body_hash};
    aw_sigv4_input in = {.method = r.method,
                         .path = r.path,
                         .query = r.query,
                         .headers = h,
                         .n_headers = nh,
                         .payload_hash = body_hash,
                         .s3 = !normalize};

    /* full signer */
    aw_signer *s = aw_signer_create();
    aw_sigv4_creds creds = {akid, secret, omit ? NULL : token};
    aw_sigv4_result res;
    cr_assert_eq(aw_signer_sign(s, &creds, region, service, now, &in, &res), 0, "%s", name);
    char *exp_auth = auth_of(exp_signed);
    cr_expect_str_eq(es_buf_cstr(&res.authorization), exp_auth, "%s", name);
    cr_expect_str_eq(res.amz_date, "20150830T123600Z");

    /* the pieces, as a verifier would rebuild them */
    aw_header h2[42];
    memcpy(h2, h, nh * sizeof *h);
    size_t nh2 = nh;
    h2[nh2++] = (aw_header){"X-Amz-Date", res.amz_date};
    if (token && !omit)
        h2[nh2++] = (aw_header){"X-Amz-Security-Token", token};
    aw_sigv4_input in2 = in;
    in2.headers = h2;
    in2.n_headers = nh2;
    es_buf creq, names, scope, sts;
    es_buf_init(&creq, AW_SIGV4_CANONICAL_MAX);
    es_buf_init(&names, 4096);
    es_buf_init(&scope, 512);
    es_buf_init(&sts, 4096);
    cr_assert_eq(aw_sigv4_canonical_request(&in2, NULL, &creq, &names), 0);
    cr_expect_str_eq(es_buf_cstr(&creq), exp_creq, "%s canonical request", name);
    cr_assert_eq(aw_sigv4_scope("20150830", region, service, &scope), 0);
    cr_assert_eq(aw_sigv4_string_to_sign("20150830T123600Z", es_buf_cstr(&scope),
                                         es_buf_cstr(&creq), creq.len, &sts),
                 0);
    cr_expect_str_eq(es_buf_cstr(&sts), exp_sts, "%s string to sign", name);
    uint8_t key[32];
    char sig[65];
    cr_assert_eq(aw_sigv4_signing_key(secret, "20150830", region, service, key), 0);
    cr_assert_eq(aw_sigv4_signature_hex(key, es_buf_cstr(&sts), sts.len, sig), 0);
    cr_expect_str_eq(sig, exp_sig, "%s signature", name);

    /* verification of the signed request: accepted; one bit off: refused */
    aw_sigv4_auth auth;
    cr_assert_eq(aw_sigv4_parse_authorization(exp_auth, strlen(exp_auth), &auth), 0, "%s", name);
    cr_expect_eq(aw_sigv4_verify(&in2, &auth, "20150830T123600Z", secret), 0, "%s verify", name);
    auth.signature[0] = auth.signature[0] == '0' ? '1' : '0';
    cr_expect_eq(aw_sigv4_verify(&in2, &auth, "20150830T123600Z", secret), -EACCES);
    auth.signature[0] = exp_sig[0];
    cr_expect_eq(aw_sigv4_verify(&in2, &auth, "20150830T123600Z", "wrong-secret"), -EACCES);
    cr_expect_eq(aw_sigv4_verify(&in2, &auth, "20150831T123600Z", secret), -EACCES);

    /* presigned (query) variant: the X-Amz-* parameters join the query,
     * the request's own headers (no x-amz-date) are signed */
    char *exp_qcreq = slurp(dir, "query-canonical-request.txt");
    char *exp_qsig = slurp(dir, "query-signature.txt");
    if (exp_qcreq && exp_qsig) {
        chomp(exp_qsig);
        es_buf q, qn;
        es_buf_init(&q, 8192);
        es_buf_init(&qn, 4096);
        /* the presigned form does not send x-amz-content-sha256 */
        aw_sigv4_input qin = in;
        qin.n_headers = r.nh;
        cr_assert_eq(aw_sigv4_canonical_request(&qin, NULL, &creq, &qn), 0);
        if (r.query && *r.query)
            es_buf_printf(&q, "%s&", r.query);
        es_buf_printf(
            &q,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s%%2F20150830%%2F%s%%2F%s%%"
            "2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600",
            akid, region, service);
        if (token && !omit) {
            es_buf_append_str(&q, "&X-Amz-Security-Token=");
            for (const char *t = token; *t; t++) {
                if (*t == '/' || *t == '+' || *t == '=')
                    es_buf_printf(&q, "%%%02X", (unsigned)*t);
                else
                    es_buf_append_char(&q, *t);
            }
        }
        es_buf_append_str(&q, "&X-Amz-SignedHeaders=");
        for (const char *t = es_buf_cstr(&qn); *t; t++)
            if (*t == ';')
                es_buf_append_str(&q, "%3B");
            else
                es_buf_append_char(&q, *t);
        qin.query = es_buf_cstr(&q);
        cr_assert_eq(aw_sigv4_canonical_request(&qin, es_buf_cstr(&qn), &creq, NULL), 0);
        cr_expect_str_eq(es_buf_cstr(&creq), exp_qcreq, "%s query canonical request", name);
        cr_assert_eq(aw_sigv4_string_to_sign("20150830T123600Z", es_buf_cstr(&scope),
                                             es_buf_cstr(&creq), creq.len, &sts),
                     0);
        cr_assert_eq(aw_sigv4_signature_hex(key, es_buf_cstr(&sts), sts.len, sig), 0);
        cr_expect_str_eq(sig, exp_qsig, "%s query signature", name);
        if (strcmp(es_buf_cstr(&creq), exp_qcreq) == 0 && strcmp(sig, exp_qsig) == 0)
            (*query_ok)++;
        es_buf_free(&q);
        es_buf_free(&qn);
    }
    es_free(exp_qcreq);
    es_free(exp_qsig);

    int ok = strcmp(es_buf_cstr(&res.authorization), exp_auth) == 0;
    es_buf_free_secret(&res.authorization);
    aw_signer_free(s);
    es_buf_free(&creq);
    es_buf_free(&names);
    es_buf_free(&scope);
    es_buf_free(&sts);
    es_free(exp_auth);
    req_free(&r);
    es_json_free(ctx);
    es_free(ctx_text);
    es_free(req_text);
    es_free(exp_creq);
    es_free(exp_sts);
    es_free(exp_sig);
    es_free(exp_signed);
    return ok;
}

TestSuite(sigv4, .fini = expect_no_leaks);

Test(sigv4, aws_test_suite)
{
    DIR *d = opendir(SUITE);
    cr_assert(d, "cannot open %s", SUITE);
    struct dirent *e;
    int cases = 0, passed = 0, query_ok = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[1024 + 256];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s/context.json", SUITE, e->d_name);
        if (stat(p, &st) != 0)
            continue;
        cases++;
        passed += run_case(e->d_name, &query_ok);
    }
    closedir(d);
    cr_assert_geq(cases, 30, "only %d cases found", cases);
    cr_assert_eq(passed, cases, "%d of %d cases passed", passed, cases);
    cr_assert_eq(query_ok, cases, "%d of %d presigned cases passed", query_ok, cases);
}

Test(sigv4, signing_key_cached_per_day_region_service)
{
    aw_signer *s = aw_signer_create();
    aw_header h[] = {{"Host", "ssm.us-east-1.amazonaws.com"}};
    aw_sigv4_input in = {"POST", "/", NULL, h, 1, aw_sigv4_empty_sha256, false};
    aw_sigv4_creds c = {"AKIDEXAMPLE", "secret1", NULL};
    aw_sigv4_result r;
    time_t t0 = 1700000000;
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(aw_signer_sign(s, &c, "us-east-1", "ssm", t0 + i, &in, &r), 0);
        es_buf_free_secret(&r.authorization);
    }
    cr_expect_eq(aw_signer_derivations(s), 1);
    cr_assert_eq(aw_signer_sign(s, &c, "us-east-1", "ssm", t0 + 86400, &in, &r), 0);
    es_buf_free_secret(&r.authorization);
    cr_expect_eq(aw_signer_derivations(s), 2);
    cr_assert_eq(aw_signer_sign(s, &c, "eu-west-1", "ssm", t0, &in, &r), 0);
    es_buf_free_secret(&r.authorization);
    cr_assert_eq(aw_signer_sign(s, &c, "us-east-1", "sts", t0, &in, &r), 0);
    es_buf_free_secret(&r.authorization);
    cr_expect_eq(aw_signer_derivations(s), 4);
    /* a rotated secret under the same key id is a different key */
    aw_sigv4_creds c2 = {"AKIDEXAMPLE", "secret2", NULL};
    aw_sigv4_result r2;
    cr_assert_eq(aw_signer_sign(s, &c, "us-east-1", "ssm", t0, &in, &r), 0);
    cr_assert_eq(aw_signer_sign(s, &c2, "us-east-1", "ssm", t0, &in, &r2), 0);
    cr_expect_eq(aw_signer_derivations(s), 5);
    cr_expect_str_neq(es_buf_cstr(&r.authorization), es_buf_cstr(&r2.authorization));
    es_buf_free_secret(&r.authorization);
    es_buf_free_secret(&r2.authorization);
    aw_signer_free(s);
    aw_signer_free(NULL);
}

Test(sigv4, session_token_signed_and_caller_headers_replaced)
{
    aw_signer *s = aw_signer_create();
    aw_header h[] = {{"Host", "sts.amazonaws.com"},
                     {"X-Amz-Date", "19990101T000000Z"},
                     {"Authorization", "stale"},
                     {"User-Agent", "x"}};
    aw_sigv4_input in = {"POST", "/", NULL, h, 4, aw_sigv4_empty_sha256, false};
    aw_sigv4_creds c = {"AK", "SK", "TOKEN"};
    aw_sigv4_result r;
    cr_assert_eq(aw_signer_sign(s, &c, "us-east-1", "sts", 0, &in, &r), 0);
    cr_expect(strstr(es_buf_cstr(&r.authorization),
                     "SignedHeaders=host;x-amz-date;x-amz-security-token,"));
    cr_expect_str_eq(r.amz_date, "19700101T000000Z");
    es_buf_free_secret(&r.authorization);
    aw_signer_free(s);
}

Test(sigv4, canonical_request_errors)
{
    es_buf out;
    es_buf_init(&out, AW_SIGV4_CANONICAL_MAX);
    aw_header h[] = {{"Host", "a"}, {"X-A", "1"}};
    aw_sigv4_input in = {"GET", "/", NULL, h, 2, aw_sigv4_empty_sha256, false};
    cr_expect_eq(aw_sigv4_canonical_request(&in, "host;x-b", &out, NULL), -ENOENT);
    cr_expect_eq(aw_sigv4_canonical_request(&in, "host;;x-a", &out, NULL), -EINVAL);
    cr_expect_eq(aw_sigv4_canonical_request(&in, "Host", &out, NULL), -EINVAL);
    cr_expect_eq(aw_sigv4_canonical_request(&in, "", &out, NULL), -EINVAL);
    cr_expect_eq(aw_sigv4_canonical_request(&in, "host;x-a", &out, NULL), 0);
    /* too many query pairs */
    es_buf q;
    es_buf_init(&q, 1 << 20);
    for (int i = 0; i <= AW_SIGV4_QUERY_PARAMS_MAX; i++)
        es_buf_printf(&q, "%sa%d=b", i ? "&" : "", i);
    in.query = es_buf_cstr(&q);
    cr_expect_eq(aw_sigv4_canonical_request(&in, NULL, &out, NULL), -E2BIG);
    /* canonical request past its max */
    es_buf_reset(&q);
    for (int i = 0; i < 100; i++)
        es_buf_printf(&q, "%sa%d=%03000d", i ? "&" : "", i, 0);
    in.query = es_buf_cstr(&q);
    cr_expect_eq(aw_sigv4_canonical_request(&in, NULL, &out, NULL), -EMSGSIZE);
    /* too many headers */
    aw_header many[AW_SIGV4_HEADERS_MAX + 1];
    for (size_t i = 0; i < AW_SIGV4_HEADERS_MAX + 1; i++)
        many[i] = (aw_header){"x-h", "v"};
    aw_sigv4_input in2 = {"GET", "/", NULL, many, AW_SIGV4_HEADERS_MAX + 1, aw_sigv4_empty_sha256,
                          false};
    cr_expect_eq(aw_sigv4_canonical_request(&in2, NULL, &out, NULL), -E2BIG);
    es_buf_free(&q);
    es_buf_free(&out);
}

/* The header section written in one reservation: values trimmed and their
 * whitespace runs folded, repeated headers joined in request order, names
 * lower-cased and sorted; the exact length fits a buffer of that max and
 * one byte less fails, leaving the buffer empty (it was reset and wiped). */
Test(sigv4, canonical_headers_sized_exactly)
{
    aw_header h[] = {{"X-B", "  two \t\t words  "},
                     {"Host", "h"},
                     {"x-b", "second"},
                     {"X-Empty", "   "},
                     {"X-A", "a  b   c"}};
    aw_sigv4_input in = {"POST", "/", NULL, h, 5, aw_sigv4_empty_sha256, false};
    const char *want = "POST\n/\n\nhost:h\nx-a:a b c\nx-b:two words,second\nx-empty:\n\n"
                       "host;x-a;x-b;x-empty\n"
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    es_buf out, names;
    es_buf_init(&out, strlen(want));
    es_buf_init(&names, 4096);
    cr_assert_eq(aw_sigv4_canonical_request(&in, NULL, &out, &names), 0);
    cr_expect_str_eq(es_buf_cstr(&out), want);
    cr_expect_str_eq(es_buf_cstr(&names), "host;x-a;x-b;x-empty");
    /* verifying with the list gives the same text */
    cr_assert_eq(aw_sigv4_canonical_request(&in, "host;x-a;x-b;x-empty", &out, NULL), 0);
    cr_expect_str_eq(es_buf_cstr(&out), want);
    es_buf small;
    es_buf_init(&small, strlen(want) - 1);
    cr_assert_eq(es_buf_append_str(&small, "stale"), 0);
    cr_expect_eq(aw_sigv4_canonical_request(&in, NULL, &small, NULL), -EMSGSIZE);
    cr_expect_eq(small.len, 0);
    /* a listed header missing: refused, nothing left in out */
    cr_expect_eq(aw_sigv4_canonical_request(&in, "host;x-c", &out, NULL), -ENOENT);
    cr_expect_eq(out.len, 0);
    es_buf_free(&small);
    es_buf_free(&names);
    es_buf_free(&out);
}

Test(sigv4, path_double_encoding_and_query_reencoding)
{
    es_buf out;
    es_buf_init(&out, 4096);
    aw_header h[] = {{"Host", "a"}};
    aw_sigv4_input in = {
        "GET", "/a%20b/./c/../d//", "b=%7e&a=x+y&a=%41&c", h, 1, aw_sigv4_empty_sha256, false};
    cr_assert_eq(aw_sigv4_canonical_request(&in, NULL, &out, NULL), 0);
    cr_expect_str_eq(es_buf_cstr(&out),
                     "GET\n/a%2520b/d/\na=A&a=x%2By&b=~&c=\nhost:a\n\nhost\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    in.s3 = true;
    cr_assert_eq(aw_sigv4_canonical_request(&in, NULL, &out, NULL), 0);
    cr_expect(strncmp(es_buf_cstr(&out), "GET\n/a%2520b/./c/../d//\n", 24) == 0);
    es_buf_free(&out);
}

Test(sigv4, amz_date)
{
    char d[17];
    time_t t;
    cr_assert_eq(aw_sigv4_amz_date(1440938160, d), 0);
    cr_expect_str_eq(d, "20150830T123600Z");
    cr_assert_eq(aw_sigv4_parse_amz_date(d, &t), 0);
    cr_expect_eq(t, 1440938160);
    const char *bad[] = {"",
                         "20150830T123600",
                         "20150830X123600Z",
                         "2015083aT123600Z",
                         "20151330T123600Z",
                         "20150830T243600Z",
                         "20150830T123600Z0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(aw_sigv4_parse_amz_date(bad[i], &t), -EINVAL, "%s", bad[i]);
}

/* The date is read at fixed places without strlen: every truncation of a
 * good date, every byte past it, and a non-digit (or a NUL) at each digit's
 * place are refused. Each string is an allocation of its own exact size, so
 * that a read past its NUL is caught by ASan. */
Test(sigv4, parse_amz_date_refuses_each_truncation_and_stray_byte)
{
    static const char good[] = "20150830T123600Z";
    time_t t = 0;
    for (size_t n = 0; n < 16; n++) {
        char *s = es_strndup(good, n);
        cr_assert_not_null(s);
        cr_expect_eq(aw_sigv4_parse_amz_date(s, &t), -EINVAL, "%zu bytes: %s", n, s);
        es_free(s);
    }
    char *s = es_strndup(good, 16);
    cr_assert_not_null(s);
    cr_expect_eq(aw_sigv4_parse_amz_date(s, &t), 0);
    cr_expect_eq(t, 1440938160);
    es_free(s);
    for (size_t i = 0; i < 16; i++) {
        if (i == 8 || i == 15)
            continue;
        static const char stray[] = {'/', ':', 'a', ' ', '\0'};
        for (size_t k = 0; k < sizeof stray; k++) {
            char d[17];
            memcpy(d, good, sizeof d);
            d[i] = stray[k];
            cr_expect_eq(aw_sigv4_parse_amz_date(d, &t), -EINVAL, "byte %zu = %d", i, stray[k]);
        }
    }
    const char *bad[] = {"20150830t123600Z", "20150830T123600z", "20150830T123600ZZ",
                         "20150830T126000Z", "20150830T123661Z", "20150800T123600Z",
                         "20150032T123600Z", "20150830 123600Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(aw_sigv4_parse_amz_date(bad[i], &t), -EINVAL, "%s", bad[i]);
    cr_expect_eq(aw_sigv4_parse_amz_date(NULL, &t), -EINVAL);
    /* the edges still accepted */
    cr_expect_eq(aw_sigv4_parse_amz_date("99991231T235960Z", &t), 0);
    cr_expect_eq(aw_sigv4_parse_amz_date("00000101T000000Z", &t), 0);
}

static int parse(const char *s, aw_sigv4_auth *a)
{
    return aw_sigv4_parse_authorization(s, strlen(s), a);
}

#define SIG64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The date arithmetic equals glibc's timegm for every accepted form: years
 * 0000-9999 (leap and century years), every month, days 1-31 (a day past
 * the month's end counts on, as timegm normalises it), and the clock's
 * edges including a leap second's 60. */
Test(sigv4, parse_amz_date_matches_timegm)
{
    static const int years[] = {0,    1,    4,    99,   100,  399,  400,  1600, 1900, 1969, 1970,
                                1971, 1999, 2000, 2001, 2024, 2026, 2038, 2100, 2400, 9999};
    static const int clocks[][3] = {{0, 0, 0}, {0, 0, 1}, {12, 36, 0}, {23, 59, 59}, {23, 59, 60}};
    char d[32];
    for (size_t yi = 0; yi < sizeof years / sizeof years[0]; yi++)
        for (int m = 1; m <= 12; m++)
            for (int day = 1; day <= 31; day++)
                for (size_t ci = 0; ci < sizeof clocks / sizeof clocks[0]; ci++) {
                    snprintf(d, sizeof d, "%04d%02d%02dT%02d%02d%02dZ", years[yi], m, day,
                             clocks[ci][0], clocks[ci][1], clocks[ci][2]);
                    struct tm tm = {.tm_year = years[yi] - 1900,
                                    .tm_mon = m - 1,
                                    .tm_mday = day,
                                    .tm_hour = clocks[ci][0],
                                    .tm_min = clocks[ci][1],
                                    .tm_sec = clocks[ci][2]};
                    time_t want = timegm(&tm), got = 0;
                    cr_assert_eq(aw_sigv4_parse_amz_date(d, &got), 0, "%s", d);
                    cr_assert_eq(got, want, "%s: %lld, timegm %lld", d, (long long)got,
                                 (long long)want);
                }
}

/* The character classes of the Authorization parse, byte by byte against
 * the ranges they stand for: every byte 1-255 (but the delimiters of its
 * place) put into the access key id, the region, the signed-header list and
 * the signature is accepted exactly when its range allows it. */
static bool old_akid(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
static bool old_scope(int c)
{
    return old_akid(c) || c == '-' || c == '_' || c == '.';
}
static bool old_token(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c && strchr("-_.!#$%&'*+^`|~", c));
}
static bool old_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

Test(sigv4, parse_authorization_classes_byte_by_byte)
{
    const char *sig = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";
    for (int c = 1; c < 256; c++) {
        if (c == ',' || c == '/' || c == ';')
            continue;
        char h[512], s64[65];
        aw_sigv4_auth a;
        struct {
            const char *fmt;
            bool want;
        } cases[] = {
            {"AWS4-HMAC-SHA256 Credential=AK%cID/20150830/us-east-1/iam/aws4_request, "
             "SignedHeaders=host, Signature=%s",
             old_akid(c)},
            {"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-e%cst-1/iam/aws4_request, "
             "SignedHeaders=host, Signature=%s",
             old_scope(c)},
            {"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, "
             "SignedHeaders=host;x%cy, Signature=%s",
             old_token(c)},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            snprintf(h, sizeof h, cases[i].fmt, c, sig);
            int r = aw_sigv4_parse_authorization(h, strlen(h), &a);
            cr_assert_eq(r == 0, cases[i].want, "case %zu, byte %d: %d", i, c, r);
        }
        memcpy(s64, sig, 65);
        s64[17] = (char)c;
        snprintf(h, sizeof h,
                 "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam/aws4_request, "
                 "SignedHeaders=host, Signature=%s",
                 s64);
        int r = aw_sigv4_parse_authorization(h, strlen(h), &a);
        cr_assert_eq(r == 0, old_hex(c), "signature, byte %d: %d", c, r);
    }
}

Test(sigv4, parse_authorization_good)
{
    aw_sigv4_auth a;
    cr_assert_eq(parse("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/"
                       "aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" SIG64,
                       &a),
                 0);
    cr_expect_str_eq(a.access_key_id, "AKIDEXAMPLE");
    cr_expect_str_eq(a.date, "20150830");
    cr_expect_str_eq(a.region, "us-east-1");
    cr_expect_str_eq(a.service, "iam");
    cr_expect_str_eq(a.signed_headers, "content-type;host;x-amz-date");
    cr_expect_eq(a.n_signed_headers, 3);
    cr_expect_str_eq(a.signature, SIG64);
    /* any order, no spaces after commas */
    cr_assert_eq(parse("AWS4-HMAC-SHA256 Signature=" SIG64
                       ",SignedHeaders=host,Credential=AK/20200101/r/s/aws4_request",
                       &a),
                 0);
    cr_expect_str_eq(a.service, "s");
}

Test(sigv4, parse_authorization_bad)
{
    aw_sigv4_auth a;
    memset(&a, 0x5a, sizeof a);
    aw_sigv4_auth copy = a;
    struct {
        const char *s;
        int rc;
    } bad[] = {
        {"", -EINVAL},
        {"AWS4-HMAC-SHA1 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host, "
         "Signature=" SIG64,
         -EPROTONOSUPPORT},
        {"AWS4-HMAC-SHA256", -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host", -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host, "
         "Signature=" SIG64 ",",
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, Credential=AK/20200101/r/s/"
         "aws4_request, SignedHeaders=host, Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/2020010/r/s/aws4_request, SignedHeaders=host, "
         "Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws5_request, SignedHeaders=host, "
         "Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request/x, SignedHeaders=host, "
         "Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101//s/aws4_request, SignedHeaders=host, "
         "Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=/20200101/r/s/aws4_request, SignedHeaders=host, "
         "Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=Host, "
         "Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host;, "
         "Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=, "
         "Signature=" SIG64,
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host, "
         "Signature=0123",
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host, "
         "Signature=" SIG64 "00",
         -EMSGSIZE},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host, "
         "Signature=0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host, "
         "Signature=" SIG64 ", Extra=1",
         -EINVAL},
        {"AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request SignedHeaders=host "
         "Signature=" SIG64,
         -EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(parse(bad[i].s, &a), bad[i].rc, "case %zu: %s", i, bad[i].s);
        cr_expect(memcmp(&a, &copy, sizeof a) == 0, "case %zu touched out", i);
    }
    /* limits: whole header, access key id, signed header count */
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_buf_printf(&b, "AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=");
    for (int i = 0; i <= AW_SIGV4_SIGNED_HEADERS_MAX; i++)
        es_buf_printf(&b, "%sh%d", i ? ";" : "", i);
    es_buf_printf(&b, ", Signature=" SIG64);
    cr_expect_eq(parse(es_buf_cstr(&b), &a), -E2BIG);
    es_buf_reset(&b);
    es_buf_printf(&b,
                  "AWS4-HMAC-SHA256 Credential=%0200d/20200101/r/s/aws4_request, "
                  "SignedHeaders=host, Signature=" SIG64,
                  0);
    cr_expect_eq(parse(es_buf_cstr(&b), &a), -EMSGSIZE);
    es_buf_reset(&b);
    es_buf_printf(&b,
                  "AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, "
                  "SignedHeaders=host, Signature=" SIG64 "%05000d",
                  0);
    cr_expect_eq(parse(es_buf_cstr(&b), &a), -EMSGSIZE);
    es_buf_free(&b);
    /* embedded NUL */
    const char nul[] = "AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request\0, "
                       "SignedHeaders=host, Signature=" SIG64;
    cr_expect_eq(aw_sigv4_parse_authorization(nul, sizeof nul - 1, &a), -EINVAL);
}

/* Differential test: tests/sigv4_botocore.py signs N random requests with
 * botocore's SigV4Auth and prints each request and its Authorization; we
 * sign the same requests and compare. */
Test(sigv4, differential_against_botocore, .timeout = 120)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        cr_skip_test("no /usr/bin/python3");
    FILE *p = popen("/usr/bin/python3 " ES_SOURCE_DIR "/tests/sigv4_botocore.py 300 2>&1", "r");
    cr_assert(p);
    es_buf line;
    es_buf_init(&line, 1 << 20);
    char chunk[8192];
    while (fgets(chunk, sizeof chunk, p))
        cr_assert_eq(es_buf_append_str(&line, chunk), 0);
    int st = pclose(p);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        cr_skip_test("botocore not installed");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "helper failed: %s", es_buf_cstr(&line));
    es_json *doc = NULL;
    es_json_limits lim = es_json_default_limits;
    lim.max_bytes = 1 << 20;
    cr_assert_eq(es_json_parse(line.data, line.len, &lim, &doc, NULL, 0), 0);
    size_t n = es_json_len(doc), same = 0;
    cr_assert_eq(n, 300);
    aw_signer *s = aw_signer_create();
    for (size_t i = 0; i < n; i++) {
        const es_json *c = es_json_at(doc, i);
        const es_json *hs = es_json_get(c, "headers");
        aw_header h[64];
        size_t nh = es_json_len(hs);
        cr_assert_leq(nh, 64);
        for (size_t k = 0; k < nh; k++) {
            const es_json *pair = es_json_at(hs, k);
            h[k] = (aw_header){es_json_as_str(es_json_at(pair, 0)),
                               es_json_as_str(es_json_at(pair, 1))};
        }
        const char *body = es_json_get_str(c, "body");
        char ph[65];
        aw_sigv4_sha256_hex(body, strlen(body), ph);
        const char *query = es_json_get_str(c, "query");
        aw_sigv4_input in = {
            es_json_get_str(c, "method"), es_json_get_str(c, "path"), query, h, nh, ph, false};
        const char *tok = es_json_get_str(c, "token");
        aw_sigv4_creds cr = {es_json_get_str(c, "akid"), es_json_get_str(c, "secret"),
                             tok && *tok ? tok : NULL};
        int64_t t = 0;
        cr_assert(es_json_get_int64(c, "time", &t));
        aw_sigv4_result r;
        cr_assert_eq(aw_signer_sign(s, &cr, es_json_get_str(c, "region"),
                                    es_json_get_str(c, "service"), (time_t)t, &in, &r),
                     0);
        const char *want = es_json_get_str(c, "authorization");
        cr_expect_str_eq(es_buf_cstr(&r.authorization), want, "request %zu path %s query %s", i,
                         in.path, query ? query : "");
        same += strcmp(es_buf_cstr(&r.authorization), want) == 0;
        /* and our verifier accepts botocore's signature */
        aw_sigv4_auth a;
        cr_assert_eq(aw_sigv4_parse_authorization(want, strlen(want), &a), 0);
        aw_header h2[66];
        memcpy(h2, h, nh * sizeof *h);
        size_t nh2 = nh;
        h2[nh2++] = (aw_header){"X-Amz-Date", r.amz_date};
        if (cr.session_token)
            h2[nh2++] = (aw_header){"X-Amz-Security-Token", cr.session_token};
        aw_sigv4_input in2 = in;
        in2.headers = h2;
        in2.n_headers = nh2;
        cr_expect_eq(aw_sigv4_verify(&in2, &a, r.amz_date, cr.secret_access_key), 0, "verify %zu",
                     i);
        es_buf_free_secret(&r.authorization);
    }
    cr_expect_eq(same, n);
    aw_signer_free(s);
    es_json_free(doc);
    es_buf_free(&line);
}

/* The HMAC-SHA256 of the key derivation against OpenSSL's HMAC(), for
 * "AWS4" + secret keys shorter than, equal to and longer than the 64-byte
 * block (hashed first), and messages of every length up to 130. */
Test(sigv4, hmac_chain_matches_openssl)
{
    char secret[300];
    for (size_t n = 0; n < sizeof secret - 1; n += (n < 70 ? 1 : 23)) {
        for (size_t i = 0; i < n; i++)
            secret[i] = (char)('A' + (i * 7 + n) % 26);
        secret[n] = '\0';
        char date[140];
        size_t dl = n % 131;
        for (size_t i = 0; i < dl; i++)
            date[i] = (char)('0' + (i + n) % 10);
        date[dl] = '\0';
        uint8_t got[32], want[32], a[32], b[32];
        cr_assert_eq(aw_sigv4_signing_key(secret, date, "us-east-1", "ssm", got), 0);
        char k0[320];
        memcpy(k0, "AWS4", 4);
        memcpy(k0 + 4, secret, n);
        unsigned int ol = 0;
        cr_assert_not_null(HMAC(EVP_sha256(), k0, (int)(4 + n), (const uint8_t *)date, dl, a, &ol));
        cr_assert_not_null(HMAC(EVP_sha256(), a, 32, (const uint8_t *)"us-east-1", 9, b, &ol));
        cr_assert_not_null(HMAC(EVP_sha256(), b, 32, (const uint8_t *)"ssm", 3, a, &ol));
        cr_assert_not_null(
            HMAC(EVP_sha256(), a, 32, (const uint8_t *)"aws4_request", 12, want, &ol));
        cr_assert_eq(memcmp(got, want, 32), 0, "secret of %zu, message of %zu", n, dl);
    }
}

/* A key's kept HMAC states (aw_sigv4_mac) give OpenSSL's HMAC() for
 * messages of every length around the block boundaries, again and again on
 * the same object (its working copy is reset each time); another key's
 * states give another MAC. */
Test(sigv4, kept_mac_states_match_openssl_hmac)
{
    uint8_t ka[32], kb[32];
    for (size_t i = 0; i < 32; i++) {
        ka[i] = (uint8_t)(i * 13 + 1);
        kb[i] = ka[i];
    }
    kb[31] ^= 1; /* one bit apart */
    aw_sigv4_mac *ma = aw_sigv4_mac_new(ka), *mb = aw_sigv4_mac_new(kb);
    cr_assert_not_null(ma);
    cr_assert_not_null(mb);
    char msg[300];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    for (int round = 0; round < 2; round++) {
        for (size_t n = 0; n <= sizeof msg; n += (n < 140 ? 1 : 37)) {
            uint8_t want[32];
            unsigned int ol = 0;
            cr_assert_not_null(HMAC(EVP_sha256(), ka, 32, (const uint8_t *)msg, n, want, &ol));
            char want_hex[65], got[65], other[65], plain[65];
            for (size_t i = 0; i < 32; i++)
                snprintf(want_hex + 2 * i, 3, "%02x", want[i]);
            cr_assert_eq(aw_sigv4_mac_hex(ma, msg, n, got), 0);
            cr_assert_str_eq(got, want_hex, "message of %zu", n);
            cr_assert_eq(aw_sigv4_signature_hex(ka, msg, n, plain), 0);
            cr_assert_str_eq(plain, want_hex);
            cr_assert_eq(aw_sigv4_mac_hex(mb, msg, n, other), 0);
            cr_assert_str_neq(other, want_hex, "another key's states, message of %zu", n);
        }
    }
    aw_sigv4_mac_free(ma);
    aw_sigv4_mac_free(mb);
    aw_sigv4_mac_free(NULL);
}

/* A kept MAC's working context also hashes plain data (the verifier's body
 * hash): the digest equals OpenSSL's SHA-256 for lengths around the block
 * boundaries, hashes interleaved with MACs on the same object leave both
 * right (neither leaves state the other picks up), and NULL is refused. */
Test(sigv4, kept_mac_context_hashes_like_sha256)
{
    uint8_t k[32];
    for (size_t i = 0; i < 32; i++)
        k[i] = (uint8_t)(i * 7 + 3);
    aw_sigv4_mac *m = aw_sigv4_mac_new(k);
    cr_assert_not_null(m);
    char msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('A' + i % 23);
    for (size_t n = 0; n <= sizeof msg; n += (n < 130 ? 1 : 23)) {
        uint8_t want[32];
        cr_assert_eq(EVP_Digest(msg, n, want, NULL, EVP_sha256(), NULL), 1);
        char want_hex[65], got[65], plain[65], mac1[65], mac2[65];
        for (size_t i = 0; i < 32; i++)
            snprintf(want_hex + 2 * i, 3, "%02x", want[i]);
        cr_assert_eq(aw_sigv4_mac_hex(m, msg, n, mac1), 0);
        cr_assert_eq(aw_sigv4_mac_sha256_hex(m, msg, n, got), 0);
        cr_assert_str_eq(got, want_hex, "hash of %zu on the kept context", n);
        aw_sigv4_sha256_hex(msg, n, plain);
        cr_assert_str_eq(plain, want_hex);
        cr_assert_eq(aw_sigv4_mac_hex(m, msg, n, mac2), 0);
        cr_assert_str_eq(mac1, mac2, "the MAC changed after a hash on its context (%zu)", n);
        cr_assert_str_neq(mac1, want_hex);
    }
    char h[65];
    cr_assert_eq(aw_sigv4_mac_sha256_hex(NULL, msg, 3, h), -EINVAL);
    aw_sigv4_mac_free(m);
}

/* Verification with kept states: the signer's request verifies with its
 * key's states as with the key; another key's states, a changed signature
 * or a changed body are refused, and the states still verify the right
 * request after a refusal. */
Test(sigv4, verify_with_kept_mac_states)
{
    aw_signer *s = aw_signer_create();
    const char *body = "{\"Names\":[\"/a\",\"/b\"],\"WithDecryption\":true}";
    char ph[65];
    aw_sigv4_sha256_hex(body, strlen(body), ph);
    aw_header h[] = {{"Host", "127.0.0.1:8080"},
                     {"Content-Type", "application/x-amz-json-1.1"},
                     {"X-Amz-Target", "AmazonSSM.GetParameters"}};
    aw_sigv4_input in = {"POST", "/", NULL, h, 3, ph, false};
    aw_sigv4_creds c = {"AKIDEXAMPLE", "secret1", NULL};
    aw_sigv4_result r;
    cr_assert_eq(aw_signer_sign(s, &c, "us-east-1", "ssm", 1700000000, &in, &r), 0);
    aw_sigv4_auth a;
    cr_assert_eq(
        aw_sigv4_parse_authorization(es_buf_cstr(&r.authorization), r.authorization.len, &a), 0);
    aw_header h2[] = {h[0], h[1], h[2], {"X-Amz-Date", r.amz_date}};
    aw_sigv4_input in2 = {"POST", "/", NULL, h2, 4, ph, false};
    uint8_t key[32], other[32];
    cr_assert_eq(aw_sigv4_signing_key("secret1", a.date, a.region, a.service, key), 0);
    cr_assert_eq(aw_sigv4_signing_key("secret2", a.date, a.region, a.service, other), 0);
    aw_sigv4_mac *m = aw_sigv4_mac_new(key), *mo = aw_sigv4_mac_new(other);
    cr_assert_not_null(m);
    cr_assert_not_null(mo);
    cr_assert_eq(aw_sigv4_verify_with_key(&in2, &a, r.amz_date, key), 0);
    cr_assert_eq(aw_sigv4_verify_with_mac(&in2, &a, r.amz_date, m), 0);
    cr_assert_eq(aw_sigv4_verify_with_mac(&in2, &a, r.amz_date, mo), -EACCES);
    cr_assert_eq(aw_sigv4_verify_with_mac(&in2, &a, r.amz_date, NULL), -EINVAL);
    aw_sigv4_auth bad = a;
    bad.signature[10] = bad.signature[10] == '0' ? '1' : '0';
    cr_assert_eq(aw_sigv4_verify_with_mac(&in2, &bad, r.amz_date, m), -EACCES);
    char ph2[65];
    aw_sigv4_sha256_hex("{}", 2, ph2);
    aw_sigv4_input in3 = in2;
    in3.payload_hash = ph2;
    cr_assert_eq(aw_sigv4_verify_with_mac(&in3, &a, r.amz_date, m), -EACCES);
    cr_assert_eq(aw_sigv4_verify_with_mac(&in2, &a, r.amz_date, m), 0, "after refusals");
    aw_sigv4_mac_free(m);
    aw_sigv4_mac_free(mo);
    es_buf_free_secret(&r.authorization);
    aw_signer_free(s);
}

/* A value without whitespace is copied whole, one with any is folded: a
 * single tab, carriage return or form feed inside becomes one space, just
 * as a run does (the folded length equals the value's, yet the bytes
 * differ). Several headers, more than the insertion sort takes (24), still
 * come out sorted with repeated names in request order. */
Test(sigv4, canonical_headers_fold_single_whitespace_and_sort_many)
{
    aw_header h[] = {{"X-T", "a\tb"}, {"X-R", "c\rd"}, {"X-F", "e\ff"}, {"X-P", "plain"}};
    aw_sigv4_input in = {"GET", "/", NULL, h, 4, aw_sigv4_empty_sha256, false};
    es_buf out;
    es_buf_init(&out, 4096);
    cr_assert_eq(aw_sigv4_canonical_request(&in, NULL, &out, NULL), 0);
    cr_expect_str_eq(es_buf_cstr(&out),
                     "GET\n/\n\nx-f:e f\nx-p:plain\nx-r:c d\nx-t:a b\n\nx-f;x-p;x-r;x-t\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* 40 headers named h39..h00 (and h20 twice): qsort's path */
    aw_header many[41];
    char names[40][4];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "h%02d", 39 - i);
        many[i] = (aw_header){names[i], i == 19 ? "first" : "v"};
    }
    many[40] = (aw_header){"H20", "second"};
    aw_sigv4_input in2 = {"GET", "/", NULL, many, 41, aw_sigv4_empty_sha256, false};
    cr_assert_eq(aw_sigv4_canonical_request(&in2, NULL, &out, NULL), 0);
    const char *c = es_buf_cstr(&out);
    const char *p00 = strstr(c, "\nh00:v\n"), *p20 = strstr(c, "\nh20:first,second\n"),
               *p39 = strstr(c, "\nh39:v\n");
    cr_assert(p00 && p20 && p39 && p00 < p20 && p20 < p39, "%s", c);
    es_buf_free(&out);
}

/* Verifying, the headers are found in the SignedHeaders list in any case and
 * named by the list's own names; an ascending list orders them by place in
 * it, any other list by comparing names. Both give exactly the canonical
 * request the signer builds (sorted names, repeated headers joined in the
 * request's order), but for the list line, which is signed as sent. */
Test(sigv4, verifying_lists_ascending_or_not_give_the_signers_headers)
{
    aw_header h[] = {{"X-Amz-Date", "20150830T123600Z"},
                     {"Host", "example.amazonaws.com"},
                     {"X-Rep", "one"},
                     {"Content-Type", "text/plain"},
                     {"x-REP", "two  words"},
                     {"X-Amz-Target", "T.Op"},
                     {"User-Agent", "not signed"},
                     {"X-Re", "prefix of x-rep"},
                     {"X-Reps", "x-rep a prefix of it"}};
    size_t nh = sizeof h / sizeof h[0];
    aw_sigv4_input in = {"POST", "/", NULL, h, nh, aw_sigv4_empty_sha256, false};
    es_buf want, got, names;
    es_buf_init(&want, 4096);
    es_buf_init(&got, 4096);
    es_buf_init(&names, 4096);
    cr_assert_eq(aw_sigv4_canonical_request(&in, NULL, &want, &names), 0);
    const char *list = "content-type;host;x-amz-date;x-amz-target;x-re;x-rep;x-reps";
    cr_assert_str_eq(es_buf_cstr(&names), list);
    cr_assert(strstr(es_buf_cstr(&want), "\nx-re:prefix of x-rep\nx-rep:one,two words\nx-reps:"));
    /* the sorted list: the very same canonical request */
    cr_assert_eq(aw_sigv4_canonical_request(&in, list, &got, NULL), 0);
    cr_expect_str_eq(es_buf_cstr(&got), es_buf_cstr(&want));
    /* lists in other orders (and one with a name twice): the same header
     * lines, the list as sent */
    const char *other[] = {
        "x-reps;x-rep;x-re;x-amz-target;x-amz-date;host;content-type",
        "host;content-type;x-amz-date;x-amz-target;x-rep;x-re;x-reps",
        "content-type;host;x-amz-date;x-amz-target;x-re;x-rep;x-rep;x-reps",
    };
    const char *w = es_buf_cstr(&want);
    const char *wl = strstr(w, "\n\n"
                               "content-type;");
    cr_assert_not_null(wl);
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        cr_assert_eq(aw_sigv4_canonical_request(&in, other[i], &got, NULL), 0, "%s", other[i]);
        const char *g = es_buf_cstr(&got);
        cr_expect_eq(strncmp(g, w, (size_t)(wl - w) + 2), 0, "%s:\n%s", other[i], g);
        cr_expect(strstr(g, other[i]) != NULL, "%s", g);
    }
    /* fewer names: only those, still in order */
    cr_assert_eq(aw_sigv4_canonical_request(&in, "host;x-rep", &got, NULL), 0);
    cr_expect_str_eq(es_buf_cstr(&got),
                     "POST\n/\n\nhost:example.amazonaws.com\n"
                     "x-rep:one,two words\n\nhost;x-rep\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* a listed name no header has (nor one differing by a letter) */
    cr_expect_eq(aw_sigv4_canonical_request(&in, "host;x-repz", &got, NULL), -ENOENT);
    cr_expect_eq(aw_sigv4_canonical_request(&in, "x-rez;host", &got, NULL), -ENOENT);
    es_buf_free(&want);
    es_buf_free(&got);
    es_buf_free(&names);
}

/* The canonical form of a header value as botocore writes it: trimmed, each
 * run of whitespace folded into one space. */
static void ref_fold(const char *v, char *out)
{
    size_t o = 0;
    bool pending = false, any = false;
    for (; *v; v++) {
        if (strchr(" \t\r\n\v\f", *v)) {
            pending = any;
            continue;
        }
        if (pending)
            out[o++] = ' ';
        out[o++] = *v;
        pending = false;
        any = true;
    }
    out[o] = '\0';
}

/* A value with no byte below '!' is known plain eight bytes at a time: every
 * length around the word size, with a whitespace (or another byte below '!',
 * or a high byte) at every place, folds exactly as botocore folds it, in
 * signing and in verifying. */
Test(sigv4, header_values_fold_with_any_byte_at_any_place)
{
    static const char probes[] = {' ',    '\t', '\r',   '\n',   '\v',   '\f',  '\x01',
                                  '\x1f', '!',  '\x7f', '\x80', '\xa0', '\xff'};
    char value[40], want[64], line[128];
    es_buf out;
    es_buf_init(&out, 4096);
    for (size_t n = 1; n <= 33; n++) {
        for (size_t at = 0; at < n; at++) {
            for (size_t k = 0; k < sizeof probes; k++) {
                for (size_t i = 0; i < n; i++)
                    value[i] = (char)('a' + i % 26);
                value[n] = '\0';
                value[at] = probes[k];
                ref_fold(value, want);
                snprintf(line, sizeof line, "\nx-v:%s\n\n", want);
                aw_header h[] = {{"X-V", value}};
                aw_sigv4_input in = {"GET", "/", NULL, h, 1, aw_sigv4_empty_sha256, false};
                cr_assert_eq(aw_sigv4_canonical_request(&in, NULL, &out, NULL), 0);
                cr_assert_not_null(strstr(es_buf_cstr(&out), line), "n %zu at %zu byte %d: %s", n,
                                   at, probes[k], es_buf_cstr(&out));
                cr_assert_eq(aw_sigv4_canonical_request(&in, "x-v", &out, NULL), 0);
                cr_assert_not_null(strstr(es_buf_cstr(&out), line), "n %zu at %zu byte %d: %s", n,
                                   at, probes[k], es_buf_cstr(&out));
            }
        }
    }
    es_buf_free(&out);
}
