/* drift.c - see drift.h. Metadata calls only: never a value. */
#include "agent/secrets/drift.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/tasks/engine.h"
#include "agent/metrics.h"
#include "agent/secrets/expand.h"
#include "agent/secrets/valuefrom.h"
#include "aws/ssm.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"

/* One metadata request's JSON body: a name (AG_VF_MAX) and a filter or stage. */
#define DRIFT_REQUEST_MAX 8192

#define WAITERS_MAX 32
#define VERSION_MAX 72
#define SET_VERSION_PREFIX "set-sha256:" /* ag_expand_set_version's */

/* SRC_SSM_LABEL: stage holds the label; SRC_SSM_PATH: an expansion's path
 * (name without its trailing '/'), its version the set version (expand.h) */
typedef enum src_kind { SRC_SSM, SRC_SSM_LABEL, SRC_SM, SRC_SSM_PATH } src_kind;
typedef enum src_state { S_PENDING, S_OK, S_MISSING, S_ERROR } src_state;

typedef struct source {
    src_kind kind;
    char *region, *name, *stage; /* stage: Secrets Manager only */
    src_state state;
    char version[VERSION_MAX];
    double changed; /* epoch seconds of the last change, 0 unknown */
} source;

typedef struct round round;
typedef struct call_ctx {
    round *r;
    size_t idx;
} call_ctx;

struct round {
    ag_drift *d;
    source *src;
    size_t n, cap;
    unsigned pending;
    struct {
        void (*fn)(void *);
        void *arg;
    } waiters[WAITERS_MAX];
    size_t nwaiters;
};

struct ag_drift {
    ag_drift_config cfg;
    char *region;
    uv_timer_t timer;
    round *cur;
    bool closing, timer_closed;
    unsigned inflight;
    void (*done)(void *arg);
    void *done_arg;
    ag_drift_stats stats;
    ag_series *m_checks, *m_calls, *m_stale_tasks, *m_stale, *m_since;
};

/* ---- parsing (outside input: bounded) ---- */

static int parse_body(const char *body, size_t len, es_json **out)
{
    if (len > AG_DRIFT_BODY_MAX)
        return -EPROTO;
    es_json_limits lim = es_json_default_limits;
    lim.max_bytes = AG_DRIFT_BODY_MAX;
    return es_json_parse(body, len, &lim, out, NULL, 0) == 0 ? 0 : -EPROTO;
}

static double num(const es_json *j)
{
    if (!j || j->type != ES_JSON_NUMBER)
        return 0;
    return strtod(j->u.number.text, NULL);
}

int ag_drift_parse_ssm(const char *body, size_t len, int64_t *version, double *modified)
{
    es_json *j = NULL;
    if (parse_body(body, len, &j) < 0)
        return -EPROTO;
    int rc = -EPROTO;
    const es_json *ps = es_json_get(j, "Parameters");
    if (ps && ps->type == ES_JSON_ARRAY) {
        const es_json *p = es_json_len(ps) ? es_json_at(ps, 0) : NULL;
        int64_t v = 0;
        if (!p) {
            rc = -ENOENT;
        } else if (p->type == ES_JSON_OBJECT && es_json_get_int64(p, "Version", &v) && v > 0) {
            *version = v;
            *modified = num(es_json_get(p, "LastModifiedDate"));
            rc = 0;
        }
    }
    es_json_free(j);
    return rc;
}

int ag_drift_parse_ssm_label(const char *body, size_t len, int64_t *version, double *modified)
{
    es_json *j = NULL;
    if (parse_body(body, len, &j) < 0)
        return -EPROTO;
    int rc = -EPROTO;
    const es_json *p = es_json_get(j, "Parameter");
    int64_t v = 0;
    if (p && p->type == ES_JSON_OBJECT && es_json_get_int64(p, "Version", &v) && v > 0) {
        *version = v;
        *modified = num(es_json_get(p, "LastModifiedDate"));
        rc = 0;
    }
    /* the answer carries the parameter's value (ciphertext for a
     * SecureString asked without decryption, the text of a String) */
    es_json_free_secret(j);
    return rc;
}

int ag_drift_parse_sm(const char *body, size_t len, const char *stage, char *version, size_t vlen,
                      double *changed)
{
    es_json *j = NULL;
    if (parse_body(body, len, &j) < 0)
        return -EPROTO;
    int rc = -EPROTO;
    const es_json *m = es_json_get(j, "VersionIdsToStages");
    if (m && m->type == ES_JSON_OBJECT) {
        rc = -ENOENT;
        for (size_t i = 0; i < m->u.object.n && rc == -ENOENT; i++) {
            const es_json *st = m->u.object.values[i];
            if (!st || st->type != ES_JSON_ARRAY)
                continue;
            for (size_t k = 0; k < st->u.array.n; k++) {
                const char *s = es_json_as_str(st->u.array.items[k]);
                if (s && strcmp(s, stage) == 0) {
                    const char *vid = m->u.object.keys[i];
                    if (strlen(vid) >= vlen) {
                        rc = -EPROTO;
                    } else {
                        snprintf(version, vlen, "%s", vid);
                        rc = 0;
                    }
                    break;
                }
            }
        }
        if (rc == 0) {
            double c = num(es_json_get(j, "LastRotatedDate"));
            double c2 = num(es_json_get(j, "LastChangedDate"));
            *changed = c > c2 ? c : c2;
        }
    }
    es_json_free(j);
    return rc;
}

static const char *operation(src_kind k)
{
    return k == SRC_SSM         ? "DescribeParameters"
           : k == SRC_SSM_LABEL ? "GetParameter"
           : k == SRC_SSM_PATH  ? "GetParametersByPath"
                                : "DescribeSecret";
}

/* ---- classifying a task's secret ---- */

typedef enum klass { K_CHECK, K_PINNED, K_UNKNOWN } klass;

/* What to ask about m (name/stage point into the task definition's parsed
 * reference, m->vf: drift never parses a valueFrom). A bare name carries no
 * region of its own (definitions read back from the store are parsed without
 * one): it is the task's region. */
static klass classify(const ag_secret_meta *m, const char *region, src_kind *kind, const char **rgn,
                      const char **name, const char **stage)
{
    const ag_valuefrom *vf = m->vf;
    if (!vf)
        return K_UNKNOWN;
    *rgn = vf->region && *vf->region ? vf->region : region;
    switch (vf->kind) {
    case AG_VF_SSM:
        if (vf->ssm_version)
            return K_PINNED;
        /* an expansion's path: only its set version looks so (SSM's are
         * numbers) */
        if (m->version &&
            strncmp(m->version, SET_VERSION_PREFIX, sizeof SET_VERSION_PREFIX - 1) == 0) {
            *kind = SRC_SSM_PATH;
            *name = vf->ssm_name;
            *stage = NULL;
            return K_CHECK;
        }
        *kind = vf->ssm_label ? SRC_SSM_LABEL : SRC_SSM;
        *name = vf->ssm_name;
        *stage = vf->ssm_label; /* NULL for a bare name */
        return K_CHECK;
    case AG_VF_SECRETSMANAGER:
        if (vf->version_id)
            return K_PINNED;
        *kind = SRC_SM;
        *name = vf->secret_id;
        *stage = vf->version_stage ? vf->version_stage : "AWSCURRENT";
        return K_CHECK;
    case AG_VF_SSM_REFERENCE:
        /* the secret behind the reference, at AWSCURRENT (a reference takes
         * no selector). Tasks resolved before the resolver recorded the
         * secret's version id hold SSM's "0": unknown. */
        if (!m->version || strcmp(m->version, "0") == 0)
            return K_UNKNOWN;
        *kind = SRC_SM;
        *name = vf->secret_id;
        *stage = "AWSCURRENT";
        return K_CHECK;
    default:
        return K_UNKNOWN;
    }
}

static bool streq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static long find_source(const round *r, src_kind kind, const char *rgn, const char *name,
                        const char *stage)
{
    for (size_t i = 0; i < r->n; i++) {
        const source *s = &r->src[i];
        if (s->kind == kind && strcmp(s->region, rgn) == 0 && strcmp(s->name, name) == 0 &&
            streq(s->stage, stage))
            return (long)i;
    }
    return -1;
}

static int add_source(round *r, src_kind kind, const char *rgn, const char *name, const char *stage)
{
    if (find_source(r, kind, rgn, name, stage) >= 0)
        return 0;
    if (r->n == AG_DRIFT_SOURCES_MAX)
        return -ENOSPC;
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        source *ns = es_realloc(r->src, nc * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        r->src = ns;
        r->cap = nc;
    }
    source *s = &r->src[r->n];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->region = es_strdup(rgn);
    s->name = es_strdup(name);
    s->stage = stage ? es_strdup(stage) : NULL;
    if (!s->region || !s->name || (stage && !s->stage)) {
        es_free(s->region);
        es_free(s->name);
        es_free(s->stage);
        return -ENOMEM;
    }
    r->n++;
    return 0;
}

static int collect(void *arg, ag_task *t)
{
    round *r = arg;
    if (t->last_status == AG_TASK_STOPPED)
        return 0;
    for (size_t i = 0; i < t->n_secrets; i++) {
        src_kind kind = SRC_SSM;
        const char *rgn = NULL, *name = NULL, *stage = NULL;
        if (classify(&t->secrets[i], t->region ? t->region : r->d->region, &kind, &rgn, &name,
                     &stage) == K_CHECK &&
            add_source(r, kind, rgn, name, stage) == -ENOMEM)
            return 1;
    }
    return 0;
}

/* ---- applying a round to the tasks ---- */

typedef struct apply_ctx {
    round *r;
    int64_t now;
    unsigned long secrets, stale, stale_tasks, tasks;
    double oldest_rotation; /* of a stale secret */
} apply_ctx;

static int apply_task(void *arg, ag_task *t)
{
    apply_ctx *a = arg;
    if (t->last_status == AG_TASK_STOPPED)
        return 0;
    a->tasks++;
    bool stale_task = false;
    for (size_t i = 0; i < t->n_secrets; i++) {
        ag_secret_meta *m = &t->secrets[i];
        src_kind kind = SRC_SSM;
        const char *rgn = NULL, *name = NULL, *stage = NULL;
        klass k = classify(m, t->region ? t->region : a->r->d->region, &kind, &rgn, &name, &stage);
        a->secrets++;
        if (k == K_UNKNOWN) {
            /* looked at: no verdict can ever be given (drift stays
             * UNKNOWN), which the service census must not wait for */
            m->drift_checked_at = a->now;
        } else if (k == K_PINNED) {
            m->drift = AG_DRIFT_CURRENT;
            snprintf(m->latest_version, sizeof m->latest_version, "%s",
                     m->version ? m->version : "");
            m->drift_checked_at = a->now;
        } else if (k == K_CHECK) {
            long si = find_source(a->r, kind, rgn, name, stage);
            const source *s = si >= 0 ? &a->r->src[si] : NULL;
            if (s && s->state == S_OK) {
                bool cur = m->version && strcmp(m->version, s->version) == 0;
                if (!cur && m->drift != AG_DRIFT_STALE)
                    es_notice("drift: task %s (%s:%lld) container %s holds a rotated value of %s "
                              "(%s): version %s, the store's is now %s; a new task (or a forced "
                              "deployment) gets it",
                              t->id, t->family, (long long)t->revision,
                              m->container_name ? m->container_name : "?", m->value_from,
                              m->name ? m->name : "?", m->version ? m->version : "unknown",
                              s->version);
                m->drift = cur ? AG_DRIFT_CURRENT : AG_DRIFT_STALE;
                snprintf(m->latest_version, sizeof m->latest_version, "%s", s->version);
                m->drift_checked_at = a->now;
                if (!cur) {
                    a->stale++;
                    stale_task = true;
                    if (s->changed > 0 &&
                        (a->oldest_rotation == 0 || s->changed < a->oldest_rotation))
                        a->oldest_rotation = s->changed;
                }
            } else if (s && s->state == S_MISSING) {
                /* deleted from the store: what the task holds is no longer current */
                if (m->drift != AG_DRIFT_STALE)
                    es_notice("drift: task %s (%s:%lld) container %s holds %s (%s), which the "
                              "store no longer has",
                              t->id, t->family, (long long)t->revision,
                              m->container_name ? m->container_name : "?", m->value_from,
                              m->name ? m->name : "?");
                m->drift = AG_DRIFT_STALE;
                m->latest_version[0] = '\0';
                m->drift_checked_at = a->now;
                a->stale++;
                stale_task = true;
            } else if (m->drift == AG_DRIFT_STALE) {
                /* an error keeps the last verdict */
                a->stale++;
                stale_task = true;
            }
        }
    }
    a->stale_tasks += stale_task;
    return 0;
}

static void round_free(round *r)
{
    for (size_t i = 0; i < r->n; i++) {
        es_free(r->src[i].region);
        es_free(r->src[i].name);
        es_free(r->src[i].stage);
    }
    es_free(r->src);
    es_free(r);
}

static void maybe_free(ag_drift *d);

static void finish(round *r)
{
    ag_drift *d = r->d;
    d->cur = NULL;
    apply_ctx a = {.r = r, .now = (int64_t)time(NULL)};
    ag_engine_foreach_task(d->cfg.engine, apply_task, &a);
    d->stats.rounds++;
    d->stats.secrets = a.secrets;
    d->stats.stale = a.stale;
    d->stats.stale_tasks = a.stale_tasks;
    d->stats.tasks = a.tasks;
    ag_series_add(d->m_checks, 1);
    ag_series_set(d->m_stale_tasks, (double)a.stale_tasks);
    ag_series_set(d->m_stale, (double)a.stale);
    ag_series_set(d->m_since, a.oldest_rotation > 0 ? (double)a.now - a.oldest_rotation : 0);
    if (a.stale)
        es_info("drift: %lu of %lu secrets in %lu tasks are stale (%lu tasks)", a.stale, a.secrets,
                a.tasks, a.stale_tasks);
    /* secret files of policy refresh take the new version now */
    ag_engine_refresh_files(d->cfg.engine);
    for (size_t i = 0; i < r->nwaiters; i++)
        r->waiters[i].fn(r->waiters[i].arg);
    round_free(r);
}

/* One callback the drift waited for has ended; false when closing. */
static bool end_op(round *r)
{
    ag_drift *d = r->d;
    d->inflight--;
    r->pending--;
    if (d->closing) {
        if (r->pending == 0)
            round_free(r);
        maybe_free(d);
        return false;
    }
    return true;
}

static void on_call(void *arg, const aw_error *err, aw_http_response *resp)
{
    call_ctx *c = arg;
    round *r = c->r;
    source *s = &r->src[c->idx];
    es_free(c);
    if (!end_op(r))
        return;
    if (err) {
        if (aw_error_is(err, "ResourceNotFoundException") ||
            aw_error_is(err, "ParameterNotFound") || aw_error_is(err, "ParameterVersionNotFound")) {
            s->state = S_MISSING;
        } else {
            s->state = S_ERROR;
            r->d->stats.errors++;
            char msg[AW_ERROR_MESSAGE_MAX + 128];
            aw_error_format(err, msg, sizeof msg);
            es_warn("drift: %s %s: %s", operation(s->kind), s->name, msg);
        }
    } else {
        int rc;
        if (s->kind != SRC_SM) {
            int64_t v = 0;
            rc = s->kind == SRC_SSM
                     ? ag_drift_parse_ssm(resp->body.data, resp->body.len, &v, &s->changed)
                     : ag_drift_parse_ssm_label(resp->body.data, resp->body.len, &v, &s->changed);
            if (rc == 0)
                snprintf(s->version, sizeof s->version, "%" PRId64, v);
        } else {
            rc = ag_drift_parse_sm(resp->body.data, resp->body.len, s->stage, s->version,
                                   sizeof s->version, &s->changed);
        }
        s->state = rc == 0 ? S_OK : rc == -ENOENT ? S_MISSING : S_ERROR;
        if (rc == -EPROTO) {
            r->d->stats.errors++;
            es_warn("drift: %s: unexpected answer", s->name);
        }
    }
    if (r->pending == 0)
        finish(r);
}

/* A path's parameters, without decryption: their names and versions make
 * the set version the task recorded (no value is looked at; the series
 * wipes them). */
static void on_path(void *arg, const aw_error *err, aw_ssm_result *res)
{
    call_ctx *c = arg;
    round *r = c->r;
    source *s = &r->src[c->idx];
    es_free(c);
    if (!end_op(r))
        return;
    int rc = -EIO;
    if (!err) {
        const char **names = es_calloc(res->n_params ? res->n_params : 1, sizeof *names);
        int64_t *versions = es_calloc(res->n_params ? res->n_params : 1, sizeof *versions);
        for (size_t i = 0; names && versions && i < res->n_params; i++) {
            names[i] = res->params[i].name;
            versions[i] = res->params[i].version;
            if (res->params[i].last_modified > s->changed)
                s->changed = res->params[i].last_modified;
        }
        rc = names && versions ? ag_expand_set_version(names, versions, res->n_params, s->version,
                                                       sizeof s->version)
                               : -ENOMEM;
        es_free(names);
        es_free(versions);
    }
    s->state = rc == 0 ? S_OK : S_ERROR;
    if (rc < 0) {
        char msg[AW_ERROR_MESSAGE_MAX + 128] = "out of memory";
        if (err)
            aw_error_format(err, msg, sizeof msg);
        r->d->stats.errors++;
        es_warn("drift: GetParametersByPath %s/: %s", s->name, msg);
    }
    if (r->pending == 0)
        finish(r);
}

static int start_path(round *r, size_t i, const aw_sigv4_creds *sc)
{
    source *s = &r->src[i];
    call_ctx *c = es_calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (call_ctx){r, i};
    int rc = aw_ssm_get_parameters_by_path(r->d->cfg.client, sc, s->region, s->name, false,
                                           AW_SSM_PATH_PARAMS_MAX, on_path, c);
    if (rc < 0)
        es_free(c);
    return rc;
}

static void start_calls(round *r, const aw_credentials *creds)
{
    ag_drift *d = r->d;
    aw_sigv4_creds sc = aw_credentials_view(creds);
    for (size_t i = 0; i < r->n; i++) {
        source *s = &r->src[i];
        if (s->kind == SRC_SSM_PATH) {
            if (start_path(r, i, &sc) < 0) {
                s->state = S_ERROR;
                d->stats.errors++;
                continue;
            }
            r->pending++;
            d->inflight++;
            d->stats.calls++;
            ag_series_add(d->m_calls, 1);
            continue;
        }
        es_buf body;
        es_buf_init(&body, DRIFT_REQUEST_MAX);
        es_jw w;
        es_jw_init(&w, &body);
        es_jw_obj(&w);
        if (s->kind == SRC_SSM) {
            aw_ssm_name_filter_begin(&w);
            es_jw_str(&w, s->name);
            aw_ssm_name_filter_end(&w);
        } else if (s->kind == SRC_SSM_LABEL) {
            /* the one call that tells where a label points (no metadata-only
             * call does); asked without decryption, the answer wiped */
            es_buf nm;
            es_buf_init(&nm, AG_VF_MAX + 64);
            if (es_buf_printf(&nm, "%s:%s", s->name, s->stage) == 0)
                es_jw_kstr(&w, "Name", es_buf_cstr(&nm));
            else
                w.err = -EMSGSIZE;
            es_buf_free(&nm);
            es_jw_kbool(&w, "WithDecryption", false);
        } else {
            es_jw_kstr(&w, "SecretId", s->name);
        }
        es_jw_obj_end(&w);
        int rc = es_jw_finish(&w);
        call_ctx *c = rc == 0 ? es_calloc(1, sizeof *c) : NULL;
        if (c) {
            *c = (call_ctx){r, i};
            aw_call call = {.service = s->kind == SRC_SM ? AW_SVC_SECRETSMANAGER : AW_SVC_SSM,
                            .region = s->region,
                            .operation = operation(s->kind),
                            .body = body.data,
                            .body_len = body.len};
            rc = aw_call_start(d->cfg.client, &sc, &call, on_call, c);
            if (rc < 0)
                es_free(c);
        } else {
            rc = rc ? rc : -ENOMEM;
        }
        es_buf_free(&body);
        if (rc < 0) {
            s->state = S_ERROR;
            d->stats.errors++;
            continue;
        }
        r->pending++;
        d->inflight++;
        d->stats.calls++;
        ag_series_add(d->m_calls, 1);
    }
}

static void on_creds(void *arg, const aw_error *err, const aw_credentials *creds)
{
    round *r = arg;
    if (!end_op(r))
        return;
    if (err) {
        char msg[AW_ERROR_MESSAGE_MAX + 128];
        aw_error_format(err, msg, sizeof msg);
        es_warn("drift: no credentials to ask the stores: %s", msg);
        for (size_t i = 0; i < r->n; i++)
            r->src[i].state = S_ERROR;
    } else {
        start_calls(r, creds);
    }
    if (r->pending == 0)
        finish(r);
}

int ag_drift_check(ag_drift *d, void (*done)(void *arg), void *arg)
{
    if (d->closing)
        return -ECANCELED;
    round *r = d->cur;
    if (!r) {
        r = es_calloc(1, sizeof *r);
        if (!r)
            return -ENOMEM;
        r->d = d;
        ag_engine_foreach_task(d->cfg.engine, collect, r);
        int rc = aw_creds_get(d->cfg.creds, on_creds, r);
        if (rc < 0) {
            round_free(r);
            return rc;
        }
        r->pending++;
        d->inflight++;
        d->cur = r;
    }
    if (done) {
        if (r->nwaiters == WAITERS_MAX)
            return -ENOSPC;
        r->waiters[r->nwaiters].fn = done;
        r->waiters[r->nwaiters].arg = arg;
        r->nwaiters++;
    }
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    ag_drift *d = t->data;
    if (!d->closing && !d->cur)
        (void)ag_drift_check(d, NULL, NULL);
}

void ag_drift_set_interval(ag_drift *d, uint64_t interval_ms)
{
    if (d->closing)
        return;
    d->cfg.interval_ms = interval_ms;
    uv_timer_stop(&d->timer);
    if (interval_ms)
        uv_timer_start(&d->timer, on_timer, interval_ms, interval_ms);
}

uint64_t ag_drift_interval(const ag_drift *d)
{
    return d->cfg.interval_ms;
}

void ag_drift_get_stats(const ag_drift *d, ag_drift_stats *out)
{
    *out = d->stats;
}

int ag_drift_create(const ag_drift_config *cfg, ag_drift **out)
{
    if (!cfg->loop || !cfg->client || !cfg->creds || !cfg->engine || !cfg->region)
        return -EINVAL;
    ag_drift *d = es_calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->cfg = *cfg;
    d->region = es_strdup(cfg->region);
    if (!d->region) {
        es_free(d);
        return -ENOMEM;
    }
    if (cfg->metrics) {
        d->m_checks =
            ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER, "ecs_agent_drift_checks_total",
                              "Drift checks completed.", NULL, NULL, 0);
        d->m_calls =
            ag_metrics_series(cfg->metrics, AG_METRIC_COUNTER, "ecs_agent_drift_calls_total",
                              "Metadata calls (DescribeParameters, DescribeSecret) made "
                              "by drift checks.",
                              NULL, NULL, 0);
        d->m_stale_tasks = ag_metrics_series(
            cfg->metrics, AG_METRIC_GAUGE, "ecs_agent_drift_stale_tasks",
            "Running tasks holding at least one rotated secret value.", NULL, NULL, 0);
        d->m_stale = ag_metrics_series(
            cfg->metrics, AG_METRIC_GAUGE, "ecs_agent_drift_stale_secrets",
            "Secrets held by running tasks whose store version moved on.", NULL, NULL, 0);
        d->m_since = ag_metrics_series(
            cfg->metrics, AG_METRIC_GAUGE, "ecs_agent_drift_seconds_since_rotation",
            "Seconds since the oldest rotation that a running task has not picked up (0: none).",
            NULL, NULL, 0);
    }
    uv_timer_init(cfg->loop, &d->timer);
    d->timer.data = d;
    if (cfg->interval_ms)
        uv_timer_start(&d->timer, on_timer, cfg->interval_ms, cfg->interval_ms);
    *out = d;
    return 0;
}

static void maybe_free(ag_drift *d)
{
    if (!d->closing || d->inflight || !d->timer_closed)
        return;
    void (*done)(void *) = d->done;
    void *arg = d->done_arg;
    es_free(d->region);
    es_free(d);
    if (done)
        done(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    ag_drift *d = h->data;
    d->timer_closed = true;
    maybe_free(d);
}

void ag_drift_close(ag_drift *d, void (*done)(void *arg), void *arg)
{
    if (!d)
        return;
    d->closing = true;
    d->done = done;
    d->done_arg = arg;
    /* a round in flight: its waiters are not called (the owner is closing) */
    if (d->cur)
        d->cur->nwaiters = 0;
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}
