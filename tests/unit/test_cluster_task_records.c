/* cluster/tasks.c: the keys of RunTask across the cluster, every record
 * written and read back, and the refusals of keys and values from etcd
 * (outside input). The etcd side runs in test_cluster_runtask.sh. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/tasks.h"

#define ROOT "/ecs-secrets/clusters/prod/"
#define RID "0123456789abcdef0123456789abcdef"
#define TID "fedcba9876543210fedcba9876543210"
#define IID "aaaabbbbccccddddeeeeffff00001111"
#define OV "{\"containerOverrides\":[{\"name\":\"app\",\"command\":[\"sleep\",\"1\"]}]}"

static char why[256];

static cl_kv kv_of(const char *key, const char *value)
{
    return (cl_kv){
        .key = (char *)key, .value = (char *)value, .value_len = strlen(value), .mod_revision = 42};
}

static cl_tk_request *sample_request(void)
{
    cl_tk_request *rq = calloc(1, sizeof *rq);
    snprintf(rq->id, sizeof rq->id, RID);
    snprintf(rq->from, sizeof rq->from, IID);
    snprintf(rq->family, sizeof rq->family, "web");
    rq->revision = 3;
    rq->count = 10;
    rq->cpu = 256;
    rq->memory = 512;
    snprintf(rq->group, sizeof rq->group, "family:web");
    snprintf(rq->started_by, sizeof rq->started_by, "ci");
    snprintf(rq->launch_type, sizeof rq->launch_type, "EC2");
    snprintf(rq->strategies[0].type, sizeof rq->strategies[0].type, "spread");
    snprintf(rq->strategies[0].field, sizeof rq->strategies[0].field, "attribute:zone");
    snprintf(rq->strategies[1].type, sizeof rq->strategies[1].type, "binpack");
    snprintf(rq->strategies[1].field, sizeof rq->strategies[1].field, "memory");
    rq->n_strategies = 2;
    snprintf(rq->constraints[0].type, sizeof rq->constraints[0].type, "memberOf");
    snprintf(rq->constraints[0].expression, sizeof rq->constraints[0].expression,
             "attribute:zone in [a, b]");
    snprintf(rq->constraints[1].type, sizeof rq->constraints[1].type, "distinctInstance");
    rq->n_constraints = 2;
    rq->overrides = OV;
    rq->overrides_len = strlen(OV);
    rq->created_at = 1700000000;
    return rq;
}

Test(cluster_task_records, keys)
{
    char k[512];
    cr_assert_gt(cl_tk_request_key("prod", RID, k, sizeof k), 0);
    cr_assert_str_eq(k, ROOT "requests/" RID);
    cr_assert_gt(cl_tk_result_key("prod", RID, k, sizeof k), 0);
    cr_assert_str_eq(k, ROOT "results/" RID);
    cr_assert_gt(cl_tk_status_key("prod", TID, k, sizeof k), 0);
    cr_assert_str_eq(k, ROOT "tasks/" TID);
    cr_assert_gt(cl_tk_stop_key("prod", TID, k, sizeof k), 0);
    cr_assert_str_eq(k, ROOT "stops/" TID);
    cr_assert_gt(cl_tk_assignment_key("prod", IID, TID, k, sizeof k), 0);
    cr_assert_str_eq(k, ROOT "assignments/" IID "/" TID);
    cr_assert_gt(cl_tk_prefix("prod", CL_TK_ASSIGNMENTS_LEAF, k, sizeof k), 0);
    cr_assert_str_eq(k, ROOT "assignments/");
    /* IDs that could leave their place, or are not ours */
    const char *bad[] = {"",
                         "../x",
                         RID "0",
                         "0123456789ABCDEF0123456789ABCDEF",
                         "0123456789abcdef0123456789abcde/",
                         "0123456789abcdef0123456789abcdeg"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(cl_tk_request_key("prod", bad[i], k, sizeof k), -EINVAL, "%s", bad[i]);
        cr_assert_eq(cl_tk_status_key("prod", bad[i], k, sizeof k), -EINVAL, "%s", bad[i]);
        cr_assert_eq(cl_tk_assignment_key("prod", IID, bad[i], k, sizeof k), -EINVAL);
    }
    cr_assert_eq(cl_tk_assignment_key("prod", "a/b", TID, k, sizeof k), -EINVAL);
    cr_assert_eq(cl_tk_request_key("pr/od", RID, k, sizeof k), -EINVAL);
    cr_assert_eq(cl_tk_request_key("prod", RID, k, 30), -EINVAL, "too small a buffer");
}

Test(cluster_task_records, request_round_trip)
{
    cl_tk_request *rq = sample_request(), *back = calloc(1, sizeof *back);
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    cr_assert_eq(cl_tk_request_write(rq, &v), 0);
    cr_assert_not_null(memchr(v.data, '\n', v.len), "the overrides follow the header");
    cl_kv kv = kv_of(ROOT "requests/" RID, v.data);
    cr_assert_eq(cl_tk_request_read(ROOT "requests/", &kv, back, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(back->id, RID);
    cr_assert_str_eq(back->from, IID);
    cr_assert_str_eq(back->family, "web");
    cr_assert_eq(back->revision, 3);
    cr_assert_eq(back->count, 10);
    cr_assert_eq(back->cpu, 256);
    cr_assert_eq(back->memory, 512);
    cr_assert_str_eq(back->started_by, "ci");
    cr_assert_eq(back->n_strategies, 2);
    cr_assert_str_eq(back->strategies[0].field, "attribute:zone");
    cr_assert_eq(back->n_constraints, 2);
    cr_assert_str_eq(back->constraints[0].expression, "attribute:zone in [a, b]");
    cr_assert_str_eq(back->constraints[1].type, "distinctInstance");
    cr_assert_eq(back->overrides_len, strlen(OV));
    cr_assert_eq(memcmp(back->overrides, OV, strlen(OV)), 0);
    cr_assert_eq(back->mod_revision, 42);
    /* compiled for placement */
    cl_pl_strategy s[CL_PL_STRATEGIES_MAX];
    cl_pl_constraint c[CL_PL_CONSTRAINTS_MAX];
    cr_assert_eq(cl_tk_request_compile(back, s, c, why, sizeof why), 0, "%s", why);
    cr_assert_eq(s[1].type, CL_PL_BINPACK);
    cr_assert_eq(c[0].type, CL_PL_MEMBER_OF);
    for (size_t i = 0; i < back->n_constraints; i++)
        cl_pl_constraint_clear(&c[i]);
    es_buf_free(&v);
    free(rq);
    free(back);
}

Test(cluster_task_records, request_refusals)
{
    cl_tk_request *rq = sample_request();
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    /* the writer refuses what the reader would */
    rq->count = 11;
    cr_assert_eq(cl_tk_request_write(rq, &v), -EINVAL, "count over 10");
    rq->count = 1;
    snprintf(rq->strategies[0].type, sizeof rq->strategies[0].type, "fastest");
    cr_assert_eq(cl_tk_request_write(rq, &v), -EINVAL, "an unknown strategy");
    snprintf(rq->strategies[0].type, sizeof rq->strategies[0].type, "spread");
    snprintf(rq->constraints[0].expression, sizeof rq->constraints[0].expression,
             "task:group == x");
    cr_assert_eq(cl_tk_request_write(rq, &v), -EINVAL, "an unsupported expression");
    snprintf(rq->constraints[0].expression, sizeof rq->constraints[0].expression,
             "agentConnected == true");
    snprintf(rq->group, sizeof rq->group, "bad\ngroup");
    cr_assert_eq(cl_tk_request_write(rq, &v), -EINVAL, "a control character");
    snprintf(rq->group, sizeof rq->group, "g");
    snprintf(rq->family, sizeof rq->family, "a/b");
    cr_assert_eq(cl_tk_request_write(rq, &v), -EINVAL, "a family with '/'");
    snprintf(rq->family, sizeof rq->family, "web");
    rq->overrides = "[1]";
    rq->overrides_len = 3;
    cr_assert_eq(cl_tk_request_write(rq, &v), -EINVAL, "overrides not an object");
    rq->overrides = NULL;
    rq->overrides_len = 0;
    cr_assert_eq(cl_tk_request_write(rq, &v), 0);

    /* values from etcd that are refused, each for its reason */
    cl_tk_request *out = calloc(1, sizeof *out);
    struct {
        const char *key, *value;
    } bad[] = {
        {ROOT "requests/xyz", v.data},  /* not an ID in the key */
        {ROOT "requests/" TID, v.data}, /* the key's ID is not the value's */
        {ROOT "requests/" RID, "not json"},
        {ROOT "requests/" RID, "[1,2]"},
        {ROOT "requests/" RID, "{}"},
        {ROOT "requests/" RID,
         "{\"id\":\"" RID "\",\"from\":\"" IID "\",\"count\":0,\"family\":\"web\",\"revision\":1,"
         "\"cpu\":0,\"memory\":0,\"group\":\"g\",\"launchType\":\"EC2\",\"createdAt\":1}"},
        {ROOT "requests/" RID,
         "{\"id\":\"" RID "\",\"from\":\"" IID "\",\"count\":1,\"family\":\"web\",\"revision\":1,"
         "\"cpu\":-5,\"memory\":0,\"group\":\"g\",\"launchType\":\"EC2\",\"createdAt\":1}"},
        {ROOT "requests/" RID,
         "{\"id\":\"" RID "\",\"from\":\"" IID "\",\"count\":1,\"family\":\"web\",\"revision\":1,"
         "\"cpu\":0,\"memory\":0,\"group\":\"g\",\"launchType\":\"MOON\",\"createdAt\":1}"},
        {ROOT "requests/" RID,
         "{\"id\":\"" RID "\",\"from\":\"" IID "\",\"count\":1,\"family\":\"web\",\"revision\":1,"
         "\"cpu\":0,\"memory\":0,\"group\":\"g\",\"launchType\":\"EC2\",\"createdAt\":1,"
         "\"placementStrategy\":[{\"type\":\"spread\",\"field\":\"nowhere\"}]}"},
        {ROOT "requests/" RID,
         "{\"id\":\"" RID "\",\"from\":\"" IID "\",\"count\":1,\"family\":\"web\",\"revision\":1,"
         "\"cpu\":0,\"memory\":0,\"group\":\"g\",\"launchType\":\"EC2\",\"createdAt\":1,"
         "\"placementStrategy\":[{},{},{},{},{},{}]}"},
        {ROOT "requests/" RID,
         "{\"id\":\"" RID "\",\"from\":\"" IID "\",\"count\":1,\"family\":\"web\",\"revision\":1,"
         "\"cpu\":0,\"memory\":0,\"group\":\"g\",\"launchType\":\"EC2\",\"createdAt\":1}\n[]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cl_kv kv = kv_of(bad[i].key, bad[i].value);
        cr_assert_eq(cl_tk_request_read(ROOT "requests/", &kv, out, why, sizeof why), -EINVAL,
                     "case %zu", i);
        cr_assert_gt(strlen(why), 0, "case %zu has a reason", i);
    }
    /* longer than the bound */
    size_t big = CL_TK_VALUE_MAX + 1;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[big] = '\0';
    cl_kv kv = kv_of(ROOT "requests/" RID, huge);
    cr_assert_eq(cl_tk_request_read(ROOT "requests/", &kv, out, why, sizeof why), -EINVAL);
    free(huge);
    es_buf_free(&v);
    free(rq);
    free(out);
}

Test(cluster_task_records, assignment_round_trip_and_refusals)
{
    cl_tk_assignment a, b;
    memset(&a, 0, sizeof a);
    snprintf(a.instance, sizeof a.instance, IID);
    snprintf(a.task_id, sizeof a.task_id, TID);
    snprintf(a.request, sizeof a.request, RID);
    snprintf(a.family, sizeof a.family, "web");
    a.revision = 7;
    a.cpu = 128;
    a.memory = 64;
    snprintf(a.group, sizeof a.group, "service:web");
    snprintf(a.launch_type, sizeof a.launch_type, "EXTERNAL");
    a.overrides = OV;
    a.overrides_len = strlen(OV);
    a.created_at = 5;
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    cr_assert_eq(cl_tk_assignment_write(&a, &v), 0);
    cl_kv kv = kv_of(ROOT "assignments/" IID "/" TID, v.data);
    cr_assert_eq(cl_tk_assignment_read(ROOT "assignments/", &kv, &b, why, sizeof why), 0, "%s",
                 why);
    cr_assert_str_eq(b.instance, IID);
    cr_assert_str_eq(b.task_id, TID);
    cr_assert_str_eq(b.request, RID);
    cr_assert_eq(b.memory, 64);
    cr_assert_str_eq(b.started_by, "");
    cr_assert_eq(b.overrides_len, strlen(OV));
    /* the key must name the value's instance and task */
    const char *keys[] = {ROOT "assignments/" RID "/" TID, ROOT "assignments/" IID "/" RID,
                          ROOT "assignments/" TID, ROOT "assignments/x/y/" TID,
                          ROOT "tasks/" IID "/" TID};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        kv = kv_of(keys[i], v.data);
        cr_assert_eq(cl_tk_assignment_read(ROOT "assignments/", &kv, &b, why, sizeof why), -EINVAL,
                     "%s", keys[i]);
    }
    snprintf(a.request, sizeof a.request, "nope");
    cr_assert_eq(cl_tk_assignment_write(&a, &v), -EINVAL, "a request that is no ID");
    es_buf_free(&v);
}

Test(cluster_task_records, result_round_trip_and_refusals)
{
    cl_tk_result r, b;
    memset(&r, 0, sizeof r);
    snprintf(r.request, sizeof r.request, RID);
    snprintf(r.from, sizeof r.from, IID);
    snprintf(r.placed[0].task_id, sizeof r.placed[0].task_id, TID);
    snprintf(r.placed[0].instance, sizeof r.placed[0].instance, IID);
    r.n_placed = 1;
    r.n_failed = 2;
    snprintf(r.reason, sizeof r.reason, "RESOURCE:MEMORY");
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    cr_assert_eq(cl_tk_result_write(&r, &v), 0);
    cl_kv kv = kv_of(ROOT "results/" RID, v.data);
    cr_assert_eq(cl_tk_result_read(ROOT "results/", &kv, &b, why, sizeof why), 0, "%s", why);
    cr_assert_eq(b.n_placed, 1);
    cr_assert_eq(b.n_failed, 2);
    cr_assert_str_eq(b.reason, "RESOURCE:MEMORY");
    cr_assert_str_eq(b.placed[0].instance, IID);
    cr_assert_str_eq(b.from, IID);
    /* a request whose placement could never be written: all its tasks failed
     * with the one reason that is not placement's */
    cl_tk_result big = r;
    big.n_placed = 0;
    big.n_failed = 10;
    snprintf(big.reason, sizeof big.reason, CL_TK_REASON_TOO_LARGE);
    es_buf bv;
    es_buf_init(&bv, CL_TK_VALUE_MAX);
    cr_assert_eq(cl_tk_result_write(&big, &bv), 0);
    cl_kv bkv = kv_of(ROOT "results/" RID, bv.data);
    cr_assert_eq(cl_tk_result_read(ROOT "results/", &bkv, &b, why, sizeof why), 0, "%s", why);
    cr_assert_eq(b.n_failed, 10);
    cr_assert_str_eq(b.reason, CL_TK_REASON_TOO_LARGE);
    es_buf_free(&bv);
    /* a reason placement never gives, more than ten tasks, a second line */
    snprintf(r.reason, sizeof r.reason, "BECAUSE");
    cr_assert_eq(cl_tk_result_write(&r, &v), -EINVAL);
    snprintf(r.reason, sizeof r.reason, "RESOURCE:MEMORY");
    r.n_failed = 10;
    cr_assert_eq(cl_tk_result_write(&r, &v), -EINVAL, "1 placed + 10 failed");
    const char *bad[] = {
        "{\"request\":\"" RID "\",\"from\":\"" IID
        "\",\"tasks\":[],\"failed\":1,\"reason\":\"BECAUSE\"}",
        "{\"request\":\"" RID "\",\"from\":\"" IID
        "\",\"tasks\":[],\"failed\":11,\"reason\":\"AGENT\"}",
        "{\"request\":\"" RID "\",\"from\":\"" IID "\",\"tasks\":[],\"failed\":1}",
        "{\"request\":\"" TID "\",\"from\":\"" IID "\",\"tasks\":[],\"failed\":0}",
        "{\"request\":\"" RID "\",\"from\":\"" IID
        "\",\"tasks\":[{\"taskId\":\"x\",\"instance\":\"" IID "\"}],"
        "\"failed\":0}",
        "{\"request\":\"" RID "\",\"from\":\"" IID "\",\"tasks\":[],\"failed\":0}\nmore",
        "{\"request\":\"" RID "\",\"tasks\":[],\"failed\":0}",
        "{\"request\":\"" RID "\",\"from\":\"../x\",\"tasks\":[],\"failed\":0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kv = kv_of(ROOT "results/" RID, bad[i]);
        cr_assert_eq(cl_tk_result_read(ROOT "results/", &kv, &b, why, sizeof why), -EINVAL,
                     "case %zu", i);
    }
    /* what the refusals above each break */
    kv = kv_of(ROOT "results/" RID,
               "{\"request\":\"" RID "\",\"from\":\"" IID "\",\"tasks\":[],\"failed\":0}");
    cr_assert_eq(cl_tk_result_read(ROOT "results/", &kv, &b, why, sizeof why), 0, "%s", why);
    es_buf_free(&v);
}

Test(cluster_task_records, status_and_stop)
{
    cl_tk_status s, b;
    memset(&s, 0, sizeof s);
    snprintf(s.task_id, sizeof s.task_id, TID);
    snprintf(s.instance, sizeof s.instance, IID);
    snprintf(s.family, sizeof s.family, "web");
    s.revision = 1;
    snprintf(s.group, sizeof s.group, "family:web");
    snprintf(s.launch_type, sizeof s.launch_type, "EC2");
    snprintf(s.last_status, sizeof s.last_status, "STOPPED");
    snprintf(s.desired_status, sizeof s.desired_status, "STOPPED");
    snprintf(s.stop_code, sizeof s.stop_code, "EssentialContainerExited");
    snprintf(s.stopped_reason, sizeof s.stopped_reason, "Essential container in task exited");
    snprintf(s.containers[0].name, sizeof s.containers[0].name, "app");
    snprintf(s.containers[0].last_status, sizeof s.containers[0].last_status, "STOPPED");
    s.containers[0].has_exit_code = true;
    s.containers[0].exit_code = 137;
    s.n_containers = 1;
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    cr_assert_eq(cl_tk_status_write(&s, &v), 0);
    cl_kv kv = kv_of(ROOT "tasks/" TID, v.data);
    cr_assert_eq(cl_tk_status_read(ROOT "tasks/", &kv, &b, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(b.stop_code, "EssentialContainerExited");
    cr_assert_eq(b.containers[0].exit_code, 137);
    cr_assert(b.containers[0].has_exit_code);
    snprintf(s.last_status, sizeof s.last_status, "DONE");
    cr_assert_eq(cl_tk_status_write(&s, &v), -EINVAL, "a status ECS does not have");
    const char *bad[] = {
        "{\"taskId\":\"" TID "\",\"instance\":\"" IID "\",\"family\":\"web\",\"revision\":1,"
        "\"cpu\":0,\"memory\":0,\"group\":\"g\",\"launchType\":\"EC2\",\"lastStatus\":\"RUNNING\","
        "\"desiredStatus\":\"ASLEEP\",\"createdAt\":0,\"startedAt\":0,\"stoppedAt\":0}",
        "{\"taskId\":\"" RID "\",\"instance\":\"" IID "\",\"family\":\"web\",\"revision\":1,"
        "\"cpu\":0,\"memory\":0,\"group\":\"g\",\"launchType\":\"EC2\",\"lastStatus\":\"RUNNING\","
        "\"desiredStatus\":\"RUNNING\",\"createdAt\":0,\"startedAt\":0,\"stoppedAt\":0}",
        "{\"taskId\":\"" TID "\",\"instance\":\"" IID "\",\"family\":\"web\",\"revision\":1,"
        "\"cpu\":0,\"memory\":0,\"group\":\"g\",\"launchType\":\"EC2\",\"lastStatus\":\"RUNNING\","
        "\"desiredStatus\":\"RUNNING\",\"createdAt\":0,\"startedAt\":0,\"stoppedAt\":0,"
        "\"containers\":[{\"name\":\"a\",\"lastStatus\":\"RUNNING\",\"exitCode\":\"x\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kv = kv_of(ROOT "tasks/" TID, bad[i]);
        cr_assert_eq(cl_tk_status_read(ROOT "tasks/", &kv, &b, why, sizeof why), -EINVAL,
                     "case %zu", i);
    }

    cl_tk_stop sp, sb;
    memset(&sp, 0, sizeof sp);
    snprintf(sp.task_id, sizeof sp.task_id, TID);
    snprintf(sp.reason, sizeof sp.reason, "rolling back");
    es_buf_reset(&v);
    cr_assert_eq(cl_tk_stop_write(&sp, &v), 0);
    kv = kv_of(ROOT "stops/" TID, v.data);
    cr_assert_eq(cl_tk_stop_read(ROOT "stops/", &kv, &sb, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(sb.reason, "rolling back");
    kv = kv_of(ROOT "stops/" RID, v.data);
    cr_assert_eq(cl_tk_stop_read(ROOT "stops/", &kv, &sb, why, sizeof why), -EINVAL);
    cr_assert_str_eq(sb.code, "", "a record without a code (an older agent's) reads");
    /* a service's stop: the scheduler's code and sentence, back as written */
    snprintf(sp.code, sizeof sp.code, "ServiceSchedulerInitiated");
    snprintf(sp.reason, sizeof sp.reason, "Task stopped by (service web) deployment ecs-svc/1");
    es_buf_reset(&v);
    cr_assert_eq(cl_tk_stop_write(&sp, &v), 0);
    cr_assert_not_null(strstr(v.data, "\"stopCode\":\"ServiceSchedulerInitiated\""));
    kv = kv_of(ROOT "stops/" TID, v.data);
    cr_assert_eq(cl_tk_stop_read(ROOT "stops/", &kv, &sb, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(sb.code, "ServiceSchedulerInitiated");
    cr_assert_str_eq(sb.reason, "Task stopped by (service web) deployment ecs-svc/1");
    snprintf(sp.code, sizeof sp.code, "UserInitiated");
    es_buf_reset(&v);
    cr_assert_eq(cl_tk_stop_write(&sp, &v), 0);
    kv = kv_of(ROOT "stops/" TID, v.data);
    cr_assert_eq(cl_tk_stop_read(ROOT "stops/", &kv, &sb, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(sb.code, "UserInitiated");
    /* a code that is not ECS's: refused both ways */
    snprintf(sp.code, sizeof sp.code, "Whatever");
    es_buf_reset(&v);
    cr_assert_eq(cl_tk_stop_write(&sp, &v), -EINVAL);
    static const char *const bad_stops[] = {
        "{\"taskId\":\"" TID "\",\"stopCode\":\"Whatever\",\"reason\":\"r\"}",
        "{\"taskId\":\"" TID "\",\"stopCode\":7,\"reason\":\"r\"}",
        "{\"taskId\":\"" TID "\",\"stopCode\":\"userinitiated\",\"reason\":\"r\"}",
        "{\"taskId\":\"" TID "\",\"stopCode\":\"UserInitiated\\n\",\"reason\":\"r\"}",
        "{\"taskId\":\"" TID
        "\",\"stopCode\":\"ServiceSchedulerInitiatedServiceSchedulerInitiated\"}",
    };
    for (size_t i = 0; i < sizeof bad_stops / sizeof *bad_stops; i++) {
        kv = kv_of(ROOT "stops/" TID, bad_stops[i]);
        cr_assert_eq(cl_tk_stop_read(ROOT "stops/", &kv, &sb, why, sizeof why), -EINVAL,
                     "stop case %zu", i);
    }
    cr_assert(cl_tk_stop_code_ok("TerminationNotice"));
    cr_assert_not(cl_tk_stop_code_ok(""));
    cr_assert_not(cl_tk_stop_code_ok(NULL));
    sp.code[0] = '\0';
    snprintf(sp.reason, sizeof sp.reason, "tab\there");
    cr_assert_eq(cl_tk_stop_write(&sp, &v), -EINVAL);
    es_buf_free(&v);
}

/* The fuzz driver's seeds (tests/fuzz/corpus/cluster_tasks) are records the
 * readers take: the mutants start from values that parse. */
Test(cluster_task_records, fuzz_seeds_parse)
{
    static const char *const names[] = {"request", "assignment", "result", "status", "stop"};
    static const char *const leaves[] = {"requests/", "assignments/", "results/", "tasks/",
                                         "stops/"};
    for (size_t i = 0; i < 5; i++) {
        char path[512], buf[4096];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/cluster_tasks/%s", ES_SOURCE_DIR,
                 names[i]);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        cr_assert_eq((unsigned char)buf[0], i, "%s picks its record", names[i]);
        char *nl = strchr(buf + 1, '\n');
        cr_assert_not_null(nl);
        *nl = '\0';
        char key[4400], prefix[128];
        snprintf(prefix, sizeof prefix, "/ecs-secrets/clusters/c/%s", leaves[i]);
        snprintf(key, sizeof key, "%s%s", prefix, buf + 1);
        cl_kv kv = kv_of(key, nl + 1);
        kv.value_len = n - (size_t)(nl + 1 - buf);
        static cl_tk_request rq;
        cl_tk_assignment as;
        cl_tk_result rs;
        cl_tk_status st;
        cl_tk_stop sp;
        int r = i == 0   ? cl_tk_request_read(prefix, &kv, &rq, why, sizeof why)
                : i == 1 ? cl_tk_assignment_read(prefix, &kv, &as, why, sizeof why)
                : i == 2 ? cl_tk_result_read(prefix, &kv, &rs, why, sizeof why)
                : i == 3 ? cl_tk_status_read(prefix, &kv, &st, why, sizeof why)
                         : cl_tk_stop_read(prefix, &kv, &sp, why, sizeof why);
        cr_assert_eq(r, 0, "%s: %s", names[i], why);
    }
}

/* A lost host's task: the leader's STOPPED record, from the last record or
 * from the assignment alone, with ECS's words; and when a task counts as
 * lost. */
Test(cluster_task_records, lost_host_record)
{
    cl_tk_status prev, out, back;
    memset(&prev, 0, sizeof prev);
    snprintf(prev.task_id, sizeof prev.task_id, TID);
    snprintf(prev.instance, sizeof prev.instance, IID);
    snprintf(prev.family, sizeof prev.family, "web");
    prev.revision = 3;
    prev.cpu = 256;
    prev.memory = 128;
    snprintf(prev.group, sizeof prev.group, "family:web");
    snprintf(prev.launch_type, sizeof prev.launch_type, "EC2");
    snprintf(prev.last_status, sizeof prev.last_status, "RUNNING");
    snprintf(prev.desired_status, sizeof prev.desired_status, "RUNNING");
    prev.created_at = 100;
    prev.started_at = 101;
    snprintf(prev.containers[0].name, sizeof prev.containers[0].name, "app");
    snprintf(prev.containers[0].last_status, sizeof prev.containers[0].last_status, "RUNNING");
    prev.n_containers = 1;

    cr_assert_eq(cl_tk_status_lost(&prev, NULL, "i-0123456789abcdef0", 200, &out), 0);
    cr_assert_str_eq(out.last_status, "STOPPED");
    cr_assert_str_eq(out.desired_status, "STOPPED");
    cr_assert_str_eq(out.stop_code, "TerminationNotice");
    cr_assert_str_eq(out.stopped_reason, "Host EC2 (instance i-0123456789abcdef0) terminated.");
    cr_assert_eq(out.stopped_at, 200);
    cr_assert_eq(out.started_at, 101, "the record's times are kept");
    cr_assert_str_eq(out.containers[0].last_status, "STOPPED");
    cr_assert_str_eq(out.family, "web");
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    cr_assert_eq(cl_tk_status_write(&out, &v), 0, "the record is one the readers take");
    cl_kv kv = kv_of(ROOT "tasks/" TID, v.data);
    cr_assert_eq(cl_tk_status_read(ROOT "tasks/", &kv, &back, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(back.stopped_reason, out.stopped_reason);
    es_buf_free(&v);

    /* no EC2 ID known: the instance's ID is named; a clock behind the
     * creation does not make stoppedAt earlier than createdAt */
    cr_assert_eq(cl_tk_status_lost(&prev, NULL, "", 50, &out), 0);
    cr_assert_str_eq(out.stopped_reason, "Host EC2 (instance " IID ") terminated.");
    cr_assert_eq(out.stopped_at, 100);

    /* only an assignment (never launched, or its first status not written) */
    cl_tk_assignment a;
    memset(&a, 0, sizeof a);
    snprintf(a.instance, sizeof a.instance, IID);
    snprintf(a.task_id, sizeof a.task_id, TID);
    snprintf(a.request, sizeof a.request, RID);
    snprintf(a.family, sizeof a.family, "api");
    a.revision = 9;
    a.cpu = 64;
    a.memory = 32;
    snprintf(a.group, sizeof a.group, "family:api");
    snprintf(a.started_by, sizeof a.started_by, "ci");
    snprintf(a.launch_type, sizeof a.launch_type, "EXTERNAL");
    a.created_at = 7;
    cr_assert_eq(cl_tk_status_lost(NULL, &a, NULL, 9, &out), 0);
    cr_assert_str_eq(out.family, "api");
    cr_assert_eq(out.revision, 9);
    cr_assert_eq(out.memory, 32);
    cr_assert_str_eq(out.started_by, "ci");
    cr_assert_eq(out.n_containers, 0);
    cr_assert_eq(out.created_at, 7);
    cr_assert_eq(out.stopped_at, 9);
    cr_assert_str_eq(out.stop_code, "TerminationNotice");

    /* refusals: nothing to build from; a host ID that is no text */
    cr_assert_eq(cl_tk_status_lost(NULL, NULL, "i-1", 1, &out), -EINVAL);
    cr_assert_eq(cl_tk_status_lost(&prev, NULL, "i-\n1", 1, &out), -EINVAL);
    prev.family[0] = '\0';
    cr_assert_eq(cl_tk_status_lost(&prev, NULL, "i-1", 1, &out), -EINVAL,
                 "a record that is not valid stays refused");
}

Test(cluster_task_records, lost_decision)
{
    /* the view not read yet: nobody is lost (an empty view is no news) */
    cr_assert_not(cl_tk_task_lost(false, false, 60000, 2000, "RUNNING"));
    /* in the view: never */
    cr_assert_not(cl_tk_task_lost(true, true, 60000, 2000, "RUNNING"));
    /* missing, but not for the grace yet */
    cr_assert_not(cl_tk_task_lost(true, false, 1999, 2000, "RUNNING"));
    cr_assert(cl_tk_task_lost(true, false, 2000, 2000, "RUNNING"));
    cr_assert(cl_tk_task_lost(true, false, 2000, 2000, "PENDING"));
    cr_assert(cl_tk_task_lost(true, false, 2000, 2000, NULL), "only an assignment");
    cr_assert_not(cl_tk_task_lost(true, false, 60000, 2000, "STOPPED"), "already STOPPED");
}

/* STOPPED records expire: only STOPPED ones, keep_s after stoppedAt (or
 * createdAt without one), never with keep_s 0, not with a clock behind. */
Test(cluster_task_records, stopped_records_expire)
{
    cl_tk_status st;
    memset(&st, 0, sizeof st);
    snprintf(st.last_status, sizeof st.last_status, "STOPPED");
    st.created_at = 1000;
    st.stopped_at = 2000;
    cr_assert_not(cl_tk_status_expired(&st, 2000 + 3599, 3600));
    cr_assert(cl_tk_status_expired(&st, 2000 + 3600, 3600));
    cr_assert(cl_tk_status_expired(&st, 2000 + 90000, 3600));
    cr_assert_not(cl_tk_status_expired(&st, 2000 + 90000, 0), "0 keeps them");
    cr_assert_not(cl_tk_status_expired(&st, 2000 + 90000, -5));
    cr_assert_not(cl_tk_status_expired(&st, 1500, 1), "a clock behind the record's waits");
    st.stopped_at = 0; /* no stoppedAt: from its createdAt */
    cr_assert(cl_tk_status_expired(&st, 1000 + 3600, 3600));
    cr_assert_not(cl_tk_status_expired(&st, 1000 + 3599, 3600));
    st.stopped_at = 2000;
    static const char *const alive[] = {"PROVISIONING", "PENDING",        "RUNNING", "DEACTIVATING",
                                        "STOPPING",     "DEPROVISIONING", ""};
    for (size_t i = 0; i < sizeof alive / sizeof *alive; i++) {
        snprintf(st.last_status, sizeof st.last_status, "%s", alive[i]);
        cr_assert_not(cl_tk_status_expired(&st, 2000 + 90000, 3600), "%s", alive[i]);
    }
    snprintf(st.last_status, sizeof st.last_status, "STOPPED");
    st.stopped_at = INT64_MAX;
    cr_assert_not(cl_tk_status_expired(&st, 2000, 3600), "no overflow");
}
