/* check.c - the environment checks of --check-config (check.h). Blocking I/O
 * on purpose: this runs before, and instead of, the event loop. */
#include "agent/check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/secrets/files.h"
#include "aws/tls.h"

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Waits for fd to be ready for events within what is left of the budget. */
static int wait_fd(int fd, short events, const struct timespec *t0)
{
    long left = AG_CHECK_DOCKER_TIMEOUT_MS - elapsed_ms(t0);
    if (left <= 0)
        return -ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, (int)left);
    if (r < 0)
        return -errno;
    return r == 0 ? -ETIMEDOUT : 0;
}

/* GET /_ping on the unix socket: 0 when it answers 200, else -errno, or
 * -EPROTO with the status line in why. */
static int docker_ping(const char *path, char *why, size_t whylen)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        r = errno == EINPROGRESS || errno == EAGAIN ? wait_fd(fd, POLLOUT, &t0) : -errno;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr)
            r = -soerr;
    }
    static const char req[] = "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n";
    if (r == 0 && send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1))
        r = errno ? -errno : -EIO;
    char buf[256];
    size_t got = 0;
    while (r == 0 && got < sizeof buf - 1 && !memchr(buf, '\n', got)) {
        if ((r = wait_fd(fd, POLLIN, &t0)) < 0)
            break;
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -ECONNRESET;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (r < 0)
        return r;
    buf[got] = '\0';
    char *eol = strpbrk(buf, "\r\n");
    if (eol)
        *eol = '\0';
    if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0)
        return 0;
    snprintf(why, whylen, "%.100s", buf);
    return -EPROTO;
}

static int check_docker(const cf_config *cfg, FILE *out)
{
    const char *host = cf_get(cfg, CF_DOCKER_HOST);
    char why[128] = "";
    int r = docker_ping(cfg->docker_socket, why, sizeof why);
    if (r == 0) {
        fprintf(out, "# check: Docker at %s answers /_ping\n", host);
        return 0;
    }
    fprintf(out,
            "# problem: Docker at %s does not answer /_ping (%s); the agent would start and wait "
            "for it, asking again every 2 s, and run no task until it answers\n",
            host, r == -EPROTO ? why : strerror(-r));
    return 1;
}

static int check_state_dir(const cf_config *cfg, FILE *out)
{
    const char *dir = cf_get(cfg, CF_STATE_DIR);
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            fprintf(out, "# problem: state directory %s is not a directory\n", dir);
            return 1;
        }
        if (st.st_uid != geteuid()) {
            fprintf(out,
                    "# problem: state directory %s is owned by uid %u, not by us (uid %u); the "
                    "agent refuses it (it holds key material)\n",
                    dir, (unsigned)st.st_uid, (unsigned)geteuid());
            return 1;
        }
        if (access(dir, W_OK | X_OK) < 0) {
            fprintf(out, "# problem: state directory %s is not writable: %s\n", dir,
                    strerror(errno));
            return 1;
        }
        fprintf(out, "# check: state directory %s is ours and writable%s\n", dir,
                st.st_mode & 0077 ? " (its mode will be tightened to 700)" : "");
        return 0;
    }
    if (errno != ENOENT && errno != ENOTDIR) {
        fprintf(out, "# problem: state directory %s: %s\n", dir, strerror(errno));
        return 1;
    }
    /* the nearest existing parent must let us create the rest */
    char parent[PATH_MAX];
    if (snprintf(parent, sizeof parent, "%s", dir) >= (int)sizeof parent) {
        fprintf(out, "# problem: state directory %s: the path is too long\n", dir);
        return 1;
    }
    for (;;) {
        char *slash = strrchr(parent, '/');
        if (!slash || slash == parent) {
            snprintf(parent, sizeof parent, "%s", slash ? "/" : ".");
            break;
        }
        *slash = '\0';
        if (stat(parent, &st) == 0)
            break;
        if (errno != ENOENT && errno != ENOTDIR) {
            fprintf(out, "# problem: state directory %s: %s: %s\n", dir, parent, strerror(errno));
            return 1;
        }
    }
    if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode) || access(parent, W_OK | X_OK) < 0) {
        fprintf(out,
                "# problem: state directory %s does not exist and cannot be created: %s is not "
                "a directory we may write\n",
                dir, parent);
        return 1;
    }
    fprintf(out,
            "# check: state directory %s does not exist yet; the agent will create it "
            "(mode 700)\n",
            dir);
    return 0;
}

/* Secret files are written to memory only: the files directory (or, before
 * the agent creates it, its nearest existing parent) must be on tmpfs.
 * Never counted as a problem: only tasks with secret files need it. */
static int check_files_dir(const cf_config *cfg, FILE *out)
{
    const char *dir = cf_get(cfg, CF_FILES_DIR);
    char p[PATH_MAX], why[AG_FILES_ERR_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        fprintf(out, "# problem: files directory %s: the path is too long\n", dir);
        return 1;
    }
    struct stat st;
    while (stat(p, &st) < 0 && strrchr(p, '/') && strcmp(p, "/") != 0) {
        char *slash = strrchr(p, '/');
        slash[slash == p ? 1 : 0] = '\0';
    }
    if (ag_files_check_memory_fs(p, why, sizeof why) < 0) {
        fprintf(out,
                "# warning: files directory %s: %s; tasks with secret files would be stopped\n",
                dir, why);
        return 0;
    }
    fprintf(out, "# check: files directory %s is on tmpfs%s\n", dir,
            strcmp(p, dir) ? " (the agent will create it, mode 700)" : "");
    return 0;
}

/* The listener's scheme; with TLS, the certificate and key load as the
 * agent would load them (a listener off loopback without TLS never gets
 * here: cf_load refuses it). */
static int check_listener(const cf_config *cfg, FILE *out)
{
    const char *listen = cf_get(cfg, CF_LISTEN);
    bool lo = cf_host_is_loopback(cfg->listen_host);
    if (!cfg->listen_tls) {
        fprintf(out, "# check: listener %s is loopback only; scheme http (plain HTTP)\n", listen);
        return 0;
    }
    const char *cert = cf_get(cfg, CF_TLS_CERT), *key = cf_get(cfg, CF_TLS_KEY);
    char err[1024], desc[AW_TLS_DESC_MAX];
    aw_tls *t = NULL;
    if (aw_tls_load(cert, key, &t, err, sizeof err) < 0) {
        fprintf(out, "# problem: listener %s: scheme https, but %s; the agent would not start\n",
                listen, err);
        return 1;
    }
    aw_tls_describe(t, desc, sizeof desc);
    bool expired = aw_tls_expired(t, time(NULL));
    aw_tls_free(t);
    if (expired) {
        fprintf(out,
                "# problem: listener %s: scheme https, but the certificate %s is outside its "
                "validity period (%s): clients would refuse it\n",
                listen, cert, desc);
        return 1;
    }
    fprintf(out,
            "# check: listener %s is %s; scheme https (TLS 1.2 or later), certificate %s: %s\n",
            listen, lo ? "loopback only" : "not loopback", cert, desc);
    return 0;
}

/* ECS_SECRETS_CA_FILE: the agent's https:// calls need to read it. */
static int check_ca_file(const cf_config *cfg, FILE *out)
{
    const char *ca = cf_get(cfg, CF_CA_FILE);
    if (!ca)
        return 0;
    if (access(ca, R_OK) < 0) {
        fprintf(out, "# problem: CA file %s: %s; the agent would not start\n", ca, strerror(errno));
        return 1;
    }
    fprintf(out, "# check: CA file %s is readable; https:// endpoints are verified with it\n", ca);
    return 0;
}

int ag_check_environment(const cf_config *cfg, FILE *out)
{
    int problems = check_docker(cfg, out);
    problems += check_state_dir(cfg, out);
    problems += check_files_dir(cfg, out);
    problems += check_listener(cfg, out);
    problems += check_ca_file(cfg, out);
    return problems;
}
