/* The Docker client against a real dockerd.
 *
 * Needs ES_TEST_DOCKER_HOST (unix:///path) and, for the restart test,
 * ES_TEST_DOCKERD_CTL (a command taking `stop` or `start`); the image
 * local/busybox:latest must exist. Each test FAILS when they are missing. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "docker/docker.h"

#define IMAGE "local/busybox:latest"
#define ARN_PREFIX "arn:aws:ecs:us-east-1:123456789012:task/it/"

static uv_loop_t loop;
static struct dk_events *cur_ev; /* freed by teardown when a test failed early */
static dk_client *cur_bad;
static uv_timer_t ticker;
static dk_client *cli;
static char name_buf[8][64];

static const char *host(void)
{
    const char *h = getenv("ES_TEST_DOCKER_HOST");
    cr_assert(h && *h, "ES_TEST_DOCKER_HOST is not set: these tests need a real dockerd "
                       "(run them through ctest, whose `dockerd` fixture starts one, or set "
                       "ES_TEST_DOCKER_HOST=unix:///path/docker.sock)");
    return h;
}

static void tick(uv_timer_t *t)
{
    (void)t;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a peer gone mid-write is an error */
    cr_assert_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &ticker);
    uv_timer_start(&ticker, tick, 20, 20);
    dk_options o = {.host = host(), .timeout_ms = 20000};
    cr_assert_eq(dk_client_create(&loop, &o, &cli), 0);
}

static void teardown(void)
{
    dk_events_free(cur_ev);
    cur_ev = NULL;
    dk_client_free(cur_bad);
    cur_bad = NULL;
    dk_client_free(cli);
    cli = NULL;
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
}

/* Runs the loop until *flag or the time is up. */
static void wait_for(const bool *flag, uint64_t ms, const char *what)
{
    uint64_t end = uv_now(&loop) + ms;
    while (!*flag && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert(*flag, "timed out waiting for %s", what);
}

static const char *uniq(int i, const char *what)
{
    snprintf(name_buf[i], sizeof(name_buf[i]), "es-it-%s-%d", what, (int)getpid());
    return name_buf[i];
}

/* ---- small synchronous wrappers ---- */

typedef struct waiter {
    bool done;
    int err, status;
    char msg[512];
    char id[128];
    /* inspect */
    char state[32];
    bool running;
    int exit_code;
    char env[1024];
    char log_driver[32];
    char log_opts[1024];
    char labels[1024];
    char network[32];
    /* list */
    size_t n;
    char list_state[32];
} waiter;

static void note(waiter *w, const dk_result *r)
{
    w->done = true;
    w->err = r->err;
    w->status = r->status;
    snprintf(w->msg, sizeof(w->msg), "%s", r->message ? r->message : "");
}

static void done_cb(void *ud, const dk_result *r)
{
    note(ud, r);
}

static void create_cb(void *ud, const dk_result *r, const char *id)
{
    waiter *w = ud;
    note(w, r);
    if (id)
        snprintf(w->id, sizeof(w->id), "%s", id);
}

static void inspect_cb(void *ud, const dk_result *r, const dk_container_info *info)
{
    waiter *w = ud;
    note(w, r);
    if (!info)
        return;
    snprintf(w->id, sizeof(w->id), "%s", info->id);
    snprintf(w->state, sizeof(w->state), "%s", info->status ? info->status : "");
    w->running = info->running;
    w->exit_code = info->exit_code;
    for (size_t i = 0; i < info->nenv; i++) {
        strncat(w->env, info->env[i], sizeof(w->env) - strlen(w->env) - 2);
        strncat(w->env, ";", sizeof(w->env) - strlen(w->env) - 1);
    }
    snprintf(w->log_driver, sizeof(w->log_driver), "%s", info->log_driver ? info->log_driver : "");
    for (size_t i = 0; i < info->nlog_opts; i++) {
        char kv[256];
        snprintf(kv, sizeof(kv), "%s=%s;", info->log_opts[i].key, info->log_opts[i].value);
        strncat(w->log_opts, kv, sizeof(w->log_opts) - strlen(w->log_opts) - 1);
    }
    for (size_t i = 0; i < info->nlabels; i++) {
        char kv[512];
        snprintf(kv, sizeof(kv), "%s=%s;", info->labels[i].key, info->labels[i].value);
        strncat(w->labels, kv, sizeof(w->labels) - strlen(w->labels) - 1);
    }
    snprintf(w->network, sizeof(w->network), "%s", info->network_mode ? info->network_mode : "");
}

static const char *list_want;

static void list_cb(void *ud, const dk_result *r, const dk_container_summary *it, size_t n)
{
    waiter *w = ud;
    note(w, r);
    w->n = n;
    for (size_t i = 0; i < n; i++)
        if (list_want && it[i].id && strcmp(it[i].id, list_want) == 0)
            snprintf(w->list_state, sizeof(w->list_state), "%s", it[i].state ? it[i].state : "");
}

static void image_cb(void *ud, const dk_result *r, const dk_image_info *info)
{
    waiter *w = ud;
    note(w, r);
    if (info)
        snprintf(w->id, sizeof(w->id), "%s", info->id);
}

static waiter do_create(const char *name, const char *const *cmd, size_t ncmd, const char *arn,
                        bool splunk)
{
    static waiter w;
    memset(&w, 0, sizeof(w));
    dk_kv env[] = {{"SECRET_ONE", "s3cr3t-value-1"}, {"PLAIN", "hello world"}};
    dk_kv labels[] = {{"com.amazonaws.ecs.task-arn", arn}, {"es.test", "yes"}};
    dk_kv splunk_opts[] = {{"splunk-url", "https://127.0.0.1:8088"},
                           {"splunk-token", "00000000-tok-en00"},
                           {"splunk-verify-connection", "false"}};
    dk_create_spec s = {
        .name = name,
        .image = IMAGE,
        .cmd = cmd,
        .ncmd = ncmd,
        .env = env,
        .nenv = 2,
        .labels = labels,
        .nlabels = arn ? 2 : 0,
        .log_driver = splunk ? "splunk" : "json-file",
        .log_opts = splunk ? splunk_opts : NULL,
        .nlog_opts = splunk ? 3 : 0,
        .network_mode = "none",
    };
    cr_assert_eq(dk_container_create(cli, &s, create_cb, &w), 0);
    wait_for(&w.done, 30000, "create");
    return w;
}

static waiter do_simple(int which, const char *id)
{
    static waiter w;
    memset(&w, 0, sizeof(w));
    int e = 0;
    switch (which) {
    case 0:
        e = dk_container_start(cli, id, done_cb, &w);
        break;
    case 1:
        e = dk_container_stop(cli, id, 1, done_cb, &w);
        break;
    case 2:
        e = dk_container_remove(cli, id, true, done_cb, &w);
        break;
    case 3:
        e = dk_container_kill(cli, id, NULL, done_cb, &w);
        break;
    }
    cr_assert_eq(e, 0);
    wait_for(&w.done, 40000, "container operation");
    return w;
}

static waiter do_inspect(const char *id)
{
    static waiter w;
    memset(&w, 0, sizeof(w));
    cr_assert_eq(dk_container_inspect(cli, id, inspect_cb, &w), 0);
    wait_for(&w.done, 20000, "inspect");
    return w;
}

static waiter do_list(const char *filter, const char *want)
{
    static waiter w;
    memset(&w, 0, sizeof(w));
    list_want = want;
    const char *f[] = {filter};
    cr_assert_eq(dk_container_list(cli, f, 1, list_cb, &w), 0);
    wait_for(&w.done, 20000, "list");
    return w;
}

static void force_remove(const char *name)
{
    waiter w = do_simple(2, name);
    cr_assert(w.err == 0 || w.err == DK_E_NOT_FOUND, "remove %s: %s", name, dk_strerror(w.err));
}

/* ---- tests ---- */

TestSuite(docker_client, .init = setup, .fini = teardown, .timeout = 240);

Test(docker_client, ping_and_version_negotiate_api)
{
    waiter w = {0};
    cr_assert_eq(dk_ping(cli, done_cb, &w), 0);
    wait_for(&w.done, 10000, "ping");
    cr_assert_eq(w.err, 0, "%s", dk_strerror(w.err));
    cr_assert_eq(w.status, 200);
    static bool vdone;
    vdone = false;
    void vcb(void *ud, const dk_result *r, const dk_version_info *v);
    cr_assert_eq(dk_version(cli, vcb, &vdone), 0);
    wait_for(&vdone, 10000, "version");
    cr_assert_str_eq(dk_client_api_version(cli), "1.41", "dockerd 20.10 speaks 1.41");
}

void vcb(void *ud, const dk_result *r, const dk_version_info *v)
{
    cr_assert_eq(r->err, 0, "%s", dk_strerror(r->err));
    cr_assert_not_null(v);
    cr_assert_not_null(v->api_version);
    cr_assert_not_null(v->version);
    *(bool *)ud = true;
}

Test(docker_client, create_start_inspect_stop_remove_round_trip)
{
    const char *name = uniq(0, "rt");
    force_remove(name);
    const char *cmd[] = {"/bin/sleep", "300"};
    waiter c = do_create(name, cmd, 2, ARN_PREFIX "rt", false);
    cr_assert_eq(c.err, 0, "create: %s %s", dk_strerror(c.err), c.msg);
    cr_assert_eq(c.status, 201);
    cr_assert_eq(strlen(c.id), 64, "id %s", c.id);
    char id[128];
    snprintf(id, sizeof(id), "%s", c.id);

    waiter i = do_inspect(id);
    cr_assert_eq(i.err, 0);
    cr_assert_str_eq(i.state, "created");

    waiter s = do_simple(0, id);
    cr_assert_eq(s.err, 0, "start: %s %s", dk_strerror(s.err), s.msg);
    cr_assert_eq(s.status, 204);
    s = do_simple(0, id);
    cr_assert_eq(s.err, 0, "second start is 304, a success");
    cr_assert_eq(s.status, 304);

    i = do_inspect(name);
    cr_assert_eq(i.err, 0);
    cr_assert_str_eq(i.id, id, "inspect by name finds the same container");
    cr_assert(i.running);
    cr_assert_str_eq(i.state, "running");
    cr_assert(strstr(i.labels, "com.amazonaws.ecs.task-arn=" ARN_PREFIX "rt;"), "%s", i.labels);
    cr_assert_str_eq(i.network, "none");

    waiter st = do_simple(1, id);
    cr_assert_eq(st.err, 0, "stop: %s %s", dk_strerror(st.err), st.msg);
    i = do_inspect(id);
    cr_assert(!i.running);
    cr_assert_str_eq(i.state, "exited");
    cr_assert_eq(i.exit_code, 137, "sleep as PID 1 ignores SIGTERM, killed after t=1");

    waiter rm = do_simple(2, id);
    cr_assert_eq(rm.err, 0, "remove: %s", dk_strerror(rm.err));
    i = do_inspect(id);
    cr_assert_eq(i.err, DK_E_NOT_FOUND);
    cr_assert_eq(i.status, 404);
    cr_assert(strstr(i.msg, "No such container"), "%s", i.msg);

    dk_stats stats;
    dk_client_stats(cli, &stats);
    cr_assert(stats.reused > 0, "keep-alive connections are reused");
    cr_assert(stats.connects <= 4, "the pool is bounded");
}

Test(docker_client, env_and_splunk_log_config_visible_in_inspect)
{
    const char *name = uniq(1, "splunk");
    force_remove(name);
    const char *cmd[] = {"/bin/true"};
    waiter c = do_create(name, cmd, 1, ARN_PREFIX "splunk", true);
    cr_assert_eq(c.err, 0, "create: %s %s", dk_strerror(c.err), c.msg);
    waiter i = do_inspect(c.id);
    cr_assert_eq(i.err, 0);
    cr_assert(strstr(i.env, "SECRET_ONE=s3cr3t-value-1;"), "%s", i.env);
    cr_assert(strstr(i.env, "PLAIN=hello world;"), "%s", i.env);
    cr_assert_str_eq(i.log_driver, "splunk");
    cr_assert(strstr(i.log_opts, "splunk-token=00000000-tok-en00;"), "%s", i.log_opts);
    cr_assert(strstr(i.log_opts, "splunk-url=https://127.0.0.1:8088;"), "%s", i.log_opts);
    force_remove(c.id);
}

Test(docker_client, unknown_log_option_is_400_with_message)
{
    dk_kv opts[] = {{"no-such-opt", "x"}};
    const char *cmd[] = {"/bin/true"};
    dk_create_spec s = {.image = IMAGE,
                        .cmd = cmd,
                        .ncmd = 1,
                        .log_driver = "fluentd",
                        .log_opts = opts,
                        .nlog_opts = 1,
                        .network_mode = "none"};
    waiter w = {0};
    cr_assert_eq(dk_container_create(cli, &s, create_cb, &w), 0);
    wait_for(&w.done, 20000, "create");
    cr_assert_eq(w.err, DK_E_BAD_REQUEST, "%s", dk_strerror(w.err));
    cr_assert(strstr(w.msg, "unknown log opt 'no-such-opt'"), "%s", w.msg);
}

Test(docker_client, no_such_image_is_404_with_docker_message)
{
    dk_create_spec s = {.image = "local/no-such-image:nope", .network_mode = "none"};
    waiter w = {0};
    cr_assert_eq(dk_container_create(cli, &s, create_cb, &w), 0);
    wait_for(&w.done, 20000, "create");
    cr_assert_eq(w.err, DK_E_NOT_FOUND, "%s", dk_strerror(w.err));
    cr_assert_eq(w.status, 404);
    cr_assert(strstr(w.msg, "No such image"), "message: %s", w.msg);

    waiter im = {0};
    cr_assert_eq(dk_image_inspect(cli, "local/no-such-image:nope", image_cb, &im), 0);
    wait_for(&im.done, 20000, "image inspect");
    cr_assert_eq(im.err, DK_E_NOT_FOUND);
    memset(&im, 0, sizeof(im));
    cr_assert_eq(dk_image_inspect(cli, IMAGE, image_cb, &im), 0);
    wait_for(&im.done, 20000, "image inspect");
    cr_assert_eq(im.err, 0);
    cr_assert(strncmp(im.id, "sha256:", 7) == 0, "%s", im.id);
}

Test(docker_client, name_conflict_is_409)
{
    const char *name = uniq(2, "dup");
    force_remove(name);
    const char *cmd[] = {"/bin/true"};
    waiter a = do_create(name, cmd, 1, NULL, false);
    cr_assert_eq(a.err, 0);
    char id[128];
    snprintf(id, sizeof(id), "%s", a.id);
    waiter b = do_create(name, cmd, 1, NULL, false);
    cr_assert_eq(b.err, DK_E_CONFLICT, "%s", dk_strerror(b.err));
    cr_assert_eq(b.status, 409);
    cr_assert(strstr(b.msg, "is already in use"), "%s", b.msg);
    force_remove(id);
}

Test(docker_client, pull_failure_is_an_error)
{
    /* no registry is reachable here: the pull must fail, never succeed */
    waiter w = {0};
    cr_assert_eq(dk_image_pull(cli, "127.0.0.1:9/es-it/none", "latest", NULL, done_cb, &w), 0);
    wait_for(&w.done, 60000, "pull");
    cr_assert(w.err != 0, "a failed pull reported success");
    cr_assert(w.msg[0], "the failure carries Docker's message");
}

/* ---- events ---- */

typedef struct evlog {
    int connected, reconnected, errors;
    int create, start, die, destroy;
    int die_code;
    bool die_seen;
    char name[128]; /* events are matched by container name: an event may
                       arrive before the create answer */
    char marker[128];
    int marker_create;
    char arn[256];
    int last_err;
    uint64_t max_delay;
    bool flag; /* generic wake-up */
} evlog;

static void ev_on_event(void *ud, const dk_event *e)
{
    evlog *l = ud;
    if (e->name && e->type == DK_EV_CREATE && strcmp(e->name, l->marker) == 0)
        l->marker_create++;
    if (!e->name || strcmp(e->name, l->name) != 0)
        return;
    switch (e->type) {
    case DK_EV_CREATE:
        l->create++;
        break;
    case DK_EV_START:
        l->start++;
        break;
    case DK_EV_DIE:
        l->die++;
        l->die_seen = true;
        if (e->has_exit_code)
            l->die_code = e->exit_code;
        snprintf(l->arn, sizeof(l->arn), "%s", e->task_arn ? e->task_arn : "");
        break;
    case DK_EV_DESTROY:
        l->destroy++;
        break;
    default:
        break;
    }
    cr_assert(e->time > 1600000000, "event time %lld", (long long)e->time);
}

static void ev_on_connected(void *ud, bool again)
{
    evlog *l = ud;
    l->connected++;
    if (again)
        l->reconnected++;
}

static void ev_on_error(void *ud, int err, unsigned attempt, uint64_t delay)
{
    evlog *l = ud;
    l->errors++;
    l->last_err = err;
    (void)attempt;
    if (delay > l->max_delay)
        l->max_delay = delay;
}

static const dk_events_cbs ev_cbs = {ev_on_event, ev_on_connected, ev_on_error};

static void wait_count(const int *v, int want, uint64_t ms, const char *what)
{
    uint64_t end = uv_now(&loop) + ms;
    while (*v < want && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert(*v >= want, "timed out waiting for %s (%d < %d)", what, *v, want);
}

Test(docker_client, events_for_create_start_die_destroy)
{
    static evlog l;
    memset(&l, 0, sizeof(l));
    dk_events *ev = NULL;
    cr_assert_eq(dk_events_start(cli, NULL, &ev_cbs, &l, &ev), 0);
    cur_ev = ev;
    wait_count(&l.connected, 1, 20000, "events stream");
    cr_assert_eq(l.reconnected, 0);

    const char *name = uniq(3, "ev");
    force_remove(name);
    snprintf(l.name, sizeof(l.name), "%s", name);
    const char *cmd[] = {"/bin/sh", "-c", "sleep 0.3; exit 7"};
    waiter c = do_create(name, cmd, 3, ARN_PREFIX "ev", false);
    cr_assert_eq(c.err, 0);
    waiter s = do_simple(0, c.id);
    cr_assert_eq(s.err, 0);
    wait_count(&l.die, 1, 20000, "die event");
    cr_assert_eq(l.create, 1, "create event");
    cr_assert_eq(l.start, 1, "start event");
    cr_assert_eq(l.die_code, 7, "exit code in the die event");
    cr_assert_str_eq(l.arn, ARN_PREFIX "ev");
    force_remove(c.id);
    wait_count(&l.destroy, 1, 20000, "destroy event");

    /* a container without the task label is filtered out by dockerd */
    const char *name2 = uniq(4, "nolabel");
    force_remove(name2);
    /* events of name2 are counted from here on: none must come */
    l.create = l.start = l.destroy = 0;
    snprintf(l.name, sizeof(l.name), "%s", name2);
    const char *cmd2[] = {"/bin/true"};
    waiter c2 = do_create(name2, cmd2, 1, NULL, false);
    cr_assert_eq(c2.err, 0);
    do_simple(0, c2.id);
    force_remove(c2.id);
    /* the labelled container's events arrive in order, so a marker proves
     * the unlabelled ones were not delivered */
    const char *name3 = uniq(5, "marker");
    force_remove(name3);
    snprintf(l.marker, sizeof(l.marker), "%s", name3);
    waiter c3 = do_create(name3, cmd2, 1, ARN_PREFIX "marker", false);
    cr_assert_eq(c3.err, 0);
    wait_count(&l.marker_create, 1, 20000, "marker create event");
    cr_assert_eq(l.create, 0, "no create event of the unlabelled container");
    cr_assert_eq(l.start, 0, "no start event of the unlabelled container");
    cr_assert_eq(l.destroy, 0, "no destroy event of the unlabelled container");
    force_remove(c3.id);
    dk_events_free(ev);
    cur_ev = NULL;
}

static void run_ctl(const char *verb)
{
    const char *ctl = getenv("ES_TEST_DOCKERD_CTL");
    cr_assert(ctl && *ctl, "ES_TEST_DOCKERD_CTL is not set: the restart test needs a command "
                           "that takes `stop` or `start` for the test dockerd");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s", ctl, verb);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

Test(docker_client, watcher_reconnects_after_dockerd_restart)
{
    static evlog l;
    memset(&l, 0, sizeof(l));
    dk_events_options eo = {.backoff_min_ms = 50, .backoff_max_ms = 400};
    dk_events *ev = NULL;
    cr_assert_eq(dk_events_start(cli, &eo, &ev_cbs, &l, &ev), 0);
    cur_ev = ev;
    wait_count(&l.connected, 1, 20000, "events stream");

    const char *name = uniq(6, "restart");
    force_remove(name);
    snprintf(l.name, sizeof(l.name), "%s", name);
    const char *cmd[] = {"/bin/sleep", "600"};
    waiter c = do_create(name, cmd, 2, ARN_PREFIX "restart", false);
    cr_assert_eq(c.err, 0);
    char id[128];
    snprintf(id, sizeof(id), "%s", c.id);
    cr_assert_eq(do_simple(0, id).err, 0);
    wait_count(&l.start, 1, 20000, "start event");

    /* dockerd goes away: it kills the container on its way out */
    run_ctl("stop");
    wait_count(&l.errors, 3, 20000, "the watcher noticing and retrying");
    cr_assert(l.max_delay <= 400, "backoff is capped: %llu", (unsigned long long)l.max_delay);
    cr_assert_eq(l.reconnected, 0);
    /* meanwhile the client's requests fail cleanly */
    waiter p = {0};
    cr_assert_eq(dk_ping(cli, done_cb, &p), 0);
    wait_for(&p.done, 20000, "ping while dockerd is down");
    cr_assert(p.err == -ENOENT || p.err == -ECONNREFUSED, "%s", dk_strerror(p.err));

    run_ctl("start");
    wait_count(&l.reconnected, 1, 60000, "the watcher reconnecting");
    /* dockerd's event log did not survive: the die is found by a list */
    waiter ls = do_list("com.amazonaws.ecs.task-arn=" ARN_PREFIX "restart", id);
    cr_assert_eq(ls.err, 0, "%s", dk_strerror(ls.err));
    cr_assert_eq(ls.n, 1);
    cr_assert_str_eq(ls.list_state, "exited", "the container died while the watcher was away");
    waiter i = do_inspect(id);
    cr_assert(!i.running);

    /* and the resumed stream still delivers */
    l.destroy = 0;
    force_remove(id);
    wait_count(&l.destroy, 1, 20000, "destroy event after the reconnect");
    dk_events_free(ev);
    cur_ev = NULL;
}

Test(docker_client, create_on_a_pooled_connection_stale_after_restart_is_sent_again)
{
    const char *name = uniq(7, "stale");
    force_remove(name); /* also leaves a kept-alive connection idle in the pool */
    dk_stats before;
    dk_client_stats(cli, &before);
    /* the loop does not run meanwhile: the client has not seen the EOF */
    run_ctl("stop");
    run_ctl("start");
    const char *cmd[] = {"/bin/true"};
    waiter c = do_create(name, cmd, 1, NULL, false);
    cr_assert_eq(c.err, 0, "%s %s", dk_strerror(c.err), c.msg);
    dk_stats after;
    dk_client_stats(cli, &after);
    cr_assert_eq(after.retries, before.retries + 1,
                 "refused on the stale connection, created on a fresh one");
    waiter i = do_inspect(name);
    cr_assert_eq(i.err, 0);
    cr_assert(strstr(i.env, "SECRET_ONE=s3cr3t-value-1"), "the body went out whole: %s", i.env);
    force_remove(name);
}

Test(docker_client, missing_socket_is_a_clear_error_and_retried)
{
    dk_client *bad = NULL;
    dk_options o = {.host = "unix:///tmp/es-it-no-such-dir/docker.sock"};
    cr_assert_eq(dk_client_create(&loop, &o, &bad), 0);
    waiter w = {0};
    cr_assert_eq(dk_ping(bad, done_cb, &w), 0);
    wait_for(&w.done, 10000, "ping");
    cr_assert_eq(w.err, -ENOENT, "%d %s", w.err, dk_strerror(w.err));
    cr_assert_str_eq(dk_strerror(w.err), "No such file or directory");
    waiter c = {0};
    dk_create_spec s = {.image = IMAGE};
    cr_assert_eq(dk_container_create(bad, &s, create_cb, &c), 0);
    wait_for(&c.done, 10000, "create");
    cr_assert_eq(c.err, -ENOENT);

    static evlog l;
    memset(&l, 0, sizeof(l));
    dk_events_options eo = {.backoff_min_ms = 10, .backoff_max_ms = 40};
    dk_events *ev = NULL;
    cr_assert_eq(dk_events_start(bad, &eo, &ev_cbs, &l, &ev), 0);
    cur_ev = ev;
    cur_bad = bad;
    wait_count(&l.errors, 5, 10000, "retries");
    cr_assert_eq(l.last_err, -ENOENT);
    cr_assert_eq(l.max_delay, 40, "capped exponential backoff: 10, 20, 40, 40, ...");
    cr_assert_eq(l.connected, 0);
    dk_events_free(ev);
    cur_ev = NULL;
    dk_client_free(bad);
    cur_bad = NULL;

    cr_assert_eq(dk_client_create(&loop, &(dk_options){.host = "tcp://127.0.0.1:2375"}, &bad),
                 DK_E_BAD_HOST);
}
