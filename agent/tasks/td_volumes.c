/* td_volumes.c - see td_volumes.h. */
#include "agent/tasks/td_volumes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/tasks/taskdef.h"
#include "agent/tasks/td_json.h"
#include "common/alloc.h"

#define CLIENT "ClientException"
#define INVALID "InvalidParameterException"
#define PATH_ AG_TD_FIELD_PATH_MAX
#define PORT_MAX 65535

static const char *const volume_members[] = {"name",
                                             "host",
                                             "dockerVolumeConfiguration",
                                             "efsVolumeConfiguration",
                                             "fsxWindowsFileServerVolumeConfiguration",
                                             "configuredAtLaunch"};
static const char *const docker_conf_members[] = {"scope", "autoprovision", "driver", "driverOpts",
                                                  "labels"};
static const char *const mount_members[] = {"sourceVolume", "containerPath", "readOnly"};
static const char *const from_members[] = {"sourceContainer", "readOnly"};
static const char *const port_members[] = {"containerPort", "hostPort",           "protocol",
                                           "name",          "containerPortRange", "appProtocol"};
static const char *const app_protocols[] = {"http", "http2", "grpc"};
#define N(a) (sizeof a / sizeof *a)

static bool volume_name_ok(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return *s != '\0';
}

/* Docker's Binds are "source:target[:ro]": a ':' or ',' cannot be carried */
static bool bind_path_ok(const char *s)
{
    return s[0] == '/' && !strchr(s, ':') && !strchr(s, ',');
}

static int object_at(const es_json *j, const char *path, const char *shape,
                     const char *const *names, size_t n, ag_td_error *e)
{
    if (j->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be an object", path);
    return ag_td_known_members(j, path, shape, names, n, e);
}

static int bool_of(const es_json *obj, const char *path, const char *key, bool *has, bool *v,
                   ag_td_error *e)
{
    ag_opt_bool b;
    int r = ag_td_bool_member(obj, path, key, &b, e);
    *has = b.set;
    *v = b.value;
    return r;
}

/* driverOpts / labels: a string map */
static int map_member(const es_json *obj, const char *path, const char *key, ag_vol_kv **out,
                      size_t *n_out, ag_td_error *e)
{
    char p[PATH_];
    ag_td_pathf(p, sizeof p, "%s.%s", path, key);
    const es_json *m = ag_td_member(obj, key);
    if (!m)
        return 0;
    if (m->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be a map of strings", p);
    size_t n = m->u.object.n;
    if (n > AG_TD_VOLUME_OPTS_MAX)
        return ag_td_bad(e, CLIENT, "%s: more than %d entries", p, AG_TD_VOLUME_OPTS_MAX);
    if (!(*out = es_calloc(n + 1, sizeof **out)))
        return ag_td_nomem(e);
    for (size_t i = 0; i < n; i++) {
        const char *k = m->u.object.keys[i];
        char ip[PATH_];
        ag_td_pathf(ip, sizeof ip, "%s.%.64s", p, k);
        if (!*k || strlen(k) > AG_TD_VOLUME_OPT_MAX)
            return ag_td_bad(e, CLIENT, "%s: a key must be 1 to %d characters", p,
                             AG_TD_VOLUME_OPT_MAX);
        if (!((*out)[i].key = es_strdup(k)))
            return ag_td_nomem(e);
        *n_out = i + 1;
        int r = ag_td_str_at(m->u.object.values[i], ip, AG_TD_VOLUME_OPT_MAX, true,
                             &(*out)[i].value, e);
        if (r)
            return r;
    }
    return 0;
}

static int docker_conf(const es_json *dc, const char *path, ag_td_volume *v, ag_td_error *e)
{
    int r = object_at(dc, path, "DockerVolumeConfiguration", docker_conf_members,
                      N(docker_conf_members), e);
    if (!r)
        r = ag_td_str_member(dc, path, "scope", 16, false, &v->scope, e);
    if (r)
        return r;
    if (v->scope && strcmp(v->scope, "task") != 0 && strcmp(v->scope, "shared") != 0)
        return ag_td_bad(e, CLIENT, "%s.scope: must be task or shared", path);
    if ((r = bool_of(dc, path, "autoprovision", &v->has_autoprovision, &v->autoprovision, e)))
        return r;
    /* ECS: autoprovision is for shared volumes; a task volume is always created */
    if (v->autoprovision && !(v->scope && strcmp(v->scope, "shared") == 0))
        return ag_td_bad(e, CLIENT,
                         "%s.autoprovision: Autoprovision can only be set to true when scope is "
                         "shared",
                         path);
    if ((r = ag_td_str_member(dc, path, "driver", AG_TD_VOLUME_DRIVER_MAX, false, &v->driver, e)))
        return r;
    if ((r = map_member(dc, path, "driverOpts", &v->driver_opts, &v->n_driver_opts, e)))
        return r;
    return map_member(dc, path, "labels", &v->labels, &v->n_labels, e);
}

static int host_conf(const es_json *h, const char *path, ag_td_volume *v, ag_td_error *e)
{
    static const char *const host_members[] = {"sourcePath"};
    int r = object_at(h, path, "HostVolumeProperties", host_members, 1, e);
    if (!r)
        r = ag_td_str_member(h, path, "sourcePath", AG_TD_VOLUME_PATH_MAX, false, &v->source_path,
                             e);
    if (r || !v->source_path)
        return r; /* an empty host: a Docker volume of the task, as ECS */
    if (!bind_path_ok(v->source_path))
        return ag_td_bad(e, CLIENT,
                         "%s.sourcePath: must be an absolute path without ':' or ',' (Docker's "
                         "bind mounts cannot carry them)",
                         path);
    v->kind = AG_VOLUME_HOST;
    return 0;
}

static int refused_members(const es_json *vol, const char *path, ag_td_error *e)
{
    static const char *const why[][2] = {
        {"efsVolumeConfiguration",
         "Amazon EFS file systems are mounted by the ECS agent's EFS helper, which this agent "
         "does not run"},
        {"fsxWindowsFileServerVolumeConfiguration",
         "FSx for Windows File Server volumes are for Windows containers"},
        {"configuredAtLaunch",
         "a volume configured at launch is given by CreateService or RunTask's "
         "volumeConfigurations (Amazon EBS), which this agent does not attach"},
    };
    for (size_t i = 0; i < N(why); i++) {
        const es_json *j = ag_td_member(vol, why[i][0]);
        bool empty = !j || (j->type == ES_JSON_BOOL && !j->u.boolean) ||
                     (j->type == ES_JSON_OBJECT && es_json_len(j) == 0);
        if (!empty)
            return ag_td_bad(e, CLIENT, "%s.%s: %s", path, why[i][0], why[i][1]);
    }
    return 0;
}

static int parse_volume(const es_json *vol, const char *path, ag_td_volume *v, ag_td_error *e)
{
    int r = object_at(vol, path, "Volume", volume_members, N(volume_members), e);
    if (!r)
        r = refused_members(vol, path, e);
    if (!r)
        r = ag_td_str_member(vol, path, "name", AG_TD_VOLUME_NAME_MAX, true, &v->name, e);
    if (r)
        return r;
    if (!volume_name_ok(v->name))
        return ag_td_bad(e, CLIENT,
                         "%s.name: up to 255 letters (uppercase and lowercase), numbers, hyphens "
                         "and underscores are allowed",
                         path);
    const es_json *h = ag_td_member(vol, "host");
    const es_json *dc = ag_td_member(vol, "dockerVolumeConfiguration");
    if (h && dc)
        return ag_td_bad(e, CLIENT,
                         "%s: a volume takes host or dockerVolumeConfiguration, not both", path);
    char p[PATH_];
    v->kind = AG_VOLUME_TASK;
    if (h) {
        v->has_host = true;
        ag_td_pathf(p, sizeof p, "%s.host", path);
        return host_conf(h, p, v, e);
    }
    if (dc) {
        v->kind = AG_VOLUME_DOCKER;
        ag_td_pathf(p, sizeof p, "%s.dockerVolumeConfiguration", path);
        return docker_conf(dc, p, v, e);
    }
    return 0;
}

int ag_td_volumes_parse(const es_json *req, ag_taskdef *td, ag_td_error *e)
{
    char lp[PATH_];
    int r;
    const es_json *arr =
        ag_td_list_member(req, "", "volumes", AG_TD_VOLUMES_MAX, lp, sizeof lp, &r, e);
    if (!arr)
        return r;
    size_t n = es_json_len(arr);
    if (!(td->volumes = es_calloc(n + 1, sizeof *td->volumes)))
        return ag_td_nomem(e);
    for (size_t i = 0; i < n; i++) {
        char p[PATH_];
        ag_td_pathf(p, sizeof p, "volumes[%zu]", i);
        td->n_volumes = i + 1;
        if ((r = parse_volume(es_json_at(arr, i), p, &td->volumes[i], e)))
            return r;
        for (size_t j = 0; j < i; j++)
            if (strcmp(td->volumes[j].name, td->volumes[i].name) == 0)
                return ag_td_bad(e, CLIENT, "%s.name: duplicate volume name '%s'", p,
                                 td->volumes[i].name);
    }
    return 0;
}

/* ---- a container's members ---- */

static int parse_mount(const es_json *j, const char *p, ag_mount_point *m, ag_td_error *e)
{
    int r = object_at(j, p, "MountPoint", mount_members, N(mount_members), e);
    if (!r)
        r = ag_td_str_member(j, p, "sourceVolume", AG_TD_VOLUME_NAME_MAX, true, &m->source_volume,
                             e);
    if (!r)
        r = ag_td_str_member(j, p, "containerPath", AG_TD_VOLUME_PATH_MAX, true, &m->container_path,
                             e);
    if (!r)
        r = bool_of(j, p, "readOnly", &m->has_read_only, &m->read_only, e);
    if (r)
        return r;
    if (!bind_path_ok(m->container_path) || strcmp(m->container_path, "/") == 0)
        return ag_td_bad(e, CLIENT,
                         "%s.containerPath: must be an absolute path other than / without ':' or "
                         "','",
                         p);
    return 0;
}

static int parse_from(const es_json *j, const char *p, ag_volume_from *f, ag_td_error *e)
{
    int r = object_at(j, p, "VolumeFrom", from_members, N(from_members), e);
    if (!r)
        r = ag_td_str_member(j, p, "sourceContainer", AG_TD_NAME_MAX, true, &f->source_container,
                             e);
    if (!r)
        r = bool_of(j, p, "readOnly", &f->has_read_only, &f->read_only, e);
    return r;
}

/* "LO-HI", 1 <= LO < HI <= 65535 */
static bool port_range(const char *s, int64_t *lo, int64_t *hi)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != '-' || s[0] < '0' || s[0] > '9')
        return false;
    const char *b0 = end + 1;
    long b = strtol(b0, &end, 10);
    if (end == b0 || *end || b0[0] < '0' || b0[0] > '9')
        return false;
    *lo = a;
    *hi = b;
    return a >= 1 && a < b && b <= PORT_MAX;
}

static bool port_name_ok(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return *s && *s != '-';
}

static int port_strings(const es_json *j, const char *p, ag_port_mapping *m, ag_td_error *e)
{
    int r = ag_td_str_member(j, p, "protocol", 8, false, &m->protocol, e);
    if (!r && m->protocol && strcmp(m->protocol, "tcp") && strcmp(m->protocol, "udp"))
        return ag_td_bad(e, CLIENT, "%s.protocol: must be tcp or udp", p);
    if (!r)
        r = ag_td_str_member(j, p, "name", AG_TD_PORT_NAME_MAX, false, &m->name, e);
    if (!r && m->name && !port_name_ok(m->name))
        return ag_td_bad(e, CLIENT,
                         "%s.name: lowercase letters, numbers, underscores and hyphens, not "
                         "starting with a hyphen",
                         p);
    if (!r)
        r = ag_td_str_member(j, p, "appProtocol", 8, false, &m->app_protocol, e);
    if (!r && m->app_protocol && !ag_td_in_list(m->app_protocol, app_protocols, N(app_protocols)))
        return ag_td_bad(e, CLIENT, "%s.appProtocol: must be http, http2 or grpc", p);
    if (!r)
        r = ag_td_str_member(j, p, "containerPortRange", AG_TD_PORT_RANGE_STR_MAX, false, &m->range,
                             e);
    if (!r && m->range && !port_range(m->range, &m->range_lo, &m->range_hi))
        return ag_td_bad(e, CLIENT,
                         "%s.containerPortRange: must be LOW-HIGH, 1 <= LOW < HIGH <= 65535", p);
    return r;
}

static int parse_port(const es_json *j, const char *p, bool host_mode, ag_port_mapping *m,
                      ag_td_error *e)
{
    int r = object_at(j, p, "PortMapping", port_members, N(port_members), e);
    if (!r)
        r = ag_td_int_member(j, p, "containerPort", 1, PORT_MAX, &m->has_container_port,
                             &m->container_port, e);
    if (!r)
        r = ag_td_int_member(j, p, "hostPort", 0, PORT_MAX, &m->has_host_port, &m->host_port, e);
    if (!r)
        r = port_strings(j, p, m, e);
    if (r)
        return r;
    if (m->range && (m->has_container_port || m->has_host_port))
        return ag_td_bad(e, CLIENT,
                         "%s.containerPortRange: not with containerPort or hostPort (the host "
                         "ports of a range are assigned dynamically)",
                         p);
    if (!m->range && !m->has_container_port)
        return ag_td_bad(e, CLIENT, "%s.containerPort: required (or containerPortRange)", p);
    if (host_mode && m->range)
        return ag_td_bad(e, CLIENT,
                         "%s.containerPortRange: only in the bridge network mode (in the host "
                         "mode a container's ports are the host's)",
                         p);
    if (host_mode && m->has_host_port && m->host_port != m->container_port)
        return ag_td_bad(e, CLIENT,
                         "%s.hostPort: When networkMode=host, the hostPort must be omitted or "
                         "equal to the containerPort (%lld)",
                         p, (long long)m->container_port);
    return 0;
}

/* Two mappings of one port and protocol would bind it twice. */
static int ports_check(const ag_container_volumes *cv, const char *lp, ag_td_error *e)
{
    int64_t in_ranges = 0;
    for (size_t i = 0; i < cv->n_ports; i++) {
        const ag_port_mapping *a = &cv->ports[i];
        if (a->range)
            in_ranges += a->range_hi - a->range_lo + 1;
        for (size_t j = 0; j < i; j++) {
            const ag_port_mapping *b = &cv->ports[j];
            int64_t alo = a->range ? a->range_lo : a->container_port;
            int64_t ahi = a->range ? a->range_hi : a->container_port;
            int64_t blo = b->range ? b->range_lo : b->container_port;
            int64_t bhi = b->range ? b->range_hi : b->container_port;
            if (alo <= bhi && blo <= ahi && strcmp(ag_port_protocol(a), ag_port_protocol(b)) == 0)
                return ag_td_bad(e, CLIENT, "%s[%zu]: maps a container port %s[%zu] maps too", lp,
                                 i, lp, j);
        }
    }
    if (in_ranges > AG_TD_PORT_RANGE_PORTS_MAX)
        return ag_td_bad(e, CLIENT, "%s: the containerPortRanges hold more than %d ports", lp,
                         AG_TD_PORT_RANGE_PORTS_MAX);
    return 0;
}

typedef int (*item_fn)(const es_json *j, const char *p, void *item, const void *arg,
                       ag_td_error *e);

/* A list member of items of size sz parsed by fn into *out (NULL when
 * absent). */
static int list_of(const es_json *cd, const char *path, const char *key, size_t max, size_t sz,
                   item_fn fn, const void *arg, void **out, size_t *n_out, ag_td_error *e)
{
    char lp[PATH_];
    int r;
    const es_json *arr = ag_td_list_member(cd, path, key, max, lp, sizeof lp, &r, e);
    if (!arr)
        return r;
    size_t n = es_json_len(arr);
    char *items = es_calloc(n + 1, sz);
    if (!items)
        return ag_td_nomem(e);
    *out = items;
    for (size_t i = 0; i < n; i++) {
        char p[PATH_];
        ag_td_pathf(p, sizeof p, "%s[%zu]", lp, i);
        *n_out = i + 1;
        if ((r = fn(es_json_at(arr, i), p, items + i * sz, arg, e)))
            return r;
    }
    return 0;
}

static int mount_fn(const es_json *j, const char *p, void *item, const void *arg, ag_td_error *e)
{
    (void)arg;
    return parse_mount(j, p, item, e);
}

static int from_fn(const es_json *j, const char *p, void *item, const void *arg, ag_td_error *e)
{
    (void)arg;
    return parse_from(j, p, item, e);
}

static int port_fn(const es_json *j, const char *p, void *item, const void *arg, ag_td_error *e)
{
    return parse_port(j, p, *(const bool *)arg, item, e);
}

int ag_td_cvolumes_parse(const es_json *cd, const char *path, const char *network_mode,
                         ag_container_volumes *cv, ag_td_error *e)
{
    bool host = network_mode && strcmp(network_mode, "host") == 0;
    int r = list_of(cd, path, "mountPoints", AG_TD_MOUNT_POINTS_MAX, sizeof(ag_mount_point),
                    mount_fn, NULL, (void **)&cv->mount_points, &cv->n_mount_points, e);
    if (!r)
        r = list_of(cd, path, "volumesFrom", AG_TD_VOLUMES_FROM_MAX, sizeof(ag_volume_from),
                    from_fn, NULL, (void **)&cv->volumes_from, &cv->n_volumes_from, e);
    if (!r)
        r = list_of(cd, path, "portMappings", AG_TD_PORT_MAPPINGS_MAX, sizeof(ag_port_mapping),
                    port_fn, &host, (void **)&cv->ports, &cv->n_ports, e);
    if (r)
        return r;
    char lp[PATH_];
    ag_td_pathf(lp, sizeof lp, "%s.portMappings", path);
    if (cv->n_ports && network_mode && strcmp(network_mode, "none") == 0)
        return ag_td_bad(e, CLIENT,
                         "%s: a task in the none network mode has no network to map ports "
                         "from",
                         lp);
    if ((r = ports_check(cv, lp, e)))
        return r;
    for (size_t i = 0; i < cv->n_mount_points; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(cv->mount_points[i].container_path, cv->mount_points[j].container_path) == 0)
                return ag_td_bad(e, CLIENT,
                                 "%s.mountPoints[%zu].containerPath: '%.128s' is mounted by "
                                 "mountPoints[%zu] too",
                                 path, i, cv->mount_points[i].container_path, j);
    return 0;
}

/* ---- the rules between members ---- */

/* Whether path is dir or below it. */
static bool at_or_under(const char *path, const char *dir, size_t dlen)
{
    if (strncmp(path, dir, dlen) != 0)
        return false;
    return path[dlen] == '\0' || path[dlen] == '/' || (dlen == 1 && dir[0] == '/');
}

/* A secret file is a bind mount of its own (a refresh file: its
 * directory): a mountPoint there or below would hide it or write into the
 * agent's tmpfs. */
static int files_clash(const ag_container_def *c, const char *path, ag_td_error *e)
{
    for (size_t i = 0; i < c->cv.n_mount_points; i++) {
        const char *mp = c->cv.mount_points[i].container_path;
        for (size_t f = 0; f < c->n_files; f++) {
            const ag_secret_file *sf = &c->files[f];
            size_t len = strlen(sf->path);
            if (sf->policy == AG_FILE_REFRESH) {
                const char *slash = strrchr(sf->path, '/');
                len = slash == sf->path ? 1 : (size_t)(slash - sf->path);
            }
            if (at_or_under(mp, sf->path, len))
                return ag_td_bad(e, CLIENT,
                                 "%s.mountPoints[%zu].containerPath: '%.128s' is where the "
                                 "secret file of %s is mounted (%s)",
                                 path, i, mp, c->secrets[sf->secret].name,
                                 sf->policy == AG_FILE_REFRESH ? "its refresh directory"
                                                               : "its file");
        }
    }
    return 0;
}

static int mounts_check(ag_taskdef *td, size_t ci, ag_td_error *e)
{
    ag_container_def *c = &td->containers[ci];
    char path[PATH_];
    ag_td_pathf(path, sizeof path, "containerDefinitions[%zu]", ci);
    for (size_t i = 0; i < c->cv.n_mount_points; i++) {
        ag_mount_point *m = &c->cv.mount_points[i];
        size_t v = 0;
        while (v < td->n_volumes && strcmp(td->volumes[v].name, m->source_volume) != 0)
            v++;
        if (v == td->n_volumes)
            return ag_td_bad(e, CLIENT,
                             "%s.mountPoints[%zu].sourceVolume: '%.255s' is not a volume of this "
                             "task definition",
                             path, i, m->source_volume);
        m->volume = v;
    }
    for (size_t i = 0; i < c->cv.n_volumes_from; i++) {
        ag_volume_from *f = &c->cv.volumes_from[i];
        const ag_container_def *s = ag_taskdef_container(td, f->source_container);
        if (!s || s == c)
            return ag_td_bad(e, CLIENT,
                             "%s.volumesFrom[%zu].sourceContainer: '%.255s' is not another "
                             "container of this task definition",
                             path, i, f->source_container);
        f->container = (size_t)(s - td->containers);
    }
    return files_clash(c, path, e);
}

/* volumesFrom needs its source created first: a cycle cannot be created.
 * Containers whose sources are all placed are placed, round after round. */
static bool from_cycle(const ag_taskdef *td)
{
    bool placed[AG_TD_CONTAINERS_MAX] = {false};
    size_t n = td->n_containers, done = 0;
    for (bool moved = true; moved && done < n;) {
        moved = false;
        for (size_t ci = 0; ci < n; ci++) {
            const ag_container_def *c = &td->containers[ci];
            bool ready = !placed[ci];
            for (size_t i = 0; ready && i < c->cv.n_volumes_from; i++)
                ready = placed[c->cv.volumes_from[i].container];
            if (ready) {
                placed[ci] = moved = true;
                done++;
            }
        }
    }
    return done < n;
}

int ag_td_volumes_check(ag_taskdef *td, ag_td_error *e)
{
    for (size_t ci = 0; ci < td->n_containers; ci++) {
        int r = mounts_check(td, ci, e);
        if (r)
            return r;
    }
    if (from_cycle(td))
        return ag_td_bad(e, CLIENT,
                         "containerDefinitions: the containers' volumesFrom form a cycle (each "
                         "source is created before the container that names it)");
    return 0;
}

/* ---- written back as registered ---- */

static void w_map(es_jw *w, const char *key, const ag_vol_kv *kv, size_t n)
{
    if (!kv)
        return;
    es_jw_key(w, key);
    es_jw_obj(w);
    for (size_t i = 0; i < n; i++)
        es_jw_kstr(w, kv[i].key, kv[i].value);
    es_jw_obj_end(w);
}

static void w_volume(es_jw *w, const ag_td_volume *v)
{
    es_jw_obj(w);
    es_jw_kstr(w, "name", v->name);
    if (v->has_host) {
        es_jw_key(w, "host");
        es_jw_obj(w);
        if (v->source_path)
            es_jw_kstr(w, "sourcePath", v->source_path);
        es_jw_obj_end(w);
    }
    if (v->kind == AG_VOLUME_DOCKER) {
        es_jw_key(w, "dockerVolumeConfiguration");
        es_jw_obj(w);
        if (v->scope)
            es_jw_kstr(w, "scope", v->scope);
        if (v->has_autoprovision)
            es_jw_kbool(w, "autoprovision", v->autoprovision);
        if (v->driver)
            es_jw_kstr(w, "driver", v->driver);
        w_map(w, "driverOpts", v->driver_opts, v->n_driver_opts);
        w_map(w, "labels", v->labels, v->n_labels);
        es_jw_obj_end(w);
    }
    es_jw_obj_end(w);
}

void ag_td_volumes_write(const ag_td_volume *v, size_t n, es_jw *w)
{
    if (!v)
        return;
    es_jw_key(w, "volumes");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        w_volume(w, &v[i]);
    es_jw_arr_end(w);
}

static void w_port(es_jw *w, const ag_port_mapping *p)
{
    es_jw_obj(w);
    if (p->has_container_port)
        es_jw_kint(w, "containerPort", p->container_port);
    if (p->has_host_port)
        es_jw_kint(w, "hostPort", p->host_port);
    if (p->protocol)
        es_jw_kstr(w, "protocol", p->protocol);
    if (p->name)
        es_jw_kstr(w, "name", p->name);
    if (p->app_protocol)
        es_jw_kstr(w, "appProtocol", p->app_protocol);
    if (p->range)
        es_jw_kstr(w, "containerPortRange", p->range);
    es_jw_obj_end(w);
}

void ag_td_cvolumes_write(const ag_container_volumes *cv, es_jw *w)
{
    if (cv->mount_points) {
        es_jw_key(w, "mountPoints");
        es_jw_arr(w);
        for (size_t i = 0; i < cv->n_mount_points; i++) {
            const ag_mount_point *m = &cv->mount_points[i];
            es_jw_obj(w);
            es_jw_kstr(w, "sourceVolume", m->source_volume);
            es_jw_kstr(w, "containerPath", m->container_path);
            if (m->has_read_only)
                es_jw_kbool(w, "readOnly", m->read_only);
            es_jw_obj_end(w);
        }
        es_jw_arr_end(w);
    }
    if (cv->volumes_from) {
        es_jw_key(w, "volumesFrom");
        es_jw_arr(w);
        for (size_t i = 0; i < cv->n_volumes_from; i++) {
            es_jw_obj(w);
            es_jw_kstr(w, "sourceContainer", cv->volumes_from[i].source_container);
            if (cv->volumes_from[i].has_read_only)
                es_jw_kbool(w, "readOnly", cv->volumes_from[i].read_only);
            es_jw_obj_end(w);
        }
        es_jw_arr_end(w);
    }
    if (cv->ports) {
        es_jw_key(w, "portMappings");
        es_jw_arr(w);
        for (size_t i = 0; i < cv->n_ports; i++)
            w_port(w, &cv->ports[i]);
        es_jw_arr_end(w);
    }
}

/* ---- freeing and small readers ---- */

static void free_map(ag_vol_kv *kv, size_t n)
{
    for (size_t i = 0; kv && i < n; i++) {
        es_free(kv[i].key);
        es_free(kv[i].value);
    }
    es_free(kv);
}

void ag_td_volumes_free(ag_td_volume *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        es_free(v[i].name);
        es_free(v[i].source_path);
        es_free(v[i].scope);
        es_free(v[i].driver);
        free_map(v[i].driver_opts, v[i].n_driver_opts);
        free_map(v[i].labels, v[i].n_labels);
    }
    es_free(v);
}

void ag_td_cvolumes_clear(ag_container_volumes *cv)
{
    for (size_t i = 0; cv->mount_points && i < cv->n_mount_points; i++) {
        es_free(cv->mount_points[i].source_volume);
        es_free(cv->mount_points[i].container_path);
    }
    es_free(cv->mount_points);
    for (size_t i = 0; cv->volumes_from && i < cv->n_volumes_from; i++)
        es_free(cv->volumes_from[i].source_container);
    es_free(cv->volumes_from);
    for (size_t i = 0; cv->ports && i < cv->n_ports; i++) {
        es_free(cv->ports[i].protocol);
        es_free(cv->ports[i].name);
        es_free(cv->ports[i].app_protocol);
        es_free(cv->ports[i].range);
    }
    es_free(cv->ports);
    memset(cv, 0, sizeof *cv);
}

bool ag_td_volume_task_scoped(const ag_td_volume *v)
{
    return v->kind == AG_VOLUME_TASK ||
           (v->kind == AG_VOLUME_DOCKER && !(v->scope && strcmp(v->scope, "shared") == 0));
}

const char *ag_port_protocol(const ag_port_mapping *p)
{
    return p->protocol ? p->protocol : "tcp";
}
