/* check.h - what --check-config checks beyond the configuration's syntax:
 * the environment the daemon would start in, without changing anything.
 *
 *   - Docker: the socket of DOCKER_HOST answers GET /_ping (2 s at most);
 *   - the state directory: it exists as a directory of ours that we may write,
 *     or the nearest existing parent is one we may create it in;
 *   - the listener's scheme: http on loopback; https (ECS_SECRETS_TLS_CERT
 *     and ECS_SECRETS_TLS_KEY, the only way off loopback: cf_load refuses a
 *     listener elsewhere without them) with the certificate and key loaded
 *     as the agent loads them, and the certificate within its validity;
 *   - ECS_SECRETS_CA_FILE, when set, is readable.
 *
 * Problems (Docker silent, state directory unusable, a certificate or key
 * that does not load, a CA file we cannot read) make the check fail;
 * warnings do not. Each finding is one "# check:", "# problem:" or
 * "# warning:" line that says what was found and what the daemon would do. */
#ifndef AG_CHECK_H
#define AG_CHECK_H

#include <stdio.h>

#include "config/config.h"

#define AG_CHECK_DOCKER_TIMEOUT_MS 2000

/* Prints the findings to out; returns how many problems there were. */
int ag_check_environment(const cf_config *cfg, FILE *out);

#endif
