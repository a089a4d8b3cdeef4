/* services.c - see services.h. */
#include "agent/api/services.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/api/tags.h"
#include "agent/tasks/engine.h"
#include "common/alloc.h"
#include "common/log.h"

#define CLIENT "ClientException"
#define INVALID "InvalidParameterException"
#define SERVER "ServerException"
#define NOT_FOUND "ServiceNotFoundException"
#define NOT_ACTIVE "ServiceNotActiveException"
#define SERVICE_REF_MAX 2048
#define SERVICE_ARN_MAX (SERVICE_REF_MAX + 512) /* a name made an ARN */

struct ag_api_services {
    ag_api *api;
    ag_svc_sched *sched;
    ag_drift *drift;
    ag_api_services_cluster cluster; /* after_write NULL: alone */
};

void ag_api_services_set_cluster(ag_api_services *s, const ag_api_services_cluster *c)
{
    s->cluster = *c;
}

/* The answer of a write: at once alone; in a cluster once etcd holds it. */
static int answer_written(ag_api_services *s, ag_api_req *rq, const ag_service *v, bool with_tags,
                          bool creation, const ag_api_services_redo *redo)
{
    if (!s->cluster.after_write) {
        es_jw_key(rq->w, "service");
        ag_service_write_json(v, with_tags, rq->w);
        return 0;
    }
    aw_listener_reply *reply = rq->call ? aw_listener_defer(rq->call) : NULL;
    if (!reply)
        return ag_api_fail(rq, SERVER, "the answer cannot wait for the cluster here");
    if (s->cluster.after_write(s->cluster.arg, v->name, with_tags, creation, redo, reply) < 0)
        ag_api_reply_error(rq->api, reply, SERVER, "the cluster (etcd) cannot be reached");
    return AW_LISTENER_LATER;
}

/* deploymentConfiguration: the members we model; absent ones untouched. */
static int read_deploy_config(ag_api_req *rq, int *max, int *min, bool *cb, bool *rb)
{
    const es_json *dc = es_json_get(rq->body, "deploymentConfiguration");
    if (!dc)
        return 0;
    if (dc->type != ES_JSON_OBJECT)
        return ag_api_fail(rq, INVALID, "deploymentConfiguration: must be an object");
    static const char *const keys[] = {"maximumPercent", "minimumHealthyPercent"};
    int *outs[] = {max, min};
    for (size_t i = 0; i < 2; i++) {
        const es_json *v = es_json_get(dc, keys[i]);
        int64_t x;
        if (!v)
            continue;
        if (v->type != ES_JSON_NUMBER || !es_json_as_int64(v, &x) || x < 0 || x > 2000)
            return ag_api_fail(rq, INVALID,
                               "deploymentConfiguration.%s: must be an integer from 0 to 2000",
                               keys[i]);
        *outs[i] = (int)x;
    }
    const es_json *b = es_json_get(dc, "deploymentCircuitBreaker");
    if (b) {
        const es_json *e = b->type == ES_JSON_OBJECT ? es_json_get(b, "enable") : NULL;
        const es_json *r = b->type == ES_JSON_OBJECT ? es_json_get(b, "rollback") : NULL;
        if (!e || !r || e->type != ES_JSON_BOOL || r->type != ES_JSON_BOOL)
            return ag_api_fail(rq, INVALID,
                               "deploymentConfiguration.deploymentCircuitBreaker: enable and "
                               "rollback are required booleans");
        *cb = e->u.boolean;
        *rb = r->u.boolean;
    }
    return 0;
}

static int read_bool(ag_api_req *rq, const char *key, bool *out)
{
    const es_json *v = es_json_get(rq->body, key);
    if (!v)
        return 0;
    if (v->type != ES_JSON_BOOL)
        return ag_api_fail(rq, INVALID, "%s: must be a boolean", key);
    *out = v->u.boolean;
    return 0;
}

static int td_ref(ag_api_req *rq, const char *ref, char *family, int64_t *rev)
{
    char why[256];
    if (ag_api_parse_td_ref(ref, ag_api_region(rq->api), ag_api_account(rq->api), family, rev, why,
                            sizeof why) < 0)
        return ag_api_fail(rq, INVALID, "taskDefinition: %s", why);
    if (strcmp(family, AG_ENGINE_DOCKER_FAMILY) == 0) /* the engine would not launch it */
        return ag_api_fail(rq, INVALID,
                           "taskDefinition: %s is the definition of containers created through "
                           "the agent's Docker socket; it cannot be run",
                           ref);
    return 0;
}

/* A service's ARN from its name or ARN. */
static void svc_arn(ag_api_req *rq, const char *ref, char *out, size_t outlen)
{
    if (strncmp(ref, "arn:", 4) == 0)
        snprintf(out, outlen, "%s", ref);
    else
        snprintf(out, outlen, "arn:aws:ecs:%s:%s:service/%s/%s", ag_api_region(rq->api),
                 ag_api_account(rq->api), ag_api_cluster(rq->api), ref);
}

/* action on the service, in this cluster, with ecs:task-definition when
 * the request names one; then iam:PassRole on the roles the definition
 * hands to the service's tasks. A definition that cannot be loaded asks no
 * PassRole: the scheduler refuses it by name after. */
static int authorize_service(ag_api_req *rq, const char *action, const char *ref,
                             const char *td_ref_text)
{
    char arn[SERVICE_ARN_MAX];
    svc_arn(rq, ref, arn, sizeof arn);
    ag_taskdef *td = NULL;
    char td_arn[AG_API_TD_ARN_MAX] = "";
    if (td_ref_text) {
        al_error saved = *rq->err;
        if (ag_api_load_taskdef(rq, "taskDefinition", td_ref_text, &td) == 0)
            ag_api_td_arn(rq->api, td->family, td->revision, td_arn, sizeof td_arn);
        *rq->err = saved;
    }
    ag_api_cond conds[2] = {{"ecs:cluster", ag_api_cluster_arn(rq->api)},
                            {"ecs:task-definition", td_arn}};
    int r = ag_api_authorize(rq, action, arn, conds, td_arn[0] ? 2 : 1);
    if (r == 0 && td)
        r = ag_api_authorize_pass_role(rq, td->execution_role_arn);
    if (r == 0 && td)
        r = ag_api_authorize_pass_role(rq, td->task_role_arn);
    ag_taskdef_free(td);
    return r;
}

const char *ag_api_services_error_code(int rc, const char *err)
{
    switch (rc) {
    case -ENOENT:
        return strcmp(err, "TaskDefinition not found.") == 0 ? CLIENT : NOT_FOUND;
    case -ESRCH:
        return NOT_ACTIVE;
    case -EINVAL:
    case -EEXIST:
        return INVALID;
    case -ENOSPC:
        return CLIENT;
    default:
        return SERVER;
    }
}

static int sched_error(ag_api_req *rq, int rc, const char *what, const char *err)
{
    switch (rc) {
    case -ENOENT:
        if (strcmp(err, "TaskDefinition not found.") == 0)
            return ag_api_fail(rq, CLIENT, "%s", err);
        return ag_api_fail(rq, NOT_FOUND, "%s", err);
    case -ESRCH:
        return ag_api_fail(rq, NOT_ACTIVE, "%s", err);
    case -EINVAL:
    case -EEXIST:
        return ag_api_fail(rq, INVALID, "%s", err);
    case -ENOSPC:
        return ag_api_fail(rq, CLIENT, "%s", err);
    default:
        es_err("%s: %s (%s)", what, err, strerror(-rc));
        return ag_api_fail(rq, SERVER, "%s: the service could not be recorded", what);
    }
}

/* placementStrategy and placementConstraints, as RunTask takes them: the
 * cluster's leader places the service's tasks by them; a strategy or
 * constraint placement would refuse is refused here, with the reason. */
static int read_placement(ag_api_req *rq, ag_svc_placement *p)
{
    const es_json *sl = es_json_get(rq->body, "placementStrategy");
    const es_json *cl = es_json_get(rq->body, "placementConstraints");
    sl = sl && sl->type == ES_JSON_NULL ? NULL : sl;
    cl = cl && cl->type == ES_JSON_NULL ? NULL : cl;
    if ((sl && sl->type != ES_JSON_ARRAY) || (cl && cl->type != ES_JSON_ARRAY))
        return ag_api_fail(rq, INVALID,
                           "placementStrategy and placementConstraints: must be lists");
    size_t ns = sl ? es_json_len(sl) : 0, nc = cl ? es_json_len(cl) : 0;
    if (ns > CL_PL_STRATEGIES_MAX || nc > CL_PL_CONSTRAINTS_MAX)
        return ag_api_fail(rq, INVALID,
                           "placementStrategy, placementConstraints: at most %d and %d",
                           CL_PL_STRATEGIES_MAX, CL_PL_CONSTRAINTS_MAX);
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < ns; i++) {
        const es_json *o = es_json_at(sl, i);
        const char *type = o->type == ES_JSON_OBJECT ? es_json_get_str(o, "type") : NULL;
        const char *field = o->type == ES_JSON_OBJECT ? es_json_get_str(o, "field") : NULL;
        if (!type || strlen(type) >= sizeof p->strategies[i].type ||
            (field && strlen(field) >= sizeof p->strategies[i].field))
            return ag_api_fail(rq, INVALID, "placementStrategy[%zu]: type and field: not valid", i);
        snprintf(p->strategies[i].type, sizeof p->strategies[i].type, "%s", type);
        snprintf(p->strategies[i].field, sizeof p->strategies[i].field, "%s", field ? field : "");
    }
    for (size_t i = 0; i < nc; i++) {
        const es_json *o = es_json_at(cl, i);
        const char *type = o->type == ES_JSON_OBJECT ? es_json_get_str(o, "type") : NULL;
        const char *ex = o->type == ES_JSON_OBJECT ? es_json_get_str(o, "expression") : NULL;
        if (!type || strlen(type) >= sizeof p->constraints[i].type ||
            (ex && strlen(ex) > CL_PL_EXPR_MAX))
            return ag_api_fail(rq, INVALID,
                               "placementConstraints[%zu]: a type, and an expression of at most "
                               "%d bytes",
                               i, CL_PL_EXPR_MAX);
        snprintf(p->constraints[i].type, sizeof p->constraints[i].type, "%s", type);
        snprintf(p->constraints[i].expression, sizeof p->constraints[i].expression, "%s",
                 ex ? ex : "");
    }
    p->n_strategies = ns;
    p->n_constraints = nc;
    cl_pl_strategy st[CL_PL_STRATEGIES_MAX];
    cl_pl_constraint ct[CL_PL_CONSTRAINTS_MAX];
    char why[200];
    int r = cl_tk_placement_compile(p->strategies, ns, p->constraints, nc, st, ct, why, sizeof why);
    if (r == -ENOMEM)
        return ag_api_fail(rq, SERVER, "out of memory");
    if (r < 0)
        return ag_api_fail(rq, INVALID, "placement: %s", why);
    for (size_t i = 0; i < nc; i++)
        cl_pl_constraint_clear(&ct[i]);
    return 0;
}

static int op_create(void *arg, ag_api_req *rq)
{
    ag_api_services *s = arg;
    const char *name = NULL, *td = NULL, *lt = NULL, *strategy = NULL;
    int64_t desired = -1;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str(rq, "serviceName", true, 1, AG_SVC_NAME_MAX, &name)) ||
        (r = ag_api_str(rq, "taskDefinition", true, 1, SERVICE_REF_MAX, &td)) ||
        (r = ag_api_int(rq, "desiredCount", 0, AG_SVC_DESIRED_MAX, &desired)) ||
        (r = ag_api_str(rq, "launchType", false, 1, 16, &lt)) ||
        (r = ag_api_str(rq, "schedulingStrategy", false, 1, 16, &strategy)))
        return r;
    if (lt && strcmp(lt, "EC2") != 0 && strcmp(lt, "EXTERNAL") != 0)
        return ag_api_fail(rq, INVALID, "launchType: this agent runs EC2 (or EXTERNAL) tasks");
    if (strategy && strcmp(strategy, "REPLICA") != 0)
        return ag_api_fail(rq, INVALID, "schedulingStrategy: only REPLICA is supported");
    if (desired < 0)
        return ag_api_fail(rq, INVALID,
                           "desiredCount: a value is required for the REPLICA scheduling "
                           "strategy");
    ag_svc_create_req req = {.name = name, .desired = (int)desired, .min_healthy = -1};
    char family[AG_TD_NAME_MAX + 1];
    if ((r = td_ref(rq, td, family, &req.revision)) ||
        (r = read_deploy_config(rq, &req.max_percent, &req.min_healthy, &req.cb_enable,
                                &req.cb_rollback)) ||
        (r = authorize_service(rq, "ecs:CreateService", name, td)))
        return r;
    req.family = family;
    ag_svc_placement *placement = es_malloc(sizeof *placement);
    if (!placement)
        return ag_api_fail(rq, SERVER, "out of memory");
    if ((r = read_placement(rq, placement))) {
        es_free(placement);
        return r;
    }
    req.placement = placement;
    ag_tags tags = {.n = 0};
    if ((r = ag_api_read_tags(rq, &tags))) {
        es_free(placement);
        return r;
    }
    req.tags = &tags;
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX] = "";
    r = ag_svc_create(s->sched, &req, &v, err, sizeof err);
    ag_tags_clear(&tags);
    es_free(placement);
    if (r < 0)
        return sched_error(rq, r, "CreateService", err);
    es_info("CreateService %s by %s%s", v->arn, rq->principal ? rq->principal : "?",
            v->redeploy ? " (redeploy on rotation)" : "");
    return answer_written(s, rq, v, true, true, NULL);
}

static int op_update(void *arg, ag_api_req *rq)
{
    ag_api_services *s = arg;
    const char *name = NULL, *td = NULL;
    int64_t desired = -1;
    int r;
    ag_svc_update_req req = {.desired = -1, .min_healthy = -1};
    bool cb = false, rb = false;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str(rq, "service", true, 1, SERVICE_REF_MAX, &name)) ||
        (r = ag_api_str(rq, "taskDefinition", false, 1, SERVICE_REF_MAX, &td)) ||
        (r = ag_api_int(rq, "desiredCount", 0, AG_SVC_DESIRED_MAX, &desired)) ||
        (r = read_bool(rq, "forceNewDeployment", &req.force_new_deployment)) ||
        (r = read_deploy_config(rq, &req.max_percent, &req.min_healthy, &cb, &rb)))
        return r;
    char family[AG_TD_NAME_MAX + 1];
    if (td) {
        if ((r = td_ref(rq, td, family, &req.revision)))
            return r;
        req.family = family;
    }
    if ((r = authorize_service(rq, "ecs:UpdateService", name, td)))
        return r;
    req.name = name;
    req.desired = (int)desired;
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX] = "";
    r = ag_svc_update(s->sched, &req, &v, err, sizeof err);
    if (r < 0)
        return sched_error(rq, r, "UpdateService", err);
    es_info("UpdateService %s by %s%s", v->arn, rq->principal ? rq->principal : "?",
            req.force_new_deployment ? " (forceNewDeployment)" : "");
    return answer_written(s, rq, v, false, false, &(ag_api_services_redo){.update = &req});
}

static int op_delete(void *arg, ag_api_req *rq)
{
    ag_api_services *s = arg;
    const char *name = NULL;
    bool force = false;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str(rq, "service", true, 1, SERVICE_REF_MAX, &name)) ||
        (r = read_bool(rq, "force", &force)) ||
        (r = authorize_service(rq, "ecs:DeleteService", name, NULL)))
        return r;
    ag_service *v = NULL;
    char err[AG_SVC_ERR_MAX] = "";
    r = ag_svc_delete(s->sched, name, force, &v, err, sizeof err);
    if (r < 0)
        return sched_error(rq, r, "DeleteService", err);
    es_info("DeleteService %s by %s", v->arn, rq->principal ? rq->principal : "?");
    return answer_written(s, rq, v, false, false,
                          &(ag_api_services_redo){.deletion = true, .force = force});
}

static int op_describe(void *arg, ag_api_req *rq)
{
    ag_api_services *s = arg;
    const es_json *list = NULL, *include = NULL;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_str_list(rq, "services", true, 1, AG_API_SERVICES_DESCRIBE_MAX, SERVICE_REF_MAX,
                             &list)) ||
        (r = ag_api_str_list(rq, "include", false, 0, 2, 16, &include)))
        return r;
    bool drift = false, tags = false;
    for (size_t i = 0; include && i < include->u.array.n; i++) {
        const char *inc = include->u.array.items[i]->u.string.s;
        if (strcmp(inc, "DRIFT") == 0)
            drift = true;
        else if (strcmp(inc, "TAGS") == 0)
            tags = true;
        else
            return ag_api_fail(rq, INVALID, "include[%zu]: must be TAGS or DRIFT", i);
    }
    for (size_t i = 0; i < list->u.array.n; i++)
        if ((r = authorize_service(rq, "ecs:DescribeServices", list->u.array.items[i]->u.string.s,
                                   NULL)))
            return r;
    if (drift && s->drift)
        (void)ag_drift_check(s->drift, NULL, NULL);
    es_jw *w = rq->w;
    es_jw_key(w, "services");
    es_jw_arr(w);
    for (size_t i = 0; i < list->u.array.n; i++) {
        ag_service *v = ag_svc_find(s->sched, list->u.array.items[i]->u.string.s);
        if (v)
            ag_service_write_json(v, tags, w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "failures");
    es_jw_arr(w);
    for (size_t i = 0; i < list->u.array.n; i++) {
        const char *ref = list->u.array.items[i]->u.string.s;
        if (ag_svc_find(s->sched, ref))
            continue;
        es_jw_obj(w);
        if (strncmp(ref, "arn:", 4) == 0) {
            es_jw_kstr(w, "arn", ref);
        } else {
            char arn[SERVICE_ARN_MAX];
            svc_arn(rq, ref, arn, sizeof arn);
            es_jw_kstr(w, "arn", arn);
        }
        es_jw_kstr(w, "reason", "MISSING");
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    return 0;
}

typedef struct list_walk {
    const char *after; /* name */
    bool passed;
    const char *names[AG_API_PAGE_MAX + 1];
    const char *arns[AG_API_PAGE_MAX + 1];
    size_t n, want;
} list_walk;

static int list_fn(void *arg, ag_service *v)
{
    list_walk *lw = arg;
    if (v->status == AG_SVC_INACTIVE)
        return 0;
    if (lw->after && !lw->passed) {
        lw->passed = strcmp(v->name, lw->after) == 0;
        return 0;
    }
    lw->names[lw->n] = v->name;
    lw->arns[lw->n] = v->arn;
    lw->n++;
    return lw->n == lw->want;
}

static int op_list(void *arg, ag_api_req *rq)
{
    ag_api_services *s = arg;
    int64_t max = 10;
    const char *tok = NULL, *lt = NULL, *strategy = NULL;
    int r;
    if ((r = ag_api_check_cluster(rq)) ||
        (r = ag_api_int(rq, "maxResults", 1, AG_API_PAGE_MAX, &max)) ||
        (r = ag_api_str(rq, "nextToken", false, 1, AG_API_TOKEN_MAX, &tok)) ||
        (r = ag_api_str(rq, "launchType", false, 1, 16, &lt)) ||
        (r = ag_api_str(rq, "schedulingStrategy", false, 1, 16, &strategy)))
        return r;
    char after[AG_SVC_NAME_MAX + 1] = "";
    if (tok && (ag_api_token_parse(tok, after, sizeof after) < 0 || !ag_service_name_ok(after)))
        return ag_api_fail(rq, INVALID, "nextToken: not a token this API handed out");
    if ((r = ag_api_authorize_in_cluster(rq, "ecs:ListServices", "*")))
        return r;
    list_walk lw = {.after = after[0] ? after : NULL, .want = (size_t)max + 1};
    ag_svc_foreach(s->sched, list_fn, &lw);
    if (lw.after && !lw.passed)
        return ag_api_fail(rq, INVALID, "nextToken: the service it continues from is gone");
    bool more = lw.n > (size_t)max;
    size_t count = more ? (size_t)max : lw.n;
    if (strategy && strcmp(strategy, "REPLICA") != 0)
        count = 0, more = false;
    if (lt && strcmp(lt, "EC2") != 0)
        count = 0, more = false;
    es_jw_key(rq->w, "serviceArns");
    es_jw_arr(rq->w);
    for (size_t i = 0; i < count; i++)
        es_jw_str(rq->w, lw.arns[i]);
    es_jw_arr_end(rq->w);
    if (more && count) {
        char next[AG_API_TOKEN_MAX + 1];
        if (ag_api_token_make(lw.names[count - 1], next, sizeof next) == 0)
            es_jw_kstr(rq->w, "nextToken", next);
    }
    return 0;
}

int ag_api_services_attach(ag_api *api, ag_svc_sched *sched, ag_drift *drift, ag_api_services **out)
{
    ag_api_services *s = es_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *s = (ag_api_services){.api = api, .sched = sched, .drift = drift};
    if (ag_api_add_op(api, "CreateService", op_create, s) ||
        ag_api_add_op(api, "UpdateService", op_update, s) ||
        ag_api_add_op(api, "DeleteService", op_delete, s) ||
        ag_api_add_op(api, "DescribeServices", op_describe, s) ||
        ag_api_add_op(api, "ListServices", op_list, s)) {
        es_free(s);
        return -ENOSPC;
    }
    *out = s;
    return 0;
}

void ag_api_services_free(ag_api_services *s)
{
    es_free(s);
}
