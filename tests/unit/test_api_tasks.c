/* The ECS API's task operations (agent/api/tasks.c) over a real engine
 * that is never started: RunTask creates tasks in PROVISIONING, which is all
 * these tests look at (Docker is not reached; the launches the loop runs at
 * teardown fail against a socket that does not exist). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/api/api.h"
#include "aws_fake.h" /* expect_no_leaks */
#include "agent/api/task_waits.h"
#include "agent/api/tasks.h"
#include "common/alloc.h"

static uv_loop_t loop;
static char dir[64];
static aw_client *awc;
static aw_creds *creds;
static ag_resolver *resolver;
static ag_store *store;
static dk_client *docker;
static ag_engine *engine;
static ag_api *api;
static ag_api_tasks *tasks_api;
static const uint8_t fp_key[32] = {7};

static void setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    snprintf(dir, sizeof dir, "/tmp/es-apitasks-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[256];
    cr_assert_eq(ag_store_open(dir, &store, err, sizeof err), 0, "%s", err);
    aw_client_config cc = {.region = "us-east-2", .max_attempts = 1};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = "http://127.0.0.1:1";
    cr_assert_eq(aw_client_create(&loop, &cc, &awc), 0);
    aw_creds_config pc = {.access_key_id = "AKIDTEST", .secret_access_key = "SECRET"};
    cr_assert_eq(aw_creds_create(awc, &pc, &creds), 0);
    ag_resolver_config rc = {.client = awc,
                             .creds = creds,
                             .region = "us-east-2",
                             .fp_key = fp_key,
                             .fp_key_len = sizeof fp_key};
    cr_assert_eq(ag_resolver_create(&rc, &resolver), 0);
    char host[128];
    snprintf(host, sizeof host, "unix://%s/no-docker.sock", dir);
    dk_options o = {.host = host};
    cr_assert_eq(dk_client_create(&loop, &o, &docker), 0);
    ag_engine_config ec = {.loop = &loop,
                           .store = store,
                           .docker = docker,
                           .resolver = resolver,
                           .region = "us-east-2",
                           .account = "123456789012",
                           .cluster = "blue"};
    cr_assert_eq(ag_engine_create(&ec, &engine), 0);
    ag_api_config ac = {
        .store = store, .region = "us-east-2", .account = "123456789012", .cluster = "blue"};
    cr_assert_eq(ag_api_create(&ac, &api), 0);
    cr_assert_eq(ag_api_tasks_attach(api, engine, &tasks_api), 0);
}

static void teardown(void)
{
    ag_api_free(api);
    ag_api_tasks_free(tasks_api);
    ag_engine_close(engine, NULL, NULL);
    dk_client_free(docker);
    aw_creds_close(creds, NULL, NULL);
    aw_client_close(awc, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_resolver_free(resolver);
    ag_store_close(store);
    cr_expect_eq(uv_loop_close(&loop), 0, "a handle was left open");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
    expect_no_leaks();
}

TestSuite(api_tasks, .init = setup, .fini = teardown, .timeout = 60);

static es_json *call(const char *op, const char *body, al_error *e)
{
    es_buf out;
    es_buf_init(&out, 1 << 20);
    memset(e, 0, sizeof *e);
    int r = ag_api_handle(api, op, "arn:aws:iam::123456789012:root", body, strlen(body), &out, e);
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
    es_json *j = call(op, body, &e);
    cr_assert_not_null(j, "%s %s: %s: %s", op, body, e.code, e.message);
    return j;
}

static void bad(const char *op, const char *body, const char *code, const char *part)
{
    al_error e;
    es_json *j = call(op, body, &e);
    cr_assert_null(j, "%s %s succeeded; wanted %s", op, body, code);
    cr_assert_str_eq(e.code, code, "%s %s: %s: %s", op, body, e.code, e.message);
    cr_assert_not_null(strstr(e.message, part), "%s: '%s' lacks '%s'", op, e.message, part);
}

static void reg(const char *family, bool secrets)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"family\":\"%s\",%s\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
             "\"busybox\"%s}]}",
             family, secrets ? "\"executionRoleArn\":\"arn:aws:iam::123456789012:role/exec\"," : "",
             secrets ? ",\"secrets\":[{\"name\":\"S\",\"valueFrom\":\"/p\"}]" : "");
    es_json_free(ok("RegisterTaskDefinition", body));
}

static size_t arns_of(const es_json *j, const char *key, char out[][160], size_t cap)
{
    const es_json *a = es_json_get(j, key);
    cr_assert_not_null(a, "no %s", key);
    size_t n = es_json_len(a);
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) {
        const es_json *it = es_json_at(a, i);
        const char *s =
            it->type == ES_JSON_STRING ? es_json_as_str(it) : es_json_get_str(it, "taskArn");
        cr_assert_not_null(s);
        snprintf(out[i], 160, "%s", s);
    }
    return n;
}

Test(api_tasks, run_describe_list_stop)
{
    reg("web", false);
    es_json *j = ok("RunTask", "{\"cluster\":\"blue\",\"taskDefinition\":\"web\",\"count\":3,"
                               "\"startedBy\":\"me\",\"group\":\"g1\"}");
    char arns[10][160];
    cr_assert_eq(arns_of(j, "tasks", arns, 10), 3);
    cr_assert_eq(es_json_len(es_json_get(j, "failures")), 0);
    const es_json *t0 = es_json_at(es_json_get(j, "tasks"), 0);
    cr_assert_str_eq(es_json_get_str(t0, "lastStatus"), "PROVISIONING");
    cr_assert_str_eq(es_json_get_str(t0, "desiredStatus"), "RUNNING");
    cr_assert_str_eq(es_json_get_str(t0, "startedBy"), "me");
    cr_assert_str_eq(es_json_get_str(t0, "group"), "g1");
    cr_assert_str_eq(es_json_get_str(t0, "launchType"), "EC2");
    cr_assert_eq(strncmp(arns[0], "arn:aws:ecs:us-east-2:123456789012:task/blue/", 45), 0);
    es_json_free(j);

    /* describe: by ARN, by id, twice, and an unknown one */
    char body[2048];
    snprintf(body, sizeof body, "{\"tasks\":[\"%s\",\"%s\",\"%s\",\"nope\"]}", arns[0],
             strrchr(arns[1], '/') + 1, arns[0]);
    j = ok("DescribeTasks", body);
    cr_assert_eq(es_json_len(es_json_get(j, "tasks")), 2);
    const es_json *f = es_json_get(j, "failures");
    cr_assert_eq(es_json_len(f), 1);
    cr_assert_str_eq(es_json_get_str(es_json_at(f, 0), "arn"), "nope");
    cr_assert_str_eq(es_json_get_str(es_json_at(f, 0), "reason"), "MISSING");
    es_json_free(j);

    /* the cluster counts the pending tasks */
    j = ok("DescribeClusters", "{}");
    int64_t v = -1;
    cr_assert(
        es_json_get_int64(es_json_at(es_json_get(j, "clusters"), 0), "pendingTasksCount", &v));
    cr_assert_eq(v, 3);
    es_json_free(j);

    /* list, two per page: every task once */
    char seen[10][160];
    size_t n = 0;
    char tok[AG_API_TOKEN_MAX + 1] = "";
    for (int page = 0; page < 5; page++) {
        snprintf(body, sizeof body, "{\"startedBy\":\"me\",\"maxResults\":2%s%s%s}",
                 tok[0] ? ",\"nextToken\":\"" : "", tok, tok[0] ? "\"" : "");
        j = ok("ListTasks", body);
        n += arns_of(j, "taskArns", seen + n, 10 - n);
        const char *t = es_json_get_str(j, "nextToken");
        snprintf(tok, sizeof tok, "%s", t ? t : "");
        es_json_free(j);
        if (!tok[0])
            break;
    }
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < 3; i++) {
        size_t hits = 0;
        for (size_t k = 0; k < 3; k++)
            hits += strcmp(seen[i], arns[k]) == 0;
        cr_assert_eq(hits, 1, "%s", seen[i]);
    }
    j = ok("ListTasks", "{\"family\":\"other\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "taskArns")), 0);
    es_json_free(j);

    /* stop one: desired STOPPED with the user's stop code and reason */
    snprintf(body, sizeof body, "{\"task\":\"%s\",\"reason\":\"enough\"}", arns[1]);
    j = ok("StopTask", body);
    const es_json *t = es_json_get(j, "task");
    cr_assert_str_eq(es_json_get_str(t, "desiredStatus"), "STOPPED");
    cr_assert_str_eq(es_json_get_str(t, "stopCode"), "UserInitiated");
    cr_assert_str_eq(es_json_get_str(t, "stoppedReason"), "enough");
    es_json_free(j);
    j = ok("ListTasks", "{\"desiredStatus\":\"STOPPED\"}");
    cr_assert_eq(arns_of(j, "taskArns", seen, 10), 1);
    cr_assert_str_eq(seen[0], arns[1]);
    es_json_free(j);
    j = ok("ListTasks", "{}"); /* RUNNING by default */
    cr_assert_eq(es_json_len(es_json_get(j, "taskArns")), 2);
    es_json_free(j);
    j = ok("ListTasks", "{\"desiredStatus\":\"PENDING\"}");
    cr_assert_eq(es_json_len(es_json_get(j, "taskArns")), 0);
    es_json_free(j);
}

Test(api_tasks, validation)
{
    reg("web", true);
    reg("plain", false);
    bad("RunTask", "{}", "InvalidParameterException", "taskDefinition: a value is required");
    bad("RunTask", "{\"taskDefinition\":\"web\",\"cluster\":\"red\"}", "ClusterNotFoundException",
        "cluster");
    bad("RunTask", "{\"taskDefinition\":\"web\",\"count\":0}", "InvalidParameterException",
        "count");
    bad("RunTask", "{\"taskDefinition\":\"web\",\"count\":11}", "InvalidParameterException",
        "count: must be between 1 and 10");
    bad("RunTask", "{\"taskDefinition\":\"web\",\"launchType\":\"MARS\"}",
        "InvalidParameterException", "launchType");
    bad("RunTask", "{\"taskDefinition\":\"web\",\"platformVersion\":\"1.4.0\"}",
        "InvalidParameterException", "platformVersion: only the FARGATE");
    bad("RunTask",
        "{\"taskDefinition\":\"web\",\"launchType\":\"FARGATE\",\"platformVersion\":\"one\"}",
        "InvalidParameterException", "platformVersion: must be LATEST");
    /* S3 */
    bad("RunTask",
        "{\"taskDefinition\":\"web\",\"launchType\":\"FARGATE\",\"platformVersion\":\"1.2.0\"}",
        "ClientException", "platform version 1.2.0 does not support secrets");
    /* S3 covers log-driver secrets (secretOptions) too */
    es_json_free(ok("RegisterTaskDefinition",
                    "{\"family\":\"logonly\",\"executionRoleArn\":\"arn:aws:iam::123456789012:"
                    "role/exec\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"busybox\","
                    "\"logConfiguration\":{\"logDriver\":\"fluentd\",\"secretOptions\":[{\"name\":"
                    "\"fluentd-address\",\"valueFrom\":\"/p\"}]}}]}"));
    bad("RunTask",
        "{\"taskDefinition\":\"logonly\",\"launchType\":\"FARGATE\",\"platformVersion\":"
        "\"1.2.0\"}",
        "ClientException", "platform version 1.2.0 does not support secrets");
    es_json_free(ok("RunTask", "{\"taskDefinition\":\"plain\",\"launchType\":\"FARGATE\","
                               "\"platformVersion\":\"1.2.0\"}"));
    es_json *j = ok("RunTask", "{\"taskDefinition\":\"web\",\"launchType\":\"FARGATE\","
                               "\"platformVersion\":\"LATEST\"}");
    cr_assert_str_eq(es_json_get_str(es_json_at(es_json_get(j, "tasks"), 0), "launchType"),
                     "FARGATE");
    es_json_free(j);
    bad("RunTask", "{\"taskDefinition\":\"web\",\"overrides\":[]}", "InvalidParameterException",
        "overrides");
    bad("RunTask",
        "{\"taskDefinition\":\"web\",\"overrides\":{\"containerOverrides\":[{\"name\":\"x\"}]}}",
        "InvalidParameterException", "");
    bad("RunTask", "{\"taskDefinition\":\"web\",\"startedBy\":\"a\\nb\"}",
        "InvalidParameterException", "startedBy: must not contain control characters");
    es_json_free(ok("DeregisterTaskDefinition", "{\"taskDefinition\":\"plain:1\"}"));
    bad("RunTask", "{\"taskDefinition\":\"plain:1\"}", "ClientException", "inactive");
    bad("StartTask", "{\"taskDefinition\":\"web\"}", "InvalidParameterException",
        "containerInstances");
    bad("StartTask", "{\"taskDefinition\":\"web\",\"containerInstances\":[]}",
        "InvalidParameterException", "containerInstances: must hold 1 to 10");
    bad("StopTask", "{}", "InvalidParameterException", "task");
    bad("StopTask", "{\"task\":\"0123\"}", "InvalidParameterException",
        "The referenced task was not found");
    bad("DescribeTasks", "{\"tasks\":[]}", "InvalidParameterException",
        "tasks: must hold 1 to 100");
    bad("DescribeTasks", "{\"tasks\":[\"x\"],\"cluster\":\"red\"}", "ClusterNotFoundException",
        "cluster");
    bad("ListTasks", "{\"startedBy\":\"a\",\"family\":\"web\"}", "InvalidParameterException",
        "startedBy: cannot be combined");
    bad("ListTasks", "{\"desiredStatus\":\"DONE\"}", "InvalidParameterException", "desiredStatus");
    bad("ListTasks", "{\"nextToken\":\"t1.41\"}", "InvalidParameterException", "nextToken");
    char tok[80];
    cr_assert_eq(ag_api_token_make("0123456789abcdef0123456789abcdef", tok, sizeof tok), 0);
    char body[200];
    snprintf(body, sizeof body, "{\"nextToken\":\"%s\"}", tok);
    bad("ListTasks", body, "InvalidParameterException", "gone");

    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_buf_append_str(&b, "{\"tasks\":[");
    for (int i = 0; i < 101; i++)
        es_buf_printf(&b, "%s\"t%d\"", i ? "," : "", i);
    es_buf_append_str(&b, "]}");
    bad("DescribeTasks", es_buf_cstr(&b), "InvalidParameterException", "(it holds 101)");
    es_buf_free(&b);
}

Test(api_tasks, client_token_answers_the_first_tasks)
{
    reg("web", false);
    const char *req = "{\"taskDefinition\":\"web\",\"count\":2,\"clientToken\":\"tok-1\"}";
    char first[10][160], again[10][160];
    es_json *j = ok("RunTask", req);
    cr_assert_eq(arns_of(j, "tasks", first, 10), 2);
    es_json_free(j);
    j = ok("RunTask", req);
    cr_assert_eq(arns_of(j, "tasks", again, 10), 2);
    es_json_free(j);
    for (int i = 0; i < 2; i++)
        cr_assert_str_eq(first[i], again[i]);
    j = ok("ListTasks", "{}");
    cr_assert_eq(es_json_len(es_json_get(j, "taskArns")), 2, "the repeat started nothing");
    es_json_free(j);
    bad("RunTask", "{\"taskDefinition\":\"web\",\"count\":1,\"clientToken\":\"tok-1\"}",
        "InvalidParameterException", "clientToken");
    j = ok("RunTask", "{\"taskDefinition\":\"web\",\"count\":1,\"clientToken\":\"tok-2\"}");
    es_json_free(j);
    j = ok("ListTasks", "{}");
    cr_assert_eq(es_json_len(es_json_get(j, "taskArns")), 3);
    es_json_free(j);
}

Test(api_tasks, start_task_one_per_instance)
{
    reg("web", false);
    es_json *j =
        ok("StartTask", "{\"taskDefinition\":\"web:1\",\"containerInstances\":[\"a\",\"b\"]}");
    cr_assert_eq(es_json_len(es_json_get(j, "tasks")), 2);
    es_json_free(j);
}

Test(api_tasks, platform_versions)
{
    cr_assert_eq(ag_api_platform_has_secrets("LATEST"), 1);
    cr_assert_eq(ag_api_platform_has_secrets("1.3.0"), 1);
    cr_assert_eq(ag_api_platform_has_secrets("1.4.0"), 1);
    cr_assert_eq(ag_api_platform_has_secrets("1.10.0"), 1);
    cr_assert_eq(ag_api_platform_has_secrets("2.0"), 1);
    cr_assert_eq(ag_api_platform_has_secrets("1.2.0"), 0);
    cr_assert_eq(ag_api_platform_has_secrets("1.0.0"), 0);
    cr_assert_eq(ag_api_platform_has_secrets("0.9"), 0);
    cr_assert_eq(ag_api_platform_has_secrets("1"), -EINVAL);
    cr_assert_eq(ag_api_platform_has_secrets("1.3.0.1"), -EINVAL);
    cr_assert_eq(ag_api_platform_has_secrets("1..3"), -EINVAL);
    cr_assert_eq(ag_api_platform_has_secrets("latest"), -EINVAL);
    cr_assert_eq(ag_api_platform_has_secrets("1.3.x"), -EINVAL);
    cr_assert_eq(ag_api_platform_has_secrets("1.3."), -EINVAL);
    cr_assert_eq(ag_api_platform_has_secrets("1234567.1"), -EINVAL);
}

static void on_waits_closed(void *arg)
{
    (*(int *)arg)++;
}

/* Issue 22: which DescribeTasks wait for a move (agent/api/task_waits.h). The held path itself
 * (a deferred reply, answered at the move, at the end of the wait, at the stop) needs the
 * listener and Docker: tests/integration/test_describe_wait.sh. */
Test(api_tasks, describe_waits_hold_only_moving_tasks)
{
    ag_task t = {.desired_status = AG_TASK_RUNNING};
    for (int s = AG_TASK_PROVISIONING; s <= AG_TASK_STOPPED; s++) {
        t.last_status = (ag_task_status)s;
        t.desired_status = AG_TASK_RUNNING;
        cr_assert_eq(ag_task_waits_in_transition(&t), s < AG_TASK_RUNNING, "%s towards RUNNING",
                     ag_task_status_name(t.last_status));
        t.desired_status = AG_TASK_STOPPED;
        cr_assert_eq(ag_task_waits_in_transition(&t), s != AG_TASK_STOPPED, "%s towards STOPPED",
                     ag_task_status_name(t.last_status));
    }

    ag_task_waits_config wc = {.loop = &loop,
                               .engine = engine,
                               .api = api,
                               .wait_ms = 50,
                               .write = ag_api_tasks_write_described,
                               .write_arg = tasks_api};
    ag_task_waits *w = NULL;
    wc.wait_ms = AG_TASK_WAITS_MS_MAX + 1;
    cr_assert_eq(ag_task_waits_create(&wc, &w), -EINVAL);
    wc.wait_ms = 50;
    cr_assert_eq(ag_task_waits_create(&wc, &w), 0);
    ag_api_tasks_set_waits(tasks_api, w);

    reg("web", false);
    es_json *j = ok("RunTask", "{\"taskDefinition\":\"web\",\"count\":1}");
    char arns[1][160];
    cr_assert_eq(arns_of(j, "tasks", arns, 1), 1);
    es_json_free(j);
    ag_task *moving = ag_engine_find_task(engine, arns[0]);
    cr_assert_not_null(moving);
    cr_assert_eq(moving->last_status, AG_TASK_PROVISIONING);

    ag_task *many[AG_TASK_WAITS_TASKS_MAX + 1];
    for (size_t i = 0; i < AG_TASK_WAITS_TASKS_MAX + 1; i++)
        many[i] = moving;
    cr_assert(ag_task_waits_should_hold(w, many, 1));
    cr_assert(ag_task_waits_should_hold(w, many, AG_TASK_WAITS_TASKS_MAX));
    cr_assert_not(ag_task_waits_should_hold(w, many, AG_TASK_WAITS_TASKS_MAX + 1), "too many");
    cr_assert_not(ag_task_waits_should_hold(w, many, 0));
    ag_task settled = {.last_status = AG_TASK_RUNNING, .desired_status = AG_TASK_RUNNING};
    ag_task *mixed[2] = {&settled, moving};
    cr_assert_not(ag_task_waits_should_hold(w, mixed, 1), "a RUNNING task alone");
    cr_assert(ag_task_waits_should_hold(w, mixed, 2), "one moving task of two");
    /* without the listener's call (direct calls: tests, fuzzing) nothing is held */
    cr_assert_eq(ag_task_waits_hold(w, NULL, (const char *const[]){arns[0]}, many, 1), 0);
    char body[512];
    snprintf(body, sizeof body, "{\"tasks\":[\"%s\"]}", arns[0]);
    j = ok("DescribeTasks", body);
    cr_assert_str_eq(es_json_get_str(es_json_at(es_json_get(j, "tasks"), 0), "lastStatus"),
                     "PROVISIONING");
    es_json_free(j);
    ag_task_waits_stats st;
    ag_task_waits_get_stats(w, &st);
    cr_assert_eq(st.held + st.waiting + st.refused, 0);

    /* the held answers' writer: the same members as an immediate answer */
    es_buf out;
    es_buf_init(&out, 1 << 20);
    es_jw jw;
    es_jw_init(&jw, &out);
    es_jw_obj(&jw);
    cr_assert_eq(
        ag_api_tasks_write_described(tasks_api, (const char *const[]){arns[0], "nope"}, 2, &jw), 0);
    es_jw_obj_end(&jw);
    cr_assert_eq(es_jw_finish(&jw), 0);
    cr_assert_eq(es_json_parse(out.data, out.len, &es_json_default_limits, &j, NULL, 0), 0);
    cr_assert_eq(es_json_len(es_json_get(j, "tasks")), 1);
    cr_assert_str_eq(es_json_get_str(es_json_at(es_json_get(j, "failures"), 0), "arn"), "nope");
    es_json_free(j);
    es_buf_free(&out);

    /* closed: nothing more is held, done once the timer has closed */
    int closed = 0;
    ag_task_waits_close(w, on_waits_closed, &closed);
    cr_assert_not(ag_task_waits_should_hold(w, many, 1));
    ag_api_tasks_set_waits(tasks_api, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(closed, 1);
    ag_task_waits_free(w);

    /* a wait of 0: never held */
    wc.wait_ms = 0;
    cr_assert_eq(ag_task_waits_create(&wc, &w), 0);
    cr_assert_not(ag_task_waits_should_hold(w, many, 1));
    closed = 0;
    ag_task_waits_close(w, on_waits_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    ag_task_waits_free(w);
}
