/* engine_int.h - what the engine's three files share (internal to
 * agent/tasks/engine*.c; the engine's face is engine.h):
 *   engine.c  the tasks in memory, the API (RunTask, StopTask, ...), life
 *             (create, start, close) and the small helpers below;
 *   launch.c  launching (resolve -> pull -> create -> start, the launch
 *             phase's one transition) and stopping (stop, remove);
 *   watch.c   Docker's view: the events stream, the reconciling lists,
 *             the sweep of stopped tasks.
 * Every lastStatus change goes through ag_eng_move (ag_task_transition with
 * the engine's commit); every launch phase change through ag_eng_set_phase. */
#ifndef AG_TASKS_ENGINE_INT_H
#define AG_TASKS_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/tasks/engine.h"

#define DEFAULT_STOP_TIMEOUT_S 30 /* ECS's default stopTimeout */
#define MAX_OBSERVERS 8

/* A task definition (and RunTask's overrides) shared by the tasks of one
 * RunTask call. */
typedef struct tdref {
    unsigned refs;
    ag_taskdef *td; /* NULL when the revision is gone from the store */
    ag_overrides *ov;
} tdref;

/* Why a reconciling list was taken. */
typedef enum rec_trigger {
    REC_CONNECT,   /* the events stream connected for the first time */
    REC_RECONNECT, /* it came back after a loss: events may be missing */
    REC_PERIODIC,  /* the interval: dockerd drops events for a slow reader */
    REC_TRIGGERS
} rec_trigger;

extern const char *const ag_eng_rec_trigger_names[REC_TRIGGERS];

typedef enum launch_phase {
    L_RESOLVE, /* secrets being fetched */
    L_CREATE,  /* containers[step] being created */
    L_START,   /* containers[step] being started */
    L_DONE,    /* launched (or adopted after a restart) */
} launch_phase;

typedef struct etask etask;
struct etask {
    etask *prev, *next;
    ag_engine *e;
    ag_task *t;
    tdref *td;
    launch_phase phase;
    size_t step;
    size_t pulled_step; /* step+1 of the last pull, so a pull is tried once */
    unsigned ops;       /* Docker or resolver calls in flight for this task */
    ag_resolution *res; /* values, between resolution and the last create */
    bool cleaned;       /* stopped containers removed */
    /* a stop Docker did not carry out (timeout, 5xx, lost connection): the
     * container may still run, so the task waits for its die event or the
     * next sweep's retry instead of being reported STOPPED */
    bool stop_retry;
    unsigned stop_failures;
    bool dirty;           /* changed since its row was last written (ag_eng_flush) */
    uint64_t written_gen; /* e->write_gen of its last write behind (ag_eng_flush) */
    bool unpersisted;     /* the store did not take its last write: the sweep retries */
    bool refreshing;      /* a resolution for its refresh files is in flight */
    bool volumes_ready;   /* its Docker volumes were asked for (task_volumes.c) */
    bool volumes_removed; /* its task-scoped volumes were removed */
    uint64_t launch_started_ms;
    /* uv_now when the container at this start step began waiting for its
     * dependsOn conditions; 0 when it is not waiting (launch.c) */
    uint64_t dep_wait_ms;
    /* e->lists_issued when a create of this task last answered: a list
     * issued at or before that may predate the container */
    uint64_t created_at_list;
    /* e->lists_issued when it went STOPPED: a list issued at or before that
     * may show its container still running */
    uint64_t stopped_at_list;
};

/* What a container's create gets of mountPoints, volumesFrom and
 * portMappings (task_volumes.c): owned strings, freed after the create. */
typedef struct ag_eng_vspec {
    char **binds; /* "source:target[:ro]" */
    size_t nbinds;
    char **volumes_from; /* "docker id[:ro]" */
    size_t nvolumes_from;
    dk_port *ports;
    size_t nports;
} ag_eng_vspec;

/* One Docker call about one container of one task. */
typedef struct cop {
    etask *et;
    size_t idx;
} cop;

struct ag_engine {
    ag_engine_config cfg;
    char *region, *account, *cluster, *network_mode;
    char *files_dir; /* secret files (agent/secrets/files.h) */
    /* in a cluster: the instance's ARN and the list's filter "label=ARN" */
    char *instance_arn, *instance_filter;
    uv_loop_t *loop;
    etask *tasks; /* newest first */
    size_t ntasks;
    dk_events *events;
    uv_timer_t sweep, rec;
    bool started, closing, sweep_closed, rec_closed;
    /* task rows written behind: the dirty ones at the end of the iteration,
     * committed without waiting for the disk; the log's fdatasync on libuv's
     * thread pool (sync_req), one at a time, another after it when writes
     * came meanwhile (sync_again). Generations: write_gen counts the writes
     * behind, sync_gen is the last one the sync in flight covers,
     * durable_gen the last one a sync made durable. After a failed sync the
     * rows are written durably (sync_failed) until a write succeeds. */
    uv_check_t flush;
    bool flush_ready, flush_armed, flush_closed;
    size_t ndirty;
    uv_fs_t sync_req;
    bool syncing, sync_again, sync_failed;
    uint64_t write_gen, sync_gen, durable_gen;
    /* reconciling lists: one at a time; another asked for while one is in
     * flight runs after it */
    uint64_t lists_issued;
    bool listing, list_again;
    rec_trigger list_trigger, again_trigger;
    uint64_t reconcile_ms; /* 0: no periodic reconcile */
    unsigned inflight;     /* every callback the engine still waits for */
    void (*done)(void *arg);
    void *done_arg;
    struct {
        ag_engine_observer fn;
        void *arg;
    } observers[MAX_OBSERVERS];
    size_t nobservers;
    ag_engine_env_fn env_fn; /* ag_engine_set_env_hook; NULL: none */
    void *env_arg;
    ag_engine_check_fn check_fn; /* ag_engine_set_launch_check; NULL: none */
    void *check_arg;
    ag_series *m_launched, *m_launch_seconds, *m_resolve_seconds, *m_events;
    ag_series *m_rec_runs[REC_TRIGGERS], *m_rec_failed, *m_rec_exited, *m_rec_vanished,
        *m_rec_skipped;
};

void ag_eng_advance(etask *et);                                 /* launch.c */
void ag_eng_bind_refs(etask *et);                               /* engine.c */
bool ag_eng_dep_waiting(const etask *et);                       /* launch.c */
const ag_container_def *ag_eng_cdef(const etask *et, size_t i); /* engine.c */
int ag_eng_commit_task(void *arg, const ag_task *t);            /* engine.c */
bool ag_eng_container_running(const ag_task_container *c);      /* engine.c */
void ag_eng_container_set(etask *et, size_t i, const char *docker_id, const char *status,
                          const int *exit_code, const char *reason);                 /* engine.c */
bool ag_eng_container_stopped(const ag_task_container *c);                           /* engine.c */
bool ag_eng_cop_end(void *ud, etask **et, size_t *idx);                              /* engine.c */
bool ag_eng_essential(const etask *et, size_t i);                                    /* engine.c */
bool ag_eng_external(const etask *et);                                               /* engine.c */
void ag_eng_fail_container(etask *et, size_t i, const char *reason);                 /* engine.c */
void ag_eng_fail_launch(etask *et, const char *reason);                              /* engine.c */
void ag_eng_flush(ag_engine *e);                                                     /* engine.c */
etask *ag_eng_find(ag_engine *e, const char *task);                                  /* engine.c */
etask *ag_eng_find_by_container(ag_engine *e, const char *docker_id, size_t *idx);   /* engine.c */
void ag_eng_issue_container_op(etask *et, size_t i, bool remove);                    /* launch.c */
void ag_eng_maybe_free(ag_engine *e);                                                /* engine.c */
void ag_eng_move(etask *et, ag_task_status to);                                      /* engine.c */
int64_t ag_eng_now_s(void);                                                          /* engine.c */
void ag_eng_on_connected(void *ud, bool reconnected);                                /* watch.c */
void ag_eng_on_event(void *ud, const dk_event *ev);                                  /* watch.c */
void ag_eng_on_events_error(void *ud, int err, unsigned attempt, uint64_t delay_ms); /* watch.c */
void ag_eng_on_resolved(void *arg, ag_resolution *res, const char *reason);          /* launch.c */
void ag_eng_on_sweep(uv_timer_t *timer);                                             /* watch.c */
void ag_eng_op_begin(etask *et);                                                     /* engine.c */
bool ag_eng_op_end(etask *et);                                                       /* engine.c */
void ag_eng_persist(etask *et);                                                      /* engine.c */
etask *ag_eng_readopt(etask *old);                                                   /* engine.c */
int ag_eng_record_secrets(etask *et, const ag_resolution *res);                      /* engine.c */
void ag_eng_release_values(etask *et);                                               /* engine.c */
void ag_eng_set_phase(etask *et, launch_phase to);                                   /* launch.c */
int ag_eng_stop_timeout(const etask *et, size_t i);                                  /* engine.c */
/* task_files.c: a task's secret files. Written once resolved (0, or a
 * negative errno with reason an ECS-shaped stoppedReason; nothing is left on
 * failure); mounted per container; removed when the task stops, and at start
 * for tasks stopped or unknown; refreshed after a drift round. */
int ag_eng_files_write(etask *et, const ag_resolution *res, char *reason, size_t rlen);
int ag_eng_files_mounts(const etask *et, size_t ci, ag_eng_mounts *out);
void ag_eng_files_remove(etask *et);
void ag_eng_files_sweep(ag_engine *e);
/* A Docker-socket container's files (<files_dir>/docker/<task id>): removed
 * with the container whose task-ARN label is task_arn; kept by a reconciling
 * list only for the containers it shows and the tasks still waiting for
 * theirs. */
void ag_eng_files_remove_docker(ag_engine *e, const char *task_arn);
void ag_eng_files_sweep_docker(ag_engine *e, const dk_container_summary *items, size_t n);

/* task_volumes.c: a task's volumes. prepare asks Docker for them before the
 * first create (true: calls are in flight, wait); remove drops the
 * task-scoped ones once its containers are removed; create_index is the
 * container created next (a volumesFrom source before the container naming
 * it); volume_spec is what container ci's create gets. */
bool ag_eng_volumes_prepare(etask *et);
void ag_eng_volumes_remove(etask *et);
int ag_eng_volume_name(const etask *et, size_t v, char *out, size_t n);
size_t ag_eng_create_index(const etask *et);
int ag_eng_volume_spec(const etask *et, size_t ci, ag_eng_vspec *out);
void ag_eng_vspec_free(ag_eng_vspec *v);

#endif
