/* inject.c - see inject.h. */
#include "agent/secrets/inject.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent/tasks/td_awslogs.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/secure.h"

static const char *target_path(ag_secret_target t)
{
    return t == AG_SECRET_ENV ? "secrets" : "logConfiguration.secretOptions";
}

/* ---- helpers over the params ---- */

static void free_kvs(ag_kv *kv, size_t n, bool secret_values)
{
    if (!kv)
        return;
    for (size_t i = 0; i < n; i++) {
        es_free(kv[i].name);
        secret_values ? es_free_secret_str(kv[i].value) : es_free(kv[i].value);
    }
    es_free(kv);
}

void ag_create_params_free(ag_create_params *p)
{
    if (!p)
        return;
    es_free(p->name);
    es_free(p->image);
    es_strv_free(p->cmd, p->n_cmd, false);
    es_strv_free(p->entrypoint, p->n_entrypoint, false);
    es_strv_free(p->env, p->n_env, true);
    free_kvs(p->labels, p->n_labels, false);
    es_free(p->log_type);
    free_kvs(p->log_config, p->n_log_config, true);
    es_free(p->working_dir);
    es_free(p->user);
    es_free(p->network_mode);
    es_free(p->pid_mode);
    es_free(p->ipc_mode);
    es_free(p->label_views);
    es_free(p->log_views);
    es_strv_free(p->extra_hosts, p->n_extra_hosts, false);
    es_free(p->ulimit_views);
    es_free(p->sysctl_views);
    es_free(p->device_views);
    es_free(p->device_perms);
    for (size_t i = 0; p->tmpfs_views && i < p->rt.ntmpfs; i++)
        es_free((char *)p->tmpfs_views[i].value);
    es_free(p->tmpfs_views);
    es_free(p);
}

static char **dup_strv(char *const *v, size_t n)
{
    char **d = es_calloc(n + 1, sizeof *d);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(d[i] = es_strdup(v[i]))) {
            es_strv_free(d, i, false);
            return NULL;
        }
    return d;
}

/* A borrowed (name, value) pair while the lists are merged. */
typedef struct pair {
    const char *name; /* nlen bytes: an expansion's names end at '=' */
    size_t nlen;
    const char *value;
    size_t len;
} pair;

/* Sets name (nlen bytes) in list (replacing in place, else appending). */
static void put_n(pair *list, size_t *n, const char *name, size_t nlen, const char *value,
                  size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if (list[i].nlen == nlen && memcmp(list[i].name, name, nlen) == 0) {
            list[i].value = value;
            list[i].len = len;
            return;
        }
    list[*n] = (pair){name, nlen, value, len};
    (*n)++;
}

static void put(pair *list, size_t *n, const char *name, const char *value, size_t len)
{
    put_n(list, n, name, strlen(name), value, len);
}

/* The variables of a "NAME=VALUE\0" list (an expansion's, expand.h, or
 * a container's environment files', envfile.h). */
static size_t list_count(const char *list, size_t len)
{
    size_t k = 0;
    for (size_t o = 0; o < len; o += strnlen(list + o, len - o) + 1)
        k++;
    return k;
}

static void put_list(pair *list, size_t *n, const char *vars, size_t len)
{
    for (size_t o = 0; o < len;) {
        const char *e = vars + o;
        size_t el = strnlen(e, len - o);
        const char *eq = memchr(e, '=', el);
        if (eq)
            put_n(list, n, e, (size_t)(eq - e), eq + 1, el - (size_t)(eq - e) - 1);
        o += el + 1;
    }
}

/* Every expansion label of cd has exactly one value, and no expansion value
 * is for a label cd does not have. */
static int check_expansions(const ag_container_def *cd, const ag_secret_value *values,
                            size_t n_values, char *err, size_t errlen)
{
    for (size_t x = 0; x < cd->n_expands; x++) {
        size_t count = 0;
        for (size_t i = 0; i < n_values; i++)
            count += values[i].expand && values[i].name &&
                     strcmp(values[i].name, cd->expands[x].ref->name) == 0;
        if (count != 1)
            return es_errf(err, errlen, -EINVAL, "container %s: dockerLabels %s: %s", cd->name,
                           cd->expands[x].ref->name,
                           count ? "more than one value given" : "no value was resolved");
    }
    for (size_t i = 0; i < n_values; i++) {
        bool declared = !values[i].expand;
        for (size_t x = 0; x < cd->n_expands && !declared; x++)
            declared = values[i].name && strcmp(values[i].name, cd->expands[x].ref->name) == 0;
        if (!declared)
            return es_errf(err, errlen, -EINVAL,
                           "container %s: an expansion was given for %s, which the definition "
                           "does not declare",
                           cd->name, values[i].name ? values[i].name : "(null)");
    }
    return 0;
}

static const ag_secret_value *find_value(const ag_secret_value *v, size_t n, ag_secret_target t,
                                         const char *name, size_t *count)
{
    const ag_secret_value *found = NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].target == t && v[i].name && strcmp(v[i].name, name) == 0) {
            found = &v[i];
            (*count)++;
        }
    return found;
}

/* Checks that the declared secrets of one kind all have exactly one usable value. */
static int check_values(const ag_container_def *cd, const ag_secret_ref *refs, size_t nrefs,
                        ag_secret_target t, const ag_secret_value *values, size_t n_values,
                        char *err, size_t errlen)
{
    const char *cname = cd->name;
    for (size_t i = 0; i < nrefs; i++) {
        size_t count = 0;
        const ag_secret_value *v = find_value(values, n_values, t, refs[i].name, &count);
        if (!v)
            return es_errf(err, errlen, -ENOENT, "container %s: %s %s: no value was resolved",
                           cname, target_path(t), refs[i].name);
        if (count > 1)
            return es_errf(err, errlen, -EINVAL, "container %s: %s %s: more than one value given",
                           cname, target_path(t), refs[i].name);
        /* a file (td_files.h) carries any bytes, binary and NUL included */
        if (t == AG_SECRET_ENV && ag_td_file_for(cd, refs[i].name))
            continue;
        if (v->binary)
            return es_errf(err, errlen, -EINVAL,
                           "container %s: %s %s: the secret is binary (SecretBinary) and cannot be "
                           "set as %s",
                           cname, target_path(t), refs[i].name,
                           t == AG_SECRET_ENV ? "an environment variable" : "a log driver option");
        if (v->len > AG_SECRET_VALUE_MAX)
            return es_errf(err, errlen, -EINVAL,
                           "container %s: %s %s: the value is longer than %d bytes", cname,
                           target_path(t), refs[i].name, AG_SECRET_VALUE_MAX);
        if (v->len && (!v->value || memchr(v->value, '\0', v->len)))
            return es_errf(err, errlen, -EINVAL,
                           "container %s: %s %s: the value holds a NUL byte, which %s cannot carry",
                           cname, target_path(t), refs[i].name,
                           t == AG_SECRET_ENV ? "an environment variable" : "a log driver option");
    }
    /* and no value for something the definition does not declare */
    for (size_t i = 0; i < n_values; i++) {
        if (values[i].target != t || values[i].expand)
            continue;
        bool declared = false;
        for (size_t j = 0; j < nrefs && !declared; j++)
            declared = values[i].name && strcmp(values[i].name, refs[j].name) == 0;
        if (!declared)
            return es_errf(err, errlen, -EINVAL,
                           "container %s: a value was given for %s %s, which the definition does "
                           "not declare",
                           cname, target_path(t), values[i].name ? values[i].name : "(null)");
    }
    return 0;
}

static char *join_env(const pair *p)
{
    size_t nl = p->nlen;
    char *s = es_malloc(nl + 1 + p->len + 1);
    if (!s)
        return NULL;
    memcpy(s, p->name, nl);
    s[nl] = '=';
    if (p->len)
        memcpy(s + nl + 1, p->value, p->len);
    s[nl + 1 + p->len] = '\0';
    return s;
}

static int build_env(const ag_container_def *cd, const ag_container_override *ov,
                     const ag_secret_value *values, size_t n_values, const ag_inject_ctx *ctx,
                     ag_create_params *p)
{
    size_t cap = cd->n_environment + (ov ? ov->n_environment : 0) + cd->n_secrets +
                 ctx->n_agent_env + list_count(ctx->envfile_env, ctx->envfile_len);
    for (size_t i = 0; i < n_values; i++)
        cap += values[i].expand ? list_count(values[i].value, values[i].len) : 0;
    pair *list = es_calloc(cap + 1, sizeof *list);
    if (!list)
        return -ENOMEM;
    size_t n = 0;
    /* the environment files first: every later source replaces their
     * variables (ECS: environment wins over the files, secrets over all) */
    put_list(list, &n, ctx->envfile_env, ctx->envfile_len);
    for (size_t i = 0; i < cd->n_environment; i++)
        put(list, &n, cd->environment[i].name, cd->environment[i].value,
            strlen(cd->environment[i].value));
    for (size_t i = 0; ov && i < ov->n_environment; i++)
        put(list, &n, ov->environment[i].name, ov->environment[i].value,
            strlen(ov->environment[i].value));
    for (size_t i = 0; i < cd->n_secrets; i++) {
        if (ag_td_file_for(cd, cd->secrets[i].name))
            continue; /* a file (agent/secrets/files.h), never in Env */
        size_t count;
        const ag_secret_value *v =
            find_value(values, n_values, AG_SECRET_ENV, cd->secrets[i].name, &count);
        if (!v) { /* check_values ran first; kept for the compiler and for safety */
            es_free(list);
            return -EINVAL;
        }
        put(list, &n, cd->secrets[i].name, v->value, v->len);
    }
    /* an expansion's names are checked at resolution against environment
     * and secrets (expand.h); over a RunTask override's, they win as a
     * secret does */
    for (size_t i = 0; i < n_values; i++)
        if (values[i].expand)
            put_list(list, &n, values[i].value, values[i].len);
    /* the agent's own (the container endpoints'): as ECS's agent, they win */
    for (size_t i = 0; i < ctx->n_agent_env; i++) {
        const char *eq = strchr(ctx->agent_env[i], '=');
        if (eq)
            put_n(list, &n, ctx->agent_env[i], (size_t)(eq - ctx->agent_env[i]), eq + 1,
                  strlen(eq + 1));
    }
    int r = 0;
    p->env = es_calloc(n + 1, sizeof *p->env);
    if (!p->env) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(p->env[i] = join_env(&list[i]))) {
            r = -ENOMEM;
            goto out;
        }
        p->n_env = i + 1;
    }
out:
    /* the list only borrowed pointers; wipe it anyway, it pointed at values */
    es_wipe(list, (cap + 1) * sizeof *list);
    es_free(list);
    return r;
}

static int build_log(const ag_container_def *cd, const ag_secret_value *values, size_t n_values,
                     const ag_inject_ctx *ctx, ag_create_params *p)
{
    const ag_logconf *l = cd->log;
    if (!l)
        return 0;
    if (!(p->log_type = es_strdup(l->driver)))
        return -ENOMEM;
    size_t cap = l->n_options + l->n_secret_options;
    pair *list = es_calloc(cap + 1, sizeof *list);
    if (!list)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < l->n_options; i++)
        put(list, &n, l->options[i].name, l->options[i].value, strlen(l->options[i].value));
    for (size_t i = 0; i < l->n_secret_options; i++) {
        size_t count;
        const ag_secret_value *v =
            find_value(values, n_values, AG_SECRET_LOG, l->secret_options[i].name, &count);
        if (!v) {
            es_free(list);
            return -EINVAL;
        }
        put(list, &n, l->secret_options[i].name, v->value, v->len);
    }
    int r = 0;
    /* awslogs: room for what ECS adds (td_awslogs.h) */
    bool awslogs = strcmp(l->driver, AG_AWSLOGS_DRIVER) == 0;
    size_t room = n + (awslogs ? AG_AWSLOGS_ADDED_MAX : 0);
    p->log_config = es_calloc(room + 1, sizeof *p->log_config);
    if (!p->log_config) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ag_kv *kv = &p->log_config[i];
        kv->name = es_strdup(list[i].name);
        kv->value = es_strndup(list[i].len ? list[i].value : "", list[i].len);
        p->n_log_config = i + 1;
        if (!kv->name || !kv->value) {
            r = -ENOMEM;
            goto out;
        }
    }
    if (awslogs) {
        ag_awslogs_launch al = {.container = cd->name,
                                .task_id = ctx->task_id ? ctx->task_id : "",
                                .region = ctx->region,
                                .credentials_uri = ctx->log_credentials_uri};
        r = ag_awslogs_apply(p->log_config, &p->n_log_config, room, &al);
    }
out:
    es_wipe(list, (cap + 1) * sizeof *list);
    es_free(list);
    return r;
}

static const char *const reserved_labels[] = {
    "com.amazonaws.ecs.task-arn",
    "com.amazonaws.ecs.container-name",
    "com.amazonaws.ecs.task-definition-family",
    "com.amazonaws.ecs.task-definition-version",
    "com.amazonaws.ecs.cluster",
    "com.amazonaws.ecs.container-instance-arn", /* set in a cluster only */
};
#define N_RESERVED (sizeof reserved_labels / sizeof *reserved_labels)

static int build_labels(const ag_container_def *cd, const ag_inject_ctx *ctx, ag_create_params *p)
{
    p->labels = es_calloc(cd->n_docker_labels + N_RESERVED + 1, sizeof *p->labels);
    if (!p->labels)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < cd->n_docker_labels; i++) {
        bool ours = false;
        for (size_t j = 0; j < N_RESERVED && !ours; j++)
            ours = strcmp(cd->docker_labels[i].name, reserved_labels[j]) == 0;
        if (ours)
            continue;
        p->labels[n].name = es_strdup(cd->docker_labels[i].name);
        p->labels[n].value = es_strdup(cd->docker_labels[i].value);
        p->n_labels = ++n;
        if (!p->labels[n - 1].name || !p->labels[n - 1].value)
            return -ENOMEM;
    }
    char rev[24];
    snprintf(rev, sizeof rev, "%" PRId64, ctx->revision);
    const char *vals[N_RESERVED] = {ctx->task_arn, cd->name,     ctx->family,
                                    rev,           ctx->cluster, ctx->instance_arn};
    for (size_t j = 0; j < N_RESERVED; j++) {
        if (j == N_RESERVED - 1 && !ctx->instance_arn)
            break; /* alone: the labels are as they always were */
        p->labels[n].name = es_strdup(reserved_labels[j]);
        p->labels[n].value = es_strdup(vals[j] ? vals[j] : "");
        p->n_labels = ++n;
        if (!p->labels[n - 1].name || !p->labels[n - 1].value)
            return -ENOMEM;
    }
    return 0;
}

int ag_container_name(const char *family, int64_t revision, const char *name, char *out,
                      size_t outlen)
{
    unsigned char raw[8];
    if (es_random_bytes(raw, sizeof raw) != 0)
        return -EIO;
    char hex[2 * sizeof raw + 1];
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    int n = snprintf(out, outlen, "ecs-%s-%" PRId64 "-%s-%s", family, revision, name, hex);
    if (n < 0 || (size_t)n >= outlen)
        return -EMSGSIZE;
    /* Docker: [a-zA-Z0-9][a-zA-Z0-9_.-]+ ("ecs-" starts it right) */
    for (char *c = out; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-'))
            *c = '-';
    return 0;
}

static dk_kv *kv_views(const ag_kv *kv, size_t n)
{
    dk_kv *v = es_calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = (dk_kv){kv[i].name, kv[i].value};
    return v;
}

/* ---- issue 20: the runtime members into spec.rt ---- */

static int runtime_lists(const ag_container_runtime *r, ag_create_params *p)
{
    size_t n = r->n_extra_hosts;
    if (n && !(p->extra_hosts = es_calloc(n + 1, sizeof *p->extra_hosts)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        /* Docker splits "host:ip" at the first ':', so an IPv6 address is fine */
        size_t la = strlen(r->extra_hosts[i].a), lb = strlen(r->extra_hosts[i].b);
        char *line = es_malloc(la + lb + 2);
        if (!line)
            return -ENOMEM;
        snprintf(line, la + lb + 2, "%s:%s", r->extra_hosts[i].a, r->extra_hosts[i].b);
        p->extra_hosts[i] = line;
        p->n_extra_hosts = i + 1;
    }
    if (r->n_ulimits && !(p->ulimit_views = es_calloc(r->n_ulimits, sizeof *p->ulimit_views)))
        return -ENOMEM;
    for (size_t i = 0; i < r->n_ulimits; i++)
        p->ulimit_views[i] =
            (dk_ulimit){r->ulimits[i].name, r->ulimits[i].soft, r->ulimits[i].hard};
    if (r->n_sysctls && !(p->sysctl_views = es_calloc(r->n_sysctls, sizeof *p->sysctl_views)))
        return -ENOMEM;
    for (size_t i = 0; i < r->n_sysctls; i++)
        p->sysctl_views[i] = (dk_kv){r->sysctls[i].a, r->sysctls[i].b};
    return 0;
}

/* linuxParameters.devices: permissions read/write/mknod as Docker's "rwm"
 * (all three when none is given, as docker run does) */
static int linux_devices(const ag_linux_params *l, ag_create_params *p)
{
    size_t n = l->n_devices;
    if (!n)
        return 0;
    p->device_views = es_calloc(n, sizeof *p->device_views);
    p->device_perms = es_calloc(n, sizeof *p->device_perms);
    if (!p->device_views || !p->device_perms)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const ag_device *d = &l->devices[i];
        char *perm = p->device_perms[i];
        size_t k = 0;
        for (size_t j = 0; j < d->n_permissions; j++) {
            char c = d->permissions[j][0] == 'r' ? 'r' : d->permissions[j][0] == 'w' ? 'w' : 'm';
            if (!memchr(perm, c, k))
                perm[k++] = c;
        }
        if (!k)
            memcpy(perm, "rwm", k = 3);
        perm[k] = '\0';
        p->device_views[i] =
            (dk_device){d->host_path, d->container_path ? d->container_path : d->host_path, perm};
    }
    p->rt.devices = p->device_views;
    p->rt.ndevices = n;
    return 0;
}

/* linuxParameters.tmpfs: Docker's Tmpfs map, "size=<MiB>m" then the options,
 * as the ECS agent writes it */
static int linux_tmpfs(const ag_linux_params *l, ag_create_params *p)
{
    size_t n = l->n_tmpfs;
    if (!n)
        return 0;
    if (!(p->tmpfs_views = es_calloc(n, sizeof *p->tmpfs_views)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const ag_tmpfs *t = &l->tmpfs[i];
        es_buf b;
        es_buf_init(&b, (AG_TD_MOUNT_OPTION_MAX + 1) * (AG_TD_MOUNT_OPTIONS_MAX + 1));
        int r = es_buf_printf(&b, "size=%" PRId64 "m", t->size);
        for (size_t j = 0; !r && j < t->n_mount_options; j++)
            r = es_buf_printf(&b, ",%s", t->mount_options[j]);
        char *opts = r ? NULL : es_buf_steal(&b);
        if (!opts) {
            es_buf_free(&b);
            return -ENOMEM;
        }
        p->tmpfs_views[i] = (dk_kv){t->container_path, opts};
        p->rt.ntmpfs = i + 1;
    }
    p->rt.tmpfs = p->tmpfs_views;
    return 0;
}

/* linuxParameters into spec.rt: capabilities, devices, init, shm, tmpfs and
 * swap (MemorySwap = memory + maxSwap, as ECS; swappiness only with maxSwap,
 * 60 when not given, as ECS) */
static int build_linux(const ag_container_def *cd, ag_create_params *p)
{
    const ag_linux_params *l = cd->rt.linux_params;
    if (!l)
        return 0;
    p->rt.cap_add = (const char *const *)l->cap_add;
    p->rt.ncap_add = l->n_cap_add;
    p->rt.cap_drop = (const char *const *)l->cap_drop;
    p->rt.ncap_drop = l->n_cap_drop;
    p->rt.init = l->init.value;
    p->rt.has_shm_size = l->has_shm_size;
    p->rt.shm_size_bytes = l->shm_size * 1024 * 1024;
    if (l->has_max_swap) {
        p->rt.has_memory_swap = true;
        p->rt.memory_swap_bytes = (cd->memory + l->max_swap) * 1024 * 1024;
        p->rt.has_swappiness = true;
        p->rt.swappiness = l->has_swappiness ? l->swappiness : AG_TD_SWAPPINESS_DEFAULT;
    }
    if (linux_devices(l, p) || linux_tmpfs(l, p))
        return -ENOMEM;
    return 0;
}

static int build_runtime(const ag_container_def *cd, ag_create_params *p)
{
    const ag_container_runtime *r = &cd->rt;
    if (runtime_lists(r, p))
        return -ENOMEM;
    p->rt = (dk_create_runtime){
        .hostname = r->hostname,
        .open_stdin = r->interactive.value,
        .tty = r->pseudo_terminal.value,
        .network_disabled = r->disable_networking.value,
        .extra_hosts = (const char *const *)p->extra_hosts,
        .nextra_hosts = p->n_extra_hosts,
        .dns = (const char *const *)r->dns_servers,
        .ndns = r->n_dns_servers,
        .dns_search = (const char *const *)r->dns_search,
        .ndns_search = r->n_dns_search,
        .privileged = r->privileged.value,
        .readonly_rootfs = r->readonly_rootfs.value,
        .security_opt = (const char *const *)r->security_opts,
        .nsecurity_opt = r->n_security_opts,
        .ulimits = p->ulimit_views,
        .nulimits = r->n_ulimits,
        .sysctls = p->sysctl_views,
        .nsysctls = r->n_sysctls,
        .has_memory_reservation = r->has_memory_reservation,
        .memory_reservation_bytes = r->memory_reservation * 1024 * 1024,
    };
    const ag_healthcheck *h = r->health_check;
    if (h) {
        p->health = (dk_healthcheck){.test = (const char *const *)h->command,
                                     .ntest = h->n_command,
                                     .interval_s = ag_hc_interval(h),
                                     .timeout_s = ag_hc_timeout(h),
                                     .start_period_s = ag_hc_start_period(h),
                                     .retries = ag_hc_retries(h)};
        p->rt.health = &p->health;
    }
    return build_linux(cd, p);
}

/* The Docker create spec over the params' own strings. */
static int make_spec(ag_create_params *p)
{
    if (!(p->label_views = kv_views(p->labels, p->n_labels)) ||
        !(p->log_views = kv_views(p->log_config, p->n_log_config)))
        return -ENOMEM;
    p->spec = (dk_create_spec){
        .name = p->name,
        .image = p->image,
        .cmd = (const char *const *)p->cmd,
        .ncmd = p->n_cmd,
        .entrypoint = (const char *const *)p->entrypoint,
        .nentrypoint = p->n_entrypoint,
        .env_lines = (const char *const *)p->env,
        .nenv_lines = p->n_env,
        .labels = p->label_views,
        .nlabels = p->n_labels,
        .working_dir = p->working_dir,
        .user = p->user,
        .has_stop_timeout = p->has_stop_timeout,
        .stop_timeout_s = p->stop_timeout,
        .log_driver = p->log_type,
        .log_opts = p->log_views,
        .nlog_opts = p->n_log_config,
        .network_mode = p->network_mode,
        .pid_mode = p->pid_mode,
        .ipc_mode = p->ipc_mode,
        .has_memory = p->has_memory,
        .has_cpu = p->has_cpu,
        .memory_bytes = p->memory_bytes,
        .cpu_shares = p->cpu_shares,
        .rt = &p->rt,
        .mounts = p->mounts,
        .nmounts = p->n_mounts,
    };
    return 0;
}

int ag_inject_build(const ag_container_def *cd, const ag_container_override *ov,
                    const ag_secret_value *values, size_t n_values, const ag_inject_ctx *ctx,
                    ag_create_params **out, char *err, size_t errlen)
{
    if (!cd || !ctx || (n_values && !values))
        return es_errf(err, errlen, -EINVAL, "missing container definition or context");
    if (ov && strcmp(ov->name, cd->name) != 0)
        return es_errf(err, errlen, -EINVAL, "container %s: the override is for container %s",
                       cd->name, ov->name);
    int r =
        check_values(cd, cd->secrets, cd->n_secrets, AG_SECRET_ENV, values, n_values, err, errlen);
    if (r)
        return r;
    if (cd->log)
        r = check_values(cd, cd->log->secret_options, cd->log->n_secret_options, AG_SECRET_LOG,
                         values, n_values, err, errlen);
    else
        r = check_values(cd, NULL, 0, AG_SECRET_LOG, values, n_values, err, errlen);
    if (!r)
        r = check_expansions(cd, values, n_values, err, errlen);
    if (r)
        return r;

    ag_create_params *p = es_calloc(1, sizeof *p);
    if (!p)
        return es_errf(err, errlen, -ENOMEM, "out of memory");
    char name[AG_TD_NAME_MAX * 2 + 64];
    if ((r = ag_container_name(ctx->family, ctx->revision, cd->name, name, sizeof name))) {
        es_errf(err, errlen, r, "container %s: cannot name the Docker container", cd->name);
        goto fail;
    }
    r = -ENOMEM;
    if (!(p->name = es_strdup(name)) || !(p->image = es_strdup(cd->image)))
        goto nomem;
    char *const *cmd = ov && ov->command ? ov->command : cd->command;
    size_t n_cmd = ov && ov->command ? ov->n_command : cd->n_command;
    if (cmd) {
        if (!(p->cmd = dup_strv(cmd, n_cmd)))
            goto nomem;
        p->n_cmd = n_cmd;
    }
    if (cd->entry_point) {
        if (!(p->entrypoint = dup_strv(cd->entry_point, cd->n_entry_point)))
            goto nomem;
        p->n_entrypoint = cd->n_entry_point;
    }
    if (build_env(cd, ov, values, n_values, ctx, p))
        goto nomem;
    r = build_log(cd, values, n_values, ctx, p);
    if (r == -EMSGSIZE) {
        es_errf(err, errlen, r,
                "container %s: logConfiguration: the awslogs stream's name would be longer "
                "than %d characters",
                cd->name, AG_AWSLOGS_STREAM_MAX);
        goto fail;
    }
    if (r || build_labels(cd, ctx, p))
        goto nomem;
    if ((cd->working_directory && !(p->working_dir = es_strdup(cd->working_directory))) ||
        (cd->user && !(p->user = es_strdup(cd->user))) ||
        (ctx->network_mode && !(p->network_mode = es_strdup(ctx->network_mode))) ||
        (ctx->pid_mode && !(p->pid_mode = es_strdup(ctx->pid_mode))) ||
        (ctx->ipc_mode && !(p->ipc_mode = es_strdup(ctx->ipc_mode))))
        goto nomem;
    p->has_stop_timeout = cd->has_stop_timeout;
    p->stop_timeout = cd->stop_timeout;
    p->has_memory = cd->has_memory;
    p->memory_bytes = cd->memory * 1024 * 1024;
    p->has_cpu = cd->has_cpu;
    p->cpu_shares = cd->cpu < 2 ? 2 : cd->cpu; /* Docker's minimum share is 2 */
    p->mounts = ctx->mounts;
    p->n_mounts = ctx->nmounts;
    if (build_runtime(cd, p) < 0 || make_spec(p) < 0)
        goto nomem;
    *out = p;
    if (err && errlen)
        err[0] = '\0';
    return 0;
nomem:
    es_errf(err, errlen, -ENOMEM, "out of memory");
    r = -ENOMEM;
fail:
    ag_create_params_free(p);
    return r;
}
