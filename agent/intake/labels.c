/* labels.c - a container's ecs-secrets.* labels as a one-container task
 * definition (labels.h). */
#include "agent/intake/labels.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/tasks/td_files.h"
#include "common/buf.h"

#define P AG_INTAKE_PREFIX
#define SECRET P "secret."
#define LOG_SECRET P "log-secret."
#define EXPAND AG_EXPAND_LABEL_PREFIX
/* the synthetic definition's JSON: a task definition's own maximum */
#define TD_JSON_MAX AG_TD_BODY_MAX

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A named reference (secret.<ENV> / log-secret.<option>) into list. */
static int add_ref(ag_intake_ref *list, size_t *n, size_t max, const char *key, const char *name,
                   const char *value, char *err, size_t errlen)
{
    if (!*name)
        return fail(err, errlen, "label %.100s: names no variable or option after the dot", key);
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i].name, name) == 0)
            return fail(err, errlen, "label %.200s is given twice", key);
    if (*n >= max)
        return fail(err, errlen, "more than %zu labels %.40s*", max, key);
    list[(*n)++] = (ag_intake_ref){name, value};
    return 0;
}

static int set_once(const char **slot, const char *key, const char *value, char *err, size_t errlen)
{
    if (*slot)
        return fail(err, errlen, "label %s is given twice", key);
    *slot = value;
    return 0;
}

static int read_one(const char *key, const es_json *v, ag_intake_req *rq, char *err, size_t errlen)
{
    if (strlen(key) > AG_INTAKE_LABEL_KEY_MAX)
        return fail(err, errlen, "a label %.60s... is longer than %d bytes", key,
                    AG_INTAKE_LABEL_KEY_MAX);
    const char *value = es_json_as_str(v);
    if (!value || strlen(value) != v->u.string.len)
        return fail(err, errlen, "label %.200s: the value must be a string", key);
    if (v->u.string.len > AG_INTAKE_LABEL_VALUE_MAX)
        return fail(err, errlen, "label %.200s: the value is longer than %d bytes", key,
                    AG_INTAKE_LABEL_VALUE_MAX);
    if (starts(key, SECRET))
        return add_ref(rq->env, &rq->n_env, AG_TD_SECRETS_MAX, key, key + strlen(SECRET), value,
                       err, errlen);
    if (starts(key, LOG_SECRET))
        return add_ref(rq->log, &rq->n_log, AG_TD_SECRET_OPTIONS_MAX, key, key + strlen(LOG_SECRET),
                       value, err, errlen);
    if (starts(key, EXPAND)) /* named by the whole key: the prefix may be empty */
        return add_ref(rq->expand, &rq->n_expand, AG_EXPAND_LABELS_MAX, key, key, value, err,
                       errlen);
    if (starts(key, AG_FILE_POLICY_LABEL_PREFIX) && strcmp(value, "frozen") != 0)
        return fail(err, errlen,
                    "label %.200s: only frozen secret files are served on the Docker socket (a "
                    "refreshed file's directory is its task's, and a socket container outlives "
                    "its task); run the container as a task of the ECS API for refresh",
                    key);
    if (starts(key, AG_FILE_LABEL_PREFIX) || starts(key, AG_FILE_POLICY_LABEL_PREFIX))
        return add_ref(rq->files, &rq->n_files, sizeof rq->files / sizeof *rq->files, key, key,
                       value, err, errlen);
    if (strcmp(key, P "execution-role") == 0)
        return set_once(&rq->role, key, value, err, errlen);
    if (strcmp(key, P "task-definition") == 0)
        return set_once(&rq->td_ref, key, value, err, errlen);
    if (strcmp(key, P "container") == 0)
        return set_once(&rq->container, key, value, err, errlen);
    return fail(err, errlen,
                "unknown label %.200s (known: " SECRET "<VARIABLE>, " LOG_SECRET "<option>, " EXPAND
                "<PREFIX>, " AG_FILE_LABEL_PREFIX "<VARIABLE>, " AG_FILE_POLICY_LABEL_PREFIX
                "<VARIABLE>, " P "execution-role, " P "task-definition, " P "container)",
                key);
}

/* The two forms are not mixed: a registered definition brings its own role
 * and secrets. */
static int check_form(const ag_intake_req *rq, char *err, size_t errlen)
{
    if (rq->td_ref) {
        if (rq->role || rq->n_env || rq->n_log || rq->n_expand || rq->n_files)
            return fail(err, errlen,
                        "label " P "task-definition takes the role and secrets of the "
                        "definition: it cannot be given with " P "execution-role, " SECRET
                        "*, " LOG_SECRET "*, " EXPAND "* or " AG_FILE_LABEL_PREFIX "*");
        if (!rq->container)
            return fail(err, errlen, "label " P "task-definition needs " P "container=<name>");
        return 0;
    }
    if (rq->container)
        return fail(err, errlen, "label " P "container needs " P "task-definition");
    if (!rq->role)
        return fail(err, errlen,
                    "labels " SECRET "*, " LOG_SECRET "* and " EXPAND "* need " P
                    "execution-role=<role ARN>: the role that reads them");
    if (!rq->n_env && !rq->n_log && !rq->n_expand)
        return fail(err, errlen,
                    "label " P "execution-role names no secret to read (add " SECRET
                    "<VARIABLE>=<valueFrom>)");
    return 0;
}

int ag_intake_read_labels(const es_json *labels, ag_intake_req *rq, char *err, size_t errlen)
{
    memset(rq, 0, sizeof *rq);
    if (!labels || labels->type != ES_JSON_OBJECT)
        return 0;
    bool any = false;
    for (size_t i = 0; i < labels->u.object.n; i++) {
        const char *key = labels->u.object.keys[i];
        if (!starts(key, P))
            continue;
        any = true;
        int r = read_one(key, labels->u.object.values[i], rq, err, errlen);
        if (r)
            return r;
    }
    if (!any)
        return 0;
    int r = check_form(rq, err, errlen);
    return r ? r : 1;
}

int ag_intake_td_ref(const char *ref, char *fam, size_t famlen, long long *rev)
{
    const char *colon = strchr(ref, ':');
    size_t n = colon ? (size_t)(colon - ref) : strlen(ref);
    *rev = 0;
    if (n == 0 || n >= famlen || n > AG_TD_NAME_MAX)
        return -EINVAL;
    if (colon) {
        char *end = NULL;
        if (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
            strlen(colon + 1) > 9)
            return -EINVAL;
        *rev = strtoll(colon + 1, &end, 10);
        if (*rev <= 0)
            return -EINVAL;
    }
    memcpy(fam, ref, n);
    fam[n] = '\0';
    return 0;
}

/* ---- the synthetic definition ---- */

static void w_refs(es_jw *w, const char *key, const ag_intake_ref *r, size_t n)
{
    es_jw_key(w, key);
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "name", r[i].name);
        es_jw_kstr(w, "valueFrom", r[i].value_from);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

/* The definition of labels: the log driver is a stand-in (the plan does not
 * depend on it; the client's own LogConfig.Type stays as it sent it). */
static void w_from_labels(es_jw *w, const ag_intake_req *rq)
{
    es_jw_kstr(w, "family", AG_INTAKE_FAMILY);
    es_jw_kstr(w, "executionRoleArn", rq->role);
    es_jw_key(w, "containerDefinitions");
    es_jw_arr(w);
    es_jw_obj(w);
    es_jw_kstr(w, "name", AG_INTAKE_CONTAINER);
    es_jw_kstr(w, "image", "docker");
    w_refs(w, "secrets", rq->env, rq->n_env);
    if (rq->n_expand || rq->n_files) { /* td_expand.c and td_files.c read them there */
        es_jw_key(w, "dockerLabels");
        es_jw_obj(w);
        for (size_t i = 0; i < rq->n_expand; i++)
            es_jw_kstr(w, rq->expand[i].name, rq->expand[i].value_from);
        for (size_t i = 0; i < rq->n_files; i++)
            es_jw_kstr(w, rq->files[i].name, rq->files[i].value_from);
        es_jw_obj_end(w);
    }
    if (rq->n_log) {
        es_jw_key(w, "logConfiguration");
        es_jw_obj(w);
        es_jw_kstr(w, "logDriver", "json-file");
        w_refs(w, "secretOptions", rq->log, rq->n_log);
        es_jw_obj_end(w);
    }
    es_jw_obj_end(w);
    es_jw_arr_end(w);
}

static void w_secret_refs(es_jw *w, const char *key, const ag_secret_ref *r, size_t n)
{
    es_jw_key(w, key);
    es_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        es_jw_obj(w);
        es_jw_kstr(w, "name", r[i].name);
        es_jw_kstr(w, "valueFrom", r[i].value_from);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
}

/* One container of a registered definition: its role, secrets and log
 * configuration (what the client's create takes from it). */
static void w_from_registered(es_jw *w, const ag_taskdef *td, const ag_container_def *cd)
{
    es_jw_kstr(w, "family", AG_INTAKE_FAMILY);
    es_jw_kstr(w, "executionRoleArn", td->execution_role_arn);
    es_jw_key(w, "containerDefinitions");
    es_jw_arr(w);
    es_jw_obj(w);
    es_jw_kstr(w, "name", cd->name);
    es_jw_kstr(w, "image", cd->image);
    w_secret_refs(w, "secrets", cd->secrets, cd->n_secrets);
    if (cd->n_expands || cd->n_files) { /* its expansion and file labels only: the others are
                                          the client's */
        es_jw_key(w, "dockerLabels");
        es_jw_obj(w);
        for (size_t i = 0; i < cd->n_expands; i++)
            es_jw_kstr(w, cd->expands[i].ref->name, cd->expands[i].ref->value_from);
        for (size_t i = 0; i < cd->n_docker_labels; i++)
            if (starts(cd->docker_labels[i].name, AG_FILE_LABEL_PREFIX) ||
                starts(cd->docker_labels[i].name, AG_FILE_POLICY_LABEL_PREFIX))
                es_jw_kstr(w, cd->docker_labels[i].name, cd->docker_labels[i].value);
        es_jw_obj_end(w);
    }
    if (cd->log) {
        es_jw_key(w, "logConfiguration");
        es_jw_obj(w);
        es_jw_kstr(w, "logDriver", cd->log->driver);
        es_jw_key(w, "options");
        es_jw_obj(w);
        for (size_t i = 0; i < cd->log->n_options; i++)
            es_jw_kstr(w, cd->log->options[i].name, cd->log->options[i].value);
        es_jw_obj_end(w);
        w_secret_refs(w, "secretOptions", cd->log->secret_options, cd->log->n_secret_options);
        es_jw_obj_end(w);
    }
    es_jw_obj_end(w);
    es_jw_arr_end(w);
}

/* The parser's field path, for a definition made from labels, as the label
 * it came from: "containerDefinitions[0].secrets[2].valueFrom: why" becomes
 * "label ecs-secrets.secret.NAME: why". */
static void say_label(const ag_intake_req *rq, const char *msg, char *err, size_t errlen)
{
    static const char *const paths[] = {"containerDefinitions[0].secrets[",
                                        "containerDefinitions[0].logConfiguration.secretOptions["};
    for (int k = 0; k < 2; k++) {
        size_t pl = strlen(paths[k]);
        if (strncmp(msg, paths[k], pl) != 0)
            continue;
        char *end = NULL;
        unsigned long i = strtoul(msg + pl, &end, 10);
        const char *why = strstr(msg, ": ");
        size_t n = k ? rq->n_log : rq->n_env;
        if (!end || *end != ']' || i >= n || !why)
            break;
        snprintf(err, errlen, "label %s%.*s: %s", k ? LOG_SECRET : SECRET,
                 (int)strnlen((k ? rq->log : rq->env)[i].name, AG_INTAKE_LABEL_KEY_MAX),
                 (k ? rq->log : rq->env)[i].name, why + 2);
        return;
    }
    static const char labels_path[] = "containerDefinitions[0].dockerLabels[\"";
    if (strncmp(msg, labels_path, sizeof labels_path - 1) == 0) { /* an expansion label */
        const char *key = msg + sizeof labels_path - 1, *end = strstr(key, "\"]: ");
        if (end) {
            snprintf(err, errlen, "label %.*s: %s", (int)(end - key), key, end + 4);
            return;
        }
    }
    if (strncmp(msg, "executionRoleArn: ", 18) == 0)
        snprintf(err, errlen, "label " P "execution-role: %s", msg + 18);
    else
        snprintf(err, errlen, "labels " P "*: %s", msg);
}

int ag_intake_taskdef(const ag_intake_req *rq, const ag_taskdef *registered, const ag_td_ctx *ctx,
                      ag_taskdef **out, char *err, size_t errlen)
{
    const ag_container_def *cd = NULL;
    if (registered) {
        cd = ag_taskdef_container(registered, rq->container);
        if (!cd)
            return fail(err, errlen, "the task definition %s:%lld has no container %.255s",
                        registered->family, (long long)registered->revision, rq->container);
        /* a refreshed file's directory is its task's; a socket container
         * outlives its task (labels.h) */
        for (size_t i = 0; i < cd->n_files; i++)
            if (cd->files[i].policy != AG_FILE_FROZEN)
                return fail(err, errlen,
                            "the task definition %s:%lld's container %.255s has a refreshed "
                            "secret file (%s): only frozen files are served on the Docker "
                            "socket",
                            registered->family, (long long)registered->revision, rq->container,
                            cd->secrets[cd->files[i].secret].name);
        if (!registered->execution_role_arn)
            return fail(err, errlen, "the task definition %s:%lld has no executionRoleArn",
                        registered->family, (long long)registered->revision);
    }
    es_buf b;
    es_buf_init(&b, TD_JSON_MAX);
    es_jw w;
    es_jw_init(&w, &b);
    es_jw_obj(&w);
    if (registered)
        w_from_registered(&w, registered, cd);
    else
        w_from_labels(&w, rq);
    es_jw_obj_end(&w);
    int r = es_jw_finish(&w);
    if (r) {
        es_buf_free(&b);
        return r == -ENOMEM ? r
                            : fail(err, errlen, "the labels make a task definition over %u bytes",
                                   (unsigned)TD_JSON_MAX);
    }
    ag_td_error te = {0};
    r = ag_taskdef_parse(b.data, b.len, ctx, out, &te);
    es_buf_free(&b);
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        if (registered)
            snprintf(err, errlen, "the task definition %s:%lld: %s", registered->family,
                     (long long)registered->revision, te.message);
        else
            say_label(rq, te.message, err, errlen);
        return -EINVAL;
    }
    return 0;
}
