#include "agent/daemon.h"
#include "agent/notify.h"
#include "common/log.h"

#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ag_mkdir_p(const char *dir, unsigned mode)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, (mode_t)mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* The state directory holds key material: it must be ours and private. */
static int prepare_state_dir(const char *dir)
{
    int r = ag_mkdir_p(dir, 0700);
    if (r < 0) {
        es_err("state directory %s: cannot create: %s", dir, strerror(-r));
        return r;
    }
    struct stat st;
    if (stat(dir, &st) < 0) {
        r = -errno;
        es_err("state directory %s: %s", dir, strerror(errno));
        return r;
    }
    if (!S_ISDIR(st.st_mode)) {
        es_err("state directory %s: not a directory", dir);
        return -ENOTDIR;
    }
    if (st.st_uid != geteuid()) {
        es_err("state directory %s: owned by uid %u, not by us (uid %u)", dir, (unsigned)st.st_uid,
               (unsigned)geteuid());
        return -EPERM;
    }
    if (st.st_mode & 0077) {
        /* we created it or own it: tighten rather than refuse */
        if (chmod(dir, 0700) < 0) {
            r = -errno;
            es_err("state directory %s: mode %03o and chmod failed: %s", dir,
                   (unsigned)(st.st_mode & 0777), strerror(errno));
            return r;
        }
        es_warn("state directory %s: mode was %03o, set to 700", dir,
                (unsigned)(st.st_mode & 0777));
    }
    return 0;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* SIGHUP, as systemctl reload sends it (ExecReload=). systemd hears
 * RELOADING=1 (with the time, as Type=notify-reload wants) and READY=1 when
 * the hooks are done; STATUS= keeps what the hooks last said. */
static void reload(ag_daemon *d)
{
    if (d->nreload == 0) {
        es_notice("SIGHUP received: nothing to reload");
        return;
    }
    es_notice("SIGHUP received, reloading");
    if (d->ready) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ag_notifyf("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
                   (unsigned long long)ts.tv_sec * 1000000ull +
                       (unsigned long long)ts.tv_nsec / 1000);
    }
    d->reloading = true;
    for (int i = 0; i < d->nreload; i++)
        d->reload_hooks[i].fn(d, d->reload_hooks[i].arg);
    d->reloading = false;
    /* before readiness, READY=1 is not ours to send: the start-up sends it */
    if (d->ready)
        ag_notifyf("READY=1\nSTATUS=%s", d->status);
}

static void on_signal(uv_signal_t *s, int signum)
{
    ag_daemon *d = s->data;
    if (signum == SIGHUP) {
        reload(d);
        return;
    }
    es_notice("%s received, stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    ag_daemon_stop(d, 0);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    ag_notify("WATCHDOG=1");
}

int ag_daemon_init(ag_daemon *d, const cf_config *cfg)
{
    /* libuv writes to sockets with write(2): a peer (dockerd, an API client)
     * that goes away mid-write must be an EPIPE, not the end of the daemon */
    signal(SIGPIPE, SIG_IGN);
    memset(d, 0, sizeof *d);
    d->cfg = cfg;
    int r = prepare_state_dir(cf_get(cfg, CF_STATE_DIR));
    if (r < 0)
        return r;
    if ((r = uv_loop_init(&d->loop)) < 0) {
        es_err("event loop: %s", uv_strerror(r));
        return r;
    }
    uv_signal_t *sigs[] = {&d->sig_term, &d->sig_int, &d->sig_hup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(&d->loop, sigs[i]);
        sigs[i]->data = d;
        if ((r = uv_signal_start(sigs[i], on_signal, nums[i])) < 0) {
            es_err("signal %d: %s", nums[i], uv_strerror(r));
            goto fail;
        }
    }
    uv_timer_init(&d->loop, &d->watchdog);
    d->watchdog.data = d;
    uint64_t wd = ag_watchdog_usec();
    if (wd) {
        /* ping at half the interval, as sd_watchdog_enabled(3) advises */
        uint64_t ms = wd / 2000;
        uv_timer_start(&d->watchdog, on_watchdog, ms ? ms : 1, ms ? ms : 1);
        d->watchdog_on = true;
    }
    return 0;
fail:
    uv_walk(&d->loop, close_walk_cb, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    return r;
}

int ag_daemon_on_stop(ag_daemon *d, ag_stop_fn fn, void *arg)
{
    if (d->nhooks >= AG_MAX_STOP_HOOKS)
        return -ENOSPC;
    d->hooks[d->nhooks].fn = fn;
    d->hooks[d->nhooks].arg = arg;
    d->nhooks++;
    return 0;
}

int ag_daemon_on_reload(ag_daemon *d, ag_reload_fn fn, void *arg)
{
    if (d->nreload >= AG_MAX_RELOAD_HOOKS)
        return -ENOSPC;
    d->reload_hooks[d->nreload].fn = fn;
    d->reload_hooks[d->nreload].arg = arg;
    d->nreload++;
    return 0;
}

void ag_daemon_ready(ag_daemon *d, const char *status)
{
    snprintf(d->status, sizeof d->status, "%s", status);
    d->ready = true;
    ag_notifyf("READY=1\nSTATUS=%s", d->status);
    es_notice("ready: %s", status);
}

void ag_daemon_status(ag_daemon *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->status, sizeof d->status, fmt, ap);
    va_end(ap);
    if (!d->reloading)
        ag_notifyf("STATUS=%s", d->status);
}

void ag_daemon_stop(ag_daemon *d, int exit_code)
{
    if (d->stopping)
        return;
    d->stopping = true;
    d->exit_code = exit_code;
    snprintf(d->status, sizeof d->status, "stopping");
    ag_notify("STOPPING=1\nSTATUS=stopping");
    for (int i = d->nhooks; i-- > 0;)
        d->hooks[i].fn(d, d->hooks[i].arg);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    uv_close((uv_handle_t *)&d->watchdog, NULL);
}

int ag_daemon_run(ag_daemon *d)
{
    uv_run(&d->loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(&d->loop);
    if (r < 0) {
        /* a subsystem left a handle open: a bug, said loudly; then close
         * what is left so the process still exits cleanly */
        es_err("event loop still had open handles at exit (%s); closing them", uv_strerror(r));
        uv_walk(&d->loop, close_walk_cb, NULL);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        uv_loop_close(&d->loop);
        return d->exit_code ? d->exit_code : 1;
    }
    return d->exit_code;
}
