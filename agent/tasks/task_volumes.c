/* task_volumes.c - the engine's side of a task's volumes and ports (issue
 * 20; the model is td_volumes.h): the Docker volumes a task owns, created
 * before its containers and removed with them; a shared one created when
 * autoprovision says so and never removed; and what a container's create
 * gets of mountPoints, volumesFrom and portMappings (engine_int.h). */
#include "agent/tasks/engine_int.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define VOLUME_LABEL "com.amazonaws.ecs.volume-name"

/* The Docker name of the task's volume v: a task-scoped one is the task's
 * own, "ecs-<task id>-<v>-<name>" (cut to Docker's maximum; the index keeps
 * two cut names apart), the same after an agent restart, so that the sweep
 * finds it; a shared one is called by its name, as ECS calls it. */
int ag_eng_volume_name(const etask *et, size_t v, char *out, size_t n)
{
    const ag_td_volume *vol = &et->td->td->volumes[v];
    if (n <= DK_VOLUME_NAME_MAX)
        return -ENAMETOOLONG;
    if (!ag_td_volume_task_scoped(vol))
        snprintf(out, n, "%s", vol->name);
    else
        snprintf(out, DK_VOLUME_NAME_MAX + 1, "ecs-%s-%zu-%s", et->t->id, v, vol->name);
    return 0;
}

static void on_volume(void *ud, const dk_result *r)
{
    etask *et;
    size_t v;
    if (!ag_eng_cop_end(ud, &et, &v))
        return;
    if (r->err) {
        char reason[AG_REASON_BUF];
        const ag_td_volume *vol = et->td && et->td->td ? &et->td->td->volumes[v] : NULL;
        bool missing = r->err == DK_E_NOT_FOUND && vol && !ag_td_volume_task_scoped(vol);
        snprintf(reason, sizeof reason, "ResourceInitializationError: volume %s: %s",
                 vol ? vol->name : "?",
                 missing      ? "the shared Docker volume does not exist and autoprovision is false"
                 : r->message ? r->message
                              : dk_strerror(r->err));
        ag_eng_fail_launch(et, reason);
    }
    ag_eng_advance(et);
}

/* One call for volume v: create it (labels naming the task), or for a
 * shared one without autoprovision, check that it is there. */
static int volume_call(etask *et, size_t v, cop *c)
{
    const ag_td_volume *vol = &et->td->td->volumes[v];
    char name[DK_VOLUME_NAME_MAX + 1];
    int rc = ag_eng_volume_name(et, v, name, sizeof name);
    if (rc < 0)
        return rc;
    dk_client *d = et->e->cfg.docker;
    if (!ag_td_volume_task_scoped(vol) && !vol->autoprovision)
        return dk_volume_inspect(d, name, on_volume, c);
    dk_kv labels[AG_TD_VOLUME_OPTS_MAX + 2], opts[AG_TD_VOLUME_OPTS_MAX];
    size_t nl = 0;
    for (size_t i = 0; i < vol->n_labels; i++)
        labels[nl++] = (dk_kv){vol->labels[i].key, vol->labels[i].value};
    if (ag_td_volume_task_scoped(vol)) { /* a shared one outlives the task */
        labels[nl++] = (dk_kv){DK_TASK_ARN_LABEL, et->t->arn};
        labels[nl++] = (dk_kv){VOLUME_LABEL, vol->name};
    }
    for (size_t i = 0; i < vol->n_driver_opts; i++)
        opts[i] = (dk_kv){vol->driver_opts[i].key, vol->driver_opts[i].value};
    dk_volume_spec s = {.name = name,
                        .driver = vol->driver,
                        .driver_opts = opts,
                        .ndriver_opts = vol->n_driver_opts,
                        .labels = labels,
                        .nlabels = nl};
    return dk_volume_create(d, &s, on_volume, c);
}

bool ag_eng_volumes_prepare(etask *et)
{
    const ag_taskdef *td = et->td ? et->td->td : NULL;
    if (et->volumes_ready || !td)
        return false;
    et->volumes_ready = true;
    for (size_t v = 0; v < td->n_volumes; v++) {
        if (td->volumes[v].kind == AG_VOLUME_HOST)
            continue; /* Docker's Binds create a missing host directory */
        cop *c = es_calloc(1, sizeof *c);
        int rc = -ENOMEM;
        if (c) {
            *c = (cop){et, v};
            rc = volume_call(et, v, c);
        }
        if (rc < 0) {
            es_free(c);
            char reason[AG_REASON_BUF];
            snprintf(reason, sizeof reason, "ResourceInitializationError: volume %s: %s",
                     td->volumes[v].name, dk_strerror(rc));
            ag_eng_fail_launch(et, reason);
            break;
        }
        es_debug("task %s: preparing volume %s", et->t->id, td->volumes[v].name);
        ag_eng_op_begin(et);
    }
    return et->ops > 0;
}

static void on_volume_removed(void *ud, const dk_result *r)
{
    etask *et;
    size_t v;
    if (!ag_eng_cop_end(ud, &et, &v))
        return;
    if (r->err && r->err != DK_E_NOT_FOUND)
        es_warn("task %s: volume %zu: remove failed: %s", et->t->id, v,
                r->message ? r->message : dk_strerror(r->err));
    ag_eng_advance(et);
}

void ag_eng_volumes_remove(etask *et)
{
    const ag_taskdef *td = et->td ? et->td->td : NULL;
    if (et->volumes_removed || !td)
        return;
    et->volumes_removed = true;
    for (size_t v = 0; v < td->n_volumes; v++) {
        if (td->volumes[v].kind == AG_VOLUME_HOST || !ag_td_volume_task_scoped(&td->volumes[v]))
            continue;
        char name[DK_VOLUME_NAME_MAX + 1];
        cop *c = es_calloc(1, sizeof *c);
        int rc = -ENOMEM;
        if (c && (rc = ag_eng_volume_name(et, v, name, sizeof name)) == 0) {
            *c = (cop){et, v};
            rc = dk_volume_remove(et->e->cfg.docker, name, on_volume_removed, c);
        }
        if (rc < 0) {
            es_free(c);
            es_warn("task %s: volume %s: cannot remove: %s", et->t->id, td->volumes[v].name,
                    dk_strerror(rc));
            continue;
        }
        es_debug("task %s: removing volume %s", et->t->id, name);
        ag_eng_op_begin(et);
    }
}

/* The task container that container definition d is. */
static const ag_task_container *task_container(const etask *et, size_t d)
{
    const char *name = et->td->td->containers[d].name;
    for (size_t i = 0; i < et->t->n_containers; i++)
        if (strcmp(et->t->containers[i].name, name) == 0)
            return &et->t->containers[i];
    return NULL;
}

size_t ag_eng_create_index(const etask *et)
{
    const ag_taskdef *td = et->td ? et->td->td : NULL;
    for (size_t i = 0; td && i < et->t->n_containers; i++) {
        const ag_container_def *cd = ag_eng_cdef(et, i);
        if (et->t->containers[i].docker_id || !cd)
            continue;
        bool ready = true;
        for (size_t k = 0; ready && k < cd->cv.n_volumes_from; k++) {
            const ag_task_container *s = task_container(et, cd->cv.volumes_from[k].container);
            ready = s && s->docker_id;
        }
        if (ready)
            return i;
    }
    return et->step;
}

static char *joinf(const char *a, const char *b, bool ro)
{
    size_t n = strlen(a) + strlen(b) + 5;
    char *s = es_malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s%s", a, b[0] ? ":" : "", b, ro ? ":ro" : "");
    return s;
}

static int vspec_mounts(const etask *et, const ag_container_def *cd, ag_eng_vspec *o)
{
    size_t n = cd->cv.n_mount_points;
    if (n && !(o->binds = es_calloc(n, sizeof *o->binds)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const ag_mount_point *m = &cd->cv.mount_points[i];
        const ag_td_volume *v = &et->td->td->volumes[m->volume];
        char name[DK_VOLUME_NAME_MAX + 1];
        const char *src = v->source_path;
        if (v->kind != AG_VOLUME_HOST) {
            if (ag_eng_volume_name(et, m->volume, name, sizeof name) < 0)
                return -ENAMETOOLONG;
            src = name;
        }
        if (!(o->binds[i] = joinf(src, m->container_path, m->read_only)))
            return -ENOMEM;
        o->nbinds = i + 1;
    }
    n = cd->cv.n_volumes_from;
    if (n && !(o->volumes_from = es_calloc(n, sizeof *o->volumes_from)))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const ag_volume_from *f = &cd->cv.volumes_from[i];
        const ag_task_container *s = task_container(et, f->container);
        if (!s || !s->docker_id)
            return -ENOENT;
        if (!(o->volumes_from[i] = joinf(s->docker_id, "", f->read_only)))
            return -ENOMEM;
        o->nvolumes_from = i + 1;
    }
    return 0;
}

/* portMappings: one port each, every port of a containerPortRange with a
 * port Docker picks, as the ECS agent gives a range in the bridge mode */
static int vspec_ports(const ag_container_def *cd, ag_eng_vspec *o)
{
    size_t n = 0;
    for (size_t i = 0; i < cd->cv.n_ports; i++) {
        const ag_port_mapping *p = &cd->cv.ports[i];
        n += p->range ? (size_t)(p->range_hi - p->range_lo + 1) : 1;
    }
    if (n && !(o->ports = es_calloc(n, sizeof *o->ports)))
        return -ENOMEM;
    for (size_t i = 0; i < cd->cv.n_ports; i++) {
        const ag_port_mapping *p = &cd->cv.ports[i];
        const char *proto = ag_port_protocol(p);
        if (!p->range) {
            o->ports[o->nports++] = (dk_port){(int)p->container_port, (int)p->host_port, proto};
            continue;
        }
        for (int64_t port = p->range_lo; port <= p->range_hi; port++)
            o->ports[o->nports++] = (dk_port){(int)port, 0, proto};
    }
    return 0;
}

int ag_eng_volume_spec(const etask *et, size_t ci, ag_eng_vspec *out)
{
    memset(out, 0, sizeof *out);
    const ag_container_def *cd = ag_eng_cdef(et, ci);
    if (!cd)
        return -ENOENT;
    int rc = vspec_mounts(et, cd, out);
    if (!rc)
        rc = vspec_ports(cd, out);
    if (rc)
        ag_eng_vspec_free(out);
    return rc;
}

void ag_eng_vspec_free(ag_eng_vspec *v)
{
    es_strv_free(v->binds, v->nbinds, false);
    es_strv_free(v->volumes_from, v->nvolumes_from, false);
    es_free(v->ports);
    memset(v, 0, sizeof *v);
}
