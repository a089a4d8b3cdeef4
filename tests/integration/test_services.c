/* Services against a real dockerd (ES_TEST_DOCKER_HOST) and the loopback
 * AWS stand-in (tests/aws_fake.py): a killed task is replaced (and its
 * replacement resolves afresh); a forced deployment after a rotation
 * replaces every task within the percent bounds, and drift says which
 * tasks held the old value before and that none do after; a removed
 * permission fails the deployment by the circuit breaker, with the reason
 * in the service's events; an agent restart in the middle of a deployment
 * completes it. */
#include "../unit/aws_fake.h"

#include <time.h>

#include <uv.h>

#include "agent/secrets/drift.h"
#include "agent/tasks/engine.h"
#include "agent/services/scheduler.h"

#define AK "AKIDTEST"
#define SK "SECRETKEYVALUE0123456789"
#define ROLE "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
#define CLUSTER "svctest"

static fake f;
static uv_loop_t loop;
static char dir[64];
static aw_client *awc;
static aw_creds *creds;
static ag_resolver *resolver;
static ag_store *store;
static dk_client *docker;
static ag_engine *engine;
static ag_svc_sched *sched;
static ag_drift *drift;
static const uint8_t fp_key[32] = {7};
static uint64_t inactive_retention_s; /* 0: the scheduler's default */

static void agent_up(void)
{
    ag_engine_config ec = {.loop = &loop,
                           .store = store,
                           .docker = docker,
                           .resolver = resolver,
                           .region = "us-east-1",
                           .account = "123456789012",
                           .cluster = CLUSTER,
                           .cleanup_delay_s = 3600};
    cr_assert_eq(ag_engine_create(&ec, &engine), 0);
    cr_assert_eq(ag_engine_start(engine), 0);
    ag_svc_sched_config sc = {.loop = &loop,
                              .engine = engine,
                              .store = store,
                              .region = "us-east-1",
                              .account = "123456789012",
                              .cluster = CLUSTER,
                              .interval_ms = 200,
                              .inactive_retention_s = inactive_retention_s};
    cr_assert_eq(ag_svc_sched_create(&sc, &sched), 0);
    ag_drift_config dc = {.loop = &loop,
                          .client = awc,
                          .creds = creds,
                          .engine = engine,
                          .region = "us-east-1",
                          .interval_ms = 0};
    cr_assert_eq(ag_drift_create(&dc, &drift), 0);
}

static void agent_down(void)
{
    ag_drift_close(drift, NULL, NULL);
    ag_svc_sched_close(sched, NULL, NULL);
    ag_engine_close(engine, NULL, NULL);
    drift = NULL;
    sched = NULL;
    engine = NULL;
}

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

static void remove_containers(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "docker -H %s ps -aq --filter label=com.amazonaws.ecs.cluster=" CLUSTER
             " | xargs -r docker -H %s rm -f >/dev/null 2>&1",
             getenv("ES_TEST_DOCKER_HOST"), getenv("ES_TEST_DOCKER_HOST"));
    (void)system(cmd);
}

static void setup(void)
{
    const char *host = getenv("ES_TEST_DOCKER_HOST");
    cr_assert(host && *host, "ES_TEST_DOCKER_HOST is not set: this test needs a real dockerd "
                             "(run it through ctest, which starts one)");
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    remove_containers();
    const char *a[] = {"--secret", AK "=" SK, NULL};
    fake_start(&f, a);
    cr_assert_eq(uv_loop_init(&loop), 0);
    snprintf(dir, sizeof dir, "/tmp/es-service-XXXXXX");
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
    agent_up();
}

static void teardown(void)
{
    if (engine)
        agent_down();
    dk_client_free(docker);
    aw_creds_close(creds, NULL, NULL);
    aw_client_close(awc, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_resolver_free(resolver);
    ag_store_close(store);
    cr_expect_eq(uv_loop_close(&loop), 0, "a handle was left open");
    fake_stop(&f);
    remove_containers();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
    expect_no_leaks();
}

TestSuite(service, .init = setup, .fini = teardown, .timeout = 240);

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*pred_fn)(void *arg);
/* Runs the loop until pred holds (checked after every loop turn; check
 * runs then too, for invariants) or the deadline. */
static bool wait_for(pred_fn pred, void *arg, int seconds, void (*check)(void))
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
    uint64_t end = uv_now(&loop) + (uint64_t)seconds * 1000;
    bool ok = false;
    while (uv_now(&loop) < end) {
        if (check)
            check();
        if (pred(arg)) {
            ok = true;
            break;
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static ag_service *svc(void)
{
    return ag_svc_find(sched, "web");
}

static bool svc_steady(void *arg)
{
    (void)arg;
    ag_service *v = svc();
    return v && v->steady;
}

static bool rollout_is(void *arg)
{
    ag_service *v = svc();
    return v && v->deps[0].rollout == *(ag_rollout *)arg;
}

static void register_td(const char *json)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &td, &e), 0, "%s", e.message);
    cr_assert_eq(ag_store_taskdef_register(store, td, 1700000000), 0);
    ag_taskdef_free(td);
}

#define TD_WEB                                                                                     \
    "{\"family\":\"web\",\"networkMode\":\"none\",\"executionRoleArn\":\"" ROLE "\","              \
    "\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"local/busybox:latest\","              \
    "\"command\":[\"sleep\",\"300\"],\"stopTimeout\":1,"                                           \
    "\"secrets\":[{\"name\":\"DB_PASSWORD\",\"valueFrom\":\"/test/database_password\"},"           \
    "{\"name\":\"USER\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:123456789012:"            \
    "secret:db:user::\"},{\"name\":\"PINNED\",\"valueFrom\":\"/test/pinned:1\"}]}]}"

static void create_web(int desired, int maxp, int minp, bool cb)
{
    register_td(TD_WEB);
    ag_svc_create_req req = {.name = "web",
                             .family = "web",
                             .desired = desired,
                             .max_percent = maxp,
                             .min_healthy = minp,
                             .cb_enable = cb};
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX];
    cr_assert_eq(ag_svc_create(sched, &req, &v, err, sizeof err), 0, "%s", err);
    cr_assert(wait_for(svc_steady, NULL, 60, NULL), "the service did not reach a steady state");
}

typedef struct count {
    int running, alive, stale, total;
    int on_version; /* tasks holding /test/database_password at want_version */
    const char *want_version;
} count;

static int count_task(void *arg, ag_task *t)
{
    count *c = arg;
    if (!t->group || strcmp(t->group, "service:web") != 0)
        return 0;
    c->total++;
    if (t->last_status == AG_TASK_STOPPED || t->desired_status == AG_TASK_STOPPED)
        return 0;
    c->alive++;
    if (t->last_status == AG_TASK_RUNNING)
        c->running++;
    bool stale = false;
    for (size_t i = 0; i < t->n_secrets; i++) {
        stale = stale || t->secrets[i].drift == AG_DRIFT_STALE;
        if (c->want_version && strcmp(t->secrets[i].value_from, "/test/database_password") == 0 &&
            strcmp(t->secrets[i].version, c->want_version) == 0)
            c->on_version++;
    }
    c->stale += stale;
    return 0;
}

static count counts(const char *want_version)
{
    count c = {.want_version = want_version};
    ag_engine_foreach_task(engine, count_task, &c);
    return c;
}

static bool has_event(const char *needle)
{
    ag_service *v = svc();
    for (size_t i = 0; v && i < v->n_events; i++)
        if (strstr(v->events[i].message, needle))
            return true;
    return false;
}

static char *events_text(void)
{
    static char out[32768];
    size_t n = 0;
    out[0] = '\0';
    ag_service *v = svc();
    for (size_t i = 0; v && i < v->n_events && n < sizeof out - 1; i++)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s\n", v->events[i].message);
    return out;
}

static bool drift_done_flag;
static void on_drift_done(void *arg)
{
    (void)arg;
    drift_done_flag = true;
}
static bool drift_done(void *arg)
{
    (void)arg;
    return drift_done_flag;
}

static void check_drift(void)
{
    drift_done_flag = false;
    cr_assert_eq(ag_drift_check(drift, on_drift_done, NULL), 0);
    cr_assert(wait_for(drift_done, NULL, 20, NULL), "the drift check did not end");
}

static void delete_web(void)
{
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX];
    cr_assert_eq(ag_svc_delete(sched, "web", false, &v, err, sizeof err), -EINVAL,
                 "desiredCount > 0 needs force");
    cr_assert_eq(ag_svc_delete(sched, "web", true, &v, err, sizeof err), 0, "%s", err);
    ag_svc_status want = AG_SVC_INACTIVE;
    (void)want;
    for (int i = 0; i < 300 && svc()->status != AG_SVC_INACTIVE; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(100 * 1000);
    }
    cr_assert_eq(svc()->status, AG_SVC_INACTIVE);
    cr_assert_eq(counts(NULL).alive, 0);
}

typedef struct one_stopped {
    char arn[256];
} one_stopped;

static bool task_stopped(void *arg)
{
    ag_task *t = ag_engine_find_task(engine, ((one_stopped *)arg)->arn);
    return t && t->last_status == AG_TASK_STOPPED;
}

static bool web_running(void *arg)
{
    count c = counts(NULL);
    return c.running == *(int *)arg && c.alive == *(int *)arg;
}

static int first_running(void *arg, ag_task *t)
{
    if (t->group && strcmp(t->group, "service:web") == 0 && t->last_status == AG_TASK_RUNNING &&
        t->desired_status == AG_TASK_RUNNING) {
        *(ag_task **)arg = t;
        return 1;
    }
    return 0;
}

Test(service, killed_task_is_replaced)
{
    create_web(2, 200, 100, false);
    cr_assert(has_event("(service web) has started 2 tasks: (task "), "%s", events_text());
    cr_assert(has_event("(service web) has reached a steady state."), "%s", events_text());
    cr_assert(has_event("deployment completed."), "%s", events_text());
    ag_task *t = NULL;
    ag_engine_foreach_task(engine, first_running, &t);
    cr_assert_not_null(t);
    cr_assert_eq(strncmp(t->started_by, "ecs-svc/", 8), 0);
    cr_assert_str_eq(t->started_by, svc()->deps[0].id);
    one_stopped k;
    snprintf(k.arn, sizeof k.arn, "%s", t->arn);
    char args[200];
    snprintf(args, sizeof args, "kill %s", t->containers[0].docker_id);
    docker_cli(args);
    cr_assert(wait_for(task_stopped, &k, 30, NULL), "the killed task did not stop");
    int two = 2;
    cr_assert(wait_for(web_running, &two, 60, NULL), "the killed task was not replaced");
    cr_assert(wait_for(svc_steady, NULL, 30, NULL));
    cr_assert(has_event("(service web) has started 1 tasks: (task "), "%s", events_text());
    count c = counts(NULL);
    cr_assert_eq(c.total, 3, "two tasks and the replacement");
    delete_web();
}

static int lower_bound, upper_bound, min_seen, max_seen;
static void check_bounds(void)
{
    count c = counts(NULL);
    if (c.running < min_seen)
        min_seen = c.running;
    if (c.alive > max_seen)
        max_seen = c.alive;
}

Test(service, forced_deployment_after_rotation_clears_drift)
{
    create_web(4, 150, 100, false);
    lower_bound = ag_svc_lower(4, 100);
    upper_bound = ag_svc_upper(4, 150);

    /* before any rotation: everything current (the pinned one as well) */
    check_drift();
    count c = counts("1");
    cr_assert_eq(c.running, 4);
    cr_assert_eq(c.stale, 0);
    cr_assert_eq(c.on_version, 4);
    ag_drift_stats ds;
    ag_drift_get_stats(drift, &ds);
    cr_assert_eq(ds.calls, 2,
                 "one call per distinct source (SSM + Secrets Manager), not per "
                 "task; the pinned one needs none");

    /* rotate: every task now holds a stale value of the parameter */
    fake_post(&f, "/__rotate", "{\"name\":\"/test/database_password\"}");
    check_drift();
    c = counts(NULL);
    cr_assert_eq(c.stale, 4);
    ag_svc_sched_pass(sched);
    cr_assert_eq(svc()->stale_tasks, 4);
    cr_assert(has_event("(service web) 4 tasks hold a rotated value of /test/database_password"),
              "%s", events_text());
    /* DescribeTasks shows it */
    ag_task *t = NULL;
    ag_engine_foreach_task(engine, first_running, &t);
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_jw w;
    es_jw_init(&w, &b);
    ag_task_write_json(t, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_not_null(strstr(es_buf_cstr(&b), "\"current\":false,\"currentVersion\":\"2\""), "%s",
                       es_buf_cstr(&b));
    cr_assert_not_null(strstr(es_buf_cstr(&b), "\"staleSecrets\":1"), "%s", es_buf_cstr(&b));
    es_buf_free(&b);

    /* UpdateService --force-new-deployment */
    ag_svc_update_req up = {
        .name = "web", .desired = -1, .min_healthy = -1, .force_new_deployment = true};
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX];
    cr_assert_eq(ag_svc_update(sched, &up, &v, err, sizeof err), 0, "%s", err);
    cr_assert_eq(v->n_deps, 2);
    cr_assert_eq(v->deps[0].status, AG_DEP_PRIMARY);
    cr_assert_eq(v->deps[1].status, AG_DEP_ACTIVE);
    min_seen = 1000;
    max_seen = 0;
    ag_rollout done = AG_ROLLOUT_COMPLETED;
    cr_assert(wait_for(rollout_is, &done, 90, check_bounds), "the deployment did not complete: %s",
              events_text());
    cr_assert_geq(min_seen, lower_bound, "fewer than minimumHealthyPercent running: %d", min_seen);
    cr_assert_leq(max_seen, upper_bound, "more than maximumPercent alive: %d", max_seen);
    cr_assert(wait_for(svc_steady, NULL, 30, NULL));
    c = counts("2");
    cr_assert_eq(c.running, 4);
    cr_assert_eq(c.on_version, 4, "every task resolved the rotated value afresh");
    cr_assert_eq(svc()->n_deps, 1, "the old deployment is gone");
    cr_assert(has_event("has stopped 2 running tasks") || has_event("has stopped 1 running tasks"),
              "%s", events_text());

    /* drift cleared */
    check_drift();
    c = counts(NULL);
    cr_assert_eq(c.stale, 0);
    ag_svc_sched_pass(sched);
    cr_assert_eq(svc()->stale_tasks, 0);

    /* the value the new containers got */
    t = NULL;
    ag_engine_foreach_task(engine, first_running, &t);
    char args[256];
    snprintf(args, sizeof args, "inspect --format '{{json .Config.Env}}' %s",
             t->containers[0].docker_id);
    cr_assert_not_null(strstr(docker_cli(args), "DB_PASSWORD=value-of-/test/database_password-v2"),
                       "%s", docker_cli(args));
    delete_web();
}

Test(service, removed_permission_fails_by_circuit_breaker)
{
    create_web(2, 200, 100, true);
    fake_post(&f, "/__deny", "{\"names\":[\"/test/database_password\"]}");
    ag_svc_update_req up = {
        .name = "web", .desired = -1, .min_healthy = -1, .force_new_deployment = true};
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX];
    cr_assert_eq(ag_svc_update(sched, &up, &v, err, sizeof err), 0, "%s", err);
    ag_rollout failed = AG_ROLLOUT_FAILED;
    cr_assert(wait_for(rollout_is, &failed, 90, NULL), "the circuit breaker did not trip: %s",
              events_text());
    v = svc();
    cr_assert_geq(v->deps[0].failed, ag_svc_cb_threshold(2));
    cr_assert_str_eq(v->deps[0].rollout_reason,
                     "ECS deployment circuit breaker: tasks failed to start.");
    cr_assert(has_event("deployment failed: tasks failed to start."), "%s", events_text());
    cr_assert(has_event("AccessDeniedException"), "the reason is in the events: %s", events_text());
    /* no more launches; the old tasks keep serving */
    int started = counts(NULL).total;
    for (int i = 0; i < 10; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(100 * 1000);
    }
    ag_svc_sched_pass(sched);
    cr_assert_eq(counts(NULL).total, started, "a failed deployment launches nothing more");
    cr_assert_eq(counts(NULL).running, 2, "the previous deployment's tasks still run");
    fake_post(&f, "/__deny", "{\"names\":[]}");
    delete_web();
}

static bool new_task_running(void *arg)
{
    (void)arg;
    ag_service *v = svc();
    return v && v->n_deps == 2 && v->deps[0].running >= 1;
}

Test(service, restart_mid_deployment_completes)
{
    create_web(3, 200, 100, false);
    ag_svc_update_req up = {
        .name = "web", .desired = -1, .min_healthy = -1, .force_new_deployment = true};
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX];
    cr_assert_eq(ag_svc_update(sched, &up, &v, err, sizeof err), 0, "%s", err);
    char dep[AG_SVC_DEP_ID_MAX];
    snprintf(dep, sizeof dep, "%s", v->deps[0].id);
    cr_assert(wait_for(new_task_running, NULL, 60, NULL));
    cr_assert_eq(svc()->deps[0].rollout, AG_ROLLOUT_IN_PROGRESS, "caught mid-deployment");

    /* the agent goes away mid-deployment and comes back */
    agent_down();
    uv_run(&loop, UV_RUN_NOWAIT);
    agent_up();
    v = svc();
    cr_assert_not_null(v);
    cr_assert_str_eq(v->deps[0].id, dep, "the deployment was persisted");
    ag_rollout done = AG_ROLLOUT_COMPLETED;
    cr_assert(wait_for(rollout_is, &done, 90, NULL), "the deployment did not complete: %s",
              events_text());
    cr_assert(wait_for(svc_steady, NULL, 30, NULL));
    count c = counts(NULL);
    cr_assert_eq(c.running, 3);
    cr_assert_eq(svc()->n_deps, 1);
    delete_web();
}

static bool web_gone(void *arg)
{
    (void)arg;
    return svc() == NULL;
}

static int count_services(ag_service *v, void *arg)
{
    ag_service_free(v);
    ++*(int *)arg;
    return 0;
}

/* An agent whose INACTIVE services are kept retention_s, a service "web"
 * of one task, deleted with force: returns once it is INACTIVE. */
static void web_deleted_with_retention(uint64_t retention_s)
{
    agent_down();
    uv_run(&loop, UV_RUN_NOWAIT);
    inactive_retention_s = retention_s;
    agent_up();
    create_web(1, 200, 100, false);
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX];
    cr_assert_eq(ag_svc_delete(sched, "web", true, &v, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 300 && svc() && svc()->status != AG_SVC_INACTIVE; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(100 * 1000);
    }
    cr_assert(svc() && svc()->status == AG_SVC_INACTIVE, "INACTIVE first, still described");
}

Test(service, inactive_service_forgotten_after_retention)
{
    web_deleted_with_retention(2);
    uint64_t t0 = uv_now(&loop);
    cr_assert(wait_for(web_gone, NULL, 30, NULL), "the INACTIVE service stays");
    cr_assert_geq(uv_now(&loop) - t0, 1000, "kept for about its retention");
    /* gone from the store too */
    int n = 0;
    cr_assert_eq(ag_store_service_foreach(store, count_services, &n), 0);
    cr_assert_eq(n, 0, "the store still holds it");
    inactive_retention_s = 0;
}

static int take_service(ag_service *v, void *arg)
{
    ag_service **out = arg;
    if (*out)
        ag_service_free(*out);
    *out = v;
    return 0;
}

/* The retention of an INACTIVE service counts from when it went INACTIVE,
 * across a restart of the agent: the time is stored with the service. */
Test(service, inactive_retention_survives_a_restart)
{
    web_deleted_with_retention(20);
    int64_t went = svc()->inactive_at;
    int64_t now = (int64_t)time(NULL);
    cr_assert(went > now - 60 && went <= now, "inactive_at %lld, now %lld", (long long)went,
              (long long)now);
    agent_down();
    uv_run(&loop, UV_RUN_NOWAIT);

    ag_service *stored = NULL;
    cr_assert_eq(ag_store_service_foreach(store, take_service, &stored), 0);
    cr_assert_not_null(stored);
    cr_assert_eq(stored->status, AG_SVC_INACTIVE);
    cr_assert_eq(stored->inactive_at, went, "the store keeps when it went INACTIVE");
    /* as if the agent had been down for most of the retention */
    stored->inactive_at = now - 19;
    cr_assert_eq(ag_store_service_put(store, stored), 0, "%s", ag_store_errmsg(store));
    ag_service_free(stored);

    agent_up();
    cr_assert(svc() && svc()->status == AG_SVC_INACTIVE, "described again after the restart");
    cr_assert(wait_for(web_gone, NULL, 10, NULL),
              "kept for a whole retention again after the restart");
    inactive_retention_s = 0;
}
