#include "aws/local/query.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "aws/local/auth.h"
#include "aws/local/internal.h"
#include "aws/local/qops.h"
#include "common/alloc.h"
#include "aws/sigv4.h"
#include "common/secure.h"
#include "common/utf8.h"

/* ---- form decoding ---- */

typedef struct pair {
    char *key;
    char *val;
} pair;

struct al_form {
    char *text; /* every decoded key and value, NUL-separated */
    size_t text_len;
    pair *pairs;
    size_t n;
};

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into out (room for n bytes + NUL); the decoded length. */
static int url_decode(const char *s, size_t n, char *out, size_t *outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (ch == '\0')
            return -EINVAL;
        out[j++] = ch;
    }
    out[j] = '\0';
    *outlen = j;
    return 0;
}

void al_form_free(al_form *f)
{
    if (!f)
        return;
    if (f->text) {
        es_wipe(f->text, f->text_len);
        es_free(f->text);
    }
    es_free(f->pairs);
    es_free(f);
}

int al_form_parse(const char *body, size_t len, al_form **out)
{
    if (len > AL_FORM_MAX_BYTES)
        return -EMSGSIZE;
    int r = -ENOMEM;
    al_form *f = es_calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    size_t npairs = 0;
    for (size_t i = 0; i < len; i++)
        if (body[i] == '&')
            npairs++;
    npairs++;
    if (npairs > AL_FORM_MAX_PARAMS) {
        r = -E2BIG;
        goto out;
    }
    /* each pair decodes to at most its own bytes plus two NULs */
    f->text_len = len + 2 * npairs + 1;
    f->text = es_malloc(f->text_len);
    f->pairs = es_calloc(npairs, sizeof *f->pairs);
    if (!f->text || !f->pairs)
        goto out;
    size_t at = 0;
    for (size_t i = 0; i < len;) {
        const char *amp = memchr(body + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > i) {
            const char *eq = memchr(body + i, '=', end - i);
            size_t kend = eq ? (size_t)(eq - body) : end;
            size_t kl = 0, vl = 0;
            if (kend == i) {
                r = -EINVAL; /* "=value" */
                goto out;
            }
            if (kend - i > AL_FORM_KEY_MAX * 3) {
                r = -E2BIG;
                goto out;
            }
            char *k = f->text + at;
            if ((r = url_decode(body + i, kend - i, k, &kl)) < 0)
                goto out;
            if (kl > AL_FORM_KEY_MAX) {
                r = -E2BIG;
                goto out;
            }
            at += kl + 1;
            char *v = f->text + at;
            size_t vstart = eq ? kend + 1 : end;
            if ((r = url_decode(body + vstart, end - vstart, v, &vl)) < 0)
                goto out;
            at += vl + 1;
            if (al_form_get(f, k)) {
                r = -EINVAL;
                goto out;
            }
            f->pairs[f->n].key = k;
            f->pairs[f->n].val = v;
            f->n++;
        }
        i = end + 1;
    }
    *out = f;
    f = NULL;
    r = 0;
out:
    al_form_free(f);
    return r;
}

const char *al_form_get(const al_form *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->pairs[i].key, key) == 0)
            return f->pairs[i].val;
    return NULL;
}

const char *al_form_member(const al_form *f, const char *prefix, size_t n)
{
    char key[AL_FORM_KEY_MAX + 1];
    if ((size_t)snprintf(key, sizeof key, "%s.member.%zu", prefix, n) >= sizeof key)
        return NULL;
    return al_form_get(f, key);
}

size_t al_form_count(const al_form *f)
{
    return f->n;
}

/* ---- XML writing ---- */

void al_xw_init(al_xw *w, es_buf *out)
{
    w->out = out;
    w->err = 0;
}

static void xw_put(al_xw *w, const char *s, size_t n)
{
    if (w->err)
        return;
    int r = es_buf_append(w->out, s, n);
    if (r < 0)
        w->err = r;
}

static void xw_puts(al_xw *w, const char *s)
{
    xw_put(w, s, strlen(s));
}

void al_xw_text(al_xw *w, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t run = 0; /* start of the pending literal run */
    for (size_t i = 0; i < n;) {
        const char *rep = NULL;
        size_t step = 1;
        switch (s[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        case '\t':
            rep = "&#9;";
            break;
        case '\n':
            rep = "&#10;";
            break;
        case '\r':
            rep = "&#13;";
            break;
        default:
            if (s[i] < 0x20 || s[i] == 0x7f) {
                rep = "\xef\xbf\xbd";
            } else if (s[i] >= 0x80) {
                step = es_utf8_len(s + i, n - i);
                if (step == 0) {
                    rep = "\xef\xbf\xbd";
                    step = 1;
                }
            }
        }
        if (rep) {
            xw_put(w, text + run, i - run);
            xw_puts(w, rep);
            run = i + step;
        }
        i += step;
    }
    xw_put(w, text + run, n - run);
}

void al_xw_open(al_xw *w, const char *name)
{
    xw_puts(w, "<");
    xw_puts(w, name);
    xw_puts(w, ">");
}

void al_xw_close(al_xw *w, const char *name)
{
    xw_puts(w, "</");
    xw_puts(w, name);
    xw_puts(w, ">");
}

void al_xw_elem(al_xw *w, const char *name, const char *text)
{
    al_xw_open(w, name);
    al_xw_text(w, text ? text : "", text ? strlen(text) : 0);
    al_xw_close(w, name);
}

void al_xw_elemf(al_xw *w, const char *name, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        if (!w->err)
            w->err = -EMSGSIZE;
        return;
    }
    al_xw_elem(w, name, tmp);
}

void al_xw_elem_urlenc(al_xw *w, const char *name, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    al_xw_open(w, name);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            xw_put(w, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            xw_put(w, e, 3);
        }
    }
    al_xw_close(w, name);
}

void al_xw_elem_time(al_xw *w, const char *name, double t)
{
    time_t s = (time_t)t;
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&s, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        if (!w->err)
            w->err = -EINVAL;
        return;
    }
    al_xw_elem(w, name, buf);
}

/* ---- dispatch ---- */

static const char *xmlns_of(const char *service)
{
    return strcmp(service, "sts") == 0 ? AL_STS_XMLNS : AL_IAM_XMLNS;
}

static const char *version_of(const char *service)
{
    return strcmp(service, "sts") == 0 ? "2011-06-15" : "2010-05-08";
}

static const al_qop *find_in(const al_qop *t, const char *action)
{
    for (; t->name; t++)
        if (strcmp(t->name, action) == 0)
            return t;
    return NULL;
}

static const al_qop *find_qop(const char *service, const char *action)
{
    if (!action)
        return NULL;
    if (strcmp(service, "iam") == 0) {
        /* roles and policies (iam.c), users and groups (iam_users.c), the
         * simulator (iam_simulate.c) */
        const al_qop *op = find_in(al_iam_qops, action);
        if (!op)
            op = find_in(al_iam_user_qops, action);
        return op ? op : find_in(al_iam_sim_qops, action);
    }
    if (strcmp(service, "sts") == 0)
        return find_in(al_sts_qops, action);
    return NULL;
}

bool al_query_is_action(const char *service, const char *action)
{
    return service && find_qop(service, action) != NULL;
}

/* Query services answer AccessDenied with 403 where the JSON services
 * answer AccessDeniedException with 400 (al_authorize's). */
static void to_query_error(al_error *e)
{
    if (strcmp(e->code, "AccessDeniedException") == 0) {
        snprintf(e->code, sizeof e->code, "AccessDenied");
        e->status = 403;
    }
}

int al_query_dispatch(al_ctx *c, const char *service, const char *principal, const char *body,
                      size_t len, es_buf *out, al_error *err)
{
    al_form *f = NULL;
    int r;
    if (!service || (strcmp(service, "iam") != 0 && strcmp(service, "sts") != 0))
        return al_fail(err, 400, "InvalidAction", "The embedded endpoint serves no such service.");
    r = al_form_parse(body ? body : "", body ? len : 0, &f);
    if (r == -EMSGSIZE)
        return al_fail(err, 413, "RequestEntityTooLarge", "The request body is too large.");
    if (r == -E2BIG)
        return al_fail(err, 400, "ValidationError",
                       "The request has too many parameters or a parameter name is too long.");
    if (r == -ENOMEM)
        return al_fail_internal(err, "ServiceFailure");
    if (r < 0)
        return al_fail(err, 400, "MalformedQueryString",
                       "The request body is not a valid form (bad escape, repeated or empty "
                       "parameter name).");
    const char *action = al_form_get(f, "Action");
    const char *version = al_form_get(f, "Version");
    const al_qop *op = find_qop(service, action);
    if (!action) {
        r = al_fail(err, 400, "MissingAction", "Missing Action");
        goto out;
    }
    if (!op || (version && strcmp(version, version_of(service)) != 0)) {
        r = al_fail(err, 400, "InvalidAction", "Could not find operation %.64s for version %.32s",
                    action, version ? version : "NO_VERSION_SPECIFIED");
        goto out;
    }
    al_xw w;
    al_xw_init(&w, out);
    xw_puts(&w, "<");
    xw_puts(&w, op->name);
    xw_puts(&w, "Response xmlns=\"");
    xw_puts(&w, xmlns_of(service));
    xw_puts(&w, "\">");
    if (op->has_result) {
        xw_puts(&w, "<");
        xw_puts(&w, op->name);
        xw_puts(&w, "Result>");
    }
    al_db_failure_take(c->db, NULL); /* what came before is not this call's */
    r = op->fn(c, principal, f, &w, err);
    al_store_failure_report(c, service, op->name, r, err);
    if (r < 0)
        goto out;
    if (op->has_result) {
        xw_puts(&w, "</");
        xw_puts(&w, op->name);
        xw_puts(&w, "Result>");
    }
    char rid[AL_KEY_ID_LEN + 1];
    if (al_uuid(rid) < 0) {
        r = al_fail_internal(err, "ServiceFailure");
        goto out;
    }
    al_xw_open(&w, "ResponseMetadata");
    al_xw_elem(&w, "RequestId", rid);
    al_xw_close(&w, "ResponseMetadata");
    xw_puts(&w, "</");
    xw_puts(&w, op->name);
    xw_puts(&w, "Response>");
    if (w.err) {
        r = al_fail(err, 500, "ServiceFailure", "The response could not be written (%s).",
                    w.err == -EMSGSIZE ? "too large" : "out of memory");
        goto out;
    }
    r = 0;
out:
    if (r < 0) {
        to_query_error(err);
        es_buf_reset_secret(out);
    }
    al_form_free(f);
    return r;
}

int al_query_error_xml(const char *service, const al_error *err, es_buf *out)
{
    char rid[AL_KEY_ID_LEN + 1];
    if (al_uuid(rid) < 0)
        return -EIO;
    al_xw w;
    al_xw_init(&w, out);
    xw_puts(&w, "<ErrorResponse xmlns=\"");
    xw_puts(&w, xmlns_of(service ? service : "iam"));
    xw_puts(&w, "\">");
    al_xw_open(&w, "Error");
    al_xw_elem(&w, "Type", err->status >= 500 ? "Receiver" : "Sender");
    al_xw_elem(&w, "Code", err->code);
    al_xw_elem(&w, "Message", err->message);
    al_xw_close(&w, "Error");
    al_xw_elem(&w, "RequestId", rid);
    xw_puts(&w, "</ErrorResponse>");
    return w.err;
}

void al_query_error_from_json(al_error *e)
{
    static const struct {
        const char *json, *query;
        int status;
    } map[] = {
        {"AccessDeniedException", "AccessDenied", 403},
        {"MissingAuthenticationTokenException", "MissingAuthenticationToken", 403},
        {"IncompleteSignatureException", "IncompleteSignature", 400},
        {"UnrecognizedClientException", "InvalidClientTokenId", 403},
        {"InvalidSignatureException", "SignatureDoesNotMatch", 403},
        {"ExpiredTokenException", "ExpiredToken", 403},
        {"InternalFailure", "ServiceFailure", 500},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(e->code, map[i].json) == 0) {
            snprintf(e->code, sizeof e->code, "%s", map[i].query);
            e->status = map[i].status;
            return;
        }
    }
}

int al_query_serve(al_ctx *c, const al_request *rq, time_t now, es_buf *out)
{
    al_error e;
    memset(&e, 0, sizeof e);
    const char *service = "sts"; /* for an unsigned request's error */
    const char *authz = al_request_header(rq, "authorization");
    aw_sigv4_auth a;
    int r = 0;
    if (authz && aw_sigv4_parse_authorization(authz, strlen(authz), &a) == 0) {
        if (strcmp(a.service, "iam") == 0)
            service = "iam";
        else if (strcmp(a.service, "sts") != 0)
            r = al_fail(&e, 400, "InvalidAction",
                        "The embedded endpoints serve the query protocol for IAM and STS only "
                        "(this request is signed for '%.63s').",
                        a.service);
        es_wipe(a.signature, sizeof a.signature);
    }
    char principal[AL_PRINCIPAL_MAX], region[AW_REGION_MAX + 1];
    if (r == 0)
        r = al_verify(c, rq, service, now, principal, sizeof principal, region, &e);
    if (r == 0 && (r = al_region_enter(c, region)) == 0) {
        /* al_verify accepted it, so the Authorization parsed */
        c->caller_temporary = aw_sigv4_parse_authorization(authz, strlen(authz), &a) == 0 &&
                              strncmp(a.access_key_id, "ASIA", 4) == 0;
        es_wipe(a.signature, sizeof a.signature);
        /* STS answers in every region; IAM is global (its ARNs take the
         * partition of the region the request was signed for) */
        r = al_query_dispatch(c, service, principal, rq->body, rq->body_len, out, &e);
        c->caller_temporary = false;
        al_region_leave(c);
    }
    if (r == 0)
        return 200;
    al_query_error_from_json(&e);
    es_buf_reset_secret(out);
    if (al_query_error_xml(service, &e, out) < 0)
        return -ENOMEM;
    return e.status;
}
