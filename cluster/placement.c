/* Placement (placement.h): strategies and constraints parsed from what
 * the ECS API is given, then one task at a time: the candidates filtered,
 * the strategies applied in turn to the ones left. */
#include "cluster/placement.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/buf.h"

static const char *const reason_names[] = {
    [CL_PL_R_OK] = "",
    [CL_PL_R_NO_INSTANCE] = "AGENT",
    [CL_PL_R_MEMBER_OF] = "MemberOf placement constraint unsatisfied",
    [CL_PL_R_MISSING_ATTR] = "MissingAttribute",
    [CL_PL_R_DISTINCT] = "DistinctInstance placement constraint unsatisfied",
    [CL_PL_R_CPU] = "RESOURCE:CPU",
    [CL_PL_R_MEMORY] = "RESOURCE:MEMORY",
};

const char *cl_pl_reason_name(cl_pl_reason r)
{
    return (unsigned)r < sizeof reason_names / sizeof *reason_names ? reason_names[r] : "?";
}

int cl_pl_strategy_parse(const char *type, const char *field, cl_pl_strategy *out, char *why,
                         size_t whylen)
{
    memset(out, 0, sizeof *out);
    bool has_field = field && field[0];
    if (type && strcmp(type, "random") == 0) {
        out->type = CL_PL_RANDOM;
        if (has_field)
            return es_errf(why, whylen, -EINVAL, "field: random takes none");
        return 0;
    }
    if (type && strcmp(type, "binpack") == 0) {
        out->type = CL_PL_BINPACK;
        if (has_field && strcasecmp(field, "cpu") == 0)
            out->field = CL_PL_FIELD_CPU;
        else if (has_field && strcasecmp(field, "memory") == 0)
            out->field = CL_PL_FIELD_MEMORY;
        else
            return es_errf(why, whylen, -EINVAL, "field: binpack takes cpu or memory");
        return 0;
    }
    if (!type || strcmp(type, "spread") != 0)
        return es_errf(why, whylen, -EINVAL, "type: must be random, spread or binpack");
    out->type = CL_PL_SPREAD;
    if (has_field && (strcmp(field, "instanceId") == 0 || strcmp(field, "host") == 0)) {
        out->field = CL_PL_FIELD_INSTANCE;
        return 0;
    }
    if (has_field && strncmp(field, "attribute:", 10) == 0 && cl_attr_name_ok(field + 10)) {
        out->field = CL_PL_FIELD_ATTRIBUTE;
        snprintf(out->attribute, sizeof out->attribute, "%s", field + 10);
        return 0;
    }
    return es_errf(why, whylen, -EINVAL, "field: spread takes instanceId, host or attribute:NAME");
}

int cl_pl_constraint_parse(const char *type, const char *expression, cl_pl_constraint *out,
                           char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    bool has_expr = expression && expression[0];
    if (type && strcmp(type, "distinctInstance") == 0) {
        out->type = CL_PL_DISTINCT_INSTANCE;
        if (has_expr)
            return es_errf(why, whylen, -EINVAL,
                           "expression: distinctInstance takes no expression");
        return 0;
    }
    if (!type || strcmp(type, "memberOf") != 0)
        return es_errf(why, whylen, -EINVAL, "type: must be distinctInstance or memberOf");
    out->type = CL_PL_MEMBER_OF;
    if (!has_expr)
        return es_errf(why, whylen, -EINVAL, "expression: memberOf needs one");
    return cl_pl_expr_compile(expression, &out->expr, why, whylen);
}

void cl_pl_constraint_clear(cl_pl_constraint *c)
{
    cl_pl_expr_free(c->expr);
    c->expr = NULL;
}

/* ---- one task --------------------------------------------------------- */

/* The steps a candidate must pass, in the order ECS reports them. */
static cl_pl_reason excluded_by(const cl_pl_candidate *c, const cl_pl_request *rq,
                                const size_t *here, size_t i)
{
    if (strcmp(c->in->status, "ACTIVE") != 0)
        return CL_PL_R_NO_INSTANCE;
    for (size_t k = 0; k < rq->n_constraints; k++) {
        const cl_pl_constraint *con = &rq->constraints[k];
        if (con->type == CL_PL_MEMBER_OF && !cl_pl_expr_eval(con->expr, c->in))
            return cl_pl_expr_has_attributes(con->expr, c->in) ? CL_PL_R_MEMBER_OF
                                                               : CL_PL_R_MISSING_ATTR;
    }
    for (size_t k = 0; k < rq->n_constraints; k++)
        if (rq->constraints[k].type == CL_PL_DISTINCT_INSTANCE && c->group_tasks + here[i] > 0)
            return CL_PL_R_DISTINCT;
    if (c->cpu_left < rq->cpu)
        return CL_PL_R_CPU;
    if (c->mem_left < rq->memory)
        return CL_PL_R_MEMORY;
    return CL_PL_R_OK;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Tasks of the group on instances sharing c's value of the attribute. */
static int64_t attribute_load(const cl_pl_candidate *cands, size_t n, const size_t *here,
                              const char *attr, const cl_pl_candidate *c)
{
    const char *v = cl_instance_attr(c->in, attr);
    int64_t load = 0;
    for (size_t j = 0; j < n; j++) {
        const char *w = cl_instance_attr(cands[j].in, attr);
        if ((v && w && strcmp(v, w) == 0) || (!v && !w))
            load += (int64_t)(cands[j].group_tasks + here[j]);
    }
    return load;
}

/* Lower is better. */
static int64_t key(const cl_pl_strategy *s, const cl_pl_candidate *cands, size_t n,
                   const size_t *here, size_t i, const cl_pl_request *rq, uint64_t *seed)
{
    const cl_pl_candidate *c = &cands[i];
    switch (s->type) {
    case CL_PL_RANDOM:
        return (int64_t)(xorshift(seed) >> 1);
    case CL_PL_BINPACK:
        return s->field == CL_PL_FIELD_CPU ? c->cpu_left - rq->cpu : c->mem_left - rq->memory;
    case CL_PL_SPREAD:
        if (s->field == CL_PL_FIELD_INSTANCE)
            return (int64_t)(c->group_tasks + here[i]);
        return attribute_load(cands, n, here, s->attribute, c);
    }
    return 0;
}

/* Keeps in ok[] only the candidates with the best key for strategy s. */
static void narrow(const cl_pl_strategy *s, const cl_pl_candidate *cands, size_t n,
                   const size_t *here, const cl_pl_request *rq, uint64_t *seed, bool *ok,
                   int64_t *keys)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (ok[i] && (keys[i] = key(s, cands, n, here, i, rq, seed)) < best)
            best = keys[i];
    for (size_t i = 0; i < n; i++)
        if (ok[i] && keys[i] != best)
            ok[i] = false;
}

/* The candidate for one task, or n with why none. */
static size_t place_one(cl_pl_candidate *cands, size_t n, const cl_pl_request *rq,
                        const size_t *here, bool *ok, int64_t *keys, uint64_t *seed,
                        cl_pl_reason *reason)
{
    size_t left = 0;
    cl_pl_reason last = CL_PL_R_NO_INSTANCE;
    for (size_t i = 0; i < n; i++) {
        cl_pl_reason r = excluded_by(&cands[i], rq, here, i);
        ok[i] = r == CL_PL_R_OK;
        left += ok[i];
        if (!ok[i] && r > last) /* the furthest step any instance reached */
            last = r;
    }
    if (left == 0) {
        *reason = last;
        return n;
    }
    for (size_t k = 0; k < rq->n_strategies; k++)
        narrow(&rq->strategies[k], cands, n, here, rq, seed, ok, keys);
    for (size_t i = 0; i < n; i++)
        if (ok[i])
            return i;
    return n; /* not reached: narrowing keeps the best */
}

int cl_pl_place(cl_pl_candidate *cands, size_t n, const cl_pl_request *rq, size_t *where,
                size_t *placed, cl_pl_reason *reason)
{
    *placed = 0;
    *reason = CL_PL_R_OK;
    if (rq->count == 0 || rq->count > CL_PL_TASKS_MAX || rq->n_strategies > CL_PL_STRATEGIES_MAX ||
        rq->n_constraints > CL_PL_CONSTRAINTS_MAX || rq->cpu < 0 || rq->memory < 0)
        return -EINVAL;
    for (size_t k = 0; k < rq->n_constraints; k++)
        if (rq->constraints[k].type == CL_PL_MEMBER_OF && !rq->constraints[k].expr)
            return -EINVAL;
    if (n == 0) {
        *reason = CL_PL_R_NO_INSTANCE;
        return 0;
    }
    size_t *here = es_calloc(n, sizeof *here);
    bool *ok = es_calloc(n, sizeof *ok);
    int64_t *keys = es_calloc(n, sizeof *keys);
    if (!here || !ok || !keys) {
        es_free(here);
        es_free(ok);
        es_free(keys);
        return -ENOMEM;
    }
    uint64_t seed = rq->seed;
    for (size_t t = 0; t < rq->count; t++) {
        size_t i = place_one(cands, n, rq, here, ok, keys, &seed, reason);
        if (i == n)
            break;
        where[(*placed)++] = i;
        here[i]++;
        cands[i].cpu_left -= rq->cpu;
        cands[i].mem_left -= rq->memory;
    }
    /* the tasks of this call are now the group's too */
    for (size_t i = 0; i < n; i++)
        cands[i].group_tasks += here[i];
    es_free(here);
    es_free(ok);
    es_free(keys);
    return 0;
}
