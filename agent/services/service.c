/* service.c - see service.h. */
#include "agent/services/service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/services/redeploy.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

/* An ECS service ARN: partition, region, account, cluster and a name of at most
 * AG_SVC_NAME_MAX, with room to spare. */
#define SVC_ARN_MAX 1024
/* One task definition ARN at a time (family up to 255, revision). */
#define TD_ARN_MAX 2048

/* ---- pure model ---- */

bool ag_service_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > AG_SVC_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int ag_svc_upper(int desired, int max_percent)
{
    return (int)(((int64_t)desired * max_percent) / 100);
}

int ag_svc_lower(int desired, int min_healthy)
{
    return (int)(((int64_t)desired * min_healthy + 99) / 100);
}

const char *ag_service_config_error(int desired, int max_percent, int min_healthy)
{
    if (desired < 0 || desired > AG_SVC_DESIRED_MAX)
        return "desiredCount must be between 0 and 1000";
    if (max_percent < 100 || max_percent > 2000)
        return "deploymentConfiguration.maximumPercent must be between 100 and 2000";
    if (min_healthy < 0 || min_healthy > 100)
        return "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100";
    if (desired > 0 && ag_svc_upper(desired, max_percent) <= ag_svc_lower(desired, min_healthy))
        return "deploymentConfiguration: with these maximumPercent and minimumHealthyPercent "
               "no task can be replaced (the maximum must allow more tasks than the minimum "
               "keeps running)";
    return NULL;
}

int ag_svc_waves(int desired, int max_percent, int min_healthy)
{
    if (desired <= 0)
        return 0;
    int room = ag_svc_upper(desired, max_percent) - ag_svc_lower(desired, min_healthy);
    if (room < 1)
        return -1;
    return (desired + room - 1) / room;
}

int ag_svc_cb_threshold(int desired)
{
    int t = (desired + 1) / 2;
    if (t < AG_SVC_CB_MIN)
        t = AG_SVC_CB_MIN;
    if (t > AG_SVC_CB_MAX)
        t = AG_SVC_CB_MAX;
    return t;
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

static int imin(int a, int b)
{
    return a < b ? a : b;
}

void ag_svc_plan_step(const ag_svc_plan_in *in, ag_svc_plan *out)
{
    memset(out, 0, sizeof *out);
    int alive_new = in->new_running + in->new_pending;
    int alive_old = in->old_running + in->old_pending;
    if (alive_new > in->desired)
        out->stop_new = alive_new - in->desired;
    if (!in->primary_may_launch)
        return; /* a failed rollout leaves the older deployments as they are */
    /* stop first, down to the minimum (older tasks not yet running do not
     * count towards it), then start up to the maximum: ECS counts RUNNING
     * and PENDING tasks against maximumPercent, not the ones stopping */
    out->stop_old_pend = in->old_pending;
    int healthy = in->new_running + in->old_running;
    out->stop_old_run = imin(in->old_running, imax(0, healthy - in->lower));
    int after = alive_new - out->stop_new + alive_old - out->stop_old_pend - out->stop_old_run;
    if (alive_new < in->desired)
        out->start = imax(0, imin(in->desired - alive_new, in->upper - after));
}

static void event_id(char out[40])
{
    unsigned char r[16] = {0};
    (void)es_random_bytes(r, sizeof r);
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

int ag_service_event(ag_service *s, int64_t now, const char *fmt, ...)
{
    char msg[AG_SVC_EVENT_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *m = es_strdup(msg);
    if (!m)
        return -ENOMEM;
    if (s->n_events == AG_SVC_EVENTS_MAX)
        es_free(s->events[--s->n_events].message);
    memmove(&s->events[1], &s->events[0], s->n_events * sizeof s->events[0]);
    ag_svc_event *e = &s->events[0];
    event_id(e->id);
    /* the caller's second, refined to the clock's millisecond when they
     * agree (a test may pass a time of its own) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    e->created_ms = ms / 1000 == now ? ms : now * 1000;
    e->message = m;
    s->n_events++;
    return 0;
}

static int word_tasks(es_buf *b, const char *name, const char *verb, const char *const *ids,
                      size_t n)
{
    int r = es_buf_printf(b, "(service %s) has %s %zu %stasks:", name, verb, n,
                          strcmp(verb, "stopped") == 0 ? "running " : "");
    for (size_t i = 0; r == 0 && i < n; i++)
        r = es_buf_printf(b, " (task %s)", ids[i]);
    if (r == 0)
        r = es_buf_append_char(b, '.');
    return r;
}

int ag_svc_word_started(es_buf *b, const char *name, const char *const *ids, size_t n)
{
    return word_tasks(b, name, "started", ids, n);
}

int ag_svc_word_stopped(es_buf *b, const char *name, const char *const *ids, size_t n)
{
    return word_tasks(b, name, "stopped", ids, n);
}

static void dep_id(char out[AG_SVC_DEP_ID_MAX])
{
    uint64_t r = 0;
    (void)es_random_bytes(&r, sizeof r);
    /* 19 digits, as ECS's ids */
    r = 1000000000000000000ull + r % 8999999999999999999ull;
    snprintf(out, AG_SVC_DEP_ID_MAX, "ecs-svc/%" PRIu64, r);
}

static void dep_clear(ag_svc_deployment *d)
{
    es_free(d->family);
    es_free(d->rollout_reason);
    memset(d, 0, sizeof *d);
}

int ag_service_set_reason(ag_svc_deployment *d, const char *fmt, ...)
{
    char msg[AG_SVC_EVENT_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *m = es_strdup(msg);
    if (!m)
        return -ENOMEM;
    es_free(d->rollout_reason);
    d->rollout_reason = m;
    return 0;
}

/* The one transition of a deployment's rolloutState: IN_PROGRESS ->
 * COMPLETED or FAILED, and COMPLETED -> IN_PROGRESS again when a rollback
 * makes it the target. Logged old -> new. */
void ag_service_set_rollout(const ag_service *v, ag_svc_deployment *d, ag_rollout to, int64_t now)
{
    ag_rollout from = d->rollout;
    bool ok = (from == AG_ROLLOUT_IN_PROGRESS && to != AG_ROLLOUT_IN_PROGRESS) ||
              (from == AG_ROLLOUT_COMPLETED && to == AG_ROLLOUT_IN_PROGRESS);
    if (!ok) {
        es_err("service %s: deployment %s rollout %s -> %s refused", v->name, d->id,
               ag_rollout_name(from), ag_rollout_name(to));
        return;
    }
    d->rollout = to;
    d->updated_at = now;
    es_info("service %s: deployment %s rollout %s -> %s", v->name, d->id, ag_rollout_name(from),
            ag_rollout_name(to));
}

/* The one transition of a service's status: ACTIVE -> DRAINING (deleted)
 * -> INACTIVE (its tasks gone; kept for the retention that starts now).
 * Logged old -> new. A new service starts ACTIVE (ag_service_new). */
void ag_service_set_status(ag_service *v, ag_svc_status to, int64_t now)
{
    ag_svc_status from = v->status;
    if ((int)to != (int)from + 1) {
        es_err("service %s: status %s -> %s refused", v->name, ag_svc_status_name(from),
               ag_svc_status_name(to));
        return;
    }
    v->status = to;
    if (to == AG_SVC_INACTIVE)
        v->inactive_at = now; /* persisted with the status: the retention's start */
    es_info("service %s: %s -> %s", v->name, ag_svc_status_name(from), ag_svc_status_name(to));
}

void ag_service_drop_deployment(ag_service *v, size_t i)
{
    dep_clear(&v->deps[i]);
    memmove(&v->deps[i], &v->deps[i + 1], (v->n_deps - i - 1) * sizeof v->deps[0]);
    v->n_deps--;
}

int ag_service_deploy(ag_service *s, const char *family, int64_t revision, int64_t now)
{
    if (s->n_deps >= AG_SVC_DEPLOYMENTS_MAX)
        return -ENOSPC;
    ag_svc_deployment d = {.status = AG_DEP_PRIMARY,
                           .revision = revision,
                           .desired = s->desired,
                           .rollout = AG_ROLLOUT_IN_PROGRESS,
                           .created_at = now,
                           .updated_at = now};
    dep_id(d.id);
    d.family = es_strdup(family);
    if (!d.family || ag_service_set_reason(&d, "ECS deployment %s in progress.", d.id) < 0) {
        dep_clear(&d);
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n_deps; i++) {
        if (s->deps[i].status == AG_DEP_PRIMARY) {
            s->deps[i].status = AG_DEP_ACTIVE;
            s->deps[i].updated_at = now;
        }
    }
    memmove(&s->deps[1], &s->deps[0], s->n_deps * sizeof s->deps[0]);
    s->deps[0] = d;
    s->n_deps++;
    s->steady = false;
    return 0;
}

int ag_service_roll_back(ag_service *s, int64_t now)
{
    /* ECS rolls back to the most recent COMPLETED deployment, which turns
     * IN_PROGRESS and so is not a target again until it completes: a
     * rollback that fails too stalls rather than ping-pong. */
    size_t tgt = 1;
    while (tgt < s->n_deps && s->deps[tgt].rollout != AG_ROLLOUT_COMPLETED)
        tgt++;
    if (tgt >= s->n_deps)
        return -ENOENT;
    char *fam = es_strdup(s->deps[tgt].family);
    int64_t rev = s->deps[tgt].revision;
    int r = fam ? ag_service_deploy(s, fam, rev, now) : -ENOMEM;
    if (r < 0) {
        es_free(fam); /* nothing changed: the target stays COMPLETED */
        return r;
    }
    /* the new primary took index 0: the target moved one up */
    ag_service_set_rollout(s, &s->deps[tgt + 1], AG_ROLLOUT_IN_PROGRESS, now);
    es_free(s->family);
    s->family = fam;
    s->revision = rev;
    return 0;
}

int ag_service_new(const char *region, const char *account, const char *cluster, const char *name,
                   const char *family, int64_t revision, int desired, int max_percent,
                   int min_healthy, bool cb_enable, bool cb_rollback, int64_t now, ag_service **out)
{
    if (!region || !account || !cluster || !family || !ag_service_name_ok(name) || revision < 1)
        return -EINVAL;
    if (max_percent == 0)
        max_percent = 200;
    if (min_healthy < 0)
        min_healthy = 100;
    if (ag_service_config_error(desired, max_percent, min_healthy))
        return -EINVAL;
    ag_service *s = es_calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    es_buf b;
    es_buf_init(&b, SVC_ARN_MAX);
    int r = es_buf_printf(&b, "arn:aws:ecs:%s:%s:service/%s/%s", region, account, cluster, name);
    s->arn = r == 0 ? es_buf_steal(&b) : NULL;
    es_buf_free(&b);
    s->name = es_strdup(name);
    s->cluster = es_strdup(cluster);
    s->region = es_strdup(region);
    s->account = es_strdup(account);
    s->family = es_strdup(family);
    s->revision = revision;
    s->desired = desired;
    s->max_percent = max_percent;
    s->min_healthy_percent = min_healthy;
    s->cb_enable = cb_enable;
    s->cb_rollback = cb_rollback;
    s->created_at = now;
    s->redeploy_min_interval_s = AG_REDEPLOY_INTERVAL_DEFAULT; /* until its tags say more */
    /* status: AG_SVC_ACTIVE, the zero value, as every service begins */
    if (!s->arn || !s->name || !s->cluster || !s->region || !s->account || !s->family ||
        ag_service_deploy(s, family, revision, now) < 0) {
        ag_service_free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void ag_service_free(ag_service *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_deps; i++)
        dep_clear(&s->deps[i]);
    for (size_t i = 0; i < s->n_events; i++)
        es_free(s->events[i].message);
    es_free(s->name);
    es_free(s->arn);
    es_free(s->cluster);
    es_free(s->region);
    es_free(s->account);
    es_free(s->family);
    es_free(s->drift_sig);
    ag_tags_clear(&s->tags);
    es_free(s->placement);
    es_free(s);
}

int ag_service_set_placement(ag_service *v, const ag_svc_placement *p)
{
    if (!p || (p->n_strategies == 0 && p->n_constraints == 0)) {
        es_free(v->placement);
        v->placement = NULL;
        return 0;
    }
    ag_svc_placement *c = es_malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = *p;
    es_free(v->placement);
    v->placement = c;
    return 0;
}

static void write_placement(const ag_svc_placement *p, es_jw *w)
{
    es_jw_key(w, "placementStrategy");
    es_jw_arr(w);
    for (size_t i = 0; i < p->n_strategies; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "type", p->strategies[i].type);
        if (p->strategies[i].field[0])
            es_jw_kstr(w, "field", p->strategies[i].field);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "placementConstraints");
    es_jw_arr(w);
    for (size_t i = 0; i < p->n_constraints; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "type", p->constraints[i].type);
        if (p->constraints[i].expression[0])
            es_jw_kstr(w, "expression", p->constraints[i].expression);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

static const char *const svc_status_names[] = {"ACTIVE", "DRAINING", "INACTIVE"};
static const char *const dep_status_names[] = {"PRIMARY", "ACTIVE", "INACTIVE"};
static const char *const rollout_names[] = {"IN_PROGRESS", "COMPLETED", "FAILED"};

const char *ag_svc_status_name(ag_svc_status s)
{
    return svc_status_names[s];
}

const char *ag_dep_status_name(ag_dep_status s)
{
    return dep_status_names[s];
}

const char *ag_rollout_name(ag_rollout r)
{
    return rollout_names[r];
}

int ag_svc_status_parse(const char *s, ag_svc_status *out)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, svc_status_names[i]) == 0) {
            *out = (ag_svc_status)i;
            return 0;
        }
    return -EINVAL;
}

int ag_rollout_parse(const char *s, ag_rollout *out)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, rollout_names[i]) == 0) {
            *out = (ag_rollout)i;
            return 0;
        }
    return -EINVAL;
}

static void td_arn(es_buf *b, const ag_service *s, const char *family, int64_t rev)
{
    es_buf_reset(b);
    (void)es_buf_printf(b, "arn:aws:ecs:%s:%s:task-definition/%s:%" PRId64, s->region, s->account,
                        family, rev);
}

void ag_service_write_json(const ag_service *s, bool with_tags, es_jw *w)
{
    es_buf b;
    es_buf_init(&b, TD_ARN_MAX);
    int running = 0, pending = 0;
    for (size_t i = 0; i < s->n_deps; i++) {
        running += s->deps[i].running;
        pending += s->deps[i].pending;
    }
    es_jw_obj(w);
    es_jw_kstr(w, "serviceArn", s->arn);
    es_jw_kstr(w, "serviceName", s->name);
    (void)es_buf_printf(&b, "arn:aws:ecs:%s:%s:cluster/%s", s->region, s->account, s->cluster);
    es_jw_kstr(w, "clusterArn", es_buf_cstr(&b));
    es_jw_kstr(w, "status", ag_svc_status_name(s->status));
    es_jw_kint(w, "desiredCount", s->desired);
    es_jw_kint(w, "runningCount", running);
    es_jw_kint(w, "pendingCount", pending);
    es_jw_kstr(w, "launchType", "EC2");
    td_arn(&b, s, s->family, s->revision);
    es_jw_kstr(w, "taskDefinition", es_buf_cstr(&b));
    es_jw_key(w, "deploymentConfiguration");
    es_jw_obj(w);
    es_jw_key(w, "deploymentCircuitBreaker");
    es_jw_obj(w);
    es_jw_kbool(w, "enable", s->cb_enable);
    es_jw_kbool(w, "rollback", s->cb_rollback);
    es_jw_obj_end(w);
    es_jw_kint(w, "maximumPercent", s->max_percent);
    es_jw_kint(w, "minimumHealthyPercent", s->min_healthy_percent);
    es_jw_obj_end(w);
    if (s->placement)
        write_placement(s->placement, w);
    es_jw_key(w, "deployments");
    es_jw_arr(w);
    for (size_t i = 0; i < s->n_deps; i++) {
        const ag_svc_deployment *d = &s->deps[i];
        es_jw_obj(w);
        es_jw_kstr(w, "id", d->id);
        es_jw_kstr(w, "status", ag_dep_status_name(d->status));
        td_arn(&b, s, d->family, d->revision);
        es_jw_kstr(w, "taskDefinition", es_buf_cstr(&b));
        es_jw_kint(w, "desiredCount", d->desired);
        es_jw_kint(w, "pendingCount", d->pending);
        es_jw_kint(w, "runningCount", d->running);
        es_jw_kint(w, "failedTasks", d->failed);
        es_jw_kint(w, "createdAt", d->created_at);
        es_jw_kint(w, "updatedAt", d->updated_at);
        es_jw_kstr(w, "launchType", "EC2");
        es_jw_kstr(w, "rolloutState", ag_rollout_name(d->rollout));
        if (d->rollout_reason)
            es_jw_kstr(w, "rolloutStateReason", d->rollout_reason);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "events");
    es_jw_arr(w);
    for (size_t i = 0; i < s->n_events; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "id", s->events[i].id);
        es_jw_key(w, "createdAt");
        es_jw_double(w, (double)s->events[i].created_ms / 1000.0);
        es_jw_kstr(w, "message", s->events[i].message);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_kint(w, "createdAt", s->created_at);
    es_jw_kstr(w, "schedulingStrategy", "REPLICA");
    es_jw_key(w, "deploymentController");
    es_jw_obj(w);
    es_jw_kstr(w, "type", "ECS");
    es_jw_obj_end(w);
    es_jw_kint(w, "staleTasks", s->stale_tasks); /* ours: drift */
    if (with_tags)
        ag_tags_write(&s->tags, w);
    es_jw_obj_end(w);
    es_buf_free(&b);
}
