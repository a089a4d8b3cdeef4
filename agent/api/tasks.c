/* tasks.c - RunTask, StartTask, StopTask, DescribeTasks, ListTasks over
 * the task engine (api_tasks.h). */
#include "agent/api/tasks.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api/tags.h"
#include "agent/api/task_waits.h"
#include "agent/store/store.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

#define CLIENT "ClientException"
#define TASK_ARN_MAX (AG_API_TASK_REF_MAX + 512) /* an ID made an ARN */
#define INVALID "InvalidParameterException"
#define SERVER "ServerException"

typedef struct idem_entry {
    char token[AG_API_CLIENT_TOKEN_MAX + 1]; /* "" for a free slot */
    unsigned char hash[SHA256_DIGEST_LENGTH];
    int64_t at;
    size_t n;
    char *arns[AG_ENGINE_RUN_MAX];
} idem_entry;

struct ag_api_tasks {
    ag_api *api;
    ag_engine *engine;
    ag_api_tasks_cluster cluster; /* run NULL: alone */
    idem_entry *idem;             /* AG_API_IDEM_MAX slots, a ring */
    size_t idem_next;
    ag_task_waits *waits; /* borrowed; NULL: DescribeTasks never waits */
};

/* ------------------------------------------------------------ helpers */

int ag_api_platform_has_secrets(const char *v)
{
    if (strcmp(v, "LATEST") == 0)
        return 1;
    long part[3] = {0, 0, 0};
    int np = 0;
    const char *s = v;
    for (;;) {
        if (np == 3 || *s < '0' || *s > '9')
            return -EINVAL;
        long x = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            if (++digits > 6)
                return -EINVAL;
            x = x * 10 + (*s++ - '0');
        }
        part[np++] = x;
        if (*s == '\0')
            break;
        if (*s++ != '.')
            return -EINVAL;
    }
    if (np < 2)
        return -EINVAL;
    if (part[0] != 1)
        return part[0] > 1;
    if (part[1] != 3)
        return part[1] > 3;
    return 1; /* 1.3.x */
}

/* No control characters in what we keep and print back. */
static int printable(ag_api_req *rq, const char *key, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return ag_api_fail(rq, INVALID, "%s: must not contain control characters", key);
    return 0;
}

static void write_task_list(ag_api_req *rq, ag_task **tasks, size_t n)
{
    es_jw_key(rq->w, "tasks");
    es_jw_arr(rq->w);
    for (size_t i = 0; i < n; i++)
        ag_task_write_json(tasks[i], rq->w);
    es_jw_arr_end(rq->w);
}

static void write_failure(es_jw *w, const char *arn, const char *reason, const char *detail)
{
    es_jw_obj(w);
    if (arn)
        es_jw_kstr(w, "arn", arn);
    es_jw_kstr(w, "reason", reason);
    if (detail)
        es_jw_kstr(w, "detail", detail);
    es_jw_obj_end(w);
}

/* ------------------------------------------------------- client tokens */

static void idem_clear(idem_entry *e)
{
    for (size_t i = 0; i < e->n; i++)
        es_free(e->arns[i]);
    memset(e, 0, sizeof *e);
}

static idem_entry *idem_find(ag_api_tasks *t, const char *token, int64_t now)
{
    for (size_t i = 0; i < AG_API_IDEM_MAX; i++) {
        idem_entry *e = &t->idem[i];
        if (!e->token[0])
            continue;
        if (now - e->at > AG_API_IDEM_WINDOW_S) {
            idem_clear(e);
            continue;
        }
        if (strcmp(e->token, token) == 0)
            return e;
    }
    return NULL;
}

static void idem_add(ag_api_tasks *t, const char *token, const unsigned char *hash, int64_t now,
                     ag_task **tasks, size_t n)
{
    idem_entry *e = &t->idem[t->idem_next];
    t->idem_next = (t->idem_next + 1) % AG_API_IDEM_MAX;
    idem_clear(e);
    for (size_t i = 0; i < n; i++) {
        if (!(e->arns[i] = es_strdup(tasks[i]->arn))) {
            idem_clear(e); /* without memory the token is simply not remembered */
            return;
        }
        e->n = i + 1;
    }
    snprintf(e->token, sizeof e->token, "%s", token);
    memcpy(e->hash, hash, SHA256_DIGEST_LENGTH);
    e->at = now;
}

/* ---------------------------------------------------------- launching */

typedef struct launch {
    int64_t count;
    const char *launch_type;
    const char *platform;
    const char *token;
} launch;

/* Loads the task definition ref names and asks who may: ecs:RunTask
 * (StartTask) on the revision in this cluster, and iam:PassRole on the roles
 * its tasks will be given. Before a clientToken can answer anything. */
static int load_authorized(ag_api_req *rq, const char *ref, ag_taskdef **out, char *td_arn,
                           size_t arnlen)
{
    ag_taskdef *td = NULL;
    int r = ag_api_load_taskdef(rq, "taskDefinition", ref, &td);
    if (r)
        return r;
    if (strcmp(td->family, AG_ENGINE_DOCKER_FAMILY) == 0) {
        ag_taskdef_free(td);
        /* the engine would not launch it: Docker's client does */
        return ag_api_fail(rq, "InvalidParameterException",
                           "taskDefinition: %s is the definition of containers created through "
                           "the agent's Docker socket; it cannot be run",
                           ref);
    }
    ag_api_td_arn(rq->api, td->family, td->revision, td_arn, arnlen);
    char action[32];
    snprintf(action, sizeof action, "ecs:%s", rq->operation);
    if ((r = ag_api_authorize_in_cluster(rq, action, td_arn)) ||
        (r = ag_api_authorize_pass_role(rq, td->execution_role_arn)) ||
        (r = ag_api_authorize_pass_role(rq, td->task_role_arn))) {
        ag_taskdef_free(td);
        return r;
    }
    *out = td;
    return 0;
}

/* A clientToken seen within the window: the same request is answered with
 * the tasks it made (those still known); a different one is refused. */
static int answer_repeat(ag_api_tasks *t, ag_api_req *rq, const idem_entry *e,
                         const unsigned char hash[SHA256_DIGEST_LENGTH])
{
    if (!es_ct_equal(e->hash, hash, SHA256_DIGEST_LENGTH))
        return ag_api_fail(rq, INVALID,
                           "clientToken: already used within %d s for a different request",
                           AG_API_IDEM_WINDOW_S);
    es_info("RunTask: clientToken seen before: answering its %zu task(s)", e->n);
    es_jw_key(rq->w, "tasks");
    es_jw_arr(rq->w);
    for (size_t i = 0; i < e->n; i++) {
        ag_task *task = ag_engine_find_task(t->engine, e->arns[i]);
        if (task)
            ag_task_write_json(task, rq->w);
    }
    es_jw_arr_end(rq->w);
    es_jw_key(rq->w, "failures");
    es_jw_arr(rq->w);
    for (size_t i = 0; i < e->n; i++)
        if (!ag_engine_find_task(t->engine, e->arns[i]))
            write_failure(rq->w, e->arns[i], "MISSING", "the task is no longer known");
    es_jw_arr_end(rq->w);
    return 0;
}

static int run_tagged(ag_api_tasks *t, ag_api_req *rq, const launch *l, const char *ref,
                      const char *started_by, const char *group, const es_json *ovj,
                      const ag_tags *tags);
static int run_clustered(ag_api_tasks *t, ag_api_req *rq, const launch *l, const ag_taskdef *td,
                         const char *td_arn, const char *started_by, const char *group,
                         const es_json *ovj);

static int run_common(ag_api_tasks *t, ag_api_req *rq, const launch *l)
{
    const char *ref = NULL, *started_by = NULL, *group = NULL;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str(rq, "taskDefinition", true, 1, AG_TD_NAME_MAX + 128, &ref)) ||
        (r = ag_api_str(rq, "startedBy", false, 1, AG_API_STARTED_BY_MAX, &started_by)) ||
        (r = printable(rq, "startedBy", started_by)) ||
        (r = ag_api_str(rq, "group", false, 1, AG_API_GROUP_MAX, &group)) ||
        (r = printable(rq, "group", group)))
        return r;
    const es_json *ovj = es_json_get(rq->body, "overrides");
    if (ovj && ovj->type != ES_JSON_OBJECT && ovj->type != ES_JSON_NULL)
        return ag_api_fail(rq, INVALID, "overrides: must be an object");
    if (ovj && ovj->type == ES_JSON_NULL)
        ovj = NULL;

    ag_tags tags = {.n = 0};
    if ((r = ag_api_read_tags(rq, &tags)))
        return r;
    r = run_tagged(t, rq, l, ref, started_by, group, ovj, &tags);
    ag_tags_clear(&tags);
    return r;
}

/* The tasks' tags, once they exist: a store failure is logged (the tasks
 * run; their tags are missing from ListTagsForResource). */
static void tag_tasks(ag_api_req *rq, ag_task **tasks, size_t n, const ag_tags *tags)
{
    for (size_t i = 0; tags->n && i < n; i++)
        if (ag_store_tags_set(ag_api_store(rq->api), tasks[i]->arn, tags) < 0)
            es_err("%s %s: tags not stored: %s", rq->operation, tasks[i]->arn,
                   ag_store_errmsg(ag_api_store(rq->api)));
}

static int run_tagged(ag_api_tasks *t, ag_api_req *rq, const launch *l, const char *ref,
                      const char *started_by, const char *group, const es_json *ovj,
                      const ag_tags *tags)
{
    ag_api *api = rq->api;
    int r;
    ag_taskdef *td = NULL;
    char td_arn[AG_API_TD_ARN_MAX];
    if ((r = load_authorized(rq, ref, &td, td_arn, sizeof td_arn)))
        return r;

    unsigned char hash[SHA256_DIGEST_LENGTH];
    int64_t now = ag_api_now(api);
    if (l->token) {
        SHA256((const unsigned char *)rq->raw, rq->raw_len, hash);
        idem_entry *e = idem_find(t, l->token, now);
        if (e) {
            ag_taskdef_free(td);
            return answer_repeat(t, rq, e, hash);
        }
    }

    if (td->status != AG_TD_ACTIVE) {
        r = ag_api_fail(rq, CLIENT, "taskDefinition: TaskDefinition is inactive (%s:%" PRId64 ")",
                        td->family, td->revision);
        ag_taskdef_free(td);
        return r;
    }
    /* S3: Fargate below 1.3.0 cannot inject secrets */
    if (strcmp(l->launch_type, "FARGATE") == 0 && l->platform &&
        ag_api_platform_has_secrets(l->platform) == 0 && ag_taskdef_has_secrets(td)) {
        r = ag_api_fail(rq, CLIENT,
                        "platformVersion: Fargate platform version %s does not support secrets; "
                        "task definition %s:%" PRId64 " uses secrets or secretOptions, which need "
                        "platform version 1.3.0 or later (Linux)",
                        l->platform, td->family, td->revision);
        ag_taskdef_free(td);
        return r;
    }
    ag_overrides *ov = NULL;
    if (ovj) {
        ag_td_error e;
        if ((r = ag_overrides_parse(ovj, td, &ov, &e)) < 0) {
            r = r == -ENOMEM ? ag_api_fail(rq, SERVER, "out of memory")
                             : ag_api_fail(rq, e.code, "%s", e.message);
            ag_taskdef_free(td);
            return r;
        }
    }
    if (t->cluster.run) {
        ag_overrides_free(ov);
        r = run_clustered(t, rq, l, td, td_arn, started_by, group, ovj);
        ag_taskdef_free(td);
        return r;
    }
    ag_run_request req = {.td = td,
                          .overrides = ov,
                          .count = (int)l->count,
                          .started_by = started_by,
                          .group = group,
                          .launch_type = l->launch_type};
    ag_task *tasks[AG_ENGINE_RUN_MAX];
    r = ag_engine_run_task(t->engine, &req, tasks); /* owns td and ov from here */
    if (r == -ENOSPC) {
        es_jw_key(rq->w, "tasks");
        es_jw_arr(rq->w);
        es_jw_arr_end(rq->w);
        es_jw_key(rq->w, "failures");
        es_jw_arr(rq->w);
        char detail[128];
        snprintf(detail, sizeof detail, "this agent holds its maximum of %d tasks",
                 AG_ENGINE_TASKS_MAX);
        for (int64_t i = 0; i < l->count; i++)
            write_failure(rq->w, td_arn, "RESOURCE:TASKS", detail);
        es_jw_arr_end(rq->w);
        return 0;
    }
    if (r < 0) {
        /* -EIO: the store did not take the task's first row (a full disk, say) */
        const char *why = r == -ENOMEM ? "out of memory"
                          : r == -EIO  ? ag_api_store_errmsg(rq->api)
                                       : strerror(-r);
        es_err("%s: the engine refused the launch: %s", rq->operation, why);
        return ag_api_fail(rq, SERVER,
                           "taskDefinition: the task could not be created: the state store "
                           "failed: %s",
                           why);
    }
    es_info("%s %s: %" PRId64 " task(s) started by %s (launch type %s)", rq->operation, td_arn,
            l->count, rq->principal, l->launch_type);
    tag_tasks(rq, tasks, (size_t)l->count, tags);
    if (l->token)
        idem_add(t, l->token, hash, now, tasks, (size_t)l->count);
    write_task_list(rq, tasks, (size_t)l->count);
    es_jw_key(rq->w, "failures");
    es_jw_arr(rq->w);
    es_jw_arr_end(rq->w);
    return 0;
}

/* A task's reservation as placement counts it: the task-level figure when
 * it is a number, else the containers' sum. */
static int64_t reservation(const char *task_level, const ag_taskdef *td, bool memory);

int64_t ag_api_td_reservation(const ag_taskdef *td, bool memory)
{
    return reservation(memory ? td->memory : td->cpu, td, memory);
}

static int64_t reservation(const char *task_level, const ag_taskdef *td, bool memory)
{
    if (task_level && *task_level) {
        char *end = NULL;
        long long v = strtoll(task_level, &end, 10);
        if (end && *end == '\0' && v >= 0)
            return (int64_t)v;
    }
    int64_t sum = 0;
    for (size_t i = 0; i < td->n_containers; i++) {
        const ag_container_def *c = &td->containers[i];
        if (memory ? c->has_memory : c->has_cpu)
            sum += memory ? c->memory : c->cpu;
    }
    return sum;
}

/* RunTask in a cluster: the leader places the tasks (agent/cluster_tasks.c);
 * the answer comes once it has. clientToken and tags are this host's alone
 * (not kept for a placed run). */
static int run_clustered(ag_api_tasks *t, ag_api_req *rq, const launch *l, const ag_taskdef *td,
                         const char *td_arn, const char *started_by, const char *group,
                         const es_json *ovj)
{
    const es_json *strategies = es_json_get(rq->body, "placementStrategy");
    const es_json *constraints = es_json_get(rq->body, "placementConstraints");
    if (strategies && strategies->type == ES_JSON_NULL)
        strategies = NULL;
    if (constraints && constraints->type == ES_JSON_NULL)
        constraints = NULL;
    if ((strategies && strategies->type != ES_JSON_ARRAY) ||
        (constraints && constraints->type != ES_JSON_ARRAY))
        return ag_api_fail(rq, INVALID,
                           "placementStrategy and placementConstraints: must be lists");
    char grp[AG_API_GROUP_MAX + 16];
    if (!group)
        snprintf(grp, sizeof grp, "family:%s", td->family);
    es_buf ov;
    es_buf_init(&ov, AG_API_BODY_MAX);
    if (ovj) {
        es_jw w;
        es_jw_init(&w, &ov);
        es_jw_value(&w, ovj);
        if (es_jw_finish(&w) < 0) {
            es_buf_free(&ov);
            return ag_api_fail(rq, INVALID, "overrides: too large");
        }
    }
    ag_api_run_args a = {.family = td->family,
                         .revision = td->revision,
                         .cpu = reservation(td->cpu, td, false),
                         .memory = reservation(td->memory, td, true),
                         .count = l->count,
                         .group = group ? group : grp,
                         .started_by = started_by,
                         .launch_type = l->launch_type,
                         .td_arn = td_arn,
                         .overrides = ovj ? ov.data : NULL,
                         .overrides_len = ovj ? ov.len : 0,
                         .strategies = strategies,
                         .constraints = constraints,
                         .principal = rq->principal};
    aw_listener_reply *reply = rq->call ? aw_listener_defer(rq->call) : NULL;
    if (!reply) {
        es_buf_free(&ov);
        return ag_api_fail(rq, SERVER, "the launch cannot wait for the cluster here");
    }
    char why[300] = "";
    int r = t->cluster.run(t->cluster.arg, &a, reply, why, sizeof why);
    es_buf_free(&ov);
    if (r < 0)
        ag_api_reply_error(rq->api, reply, r == -EINVAL ? INVALID : SERVER, "%s", why);
    return AW_LISTENER_LATER;
}

static int op_run_task(void *arg, ag_api_req *rq)
{
    launch l = {.count = 1, .launch_type = "EC2"};
    int r;
    if ((r = ag_api_int(rq, "count", 1, AG_ENGINE_RUN_MAX, &l.count)) ||
        (r = ag_api_str(rq, "launchType", false, 1, 16, &l.launch_type)) ||
        (r = ag_api_str(rq, "platformVersion", false, 1, 32, &l.platform)) ||
        (r = ag_api_str(rq, "clientToken", false, 1, AG_API_CLIENT_TOKEN_MAX, &l.token)) ||
        (r = printable(rq, "clientToken", l.token)))
        return r;
    if (strcmp(l.launch_type, "EC2") != 0 && strcmp(l.launch_type, "EXTERNAL") != 0 &&
        strcmp(l.launch_type, "FARGATE") != 0)
        return ag_api_fail(rq, INVALID, "launchType: must be one of EC2, EXTERNAL, FARGATE");
    if (l.platform) {
        if (strcmp(l.launch_type, "FARGATE") != 0)
            return ag_api_fail(rq, INVALID,
                               "platformVersion: only the FARGATE launch type takes a platform "
                               "version (launchType is %s)",
                               l.launch_type);
        if (ag_api_platform_has_secrets(l.platform) < 0)
            return ag_api_fail(rq, INVALID,
                               "platformVersion: must be LATEST or MAJOR.MINOR.PATCH (e.g. 1.4.0)");
    }
    return run_common(arg, rq, &l);
}

static int op_start_task(void *arg, ag_api_req *rq)
{
    const es_json *ci = NULL;
    int r = ag_api_str_list(rq, "containerInstances", true, 1, AG_ENGINE_RUN_MAX,
                            AG_API_TASK_REF_MAX, &ci);
    if (r)
        return r;
    launch l = {.count = (int64_t)ci->u.array.n, .launch_type = "EC2"};
    return run_common(arg, rq, &l);
}

/* ----------------------------------------------------------- stopping */

/* The ARN a task reference names, for the authorisation: the known task's,
 * or one made from an ID (ECS accepts either), or the reference as given. */
static const char *task_arn(ag_api_req *rq, const ag_task *known, const char *ref, char *buf,
                            size_t buflen)
{
    if (known)
        return known->arn;
    if (strncmp(ref, "arn:", 4) == 0)
        return ref;
    snprintf(buf, buflen, "arn:aws:ecs:%s:%s:task/%s/%s", ag_api_region(rq->api),
             ag_api_account(rq->api), ag_api_cluster(rq->api), ref);
    return buf;
}

static int op_stop_task(void *arg, ag_api_req *rq)
{
    ag_api_tasks *t = arg;
    const char *task = NULL, *reason = NULL;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str(rq, "task", true, 1, AG_API_TASK_REF_MAX, &task)) ||
        (r = ag_api_str(rq, "reason", false, 0, AG_API_STOP_REASON_MAX, &reason)))
        return r;
    /* the task's ARN as ECS names it (the engine finds by ID or ARN) */
    char buf[TASK_ARN_MAX];
    ag_task *known = ag_engine_find_task(t->engine, task);
    const char *carn = !known && t->cluster.run ? t->cluster.task_arn(t->cluster.arg, task) : NULL;
    if ((r = ag_api_authorize_in_cluster(rq, "ecs:StopTask",
                                         carn ? carn : task_arn(rq, known, task, buf, sizeof buf))))
        return r;
    if (carn) {
        /* another host runs it: its agent stops it once etcd holds the stop */
        aw_listener_reply *reply = rq->call ? aw_listener_defer(rq->call) : NULL;
        if (!reply)
            return ag_api_fail(rq, SERVER, "the stop cannot wait for the cluster here");
        es_info("StopTask %s by %s (through the cluster)", carn, rq->principal);
        r = t->cluster.stop(t->cluster.arg, task,
                            reason && *reason ? reason : "Task stopped by user", reply);
        if (r < 0)
            ag_api_reply_error(rq->api, reply, r == -ENOENT ? INVALID : SERVER, "%s",
                               r == -ENOENT ? "task: The referenced task was not found."
                                            : "task: the cluster (etcd) cannot be reached");
        return AW_LISTENER_LATER;
    }
    ag_task *out = NULL;
    r = ag_engine_stop_task(t->engine, task, AG_STOP_USER_INITIATED,
                            reason && *reason ? reason : "Task stopped by user", &out);
    if (r == -ENOENT)
        return ag_api_fail(rq, INVALID, "task: The referenced task was not found.");
    if (r < 0) {
        es_err("StopTask: %s", strerror(-r));
        return ag_api_fail(rq, SERVER, "task: the stop could not be recorded");
    }
    es_info("StopTask %s by %s", out->arn, rq->principal);
    es_jw_key(rq->w, "task");
    ag_task_write_json(out, rq->w);
    return 0;
}

/* ------------------------------------------------------------ reading */

/* The tasks refs name, as DescribeTasks finds them: this host's engine's,
 * and in a cluster the cluster's record (carn[i] its ARN, else NULL). */
static void find_described(ag_api_tasks *t, const char *const *refs, size_t n, ag_task **found,
                           const char **carn)
{
    for (size_t i = 0; i < n; i++) {
        found[i] = ag_engine_find_task(t->engine, refs[i]);
        carn[i] = t->cluster.run ? t->cluster.task_arn(t->cluster.arg, refs[i]) : NULL;
    }
}

/* DescribeTasks' members, tasks and failures, for what find_described found. */
static void write_described(ag_api_tasks *t, const char *const *refs, size_t n,
                            ag_task *const *found, const char *const *carn, es_jw *w)
{
    es_jw_key(w, "tasks");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        /* in a cluster, the cluster's record (with its containerInstanceArn)
         * for every task it knows, this host's own included */
        if (carn[i]) {
            bool dup = false;
            for (size_t j = 0; j < i && !dup; j++)
                dup = carn[j] && strcmp(refs[j], refs[i]) == 0;
            if (!dup)
                t->cluster.write_task(t->cluster.arg, refs[i], w);
            continue;
        }
        if (!found[i])
            continue;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = found[j] == found[i];
        if (!dup)
            ag_task_write_json(found[i], w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "failures");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        if (!found[i] && !carn[i])
            write_failure(w, refs[i], "MISSING", NULL);
    es_jw_arr_end(w);
}

int ag_api_tasks_write_described(void *arg, const char *const *refs, size_t n, es_jw *w)
{
    ag_api_tasks *t = arg;
    if (n > AG_API_DESCRIBE_MAX)
        return -EINVAL;
    ag_task *found[AG_API_DESCRIBE_MAX];
    const char *carn[AG_API_DESCRIBE_MAX];
    find_described(t, refs, n, found, carn);
    write_described(t, refs, n, found, carn, w);
    return 0;
}

static int op_describe_tasks(void *arg, ag_api_req *rq)
{
    ag_api_tasks *t = arg;
    const es_json *list = NULL, *include = NULL;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str_list(rq, "tasks", true, 1, AG_API_DESCRIBE_MAX, AG_API_TASK_REF_MAX,
                             &list)) ||
        (r = ag_api_str_list(rq, "include", false, 0, 1, 16, &include)))
        return r;
    for (size_t i = 0; include && i < include->u.array.n; i++)
        if (strcmp(include->u.array.items[i]->u.string.s, "TAGS") != 0)
            return ag_api_fail(rq, INVALID, "include[%zu]: must be TAGS", i);
    size_t n = list->u.array.n;
    const char *refs[AG_API_DESCRIBE_MAX];
    ag_task *found[AG_API_DESCRIBE_MAX];
    const char *carn[AG_API_DESCRIBE_MAX];
    bool local = true; /* every task found here, none the cluster's */
    for (size_t i = 0; i < n; i++)
        refs[i] = list->u.array.items[i]->u.string.s;
    find_described(t, refs, n, found, carn);
    for (size_t i = 0; i < n; i++) {
        local = local && found[i] && !carn[i];
        /* every task asked for, found or not (a refusal must not tell which exist) */
        char buf[TASK_ARN_MAX];
        if ((r = ag_api_authorize_in_cluster(
                 rq, "ecs:DescribeTasks",
                 carn[i] ? carn[i] : task_arn(rq, found[i], refs[i], buf, sizeof buf))))
            return r;
    }
    /* a task on its way to RUNNING or STOPPED: the answer waits for its
     * move, briefly (agent/api/task_waits.h) */
    if (local && (r = ag_task_waits_hold(t->waits, rq->call, refs, found, n)) != 0)
        return r;
    write_described(t, refs, n, found, carn, rq->w);
    return 0;
}

typedef struct list_walk {
    const char *family, *started_by, *group, *launch_type;
    int desired; /* -1: none matches (PENDING) */
    const char *after;
    bool passed; /* the token's task seen */
    size_t want;
    char (*ids)[AG_TASK_ID_HEX + 1];
    char **arns;
    bool nomem;
    const ag_api_tasks_cluster *skip_cluster; /* the cluster's tasks, listed before */
    size_t n;
} list_walk;

static int list_one(list_walk *lw, const ag_api_cluster_task *task);

static int list_fn(void *arg, ag_task *task)
{
    list_walk *lw = arg;
    if (lw->skip_cluster && lw->skip_cluster->task_arn(lw->skip_cluster->arg, task->id))
        return 0; /* listed from the cluster already */
    ag_api_cluster_task ct = {.id = task->id,
                              .arn = task->arn,
                              .family = task->family,
                              .started_by = task->started_by,
                              .group = task->group,
                              .launch_type = task->launch_type,
                              .desired_running = task->desired_status == AG_TASK_RUNNING};
    return list_one(arg, &ct);
}

static int list_cluster_fn(void *arg, const ag_api_cluster_task *task)
{
    return list_one(arg, task);
}

static int list_one(list_walk *lw, const ag_api_cluster_task *task)
{
    if (lw->after && !lw->passed) {
        if (strcmp(task->id, lw->after) == 0)
            lw->passed = true;
        return 0;
    }
    if (lw->desired < 0 || (lw->desired == AG_TASK_RUNNING) != task->desired_running)
        return 0;
    if (lw->family && strcmp(task->family, lw->family) != 0)
        return 0;
    if (lw->started_by && (!task->started_by || strcmp(task->started_by, lw->started_by) != 0))
        return 0;
    if (lw->group && (!task->group || strcmp(task->group, lw->group) != 0))
        return 0;
    if (lw->launch_type && (!task->launch_type || strcmp(task->launch_type, lw->launch_type) != 0))
        return 0;
    snprintf(lw->ids[lw->n], sizeof lw->ids[lw->n], "%s", task->id);
    /* copied: a cluster task's ARN is made for the visit only */
    if (!(lw->arns[lw->n] = es_strdup(task->arn))) {
        lw->nomem = true;
        return 1;
    }
    lw->n++;
    return lw->n == lw->want;
}

static void list_walk_free(list_walk *lw)
{
    for (size_t i = 0; i < lw->n; i++)
        es_free(lw->arns[i]);
    es_free(lw->ids);
    es_free(lw->arns);
}

static int op_list_tasks(void *arg, ag_api_req *rq)
{
    ag_api_tasks *t = arg;
    const char *family = NULL, *started_by = NULL, *service = NULL, *desired = "RUNNING",
               *launch_type = NULL, *instance = NULL, *tok = NULL;
    int64_t max = AG_API_PAGE_MAX;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str(rq, "family", false, 1, AG_TD_NAME_MAX, &family)) ||
        (r = ag_api_str(rq, "startedBy", false, 1, AG_API_STARTED_BY_MAX, &started_by)) ||
        (r = ag_api_str(rq, "serviceName", false, 1, AG_API_GROUP_MAX, &service)) ||
        (r = ag_api_str(rq, "desiredStatus", false, 1, 16, &desired)) ||
        (r = ag_api_str(rq, "launchType", false, 1, 16, &launch_type)) ||
        (r = ag_api_str(rq, "containerInstance", false, 1, AG_API_TASK_REF_MAX, &instance)) ||
        (r = ag_api_int(rq, "maxResults", 1, AG_API_PAGE_MAX, &max)) ||
        (r = ag_api_str(rq, "nextToken", false, 1, AG_API_TOKEN_MAX, &tok)))
        return r;
    if (started_by && (family || service))
        return ag_api_fail(rq, INVALID,
                           "startedBy: cannot be combined with family or serviceName (ECS lists "
                           "by one of them)");
    int want_desired;
    if (strcmp(desired, "RUNNING") == 0)
        want_desired = AG_TASK_RUNNING;
    else if (strcmp(desired, "STOPPED") == 0)
        want_desired = AG_TASK_STOPPED;
    else if (strcmp(desired, "PENDING") == 0)
        want_desired = -1; /* ECS never sets a desired status of PENDING */
    else
        return ag_api_fail(rq, INVALID, "desiredStatus: must be one of RUNNING, PENDING, STOPPED");
    if (launch_type && strcmp(launch_type, "EC2") != 0 && strcmp(launch_type, "EXTERNAL") != 0 &&
        strcmp(launch_type, "FARGATE") != 0)
        return ag_api_fail(rq, INVALID, "launchType: must be one of EC2, EXTERNAL, FARGATE");
    char after[AG_TASK_ID_HEX + 1] = "";
    if (tok &&
        (ag_api_token_parse(tok, after, sizeof after) < 0 || strlen(after) != AG_TASK_ID_HEX))
        return ag_api_fail(rq, INVALID, "nextToken: not a token this API handed out");
    if ((r = ag_api_authorize_in_cluster(rq, "ecs:ListTasks", "*")))
        return r;
    char group[AG_API_GROUP_MAX + 16];
    if (service)
        snprintf(group, sizeof group, "service:%s", service);
    list_walk lw = {.family = family,
                    .started_by = started_by,
                    .group = service ? group : NULL,
                    .launch_type = launch_type,
                    .desired = want_desired,
                    .after = after[0] ? after : NULL,
                    .want = (size_t)max + 1};
    lw.ids = es_calloc(lw.want, sizeof *lw.ids);
    lw.arns = es_calloc(lw.want, sizeof *lw.arns);
    if (!lw.ids || !lw.arns) {
        es_free(lw.ids);
        es_free(lw.arns);
        return ag_api_fail(rq, SERVER, "out of memory");
    }
    if (t->cluster.run) {
        /* the cluster's tasks, then this host's own that etcd does not hold
         * (its services' tasks: services are still this host's) */
        t->cluster.foreach_task(t->cluster.arg, list_cluster_fn, &lw);
        lw.skip_cluster = &t->cluster;
        if (lw.n < lw.want)
            ag_engine_foreach_task(t->engine, list_fn, &lw);
    } else {
        ag_engine_foreach_task(t->engine, list_fn, &lw);
    }
    if (lw.nomem) {
        list_walk_free(&lw);
        return ag_api_fail(rq, SERVER, "out of memory");
    }
    if (lw.after && !lw.passed) {
        list_walk_free(&lw);
        return ag_api_fail(rq, INVALID,
                           "nextToken: the task it continues from is gone; list again");
    }
    size_t pmax = (size_t)max;
    bool more = lw.n > pmax;
    size_t count = more ? pmax : lw.n;
    es_jw_key(rq->w, "taskArns");
    es_jw_arr(rq->w);
    for (size_t i = 0; i < count; i++)
        es_jw_str(rq->w, lw.arns[i]);
    es_jw_arr_end(rq->w);
    if (more && count) {
        char next[AG_API_TOKEN_MAX + 1];
        if (ag_api_token_make(lw.ids[count - 1], next, sizeof next) == 0)
            es_jw_kstr(rq->w, "nextToken", next);
    }
    list_walk_free(&lw);
    return 0;
}

/* ------------------------------------------------------------- wiring */

static void counts(void *arg, size_t by[AG_TASK_STATUS_COUNT])
{
    ag_engine_counts c;
    ag_engine_get_counts(arg, &c);
    memcpy(by, c.by_status, sizeof c.by_status);
}

int ag_api_tasks_attach(ag_api *api, ag_engine *engine, ag_api_tasks **out)
{
    ag_api_tasks *t = es_calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->api = api;
    t->engine = engine;
    t->idem = es_calloc(AG_API_IDEM_MAX, sizeof *t->idem);
    if (!t->idem) {
        es_free(t);
        return -ENOMEM;
    }
    if (ag_api_add_op(api, "RunTask", op_run_task, t) ||
        ag_api_add_op(api, "StartTask", op_start_task, t) ||
        ag_api_add_op(api, "StopTask", op_stop_task, t) ||
        ag_api_add_op(api, "DescribeTasks", op_describe_tasks, t) ||
        ag_api_add_op(api, "ListTasks", op_list_tasks, t)) {
        ag_api_tasks_free(t);
        return -ENOSPC;
    }
    ag_api_set_counts(api, counts, engine);
    *out = t;
    return 0;
}

void ag_api_tasks_set_cluster(ag_api_tasks *t, const ag_api_tasks_cluster *c)
{
    t->cluster = *c;
}

void ag_api_tasks_set_waits(ag_api_tasks *t, ag_task_waits *w)
{
    t->waits = w;
}

void ag_api_tasks_free(ag_api_tasks *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < AG_API_IDEM_MAX; i++)
        idem_clear(&t->idem[i]);
    es_free(t->idem);
    es_free(t);
}
