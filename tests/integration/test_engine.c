/* The task engine against a real dockerd (ES_TEST_DOCKER_HOST) and the
 * loopback AWS stand-in (tests/aws_fake.py): RunTask to RUNNING with the
 * values injected, stops, essential exits, failures that leave nothing
 * behind, and an agent restart that adopts running containers and notices
 * the ones that died while it was away. */
#include "../unit/aws_fake.h"

#include <uv.h>

#include "agent/tasks/engine.h"

#define AK "AKIDTEST"
#define SK "SECRETKEYVALUE0123456789"
#define ROLE "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"

static fake f;
static uv_loop_t loop;
static char dir[64];
static aw_client *awc;
static aw_creds *creds;
static ag_resolver *resolver;
static ag_store *store;
static dk_client *docker;
static ag_engine *engine;
static const uint8_t fp_key[32] = {9};

static void engine_up(void)
{
    ag_engine_config ec = {.loop = &loop,
                           .store = store,
                           .docker = docker,
                           .resolver = resolver,
                           .region = "us-east-1",
                           .account = "123456789012",
                           .cluster = "test",
                           .cleanup_delay_s = 3600};
    cr_assert_eq(ag_engine_create(&ec, &engine), 0);
    cr_assert_eq(ag_engine_start(engine), 0);
}

static void engine_down(void)
{
    ag_engine_close(engine, NULL, NULL);
    engine = NULL;
}

static void setup(void)
{
    const char *host = getenv("ES_TEST_DOCKER_HOST");
    cr_assert(host && *host, "ES_TEST_DOCKER_HOST is not set: this test needs a real dockerd "
                             "(run it through ctest, which starts one)");
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    const char *a[] = {"--secret", AK "=" SK, NULL};
    fake_start(&f, a);
    cr_assert_eq(uv_loop_init(&loop), 0);
    snprintf(dir, sizeof dir, "/tmp/es-engine-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[256];
    cr_assert_eq(ag_store_open(dir, &store, err, sizeof err), 0, "%s", err);
    aw_client_config cc = {.region = "us-east-1", .base_delay_ms = 5};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = f.base;
    cr_assert_eq(aw_client_create(&loop, &cc, &awc), 0);
    aw_creds_config pc = {.access_key_id = AK, .secret_access_key = SK};
    cr_assert_eq(aw_creds_create(awc, &pc, &creds), 0);
    ag_resolver_config rc = {.client = awc,
                             .creds = creds,
                             .region = "us-east-1",
                             .fp_key = fp_key,
                             .fp_key_len = sizeof fp_key};
    cr_assert_eq(ag_resolver_create(&rc, &resolver), 0);
    dk_options o = {.host = host};
    cr_assert_eq(dk_client_create(&loop, &o, &docker), 0);
    engine_up();
}

static void teardown(void)
{
    if (engine)
        engine_down();
    dk_client_free(docker);
    aw_creds_close(creds, NULL, NULL);
    aw_client_close(awc, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_resolver_free(resolver);
    ag_store_close(store);
    cr_expect_eq(uv_loop_close(&loop), 0, "a handle was left open");
    fake_stop(&f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
    expect_no_leaks();
}

TestSuite(engine, .init = setup, .fini = teardown, .timeout = 120);

/* Runs the loop until the task reaches status (or the deadline). */
static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static bool wait_status(const char *arn, ag_task_status want, int seconds)
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 50, 50);
    uint64_t end = uv_now(&loop) + (uint64_t)seconds * 1000;
    bool ok = false;
    while (uv_now(&loop) < end) {
        ag_task *t = ag_engine_find_task(engine, arn);
        if (t && t->last_status == want) {
            ok = true;
            break;
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static ag_task *run(const char *json)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &td, &e), 0, "%s", e.message);
    cr_assert_eq(ag_store_taskdef_register(store, td, 1700000000), 0);
    ag_run_request req = {.td = td, .count = 1, .started_by = "test"};
    ag_task *tasks[1];
    cr_assert_eq(ag_engine_run_task(engine, &req, tasks), 0);
    cr_assert_eq(tasks[0]->last_status, AG_TASK_PROVISIONING);
    return tasks[0];
}

/* docker CLI against the test engine, for what a person would look at */
static char *docker_cli(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "docker -H %s %s 2>&1", getenv("ES_TEST_DOCKER_HOST"), args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

static int count_containers_of(const char *arn)
{
    char args[512];
    snprintf(args, sizeof args, "ps -aq --filter label=com.amazonaws.ecs.task-arn=%s", arn);
    char *out = docker_cli(args);
    int n = 0;
    for (char *p = out; *p; p++)
        n += *p == '\n';
    return n;
}

#define TD_SECRET                                                                                  \
    "{\"family\":\"eng\",\"networkMode\":\"none\",\"executionRoleArn\":\"" ROLE "\","              \
    "\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"local/busybox:latest\","              \
    "\"command\":[\"sh\",\"-c\",\"echo got=$DB_PASSWORD user=$USER_JSON; sleep 300\"],"            \
    "\"stopTimeout\":2,"                                                                           \
    "\"environment\":[{\"name\":\"DB_PASSWORD\",\"value\":\"overridden-by-the-secret\"}],"         \
    "\"secrets\":[{\"name\":\"DB_PASSWORD\",\"valueFrom\":\"/test/database_password\"},"           \
    "{\"name\":\"USER_JSON\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:123456789012:"       \
    "secret:db-AbCdEf:user::\"}]}]}"

Test(engine, run_task_injects_secrets_then_stop_task)
{
    ag_task *t = run(TD_SECRET);
    char arn[256];
    snprintf(arn, sizeof arn, "%s", t->arn);
    cr_assert(wait_status(arn, AG_TASK_RUNNING, 30), "task did not reach RUNNING: %s",
              ag_engine_find_task(engine, arn)->stopped_reason
                  ? ag_engine_find_task(engine, arn)->stopped_reason
                  : "");
    t = ag_engine_find_task(engine, arn);
    cr_assert_not_null(t->containers[0].docker_id);
    cr_assert_eq(t->n_secrets, 2);
    cr_assert_str_eq(t->secrets[0].version, "1");

    /* what the container got, seen with the docker CLI */
    char args[256];
    snprintf(args, sizeof args,
             "inspect --format '{{json .Config.Env}} {{json .Config.Labels}}' %s",
             t->containers[0].docker_id);
    char *out = docker_cli(args);
    cr_assert_not_null(strstr(out, "DB_PASSWORD=value-of-/test/database_password"), "%s", out);
    cr_assert_null(strstr(out, "overridden-by-the-secret"), "secrets win over environment");
    cr_assert_not_null(strstr(out, "USER_JSON=u"), "%s", out);
    cr_assert_not_null(strstr(out, "\"com.amazonaws.ecs.task-arn\""), "%s", out);
    cr_assert_not_null(strstr(out, "\"com.amazonaws.ecs.cluster\":\"test\""), "%s", out);
    snprintf(args, sizeof args, "logs %s", t->containers[0].docker_id);
    for (int i = 0; i < 40 && !strstr(docker_cli(args), "got="); i++)
        usleep(100 * 1000);
    cr_assert_not_null(strstr(docker_cli(args), "got=value-of-/test/database_password user=u"),
                       "%s", docker_cli(args));

    ag_task *st = NULL;
    cr_assert_eq(ag_engine_stop_task(engine, arn, AG_STOP_USER_INITIATED, "test says stop", &st),
                 0);
    cr_assert(wait_status(arn, AG_TASK_STOPPED, 30));
    t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_USER_INITIATED);
    cr_assert_str_eq(t->stopped_reason, "test says stop");
    cr_assert_str_eq(t->containers[0].last_status, "STOPPED");
    cr_assert_eq(count_containers_of(arn), 1, "a stopped task's container stays for its logs");

    /* the store has the task, never a value */
    ag_task *saved = NULL;
    cr_assert_eq(ag_store_task_get(store, arn, &saved), 0);
    cr_assert_eq(saved->last_status, AG_TASK_STOPPED);
    ag_task_free(saved);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -r -c -a 'value-of-' %s >/dev/null", dir);
    cr_assert_neq(system(cmd), 0, "a secret value reached the state directory");
    snprintf(args, sizeof args, "rm -f %s", t->containers[0].docker_id);
    docker_cli(args);
}

Test(engine, essential_container_exit_stops_the_task)
{
    ag_task *t = run("{\"family\":\"eng\",\"networkMode\":\"none\",\"containerDefinitions\":["
                     "{\"name\":\"quick\",\"image\":\"local/busybox:latest\","
                     "\"command\":[\"sh\",\"-c\",\"sleep 5; exit 3\"]},"
                     "{\"name\":\"side\",\"image\":\"local/busybox:latest\",\"essential\":false,"
                     "\"stopTimeout\":1,\"command\":[\"sleep\",\"300\"]}]}");
    char arn[256];
    snprintf(arn, sizeof arn, "%s", t->arn);
    cr_assert(wait_status(arn, AG_TASK_STOPPED, 40));
    t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_ESSENTIAL_CONTAINER_EXITED, "%s",
                 t->stopped_reason ? t->stopped_reason : "");
    cr_assert_str_eq(t->stopped_reason, "Essential container in task exited");
    ag_task_container *q = ag_task_find_container(t, "quick");
    cr_assert(q->has_exit_code);
    cr_assert_eq(q->exit_code, 3);
    cr_assert_str_eq(ag_task_find_container(t, "side")->last_status, "STOPPED");
    char args[300];
    snprintf(args, sizeof args, "rm -f %s %s", t->containers[0].docker_id,
             t->containers[1].docker_id);
    docker_cli(args);
}

Test(engine, failures_before_start_leave_nothing_behind)
{
    /* a missing parameter: no container at all */
    ag_task *t = run("{\"family\":\"eng\",\"networkMode\":\"none\",\"executionRoleArn\":\"" ROLE
                     "\",\"containerDefinitions\":[{\"name\":\"a\","
                     "\"image\":\"local/busybox:latest\",\"secrets\":[{\"name\":\"X\","
                     "\"valueFrom\":\"missing-param\"}]}]}");
    char arn[256];
    snprintf(arn, sizeof arn, "%s", t->arn);
    cr_assert(wait_status(arn, AG_TASK_STOPPED, 30));
    t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_TASK_FAILED_TO_START);
    cr_assert_not_null(strstr(t->stopped_reason, "missing-param"), "%s", t->stopped_reason);
    cr_assert_eq(count_containers_of(arn), 0);

    /* the second container's image does not exist (and no registry is
     * reachable): the first container, already created, is removed */
    t = run("{\"family\":\"eng\",\"networkMode\":\"none\",\"containerDefinitions\":["
            "{\"name\":\"ok\",\"image\":\"local/busybox:latest\",\"command\":[\"sleep\",\"60\"]},"
            "{\"name\":\"nope\",\"image\":\"local/does-not-exist:1\"}]}");
    snprintf(arn, sizeof arn, "%s", t->arn);
    cr_assert(wait_status(arn, AG_TASK_STOPPED, 60));
    t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_TASK_FAILED_TO_START);
    cr_assert_not_null(strstr(t->stopped_reason, "CannotPullContainerError"), "%s",
                       t->stopped_reason);
    cr_assert_eq(count_containers_of(arn), 0, "nothing half-created is left");
}

Test(engine, restart_adopts_running_and_notices_the_dead)
{
    ag_task *a = run("{\"family\":\"eng\",\"networkMode\":\"none\",\"containerDefinitions\":["
                     "{\"name\":\"a\",\"image\":\"local/busybox:latest\",\"stopTimeout\":1,"
                     "\"command\":[\"sleep\",\"300\"]}]}");
    char arn_a[256], arn_b[256], id_b[80];
    snprintf(arn_a, sizeof arn_a, "%s", a->arn);
    ag_task *b = run("{\"family\":\"eng\",\"networkMode\":\"none\",\"containerDefinitions\":["
                     "{\"name\":\"b\",\"image\":\"local/busybox:latest\","
                     "\"command\":[\"sleep\",\"300\"]}]}");
    snprintf(arn_b, sizeof arn_b, "%s", b->arn);
    cr_assert(wait_status(arn_a, AG_TASK_RUNNING, 30));
    cr_assert(wait_status(arn_b, AG_TASK_RUNNING, 30));
    snprintf(id_b, sizeof id_b, "%s", ag_engine_find_task(engine, arn_b)->containers[0].docker_id);

    /* the agent goes away; b's container is killed meanwhile */
    engine_down();
    uv_run(&loop, UV_RUN_NOWAIT);
    char args[200];
    snprintf(args, sizeof args, "kill %s", id_b);
    docker_cli(args);
    engine_up();
    cr_assert_eq(ag_engine_find_task(engine, arn_a)->last_status, AG_TASK_RUNNING,
                 "loaded from the store");
    cr_assert(wait_status(arn_b, AG_TASK_STOPPED, 30), "the dead container was not noticed");
    cr_assert_eq(ag_engine_find_task(engine, arn_b)->stop_code, AG_STOP_ESSENTIAL_CONTAINER_EXITED);
    cr_assert_eq(ag_engine_find_task(engine, arn_a)->last_status, AG_TASK_RUNNING, "adopted");

    /* the adopted task is still stoppable */
    ag_task *st;
    cr_assert_eq(ag_engine_stop_task(engine, arn_a, AG_STOP_USER_INITIATED, "done", &st), 0);
    cr_assert(wait_status(arn_a, AG_TASK_STOPPED, 30));
    snprintf(args, sizeof args, "rm -f %s %s",
             ag_engine_find_task(engine, arn_a)->containers[0].docker_id, id_b);
    docker_cli(args);
}
