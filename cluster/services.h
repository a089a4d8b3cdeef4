/* services.h - a service's record in etcd (issue 23), pure like
 * cluster/tasks.h: the key and the value written and read bounded, no I/O.
 *
 * Key: /ecs-secrets/clusters/<cluster>/services/<name> (ECS's service-name
 * rule: letters, digits, '-', '_', so no key escapes its place).
 *
 * Value: one JSON object: the service's configuration (task definition,
 * desiredCount, deploymentConfiguration, placement strategies and
 * constraints, tags), its deployments (the PRIMARY first) and its last
 * events (newest first). Counts (running, pending, failed) are not in it:
 * whoever schedules recomputes them from the tasks/ and assignments/
 * records, so a new leader carries a deployment on from etcd alone. Never a
 * secret value (names, numbers, ECS's wording of events).
 *
 * Who writes: the agent an API call reaches (Create/Update/DeleteService,
 * TagResource) and the leader's scheduler; every write compares the
 * mod_revision it read (no lost update between the two). The agent glue is
 * agent/cluster_services.c. */
#ifndef ES_CLUSTER_SERVICES_H
#define ES_CLUSTER_SERVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/tasks.h"
#include "common/buf.h"

#define CL_SV_LEAF "services/"

#define CL_SV_NAME_MAX 255 /* ECS's service names */
#define CL_SV_DESIRED_MAX 1000
#define CL_SV_DEPLOYMENTS_MAX 16
/* The events kept in etcd: the newest ones. Fewer than an agent keeps in
 * memory (100): the record must stay under etcd's value bound with every
 * other field at its maximum; the writer drops the oldest ones past
 * CL_SV_VALUE_MAX rather than fail. */
#define CL_SV_EVENTS_MAX 20
#define CL_SV_EVENT_MAX 1024  /* characters of one event message or rollout reason */
#define CL_SV_EVENT_ID_LEN 36 /* uuid-shaped */
#define CL_SV_DEP_ID_MAX 27   /* "ecs-svc/" and 19 digits */
#define CL_SV_TAGS_MAX 50     /* ECS's tags per resource */
/* bytes: ECS's 128 and 256 characters, UTF-8 of up to 4 bytes each (the
 * agent's tag rules count characters, on reading the record) */
#define CL_SV_TAG_KEY_MAX (4 * 128)
#define CL_SV_TAG_VALUE_MAX (4 * 256)
#define CL_SV_STATUS_MAX 15
#define CL_SV_VALUE_MAX CL_ETCD_VALUE_MAX

typedef struct cl_sv_deployment {
    char id[CL_SV_DEP_ID_MAX + 1];
    char status[CL_SV_STATUS_MAX + 1]; /* PRIMARY (the first) or ACTIVE */
    char family[CL_TK_FAMILY_MAX + 1];
    int64_t revision;
    int64_t desired;
    char rollout[CL_SV_STATUS_MAX + 1]; /* IN_PROGRESS, COMPLETED, FAILED */
    char rollout_reason[CL_SV_EVENT_MAX + 1];
    int64_t created_at, updated_at;
} cl_sv_deployment;

typedef struct cl_sv_event {
    char id[CL_SV_EVENT_ID_LEN + 1];
    int64_t created_ms;
    char message[CL_SV_EVENT_MAX + 1];
} cl_sv_event;

typedef struct cl_sv_tag {
    char key[CL_SV_TAG_KEY_MAX + 1];
    char value[CL_SV_TAG_VALUE_MAX + 1];
} cl_sv_tag;

/* Large (about 90 KiB): allocate it. */
typedef struct cl_sv_record {
    char name[CL_SV_NAME_MAX + 1];
    char status[CL_SV_STATUS_MAX + 1]; /* ACTIVE, DRAINING, INACTIVE */
    char family[CL_TK_FAMILY_MAX + 1];
    int64_t revision;
    int64_t desired;
    int64_t max_percent, min_healthy; /* [100, 2000], [0, 100] */
    bool cb_enable, cb_rollback;
    int64_t created_at, inactive_at, redeployed_at; /* epoch seconds; 0: not yet */
    cl_tk_strategy_text strategies[CL_PL_STRATEGIES_MAX];
    size_t n_strategies;
    cl_tk_constraint_text constraints[CL_PL_CONSTRAINTS_MAX];
    size_t n_constraints;
    cl_sv_deployment deps[CL_SV_DEPLOYMENTS_MAX]; /* [0] PRIMARY */
    size_t n_deps;
    cl_sv_event events[CL_SV_EVENTS_MAX]; /* [0] newest */
    size_t n_events;
    cl_sv_tag tags[CL_SV_TAGS_MAX];
    size_t n_tags;
    int64_t mod_revision; /* etcd's, not in the value: what a write compares */
} cl_sv_record;

/* Whether s follows ECS's service-name rule (1..255 of [A-Za-z0-9_-]). */
bool cl_sv_name_ok(const char *s);

/* The prefix ("/ecs-secrets/clusters/<cluster>/services/") and one key. The
 * length, or -EINVAL (a bad cluster or name, or out too small). */
int cl_sv_prefix(const char *cluster, char *out, size_t outlen);
int cl_sv_key(const char *cluster, const char *name, char *out, size_t outlen);

/* The value into out (appended): 0, -EINVAL (a field outside its rules),
 * -EMSGSIZE (over CL_SV_VALUE_MAX even without events), -ENOMEM. Events
 * that do not fit are left out, the oldest first; *events_written (may be
 * NULL) says how many went in. */
int cl_sv_write(const cl_sv_record *rec, es_buf *out, size_t *events_written);
/* kv (its key under prefix, cl_sv_prefix's) into out; out->mod_revision
 * is kv's. 0, or -EINVAL / -ENOMEM with why (never a value's text). */
int cl_sv_read(const char *prefix, const cl_kv *kv, cl_sv_record *out, char *why, size_t whylen);

/* The record's strategies and constraints compiled for cl_pl_place (the
 * constraints must be cleared with cl_pl_constraint_clear). 0 or -EINVAL
 * with why, -ENOMEM. */
int cl_sv_compile(const cl_sv_record *rec, cl_pl_strategy *strategies,
                  cl_pl_constraint *constraints, char *why, size_t whylen);

#endif
