#include "agent/cluster_td.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/taskdefs.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"
#include "agent/metrics.h"

struct ag_cluster_td {
    cl_member *member;
    ag_store *store;
    char prefix[CL_ETCD_KEY_MAX + 1];
    ag_cluster_td_stats stats;
};

typedef struct td_op {
    ag_cluster_td *x;
    ag_api_td_done done;
    void *ctx;
} td_op;

/* A record etcd holds into the store. 0 or < 0 with why. */
static int keep(ag_cluster_td *x, const cl_td_record *rec, char *why, size_t whylen)
{
    ag_store_td_row row = {.family = rec->family,
                           .revision = rec->revision,
                           .active = rec->active,
                           .registered_at = rec->registered_at,
                           .deregistered_at = rec->deregistered_at,
                           .body = rec->body,
                           .body_len = rec->body_len};
    int r = ag_store_taskdef_put(x->store, &row);
    if (r < 0)
        snprintf(why, whylen, "the store: %s", ag_store_errmsg(x->store));
    return r;
}

static void op_end(td_op *op, int err, const cl_td_record *rec)
{
    char why[AG_STORE_ERR_MAX + 32] = "";
    if (err == 0 && keep(op->x, rec, why, sizeof why) < 0)
        err = -EIO;
    else if (err == -EBUSY)
        snprintf(why, sizeof why, "%d revisions in a row were taken by other registrations",
                 CL_TD_REGISTER_TRIES);
    else if (err == -ENOENT)
        snprintf(why, sizeof why, "the revision is not in the cluster");
    else if (err)
        snprintf(why, sizeof why, "%s", cl_etcd_strerror(err));
    op->done(op->ctx, err, err ? 0 : rec->revision, why);
    es_free(op);
}

static void on_registered(void *arg, int err, const cl_td_record *rec, unsigned conflicts)
{
    td_op *op = arg;
    op->x->stats.conflicts += conflicts;
    if (err == 0)
        op->x->stats.registered++;
    op_end(op, err, rec);
}

static void on_deregistered(void *arg, int err, const cl_td_record *rec, unsigned conflicts)
{
    td_op *op = arg;
    op->x->stats.conflicts += conflicts;
    if (err == 0)
        op->x->stats.deregistered++;
    op_end(op, err, rec);
}

static td_op *op_new(ag_cluster_td *x, ag_api_td_done done, void *ctx)
{
    td_op *op = es_calloc(1, sizeof *op);
    if (op)
        *op = (td_op){x, done, ctx};
    return op;
}

static int register_td(void *arg, const char *family, const char *body, size_t len, int64_t first,
                       int64_t now, ag_api_td_done done, void *ctx)
{
    ag_cluster_td *x = arg;
    cl_etcd *etcd = cl_member_etcd(x->member);
    if (!etcd)
        return -ECANCELED;
    cl_td_record rec = {.revision = first, .registered_at = now, .body = body, .body_len = len};
    snprintf(rec.family, sizeof rec.family, "%s", family);
    td_op *op = op_new(x, done, ctx);
    if (!op)
        return -ENOMEM;
    int r = cl_td_register(etcd, cl_member_cluster(x->member), &rec, on_registered, op);
    if (r < 0)
        es_free(op);
    return r;
}

static int deregister_td(void *arg, const char *family, int64_t revision, int64_t now,
                         ag_api_td_done done, void *ctx)
{
    ag_cluster_td *x = arg;
    cl_etcd *etcd = cl_member_etcd(x->member);
    if (!etcd)
        return -ECANCELED;
    td_op *op = op_new(x, done, ctx);
    if (!op)
        return -ENOMEM;
    int r = cl_td_deregister(etcd, cl_member_cluster(x->member), family, revision, now,
                             on_deregistered, op);
    if (r < 0)
        es_free(op);
    return r;
}

/* ---- the mirror -------------------------------------------------------- */

/* Whether the body is one the store can give back (what ag_store_taskdef_get reads). */
static bool body_ok(const cl_td_record *rec, char *why, size_t whylen)
{
    es_json *j = NULL;
    es_json_limits lim = es_json_default_limits;
    int jr = es_json_parse(rec->body, rec->body_len, &lim, &j, why, whylen);
    if (jr)
        return false;
    ag_taskdef *td = NULL;
    ag_td_error e;
    int r = ag_taskdef_from_json(j, &(ag_td_ctx){0}, &td, &e);
    es_json_free(j);
    bool ok = r == 0 && strcmp(td->family, rec->family) == 0;
    if (r < 0)
        snprintf(why, whylen, "%.200s", e.message);
    else if (!ok)
        snprintf(why, whylen, "the body's family is not the key's");
    ag_taskdef_free(td);
    return ok;
}

static void on_put(void *arg, const cl_kv *kv)
{
    ag_cluster_td *x = arg;
    cl_td_record rec;
    char why[AG_STORE_ERR_MAX + 32];
    if (cl_td_read(x->prefix, kv, &rec, why, sizeof why) < 0 || !body_ok(&rec, why, sizeof why) ||
        keep(x, &rec, why, sizeof why) < 0) {
        x->stats.bad++;
        es_warn("cluster: task definition %.300s skipped: %s", kv->key, why);
        return;
    }
    x->stats.mirrored++;
    es_debug("cluster: task definition %s:%" PRId64 " (%s) kept", rec.family, rec.revision,
             rec.active ? "ACTIVE" : "INACTIVE");
}

static void on_synced(void *arg, size_t n, int64_t revision)
{
    (void)arg;
    es_info("cluster: %zu task definition revision%s read at etcd revision %" PRId64, n,
            n == 1 ? "" : "s", revision);
}

static void on_error(void *arg, const char *detail)
{
    (void)arg;
    es_warn("cluster: task definitions: %s", detail);
}

static void td_metrics(void *arg, ag_metrics *m)
{
    ag_cluster_td *x = arg;
    ag_metrics_sync_counter(m, "ecs_agent_cluster_taskdefs_mirrored_total",
                            "Task definition revisions read from etcd into the store", NULL,
                            (double)x->stats.mirrored);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_taskdefs_bad_total",
                            "Task definition revisions in etcd skipped as unreadable", NULL,
                            (double)x->stats.bad);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_taskdefs_registered_total",
                            "Task definitions registered in etcd through this agent", NULL,
                            (double)x->stats.registered);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_taskdefs_conflicts_total",
                            "Task definition transactions that met a concurrent write", NULL,
                            (double)x->stats.conflicts);
}

int ag_cluster_td_start(cl_member *member, ag_store *store, ag_api *api, ag_cluster_td **out)
{
    *out = NULL;
    if (!cl_member_is_clustered(member))
        return 0;
    ag_cluster_td *x = es_calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->member = member;
    x->store = store;
    if (cl_td_prefix(cl_member_cluster(member), x->prefix, sizeof x->prefix) < 0) {
        es_free(x);
        return -EINVAL;
    }
    /* from here the hook and the mirror hold x: the agent frees it after
     * the member, whether this start succeeds or not */
    *out = x;
    int r = ag_api_add_metrics_hook(api, td_metrics, x);
    cl_mirror_cbs cbs = {.on_put = on_put, .on_synced = on_synced, .on_error = on_error, .arg = x};
    if (r == 0)
        r = cl_member_mirror(member, CL_TD_LEAF, &cbs);
    if (r < 0)
        return r;
    ag_api_td_share share = {.register_td = register_td, .deregister_td = deregister_td, .arg = x};
    ag_api_set_td_share(api, &share);
    return 0;
}

void ag_cluster_td_free(ag_cluster_td *x)
{
    es_free(x);
}

void ag_cluster_td_get_stats(const ag_cluster_td *x, ag_cluster_td_stats *out)
{
    *out = x->stats;
}
