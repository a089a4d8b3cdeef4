/* Bad input for the parsers of AWS answers, the XML picker's limits, the
 * error classification and the ISO 8601 parser. */
#include <criterion/criterion.h>

#include "aws_fake.h"

#include <errno.h>
#include <string.h>

#include "aws/client.h"
#include "aws/secretsmanager.h"
#include "aws/ssm.h"
#include "aws/sts.h"
#include "aws/xml.h"
#include "common/buf.h"

static int ssm(const char *s)
{
    aw_ssm_result r;
    int rc = aw_ssm_parse_result(s, strlen(s), &r);
    if (rc == 0)
        aw_ssm_result_clear(&r);
    return rc;
}

TestSuite(parsers, .fini = expect_no_leaks);

Test(parsers, ssm_bad)
{
    cr_expect_eq(ssm("{\"Parameters\":[],\"InvalidParameters\":[]}"), 0);
    cr_expect_eq(ssm("{\"Parameter\":{\"Name\":\"a\",\"Value\":\"v\"}}"), 0);
    const char *bad[] = {
        "",
        "[]",
        "{}",
        "{\"Parameters\":{}}",
        "{\"Parameters\":[1]}",
        "{\"Parameters\":[{\"Name\":\"a\"}]}",
        "{\"Parameters\":[{\"Name\":1,\"Value\":\"v\"}]}",
        "{\"Parameters\":[],\"InvalidParameters\":[1]}",
        "{\"Parameters\":[],\"InvalidParameters\":\"a\"}",
        "{\"Parameter\":[]}",
        "{\"Parameters\":[{\"Name\":\"a\",\"Value\":\"v\"}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(ssm(bad[i]), -EPROTO, "%s", bad[i]);
}

/* GetParametersByPath's pages: NextToken read and bounded. */
Test(parsers, ssm_next_token)
{
    const char *page = "{\"Parameters\":[{\"Name\":\"/a/b\",\"Value\":\"v\",\"Version\":3}],"
                       "\"NextToken\":\"tok-1\"}";
    aw_ssm_result r;
    cr_assert_eq(aw_ssm_parse_result(page, strlen(page), &r), 0);
    cr_expect_str_eq(r.next_token, "tok-1");
    cr_expect_eq(r.n_params, 1);
    cr_expect_eq(r.params[0].version, 3);
    cr_expect(!r.truncated);
    aw_ssm_result_clear(&r);
    cr_expect_null(r.next_token);
    /* the last page: absent, null or "" */
    const char *last[] = {"{\"Parameters\":[]}", "{\"Parameters\":[],\"NextToken\":null}",
                          "{\"Parameters\":[],\"NextToken\":\"\"}"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(aw_ssm_parse_result(last[i], strlen(last[i]), &r), 0, "%s", last[i]);
        cr_expect_null(r.next_token, "%s", last[i]);
        aw_ssm_result_clear(&r);
    }
    cr_expect_eq(ssm("{\"Parameters\":[],\"NextToken\":1}"), -EPROTO);
    cr_expect_eq(ssm("{\"Parameters\":[],\"NextToken\":\"a\\u0000b\"}"), -EPROTO);
    es_buf big;
    es_buf_init(&big, 2 * AW_SSM_NEXT_TOKEN_MAX);
    es_buf_append_str(&big, "{\"Parameters\":[],\"NextToken\":\"");
    for (size_t i = 0; i < AW_SSM_NEXT_TOKEN_MAX + 1; i++)
        es_buf_append_char(&big, 'x');
    es_buf_append_str(&big, "\"}");
    cr_expect_eq(ssm(es_buf_cstr(&big)), -EPROTO, "a token longer than AW_SSM_NEXT_TOKEN_MAX");
    es_buf_free(&big);
}

static int sm(const char *s, aw_secret_value *v)
{
    int rc = aw_sm_parse_value(s, strlen(s), v);
    return rc;
}

Test(parsers, secret_bad)
{
    aw_secret_value v;
    cr_assert_eq(sm("{\"ARN\":\"a\",\"Name\":\"n\",\"SecretBinary\":\"YQ==\"}", &v), 0);
    cr_expect_eq(v.binary_len, 1);
    cr_expect_eq(v.binary[0], 'a');
    aw_secret_value_clear(&v);
    cr_assert_eq(sm("{\"ARN\":\"a\",\"Name\":\"n\",\"SecretBinary\":\"\"}", &v), 0);
    cr_expect_eq(v.binary_len, 0);
    aw_secret_value_clear(&v);
    const char *bad[] = {
        "{}",
        "{\"ARN\":\"a\",\"Name\":\"n\"}",
        "{\"ARN\":\"a\",\"SecretString\":\"s\"}",
        "{\"ARN\":\"a\",\"Name\":\"n\",\"SecretString\":\"s\",\"SecretBinary\":\"YQ==\"}",
        "{\"ARN\":\"a\",\"Name\":\"n\",\"SecretBinary\":\"YQ=\"}",
        "{\"ARN\":\"a\",\"Name\":\"n\",\"SecretBinary\":\"Y===\"}",
        "{\"ARN\":\"a\",\"Name\":\"n\",\"SecretBinary\":\"Y=Q=\"}",
        "{\"ARN\":\"a\",\"Name\":\"n\",\"SecretBinary\":\"YQ*=\"}",
        "{\"ARN\":\"a\",\"Name\":\"n\",\"SecretBinary\":5}",
        "{\"ARN\":\"a\",\"Name\":\"n\",\"SecretString\":\"s\",\"VersionStages\":[1]}",
        "\"s\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(sm(bad[i], &v), -EPROTO, "%s", bad[i]);
}

#define AR(creds)                                                                                  \
    "<AssumeRoleResponse><AssumeRoleResult><Credentials>" creds                                    \
    "</Credentials></AssumeRoleResult></AssumeRoleResponse>"

Test(parsers, sts_bad)
{
    aw_sts_credentials c;
    const char *ok = AR("<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
                        "<SessionToken>T</SessionToken><Expiration>2030-01-01T00:00:00Z"
                        "</Expiration>");
    cr_assert_eq(aw_sts_parse_assume_role(ok, strlen(ok), &c), 0);
    cr_expect_eq(c.expiration, 1893456000);
    aw_sts_credentials_clear(&c);
    const char *bad[] = {
        "",
        "<a>",
        AR("<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
           "<SessionToken>T</SessionToken>"),
        AR("<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
           "<SessionToken>T</SessionToken><Expiration>tomorrow</Expiration>"),
        AR("<AccessKeyId></AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
           "<SessionToken>T</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>"),
        "<!DOCTYPE x [<!ENTITY a \"b\">]>" AR(
            "<AccessKeyId>&a;</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
            "<SessionToken>T</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration>"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(aw_sts_parse_assume_role(bad[i], strlen(bad[i]), &c), -EPROTO, "%zu", i);
}

Test(parsers, xml_limits)
{
    const char *paths[] = {"a/b"};
    char *v[1];
    es_buf b;
    es_buf_init(&b, 1 << 20);
    for (int i = 0; i <= AW_XML_MAX_DEPTH; i++)
        es_buf_append_str(&b, "<a>");
    cr_expect_eq(aw_xml_pick(b.data, b.len, paths, 1, v), AW_XML_E_TOO_DEEP);
    es_buf_reset(&b);
    es_buf_printf(&b, "<a><b>%0*d</b></a>", AW_XML_MAX_TEXT + 1, 0);
    cr_expect_eq(aw_xml_pick(b.data, b.len, paths, 1, v), AW_XML_E_TEXT_TOO_LONG);
    es_buf_reset(&b);
    es_buf_printf(&b, "<a><b>%0*d</b></a>", AW_XML_MAX_TEXT, 0);
    cr_expect_eq(aw_xml_pick(b.data, b.len, paths, 1, v), 0);
    cr_expect_eq(strlen(v[0]), AW_XML_MAX_TEXT);
    aw_xml_pick_free(v, 1);
    cr_expect_eq(aw_xml_pick(b.data, AW_XML_MAX_BYTES + 1, paths, 1, v), AW_XML_E_TOO_BIG);
    const char *dt = "<!DOCTYPE a><a><b>x</b></a>";
    cr_expect_eq(aw_xml_pick(dt, strlen(dt), paths, 1, v), AW_XML_E_DOCTYPE);
    const char *bad = "<a><b>x</a>";
    cr_expect_eq(aw_xml_pick(bad, strlen(bad), paths, 1, v), AW_XML_E_SYNTAX);
    cr_expect_null(v[0]);
    /* first occurrence wins; nested markup contributes its text; entities decoded */
    const char *two = "<a><b>1<i>2</i>&amp;</b><b>3</b></a>";
    cr_assert_eq(aw_xml_pick(two, strlen(two), paths, 1, v), 0);
    cr_expect_str_eq(v[0], "12&");
    aw_xml_pick_free(v, 1);
    es_buf_free(&b);
}

Test(parsers, iso8601)
{
    time_t t;
    cr_assert_eq(aw_parse_iso8601("2030-01-01T00:00:00Z", &t), 0);
    cr_expect_eq(t, 1893456000);
    cr_assert_eq(aw_parse_iso8601("2030-01-01T01:00:00.123+01:00", &t), 0);
    cr_expect_eq(t, 1893456000);
    const char *bad[] = {"",
                         "2030-01-01",
                         "2030-01-01T00:00:00",
                         "2030-13-01T00:00:00Z",
                         "2030-01-01T00:00:00Zjunk",
                         "2030/01/01T00:00:00Z",
                         "2030-01-01T00:00:00+0100"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(aw_parse_iso8601(bad[i], &t), -EINVAL, "%s", bad[i]);
}

Test(parsers, error_classification)
{
    aw_error e = {.kind = AW_ERR_SERVICE, .status = 400};
    snprintf(e.code, sizeof e.code, "ThrottlingException");
    cr_expect(aw_error_retryable(&e));
    snprintf(e.code, sizeof e.code, "LimitExceededException");
    cr_expect(aw_error_retryable(&e));
    snprintf(e.code, sizeof e.code, "AccessDeniedException");
    cr_expect(!aw_error_retryable(&e));
    snprintf(e.code, sizeof e.code, "ValidationException");
    cr_expect(!aw_error_retryable(&e));
    e.status = 503;
    snprintf(e.code, sizeof e.code, "%s", "");
    cr_expect(aw_error_retryable(&e));
    e.status = 429;
    cr_expect(aw_error_is_throttling(&e));
    aw_error t = {.kind = AW_ERR_TRANSPORT, .http_err = AW_HTTP_E_TIMEOUT};
    cr_expect(aw_error_retryable(&t));
    t.http_err = AW_HTTP_E_BODY_TOO_BIG;
    cr_expect(!aw_error_retryable(&t));
    t.http_err = AW_HTTP_E_TLS;
    cr_expect(!aw_error_retryable(&t));
}

/* A signature refused for its time, as SSM/Secrets Manager/KMS (JSON), STS/IAM (query) and S3
 * word it, names how far the host's clock is off the service's Date; others do not. */
Test(parsers, clock_skew_named)
{
    aw_error e = {.kind = AW_ERR_SERVICE, .status = 400};
    snprintf(e.code, sizeof e.code, "InvalidSignatureException");
    snprintf(e.message, sizeof e.message,
             "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z "
             "(20240101T001000Z - 5 min.)");
    cr_assert(aw_error_is_clock_skew(&e));
    cr_expect(!aw_error_retryable(&e));
    aw_error_note_clock(&e, 1700000600, 1700000000);
    cr_expect(e.clock_skewed);
    cr_expect_eq(e.clock_skew_s, 600);
    cr_expect(strstr(e.message, "(20240101T001000Z - 5 min.) (the host's clock is 600 s behind "
                                "the service's)"),
              "%s", e.message);
    aw_error_note_clock(&e, 1700000600, 1700000000); /* noted once */
    const char *first = strstr(e.message, "host's clock");
    cr_expect(first && !strstr(first + 1, "host's clock"), "%s", e.message);

    aw_error q = {.kind = AW_ERR_SERVICE, .status = 403};
    snprintf(q.code, sizeof q.code, "SignatureDoesNotMatch");
    snprintf(q.message, sizeof q.message,
             "Signature not yet current: 20240101T002000Z is still later than ...");
    aw_error_note_clock(&q, 1700000000, 1700000900);
    cr_expect_eq(q.clock_skew_s, -900);
    cr_expect(strstr(q.message, "(the host's clock is 900 s ahead of the service's)"), "%s",
              q.message);

    aw_error s = {.kind = AW_ERR_SERVICE, .status = 403};
    snprintf(s.code, sizeof s.code, "RequestTimeTooSkewed");
    cr_expect(aw_error_is_clock_skew(&s));
    aw_error_note_clock(&s, 1700000000, 1700000030);
    cr_expect_str_eq(s.message, "(the host's clock is 30 s ahead of the service's)");

    /* a mismatch that is not about time, a skew without a Date, a transport error */
    aw_error m = {.kind = AW_ERR_SERVICE, .status = 400};
    snprintf(m.code, sizeof m.code, "InvalidSignatureException");
    snprintf(m.message, sizeof m.message, "The request signature we calculated does not match");
    cr_expect(!aw_error_is_clock_skew(&m));
    aw_error_note_clock(&m, 1700000600, 1700000000);
    cr_expect(!m.clock_skewed);
    cr_expect(!strchr(m.message, '('));
    aw_error n = e;
    n.clock_skewed = false;
    n.message[0] = '\0';
    snprintf(n.message, sizeof n.message, "Signature expired: x");
    aw_error_note_clock(&n, 0, 1700000000);
    cr_expect(!n.clock_skewed);
    cr_expect_str_eq(n.message, "Signature expired: x");
    aw_error t = {.kind = AW_ERR_TRANSPORT, .http_err = AW_HTTP_E_CONNECT};
    cr_expect(!aw_error_is_clock_skew(&t));
}
