#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agent/store/store.h"
#include "agent/tasks/task.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"

static ag_task *mk(void)
{
    ag_task *t = NULL;
    cr_assert_eq(ag_task_create("us-east-1", "123456789012", "default", "web", 2, "me", NULL, NULL,
                                1000, &t),
                 0);
    return t;
}

Test(task, create_and_arn)
{
    ag_task *t = mk();
    cr_assert_eq(t->last_status, AG_TASK_PROVISIONING);
    cr_assert_eq(t->desired_status, AG_TASK_RUNNING);
    cr_assert_eq(t->created_at, 1000);
    cr_assert_str_eq(t->launch_type, "EC2");
    cr_assert_eq(strlen(t->id), AG_TASK_ID_HEX);
    for (const char *p = t->id; *p; p++)
        cr_assert(strchr("0123456789abcdef", *p));
    char want[128];
    snprintf(want, sizeof want, "arn:aws:ecs:us-east-1:123456789012:task/default/%s", t->id);
    cr_assert_str_eq(t->arn, want);
    char r[256], a[256], c[256], id[256];
    cr_assert_eq(ag_task_arn_split(t->arn, r, a, c, id, sizeof r), 0);
    cr_assert_str_eq(r, "us-east-1");
    cr_assert_str_eq(a, "123456789012");
    cr_assert_str_eq(c, "default");
    cr_assert_str_eq(id, t->id);
    ag_task *u = mk();
    cr_assert_str_neq(t->id, u->id, "ids are random");
    ag_task_free(u);
    ag_task_free(t);
    ag_task_free(NULL);

    cr_assert_eq(ag_task_create("us-east-1", "123456789012", "bad/cluster", "web", 1, NULL, NULL,
                                NULL, 1, &t),
                 -EINVAL);
    cr_assert_eq(
        ag_task_create("us-east-1", "123456789012", "c", "web", 0, NULL, NULL, NULL, 1, &t),
        -EINVAL);
    cr_assert_eq(ag_task_arn_split("arn:aws:ecs:r:a:task/c/short", r, a, c, id, sizeof r), -EINVAL);
    cr_assert_eq(ag_task_arn_split("arn:aws:ecs:r:a:service/c/x", r, a, c, id, sizeof r), -EINVAL);
}

Test(task, lifecycle_timestamps)
{
    ag_task *t = mk();
    cr_assert_eq(ag_task_transition(t, AG_TASK_PENDING, 1001, NULL, NULL), 0);
    cr_assert_eq(t->pull_started_at, 1001);
    cr_assert_eq(ag_task_transition(t, AG_TASK_RUNNING, 1003, NULL, NULL), 0);
    cr_assert_eq(t->pull_stopped_at, 1003);
    cr_assert_eq(t->started_at, 1003);
    cr_assert_eq(ag_task_transition(t, AG_TASK_DEACTIVATING, 1005, NULL, NULL), 0);
    cr_assert_eq(t->stopping_at, 1005);
    cr_assert_eq(ag_task_transition(t, AG_TASK_STOPPING, 1006, NULL, NULL), 0);
    cr_assert_eq(t->stopping_at, 1005, "set once");
    cr_assert_eq(ag_task_transition(t, AG_TASK_DEPROVISIONING, 1007, NULL, NULL), 0);
    cr_assert_eq(t->execution_stopped_at, 1007);
    cr_assert_eq(ag_task_transition(t, AG_TASK_STOPPED, 1009, NULL, NULL), 0);
    cr_assert_eq(t->stopped_at, 1009);
    cr_assert_eq(t->execution_stopped_at, 1007);
    cr_assert_eq(t->version, 6);
    ag_task_free(t);
}

Test(task, illegal_transitions_are_refused)
{
    /* every pair: only the documented forward moves pass */
    for (int from = 0; from < AG_TASK_STATUS_COUNT; from++)
        for (int to = 0; to < AG_TASK_STATUS_COUNT; to++) {
            bool ok = ag_task_transition_ok((ag_task_status)from, (ag_task_status)to);
            if (to <= from)
                cr_assert_not(ok, "%s -> %s must be refused", ag_task_status_name(from),
                              ag_task_status_name(to));
        }
    cr_assert_not(ag_task_transition_ok(AG_TASK_PROVISIONING, AG_TASK_RUNNING));
    cr_assert_not(ag_task_transition_ok(AG_TASK_PROVISIONING, AG_TASK_STOPPING));
    cr_assert(ag_task_transition_ok(AG_TASK_PROVISIONING, AG_TASK_STOPPED));
    cr_assert(ag_task_transition_ok(AG_TASK_PENDING, AG_TASK_STOPPED));
    cr_assert(ag_task_transition_ok(AG_TASK_RUNNING, AG_TASK_STOPPED));
    cr_assert_not(ag_task_transition_ok(AG_TASK_STOPPED, AG_TASK_RUNNING));
    cr_assert_not(ag_task_transition_ok((ag_task_status)99, AG_TASK_STOPPED));

    ag_task *t = mk();
    cr_assert_eq(ag_task_transition(t, AG_TASK_RUNNING, 5, NULL, NULL), -EINVAL);
    cr_assert_eq(t->last_status, AG_TASK_PROVISIONING, "unchanged");
    cr_assert_eq(t->started_at, 0);
    cr_assert_eq(t->version, 0);
    cr_assert_eq(ag_task_transition(t, AG_TASK_STOPPED, 6, NULL, NULL), 0);
    cr_assert_eq(ag_task_transition(t, AG_TASK_PENDING, 7, NULL, NULL), -EINVAL);
    cr_assert_eq(ag_task_transition(t, AG_TASK_STOPPED, 7, NULL, NULL), -EINVAL);
    cr_assert_eq(t->stopped_at, 6);
    ag_task_free(t);
}

Test(task, names_parse_back)
{
    for (int s = 0; s < AG_TASK_STATUS_COUNT; s++) {
        ag_task_status back;
        cr_assert_eq(ag_task_status_parse(ag_task_status_name((ag_task_status)s), &back), 0);
        cr_assert_eq((int)back, s);
    }
    ag_task_status st;
    cr_assert_eq(ag_task_status_parse("RUNNINGX", &st), -EINVAL);
    const char *codes[] = {"TaskFailedToStart", "EssentialContainerExited", "UserInitiated",
                           "ServiceSchedulerInitiated", "TerminationNotice"};
    for (size_t i = 0; i < 5; i++) {
        ag_stop_code c;
        cr_assert_eq(ag_stop_code_parse(codes[i], &c), 0);
        cr_assert_str_eq(ag_stop_code_name(c), codes[i]);
    }
    ag_stop_code c;
    cr_assert_eq(ag_stop_code_parse("Nope", &c), -EINVAL);
    cr_assert_null(ag_stop_code_name(AG_STOP_NONE));
}

Test(task, first_stop_reason_sticks)
{
    ag_task *t = mk();
    cr_assert_eq(ag_task_request_stop(t, AG_STOP_TASK_FAILED_TO_START, "first\nline", NULL, NULL),
                 0);
    cr_assert_eq(t->desired_status, AG_TASK_STOPPED);
    cr_assert_eq(t->stop_code, AG_STOP_TASK_FAILED_TO_START);
    cr_assert_str_eq(t->stopped_reason, "first line", "control characters become spaces");
    cr_assert_eq(ag_task_request_stop(t, AG_STOP_USER_INITIATED, "second", NULL, NULL), 0);
    cr_assert_eq(t->stop_code, AG_STOP_TASK_FAILED_TO_START);
    cr_assert_str_eq(t->stopped_reason, "first line");
    ag_task_free(t);
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

Test(task, stopped_reason_is_capped_at_1024_characters)
{
    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    char out[AG_REASON_BUF];
    size_t n = ag_reason_clip(out, sizeof out, big);
    cr_assert_eq(n, AG_STOPPED_REASON_MAX);
    cr_assert_eq(strlen(out), AG_STOPPED_REASON_MAX);
    cr_assert_str_eq(out + AG_STOPPED_REASON_MAX - 3, "...");
    /* exactly 1024 is kept whole */
    big[1024] = '\0';
    cr_assert_eq(ag_reason_clip(out, sizeof out, big), 1024);
    cr_assert_eq(strchr(out, '.'), NULL);
    /* multi-byte characters count as one and are never split */
    es_buf b;
    es_buf_init(&b, 1 << 16);
    for (int i = 0; i < 1500; i++)
        es_buf_append_str(&b, "\xe7\xa7\x98"); /* 秘 */
    n = ag_reason_clip(out, sizeof out, b.data);
    cr_assert_eq(utf8_chars(out), AG_STOPPED_REASON_MAX);
    cr_assert_eq(n, 1021 * 3 + 3);
    es_buf_free(&b);
    /* invalid UTF-8 becomes '?', so the JSON writer accepts it */
    ag_reason_clip(out, sizeof out, "a\xff\xc3Zb");
    cr_assert_str_eq(out, "a??Zb");
    /* a small buffer cuts on a character boundary too */
    char small[8];
    ag_reason_clip(small, sizeof small, "\xe7\xa7\x98\xe7\xa7\x98\xe7\xa7\x98");
    cr_assert_str_eq(small, "\xe7\xa7\x98...");

    ag_task *t = mk();
    memset(big, 'y', 4999);
    big[4999] = '\0';
    cr_assert_eq(ag_task_request_stop(t, AG_STOP_TASK_FAILED_TO_START, big, NULL, NULL), 0);
    cr_assert_eq(strlen(t->stopped_reason), AG_STOPPED_REASON_MAX);
    ag_task_free(t);
    free(big);
}

Test(task, secret_failure_reason_shape)
{
    char out[AG_REASON_BUF];
    ag_secret_failure f = {.service = "ssm",
                           .region = "us-east-1",
                           .secret = "/test/database_password",
                           .aws_code = "ParameterNotFound",
                           .detail = "invalid parameters: /test/database_password"};
    ag_reason_secret_failure(out, sizeof out, &f);
    cr_assert_str_eq(out, "ResourceInitializationError: unable to pull secrets or registry auth: "
                          "execution resource retrieval failed: unable to retrieve secrets from "
                          "ssm: failed to fetch secret /test/database_password from ssm in "
                          "us-east-1: ParameterNotFound: invalid parameters: "
                          "/test/database_password");
    f = (ag_secret_failure){.service = "asm",
                            .region = "eu-west-1",
                            .secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
                            .aws_code = "AccessDeniedException",
                            .detail = NULL};
    ag_reason_secret_failure(out, sizeof out, &f);
    cr_assert_not_null(strstr(out, "unable to retrieve secret from asm: failed to fetch secret "
                                   "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x from "
                                   "secrets manager in eu-west-1: AccessDeniedException"));
    char detail[3000];
    memset(detail, 'd', sizeof detail - 1);
    detail[sizeof detail - 1] = '\0';
    f.detail = detail;
    size_t n = ag_reason_secret_failure(out, sizeof out, &f);
    cr_assert_eq(n, AG_STOPPED_REASON_MAX);
    cr_assert_eq(strncmp(out, "ResourceInitializationError: ", 29), 0);
}

Test(task, containers_and_reason_cap)
{
    ag_task *t = mk();
    cr_assert_eq(ag_task_add_container(t, "app", "busybox"), 0);
    cr_assert_eq(ag_task_add_container(t, "side", "busybox"), 0);
    cr_assert_str_eq(t->containers[0].last_status, "PENDING");
    int code = 137;
    char reason[600];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    cr_assert_eq(ag_task_container_update(t, "side", "d0c", "STOPPED", &code, reason), 0);
    ag_task_container *c = ag_task_find_container(t, "side");
    cr_assert_str_eq(c->docker_id, "d0c");
    cr_assert(c->has_exit_code && c->exit_code == 137);
    cr_assert_eq(strlen(c->reason), AG_CONTAINER_REASON_MAX);
    cr_assert_eq(ag_task_container_update(t, "nope", NULL, NULL, NULL, NULL), -ENOENT);
    ag_task_free(t);
}

Test(task, describe_shape)
{
    ag_task *t = mk();
    ag_task_add_container(t, "app", "busybox");
    ag_task_add_secret_meta(t, "app", AG_SECRET_ENV, "DB_PASSWORD", "/test/db",
                            "arn:aws:ssm:us-east-1:123456789012:parameter/test/db", "3", 1002,
                            "hmac-sha256:0123456789abcdef0123456789abcdef");
    ag_task_transition(t, AG_TASK_PENDING, 1001, NULL, NULL);
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_jw w;
    es_jw_init(&w, &b);
    ag_task_write_json(t, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(b.data, b.len, NULL, &j, NULL, 0), 0);
    cr_assert_str_eq(es_json_get_str(j, "lastStatus"), "PENDING");
    cr_assert_str_eq(es_json_get_str(j, "desiredStatus"), "RUNNING");
    cr_assert_str_eq(es_json_get_str(j, "clusterArn"),
                     "arn:aws:ecs:us-east-1:123456789012:cluster/default");
    cr_assert_str_eq(es_json_get_str(j, "taskDefinitionArn"),
                     "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2");
    int64_t v;
    cr_assert(es_json_get_int64(j, "createdAt", &v) && v == 1000);
    cr_assert(es_json_get_int64(j, "pullStartedAt", &v) && v == 1001);
    cr_assert_null(es_json_get(j, "stoppedAt"), "unset times are left out");
    cr_assert_null(es_json_get(j, "stopCode"));
    cr_assert_str_eq(es_json_get_str(j, "startedBy"), "me");
    const es_json *c = es_json_at(es_json_get(j, "containers"), 0);
    cr_assert_str_eq(es_json_get_str(c, "name"), "app");
    const es_json *s = es_json_at(es_json_get(j, "secretsResolved"), 0);
    cr_assert_str_eq(es_json_get_str(s, "sourceArn"),
                     "arn:aws:ssm:us-east-1:123456789012:parameter/test/db");
    cr_assert_str_eq(es_json_get_str(s, "version"), "3");
    const es_json *a = es_json_at(es_json_get(j, "attributes"), 0);
    cr_assert_str_eq(es_json_get_str(a, "name"), "ecs-secrets-agent/secret/app/DB_PASSWORD");
    cr_assert_str_eq(es_json_get_str(a, "value"),
                     "version 3 hmac-sha256:0123456789abcdef0123456789abcdef");
    es_json_free(j);
    es_buf_free(&b);
    ag_task_free(t);
}

/* The attribute texts: characters outside each rule's set mapped to '_', the
 * name and the value each cut at 128 characters (ECS's limit), the stale
 * attributes and the container's ARN; written from parts, not a format. */
Test(task, describe_attribute_texts)
{
    ag_task *t = mk();
    ag_task_add_container(t, "app", "busybox");
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ag_task_add_secret_meta(t, "app", AG_SECRET_LOG, "splunk-token", "a b",
                            "arn:aws:ssm:us-east-1:123456789012:parameter/a", "v 1+x", 1002,
                            "fp:1@2/3\\4.5-6_7 8");
    ag_task_add_secret_meta(t, "app", AG_SECRET_ENV, longname, "/x",
                            "arn:aws:ssm:us-east-1:123456789012:parameter/x", "2", 1002, NULL);
    t->secrets[1].drift = AG_DRIFT_STALE;
    snprintf(t->secrets[1].latest_version, sizeof t->secrets[1].latest_version, "3#4");
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_jw w;
    es_jw_init(&w, &b);
    ag_task_write_json(t, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    es_json *j = NULL;
    cr_assert_eq(es_json_parse(b.data, b.len, NULL, &j, NULL, 0), 0);
    const es_json *c = es_json_at(es_json_get(j, "containers"), 0);
    char want[256];
    snprintf(want, sizeof want, "arn:aws:ecs:us-east-1:123456789012:container/default/%s/app",
             t->id);
    cr_assert_str_eq(es_json_get_str(c, "containerArn"), want);
    const es_json *at = es_json_get(j, "attributes");
    const es_json *a0 = es_json_at(at, 0), *a1 = es_json_at(at, 1), *a2 = es_json_at(at, 2);
    const es_json *a3 = es_json_at(at, 3);
    cr_assert_str_eq(es_json_get_str(a0, "name"), "ecs-secrets-agent/logsecret/app/splunk-token");
    cr_assert_str_eq(es_json_get_str(a0, "value"), "version v_1_x fp:1@2/3\\4.5-6_7_8");
    const char *n1 = es_json_get_str(a1, "name");
    cr_assert_eq(strlen(n1), 128, "cut at 128: %zu", strlen(n1));
    cr_assert_eq(strncmp(n1, "ecs-secrets-agent/secret/app/nnnn", 33), 0, "%s", n1);
    cr_assert_str_eq(es_json_get_str(a1, "value"), "version 2 none");
    const char *n2 = es_json_get_str(a2, "name");
    cr_assert_eq(strlen(n2), 128);
    cr_assert_eq(strncmp(n2, "ecs-secrets-agent/stale/app/nnnn", 32), 0, "%s", n2);
    cr_assert_str_eq(es_json_get_str(a2, "value"), "the store has version 3_4");
    cr_assert_str_eq(es_json_get_str(a3, "name"), "ecs-secrets-agent/staleSecrets");
    cr_assert_str_eq(es_json_get_str(a3, "value"), "1");
    es_json_free(j);
    es_buf_free(&b);
    ag_task_free(t);
}

/* Persistence through the transition: a store failure leaves the task as it was. */
static int refusing_commit(void *arg, const ag_task *t)
{
    (void)arg;
    (void)t;
    return -EIO;
}

Test(task, transition_persists_or_rolls_back)
{
    char dir[] = "/tmp/es-task-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    ag_store *st = NULL;
    char err[256];
    cr_assert_eq(ag_store_open(dir, &st, err, sizeof err), 0, "%s", err);
    ag_task *t = mk();
    cr_assert_eq(ag_task_transition(t, AG_TASK_PENDING, 1001, ag_store_task_commit, st), 0);
    ag_task *back = NULL;
    cr_assert_eq(ag_store_task_get(st, t->arn, &back), 0);
    cr_assert_eq(back->last_status, AG_TASK_PENDING);
    cr_assert_eq(back->pull_started_at, 1001);
    ag_task_free(back);

    cr_assert_eq(
        ag_task_request_stop(t, AG_STOP_USER_INITIATED, "by user", ag_store_task_commit, st), 0);
    cr_assert_eq(ag_store_task_get(st, t->arn, &back), 0);
    cr_assert_eq(back->desired_status, AG_TASK_STOPPED);
    cr_assert_str_eq(back->stopped_reason, "by user");
    ag_task_free(back);

    /* another process cannot take the database from under the daemon: the
     * daemon holds it exclusively, so a second connection is refused at once
     * instead of making the daemon's writes wait */
    char path[128];
    snprintf(path, sizeof path, "%s/agent.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) & 0xff, SQLITE_BUSY);
    sqlite3_close(db);
    /* make the store fail: a commit that refuses, as a failed write does */
    int64_t version = t->version;
    cr_assert_neq(ag_task_transition(t, AG_TASK_RUNNING, 1003, refusing_commit, st), 0);
    cr_assert_eq(t->last_status, AG_TASK_PENDING, "rolled back");
    cr_assert_eq(ag_store_task_get(st, t->arn, &back), 0);
    cr_assert_eq(back->last_status, AG_TASK_PENDING, "nothing persisted");
    ag_task_free(back);
    cr_assert_eq(t->started_at, 0);
    cr_assert_eq(t->version, version);
    ag_task_free(t);
    ag_store_close(st);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(task, allocation_failures_are_clean)
{
    int failures = 0;
    for (long n = 0; n < 100; n++) {
        ag_task *t = NULL;
        es_alloc_fail_after(n);
        int r = ag_task_create("us-east-1", "123456789012", "c", "f", 1, "s", "g", NULL, 1, &t);
        if (r == 0) {
            r = ag_task_add_container(t, "a", "i");
            if (r == 0)
                r = ag_task_add_secret_meta(t, "a", AG_SECRET_ENV, "n", "/v", "arn", "1", 1, "fp");
            if (r == 0)
                r = ag_task_request_stop(t, AG_STOP_USER_INITIATED, "why", NULL, NULL);
        }
        es_alloc_fail_after(-1);
        ag_task_free(t);
        if (r == 0)
            break;
        cr_assert_eq(r, -ENOMEM, "n=%ld", n);
        failures++;
    }
    cr_assert_gt(failures, 10);
}

/* healthStatus as ECS computes it: only essential containers with a health
 * check count; UNHEALTHY wins, HEALTHY needs all of them */
Test(task, health_status)
{
    ag_task *t = mk();
    cr_assert_eq(ag_task_add_container(t, "app", "i"), 0);
    cr_assert_eq(ag_task_add_container(t, "db", "i"), 0);
    cr_assert_eq(ag_task_add_container(t, "side", "i"), 0);
    ag_task_container *app = &t->containers[0], *db = &t->containers[1], *side = &t->containers[2];
    app->essential = db->essential = true;
    cr_assert_eq(ag_task_health(t), AG_HEALTH_UNKNOWN, "no health check: UNKNOWN");
    side->health_checked = true;
    side->health = AG_HEALTH_UNHEALTHY;
    cr_assert_eq(ag_task_health(t), AG_HEALTH_UNKNOWN, "a non-essential one does not count");
    app->health_checked = db->health_checked = true;
    app->health = AG_HEALTH_HEALTHY;
    cr_assert_eq(ag_task_health(t), AG_HEALTH_UNKNOWN, "db is still being evaluated");
    db->health = AG_HEALTH_HEALTHY;
    cr_assert_eq(ag_task_health(t), AG_HEALTH_HEALTHY);
    db->health = AG_HEALTH_UNHEALTHY;
    cr_assert_eq(ag_task_health(t), AG_HEALTH_UNHEALTHY);
    db->health_checked = false; /* an essential one without a check does not count */
    cr_assert_eq(ag_task_health(t), AG_HEALTH_HEALTHY);
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_jw w;
    es_jw_init(&w, &b);
    ag_task_write_json(t, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_not_null(strstr(b.data, "\"healthStatus\":\"HEALTHY\",\"version\""), "%s", b.data);
    cr_assert_not_null(strstr(b.data, "\"name\":\"side\""), "%s", b.data);
    cr_assert_not_null(strstr(b.data, "\"healthStatus\":\"UNHEALTHY\"}"), "side's: %s", b.data);
    es_buf_free(&b);
    ag_task_free(t);
}
