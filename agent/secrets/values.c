/* values.c - see values.h. */
#include "agent/secrets/values.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/tasks/taskdef.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/secure.h"

/* ---- json-key ---- */

static const es_json_limits secret_json_limits = {
    .max_bytes = AG_SECRET_VALUE_MAX,
    .max_depth = 32,
    .max_string = AG_SECRET_VALUE_MAX,
    .max_values = 20000,
};

int ag_secret_json_object(const char *secret, size_t len, es_json **out)
{
    es_json *j = NULL;
    char why[128];
    int r = es_json_parse(secret ? secret : "", secret ? len : 0, &secret_json_limits, &j, why,
                          sizeof why);
    if (r == ES_JSON_E_NOMEM)
        return -ENOMEM;
    if (r || j->type != ES_JSON_OBJECT) {
        es_json_free_secret(j);
        return -EINVAL;
    }
    *out = j;
    return 0;
}

/* One reference token of a pointer, unescaped (~1 -> '/', ~0 -> '~') into
 * tok: its length, or -EINVAL for another '~' escape. */
static int pointer_token(const char *p, size_t n, char *tok)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '~') {
            tok[o++] = p[i];
            continue;
        }
        if (i + 1 >= n || (p[i + 1] != '0' && p[i + 1] != '1'))
            return -EINVAL;
        tok[o++] = p[++i] == '0' ? '~' : '/';
    }
    tok[o] = '\0';
    return (int)o;
}

/* An array index as RFC 6901 writes it: "0" or digits without a leading
 * zero ("-", the element after the last, never exists when reading). */
static bool pointer_index(const char *tok, size_t n, size_t *out)
{
    if (n == 0 || n > 9 || (n > 1 && tok[0] == '0'))
        return false;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] < '0' || tok[i] > '9')
            return false;
        v = v * 10 + (size_t)(tok[i] - '0');
    }
    *out = v;
    return true;
}

/* One level down: an object's member, an array's element, else nothing. */
static const es_json *pointer_step(const es_json *cur, const char *tok, size_t n)
{
    size_t idx;
    if (cur->type == ES_JSON_OBJECT)
        return es_json_get(cur, tok);
    if (cur->type == ES_JSON_ARRAY && pointer_index(tok, n, &idx))
        return es_json_at(cur, idx);
    return NULL;
}

int ag_json_pointer_get(const es_json *root, const char *ptr, const es_json **out, char *why,
                        size_t whylen)
{
    *out = NULL;
    size_t n = strlen(ptr);
    if (n > AG_JSON_POINTER_MAX)
        return es_errf(why, whylen, -EINVAL, "longer than %d", AG_JSON_POINTER_MAX);
    if (ptr[0] != '/')
        return es_errf(why, whylen, -EINVAL, "it does not start with '/'");
    char tok[AG_JSON_POINTER_MAX + 1];
    const es_json *cur = root;
    size_t depth = 0;
    for (const char *p = ptr; *p == '/';) {
        const char *start = p + 1, *end = strchr(start, '/');
        size_t tl = end ? (size_t)(end - start) : strlen(start);
        if (++depth > AG_JSON_POINTER_DEPTH_MAX)
            return es_errf(why, whylen, -EINVAL, "more than %d levels", AG_JSON_POINTER_DEPTH_MAX);
        int k = pointer_token(start, tl, tok);
        if (k < 0)
            return es_errf(why, whylen, -EINVAL, "'~' must be followed by 0 or 1");
        if (cur) /* once lost, the rest's syntax is still checked */
            cur = pointer_step(cur, tok, (size_t)k);
        p = start + tl;
    }
    *out = cur;
    return cur ? 0 : -ENOENT;
}

int ag_secret_json_text(const es_json *v, es_buf *out)
{
    if (v->type == ES_JSON_STRING)
        return es_buf_append(out, v->u.string.s, v->u.string.len);
    es_jw w;
    es_jw_init(&w, out);
    es_jw_value(&w, v);
    return es_jw_finish(&w);
}

int ag_secret_json_key(const char *secret, size_t len, const char *key, es_buf *out, char *err,
                       size_t errlen)
{
    if (!key || !*key)
        return es_errf(err, errlen, -EINVAL, "the json key is empty");
    es_json *j = NULL;
    int r = ag_secret_json_object(secret, len, &j);
    if (r == -ENOMEM)
        return es_errf(err, errlen, -ENOMEM, "out of memory");
    if (r)
        return es_errf(err, errlen, -EINVAL,
                       "json key '%.128s': the secret's value is not a JSON object", key);
    const es_json *v = es_json_get(j, key);
    if (!v && key[0] == '/') {
        char why[AG_SECRET_ERR_MAX / 2];
        r = ag_json_pointer_get(j, key, &v, why, sizeof why);
        if (r == -EINVAL) {
            es_json_free_secret(j);
            return es_errf(err, errlen, -EINVAL,
                           "json key '%.128s' not found in the secret (not a JSON Pointer: %s)",
                           key, why);
        }
    }
    if (!v) {
        es_json_free_secret(j);
        return es_errf(err, errlen, -EINVAL, "json key '%.128s' not found in the secret", key);
    }
    size_t before = out->len;
    r = ag_secret_json_text(v, out);
    es_json_free_secret(j);
    if (r) {
        /* wipe what was appended before reporting */
        if (out->data && out->len > before)
            es_wipe(out->data + before, out->len - before);
        if (out->data) {
            out->len = before;
            out->data[before] = '\0';
        }
        return es_errf(err, errlen, r, "json key '%.128s': the value cannot be extracted (%s)", key,
                       r == -EMSGSIZE ? "too large"
                       : r == -ENOMEM ? "out of memory"
                                      : "encoding");
    }
    return 0;
}

int ag_image_registry(const char *image, char *out, size_t outlen)
{
    const char *slash = image ? strchr(image, '/') : NULL;
    int n;
    if (slash) {
        size_t hl = (size_t)(slash - image);
        bool host = memchr(image, '.', hl) || memchr(image, ':', hl) ||
                    (hl == 9 && memcmp(image, "localhost", 9) == 0);
        if (host) {
            n = snprintf(out, outlen, "%.*s", (int)hl, image);
            return n < 0 || (size_t)n >= outlen ? -EMSGSIZE : 0;
        }
    }
    n = snprintf(out, outlen, "https://index.docker.io/v1/");
    return n < 0 || (size_t)n >= outlen ? -EMSGSIZE : 0;
}

int ag_registry_auth_build(const char *image, const char *secret, size_t len, es_buf *out,
                           char *err, size_t errlen)
{
    char server[AG_TD_IMAGE_MAX + 32];
    if (ag_image_registry(image, server, sizeof server) < 0)
        return es_errf(err, errlen, -EINVAL, "the image's registry name is too long");
    es_json *j = NULL;
    int r = ag_secret_json_object(secret, len, &j);
    if (r == -ENOMEM)
        return es_errf(err, errlen, -ENOMEM, "out of memory");
    if (r)
        return es_errf(err, errlen, -EINVAL,
                       "the registry credentials secret is not a JSON object "
                       "{\"username\": ..., \"password\": ...}");
    const es_json *u = es_json_get(j, "username"), *pw = es_json_get(j, "password");
    if (!u || u->type != ES_JSON_STRING || !pw || pw->type != ES_JSON_STRING) {
        es_json_free_secret(j);
        return es_errf(err, errlen, -EINVAL,
                       "the registry credentials secret needs string members \"username\" and "
                       "\"password\"");
    }
    es_buf doc;
    es_buf_init(&doc, AG_SECRET_VALUE_MAX + 1024);
    es_jw w;
    es_jw_init(&w, &doc);
    es_jw_obj(&w);
    es_jw_key(&w, "username");
    es_jw_value(&w, u);
    es_jw_key(&w, "password");
    es_jw_value(&w, pw);
    es_jw_kstr(&w, "serveraddress", server);
    es_jw_obj_end(&w);
    r = es_jw_finish(&w);
    es_json_free_secret(j);
    if (r == 0) {
        /* base64url of the document, with padding (Go's base64.URLEncoding) */
        size_t need = 4 * ((doc.len + 2) / 3) + 1;
        unsigned char *enc = es_malloc(need);
        if (!enc) {
            r = -ENOMEM;
        } else {
            int n = EVP_EncodeBlock(enc, (const unsigned char *)doc.data, (int)doc.len);
            for (int i = 0; i < n; i++)
                enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
            es_buf_reset_secret(out);
            r = n < 0 ? -EIO : es_buf_append(out, enc, (size_t)n);
            es_wipe(enc, need);
            es_free(enc);
        }
    }
    es_buf_free_secret(&doc);
    if (r < 0) {
        es_buf_reset_secret(out);
        return es_errf(err, errlen, r, "the registry auth cannot be built (%s)",
                       r == -EMSGSIZE ? "too large"
                       : r == -ENOMEM ? "out of memory"
                                      : "encoding");
    }
    return 0;
}

int ag_secret_fingerprint(const void *key, size_t keylen, const char *value, size_t len, char *out,
                          size_t outlen)
{
    if (outlen < AG_FINGERPRINT_LEN + 1 || !key || keylen == 0 || keylen > INT32_MAX)
        return -EINVAL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)(value ? value : ""),
              value ? len : 0, mac, &maclen) ||
        maclen < 16) {
        es_wipe(mac, sizeof mac);
        return -EIO;
    }
    size_t o = sizeof AG_FINGERPRINT_PREFIX - 1;
    memcpy(out, AG_FINGERPRINT_PREFIX, o);
    for (size_t i = 0; i < 16; i++)
        snprintf(out + o + 2 * i, 3, "%02x", mac[i]);
    es_wipe(mac, sizeof mac);
    return 0;
}
