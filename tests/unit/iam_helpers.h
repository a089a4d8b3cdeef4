/* iam_helpers.h - query-protocol helpers for the embedded IAM/STS tests (on
 * top of al_helpers.h; not a test file itself). */
#ifndef TEST_IAM_HELPERS_H
#define TEST_IAM_HELPERS_H

#include "al_helpers.h"

#include "aws/local/authz.h"
#include "aws/local/iam.h"
#include "aws/local/query.h"
#include "aws/local/sts.h"

#define ROOT "arn:aws:iam::123456789012:root"
#define ECS_TRUST                                                                                  \
    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{"             \
    "\"Service\":\"ecs-tasks.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"
#define EXEC_POLICY_ARN "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"

/* Percent-encodes s for a form body. */
static void form_add(es_buf *b, const char *key, const char *val)
{
    static const char hex[] = "0123456789ABCDEF";
    if (b->len)
        es_buf_append_char(b, '&');
    es_buf_append_str(b, key);
    es_buf_append_char(b, '=');
    for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p)) {
            es_buf_append_char(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            es_buf_append(b, e, 3);
        }
    }
}

/* Calls service with the action and NULL-terminated key/value pairs as
 * principal; answers 0 or the HTTP status; the XML stays in T.out. */
static int qcallv(const char *service, const char *principal, const char *action, va_list ap)
{
    es_buf body;
    es_buf_init(&body, 1u << 20);
    form_add(&body, "Action", action);
    form_add(&body, "Version", strcmp(service, "sts") == 0 ? "2011-06-15" : "2010-05-08");
    const char *k;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        form_add(&body, k, v);
    }
    es_buf_reset(&T.out);
    memset(&T.err, 0, sizeof T.err);
    int r = al_query_dispatch(T.ctx, service, principal, body.data, body.len, &T.out, &T.err);
    es_buf_free(&body);
    if (r < 0) {
        cr_assert_eq(T.out.len, 0, "output left after an error");
        cr_assert(T.err.status >= 400 && T.err.code[0]);
        return T.err.status;
    }
    return 0;
}

__attribute__((unused)) static int qcall(const char *service, const char *principal,
                                         const char *action, ...)
{
    va_list ap;
    va_start(ap, action);
    int r = qcallv(service, principal, action, ap);
    va_end(ap);
    return r;
}

/* As root; the call must succeed. */
__attribute__((unused)) static const char *qok(const char *service, const char *action, ...)
{
    va_list ap;
    va_start(ap, action);
    int r = qcallv(service, ROOT, action, ap);
    va_end(ap);
    cr_assert_eq(r, 0, "%s -> %d %s: %s", action, r, T.err.code, T.err.message);
    char want[128];
    snprintf(want, sizeof want, "<%sResponse xmlns=\"", action);
    cr_assert_eq(strncmp(es_buf_cstr(&T.out), want, strlen(want)), 0, "%s", es_buf_cstr(&T.out));
    cr_assert_not_null(strstr(es_buf_cstr(&T.out), "<RequestId>"));
    return es_buf_cstr(&T.out);
}

/* As root; the call must fail with code and status. */
__attribute__((unused)) static void qfail(int status, const char *code, const char *service,
                                          const char *action, ...)
{
    va_list ap;
    va_start(ap, action);
    int r = qcallv(service, ROOT, action, ap);
    va_end(ap);
    cr_assert_eq(r, status, "%s -> %d %s (%s), want %d %s", action, r, T.err.code, T.err.message,
                 status, code);
    cr_assert_str_eq(T.err.code, code, "%s: %s", T.err.code, T.err.message);
}

/* The text of the n-th (from 0) <name> element of T.out, into a static
 * buffer; NULL when absent. */
__attribute__((unused)) static const char *xml_nth(const char *name, int n)
{
    static char buf[16384];
    char open[128], close[128];
    snprintf(open, sizeof open, "<%s>", name);
    snprintf(close, sizeof close, "</%s>", name);
    const char *p = es_buf_cstr(&T.out);
    for (int i = 0; p && i <= n; i++) {
        p = strstr(p, open);
        if (p && i < n)
            p += strlen(open);
    }
    if (!p)
        return NULL;
    p += strlen(open);
    const char *q = strstr(p, close);
    cr_assert_not_null(q);
    snprintf(buf, sizeof buf, "%.*s", (int)(q - p), p);
    return buf;
}

__attribute__((unused)) static const char *xml(const char *name)
{
    return xml_nth(name, 0);
}

/* Decodes %XX in place (IAM's URL-encoded documents). */
__attribute__((unused)) static char *urldecode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '%' && p[1] && p[2]) {
            char h[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(h, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return s;
}

__attribute__((unused)) static void make_role(const char *name, const char *trust)
{
    qok("iam", "CreateRole", "RoleName", name, "AssumeRolePolicyDocument", trust, NULL);
}

/* Assumes role as root; fills the credentials. */
__attribute__((unused)) static void assume(const char *role, const char *session, char *akid,
                                           char *secret, char *token)
{
    char arn[256];
    snprintf(arn, sizeof arn, "arn:aws:iam::123456789012:role/%s", role);
    qok("sts", "AssumeRole", "RoleArn", arn, "RoleSessionName", session, NULL);
    snprintf(akid, 32, "%s", xml("AccessKeyId"));
    snprintf(secret, 64, "%s", xml("SecretAccessKey"));
    snprintf(token, 256, "%s", xml("SessionToken"));
}

#endif
