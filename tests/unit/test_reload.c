/* SIGHUP reload: what changes, what is refused, what the log says, and the
 * EnvironmentFile= interplay (the environment holds the file's start-up
 * values). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/reload.h"
#include "common/alloc.h"
#include "common/log.h"
#include "config/config.h"

static char dir[64];
static char conf[128];
static char logged[16384];

static void sink(es_log_level l, const char *line, void *arg)
{
    (void)l;
    (void)arg;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s\n", line);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/es-reload-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(conf, sizeof conf, "%s/agent.conf", dir);
    logged[0] = '\0';
    es_log_set_sink(sink, NULL);
    es_log_set_level(ES_LOG_DEBUG);
}

static void teardown(void)
{
    es_log_set_sink(NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(reload, .init = setup, .fini = teardown);

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *argv_[] = {"ecs-secrets-agent", "--config", conf, NULL};

static void load(cf_config *c, char *const envp[])
{
    cf_action action;
    es_buf err;
    es_buf_init(&err, 4096);
    int r = cf_load(c, 3, argv_, envp, &action, &err);
    cr_assert_eq(r, 0, "%s", es_buf_cstr(&err));
    es_buf_free(&err);
}

Test(reload, applies_log_level_refuses_restart_keys)
{
    write_conf("ECS_LOGLEVEL=info\nECS_CLUSTER=one\nECS_SECRETS_LISTEN=127.0.0.1:4577\n");
    cf_config live;
    load(&live, NULL);
    ag_reload *r = NULL;
    cr_assert_eq(ag_reload_create(&r, &live, 3, argv_, NULL), 0);

    /* another loopback address: one off loopback needs TLS (see
     * refuses_listener_off_loopback_without_tls) */
    write_conf("ECS_LOGLEVEL=debug\nECS_CLUSTER=two\nECS_SECRETS_LISTEN=127.0.0.2:80\n"
               "ECS_SECRETS_STATE_DIR=/srv/elsewhere\n");
    ag_reload_result res;
    cr_assert_eq(ag_reload_run(r, NULL, &res), 0, "%s", logged);
    cr_assert_eq(res.applied, 1);
    cr_assert_eq(res.refused, 3);
    cr_assert_eq(live.log_level, ES_LOG_DEBUG);
    cr_assert_str_eq(cf_get(&live, CF_LOG_LEVEL), "debug");
    cr_assert_eq(es_log_get_level(), ES_LOG_DEBUG);
    /* refused: the running values stay, typed views included */
    cr_assert_str_eq(cf_get(&live, CF_CLUSTER), "one");
    cr_assert_str_eq(cf_get(&live, CF_LISTEN), "127.0.0.1:4577");
    cr_assert_eq(live.listen_port, 4577);
    cr_assert_str_eq(cf_get(&live, CF_STATE_DIR), "/var/lib/ecs-secrets-agent");
    cr_assert_not_null(strstr(logged, "ECS_LOGLEVEL: info -> debug"), "%s", logged);
    cr_assert_not_null(strstr(logged, "ECS_SECRETS_LISTEN changed (127.0.0.1:4577 -> 127.0.0.2:80"),
                       "%s", logged);
    cr_assert_not_null(strstr(logged, "ECS_SECRETS_STATE_DIR changed"), "%s", logged);
    cr_assert_not_null(strstr(logged, "needs a restart"), "%s", logged);
    cr_assert_not_null(strstr(logged, "1 change applied, 3 refused"), "%s", logged);
    char src[160];
    snprintf(src, sizeof src, "%s:1", conf);
    cr_assert_str_eq(cf_source(&live, CF_LOG_LEVEL), src);

    /* the same file again: nothing to do */
    logged[0] = '\0';
    write_conf("ECS_LOGLEVEL=debug\nECS_CLUSTER=one\nECS_SECRETS_LISTEN=127.0.0.1:4577\n");
    cr_assert_eq(ag_reload_run(r, NULL, &res), 0);
    cr_assert_eq(res.applied, 0);
    cr_assert_eq(res.refused, 0);
    cr_assert_not_null(strstr(logged, "configuration unchanged"), "%s", logged);

    ag_reload_free(r);
    cf_free(&live);
    es_log_set_level(ES_LOG_INFO);
}

Test(reload, invalid_file_keeps_running_configuration)
{
    write_conf("ECS_LOGLEVEL=warn\n");
    cf_config live;
    load(&live, NULL);
    ag_reload *r = NULL;
    cr_assert_eq(ag_reload_create(&r, &live, 3, argv_, NULL), 0);
    write_conf("ECS_LOGLEVEL=debug\nECS_SECRETS_MODE=cloudy\n");
    ag_reload_result res = {.applied = -7};
    cr_assert_eq(ag_reload_run(r, NULL, &res), -EINVAL);
    cr_assert_eq(res.applied, -7, "result untouched on failure");
    cr_assert_str_eq(cf_get(&live, CF_LOG_LEVEL), "warn");
    cr_assert_eq(live.log_level, ES_LOG_WARN);
    cr_assert_not_null(strstr(logged, ":2: ECS_SECRETS_MODE: must be"), "%s", logged);
    cr_assert_not_null(strstr(logged, "keeping the running configuration"), "%s", logged);
    ag_reload_free(r);
    cf_free(&live);
}

/* Issue 17: a reload to a listener off loopback without TLS is refused as the
 * start refuses it (a configuration error: nothing applied, not even the
 * log level); with a certificate and key it is a change like any other that
 * needs a restart. */
Test(reload, refuses_listener_off_loopback_without_tls)
{
    write_conf("ECS_LOGLEVEL=info\nECS_SECRETS_LISTEN=127.0.0.1:4577\n");
    cf_config live;
    load(&live, NULL);
    ag_reload *r = NULL;
    cr_assert_eq(ag_reload_create(&r, &live, 3, argv_, NULL), 0);

    write_conf("ECS_LOGLEVEL=debug\nECS_SECRETS_LISTEN=0.0.0.0:80\n");
    ag_reload_result res = {.applied = -7};
    cr_assert_eq(ag_reload_run(r, NULL, &res), -EINVAL, "%s", logged);
    cr_assert_eq(res.applied, -7, "result untouched on failure");
    cr_assert_str_eq(cf_get(&live, CF_LOG_LEVEL), "info");
    cr_assert_str_eq(cf_get(&live, CF_LISTEN), "127.0.0.1:4577");
    cr_assert_not(live.listen_tls);
    cr_assert_not_null(strstr(logged, "reload: configuration error: "), "%s", logged);
    cr_assert_not_null(strstr(logged, ":2: ECS_SECRETS_LISTEN 0.0.0.0:80 is not loopback: it needs "
                                      "ECS_SECRETS_TLS_CERT and ECS_SECRETS_TLS_KEY (answers "
                                      "carry secret values)"),
                       "%s", logged);
    cr_assert_not_null(strstr(logged, "keeping the running configuration"), "%s", logged);

    /* one of the two: refused the same way */
    logged[0] = '\0';
    write_conf("ECS_LOGLEVEL=debug\nECS_SECRETS_LISTEN=0.0.0.0:80\n"
               "ECS_SECRETS_TLS_CERT=/etc/tls/cert.pem\n");
    cr_assert_eq(ag_reload_run(r, NULL, &res), -EINVAL, "%s", logged);
    cr_assert_not_null(strstr(logged, "ECS_SECRETS_TLS_CERT is set but ECS_SECRETS_TLS_KEY is not"),
                       "%s", logged);
    cr_assert_str_eq(cf_get(&live, CF_LOG_LEVEL), "info");

    /* both: valid; the listener keys need a restart, the log level applies */
    logged[0] = '\0';
    write_conf("ECS_LOGLEVEL=debug\nECS_SECRETS_LISTEN=0.0.0.0:80\n"
               "ECS_SECRETS_TLS_CERT=/etc/tls/cert.pem\nECS_SECRETS_TLS_KEY=/etc/tls/key.pem\n");
    cr_assert_eq(ag_reload_run(r, NULL, &res), 0, "%s", logged);
    cr_assert_eq(res.applied, 1);
    cr_assert_eq(res.refused, 3);
    cr_assert_str_eq(cf_get(&live, CF_LISTEN), "127.0.0.1:4577");
    cr_assert_null(cf_get(&live, CF_TLS_CERT));
    cr_assert_not(live.listen_tls);
    cr_assert_not_null(strstr(logged, "ECS_SECRETS_TLS_CERT changed ((unset) -> /etc/tls/cert.pem"),
                       "%s", logged);
    cr_assert_not_null(strstr(logged, "ECS_SECRETS_TLS_KEY changed"), "%s", logged);
    cr_assert_str_eq(cf_get(&live, CF_LOG_LEVEL), "debug");
    ag_reload_free(r);
    cf_free(&live);
    es_log_set_level(ES_LOG_INFO);
}

Test(reload, secrets_are_named_never_shown)
{
    write_conf("ECS_SECRETS_ACCESS_KEY_ID=AKIDEXAMPLE\n"
               "ECS_SECRETS_SECRET_ACCESS_KEY=OldSecretValue1\n");
    cf_config live;
    load(&live, NULL);
    ag_reload *r = NULL;
    cr_assert_eq(ag_reload_create(&r, &live, 3, argv_, NULL), 0);
    write_conf("ECS_SECRETS_ACCESS_KEY_ID=AKIDEXAMPLE\n"
               "ECS_SECRETS_SECRET_ACCESS_KEY=NewSecretValue2\n");
    ag_reload_result res;
    cr_assert_eq(ag_reload_run(r, NULL, &res), 0);
    cr_assert_eq(res.refused, 1);
    cr_assert_null(strstr(logged, "SecretValue"), "%s", logged);
    cr_assert_not_null(strstr(logged, "needs a restart"), "%s", logged);
    ag_reload_free(r);
    cf_free(&live);
}

/* systemd put the file's start-up values into the environment; an edit of
 * the file must still take effect on reload, while a value the environment
 * set on its own (a drop-in's Environment=) keeps winning. */
Test(reload, environment_from_environmentfile_does_not_hide_edits)
{
    write_conf("ECS_LOGLEVEL=info\nECS_CLUSTER=one\n");
    /* as systemd starts us: EnvironmentFile= values, plus a drop-in's cluster */
    char *envp[] = {"ECS_LOGLEVEL=info", "ECS_CLUSTER=dropin", "PATH=/usr/bin", NULL};
    cf_config live;
    load(&live, envp);
    cr_assert_str_eq(cf_get(&live, CF_CLUSTER), "dropin");
    ag_reload *r = NULL;
    cr_assert_eq(ag_reload_create(&r, &live, 3, argv_, envp), 0);

    write_conf("ECS_LOGLEVEL=debug\nECS_CLUSTER=two\n");
    ag_reload_result res;
    cr_assert_eq(ag_reload_run(r, envp, &res), 0, "%s", logged);
    cr_assert_str_eq(cf_get(&live, CF_LOG_LEVEL), "debug", "%s", logged);
    cr_assert_eq(res.applied, 1);
    cr_assert_eq(res.refused, 0, "the environment's cluster still wins: %s", logged);
    cr_assert_str_eq(cf_get(&live, CF_CLUSTER), "dropin");

    /* a key removed from the file falls back to its default */
    write_conf("ECS_CLUSTER=two\n");
    cr_assert_eq(ag_reload_run(r, envp, &res), 0, "%s", logged);
    cr_assert_str_eq(cf_get(&live, CF_LOG_LEVEL), "info", "%s", logged);
    cr_assert_str_eq(cf_source(&live, CF_LOG_LEVEL), "default");
    ag_reload_free(r);
    cf_free(&live);
    es_log_set_level(ES_LOG_INFO);
}

Test(reload, reloadable_keys)
{
    cr_assert(ag_reload_key_is_reloadable(CF_LOG_LEVEL));
    cr_assert(ag_reload_key_is_reloadable(CF_DRIFT_INTERVAL));
    cr_assert_not(ag_reload_key_is_reloadable(CF_LISTEN));
    cr_assert_not(ag_reload_key_is_reloadable(CF_TLS_CERT));
    cr_assert_not(ag_reload_key_is_reloadable(CF_TLS_KEY));
    cr_assert_not(ag_reload_key_is_reloadable(CF_CA_FILE));
    cr_assert_not(ag_reload_key_is_reloadable(CF_STATE_DIR));
    cr_assert_not(ag_reload_key_is_reloadable(CF_DOCKER_HOST));
    cr_assert_not(ag_reload_key_is_reloadable(CF_SECRET_ACCESS_KEY));
}

Test(reload, allocation_failures_never_leak)
{
    write_conf("ECS_LOGLEVEL=info\nECS_CLUSTER=one\n");
    cf_config live;
    load(&live, NULL);
    write_conf("ECS_LOGLEVEL=info\nECS_CLUSTER=one\n");
    bool created = false, ran = false;
    for (long n = 0; n < 200 && !(created && ran); n++) {
        ag_reload *r = NULL;
        es_alloc_fail_after(n);
        int c = ag_reload_create(&r, &live, 3, argv_, NULL);
        es_alloc_fail_after(-1);
        if (c < 0) {
            cr_assert(c == -ENOMEM || c == -EINVAL, "n=%ld c=%d", n, c);
            cr_assert_null(r);
            continue;
        }
        created = true;
        write_conf("ECS_LOGLEVEL=debug\nECS_CLUSTER=one\n");
        ag_reload_result res;
        es_alloc_fail_after(n);
        int rr = ag_reload_run(r, NULL, &res);
        es_alloc_fail_after(-1);
        if (rr == 0)
            ran = true;
        else
            cr_assert(rr == -ENOMEM || rr == -EINVAL, "n=%ld rr=%d", n, rr);
        ag_reload_free(r);
        write_conf("ECS_LOGLEVEL=info\nECS_CLUSTER=one\n");
    }
    cr_assert(created && ran);
    cf_free(&live);
    es_log_set_level(ES_LOG_INFO);
}
