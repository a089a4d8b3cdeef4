/* bench_service - a forced deployment after a rotation, against a real dockerd
 * and the loopback AWS stand-in (tests/aws_fake.py).
 *
 *   bench_service [unix:///path/docker.sock] [desired] [maximumPercent] [minimumHealthyPercent]
 *   bench_service ... sleep   (the container is `sleep 3600`, which as PID 1
 *                              ignores SIGTERM: each stop waits stopTimeout)
 * (default host: $ES_TEST_DOCKER_HOST; defaults 20 150 100; ES_BENCH_DOCKER_CONNS
 * sets the Docker client's pool, AG_DOCKER_MAX_CONNS by default as in the agent)
 *
 * 1. One task's launch time: three single RunTask launches (RunTask to
 *    RUNNING, secrets resolved), the median; and one task's stop (StopTask
 *    to STOPPED), the median. The container traps SIGTERM (busybox sleep as
 *    PID 1 would ignore it and every stop would wait out stopTimeout), and
 *    the floor uses the same task definition.
 * 2. A service of `desired` tasks reaches a steady state; the parameter is
 *    rotated; a drift round finds every task stale.
 * 3. UpdateService forceNewDeployment: the time until the rollout is
 *    COMPLETED (every task replaced, each new one resolved the rotated value,
 *    the old ones stopped), against the floor: one launch x the waves the
 *    percent bounds allow (ceil(desired / (upper - lower))), and a second
 *    floor that adds the last wave's stop (COMPLETED waits for the old tasks
 *    to be STOPPED). The service's events (millisecond times) show where the
 *    time went. A drift round then confirms no task is stale.
 * 4. Drift's cost: metadata calls per task per round (one call per distinct
 *    source, whatever the number of tasks sharing it).
 * Every figure comes from a run that checked its outcome; a failed run
 * prints FAILED and exits 1. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "agent/secrets/drift.h"
#include "agent/tasks/engine.h"
#include "agent/services/scheduler.h"
#include "common/log.h"

#define AK "AKIDTEST"
#define SK "SECRETKEYVALUE0123456789"
#define ROLE "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
#define CLUSTER "benchsvc"

static uv_loop_t loop;
static ag_engine *engine;
static ag_svc_sched *sched;
static ag_drift *drift;
static char base[64];
static const char *host;
static pid_t fake_pid;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "FAILED: %s\n", what);
    if (fake_pid > 0)
        kill(fake_pid, SIGTERM);
    exit(1);
}

static pid_t start_fake(void)
{
    /* the stand-in lives beside this file: SOURCE/bench/bench_service.c */
    char path[1024];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    if (!slash)
        die("cannot locate tests/aws_fake.py");
    *slash = '\0';
    slash = strrchr(path, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(path, sizeof path, "..");
    char script[1100];
    snprintf(script, sizeof script, "%s/tests/aws_fake.py", path);
    int fds[2];
    if (pipe(fds) < 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", script, "--secret", AK "=" SK, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    size_t got = 0;
    while (got < sizeof line - 1 && read(fds[0], line + got, 1) == 1 && line[got] != '\n')
        got++;
    close(fds[0]);
    int port = (int)strtol(line, NULL, 10);
    if (port <= 0)
        die("the AWS stand-in did not start");
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    return pid;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

static void fake_post(const char *path, const char *json)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (curl_easy_perform(c) != CURLE_OK)
        die("the AWS stand-in does not answer");
    curl_easy_cleanup(c);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

typedef bool (*pred_fn)(void *arg);
static bool wait_for(pred_fn pred, void *arg, double seconds)
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    double end = now_s() + seconds;
    bool ok = false;
    while (now_s() < end) {
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

static bool task_running(void *arg)
{
    ag_task *t = ag_engine_find_task(engine, arg);
    if (t && t->last_status == AG_TASK_STOPPED)
        die(t->stopped_reason ? t->stopped_reason : "a task stopped");
    return t && t->last_status == AG_TASK_RUNNING;
}

static bool task_stopped(void *arg)
{
    ag_task *t = ag_engine_find_task(engine, arg);
    return t && t->last_status == AG_TASK_STOPPED;
}

typedef struct arns {
    char arn[200][160];
    int n;
} arns;

static bool all_in(void *arg, ag_task_status st)
{
    arns *a = arg;
    for (int i = 0; i < a->n; i++) {
        ag_task *t = ag_engine_find_task(engine, a->arn[i]);
        if (st == AG_TASK_RUNNING && t && t->last_status == AG_TASK_STOPPED)
            die(t->stopped_reason ? t->stopped_reason : "a task stopped");
        if (!t || t->last_status != st)
            return false;
    }
    return true;
}

static bool all_running(void *arg)
{
    return all_in(arg, AG_TASK_RUNNING);
}

static bool all_stopped(void *arg)
{
    return all_in(arg, AG_TASK_STOPPED);
}

static bool steady(void *arg)
{
    (void)arg;
    ag_service *v = ag_svc_find(sched, "bench");
    return v && v->steady;
}

static bool completed(void *arg)
{
    (void)arg;
    ag_service *v = ag_svc_find(sched, "bench");
    if (v && v->deps[0].rollout == AG_ROLLOUT_FAILED)
        die(v->events[0].message);
    return v && v->deps[0].rollout == AG_ROLLOUT_COMPLETED;
}

static bool inactive(void *arg)
{
    (void)arg;
    ag_service *v = ag_svc_find(sched, "bench");
    return v && v->status == AG_SVC_INACTIVE;
}

static bool drift_flag;
static void on_drift(void *arg)
{
    (void)arg;
    drift_flag = true;
}
static bool drift_done(void *arg)
{
    (void)arg;
    return drift_flag;
}

static ag_drift_stats drift_round(void)
{
    drift_flag = false;
    if (ag_drift_check(drift, on_drift, NULL) < 0 || !wait_for(drift_done, NULL, 30))
        die("drift round");
    ag_drift_stats s;
    ag_drift_get_stats(drift, &s);
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void remove_containers(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "docker -H %s ps -aq --filter label=com.amazonaws.ecs.cluster=" CLUSTER
             " | xargs -r docker -H %s rm -f >/dev/null 2>&1",
             host, host);
    (void)system(cmd);
}

#define TD_HEAD                                                                                    \
    "{\"family\":\"bench\",\"networkMode\":\"none\",\"executionRoleArn\":\"" ROLE "\","            \
    "\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"local/busybox:latest\","
/* the container stops on SIGTERM; "sleep" (argv[5]) is the one that ignores it */
#define CMD_TRAP "\"command\":[\"sh\",\"-c\",\"trap 'exit 0' TERM; sleep 3600 & wait\"],"
#define CMD_SLEEP "\"command\":[\"sleep\",\"3600\"],"
#define TD_TAIL                                                                                    \
    "\"stopTimeout\":1,"                                                                           \
    "\"secrets\":[{\"name\":\"DB_PASSWORD\",\"valueFrom\":\"/bench/database_password\"},"          \
    "{\"name\":\"API_USER\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:123456789012:"        \
    "secret:api:user::\"}]}]}"

int main(int argc, char **argv)
{
    host = argc > 1 ? argv[1] : getenv("ES_TEST_DOCKER_HOST");
    int desired = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20;
    int maxp = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 150;
    int minp = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 100;
    bool sleep_cmd = argc > 5 && strcmp(argv[5], "sleep") == 0;
    const char *TD = sleep_cmd ? TD_HEAD CMD_SLEEP TD_TAIL : TD_HEAD CMD_TRAP TD_TAIL;
    if (!host || !*host)
        die("no Docker host: pass one or set ES_TEST_DOCKER_HOST");
    if (ag_service_config_error(desired, maxp, minp))
        die(ag_service_config_error(desired, maxp, minp));
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    if (!getenv("ECS_LOGLEVEL"))
        es_log_set_level(ES_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    remove_containers();
    pid_t fake = fake_pid = start_fake();
    uv_loop_init(&loop);
    char dir[] = "/tmp/es-bench-svc-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp");
    char err[256];
    ag_store *store = NULL;
    aw_client *awc = NULL;
    aw_creds *creds = NULL;
    ag_resolver *resolver = NULL;
    dk_client *docker = NULL;
    static const uint8_t fp_key[32] = {3};
    if (ag_store_open(dir, &store, err, sizeof err) < 0)
        die(err);
    aw_client_config cc = {.region = "us-east-1", .base_delay_ms = 5};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = base;
    aw_creds_config pc = {.access_key_id = AK, .secret_access_key = SK};
    ag_resolver_config rc = {.region = "us-east-1", .fp_key = fp_key, .fp_key_len = 32};
    /* ES_BENCH_DOCKER_CONNS: the Docker client's pool (default: the agent's) */
    const char *conns = getenv("ES_BENCH_DOCKER_CONNS");
    dk_options o = {.host = host,
                    .max_conns = conns ? (size_t)strtoul(conns, NULL, 10) : AG_DOCKER_MAX_CONNS};
    if (aw_client_create(&loop, &cc, &awc) < 0 || aw_creds_create(awc, &pc, &creds) < 0)
        die("AWS client");
    rc.client = awc;
    rc.creds = creds;
    if (ag_resolver_create(&rc, &resolver) < 0 || dk_client_create(&loop, &o, &docker) < 0)
        die("resolver / docker client");
    ag_engine_config ec = {.loop = &loop,
                           .store = store,
                           .docker = docker,
                           .resolver = resolver,
                           .region = "us-east-1",
                           .account = "123456789012",
                           .cluster = CLUSTER};
    if (ag_engine_create(&ec, &engine) < 0 || ag_engine_start(engine) < 0)
        die("engine");
    ag_svc_sched_config sc = {.loop = &loop,
                              .engine = engine,
                              .store = store,
                              .region = "us-east-1",
                              .account = "123456789012",
                              .cluster = CLUSTER,
                              .interval_ms = 100};
    ag_drift_config dc = {
        .loop = &loop, .client = awc, .creds = creds, .engine = engine, .region = "us-east-1"};
    if (ag_svc_sched_create(&sc, &sched) < 0 || ag_drift_create(&dc, &drift) < 0)
        die("scheduler / drift");

    ag_td_error tde;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    ag_taskdef *td = NULL;
    if (ag_taskdef_parse(TD, strlen(TD), &ctx, &td, &tde) < 0 ||
        ag_store_taskdef_register(store, td, (int64_t)time(NULL)) < 0)
        die("task definition");
    ag_taskdef_free(td);

    /* 1. one task's launch, one task's stop */
    double one[3], stop1[3];
    for (int i = 0; i < 3; i++) {
        if (ag_store_taskdef_get(store, "bench", 0, &td) < 0)
            die("task definition");
        ag_run_request req = {.td = td, .count = 1, .started_by = "bench"};
        ag_task *t[1];
        double t0 = now_s();
        if (ag_engine_run_task(engine, &req, t) < 0)
            die("RunTask");
        char arn[256];
        snprintf(arn, sizeof arn, "%s", t[0]->arn);
        if (!wait_for(task_running, arn, 60))
            die("a single task did not run");
        one[i] = now_s() - t0;
        ag_task *st;
        t0 = now_s();
        ag_engine_stop_task(engine, arn, AG_STOP_USER_INITIATED, "bench", &st);
        if (!wait_for(task_stopped, arn, 60))
            die("a single task did not stop");
        stop1[i] = now_s() - t0;
    }
    qsort(one, 3, sizeof *one, cmp_double);
    qsort(stop1, 3, sizeof *stop1, cmp_double);
    double t1 = one[1], ts1 = stop1[1];

    /* one wave's launch: upper - lower tasks at once (RunTask calls of at
     * most 10), until all are RUNNING: what Docker does with them together */
    static arns wave;
    int wave_n = ag_svc_upper(desired, maxp) - ag_svc_lower(desired, minp);
    if (wave_n > desired)
        wave_n = desired;
    if (wave_n > 200)
        wave_n = 200;
    double tw0 = now_s();
    for (int left = wave_n; left > 0;) {
        if (ag_store_taskdef_get(store, "bench", 0, &td) < 0)
            die("task definition");
        int n = left > AG_ENGINE_RUN_MAX ? AG_ENGINE_RUN_MAX : left;
        ag_run_request req = {.td = td, .count = n, .started_by = "bench"};
        ag_task *t[AG_ENGINE_RUN_MAX];
        if (ag_engine_run_task(engine, &req, t) < 0)
            die("RunTask");
        for (int i = 0; i < n; i++)
            snprintf(wave.arn[wave.n++], sizeof wave.arn[0], "%s", t[i]->arn);
        left -= n;
    }
    if (!wait_for(all_running, &wave, 300))
        die("a wave did not run");
    double twave = now_s() - tw0;
    for (int i = 0; i < wave.n; i++) {
        ag_task *st;
        ag_engine_stop_task(engine, wave.arn[i], AG_STOP_USER_INITIATED, "bench", &st);
    }
    if (!wait_for(all_stopped, &wave, 120))
        die("a wave did not stop");

    /* 2. the service, steady; a rotation; drift sees it */
    ag_svc_create_req cr = {.name = "bench",
                            .family = "bench",
                            .desired = desired,
                            .max_percent = maxp,
                            .min_healthy = minp};
    ag_service *v = NULL;
    char e2[AG_SVC_ERR_MAX];
    double tc = now_s();
    if (ag_svc_create(sched, &cr, &v, e2, sizeof e2) < 0)
        die(e2);
    if (!wait_for(steady, NULL, 300))
        die("the service did not reach a steady state");
    double create_s = now_s() - tc;
    ag_drift_stats d0 = drift_round();
    fake_post("/__rotate", "{\"name\":\"/bench/database_password\"}");
    ag_drift_stats d1 = drift_round();
    if ((int)d1.stale_tasks != desired)
        die("drift did not find every task stale after the rotation");
    unsigned long calls_round = d1.calls - d0.calls;

    /* 3. the forced deployment */
    ag_svc_update_req up = {
        .name = "bench", .desired = -1, .min_healthy = -1, .force_new_deployment = true};
    struct timespec wall; /* events carry wall-clock times */
    clock_gettime(CLOCK_REALTIME, &wall);
    double t0_wall = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
    double t0 = now_s();
    if (ag_svc_update(sched, &up, &v, e2, sizeof e2) < 0)
        die(e2);
    if (!wait_for(completed, NULL, 600))
        die("the deployment did not complete");
    double deploy_s = now_s() - t0;
    ag_drift_stats d2 = drift_round();
    if (d2.stale_tasks != 0)
        die("tasks still stale after the deployment");
    int waves = ag_svc_waves(desired, maxp, minp);

    printf("service of %d tasks, maximumPercent %d, minimumHealthyPercent %d "
           "(upper %d, lower %d); container: %s\n",
           desired, maxp, minp, ag_svc_upper(desired, maxp), ag_svc_lower(desired, minp),
           sleep_cmd ? "sleep 3600 (ignores SIGTERM)" : "sh traps SIGTERM");
    printf("one task's launch (RunTask to RUNNING, 2 secrets resolved), median of 3: %.3f s\n", t1);
    printf("service creation to steady state:          %.3f s\n", create_s);
    printf("forced deployment, UpdateService to COMPLETED (all tasks current): %.3f s\n", deploy_s);
    printf("one task's stop (StopTask to STOPPED), median of 3: %.3f s\n", ts1);
    printf("floor: %d waves x %.3f s = %.3f s; measured / floor = %.2f\n", waves, t1, waves * t1,
           deploy_s / (waves * t1));
    printf("floor with the last wave's stop: %.3f s; measured / floor = %.2f\n", waves * t1 + ts1,
           deploy_s / (waves * t1 + ts1));
    printf("one wave's launch (%d tasks at once to all RUNNING): %.3f s (%.3f s per task)\n",
           wave_n, twave, twave / wave_n);
    printf("floor with waves launched together: %d x %.3f s + %.3f s = %.3f s; measured / floor "
           "= %.2f\n",
           waves, twave, ts1, waves * twave + ts1, deploy_s / (waves * twave + ts1));
    printf("the deployment's events (seconds after UpdateService):\n");
    for (size_t i = v->n_events; i-- > 0;) {
        double at = (double)v->events[i].created_ms / 1000.0 - t0_wall;
        if (at >= -1.0)
            printf("  %+7.3f  %.110s\n", at, v->events[i].message);
    }
    printf("drift: %lu metadata calls per round for %lu tasks (%lu secrets): %.3f calls per task "
           "per interval\n",
           calls_round, d1.tasks, d1.secrets, (double)calls_round / (double)d1.tasks);
    printf("drift: after the rotation %lu stale tasks; after the deployment %lu\n", d1.stale_tasks,
           d2.stale_tasks);

    /* teardown */
    if (ag_svc_delete(sched, "bench", true, &v, e2, sizeof e2) < 0 ||
        !wait_for(inactive, NULL, 120))
        die("delete");
    ag_drift_close(drift, NULL, NULL);
    ag_svc_sched_close(sched, NULL, NULL);
    ag_engine_close(engine, NULL, NULL);
    dk_client_free(docker);
    aw_creds_close(creds, NULL, NULL);
    aw_client_close(awc, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_resolver_free(resolver);
    ag_store_close(store);
    uv_loop_close(&loop);
    kill(fake, SIGTERM);
    waitpid(fake, NULL, 0);
    remove_containers();
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)system(cmd);
    curl_global_cleanup();
    return 0;
}
