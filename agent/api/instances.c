#include "agent/api/instances.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "cluster/placement.h"
#include "common/log.h"

#define INVALID "InvalidParameterException"
#define SERVER "ServerException"
#define CLIENT "ClientException"
#define ANSWER_MAX (4u << 20)

struct ag_api_instances {
    ag_api *api;
    cl_member *member;
};

/* ---- the ECS shape ---------------------------------------------------- */

static void write_int_resource(es_jw *w, const char *name, int64_t v)
{
    es_jw_obj(w);
    es_jw_kstr(w, "name", name);
    es_jw_kstr(w, "type", "INTEGER");
    es_jw_key(w, "doubleValue");
    es_jw_double(w, 0.0);
    es_jw_kint(w, "longValue", 0);
    es_jw_kint(w, "integerValue", v);
    es_jw_obj_end(w);
}

static void write_ports(es_jw *w, const char *name, bool reserved)
{
    static const char *const ports[] = AG_API_RESERVED_PORTS;
    es_jw_obj(w);
    es_jw_kstr(w, "name", name);
    es_jw_kstr(w, "type", "STRINGSET");
    es_jw_key(w, "doubleValue");
    es_jw_double(w, 0.0);
    es_jw_kint(w, "longValue", 0);
    es_jw_kint(w, "integerValue", 0);
    es_jw_key(w, "stringSetValue");
    es_jw_arr(w);
    for (size_t i = 0; reserved && i < sizeof ports / sizeof *ports; i++)
        es_jw_str(w, ports[i]);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
}

/* CPU, MEMORY, PORTS (ECS's reserved ones), PORTS_UDP: placement (next)
 * subtracts its tasks' reservations from remainingResources; until then
 * nothing is reserved by the cluster's scheduler. */
static void write_resources(es_jw *w, const char *key, const cl_instance *in)
{
    es_jw_key(w, key);
    es_jw_arr(w);
    write_int_resource(w, "CPU", in->cpu);
    write_int_resource(w, "MEMORY", in->memory);
    write_ports(w, "PORTS", true);
    write_ports(w, "PORTS_UDP", false);
    es_jw_arr_end(w);
}

void ag_api_write_instance(es_jw *w, const cl_instance *in, const size_t *tasks, bool leader)
{
    es_jw_obj(w);
    es_jw_kstr(w, "containerInstanceArn", in->arn);
    es_jw_kstr(w, "ec2InstanceId", in->host_id);
    es_jw_kint(w, "version", in->mod_revision > 0 ? in->mod_revision : 1);
    es_jw_key(w, "versionInfo");
    es_jw_obj(w);
    es_jw_kstr(w, "agentVersion", in->agent_version);
    es_jw_kstr(w, "agentHash", "");
    es_jw_obj_end(w);
    write_resources(w, "remainingResources", in);
    write_resources(w, "registeredResources", in);
    es_jw_kstr(w, "status", in->status);
    es_jw_kbool(w, "agentConnected", in->agent_connected);
    int64_t running = in->running_tasks, pending = in->pending_tasks;
    if (tasks) {
        running = (int64_t)tasks[AG_TASK_RUNNING];
        pending = (int64_t)(tasks[AG_TASK_PROVISIONING] + tasks[AG_TASK_PENDING] +
                            tasks[AG_TASK_ACTIVATING]);
    }
    es_jw_kint(w, "runningTasksCount", running);
    es_jw_kint(w, "pendingTasksCount", pending);
    es_jw_key(w, "attributes");
    es_jw_arr(w);
    for (size_t i = 0; i < in->n_attrs; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "name", in->attrs[i].name);
        es_jw_kstr(w, "value", in->attrs[i].value);
        es_jw_obj_end(w);
    }
    if (leader) {
        es_jw_obj(w);
        es_jw_kstr(w, "name", AG_API_LEADER_ATTR);
        es_jw_kstr(w, "value", "true");
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_kint(w, "registeredAt", in->registered_at);
    es_jw_key(w, "attachments");
    es_jw_arr(w);
    es_jw_arr_end(w);
    es_jw_key(w, "tags");
    es_jw_arr(w);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
}

static void write_one(ag_api_instances *x, es_jw *w, const cl_instance *in)
{
    size_t by[AG_TASK_STATUS_COUNT];
    bool self = strcmp(in->id, cl_member_self(x->member)->id) == 0;
    if (self)
        ag_api_task_counts(x->api, by);
    /* alone there is nothing to elect: the answer stays as it was */
    ag_api_write_instance(w, in, self ? by : NULL,
                          cl_member_is_clustered(x->member) &&
                              strcmp(in->id, cl_member_leader(x->member)) == 0);
}

/* An ARN of the configured cluster's form for a reference the view lacks. */
static void missing_arn(ag_api *api, const char *ref, char *out, size_t outlen)
{
    if (strncmp(ref, "arn:", 4) == 0)
        snprintf(out, outlen, "%s", ref);
    else
        snprintf(out, outlen, "arn:aws:ecs:%s:%s:container-instance/%s/%s", ag_api_region(api),
                 ag_api_account(api), ag_api_cluster(api), ref);
}

static void write_failure(es_jw *w, const char *arn, const char *reason, const char *detail)
{
    es_jw_obj(w);
    es_jw_kstr(w, "arn", arn);
    es_jw_kstr(w, "reason", reason);
    if (detail)
        es_jw_kstr(w, "detail", detail);
    es_jw_obj_end(w);
}

/* ---- ListContainerInstances ------------------------------------------- */

static void list_arns(ag_api_instances *x, ag_api_req *rq, const char *status,
                      const cl_pl_expr *expr, const char *after, int64_t max);

static int op_list(void *arg, ag_api_req *rq)
{
    ag_api_instances *x = arg;
    const char *status = NULL, *filter = NULL, *tok = NULL;
    int64_t max = AG_API_PAGE_MAX;
    int r;
    if ((r = ag_api_check_cluster(rq)) || (r = ag_api_str(rq, "status", false, 1, 32, &status)) ||
        (r = ag_api_str(rq, "filter", false, 1, CL_PL_EXPR_MAX, &filter)) ||
        (r = ag_api_int(rq, "maxResults", 1, AG_API_PAGE_MAX, &max)) ||
        (r = ag_api_str(rq, "nextToken", false, 1, AG_API_TOKEN_MAX, &tok)))
        return r;
    static const char *const statuses[] = {"ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING",
                                           "REGISTRATION_FAILED"};
    bool known = !status;
    for (size_t i = 0; status && i < sizeof statuses / sizeof *statuses; i++)
        known |= strcmp(status, statuses[i]) == 0;
    if (!known)
        return ag_api_fail(rq, INVALID,
                           "status: must be one of ACTIVE, DRAINING, REGISTERING, DEREGISTERING, "
                           "REGISTRATION_FAILED");
    char after[CL_INSTANCE_ID_MAX + 1] = "";
    if (tok && (ag_api_token_parse(tok, after, sizeof after) < 0 || !cl_instance_id_ok(after)))
        return ag_api_fail(rq, INVALID, "nextToken: not a token this API handed out");
    if ((r = ag_api_authorize(rq, "ecs:ListContainerInstances", ag_api_cluster_arn(rq->api), NULL,
                              0)))
        return r;
    cl_pl_expr *expr = NULL; /* the cluster query language, as memberOf takes it */
    char why[160];
    if (filter && (r = cl_pl_expr_compile(filter, &expr, why, sizeof why)) < 0)
        return ag_api_fail(rq, r == -ENOMEM ? SERVER : INVALID, "filter: %s", why);
    list_arns(x, rq, status, expr, after, max);
    cl_pl_expr_free(expr);
    return 0;
}

/* The page: in the view's ID order from after, the ones status and expr keep. */
static void list_arns(ag_api_instances *x, ag_api_req *rq, const char *status,
                      const cl_pl_expr *expr, const char *after, int64_t max)
{
    size_t n, listed = 0;
    const cl_instance *v = cl_member_instances(x->member, &n);
    const char *last = NULL;
    bool more = false;
    es_jw_key(rq->w, "containerInstanceArns");
    es_jw_arr(rq->w);
    for (size_t i = 0; i < n; i++) {
        /* the view is in ID order: a token is the last ID handed out */
        if ((after[0] && strcmp(v[i].id, after) <= 0) || (status && strcmp(v[i].status, status)) ||
            (expr && !cl_pl_expr_eval(expr, &v[i])))
            continue;
        if (listed == (size_t)max) {
            more = true;
            break;
        }
        es_jw_str(rq->w, v[i].arn);
        last = v[i].id;
        listed++;
    }
    es_jw_arr_end(rq->w);
    char next[AG_API_TOKEN_MAX + 1];
    if (more && last && ag_api_token_make(last, next, sizeof next) == 0)
        es_jw_kstr(rq->w, "nextToken", next);
}

/* ---- DescribeContainerInstances --------------------------------------- */

static int op_describe(void *arg, ag_api_req *rq)
{
    ag_api_instances *x = arg;
    const es_json *refs = NULL, *include = NULL;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str_list(rq, "containerInstances", true, 1, AG_API_DESCRIBE_MAX,
                             CL_INSTANCE_ARN_MAX, &refs)) ||
        (r = ag_api_str_list(rq, "include", false, 0, 2, 32, &include)))
        return r;
    for (size_t i = 0; include && i < include->u.array.n; i++) {
        const char *s = include->u.array.items[i]->u.string.s;
        if (strcmp(s, "TAGS") != 0 && strcmp(s, "CONTAINER_INSTANCE_HEALTH") != 0)
            return ag_api_fail(rq, INVALID,
                               "include[]: must be one of TAGS, CONTAINER_INSTANCE_HEALTH");
    }
    /* each instance asked for: its ARN, or the ARN it would have */
    for (size_t i = 0; i < refs->u.array.n; i++) {
        const char *ref = refs->u.array.items[i]->u.string.s;
        const cl_instance *in = cl_member_find(x->member, ref);
        char arn[CL_INSTANCE_ARN_MAX + 256];
        missing_arn(rq->api, ref, arn, sizeof arn);
        if ((r = ag_api_authorize_in_cluster(rq, "ecs:DescribeContainerInstances",
                                             in ? in->arn : arn)))
            return r;
    }
    es_jw *w = rq->w;
    es_jw_key(w, "containerInstances");
    es_jw_arr(w);
    for (size_t i = 0; i < refs->u.array.n; i++) {
        const cl_instance *in = cl_member_find(x->member, refs->u.array.items[i]->u.string.s);
        if (in)
            write_one(x, w, in);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "failures");
    es_jw_arr(w);
    for (size_t i = 0; i < refs->u.array.n; i++) {
        const char *ref = refs->u.array.items[i]->u.string.s;
        if (cl_member_find(x->member, ref))
            continue;
        char arn[CL_INSTANCE_ARN_MAX + 256];
        missing_arn(rq->api, ref, arn, sizeof arn);
        write_failure(w, arn, "MISSING", NULL);
    }
    es_jw_arr_end(w);
    return 0;
}

/* ---- UpdateContainerInstancesState ------------------------------------ */

/* One call's instances: each written (now or when etcd answers), then the
 * answer. */
typedef struct update_item {
    char ref[CL_INSTANCE_ARN_MAX + 1];
    bool done, ok;
    cl_instance rec;
    char detail[96];
} update_item;

typedef struct update_call {
    ag_api_instances *x;
    aw_listener_reply *reply; /* NULL: answered now */
    update_item items[AG_API_UPDATE_INSTANCES_MAX];
    size_t n, waiting;
} update_call;

static void write_update_answer(update_call *u, es_jw *w)
{
    es_jw_key(w, "containerInstances");
    es_jw_arr(w);
    for (size_t i = 0; i < u->n; i++)
        if (u->items[i].ok)
            write_one(u->x, w, &u->items[i].rec);
    es_jw_arr_end(w);
    es_jw_key(w, "failures");
    es_jw_arr(w);
    for (size_t i = 0; i < u->n; i++) {
        if (u->items[i].ok)
            continue;
        char arn[CL_INSTANCE_ARN_MAX + 256];
        missing_arn(u->x->api, u->items[i].ref, arn, sizeof arn);
        write_failure(w, arn, u->items[i].detail[0] ? "UPDATE_FAILED" : "MISSING",
                      u->items[i].detail[0] ? u->items[i].detail : NULL);
    }
    es_jw_arr_end(w);
}

static void answer_later(update_call *u)
{
    es_buf out;
    es_buf_init(&out, ANSWER_MAX);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    write_update_answer(u, &w);
    es_jw_obj_end(&w);
    if (es_jw_finish(&w) < 0)
        ag_api_reply_error(u->x->api, u->reply, SERVER, "the answer is too large to send");
    else
        aw_listener_reply_ok(u->reply, out.data, out.len);
    es_buf_free(&out);
    es_free(u);
}

typedef struct update_ref {
    update_call *u;
    size_t i;
} update_ref;

static void on_updated(void *arg, int err, const cl_instance *rec)
{
    update_ref *ref = arg;
    update_call *u = ref->u;
    update_item *it = &u->items[ref->i];
    es_free(ref);
    it->done = true;
    if (err == 0) {
        it->ok = true;
        it->rec = *rec;
    } else {
        snprintf(it->detail, sizeof it->detail, "%s",
                 err == -ENOENT  ? "the instance left the cluster"
                 : err == -EBUSY ? "the instance kept changing: try again"
                                 : cl_etcd_strerror(err));
        if (err == -ENOENT)
            it->detail[0] = '\0'; /* MISSING */
    }
    if (--u->waiting == 0)
        answer_later(u);
}

/* Starts each write; those answered now are filled in. */
static int start_updates(update_call *u, const char *status)
{
    for (size_t i = 0; i < u->n; i++) {
        update_item *it = &u->items[i];
        const cl_instance *in = cl_member_find(u->x->member, it->ref);
        if (!in) {
            it->done = true;
            continue;
        }
        update_ref *ref = es_calloc(1, sizeof *ref);
        if (!ref)
            return -ENOMEM;
        *ref = (update_ref){u, i};
        char id[CL_INSTANCE_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", in->id);
        u->waiting++;
        int r = cl_member_set_status(u->x->member, id, status, on_updated, ref);
        if (r == 1)
            continue;
        u->waiting--;
        es_free(ref);
        it->done = true;
        if (r == 0 && (in = cl_member_find(u->x->member, id))) {
            it->ok = true;
            it->rec = *in;
        } else if (r < 0 && r != -ENOENT) {
            snprintf(it->detail, sizeof it->detail, "%s", cl_etcd_strerror(r));
        }
    }
    return 0;
}

static int op_update(void *arg, ag_api_req *rq)
{
    ag_api_instances *x = arg;
    const es_json *refs = NULL;
    const char *status = NULL;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str_list(rq, "containerInstances", true, 1, AG_API_UPDATE_INSTANCES_MAX,
                             CL_INSTANCE_ARN_MAX, &refs)) ||
        (r = ag_api_str(rq, "status", true, 1, 32, &status)))
        return r;
    if (!cl_status_ok(status))
        return ag_api_fail(rq, INVALID, "status: must be ACTIVE or DRAINING");
    for (size_t i = 0; i < refs->u.array.n; i++) {
        const char *ref = refs->u.array.items[i]->u.string.s;
        const cl_instance *in = cl_member_find(x->member, ref);
        char arn[CL_INSTANCE_ARN_MAX + 256];
        missing_arn(rq->api, ref, arn, sizeof arn);
        if ((r = ag_api_authorize_in_cluster(rq, "ecs:UpdateContainerInstancesState",
                                             in ? in->arn : arn)))
            return r;
    }
    update_call *u = es_calloc(1, sizeof *u);
    if (!u)
        return ag_api_fail(rq, SERVER, "out of memory");
    u->x = x;
    u->n = refs->u.array.n;
    for (size_t i = 0; i < u->n; i++)
        snprintf(u->items[i].ref, sizeof u->items[i].ref, "%s", refs->u.array.items[i]->u.string.s);
    /* with etcd the answer waits for the writes: take the reply first */
    if (cl_member_is_clustered(x->member) &&
        !(rq->call && (u->reply = aw_listener_defer(rq->call)))) {
        es_free(u);
        return ag_api_fail(rq, SERVER, "the update cannot wait for etcd here");
    }
    u->waiting = 1; /* this function's own count: no answer before every write started */
    r = start_updates(u, status);
    if (u->reply) {
        if (r < 0)
            for (size_t i = 0; i < u->n; i++)
                if (!u->items[i].done)
                    snprintf(u->items[i].detail, sizeof u->items[i].detail, "out of memory");
        if (--u->waiting == 0)
            answer_later(u);
        return AW_LISTENER_LATER;
    }
    write_update_answer(u, rq->w);
    es_free(u);
    return r < 0 ? ag_api_fail(rq, SERVER, "out of memory") : 0;
}

/* ---- /metrics ---------------------------------------------------------- */

#define CLUSTER_METRIC "ecs_agent_cluster_"

/* The cluster as this agent sees it, and its talk with etcd. */
static void cluster_metrics(void *arg, ag_metrics *m)
{
    ag_api_instances *x = arg;
    size_t n;
    cl_member_instances(x->member, &n);
    cl_member_state st = cl_member_get_state(x->member);
    ag_series_set(ag_metrics_series(m, AG_METRIC_GAUGE, CLUSTER_METRIC "instances",
                                    "Container instances of the cluster in this agent's view", NULL,
                                    NULL, 0),
                  (double)n);
    ag_series_set(ag_metrics_series(m, AG_METRIC_GAUGE, CLUSTER_METRIC "registered",
                                    "1 when this instance is registered (or alone), else 0", NULL,
                                    NULL, 0),
                  st == CL_MEMBER_REGISTERED || st == CL_MEMBER_ALONE ? 1 : 0);
    ag_series_set(ag_metrics_series(m, AG_METRIC_GAUGE, CLUSTER_METRIC "leader",
                                    "1 while this agent leads the cluster (alone: 1), else 0", NULL,
                                    NULL, 0),
                  cl_member_is_leader(x->member) ? 1 : 0);
    cl_member_stats ms;
    cl_member_get_stats(x->member, &ms);
    ag_metrics_sync_counter(m, CLUSTER_METRIC "elections_total",
                            "Elections this agent won (times it became the cluster's leader)", NULL,
                            (double)ms.elections_won);
    ag_metrics_sync_counter(m, CLUSTER_METRIC "leader_changes_total",
                            "Times this agent saw a different instance become the leader", NULL,
                            (double)ms.leader_changes);
    ag_metrics_sync_counter(m, CLUSTER_METRIC "step_downs_total",
                            "Times this agent stopped leading: its lease not renewed in time", NULL,
                            (double)ms.step_downs);
    ag_metrics_sync_counter(m, CLUSTER_METRIC "registrations_total",
                            "Registrations of this instance in etcd (one per lease)", NULL,
                            (double)ms.registrations);
    ag_metrics_sync_counter(m, CLUSTER_METRIC "leases_lost_total",
                            "Leases found expired while the agent ran", NULL,
                            (double)ms.leases_lost);
    ag_metrics_sync_counter(m, CLUSTER_METRIC "keepalive_failures_total",
                            "Lease keepalives no etcd endpoint answered", NULL,
                            (double)ms.keepalive_failures);
    ag_metrics_sync_counter(m, CLUSTER_METRIC "bad_records_total",
                            "Instance records in etcd skipped as unreadable", NULL,
                            (double)ms.bad_records);
    cl_etcd_stats es;
    if (!cl_member_etcd_stats(x->member, &es))
        return;
    ag_metrics_sync_counter(m, "ecs_agent_etcd_requests_total", "Requests to etcd", NULL,
                            (double)es.requests);
    ag_metrics_sync_counter(m, "ecs_agent_etcd_failovers_total",
                            "Requests moved to the next etcd endpoint", NULL, (double)es.failovers);
    ag_metrics_sync_counter(m, "ecs_agent_etcd_failures_total",
                            "Requests no etcd endpoint answered", NULL, (double)es.failures);
}

/* ---- life ------------------------------------------------------------- */

static size_t count_instances(void *arg)
{
    ag_api_instances *x = arg;
    size_t n;
    cl_member_instances(x->member, &n);
    return n;
}

int ag_api_instances_attach(ag_api *api, cl_member *member, ag_api_instances **out)
{
    ag_api_instances *x = es_calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->api = api;
    x->member = member;
    int r;
    if ((r = ag_api_add_op(api, "ListContainerInstances", op_list, x)) < 0 ||
        (r = ag_api_add_op(api, "DescribeContainerInstances", op_describe, x)) < 0 ||
        (r = ag_api_add_op(api, "UpdateContainerInstancesState", op_update, x)) < 0) {
        es_free(x);
        return r;
    }
    ag_api_set_instances(api, count_instances, x);
    if ((r = ag_api_add_metrics_hook(api, cluster_metrics, x)) < 0) {
        es_free(x);
        return r;
    }
    *out = x;
    return 0;
}

void ag_api_instances_free(ag_api_instances *x)
{
    es_free(x);
}
