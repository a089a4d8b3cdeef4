/* reload.h - SIGHUP: re-read the configuration, apply what can change safely.
 *
 * A reload loads the configuration again, the way start-up did (defaults,
 * the file, the environment, the command line), compares it with the running
 * one key by key, and:
 *   - applies the keys that can change while running (ag_reload_key_is_
 *     reloadable: the log level today; limits join the list as they land),
 *     with one log line each, "ECS_LOGLEVEL: info -> debug";
 *   - refuses every other change (listen address, state directory, Docker
 *     socket, mode, credentials, ...) with a warning that names the key and
 *     says a restart is needed; the running value stays;
 *   - keeps the running configuration whole when the new one is invalid, and
 *     says why.
 * Secret values never reach a line: a changed secret is named, not shown.
 *
 * The environment and EnvironmentFile=: systemd reads agent.conf into the
 * process environment once, at start, so on a reload the environment still
 * holds the file's old values and, being the later layer, would hide every
 * edit. A reload therefore ignores an environment variable whose value is
 * exactly what the file assigned to that key at start-up (it came from the
 * file); any other environment value (Environment= in a drop-in, a shell)
 * still wins over the file, as at start-up. */
#ifndef ES_AGENT_RELOAD_H
#define ES_AGENT_RELOAD_H

#include <stdbool.h>

#include "config/config.h"

typedef struct ag_reload ag_reload;

typedef struct ag_reload_result {
    int applied; /* keys whose new value now runs */
    int refused; /* keys that changed but need a restart */
} ag_reload_result;

/* live: the running configuration (loaded by cf_load from argc/argv/envp);
 * a reload updates its reloadable keys in place. The reloader copies what it
 * needs from argv and envp (the file's start-up assignments are read here).
 * 0 or -errno; *out untouched on failure. */
int ag_reload_create(ag_reload **out, cf_config *live, int argc, char *const argv[],
                     char *const envp[]);
void ag_reload_free(ag_reload *r);

/* One reload against the current environment envp (environ). Logs what
 * changed. 0, or -EINVAL when the new configuration is invalid (nothing
 * changed), or -ENOMEM. res is filled on 0. */
int ag_reload_run(ag_reload *r, char *const envp[], ag_reload_result *res);

bool ag_reload_key_is_reloadable(cf_key_id k);

#endif
