/* The ECS API's task-definition and cluster operations and /metrics, called
 * as the listener calls them (operation + body), against a real store. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api/api.h"
#include "agent/tasks/engine.h"
#include "aws_fake.h" /* expect_no_leaks */
#include "common/alloc.h"

static char dir[64];
static ag_store *store;
static ag_metrics *metrics;
static ag_api *api;
static int64_t fake_now = 1700000000;
static int64_t clock_fn(void)
{
    return fake_now;
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/es-api-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[AG_STORE_ERR_MAX];
    cr_assert_eq(ag_store_open(dir, &store, err, sizeof err), 0, "%s", err);
    metrics = ag_metrics_create();
    cr_assert_not_null(metrics);
    ag_api_config c = {.store = store,
                       .metrics = metrics,
                       .region = "us-east-2",
                       .account = "123456789012",
                       .cluster = "blue",
                       .now = clock_fn};
    cr_assert_eq(ag_api_create(&c, &api), 0);
}

static void teardown(void)
{
    ag_api_free(api);
    ag_metrics_free(metrics);
    ag_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    expect_no_leaks();
}

TestSuite(api, .init = setup, .fini = teardown);

/* Calls op with body; answers the parsed answer (ok) or NULL with *e. */
static es_json *call(const char *op, const char *body, al_error *e)
{
    es_buf out;
    es_buf_init(&out, 1 << 20);
    memset(e, 0, sizeof *e);
    int r = ag_api_handle(api, op, "arn:aws:iam::123456789012:root", body, strlen(body), &out, e);
    es_json *j = NULL;
    if (r == 0) {
        cr_assert_eq(es_json_parse(out.data, out.len, &es_json_default_limits, &j, NULL, 0), 0,
                     "%s answered bad JSON", op);
        cr_assert_eq(j->type, ES_JSON_OBJECT);
    } else {
        cr_assert_eq(out.len, 0, "an error leaves no answer");
        cr_assert(e->status == 400 || e->status == 500);
        cr_assert(e->code[0] && e->message[0]);
    }
    es_buf_free(&out);
    return j;
}

static es_json *ok(const char *op, const char *body)
{
    al_error e;
    es_json *j = call(op, body, &e);
    cr_assert_not_null(j, "%s %s: %s: %s", op, body, e.code, e.message);
    return j;
}

static void bad(const char *op, const char *body, const char *code, const char *msg_part)
{
    al_error e;
    es_json *j = call(op, body, &e);
    cr_assert_null(j, "%s %s succeeded; wanted %s", op, body, code);
    cr_assert_str_eq(e.code, code, "%s %s: %s: %s", op, body, e.code, e.message);
    cr_assert_not_null(strstr(e.message, msg_part), "%s: message '%s' lacks '%s'", op, e.message,
                       msg_part);
}

#define SEED_TD(family)                                                                            \
    "{\"family\":\"" family "\",\"executionRoleArn\":\"arn:aws:iam::123456789012:role/"            \
    "ecsTaskExecutionRole\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","    \
    "\"secrets\":[{\"name\":\"DB_PASSWORD\",\"valueFrom\":\"arn:aws:ssm:us-east-2:123456789012:"   \
    "parameter/test/database_password\"}],\"logConfiguration\":{\"logDriver\":\"splunk\","         \
    "\"options\":{\"splunk-url\":\"https://splunk.example:8088\"},\"secretOptions\":[{\"name\":"   \
    "\"splunk-token\",\"valueFrom\":\"/test/splunk_token\"}]}}]}"

static const char *str_at(const es_json *j, const char *a, const char *b)
{
    const es_json *x = es_json_get(j, a);
    cr_assert_not_null(x, "no %s", a);
    const char *s = es_json_get_str(x, b);
    cr_assert_not_null(s, "no %s.%s", a, b);
    return s;
}

static int64_t int_at(const es_json *j, const char *a, const char *b)
{
    int64_t v = 0;
    cr_assert(es_json_get_int64(es_json_get(j, a), b, &v), "no %s.%s", a, b);
    return v;
}

Test(api, register_describe_deregister_and_revisions_never_reused)
{
    es_json *j = ok("RegisterTaskDefinition", SEED_TD("web"));
    cr_assert_str_eq(str_at(j, "taskDefinition", "taskDefinitionArn"),
                     "arn:aws:ecs:us-east-2:123456789012:task-definition/web:1");
    cr_assert_eq(int_at(j, "taskDefinition", "revision"), 1);
    cr_assert_str_eq(str_at(j, "taskDefinition", "status"), "ACTIVE");
    cr_assert_eq(int_at(j, "taskDefinition", "registeredAt"), fake_now);
    cr_assert_not_null(es_json_get(j, "warnings"));
    es_json_free(j);

    j = ok("DescribeTaskDefinition", "{\"taskDefinition\":\"web\"}");
    const es_json *cd =
        es_json_at(es_json_get(es_json_get(j, "taskDefinition"), "containerDefinitions"), 0);
    const es_json *so =
        es_json_at(es_json_get(es_json_get(cd, "logConfiguration"), "secretOptions"), 0);
    cr_assert_str_eq(es_json_get_str(so, "valueFrom"), "/test/splunk_token");
    es_json_free(j);

    j = ok("RegisterTaskDefinition", SEED_TD("web"));
    cr_assert_eq(int_at(j, "taskDefinition", "revision"), 2);
    es_json_free(j);
    /* bare family: the latest ACTIVE one; family:rev and the ARN name one */
    j = ok("DescribeTaskDefinition", "{\"taskDefinition\":\"web\"}");
    cr_assert_eq(int_at(j, "taskDefinition", "revision"), 2);
    es_json_free(j);
    j = ok("DescribeTaskDefinition",
           "{\"taskDefinition\":\"arn:aws:ecs:us-east-2:123456789012:task-definition/web:1\","
           "\"include\":[\"TAGS\"]}");
    cr_assert_eq(int_at(j, "taskDefinition", "revision"), 1);
    cr_assert_not_null(es_json_get(j, "tags"));
    es_json_free(j);

    fake_now += 10;
    j = ok("DeregisterTaskDefinition", "{\"taskDefinition\":\"web:2\"}");
    cr_assert_str_eq(str_at(j, "taskDefinition", "status"), "INACTIVE");
    es_json_free(j);
    /* the bare family falls back to revision 1; revision 2 is still describable */
    j = ok("DescribeTaskDefinition", "{\"taskDefinition\":\"web\"}");
    cr_assert_eq(int_at(j, "taskDefinition", "revision"), 1);
    es_json_free(j);
    j = ok("DescribeTaskDefinition", "{\"taskDefinition\":\"web:2\"}");
    cr_assert_str_eq(str_at(j, "taskDefinition", "status"), "INACTIVE");
    es_json_free(j);
    /* deregistering again answers it as it is */
    j = ok("DeregisterTaskDefinition", "{\"taskDefinition\":\"web:2\"}");
    es_json_free(j);
    j = ok("RegisterTaskDefinition", SEED_TD("web"));
    cr_assert_eq(int_at(j, "taskDefinition", "revision"), 3, "revision 2 reused");
    es_json_free(j);
    j = ok("DeregisterTaskDefinition", "{\"taskDefinition\":\"web:1\"}");
    es_json_free(j);
    j = ok("DeregisterTaskDefinition", "{\"taskDefinition\":\"web:3\"}");
    es_json_free(j);
    bad("DescribeTaskDefinition", "{\"taskDefinition\":\"web\"}", "ClientException",
        "no ACTIVE revision");
}

/* The seed's logConfiguration array is accepted with a warning, which the
 * answer carries in its own "warnings" member. */
Test(api, register_answers_the_warnings)
{
    es_json *j = ok("RegisterTaskDefinition",
                    "{\"family\":\"seedlog\",\"containerDefinitions\":[{\"name\":\"a\","
                    "\"image\":\"b\",\"logConfiguration\":[{\"logDriver\":\"fluentd\","
                    "\"options\":{\"tag\":\"t\"}}]}]}");
    const es_json *w = es_json_get(j, "warnings");
    cr_assert_eq(es_json_len(w), 1);
    cr_assert_not_null(strstr(es_json_as_str(es_json_at(w, 0)), "logConfiguration"), "%s",
                       es_json_as_str(es_json_at(w, 0)));
    es_json_free(j);
    j = ok("RegisterTaskDefinition", SEED_TD("seedlog"));
    cr_assert_eq(es_json_len(es_json_get(j, "warnings")), 0);
    es_json_free(j);
}

Test(api, validation_errors_name_the_field)
{
    /* the task definition module's own rules, through the API */
    bad("RegisterTaskDefinition", "{\"family\":\"bad name\",\"containerDefinitions\":[]}",
        "ClientException", "family");
    bad("RegisterTaskDefinition",
        "{\"family\":\"x\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"b\","
        "\"secrets\":[{\"name\":\"S\",\"valueFrom\":\"/p\"}]}]}",
        "ClientException", "executionRoleArn");
    /* the Docker socket's family is the engine's (agent/tasks/engine.h) */
    bad("RegisterTaskDefinition",
        "{\"family\":\"" AG_ENGINE_DOCKER_FAMILY "\",\"containerDefinitions\":[{\"name\":\"a\","
        "\"image\":\"b\"}]}",
        "ClientException",
        "is reserved for the containers created through the agent's Docker socket");
    bad("RegisterTaskDefinition", "{\"family\":", "SerializationException", "JSON");
    bad("RegisterTaskDefinition", "[]", "InvalidParameterException", "");
    /* ours */
    bad("DescribeTaskDefinition", "{}", "InvalidParameterException", "taskDefinition");
    bad("DescribeTaskDefinition", "{\"taskDefinition\":7}", "InvalidParameterException",
        "taskDefinition: must be a string");
    bad("DescribeTaskDefinition", "{\"taskDefinition\":\"nope\"}", "ClientException",
        "taskDefinition: Unable to find");
    bad("DescribeTaskDefinition", "{\"taskDefinition\":\"web:0\"}", "ClientException", "revision");
    bad("DescribeTaskDefinition", "{\"taskDefinition\":\"web:x\"}", "ClientException", "revision");
    bad("DescribeTaskDefinition",
        "{\"taskDefinition\":\"arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1\"}",
        "ClientException", "region");
    bad("DescribeTaskDefinition", "{\"taskDefinition\":\"arn:aws:ecs:us-east-2:1:cluster/x\"}",
        "ClientException", "not a task definition ARN");
    bad("DescribeTaskDefinition", "{\"taskDefinition\":\"web\",\"include\":[\"NOPE\"]}",
        "InvalidParameterException", "include[0]");
    bad("DeregisterTaskDefinition", "{\"taskDefinition\":\"web\"}", "ClientException",
        "a revision is required");
    bad("DeregisterTaskDefinition", "{\"taskDefinition\":\"web:4\"}", "ClientException",
        "Unable to find task definition web:4");
    bad("ListTaskDefinitions", "{\"maxResults\":0}", "InvalidParameterException", "maxResults");
    bad("ListTaskDefinitions", "{\"maxResults\":101}", "InvalidParameterException", "maxResults");
    bad("ListTaskDefinitions", "{\"maxResults\":\"5\"}", "InvalidParameterException",
        "maxResults: must be an integer");
    bad("ListTaskDefinitions", "{\"status\":\"GONE\"}", "InvalidParameterException",
        "status: must be one of ACTIVE, INACTIVE");
    bad("ListTaskDefinitions", "{\"sort\":\"UP\"}", "InvalidParameterException", "sort");
    bad("ListTaskDefinitions", "{\"nextToken\":\"abc\"}", "InvalidParameterException", "nextToken");
    bad("ListTaskDefinitions", "{\"nextToken\":\"t1.zz\"}", "InvalidParameterException",
        "nextToken");
    bad("ListTaskDefinitions", "{\"familyPrefix\":\"a b\"}", "InvalidParameterException",
        "familyPrefix");
    bad("ListTaskDefinitionFamilies", "{\"status\":\"x\"}", "InvalidParameterException",
        "status: must be one of ACTIVE, INACTIVE, ALL");
    bad("DescribeClusters", "{\"clusters\":\"blue\"}", "InvalidParameterException",
        "clusters: must be a list");
    bad("DescribeClusters", "{\"clusters\":[\"\"]}", "InvalidParameterException", "clusters[0]");
    bad("NoSuchOperation", "{}", "UnknownOperationException", "NoSuchOperation");
    bad("RunTask", "{}", "UnknownOperationException", "RunTask");
    bad("ListTaskDefinitions", "not json", "SerializationException", "request body");
    bad("ListTaskDefinitions", "[1]", "InvalidParameterException", "JSON object");
    /* more than 100 clusters */
    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_buf_append_str(&b, "{\"clusters\":[");
    for (int i = 0; i < 101; i++)
        es_buf_printf(&b, "%s\"c%d\"", i ? "," : "", i);
    es_buf_append_str(&b, "]}");
    bad("DescribeClusters", es_buf_cstr(&b), "InvalidParameterException",
        "clusters: must hold 0 to 100 items (it holds 101)");
    es_buf_reset(&b);
    /* a body past the limit */
    es_buf_append_str(&b, "{\"familyPrefix\":\"");
    for (int i = 0; i < 70000; i++)
        es_buf_append_char(&b, 'a');
    es_buf_append_str(&b, "\"}");
    bad("ListTaskDefinitions", es_buf_cstr(&b), "InvalidParameterException", "request body");
    es_buf_free(&b);
}

/* Collects every ARN of ListTaskDefinitions page by page. */
static size_t list_all(const char *filters, int page, char arns[][128], size_t cap)
{
    size_t n = 0;
    char token[AG_API_TOKEN_MAX + 1] = "";
    int pages = 0;
    do {
        char body[2048];
        snprintf(body, sizeof body, "{%s%s\"maxResults\":%d%s%s%s}", filters, filters[0] ? "," : "",
                 page, token[0] ? ",\"nextToken\":\"" : "", token, token[0] ? "\"" : "");
        es_json *j = ok("ListTaskDefinitions", body);
        const es_json *a = es_json_get(j, "taskDefinitionArns");
        cr_assert_not_null(a);
        cr_assert_leq(es_json_len(a), (size_t)page);
        for (size_t i = 0; i < es_json_len(a); i++) {
            cr_assert_lt(n, cap);
            snprintf(arns[n++], 128, "%s", es_json_as_str(es_json_at(a, i)));
        }
        const char *t = es_json_get_str(j, "nextToken");
        snprintf(token, sizeof token, "%s", t ? t : "");
        es_json_free(j);
        cr_assert_lt(++pages, 50, "pagination does not end");
    } while (token[0]);
    return n;
}

Test(api, list_task_definitions_sorts_filters_and_pages)
{
    const char *fams[] = {"b-web", "a-db", "b-web", "c_cache", "a-db", "b-web"};
    for (size_t i = 0; i < 6; i++) {
        char body[2048];
        snprintf(body, sizeof body,
                 "{\"family\":\"%s\",\"containerDefinitions\":[{\"name\":\"x\","
                 "\"image\":\"busybox\"}]}",
                 fams[i]);
        es_json_free(ok("RegisterTaskDefinition", body));
    }
    es_json_free(ok("DeregisterTaskDefinition", "{\"taskDefinition\":\"b-web:2\"}"));
    char arns[20][128];
    const char *P = "arn:aws:ecs:us-east-2:123456789012:task-definition/";
    const char *asc[] = {"a-db:1", "a-db:2", "b-web:1", "b-web:3", "c_cache:1"};
    for (int page = 1; page <= 6; page++) {
        size_t n = list_all("", page, arns, 20);
        cr_assert_eq(n, 5, "page %d: %zu", page, n);
        for (size_t i = 0; i < n; i++) {
            char want[128];
            snprintf(want, sizeof want, "%s%s", P, asc[i]);
            cr_assert_str_eq(arns[i], want, "page size %d item %zu", page, i);
        }
        n = list_all("\"sort\":\"DESC\"", page, arns, 20);
        cr_assert_eq(n, 5);
        for (size_t i = 0; i < n; i++) {
            char want[128];
            snprintf(want, sizeof want, "%s%s", P, asc[4 - i]);
            cr_assert_str_eq(arns[i], want, "DESC page size %d item %zu", page, i);
        }
    }
    size_t n = list_all("\"familyPrefix\":\"b-web\"", 1, arns, 20);
    cr_assert_eq(n, 2);
    n = list_all("\"familyPrefix\":\"b-web\",\"status\":\"INACTIVE\"", 2, arns, 20);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(arns[0], "arn:aws:ecs:us-east-2:123456789012:task-definition/b-web:2");
    n = list_all("\"familyPrefix\":\"b-we\"", 10, arns, 20); /* a family, not a prefix (ECS) */
    cr_assert_eq(n, 0);

    /* families */
    es_json_free(ok("DeregisterTaskDefinition", "{\"taskDefinition\":\"c_cache:1\"}"));
    es_json *j = ok("ListTaskDefinitionFamilies", "{}");
    const es_json *f = es_json_get(j, "families");
    cr_assert_eq(es_json_len(f), 2);
    cr_assert_str_eq(es_json_as_str(es_json_at(f, 0)), "a-db");
    cr_assert_str_eq(es_json_as_str(es_json_at(f, 1)), "b-web");
    es_json_free(j);
    j = ok("ListTaskDefinitionFamilies", "{\"status\":\"INACTIVE\"}");
    f = es_json_get(j, "families");
    cr_assert_eq(es_json_len(f), 1);
    cr_assert_str_eq(es_json_as_str(es_json_at(f, 0)), "c_cache");
    es_json_free(j);
    j = ok("ListTaskDefinitionFamilies", "{\"status\":\"ALL\",\"familyPrefix\":\"b\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "families")), 1);
    es_json_free(j);
    j = ok("ListTaskDefinitionFamilies", "{\"status\":\"ALL\",\"maxResults\":2}");
    cr_assert_eq(es_json_len(es_json_get(j, "families")), 2);
    char body[2048];
    snprintf(body, sizeof body, "{\"status\":\"ALL\",\"maxResults\":2,\"nextToken\":\"%s\"}",
             es_json_get_str(j, "nextToken"));
    es_json_free(j);
    j = ok("ListTaskDefinitionFamilies", body);
    f = es_json_get(j, "families");
    cr_assert_eq(es_json_len(f), 1);
    cr_assert_str_eq(es_json_as_str(es_json_at(f, 0)), "c_cache");
    cr_assert_null(es_json_get(j, "nextToken"));
    es_json_free(j);
}

static size_t fake_counts_calls;
static void fake_counts(void *arg, size_t by[AG_TASK_STATUS_COUNT])
{
    (void)arg;
    fake_counts_calls++;
    by[AG_TASK_RUNNING] = 3;
    by[AG_TASK_PENDING] = 2;
    by[AG_TASK_PROVISIONING] = 1;
    by[AG_TASK_STOPPED] = 7;
}

Test(api, clusters)
{
    es_json *j = ok("ListClusters", "{}");
    const es_json *a = es_json_get(j, "clusterArns");
    cr_assert_eq(es_json_len(a), 1);
    cr_assert_str_eq(es_json_as_str(es_json_at(a, 0)),
                     "arn:aws:ecs:us-east-2:123456789012:cluster/blue");
    es_json_free(j);

    ag_api_set_counts(api, fake_counts, NULL);
    j = ok("DescribeClusters",
           "{\"clusters\":[\"blue\",\"red\",\"arn:aws:ecs:us-east-2:123456789012:cluster/green\","
           "\"arn:aws:ecs:us-east-2:123456789012:cluster/blue\"],\"include\":[\"STATISTICS\"]}");
    const es_json *c = es_json_get(j, "clusters");
    cr_assert_eq(es_json_len(c), 1, "the cluster named twice is answered once");
    const es_json *c0 = es_json_at(c, 0);
    cr_assert_str_eq(es_json_get_str(c0, "clusterName"), "blue");
    cr_assert_str_eq(es_json_get_str(c0, "status"), "ACTIVE");
    int64_t v;
    cr_assert(es_json_get_int64(c0, "runningTasksCount", &v) && v == 3);
    cr_assert(es_json_get_int64(c0, "pendingTasksCount", &v) && v == 3);
    const es_json *f = es_json_get(j, "failures");
    cr_assert_eq(es_json_len(f), 2);
    cr_assert_str_eq(es_json_get_str(es_json_at(f, 0), "arn"),
                     "arn:aws:ecs:us-east-2:123456789012:cluster/red");
    cr_assert_str_eq(es_json_get_str(es_json_at(f, 0), "reason"), "MISSING");
    cr_assert_str_eq(es_json_get_str(es_json_at(f, 1), "arn"),
                     "arn:aws:ecs:us-east-2:123456789012:cluster/green");
    es_json_free(j);
    j = ok("DescribeClusters", "{}");
    cr_assert_eq(es_json_len(es_json_get(j, "clusters")), 1, "no clusters: the default one");
    es_json_free(j);
}

Test(api, check_cluster_and_token_helpers)
{
    es_json *body = NULL;
    const char *txt = "{\"cluster\":\"red\"}";
    cr_assert_eq(es_json_parse(txt, strlen(txt), &es_json_default_limits, &body, NULL, 0), 0);
    al_error e = {0};
    ag_api_req rq = {.api = api, .body = body, .err = &e};
    cr_assert_eq(ag_api_check_cluster(&rq), -EINVAL);
    cr_assert_str_eq(e.code, "ClusterNotFoundException");
    es_json_free(body);
    txt = "{\"cluster\":\"arn:aws:ecs:us-east-2:123456789012:cluster/blue\"}";
    cr_assert_eq(es_json_parse(txt, strlen(txt), &es_json_default_limits, &body, NULL, 0), 0);
    rq.body = body;
    cr_assert_eq(ag_api_check_cluster(&rq), 0);
    es_json_free(body);

    char tok[64], key[32];
    cr_assert_eq(ag_api_token_make("web:12", tok, sizeof tok), 0);
    cr_assert_eq(ag_api_token_parse(tok, key, sizeof key), 0);
    cr_assert_str_eq(key, "web:12");
    cr_assert_eq(ag_api_token_parse("t1.00", key, sizeof key), -EINVAL, "NUL refused");
    cr_assert_eq(ag_api_token_parse("t1.4", key, sizeof key), -EINVAL);
    cr_assert_eq(ag_api_token_parse("t1.4G", key, sizeof key), -EINVAL);
    cr_assert_eq(ag_api_token_parse("t1.4141", key, 2), -EINVAL, "too long for the key");
    cr_assert_eq(ag_api_token_make("abc", tok, 8), -EMSGSIZE);
}

Test(api, metrics_page)
{
    ag_api_set_counts(api, fake_counts, NULL);
    es_json_free(ok("ListClusters", "{}"));
    bad("DescribeTaskDefinition", "{}", "InvalidParameterException", "");
    es_buf out;
    es_buf_init(&out, 1 << 20);
    const char *ct = NULL;
    cr_assert_eq(ag_api_metrics(api, "/metrics", &out, &ct), 0);
    cr_assert_not_null(strstr(ct, "version=0.0.4"));
    const char *t = es_buf_cstr(&out);
    cr_assert_not_null(strstr(t, "ecs_agent_tasks{status=\"RUNNING\"} 3"), "%s", t);
    cr_assert_not_null(strstr(t, "ecs_agent_build_info{version=\"" ES_VERSION "\"} 1"), "%s", t);
    cr_assert_not_null(strstr(t, "ecs_agent_uptime_seconds "), "%s", t);
    cr_assert_not_null(strstr(t, "ecs_agent_start_time_seconds "), "%s", t);
    cr_assert_not_null(strstr(t, "ecs_agent_tasks{status=\"STOPPED\"} 7"), "%s", t);
    cr_assert_not_null(strstr(t, "ecs_agent_api_requests_total{operation=\"ListClusters\"} 1"),
                       "%s", t);
    cr_assert_not_null(
        strstr(t, "ecs_agent_api_errors_total{code=\"InvalidParameterException\"} 1"), "%s", t);
    es_buf_free(&out);
}

/* Without the embedded IAM (aws mode) the ECS API answers the account root
 * only: any other authenticated caller is refused by name, before any
 * operation acts. */
Test(api, aws_mode_answers_the_administrator_only)
{
    const char *body = "{}";
    es_buf out;
    es_buf_init(&out, 1 << 20);
    al_error e;
    memset(&e, 0, sizeof e);
    const char *who = "arn:aws:sts::123456789012:assumed-role/app/s1";
    cr_assert_neq(ag_api_handle(api, "ListTaskDefinitions", who, body, strlen(body), &out, &e), 0);
    cr_assert_eq(e.status, 400);
    cr_assert_str_eq(e.code, "AccessDeniedException");
    cr_assert(strstr(e.message, "User: arn:aws:sts::123456789012:assumed-role/app/s1 is not "
                                "authorized to perform: ecs:ListTaskDefinitions on resource: *"),
              "%s", e.message);
    cr_assert_eq(out.len, 0);
    /* an unauthenticated-looking principal is no better */
    memset(&e, 0, sizeof e);
    cr_assert_neq(ag_api_handle(api, "ListClusters", NULL, body, strlen(body), &out, &e), 0);
    cr_assert_str_eq(e.code, "AccessDeniedException");
    es_buf_free(&out);
    /* the administrator is answered */
    es_json *j = ok("ListTaskDefinitions", "{}");
    es_json_free(j);
}

static int op_forgets_to_ask(void *arg, ag_api_req *rq)
{
    (void)arg;
    es_jw_kstr(rq->w, "leak", "anything");
    return 0;
}

/* An operation that answers without asking who may is a bug: the answer is
 * refused, never sent. */
Test(api, an_answer_no_authorisation_preceded_is_refused)
{
    cr_assert_eq(ag_api_add_op(api, "Forgetful", op_forgets_to_ask, NULL), 0);
    al_error e;
    es_json *j = call("Forgetful", "{}", &e);
    cr_assert_null(j);
    cr_assert_eq(e.status, 500);
    cr_assert_str_eq(e.code, "ServerException");
}
