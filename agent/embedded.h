/* embedded.h - the embedded AWS endpoints in the daemon (mode=embedded).
 *
 * Opens the store (aws/local) in the state directory, makes sure the
 * administrator key and its shared-credentials/config files exist, starts the
 * loopback listener on CF_LISTEN, and logs how to point the aws CLI at it.
 * A stop hook closes the listener and its connections, then the store. */
#ifndef AG_EMBEDDED_H
#define AG_EMBEDDED_H

#include "agent/daemon.h"

typedef struct ag_embedded ag_embedded;

/* 0 or -errno; the reason is logged here (process boundary). */
int ag_embedded_start(ag_daemon *d, ag_embedded **out);

/* The listener, for other modules' routes (al_server_add_json_route: the
 * ECS API; al_server_add_get_route: metrics), and the store (its access keys
 * verify those routes' callers too). Valid until the daemon's stop hooks
 * have run. */
struct al_server *ag_embedded_server(ag_embedded *e);
struct al_ctx *ag_embedded_store(ag_embedded *e);

#endif
