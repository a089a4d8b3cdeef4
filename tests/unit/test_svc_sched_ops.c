/* agent/services/scheduler.c through an ops table of the test's own: the
 * decisions reach the ops (launch, stop, persist) as they reach the engine
 * and agent.db alone, the census counts what the ops' foreach hands it,
 * and an agent not in charge (a cluster's non-leader) counts without
 * acting. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent/services/scheduler.h"
#include "agent/store/store.h"
#include "agent/tasks/taskdef.h"

#define MAXT 64

typedef struct fake_task {
    char id[AG_TASK_ID_HEX + 1], arn[128], started_by[AG_SVC_DEP_ID_MAX];
    ag_task_status last, desired;
    bool draining; /* on a DRAINING instance */
} fake_task;

static struct {
    fake_task t[MAXT];
    size_t n;
    int launched, stopped, persisted, forgotten;
    bool charge;
    char last_reason[256];
} f;

static void fake_foreach(void *ctx, const ag_service *v, ag_svc_task_fn fn, void *arg)
{
    (void)ctx;
    (void)v;
    for (size_t i = 0; i < f.n; i++) {
        ag_svc_task t = {.id = f.t[i].id,
                         .arn = f.t[i].arn,
                         .started_by = f.t[i].started_by,
                         .last_status = f.t[i].last,
                         .desired_status = f.t[i].desired,
                         .created_at = 1,
                         .to_replace = f.t[i].draining};
        if (fn(arg, &t))
            return;
    }
}

static size_t fake_launch(void *ctx, const ag_service *v, const ag_svc_deployment *d, int n,
                          char (*ids)[AG_TASK_ID_HEX + 1], size_t cap)
{
    (void)ctx;
    (void)v;
    size_t got = 0;
    for (int i = 0; i < n && f.n < MAXT; i++, got++) {
        fake_task *t = &f.t[f.n++];
        char id[AG_TASK_ID_HEX + 1];
        snprintf(id, sizeof id, "%032zx", f.n);
        memcpy(t->id, id, sizeof id);
        snprintf(t->arn, sizeof t->arn, "arn:aws:ecs:us-east-1:123456789012:task/c/%s", id);
        snprintf(t->started_by, sizeof t->started_by, "%s", d->id);
        t->last = AG_TASK_PROVISIONING;
        t->desired = AG_TASK_RUNNING;
        if (got < cap)
            snprintf(ids[got], sizeof ids[got], "%s", t->id);
    }
    f.launched += (int)got;
    return got;
}

static int fake_stop(void *ctx, const ag_service *v, const char *arn, const char *reason)
{
    (void)ctx;
    (void)v;
    for (size_t i = 0; i < f.n; i++)
        if (strcmp(f.t[i].arn, arn) == 0) {
            f.t[i].desired = AG_TASK_STOPPED;
            f.stopped++;
            snprintf(f.last_reason, sizeof f.last_reason, "%s", reason);
            return 0;
        }
    return -ENOENT;
}

static int fake_persist(void *ctx, const ag_service *v)
{
    (void)ctx;
    (void)v;
    f.persisted++;
    return 0;
}

static int fake_forget(void *ctx, const ag_service *v)
{
    (void)ctx;
    (void)v;
    f.forgotten++;
    return 0;
}

static int fake_load(void *ctx, int (*fn)(ag_service *v, void *arg), void *arg)
{
    (void)ctx;
    (void)fn;
    (void)arg;
    return 0;
}

static bool fake_charge(void *ctx)
{
    (void)ctx;
    return f.charge;
}

static const ag_svc_ops ops = {.foreach_task = fake_foreach,
                               .launch = fake_launch,
                               .stop = fake_stop,
                               .persist = fake_persist,
                               .forget = fake_forget,
                               .load = fake_load,
                               .in_charge = fake_charge};

static char dir[64];
static uv_loop_t loop;
static ag_store *store;
static ag_svc_sched *sched;

static void setup(void)
{
    memset(&f, 0, sizeof f);
    f.charge = true;
    snprintf(dir, sizeof dir, "/tmp/es-svcops-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[AG_STORE_ERR_MAX];
    cr_assert_eq(ag_store_open(dir, &store, err, sizeof err), 0, "%s", err);
    const char *body = "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\","
                       "\"image\":\"busybox\",\"memory\":64}]}";
    ag_taskdef *td = NULL;
    ag_td_error e;
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0, "%s", e.message);
    cr_assert_eq(ag_store_taskdef_register(store, td, 100), 0);
    ag_taskdef_free(td);
    cr_assert_eq(uv_loop_init(&loop), 0);
    ag_svc_sched_config sc = {.loop = &loop,
                              .store = store,
                              .ops = &ops,
                              .region = "us-east-1",
                              .account = "123456789012",
                              .cluster = "c",
                              .interval_ms = 3600000};
    cr_assert_eq(ag_svc_sched_create(&sc, &sched), 0);
}

static void teardown(void)
{
    ag_svc_sched_close(sched, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    ag_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(svc_sched_ops, .init = setup, .fini = teardown);

static ag_service *create(int desired, int max, int min)
{
    ag_svc_create_req req = {
        .name = "web", .family = "web", .desired = desired, .max_percent = max, .min_healthy = min};
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX] = "";
    cr_assert_eq(ag_svc_create(sched, &req, &v, err, sizeof err), 0, "%s", err);
    return v;
}

static void all_running(void)
{
    for (size_t i = 0; i < f.n; i++)
        if (f.t[i].desired == AG_TASK_RUNNING)
            f.t[i].last = AG_TASK_RUNNING;
        else
            f.t[i].last = AG_TASK_STOPPED;
}

Test(svc_sched_ops, the_decisions_reach_the_ops)
{
    create(3, 200, 50);
    cr_assert_eq(f.persisted, 1, "the creation persisted through the ops");
    ag_svc_sched_pass(sched);
    cr_assert_eq(f.launched, 3);
    all_running();
    ag_svc_sched_pass(sched);
    ag_service *v = ag_svc_find(sched, "web");
    cr_assert_eq(v->deps[0].running, 3, "the census counted the ops' tasks");
    cr_assert_eq(v->deps[0].rollout, AG_ROLLOUT_COMPLETED);
    cr_assert(v->steady);
    cr_assert_str_eq(v->events[0].message, "(service web) has reached a steady state.");

    /* a forced deployment: upper 6, lower 2: one old task stopped, three new asked */
    ag_svc_update_req up = {
        .name = "web", .desired = -1, .min_healthy = -1, .force_new_deployment = true};
    char err[AG_SVC_ERR_MAX] = "";
    cr_assert_eq(ag_svc_update(sched, &up, &v, err, sizeof err), 0, "%s", err);
    ag_svc_sched_pass(sched);
    v = ag_svc_find(sched, "web");
    cr_assert_eq(f.stopped, 1);
    char want[128];
    snprintf(want, sizeof want, "Scaling activity initiated by (deployment %s)", v->deps[0].id);
    cr_assert_str_eq(f.last_reason, want);
    cr_assert_eq(f.launched, 6);
    /* the rollout completes as the tasks move */
    for (int i = 0; i < 6; i++) {
        all_running();
        ag_svc_sched_pass(sched);
    }
    v = ag_svc_find(sched, "web");
    cr_assert_eq(v->n_deps, 1);
    cr_assert_eq(v->deps[0].rollout, AG_ROLLOUT_COMPLETED);
    cr_assert_eq(v->deps[0].running, 3);
}

Test(svc_sched_ops, not_in_charge_counts_without_acting)
{
    ag_service *v = create(2, 200, 100);
    f.charge = false;
    int persisted = f.persisted;
    ag_svc_sched_pass(sched);
    cr_assert_eq(f.launched, 0, "a non-leader launches nothing");
    /* the leader's tasks, as the cluster's mirrors show them */
    for (int i = 0; i < 2; i++) {
        fake_task *t = &f.t[f.n++];
        char id[AG_TASK_ID_HEX + 1];
        snprintf(id, sizeof id, "%032x", 100 + i);
        memcpy(t->id, id, sizeof id);
        snprintf(t->arn, sizeof t->arn, "arn:aws:ecs:us-east-1:123456789012:task/c/%s", id);
        snprintf(t->started_by, sizeof t->started_by, "%s", v->deps[0].id);
        t->last = i ? AG_TASK_RUNNING : AG_TASK_PENDING;
        t->desired = AG_TASK_RUNNING;
    }
    ag_svc_sched_pass(sched);
    v = ag_svc_find(sched, "web");
    cr_assert_eq(v->deps[0].running, 1);
    cr_assert_eq(v->deps[0].pending, 1);
    cr_assert_eq(f.launched, 0);
    cr_assert_eq(f.stopped, 0);
    cr_assert_eq(f.persisted, persisted, "a non-leader writes nothing from its passes");
    cr_assert_eq(v->deps[0].rollout, AG_ROLLOUT_IN_PROGRESS, "nor decides the rollout");
}

Test(svc_sched_ops, adopt_keeps_what_only_memory_knows)
{
    ag_service *v = create(0, 200, 100);
    ag_svc_sched_pass(sched);
    v = ag_svc_find(sched, "web");
    cr_assert(v->steady);
    ag_service *w = NULL;
    cr_assert_eq(ag_service_new("us-east-1", "123456789012", "c", "web", "web", 1, 5, 200, 100,
                                false, false, 7, &w),
                 0);
    cr_assert_eq(ag_svc_sched_adopt(sched, w), 0);
    v = ag_svc_find(sched, "web");
    cr_assert_eq(v, w);
    cr_assert_eq(v->desired, 5);
    cr_assert(v->steady, "the steadiness stays (said once, not again)");
    ag_svc_sched_drop(sched, "web");
    cr_assert_null(ag_svc_find(sched, "web"));
}

Test(svc_sched_ops, a_draining_instance_s_tasks_are_replaced_first_then_stopped)
{
    create(3, 200, 100); /* lower 3: nothing stops before its replacement runs */
    ag_svc_sched_pass(sched);
    all_running();
    ag_svc_sched_pass(sched);
    ag_service *v = ag_svc_find(sched, "web");
    cr_assert(v->steady);
    f.t[0].draining = true; /* its instance drains */
    ag_svc_sched_pass(sched);
    v = ag_svc_find(sched, "web");
    cr_assert_eq(f.launched, 4, "the replacement asked first");
    cr_assert_eq(f.stopped, 0, "nothing stopped below minimumHealthyPercent");
    cr_assert_not(v->steady);
    all_running();
    ag_svc_sched_pass(sched);
    cr_assert_eq(f.stopped, 1, "the draining one stopped once its replacement runs");
    cr_assert_eq(f.t[0].desired, AG_TASK_STOPPED);
    all_running();
    ag_svc_sched_pass(sched);
    v = ag_svc_find(sched, "web");
    cr_assert_eq(v->deps[0].running, 3);
    cr_assert(v->steady, "steady again");
    cr_assert_eq(f.launched, 4, "no more launched");
}

/* The UpdateService race in a cluster (agent/cluster_services.c): two
 * agents update one service at once; the one whose write lost adopts the
 * winner's record (read back by its failed transaction) and applies its
 * own update again on it. Neither change is lost: the winner's desiredCount
 * and the loser's maximumPercent and forced deployment all stand. */
Test(svc_sched_ops, an_update_applied_again_on_the_winners_record_loses_neither)
{
    ag_service *v = create(2, 200, 100);
    ag_svc_update_req mine = {.name = "web",
                              .desired = -1,
                              .max_percent = 150,
                              .min_healthy = -1,
                              .force_new_deployment = true};
    char err[AG_SVC_ERR_MAX] = "";
    cr_assert_eq(ag_svc_update(sched, &mine, &v, err, sizeof err), 0, "%s", err);
    cr_assert_eq(v->n_deps, 2);
    /* the winner's record (another agent set desiredCount 5 from the
     * record before mine) replaces mine in memory */
    ag_service *w = NULL;
    cr_assert_eq(ag_service_new("us-east-1", "123456789012", "c", "web", "web", 1, 5, 200, 100,
                                false, false, 7, &w),
                 0);
    cr_assert_eq(ag_svc_sched_adopt(sched, w), 0);
    v = ag_svc_find(sched, "web");
    cr_assert_eq(v->desired, 5);
    cr_assert_eq(v->max_percent, 200, "my change is gone with my lost write");
    cr_assert_eq(v->n_deps, 1);
    int persisted = f.persisted;
    /* applied again, as the glue does */
    cr_assert_eq(ag_svc_update(sched, &mine, &v, err, sizeof err), 0, "%s", err);
    cr_assert_eq(v->desired, 5, "the winner's desiredCount stays");
    cr_assert_eq(v->max_percent, 150, "mine is there again");
    cr_assert_eq(v->n_deps, 2, "and my forced deployment");
    cr_assert_gt(f.persisted, persisted, "written again");
    /* the service deleted meanwhile: the update answers ECS's error */
    ag_svc_sched_drop(sched, "web");
    cr_assert_eq(ag_svc_update(sched, &mine, &v, err, sizeof err), -ENOENT);
}
