/* docker.h - a Docker Engine API client on raw libuv pipes (no library, no curl).
 *
 * Design
 * - dk_client is bound to one `unix://` socket path. It keeps a small bounded
 *   pool of keep-alive connections (dk_options.max_conns); each connection
 *   carries one request at a time (no pipelining). Requests beyond the pool
 *   wait in a FIFO queue.
 * - The API version is negotiated with GET /_ping before the first versioned
 *   request: min(ours = 1.41, the server's Api-Version header; no header means
 *   1.24). Every later path is prefixed "/v1.xx". A failed ping fails the
 *   queued requests with its error and is tried again by the next request.
 * - Every request has a deadline (dk_options.timeout_ms, longer for stop by
 *   its grace period); every response is parsed by common/http with limits on
 *   head bytes, header count and body bytes, each with its own error.
 * - Responses are turned into typed results: a non-2xx status becomes a
 *   dk_err (404 DK_E_NOT_FOUND, 409 DK_E_CONFLICT, ...) carrying Docker's
 *   {"message"}.
 * - Secrets: Env values, log-driver options and X-Registry-Auth travel in a
 *   request body/head buffer that is wiped as soon as the write completes
 *   (and on every failure path). The library never logs; dk_create_spec_dump
 *   renders a spec with Env and LogConfig.Config values masked for debug logs.
 * - The events watcher (dk_events) owns one dedicated connection: /_ping,
 *   then GET /events filtered to containers labelled
 *   com.amazonaws.ecs.task-arn; the chunked body is cut into lines (each line
 *   has a maximum) and decoded into typed events. When the stream ends or
 *   cannot be opened it reconnects with capped exponential backoff, resuming
 *   with since=<last event time> and telling its user (on_connected with
 *   reconnected=true) so that the agent reconciles with a list: dockerd's
 *   event log does not survive a dockerd restart.
 *
 * The program must ignore SIGPIPE (libuv writes to pipes with write(2)): a
 * dockerd that goes away mid-write is then an -EPIPE error, not a kill.
 *
 * Lifetimes: all callbacks run on the loop thread. Strings in results are
 * valid only during the callback. dk_client_free / dk_events_free may be
 * called from inside a callback; pending operations then complete with
 * -ECANCELED (events: no more callbacks) and memory is released when the
 * last uv handle has closed, so the loop must keep running until then. */
#ifndef ES_DOCKER_DOCKER_H
#define ES_DOCKER_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/buf.h"
#include "common/http.h"

#define DK_API_MAJOR 1
#define DK_API_MINOR 41
#define DK_TASK_ARN_LABEL "com.amazonaws.ecs.task-arn"

typedef enum dk_err {
    DK_E_BAD_REQUEST = -2001,   /* 400 */
    DK_E_NOT_FOUND = -2002,     /* 404 */
    DK_E_CONFLICT = -2003,      /* 409 */
    DK_E_SERVER = -2004,        /* 500 */
    DK_E_STATUS = -2005,        /* another unexpected status */
    DK_E_PROTOCOL = -2006,      /* a 2xx answer we cannot understand */
    DK_E_PULL = -2007,          /* an error line in an image pull stream */
    DK_E_LINE_TOO_LONG = -2008, /* a stream line past its maximum */
    DK_E_BAD_HOST = -2009,      /* not a unix:// address */
} dk_err;

/* Text for dk_err, es_http_err or negative errno. */
const char *dk_strerror(int err);

/* The outcome of every operation. err is 0, a dk_err, an es_http_err or a
 * negative errno (-ETIMEDOUT, -ENOENT for a missing socket, -ECONNREFUSED,
 * -ECANCELED). status is the HTTP status when an answer arrived, else 0;
 * message is Docker's {"message"} (or the pull stream's error), else NULL. */
typedef struct dk_result {
    int err;
    int status;
    const char *message;
} dk_result;

typedef struct dk_options {
    const char *host;    /* "unix:///var/run/docker.sock" */
    uint64_t timeout_ms; /* per request; 0 = 30000 */
    /* A create and a start wait longer: a busy dockerd (many launches at
     * once, a slow storage driver) may take minutes over them, and giving up
     * early reports a failure over a container Docker went on to create or
     * start. 0 = the ECS agent's defaults (ECS_CONTAINER_CREATE_TIMEOUT 4m,
     * ECS_CONTAINER_START_TIMEOUT 3m). */
    uint64_t create_timeout_ms;
    uint64_t start_timeout_ms;
    size_t max_conns;        /* pool size; 0 = 4 */
    size_t max_header_bytes; /* response limits; 0 = 16 KiB, 100, 8 MiB */
    size_t max_headers;
    size_t max_body;
} dk_options;

typedef struct dk_client dk_client;

/* 0, -ENOMEM, DK_E_BAD_HOST (or -ENAMETOOLONG for a path too long for a unix
 * socket). Does not connect yet. */
int dk_client_create(uv_loop_t *loop, const dk_options *opt, dk_client **out);
/* Cancels pending operations (their callbacks run with -ECANCELED before
 * this returns), closes connections, frees when the handles have closed. */
void dk_client_free(dk_client *c);
/* "1.41" once negotiated, else NULL. */
const char *dk_client_api_version(const dk_client *c);
/* CPU-cheap counters (benchmarks/metrics). retries: requests sent a second
 * time on a fresh connection because the kept-alive one they were sent on
 * turned out to be closed by dockerd (see conn.c, "Retries"). */
typedef struct dk_stats {
    uint64_t requests, connects, reused, failures, retries;
} dk_stats;
void dk_client_stats(const dk_client *c, dk_stats *out);

typedef void (*dk_done_cb)(void *ud, const dk_result *r);

/* GET /_ping; (re)negotiates the API version. */
int dk_ping(dk_client *c, dk_done_cb cb, void *ud);

typedef struct dk_version_info {
    const char *version, *api_version, *min_api_version, *os, *arch;
} dk_version_info;
typedef void (*dk_version_cb)(void *ud, const dk_result *r, const dk_version_info *v);
int dk_version(dk_client *c, dk_version_cb cb, void *ud);

typedef struct dk_kv {
    const char *key;
    const char *value;
} dk_kv;

/* ---- issue 20: what a ContainerDefinition's runtime members give Docker.
 * Kept apart from dk_create_spec's own fields (one pointer in it) so that
 * the two grow without touching each other. ---- */
typedef struct dk_ulimit {
    const char *name;
    int64_t soft, hard;
} dk_ulimit;

typedef struct dk_device {
    const char *host, *container, *permissions; /* PathOnHost, PathInContainer, "rwm" */
} dk_device;

/* Config.Healthcheck: Test as given ("CMD", ... or "CMD-SHELL", line);
 * durations in seconds, written in nanoseconds as Docker takes them. */
typedef struct dk_healthcheck {
    const char *const *test;
    size_t ntest;
    int64_t interval_s, timeout_s, start_period_s;
    int64_t retries;
} dk_healthcheck;

typedef struct dk_create_runtime {
    const char *hostname;           /* Config.Hostname */
    bool open_stdin, tty;           /* Config.OpenStdin, Config.Tty */
    bool network_disabled;          /* Config.NetworkDisabled */
    const char *const *extra_hosts; /* HostConfig.ExtraHosts, "host:ip" */
    size_t nextra_hosts;
    const char *const *dns; /* HostConfig.Dns */
    size_t ndns;
    const char *const *dns_search; /* HostConfig.DnsSearch */
    size_t ndns_search;
    bool privileged, readonly_rootfs; /* HostConfig.Privileged, ReadonlyRootfs */
    const char *const *security_opt;  /* HostConfig.SecurityOpt */
    size_t nsecurity_opt;
    const dk_ulimit *ulimits; /* HostConfig.Ulimits */
    size_t nulimits;
    const dk_kv *sysctls; /* HostConfig.Sysctls */
    size_t nsysctls;
    bool has_memory_reservation;
    int64_t memory_reservation_bytes;             /* HostConfig.MemoryReservation */
    const char *const *cap_add, *const *cap_drop; /* HostConfig.CapAdd, CapDrop */
    size_t ncap_add, ncap_drop;
    const dk_device *devices; /* HostConfig.Devices */
    size_t ndevices;
    bool init; /* HostConfig.Init */
    bool has_shm_size, has_memory_swap, has_swappiness;
    int64_t shm_size_bytes, memory_swap_bytes; /* HostConfig.ShmSize, MemorySwap */
    int64_t swappiness;                        /* HostConfig.MemorySwappiness */
    const dk_kv *tmpfs;                        /* HostConfig.Tmpfs: path -> "size=Nm,options" */
    size_t ntmpfs;
    const dk_healthcheck *health; /* Config.Healthcheck; NULL: the image's */
} dk_create_runtime;

/* HostConfig.Mounts[] of Type "bind": a host path shown at target. The
 * agent's secret files (agent/secrets/files.h) are mounted read-only. */
typedef struct dk_mount {
    const char *source, *target; /* Source (host), Target (container): absolute */
    bool read_only;
} dk_mount;

/* A published port: Config.ExposedPorts "PORT/PROTO", and with
 * dk_create_spec.publish_ports, HostConfig.PortBindings (host_port 0:
 * Docker picks one). */
typedef struct dk_port {
    int container_port, host_port;
    const char *protocol; /* "tcp" | "udp" */
} dk_port;

/* A container create, as the ContainerCreate body carries it: the one writer
 * of that body (the agent fills a spec too: agent/secrets/inject.h). Absent fields
 * (NULL, 0, has_* false) are left out, so Docker applies its defaults. */
typedef struct dk_create_spec {
    const char *name; /* may be NULL */
    const char *image;
    const char *const *cmd; /* NULL: the image's; an empty list is written as [] */
    size_t ncmd;
    const char *const *entrypoint; /* NULL: the image's */
    size_t nentrypoint;
    const dk_kv *env; /* values are secrets */
    size_t nenv;
    const char *const *env_lines; /* Docker's own "NAME=value" form, after env; secrets;
                                     non-NULL: Env is written even when empty */
    size_t nenv_lines;
    const dk_kv *labels;
    size_t nlabels;
    const char *working_dir, *user; /* NULL: the image's */
    bool has_stop_timeout;
    int64_t stop_timeout_s;
    const char *log_driver; /* NULL: the daemon's default */
    const dk_kv *log_opts;  /* values are secrets */
    size_t nlog_opts;
    const char *network_mode;        /* NULL: default */
    const char *pid_mode, *ipc_mode; /* HostConfig.PidMode, IpcMode; NULL: Docker's default */
    bool has_memory, has_cpu;
    int64_t memory_bytes; /* HostConfig.Memory */
    int64_t cpu_shares;   /* HostConfig.CpuShares */
    /* ---- issue 20 (dk_create_runtime above); NULL: none ---- */
    const dk_create_runtime *rt;
    const dk_mount *mounts; /* HostConfig.Mounts, bind mounts; none when nmounts is 0 */
    size_t nmounts;
    const char *const *binds; /* HostConfig.Binds "source:target[:ro]" (a host path or a
                                 volume name as source) */
    size_t nbinds;
    const char *const *volumes_from; /* HostConfig.VolumesFrom "container[:ro]" */
    size_t nvolumes_from;
    const dk_port *ports; /* Config.ExposedPorts */
    size_t nports;
    bool publish_ports; /* and HostConfig.PortBindings (not in the host network mode) */
} dk_create_spec;

typedef void (*dk_create_cb)(void *ud, const dk_result *r, const char *id);
/* The spec is serialized before this returns: the caller may wipe its
 * values right away. */
int dk_container_create(dk_client *c, const dk_create_spec *spec, dk_create_cb cb, void *ud);
/* The same with a ContainerCreate body the caller built (it may carry
 * fields dk_create_spec has not: entrypoint, user, resources). The body is
 * copied into the request, which is wiped once written: the caller wipes its
 * own copy. */
int dk_container_create_json(dk_client *c, const char *name, const char *body, size_t len,
                             dk_create_cb cb, void *ud);
/* Debug rendering of a spec with Env and log option values masked. */
int dk_create_spec_dump(const dk_create_spec *spec, es_buf *out);
/* The ContainerCreate body dk_container_create sends (values in clear: out
 * must be released with es_buf_free_secret). For benchmarks and tests. */
int dk_create_body(const dk_create_spec *spec, es_buf *out);

/* not_modified is reported as success with r->status 304. */
int dk_container_start(dk_client *c, const char *id, dk_done_cb cb, void *ud);
int dk_container_stop(dk_client *c, const char *id, int timeout_s, dk_done_cb cb, void *ud);
/* signal NULL means SIGKILL. */
int dk_container_kill(dk_client *c, const char *id, const char *signal, dk_done_cb cb, void *ud);
int dk_container_remove(dk_client *c, const char *id, bool force, dk_done_cb cb, void *ud);

typedef struct dk_container_info {
    const char *id, *name, *image, *status; /* status: created, running, exited, ... */
    bool running, oom_killed;
    int exit_code;
    int64_t pid;
    const char *started_at, *finished_at;
    const dk_kv *labels;
    size_t nlabels;
    /* Config.Env and HostConfig.LogConfig: may hold secrets. The answer is
     * wiped when the callback returns. */
    const char *const *env;
    size_t nenv;
    const char *log_driver;
    const dk_kv *log_opts;
    size_t nlog_opts;
    const char *network_mode;
} dk_container_info;
typedef void (*dk_inspect_cb)(void *ud, const dk_result *r, const dk_container_info *info);
int dk_container_inspect(dk_client *c, const char *id, dk_inspect_cb cb, void *ud);

typedef struct dk_container_summary {
    const char *id, *name, *image, *state, *status;
    const dk_kv *labels;
    size_t nlabels;
} dk_container_summary;
typedef void (*dk_list_cb)(void *ud, const dk_result *r, const dk_container_summary *items,
                           size_t n);
/* All containers (running or not) carrying every label filter ("key" or
 * "key=value"). */
int dk_container_list(dk_client *c, const char *const *label_filters, size_t nfilters,
                      dk_list_cb cb, void *ud);

typedef struct dk_image_info {
    const char *id;
} dk_image_info;
typedef void (*dk_image_cb)(void *ud, const dk_result *r, const dk_image_info *info);
int dk_image_inspect(dk_client *c, const char *name, dk_image_cb cb, void *ud);
/* POST /images/create: the progress stream is consumed line by line; an
 * "error" line after the 200 fails with DK_E_PULL and its message.
 * registry_auth (may be NULL) is the X-Registry-Auth value, a secret, at
 * most DK_REGISTRY_AUTH_MAX bytes (-EMSGSIZE). */
#define DK_REGISTRY_AUTH_MAX (64u * 1024u - 64u) /* fits the extra-header buffer */
int dk_image_pull(dk_client *c, const char *image, const char *tag, const char *registry_auth,
                  dk_done_cb cb, void *ud);

/* ---- volumes ---- */

#define DK_VOLUME_NAME_MAX 255

/* POST /volumes/create. Docker answers an existing volume of the same name
 * and driver as created (idempotent). */
typedef struct dk_volume_spec {
    const char *name;
    const char *driver; /* NULL: local */
    const dk_kv *driver_opts;
    size_t ndriver_opts;
    const dk_kv *labels;
    size_t nlabels;
} dk_volume_spec;
int dk_volume_create(dk_client *c, const dk_volume_spec *spec, dk_done_cb cb, void *ud);
/* GET /volumes/NAME: DK_E_NOT_FOUND when there is none. */
int dk_volume_inspect(dk_client *c, const char *name, dk_done_cb cb, void *ud);
/* DELETE /volumes/NAME (DK_E_CONFLICT while a container uses it). */
int dk_volume_remove(dk_client *c, const char *name, dk_done_cb cb, void *ud);
/* The POST /volumes/create body (tests). */
int dk_volume_create_body(const dk_volume_spec *spec, es_buf *out);

/* ---- events ---- */

typedef enum dk_event_type {
    DK_EV_OTHER,
    DK_EV_CREATE,
    DK_EV_START,
    DK_EV_DIE,
    DK_EV_OOM,
    DK_EV_DESTROY,
    DK_EV_HEALTH, /* Action "health_status: healthy" (or unhealthy, starting) */
} dk_event_type;

typedef struct dk_event {
    dk_event_type type;
    const char *action; /* Docker's Action */
    const char *id;
    const char *name;     /* may be NULL */
    const char *image;    /* may be NULL */
    const char *task_arn; /* the label's value, may be NULL */
    bool has_exit_code;
    int exit_code;      /* die */
    const char *health; /* DK_EV_HEALTH: "healthy", "unhealthy", "starting"; else NULL */
    int64_t time;       /* seconds */
    int64_t time_nano;  /* 0 when absent */
} dk_event;

typedef struct dk_events_cbs {
    void (*on_event)(void *ud, const dk_event *ev);
    /* The stream is open. reconnected is true after a loss: events while
     * away may be missing (dockerd restarted), reconcile with a list. */
    void (*on_connected)(void *ud, bool reconnected);
    /* The stream failed or could not be opened; the watcher retries after
     * delay_ms (attempt counts from 1). */
    void (*on_error)(void *ud, int err, unsigned attempt, uint64_t delay_ms);
} dk_events_cbs;

typedef struct dk_events_options {
    uint64_t backoff_min_ms;     /* 0 = 100 */
    uint64_t backoff_max_ms;     /* 0 = 10000 */
    size_t max_line;             /* 0 = 64 KiB */
    uint64_t connect_timeout_ms; /* until the 200 head; 0 = 10000 */
} dk_events_options;

typedef struct dk_events dk_events;
/* Starts watching with the client's host. opt may be NULL. */
int dk_events_start(dk_client *c, const dk_events_options *opt, const dk_events_cbs *cbs, void *ud,
                    dk_events **out);
/* Stops; no callback runs after this returns. */
void dk_events_free(dk_events *e);

#endif
