/* Every error path of the aws/ parsers and the signer releases what it
 * took: make the Nth allocation fail, for every N until the call succeeds
 * (ASan's leak check at exit catches what an error path forgot), and check
 * that a failed call reports an error and leaves its output untouched. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "aws/arn.h"
#include "aws/credentials.h"
#include "aws/secretsmanager.h"
#include "aws/sigv4.h"
#include "aws/ssm.h"
#include "aws/sts.h"
#include "aws/xml.h"
#include "common/alloc.h"

/* Criterion's workers end without running LeakSanitizer's exit check, so
 * the test asks for a leak check itself when built with ASan. */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

typedef int (*op_fn)(void);

/* Runs op with the Nth allocation failing, N = 0, 1, ...; returns the
 * number of failing runs before the first success. */
static int sweep(op_fn op)
{
    for (long n = 0; n < 100000; n++) {
        es_alloc_fail_after(n);
        int rc = op();
        es_alloc_fail_after(-1);
        if (rc == 0)
            return (int)n;
        cr_assert_neq(rc, 0);
    }
    cr_assert_fail("never succeeded");
    return -1;
}

static int op_canonical(void)
{
    aw_header h[] = {{"Host", "a"}, {"X-B", " 1  2 "}, {"x-b", "3"}, {"Content-Type", "t"}};
    aw_sigv4_input in = {"POST", "/a/./b/../c//d", "b=2&a=1&a=%41", h, 4, aw_sigv4_empty_sha256,
                         false};
    es_buf out, names;
    es_buf_init(&out, AW_SIGV4_CANONICAL_MAX);
    es_buf_init(&names, 1024);
    int rc = aw_sigv4_canonical_request(&in, NULL, &out, &names);
    if (rc == 0)
        cr_expect(strstr(es_buf_cstr(&out), "x-b:1 2,3"));
    es_buf_free(&out);
    es_buf_free(&names);
    return rc;
}

static int op_sign(void)
{
    aw_signer *s = aw_signer_create();
    if (!s)
        return -ENOMEM;
    aw_header h[] = {{"Host", "a"}};
    aw_sigv4_input in = {"POST", "/", NULL, h, 1, aw_sigv4_empty_sha256, false};
    aw_sigv4_creds c = {"AK", "SK", "TOKEN"};
    aw_sigv4_result r;
    int rc = aw_signer_sign(s, &c, "us-east-1", "ssm", 1700000000, &in, &r);
    if (rc == 0)
        es_buf_free_secret(&r.authorization);
    aw_signer_free(s);
    return rc;
}

static int op_auth(void)
{
    const char *v = "AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, "
                    "SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123"
                    "456789abcdef0123456789abcdef";
    aw_sigv4_auth a;
    return aw_sigv4_parse_authorization(v, strlen(v), &a);
}

static int op_arn(void)
{
    aw_arn a;
    return aw_arn_parse_str("arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf:k::",
                            &a);
}

static int op_ssm(void)
{
    const char *b = "{\"Parameters\":[{\"Name\":\"/a\",\"Value\":\"v\",\"Type\":\"String\","
                    "\"ARN\":\"x\",\"Selector\":\":1\",\"DataType\":\"text\",\"Version\":2},"
                    "{\"Name\":\"b\",\"Value\":\"w\"}],\"InvalidParameters\":[\"c\",\"d\"]}";
    aw_ssm_result r;
    int rc = aw_ssm_parse_result(b, strlen(b), &r);
    if (rc == 0) {
        cr_expect_eq(r.n_params, 2);
        cr_expect_eq(r.n_invalid, 2);
        aw_ssm_result_clear(&r);
    }
    return rc;
}

static int op_sm(void)
{
    const char *b = "{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretBinary\":\"AAEC\","
                    "\"VersionStages\":[\"AWSCURRENT\",\"X\"]}";
    aw_secret_value v;
    int rc = aw_sm_parse_value(b, strlen(b), &v);
    if (rc == 0) {
        cr_expect_eq(v.binary_len, 3);
        aw_secret_value_clear(&v);
    }
    return rc;
}

static int op_sts(void)
{
    const char *b = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A"
                    "</AccessKeyId><SecretAccessKey>S</SecretAccessKey><SessionToken>T"
                    "</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>"
                    "<AssumedRoleUser><Arn>r</Arn><AssumedRoleId>i</AssumedRoleId>"
                    "</AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>";
    aw_sts_credentials c;
    int rc = aw_sts_parse_assume_role(b, strlen(b), &c);
    if (rc == 0)
        aw_sts_credentials_clear(&c);
    return rc;
}

static int op_ini(void)
{
    const char *t = "[default]\naws_access_key_id=A\naws_secret_access_key=S\n"
                    "aws_session_token=T\n";
    aw_credentials c = {0};
    int rc = aw_creds_parse_ini(t, strlen(t), "default", 0, &c);
    if (rc == 0)
        aw_credentials_clear(&c);
    return rc;
}

Test(alloc, every_failure_point_is_clean)
{
    struct {
        const char *name;
        op_fn op;
    } ops[] = {{"canonical", op_canonical},
               {"sign", op_sign},
               {"arn", op_arn},
               {"ssm", op_ssm},
               {"sm", op_sm},
               {"sts", op_sts},
               {"ini", op_ini}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        int n = sweep(ops[i].op);
        /* each of these allocates, so the sweep really injected failures */
        cr_expect_gt(n, 0, "%s never allocated", ops[i].name);
    }
    /* the Authorization header is parsed on the stack (issue 22: it zeroed,
     * copied and wiped a 2.4 KB heap struct twice per request): it succeeds
     * with the very first allocation failing, because it makes none */
    cr_expect_eq(sweep(op_auth), 0, "the Authorization parse allocated");
#ifdef HAVE_LSAN
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "leaks (see the report above)");
#endif
}
