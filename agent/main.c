/* main.c - ecs-secrets-agent: configuration, then the daemon's loop. */
#include "agent/daemon.h"
#include "agent/agent.h"
#include "agent/check.h"
#include "agent/notify.h"
#include "agent/reload.h"
#include "common/buf.h"
#include "common/log.h"
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* Debian's libcurl links librtmp, which links GnuTLS, whose constructor initialises the
 * whole library before main (its random generator, the system's priority file, p11-kit):
 * 0.8 MiB resident (docs/BENCHMARKS.md, memory) for a library the agent never calls: its
 * TLS is OpenSSL's, and no rtmp:// URL is ever given to curl. GnuTLS asks the program,
 * through this weak symbol of its own, whether to skip that implicit initialisation; a
 * program that used GnuTLS would call gnutls_global_init itself. The link exports it
 * (agent/CMakeLists.txt) so that the dynamic linker binds GnuTLS's call to it. */
int _gnutls_global_init_skip(void);
__attribute__((visibility("default"), used)) int _gnutls_global_init_skip(void)
{
    return 1;
}

typedef struct reload_ctx {
    ag_reload *reload;
    char running[AG_STATUS_MAX]; /* the STATUS= text of a running agent */
} reload_ctx;

/* SIGHUP: the configuration again; STATUS= says how the last reload went. */
static void on_reload(ag_daemon *d, void *arg)
{
    reload_ctx *rc = arg;
    ag_reload_result res;
    if (ag_reload_run(rc->reload, environ, &res) < 0)
        ag_daemon_status(d, "%s; last reload refused: configuration error (see the log)",
                         rc->running);
    else if (res.refused)
        ag_daemon_status(d, "%s; last reload: %d applied, %d need a restart", rc->running,
                         res.applied, res.refused);
    else
        ag_daemon_status(d, "%s; last reload: %d applied", rc->running, res.applied);
}

int main(int argc, char *argv[])
{
    es_log_init();
    cf_config cfg;
    cf_action action;
    es_buf err;
    es_buf_init(&err, CF_ERROR_MAX);
    if (cf_load(&cfg, argc, argv, environ, &action, &err) < 0) {
        fprintf(stderr, "ecs-secrets-agent: configuration error: %s\n", es_buf_cstr(&err));
        es_buf_free(&err);
        return 2;
    }
    es_buf_free(&err);
    switch (action) {
    case CF_ACTION_HELP:
        cf_print_help(stdout, "ecs-secrets-agent");
        return 0;
    case CF_ACTION_VERSION:
        printf("ecs-secrets-agent %s\n", ES_VERSION);
        return 0;
    case CF_ACTION_CHECK: {
        cf_print(&cfg, stdout);
        int problems = ag_check_environment(&cfg, stdout);
        if (problems)
            printf("# configuration valid, but %d problem%s above\n", problems,
                   problems == 1 ? "" : "s");
        else
            printf("# configuration OK\n");
        cf_free(&cfg);
        return problems ? 1 : 0;
    }
    case CF_ACTION_RUN:
        break;
    }

    es_log_set_level(cfg.log_level);
    es_notice("ecs-secrets-agent %s starting: mode %s, cluster %s, region %s, state %s", ES_VERSION,
              cf_get(&cfg, CF_MODE), cf_get(&cfg, CF_CLUSTER), cf_get(&cfg, CF_REGION),
              cf_get(&cfg, CF_STATE_DIR));
    ag_notifyf("STATUS=starting: preparing the state directory %s", cf_get(&cfg, CF_STATE_DIR));
    int rc = 1;
    reload_ctx reload = {0};
    int r = ag_reload_create(&reload.reload, &cfg, argc, argv, environ);
    if (r < 0) {
        es_err("configuration reload: %s", strerror(-r));
        goto out;
    }
    ag_daemon d;
    if (ag_daemon_init(&d, &cfg) < 0)
        goto out;
    if ((r = ag_daemon_on_reload(&d, on_reload, &reload)) < 0) {
        es_err("configuration reload: %s", strerror(-r));
        ag_daemon_stop(&d, 1);
        ag_daemon_run(&d);
        goto out;
    }
    snprintf(reload.running, sizeof reload.running, "running: mode %s, cluster %s, region %s",
             cf_get(&cfg, CF_MODE), cf_get(&cfg, CF_CLUSTER), cf_get(&cfg, CF_REGION));
    /* READY=1 once the listener is up and Docker has answered (agent.h) */
    if (ag_agent_start(&d, reload.running) < 0) {
        ag_daemon_stop(&d, 1);
        ag_daemon_run(&d);
        goto out;
    }
    rc = ag_daemon_run(&d);
    es_notice("stopped");
out:
    ag_reload_free(reload.reload);
    cf_free(&cfg);
    return rc;
}
