/* What a secret's value becomes before injection (agent/secrets/values.h):
 * json-key extraction, the registry credentials of repositoryCredentials and
 * the keyed fingerprint; no error quotes a value. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/secrets/values.h"
#include "common/alloc.h"
#include "common/json.h"

static int jk(const char *secret, const char *key, char *out, size_t outlen, char *err)
{
    es_buf b;
    es_buf_init(&b, 4096);
    int r = ag_secret_json_key(secret, strlen(secret), key, &b, err, 256);
    snprintf(out, outlen, "%s", es_buf_cstr(&b));
    es_buf_free_secret(&b);
    return r;
}

Test(secret_values, json_key_extraction)
{
    char out[512], err[256];
    const char *s = "{\"user\":\"admin\",\"port\":5432,\"ratio\":1.50,\"tls\":true,\"none\":null,"
                    "\"nested\":{\"a\":[1,\"x\"]},\"esc\":\"a\\\"b\\u00e9\",\"user\":\"last\"}";
    cr_assert_eq(jk(s, "port", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "5432");
    cr_assert_eq(jk(s, "ratio", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "1.50", "numbers keep their source text");
    cr_assert_eq(jk(s, "tls", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "true");
    cr_assert_eq(jk(s, "none", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "null");
    cr_assert_eq(jk(s, "nested", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "{\"a\":[1,\"x\"]}");
    cr_assert_eq(jk(s, "esc", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "a\"b\xc3\xa9", "strings as is, unescaped");
    cr_assert_eq(jk(s, "user", out, sizeof out, err), 0);
    cr_assert_str_eq(out, "last", "the last duplicate wins, as in botocore");

    cr_assert_eq(jk(s, "missing", out, sizeof out, err), -EINVAL);
    cr_assert_not_null(strstr(err, "'missing' not found"), "%s", err);
    cr_assert_null(strstr(err, "admin"));
    cr_assert_str_eq(out, "", "nothing appended on failure");

    cr_assert_eq(jk("plain-text-secret", "k", out, sizeof out, err), -EINVAL);
    cr_assert_not_null(strstr(err, "not a JSON object"), "%s", err);
    cr_assert_null(strstr(err, "plain-text-secret"));
    cr_assert_eq(jk("[\"array\"]", "k", out, sizeof out, err), -EINVAL);
    cr_assert_eq(jk("{\"k\":1", "k", out, sizeof out, err), -EINVAL);
    cr_assert_eq(jk("{\"k\":1}", "", out, sizeof out, err), -EINVAL);

    /* appends after what the buffer held; too big for the buffer is an error */
    es_buf b;
    es_buf_init(&b, 8);
    es_buf_append_str(&b, "x");
    cr_assert_eq(ag_secret_json_key("{\"k\":\"abc\"}", 11, "k", &b, err, sizeof err), 0);
    cr_assert_str_eq(b.data, "xabc");
    cr_assert_eq(ag_secret_json_key("{\"k\":[1,2,3,4,5]}", 17, "k", &b, err, sizeof err),
                 -EMSGSIZE);
    cr_assert_str_eq(b.data, "xabc", "a failed extraction leaves the buffer as it was");
    es_buf_free_secret(&b);
}

Test(secret_values, fingerprint_is_keyed_and_stable)
{
    unsigned char k1[32] = {1}, k2[32] = {2};
    char a[AG_FINGERPRINT_LEN + 1], b[AG_FINGERPRINT_LEN + 1], c[AG_FINGERPRINT_LEN + 1];
    cr_assert_eq(ag_secret_fingerprint(k1, sizeof k1, "value", 5, a, sizeof a), 0);
    cr_assert_eq(ag_secret_fingerprint(k1, sizeof k1, "value", 5, b, sizeof b), 0);
    cr_assert_str_eq(a, b);
    cr_assert_eq(strlen(a), AG_FINGERPRINT_LEN);
    cr_assert_eq(strncmp(a, "hmac-sha256:", 12), 0);
    cr_assert_eq(ag_secret_fingerprint(k2, sizeof k2, "value", 5, c, sizeof c), 0);
    cr_assert_str_neq(a, c, "another key, another fingerprint");
    cr_assert_eq(ag_secret_fingerprint(k1, sizeof k1, "valuf", 5, c, sizeof c), 0);
    cr_assert_str_neq(a, c);
    cr_assert_eq(ag_secret_fingerprint(k1, sizeof k1, "value", 5, c, 10), -EINVAL);
    /* RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?") */
    cr_assert_eq(ag_secret_fingerprint("Jefe", 4, "what do ya want for nothing?", 28, c, sizeof c),
                 0);
    cr_assert_str_eq(c, "hmac-sha256:5bdcc146bf60754e6a042426089575c7");
}

Test(secret_values, image_registry)
{
    static const char *const cases[][2] = {
        {"busybox", "https://index.docker.io/v1/"},
        {"library/busybox:1", "https://index.docker.io/v1/"},
        {"user/app@sha256:00", "https://index.docker.io/v1/"},
        {"127.0.0.1:5000/busybox:latest", "127.0.0.1:5000"},
        {"localhost/app", "localhost"},
        {"registry.example.com/team/app:2", "registry.example.com"},
        {"123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
         "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
    };
    char out[300];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_eq(ag_image_registry(cases[i][0], out, sizeof out), 0);
        cr_assert_str_eq(out, cases[i][1], "%s", cases[i][0]);
    }
    char small[8];
    cr_assert_eq(ag_image_registry("registry.example.com/a", small, sizeof small), -EMSGSIZE);
}

/* Decodes base64url with padding (what Docker's daemon reads). */
static size_t b64url_decode(const char *in, char *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *q = strchr(alphabet, *p);
        cr_assert_not_null(q, "not base64url: %c", *p);
        acc = (acc << 6) | (unsigned)(q - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            cr_assert_lt(n, cap);
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    cr_assert_eq(strlen(in) % 4, 0, "padded");
    out[n] = '\0';
    return n;
}

Test(secret_values, registry_auth_header)
{
    es_buf out;
    es_buf_init(&out, AG_REGISTRY_AUTH_MAX);
    char err[AG_SECRET_ERR_MAX];
    /* characters that base64 encodes to '+' and '/' in the standard alphabet */
    const char *secret = "{\"username\":\"u\\u00e9>>?\",\"password\":\"p\\\"w?>~~\",\"extra\":1}";
    cr_assert_eq(ag_registry_auth_build("127.0.0.1:5000/busybox:latest", secret, strlen(secret),
                                        &out, err, sizeof err),
                 0, "%s", err);
    cr_assert_null(strpbrk(out.data, "+/\r\n"), "%s", out.data);
    char doc[1024];
    size_t n = b64url_decode(out.data, doc, sizeof doc - 1);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(doc, n, NULL, &j, NULL, 0), 0, "%s", doc);
    cr_assert_str_eq(es_json_get_str(j, "username"), "u\xc3\xa9>>?");
    cr_assert_str_eq(es_json_get_str(j, "password"), "p\"w?>~~");
    cr_assert_str_eq(es_json_get_str(j, "serveraddress"), "127.0.0.1:5000");
    cr_assert_null(es_json_get(j, "extra"), "only the three members");
    es_json_free(j);
    es_buf_reset_secret(&out);

    static const char *const bad[] = {
        "s3cr3t-not-json",
        "[\"s3cr3t\"]",
        "{\"username\":\"u\"}",
        "{\"password\":\"s3cr3t\"}",
        "{\"username\":1,\"password\":\"s3cr3t\"}",
        "{\"username\":\"u\",\"password\":{\"v\":\"s3cr3t\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        cr_assert_eq(
            ag_registry_auth_build("busybox", bad[i], strlen(bad[i]), &out, err, sizeof err),
            -EINVAL, "%s", bad[i]);
        cr_assert(strstr(err, "registry credentials secret"), "%s", err);
        cr_assert_null(strstr(err, "s3cr3t"), "the error quotes the secret: %s", err);
        cr_assert_eq(out.len, 0, "nothing left in out");
    }
    es_buf_free_secret(&out);
}

/* A credential whose X-Registry-Auth would not fit the Docker client's
 * header buffer is refused when built (a clear "too large" at resolution),
 * not later as an opaque failure to start the pull. */
Test(secret_values, registry_auth_longer_than_docker_takes_is_refused)
{
    /* base64 makes 4 of 3: a 48 KiB password encodes past 64 KiB */
    size_t pwlen = 48 * 1024;
    size_t cap = pwlen + 64;
    char *secret = malloc(cap);
    cr_assert_not_null(secret);
    int n = snprintf(secret, cap, "{\"username\":\"u\",\"password\":\"");
    memset(secret + n, 'k', pwlen);
    snprintf(secret + (size_t)n + pwlen, cap - (size_t)n - pwlen, "\"}");
    es_buf out;
    es_buf_init(&out, AG_REGISTRY_AUTH_MAX);
    char err[AG_SECRET_ERR_MAX] = "";
    cr_assert_eq(
        ag_registry_auth_build("r.example/a", secret, strlen(secret), &out, err, sizeof err),
        -EMSGSIZE, "%s", err);
    cr_assert(strstr(err, "too large"), "%s", err);
    cr_assert_null(strstr(err, "kkkk"), "the error quotes the secret");
    cr_assert_eq(out.len, 0);
    es_buf_free_secret(&out);

    /* what is built is what dk_image_pull takes */
    cr_assert_leq(AG_REGISTRY_AUTH_MAX, DK_REGISTRY_AUTH_MAX);
    free(secret);
}

Test(secret_values, registry_auth_allocation_failures_are_clean)
{
    const char *secret = "{\"username\":\"u\",\"password\":\"p\"}";
    int failures = 0;
    for (long n = 0; n < 200; n++) {
        es_buf out;
        es_buf_init(&out, AG_REGISTRY_AUTH_MAX);
        char err[AG_SECRET_ERR_MAX];
        es_alloc_fail_after(n);
        int r =
            ag_registry_auth_build("r.example/a", secret, strlen(secret), &out, err, sizeof err);
        es_alloc_fail_after(-1);
        if (r == 0) {
            cr_assert_gt(out.len, 0);
            es_buf_free_secret(&out);
            break;
        }
        cr_assert_eq(r, -ENOMEM, "n=%ld: %d %s", n, r, err);
        cr_assert_eq(out.len, 0);
        es_buf_free_secret(&out);
        failures++;
    }
    cr_assert_gt(failures, 2);
}

Test(secret_values, json_key_pointer_below_the_top_level)
{
    char out[512], err[256];
    const char *s = "{\"db\":{\"user\":\"admin\",\"port\":5432,\"tls\":{\"on\":true}},"
                    "\"hosts\":[\"a\",{\"name\":\"b\"},null],\"a/b\":\"slash\",\"m~n\":\"tilde\","
                    "\"\":{\"\":\"empty\"},\"/db/user\":\"literal\",\"x\":{\"a/b\":1,\"m~n\":2}}";
    cr_assert_eq(jk(s, "/db/user", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "literal", "a top-level key that matches literally wins, as in ECS");
    cr_assert_eq(jk(s, "/db/port", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "5432", "a number as its JSON text");
    cr_assert_eq(jk(s, "/db/tls", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "{\"on\":true}", "an object as its JSON text");
    cr_assert_eq(jk(s, "/db/tls/on", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "true");
    cr_assert_eq(jk(s, "/hosts/0", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "a");
    cr_assert_eq(jk(s, "/hosts/1/name", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "b");
    cr_assert_eq(jk(s, "/hosts/2", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "null");
    cr_assert_eq(jk(s, "/hosts", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "[\"a\",{\"name\":\"b\"},null]");
    /* escapes: ~1 is '/', ~0 is '~' (and ~01 is "~1", not '/') */
    cr_assert_eq(jk(s, "/a~1b", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "slash");
    cr_assert_eq(jk(s, "/m~0n", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "tilde");
    cr_assert_eq(jk(s, "/x/a~1b", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "1");
    cr_assert_eq(jk(s, "/x/m~0n", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "2");
    cr_assert_eq(jk(s, "//", out, sizeof out, err), 0, "%s", err);
    cr_assert_str_eq(out, "empty", "empty tokens name the empty key");

    /* not found: the missing-key reason, never a value */
    const char *missing[] = {"/db/nope", "/hosts/3",      "/hosts/01", "/hosts/-",
                             "/hosts/x", "/db/user/more", "/x/m~01n",  "/hosts/99999999999"};
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        cr_assert_eq(jk(s, missing[i], out, sizeof out, err), -EINVAL, "%s", missing[i]);
        cr_assert_not_null(strstr(err, "not found in the secret"), "%s", err);
        cr_assert_null(strstr(err, "admin"), "%s", err);
        cr_assert_null(strstr(err, "JSON Pointer"), "%s: %s", missing[i], err);
        cr_assert_str_eq(out, "");
    }
    /* malformed pointers: not found, and why */
    const char *bad[] = {"/db/~2", "/db/us~", "/a~b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(jk(s, bad[i], out, sizeof out, err), -EINVAL, "%s", bad[i]);
        cr_assert_not_null(strstr(err, "not found in the secret"), "%s", err);
        cr_assert_not_null(strstr(err, "'~' must be followed by 0 or 1"), "%s", err);
    }
    /* a key without '/' is only ever a top-level key */
    cr_assert_eq(jk(s, "db/user", out, sizeof out, err), -EINVAL);
    cr_assert_null(strstr(err, "JSON Pointer"), "%s", err);
}

Test(secret_values, json_pointer_limits)
{
    char why[256];
    const es_json *v = NULL;
    es_json *j = NULL;
    cr_assert_eq(es_json_parse("{\"a\":{\"a\":1}}", 13, &es_json_default_limits, &j, NULL, 0), 0);
    /* deeper than the limit: refused even though the syntax is fine */
    char deep[AG_JSON_POINTER_MAX + 2];
    size_t o = 0;
    for (int i = 0; i <= AG_JSON_POINTER_DEPTH_MAX; i++)
        o += (size_t)snprintf(deep + o, sizeof deep - o, "/a");
    cr_assert_eq(ag_json_pointer_get(j, deep, &v, why, sizeof why), -EINVAL);
    cr_assert_not_null(strstr(why, "levels"), "%s", why);
    /* longer than the limit */
    memset(deep, 'a', sizeof deep - 1);
    deep[0] = '/';
    deep[sizeof deep - 1] = '\0';
    cr_assert_eq(ag_json_pointer_get(j, deep, &v, why, sizeof why), -EINVAL);
    cr_assert_not_null(strstr(why, "longer than"), "%s", why);
    cr_assert_eq(ag_json_pointer_get(j, "a", &v, why, sizeof why), -EINVAL);
    cr_assert_eq(ag_json_pointer_get(j, "/a/a", &v, why, sizeof why), 0);
    cr_assert_str_eq(v->u.number.text, "1");
    cr_assert_eq(ag_json_pointer_get(j, "/a/b", &v, why, sizeof why), -ENOENT);
    cr_assert_null(v);
    cr_assert_eq(ag_json_pointer_get(j, "", &v, why, sizeof why), -EINVAL);
    es_json_free(j);
}
