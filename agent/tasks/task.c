/* task.c - see task.h. */
#include "agent/tasks/task.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/secure.h"

/* A task ARN: partition, region, account, cluster and a 32-digit id. */
#define TASK_ARN_MAX 1024
/* A secret failure's reason before ag_reason_clip cuts it to
 * AG_STOPPED_REASON_MAX: room for every part at its own maximum. */
#define REASON_DRAFT_MAX 16384
/* One derived string of DescribeTasks at a time (an ARN, a time). */
#define TASK_JSON_SCRATCH_MAX 4096

static const char *const status_names[AG_TASK_STATUS_COUNT] = {
    "PROVISIONING", "PENDING",  "ACTIVATING",     "RUNNING",
    "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED",
};

#define B(s) (1u << (s))
/* allowed[from] = the states one may move to from `from`. Forward only; a
 * task whose start fails skips to DEPROVISIONING or STOPPED; nothing can be
 * ACTIVATING, RUNNING or stopping before it was PENDING (its containers are
 * created there). */
static const unsigned allowed[AG_TASK_STATUS_COUNT] = {
    [AG_TASK_PROVISIONING] = B(AG_TASK_PENDING) | B(AG_TASK_DEPROVISIONING) | B(AG_TASK_STOPPED),
    [AG_TASK_PENDING] = B(AG_TASK_ACTIVATING) | B(AG_TASK_RUNNING) | B(AG_TASK_DEACTIVATING) |
                        B(AG_TASK_STOPPING) | B(AG_TASK_DEPROVISIONING) | B(AG_TASK_STOPPED),
    [AG_TASK_ACTIVATING] = B(AG_TASK_RUNNING) | B(AG_TASK_DEACTIVATING) | B(AG_TASK_STOPPING) |
                           B(AG_TASK_DEPROVISIONING) | B(AG_TASK_STOPPED),
    [AG_TASK_RUNNING] = B(AG_TASK_DEACTIVATING) | B(AG_TASK_STOPPING) | B(AG_TASK_DEPROVISIONING) |
                        B(AG_TASK_STOPPED),
    [AG_TASK_DEACTIVATING] = B(AG_TASK_STOPPING) | B(AG_TASK_DEPROVISIONING) | B(AG_TASK_STOPPED),
    [AG_TASK_STOPPING] = B(AG_TASK_DEPROVISIONING) | B(AG_TASK_STOPPED),
    [AG_TASK_DEPROVISIONING] = B(AG_TASK_STOPPED),
    [AG_TASK_STOPPED] = 0,
};

const char *ag_task_status_name(ag_task_status s)
{
    return (unsigned)s < AG_TASK_STATUS_COUNT ? status_names[s] : "UNKNOWN";
}

int ag_task_status_parse(const char *s, ag_task_status *out)
{
    for (unsigned i = 0; s && i < AG_TASK_STATUS_COUNT; i++)
        if (strcmp(s, status_names[i]) == 0) {
            *out = (ag_task_status)i;
            return 0;
        }
    return -EINVAL;
}

static const char *const stop_names[] = {
    [AG_STOP_NONE] = NULL,
    [AG_STOP_TASK_FAILED_TO_START] = "TaskFailedToStart",
    [AG_STOP_ESSENTIAL_CONTAINER_EXITED] = "EssentialContainerExited",
    [AG_STOP_USER_INITIATED] = "UserInitiated",
    [AG_STOP_SERVICE_SCHEDULER_INITIATED] = "ServiceSchedulerInitiated",
    [AG_STOP_TERMINATION_NOTICE] = "TerminationNotice",
};
#define N_STOP (sizeof stop_names / sizeof *stop_names)

const char *ag_stop_code_name(ag_stop_code c)
{
    return (unsigned)c < N_STOP ? stop_names[c] : NULL;
}

int ag_stop_code_parse(const char *s, ag_stop_code *out)
{
    if (!s || !*s) {
        *out = AG_STOP_NONE;
        return 0;
    }
    for (unsigned i = 1; i < N_STOP; i++)
        if (strcmp(s, stop_names[i]) == 0) {
            *out = (ag_stop_code)i;
            return 0;
        }
    return -EINVAL;
}

bool ag_task_transition_ok(ag_task_status from, ag_task_status to)
{
    if ((unsigned)from >= AG_TASK_STATUS_COUNT || (unsigned)to >= AG_TASK_STATUS_COUNT)
        return false;
    return (allowed[from] & B(to)) != 0;
}

static bool valid_cluster(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

static bool valid_arn_part(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

void ag_task_free(ag_task *t)
{
    if (!t)
        return;
    es_free(t->arn);
    es_free(t->region);
    es_free(t->account);
    es_free(t->cluster);
    es_free(t->id);
    es_free(t->family);
    es_free(t->started_by);
    es_free(t->group);
    es_free(t->launch_type);
    es_free(t->stopped_reason);
    for (size_t i = 0; i < t->n_containers; i++) {
        ag_task_container *c = &t->containers[i];
        es_free(c->name);
        es_free(c->image);
        es_free(c->docker_id);
        es_free(c->docker_name);
        es_free(c->last_status);
        es_free(c->reason);
    }
    es_free(t->containers);
    for (size_t i = 0; i < t->n_secrets; i++) {
        ag_secret_meta *m = &t->secrets[i];
        es_free(m->container_name);
        es_free(m->name);
        es_free(m->value_from);
        es_free(m->source_arn);
        es_free(m->version);
        es_free(m->fingerprint);
    }
    es_free(t->secrets);
    es_free(t);
}

/* Duplicates s (NULL stays NULL); false on allocation failure. */
static bool dup_opt(char **dst, const char *s)
{
    *dst = NULL;
    if (!s)
        return true;
    *dst = es_strdup(s);
    return *dst != NULL;
}

int ag_task_create(const char *region, const char *account, const char *cluster, const char *family,
                   int64_t revision, const char *started_by, const char *group,
                   const char *launch_type, int64_t now, ag_task **out)
{
    return ag_task_create_id(region, account, cluster, family, revision, started_by, group,
                             launch_type, now, NULL, out);
}

static bool task_id_ok(const char *s)
{
    if (strlen(s) != AG_TASK_ID_HEX)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

int ag_task_create_id(const char *region, const char *account, const char *cluster,
                      const char *family, int64_t revision, const char *started_by,
                      const char *group, const char *launch_type, int64_t now, const char *given,
                      ag_task **out)
{
    if (!region || !account || !cluster || !family || !valid_arn_part(region) ||
        !valid_arn_part(account) || !valid_cluster(cluster) || !valid_cluster(family) ||
        revision < 1 || (given && !task_id_ok(given)))
        return -EINVAL;
    char id[AG_TASK_ID_HEX + 1];
    if (given) {
        memcpy(id, given, sizeof id);
    } else {
        unsigned char raw[AG_TASK_ID_HEX / 2];
        if (es_random_bytes(raw, sizeof raw) != 0)
            return -EIO;
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(id + 2 * i, 3, "%02x", raw[i]);
    }
    ag_task *t = es_calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    es_buf arn;
    es_buf_init(&arn, TASK_ARN_MAX);
    int r = es_buf_printf(&arn, "arn:aws:ecs:%s:%s:task/%s/%s", region, account, cluster, id);
    if (r == 0) {
        t->arn = es_buf_steal(&arn);
        if (!t->arn)
            r = -ENOMEM;
    }
    es_buf_free(&arn);
    if (r)
        goto fail;
    if (!dup_opt(&t->region, region) || !dup_opt(&t->account, account) ||
        !dup_opt(&t->cluster, cluster) || !dup_opt(&t->id, id) || !dup_opt(&t->family, family) ||
        !dup_opt(&t->started_by, started_by) || !dup_opt(&t->group, group) ||
        !dup_opt(&t->launch_type, launch_type ? launch_type : "EC2")) {
        r = -ENOMEM;
        goto fail;
    }
    t->revision = revision;
    t->last_status = AG_TASK_PROVISIONING;
    t->desired_status = AG_TASK_RUNNING;
    t->created_at = now;
    *out = t;
    return 0;
fail:
    ag_task_free(t);
    return r;
}

int ag_task_add_container(ag_task *t, const char *name, const char *image)
{
    ag_task_container *v = es_calloc(t->n_containers + 1, sizeof *v);
    if (!v)
        return -ENOMEM;
    ag_task_container c = {0};
    if (!dup_opt(&c.name, name) || !dup_opt(&c.image, image) ||
        !dup_opt(&c.last_status, "PENDING")) {
        es_free(c.name);
        es_free(c.image);
        es_free(c.last_status);
        es_free(v);
        return -ENOMEM;
    }
    if (t->n_containers)
        memcpy(v, t->containers, t->n_containers * sizeof *v);
    v[t->n_containers] = c;
    es_free(t->containers);
    t->containers = v;
    t->n_containers++;
    return 0;
}

ag_task_container *ag_task_find_container(ag_task *t, const char *name)
{
    for (size_t i = 0; t && name && i < t->n_containers; i++)
        if (strcmp(t->containers[i].name, name) == 0)
            return &t->containers[i];
    return NULL;
}

static int replace(char **dst, const char *s)
{
    if (!s)
        return 0;
    char *d = es_strdup(s);
    if (!d)
        return -ENOMEM;
    es_free(*dst);
    *dst = d;
    return 0;
}

int ag_task_container_update(ag_task *t, const char *name, const char *docker_id,
                             const char *last_status, const int *exit_code, const char *reason)
{
    ag_task_container *c = ag_task_find_container(t, name);
    if (!c)
        return -ENOENT;
    char clipped[AG_CONTAINER_REASON_MAX * 4 + 1];
    if (reason) {
        /* Container.reason is at most 255 characters in ECS */
        char full[AG_REASON_BUF];
        ag_reason_clip(full, sizeof full, reason);
        size_t n = 0, chars = 0;
        while (full[n] && chars < AG_CONTAINER_REASON_MAX) {
            n++;
            while ((full[n] & 0xC0) == 0x80)
                n++;
            chars++;
        }
        memcpy(clipped, full, n);
        clipped[n] = '\0';
    }
    if (replace(&c->docker_id, docker_id) || replace(&c->last_status, last_status) ||
        replace(&c->reason, reason ? clipped : NULL))
        return -ENOMEM;
    if (exit_code) {
        c->has_exit_code = true;
        c->exit_code = *exit_code;
    }
    return 0;
}

int ag_task_add_secret_meta(ag_task *t, const char *container_name, ag_secret_target target,
                            const char *name, const char *value_from, const char *source_arn,
                            const char *version, int64_t resolved_at, const char *fingerprint)
{
    ag_secret_meta m = {.target = target, .resolved_at = resolved_at};
    ag_secret_meta *v = NULL;
    if (!dup_opt(&m.container_name, container_name) || !dup_opt(&m.name, name) ||
        !dup_opt(&m.value_from, value_from) || !dup_opt(&m.source_arn, source_arn) ||
        !dup_opt(&m.version, version) || !dup_opt(&m.fingerprint, fingerprint))
        goto fail;
    v = es_calloc(t->n_secrets + 1, sizeof *v);
    if (!v)
        goto fail;
    if (t->n_secrets)
        memcpy(v, t->secrets, t->n_secrets * sizeof *v);
    v[t->n_secrets] = m;
    es_free(t->secrets);
    t->secrets = v;
    t->n_secrets++;
    return 0;
fail:
    es_free(m.container_name);
    es_free(m.name);
    es_free(m.value_from);
    es_free(m.source_arn);
    es_free(m.version);
    es_free(m.fingerprint);
    return -ENOMEM;
}

int ag_task_secret_meta_refreshed(ag_secret_meta *m, const char *source_arn, const char *version,
                                  int64_t resolved_at, const char *fingerprint)
{
    char *arn = NULL, *ver = NULL, *fp = NULL;
    if (!dup_opt(&arn, source_arn) || !dup_opt(&ver, version) || !dup_opt(&fp, fingerprint)) {
        es_free(arn);
        es_free(ver);
        es_free(fp);
        return -ENOMEM;
    }
    es_free(m->source_arn);
    es_free(m->version);
    es_free(m->fingerprint);
    m->source_arn = arn;
    m->version = ver;
    m->fingerprint = fp;
    m->resolved_at = resolved_at;
    m->drift = AG_DRIFT_CURRENT;
    snprintf(m->latest_version, sizeof m->latest_version, "%s", version ? version : "");
    return 0;
}

/* What a transition may change, saved so that a failed persist leaves the
 * task as it was. */
typedef struct task_snap {
    ag_task_status last_status;
    int64_t pull_started_at, pull_stopped_at, started_at, stopping_at, stopped_at,
        execution_stopped_at, version;
} task_snap;

static task_snap snap(const ag_task *t)
{
    return (task_snap){t->last_status, t->pull_started_at, t->pull_stopped_at,      t->started_at,
                       t->stopping_at, t->stopped_at,      t->execution_stopped_at, t->version};
}

static void restore(ag_task *t, const task_snap *s)
{
    t->last_status = s->last_status;
    t->pull_started_at = s->pull_started_at;
    t->pull_stopped_at = s->pull_stopped_at;
    t->started_at = s->started_at;
    t->stopping_at = s->stopping_at;
    t->stopped_at = s->stopped_at;
    t->execution_stopped_at = s->execution_stopped_at;
    t->version = s->version;
}

static void set_once(int64_t *field, int64_t now)
{
    if (*field == 0)
        *field = now;
}

int ag_task_transition(ag_task *t, ag_task_status to, int64_t now, ag_task_commit_fn commit,
                       void *arg)
{
    ag_task_status from = t->last_status;
    if (!ag_task_transition_ok(from, to)) {
        es_warn("task %s: refused illegal transition %s -> %s", t->id, ag_task_status_name(from),
                ag_task_status_name(to));
        return -EINVAL;
    }
    task_snap saved = snap(t);
    t->last_status = to;
    t->version++;
    switch (to) {
    case AG_TASK_PENDING:
        set_once(&t->pull_started_at, now);
        break;
    case AG_TASK_RUNNING:
        set_once(&t->pull_stopped_at, now);
        set_once(&t->started_at, now);
        break;
    case AG_TASK_DEACTIVATING:
    case AG_TASK_STOPPING:
        set_once(&t->stopping_at, now);
        break;
    case AG_TASK_DEPROVISIONING:
        set_once(&t->execution_stopped_at, now);
        break;
    case AG_TASK_STOPPED:
        set_once(&t->execution_stopped_at, now);
        set_once(&t->stopped_at, now);
        break;
    case AG_TASK_PROVISIONING:
    case AG_TASK_ACTIVATING:
        break;
    }
    if (commit) {
        int r = commit(arg, t);
        if (r) {
            restore(t, &saved);
            es_err("task %s: %s -> %s not persisted", t->id, ag_task_status_name(from),
                   ag_task_status_name(to));
            return r;
        }
    }
    es_info("task %s: %s -> %s", t->id, ag_task_status_name(from), ag_task_status_name(to));
    return 0;
}

int ag_task_request_stop(ag_task *t, ag_stop_code code, const char *reason,
                         ag_task_commit_fn commit, void *arg)
{
    ag_task_status old_desired = t->desired_status;
    ag_stop_code old_code = t->stop_code;
    char *old_reason = t->stopped_reason;
    char *new_reason = NULL;
    bool first = t->stop_code == AG_STOP_NONE && !t->stopped_reason;
    if (first && reason) {
        char buf[AG_REASON_BUF];
        ag_reason_clip(buf, sizeof buf, reason);
        new_reason = es_strdup(buf);
        if (!new_reason)
            return -ENOMEM;
    }
    t->desired_status = AG_TASK_STOPPED;
    if (first) {
        t->stop_code = code;
        t->stopped_reason = new_reason;
    }
    t->version++;
    if (commit) {
        int r = commit(arg, t);
        if (r) {
            t->desired_status = old_desired;
            t->stop_code = old_code;
            t->stopped_reason = old_reason;
            t->version--;
            es_free(new_reason);
            return r;
        }
    }
    if (first && old_reason != t->stopped_reason)
        es_free(old_reason);
    if (old_desired != AG_TASK_STOPPED)
        es_info("task %s: desired status RUNNING -> STOPPED (%s)", t->id,
                ag_stop_code_name(t->stop_code) ? ag_stop_code_name(t->stop_code) : "no code");
    return 0;
}

int ag_task_arn_split(const char *arn, char *region, char *account, char *cluster, char *id,
                      size_t buflen)
{
    static const char prefix[] = "arn:aws:ecs:";
    if (!arn || strncmp(arn, prefix, sizeof prefix - 1) != 0)
        return -EINVAL;
    const char *p = arn + sizeof prefix - 1;
    const char *c1 = strchr(p, ':');
    if (!c1)
        return -EINVAL;
    const char *c2 = strchr(c1 + 1, ':');
    if (!c2 || strncmp(c2 + 1, "task/", 5) != 0)
        return -EINVAL;
    const char *cl = c2 + 6;
    const char *sl = strchr(cl, '/');
    if (!sl || strchr(sl + 1, '/'))
        return -EINVAL;
    size_t lr = (size_t)(c1 - p), la = (size_t)(c2 - c1 - 1), lc = (size_t)(sl - cl),
           li = strlen(sl + 1);
    if (!lr || !la || !lc || li != AG_TASK_ID_HEX || lr >= buflen || la >= buflen || lc >= buflen ||
        li >= buflen)
        return -EINVAL;
    memcpy(region, p, lr);
    region[lr] = '\0';
    memcpy(account, c1 + 1, la);
    account[la] = '\0';
    memcpy(cluster, cl, lc);
    cluster[lc] = '\0';
    memcpy(id, sl + 1, li + 1);
    return 0;
}

/* ---- stoppedReason ---- */

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

size_t ag_reason_clip(char *out, size_t outlen, const char *reason)
{
    if (!outlen)
        return 0;
    const unsigned char *s = (const unsigned char *)(reason ? reason : "");
    size_t o = 0, chars = 0;
    bool cut = false;
    /* keep room for "..." */
    while (*s) {
        size_t n = utf8_seq(s);
        const unsigned char *src = s;
        unsigned char repl;
        if (n == 0 || (n == 1 && (*s < 0x20 || *s == 0x7f))) {
            repl = n == 0 ? '?' : ' ';
            src = &repl;
            s += 1;
            n = 1;
        } else {
            s += n;
        }
        if (chars + 1 > AG_STOPPED_REASON_MAX || o + n + 1 > outlen) {
            cut = true;
            break;
        }
        memcpy(out + o, src, n);
        o += n;
        chars++;
    }
    if (cut) {
        /* back off to leave room for "..." within both limits */
        while (o > 0 && (chars + 3 > AG_STOPPED_REASON_MAX || o + 4 > outlen)) {
            do
                o--;
            while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80);
            chars--;
        }
        if (o + 4 <= outlen) {
            memcpy(out + o, "...", 3);
            o += 3;
        }
    }
    out[o] = '\0';
    return o;
}

size_t ag_reason_secrets(char *out, size_t outlen, const char *fmt, ...)
{
    /* past AG_REASON_BUF the clip cuts anyway: vsnprintf's cut is never seen */
    char text[sizeof AG_REASON_SECRETS + AG_REASON_BUF];
    size_t p = sizeof AG_REASON_SECRETS - 1;
    memcpy(text, AG_REASON_SECRETS, p + 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + p, sizeof text - p, fmt, ap);
    va_end(ap);
    return ag_reason_clip(out, outlen, text);
}

size_t ag_reason_secret_failure(char *out, size_t outlen, const ag_secret_failure *f)
{
    const char *svc = f->service ? f->service : "ssm";
    bool asm_ = strcmp(svc, "asm") == 0;
    es_buf b;
    es_buf_init(&b, REASON_DRAFT_MAX);
    /* an overlong part is cut by the clip below; a failed append leaves what fit */
    (void)es_buf_printf(&b,
                        AG_REASON_SECRETS
                        "execution resource retrieval failed: unable to retrieve %s from %s: "
                        "failed to fetch secret %s from %s in %s",
                        asm_ ? "secret" : "secrets", svc, f->secret ? f->secret : "(unknown)",
                        asm_ ? "secrets manager" : "ssm", f->region ? f->region : "(no region)");
    if (f->aws_code)
        (void)es_buf_printf(&b, ": %s", f->aws_code);
    if (f->detail)
        (void)es_buf_printf(&b, ": %.4096s", f->detail);
    size_t n = ag_reason_clip(out, outlen, es_buf_cstr(&b));
    es_buf_free(&b);
    return n;
}

/* ---- DescribeTasks shape ---- */

const char *ag_secret_target_name(ag_secret_target t)
{
    switch (t) {
    case AG_SECRET_ENV:
        return "environment";
    case AG_SECRET_LOG:
        return "logConfiguration";
    case AG_SECRET_REGISTRY:
        return "repositoryCredentials";
    }
    return "?";
}

/* Copies s into out (out at most 128 characters, ECS's attribute limit)
 * with characters outside `extra` (besides letters and digits) replaced by
 * '_'. Mapped on the stack and appended once: a DescribeTasks of a task with
 * 10 secrets passed about 1,200 characters one es_buf call each, the most
 * of what a polling client's call cost the daemon (issue 22). */
static void attr_text(es_buf *out, const char *s, const char *extra)
{
    char mapped[128];
    size_t room = out->len < sizeof mapped ? sizeof mapped - out->len : 0, n = 0;
    for (; s && s[n] && n < room; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr(extra, c);
        mapped[n] = ok ? c : '_';
    }
    (void)es_buf_append(out, mapped, n);
}

/* Appends the n parts (NULL: nothing), as es_buf_printf("%s%s...") would
 * without parsing a format: ARNs and attribute names of every task a
 * DescribeTasks answers. */
static void cat(es_buf *b, const char *const *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (parts[i])
            (void)es_buf_append_str(b, parts[i]);
}
#define CAT(b, ...)                                                                                \
    cat((b), (const char *const[]){__VA_ARGS__},                                                   \
        sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static void kts(es_jw *w, const char *k, int64_t v)
{
    if (v)
        es_jw_kint(w, k, v);
}

static void kstr_opt(es_jw *w, const char *k, const char *v)
{
    if (v)
        es_jw_kstr(w, k, v);
}

const char *ag_health_name(ag_health h)
{
    return h == AG_HEALTH_HEALTHY ? "HEALTHY" : h == AG_HEALTH_UNHEALTHY ? "UNHEALTHY" : "UNKNOWN";
}

ag_health ag_task_health(const ag_task *t)
{
    bool checked = false, all_healthy = true;
    for (size_t i = 0; i < t->n_containers; i++) {
        const ag_task_container *c = &t->containers[i];
        if (!c->essential || !c->health_checked)
            continue;
        if (c->health == AG_HEALTH_UNHEALTHY)
            return AG_HEALTH_UNHEALTHY;
        checked = true;
        all_healthy = all_healthy && c->health == AG_HEALTH_HEALTHY;
    }
    return checked && all_healthy ? AG_HEALTH_HEALTHY : AG_HEALTH_UNKNOWN;
}

void ag_task_write_json(const ag_task *t, es_jw *w)
{
    es_buf b;
    es_buf_init(&b, TASK_JSON_SCRATCH_MAX);
    es_jw_obj(w);
    es_jw_kstr(w, "taskArn", t->arn);
    CAT(&b, "arn:aws:ecs:", t->region, ":", t->account, ":cluster/", t->cluster);
    es_jw_kstr(w, "clusterArn", es_buf_cstr(&b));
    es_buf_reset(&b);
    char rev[24];
    snprintf(rev, sizeof rev, "%" PRId64, t->revision);
    CAT(&b, "arn:aws:ecs:", t->region, ":", t->account, ":task-definition/", t->family, ":", rev);
    es_jw_kstr(w, "taskDefinitionArn", es_buf_cstr(&b));
    es_jw_kstr(w, "lastStatus", ag_task_status_name(t->last_status));
    es_jw_kstr(w, "desiredStatus", ag_task_status_name(t->desired_status));
    es_jw_kstr(w, "launchType", t->launch_type ? t->launch_type : "EC2");
    kstr_opt(w, "startedBy", t->started_by);
    kstr_opt(w, "group", t->group);
    kts(w, "createdAt", t->created_at);
    kts(w, "pullStartedAt", t->pull_started_at);
    kts(w, "pullStoppedAt", t->pull_stopped_at);
    kts(w, "startedAt", t->started_at);
    kts(w, "stoppingAt", t->stopping_at);
    kts(w, "executionStoppedAt", t->execution_stopped_at);
    kts(w, "stoppedAt", t->stopped_at);
    kstr_opt(w, "stoppedReason", t->stopped_reason);
    kstr_opt(w, "stopCode", ag_stop_code_name(t->stop_code));
    es_jw_kstr(w, "healthStatus", ag_health_name(ag_task_health(t)));
    es_jw_kint(w, "version", t->version);
    es_jw_key(w, "containers");
    es_jw_arr(w);
    for (size_t i = 0; i < t->n_containers; i++) {
        const ag_task_container *c = &t->containers[i];
        es_jw_obj(w);
        es_buf_reset(&b);
        CAT(&b, "arn:aws:ecs:", t->region, ":", t->account, ":container/", t->cluster, "/", t->id,
            "/", c->name);
        es_jw_kstr(w, "containerArn", es_buf_cstr(&b));
        es_jw_kstr(w, "taskArn", t->arn);
        es_jw_kstr(w, "name", c->name);
        kstr_opt(w, "image", c->image);
        kstr_opt(w, "runtimeId", c->docker_id);
        kstr_opt(w, "lastStatus", c->last_status);
        if (c->has_exit_code)
            es_jw_kint(w, "exitCode", c->exit_code);
        kstr_opt(w, "reason", c->reason);
        es_jw_kstr(w, "healthStatus", ag_health_name(c->health));
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    /* botocore drops fields its model lacks, so `aws ecs describe-tasks`
     * would never show secretsResolved: the same facts also go into the
     * task's `attributes` (a modelled field), one per secret: name
     * ecs-secrets-agent/secret/CONTAINER/NAME, value "version V FINGERPRINT",
     * targetId the source ARN. */
    es_jw_key(w, "attributes");
    es_jw_arr(w);
    for (size_t i = 0; i < t->n_secrets; i++) {
        const ag_secret_meta *m = &t->secrets[i];
        es_jw_obj(w);
        es_buf_reset(&b);
        CAT(&b, "ecs-secrets-agent/",
            m->target == AG_SECRET_ENV   ? "secret/"
            : m->target == AG_SECRET_LOG ? "logsecret/"
                                         : "registryauth/",
            m->container_name, "/");
        attr_text(&b, m->name, "-_/\\.");
        es_jw_kstr(w, "name", es_buf_cstr(&b));
        es_buf_reset(&b);
        (void)es_buf_append_str(&b, "version ");
        attr_text(&b, m->version ? m->version : "unknown", "-_.@/\\:");
        (void)es_buf_append_char(&b, ' ');
        attr_text(&b, m->fingerprint ? m->fingerprint : "none", "-_.@/\\:");
        es_jw_kstr(w, "value", es_buf_cstr(&b));
        kstr_opt(w, "targetId", m->source_arn ? m->source_arn : m->value_from);
        es_jw_obj_end(w);
    }
    /* what drift last found, so that `aws ecs describe-tasks` shows which
     * tasks hold a rotated value (values are at most 128 characters: a
     * separate attribute per stale secret, and the task's count) */
    int64_t n_stale = 0;
    bool drift_checked = false;
    for (size_t i = 0; i < t->n_secrets; i++) {
        const ag_secret_meta *m = &t->secrets[i];
        drift_checked = drift_checked || m->drift != AG_DRIFT_UNKNOWN;
        if (m->drift != AG_DRIFT_STALE)
            continue;
        n_stale++;
        es_jw_obj(w);
        es_buf_reset(&b);
        CAT(&b, "ecs-secrets-agent/stale/", m->container_name, "/");
        attr_text(&b, m->name, "-_/\\.");
        es_jw_kstr(w, "name", es_buf_cstr(&b));
        es_buf_reset(&b);
        if (m->latest_version[0]) {
            (void)es_buf_append_str(&b, "the store has version ");
            attr_text(&b, m->latest_version, "-_.@/\\:");
        } else {
            (void)es_buf_append_str(&b, "the store no longer has it");
        }
        es_jw_kstr(w, "value", es_buf_cstr(&b));
        kstr_opt(w, "targetId", m->source_arn ? m->source_arn : m->value_from);
        es_jw_obj_end(w);
    }
    if (drift_checked) {
        es_jw_obj(w);
        es_jw_kstr(w, "name", "ecs-secrets-agent/staleSecrets");
        char n[24];
        snprintf(n, sizeof n, "%lld", (long long)n_stale);
        es_jw_kstr(w, "value", n);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_key(w, "secretsResolved");
    es_jw_arr(w);
    for (size_t i = 0; i < t->n_secrets; i++) {
        const ag_secret_meta *m = &t->secrets[i];
        es_jw_obj(w);
        kstr_opt(w, "containerName", m->container_name);
        es_jw_kstr(w, "target", ag_secret_target_name(m->target));
        kstr_opt(w, "name", m->name);
        kstr_opt(w, "valueFrom", m->value_from);
        kstr_opt(w, "sourceArn", m->source_arn);
        kstr_opt(w, "version", m->version);
        kts(w, "resolvedAt", m->resolved_at);
        kstr_opt(w, "fingerprint", m->fingerprint);
        if (m->drift != AG_DRIFT_UNKNOWN) {
            es_jw_kbool(w, "current", m->drift == AG_DRIFT_CURRENT);
            if (m->latest_version[0])
                es_jw_kstr(w, "currentVersion", m->latest_version);
            kts(w, "checkedAt", m->drift_checked_at);
        }
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    int64_t stale = 0;
    bool checked = false;
    for (size_t i = 0; i < t->n_secrets; i++) {
        checked = checked || t->secrets[i].drift != AG_DRIFT_UNKNOWN;
        stale += t->secrets[i].drift == AG_DRIFT_STALE;
    }
    if (checked)
        es_jw_kint(w, "staleSecrets", stale);
    es_jw_obj_end(w);
    es_buf_free(&b);
}
