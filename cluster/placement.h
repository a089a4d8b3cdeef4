/* placement.h - where tasks go among a cluster's container instances, as
 * ECS places them (pure: no I/O, no clock; random draws from a seed).
 *
 * Strategies (at most CL_PL_STRATEGIES_MAX, applied in order, each one
 * breaking the ties the ones before left; what is still tied goes to the
 * instance first in the caller's order):
 *   spread  field instanceId | host: the instance with the fewest tasks of
 *           the group; field attribute:NAME: an instance whose value of
 *           NAME has the fewest tasks of the group (no value counts as one
 *           value of its own)
 *   binpack field cpu | memory: the instance with the least of it left
 *           once the task is on it
 *   random  no field: a random instance
 * Constraints (at most CL_PL_CONSTRAINTS_MAX):
 *   distinctInstance   no expression: no two tasks of the group on one
 *                      instance (those already there count)
 *   memberOf           an expression of the cluster query language that
 *                      the instance must satisfy (below)
 * An instance is a candidate when it is ACTIVE, satisfies every constraint
 * and has the task's CPU and memory left. When none is, the task is not
 * placed and the reason is ECS's for the step that removed the last ones:
 *   MemberOf placement constraint unsatisfied (or MissingAttribute when no
 *   instance has an attribute the expression asks about),
 *   DistinctInstance placement constraint unsatisfied, RESOURCE:CPU,
 *   RESOURCE:MEMORY; no ACTIVE instance at all: AGENT (as ECS answers when
 *   no instance can take tasks).
 *
 * The cluster query language (ECS's; an expression is outside input: at
 * most CL_PL_EXPR_MAX bytes, CL_PL_NODES_MAX comparisons and operators,
 * nesting CL_PL_DEPTH_MAX, lists of CL_PL_LIST_MAX):
 *   subject operator [argument], joined by and / && , or / || , not / !,
 *   and parentheses. Subjects: attribute:NAME, ec2InstanceId,
 *   agentConnected, runningTasksCount. Operators: == equals, != not_equals,
 *   exists, !exists not_exists, in, !in not_in (argument [a, b, ...]),
 *   =~ matches, !~ not_matches (a POSIX extended regular expression, whole
 *   value), > >= < <= (numbers when both sides are, else text). Arguments
 *   are words or 'quoted' text. task:group and the other subjects are
 *   refused as not supported, never ignored. */
#ifndef ES_CLUSTER_PLACEMENT_H
#define ES_CLUSTER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/instance.h"

#define CL_PL_STRATEGIES_MAX 5   /* ECS's */
#define CL_PL_CONSTRAINTS_MAX 10 /* ECS's */
#define CL_PL_EXPR_MAX 2000      /* ECS's, bytes */
#define CL_PL_NODES_MAX 64       /* comparisons and operators in one expression */
#define CL_PL_DEPTH_MAX 16       /* nesting of parentheses and not */
#define CL_PL_LIST_MAX 32        /* values of one in [...] */
#define CL_PL_VALUE_MAX 256      /* one word or quoted value, bytes */
#define CL_PL_FIELD_MAX (10 + CL_ATTR_NAME_MAX)
#define CL_PL_TASKS_MAX 10000 /* tasks of one call */

typedef enum cl_pl_strategy_type { CL_PL_RANDOM, CL_PL_SPREAD, CL_PL_BINPACK } cl_pl_strategy_type;
typedef enum cl_pl_field {
    CL_PL_FIELD_NONE,
    CL_PL_FIELD_INSTANCE, /* instanceId, host */
    CL_PL_FIELD_ATTRIBUTE,
    CL_PL_FIELD_CPU,
    CL_PL_FIELD_MEMORY,
} cl_pl_field;

typedef struct cl_pl_strategy {
    cl_pl_strategy_type type;
    cl_pl_field field;
    char attribute[CL_ATTR_NAME_MAX + 1]; /* CL_PL_FIELD_ATTRIBUTE */
} cl_pl_strategy;

/* type "random" | "spread" | "binpack", field as ECS takes it (NULL: none).
 * 0 or -EINVAL with why. */
int cl_pl_strategy_parse(const char *type, const char *field, cl_pl_strategy *out, char *why,
                         size_t whylen);

typedef struct cl_pl_expr cl_pl_expr; /* a compiled expression */

typedef enum cl_pl_constraint_type {
    CL_PL_DISTINCT_INSTANCE,
    CL_PL_MEMBER_OF
} cl_pl_constraint_type;
typedef struct cl_pl_constraint {
    cl_pl_constraint_type type;
    cl_pl_expr *expr; /* memberOf; owned: cl_pl_constraint_clear */
} cl_pl_constraint;

/* type "distinctInstance" (expression NULL or "") | "memberOf" (an
 * expression). 0, -EINVAL with why (never the expression's text beyond
 * the position), -ENOMEM. */
int cl_pl_constraint_parse(const char *type, const char *expression, cl_pl_constraint *out,
                           char *why, size_t whylen);
void cl_pl_constraint_clear(cl_pl_constraint *c);

/* The expression alone: compile, evaluate on an instance, free. */
int cl_pl_expr_compile(const char *text, cl_pl_expr **out, char *why, size_t whylen);
bool cl_pl_expr_eval(const cl_pl_expr *e, const cl_instance *in);
/* Whether in has every attribute the expression names (MissingAttribute). */
bool cl_pl_expr_has_attributes(const cl_pl_expr *e, const cl_instance *in);
void cl_pl_expr_free(cl_pl_expr *e);

/* One instance as placement sees it; the counts change as tasks are placed. */
typedef struct cl_pl_candidate {
    const cl_instance *in;      /* status, attributes, ID */
    int64_t cpu_left, mem_left; /* registered less what its tasks reserve */
    size_t group_tasks;         /* tasks of the group already on it */
} cl_pl_candidate;

typedef struct cl_pl_request {
    int64_t cpu, memory; /* one task's */
    size_t count;        /* 1..CL_PL_TASKS_MAX */
    const cl_pl_strategy *strategies;
    size_t n_strategies;
    const cl_pl_constraint *constraints;
    size_t n_constraints;
    uint64_t seed; /* the random strategy's */
} cl_pl_request;

typedef enum cl_pl_reason {
    CL_PL_R_OK,
    /* in the order of the steps: the reason given is the furthest step
     * any instance reached */
    CL_PL_R_NO_INSTANCE,  /* "AGENT": no ACTIVE instance */
    CL_PL_R_MISSING_ATTR, /* "MissingAttribute" */
    CL_PL_R_MEMBER_OF,    /* "MemberOf placement constraint unsatisfied" */
    CL_PL_R_DISTINCT,     /* "DistinctInstance placement constraint unsatisfied" */
    CL_PL_R_CPU,          /* "RESOURCE:CPU" */
    CL_PL_R_MEMORY,       /* "RESOURCE:MEMORY" */
} cl_pl_reason;
const char *cl_pl_reason_name(cl_pl_reason r);

/* Places rq->count tasks: where[i] is the candidate of task i for i <
 * *placed; the tasks after are not placed, for *reason. cands' counts are
 * updated. 0, or -EINVAL (a request outside its bounds). */
int cl_pl_place(cl_pl_candidate *cands, size_t n, const cl_pl_request *rq, size_t *where,
                size_t *placed, cl_pl_reason *reason);

#endif
