/* ecr.c - ECR GetAuthorizationToken (ecr.h). */
#include "aws/ecr.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

void aw_ecr_token_clear(aw_ecr_token *t)
{
    if (!t)
        return;
    es_free(t->username);
    if (t->password)
        es_wipe(t->password, t->password_len);
    es_free(t->password);
    es_free(t->proxy_endpoint);
    memset(t, 0, sizeof *t);
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict base64 (padding required, no whitespace) into a new NUL-terminated
 * buffer (a secret). 0, -EPROTO, -ENOMEM. */
static int b64_decode(const char *s, size_t n, char **out, size_t *outlen)
{
    if (n == 0 || n % 4 != 0 || n > AW_ECR_TOKEN_MAX)
        return -EPROTO;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char(s[i]))
            return -EPROTO;
    char *b = es_malloc(n / 4 * 3 + 1);
    if (!b)
        return -ENOMEM;
    int len = EVP_DecodeBlock((unsigned char *)b, (const unsigned char *)s, (int)n);
    if (len < 0 || (size_t)len < pad) {
        es_wipe(b, n / 4 * 3 + 1);
        es_free(b);
        return -EPROTO;
    }
    *outlen = (size_t)len - pad;
    b[*outlen] = '\0';
    *out = b;
    return 0;
}

int aw_ecr_parse_token(const char *body, size_t len, aw_ecr_token *out)
{
    if (!body || !out || len > AW_ECR_ANSWER_MAX)
        return -EPROTO;
    es_json *j = NULL;
    if (es_json_parse(body, len, &es_json_default_limits, &j, NULL, 0) != 0)
        return -EPROTO;
    aw_ecr_token t;
    memset(&t, 0, sizeof t);
    char *plain = NULL;
    size_t plain_len = 0;
    int rc = -EPROTO;
    const es_json *data = j->type == ES_JSON_OBJECT ? es_json_get(j, "authorizationData") : NULL;
    const es_json *d =
        data && data->type == ES_JSON_ARRAY && es_json_len(data) > 0 ? es_json_at(data, 0) : NULL;
    if (!d || d->type != ES_JSON_OBJECT)
        goto out;
    const es_json *tok = es_json_get(d, "authorizationToken");
    const es_json *exp = es_json_get(d, "expiresAt");
    const es_json *ep = es_json_get(d, "proxyEndpoint");
    if (!tok || tok->type != ES_JSON_STRING || !exp || exp->type != ES_JSON_NUMBER)
        goto out;
    if (ep && ep->type != ES_JSON_NULL &&
        (ep->type != ES_JSON_STRING || ep->u.string.len > AW_ECR_ENDPOINT_MAX ||
         strlen(ep->u.string.s) != ep->u.string.len))
        goto out;
    /* expiresAt is a timestamp in epoch seconds, possibly with a fraction */
    char *end = NULL;
    double e = strtod(exp->u.number.text, &end);
    if (!end || *end || !(e > 0) || e > 1e11)
        goto out;
    t.expires_at = (int64_t)e;
    if ((rc = b64_decode(tok->u.string.s, tok->u.string.len, &plain, &plain_len)) < 0)
        goto out;
    rc = -EPROTO;
    char *colon = memchr(plain, ':', plain_len);
    if (!colon || colon == plain || (size_t)(colon - plain) > AW_ECR_USER_MAX ||
        colon == plain + plain_len - 1 || memchr(plain, '\0', plain_len))
        goto out;
    size_t un = (size_t)(colon - plain);
    t.username = es_strndup(plain, un);
    t.password_len = plain_len - un - 1;
    t.password = es_malloc(t.password_len + 1);
    if (ep && ep->type == ES_JSON_STRING)
        t.proxy_endpoint = es_strndup(ep->u.string.s, ep->u.string.len);
    if (!t.username || !t.password || (ep && ep->type == ES_JSON_STRING && !t.proxy_endpoint)) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(t.password, colon + 1, t.password_len);
    t.password[t.password_len] = '\0';
    *out = t;
    memset(&t, 0, sizeof t);
    rc = 0;
out:
    if (plain) {
        es_wipe(plain, plain_len);
        es_free(plain);
    }
    aw_ecr_token_clear(&t);
    es_json_free_secret(j);
    return rc;
}

typedef struct ecr_op {
    aw_ecr_token_cb cb;
    void *arg;
} ecr_op;

static void on_call(void *arg, const aw_error *err, aw_http_response *resp)
{
    ecr_op *op = arg;
    if (err) {
        op->cb(op->arg, err, NULL);
        es_free(op);
        return;
    }
    aw_ecr_token t;
    int rc = aw_ecr_parse_token(es_buf_cstr(&resp->body), resp->body.len, &t);
    if (rc < 0) {
        aw_error e;
        aw_error_unreadable(&e, rc, resp);
        op->cb(op->arg, &e, NULL);
    } else {
        op->cb(op->arg, NULL, &t);
        aw_ecr_token_clear(&t);
    }
    es_free(op);
}

int aw_ecr_get_authorization_token(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                                   const char *registry_id, aw_ecr_token_cb cb, void *arg)
{
    if (!cb)
        return -EINVAL;
    if (registry_id) {
        if (strlen(registry_id) != AW_ECR_REGISTRY_ID_LEN)
            return -EINVAL;
        for (const char *p = registry_id; *p; p++)
            if (*p < '0' || *p > '9')
                return -EINVAL;
    }
    es_buf body;
    es_buf_init(&body, 256);
    es_jw w;
    es_jw_init(&w, &body);
    es_jw_obj(&w);
    if (registry_id) {
        /* what ECS's agent sends: the image's registry */
        es_jw_key(&w, "registryIds");
        es_jw_arr(&w);
        es_jw_str(&w, registry_id);
        es_jw_arr_end(&w);
    }
    es_jw_obj_end(&w);
    int rc = es_jw_finish(&w);
    ecr_op *op = NULL;
    if (rc < 0)
        goto out;
    if (!(op = es_calloc(1, sizeof *op))) {
        rc = -ENOMEM;
        goto out;
    }
    op->cb = cb;
    op->arg = arg;
    aw_call call = {AW_SVC_ECR, region, "GetAuthorizationToken", body.data, body.len, NULL, NULL};
    if ((rc = aw_call_start(c, creds, &call, on_call, op)) < 0)
        goto out;
    op = NULL;
out:
    es_free(op);
    es_buf_free(&body);
    return rc;
}
