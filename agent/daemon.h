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

#define AG_MAX_STOP_HOOKS 16

struct ag_daemon {
    uv_loop_t loop;
    const cf_config *cfg;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t watchdog;
    bool watchdog_on;
    bool stopping;
    int exit_code;
    struct {
        ag_stop_fn fn;
        void *arg;
    } hooks[AG_MAX_STOP_HOOKS];
    int nhooks;
};

/* Prepares the state directory (created 0700; refused when group- or
 * world-writable, or owned by someone else) and the loop. 0 or -errno; the
 * reason is logged here, at the process boundary. */
int ag_daemon_init(ag_daemon *d, const cf_config *cfg);
/* Registers a stop hook; -ENOSPC past AG_MAX_STOP_HOOKS. */
int ag_daemon_on_stop(ag_daemon *d, ag_stop_fn fn, void *arg);
/* Tells systemd READY=1 with a STATUS= line; call once every listener is up. */
void ag_daemon_ready(ag_daemon *d, const char *status);
/* Starts a graceful stop (as SIGTERM does). */
void ag_daemon_stop(ag_daemon *d, int exit_code);
/* Runs the loop until stopped; closes it. Returns the exit code. */
int ag_daemon_run(ag_daemon *d);

/* Creates dir and its parents; the last component gets `mode`. 0 or -errno. */
int ag_mkdir_p(const char *dir, unsigned mode);

#endif
