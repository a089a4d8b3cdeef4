#include "cluster/mirror.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

struct cl_mirror {
    cl_etcd *etcd;
    char prefix[CL_ETCD_KEY_MAX + 1];
    char from[CL_ETCD_KEY_MAX + 1]; /* the next page's first key */
    int64_t revision;               /* the read's (its first page's) */
    size_t n;                       /* keys delivered by this read */
    uint64_t retry_ms;
    bool stopped, reading;
    cl_etcd_watch *watch;
    uv_timer_t timer;
    cl_mirror_cbs cbs;
    void (*done)(void *);
    void *done_arg;
    cl_mirror_stats stats;
};

static void read_page(cl_mirror *m);

static void error(cl_mirror *m, const char *what, int err, const cl_answer *a)
{
    if (!m->cbs.on_error)
        return;
    char detail[256];
    snprintf(detail, sizeof detail, "%.80s: %s: %s%s%s", m->prefix, what, cl_etcd_strerror(err),
             a && a->is_error ? ": " : "", a && a->is_error ? a->error : "");
    m->cbs.on_error(m->cbs.arg, detail);
}

static void start_read(cl_mirror *m)
{
    if (m->stopped || m->reading || m->watch)
        return;
    memcpy(m->from, m->prefix, sizeof m->from);
    m->revision = 0;
    m->n = 0;
    m->reading = true;
    read_page(m);
}

static void on_timer(uv_timer_t *t)
{
    start_read(t->data);
}

static void retry(cl_mirror *m)
{
    m->reading = false;
    if (!m->stopped)
        uv_timer_start(&m->timer, on_timer, m->retry_ms, 0);
}

static void on_watch_msg(void *arg, const cl_answer *a)
{
    cl_mirror *m = arg;
    if (a->compact_revision || a->canceled) {
        cl_etcd_watch_cancel(m->watch); /* read again from its end */
        return;
    }
    for (size_t i = 0; i < a->n_events && !m->stopped; i++) {
        const cl_event *ev = &a->events[i];
        if (ev->type == CL_EVENT_DELETE) {
            m->stats.deletes++;
            if (m->cbs.on_delete)
                m->cbs.on_delete(m->cbs.arg, ev->kv.key);
        } else {
            m->stats.puts++;
            m->cbs.on_put(m->cbs.arg, &ev->kv);
        }
    }
}

static void on_watch_end(void *arg, int err)
{
    cl_mirror *m = arg;
    m->watch = NULL;
    if (m->stopped)
        return;
    if (err != CL_ETCD_E_CANCELED)
        error(m, "watch", err, NULL);
    retry(m);
}

/* The read is whole: report it, then watch from the revision after. */
static void read_done(cl_mirror *m)
{
    m->reading = false;
    m->stats.syncs++;
    if (m->cbs.on_synced)
        m->cbs.on_synced(m->cbs.arg, m->n, m->revision);
    if (m->stopped)
        return;
    cl_etcd_watch_cbs cbs = {.on_msg = on_watch_msg, .on_end = on_watch_end, .arg = m};
    int r = cl_etcd_watch_start(m->etcd, m->prefix, true, m->revision + 1, &cbs, &m->watch);
    if (r < 0) {
        error(m, "watch", r, NULL);
        retry(m);
    }
}

static void on_page(void *arg, int err, const cl_answer *a)
{
    cl_mirror *m = arg;
    if (m->stopped || err == CL_ETCD_E_CANCELED)
        return;
    if (err) {
        error(m, "read", err, a);
        retry(m);
        return;
    }
    m->stats.pages++;
    if (m->revision == 0)
        m->revision = a->revision;
    /* a page after the first starts with the last key of the one before */
    size_t skip = m->n && a->n_kvs && strcmp(a->kvs[0].key, m->from) == 0 ? 1 : 0;
    for (size_t i = skip; i < a->n_kvs && !m->stopped; i++) {
        m->n++;
        m->stats.puts++;
        m->cbs.on_put(m->cbs.arg, &a->kvs[i]);
    }
    if (m->stopped)
        return;
    if (!a->more || a->n_kvs <= skip) {
        read_done(m);
        return;
    }
    snprintf(m->from, sizeof m->from, "%s", a->kvs[a->n_kvs - 1].key);
    read_page(m);
}

static void read_page(cl_mirror *m)
{
    int r =
        cl_etcd_range_page(m->etcd, m->from, m->prefix, CL_MIRROR_PAGE, m->revision, on_page, m);
    if (r < 0) {
        error(m, "read", r, NULL);
        retry(m);
    }
}

int cl_mirror_start(uv_loop_t *loop, cl_etcd *etcd, const char *prefix, uint64_t retry_ms,
                    const cl_mirror_cbs *cbs, cl_mirror **out)
{
    if (!etcd || !prefix || !prefix[0] || strlen(prefix) > CL_ETCD_KEY_MAX || !cbs->on_put ||
        retry_ms == 0)
        return -EINVAL;
    cl_mirror *m = es_calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->etcd = etcd;
    memcpy(m->prefix, prefix, strlen(prefix) + 1);
    m->retry_ms = retry_ms;
    m->cbs = *cbs;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    start_read(m);
    *out = m;
    return 0;
}

void cl_mirror_stop(cl_mirror *m)
{
    if (!m || m->stopped)
        return;
    m->stopped = true;
    uv_timer_stop(&m->timer);
    cl_etcd_watch_cancel(m->watch);
}

static void on_timer_closed(uv_handle_t *h)
{
    cl_mirror *m = h->data;
    void (*done)(void *) = m->done;
    void *arg = m->done_arg;
    es_free(m);
    if (done)
        done(arg);
}

void cl_mirror_free(cl_mirror *m, void (*done)(void *arg), void *arg)
{
    if (!m) {
        if (done)
            done(arg);
        return;
    }
    cl_mirror_stop(m);
    m->done = done;
    m->done_arg = arg;
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

void cl_mirror_get_stats(const cl_mirror *m, cl_mirror_stats *out)
{
    *out = m->stats;
}
