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

/* S3: 1 when this Fargate platform version (Linux) supports secrets
 * (LATEST, or 1.3.0 and later), 0 when it does not, -EINVAL when version is
 * neither LATEST nor MAJOR.MINOR[.PATCH]. */
int ag_api_platform_has_secrets(const char *version);

#endif
