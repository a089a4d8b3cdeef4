/* tasks.h - the ECS API's task operations over the task engine.
 *
 *   RunTask        cluster, count 1..10, taskDefinition (family = latest
 *                  ACTIVE, family:revision, ARN), overrides, startedBy,
 *                  group, launchType (EC2 | EXTERNAL | FARGATE),
 *                  platformVersion (FARGATE only), clientToken
 *                  -> tasks[], failures[]
 *   StartTask      the same with containerInstances[] (1..10: one task
 *                  each; this host is the only instance) -> tasks[], failures[]
 *   StopTask       task (ARN or id), reason -> task (stopCode UserInitiated)
 *   DescribeTasks  tasks[] 1..100 -> tasks[], failures[] (MISSING)
 *   ListTasks      family, startedBy (alone, as ECS), serviceName (tasks
 *                  whose group is service:NAME), desiredStatus (RUNNING by
 *                  default), launchType, maxResults / nextToken -> taskArns
 *
 * S3: a FARGATE launch below platform version 1.3.0 (Linux; LATEST is the
 * newest) of a task definition with secrets or secretOptions is refused
 * with a ClientException naming the platform version.
 *
 * clientToken (RunTask): the same token within AG_API_IDEM_WINDOW_S answers
 * the tasks the first call started (the same body is required; another
 * body with that token is an InvalidParameterException). The table is in
 * memory, at most AG_API_IDEM_MAX tokens (the oldest goes first). */
#ifndef AG_API_TASKS_H
#define AG_API_TASKS_H

#include "agent/api/api.h"
#include "agent/tasks/engine.h"

#define AG_API_IDEM_MAX 1024
#define AG_API_IDEM_WINDOW_S 600
#define AG_API_CLIENT_TOKEN_MAX 64
#define AG_API_STARTED_BY_MAX 128
#define AG_API_GROUP_MAX 255
#define AG_API_STOP_REASON_MAX 255
#define AG_API_TASK_REF_MAX 2048

typedef struct ag_api_tasks ag_api_tasks;

/* Adds the task operations to api and the engine's counts to its clusters
 * and /metrics. Both must outlive the returned object. 0, -ENOMEM, -ENOSPC. */
int ag_api_tasks_attach(ag_api *api, ag_engine *engine, ag_api_tasks **out);
/* Frees the table of client tokens; the operations must no longer be
 * called (free the API first, or with it). NULL-safe. */
void ag_api_tasks_free(ag_api_tasks *t);

/* In a cluster (agent/cluster_tasks.c): RunTask is placed by the leader
 * over every instance, and DescribeTasks, ListTasks and StopTask answer for
 * the whole cluster. The API checks, authorises and validates as it does
 * alone, then hands over; alone, no hooks are set and nothing changes. */
typedef struct ag_api_run_args {
    const char *family;
    int64_t revision;
    int64_t cpu, memory; /* one task's reservation */
    int64_t count;
    const char *group, *started_by, *launch_type; /* started_by may be NULL */
    const char *td_arn;
    const char *overrides; /* JSON object text, or NULL */
    size_t overrides_len;
    const es_json *strategies, *constraints; /* the request's arrays, or NULL */
    const char *principal;
} ag_api_run_args;
/* A task of the cluster as ListTasks filters it. */
typedef struct ag_api_cluster_task {
    const char *id, *arn, *family, *started_by, *group, *launch_type, *instance_arn;
    bool desired_running;
} ag_api_cluster_task;
typedef int (*ag_api_cluster_task_fn)(void *arg, const ag_api_cluster_task *t);
typedef struct ag_api_tasks_cluster {
    /* RunTask's answer through reply, once placed. 0, or < 0 with why (the
     * reply is still the caller's): -EINVAL (InvalidParameterException: a
     * strategy or a constraint), else ServerException. */
    int (*run)(void *arg, const ag_api_run_args *a, aw_listener_reply *reply, char *why,
               size_t whylen);
    /* Writes the cluster's task ref (ID or ARN) as DescribeTasks shows it;
     * false when the cluster does not know it. */
    bool (*write_task)(void *arg, const char *ref, es_jw *w);
    /* The task's ARN when the cluster knows ref, else NULL (valid until
     * the loop runs). */
    const char *(*task_arn)(void *arg, const char *ref);
    /* Every task of the cluster (newest first is not promised: ID order). */
    void (*foreach_task)(void *arg, ag_api_cluster_task_fn fn, void *fn_arg);
    /* StopTask of a task another host runs: answered through reply once
     * etcd holds the stop. 0, -ENOENT (not the cluster's), < 0. */
    int (*stop)(void *arg, const char *ref, const char *reason, aw_listener_reply *reply);
    void *arg;
} ag_api_tasks_cluster;
void ag_api_tasks_set_cluster(ag_api_tasks *t, const ag_api_tasks_cluster *c);

/* DescribeTasks held while a task it names moves (agent/api/task_waits.h);
 * w is borrowed and outlives t's use of it (NULL: never held). */
typedef struct ag_task_waits ag_task_waits;
void ag_api_tasks_set_waits(ag_api_tasks *t, ag_task_waits *w);
/* DescribeTasks' answer members for refs, looked up now: the held
 * answers' writer (an ag_task_waits_write_fn; arg is the ag_api_tasks). */
int ag_api_tasks_write_described(void *arg, const char *const *refs, size_t n, es_jw *w);

/* One task's CPU units (memory false) or MiB (true) reserved on its
 * instance: the task-level value when it is a number, else the sum of its
 * containers'. What RunTask's and the services' placements count. */
int64_t ag_api_td_reservation(const ag_taskdef *td, bool memory);

/* S3: 1 when this Fargate platform version (Linux) supports secrets
 * (LATEST, or 1.3.0 and later), 0 when it does not, -EINVAL when version is
 * neither LATEST nor MAJOR.MINOR[.PATCH]. */
int ag_api_platform_has_secrets(const char *version);

#endif
