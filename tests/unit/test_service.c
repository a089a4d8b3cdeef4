/* The service model: rolling-update arithmetic, the circuit breaker's
 * threshold, ECS's event wording, the events ring, persistence across a
 * reopen, and the drift answer parsers (good and bad input). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/secrets/drift.h"
#include "agent/services/service.h"
#include "agent/store/store.h"

Test(service, bounds_round_as_ecs)
{
    /* maximumPercent rounds down, minimumHealthyPercent rounds up */
    cr_assert_eq(ag_svc_upper(3, 150), 4);
    cr_assert_eq(ag_svc_upper(20, 150), 30);
    cr_assert_eq(ag_svc_upper(1, 200), 2);
    cr_assert_eq(ag_svc_upper(3, 100), 3);
    cr_assert_eq(ag_svc_lower(3, 50), 2);
    cr_assert_eq(ag_svc_lower(20, 100), 20);
    cr_assert_eq(ag_svc_lower(1, 50), 1);
    cr_assert_eq(ag_svc_lower(5, 0), 0);
}

Test(service, waves)
{
    cr_assert_eq(ag_svc_waves(20, 200, 100), 1);
    cr_assert_eq(ag_svc_waves(20, 150, 100), 2);
    cr_assert_eq(ag_svc_waves(20, 125, 100), 4);
    cr_assert_eq(ag_svc_waves(20, 100, 50), 2);
    cr_assert_eq(ag_svc_waves(3, 100, 50), 3); /* upper 3, lower 2: one at a time */
    cr_assert_eq(ag_svc_waves(0, 200, 100), 0);
    cr_assert_eq(ag_svc_waves(4, 100, 100), -1, "cannot move");
}

Test(service, circuit_breaker_threshold)
{
    cr_assert_eq(ag_svc_cb_threshold(1), 3);
    cr_assert_eq(ag_svc_cb_threshold(4), 3);
    cr_assert_eq(ag_svc_cb_threshold(7), 4); /* ceil(3.5) */
    cr_assert_eq(ag_svc_cb_threshold(20), 10);
    cr_assert_eq(ag_svc_cb_threshold(399), 200);
    cr_assert_eq(ag_svc_cb_threshold(1000), 200);
}

Test(service, config_checks)
{
    cr_assert_null(ag_service_config_error(2, 200, 100));
    cr_assert_null(ag_service_config_error(0, 100, 100), "nothing to replace");
    cr_assert_not_null(ag_service_config_error(2, 100, 100));
    cr_assert_not_null(ag_service_config_error(2, 99, 50));
    cr_assert_not_null(ag_service_config_error(2, 200, 101));
    cr_assert_not_null(ag_service_config_error(-1, 200, 100));
    cr_assert_not_null(ag_service_config_error(1001, 200, 100));
    cr_assert(ag_service_name_ok("web_1-a"));
    cr_assert_not(ag_service_name_ok(""));
    cr_assert_not(ag_service_name_ok("web/1"));
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_not(ag_service_name_ok(big));
}

/* Simulates a rolling replacement pass by pass: every task started runs by
 * the next pass, every stop completes by the next pass. Returns the number
 * of start waves and checks the bounds on every pass. */
static int simulate(int desired, int maxp, int minp)
{
    int upper = ag_svc_upper(desired, maxp), lower = ag_svc_lower(desired, minp);
    int new_run = 0, new_pend = 0, old_run = desired;
    int waves = 0;
    for (int pass = 0; pass < 1000 && (new_run < desired || old_run > 0); pass++) {
        ag_svc_plan_in in = {.desired = desired,
                             .upper = upper,
                             .lower = lower,
                             .new_running = new_run,
                             .new_pending = new_pend,
                             .old_running = old_run,
                             .primary_may_launch = true};
        ag_svc_plan p;
        ag_svc_plan_step(&in, &p);
        cr_assert_eq(p.stop_new, 0);
        old_run -= p.stop_old_run;
        cr_assert_geq(new_run + old_run, lower, "fewer than the minimum running (pass %d)", pass);
        cr_assert_leq(new_run + new_pend + old_run + p.start, upper, "above the maximum");
        if (p.start)
            waves++;
        /* the pass's pending tasks run by the next one */
        new_run += new_pend;
        new_pend = p.start;
    }
    cr_assert_eq(new_run + new_pend, desired);
    cr_assert_eq(old_run, 0);
    return waves;
}

Test(service, rolling_replacement_stays_within_bounds)
{
    int cases[][3] = {{20, 200, 100}, {20, 150, 100}, {20, 125, 100}, {20, 100, 50},
                      {3, 100, 50},   {1, 200, 100},  {7, 150, 50},   {10, 110, 90}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int w = simulate(cases[i][0], cases[i][1], cases[i][2]);
        int floor_w = ag_svc_waves(cases[i][0], cases[i][1], cases[i][2]);
        cr_assert_geq(w, floor_w, "case %zu: %d waves < floor %d", i, w, floor_w);
        cr_assert_leq(w, floor_w + 1, "case %zu: %d waves, floor %d", i, w, floor_w);
    }
}

Test(service, plan_scale_down_and_failed_rollout)
{
    ag_svc_plan p;
    ag_svc_plan_in in = {.desired = 2,
                         .upper = 4,
                         .lower = 2,
                         .new_running = 3,
                         .new_pending = 1,
                         .primary_may_launch = true};
    ag_svc_plan_step(&in, &p);
    cr_assert_eq(p.stop_new, 2);
    cr_assert_eq(p.start, 0);
    /* a failed rollout launches nothing and keeps the older tasks */
    ag_svc_plan_in f = {.desired = 2, .upper = 4, .lower = 2, .old_running = 2};
    ag_svc_plan_step(&f, &p);
    cr_assert_eq(p.start + p.stop_old_run + p.stop_old_pend, 0);
    /* replacement after a task died: one missing, one started */
    ag_svc_plan_in r = {
        .desired = 3, .upper = 6, .lower = 3, .new_running = 2, .primary_may_launch = true};
    ag_svc_plan_step(&r, &p);
    cr_assert_eq(p.start, 1);
}

Test(service, event_wording)
{
    es_buf b;
    es_buf_init(&b, 4096);
    const char *ids[] = {"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"};
    cr_assert_eq(ag_svc_word_started(&b, "web", ids, 2), 0);
    cr_assert_str_eq(es_buf_cstr(&b),
                     "(service web) has started 2 tasks: (task 0123456789abcdef0123456789abcdef) "
                     "(task fedcba9876543210fedcba9876543210).");
    es_buf_reset(&b);
    cr_assert_eq(ag_svc_word_stopped(&b, "web", ids, 1), 0);
    cr_assert_str_eq(es_buf_cstr(&b), "(service web) has stopped 1 running tasks: (task "
                                      "0123456789abcdef0123456789abcdef).");
    es_buf_free(&b);
}

Test(service, events_ring_newest_first_bounded)
{
    ag_service *s = NULL;
    cr_assert_eq(ag_service_new("us-east-1", "123456789012", "default", "web", "fam", 1, 2, 0, -1,
                                true, false, 1700000000, &s),
                 0);
    cr_assert_str_eq(s->arn, "arn:aws:ecs:us-east-1:123456789012:service/default/web");
    cr_assert_eq(s->max_percent, 200);
    cr_assert_eq(s->min_healthy_percent, 100);
    cr_assert_eq(s->n_deps, 1);
    cr_assert_eq(strncmp(s->deps[0].id, "ecs-svc/", 8), 0);
    cr_assert_eq(strlen(s->deps[0].id), 8 + 19);
    for (int i = 0; i < AG_SVC_EVENTS_MAX + 20; i++)
        cr_assert_eq(ag_service_event(s, 1700000000 + i, "event %d", i), 0);
    cr_assert_eq(s->n_events, AG_SVC_EVENTS_MAX);
    char want[32];
    snprintf(want, sizeof want, "event %d", AG_SVC_EVENTS_MAX + 19);
    cr_assert_str_eq(s->events[0].message, want);
    cr_assert_str_eq(s->events[AG_SVC_EVENTS_MAX - 1].message, "event 20");
    cr_assert_neq(strcmp(s->events[0].id, s->events[1].id), 0);
    /* a new deployment: PRIMARY first, the old one ACTIVE */
    char old[AG_SVC_DEP_ID_MAX];
    snprintf(old, sizeof old, "%s", s->deps[0].id);
    cr_assert_eq(ag_service_deploy(s, "fam", 2, 1700000100), 0);
    cr_assert_eq(s->deps[0].status, AG_DEP_PRIMARY);
    cr_assert_eq(s->deps[0].revision, 2);
    cr_assert_eq(s->deps[1].status, AG_DEP_ACTIVE);
    cr_assert_str_eq(s->deps[1].id, old);
    ag_service_free(s);
    cr_assert_eq(ag_service_new("r", "a", "c", "bad name", "f", 1, 1, 0, -1, false, false, 0, &s),
                 -EINVAL);
    cr_assert_eq(ag_service_new("r", "a", "c", "web", "f", 1, 2, 100, 100, false, false, 0, &s),
                 -EINVAL);
}

/* The circuit breaker's rollback targets the newest COMPLETED deployment;
 * when the rollback cannot be made (no room for one more deployment) the
 * service is left exactly as it was: the target stays COMPLETED, so a later
 * failure can still roll back to it. */
Test(service, rollback_to_completed_and_unchanged_when_impossible)
{
    ag_service *s = NULL;
    cr_assert_eq(ag_service_new("r", "a", "c", "web", "good", 1, 2, 0, -1, true, true, 0, &s), 0);
    cr_assert_eq(ag_service_roll_back(s, 1), -ENOENT, "no older deployment at all");
    s->deps[0].rollout = AG_ROLLOUT_COMPLETED;
    cr_assert_eq(ag_service_deploy(s, "bad", 2, 2), 0);
    s->deps[0].rollout = AG_ROLLOUT_FAILED;
    cr_assert_eq(ag_service_roll_back(s, 3), 0);
    cr_assert_eq(s->n_deps, 3);
    cr_assert_str_eq(s->deps[0].family, "good");
    cr_assert_eq(s->deps[0].revision, 1);
    cr_assert_eq(s->deps[0].rollout, AG_ROLLOUT_IN_PROGRESS);
    cr_assert_str_eq(s->family, "good");
    cr_assert_eq(s->revision, 1);
    cr_assert_eq(s->deps[2].rollout, AG_ROLLOUT_IN_PROGRESS, "the target is no target again");
    cr_assert_eq(s->deps[2].updated_at, 3);
    ag_service_free(s);

    /* full: AG_SVC_DEPLOYMENTS_MAX deployments, the oldest COMPLETED */
    s = NULL;
    cr_assert_eq(ag_service_new("r", "a", "c", "web", "good", 1, 2, 0, -1, true, true, 0, &s), 0);
    s->deps[0].rollout = AG_ROLLOUT_COMPLETED;
    for (int64_t i = 2; s->n_deps < AG_SVC_DEPLOYMENTS_MAX; i++) {
        cr_assert_eq(ag_service_deploy(s, "bad", i, i), 0);
        s->deps[0].rollout = AG_ROLLOUT_FAILED;
    }
    size_t last = s->n_deps - 1;
    cr_assert_eq(ag_service_roll_back(s, 100), -ENOSPC);
    cr_assert_eq(s->n_deps, AG_SVC_DEPLOYMENTS_MAX);
    cr_assert_eq(s->deps[last].rollout, AG_ROLLOUT_COMPLETED, "target left COMPLETED");
    cr_assert_neq(s->deps[last].updated_at, 100);
    cr_assert_str_eq(s->deps[0].family, "bad", "the primary is still the failed one");
    ag_service_free(s);
}

static int collect_svc(ag_service *s, void *arg)
{
    ag_service **out = arg;
    *out = s;
    return 0;
}

Test(service, persists_across_reopen)
{
    char dir[] = "/tmp/es-svc-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char err[256];
    ag_store *st = NULL;
    cr_assert_eq(ag_store_open(dir, &st, err, sizeof err), 0, "%s", err);
    ag_service *s = NULL;
    cr_assert_eq(ag_service_new("us-east-1", "123456789012", "default", "web", "fam", 3, 4, 150, 50,
                                true, true, 1700000000, &s),
                 0);
    cr_assert_eq(ag_service_deploy(s, "fam", 4, 1700000050), 0);
    s->deps[1].rollout = AG_ROLLOUT_COMPLETED;
    ag_service_event(s, 1700000001, "(service web) has reached a steady state.");
    ag_service_event(s, 1700000002, "(service web) second");
    s->status = AG_SVC_DRAINING;
    cr_assert_eq(ag_store_service_put(st, s), 0);
    cr_assert_eq(ag_store_service_put(st, s), 0, "a second put replaces");
    ag_store_close(st);
    cr_assert_eq(ag_store_open(dir, &st, err, sizeof err), 0, "%s", err);
    ag_service *back = NULL;
    cr_assert_eq(ag_store_service_foreach(st, collect_svc, &back), 0);
    cr_assert_not_null(back);
    cr_assert_str_eq(back->arn, s->arn);
    cr_assert_eq(back->status, AG_SVC_DRAINING);
    cr_assert_eq(back->desired, 4);
    cr_assert_eq(back->max_percent, 150);
    cr_assert_eq(back->min_healthy_percent, 50);
    cr_assert(back->cb_enable && back->cb_rollback);
    cr_assert_eq(back->n_deps, 2);
    cr_assert_str_eq(back->deps[0].id, s->deps[0].id);
    cr_assert_eq(back->deps[0].revision, 4);
    cr_assert_eq(back->deps[1].rollout, AG_ROLLOUT_COMPLETED);
    cr_assert_eq(back->deps[1].status, AG_DEP_ACTIVE);
    cr_assert_eq(back->n_events, 2);
    cr_assert_str_eq(back->events[0].message, "(service web) second");
    cr_assert_str_eq(back->events[0].id, s->events[0].id);
    cr_assert_eq(back->events[0].created_ms, 1700000002000, "a time of the caller's: its second");
    /* the JSON shape */
    es_buf b;
    es_buf_init(&b, 1 << 16);
    es_jw w;
    es_jw_init(&w, &b);
    ag_service_write_json(back, false, &w);
    cr_assert_eq(es_jw_finish(&w), 0);
    cr_assert_not_null(strstr(es_buf_cstr(&b), "\"rolloutState\":\"IN_PROGRESS\""));
    cr_assert_not_null(strstr(es_buf_cstr(&b), "\"status\":\"PRIMARY\""));
    cr_assert_not_null(strstr(es_buf_cstr(&b),
                              "\"taskDefinition\":\"arn:aws:ecs:us-east-1:123456789012:"
                              "task-definition/fam:4\""));
    es_buf_free(&b);
    cr_assert_eq(ag_store_service_delete(st, s->arn), 0);
    cr_assert_eq(ag_store_service_delete(st, s->arn), -ENOENT);
    ag_service_free(back);
    ag_service_free(s);
    ag_store_close(st);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(drift, parses_describe_parameters)
{
    int64_t v = 0;
    double mod = 0;
    const char *ok = "{\"Parameters\":[{\"Name\":\"/a\",\"Version\":7,\"LastModifiedDate\":"
                     "1700000123.5}]}";
    cr_assert_eq(ag_drift_parse_ssm(ok, strlen(ok), &v, &mod), 0);
    cr_assert_eq(v, 7);
    cr_assert_float_eq(mod, 1700000123.5, 0.01);
    const char *none = "{\"Parameters\":[]}";
    cr_assert_eq(ag_drift_parse_ssm(none, strlen(none), &v, &mod), -ENOENT);
    const char *bad[] = {"",
                         "{",
                         "[]",
                         "{\"Parameters\":{}}",
                         "{\"Parameters\":[1]}",
                         "{\"Parameters\":[{\"Version\":\"7\"}]}",
                         "{\"Parameters\":[{\"Version\":0}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(ag_drift_parse_ssm(bad[i], strlen(bad[i]), &v, &mod), -EPROTO, "%s", bad[i]);
}

Test(drift, parses_describe_secret)
{
    char ver[72];
    double ch = 0;
    const char *ok = "{\"Name\":\"db\",\"LastChangedDate\":1700000200,\"VersionIdsToStages\":{"
                     "\"v-1\":[\"AWSPREVIOUS\"],\"v-2\":[\"AWSCURRENT\",\"blue\"]}}";
    cr_assert_eq(ag_drift_parse_sm(ok, strlen(ok), "AWSCURRENT", ver, sizeof ver, &ch), 0);
    cr_assert_str_eq(ver, "v-2");
    cr_assert_float_eq(ch, 1700000200, 0.01);
    cr_assert_eq(ag_drift_parse_sm(ok, strlen(ok), "AWSPREVIOUS", ver, sizeof ver, &ch), 0);
    cr_assert_str_eq(ver, "v-1");
    cr_assert_eq(ag_drift_parse_sm(ok, strlen(ok), "green", ver, sizeof ver, &ch), -ENOENT);
    const char *bad[] = {"", "null", "{\"VersionIdsToStages\":[]}", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(ag_drift_parse_sm(bad[i], strlen(bad[i]), "AWSCURRENT", ver, sizeof ver, &ch),
                     -EPROTO, "%s", bad[i]);
    /* a version id longer than the buffer is refused, not cut */
    const char *lng = "{\"VersionIdsToStages\":{\"0123456789\":[\"AWSCURRENT\"]}}";
    cr_assert_eq(ag_drift_parse_sm(lng, strlen(lng), "AWSCURRENT", ver, 5, &ch), -EPROTO);
}

Test(drift, parses_get_parameter_for_a_label)
{
    int64_t v = 0;
    double mod = 0;
    const char *ok = "{\"Parameter\":{\"Name\":\"/a\",\"Selector\":\":blue\",\"Version\":3,"
                     "\"Value\":\"AQICAHh...\",\"LastModifiedDate\":1700000300.25}}";
    cr_assert_eq(ag_drift_parse_ssm_label(ok, strlen(ok), &v, &mod), 0);
    cr_assert_eq(v, 3);
    cr_assert_float_eq(mod, 1700000300.25, 0.01);
    const char *bad[] = {"",
                         "{",
                         "{}",
                         "{\"Parameter\":[]}",
                         "{\"Parameter\":{\"Version\":\"3\"}}",
                         "{\"Parameter\":{\"Version\":0}}",
                         "{\"Parameters\":[{\"Version\":3}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(ag_drift_parse_ssm_label(bad[i], strlen(bad[i]), &v, &mod), -EPROTO, "%s",
                     bad[i]);
}
