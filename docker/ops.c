/* ops.c - the typed Docker operations: one op context per call, built into a
 * dk__req, decoded from the answer into the caller's typed callback. */
#include "docker/internal.h"

#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

#include <errno.h>
#include <string.h>

#define OP_MAX_LINE (64u * 1024u)       /* one pull progress line */
#define DK_ENV_LINE_MAX (1024 * 1024)   /* one "NAME=value" Env entry, formatted before escaping */
#define DK_KILL_PATH_MAX 256            /* "/kill?signal=" and the URL-encoded signal name */
#define DK_LIST_FILTERS_MAX (64 * 1024) /* a container list's filters JSON, before URL-encoding */

typedef enum op_kind {
    OP_PING,
    OP_VERSION,
    OP_CREATE,
    OP_START,
    OP_STOP,
    OP_KILL,
    OP_REMOVE,
    OP_INSPECT,
    OP_LIST,
    OP_IMAGE,
    OP_PULL,
    OP_VOLUME, /* create, inspect, remove: done or not */
} op_kind;

typedef struct op {
    op_kind kind;
    dk_client *c;
    union {
        dk_done_cb done;
        dk_version_cb version;
        dk_create_cb create;
        dk_inspect_cb inspect;
        dk_list_cb list;
        dk_image_cb image;
    } cb;
    void *ud;
    es_buf line;      /* pull: the partial progress line */
    char *pull_error; /* pull: the first error line's message */
} op;

static const es_json_limits resp_limits = {
    .max_bytes = 8u * 1024u * 1024u,
    .max_depth = 64,
    .max_string = 1024u * 1024u,
    .max_values = 1000000,
};

_Static_assert(sizeof(op) <= DK__REQ_CTX, "op must fit in dk__req.ctx");

/* Releases r, sent or not: what its op allocated, then the block itself
 * (kept by the client for the next request, or freed). */
static void op_drop(dk__req *r)
{
    op *o = r->op;
    dk_client *c = o->c;
    es_buf_free(&o->line);
    es_free(o->pull_error);
    dk__client_recycle(c, r);
}

/* Collects labels of a JSON object into a kv array (pointers into j). */
static dk_kv *labels_of(const es_json *obj, size_t *n)
{
    *n = 0;
    if (!obj || obj->type != ES_JSON_OBJECT || obj->u.object.n == 0)
        return NULL;
    dk_kv *kv = es_calloc(obj->u.object.n, sizeof(*kv));
    if (!kv)
        return NULL;
    for (size_t i = 0; i < obj->u.object.n; i++) {
        const char *v = es_json_as_str(obj->u.object.values[i]);
        kv[*n].key = obj->u.object.keys[i];
        kv[*n].value = v ? v : "";
        (*n)++;
    }
    return kv;
}

static void deliver_inspect(op *o, dk_result *res, const es_json *j)
{
    dk_container_info info;
    memset(&info, 0, sizeof(info));
    dk_kv *labels = NULL, *logopts = NULL;
    const char **env = NULL;
    if (j) {
        const es_json *st = es_json_get(j, "State");
        const es_json *cfg = es_json_get(j, "Config");
        info.id = es_json_get_str(j, "Id");
        info.name = es_json_get_str(j, "Name");
        if (info.name && info.name[0] == '/')
            info.name++;
        info.image = cfg ? es_json_get_str(cfg, "Image") : NULL;
        if (!info.id || !st) {
            res->err = DK_E_PROTOCOL;
        } else {
            int64_t v = 0;
            info.status = es_json_get_str(st, "Status");
            es_json_get_bool(st, "Running", &info.running);
            es_json_get_bool(st, "OOMKilled", &info.oom_killed);
            if (es_json_get_int64(st, "ExitCode", &v))
                info.exit_code = (int)v;
            es_json_get_int64(st, "Pid", &info.pid);
            info.started_at = es_json_get_str(st, "StartedAt");
            info.finished_at = es_json_get_str(st, "FinishedAt");
            labels = labels_of(cfg ? es_json_get(cfg, "Labels") : NULL, &info.nlabels);
            info.labels = labels;
            const es_json *ev = cfg ? es_json_get(cfg, "Env") : NULL;
            size_t ne = ev && ev->type == ES_JSON_ARRAY ? es_json_len(ev) : 0;
            if (ne && (env = es_calloc(ne, sizeof(*env)))) {
                for (size_t i = 0; i < ne; i++) {
                    const char *s = es_json_as_str(es_json_at(ev, i));
                    if (s)
                        env[info.nenv++] = s;
                }
            }
            info.env = env;
            const es_json *hc = es_json_get(j, "HostConfig");
            const es_json *lc = hc ? es_json_get(hc, "LogConfig") : NULL;
            info.log_driver = lc ? es_json_get_str(lc, "Type") : NULL;
            logopts = labels_of(lc ? es_json_get(lc, "Config") : NULL, &info.nlog_opts);
            info.log_opts = logopts;
            info.network_mode = hc ? es_json_get_str(hc, "NetworkMode") : NULL;
        }
    }
    o->cb.inspect(o->ud, res, res->err ? NULL : &info);
    es_free(labels);
    es_free(logopts);
    es_free(env);
}

static void deliver_list(op *o, dk_result *res, const es_json *j)
{
    size_t n = 0;
    dk_container_summary *items = NULL;
    dk_kv **lab = NULL;
    if (j && j->type != ES_JSON_ARRAY)
        res->err = DK_E_PROTOCOL;
    if (!res->err && j && (n = es_json_len(j)) > 0) {
        items = es_calloc(n, sizeof(*items));
        lab = es_calloc(n, sizeof(*lab));
        if (!items || !lab) {
            res->err = -ENOMEM;
            n = 0;
        }
        for (size_t i = 0; i < n; i++) {
            const es_json *e = es_json_at(j, i);
            items[i].id = es_json_get_str(e, "Id");
            const es_json *names = es_json_get(e, "Names");
            const char *nm = names ? es_json_as_str(es_json_at(names, 0)) : NULL;
            items[i].name = nm && nm[0] == '/' ? nm + 1 : nm;
            items[i].image = es_json_get_str(e, "Image");
            items[i].state = es_json_get_str(e, "State");
            items[i].status = es_json_get_str(e, "Status");
            lab[i] = labels_of(es_json_get(e, "Labels"), &items[i].nlabels);
            items[i].labels = lab[i];
            if (!items[i].id)
                res->err = DK_E_PROTOCOL;
        }
    }
    if (res->err)
        o->cb.list(o->ud, res, NULL, 0);
    else
        o->cb.list(o->ud, res, items, n);
    for (size_t i = 0; lab && i < n; i++)
        es_free(lab[i]);
    es_free(lab);
    es_free(items);
}

/* The create answer as dockerd writes it (Go's encoding/json, fields in
 * struct order): {"Id":"<64 lower-case hex>","Warnings":[]} (or null), a
 * newline after it. Recognised byte for byte, without the JSON parser: a
 * create sleeps for hundreds of milliseconds while dockerd copies a root
 * file system, and the parser's code and allocations are cold by the time
 * the answer comes. Anything else (a warning, another field, spacing) goes
 * to the full parse: this only ever accepts documents the parser would. */
static bool create_id_fast(const char *s, size_t n, char id[DK__ID_LEN + 1])
{
    static const char head[] = "{\"Id\":\"";
    static const char tail_empty[] = "\",\"Warnings\":[]}";
    static const char tail_null[] = "\",\"Warnings\":null}";
    const size_t hl = sizeof(head) - 1;
    if (n > 0 && s[n - 1] == '\n')
        n--;
    if (n < hl + DK__ID_LEN || memcmp(s, head, hl) != 0)
        return false;
    const char *t = s + hl + DK__ID_LEN;
    size_t tl = n - hl - DK__ID_LEN;
    if (!(tl == sizeof(tail_empty) - 1 && memcmp(t, tail_empty, tl) == 0) &&
        !(tl == sizeof(tail_null) - 1 && memcmp(t, tail_null, tl) == 0))
        return false;
    for (size_t i = 0; i < DK__ID_LEN; i++) {
        char c = s[hl + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    memcpy(id, s + hl, DK__ID_LEN);
    id[DK__ID_LEN] = '\0';
    return true;
}

static void on_done(dk__req *r, int err)
{
    op *o = r->op;
    dk_result res = {err, r->status, NULL};
    char *msg = NULL;
    if (!err) {
        res.err = dk__status_error(r, &msg);
        if (r->status == 304 && (o->kind == OP_START || o->kind == OP_STOP))
            res.err = 0; /* already started / already stopped */
        res.message = msg;
    }
    if (!res.err && o->kind == OP_PULL && o->pull_error) {
        res.err = DK_E_PULL;
        res.message = o->pull_error;
    }
    es_json *j = NULL;
    char fast_id[DK__ID_LEN + 1];
    bool fast = !res.err && o->kind == OP_CREATE && r->resp.data &&
                create_id_fast(r->resp.data, r->resp.len, fast_id);
    bool wants_json = !fast && (o->kind == OP_VERSION || o->kind == OP_CREATE ||
                                o->kind == OP_INSPECT || o->kind == OP_LIST || o->kind == OP_IMAGE);
    if (!res.err && wants_json) {
        if (es_json_parse(r->resp.data ? r->resp.data : "", r->resp.len, &resp_limits, &j, NULL,
                          0) != 0)
            res.err = DK_E_PROTOCOL;
    }
    switch (o->kind) {
    case OP_PING:
    case OP_START:
    case OP_STOP:
    case OP_KILL:
    case OP_REMOVE:
    case OP_PULL:
    case OP_VOLUME:
        o->cb.done(o->ud, &res);
        break;
    case OP_VERSION: {
        dk_version_info v = {0};
        if (j) {
            v.version = es_json_get_str(j, "Version");
            v.api_version = es_json_get_str(j, "ApiVersion");
            v.min_api_version = es_json_get_str(j, "MinAPIVersion");
            v.os = es_json_get_str(j, "Os");
            v.arch = es_json_get_str(j, "Arch");
        }
        o->cb.version(o->ud, &res, res.err ? NULL : &v);
        break;
    }
    case OP_CREATE: {
        const char *id = fast ? fast_id : j ? es_json_get_str(j, "Id") : NULL;
        if (!res.err && !id)
            res.err = DK_E_PROTOCOL;
        o->cb.create(o->ud, &res, res.err ? NULL : id);
        break;
    }
    case OP_INSPECT:
        deliver_inspect(o, &res, j);
        break;
    case OP_LIST:
        deliver_list(o, &res, j);
        break;
    case OP_IMAGE: {
        dk_image_info info = {j ? es_json_get_str(j, "Id") : NULL};
        if (!res.err && !info.id)
            res.err = DK_E_PROTOCOL;
        o->cb.image(o->ud, &res, res.err ? NULL : &info);
        break;
    }
    }
    /* inspect answers carry Env and log options */
    es_json_free_secret(j);
    es_free(msg);
    op_drop(r);
}

/* The request of a new operation on c, its op context in the request's
 * block and its path still empty; NULL when out of memory. */
static dk__req *op_req(dk_client *c, op_kind kind, void *ud, const char *method, bool versioned)
{
    dk__req *r = dk__client_req(c, method, versioned);
    if (!r)
        return NULL;
    op *o = (op *)r->ctx;
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->c = c;
    o->ud = ud;
    es_buf_init(&o->line, OP_MAX_LINE);
    r->op = o;
    r->done = on_done;
    return r;
}

/* Sends r when its path was built (e == 0), or drops it. */
static int op_submit(dk_client *c, dk__req *r, int e)
{
    if (e < 0) {
        op_drop(r); /* wipes whatever body it had */
        return e;
    }
    dk__client_submit(c, r);
    return 0;
}

static int simple(dk_client *c, op_kind kind, const char *method, const char *path, bool versioned,
                  uint64_t timeout_ms, dk_done_cb cb, void *ud)
{
    dk__req *r = op_req(c, kind, ud, method, versioned);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.done = cb;
    r->timeout_ms = timeout_ms;
    return op_submit(c, r, es_buf_append_str(&r->path, path));
}

/* "/containers/<id-encoded><suffix>" appended to p (callers reject an empty id
 * before they take a request block). */
static int id_path(es_buf *p, const char *id, const char *suffix)
{
    int e = es_buf_append_str(p, "/containers/");
    if (!e)
        e = dk__urlencode(p, id);
    if (!e && suffix)
        e = es_buf_append_str(p, suffix);
    return e;
}

static int id_op(dk_client *c, op_kind kind, const char *method, const char *id, const char *suffix,
                 uint64_t timeout_ms, dk_done_cb cb, void *ud)
{
    if (!id || !*id)
        return -EINVAL;
    dk__req *r = op_req(c, kind, ud, method, true);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.done = cb;
    r->timeout_ms = timeout_ms;
    return op_submit(c, r, id_path(&r->path, id, suffix));
}

int dk_ping(dk_client *c, dk_done_cb cb, void *ud)
{
    return simple(c, OP_PING, "GET", "/_ping", false, 0, cb, ud);
}

int dk_version(dk_client *c, dk_version_cb cb, void *ud)
{
    dk__req *r = op_req(c, OP_VERSION, ud, "GET", true);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.version = cb;
    return op_submit(c, r, es_buf_append_str(&r->path, "/version"));
}

static void write_kv_object(es_jw *w, const char *key, const dk_kv *kv, size_t n, bool mask)
{
    es_jw_key(w, key);
    es_jw_obj(w);
    for (size_t i = 0; i < n; i++)
        es_jw_kstr(w, kv[i].key, mask ? "***" : kv[i].value);
    es_jw_obj_end(w);
}

static void write_strv(es_jw *w, const char *key, const char *const *v, size_t n)
{
    es_jw_key(w, key);
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        es_jw_str(w, v[i]);
    es_jw_arr_end(w);
}

/* Env: the key/value pairs, then the "NAME=value" lines; with mask, each
 * value becomes "***". */
static void write_env(es_jw *w, const dk_create_spec *s, es_buf *kv, bool mask)
{
    es_jw_key(w, "Env");
    es_jw_arr(w);
    for (size_t i = 0; i < s->nenv; i++) {
        es_buf_reset_secret(kv);
        int e = es_buf_printf(kv, "%s=%s", s->env[i].key, mask ? "***" : s->env[i].value);
        if (e < 0 && !w->err)
            w->err = e;
        es_jw_strn(w, es_buf_cstr(kv), kv->len);
    }
    for (size_t i = 0; i < s->nenv_lines; i++) {
        const char *line = s->env_lines[i];
        const char *eq = strchr(line, '=');
        if (!mask || !eq) {
            es_jw_str(w, line);
            continue;
        }
        es_buf_reset_secret(kv);
        int e = es_buf_printf(kv, "%.*s=***", (int)(eq - line), line);
        if (e < 0 && !w->err)
            w->err = e;
        es_jw_strn(w, es_buf_cstr(kv), kv->len);
    }
    es_jw_arr_end(w);
}

/* ---- issue 20: dk_create_runtime's members, in Config and in HostConfig ---- */

static void write_strv_if(es_jw *w, const char *key, const char *const *v, size_t n)
{
    if (n)
        write_strv(w, key, v, n);
}

static void write_bool_if(es_jw *w, const char *key, bool v)
{
    if (v)
        es_jw_kbool(w, key, true);
}

#define NS_PER_S 1000000000LL

static void write_healthcheck(es_jw *w, const dk_healthcheck *h)
{
    es_jw_key(w, "Healthcheck");
    es_jw_obj(w);
    write_strv(w, "Test", h->test, h->ntest);
    es_jw_kint(w, "Interval", h->interval_s * NS_PER_S);
    es_jw_kint(w, "Timeout", h->timeout_s * NS_PER_S);
    es_jw_kint(w, "StartPeriod", h->start_period_s * NS_PER_S);
    es_jw_kint(w, "Retries", h->retries);
    es_jw_obj_end(w);
}

static void write_runtime_config(es_jw *w, const dk_create_runtime *rt)
{
    if (rt->hostname && *rt->hostname)
        es_jw_kstr(w, "Hostname", rt->hostname);
    write_bool_if(w, "OpenStdin", rt->open_stdin);
    write_bool_if(w, "Tty", rt->tty);
    write_bool_if(w, "NetworkDisabled", rt->network_disabled);
    if (rt->health && rt->health->ntest)
        write_healthcheck(w, rt->health);
}

static void write_runtime_host(es_jw *w, const dk_create_runtime *rt)
{
    write_strv_if(w, "ExtraHosts", rt->extra_hosts, rt->nextra_hosts);
    write_strv_if(w, "Dns", rt->dns, rt->ndns);
    write_strv_if(w, "DnsSearch", rt->dns_search, rt->ndns_search);
    write_bool_if(w, "Privileged", rt->privileged);
    write_bool_if(w, "ReadonlyRootfs", rt->readonly_rootfs);
    write_strv_if(w, "SecurityOpt", rt->security_opt, rt->nsecurity_opt);
    if (rt->nulimits) {
        es_jw_key(w, "Ulimits");
        es_jw_arr(w);
        for (size_t i = 0; i < rt->nulimits; i++) {
            es_jw_obj(w);
            es_jw_kstr(w, "Name", rt->ulimits[i].name);
            es_jw_kint(w, "Soft", rt->ulimits[i].soft);
            es_jw_kint(w, "Hard", rt->ulimits[i].hard);
            es_jw_obj_end(w);
        }
        es_jw_arr_end(w);
    }
    if (rt->nsysctls)
        write_kv_object(w, "Sysctls", rt->sysctls, rt->nsysctls, false);
    if (rt->has_memory_reservation)
        es_jw_kint(w, "MemoryReservation", rt->memory_reservation_bytes);
    write_strv_if(w, "CapAdd", rt->cap_add, rt->ncap_add);
    write_strv_if(w, "CapDrop", rt->cap_drop, rt->ncap_drop);
    if (rt->ndevices) {
        es_jw_key(w, "Devices");
        es_jw_arr(w);
        for (size_t i = 0; i < rt->ndevices; i++) {
            es_jw_obj(w);
            es_jw_kstr(w, "PathOnHost", rt->devices[i].host);
            es_jw_kstr(w, "PathInContainer", rt->devices[i].container);
            es_jw_kstr(w, "CgroupPermissions", rt->devices[i].permissions);
            es_jw_obj_end(w);
        }
        es_jw_arr_end(w);
    }
    write_bool_if(w, "Init", rt->init);
    if (rt->has_shm_size)
        es_jw_kint(w, "ShmSize", rt->shm_size_bytes);
    if (rt->has_memory_swap)
        es_jw_kint(w, "MemorySwap", rt->memory_swap_bytes);
    if (rt->has_swappiness)
        es_jw_kint(w, "MemorySwappiness", rt->swappiness);
    if (rt->ntmpfs)
        write_kv_object(w, "Tmpfs", rt->tmpfs, rt->ntmpfs, false);
}

static void write_mounts(es_jw *w, const dk_mount *m, size_t n)
{
    es_jw_key(w, "Mounts");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "Type", "bind");
        es_jw_kstr(w, "Source", m[i].source);
        es_jw_kstr(w, "Target", m[i].target);
        if (m[i].read_only)
            es_jw_kbool(w, "ReadOnly", true);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

/* Config.ExposedPorts: {"80/tcp": {}} */
static void write_exposed(es_jw *w, const dk_port *p, size_t n)
{
    char key[32];
    es_jw_key(w, "ExposedPorts");
    es_jw_obj(w);
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%d/%s", p[i].container_port, p[i].protocol);
        es_jw_key(w, key);
        es_jw_obj(w);
        es_jw_obj_end(w);
    }
    es_jw_obj_end(w);
}

/* HostConfig.PortBindings: {"80/tcp": [{"HostPort": "8080"}]}, "" for a
 * port Docker picks */
static void write_bindings(es_jw *w, const dk_port *p, size_t n)
{
    char key[32], host[16];
    es_jw_key(w, "PortBindings");
    es_jw_obj(w);
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%d/%s", p[i].container_port, p[i].protocol);
        snprintf(host, sizeof host, "%d", p[i].host_port);
        es_jw_key(w, key);
        es_jw_arr(w);
        es_jw_obj(w);
        es_jw_kstr(w, "HostPort", p[i].host_port ? host : "");
        es_jw_obj_end(w);
        es_jw_arr_end(w);
    }
    es_jw_obj_end(w);
}

/* The create body; with mask, secret values are replaced by "***". */
static int create_body(const dk_create_spec *s, es_buf *out, bool mask)
{
    if (!s->image || !*s->image)
        return -EINVAL;
    es_jw w;
    es_buf kv;
    es_buf_init(&kv, DK_ENV_LINE_MAX);
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "Image", s->image);
    if (s->cmd)
        write_strv(&w, "Cmd", s->cmd, s->ncmd);
    if (s->entrypoint)
        write_strv(&w, "Entrypoint", s->entrypoint, s->nentrypoint);
    if (s->nenv || s->env_lines) /* env_lines given, even empty: Env: [] */
        write_env(&w, s, &kv, mask);
    if (s->nlabels)
        write_kv_object(&w, "Labels", s->labels, s->nlabels, false);
    if (s->working_dir)
        es_jw_kstr(&w, "WorkingDir", s->working_dir);
    if (s->user)
        es_jw_kstr(&w, "User", s->user);
    if (s->has_stop_timeout)
        es_jw_kint(&w, "StopTimeout", s->stop_timeout_s);
    if (s->rt)
        write_runtime_config(&w, s->rt);
    if (s->nports)
        write_exposed(&w, s->ports, s->nports);
    es_jw_key(&w, "HostConfig");
    es_jw_obj(&w);
    if (s->log_driver) {
        es_jw_key(&w, "LogConfig");
        es_jw_obj(&w);
        es_jw_kstr(&w, "Type", s->log_driver);
        write_kv_object(&w, "Config", s->log_opts, s->nlog_opts, mask);
        es_jw_obj_end(&w);
    }
    if (s->network_mode)
        es_jw_kstr(&w, "NetworkMode", s->network_mode);
    if (s->pid_mode)
        es_jw_kstr(&w, "PidMode", s->pid_mode);
    if (s->ipc_mode)
        es_jw_kstr(&w, "IpcMode", s->ipc_mode);
    if (s->has_memory)
        es_jw_kint(&w, "Memory", s->memory_bytes);
    if (s->has_cpu)
        es_jw_kint(&w, "CpuShares", s->cpu_shares);
    if (s->rt)
        write_runtime_host(&w, s->rt);
    if (s->nmounts)
        write_mounts(&w, s->mounts, s->nmounts);
    write_strv_if(&w, "Binds", s->binds, s->nbinds);
    write_strv_if(&w, "VolumesFrom", s->volumes_from, s->nvolumes_from);
    if (s->nports && s->publish_ports)
        write_bindings(&w, s->ports, s->nports);
    es_jw_obj_end(&w);
    es_jw_obj_end(&w);
    es_buf_free_secret(&kv);
    return es_jw_finish(&w);
}

int dk_create_body(const dk_create_spec *spec, es_buf *out)
{
    return create_body(spec, out, false);
}

int dk_create_spec_dump(const dk_create_spec *spec, es_buf *out)
{
    return create_body(spec, out, true);
}

/* The request of a container create, its body still empty; the body will
 * carry Env and log options, so the request is marked secret (wiped). */
static int create_request(dk_client *c, const char *name, dk_create_cb cb, void *ud,
                          dk__req **r_out)
{
    dk__req *r = op_req(c, OP_CREATE, ud, "POST", true);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.create = cb;
    r->secret = true;
    r->timeout_ms = dk__client_create_timeout(c);
    int e = es_buf_append_str(&r->path, "/containers/create");
    if (!e && name)
        e = es_buf_append_str(&r->path, "?name=");
    if (!e && name)
        e = dk__urlencode(&r->path, name);
    if (e < 0) {
        op_drop(r);
        return e;
    }
    *r_out = r;
    return 0;
}

int dk_container_create(dk_client *c, const dk_create_spec *spec, dk_create_cb cb, void *ud)
{
    dk__req *r;
    int e = create_request(c, spec->name, cb, ud, &r);
    if (e < 0)
        return e;
    /* one allocation for a usual body (none when the block was recycled);
     * under 1 KiB with its NUL, so that glibc serves it from the thread
     * cache (a larger block goes to the arena and may consolidate its fast
     * bins first) */
    int e0 = es_buf_expect(&r->body, 1000);
    return op_submit(c, r, e0 ? e0 : create_body(spec, &r->body, false));
}

int dk_container_create_json(dk_client *c, const char *name, const char *body, size_t len,
                             dk_create_cb cb, void *ud)
{
    dk__req *r;
    int e = create_request(c, name, cb, ud, &r);
    if (e < 0)
        return e;
    return op_submit(c, r, es_buf_append(&r->body, body, len));
}

int dk_container_start(dk_client *c, const char *id, dk_done_cb cb, void *ud)
{
    return id_op(c, OP_START, "POST", id, "/start", dk__client_start_timeout(c), cb, ud);
}

int dk_container_stop(dk_client *c, const char *id, int timeout_s, dk_done_cb cb, void *ud)
{
    if (timeout_s < 0)
        timeout_s = 0;
    char suffix[48];
    snprintf(suffix, sizeof(suffix), "/stop?t=%d", timeout_s);
    /* dockerd answers only after the grace period: wait for it too */
    uint64_t t = (uint64_t)timeout_s * 1000u + DK__DEFAULT_TIMEOUT_MS;
    return id_op(c, OP_STOP, "POST", id, suffix, t, cb, ud);
}

int dk_container_kill(dk_client *c, const char *id, const char *signal, dk_done_cb cb, void *ud)
{
    es_buf s;
    es_buf_init(&s, DK_KILL_PATH_MAX);
    int e = es_buf_append_str(&s, "/kill?signal=");
    if (!e)
        e = dk__urlencode(&s, signal ? signal : "SIGKILL");
    if (!e)
        e = id_op(c, OP_KILL, "POST", id, es_buf_cstr(&s), 0, cb, ud);
    es_buf_free(&s);
    return e;
}

int dk_container_remove(dk_client *c, const char *id, bool force, dk_done_cb cb, void *ud)
{
    return id_op(c, OP_REMOVE, "DELETE", id, force ? "?force=1&v=1" : "?v=1", 0, cb, ud);
}

int dk_container_inspect(dk_client *c, const char *id, dk_inspect_cb cb, void *ud)
{
    if (!id || !*id)
        return -EINVAL;
    dk__req *r = op_req(c, OP_INSPECT, ud, "GET", true);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.inspect = cb;
    return op_submit(c, r, id_path(&r->path, id, "/json"));
}

int dk_container_list(dk_client *c, const char *const *label_filters, size_t nfilters,
                      dk_list_cb cb, void *ud)
{
    es_buf f;
    es_buf_init(&f, DK_LIST_FILTERS_MAX);
    es_jw w;
    es_jw_init(&w, &f);
    es_jw_obj(&w);
    if (nfilters) {
        es_jw_key(&w, "label");
        es_jw_arr(&w);
        for (size_t i = 0; i < nfilters; i++)
            es_jw_str(&w, label_filters[i]);
        es_jw_arr_end(&w);
    }
    es_jw_obj_end(&w);
    int e = es_jw_finish(&w);
    dk__req *r = NULL;
    if (!e && !(r = op_req(c, OP_LIST, ud, "GET", true)))
        e = -ENOMEM;
    if (e) {
        es_buf_free(&f);
        return e;
    }
    ((op *)r->op)->cb.list = cb;
    e = es_buf_append_str(&r->path, "/containers/json?all=1&filters=");
    if (!e)
        e = dk__urlencode(&r->path, es_buf_cstr(&f));
    es_buf_free(&f);
    return op_submit(c, r, e);
}

int dk_image_inspect(dk_client *c, const char *name, dk_image_cb cb, void *ud)
{
    if (!name || !*name)
        return -EINVAL;
    dk__req *r = op_req(c, OP_IMAGE, ud, "GET", true);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.image = cb;
    /* image names contain '/' and ':' which the path keeps as they are */
    es_buf *p = &r->path;
    int e = es_buf_append_str(p, "/images/");
    for (const char *s = name; !e && *s; s++) {
        char one[2] = {*s, 0};
        e = (*s == '/' || *s == ':') ? es_buf_append_char(p, *s) : dk__urlencode(p, one);
    }
    if (!e)
        e = es_buf_append_str(p, "/json");
    return op_submit(c, r, e);
}

/* One progress line: {"status":...} or {"error":"...","errorDetail":{...}}. */
static void pull_line(op *o, const char *s, size_t n)
{
    if (n == 0 || o->pull_error)
        return;
    es_json *j = NULL;
    if (es_json_parse(s, n, &es_json_default_limits, &j, NULL, 0) != 0) {
        o->pull_error = es_strdup("unreadable pull progress line");
        return;
    }
    const char *err = es_json_get_str(j, "error");
    if (!err) {
        const es_json *d = es_json_get(j, "errorDetail");
        err = d ? es_json_get_str(d, "message") : NULL;
    }
    if (err)
        o->pull_error = es_strdup(err);
    es_json_free(j);
}

static int pull_stream(dk__req *r, const char *d, size_t n)
{
    op *o = r->op;
    while (n) {
        const char *nl = memchr(d, '\n', n);
        size_t take = nl ? (size_t)(nl - d) : n;
        if (es_buf_append(&o->line, d, take) < 0)
            return DK_E_LINE_TOO_LONG;
        if (!nl)
            return 0;
        pull_line(o, o->line.data, o->line.len);
        es_buf_reset(&o->line);
        d += take + 1;
        n -= take + 1;
    }
    return 0;
}

static void pull_done(dk__req *r, int err)
{
    op *o = r->op;
    if (!err && r->status >= 200 && r->status < 300 && o->line.len) {
        pull_line(o, o->line.data, o->line.len); /* a last line without LF */
        es_buf_reset(&o->line);
    }
    on_done(r, err);
}

int dk_image_pull(dk_client *c, const char *image, const char *tag, const char *registry_auth,
                  dk_done_cb cb, void *ud)
{
    if (!image || !*image)
        return -EINVAL;
    if (registry_auth && strlen(registry_auth) > DK_REGISTRY_AUTH_MAX)
        return -EMSGSIZE;
    dk__req *r = op_req(c, OP_PULL, ud, "POST", true);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.done = cb;
    es_buf *p = &r->path;
    int e = es_buf_append_str(p, "/images/create?fromImage=");
    if (!e)
        e = dk__urlencode(p, image);
    if (!e && tag && *tag) {
        e = es_buf_append_str(p, "&tag=");
        if (!e)
            e = dk__urlencode(p, tag);
    }
    r->done = pull_done;
    r->stream = pull_stream;
    r->no_timeout_after_head = false; /* a pull is bounded by the request timeout */
    r->timeout_ms = 10u * 60u * 1000u;
    if (!e && registry_auth) {
        r->secret = true;
        for (const char *s = registry_auth; *s; s++)
            if (*s == '\r' || *s == '\n')
                e = -EINVAL;
        if (!e)
            e = es_buf_printf(&r->extra, "X-Registry-Auth: %s\r\n", registry_auth);
    }
    return op_submit(c, r, e);
}

/* ---- volumes ---- */

int dk_volume_create_body(const dk_volume_spec *s, es_buf *out)
{
    if (!s->name || !*s->name || strlen(s->name) > DK_VOLUME_NAME_MAX)
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "Name", s->name);
    es_jw_kstr(&w, "Driver", s->driver ? s->driver : "local");
    write_kv_object(&w, "DriverOpts", s->driver_opts, s->ndriver_opts, false);
    write_kv_object(&w, "Labels", s->labels, s->nlabels, false);
    es_jw_obj_end(&w);
    return es_jw_finish(&w);
}

int dk_volume_create(dk_client *c, const dk_volume_spec *spec, dk_done_cb cb, void *ud)
{
    dk__req *r = op_req(c, OP_VOLUME, ud, "POST", true);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.done = cb;
    int e = es_buf_append_str(&r->path, "/volumes/create");
    if (!e)
        e = dk_volume_create_body(spec, &r->body);
    return op_submit(c, r, e);
}

static int volume_op(dk_client *c, const char *method, const char *name, dk_done_cb cb, void *ud)
{
    if (!name || !*name || strlen(name) > DK_VOLUME_NAME_MAX)
        return -EINVAL;
    dk__req *r = op_req(c, OP_VOLUME, ud, method, true);
    if (!r)
        return -ENOMEM;
    ((op *)r->op)->cb.done = cb;
    int e = es_buf_append_str(&r->path, "/volumes/");
    if (!e)
        e = dk__urlencode(&r->path, name);
    return op_submit(c, r, e);
}

int dk_volume_inspect(dk_client *c, const char *name, dk_done_cb cb, void *ud)
{
    return volume_op(c, "GET", name, cb, ud);
}

int dk_volume_remove(dk_client *c, const char *name, dk_done_cb cb, void *ud)
{
    return volume_op(c, "DELETE", name, cb, ud);
}
