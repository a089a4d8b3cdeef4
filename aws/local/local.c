#include "aws/local/local.h"
#include "aws/region.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/local/internal.h"
#include "aws/local/kms.h"
#include "aws/local/match.h"
#include "aws/local/secretsmanager.h"
#include "aws/local/ssm.h"
#include "common/alloc.h"
#include "common/secure.h"

int al_fail(al_error *e, int status, const char *code, const char *fmt, ...)
{
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status >= 500 ? -EIO : -EINVAL;
}

int al_fail_internal(al_error *e, const char *code)
{
    return al_fail(e, 500, code, "An internal error occurred in the embedded store.");
}

/* SQLite's names of the codes a store meets outside bugs. */
static const char *sqlite_code_name(int code)
{
    switch (code & 0xff) {
    case SQLITE_FULL:
        return "SQLITE_FULL";
    case SQLITE_IOERR:
        return "SQLITE_IOERR";
    case SQLITE_READONLY:
        return "SQLITE_READONLY";
    case SQLITE_BUSY:
        return "SQLITE_BUSY";
    case SQLITE_LOCKED:
        return "SQLITE_LOCKED";
    case SQLITE_NOMEM:
        return "SQLITE_NOMEM";
    case SQLITE_CORRUPT:
        return "SQLITE_CORRUPT";
    case SQLITE_CANTOPEN:
        return "SQLITE_CANTOPEN";
    case SQLITE_PERM:
        return "SQLITE_PERM";
    case SQLITE_NOTADB:
        return "SQLITE_NOTADB";
    default:
        return "SQLITE_ERROR";
    }
}

void al_store_failure_report(al_ctx *c, const char *service, const char *operation, int r,
                             al_error *e)
{
    al_db_failure f;
    if (!al_db_failure_take(c->db, &f) || r >= 0 || e->status < 500)
        return;
    const char *name = sqlite_code_name(f.code);
    snprintf(e->message, sizeof e->message, "The embedded store could not complete %s: %s (%s).",
             operation, sqlite3_errstr(f.code), name);
    if (c->store_failure) {
        char op[128];
        snprintf(op, sizeof op, "%s.%s", service, operation);
        c->store_failure(c->store_failure_arg, op, f.code, name, f.message);
    }
}

int al_authorize(al_ctx *c, const char *principal, const char *action, const char *resource,
                 al_error *e)
{
    return al_authorize_n(c, principal, action, resource, 0, e);
}

int al_authorize_n(al_ctx *c, const char *principal, const char *action, const char *resource,
                   size_t resource_len, al_error *e)
{
    if (c->authz_msg) {
        char why[AL_MESSAGE_MAX - 160];
        why[0] = '\0';
        int r = c->authz_msg(c->authz_msg_arg, principal, action, resource, resource_len, why,
                             sizeof why);
        if (r == -EACCES) {
            char rid[AL_KEY_ID_LEN + 1] = "";
            /* a KMS permission missing behind SSM / Secrets Manager: AWS
             * relays KMS's answer with the service named */
            if (strncmp(action, "kms:", 4) == 0 && c->calling_service &&
                strcmp(c->calling_service, "TrentService") != 0 && al_uuid(rid) == 0)
                return al_fail(e, 400, "AccessDeniedException",
                               "%s (Service: AWSKMS; Status Code: 400; Error Code: "
                               "AccessDeniedException; Request ID: %s; Proxy: null)",
                               why, rid);
            return al_fail(e, 400, "AccessDeniedException", "%s", why);
        }
        if (r < 0)
            return al_fail_internal(e, "InternalFailure");
    }
    if (!c->authz || c->authz(c->authz_arg, principal, action, resource) == 0)
        return 0;
    return al_fail(e, 400, "AccessDeniedException",
                   "User: %s is not authorized to perform: %s on resource: %s",
                   principal ? principal : "anonymous", action, resource);
}

static double real_clock(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* millisecond precision, as AWS answers */
    return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

double al_now(al_ctx *c)
{
    return c->clock(c->clock_arg);
}

/* ---- the request's region ---- */

const char *al_region(const al_ctx *c)
{
    return c->rq_region[0] ? c->rq_region : c->region;
}

const char *al_partition(const al_ctx *c)
{
    return c->rq_region[0] ? c->rq_partition : c->partition;
}

int al_region_enter(al_ctx *c, const char *region)
{
    if (!region || !*region) {
        al_region_leave(c);
        return 0;
    }
    const char *partition = aw_region_partition(region);
    if (!partition)
        return -EINVAL;
    snprintf(c->rq_region, sizeof c->rq_region, "%s", region);
    c->rq_partition = partition;
    c->rq_seq++;
    return 0;
}

void al_region_leave(al_ctx *c)
{
    c->rq_region[0] = '\0';
    c->rq_partition = NULL;
    c->rq_seq++;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int al_b64_encode(es_buf *b, const uint8_t *p, size_t n)
{
    int err = 0;
    size_t outn = (n + 2) / 3 * 4;
    char *o = es_buf_reserve(b, outn, &err);
    if (!o)
        return err;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        o[j++] = b64[(v >> 18) & 63];
        o[j++] = b64[(v >> 12) & 63];
        o[j++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        o[j++] = i + 2 < n ? b64[v & 63] : '=';
    }
    es_buf_commit(b, outn);
    return 0;
}

static int b64val(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

int al_b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    if (n % 4 != 0)
        return -EINVAL;
    size_t pad = 0;
    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    size_t len = n / 4 * 3 - pad;
    uint8_t *d = es_malloc(len + 1);
    if (!d)
        return -ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (size_t k = 0; k < 4; k++) {
            bool last = i + 4 == n;
            if (last && s[i + k] == '=' && k >= 4 - pad)
                v[k] = 0;
            else
                v[k] = b64val(s[i + k]);
            if (v[k] < 0) {
                es_wipe(d, len + 1);
                es_free(d);
                return -EINVAL;
            }
        }
        if (i + 4 == n && ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))) {
            /* non-zero bits past the end: not the canonical encoding */
            es_wipe(d, len + 1);
            es_free(d);
            return -EINVAL;
        }
        uint32_t x =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t bytes[3] = {(uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
        for (size_t k = 0; k < 3 && j < len; k++)
            d[j++] = bytes[k];
    }
    d[len] = 0;
    *out = d;
    *outlen = len;
    return 0;
}

void al_jw_b64(es_jw *w, const uint8_t *p, size_t n)
{
    es_buf b;
    es_buf_init(&b, (n + 2) / 3 * 4 + 1);
    int r = al_b64_encode(&b, p, n);
    if (r < 0) {
        if (!w->err)
            w->err = r;
    } else {
        es_jw_strn(w, es_buf_cstr(&b), b.len);
    }
    es_buf_free_secret(&b);
}

int al_random_from(const char *alphabet, size_t an, char *out, size_t n)
{
    size_t lim = 256 - 256 % an; /* bytes at or above it are drawn again: no modulo bias */
    for (size_t i = 0; i < n; i++) {
        uint8_t b;
        do {
            if (es_random_bytes(&b, 1) < 0)
                return -EIO;
        } while (b >= lim);
        out[i] = alphabet[b % an];
    }
    out[n] = '\0';
    return 0;
}

int al_random_alnum(char *out, size_t n)
{
    return al_random_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 62, out,
                          n);
}

int al_uuid(char out[AL_KEY_ID_LEN + 1])
{
    return es_uuid(out);
}

/* ---- request members ---- */

bool al_opt_str(const es_json *req, const char *key, const char **out, al_error *e)
{
    const es_json *v = es_json_get(req, key);
    *out = NULL;
    if (!v || v->type == ES_JSON_NULL)
        return true;
    if (v->type != ES_JSON_STRING || strlen(v->u.string.s) != v->u.string.len) {
        al_fail(e, 400, "ValidationException", "%s must be a string.", key);
        return false;
    }
    *out = v->u.string.s;
    return true;
}

bool al_opt_bool(const es_json *req, const char *key, bool def, bool *out, al_error *e)
{
    const es_json *v = es_json_get(req, key);
    *out = def;
    if (!v || v->type == ES_JSON_NULL)
        return true;
    if (v->type != ES_JSON_BOOL) {
        al_fail(e, 400, "ValidationException", "%s must be a boolean.", key);
        return false;
    }
    *out = v->u.boolean;
    return true;
}

bool al_number_token(const char *tok, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(tok, &end, 10);
    if (errno || !*tok || *end || v < 0)
        return false;
    *out = v;
    return true;
}

bool al_opt_int(const es_json *req, const char *key, int64_t lo, int64_t hi, int64_t def,
                int64_t *out, al_error *e)
{
    const es_json *v = es_json_get(req, key);
    *out = def;
    if (!v || v->type == ES_JSON_NULL)
        return true;
    int64_t x;
    if (!es_json_as_int64(v, &x)) {
        al_fail(e, 400, "ValidationException", "%s must be an integer.", key);
        return false;
    }
    if (x < lo || x > hi) {
        al_fail(e, 400, "ValidationException",
                "1 validation error detected: Value '%lld' at '%s' failed to satisfy "
                "constraint: Member must have value between %lld and %lld",
                (long long)x, key, (long long)lo, (long long)hi);
        return false;
    }
    *out = x;
    return true;
}

/* ---- open / close ---- */

int al_open(const al_options *opt, al_ctx **out, char *err, size_t errlen)
{
    int r = -ENOMEM;
    char path[4096];
    al_ctx *c = es_calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->region = es_strdup(opt->region ? opt->region : "us-east-1");
    c->account = es_strdup(opt->account ? opt->account : "123456789012");
    if (!c->region || !c->account)
        goto out;
    if (opt->ecr_registry && !(c->ecr_registry = es_strdup(opt->ecr_registry)))
        goto out;
    if (opt->ecr_credentials_file &&
        !(c->ecr_credentials_file = es_strdup(opt->ecr_credentials_file)))
        goto out;
    c->partition = aw_region_partition(c->region);
    if (!c->partition) {
        r = -EINVAL;
        snprintf(err, errlen, "'%s' is not an AWS region", c->region);
        goto out;
    }
    c->authz = opt->authz;
    c->authz_arg = opt->authz_arg;
    c->clock = opt->clock ? opt->clock : real_clock;
    c->clock_arg = opt->clock_arg;
    c->store_failure = opt->store_failure;
    c->store_failure_arg = opt->store_failure_arg;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", opt->state_dir, AL_DB_FILE) >= sizeof path) {
        r = -ENAMETOOLONG;
        snprintf(err, errlen, "state directory path too long");
        goto out;
    }
    r = al_db_open(path, &c->db, err, errlen);
    if (r < 0)
        goto out;
    /* rows older than regions belong to the home region (ssm.h) */
    if ((r = al_ssm_adopt_home(c)) < 0) {
        snprintf(err, errlen, "moving the stored parameters into region %s", c->region);
        goto out;
    }
    r = al_kms_init(c, opt->state_dir, err, errlen);
    if (r < 0)
        goto out;
    r = al_sm_state_init(c, opt);
    if (r < 0)
        goto out;
    *out = c;
    c = NULL;
    r = 0;
out:
    al_close(c);
    return r;
}

void al_release_memory(al_ctx *c)
{
    if (c && c->db)
        sqlite3_db_release_memory(al_db_handle(c->db));
}

void al_close(al_ctx *c)
{
    if (!c)
        return;
    al_auth_cache_free(c);
    al_authz_cache_free(c);
    al_ssm_cache_free(c);
    al_match_free(c);    /* results still to come are dropped */
    al_sm_state_free(c); /* stops running rotation hooks */
    al_db_close(c->db);
    es_free(c->region);
    es_free(c->account);
    es_free(c->ecr_registry);
    es_free(c->ecr_credentials_file);
    es_wipe(c->master, sizeof c->master);
    al_kms_keep_free(c); /* wipes the kept keys and their expanded schedules */
    es_free(c);
}

void al_get_cache_stats(const al_ctx *c, al_cache_stats *out)
{
    *out = c->cache_stats;
}

/* ---- dispatch ---- */

/* The operation tables indexed once per process: a look-up was a strcmp
 * of the service against up to four names and of the operation against
 * each entry before it (12 a GetParameters: the listener's check, the
 * dispatcher's and the dispatch's). Now the service by its length (the
 * four differ in length) and one memcmp, the operation by a hash of its
 * bytes into an open-addressed table of OP_SLOTS and one memcmp. */
#define OP_SLOTS 128 /* a power of two, at least twice the largest table */

typedef struct op_slot {
    const al_op *op; /* NULL: empty */
    size_t len;
    bool read_only; /* served as one read (al_db_read_begin): the agent's launches' reads */
} op_slot;

typedef struct op_index {
    const char *service;
    size_t service_len;
    const al_op *table;
    bool linear; /* the table did not fit the index: searched entry by entry */
    op_slot slot[OP_SLOTS];
} op_index;

static op_index op_indexes[] = {
    {.service = "AmazonSSM", .table = al_ssm_ops},
    {.service = "secretsmanager", .table = al_sm_ops},
    {.service = "TrentService", .table = al_kms_ops},
    {.service = "AmazonEC2ContainerRegistry_V20150921", .table = al_ecr_ops},
};
static pthread_once_t op_indexes_once = PTHREAD_ONCE_INIT;

static uint64_t op_hash(const char *s, size_t n)
{
    return al_hash_mix(0x84222325CBF29CE4ull, s, n);
}

static void op_indexes_build(void)
{
    for (size_t i = 0; i < sizeof op_indexes / sizeof op_indexes[0]; i++) {
        op_index *x = &op_indexes[i];
        x->service_len = strlen(x->service);
        size_t n = 0;
        for (const al_op *o = x->table; o->name; o++)
            n++;
        if (n > OP_SLOTS)
            abort(); /* a table this large needs a larger OP_SLOTS */
        /* more than half full: kept in order and searched entry by entry
         * (a probe must meet an empty slot) */
        x->linear = 2 * n > OP_SLOTS;
        bool ssm = x->table == al_ssm_ops;
        size_t k = 0;
        for (const al_op *o = x->table; o->name; o++, k++) {
            size_t len = strlen(o->name);
            size_t at = x->linear ? k : op_hash(o->name, len) & (OP_SLOTS - 1);
            while (x->slot[at].op)
                at = (at + 1) & (OP_SLOTS - 1);
            x->slot[at] =
                (op_slot){.op = o,
                          .len = len,
                          .read_only = ssm && (strcmp(o->name, "GetParameters") == 0 ||
                                               strcmp(o->name, "GetParameter") == 0 ||
                                               strcmp(o->name, "GetParametersByPath") == 0)};
        }
    }
}

/* The operation's entry, NULL when unknown. service is service_len bytes
 * (not NUL-ended necessarily), operation a C string. */
static const op_slot *find_op_n(const char *service, size_t service_len, const char *operation)
{
    (void)pthread_once(&op_indexes_once, op_indexes_build);
    const op_index *x = NULL;
    for (size_t i = 0; i < sizeof op_indexes / sizeof op_indexes[0] && !x; i++)
        if (op_indexes[i].service_len == service_len &&
            memcmp(op_indexes[i].service, service, service_len) == 0)
            x = &op_indexes[i];
    if (!x)
        return NULL;
    size_t len = strlen(operation);
    size_t at = x->linear ? 0 : op_hash(operation, len) & (OP_SLOTS - 1);
    for (size_t probes = 0; probes < OP_SLOTS; probes++, at = (at + 1) & (OP_SLOTS - 1)) {
        const op_slot *s = &x->slot[at];
        if (!s->op)
            return NULL; /* the end of the probe (or of the ordered entries) */
        if (s->len == len && memcmp(s->op->name, operation, len) == 0)
            return s;
    }
    return NULL;
}

static const op_slot *find_op(const char *service, const char *operation)
{
    return find_op_n(service, strlen(service), operation);
}

static bool split_target(const char *target, char *svc, size_t svclen, const char **op)
{
    const char *dot = target ? strchr(target, '.') : NULL;
    if (!dot || (size_t)(dot - target) >= svclen)
        return false;
    memcpy(svc, target, (size_t)(dot - target));
    svc[dot - target] = '\0';
    *op = dot + 1;
    return true;
}

bool al_knows_target(const char *target)
{
    const char *dot = target ? strchr(target, '.') : NULL;
    return dot && find_op_n(target, (size_t)(dot - target), dot + 1);
}

/* True when a string or key anywhere in j holds a NUL byte: the stores work
 * on C strings, and a value silently cut at the NUL would be worse than a
 * refusal. */
static bool has_nul(const es_json *j)
{
    if (!j)
        return false;
    switch (j->type) {
    case ES_JSON_STRING:
        return strlen(j->u.string.s) != j->u.string.len;
    case ES_JSON_ARRAY:
        for (size_t i = 0; i < j->u.array.n; i++)
            if (has_nul(j->u.array.items[i]))
                return true;
        return false;
    case ES_JSON_OBJECT:
        for (size_t i = 0; i < j->u.object.n; i++)
            if (has_nul(j->u.object.values[i]))
                return true;
        return false;
    default:
        return false;
    }
}

/* o: the operation's entry (find_op) */
static int dispatch_op(al_ctx *c, const op_slot *o, const char *service, const char *operation,
                       const char *principal, const es_json *req, es_buf *out, al_error *err)
{
    if (!req || req->type != ES_JSON_OBJECT)
        return al_fail(err, 400, "SerializationException",
                       "The request body must be a JSON object.");
    if (has_nul(req))
        return al_fail(err, 400, "SerializationException",
                       "Strings holding a NUL character (\\u0000) are not supported by the "
                       "embedded endpoints.");
    /* the reads the agent's launches make: one snapshot, one set of locks */
    bool read_only = o->read_only;
    if (read_only && al_db_read_begin(c->db) < 0)
        return al_fail(err, 500, "InternalFailure", "The store could not be read.");
    if (read_only)
        al_kms_memo_begin(c);
    /* most answers fit: one allocation instead of doubling from 64 bytes */
    int ignored = 0;
    if (!out->data) /* 4095 + the NUL: one 4 KiB block */
        (void)es_buf_reserve(out, 4095 < out->max ? 4095 : out->max, &ignored);
    es_jw w;
    es_jw_init(&w, out);
    c->calling_service = service;
    /* the caller for the operation's decisions (internal.h); an operation
     * dispatched from inside another restores the outer one's after it */
    al_rq_caller outer = c->rq_caller;
    c->rq_caller.principal = principal;
    c->rq_caller.hashed = false;
    c->rq_caller.action_len = 0;
    al_db_failure_take(c->db, NULL); /* what came before is not this call's */
    int r = o->op->fn(c, principal, req, &w, err);
    al_store_failure_report(c, service, operation, r, err);
    c->rq_caller = outer;
    c->calling_service = NULL;
    if (read_only) {
        al_kms_memo_end(c);
        al_db_read_end(c->db);
    }
    int wr = es_jw_finish(&w);
    if (r == 0 && wr < 0)
        r = al_fail(err, 500, "InternalFailure", "The response could not be written (%s).",
                    wr == -EMSGSIZE ? "too large" : "out of memory");
    if (r < 0)
        es_buf_reset_secret(out);
    return r;
}

static int dispatch_json_op(al_ctx *c, const char *region, const op_slot *o, const char *service,
                            const char *operation, const char *principal, const es_json *req,
                            es_buf *out, al_error *err)
{
    if (al_region_enter(c, region) < 0)
        return al_fail(err, 400, "InvalidSignatureException",
                       "Credential should be scoped to a valid region, not '%.63s'.", region);
    int r = dispatch_op(c, o, service, operation, principal, req, out, err);
    al_region_leave(c);
    return r;
}

int al_dispatch_json(al_ctx *c, const char *region, const char *service, const char *operation,
                     const char *principal, const es_json *req, es_buf *out, al_error *err)
{
    const op_slot *o = find_op(service, operation);
    if (!o)
        return al_fail(err, 400, "UnknownOperationException", "Unknown operation %s.%s", service,
                       operation);
    return dispatch_json_op(c, region, o, service, operation, principal, req, out, err);
}

int al_dispatch(al_ctx *c, const char *target, const char *principal, const char *body, size_t len,
                es_buf *out, al_error *err)
{
    return al_dispatch_in(c, NULL, target, principal, body, len, out, err);
}

int al_dispatch_in(al_ctx *c, const char *region, const char *target, const char *principal,
                   const char *body, size_t len, es_buf *out, al_error *err)
{
    char svc[64];
    const char *op;
    if (!split_target(target, svc, sizeof svc, &op))
        return al_fail(err, 400, "UnknownOperationException", "Missing or malformed X-Amz-Target.");
    const op_slot *o = find_op(svc, op);
    if (!o)
        return al_fail(err, 400, "UnknownOperationException", "Unknown operation %s", target);
    if (len > AL_REQUEST_MAX)
        return al_fail(err, 413, "SerializationException", "The request body is too large.");
    es_json *req = NULL;
    char why[128];
    es_json_limits lim = es_json_default_limits;
    lim.max_bytes = AL_REQUEST_MAX;
    int r = es_json_parse(len ? body : "{}", len ? len : 2, &lim, &req, why, sizeof why);
    if (r < 0)
        return al_fail(err, 400, "SerializationException", "The request body is not valid JSON: %s",
                       why);
    r = dispatch_json_op(c, region, o, svc, op, principal, req, out, err);
    es_json_free_secret(req);
    return r;
}
