/* cluster_services.c - see cluster_services.h. */
#include "agent/cluster_services.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/services/redeploy.h"
#include "common/alloc.h"

static void copy_cut(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

int ag_csvc_to_record(const ag_service *v, cl_sv_record *rec)
{
    int64_t mod = rec->mod_revision;
    memset(rec, 0, sizeof *rec);
    rec->mod_revision = mod;
    copy_cut(rec->name, sizeof rec->name, v->name);
    copy_cut(rec->status, sizeof rec->status, ag_svc_status_name(v->status));
    copy_cut(rec->family, sizeof rec->family, v->family);
    rec->revision = v->revision;
    rec->desired = v->desired;
    rec->max_percent = v->max_percent;
    rec->min_healthy = v->min_healthy_percent;
    rec->cb_enable = v->cb_enable;
    rec->cb_rollback = v->cb_rollback;
    rec->created_at = v->created_at;
    rec->inactive_at = v->inactive_at;
    rec->redeployed_at = v->redeployed_at;
    if (v->placement) {
        memcpy(rec->strategies, v->placement->strategies, sizeof rec->strategies);
        rec->n_strategies = v->placement->n_strategies;
        memcpy(rec->constraints, v->placement->constraints, sizeof rec->constraints);
        rec->n_constraints = v->placement->n_constraints;
    }
    if (v->n_deps > CL_SV_DEPLOYMENTS_MAX || v->tags.n > CL_SV_TAGS_MAX)
        return -EINVAL;
    for (size_t i = 0; i < v->n_deps; i++) {
        const ag_svc_deployment *d = &v->deps[i];
        cl_sv_deployment *o = &rec->deps[i];
        copy_cut(o->id, sizeof o->id, d->id);
        copy_cut(o->status, sizeof o->status, ag_dep_status_name(d->status));
        copy_cut(o->family, sizeof o->family, d->family);
        o->revision = d->revision;
        o->desired = d->desired;
        copy_cut(o->rollout, sizeof o->rollout, ag_rollout_name(d->rollout));
        copy_cut(o->rollout_reason, sizeof o->rollout_reason, d->rollout_reason);
        o->created_at = d->created_at;
        o->updated_at = d->updated_at;
    }
    rec->n_deps = v->n_deps;
    size_t ne = v->n_events < CL_SV_EVENTS_MAX ? v->n_events : CL_SV_EVENTS_MAX;
    for (size_t i = 0; i < ne; i++) {
        copy_cut(rec->events[i].id, sizeof rec->events[i].id, v->events[i].id);
        rec->events[i].created_ms = v->events[i].created_ms;
        copy_cut(rec->events[i].message, sizeof rec->events[i].message, v->events[i].message);
    }
    rec->n_events = ne;
    for (size_t i = 0; i < v->tags.n; i++) {
        /* never cut: a cut tag would be another tag */
        if (strlen(v->tags.items[i].key) >= sizeof rec->tags[i].key ||
            strlen(v->tags.items[i].value) >= sizeof rec->tags[i].value)
            return -EINVAL;
        copy_cut(rec->tags[i].key, sizeof rec->tags[i].key, v->tags.items[i].key);
        copy_cut(rec->tags[i].value, sizeof rec->tags[i].value, v->tags.items[i].value);
    }
    rec->n_tags = v->tags.n;
    return 0;
}

/* The record's deployments replace the one ag_service_new made. */
static int set_deployments(ag_service *v, const cl_sv_record *rec)
{
    if (rec->n_deps < 1 || rec->n_deps > AG_SVC_DEPLOYMENTS_MAX)
        return -EINVAL;
    for (size_t i = 0; i < v->n_deps; i++) {
        es_free(v->deps[i].family);
        es_free(v->deps[i].rollout_reason);
    }
    memset(v->deps, 0, sizeof v->deps);
    v->n_deps = 0;
    for (size_t i = 0; i < rec->n_deps; i++) {
        const cl_sv_deployment *r = &rec->deps[i];
        ag_svc_deployment *d = &v->deps[i];
        if (strlen(r->id) >= sizeof d->id || ag_rollout_parse(r->rollout, &d->rollout) < 0)
            return -EINVAL;
        memcpy(d->id, r->id, strlen(r->id) + 1);
        d->status = i == 0 ? AG_DEP_PRIMARY : AG_DEP_ACTIVE;
        d->family = es_strdup(r->family);
        d->rollout_reason = r->rollout_reason[0] ? es_strdup(r->rollout_reason) : NULL;
        v->n_deps = i + 1; /* freed with v from here */
        if (!d->family || (r->rollout_reason[0] && !d->rollout_reason))
            return -ENOMEM;
        d->revision = r->revision;
        d->desired = (int)r->desired;
        d->created_at = r->created_at;
        d->updated_at = r->updated_at;
    }
    return 0;
}

static int set_events(ag_service *v, const cl_sv_record *rec)
{
    for (size_t i = 0; i < rec->n_events && i < AG_SVC_EVENTS_MAX; i++) {
        ag_svc_event *e = &v->events[i];
        snprintf(e->id, sizeof e->id, "%s", rec->events[i].id);
        e->created_ms = rec->events[i].created_ms;
        e->message = es_strdup(rec->events[i].message);
        if (!e->message)
            return -ENOMEM;
        v->n_events = i + 1;
    }
    return 0;
}

static int set_tags(ag_service *v, const cl_sv_record *rec)
{
    for (size_t i = 0; i < rec->n_tags; i++) {
        const cl_sv_tag *t = &rec->tags[i];
        if (i >= AG_TAGS_MAX || !ag_tag_key_ok(t->key) || !ag_tag_value_ok(t->value))
            return -EINVAL;
        v->tags.items[i].key = es_strdup(t->key);
        v->tags.items[i].value = es_strdup(t->value);
        v->tags.n = i + 1;
        if (!v->tags.items[i].key || !v->tags.items[i].value)
            return -ENOMEM;
    }
    ag_redeploy_policy p;
    char err[AG_TAGS_ERR_MAX];
    if (ag_redeploy_policy_read(&v->tags, &p, err, sizeof err) < 0)
        return -EINVAL; /* refused where the tags arrived: not written by us */
    v->redeploy = p.enabled;
    v->redeploy_min_interval_s = p.min_interval_s;
    return 0;
}

int ag_csvc_from_record(const cl_sv_record *rec, const char *region, const char *account,
                        const char *cluster, ag_service **out)
{
    ag_svc_status status;
    if (ag_svc_status_parse(rec->status, &status) < 0)
        return -EINVAL;
    ag_service *v = NULL;
    int r = ag_service_new(region, account, cluster, rec->name, rec->family, rec->revision,
                           (int)rec->desired, (int)rec->max_percent, (int)rec->min_healthy,
                           rec->cb_enable, rec->cb_rollback, rec->created_at, &v);
    if (r < 0)
        return r;
    v->status = status;
    v->inactive_at = rec->inactive_at;
    v->redeployed_at = rec->redeployed_at;
    ag_svc_placement p = {.n_strategies = rec->n_strategies, .n_constraints = rec->n_constraints};
    memcpy(p.strategies, rec->strategies, sizeof p.strategies);
    memcpy(p.constraints, rec->constraints, sizeof p.constraints);
    if ((r = set_deployments(v, rec)) == 0 && (r = set_events(v, rec)) == 0 &&
        (r = set_tags(v, rec)) == 0)
        r = ag_service_set_placement(v, &p);
    if (r < 0) {
        ag_service_free(v);
        return r;
    }
    *out = v;
    return 0;
}

int ag_csvc_task_view(const cl_tk_status *st, const cl_tk_assignment *as, bool stop_asked,
                      const char *arn, ag_svc_task *out)
{
    memset(out, 0, sizeof *out);
    if (!st && !as)
        return -EINVAL;
    out->arn = arn;
    if (!st) {
        /* placed, not launched yet (or its first status not written) */
        out->id = as->task_id;
        out->started_by = as->started_by[0] ? as->started_by : NULL;
        out->last_status = AG_TASK_PROVISIONING;
        out->desired_status = stop_asked ? AG_TASK_STOPPED : AG_TASK_RUNNING;
        out->created_at = as->created_at;
        return 0;
    }
    out->id = st->task_id;
    out->started_by = st->started_by[0] ? st->started_by : NULL;
    out->stopped_reason = st->stopped_reason[0] ? st->stopped_reason : NULL;
    out->created_at = st->created_at;
    out->stopped_at = st->stopped_at;
    if (ag_task_status_parse(st->last_status, &out->last_status) < 0 ||
        ag_task_status_parse(st->desired_status, &out->desired_status) < 0 ||
        (st->stop_code[0] && ag_stop_code_parse(st->stop_code, &out->stop_code) < 0))
        return -EINVAL;
    if (stop_asked)
        out->desired_status = AG_TASK_STOPPED;
    /* a record not STOPPED whose assignment is gone is on its way out
     * (its owner deletes the assignment with the STOPPED write; the
     * leader with a lost host's): not alive any more */
    if (!as && out->last_status != AG_TASK_STOPPED)
        out->desired_status = AG_TASK_STOPPED;
    return 0;
}
