/* metrics.h - counters, gauges and histograms, rendered as Prometheus text.
 *
 * The daemon registers each series once (name + a fixed label set) and keeps
 * the returned pointer; updating is a plain add on the loop thread (one
 * thread: no atomics). Series with the same name share one HELP/TYPE header
 * and must share the type. Label values are written escaped; metrics never
 * carry a secret value or anything derived from one (STYLE.md, secrets). */
#ifndef ES_AGENT_METRICS_H
#define ES_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define AG_METRICS_MAX_SERIES 512
#define AG_METRICS_MAX_BUCKETS 16

typedef struct ag_metrics ag_metrics;
typedef struct ag_series ag_series;

typedef enum ag_metric_type {
    AG_METRIC_COUNTER,
    AG_METRIC_GAUGE,
    AG_METRIC_HISTOGRAM,
} ag_metric_type;

ag_metrics *ag_metrics_create(void);
ag_metrics *ag_metrics_free(ag_metrics *m);

/* Registers (or finds) a series. `labels` is NULL or pairs "k","v",...
 * terminated by NULL. `buckets` (histograms only) are upper bounds in
 * ascending order; +Inf is implicit. NULL on bad input (name not
 * [a-zA-Z_:][a-zA-Z0-9_:]*, type clash with an earlier series of that name,
 * too many series or buckets) or no memory. */
ag_series *ag_metrics_series(ag_metrics *m, ag_metric_type type, const char *name, const char *help,
                             const char *const *labels, const double *buckets, size_t nbuckets);

void ag_series_add(ag_series *s, double v);     /* counters, gauges */
void ag_series_set(ag_series *s, double v);     /* gauges */
void ag_series_observe(ag_series *s, double v); /* histograms */
double ag_series_value(const ag_series *s);     /* counters, gauges; count for histograms */
/* Brings the counter series name{lbl} up to value, a total kept elsewhere
 * (a part's own stats): adds the difference when it grew, so the series never
 * goes down. Nothing when the series cannot be made (out of room). */
void ag_metrics_sync_counter(ag_metrics *m, const char *name, const char *help,
                             const char *const *lbl, double value);

/* Appends the text exposition format (version 0.0.4) to out. */
int ag_metrics_render(const ag_metrics *m, es_buf *out);

#endif
