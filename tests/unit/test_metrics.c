#include <criterion/criterion.h>
#include <string.h>

#include "agent/metrics.h"

Test(metrics, counters_gauges_and_histograms_render)
{
    ag_metrics *m = ag_metrics_create();
    const char *ssm[] = {"service", "ssm", NULL};
    const char *sm[] = {"service", "secretsmanager", NULL};
    ag_series *a = ag_metrics_series(m, AG_METRIC_COUNTER, "ecs_secret_fetches_total",
                                     "Secret fetch calls.", ssm, NULL, 0);
    ag_series *b = ag_metrics_series(m, AG_METRIC_COUNTER, "ecs_secret_fetches_total",
                                     "Secret fetch calls.", sm, NULL, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_eq(
        ag_metrics_series(m, AG_METRIC_COUNTER, "ecs_secret_fetches_total", "", ssm, NULL, 0), a,
        "same name and labels find the same series");
    ag_series_add(a, 2);
    ag_series_add(b, 1);
    ag_series *g = ag_metrics_series(m, AG_METRIC_GAUGE, "ecs_tasks", "Tasks.", NULL, NULL, 0);
    ag_series_set(g, 3);
    double bounds[] = {0.1, 0.5, 1};
    ag_series *h = ag_metrics_series(m, AG_METRIC_HISTOGRAM, "ecs_resolve_seconds", "Latency.",
                                     NULL, bounds, 3);
    ag_series_observe(h, 0.05);
    ag_series_observe(h, 0.3);
    ag_series_observe(h, 7);
    es_buf out;
    es_buf_init(&out, 1 << 16);
    cr_assert_eq(ag_metrics_render(m, &out), 0);
    const char *want = "# HELP ecs_secret_fetches_total Secret fetch calls.\n"
                       "# TYPE ecs_secret_fetches_total counter\n"
                       "ecs_secret_fetches_total{service=\"ssm\"} 2\n"
                       "ecs_secret_fetches_total{service=\"secretsmanager\"} 1\n"
                       "# HELP ecs_tasks Tasks.\n"
                       "# TYPE ecs_tasks gauge\n"
                       "ecs_tasks 3\n"
                       "# HELP ecs_resolve_seconds Latency.\n"
                       "# TYPE ecs_resolve_seconds histogram\n"
                       "ecs_resolve_seconds_bucket{le=\"0.1\"} 1\n"
                       "ecs_resolve_seconds_bucket{le=\"0.5\"} 2\n"
                       "ecs_resolve_seconds_bucket{le=\"1\"} 2\n"
                       "ecs_resolve_seconds_bucket{le=\"+Inf\"} 3\n"
                       "ecs_resolve_seconds_sum 7.3499999999999996\n"
                       "ecs_resolve_seconds_count 3\n";
    cr_assert_str_eq(out.data, want);
    es_buf_free(&out);
    ag_metrics_free(m);
}

Test(metrics, bad_registrations_refused)
{
    ag_metrics *m = ag_metrics_create();
    cr_assert_null(ag_metrics_series(m, AG_METRIC_COUNTER, "9bad", "", NULL, NULL, 0));
    cr_assert_null(ag_metrics_series(m, AG_METRIC_COUNTER, "bad-name", "", NULL, NULL, 0));
    const char *bad_label[] = {"__reserved", "x", NULL};
    cr_assert_null(ag_metrics_series(m, AG_METRIC_COUNTER, "ok", "", bad_label, NULL, 0));
    cr_assert_not_null(ag_metrics_series(m, AG_METRIC_COUNTER, "ok", "", NULL, NULL, 0));
    cr_assert_null(ag_metrics_series(m, AG_METRIC_GAUGE, "ok", "", NULL, NULL, 0),
                   "type clash with the earlier series");
    double unsorted[] = {1, 0.5};
    cr_assert_null(ag_metrics_series(m, AG_METRIC_HISTOGRAM, "h", "", NULL, unsorted, 2));
    ag_metrics_free(m);
}

Test(metrics, label_values_escaped)
{
    ag_metrics *m = ag_metrics_create();
    const char *l[] = {"name", "a\"b\\c\nd", NULL};
    ag_series *s = ag_metrics_series(m, AG_METRIC_GAUGE, "x", "h", l, NULL, 0);
    ag_series_set(s, 1);
    es_buf out;
    es_buf_init(&out, 4096);
    ag_metrics_render(m, &out);
    cr_assert_not_null(strstr(out.data, "x{name=\"a\\\"b\\\\c\\nd\"} 1\n"), "%s", out.data);
    es_buf_free(&out);
    ag_metrics_free(m);
}
