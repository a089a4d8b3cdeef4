#include "cluster/mirror.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

/* A key the receiver holds (delivered by a put, not deleted since): the
 * whole read that follows a compaction deletes those it did not see. */
typedef struct key_node {
    struct key_node *next;
    uint64_t seen; /* the whole read that last saw it */
    char key[];
} key_node;

struct cl_mirror {
    cl_etcd *etcd;
    char prefix[CL_ETCD_KEY_MAX + 1];
    char from[CL_ETCD_KEY_MAX + 1]; /* the next page's first key */
    int64_t revision;               /* the read's (its first page's) */
    size_t n;                       /* keys delivered by this read */
    /* the last revision delivered (the read's, then each event's): a
     * watch that broke resumes after it, so that no event is lost */
    int64_t last_rev;
    bool need_read; /* the watch cannot resume (compacted, cancelled): read whole */
    uint64_t read_gen;
    key_node **buckets; /* the keys held, by hash */
    size_t n_buckets, n_keys;
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

static size_t key_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ull;
    return (size_t)h;
}

static key_node **key_slot(cl_mirror *m, const char *key)
{
    key_node **pp = &m->buckets[key_hash(key) % m->n_buckets];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Doubles the table once it holds twice as many keys as buckets. */
static void keys_grow(cl_mirror *m)
{
    size_t nb = m->n_buckets ? m->n_buckets * 2 : 64;
    key_node **b = es_calloc(nb, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < m->n_buckets; i++)
        for (key_node *k = m->buckets[i], *next; k; k = next) {
            next = k->next;
            size_t h = key_hash(k->key) % nb;
            k->next = b[h];
            b[h] = k;
        }
    es_free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
}

/* Remembers a key delivered by a put (at most CL_MIRROR_KEYS_MAX: beyond,
 * a key's deletion during a compaction is not replayed). */
static void key_put(cl_mirror *m, const char *key)
{
    if (m->n_keys >= 2 * m->n_buckets)
        keys_grow(m);
    if (!m->n_buckets)
        return;
    key_node **pp = key_slot(m, key);
    if (!*pp) {
        size_t len = strlen(key);
        if (m->n_keys >= CL_MIRROR_KEYS_MAX || !(*pp = es_malloc(sizeof **pp + len + 1)))
            return;
        (*pp)->next = NULL;
        memcpy((*pp)->key, key, len + 1);
        m->n_keys++;
    }
    (*pp)->seen = m->read_gen;
}

static void key_drop(cl_mirror *m, const char *key)
{
    if (!m->n_buckets)
        return;
    key_node **pp = key_slot(m, key), *k = *pp;
    if (k) {
        *pp = k->next;
        es_free(k);
        m->n_keys--;
    }
}

static void deliver_put(cl_mirror *m, const cl_kv *kv)
{
    m->stats.puts++;
    key_put(m, kv->key);
    m->cbs.on_put(m->cbs.arg, kv);
}

static void deliver_delete(cl_mirror *m, const char *key)
{
    m->stats.deletes++;
    key_drop(m, key);
    if (m->cbs.on_delete)
        m->cbs.on_delete(m->cbs.arg, key);
}

/* After a whole read: the keys held that it did not see were deleted
 * while no watch was there to say so. */
static void sweep(cl_mirror *m)
{
    for (size_t i = 0; i < m->n_buckets && !m->stopped; i++)
        for (key_node **pp = &m->buckets[i]; *pp && !m->stopped;) {
            key_node *k = *pp;
            if (k->seen == m->read_gen) {
                pp = &k->next;
                continue;
            }
            *pp = k->next;
            m->n_keys--;
            m->stats.deletes++;
            m->stats.swept++;
            if (m->cbs.on_delete)
                m->cbs.on_delete(m->cbs.arg, k->key);
            es_free(k);
        }
}

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
    m->read_gen++;
    m->reading = true;
    read_page(m);
}

static void start_watch(cl_mirror *m);

/* After a broken watch: resumed after the last revision delivered when it
 * can be, read whole when it cannot (never read yet, compacted). */
static void on_timer(uv_timer_t *t)
{
    cl_mirror *m = t->data;
    if (m->need_read || m->last_rev == 0) {
        start_read(m);
    } else {
        m->stats.resumes++;
        start_watch(m);
    }
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
        /* the revisions after last_rev are gone (or etcd ended the watch
         * for its own reason): read whole, the sweep delivers the deletions */
        if (a->compact_revision)
            m->stats.compacted++;
        m->need_read = true;
        cl_etcd_watch_cancel(m->watch);
        return;
    }
    for (size_t i = 0; i < a->n_events && !m->stopped; i++) {
        const cl_event *ev = &a->events[i];
        if (ev->kv.mod_revision > m->last_rev)
            m->last_rev = ev->kv.mod_revision;
        if (ev->type == CL_EVENT_DELETE)
            deliver_delete(m, ev->kv.key);
        else
            deliver_put(m, &ev->kv);
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

static void start_watch(cl_mirror *m)
{
    if (m->stopped || m->reading || m->watch)
        return;
    cl_etcd_watch_cbs cbs = {.on_msg = on_watch_msg, .on_end = on_watch_end, .arg = m};
    int r = cl_etcd_watch_start(m->etcd, m->prefix, true, m->last_rev + 1, &cbs, &m->watch);
    if (r < 0) {
        error(m, "watch", r, NULL);
        retry(m);
    }
}

/* The read is whole: the keys it did not see deleted, reported, then
 * watched from the revision after. */
static void read_done(cl_mirror *m)
{
    m->reading = false;
    m->need_read = false;
    m->stats.syncs++;
    m->last_rev = m->revision;
    sweep(m);
    if (m->stopped)
        return;
    if (m->cbs.on_synced)
        m->cbs.on_synced(m->cbs.arg, m->n, m->revision);
    if (m->stopped)
        return;
    if (m->watch) { /* cannot be: a read starts only without a watch */
        retry(m);
        return;
    }
    start_watch(m);
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
        deliver_put(m, &a->kvs[i]);
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
    for (size_t i = 0; i < m->n_buckets; i++)
        for (key_node *k = m->buckets[i], *next; k; k = next) {
            next = k->next;
            es_free(k);
        }
    es_free(m->buckets);
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
