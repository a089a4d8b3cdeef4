#include "agent/metrics.h"
#include "common/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* One series' rendered labels, k="v",...: our own names and closed value sets. */
#define LABELS_MAX 4096

struct ag_series {
    ag_metric_type type;
    char *name;
    char *help;
    char *labels; /* rendered: k="v",k2="v2" (no braces), or "" */
    double value; /* counter/gauge value; histogram sum */
    uint64_t count;
    size_t nbuckets;
    double bounds[AG_METRICS_MAX_BUCKETS];
    uint64_t buckets[AG_METRICS_MAX_BUCKETS]; /* non-cumulative */
};

struct ag_metrics {
    ag_series *series[AG_METRICS_MAX_SERIES];
    size_t n;
};

ag_metrics *ag_metrics_create(void)
{
    return es_calloc(1, sizeof(ag_metrics));
}

ag_metrics *ag_metrics_free(ag_metrics *m)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        es_free(m->series[i]->name);
        es_free(m->series[i]->help);
        es_free(m->series[i]->labels);
        es_free(m->series[i]);
    }
    es_free(m);
    return NULL;
}

static int valid_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != ':')
            return 0;
    return 1;
}

/* k="v" pairs with the value escaped as the format asks (\\, \", \n). */
static char *render_labels(const char *const *labels)
{
    es_buf b;
    es_buf_init(&b, LABELS_MAX);
    int r = 0;
    for (size_t i = 0; labels && labels[i]; i += 2) {
        if (!labels[i + 1] || !valid_name(labels[i]) || strncmp(labels[i], "__", 2) == 0)
            goto fail;
        if (i)
            r |= es_buf_append_char(&b, ',');
        r |= es_buf_printf(&b, "%s=\"", labels[i]);
        for (const char *v = labels[i + 1]; *v; v++) {
            if (*v == '\\' || *v == '"')
                r |= es_buf_append_char(&b, '\\');
            if (*v == '\n')
                r |= es_buf_append_str(&b, "\\n");
            else
                r |= es_buf_append_char(&b, *v);
        }
        r |= es_buf_append_char(&b, '"');
    }
    if (r)
        goto fail;
    return es_buf_steal(&b);
fail:
    es_buf_free(&b);
    return NULL;
}

ag_series *ag_metrics_series(ag_metrics *m, ag_metric_type type, const char *name, const char *help,
                             const char *const *labels, const double *buckets, size_t nbuckets)
{
    if (!valid_name(name) || nbuckets > AG_METRICS_MAX_BUCKETS)
        return NULL;
    if (type == AG_METRIC_HISTOGRAM && (!buckets || !nbuckets))
        return NULL;
    for (size_t i = 1; i < nbuckets; i++)
        if (!(buckets[i] > buckets[i - 1]))
            return NULL;
    char *lab = render_labels(labels);
    if (!lab)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        ag_series *s = m->series[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (s->type != type)
            goto fail;
        if (strcmp(s->labels, lab) == 0) {
            es_free(lab);
            return s;
        }
    }
    if (m->n >= AG_METRICS_MAX_SERIES)
        goto fail;
    ag_series *s = es_calloc(1, sizeof *s);
    if (!s)
        goto fail;
    s->type = type;
    s->name = es_strdup(name);
    s->help = es_strdup(help ? help : "");
    s->labels = lab;
    if (!s->name || !s->help) {
        es_free(s->name);
        es_free(s->help);
        es_free(s);
        goto fail;
    }
    s->nbuckets = type == AG_METRIC_HISTOGRAM ? nbuckets : 0;
    for (size_t i = 0; i < s->nbuckets; i++)
        s->bounds[i] = buckets[i];
    m->series[m->n++] = s;
    return s;
fail:
    es_free(lab);
    return NULL;
}

void ag_series_add(ag_series *s, double v)
{
    if (s && s->type != AG_METRIC_HISTOGRAM)
        s->value += v;
}

void ag_series_set(ag_series *s, double v)
{
    if (s && s->type == AG_METRIC_GAUGE)
        s->value = v;
}

void ag_series_observe(ag_series *s, double v)
{
    if (!s || s->type != AG_METRIC_HISTOGRAM)
        return;
    s->count++;
    s->value += v;
    for (size_t i = 0; i < s->nbuckets; i++) {
        if (v <= s->bounds[i]) {
            s->buckets[i]++;
            break;
        }
    }
}

double ag_series_value(const ag_series *s)
{
    if (!s)
        return 0;
    return s->type == AG_METRIC_HISTOGRAM ? (double)s->count : s->value;
}

static const char *type_name(ag_metric_type t)
{
    switch (t) {
    case AG_METRIC_COUNTER:
        return "counter";
    case AG_METRIC_GAUGE:
        return "gauge";
    case AG_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* Labels with an extra le="..." for bucket lines. */
static int bucket_line(es_buf *out, const ag_series *s, const char *le, uint64_t cum)
{
    return es_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", s->name, s->labels,
                         s->labels[0] ? "," : "", le, (unsigned long long)cum);
}

int ag_metrics_render(const ag_metrics *m, es_buf *out)
{
    int r = 0;
    for (size_t i = 0; i < m->n && !r; i++) {
        const ag_series *s = m->series[i];
        /* the header once per name, before its first series */
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->series[j]->name, s->name) == 0)
                first = 0;
        if (!first)
            continue;
        r |= es_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name,
                           type_name(s->type));
        for (size_t j = i; j < m->n && !r; j++) {
            const ag_series *t = m->series[j];
            if (strcmp(t->name, s->name) != 0)
                continue;
            const char *lb = t->labels[0] ? "{" : "", *rb = t->labels[0] ? "}" : "";
            if (t->type != AG_METRIC_HISTOGRAM) {
                r |= es_buf_printf(out, "%s%s%s%s %.17g\n", t->name, lb, t->labels, rb, t->value);
                continue;
            }
            uint64_t cum = 0;
            for (size_t k = 0; k < t->nbuckets; k++) {
                char le[32];
                cum += t->buckets[k];
                snprintf(le, sizeof le, "%g", t->bounds[k]);
                r |= bucket_line(out, t, le, cum);
            }
            r |= bucket_line(out, t, "+Inf", t->count);
            r |= es_buf_printf(out, "%s_sum%s%s%s %.17g\n%s_count%s%s%s %llu\n", t->name, lb,
                               t->labels, rb, t->value, t->name, lb, t->labels, rb,
                               (unsigned long long)t->count);
        }
    }
    return r ? -EMSGSIZE : 0;
}

void ag_metrics_sync_counter(ag_metrics *m, const char *name, const char *help,
                             const char *const *lbl, double value)
{
    ag_series *s = ag_metrics_series(m, AG_METRIC_COUNTER, name, help, lbl, NULL, 0);
    if (!s)
        return;
    double d = value - ag_series_value(s);
    if (d > 0)
        ag_series_add(s, d);
}
