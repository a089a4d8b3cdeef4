#include "aws/sts.h"

#include <errno.h>
#include <string.h>

#include "aws/arn.h"
#include "aws/xml.h"
#include "common/alloc.h"
#include "common/secure.h"

/* Request bodies (form-encoded). AssumeRole: a role ARN of AW_ARN_MAX bytes percent-encodes to at
 * most 3 * 2048, the session name, duration and fixed fields fit in the rest.
 * GetCallerIdentity: two fixed fields. */
#define AW_STS_ASSUME_ROLE_BODY_MAX 8192
#define AW_STS_IDENTITY_BODY_MAX 1024

void aw_sts_credentials_clear(aw_sts_credentials *c)
{
    if (!c)
        return;
    es_free(c->access_key_id);
    es_free_secret_str(c->secret_access_key);
    es_free_secret_str(c->session_token);
    es_free(c->assumed_role_arn);
    es_free(c->assumed_role_id);
    memset(c, 0, sizeof *c);
}

void aw_sts_identity_clear(aw_sts_identity *id)
{
    if (!id)
        return;
    es_free(id->account);
    es_free(id->arn);
    es_free(id->user_id);
    memset(id, 0, sizeof *id);
}

int aw_sts_parse_assume_role(const char *body, size_t len, aw_sts_credentials *out)
{
    static const char *const paths[] = {
        "AssumeRoleResponse/AssumeRoleResult/Credentials/AccessKeyId",
        "AssumeRoleResponse/AssumeRoleResult/Credentials/SecretAccessKey",
        "AssumeRoleResponse/AssumeRoleResult/Credentials/SessionToken",
        "AssumeRoleResponse/AssumeRoleResult/Credentials/Expiration",
        "AssumeRoleResponse/AssumeRoleResult/AssumedRoleUser/Arn",
        "AssumeRoleResponse/AssumeRoleResult/AssumedRoleUser/AssumedRoleId",
    };
    char *v[6];
    int rc = aw_xml_pick(body, len, paths, 6, v);
    if (rc == AW_XML_E_NOMEM)
        return -ENOMEM;
    if (rc != 0)
        return -EPROTO;
    aw_sts_credentials c;
    memset(&c, 0, sizeof c);
    if (!v[0] || !v[1] || !v[2] || !v[3] || !*v[0] || !*v[1] ||
        aw_parse_iso8601(v[3], &c.expiration) != 0) {
        aw_xml_pick_free(v, 6);
        return -EPROTO;
    }
    c.access_key_id = v[0];
    c.secret_access_key = v[1];
    c.session_token = v[2];
    c.assumed_role_arn = v[4];
    c.assumed_role_id = v[5];
    es_free_secret_str(v[3]);
    *out = c;
    return 0;
}

int aw_sts_parse_caller_identity(const char *body, size_t len, aw_sts_identity *out)
{
    static const char *const paths[] = {
        "GetCallerIdentityResponse/GetCallerIdentityResult/Account",
        "GetCallerIdentityResponse/GetCallerIdentityResult/Arn",
        "GetCallerIdentityResponse/GetCallerIdentityResult/UserId",
    };
    char *v[3];
    int rc = aw_xml_pick(body, len, paths, 3, v);
    if (rc == AW_XML_E_NOMEM)
        return -ENOMEM;
    if (rc != 0)
        return -EPROTO;
    if (!v[0] || !v[1]) {
        aw_xml_pick_free(v, 3);
        return -EPROTO;
    }
    out->account = v[0];
    out->arn = v[1];
    out->user_id = v[2];
    return 0;
}

typedef struct sts_op {
    bool identity;
    aw_sts_creds_cb ccb;
    aw_sts_identity_cb icb;
    void *arg;
} sts_op;

static void fail(sts_op *op, const aw_error *err)
{
    if (op->identity)
        op->icb(op->arg, err, NULL);
    else
        op->ccb(op->arg, err, NULL);
}

static void on_call(void *arg, const aw_error *err, aw_http_response *resp)
{
    sts_op *op = arg;
    if (err) {
        fail(op, err);
        es_free(op);
        return;
    }
    int rc;
    aw_sts_credentials c;
    aw_sts_identity id;
    memset(&c, 0, sizeof c);
    memset(&id, 0, sizeof id);
    if (op->identity)
        rc = aw_sts_parse_caller_identity(es_buf_cstr(&resp->body), resp->body.len, &id);
    else
        rc = aw_sts_parse_assume_role(es_buf_cstr(&resp->body), resp->body.len, &c);
    if (rc < 0) {
        aw_error e;
        aw_error_unreadable(&e, rc, resp);
        fail(op, &e);
    } else if (op->identity) {
        op->icb(op->arg, NULL, &id);
    } else {
        op->ccb(op->arg, NULL, &c);
    }
    aw_sts_credentials_clear(&c);
    aw_sts_identity_clear(&id);
    es_free(op);
}

static bool session_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < AW_STS_SESSION_NAME_MIN || n > AW_STS_SESSION_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("+=,.@_-", c)))
            return false;
    }
    return true;
}

static int start(aw_client *c, const aw_sigv4_creds *creds, const char *region, es_buf *body,
                 sts_op *op)
{
    aw_call call = {AW_SVC_STS, region,    op->identity ? "GetCallerIdentity" : "AssumeRole",
                    body->data, body->len, NULL,
                    NULL};
    int rc = aw_call_start(c, creds, &call, on_call, op);
    if (rc < 0)
        es_free(op);
    es_buf_free(body);
    return rc;
}

int aw_sts_assume_role(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                       const char *role_arn, const char *session_name, unsigned duration_s,
                       aw_sts_creds_cb cb, void *arg)
{
    aw_arn a;
    if (!cb || !role_arn || aw_arn_parse_str(role_arn, &a) != 0 || a.kind != AW_ARN_IAM_ROLE ||
        !session_name_ok(session_name))
        return -EINVAL;
    if (duration_s == 0)
        duration_s = AW_STS_DURATION_MIN;
    if (duration_s < AW_STS_DURATION_MIN || duration_s > AW_STS_DURATION_MAX)
        return -EINVAL;
    char dur[16];
    snprintf(dur, sizeof dur, "%u", duration_s);
    es_buf body;
    es_buf_init(&body, AW_STS_ASSUME_ROLE_BODY_MAX);
    int rc;
    if ((rc = aw_form_append(&body, "Action", "AssumeRole")) < 0 ||
        (rc = aw_form_append(&body, "Version", "2011-06-15")) < 0 ||
        (rc = aw_form_append(&body, "RoleArn", role_arn)) < 0 ||
        (rc = aw_form_append(&body, "RoleSessionName", session_name)) < 0 ||
        (rc = aw_form_append(&body, "DurationSeconds", dur)) < 0) {
        es_buf_free(&body);
        return rc;
    }
    sts_op *op = es_calloc(1, sizeof *op);
    if (!op) {
        es_buf_free(&body);
        return -ENOMEM;
    }
    op->ccb = cb;
    op->arg = arg;
    return start(c, creds, region, &body, op);
}

int aw_sts_get_caller_identity(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                               aw_sts_identity_cb cb, void *arg)
{
    if (!cb)
        return -EINVAL;
    es_buf body;
    es_buf_init(&body, AW_STS_IDENTITY_BODY_MAX);
    int rc;
    if ((rc = aw_form_append(&body, "Action", "GetCallerIdentity")) < 0 ||
        (rc = aw_form_append(&body, "Version", "2011-06-15")) < 0) {
        es_buf_free(&body);
        return rc;
    }
    sts_op *op = es_calloc(1, sizeof *op);
    if (!op) {
        es_buf_free(&body);
        return -ENOMEM;
    }
    op->identity = true;
    op->icb = cb;
    op->arg = arg;
    return start(c, creds, region, &body, op);
}
