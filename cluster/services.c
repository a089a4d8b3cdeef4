/* services.c - a service's record in etcd (services.h): the key, the value
 * written and read bounded, every field checked by its rule. */
#include "cluster/services.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/instance.h"
#include "common/json.h"
#include "common/name.h"

/* A record at its bounds: 16 deployments, 20 events, 50 tags, 5 strategies
 * and 10 constraints: about 700 values. */
static const es_json_limits record_limits = {
    .max_bytes = CL_SV_VALUE_MAX,
    .max_depth = 4,
    .max_string = CL_PL_EXPR_MAX, /* the longest field: a constraint's expression */
    .max_values = 1200,
};

#define REVISION_MAX 9999999999LL /* the task definitions' keys: 10 digits */

/* ---- fields --------------------------------------------------------- */

/* ECS's name rule (common/name.h): the service's name and the family */
static bool word_ok(const char *s, size_t max)
{
    return es_name_ok(s, strlen(s), max);
}

bool cl_sv_name_ok(const char *s)
{
    return s && word_ok(s, CL_SV_NAME_MAX);
}

/* no control characters (events and reasons are ECS's sentences) */
static bool text_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return n <= max;
}

static bool one_of(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return true;
    return false;
}

static bool svc_status_ok(const char *s)
{
    static const char *const n[] = {"ACTIVE", "DRAINING", "INACTIVE"};
    return one_of(s, n, 3);
}

static bool rollout_ok(const char *s)
{
    static const char *const n[] = {"IN_PROGRESS", "COMPLETED", "FAILED"};
    return one_of(s, n, 3);
}

/* "ecs-svc/" and 19 digits, as ECS's deployment IDs */
static bool dep_id_ok(const char *s)
{
    if (strncmp(s, "ecs-svc/", 8) != 0 || strlen(s) != CL_SV_DEP_ID_MAX)
        return false;
    for (s += 8; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* 8-4-4-4-12 lower-case hex digits */
static bool event_id_ok(const char *s)
{
    if (strlen(s) != CL_SV_EVENT_ID_LEN)
        return false;
    for (size_t i = 0; i < CL_SV_EVENT_ID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

int cl_sv_compile(const cl_sv_record *rec, cl_pl_strategy *strategies,
                  cl_pl_constraint *constraints, char *why, size_t whylen)
{
    return cl_tk_placement_compile(rec->strategies, rec->n_strategies, rec->constraints,
                                   rec->n_constraints, strategies, constraints, why, whylen);
}

static bool placement_ok(const cl_sv_record *rec, char *why, size_t whylen)
{
    cl_pl_strategy s[CL_PL_STRATEGIES_MAX];
    cl_pl_constraint c[CL_PL_CONSTRAINTS_MAX];
    if (cl_sv_compile(rec, s, c, why, whylen) < 0)
        return false;
    for (size_t i = 0; i < rec->n_constraints; i++)
        cl_pl_constraint_clear(&c[i]);
    return true;
}

static int dep_check(const cl_sv_record *rec, size_t i, char *why, size_t whylen)
{
    const cl_sv_deployment *d = &rec->deps[i];
    if (!dep_id_ok(d->id))
        return es_errf(why, whylen, -EINVAL, "deployments[%zu].id: not ecs-svc/ and 19 digits", i);
    for (size_t k = 0; k < i; k++)
        if (strcmp(rec->deps[k].id, d->id) == 0)
            return es_errf(why, whylen, -EINVAL, "deployments[%zu].id: twice", i);
    if (strcmp(d->status, i == 0 ? "PRIMARY" : "ACTIVE") != 0)
        return es_errf(why, whylen, -EINVAL, "deployments[%zu].status: not %s", i,
                       i == 0 ? "PRIMARY" : "ACTIVE");
    if (!word_ok(d->family, CL_TK_FAMILY_MAX) || d->revision < 1 || d->revision > REVISION_MAX)
        return es_errf(why, whylen, -EINVAL, "deployments[%zu]: not a task definition", i);
    if (d->desired < 0 || d->desired > CL_SV_DESIRED_MAX || !rollout_ok(d->rollout) ||
        !text_ok(d->rollout_reason, CL_SV_EVENT_MAX) || d->created_at < 0 || d->updated_at < 0)
        return es_errf(why, whylen, -EINVAL,
                       "deployments[%zu]: desiredCount, rolloutState or a time not valid", i);
    return 0;
}

/* Every rule a record follows, whoever wrote it. */
static int record_check(const cl_sv_record *rec, char *why, size_t whylen)
{
    if (!cl_sv_name_ok(rec->name))
        return es_errf(why, whylen, -EINVAL, "name: not a service name");
    if (!svc_status_ok(rec->status))
        return es_errf(why, whylen, -EINVAL, "status: not ACTIVE, DRAINING or INACTIVE");
    if (!word_ok(rec->family, CL_TK_FAMILY_MAX) || rec->revision < 1 ||
        rec->revision > REVISION_MAX)
        return es_errf(why, whylen, -EINVAL, "family or revision: not a task definition");
    if (rec->desired < 0 || rec->desired > CL_SV_DESIRED_MAX || rec->max_percent < 100 ||
        rec->max_percent > 2000 || rec->min_healthy < 0 || rec->min_healthy > 100)
        return es_errf(why, whylen, -EINVAL,
                       "desiredCount, maximumPercent or minimumHealthyPercent: out of range");
    if (rec->created_at < 0 || rec->inactive_at < 0 || rec->redeployed_at < 0)
        return es_errf(why, whylen, -EINVAL, "a time: negative");
    if (rec->n_strategies > CL_PL_STRATEGIES_MAX || rec->n_constraints > CL_PL_CONSTRAINTS_MAX ||
        !placement_ok(rec, why, whylen))
        return es_errf(why, whylen, -EINVAL, "a strategy or a constraint: not one placement takes");
    if (rec->n_deps < 1 || rec->n_deps > CL_SV_DEPLOYMENTS_MAX)
        return es_errf(why, whylen, -EINVAL, "deployments: 1 to %d", CL_SV_DEPLOYMENTS_MAX);
    for (size_t i = 0; i < rec->n_deps; i++) {
        int r = dep_check(rec, i, why, whylen);
        if (r < 0)
            return r;
    }
    if (rec->n_events > CL_SV_EVENTS_MAX)
        return es_errf(why, whylen, -EINVAL, "events: more than %d", CL_SV_EVENTS_MAX);
    for (size_t i = 0; i < rec->n_events; i++)
        if (!event_id_ok(rec->events[i].id) || rec->events[i].created_ms < 0 ||
            !text_ok(rec->events[i].message, CL_SV_EVENT_MAX))
            return es_errf(why, whylen, -EINVAL, "events[%zu]: id, createdAt or message not valid",
                           i);
    if (rec->n_tags > CL_SV_TAGS_MAX)
        return es_errf(why, whylen, -EINVAL, "tags: more than %d", CL_SV_TAGS_MAX);
    for (size_t i = 0; i < rec->n_tags; i++) {
        const cl_sv_tag *t = &rec->tags[i];
        if (!t->key[0] || !text_ok(t->key, CL_SV_TAG_KEY_MAX) ||
            !text_ok(t->value, CL_SV_TAG_VALUE_MAX))
            return es_errf(why, whylen, -EINVAL, "tags[%zu]: key or value not valid", i);
        for (size_t k = 0; k < i; k++)
            if (strcmp(rec->tags[k].key, t->key) == 0)
                return es_errf(why, whylen, -EINVAL, "tags[%zu]: key twice", i);
    }
    return 0;
}

/* ---- keys ----------------------------------------------------------- */

int cl_sv_prefix(const char *cluster, char *out, size_t outlen)
{
    return cl_cluster_key(cluster, CL_SV_LEAF, out, outlen);
}

int cl_sv_key(const char *cluster, const char *name, char *out, size_t outlen)
{
    if (!cl_sv_name_ok(name))
        return -EINVAL;
    int p = cl_sv_prefix(cluster, out, outlen);
    if (p < 0)
        return p;
    int n = snprintf(out + p, outlen - (size_t)p, "%s", name);
    return n < 0 || (size_t)n >= outlen - (size_t)p ? -EINVAL : p + n;
}

/* ---- the value ------------------------------------------------------ */

static void write_record(const cl_sv_record *rec, size_t n_events, es_jw *w)
{
    es_jw_obj(w);
    es_jw_kstr(w, "name", rec->name);
    es_jw_kstr(w, "status", rec->status);
    es_jw_kstr(w, "family", rec->family);
    es_jw_kint(w, "revision", rec->revision);
    es_jw_kint(w, "desiredCount", rec->desired);
    es_jw_kint(w, "maximumPercent", rec->max_percent);
    es_jw_kint(w, "minimumHealthyPercent", rec->min_healthy);
    es_jw_kbool(w, "circuitBreakerEnable", rec->cb_enable);
    es_jw_kbool(w, "circuitBreakerRollback", rec->cb_rollback);
    es_jw_kint(w, "createdAt", rec->created_at);
    es_jw_kint(w, "inactiveAt", rec->inactive_at);
    es_jw_kint(w, "redeployedAt", rec->redeployed_at);
    es_jw_key(w, "placementStrategy");
    es_jw_arr(w);
    for (size_t i = 0; i < rec->n_strategies; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "type", rec->strategies[i].type);
        if (rec->strategies[i].field[0])
            es_jw_kstr(w, "field", rec->strategies[i].field);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "placementConstraints");
    es_jw_arr(w);
    for (size_t i = 0; i < rec->n_constraints; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "type", rec->constraints[i].type);
        if (rec->constraints[i].expression[0])
            es_jw_kstr(w, "expression", rec->constraints[i].expression);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "tags");
    es_jw_arr(w);
    for (size_t i = 0; i < rec->n_tags; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "key", rec->tags[i].key);
        es_jw_kstr(w, "value", rec->tags[i].value);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "deployments");
    es_jw_arr(w);
    for (size_t i = 0; i < rec->n_deps; i++) {
        const cl_sv_deployment *d = &rec->deps[i];
        es_jw_obj(w);
        es_jw_kstr(w, "id", d->id);
        es_jw_kstr(w, "status", d->status);
        es_jw_kstr(w, "family", d->family);
        es_jw_kint(w, "revision", d->revision);
        es_jw_kint(w, "desiredCount", d->desired);
        es_jw_kstr(w, "rolloutState", d->rollout);
        es_jw_kstr(w, "rolloutStateReason", d->rollout_reason);
        es_jw_kint(w, "createdAt", d->created_at);
        es_jw_kint(w, "updatedAt", d->updated_at);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "events");
    es_jw_arr(w);
    for (size_t i = 0; i < n_events; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "id", rec->events[i].id);
        es_jw_kint(w, "createdAt", rec->events[i].created_ms);
        es_jw_kstr(w, "message", rec->events[i].message);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_obj_end(w);
}

int cl_sv_write(const cl_sv_record *rec, es_buf *out, size_t *events_written)
{
    char why[160];
    if (record_check(rec, why, sizeof why) < 0)
        return -EINVAL;
    /* the newest events that fit: most records take them all at once */
    for (size_t n = rec->n_events + 1; n-- > 0;) {
        es_buf tmp;
        es_buf_init(&tmp, CL_SV_VALUE_MAX);
        es_jw w;
        es_jw_init(&w, &tmp);
        write_record(rec, n, &w);
        int r = es_jw_finish(&w);
        if (r == 0) {
            r = es_buf_append(out, tmp.data, tmp.len);
            es_buf_free(&tmp);
            if (r == 0 && events_written)
                *events_written = n;
            return r == -ENOMEM ? -ENOMEM : r < 0 ? -EMSGSIZE : 0;
        }
        es_buf_free(&tmp);
        if (r == -ENOMEM)
            return -ENOMEM;
    }
    return -EMSGSIZE;
}

/* A string field into out (size outlen): required, or "" when absent. */
static int get_str(const es_json *j, const char *key, char *out, size_t outlen, bool required,
                   char *why, size_t whylen)
{
    const es_json *v = es_json_get(j, key);
    out[0] = '\0';
    if (!v || v->type == ES_JSON_NULL)
        return required ? es_errf(why, whylen, -EINVAL, "%s: missing", key) : 0;
    const char *s = es_json_as_str(v);
    if (!s || strlen(s) >= outlen)
        return es_errf(why, whylen, -EINVAL, "%s: not a string of at most %zu characters", key,
                       outlen - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int get_int(const es_json *j, const char *key, int64_t *out, char *why, size_t whylen)
{
    if (!es_json_get_int64(j, key, out))
        return es_errf(why, whylen, -EINVAL, "%s: not a number", key);
    return 0;
}

static int get_bool(const es_json *j, const char *key, bool *out, char *why, size_t whylen)
{
    if (!es_json_get_bool(j, key, out))
        return es_errf(why, whylen, -EINVAL, "%s: not a boolean", key);
    return 0;
}

/* An array member of at most max objects (absent: none). */
static int get_list(const es_json *j, const char *key, size_t max, const es_json **out, size_t *n,
                    char *why, size_t whylen)
{
    const es_json *a = es_json_get(j, key);
    *out = NULL;
    *n = 0;
    if (!a)
        return 0;
    if (a->type != ES_JSON_ARRAY)
        return es_errf(why, whylen, -EINVAL, "%s: not an array", key);
    if (es_json_len(a) > max)
        return es_errf(why, whylen, -EINVAL, "%s: more than %zu", key, max);
    for (size_t i = 0; i < es_json_len(a); i++)
        if (es_json_at(a, i)->type != ES_JSON_OBJECT)
            return es_errf(why, whylen, -EINVAL, "%s[%zu]: not an object", key, i);
    *out = a;
    *n = es_json_len(a);
    return 0;
}

static int read_deployment(const es_json *o, cl_sv_deployment *d, char *why, size_t whylen)
{
    int r;
    if ((r = get_str(o, "id", d->id, sizeof d->id, true, why, whylen)) ||
        (r = get_str(o, "status", d->status, sizeof d->status, true, why, whylen)) ||
        (r = get_str(o, "family", d->family, sizeof d->family, true, why, whylen)) ||
        (r = get_int(o, "revision", &d->revision, why, whylen)) ||
        (r = get_int(o, "desiredCount", &d->desired, why, whylen)) ||
        (r = get_str(o, "rolloutState", d->rollout, sizeof d->rollout, true, why, whylen)) ||
        (r = get_str(o, "rolloutStateReason", d->rollout_reason, sizeof d->rollout_reason, false,
                     why, whylen)) ||
        (r = get_int(o, "createdAt", &d->created_at, why, whylen)) ||
        (r = get_int(o, "updatedAt", &d->updated_at, why, whylen)))
        return r;
    return 0;
}

static int read_fields(const es_json *j, cl_sv_record *out, char *why, size_t whylen)
{
    int r;
    if ((r = get_str(j, "name", out->name, sizeof out->name, true, why, whylen)) ||
        (r = get_str(j, "status", out->status, sizeof out->status, true, why, whylen)) ||
        (r = get_str(j, "family", out->family, sizeof out->family, true, why, whylen)) ||
        (r = get_int(j, "revision", &out->revision, why, whylen)) ||
        (r = get_int(j, "desiredCount", &out->desired, why, whylen)) ||
        (r = get_int(j, "maximumPercent", &out->max_percent, why, whylen)) ||
        (r = get_int(j, "minimumHealthyPercent", &out->min_healthy, why, whylen)) ||
        (r = get_bool(j, "circuitBreakerEnable", &out->cb_enable, why, whylen)) ||
        (r = get_bool(j, "circuitBreakerRollback", &out->cb_rollback, why, whylen)) ||
        (r = get_int(j, "createdAt", &out->created_at, why, whylen)) ||
        (r = get_int(j, "inactiveAt", &out->inactive_at, why, whylen)) ||
        (r = get_int(j, "redeployedAt", &out->redeployed_at, why, whylen)))
        return r;
    const es_json *l;
    size_t n;
    if ((r = get_list(j, "placementStrategy", CL_PL_STRATEGIES_MAX, &l, &n, why, whylen)))
        return r;
    for (size_t i = 0; i < n; i++) {
        cl_tk_strategy_text *t = &out->strategies[i];
        if ((r = get_str(es_json_at(l, i), "type", t->type, sizeof t->type, true, why, whylen)) ||
            (r = get_str(es_json_at(l, i), "field", t->field, sizeof t->field, false, why, whylen)))
            return r;
        out->n_strategies = i + 1;
    }
    if ((r = get_list(j, "placementConstraints", CL_PL_CONSTRAINTS_MAX, &l, &n, why, whylen)))
        return r;
    for (size_t i = 0; i < n; i++) {
        cl_tk_constraint_text *t = &out->constraints[i];
        if ((r = get_str(es_json_at(l, i), "type", t->type, sizeof t->type, true, why, whylen)) ||
            (r = get_str(es_json_at(l, i), "expression", t->expression, sizeof t->expression, false,
                         why, whylen)))
            return r;
        out->n_constraints = i + 1;
    }
    if ((r = get_list(j, "tags", CL_SV_TAGS_MAX, &l, &n, why, whylen)))
        return r;
    for (size_t i = 0; i < n; i++) {
        cl_sv_tag *t = &out->tags[i];
        if ((r = get_str(es_json_at(l, i), "key", t->key, sizeof t->key, true, why, whylen)) ||
            (r = get_str(es_json_at(l, i), "value", t->value, sizeof t->value, false, why, whylen)))
            return r;
        out->n_tags = i + 1;
    }
    if ((r = get_list(j, "deployments", CL_SV_DEPLOYMENTS_MAX, &l, &n, why, whylen)))
        return r;
    for (size_t i = 0; i < n; i++) {
        if ((r = read_deployment(es_json_at(l, i), &out->deps[i], why, whylen)))
            return r;
        out->n_deps = i + 1;
    }
    if ((r = get_list(j, "events", CL_SV_EVENTS_MAX, &l, &n, why, whylen)))
        return r;
    for (size_t i = 0; i < n; i++) {
        cl_sv_event *e = &out->events[i];
        if ((r = get_str(es_json_at(l, i), "id", e->id, sizeof e->id, true, why, whylen)) ||
            (r = get_int(es_json_at(l, i), "createdAt", &e->created_ms, why, whylen)) ||
            (r = get_str(es_json_at(l, i), "message", e->message, sizeof e->message, true, why,
                         whylen)))
            return r;
        out->n_events = i + 1;
    }
    return 0;
}

int cl_sv_read(const char *prefix, const cl_kv *kv, cl_sv_record *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    size_t pl = strlen(prefix);
    if (strncmp(kv->key, prefix, pl) != 0 || !cl_sv_name_ok(kv->key + pl))
        return es_errf(why, whylen, -EINVAL, "not a service's key");
    if (kv->value_len > CL_SV_VALUE_MAX)
        return es_errf(why, whylen, -EINVAL, "longer than %u bytes", CL_SV_VALUE_MAX);
    es_json *j = NULL;
    char jwhy[96];
    int jr = es_json_parse(kv->value, kv->value_len, &record_limits, &j, jwhy, sizeof jwhy);
    if (jr == ES_JSON_E_NOMEM)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    if (jr || j->type != ES_JSON_OBJECT) {
        es_json_free(j);
        return es_errf(why, whylen, -EINVAL, "%s", jr ? jwhy : "not a JSON object");
    }
    int r = read_fields(j, out, why, whylen);
    es_json_free(j);
    if (r == 0 && strcmp(out->name, kv->key + pl) != 0)
        r = es_errf(why, whylen, -EINVAL, "name: not the key's");
    if (r == 0)
        r = record_check(out, why, whylen);
    out->mod_revision = kv->mod_revision;
    return r;
}
