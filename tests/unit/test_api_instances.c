/* The container-instance operations (agent/api/instances.c) on a member
 * alone (no etcd): this host as the cluster's one instance, as the
 * listener calls them. The etcd side runs in test_cluster_etcd.sh. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api/api.h"
#include "agent/api/instances.h"
#include "aws_fake.h" /* expect_no_leaks */

#define ID "00112233445566778899aabbccddeeff"
#define ARN "arn:aws:ecs:us-east-2:123456789012:container-instance/blue/" ID
#define ROOT "arn:aws:iam::123456789012:root"

static uv_loop_t loop;
static char dir[64];
static ag_store *store;
static ag_metrics *metrics;
static ag_api *api;
static cl_member *member;
static ag_api_instances *x;

static void setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    snprintf(dir, sizeof dir, "/tmp/es-api-ci-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[AG_STORE_ERR_MAX];
    cr_assert_eq(ag_store_open(dir, &store, err, sizeof err), 0, "%s", err);
    metrics = ag_metrics_create();
    cr_assert_not_null(metrics);
    ag_api_config c = {.store = store,
                       .metrics = metrics,
                       .region = "us-east-2",
                       .account = "123456789012",
                       .cluster = "blue"};
    cr_assert_eq(ag_api_create(&c, &api), 0);
    static cl_instance self;
    memset(&self, 0, sizeof self);
    snprintf(self.id, sizeof self.id, "%s", ID);
    snprintf(self.arn, sizeof self.arn, "%s", ARN);
    snprintf(self.status, sizeof self.status, "ACTIVE");
    snprintf(self.agent_version, sizeof self.agent_version, "0.1.0");
    self.agent_connected = true;
    self.registered_at = 1700000000;
    self.cpu = 2048;
    self.memory = 3000;
    cr_assert_eq(cl_instance_set_attr(&self, "ecs.os-type", "linux"), 0);
    cl_member_config mc = {.loop = &loop, .cluster = "blue", .self = &self};
    char why[128];
    cr_assert_eq(cl_member_start(&mc, &member, why, sizeof why), 0, "%s", why);
    cr_assert_eq(ag_api_instances_attach(api, member, &x), 0);
}

static void teardown(void)
{
    cl_member_close(member, NULL, NULL);
    ag_api_instances_free(x);
    ag_api_free(api);
    ag_metrics_free(metrics);
    ag_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0);
    expect_no_leaks();
}

TestSuite(api_instances, .init = setup, .fini = teardown);

static es_json *call_as(const char *who, const char *op, const char *body, al_error *e)
{
    es_buf out;
    es_buf_init(&out, 1 << 20);
    memset(e, 0, sizeof *e);
    int r = ag_api_handle(api, op, who, body, strlen(body), &out, e);
    es_json *j = NULL;
    if (r == 0)
        cr_assert_eq(es_json_parse(out.data, out.len, &es_json_default_limits, &j, NULL, 0), 0);
    else
        cr_assert_eq(out.len, 0);
    es_buf_free(&out);
    return j;
}

static es_json *ok(const char *op, const char *body)
{
    al_error e;
    es_json *j = call_as(ROOT, op, body, &e);
    cr_assert_not_null(j, "%s %s: %s: %s", op, body, e.code, e.message);
    return j;
}

static void bad(const char *op, const char *body, const char *code, const char *part)
{
    al_error e;
    es_json *j = call_as(ROOT, op, body, &e);
    cr_assert_null(j, "%s %s succeeded", op, body);
    cr_assert_str_eq(e.code, code, "%s: %s", e.code, e.message);
    cr_assert_not_null(strstr(e.message, part), "'%s' lacks '%s'", e.message, part);
}

static const es_json *resource(const es_json *ci, const char *list, const char *name)
{
    const es_json *l = es_json_get(ci, list);
    for (size_t i = 0; i < es_json_len(l); i++)
        if (strcmp(es_json_get_str(es_json_at(l, i), "name"), name) == 0)
            return es_json_at(l, i);
    cr_assert_fail("%s has no %s", list, name);
    return NULL;
}

Test(api_instances, list_and_describe_this_host)
{
    es_json *j = ok("ListContainerInstances", "{\"cluster\":\"blue\"}");
    const es_json *arns = es_json_get(j, "containerInstanceArns");
    cr_assert_eq(es_json_len(arns), 1);
    cr_assert_str_eq(es_json_as_str(es_json_at(arns, 0)), ARN);
    cr_assert_null(es_json_get(j, "nextToken"));
    es_json_free(j);
    j = ok("ListContainerInstances", "{\"status\":\"DRAINING\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "containerInstanceArns")), 0);
    es_json_free(j);
    /* --filter in the cluster query language */
    j = ok("ListContainerInstances", "{\"filter\":\"attribute:ecs.os-type == linux\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "containerInstanceArns")), 1);
    es_json_free(j);
    j = ok("ListContainerInstances",
           "{\"filter\":\"attribute:ecs.os-type == windows or attribute:gpu exists\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "containerInstanceArns")), 0);
    es_json_free(j);

    j = ok("DescribeContainerInstances",
           "{\"cluster\":\"blue\",\"containerInstances\":[\"" ID "\",\"ffff\"]}");
    const es_json *ci = es_json_at(es_json_get(j, "containerInstances"), 0);
    cr_assert_str_eq(es_json_get_str(ci, "containerInstanceArn"), ARN);
    cr_assert_str_eq(es_json_get_str(ci, "status"), "ACTIVE");
    int64_t v = 0;
    cr_assert(es_json_get_int64(resource(ci, "registeredResources", "CPU"), "integerValue", &v));
    cr_assert_eq(v, 2048);
    cr_assert(es_json_get_int64(resource(ci, "remainingResources", "MEMORY"), "integerValue", &v));
    cr_assert_eq(v, 3000);
    cr_assert_eq(
        es_json_len(es_json_get(resource(ci, "registeredResources", "PORTS"), "stringSetValue")),
        5);
    cr_assert_str_eq(es_json_get_str(resource(ci, "registeredResources", "PORTS_UDP"), "type"),
                     "STRINGSET");
    cr_assert_str_eq(es_json_get_str(es_json_at(es_json_get(ci, "attributes"), 0), "value"),
                     "linux");
    cr_assert(es_json_get_int64(ci, "registeredAt", &v));
    cr_assert_eq(v, 1700000000);
    const es_json *f = es_json_at(es_json_get(j, "failures"), 0);
    cr_assert_str_eq(es_json_get_str(f, "reason"), "MISSING");
    cr_assert_str_eq(es_json_get_str(f, "arn"),
                     "arn:aws:ecs:us-east-2:123456789012:container-instance/blue/ffff");
    es_json_free(j);
}

Test(api_instances, drain_and_count)
{
    es_json *j = ok("UpdateContainerInstancesState",
                    "{\"containerInstances\":[\"" ARN "\"],\"status\":\"DRAINING\"}");
    cr_assert_str_eq(es_json_get_str(es_json_at(es_json_get(j, "containerInstances"), 0), "status"),
                     "DRAINING");
    cr_assert_eq(es_json_len(es_json_get(j, "failures")), 0);
    es_json_free(j);
    j = ok("ListContainerInstances", "{\"status\":\"DRAINING\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "containerInstanceArns")), 1);
    es_json_free(j);
    j = ok("DescribeClusters", "{}");
    int64_t n = 0;
    cr_assert(es_json_get_int64(es_json_at(es_json_get(j, "clusters"), 0),
                                "registeredContainerInstancesCount", &n));
    cr_assert_eq(n, 1);
    es_json_free(j);
    /* unknown instances are failures, not errors */
    j = ok("UpdateContainerInstancesState",
           "{\"containerInstances\":[\"abcd\"],\"status\":\"ACTIVE\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "containerInstances")), 0);
    cr_assert_str_eq(es_json_get_str(es_json_at(es_json_get(j, "failures"), 0), "reason"),
                     "MISSING");
    es_json_free(j);
}

Test(api_instances, validation)
{
    bad("UpdateContainerInstancesState",
        "{\"containerInstances\":[\"" ID "\"],\"status\":\"GONE\"}", "InvalidParameterException",
        "status");
    bad("UpdateContainerInstancesState", "{\"containerInstances\":[\"" ID "\"]}",
        "InvalidParameterException", "status");
    bad("UpdateContainerInstancesState",
        "{\"containerInstances\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\","
        "\"k\"],\"status\":\"ACTIVE\"}",
        "InvalidParameterException", "containerInstances");
    bad("DescribeContainerInstances", "{}", "InvalidParameterException", "containerInstances");
    bad("DescribeContainerInstances", "{\"containerInstances\":[\"" ID "\"],\"cluster\":\"red\"}",
        "ClusterNotFoundException", "");
    bad("ListContainerInstances", "{\"status\":\"LOST\"}", "InvalidParameterException", "status");
    bad("ListContainerInstances", "{\"filter\":\"attribute:ecs.os-type ==\"}",
        "InvalidParameterException", "filter");
    bad("ListContainerInstances", "{\"filter\":\"task:group == service:web\"}",
        "InvalidParameterException", "filter");
    bad("ListContainerInstances", "{\"nextToken\":\"garbage\"}", "InvalidParameterException",
        "nextToken");
}

Test(api_instances, authorised_on_the_instance)
{
    /* no IAM (aws mode): the administrator only, and the refusal names the
     * action and the instance's ARN */
    al_error e;
    const char *who = "arn:aws:sts::123456789012:assumed-role/app/s1";
    cr_assert_null(
        call_as(who, "DescribeContainerInstances", "{\"containerInstances\":[\"" ID "\"]}", &e));
    cr_assert_str_eq(e.code, "AccessDeniedException");
    cr_assert(strstr(e.message, "ecs:DescribeContainerInstances on resource: " ARN), "%s",
              e.message);
    cr_assert_null(call_as(who, "UpdateContainerInstancesState",
                           "{\"containerInstances\":[\"" ID "\"],\"status\":\"DRAINING\"}", &e));
    cr_assert(strstr(e.message, "ecs:UpdateContainerInstancesState on resource: " ARN), "%s",
              e.message);
    cr_assert_null(call_as(who, "ListContainerInstances", "{}", &e));
    cr_assert(strstr(e.message, "ecs:ListContainerInstances on resource: "
                                "arn:aws:ecs:us-east-2:123456789012:cluster/blue"),
              "%s", e.message);
    /* nothing changed */
    es_json *j = ok("ListContainerInstances", "{\"status\":\"ACTIVE\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "containerInstanceArns")), 1);
    es_json_free(j);
}

Test(api_instances, metrics)
{
    es_buf out;
    es_buf_init(&out, 1 << 20);
    const char *ct = NULL;
    cr_assert_eq(ag_api_metrics(api, "/metrics", &out, &ct), 0);
    const char *page = es_buf_cstr(&out);
    cr_assert_not_null(strstr(page, "\necs_agent_cluster_instances 1\n"), "%s", page);
    cr_assert_not_null(strstr(page, "\necs_agent_cluster_registered 1\n"), "%s", page);
    /* alone: no etcd figures */
    cr_assert_null(strstr(page, "ecs_agent_etcd_requests_total"), "%s", page);
    es_buf_free(&out);
}
