/* tags.c - see tags.h. */
#include "agent/api/tags.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/store/store.h"
#include "common/alloc.h"
#include "common/log.h"

#define INVALID "InvalidParameterException"
#define NOT_FOUND "ResourceNotFoundException"
#define CLUSTER_NOT_FOUND "ClusterNotFoundException"
#define SERVER "ServerException"
#define NOT_FOUND_TEXT "The specified resource could not be found."

struct ag_api_tags {
    ag_engine *engine;
    ag_svc_sched *sched;
};

typedef enum res_kind { RES_TD, RES_TASK, RES_SERVICE } res_kind;

/* One resource named by resourceArn. */
typedef struct res {
    res_kind kind;
    const char *arn;
    ag_service *svc; /* RES_SERVICE */
} res;

static int read_list(ag_api_req *rq, const es_json *list, ag_tags *out)
{
    ag_tags_clear(out);
    if (!list || list->type == ES_JSON_NULL)
        return 0;
    char err[AG_TAGS_ERR_MAX];
    int r = ag_tags_read(list, "tags", out, err, sizeof err);
    if (r == -ENOMEM)
        return ag_api_fail(rq, SERVER, "out of memory");
    return r ? ag_api_fail(rq, INVALID, "%s", err) : 0;
}

int ag_api_read_tags(ag_api_req *rq, ag_tags *out)
{
    return read_list(rq, es_json_get(rq->body, "tags"), out);
}

int ag_api_read_tags_text(ag_api_req *rq, const char *json, ag_tags *out)
{
    es_json *list = NULL;
    char why[128];
    int jr = es_json_parse(json, strlen(json), &es_json_default_limits, &list, why, sizeof why);
    if (jr == ES_JSON_E_NOMEM)
        return ag_api_fail(rq, SERVER, "out of memory");
    if (jr)
        return ag_api_fail(rq, INVALID, "tags: not valid JSON: %s", why);
    int r = read_list(rq, list, out);
    es_json_free(list);
    return r;
}

/* "arn:aws:ecs:REGION:ACCOUNT:" of this agent, or NULL: the rest. */
static const char *own_resource(ag_api_req *rq, const char *arn)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "arn:aws:ecs:%s:%s:", ag_api_region(rq->api),
             ag_api_account(rq->api));
    size_t n = strlen(prefix);
    return strncmp(arn, prefix, n) == 0 ? arn + n : NULL;
}

/* CLUSTER/REST: the cluster must be ours; *rest the part after it. */
static int in_cluster(ag_api_req *rq, const char *p, const char **rest)
{
    const char *slash = strchr(p, '/');
    const char *cl = ag_api_cluster(rq->api);
    if (!slash || slash == p || !slash[1])
        return ag_api_fail(rq, INVALID, "resourceArn: the ARN is not valid");
    if ((size_t)(slash - p) != strlen(cl) || strncmp(p, cl, strlen(cl)) != 0)
        return ag_api_fail(rq, CLUSTER_NOT_FOUND, "Cluster not found.");
    *rest = slash + 1;
    return 0;
}

static int td_exists(ag_api_req *rq, const char *p)
{
    char family[AG_TD_NAME_MAX + 1], why[200];
    int64_t rev = 0;
    if (ag_api_parse_td_ref(p, ag_api_region(rq->api), ag_api_account(rq->api), family, &rev, why,
                            sizeof why) < 0 ||
        rev == 0)
        return ag_api_fail(rq, INVALID, "resourceArn: the ARN is not valid");
    ag_taskdef *td = NULL;
    int r = ag_store_taskdef_get(ag_api_store(rq->api), family, rev, &td);
    ag_taskdef_free(td);
    if (r == -ENOENT)
        return ag_api_fail(rq, NOT_FOUND, NOT_FOUND_TEXT);
    return r < 0 ? ag_api_fail(rq, SERVER, "resourceArn: the store cannot be read") : 0;
}

/* Parses resourceArn, asks for action on it, then finds it. */
static int find_resource(ag_api_tags *t, ag_api_req *rq, const char *action, res *out)
{
    const char *arn = NULL, *rest = NULL;
    int r = ag_api_str(rq, "resourceArn", true, 1, AG_API_RESOURCE_ARN_MAX, &arn);
    if (r)
        return r;
    const char *p = own_resource(rq, arn);
    if (!p)
        return ag_api_fail(rq, INVALID,
                           "resourceArn: not an ECS resource of this agent (region %s, account %s)",
                           ag_api_region(rq->api), ag_api_account(rq->api));
    *out = (res){.arn = arn};
    ag_api_cond cond = {"ecs:cluster", ag_api_cluster_arn(rq->api)};
    if (strncmp(p, "task-definition/", 16) == 0) {
        out->kind = RES_TD;
        if ((r = ag_api_authorize(rq, action, arn, NULL, 0)))
            return r;
        return td_exists(rq, p + 16);
    }
    if (strncmp(p, "task/", 5) == 0) {
        out->kind = RES_TASK;
        if ((r = in_cluster(rq, p + 5, &rest)) || (r = ag_api_authorize(rq, action, arn, &cond, 1)))
            return r;
        return ag_engine_find_task(t->engine, arn) ? 0 : ag_api_fail(rq, NOT_FOUND, NOT_FOUND_TEXT);
    }
    if (strncmp(p, "service/", 8) == 0) {
        out->kind = RES_SERVICE;
        if (!strchr(p + 8, '/'))
            return ag_api_fail(rq, INVALID,
                               "resourceArn: a service is tagged by its long ARN "
                               "(service/CLUSTER/NAME)");
        if ((r = in_cluster(rq, p + 8, &rest)) || (r = ag_api_authorize(rq, action, arn, &cond, 1)))
            return r;
        out->svc = t->sched ? ag_svc_find(t->sched, arn) : NULL;
        return out->svc ? 0 : ag_api_fail(rq, NOT_FOUND, NOT_FOUND_TEXT);
    }
    return ag_api_fail(rq, INVALID,
                       "resourceArn: this agent tags task definitions, tasks and services");
}

static int current(ag_api_req *rq, const res *x, ag_tags *out)
{
    if (x->kind == RES_SERVICE)
        return ag_tags_copy(out, &x->svc->tags) < 0 ? ag_api_fail(rq, SERVER, "out of memory") : 0;
    if (ag_store_tags_get(ag_api_store(rq->api), x->arn, out) < 0) {
        es_err("%s %s: %s", rq->operation, x->arn, ag_store_errmsg(ag_api_store(rq->api)));
        return ag_api_fail(rq, SERVER, "resourceArn: the tags cannot be read");
    }
    return 0;
}

static int save(ag_api_tags *t, ag_api_req *rq, const res *x, const ag_tags *tags)
{
    if (x->kind == RES_SERVICE) {
        char err[AG_SVC_ERR_MAX] = "";
        int r = ag_svc_set_tags(t->sched, x->svc, tags, err, sizeof err);
        if (r == -EINVAL)
            return ag_api_fail(rq, INVALID, "%s", err);
        return r < 0 ? ag_api_fail(rq, SERVER, "resourceArn: the tags cannot be stored") : 0;
    }
    if (ag_store_tags_set(ag_api_store(rq->api), x->arn, tags) < 0) {
        es_err("%s %s: %s", rq->operation, x->arn, ag_store_errmsg(ag_api_store(rq->api)));
        return ag_api_fail(rq, SERVER, "resourceArn: the tags cannot be stored");
    }
    return 0;
}

static int op_tag(void *arg, ag_api_req *rq)
{
    ag_api_tags *t = arg;
    ag_tags add = {.n = 0}, now = {.n = 0};
    res x;
    int r;
    if (!es_json_get(rq->body, "tags"))
        return ag_api_fail(rq, INVALID, "tags: is required");
    if ((r = ag_api_read_tags(rq, &add)) || (r = find_resource(t, rq, "ecs:TagResource", &x)) ||
        (r = current(rq, &x, &now)))
        goto out;
    char err[AG_TAGS_ERR_MAX];
    r = ag_tags_merge(&now, &add, err, sizeof err);
    if (r)
        r = r == -EINVAL ? ag_api_fail(rq, INVALID, "%s", err)
                         : ag_api_fail(rq, SERVER, "out of memory");
    if (!r)
        r = save(t, rq, &x, &now);
    if (!r)
        es_info("TagResource %s: %zu tags set by %s", x.arn, add.n,
                rq->principal ? rq->principal : "?");
out:
    ag_tags_clear(&add);
    ag_tags_clear(&now);
    return r;
}

static int op_untag(void *arg, ag_api_req *rq)
{
    ag_api_tags *t = arg;
    ag_tags now = {.n = 0};
    res x;
    char err[AG_TAGS_ERR_MAX];
    const es_json *keys = es_json_get(rq->body, "tagKeys");
    if (!keys)
        return ag_api_fail(rq, INVALID, "tagKeys: is required");
    if (ag_tag_keys_check(keys, "tagKeys", err, sizeof err) < 0)
        return ag_api_fail(rq, INVALID, "%s", err);
    int r = find_resource(t, rq, "ecs:UntagResource", &x);
    if (!r)
        r = current(rq, &x, &now);
    if (!r) {
        ag_tags_remove(&now, keys);
        r = save(t, rq, &x, &now);
    }
    if (!r)
        es_info("UntagResource %s: %zu keys removed by %s", x.arn, keys->u.array.n,
                rq->principal ? rq->principal : "?");
    ag_tags_clear(&now);
    return r;
}

static int op_list(void *arg, ag_api_req *rq)
{
    ag_api_tags *t = arg;
    ag_tags now = {.n = 0};
    res x;
    int r = find_resource(t, rq, "ecs:ListTagsForResource", &x);
    if (!r)
        r = current(rq, &x, &now);
    if (!r)
        ag_tags_write(&now, rq->w);
    ag_tags_clear(&now);
    return r;
}

int ag_api_tags_attach(ag_api *api, ag_engine *engine, ag_svc_sched *sched, ag_api_tags **out)
{
    ag_api_tags *t = es_calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    *t = (ag_api_tags){.engine = engine, .sched = sched};
    if (ag_api_add_op(api, "TagResource", op_tag, t) ||
        ag_api_add_op(api, "UntagResource", op_untag, t) ||
        ag_api_add_op(api, "ListTagsForResource", op_list, t)) {
        es_free(t);
        return -ENOSPC;
    }
    *out = t;
    return 0;
}

void ag_api_tags_free(ag_api_tags *t)
{
    es_free(t);
}
