/* api.h - the ECS-compatible API (JSON 1.1, AmazonEC2ContainerServiceV20141113)
 * and the /metrics page, served on the daemon's loopback listener.
 *
 * The listener (aws/listener.h) verifies each request's SigV4 signature
 * (signing name "ecs", keys from the embedded store) and hands the operation
 * name and body to ag_api_handle, which answers ECS-shaped JSON or an ECS
 * error {"__type": code, "message": text}:
 *
 *   ClientException            what the request asks cannot be done (unknown
 *                              or inactive task definition, a rule between
 *                              fields such as S3's Fargate platform version)
 *   InvalidParameterException  a field of the wrong type, length or value
 *   ClusterNotFoundException   a cluster other than the configured one
 *   SerializationException     a body that is not JSON
 *   ServerException            the store or the engine failed (500)
 * Every message starts with the field it is about. Every list a peer sends
 * has a maximum (ECS's own where it has one).
 *
 * Operations, split so that the task-definition part does not depend on the
 * task engine:
 *   api.c        RegisterTaskDefinition, DescribeTaskDefinition,
 *                ListTaskDefinitions, DeregisterTaskDefinition,
 *                ListTaskDefinitionFamilies, ListClusters, DescribeClusters,
 *                and the /metrics route
 *   api_tasks.c  RunTask, StartTask, StopTask, DescribeTasks, ListTasks
 *                (ag_api_tasks_attach plugs the engine in through
 *                ag_api_add_op and ag_api_set_counts)
 *   tags.c       TagResource, UntagResource, ListTagsForResource on task
 *                definitions, tasks and services (agent/api/tags.h); the
 *                `tags` of RegisterTaskDefinition, RunTask and CreateService
 *   instances.c  ListContainerInstances, DescribeContainerInstances,
 *                UpdateContainerInstancesState (agent/api/instances.h): the
 *                cluster's container instances (one deferred answer: an
 *                operation may take the listener's reply, ag_api_req.call)
 * An operation that is not attached answers UnknownOperationException.
 *
 * The one cluster is the configured one (ECS_CLUSTER): ARN
 * arn:aws:ecs:REGION:ACCOUNT:cluster/NAME, status ACTIVE, task counts from
 * the engine. Timestamps are epoch seconds. Answers never hold a secret
 * value: task definitions hold references, tasks hold metadata (version,
 * keyed fingerprint).
 *
 * Pagination tokens are opaque to callers: "t1." + hex of the last item's
 * key (family:revision, family, or task id), refused with
 * InvalidParameterException when malformed. One thread (the loop). */
#ifndef AG_API_H
#define AG_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/metrics.h"
#include "agent/secrets/resolve.h"
#include "agent/store/store.h"
#include "agent/tasks/taskdef.h"
#include "aws/local/local.h"
#include "aws/listener.h"
#include "common/buf.h"
#include "common/json.h"

#define AG_API_TARGET_PREFIX "AmazonEC2ContainerServiceV20141113."
#define AG_API_SIGNING_NAME "ecs"
#define AG_API_BODY_MAX (64u << 10) /* every operation but RegisterTaskDefinition */
#define AG_API_PAGE_MAX 100         /* maxResults, ECS's */
#define AG_API_DESCRIBE_MAX 100     /* DescribeTasks.tasks, DescribeClusters.clusters */
#define AG_API_TOKEN_MAX 1024       /* nextToken */
#define AG_API_OPS_MAX 32
#define AG_API_CLUSTER_ARN_MAX 512

typedef struct ag_api ag_api;

typedef struct ag_api_config {
    ag_store *store;       /* borrowed */
    ag_metrics *metrics;   /* borrowed; may be NULL (no /metrics) */
    ag_resolver *resolver; /* borrowed; may be NULL: its counters in /metrics */
    aw_listener *server;   /* borrowed; may be NULL: its counters in /metrics */
    const char *region, *account, *cluster;
    bool reject_env_secret_clash; /* ag_td_ctx's */
    int64_t (*now)(void);         /* epoch seconds; NULL: time() */
    /* Who may do what (ag_api_authorize). The embedded IAM (borrowed): every
     * action is decided by the caller's policies, as the embedded services
     * decide theirs. NULL (aws mode: the daemon cannot read the caller's IAM
     * policies): only the account root, the administrator key, may call. */
    al_ctx *iam;
} ag_api_config;

/* Copies the strings. 0, -EINVAL, -ENOMEM. */
int ag_api_create(const ag_api_config *cfg, ag_api **out);
void ag_api_free(ag_api *api);
/* Mounts the JSON 1.1 route and GET /metrics on the listener s. 0 or
 * -ENOSPC. */
int ag_api_attach(ag_api *api, aw_listener *s);

/* One ECS call (arg is the ag_api), as the listener's route hands it over.
 * 0 with the answer in out, or < 0 with err filled. */
int ag_api_handle(void *arg, const char *operation, const char *principal, const char *body,
                  size_t len, es_buf *out, al_error *err);
/* An al_get_route_fn for /metrics (Prometheus text, version 0.0.4). */
int ag_api_metrics(void *arg, const char *path, es_buf *out, const char **content_type);

/* ---- for the operations outside api.c (api_tasks.c) ---- */

/* One request: the parsed body, the writer of the answer (an object is
 * open: write its members), and the error to fill. */
typedef struct ag_api_req {
    ag_api *api;
    const char *operation;
    const char *principal;
    const es_json *body; /* a JSON object */
    const char *raw;     /* the body as received */
    size_t raw_len;
    es_jw *w;
    al_error *err;
    bool authorized; /* ag_api_authorize allowed something: an operation that
                        answers 0 without it is refused (ServerException) */
    /* The listener's call (NULL when called directly: tests, fuzzing): an
     * operation whose answer comes later (a write to etcd) takes its reply
     * with aw_listener_defer and answers AW_LISTENER_LATER, once it has
     * asked ag_api_authorize. */
    const aw_listener_call *call;
} ag_api_req;

/* Answers 0, or < 0 after ag_api_fail. */
typedef int (*ag_api_op_fn)(void *arg, ag_api_req *rq);
/* Adds (or replaces) an operation. 0 or -ENOSPC. name is not copied. */
int ag_api_add_op(ag_api *api, const char *name, ag_api_op_fn fn, void *arg);

/* Task counts for DescribeClusters and /metrics. */
typedef void (*ag_api_counts_fn)(void *arg, size_t by_status[AG_TASK_STATUS_COUNT]);
void ag_api_set_counts(ag_api *api, ag_api_counts_fn fn, void *arg);
/* This host's task counts (zeros without a counts function). */
void ag_api_task_counts(const ag_api *api, size_t by_status[AG_TASK_STATUS_COUNT]);
/* Task definitions shared by the cluster (agent/cluster_td.c): with a
 * share, RegisterTaskDefinition and DeregisterTaskDefinition go to it and
 * are answered once it calls done (agent/api/td_shared.c); the share puts
 * what it wrote into the store before. done's why: a failure's reason. */
typedef void (*ag_api_td_done)(void *ctx, int err, int64_t revision, const char *why);
typedef struct ag_api_td_share {
    /* body: request-shaped JSON (ag_taskdef_write_request); first: the
     * revision to try first. 0 (done follows) or < 0 (-EMSGSIZE: too large) */
    int (*register_td)(void *arg, const char *family, const char *body, size_t len, int64_t first,
                       int64_t now, ag_api_td_done done, void *ctx);
    int (*deregister_td)(void *arg, const char *family, int64_t revision, int64_t now,
                         ag_api_td_done done, void *ctx);
    void *arg;
} ag_api_td_share;
void ag_api_set_td_share(ag_api *api, const ag_api_td_share *share);
const ag_api_td_share *ag_api_get_td_share(const ag_api *api); /* NULL: none */
/* "taskDefinition" (and with_tags, "tags" from the store) into w. 0 or -EIO. */
int ag_api_write_taskdef(ag_api *api, es_jw *w, const ag_taskdef *td, bool with_tags);
/* The shared halves of the two operations (td_shared.c): take td, answer later. */
int ag_api_td_register_shared(ag_api_req *rq, ag_taskdef *td);
int ag_api_td_deregister_shared(ag_api_req *rq, ag_taskdef *td);

/* DescribeClusters' registeredContainerInstancesCount; without one: 1 (this host). */
typedef size_t (*ag_api_instances_fn)(void *arg);
void ag_api_set_instances(ag_api *api, ag_api_instances_fn fn, void *arg);
/* A part's figures for /metrics, brought up to date each time the page is
 * asked for (before it is written). At most AG_API_METRICS_HOOKS_MAX. 0 or
 * -ENOSPC. */
#define AG_API_METRICS_HOOKS_MAX 8
typedef void (*ag_api_metrics_fn)(void *arg, ag_metrics *m);
int ag_api_add_metrics_hook(ag_api *api, ag_api_metrics_fn fn, void *arg);
/* (a hook brings a counter it keeps itself up to date with
 * ag_metrics_sync_counter, metrics.h) */
/* Writes an error answer for a deferred call (the JSON 1.1 error of
 * ag_api_fail's codes) through its reply; counts it as ag_api_handle does. */
void ag_api_reply_error(ag_api *api, aw_listener_reply *reply, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* Fills rq->err (status 400, or 500 for ServerException) and answers -EINVAL. */
int ag_api_fail(ag_api_req *rq, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- authorisation: every operation asks before it acts ----
 *
 * As ECS: each action on its resource, with the condition keys ECS gives
 * it (ecs:cluster, ecs:task-definition), and iam:PassRole (condition
 * iam:PassedToService = ecs-tasks.amazonaws.com) on every role a request
 * hands to a task. A refusal is AccessDeniedException (400) with AWS's
 * wording: "User: ARN is not authorized to perform: ecs:RunTask on
 * resource: ARN because no identity-based policy allows the ecs:RunTask
 * action". ag_api_handle refuses an answer that no authorisation preceded,
 * so an operation cannot forget to ask. */
#define AG_API_PASSED_TO_SERVICE "ecs-tasks.amazonaws.com"
typedef struct ag_api_cond {
    const char *key, *value;
} ag_api_cond;
/* 0 allowed (rq->authorized set), or < 0 after filling rq->err. */
int ag_api_authorize(ag_api_req *rq, const char *action, const char *resource,
                     const ag_api_cond *conds, size_t nconds);
/* action on resource with ecs:cluster = the configured cluster's ARN. */
int ag_api_authorize_in_cluster(ag_api_req *rq, const char *action, const char *resource);
/* iam:PassRole on role_arn for ECS tasks; role_arn NULL or "" asks nothing. */
int ag_api_authorize_pass_role(ag_api_req *rq, const char *role_arn);
/* The task definition's ARN, arn:aws:ecs:REGION:ACCOUNT:task-definition/F:R. */
void ag_api_td_arn(const ag_api *api, const char *family, int64_t revision, char *out,
                   size_t outlen);
#define AG_API_TD_ARN_MAX (AG_TD_NAME_MAX + 128)

/* Field readers: absent leaves *out unchanged and answers 0 (or fails when
 * required); a wrong type or a length outside [min, max] fails naming the
 * field. */
int ag_api_str(ag_api_req *rq, const char *key, bool required, size_t min, size_t max,
               const char **out);
int ag_api_int(ag_api_req *rq, const char *key, int64_t min, int64_t max, int64_t *out);
/* An array of strings, each 1..item_max, at most max items (min when present). */
int ag_api_str_list(ag_api_req *rq, const char *key, bool required, size_t min, size_t max,
                    size_t item_max, const es_json **out);

/* The request's `cluster` (name or ARN; absent: the configured one) must
 * be the configured cluster: else ClusterNotFoundException. */
int ag_api_check_cluster(ag_api_req *rq);
/* The configured cluster's ARN. */
const char *ag_api_cluster_arn(const ag_api *api);
const char *ag_api_cluster(const ag_api *api); /* its name */
const char *ag_api_region(const ag_api *api);
const char *ag_api_account(const ag_api *api);
int64_t ag_api_now(const ag_api *api);
/* The store's last error, for an answer that says why a write failed. */
const char *ag_api_store_errmsg(const ag_api *api);
ag_store *ag_api_store(const ag_api *api);

/* Loads the task definition named by `field` (family = latest ACTIVE,
 * family:revision, or its ARN); ClientException naming it when unknown.
 * The caller owns *out. */
int ag_api_load_taskdef(ag_api_req *rq, const char *field, const char *ref, ag_taskdef **out);

/* Splits a task-definition reference. revision 0 when none was given.
 * family must hold AG_TD_NAME_MAX + 1 bytes. 0 or -EINVAL (why in err). */
int ag_api_parse_td_ref(const char *ref, const char *region, const char *account, char *family,
                        int64_t *revision, char *why, size_t whylen);

/* Pagination tokens: key <-> "t1.<hex>". */
int ag_api_token_make(const char *key, char *out, size_t outlen);
int ag_api_token_parse(const char *token, char *key, size_t keylen);

#endif
