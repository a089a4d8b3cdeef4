/* agent.c - creates the agent's parts and closes them in reverse (agent.h). */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/api/api.h"
#include "agent/api/instances.h"
#include "agent/cluster_services.h"
#include "agent/cluster_tasks.h"
#include "cluster/tasks.h"
#include "agent/cluster_td.h"
#include "agent/api/services.h"
#include "agent/api/tags.h"
#include "agent/api/tasks.h"
#include "agent/api/task_waits.h"
#include "agent/cluster.h"
#include "agent/endpoints/endpoints.h"
#include "agent/tasks/td_awslogs.h"
#include "agent/intake/docker.h"
#include "agent/secrets/drift.h"
#include "agent/tasks/engine.h"
#include "agent/memtrim.h"
#include "agent/metrics.h"
#include "agent/rotator.h"
#include "agent/secrets/preflight.h"

#include "agent/services/scheduler.h"
#include "agent/secrets/resolve.h"
#include "agent/store/store.h"
#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/local/local.h"
#include "aws/listener.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/secure.h"
#include "docker/docker.h"
#include "docker/proxy.h"

#include <grp.h>

#include <stdlib.h>

#define URL_MAX 300

struct ag_agent {
    ag_daemon *d;
    const cf_config *cfg;
    bool embedded;
    char status[AG_STATUS_MAX]; /* READY=1's STATUS= */
    char url[URL_MAX];          /* the listener, as clients reach it */
    char self_url[URL_MAX];     /* where the agent's own AWS client reaches the embedded
                                   endpoints: url, or through self_socket */
    char self_socket[AW_LISTENER_PATH_MAX + 1]; /* embedded mode: the inner listener's */
    al_ctx *al;
    aw_listener *server;
    aw_listener *inner; /* embedded mode: the agent's own calls, on a unix socket
                           (start_self_socket says why) */
    ag_store *store;
    dk_client *docker;
    dk_proxy *proxy;          /* ECS_SECRETS_DOCKER_PROXY, NULL when off */
    ag_intake_docker *intake; /* what the proxy hands its creates to */
    aw_client *aws;
    aw_creds *creds;
    uint8_t fp_key[AG_FINGERPRINT_KEY_LEN];
    ag_preflight *preflight; /* NULL when turned off */
    ag_resolver *resolver;
    ag_metrics *metrics;
    ag_engine *engine;
    ag_endpoints *endpoints; /* ECS_SECRETS_TASK_ENDPOINT; NULL when off */
    ag_api *api;
    ag_api_tasks *api_tasks;
    ag_task_waits *task_waits; /* DescribeTasks held while a task moves */
    ag_svc_sched *sched;
    ag_drift *drift;
    ag_api_services *api_services;
    ag_api_tags *api_tags;
    ag_api_instances *api_instances;
    cl_member *member;               /* the cluster (agent/cluster.h): etcd's, or this host alone */
    ag_cluster_td *cluster_td;       /* the cluster's task definitions (NULL alone) */
    ag_cluster_tasks *cluster_tasks; /* RunTask across the hosts (NULL alone) */
    ag_cluster_services *cluster_services; /* services across the hosts (NULL alone) */
    ag_rotator *rotator;                   /* embedded mode: due rotations (rotator.h) */
    uv_timer_t retry; /* Docker's ping again; once it answered, the trim after start-up,
                         then the heap's check every AG_MEMTRIM_HEAP_PERIOD_MS */
    size_t heap_mark; /* ag_memtrim_heap's: the heap's free bytes after the last trim */
    bool retry_open;
    bool docker_up, stopping;
    unsigned pings_failed;
    int pending;       /* the close + the timer's close */
    int closing_parts; /* parts told to close that have not reported closed */
};

static void agent_release(ag_agent *a)
{
    if (--a->pending > 0)
        return;
    es_wipe(a->fp_key, sizeof a->fp_key);
    es_free(a);
}

/* ----------------------------------------------------------------- close */

/* The stop closes every part at once rather than one after another: a part
 * that waited for the next to close before starting its own close could
 * still call into one already freed (a preflight finishing after the stop
 * began asked a freed credentials provider for an AssumeRole: issue 24's
 * crash). Each part, once closing, starts nothing new and asks nothing of
 * the others; what it has in flight ends through the cancellation of the
 * clients it waits on, and it reports closed once the last of that has
 * ended. The store, the embedded services and the metrics, which the parts
 * use to the end, go when the last part has closed. */
static void all_closed(ag_agent *a)
{
    ag_api_free(a->api);
    a->api = NULL;
    ag_api_tasks_free(a->api_tasks);
    a->api_tasks = NULL;
    ag_task_waits_free(a->task_waits);
    a->task_waits = NULL;
    ag_api_services_free(a->api_services);
    a->api_services = NULL;
    ag_api_tags_free(a->api_tags);
    a->api_tags = NULL;
    ag_api_instances_free(a->api_instances);
    a->api_instances = NULL;
    ag_cluster_td_free(a->cluster_td); /* after the member: its mirror wrote into the store */
    a->cluster_td = NULL;
    ag_cluster_services_free(a->cluster_services); /* after the member, as cluster_tasks */
    a->cluster_services = NULL;
    ag_cluster_tasks_free(a->cluster_tasks); /* after the member: its mirrors' callbacks ended */
    a->cluster_tasks = NULL;
    ag_store_close(a->store);
    a->store = NULL;
    al_close(a->al);
    a->al = NULL;
    a->metrics = ag_metrics_free(a->metrics);
    /* the proxy (calls cancelled) and the resolver (resolutions ended) are
     * closed: no create is in flight */
    ag_intake_docker_free(a->intake);
    a->intake = NULL;
    es_notice("agent: stopped");
    agent_release(a);
}

static void part_closed(void *arg)
{
    ag_agent *a = arg;
    if (--a->closing_parts == 0)
        all_closed(a);
}

static void timer_closed(uv_handle_t *h)
{
    agent_release(h->data);
}

typedef struct leftover {
    size_t running, launching, stopping;
} leftover;

static int count_leftover(void *arg, ag_task *t)
{
    leftover *l = arg;
    if (t->last_status == AG_TASK_STOPPED)
        return 0;
    if (t->desired_status == AG_TASK_STOPPED)
        l->stopping++;
    else if (t->last_status == AG_TASK_RUNNING)
        l->running++;
    else
        l->launching++;
    return 0;
}

/* What the stop leaves behind, said before the parts close: running tasks
 * keep their containers, and the next start adopts them (engine.h). */
static void log_leftover(ag_engine *e)
{
    leftover l = {0};
    ag_engine_foreach_task(e, count_leftover, &l);
    if (l.running)
        es_notice("agent: %zu running task%s keep%s running; the next start adopts %s", l.running,
                  l.running == 1 ? "" : "s", l.running == 1 ? "s" : "",
                  l.running == 1 ? "it" : "them");
    if (l.launching)
        es_notice("agent: %zu launch%s interrupted; the next start removes what %s created and "
                  "reports %s STOPPED",
                  l.launching, l.launching == 1 ? "" : "es", l.launching == 1 ? "it" : "they",
                  l.launching == 1 ? "it" : "them");
    if (l.stopping)
        es_notice("agent: %zu task%s still stopping; the next start finishes the stop%s",
                  l.stopping, l.stopping == 1 ? "" : "s", l.stopping == 1 ? "" : "s");
}

static void log_proxy_stats(const dk_proxy *p)
{
    dk_proxy_stats st;
    dk_proxy_get_stats(p, &st);
    es_info("Docker socket: %llu connections (%llu waited for a free slot), %llu requests, "
            "%llu creates (%llu refused), %llu hijacked, %llu refused requests, %llu answered "
            "502, %llu head timeouts, %llu bytes to Docker, %llu bytes from it, at most %llu "
            "bytes held",
            (unsigned long long)st.accepted, (unsigned long long)st.deferred,
            (unsigned long long)st.requests, (unsigned long long)st.creates,
            (unsigned long long)st.creates_refused, (unsigned long long)st.upgrades,
            (unsigned long long)st.bad_requests, (unsigned long long)st.upstream_failures,
            (unsigned long long)st.head_timeouts, (unsigned long long)st.bytes_up,
            (unsigned long long)st.bytes_down, (unsigned long long)st.buffered_peak);
}

static void on_stop(ag_daemon *d, void *arg)
{
    (void)d;
    ag_agent *a = arg;
    a->stopping = true;
    es_info("agent: closing");
    if (a->retry_open) {
        uv_timer_stop(&a->retry);
        uv_close((uv_handle_t *)&a->retry, timer_closed);
        a->retry_open = false;
    } else {
        a->pending--; /* no timer to wait for */
    }
    if (a->server) {
        aw_listener_stats st;
        aw_listener_get_stats(a->server, &st);
        es_info("listener: %llu connections (%llu refused, %llu by the per-peer cap, %llu idle "
                "evicted), %llu requests (%llu 4xx, %llu 5xx, "
                "%llu refused signatures), limits hit: %llu head, %llu body, %llu malformed, "
                "%llu idle and %llu request timeouts",
                (unsigned long long)st.connections_accepted,
                (unsigned long long)st.connections_refused, (unsigned long long)st.peer_refused,
                (unsigned long long)st.evicted_idle, (unsigned long long)st.requests,
                (unsigned long long)st.errors_4xx, (unsigned long long)st.errors_5xx,
                (unsigned long long)st.auth_failures, (unsigned long long)st.header_too_large,
                (unsigned long long)st.body_too_large, (unsigned long long)st.malformed,
                (unsigned long long)st.idle_timeouts, (unsigned long long)st.request_timeouts);
        if (aw_listener_tls(a->server))
            es_info("listener TLS: %llu handshakes, %llu failed or timed out, %llu plain HTTP "
                    "requests refused",
                    (unsigned long long)st.tls_handshakes, (unsigned long long)st.tls_failures,
                    (unsigned long long)st.tls_plain_http);
    }
    if (a->proxy)
        log_proxy_stats(a->proxy);
    if (a->intake) {
        ag_intake_docker_stats is;
        ag_intake_docker_get_stats(a->intake, &is);
        es_info("Docker socket: %lu creates, %lu given secrets, %lu refused", is.creates,
                is.injected, is.refused);
    }
    if (a->engine)
        log_leftover(a->engine);
    /* one count for this function, so that parts closing inside their close
     * call do not end the stop before every part has been told */
    a->closing_parts = 1;
    /* each part with a close(part, done, arg) that reports to part_closed */
#define CLOSE_PART(field, close_fn)                                                                \
    do {                                                                                           \
        if (a->field) {                                                                            \
            a->closing_parts++;                                                                    \
            close_fn(a->field, part_closed, a);                                                    \
            a->field = NULL;                                                                       \
        }                                                                                          \
    } while (0)
    /* the held DescribeTasks answered while their connections are open (the
     * listeners' close closes every connection); nothing is held after this */
    if (a->task_waits) {
        a->closing_parts++;
        ag_task_waits_close(a->task_waits, part_closed, a);
    }
    /* the listener first: no API call reaches a part that is closing */
    CLOSE_PART(server, aw_listener_close);
    CLOSE_PART(inner, aw_listener_close);
    CLOSE_PART(proxy, dk_proxy_close);
    CLOSE_PART(rotator, ag_rotator_close);
    /* waiting service writes answered, no scheduler call from the cluster */
    ag_cluster_services_stop(a->cluster_services);
    CLOSE_PART(sched, ag_svc_sched_close);
    CLOSE_PART(drift, ag_drift_close);
    CLOSE_PART(endpoints, ag_endpoints_close);
    /* waiting RunTasks answered, no launch or observer from here */
    ag_cluster_tasks_stop(a->cluster_tasks);
    CLOSE_PART(engine, ag_engine_close);
    CLOSE_PART(resolver, ag_resolver_close);
    CLOSE_PART(preflight, ag_preflight_close);
    CLOSE_PART(creds, aw_creds_close);
    /* revokes its lease: the instance leaves the cluster now, not at its TTL */
    CLOSE_PART(member, cl_member_close);
    /* the clients last: their cancellation ends the calls the parts above
     * still wait on (each part, closing, starts no new one) */
    CLOSE_PART(aws, aw_client_close);
#undef CLOSE_PART
    if (a->docker) {
        /* its memory goes once its handles have closed; the loop runs on */
        dk_client_free(a->docker);
        a->docker = NULL;
    }
    part_closed(a);
}

/* --------------------------------------------------------------- docker */

static void ping_docker(ag_agent *a);

/* The heap's free pages given back when tasks coming and going left enough of
 * them (agent/memtrim.h says why). */
static void on_heap_check(uv_timer_t *t)
{
    ag_agent *a = t->data;
    if (a->stopping)
        return;
    ag_memtrim_heap_stats st;
    uint64_t t0 = uv_hrtime();
    ag_memtrim_heap(&a->heap_mark, &st);
    if (st.trimmed)
        es_debug("heap trimmed: %zu kB free, resident %zu kB -> %zu kB in %.1f ms", st.free_kb,
                 st.rss_before_kb, st.rss_after_kb, (double)(uv_hrtime() - t0) / 1e6);
}

/* Start-up is over (ready, the first reconcile done): what it left resident and no
 * longer needs goes back (agent/memtrim.h; issue 22's idle resident set). The SQLite
 * connections first, so that malloc_trim finds their freed pages. */
static void on_settled(uv_timer_t *t)
{
    ag_agent *a = t->data;
    if (a->stopping)
        return;
    ag_store_release_memory(a->store);
    al_release_memory(a->al);
    ag_memtrim_stats st;
    int r = ag_memtrim_self(&st);
    if (r < 0)
        es_info("memory after start-up: the mappings were not trimmed (%s); resident %zu kB",
                strerror(-r), st.rss_after_kb);
    else
        es_info("memory after start-up: resident %zu kB -> %zu kB (%zu kB of %zu clean "
                "file-backed mappings unmapped, the heap trimmed)",
                st.rss_before_kb, st.rss_after_kb, st.file_kb, st.mappings);
    a->heap_mark = ag_memtrim_heap_free();
    uv_timer_start(&a->retry, on_heap_check, AG_MEMTRIM_HEAP_PERIOD_MS, AG_MEMTRIM_HEAP_PERIOD_MS);
}

static void on_retry(uv_timer_t *t)
{
    ag_agent *a = t->data;
    if (!a->stopping)
        ping_docker(a);
}

static void on_ping(void *ud, const dk_result *r)
{
    ag_agent *a = ud;
    if (a->stopping || r->err == -ECANCELED)
        return;
    const char *host = cf_get(a->cfg, CF_DOCKER_HOST);
    if (r->err) {
        a->pings_failed++;
        if (a->pings_failed == 1)
            es_warn("Docker at %s does not answer (%s); retrying every %d s", host,
                    dk_strerror(r->err), AG_DOCKER_RETRY_MS / 1000);
        else
            es_debug("Docker at %s: still no answer (%s)", host, dk_strerror(r->err));
        ag_daemon_status(a->d, "starting: waiting for Docker at %s: %s (attempt %u)", host,
                         dk_strerror(r->err), a->pings_failed);
        uv_timer_start(&a->retry, on_retry, AG_DOCKER_RETRY_MS, 0);
        return;
    }
    a->docker_up = true;
    es_notice("Docker at %s answers", host);
    int er = ag_engine_start(a->engine);
    if (er < 0) {
        es_err("task engine: cannot follow Docker: %s", strerror(-er));
        ag_daemon_stop(a->d, 1);
        return;
    }
    ag_daemon_ready(a->d, a->status);
    /* the retry timer is free from here on: it runs the trim once */
    uv_timer_start(&a->retry, on_settled, AG_MEMTRIM_DELAY_MS, 0);
}

static void ping_docker(ag_agent *a)
{
    int r = dk_ping(a->docker, on_ping, a);
    if (r < 0) {
        dk_result res = {.err = r};
        on_ping(a, &res);
    }
}

/* ---------------------------------------------------------- docker proxy */

/* ECS_SECRETS_DOCKER_PROXY_GROUP: a name or a numeric gid. */
static int proxy_group(const char *name, gid_t *out)
{
    char *end = NULL;
    unsigned long v = strtoul(name, &end, 10);
    if (*name && end && !*end) {
        *out = (gid_t)v;
        return 0;
    }
    struct group g, *res = NULL;
    char buf[4096];
    int e = getgrnam_r(name, &g, buf, sizeof buf, &res);
    if (e || !res)
        return e ? -e : -ENOENT;
    *out = res->gr_gid;
    return 0;
}

static int start_proxy(ag_agent *a)
{
    const char *path = cf_get(a->cfg, CF_DOCKER_PROXY);
    const char *group = cf_get(a->cfg, CF_DOCKER_PROXY_GROUP);
    if (!path)
        return 0;
    /* creates asking for secrets go through the task's resolution */
    ag_intake_docker_config ic = {.resolver = a->resolver,
                                  .store = a->store,
                                  .engine = a->engine,
                                  .iam = a->embedded ? a->al : NULL,
                                  .region = cf_get(a->cfg, CF_REGION),
                                  .account = cf_get(a->cfg, CF_ACCOUNT_ID),
                                  .roles = cf_get(a->cfg, CF_DOCKER_ROLES)};
    char err[CF_ERROR_MAX];
    int r = ag_intake_docker_create(&ic, &a->intake, err, sizeof err);
    if (r < 0) {
        es_err("%s: %s", cf_keys[CF_DOCKER_ROLES].name, r == -ENOMEM ? "out of memory" : err);
        return r;
    }
    dk_proxy_options o = {.path = path,
                          .upstream = a->cfg->docker_socket,
                          .on_create = ag_intake_docker_on_create,
                          .on_cancel = ag_intake_docker_on_cancel,
                          .ud = a->intake};
    r = proxy_group(group, &o.group);
    if (r < 0) {
        es_err("%s %s: %s", cf_keys[CF_DOCKER_PROXY_GROUP].name, group,
               r == -ENOENT ? "no such group" : strerror(-r));
        return r;
    }
    /* chown only when it changes something: an agent that is not root may
     * give the socket only to a group it is in */
    o.set_group = o.group != getegid();
    if ((r = dk_proxy_start(&a->d->loop, &o, &a->proxy)) < 0) {
        es_err("%s %s: %s%s", cf_keys[CF_DOCKER_PROXY].name, path,
               r == -EADDRINUSE ? "another process listens on it"
               : r == -EEXIST   ? "exists and is not a socket"
                                : uv_strerror(r),
               r == -EPERM ? " (the agent's user must be a member of the socket's group)" : "");
        return r;
    }
    es_notice("Docker socket on %s (group %s, mode 0660) passes through to %s: use it with "
              "DOCKER_HOST=unix://%s",
              path, group, cf_get(a->cfg, CF_DOCKER_HOST), path);
    return 0;
}

/* ----------------------------------------------------------- start-up */

/* The listener's URL for clients on this host: a wildcard address is
 * reached through loopback. */
static void listener_url(const cf_config *cfg, int port, char *out, size_t n)
{
    const char *scheme = cfg->listen_tls ? "https" : "http";
    const char *h = cfg->listen_host;
    if (strcmp(h, "0.0.0.0") == 0 || h[0] == '\0')
        h = "127.0.0.1";
    else if (strcmp(h, "::") == 0)
        h = "::1";
    bool v6 = strchr(h, ':') != NULL;
    snprintf(out, n, "%s://%s%s%s:%d", scheme, v6 ? "[" : "", h, v6 ? "]" : "", port);
}

/* The administrator key from STATE_DIR/aws-credentials (al_admin_init). */
static int read_admin_key(const char *dir, aw_credentials *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, AL_CREDENTIALS_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    es_buf b;
    es_buf_init(&b, AW_CREDS_FILE_MAX);
    int r = 0;
    for (;;) {
        int err = 0;
        char *p = es_buf_reserve(&b, 4096, &err);
        if (!p) {
            r = err;
            break;
        }
        ssize_t got = read(fd, p, 4096);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            break;
        }
        if (got == 0)
            break;
        es_buf_commit(&b, (size_t)got);
    }
    close(fd);
    if (r == 0)
        r = aw_creds_parse_ini(b.data ? b.data : "", b.len, AL_AUTH_PROFILE, 0, out);
    es_buf_free_secret(&b);
    return r;
}

/* Roles declared in files: <directory of the configuration file>/roles/
 * (e.g. /etc/ecs-secrets-agent/roles/NAME.json; format in aws/local/iam.h). */
static int load_roles(const cf_config *cfg, al_ctx *store)
{
    const char *conf = cf_get(cfg, CF_CONFIG_FILE);
    const char *slash = conf ? strrchr(conf, '/') : NULL;
    char dir[4096], err[1024] = "";
    if (!slash)
        return 0;
    if ((size_t)snprintf(dir, sizeof dir, "%.*s/roles", (int)(slash - conf), conf) >= sizeof dir)
        return 0;
    int r = al_iam_load_roles_dir(store, dir, err, sizeof err);
    if (r < 0)
        es_err("embedded IAM: roles in %s: %s", dir, err);
    return r;
}

/* SIGHUP: the role files again; a bad one keeps the roles loaded before
 * (the load is one transaction). */
static void on_reload(ag_daemon *d, void *arg)
{
    if (d->stopping) /* the agent may be gone */
        return;
    ag_agent *a = arg;
    if (!a->stopping && a->al && load_roles(d->cfg, a->al) == 0)
        es_info("embedded IAM: role files reloaded");
}

/* ECS_SECRETS_DRIFT_INTERVAL: unset means 60 s in embedded mode, off in aws mode */
static uint64_t drift_interval_ms(const ag_agent *a)
{
    /* config.c validated it and made the mode's default effective */
    long s = 0;
    const char *di = cf_get(a->cfg, CF_DRIFT_INTERVAL);
    if (!di || cf_parse_duration(di, &s) < 0)
        s = 0;
    return s > 0 ? (uint64_t)s * 1000 : 0;
}

/* SIGHUP: the configuration's own hook has run (it was registered first), so
 * a->cfg holds the reloaded interval. */
static void on_reload_drift(ag_daemon *d, void *arg)
{
    ag_agent *a = arg;
    if (d->stopping || a->stopping || !a->drift)
        return;
    uint64_t ms = drift_interval_ms(a);
    if (ms == ag_drift_interval(a->drift))
        return;
    ag_drift_set_interval(a->drift, ms);
    if (ms)
        es_notice("drift: running tasks' secrets now checked every %llu s",
                  (unsigned long long)(ms / 1000));
    else
        es_notice("drift: periodic checks off (on demand only)");
}

/* ECS_SECRETS_RECONCILE_INTERVAL (validated at load; 0: off) */
static uint64_t reconcile_interval_ms(const ag_agent *a)
{
    long s = 0;
    if (cf_parse_duration(cf_get(a->cfg, CF_RECONCILE_INTERVAL), &s) < 0)
        s = 0;
    return (uint64_t)s * 1000;
}

/* SIGHUP: as on_reload_drift, for the engine's periodic reconcile. */
static void on_reload_reconcile(ag_daemon *d, void *arg)
{
    ag_agent *a = arg;
    if (d->stopping || a->stopping || !a->engine)
        return;
    uint64_t ms = reconcile_interval_ms(a);
    if (ms == ag_engine_reconcile_interval(a->engine))
        return;
    ag_engine_set_reconcile_interval(a->engine, ms);
    if (ms)
        es_notice("engine: containers now reconciled with Docker every %llu s",
                  (unsigned long long)(ms / 1000));
    else
        es_notice("engine: periodic reconcile off (on events-stream connects only)");
}

/* ECS_SECRETS_TLS_CERT and _KEY, loaded and checked before the listener
 * binds: a bad file stops the start with the reason. */
static int load_tls(const cf_config *cfg, aw_tls **out)
{
    const char *cert = cf_get(cfg, CF_TLS_CERT), *key = cf_get(cfg, CF_TLS_KEY);
    char err[1024], desc[AW_TLS_DESC_MAX];
    int r = aw_tls_load(cert, key, out, err, sizeof err);
    if (r < 0) {
        es_err("listener TLS (%s, %s): %s", cf_keys[CF_TLS_CERT].name, cf_keys[CF_TLS_KEY].name,
               err);
        return r;
    }
    aw_tls_describe(*out, desc, sizeof desc);
    if (aw_tls_expired(*out, time(NULL)))
        es_warn("listener TLS: the certificate %s is outside its validity period (%s): clients "
                "will refuse it",
                cert, desc);
    es_info("listener TLS: certificate %s: %s", cert, desc);
    return 0;
}

/* One line per operation the database failed (a full disk, an I/O error):
 * the caller got a 500 that says the same; nothing else reports it. */
static void log_store_failure(void *arg, const char *operation, int code, const char *name,
                              const char *message)
{
    (void)arg;
    es_err("embedded store: %s failed: %s (%s, code %d)", operation, message, name, code);
}

/* A Secrets Manager rotation that did not go as asked (a hook's step, a
 * scheduled rotation): the caller sees the secret unchanged; this says why.
 * The message names the secret, the step and the hook, never a value. */
static void log_rotation_event(void *arg, const char *secret_arn, const char *step,
                               const char *message)
{
    (void)arg;
    es_warn("secretsmanager: %s: %s [step %s]", secret_arn, message, step);
}

/* The embedded store on a listener: in embedded mode its services; in aws
 * mode only its access keys, which authenticate the ECS API (its own
 * operations are then refused by name). */
static int mount_store(ag_agent *a, aw_listener *l)
{
    if (a->embedded)
        return al_mount(a->al, l);
    al_mount_auth(a->al, l);
    aw_listener_set_unserved_text(l, "Only the agent's ECS API is served here (mode aws).");
    return 0;
}

/* The agent's own AWS client (the resolver, drift) calls the embedded
 * endpoints over HTTP with SigV4, as it calls AWS, on a listener of its own:
 * a unix socket in the state directory, mode 0600, serving the store (not
 * the ECS API). Its slots: a peer that fills the public listener's
 * connections cannot stall launches, and no other local user can reach it
 * (a loopback port could be found and used by any local process). TLS: on
 * the public listener the client would have to verify a certificate that
 * names the address remote callers use, and pay a handshake for calls that
 * never leave the host. */
static int start_self_socket(ag_agent *a)
{
    const char *dir = cf_get(a->cfg, CF_STATE_DIR);
    int n = snprintf(a->self_socket, sizeof a->self_socket, "%s/%s", dir, AG_SELF_SOCKET);
    if (n < 0 || (size_t)n >= sizeof a->self_socket) {
        es_err("the agent's own socket %s/%s: the path is longer than a unix socket's (%d)", dir,
               AG_SELF_SOCKET, AW_LISTENER_PATH_MAX);
        return UV_ENAMETOOLONG;
    }
    int r =
        aw_listener_start_unix(&a->d->loop, a->self_socket, AG_SELF_SOCKET_MODE, NULL, &a->inner);
    if (r == 0)
        r = mount_store(a, a->inner);
    if (r < 0) {
        es_err("cannot listen on %s for the agent's own calls: %s", a->self_socket, uv_strerror(r));
        return r;
    }
    /* the host names only the Host header: curl connects to the socket */
    snprintf(a->self_url, sizeof a->self_url, "http://localhost");
    es_info("the agent's own calls to the embedded endpoints go to the unix socket %s (mode "
            "%04o, plain HTTP)",
            a->self_socket, AG_SELF_SOCKET_MODE);
    return 0;
}

static int start_listener(ag_agent *a)
{
    const cf_config *cfg = a->cfg;
    const char *dir = cf_get(cfg, CF_STATE_DIR);
    char err[512] = "";
    al_options o = {.state_dir = dir,
                    .region = cf_get(cfg, CF_REGION),
                    .account = cf_get(cfg, CF_ACCOUNT_ID),
                    .store_failure = log_store_failure,
                    .rotation_dir = cf_get(cfg, CF_ROTATION_DIR),
                    .rotation_time_scale = cfg->rotation_time_scale,
                    .rotation_event = log_rotation_event,
                    .ecr_registry = cf_get(cfg, CF_ECR_REGISTRY),
                    .ecr_credentials_file = cf_get(cfg, CF_ECR_CREDENTIALS_FILE)};
    int r = al_open(&o, &a->al, err, sizeof err);
    if (r < 0) {
        es_err("embedded store in %s: %s", dir, err);
        return r;
    }
    if (a->embedded) {
        /* every call is evaluated against the caller's IAM policies (authz.h) */
        al_authz_install(a->al);
        if ((r = load_roles(cfg, a->al)) < 0)
            return r;
        if ((r = ag_daemon_on_reload(a->d, on_reload, a)) < 0) {
            es_err("embedded IAM: no room for a reload hook");
            return r;
        }
        if ((r = ag_rotator_start(&a->d->loop, a->al, AG_ROTATOR_TICK_MS, &a->rotator)) < 0) {
            es_err("embedded Secrets Manager: rotation timer: %s", strerror(-r));
            return r;
        }
        if (cfg->rotation_time_scale > 1)
            es_notice("embedded Secrets Manager: rotation schedules run %u times faster "
                      "(ECS_SECRETS_ROTATION_TIME_SCALE)",
                      cfg->rotation_time_scale);
    }
    char akid[AL_AKID_LEN + 1];
    r = al_admin_init(a->al, dir, akid, err, sizeof err);
    if (r < 0) {
        es_err("administrator key: %s", err);
        return r;
    }
    aw_tls *tls = NULL;
    if (cfg->listen_tls && (r = load_tls(cfg, &tls)) < 0)
        return r;
    r = aw_listener_start(&a->d->loop, cfg->listen_host, cfg->listen_port, NULL, &a->server);
    if (r < 0) {
        es_err("cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port, uv_strerror(r));
        aw_tls_free(tls);
        return r;
    }
    if (tls)
        aw_listener_set_tls(a->server, tls); /* the listener's now */
    if ((r = mount_store(a, a->server)) < 0)
        return r;
    listener_url(cfg, aw_listener_port(a->server), a->url, sizeof a->url);
    snprintf(a->self_url, sizeof a->self_url, "%s", a->url);
    if (a->embedded && (r = start_self_socket(a)) < 0)
        return r;
    /* rotation hooks are processes of their own (the aws CLI, say): they
     * call the public listener, as any client does */
    if (a->embedded && al_set_endpoint_url(a->al, a->url) < 0)
        return UV_ENOMEM;
    if (a->embedded)
        es_notice("embedded SSM, Secrets Manager, KMS, IAM, STS, S3 and ECR endpoints on %s "
                  "(administrator key %s)",
                  a->url, akid);
    es_notice("ECS API and /metrics on %s (administrator key %s)", a->url, akid);
    char ca[URL_MAX + 32] = "";
    if (tls)
        snprintf(ca, sizeof ca, "AWS_CA_BUNDLE=%s ", cf_get(cfg, CF_TLS_CERT));
    es_notice("use them with: %sAWS_SHARED_CREDENTIALS_FILE=%s/%s AWS_CONFIG_FILE=%s/%s aws "
              "--profile %s --endpoint-url %s %s",
              ca, dir, AL_CREDENTIALS_FILE, dir, AL_CONFIG_FILE, AL_AUTH_PROFILE, a->url,
              a->embedded ? "ssm get-parameter --name NAME" : "ecs list-task-definitions");
    return 0;
}

static int start_aws(ag_agent *a)
{
    const cf_config *cfg = a->cfg;
    aw_client_config cc = {.region = cf_get(cfg, CF_REGION)};
    /* https:// endpoints (another agent's TLS listener, say) verified with it */
    cc.ca_file = cf_get(cfg, CF_CA_FILE);
    if (cc.ca_file && access(cc.ca_file, R_OK) < 0) {
        int e = errno;
        es_err("%s %s: %s", cf_keys[CF_CA_FILE].name, cc.ca_file, strerror(e));
        return -e;
    }
    if (a->embedded) {
        for (int s = 0; s < AW_SVC_COUNT; s++)
            cc.endpoint_override[s] = a->self_url;
        cc.unix_socket = a->self_socket;
    } else {
        cc.endpoint_override[AW_SVC_SSM] = cf_get(cfg, CF_ENDPOINT_SSM);
        cc.endpoint_override[AW_SVC_SECRETSMANAGER] = cf_get(cfg, CF_ENDPOINT_SECRETSMANAGER);
        cc.endpoint_override[AW_SVC_KMS] = cf_get(cfg, CF_ENDPOINT_KMS);
        cc.endpoint_override[AW_SVC_STS] = cf_get(cfg, CF_ENDPOINT_STS);
        cc.endpoint_override[AW_SVC_IAM] = cf_get(cfg, CF_ENDPOINT_IAM);
    }
    int r = aw_client_create(&a->d->loop, &cc, &a->aws);
    if (r < 0) {
        es_err("AWS client: %s", strerror(-r));
        return r;
    }
    aw_creds_config kc = {0};
    aw_credentials admin = {0};
    if (a->embedded) {
        r = read_admin_key(cf_get(cfg, CF_STATE_DIR), &admin);
        if (r < 0) {
            es_err("the administrator key in %s/%s: %s", cf_get(cfg, CF_STATE_DIR),
                   AL_CREDENTIALS_FILE, strerror(-r));
            return r;
        }
        kc.access_key_id = admin.access_key_id;
        kc.secret_access_key = admin.secret_access_key;
    } else {
        kc.access_key_id = cf_get(cfg, CF_ACCESS_KEY_ID);
        kc.secret_access_key = cf_get(cfg, CF_SECRET_ACCESS_KEY);
        kc.session_token = cf_get(cfg, CF_SESSION_TOKEN);
    }
    r = aw_creds_create(a->aws, &kc, &a->creds);
    aw_credentials_clear(&admin);
    if (r < 0) {
        es_err("AWS credentials: %s", strerror(-r));
        return r;
    }
    es_info("AWS services: %s; credentials: %s%s%s",
            a->embedded ? a->self_socket : "configured endpoints",
            a->embedded        ? "the administrator key"
            : kc.access_key_id ? "configured static keys"
                               : "the default chain",
            cc.ca_file ? "; https:// verified with the CA file " : "",
            cc.ca_file ? cc.ca_file : "");
    return 0;
}

/* The agent itself: its retry timer and the stop hook that releases
 * whatever exists from then on. On failure nothing is left behind. */
static int agent_new(ag_daemon *d, const char *running_status, ag_agent **out)
{
    ag_agent *a = es_calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->d = d;
    a->cfg = d->cfg;
    a->embedded = d->cfg->mode == CF_MODE_EMBEDDED;
    a->pending = 2;
    snprintf(a->status, sizeof a->status, "%s", running_status);
    int r = uv_timer_init(&d->loop, &a->retry);
    if (r < 0) {
        es_free(a);
        return r;
    }
    a->retry.data = a;
    a->retry_open = true;
    r = ag_daemon_on_stop(d, on_stop, a);
    if (r < 0) {
        es_err("agent: no room for a stop hook");
        uv_close((uv_handle_t *)&a->retry, NULL);
        /* the timer's memory must outlive its close: run the loop once */
        uv_run(&d->loop, UV_RUN_NOWAIT);
        es_free(a);
        return r;
    }
    *out = a;
    return 0;
}

static int open_store(ag_agent *a)
{
    const char *dir = cf_get(a->cfg, CF_STATE_DIR);
    char err[AG_STORE_ERR_MAX];
    int r = ag_store_open(dir, &a->store, err, sizeof err);
    if (r < 0)
        es_err("agent store in %s: %s", dir, err);
    return r;
}

static int start_docker(ag_agent *a)
{
    long create_s = 0, start_s = 0; /* validated: 0 only when unparsable, the default then */
    (void)cf_parse_duration(cf_get(a->cfg, CF_CONTAINER_CREATE_TIMEOUT), &create_s);
    (void)cf_parse_duration(cf_get(a->cfg, CF_CONTAINER_START_TIMEOUT), &start_s);
    dk_options dko = {.host = cf_get(a->cfg, CF_DOCKER_HOST),
                      .max_conns = AG_DOCKER_MAX_CONNS,
                      .create_timeout_ms = (uint64_t)create_s * 1000u,
                      .start_timeout_ms = (uint64_t)start_s * 1000u};
    int r = dk_client_create(&a->d->loop, &dko, &a->docker);
    if (r < 0)
        es_err("Docker client for %s: %s", dko.host, dk_strerror(r));
    return r;
}

/* What resolves secrets: the fingerprint key, the execution role's
 * preflight (unless turned off), the resolver. */
static int start_secrets(ag_agent *a)
{
    const cf_config *cfg = a->cfg;
    const char *dir = cf_get(cfg, CF_STATE_DIR);
    int r;
    if ((r = ag_fingerprint_key_load(dir, a->fp_key)) < 0) {
        es_err("fingerprint key %s/%s: %s", dir, AG_FINGERPRINT_KEY_FILE, strerror(-r));
        return r;
    }
    if (strcmp(cf_get(cfg, CF_PREFLIGHT), "off") != 0) {
        /* embedded: decided in-process against the embedded IAM; aws mode:
         * iam:SimulatePrincipalPolicy with the host's credentials */
        ag_preflight_config pc = {.client = a->aws,
                                  .creds = a->creds,
                                  .embedded = a->embedded ? a->al : NULL,
                                  .region = cf_get(cfg, CF_REGION),
                                  .account = cf_get(cfg, CF_ACCOUNT_ID)};
        if ((r = ag_preflight_create(&pc, &a->preflight)) < 0) {
            es_err("execution role preflight: %s", strerror(-r));
            return r;
        }
    }
    ag_resolver_config rc = {.client = a->aws,
                             .preflight = a->preflight,
                             .creds = a->creds,
                             .region = cf_get(cfg, CF_REGION),
                             .fp_key = a->fp_key,
                             .fp_key_len = sizeof a->fp_key};
    /* embedded: images on the local registry are the embedded account's
     * ECR's, and only they (AWS's ECR is out of the embedded ECR's reach) */
    if (a->embedded)
        rc.ecr_local = (ag_ecr_local){.host = cf_get(cfg, CF_ECR_REGISTRY),
                                      .account = cf_get(cfg, CF_ACCOUNT_ID),
                                      .region = cf_get(cfg, CF_REGION),
                                      .only = true};
    if ((r = ag_resolver_create(&rc, &a->resolver)) < 0)
        es_err("secret resolver: %s", strerror(-r));
    return r;
}

/* The metrics and the task engine, with its reload hook. */
static int start_engine(ag_agent *a)
{
    const cf_config *cfg = a->cfg;
    if (!(a->metrics = ag_metrics_create())) {
        es_err("metrics: out of memory");
        return -ENOMEM;
    }
    ag_engine_config ec = {.loop = &a->d->loop,
                           .store = a->store,
                           .docker = a->docker,
                           .resolver = a->resolver,
                           .metrics = a->metrics,
                           .region = cf_get(cfg, CF_REGION),
                           .account = cf_get(cfg, CF_ACCOUNT_ID),
                           .cluster = cf_get(cfg, CF_CLUSTER),
                           .files_dir = cf_get(cfg, CF_FILES_DIR)};
    /* in a cluster its containers carry the instance's ARN (agent/cluster.h) */
    char instance_arn[CL_INSTANCE_ARN_MAX + 1];
    if (cf_get(cfg, CF_ETCD_ENDPOINTS)) {
        int ir = ag_instance_arn(cfg, instance_arn, sizeof instance_arn);
        if (ir < 0) {
            es_err("cluster: the instance's ARN: %s", strerror(-ir));
            return ir;
        }
        ec.instance_arn = instance_arn;
    }
    long cleanup = 0;
    if (cf_parse_duration(cf_get(cfg, CF_TASK_CLEANUP_WAIT), &cleanup) == 0)
        ec.cleanup_delay_s = cleanup;
    ec.reconcile_interval_ms = reconcile_interval_ms(a);
    int r = ag_engine_create(&ec, &a->engine);
    if (r < 0) {
        es_err("task engine: %s", strerror(-r));
        return r;
    }
    if ((r = ag_daemon_on_reload(a->d, on_reload_reconcile, a)) < 0)
        es_err("task engine: no room for a reload hook");
    return r;
}

/* ECS_SECRETS_TASK_ENDPOINT off: a task naming taskRoleArn cannot be given
 * its credentials, nor Docker's awslogs driver the execution role's, so its
 * launch fails with the reason. */
static int refuse_without_endpoints(void *arg, const ag_task *t, const ag_taskdef *td, char *why,
                                    size_t n)
{
    (void)arg, (void)t;
    if (!td->task_role_arn && ag_awslogs_uses_exec_role(td, SIZE_MAX)) {
        /* Docker's awslogs driver would log with dockerd's own credentials,
         * not the execution role's as ECS gives them */
        snprintf(why, n,
                 "awslogs with executionRoleArn %s: the driver's credentials are served by the "
                 "container endpoints, which are off (%s=off)",
                 td->execution_role_arn, cf_keys[CF_TASK_ENDPOINT].name);
        return -EACCES;
    }
    if (!td->task_role_arn)
        return 0;
    snprintf(why, n, "taskRoleArn %s: the container endpoints are off (%s=off)", td->task_role_arn,
             cf_keys[CF_TASK_ENDPOINT].name);
    return -EACCES;
}

/* The container endpoints (endpoints.h): a task role's credentials and
 * task metadata v4, on their own listener. */
static int start_endpoints(ag_agent *a)
{
    const cf_config *cfg = a->cfg;
    if (!cfg->task_endpoint_host) {
        ag_engine_set_launch_check(a->engine, refuse_without_endpoints, NULL);
        es_info("container endpoints: off (%s): tasks naming taskRoleArn, and awslogs "
                "containers of tasks naming executionRoleArn, are refused",
                cf_keys[CF_TASK_ENDPOINT].name);
        return 0;
    }
    ag_endpoints_config ec = {.loop = &a->d->loop,
                              .host = cfg->task_endpoint_host,
                              .port = cfg->task_endpoint_port,
                              .engine = a->engine,
                              .client = a->aws,
                              .creds = a->creds,
                              .embedded = a->embedded ? a->al : NULL,
                              .region = cf_get(cfg, CF_REGION),
                              .account = cf_get(cfg, CF_ACCOUNT_ID),
                              .metrics = a->metrics};
    char why[256];
    int r = ag_endpoints_start(&ec, &a->endpoints, why, sizeof why);
    if (r < 0) {
        es_err("container endpoints (%s): %s", cf_keys[CF_TASK_ENDPOINT].name, why);
        return r;
    }
    es_notice("container endpoints (task role credentials, task metadata v4) on %s",
              ag_endpoints_url(a->endpoints));
    return 0;
}

static int start_scheduler(ag_agent *a)
{
    const cf_config *cfg = a->cfg;
    ag_svc_sched_config sc = {.loop = &a->d->loop,
                              .engine = a->engine,
                              .store = a->store,
                              .metrics = a->metrics,
                              .region = cf_get(cfg, CF_REGION),
                              .account = cf_get(cfg, CF_ACCOUNT_ID),
                              .cluster = cf_get(cfg, CF_CLUSTER)};
    int r = ag_svc_sched_create(&sc, &a->sched);
    if (r < 0)
        es_err("service scheduler: %s", strerror(-r));
    return r;
}

/* The drift checker, with its reload hook. */
static int start_drift(ag_agent *a)
{
    uint64_t drift_ms = drift_interval_ms(a);
    ag_drift_config dc = {.loop = &a->d->loop,
                          .client = a->aws,
                          .creds = a->creds,
                          .engine = a->engine,
                          .metrics = a->metrics,
                          .region = cf_get(a->cfg, CF_REGION),
                          .interval_ms = drift_ms};
    int r = ag_drift_create(&dc, &a->drift);
    if (r < 0) {
        es_err("drift checker: %s", strerror(-r));
        return r;
    }
    if (drift_ms)
        es_info("drift: running tasks' secrets checked every %llu s (metadata calls only)",
                (unsigned long long)(drift_ms / 1000));
    if ((r = ag_daemon_on_reload(a->d, on_reload_drift, a)) < 0)
        es_err("drift checker: no room for a reload hook");
    return r;
}

/* The Docker socket's counters in /metrics: dk_proxy_stats members by name. */
#define PX "ecs_agent_docker_socket_"
static const struct proxy_counter {
    const char *name, *help;
    const char *label[3]; /* a name and a value, or none */
    size_t at;            /* offsetof(dk_proxy_stats, member): a uint64_t */
} proxy_counters[] = {
    {PX "connections_total",
     "Client connections to the agent's Docker socket",
     {NULL},
     offsetof(dk_proxy_stats, accepted)},
    {PX "requests_total",
     "Requests through the agent's Docker socket",
     {NULL},
     offsetof(dk_proxy_stats, requests)},
    {PX "hijacked_total",
     "Connections switched to raw streams (attach, exec, run -it)",
     {NULL},
     offsetof(dk_proxy_stats, upgrades)},
    {PX "refused_requests_total",
     "Requests refused by the socket's limits (400, 413)",
     {NULL},
     offsetof(dk_proxy_stats, bad_requests)},
    {PX "upstream_failures_total",
     "Requests answered 502: dockerd could not be reached",
     {NULL},
     offsetof(dk_proxy_stats, upstream_failures)},
    {PX "bytes_total",
     "Bytes forwarded through the agent's Docker socket",
     {"direction", "to_docker", NULL},
     offsetof(dk_proxy_stats, bytes_up)},
    {PX "bytes_total",
     "Bytes forwarded through the agent's Docker socket",
     {"direction", "from_docker", NULL},
     offsetof(dk_proxy_stats, bytes_down)},
};

static void set_gauge(ag_metrics *m, const char *name, const char *help, double v)
{
    ag_series *g = ag_metrics_series(m, AG_METRIC_GAUGE, name, help, NULL, NULL, 0);
    if (g)
        ag_series_set(g, v);
}

/* GET /metrics: the Docker socket's and its intake's counters (the API
 * knows neither part). */
static void sync_metrics(void *ud, ag_metrics *m)
{
    ag_agent *a = ud;
    if (a->proxy) {
        dk_proxy_stats st;
        dk_proxy_get_stats(a->proxy, &st);
        for (size_t i = 0; i < sizeof proxy_counters / sizeof proxy_counters[0]; i++) {
            const struct proxy_counter *c = &proxy_counters[i];
            uint64_t v;
            memcpy(&v, (const char *)&st + c->at, sizeof v);
            ag_metrics_sync_counter(m, c->name, c->help, c->label[0] ? c->label : NULL, (double)v);
        }
        set_gauge(m, PX "connections", "Client connections open now", (double)st.active);
        set_gauge(m, PX "buffered_bytes", "Bytes held in the socket's buffers now",
                  (double)st.buffered);
    }
    if (a->intake) {
        ag_intake_docker_stats is;
        ag_intake_docker_get_stats(a->intake, &is);
        const char *h = "Container creates through the agent's Docker socket, by outcome";
        const struct {
            const char *outcome;
            unsigned long n;
        } by[] = {{"seen", is.creates}, {"injected", is.injected}, {"refused", is.refused}};
        for (size_t i = 0; i < sizeof by / sizeof by[0]; i++)
            ag_metrics_sync_counter(m, PX "creates_total", h,
                                    (const char *const[]){"outcome", by[i].outcome, NULL},
                                    (double)by[i].n);
    }
    if (a->task_waits) {
        ag_task_waits_stats ws;
        ag_task_waits_get_stats(a->task_waits, &ws);
        const char *h = "DescribeTasks questions held while a task they name moves, by how they "
                        "ended (agent/api/task_waits.h)";
        const struct {
            const char *ended;
            uint64_t n;
        } by[] = {{"task_moved", ws.by_change},
                  {"wait_over", ws.by_timeout},
                  {"not_held_too_many", ws.refused}};
        for (size_t i = 0; i < sizeof by / sizeof by[0]; i++)
            ag_metrics_sync_counter(m, "ecs_agent_describe_tasks_held_total", h,
                                    (const char *const[]){"ended", by[i].ended, NULL},
                                    (double)by[i].n);
        set_gauge(m, "ecs_agent_describe_tasks_held", "DescribeTasks questions held now",
                  (double)ws.waiting);
    }
}
#undef PX

/* DescribeTasks held while a task it names moves (agent/api/task_waits.h). */
static int start_task_waits(ag_agent *a)
{
    long ms = AG_TASK_WAITS_MS_DEFAULT;
    const char *v = cf_get(a->cfg, CF_DESCRIBE_WAIT_MS);
    if (v)
        ms = strtol(v, NULL, 10); /* validated by the configuration: 0..1000 */
    ag_task_waits_config wc = {
        .loop = &a->d->loop,
        .engine = a->engine,
        .api = a->api,
        .wait_ms = (uint64_t)ms,
        .write = ag_api_tasks_write_described,
        .write_arg = a->api_tasks,
    };
    int r = ag_task_waits_create(&wc, &a->task_waits);
    if (r == 0)
        ag_api_tasks_set_waits(a->api_tasks, a->task_waits);
    return r;
}

/* The ECS API, mounted on the public listener. */
static int start_api(ag_agent *a)
{
    const cf_config *cfg = a->cfg;
    ag_api_config ac = {
        .store = a->store,
        .metrics = a->metrics,
        .resolver = a->resolver,
        .server = a->server,
        .region = cf_get(cfg, CF_REGION),
        .account = cf_get(cfg, CF_ACCOUNT_ID),
        .cluster = cf_get(cfg, CF_CLUSTER),
        /* embedded: callers' policies decide; aws: the administrator key only */
        .iam = a->embedded ? a->al : NULL,
    };
    int r;
    if ((r = ag_api_create(&ac, &a->api)) < 0 ||
        (r = ag_api_tasks_attach(a->api, a->engine, &a->api_tasks)) < 0 ||
        (r = start_task_waits(a)) < 0 ||
        (r = ag_api_services_attach(a->api, a->sched, a->drift, &a->api_services)) < 0 ||
        (r = ag_api_tags_attach(a->api, a->engine, a->sched, &a->api_tags)) < 0 ||
        (r = ag_api_instances_attach(a->api, a->member, &a->api_instances)) < 0 ||
        (r = ag_cluster_td_start(a->member, a->store, a->api, &a->cluster_td)) < 0 ||
        (r = ag_cluster_tasks_start(&a->d->loop, a->member, a->engine, a->store, a->api,
                                    a->api_tasks, &a->cluster_tasks)) < 0 ||
        (r = ag_cluster_services_start(&a->d->loop, a->member, a->cluster_tasks, a->sched, a->store,
                                       a->api, a->api_services, &a->cluster_services)) < 0 ||
        (r = ag_api_add_metrics_hook(a->api, sync_metrics, a)) < 0 ||
        (r = ag_api_attach(a->api, a->server)) < 0)
        es_err("ECS API: %s", strerror(-r));
    if (r == 0) {
        long keep = CL_TK_STOPPED_KEEP_DEFAULT;
        (void)cf_parse_duration(cf_get(a->cfg, CF_CLUSTER_STOPPED_TTL), &keep);
        ag_cluster_tasks_set_stopped_keep(a->cluster_tasks, keep);
    }
    return r;
}

int ag_agent_start(ag_daemon *d, const char *running_status)
{
    ag_agent *a;
    int r = agent_new(d, running_status, &a);
    if (r < 0)
        return r;
    /* from here on the stop hook releases whatever exists; the order is
     * the one the stop reverses (agent.h) */
    if ((r = start_listener(a)) < 0 || (r = open_store(a)) < 0 || (r = start_docker(a)) < 0 ||
        (r = start_aws(a)) < 0 || (r = start_secrets(a)) < 0 || (r = start_engine(a)) < 0 ||
        (r = start_endpoints(a)) < 0 || (r = start_proxy(a)) < 0 || (r = start_scheduler(a)) < 0 ||
        (r = start_drift(a)) < 0 || (r = ag_cluster_start(a->cfg, &a->d->loop, &a->member)) < 0 ||
        (r = start_api(a)) < 0)
        return r;
    ag_daemon_status(d, "starting: asking Docker at %s", cf_get(d->cfg, CF_DOCKER_HOST));
    ping_docker(a);
    return 0;
}
