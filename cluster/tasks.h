/* tasks.h - RunTask across the cluster's hosts (issue 23): the records the
 * agents hand each other through etcd, with no I/O (the glue is
 * agent/cluster_tasks.c).
 *
 * Keys (under /ecs-secrets/clusters/<cluster>/; IDs are 32 hex digits, so
 * no key escapes its place):
 *   requests/<requestId>                  a RunTask to place (the receiving
 *                                         agent writes it, the leader deletes it)
 *   assignments/<instanceId>/<taskId>     one task placed on one instance (the
 *                                         leader writes it, the owner deletes it
 *                                         once the task is STOPPED, the leader
 *                                         when the instance is lost)
 *   results/<requestId>                   the placement's answer (the leader
 *                                         writes it, the receiving agent
 *                                         deletes it once read)
 *   tasks/<taskId>                        the task's status (its owner writes it
 *                                         while it holds the assignment; the
 *                                         leader STOPPED when the host is lost)
 *   stops/<taskId>                        a StopTask asked through another
 *                                         agent (the owner stops the task,
 *                                         then deletes it)
 * The leader's writes compare a revision (requests/<id>'s: a request is
 * placed once; tasks/<id>'s: a lost task is marked once, and not over a
 * status its owner wrote meanwhile); the owner's compare its assignment's
 * create_revision (nothing it writes outlives the assignment).
 *
 * Values are JSON objects of names, numbers and the RunTask overrides as
 * given: never a secret value (a definition holds references only).
 * Reading one is reading outside input: bounded (CL_TK_VALUE_MAX, es_json's
 * limits), every field checked, the key's IDs must be the value's. */
#ifndef ES_CLUSTER_TASKS_H
#define ES_CLUSTER_TASKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/instance.h"
#include "cluster/placement.h"
#include "common/buf.h"

#define CL_TK_REQUESTS_LEAF "requests/"
#define CL_TK_ASSIGNMENTS_LEAF "assignments/"
#define CL_TK_RESULTS_LEAF "results/"
#define CL_TK_TASKS_LEAF "tasks/"
#define CL_TK_STOPS_LEAF "stops/"

#define CL_TK_ID_HEX 32          /* request and task IDs */
#define CL_TK_COUNT_MAX 10       /* RunTask's count, as ECS */
#define CL_TK_FAMILY_MAX 255     /* ECS's */
#define CL_TK_GROUP_MAX 255      /* ECS's */
#define CL_TK_STARTED_BY_MAX 128 /* ECS's */
#define CL_TK_LAUNCH_TYPE_MAX 15 /* EC2, EXTERNAL, FARGATE */
#define CL_TK_ARN_MAX 600        /* a task's or an instance's ARN */
#define CL_TK_REASON_MAX 1024    /* a stoppedReason or a failure's detail */
#define CL_TK_STATUS_MAX 15      /* PROVISIONING .. STOPPED */
#define CL_TK_CONTAINERS_MAX 10  /* ECS's containers of one definition */
#define CL_TK_NAME_MAX 255       /* a container's name */
#define CL_TK_OVERRIDES_MAX (32u << 10)
#define CL_TK_VALUE_MAX (CL_TK_OVERRIDES_MAX + 24u * 1024)
/* A result's reason (besides placement's, cl_pl_reason_name) when the
 * request's placement could never be written: count x overrides larger
 * than one etcd transaction, or a transaction etcd refused alone. */
#define CL_TK_REASON_TOO_LARGE "PLACEMENT_TOO_LARGE"
#define CL_TK_CONSTRAINT_TYPE_MAX 23

typedef struct cl_tk_strategy_text {
    char type[16];
    char field[CL_PL_FIELD_MAX + 1];
} cl_tk_strategy_text;
typedef struct cl_tk_constraint_text {
    char type[CL_TK_CONSTRAINT_TYPE_MAX + 1];
    char expression[CL_PL_EXPR_MAX + 1];
} cl_tk_constraint_text;

/* requests/<id>: what the leader needs to place a RunTask. Large (the
 * constraints' texts): allocate it. */
typedef struct cl_tk_request {
    char id[CL_TK_ID_HEX + 1];
    char from[CL_INSTANCE_ID_MAX + 1]; /* the receiving agent's instance ID */
    char family[CL_TK_FAMILY_MAX + 1];
    int64_t revision;
    int64_t count;       /* 1..CL_TK_COUNT_MAX */
    int64_t cpu, memory; /* one task's reservation (the definition's) */
    char group[CL_TK_GROUP_MAX + 1];
    char started_by[CL_TK_STARTED_BY_MAX + 1]; /* "": none */
    char launch_type[CL_TK_LAUNCH_TYPE_MAX + 1];
    cl_tk_strategy_text strategies[CL_PL_STRATEGIES_MAX];
    size_t n_strategies;
    cl_tk_constraint_text constraints[CL_PL_CONSTRAINTS_MAX];
    size_t n_constraints;
    const char *overrides; /* the RunTask's overrides object as JSON text, or
                              NULL; not owned (points into the value read) */
    size_t overrides_len;
    int64_t created_at;
    int64_t mod_revision; /* etcd's, not in the value */
} cl_tk_request;

/* assignments/<instanceId>/<taskId>: one task for one instance to launch. */
typedef struct cl_tk_assignment {
    char instance[CL_INSTANCE_ID_MAX + 1];
    char task_id[CL_TK_ID_HEX + 1];
    char request[CL_TK_ID_HEX + 1];
    char family[CL_TK_FAMILY_MAX + 1];
    int64_t revision;
    int64_t cpu, memory;
    char group[CL_TK_GROUP_MAX + 1];
    char started_by[CL_TK_STARTED_BY_MAX + 1];
    char launch_type[CL_TK_LAUNCH_TYPE_MAX + 1];
    const char *overrides; /* as in the request; not owned */
    size_t overrides_len;
    int64_t created_at;
} cl_tk_assignment;

/* results/<requestId>: the placed tasks and the failures, ECS-shaped. */
typedef struct cl_tk_placed {
    char task_id[CL_TK_ID_HEX + 1];
    char instance[CL_INSTANCE_ID_MAX + 1];
} cl_tk_placed;
typedef struct cl_tk_result {
    char request[CL_TK_ID_HEX + 1];
    char from[CL_INSTANCE_ID_MAX + 1]; /* the request's: who deletes the result */
    cl_tk_placed placed[CL_TK_COUNT_MAX];
    size_t n_placed;
    char reason[64]; /* the failures' reason (cl_pl_reason_name) when n_failed */
    size_t n_failed;
} cl_tk_result;

/* tasks/<taskId>: the task as its owner sees it. */
typedef struct cl_tk_container {
    char name[CL_TK_NAME_MAX + 1];
    char last_status[CL_TK_STATUS_MAX + 1];
    bool has_exit_code;
    int64_t exit_code;
} cl_tk_container;
typedef struct cl_tk_status {
    char task_id[CL_TK_ID_HEX + 1];
    char instance[CL_INSTANCE_ID_MAX + 1];
    char family[CL_TK_FAMILY_MAX + 1];
    int64_t revision;
    int64_t cpu, memory;
    char group[CL_TK_GROUP_MAX + 1];
    char started_by[CL_TK_STARTED_BY_MAX + 1];
    char launch_type[CL_TK_LAUNCH_TYPE_MAX + 1];
    char last_status[CL_TK_STATUS_MAX + 1];
    char desired_status[CL_TK_STATUS_MAX + 1];
    char stop_code[32];
    char stopped_reason[CL_TK_REASON_MAX + 1];
    int64_t created_at, started_at, stopped_at; /* epoch seconds; 0: not yet */
    cl_tk_container containers[CL_TK_CONTAINERS_MAX];
    size_t n_containers;
} cl_tk_status;

/* stops/<taskId>: a stop's code and reason, which the owner stops the task
 * with: UserInitiated for StopTask, ServiceSchedulerInitiated with the
 * scheduler's sentence for a service's stop (as the scheduler writes them
 * alone). code "" (a record of an older agent): UserInitiated. */
#define CL_TK_STOP_CODE_MAX 31
typedef struct cl_tk_stop {
    char task_id[CL_TK_ID_HEX + 1];
    char code[CL_TK_STOP_CODE_MAX + 1]; /* one of ECS's stop codes (cl_tk_stop_code_ok), or "" */
    char reason[CL_TK_REASON_MAX + 1];
} cl_tk_stop;
/* Whether s is one of ECS's task stop codes. */
bool cl_tk_stop_code_ok(const char *s);

/* Whether s is 32 lower-case hex digits (a request's or a task's ID). */
bool cl_tk_id_ok(const char *s);

/* The prefix of a leaf (CL_TK_*_LEAF) and the keys. The length, or -EINVAL
 * (a bad cluster or ID, or out too small). */
int cl_tk_prefix(const char *cluster, const char *leaf, char *out, size_t outlen);
int cl_tk_request_key(const char *cluster, const char *id, char *out, size_t outlen);
int cl_tk_assignment_key(const char *cluster, const char *instance, const char *task_id, char *out,
                         size_t outlen);
int cl_tk_result_key(const char *cluster, const char *id, char *out, size_t outlen);
int cl_tk_status_key(const char *cluster, const char *task_id, char *out, size_t outlen);
int cl_tk_stop_key(const char *cluster, const char *task_id, char *out, size_t outlen);

/* Values: the write appends to out (0, -EINVAL: a field outside its
 * rules, -EMSGSIZE: over CL_TK_VALUE_MAX, -ENOMEM); the read takes kv (its
 * key under prefix, the leaf's) into out (0, or -EINVAL / -ENOMEM with
 * why, never a value's text). Pointers in out point into kv->value. */
int cl_tk_request_write(const cl_tk_request *rq, es_buf *out);
int cl_tk_request_read(const char *prefix, const cl_kv *kv, cl_tk_request *out, char *why,
                       size_t whylen);
int cl_tk_assignment_write(const cl_tk_assignment *as, es_buf *out);
int cl_tk_assignment_read(const char *prefix, const cl_kv *kv, cl_tk_assignment *out, char *why,
                          size_t whylen);
int cl_tk_result_write(const cl_tk_result *rs, es_buf *out);
int cl_tk_result_read(const char *prefix, const cl_kv *kv, cl_tk_result *out, char *why,
                      size_t whylen);
int cl_tk_status_write(const cl_tk_status *st, es_buf *out);
int cl_tk_status_read(const char *prefix, const cl_kv *kv, cl_tk_status *out, char *why,
                      size_t whylen);
int cl_tk_stop_write(const cl_tk_stop *sp, es_buf *out);
int cl_tk_stop_read(const char *prefix, const cl_kv *kv, cl_tk_stop *out, char *why, size_t whylen);

/* A host lost (issue 23): its instance's record left the view (its lease
 * expired: the agent was killed or cut off for a whole TTL). The leader
 * writes each of its tasks STOPPED with ECS's words for a task whose
 * container instance is gone, and deletes its assignment (the
 * reservation). ECS says "Host EC2 (instance i-...) terminated."; the
 * stop code is TerminationNotice, ECS's code for a task stopped because
 * its host went away. */
#define CL_TK_LOST_STOP_CODE "TerminationNotice"

/* The STOPPED record of a lost task into out: from its last record (prev,
 * may be NULL: kept as written, its containers STOPPED) or else from its
 * assignment (as, may be NULL; one of the two is needed). host: the
 * instance's EC2 instance ID if known ("" or NULL: the instance's ID is
 * named). now: epoch seconds, the stoppedAt. 0, or -EINVAL (neither given,
 * or the result would not be a valid record). */
int cl_tk_status_lost(const cl_tk_status *prev, const cl_tk_assignment *as, const char *host,
                      int64_t now, cl_tk_status *out);

/* Whether the leader should mark a task lost: its instance is not in a
 * view that has been read (view_ready), it has been missing for at least
 * grace_ms (missing_ms: how long so far), and the task is not STOPPED yet
 * (last_status NULL: no record, only an assignment). */
bool cl_tk_task_lost(bool view_ready, bool instance_in_view, uint64_t missing_ms, uint64_t grace_ms,
                     const char *last_status);

/* STOPPED records expire (issue 23): ECS shows a stopped task for about an
 * hour, then it is gone; the leader deletes tasks/<id> once it has been
 * STOPPED for keep_s (ECS_SECRETS_CLUSTER_STOPPED_TTL). Whether st is due at
 * now (epoch seconds): STOPPED, and stopped keep_s ago (its stoppedAt; a
 * record without one: its createdAt). keep_s <= 0: never. */
#define CL_TK_STOPPED_KEEP_DEFAULT 3600
#define CL_TK_EXPIRE_BATCH 64 /* deletes in one transaction (etcd's limit is 128) */
bool cl_tk_status_expired(const cl_tk_status *st, int64_t now, int64_t keep_s);

/* The request's strategies and constraints compiled for cl_pl_place
 * (constraints must be cleared with cl_pl_constraint_clear). 0 or -EINVAL
 * with why, -ENOMEM. */
int cl_tk_request_compile(const cl_tk_request *rq, cl_pl_strategy *strategies,
                          cl_pl_constraint *constraints, char *why, size_t whylen);
/* The same for any list of strategies and constraints (a service's too,
 * cluster/services.h). */
int cl_tk_placement_compile(const cl_tk_strategy_text *st, size_t n_st,
                            const cl_tk_constraint_text *ct, size_t n_ct,
                            cl_pl_strategy *strategies, cl_pl_constraint *constraints, char *why,
                            size_t whylen);

#endif
