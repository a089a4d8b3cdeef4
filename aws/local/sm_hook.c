#include "aws/local/sm_hook.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aws/local/local.h"
#include "common/buf.h"
#include "common/json.h"

#define HOOK_ENV_MAX 16
#define HOOK_VAR_MAX 4200
#define HOOK_EVENT_MAX 4096 /* far below a pipe's buffer: the write never blocks */

typedef struct hook_env {
    char vars[HOOK_ENV_MAX][HOOK_VAR_MAX];
    char *envp[HOOK_ENV_MAX + 1];
    size_t n;
} hook_env;

static void env_add(hook_env *h, const char *name, const char *value)
{
    if (!value || h->n >= HOOK_ENV_MAX)
        return;
    snprintf(h->vars[h->n], HOOK_VAR_MAX, "%s=%s", name, value);
    h->envp[h->n] = h->vars[h->n];
    h->envp[++h->n] = NULL;
}

/* A small environment of its own: the daemon's may hold what a hook has no
 * business seeing. */
static void build_env(hook_env *h, const al_sm_hook_env *env, const char *arn, const char *token,
                      const char *step)
{
    char path[HOOK_VAR_MAX];
    h->n = 0;
    h->envp[0] = NULL;
    const char *p = getenv("PATH");
    env_add(h, "PATH", p ? p : "/usr/local/bin:/usr/bin:/bin");
    env_add(h, "AWS_ENDPOINT_URL", env->endpoint_url);
    env_add(h, "AWS_REGION", env->region);
    env_add(h, "AWS_DEFAULT_REGION", env->region);
    if (env->state_dir) {
        snprintf(path, sizeof path, "%s/%s", env->state_dir, AL_CREDENTIALS_FILE);
        env_add(h, "AWS_SHARED_CREDENTIALS_FILE", path);
        snprintf(path, sizeof path, "%s/%s", env->state_dir, AL_CONFIG_FILE);
        env_add(h, "AWS_CONFIG_FILE", path);
        env_add(h, "AWS_PROFILE", AL_AUTH_PROFILE);
    }
    env_add(h, "ES_ROTATION_SECRET_ID", arn);
    env_add(h, "ES_ROTATION_TOKEN", token);
    env_add(h, "ES_ROTATION_STEP", step);
}

static int event_json(const char *arn, const char *token, const char *step, es_buf *b)
{
    es_jw w;
    es_jw_init(&w, b);
    es_jw_obj(&w);
    es_jw_kstr(&w, "SecretId", arn);
    es_jw_kstr(&w, "ClientRequestToken", token);
    es_jw_kstr(&w, "Step", step);
    es_jw_obj_end(&w);
    return es_jw_finish(&w);
}

/* stdin from the pipe, stdout to stderr, default signal handling and an
 * empty mask (the daemon blocks and handles some for itself). */
static int spawn_attrs(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, int in)
{
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    if (posix_spawn_file_actions_init(fa) != 0)
        return -ENOMEM;
    if (posix_spawnattr_init(at) != 0) {
        posix_spawn_file_actions_destroy(fa);
        return -ENOMEM;
    }
    posix_spawn_file_actions_adddup2(fa, in, 0);
    posix_spawn_file_actions_adddup2(fa, 2, 1);
    posix_spawnattr_setsigmask(at, &none);
    posix_spawnattr_setsigdefault(at, &all);
    posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    return 0;
}

int al_sm_hook_spawn(const char *exe, const al_sm_hook_env *env, const char *secret_arn,
                     const char *token, const char *step, pid_t *pid, char *why, size_t whylen)
{
    es_buf ev;
    es_buf_init(&ev, HOOK_EVENT_MAX);
    int fds[2];
    if (event_json(secret_arn, token, step, &ev) < 0) {
        es_buf_free(&ev);
        snprintf(why, whylen, "the event does not fit");
        return -EMSGSIZE;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        int r = -errno;
        es_buf_free(&ev);
        snprintf(why, whylen, "pipe: %s", strerror(-r));
        return r;
    }
    /* the event goes into the pipe before the hook starts: it fits in the
     * pipe's buffer, and a hook that exits without reading cannot make the
     * write raise SIGPIPE */
    bool wrote = write(fds[1], ev.data, ev.len) == (ssize_t)ev.len;
    close(fds[1]);
    es_buf_free(&ev);
    if (!wrote) {
        close(fds[0]);
        snprintf(why, whylen, "cannot write the event");
        return -EIO;
    }
    hook_env *h = calloc(1, sizeof *h);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int r = h ? spawn_attrs(&fa, &at, fds[0]) : -ENOMEM;
    if (r == 0) {
        build_env(h, env, secret_arn, token, step);
        char *argv[] = {(char *)exe, NULL};
        r = -posix_spawn(pid, exe, &fa, &at, argv, h->envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
    }
    free(h);
    close(fds[0]);
    if (r < 0)
        snprintf(why, whylen, "cannot run %s: %s", exe, strerror(-r));
    return r;
}

int al_sm_hook_poll(pid_t pid, int timed_out, char *why, size_t whylen)
{
    int status;
    if (timed_out)
        kill(pid, SIGKILL);
    pid_t w = waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (w == 0)
        return 1;
    if (w < 0) {
        snprintf(why, whylen, "lost the process: %s", strerror(errno));
        return -1;
    }
    if (timed_out) {
        snprintf(why, whylen, "timed out");
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        snprintf(why, whylen, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(why, whylen, "killed by signal %d", WTERMSIG(status));
    return -1;
}
