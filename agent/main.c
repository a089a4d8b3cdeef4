/* main.c - ecs-secrets-agent: configuration, then the daemon's loop. */
#include "agent/daemon.h"
#include "common/buf.h"
#include "common/log.h"
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char *argv[])
{
    es_log_init();
    cf_config cfg;
    cf_action action;
    es_buf err;
    es_buf_init(&err, 4096);
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
    case CF_ACTION_CHECK:
        cf_print(&cfg, stdout);
        printf("# configuration OK\n");
        cf_free(&cfg);
        return 0;
    case CF_ACTION_RUN:
        break;
    }

    es_log_set_level(cfg.log_level);
    es_notice("ecs-secrets-agent %s starting: mode %s, cluster %s, region %s, state %s",
              ES_VERSION, cf_get(&cfg, CF_MODE), cf_get(&cfg, CF_CLUSTER),
              cf_get(&cfg, CF_REGION), cf_get(&cfg, CF_STATE_DIR));
    ag_daemon d;
    int rc = ag_daemon_init(&d, &cfg);
    if (rc < 0) {
        cf_free(&cfg);
        return 1;
    }
    ag_daemon_ready(&d, "running");
    rc = ag_daemon_run(&d);
    es_notice("stopped");
    cf_free(&cfg);
    return rc;
}
