/* cluster/placement.c and placement_expr.c against ECS's documented
 * behaviour: spread over instances and over an attribute's values, binpack
 * filling the fullest instance first, random, distinctInstance, memberOf
 * with the cluster query language, the failure reasons; and the language's
 * parser on bad and oversized input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/placement.h"

#define N 3
static cl_instance ins[N];
static cl_pl_candidate cands[N];

static void setup(void)
{
    static const char *const zones[N] = {"us-east-1a", "us-east-1b", "us-east-1a"};
    static const char *const types[N] = {"t3.large", "m5.xlarge", "t3.micro"};
    for (int i = 0; i < N; i++) {
        memset(&ins[i], 0, sizeof ins[i]);
        snprintf(ins[i].id, sizeof ins[i].id, "%032x", i + 1);
        snprintf(ins[i].status, sizeof ins[i].status, "ACTIVE");
        ins[i].agent_connected = true;
        ins[i].cpu = 4096;
        ins[i].memory = 8192;
        ins[i].running_tasks = i * 5;
        cr_assert_eq(cl_instance_set_attr(&ins[i], "ecs.availability-zone", zones[i]), 0);
        cr_assert_eq(cl_instance_set_attr(&ins[i], "ecs.instance-type", types[i]), 0);
        cands[i] = (cl_pl_candidate){.in = &ins[i], .cpu_left = 4096, .mem_left = 8192};
    }
    cr_assert_eq(cl_instance_set_attr(&ins[2], "stack", "prod"), 0);
}

TestSuite(cluster_placement, .init = setup);

static cl_pl_strategy strategy(const char *type, const char *field)
{
    cl_pl_strategy s;
    char why[160];
    cr_assert_eq(cl_pl_strategy_parse(type, field, &s, why, sizeof why), 0, "%s", why);
    return s;
}

/* Places count tasks; counts per instance into per[]. */
static size_t place(const cl_pl_request *rq, size_t per[N], cl_pl_reason *reason)
{
    static size_t where[CL_PL_TASKS_MAX];
    size_t placed = 0;
    memset(per, 0, N * sizeof *per);
    cr_assert_eq(cl_pl_place(cands, N, rq, where, &placed, reason), 0);
    for (size_t i = 0; i < placed; i++)
        per[where[i]]++;
    return placed;
}

Test(cluster_placement, spread_over_instances_30_is_10_each)
{
    cl_pl_strategy s = strategy("spread", "instanceId");
    cl_pl_request rq = {.cpu = 10, .memory = 10, .count = 30, .strategies = &s, .n_strategies = 1};
    size_t per[N];
    cl_pl_reason why;
    cr_assert_eq(place(&rq, per, &why), 30);
    for (int i = 0; i < N; i++)
        cr_assert_eq(per[i], 10, "instance %d: %zu", i, per[i]);
    /* tasks of the group already there count: 5 more go to the emptiest */
    cands[0].group_tasks += 3;
    rq.count = 3;
    cr_assert_eq(place(&rq, per, &why), 3);
    cr_assert_eq(per[0], 0, "the instance with more of the group gets none");
    /* host is instanceId's other name */
    cl_pl_strategy h = strategy("spread", "host");
    cr_assert_eq(h.field, CL_PL_FIELD_INSTANCE);
}

Test(cluster_placement, spread_over_an_attribute)
{
    /* two zones: a (instances 0, 2), b (instance 1): b gets half */
    cl_pl_strategy s[2] = {strategy("spread", "attribute:ecs.availability-zone"),
                           strategy("spread", "instanceId")};
    cl_pl_request rq = {.cpu = 1, .memory = 1, .count = 8, .strategies = s, .n_strategies = 2};
    size_t per[N];
    cl_pl_reason why;
    cr_assert_eq(place(&rq, per, &why), 8);
    cr_assert_eq(per[1], 4, "zone b: %zu", per[1]);
    cr_assert_eq(per[0] + per[2], 4);
    cr_assert_eq(per[0], 2, "within zone a, spread over instances");
}

Test(cluster_placement, binpack_fills_one_instance_first)
{
    cands[1].mem_left = 3000; /* the fullest: least memory left */
    cl_pl_strategy s = strategy("binpack", "memory");
    cl_pl_request rq = {.cpu = 1, .memory = 1000, .count = 3, .strategies = &s, .n_strategies = 1};
    size_t per[N];
    cl_pl_reason why;
    cr_assert_eq(place(&rq, per, &why), 3);
    cr_assert_eq(per[1], 3, "the least memory left, still enough: %zu", per[1]);
    /* 0 MiB left there now: the next goes to the next fullest (ties: first in order) */
    rq.count = 1;
    cr_assert_eq(place(&rq, per, &why), 1);
    cr_assert_eq(per[0], 1);
    cl_pl_strategy c = strategy("binpack", "cpu");
    cr_assert_eq(c.field, CL_PL_FIELD_CPU);
}

Test(cluster_placement, random_reaches_every_instance)
{
    cl_pl_strategy s = strategy("random", NULL);
    cl_pl_request rq = {
        .cpu = 1, .memory = 1, .count = 60, .strategies = &s, .n_strategies = 1, .seed = 42};
    size_t per[N];
    cl_pl_reason why;
    cr_assert_eq(place(&rq, per, &why), 60);
    for (int i = 0; i < N; i++)
        cr_assert_gt(per[i], 5, "instance %d got %zu of 60", i, per[i]);
}

Test(cluster_placement, distinct_instance)
{
    cl_pl_constraint c;
    char why[160];
    cr_assert_eq(cl_pl_constraint_parse("distinctInstance", NULL, &c, why, sizeof why), 0);
    cl_pl_request rq = {.cpu = 1, .memory = 1, .count = 4, .constraints = &c, .n_constraints = 1};
    size_t per[N];
    cl_pl_reason reason;
    cr_assert_eq(place(&rq, per, &reason), 3, "three instances: three tasks");
    for (int i = 0; i < N; i++)
        cr_assert_eq(per[i], 1);
    cr_assert_eq(reason, CL_PL_R_DISTINCT);
    cr_assert_str_eq(cl_pl_reason_name(reason),
                     "DistinctInstance placement constraint unsatisfied");
    cr_assert_eq(
        cl_pl_constraint_parse("distinctInstance", "attribute:x exists", &c, why, sizeof why),
        -EINVAL, "distinctInstance takes no expression");
}

static size_t member_of(const char *expr, size_t per[N], cl_pl_reason *reason)
{
    setup(); /* each call on fresh instances: no group tasks from the one before */
    cl_pl_constraint c;
    char why[160];
    cr_assert_eq(cl_pl_constraint_parse("memberOf", expr, &c, why, sizeof why), 0, "%s: %s", expr,
                 why);
    cl_pl_strategy s = strategy("spread", "instanceId");
    cl_pl_request rq = {.cpu = 1,
                        .memory = 1,
                        .count = 6,
                        .strategies = &s,
                        .n_strategies = 1,
                        .constraints = &c,
                        .n_constraints = 1};
    size_t n = place(&rq, per, reason);
    cl_pl_constraint_clear(&c);
    return n;
}

Test(cluster_placement, member_of_with_ecs_examples)
{
    size_t per[N];
    cl_pl_reason r;
    /* the examples of ECS's cluster query language documentation, on our three */
    cr_assert_eq(member_of("attribute:ecs.instance-type == t3.large", per, &r), 6);
    cr_assert_eq(per[0], 6);
    cr_assert_eq(member_of("attribute:ecs.instance-type =~ t3.*", per, &r), 6);
    cr_assert_eq(per[1], 0);
    cr_assert_eq(per[0] + per[2], 6);
    cr_assert_eq(member_of("attribute:ecs.availability-zone in [us-east-1b, us-east-1c]", per, &r),
                 6);
    cr_assert_eq(per[1], 6);
    cr_assert_eq(member_of("attribute:ecs.availability-zone not_in ['us-east-1b']", per, &r), 6);
    cr_assert_eq(per[1], 0);
    cr_assert_eq(member_of("not(attribute:ecs.instance-type =~ t3.*)", per, &r), 6);
    cr_assert_eq(per[1], 6);
    cr_assert_eq(member_of("attribute:stack exists", per, &r), 6);
    cr_assert_eq(per[2], 6);
    cr_assert_eq(member_of("attribute:stack !exists and runningTasksCount > 4", per, &r), 6);
    cr_assert_eq(per[1], 6, "only instance 1 has no stack and more than 4 tasks");
    cr_assert_eq(member_of("(attribute:ecs.availability-zone == us-east-1a && "
                           "attribute:ecs.instance-type != t3.micro) || attribute:stack == prod",
                           per, &r),
                 6);
    cr_assert_eq(per[1], 0);
    cr_assert_eq(per[0], 3);
    cr_assert_eq(member_of("agentConnected == true and runningTasksCount <= 5", per, &r), 6);
    cr_assert_eq(per[2], 0);
}

Test(cluster_placement, failure_reasons)
{
    size_t per[N];
    cl_pl_reason r;
    /* an attribute no instance has: MissingAttribute; one they have with other values: MemberOf */
    cr_assert_eq(member_of("attribute:gpu == yes", per, &r), 0);
    cr_assert_str_eq(cl_pl_reason_name(r), "MissingAttribute");
    cr_assert_eq(member_of("attribute:ecs.instance-type == c5.large", per, &r), 0);
    cr_assert_str_eq(cl_pl_reason_name(r), "MemberOf placement constraint unsatisfied");
    /* resources: memory short everywhere, or CPU */
    cl_pl_request rq = {.cpu = 10, .memory = 9000, .count = 1};
    cr_assert_eq(place(&rq, per, &r), 0);
    cr_assert_str_eq(cl_pl_reason_name(r), "RESOURCE:MEMORY");
    rq = (cl_pl_request){.cpu = 5000, .memory = 9000, .count = 1};
    cr_assert_eq(place(&rq, per, &r), 0);
    cr_assert_str_eq(cl_pl_reason_name(r), "RESOURCE:CPU", "CPU is checked first");
    /* some placed, then memory runs out: 8192 / 3000 = 2 an instance */
    rq = (cl_pl_request){.cpu = 1, .memory = 3000, .count = 8};
    cr_assert_eq(place(&rq, per, &r), 6);
    cr_assert_eq(r, CL_PL_R_MEMORY);
    /* DRAINING instances take nothing; none ACTIVE: AGENT */
    setup();
    snprintf(ins[0].status, sizeof ins[0].status, "DRAINING");
    rq = (cl_pl_request){.cpu = 1, .memory = 1, .count = 4};
    cr_assert_eq(place(&rq, per, &r), 4);
    cr_assert_eq(per[0], 0, "nothing on a DRAINING instance");
    snprintf(ins[1].status, sizeof ins[1].status, "DRAINING");
    snprintf(ins[2].status, sizeof ins[2].status, "DRAINING");
    cr_assert_eq(place(&rq, per, &r), 0);
    cr_assert_str_eq(cl_pl_reason_name(r), "AGENT");
}

Test(cluster_placement, strategy_and_request_refusals)
{
    cl_pl_strategy s;
    char why[160];
    const char *bad[][2] = {
        {"spread", NULL},          {"spread", "cpu"}, {"spread", "attribute:"}, {"binpack", NULL},
        {"binpack", "instanceId"}, {"random", "cpu"}, {"pack", "memory"},       {NULL, NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(cl_pl_strategy_parse(bad[i][0], bad[i][1], &s, why, sizeof why), -EINVAL,
                     "%s %s", bad[i][0] ? bad[i][0] : "-", bad[i][1] ? bad[i][1] : "-");
    size_t where[1], placed;
    cl_pl_reason r;
    cl_pl_request rq = {.cpu = 1, .memory = 1, .count = 0};
    cr_assert_eq(cl_pl_place(cands, N, &rq, where, &placed, &r), -EINVAL, "no task");
    rq.count = CL_PL_TASKS_MAX + 1;
    cr_assert_eq(cl_pl_place(cands, N, &rq, where, &placed, &r), -EINVAL);
    cl_pl_strategy six[6];
    rq = (cl_pl_request){.cpu = 1, .memory = 1, .count = 1, .strategies = six, .n_strategies = 6};
    cr_assert_eq(cl_pl_place(cands, N, &rq, where, &placed, &r), -EINVAL, "5 strategies at most");
}

/* appends piece to the NUL-terminated text of size n (the test's texts are sized to fit) */
static void append(char *text, size_t n, const char *piece)
{
    size_t used = strlen(text);
    cr_assert_lt((size_t)snprintf(text + used, n - used, "%s", piece), n - used, "text too small");
}

Test(cluster_placement, language_refuses_bad_input)
{
    const char *bad[] = {
        "",
        "attribute:",
        "attribute:x",          /* no operator */
        "attribute:x ==",       /* no value */
        "attribute:x == a b",   /* more after */
        "attribute:x in a",     /* in without a list */
        "attribute:x in [a, b", /* list not closed */
        "attribute:x in [a,, b]",
        "(attribute:x exists", /* ( not closed */
        "attribute:x exists)",
        "attribute:x == 'unterminated",
        "task:group == service:web", /* not supported: refused, not ignored */
        "registeredAt > 2020",
        "attribute:x =~ '('", /* not a regular expression */
        "attribute:x ! == a",
        "attribute:x == a and",
        "not",
        "attribute:x == a ; rm",
        "attribute:bad name == a",
    };
    cl_pl_expr *e = NULL;
    char why[160];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(cl_pl_expr_compile(bad[i], &e, why, sizeof why), -EINVAL, "'%s'", bad[i]);
    /* the bounds: length, nesting, comparisons, list size */
    static char text[CL_PL_EXPR_MAX * 2];
    memset(text, 0, sizeof text);
    for (size_t i = 0; i < CL_PL_EXPR_MAX; i++)
        text[i] = 'a';
    cr_assert_eq(cl_pl_expr_compile(text, &e, why, sizeof why), -EINVAL, "past the length");
    memset(text, 0, sizeof text);
    for (int i = 0; i <= CL_PL_DEPTH_MAX; i++)
        append(text, sizeof text, "(");
    append(text, sizeof text, "attribute:x exists");
    for (int i = 0; i <= CL_PL_DEPTH_MAX; i++)
        append(text, sizeof text, ")");
    cr_assert_eq(cl_pl_expr_compile(text, &e, why, sizeof why), -EINVAL, "nested too deep");
    cr_assert(strstr(why, "deep"), "%s", why);
    memset(text, 0, sizeof text);
    for (int i = 0; i < CL_PL_NODES_MAX; i++)
        append(text, sizeof text, i ? " or attribute:x exists" : "attribute:x exists");
    cr_assert_eq(cl_pl_expr_compile(text, &e, why, sizeof why), -EINVAL, "too many nodes");
    memset(text, 0, sizeof text);
    append(text, sizeof text, "attribute:x in [");
    for (int i = 0; i <= CL_PL_LIST_MAX; i++)
        append(text, sizeof text, i ? ",v" : "v");
    append(text, sizeof text, "]");
    cr_assert_eq(cl_pl_expr_compile(text, &e, why, sizeof why), -EINVAL, "list too long");
    /* and right at the bounds it compiles */
    memset(text, 0, sizeof text);
    for (int i = 0; i < CL_PL_DEPTH_MAX - 1; i++)
        append(text, sizeof text, "(");
    append(text, sizeof text, "attribute:x exists");
    for (int i = 0; i < CL_PL_DEPTH_MAX - 1; i++)
        append(text, sizeof text, ")");
    cr_assert_eq(cl_pl_expr_compile(text, &e, why, sizeof why), 0, "%s", why);
    cl_pl_expr_free(e);
}
