/* td_runtime.c - see td_runtime.h.
 *
 * The small readers below (str, int, bool, string list) mirror taskdef.c's,
 * which are private to it; they share the error record and its wording. */
#include "agent/tasks/td_runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/tasks/taskdef.h"
#include "agent/tasks/td_json.h"
#include "common/alloc.h"
#include "common/secure.h"
#include "common/utf8.h"

#define CLIENT "ClientException"
#define INVALID "InvalidParameterException"
#define RT_PATH_MAX AG_TD_FIELD_PATH_MAX
#define INT32_MAX_ 2147483647

typedef bool (*str_check)(const char *s);

/* A list of strings, each checked by ok (NULL: any); why says what ok wants. */
static int strv_member(const es_json *obj, const char *path, const char *key, size_t max_items,
                       size_t max_len, str_check ok, const char *why, char ***out, size_t *n_out,
                       ag_td_error *e)
{
    char lp[RT_PATH_MAX];
    int rc;
    const es_json *arr = ag_td_list_member(obj, path, key, max_items, lp, sizeof lp, &rc, e);
    if (!arr)
        return rc;
    size_t n = es_json_len(arr);
    char **v = es_calloc(n + 1, sizeof *v);
    if (!v)
        return ag_td_nomem(e);
    *out = v;
    for (size_t i = 0; i < n; i++) {
        char ip[RT_PATH_MAX];
        ag_td_pathf(ip, sizeof ip, "%s[%zu]", lp, i);
        if ((rc = ag_td_str_at(es_json_at(arr, i), ip, max_len, false, &v[i], e)))
            return rc;
        *n_out = i + 1;
        if (ok && !ok(v[i]))
            return ag_td_bad(e, CLIENT, "%s: '%.64s' %s", ip, v[i], why);
    }
    *n_out = n;
    return 0;
}

/* ---- checks ---- */

static bool ip_address(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A DNS name: letters, digits, '-', '.', '_' (what resolv.conf and
 * /etc/hosts carry; no space, no ':' which Docker's "host:ip" splits on). */
static bool dns_name(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.' || *s == '_'))
            return false;
    return true;
}

/* ECS's dockerSecurityOptions values on Linux. */
static bool security_opt(const char *s)
{
    return strcmp(s, "no-new-privileges") == 0 || strcmp(s, "no-new-privileges:true") == 0 ||
           strcmp(s, "no-new-privileges:false") == 0 || (strncmp(s, "apparmor:", 9) == 0 && s[9]) ||
           (strncmp(s, "label:", 6) == 0 && s[6]);
}

static const char *const ulimit_names[] = {
    "core",   "cpu",   "data", "fsize",  "locks",  "memlock",    "msgqueue", "nice",
    "nofile", "nproc", "rss",  "rtprio", "rttime", "sigpending", "stack",
};

/* The sysctls Docker lets a container set in its own namespaces. */
static const char *const ipc_sysctls[] = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
};

static bool is_host_mode(const ag_td_rt_ctx *ctx)
{
    return ctx && ctx->network_mode && strcmp(ctx->network_mode, "host") == 0;
}

/* ---- members ---- */

static int get_hostname(const es_json *cd, const char *path, ag_container_runtime *rt,
                        ag_td_error *e)
{
    const es_json *j = ag_td_member(cd, "hostname");
    if (!j)
        return 0;
    char p[RT_PATH_MAX];
    ag_td_pathf(p, sizeof p, "%s.hostname", path);
    /* "" is an empty value that says nothing (Docker's default), kept as given */
    int rc = ag_td_str_at(j, p, AG_TD_HOSTNAME_MAX, true, &rt->hostname, e);
    if (rc)
        return rc;
    if (!dns_name(rt->hostname))
        return ag_td_bad(e, CLIENT, "%s: only letters, digits, '-', '.' and '_' are allowed", p);
    return 0;
}

static int get_extra_hosts(const es_json *cd, const char *path, ag_container_runtime *rt,
                           ag_td_error *e)
{
    char lp[RT_PATH_MAX];
    int rc;
    const es_json *arr =
        ag_td_list_member(cd, path, "extraHosts", AG_TD_EXTRA_HOSTS_MAX, lp, sizeof lp, &rc, e);
    if (!arr)
        return rc;
    size_t n = es_json_len(arr);
    if (!(rt->extra_hosts = es_calloc(n + 1, sizeof *rt->extra_hosts)))
        return ag_td_nomem(e);
    for (size_t i = 0; i < n; i++) {
        char ip[RT_PATH_MAX];
        ag_td_pathf(ip, sizeof ip, "%s[%zu]", lp, i);
        const es_json *it = es_json_at(arr, i);
        if (it->type != ES_JSON_OBJECT)
            return ag_td_bad(e, INVALID, "%s: must be an object {hostname, ipAddress}", ip);
        ag_pair *h = &rt->extra_hosts[i];
        rt->n_extra_hosts = i + 1;
        if ((rc = ag_td_str_member(it, ip, "hostname", AG_TD_DNS_NAME_MAX, true, &h->a, e)) ||
            (rc = ag_td_str_member(it, ip, "ipAddress", 64, true, &h->b, e)))
            return rc;
        if (!dns_name(h->a))
            return ag_td_bad(e, CLIENT,
                             "%s.hostname: only letters, digits, '-', '.' and '_' are allowed", ip);
        if (!ip_address(h->b))
            return ag_td_bad(e, CLIENT, "%s.ipAddress: not an IPv4 or IPv6 address", ip);
    }
    return 0;
}

static int get_ulimits(const es_json *cd, const char *path, ag_container_runtime *rt,
                       ag_td_error *e)
{
    char lp[RT_PATH_MAX];
    int rc;
    const es_json *arr =
        ag_td_list_member(cd, path, "ulimits", AG_TD_ULIMITS_MAX, lp, sizeof lp, &rc, e);
    if (!arr)
        return rc;
    size_t n = es_json_len(arr);
    if (!(rt->ulimits = es_calloc(n + 1, sizeof *rt->ulimits)))
        return ag_td_nomem(e);
    for (size_t i = 0; i < n; i++) {
        char ip[RT_PATH_MAX];
        ag_td_pathf(ip, sizeof ip, "%s[%zu]", lp, i);
        const es_json *it = es_json_at(arr, i);
        if (it->type != ES_JSON_OBJECT)
            return ag_td_bad(e, INVALID, "%s: must be an object {name, softLimit, hardLimit}", ip);
        ag_ulimit *u = &rt->ulimits[i];
        rt->n_ulimits = i + 1;
        if ((rc = ag_td_str_member(it, ip, "name", 16, true, &u->name, e)))
            return rc;
        if (!ag_td_in_list(u->name, ulimit_names, sizeof ulimit_names / sizeof *ulimit_names))
            return ag_td_bad(
                e, CLIENT,
                "%s.name: '%s' is not one of core, cpu, data, fsize, locks, memlock, "
                "msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack",
                ip, u->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(rt->ulimits[j].name, u->name) == 0)
                return ag_td_bad(e, CLIENT, "%s.name: a second ulimit %s", ip, u->name);
        bool hs, hh;
        if ((rc = ag_td_int_member(it, ip, "softLimit", 0, INT32_MAX_, &hs, &u->soft, e)) ||
            (rc = ag_td_int_member(it, ip, "hardLimit", 0, INT32_MAX_, &hh, &u->hard, e)))
            return rc;
        if (!hs || !hh)
            return ag_td_bad(e, CLIENT, "%s.%s: required", ip, hs ? "hardLimit" : "softLimit");
        if (u->soft > u->hard)
            return ag_td_bad(e, CLIENT,
                             "%s.softLimit: the soft limit must be less than or equal to the hard "
                             "limit",
                             ip);
    }
    return 0;
}

static bool namespaced_sysctl(const char *s)
{
    return ag_td_in_list(s, ipc_sysctls, sizeof ipc_sysctls / sizeof *ipc_sysctls) ||
           strncmp(s, "fs.mqueue.", 10) == 0 || strncmp(s, "net.", 4) == 0;
}

static int get_sysctls(const es_json *cd, const char *path, const ag_td_rt_ctx *ctx,
                       ag_container_runtime *rt, ag_td_error *e)
{
    char lp[RT_PATH_MAX];
    int rc;
    const es_json *arr =
        ag_td_list_member(cd, path, "systemControls", AG_TD_SYSCTLS_MAX, lp, sizeof lp, &rc, e);
    if (!arr)
        return rc;
    size_t n = es_json_len(arr);
    if (!(rt->sysctls = es_calloc(n + 1, sizeof *rt->sysctls)))
        return ag_td_nomem(e);
    for (size_t i = 0; i < n; i++) {
        char ip[RT_PATH_MAX];
        ag_td_pathf(ip, sizeof ip, "%s[%zu]", lp, i);
        const es_json *it = es_json_at(arr, i);
        if (it->type != ES_JSON_OBJECT)
            return ag_td_bad(e, INVALID, "%s: must be an object {namespace, value}", ip);
        ag_pair *s = &rt->sysctls[i];
        rt->n_sysctls = i + 1;
        if ((rc = ag_td_str_member(it, ip, "namespace", AG_TD_SYSCTL_NAME_MAX, true, &s->a, e)) ||
            (rc = ag_td_str_member(it, ip, "value", AG_TD_SYSCTL_VALUE_MAX, true, &s->b, e)))
            return rc;
        if (!namespaced_sysctl(s->a))
            return ag_td_bad(
                e, CLIENT,
                "%s.namespace: '%.64s' is not a namespaced kernel parameter a container "
                "may set (kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, "
                "kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, "
                "fs.mqueue.*, net.*)",
                ip, s->a);
        if (strncmp(s->a, "net.", 4) == 0 && is_host_mode(ctx))
            return ag_td_bad(e, CLIENT,
                             "%s.namespace: %s would change the host's own network namespace: the "
                             "task uses the host network mode",
                             ip, s->a);
        if (strncmp(s->a, "net.", 4) != 0 && ctx->ipc_mode && strcmp(ctx->ipc_mode, "host") == 0)
            return ag_td_bad(e, CLIENT,
                             "%s.namespace: %s would change the host's own IPC namespace: the "
                             "task uses the host IPC mode (ipcMode host)",
                             ip, s->a);
        for (size_t j = 0; j < i; j++)
            if (strcmp(rt->sysctls[j].a, s->a) == 0)
                return ag_td_bad(e, CLIENT, "%s.namespace: a second value for %s", ip, s->a);
    }
    return 0;
}

static int get_memory_reservation(const es_json *cd, const char *path, const ag_td_rt_ctx *ctx,
                                  ag_container_runtime *rt, ag_td_error *e)
{
    int rc = ag_td_int_member(cd, path, "memoryReservation", AG_TD_MEMORY_RESERVATION_MIN,
                              AG_TD_CONTAINER_MEMORY_MAX, &rt->has_memory_reservation,
                              &rt->memory_reservation, e);
    if (rc || !rt->has_memory_reservation || !ctx || !ctx->has_memory)
        return rc;
    if (rt->memory_reservation > ctx->memory)
        return ag_td_bad(e, CLIENT,
                         "%s.memoryReservation: Invalid setting for container '%s'. "
                         "memoryReservation (%" PRId64
                         " MiB) must not be greater than memory (%" PRId64 " MiB).",
                         path, ctx->container ? ctx->container : "", rt->memory_reservation,
                         ctx->memory);
    return 0;
}

/* ---- linuxParameters ---- */

static const char *const capabilities[] = {
    "ALL",        "AUDIT_CONTROL",   "AUDIT_WRITE",      "BLOCK_SUSPEND",
    "CHOWN",      "DAC_OVERRIDE",    "DAC_READ_SEARCH",  "FOWNER",
    "FSETID",     "IPC_LOCK",        "IPC_OWNER",        "KILL",
    "LEASE",      "LINUX_IMMUTABLE", "MAC_ADMIN",        "MAC_OVERRIDE",
    "MKNOD",      "NET_ADMIN",       "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_RAW",    "SETFCAP",         "SETGID",           "SETPCAP",
    "SETUID",     "SYS_ADMIN",       "SYS_BOOT",         "SYS_CHROOT",
    "SYS_MODULE", "SYS_NICE",        "SYS_PACCT",        "SYS_PTRACE",
    "SYS_RAWIO",  "SYS_RESOURCE",    "SYS_TIME",         "SYS_TTY_CONFIG",
    "SYSLOG",     "WAKE_ALARM",
};

static bool capability(const char *s)
{
    return ag_td_in_list(s, capabilities, sizeof capabilities / sizeof *capabilities);
}

static bool device_permission(const char *s)
{
    return strcmp(s, "read") == 0 || strcmp(s, "write") == 0 || strcmp(s, "mknod") == 0;
}

/* ECS's tmpfs mountOptions; the last six take a value (mode=1777). */
static const char *const mount_flags[] = {
    "defaults",   "ro",          "rw",         "suid",        "nosuid",        "dev",     "nodev",
    "exec",       "noexec",      "sync",       "async",       "dirsync",       "remount", "mand",
    "nomand",     "atime",       "noatime",    "diratime",    "nodiratime",    "bind",    "rbind",
    "unbindable", "runbindable", "private",    "rprivate",    "shared",        "rshared", "slave",
    "rslave",     "relatime",    "norelatime", "strictatime", "nostrictatime",
};
static const char *const mount_valued[] = {"mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"};

static bool mount_option(const char *s)
{
    const char *eq = strchr(s, '=');
    if (!eq)
        return ag_td_in_list(s, mount_flags, sizeof mount_flags / sizeof *mount_flags);
    for (size_t i = 0; i < sizeof mount_valued / sizeof *mount_valued; i++)
        if ((size_t)(eq - s) == strlen(mount_valued[i]) &&
            strncmp(s, mount_valued[i], (size_t)(eq - s)) == 0)
            return eq[1] && !strchr(eq + 1, ',');
    return false;
}

static bool absolute_path(const char *s)
{
    return s[0] == '/' && !strchr(s, ':') && !strchr(s, ',');
}

static int get_capabilities(const es_json *lp, const char *path, ag_linux_params *l, ag_td_error *e)
{
    static const char *const names[] = {"add", "drop"};
    char p[RT_PATH_MAX];
    ag_td_pathf(p, sizeof p, "%s.capabilities", path);
    const es_json *c = ag_td_member(lp, "capabilities");
    if (!c)
        return 0;
    if (c->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be an object {add, drop}", p);
    int rc = ag_td_known_members(c, p, "KernelCapabilities", names, 2, e);
    if (rc)
        return rc;
    l->has_capabilities = true;
    const char *why = "is not one of ECS's capability names (e.g. NET_ADMIN, SYS_PTRACE, ALL)";
    if ((rc = strv_member(c, p, "add", AG_TD_CAPS_MAX, 32, capability, why, &l->cap_add,
                          &l->n_cap_add, e)))
        return rc;
    return strv_member(c, p, "drop", AG_TD_CAPS_MAX, 32, capability, why, &l->cap_drop,
                       &l->n_cap_drop, e);
}

static int get_devices(const es_json *lp, const char *path, ag_linux_params *l, ag_td_error *e)
{
    static const char *const names[] = {"hostPath", "containerPath", "permissions"};
    char lpth[RT_PATH_MAX];
    int rc;
    const es_json *arr =
        ag_td_list_member(lp, path, "devices", AG_TD_DEVICES_MAX, lpth, sizeof lpth, &rc, e);
    if (!arr)
        return rc;
    size_t n = es_json_len(arr);
    if (!(l->devices = es_calloc(n + 1, sizeof *l->devices)))
        return ag_td_nomem(e);
    for (size_t i = 0; i < n; i++) {
        char ip[RT_PATH_MAX];
        ag_td_pathf(ip, sizeof ip, "%s[%zu]", lpth, i);
        const es_json *it = es_json_at(arr, i);
        if (it->type != ES_JSON_OBJECT)
            return ag_td_bad(e, INVALID,
                             "%s: must be an object {hostPath, containerPath, permissions}", ip);
        ag_device *d = &l->devices[i];
        l->n_devices = i + 1;
        if ((rc = ag_td_known_members(it, ip, "Device", names, 3, e)) ||
            (rc = ag_td_str_member(it, ip, "hostPath", AG_TD_PATH_MAX, true, &d->host_path, e)) ||
            (rc = ag_td_str_member(it, ip, "containerPath", AG_TD_PATH_MAX, false,
                                   &d->container_path, e)) ||
            (rc =
                 strv_member(it, ip, "permissions", 3, 8, device_permission,
                             "is not read, write or mknod", &d->permissions, &d->n_permissions, e)))
            return rc;
        if (!absolute_path(d->host_path))
            return ag_td_bad(e, CLIENT, "%s.hostPath: must be an absolute path", ip);
        if (d->container_path && !absolute_path(d->container_path))
            return ag_td_bad(e, CLIENT, "%s.containerPath: must be an absolute path", ip);
    }
    return 0;
}

static int get_tmpfs(const es_json *lp, const char *path, ag_linux_params *l, ag_td_error *e)
{
    static const char *const names[] = {"containerPath", "size", "mountOptions"};
    char lpth[RT_PATH_MAX];
    int rc;
    const es_json *arr =
        ag_td_list_member(lp, path, "tmpfs", AG_TD_TMPFS_MAX, lpth, sizeof lpth, &rc, e);
    if (!arr)
        return rc;
    size_t n = es_json_len(arr);
    if (!(l->tmpfs = es_calloc(n + 1, sizeof *l->tmpfs)))
        return ag_td_nomem(e);
    for (size_t i = 0; i < n; i++) {
        char ip[RT_PATH_MAX];
        ag_td_pathf(ip, sizeof ip, "%s[%zu]", lpth, i);
        const es_json *it = es_json_at(arr, i);
        if (it->type != ES_JSON_OBJECT)
            return ag_td_bad(e, INVALID,
                             "%s: must be an object {containerPath, size, mountOptions}", ip);
        ag_tmpfs *t = &l->tmpfs[i];
        l->n_tmpfs = i + 1;
        bool has_size;
        if ((rc = ag_td_known_members(it, ip, "Tmpfs", names, 3, e)) ||
            (rc = ag_td_str_member(it, ip, "containerPath", AG_TD_PATH_MAX, true,
                                   &t->container_path, e)) ||
            (rc = ag_td_int_member(it, ip, "size", 1, AG_TD_CONTAINER_MEMORY_MAX, &has_size,
                                   &t->size, e)) ||
            (rc = strv_member(it, ip, "mountOptions", AG_TD_MOUNT_OPTIONS_MAX,
                              AG_TD_MOUNT_OPTION_MAX, mount_option,
                              "is not one of ECS's tmpfs mount options", &t->mount_options,
                              &t->n_mount_options, e)))
            return rc;
        if (!has_size)
            return ag_td_bad(e, CLIENT, "%s.size: required", ip);
        if (!absolute_path(t->container_path))
            return ag_td_bad(e, CLIENT, "%s.containerPath: must be an absolute path", ip);
        for (size_t j = 0; j < i; j++)
            if (strcmp(l->tmpfs[j].container_path, t->container_path) == 0)
                return ag_td_bad(e, CLIENT, "%s.containerPath: a second tmpfs at %s", ip,
                                 t->container_path);
    }
    return 0;
}

static int get_linux_params(const es_json *cd, const char *path, const ag_td_rt_ctx *ctx,
                            ag_container_runtime *rt, ag_td_error *e)
{
    static const char *const names[] = {"capabilities",     "devices", "initProcessEnabled",
                                        "sharedMemorySize", "tmpfs",   "maxSwap",
                                        "swappiness"};
    char p[RT_PATH_MAX];
    ag_td_pathf(p, sizeof p, "%s.linuxParameters", path);
    const es_json *lp = ag_td_member(cd, "linuxParameters");
    if (!lp)
        return 0;
    if (lp->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be an object", p);
    int rc = ag_td_known_members(lp, p, "LinuxParameters", names, sizeof names / sizeof *names, e);
    if (rc)
        return rc;
    ag_linux_params *l = rt->linux_params = es_calloc(1, sizeof *l);
    if (!l)
        return ag_td_nomem(e);
    if ((rc = get_capabilities(lp, p, l, e)) || (rc = get_devices(lp, p, l, e)) ||
        (rc = ag_td_bool_member(lp, p, "initProcessEnabled", &l->init, e)) ||
        (rc = ag_td_int_member(lp, p, "sharedMemorySize", 1, AG_TD_CONTAINER_MEMORY_MAX,
                               &l->has_shm_size, &l->shm_size, e)) ||
        (rc = get_tmpfs(lp, p, l, e)) ||
        (rc = ag_td_int_member(lp, p, "maxSwap", 0, AG_TD_CONTAINER_MEMORY_MAX, &l->has_max_swap,
                               &l->max_swap, e)) ||
        (rc = ag_td_int_member(lp, p, "swappiness", 0, 100, &l->has_swappiness, &l->swappiness, e)))
        return rc;
    if (l->has_max_swap && !(ctx && ctx->has_memory))
        return ag_td_bad(
            e, CLIENT,
            "%s.maxSwap: needs the container's memory: Docker's swap limit is memory + "
            "maxSwap, and Docker takes no swap limit without a memory limit",
            p);
    return 0;
}

/* ---- healthCheck ---- */

int64_t ag_hc_interval(const ag_healthcheck *h)
{
    return h->has_interval ? h->interval : AG_TD_HC_INTERVAL_DEFAULT;
}

int64_t ag_hc_timeout(const ag_healthcheck *h)
{
    return h->has_timeout ? h->timeout : AG_TD_HC_TIMEOUT_DEFAULT;
}

int64_t ag_hc_retries(const ag_healthcheck *h)
{
    return h->has_retries ? h->retries : AG_TD_HC_RETRIES_DEFAULT;
}

int64_t ag_hc_start_period(const ag_healthcheck *h)
{
    return h->has_start_period ? h->start_period : 0;
}

static const char *const hc_members[] = {"command", "interval", "timeout", "retries",
                                         "startPeriod"};

/* command: ["CMD", exe, args...] or ["CMD-SHELL", "one shell line"], as
 * Docker's HEALTHCHECK takes them (ECS passes the list to Docker as it is). */
static int hc_command(const es_json *hc, const char *p, ag_healthcheck *h, ag_td_error *e)
{
    int rc = strv_member(hc, p, "command", AG_TD_HC_ARGS_MAX, AG_TD_HC_ARG_MAX, NULL, NULL,
                         &h->command, &h->n_command, e);
    if (rc)
        return rc;
    if (!h->command)
        return ag_td_bad(e, CLIENT, "%s.command: required", p);
    bool cmd = h->n_command && strcmp(h->command[0], "CMD") == 0;
    bool shell = h->n_command && strcmp(h->command[0], "CMD-SHELL") == 0;
    if (!(cmd && h->n_command >= 2) && !(shell && h->n_command == 2))
        return ag_td_bad(e, CLIENT,
                         "%s.command: must be [\"CMD\", executable, args...] or "
                         "[\"CMD-SHELL\", command] (a health check command needs a command)",
                         p);
    for (size_t i = 1; i < h->n_command; i++)
        if (!*h->command[i])
            return ag_td_bad(e, CLIENT, "%s.command[%zu]: must not be empty", p, i);
    return 0;
}

static int get_health_check(const es_json *cd, const char *path, ag_container_runtime *rt,
                            ag_td_error *e)
{
    const es_json *hc = ag_td_member(cd, "healthCheck");
    if (!hc)
        return 0;
    char p[RT_PATH_MAX];
    ag_td_pathf(p, sizeof p, "%s.healthCheck", path);
    if (hc->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be an object", p);
    int rc = ag_td_known_members(hc, p, "HealthCheck", hc_members,
                                 sizeof hc_members / sizeof *hc_members, e);
    if (rc)
        return rc;
    ag_healthcheck *h = es_calloc(1, sizeof *h);
    if (!h)
        return ag_td_nomem(e);
    rt->health_check = h;
    if ((rc = hc_command(hc, p, h, e)))
        return rc;
    if ((rc = ag_td_int_member(hc, p, "interval", AG_TD_HC_INTERVAL_MIN, AG_TD_HC_INTERVAL_MAX,
                               &h->has_interval, &h->interval, e)) ||
        (rc = ag_td_int_member(hc, p, "timeout", AG_TD_HC_TIMEOUT_MIN, AG_TD_HC_TIMEOUT_MAX,
                               &h->has_timeout, &h->timeout, e)) ||
        (rc = ag_td_int_member(hc, p, "retries", AG_TD_HC_RETRIES_MIN, AG_TD_HC_RETRIES_MAX,
                               &h->has_retries, &h->retries, e)) ||
        (rc = ag_td_int_member(hc, p, "startPeriod", 0, AG_TD_HC_START_PERIOD_MAX,
                               &h->has_start_period, &h->start_period, e)))
        return rc;
    return 0;
}

int ag_td_runtime_parse(const es_json *cd, const char *path, const ag_td_rt_ctx *ctx,
                        ag_container_runtime *rt, ag_td_error *e)
{
    int rc;
    if ((rc = get_hostname(cd, path, rt, e)) || (rc = get_extra_hosts(cd, path, rt, e)))
        return rc;
    if ((rc = strv_member(cd, path, "dnsServers", AG_TD_DNS_MAX, 64, ip_address,
                          "is not an IPv4 or IPv6 address", &rt->dns_servers, &rt->n_dns_servers,
                          e)) ||
        (rc = strv_member(cd, path, "dnsSearchDomains", AG_TD_DNS_MAX, AG_TD_DNS_NAME_MAX, dns_name,
                          "is not a domain name (letters, digits, '-', '.', '_')", &rt->dns_search,
                          &rt->n_dns_search, e)))
        return rc;
    if ((rc = ag_td_bool_member(cd, path, "privileged", &rt->privileged, e)) ||
        (rc = ag_td_bool_member(cd, path, "readonlyRootFilesystem", &rt->readonly_rootfs, e)) ||
        (rc = ag_td_bool_member(cd, path, "interactive", &rt->interactive, e)) ||
        (rc = ag_td_bool_member(cd, path, "pseudoTerminal", &rt->pseudo_terminal, e)) ||
        (rc = ag_td_bool_member(cd, path, "disableNetworking", &rt->disable_networking, e)))
        return rc;
    if ((rc = strv_member(cd, path, "dockerSecurityOptions", AG_TD_SECURITY_OPTS_MAX,
                          AG_TD_SECURITY_OPT_MAX, security_opt,
                          "is not no-new-privileges, apparmor:PROFILE or label:VALUE "
                          "(credentialspec is for Windows containers)",
                          &rt->security_opts, &rt->n_security_opts, e)))
        return rc;
    if ((rc = get_ulimits(cd, path, rt, e)) || (rc = get_sysctls(cd, path, ctx, rt, e)))
        return rc;
    if ((rc = get_memory_reservation(cd, path, ctx, rt, e)) ||
        (rc = get_health_check(cd, path, rt, e)))
        return rc;
    return get_linux_params(cd, path, ctx, rt, e);
}

/* ---- writer ---- */

static void w_pairs(es_jw *w, const char *key, const char *ka, const char *kb, const ag_pair *p,
                    size_t n)
{
    if (!p)
        return;
    es_jw_key(w, key);
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, ka, p[i].a);
        es_jw_kstr(w, kb, p[i].b);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

static void w_bool(es_jw *w, const char *key, ag_opt_bool b)
{
    if (b.set)
        es_jw_kbool(w, key, b.value);
}

static void w_linux(es_jw *w, const ag_linux_params *l)
{
    es_jw_key(w, "linuxParameters");
    es_jw_obj(w);
    if (l->has_capabilities) {
        es_jw_key(w, "capabilities");
        es_jw_obj(w);
        ag_td_w_strv(w, "add", l->cap_add, l->n_cap_add);
        ag_td_w_strv(w, "drop", l->cap_drop, l->n_cap_drop);
        es_jw_obj_end(w);
    }
    if (l->devices) {
        es_jw_key(w, "devices");
        es_jw_arr(w);
        for (size_t i = 0; i < l->n_devices; i++) {
            es_jw_obj(w);
            es_jw_kstr(w, "hostPath", l->devices[i].host_path);
            if (l->devices[i].container_path)
                es_jw_kstr(w, "containerPath", l->devices[i].container_path);
            ag_td_w_strv(w, "permissions", l->devices[i].permissions, l->devices[i].n_permissions);
            es_jw_obj_end(w);
        }
        es_jw_arr_end(w);
    }
    w_bool(w, "initProcessEnabled", l->init);
    if (l->has_shm_size)
        es_jw_kint(w, "sharedMemorySize", l->shm_size);
    if (l->tmpfs) {
        es_jw_key(w, "tmpfs");
        es_jw_arr(w);
        for (size_t i = 0; i < l->n_tmpfs; i++) {
            es_jw_obj(w);
            es_jw_kstr(w, "containerPath", l->tmpfs[i].container_path);
            es_jw_kint(w, "size", l->tmpfs[i].size);
            ag_td_w_strv(w, "mountOptions", l->tmpfs[i].mount_options, l->tmpfs[i].n_mount_options);
            es_jw_obj_end(w);
        }
        es_jw_arr_end(w);
    }
    if (l->has_max_swap)
        es_jw_kint(w, "maxSwap", l->max_swap);
    if (l->has_swappiness)
        es_jw_kint(w, "swappiness", l->swappiness);
    es_jw_obj_end(w);
}

void ag_td_runtime_write(const ag_container_runtime *rt, es_jw *w)
{
    if (rt->has_memory_reservation)
        es_jw_kint(w, "memoryReservation", rt->memory_reservation);
    if (rt->hostname)
        es_jw_kstr(w, "hostname", rt->hostname);
    w_bool(w, "disableNetworking", rt->disable_networking);
    w_bool(w, "privileged", rt->privileged);
    w_bool(w, "readonlyRootFilesystem", rt->readonly_rootfs);
    ag_td_w_strv(w, "dnsServers", rt->dns_servers, rt->n_dns_servers);
    ag_td_w_strv(w, "dnsSearchDomains", rt->dns_search, rt->n_dns_search);
    w_pairs(w, "extraHosts", "hostname", "ipAddress", rt->extra_hosts, rt->n_extra_hosts);
    ag_td_w_strv(w, "dockerSecurityOptions", rt->security_opts, rt->n_security_opts);
    w_bool(w, "interactive", rt->interactive);
    w_bool(w, "pseudoTerminal", rt->pseudo_terminal);
    if (rt->ulimits) {
        es_jw_key(w, "ulimits");
        es_jw_arr(w);
        for (size_t i = 0; i < rt->n_ulimits; i++) {
            es_jw_obj(w);
            es_jw_kstr(w, "name", rt->ulimits[i].name);
            es_jw_kint(w, "softLimit", rt->ulimits[i].soft);
            es_jw_kint(w, "hardLimit", rt->ulimits[i].hard);
            es_jw_obj_end(w);
        }
        es_jw_arr_end(w);
    }
    w_pairs(w, "systemControls", "namespace", "value", rt->sysctls, rt->n_sysctls);
    if (rt->linux_params)
        w_linux(w, rt->linux_params);
    if (rt->health_check) {
        const ag_healthcheck *h = rt->health_check;
        es_jw_key(w, "healthCheck");
        es_jw_obj(w);
        ag_td_w_strv(w, "command", h->command, h->n_command);
        /* ECS describes the defaults it applied; so does this */
        es_jw_kint(w, "interval", ag_hc_interval(h));
        es_jw_kint(w, "timeout", ag_hc_timeout(h));
        es_jw_kint(w, "retries", ag_hc_retries(h));
        if (h->has_start_period)
            es_jw_kint(w, "startPeriod", h->start_period);
        es_jw_obj_end(w);
    }
}

/* ---- free ---- */

static void free_pairs(ag_pair *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        es_free(p[i].a);
        es_free(p[i].b);
    }
    es_free(p);
}

static void free_linux(ag_linux_params *l)
{
    if (!l)
        return;
    es_strv_free(l->cap_add, l->n_cap_add, false);
    es_strv_free(l->cap_drop, l->n_cap_drop, false);
    for (size_t i = 0; l->devices && i < l->n_devices; i++) {
        es_free(l->devices[i].host_path);
        es_free(l->devices[i].container_path);
        es_strv_free(l->devices[i].permissions, l->devices[i].n_permissions, false);
    }
    es_free(l->devices);
    for (size_t i = 0; l->tmpfs && i < l->n_tmpfs; i++) {
        es_free(l->tmpfs[i].container_path);
        es_strv_free(l->tmpfs[i].mount_options, l->tmpfs[i].n_mount_options, false);
    }
    es_free(l->tmpfs);
    es_free(l);
}

void ag_td_runtime_clear(ag_container_runtime *rt)
{
    free_linux(rt->linux_params);
    if (rt->health_check)
        es_strv_free(rt->health_check->command, rt->health_check->n_command, false);
    es_free(rt->health_check);
    es_free(rt->hostname);
    free_pairs(rt->extra_hosts, rt->n_extra_hosts);
    es_strv_free(rt->dns_servers, rt->n_dns_servers, false);
    es_strv_free(rt->dns_search, rt->n_dns_search, false);
    es_strv_free(rt->security_opts, rt->n_security_opts, false);
    for (size_t i = 0; rt->ulimits && i < rt->n_ulimits; i++)
        es_free(rt->ulimits[i].name);
    es_free(rt->ulimits);
    free_pairs(rt->sysctls, rt->n_sysctls);
    memset(rt, 0, sizeof *rt);
}
