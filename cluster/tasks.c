/* tasks.c - the records of RunTask across the cluster (tasks.h): keys, and
 * values written and read bounded. A value is a JSON header line; the
 * request's and the assignment's carry the RunTask's overrides after it as
 * the caller gave them (the launching agent reads them with the
 * task-definition reader, as a local RunTask does). */
#include "cluster/tasks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/name.h"

#define HEADER_MAX (24u * 1024) /* the constraints' texts: 10 x 2000 */

static const es_json_limits header_limits = {
    .max_bytes = HEADER_MAX,
    .max_depth = 4,
    .max_string = CL_PL_EXPR_MAX,
    .max_values = 400,
};

bool cl_tk_id_ok(const char *s)
{
    if (!s || strlen(s) != CL_TK_ID_HEX)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* ---- keys ----------------------------------------------------------- */

int cl_tk_prefix(const char *cluster, const char *leaf, char *out, size_t outlen)
{
    return cl_cluster_key(cluster, leaf, out, outlen);
}

static int id_key(const char *cluster, const char *leaf, const char *id, char *out, size_t outlen)
{
    if (!cl_tk_id_ok(id))
        return -EINVAL;
    int p = cl_tk_prefix(cluster, leaf, out, outlen);
    if (p < 0)
        return p;
    int n = snprintf(out + p, outlen - (size_t)p, "%s", id);
    return n < 0 || (size_t)n >= outlen - (size_t)p ? -EINVAL : p + n;
}

int cl_tk_request_key(const char *cluster, const char *id, char *out, size_t outlen)
{
    return id_key(cluster, CL_TK_REQUESTS_LEAF, id, out, outlen);
}

int cl_tk_result_key(const char *cluster, const char *id, char *out, size_t outlen)
{
    return id_key(cluster, CL_TK_RESULTS_LEAF, id, out, outlen);
}

int cl_tk_status_key(const char *cluster, const char *task_id, char *out, size_t outlen)
{
    return id_key(cluster, CL_TK_TASKS_LEAF, task_id, out, outlen);
}

int cl_tk_stop_key(const char *cluster, const char *task_id, char *out, size_t outlen)
{
    return id_key(cluster, CL_TK_STOPS_LEAF, task_id, out, outlen);
}

int cl_tk_assignment_key(const char *cluster, const char *instance, const char *task_id, char *out,
                         size_t outlen)
{
    if (!cl_instance_id_ok(instance) || !cl_tk_id_ok(task_id))
        return -EINVAL;
    int p = cl_tk_prefix(cluster, CL_TK_ASSIGNMENTS_LEAF, out, outlen);
    if (p < 0)
        return p;
    int n = snprintf(out + p, outlen - (size_t)p, "%s/%s", instance, task_id);
    return n < 0 || (size_t)n >= outlen - (size_t)p ? -EINVAL : p + n;
}

/* The ID after prefix (the whole rest of the key). */
static int key_id(const char *prefix, const char *key, char *id)
{
    size_t pl = strlen(prefix);
    if (strncmp(key, prefix, pl) != 0 || !cl_tk_id_ok(key + pl))
        return -EINVAL;
    memcpy(id, key + pl, CL_TK_ID_HEX + 1);
    return 0;
}

/* ---- fields --------------------------------------------------------- */

/* printable ASCII and UTF-8 continuation; no control characters */
static bool text_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* ECS's name rule (common/name.h) */
static bool name_ok(const char *s, size_t max)
{
    return es_name_ok(s, strlen(s), max);
}

static bool status_ok(const char *s)
{
    static const char *const names[] = {"PROVISIONING", "PENDING",  "ACTIVATING",     "RUNNING",
                                        "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(s, names[i]) == 0)
            return true;
    return false;
}

static bool launch_type_ok(const char *s)
{
    return strcmp(s, "EC2") == 0 || strcmp(s, "EXTERNAL") == 0 || strcmp(s, "FARGATE") == 0;
}

/* A string field into out (size outlen): required or "" when absent. */
static int get_str(const es_json *j, const char *key, char *out, size_t outlen, bool required,
                   char *why, size_t whylen)
{
    const es_json *v = es_json_get(j, key);
    out[0] = '\0';
    if (!v || v->type == ES_JSON_NULL) {
        if (required)
            return es_errf(why, whylen, -EINVAL, "%s: missing", key);
        return 0;
    }
    const char *s = es_json_as_str(v);
    if (!s || strlen(s) >= outlen || !text_ok(s))
        return es_errf(why, whylen, -EINVAL, "%s: not a string of at most %zu characters", key,
                       outlen - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int get_int(const es_json *j, const char *key, int64_t min, int64_t max, int64_t *out,
                   char *why, size_t whylen)
{
    if (!es_json_get_int64(j, key, out) || *out < min || *out > max)
        return es_errf(why, whylen, -EINVAL, "%s: not a number from %" PRId64 " to %" PRId64, key,
                       min, max);
    return 0;
}

/* Parses the header line of kv's value; *rest: what follows the newline. */
static int parse_header(const cl_kv *kv, es_json **out, const char **rest, size_t *rest_len,
                        char *why, size_t whylen)
{
    if (kv->value_len > CL_TK_VALUE_MAX)
        return es_errf(why, whylen, -EINVAL, "longer than %u bytes", CL_TK_VALUE_MAX);
    const char *nl = memchr(kv->value, '\n', kv->value_len);
    size_t hl = nl ? (size_t)(nl - kv->value) : kv->value_len;
    char jwhy[96];
    int jr = es_json_parse(kv->value, hl, &header_limits, out, jwhy, sizeof jwhy);
    if (jr == ES_JSON_E_NOMEM)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    if (jr || (*out)->type != ES_JSON_OBJECT) {
        es_json_free(*out);
        *out = NULL;
        return es_errf(why, whylen, -EINVAL, "header: %s", jr ? jwhy : "not a JSON object");
    }
    *rest = nl ? nl + 1 : NULL;
    *rest_len = nl ? kv->value_len - hl - 1 : 0;
    return 0;
}

/* The overrides after the header: absent, or a JSON object's text. */
static int read_overrides(const char *rest, size_t len, const char **out, size_t *out_len,
                          char *why, size_t whylen)
{
    *out = NULL;
    *out_len = 0;
    if (!rest || len == 0)
        return 0;
    if (len > CL_TK_OVERRIDES_MAX || rest[0] != '{')
        return es_errf(why, whylen, -EINVAL, "overrides: not an object of at most %u bytes",
                       CL_TK_OVERRIDES_MAX);
    *out = rest;
    *out_len = len;
    return 0;
}

static bool overrides_ok(const char *overrides, size_t len)
{
    return !overrides || len == 0 || (len <= CL_TK_OVERRIDES_MAX && overrides[0] == '{');
}

static int finish(es_jw *w, es_buf *out, const char *overrides, size_t overrides_len)
{
    int r = es_jw_finish(w);
    if (r == 0 && overrides_len && (r = es_buf_append(out, "\n", 1)) == 0)
        r = es_buf_append(out, overrides, overrides_len);
    if (r == 0 && out->len > CL_TK_VALUE_MAX)
        return -EMSGSIZE;
    return r < 0 ? (r == -ENOMEM ? -ENOMEM : -EMSGSIZE) : 0;
}

/* the fields a request, an assignment and a status share */
static bool common_ok(const char *family, int64_t revision, int64_t cpu, int64_t memory,
                      const char *group, const char *started_by, const char *launch_type)
{
    return name_ok(family, CL_TK_FAMILY_MAX) && revision >= 1 && revision <= 9999999999LL &&
           cpu >= 0 && memory >= 0 && cpu <= INT32_MAX && memory <= INT32_MAX && group[0] &&
           strlen(group) <= CL_TK_GROUP_MAX && text_ok(group) &&
           strlen(started_by) <= CL_TK_STARTED_BY_MAX && text_ok(started_by) &&
           launch_type_ok(launch_type);
}

static void write_common(es_jw *w, const char *family, int64_t revision, int64_t cpu,
                         int64_t memory, const char *group, const char *started_by,
                         const char *launch_type)
{
    es_jw_kstr(w, "family", family);
    es_jw_kint(w, "revision", revision);
    es_jw_kint(w, "cpu", cpu);
    es_jw_kint(w, "memory", memory);
    es_jw_kstr(w, "group", group);
    if (started_by[0])
        es_jw_kstr(w, "startedBy", started_by);
    es_jw_kstr(w, "launchType", launch_type);
}

static int read_common(const es_json *j, char *family, int64_t *revision, int64_t *cpu,
                       int64_t *memory, char *group, char *started_by, char *launch_type, char *why,
                       size_t whylen)
{
    int r;
    if ((r = get_str(j, "family", family, CL_TK_FAMILY_MAX + 1, true, why, whylen)) ||
        (r = get_int(j, "revision", 1, 9999999999LL, revision, why, whylen)) ||
        (r = get_int(j, "cpu", 0, INT32_MAX, cpu, why, whylen)) ||
        (r = get_int(j, "memory", 0, INT32_MAX, memory, why, whylen)) ||
        (r = get_str(j, "group", group, CL_TK_GROUP_MAX + 1, true, why, whylen)) ||
        (r = get_str(j, "startedBy", started_by, CL_TK_STARTED_BY_MAX + 1, false, why, whylen)) ||
        (r = get_str(j, "launchType", launch_type, CL_TK_LAUNCH_TYPE_MAX + 1, true, why, whylen)))
        return r;
    if (!common_ok(family, *revision, *cpu, *memory, group, started_by, launch_type))
        return es_errf(why, whylen, -EINVAL, "family, group or launchType: not valid");
    return 0;
}

/* ---- requests ------------------------------------------------------- */

int cl_tk_placement_compile(const cl_tk_strategy_text *st, size_t n_st,
                            const cl_tk_constraint_text *ct, size_t n_ct,
                            cl_pl_strategy *strategies, cl_pl_constraint *constraints, char *why,
                            size_t whylen)
{
    if (n_st > CL_PL_STRATEGIES_MAX || n_ct > CL_PL_CONSTRAINTS_MAX)
        return es_errf(why, whylen, -EINVAL, "too many strategies or constraints");
    int r = 0;
    for (size_t i = 0; i < n_st && r == 0; i++)
        r = cl_pl_strategy_parse(st[i].type, st[i].field[0] ? st[i].field : NULL, &strategies[i],
                                 why, whylen);
    size_t n = 0;
    for (; n < n_ct && r == 0; n++) {
        r = cl_pl_constraint_parse(ct[n].type, ct[n].expression[0] ? ct[n].expression : NULL,
                                   &constraints[n], why, whylen);
        if (r < 0)
            break;
    }
    if (r < 0)
        for (size_t i = 0; i < n; i++)
            cl_pl_constraint_clear(&constraints[i]);
    return r < 0 ? r : 0;
}

int cl_tk_request_compile(const cl_tk_request *rq, cl_pl_strategy *strategies,
                          cl_pl_constraint *constraints, char *why, size_t whylen)
{
    return cl_tk_placement_compile(rq->strategies, rq->n_strategies, rq->constraints,
                                   rq->n_constraints, strategies, constraints, why, whylen);
}

static bool request_ok(const cl_tk_request *rq)
{
    if (!cl_tk_id_ok(rq->id) || !cl_instance_id_ok(rq->from) || rq->count < 1 ||
        rq->count > CL_TK_COUNT_MAX || rq->created_at < 0 ||
        !common_ok(rq->family, rq->revision, rq->cpu, rq->memory, rq->group, rq->started_by,
                   rq->launch_type) ||
        rq->n_strategies > CL_PL_STRATEGIES_MAX || rq->n_constraints > CL_PL_CONSTRAINTS_MAX)
        return false;
    /* every strategy and constraint must compile: the leader would refuse it */
    cl_pl_strategy s[CL_PL_STRATEGIES_MAX];
    cl_pl_constraint c[CL_PL_CONSTRAINTS_MAX];
    char why[160];
    if (cl_tk_request_compile(rq, s, c, why, sizeof why) < 0)
        return false;
    for (size_t i = 0; i < rq->n_constraints; i++)
        cl_pl_constraint_clear(&c[i]);
    return true;
}

int cl_tk_request_write(const cl_tk_request *rq, es_buf *out)
{
    if (!request_ok(rq) || !overrides_ok(rq->overrides, rq->overrides_len))
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "id", rq->id);
    es_jw_kstr(&w, "from", rq->from);
    es_jw_kint(&w, "count", rq->count);
    write_common(&w, rq->family, rq->revision, rq->cpu, rq->memory, rq->group, rq->started_by,
                 rq->launch_type);
    es_jw_key(&w, "placementStrategy");
    es_jw_arr(&w);
    for (size_t i = 0; i < rq->n_strategies; i++) {
        es_jw_obj(&w);
        es_jw_kstr(&w, "type", rq->strategies[i].type);
        if (rq->strategies[i].field[0])
            es_jw_kstr(&w, "field", rq->strategies[i].field);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    es_jw_key(&w, "placementConstraints");
    es_jw_arr(&w);
    for (size_t i = 0; i < rq->n_constraints; i++) {
        es_jw_obj(&w);
        es_jw_kstr(&w, "type", rq->constraints[i].type);
        if (rq->constraints[i].expression[0])
            es_jw_kstr(&w, "expression", rq->constraints[i].expression);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    es_jw_kint(&w, "createdAt", rq->created_at);
    es_jw_obj_end(&w);
    return finish(&w, out, rq->overrides, rq->overrides ? rq->overrides_len : 0);
}

static int read_list(const es_json *j, const char *key, size_t max, const es_json **out, char *why,
                     size_t whylen)
{
    const es_json *a = es_json_get(j, key);
    if (a && a->type != ES_JSON_ARRAY)
        return es_errf(why, whylen, -EINVAL, "%s: not an array", key);
    if (a && es_json_len(a) > max)
        return es_errf(why, whylen, -EINVAL, "%s: more than %zu", key, max);
    *out = a;
    return 0;
}

/* The start every record keyed by one ID shares: the ID from the key (its
 * absence: "not a WHAT's key"), the header line parsed, and the header's
 * MEMBER equal to the key's ID. On failure nothing is left to free. */
static int read_keyed(const char *prefix, const cl_kv *kv, const char *what, const char *member,
                      char *id, es_json **j, const char **rest, size_t *rest_len, char *why,
                      size_t whylen)
{
    if (key_id(prefix, kv->key, id) < 0)
        return es_errf(why, whylen, -EINVAL, "not a %s's key", what);
    int r = parse_header(kv, j, rest, rest_len, why, whylen);
    if (r < 0)
        return r;
    char own[CL_TK_ID_HEX + 1];
    if ((r = get_str(*j, member, own, sizeof own, true, why, whylen)) == 0 && strcmp(own, id) != 0)
        r = es_errf(why, whylen, -EINVAL, "%s: not the key's", member);
    if (r < 0) {
        es_json_free(*j);
        *j = NULL;
    }
    return r;
}

int cl_tk_request_read(const char *prefix, const cl_kv *kv, cl_tk_request *out, char *why,
                       size_t whylen)
{
    memset(out, 0, sizeof *out);
    es_json *j = NULL;
    const char *rest = NULL;
    size_t rest_len = 0;
    int r = read_keyed(prefix, kv, "request", "id", out->id, &j, &rest, &rest_len, why, whylen);
    if (r < 0)
        return r;
    const es_json *sl = NULL, *cl = NULL;
    if ((r = get_str(j, "from", out->from, sizeof out->from, true, why, whylen)) == 0 &&
        !cl_instance_id_ok(out->from))
        r = es_errf(why, whylen, -EINVAL, "from: not an instance ID");
    if (r == 0)
        r = get_int(j, "count", 1, CL_TK_COUNT_MAX, &out->count, why, whylen);
    if (r == 0)
        r = read_common(j, out->family, &out->revision, &out->cpu, &out->memory, out->group,
                        out->started_by, out->launch_type, why, whylen);
    if (r == 0)
        r = get_int(j, "createdAt", 0, INT64_MAX, &out->created_at, why, whylen);
    if (r == 0)
        r = read_list(j, "placementStrategy", CL_PL_STRATEGIES_MAX, &sl, why, whylen);
    if (r == 0)
        r = read_list(j, "placementConstraints", CL_PL_CONSTRAINTS_MAX, &cl, why, whylen);
    for (size_t i = 0; r == 0 && sl && i < es_json_len(sl); i++) {
        const es_json *s = es_json_at(sl, i);
        cl_tk_strategy_text *t = &out->strategies[i];
        if ((r = get_str(s, "type", t->type, sizeof t->type, true, why, whylen)) == 0)
            r = get_str(s, "field", t->field, sizeof t->field, false, why, whylen);
        out->n_strategies = i + 1;
    }
    for (size_t i = 0; r == 0 && cl && i < es_json_len(cl); i++) {
        const es_json *c = es_json_at(cl, i);
        cl_tk_constraint_text *t = &out->constraints[i];
        if ((r = get_str(c, "type", t->type, sizeof t->type, true, why, whylen)) == 0)
            r = get_str(c, "expression", t->expression, sizeof t->expression, false, why, whylen);
        out->n_constraints = i + 1;
    }
    es_json_free(j);
    if (r == 0)
        r = read_overrides(rest, rest_len, &out->overrides, &out->overrides_len, why, whylen);
    if (r == 0 && !request_ok(out))
        r = es_errf(why, whylen, -EINVAL, "a strategy or a constraint: not one placement takes");
    out->mod_revision = kv->mod_revision;
    return r;
}

/* ---- assignments ---------------------------------------------------- */

static bool assignment_ok(const cl_tk_assignment *as)
{
    return cl_instance_id_ok(as->instance) && cl_tk_id_ok(as->task_id) &&
           cl_tk_id_ok(as->request) && as->created_at >= 0 &&
           common_ok(as->family, as->revision, as->cpu, as->memory, as->group, as->started_by,
                     as->launch_type);
}

int cl_tk_assignment_write(const cl_tk_assignment *as, es_buf *out)
{
    if (!assignment_ok(as) || !overrides_ok(as->overrides, as->overrides_len))
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "instance", as->instance);
    es_jw_kstr(&w, "taskId", as->task_id);
    es_jw_kstr(&w, "request", as->request);
    write_common(&w, as->family, as->revision, as->cpu, as->memory, as->group, as->started_by,
                 as->launch_type);
    es_jw_kint(&w, "createdAt", as->created_at);
    es_jw_obj_end(&w);
    return finish(&w, out, as->overrides, as->overrides ? as->overrides_len : 0);
}

int cl_tk_assignment_read(const char *prefix, const cl_kv *kv, cl_tk_assignment *out, char *why,
                          size_t whylen)
{
    memset(out, 0, sizeof *out);
    size_t pl = strlen(prefix);
    const char *k = kv->key + pl,
               *slash = strncmp(kv->key, prefix, pl) == 0 ? strchr(k, '/') : NULL;
    if (!slash || (size_t)(slash - k) > CL_INSTANCE_ID_MAX || !cl_tk_id_ok(slash + 1))
        return es_errf(why, whylen, -EINVAL, "not an assignment's key");
    memcpy(out->instance, k, (size_t)(slash - k));
    out->instance[slash - k] = '\0';
    memcpy(out->task_id, slash + 1, CL_TK_ID_HEX + 1);
    if (!cl_instance_id_ok(out->instance))
        return es_errf(why, whylen, -EINVAL, "not an assignment's key");
    es_json *j = NULL;
    const char *rest = NULL;
    size_t rest_len = 0;
    int r = parse_header(kv, &j, &rest, &rest_len, why, whylen);
    if (r < 0)
        return r;
    char inst[CL_INSTANCE_ID_MAX + 1], task[CL_TK_ID_HEX + 1];
    if ((r = get_str(j, "instance", inst, sizeof inst, true, why, whylen)) == 0 &&
        (r = get_str(j, "taskId", task, sizeof task, true, why, whylen)) == 0 &&
        (strcmp(inst, out->instance) != 0 || strcmp(task, out->task_id) != 0))
        r = es_errf(why, whylen, -EINVAL, "instance or taskId: not the key's");
    if (r == 0)
        r = get_str(j, "request", out->request, sizeof out->request, true, why, whylen);
    if (r == 0)
        r = read_common(j, out->family, &out->revision, &out->cpu, &out->memory, out->group,
                        out->started_by, out->launch_type, why, whylen);
    if (r == 0)
        r = get_int(j, "createdAt", 0, INT64_MAX, &out->created_at, why, whylen);
    es_json_free(j);
    if (r == 0)
        r = read_overrides(rest, rest_len, &out->overrides, &out->overrides_len, why, whylen);
    if (r == 0 && !assignment_ok(out))
        r = es_errf(why, whylen, -EINVAL, "request: not a request's ID");
    return r;
}

/* ---- results -------------------------------------------------------- */

static bool reason_ok(const char *s)
{
    if (strcmp(s, CL_TK_REASON_TOO_LARGE) == 0)
        return true;
    for (int r = CL_PL_R_NO_INSTANCE; r <= CL_PL_R_MEMORY; r++)
        if (strcmp(s, cl_pl_reason_name((cl_pl_reason)r)) == 0)
            return true;
    return false;
}

static bool result_ok(const cl_tk_result *rs)
{
    if (!cl_tk_id_ok(rs->request) || !cl_instance_id_ok(rs->from) ||
        rs->n_placed > CL_TK_COUNT_MAX || rs->n_failed > CL_TK_COUNT_MAX ||
        rs->n_placed + rs->n_failed > CL_TK_COUNT_MAX || (rs->n_failed && !reason_ok(rs->reason)))
        return false;
    for (size_t i = 0; i < rs->n_placed; i++)
        if (!cl_tk_id_ok(rs->placed[i].task_id) || !cl_instance_id_ok(rs->placed[i].instance))
            return false;
    return true;
}

int cl_tk_result_write(const cl_tk_result *rs, es_buf *out)
{
    if (!result_ok(rs))
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "request", rs->request);
    es_jw_kstr(&w, "from", rs->from);
    es_jw_key(&w, "tasks");
    es_jw_arr(&w);
    for (size_t i = 0; i < rs->n_placed; i++) {
        es_jw_obj(&w);
        es_jw_kstr(&w, "taskId", rs->placed[i].task_id);
        es_jw_kstr(&w, "instance", rs->placed[i].instance);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    es_jw_kint(&w, "failed", (int64_t)rs->n_failed);
    if (rs->n_failed)
        es_jw_kstr(&w, "reason", rs->reason);
    es_jw_obj_end(&w);
    return finish(&w, out, NULL, 0);
}

int cl_tk_result_read(const char *prefix, const cl_kv *kv, cl_tk_result *out, char *why,
                      size_t whylen)
{
    memset(out, 0, sizeof *out);
    es_json *j = NULL;
    const char *rest = NULL;
    size_t rest_len = 0;
    int r = read_keyed(prefix, kv, "result", "request", out->request, &j, &rest, &rest_len, why,
                       whylen);
    if (r < 0)
        return r;
    const es_json *tl = NULL;
    int64_t failed = 0;
    if (r == 0 && rest)
        r = es_errf(why, whylen, -EINVAL, "more than one line");
    if (r == 0)
        r = get_str(j, "from", out->from, sizeof out->from, true, why, whylen);
    if (r == 0)
        r = read_list(j, "tasks", CL_TK_COUNT_MAX, &tl, why, whylen);
    for (size_t i = 0; r == 0 && tl && i < es_json_len(tl); i++) {
        const es_json *t = es_json_at(tl, i);
        cl_tk_placed *p = &out->placed[i];
        if ((r = get_str(t, "taskId", p->task_id, sizeof p->task_id, true, why, whylen)) == 0)
            r = get_str(t, "instance", p->instance, sizeof p->instance, true, why, whylen);
        out->n_placed = i + 1;
    }
    if (r == 0)
        r = get_int(j, "failed", 0, CL_TK_COUNT_MAX, &failed, why, whylen);
    out->n_failed = (size_t)failed;
    if (r == 0)
        r = get_str(j, "reason", out->reason, sizeof out->reason, failed > 0, why, whylen);
    es_json_free(j);
    if (r == 0 && !result_ok(out))
        r = es_errf(why, whylen, -EINVAL, "tasks or reason: not valid");
    return r;
}

/* ---- task statuses -------------------------------------------------- */

static bool status_record_ok(const cl_tk_status *st)
{
    if (!cl_tk_id_ok(st->task_id) || !cl_instance_id_ok(st->instance) ||
        !common_ok(st->family, st->revision, st->cpu, st->memory, st->group, st->started_by,
                   st->launch_type) ||
        !status_ok(st->last_status) || !status_ok(st->desired_status) ||
        strlen(st->stopped_reason) > CL_TK_REASON_MAX || !text_ok(st->stopped_reason) ||
        !text_ok(st->stop_code) || st->created_at < 0 || st->started_at < 0 || st->stopped_at < 0 ||
        st->n_containers > CL_TK_CONTAINERS_MAX)
        return false;
    for (size_t i = 0; i < st->n_containers; i++)
        if (!st->containers[i].name[0] || !text_ok(st->containers[i].name) ||
            !status_ok(st->containers[i].last_status))
            return false;
    return true;
}

int cl_tk_status_write(const cl_tk_status *st, es_buf *out)
{
    if (!status_record_ok(st))
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "taskId", st->task_id);
    es_jw_kstr(&w, "instance", st->instance);
    write_common(&w, st->family, st->revision, st->cpu, st->memory, st->group, st->started_by,
                 st->launch_type);
    es_jw_kstr(&w, "lastStatus", st->last_status);
    es_jw_kstr(&w, "desiredStatus", st->desired_status);
    if (st->stop_code[0])
        es_jw_kstr(&w, "stopCode", st->stop_code);
    if (st->stopped_reason[0])
        es_jw_kstr(&w, "stoppedReason", st->stopped_reason);
    es_jw_kint(&w, "createdAt", st->created_at);
    es_jw_kint(&w, "startedAt", st->started_at);
    es_jw_kint(&w, "stoppedAt", st->stopped_at);
    es_jw_key(&w, "containers");
    es_jw_arr(&w);
    for (size_t i = 0; i < st->n_containers; i++) {
        es_jw_obj(&w);
        es_jw_kstr(&w, "name", st->containers[i].name);
        es_jw_kstr(&w, "lastStatus", st->containers[i].last_status);
        if (st->containers[i].has_exit_code)
            es_jw_kint(&w, "exitCode", st->containers[i].exit_code);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    es_jw_obj_end(&w);
    return finish(&w, out, NULL, 0);
}

int cl_tk_status_read(const char *prefix, const cl_kv *kv, cl_tk_status *out, char *why,
                      size_t whylen)
{
    memset(out, 0, sizeof *out);
    es_json *j = NULL;
    const char *rest = NULL;
    size_t rest_len = 0;
    int r =
        read_keyed(prefix, kv, "task", "taskId", out->task_id, &j, &rest, &rest_len, why, whylen);
    if (r < 0)
        return r;
    const es_json *cl = NULL;
    if (r == 0 && rest)
        r = es_errf(why, whylen, -EINVAL, "more than one line");
    if (r == 0)
        r = get_str(j, "instance", out->instance, sizeof out->instance, true, why, whylen);
    if (r == 0)
        r = read_common(j, out->family, &out->revision, &out->cpu, &out->memory, out->group,
                        out->started_by, out->launch_type, why, whylen);
    if (r == 0)
        r = get_str(j, "lastStatus", out->last_status, sizeof out->last_status, true, why, whylen);
    if (r == 0)
        r = get_str(j, "desiredStatus", out->desired_status, sizeof out->desired_status, true, why,
                    whylen);
    if (r == 0)
        r = get_str(j, "stopCode", out->stop_code, sizeof out->stop_code, false, why, whylen);
    if (r == 0)
        r = get_str(j, "stoppedReason", out->stopped_reason, sizeof out->stopped_reason, false, why,
                    whylen);
    if (r == 0)
        r = get_int(j, "createdAt", 0, INT64_MAX, &out->created_at, why, whylen);
    if (r == 0)
        r = get_int(j, "startedAt", 0, INT64_MAX, &out->started_at, why, whylen);
    if (r == 0)
        r = get_int(j, "stoppedAt", 0, INT64_MAX, &out->stopped_at, why, whylen);
    if (r == 0)
        r = read_list(j, "containers", CL_TK_CONTAINERS_MAX, &cl, why, whylen);
    for (size_t i = 0; r == 0 && cl && i < es_json_len(cl); i++) {
        const es_json *c = es_json_at(cl, i);
        cl_tk_container *k = &out->containers[i];
        if ((r = get_str(c, "name", k->name, sizeof k->name, true, why, whylen)) == 0)
            r = get_str(c, "lastStatus", k->last_status, sizeof k->last_status, true, why, whylen);
        if (r == 0 && es_json_get(c, "exitCode")) {
            k->has_exit_code = true;
            r = get_int(c, "exitCode", INT32_MIN, INT32_MAX, &k->exit_code, why, whylen);
        }
        out->n_containers = i + 1;
    }
    es_json_free(j);
    if (r == 0 && !status_record_ok(out))
        r = es_errf(why, whylen, -EINVAL, "a status or a container: not valid");
    return r;
}

/* ---- stops ---------------------------------------------------------- */

bool cl_tk_stop_code_ok(const char *s)
{
    /* ECS's TaskStopCode values */
    static const char *const codes[] = {"TaskFailedToStart", "EssentialContainerExited",
                                        "UserInitiated",     "ServiceSchedulerInitiated",
                                        "SpotInterruption",  "TerminationNotice"};
    for (size_t i = 0; s && i < sizeof codes / sizeof *codes; i++)
        if (strcmp(s, codes[i]) == 0)
            return true;
    return false;
}

int cl_tk_stop_write(const cl_tk_stop *sp, es_buf *out)
{
    if (!cl_tk_id_ok(sp->task_id) || strlen(sp->reason) > CL_TK_REASON_MAX ||
        !text_ok(sp->reason) || (sp->code[0] && !cl_tk_stop_code_ok(sp->code)))
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_obj(&w);
    es_jw_kstr(&w, "taskId", sp->task_id);
    if (sp->code[0])
        es_jw_kstr(&w, "stopCode", sp->code);
    es_jw_kstr(&w, "reason", sp->reason);
    es_jw_obj_end(&w);
    return finish(&w, out, NULL, 0);
}

int cl_tk_stop_read(const char *prefix, const cl_kv *kv, cl_tk_stop *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    es_json *j = NULL;
    const char *rest = NULL;
    size_t rest_len = 0;
    int r =
        read_keyed(prefix, kv, "stop", "taskId", out->task_id, &j, &rest, &rest_len, why, whylen);
    if (r < 0)
        return r;
    if (rest)
        r = es_errf(why, whylen, -EINVAL, "more than one line");
    if (r == 0)
        r = get_str(j, "reason", out->reason, sizeof out->reason, false, why, whylen);
    if (r == 0)
        r = get_str(j, "stopCode", out->code, sizeof out->code, false, why, whylen);
    if (r == 0 && out->code[0] && !cl_tk_stop_code_ok(out->code))
        r = es_errf(why, whylen, -EINVAL, "stopCode: not one of ECS's stop codes");
    es_json_free(j);
    return r;
}

/* ---- STOPPED records' expiry ------------------------------------------- */

bool cl_tk_status_expired(const cl_tk_status *st, int64_t now, int64_t keep_s)
{
    if (keep_s <= 0 || strcmp(st->last_status, "STOPPED") != 0)
        return false;
    int64_t since = st->stopped_at > 0 ? st->stopped_at : st->created_at;
    /* a clock behind the record's (another host's) waits; no overflow */
    return since >= 0 && now >= since && now - since >= keep_s;
}

/* ---- a lost host's tasks ---------------------------------------------- */

bool cl_tk_task_lost(bool view_ready, bool instance_in_view, uint64_t missing_ms, uint64_t grace_ms,
                     const char *last_status)
{
    /* an unread view holds no instance: everything would look lost */
    if (!view_ready || instance_in_view || missing_ms < grace_ms)
        return false;
    return !last_status || strcmp(last_status, "STOPPED") != 0;
}

int cl_tk_status_lost(const cl_tk_status *prev, const cl_tk_assignment *as, const char *host,
                      int64_t now, cl_tk_status *out)
{
    memset(out, 0, sizeof *out);
    if (prev) {
        *out = *prev;
    } else if (as) {
        memcpy(out->task_id, as->task_id, sizeof out->task_id);
        memcpy(out->instance, as->instance, sizeof out->instance);
        memcpy(out->family, as->family, sizeof out->family);
        out->revision = as->revision;
        out->cpu = as->cpu;
        out->memory = as->memory;
        memcpy(out->group, as->group, sizeof out->group);
        memcpy(out->started_by, as->started_by, sizeof out->started_by);
        memcpy(out->launch_type, as->launch_type, sizeof out->launch_type);
        out->created_at = as->created_at;
    } else {
        return -EINVAL;
    }
    snprintf(out->last_status, sizeof out->last_status, "STOPPED");
    snprintf(out->desired_status, sizeof out->desired_status, "STOPPED");
    snprintf(out->stop_code, sizeof out->stop_code, "%s", CL_TK_LOST_STOP_CODE);
    int n = snprintf(out->stopped_reason, sizeof out->stopped_reason,
                     "Host EC2 (instance %s) terminated.", host && *host ? host : out->instance);
    if (n < 0 || (size_t)n >= sizeof out->stopped_reason)
        return -EINVAL;
    out->stopped_at = now > out->created_at ? now : out->created_at;
    for (size_t i = 0; i < out->n_containers; i++)
        snprintf(out->containers[i].last_status, sizeof out->containers[i].last_status, "STOPPED");
    return status_record_ok(out) ? 0 : -EINVAL;
}
