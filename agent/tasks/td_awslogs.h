/* td_awslogs.h - a container's "logDriver": "awslogs" as ECS runs it (issue
 * 20): the options checked at registration, and at each container's create
 * the options turned into what Docker's awslogs driver is given.
 *
 * ECS splits the work between its control plane and its agent; the options
 * Docker is finally given are (ECS's agent: agent/engine/docker_task_engine.go
 * and agent/api/task/task.go ApplyExecutionRoleLogsAuth; Docker's driver:
 * moby daemon/logger/awslogs/cloudwatchlogs.go):
 *
 *   awslogs-stream-prefix P   never reaches Docker: it becomes
 *                             awslogs-stream = P/<container name>/<task id>
 *   awslogs-credentials-endpoint
 *                             set by the agent when the task has an
 *                             execution role: the driver's credentials are
 *                             that role's, served for this task only
 *                             (agent/endpoints/); a task definition may not
 *                             set it
 *   awslogs-region            the task's region when not given (Docker on an
 *                             EC2 container instance falls back to the
 *                             instance's region from IMDS, which is the
 *                             region the task runs in; here there is no IMDS)
 *   mode                      non-blocking when not given (ECS's default since
 *                             June 2025, for an account without the
 *                             defaultLogDriverMode setting), and then
 *                             max-buffer-size 10m when not given (ECS's
 *                             agent's maxBufferSizeDefault)
 *   the others                as given
 *
 * At registration, what Docker would refuse at create is refused here with
 * a ClientException naming the option, so that a task definition does not
 * fail at launch: an option Docker's awslogs driver does not know, a
 * missing awslogs-group (ECS: "Required: Yes"), booleans that Go's
 * strconv.ParseBool refuses, non-positive counts, datetime-format with
 * multiline-pattern, a mode other than blocking / non-blocking,
 * max-buffer-size with mode blocking. Ours on top: awslogs-stream with
 * awslogs-stream-prefix (one names the stream, the other makes its name),
 * and a prefix that cannot make a CloudWatch Logs stream name (':' or '*',
 * or a name longer than 512). Pure: no I/O, no logging. */
#ifndef AG_TD_AWSLOGS_H
#define AG_TD_AWSLOGS_H

#include <stdbool.h>
#include <stddef.h>

struct ag_td_error;
struct ag_logconf;
struct ag_kv;

#define AG_AWSLOGS_DRIVER "awslogs"
#define AG_AWSLOGS_STREAM_MAX 512 /* CloudWatch Logs' log stream name */
#define AG_AWSLOGS_TASK_ID_LEN 32 /* the task ARN's id: 32 hex */
/* What ag_awslogs_apply may add to the options: stream, region, mode,
 * max-buffer-size, credentials endpoint. */
#define AG_AWSLOGS_ADDED_MAX 5
#define AG_AWSLOGS_MODE_DEFAULT "non-blocking"
#define AG_AWSLOGS_BUFFER_DEFAULT "10m"

/* The registration check of an awslogs configuration l of container
 * `container` (its name); path is the logConfiguration's field path.
 * 0, or -EINVAL with e filled (ClientException naming the option). */
int ag_awslogs_check(const struct ag_logconf *l, const char *container, const char *path,
                     struct ag_td_error *e);

typedef struct ag_awslogs_launch {
    const char *container; /* the container's name */
    const char *task_id;   /* the task ARN's last part */
    const char *region;    /* the task's region */
    /* awslogs-credentials-endpoint's value (agent/endpoints/
     * ag_ep_logs_uri), NULL when the task has no execution role (Docker's
     * own credentials are used, as ECS does) */
    const char *credentials_uri;
} ag_awslogs_launch;

/* Turns the options kv[0..*n) (owned strings, es_alloc'd; the array has
 * room for cap entries, at least *n + AG_AWSLOGS_ADDED_MAX) into Docker's:
 * awslogs-stream-prefix replaced by awslogs-stream, the defaults added, the
 * credentials endpoint set. 0, -ENOMEM, -EMSGSIZE (the stream name would be
 * too long: registration refuses that, a stored definition could not),
 * -ENOSPC (cap too small). On failure kv is left valid for its owner to free. */
int ag_awslogs_apply(struct ag_kv *kv, size_t *n, size_t cap, const ag_awslogs_launch *l);

/* Whether container i of td logs with awslogs on the task's execution role's
 * credentials (td names executionRoleArn), as ECS runs it: the agent then
 * serves that role's credentials to Docker's driver for this task
 * (agent/endpoints/). i == SIZE_MAX: whether any container does. */
struct ag_taskdef;
bool ag_awslogs_uses_exec_role(const struct ag_taskdef *td, size_t i);

/* "P/<container>/<task id>" into out. 0 or -EMSGSIZE. */
int ag_awslogs_stream_name(const char *prefix, const char *container, const char *task_id,
                           char *out, size_t n);

#endif
