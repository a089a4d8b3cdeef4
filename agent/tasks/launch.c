/* launch.c - launching and stopping a task's containers (engine_int.h). */
#include "agent/tasks/engine_int.h"
#include "agent/secrets/inject.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const phase_names[] = {"resolve", "create", "start", "done"};

/* ---- launching ---- */

/* The one transition of a launch's phase: resolve -> create -> start ->
 * done, or done from anywhere (a stop, a failure, an adopted task). Entering
 * create or start begins at the first container. Logged old -> new (debug). */
void ag_eng_set_phase(etask *et, launch_phase to)
{
    launch_phase from = et->phase;
    bool ok = to == L_DONE || (from == L_RESOLVE && to == L_CREATE) ||
              (from == L_CREATE && to == L_START);
    if (!ok) {
        es_err("task %s: launch phase %s -> %s refused", et->t->id, phase_names[from],
               phase_names[to]);
        return;
    }
    if (from == to)
        return;
    et->phase = to;
    if (to == L_CREATE || to == L_START)
        et->step = 0;
    es_debug("task %s: launch phase %s -> %s", et->t->id, phase_names[from], phase_names[to]);
}

void ag_eng_on_resolved(void *arg, ag_resolution *res, const char *reason)
{
    etask *et = arg;
    if (!ag_eng_op_end(et)) {
        ag_resolution_free(res);
        return;
    }
    if (et->launch_started_ms)
        ag_series_observe(et->e->m_resolve_seconds,
                          (double)(uv_now(et->e->loop) - et->launch_started_ms) / 1000.0);
    if (!res) {
        ag_eng_fail_launch(et, reason ? reason : "ResourceInitializationError: unknown failure");
        ag_eng_advance(et);
        return;
    }
    if (ag_eng_record_secrets(et, res) < 0) {
        ag_resolution_free(res);
        ag_eng_fail_launch(et, "ResourceInitializationError: out of memory");
        ag_eng_advance(et);
        return;
    }
    char why[AG_REASON_BUF];
    if (et->t->desired_status != AG_TASK_STOPPED &&
        ag_eng_files_write(et, res, why, sizeof why) < 0) {
        ag_resolution_free(res);
        ag_eng_fail_launch(et, why);
        ag_eng_advance(et);
        return;
    }
    et->res = res;
    ag_eng_set_phase(et, L_CREATE);
    if (et->t->desired_status != AG_TASK_STOPPED)
        ag_eng_move(et, AG_TASK_PENDING);
    ag_eng_advance(et);
}

static void split_image(const char *image, char *name, size_t nlen, char *tag, size_t tlen)
{
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(image, ':');
    const char *at = strchr(image, '@');
    if (at || !colon || (slash && colon < slash)) {
        snprintf(name, nlen, "%s", image);
        snprintf(tag, tlen, "%s", at ? "" : "latest");
        return;
    }
    snprintf(name, nlen, "%.*s", (int)(colon - image), image);
    snprintf(tag, tlen, "%s", colon + 1);
}

static void on_pulled(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!ag_eng_cop_end(ud, &et, &i))
        return;
    if (r->err) {
        char reason[AG_REASON_BUF];
        snprintf(reason, sizeof reason, "CannotPullContainerError: %s: %s",
                 et->t->containers[i].image, r->message ? r->message : dk_strerror(r->err));
        ag_eng_fail_container(et, i, reason);
    }
    ag_eng_advance(et); /* retries the create */
}

static void on_created(void *ud, const dk_result *r, const char *id)
{
    etask *et;
    size_t i;
    if (!ag_eng_cop_end(ud, &et, &i))
        return;
    if (r->err == DK_E_NOT_FOUND && et->pulled_step != et->step + 1 &&
        et->t->desired_status != AG_TASK_STOPPED) {
        /* no such image: pull it once, then create again */
        char name[512], tag[256];
        split_image(et->t->containers[i].image, name, sizeof name, tag, sizeof tag);
        cop *p = es_calloc(1, sizeof *p);
        et->pulled_step = et->step + 1;
        /* repositoryCredentials (S15) or an ECR token (issue 20): the
         * X-Registry-Auth value lives in the resolution, wiped with it
         * after the last create; the Docker client wipes its copy of the
         * request once written */
        const ag_container_def *cd = ag_eng_cdef(et, i);
        const char *auth =
            cd ? ag_resolution_registry_auth(et->res, (size_t)(cd - et->td->td->containers)) : NULL;
        if (p) {
            *p = (cop){et, i};
            if (dk_image_pull(et->e->cfg.docker, name, tag[0] ? tag : NULL, auth, on_pulled, p) ==
                0) {
                es_info("task %s: pulling %s%s", et->t->id, et->t->containers[i].image,
                        !auth                        ? ""
                        : cd->repository_credentials ? " with the registry credentials of "
                                                       "repositoryCredentials"
                                                     : " with the ECR token of the execution role");
                ag_eng_op_begin(et);
                return;
            }
            es_free(p);
        }
        ag_eng_fail_container(et, i, "CannotPullContainerError: cannot start the pull");
        ag_eng_advance(et);
        return;
    }
    if (r->err) {
        char reason[AG_REASON_BUF];
        snprintf(reason, sizeof reason, "CannotCreateContainerError: %s: %s",
                 et->t->containers[i].name, r->message ? r->message : dk_strerror(r->err));
        /* Docker's words may quote the awslogs credentials URL (its id) */
        es_log_redact(reason);
        ag_eng_fail_container(et, i, reason);
        ag_eng_advance(et);
        return;
    }
    ag_eng_container_set(et, i, id, "PENDING", NULL, NULL);
    et->created_at_list = et->e->lists_issued;
    ag_eng_persist(et);
    et->step++;
    ag_eng_advance(et);
}

static void on_started(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!ag_eng_cop_end(ud, &et, &i))
        return;
    if (r->err) {
        char reason[AG_REASON_BUF];
        snprintf(reason, sizeof reason, "CannotStartContainerError: %s: %s",
                 et->t->containers[i].name, r->message ? r->message : dk_strerror(r->err));
        /* Docker's words may quote the awslogs credentials URL (its id) */
        es_log_redact(reason);
        ag_eng_fail_container(et, i, reason);
        ag_eng_advance(et);
        return;
    }
    /* the events stream may already have said it died: keep STOPPED */
    if (!ag_eng_container_stopped(&et->t->containers[i])) {
        ag_eng_container_set(et, i, NULL, "RUNNING", NULL, NULL);
        et->t->containers[i].started_ms = uv_now(et->e->loop);
    }
    et->step++;
    ag_eng_advance(et);
}

/* The create of container i's spec with its volumes and ports (the secret
 * files' mounts are in p already); the spec is written before this returns. */
static int create_with_volumes(etask *et, size_t i, ag_create_params *p, const char *mode, cop *c)
{
    ag_eng_vspec v;
    int rc = ag_eng_volume_spec(et, i, &v);
    if (rc < 0)
        return rc;
    p->spec.binds = (const char *const *)v.binds;
    p->spec.nbinds = v.nbinds;
    p->spec.volumes_from = (const char *const *)v.volumes_from;
    p->spec.nvolumes_from = v.nvolumes_from;
    p->spec.ports = v.ports;
    p->spec.nports = v.nports;
    /* in the host mode the container's ports are the host's: nothing to bind */
    p->spec.publish_ports = strcmp(mode, "host") != 0;
    if (v.nports && strcmp(mode, "none") == 0)
        rc = -ENETUNREACH;
    else
        rc = dk_container_create(et->e->cfg.docker, &p->spec, on_created, c);
    ag_eng_vspec_free(&v);
    return rc;
}

static int issue_create(etask *et)
{
    ag_engine *e = et->e;
    size_t i = ag_eng_create_index(et);
    const ag_container_def *cd = ag_eng_cdef(et, i);
    char err[AG_INJECT_ERR_MAX] = "";
    char reason[AG_REASON_BUF];
    if (!cd) {
        ag_eng_fail_launch(et, "CannotCreateContainerError: the task definition is gone");
        return -ENOENT;
    }
    ag_secret_value views[AG_TD_SECRETS_MAX + AG_TD_SECRET_OPTIONS_MAX + AG_EXPAND_LABELS_MAX];
    size_t nv = ag_resolution_values(et->res, i, views, sizeof views / sizeof *views);
    /* ECS network modes on one Docker host: none and host as they are;
     * bridge (and awsvpc, which needs ENIs we do not have) as the agent's
     * configured mode, "bridge" unless told otherwise */
    const char *nm = et->td->td->network_mode;
    const char *mode = nm && (strcmp(nm, "none") == 0 || strcmp(nm, "host") == 0)
                           ? nm
                           : (e->network_mode ? e->network_mode : "bridge");
    ag_inject_ctx ctx = {.task_arn = et->t->arn,
                         .cluster = et->t->cluster,
                         .family = et->t->family,
                         .revision = et->t->revision,
                         .network_mode = mode,
                         .pid_mode = et->td->td->pid_mode,
                         .ipc_mode = et->td->td->ipc_mode,
                         .task_id = et->t->id,
                         .region = e->region,
                         .instance_arn = e->instance_arn};
    ag_eng_mounts mounts;
    int rc = ag_eng_files_mounts(et, (size_t)(cd - et->td->td->containers), &mounts);
    if (rc < 0) {
        snprintf(reason, sizeof reason, "CannotCreateContainerError: %s: %s", cd->name,
                 rc == -ENOMEM ? "out of memory" : "the secret files' paths are too long");
        ag_eng_fail_container(et, i, reason);
        return rc;
    }
    ctx.mounts = mounts.m;
    ctx.nmounts = mounts.n;
    ctx.envfile_env =
        ag_resolution_envfiles(et->res, (size_t)(cd - et->td->td->containers), &ctx.envfile_len);
    ag_engine_env env = {.n = 0};
    const char *env_views[AG_ENGINE_ENV_MAX];
    if (e->env_fn &&
        (rc = e->env_fn(e->env_arg, et->t, et->td->td, (size_t)(cd - et->td->td->containers), &env,
                        err, sizeof err)) < 0) {
        ag_eng_mounts_free(&mounts);
        snprintf(reason, sizeof reason, "CannotCreateContainerError: %s: %s", cd->name, err);
        ag_eng_fail_container(et, i, reason);
        return rc;
    }
    for (size_t k = 0; k < env.n && k < AG_ENGINE_ENV_MAX; k++)
        env_views[k] = env.v[k];
    ctx.agent_env = env_views;
    ctx.n_agent_env = env.n < AG_ENGINE_ENV_MAX ? env.n : AG_ENGINE_ENV_MAX;
    ctx.log_credentials_uri = env.log_credentials_uri[0] ? env.log_credentials_uri : NULL;
    ag_create_params *p = NULL;
    rc = ag_inject_build(cd, ag_overrides_for(et->td->ov, cd->name), views, nv, &ctx, &p, err,
                         sizeof err);
    es_wipe(&env, sizeof env); /* the task's token; the params hold their own copy */
    if (rc < 0) {
        ag_eng_mounts_free(&mounts);
        snprintf(reason, sizeof reason, "CannotCreateContainerError: %s: %s", cd->name, err);
        ag_eng_fail_container(et, i, reason);
        return rc;
    }
    cop *c = es_calloc(1, sizeof *c);
    rc = -ENOMEM;
    if (c) {
        *c = (cop){et, i};
        es_debug("task %s: creating container %s as %s", et->t->id, cd->name, p->name);
        /* for task metadata's DockerName; without memory it is left out */
        es_free(et->t->containers[i].docker_name);
        et->t->containers[i].docker_name = es_strdup(p->name);
        /* the body is written (docker/) and the params' values wiped right away */
        rc = create_with_volumes(et, i, p, mode, c);
    }
    ag_create_params_free(p);
    ag_eng_mounts_free(&mounts);
    if (rc < 0) {
        es_free(c);
        snprintf(reason, sizeof reason, "CannotCreateContainerError: %s: %s", cd->name,
                 rc == -ENOMEM        ? "out of memory"
                 : rc == -ENETUNREACH ? "portMappings need the bridge or host network mode"
                 : rc == -ENOENT      ? "a volumesFrom container was not created"
                                      : dk_strerror(rc));
        ag_eng_fail_container(et, i, reason);
        return rc;
    }
    ag_eng_op_begin(et);
    return 0;
}

/* The task's container that starts at this step: dependsOn START puts a
 * container after those it names (taskdef.c's start order). */
static size_t start_index(const etask *et)
{
    const ag_taskdef *td = et->td ? et->td->td : NULL;
    if (!td || !td->start_order || et->step >= td->n_containers)
        return et->step;
    const char *name = td->containers[td->start_order[et->step]].name;
    for (size_t i = 0; i < et->t->n_containers; i++)
        if (strcmp(et->t->containers[i].name, name) == 0)
            return i;
    return et->step;
}

/* The task's container for the definition's container d; n when none. */
static size_t task_index(const etask *et, size_t d)
{
    const char *name = et->td->td->containers[d].name;
    for (size_t i = 0; i < et->t->n_containers; i++)
        if (strcmp(et->t->containers[i].name, name) == 0)
            return i;
    return et->t->n_containers;
}

typedef enum dep_state { DEP_MET, DEP_WAIT, DEP_FAILED } dep_state;

/* Whether dependency dp of a container holds. START holds by the start
 * order (the dependency was started before). A dependency that stopped
 * without meeting its condition never will: the launch fails (why). */
static dep_state dep_holds(const etask *et, const ag_dependency *dp, char *why, size_t n)
{
    size_t j = task_index(et, dp->container);
    if (j == et->t->n_containers)
        return DEP_MET;
    const ag_task_container *c = &et->t->containers[j];
    bool stopped = ag_eng_container_stopped(c);
    const char *cond = ag_dep_condition_name(dp->condition);
    switch (dp->condition) {
    case AG_DEP_START:
        return DEP_MET;
    case AG_DEP_COMPLETE:
        return stopped ? DEP_MET : DEP_WAIT;
    case AG_DEP_SUCCESS:
        if (!stopped)
            return DEP_WAIT;
        if (c->has_exit_code && c->exit_code == 0)
            return DEP_MET;
        if (c->has_exit_code)
            snprintf(why, n, "%s exited with code %d (condition SUCCESS)", c->name, c->exit_code);
        else
            snprintf(why, n, "%s stopped without an exit code (condition SUCCESS)", c->name);
        return DEP_FAILED;
    case AG_DEP_HEALTHY:
        if (c->health == AG_HEALTH_HEALTHY)
            return DEP_MET;
        if (!stopped)
            return DEP_WAIT;
        snprintf(why, n, "%s stopped before its health check passed (condition %s)", c->name, cond);
        return DEP_FAILED;
    }
    return DEP_MET;
}

/* The longest a container waits for dependency dp: the dependency's
 * startTimeout (ECS: "If a startTimeout value is specified for containerB
 * and it doesn't reach the desired status within that time then containerA
 * gives up"), or ECS's EC2 default. */
static uint64_t dep_timeout_ms(const etask *et, const ag_dependency *dp)
{
    const ag_container_def *d = &et->td->td->containers[dp->container];
    return (uint64_t)(d->has_start_timeout ? d->start_timeout : AG_TD_START_TIMEOUT_DEFAULT) *
           1000u;
}

/* Whether container i may start now: its dependsOn conditions hold. While
 * they do not, the launch waits on Docker's events (die, health_status),
 * and the sweep looks again for the startTimeout; false while waiting or
 * after failing the launch. */
static bool deps_ready(etask *et, size_t i)
{
    const ag_container_def *cd = ag_eng_cdef(et, i);
    if (!cd || !cd->n_depends)
        return true;
    uint64_t now = uv_now(et->e->loop);
    char why[AG_REASON_BUF / 2], reason[AG_REASON_BUF];
    for (size_t k = 0; k < cd->n_depends; k++) {
        const ag_dependency *dp = &cd->depends[k];
        dep_state s = dep_holds(et, dp, why, sizeof why);
        if (s == DEP_MET)
            continue;
        if (!et->dep_wait_ms)
            et->dep_wait_ms = now ? now : 1;
        if (s == DEP_WAIT && now - et->dep_wait_ms < dep_timeout_ms(et, dp))
            return false;
        if (s == DEP_WAIT)
            snprintf(why, sizeof why, "%s did not reach %s within its startTimeout (%llu s)",
                     et->td->td->containers[dp->container].name,
                     ag_dep_condition_name(dp->condition),
                     (unsigned long long)(dep_timeout_ms(et, dp) / 1000u));
        snprintf(reason, sizeof reason,
                 "CannotStartContainerError: %s: its dependency was not resolved: %s", cd->name,
                 why);
        ag_eng_fail_container(et, i, reason);
        return false;
    }
    et->dep_wait_ms = 0;
    return true;
}

/* The launch waits for a dependency's condition (launch.c): true when the
 * sweep should look again (its startTimeout). */
bool ag_eng_dep_waiting(const etask *et)
{
    return et->phase == L_START && et->dep_wait_ms && !et->ops;
}

static int issue_start(etask *et)
{
    size_t i = start_index(et);
    cop *c = es_calloc(1, sizeof *c);
    int rc = -ENOMEM;
    if (c) {
        *c = (cop){et, i};
        rc = dk_container_start(et->e->cfg.docker, et->t->containers[i].docker_id, on_started, c);
    }
    if (rc < 0) {
        es_free(c);
        char reason[AG_REASON_BUF];
        snprintf(reason, sizeof reason, "CannotStartContainerError: %s: %s",
                 et->t->containers[i].name, dk_strerror(rc));
        ag_eng_fail_container(et, i, reason);
        return rc;
    }
    ag_eng_op_begin(et);
    return 0;
}

/* ---- stopping ---- */

/* Whether Docker's answer to a stop says the container is not running any
 * more. Not found: it is gone. Anything else (a timeout, a 5xx, a lost
 * connection) leaves it possibly running: as the ECS agent does, the stop is
 * tried again rather than the task reported STOPPED over a live container. */
static bool stop_settled(int err)
{
    return !err || err == DK_E_NOT_FOUND;
}

static void on_container_stopped(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!ag_eng_cop_end(ud, &et, &i))
        return;
    if (stop_settled(r->err)) {
        /* the die event brings the exit code if it comes */
        if (!ag_eng_container_stopped(&et->t->containers[i]))
            ag_eng_container_set(et, i, NULL, "STOPPED", NULL, NULL);
        ag_eng_persist(et);
    } else if (!ag_eng_container_stopped(&et->t->containers[i])) {
        et->stop_retry = true;
        et->stop_failures++;
        es_warn("task %s: container %s: stop failed (attempt %u): %s; the task stays %s and the "
                "stop is tried again",
                et->t->id, et->t->containers[i].name, et->stop_failures,
                r->message ? r->message : dk_strerror(r->err),
                ag_task_status_name(et->t->last_status));
    }
    ag_eng_advance(et);
}

static void on_container_removed(void *ud, const dk_result *r)
{
    etask *et;
    size_t i;
    if (!ag_eng_cop_end(ud, &et, &i))
        return;
    if (r->err && r->err != DK_E_NOT_FOUND)
        es_warn("task %s: container %s: remove failed: %s", et->t->id, et->t->containers[i].name,
                r->message ? r->message : dk_strerror(r->err));
    if (!ag_eng_container_stopped(&et->t->containers[i]))
        ag_eng_container_set(et, i, NULL, "STOPPED", NULL, NULL);
    ag_eng_persist(et);
    /* the task's own volumes go once no container of it uses them */
    if (et->cleaned && !et->ops)
        ag_eng_volumes_remove(et);
    ag_eng_advance(et);
}

void ag_eng_issue_container_op(etask *et, size_t i, bool remove)
{
    cop *c = es_calloc(1, sizeof *c);
    int rc = -ENOMEM;
    if (c) {
        *c = (cop){et, i};
        const char *id = et->t->containers[i].docker_id;
        rc = remove ? dk_container_remove(et->e->cfg.docker, id, true, on_container_removed, c)
                    : dk_container_stop(et->e->cfg.docker, id, ag_eng_stop_timeout(et, i),
                                        on_container_stopped, c);
    }
    if (rc < 0) {
        es_free(c);
        es_warn("task %s: container %s: cannot %s: %s", et->t->id, et->t->containers[i].name,
                remove ? "remove" : "stop", dk_strerror(rc));
        ag_eng_container_set(et, i, NULL, "STOPPED", NULL,
                             "the agent could not stop the container");
        return;
    }
    ag_eng_op_begin(et);
}

/* ECS stops a task's containers in the reverse of dependsOn: a container
 * is stopped once those depending on it have stopped. True while one that
 * names container i is still to stop. */
static bool dependents_running(const etask *et, size_t i)
{
    for (size_t k = 0; k < et->t->n_containers; k++) {
        const ag_task_container *c = &et->t->containers[k];
        const ag_container_def *cd = ag_eng_cdef(et, k);
        if (k == i || !cd || !c->docker_id || ag_eng_container_stopped(c))
            continue;
        for (size_t d = 0; d < cd->n_depends; d++)
            if (task_index(et, cd->depends[d].container) == i)
                return true;
    }
    return false;
}

/* A Docker-socket task is launched by Docker's client: it is RUNNING once
 * Docker has started its containers. */
static void follow_external(etask *et)
{
    ag_task *t = et->t;
    if (t->last_status != AG_TASK_PENDING && t->last_status != AG_TASK_ACTIVATING)
        return;
    for (size_t i = 0; i < t->n_containers; i++)
        if (!ag_eng_container_running(&t->containers[i]))
            return;
    ag_eng_move(et, AG_TASK_RUNNING);
    ag_eng_persist(et);
}

/* Drives a task one step: called after every answer and event that may let
 * it move. Nothing happens while a call about the task is in flight. */
void ag_eng_advance(etask *et)
{
    ag_engine *e = et->e;
    ag_task *t = et->t;
    if (et->ops || e->closing || t->last_status == AG_TASK_STOPPED)
        return;
    if (t->desired_status == AG_TASK_STOPPED) {
        ag_eng_release_values(et);
        ag_eng_set_phase(et, L_DONE);
        if (t->last_status == AG_TASK_RUNNING || t->last_status == AG_TASK_ACTIVATING)
            ag_eng_move(et, AG_TASK_DEACTIVATING);
        /* a task that failed to start leaves nothing behind: its containers
         * are removed at once; the others are stopped, kept for the logs */
        bool failed = t->stop_code == AG_STOP_TASK_FAILED_TO_START;
        bool waiting = false; /* a failed stop waits for its retry (the sweep) */
        for (size_t i = 0; i < t->n_containers; i++) {
            ag_task_container *c = &t->containers[i];
            if (!c->docker_id)
                continue;
            /* a Docker-socket task's container is its owner's: stopped, never removed */
            if (failed && !et->cleaned && !ag_eng_external(et))
                ag_eng_issue_container_op(et, i, true);
            else if (!ag_eng_container_stopped(c) && et->stop_retry)
                waiting = true;
            else if (!ag_eng_container_stopped(c) && dependents_running(et, i))
                waiting = true; /* after those depending on it */
            else if (!ag_eng_container_stopped(c))
                ag_eng_issue_container_op(et, i, false);
        }
        if (failed)
            et->cleaned = true;
        if (failed && !et->ops && !ag_eng_external(et))
            ag_eng_volumes_remove(et); /* none of its containers was created */
        if (et->ops || waiting)
            return;
        for (size_t i = 0; i < t->n_containers; i++)
            if (!ag_eng_container_stopped(&t->containers[i]))
                ag_eng_container_set(et, i, NULL, "STOPPED", NULL, NULL);
        ag_eng_move(et, AG_TASK_STOPPED);
        ag_eng_persist(et);
        return;
    }
    switch (et->phase) {
    case L_RESOLVE:
        return; /* the resolver answers */
    case L_CREATE:
        if (ag_eng_volumes_prepare(et))
            return; /* the volumes first */
        if (et->step < t->n_containers) {
            if (issue_create(et) < 0)
                ag_eng_advance(et);
            return;
        }
        /* every container has its values: none stays in our memory */
        ag_eng_release_values(et);
        ag_eng_set_phase(et, L_START);
        /* fall through */
    case L_START:
        if (et->step < t->n_containers) {
            if (!deps_ready(et, start_index(et))) {
                if (t->desired_status == AG_TASK_STOPPED)
                    ag_eng_advance(et); /* it failed: stop what started */
                return;
            }
            if (issue_start(et) < 0)
                ag_eng_advance(et);
            return;
        }
        ag_eng_set_phase(et, L_DONE);
        ag_eng_move(et, AG_TASK_RUNNING);
        return;
    case L_DONE:
        if (ag_eng_external(et))
            follow_external(et);
        return;
    }
}
