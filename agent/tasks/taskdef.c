/* taskdef.c - see taskdef.h. */
#include "agent/tasks/taskdef.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "agent/secrets/valuefrom.h"
#include "agent/tasks/td_awslogs.h"
#include "agent/tasks/td_fields.h"
#include "agent/tasks/td_json.h"
#include "common/name.h"
#include "common/secure.h"
#include "common/utf8.h"
#include "common/alloc.h"

/* dependsOn as kept for DescribeTaskDefinition: AG_TD_DEPENDS_MAX entries of
 * a container name (255) and a condition. */
#define DEPENDS_JSON_MAX 8192

#define CLIENT "ClientException"
#define INVALID "InvalidParameterException"
#define SERIALIZATION "SerializationException"

#define PATH_MAX_ 160

static const es_json_limits td_json_limits = {
    .max_bytes = AG_TD_BODY_MAX,
    .max_depth = 16,
    .max_string = AG_TD_ENV_VALUE_MAX,
    .max_values = 20000,
};

/* "prefix.key" (or "key" at the top level). */
static void field(char *out, size_t n, const char *prefix, const char *key)
{
    if (prefix && *prefix)
        ag_td_pathf(out, n, "%s.%s", prefix, key);
    else
        ag_td_pathf(out, n, "%s", key);
}

typedef struct str_rule {
    size_t max;
    bool required;
    bool allow_empty;
} str_rule;

/* Copies a string value after checking it; the value is never quoted in an
 * error (environment values may be sensitive even though they should not). */
static int take_str(const es_json *j, const char *path, str_rule r, char **out, ag_td_error *e)
{
    if (!j) {
        if (r.required)
            return ag_td_bad(e, CLIENT, "%s: required", path);
        *out = NULL;
        return 0;
    }
    if (j->type != ES_JSON_STRING)
        return ag_td_bad(e, INVALID, "%s: must be a string", path);
    size_t len = j->u.string.len;
    if (strlen(j->u.string.s) != len)
        return ag_td_bad(e, CLIENT, "%s: must not contain a NUL character", path);
    if (!es_utf8_valid(j->u.string.s, len))
        return ag_td_bad(e, CLIENT, "%s: must be valid UTF-8", path);
    if (len == 0 && !r.allow_empty)
        return ag_td_bad(e, CLIENT, "%s: should not be null or empty", path);
    if (len > r.max)
        return ag_td_bad(e, CLIENT, "%s: longer than %zu characters", path, r.max);
    char *s = es_strndup(j->u.string.s, len);
    if (!s)
        return ag_td_nomem(e);
    *out = s;
    return 0;
}

static int get_str(const es_json *obj, const char *prefix, const char *key, str_rule r, char **out,
                   ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, key);
    return take_str(ag_td_member(obj, key), path, r, out, e);
}

static int get_int(const es_json *obj, const char *prefix, const char *key, int64_t min,
                   int64_t max, bool *has, int64_t *out, ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, key);
    const es_json *j = ag_td_member(obj, key);
    *has = false;
    if (!j)
        return 0;
    int64_t v;
    if (!es_json_as_int64(j, &v))
        return ag_td_bad(e, INVALID, "%s: must be an integer", path);
    if (v < min || v > max)
        return ag_td_bad(e, CLIENT, "%s: must be between %" PRId64 " and %" PRId64, path, min, max);
    *has = true;
    *out = v;
    return 0;
}

static void free_kvs(ag_kv *kv, size_t n)
{
    if (!kv)
        return;
    for (size_t i = 0; i < n; i++) {
        es_free(kv[i].name);
        es_free(kv[i].value);
    }
    es_free(kv);
}

/* An empty value says nothing: null, false, 0-length list, object or string. */
static bool empty_value(const es_json *j)
{
    switch (j->type) {
    case ES_JSON_NULL:
        return true;
    case ES_JSON_BOOL:
        return !j->u.boolean;
    case ES_JSON_STRING:
        return j->u.string.len == 0;
    case ES_JSON_ARRAY:
    case ES_JSON_OBJECT:
        return es_json_len(j) == 0;
    default:
        return false;
    }
}

static int keep_member(const char *key, const es_json *v, ag_kv **kept, size_t *n_kept,
                       ag_td_error *e)
{
    es_buf b;
    es_buf_init(&b, AG_TD_BODY_MAX);
    es_jw w;
    es_jw_init(&w, &b);
    es_jw_value(&w, v);
    int r = es_jw_finish(&w);
    char *text = r ? NULL : es_buf_steal(&b);
    char *name = text ? es_strdup(key) : NULL;
    ag_kv *grown = name ? es_realloc(*kept, (*n_kept + 1) * sizeof **kept) : NULL;
    if (!grown) {
        es_buf_free(&b);
        es_free(text);
        es_free(name);
        return ag_td_nomem(e);
    }
    grown[*n_kept] = (ag_kv){name, text};
    *kept = grown;
    (*n_kept)++;
    return 0;
}

/* Every member of obj against td_fields.h's table: unknown and refused ones
 * are refused by name, kept ones are copied as registered; modelled ones are
 * left to their parsers. */
static int check_members(const es_json *obj, ag_td_level level, const char *prefix, ag_kv **kept,
                         size_t *n_kept, ag_td_error *e)
{
    for (size_t i = 0; i < obj->u.object.n; i++) {
        const char *key = obj->u.object.keys[i];
        const es_json *v = obj->u.object.values[i];
        char path[PATH_MAX_];
        field(path, sizeof path, prefix, key);
        const ag_td_field *f = ag_td_field_find(level, key);
        if (!f)
            return ag_td_bad(
                e, CLIENT,
                "%s: not a member of %s that this agent knows (docs/TASKDEF.md lists "
                "them)",
                path, level == AG_FIELD_TASK ? "RegisterTaskDefinition" : "ContainerDefinition");
        if (f->modelled || v->type == ES_JSON_NULL)
            continue;
        if (f->fate == AG_FIELD_REFUSED && !empty_value(v))
            return ag_td_bad(e, CLIENT, "%s: %s", path, f->why);
        int r = keep_member(key, v, kept, n_kept, e);
        if (r)
            return r;
    }
    return 0;
}

/* skip: a member not written here (NULL: none) */
static void w_kept(es_jw *w, const ag_kv *kept, size_t n, const char *skip)
{
    for (size_t i = 0; i < n; i++) {
        if (skip && strcmp(kept[i].name, skip) == 0)
            continue;
        es_json *v = NULL;
        if (es_json_parse(kept[i].value, strlen(kept[i].value), &td_json_limits, &v, NULL, 0) !=
            0) {
            if (!w->err)
                w->err = -ENOMEM;
            return;
        }
        es_jw_key(w, kept[i].name);
        es_jw_value(w, v);
        es_json_free(v);
    }
}

static void free_refs(ag_secret_ref *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++) {
        es_free(s[i].name);
        es_free(s[i].value_from);
        ag_valuefrom_clear(&s[i].vf);
    }
    es_free(s);
}

/* A list of strings (command, entryPoint, requiresCompatibilities). */
static int get_strv(const es_json *obj, const char *prefix, const char *key, size_t max_items,
                    size_t max_len, bool allow_empty, char ***out, size_t *n_out, ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, key);
    const es_json *arr = ag_td_member(obj, key);
    *out = NULL;
    *n_out = 0;
    if (!arr)
        return 0;
    if (arr->type != ES_JSON_ARRAY)
        return ag_td_bad(e, INVALID, "%s: must be a list of strings", path);
    size_t n = es_json_len(arr);
    if (n > max_items)
        return ag_td_bad(e, CLIENT, "%s: more than %zu items", path, max_items);
    char **v = es_calloc(n + 1, sizeof *v);
    if (!v)
        return ag_td_nomem(e);
    for (size_t i = 0; i < n; i++) {
        char ipath[PATH_MAX_];
        ag_td_pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
        str_rule r = {.max = max_len, .required = true, .allow_empty = allow_empty};
        int rc = take_str(es_json_at(arr, i), ipath, r, &v[i], e);
        if (rc) {
            es_strv_free(v, i, false);
            return rc;
        }
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* An environment variable name: what Docker's Env can carry. */
static int check_env_name(const char *name, const char *path, ag_td_error *e)
{
    if (strchr(name, '='))
        return ag_td_bad(e, CLIENT, "%s: an environment variable name cannot contain '='", path);
    return 0;
}

/* environment: [{name, value}] */
static int get_env(const es_json *obj, const char *prefix, const char *key, ag_kv **out,
                   size_t *n_out, ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, key);
    const es_json *arr = ag_td_member(obj, key);
    *out = NULL;
    *n_out = 0;
    if (!arr)
        return 0;
    if (arr->type != ES_JSON_ARRAY)
        return ag_td_bad(e, INVALID, "%s: must be a list of {name, value}", path);
    size_t n = es_json_len(arr);
    if (n > AG_TD_ENV_MAX)
        return ag_td_bad(e, CLIENT, "%s: more than %d variables", path, AG_TD_ENV_MAX);
    ag_kv *kv = es_calloc(n + 1, sizeof *kv);
    if (!kv)
        return ag_td_nomem(e);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char ipath[PATH_MAX_];
        ag_td_pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
        const es_json *it = es_json_at(arr, i);
        if (it->type != ES_JSON_OBJECT) {
            rc = ag_td_bad(e, INVALID, "%s: must be an object {name, value}", ipath);
            goto fail;
        }
        rc = get_str(it, ipath, "name", (str_rule){.max = AG_TD_ENV_NAME_MAX, .required = true},
                     &kv[i].name, e);
        if (rc)
            goto fail;
        char npath[PATH_MAX_];
        field(npath, sizeof npath, ipath, "name");
        rc = check_env_name(kv[i].name, npath, e);
        if (rc)
            goto fail;
        rc = get_str(it, ipath, "value",
                     (str_rule){.max = AG_TD_ENV_VALUE_MAX, .allow_empty = true}, &kv[i].value, e);
        if (rc)
            goto fail;
        if (!kv[i].value && !(kv[i].value = es_strdup(""))) {
            rc = ag_td_nomem(e);
            goto fail;
        }
    }
    *out = kv;
    *n_out = n;
    return 0;
fail:
    free_kvs(kv, n);
    return rc;
}

/* options / dockerLabels: {"k": "v"} */
static int get_map(const es_json *obj, const char *prefix, const char *key, size_t max_items,
                   size_t max_key, size_t max_value, ag_kv **out, size_t *n_out, ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, key);
    const es_json *m = ag_td_member(obj, key);
    *out = NULL;
    *n_out = 0;
    if (!m)
        return 0;
    if (m->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be an object of strings", path);
    size_t n = es_json_len(m);
    if (n > max_items)
        return ag_td_bad(e, CLIENT, "%s: more than %zu entries", path, max_items);
    ag_kv *kv = es_calloc(n + 1, sizeof *kv);
    if (!kv)
        return ag_td_nomem(e);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = m->u.object.keys[i];
        size_t klen = strlen(k);
        if (!es_utf8_valid(k, klen)) {
            rc = ag_td_bad(e, CLIENT, "%s: a key is not valid UTF-8", path);
            goto fail;
        }
        if (klen == 0 || klen > max_key) {
            rc = ag_td_bad(e, CLIENT, "%s: a key is empty or longer than %zu characters", path,
                           max_key);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(kv[j].name, k) == 0) {
                rc = ag_td_bad(e, CLIENT, "%s: duplicate key '%s'", path, k);
                goto fail;
            }
        char vpath[PATH_MAX_];
        ag_td_pathf(vpath, sizeof vpath, "%s.%.64s", path, k);
        kv[i].name = es_strdup(k);
        if (!kv[i].name) {
            rc = ag_td_nomem(e);
            goto fail;
        }
        rc = take_str(m->u.object.values[i], vpath,
                      (str_rule){.max = max_value, .required = true, .allow_empty = true},
                      &kv[i].value, e);
        if (rc)
            goto fail;
    }
    *out = kv;
    *n_out = n;
    return 0;
fail:
    free_kvs(kv, n);
    return rc;
}

/* Checks a valueFrom (and S2) without keeping the classification. */
/* Parses ref->value_from into ref->vf (the one parse of a reference). */
static int parse_value_from(ag_secret_ref *ref, const char *path, const ag_td_ctx *ctx,
                            ag_td_error *e)
{
    char why[256];
    ag_valuefrom v;
    int r = ag_valuefrom_parse(ref->value_from, ctx ? ctx->region : NULL, &v, why, sizeof why);
    if (r == AG_VF_E_NOMEM)
        return ag_td_nomem(e);
    if (r)
        return ag_td_bad(e, CLIENT, "%s: %s", path, why);
    bool ssm = v.kind == AG_VF_SSM || v.kind == AG_VF_SSM_REFERENCE;
    if (ssm && v.is_arn && ctx && ctx->account && strcmp(v.account, ctx->account) != 0) {
        r = ag_td_bad(
            e, CLIENT,
            "%s: the SSM parameter is in account %s, but a Parameter Store parameter must "
            "be in the task's account (%s)",
            path, v.account, ctx->account);
        ag_valuefrom_clear(&v);
        return r;
    }
    ref->vf = v;
    return 0;
}

/* secrets / secretOptions: [{name, valueFrom}] */
static int get_refs(const es_json *obj, const char *prefix, const char *key, size_t max_items,
                    bool env_names, const ag_td_ctx *ctx, ag_secret_ref **out, size_t *n_out,
                    ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, key);
    const es_json *arr = ag_td_member(obj, key);
    *out = NULL;
    *n_out = 0;
    if (!arr)
        return 0;
    if (arr->type != ES_JSON_ARRAY)
        return ag_td_bad(e, INVALID, "%s: must be a list of {name, valueFrom}", path);
    size_t n = es_json_len(arr);
    if (n > max_items)
        return ag_td_bad(e, CLIENT, "%s: more than %zu entries", path, max_items);
    ag_secret_ref *s = es_calloc(n + 1, sizeof *s);
    if (!s)
        return ag_td_nomem(e);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char ipath[PATH_MAX_];
        ag_td_pathf(ipath, sizeof ipath, "%s[%zu]", path, i);
        const es_json *it = es_json_at(arr, i);
        if (it->type != ES_JSON_OBJECT) {
            rc = ag_td_bad(e, INVALID, "%s: must be an object {name, valueFrom}", ipath);
            goto fail;
        }
        size_t name_max = env_names ? AG_TD_ENV_NAME_MAX : AG_TD_LOG_OPTION_MAX;
        rc = get_str(it, ipath, "name", (str_rule){.max = name_max, .required = true}, &s[i].name,
                     e);
        if (rc)
            goto fail;
        char npath[PATH_MAX_];
        field(npath, sizeof npath, ipath, "name");
        if (env_names && (rc = check_env_name(s[i].name, npath, e)))
            goto fail;
        for (size_t j = 0; j < i; j++)
            if (strcmp(s[j].name, s[i].name) == 0) {
                rc = ag_td_bad(
                    e, CLIENT,
                    "%s: Duplicate secret names found: %s. Each secret name must be unique "
                    "(also %s[%zu]).",
                    npath, s[i].name, path, j);
                goto fail;
            }
        rc = get_str(it, ipath, "valueFrom", (str_rule){.max = AG_VF_MAX, .required = true},
                     &s[i].value_from, e);
        if (rc)
            goto fail;
        char vpath[PATH_MAX_];
        field(vpath, sizeof vpath, ipath, "valueFrom");
        rc = parse_value_from(&s[i], vpath, ctx, e);
        if (rc)
            goto fail;
    }
    *out = s;
    *n_out = n;
    return 0;
fail:
    free_refs(s, n);
    return rc;
}

static const char *const log_drivers[] = {"json-file", "syslog",  "journald", "gelf",
                                          "fluentd",   "awslogs", "splunk",   "awsfirelens"};

static void free_log(ag_logconf *l)
{
    if (!l)
        return;
    es_free(l->driver);
    free_kvs(l->options, l->n_options);
    free_refs(l->secret_options, l->n_secret_options);
    es_free(l);
}

static int add_warning(ag_taskdef *td, ag_td_error *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add_warning(ag_taskdef *td, ag_td_error *e, const char *fmt, ...)
{
    if (td->n_warnings >= AG_TD_WARNINGS_MAX)
        return 0;
    char text[AG_TD_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    char *w = es_strdup(text);
    if (!w)
        return ag_td_nomem(e);
    td->warnings[td->n_warnings++] = w;
    return 0;
}

static int get_log(const es_json *cd, const char *prefix, const ag_td_ctx *ctx, ag_taskdef *td,
                   ag_logconf **out, ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, "logConfiguration");
    const es_json *j = ag_td_member(cd, "logConfiguration");
    *out = NULL;
    if (!j)
        return 0;
    if (j->type == ES_JSON_ARRAY) {
        /* The seed document's snippet (S9) writes an array around the object. */
        if (es_json_len(j) != 1 || es_json_at(j, 0)->type != ES_JSON_OBJECT)
            return ag_td_bad(e, INVALID,
                             "%s: must be an object {logDriver, options, secretOptions} (an array "
                             "is accepted only with exactly one such object)",
                             path);
        int r = add_warning(td, e,
                            "%s: given as a one-element array; ECS takes an object, so the "
                            "array's element was used",
                            path);
        if (r)
            return r;
        j = es_json_at(j, 0);
    } else if (j->type != ES_JSON_OBJECT) {
        return ag_td_bad(e, INVALID, "%s: must be an object {logDriver, options, secretOptions}",
                         path);
    }
    ag_logconf *l = es_calloc(1, sizeof *l);
    if (!l)
        return ag_td_nomem(e);
    int rc = get_str(j, path, "logDriver", (str_rule){.max = 64}, &l->driver, e);
    if (rc)
        goto fail;
    if (!l->driver) {
        if (ag_td_member(j, "secretOptions"))
            rc = ag_td_bad(e, CLIENT, "%s.secretOptions: secret options need a logDriver", path);
        else
            rc = ag_td_bad(e, CLIENT, "%s.logDriver: required", path);
        goto fail;
    }
    if (!ag_td_in_list(l->driver, log_drivers, sizeof log_drivers / sizeof *log_drivers)) {
        rc = ag_td_bad(e, CLIENT,
                       "%s.logDriver: '%.64s' is not one of json-file, syslog, journald, gelf, "
                       "fluentd, awslogs, splunk, awsfirelens",
                       path, l->driver);
        goto fail;
    }
    if (strcmp(l->driver, "awsfirelens") == 0) {
        rc = ag_td_bad(
            e, CLIENT,
            "%s.logDriver: awsfirelens needs a FireLens log router sidecar that this agent "
            "does not run",
            path);
        goto fail;
    }
    rc = get_map(j, path, "options", AG_TD_LOG_OPTIONS_MAX, AG_TD_LOG_OPTION_MAX,
                 AG_TD_LOG_OPTION_MAX, &l->options, &l->n_options, e);
    if (rc)
        goto fail;
    rc = get_refs(j, path, "secretOptions", AG_TD_SECRET_OPTIONS_MAX, false, ctx,
                  &l->secret_options, &l->n_secret_options, e);
    if (rc)
        goto fail;
    *out = l;
    return 0;
fail:
    free_log(l);
    return rc;
}

static const char *const conditions[] = {"START", "COMPLETE", "SUCCESS", "HEALTHY"};

const char *ag_dep_condition_name(ag_dep_condition c)
{
    return (unsigned)c < 4 ? conditions[c] : "?";
}

static int get_depends_on(const es_json *cd, const char *prefix, char **out, ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, "dependsOn");
    const es_json *arr = ag_td_member(cd, "dependsOn");
    *out = NULL;
    if (!arr)
        return 0;
    if (arr->type != ES_JSON_ARRAY)
        return ag_td_bad(e, INVALID, "%s: must be a list of {containerName, condition}", path);
    size_t n = es_json_len(arr);
    if (n > AG_TD_DEPENDS_MAX)
        return ag_td_bad(e, CLIENT, "%s: more than %d entries", path, AG_TD_DEPENDS_MAX);
    es_buf b;
    es_buf_init(&b, DEPENDS_JSON_MAX);
    es_jw w;
    es_jw_init(&w, &b);
    es_jw_arr(&w);
    for (size_t i = 0; i < n; i++) {
        const es_json *it = es_json_at(arr, i);
        const char *cn = es_json_get_str(it, "containerName");
        const char *cond = es_json_get_str(it, "condition");
        if (!cn || !*cn || strlen(cn) > AG_TD_NAME_MAX || !cond ||
            !ag_td_in_list(cond, conditions, 4)) {
            es_jw_finish(&w);
            es_buf_free(&b);
            return ag_td_bad(e, CLIENT,
                             "%s[%zu]: needs containerName and condition (START, COMPLETE, SUCCESS "
                             "or HEALTHY)",
                             path, i);
        }
        es_jw_obj(&w);
        es_jw_kstr(&w, "containerName", cn);
        es_jw_kstr(&w, "condition", cond);
        es_jw_obj_end(&w);
    }
    es_jw_arr_end(&w);
    int r = es_jw_finish(&w);
    if (r) {
        es_buf_free(&b);
        return r == -ENOMEM ? ag_td_nomem(e) : ag_td_bad(e, CLIENT, "%s: cannot be encoded", path);
    }
    char *s = es_buf_steal(&b);
    if (!s)
        return ag_td_nomem(e);
    *out = s;
    return 0;
}

static bool valid_name(const char *s)
{
    return es_name_ok(s, strlen(s), AG_TD_NAME_MAX);
}

static void container_clear(ag_container_def *c)
{
    free_kvs(c->kept, c->n_kept);
    es_free(c->name);
    es_free(c->image);
    es_strv_free(c->command, c->n_command, false);
    es_strv_free(c->entry_point, c->n_entry_point, false);
    free_kvs(c->environment, c->n_environment);
    ag_td_envfiles_free(c->env_files, c->n_env_files);
    free_refs(c->secrets, c->n_secrets);
    free_log(c->log);
    free_refs(c->repository_credentials, c->repository_credentials ? 1 : 0);
    free_kvs(c->docker_labels, c->n_docker_labels);
    es_free(c->working_directory);
    es_free(c->user);
    es_free(c->depends_on_json);
    es_free(c->depends);
    ag_td_runtime_clear(&c->rt);
    ag_td_cvolumes_clear(&c->cv);
    ag_td_files_free(c->files, c->n_files);
    ag_td_expand_free(c->expands, c->n_expands);
    memset(c, 0, sizeof *c);
}

/* repositoryCredentials: {credentialsParameter: secret ARN or name} (S15) */
static int get_repo_creds(const es_json *cd, const char *prefix, const ag_td_ctx *ctx,
                          ag_container_def *c, ag_td_error *e)
{
    char path[PATH_MAX_];
    field(path, sizeof path, prefix, "repositoryCredentials");
    const es_json *rc_obj = ag_td_member(cd, "repositoryCredentials");
    if (!rc_obj)
        return 0;
    if (rc_obj->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be an object {credentialsParameter}", path);
    ag_secret_ref *ref = es_calloc(1, sizeof *ref);
    if (!ref)
        return ag_td_nomem(e);
    int rc = get_str(rc_obj, path, "credentialsParameter",
                     (str_rule){.max = AG_VF_MAX, .required = true}, &ref->value_from, e);
    if (rc == 0 && !(ref->name = es_strdup("repositoryCredentials")))
        rc = ag_td_nomem(e);
    if (rc == 0) {
        char why[256];
        int vr = ag_valuefrom_parse_secret(ref->value_from, ctx ? ctx->region : NULL, &ref->vf, why,
                                           sizeof why);
        if (vr == AG_VF_E_NOMEM)
            rc = ag_td_nomem(e);
        else if (vr < 0)
            rc =
                ag_td_bad(e, CLIENT,
                          "%s.credentialsParameter: The repository credentials parameter specified "
                          "for container '%s' is invalid: %s",
                          path, c->name, why);
    }
    if (rc) {
        free_refs(ref, 1);
        return rc;
    }
    c->repository_credentials = ref;
    return 0;
}

static int parse_container(const es_json *cd, size_t idx, const ag_td_ctx *ctx, ag_taskdef *td,
                           ag_container_def *c, ag_td_error *e)
{
    char path[PATH_MAX_];
    ag_td_pathf(path, sizeof path, "containerDefinitions[%zu]", idx);
    if (cd->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "%s: must be an object", path);
    int rc = check_members(cd, AG_FIELD_CONTAINER, path, &c->kept, &c->n_kept, e);
    if (rc)
        return rc;
    rc =
        get_str(cd, path, "name", (str_rule){.max = AG_TD_NAME_MAX, .required = true}, &c->name, e);
    if (rc)
        return rc;
    if (!valid_name(c->name))
        return ag_td_bad(
            e, CLIENT,
            "%s.name: up to %d letters (uppercase and lowercase), numbers, hyphens and "
            "underscores are allowed",
            path, AG_TD_NAME_MAX);
    rc = get_str(cd, path, "image", (str_rule){.max = AG_TD_IMAGE_MAX, .required = true}, &c->image,
                 e);
    if (rc)
        return rc;
    for (const char *p = c->image; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return ag_td_bad(e, CLIENT, "%s.image: must not contain spaces or control characters",
                             path);
    c->essential = true;
    const es_json *ess = ag_td_member(cd, "essential");
    if (ess) {
        if (ess->type != ES_JSON_BOOL)
            return ag_td_bad(e, INVALID, "%s.essential: must be a boolean", path);
        c->essential = ess->u.boolean;
    }
    if ((rc = get_strv(cd, path, "command", AG_TD_ARGV_MAX, AG_TD_ARG_MAX, true, &c->command,
                       &c->n_command, e)))
        return rc;
    if ((rc = get_strv(cd, path, "entryPoint", AG_TD_ARGV_MAX, AG_TD_ARG_MAX, true, &c->entry_point,
                       &c->n_entry_point, e)))
        return rc;
    if ((rc = get_env(cd, path, "environment", &c->environment, &c->n_environment, e)))
        return rc;
    if ((rc = ag_td_envfiles_parse(cd, path, &c->env_files, &c->n_env_files, e)))
        return rc;
    if ((rc = ag_td_restart_parse(cd, path, &c->restart, e)))
        return rc;
    if ((rc = get_refs(cd, path, "secrets", AG_TD_SECRETS_MAX, true, ctx, &c->secrets,
                       &c->n_secrets, e)))
        return rc;
    if (ctx && ctx->reject_env_secret_clash) {
        for (size_t i = 0; i < c->n_secrets; i++)
            for (size_t j = 0; j < c->n_environment; j++)
                if (strcmp(c->secrets[i].name, c->environment[j].name) == 0)
                    return ag_td_bad(e, CLIENT,
                                     "%s.secrets[%zu].name: The secret name must be unique and not "
                                     "shared with any new or existing environment variables set on "
                                     "the container, such as '%s'.",
                                     path, i, c->secrets[i].name);
    }
    if ((rc = get_log(cd, path, ctx, td, &c->log, e)))
        return rc;
    if (c->log) {
        char lpath[PATH_MAX_];
        field(lpath, sizeof lpath, path, "logConfiguration");
        if ((rc = ag_awslogs_check(c->log, c->name, lpath, e)))
            return rc;
    }
    if ((rc = get_repo_creds(cd, path, ctx, c, e)))
        return rc;
    if ((rc = get_map(cd, path, "dockerLabels", AG_TD_LABELS_MAX, AG_TD_LABEL_KEY_MAX,
                      AG_TD_LABEL_VALUE_MAX, &c->docker_labels, &c->n_docker_labels, e)))
        return rc;
    if ((rc = get_int(cd, path, "stopTimeout", 0, AG_TD_STOP_TIMEOUT_MAX, &c->has_stop_timeout,
                      &c->stop_timeout, e)))
        return rc;
    if ((rc = get_int(cd, path, "startTimeout", AG_TD_START_TIMEOUT_MIN, AG_TD_START_TIMEOUT_MAX,
                      &c->has_start_timeout, &c->start_timeout, e)))
        return rc;
    if ((rc = get_int(cd, path, "memory", AG_TD_CONTAINER_MEMORY_MIN, AG_TD_CONTAINER_MEMORY_MAX,
                      &c->has_memory, &c->memory, e)))
        return rc;
    if ((rc = get_int(cd, path, "cpu", 0, AG_TD_CONTAINER_CPU_MAX, &c->has_cpu, &c->cpu, e)))
        return rc;
    if ((rc = get_str(cd, path, "workingDirectory", (str_rule){.max = AG_TD_PATH_MAX},
                      &c->working_directory, e)))
        return rc;
    if ((rc = get_str(cd, path, "user", (str_rule){.max = AG_TD_USER_MAX}, &c->user, e)))
        return rc;
    if ((rc = get_depends_on(cd, path, &c->depends_on_json, e)))
        return rc;
    if ((rc = ag_td_files_parse(c, path, e)))
        return rc;
    if ((rc = ag_td_expand_parse(c, path, ctx, e)))
        return rc;
    ag_td_rt_ctx rctx = {.network_mode = td->network_mode,
                         .ipc_mode = td->ipc_mode,
                         .has_memory = c->has_memory,
                         .memory = c->memory,
                         .container = c->name};
    if ((rc = ag_td_runtime_parse(cd, path, &rctx, &c->rt, e)))
        return rc;
    return ag_td_cvolumes_parse(cd, path, td->network_mode, &c->cv, e);
}

/* arn:PARTITION:iam::ACCOUNT:role/NAME */
static bool valid_role_arn(const char *s)
{
    if (strncmp(s, "arn:", 4) != 0)
        return false;
    const char *p = s + 4;
    const char *c = strchr(p, ':');
    if (!c || c == p)
        return false;
    if (strncmp(c, ":iam::", 6) != 0)
        return false;
    p = c + 6;
    for (int i = 0; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    p += 12;
    if (strncmp(p, ":role/", 6) != 0)
        return false;
    p += 6;
    if (!*p)
        return false;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("+=,.@_-/", *p)))
            return false;
    return true;
}

static bool valid_role_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || strchr("+=,.@_-", s[i])))
            return false;
    return true;
}

/* The architecture of this host in ECS's words (CPUArchitecture). */
static const char *host_architecture(void)
{
    struct utsname u;
    if (uname(&u) != 0)
        return NULL;
    if (strcmp(u.machine, "x86_64") == 0)
        return "X86_64";
    if (strcmp(u.machine, "aarch64") == 0 || strcmp(u.machine, "arm64") == 0)
        return "ARM64";
    return NULL;
}

static const char *const cpu_architectures[] = {"X86_64", "ARM64"};
static const char *const os_families[] = {
    "LINUX",
    "WINDOWS_SERVER_2019_FULL",
    "WINDOWS_SERVER_2019_CORE",
    "WINDOWS_SERVER_2016_FULL",
    "WINDOWS_SERVER_2004_CORE",
    "WINDOWS_SERVER_2022_CORE",
    "WINDOWS_SERVER_2022_FULL",
    "WINDOWS_SERVER_2025_CORE",
    "WINDOWS_SERVER_2025_FULL",
    "WINDOWS_SERVER_20H2_CORE",
};

/* runtimePlatform: ECS's values, and this host must be the platform asked
 * for (one host: a task that cannot run here is refused where it is said,
 * not at each RunTask). */
static int get_runtime_platform(const es_json *req, ag_taskdef *td, ag_td_error *e)
{
    const es_json *rp = ag_td_member(req, "runtimePlatform");
    if (!rp)
        return 0;
    if (rp->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "runtimePlatform: must be an object");
    for (size_t i = 0; i < rp->u.object.n; i++) {
        const char *k = rp->u.object.keys[i];
        if (strcmp(k, "cpuArchitecture") != 0 && strcmp(k, "operatingSystemFamily") != 0)
            return ag_td_bad(e, CLIENT, "runtimePlatform.%.64s: not a member of RuntimePlatform",
                             k);
    }
    int rc = get_str(rp, "runtimePlatform", "cpuArchitecture", (str_rule){.max = 32},
                     &td->cpu_architecture, e);
    if (rc || (rc = get_str(rp, "runtimePlatform", "operatingSystemFamily", (str_rule){.max = 32},
                            &td->os_family, e)))
        return rc;
    const char *arch = td->cpu_architecture;
    if (arch && !ag_td_in_list(arch, cpu_architectures, 2))
        return ag_td_bad(e, CLIENT, "runtimePlatform.cpuArchitecture: must be X86_64 or ARM64");
    const char *host = host_architecture();
    if (arch && host && strcmp(arch, host) != 0)
        return ag_td_bad(e, CLIENT,
                         "runtimePlatform.cpuArchitecture: %s, but this host is %s: no container "
                         "instance here can run the task",
                         arch, host);
    const char *os = td->os_family;
    if (os && !ag_td_in_list(os, os_families, sizeof os_families / sizeof *os_families))
        return ag_td_bad(e, CLIENT,
                         "runtimePlatform.operatingSystemFamily: '%s' is not an ECS value", os);
    if (os && strcmp(os, "LINUX") != 0)
        return ag_td_bad(e, CLIENT,
                         "runtimePlatform.operatingSystemFamily: %s, but this host runs Linux "
                         "containers",
                         os);
    return 0;
}

/* dependsOn START: a container starts after those it names have started.
 * The order is computed once here (Kahn's algorithm, ties in definition
 * order); a cycle is refused as ECS refuses it. */
static int start_order(ag_taskdef *td, ag_td_error *e)
{
    size_t n = td->n_containers;
    td->start_order = es_calloc(n, sizeof *td->start_order);
    bool *placed = es_calloc(n, sizeof *placed);
    if (!td->start_order || !placed) {
        es_free(placed);
        return ag_td_nomem(e);
    }
    for (size_t k = 0; k < n; k++) {
        size_t pick = n;
        for (size_t i = 0; i < n && pick == n; i++) {
            if (placed[i])
                continue;
            bool ready = true;
            const char *dj = td->containers[i].depends_on_json;
            es_json *dep = NULL;
            if (dj && es_json_parse(dj, strlen(dj), NULL, &dep, NULL, 0) != 0) {
                es_free(placed);
                return ag_td_nomem(e);
            }
            for (size_t d = 0; dep && d < es_json_len(dep) && ready; d++) {
                const ag_container_def *t =
                    ag_taskdef_container(td, es_json_get_str(es_json_at(dep, d), "containerName"));
                ready = t && placed[(size_t)(t - td->containers)];
            }
            es_json_free(dep);
            if (ready)
                pick = i;
        }
        if (pick == n) {
            es_free(placed);
            return ag_td_bad(
                e, CLIENT,
                "containerDefinitions: the containers' dependsOn form a cycle; ECS needs "
                "an order to start them in");
        }
        placed[pick] = true;
        td->start_order[k] = pick;
    }
    es_free(placed);
    return 0;
}

/* Container i's dependsOn, typed, with ECS's rules between containers: the
 * one named is another container of this definition; COMPLETE and SUCCESS
 * name a non-essential one (an essential one exiting stops the task);
 * HEALTHY names one with a healthCheck. */
static int resolve_depends(ag_taskdef *td, size_t i, ag_td_error *e)
{
    ag_container_def *c = &td->containers[i];
    if (!c->depends_on_json)
        return 0;
    es_json *dep = NULL;
    if (es_json_parse(c->depends_on_json, strlen(c->depends_on_json), NULL, &dep, NULL, 0) != 0)
        return ag_td_nomem(e);
    size_t n = es_json_len(dep);
    int rc = 0;
    if (n && !(c->depends = es_calloc(n, sizeof *c->depends)))
        rc = ag_td_nomem(e);
    for (size_t k = 0; !rc && k < n; k++) {
        const char *cn = es_json_get_str(es_json_at(dep, k), "containerName");
        const char *cond = es_json_get_str(es_json_at(dep, k), "condition");
        const ag_container_def *t = ag_taskdef_container(td, cn);
        size_t ci = 0;
        while (ci < 3 && strcmp(conditions[ci], cond) != 0)
            ci++;
        if (!t || t == c)
            rc = ag_td_bad(e, CLIENT,
                           "containerDefinitions[%zu].dependsOn[%zu].containerName: '%s' is not "
                           "another container of this task definition",
                           i, k, cn);
        else if ((ci == AG_DEP_COMPLETE || ci == AG_DEP_SUCCESS) && t->essential)
            rc = ag_td_bad(e, CLIENT,
                           "containerDefinitions[%zu].dependsOn[%zu].condition: %s can't be set "
                           "on an essential container ('%s'): make it essential: false",
                           i, k, cond, cn);
        else if (ci == AG_DEP_HEALTHY && !t->rt.health_check)
            rc = ag_td_bad(e, CLIENT,
                           "containerDefinitions[%zu].dependsOn[%zu].condition: HEALTHY needs "
                           "a healthCheck on container '%s'",
                           i, k, cn);
        else
            c->depends[c->n_depends++] =
                (ag_dependency){(size_t)(t - td->containers), (ag_dep_condition)ci};
    }
    es_json_free(dep);
    return rc;
}

static const char *const network_modes[] = {"bridge", "host", "awsvpc", "none"};

/* pidMode and ipcMode: "host" joins the host's namespace, ipcMode "none"
 * gives a private one without /dev/shm; "task" (one namespace shared by the
 * task's containers) is refused: ECS holds it in the task's pause
 * container, which this agent does not run, and joining one of the task's
 * own containers would tie every container to that one's life. */
static int get_ns_mode(const es_json *req, const char *member, bool none_ok, char **out,
                       ag_td_error *e)
{
    int rc = get_str(req, "", member, (str_rule){.max = 16}, out, e);
    if (rc || !*out)
        return rc;
    if (strcmp(*out, "host") == 0 || (none_ok && strcmp(*out, "none") == 0))
        return 0;
    if (strcmp(*out, "task") == 0)
        return ag_td_bad(e, CLIENT,
                         "%s: task shares one namespace among the task's containers through a "
                         "pause container, which this agent does not run; use host%s or leave it "
                         "out (each container its own)",
                         member, none_ok ? ", none" : "");
    return ag_td_bad(e, CLIENT, "%s: must be one of host, %stask", member, none_ok ? "none, " : "");
}
static const char *const compat_values[] = {"EC2", "FARGATE", "EXTERNAL"};

static int parse_td(const es_json *req, const ag_td_ctx *ctx, ag_taskdef *td, ag_td_error *e)
{
    if (!req || req->type != ES_JSON_OBJECT)
        return ag_td_bad(e, INVALID, "the request must be a JSON object");
    int rc = check_members(req, AG_FIELD_TASK, "", &td->kept, &td->n_kept, e);
    if (rc)
        return rc;
    rc = get_str(req, "", "family", (str_rule){.max = AG_TD_NAME_MAX, .required = true},
                 &td->family, e);
    if (rc)
        return rc;
    if (!valid_name(td->family))
        return ag_td_bad(e, CLIENT,
                         "family: up to %d letters (uppercase and lowercase), numbers, hyphens and "
                         "underscores are allowed",
                         AG_TD_NAME_MAX);
    if ((rc = get_str(req, "", "executionRoleArn", (str_rule){.max = AG_TD_ARN_MAX},
                      &td->execution_role_arn, e)))
        return rc;
    if (td->execution_role_arn && !valid_role_arn(td->execution_role_arn))
        return ag_td_bad(e, CLIENT,
                         "executionRoleArn: Role is not valid: expected an IAM role ARN "
                         "(arn:aws:iam::ACCOUNT:role/NAME)");
    if ((rc = get_str(req, "", "taskRoleArn", (str_rule){.max = AG_TD_ARN_MAX}, &td->task_role_arn,
                      e)))
        return rc;
    if (td->task_role_arn && !valid_role_arn(td->task_role_arn) &&
        !valid_role_name(td->task_role_arn))
        return ag_td_bad(e, CLIENT,
                         "taskRoleArn: Role is not valid: expected an IAM role ARN or role name");
    if ((rc = get_str(req, "", "networkMode", (str_rule){.max = 16}, &td->network_mode, e)))
        return rc;
    if (td->network_mode && !ag_td_in_list(td->network_mode, network_modes, 4))
        return ag_td_bad(e, CLIENT, "networkMode: must be one of bridge, host, awsvpc, none");
    if (td->network_mode && strcmp(td->network_mode, "awsvpc") == 0)
        return ag_td_bad(e, CLIENT,
                         "networkMode: awsvpc gives each task an elastic network interface, which "
                         "this agent cannot; use bridge, host or none");
    if ((rc = get_ns_mode(req, "pidMode", false, &td->pid_mode, e)) ||
        (rc = get_ns_mode(req, "ipcMode", true, &td->ipc_mode, e)))
        return rc;
    if ((rc = get_strv(req, "", "requiresCompatibilities", 3, 16, false,
                       &td->requires_compatibilities, &td->n_requires_compatibilities, e)))
        return rc;
    for (size_t i = 0; i < td->n_requires_compatibilities; i++) {
        const char *c = td->requires_compatibilities[i];
        if (!ag_td_in_list(c, compat_values, 3))
            return ag_td_bad(e, CLIENT,
                             "requiresCompatibilities[%zu]: must be EC2, FARGATE or EXTERNAL", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(td->requires_compatibilities[j], c) == 0)
                return ag_td_bad(e, CLIENT, "requiresCompatibilities[%zu]: duplicate %s", i, c);
    }
    if ((rc = get_str(req, "", "cpu", (str_rule){.max = AG_TD_SIZE_STR_MAX}, &td->cpu, e)))
        return rc;
    if ((rc = get_str(req, "", "memory", (str_rule){.max = AG_TD_SIZE_STR_MAX}, &td->memory, e)))
        return rc;
    if ((rc = get_runtime_platform(req, td, e)))
        return rc;
    if ((rc = ag_td_volumes_parse(req, td, e)))
        return rc;

    const es_json *cds = ag_td_member(req, "containerDefinitions");
    if (!cds)
        return ag_td_bad(e, CLIENT, "containerDefinitions: required");
    if (cds->type != ES_JSON_ARRAY)
        return ag_td_bad(e, INVALID, "containerDefinitions: must be a list");
    size_t n = es_json_len(cds);
    if (n == 0)
        return ag_td_bad(e, CLIENT, "containerDefinitions: at least one container is required");
    if (n > AG_TD_CONTAINERS_MAX)
        return ag_td_bad(e, CLIENT, "containerDefinitions: %zu containers; at most %d are allowed",
                         n, AG_TD_CONTAINERS_MAX);
    td->containers = es_calloc(n, sizeof *td->containers);
    if (!td->containers)
        return ag_td_nomem(e);
    td->n_containers = n;
    bool any_essential = false, any_secret = false, any_repo_creds = false;
    for (size_t i = 0; i < n; i++) {
        ag_container_def *c = &td->containers[i];
        if ((rc = parse_container(es_json_at(cds, i), i, ctx, td, c, e)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(td->containers[j].name, c->name) == 0)
                return ag_td_bad(
                    e, CLIENT,
                    "containerDefinitions[%zu].name: duplicate container name '%s' (also "
                    "containerDefinitions[%zu])",
                    i, c->name, j);
        any_essential = any_essential || c->essential;
        any_secret =
            any_secret || c->n_secrets || c->n_expands || (c->log && c->log->n_secret_options);
        any_repo_creds = any_repo_creds || c->repository_credentials;
    }
    if (!any_essential)
        return ag_td_bad(
            e, CLIENT,
            "containerDefinitions: the task definition must have at least one essential "
            "container");
    if (any_secret && !td->execution_role_arn)
        return ag_td_bad(
            e, CLIENT,
            "executionRoleArn: When you are specifying container secrets, you must also "
            "specify a value for 'executionRoleArn'.");
    if (any_repo_creds && !td->execution_role_arn)
        return ag_td_bad(
            e, CLIENT,
            "executionRoleArn: When you are specifying repository credentials, you must "
            "also specify a value for 'executionRoleArn'.");
    for (size_t i = 0; i < n; i++)
        if ((rc = resolve_depends(td, i, e)))
            return rc;
    if ((rc = ag_td_volumes_check(td, e)))
        return rc;
    return start_order(td, e);
}

bool ag_taskdef_deregister(ag_taskdef *td, int64_t when)
{
    if (td->status != AG_TD_ACTIVE)
        return false;
    td->status = AG_TD_INACTIVE;
    td->deregistered_at = when;
    return true;
}

int ag_taskdef_from_json(const es_json *req, const ag_td_ctx *ctx, ag_taskdef **out,
                         ag_td_error *err)
{
    ag_taskdef *td = es_calloc(1, sizeof *td);
    if (!td)
        return ag_td_nomem(err);
    td->status = AG_TD_ACTIVE;
    int rc = parse_td(req, ctx, td, err);
    if (rc) {
        ag_taskdef_free(td);
        return rc;
    }
    *out = td;
    return 0;
}

int ag_taskdef_parse(const char *body, size_t len, const ag_td_ctx *ctx, ag_taskdef **out,
                     ag_td_error *err)
{
    if (len > AG_TD_BODY_MAX) {
        ag_td_bad(err, CLIENT, "the task definition is %zu bytes; at most %u are allowed", len,
                  AG_TD_BODY_MAX);
        return -EMSGSIZE;
    }
    es_json *req = NULL;
    char why[128];
    int r = es_json_parse(body, len, &td_json_limits, &req, why, sizeof why);
    if (r == ES_JSON_E_NOMEM)
        return ag_td_nomem(err);
    if (r == ES_JSON_E_TOO_BIG) {
        ag_td_bad(err, CLIENT, "the task definition is larger than %u bytes", AG_TD_BODY_MAX);
        return -EMSGSIZE;
    }
    if (r)
        return ag_td_bad(err, SERIALIZATION, "the request body is not valid JSON: %s", why);
    r = ag_taskdef_from_json(req, ctx, out, err);
    es_json_free(req);
    return r;
}

void ag_taskdef_free(ag_taskdef *td)
{
    if (!td)
        return;
    es_free(td->family);
    es_free(td->execution_role_arn);
    es_free(td->task_role_arn);
    es_free(td->network_mode);
    es_free(td->pid_mode);
    es_free(td->ipc_mode);
    es_strv_free(td->requires_compatibilities, td->n_requires_compatibilities, false);
    es_free(td->cpu);
    es_free(td->memory);
    es_free(td->cpu_architecture);
    es_free(td->os_family);
    es_free(td->start_order);
    ag_td_volumes_free(td->volumes, td->n_volumes);
    free_kvs(td->kept, td->n_kept);
    for (size_t i = 0; i < td->n_containers; i++)
        container_clear(&td->containers[i]);
    es_free(td->containers);
    for (size_t i = 0; i < td->n_warnings; i++)
        es_free(td->warnings[i]);
    es_free(td);
}

const ag_container_def *ag_taskdef_container(const ag_taskdef *td, const char *name)
{
    if (!td || !name)
        return NULL;
    for (size_t i = 0; i < td->n_containers; i++)
        if (td->containers[i].name && strcmp(td->containers[i].name, name) == 0)
            return &td->containers[i];
    return NULL;
}

bool ag_taskdef_has_registry_auth(const ag_taskdef *td)
{
    for (size_t i = 0; td && i < td->n_containers; i++)
        if (td->containers[i].repository_credentials)
            return true;
    return false;
}

bool ag_taskdef_has_env_files(const ag_taskdef *td)
{
    for (size_t i = 0; td && i < td->n_containers; i++)
        if (td->containers[i].n_env_files)
            return true;
    return false;
}

bool ag_taskdef_has_secrets(const ag_taskdef *td)
{
    for (size_t i = 0; td && i < td->n_containers; i++) {
        const ag_container_def *c = &td->containers[i];
        if (c->n_secrets || c->n_expands || (c->log && c->log->n_secret_options))
            return true;
    }
    return false;
}

const char *ag_td_status_name(ag_td_status s)
{
    return s == AG_TD_ACTIVE ? "ACTIVE" : "INACTIVE";
}

/* ---- writer ---- */

static void w_env(es_jw *w, const char *key, const ag_kv *kv, size_t n)
{
    es_jw_key(w, key);
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "name", kv[i].name);
        es_jw_kstr(w, "value", kv[i].value);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

static void w_map(es_jw *w, const char *key, const ag_kv *kv, size_t n)
{
    es_jw_key(w, key);
    es_jw_obj(w);
    for (size_t i = 0; i < n; i++)
        es_jw_kstr(w, kv[i].name, kv[i].value);
    es_jw_obj_end(w);
}

static void w_refs(es_jw *w, const char *key, const ag_secret_ref *s, size_t n)
{
    es_jw_key(w, key);
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "name", s[i].name);
        es_jw_kstr(w, "valueFrom", s[i].value_from);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

static void w_container(es_jw *w, const ag_container_def *c)
{
    es_jw_obj(w);
    es_jw_kstr(w, "name", c->name);
    es_jw_kstr(w, "image", c->image);
    if (c->has_cpu)
        es_jw_kint(w, "cpu", c->cpu);
    if (c->has_memory)
        es_jw_kint(w, "memory", c->memory);
    es_jw_kbool(w, "essential", c->essential);
    ag_td_runtime_write(&c->rt, w);
    ag_td_cvolumes_write(&c->cv, w);
    ag_td_w_strv(w, "entryPoint", c->entry_point, c->n_entry_point);
    ag_td_w_strv(w, "command", c->command, c->n_command);
    w_env(w, "environment", c->environment, c->n_environment);
    ag_td_envfiles_write(w, c->env_files, c->n_env_files);
    ag_td_restart_write(w, &c->restart);
    if (c->n_secrets)
        w_refs(w, "secrets", c->secrets, c->n_secrets);
    if (c->repository_credentials) {
        es_jw_key(w, "repositoryCredentials");
        es_jw_obj(w);
        es_jw_kstr(w, "credentialsParameter", c->repository_credentials->value_from);
        es_jw_obj_end(w);
    }
    if (c->depends_on_json) {
        es_json *dep = NULL;
        if (es_json_parse(c->depends_on_json, strlen(c->depends_on_json), NULL, &dep, NULL, 0) ==
            0) {
            es_jw_key(w, "dependsOn");
            es_jw_value(w, dep);
            es_json_free(dep);
        } else if (!w->err) {
            w->err = -ENOMEM;
        }
    }
    if (c->has_stop_timeout)
        es_jw_kint(w, "stopTimeout", c->stop_timeout);
    if (c->has_start_timeout)
        es_jw_kint(w, "startTimeout", c->start_timeout);
    if (c->user)
        es_jw_kstr(w, "user", c->user);
    if (c->working_directory)
        es_jw_kstr(w, "workingDirectory", c->working_directory);
    if (c->n_docker_labels)
        w_map(w, "dockerLabels", c->docker_labels, c->n_docker_labels);
    if (c->log) {
        es_jw_key(w, "logConfiguration");
        es_jw_obj(w);
        es_jw_kstr(w, "logDriver", c->log->driver);
        if (c->log->n_options)
            w_map(w, "options", c->log->options, c->log->n_options);
        if (c->log->n_secret_options)
            w_refs(w, "secretOptions", c->log->secret_options, c->log->n_secret_options);
        es_jw_obj_end(w);
    }
    w_kept(w, c->kept, c->n_kept, NULL);
    es_jw_obj_end(w);
}

/* describe: ECS's TaskDefinition, which has no tags (they are the answer's
 * own member, from the store's tag table: agent/api/api.c); else the request form the store keeps
 */
static void w_body(const ag_taskdef *td, es_jw *w, bool describe)
{
    es_jw_key(w, "containerDefinitions");
    es_jw_arr(w);
    for (size_t i = 0; i < td->n_containers; i++)
        w_container(w, &td->containers[i]);
    es_jw_arr_end(w);
    es_jw_kstr(w, "family", td->family);
    if (td->task_role_arn)
        es_jw_kstr(w, "taskRoleArn", td->task_role_arn);
    if (td->execution_role_arn)
        es_jw_kstr(w, "executionRoleArn", td->execution_role_arn);
    if (td->network_mode)
        es_jw_kstr(w, "networkMode", td->network_mode);
    if (td->pid_mode)
        es_jw_kstr(w, "pidMode", td->pid_mode);
    if (td->ipc_mode)
        es_jw_kstr(w, "ipcMode", td->ipc_mode);
    if (td->cpu_architecture || td->os_family) {
        es_jw_key(w, "runtimePlatform");
        es_jw_obj(w);
        if (td->cpu_architecture)
            es_jw_kstr(w, "cpuArchitecture", td->cpu_architecture);
        if (td->os_family)
            es_jw_kstr(w, "operatingSystemFamily", td->os_family);
        es_jw_obj_end(w);
    }
    ag_td_volumes_write(td->volumes, td->n_volumes, w);
    w_kept(w, td->kept, td->n_kept, describe ? "tags" : NULL);
}

void ag_taskdef_write_request(const ag_taskdef *td, es_jw *w)
{
    es_jw_obj(w);
    w_body(td, w, false);
    if (td->requires_compatibilities)
        ag_td_w_strv(w, "requiresCompatibilities", td->requires_compatibilities,
                     td->n_requires_compatibilities);
    if (td->cpu)
        es_jw_kstr(w, "cpu", td->cpu);
    if (td->memory)
        es_jw_kstr(w, "memory", td->memory);
    es_jw_obj_end(w);
}

int ag_taskdef_arn(const ag_taskdef *td, const char *region, const char *account, char *out,
                   size_t outlen)
{
    int n = snprintf(out, outlen, "arn:aws:ecs:%s:%s:task-definition/%s:%" PRId64,
                     region ? region : "", account ? account : "", td->family, td->revision);
    return n < 0 || (size_t)n >= outlen ? -EMSGSIZE : 0;
}

void ag_taskdef_write_describe(const ag_taskdef *td, const char *region, const char *account,
                               es_jw *w)
{
    char arn[AG_TD_NAME_MAX + 128];
    es_jw_obj(w);
    if (ag_taskdef_arn(td, region, account, arn, sizeof arn) == 0)
        es_jw_kstr(w, "taskDefinitionArn", arn);
    w_body(td, w, true);
    es_jw_kint(w, "revision", td->revision);
    if (!td->volumes) { /* ECS describes no volumes as [] (w_body writes given ones) */
        es_jw_key(w, "volumes");
        es_jw_arr(w);
        es_jw_arr_end(w);
    }
    es_jw_kstr(w, "status", ag_td_status_name(td->status));
    es_jw_key(w, "placementConstraints");
    es_jw_arr(w);
    es_jw_arr_end(w);
    /* What we validated it against: what it asked for, else EC2 (one host
     * running Docker is what ECS calls EC2 / EXTERNAL). */
    es_jw_key(w, "compatibilities");
    es_jw_arr(w);
    if (td->n_requires_compatibilities)
        for (size_t i = 0; i < td->n_requires_compatibilities; i++)
            es_jw_str(w, td->requires_compatibilities[i]);
    else
        es_jw_str(w, "EC2");
    es_jw_arr_end(w);
    if (td->requires_compatibilities)
        ag_td_w_strv(w, "requiresCompatibilities", td->requires_compatibilities,
                     td->n_requires_compatibilities);
    if (td->cpu)
        es_jw_kstr(w, "cpu", td->cpu);
    if (td->memory)
        es_jw_kstr(w, "memory", td->memory);
    if (td->registered_at)
        es_jw_kint(w, "registeredAt", td->registered_at);
    if (td->status == AG_TD_INACTIVE && td->deregistered_at)
        es_jw_kint(w, "deregisteredAt", td->deregistered_at);
    es_jw_obj_end(w);
}

/* ---- RunTask overrides ---- */

void ag_overrides_free(ag_overrides *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_containers; i++) {
        es_free(o->containers[i].name);
        es_strv_free(o->containers[i].command, o->containers[i].n_command, false);
        free_kvs(o->containers[i].environment, o->containers[i].n_environment);
    }
    es_free(o->containers);
    es_free(o);
}

int ag_overrides_parse(const es_json *overrides, const ag_taskdef *td, ag_overrides **out,
                       ag_td_error *err)
{
    ag_overrides *o = es_calloc(1, sizeof *o);
    if (!o)
        return ag_td_nomem(err);
    int rc = 0;
    if (!overrides || overrides->type == ES_JSON_NULL)
        goto done;
    if (overrides->type != ES_JSON_OBJECT) {
        rc = ag_td_bad(err, INVALID, "overrides: must be an object");
        goto fail;
    }
    const es_json *cos = ag_td_member(overrides, "containerOverrides");
    if (!cos)
        goto done;
    if (cos->type != ES_JSON_ARRAY) {
        rc = ag_td_bad(err, INVALID, "overrides.containerOverrides: must be a list");
        goto fail;
    }
    size_t n = es_json_len(cos);
    if (n > AG_TD_CONTAINERS_MAX) {
        rc = ag_td_bad(err, INVALID, "overrides.containerOverrides: more than %d entries",
                       AG_TD_CONTAINERS_MAX);
        goto fail;
    }
    o->containers = es_calloc(n + 1, sizeof *o->containers);
    if (!o->containers) {
        rc = ag_td_nomem(err);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX_];
        ag_td_pathf(path, sizeof path, "overrides.containerOverrides[%zu]", i);
        const es_json *co = es_json_at(cos, i);
        if (co->type != ES_JSON_OBJECT) {
            rc = ag_td_bad(err, INVALID, "%s: must be an object", path);
            goto fail;
        }
        ag_container_override *c = &o->containers[i];
        o->n_containers = i + 1;
        rc = get_str(co, path, "name", (str_rule){.max = AG_TD_NAME_MAX, .required = true},
                     &c->name, err);
        if (rc)
            goto fail;
        if (!ag_taskdef_container(td, c->name)) {
            rc = ag_td_bad(err, INVALID,
                           "%s.name: Override for container named %s is not a container in the "
                           "TaskDefinition.",
                           path, c->name);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(o->containers[j].name, c->name) == 0) {
                rc = ag_td_bad(err, INVALID, "%s.name: a second override for container %s", path,
                               c->name);
                goto fail;
            }
        rc = get_strv(co, path, "command", AG_TD_ARGV_MAX, AG_TD_ARG_MAX, true, &c->command,
                      &c->n_command, err);
        if (rc)
            goto fail;
        rc = get_env(co, path, "environment", &c->environment, &c->n_environment, err);
        if (rc)
            goto fail;
    }
done:
    *out = o;
    return 0;
fail:
    ag_overrides_free(o);
    return rc;
}

const ag_container_override *ag_overrides_for(const ag_overrides *o, const char *name)
{
    for (size_t i = 0; o && name && i < o->n_containers; i++)
        if (o->containers[i].name && strcmp(o->containers[i].name, name) == 0)
            return &o->containers[i];
    return NULL;
}
