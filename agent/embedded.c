#include "agent/embedded.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aws/local/auth.h"
#include "aws/local/authz.h"
#include "aws/local/iam.h"
#include "aws/local/local.h"
#include "aws/local/server.h"
#include "common/alloc.h"
#include "common/log.h"

struct ag_embedded {
    al_ctx *store;
    al_server *server;
};

static void server_closed(void *arg)
{
    ag_embedded *e = arg;
    al_close(e->store);
    es_free(e);
}

static void on_stop(ag_daemon *d, void *arg)
{
    (void)d;
    ag_embedded *e = arg;
    al_server_stats st;
    al_server_get_stats(e->server, &st);
    es_info("embedded endpoints: closing the listener after %llu connections (%llu refused), "
            "%llu requests (%llu 4xx, %llu 5xx, %llu refused signatures), limits hit: %llu head, "
            "%llu body, %llu malformed, %llu idle and %llu request timeouts",
            (unsigned long long)st.connections_accepted, (unsigned long long)st.connections_refused,
            (unsigned long long)st.requests, (unsigned long long)st.errors_4xx,
            (unsigned long long)st.errors_5xx, (unsigned long long)st.auth_failures,
            (unsigned long long)st.header_too_large, (unsigned long long)st.body_too_large,
            (unsigned long long)st.malformed, (unsigned long long)st.idle_timeouts,
            (unsigned long long)st.request_timeouts);
    al_server_close(e->server, server_closed, e);
}

/* Roles declared in files: <directory of the configuration file>/roles/
 * (e.g. /etc/ecs-secrets-agent/roles/NAME.json, format in aws/local/iam.h). */
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
    ag_embedded *e = arg;
    if (load_roles(d->cfg, e->store) == 0)
        es_info("embedded IAM: role files reloaded");
}

int ag_embedded_start(ag_daemon *d, ag_embedded **out)
{
    const cf_config *cfg = d->cfg;
    const char *dir = cf_get(cfg, CF_STATE_DIR);
    char err[512] = "";
    ag_embedded *e = es_calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    al_options o = {
        .state_dir = dir, .region = cf_get(cfg, CF_REGION), .account = cf_get(cfg, CF_ACCOUNT_ID)};
    int r = al_open(&o, &e->store, err, sizeof err);
    if (r < 0) {
        es_err("embedded store in %s: %s", dir, err);
        es_free(e);
        return r;
    }
    /* every call is evaluated against the caller's IAM policies (authz.h) */
    al_authz_install(e->store);
    r = load_roles(cfg, e->store);
    if (r < 0)
        goto fail;
    char akid[AL_AKID_LEN + 1];
    r = al_admin_init(e->store, dir, akid, err, sizeof err);
    if (r < 0) {
        es_err("embedded endpoints: administrator key: %s", err);
        goto fail;
    }
    r = al_server_start(&d->loop, e->store, cfg->listen_host, cfg->listen_port, NULL, &e->server);
    if (r < 0) {
        es_err("embedded endpoints: cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port,
               uv_strerror(r));
        goto fail;
    }
    r = ag_daemon_on_reload(d, on_reload, e);
    if (r == 0)
        r = ag_daemon_on_stop(d, on_stop, e);
    if (r < 0) {
        es_err("embedded endpoints: no room for a stop or reload hook");
        al_server_close(e->server, server_closed, e);
        return r;
    }
    char url[300];
    snprintf(url, sizeof url, "http://%s%s%s:%d", strchr(cfg->listen_host, ':') ? "[" : "",
             cfg->listen_host, strchr(cfg->listen_host, ':') ? "]" : "", al_server_port(e->server));
    es_notice("embedded SSM, Secrets Manager and KMS endpoints on %s (administrator key %s)", url,
              akid);
    es_notice("use them with: AWS_SHARED_CREDENTIALS_FILE=%s/%s AWS_CONFIG_FILE=%s/%s aws "
              "--profile %s --endpoint-url %s ssm get-parameter --name NAME",
              dir, AL_CREDENTIALS_FILE, dir, AL_CONFIG_FILE, AL_AUTH_PROFILE, url);
    *out = e;
    return 0;
fail:
    al_close(e->store);
    es_free(e);
    return r;
}

al_server *ag_embedded_server(ag_embedded *e)
{
    return e->server;
}

al_ctx *ag_embedded_store(ag_embedded *e)
{
    return e->store;
}
