#include "cluster/instance.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/json.h"

static const es_json_limits record_limits = {
    .max_bytes = CL_RECORD_MAX,
    .max_depth = 4,
    .max_string = CL_INSTANCE_ARN_MAX,
    .max_values = 32 + 3 * CL_ATTRS_MAX,
};

static bool cluster_ok(const char *c)
{
    size_t n = strlen(c);
    if (n == 0 || n > CL_CLUSTER_MAX)
        return false;
    for (; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            return false;
    return true;
}

bool cl_instance_id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > CL_INSTANCE_ID_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'f') || (*s >= '0' && *s <= '9') || *s == '-'))
            return false;
    return true;
}

bool cl_status_ok(const char *s)
{
    return s && (strcmp(s, "ACTIVE") == 0 || strcmp(s, "DRAINING") == 0);
}

int cl_instances_prefix(const char *cluster, char *out, size_t outlen)
{
    if (!cluster || !cluster_ok(cluster))
        return -EINVAL;
    int n = snprintf(out, outlen, "%s%s/instances/", CL_KEY_ROOT, cluster);
    return n < 0 || (size_t)n >= outlen ? -EINVAL : n;
}

int cl_cluster_key(const char *cluster, const char *leaf, char *out, size_t outlen)
{
    if (!cluster || !cluster_ok(cluster))
        return -EINVAL;
    int n = snprintf(out, outlen, "%s%s/%s", CL_KEY_ROOT, cluster, leaf);
    return n < 0 || (size_t)n >= outlen ? -EINVAL : n;
}

int cl_instance_key(const char *cluster, const char *id, char *out, size_t outlen)
{
    if (!cluster || !cluster_ok(cluster) || !cl_instance_id_ok(id))
        return -EINVAL;
    int n = snprintf(out, outlen, "%s%s/instances/%s", CL_KEY_ROOT, cluster, id);
    return n < 0 || (size_t)n >= outlen ? -EINVAL : n;
}

/* ---- attributes ------------------------------------------------------- */

static bool attr_chars(const char *s, size_t max, bool space)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("-_./@:", *s) || (space && *s == ' ')))
            return false;
    return true;
}

bool cl_attr_name_ok(const char *s)
{
    return s && attr_chars(s, CL_ATTR_NAME_MAX, false);
}

bool cl_attr_value_ok(const char *s)
{
    return s && attr_chars(s, CL_ATTR_VALUE_MAX, true);
}

const char *cl_instance_attr(const cl_instance *in, const char *name)
{
    for (size_t i = 0; i < in->n_attrs; i++)
        if (strcmp(in->attrs[i].name, name) == 0)
            return in->attrs[i].value;
    return NULL;
}

int cl_instance_set_attr(cl_instance *in, const char *name, const char *value)
{
    if (!cl_attr_name_ok(name) || !cl_attr_value_ok(value))
        return -EINVAL;
    size_t i = 0;
    while (i < in->n_attrs && strcmp(in->attrs[i].name, name) != 0)
        i++;
    if (i == in->n_attrs) {
        if (in->n_attrs >= CL_ATTRS_MAX)
            return -ENOSPC;
        in->n_attrs++;
    }
    snprintf(in->attrs[i].name, sizeof in->attrs[i].name, "%s", name);
    snprintf(in->attrs[i].value, sizeof in->attrs[i].value, "%s", value);
    return 0;
}

int cl_instance_custom_attrs(cl_instance *in, const char *json, char *why, size_t whylen)
{
    es_json *j = NULL;
    char jwhy[96];
    if (es_json_parse(json, strlen(json), &record_limits, &j, jwhy, sizeof jwhy) != 0)
        return es_errf(why, whylen, -EINVAL, "not a JSON object of strings: %s", jwhy);
    int r = 0;
    if (j->type != ES_JSON_OBJECT)
        r = es_errf(why, whylen, -EINVAL, "not a JSON object of strings");
    for (size_t i = 0; r == 0 && i < j->u.object.n; i++) {
        const char *k = j->u.object.keys[i];
        const char *v = es_json_as_str(j->u.object.values[i]);
        if (!v)
            r = es_errf(why, whylen, -EINVAL, "%.64s: the value is not a string", k);
        else if (strncmp(k, "ecs.", 4) == 0)
            r = es_errf(why, whylen, -EINVAL, "%.64s: names starting 'ecs.' are ECS's own", k);
        else if (!cl_attr_name_ok(k))
            r = es_errf(why, whylen, -EINVAL,
                        "%.64s: a name is 1 to %d letters, digits and - _ . / @ :", k,
                        CL_ATTR_NAME_MAX);
        else if (!cl_attr_value_ok(v))
            r = es_errf(why, whylen, -EINVAL,
                        "%.64s: a value is 1 to %d letters, digits, spaces and - _ . / @ :", k,
                        CL_ATTR_VALUE_MAX);
        else if (cl_instance_set_attr(in, k, v) < 0)
            r = es_errf(why, whylen, -EINVAL, "more than %d attributes", CL_ATTRS_MAX);
    }
    es_json_free(j);
    return r;
}

/* ---- the record ------------------------------------------------------- */

int cl_instance_write(const cl_instance *in, es_buf *out)
{
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "id", in->id);
    es_jw_kstr(&w, "containerInstanceArn", in->arn);
    es_jw_kstr(&w, "ec2InstanceId", in->host_id);
    es_jw_kstr(&w, "status", in->status);
    es_jw_kbool(&w, "agentConnected", in->agent_connected);
    es_jw_kstr(&w, "agentVersion", in->agent_version);
    es_jw_kint(&w, "registeredAt", in->registered_at);
    es_jw_kint(&w, "cpu", in->cpu);
    es_jw_kint(&w, "memory", in->memory);
    es_jw_kint(&w, "runningTasksCount", in->running_tasks);
    es_jw_kint(&w, "pendingTasksCount", in->pending_tasks);
    es_jw_key(&w, "attributes");
    es_jw_arr(&w);
    for (size_t i = 0; i < in->n_attrs; i++) {
        es_jw_obj(&w);
        es_jw_kstr(&w, "name", in->attrs[i].name);
        es_jw_kstr(&w, "value", in->attrs[i].value);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    es_jw_obj_end(&w);
    return es_jw_finish(&w);
}

static int str_field(const es_json *o, const char *k, char *dst, size_t dstlen, bool empty_ok,
                     char *why, size_t whylen)
{
    const es_json *v = es_json_get(o, k);
    if (!v || v->type != ES_JSON_STRING || v->u.string.len >= dstlen ||
        strlen(v->u.string.s) != v->u.string.len || (!empty_ok && v->u.string.len == 0))
        return es_errf(why, whylen, -EINVAL, "%s: missing, not a string or longer than %zu", k,
                       dstlen - 1);
    memcpy(dst, v->u.string.s, v->u.string.len + 1);
    return 0;
}

static int int_field(const es_json *o, const char *k, int64_t *dst, char *why, size_t whylen)
{
    if (!es_json_get_int64(o, k, dst) || *dst < 0)
        return es_errf(why, whylen, -EINVAL, "%s: missing or not a whole number >= 0", k);
    return 0;
}

static int read_attrs(const es_json *arr, cl_instance *in, char *why, size_t whylen)
{
    if (!arr || arr->type != ES_JSON_ARRAY || arr->u.array.n > CL_ATTRS_MAX)
        return es_errf(why, whylen, -EINVAL, "attributes: not an array of at most %d",
                       CL_ATTRS_MAX);
    for (size_t i = 0; i < arr->u.array.n; i++) {
        const es_json *a = arr->u.array.items[i];
        const char *n = es_json_get_str(a, "name"), *v = es_json_get_str(a, "value");
        if (!n || !v || cl_instance_set_attr(in, n, v) < 0)
            return es_errf(why, whylen, -EINVAL, "attributes[%zu]: not a valid name and value", i);
    }
    return 0;
}

int cl_instance_read(const char *text, size_t len, cl_instance *out, char *why, size_t whylen)
{
    es_json *j = NULL;
    char jwhy[96];
    int jr = es_json_parse(text, len, &record_limits, &j, jwhy, sizeof jwhy);
    if (jr == ES_JSON_E_NOMEM)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    if (jr)
        return es_errf(why, whylen, -EINVAL, "not a record: %s", jwhy);
    cl_instance in;
    memset(&in, 0, sizeof in);
    int r = j->type == ES_JSON_OBJECT ? 0 : es_errf(why, whylen, -EINVAL, "not a JSON object");
    if (r == 0)
        r = str_field(j, "id", in.id, sizeof in.id, false, why, whylen);
    if (r == 0 && !cl_instance_id_ok(in.id))
        r = es_errf(why, whylen, -EINVAL, "id: not an instance ID");
    if (r == 0)
        r = str_field(j, "containerInstanceArn", in.arn, sizeof in.arn, false, why, whylen);
    if (r == 0)
        r = str_field(j, "ec2InstanceId", in.host_id, sizeof in.host_id, true, why, whylen);
    if (r == 0)
        r = str_field(j, "status", in.status, sizeof in.status, false, why, whylen);
    if (r == 0 && !cl_status_ok(in.status))
        r = es_errf(why, whylen, -EINVAL, "status: neither ACTIVE nor DRAINING");
    if (r == 0)
        r = str_field(j, "agentVersion", in.agent_version, sizeof in.agent_version, true, why,
                      whylen);
    if (r == 0 && !es_json_get_bool(j, "agentConnected", &in.agent_connected))
        r = es_errf(why, whylen, -EINVAL, "agentConnected: missing or not a boolean");
    if (r == 0)
        r = int_field(j, "registeredAt", &in.registered_at, why, whylen);
    if (r == 0)
        r = int_field(j, "cpu", &in.cpu, why, whylen);
    if (r == 0)
        r = int_field(j, "memory", &in.memory, why, whylen);
    if (r == 0)
        r = int_field(j, "runningTasksCount", &in.running_tasks, why, whylen);
    if (r == 0)
        r = int_field(j, "pendingTasksCount", &in.pending_tasks, why, whylen);
    if (r == 0)
        r = read_attrs(es_json_get(j, "attributes"), &in, why, whylen);
    es_json_free(j);
    if (r == 0)
        *out = in;
    return r;
}

/* ---- the host --------------------------------------------------------- */

/* MemTotal from a meminfo file (tests), in KiB: 0 or -errno. */
static int meminfo_total_kib(const char *meminfo, long long *kib)
{
    FILE *f = fopen(meminfo, "re");
    if (!f)
        return -errno;
    char line[256];
    *kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %lld kB", kib) == 1)
            break;
    fclose(f);
    return *kib > 0 ? 0 : -EINVAL;
}

int cl_host_resources(const char *meminfo, int64_t *cpu, int64_t *memory_mib)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    }
    if (n < 1)
        return -EINVAL;
    long long kib;
    int r;
    if (meminfo) {
        if ((r = meminfo_total_kib(meminfo, &kib)) < 0)
            return r;
    } else {
        /* sysinfo(2), not /proc/meminfo: the unit's ProcSubset=pid hides
         * /proc's non-process files (totalram is meminfo's MemTotal) */
        struct sysinfo si;
        if (sysinfo(&si) != 0)
            return -errno;
        kib = (long long)((unsigned long long)si.totalram * si.mem_unit / 1024);
        if (kib <= 0)
            return -EINVAL;
    }
    *cpu = (int64_t)n * 1024;
    *memory_mib = (int64_t)(kib / 1024);
    return 0;
}

const char *cl_host_arch(void)
{
    static struct utsname u;
    if (uname(&u) != 0)
        return "unknown";
    if (strcmp(u.machine, "aarch64") == 0)
        return "arm64";
    return u.machine;
}
