#include "cluster/taskdefs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/instance.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/name.h"
#include "common/secure.h"

#define REV_DIGITS 10

static const es_json_limits header_limits = {
    .max_bytes = CL_TD_HEADER_MAX,
    .max_depth = 2,
    .max_string = CL_TD_FAMILY_MAX,
    .max_values = 16,
};

bool cl_td_family_ok(const char *s)
{
    return es_name_ok(s, s ? strlen(s) : 0, CL_TD_FAMILY_MAX);
}

int cl_td_prefix(const char *cluster, char *out, size_t outlen)
{
    return cl_cluster_key(cluster, CL_TD_LEAF, out, outlen);
}

int cl_td_key(const char *cluster, const char *family, int64_t revision, char *out, size_t outlen)
{
    if (!cl_td_family_ok(family) || revision < 1 || revision > CL_TD_REVISION_MAX)
        return -EINVAL;
    int p = cl_td_prefix(cluster, out, outlen);
    if (p < 0)
        return p;
    int n = snprintf(out + p, outlen - (size_t)p, "%s/%0*" PRId64, family, REV_DIGITS, revision);
    return n < 0 || (size_t)n >= outlen - (size_t)p ? -EINVAL : p + n;
}

static bool token_ok(const char *t)
{
    if (strlen(t) != CL_TD_TOKEN_HEX)
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

int cl_td_write(const cl_td_record *rec, es_buf *out)
{
    if (!cl_td_family_ok(rec->family) || rec->revision < 1 || rec->revision > CL_TD_REVISION_MAX ||
        !token_ok(rec->token) || rec->registered_at < 0 || rec->deregistered_at < 0)
        return -EINVAL;
    if (rec->body_len > CL_TD_BODY_MAX)
        return -EMSGSIZE;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "family", rec->family);
    es_jw_kint(&w, "revision", rec->revision);
    es_jw_kstr(&w, "status", rec->active ? "ACTIVE" : "INACTIVE");
    es_jw_kint(&w, "registeredAt", rec->registered_at);
    es_jw_kint(&w, "deregisteredAt", rec->deregistered_at);
    es_jw_kstr(&w, "token", rec->token);
    es_jw_obj_end(&w);
    int r = es_jw_finish(&w);
    if (r == 0 && (r = es_buf_append(out, "\n", 1)) == 0)
        r = es_buf_append(out, rec->body, rec->body_len);
    return r < 0 ? r : 0;
}

/* <family>/<10 digits> after the prefix. */
static int read_key(const char *prefix, const char *key, cl_td_record *out)
{
    size_t pl = strlen(prefix);
    if (strncmp(key, prefix, pl) != 0)
        return -EINVAL;
    const char *f = key + pl, *slash = strchr(f, '/');
    if (!slash || (size_t)(slash - f) > CL_TD_FAMILY_MAX || strlen(slash + 1) != REV_DIGITS)
        return -EINVAL;
    memcpy(out->family, f, (size_t)(slash - f));
    out->family[slash - f] = '\0';
    int64_t rev = 0;
    for (const char *p = slash + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        rev = rev * 10 + (*p - '0');
    }
    out->revision = rev;
    return cl_td_family_ok(out->family) && rev >= 1 ? 0 : -EINVAL;
}

static int read_header(const es_json *j, cl_td_record *rec, char *why, size_t whylen)
{
    const char *family = es_json_get_str(j, "family");
    const char *status = es_json_get_str(j, "status");
    const char *token = es_json_get_str(j, "token");
    int64_t rev = 0;
    if (!family || strcmp(family, rec->family) != 0 || !es_json_get_int64(j, "revision", &rev) ||
        rev != rec->revision)
        return es_errf(why, whylen, -EINVAL, "family or revision: not the key's");
    if (!status || (strcmp(status, "ACTIVE") != 0 && strcmp(status, "INACTIVE") != 0))
        return es_errf(why, whylen, -EINVAL, "status: neither ACTIVE nor INACTIVE");
    rec->active = strcmp(status, "ACTIVE") == 0;
    if (!es_json_get_int64(j, "registeredAt", &rec->registered_at) || rec->registered_at < 0 ||
        !es_json_get_int64(j, "deregisteredAt", &rec->deregistered_at) || rec->deregistered_at < 0)
        return es_errf(why, whylen, -EINVAL, "registeredAt or deregisteredAt: not a time");
    if (!token || !token_ok(token))
        return es_errf(why, whylen, -EINVAL, "token: not %d hex digits", CL_TD_TOKEN_HEX);
    memcpy(rec->token, token, CL_TD_TOKEN_HEX + 1);
    return 0;
}

int cl_td_read(const char *prefix, const cl_kv *kv, cl_td_record *out, char *why, size_t whylen)
{
    cl_td_record rec;
    memset(&rec, 0, sizeof rec);
    if (read_key(prefix, kv->key, &rec) < 0)
        return es_errf(why, whylen, -EINVAL, "not a task definition's key");
    const char *nl = memchr(kv->value, '\n', kv->value_len);
    if (!nl || kv->value_len > CL_ETCD_VALUE_MAX)
        return es_errf(why, whylen, -EINVAL, "no header line, or longer than %u bytes",
                       CL_ETCD_VALUE_MAX);
    es_json *j = NULL;
    char jwhy[96];
    int jr =
        es_json_parse(kv->value, (size_t)(nl - kv->value), &header_limits, &j, jwhy, sizeof jwhy);
    if (jr == ES_JSON_E_NOMEM)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    if (jr || j->type != ES_JSON_OBJECT) {
        es_json_free(j);
        return es_errf(why, whylen, -EINVAL, "header: %s", jr ? jwhy : "not a JSON object");
    }
    int r = read_header(j, &rec, why, whylen);
    es_json_free(j);
    if (r < 0)
        return r;
    rec.body = nl + 1;
    rec.body_len = kv->value_len - (size_t)(nl + 1 - kv->value);
    if (rec.body_len == 0)
        return es_errf(why, whylen, -EINVAL, "no body");
    rec.mod_revision = kv->mod_revision;
    *out = rec;
    return 0;
}

/* ---- register and deregister ------------------------------------------ */

typedef struct td_call {
    cl_etcd *e;
    char cluster[CL_CLUSTER_MAX + 1];
    char prefix[CL_ETCD_KEY_MAX + 1];
    cl_td_record rec; /* rec.body: body below */
    char *body;
    int tries;
    int64_t now; /* deregister */
    cl_td_cb cb;
    void *arg;
} td_call;

static void call_end(td_call *c, int err, const cl_td_record *rec)
{
    c->cb(c->arg, err, err ? NULL : rec, (unsigned)c->tries);
    es_free(c->body);
    es_free(c);
}

static int send_register(td_call *c);

static void on_register(void *arg, int err, const cl_answer *a)
{
    td_call *c = arg;
    if (err) {
        call_end(c, err, NULL);
        return;
    }
    if (a->succeeded) {
        c->rec.mod_revision = a->revision;
        call_end(c, 0, &c->rec);
        return;
    }
    /* the revision is taken: by this very call (an answer lost, the try
     * sent again), or by someone else (try the next one) */
    cl_td_record cur;
    char why[96];
    if (a->n_kvs == 1 && cl_td_read(c->prefix, &a->kvs[0], &cur, why, sizeof why) == 0 &&
        strcmp(cur.token, c->rec.token) == 0) {
        c->rec.mod_revision = cur.mod_revision;
        call_end(c, 0, &c->rec);
        return;
    }
    if (++c->tries >= CL_TD_REGISTER_TRIES || c->rec.revision >= CL_TD_REVISION_MAX) {
        call_end(c, -EBUSY, NULL);
        return;
    }
    c->rec.revision++;
    int r = send_register(c);
    if (r < 0)
        call_end(c, r, NULL);
}

/* A put of the record, on key's target == revision; the key read back otherwise. */
static int send_txn(td_call *c, cl_cmp_target target, int64_t revision, cl_etcd_cb cb)
{
    char key[CL_ETCD_KEY_MAX + 1];
    if (cl_td_key(c->cluster, c->rec.family, c->rec.revision, key, sizeof key) < 0)
        return CL_ETCD_E_INVALID;
    es_buf v;
    es_buf_init(&v, CL_ETCD_VALUE_MAX);
    int r = cl_td_write(&c->rec, &v);
    if (r == 0) {
        cl_txn t = {.key = key, .target = target, .revision = revision, .failure_range = true};
        t.success[0] = (cl_txn_op){.key = key, .value = v.data, .value_len = v.len};
        t.n_success = 1;
        r = cl_etcd_txn(c->e, &t, cb, c);
    } else {
        r = r == -ENOMEM ? CL_ETCD_E_NOMEM : CL_ETCD_E_INVALID;
    }
    es_buf_free(&v);
    return r;
}

static int send_register(td_call *c)
{
    return send_txn(c, CL_CMP_CREATE, 0, on_register);
}

static td_call *call_new(cl_etcd *e, const char *cluster, cl_td_cb cb, void *arg)
{
    td_call *c = es_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->e = e;
    snprintf(c->cluster, sizeof c->cluster, "%s", cluster);
    c->cb = cb;
    c->arg = arg;
    if (cl_td_prefix(cluster, c->prefix, sizeof c->prefix) < 0) {
        es_free(c);
        return NULL;
    }
    return c;
}

int cl_td_register(cl_etcd *e, const char *cluster, const cl_td_record *rec, cl_td_cb cb, void *arg)
{
    if (!cl_td_family_ok(rec->family) || rec->revision < 1 || !rec->body || !rec->body_len || !cb ||
        strlen(cluster) > CL_CLUSTER_MAX)
        return -EINVAL;
    if (rec->body_len > CL_TD_BODY_MAX)
        return -EMSGSIZE;
    char prefix[CL_ETCD_KEY_MAX + 1];
    if (cl_td_prefix(cluster, prefix, sizeof prefix) < 0)
        return -EINVAL;
    td_call *c = call_new(e, cluster, cb, arg);
    if (c && !(c->body = es_malloc(rec->body_len))) {
        es_free(c);
        c = NULL;
    }
    if (!c)
        return -ENOMEM;
    c->rec = *rec;
    memcpy(c->body, rec->body, rec->body_len);
    c->rec.body = c->body;
    c->rec.active = true;
    c->rec.deregistered_at = 0;
    unsigned char raw[CL_TD_TOKEN_HEX / 2];
    int r = es_random_bytes(raw, sizeof raw);
    for (size_t i = 0; r == 0 && i < sizeof raw; i++)
        snprintf(c->rec.token + 2 * i, 3, "%02x", raw[i]);
    if (r == 0)
        r = send_register(c);
    if (r < 0) {
        es_free(c->body);
        es_free(c);
    }
    return r;
}

static void on_deregister(void *arg, int err, const cl_answer *a);

/* cur: the record as etcd has it now. Done when INACTIVE, else a write on its revision. */
static void deregister_from(td_call *c, const cl_kv *kv)
{
    char why[96];
    cl_td_record cur;
    if (cl_td_read(c->prefix, kv, &cur, why, sizeof why) < 0) {
        call_end(c, CL_ETCD_E_ANSWER, NULL);
        return;
    }
    es_free(c->body);
    c->body = es_malloc(cur.body_len);
    if (!c->body) {
        call_end(c, CL_ETCD_E_NOMEM, NULL);
        return;
    }
    memcpy(c->body, cur.body, cur.body_len);
    c->rec = cur;
    c->rec.body = c->body;
    if (!cur.active) {
        call_end(c, 0, &c->rec);
        return;
    }
    c->rec.active = false;
    c->rec.deregistered_at = c->now;
    int r = ++c->tries > CL_TD_DEREGISTER_TRIES
                ? -EBUSY
                : send_txn(c, CL_CMP_MOD, cur.mod_revision, on_deregister);
    if (r < 0)
        call_end(c, r, NULL);
}

static void on_deregister(void *arg, int err, const cl_answer *a)
{
    td_call *c = arg;
    if (err) {
        call_end(c, err, NULL);
    } else if (a->succeeded) {
        c->rec.mod_revision = a->revision;
        call_end(c, 0, &c->rec);
    } else if (a->n_kvs == 1) {
        deregister_from(c, &a->kvs[0]); /* changed meanwhile: once more on the new one */
    } else {
        call_end(c, -ENOENT, NULL);
    }
}

static void on_deregister_read(void *arg, int err, const cl_answer *a)
{
    td_call *c = arg;
    if (err)
        call_end(c, err, NULL);
    else if (a->n_kvs != 1)
        call_end(c, -ENOENT, NULL);
    else
        deregister_from(c, &a->kvs[0]);
}

int cl_td_deregister(cl_etcd *e, const char *cluster, const char *family, int64_t revision,
                     int64_t now, cl_td_cb cb, void *arg)
{
    char key[CL_ETCD_KEY_MAX + 1];
    if (!cb || strlen(cluster) > CL_CLUSTER_MAX ||
        cl_td_key(cluster, family, revision, key, sizeof key) < 0)
        return -EINVAL;
    td_call *c = call_new(e, cluster, cb, arg);
    if (!c)
        return -ENOMEM;
    c->now = now;
    int r = cl_etcd_range(e, key, false, on_deregister_read, c);
    if (r < 0)
        es_free(c);
    return r;
}
