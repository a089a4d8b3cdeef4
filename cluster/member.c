#include "cluster/member.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cluster/election.h"
#include "cluster/mirror.h"
#include "common/alloc.h"

struct cl_member {
    uv_loop_t *loop;
    cl_etcd *etcd; /* NULL: alone */
    char prefix[CL_KEY_MAX + 1], self_key[CL_KEY_MAX + 1];
    int64_t configured_ttl; /* the user's promise: ECS_SECRETS_ETCD_LEASE_TTL */
    int64_t ttl;            /* the lease's: asked (cl_member_asked_ttl), then as etcd granted it */
    cl_instance self;
    cl_member_state state;
    int64_t lease;
    uv_timer_t timer;      /* joining retries and keepalives */
    uv_timer_t view_timer; /* the view's resync */
    uv_timer_t lead_timer; /* the step-down at lead_until */
    bool timers_open;
    cl_etcd_watch *watch;
    cl_election *election; /* NULL: alone */
    cl_mirror *mirrors[CL_MEMBER_MIRRORS_MAX];
    size_t n_mirrors;
    char cluster[CL_CLUSTER_MAX + 1];
    /* when the request that last granted or renewed the lease was SENT
     * (now_ms), and until when that lets us count ourselves leader */
    uint64_t renewed_at, lead_until;
    uint64_t sent_at; /* the grant or keepalive in flight: when it was sent */
    cl_instance *view;
    size_t n_view, cap_view;
    int64_t view_rev;  /* the view holds every change up to this revision */
    bool view_reading; /* its whole read in flight */
    struct {
        cl_member_change_fn fn;
        void *arg;
    } subs[CL_MEMBER_SUBSCRIBERS_MAX];
    size_t n_subs;
    bool closing, finishing;
    int open; /* timers and the etcd client not yet closed */
    void (*done)(void *);
    void *done_arg;
    cl_member_event_fn on_event;
    void *event_arg;
    cl_member_stats stats;
};

typedef struct update_ctx {
    cl_member *m;
    cl_instance rec; /* the record as last read, then as written */
    char status[CL_STATUS_MAX + 1];
    int tries;
    cl_member_update_cb cb;
    void *arg;
} update_ctx;

static const char *const state_names[] = {"ALONE", "JOINING", "REGISTERED", "STOPPING", "STOPPED"};

const char *cl_member_state_name(cl_member_state s)
{
    return (unsigned)s < sizeof state_names / sizeof *state_names ? state_names[s] : "?";
}

int64_t cl_member_asked_ttl(int64_t configured, bool *no_room)
{
    int64_t asked = configured - CL_MEMBER_TTL_MARGIN_S;
    if (no_room)
        *no_room = asked < CL_MEMBER_ETCD_MIN_TTL;
    return asked < CL_MEMBER_ETCD_MIN_TTL ? CL_MEMBER_ETCD_MIN_TTL : asked;
}

uint64_t cl_member_lead_ms(int64_t granted)
{
    if (granted <= 0)
        return 0;
    uint64_t ttl_ms = (uint64_t)granted * 1000;
    uint64_t margin =
        ttl_ms / 10 < CL_MEMBER_LEAD_MARGIN_MS ? ttl_ms / 10 : CL_MEMBER_LEAD_MARGIN_MS;
    return ttl_ms - margin;
}

uint64_t cl_member_keepalive_ms(int64_t ttl)
{
    if (ttl <= 0)
        return 500;
    uint64_t ms = (uint64_t)ttl * 1000 / 3;
    return ms < 500 ? 500 : ms;
}

uint64_t cl_member_retry_ms(int64_t ttl)
{
    uint64_t ms = ttl > 0 ? (uint64_t)ttl * 1000 / 6 : 200;
    return ms < 200 ? 200 : ms > CL_MEMBER_RETRY_MS ? CL_MEMBER_RETRY_MS : ms;
}

long cl_member_request_ms(int64_t ttl)
{
    long ms = ttl > 0 ? (long)(ttl * 1000 / 4) : 500;
    return ms < 500 ? 500 : ms > CL_ETCD_TIMEOUT_MS ? CL_ETCD_TIMEOUT_MS : ms;
}

static void event(cl_member *m, cl_member_event ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void event(cl_member *m, cl_member_event ev, const char *fmt, ...)
{
    if (!m->on_event)
        return;
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    m->on_event(m->event_arg, ev, detail);
}

static void notify(cl_member *m, cl_member_change what)
{
    for (size_t i = 0; i < m->n_subs && !m->closing; i++)
        m->subs[i].fn(m->subs[i].arg, what);
}

/* The one place the state changes. */
static void set_state(cl_member *m, cl_member_state to)
{
    if (m->state == to)
        return;
    event(m, CL_MEMBER_EV_STATE, "%s -> %s", cl_member_state_name(m->state),
          cl_member_state_name(to));
    m->state = to;
}

/* ---- the view --------------------------------------------------------- */

static size_t view_pos(const cl_member *m, const char *id, bool *found)
{
    size_t lo = 0, hi = m->n_view;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->view[mid].id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static int view_upsert(cl_member *m, const cl_instance *in)
{
    bool found;
    size_t i = view_pos(m, in->id, &found);
    if (!found) {
        if (m->n_view >= CL_MEMBER_VIEW_MAX)
            return -ENOSPC;
        if (m->n_view == m->cap_view) {
            size_t cap = m->cap_view ? m->cap_view * 2 : 8;
            cl_instance *v = es_realloc(m->view, cap * sizeof *v);
            if (!v)
                return -ENOMEM;
            m->view = v;
            m->cap_view = cap;
        }
        memmove(&m->view[i + 1], &m->view[i], (m->n_view - i) * sizeof *m->view);
        m->n_view++;
    }
    m->view[i] = *in;
    /* another agent's UpdateContainerInstancesState on ours: kept for re-registering */
    if (strcmp(in->id, m->self.id) == 0)
        memcpy(m->self.status, in->status, sizeof m->self.status);
    return 0;
}

static void view_remove(cl_member *m, const char *id)
{
    bool found;
    size_t i = view_pos(m, id, &found);
    if (!found)
        return;
    memmove(&m->view[i], &m->view[i + 1], (m->n_view - i - 1) * sizeof *m->view);
    m->n_view--;
}

/* A kv of the prefix: its record into the view. */
static void view_put_kv(cl_member *m, const cl_kv *kv)
{
    cl_instance in;
    char why[160];
    const char *id = kv->key + strlen(m->prefix);
    if (strncmp(kv->key, m->prefix, strlen(m->prefix)) != 0 || !cl_instance_id_ok(id)) {
        m->stats.bad_records++;
        event(m, CL_MEMBER_EV_BAD_RECORD, "%.200s: not an instance key", kv->key);
        return;
    }
    if (cl_instance_read(kv->value, kv->value_len, &in, why, sizeof why) < 0 ||
        strcmp(in.id, id) != 0) {
        m->stats.bad_records++;
        event(m, CL_MEMBER_EV_BAD_RECORD, "%.120s: %s", kv->key,
              strcmp(in.id, id) ? "the record's id is not its key's" : why);
        return;
    }
    in.mod_revision = kv->mod_revision;
    in.lease = kv->lease;
    if (view_upsert(m, &in) < 0) {
        m->stats.bad_records++;
        event(m, CL_MEMBER_EV_BAD_RECORD, "%.120s: the view is full (%d)", kv->key,
              CL_MEMBER_VIEW_MAX);
    }
}

static void sync_view(cl_member *m);

static void on_watch_msg(void *arg, const cl_answer *a)
{
    cl_member *m = arg;
    if (a->compact_revision || a->canceled) {
        /* what we missed is gone: read the whole view again */
        cl_etcd_watch_cancel(m->watch);
        return;
    }
    for (size_t i = 0; i < a->n_events; i++) {
        const cl_event *ev = &a->events[i];
        m->stats.watch_events++;
        if (ev->type == CL_EVENT_DELETE) {
            const char *id = ev->kv.key + strlen(m->prefix);
            if (strncmp(ev->kv.key, m->prefix, strlen(m->prefix)) == 0)
                view_remove(m, id);
        } else {
            view_put_kv(m, &ev->kv);
        }
        if (ev->kv.mod_revision > m->view_rev)
            m->view_rev = ev->kv.mod_revision;
    }
    /* only the events' own revisions: a message's header revision may run
     * ahead of the events sent so far while etcd catches a watch up */
    if (a->n_events)
        notify(m, CL_MEMBER_CHANGE_VIEW);
}

static void on_view_timer(uv_timer_t *t)
{
    sync_view(t->data);
}

static void on_watch_end(void *arg, int err)
{
    cl_member *m = arg;
    m->watch = NULL;
    if (m->closing)
        return;
    if (err != CL_ETCD_E_CANCELED)
        event(m, CL_MEMBER_EV_ETCD_FAILED, "watch: %s", cl_etcd_strerror(err));
    uv_timer_start(&m->view_timer, on_view_timer,
                   err == CL_ETCD_E_CANCELED ? 0 : cl_member_retry_ms(m->ttl), 0);
}

static void on_range(void *arg, int err, const cl_answer *a)
{
    cl_member *m = arg;
    m->view_reading = false;
    if (m->closing || err == CL_ETCD_E_CANCELED)
        return;
    if (err) {
        event(m, CL_MEMBER_EV_ETCD_FAILED, "reading the cluster's instances: %s%s%s",
              cl_etcd_strerror(err), a ? ": " : "", a ? a->error : "");
        uv_timer_start(&m->view_timer, on_view_timer, cl_member_retry_ms(m->ttl), 0);
        return;
    }
    m->n_view = 0;
    for (size_t i = 0; i < a->n_kvs; i++)
        view_put_kv(m, &a->kvs[i]);
    m->stats.view_syncs++;
    m->view_rev = a->revision;
    event(m, CL_MEMBER_EV_VIEW, "%zu instance%s at revision %" PRId64, m->n_view,
          m->n_view == 1 ? "" : "s", a->revision);
    notify(m, CL_MEMBER_CHANGE_VIEW);
    cl_etcd_watch_cbs cbs = {.on_msg = on_watch_msg, .on_end = on_watch_end, .arg = m};
    int r = cl_etcd_watch_start(m->etcd, m->prefix, true, a->revision + 1, &cbs, &m->watch);
    if (r < 0) {
        event(m, CL_MEMBER_EV_ETCD_FAILED, "watch: %s", cl_etcd_strerror(r));
        uv_timer_start(&m->view_timer, on_view_timer, cl_member_retry_ms(m->ttl), 0);
    }
}

static void sync_view(cl_member *m)
{
    if (m->closing || m->view_reading)
        return;
    int r = cl_etcd_range(m->etcd, m->prefix, true, on_range, m);
    if (r < 0)
        uv_timer_start(&m->view_timer, on_view_timer, cl_member_retry_ms(m->ttl), 0);
    else
        m->view_reading = true;
}

bool cl_member_view_current(const cl_member *m)
{
    return !m->etcd || m->view_rev >= cl_election_vacant_revision(m->election);
}

/* A new leader whose view has not reached the revision at which the old
 * leader's key went (its instance went with it): the watch's event is
 * normally on its way, but when that revision changed no instance (the
 * key was under a lease no record shared) none will come. A whole read,
 * at a revision past it, settles it at the cost of one range. */
static void view_catch_up(cl_member *m)
{
    if (m->closing || cl_member_view_current(m) || m->view_reading)
        return;
    if (m->watch)
        cl_etcd_watch_cancel(m->watch); /* on_watch_end reads the view again at once */
    else
        uv_timer_start(&m->view_timer, on_view_timer, 0, 0);
}

/* ---- joining and the lease -------------------------------------------- */

static void join(cl_member *m);
static void keepalive(cl_member *m);

static void on_timer(uv_timer_t *t)
{
    cl_member *m = t->data;
    if (m->closing)
        return;
    if (m->state == CL_MEMBER_REGISTERED)
        keepalive(m);
    else
        join(m);
}

static void later(cl_member *m, uint64_t ms)
{
    if (!m->closing)
        uv_timer_start(&m->timer, on_timer, ms, 0);
}

/* The loop's cached uv_now may lag; the real clock, in ms, on the same
 * monotonic base, for the stamps and the check of the lease's time. */
static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void on_lead_timer(uv_timer_t *t);

/* A grant or keepalive sent at sent_at was answered with the lease alive:
 * etcd renewed it when it processed the request, after sent_at, so it
 * cannot expire it before sent_at + granted TTL (etcd's own clock runs at
 * ours; a leader change in etcd only extends leases). We may count
 * ourselves leader until a margin before that (cl_member_lead_ms): the
 * new leader can only win after etcd has deleted the key with the lease,
 * so the old one has stepped down first. */
static void renewed(cl_member *m, uint64_t sent_at)
{
    m->renewed_at = sent_at;
    m->lead_until = sent_at + cl_member_lead_ms(m->ttl);
    uint64_t now = now_ms();
    if (m->lead_until <= now) {
        /* answered too late to vouch for anything (a stalled loop) */
        uv_timer_stop(&m->lead_timer);
        cl_election_set_lease(m->election, 0);
        return;
    }
    uv_timer_start(&m->lead_timer, on_lead_timer, m->lead_until - now, 0);
    cl_election_set_lease(m->election, m->lease);
}

/* No renewal since lead_until's: etcd may expire the lease soon, and
 * someone else may then lead; we stop leading until a renewal answers. */
static void on_lead_timer(uv_timer_t *t)
{
    cl_member *m = t->data;
    if (m->closing)
        return;
    uint64_t now = now_ms();
    if (now < m->lead_until) {
        /* uv_now lagged the real clock when the timer was set */
        uv_timer_start(&m->lead_timer, on_lead_timer, m->lead_until - now, 0);
        return;
    }
    bool was_leading = cl_election_leading(m->election);
    cl_election_set_lease(m->election, 0); /* no campaign on it either */
    if (!was_leading)
        return;
    m->stats.step_downs++;
    event(m, CL_MEMBER_EV_ETCD_FAILED,
          "lease %" PRIx64 " not renewed for %" PRIu64 " ms (granted TTL %" PRId64
          " s): not leading until it is",
          (uint64_t)m->lease, now - m->renewed_at, m->ttl);
}

static void on_put_self(void *arg, int err, const cl_answer *a)
{
    cl_member *m = arg;
    if (m->closing || err == CL_ETCD_E_CANCELED)
        return;
    if (err) {
        event(m, CL_MEMBER_EV_ETCD_FAILED, "registering: %s%s%s", cl_etcd_strerror(err),
              a ? ": " : "", a ? a->error : "");
        later(m, cl_member_retry_ms(m->ttl)); /* a new lease: this one may be the reason */
        return;
    }
    m->stats.registrations++;
    set_state(m, CL_MEMBER_REGISTERED);
    event(m, CL_MEMBER_EV_REGISTERED,
          "%s under lease %" PRIx64 " (TTL %" PRId64 " s granted for the configured %" PRId64 " s)",
          m->self.arn, (uint64_t)m->lease, m->ttl, m->configured_ttl);
    renewed(m, m->renewed_at); /* the lease's time runs from its grant's sending */
    later(m, cl_member_keepalive_ms(m->ttl));
}

static void on_granted(void *arg, int err, const cl_answer *a)
{
    cl_member *m = arg;
    if (m->closing || err == CL_ETCD_E_CANCELED)
        return;
    if (err || a->id == 0 || a->ttl <= 0) {
        event(m, CL_MEMBER_EV_ETCD_FAILED, "lease grant: %s%s%s",
              err ? cl_etcd_strerror(err) : "no lease in the answer", a && err ? ": " : "",
              a && err ? a->error : "");
        later(m, cl_member_retry_ms(m->ttl));
        return;
    }
    m->lease = a->id;
    m->ttl = a->ttl; /* etcd may grant another TTL than asked (its minimum): its is the truth */
    m->renewed_at = m->sent_at;
    es_buf rec;
    es_buf_init(&rec, CL_RECORD_MAX);
    int r = cl_instance_write(&m->self, &rec);
    if (r == 0)
        r = cl_etcd_put(m->etcd, m->self_key, rec.data, rec.len, m->lease, on_put_self, m);
    es_buf_free(&rec);
    if (r < 0) {
        event(m, CL_MEMBER_EV_ETCD_FAILED, "registering: %s", cl_etcd_strerror(r));
        later(m, cl_member_retry_ms(m->ttl));
    }
}

static void grant(cl_member *m)
{
    m->ttl = cl_member_asked_ttl(m->configured_ttl, NULL);
    m->sent_at = now_ms();
    int r = cl_etcd_lease_grant(m->etcd, m->ttl, on_granted, m);
    if (r < 0) {
        event(m, CL_MEMBER_EV_ETCD_FAILED, "lease grant: %s", cl_etcd_strerror(r));
        later(m, cl_member_retry_ms(m->ttl));
    }
}

/* Our record as etcd has it (a restart within the old lease's TTL, or a
 * record another agent changed): its status and registeredAt are kept, as
 * ECS keeps a container instance's across its agent's restarts. */
static void on_self_read(void *arg, int err, const cl_answer *a)
{
    cl_member *m = arg;
    if (m->closing || err == CL_ETCD_E_CANCELED)
        return;
    if (err) {
        event(m, CL_MEMBER_EV_ETCD_FAILED, "reading this instance's record: %s",
              cl_etcd_strerror(err));
        later(m, cl_member_retry_ms(m->ttl));
        return;
    }
    cl_instance old;
    char why[160] = "the record's id is not its key's";
    if (a->n_kvs == 1) {
        if (cl_instance_read(a->kvs[0].value, a->kvs[0].value_len, &old, why, sizeof why) == 0 &&
            strcmp(old.id, m->self.id) == 0) {
            memcpy(m->self.status, old.status, sizeof m->self.status);
            m->self.registered_at = old.registered_at;
        } else {
            m->stats.bad_records++;
            event(m, CL_MEMBER_EV_BAD_RECORD, "%s: %s (registering afresh)", m->self_key, why);
        }
    }
    grant(m);
}

static void join(cl_member *m)
{
    set_state(m, CL_MEMBER_JOINING);
    m->lease = 0;
    uv_timer_stop(&m->lead_timer);
    cl_election_set_lease(m->election, 0);
    int r = cl_etcd_range(m->etcd, m->self_key, false, on_self_read, m);
    if (r < 0) {
        event(m, CL_MEMBER_EV_ETCD_FAILED, "reading this instance's record: %s",
              cl_etcd_strerror(r));
        later(m, cl_member_retry_ms(m->ttl));
    }
}

static void on_keepalive(void *arg, int err, const cl_answer *a)
{
    cl_member *m = arg;
    if (m->closing || err == CL_ETCD_E_CANCELED)
        return;
    bool gone = (err == 0 && a->ttl == 0) ||
                (err == CL_ETCD_E_REFUSED && a && a->code == CL_GRPC_NOT_FOUND);
    if (gone) {
        m->stats.leases_lost++;
        event(m, CL_MEMBER_EV_LEASE_LOST, "lease %" PRIx64 " expired: registering again",
              (uint64_t)m->lease);
        join(m);
        return;
    }
    if (err) {
        /* every endpoint failed this round: try again well within the TTL */
        m->stats.keepalive_failures++;
        event(m, CL_MEMBER_EV_ETCD_FAILED, "lease keepalive: %s%s%s", cl_etcd_strerror(err),
              a ? ": " : "", a ? a->error : "");
        /* the lead timer steps down before etcd can expire the lease */
        later(m, cl_member_retry_ms(m->ttl));
        return;
    }
    if (a->ttl > 0)
        m->ttl = a->ttl; /* the lease's TTL as etcd holds it */
    renewed(m, m->sent_at);
    later(m, cl_member_keepalive_ms(m->ttl));
}

static void keepalive(cl_member *m)
{
    m->stats.keepalives++;
    m->sent_at = now_ms();
    int r = cl_etcd_lease_keepalive(m->etcd, m->lease, on_keepalive, m);
    if (r < 0)
        later(m, cl_member_retry_ms(m->ttl));
}

/* ---- status updates --------------------------------------------------- */

static int send_update(update_ctx *u);

static void update_end(update_ctx *u, int err)
{
    u->cb(u->arg, err, err ? NULL : &u->rec);
    es_free(u);
}

static void on_update(void *arg, int err, const cl_answer *a)
{
    update_ctx *u = arg;
    cl_member *m = u->m;
    if (err) {
        update_end(u, err);
        return;
    }
    if (a->succeeded) {
        u->rec.mod_revision = a->revision;
        if (!m->closing)
            view_upsert(m, &u->rec);
        update_end(u, 0);
        return;
    }
    /* someone wrote it first: read back, apply ours to theirs */
    m->stats.update_conflicts++;
    char why[160];
    cl_instance cur;
    if (a->n_kvs == 0) {
        update_end(u, -ENOENT);
        return;
    }
    if (cl_instance_read(a->kvs[0].value, a->kvs[0].value_len, &cur, why, sizeof why) < 0) {
        update_end(u, CL_ETCD_E_ANSWER);
        return;
    }
    cur.mod_revision = a->kvs[0].mod_revision;
    cur.lease = a->kvs[0].lease;
    u->rec = cur;
    if (++u->tries >= CL_MEMBER_UPDATE_TRIES || m->closing) {
        update_end(u, -EBUSY);
        return;
    }
    int r = send_update(u);
    if (r < 0)
        update_end(u, r);
}

static int send_update(update_ctx *u)
{
    cl_member *m = u->m;
    char key[sizeof m->prefix + CL_INSTANCE_ID_MAX + 1];
    int n = snprintf(key, sizeof key, "%s%s", m->prefix, u->rec.id);
    if (n < 0 || (size_t)n >= sizeof key || (size_t)n > CL_ETCD_KEY_MAX)
        return CL_ETCD_E_INVALID;
    int64_t rev = u->rec.mod_revision;
    memcpy(u->rec.status, u->status, sizeof u->rec.status);
    es_buf rec;
    es_buf_init(&rec, CL_RECORD_MAX);
    int r = cl_instance_write(&u->rec, &rec);
    if (r == 0) {
        cl_txn t = {.key = key, .target = CL_CMP_MOD, .revision = rev, .failure_range = true};
        t.success[0] =
            (cl_txn_op){.key = key, .value = rec.data, .value_len = rec.len, .lease = u->rec.lease};
        t.n_success = 1;
        r = cl_etcd_txn(m->etcd, &t, on_update, u);
    }
    es_buf_free(&rec);
    return r;
}

int cl_member_set_status(cl_member *m, const char *id, const char *status, cl_member_update_cb cb,
                         void *arg)
{
    if (!cl_status_ok(status) || !cb)
        return -EINVAL;
    bool found;
    size_t i = view_pos(m, id, &found);
    if (!found)
        return -ENOENT;
    m->stats.updates++;
    if (!m->etcd) {
        memcpy(m->view[i].status, status, strlen(status) + 1);
        memcpy(m->self.status, status, strlen(status) + 1);
        return 0;
    }
    if (m->closing)
        return CL_ETCD_E_CANCELED;
    update_ctx *u = es_calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->m = m;
    u->rec = m->view[i];
    snprintf(u->status, sizeof u->status, "%s", status);
    u->cb = cb;
    u->arg = arg;
    int r = send_update(u);
    if (r < 0) {
        es_free(u);
        return r;
    }
    return 1;
}

/* ---- the election ----------------------------------------------------- */

static void on_leader(void *arg, bool leading, const char *leader)
{
    cl_member *m = arg;
    if (leading)
        view_catch_up(m);
    notify(m, CL_MEMBER_CHANGE_LEADER);
    if (leading)
        event(m, CL_MEMBER_EV_LEADER, "this instance (%s) leads the cluster", m->self.id);
    else if (leader[0])
        event(m, CL_MEMBER_EV_LEADER, "instance %s leads the cluster", leader);
    else
        event(m, CL_MEMBER_EV_LEADER, "no instance leads the cluster");
}

static void on_election_error(void *arg, const char *detail)
{
    event(arg, CL_MEMBER_EV_ETCD_FAILED, "%s", detail);
}

static int start_election(cl_member *m, const char *cluster)
{
    char key[CL_KEY_MAX + 1];
    if (cl_cluster_key(cluster, CL_LEADER_LEAF, key, sizeof key) < 0)
        return -EINVAL;
    cl_election_config ec = {.loop = m->loop,
                             .etcd = m->etcd,
                             .key = key,
                             .id = m->self.id,
                             .retry_ms = cl_member_retry_ms(m->ttl),
                             .on_change = on_leader,
                             .on_error = on_election_error,
                             .arg = m};
    return cl_election_start(&ec, &m->election);
}

/* ---- the cluster's other keys ------------------------------------------ */

int cl_member_subscribe(cl_member *m, cl_member_change_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    if (m->n_subs == CL_MEMBER_SUBSCRIBERS_MAX)
        return -ENOSPC;
    m->subs[m->n_subs].fn = fn;
    m->subs[m->n_subs].arg = arg;
    m->n_subs++;
    return 0;
}

int cl_member_mirror(cl_member *m, const char *leaf, const cl_mirror_cbs *cbs)
{
    char key[CL_KEY_MAX + 1];
    if (!m->etcd)
        return -ENOTCONN;
    if (m->closing)
        return -ECANCELED;
    if (m->n_mirrors == CL_MEMBER_MIRRORS_MAX)
        return -ENOSPC;
    if (cl_cluster_key(m->cluster, leaf, key, sizeof key) < 0)
        return -EINVAL;
    int r = cl_mirror_start(m->loop, m->etcd, key, cl_member_retry_ms(m->ttl), cbs,
                            &m->mirrors[m->n_mirrors]);
    if (r < 0)
        return r;
    m->n_mirrors++;
    m->open++; /* freed once the etcd client has closed */
    return 0;
}

cl_etcd *cl_member_etcd(cl_member *m)
{
    return m->closing ? NULL : m->etcd;
}

const char *cl_member_cluster(const cl_member *m)
{
    return m->cluster;
}

bool cl_member_is_leader(const cl_member *m)
{
    /* the clock, too: a loop that stalled past lead_until may run other
     * callbacks before the lead timer's */
    return m->etcd ? cl_election_leading(m->election) && now_ms() < m->lead_until : true;
}

const char *cl_member_leader(const cl_member *m)
{
    return m->etcd ? cl_election_leader(m->election) : m->self.id;
}

/* ---- life ------------------------------------------------------------- */

cl_member_state cl_member_get_state(const cl_member *m)
{
    return m->state;
}

bool cl_member_is_clustered(const cl_member *m)
{
    return m->etcd != NULL;
}

const cl_instance *cl_member_self(const cl_member *m)
{
    return &m->self;
}

const cl_instance *cl_member_instances(const cl_member *m, size_t *n)
{
    *n = m->n_view;
    return m->view;
}

const cl_instance *cl_member_find(const cl_member *m, const char *id_or_arn)
{
    const char *id = id_or_arn;
    if (strncmp(id_or_arn, "arn:", 4) == 0) {
        const char *slash = strrchr(id_or_arn, '/');
        id = slash ? slash + 1 : "";
        bool found;
        size_t i = view_pos(m, id, &found);
        return found && strcmp(m->view[i].arn, id_or_arn) == 0 ? &m->view[i] : NULL;
    }
    bool found;
    size_t i = view_pos(m, id, &found);
    return found ? &m->view[i] : NULL;
}

void cl_member_get_stats(const cl_member *m, cl_member_stats *out)
{
    *out = m->stats;
    if (!m->election) {
        out->elections_won = 1; /* alone: this agent leads from its start */
        return;
    }
    cl_election_stats es;
    cl_election_get_stats(m->election, &es);
    out->elections_won = es.won;
    out->leader_changes = es.leader_changes;
}

bool cl_member_etcd_stats(const cl_member *m, cl_etcd_stats *out)
{
    if (!m->etcd)
        return false;
    cl_etcd_get_stats(m->etcd, out);
    return true;
}

int cl_member_start(const cl_member_config *cfg, cl_member **out, char *why, size_t whylen)
{
    if (!cfg->self || !cl_instance_id_ok(cfg->self->id) || !cl_status_ok(cfg->self->status))
        return es_errf(why, whylen, -EINVAL, "the instance's ID or status is not valid");
    int64_t ttl = cfg->lease_ttl ? cfg->lease_ttl : CL_MEMBER_TTL_DEFAULT;
    if (ttl < CL_MEMBER_TTL_MIN || ttl > CL_MEMBER_TTL_MAX)
        return es_errf(why, whylen, -EINVAL, "the lease TTL must be %d to %d s", CL_MEMBER_TTL_MIN,
                       CL_MEMBER_TTL_MAX);
    cl_member *m = es_calloc(1, sizeof *m);
    if (!m)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    m->loop = cfg->loop;
    m->configured_ttl = ttl;
    m->ttl = cl_member_asked_ttl(ttl, NULL);
    m->self = *cfg->self;
    snprintf(m->cluster, sizeof m->cluster, "%s", cfg->cluster ? cfg->cluster : "");
    m->on_event = cfg->on_event;
    m->event_arg = cfg->event_arg;
    if (cl_instances_prefix(cfg->cluster, m->prefix, sizeof m->prefix) < 0 ||
        cl_instance_key(cfg->cluster, m->self.id, m->self_key, sizeof m->self_key) < 0) {
        es_free(m);
        return es_errf(why, whylen, -EINVAL, "the cluster's name does not make a key");
    }
    if (view_upsert(m, &m->self) < 0) {
        es_free(m->view);
        es_free(m);
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    }
    if (!cfg->etcd) {
        m->state = CL_MEMBER_ALONE;
        *out = m;
        return 0;
    }
    cl_etcd_config ec = *cfg->etcd;
    if (ec.timeout_ms == 0)
        ec.timeout_ms = cl_member_request_ms(ttl);
    int r = cl_etcd_create(cfg->loop, &ec, &m->etcd, why, whylen);
    if (r < 0) {
        es_free(m->view);
        es_free(m);
        return r == CL_ETCD_E_NOMEM ? -ENOMEM : -EINVAL;
    }
    if ((r = start_election(m, cfg->cluster)) < 0) {
        cl_etcd_close(m->etcd, NULL, NULL);
        es_free(m->view);
        es_free(m);
        return es_errf(why, whylen, r, "the election: %s", strerror(-r));
    }
    /* the view starts empty: what etcd says, not what we assume */
    m->n_view = 0;
    uv_timer_init(cfg->loop, &m->timer);
    uv_timer_init(cfg->loop, &m->view_timer);
    uv_timer_init(cfg->loop, &m->lead_timer);
    m->timer.data = m->view_timer.data = m->lead_timer.data = m;
    m->timers_open = true;
    m->open = 5; /* three timers, the etcd client, the election */
    m->state = CL_MEMBER_JOINING;
    join(m);
    sync_view(m);
    *out = m;
    return 0;
}

static void release(cl_member *m)
{
    if (--m->open > 0)
        return;
    void (*done)(void *) = m->done;
    void *arg = m->done_arg;
    es_free(m->view);
    es_free(m);
    if (done)
        done(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

static void on_part_freed(void *arg)
{
    release(arg);
}

/* Every etcd callback has run: the election and the mirrors can go. */
static void on_etcd_closed(void *arg)
{
    cl_member *m = arg;
    for (size_t i = 0; i < m->n_mirrors; i++)
        cl_mirror_free(m->mirrors[i], on_part_freed, m);
    cl_election_free(m->election, on_part_freed, m);
    release(m);
}

/* The revoke answered (or the stop's deadline passed): close everything. */
static void finish(cl_member *m)
{
    if (m->finishing)
        return;
    m->finishing = true;
    set_state(m, CL_MEMBER_STOPPED);
    uv_timer_stop(&m->timer);
    uv_timer_stop(&m->view_timer);
    uv_timer_stop(&m->lead_timer);
    uv_close((uv_handle_t *)&m->timer, on_handle_closed);
    uv_close((uv_handle_t *)&m->view_timer, on_handle_closed);
    uv_close((uv_handle_t *)&m->lead_timer, on_handle_closed);
    cl_etcd_close(m->etcd, on_etcd_closed, m);
}

static void on_revoked(void *arg, int err, const cl_answer *a)
{
    cl_member *m = arg;
    (void)a;
    if (m->finishing)
        return;
    if (err == 0)
        event(m, CL_MEMBER_EV_REVOKED, "lease %" PRIx64 " revoked: %s left the cluster",
              (uint64_t)m->lease, m->self.arn);
    else
        event(m, CL_MEMBER_EV_ETCD_FAILED,
              "lease revoke: %s (the instance goes when its lease "
              "expires)",
              cl_etcd_strerror(err));
    finish(m);
}

static void on_stop_deadline(uv_timer_t *t)
{
    cl_member *m = t->data;
    event(m, CL_MEMBER_EV_ETCD_FAILED, "lease revoke: no answer within %d ms", CL_MEMBER_STOP_MS);
    finish(m);
}

void cl_member_close(cl_member *m, void (*done)(void *arg), void *arg)
{
    if (!m || m->closing)
        return;
    m->closing = true;
    m->done = done;
    m->done_arg = arg;
    if (!m->etcd) {
        m->open = 1;
        release(m);
        return;
    }
    set_state(m, CL_MEMBER_STOPPING);
    cl_election_stop(m->election); /* the revoke ends the key: others take over at once */
    for (size_t i = 0; i < m->n_mirrors; i++)
        cl_mirror_stop(m->mirrors[i]);
    uv_timer_stop(&m->view_timer);
    cl_etcd_watch_cancel(m->watch);
    if (m->lease && cl_etcd_lease_revoke(m->etcd, m->lease, on_revoked, m) == 0) {
        uv_timer_start(&m->timer, on_stop_deadline, CL_MEMBER_STOP_MS, 0);
        return;
    }
    finish(m);
}
