/* agent/cluster_services.c, its pure part: a service to its etcd record
 * and back (the DescribeServices answer the same before and after), the
 * newest events kept, tags the agent refuses, and a task of the cluster as
 * the scheduler's census counts it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cluster_services.h"
#include "agent/services/redeploy.h"

#define TID "fedcba9876543210fedcba9876543210"
#define IID "aaaabbbbccccddddeeeeffff00001111"
#define ARN "arn:aws:ecs:us-east-1:123456789012:task/prod/" TID

static ag_service *sample(void)
{
    ag_service *v = NULL;
    cr_assert_eq(ag_service_new("us-east-1", "123456789012", "prod", "web", "web-td", 3, 3, 200, 50,
                                true, true, 1700000000, &v),
                 0);
    cr_assert_eq(ag_service_deploy(v, "web-td", 4, 1700000100), 0);
    ag_service_set_rollout(v, &v->deps[1], AG_ROLLOUT_COMPLETED, 1700000050);
    cr_assert_eq(ag_service_set_reason(&v->deps[1], "ECS deployment %s completed.", v->deps[1].id),
                 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ag_service_event(v, 1700000100 + i, "(service web) event %d", i), 0);
    ag_svc_placement p = {.n_strategies = 1, .n_constraints = 1};
    snprintf(p.strategies[0].type, sizeof p.strategies[0].type, "spread");
    snprintf(p.strategies[0].field, sizeof p.strategies[0].field, "instanceId");
    snprintf(p.constraints[0].type, sizeof p.constraints[0].type, "distinctInstance");
    cr_assert_eq(ag_service_set_placement(v, &p), 0);
    ag_tags t = {.n = 2};
    t.items[0] = (ag_tag){.key = "team", .value = "payments"};
    t.items[1] = (ag_tag){.key = AG_REDEPLOY_TAG, .value = "true"};
    cr_assert_eq(ag_tags_copy(&v->tags, &t), 0);
    v->redeploy = true;
    v->redeployed_at = 1700000090;
    return v;
}

static char *describe(const ag_service *v)
{
    es_buf b;
    es_buf_init(&b, 1 << 20);
    es_jw w;
    es_jw_init(&w, &b);
    ag_service_write_json(v, true, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    return es_buf_steal(&b);
}

Test(cluster_services_glue, round_trip_through_etcd)
{
    ag_service *v = sample();
    cl_sv_record *rec = calloc(1, sizeof *rec);
    rec->mod_revision = 12;
    cr_assert_eq(ag_csvc_to_record(v, rec), 0);
    cr_assert_eq(rec->mod_revision, 12, "the revision read is kept");
    /* through the record's own writer and reader, as etcd carries it */
    es_buf b;
    es_buf_init(&b, CL_SV_VALUE_MAX);
    cr_assert_eq(cl_sv_write(rec, &b, NULL), 0);
    cl_kv kv = {.key = "/ecs-secrets/clusters/prod/services/web",
                .value = b.data,
                .value_len = b.len,
                .mod_revision = 13};
    char why[200];
    cl_sv_record *back = calloc(1, sizeof *back);
    cr_assert_eq(cl_sv_read("/ecs-secrets/clusters/prod/services/", &kv, back, why, sizeof why), 0,
                 "%s", why);
    ag_service *w = NULL;
    cr_assert_eq(ag_csvc_from_record(back, "us-east-1", "123456789012", "prod", &w), 0);
    char *a = describe(v), *c = describe(w);
    cr_assert_str_eq(a, c);
    cr_assert(strstr(c, "\"placementConstraints\":[{\"type\":\"distinctInstance\"}]"), "%s", c);
    cr_assert(w->redeploy, "the policy read from the tags");
    cr_assert_eq(w->redeployed_at, 1700000090);
    cr_assert_eq(w->deps[0].status, AG_DEP_PRIMARY);
    cr_assert_eq(w->deps[1].status, AG_DEP_ACTIVE);
    cr_assert_str_eq(w->deps[0].id, v->deps[0].id);
    free(a);
    free(c);
    es_buf_free(&b);
    ag_service_free(v);
    ag_service_free(w);
    free(rec);
    free(back);
}

Test(cluster_services_glue, the_newest_events_go_to_etcd)
{
    ag_service *v = sample();
    for (int i = 0; i < 40; i++)
        cr_assert_eq(ag_service_event(v, 1700000200 + i, "(service web) more %d", i), 0);
    cl_sv_record *rec = calloc(1, sizeof *rec);
    cr_assert_eq(ag_csvc_to_record(v, rec), 0);
    cr_assert_eq(rec->n_events, CL_SV_EVENTS_MAX);
    cr_assert_str_eq(rec->events[0].message, "(service web) more 39");
    cr_assert_str_eq(rec->events[CL_SV_EVENTS_MAX - 1].message, "(service web) more 20");
    ag_service_free(v);
    free(rec);
}

Test(cluster_services_glue, refusals_from_a_record)
{
    ag_service *v = sample(), *w = NULL;
    cl_sv_record *rec = calloc(1, sizeof *rec);
    cr_assert_eq(ag_csvc_to_record(v, rec), 0);
    /* a tag the agent's rules refuse (the record's only checks lengths) */
    snprintf(rec->tags[0].key, sizeof rec->tags[0].key, "a\tb");
    cr_assert_eq(ag_csvc_from_record(rec, "us-east-1", "123456789012", "prod", &w), -EINVAL);
    cr_assert_eq(ag_csvc_to_record(v, rec), 0);
    /* a malformed redeploy policy */
    snprintf(rec->tags[1].value, sizeof rec->tags[1].value, "maybe");
    cr_assert_eq(ag_csvc_from_record(rec, "us-east-1", "123456789012", "prod", &w), -EINVAL);
    cr_assert_eq(ag_csvc_to_record(v, rec), 0);
    snprintf(rec->status, sizeof rec->status, "GONE");
    cr_assert_eq(ag_csvc_from_record(rec, "us-east-1", "123456789012", "prod", &w), -EINVAL);
    cr_assert_eq(ag_csvc_to_record(v, rec), 0);
    rec->max_percent = 50;
    cr_assert_eq(ag_csvc_from_record(rec, "us-east-1", "123456789012", "prod", &w), -EINVAL);
    cr_assert_null(w);
    ag_service_free(v);
    free(rec);
}

static cl_tk_assignment assignment(void)
{
    cl_tk_assignment a;
    memset(&a, 0, sizeof a);
    snprintf(a.instance, sizeof a.instance, IID);
    snprintf(a.task_id, sizeof a.task_id, TID);
    snprintf(a.started_by, sizeof a.started_by, "ecs-svc/1234567890123456789");
    a.created_at = 1700000000;
    return a;
}

static cl_tk_status status(const char *last, const char *desired, const char *code)
{
    cl_tk_status s;
    memset(&s, 0, sizeof s);
    snprintf(s.task_id, sizeof s.task_id, TID);
    snprintf(s.started_by, sizeof s.started_by, "ecs-svc/1234567890123456789");
    snprintf(s.last_status, sizeof s.last_status, "%s", last);
    snprintf(s.desired_status, sizeof s.desired_status, "%s", desired);
    snprintf(s.stop_code, sizeof s.stop_code, "%s", code);
    s.created_at = 1700000001;
    s.stopped_at = 1700000009;
    return s;
}

Test(cluster_services_glue, a_cluster_task_as_the_census_counts_it)
{
    ag_svc_task t;
    cl_tk_assignment a = assignment();
    /* placed, not launched yet */
    cr_assert_eq(ag_csvc_task_view(NULL, &a, false, ARN, &t), 0);
    cr_assert_eq(t.last_status, AG_TASK_PROVISIONING);
    cr_assert_eq(t.desired_status, AG_TASK_RUNNING);
    cr_assert_str_eq(t.started_by, "ecs-svc/1234567890123456789");
    cr_assert_str_eq(t.arn, ARN);
    cr_assert_eq(t.created_at, 1700000000);
    /* a stop asked through stops/ */
    cr_assert_eq(ag_csvc_task_view(NULL, &a, true, ARN, &t), 0);
    cr_assert_eq(t.desired_status, AG_TASK_STOPPED);
    /* running on its owner */
    cl_tk_status s = status("RUNNING", "RUNNING", "");
    cr_assert_eq(ag_csvc_task_view(&s, &a, false, ARN, &t), 0);
    cr_assert_eq(t.last_status, AG_TASK_RUNNING);
    cr_assert_eq(t.desired_status, AG_TASK_RUNNING);
    cr_assert_eq(t.stop_code, AG_STOP_NONE);
    /* running, its assignment gone: on its way out */
    cr_assert_eq(ag_csvc_task_view(&s, NULL, false, ARN, &t), 0);
    cr_assert_eq(t.desired_status, AG_TASK_STOPPED);
    /* stopped by a launch failure: the breaker counts it */
    s = status("STOPPED", "STOPPED", "TaskFailedToStart");
    snprintf(s.stopped_reason, sizeof s.stopped_reason, "CannotPullContainerError");
    cr_assert_eq(ag_csvc_task_view(&s, NULL, false, ARN, &t), 0);
    cr_assert_eq(t.stop_code, AG_STOP_TASK_FAILED_TO_START);
    cr_assert_str_eq(t.stopped_reason, "CannotPullContainerError");
    cr_assert_eq(t.stopped_at, 1700000009);
    /* a lost host's */
    s = status("STOPPED", "STOPPED", CL_TK_LOST_STOP_CODE);
    cr_assert_eq(ag_csvc_task_view(&s, NULL, false, ARN, &t), 0);
    cr_assert_eq(t.stop_code, AG_STOP_TERMINATION_NOTICE);
    /* refusals */
    cr_assert_eq(ag_csvc_task_view(NULL, NULL, false, ARN, &t), -EINVAL);
    s = status("STOPPED", "STOPPED", "Exploded");
    cr_assert_eq(ag_csvc_task_view(&s, NULL, false, ARN, &t), -EINVAL);
    s = status("WALKING", "RUNNING", "");
    cr_assert_eq(ag_csvc_task_view(&s, &a, false, ARN, &t), -EINVAL);
}

/* A service whose tasks fit nowhere: the leader does not ask again every
 * pass; it waits, longer each time the capacity is the same, asks at once
 * when the capacity generation moves, and stops waiting once a task fits. */
Test(cluster_services_glue, an_unplaceable_service_backs_off_until_capacity_changes)
{
    ag_csvc_backoff b = {0};
    uint64_t now = 1000, gen = 7;
    cr_assert(!ag_csvc_backoff_holds(&b, now, gen), "no failure yet: asks");
    ag_csvc_backoff_placed(&b, 0, 1, now, gen);
    cr_assert(ag_csvc_backoff_holds(&b, now + 1, gen));
    cr_assert(ag_csvc_backoff_holds(&b, now + AG_CSVC_BACKOFF_MIN_MS - 1, gen));
    cr_assert(!ag_csvc_backoff_holds(&b, now + AG_CSVC_BACKOFF_MIN_MS, gen), "the wait ended");
    /* the same capacity, nothing fits again: twice as long, up to the cap */
    uint64_t delay = AG_CSVC_BACKOFF_MIN_MS;
    for (int i = 0; i < 12; i++) {
        now += delay;
        ag_csvc_backoff_placed(&b, 0, 3, now, gen);
        delay = delay * 2 < AG_CSVC_BACKOFF_MAX_MS ? delay * 2 : AG_CSVC_BACKOFF_MAX_MS;
        cr_assert_eq(b.delay_ms, delay, "try %d", i);
        cr_assert(ag_csvc_backoff_holds(&b, now + delay - 1, gen));
        cr_assert(!ag_csvc_backoff_holds(&b, now + delay, gen));
    }
    cr_assert_eq(b.delay_ms, AG_CSVC_BACKOFF_MAX_MS, "capped");
    /* capacity moved (an instance joined, a task stopped): asked at once */
    cr_assert(!ag_csvc_backoff_holds(&b, now + 1, gen + 1));
    /* and still nothing fits: the wait starts over, from the shortest */
    ag_csvc_backoff_placed(&b, 0, 1, now + 1, gen + 1);
    cr_assert_eq(b.delay_ms, AG_CSVC_BACKOFF_MIN_MS);
    /* one task placed: no more waiting */
    ag_csvc_backoff_placed(&b, 1, 2, now + 2, gen + 1);
    cr_assert(!ag_csvc_backoff_holds(&b, now + 3, gen + 1));
    cr_assert_eq(b.delay_ms, 0);
}
