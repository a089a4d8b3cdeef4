/* cluster/instance.c (the record, its key, attributes, the host's
 * resources), cluster/member.c alone and its keepalive timing, and
 * agent/cluster.c's instance from the configuration. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/cluster.h"
#include "cluster/instance.h"
#include "cluster/member.h"

#define ID "0123456789abcdef0123456789abcdef"
#define ARN "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/" ID

static cl_instance sample(void)
{
    cl_instance in;
    memset(&in, 0, sizeof in);
    snprintf(in.id, sizeof in.id, "%s", ID);
    snprintf(in.arn, sizeof in.arn, "%s", ARN);
    snprintf(in.status, sizeof in.status, "ACTIVE");
    snprintf(in.agent_version, sizeof in.agent_version, "0.1.0");
    in.agent_connected = true;
    in.registered_at = 1700000000;
    in.cpu = 4096;
    in.memory = 7800;
    cr_assert_eq(cl_instance_set_attr(&in, "ecs.os-type", "linux"), 0);
    cr_assert_eq(cl_instance_set_attr(&in, "stack", "prod blue"), 0);
    return in;
}

Test(cluster_instance, key_layout)
{
    char k[CL_KEY_MAX + 1];
    cr_assert_gt(cl_instances_prefix("prod", k, sizeof k), 0);
    cr_assert_str_eq(k, "/ecs-secrets/clusters/prod/instances/");
    cr_assert_gt(cl_instance_key("prod", ID, k, sizeof k), 0);
    cr_assert_str_eq(k, "/ecs-secrets/clusters/prod/instances/" ID);
    /* names that would escape the layout */
    cr_assert_eq(cl_instance_key("prod/../x", ID, k, sizeof k), -EINVAL);
    cr_assert_eq(cl_instance_key("prod", "../x", k, sizeof k), -EINVAL);
    cr_assert_eq(cl_instance_key("", ID, k, sizeof k), -EINVAL);
    cr_assert_eq(cl_instances_prefix("a b", k, sizeof k), -EINVAL);
}

Test(cluster_instance, record_round_trip)
{
    cl_instance in = sample(), back;
    es_buf b;
    es_buf_init(&b, CL_RECORD_MAX);
    cr_assert_eq(cl_instance_write(&in, &b), 0);
    char why[160];
    cr_assert_eq(cl_instance_read(b.data, b.len, &back, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(back.arn, ARN);
    cr_assert_str_eq(back.status, "ACTIVE");
    cr_assert_eq(back.cpu, 4096);
    cr_assert_eq(back.memory, 7800);
    cr_assert_eq(back.registered_at, 1700000000);
    cr_assert_eq(back.n_attrs, 2);
    cr_assert_str_eq(cl_instance_attr(&back, "stack"), "prod blue");
    es_buf_free(&b);
}

static void read_bad(const char *json, const char *want)
{
    cl_instance out;
    char why[160] = "";
    cr_assert_lt(cl_instance_read(json, strlen(json), &out, why, sizeof why), 0, "accepted %s",
                 json);
    cr_assert_not_null(strstr(why, want), "why: %s (wanted %s)", why, want);
}

#define OK_TAIL                                                                                    \
    "\"ec2InstanceId\":\"\",\"agentVersion\":\"1\",\"agentConnected\":true,"                       \
    "\"registeredAt\":1,\"cpu\":1,\"memory\":1,\"runningTasksCount\":0,"                           \
    "\"pendingTasksCount\":0,\"attributes\":[]}"

Test(cluster_instance, bad_records)
{
    read_bad("[]", "not a JSON object");
    read_bad("{", "not a record");
    read_bad("{\"id\":\"../x\",\"containerInstanceArn\":\"a\",\"status\":\"ACTIVE\"," OK_TAIL,
             "id");
    read_bad("{\"id\":\"" ID "\",\"containerInstanceArn\":\"a\",\"status\":\"GONE\"," OK_TAIL,
             "status");
    read_bad("{\"id\":\"" ID "\",\"containerInstanceArn\":\"a\",\"status\":\"ACTIVE\","
             "\"ec2InstanceId\":\"\",\"agentVersion\":\"1\",\"agentConnected\":true,"
             "\"registeredAt\":-1,\"cpu\":1,\"memory\":1,\"runningTasksCount\":0,"
             "\"pendingTasksCount\":0,\"attributes\":[]}",
             "registeredAt");
    read_bad("{\"id\":\"" ID "\",\"containerInstanceArn\":\"a\",\"status\":\"ACTIVE\","
             "\"ec2InstanceId\":\"\",\"agentVersion\":\"1\",\"agentConnected\":true,"
             "\"registeredAt\":1,\"cpu\":1,\"memory\":1,\"runningTasksCount\":0,"
             "\"pendingTasksCount\":0,\"attributes\":[{\"name\":\"a b\",\"value\":\"x\"}]}",
             "attributes[0]");
    /* a record past its size is refused before it is looked at */
    size_t big = CL_RECORD_MAX + 10;
    char *s = malloc(big + 1);
    memset(s, ' ', big);
    s[0] = '{';
    s[big - 1] = '}';
    s[big] = '\0';
    read_bad(s, "not a record");
    free(s);
}

Test(cluster_instance, custom_attributes)
{
    cl_instance in = sample();
    char why[160];
    cr_assert_eq(
        cl_instance_custom_attrs(&in, "{\"team\":\"payments\",\"zone\":\"a/1\"}", why, sizeof why),
        0, "%s", why);
    cr_assert_str_eq(cl_instance_attr(&in, "team"), "payments");
    cr_assert_eq(cl_instance_custom_attrs(&in, "{\"ecs.os-type\":\"windows\"}", why, sizeof why),
                 -EINVAL);
    cr_assert_not_null(strstr(why, "ECS's own"));
    cr_assert_eq(cl_instance_custom_attrs(&in, "{\"a\":1}", why, sizeof why), -EINVAL);
    cr_assert_eq(cl_instance_custom_attrs(&in, "[\"a\"]", why, sizeof why), -EINVAL);
    cr_assert_eq(cl_instance_custom_attrs(&in, "{\"bad name\":\"x\"}", why, sizeof why), -EINVAL);
    cr_assert_eq(cl_instance_custom_attrs(&in, "{\"a\":\"\"}", why, sizeof why), -EINVAL);
    char many[8192];
    size_t n = (size_t)snprintf(many, sizeof many, "{");
    for (int i = 0; i <= CL_ATTRS_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(many + n, sizeof many - n, "}");
    cr_assert_eq(cl_instance_custom_attrs(&in, many, why, sizeof why), -EINVAL);
}

Test(cluster_instance, host_resources)
{
    char path[] = "/tmp/es-meminfo-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char text[] = "MemFree: 100 kB\nMemTotal:       8048576 kB\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    int64_t cpu = 0, mem = 0;
    cr_assert_eq(cl_host_resources(path, &cpu, &mem), 0);
    cr_assert_eq(mem, 8048576 / 1024);
    cr_assert_eq(cpu, sysconf(_SC_NPROCESSORS_ONLN) * 1024);
    FILE *f = fopen(path, "w");
    fputs("MemFree: 1 kB\n", f);
    fclose(f);
    cr_assert_eq(cl_host_resources(path, &cpu, &mem), -EINVAL);
    unlink(path);
}

Test(cluster_member, keepalive_timing)
{
    /* a third of the TTL, as etcd's clients renew, never under 500 ms */
    cr_assert_eq(cl_member_keepalive_ms(15), 5000);
    cr_assert_eq(cl_member_keepalive_ms(5), 1666);
    cr_assert_eq(cl_member_keepalive_ms(1), 500);
    cr_assert_eq(cl_member_keepalive_ms(0), 500);
    /* after a failed keepalive (itself bounded by the request timeout), retries
     * every sixth of the TTL: several fit before the lease runs out, for every TTL */
    for (int64_t ttl = CL_MEMBER_TTL_MIN; ttl <= CL_MEMBER_TTL_MAX; ttl++) {
        uint64_t first = cl_member_keepalive_ms(ttl) + (uint64_t)cl_member_request_ms(ttl);
        uint64_t left = (uint64_t)ttl * 1000 - first;
        cr_assert_gt(first, 0);
        cr_assert_lt(first, (uint64_t)ttl * 1000, "TTL %lld: the first keepalive ends after it",
                     (long long)ttl);
        cr_assert_geq(left / (cl_member_retry_ms(ttl) + (uint64_t)cl_member_request_ms(ttl)), 1,
                      "TTL %lld: no retry fits", (long long)ttl);
    }
    /* a healthy leader's renewal (the keepalive's period and its request's
     * time) is answered before it would step down, for every TTL etcd grants */
    for (int64_t g = CL_MEMBER_ETCD_MIN_TTL; g <= CL_MEMBER_TTL_MAX; g++)
        cr_assert_lt(cl_member_keepalive_ms(g) + (uint64_t)cl_member_request_ms(g),
                     cl_member_lead_ms(g), "granted %lld: a slow renewal steps the leader down",
                     (long long)g);
    cr_assert_eq(cl_member_retry_ms(15), CL_MEMBER_RETRY_MS);
    cr_assert_eq(cl_member_retry_ms(2), 333);
    cr_assert_eq(cl_member_request_ms(5), 1250);
    cr_assert_eq(cl_member_request_ms(60), CL_ETCD_TIMEOUT_MS);
    cr_assert_eq(cl_member_request_ms(1), 500);
}

static int closed_calls;
static void on_closed(void *arg)
{
    (void)arg;
    closed_calls++;
}

Test(cluster_member, alone)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cl_instance self = sample();
    cl_member_config mc = {.loop = &loop, .cluster = "prod", .self = &self};
    cl_member *m = NULL;
    char why[160];
    cr_assert_eq(cl_member_start(&mc, &m, why, sizeof why), 0, "%s", why);
    cr_assert_eq(cl_member_get_state(m), CL_MEMBER_ALONE);
    cr_assert(!cl_member_is_clustered(m));
    size_t n;
    const cl_instance *v = cl_member_instances(m, &n);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].arn, ARN);
    cr_assert_not_null(cl_member_find(m, ARN));
    cr_assert_not_null(cl_member_find(m, ID));
    cr_assert_null(cl_member_find(m, "arn:aws:ecs:us-east-1:123456789012:container-instance/"
                                     "other/" ID));
    cr_assert_null(cl_member_find(m, "ffff"));
    /* alone, a status applies now, without a callback */
    cr_assert_eq(cl_member_set_status(m, ID, "DRAINING", (cl_member_update_cb)abort, NULL), 0);
    cr_assert_str_eq(cl_member_find(m, ID)->status, "DRAINING");
    cr_assert_str_eq(cl_member_self(m)->status, "DRAINING");
    cr_assert_eq(cl_member_set_status(m, ID, "GONE", (cl_member_update_cb)abort, NULL), -EINVAL);
    cr_assert_eq(cl_member_set_status(m, "ffff", "ACTIVE", (cl_member_update_cb)abort, NULL),
                 -ENOENT);
    cl_member_close(m, on_closed, NULL);
    cr_assert_eq(closed_calls, 1);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(cluster_member, refuses_bad_config)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cl_instance self = sample();
    cl_member *m = NULL;
    char why[160];
    cl_member_config mc = {.loop = &loop, .cluster = "prod", .self = &self, .lease_ttl = 1};
    cr_assert_eq(cl_member_start(&mc, &m, why, sizeof why), -EINVAL);
    mc.lease_ttl = 10;
    mc.cluster = "bad/name";
    cr_assert_eq(cl_member_start(&mc, &m, why, sizeof why), -EINVAL);
    cl_etcd_config ec = {.endpoints = "ftp://x:1"};
    mc.cluster = "prod";
    mc.etcd = &ec;
    cr_assert_eq(cl_member_start(&mc, &m, why, sizeof why), -EINVAL);
    cr_assert_not_null(strstr(why, "ftp://x:1"), "%s", why);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(cluster_etcd, endpoints)
{
    char urls[CL_ETCD_ENDPOINTS_MAX][CL_ETCD_URL_MAX], why[160];
    cr_assert_eq(cl_etcd_parse_endpoints(" http://127.0.0.1:2379, https://e2:2379/ ,", urls,
                                         CL_ETCD_ENDPOINTS_MAX, why, sizeof why),
                 2, "%s", why);
    cr_assert_str_eq(urls[0], "http://127.0.0.1:2379");
    cr_assert_str_eq(urls[1], "https://e2:2379");
    cr_assert_lt(cl_etcd_parse_endpoints("", urls, CL_ETCD_ENDPOINTS_MAX, why, sizeof why), 0);
    cr_assert_lt(cl_etcd_parse_endpoints("127.0.0.1:2379", urls, 4, why, sizeof why), 0);
    cr_assert_lt(cl_etcd_parse_endpoints("http://h:1/v3", urls, 4, why, sizeof why), 0);
    cr_assert_lt(cl_etcd_parse_endpoints("http://u@h:1", urls, 4, why, sizeof why), 0);
    cr_assert_lt(cl_etcd_parse_endpoints("http://a:1,http://b:1", urls, 1, why, sizeof why), 0);
}

Test(agent_cluster, instance_from_config)
{
    char dir[] = "/tmp/es-instance-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char id[AG_INSTANCE_ID_HEX + 1], again[AG_INSTANCE_ID_HEX + 1];
    cr_assert_eq(ag_instance_id_load(dir, id), 0);
    cr_assert_eq(strlen(id), AG_INSTANCE_ID_HEX);
    cr_assert_eq(ag_instance_id_load(dir, again), 0);
    cr_assert_str_eq(id, again, "a restart is the same instance");
    char *argv[] = {"agent",
                    "--cluster",
                    "prod",
                    "--region",
                    "eu-west-1",
                    "--instance-cpu",
                    "2048",
                    "--instance-attributes",
                    "{\"team\":\"payments\"}",
                    NULL};
    char *envp[] = {NULL};
    cf_config cfg;
    cf_action act;
    es_buf err;
    es_buf_init(&err, 4096);
    cr_assert_eq(cf_load(&cfg, 9, argv, envp, &act, &err), 0, "%s", es_buf_cstr(&err));
    cl_instance in;
    char why[160];
    cr_assert_eq(ag_instance_build(&cfg, id, 1700000000, &in, why, sizeof why), 0, "%s", why);
    char arn[256];
    snprintf(arn, sizeof arn, "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/%s", id);
    cr_assert_str_eq(in.arn, arn);
    cr_assert_eq(in.cpu, 2048);
    cr_assert_gt(in.memory, 0);
    cr_assert_str_eq(cl_instance_attr(&in, "ecs.os-type"), "linux");
    cr_assert_str_eq(cl_instance_attr(&in, "ecs.instance-type"), "self-managed");
    cr_assert_not_null(cl_instance_attr(&in, "ecs.cpu-architecture"));
    cr_assert_str_eq(cl_instance_attr(&in, "team"), "payments");
    cf_free(&cfg);
    es_buf_free(&err);
    char path[64];
    snprintf(path, sizeof path, "%s/%s", dir, AG_INSTANCE_ID_FILE);
    unlink(path);
    rmdir(dir);
}

/* The configured TTL is the promise (a dead host's lease gone, another agent
 * leading, within it): etcd is asked for less by what etcd itself adds
 * after a lease's end (its lessor's 500 ms check, a consensus round). */
Test(cluster_member, asked_ttl_leaves_etcd_its_part)
{
    bool no_room = true;
    cr_assert_eq(cl_member_asked_ttl(15, &no_room), 14);
    cr_assert_not(no_room);
    cr_assert_eq(cl_member_asked_ttl(5, &no_room), 4);
    cr_assert_eq(cl_member_asked_ttl(3, &no_room), 2);
    cr_assert_not(no_room);
    cr_assert_eq(cl_member_asked_ttl(CL_MEMBER_TTL_MAX, NULL), CL_MEMBER_TTL_MAX - 1);
    /* 2 s leaves no room: etcd's minimum is asked, and the caller warns */
    cr_assert_eq(cl_member_asked_ttl(2, &no_room), CL_MEMBER_ETCD_MIN_TTL);
    cr_assert(no_room);
    for (int64_t c = CL_MEMBER_TTL_MIN; c <= CL_MEMBER_TTL_MAX; c++) {
        int64_t asked = cl_member_asked_ttl(c, &no_room);
        cr_assert_geq(asked, CL_MEMBER_ETCD_MIN_TTL, "configured %lld", (long long)c);
        cr_assert_leq(asked, c);
        if (!no_room)
            /* the worst case after a SIGKILL: a keepalive just before it,
             * the whole lease, the lessor's 500 ms, a consensus round */
            cr_assert_leq(asked * 1000 + 500 + 500, c * 1000, "configured %lld: asked %lld",
                          (long long)c, (long long)asked);
        else
            cr_assert_eq(asked, CL_MEMBER_ETCD_MIN_TTL);
    }
}

/* A leader that cannot renew steps down before etcd could end its lease:
 * measured from the SENDING of the last renewal that succeeded (etcd
 * renewed it later than that, never earlier), a margin short of the
 * granted TTL for a timer that fires late. */
Test(cluster_member, step_down_before_the_lease_can_end)
{
    cr_assert_eq(cl_member_lead_ms(2), 1800);
    cr_assert_eq(cl_member_lead_ms(4), 3600);
    cr_assert_eq(cl_member_lead_ms(5), 4500);
    cr_assert_eq(cl_member_lead_ms(14), 13500);
    cr_assert_eq(cl_member_lead_ms(3600), 3600 * 1000 - CL_MEMBER_LEAD_MARGIN_MS);
    cr_assert_eq(cl_member_lead_ms(0), 0);
    cr_assert_eq(cl_member_lead_ms(-1), 0);
    for (int64_t g = CL_MEMBER_ETCD_MIN_TTL; g <= CL_MEMBER_TTL_MAX; g++) {
        uint64_t lead = cl_member_lead_ms(g);
        cr_assert_lt(lead, (uint64_t)g * 1000, "granted %lld", (long long)g);
        cr_assert_geq((uint64_t)g * 1000 - lead, 200, "granted %lld: no margin", (long long)g);
    }
}
