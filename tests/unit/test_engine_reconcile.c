/* The engine's periodic reconcile (ECS_SECRETS_RECONCILE_INTERVAL) against a
 * fake dockerd on a unix socket in the same loop. The fake keeps a table of
 * containers, answers create/start/stop/remove/list from it, and holds the
 * events stream open without ever sending an event: what real dockerd does
 * to a subscriber whose events it dropped. It can also hold creates, starts
 * and lists unanswered, to order a list before a create's answer. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "agent/tasks/engine.h"
#include "agent/metrics.h"
#include "aws_fake.h" /* expect_no_leaks */
#include "common/http.h"
#include "common/log.h"

static uv_loop_t loop;
static uv_pipe_t server;
static char sock_path[108];
static char dir[64];
static aw_client *awc;
static aw_creds *creds;
static ag_resolver *resolver;
static ag_store *store;
static dk_client *docker;
static ag_engine *engine;
static ag_metrics *metrics;
static const uint8_t fp_key[32] = {5};

/* ---- the fake dockerd ---- */

typedef struct fconn {
    uv_pipe_t pipe;
    es_http_parser *p;
} fconn;

#define MAXC 64
static fconn *fconns[MAXC];

typedef struct fcontainer {
    char id[16];
    char state[16];  /* created, running, exited; "" when removed */
    char status[64]; /* "Exited (3) 1 second ago" */
    char arn[256];   /* its com.amazonaws.ecs.task-arn label, or "" */
} fcontainer;
static fcontainer table[8];
static int ncreated;
static int fail_stops, nstops; /* the next fail_stops stops answer 500 */
static char stop_log[128];     /* the stopped containers' ids, in order */

enum { HOLD_CREATE = 1, HOLD_START = 2, HOLD_LIST = 4 };
static unsigned hold;
typedef struct held {
    fconn *f;
    unsigned kind;
    char target[512];
} held;
static held holds[16];
static int nholds;
static int nlists, lists_outstanding, max_lists_outstanding, nevents_conns;

static void fc_closed(uv_handle_t *h)
{
    fconn *f = h->data;
    for (size_t i = 0; i < MAXC; i++)
        if (fconns[i] == f)
            fconns[i] = NULL;
    es_http_parser_free(f->p);
    free(f);
}

static void fc_close(fconn *f)
{
    if (!uv_is_closing((uv_handle_t *)&f->pipe))
        uv_close((uv_handle_t *)&f->pipe, fc_closed);
}

typedef struct wr {
    uv_write_t w;
    char *data;
} wr;

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    wr *x = (wr *)w;
    free(x->data);
    free(x);
}

static void send_buf(fconn *f, es_buf *b)
{
    wr *x = calloc(1, sizeof(*x));
    x->data = malloc(b->len);
    memcpy(x->data, b->data, b->len);
    uv_buf_t u = uv_buf_init(x->data, (unsigned)b->len);
    cr_assert_eq(uv_write(&x->w, (uv_stream_t *)&f->pipe, &u, 1, on_written), 0);
}

static fcontainer *lookup(const char *target)
{
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (table[i].state[0]) {
            char seg[32];
            snprintf(seg, sizeof seg, "/containers/%s", table[i].id);
            if (strstr(target, seg))
                return &table[i];
        }
    return NULL;
}

static void json_answer(fconn *f, int status, const char *body)
{
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_http_write_status_line(&b, status, NULL);
    es_http_write_body(&b, "application/json", body, strlen(body));
    send_buf(f, &b);
    es_buf_free(&b);
}

static void no_content(fconn *f)
{
    es_buf b;
    es_buf_init(&b, 1024);
    es_http_write_status_line(&b, 204, NULL);
    es_http_write_end_head(&b);
    send_buf(f, &b);
    es_buf_free(&b);
}

/* The list as the table stands, or the given snapshot. */
static void answer_list(fconn *f, const char *snapshot)
{
    lists_outstanding--;
    if (snapshot) {
        json_answer(f, 200, snapshot);
        return;
    }
    char body[4096] = "[";
    size_t n = 1;
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (table[i].state[0])
            n += (size_t)snprintf(body + n, sizeof body - n,
                                  "%s{\"Id\":\"%s\",\"State\":\"%s\",\"Status\":\"%s\","
                                  "\"Labels\":{\"" DK_TASK_ARN_LABEL "\":\"%s\"}}",
                                  n > 1 ? "," : "", table[i].id, table[i].state, table[i].status,
                                  table[i].arn);
    snprintf(body + n, sizeof body - n, "]");
    json_answer(f, 200, body);
}

static void answer(fconn *f, const char *method, const char *t, bool held_now)
{
    if (strcmp(t, "/_ping") == 0) {
        es_buf b;
        es_buf_init(&b, 1024);
        es_http_write_status_line(&b, 200, NULL);
        es_http_write_header(&b, "API-Version", "1.41");
        es_http_write_body(&b, "text/plain", "OK", 2);
        send_buf(f, &b);
        es_buf_free(&b);
    } else if (strstr(t, "/events?")) {
        /* headers, then silence: dockerd dropped every event for us */
        nevents_conns++;
        es_buf b;
        es_buf_init(&b, 1024);
        es_http_write_status_line(&b, 200, NULL);
        es_http_write_header(&b, "Transfer-Encoding", "chunked");
        es_http_write_end_head(&b);
        send_buf(f, &b);
        es_buf_free(&b);
    } else if (strstr(t, "/containers/json")) {
        if (!held_now) {
            nlists++;
            lists_outstanding++;
            if (lists_outstanding > max_lists_outstanding)
                max_lists_outstanding = lists_outstanding;
        }
        if (!held_now && (hold & HOLD_LIST))
            goto hold_it;
        answer_list(f, NULL);
    } else if (strstr(t, "/containers/create")) {
        if (!held_now && (hold & HOLD_CREATE))
            goto hold_it;
        fcontainer *c = &table[ncreated++];
        snprintf(c->id, sizeof c->id, "c%d", ncreated);
        snprintf(c->state, sizeof c->state, "created");
        snprintf(c->status, sizeof c->status, "Created");
        char body[128];
        snprintf(body, sizeof body, "{\"Id\":\"%s\",\"Warnings\":[]}", c->id);
        json_answer(f, 201, body);
    } else {
        fcontainer *c = lookup(t);
        if (!c) {
            json_answer(f, 404, "{\"message\":\"No such container\"}");
        } else if (strstr(t, "/start")) {
            if (!held_now && (hold & HOLD_START))
                goto hold_it;
            snprintf(c->state, sizeof c->state, "running");
            snprintf(c->status, sizeof c->status, "Up 1 second");
            no_content(f);
        } else if (strstr(t, "/stop")) {
            nstops++;
            size_t used = strlen(stop_log);
            snprintf(stop_log + used, sizeof stop_log - used, "%s;", c->id);
            if (fail_stops > 0) {
                fail_stops--;
                json_answer(f, 500,
                            "{\"message\":\"cannot stop container: "
                            "context deadline exceeded\"}");
                return;
            }
            if (strcmp(c->state, "running") == 0) {
                snprintf(c->state, sizeof c->state, "exited");
                snprintf(c->status, sizeof c->status, "Exited (137) 1 second ago");
            }
            no_content(f);
        } else if (strcmp(method, "DELETE") == 0) {
            c->state[0] = '\0';
            no_content(f);
        } else {
            json_answer(f, 500, "{\"message\":\"unscripted\"}");
        }
    }
    return;
hold_it:
    cr_assert_lt(nholds, 16);
    unsigned kind = strstr(t, "/json")     ? HOLD_LIST
                    : strstr(t, "/create") ? HOLD_CREATE
                                           : HOLD_START;
    holds[nholds].f = f;
    holds[nholds].kind = kind;
    snprintf(holds[nholds].target, sizeof holds[nholds].target, "%s", t);
    nholds++;
}

static int held_count(unsigned kind)
{
    int n = 0;
    for (int i = 0; i < nholds; i++)
        n += holds[i].kind == kind;
    return n;
}

/* Answers the held requests of one kind, in order; a list with snapshot
 * when given. */
static void release(unsigned kind, const char *snapshot)
{
    for (int i = 0; i < nholds;) {
        if (holds[i].kind != kind) {
            i++;
            continue;
        }
        held h = holds[i];
        memmove(&holds[i], &holds[i + 1], (size_t)(nholds - i - 1) * sizeof *holds);
        nholds--;
        if (kind == HOLD_LIST)
            answer_list(h.f, snapshot);
        else
            answer(h.f, "POST", h.target, true);
    }
}

static void fc_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(s);
    b->len = s;
}

static void fc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fconn *f = s->data;
    if (n < 0) {
        fc_close(f);
        free(buf->base);
        return;
    }
    size_t off = 0;
    for (;;) {
        size_t used = 0;
        int rc = es_http_parser_feed(f->p, buf->base + off, (size_t)n - off, &used);
        off += used;
        if (rc == ES_HTTP_HEADERS)
            continue;
        if (rc == ES_HTTP_DONE) {
            answer(f, es_http_parser_method(f->p), es_http_parser_target(f->p), false);
            es_http_parser_reset(f->p);
            continue;
        }
        cr_assert_geq(rc, 0, "fake dockerd: bad request: %s", es_http_strerror(rc));
        break;
    }
    free(buf->base);
}

static void on_conn(uv_stream_t *srv, int status)
{
    cr_assert_eq(status, 0);
    fconn *f = calloc(1, sizeof(*f));
    uv_pipe_init(&loop, &f->pipe, 0);
    f->pipe.data = f;
    cr_assert_eq(es_http_parser_create(ES_HTTP_REQUEST, NULL, &f->p), 0);
    cr_assert_eq(uv_accept(srv, (uv_stream_t *)&f->pipe), 0);
    uv_read_start((uv_stream_t *)&f->pipe, fc_alloc, fc_read);
    for (size_t i = 0; i < MAXC; i++)
        if (!fconns[i]) {
            fconns[i] = f;
            break;
        }
}

/* ---- the engine ---- */

static uint64_t sweep_ms; /* 0: the engine's default */

static void engine_up(uint64_t interval_ms)
{
    ag_engine_config ec = {.loop = &loop,
                           .store = store,
                           .docker = docker,
                           .resolver = resolver,
                           .metrics = metrics,
                           .region = "us-east-1",
                           .account = "123456789012",
                           .cluster = "rec",
                           .reconcile_interval_ms = interval_ms,
                           .sweep_interval_ms = sweep_ms};
    cr_assert_eq(ag_engine_create(&ec, &engine), 0);
    cr_assert_eq(ag_engine_start(engine), 0);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(uv_loop_init(&loop), 0);
    snprintf(dir, sizeof dir, "/tmp/es-reconcile-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(sock_path, sizeof sock_path, "%s/docker.sock", dir);
    uv_pipe_init(&loop, &server, 0);
    cr_assert_eq(uv_pipe_bind(&server, sock_path), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&server, 16, on_conn), 0);
    char err[256];
    cr_assert_eq(ag_store_open(dir, &store, err, sizeof err), 0, "%s", err);
    aw_client_config cc = {.region = "us-east-1", .max_attempts = 1};
    for (int i = 0; i < AW_SVC_COUNT; i++)
        cc.endpoint_override[i] = "http://127.0.0.1:1";
    cr_assert_eq(aw_client_create(&loop, &cc, &awc), 0);
    aw_creds_config pc = {.access_key_id = "AKIDTEST", .secret_access_key = "SECRET"};
    cr_assert_eq(aw_creds_create(awc, &pc, &creds), 0);
    ag_resolver_config rc = {.client = awc,
                             .creds = creds,
                             .region = "us-east-1",
                             .fp_key = fp_key,
                             .fp_key_len = sizeof fp_key};
    cr_assert_eq(ag_resolver_create(&rc, &resolver), 0);
    char host[160];
    snprintf(host, sizeof host, "unix://%s", sock_path);
    dk_options o = {.host = host};
    cr_assert_eq(dk_client_create(&loop, &o, &docker), 0);
    cr_assert_not_null(metrics = ag_metrics_create());
    memset(table, 0, sizeof table);
    ncreated = nholds = nlists = fail_stops = nstops = lists_outstanding = max_lists_outstanding =
        nevents_conns = 0;
    hold = 0;
    sweep_ms = 0;
    stop_log[0] = '\0';
}

static void teardown(void)
{
    ag_engine_close(engine, NULL, NULL);
    engine = NULL;
    dk_client_free(docker);
    aw_creds_close(creds, NULL, NULL);
    aw_client_close(awc, NULL, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_close((uv_handle_t *)&server, NULL);
    for (size_t i = 0; i < MAXC; i++)
        if (fconns[i])
            fc_close(fconns[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    ag_resolver_free(resolver);
    ag_store_close(store);
    ag_metrics_free(metrics);
    cr_expect_eq(uv_loop_close(&loop), 0, "a handle was left open");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
    expect_no_leaks();
}

TestSuite(reconcile, .init = setup, .fini = teardown, .timeout = 30);

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until pred() holds or ms pass; pred's answer. */
static bool run_until(bool (*pred)(void *), void *arg, unsigned ms)
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    uint64_t end = uv_now(&loop) + ms;
    bool ok = false;
    while (!(ok = pred(arg)) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

typedef struct want {
    const char *arn;
    ag_task_status status;
} want;

static bool has_status(void *arg)
{
    want *w = arg;
    ag_task *t = ag_engine_find_task(engine, w->arn);
    return t && t->last_status == w->status;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static double metric(const char *name, const char *k, const char *v)
{
    const char *l[] = {k, v, NULL};
    ag_series *s = ag_metrics_series(metrics, AG_METRIC_COUNTER, name, "x", k ? l : NULL, NULL, 0);
    cr_assert_not_null(s);
    return ag_series_value(s);
}

static double periodic_runs(void)
{
    return metric("ecs_agent_docker_reconciles_total", "trigger", "periodic");
}

static double all_runs(void)
{
    return periodic_runs() + metric("ecs_agent_docker_reconciles_total", "trigger", "connect") +
           metric("ecs_agent_docker_reconciles_total", "trigger", "reconnect");
}

static bool runs_after(void *arg)
{
    return all_runs() > *(double *)arg;
}

#define TD                                                                                         \
    "{\"family\":\"rec\",\"networkMode\":\"none\",\"containerDefinitions\":["                      \
    "{\"name\":\"app\",\"image\":\"local/busybox:latest\",\"command\":[\"sleep\",\"300\"]}]}"

static void run(char *arn, size_t n)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(TD, strlen(TD), &ctx, &td, &e), 0, "%s", e.message);
    cr_assert_eq(ag_store_taskdef_register(store, td, 1700000000), 0);
    ag_run_request req = {.td = td, .count = 1, .started_by = "test"};
    ag_task *tasks[1];
    cr_assert_eq(ag_engine_run_task(engine, &req, tasks), 0);
    snprintf(arn, n, "%s", tasks[0]->arn);
}

Test(reconcile, an_exit_without_an_event_is_found_by_the_periodic_list)
{
    engine_up(100);
    char arn[256];
    run(arn, sizeof arn);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000), "the task did not reach RUNNING");
    cr_assert_str_eq(table[0].state, "running");

    /* the container exits; dockerd drops the die event */
    snprintf(table[0].state, sizeof table[0].state, "exited");
    snprintf(table[0].status, sizeof table[0].status, "Exited (3) 1 second ago");
    w.status = AG_TASK_STOPPED;
    cr_assert(run_until(has_status, &w, 5000), "the periodic reconcile did not notice the exit");
    ag_task *t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_ESSENTIAL_CONTAINER_EXITED);
    cr_assert_str_eq(t->containers[0].last_status, "STOPPED");
    cr_assert(t->containers[0].has_exit_code);
    cr_assert_eq(t->containers[0].exit_code, 3);
    cr_assert_eq(nevents_conns, 1, "the events stream stayed up, silent");
    cr_assert_geq(periodic_runs(), 1);
    cr_assert_eq(metric("ecs_agent_docker_reconcile_found_total", "found", "exited"), 1);
    cr_assert_eq(metric("ecs_agent_docker_reconcile_found_total", "found", "vanished"), 0);
}

Test(reconcile, a_container_gone_without_an_event_stops_its_task)
{
    engine_up(100);
    char arn[256];
    run(arn, sizeof arn);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000));
    table[0].state[0] = '\0'; /* docker rm -f, events dropped */
    w.status = AG_TASK_STOPPED;
    cr_assert(run_until(has_status, &w, 5000));
    ag_task *t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_ESSENTIAL_CONTAINER_EXITED);
    cr_assert_str_eq(t->containers[0].reason, "the container vanished without a Docker event");
    cr_assert_eq(metric("ecs_agent_docker_reconcile_found_total", "found", "vanished"), 1);
}

Test(reconcile, off_means_no_periodic_list)
{
    engine_up(0);
    char arn[256];
    run(arn, sizeof arn);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000));
    snprintf(table[0].state, sizeof table[0].state, "exited");
    run_until(never, NULL, 400);
    cr_assert_eq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_RUNNING);
    cr_assert_eq(nlists, 1, "only the list of the first connect");
    cr_assert_eq(periodic_runs(), 0);
    /* turned on while running (SIGHUP) */
    ag_engine_set_reconcile_interval(engine, 50);
    w.status = AG_TASK_STOPPED;
    cr_assert(run_until(has_status, &w, 5000));
}

static bool create_and_list_held(void *arg)
{
    (void)arg;
    return held_count(HOLD_CREATE) == 1 && held_count(HOLD_LIST) == 1;
}

static bool skipped_some(void *arg)
{
    (void)arg;
    return metric("ecs_agent_docker_reconcile_skipped_total", NULL, NULL) >= 2;
}

static bool start_held(void *arg)
{
    (void)arg;
    return held_count(HOLD_START) == 1;
}

Test(reconcile, a_launch_in_flight_is_left_alone_by_a_list_older_than_its_create)
{
    engine_up(50);
    hold = HOLD_CREATE | HOLD_START | HOLD_LIST;
    char arn[256];
    run(arn, sizeof arn);
    /* a list asked for before the create's answer, still unanswered */
    cr_assert(run_until(create_and_list_held, NULL, 5000));
    release(HOLD_CREATE, NULL);
    cr_assert(run_until(start_held, NULL, 5000));
    ag_task *t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->last_status, AG_TASK_PENDING);
    cr_assert_str_eq(t->containers[0].docker_id, "c1");

    /* ticks while that list is out are skipped, never overlapped */
    cr_assert(run_until(skipped_some, NULL, 5000));
    cr_assert_eq(max_lists_outstanding, 1);

    /* the list, taken before the create, does not have c1 */
    double before = all_runs();
    release(HOLD_LIST, "[]");
    cr_assert(run_until(runs_after, &before, 5000));
    t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->last_status, AG_TASK_PENDING, "a stale list stopped a launch in flight: %s",
                 t->stopped_reason ? t->stopped_reason : "");
    cr_assert_str_eq(t->containers[0].last_status, "PENDING");
    cr_assert_eq(metric("ecs_agent_docker_reconcile_found_total", "found", "vanished"), 0);

    /* the launch finishes; later lists see c1 running */
    hold = 0;
    release(HOLD_START, NULL);
    release(HOLD_LIST, NULL);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000));
    before = all_runs() + 2;
    cr_assert(run_until(runs_after, &before, 5000));
    cr_assert_eq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_RUNNING);
    cr_assert_eq(max_lists_outstanding, 1);
}

static int newest_other(void *arg, ag_task *t)
{
    ag_task **out = arg;
    if (t->last_status != AG_TASK_STOPPED && ag_engine_task_external(t))
        *out = t;
    return *out != NULL;
}

/* The running Docker-socket task, if any. */
static void running_external(ag_task **out)
{
    *out = NULL;
    ag_engine_foreach_task(engine, newest_other, out);
}

/* A container created through the agent's Docker socket (agent/intake/):
 * its task waits PENDING for a container carrying its ARN, which a list
 * finds when the create event was missed; it follows that container and
 * never stops or removes it. */
Test(reconcile, a_docker_socket_task_follows_its_container_found_by_label)
{
    engine_up(50);
    const char *json = "{\"family\":\"" AG_ENGINE_DOCKER_FAMILY "\",\"containerDefinitions\":["
                       "{\"name\":\"container\",\"image\":\"docker\"}]}";
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &td, &e), 0, "%s", e.message);
    cr_assert_eq(ag_store_taskdef_register(store, td, 1700000000), 0);
    ag_adopt_request rq = {.td = td,
                           .image = "local/busybox:latest",
                           .started_by = "docker:1000",
                           .group = "compose:shop"};
    ag_task *t = NULL;
    cr_assert_eq(ag_engine_adopt(engine, &rq, &t), 0);
    char arn[256];
    snprintf(arn, sizeof arn, "%s", t->arn);
    cr_assert(ag_engine_task_external(t));
    cr_assert_eq(t->last_status, AG_TASK_PENDING);
    cr_assert_str_eq(t->started_by, "docker:1000");
    cr_assert_str_eq(t->group, "compose:shop");
    cr_assert_str_eq(t->launch_type, "EC2");
    cr_assert_str_eq(t->containers[0].image, "local/busybox:latest");
    cr_assert_null(t->containers[0].docker_id);
    /* lists without it leave it waiting */
    double before = all_runs() + 2;
    cr_assert(run_until(runs_after, &before, 5000));
    cr_assert_eq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_PENDING);
    cr_assert_eq(ncreated, 0, "the engine launched a Docker-socket task");

    /* Docker's client created and started it; the events were dropped */
    fcontainer *c = &table[ncreated++];
    snprintf(c->id, sizeof c->id, "ext1");
    snprintf(c->state, sizeof c->state, "running");
    snprintf(c->status, sizeof c->status, "Up 1 second");
    snprintf(c->arn, sizeof c->arn, "%s", arn);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000), "the list did not bind the container");
    cr_assert_str_eq(ag_engine_find_task(engine, arn)->containers[0].docker_id, "ext1");

    /* it exits: STOPPED; the container stays (its owner's to remove) */
    snprintf(c->state, sizeof c->state, "exited");
    snprintf(c->status, sizeof c->status, "Exited (0) 1 second ago");
    w.status = AG_TASK_STOPPED;
    cr_assert(run_until(has_status, &w, 5000));
    t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_ESSENTIAL_CONTAINER_EXITED);
    cr_assert_eq(t->containers[0].exit_code, 0);
    run_until(never, NULL, 300);
    cr_assert_str_eq(c->state, "exited", "the engine removed a Docker-socket container");

    /* started again (docker start, restart; its start event dropped): a new
     * task with the values its create got, the old one stays STOPPED */
    snprintf(c->state, sizeof c->state, "running");
    ag_task *again = NULL;
    for (int k = 0; k < 200 && !again; k++) {
        run_until(never, NULL, 20);
        running_external(&again);
    }
    cr_assert_not_null(again, "the container started again has no task");
    cr_assert_str_neq(again->arn, arn);
    cr_assert_str_eq(again->started_by, "docker:1000");
    cr_assert_str_eq(again->group, "compose:shop");
    cr_assert_str_eq(again->containers[0].docker_id, "ext1");
    want w2 = {again->arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w2, 5000));
    cr_assert_eq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_STOPPED);

    /* a restarted engine reads it back as the socket's */
    ag_engine_close(engine, NULL, NULL);
    run_until(never, NULL, 100);
    engine_up(0);
    t = ag_engine_find_task(engine, arn);
    cr_assert_not_null(t);
    cr_assert(ag_engine_task_external(t));
    cr_assert_eq(t->last_status, AG_TASK_STOPPED);
}

/* A stop Docker does not carry out (a 500, a timeout: dockerd wedged) leaves
 * the container possibly running: the task stays DEACTIVATING and the stop
 * is tried again at the sweep, as the ECS agent does, instead of reporting
 * STOPPED over a live container. */
Test(reconcile, a_failed_stop_is_tried_again_and_the_task_waits)
{
    sweep_ms = 150;
    engine_up(0);
    char arn[256];
    run(arn, sizeof arn);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000));
    fail_stops = 2;
    ag_task *t = NULL;
    cr_assert_eq(ag_engine_stop_task(engine, arn, AG_STOP_USER_INITIATED, "test", &t), 0);
    /* two refusals, a sweep apart each: DEACTIVATING all along */
    for (int k = 0; k < 20 && nstops < 2; k++) {
        run_until(never, NULL, 20);
        cr_assert_neq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_STOPPED,
                      "STOPPED while Docker had not stopped the container");
    }
    cr_assert_eq(nstops, 2, "the failed stop was not tried again");
    cr_assert_str_eq(table[0].state, "running");
    cr_assert_eq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_DEACTIVATING);
    /* the third stop is carried out */
    w.status = AG_TASK_STOPPED;
    cr_assert(run_until(has_status, &w, 5000));
    cr_assert_eq(nstops, 3);
    cr_assert_str_eq(table[0].state, "exited");
    t = ag_engine_find_task(engine, arn);
    cr_assert_str_eq(t->containers[0].last_status, "STOPPED");
    cr_assert_eq(t->stop_code, AG_STOP_USER_INITIATED);
}

/* A container found running after its task STOPPED (dockerd came back with
 * it, or never carried out a stop) is stopped again by the next list. */
Test(reconcile, a_container_that_outlived_its_task_is_stopped_again)
{
    engine_up(100);
    char arn[256];
    run(arn, sizeof arn);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000));
    /* it exits, unheard: the periodic list stops the task */
    snprintf(table[0].state, sizeof table[0].state, "exited");
    snprintf(table[0].status, sizeof table[0].status, "Exited (3) 1 second ago");
    w.status = AG_TASK_STOPPED;
    cr_assert(run_until(has_status, &w, 5000));
    int before = nstops;
    /* and is running again */
    snprintf(table[0].state, sizeof table[0].state, "running");
    snprintf(table[0].status, sizeof table[0].status, "Up 1 second");
    for (int k = 0; k < 100 && strcmp(table[0].state, "running") == 0; k++)
        run_until(never, NULL, 20);
    cr_assert_str_eq(table[0].state, "exited", "the leftover container was not stopped");
    cr_assert_eq(nstops, before + 1);
    cr_assert_eq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_STOPPED);
}

/* ---- dependsOn: the launch waits for a dependency's condition ---- */

static void run_td(const char *json, char *arn, size_t n)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &td, &e), 0, "%s", e.message);
    cr_assert_eq(ag_store_taskdef_register(store, td, 1700000000), 0);
    ag_run_request req = {.td = td, .count = 1, .started_by = "test"};
    ag_task *tasks[1];
    cr_assert_eq(ag_engine_run_task(engine, &req, tasks), 0);
    snprintf(arn, n, "%s", tasks[0]->arn);
}

/* init (non-essential) first, app after it: SUCCESS */
#define TD_INIT                                                                                    \
    "{\"family\":\"dep\",\"networkMode\":\"none\",\"containerDefinitions\":["                      \
    "{\"name\":\"app\",\"image\":\"local/busybox:latest\",\"dependsOn\":[{\"containerName\":"      \
    "\"init\",\"condition\":\"SUCCESS\"}]},"                                                       \
    "{\"name\":\"init\",\"image\":\"local/busybox:latest\",\"essential\":false}]}"

static bool started(void *arg)
{
    return strcmp(table[*(int *)arg].state, "running") == 0;
}

/* the task's containers are created in definition order: table[0] is app,
 * table[1] init; only init is started until it exits */
static void init_exits(const char *status, char *arn, size_t n)
{
    engine_up(50);
    run_td(TD_INIT, arn, n);
    int init = 1, app = 0;
    cr_assert(run_until(started, &init, 5000), "init was not started");
    run_until(never, NULL, 300);
    cr_assert_str_eq(table[app].state, "created", "app must wait for init");
    cr_assert_eq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_PENDING);
    /* init exits; the events are dropped: the periodic list finds it */
    snprintf(table[init].state, sizeof table[init].state, "exited");
    snprintf(table[init].status, sizeof table[init].status, "%s", status);
}

Test(reconcile, a_success_dependency_lets_the_app_start_after_it_exits_0)
{
    char arn[256];
    init_exits("Exited (0) 1 second ago", arn, sizeof arn);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000), "the app did not start after init exited 0");
    cr_assert_str_eq(table[0].state, "running");
    ag_task *t = ag_engine_find_task(engine, arn);
    cr_assert(t->containers[1].has_exit_code && t->containers[1].exit_code == 0);
}

Test(reconcile, a_success_dependency_that_exits_3_fails_the_task)
{
    char arn[256];
    init_exits("Exited (3) 1 second ago", arn, sizeof arn);
    want w = {arn, AG_TASK_STOPPED};
    cr_assert(run_until(has_status, &w, 5000), "the task did not stop");
    ag_task *t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_TASK_FAILED_TO_START);
    cr_assert_str_eq(t->stopped_reason,
                     "CannotStartContainerError: app: its dependency was not resolved: init "
                     "exited with code 3 (condition SUCCESS)");
    cr_assert_neq(strcmp(table[0].state, "running"), 0, "app was never started");
}

/* HEALTHY: no health_status event comes (the fake's stream is silent), so
 * the wait ends at the dependency's startTimeout, found by the sweep */
Test(reconcile, a_healthy_dependency_that_never_passes_times_out)
{
    sweep_ms = 100;
    engine_up(0);
    char arn[256];
    run_td("{\"family\":\"dep\",\"networkMode\":\"none\",\"containerDefinitions\":["
           "{\"name\":\"app\",\"image\":\"local/busybox:latest\",\"dependsOn\":[{\"containerName\":"
           "\"db\",\"condition\":\"HEALTHY\"}]},"
           "{\"name\":\"db\",\"image\":\"local/busybox:latest\",\"startTimeout\":2,\"healthCheck\":"
           "{\"command\":[\"CMD-SHELL\",\"false\"]}}]}",
           arn, sizeof arn);
    int db = 1;
    cr_assert(run_until(started, &db, 5000), "db was not started");
    run_until(never, NULL, 1000);
    cr_assert_eq(ag_engine_find_task(engine, arn)->last_status, AG_TASK_PENDING, "still waiting");
    want w = {arn, AG_TASK_STOPPED};
    cr_assert(run_until(has_status, &w, 5000), "the startTimeout did not end the wait");
    ag_task *t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->stop_code, AG_STOP_TASK_FAILED_TO_START);
    cr_assert_str_eq(t->stopped_reason,
                     "CannotStartContainerError: app: its dependency was not resolved: db did "
                     "not reach HEALTHY within its startTimeout (2 s)");
}

/* the health_status event dropped: a list's "(healthy)" serves, and the
 * app waiting on db's HEALTHY starts */
Test(reconcile, a_healthy_dependency_found_healthy_by_a_list_lets_the_app_start)
{
    engine_up(50);
    char arn[256];
    run_td("{\"family\":\"dep\",\"networkMode\":\"none\",\"containerDefinitions\":["
           "{\"name\":\"app\",\"image\":\"local/busybox:latest\",\"dependsOn\":[{\"containerName\":"
           "\"db\",\"condition\":\"HEALTHY\"}]},"
           "{\"name\":\"db\",\"image\":\"local/busybox:latest\",\"healthCheck\":"
           "{\"command\":[\"CMD-SHELL\",\"true\"]}}]}",
           arn, sizeof arn);
    int db = 1;
    cr_assert(run_until(started, &db, 5000), "db was not started");
    snprintf(table[1].status, sizeof table[1].status, "Up 2 seconds (health: starting)");
    run_until(never, NULL, 300);
    ag_task *t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->last_status, AG_TASK_PENDING, "app waits while db has no verdict");
    cr_assert_eq(t->containers[1].health, AG_HEALTH_UNKNOWN);
    snprintf(table[1].status, sizeof table[1].status, "Up 6 seconds (healthy)");
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000), "the app did not start once db was healthy");
    t = ag_engine_find_task(engine, arn);
    cr_assert_eq(t->containers[1].health, AG_HEALTH_HEALTHY);
    cr_assert_eq(ag_task_health(t), AG_HEALTH_HEALTHY);
    cr_assert_str_eq(table[0].state, "running");
}

/* A service's task whose essential container turns UNHEALTHY is stopped for
 * its service to replace, as ECS's scheduler does; a standalone task goes
 * on, and an image's own health (no healthCheck in the definition) is not
 * reported, as ECS's agent does. */
#define TD_HC(name, check)                                                                         \
    "{\"family\":\"" name "\",\"networkMode\":\"none\",\"containerDefinitions\":["                 \
    "{\"name\":\"app\",\"image\":\"local/busybox:latest\"" check "}]}"

static void run_group(const char *json, const char *group, char *arn, size_t n)
{
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(json, strlen(json), &ctx, &td, &e), 0, "%s", e.message);
    cr_assert_eq(ag_store_taskdef_register(store, td, 1700000000), 0);
    ag_run_request req = {.td = td, .count = 1, .started_by = "test", .group = group};
    ag_task *tasks[1];
    cr_assert_eq(ag_engine_run_task(engine, &req, tasks), 0);
    snprintf(arn, n, "%s", tasks[0]->arn);
}

static bool unhealthy(void *arg)
{
    ag_task *t = ag_engine_find_task(engine, arg);
    return t && ag_task_health(t) == AG_HEALTH_UNHEALTHY;
}

Test(reconcile, an_unhealthy_service_task_is_stopped_a_standalone_one_goes_on)
{
    engine_up(50);
    const char *hc = ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"false\"]}";
    char svc[256], solo[256], image[256];
    char json[512];
    snprintf(json, sizeof json, TD_HC("svc", "%s"), hc);
    run_group(json, "service:web", svc, sizeof svc);
    want w = {svc, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000));
    snprintf(json, sizeof json, TD_HC("solo", "%s"), hc);
    run_group(json, NULL, solo, sizeof solo);
    w.arn = solo;
    cr_assert(run_until(has_status, &w, 5000));
    run_group(TD_HC("image", ""), NULL, image, sizeof image);
    w.arn = image;
    cr_assert(run_until(has_status, &w, 5000));
    for (int i = 0; i < 3; i++)
        snprintf(table[i].status, sizeof table[i].status, "Up 9 seconds (unhealthy)");
    w = (want){svc, AG_TASK_STOPPED};
    cr_assert(run_until(has_status, &w, 5000), "the service's unhealthy task was not stopped");
    ag_task *t = ag_engine_find_task(engine, svc);
    cr_assert_eq(t->stop_code, AG_STOP_SERVICE_SCHEDULER_INITIATED);
    cr_assert_str_eq(t->stopped_reason, "Task failed container health checks");
    cr_assert(run_until(unhealthy, solo, 5000));
    run_until(never, NULL, 300);
    cr_assert_eq(ag_engine_find_task(engine, solo)->last_status, AG_TASK_RUNNING);
    t = ag_engine_find_task(engine, image);
    cr_assert_eq(t->last_status, AG_TASK_RUNNING);
    cr_assert_eq(t->containers[0].health, AG_HEALTH_UNKNOWN, "the image's own health check");
}

/* ECS stops in the reverse of dependsOn: web (depends on app) first, then
 * app (depends on db), then db */
Test(reconcile, containers_stop_in_the_reverse_of_depends_on)
{
    engine_up(0);
    char arn[256];
    run_td("{\"family\":\"dep\",\"networkMode\":\"none\",\"containerDefinitions\":["
           "{\"name\":\"db\",\"image\":\"local/busybox:latest\"},"
           "{\"name\":\"web\",\"image\":\"local/busybox:latest\",\"dependsOn\":[{"
           "\"containerName\":\"app\",\"condition\":\"START\"}]},"
           "{\"name\":\"app\",\"image\":\"local/busybox:latest\",\"dependsOn\":[{"
           "\"containerName\":\"db\",\"condition\":\"START\"}]}]}",
           arn, sizeof arn);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000));
    ag_task *t = NULL;
    cr_assert_eq(ag_engine_stop_task(engine, arn, AG_STOP_USER_INITIATED, "test", &t), 0);
    w.status = AG_TASK_STOPPED;
    cr_assert(run_until(has_status, &w, 5000));
    /* created in definition order: c1 db, c2 web, c3 app */
    cr_assert_str_eq(stop_log, "c2;c3;c1;");
}

/* ---- the store written behind (issue 22) ---- */

static char persist_log[4096];

static void persist_sink(es_log_level l, const char *line, void *arg)
{
    (void)l;
    (void)arg;
    size_t used = strlen(persist_log);
    if (strstr(line, "persist") && used + strlen(line) + 2 < sizeof persist_log)
        snprintf(persist_log + used, sizeof persist_log - used, "%s\n", line);
}

typedef struct stored_want {
    const char *arn;
    ag_task_status status;
} stored_want;

static bool stored_status(void *arg)
{
    stored_want *w = arg;
    ag_task *t = NULL;
    if (ag_store_task_get(store, w->arn, &t) < 0)
        return false;
    bool ok = t->last_status == w->status;
    ag_task_free(t);
    return ok;
}

static bool log_has_again(void *arg)
{
    (void)arg;
    return strstr(persist_log, "persisted again") != NULL;
}

/* The launch's status rows are committed without the loop waiting for the
 * disk and the log synced on the thread pool: the store has each status
 * once the loop has run. A sync that cannot be done (the log's file gone
 * from the directory, so the descriptor cannot be opened) marks the rows
 * not persisted, with the reason, and they are written again durably. */
Test(reconcile, rows_written_behind_are_synced_and_a_failed_sync_writes_them_again)
{
    persist_log[0] = '\0';
    es_log_set_sink(persist_sink, NULL);
    sweep_ms = 50; /* the sweep writes again what the store did not take */
    engine_up(0);
    char arn[256];
    run(arn, sizeof arn);
    /* RunTask's row is durable (it made the log); the next ones go behind */
    char wal[128];
    snprintf(wal, sizeof wal, "%s/agent.db-wal", dir);
    cr_assert_eq(access(wal, F_OK), 0, "the write-ahead log after RunTask's row");
    cr_assert_eq(unlink(wal), 0);
    want w = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(has_status, &w, 5000));
    stored_want sw = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(stored_status, &sw, 5000), "RUNNING is not in the store");
    cr_assert(run_until(log_has_again, NULL, 5000), "log: %s", persist_log);
    cr_assert(strstr(persist_log, "cannot persist: fdatasync of the store's log: no such file"),
              "log: %s", persist_log);
    es_log_set_sink(NULL, NULL);
}

/* With the log there, nothing is reported and the rows follow the task. */
Test(reconcile, rows_written_behind_follow_the_task)
{
    persist_log[0] = '\0';
    es_log_set_sink(persist_sink, NULL);
    engine_up(0);
    char arn[256];
    run(arn, sizeof arn);
    stored_want sw = {arn, AG_TASK_RUNNING};
    cr_assert(run_until(stored_status, &sw, 5000), "RUNNING is not in the store");
    ag_task *t = NULL;
    cr_assert_eq(ag_engine_stop_task(engine, arn, AG_STOP_USER_INITIATED, "test", &t), 0);
    sw.status = AG_TASK_STOPPED;
    cr_assert(run_until(stored_status, &sw, 5000), "STOPPED is not in the store");
    cr_assert_eq(persist_log[0], '\0', "log: %s", persist_log);
    es_log_set_sink(NULL, NULL);
}
