#include "cluster/etcd_wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

/* An answer is a handful of levels deep (result.events[].kv.key); values are
 * base64 of at most CL_ETCD_VALUE_MAX. */
static const es_json_limits wire_limits = {
    .max_bytes = CL_ETCD_ANSWER_MAX,
    .max_depth = 8,
    .max_string = (CL_ETCD_VALUE_MAX / 3 + 1) * 4 + 4,
    .max_values = 16 * (CL_ETCD_KVS_MAX + 8),
};

/* ---- base64 ---------------------------------------------------------- */

int cl_b64_append(es_buf *out, const void *p, size_t n)
{
    if (n > CL_ETCD_VALUE_MAX)
        return -EMSGSIZE;
    size_t enc = (n + 2) / 3 * 4;
    int err = 0;
    char *dst = es_buf_reserve(out, enc + 1, &err);
    if (!dst)
        return err ? err : -ENOMEM;
    int w = EVP_EncodeBlock((unsigned char *)dst, p, (int)n);
    if (w < 0)
        return -EINVAL;
    es_buf_commit(out, (size_t)w);
    return 0;
}

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int cl_b64_decode(const char *s, size_t slen, size_t max, char **out, size_t *len)
{
    if (slen % 4 != 0 || slen / 4 * 3 > max + 2)
        return -EINVAL;
    size_t pad = 0;
    for (size_t i = 0; i < slen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=' && i >= slen - 2)
            pad++;
        else if (!b64_char(c) || pad)
            return -EINVAL;
    }
    char *buf = es_malloc(slen / 4 * 3 + 1);
    if (!buf)
        return -ENOMEM;
    int n = slen ? EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)s, (int)slen) : 0;
    if (n < 0 || (size_t)n < pad || (size_t)n - pad > max) {
        es_free(buf);
        return -EINVAL;
    }
    size_t l = (size_t)n - pad;
    buf[l] = '\0';
    *out = buf;
    *len = l;
    return 0;
}

/* ---- answers --------------------------------------------------------- */

void cl_kv_free(cl_kv *kv)
{
    if (!kv)
        return;
    es_free(kv->key);
    if (kv->value)
        es_wipe(kv->value, kv->value_len);
    es_free(kv->value);
    memset(kv, 0, sizeof *kv);
}

void cl_answer_free(cl_answer *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_kvs; i++)
        cl_kv_free(&a->kvs[i]);
    es_free(a->kvs);
    for (size_t i = 0; i < a->n_events; i++)
        cl_kv_free(&a->events[i].kv);
    es_free(a->events);
    memset(a, 0, sizeof *a);
}

/* An int64 as the gateway writes it: a string of digits (or, leniently, a
 * number). Absent: 0. -EINVAL for anything else. */
static int get_i64(const es_json *o, const char *key, int64_t *out)
{
    const es_json *v = es_json_get(o, key);
    *out = 0;
    if (!v)
        return 0;
    if (v->type == ES_JSON_NUMBER)
        return es_json_as_int64(v, out) ? 0 : -EINVAL;
    if (v->type != ES_JSON_STRING || v->u.string.len == 0 || v->u.string.len > 20)
        return -EINVAL;
    int64_t n = 0;
    const char *s = v->u.string.s;
    bool neg = *s == '-';
    for (size_t i = neg; i < v->u.string.len; i++) {
        if (s[i] < '0' || s[i] > '9' || n > (INT64_MAX - (s[i] - '0')) / 10)
            return -EINVAL;
        n = n * 10 + (s[i] - '0');
    }
    *out = neg ? -n : n;
    return 0;
}

static int get_bool(const es_json *o, const char *key, bool *out)
{
    const es_json *v = es_json_get(o, key);
    *out = false;
    if (!v)
        return 0;
    if (v->type != ES_JSON_BOOL)
        return -EINVAL;
    *out = v->u.boolean;
    return 0;
}

static int parse_kv(const es_json *o, cl_kv *kv, char *why, size_t whylen)
{
    if (!o || o->type != ES_JSON_OBJECT)
        return es_errf(why, whylen, -EINVAL, "a kv is not an object");
    const es_json *k = es_json_get(o, "key"), *v = es_json_get(o, "value");
    if (!k || k->type != ES_JSON_STRING || (v && v->type != ES_JSON_STRING))
        return es_errf(why, whylen, -EINVAL, "a kv's key or value is not a string");
    cl_kv n = {0};
    size_t klen = 0;
    int r = cl_b64_decode(k->u.string.s, k->u.string.len, CL_ETCD_KEY_MAX, &n.key, &klen);
    if (r == 0 && (klen == 0 || memchr(n.key, '\0', klen)))
        r = -EINVAL;
    if (r == 0)
        r = cl_b64_decode(v ? v->u.string.s : "", v ? v->u.string.len : 0, CL_ETCD_VALUE_MAX,
                          &n.value, &n.value_len);
    if (r == 0 && (get_i64(o, "create_revision", &n.create_revision) ||
                   get_i64(o, "mod_revision", &n.mod_revision) ||
                   get_i64(o, "version", &n.version) || get_i64(o, "lease", &n.lease)))
        r = -EINVAL;
    if (r < 0) {
        cl_kv_free(&n);
        return es_errf(why, whylen, r,
                       r == -ENOMEM ? "out of memory"
                                    : "a kv's key, value or revision is malformed "
                                      "or past its limit");
    }
    *kv = n;
    return 0;
}

static int parse_kvs(const es_json *arr, cl_answer *a, char *why, size_t whylen)
{
    if (!arr)
        return 0;
    if (arr->type != ES_JSON_ARRAY)
        return es_errf(why, whylen, -EINVAL, "kvs is not an array");
    if (arr->u.array.n > CL_ETCD_KVS_MAX)
        return es_errf(why, whylen, -EMSGSIZE, "more than %d kvs in one answer", CL_ETCD_KVS_MAX);
    if (arr->u.array.n == 0)
        return 0;
    a->kvs = es_calloc(arr->u.array.n, sizeof *a->kvs);
    if (!a->kvs)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < arr->u.array.n; i++) {
        int r = parse_kv(arr->u.array.items[i], &a->kvs[i], why, whylen);
        if (r < 0)
            return r;
        a->n_kvs++;
    }
    return 0;
}

static int parse_events(const es_json *arr, cl_answer *a, char *why, size_t whylen)
{
    if (!arr)
        return 0;
    if (arr->type != ES_JSON_ARRAY)
        return es_errf(why, whylen, -EINVAL, "events is not an array");
    if (arr->u.array.n > CL_ETCD_EVENTS_MAX)
        return es_errf(why, whylen, -EMSGSIZE, "more than %d events in one message",
                       CL_ETCD_EVENTS_MAX);
    if (arr->u.array.n == 0)
        return 0;
    a->events = es_calloc(arr->u.array.n, sizeof *a->events);
    if (!a->events)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < arr->u.array.n; i++) {
        const es_json *e = arr->u.array.items[i];
        if (e->type != ES_JSON_OBJECT)
            return es_errf(why, whylen, -EINVAL, "an event is not an object");
        const char *t = es_json_get_str(e, "type");
        if (es_json_get(e, "type") && (!t || (strcmp(t, "PUT") != 0 && strcmp(t, "DELETE") != 0)))
            return es_errf(why, whylen, -EINVAL, "an event's type is neither PUT nor DELETE");
        cl_event *ev = &a->events[i];
        ev->type = t && strcmp(t, "DELETE") == 0 ? CL_EVENT_DELETE : CL_EVENT_PUT;
        int r = parse_kv(es_json_get(e, "kv"), &ev->kv, why, whylen);
        if (r < 0)
            return r;
        a->n_events++;
    }
    return 0;
}

static int parse_error(const es_json *root, cl_answer *a)
{
    const char *msg = es_json_get_str(root, "message");
    if (!msg)
        msg = es_json_get_str(root, "error");
    int64_t code = 0;
    /* a unary error says "code"; a stream's error object "grpc_code" */
    if (!es_json_get(root, "code") && es_json_get(root, "grpc_code")) {
        if (get_i64(root, "grpc_code", &code) < 0)
            code = -1;
    } else if (get_i64(root, "code", &code) < 0) {
        code = -1;
    }
    if (code < 0 || code > 64)
        code = 2; /* gRPC's Unknown */
    a->is_error = true;
    a->code = (int)code;
    snprintf(a->error, sizeof a->error, "%s", msg ? msg : "etcd error without a message");
    /* the text is etcd's own ("etcdserver: requested lease not found"); keep it printable */
    for (char *p = a->error; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    return 0;
}

/* The txn's responses: the first response_range's kvs (our failure branch). */
static int parse_responses(const es_json *arr, cl_answer *a, char *why, size_t whylen)
{
    if (!arr)
        return 0;
    if (arr->type != ES_JSON_ARRAY || arr->u.array.n > CL_ETCD_TXN_OPS_MAX)
        return es_errf(why, whylen, -EINVAL, "responses is not an array of at most %d",
                       CL_ETCD_TXN_OPS_MAX);
    for (size_t i = 0; i < arr->u.array.n; i++) {
        const es_json *rr = es_json_get(arr->u.array.items[i], "response_range");
        if (rr && !a->kvs)
            return parse_kvs(es_json_get(rr, "kvs"), a, why, whylen);
    }
    return 0;
}

static int parse_body(const es_json *root, cl_answer *a, char *why, size_t whylen)
{
    if (root->type != ES_JSON_OBJECT)
        return es_errf(why, whylen, -EINVAL, "the answer is not a JSON object");
    const es_json *o = root;
    if (es_json_get(root, "error") && !es_json_get(root, "result"))
        return parse_error(
            es_json_get(root, "error")->type == ES_JSON_OBJECT ? es_json_get(root, "error") : root,
            a);
    if (es_json_get(root, "result")) {
        o = es_json_get(root, "result");
        if (o->type != ES_JSON_OBJECT)
            return es_errf(why, whylen, -EINVAL, "result is not an object");
    }
    const es_json *hdr = es_json_get(o, "header");
    if (hdr && hdr->type != ES_JSON_OBJECT)
        return es_errf(why, whylen, -EINVAL, "header is not an object");
    if ((hdr && get_i64(hdr, "revision", &a->revision)) ||
        get_bool(o, "succeeded", &a->succeeded) || get_bool(o, "more", &a->more) ||
        get_i64(o, "count", &a->count) || get_i64(o, "deleted", &a->deleted) ||
        get_i64(o, "ID", &a->id) || get_i64(o, "TTL", &a->ttl) ||
        get_bool(o, "created", &a->created) || get_bool(o, "canceled", &a->canceled) ||
        get_i64(o, "watch_id", &a->watch_id) ||
        get_i64(o, "compact_revision", &a->compact_revision))
        return es_errf(why, whylen, -EINVAL, "a field has the wrong type");
    if (a->revision < 0 || a->ttl < 0 || a->count < 0)
        return es_errf(why, whylen, -EINVAL, "a revision, count or TTL is negative");
    int r = parse_kvs(es_json_get(o, "kvs"), a, why, whylen);
    if (r == 0)
        r = parse_responses(es_json_get(o, "responses"), a, why, whylen);
    if (r == 0)
        r = parse_events(es_json_get(o, "events"), a, why, whylen);
    return r;
}

int cl_wire_parse(const char *text, size_t len, cl_answer *out, char *why, size_t whylen)
{
    es_json *root = NULL;
    char jwhy[96];
    int jr = es_json_parse(text, len, &wire_limits, &root, jwhy, sizeof jwhy);
    if (jr == ES_JSON_E_NOMEM)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    if (jr)
        return es_errf(why, whylen, jr == ES_JSON_E_SYNTAX ? -EINVAL : -EMSGSIZE,
                       "not an etcd answer: %s", jwhy);
    cl_answer a = {0};
    int r = parse_body(root, &a, why, whylen);
    es_json_free(root);
    if (r < 0) {
        cl_answer_free(&a);
        return r;
    }
    *out = a;
    return 0;
}

/* ---- requests -------------------------------------------------------- */

int cl_wire_prefix_end(const char *prefix, char *out, size_t outlen)
{
    size_t n = strlen(prefix);
    if (n > CL_ETCD_KEY_MAX || outlen < n + 1)
        return -EINVAL;
    memcpy(out, prefix, n);
    while (n > 0) {
        unsigned char c = (unsigned char)out[n - 1];
        if (c < 0xff) {
            out[n - 1] = (char)(c + 1);
            out[n] = '\0';
            return (int)n;
        }
        n--;
    }
    /* every key from prefix on: etcd's "\0" */
    out[0] = '\0';
    return 1;
}

static void jw_b64(es_jw *w, const char *k, const void *p, size_t n)
{
    es_buf b;
    es_buf_init(&b, (CL_ETCD_VALUE_MAX / 3 + 2) * 4);
    if (cl_b64_append(&b, p, n) < 0) {
        w->err = w->err ? w->err : -EMSGSIZE;
    } else {
        es_jw_key(w, k);
        es_jw_strn(w, b.data ? b.data : "", b.len);
    }
    es_buf_free_secret(&b);
}

static void jw_i64(es_jw *w, const char *k, int64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRId64, v);
    es_jw_kstr(w, k, s);
}

static int key_ok(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    return n > 0 && n <= CL_ETCD_KEY_MAX ? 0 : -EINVAL;
}

static void jw_key_range(es_jw *w, const char *key, bool prefix)
{
    jw_b64(w, "key", key, strlen(key));
    if (prefix) {
        char end[CL_ETCD_KEY_MAX + 1];
        int n = cl_wire_prefix_end(key, end, sizeof end);
        if (n < 0)
            w->err = -EINVAL;
        else
            jw_b64(w, "range_end", end, (size_t)n);
    }
}

static int finish(es_jw *w)
{
    es_jw_obj_end(w);
    return es_jw_finish(w);
}

int cl_wire_range(es_buf *out, const char *key, bool prefix)
{
    if (key_ok(key))
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    jw_key_range(&w, key, prefix);
    /* a linearizable read (the default): what a quorum agrees on */
    return finish(&w);
}

static void put_members(es_jw *w, const char *key, const char *value, size_t len, int64_t lease)
{
    jw_b64(w, "key", key, strlen(key));
    jw_b64(w, "value", value ? value : "", value ? len : 0);
    if (lease)
        jw_i64(w, "lease", lease);
}

int cl_wire_range_page(es_buf *out, const char *from, const char *prefix, int64_t limit,
                       int64_t revision)
{
    if (key_ok(from) || key_ok(prefix) || strncmp(from, prefix, strlen(prefix)) != 0 || limit <= 0)
        return -EINVAL;
    char end[CL_ETCD_KEY_MAX + 1];
    int n = cl_wire_prefix_end(prefix, end, sizeof end);
    if (n < 0)
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    jw_b64(&w, "key", from, strlen(from));
    jw_b64(&w, "range_end", end, (size_t)n);
    jw_i64(&w, "limit", limit);
    if (revision > 0)
        jw_i64(&w, "revision", revision);
    return finish(&w);
}

int cl_wire_put(es_buf *out, const char *key, const char *value, size_t len, int64_t lease)
{
    if (key_ok(key) || len > CL_ETCD_VALUE_MAX)
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    put_members(&w, key, value, len, lease);
    return finish(&w);
}

int cl_wire_delete(es_buf *out, const char *key, bool prefix)
{
    if (key_ok(key))
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    jw_key_range(&w, key, prefix);
    return finish(&w);
}

static const char *const cmp_targets[] = {"MOD", "CREATE", "VERSION"};
static const char *const cmp_fields[] = {"mod_revision", "create_revision", "version"};

static void jw_cmp(es_jw *w, const cl_txn_cmp *c)
{
    es_jw_obj(w);
    jw_b64(w, "key", c->key, strlen(c->key));
    es_jw_kstr(w, "target", cmp_targets[c->target]);
    es_jw_kstr(w, "result", "EQUAL");
    jw_i64(w, cmp_fields[c->target], c->revision);
    es_jw_obj_end(w);
}

int cl_wire_txn(es_buf *out, const cl_txn *t)
{
    if (key_ok(t->key) || t->n_success > CL_ETCD_TXN_OPS_MAX || t->n_more >= CL_ETCD_TXN_OPS_MAX ||
        (t->n_more && !t->more) || (unsigned)t->target > CL_CMP_VERSION)
        return -EINVAL;
    for (size_t i = 0; i < t->n_more; i++)
        if (key_ok(t->more[i].key) || (unsigned)t->more[i].target > CL_CMP_VERSION)
            return -EINVAL;
    for (size_t i = 0; i < t->n_success; i++)
        if (key_ok(t->success[i].key) || t->success[i].value_len > CL_ETCD_VALUE_MAX)
            return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_key(&w, "compare");
    es_jw_arr(&w);
    jw_cmp(&w, &(cl_txn_cmp){.key = t->key, .target = t->target, .revision = t->revision});
    for (size_t i = 0; i < t->n_more; i++)
        jw_cmp(&w, &t->more[i]);
    es_jw_arr_end(&w);
    es_jw_key(&w, "success");
    es_jw_arr(&w);
    for (size_t i = 0; i < t->n_success; i++) {
        const cl_txn_op *op = &t->success[i];
        es_jw_obj(&w);
        es_jw_key(&w, op->is_delete ? "request_delete_range" : "request_put");
        es_jw_obj(&w);
        if (op->is_delete)
            jw_b64(&w, "key", op->key, strlen(op->key));
        else
            put_members(&w, op->key, op->value, op->value_len, op->lease);
        es_jw_obj_end(&w);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    es_jw_key(&w, "failure");
    es_jw_arr(&w);
    if (t->failure_range) {
        es_jw_obj(&w);
        es_jw_key(&w, "request_range");
        es_jw_obj(&w);
        jw_b64(&w, "key", t->key, strlen(t->key));
        es_jw_obj_end(&w);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    return finish(&w);
}

int cl_wire_lease_grant(es_buf *out, int64_t ttl)
{
    if (ttl <= 0)
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    jw_i64(&w, "TTL", ttl);
    return finish(&w);
}

int cl_wire_lease_id(es_buf *out, int64_t id)
{
    if (id == 0)
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    jw_i64(&w, "ID", id);
    return finish(&w);
}

int cl_wire_watch(es_buf *out, const char *key, bool prefix, int64_t start_revision)
{
    if (key_ok(key) || start_revision < 0)
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_key(&w, "create_request");
    es_jw_obj(&w);
    jw_key_range(&w, key, prefix);
    if (start_revision)
        jw_i64(&w, "start_revision", start_revision);
    es_jw_obj_end(&w);
    return finish(&w);
}
