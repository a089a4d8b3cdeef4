/* sm_hook.h - one step of a Secrets Manager rotation hook as a child process
 * (secretsmanager.h says what a hook gets and when it runs). */
#ifndef AL_SM_HOOK_H
#define AL_SM_HOOK_H

#include <stddef.h>
#include <sys/types.h>

typedef struct al_sm_hook_env {
    const char *endpoint_url; /* NULL: not set */
    const char *state_dir;    /* the administrator's key files */
    const char *region;
} al_sm_hook_env;

/* Starts exe with the event {SecretId, ClientRequestToken, Step} on stdin.
 * 0 with *pid, or -errno with the reason in why. */
int al_sm_hook_spawn(const char *exe, const al_sm_hook_env *env, const char *secret_arn,
                     const char *token, const char *step, pid_t *pid, char *why, size_t whylen);
/* Looks at a started step without waiting: 1 still running, 0 exited 0,
 * -1 failed (why: the exit status or signal). timed_out kills it first. */
int al_sm_hook_poll(pid_t pid, int timed_out, char *why, size_t whylen);

#endif
