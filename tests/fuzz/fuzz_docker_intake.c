/* Fuzzes the Docker-socket intake's parsers (issue 19 part 2): a create body
 * through dk_create_body_parse, its ecs-secrets.* labels
 * (ag_intake_read_labels) and the one-container task definition they make
 * (ag_intake_taskdef), then the rewrite with a value for every variable and
 * log option the labels name; an input beginning with 'R' is an
 * ECS_SECRETS_DOCKER_ROLES value instead. No crash, and:
 *   - the rewritten body parses again, and its Env holds each variable of
 *     the edit exactly once, with its value;
 *   - every rule the roles parser accepts has an ARN of IAM. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent/intake/labels.h"
#include "common/alloc.h"
#include "config/docker_roles.h"
#include "docker/create_body.h"
#include "docker/docker.h"

#define VALUE "fuzz-value"

static void roles(const char *s)
{
    cf_docker_rule *r = NULL;
    size_t n = 0;
    char err[256];
    if (cf_docker_roles_parse(s, true, &r, &n, err, sizeof err) == 0)
        for (size_t i = 0; i < n; i++)
            if (strncmp(r[i].arn, "arn:", 4) != 0 || !strstr(r[i].arn, ":iam::"))
                __builtin_trap();
    cf_docker_rules_free(r, n);
}

/* Env of the rewritten body holds KEY=VALUE once for each edited key. */
static void check_env(const es_json *doc, const dk_body_kv *env, size_t n)
{
    const es_json *e = dk_create_body_member(doc, "Env");
    if (n == 0)
        return;
    if (!e || e->type != ES_JSON_ARRAY)
        __builtin_trap();
    for (size_t k = 0; k < n; k++) {
        size_t seen = 0, kl = env[k].key_len ? env[k].key_len : strlen(env[k].key);
        for (size_t i = 0; i < e->u.array.n; i++) {
            const es_json *it = e->u.array.items[i];
            if (it->type != ES_JSON_STRING)
                continue;
            /* the item's name as the rewrite reads it: up to the first '=' */
            const char *eq = memchr(it->u.string.s, '=', it->u.string.len);
            size_t nl = eq ? (size_t)(eq - it->u.string.s) : it->u.string.len;
            if (nl != kl || memcmp(it->u.string.s, env[k].key, kl) != 0)
                continue;
            if (it->u.string.len != kl + 1 + strlen(VALUE) ||
                memcmp(it->u.string.s + kl, "=" VALUE, strlen(VALUE) + 1) != 0)
                __builtin_trap();
            seen++;
        }
        if (seen != 1)
            __builtin_trap();
    }
}

#define TASK_ARN "arn:aws:ecs:us-east-1:123456789012:task/default/0123"

/* The rewritten body's Labels (the last, as dockerd keeps it) carry the
 * task's ARN under its exact key, whatever the client sent. */
static void check_task_label(const es_json *doc)
{
    const es_json *labels = dk_create_body_labels(doc);
    const char *v = NULL;
    for (size_t i = 0; labels && i < labels->u.object.n; i++)
        if (strcmp(labels->u.object.keys[i], DK_TASK_ARN_LABEL) == 0)
            v = labels->u.object.values[i]->type == ES_JSON_STRING
                    ? labels->u.object.values[i]->u.string.s
                    : NULL;
    if (!v || strcmp(v, TASK_ARN) != 0)
        __builtin_trap();
}

/* One variable per expansion label, as the intake hands an expansion's
 * "NAME=VALUE" entries over: named by length inside the entry (key_len).
 * A name a secret label also gives is skipped (the resolver refuses it). */
static void add_expansions(const ag_taskdef *td, dk_body_kv *env, size_t *ne)
{
    static char entries[AG_EXPAND_LABELS_MAX][AG_EXPAND_PREFIX_MAX + 2 + sizeof VALUE];
    const ag_container_def *c = &td->containers[0];
    for (size_t x = 0; x < c->n_expands && x < AG_EXPAND_LABELS_MAX; x++) {
        int n = snprintf(entries[x], sizeof entries[x], "%sX=" VALUE, c->expands[x].prefix);
        size_t kl = (size_t)n - strlen(VALUE) - 1;
        bool dup = false;
        for (size_t k = 0; k < *ne && !dup; k++) {
            size_t ol = env[k].key_len ? env[k].key_len : strlen(env[k].key);
            dup = ol == kl && memcmp(env[k].key, entries[x], kl) == 0;
        }
        if (!dup)
            env[(*ne)++] = (dk_body_kv){entries[x], entries[x] + kl + 1, strlen(VALUE), kl};
    }
}

/* The rewritten body's HostConfig.Mounts ends with m, read-only. */
static bool check_mount(const es_json *doc, const dk_mount *m)
{
    const es_json *mounts =
        dk_create_body_member(dk_create_body_member(doc, "HostConfig"), "Mounts");
    if (!mounts || mounts->type != ES_JSON_ARRAY || !mounts->u.array.n)
        return false;
    const es_json *last = mounts->u.array.items[mounts->u.array.n - 1];
    const char *src = es_json_get_str(last, "Source"), *dst = es_json_get_str(last, "Target");
    return src && dst && strcmp(src, m->source) == 0 && strcmp(dst, m->target) == 0;
}

static void body(const char *s, size_t len)
{
    es_json *doc = NULL;
    char err[AG_INTAKE_ERR_MAX];
    if (dk_create_body_parse(s, len, &doc, err, sizeof err) != 0)
        return;
    /* the edit: a value for every variable and option of labels the
     * task-definition parser accepts (as the intake only edits then) */
    static dk_body_kv env[AG_TD_SECRETS_MAX + AG_EXPAND_LABELS_MAX], log[AG_TD_SECRET_OPTIONS_MAX];
    size_t ne = 0, nl = 0, nm = 0;
    ag_intake_req rq;
    if (ag_intake_read_labels(dk_create_body_labels(doc), &rq, err, sizeof err) == 1 &&
        !rq.td_ref) {
        ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
        ag_taskdef *td = NULL;
        if (ag_intake_taskdef(&rq, NULL, &ctx, &td, err, sizeof err) == 0) {
            if (td->n_containers != 1 || !td->execution_role_arn)
                __builtin_trap();
            for (size_t i = 0; i < rq.n_env; i++)
                env[ne++] = (dk_body_kv){rq.env[i].name, VALUE, strlen(VALUE), 0};
            for (size_t i = 0; i < rq.n_log; i++)
                log[nl++] = (dk_body_kv){rq.log[i].name, VALUE, strlen(VALUE), 0};
            add_expansions(td, env, &ne);
            nm = td->containers[0].n_files ? 1 : 0;
        }
        ag_taskdef_free(td);
    }
    /* the task's labels, as the intake adds them (docker.c task_labels) */
    static const dk_body_kv task[] = {{DK_TASK_ARN_LABEL, TASK_ARN, sizeof TASK_ARN - 1},
                                      {"com.amazonaws.ecs.cluster", "default", 7}};
    /* a secret file's mount, as ag_engine_adopt_files gives one, for every
     * body whose labels name a file */
    static const dk_mount mount = {"/run/ecs-secrets-agent/files/docker/t/c0/f0", "/run/secrets/db",
                                   true};
    dk_create_edit ed = {.env = env,
                         .nenv = ne,
                         .log_config = log,
                         .nlog = nl,
                         .labels = task,
                         .nlabels = sizeof task / sizeof *task,
                         .mounts = &mount,
                         .nmounts = nm};
    es_buf out;
    es_buf_init(&out, DK_CREATE_BODY_OUT_MAX);
    if (dk_create_body_rewrite(doc, &ed, &out, err, sizeof err) == 0) {
        es_json *again = NULL;
        if (dk_create_body_parse(out.data, out.len, &again, err, sizeof err) != 0)
            __builtin_trap();
        check_env(again, env, ne);
        check_task_label(again);
        if (nm && !check_mount(again, &mount))
            __builtin_trap();
        es_json_free(again);
    }
    es_buf_free_secret(&out);
    es_json_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    char *s = es_strndup((const char *)data, size);
    if (!s)
        return 0;
    if (size && s[0] == 'R')
        roles(s + 1);
    else
        body(s, size);
    es_free(s);
    return 0;
}
