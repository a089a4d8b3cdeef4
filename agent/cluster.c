#include "agent/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/secure.h"

static int read_id(int fd, char out[AG_INSTANCE_ID_HEX + 1])
{
    char buf[AG_INSTANCE_ID_HEX + 2];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0)
        return -errno;
    if (n > AG_INSTANCE_ID_HEX && buf[AG_INSTANCE_ID_HEX] == '\n')
        n = AG_INSTANCE_ID_HEX;
    buf[n] = '\0';
    if (n != AG_INSTANCE_ID_HEX || !cl_instance_id_ok(buf) || strchr(buf, '-'))
        return -EINVAL;
    memcpy(out, buf, AG_INSTANCE_ID_HEX + 1);
    return 0;
}

static int make_id(const char *path, char out[AG_INSTANCE_ID_HEX + 1])
{
    unsigned char raw[AG_INSTANCE_ID_HEX / 2];
    char hex[AG_INSTANCE_ID_HEX + 2];
    int r = es_random_bytes(raw, sizeof raw);
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[AG_INSTANCE_ID_HEX] = '\n';
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (write(fd, hex, AG_INSTANCE_ID_HEX + 1) != AG_INSTANCE_ID_HEX + 1 || fsync(fd) < 0)
        r = -EIO;
    close(fd);
    /* link, not rename: a second agent racing on the same dir keeps the first ID */
    if (r == 0 && link(tmp, path) < 0)
        r = -errno;
    (void)unlink(tmp);
    if (r < 0)
        return r;
    hex[AG_INSTANCE_ID_HEX] = '\0';
    memcpy(out, hex, AG_INSTANCE_ID_HEX + 1);
    return 0;
}

int ag_instance_id_load(const char *dir, char out[AG_INSTANCE_ID_HEX + 1])
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, AG_INSTANCE_ID_FILE);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        int r = read_id(fd, out);
        close(fd);
        return r;
    }
    if (errno != ENOENT)
        return -errno;
    int r = make_id(path, out);
    return r == -EEXIST ? ag_instance_id_load(dir, out) : r;
}

int ag_instance_arn(const cf_config *cfg, char *out, size_t outlen)
{
    char id[AG_INSTANCE_ID_HEX + 1];
    int r = ag_instance_id_load(cf_get(cfg, CF_STATE_DIR), id);
    if (r < 0)
        return r;
    int n =
        snprintf(out, outlen, "arn:aws:ecs:%s:%s:container-instance/%s/%s", cf_get(cfg, CF_REGION),
                 cf_get(cfg, CF_ACCOUNT_ID), cf_get(cfg, CF_CLUSTER), id);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int64_t count_or(const char *v, int64_t host)
{
    return v ? (int64_t)strtoll(v, NULL, 10) : host; /* validated at load: digits */
}

int ag_instance_build(const cf_config *cfg, const char *id, int64_t now, cl_instance *out,
                      char *why, size_t whylen)
{
    cl_instance in;
    memset(&in, 0, sizeof in);
    snprintf(in.id, sizeof in.id, "%s", id);
    int n =
        snprintf(in.arn, sizeof in.arn, "arn:aws:ecs:%s:%s:container-instance/%s/%s",
                 cf_get(cfg, CF_REGION), cf_get(cfg, CF_ACCOUNT_ID), cf_get(cfg, CF_CLUSTER), id);
    if (n < 0 || (size_t)n >= sizeof in.arn)
        return es_errf(why, whylen, -EINVAL, "the instance's ARN is too long");
    snprintf(in.status, sizeof in.status, "ACTIVE");
    snprintf(in.agent_version, sizeof in.agent_version, "%s", ES_VERSION);
    in.agent_connected = true;
    in.registered_at = now;
    int64_t cpu = 0, mem = 0;
    int r = cl_host_resources(NULL, &cpu, &mem);
    if (r < 0 && (!cf_get(cfg, CF_INSTANCE_CPU) || !cf_get(cfg, CF_INSTANCE_MEMORY)))
        return es_errf(why, whylen, r, "the host's CPU and memory could not be read: %s",
                       strerror(-r));
    in.cpu = count_or(cf_get(cfg, CF_INSTANCE_CPU), cpu);
    in.memory = count_or(cf_get(cfg, CF_INSTANCE_MEMORY), mem);
    if (cl_instance_set_attr(&in, "ecs.os-type", "linux") < 0 ||
        cl_instance_set_attr(&in, "ecs.instance-type", cf_get(cfg, CF_INSTANCE_TYPE)) < 0 ||
        cl_instance_set_attr(&in, "ecs.cpu-architecture", cl_host_arch()) < 0)
        return es_errf(why, whylen, -EINVAL, "the built-in attributes are not valid");
    const char *custom = cf_get(cfg, CF_INSTANCE_ATTRIBUTES);
    if (custom && (r = cl_instance_custom_attrs(&in, custom, why, whylen)) < 0)
        return r;
    *out = in;
    return 0;
}

static void on_event(void *arg, cl_member_event ev, const char *detail)
{
    (void)arg;
    switch (ev) {
    case CL_MEMBER_EV_STATE:
        es_info("cluster: %s", detail);
        break;
    case CL_MEMBER_EV_REGISTERED:
    case CL_MEMBER_EV_REVOKED:
    case CL_MEMBER_EV_LEADER:
        es_notice("cluster: %s", detail);
        break;
    case CL_MEMBER_EV_LEASE_LOST:
    case CL_MEMBER_EV_ETCD_FAILED:
    case CL_MEMBER_EV_BAD_RECORD:
        es_warn("cluster: %s", detail);
        break;
    case CL_MEMBER_EV_VIEW:
        es_info("cluster: the view holds %s", detail);
        break;
    }
}

int ag_cluster_start(const cf_config *cfg, uv_loop_t *loop, cl_member **out)
{
    char id[AG_INSTANCE_ID_HEX + 1], why[256];
    const char *dir = cf_get(cfg, CF_STATE_DIR);
    int r = ag_instance_id_load(dir, id);
    if (r < 0) {
        es_err("cluster: the instance ID in %s/%s: %s", dir, AG_INSTANCE_ID_FILE, strerror(-r));
        return r;
    }
    static cl_instance self; /* large: built once, copied by the member */
    if ((r = ag_instance_build(cfg, id, (int64_t)time(NULL), &self, why, sizeof why)) < 0) {
        es_err("cluster: %s", why);
        return r;
    }
    long ttl = CL_MEMBER_TTL_DEFAULT;
    (void)cf_parse_duration(cf_get(cfg, CF_ETCD_LEASE_TTL), &ttl);
    cl_etcd_config ec = {.endpoints = cf_get(cfg, CF_ETCD_ENDPOINTS),
                         .ca_file = cf_get(cfg, CF_ETCD_CACERT),
                         .cert = cf_get(cfg, CF_ETCD_CERT),
                         .key = cf_get(cfg, CF_ETCD_KEY)};
    cl_member_config mc = {.loop = loop,
                           .etcd = ec.endpoints ? &ec : NULL,
                           .cluster = cf_get(cfg, CF_CLUSTER),
                           .lease_ttl = ttl,
                           .self = &self,
                           .on_event = on_event};
    if ((r = cl_member_start(&mc, out, why, sizeof why)) < 0) {
        es_err("cluster: %s", why);
        return r;
    }
    if (ec.endpoints) {
        bool no_room;
        int64_t asked = cl_member_asked_ttl(ttl, &no_room);
        es_info("cluster: joining %s as %s through etcd at %s (lease TTL %ld s: %" PRId64
                " s asked of etcd, which needs up to %d s more to end a dead host's lease)",
                cf_get(cfg, CF_CLUSTER), self.arn, ec.endpoints, ttl, asked,
                CL_MEMBER_TTL_MARGIN_S);
        if (no_room)
            es_warn("cluster: ECS_SECRETS_ETCD_LEASE_TTL %ld s leaves no room for etcd's own %d s "
                    "below its shortest lease (%d s): a dead host's lease may outlive it by up "
                    "to %d s",
                    ttl, CL_MEMBER_TTL_MARGIN_S, CL_MEMBER_ETCD_MIN_TTL,
                    (int)(CL_MEMBER_ETCD_MIN_TTL + CL_MEMBER_TTL_MARGIN_S - ttl));
    } else
        es_info("cluster: %s alone (no ECS_SECRETS_ETCD_ENDPOINTS)", self.arn);
    return 0;
}
