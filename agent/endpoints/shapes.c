/* shapes.c - the container endpoints' answers (shapes.h). */
#include "agent/endpoints/shapes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/secure.h"

int ag_ep_random_hex(char *out, size_t nbytes)
{
    static const char hx[] = "0123456789abcdef";
    unsigned char b[AG_EP_TOKEN_BYTES];
    if (nbytes > sizeof b || es_random_bytes(b, nbytes) < 0)
        return -EIO;
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
    es_wipe(b, sizeof b);
    return 0;
}

bool ag_ep_token_matches(const char *presented, const char token[AG_EP_TOKEN_HEX + 1])
{
    if (!presented || strnlen(presented, AG_EP_TOKEN_HEX + 1) != AG_EP_TOKEN_HEX)
        return false;
    return es_ct_equal(presented, token, AG_EP_TOKEN_HEX);
}

bool ag_ep_parse_meta_path(const char *path, char id[AG_EP_ID_HEX + 1], bool *task)
{
    if (strncmp(path, "/v4/", 4) != 0)
        return false;
    const char *rest = path + 4;
    size_t n = strspn(rest, "0123456789abcdef");
    if (n != AG_EP_ID_HEX)
        return false;
    if (rest[n] && strcmp(rest + n, "/task") != 0)
        return false;
    memcpy(id, rest, n);
    id[n] = '\0';
    *task = rest[n] != '\0';
    return true;
}

#define LOGS_PATH "/v2/credentials/"

bool ag_ep_parse_logs_path(const char *path, char id[AG_EP_TOKEN_HEX + 1])
{
    if (strncmp(path, LOGS_PATH, sizeof LOGS_PATH - 1) != 0)
        return false;
    const char *rest = path + sizeof LOGS_PATH - 1;
    size_t n = strspn(rest, "0123456789abcdef");
    if (n != AG_EP_TOKEN_HEX || rest[n])
        return false;
    memcpy(id, rest, n);
    id[n] = '\0';
    return true;
}

int ag_ep_logs_uri(const char *host, int port, const char id[AG_EP_TOKEN_HEX + 1], char *out,
                   size_t n)
{
    int k;
    if (strcmp(host, "169.254.170.2") == 0 && port == 80)
        k = snprintf(out, n, LOGS_PATH "%s", id);
    else if (strcmp(host, "169.254.170.2") == 0)
        k = snprintf(out, n, ":%d" LOGS_PATH "%s", port, id);
    else if (strchr(host, ':'))
        k = snprintf(out, n, "@[%s]:%d" LOGS_PATH "%s", host, port, id);
    else
        k = snprintf(out, n, "@%s:%d" LOGS_PATH "%s", host, port, id);
    return k < 0 || (size_t)k >= n ? -EMSGSIZE : 0;
}

void ag_ep_iso8601(time_t t, char out[AG_EP_ISO_MAX])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, AG_EP_ISO_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, AG_EP_ISO_MAX, "1970-01-01T00:00:00Z");
}

bool ag_ep_refresh_due(time_t now, bool have, time_t expiration, unsigned refresh_before_s,
                       bool fetching, time_t retry_at)
{
    if (fetching || now < retry_at)
        return false;
    return !have || expiration - now < (time_t)refresh_before_s;
}

int ag_ep_write_credentials(es_jw *w, const char *akid, const char *secret, const char *token,
                            time_t expiration, const char *role_arn)
{
    char iso[AG_EP_ISO_MAX];
    ag_ep_iso8601(expiration, iso);
    es_jw_obj(w);
    es_jw_kstr(w, "AccessKeyId", akid);
    es_jw_kstr(w, "SecretAccessKey", secret);
    es_jw_kstr(w, "Token", token ? token : "");
    es_jw_kstr(w, "Expiration", iso);
    es_jw_kstr(w, "RoleArn", role_arn);
    es_jw_obj_end(w);
    return es_jw_finish(w);
}

int ag_ep_write_error(es_jw *w, const char *code, const char *message)
{
    es_jw_obj(w);
    es_jw_kstr(w, "code", code);
    es_jw_kstr(w, "message", message);
    es_jw_obj_end(w);
    return es_jw_finish(w);
}

/* ---- metadata v4 ---- */

static void kiso(es_jw *w, const char *k, int64_t t)
{
    if (!t)
        return;
    char iso[AG_EP_ISO_MAX];
    ag_ep_iso8601((time_t)t, iso);
    es_jw_kstr(w, k, iso);
}

static const ag_container_def *cdef(const ag_taskdef *td, const char *name)
{
    for (size_t i = 0; td && i < td->n_containers; i++)
        if (strcmp(td->containers[i].name, name) == 0)
            return &td->containers[i];
    return NULL;
}

/* The definition's dockerLabels, then the ECS labels the agent sets (inject.h). */
static void write_labels(es_jw *w, const ag_ep_meta_ctx *m, const ag_container_def *cd,
                         const char *name)
{
    const ag_task *t = m->t;
    char rev[24];
    snprintf(rev, sizeof rev, "%lld", (long long)t->revision);
    es_jw_key(w, "Labels");
    es_jw_obj(w);
    for (size_t i = 0; cd && i < cd->n_docker_labels; i++)
        if (strncmp(cd->docker_labels[i].name, "com.amazonaws.ecs.", 18) != 0)
            es_jw_kstr(w, cd->docker_labels[i].name, cd->docker_labels[i].value);
    es_jw_kstr(w, "com.amazonaws.ecs.cluster", t->cluster);
    es_jw_kstr(w, "com.amazonaws.ecs.container-name", name);
    es_jw_kstr(w, "com.amazonaws.ecs.task-arn", t->arn);
    es_jw_kstr(w, "com.amazonaws.ecs.task-definition-family", t->family);
    es_jw_kstr(w, "com.amazonaws.ecs.task-definition-version", rev);
    es_jw_obj_end(w);
}

static const char *known_status(const ag_task_container *c)
{
    return c->last_status ? c->last_status : "PENDING";
}

void ag_ep_write_container(es_jw *w, const ag_ep_meta_ctx *m, size_t i)
{
    const ag_task *t = m->t;
    const ag_task_container *c = &t->containers[i];
    const ag_container_def *cd = cdef(m->td, c->name);
    char arn[1024];
    snprintf(arn, sizeof arn, "arn:aws:ecs:%s:%s:container/%s/%s/%s", t->region, t->account,
             t->cluster, t->id, c->name);
    es_jw_obj(w);
    if (c->docker_id)
        es_jw_kstr(w, "DockerId", c->docker_id);
    es_jw_kstr(w, "Name", c->name);
    if (c->docker_name)
        es_jw_kstr(w, "DockerName", c->docker_name);
    es_jw_kstr(w, "Image", c->image);
    write_labels(w, m, cd, c->name);
    es_jw_kstr(w, "DesiredStatus", t->desired_status == AG_TASK_STOPPED ? "STOPPED" : "RUNNING");
    es_jw_kstr(w, "KnownStatus", known_status(c));
    if (c->has_exit_code)
        es_jw_kint(w, "ExitCode", c->exit_code);
    if (cd && cd->restart.enabled)
        es_jw_kint(w, "RestartCount", c->restart_count); /* as ECS's agent, with a policy */
    kiso(w, "CreatedAt", t->created_at);
    kiso(w, "StartedAt", t->started_at);
    es_jw_kstr(w, "Type", "NORMAL");
    es_jw_kstr(w, "ContainerARN", arn);
    if (c->health_checked) {
        es_jw_key(w, "Health");
        es_jw_obj(w);
        es_jw_kstr(w, "status", ag_health_name(c->health));
        es_jw_obj_end(w);
    }
    es_jw_key(w, "Networks");
    es_jw_arr(w);
    es_jw_obj(w);
    es_jw_kstr(w, "NetworkMode", m->network_mode);
    es_jw_obj_end(w);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
}

void ag_ep_write_task(es_jw *w, const ag_ep_meta_ctx *m)
{
    const ag_task *t = m->t;
    char rev[24];
    snprintf(rev, sizeof rev, "%lld", (long long)t->revision);
    es_jw_obj(w);
    es_jw_kstr(w, "Cluster", t->cluster);
    es_jw_kstr(w, "TaskARN", t->arn);
    es_jw_kstr(w, "Family", t->family);
    es_jw_kstr(w, "Revision", rev); /* a string in ECS's shape */
    es_jw_kstr(w, "DesiredStatus", t->desired_status == AG_TASK_STOPPED ? "STOPPED" : "RUNNING");
    es_jw_kstr(w, "KnownStatus", ag_task_status_name(t->last_status));
    kiso(w, "PullStartedAt", t->pull_started_at);
    kiso(w, "PullStoppedAt", t->pull_stopped_at);
    kiso(w, "CreatedAt", t->created_at);
    kiso(w, "StartedAt", t->started_at);
    if (m->az)
        es_jw_kstr(w, "AvailabilityZone", m->az);
    es_jw_kstr(w, "LaunchType", "EC2");
    es_jw_key(w, "Containers");
    es_jw_arr(w);
    for (size_t i = 0; i < t->n_containers; i++)
        ag_ep_write_container(w, m, i);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
}
