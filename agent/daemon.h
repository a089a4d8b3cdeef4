/* daemon.h - the process: one libuv loop, signals, readiness, shutdown.
 *
 * The daemon owns the loop and every subsystem hanging from it. Subsystems
 * register a stop hook; on SIGTERM/SIGINT the daemon tells systemd
 * STOPPING=1, calls every hook (newest first) so each closes its handles,
 * and lets the loop run dry, so that uv_loop_close() answers 0: nothing is
 * left open or leaked at exit. */
#ifndef ES_AGENT_DAEMON_H
#define ES_AGENT_DAEMON_H

#include <stdbool.h>
#include <uv.h>

#include "config/config.h"

typedef struct ag_daemon ag_daemon;

/* A subsystem's stop hook: close handles, finish or abandon work. */
typedef void (*ag_stop_fn)(ag_daemon *d, void *arg);
/* A reload hook (SIGHUP): re-read and apply what can change safely. */
typedef void (*ag_reload_fn)(ag_daemon *d, void *arg);

#define AG_MAX_STOP_HOOKS 16
#define AG_MAX_RELOAD_HOOKS 8
#define AG_STATUS_MAX 200

struct ag_daemon {
    uv_loop_t loop;
    const cf_config *cfg;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog;
    bool watchdog_on;
    bool stopping;
    bool ready;     /* READY=1 sent: a reload then brackets itself with RELOADING=1 */
    bool reloading; /* in the reload hooks: STATUS= waits for the READY=1 after them */
    int exit_code;
    struct {
        ag_stop_fn fn;
        void *arg;
    } hooks[AG_MAX_STOP_HOOKS];
    int nhooks;
    struct {
        ag_reload_fn fn;
        void *arg;
    } reload_hooks[AG_MAX_RELOAD_HOOKS];
    int nreload;
    char status[AG_STATUS_MAX]; /* the last STATUS= sent */
};

/* Prepares the state directory (created 0700; refused when group- or
 * world-writable, or owned by someone else) and the loop. 0 or -errno; the
 * reason is logged here, at the process boundary. */
int ag_daemon_init(ag_daemon *d, const cf_config *cfg);
/* Registers a stop hook; -ENOSPC past AG_MAX_STOP_HOOKS. */
int ag_daemon_on_stop(ag_daemon *d, ag_stop_fn fn, void *arg);
/* Registers a reload hook, run on SIGHUP (oldest first) between
 * RELOADING=1 and READY=1; -ENOSPC past AG_MAX_RELOAD_HOOKS. Without hooks
 * SIGHUP is logged as having nothing to reload. */
int ag_daemon_on_reload(ag_daemon *d, ag_reload_fn fn, void *arg);
/* Tells systemd READY=1 with a STATUS= line; call once every listener is up. */
void ag_daemon_ready(ag_daemon *d, const char *status);
/* Sends STATUS= (what the agent is doing, for systemctl status) and keeps it;
 * truncated to AG_STATUS_MAX - 1 bytes. */
void ag_daemon_status(ag_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Starts a graceful stop (as SIGTERM does). */
void ag_daemon_stop(ag_daemon *d, int exit_code);
/* Runs the loop until stopped; closes it. Returns the exit code. */
int ag_daemon_run(ag_daemon *d);

/* Creates dir and its parents; the last component gets `mode`. 0 or -errno. */
int ag_mkdir_p(const char *dir, unsigned mode);

#endif
