/* endpoints.c - the container endpoints (endpoints.h). */
#include "agent/endpoints/endpoints.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/endpoints/shapes.h"
#include "agent/tasks/td_awslogs.h"
#include "aws/listener.h"
#include "aws/sts.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"
#include "config/config.h"

/* The container endpoints' own small limits: containers ask small GETs. */
static const aw_listener_limits ep_limits = {.max_header_bytes = 8192,
                                             .max_body = 1024,
                                             .max_connections = 512,
                                             .idle_timeout_ms = 30000,
                                             .request_timeout_ms = 10000,
                                             .max_connections_per_peer = 512};

/* One task's entry: its task role (the token in the Authorization header)
 * with its containers' metadata ids; or, `logs` set, its execution role for
 * Docker's awslogs driver (the token is the path's id: the driver sends no
 * header). A task may have one of each. */
typedef struct ep_task ep_task;
struct ep_task {
    ep_task *next;
    ag_endpoints *ep;
    char *arn, *id, *role_arn; /* role_arn NULL: metadata only */
    bool logs;
    char token[AG_EP_TOKEN_HEX + 1];
    char ids[AG_TD_CONTAINERS_MAX][AG_EP_ID_HEX + 1]; /* by the definition's container */
    aw_credentials creds;
    bool have, fetching, gone;
    time_t retry_at;
    char err[AG_EP_ERR_MAX]; /* the last AssumeRole failure ("" none) */
};

/* What /metrics counts: credential requests by answer, AssumeRole calls by outcome. */
typedef enum ep_count {
    C_SERVED,
    C_NO_TOKEN,
    C_REFUSED,
    C_UNAVAILABLE,
    C_ASSUMED,
    C_FAILED,
    C_N
} ep_count;

struct ag_endpoints {
    ag_endpoints_config cfg;
    ag_series *m[C_N];
    char host[64];
    int port;
    char url[AG_EP_URL_MAX];
    aw_listener *l;
    uv_timer_t tick;
    ep_task *tasks;
    size_t ntasks;
    unsigned inflight; /* AssumeRole asks; the listener; the timer */
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
};

bool ag_endpoints_host_ok(const char *h)
{
    return cf_host_is_loopback(h) || strcmp(h, AG_EP_LINK_LOCAL) == 0;
}

bool ag_endpoints_reachable(const char *host, const char *mode, char *why, size_t n)
{
    if (mode && strcmp(mode, "host") == 0)
        return true;
    if (mode && strcmp(mode, "none") == 0) {
        snprintf(why, n, "the network mode none cannot reach the agent's credentials endpoint");
        return false;
    }
    if (mode && strcmp(mode, "bridge") != 0) {
        snprintf(why, n, "the network mode %s cannot reach the agent's credentials endpoint", mode);
        return false;
    }
    if (strcmp(host, AG_EP_LINK_LOCAL) == 0)
        return true;
    snprintf(why, n,
             "the network mode bridge cannot reach the agent's credentials endpoint on %s "
             "(loopback): use the host network mode, or ECS_SECRETS_TASK_ENDPOINT=%s:PORT with "
             "that address on the Docker bridge",
             host, AG_EP_LINK_LOCAL);
    return false;
}

/* ---- the tasks ---- */

static void task_free(ep_task *x)
{
    es_wipe(x->token, sizeof x->token);
    aw_credentials_clear(&x->creds);
    es_free(x->arn);
    es_free(x->id);
    es_free(x->role_arn);
    es_free(x);
}

static ep_task *task_find(ag_endpoints *p, const char *arn, bool logs)
{
    for (ep_task *x = p->tasks; x; x = x->next)
        if (x->logs == logs && strcmp(x->arn, arn) == 0)
            return x;
    return NULL;
}

static const char *role_kind(const ep_task *x)
{
    return x->logs ? "execution role (awslogs)" : "task role";
}

static void maybe_done(ag_endpoints *p)
{
    if (!p->closing || p->inflight)
        return;
    for (ep_task *x = p->tasks, *next; x; x = next) {
        next = x->next;
        task_free(x);
    }
    void (*done)(void *) = p->done;
    void *arg = p->done_arg;
    es_free(p);
    if (done)
        done(arg);
}

/* Unlinks x; freed now, or when its AssumeRole answers. */
static void task_forget(ag_endpoints *p, ep_task *x)
{
    for (ep_task **pp = &p->tasks; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            p->ntasks--;
            break;
        }
    if (x->fetching)
        x->gone = true;
    else
        task_free(x);
}

/* ---- AssumeRole ---- */

static void fetch_end(ep_task *x)
{
    ag_endpoints *p = x->ep;
    x->fetching = false;
    if (x->gone)
        task_free(x);
    p->inflight--;
    maybe_done(p);
}

static void fetch_failed(ep_task *x, const char *code, const char *message)
{
    snprintf(x->err, sizeof x->err, "AssumeRole of %s: %s: %s", x->role_arn, code, message);
    x->retry_at = time(NULL) + AG_EP_RETRY_S;
    if (!x->gone && !x->ep->closing)
        es_warn("task %s: the %s's credentials: %s (tried again in %d s)", x->id, role_kind(x),
                x->err, AG_EP_RETRY_S);
}

static void on_sts(void *arg, const aw_error *err, aw_sts_credentials *c)
{
    ep_task *x = arg;
    if (!x->ep->closing)
        ag_series_add(x->ep->m[err ? C_FAILED : C_ASSUMED], 1);
    if (err) {
        fetch_failed(x, err->code, err->message);
    } else {
        aw_credentials_clear(&x->creds);
        x->creds.access_key_id = c->access_key_id;
        x->creds.secret_access_key = c->secret_access_key;
        x->creds.session_token = c->session_token;
        x->creds.expiration = c->expiration;
        x->creds.source = "assume-role";
        c->access_key_id = c->secret_access_key = c->session_token = NULL;
        x->have = true;
        x->err[0] = '\0';
        if (!x->gone)
            es_info("task %s: credentials of its %s %s until %lld", x->id, role_kind(x),
                    x->role_arn, (long long)x->creds.expiration);
    }
    fetch_end(x);
}

static void on_host(void *arg, const aw_error *err, const aw_credentials *host)
{
    ep_task *x = arg;
    ag_endpoints *p = x->ep;
    if (err || x->gone || p->closing) {
        fetch_failed(x, err ? err->code : "Canceled", err ? err->message : "closing");
        fetch_end(x);
        return;
    }
    aw_sigv4_creds v = aw_credentials_view(host);
    unsigned d = p->cfg.duration_s ? p->cfg.duration_s : AG_EP_DURATION_S;
    if (aw_sts_assume_role(p->cfg.client, &v, p->cfg.region, x->role_arn, x->id, d, on_sts, x) <
        0) {
        fetch_failed(x, "AssumeRoleNotStarted", "the call could not be made");
        fetch_end(x);
    }
}

static void fetch(ep_task *x)
{
    ag_endpoints *p = x->ep;
    x->fetching = true;
    p->inflight++;
    if (aw_creds_get(p->cfg.creds, on_host, x) < 0) {
        fetch_failed(x, "NoCredentials", "the agent's own credentials could not be asked for");
        fetch_end(x);
    }
}

static void on_tick(uv_timer_t *t)
{
    ag_endpoints *p = t->data;
    unsigned before = p->cfg.refresh_before_s ? p->cfg.refresh_before_s : AG_EP_REFRESH_BEFORE_S;
    time_t now = time(NULL);
    for (ep_task *x = p->tasks; x && !p->closing; x = x->next)
        if (x->role_arn &&
            ag_ep_refresh_due(now, x->have, x->creds.expiration, before, x->fetching, x->retry_at))
            fetch(x);
}

/* ---- the engine's hooks ---- */

/* taskRoleArn as an ARN: ECS also takes a bare role name, of the task's account. */
static void role_arn_of(const ag_endpoints *p, const char *v, char out[AG_TD_ARN_MAX + 64])
{
    if (strncmp(v, "arn:", 4) == 0)
        snprintf(out, AG_TD_ARN_MAX + 64, "%s", v);
    else
        snprintf(out, AG_TD_ARN_MAX + 64, "arn:aws:iam::%s:role/%s", p->cfg.account, v);
}

static int role_check(ag_endpoints *p, const ag_taskdef *td, char *why, size_t n)
{
    if (!ag_endpoints_reachable(p->host, td->network_mode, why, n))
        return -ENETUNREACH;
    if (!p->cfg.embedded)
        return 0; /* AWS's STS decides at AssumeRole */
    char arn[AG_TD_ARN_MAX + 64];
    role_arn_of(p, td->task_role_arn, arn);
    int r = al_role_trusts_ecs_tasks(p->cfg.embedded, p->cfg.account, arn);
    if (r == 0)
        return 0;
    snprintf(why, n,
             r == -EACCES   ? "taskRoleArn %s: its trust policy does not allow "
                              "ecs-tasks.amazonaws.com to call sts:AssumeRole"
             : r == -ENOENT ? "taskRoleArn %s: no such role"
                            : "taskRoleArn %s: not a role of this account",
             arn);
    return -EACCES;
}

/* logs: the entry of the execution role for awslogs, else the task role's
 * (with the metadata ids). */
static ep_task *task_register(ag_endpoints *p, const ag_task *t, const ag_taskdef *td, bool logs,
                              char *why, size_t n)
{
    if (p->ntasks >= 2 * AG_EP_TASKS_MAX) {
        snprintf(why, n, "the container endpoints serve %d tasks at most", AG_EP_TASKS_MAX);
        return NULL;
    }
    const char *role = logs ? td->execution_role_arn : td->task_role_arn;
    char arn[AG_TD_ARN_MAX + 64];
    if (role)
        role_arn_of(p, role, arn);
    ep_task *x = es_calloc(1, sizeof *x);
    if (!x || !(x->arn = es_strdup(t->arn)) || !(x->id = es_strdup(t->id)) ||
        (role && !(x->role_arn = es_strdup(arn)))) {
        if (x)
            task_free(x);
        snprintf(why, n, "out of memory");
        return NULL;
    }
    x->ep = p;
    x->logs = logs;
    if (x->role_arn && ag_ep_random_hex(x->token, AG_EP_TOKEN_BYTES) < 0) {
        task_free(x);
        snprintf(why, n, "no randomness for the task's credentials token");
        return NULL;
    }
    x->next = p->tasks;
    p->tasks = x;
    p->ntasks++;
    if (x->role_arn)
        fetch(x); /* before the containers start, as ECS's agent has them */
    return x;
}

/* The launch check: before the secrets are resolved, a task naming
 * taskRoleArn is refused when it cannot use the endpoint, else registered:
 * its token is made and its credentials asked for right away, so that they
 * are in by the time its containers start. */
static int on_check(void *arg, const ag_task *t, const ag_taskdef *td, char *why, size_t n)
{
    ag_endpoints *p = arg;
    if (p->closing)
        return 0;
    /* awslogs on the execution role: its credentials asked for now too, so
     * that Docker's driver finds them when the first container starts */
    if (ag_awslogs_uses_exec_role(td, SIZE_MAX) && !task_find(p, t->arn, true) &&
        !task_register(p, t, td, true, why, n))
        return -ENOMEM;
    if (!td->task_role_arn)
        return 0;
    int r = role_check(p, td, why, n);
    if (r < 0)
        return r;
    if (!task_find(p, t->arn, false) && !task_register(p, t, td, false, why, n))
        return -ENOMEM;
    return 0;
}

/* awslogs-credentials-endpoint for container d, when it logs with awslogs
 * on the execution role. */
static int logs_uri(ag_endpoints *p, const ag_task *t, const ag_taskdef *td, size_t d,
                    ag_engine_env *env, char *why, size_t n)
{
    if (!ag_awslogs_uses_exec_role(td, d))
        return 0;
    ep_task *x = task_find(p, t->arn, true);
    if (!x && !(x = task_register(p, t, td, true, why, n)))
        return -ENOMEM;
    if (ag_ep_logs_uri(p->host, p->port, x->token, env->log_credentials_uri,
                       sizeof env->log_credentials_uri) < 0) {
        snprintf(why, n, "the awslogs credentials endpoint does not fit");
        return -EMSGSIZE;
    }
    return 0;
}

static int env_put(ag_engine_env *env, const char *name, const char *a, const char *b)
{
    if (env->n >= AG_ENGINE_ENV_MAX)
        return -ENOSPC;
    int k = snprintf(env->v[env->n], AG_ENGINE_ENV_LEN, "%s=%s%s", name, a, b);
    if (k < 0 || k >= AG_ENGINE_ENV_LEN)
        return -EMSGSIZE;
    env->n++;
    return 0;
}

static int on_env(void *arg, const ag_task *t, const ag_taskdef *td, size_t d, ag_engine_env *env,
                  char *why, size_t n)
{
    ag_endpoints *p = arg;
    if (p->closing || d >= AG_TD_CONTAINERS_MAX)
        return 0;
    int lr = logs_uri(p, t, td, d, env, why, n);
    if (lr < 0)
        return lr;
    ep_task *x = task_find(p, t->arn, false);
    char ignored[8];
    if (!x && td->task_role_arn) {
        /* the launch check registered it; this is the guard if it did not */
        if (on_check(p, t, td, why, n) < 0)
            return -EACCES;
        x = task_find(p, t->arn, false);
    } else if (!x && !ag_endpoints_reachable(p->host, td->network_mode, ignored, 0)) {
        return 0; /* no role: the metadata endpoint where it can be reached */
    } else if (!x && !(x = task_register(p, t, td, false, why, n))) {
        return -ENOMEM;
    }
    if (!x)
        return -ENOMEM;
    if (!x->ids[d][0] && ag_ep_random_hex(x->ids[d], AG_EP_ID_BYTES) < 0) {
        snprintf(why, n, "no randomness for the metadata endpoint's id");
        return -EIO;
    }
    char path[AG_EP_ID_HEX + 8];
    snprintf(path, sizeof path, "/v4/%s", x->ids[d]);
    int r = env_put(env, "ECS_CONTAINER_METADATA_URI_V4", p->url, path);
    if (r == 0 && x->role_arn)
        r = env_put(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", p->url, "/v2/credentials");
    if (r == 0 && x->role_arn)
        r = env_put(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN", x->token, "");
    if (r < 0)
        snprintf(why, n, "the container endpoints' variables do not fit");
    return r;
}

static void on_task(void *arg, ag_task *t, ag_task_status from)
{
    (void)from;
    ag_endpoints *p = arg;
    if (t->last_status != AG_TASK_STOPPED)
        return;
    for (int logs = 0; logs < 2; logs++) {
        ep_task *x = task_find(p, t->arn, logs);
        if (!x)
            continue;
        if (x->role_arn)
            es_info("task %s: STOPPED: its %s's credentials are no longer served", t->id,
                    role_kind(x));
        task_forget(p, x);
    }
}

/* ---- the routes ---- */

static int answer_error(es_buf *out, int status, const char *code, const char *message)
{
    es_jw w;
    es_jw_init(&w, out);
    return ag_ep_write_error(&w, code, message) < 0 ? -ENOMEM : status;
}

static const char *header(const aw_listener_request *rq, const char *name)
{
    for (size_t i = 0; i < rq->n_headers; i++)
        if (strcasecmp(rq->headers[i].name, name) == 0)
            return rq->headers[i].value;
    return NULL;
}

/* Every task's token is compared (no early exit), so the time taken does
 * not tell how many tasks there are before the match. */
static ep_task *by_token(ag_endpoints *p, const char *presented)
{
    ep_task *found = NULL;
    for (ep_task *x = p->tasks; x; x = x->next)
        if (x->role_arn && !x->logs && ag_ep_token_matches(presented, x->token) && !found)
            found = x;
    return found;
}

static int answer_credentials(ag_endpoints *p, const aw_listener_request *rq, es_buf *out);

static int serve_credentials(void *arg, const aw_listener_request *rq, es_buf *out,
                             const char **ctype)
{
    ag_endpoints *p = arg;
    *ctype = "application/json";
    int status = answer_credentials(p, rq, out);
    ag_series_add(p->m[status == 200   ? C_SERVED
                       : status == 401 ? C_NO_TOKEN
                       : status == 403 ? C_REFUSED
                                       : C_UNAVAILABLE],
                  1);
    return status;
}

/* The entry of an awslogs path's id, compared with every entry's (no early
 * exit) as by_token does. */
static ep_task *by_logs_id(ag_endpoints *p, const char *id)
{
    ep_task *found = NULL;
    for (ep_task *x = p->tasks; x; x = x->next)
        if (x->logs && x->role_arn && ag_ep_token_matches(id, x->token) && !found)
            found = x;
    return found;
}

static int answer_role(ep_task *x, es_buf *out);

static int answer_credentials(ag_endpoints *p, const aw_listener_request *rq, es_buf *out)
{
    if (strncmp(rq->path, "/v2/credentials/", 16) == 0) {
        /* Docker's awslogs driver asking for a task's execution role */
        char id[AG_EP_TOKEN_HEX + 1];
        ep_task *x = ag_ep_parse_logs_path(rq->path, id) ? by_logs_id(p, id) : NULL;
        es_wipe(id, sizeof id);
        if (!x)
            return answer_error(out, 403, "InvalidIdInRequest",
                                "CredentialsRequest: the path matches no running task");
        return answer_role(x, out);
    }
    if (strcmp(rq->path, "/v2/credentials") != 0)
        return answer_error(out, 404, "NotFound", "Only /v2/credentials is served here.");
    const char *auth = header(rq, "authorization");
    if (!auth || !*auth)
        return answer_error(out, 401, "NoAuthorizationInRequest",
                            "CredentialsRequest: the Authorization header is missing");
    ep_task *x = by_token(p, auth);
    if (!x)
        return answer_error(out, 403, "InvalidTokenInRequest",
                            "CredentialsRequest: the token matches no running task");
    return answer_role(x, out);
}

static int answer_role(ep_task *x, es_buf *out)
{
    if (!x->have || x->creds.expiration <= time(NULL))
        return x->err[0] ? answer_error(out, 500, "CredentialsFetchFailed", x->err)
                         : answer_error(out, 503, "CredentialsUnavailable",
                                        x->logs ? "CredentialsRequest: the execution role's "
                                                  "credentials are being fetched; ask again"
                                                : "CredentialsRequest: the task role's "
                                                  "credentials are being fetched; ask again");
    es_jw w;
    es_jw_init(&w, out);
    return ag_ep_write_credentials(&w, x->creds.access_key_id, x->creds.secret_access_key,
                                   x->creds.session_token, x->creds.expiration, x->role_arn) < 0
               ? -ENOMEM
               : 200;
}

/* The task and definition container of a metadata id; NULL when unknown. */
static ep_task *by_id(ag_endpoints *p, const char *id, size_t *d)
{
    for (ep_task *x = p->tasks; x; x = x->next)
        for (size_t i = 0; i < AG_TD_CONTAINERS_MAX; i++)
            if (x->ids[i][0] && strcmp(x->ids[i], id) == 0) {
                *d = i;
                return x;
            }
    return NULL;
}

static int serve_metadata(void *arg, const aw_listener_request *rq, es_buf *out, const char **ctype)
{
    ag_endpoints *p = arg;
    *ctype = "application/json";
    char id[AG_EP_ID_HEX + 1];
    bool task = false;
    size_t d = 0;
    ep_task *x = ag_ep_parse_meta_path(rq->path, id, &task) ? by_id(p, id, &d) : NULL;
    ag_task *t = x ? ag_engine_find_task(p->cfg.engine, x->arn) : NULL;
    const ag_taskdef *td = t ? ag_engine_task_def(p->cfg.engine, t) : NULL;
    if (!t || !td || d >= td->n_containers)
        return answer_error(out, 404, "NotFound", "No such container's metadata.");
    ag_ep_meta_ctx m = {
        .t = t, .td = td, .network_mode = td->network_mode ? td->network_mode : "bridge"};
    es_jw w;
    es_jw_init(&w, out);
    if (task) {
        ag_ep_write_task(&w, &m);
    } else {
        ag_task_container *c = ag_task_find_container(t, td->containers[d].name);
        if (!c)
            return answer_error(out, 404, "NotFound", "No such container's metadata.");
        ag_ep_write_container(&w, &m, (size_t)(c - t->containers));
    }
    return es_jw_finish(&w) < 0 ? -ENOMEM : 200;
}

/* Any other GET: ECS-shaped 404 (the listener's own answer would speak of POST). */
static int serve_unknown(void *arg, const aw_listener_request *rq, es_buf *out, const char **ctype)
{
    (void)arg, (void)rq;
    *ctype = "application/json";
    return answer_error(out, 404, "NotFound",
                        "Only GET /v2/credentials and /v4/<id>[/task] are served here.");
}

/* ---- life ---- */

int ag_endpoints_start(const ag_endpoints_config *cfg, ag_endpoints **out, char *why, size_t n)
{
    if (!ag_endpoints_host_ok(cfg->host)) {
        snprintf(why, n, "%s is neither loopback nor %s", cfg->host, AG_EP_LINK_LOCAL);
        return -EINVAL;
    }
    ag_endpoints *p = es_calloc(1, sizeof *p);
    if (!p) {
        snprintf(why, n, "out of memory");
        return -ENOMEM;
    }
    p->cfg = *cfg;
    snprintf(p->host, sizeof p->host, "%s", cfg->host);
    static const char *const results[C_N] = {"served",      "no_token", "refused",
                                             "unavailable", "ok",       "failed"};
    for (int i = 0; cfg->metrics && i < C_N; i++) {
        const char *labels[] = {"result", results[i], NULL};
        p->m[i] = ag_metrics_series(
            cfg->metrics, AG_METRIC_COUNTER,
            i < C_ASSUMED ? "ecs_agent_task_credentials_requests_total"
                          : "ecs_agent_task_role_assumed_total",
            i < C_ASSUMED ? "Requests to the container credentials endpoint, by answer."
                          : "AssumeRole calls for tasks' roles, by outcome.",
            labels, NULL, 0);
    }
    int r = aw_listener_start(cfg->loop, cfg->host, cfg->port, &ep_limits, &p->l);
    if (r < 0) {
        snprintf(why, n, "cannot listen on %s:%d: %s", cfg->host, cfg->port, uv_strerror(r));
        es_free(p);
        return r;
    }
    bool v6 = strchr(cfg->host, ':') != NULL;
    p->port = aw_listener_port(p->l);
    snprintf(p->url, sizeof p->url, "http://%s%s%s:%d", v6 ? "[" : "", cfg->host, v6 ? "]" : "",
             p->port);
    aw_listener_set_unserved_text(p->l, "Only GET /v2/credentials and /v4/ are served here.");
    uv_timer_init(cfg->loop, &p->tick);
    p->tick.data = p;
    uv_timer_start(&p->tick, on_tick, AG_EP_TICK_MS, AG_EP_TICK_MS);
    if ((r = aw_listener_add_get_prefix_route(p->l, "/v2/credentials", serve_credentials, p)) < 0 ||
        (r = aw_listener_add_get_prefix_route(p->l, "/v4/", serve_metadata, p)) < 0 ||
        (r = aw_listener_add_get_prefix_route(p->l, "/", serve_unknown, p)) < 0 ||
        (r = ag_engine_observe(cfg->engine, on_task, p)) < 0) {
        snprintf(why, n, "no room for a route or an observer");
        *out = p; /* the caller closes it */
        return r;
    }
    ag_engine_set_env_hook(cfg->engine, on_env, p);
    ag_engine_set_launch_check(cfg->engine, on_check, p);
    *out = p;
    return 0;
}

const char *ag_endpoints_url(const ag_endpoints *p)
{
    return p->url;
}

static void part_done(ag_endpoints *p)
{
    p->inflight--;
    maybe_done(p);
}

static void on_listener_closed(void *arg)
{
    part_done(arg);
}

static void on_tick_closed(uv_handle_t *h)
{
    part_done(h->data);
}

void ag_endpoints_close(ag_endpoints *p, void (*done)(void *arg), void *arg)
{
    if (!p) {
        if (done)
            done(arg);
        return;
    }
    p->closing = true;
    p->done = done;
    p->done_arg = arg;
    ag_engine_set_env_hook(p->cfg.engine, NULL, NULL);
    ag_engine_set_launch_check(p->cfg.engine, NULL, NULL);
    ag_engine_unobserve(p->cfg.engine, on_task, p);
    p->inflight += 2;
    uv_timer_stop(&p->tick);
    uv_close((uv_handle_t *)&p->tick, on_tick_closed);
    aw_listener_close(p->l, on_listener_closed, p);
}
