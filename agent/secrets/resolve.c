#include "agent/secrets/resolve.h"
#include "agent/secrets/envfile.h"
#include "agent/secrets/expand.h"
#include "agent/secrets/plan.h"
#include "agent/secrets/valuefrom.h"
#include "aws/ecr.h"
#include "aws/s3.h"
#include "aws/secretsmanager.h"
#include "aws/ssm.h"
#include "common/alloc.h"
#include "common/secure.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* The parameter names an SSM failure lists (ECS names them all, comma-joined);
 * a longer list is cut, as the reason itself is cut to AG_STOPPED_REASON_MAX. */
#define NAMES_LIST_MAX 2048

/* One ECR token kept for (role, registry): the password is a secret. */
typedef struct ecr_cached {
    char *role, *host, *account, *region;
    char *username;
    char *password; /* SECRET */
    size_t password_len;
    int64_t expires_at;
} ecr_cached;

struct ag_resolver {
    aw_client *client;
    aw_creds *creds;
    ag_preflight *preflight; /* NULL: none */
    char *region;
    uint8_t *fp_key;
    size_t fp_key_len;
    int64_t (*now)(void);
    ag_resolver_stats stats;
    char *ecr_host, *ecr_account, *ecr_region; /* ag_ecr_local, copied */
    bool ecr_only;
    ecr_cached ecr_cache[AG_ECR_CACHE_MAX];
    size_t in_flight; /* operations not yet freed: the close waits for them */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* What one of the plan's fetches answered (indexed as plan->fetches). */
typedef struct answer {
    bool done;
    char *value; /* SECRET */
    size_t len;
    bool binary;
    char *arn, *version;
    aw_ssm_result params; /* an SSM path's parameters (SECRET values) */
} answer;

/* One registry's ECR token (indexed as plan->ecr_registries). */
typedef struct ecr_answer {
    char *username;
    char *password; /* SECRET */
    size_t password_len;
} ecr_answer;

/* One backend call's context: an SSM group's (index into ssm_groups) or a
 * Secrets Manager fetch's (index into sm_fetches). */
typedef struct call {
    struct op *op;
    size_t index;
} call;

typedef struct op {
    ag_resolver *r;
    const ag_taskdef *td;
    ag_resolve_cb cb;
    void *arg;
    uv_timer_t finish;    /* completion always runs from here */
    ag_secret_plan *plan; /* what to fetch (plan.h); the preflight checks the same */
    answer *answers;      /* one per plan fetch */
    call *ssm_calls;      /* one per plan SSM group */
    call *sm_calls;       /* one per plan Secrets Manager fetch */
    call *path_calls;     /* one per plan SSM path */
    call *obj_calls;      /* one per plan S3 object (environment files) */
    es_buf *objects;      /* SECRET: each object's content, as plan->objects */
    call *ecr_calls;      /* one per plan ECR registry */
    ecr_answer *ecr;      /* one per plan ECR registry */
    aw_credentials creds; /* the execution role's; wiped at the end */
    size_t pending;
    bool failed;
    char reason[AG_REASON_BUF];
    ag_resolution *result;
} op;

/* ---- resolver ---- */

static int64_t default_now(void)
{
    return (int64_t)time(NULL);
}

int ag_resolver_create(const ag_resolver_config *cfg, ag_resolver **out)
{
    if (!cfg || !cfg->client || !cfg->creds || !cfg->region || !cfg->fp_key || !cfg->fp_key_len)
        return -EINVAL;
    ag_resolver *r = es_calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->client = cfg->client;
    r->creds = cfg->creds;
    r->preflight = cfg->preflight;
    r->now = cfg->now ? cfg->now : default_now;
    r->region = es_strdup(cfg->region);
    r->fp_key = es_malloc(cfg->fp_key_len);
    const ag_ecr_local *el = &cfg->ecr_local;
    bool ecr_ok = true;
    r->ecr_only = el->only;
    if (el->host && *el->host) {
        r->ecr_host = es_strdup(el->host);
        r->ecr_account = es_strdup(el->account ? el->account : "");
        r->ecr_region = es_strdup(el->region ? el->region : cfg->region);
        ecr_ok = r->ecr_host && r->ecr_account && r->ecr_region;
    }
    if (!r->region || !r->fp_key || !ecr_ok) {
        ag_resolver_free(r);
        return -ENOMEM;
    }
    memcpy(r->fp_key, cfg->fp_key, cfg->fp_key_len);
    r->fp_key_len = cfg->fp_key_len;
    *out = r;
    return 0;
}

static void ecr_cached_clear(ecr_cached *e)
{
    es_free(e->role);
    es_free(e->host);
    es_free(e->account);
    es_free(e->region);
    es_free(e->username);
    if (e->password)
        es_wipe(e->password, e->password_len);
    es_free(e->password);
    memset(e, 0, sizeof *e);
}

static void resolver_destroy(ag_resolver *r)
{
    void (*closed)(void *) = r->closed;
    void *arg = r->closed_arg;
    for (size_t i = 0; i < AG_ECR_CACHE_MAX; i++)
        ecr_cached_clear(&r->ecr_cache[i]);
    es_free(r->ecr_host);
    es_free(r->ecr_account);
    es_free(r->ecr_region);
    if (r->fp_key)
        es_wipe(r->fp_key, r->fp_key_len);
    es_free(r->fp_key);
    es_free(r->region);
    es_free(r);
    if (closed)
        closed(arg);
}

void ag_resolver_close(ag_resolver *r, void (*closed)(void *arg), void *arg)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    r->closed = closed;
    r->closed_arg = arg;
    /* each operation in flight ends at its next step (stopping()); the last
     * one to end frees the resolver (op_free_cb) */
    if (!r->in_flight)
        resolver_destroy(r);
}

void ag_resolver_free(ag_resolver *r)
{
    ag_resolver_close(r, NULL, NULL);
}

void ag_resolver_get_stats(const ag_resolver *r, ag_resolver_stats *out)
{
    *out = r->stats;
}

/* ---- resolution results ---- */

void ag_resolution_free(ag_resolution *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n; i++) {
        ag_resolved_secret *s = &res->items[i];
        if (s->value)
            es_wipe(s->value, s->len);
        es_free(s->value);
        es_free(s->source_arn);
        es_free(s->version);
    }
    for (size_t i = 0; i < res->n_envfiles; i++) {
        if (res->envfiles[i].env)
            es_wipe(res->envfiles[i].env, res->envfiles[i].len);
        es_free(res->envfiles[i].env);
    }
    for (size_t i = 0; i < res->n_ecr; i++) {
        if (res->ecr[i].auth)
            es_wipe(res->ecr[i].auth, res->ecr[i].len);
        es_free(res->ecr[i].auth);
    }
    es_free(res->ecr);
    es_free(res->envfiles);
    es_free(res->items);
    es_free(res);
}

size_t ag_resolution_values(const ag_resolution *res, size_t container, ag_secret_value *out,
                            size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; res && i < res->n && n < cap; i++) {
        const ag_resolved_secret *s = &res->items[i];
        if (s->container != container || s->target == AG_SECRET_REGISTRY)
            continue;
        out[n++] = (ag_secret_value){.target = s->target,
                                     .name = s->name,
                                     .value = s->value,
                                     .len = s->len,
                                     .binary = s->binary,
                                     .expand = s->expand};
    }
    return n;
}

const char *ag_resolution_envfiles(const ag_resolution *res, size_t container, size_t *len)
{
    *len = 0;
    for (size_t i = 0; res && i < res->n_envfiles; i++)
        if (res->envfiles[i].container == container) {
            *len = res->envfiles[i].len;
            return res->envfiles[i].env;
        }
    return NULL;
}

const char *ag_resolution_registry_auth(const ag_resolution *res, size_t container)
{
    for (size_t i = 0; res && i < res->n; i++)
        if (res->items[i].container == container && res->items[i].target == AG_SECRET_REGISTRY)
            return res->items[i].value;
    for (size_t i = 0; res && i < res->n_ecr; i++)
        if (res->ecr[i].container == container)
            return res->ecr[i].auth;
    return NULL;
}

/* ---- the operation ---- */

static void schedule_finish(struct op *o);

static void op_free_cb(uv_handle_t *h)
{
    op *o = h->data;
    ag_resolver *r = o->r;
    r->in_flight--;
    for (size_t i = 0; o->answers && o->plan && i < o->plan->n_fetches; i++) {
        answer *f = &o->answers[i];
        if (f->value)
            es_wipe(f->value, f->len);
        es_free(f->value);
        es_free(f->arn);
        es_free(f->version);
        aw_ssm_result_clear(&f->params);
    }
    es_free(o->answers);
    es_free(o->ssm_calls);
    es_free(o->sm_calls);
    es_free(o->path_calls);
    es_free(o->obj_calls);
    for (size_t i = 0; o->objects && o->plan && i < o->plan->n_objects; i++)
        es_buf_free_secret(&o->objects[i]);
    es_free(o->objects);
    for (size_t i = 0; o->ecr && o->plan && i < o->plan->n_ecr_registries; i++) {
        es_free(o->ecr[i].username);
        if (o->ecr[i].password)
            es_wipe(o->ecr[i].password, o->ecr[i].password_len);
        es_free(o->ecr[i].password);
    }
    es_free(o->ecr);
    es_free(o->ecr_calls);
    ag_secret_plan_free(o->plan);
    aw_credentials_clear(&o->creds);
    ag_resolution_free(o->result); /* only when the callback did not take it */
    es_wipe(o->reason, sizeof o->reason);
    es_free(o);
    if (r->closing && !r->in_flight)
        resolver_destroy(r);
}

/* Ends the operation now with AG_REASON_SECRETS and the formatted reason. */
static void give_up(op *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void give_up(op *o, const char *fmt, ...)
{
    char text[AG_REASON_BUF];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ag_reason_secrets(o->reason, sizeof o->reason, "%s", text);
    o->failed = true;
    schedule_finish(o);
}

/* The agent is stopping: the operation ends here, through its callback,
 * before it asks anything more of the credentials provider or the client
 * (which are closing too, and may be gone once their own work has ended). */
static bool stopping(op *o)
{
    if (!o->r->closing)
        return false;
    if (!o->failed) {
        ag_reason_clip(o->reason, sizeof o->reason, AG_REASON_AGENT_STOPPING);
        o->failed = true;
    }
    schedule_finish(o);
    return true;
}

static void on_finish(uv_timer_t *t)
{
    op *o = t->data;
    ag_resolver *r = o->r;
    if (o->failed) {
        r->stats.failures++;
        o->cb(o->arg, NULL, o->reason);
    } else {
        ag_resolution *res = o->result;
        o->result = NULL;
        o->cb(o->arg, res, NULL);
    }
    uv_close((uv_handle_t *)&o->finish, op_free_cb);
}

static void schedule_finish(op *o)
{
    uv_timer_start(&o->finish, on_finish, 0, 0);
}

/* Records the first failure only: ECS reports one reason. */
static void fail(op *o, const char *service, const char *region, const char *secret,
                 const char *code, const char *detail)
{
    if (o->failed)
        return;
    o->failed = true;
    if (o->r->closing) {
        /* the calls in flight when the stop began end canceled: that is
         * not the secret's fault */
        ag_reason_clip(o->reason, sizeof o->reason, AG_REASON_AGENT_STOPPING);
        return;
    }
    ag_secret_failure f = {
        .service = service, .region = region, .secret = secret, .aws_code = code, .detail = detail};
    ag_reason_secret_failure(o->reason, sizeof o->reason, &f);
}

static void fail_aws(op *o, const char *service, const char *region, const char *secret,
                     const aw_error *e)
{
    char detail[AW_ERROR_MESSAGE_MAX + 64];
    if (e->kind == AW_ERR_SERVICE) {
        fail(o, service, region, secret, e->code, e->message);
        return;
    }
    aw_error_format(e, detail, sizeof detail);
    fail(o, service, region, secret, NULL, detail);
}

/* repositoryCredentials: the fingerprint is the secret's, the value handed
 * over the X-Registry-Auth header Docker takes (inject.h). */
static int registry_item(op *o, const ag_plan_item *it, const answer *f, ag_resolved_secret *s)
{
    ag_resolver *r = o->r;
    const char *region = o->plan->fetches[it->fetch].region;
    char err[256];
    if (f->binary) {
        fail(o, "asm", region, it->ref->value_from, NULL,
             "the registry credentials secret is binary (SecretBinary); it must be a JSON "
             "SecretString");
        return -EINVAL;
    }
    es_buf hdr;
    es_buf_init(&hdr, AG_REGISTRY_AUTH_MAX);
    if (ag_registry_auth_build(o->td->containers[it->container].image, f->value, f->len, &hdr, err,
                               sizeof err) < 0) {
        es_buf_free_secret(&hdr);
        fail(o, "asm", region, it->ref->value_from, NULL, err);
        return -EINVAL;
    }
    s->len = hdr.len;
    s->value = es_buf_steal(&hdr);
    s->source_arn = es_strdup(f->arn ? f->arn : "");
    s->version = es_strdup(f->version ? f->version : "");
    if (!s->value || !s->source_arn || !s->version ||
        ag_secret_fingerprint(r->fp_key, r->fp_key_len, f->value, f->len, s->fingerprint,
                              sizeof s->fingerprint) < 0) {
        fail(o, "asm", region, it->ref->value_from, NULL, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* "ecs-secrets.expand.DB_=<valueFrom>": how a failure names the label. */
static void expand_fail(op *o, const ag_plan_item *it, const char *detail)
{
    char what[AG_TD_LABEL_KEY_MAX + AG_VF_MAX + 2];
    const ag_plan_fetch *pf = &o->plan->fetches[it->fetch];
    snprintf(what, sizeof what, "%s=%s", it->ref->name, it->ref->value_from);
    fail(o, pf->ssm ? "ssm" : "asm", pf->region, what, NULL, detail);
}

/* An SSM path's variables and set version (no value is hashed). */
static int expand_path(op *o, const ag_plan_item *it, const answer *f, es_buf *env, size_t *n,
                       char *version, char *err, size_t errlen)
{
    const aw_ssm_result *ps = &f->params;
    const char *path = o->plan->fetches[it->fetch].ssm_request;
    if (ps->truncated)
        return es_errf(err, errlen, -EINVAL, "more than %d parameters under the path '%.256s/'",
                       AG_EXPAND_MAX, path);
    const char **names = es_calloc(ps->n_params ? ps->n_params : 1, sizeof *names);
    int64_t *versions = es_calloc(ps->n_params ? ps->n_params : 1, sizeof *versions);
    int rc = names && versions ? 0 : es_errf(err, errlen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < ps->n_params && rc == 0; i++) {
        const aw_ssm_parameter *p = &ps->params[i];
        names[i] = p->name;
        versions[i] = p->version;
        rc = ag_expand_add_param(it->expand->prefix, path, p->name, p->value, strlen(p->value), env,
                                 n, err, errlen);
    }
    if (rc == 0 && ag_expand_set_version(names, versions, ps->n_params, version,
                                         AG_EXPAND_VERSION_LEN + 1) < 0)
        rc = es_errf(err, errlen, -ENOMEM, "out of memory");
    es_free(names);
    es_free(versions);
    return rc;
}

/* The path's ARN as the store names it: a parameter's ARN up to
 * "parameter" + the path (the account of a bare name is the store's), or
 * the label's ARN, or, for an empty path given by name, the name. */
static char *path_arn(const ag_plan_item *it, const aw_ssm_result *ps, const char *path)
{
    const ag_valuefrom *vf = &it->ref->vf;
    const char *a = ps->n_params ? ps->params[0].arn : NULL;
    const char *at = a ? strstr(a, ":parameter/") : NULL;
    es_buf b;
    es_buf_init(&b, AG_VF_MAX + 128);
    int rc;
    if (at)
        rc = es_buf_printf(&b, "%.*s:parameter%s", (int)(at - a), a, path);
    else if (vf->is_arn)
        rc = es_buf_printf(&b, "arn:%s:ssm:%s:%s:parameter%s", vf->partition, vf->region,
                           vf->account, path);
    else
        rc = es_buf_append_str(&b, path);
    if (rc < 0) {
        es_buf_free(&b);
        return NULL;
    }
    return es_buf_steal(&b);
}

/* An expansion label's one entry: its "NAME=VALUE\0" list, the source
 * (the secret's ARN, or the path's) and version (the secret's VersionId,
 * or the path's set version). */
static int expand_item(op *o, const ag_plan_item *it, const answer *f, ag_resolved_secret *s)
{
    ag_resolver *r = o->r;
    const ag_plan_fetch *pf = &o->plan->fetches[it->fetch];
    char err[512], version[AG_EXPAND_VERSION_LEN + 1] = "";
    es_buf env;
    es_buf_init(&env, AG_EXPAND_ENV_MAX);
    size_t n = 0;
    int rc;
    if (pf->ssm_path)
        rc = expand_path(o, it, f, &env, &n, version, err, sizeof err);
    else if (f->binary)
        rc = es_errf(err, sizeof err, -EINVAL,
                     "the secret is binary (SecretBinary); an expansion takes a JSON object");
    else
        rc = ag_expand_json(it->expand->prefix, f->value, f->len, &env, &n, err, sizeof err);
    if (rc < 0) {
        es_buf_free_secret(&env);
        expand_fail(o, it, err);
        return rc;
    }
    s->expand = true;
    s->len = env.len;
    s->value = es_buf_steal(&env);
    if (!s->value && (s->value = es_calloc(1, 1)))
        s->len = 0; /* an empty path or object: no variable */
    s->source_arn =
        pf->ssm_path ? path_arn(it, &f->params, pf->ssm_request) : es_strdup(f->arn ? f->arn : "");
    s->version = es_strdup(pf->ssm_path ? version : f->version ? f->version : "");
    if (!s->value || !s->source_arn || !s->version ||
        ag_secret_fingerprint(r->fp_key, r->fp_key_len, s->value, s->len, s->fingerprint,
                              sizeof s->fingerprint) < 0) {
        expand_fail(o, it, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* The launch's name check of every container with expansions: no name
 * twice, none an environment[] or secrets[] name (expand.h). */
static void check_expansions(op *o)
{
    const ag_resolution *res = o->result;
    for (size_t c = 0; c < o->td->n_containers && !o->failed; c++) {
        const ag_container_def *cd = &o->td->containers[c];
        if (!cd->n_expands)
            continue;
        const char *sets[AG_EXPAND_LABELS_MAX];
        size_t lens[AG_EXPAND_LABELS_MAX];
        for (size_t x = 0; x < cd->n_expands && x < AG_EXPAND_LABELS_MAX; x++) {
            sets[x] = "";
            lens[x] = 0;
            for (size_t i = 0; i < res->n; i++)
                if (res->items[i].expand && res->items[i].container == c &&
                    strcmp(res->items[i].name, cd->expands[x].ref->name) == 0) {
                    sets[x] = res->items[i].value;
                    lens[x] = res->items[i].len;
                }
        }
        char err[AG_TD_LABEL_KEY_MAX * 2 + AG_EXPAND_NAME_MAX + 128];
        if (ag_expand_check_names(cd, sets, lens, err, sizeof err) < 0) {
            const ag_plan_item *it = NULL;
            for (size_t i = 0; i < o->plan->n_items && !it; i++)
                if (o->plan->items[i].expand && o->plan->items[i].container == c)
                    it = &o->plan->items[i];
            expand_fail(o, it, err);
        }
    }
}

/* An environment file that could not be read: named by its ARN (never
 * its content; its bucket's region is S3's to say), the first failure
 * only, as fail(). */
static void fail_envfile(op *o, const char *arn, const char *code, const char *detail)
{
    if (o->failed)
        return;
    o->failed = true;
    if (o->r->closing) {
        ag_reason_clip(o->reason, sizeof o->reason, AG_REASON_AGENT_STOPPING);
        return;
    }
    ag_reason_secrets(o->reason, sizeof o->reason,
                      "execution resource retrieval failed: unable to retrieve environment file "
                      "%s from s3%s%s: %s",
                      arn, code ? ": " : "", code ? code : "", detail);
}

/* One container's files merged (envfile.h: the first file to define a
 * variable wins; environment and secrets win over both, at injection)
 * from the objects' parsed variables. */
static int merge_container(op *o, const es_buf *parsed, size_t c, ag_resolved_envfiles *out)
{
    const ag_secret_plan *pl = o->plan;
    es_buf views[AG_ENVFILES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < pl->n_envfiles && n < AG_ENVFILES_MAX; i++)
        if (pl->envfiles[i].container == c)
            views[n++] = parsed[pl->envfiles[i].object]; /* views: freed through parsed */
    es_buf merged;
    es_buf_init(&merged, AG_ENVFILE_ENV_MAX);
    int rc = ag_envfile_merge(views, n, NULL, 0, &merged);
    *out = (ag_resolved_envfiles){.container = c};
    if (rc == 0 && merged.len) {
        out->env = es_malloc(merged.len);
        if (out->env) {
            memcpy(out->env, merged.data, merged.len);
            out->len = merged.len;
        } else {
            rc = -ENOMEM;
        }
    }
    es_buf_free_secret(&merged);
    return rc;
}

/* Every object read by ECS's rules, then each container's files merged. */
static void assemble_envfiles(op *o)
{
    const ag_secret_plan *pl = o->plan;
    ag_resolution *res = o->result;
    es_buf *parsed = es_calloc(pl->n_objects, sizeof *parsed);
    res->envfiles = es_calloc(o->td->n_containers, sizeof *res->envfiles);
    if (!parsed || !res->envfiles) {
        es_free(parsed);
        fail_envfile(o, pl->objects[0]->value, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < pl->n_objects; i++)
        es_buf_init(&parsed[i], AG_ENVFILE_ENV_MAX);
    for (size_t i = 0; i < pl->n_objects && !o->failed; i++) {
        char err[256];
        const es_buf *b = &o->objects[i];
        if (ag_envfile_parse(b->data ? b->data : "", b->len, &parsed[i], err, sizeof err) < 0)
            fail_envfile(o, pl->objects[i]->value, NULL, err);
    }
    for (size_t c = 0; c < o->td->n_containers && !o->failed; c++) {
        if (!o->td->containers[c].n_env_files)
            continue;
        int rc = merge_container(o, parsed, c, &res->envfiles[res->n_envfiles]);
        if (rc < 0)
            fail_envfile(o, o->td->containers[c].env_files[0].value, NULL,
                         rc == -ENOMEM
                             ? "out of memory"
                             : "the container's environment files are too large together");
        else
            res->n_envfiles++;
    }
    for (size_t i = 0; i < pl->n_objects; i++)
        es_buf_free_secret(&parsed[i]);
    es_free(parsed);
}

/* An ECR token that could not be had or used: ECS's words for it. The
 * first failure only, as fail(). */
static void fail_ecr(op *o, const ag_ecr_image *img, const char *code, const char *detail)
{
    if (o->failed)
        return;
    o->failed = true;
    if (o->r->closing) {
        ag_reason_clip(o->reason, sizeof o->reason, AG_REASON_AGENT_STOPPING);
        return;
    }
    ag_reason_secrets(o->reason, sizeof o->reason,
                      "execution resource retrieval failed: unable to retrieve ecr registry auth "
                      "for %s (account %s, %s)%s%s: %s",
                      img->host, img->account, img->region, code ? ": " : "", code ? code : "",
                      detail);
}

/* Each ECR container's X-Registry-Auth from its registry's token: the
 * Docker client's document {"username","password","serveraddress"} built
 * by the one writer of it (values.h), the token handed in as the JSON
 * object that writer reads. */
static void assemble_ecr(op *o)
{
    const ag_secret_plan *pl = o->plan;
    ag_resolution *res = o->result;
    if (!(res->ecr = es_calloc(pl->n_ecr, sizeof *res->ecr))) {
        fail_ecr(o, &pl->ecr[0].image, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < pl->n_ecr && !o->failed; i++) {
        const ag_plan_ecr *e = &pl->ecr[i];
        const ecr_answer *a = &o->ecr[e->registry];
        es_buf doc, hdr;
        es_buf_init(&doc, AW_ECR_TOKEN_MAX + AW_ECR_USER_MAX + 64);
        es_buf_init(&hdr, AG_REGISTRY_AUTH_MAX);
        es_jw w;
        es_jw_init(&w, &doc);
        es_jw_obj(&w);
        es_jw_kstr(&w, "username", a->username ? a->username : "");
        es_jw_kstr(&w, "password", a->password ? a->password : "");
        es_jw_obj_end(&w);
        char err[256];
        int rc = es_jw_finish(&w);
        if (rc == 0)
            rc = ag_registry_auth_build(o->td->containers[e->container].image, es_buf_cstr(&doc),
                                        doc.len, &hdr, err, sizeof err);
        else
            snprintf(err, sizeof err, "out of memory");
        es_buf_free_secret(&doc);
        if (rc < 0) {
            es_buf_free_secret(&hdr);
            fail_ecr(o, &e->image, NULL, err);
            return;
        }
        res->ecr[res->n_ecr].container = e->container;
        res->ecr[res->n_ecr].len = hdr.len;
        res->ecr[res->n_ecr].auth = es_buf_steal(&hdr);
        if (!res->ecr[res->n_ecr].auth) {
            fail_ecr(o, &e->image, NULL, "out of memory");
            return;
        }
        res->n_ecr++;
    }
}

/* Builds the result once every fetch answered. */
static void assemble(op *o)
{
    ag_resolver *r = o->r;
    ag_resolution *res = es_calloc(1, sizeof *res);
    if (!res ||
        !(res->items = es_calloc(o->plan->n_items ? o->plan->n_items : 1, sizeof *res->items))) {
        es_free(res);
        fail(o, "ssm", r->region, "(all)", NULL, "out of memory");
        return;
    }
    o->result = res;
    int64_t now = r->now();
    es_buf extracted;
    es_buf_init(&extracted, AG_SECRET_VALUE_MAX);
    for (size_t i = 0; i < o->plan->n_items; i++) {
        const ag_plan_item *it = &o->plan->items[i];
        const answer *f = &o->answers[it->fetch];
        const char *region = o->plan->fetches[it->fetch].region;
        const ag_valuefrom *vf = &it->ref->vf;
        ag_resolved_secret *s = &res->items[res->n];
        s->container = it->container;
        s->target = it->target;
        s->name = it->ref->name;
        s->value_from = it->ref->value_from;
        s->resolved_at = now;
        s->binary = f->binary;
        const char *v = f->value;
        size_t len = f->len;
        const char *json_key = vf->kind == AG_VF_SECRETSMANAGER ? vf->json_key : NULL;
        if (json_key) {
            char err[256];
            es_buf_reset_secret(&extracted);
            if (f->binary) {
                fail(o, "asm", region, it->ref->value_from, NULL,
                     "json-key given for a binary secret (SecretBinary is not JSON)");
                break;
            }
            if (ag_secret_json_key(v, len, json_key, &extracted, err, sizeof err) < 0) {
                fail(o, "asm", region, it->ref->value_from, NULL, err);
                break;
            }
            v = es_buf_cstr(&extracted);
            len = extracted.len;
        }
        res->n++; /* from here on ag_resolution_free releases what s holds */
        if (it->expand) {
            if (expand_item(o, it, f, s) < 0)
                break;
            continue;
        }
        if (it->target == AG_SECRET_REGISTRY) {
            if (registry_item(o, it, f, s) < 0)
                break;
            continue;
        }
        s->value = es_malloc(len + 1);
        s->source_arn = es_strdup(f->arn ? f->arn : "");
        s->version = es_strdup(f->version ? f->version : "");
        if (!s->value || !s->source_arn || !s->version) {
            fail(o, "ssm", r->region, it->ref->value_from, NULL, "out of memory");
            break;
        }
        memcpy(s->value, v, len);
        s->value[len] = '\0';
        s->len = len;
        if (ag_secret_fingerprint(r->fp_key, r->fp_key_len, s->value, s->len, s->fingerprint,
                                  sizeof s->fingerprint) < 0) {
            fail(o, "ssm", r->region, it->ref->value_from, NULL, "fingerprint failed");
            break;
        }
    }
    es_buf_free_secret(&extracted);
    if (!o->failed)
        check_expansions(o);
    if (!o->failed && o->plan->n_objects)
        assemble_envfiles(o);
    if (!o->failed && o->plan->n_ecr)
        assemble_ecr(o);
    if (o->failed) {
        ag_resolution_free(o->result);
        o->result = NULL;
    }
}

static void one_done(op *o)
{
    if (--o->pending > 0)
        return;
    if (!o->failed)
        assemble(o);
    schedule_finish(o);
}

/* SSM answers "Name" without the selector and "Selector" as ":3" / ":label". */
static size_t match_ssm(op *o, const ag_plan_ssm_group *g, const aw_ssm_parameter *p)
{
    for (size_t i = 0; i < g->n; i++) {
        if (o->answers[g->fetches[i]].done)
            continue;
        const char *req = o->plan->fetches[g->fetches[i]].ssm_request;
        const char *name = p->name ? p->name : "";
        /* "/a" and "a" are the same parameter */
        const char *rq = req[0] == '/' ? req + 1 : req;
        const char *nm = name[0] == '/' ? name + 1 : name;
        size_t nl = strlen(nm);
        if (strncmp(rq, nm, nl) != 0)
            continue;
        const char *sel = rq + nl;
        if (*sel == '\0' && (!p->selector || !*p->selector))
            return g->fetches[i];
        if (*sel == ':' && p->selector && strcmp(sel, p->selector) == 0)
            return g->fetches[i];
    }
    return SIZE_MAX;
}

/* A Secrets Manager reference: SSM answers Version 0, and what tells one
 * version of the secret from another (drift compares it) is the secret's
 * VersionId in SourceResult. SourceResult is a GetSecretValue answer, so it
 * holds the value: the parse tree is wiped, the client wipes the rest. NULL
 * when not a reference or no VersionId (then SSM's version is recorded). */
static char *reference_version(const ag_plan_fetch *f, const aw_ssm_parameter *p)
{
    static const char prefix[] = "/aws/reference/secretsmanager/";
    if (!p->source_result || strncmp(f->ssm_request, prefix, sizeof prefix - 1) != 0)
        return NULL;
    es_json *j = NULL;
    es_json_limits lim = es_json_default_limits;
    if (es_json_parse(p->source_result, strlen(p->source_result), &lim, &j, NULL, 0) != 0)
        return NULL;
    const char *v = es_json_as_str(es_json_get(j, "VersionId"));
    char *out = v && *v && strlen(v) < 72 ? es_strdup(v) : NULL;
    es_json_free_secret(j);
    return out;
}

static void on_ssm(void *arg, const aw_error *err, aw_ssm_result *res)
{
    call *c = arg;
    op *o = c->op;
    const ag_plan_ssm_group *g = &o->plan->ssm_groups[c->index];
    const ag_plan_fetch *pf = o->plan->fetches;
    if (err) {
        /* name every parameter of the call: AWS's error does not say which */
        es_buf names;
        es_buf_init(&names, NAMES_LIST_MAX);
        for (size_t i = 0; i < g->n; i++)
            es_buf_printf(&names, "%s%s", i ? "," : "", pf[g->fetches[i]].ssm_request);
        fail_aws(o, "ssm", g->region, es_buf_cstr(&names), err);
        es_buf_free(&names);
        one_done(o);
        return;
    }
    if (res->n_invalid) {
        es_buf names;
        es_buf_init(&names, NAMES_LIST_MAX);
        for (size_t i = 0; i < res->n_invalid; i++)
            es_buf_printf(&names, "%s%s", i ? "," : "", res->invalid[i]);
        fail(o, "ssm", g->region, es_buf_cstr(&names), "InvalidParameters",
             "the parameters do not exist or are not visible to the execution role");
        es_buf_free(&names);
    }
    for (size_t i = 0; i < res->n_params && !o->failed; i++) {
        aw_ssm_parameter *p = &res->params[i];
        size_t k = match_ssm(o, g, p);
        if (k == SIZE_MAX)
            continue; /* an answer we did not ask for: ignore it */
        answer *f = &o->answers[k];
        f->done = true;
        f->value = p->value; /* steal: the client wipes what is left */
        p->value = NULL;
        f->len = f->value ? strlen(f->value) : 0;
        f->arn = p->arn ? es_strdup(p->arn) : NULL;
        char ver[32];
        snprintf(ver, sizeof ver, "%" PRId64, p->version);
        char *ref = reference_version(&pf[k], p);
        f->version = ref ? ref : es_strdup(ver);
        if (!f->value || !f->version)
            fail(o, "ssm", g->region, pf[k].ssm_request, NULL, "incomplete answer");
    }
    for (size_t i = 0; i < g->n && !o->failed; i++) {
        if (!o->answers[g->fetches[i]].done)
            fail(o, "ssm", g->region, pf[g->fetches[i]].ssm_request, "InvalidParameters",
                 "the parameter was not in the answer");
    }
    one_done(o);
}

static void on_sm(void *arg, const aw_error *err, aw_secret_value *val)
{
    call *c = arg;
    op *o = c->op;
    size_t k = o->plan->sm_fetches[c->index];
    const ag_plan_fetch *pf = &o->plan->fetches[k];
    answer *f = &o->answers[k];
    if (err) {
        fail_aws(o, "asm", pf->region, pf->secret_id, err);
        one_done(o);
        return;
    }
    f->done = true;
    if (val->is_binary) {
        f->binary = true;
        f->value = (char *)val->binary;
        f->len = val->binary_len;
        val->binary = NULL;
    } else {
        f->value = val->string;
        f->len = f->value ? strlen(f->value) : 0;
        val->string = NULL;
    }
    f->arn = val->arn ? es_strdup(val->arn) : NULL;
    f->version = es_strdup(val->version_id ? val->version_id : "");
    if (!f->value || !f->version)
        fail(o, "asm", pf->region, pf->secret_id, NULL, "incomplete answer");
    one_done(o);
}

static void on_path(void *arg, const aw_error *err, aw_ssm_result *res)
{
    call *c = arg;
    op *o = c->op;
    size_t k = o->plan->path_fetches[c->index];
    const ag_plan_fetch *pf = &o->plan->fetches[k];
    answer *f = &o->answers[k];
    if (err) {
        char what[AG_VF_MAX + 2];
        snprintf(what, sizeof what, "%s/", pf->ssm_request);
        fail_aws(o, "ssm", pf->region, what, err);
        one_done(o);
        return;
    }
    f->done = true;
    f->params = *res; /* steal: values are wiped with the answer */
    memset(res, 0, sizeof *res);
    one_done(o);
}

static void on_object(void *arg, const aw_error *err, es_buf *content)
{
    call *c = arg;
    op *o = c->op;
    const char *arn = o->plan->objects[c->index]->value;
    if (err) {
        char detail[AW_ERROR_MESSAGE_MAX + 64];
        aw_error_format(err, detail, sizeof detail);
        if (err->kind == AW_ERR_SERVICE)
            fail_envfile(o, arn, err->code, err->message);
        else
            fail_envfile(o, arn, NULL, detail);
        one_done(o);
        return;
    }
    o->objects[c->index] = *content; /* moved whole: wiped with the operation */
    memset(content, 0, sizeof *content);
    one_done(o);
}

/* The bucket's region is known: the object is read there. */
static void on_location(void *arg, const aw_error *err, const char *region)
{
    call *c = arg;
    op *o = c->op;
    const ag_env_file *f = o->plan->objects[c->index];
    int rc = 0;
    if (!err && !o->failed && !o->r->closing) {
        aw_sigv4_creds creds = aw_credentials_view(&o->creds);
        rc = aw_s3_get_object(o->r->client, &creds, region, f->bucket, f->key, on_object, c);
        if (rc == 0) {
            o->r->stats.s3_calls++;
            return; /* on_object ends this object's part */
        }
    }
    if (err) {
        char detail[AW_ERROR_MESSAGE_MAX + 64];
        aw_error_format(err, detail, sizeof detail);
        fail_envfile(o, f->value, err->kind == AW_ERR_SERVICE ? err->code : NULL,
                     err->kind == AW_ERR_SERVICE ? err->message : detail);
    } else if (o->r->closing) {
        fail_envfile(o, f->value, NULL, "the agent is stopping"); /* worded as a stop */
    } else if (rc < 0) {
        fail_envfile(o, f->value, NULL, strerror(-rc));
    }
    one_done(o);
}

/* The environment files' objects: as ECS's agent, the bucket's region
 * first (GetBucketLocation, asked in the task's region), then the object
 * from there (GetObject). */
static void start_objects(op *o, const aw_sigv4_creds *creds)
{
    ag_resolver *r = o->r;
    const ag_secret_plan *pl = o->plan;
    for (size_t i = 0; i < pl->n_objects; i++) {
        const ag_env_file *f = pl->objects[i];
        o->obj_calls[i] = (call){.op = o, .index = i};
        int rc = aw_s3_get_bucket_location(r->client, creds, r->region, f->bucket, on_location,
                                           &o->obj_calls[i]);
        if (rc < 0) {
            fail_envfile(o, f->value, NULL, strerror(-rc));
            o->pending--;
        } else {
            r->stats.s3_calls++;
        }
    }
}

/* ---- ECR tokens ---- */

static ecr_cached *ecr_cache_find(ag_resolver *r, const char *role, const ag_ecr_image *img)
{
    int64_t now = r->now();
    for (size_t i = 0; i < AG_ECR_CACHE_MAX; i++) {
        ecr_cached *e = &r->ecr_cache[i];
        if (!e->role)
            continue;
        if (e->expires_at - AG_ECR_TOKEN_MARGIN_S <= now) {
            ecr_cached_clear(e); /* no longer handed out: gone */
            continue;
        }
        if (strcmp(e->role, role) == 0 && strcmp(e->host, img->host) == 0 &&
            strcmp(e->account, img->account) == 0 && strcmp(e->region, img->region) == 0)
            return e;
    }
    return NULL;
}

/* Keeps a token for (role, registry) unless it is too close to its end;
 * a full cache drops the entry that expires first. */
static void ecr_cache_put(ag_resolver *r, const char *role, const ag_ecr_image *img,
                          const aw_ecr_token *t)
{
    if (t->expires_at - AG_ECR_TOKEN_MARGIN_S <= r->now())
        return;
    ecr_cached *slot = ecr_cache_find(r, role, img);
    for (size_t i = 0; i < AG_ECR_CACHE_MAX && !slot; i++)
        if (!r->ecr_cache[i].role)
            slot = &r->ecr_cache[i];
    if (!slot) {
        slot = &r->ecr_cache[0];
        for (size_t i = 1; i < AG_ECR_CACHE_MAX; i++)
            if (r->ecr_cache[i].expires_at < slot->expires_at)
                slot = &r->ecr_cache[i];
    }
    ecr_cached_clear(slot);
    ecr_cached e = {.role = es_strdup(role),
                    .host = es_strdup(img->host),
                    .account = es_strdup(img->account),
                    .region = es_strdup(img->region),
                    .username = es_strdup(t->username),
                    .password = es_malloc(t->password_len + 1),
                    .password_len = t->password_len,
                    .expires_at = t->expires_at};
    if (!e.role || !e.host || !e.account || !e.region || !e.username || !e.password) {
        ecr_cached_clear(&e); /* not kept: asked again next time */
        return;
    }
    memcpy(e.password, t->password, t->password_len + 1);
    *slot = e;
}

/* Copies a token into the operation's answer for registry k. */
static int ecr_take(op *o, size_t k, const char *username, const char *password, size_t len)
{
    ecr_answer *a = &o->ecr[k];
    a->username = es_strdup(username);
    a->password = es_malloc(len + 1);
    if (!a->username || !a->password)
        return -ENOMEM;
    memcpy(a->password, password, len);
    a->password[len] = '\0';
    a->password_len = len;
    return 0;
}

static void on_ecr_token(void *arg, const aw_error *err, aw_ecr_token *tok)
{
    call *c = arg;
    op *o = c->op;
    const ag_ecr_image *img = &o->plan->ecr[o->plan->ecr_registries[c->index]].image;
    if (err) {
        char detail[AW_ERROR_MESSAGE_MAX + 64];
        aw_error_format(err, detail, sizeof detail);
        fail_ecr(o, img, err->kind == AW_ERR_SERVICE ? err->code : NULL,
                 err->kind == AW_ERR_SERVICE ? err->message : detail);
    } else if (ecr_take(o, c->index, tok->username, tok->password, tok->password_len) < 0) {
        fail_ecr(o, img, NULL, "out of memory");
    } else if (!o->r->closing) {
        ecr_cache_put(o->r, o->td->execution_role_arn, img, tok);
    }
    one_done(o);
}

/* Each registry's token: from the cache, else GetAuthorizationToken in the
 * registry's region for its account (what ECS's agent asks). */
static void start_ecr(op *o, const aw_sigv4_creds *creds)
{
    ag_resolver *r = o->r;
    const ag_secret_plan *pl = o->plan;
    for (size_t i = 0; i < pl->n_ecr_registries; i++) {
        const ag_ecr_image *img = &pl->ecr[pl->ecr_registries[i]].image;
        o->ecr_calls[i] = (call){.op = o, .index = i};
        const ecr_cached *hit = ecr_cache_find(r, o->td->execution_role_arn, img);
        int rc;
        if (hit) {
            r->stats.ecr_cached++;
            if (ecr_take(o, i, hit->username, hit->password, hit->password_len) < 0)
                fail_ecr(o, img, NULL, "out of memory");
            o->pending--;
            continue;
        }
        rc = aw_ecr_get_authorization_token(r->client, creds, img->region, img->account,
                                            on_ecr_token, &o->ecr_calls[i]);
        if (rc < 0) {
            fail_ecr(o, img, NULL, strerror(-rc));
            o->pending--;
        } else {
            r->stats.ecr_calls++;
        }
    }
}

static void start_paths(op *o, const aw_sigv4_creds *creds)
{
    ag_resolver *r = o->r;
    const ag_secret_plan *pl = o->plan;
    for (size_t i = 0; i < pl->n_paths; i++) {
        const ag_plan_fetch *f = &pl->fetches[pl->path_fetches[i]];
        o->path_calls[i] = (call){.op = o, .index = i};
        /* AG_EXPAND_MAX at most: a path holding more comes back truncated */
        int rc = aw_ssm_get_parameters_by_path(r->client, creds, f->region, f->ssm_request, true,
                                               AG_EXPAND_MAX, on_path, &o->path_calls[i]);
        if (rc < 0) {
            fail(o, "ssm", f->region, f->ssm_request, NULL, strerror(-rc));
            o->pending--;
        } else {
            r->stats.ssm_paths++;
        }
    }
}

static void start_fetches(op *o)
{
    ag_resolver *r = o->r;
    const ag_secret_plan *pl = o->plan;
    aw_sigv4_creds creds = aw_credentials_view(&o->creds);
    /* one pending for this function itself, so that synchronous failures
     * do not finish the operation while calls are still being started */
    o->pending =
        1 + pl->n_ssm_groups + pl->n_sm + pl->n_paths + pl->n_objects + pl->n_ecr_registries;
    start_ecr(o, &creds);
    start_paths(o, &creds);
    start_objects(o, &creds);
    for (size_t i = 0; i < pl->n_ssm_groups; i++) {
        const ag_plan_ssm_group *g = &pl->ssm_groups[i];
        const char **names = es_calloc(g->n, sizeof *names);
        int rc = -ENOMEM;
        o->ssm_calls[i] = (call){.op = o, .index = i};
        if (names) {
            for (size_t k = 0; k < g->n; k++)
                names[k] = pl->fetches[g->fetches[k]].ssm_request;
            rc = aw_ssm_get_parameters_batch(r->client, &creds, g->region, names, g->n, on_ssm,
                                             &o->ssm_calls[i]);
            es_free(names);
        }
        if (rc < 0) {
            fail(o, "ssm", g->region, pl->fetches[g->fetches[0]].ssm_request, NULL, strerror(-rc));
            o->pending--;
        } else {
            r->stats.ssm_calls += (g->n + AW_SSM_NAMES_PER_CALL - 1) / AW_SSM_NAMES_PER_CALL;
            r->stats.ssm_names += g->n;
        }
    }
    for (size_t i = 0; i < pl->n_sm; i++) {
        const ag_plan_fetch *f = &pl->fetches[pl->sm_fetches[i]];
        o->sm_calls[i] = (call){.op = o, .index = i};
        int rc = aw_sm_get_secret_value(r->client, &creds, f->region, f->secret_id, f->version_id,
                                        f->stage, on_sm, &o->sm_calls[i]);
        if (rc < 0) {
            fail(o, "asm", f->region, f->secret_id, NULL, strerror(-rc));
            o->pending--;
        } else {
            r->stats.sm_calls++;
        }
    }
    one_done(o);
}

static void on_creds(void *arg, const aw_error *err, const aw_credentials *creds)
{
    op *o = arg;
    if (stopping(o))
        return;
    if (err) {
        char detail[AW_ERROR_MESSAGE_MAX + 128];
        aw_error_format(err, detail, sizeof detail);
        give_up(o, "unable to assume the task execution role %s: %s",
                o->td->execution_role_arn ? o->td->execution_role_arn : "(none)", detail);
        return;
    }
    if (aw_credentials_copy(creds, &o->creds) < 0) {
        fail(o, "sts", o->r->region, o->td->execution_role_arn, NULL, "out of memory");
        schedule_finish(o);
        return;
    }
    start_fetches(o);
}

static void assume_role(op *o);

/* The execution role's permissions were checked (preflight.h): a task
 * missing some stops here, before any credential or value is asked for. */
static void on_preflight(void *arg, ag_pf_outcome outcome, const char *reason)
{
    op *o = arg;
    if (stopping(o))
        return;
    if (outcome == AG_PF_MISSING) {
        o->r->stats.preflight_denied++;
        ag_reason_clip(o->reason, sizeof o->reason, reason);
        o->failed = true;
        schedule_finish(o);
        return;
    }
    assume_role(o);
}

/* ---- start ---- */

static int start(ag_resolver *r, const ag_taskdef *td, bool files, bool ecr, ag_resolve_cb cb,
                 void *arg);

int ag_resolve_start(ag_resolver *r, const ag_taskdef *td, ag_resolve_cb cb, void *arg)
{
    return start(r, td, true, true, cb, arg);
}

int ag_resolve_start_secrets(ag_resolver *r, const ag_taskdef *td, ag_resolve_cb cb, void *arg)
{
    return start(r, td, false, false, cb, arg);
}

int ag_resolve_start_no_pull(ag_resolver *r, const ag_taskdef *td, ag_resolve_cb cb, void *arg)
{
    return start(r, td, true, false, cb, arg);
}

static int start(ag_resolver *r, const ag_taskdef *td, bool files, bool ecr, ag_resolve_cb cb,
                 void *arg)
{
    if (r->closing)
        return -ECANCELED;
    size_t total = 0;
    for (size_t c = 0; c < td->n_containers; c++) {
        const ag_container_def *cd = &td->containers[c];
        total += cd->n_secrets + (cd->log ? cd->log->n_secret_options : 0) +
                 (cd->repository_credentials ? 1 : 0) + cd->n_expands;
    }
    if (total > AG_RESOLVE_ITEMS_MAX)
        return -EINVAL;
    op *o = es_calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->r = r;
    o->td = td;
    o->cb = cb;
    o->arg = arg;
    uv_timer_init(aw_client_loop(r->client), &o->finish);
    o->finish.data = o;
    r->in_flight++;
    r->stats.resolutions++;

    char err[512] = "";
    int rc = ag_secret_plan_build(td, r->region, &o->plan, err, sizeof err);
    if (rc == 0 && !files) /* the plan keeps its arrays (freed with it), none is used */
        o->plan->n_envfiles = o->plan->n_objects = 0;
    /* an ECR pull's token is the launch's, as the files are; without an
     * execution role the image is pulled as before (dockerd's own
     * credentials), as ECS on EC2 falls back to the instance's */
    if (rc == 0 && ecr && td->execution_role_arn) {
        ag_ecr_local local = {.host = r->ecr_host,
                              .account = r->ecr_account,
                              .region = r->ecr_region,
                              .only = r->ecr_only};
        rc = ag_secret_plan_ecr(o->plan, td, &local, err, sizeof err);
    }
    if (rc == 0) {
        const ag_secret_plan *pl = o->plan;
        o->answers = es_calloc(pl->n_fetches ? pl->n_fetches : 1, sizeof *o->answers);
        o->ssm_calls = es_calloc(pl->n_ssm_groups ? pl->n_ssm_groups : 1, sizeof *o->ssm_calls);
        o->sm_calls = es_calloc(pl->n_sm ? pl->n_sm : 1, sizeof *o->sm_calls);
        o->path_calls = es_calloc(pl->n_paths ? pl->n_paths : 1, sizeof *o->path_calls);
        o->obj_calls = es_calloc(pl->n_objects ? pl->n_objects : 1, sizeof *o->obj_calls);
        o->objects = es_calloc(pl->n_objects ? pl->n_objects : 1, sizeof *o->objects);
        size_t nr = pl->n_ecr_registries ? pl->n_ecr_registries : 1;
        o->ecr_calls = es_calloc(nr, sizeof *o->ecr_calls);
        o->ecr = es_calloc(nr, sizeof *o->ecr);
        if (!o->answers || !o->ssm_calls || !o->sm_calls || !o->path_calls || !o->obj_calls ||
            !o->objects || !o->ecr_calls || !o->ecr)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        /* a definition that passed registration does not get here; say why
         * anyway, through the callback, as any other failure */
        give_up(o, "%s", rc == -ENOMEM ? "out of memory" : err);
        return 0;
    }
    if (o->plan->n_items == 0 && o->plan->n_objects == 0 && o->plan->n_ecr == 0) {
        o->result = es_calloc(1, sizeof *o->result);
        if (!o->result) {
            ag_reason_clip(o->reason, sizeof o->reason, "out of memory");
            o->failed = true;
        }
        schedule_finish(o);
        return 0;
    }
    if (!td->execution_role_arn) {
        give_up(o, "the task definition has %s but no executionRoleArn",
                o->plan->n_items ? "secrets" : "environmentFiles");
        return 0;
    }
    if (r->preflight) {
        rc = ag_preflight_start(r->preflight, o->plan, td->execution_role_arn, on_preflight, o);
        if (rc == 0)
            return 0;
        /* could not even start: left to the fetch, as a skipped preflight */
    }
    assume_role(o);
    return 0;
}

static void assume_role(op *o)
{
    const ag_taskdef *td = o->td;
    int rc = aw_creds_assume_role(o->r->creds, td->execution_role_arn, on_creds, o);
    if (rc < 0)
        give_up(o, "unable to assume the task execution role %s: %s", td->execution_role_arn,
                strerror(-rc));
}
