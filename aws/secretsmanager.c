#include "aws/secretsmanager.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

/* The GetSecretValue request JSON: SecretId, VersionId and VersionStage at their maxima, each
 * byte escaped as \u00XX at worst (6 * 2368), still fit. */
#define AW_SM_REQUEST_MAX (16 * 1024)

void aw_secret_value_clear(aw_secret_value *v)
{
    if (!v)
        return;
    es_free(v->arn);
    es_free(v->name);
    es_free(v->version_id);
    for (size_t i = 0; i < v->n_stages; i++)
        es_free(v->stages[i]);
    es_free_secret_str(v->string);
    if (v->binary) {
        es_wipe(v->binary, v->binary_len);
        es_free(v->binary);
    }
    memset(v, 0, sizeof *v);
}

static int dup_str(const es_json *o, const char *key, char **out)
{
    const es_json *v = es_json_get(o, key);
    *out = NULL;
    if (!v || v->type == ES_JSON_NULL)
        return 0;
    if (v->type != ES_JSON_STRING)
        return -EPROTO;
    *out = es_strndup(v->u.string.s, v->u.string.len);
    return *out ? 0 : -ENOMEM;
}

/* Strict base64 (RFC 4648, padding required) into a new buffer. */
static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    if (n % 4 != 0 || n > (size_t)0x7ffffff0)
        return -EPROTO;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (i == n - 2 && c == '=' && s[n - 1] != '='))
            return -EPROTO;
    }
    uint8_t *b = es_malloc(n / 4 * 3 + 1);
    if (!b)
        return -ENOMEM;
    int len = n ? EVP_DecodeBlock(b, (const unsigned char *)s, (int)n) : 0;
    if (len < 0) {
        es_free(b);
        return -EPROTO;
    }
    size_t pad = n && s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    *out = b;
    *outlen = (size_t)len - pad;
    return 0;
}

int aw_sm_parse_value(const char *body, size_t len, aw_secret_value *out)
{
    es_json *j = NULL;
    if (es_json_parse(body, len, &es_json_default_limits, &j, NULL, 0) != 0)
        return -EPROTO;
    aw_secret_value v;
    memset(&v, 0, sizeof v);
    int rc = -EPROTO;
    if (j->type != ES_JSON_OBJECT)
        goto out;
    if ((rc = dup_str(j, "ARN", &v.arn)) < 0 || (rc = dup_str(j, "Name", &v.name)) < 0 ||
        (rc = dup_str(j, "VersionId", &v.version_id)) < 0 ||
        (rc = dup_str(j, "SecretString", &v.string)) < 0)
        goto out;
    const es_json *bin = es_json_get(j, "SecretBinary");
    if (bin && bin->type != ES_JSON_NULL) {
        if (bin->type != ES_JSON_STRING || v.string) {
            rc = -EPROTO;
            goto out;
        }
        if ((rc = b64_decode(bin->u.string.s, bin->u.string.len, &v.binary, &v.binary_len)) < 0)
            goto out;
        v.is_binary = true;
    } else if (!v.string) {
        rc = -EPROTO; /* neither string nor binary */
        goto out;
    }
    const es_json *st = es_json_get(j, "VersionStages");
    if (st && st->type == ES_JSON_ARRAY) {
        for (size_t i = 0; i < es_json_len(st) && v.n_stages < AW_SM_STAGES_MAX; i++) {
            const char *s = es_json_as_str(es_json_at(st, i));
            if (!s) {
                rc = -EPROTO;
                goto out;
            }
            if (!(v.stages[v.n_stages] = es_strdup(s))) {
                rc = -ENOMEM;
                goto out;
            }
            v.n_stages++;
        }
    }
    const es_json *cd = es_json_get(j, "CreatedDate");
    if (cd && cd->type == ES_JSON_NUMBER)
        v.created = strtod(cd->u.number.text, NULL);
    if (!v.arn || !v.name) {
        rc = -EPROTO;
        goto out;
    }
    *out = v;
    memset(&v, 0, sizeof v);
    rc = 0;
out:
    aw_secret_value_clear(&v);
    es_json_free_secret(j);
    return rc;
}

typedef struct sm_op {
    aw_sm_cb cb;
    void *arg;
} sm_op;

static void on_call(void *arg, const aw_error *err, aw_http_response *resp)
{
    sm_op *op = arg;
    if (err) {
        op->cb(op->arg, err, NULL);
        es_free(op);
        return;
    }
    aw_secret_value v;
    int rc = aw_sm_parse_value(es_buf_cstr(&resp->body), resp->body.len, &v);
    if (rc < 0) {
        aw_error e;
        aw_error_unreadable(&e, rc, resp);
        op->cb(op->arg, &e, NULL);
    } else {
        op->cb(op->arg, NULL, &v);
        aw_secret_value_clear(&v);
    }
    es_free(op);
}

int aw_sm_get_secret_value(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                           const char *secret_id, const char *version_id, const char *version_stage,
                           aw_sm_cb cb, void *arg)
{
    if (!secret_id || !*secret_id || strlen(secret_id) > AW_SM_SECRET_ID_MAX || !cb ||
        (version_id && strlen(version_id) > AW_SM_VERSION_ID_MAX) ||
        (version_stage && strlen(version_stage) > AW_SM_VERSION_STAGE_MAX))
        return -EINVAL;
    es_buf body;
    es_buf_init(&body, AW_SM_REQUEST_MAX);
    es_jw w;
    es_jw_init(&w, &body);
    es_jw_obj(&w);
    es_jw_kstr(&w, "SecretId", secret_id);
    if (version_id && *version_id)
        es_jw_kstr(&w, "VersionId", version_id);
    if (version_stage && *version_stage)
        es_jw_kstr(&w, "VersionStage", version_stage);
    es_jw_obj_end(&w);
    int rc = es_jw_finish(&w);
    sm_op *op = NULL;
    if (rc < 0)
        goto out;
    if (!(op = es_calloc(1, sizeof *op))) {
        rc = -ENOMEM;
        goto out;
    }
    op->cb = cb;
    op->arg = arg;
    aw_call call = {
        AW_SVC_SECRETSMANAGER, region, "GetSecretValue", body.data, body.len, NULL, NULL};
    if ((rc = aw_call_start(c, creds, &call, on_call, op)) < 0)
        goto out;
    op = NULL;
out:
    es_free(op);
    es_buf_free(&body);
    return rc;
}
