#include "aws/ssm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

/* The GetParameter(s) request JSON: AW_SSM_NAMES_PER_CALL names of up to AW_SSM_NAME_MAX bytes
 * (20 KiB as given), more once JSON-escaped. */
#define AW_SSM_REQUEST_MAX (64 * 1024)

static void param_clear(aw_ssm_parameter *p)
{
    es_free(p->name);
    es_free(p->type);
    es_free_secret_str(p->value);
    es_free(p->arn);
    es_free(p->selector);
    es_free_secret_str(p->source_result); /* holds the secret when it refers to one */
    es_free(p->data_type);
    memset(p, 0, sizeof *p);
}

void aw_ssm_result_clear(aw_ssm_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_params; i++)
        param_clear(&r->params[i]);
    es_free(r->params);
    for (size_t i = 0; i < r->n_invalid; i++)
        es_free(r->invalid[i]);
    es_free(r->invalid);
    es_free(r->next_token);
    memset(r, 0, sizeof *r);
}

static int dup_opt(const es_json *o, const char *key, char **out, bool required)
{
    const es_json *v = es_json_get(o, key);
    if (!v || v->type == ES_JSON_NULL) {
        *out = NULL;
        return required ? -EPROTO : 0;
    }
    if (v->type != ES_JSON_STRING)
        return -EPROTO;
    *out = es_strndup(v->u.string.s, v->u.string.len);
    return *out ? 0 : -ENOMEM;
}

static int parse_param(const es_json *o, aw_ssm_parameter *p)
{
    int rc;
    if (!o || o->type != ES_JSON_OBJECT)
        return -EPROTO;
    if ((rc = dup_opt(o, "Name", &p->name, true)) < 0 ||
        (rc = dup_opt(o, "Type", &p->type, false)) < 0 ||
        (rc = dup_opt(o, "Value", &p->value, true)) < 0 ||
        (rc = dup_opt(o, "ARN", &p->arn, false)) < 0 ||
        (rc = dup_opt(o, "Selector", &p->selector, false)) < 0 ||
        (rc = dup_opt(o, "SourceResult", &p->source_result, false)) < 0 ||
        (rc = dup_opt(o, "DataType", &p->data_type, false)) < 0)
        return rc;
    if (!es_json_get_int64(o, "Version", &p->version))
        p->version = 0;
    const es_json *lm = es_json_get(o, "LastModifiedDate");
    if (lm && lm->type == ES_JSON_NUMBER)
        p->last_modified = strtod(lm->u.number.text, NULL);
    return 0;
}

/* GetParametersByPath's NextToken: absent, null or "" on the last page. */
static int parse_next_token(const es_json *j, char **out)
{
    const es_json *t = es_json_get(j, "NextToken");
    *out = NULL;
    if (!t || t->type == ES_JSON_NULL)
        return 0;
    if (t->type != ES_JSON_STRING || t->u.string.len > AW_SSM_NEXT_TOKEN_MAX ||
        memchr(t->u.string.s, '\0', t->u.string.len))
        return -EPROTO;
    if (t->u.string.len == 0)
        return 0;
    *out = es_strndup(t->u.string.s, t->u.string.len);
    return *out ? 0 : -ENOMEM;
}

int aw_ssm_parse_result(const char *body, size_t len, aw_ssm_result *out)
{
    es_json *j = NULL;
    if (es_json_parse(body, len, &es_json_default_limits, &j, NULL, 0) != 0)
        return -EPROTO;
    aw_ssm_result r;
    memset(&r, 0, sizeof r);
    int rc = -EPROTO;
    if (j->type != ES_JSON_OBJECT)
        goto out;
    const es_json *one = es_json_get(j, "Parameter");
    const es_json *ps = es_json_get(j, "Parameters");
    const es_json *inv = es_json_get(j, "InvalidParameters");
    if (one) {
        if (!(r.params = es_calloc(1, sizeof *r.params))) {
            rc = -ENOMEM;
            goto out;
        }
        r.n_params = 1;
        if ((rc = parse_param(one, &r.params[0])) < 0)
            goto out;
    } else {
        if (!ps || ps->type != ES_JSON_ARRAY)
            goto out;
        size_t n = es_json_len(ps);
        if (n && !(r.params = es_calloc(n, sizeof *r.params))) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            r.n_params = i + 1;
            if ((rc = parse_param(es_json_at(ps, i), &r.params[i])) < 0)
                goto out;
        }
    }
    if (inv && inv->type != ES_JSON_NULL) {
        if (inv->type != ES_JSON_ARRAY) {
            rc = -EPROTO;
            goto out;
        }
        size_t n = es_json_len(inv);
        if (n && !(r.invalid = es_calloc(n, sizeof *r.invalid))) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const char *s = es_json_as_str(es_json_at(inv, i));
            if (!s) {
                rc = -EPROTO;
                goto out;
            }
            if (!(r.invalid[i] = es_strdup(s))) {
                rc = -ENOMEM;
                goto out;
            }
            r.n_invalid = i + 1;
        }
    }
    if ((rc = parse_next_token(j, &r.next_token)) < 0)
        goto out;
    *out = r;
    memset(&r, 0, sizeof r);
    rc = 0;
out:
    aw_ssm_result_clear(&r);
    es_json_free_secret(j);
    return rc;
}

/* ---- one call --------------------------------------------------------- */

typedef struct ssm_op {
    aw_ssm_cb cb;
    void *arg;
} ssm_op;

static void on_call(void *arg, const aw_error *err, aw_http_response *resp)
{
    ssm_op *op = arg;
    if (err) {
        op->cb(op->arg, err, NULL);
        es_free(op);
        return;
    }
    aw_ssm_result r;
    int rc = aw_ssm_parse_result(es_buf_cstr(&resp->body), resp->body.len, &r);
    if (rc < 0) {
        aw_error e;
        aw_error_unreadable(&e, rc, resp);
        op->cb(op->arg, &e, NULL);
    } else {
        op->cb(op->arg, NULL, &r);
        aw_ssm_result_clear(&r);
    }
    es_free(op);
}

static bool name_ok(const char *n)
{
    size_t l = n ? strlen(n) : 0;
    return l > 0 && l <= AW_SSM_NAME_MAX;
}

static int start(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                 const char *operation, const char *const *names, size_t n, bool single,
                 aw_ssm_cb cb, void *arg)
{
    es_buf body;
    es_buf_init(&body, AW_SSM_REQUEST_MAX);
    es_jw w;
    es_jw_init(&w, &body);
    es_jw_obj(&w);
    if (single) {
        es_jw_kstr(&w, "Name", names[0]);
    } else {
        es_jw_key(&w, "Names");
        es_jw_arr(&w);
        for (size_t i = 0; i < n; i++)
            es_jw_str(&w, names[i]);
        es_jw_arr_end(&w);
    }
    es_jw_kbool(&w, "WithDecryption", true);
    es_jw_obj_end(&w);
    int rc = es_jw_finish(&w);
    ssm_op *op = NULL;
    if (rc < 0)
        goto out;
    if (!(op = es_calloc(1, sizeof *op))) {
        rc = -ENOMEM;
        goto out;
    }
    op->cb = cb;
    op->arg = arg;
    aw_call call = {AW_SVC_SSM, region, operation, body.data, body.len, NULL, NULL};
    if ((rc = aw_call_start(c, creds, &call, on_call, op)) < 0)
        goto out;
    op = NULL;
out:
    es_free(op);
    es_buf_free(&body);
    return rc;
}

int aw_ssm_get_parameters(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                          const char *const *names, size_t n, aw_ssm_cb cb, void *arg)
{
    if (!names || n == 0 || n > AW_SSM_NAMES_PER_CALL || !cb)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!name_ok(names[i]))
            return -EINVAL;
    return start(c, creds, region, "GetParameters", names, n, false, cb, arg);
}

int aw_ssm_get_parameter(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                         const char *name, aw_ssm_cb cb, void *arg)
{
    if (!name_ok(name) || !cb)
        return -EINVAL;
    return start(c, creds, region, "GetParameter", &name, 1, true, cb, arg);
}

/* ---- batches ---------------------------------------------------------- */

typedef struct batch {
    aw_ssm_cb cb;
    void *arg;
    size_t pending; /* calls not yet answered */
    aw_ssm_result merged;
    size_t cap_params, cap_invalid;
    bool failed;
    aw_error err; /* the first error */
} batch;

static int take(batch *b, aw_ssm_result *r)
{
    if (b->merged.n_params + r->n_params > b->cap_params ||
        b->merged.n_invalid + r->n_invalid > b->cap_invalid)
        return -EPROTO; /* more answers than names asked */
    for (size_t i = 0; i < r->n_params; i++) {
        b->merged.params[b->merged.n_params++] = r->params[i];
        memset(&r->params[i], 0, sizeof r->params[i]);
    }
    for (size_t i = 0; i < r->n_invalid; i++) {
        b->merged.invalid[b->merged.n_invalid++] = r->invalid[i];
        r->invalid[i] = NULL;
    }
    return 0;
}

static void on_batch_part(void *arg, const aw_error *err, aw_ssm_result *res)
{
    batch *b = arg;
    if (err && !b->failed) {
        b->failed = true;
        b->err = *err;
    } else if (!err && !b->failed && take(b, res) < 0) {
        b->failed = true;
        memset(&b->err, 0, sizeof b->err);
        b->err.kind = AW_ERR_RESPONSE;
    }
    if (--b->pending)
        return;
    if (b->failed)
        b->cb(b->arg, &b->err, NULL);
    else
        b->cb(b->arg, NULL, &b->merged);
    aw_ssm_result_clear(&b->merged);
    es_free(b);
}

int aw_ssm_get_parameters_batch(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                                const char *const *names, size_t n, aw_ssm_cb cb, void *arg)
{
    if (!names || n == 0 || n > AW_SSM_BATCH_MAX || !cb)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!name_ok(names[i]))
            return -EINVAL;
    batch *b = es_calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->cb = cb;
    b->arg = arg;
    b->cap_params = b->cap_invalid = n;
    b->merged.params = es_calloc(n, sizeof *b->merged.params);
    b->merged.invalid = es_calloc(n, sizeof *b->merged.invalid);
    if (!b->merged.params || !b->merged.invalid) {
        aw_ssm_result_clear(&b->merged);
        es_free(b);
        return -ENOMEM;
    }
    size_t calls = (n + AW_SSM_NAMES_PER_CALL - 1) / AW_SSM_NAMES_PER_CALL;
    /* pending counts one extra until every call is started, so that no
     * early answer can complete the batch while we are still starting */
    b->pending = calls + 1;
    int rc = 0;
    for (size_t i = 0; i < calls; i++) {
        size_t off = i * AW_SSM_NAMES_PER_CALL;
        size_t k = n - off < AW_SSM_NAMES_PER_CALL ? n - off : AW_SSM_NAMES_PER_CALL;
        rc = start(c, creds, region, "GetParameters", names + off, k, false, on_batch_part, b);
        if (rc < 0) {
            /* calls already started still answer; fail the batch when they do */
            b->pending -= calls - i;
            if (!b->failed) {
                b->failed = true;
                memset(&b->err, 0, sizeof b->err);
                b->err.kind = rc == -ENOMEM ? AW_ERR_NOMEM : AW_ERR_INVALID;
            }
            break;
        }
    }
    if (rc < 0 && b->pending == 1) {
        /* nothing in flight: report synchronously as an error return */
        aw_ssm_result_clear(&b->merged);
        es_free(b);
        return rc;
    }
    /* drop the extra count; calls answer from the loop, never inside
     * aw_call_start, so this cannot be the last */
    b->pending--;
    return 0;
}

/* ---- GetParametersByPath, page after page ------------------------------ */

typedef struct path_series {
    aw_client *c;
    char *akid, *secret, *token; /* the caller's credentials, copied: secrets */
    char *region;                /* NULL: the client's */
    char *path;
    bool decrypt;
    size_t max_params, pages;
    aw_ssm_result merged;
    size_t cap;
    aw_ssm_cb cb;
    void *arg;
} path_series;

static void series_free(path_series *s)
{
    es_free_secret_str(s->akid);
    es_free_secret_str(s->secret);
    es_free_secret_str(s->token);
    es_free(s->region);
    es_free(s->path);
    aw_ssm_result_clear(&s->merged);
    es_free(s);
}

static void series_end(path_series *s, const aw_error *err)
{
    if (err)
        s->cb(s->arg, err, NULL);
    else
        s->cb(s->arg, NULL, &s->merged);
    series_free(s);
}

static void series_fail(path_series *s, aw_error_kind kind)
{
    aw_error e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    series_end(s, &e);
}

static int page_start(path_series *s, const char *next_token);

/* Moves a page's parameters into the merged result, up to max_params. */
static int series_take(path_series *s, aw_ssm_result *page)
{
    if (s->merged.n_params + page->n_params > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : AW_SSM_PATH_PAGE;
        while (cap < s->merged.n_params + page->n_params)
            cap *= 2;
        aw_ssm_parameter *p = es_realloc(s->merged.params, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        s->merged.params = p;
        s->cap = cap;
    }
    for (size_t i = 0; i < page->n_params; i++) {
        if (s->merged.n_params == s->max_params) {
            s->merged.truncated = true;
            return 0;
        }
        s->merged.params[s->merged.n_params++] = page->params[i];
        memset(&page->params[i], 0, sizeof page->params[i]);
    }
    return 0;
}

static void on_page(void *arg, const aw_error *err, aw_ssm_result *page)
{
    path_series *s = arg;
    if (err) {
        series_end(s, err);
        return;
    }
    /* a page longer than asked, or with invalid names (none were given) */
    if (page->n_params > AW_SSM_PATH_PAGE || page->n_invalid) {
        series_fail(s, AW_ERR_RESPONSE);
        return;
    }
    if (series_take(s, page) < 0) {
        series_fail(s, AW_ERR_NOMEM);
        return;
    }
    /* a full result with a NextToken asks once more: only a page that
     * holds a parameter makes it truncated (AWS may end with an empty one) */
    if (page->next_token && !s->merged.truncated) {
        if (s->pages >= AW_SSM_PATH_PAGES_MAX) {
            series_fail(s, AW_ERR_RESPONSE);
            return;
        }
        int rc = page_start(s, page->next_token);
        if (rc < 0)
            series_fail(s, rc == -ENOMEM ? AW_ERR_NOMEM : AW_ERR_INVALID);
        return;
    }
    series_end(s, NULL);
}

static int page_start(path_series *s, const char *next_token)
{
    es_buf body;
    es_buf_init(&body, AW_SSM_REQUEST_MAX);
    es_jw w;
    es_jw_init(&w, &body);
    es_jw_obj(&w);
    es_jw_kstr(&w, "Path", s->path);
    es_jw_kbool(&w, "Recursive", true);
    es_jw_kbool(&w, "WithDecryption", s->decrypt);
    es_jw_kint(&w, "MaxResults", AW_SSM_PATH_PAGE);
    if (next_token)
        es_jw_kstr(&w, "NextToken", next_token);
    es_jw_obj_end(&w);
    int rc = es_jw_finish(&w);
    if (rc == 0) {
        ssm_op *op = es_calloc(1, sizeof *op);
        if (!op) {
            rc = -ENOMEM;
        } else {
            *op = (ssm_op){.cb = on_page, .arg = s};
            aw_sigv4_creds creds = {s->akid, s->secret, s->token};
            aw_call call = {AW_SVC_SSM, s->region, "GetParametersByPath", body.data, body.len,
                            NULL,       NULL};
            if ((rc = aw_call_start(s->c, &creds, &call, on_call, op)) < 0)
                es_free(op);
            else
                s->pages++;
        }
    }
    es_buf_free(&body);
    return rc;
}

int aw_ssm_get_parameters_by_path(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                                  const char *path, bool decrypt, size_t max_params, aw_ssm_cb cb,
                                  void *arg)
{
    if (!c || !creds || !creds->access_key_id || !creds->secret_access_key || !name_ok(path) ||
        path[0] != '/' || max_params == 0 || max_params > AW_SSM_PATH_PARAMS_MAX || !cb)
        return -EINVAL;
    path_series *s = es_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *s = (path_series){.c = c, .decrypt = decrypt, .max_params = max_params, .cb = cb, .arg = arg};
    s->akid = es_strdup(creds->access_key_id);
    s->secret = es_strdup(creds->secret_access_key);
    s->token = creds->session_token ? es_strdup(creds->session_token) : NULL;
    s->region = region ? es_strdup(region) : NULL;
    s->path = es_strdup(path);
    int rc = -ENOMEM;
    if (s->akid && s->secret && (s->token || !creds->session_token) && (s->region || !region) &&
        s->path)
        rc = page_start(s, NULL);
    if (rc < 0)
        series_free(s);
    return rc;
}

void aw_ssm_name_filter_begin(es_jw *w)
{
    es_jw_key(w, "ParameterFilters");
    es_jw_arr(w);
    es_jw_obj(w);
    es_jw_kstr(w, "Key", "Name");
    es_jw_kstr(w, "Option", "Equals");
    es_jw_key(w, "Values");
    es_jw_arr(w);
}

void aw_ssm_name_filter_end(es_jw *w)
{
    es_jw_arr_end(w);
    es_jw_obj_end(w);
    es_jw_arr_end(w);
}
