#include "agent/cluster_tasks.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/metrics.h"
#include "cluster/batch.h"
#include "cluster/tasks.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secure.h"

#define ARN_MAX 700
#define ANSWER_MAX (1u << 20)

/* ---- what the mirrors keep ---------------------------------------------- */

typedef struct req_node {
    struct req_node *next;
    cl_tk_request rq;
    char *ov;        /* the overrides copied (rq.overrides points here) */
    bool unwritable; /* refused alone: the next batch carries its failure instead */
} req_node;

typedef struct asg_node {
    struct asg_node *next;
    cl_tk_assignment a;
    char *ov;
    bool launched;          /* handed to the engine (or found there) */
    bool waiting_td;        /* its definition is not in the store yet (the mirror follows) */
    bool st_inflight;       /* a status write in flight (one at a time: etcd sees them in order) */
    bool st_dirty;          /* the status changed meanwhile */
    bool deleting;          /* STOPPED: the assignment's delete is sent */
    int64_t create_rev;     /* etcd's: the owner's writes compare it (0: not known yet) */
    uint64_t missing_since; /* the leader: when its instance left the view (0: in it) */
} asg_node;

typedef struct st_node {
    struct st_node *next;
    cl_tk_status st;
    int64_t mod_rev;        /* etcd's: the leader's lost mark compares it */
    uint64_t missing_since; /* as asg_node's */
} st_node;

typedef struct stop_node {
    struct stop_node *next;
    cl_tk_stop sp;
} stop_node;

/* a RunTask waiting for its result */
typedef struct waiter {
    struct waiter *next;
    char id[CL_TK_ID_HEX + 1];
    aw_listener_reply *reply;
    uint64_t deadline;
    char td_arn[ARN_MAX];
    char group[CL_TK_GROUP_MAX + 1], started_by[CL_TK_STARTED_BY_MAX + 1];
    char launch_type[CL_TK_LAUNCH_TYPE_MAX + 1];
    int64_t created_at;
} waiter;

struct ag_cluster_tasks {
    uv_loop_t *loop;
    cl_member *member;
    ag_engine *engine;
    ag_store *store;
    ag_api *api;
    uv_timer_t timer;
    bool stopping, timer_closed, free_asked;
    char cluster[CL_CLUSTER_MAX + 1], region[64], account[64];
    char self_id[CL_INSTANCE_ID_MAX + 1];
    char p_req[CL_ETCD_KEY_MAX + 1], p_asg[CL_ETCD_KEY_MAX + 1], p_res[CL_ETCD_KEY_MAX + 1],
        p_task[CL_ETCD_KEY_MAX + 1], p_stop[CL_ETCD_KEY_MAX + 1];
    req_node *reqs; /* in arrival order */
    asg_node *asgs;
    st_node *sts;
    stop_node *stops;
    size_t n_reqs, n_asgs, n_sts, n_stops;
    waiter *waiters;
    bool placing;           /* the leader's transaction in flight (one at a time) */
    uint64_t freed;         /* reservations freed so far (ag_cluster_tasks_capacity_gen) */
    uint64_t view_changes;  /* the member's view changed so far (instances, statuses) */
    unsigned place_depth;   /* place_next's retries of a body it could not build, nested */
    cl_bt_pace pace;        /* requests in the next one, and what follows a failure
                               (cluster/batch.h: no request stops the ones behind it) */
    bool reaping;           /* the leader's lost-host transaction in flight (one at a time) */
    bool expiring;          /* the leader's deletion of old STOPPED records in flight */
    size_t expire_cap;      /* records in the next one (1 after a failed compare) */
    int64_t stopped_keep_s; /* STOPPED records deleted this long after stoppedAt (0: kept) */
    /* the EC2 instance IDs of the instances last seen, for the lost tasks'
     * stoppedReason (the record is gone by then) */
    struct host_seen {
        char id[CL_INSTANCE_ID_MAX + 1];
        char ec2[CL_HOST_ID_MAX + 1];
    } * hosts;
    size_t n_hosts;
    char arn_buf[ARN_MAX];
    ag_cluster_tasks_stats stats;
    ag_cluster_placed_fn placed;
    void *placed_arg;
};

static void make_id(char out[CL_TK_ID_HEX + 1])
{
    unsigned char raw[CL_TK_ID_HEX / 2];
    if (es_random_bytes(raw, sizeof raw) != 0)
        memset(raw, 0, sizeof raw); /* cannot happen on Linux (getrandom); caught below */
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static void task_arn(const ag_cluster_tasks *x, const char *id, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:ecs:%s:%s:task/%s/%s", x->region, x->account, x->cluster, id);
}

static void instance_arn(const ag_cluster_tasks *x, const char *id, char *out, size_t n)
{
    const cl_instance *in = cl_member_find(x->member, id);
    if (in)
        snprintf(out, n, "%s", in->arn);
    else
        snprintf(out, n, "arn:aws:ecs:%s:%s:container-instance/%s/%s", x->region, x->account,
                 x->cluster, id);
}

/* The task ID a reference names: an ID, or an ARN ending in one. */
static bool ref_id(const char *ref, char out[CL_TK_ID_HEX + 1])
{
    const char *slash = strrchr(ref, '/');
    const char *id = strncmp(ref, "arn:", 4) == 0 && slash ? slash + 1 : ref;
    if (!cl_tk_id_ok(id))
        return false;
    memcpy(out, id, CL_TK_ID_HEX + 1);
    return true;
}

static asg_node *find_asg(ag_cluster_tasks *x, const char *task_id)
{
    for (asg_node *a = x->asgs; a; a = a->next)
        if (strcmp(a->a.task_id, task_id) == 0)
            return a;
    return NULL;
}

static st_node *find_st(ag_cluster_tasks *x, const char *task_id)
{
    for (st_node *s = x->sts; s; s = s->next)
        if (strcmp(s->st.task_id, task_id) == 0)
            return s;
    return NULL;
}

static stop_node *find_stop(ag_cluster_tasks *x, const char *task_id)
{
    for (stop_node *s = x->stops; s; s = s->next)
        if (strcmp(s->sp.task_id, task_id) == 0)
            return s;
    return NULL;
}

static void copy_str(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

/* ---- etcd calls whose answer only needs logging ---------------------------- */

typedef struct key_op {
    ag_cluster_tasks *x;
    char what[64];
    char key[CL_ETCD_KEY_MAX + 1];
} key_op;

static void on_key_done(void *arg, int err, const cl_answer *a)
{
    key_op *op = arg;
    (void)a;
    if (err && err != CL_ETCD_E_CANCELED)
        es_warn("cluster: %s %s: %s", op->what, op->key, cl_etcd_strerror(err));
    es_free(op);
}

static void etcd_delete(ag_cluster_tasks *x, const char *what, const char *key)
{
    cl_etcd *e = cl_member_etcd(x->member);
    key_op *op = e ? es_calloc(1, sizeof *op) : NULL;
    if (!op)
        return;
    op->x = x;
    snprintf(op->what, sizeof op->what, "%s", what);
    snprintf(op->key, sizeof op->key, "%s", key);
    if (cl_etcd_delete(e, key, false, on_key_done, op) < 0)
        es_free(op);
}

/* ---- the owner: statuses written back ------------------------------------ */

typedef struct st_op {
    ag_cluster_tasks *x;
    char task_id[CL_TK_ID_HEX + 1];
    bool stopped;
} st_op;

static void write_status(ag_cluster_tasks *x, const char *task_id);
static void asg_remove(ag_cluster_tasks *x, const char *task_id);

/* The cluster took the task from this host: its assignment is gone (the
 * leader found the host lost and wrote the task STOPPED). Its containers
 * are stopped, as the ECS agent stops a task the control plane says is
 * stopped, and nothing of it is written again: the leader's record stands. */
static void task_taken(ag_cluster_tasks *x, const char *task_id, const char *reason)
{
    ag_task *t = ag_engine_find_task(x->engine, task_id), *out = NULL;
    char id[CL_TK_ID_HEX + 1];
    snprintf(id, sizeof id, "%s", task_id);
    asg_remove(x, id); /* first: the engine's change below must not write */
    if (x->stopping || !t || t->desired_status == AG_TASK_STOPPED)
        return;
    if (ag_engine_stop_task(x->engine, id, AG_STOP_TERMINATION_NOTICE, reason, &out) == 0) {
        x->stats.lost_stopped++;
        es_warn("cluster: task %s: stopping it: the cluster marked it STOPPED while this host "
                "was lost (%s)",
                id, reason);
    }
}

static void on_status_written(void *arg, int err, const cl_answer *a)
{
    st_op *op = arg;
    ag_cluster_tasks *x = op->x;
    asg_node *n = find_asg(x, op->task_id);
    if (err) {
        if (err != CL_ETCD_E_CANCELED)
            es_warn("cluster: task %s: its status was not written: %s", op->task_id,
                    cl_etcd_strerror(err));
    } else if (!a->succeeded) {
        /* the assignment is gone: not ours any more (never resurrected) */
        const st_node *s = find_st(x, op->task_id);
        task_taken(x, op->task_id,
                   s && s->st.stopped_reason[0] ? s->st.stopped_reason
                                                : "the cluster took the task from this host");
        es_free(op);
        return;
    } else {
        x->stats.status_writes++;
    }
    if (n) {
        n->st_inflight = false;
        if (err && err != CL_ETCD_E_CANCELED)
            n->st_dirty = true; /* the tick writes it again */
        if (!err && op->stopped)
            n->deleting = true; /* the assignment went in the same transaction */
    }
    if (n && n->st_dirty && !n->st_inflight && !x->stopping) {
        n->st_dirty = false;
        write_status(x, op->task_id);
    }
    es_free(op);
}

/* tasks/<id> written only while this host holds the task's assignment:
 * Txn(create_revision(assignment) == the one seen ? put status [, at
 * STOPPED: delete the assignment (the reservation) and any stop]). A
 * failed compare: the leader marked the task lost (task_taken). */
static int send_status(ag_cluster_tasks *x, asg_node *n, const cl_tk_status *st)
{
    cl_etcd *e = cl_member_etcd(x->member);
    if (!e)
        return -ECANCELED;
    if (!n->create_rev) {
        n->st_dirty = true; /* the mirror brings it: the tick writes then */
        return 0;
    }
    bool stopped = strcmp(st->last_status, "STOPPED") == 0;
    char k_st[CL_ETCD_KEY_MAX + 1], k_asg[CL_ETCD_KEY_MAX + 1], k_stop[CL_ETCD_KEY_MAX + 1];
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    st_op *op = es_calloc(1, sizeof *op);
    int r = op ? 0 : -ENOMEM;
    if (r == 0 &&
        (cl_tk_status_key(x->cluster, st->task_id, k_st, sizeof k_st) < 0 ||
         cl_tk_assignment_key(x->cluster, n->a.instance, n->a.task_id, k_asg, sizeof k_asg) < 0 ||
         cl_tk_stop_key(x->cluster, st->task_id, k_stop, sizeof k_stop) < 0))
        r = -EINVAL;
    if (r == 0)
        r = cl_tk_status_write(st, &v);
    if (r == 0) {
        cl_txn txn;
        memset(&txn, 0, sizeof txn);
        txn.key = k_asg;
        txn.target = CL_CMP_CREATE;
        txn.revision = n->create_rev;
        txn.success[txn.n_success++] =
            (cl_txn_op){.key = k_st, .value = v.data, .value_len = v.len};
        if (stopped) {
            txn.success[txn.n_success++] = (cl_txn_op){.is_delete = true, .key = k_asg};
            if (find_stop(x, st->task_id))
                txn.success[txn.n_success++] = (cl_txn_op){.is_delete = true, .key = k_stop};
        }
        *op = (st_op){.x = x, .stopped = stopped};
        copy_str(op->task_id, sizeof op->task_id, st->task_id);
        r = cl_etcd_txn(e, &txn, on_status_written, op);
    }
    es_buf_free(&v);
    if (r < 0) {
        es_free(op);
        return r;
    }
    n->st_inflight = true;
    return 0;
}

/* The task as the engine has it, into tasks/<id> (never a value: names,
 * statuses, times and the reason). One write in flight per task. */
static void write_status(ag_cluster_tasks *x, const char *task_id)
{
    asg_node *n = find_asg(x, task_id);
    ag_task *t = ag_engine_find_task(x->engine, task_id);
    cl_etcd *e = cl_member_etcd(x->member);
    if (!n || !t || !e || x->stopping || n->deleting)
        return;
    if (n->st_inflight) {
        n->st_dirty = true;
        return;
    }
    cl_tk_status st;
    memset(&st, 0, sizeof st);
    copy_str(st.task_id, sizeof st.task_id, t->id);
    copy_str(st.instance, sizeof st.instance, x->self_id);
    copy_str(st.family, sizeof st.family, n->a.family);
    st.revision = n->a.revision;
    st.cpu = n->a.cpu;
    st.memory = n->a.memory;
    copy_str(st.group, sizeof st.group, n->a.group);
    copy_str(st.started_by, sizeof st.started_by, n->a.started_by);
    copy_str(st.launch_type, sizeof st.launch_type, n->a.launch_type);
    copy_str(st.last_status, sizeof st.last_status, ag_task_status_name(t->last_status));
    copy_str(st.desired_status, sizeof st.desired_status, ag_task_status_name(t->desired_status));
    copy_str(st.stop_code, sizeof st.stop_code, ag_stop_code_name(t->stop_code));
    copy_str(st.stopped_reason, sizeof st.stopped_reason, t->stopped_reason);
    st.created_at = t->created_at;
    st.started_at = t->started_at;
    st.stopped_at = t->stopped_at;
    for (size_t i = 0; i < t->n_containers && i < CL_TK_CONTAINERS_MAX; i++) {
        cl_tk_container *c = &st.containers[i];
        copy_str(c->name, sizeof c->name, t->containers[i].name);
        copy_str(c->last_status, sizeof c->last_status,
                 t->containers[i].last_status ? t->containers[i].last_status : "PENDING");
        c->has_exit_code = t->containers[i].has_exit_code;
        c->exit_code = t->containers[i].exit_code;
        st.n_containers = i + 1;
    }
    int r = send_status(x, n, &st);
    if (r < 0)
        es_warn("cluster: task %s: its status cannot be written: %s", task_id,
                r == -EINVAL ? "a field is not valid" : strerror(-r));
}

static void on_task_changed(void *arg, ag_task *t, ag_task_status from)
{
    ag_cluster_tasks *x = arg;
    (void)from;
    asg_node *n = find_asg(x, t->id);
    if (n && strcmp(n->a.instance, x->self_id) == 0)
        write_status(x, t->id);
}

/* ---- the owner: launching what is assigned here ----------------------------- */

/* A task this host will never run (its definition or overrides refused):
 * STOPPED in etcd with the reason, its assignment gone. */
static void refuse_assignment(ag_cluster_tasks *x, asg_node *n, const char *code,
                              const char *reason)
{
    if (strcmp(code, "TaskFailedToStart") == 0)
        x->stats.launch_failures++;
    es_warn("cluster: task %s: not launched: %s", n->a.task_id, reason);
    cl_tk_status st;
    memset(&st, 0, sizeof st);
    copy_str(st.task_id, sizeof st.task_id, n->a.task_id);
    copy_str(st.instance, sizeof st.instance, x->self_id);
    copy_str(st.family, sizeof st.family, n->a.family);
    st.revision = n->a.revision;
    copy_str(st.group, sizeof st.group, n->a.group);
    copy_str(st.started_by, sizeof st.started_by, n->a.started_by);
    copy_str(st.launch_type, sizeof st.launch_type, n->a.launch_type);
    snprintf(st.last_status, sizeof st.last_status, "STOPPED");
    snprintf(st.desired_status, sizeof st.desired_status, "STOPPED");
    copy_str(st.stop_code, sizeof st.stop_code, code);
    copy_str(st.stopped_reason, sizeof st.stopped_reason, reason);
    st.created_at = st.stopped_at = n->a.created_at;
    int r = send_status(x, n, &st);
    if (r < 0)
        es_warn("cluster: task %s: its STOPPED status cannot be written: %s", n->a.task_id,
                strerror(-r));
}

static void maybe_launch(ag_cluster_tasks *x, asg_node *n)
{
    if (x->stopping || n->launched || strcmp(n->a.instance, x->self_id) != 0)
        return;
    ag_task *known = ag_engine_find_task(x->engine, n->a.task_id);
    if (known) {
        n->launched = true; /* a restart, or the mirror read again: launched once */
        write_status(x, n->a.task_id);
        return;
    }
    const stop_node *sp = find_stop(x, n->a.task_id);
    if (sp) {
        /* stopped through another agent before it reached this one */
        n->launched = true;
        refuse_assignment(x, n, "UserInitiated",
                          sp->sp.reason[0] ? sp->sp.reason : "Task stopped by user");
        return;
    }
    ag_taskdef *td = NULL;
    if (ag_store_taskdef_get(x->store, n->a.family, n->a.revision, &td) < 0) {
        if (!n->waiting_td)
            es_info("cluster: task %s waits for %s:%" PRId64 " to reach this agent's store",
                    n->a.task_id, n->a.family, n->a.revision);
        n->waiting_td = true; /* the tick tries again */
        return;
    }
    n->waiting_td = false;
    n->launched = true;
    ag_overrides *ov = NULL;
    if (n->ov) {
        es_json *j = NULL;
        char why[160];
        es_json_limits lim = es_json_default_limits;
        ag_td_error e;
        if (es_json_parse(n->ov, n->a.overrides_len, &lim, &j, why, sizeof why) != 0 ||
            ag_overrides_parse(j, td, &ov, &e) < 0) {
            es_json_free(j);
            ag_taskdef_free(td);
            refuse_assignment(x, n, "TaskFailedToStart",
                              "ClientException: overrides: not valid for the definition");
            return;
        }
        es_json_free(j);
    }
    const char *ids[1] = {n->a.task_id};
    ag_run_request req = {.td = td,
                          .overrides = ov,
                          .count = 1,
                          .started_by = n->a.started_by[0] ? n->a.started_by : NULL,
                          .group = n->a.group,
                          .launch_type = n->a.launch_type,
                          .task_ids = ids};
    ag_task *tasks[1];
    int r = ag_engine_run_task(x->engine, &req, tasks); /* owns td and ov */
    if (r == -EEXIST)
        return;
    if (r < 0) {
        char reason[128];
        snprintf(reason, sizeof reason, "ResourceInitializationError: this host: %s",
                 r == -ENOSPC ? "it holds its maximum of tasks" : strerror(-r));
        refuse_assignment(x, n, "TaskFailedToStart", reason);
        return;
    }
    x->stats.launched++;
    es_info("cluster: task %s: launching %s:%" PRId64 " as placed by the leader (request %s)",
            n->a.task_id, n->a.family, n->a.revision, n->a.request);
    write_status(x, n->a.task_id);
}

/* ---- the mirrors ------------------------------------------------------------- */

static char *copy_ov(const char *ov, size_t len)
{
    return ov && len ? es_strndup(ov, len) : NULL;
}

static void on_asg_put(void *arg, const cl_kv *kv)
{
    ag_cluster_tasks *x = arg;
    cl_tk_assignment a;
    char why[200];
    if (cl_tk_assignment_read(x->p_asg, kv, &a, why, sizeof why) < 0) {
        x->stats.bad++;
        es_warn("cluster: assignment %.300s skipped: %s", kv->key, why);
        return;
    }
    asg_node *n = find_asg(x, a.task_id);
    if (!n) {
        if (x->n_asgs >= AG_CLUSTER_TASKS_MAX || !(n = es_calloc(1, sizeof *n))) {
            es_warn("cluster: assignment %s not kept: %zu kept already", a.task_id, x->n_asgs);
            return;
        }
        n->next = x->asgs;
        x->asgs = n;
        x->n_asgs++;
    }
    es_free(n->ov);
    n->a = a;
    n->ov = copy_ov(a.overrides, a.overrides_len);
    n->a.overrides = n->ov;
    n->create_rev = kv->create_revision;
    maybe_launch(x, n);
}

static void asg_remove(ag_cluster_tasks *x, const char *task_id)
{
    for (asg_node **pp = &x->asgs; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->a.task_id, task_id) == 0) {
            asg_node *n = *pp;
            *pp = n->next;
            es_free(n->ov);
            es_free(n);
            x->n_asgs--;
            x->freed++; /* a reservation freed: capacity came back */
            return;
        }
}

static void on_asg_delete(void *arg, const char *key)
{
    const char *slash = strrchr(key, '/');
    if (slash)
        asg_remove(arg, slash + 1);
}

static void on_st_put(void *arg, const cl_kv *kv)
{
    ag_cluster_tasks *x = arg;
    cl_tk_status st;
    char why[200];
    if (cl_tk_status_read(x->p_task, kv, &st, why, sizeof why) < 0) {
        x->stats.bad++;
        es_warn("cluster: task status %.300s skipped: %s", kv->key, why);
        return;
    }
    st_node *n = find_st(x, st.task_id);
    if (!n) {
        if (x->n_sts >= AG_CLUSTER_TASKS_MAX || !(n = es_calloc(1, sizeof *n)))
            return;
        n->next = x->sts;
        x->sts = n;
        x->n_sts++;
    }
    n->st = st;
    n->mod_rev = kv->mod_revision;
    /* this host's task, STOPPED by someone else (the leader, while this
     * host was lost) and still running here: stopped, never written back */
    ag_task *t = strcmp(st.instance, x->self_id) == 0 &&
                         strcmp(st.desired_status, "STOPPED") == 0 &&
                         strcmp(st.stop_code, CL_TK_LOST_STOP_CODE) == 0
                     ? ag_engine_find_task(x->engine, st.task_id)
                     : NULL;
    if (t && t->desired_status != AG_TASK_STOPPED)
        task_taken(x, st.task_id, n->st.stopped_reason);
}

static void on_st_delete(void *arg, const char *key)
{
    ag_cluster_tasks *x = arg;
    const char *slash = strrchr(key, '/');
    for (st_node **pp = &x->sts; slash && *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->st.task_id, slash + 1) == 0) {
            st_node *n = *pp;
            *pp = n->next;
            es_free(n);
            x->n_sts--;
            return;
        }
}

static void apply_stop(ag_cluster_tasks *x, const stop_node *s)
{
    ag_task *t = ag_engine_find_task(x->engine, s->sp.task_id);
    if (x->stopping || !t || t->desired_status == AG_TASK_STOPPED)
        return;
    ag_task *out = NULL;
    /* the code the asker gave (a service's stop: ServiceSchedulerInitiated,
     * so that the scheduler counts it as its own); none or one the engine
     * does not stop with: UserInitiated, as before codes were written */
    ag_stop_code code = AG_STOP_USER_INITIATED;
    if (s->sp.code[0] && (ag_stop_code_parse(s->sp.code, &code) < 0 || code == AG_STOP_NONE))
        code = AG_STOP_USER_INITIATED;
    if (ag_engine_stop_task(x->engine, s->sp.task_id, code,
                            s->sp.reason[0] ? s->sp.reason : "Task stopped by user", &out) == 0) {
        x->stats.stops++;
        es_info("cluster: task %s: stopping, as asked through another agent", s->sp.task_id);
        write_status(x, s->sp.task_id);
    }
}

static void on_stop_put(void *arg, const cl_kv *kv)
{
    ag_cluster_tasks *x = arg;
    cl_tk_stop sp;
    char why[200];
    if (cl_tk_stop_read(x->p_stop, kv, &sp, why, sizeof why) < 0) {
        x->stats.bad++;
        es_warn("cluster: stop %.300s skipped: %s", kv->key, why);
        return;
    }
    stop_node *n = find_stop(x, sp.task_id);
    if (!n) {
        if (x->n_stops >= AG_CLUSTER_TASKS_MAX || !(n = es_calloc(1, sizeof *n)))
            return;
        n->next = x->stops;
        x->stops = n;
        x->n_stops++;
    }
    n->sp = sp;
    apply_stop(x, n);
}

static void on_stop_delete(void *arg, const char *key)
{
    ag_cluster_tasks *x = arg;
    const char *slash = strrchr(key, '/');
    for (stop_node **pp = &x->stops; slash && *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->sp.task_id, slash + 1) == 0) {
            stop_node *n = *pp;
            *pp = n->next;
            es_free(n);
            x->n_stops--;
            return;
        }
}

/* ---- the leader: placing requests ----------------------------------------- */

static void place_next(ag_cluster_tasks *x);

static void req_remove(ag_cluster_tasks *x, const char *id)
{
    for (req_node **pp = &x->reqs; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->rq.id, id) == 0) {
            req_node *n = *pp;
            *pp = n->next;
            es_free(n->ov);
            es_free(n);
            x->n_reqs--;
            return;
        }
}

static void on_req_put(void *arg, const cl_kv *kv)
{
    ag_cluster_tasks *x = arg;
    cl_tk_request *rq = es_malloc(sizeof *rq);
    char why[200];
    if (!rq)
        return;
    if (cl_tk_request_read(x->p_req, kv, rq, why, sizeof why) < 0) {
        x->stats.bad++;
        es_warn("cluster: request %.300s skipped: %s", kv->key, why);
        es_free(rq);
        return;
    }
    req_node *n = NULL, **tail = &x->reqs;
    for (; *tail; tail = &(*tail)->next)
        if (strcmp((*tail)->rq.id, rq->id) == 0)
            n = *tail;
    if (!n) {
        if (x->n_reqs >= AG_CLUSTER_TASKS_MAX || !(n = es_calloc(1, sizeof *n))) {
            es_free(rq);
            return;
        }
        *tail = n; /* in arrival order */
        x->n_reqs++;
    }
    es_free(n->ov);
    n->rq = *rq;
    n->ov = copy_ov(rq->overrides, rq->overrides_len);
    n->rq.overrides = n->ov;
    es_free(rq);
    place_next(x);
}

static void on_req_delete(void *arg, const char *key)
{
    ag_cluster_tasks *x = arg;
    const char *slash = strrchr(key, '/');
    if (slash)
        req_remove(x, slash + 1);
}

/* One request of a batch as sent: what its answer needs. */
typedef struct place_item {
    char id[CL_TK_ID_HEX + 1];
    int64_t mod_revision; /* the one compared */
    char group[CL_TK_GROUP_MAX + 1], started_by[CL_TK_STARTED_BY_MAX + 1], reason[64];
    size_t n_failed;
    size_t first, n; /* its assignments: op->as[first .. first + n) */
    char *ov;
} place_item;

typedef struct place_op {
    ag_cluster_tasks *x;
    place_item *items;
    size_t n_items;
    cl_tk_assignment *as;
    size_t n_as;
} place_op;

static void place_op_free(place_op *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->n_items; i++)
        es_free(op->items[i].ov);
    es_free(op->items);
    es_free(op->as);
    es_free(op);
}

/* A request whose compare failed alone: gone (placed by an earlier
 * leader) or changed since read. Dropped from memory unless the mirror
 * has brought a newer version meanwhile (placed on the next try). */
static void req_conflict(ag_cluster_tasks *x, const place_item *it)
{
    for (req_node *n = x->reqs; n; n = n->next)
        if (strcmp(n->rq.id, it->id) == 0) {
            if (n->rq.mod_revision == it->mod_revision)
                req_remove(x, it->id);
            return;
        }
}

/* The request of a batch that went alone: to the back of the queue (it
 * went unanswered too often), or marked unwritable (its failure goes in
 * the next batch; a second refusal of that failure drops it). */
static void req_alone(ag_cluster_tasks *x, const place_item *it, cl_bt_next next)
{
    req_node **pp = &x->reqs;
    while (*pp && strcmp((*pp)->rq.id, it->id) != 0)
        pp = &(*pp)->next;
    req_node *n = *pp;
    if (!n || n->rq.mod_revision != it->mod_revision)
        return; /* gone, or a newer version came: tried as it is */
    if (next == CL_BT_NEXT_FAIL) {
        if (n->unwritable) {
            es_warn("cluster: request %s: not even its failure can be written: dropped here "
                    "(its caller's wait ends without an answer)",
                    it->id);
            req_remove(x, it->id);
            return;
        }
        es_warn("cluster: request %s: etcd refuses its placement: answered %s", it->id,
                CL_TK_REASON_TOO_LARGE);
        n->unwritable = true;
        return;
    }
    /* CL_BT_NEXT_BACK: behind the others */
    *pp = n->next;
    req_node **tail = pp;
    while (*tail)
        tail = &(*tail)->next;
    n->next = NULL;
    *tail = n;
}

/* How a batch's transaction ended, for the queue (cluster/batch.h). */
static cl_bt_end batch_end(int err, const cl_answer *a)
{
    if (err == 0)
        return a->succeeded ? CL_BT_WRITTEN : CL_BT_CONFLICT;
    /* InvalidArgument: too large, too many operations; our client's own
     * refusal of the body: the same next time */
    if ((err == CL_ETCD_E_REFUSED && a && a->code == 3) || err == CL_ETCD_E_INVALID)
        return CL_BT_REFUSED;
    return CL_BT_UNANSWERED;
}

static void on_placed(void *arg, int err, const cl_answer *a)
{
    place_op *op = arg;
    ag_cluster_tasks *x = op->x;
    x->placing = false;
    if (err == CL_ETCD_E_CANCELED) {
        place_op_free(op);
        return;
    }
    cl_bt_end end = batch_end(err, a);
    cl_bt_next next = cl_bt_after(&x->pace, op->n_items, end);
    if (err)
        es_warn("cluster: %zu request(s) from %s on: the placement was not written: %s%s%s "
                "(%s)",
                op->n_items, op->items[0].id, cl_etcd_strerror(err), a && a->is_error ? ": " : "",
                a && a->is_error ? a->error : "",
                next == CL_BT_NEXT_AGAIN   ? "tried again"
                : next == CL_BT_NEXT_SPLIT ? "tried again in smaller batches"
                : next == CL_BT_NEXT_BACK  ? "tried again behind the others"
                                           : "answered as not placed");
    if (end == CL_BT_CONFLICT)
        x->stats.place_conflicts++;
    if (next == CL_BT_NEXT_DROP)
        req_conflict(x, &op->items[0]);
    else if (next == CL_BT_NEXT_FAIL || next == CL_BT_NEXT_BACK)
        req_alone(x, &op->items[0], next);
    else if (next == CL_BT_NEXT_ON) {
        for (size_t k = 0; k < op->n_items; k++) {
            place_item *it = &op->items[k];
            req_remove(x, it->id);
            if (x->placed) {
                const char *ids[CL_TK_COUNT_MAX];
                for (size_t i = 0; i < it->n; i++)
                    ids[i] = op->as[it->first + i].task_id;
                x->placed(x->placed_arg, it->group, it->started_by, ids, it->n, it->n_failed,
                          it->reason);
            }
            /* counted at once: the next placement must see these
             * reservations before the mirror brings them */
            for (size_t i = 0; i < it->n; i++) {
                const cl_tk_assignment *as = &op->as[it->first + i];
                if (find_asg(x, as->task_id) || x->n_asgs >= AG_CLUSTER_TASKS_MAX)
                    continue;
                asg_node *n = es_calloc(1, sizeof *n);
                if (!n)
                    break;
                n->create_rev = a->revision; /* the transaction's puts' */
                n->a = *as;
                n->ov = copy_ov(it->ov, as->overrides_len);
                n->a.overrides = n->ov;
                n->next = x->asgs;
                x->asgs = n;
                x->n_asgs++;
                maybe_launch(x, n);
            }
        }
    }
    place_op_free(op);
    /* unanswered: the tick tries again (etcd away is not a loop on the loop) */
    if (!x->stopping && next != CL_BT_NEXT_AGAIN)
        place_next(x);
}

/* The live tasks of group on instance (cl_bt_group_fn). */
static size_t group_tasks(void *arg, const char *instance, const char *group)
{
    ag_cluster_tasks *x = arg;
    size_t n = 0;
    for (asg_node *a = x->asgs; a; a = a->next)
        n += strcmp(a->a.instance, instance) == 0 && strcmp(a->a.group, group) == 0;
    return n;
}

/* What one batch's transaction is built from (large: on the heap). */
typedef struct place_scratch {
    cl_txn txn;
    cl_txn_cmp more[CL_BT_REQUESTS_MAX];
    char keys[CL_BT_OPS_MAX][CL_ETCD_KEY_MAX + 1];
    es_buf vals[CL_BT_OPS_MAX];
    size_t n_vals;
    cl_bt_outcome out[CL_BT_REQUESTS_MAX];
} place_scratch;

/* Adds request rq, placed as oc says, to the batch's transaction: its
 * assignments and result put, the request deleted, its mod_revision
 * compared. 0 or a negative errno. */
static int add_request(ag_cluster_tasks *x, place_scratch *s, place_op *op,
                       const cl_pl_candidate *cands, const cl_tk_request *rq,
                       const cl_bt_outcome *oc)
{
    cl_txn *t = &s->txn;
    if (t->n_success + oc->placed + 2 > CL_BT_OPS_MAX || t->n_more + 1 >= CL_BT_REQUESTS_MAX)
        return -E2BIG; /* cl_bt_place's bounds make this unreachable */
    place_item *it = &op->items[op->n_items];
    *it = (place_item){.mod_revision = rq->mod_revision, .first = op->n_as, .n = oc->placed};
    copy_str(it->id, sizeof it->id, rq->id);
    copy_str(it->group, sizeof it->group, rq->group);
    copy_str(it->started_by, sizeof it->started_by, rq->started_by);
    it->ov = copy_ov(rq->overrides, rq->overrides_len);
    op->n_items++;
    cl_tk_result res;
    memset(&res, 0, sizeof res);
    copy_str(res.request, sizeof res.request, rq->id);
    copy_str(res.from, sizeof res.from, rq->from);
    for (size_t i = 0; i < oc->placed; i++) {
        cl_tk_assignment *as = &op->as[op->n_as++];
        copy_str(as->instance, sizeof as->instance, cands[oc->where[i]].in->id);
        make_id(as->task_id);
        copy_str(as->request, sizeof as->request, rq->id);
        copy_str(as->family, sizeof as->family, rq->family);
        as->revision = rq->revision;
        as->cpu = rq->cpu;
        as->memory = rq->memory;
        copy_str(as->group, sizeof as->group, rq->group);
        copy_str(as->started_by, sizeof as->started_by, rq->started_by);
        copy_str(as->launch_type, sizeof as->launch_type, rq->launch_type);
        as->overrides = rq->overrides;
        as->overrides_len = rq->overrides_len;
        as->created_at = rq->created_at;
        copy_str(res.placed[i].task_id, sizeof res.placed[i].task_id, as->task_id);
        copy_str(res.placed[i].instance, sizeof res.placed[i].instance, as->instance);
        res.n_placed = i + 1;
        size_t k = t->n_success;
        es_buf_init(&s->vals[s->n_vals++], CL_TK_VALUE_MAX);
        int r = cl_tk_assignment_key(x->cluster, as->instance, as->task_id, s->keys[k],
                                     sizeof s->keys[k]) < 0
                    ? -EINVAL
                    : cl_tk_assignment_write(as, &s->vals[s->n_vals - 1]);
        if (r < 0)
            return r;
        t->success[t->n_success++] = (cl_txn_op){.key = s->keys[k],
                                                 .value = s->vals[s->n_vals - 1].data,
                                                 .value_len = s->vals[s->n_vals - 1].len};
    }
    res.n_failed = (size_t)rq->count - oc->placed;
    if (res.n_failed)
        copy_str(res.reason, sizeof res.reason,
                 oc->err == -E2BIG ? CL_TK_REASON_TOO_LARGE : cl_pl_reason_name(oc->reason));
    it->n_failed = res.n_failed;
    copy_str(it->reason, sizeof it->reason, res.reason);
    size_t k = t->n_success;
    es_buf_init(&s->vals[s->n_vals++], CL_TK_VALUE_MAX);
    int r = cl_tk_result_key(x->cluster, rq->id, s->keys[k], sizeof s->keys[k]) < 0 ||
                    cl_tk_request_key(x->cluster, rq->id, s->keys[k + 1], sizeof s->keys[k + 1]) < 0
                ? -EINVAL
                : cl_tk_result_write(&res, &s->vals[s->n_vals - 1]);
    if (r < 0)
        return r;
    t->success[t->n_success++] = (cl_txn_op){.key = s->keys[k],
                                             .value = s->vals[s->n_vals - 1].data,
                                             .value_len = s->vals[s->n_vals - 1].len};
    t->success[t->n_success++] = (cl_txn_op){.is_delete = true, .key = s->keys[k + 1]};
    /* the request's own compare: placed once, whatever the batch */
    if (!t->key) {
        t->key = s->keys[k + 1];
        t->target = CL_CMP_MOD;
        t->revision = rq->mod_revision;
    } else {
        s->more[t->n_more++] =
            (cl_txn_cmp){.key = s->keys[k + 1], .target = CL_CMP_MOD, .revision = rq->mod_revision};
    }
    return 0;
}

/* Places the pending requests (leader only, one transaction in flight:
 * what arrives meanwhile waits for the next one). Every request whose
 * revision is known, in arrival order, as many as one transaction holds
 * (cluster/batch.h) and batch_cap allows (halved after a failed compare). */
static void place_next(ag_cluster_tasks *x)
{
    cl_etcd *e = cl_member_etcd(x->member);
    if (x->stopping || x->placing || !x->reqs || !e || !cl_member_is_leader(x->member))
        return;
    /* a new leader whose view still holds the old leader's instance would
     * place there: its view's catch-up (an event, or a read) calls again */
    if (!cl_member_view_current(x->member))
        return;
    cl_tk_request *rqs[CL_BT_REQUESTS_MAX];
    bool unwritable[CL_BT_REQUESTS_MAX];
    size_t n_rqs = 0, cap = x->pace.cap ? x->pace.cap : 1;
    for (req_node *rn = x->reqs; rn && n_rqs < cap; rn = rn->next)
        if (rn->rq.mod_revision != 0) { /* written here, its revision not known yet: the put's
                                           answer brings it */
            unwritable[n_rqs] = rn->unwritable;
            rqs[n_rqs++] = &rn->rq;
        }
    if (n_rqs == 0)
        return;
    size_t n = 0;
    const cl_instance *ins = cl_member_instances(x->member, &n);
    cl_pl_candidate *cands = es_calloc(n ? n : 1, sizeof *cands);
    place_scratch *s = es_calloc(1, sizeof *s);
    place_op *op = es_calloc(1, sizeof *op);
    int r = cands && s && op ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < n; i++) {
        cands[i].in = &ins[i];
        cands[i].cpu_left = ins[i].cpu;
        cands[i].mem_left = ins[i].memory;
        for (asg_node *a = x->asgs; a; a = a->next)
            if (strcmp(a->a.instance, ins[i].id) == 0) {
                cands[i].cpu_left -= a->a.cpu;
                cands[i].mem_left -= a->a.memory;
            }
    }
    uint64_t seed = 0;
    (void)es_random_bytes(&seed, sizeof seed);
    size_t taken = 0, n_tasks = 0;
    if (r == 0)
        r = cl_bt_place(cands, n, group_tasks, x, rqs, n_rqs, cap, seed, s->out, &taken);
    for (size_t i = 0; r == 0 && i < taken; i++) {
        if (unwritable[i] && !s->out[i].err) {
            /* refused alone before: its failure, not its placement (the
             * capacity cl_bt_place counted for it stays free: the batch's
             * later requests were placed over a little less than there is) */
            s->out[i] = (cl_bt_outcome){.err = -E2BIG};
        }
        n_tasks += s->out[i].err ? 0 : s->out[i].placed;
    }
    if (r == 0) {
        *op = (place_op){.x = x};
        op->items = es_calloc(taken, sizeof *op->items);
        op->as = es_calloc(n_tasks ? n_tasks : 1, sizeof *op->as);
        if (!op->items || !op->as)
            r = -ENOMEM;
    }
    size_t placed = 0, unplaced = 0;
    for (size_t i = 0; r == 0 && i < taken; i++) {
        if (s->out[i].err && s->out[i].err != -E2BIG) {
            /* its reader compiled it: only memory can fail here; it stays
             * queued for the next batch */
            es_warn("cluster: request %s: not compiled: %s (tried again)", rqs[i]->id,
                    strerror(-s->out[i].err));
            continue;
        }
        r = add_request(x, s, op, cands, rqs[i], &s->out[i]);
        placed += s->out[i].placed;
        unplaced += (size_t)rqs[i]->count - s->out[i].placed;
    }
    if (r == 0 && op->n_items == 0)
        r = -ENOMEM;
    s->txn.more = s->more;
    if (r == 0)
        r = cl_etcd_txn(e, &s->txn, on_placed, op);
    for (size_t i = 0; s && i < s->n_vals; i++)
        es_buf_free(&s->vals[i]);
    es_free(s);
    es_free(cands);
    if (r < 0) {
        es_warn("cluster: request %s: the placement cannot be sent: %s", rqs[0]->id, strerror(-r));
        /* a body we could not build: in halves, then the request at
         * fault alone answered as not placed (cluster/batch.h); memory
         * short: the tick tries again */
        cl_bt_next next = CL_BT_NEXT_AGAIN;
        if (op && op->n_items > 0 && r != -ENOMEM) {
            next = cl_bt_after(&x->pace, op->n_items, CL_BT_REFUSED);
            if (next == CL_BT_NEXT_FAIL)
                req_alone(x, &op->items[0], next);
        }
        place_op_free(op);
        if (next != CL_BT_NEXT_AGAIN && x->place_depth < 2 * CL_BT_REQUESTS_MAX) {
            x->place_depth++;
            place_next(x);
            x->place_depth--;
        }
        return;
    }
    x->placing = true;
    x->stats.placed += placed;
    x->stats.unplaced += unplaced;
    x->stats.batches++;
    x->stats.batched_requests += op->n_items;
    for (size_t i = 0; i < op->n_items; i++) {
        const place_item *it = &op->items[i];
        es_info("cluster: request %s: %zu task(s) placed%s%s (batch of %zu)", it->id, it->n,
                it->n_failed ? ", the others: " : "", it->n_failed ? it->reason : "", op->n_items);
    }
}

/* ---- the leader: a lost host's tasks ------------------------------------------ */

/* The EC2 instance IDs of the view's instances, kept for the stoppedReason
 * of their tasks once their records are gone. */
static void remember_hosts(ag_cluster_tasks *x)
{
    size_t n = 0;
    const cl_instance *ins = cl_member_instances(x->member, &n);
    for (size_t i = 0; i < n; i++) {
        if (!ins[i].host_id[0])
            continue;
        size_t j = 0;
        while (j < x->n_hosts && strcmp(x->hosts[j].id, ins[i].id) != 0)
            j++;
        if (j == x->n_hosts) {
            if (x->n_hosts >= CL_MEMBER_VIEW_MAX)
                j = 0; /* full: the oldest slot goes */
            else {
                struct host_seen *h = es_realloc(x->hosts, (x->n_hosts + 1) * sizeof *h);
                if (!h)
                    return;
                x->hosts = h;
                x->n_hosts++;
            }
        }
        copy_str(x->hosts[j].id, sizeof x->hosts[j].id, ins[i].id);
        copy_str(x->hosts[j].ec2, sizeof x->hosts[j].ec2, ins[i].host_id);
    }
}

static const char *host_of(const ag_cluster_tasks *x, const char *id)
{
    for (size_t j = 0; j < x->n_hosts; j++)
        if (strcmp(x->hosts[j].id, id) == 0)
            return x->hosts[j].ec2;
    return NULL;
}

typedef struct lost_op {
    ag_cluster_tasks *x;
    cl_tk_status rec;
    char instance[CL_INSTANCE_ID_MAX + 1];
} lost_op;

static void reap_next(ag_cluster_tasks *x);

static void on_lost_written(void *arg, int err, const cl_answer *a)
{
    lost_op *op = arg;
    ag_cluster_tasks *x = op->x;
    x->reaping = false;
    if (err) {
        if (err != CL_ETCD_E_CANCELED)
            es_warn("cluster: task %s of lost instance %s: not marked STOPPED: %s (tried again)",
                    op->rec.task_id, op->instance, cl_etcd_strerror(err));
    } else if (!a->succeeded) {
        /* the record changed since read (its owner wrote, e.g. back in
         * time): the mirror brings it, the next tick decides again */
        x->stats.lost_conflicts++;
    } else {
        x->stats.lost_marked++;
        es_warn("cluster: task %s: STOPPED: its container instance %s was lost (%s)",
                op->rec.task_id, op->instance, op->rec.stopped_reason);
        /* freed at once: the next placement must not count it */
        asg_remove(x, op->rec.task_id);
        st_node *s = find_st(x, op->rec.task_id);
        if (s) {
            s->st = op->rec;
            s->mod_rev = a->revision;
        }
    }
    /* on to the next only after a success: a failed compare waits for the
     * mirror's fresh record (the tick), not a loop of stale transactions */
    bool again = !err && a->succeeded && !x->stopping;
    es_free(op);
    if (again)
        reap_next(x);
}

/* Marks one lost task STOPPED: Txn(mod_revision(tasks/<id>) == the one read
 * (0: no record yet) ? put the STOPPED record, delete the assignment and any
 * stop). A failed compare loses nothing: the owner's write stands and the
 * task is decided again from it. */
static int mark_lost(ag_cluster_tasks *x, asg_node *a, st_node *s)
{
    cl_etcd *e = cl_member_etcd(x->member);
    lost_op *op = e ? es_calloc(1, sizeof *op) : NULL;
    if (!op)
        return -ENOMEM;
    op->x = x;
    const char *inst = s ? s->st.instance : a->a.instance;
    copy_str(op->instance, sizeof op->instance, inst);
    int r = 0;
    if (s && strcmp(s->st.last_status, "STOPPED") == 0)
        op->rec = s->st; /* its owner's own last word stays; only the assignment goes */
    else
        r = cl_tk_status_lost(s ? &s->st : NULL, a ? &a->a : NULL, host_of(x, inst),
                              ag_api_now(x->api), &op->rec);
    char k_st[CL_ETCD_KEY_MAX + 1], k_asg[CL_ETCD_KEY_MAX + 1], k_stop[CL_ETCD_KEY_MAX + 1];
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    if (r == 0 && (cl_tk_status_key(x->cluster, op->rec.task_id, k_st, sizeof k_st) < 0 ||
                   cl_tk_stop_key(x->cluster, op->rec.task_id, k_stop, sizeof k_stop) < 0 ||
                   (a && cl_tk_assignment_key(x->cluster, a->a.instance, a->a.task_id, k_asg,
                                              sizeof k_asg) < 0)))
        r = -EINVAL;
    if (r == 0)
        r = cl_tk_status_write(&op->rec, &v);
    if (r == 0) {
        cl_txn txn;
        memset(&txn, 0, sizeof txn);
        txn.key = k_st;
        txn.target = CL_CMP_MOD;
        txn.revision = s ? s->mod_rev : 0;
        txn.success[txn.n_success++] =
            (cl_txn_op){.key = k_st, .value = v.data, .value_len = v.len};
        if (a)
            txn.success[txn.n_success++] = (cl_txn_op){.is_delete = true, .key = k_asg};
        if (find_stop(x, op->rec.task_id))
            txn.success[txn.n_success++] = (cl_txn_op){.is_delete = true, .key = k_stop};
        r = cl_etcd_txn(e, &txn, on_lost_written, op);
    }
    es_buf_free(&v);
    if (r < 0) {
        es_free(op);
        return r;
    }
    x->reaping = true;
    return 0;
}

/* Whether the task's instance has been out of the view long enough. */
static bool lost_now(ag_cluster_tasks *x, const char *instance, uint64_t *missing_since,
                     bool view_ready, const char *last_status, uint64_t now)
{
    bool in_view = cl_member_find(x->member, instance) != NULL;
    if (in_view || !view_ready)
        *missing_since = 0;
    else if (!*missing_since)
        *missing_since = now ? now : 1;
    uint64_t missing = *missing_since ? now - *missing_since : 0;
    return cl_tk_task_lost(view_ready, in_view, missing, AG_CLUSTER_LOST_GRACE_MS, last_status);
}

/* The leader, one transaction at a time: every task (assigned, or with a
 * record not STOPPED) whose instance left the view is marked STOPPED and
 * its reservation freed. Idempotent across a change of leader: the next
 * one finds what is left and compares the records it read. */
static void reap_next(ag_cluster_tasks *x)
{
    if (x->stopping || x->reaping || !cl_member_etcd(x->member) || !cl_member_is_leader(x->member))
        return;
    cl_member_stats ms;
    cl_member_get_stats(x->member, &ms);
    bool ready = ms.view_syncs > 0;
    uint64_t now = uv_now(x->loop);
    remember_hosts(x);
    for (asg_node *a = x->asgs; a; a = a->next) {
        st_node *s = find_st(x, a->a.task_id);
        bool stopped = s && strcmp(s->st.last_status, "STOPPED") == 0;
        /* a STOPPED record with its assignment left: the owner died between
         * the two (its own transaction holds both now; older agents') */
        if (!lost_now(x, a->a.instance, &a->missing_since, ready,
                      stopped ? NULL : (s ? s->st.last_status : NULL), now))
            continue;
        if (mark_lost(x, a, s) == 0 || x->reaping)
            return;
    }
    for (st_node *s = x->sts; s; s = s->next) {
        if (find_asg(x, s->st.task_id) ||
            !lost_now(x, s->st.instance, &s->missing_since, ready, s->st.last_status, now))
            continue;
        if (mark_lost(x, NULL, s) == 0 || x->reaping)
            return;
    }
}

/* ---- the leader: STOPPED records expire -------------------------------------- */

/* Why the leader deletes them rather than a lease per time bucket: one
 * writer, a compare on the record's mod_revision (a record written again
 * meanwhile stays), no lease to grant and track per bucket on every owner,
 * and the age is the leader's setting, changed by a restart; a cluster
 * without a leader places nothing either, so nothing piles up. */
typedef struct expire_op {
    ag_cluster_tasks *x;
    size_t n;
    char ids[CL_TK_EXPIRE_BATCH][CL_TK_ID_HEX + 1];
} expire_op;

static void on_expired(void *arg, int err, const cl_answer *a)
{
    expire_op *op = arg;
    ag_cluster_tasks *x = op->x;
    x->expiring = false;
    if (err) {
        if (err != CL_ETCD_E_CANCELED)
            es_warn("cluster: %zu STOPPED task record(s) not deleted: %s (tried again)", op->n,
                    cl_etcd_strerror(err));
    } else if (!a->succeeded) {
        /* one changed or went meanwhile: one at a time until the mirror
         * brings the fresh state */
        x->expire_cap = 1;
    } else {
        x->stats.expired += op->n;
        x->expire_cap = CL_TK_EXPIRE_BATCH;
        char key[CL_TK_ID_HEX + 2];
        for (size_t i = 0; i < op->n; i++) {
            snprintf(key, sizeof key, "/%s", op->ids[i]);
            on_st_delete(x, key); /* gone at once; the mirror's delete finds nothing */
        }
    }
    es_free(op);
}

/* Deletes the STOPPED records older than stopped_keep_s whose assignment is
 * gone (leader only, from the tick, one transaction in flight):
 * Txn(mod_revision(tasks/<id>) == the one read, for each ? delete each). */
static void expire_next(ag_cluster_tasks *x)
{
    cl_etcd *e = cl_member_etcd(x->member);
    if (x->stopping || x->expiring || x->stopped_keep_s <= 0 || !e ||
        !cl_member_is_leader(x->member))
        return;
    static char keys[CL_TK_EXPIRE_BATCH][CL_ETCD_KEY_MAX + 1];
    cl_txn_cmp more[CL_TK_EXPIRE_BATCH];
    cl_txn *t = es_calloc(1, sizeof *t);
    expire_op *op = t ? es_calloc(1, sizeof *op) : NULL;
    if (!op) {
        es_free(t);
        return;
    }
    op->x = x;
    int64_t now = (int64_t)time(NULL);
    size_t cap = x->expire_cap ? x->expire_cap : 1;
    for (st_node *s = x->sts; s && op->n < cap; s = s->next) {
        if (s->mod_rev == 0 || find_asg(x, s->st.task_id) ||
            !cl_tk_status_expired(&s->st, now, x->stopped_keep_s) ||
            cl_tk_status_key(x->cluster, s->st.task_id, keys[op->n], sizeof keys[op->n]) < 0)
            continue;
        if (op->n == 0) {
            t->key = keys[0];
            t->target = CL_CMP_MOD;
            t->revision = s->mod_rev;
        } else {
            more[t->n_more++] =
                (cl_txn_cmp){.key = keys[op->n], .target = CL_CMP_MOD, .revision = s->mod_rev};
        }
        t->success[t->n_success++] = (cl_txn_op){.is_delete = true, .key = keys[op->n]};
        copy_str(op->ids[op->n], sizeof op->ids[op->n], s->st.task_id);
        op->n++;
    }
    t->more = more;
    int r = op->n ? cl_etcd_txn(e, t, on_expired, op) : -ENOENT;
    es_free(t);
    if (r < 0) {
        if (r != -ENOENT)
            es_warn("cluster: STOPPED task records: the deletion cannot be sent: %s", strerror(-r));
        es_free(op);
        return;
    }
    x->expiring = true;
}

void ag_cluster_tasks_set_stopped_keep(ag_cluster_tasks *x, int64_t seconds)
{
    if (x)
        x->stopped_keep_s = seconds;
}

/* ---- the receiving agent: RunTask's request and its answer ----------------- */

static void waiter_free(ag_cluster_tasks *x, waiter *w)
{
    for (waiter **pp = &x->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    es_free(w);
}

static waiter *find_waiter(ag_cluster_tasks *x, const char *id)
{
    for (waiter *w = x->waiters; w; w = w->next)
        if (strcmp(w->id, id) == 0)
            return w;
    return NULL;
}

static void answer_result(ag_cluster_tasks *x, waiter *w, const cl_tk_result *res)
{
    es_buf out;
    es_buf_init(&out, ANSWER_MAX);
    es_jw jw;
    es_jw_init(&jw, &out);
    es_jw_obj(&jw);
    es_jw_key(&jw, "tasks");
    es_jw_arr(&jw);
    char arn[ARN_MAX], cluster_arn[ARN_MAX];
    snprintf(cluster_arn, sizeof cluster_arn, "arn:aws:ecs:%s:%s:cluster/%s", x->region, x->account,
             x->cluster);
    for (size_t i = 0; i < res->n_placed; i++) {
        es_jw_obj(&jw);
        task_arn(x, res->placed[i].task_id, arn, sizeof arn);
        es_jw_kstr(&jw, "taskArn", arn);
        es_jw_kstr(&jw, "clusterArn", cluster_arn);
        es_jw_kstr(&jw, "taskDefinitionArn", w->td_arn);
        instance_arn(x, res->placed[i].instance, arn, sizeof arn);
        es_jw_kstr(&jw, "containerInstanceArn", arn);
        es_jw_kstr(&jw, "lastStatus", "PROVISIONING");
        es_jw_kstr(&jw, "desiredStatus", "RUNNING");
        es_jw_kstr(&jw, "group", w->group);
        if (w->started_by[0])
            es_jw_kstr(&jw, "startedBy", w->started_by);
        es_jw_kstr(&jw, "launchType", w->launch_type);
        es_jw_kint(&jw, "createdAt", w->created_at);
        es_jw_obj_end(&jw);
    }
    es_jw_arr_end(&jw);
    es_jw_key(&jw, "failures");
    es_jw_arr(&jw);
    for (size_t i = 0; i < res->n_failed; i++) {
        es_jw_obj(&jw);
        es_jw_kstr(&jw, "arn", w->td_arn);
        es_jw_kstr(&jw, "reason", res->reason);
        es_jw_kstr(&jw, "detail",
                   strcmp(res->reason, CL_TK_REASON_TOO_LARGE) == 0
                       ? "the placement of this many tasks with these overrides does not fit one "
                         "etcd transaction: run fewer tasks a call, or with smaller overrides"
                       : "no container instance of the cluster can take the task");
        es_jw_obj_end(&jw);
    }
    es_jw_arr_end(&jw);
    es_jw_obj_end(&jw);
    if (es_jw_finish(&jw) < 0)
        ag_api_reply_error(x->api, w->reply, "ServerException", "the answer is too large");
    else
        aw_listener_reply_ok(w->reply, out.data, out.len);
    es_buf_free(&out);
}

static void on_res_put(void *arg, const cl_kv *kv)
{
    ag_cluster_tasks *x = arg;
    cl_tk_result res;
    char why[200];
    if (cl_tk_result_read(x->p_res, kv, &res, why, sizeof why) < 0) {
        x->stats.bad++;
        es_warn("cluster: result %.300s skipped: %s", kv->key, why);
        return;
    }
    waiter *w = find_waiter(x, res.request);
    if (!w) {
        /* ours, but nobody waits any more (the call gave up, or this agent
         * restarted): the result has no reader left */
        if (strcmp(res.from, x->self_id) == 0)
            etcd_delete(x, "an unawaited result", kv->key);
        return; /* else another agent's request */
    }
    es_info("cluster: request %s answered: %zu task(s) placed, %zu not", res.request, res.n_placed,
            res.n_failed);
    answer_result(x, w, &res);
    waiter_free(x, w);
    etcd_delete(x, "the answered result", kv->key);
}

typedef struct req_op {
    ag_cluster_tasks *x;
    char id[CL_TK_ID_HEX + 1];
} req_op;

static void on_req_written(void *arg, int err, const cl_answer *a)
{
    req_op *op = arg;
    (void)a;
    waiter *w = err ? find_waiter(op->x, op->id) : NULL;
    if (w) {
        ag_api_reply_error(op->x->api, w->reply, "ServerException",
                           "the cluster (etcd) did not take the request: %s",
                           cl_etcd_strerror(err));
        waiter_free(op->x, w);
    }
    es_free(op);
}

static void set_text(char *dst, size_t n, const es_json *o, const char *key)
{
    const char *s = es_json_get_str(o, key);
    copy_str(dst, n, s);
}

static int run(void *arg, const ag_api_run_args *a, aw_listener_reply *reply, char *why,
               size_t whylen)
{
    ag_cluster_tasks *x = arg;
    cl_etcd *e = cl_member_etcd(x->member);
    if (!e || x->stopping)
        return es_errf(why, whylen, -ECANCELED, "the agent is not in the cluster now");
    cl_tk_request *rq = es_calloc(1, sizeof *rq);
    if (!rq)
        return es_errf(why, whylen, -ENOMEM, "out of memory");
    make_id(rq->id);
    copy_str(rq->from, sizeof rq->from, x->self_id);
    copy_str(rq->family, sizeof rq->family, a->family);
    rq->revision = a->revision;
    rq->count = a->count;
    rq->cpu = a->cpu;
    rq->memory = a->memory;
    copy_str(rq->group, sizeof rq->group, a->group);
    copy_str(rq->started_by, sizeof rq->started_by, a->started_by);
    copy_str(rq->launch_type, sizeof rq->launch_type, a->launch_type);
    rq->overrides = a->overrides;
    rq->overrides_len = a->overrides_len;
    rq->created_at = ag_api_now(x->api);
    int r = 0;
    size_t ns = a->strategies ? es_json_len(a->strategies) : 0;
    size_t nc = a->constraints ? es_json_len(a->constraints) : 0;
    if (ns > CL_PL_STRATEGIES_MAX || nc > CL_PL_CONSTRAINTS_MAX)
        r = es_errf(why, whylen, -EINVAL,
                    "placementStrategy, placementConstraints: at most %d and %d",
                    CL_PL_STRATEGIES_MAX, CL_PL_CONSTRAINTS_MAX);
    for (size_t i = 0; r == 0 && i < ns; i++) {
        const es_json *s = es_json_at(a->strategies, i);
        set_text(rq->strategies[i].type, sizeof rq->strategies[i].type, s, "type");
        set_text(rq->strategies[i].field, sizeof rq->strategies[i].field, s, "field");
        rq->n_strategies = i + 1;
    }
    for (size_t i = 0; r == 0 && i < nc; i++) {
        const es_json *c = es_json_at(a->constraints, i);
        const char *ex = es_json_get_str(c, "expression");
        if (ex && strlen(ex) > CL_PL_EXPR_MAX)
            r = es_errf(why, whylen, -EINVAL, "placementConstraints[%zu].expression: over %d bytes",
                        i, CL_PL_EXPR_MAX);
        set_text(rq->constraints[i].type, sizeof rq->constraints[i].type, c, "type");
        set_text(rq->constraints[i].expression, sizeof rq->constraints[i].expression, c,
                 "expression");
        rq->n_constraints = i + 1;
    }
    if (r == 0) {
        /* refused here, with the reason, rather than by the leader */
        cl_pl_strategy s[CL_PL_STRATEGIES_MAX];
        cl_pl_constraint c[CL_PL_CONSTRAINTS_MAX];
        char pwhy[200];
        if ((r = cl_tk_request_compile(rq, s, c, pwhy, sizeof pwhy)) < 0)
            r = es_errf(why, whylen, r == -ENOMEM ? -ENOMEM : -EINVAL, "placement: %s", pwhy);
        for (size_t i = 0; r == 0 && i < rq->n_constraints; i++)
            cl_pl_constraint_clear(&c[i]);
    }
    if (r == 0 && cl_bt_request_too_large(rq)) {
        /* the leader could only answer it PLACEMENT_TOO_LARGE (no
         * transaction holds its placement): answered here the same, without
         * a request in etcd and a wait for the leader */
        waiter *tw = es_calloc(1, sizeof *tw);
        cl_tk_result *res = tw ? es_calloc(1, sizeof *res) : NULL;
        if (!res) {
            es_free(tw);
            es_free(rq);
            return es_errf(why, whylen, -ENOMEM, "out of memory");
        }
        tw->reply = reply;
        copy_str(tw->td_arn, sizeof tw->td_arn, a->td_arn);
        copy_str(tw->group, sizeof tw->group, rq->group);
        copy_str(tw->started_by, sizeof tw->started_by, rq->started_by);
        copy_str(tw->launch_type, sizeof tw->launch_type, rq->launch_type);
        tw->created_at = rq->created_at;
        res->n_failed = (size_t)rq->count;
        copy_str(res->reason, sizeof res->reason, CL_TK_REASON_TOO_LARGE);
        x->stats.too_large++;
        es_info("RunTask %s: %" PRId64 " task(s) with %zu bytes of overrides: %s (refused here)",
                a->td_arn, a->count, rq->overrides_len, CL_TK_REASON_TOO_LARGE);
        answer_result(x, tw, res);
        es_free(res);
        es_free(tw);
        es_free(rq);
        return 0;
    }
    char key[CL_ETCD_KEY_MAX + 1];
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    if (r == 0 && (cl_tk_request_key(x->cluster, rq->id, key, sizeof key) < 0 ||
                   cl_tk_request_write(rq, &v) < 0))
        r = es_errf(why, whylen, -EINVAL, "the request cannot be written for etcd");
    waiter *w = r == 0 ? es_calloc(1, sizeof *w) : NULL;
    req_op *op = w ? es_calloc(1, sizeof *op) : NULL;
    if (r == 0 && !op)
        r = es_errf(why, whylen, -ENOMEM, "out of memory");
    if (r == 0) {
        copy_str(w->id, sizeof w->id, rq->id);
        w->reply = reply;
        w->deadline = uv_now(x->loop) + AG_CLUSTER_RUN_WAIT_MS;
        copy_str(w->td_arn, sizeof w->td_arn, a->td_arn);
        copy_str(w->group, sizeof w->group, rq->group);
        copy_str(w->started_by, sizeof w->started_by, rq->started_by);
        copy_str(w->launch_type, sizeof w->launch_type, rq->launch_type);
        w->created_at = rq->created_at;
        *op = (req_op){.x = x};
        copy_str(op->id, sizeof op->id, rq->id);
        if (cl_etcd_put(e, key, v.data, v.len, 0, on_req_written, op) < 0)
            r = es_errf(why, whylen, -EIO, "the cluster (etcd) cannot be reached");
    }
    if (r == 0) {
        w->next = x->waiters;
        x->waiters = w;
        x->stats.requests++;
        es_info("RunTask %s: %" PRId64 " task(s) asked of the cluster by %s (request %s)",
                a->td_arn, a->count, a->principal ? a->principal : "?", rq->id);
    } else {
        es_free(w);
        es_free(op);
    }
    es_buf_free(&v);
    es_free(rq);
    return r;
}

/* ---- the API's reads of the cluster -------------------------------------------- */

static void write_cluster_task(ag_cluster_tasks *x, const char *id, es_jw *w)
{
    const st_node *s = find_st(x, id);
    const asg_node *a = find_asg(x, id);
    const stop_node *sp = find_stop(x, id);
    char arn[ARN_MAX];
    es_jw_obj(w);
    task_arn(x, id, arn, sizeof arn);
    es_jw_kstr(w, "taskArn", arn);
    char cluster_arn[ARN_MAX];
    snprintf(cluster_arn, sizeof cluster_arn, "arn:aws:ecs:%s:%s:cluster/%s", x->region, x->account,
             x->cluster);
    es_jw_kstr(w, "clusterArn", cluster_arn);
    const char *family = s ? s->st.family : a->a.family;
    int64_t revision = s ? s->st.revision : a->a.revision;
    char td_arn[ARN_MAX];
    snprintf(td_arn, sizeof td_arn, "arn:aws:ecs:%s:%s:task-definition/%s:%" PRId64, x->region,
             x->account, family, revision);
    es_jw_kstr(w, "taskDefinitionArn", td_arn);
    instance_arn(x, s ? s->st.instance : a->a.instance, arn, sizeof arn);
    es_jw_kstr(w, "containerInstanceArn", arn);
    const char *desired = s ? s->st.desired_status : "RUNNING";
    if (sp && strcmp(desired, "RUNNING") == 0)
        desired = "STOPPED"; /* asked; the owner has not written it yet */
    es_jw_kstr(w, "lastStatus", s ? s->st.last_status : "PROVISIONING");
    es_jw_kstr(w, "desiredStatus", desired);
    es_jw_kstr(w, "group", s ? s->st.group : a->a.group);
    const char *sb = s ? s->st.started_by : a->a.started_by;
    if (sb[0])
        es_jw_kstr(w, "startedBy", sb);
    es_jw_kstr(w, "launchType", s ? s->st.launch_type : a->a.launch_type);
    char num[24];
    snprintf(num, sizeof num, "%" PRId64, s ? s->st.cpu : a->a.cpu);
    es_jw_kstr(w, "cpu", num);
    snprintf(num, sizeof num, "%" PRId64, s ? s->st.memory : a->a.memory);
    es_jw_kstr(w, "memory", num);
    es_jw_kint(w, "createdAt", s ? s->st.created_at : a->a.created_at);
    if (s && s->st.started_at)
        es_jw_kint(w, "startedAt", s->st.started_at);
    if (s && s->st.stopped_at)
        es_jw_kint(w, "stoppedAt", s->st.stopped_at);
    if (s && s->st.stop_code[0])
        es_jw_kstr(w, "stopCode", s->st.stop_code);
    if (s && s->st.stopped_reason[0])
        es_jw_kstr(w, "stoppedReason", s->st.stopped_reason);
    es_jw_key(w, "containers");
    es_jw_arr(w);
    for (size_t i = 0; s && i < s->st.n_containers; i++) {
        es_jw_obj(w);
        task_arn(x, id, arn, sizeof arn);
        es_jw_kstr(w, "taskArn", arn);
        es_jw_kstr(w, "name", s->st.containers[i].name);
        es_jw_kstr(w, "lastStatus", s->st.containers[i].last_status);
        if (s->st.containers[i].has_exit_code)
            es_jw_kint(w, "exitCode", s->st.containers[i].exit_code);
        es_jw_obj_end(w);
    }
    es_jw_arr_end(w);
    es_jw_obj_end(w);
}

static bool known(ag_cluster_tasks *x, const char *ref, char id[CL_TK_ID_HEX + 1])
{
    return ref_id(ref, id) && (find_st(x, id) || find_asg(x, id));
}

static bool api_write_task(void *arg, const char *ref, es_jw *w)
{
    ag_cluster_tasks *x = arg;
    char id[CL_TK_ID_HEX + 1];
    if (!known(x, ref, id))
        return false;
    write_cluster_task(x, id, w);
    return true;
}

static const char *api_task_arn(void *arg, const char *ref)
{
    ag_cluster_tasks *x = arg;
    char id[CL_TK_ID_HEX + 1];
    if (!known(x, ref, id))
        return NULL;
    task_arn(x, id, x->arn_buf, sizeof x->arn_buf);
    return x->arn_buf;
}

static void api_foreach(void *arg, ag_api_cluster_task_fn fn, void *fn_arg)
{
    ag_cluster_tasks *x = arg;
    char arn[ARN_MAX];
    for (st_node *s = x->sts; s; s = s->next) {
        task_arn(x, s->st.task_id, arn, sizeof arn);
        bool stop = find_stop(x, s->st.task_id) != NULL;
        ag_api_cluster_task t = {.id = s->st.task_id,
                                 .arn = arn,
                                 .family = s->st.family,
                                 .started_by = s->st.started_by[0] ? s->st.started_by : NULL,
                                 .group = s->st.group,
                                 .launch_type = s->st.launch_type,
                                 .desired_running =
                                     !stop && strcmp(s->st.desired_status, "RUNNING") == 0};
        if (fn(fn_arg, &t))
            return;
    }
    for (asg_node *a = x->asgs; a; a = a->next) {
        if (find_st(x, a->a.task_id))
            continue;
        task_arn(x, a->a.task_id, arn, sizeof arn);
        ag_api_cluster_task t = {.id = a->a.task_id,
                                 .arn = arn,
                                 .family = a->a.family,
                                 .started_by = a->a.started_by[0] ? a->a.started_by : NULL,
                                 .group = a->a.group,
                                 .launch_type = a->a.launch_type,
                                 .desired_running = !find_stop(x, a->a.task_id)};
        if (fn(fn_arg, &t))
            return;
    }
}

typedef struct stop_op {
    ag_cluster_tasks *x;
    char id[CL_TK_ID_HEX + 1];
    aw_listener_reply *reply;
} stop_op;

static void on_stop_written(void *arg, int err, const cl_answer *a)
{
    stop_op *op = arg;
    ag_cluster_tasks *x = op->x;
    (void)a;
    if (err) {
        ag_api_reply_error(x->api, op->reply, "ServerException",
                           "task: the stop was not written to the cluster (etcd): %s",
                           cl_etcd_strerror(err));
        es_free(op);
        return;
    }
    es_buf out;
    es_buf_init(&out, ANSWER_MAX);
    es_jw w;
    es_jw_init(&w, &out);
    es_jw_obj(&w);
    es_jw_key(&w, "task");
    if (find_st(x, op->id) || find_asg(x, op->id)) {
        /* etcd holds the stop; the mirror may not have brought it back yet */
        if (!find_stop(x, op->id) && x->n_stops < AG_CLUSTER_TASKS_MAX) {
            stop_node *n = es_calloc(1, sizeof *n);
            if (n) {
                copy_str(n->sp.task_id, sizeof n->sp.task_id, op->id);
                n->next = x->stops;
                x->stops = n;
                x->n_stops++;
            }
        }
        write_cluster_task(x, op->id, &w);
    } else {
        es_jw_null(&w);
    }
    es_jw_obj_end(&w);
    if (es_jw_finish(&w) < 0)
        ag_api_reply_error(x->api, op->reply, "ServerException", "the answer is too large");
    else
        aw_listener_reply_ok(op->reply, out.data, out.len);
    es_buf_free(&out);
    es_free(op);
}

static int api_stop(void *arg, const char *ref, const char *reason, aw_listener_reply *reply)
{
    ag_cluster_tasks *x = arg;
    cl_etcd *e = cl_member_etcd(x->member);
    char id[CL_TK_ID_HEX + 1];
    if (!known(x, ref, id))
        return -ENOENT;
    if (!e || x->stopping)
        return -ECANCELED;
    cl_tk_stop sp;
    memset(&sp, 0, sizeof sp);
    copy_str(sp.task_id, sizeof sp.task_id, id);
    copy_str(sp.code, sizeof sp.code, ag_stop_code_name(AG_STOP_USER_INITIATED));
    copy_str(sp.reason, sizeof sp.reason, reason);
    char key[CL_ETCD_KEY_MAX + 1];
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    int r = cl_tk_stop_key(x->cluster, id, key, sizeof key) < 0 || cl_tk_stop_write(&sp, &v) < 0
                ? -EINVAL
                : 0;
    stop_op *op = r == 0 ? es_calloc(1, sizeof *op) : NULL;
    if (r == 0 && !op)
        r = -ENOMEM;
    if (r == 0) {
        *op = (stop_op){.x = x, .reply = reply};
        copy_str(op->id, sizeof op->id, id);
        if ((r = cl_etcd_put(e, key, v.data, v.len, 0, on_stop_written, op)) < 0)
            es_free(op);
    }
    es_buf_free(&v);
    return r;
}

/* ---- for the services across the cluster ----------------------------------------- */

void ag_cluster_tasks_on_placed(ag_cluster_tasks *x, ag_cluster_placed_fn fn, void *arg)
{
    x->placed = fn;
    x->placed_arg = arg;
}

uint64_t ag_cluster_tasks_capacity_gen(const ag_cluster_tasks *x)
{
    return x->freed + x->view_changes;
}

bool ag_cluster_tasks_is_leader(const ag_cluster_tasks *x)
{
    return !x->stopping && cl_member_is_leader(x->member);
}

void ag_cluster_tasks_foreach_group(ag_cluster_tasks *x, const char *group, ag_cluster_task_fn fn,
                                    void *arg)
{
    for (asg_node *a = x->asgs; a; a = a->next) {
        if (strcmp(a->a.group, group) != 0)
            continue;
        st_node *s = find_st(x, a->a.task_id);
        task_arn(x, a->a.task_id, x->arn_buf, sizeof x->arn_buf);
        ag_cluster_task_ref t = {.st = s ? &s->st : NULL,
                                 .as = &a->a,
                                 .stop_asked = find_stop(x, a->a.task_id) != NULL,
                                 .arn = x->arn_buf};
        if (fn(arg, &t))
            return;
    }
    for (st_node *s = x->sts; s; s = s->next) {
        if (strcmp(s->st.group, group) != 0 || find_asg(x, s->st.task_id))
            continue;
        task_arn(x, s->st.task_id, x->arn_buf, sizeof x->arn_buf);
        ag_cluster_task_ref t = {
            .st = &s->st, .stop_asked = find_stop(x, s->st.task_id) != NULL, .arn = x->arn_buf};
        if (fn(arg, &t))
            return;
    }
    for (req_node *r = x->reqs; r; r = r->next) {
        if (strcmp(r->rq.group, group) != 0)
            continue;
        ag_cluster_task_ref t = {.rq = &r->rq};
        if (fn(arg, &t))
            return;
    }
}

static void on_own_req_written(void *arg, int err, const cl_answer *a)
{
    req_op *op = arg;
    ag_cluster_tasks *x = op->x;
    for (req_node *n = x->reqs; n; n = n->next) {
        if (strcmp(n->rq.id, op->id) != 0)
            continue;
        if (err) {
            es_warn("cluster: request %s: not written: %s", op->id, cl_etcd_strerror(err));
            req_remove(x, op->id); /* not coming: the next pass asks again */
        } else if (n->rq.mod_revision == 0) {
            n->rq.mod_revision = a->revision; /* the put's: the key's mod_revision */
            place_next(x);
        }
        break;
    }
    es_free(op);
}

int ag_cluster_tasks_request(ag_cluster_tasks *x, cl_tk_request *rq)
{
    cl_etcd *e = cl_member_etcd(x->member);
    if (!e || x->stopping)
        return -ECANCELED;
    if (x->n_reqs >= AG_CLUSTER_TASKS_MAX)
        return -ENOSPC;
    make_id(rq->id);
    copy_str(rq->from, sizeof rq->from, x->self_id);
    rq->overrides = NULL;
    rq->overrides_len = 0;
    rq->mod_revision = 0;
    char key[CL_ETCD_KEY_MAX + 1];
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    int r = cl_tk_request_key(x->cluster, rq->id, key, sizeof key) < 0
                ? -EINVAL
                : cl_tk_request_write(rq, &v);
    req_node *n = r == 0 ? es_calloc(1, sizeof *n) : NULL;
    req_op *op = n ? es_calloc(1, sizeof *op) : NULL;
    if (r == 0 && !op)
        r = -ENOMEM;
    if (r == 0) {
        *op = (req_op){.x = x};
        copy_str(op->id, sizeof op->id, rq->id);
        n->rq = *rq;
        if ((r = cl_etcd_put(e, key, v.data, v.len, 0, on_own_req_written, op)) < 0)
            r = -ECANCELED;
    }
    if (r == 0) {
        /* counted at once: the next pass must not ask again */
        req_node **tail = &x->reqs;
        while (*tail)
            tail = &(*tail)->next;
        *tail = n;
        x->n_reqs++;
    } else {
        es_free(n);
        es_free(op);
    }
    es_buf_free(&v);
    return r;
}

static void on_own_stop_written(void *arg, int err, const cl_answer *a)
{
    req_op *op = arg;
    (void)a;
    if (err && err != CL_ETCD_E_CANCELED) {
        es_warn("cluster: the stop of task %s was not written: %s", op->id, cl_etcd_strerror(err));
        char key[CL_TK_ID_HEX + 2];
        snprintf(key, sizeof key, "/%s", op->id);
        on_stop_delete(op->x, key); /* not asked: the next pass asks again */
    }
    es_free(op);
}

int ag_cluster_tasks_stop_task(ag_cluster_tasks *x, const char *task_id, ag_stop_code code,
                               const char *reason)
{
    cl_etcd *e = cl_member_etcd(x->member);
    if (!find_st(x, task_id) && !find_asg(x, task_id))
        return -ENOENT;
    if (!e || x->stopping)
        return -ECANCELED;
    if (find_stop(x, task_id))
        return 0; /* asked already */
    cl_tk_stop sp;
    memset(&sp, 0, sizeof sp);
    copy_str(sp.task_id, sizeof sp.task_id, task_id);
    const char *code_name = ag_stop_code_name(code);
    copy_str(sp.code, sizeof sp.code, code_name ? code_name : "");
    copy_str(sp.reason, sizeof sp.reason, reason);
    char key[CL_ETCD_KEY_MAX + 1];
    es_buf v;
    es_buf_init(&v, CL_TK_VALUE_MAX);
    int r = cl_tk_stop_key(x->cluster, task_id, key, sizeof key) < 0 ? -EINVAL
                                                                     : cl_tk_stop_write(&sp, &v);
    stop_node *n = r == 0 && x->n_stops < AG_CLUSTER_TASKS_MAX ? es_calloc(1, sizeof *n) : NULL;
    req_op *op = n ? es_calloc(1, sizeof *op) : NULL;
    if (r == 0 && !op)
        r = -ENOMEM;
    if (r == 0) {
        *op = (req_op){.x = x};
        copy_str(op->id, sizeof op->id, task_id);
        if (cl_etcd_put(e, key, v.data, v.len, 0, on_own_stop_written, op) < 0)
            r = -ECANCELED;
    }
    if (r == 0) {
        n->sp = sp;
        n->next = x->stops;
        x->stops = n;
        x->n_stops++;
        apply_stop(x, n); /* this host's own task stops at once */
    } else {
        es_free(n);
        es_free(op);
    }
    es_buf_free(&v);
    return r;
}

/* ---- the tick ------------------------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
    ag_cluster_tasks *x = t->data;
    uint64_t now = uv_now(x->loop);
    for (waiter *w = x->waiters, *next; w; w = next) {
        next = w->next;
        if (now < w->deadline)
            continue;
        const char *leader = cl_member_leader(x->member);
        es_warn("cluster: request %s: no placement within %d s (leader: %s)", w->id,
                AG_CLUSTER_RUN_WAIT_MS / 1000, leader[0] ? leader : "none");
        ag_api_reply_error(x->api, w->reply, "ServerException",
                           "the cluster's leader (%s) did not place the tasks within %d s; the "
                           "request stays in etcd and may still be placed: see ListTasks",
                           leader[0] ? leader : "none elected", AG_CLUSTER_RUN_WAIT_MS / 1000);
        waiter_free(x, w);
    }
    for (asg_node *a = x->asgs; a; a = a->next) {
        if (a->waiting_td)
            maybe_launch(x, a);
        if (a->st_dirty && !a->st_inflight) {
            a->st_dirty = false;
            write_status(x, a->a.task_id);
        }
    }
    place_next(x);
    reap_next(x);
    expire_next(x);
}

/* Leadership won: the requests waiting are placed now, not at the next
 * tick (the failover's time is the lease's expiry plus this); the view
 * changed: a placement held for the view's catch-up goes on. */
static void on_member_change(void *arg, cl_member_change what)
{
    ag_cluster_tasks *x = arg;
    if (what == CL_MEMBER_CHANGE_VIEW)
        x->view_changes++;
    if (x->stopping || !cl_member_is_leader(x->member))
        return;
    place_next(x);
    if (what == CL_MEMBER_CHANGE_LEADER) {
        reap_next(x);
        expire_next(x);
    }
}

/* ---- metrics, start, stop ------------------------------------------------------ */

static void metrics(void *arg, ag_metrics *m)
{
    ag_cluster_tasks *x = arg;
    ag_metrics_sync_counter(m, "ecs_agent_cluster_run_requests_total",
                            "RunTasks asked of the cluster through this agent", NULL,
                            (double)x->stats.requests);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_placed_total",
                            "Tasks this agent placed as the cluster's leader", NULL,
                            (double)x->stats.placed);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_too_large_refused_total",
                            "RunTasks this agent refused as PLACEMENT_TOO_LARGE without asking "
                            "the leader",
                            NULL, (double)x->stats.too_large);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_place_batches_total",
                            "Placement transactions this agent sent as the cluster's leader", NULL,
                            (double)x->stats.batches);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_place_batch_requests_total",
                            "Requests in the placement transactions this agent sent as leader",
                            NULL, (double)x->stats.batched_requests);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_stopped_expired_total",
                            "STOPPED task records this agent deleted as leader once they were "
                            "older than ECS_SECRETS_CLUSTER_STOPPED_TTL",
                            NULL, (double)x->stats.expired);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_unplaced_total",
                            "Tasks this agent could not place as the cluster's leader", NULL,
                            (double)x->stats.unplaced);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_launched_total",
                            "Tasks placed on this instance and launched here", NULL,
                            (double)x->stats.launched);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_lost_tasks_total",
                            "Tasks of lost container instances this agent marked STOPPED as the "
                            "cluster's leader",
                            NULL, (double)x->stats.lost_marked);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_lost_tasks_stopped_total",
                            "Tasks this host stopped because the cluster had marked them STOPPED",
                            NULL, (double)x->stats.lost_stopped);
    ag_metrics_sync_counter(m, "ecs_agent_cluster_records_bad_total",
                            "Task records in etcd skipped as unreadable", NULL,
                            (double)x->stats.bad);
}

static int mirror(ag_cluster_tasks *x, const char *leaf, void (*put)(void *, const cl_kv *),
                  void (*del)(void *, const char *))
{
    cl_mirror_cbs cbs = {.on_put = put, .on_delete = del, .arg = x};
    return cl_member_mirror(x->member, leaf, &cbs);
}

int ag_cluster_tasks_start(uv_loop_t *loop, cl_member *member, ag_engine *engine, ag_store *store,
                           ag_api *api, ag_api_tasks *tasks, ag_cluster_tasks **out)
{
    *out = NULL;
    if (!cl_member_is_clustered(member))
        return 0;
    ag_cluster_tasks *x = es_calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->loop = loop;
    x->member = member;
    x->engine = engine;
    x->store = store;
    x->api = api;
    cl_bt_pace_init(&x->pace);
    x->expire_cap = CL_TK_EXPIRE_BATCH;
    x->stopped_keep_s = CL_TK_STOPPED_KEEP_DEFAULT;
    copy_str(x->cluster, sizeof x->cluster, cl_member_cluster(member));
    copy_str(x->region, sizeof x->region, ag_api_region(api));
    copy_str(x->account, sizeof x->account, ag_api_account(api));
    copy_str(x->self_id, sizeof x->self_id, cl_member_self(member)->id);
    if (cl_tk_prefix(x->cluster, CL_TK_REQUESTS_LEAF, x->p_req, sizeof x->p_req) < 0 ||
        cl_tk_prefix(x->cluster, CL_TK_ASSIGNMENTS_LEAF, x->p_asg, sizeof x->p_asg) < 0 ||
        cl_tk_prefix(x->cluster, CL_TK_RESULTS_LEAF, x->p_res, sizeof x->p_res) < 0 ||
        cl_tk_prefix(x->cluster, CL_TK_TASKS_LEAF, x->p_task, sizeof x->p_task) < 0 ||
        cl_tk_prefix(x->cluster, CL_TK_STOPS_LEAF, x->p_stop, sizeof x->p_stop) < 0) {
        es_free(x);
        return -EINVAL;
    }
    uv_timer_init(loop, &x->timer);
    x->timer.data = x;
    /* from here x is the agent's to stop and free, whatever follows */
    *out = x;
    int r = uv_timer_start(&x->timer, on_tick, AG_CLUSTER_TICK_MS, AG_CLUSTER_TICK_MS);
    if (r == 0)
        r = ag_engine_observe(engine, on_task_changed, x);
    if (r == 0)
        r = ag_api_add_metrics_hook(api, metrics, x);
    if (r == 0)
        r = cl_member_subscribe(member, on_member_change, x);
    /* the assignments before the requests: the leader counts reservations */
    if (r == 0)
        r = mirror(x, CL_TK_ASSIGNMENTS_LEAF, on_asg_put, on_asg_delete);
    if (r == 0)
        r = mirror(x, CL_TK_TASKS_LEAF, on_st_put, on_st_delete);
    if (r == 0)
        r = mirror(x, CL_TK_STOPS_LEAF, on_stop_put, on_stop_delete);
    if (r == 0)
        r = mirror(x, CL_TK_RESULTS_LEAF, on_res_put, NULL);
    if (r == 0)
        r = mirror(x, CL_TK_REQUESTS_LEAF, on_req_put, on_req_delete);
    if (r < 0)
        return r;
    ag_api_tasks_cluster c = {.run = run,
                              .write_task = api_write_task,
                              .task_arn = api_task_arn,
                              .foreach_task = api_foreach,
                              .stop = api_stop,
                              .arg = x};
    ag_api_tasks_set_cluster(tasks, &c);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    ag_cluster_tasks *x = h->data;
    x->timer_closed = true;
    if (x->free_asked)
        ag_cluster_tasks_free(x);
}

void ag_cluster_tasks_stop(ag_cluster_tasks *x)
{
    if (!x || x->stopping)
        return;
    x->stopping = true;
    while (x->waiters) {
        ag_api_reply_error(x->api, x->waiters->reply, "ServerException",
                           "the agent is stopping; the request may still be placed (ListTasks)");
        waiter_free(x, x->waiters);
    }
    ag_engine_unobserve(x->engine, on_task_changed, x);
    uv_close((uv_handle_t *)&x->timer, on_timer_closed);
}

void ag_cluster_tasks_free(ag_cluster_tasks *x)
{
    if (!x)
        return;
    if (!x->stopping)
        ag_cluster_tasks_stop(x);
    if (!x->timer_closed) {
        x->free_asked = true;
        return;
    }
    while (x->reqs)
        req_remove(x, x->reqs->rq.id);
    while (x->asgs) {
        asg_node *n = x->asgs;
        x->asgs = n->next;
        es_free(n->ov);
        es_free(n);
    }
    while (x->sts) {
        st_node *n = x->sts;
        x->sts = n->next;
        es_free(n);
    }
    while (x->stops) {
        stop_node *n = x->stops;
        x->stops = n->next;
        es_free(n);
    }
    es_free(x->hosts);
    es_free(x);
}

void ag_cluster_tasks_get_stats(const ag_cluster_tasks *x, ag_cluster_tasks_stats *out)
{
    *out = x->stats;
}
