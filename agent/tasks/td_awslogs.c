/* td_awslogs.c - awslogs as ECS runs it (td_awslogs.h). */
#include "agent/tasks/td_awslogs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "agent/tasks/taskdef.h"
#include "agent/tasks/td_json.h"
#include "common/alloc.h"
#include "common/secure.h"

#define CLIENT "ClientException"

#define O_PREFIX "awslogs-stream-prefix"
#define O_STREAM "awslogs-stream"
#define O_GROUP "awslogs-group"
#define O_REGION "awslogs-region"
#define O_CREDS "awslogs-credentials-endpoint"
#define O_CREATE_GROUP "awslogs-create-group"
#define O_CREATE_STREAM "awslogs-create-stream"
#define O_DATETIME "awslogs-datetime-format"
#define O_MULTILINE "awslogs-multiline-pattern"
#define O_FLUSH "awslogs-force-flush-interval-seconds"
#define O_MAX_EVENTS "awslogs-max-buffered-events"
#define O_MODE "mode"
#define O_BUFFER "max-buffer-size"

/* What Docker's awslogs driver takes (its ValidateLogOpt, 20.10 and later:
 * create-stream and format came after 20.10, whose dockerd refuses them at
 * create in its own words), the two every driver takes (mode,
 * max-buffer-size), and ECS's own stream prefix. The credentials endpoint
 * is Docker's too, but the agent sets it (refused below). */
static const char *const known[] = {
    O_GROUP, O_STREAM,   O_CREATE_GROUP, O_CREATE_STREAM, O_REGION,     "awslogs-endpoint",
    "tag",   O_DATETIME, O_MULTILINE,    O_FLUSH,         O_MAX_EVENTS, "awslogs-format",
    O_MODE,  O_BUFFER,   O_PREFIX,
};
#define N_KNOWN (sizeof known / sizeof *known)

static const char *find(const ag_logconf *l, const char *name)
{
    for (size_t i = 0; i < l->n_options; i++)
        if (strcmp(l->options[i].name, name) == 0)
            return l->options[i].value;
    return NULL;
}

static bool secret_named(const ag_logconf *l, const char *name)
{
    for (size_t i = 0; i < l->n_secret_options; i++)
        if (strcmp(l->secret_options[i].name, name) == 0)
            return true;
    return false;
}

/* Go's strconv.ParseBool, which Docker's driver uses. */
static bool go_bool(const char *v)
{
    static const char *const ok[] = {"1", "t", "T", "TRUE",  "true",  "True",
                                     "0", "f", "F", "FALSE", "false", "False"};
    return ag_td_in_list(v, ok, sizeof ok / sizeof *ok);
}

/* strconv.Atoi's digits with a value above 0, as Docker's check wants. */
static bool positive_int(const char *v)
{
    const char *s = *v == '+' ? v + 1 : v;
    size_t n = strlen(s);
    if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
        return false;
    return strspn(s, "0") != n;
}

static int check_name(const char *name, const char *path, const char *what, ag_td_error *e)
{
    if (strcmp(name, O_CREDS) == 0)
        return ag_td_bad(e, CLIENT,
                         "%s.%s: '%s' is set by the agent: the awslogs driver's credentials are "
                         "the task's execution role's, as ECS gives them",
                         path, what, O_CREDS);
    if (!ag_td_in_list(name, known, N_KNOWN))
        return ag_td_bad(e, CLIENT,
                         "%s.%s: '%.128s' is not an option of the awslogs log driver (%s, %s, "
                         "%s, %s, awslogs-endpoint, %s, %s, %s, %s, %s, %s, awslogs-format, tag, "
                         "%s, %s)",
                         path, what, name, O_GROUP, O_REGION, O_PREFIX, O_STREAM, O_CREATE_GROUP,
                         O_CREATE_STREAM, O_DATETIME, O_MULTILINE, O_FLUSH, O_MAX_EVENTS, O_MODE,
                         O_BUFFER);
    return 0;
}

int ag_awslogs_stream_name(const char *prefix, const char *container, const char *task_id,
                           char *out, size_t n)
{
    size_t cap = n < AG_AWSLOGS_STREAM_MAX + 1 ? n : AG_AWSLOGS_STREAM_MAX + 1;
    int k = snprintf(out, cap, "%s/%s/%s", prefix, container, task_id);
    return k < 0 || (size_t)k >= cap ? -EMSGSIZE : 0;
}

int ag_awslogs_check(const ag_logconf *l, const char *container, const char *path, ag_td_error *e)
{
    if (!l || strcmp(l->driver, AG_AWSLOGS_DRIVER) != 0)
        return 0;
    int rc;
    for (size_t i = 0; i < l->n_options; i++)
        if ((rc = check_name(l->options[i].name, path, "options", e)))
            return rc;
    for (size_t i = 0; i < l->n_secret_options; i++)
        if ((rc = check_name(l->secret_options[i].name, path, "secretOptions", e)))
            return rc;
    const char *group = find(l, O_GROUP);
    if ((!group || !*group) && !secret_named(l, O_GROUP))
        return ag_td_bad(e, CLIENT, "%s.options.%s: required by the awslogs log driver", path,
                         O_GROUP);
    static const char *const bools[] = {O_CREATE_GROUP, O_CREATE_STREAM};
    for (size_t i = 0; i < 2; i++) {
        const char *v = find(l, bools[i]);
        if (v && *v && !go_bool(v))
            return ag_td_bad(e, CLIENT, "%s.options.%s: '%.64s' is not true or false", path,
                             bools[i], v);
    }
    static const char *const counts[] = {O_FLUSH, O_MAX_EVENTS};
    for (size_t i = 0; i < 2; i++) {
        const char *v = find(l, counts[i]);
        if (v && *v && !positive_int(v))
            return ag_td_bad(e, CLIENT, "%s.options.%s: '%.64s' is not a positive integer", path,
                             counts[i], v);
    }
    if ((find(l, O_DATETIME) || secret_named(l, O_DATETIME)) &&
        (find(l, O_MULTILINE) || secret_named(l, O_MULTILINE)))
        return ag_td_bad(e, CLIENT, "%s.options: %s and %s cannot both be set", path, O_DATETIME,
                         O_MULTILINE);
    const char *mode = find(l, O_MODE);
    if (mode && strcmp(mode, "blocking") != 0 && strcmp(mode, "non-blocking") != 0)
        return ag_td_bad(e, CLIENT, "%s.options.mode: '%.64s' is not blocking or non-blocking",
                         path, mode);
    if (mode && strcmp(mode, "blocking") == 0 && (find(l, O_BUFFER) || secret_named(l, O_BUFFER)))
        return ag_td_bad(e, CLIENT, "%s.options.%s: only with mode non-blocking", path, O_BUFFER);
    const char *prefix = find(l, O_PREFIX);
    if (!prefix)
        return secret_named(l, O_PREFIX)
                   ? ag_td_bad(e, CLIENT,
                               "%s.secretOptions: %s names the stream the agent makes; give it "
                               "in options",
                               path, O_PREFIX)
                   : 0;
    if (find(l, O_STREAM) || secret_named(l, O_STREAM))
        return ag_td_bad(e, CLIENT,
                         "%s.options: %s and %s cannot both be set (the prefix makes the "
                         "stream's name <prefix>/%s/<task id>)",
                         path, O_PREFIX, O_STREAM, container);
    if (!*prefix || strpbrk(prefix, ":*"))
        return ag_td_bad(e, CLIENT,
                         "%s.options.%s: a log stream name's prefix is not empty and has no ':' "
                         "or '*'",
                         path, O_PREFIX);
    char name[AG_AWSLOGS_STREAM_MAX + 1];
    char id[AG_AWSLOGS_TASK_ID_LEN + 1];
    memset(id, '0', AG_AWSLOGS_TASK_ID_LEN);
    id[AG_AWSLOGS_TASK_ID_LEN] = '\0';
    if (ag_awslogs_stream_name(prefix, container, id, name, sizeof name) < 0)
        return ag_td_bad(e, CLIENT,
                         "%s.options.%s: the stream's name <prefix>/%s/<task id> would be longer "
                         "than %d characters",
                         path, O_PREFIX, container, AG_AWSLOGS_STREAM_MAX);
    return 0;
}

/* ---- launch ---- */

bool ag_awslogs_uses_exec_role(const ag_taskdef *td, size_t i)
{
    if (!td || !td->execution_role_arn)
        return false;
    for (size_t k = 0; k < td->n_containers; k++) {
        const ag_logconf *l = td->containers[k].log;
        if ((i == SIZE_MAX || i == k) && l && strcmp(l->driver, AG_AWSLOGS_DRIVER) == 0)
            return true;
    }
    return false;
}

static ssize_t index_of(const ag_kv *kv, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

/* Sets name to value: replaces the value of an entry of that name, or
 * appends one. */
static int set(ag_kv *kv, size_t *n, size_t cap, const char *name, const char *value)
{
    char *v = es_strdup(value);
    if (!v)
        return -ENOMEM;
    ssize_t at = index_of(kv, *n, name);
    if (at >= 0) {
        es_free_secret_str(kv[at].value);
        kv[at].value = v;
        return 0;
    }
    if (*n >= cap) {
        es_free(v);
        return -ENOSPC;
    }
    if (!(kv[*n].name = es_strdup(name))) {
        es_free(v);
        return -ENOMEM;
    }
    kv[*n].value = v;
    (*n)++;
    return 0;
}

static int set_default(ag_kv *kv, size_t *n, size_t cap, const char *name, const char *value)
{
    return index_of(kv, *n, name) >= 0 ? 0 : set(kv, n, cap, name, value);
}

int ag_awslogs_apply(ag_kv *kv, size_t *n, size_t cap, const ag_awslogs_launch *l)
{
    int r;
    ssize_t at = index_of(kv, *n, O_PREFIX);
    if (at >= 0) {
        char stream[AG_AWSLOGS_STREAM_MAX + 1];
        if ((r = ag_awslogs_stream_name(kv[at].value, l->container, l->task_id, stream,
                                        sizeof stream)) < 0)
            return r;
        /* the prefix's entry leaves the list: Docker refuses what it does not know */
        es_free(kv[at].name);
        es_free_secret_str(kv[at].value);
        memmove(&kv[at], &kv[at + 1], (*n - (size_t)at - 1) * sizeof *kv);
        (*n)--;
        kv[*n] = (ag_kv){0};
        if ((r = set(kv, n, cap, O_STREAM, stream)) < 0)
            return r;
    }
    if (l->region && *l->region && (r = set_default(kv, n, cap, O_REGION, l->region)) < 0)
        return r;
    if ((r = set_default(kv, n, cap, O_MODE, AG_AWSLOGS_MODE_DEFAULT)) < 0)
        return r;
    at = index_of(kv, *n, O_MODE);
    if (strcmp(kv[at].value, "non-blocking") == 0 &&
        (r = set_default(kv, n, cap, O_BUFFER, AG_AWSLOGS_BUFFER_DEFAULT)) < 0)
        return r;
    if (l->credentials_uri && (r = set(kv, n, cap, O_CREDS, l->credentials_uri)) < 0)
        return r;
    return 0;
}
