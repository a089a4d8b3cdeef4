#include "cluster/election.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

struct cl_election {
    uv_loop_t *loop;
    cl_etcd *etcd;
    char key[CL_ETCD_KEY_MAX + 1];
    char id[CL_INSTANCE_ID_MAX + 1];
    uint64_t retry_ms;
    int64_t lease;      /* ours to campaign with; 0: none */
    int64_t sent_lease; /* the lease of the transaction in flight */
    /* the key as last seen: the leader's ID and lease ("" and 0: no key) */
    char leader[CL_INSTANCE_ID_MAX + 1];
    int64_t leader_lease;
    /* the revision at which the key was last seen gone (its DELETE event,
     * or a read that found none): a new leader's view of the instances must
     * have reached it, for the old leader's instance went in the same
     * revision when they shared a lease */
    int64_t vacant_rev;
    bool leading, synced, syncing, campaigning, stopped;
    cl_etcd_watch *watch;
    uv_timer_t timer; /* retries */
    void (*on_change)(void *, bool, const char *);
    void (*on_error)(void *, const char *);
    void *arg;
    void (*done)(void *);
    void *done_arg;
    cl_election_stats stats;
};

static void step(cl_election *e);

static void error(cl_election *e, const char *what, int err, const cl_answer *a)
{
    if (!e->on_error)
        return;
    char detail[256];
    snprintf(detail, sizeof detail, "election: %s: %s%s%s", what, cl_etcd_strerror(err),
             a && a->is_error ? ": " : "", a && a->is_error ? a->error : "");
    e->on_error(e->arg, detail);
}

static void on_timer(uv_timer_t *t)
{
    step(t->data);
}

static void retry(cl_election *e)
{
    if (!e->stopped)
        uv_timer_start(&e->timer, on_timer, e->retry_ms, 0);
}

/* The one place the leader and our leading change: reported when they do. */
static void set_leader(cl_election *e, const char *id, size_t len, int64_t lease)
{
    char was[sizeof e->leader];
    memcpy(was, e->leader, sizeof was);
    bool was_leading = e->leading;
    if (len >= sizeof e->leader || !cl_instance_id_ok(id))
        len = 0; /* not an ID of ours: as if nobody led (the key goes with its lease) */
    memcpy(e->leader, id, len);
    e->leader[len] = '\0';
    e->leader_lease = len ? lease : 0;
    e->leading = e->lease != 0 && e->leader_lease == e->lease && strcmp(e->leader, e->id) == 0;
    if (e->leader[0] && strcmp(was, e->leader) != 0)
        e->stats.leader_changes++;
    if (e->leading && !was_leading)
        e->stats.won++;
    if ((e->leading != was_leading || strcmp(was, e->leader) != 0) && e->on_change)
        e->on_change(e->arg, e->leading, e->leader);
}

static void set_kv(cl_election *e, const cl_kv *kv)
{
    if (kv)
        set_leader(e, kv->value, kv->value_len, kv->lease);
    else
        set_leader(e, "", 0, 0);
}

/* ---- the campaign ----------------------------------------------------- */

static void on_campaign(void *arg, int err, const cl_answer *a)
{
    cl_election *e = arg;
    e->campaigning = false;
    if (e->stopped || err == CL_ETCD_E_CANCELED)
        return;
    if (err) {
        error(e, "campaign", err, a);
        retry(e);
        return;
    }
    if (a->succeeded) {
        /* ours, under the lease we sent (set_lease may have changed ours since) */
        set_leader(e, e->id, strlen(e->id), e->sent_lease);
    } else {
        /* the failure branch read the key back: the winner (maybe our own
         * earlier try, answered late: then its lease is ours) */
        set_kv(e, a->n_kvs ? &a->kvs[0] : NULL);
        if (!e->leader[0]) {
            /* gone again already, or not a value of ours: not at once (a
             * bad value would have us loop on the loop until its lease ends) */
            retry(e);
            return;
        }
    }
    step(e);
}

static void campaign(cl_election *e)
{
    cl_txn t = {.key = e->key, .target = CL_CMP_CREATE, .revision = 0, .failure_range = true};
    t.success[0] =
        (cl_txn_op){.key = e->key, .value = e->id, .value_len = strlen(e->id), .lease = e->lease};
    t.n_success = 1;
    e->stats.campaigns++;
    e->sent_lease = e->lease;
    int r = cl_etcd_txn(e->etcd, &t, on_campaign, e);
    if (r < 0) {
        error(e, "campaign", r, NULL);
        retry(e);
        return;
    }
    e->campaigning = true;
}

/* ---- the watch -------------------------------------------------------- */

static void on_watch_msg(void *arg, const cl_answer *a)
{
    cl_election *e = arg;
    if (a->compact_revision || a->canceled) {
        cl_etcd_watch_cancel(e->watch); /* resynced from its end */
        return;
    }
    for (size_t i = 0; i < a->n_events; i++) {
        const cl_event *ev = &a->events[i];
        if (strcmp(ev->kv.key, e->key) != 0)
            continue;
        if (ev->type == CL_EVENT_DELETE && ev->kv.mod_revision > e->vacant_rev)
            e->vacant_rev = ev->kv.mod_revision;
        set_kv(e, ev->type == CL_EVENT_DELETE ? NULL : &ev->kv);
    }
    step(e);
}

static void on_watch_end(void *arg, int err)
{
    cl_election *e = arg;
    e->watch = NULL;
    e->synced = false;
    if (e->stopped)
        return;
    if (err != CL_ETCD_E_CANCELED)
        error(e, "watch", err, NULL);
    retry(e);
}

static void on_range(void *arg, int err, const cl_answer *a)
{
    cl_election *e = arg;
    e->syncing = false;
    if (e->stopped || err == CL_ETCD_E_CANCELED)
        return;
    if (err) {
        error(e, "reading the election key", err, a);
        retry(e);
        return;
    }
    if (!a->n_kvs && a->revision > e->vacant_rev)
        e->vacant_rev = a->revision;
    set_kv(e, a->n_kvs ? &a->kvs[0] : NULL);
    cl_etcd_watch_cbs cbs = {.on_msg = on_watch_msg, .on_end = on_watch_end, .arg = e};
    int r = cl_etcd_watch_start(e->etcd, e->key, false, a->revision + 1, &cbs, &e->watch);
    if (r < 0) {
        error(e, "watch", r, NULL);
        retry(e);
        return;
    }
    e->synced = true;
    step(e);
}

/* What is missing next: the key read and watched, then (with a lease and
 * nobody leading) a campaign. Called after every answer and change. */
static void step(cl_election *e)
{
    if (e->stopped || e->syncing || e->campaigning)
        return;
    if (!e->watch) {
        int r = cl_etcd_range(e->etcd, e->key, false, on_range, e);
        if (r < 0) {
            error(e, "reading the election key", r, NULL);
            retry(e);
            return;
        }
        e->syncing = true;
        return;
    }
    if (e->synced && e->lease && !e->leader[0])
        campaign(e);
}

/* ---- life ------------------------------------------------------------- */

void cl_election_set_lease(cl_election *e, int64_t lease)
{
    if (!e || e->lease == lease)
        return;
    e->lease = lease;
    /* leading is recomputed against the new lease: 0 stops it at once, the
     * lease the key is under (a renewal came back) restores it */
    char leader[sizeof e->leader];
    memcpy(leader, e->leader, sizeof leader);
    set_leader(e, leader, strlen(leader), e->leader_lease);
    step(e);
}

int cl_election_start(const cl_election_config *cfg, cl_election **out)
{
    if (!cfg->etcd || !cfg->key || strlen(cfg->key) > CL_ETCD_KEY_MAX || !cfg->id ||
        !cl_instance_id_ok(cfg->id) || cfg->retry_ms == 0)
        return -EINVAL;
    cl_election *e = es_calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->loop = cfg->loop;
    e->etcd = cfg->etcd;
    memcpy(e->key, cfg->key, strlen(cfg->key) + 1);
    memcpy(e->id, cfg->id, strlen(cfg->id) + 1);
    e->retry_ms = cfg->retry_ms;
    e->on_change = cfg->on_change;
    e->on_error = cfg->on_error;
    e->arg = cfg->arg;
    uv_timer_init(cfg->loop, &e->timer);
    e->timer.data = e;
    step(e);
    *out = e;
    return 0;
}

void cl_election_stop(cl_election *e)
{
    if (!e || e->stopped)
        return;
    e->stopped = true;
    e->leading = false;
    uv_timer_stop(&e->timer);
    cl_etcd_watch_cancel(e->watch);
}

static void on_timer_closed(uv_handle_t *h)
{
    cl_election *e = h->data;
    void (*done)(void *) = e->done;
    void *arg = e->done_arg;
    es_free(e);
    if (done)
        done(arg);
}

void cl_election_free(cl_election *e, void (*done)(void *arg), void *arg)
{
    if (!e) {
        if (done)
            done(arg);
        return;
    }
    cl_election_stop(e);
    e->done = done;
    e->done_arg = arg;
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}

bool cl_election_leading(const cl_election *e)
{
    return e && e->leading;
}

const char *cl_election_leader(const cl_election *e)
{
    return e ? e->leader : "";
}

int64_t cl_election_vacant_revision(const cl_election *e)
{
    return e ? e->vacant_rev : 0;
}

void cl_election_get_stats(const cl_election *e, cl_election_stats *out)
{
    *out = e->stats;
}
