#include "agent/reload.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/secure.h"

#include <errno.h>
#include <string.h>

/* The keys that may change while the agent runs. Everything else is read
 * once, at start-up, by the subsystem that uses it (the listener binds once,
 * the state directory holds open databases, credentials are in the AWS
 * clients), so a change there needs a restart. */
static const cf_key_id reloadable[] = {CF_LOG_LEVEL, CF_DRIFT_INTERVAL, CF_RECONCILE_INTERVAL};

/* Bounds on what a reload copies from the command line and the environment. */
#define AG_RELOAD_MAX_ARGS 256
#define AG_RELOAD_MAX_ENV 4096

struct ag_reload {
    cf_config *live;
    int argc;
    char **argv;                  /* our copies; cf_load's getopt permutes them */
    char *file_val[CF_KEY_COUNT]; /* what the file assigned at start-up, or NULL */
};

bool ag_reload_key_is_reloadable(cf_key_id k)
{
    for (size_t i = 0; i < sizeof reloadable / sizeof reloadable[0]; i++)
        if (reloadable[i] == k)
            return true;
    return false;
}

static int key_index(const char *name, size_t len)
{
    for (int k = 0; k < CF_KEY_COUNT; k++)
        if (strlen(cf_keys[k].name) == len && memcmp(cf_keys[k].name, name, len) == 0)
            return k;
    return -1;
}

static int snapshot_assign(const char *key, const char *value, unsigned line, void *arg)
{
    (void)line;
    ag_reload *r = arg;
    int k = key_index(key, strlen(key));
    if (k < 0)
        return 0; /* cf_load refused it already; not ours to judge here */
    char *v = es_strdup(value);
    if (!v)
        return -ENOMEM;
    es_free_secret_str(r->file_val[k]); /* the last assignment wins, as in cf_load */
    r->file_val[k] = v;
    return 0;
}

void ag_reload_free(ag_reload *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->argc; i++)
        es_free_secret_str(r->argv[i]);
    es_free(r->argv);
    for (int k = 0; k < CF_KEY_COUNT; k++)
        es_free_secret_str(r->file_val[k]);
    es_free(r);
}

int ag_reload_create(ag_reload **out, cf_config *live, int argc, char *const argv[],
                     char *const envp[])
{
    (void)envp; /* the environment is read again at each reload */
    if (argc < 0 || argc > AG_RELOAD_MAX_ARGS)
        return -E2BIG;
    int ret = 0;
    es_buf err;
    es_buf_init(&err, CF_ERROR_MAX);
    ag_reload *r = es_calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->live = live;
    r->argv = es_calloc((size_t)argc + 1, sizeof *r->argv);
    if (!r->argv) {
        ret = -ENOMEM;
        goto out;
    }
    for (; r->argc < argc; r->argc++) {
        if (!(r->argv[r->argc] = es_strdup(argv[r->argc]))) {
            ret = -ENOMEM;
            goto out;
        }
    }
    const char *file = cf_get(live, CF_CONFIG_FILE);
    if (file && (ret = cf_read_file(file, false, snapshot_assign, r, &err)) < 0)
        goto out;
    *out = r;
    r = NULL;
out:
    es_buf_free_secret(&err);
    ag_reload_free(r);
    return ret;
}

/* The environment a reload loads: envp without the entries that systemd
 * took from the file at start-up (see reload.h). The strings stay envp's. */
static int filtered_env(const ag_reload *r, char *const envp[], char ***ret_env)
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    if (n > AG_RELOAD_MAX_ENV)
        return -E2BIG;
    char **env = es_calloc(n + 1, sizeof *env);
    if (!env)
        return -ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(envp[i], '=');
        if (eq) {
            int k = key_index(envp[i], (size_t)(eq - envp[i]));
            if (k >= 0 && r->file_val[k] && strcmp(r->file_val[k], eq + 1) == 0)
                continue;
        }
        env[m++] = envp[i];
    }
    env[m] = NULL;
    *ret_env = env;
    return 0;
}

static bool same(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static const char *shown(cf_key_id k, const char *v)
{
    if (!v)
        return "(unset)";
    return cf_keys[k].secret ? "****" : v;
}

int ag_reload_run(ag_reload *r, char *const envp[], ag_reload_result *res)
{
    ag_reload_result out = {0};
    cf_config fresh;
    cf_action action;
    char **env = NULL;
    es_buf err;
    es_buf_init(&err, CF_ERROR_MAX);
    int ret = filtered_env(r, envp, &env);
    if (ret < 0) {
        es_err("reload: environment: %s; keeping the running configuration", strerror(-ret));
        goto out;
    }
    ret = cf_load(&fresh, r->argc, r->argv, env, &action, &err);
    if (ret < 0) {
        es_err("reload: configuration error: %s; keeping the running configuration",
               ret == -ENOMEM ? "out of memory" : es_buf_cstr(&err));
        goto out;
    }
    for (int i = 0; i < CF_KEY_COUNT; i++) {
        cf_key_id k = (cf_key_id)i;
        const char *old = cf_get(r->live, k), *now = cf_get(&fresh, k);
        if (k == CF_CONFIG_FILE || same(old, now))
            continue;
        if (!ag_reload_key_is_reloadable(k)) {
            out.refused++;
            es_warn("reload: %s changed (%s -> %s, from %s) but needs a restart; still "
                    "using %s",
                    cf_keys[k].name, shown(k, old), shown(k, now), cf_source(&fresh, k),
                    shown(k, old));
            continue;
        }
        /* the log line first: shown() reads the values cf_adopt moves */
        es_notice("reload: %s: %s -> %s (from %s)", cf_keys[k].name, shown(k, old), shown(k, now),
                  cf_source(&fresh, k));
        if ((ret = cf_adopt(r->live, &fresh, k)) < 0) {
            es_err("reload: %s: cannot apply (%s)", cf_keys[k].name, strerror(-ret));
            cf_free(&fresh);
            goto out;
        }
        out.applied++;
        if (k == CF_LOG_LEVEL)
            es_log_set_level(r->live->log_level);
    }
    cf_free(&fresh);
    if (!out.applied && !out.refused)
        es_notice("reload: configuration unchanged");
    else
        es_notice("reload: %d change%s applied, %d refused (restart to apply those)", out.applied,
                  out.applied == 1 ? "" : "s", out.refused);
    *res = out;
out:
    es_free(env);
    es_buf_free_secret(&err);
    return ret;
}
