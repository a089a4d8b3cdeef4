/* bench_engine - RunTask to RUNNING against the floor of Docker alone
 * (issue 7). Figures, not a test.
 *
 * One loop holds what the daemon holds in embedded mode: the embedded store
 * (aws/local) behind its loopback listener (aw_listener, its own temporary
 * state directory), the AWS client pointed at it (SSM and Secrets Manager
 * endpoint overrides), the resolver, the task store, the Docker client and
 * the engine. As the daemon in embedded mode: the authorisation hook is
 * installed, the execution role is an embedded IAM role (ECS trust, an
 * inline policy for the parameters), the resolver assumes it through the
 * embedded STS with the administrator's key and reads as the session.
 * Role credentials are cached, so STS is asked once.
 *
 * The task: one container (local/busybox:latest, sleep), 10 secrets from 10
 * SecureString parameters. The floor: dk_container_create_json with the
 * ContainerCreate body the engine would send (ag_inject_build with the same
 * values, so the same Env) then dk_container_start, on the same Docker
 * client. N sequential launches of each, interleaved (alternating which goes
 * first) to cancel drift: median and p99 of both, and the ratio.
 *
 * Then 100 tasks at once (10 RunTask calls of count 10): time until all are
 * RUNNING, a Docker list to check there are exactly 100 containers with 100
 * distinct task ARNs, the backend calls per task (resolver, listener and
 * STS counters) and the process's peak RSS. Every container made here is
 * force-removed at the end (by label).
 *
 * Env: ES_BENCH_DOCKER_HOST (default unix:///tmp/es-bench-docker/docker.sock,
 * tests/harness/dockerd.sh with ES_TEST_DOCKER_ROOT=/tmp/es-bench-docker).
 * Argument: N (default 30). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "agent/tasks/engine.h"
#include "agent/secrets/inject.h"
#include "aws/local/auth.h"
#include "aws/local/authz.h"
#include "aws/local/local.h"
#include "aws/local/query.h"
#include "aws/listener.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

#define N_SECRETS 10
#define BURST_RUNS 10
#define BURST_COUNT 10
#define BURST (BURST_RUNS * BURST_COUNT)
#define SEQ_MAX 1000
#define CLUSTER "bench"
#define FLOOR_LABEL "es-bench.floor-task-arn"
#define ROLE "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
#define IMAGE "local/busybox:latest"

static uv_loop_t loop;
static char dir[64], store_dir[96], agent_dir[96];
static al_ctx *al;
static aw_listener *srv;
static aw_client *awc;
static aw_creds *creds;
static ag_resolver *resolver;
static ag_preflight *preflight;
static ag_store *store;
static dk_client *docker;
static ag_engine *engine;
static char *admin_secret;
static char admin_akid[AL_AKID_LEN + 1];
static const uint8_t fp_key[32] = {7};
static char values[N_SECRETS][48]; /* the plaintext values (the floor injects them too) */
static int64_t td_revision;

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* ---- task tracking through the engine's observer ---- */

typedef struct tracked {
    char arn[256];
    uint64_t t0, t_running;
    bool running, failed;
} tracked;

static tracked tr[SEQ_MAX + BURST + 4];
static size_t n_tr;
static size_t n_running, n_failed;
static char first_failure[1024];

static void observer(void *arg, ag_task *t, ag_task_status from)
{
    (void)arg;
    (void)from;
    for (size_t i = n_tr; i-- > 0;) {
        if (strcmp(tr[i].arn, t->arn) != 0)
            continue;
        if (t->last_status == AG_TASK_RUNNING && !tr[i].running) {
            tr[i].running = true;
            tr[i].t_running = now_ns();
            n_running++;
        } else if (t->last_status == AG_TASK_STOPPED && !tr[i].running && !tr[i].failed) {
            tr[i].failed = true;
            n_failed++;
            if (!first_failure[0])
                snprintf(first_failure, sizeof first_failure, "%s",
                         t->stopped_reason ? t->stopped_reason : "(no reason)");
        }
        return;
    }
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag reaches want (or the deadline). */
static bool wait_until(const size_t *counter, size_t want, int seconds)
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
    uint64_t end = uv_now(&loop) + (uint64_t)seconds * 1000;
    while (*counter < want && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *counter >= want;
}

/* Until n_running reaches running or n_failed reaches failed. */
static bool wait_until_either(size_t running, size_t failed, int seconds)
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
    uint64_t end = uv_now(&loop) + (uint64_t)seconds * 1000;
    while (n_running < running && n_failed < failed && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return n_running >= running;
}

static void idle_ms(uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_tick, ms, 0);
    uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* Starts `count` tasks in one RunTask; their tracking slots get t0. */
static int run_tasks(int count, uint64_t t0)
{
    ag_taskdef *td = NULL;
    if (ag_store_taskdef_get(store, "bench", td_revision, &td) < 0)
        return -1;
    ag_run_request req = {.td = td, .count = count, .started_by = "bench"};
    ag_task *tasks[AG_ENGINE_RUN_MAX];
    int rc = ag_engine_run_task(engine, &req, tasks);
    if (rc < 0) {
        fprintf(stderr, "ag_engine_run_task: %s\n", strerror(-rc));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        tracked *k = &tr[n_tr++];
        snprintf(k->arn, sizeof k->arn, "%s", tasks[i]->arn);
        k->t0 = t0;
    }
    return 0;
}

/* ---- the floor: create + start straight through the Docker API ---- */

typedef struct floor_run {
    uint64_t t0, t1;
    int err;
    char message[256];
    bool done;
} floor_run;

static size_t floor_done;

static void floor_finish(floor_run *f, const dk_result *r)
{
    if (r && r->err) {
        f->err = r->err;
        snprintf(f->message, sizeof f->message, "%s",
                 r->message ? r->message : dk_strerror(r->err));
    }
    f->t1 = now_ns();
    f->done = true;
    floor_done++;
}

static void floor_started(void *ud, const dk_result *r)
{
    floor_finish(ud, r);
}

static void floor_created(void *ud, const dk_result *r, const char *id)
{
    floor_run *f = ud;
    if (r->err || dk_container_start(docker, id, floor_started, f) < 0)
        floor_finish(f, r->err ? r : &(dk_result){.err = -EIO});
}

/* The ContainerCreate body the engine would send for the task definition's
 * container with the same values; the task-ARN label renamed so that the
 * engine does not take these containers for its own. */
static int floor_body(const ag_taskdef *td, int n, es_buf *body, char **name)
{
    ag_secret_value sv[N_SECRETS];
    for (size_t i = 0; i < N_SECRETS; i++)
        sv[i] = (ag_secret_value){.target = AG_SECRET_ENV,
                                  .name = td->containers[0].secrets[i].name,
                                  .value = values[i],
                                  .len = strlen(values[i])};
    char arn[128];
    snprintf(arn, sizeof arn, "arn:aws:ecs:us-east-1:123456789012:task/bench-floor/%032d", n);
    ag_inject_ctx ctx = {.task_arn = arn,
                         .cluster = "bench-floor",
                         .family = td->family,
                         .revision = td->revision,
                         .network_mode = "none"};
    ag_create_params *p = NULL;
    char err[AG_INJECT_ERR_MAX];
    if (ag_inject_build(&td->containers[0], NULL, sv, N_SECRETS, &ctx, &p, err, sizeof err) < 0) {
        fprintf(stderr, "ag_inject_build: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < p->n_labels; i++)
        if (strcmp(p->labels[i].name, DK_TASK_ARN_LABEL) == 0) {
            es_free(p->labels[i].name);
            p->labels[i].name = es_strdup(FLOOR_LABEL);
            p->label_views[i].key = p->labels[i].name; /* the spec's view of it */
        }
    es_buf_init(body, AG_CREATE_BODY_MAX);
    int rc = dk_create_body(&p->spec, body);
    *name = es_strdup(p->name);
    ag_create_params_free(p);
    return rc < 0 || !*name ? -1 : 0;
}

/* ---- container listing and cleanup ---- */

typedef struct list_result {
    bool done;
    int err;
    size_t n, running, distinct, in_burst;
    char **ids;
    size_t n_ids;
} list_result;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void on_list(void *ud, const dk_result *r, const dk_container_summary *items, size_t n)
{
    list_result *lr = ud;
    lr->done = true;
    lr->err = r->err;
    if (r->err)
        return;
    lr->n = n;
    lr->ids = es_calloc(n + 1, sizeof *lr->ids);
    char **arns = es_calloc(n + 1, sizeof *arns);
    size_t na = 0;
    for (size_t i = 0; i < n; i++) {
        lr->ids[lr->n_ids++] = es_strdup(items[i].id);
        lr->running += items[i].state && strcmp(items[i].state, "running") == 0;
        for (size_t j = 0; j < items[i].nlabels; j++)
            if (strcmp(items[i].labels[j].key, DK_TASK_ARN_LABEL) == 0) {
                for (size_t k = n_tr - BURST; k < n_tr; k++)
                    if (strcmp(tr[k].arn, items[i].labels[j].value) == 0) {
                        lr->in_burst++;
                        arns[na++] = es_strdup(items[i].labels[j].value);
                        break;
                    }
            }
    }
    qsort(arns, na, sizeof *arns, cmp_str);
    for (size_t i = 0; i < na; i++) {
        lr->distinct += i == 0 || strcmp(arns[i], arns[i - 1]) != 0;
        es_free(arns[i]);
    }
    es_free(arns);
}

static void list_free(list_result *lr)
{
    for (size_t i = 0; i < lr->n_ids; i++)
        es_free(lr->ids[i]);
    es_free(lr->ids);
}

static int list(const char *filter, list_result *lr)
{
    memset(lr, 0, sizeof *lr);
    if (dk_container_list(docker, &filter, 1, on_list, lr) < 0)
        return -1;
    while (!lr->done)
        uv_run(&loop, UV_RUN_ONCE);
    return lr->err ? -1 : 0;
}

static size_t removed;

static void on_removed(void *ud, const dk_result *r)
{
    (void)ud;
    (void)r;
    removed++;
}

static size_t remove_all(const char *filter)
{
    list_result lr;
    if (list(filter, &lr) < 0)
        return 0;
    removed = 0;
    size_t asked = 0;
    for (size_t i = 0; i < lr.n_ids; i++)
        asked += dk_container_remove(docker, lr.ids[i], true, on_removed, NULL) == 0;
    wait_until(&removed, asked, 120);
    list_free(&lr);
    return asked;
}

/* ---- set-up ---- */

static void die(const char *what)
{
    fprintf(stderr, "bench_engine: %s\n", what);
    exit(1);
}

#define ROOT "arn:aws:iam::123456789012:root"

/* One IAM/STS query-protocol call as the administrator; dies on failure. */
static void iam(const char *action, ...)
{
    es_buf body, out;
    es_buf_init(&body, 1u << 16);
    es_buf_init(&out, 1u << 16);
    aw_form_append(&body, "Action", action);
    aw_form_append(&body, "Version", "2010-05-08");
    va_list ap;
    va_start(ap, action);
    const char *k;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        aw_form_append(&body, k, v);
    }
    va_end(ap);
    al_error e;
    if (al_query_dispatch(al, "iam", ROOT, body.data, body.len, &out, &e) < 0) {
        fprintf(stderr, "iam %s: %s %s\n", action, e.code, e.message);
        exit(1);
    }
    es_buf_free(&body);
    es_buf_free(&out);
}

static void setup(const char *docker_host)
{
    snprintf(dir, sizeof dir, "/tmp/bench-engine-XXXXXX");
    if (!mkdtemp(dir))
        die("mkdtemp");
    snprintf(store_dir, sizeof store_dir, "%s/embedded", dir);
    snprintf(agent_dir, sizeof agent_dir, "%s/agent", dir);
    if (mkdir(store_dir, 0700) != 0 || mkdir(agent_dir, 0700) != 0)
        die("mkdir");
    char err[256];
    al_options o = {.state_dir = store_dir, .region = "us-east-1", .account = "123456789012"};
    if (al_open(&o, &al, err, sizeof err) < 0 ||
        al_admin_init(al, store_dir, admin_akid, err, sizeof err) < 0)
        die(err);
    if (al_admin_credentials(al, admin_akid, &admin_secret) < 0)
        die("administrator key");
    al_authz_install(al);
    iam("CreateRole", "RoleName", "ecsTaskExecutionRole", "AssumeRolePolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{"
        "\"Service\":\"ecs-tasks.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}",
        NULL);
    iam("PutRolePolicy", "RoleName", "ecsTaskExecutionRole", "PolicyName", "secrets",
        "PolicyDocument",
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":["
        "\"ssm:GetParameters\",\"kms:Decrypt\"],\"Resource\":[\"arn:aws:ssm:us-east-1:"
        "123456789012:parameter/bench/engine/*\",\"arn:aws:kms:us-east-1:123456789012:key/*\"]}]}",
        NULL);
    for (int i = 0; i < N_SECRETS; i++) {
        unsigned char rnd[12];
        es_random_bytes(rnd, sizeof rnd);
        int off = snprintf(values[i], sizeof values[i], "value-%02d-", i + 1);
        for (size_t k = 0; k < sizeof rnd; k++)
            off += snprintf(values[i] + off, sizeof values[i] - (size_t)off, "%02x", rnd[k]);
        char body[256];
        snprintf(
            body, sizeof body,
            "{\"Name\":\"/bench/engine/secret%02d\",\"Type\":\"SecureString\",\"Value\":\"%s\"}",
            i + 1, values[i]);
        es_buf out;
        es_buf_init(&out, 1 << 16);
        al_error e;
        if (al_dispatch(al, "AmazonSSM.PutParameter", ROOT, body, strlen(body), &out, &e) < 0)
            die(e.message);
        es_buf_free(&out);
        es_wipe(body, sizeof body);
    }
    if (uv_loop_init(&loop) != 0 || aw_listener_start(&loop, "127.0.0.1", 0, NULL, &srv) < 0 ||
        al_mount(al, srv) < 0)
        die("listener");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", aw_listener_port(srv));

    if (ag_store_open(agent_dir, &store, err, sizeof err) < 0)
        die(err);
    aw_client_config cc = {.region = "us-east-1"};
    for (int k = 0; k < AW_SVC_COUNT; k++) /* as the agent in embedded mode */
        cc.endpoint_override[k] = url;
    if (aw_client_create(&loop, &cc, &awc) < 0)
        die("aw_client_create");
    aw_creds_config pc = {.access_key_id = admin_akid, .secret_access_key = admin_secret};
    if (aw_creds_create(awc, &pc, &creds) < 0)
        die("aw_creds_create");
    /* the execution role's permissions checked in-process before AssumeRole, as the
     * daemon does in embedded mode (ECS_SECRETS_PREFLIGHT=on) */
    ag_preflight_config pfc = {.client = awc,
                               .creds = creds,
                               .embedded = al,
                               .region = "us-east-1",
                               .account = "123456789012"};
    if (ag_preflight_create(&pfc, &preflight) < 0)
        die("ag_preflight_create");
    ag_resolver_config rc = {.preflight = preflight,
                             .client = awc,
                             .creds = creds,
                             .region = "us-east-1",
                             .fp_key = fp_key,
                             .fp_key_len = sizeof fp_key};
    if (ag_resolver_create(&rc, &resolver) < 0)
        die("ag_resolver_create");
    dk_options dko = {.host = docker_host};
    if (dk_client_create(&loop, &dko, &docker) < 0)
        die("dk_client_create");
    ag_engine_config ec = {.loop = &loop,
                           .store = store,
                           .docker = docker,
                           .resolver = resolver,
                           .region = "us-east-1",
                           .account = "123456789012",
                           .cluster = CLUSTER,
                           .cleanup_delay_s = 3600,
                           .network_mode = "none"};
    if (ag_engine_create(&ec, &engine) < 0 || ag_engine_start(engine) < 0 ||
        ag_engine_observe(engine, observer, NULL) < 0)
        die("engine");

    /* the task definition: one container, 10 secrets */
    es_buf td_json;
    es_buf_init(&td_json, 1 << 16);
    es_buf_printf(&td_json,
                  "{\"family\":\"bench\",\"networkMode\":\"none\",\"executionRoleArn\":\"" ROLE
                  "\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"" IMAGE "\","
                  "\"command\":[\"sleep\",\"3600\"],\"stopTimeout\":1,"
                  "\"environment\":[{\"name\":\"PLAIN\",\"value\":\"x\"}],\"secrets\":[");
    for (int i = 0; i < N_SECRETS; i++)
        es_buf_printf(&td_json,
                      "%s{\"name\":\"SECRET_%02d\",\"valueFrom\":\"/bench/engine/secret%02d\"}",
                      i ? "," : "", i + 1, i + 1);
    es_buf_printf(&td_json, "]}]}");
    ag_taskdef *td = NULL;
    ag_td_error te;
    ag_td_ctx tctx = {.region = "us-east-1", .account = "123456789012"};
    if (ag_taskdef_parse(td_json.data, td_json.len, &tctx, &td, &te) < 0)
        die(te.message);
    if (ag_store_taskdef_register(store, td, (int64_t)time(NULL)) < 0)
        die("taskdef register");
    td_revision = td->revision;
    ag_taskdef_free(td);
    es_buf_free(&td_json);
}

static void teardown(void)
{
    ag_engine_close(engine, NULL, NULL);
    dk_client_free(docker);
    aw_creds_close(creds, NULL, NULL);
    aw_client_close(awc, NULL, NULL);
    aw_listener_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_resolver_free(resolver);
    ag_preflight_free(preflight);
    ag_store_close(store);
    al_close(al);
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "bench_engine: a handle was left open\n");
    es_free_secret_str(admin_secret);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_engine: could not remove %s\n", dir);
}

/* ---- figures ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* sorts v; nearest-rank percentile */
static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    return v[k > n ? n - 1 : k - 1];
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 30;
    if (n < 1 || n > SEQ_MAX)
        die("N must be 1..1000");
    signal(SIGPIPE, SIG_IGN);
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    es_log_init();
    es_log_set_level(getenv("ES_BENCH_DEBUG") ? ES_LOG_DEBUG : ES_LOG_NOTICE);
    const char *host = getenv("ES_BENCH_DOCKER_HOST");
    if (!host || !*host)
        host = "unix:///tmp/es-bench-docker/docker.sock";
    setup(host);
    printf("== issue 7: RunTask -> RUNNING, 1 container, %d SecureString secrets; docker %s\n",
           N_SECRETS, host);
    printf("   embedded SSM, KMS and STS on 127.0.0.1:%d (in-process listener, authorisation hook "
           "on, preflight on); the execution role assumed with the administrator's key, cached\n",
           aw_listener_port(srv));

    ag_taskdef *td = NULL;
    if (ag_store_taskdef_get(store, "bench", td_revision, &td) < 0)
        die("taskdef get");

    /* one warm-up of each (connections, API version, STS, page cache) */
    double *eng = es_calloc((size_t)n, sizeof *eng), *flr = es_calloc((size_t)n, sizeof *flr);
    floor_run *fr = es_calloc((size_t)n + 1, sizeof *fr);
    if (!eng || !flr || !fr)
        die("out of memory");
    size_t seq_failures = 0;
    for (int i = -1; i < n; i++) {
        for (int side = 0; side < 2; side++) {
            bool engine_turn = (side == 0) == ((i & 1) == 0);
            if (engine_turn) {
                size_t want = n_running + 1;
                size_t fails = n_failed;
                if (run_tasks(1, now_ns()) < 0)
                    die("RunTask");
                if (!wait_until_either(want, fails + 1, 60) || n_failed != fails) {
                    fprintf(stderr, "task did not reach RUNNING: %s\n", first_failure);
                    seq_failures++;
                    continue;
                }
                if (i >= 0)
                    eng[i] = (double)(tr[n_tr - 1].t_running - tr[n_tr - 1].t0) / 1e6;
            } else {
                floor_run *f = &fr[i + 1];
                es_buf body;
                char *name = NULL;
                if (floor_body(td, i + 1, &body, &name) < 0)
                    die("floor body");
                size_t want = floor_done + 1;
                f->t0 = now_ns();
                if (dk_container_create_json(docker, name, body.data, body.len, floor_created, f) <
                    0)
                    die("dk_container_create_json");
                es_buf_free_secret(&body);
                es_free(name);
                wait_until(&floor_done, want, 60);
                if (!f->done || f->err) {
                    fprintf(stderr, "floor launch failed: %s\n", f->message);
                    seq_failures++;
                    continue;
                }
                if (i >= 0)
                    flr[i] = (double)(f->t1 - f->t0) / 1e6;
            }
            idle_ms(20);
        }
    }
    ag_taskdef_free(td);
    double e_med = pct(eng, (size_t)n, 50), e_p99 = pct(eng, (size_t)n, 99);
    double f_med = pct(flr, (size_t)n, 50), f_p99 = pct(flr, (size_t)n, 99);
    printf("sequential, %d each, interleaved (+1 warm-up each not counted), %zu failures:\n", n,
           seq_failures);
    printf(
        "  engine RunTask -> RUNNING         median %8.2f ms  p99 %8.2f ms  min %7.2f  max %7.2f\n",
        e_med, e_p99, eng[0], eng[n - 1]);
    printf(
        "  floor  docker create + start     median %8.2f ms  p99 %8.2f ms  min %7.2f  max %7.2f\n",
        f_med, f_p99, flr[0], flr[n - 1]);
    printf("  ratio engine/floor: median %.3f, p99 %.3f (goal <= 1.10: %s)\n", e_med / f_med,
           e_p99 / f_p99, e_med / f_med <= 1.10 ? "met" : "MISSED");

    /* ---- 100 at once ---- */
    ag_resolver_stats rs0, rs1;
    aw_listener_stats ss0, ss1;
    aw_creds_stats cs0, cs1;
    dk_stats ds0, ds1;
    ag_preflight_stats ps0, ps1;
    ag_preflight_get_stats(preflight, &ps0);
    ag_resolver_get_stats(resolver, &rs0);
    aw_listener_get_stats(srv, &ss0);
    aw_creds_get_stats(creds, &cs0);
    dk_client_stats(docker, &ds0);
    size_t want = n_running + BURST, fails = n_failed;
    uint64_t t0 = now_ns();
    for (int k = 0; k < BURST_RUNS; k++)
        if (run_tasks(BURST_COUNT, t0) < 0)
            die("RunTask (burst)");
    uint64_t t_api = now_ns();
    bool all = wait_until_either(want, fails + BURST, 300) && n_running >= want;
    uint64_t t_all = now_ns();
    ag_preflight_get_stats(preflight, &ps1);
    ag_resolver_get_stats(resolver, &rs1);
    aw_listener_get_stats(srv, &ss1);
    aw_creds_get_stats(creds, &cs1);
    dk_client_stats(docker, &ds1);
    double bl[BURST];
    size_t nb = 0;
    for (size_t k = n_tr - BURST; k < n_tr; k++)
        if (tr[k].running)
            bl[nb++] = (double)(tr[k].t_running - tr[k].t0) / 1e6;
    printf("100 tasks at once (%d RunTask calls of count %d; the calls took %.2f ms):\n",
           BURST_RUNS, BURST_COUNT, (double)(t_api - t0) / 1e6);
    printf("  %zu RUNNING, %zu failed%s; all RUNNING after %.0f ms; per task median %.0f ms, p99 "
           "%.0f ms\n",
           nb, n_failed - fails, all ? "" : " (TIMED OUT)", (double)(t_all - t0) / 1e6,
           nb ? pct(bl, nb, 50) : 0.0, nb ? pct(bl, nb, 99) : 0.0);
    if (n_failed != fails)
        printf("  first failure: %s\n", first_failure);
    list_result lr;
    if (list("com.amazonaws.ecs.cluster=" CLUSTER, &lr) == 0) {
        printf(
            "  docker: %zu containers of this burst (%zu distinct task ARNs), %zu of the cluster's "
            "%zu running: %s\n",
            lr.in_burst, lr.distinct, lr.running, lr.n,
            lr.in_burst == BURST && lr.distinct == BURST ? "exactly 100, no duplicate"
                                                         : "NOT exactly 100 distinct");
        list_free(&lr);
    } else {
        printf("  docker: list failed\n");
    }
    printf(
        "  per task: SSM calls %.2f (names %.1f; minimum 1 call of %d names), Secrets Manager "
        "calls %.2f,\n             listener requests %.2f, STS AssumeRole %lu in all (cache hits "
        "%lu, coalesced %lu), Docker API requests %.2f\n",
        (double)(rs1.ssm_calls - rs0.ssm_calls) / BURST,
        (double)(rs1.ssm_names - rs0.ssm_names) / BURST, N_SECRETS,
        (double)(rs1.sm_calls - rs0.sm_calls) / BURST,
        (double)(ss1.requests - ss0.requests) / BURST, cs1.role_fetches - cs0.role_fetches,
        cs1.role_cache_hits - cs0.role_cache_hits, cs1.coalesced - cs0.coalesced,
        (double)(ds1.requests - ds0.requests) / BURST);
    printf("  preflight per task: runs %.2f, metadata lookups %.2f (listener requests beyond the "
           "SSM call), simulations %.2f\n",
           (double)(ps1.runs - ps0.runs) / BURST, (double)(ps1.lookups - ps0.lookups) / BURST,
           (double)(ps1.simulations - ps0.simulations) / BURST);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(
        "  peak RSS of this process (store + listener + client + engine + %zu tasks): %.1f MiB\n",
        n_tr, (double)ru.ru_maxrss / 1024.0);

    /* ---- the floor of 100 at once: the same creates and starts, no engine ---- */
    floor_run *fb = es_calloc(BURST, sizeof *fb);
    if (!fb || ag_store_taskdef_get(store, "bench", td_revision, &td) < 0)
        die("floor burst");
    size_t fwant = floor_done + BURST;
    uint64_t f0 = now_ns();
    for (int k = 0; k < BURST; k++) {
        es_buf body;
        char *name = NULL;
        if (floor_body(td, 1000 + k, &body, &name) < 0)
            die("floor body");
        fb[k].t0 = f0;
        if (dk_container_create_json(docker, name, body.data, body.len, floor_created, &fb[k]) < 0)
            die("dk_container_create_json");
        es_buf_free_secret(&body);
        es_free(name);
    }
    wait_until(&floor_done, fwant, 300);
    uint64_t f_all = now_ns();
    ag_taskdef_free(td);
    size_t fok = 0;
    for (int k = 0; k < BURST; k++)
        if (fb[k].done && !fb[k].err)
            bl[fok++] = (double)(fb[k].t1 - fb[k].t0) / 1e6;
    printf("  floor, 100 docker create + start at once: %zu started, all after %.0f ms; per "
           "container median %.0f ms, p99 %.0f ms\n",
           fok, (double)(f_all - f0) / 1e6, fok ? pct(bl, fok, 50) : 0.0,
           fok ? pct(bl, fok, 99) : 0.0);
    es_free(fb);
    aw_creds_stats cs_all;
    aw_creds_get_stats(creds, &cs_all);
    printf("  STS AssumeRole over the whole run: %lu (then cached: %lu hits)\n",
           cs_all.role_fetches, cs_all.role_cache_hits);

    /* ---- clean-up: the engine first (tasks keep running), then every container ---- */
    ag_engine_close(engine, NULL, NULL);
    engine = NULL;
    uv_run(&loop, UV_RUN_NOWAIT);
    size_t a = remove_all("com.amazonaws.ecs.cluster=" CLUSTER);
    size_t b = remove_all(FLOOR_LABEL);
    printf("clean-up: %zu engine and %zu floor containers force-removed\n", a, b);
    es_free(eng);
    es_free(flr);
    es_free(fr);
    teardown();
    return 0;
}
