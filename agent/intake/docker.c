/* docker.c - launches through the agent's Docker socket get their secrets
 * (docker.h). */
#include "agent/intake/docker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/intake/labels.h"
#include "agent/intake/roles.h"
#include "agent/secrets/expand.h"
#include "agent/tasks/td_files.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"
#include "docker/create_body.h"

#define VALUES_MAX (AG_TD_SECRETS_MAX + AG_TD_SECRET_OPTIONS_MAX + AG_EXPAND_LABELS_MAX)
#define LOG_KV_MAX (AG_TD_LOG_OPTIONS_MAX + AG_TD_SECRET_OPTIONS_MAX)
/* variables one create may get: its secrets, and every expansion's */
#define ENV_KV_MAX (AG_TD_SECRETS_MAX + AG_EXPAND_LABELS_MAX * AG_EXPAND_MAX)

struct ag_intake_docker {
    ag_intake_docker_config cfg;
    cf_docker_rule *rules;
    size_t nrules;
    struct iop *ops; /* creates waiting for their resolution */
    ag_intake_docker_stats stats;
};

/* One create waiting for its secrets. */
typedef struct iop {
    struct iop *next;
    ag_intake_docker *x;
    dk_proxy_call *call; /* NULL once the client went away */
    es_json *doc;        /* the client's body */
    ag_taskdef *td;      /* its one-container definition (the engine's once adopted) */
    bool td_given;       /* td belongs to the engine's task now */
    bool registered;     /* from ecs-secrets.task-definition: its log driver and options too */
    uid_t uid;
    char name[AG_INTAKE_NAME_MAX]; /* the container's name, for the audit line */
} iop;

int ag_intake_docker_create(const ag_intake_docker_config *cfg, ag_intake_docker **out, char *err,
                            size_t errlen)
{
    ag_intake_docker *x = es_calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->cfg = *cfg;
    x->cfg.roles = NULL; /* parsed below; the string is not kept */
    if (cfg->roles) {
        int r =
            cf_docker_roles_parse(cfg->roles, cfg->iam != NULL, &x->rules, &x->nrules, err, errlen);
        if (r < 0) {
            es_free(x);
            return r;
        }
    }
    *out = x;
    return 0;
}

static void op_free(iop *o)
{
    ag_intake_docker *x = o->x;
    for (iop **p = &x->ops; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            break;
        }
    es_json_free_secret(o->doc);
    if (!o->td_given)
        ag_taskdef_free(o->td);
    es_free(o);
}

void ag_intake_docker_free(ag_intake_docker *x)
{
    if (!x)
        return;
    while (x->ops) /* none should be left (docker.h): nothing answers them now */
        op_free(x->ops);
    cf_docker_rules_free(x->rules, x->nrules);
    es_free(x);
}

void ag_intake_docker_get_stats(const ag_intake_docker *x, ag_intake_docker_stats *out)
{
    *out = x->stats;
}

void ag_intake_docker_on_cancel(void *ud, dk_proxy_call *call)
{
    ag_intake_docker *x = ud;
    for (iop *o = x->ops; o; o = o->next)
        if (o->call == call)
            o->call = NULL; /* the resolution's end frees it */
}

static void refuse(ag_intake_docker *x, dk_proxy_call *call, int status, uid_t uid,
                   const char *name, const char *msg)
{
    x->stats.refused++;
    es_notice("Docker socket: uid %u: create of %s refused (%d): %s", (unsigned)uid, name, status,
              msg);
    if (dk_proxy_create_refuse(call, status, msg) < 0)
        es_err("Docker socket: cannot answer a containers/create");
}

static void forward_untouched(dk_proxy_call *call)
{
    int r = dk_proxy_create_forward(call, NULL, 0);
    if (r < 0)
        es_err("Docker socket: cannot pass a containers/create on: %s", strerror(-r));
    if (r == -ENOMEM && dk_proxy_create_refuse(call, 500, "the agent is out of memory") < 0)
        es_err("Docker socket: cannot answer a containers/create");
}

/* ?name=NAME of the create, as the audit line quotes it (only the
 * characters Docker allows in names; anything else marks it unnamed). */
static void container_name(const char *query, char *out, size_t outlen)
{
    snprintf(out, outlen, "(unnamed)");
    for (const char *q = query; q && *q;) {
        size_t n = strcspn(q, "&");
        if (n > 5 && strncmp(q, "name=", 5) == 0) {
            size_t len = n - 5;
            const char *v = q + 5;
            if (len < outlen && strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_.-/") >= len)
                snprintf(out, outlen, "%.*s", (int)len, v);
            return;
        }
        q += n + (q[n] == '&');
    }
}

/* ---- after the resolution ---- */

/* One audit line: who, what, which role, each secret's ARN, version and
 * fingerprint (never a value); cut with a count when the line is full. */
static void audit(const iop *o, const ag_task *t, const ag_resolution *res)
{
    char line[AG_INTAKE_AUDIT_MAX];
    size_t n = (size_t)snprintf(
        line, sizeof line, "uid %u created container %s (task %s) with role %s:", (unsigned)o->uid,
        o->name, t->id, o->td->execution_role_arn);
    size_t shown = 0;
    for (size_t i = 0; i < res->n && n < sizeof line; i++, shown++) {
        const ag_resolved_secret *s = &res->items[i];
        int w = snprintf(line + n, sizeof line - n, "%s %s %s from %s version %s fingerprint %s",
                         i ? ";" : "",
                         s->expand                                        ? "variables"
                         : s->target == AG_SECRET_LOG                     ? "log option"
                         : ag_td_file_for(&o->td->containers[0], s->name) ? "file"
                                                                          : "variable",
                         s->name, s->source_arn ? s->source_arn : "?",
                         s->version ? s->version : "?", s->fingerprint);
        if (w < 0 || (size_t)w >= sizeof line - n - 32)
            break;
        n += (size_t)w;
    }
    if (shown < res->n)
        snprintf(line + n, sizeof line - n, "; and %zu more", res->n - shown);
    es_notice("Docker socket: %s", line);
}

/* An expansion's "NAME=VALUE\0..." list (agent/secrets/expand.h) as
 * variables: the resolver has checked the names (against each other and the
 * secret labels); over the client's own Env they win, as a secret does. */
static int collect_expansion(const ag_secret_value *v, dk_body_kv *env, size_t *nenv, char *err,
                             size_t errlen)
{
    for (size_t o = 0; o < v->len;) {
        const char *e = v->value + o;
        size_t el = strnlen(e, v->len - o);
        const char *eq = memchr(e, '=', el);
        if (eq && *nenv >= ENV_KV_MAX) { /* the resolver's bounds keep under it */
            snprintf(err, errlen, "%s: more than %d variables in all", v->name, ENV_KV_MAX);
            return -EINVAL;
        }
        if (eq) /* the key is not NUL-terminated here: the rewrite takes its length */
            env[(*nenv)++] = (dk_body_kv){e, eq + 1, el - (size_t)(eq - e) - 1, (size_t)(eq - e)};
        o += el + 1;
    }
    return 0;
}

/* The values as the rewrite takes them: variables, and log options (a
 * registered definition's plain options first, then its secret ones). */
static int collect(const iop *o, const ag_resolution *res, dk_body_kv *env, size_t *nenv,
                   dk_body_kv *log, size_t *nlog, char *err, size_t errlen)
{
    ag_secret_value v[VALUES_MAX];
    size_t nv = ag_resolution_values(res, 0, v, VALUES_MAX);
    const ag_logconf *lc = o->td->containers[0].log;
    *nenv = *nlog = 0;
    if (o->registered && lc)
        for (size_t i = 0; i < lc->n_options; i++)
            log[(*nlog)++] = (dk_body_kv){lc->options[i].name, lc->options[i].value,
                                          strlen(lc->options[i].value), 0};
    const ag_container_def *cd = &o->td->containers[0];
    for (size_t i = 0; i < nv; i++) {
        /* a file's value goes to its file (ag_engine_adopt_files), not Env */
        if (v[i].target == AG_SECRET_ENV && !v[i].expand && ag_td_file_for(cd, v[i].name))
            continue;
        if (v[i].expand) {
            if (collect_expansion(&v[i], env, nenv, err, errlen) < 0)
                return -EINVAL;
            continue;
        }
        if (v[i].binary) {
            snprintf(err, errlen, "the secret %s is binary: it cannot become a %s", v[i].name,
                     v[i].target == AG_SECRET_LOG ? "log option" : "variable");
            return -EINVAL;
        }
        if (v[i].target == AG_SECRET_ENV && *nenv < ENV_KV_MAX)
            env[(*nenv)++] = (dk_body_kv){v[i].name, v[i].value, v[i].len, 0};
        else if (v[i].target == AG_SECRET_LOG && *nlog < LOG_KV_MAX)
            log[(*nlog)++] = (dk_body_kv){v[i].name, v[i].value, v[i].len, 0};
    }
    return 0;
}

/* The value of Compose's project label, or NULL (map keys are exact). */
static const char *compose_project(const es_json *doc)
{
    const es_json *labels = dk_create_body_labels(doc);
    const char *v = NULL;
    for (size_t i = 0; labels && i < labels->u.object.n; i++)
        if (strcmp(labels->u.object.keys[i], AG_INTAKE_COMPOSE_PROJECT) == 0)
            v = labels->u.object.values[i]->type == ES_JSON_STRING
                    ? labels->u.object.values[i]->u.string.s
                    : NULL;
    return v;
}

/* The definition, with the client's image, registered under the reserved
 * family (describe-tasks and a restarted agent read it back), then the
 * container's task. 0, or the status to refuse with (err says why). */
static int make_task(iop *o, const ag_resolution *res, const ag_task **t, char *err, size_t errlen)
{
    ag_intake_docker *x = o->x;
    ag_container_def *cd = &o->td->containers[0];
    const char *image = dk_create_body_image(o->doc);
    char *img = image ? es_strdup(image) : NULL;
    if (image && !img) {
        snprintf(err, errlen, "the agent is out of memory");
        return 500;
    }
    if (img) {
        es_free(cd->image);
        cd->image = img;
    }
    if (ag_store_taskdef_register(x->cfg.store, o->td, (int64_t)time(NULL)) < 0) {
        snprintf(err, errlen, "the agent cannot record the container's task definition: %s",
                 ag_store_errmsg(x->cfg.store));
        return 500;
    }
    char by[32], group[AG_INTAKE_GROUP_MAX + 1];
    const char *project = compose_project(o->doc);
    snprintf(by, sizeof by, "docker:%u", (unsigned)o->uid);
    if (project)
        snprintf(group, sizeof group, "compose:%.240s", project);
    ag_adopt_request rq = {
        .td = o->td, .image = image, .started_by = by, .group = project ? group : NULL, .res = res};
    o->td_given = true; /* the engine's, even when the adoption fails */
    ag_task *made = NULL;
    int r = ag_engine_adopt(x->cfg.engine, &rq, &made);
    if (r < 0) {
        o->td = NULL;
        snprintf(err, errlen, "the agent cannot record the container's task: %s",
                 r == -ENOSPC ? "too many tasks" : strerror(-r));
        return r == -ENOSPC ? 503 : 500;
    }
    *t = made;
    return 0;
}

#define TASK_LABELS 5
/* The labels the engine's own containers carry (agent/secrets/inject.c): its
 * event watch and reconciling lists follow the container by them. */
static void task_labels(const ag_task *t, char *rev, size_t revlen, dk_body_kv *out)
{
    static const char *const keys[TASK_LABELS] = {
        DK_TASK_ARN_LABEL, "com.amazonaws.ecs.container-name",
        "com.amazonaws.ecs.task-definition-family", "com.amazonaws.ecs.task-definition-version",
        "com.amazonaws.ecs.cluster"};
    snprintf(rev, revlen, "%lld", (long long)t->revision);
    const char *vals[TASK_LABELS] = {t->arn, t->containers[0].name, t->family, rev, t->cluster};
    for (size_t i = 0; i < TASK_LABELS; i++)
        out[i] = (dk_body_kv){keys[i], vals[i], strlen(vals[i]), 0};
}

/* The create did not go on after its task was made: the task ends. */
static void task_failed(iop *o, const ag_task *t, const char *reason)
{
    ag_task *out = NULL;
    char arn[AG_INTAKE_ERR_MAX];
    snprintf(arn, sizeof arn, "%s", t->arn); /* the call may move the task */
    if (ag_engine_stop_task(o->x->cfg.engine, arn, AG_STOP_TASK_FAILED_TO_START, reason, &out) < 0)
        es_err("Docker socket: task %s: cannot record its failure", arn);
}

/* The body with the values and the task's labels; 0 or a status (msg). */
static int rewrite(iop *o, const ag_resolution *res, const ag_task **t, es_buf *body, char *msg,
                   size_t msglen)
{
    dk_body_kv *env = es_calloc(ENV_KV_MAX, sizeof *env); /* 24 KiB: not on the stack */
    dk_body_kv log[LOG_KV_MAX], labels[TASK_LABELS];
    dk_create_edit ed = {.env = env, .log_config = log, .labels = labels, .nlabels = TASK_LABELS};
    char err[AG_INTAKE_ERR_MAX], rev[24];
    if (!env) {
        ag_reason_secrets(msg, msglen, "out of memory");
        return 500;
    }
    int r = collect(o, res, env, &ed.nenv, log, &ed.nlog, err, sizeof err);
    const ag_logconf *lc = o->td->containers[0].log;
    if (o->registered && lc)
        ed.log_type = lc->driver;
    int status = r ? (r == -EINVAL ? 400 : 500) : make_task(o, res, t, msg, msglen);
    ag_eng_mounts mounts = {0};
    /* the files are written before the create goes on: its mounts name them */
    if (!r && !status &&
        ag_engine_adopt_files(o->x->cfg.engine, (*t)->arn, res, &mounts, msg, msglen) < 0)
        status = 500;
    if (!r && !status) {
        task_labels(*t, rev, sizeof rev, labels);
        ed.mounts = mounts.m;
        ed.nmounts = mounts.n;
        r = dk_create_body_rewrite(o->doc, &ed, body, err, sizeof err);
        status = r ? (r == -EINVAL ? 400 : 500) : 0;
    }
    ag_eng_mounts_free(&mounts);
    if (r)
        ag_reason_secrets(msg, msglen, "%s", r == -ENOMEM ? "out of memory" : err);
    es_wipe(env, ENV_KV_MAX * sizeof *env); /* views only, but they pointed at values */
    es_free(env);
    es_wipe(log, sizeof log);
    return status;
}

static void inject(iop *o, const ag_resolution *res)
{
    char msg[AG_REASON_BUF];
    const ag_task *t = NULL;
    es_buf body;
    es_buf_init(&body, DK_CREATE_BODY_OUT_MAX);
    int status = rewrite(o, res, &t, &body, msg, sizeof msg);
    int r = 0;
    if (status) {
        refuse(o->x, o->call, status, o->uid, o->name, msg);
    } else if ((r = dk_proxy_create_forward(o->call, body.data, body.len)) < 0) {
        /* unanswered, the client would wait forever: answer it ourselves */
        es_err("Docker socket: cannot pass the create of %s on: %s", o->name, strerror(-r));
        if (r == -ENOMEM)
            refuse(o->x, o->call, 500, o->uid, o->name, "the agent is out of memory");
    } else {
        o->x->stats.injected++;
        audit(o, t, res);
    }
    if (t && (status || r < 0))
        task_failed(
            o, t,
            status ? msg : "CannotCreateContainerError: the create could not be passed to Docker");
    es_buf_free_secret(&body);
}

/* The preflight's reason ("... is missing N permissions: ...") is the
 * role's fault (403); any other failure to fetch is the server's (500). */
static int failure_status(const char *reason)
{
    return strstr(reason, " is missing ") ? 403 : 500;
}

static void on_resolved(void *arg, ag_resolution *res, const char *reason)
{
    iop *o = arg;
    if (o->call) {
        if (res)
            inject(o, res);
        else
            refuse(o->x, o->call, failure_status(reason ? reason : ""), o->uid, o->name,
                   reason ? reason : AG_REASON_SECRETS "unknown failure");
    }
    ag_resolution_free(res);
    op_free(o);
}

/* ---- the create ---- */

typedef struct intake {
    ag_intake_docker *x;
    dk_proxy_call *call;
    const dk_proxy_create *req;
    es_json *doc;
    ag_intake_req rq;
    ag_taskdef *registered;
    char name[AG_INTAKE_NAME_MAX];
    char err[AG_INTAKE_ERR_MAX];
} intake;

/* 0: the body asks for secrets (in->rq); 1: it went on untouched; <0 refused. */
static int read_body(intake *in)
{
    char why[DK_CREATE_BODY_ERR_MAX];
    const dk_proxy_create *req = in->req;
    int r = dk_create_body_parse(req->body, req->len, &in->doc, why, sizeof why);
    if (r == -EINVAL) {
        /* dockerd answers what it cannot read; what it can but we cannot
         * (past our limits) must not lose its secrets silently */
        if (!memmem(req->body, req->len, AG_INTAKE_PREFIX, strlen(AG_INTAKE_PREFIX))) {
            forward_untouched(in->call);
            return 1;
        }
        snprintf(in->err, sizeof in->err,
                 "labels " AG_INTAKE_PREFIX "*: the body cannot be read: %s", why);
        refuse(in->x, in->call, 400, req->peer.uid, in->name, in->err);
        return -EINVAL;
    }
    if (r < 0) {
        refuse(in->x, in->call, 500, req->peer.uid, in->name, "the agent is out of memory");
        return r;
    }
    r = ag_intake_read_labels(dk_create_body_labels(in->doc), &in->rq, in->err, sizeof in->err);
    if (r == 0) {
        forward_untouched(in->call);
        return 1;
    }
    if (r < 0) {
        refuse(in->x, in->call, 400, req->peer.uid, in->name, in->err);
        return r;
    }
    return 0;
}

/* ecs-secrets.task-definition: the registered definition it names. */
static int find_registered(intake *in)
{
    char fam[AG_TD_NAME_MAX + 1];
    long long rev = 0;
    if (ag_intake_td_ref(in->rq.td_ref, fam, sizeof fam, &rev) < 0) {
        snprintf(in->err, sizeof in->err,
                 "label " AG_INTAKE_PREFIX "task-definition: '%.300s' is not family[:revision]",
                 in->rq.td_ref);
        return 400;
    }
    int r = ag_store_taskdef_get(in->x->cfg.store, fam, rev, &in->registered);
    if (r == 0 && in->registered->status != AG_TD_ACTIVE && rev == 0)
        r = -ENOENT;
    if (r < 0) {
        snprintf(in->err, sizeof in->err, "label " AG_INTAKE_PREFIX "task-definition: %.300s: %s",
                 in->rq.td_ref,
                 r == -ENOENT ? "no such task definition (or no ACTIVE revision)"
                              : "the store cannot be read");
        return r == -ENOENT ? 400 : 500;
    }
    return 0;
}

static int authorise(intake *in, const char *role)
{
    gid_t gids[AG_INTAKE_GROUPS_MAX];
    const dk_proxy_peer *p = &in->req->peer;
    if (!p->known) {
        snprintf(in->err, sizeof in->err,
                 "the agent cannot tell who is calling (no SO_PEERCRED): only a known caller "
                 "may name an execution role");
        return 403;
    }
    ag_intake_caller who = {.uid = p->uid, .gids = gids};
    who.ngids = ag_intake_groups(p->uid, p->gid, gids, AG_INTAKE_GROUPS_MAX);
    ag_intake_docker *x = in->x;
    int r =
        ag_intake_may_pass(x->rules, x->nrules, x->cfg.iam, &who, role, in->err, sizeof in->err);
    if (r == -EACCES)
        return 403;
    if (r < 0) {
        snprintf(in->err, sizeof in->err,
                 "whether uid %u may pass the role %s could not be "
                 "decided (%s)",
                 (unsigned)p->uid, role, strerror(-r));
        return 500;
    }
    return 0;
}

/* The one-container definition (the task-definition parser's rules), then
 * the caller's right to name its role, then the resolution. */
static int start(intake *in)
{
    ag_intake_docker *x = in->x;
    ag_td_ctx ctx = {.region = x->cfg.region, .account = x->cfg.account};
    ag_taskdef *td = NULL;
    int r = ag_intake_taskdef(&in->rq, in->registered, &ctx, &td, in->err, sizeof in->err);
    if (r < 0) {
        if (r == -ENOMEM)
            snprintf(in->err, sizeof in->err, "the agent is out of memory");
        return r == -ENOMEM ? 500 : 400;
    }
    int status = authorise(in, td->execution_role_arn);
    iop *o = status ? NULL : es_calloc(1, sizeof *o);
    if (!o) {
        ag_taskdef_free(td);
        if (!status)
            snprintf(in->err, sizeof in->err, "the agent is out of memory");
        return status ? status : 500;
    }
    *o = (iop){.next = x->ops,
               .x = x,
               .call = in->call,
               .doc = in->doc,
               .td = td,
               .registered = in->registered != NULL,
               .uid = in->req->peer.uid};
    snprintf(o->name, sizeof o->name, "%s", in->name);
    x->ops = o;
    in->doc = NULL; /* the op's now */
    /* the client pulled the image itself: no ECR token is asked for it */
    r = ag_resolve_start_no_pull(x->cfg.resolver, td, on_resolved, o);
    if (r < 0) {
        in->doc = o->doc;
        o->doc = NULL;
        op_free(o);
        snprintf(in->err, sizeof in->err, AG_REASON_SECRETS "%s",
                 r == -ECANCELED ? "the agent is stopping" : strerror(-r));
        return 500;
    }
    return 0;
}

void ag_intake_docker_on_create(void *ud, dk_proxy_call *call, const dk_proxy_create *req)
{
    intake in = {.x = ud, .call = call, .req = req};
    in.x->stats.creates++;
    container_name(req->query, in.name, sizeof in.name);
    if (read_body(&in) != 0)
        goto out;
    int status = in.rq.td_ref ? find_registered(&in) : 0;
    if (!status)
        status = start(&in);
    if (status)
        refuse(in.x, call, status, req->peer.uid, in.name, in.err);
out:
    es_json_free_secret(in.doc);
    ag_taskdef_free(in.registered);
}
