/* task_files.c - the engine's side of secrets as files (issue 21): writing a
 * task's files before its containers are created, their bind mounts,
 * removing them with the task, and refreshing the `refresh` ones when drift
 * sees a new version (engine_int.h; the layout is agent/secrets/files.h's). */
#include "agent/secrets/files.h"
#include "agent/tasks/engine_int.h"
#include "common/alloc.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool td_has_files(const ag_taskdef *td)
{
    for (size_t i = 0; td && i < td->n_containers; i++)
        if (td->containers[i].n_files)
            return true;
    return false;
}

/* Where the Docker socket's containers keep their files: beside the tasks'
 * directories, swept by its own rule (ag_eng_files_sweep_docker). */
#define DOCKER_SUBDIR "docker"

static int task_dir(const etask *et, char *out, size_t n)
{
    int w = ag_eng_external(et)
                ? snprintf(out, n, "%s/" DOCKER_SUBDIR "/%s", et->e->files_dir, et->t->id)
                : snprintf(out, n, "%s/%s", et->e->files_dir, et->t->id);
    return w >= (int)n ? -ENAMETOOLONG : 0;
}

/* <task dir>/c<ci>, then f<s> (frozen) or r<s> (a refresh directory) */
static int file_path(const etask *et, size_t ci, char kind, size_t s, char *out, size_t n)
{
    char dir[AG_FILES_PATH_MAX];
    if (task_dir(et, dir, sizeof dir) < 0)
        return -ENAMETOOLONG;
    int w = kind ? snprintf(out, n, "%s/c%zu/%c%zu", dir, ci, kind, s)
                 : snprintf(out, n, "%s/c%zu", dir, ci);
    return w >= (int)n ? -ENAMETOOLONG : 0;
}

static size_t dir_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash == path ? 1 : (size_t)(slash - path);
}

static bool same_dir(const char *a, const char *b)
{
    size_t la = dir_len(a);
    return la == dir_len(b) && strncmp(a, b, la) == 0;
}

/* The first refresh file of cd in f's directory: it names the directory. */
static const ag_secret_file *dir_leader(const ag_container_def *cd, const ag_secret_file *f)
{
    for (size_t i = 0; i < cd->n_files; i++)
        if (cd->files[i].policy == AG_FILE_REFRESH && same_dir(cd->files[i].path, f->path))
            return &cd->files[i];
    return f;
}

static const ag_resolved_secret *value_of(const ag_resolution *res, size_t ci, const char *name)
{
    for (size_t i = 0; res && i < res->n; i++)
        if (res->items[i].container == ci && res->items[i].target == AG_SECRET_ENV &&
            strcmp(res->items[i].name, name) == 0)
            return &res->items[i];
    return NULL;
}

/* The refresh directory led by lead, written from res (every file of it). */
static int write_refresh_dir(const etask *et, size_t ci, const ag_secret_file *lead,
                             const ag_resolution *res, char *err, size_t errlen)
{
    const ag_container_def *cd = &et->td->td->containers[ci];
    char dir[AG_FILES_PATH_MAX];
    ag_files_entry entries[AG_TD_SECRETS_MAX];
    size_t n = 0;
    if (file_path(et, ci, 'r', lead->secret, dir, sizeof dir) < 0)
        return es_errf(err, errlen, -ENAMETOOLONG, "the files directory's path is too long");
    for (size_t i = 0; i < cd->n_files; i++) {
        const ag_secret_file *f = &cd->files[i];
        if (f->policy != AG_FILE_REFRESH || dir_leader(cd, f) != lead)
            continue;
        const ag_resolved_secret *v = value_of(res, ci, cd->secrets[f->secret].name);
        if (!v)
            return es_errf(err, errlen, -ENOENT, "secret %s: no value was resolved",
                           cd->secrets[f->secret].name);
        entries[n++] = (ag_files_entry){.name = strrchr(f->path, '/') + 1,
                                        .value = v->value,
                                        .len = v->len,
                                        .mode = f->mode,
                                        .uid = f->uid,
                                        .gid = f->gid};
    }
    int r = ag_files_mkdirs(dir, AG_FILES_SHARED_DIR_MODE, err, errlen);
    return r < 0 ? r : ag_files_atomic_update(dir, entries, n, err, errlen);
}

static int write_container(const etask *et, size_t ci, const ag_resolution *res, char *err,
                           size_t errlen)
{
    const ag_container_def *cd = &et->td->td->containers[ci];
    char p[AG_FILES_PATH_MAX];
    int r = file_path(et, ci, 0, 0, p, sizeof p);
    if (r == 0)
        r = ag_files_mkdirs(p, AG_FILES_DIR_MODE, err, errlen);
    for (size_t i = 0; r == 0 && i < cd->n_files; i++) {
        const ag_secret_file *f = &cd->files[i];
        if (f->policy == AG_FILE_REFRESH) {
            if (dir_leader(cd, f) == f)
                r = write_refresh_dir(et, ci, f, res, err, errlen);
            continue;
        }
        const ag_resolved_secret *v = value_of(res, ci, cd->secrets[f->secret].name);
        if (!v)
            return es_errf(err, errlen, -ENOENT, "secret %s: no value was resolved",
                           cd->secrets[f->secret].name);
        if ((r = file_path(et, ci, 'f', f->secret, p, sizeof p)) == 0)
            r = ag_files_write(p, v->value, v->len, f->mode, f->uid, f->gid, err, errlen);
    }
    return r;
}

int ag_eng_files_write(etask *et, const ag_resolution *res, char *reason, size_t rlen)
{
    const ag_taskdef *td = et->td ? et->td->td : NULL;
    if (!td_has_files(td))
        return 0;
    char err[AG_FILES_ERR_MAX] = "", dir[AG_FILES_PATH_MAX];
    int r = ag_files_mkdirs(et->e->files_dir, AG_FILES_DIR_MODE, err, sizeof err);
    if (r == 0 && ag_eng_external(et)) {
        char sub[AG_FILES_PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/" DOCKER_SUBDIR, et->e->files_dir) >= (int)sizeof sub)
            r = es_errf(err, sizeof err, -ENAMETOOLONG, "the files directory's path is too long");
        else
            r = ag_files_mkdirs(sub, AG_FILES_DIR_MODE, err, sizeof err);
    }
    /* never a value on a disk: the check comes before any write */
    if (r == 0)
        r = ag_files_check_memory_fs(et->e->files_dir, err, sizeof err);
    if (r == 0 && (r = task_dir(et, dir, sizeof dir)) < 0)
        snprintf(err, sizeof err, "the files directory's path is too long");
    if (r == 0)
        r = ag_files_mkdirs(dir, AG_FILES_DIR_MODE, err, sizeof err);
    for (size_t ci = 0; r == 0 && ci < td->n_containers; ci++)
        if (td->containers[ci].n_files)
            r = write_container(et, ci, res, err, sizeof err);
    if (r < 0) {
        ag_eng_files_remove(et);
        snprintf(reason, rlen, "ResourceInitializationError: unable to write the secret files: %s",
                 err);
    }
    return r;
}

void ag_eng_files_remove(etask *et)
{
    char dir[AG_FILES_PATH_MAX];
    /* a socket container that exists keeps its files past its task: `docker
     * start` runs it again with the same mounts (ag_eng_files_remove_docker) */
    if (ag_eng_external(et) && et->t->n_containers && et->t->containers[0].docker_id)
        return;
    if (!et->e->files_dir || task_dir(et, dir, sizeof dir) < 0)
        return;
    int r = ag_files_remove_tree(dir);
    if (r < 0)
        es_warn("task %s: cannot remove its secret files %s: %s", et->t->id, dir, strerror(-r));
}

/* ---- mounts ---- */

void ag_eng_mounts_free(ag_eng_mounts *m)
{
    es_free(m->m);
    es_free(m->paths);
    memset(m, 0, sizeof *m);
}

/* Container ci's bind mounts: each frozen file alone, each refresh directory
 * at its parent. 0, -ENOMEM, -ENAMETOOLONG. */
int ag_eng_files_mounts(const etask *et, size_t ci, ag_eng_mounts *out)
{
    memset(out, 0, sizeof *out);
    const ag_container_def *cd = &et->td->td->containers[ci];
    if (!cd->n_files)
        return 0;
    /* per mount: the host path, and the target when it is a directory */
    out->m = es_calloc(cd->n_files, sizeof *out->m);
    out->paths = es_calloc(cd->n_files * 2, AG_FILES_PATH_MAX);
    if (!out->m || !out->paths) {
        ag_eng_mounts_free(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cd->n_files; i++) {
        const ag_secret_file *f = &cd->files[i];
        char *src = out->paths + out->n * 2 * AG_FILES_PATH_MAX;
        char *dst = src + AG_FILES_PATH_MAX;
        bool refresh = f->policy == AG_FILE_REFRESH;
        if (refresh && dir_leader(cd, f) != f)
            continue; /* its directory is mounted with the leader's */
        if (file_path(et, ci, refresh ? 'r' : 'f', f->secret, src, AG_FILES_PATH_MAX) < 0) {
            ag_eng_mounts_free(out);
            return -ENAMETOOLONG;
        }
        snprintf(dst, AG_FILES_PATH_MAX, "%.*s",
                 (int)(refresh ? dir_len(f->path) : strlen(f->path)), f->path);
        out->m[out->n++] = (dk_mount){.source = src, .target = dst, .read_only = true};
    }
    return 0;
}

/* ---- the Docker socket's containers ---- */

int ag_engine_adopt_files(ag_engine *e, const char *task, const ag_resolution *res,
                          ag_eng_mounts *out, char *reason, size_t rlen)
{
    memset(out, 0, sizeof *out);
    etask *et = ag_eng_find(e, task);
    if (!et || !ag_eng_external(et) || !et->td || !et->td->td) {
        snprintf(reason, rlen, "ResourceInitializationError: the container's task is gone");
        return -ENOENT;
    }
    int r = ag_eng_files_write(et, res, reason, rlen);
    if (r == 0 && (r = ag_eng_files_mounts(et, 0, out)) < 0) {
        ag_eng_files_remove(et);
        snprintf(reason, rlen, "ResourceInitializationError: unable to mount the secret files: %s",
                 strerror(-r));
    }
    return r;
}

/* The task ID at the end of a task ARN (or the bare ID), if it can name a
 * directory: NULL otherwise. */
static const char *arn_task_id(const char *arn)
{
    const char *id = arn ? strrchr(arn, '/') : NULL;
    id = id ? id + 1 : arn;
    if (!id || !*id || strlen(id) > 64 || strspn(id, "0123456789abcdef") != strlen(id))
        return NULL;
    return id;
}

void ag_eng_files_remove_docker(ag_engine *e, const char *task_arn)
{
    const char *id = arn_task_id(task_arn);
    char p[AG_FILES_PATH_MAX];
    if (!id || !e->files_dir ||
        snprintf(p, sizeof p, "%s/" DOCKER_SUBDIR "/%s", e->files_dir, id) >= (int)sizeof p)
        return;
    int r = ag_files_remove_tree(p);
    if (r < 0)
        es_warn("engine: cannot remove the secret files %s: %s", p, strerror(-r));
}

/* Does a container of the list carry the task-ARN label of task id? */
static bool listed(const dk_container_summary *items, size_t n, const char *id)
{
    for (size_t k = 0; k < n; k++)
        for (size_t l = 0; l < items[k].nlabels; l++)
            if (strcmp(items[k].labels[l].key, DK_TASK_ARN_LABEL) == 0) {
                const char *tid = arn_task_id(items[k].labels[l].value);
                if (tid && strcmp(tid, id) == 0)
                    return true;
            }
    return false;
}

/* Removes every directory of dir that keep(arg, name) does not keep; the
 * count removed (the rest is warned of). */
static size_t sweep_dir(const char *dir, bool (*keep)(void *arg, const char *name), void *arg)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t removed = 0;
    for (struct dirent *de; (de = readdir(d));) {
        char p[AG_FILES_PATH_MAX];
        if (de->d_name[0] == '.' || keep(arg, de->d_name) ||
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p)
            continue;
        int r = ag_files_remove_tree(p);
        if (r < 0)
            es_warn("engine: cannot remove secret files %s: %s", p, strerror(-r));
        else
            removed++;
    }
    closedir(d);
    return removed;
}

typedef struct docker_keep {
    ag_engine *e;
    const dk_container_summary *items;
    size_t n;
} docker_keep;

/* A listed container's, or a task's still waiting for the container its
 * client is creating. */
static bool keep_docker(void *arg, const char *name)
{
    docker_keep *k = arg;
    if (listed(k->items, k->n, name))
        return true;
    etask *et = ag_eng_find(k->e, name);
    return et && et->t->last_status != AG_TASK_STOPPED && !et->t->containers[0].docker_id;
}

void ag_eng_files_sweep_docker(ag_engine *e, const dk_container_summary *items, size_t n)
{
    char sub[AG_FILES_PATH_MAX];
    if (!e->files_dir ||
        snprintf(sub, sizeof sub, "%s/" DOCKER_SUBDIR, e->files_dir) >= (int)sizeof sub)
        return;
    docker_keep k = {e, items, n};
    size_t removed = sweep_dir(sub, keep_docker, &k);
    if (removed)
        es_notice("engine: removed the secret files of %zu removed Docker-socket containers",
                  removed);
}

/* ---- crash recovery ---- */

/* A task's that has not stopped; the socket's containers' (swept after the
 * first list). */
static bool keep_task(void *arg, const char *name)
{
    etask *et = ag_eng_find(arg, name);
    return strcmp(name, DOCKER_SUBDIR) == 0 || (et && et->t->last_status != AG_TASK_STOPPED);
}

void ag_eng_files_sweep(ag_engine *e)
{
    size_t removed = sweep_dir(e->files_dir, keep_task, e);
    if (removed)
        es_notice("engine: removed the secret files of %zu stopped or unknown tasks", removed);
}

/* ---- refresh ---- */

/* Does container ci of et hold secret m as a refresh file? */
static const ag_secret_file *refresh_file(const etask *et, const ag_secret_meta *m, size_t *ci)
{
    const ag_taskdef *td = et->td ? et->td->td : NULL;
    if (!td || m->target != AG_SECRET_ENV || !m->container_name)
        return NULL;
    const ag_container_def *cd = ag_taskdef_container(td, m->container_name);
    const ag_secret_file *f = cd ? ag_td_file_for(cd, m->name) : NULL;
    if (!f || f->policy != AG_FILE_REFRESH)
        return NULL;
    *ci = (size_t)(cd - td->containers);
    return f;
}

/* Records the refreshed versions: only the refresh files' secrets (Env and
 * frozen files keep the value, and the version, they were created with). */
static void record_refreshed(etask *et, const ag_resolution *res)
{
    for (size_t i = 0; i < et->t->n_secrets; i++) {
        ag_secret_meta *m = &et->t->secrets[i];
        size_t ci;
        if (!refresh_file(et, m, &ci))
            continue;
        const ag_resolved_secret *v = value_of(res, ci, m->name);
        if (!v)
            continue;
        bool changed = !m->version || !v->version || strcmp(m->version, v->version) != 0;
        if (ag_task_secret_meta_refreshed(m, v->source_arn, v->version, v->resolved_at,
                                          v->fingerprint) < 0) {
            es_err("task %s: out of memory recording secret %s", et->t->id, m->name);
            continue;
        }
        if (changed)
            es_notice("task %s: container %s: secret file %s (%s) refreshed to version %s",
                      et->t->id, m->container_name, m->name, m->value_from,
                      m->version ? m->version : "?");
    }
    ag_eng_persist(et);
}

static void on_refresh_resolved(void *arg, ag_resolution *res, const char *reason)
{
    etask *et = arg;
    et->refreshing = false;
    if (!ag_eng_op_end(et)) {
        ag_resolution_free(res);
        return;
    }
    ag_task *t = et->t;
    if (!res)
        es_warn("task %s: the refresh of its secret files failed (the next drift round tries "
                "again): %s",
                t->id, reason ? reason : "unknown failure");
    if (!res || t->last_status != AG_TASK_RUNNING || t->desired_status == AG_TASK_STOPPED) {
        ag_resolution_free(res);
        ag_eng_advance(et);
        return;
    }
    const ag_taskdef *td = et->td->td;
    char err[AG_FILES_ERR_MAX] = "";
    int r = ag_files_check_memory_fs(et->e->files_dir, err, sizeof err);
    for (size_t ci = 0; r == 0 && ci < td->n_containers; ci++) {
        const ag_container_def *cd = &td->containers[ci];
        for (size_t i = 0; r == 0 && i < cd->n_files; i++)
            if (cd->files[i].policy == AG_FILE_REFRESH &&
                dir_leader(cd, &cd->files[i]) == &cd->files[i])
                r = write_refresh_dir(et, ci, &cd->files[i], res, err, sizeof err);
    }
    if (r < 0)
        es_warn("task %s: cannot refresh its secret files: %s", t->id, err);
    else
        record_refreshed(et, res);
    ag_resolution_free(res); /* wipes */
    ag_eng_advance(et);
}

static bool wants_refresh(const etask *et)
{
    const ag_task *t = et->t;
    if (et->refreshing || t->last_status != AG_TASK_RUNNING ||
        t->desired_status == AG_TASK_STOPPED || !et->td || !et->td->td)
        return false;
    for (size_t i = 0; i < t->n_secrets; i++) {
        size_t ci;
        if (t->secrets[i].drift == AG_DRIFT_STALE && refresh_file(et, &t->secrets[i], &ci))
            return true;
    }
    return false;
}

void ag_engine_refresh_files(ag_engine *e)
{
    if (e->closing)
        return;
    for (etask *et = e->tasks; et; et = et->next) {
        if (!wants_refresh(et))
            continue;
        /* the launch's path: plan, preflight, the execution role, fetch;
         * the environment files are the launch's only */
        int r = ag_resolve_start_secrets(e->cfg.resolver, et->td->td, on_refresh_resolved, et);
        if (r < 0) {
            es_warn("task %s: cannot start the refresh of its secret files: %s", et->t->id,
                    strerror(-r));
            continue;
        }
        es_info("task %s: a secret file's value was rotated: resolving it again", et->t->id);
        et->refreshing = true;
        ag_eng_op_begin(et);
    }
}
