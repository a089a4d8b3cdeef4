/* plan.c - one task definition's secrets as one plan (plan.h). */
#include "agent/secrets/plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/secrets/valuefrom.h"
#include "common/alloc.h"
#include "common/buf.h"

void ag_secret_plan_free(ag_secret_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_fetches; i++)
        es_free(p->fetches[i].ssm_request);
    for (size_t i = 0; i < p->n_ssm_groups; i++)
        es_free(p->ssm_groups[i].fetches);
    es_free(p->ssm_groups);
    es_free(p->sm_fetches);
    es_free(p->path_fetches);
    es_free(p->fetches);
    es_free(p->items);
    es_free(p->envfiles);
    es_free(p->objects);
    es_free(p->ecr);
    es_free(p->ecr_registries);
    es_free(p);
}

/* The name GetParameters is asked for. */
static char *ssm_request_name(const ag_valuefrom *vf)
{
    es_buf b;
    es_buf_init(&b, AG_VF_MAX + 64);
    int rc;
    if (vf->kind == AG_VF_SSM_REFERENCE)
        rc = es_buf_printf(&b, "/aws/reference/secretsmanager/%s", vf->secret_id);
    else if (vf->ssm_version)
        rc = es_buf_printf(&b, "%s:%" PRIu64, vf->ssm_name, vf->ssm_version);
    else if (vf->ssm_label)
        rc = es_buf_printf(&b, "%s:%s", vf->ssm_name, vf->ssm_label);
    else
        rc = es_buf_append_str(&b, vf->ssm_name);
    if (rc < 0) {
        es_buf_free(&b);
        return NULL;
    }
    return es_buf_steal(&b);
}

static bool streq_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int add_item(ag_secret_plan *p, size_t container, ag_secret_target target,
                    const ag_secret_ref *ref, const ag_secret_expand *x, char *err, size_t errlen)
{
    if (p->n_items >= AG_PLAN_ITEMS_MAX) {
        snprintf(err, errlen, "more than %d secrets", AG_PLAN_ITEMS_MAX);
        return -EINVAL;
    }
    if (!ref->vf.mem_) {
        /* every reference is parsed at registration (taskdef.h) */
        snprintf(err, errlen, "%s: not a parsed reference", ref->value_from);
        return -EINVAL;
    }
    p->items[p->n_items++] =
        (ag_plan_item){.container = container, .target = target, .ref = ref, .expand = x};
    return 0;
}

/* Finds or adds the fetch an item needs. */
static int plan_fetch(ag_secret_plan *p, ag_plan_item *it, const char *task_region)
{
    const ag_valuefrom *vf = &it->ref->vf;
    const char *region = vf->region && *vf->region ? vf->region : task_region;
    bool ssm = vf->kind != AG_VF_SECRETSMANAGER;
    bool path = it->expand && it->expand->ssm_path;
    char *req = NULL;
    if (ssm && !(req = path ? es_strdup(vf->ssm_name) : ssm_request_name(vf)))
        return -ENOMEM;
    for (size_t i = 0; i < p->n_fetches; i++) {
        ag_plan_fetch *f = &p->fetches[i];
        if (f->ssm != ssm || f->ssm_path != path || strcmp(f->region, region) != 0)
            continue;
        if (ssm ? strcmp(f->ssm_request, req) == 0
                : strcmp(f->secret_id, vf->secret_id) == 0 &&
                      streq_null(f->stage, vf->version_stage) &&
                      streq_null(f->version_id, vf->version_id)) {
            es_free(req);
            it->fetch = i;
            return 0;
        }
    }
    ag_plan_fetch *f = &p->fetches[p->n_fetches];
    *f = (ag_plan_fetch){
        .ssm = ssm, .ssm_path = path, .vf = vf, .region = region, .ssm_request = req};
    if (!ssm) {
        f->secret_id = vf->secret_id;
        f->stage = vf->version_stage;
        f->version_id = vf->version_id;
    }
    it->fetch = p->n_fetches++;
    return 0;
}

/* SSM fetches grouped by region; Secrets Manager fetches one call each. */
static int group(ag_secret_plan *p)
{
    size_t n = p->n_fetches ? p->n_fetches : 1;
    p->ssm_groups = es_calloc(n, sizeof *p->ssm_groups);
    p->sm_fetches = es_calloc(n, sizeof *p->sm_fetches);
    p->path_fetches = es_calloc(n, sizeof *p->path_fetches);
    if (!p->ssm_groups || !p->sm_fetches || !p->path_fetches)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_fetches; i++) {
        ag_plan_fetch *f = &p->fetches[i];
        if (!f->ssm) {
            p->sm_fetches[p->n_sm++] = i;
            continue;
        }
        if (f->ssm_path) {
            p->path_fetches[p->n_paths++] = i;
            continue;
        }
        ag_plan_ssm_group *g = NULL;
        for (size_t k = 0; k < p->n_ssm_groups && !g; k++)
            if (strcmp(p->ssm_groups[k].region, f->region) == 0)
                g = &p->ssm_groups[k];
        if (!g) {
            g = &p->ssm_groups[p->n_ssm_groups++];
            g->region = f->region;
            if (!(g->fetches = es_calloc(p->n_fetches, sizeof *g->fetches)))
                return -ENOMEM;
        }
        g->fetches[g->n++] = i;
    }
    return 0;
}

/* The environmentFiles of every container, the objects de-duplicated by
 * their ARN as registered. */
static int plan_envfiles(ag_secret_plan *p, const ag_taskdef *td)
{
    size_t total = 0;
    for (size_t c = 0; c < td->n_containers; c++)
        total += td->containers[c].n_env_files;
    if (total == 0)
        return 0;
    if (total > AG_PLAN_ENVFILES_MAX)
        return -EINVAL; /* registration allows no more */
    p->envfiles = es_calloc(total, sizeof *p->envfiles);
    p->objects = es_calloc(total, sizeof *p->objects);
    if (!p->envfiles || !p->objects)
        return -ENOMEM;
    for (size_t c = 0; c < td->n_containers; c++) {
        const ag_container_def *cd = &td->containers[c];
        for (size_t f = 0; f < cd->n_env_files; f++) {
            const ag_env_file *ef = &cd->env_files[f];
            size_t k = 0;
            while (k < p->n_objects && strcmp(p->objects[k]->value, ef->value) != 0)
                k++;
            if (k == p->n_objects)
                p->objects[p->n_objects++] = ef;
            p->envfiles[p->n_envfiles++] = (ag_plan_envfile){c, f, k};
        }
    }
    return 0;
}

int ag_secret_plan_build(const ag_taskdef *td, const char *task_region, ag_secret_plan **out,
                         char *err, size_t errlen)
{
    size_t total = 0;
    for (size_t c = 0; c < td->n_containers; c++) {
        const ag_container_def *cd = &td->containers[c];
        total += cd->n_secrets + (cd->log ? cd->log->n_secret_options : 0) +
                 (cd->repository_credentials ? 1 : 0) + cd->n_expands;
    }
    if (total > AG_PLAN_ITEMS_MAX) {
        snprintf(err, errlen, "more than %d secrets", AG_PLAN_ITEMS_MAX);
        return -EINVAL;
    }
    ag_secret_plan *p = es_calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->items = es_calloc(total ? total : 1, sizeof *p->items);
    p->fetches = es_calloc(total ? total : 1, sizeof *p->fetches);
    int rc = p->items && p->fetches ? 0 : -ENOMEM;
    for (size_t c = 0; c < td->n_containers && rc == 0; c++) {
        const ag_container_def *cd = &td->containers[c];
        for (size_t i = 0; i < cd->n_secrets && rc == 0; i++)
            rc = add_item(p, c, AG_SECRET_ENV, &cd->secrets[i], NULL, err, errlen);
        for (size_t i = 0; cd->log && i < cd->log->n_secret_options && rc == 0; i++)
            rc = add_item(p, c, AG_SECRET_LOG, &cd->log->secret_options[i], NULL, err, errlen);
        if (cd->repository_credentials && rc == 0)
            rc = add_item(p, c, AG_SECRET_REGISTRY, cd->repository_credentials, NULL, err, errlen);
        for (size_t i = 0; i < cd->n_expands && rc == 0; i++)
            rc = add_item(p, c, AG_SECRET_ENV, cd->expands[i].ref, &cd->expands[i], err, errlen);
    }
    for (size_t i = 0; i < p->n_items && rc == 0; i++)
        rc = plan_fetch(p, &p->items[i], task_region);
    if (rc == 0)
        rc = group(p);
    if (rc == 0 && (rc = plan_envfiles(p, td)) == -EINVAL)
        snprintf(err, errlen, "more than %d environment files", AG_PLAN_ENVFILES_MAX);
    if (rc < 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        ag_secret_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static const ag_secret_ref *find_named(const ag_secret_ref *refs, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(refs[i].name, name) == 0)
            return &refs[i];
    return NULL;
}

const ag_secret_ref *ag_secret_ref_find(const ag_taskdef *td, const char *container,
                                        ag_secret_target target, const char *name)
{
    const ag_container_def *cd = td && container ? ag_taskdef_container(td, container) : NULL;
    if (!cd)
        return NULL;
    switch (target) {
    case AG_SECRET_ENV: {
        const ag_secret_expand *x = ag_secret_expand_find(td, container, name);
        return x ? x->ref : find_named(cd->secrets, cd->n_secrets, name);
    }
    case AG_SECRET_LOG:
        return cd->log ? find_named(cd->log->secret_options, cd->log->n_secret_options, name)
                       : NULL;
    case AG_SECRET_REGISTRY:
        return cd->repository_credentials;
    }
    return NULL;
}

const ag_secret_expand *ag_secret_expand_find(const ag_taskdef *td, const char *container,
                                              const char *name)
{
    const ag_container_def *cd = td && container ? ag_taskdef_container(td, container) : NULL;
    for (size_t i = 0; cd && name && i < cd->n_expands; i++)
        if (strcmp(cd->expands[i].ref->name, name) == 0)
            return &cd->expands[i];
    return NULL;
}

int ag_secret_plan_ecr(ag_secret_plan *p, const ag_taskdef *td, const ag_ecr_local *local,
                       char *err, size_t errlen)
{
    size_t n = td->n_containers ? td->n_containers : 1;
    ag_plan_ecr *v = es_calloc(n, sizeof *v);
    size_t *regs = es_calloc(n, sizeof *regs);
    if (!v || !regs) {
        es_free(v);
        es_free(regs);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t k = 0, nr = 0;
    for (size_t c = 0; c < td->n_containers; c++) {
        const ag_container_def *cd = &td->containers[c];
        if (cd->repository_credentials)
            continue; /* its own credentials (S15) */
        char why[512];
        int rc = ag_ecr_image_parse(cd->image, local, &v[k].image, why, sizeof why);
        if (rc < 0) {
            snprintf(err, errlen, "container %s: %s", cd->name, why);
            es_free(v);
            es_free(regs);
            return -EINVAL;
        }
        if (rc == 0 || (local && local->only && !v[k].image.local))
            continue;
        v[k].container = c;
        size_t r = 0;
        while (r < nr && !(strcmp(v[regs[r]].image.host, v[k].image.host) == 0 &&
                           strcmp(v[regs[r]].image.account, v[k].image.account) == 0 &&
                           strcmp(v[regs[r]].image.region, v[k].image.region) == 0))
            r++;
        if (r == nr)
            regs[nr++] = k;
        v[k].registry = r;
        k++;
    }
    es_free(p->ecr);
    es_free(p->ecr_registries);
    p->ecr = v;
    p->n_ecr = k;
    p->ecr_registries = regs;
    p->n_ecr_registries = nr;
    return 0;
}
