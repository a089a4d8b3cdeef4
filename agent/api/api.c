/* api.c - the ECS-compatible API: dispatch, request helpers, task
 * definitions, clusters, /metrics. See api.h. */
#include "agent/api/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/api/tags.h"
#include "agent/tasks/engine.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/name.h"

#define CLIENT "ClientException"
#define INVALID "InvalidParameterException"
#define SERVER "ServerException"
#define NOT_FOUND_CLUSTER "ClusterNotFoundException"
#define DENIED "AccessDeniedException"
#define WHY_MAX 1024       /* AWS's refusal message: two ARNs and the reason */
#define AG_API_CONDS_MAX 4 /* condition keys one ECS action is asked with (ECS uses 2) */

#define METRIC_PREFIX "ecs_agent_"
#define ERROR_CODES_MAX 8 /* distinct error codes counted in /metrics */

typedef struct api_op {
    const char *name;
    ag_api_op_fn fn;
    void *arg;
    bool raw; /* the op parses the body itself (RegisterTaskDefinition) */
    ag_series *requests;
} api_op;

struct ag_api {
    ag_store *store;
    ag_metrics *metrics;
    ag_resolver *resolver;
    aw_listener *server;
    char *region, *account, *cluster;
    char cluster_arn[AG_API_CLUSTER_ARN_MAX];
    char root_arn[64]; /* arn:aws:iam::ACCOUNT:root, the administrator key */
    al_ctx *iam;
    bool reject_env_secret_clash;
    int64_t (*now)(void);
    api_op ops[AG_API_OPS_MAX];
    size_t n_ops;
    ag_api_counts_fn counts;
    void *counts_arg;
    ag_api_instances_fn instances; /* NULL: this host alone */
    void *instances_arg;
    ag_api_td_share td_share; /* register_td NULL: this host's store alone */
    struct {
        ag_api_metrics_fn fn;
        void *arg;
    } hooks[AG_API_METRICS_HOOKS_MAX];
    size_t n_hooks;
    struct {
        const char *code;
        ag_series *s;
    } errors[ERROR_CODES_MAX];
    size_t n_errors;
    ag_series *tasks[AG_TASK_STATUS_COUNT];
    ag_series *build_info, *start_time, *uptime;
    struct timespec started; /* CLOCK_MONOTONIC at creation: the uptime's origin */
};

static const es_json_limits api_json_limits = {
    .max_bytes = AG_API_BODY_MAX,
    .max_depth = 16,
    .max_string = AG_API_BODY_MAX,
    .max_values = 20000,
};

/* ---------------------------------------------------------------- helpers */

int ag_api_fail(ag_api_req *rq, const char *code, const char *fmt, ...)
{
    al_error *e = rq->err;
    e->status = strcmp(code, SERVER) == 0 ? 500 : 400;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int ag_api_authorize(ag_api_req *rq, const char *action, const char *resource,
                     const ag_api_cond *conds, size_t nconds)
{
    ag_api *api = rq->api;
    const char *who = rq->principal ? rq->principal : "anonymous";
    char why[WHY_MAX];
    int r;
    if (api->iam) {
        aw_ctx_entry ctx[AG_API_CONDS_MAX];
        const char *vals[AG_API_CONDS_MAX][1];
        if (nconds > sizeof ctx / sizeof *ctx)
            return ag_api_fail(rq, SERVER, "too many condition keys");
        for (size_t i = 0; i < nconds; i++) {
            vals[i][0] = conds[i].value;
            ctx[i] = (aw_ctx_entry){conds[i].key, vals[i], 1, false};
        }
        why[0] = '\0';
        r = al_principal_may(api->iam, rq->principal, action, resource, ctx, nconds, why,
                             sizeof why);
    } else {
        /* aws mode: nobody's policies are readable here; the key is the
         * account's own or nothing */
        r = rq->principal && strcmp(rq->principal, api->root_arn) == 0 ? 0 : -EACCES;
        if (r)
            snprintf(why, sizeof why,
                     "User: %s is not authorized to perform: %s on resource: %s because this "
                     "agent's ECS API accepts only the administrator key when its AWS services "
                     "are the real ones (it cannot read the caller's IAM policies)",
                     who, action, resource);
    }
    if (r == -EACCES) {
        es_notice("ECS %s by %s refused: %s", rq->operation, who, why);
        return ag_api_fail(rq, DENIED, "%s", why);
    }
    if (r < 0) {
        es_err("ECS %s by %s: %s on %s could not be decided (%s)", rq->operation, who, action,
               resource, strerror(-r));
        return ag_api_fail(rq, SERVER, "the authorisation of %s could not be decided", action);
    }
    rq->authorized = true;
    return 0;
}

int ag_api_authorize_in_cluster(ag_api_req *rq, const char *action, const char *resource)
{
    ag_api_cond c = {"ecs:cluster", rq->api->cluster_arn};
    return ag_api_authorize(rq, action, resource, &c, 1);
}

int ag_api_authorize_pass_role(ag_api_req *rq, const char *role_arn)
{
    if (!role_arn || !*role_arn)
        return 0;
    ag_api_cond c = {"iam:PassedToService", AG_API_PASSED_TO_SERVICE};
    return ag_api_authorize(rq, "iam:PassRole", role_arn, &c, 1);
}

void ag_api_td_arn(const ag_api *api, const char *family, int64_t revision, char *out,
                   size_t outlen)
{
    snprintf(out, outlen, "arn:aws:ecs:%s:%s:task-definition/%s:%" PRId64, api->region,
             api->account, family, revision);
}

static const char *type_name(es_json_type t)
{
    switch (t) {
    case ES_JSON_NULL:
        return "null";
    case ES_JSON_BOOL:
        return "a boolean";
    case ES_JSON_NUMBER:
        return "a number";
    case ES_JSON_STRING:
        return "a string";
    case ES_JSON_ARRAY:
        return "an array";
    case ES_JSON_OBJECT:
        return "an object";
    }
    return "?";
}

/* A member; JSON null counts as absent (botocore never sends one). */
static const es_json *member(const es_json *obj, const char *key)
{
    const es_json *v = es_json_get(obj, key);
    return v && v->type != ES_JSON_NULL ? v : NULL;
}

int ag_api_str(ag_api_req *rq, const char *key, bool required, size_t min, size_t max,
               const char **out)
{
    const es_json *v = member(rq->body, key);
    if (!v) {
        if (required)
            return ag_api_fail(rq, INVALID, "%s: a value is required", key);
        return 0;
    }
    if (v->type != ES_JSON_STRING)
        return ag_api_fail(rq, INVALID, "%s: must be a string, not %s", key, type_name(v->type));
    if (strlen(v->u.string.s) != v->u.string.len)
        return ag_api_fail(rq, INVALID, "%s: must not contain NUL characters", key);
    if (v->u.string.len < min || v->u.string.len > max)
        return ag_api_fail(rq, INVALID, "%s: must be %zu to %zu characters long (it is %zu)", key,
                           min, max, v->u.string.len);
    *out = v->u.string.s;
    return 0;
}

int ag_api_int(ag_api_req *rq, const char *key, int64_t min, int64_t max, int64_t *out)
{
    const es_json *v = member(rq->body, key);
    if (!v)
        return 0;
    int64_t x;
    if (v->type != ES_JSON_NUMBER || !es_json_as_int64(v, &x))
        return ag_api_fail(rq, INVALID, "%s: must be an integer, not %s", key, type_name(v->type));
    if (x < min || x > max)
        return ag_api_fail(rq, INVALID, "%s: must be between %" PRId64 " and %" PRId64, key, min,
                           max);
    *out = x;
    return 0;
}

int ag_api_str_list(ag_api_req *rq, const char *key, bool required, size_t min, size_t max,
                    size_t item_max, const es_json **out)
{
    const es_json *v = member(rq->body, key);
    if (!v) {
        if (required)
            return ag_api_fail(rq, INVALID, "%s: a value is required", key);
        return 0;
    }
    if (v->type != ES_JSON_ARRAY)
        return ag_api_fail(rq, INVALID, "%s: must be a list of strings, not %s", key,
                           type_name(v->type));
    size_t n = v->u.array.n;
    if (n < min || n > max)
        return ag_api_fail(rq, INVALID, "%s: must hold %zu to %zu items (it holds %zu)", key, min,
                           max, n);
    for (size_t i = 0; i < n; i++) {
        const es_json *it = v->u.array.items[i];
        if (it->type != ES_JSON_STRING)
            return ag_api_fail(rq, INVALID, "%s[%zu]: must be a string, not %s", key, i,
                               type_name(it->type));
        if (it->u.string.len == 0 || it->u.string.len > item_max ||
            strlen(it->u.string.s) != it->u.string.len)
            return ag_api_fail(rq, INVALID, "%s[%zu]: must be 1 to %zu characters long", key, i,
                               item_max);
    }
    *out = v;
    return 0;
}

static int one_of(ag_api_req *rq, const char *key, const char *val, const char *const *allowed)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(val, allowed[i]) == 0)
            return 0;
    char list[128] = "";
    size_t o = 0;
    for (size_t i = 0; allowed[i] && o < sizeof list; i++) {
        int n = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", allowed[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return ag_api_fail(rq, INVALID, "%s: must be one of %s", key, list);
}

const char *ag_api_cluster_arn(const ag_api *api)
{
    return api->cluster_arn;
}
const char *ag_api_cluster(const ag_api *api)
{
    return api->cluster;
}

const char *ag_api_region(const ag_api *api)
{
    return api->region;
}
const char *ag_api_account(const ag_api *api)
{
    return api->account;
}
const char *ag_api_store_errmsg(const ag_api *api)
{
    return ag_store_errmsg(api->store);
}

int64_t ag_api_now(const ag_api *api)
{
    return api->now ? api->now() : (int64_t)time(NULL);
}

ag_store *ag_api_store(const ag_api *api)
{
    return api->store;
}

/* Is s (a name or an ARN) the configured cluster? */
static bool is_our_cluster(const ag_api *api, const char *s)
{
    return strcmp(s, api->cluster) == 0 || strcmp(s, api->cluster_arn) == 0;
}

int ag_api_check_cluster(ag_api_req *rq)
{
    const char *c = NULL;
    int r = ag_api_str(rq, "cluster", false, 1, AG_API_CLUSTER_ARN_MAX - 1, &c);
    if (r)
        return r;
    if (c && !is_our_cluster(rq->api, c))
        return ag_api_fail(rq, NOT_FOUND_CLUSTER,
                           "cluster: Cluster not found: this agent runs cluster %s only",
                           rq->api->cluster);
    return 0;
}

static bool family_ok(const char *s, size_t n)
{
    return es_name_ok(s, n, AG_TD_NAME_MAX);
}

/* A positive revision of at most 10 digits. */
static bool revision_parse(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10 || s[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int ag_api_parse_td_ref(const char *ref, const char *region, const char *account, char *family,
                        int64_t *revision, char *why, size_t whylen)
{
    const char *name = ref;
    if (strncmp(ref, "arn:", 4) == 0) {
        /* arn:PARTITION:ecs:REGION:ACCOUNT:task-definition/FAMILY[:REV] */
        const char *p[6];
        size_t np = 0;
        const char *s = ref;
        p[np++] = s;
        while (np < 6 && (s = strchr(s, ':'))) {
            s++;
            p[np++] = s;
        }
        if (np < 6 || strncmp(p[1], "aws", 3) != 0 || strncmp(p[2], "ecs:", 4) != 0 ||
            strncmp(p[5], "task-definition/", 16) != 0) {
            snprintf(why, whylen,
                     "not a task definition ARN "
                     "(arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION)");
            return -EINVAL;
        }
        size_t rl = (size_t)(p[4] - p[3]) - 1, al = (size_t)(p[5] - p[4]) - 1;
        if (rl != strlen(region) || strncmp(p[3], region, rl) != 0 || al != strlen(account) ||
            strncmp(p[4], account, al) != 0) {
            snprintf(why, whylen, "the ARN is not in this agent's region (%s) and account (%s)",
                     region, account);
            return -EINVAL;
        }
        name = p[5] + 16;
    }
    const char *colon = strchr(name, ':');
    size_t fl = colon ? (size_t)(colon - name) : strlen(name);
    if (!family_ok(name, fl)) {
        snprintf(why, whylen,
                 "the family must be 1 to %d letters, digits, hyphens or underscores, optionally "
                 "followed by :REVISION",
                 AG_TD_NAME_MAX);
        return -EINVAL;
    }
    int64_t rev = 0;
    if (colon && !revision_parse(colon + 1, &rev)) {
        snprintf(why, whylen, "the revision must be a positive integer");
        return -EINVAL;
    }
    memcpy(family, name, fl);
    family[fl] = '\0';
    *revision = rev;
    return 0;
}

int ag_api_load_taskdef(ag_api_req *rq, const char *field, const char *ref, ag_taskdef **out)
{
    char family[AG_TD_NAME_MAX + 1], why[200];
    int64_t rev;
    if (ag_api_parse_td_ref(ref, rq->api->region, rq->api->account, family, &rev, why, sizeof why) <
        0)
        return ag_api_fail(rq, CLIENT, "%s: %s", field, why);
    int r = ag_store_taskdef_get(rq->api->store, family, rev, out);
    if (r == -ENOENT) {
        if (rev)
            return ag_api_fail(rq, CLIENT, "%s: Unable to find task definition %s:%" PRId64, field,
                               family, rev);
        return ag_api_fail(rq, CLIENT,
                           "%s: Unable to find task definition: family %s has no ACTIVE revision",
                           field, family);
    }
    if (r < 0) {
        es_err("task definition store: %s", ag_store_errmsg(rq->api->store));
        return ag_api_fail(rq, SERVER, "%s: the task definition store failed: %s", field,
                           ag_store_errmsg(rq->api->store));
    }
    return 0;
}

int ag_api_token_make(const char *key, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(key);
    if (outlen < 3 + 2 * n + 1)
        return -EMSGSIZE;
    memcpy(out, "t1.", 3);
    for (size_t i = 0; i < n; i++) {
        out[3 + 2 * i] = hex[(unsigned char)key[i] >> 4];
        out[3 + 2 * i + 1] = hex[(unsigned char)key[i] & 15];
    }
    out[3 + 2 * n] = '\0';
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int ag_api_token_parse(const char *token, char *key, size_t keylen)
{
    size_t n = strlen(token);
    if (n < 5 || strncmp(token, "t1.", 3) != 0 || (n - 3) % 2 || (n - 3) / 2 >= keylen)
        return -EINVAL;
    size_t k = 0;
    for (size_t i = 3; i < n; i += 2) {
        int hi = hexval(token[i]), lo = hexval(token[i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        char c = (char)(hi << 4 | lo);
        if (c == '\0')
            return -EINVAL;
        key[k++] = c;
    }
    key[k] = '\0';
    return 0;
}

static int page_args(ag_api_req *rq, int64_t *max, char *after, size_t afterlen)
{
    int r = ag_api_int(rq, "maxResults", 1, AG_API_PAGE_MAX, max);
    if (r)
        return r;
    const char *tok = NULL;
    if ((r = ag_api_str(rq, "nextToken", false, 1, AG_API_TOKEN_MAX, &tok)))
        return r;
    after[0] = '\0';
    if (tok && ag_api_token_parse(tok, after, afterlen) < 0)
        return ag_api_fail(rq, INVALID, "nextToken: not a token this API handed out");
    return 0;
}

static void write_next_token(ag_api_req *rq, const char *key)
{
    char tok[AG_API_TOKEN_MAX + 1];
    if (ag_api_token_make(key, tok, sizeof tok) == 0)
        es_jw_kstr(rq->w, "nextToken", tok);
}

/* ---------------------------------------------------- task definitions */

static const char *const td_statuses[] = {"ACTIVE", "INACTIVE", NULL};

/* The answer's tags: the store's (TagResource may have changed them since
 * the registration); 0 or < 0 after ag_api_fail. */
int ag_api_write_taskdef(ag_api *api, es_jw *w, const ag_taskdef *td, bool with_tags)
{
    es_jw_key(w, "taskDefinition");
    ag_taskdef_write_describe(td, api->region, api->account, w);
    if (!with_tags)
        return 0;
    char arn[AG_API_TD_ARN_MAX];
    ag_api_td_arn(api, td->family, td->revision, arn, sizeof arn);
    ag_tags tags = {.n = 0};
    if (ag_store_tags_get(api->store, arn, &tags) < 0) {
        es_err("task definition %s: tags: %s", arn, ag_store_errmsg(api->store));
        return -EIO;
    }
    ag_tags_write(&tags, w);
    ag_tags_clear(&tags);
    return 0;
}

static int write_td_answer(ag_api_req *rq, const ag_taskdef *td, bool with_tags)
{
    if (ag_api_write_taskdef(rq->api, rq->w, td, with_tags) < 0)
        return ag_api_fail(rq, SERVER, "taskDefinition: the tags cannot be read");
    return 0;
}

/* The registration's tags (kept as registered in td->kept), by ECS's rules. */
static int td_tags(ag_api_req *rq, const ag_taskdef *td, ag_tags *out)
{
    for (size_t i = 0; i < td->n_kept; i++)
        if (strcmp(td->kept[i].name, "tags") == 0)
            return ag_api_read_tags_text(rq, td->kept[i].value, out);
    return 0;
}

static int op_register(void *arg, ag_api_req *rq)
{
    (void)arg;
    ag_api *api = rq->api;
    ag_td_ctx ctx = {.region = api->region,
                     .account = api->account,
                     .reject_env_secret_clash = api->reject_env_secret_clash};
    ag_taskdef *td = NULL;
    ag_td_error e;
    int r = ag_taskdef_parse(rq->raw, rq->raw_len, &ctx, &td, &e);
    if (r == -ENOMEM)
        return ag_api_fail(rq, SERVER, "out of memory");
    if (r < 0)
        return ag_api_fail(rq, e.code, "%s", e.message);
    if (strcmp(td->family, AG_ENGINE_DOCKER_FAMILY) == 0) {
        ag_taskdef_free(td);
        return ag_api_fail(rq, CLIENT,
                           "family: %s is reserved for the containers created through the "
                           "agent's Docker socket",
                           AG_ENGINE_DOCKER_FAMILY);
    }
    ag_tags tags = {.n = 0};
    if ((r = td_tags(rq, td, &tags)) ||
        (r = ag_api_authorize(rq, "ecs:RegisterTaskDefinition", "*", NULL, 0)) ||
        (r = ag_api_authorize_pass_role(rq, td->execution_role_arn)) ||
        (r = ag_api_authorize_pass_role(rq, td->task_role_arn))) {
        ag_tags_clear(&tags);
        ag_taskdef_free(td);
        return r;
    }
    if (api->td_share.register_td) {
        ag_tags_clear(&tags); /* checked; the store takes a shared one's from its body */
        return ag_api_td_register_shared(rq, td);
    }
    char arn[AG_API_TD_ARN_MAX];
    if (ag_store_taskdef_register(api->store, td, ag_api_now(api)) < 0 ||
        (ag_api_td_arn(api, td->family, td->revision, arn, sizeof arn),
         ag_store_tags_set(api->store, arn, &tags) < 0)) {
        es_err("RegisterTaskDefinition %s: store: %s", td->family, ag_store_errmsg(api->store));
        ag_tags_clear(&tags);
        ag_taskdef_free(td);
        return ag_api_fail(rq, SERVER, "family: the task definition store failed: %s",
                           ag_store_errmsg(api->store));
    }
    ag_tags_clear(&tags);
    es_info("task definition %s:%" PRId64 " registered by %s", td->family, td->revision,
            rq->principal);
    for (size_t i = 0; i < td->n_warnings; i++)
        es_notice("task definition %s:%" PRId64 ": %s", td->family, td->revision, td->warnings[i]);
    if ((r = write_td_answer(rq, td, true))) {
        ag_taskdef_free(td);
        return r;
    }
    /* our own field (botocore drops it, boto3's raw answer and curl see it) */
    es_jw_key(rq->w, "warnings");
    es_jw_arr(rq->w);
    for (size_t i = 0; i < td->n_warnings; i++)
        es_jw_str(rq->w, td->warnings[i]);
    es_jw_arr_end(rq->w);
    ag_taskdef_free(td);
    return 0;
}

static int op_describe_td(void *arg, ag_api_req *rq)
{
    (void)arg;
    const char *ref = NULL;
    const es_json *include = NULL;
    int r;
    if ((r = ag_api_str(rq, "taskDefinition", true, 1, AG_TD_NAME_MAX + 128, &ref)) ||
        (r = ag_api_str_list(rq, "include", false, 0, 1, 16, &include)))
        return r;
    bool tags = false;
    for (size_t i = 0; include && i < include->u.array.n; i++) {
        if (strcmp(include->u.array.items[i]->u.string.s, "TAGS") != 0)
            return ag_api_fail(rq, INVALID, "include[%zu]: must be TAGS", i);
        tags = true;
    }
    if ((r = ag_api_authorize(rq, "ecs:DescribeTaskDefinition", "*", NULL, 0)))
        return r;
    ag_taskdef *td = NULL;
    if ((r = ag_api_load_taskdef(rq, "taskDefinition", ref, &td)))
        return r;
    r = write_td_answer(rq, td, tags);
    ag_taskdef_free(td);
    return r;
}

static int op_deregister_td(void *arg, ag_api_req *rq)
{
    (void)arg;
    ag_api *api = rq->api;
    const char *ref = NULL;
    int r;
    if ((r = ag_api_str(rq, "taskDefinition", true, 1, AG_TD_NAME_MAX + 128, &ref)))
        return r;
    char family[AG_TD_NAME_MAX + 1], why[200];
    int64_t rev;
    if (ag_api_parse_td_ref(ref, api->region, api->account, family, &rev, why, sizeof why) < 0)
        return ag_api_fail(rq, CLIENT, "taskDefinition: %s", why);
    if (rev == 0)
        return ag_api_fail(rq, CLIENT,
                           "taskDefinition: a revision is required (family:revision or the "
                           "task definition's ARN)");
    if ((r = ag_api_authorize(rq, "ecs:DeregisterTaskDefinition", "*", NULL, 0)))
        return r;
    ag_taskdef *td = NULL;
    if ((r = ag_api_load_taskdef(rq, "taskDefinition", ref, &td)))
        return r;
    if (td->status == AG_TD_ACTIVE && api->td_share.deregister_td)
        return ag_api_td_deregister_shared(rq, td);
    if (td->status == AG_TD_ACTIVE) {
        int64_t now = ag_api_now(api);
        if (ag_store_taskdef_deregister(api->store, family, rev, now) < 0) {
            es_err("DeregisterTaskDefinition %s:%" PRId64 ": store: %s", family, rev,
                   ag_store_errmsg(api->store));
            ag_taskdef_free(td);
            return ag_api_fail(rq, SERVER, "taskDefinition: the task definition store failed: %s",
                               ag_store_errmsg(api->store));
        }
        ag_taskdef_deregister(td, now);
        es_info("task definition %s:%" PRId64 " deregistered by %s", family, rev, rq->principal);
    }
    write_td_answer(rq, td, false);
    ag_taskdef_free(td);
    return 0;
}

/* One listed revision. */
typedef struct td_key {
    char family[AG_TD_NAME_MAX + 1];
    int64_t revision;
} td_key;

static int td_key_cmp(const char *family, int64_t rev, const td_key *k)
{
    int c = strcmp(family, k->family);
    if (c)
        return c;
    return rev < k->revision ? -1 : rev > k->revision;
}

typedef struct td_walk {
    bool desc;
    bool has_after;
    td_key after;
    size_t want;  /* page size + 1 (to know whether more follow) */
    td_key *ring; /* want slots */
    size_t n;     /* items seen into the ring (ASC: items kept) */
} td_walk;

static int td_walk_fn(const char *family, int64_t revision, ag_td_status status, void *arg)
{
    (void)status;
    td_walk *tw = arg;
    if (tw->has_after) {
        int c = td_key_cmp(family, revision, &tw->after);
        if (!tw->desc && c <= 0)
            return 0; /* before the page */
        if (tw->desc && c >= 0)
            return 1; /* at or past the token: done */
    }
    td_key *k = &tw->ring[tw->n % tw->want];
    snprintf(k->family, sizeof k->family, "%s", family);
    k->revision = revision;
    tw->n++;
    if (!tw->desc && tw->n == tw->want)
        return 1;
    return 0;
}

static int op_list_td(void *arg, ag_api_req *rq)
{
    (void)arg;
    ag_api *api = rq->api;
    const char *family = NULL, *status = "ACTIVE", *sort = "ASC";
    int64_t max = AG_API_PAGE_MAX;
    char after[AG_TD_NAME_MAX + 32];
    int r;
    if ((r = ag_api_str(rq, "familyPrefix", false, 1, AG_TD_NAME_MAX, &family)) ||
        (r = ag_api_str(rq, "status", false, 1, 16, &status)) ||
        (r = one_of(rq, "status", status, td_statuses)) ||
        (r = ag_api_str(rq, "sort", false, 1, 8, &sort)) ||
        (r = one_of(rq, "sort", sort, (const char *const[]){"ASC", "DESC", NULL})) ||
        (r = page_args(rq, &max, after, sizeof after)))
        return r;
    if (family && !family_ok(family, strlen(family)))
        return ag_api_fail(rq, INVALID,
                           "familyPrefix: must be a family name (letters, digits, hyphens, "
                           "underscores)");
    if ((r = ag_api_authorize(rq, "ecs:ListTaskDefinitions", "*", NULL, 0)))
        return r;
    td_walk tw = {.desc = strcmp(sort, "DESC") == 0, .want = (size_t)max + 1};
    if (after[0]) {
        char *colon = strrchr(after, ':');
        if (!colon || !family_ok(after, (size_t)(colon - after)) ||
            !revision_parse(colon + 1, &tw.after.revision))
            return ag_api_fail(rq, INVALID, "nextToken: not a token this API handed out");
        size_t fl = (size_t)(colon - after); /* <= AG_TD_NAME_MAX: family_ok */
        memcpy(tw.after.family, after, fl);
        tw.after.family[fl] = '\0';
        tw.has_after = true;
    }
    tw.ring = es_calloc(tw.want, sizeof *tw.ring);
    if (!tw.ring)
        return ag_api_fail(rq, SERVER, "out of memory");
    ag_td_status st = strcmp(status, "ACTIVE") == 0 ? AG_TD_ACTIVE : AG_TD_INACTIVE;
    r = ag_store_taskdef_list(api->store, family, &st, td_walk_fn, &tw);
    if (r < 0) {
        es_free(tw.ring);
        es_err("ListTaskDefinitions: store: %s", ag_store_errmsg(api->store));
        return ag_api_fail(rq, SERVER, "the task definition store failed");
    }
    /* the page: ASC the first min(n, max) kept; DESC the last min(n, max)
     * seen, newest first */
    size_t pmax = (size_t)max;
    bool more = tw.n > pmax;
    size_t count = more ? pmax : tw.n;
    es_jw_key(rq->w, "taskDefinitionArns");
    es_jw_arr(rq->w);
    const td_key *last = NULL;
    for (size_t i = 0; i < count; i++) {
        const td_key *k = tw.desc ? &tw.ring[(tw.n - 1 - i) % tw.want] : &tw.ring[i];
        char arn[AG_TD_NAME_MAX + 128];
        snprintf(arn, sizeof arn, "arn:aws:ecs:%s:%s:task-definition/%s:%" PRId64, api->region,
                 api->account, k->family, k->revision);
        es_jw_str(rq->w, arn);
        last = k;
    }
    es_jw_arr_end(rq->w);
    if (more && last) {
        char key[AG_TD_NAME_MAX + 32];
        snprintf(key, sizeof key, "%s:%" PRId64, last->family, last->revision);
        write_next_token(rq, key);
    }
    es_free(tw.ring);
    return 0;
}

typedef struct fam_walk {
    const char *prefix;
    int want_status; /* 0 ACTIVE, 1 INACTIVE, 2 ALL */
    const char *after;
    size_t want;
    char (*out)[AG_TD_NAME_MAX + 1];
    size_t n;
    char cur[AG_TD_NAME_MAX + 1];
    bool has_cur, cur_active;
} fam_walk;

/* The family just finished: keep it when it passes the filters. 1 when
 * the page is full. */
static int fam_emit(fam_walk *fw)
{
    if (!fw->has_cur)
        return 0;
    if (fw->prefix && strncmp(fw->cur, fw->prefix, strlen(fw->prefix)) != 0)
        return 0;
    if ((fw->want_status == 0 && !fw->cur_active) || (fw->want_status == 1 && fw->cur_active))
        return 0;
    if (fw->after && strcmp(fw->cur, fw->after) <= 0)
        return 0;
    snprintf(fw->out[fw->n], sizeof fw->out[fw->n], "%s", fw->cur);
    fw->n++;
    return fw->n == fw->want;
}

static int fam_walk_fn(const char *family, int64_t revision, ag_td_status status, void *arg)
{
    (void)revision;
    fam_walk *fw = arg;
    if (!fw->has_cur || strcmp(family, fw->cur) != 0) {
        if (fam_emit(fw))
            return 1;
        snprintf(fw->cur, sizeof fw->cur, "%s", family);
        fw->has_cur = true;
        fw->cur_active = false;
    }
    if (status == AG_TD_ACTIVE)
        fw->cur_active = true;
    return 0;
}

static int op_list_families(void *arg, ag_api_req *rq)
{
    (void)arg;
    ag_api *api = rq->api;
    const char *prefix = NULL, *status = "ACTIVE";
    int64_t max = AG_API_PAGE_MAX;
    char after[AG_TD_NAME_MAX + 32];
    int r;
    if ((r = ag_api_str(rq, "familyPrefix", false, 1, AG_TD_NAME_MAX, &prefix)) ||
        (r = ag_api_str(rq, "status", false, 1, 16, &status)) ||
        (r = one_of(rq, "status", status,
                    (const char *const[]){"ACTIVE", "INACTIVE", "ALL", NULL})) ||
        (r = page_args(rq, &max, after, sizeof after)))
        return r;
    if (after[0] && !family_ok(after, strlen(after)))
        return ag_api_fail(rq, INVALID, "nextToken: not a token this API handed out");
    if ((r = ag_api_authorize(rq, "ecs:ListTaskDefinitionFamilies", "*", NULL, 0)))
        return r;
    fam_walk fw = {.prefix = prefix,
                   .want_status = strcmp(status, "ACTIVE") == 0     ? 0
                                  : strcmp(status, "INACTIVE") == 0 ? 1
                                                                    : 2,
                   .after = after[0] ? after : NULL,
                   .want = (size_t)max + 1};
    fw.out = es_calloc(fw.want, sizeof *fw.out);
    if (!fw.out)
        return ag_api_fail(rq, SERVER, "out of memory");
    r = ag_store_taskdef_list(api->store, NULL, NULL, fam_walk_fn, &fw);
    if (r == 0)
        (void)fam_emit(&fw);
    if (r < 0) {
        es_free(fw.out);
        es_err("ListTaskDefinitionFamilies: store: %s", ag_store_errmsg(api->store));
        return ag_api_fail(rq, SERVER, "the task definition store failed");
    }
    size_t pmax = (size_t)max;
    bool more = fw.n > pmax;
    size_t count = more ? pmax : fw.n;
    es_jw_key(rq->w, "families");
    es_jw_arr(rq->w);
    for (size_t i = 0; i < count; i++)
        es_jw_str(rq->w, fw.out[i]);
    es_jw_arr_end(rq->w);
    if (more && count)
        write_next_token(rq, fw.out[count - 1]);
    es_free(fw.out);
    return 0;
}

/* ------------------------------------------------------------- clusters */

static void task_counts(const ag_api *api, size_t by[AG_TASK_STATUS_COUNT])
{
    memset(by, 0, sizeof(size_t) * AG_TASK_STATUS_COUNT);
    if (api->counts)
        api->counts(api->counts_arg, by);
}

void ag_api_task_counts(const ag_api *api, size_t by[AG_TASK_STATUS_COUNT])
{
    task_counts(api, by);
}

void ag_api_set_td_share(ag_api *api, const ag_api_td_share *share)
{
    api->td_share = *share;
}

const ag_api_td_share *ag_api_get_td_share(const ag_api *api)
{
    return api->td_share.register_td ? &api->td_share : NULL;
}

void ag_api_set_instances(ag_api *api, ag_api_instances_fn fn, void *arg)
{
    api->instances = fn;
    api->instances_arg = arg;
}

static void write_cluster(ag_api_req *rq)
{
    ag_api *api = rq->api;
    size_t by[AG_TASK_STATUS_COUNT];
    task_counts(api, by);
    size_t pending = by[AG_TASK_PROVISIONING] + by[AG_TASK_PENDING] + by[AG_TASK_ACTIVATING];
    es_jw *w = rq->w;
    es_jw_obj(w);
    es_jw_kstr(w, "clusterArn", api->cluster_arn);
    es_jw_kstr(w, "clusterName", api->cluster);
    es_jw_kstr(w, "status", "ACTIVE");
    /* the cluster's (etcd's view), or this host alone */
    es_jw_kint(w, "registeredContainerInstancesCount",
               api->instances ? (int64_t)api->instances(api->instances_arg) : 1);
    es_jw_kint(w, "runningTasksCount", (int64_t)by[AG_TASK_RUNNING]);
    es_jw_kint(w, "pendingTasksCount", (int64_t)pending);
    es_jw_kint(w, "activeServicesCount", 0);
    static const char *const empty[] = {"statistics", "tags", "settings", "capacityProviders",
                                        "defaultCapacityProviderStrategy"};
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
        es_jw_key(w, empty[i]);
        es_jw_arr(w);
        es_jw_arr_end(w);
    }
    es_jw_obj_end(w);
}

static int op_list_clusters(void *arg, ag_api_req *rq)
{
    (void)arg;
    int64_t max = AG_API_PAGE_MAX;
    char after[64];
    int r = page_args(rq, &max, after, sizeof after);
    if (r)
        return r;
    if (after[0] && strcmp(after, "end") != 0)
        return ag_api_fail(rq, INVALID, "nextToken: not a token this API handed out");
    if ((r = ag_api_authorize(rq, "ecs:ListClusters", "*", NULL, 0)))
        return r;
    es_jw_key(rq->w, "clusterArns");
    es_jw_arr(rq->w);
    if (!after[0])
        es_jw_str(rq->w, rq->api->cluster_arn);
    es_jw_arr_end(rq->w);
    return 0;
}

static int op_describe_clusters(void *arg, ag_api_req *rq)
{
    (void)arg;
    ag_api *api = rq->api;
    const es_json *clusters = NULL, *include = NULL;
    int r;
    if ((r = ag_api_str_list(rq, "clusters", false, 0, AG_API_DESCRIBE_MAX,
                             AG_API_CLUSTER_ARN_MAX - 1, &clusters)) ||
        (r = ag_api_str_list(rq, "include", false, 0, 5, 32, &include)))
        return r;
    static const char *const includes[] = {"ATTACHMENTS", "CONFIGURATIONS", "SETTINGS",
                                           "STATISTICS",  "TAGS",           NULL};
    for (size_t i = 0; include && i < include->u.array.n; i++)
        if ((r = one_of(rq, "include[]", include->u.array.items[i]->u.string.s, includes)))
            return r;
    /* ours is the one cluster there is: the others are MISSING whoever asks */
    if ((r = ag_api_authorize(rq, "ecs:DescribeClusters", api->cluster_arn, NULL, 0)))
        return r;
    es_jw *w = rq->w;
    es_jw_key(w, "clusters");
    es_jw_arr(w);
    size_t n = clusters ? clusters->u.array.n : 0;
    if (n == 0)
        write_cluster(rq);
    bool written = n == 0;
    for (size_t i = 0; i < n; i++)
        if (is_our_cluster(api, clusters->u.array.items[i]->u.string.s) && !written) {
            write_cluster(rq);
            written = true;
        }
    es_jw_arr_end(w);
    es_jw_key(w, "failures");
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        const char *c = clusters->u.array.items[i]->u.string.s;
        if (is_our_cluster(api, c))
            continue;
        es_jw_obj(w);
        if (strncmp(c, "arn:", 4) == 0) {
            es_jw_kstr(w, "arn", c);
        } else {
            char arn[AG_API_CLUSTER_ARN_MAX + 128];
            snprintf(arn, sizeof arn, "arn:aws:ecs:%s:%s:cluster/%s", api->region, api->account, c);
            es_jw_kstr(w, "arn", arn);
        }
        es_jw_kstr(w, "reason", "MISSING");
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    return 0;
}

/* ------------------------------------------------------------- dispatch */

static api_op *find_op(ag_api *api, const char *name)
{
    for (size_t i = 0; i < api->n_ops; i++)
        if (strcmp(api->ops[i].name, name) == 0)
            return &api->ops[i];
    return NULL;
}

static int add_op(ag_api *api, const char *name, ag_api_op_fn fn, void *arg, bool raw)
{
    api_op *op = find_op(api, name);
    if (!op) {
        if (api->n_ops >= AG_API_OPS_MAX)
            return -ENOSPC;
        op = &api->ops[api->n_ops++];
    }
    op->name = name;
    op->fn = fn;
    op->arg = arg;
    op->raw = raw;
    op->requests = NULL;
    if (api->metrics)
        op->requests =
            ag_metrics_series(api->metrics, AG_METRIC_COUNTER, METRIC_PREFIX "api_requests_total",
                              "ECS API requests by operation",
                              (const char *const[]){"operation", name, NULL}, NULL, 0);
    return 0;
}

int ag_api_add_op(ag_api *api, const char *name, ag_api_op_fn fn, void *arg)
{
    return add_op(api, name, fn, arg, false);
}

void ag_api_set_counts(ag_api *api, ag_api_counts_fn fn, void *arg)
{
    api->counts = fn;
    api->counts_arg = arg;
}

static void count_error(ag_api *api, const char *code)
{
    if (!api->metrics)
        return;
    for (size_t i = 0; i < api->n_errors; i++)
        if (strcmp(api->errors[i].code, code) == 0) {
            ag_series_add(api->errors[i].s, 1);
            return;
        }
    static const char *const known[] = {CLIENT,
                                        DENIED,
                                        INVALID,
                                        NOT_FOUND_CLUSTER,
                                        SERVER,
                                        "SerializationException",
                                        "UnknownOperationException",
                                        NULL};
    const char *k = "other";
    for (size_t i = 0; known[i]; i++)
        if (strcmp(known[i], code) == 0)
            k = known[i];
    for (size_t i = 0; i < api->n_errors; i++)
        if (strcmp(api->errors[i].code, k) == 0) {
            ag_series_add(api->errors[i].s, 1);
            return;
        }
    if (api->n_errors >= ERROR_CODES_MAX)
        return;
    ag_series *s = ag_metrics_series(api->metrics, AG_METRIC_COUNTER,
                                     METRIC_PREFIX "api_errors_total", "ECS API errors by code",
                                     (const char *const[]){"code", k, NULL}, NULL, 0);
    if (!s)
        return;
    api->errors[api->n_errors].code = k;
    api->errors[api->n_errors].s = s;
    api->n_errors++;
    ag_series_add(s, 1);
}

static int handle(ag_api *api, const aw_listener_call *call, const char *operation,
                  const char *principal, const char *body, size_t len, es_buf *out, al_error *err)
{
    ag_api_req rq = {.api = api,
                     .operation = operation,
                     .principal = principal,
                     .raw = body ? body : "",
                     .raw_len = body ? len : 0,
                     .err = err,
                     .call = call};
    api_op *op = find_op(api, operation);
    es_json *req = NULL;
    int r;
    if (!op) {
        r = ag_api_fail(&rq, "UnknownOperationException",
                        "The operation %.64s is not served by this agent", operation);
        goto out;
    }
    if (op->requests)
        ag_series_add(op->requests, 1);
    if (!op->raw) {
        if (len > AG_API_BODY_MAX) {
            r = ag_api_fail(&rq, INVALID, "request body: %zu bytes; at most %u are accepted", len,
                            AG_API_BODY_MAX);
            goto out;
        }
        char why[128];
        int jr = es_json_parse(rq.raw, rq.raw_len, &api_json_limits, &req, why, sizeof why);
        if (jr == ES_JSON_E_NOMEM) {
            r = ag_api_fail(&rq, SERVER, "out of memory");
            goto out;
        }
        if (jr) {
            r = ag_api_fail(&rq, "SerializationException", "request body: not valid JSON: %s", why);
            goto out;
        }
        if (req->type != ES_JSON_OBJECT) {
            r = ag_api_fail(&rq, INVALID, "request body: must be a JSON object");
            goto out;
        }
        rq.body = req;
    }
    es_jw w;
    es_jw_init(&w, out);
    rq.w = &w;
    es_jw_obj(&w);
    r = op->fn(op->arg, &rq);
    if (r == AW_LISTENER_LATER) {
        /* the operation took the reply (and asked first: it may not defer otherwise) */
        es_jw_obj_end(&w);
        es_buf_reset_secret(out);
        es_json_free(req);
        return rq.authorized ? r : ag_api_fail(&rq, SERVER, "deferred without authorisation");
    }
    if (r == 0 && !rq.authorized) {
        /* an operation that forgot to ask: a bug, never an answer */
        es_err("ECS %s answered without asking who may: refused", operation);
        r = ag_api_fail(&rq, SERVER, "the operation %.64s could not be authorised", operation);
    }
    es_jw_obj_end(&w);
    int wr = es_jw_finish(&w);
    if (r == 0 && wr < 0) {
        es_err("ECS %s: the answer could not be written (%s)", operation, strerror(-wr));
        r = ag_api_fail(&rq, SERVER, "the answer is too large to send");
    }
out:
    es_json_free(req);
    if (r < 0) {
        es_buf_reset_secret(out);
        count_error(api, err->code);
        es_debug("ECS %s by %s: %s: %s", operation, principal ? principal : "?", err->code,
                 err->message);
    }
    return r;
}

int ag_api_handle(void *arg, const char *operation, const char *principal, const char *body,
                  size_t len, es_buf *out, al_error *err)
{
    return handle(arg, NULL, operation, principal, body, len, out, err);
}

void ag_api_reply_error(ag_api *api, aw_listener_reply *reply, const char *code, const char *fmt,
                        ...)
{
    al_error e = {.status = strcmp(code, SERVER) == 0 ? 500 : 400};
    snprintf(e.code, sizeof e.code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    count_error(api, e.code);
    aw_listener_reply_error(reply, &e);
}

/* -------------------------------------------------------------- metrics */

int ag_api_add_metrics_hook(ag_api *api, ag_api_metrics_fn fn, void *arg)
{
    if (api->n_hooks >= AG_API_METRICS_HOOKS_MAX)
        return -ENOSPC;
    api->hooks[api->n_hooks].fn = fn;
    api->hooks[api->n_hooks].arg = arg;
    api->n_hooks++;
    return 0;
}

int ag_api_metrics(void *arg, const char *path, es_buf *out, const char **content_type)
{
    (void)path;
    ag_api *api = arg;
    if (!api->metrics)
        return -ENOENT;
    size_t by[AG_TASK_STATUS_COUNT];
    task_counts(api, by);
    for (int i = 0; i < AG_TASK_STATUS_COUNT; i++)
        if (api->tasks[i])
            ag_series_set(api->tasks[i], (double)by[i]);
    ag_metrics *m = api->metrics;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    ag_series_set(api->uptime, (double)(t.tv_sec - api->started.tv_sec) +
                                   (double)(t.tv_nsec - api->started.tv_nsec) / 1e9);
    if (api->resolver) {
        ag_resolver_stats rs;
        ag_resolver_get_stats(api->resolver, &rs);
        ag_metrics_sync_counter(m, METRIC_PREFIX "secret_resolutions_total",
                                "Task secret resolutions started", NULL, (double)rs.resolutions);
        ag_metrics_sync_counter(m, METRIC_PREFIX "secret_resolution_failures_total",
                                "Task secret resolutions that failed", NULL, (double)rs.failures);
        ag_metrics_sync_counter(m, METRIC_PREFIX "ssm_calls_total",
                                "SSM GetParameters calls started", NULL, (double)rs.ssm_calls);
        ag_metrics_sync_counter(m, METRIC_PREFIX "ssm_names_total", "SSM parameter names asked for",
                                NULL, (double)rs.ssm_names);
        ag_metrics_sync_counter(m, METRIC_PREFIX "secretsmanager_calls_total",
                                "Secrets Manager GetSecretValue calls started", NULL,
                                (double)rs.sm_calls);
        ag_metrics_sync_counter(m, METRIC_PREFIX "ecr_token_calls_total",
                                "ECR GetAuthorizationToken calls started (image pulls)", NULL,
                                (double)rs.ecr_calls);
        ag_metrics_sync_counter(m, METRIC_PREFIX "ecr_tokens_cached_total",
                                "ECR tokens taken from the (role, registry) cache", NULL,
                                (double)rs.ecr_cached);
    }
    if (api->server) {
        aw_listener_stats ss;
        aw_listener_get_stats(api->server, &ss);
        const char *h = "HTTP requests to the agent's listener";
        ag_metrics_sync_counter(m, METRIC_PREFIX "http_requests_total", h, NULL,
                                (double)ss.requests);
        ag_metrics_sync_counter(m, METRIC_PREFIX "http_errors_total", "HTTP error answers by class",
                                (const char *const[]){"class", "4xx", NULL}, (double)ss.errors_4xx);
        ag_metrics_sync_counter(m, METRIC_PREFIX "http_errors_total", "HTTP error answers by class",
                                (const char *const[]){"class", "5xx", NULL}, (double)ss.errors_5xx);
        ag_metrics_sync_counter(m, METRIC_PREFIX "http_auth_failures_total",
                                "Requests refused by signature verification", NULL,
                                (double)ss.auth_failures);
        ag_metrics_sync_counter(m, METRIC_PREFIX "http_connections_refused_total",
                                "Connections refused over the connection limit", NULL,
                                (double)ss.connections_refused);
        /* answers given off the loop (PutParameter's AllowedPattern: aws/local/match.h) */
        ag_metrics_sync_counter(m, METRIC_PREFIX "http_deferred_answers_total",
                                "Answers given once work on a worker thread was done", NULL,
                                (double)ss.deferred);
        ag_series *w =
            ag_metrics_series(m, AG_METRIC_GAUGE, METRIC_PREFIX "http_deferred_waiting",
                              "Answers waiting for work on a worker thread", NULL, NULL, 0);
        if (w)
            ag_series_set(w, (double)ss.deferred_waiting);
    }
    *content_type = "text/plain; version=0.0.4; charset=utf-8";
    for (size_t i = 0; i < api->n_hooks; i++)
        api->hooks[i].fn(api->hooks[i].arg, m);
    return ag_metrics_render(m, out);
}

/* ------------------------------------------------------------ lifecycle */

int ag_api_create(const ag_api_config *cfg, ag_api **out)
{
    if (!cfg || !cfg->store || !cfg->region || !cfg->account || !cfg->cluster)
        return -EINVAL;
    ag_api *api = es_calloc(1, sizeof *api);
    if (!api)
        return -ENOMEM;
    api->store = cfg->store;
    api->metrics = cfg->metrics;
    clock_gettime(CLOCK_MONOTONIC, &api->started);
    if (api->metrics) {
        api->build_info =
            ag_metrics_series(api->metrics, AG_METRIC_GAUGE, METRIC_PREFIX "build_info",
                              "The running build: 1, labelled with its version.",
                              (const char *const[]){"version", ES_VERSION, NULL}, NULL, 0);
        api->start_time =
            ag_metrics_series(api->metrics, AG_METRIC_GAUGE, METRIC_PREFIX "start_time_seconds",
                              "When the agent started (Unix time).", NULL, NULL, 0);
        api->uptime =
            ag_metrics_series(api->metrics, AG_METRIC_GAUGE, METRIC_PREFIX "uptime_seconds",
                              "Seconds since the agent started.", NULL, NULL, 0);
        ag_series_set(api->build_info, 1);
        ag_series_set(api->start_time, (double)(cfg->now ? cfg->now() : (int64_t)time(NULL)));
    }
    api->resolver = cfg->resolver;
    api->server = cfg->server;
    api->now = cfg->now;
    api->reject_env_secret_clash = cfg->reject_env_secret_clash;
    api->iam = cfg->iam;
    snprintf(api->root_arn, sizeof api->root_arn, "arn:aws:iam::%s:root", cfg->account);
    api->region = es_strdup(cfg->region);
    api->account = es_strdup(cfg->account);
    api->cluster = es_strdup(cfg->cluster);
    int n = snprintf(api->cluster_arn, sizeof api->cluster_arn, "arn:aws:ecs:%s:%s:cluster/%s",
                     cfg->region, cfg->account, cfg->cluster);
    if (n < 0 || (size_t)n >= sizeof api->cluster_arn) {
        ag_api_free(api);
        return -EINVAL;
    }
    if (!api->region || !api->account || !api->cluster) {
        ag_api_free(api);
        return -ENOMEM;
    }
    if (add_op(api, "RegisterTaskDefinition", op_register, NULL, true) ||
        add_op(api, "DescribeTaskDefinition", op_describe_td, NULL, false) ||
        add_op(api, "DeregisterTaskDefinition", op_deregister_td, NULL, false) ||
        add_op(api, "ListTaskDefinitions", op_list_td, NULL, false) ||
        add_op(api, "ListTaskDefinitionFamilies", op_list_families, NULL, false) ||
        add_op(api, "ListClusters", op_list_clusters, NULL, false) ||
        add_op(api, "DescribeClusters", op_describe_clusters, NULL, false)) {
        ag_api_free(api);
        return -ENOSPC;
    }
    if (api->metrics)
        for (int i = 0; i < AG_TASK_STATUS_COUNT; i++)
            api->tasks[i] = ag_metrics_series(
                api->metrics, AG_METRIC_GAUGE, METRIC_PREFIX "tasks", "Tasks by lastStatus",
                (const char *const[]){"status", ag_task_status_name((ag_task_status)i), NULL}, NULL,
                0);
    *out = api;
    return 0;
}

void ag_api_free(ag_api *api)
{
    if (!api)
        return;
    es_free(api->region);
    es_free(api->account);
    es_free(api->cluster);
    es_free(api);
}

static int api_route(void *arg, const aw_listener_call *k, es_buf *out, aw_listener_error *err)
{
    ag_api *api = arg;
    /* The listener accepts a scope naming any region (its embedded services
     * serve them all at one endpoint), but this ECS API is one region's: its
     * ARNs name it. A request signed for another region is refused as ECS's
     * regional endpoints refuse it, not answered with another region's ARNs. */
    if (k->region && strcmp(k->region, api->region) != 0) {
        err->status = 400;
        snprintf(err->code, sizeof err->code, "InvalidSignatureException");
        snprintf(err->message, sizeof err->message,
                 "Credential should be scoped to a valid region, not '%.63s' (this ECS API "
                 "serves %.63s).",
                 k->region, api->region);
        return -EACCES;
    }
    return handle(arg, k, k->operation, k->principal, k->body, k->len, out, err);
}

int ag_api_attach(ag_api *api, aw_listener *s)
{
    aw_json_route route = {.target_prefix = AG_API_TARGET_PREFIX,
                           .signing_name = AG_API_SIGNING_NAME,
                           .fn = api_route,
                           .arg = api};
    int r = aw_listener_add_json_route(s, &route);
    if (r < 0)
        return r;
    if (api->metrics)
        r = aw_listener_add_get_route(s, "/metrics", ag_api_metrics, api);
    if (!api->server)
        api->server = s;
    return r;
}
