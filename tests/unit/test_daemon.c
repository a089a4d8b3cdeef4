/* The daemon binary as systemd sees it: readiness on $NOTIFY_SOCKET, a clean
 * stop on SIGTERM, journal priority prefixes, --check-config. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[48];

/* The embedded endpoints listen (default 127.0.0.1:4577); tests use a free
 * port so that daemons of parallel test runs on one machine do not collide. */
static char listen_arg[32];
static const char *free_listen(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(listen_arg, sizeof listen_arg, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    close(fd);
    return listen_arg;
}

/* READY=1 waits for Docker to answer a ping: a minimal Docker for the
 * daemon's tests, in a child process, answering /_ping with 200 and
 * anything else with 404 (the agent then retries what it follows). Each
 * connection is served by its own child; all go with the process group. */
static pid_t fake_docker;
static char docker_env[160];

static void serve_docker_conn(int c)
{
    char buf[8192];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(c, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            _exit(0);
        n += (size_t)r;
        buf[n] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n"))) {
            const char *body;
            const char *status;
            if (strncmp(buf, "GET /_ping", 10) == 0 || strncmp(buf, "HEAD /_ping", 11) == 0) {
                status = "200 OK";
                body = "OK";
            } else {
                status = "404 Not Found";
                body = "{\"message\":\"not in the fake\"}";
            }
            char out[512];
            int len = snprintf(out, sizeof out,
                               "HTTP/1.1 %s\r\nApi-Version: 1.41\r\nContent-Type: "
                               "text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                               status, strlen(body), body);
            if (write(c, out, (size_t)len) != len)
                _exit(0);
            size_t used = (size_t)(end + 4 - buf); /* requests here have no body */
            memmove(buf, buf + used, n - used + 1);
            n -= used;
        }
        if (n == sizeof buf - 1)
            _exit(0);
    }
}

/* Listens on path and forks the fake; returns its pid (a process group). */
static pid_t fake_docker_at(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 16), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGCHLD, SIG_IGN);
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                continue;
            if (fork() == 0)
                serve_docker_conn(c);
            close(c);
        }
    }
    setpgid(pid, pid);
    close(fd);
    return pid;
}

static void start_fake_docker(void)
{
    char path[100];
    snprintf(path, sizeof path, "%s/docker.sock", dir);
    fake_docker = fake_docker_at(path);
    snprintf(docker_env, sizeof docker_env, "DOCKER_HOST=unix://%s", path);
    putenv(docker_env); /* every agent spawned below inherits it */
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/es-daemon-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    start_fake_docker();
}

static void teardown(void)
{
    if (fake_docker > 0) {
        kill(-fake_docker, SIGKILL);
        waitpid(fake_docker, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(daemon, .init = setup, .fini = teardown, .timeout = 60);

/* Starts the agent with argv and extra environment; its stderr goes to a
 * pipe whose read end is returned in *errfd. */
static pid_t spawn(char *const argv[], char *const extra_env[], int *errfd)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(p[1], STDERR_FILENO);
        dup2(p[1], STDOUT_FILENO);
        for (char *const *e = extra_env; e && *e; e++)
            putenv(*e);
        execv(ES_AGENT_BIN, argv);
        _exit(127);
    }
    close(p[1]);
    *errfd = p[0];
    return pid;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    return n;
}

static int wait_exit(pid_t pid)
{
    int st = 0;
    for (int i = 0; i < 200; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    cr_assert_fail("daemon did not exit within 10 s");
    return -1;
}

/* Waits for a datagram on fd; returns its text or fails the test. */
static void recv_notify(int fd, char *buf, size_t cap)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 10000), 1, "no sd_notify message within 10 s");
    ssize_t n = recv(fd, buf, cap - 1, 0);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
}

Test(daemon, ready_on_notify_socket_and_clean_stop_on_sigterm)
{
    char sock[100], state[128], env_notify[160];
    snprintf(sock, sizeof sock, "%s/notify.sock", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    snprintf(env_notify, sizeof env_notify, "NOTIFY_SOCKET=%s", sock);

    char *argv[] = {"ecs-secrets-agent",
                    "--config",
                    "/dev/null",
                    "--state-dir",
                    state,
                    "--log-level",
                    "debug",
                    "--listen",
                    (char *)(char *)free_listen(),
                    NULL};
    char *env[] = {env_notify, NULL};
    int errfd;
    pid_t pid = spawn(argv, env, &errfd);
    char msg[512];
    /* STATUS= lines may say what start-up is doing before READY=1 */
    recv_notify(fd, msg, sizeof msg);
    for (int i = 0; i < 4 && !strstr(msg, "READY=1"); i++) {
        cr_assert_eq(strncmp(msg, "STATUS=", 7), 0, "before READY=1: %s", msg);
        recv_notify(fd, msg, sizeof msg);
    }
    cr_assert_not_null(strstr(msg, "READY=1"), "no READY=1 after the STATUS= lines: %s", msg);

    struct stat st;
    cr_assert_eq(stat(state, &st), 0, "state directory created");
    cr_assert_eq(st.st_mode & 0777, 0700, "state directory mode %o", st.st_mode & 0777);

    cr_assert_eq(kill(pid, SIGTERM), 0);
    recv_notify(fd, msg, sizeof msg);
    cr_assert_not_null(strstr(msg, "STOPPING=1"), "message after SIGTERM: %s", msg);
    int code = wait_exit(pid);
    static char out[65536];
    read_all(errfd, out, sizeof out);
    cr_assert_eq(code, 0, "exit code %d, output:\n%s", code, out);
    cr_assert_not_null(strstr(out, "SIGTERM received, stopping"), "%s", out);
    cr_assert_not_null(strstr(out, "stopped"), "%s", out);
    cr_assert_null(strstr(out, "open handles"), "loop closed with handles open:\n%s", out);
    close(fd);
}

Test(daemon, journal_priority_prefix_when_stderr_is_the_journal)
{
    char state[128];
    snprintf(state, sizeof state, "%s/state", dir);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    struct stat st;
    cr_assert_eq(fstat(p[1], &st), 0);
    char journal[96];
    snprintf(journal, sizeof journal, "JOURNAL_STREAM=%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    free_listen();
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], STDERR_FILENO);
        putenv(journal);
        execl(ES_AGENT_BIN, "ecs-secrets-agent", "--config", "/dev/null", "--state-dir", state,
              "--listen", listen_arg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    /* wait for the "ready" line, then stop it */
    char out[8192];
    size_t n = 0;
    while (n < sizeof out - 1 && !memmem(out, n, "ready", 5)) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, 10000), 1, "no output");
        ssize_t r = read(p[0], out + n, sizeof out - 1 - n);
        cr_assert_gt(r, 0);
        n += (size_t)r;
    }
    kill(pid, SIGINT);
    cr_assert_eq(wait_exit(pid), 0);
    n += read_all(p[0], out + n, sizeof out - n);
    cr_assert_eq(strncmp(out, "<5>", 3), 0, "journal lines carry priorities: %s", out);
    cr_assert_not_null(strstr(out, "\n<5>ready"), "%s", out);
}

Test(daemon, check_config_rejects_broken_file_with_line)
{
    char conf[128];
    snprintf(conf, sizeof conf, "%s/agent.conf", dir);
    FILE *f = fopen(conf, "w");
    fputs("ECS_CLUSTER=prod\n# fine so far\nECS_SECRETS_MODE=cloudy\n", f);
    fclose(f);
    char *argv[] = {"ecs-secrets-agent", "--config", conf, "--check-config", NULL};
    int errfd;
    pid_t pid = spawn(argv, NULL, &errfd);
    char out[4096];
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 2, "%s", out);
    char want[256];
    snprintf(want, sizeof want, "%s:3: ECS_SECRETS_MODE: must be 'embedded' or 'aws'", conf);
    cr_assert_not_null(strstr(out, want), "%s", out);
}

Test(daemon, check_config_prints_effective_values_masked)
{
    char conf[128];
    snprintf(conf, sizeof conf, "%s/agent.conf", dir);
    FILE *f = fopen(conf, "w");
    fputs("ECS_CLUSTER=prod\nECS_SECRETS_ACCESS_KEY_ID=AKIDX\n"
          "ECS_SECRETS_SECRET_ACCESS_KEY=NeverPrintMe\n",
          f);
    fclose(f);
    char *argv[] = {"ecs-secrets-agent", "--config", conf, "--check-config", NULL};
    int errfd;
    pid_t pid = spawn(argv, NULL, &errfd);
    char out[8192];
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 0, "%s", out);
    cr_assert_not_null(strstr(out, "ECS_CLUSTER=prod"), "%s", out);
    cr_assert_null(strstr(out, "NeverPrintMe"), "%s", out);
    cr_assert_not_null(strstr(out, "configuration OK"), "%s", out);
}

/* --check-config checks the environment too: a Docker socket that does not
 * answer, a state directory that cannot be created and a TLS certificate
 * that does not load are problems (exit 1, no "configuration OK"); the fake
 * engine answering, a creatable state directory and a loopback listener are
 * checks that pass, and each says the listener's scheme. */
Test(daemon, check_config_checks_docker_state_dir_and_listener)
{
    char conf[128], file[128], env_docker[200], env_state[200];
    snprintf(conf, sizeof conf, "%s/agent.conf", dir);
    FILE *f = fopen(conf, "w");
    fprintf(f,
            "ECS_SECRETS_LISTEN=0.0.0.0:4577\nECS_SECRETS_TLS_CERT=%s/no-cert.pem\n"
            "ECS_SECRETS_TLS_KEY=%s/no-key.pem\n",
            dir, dir);
    fclose(f);
    snprintf(file, sizeof file, "%s/a-file", dir);
    f = fopen(file, "w");
    fclose(f);
    snprintf(env_docker, sizeof env_docker, "DOCKER_HOST=unix://%s/silent.sock", dir);
    snprintf(env_state, sizeof env_state, "ECS_SECRETS_STATE_DIR=%s/sub/state", file);
    char *env[] = {env_docker, env_state, NULL};
    char *argv[] = {"ecs-secrets-agent", "--config", conf, "--check-config", NULL};
    int errfd;
    pid_t pid = spawn(argv, env, &errfd);
    char out[8192];
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 1, "%s", out);
    char want[600];
    snprintf(want, sizeof want,
             "# problem: Docker at unix://%s/silent.sock does not answer /_ping (No such file or "
             "directory)",
             dir);
    cr_assert_not_null(strstr(out, want), "%s", out);
    snprintf(want, sizeof want,
             "# problem: state directory %s/sub/state does not exist and cannot be created: %s is "
             "not a directory we may write",
             file, file);
    cr_assert_not_null(strstr(out, want), "%s", out);
    snprintf(want, sizeof want,
             "# problem: listener 0.0.0.0:4577: scheme https, but certificate %s/no-cert.pem: "
             "cannot open: No such file or directory; the agent would not start",
             dir);
    cr_assert_not_null(strstr(out, want), "%s", out);
    cr_assert_not_null(strstr(out, "# configuration valid, but 3 problems above"), "%s", out);
    cr_assert_null(strstr(out, "configuration OK"), "%s", out);

    /* the fake engine (DOCKER_HOST from setup) answers; a new state directory;
     * a plain listener on loopback */
    f = fopen(conf, "w");
    fclose(f);
    char env_state2[200];
    snprintf(env_state2, sizeof env_state2, "ECS_SECRETS_STATE_DIR=%s/new/state", dir);
    char *env2[] = {env_state2, "ECS_SECRETS_LISTEN=127.0.0.1:4577", NULL};
    pid = spawn(argv, env2, &errfd);
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 0, "%s", out);
    cr_assert_not_null(strstr(out, "/_ping"), "%s", out);
    cr_assert_not_null(strstr(out, "# check: Docker at unix://"), "%s", out);
    cr_assert_not_null(strstr(out, "does not exist yet; the agent will create it"), "%s", out);
    cr_assert_not_null(
        strstr(out, "# check: listener 127.0.0.1:4577 is loopback only; scheme http (plain HTTP)"),
        "%s", out);
    cr_assert_not_null(strstr(out, "# configuration OK"), "%s", out);
    struct stat st;
    cr_assert_neq(stat(env_state2 + strlen("ECS_SECRETS_STATE_DIR="), &st), 0,
                  "the check created nothing");
}

/* Issue 17: off loopback, the listener needs TLS: without a certificate and
 * key the configuration is refused (exit 2, at start as with
 * --check-config); with them --check-config loads them and shows the
 * scheme; a start with a key that is not the certificate's is refused with
 * the reason (exit 1, no crash). */
Test(daemon, listener_off_loopback_needs_tls)
{
    char *argv[] = {"ecs-secrets-agent", "--config",       "/dev/null", "--listen",
                    "0.0.0.0:4577",      "--check-config", NULL};
    int errfd;
    pid_t pid = spawn(argv, NULL, &errfd);
    static char out[16384];
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 2, "%s", out);
    cr_assert_not_null(strstr(out, "ecs-secrets-agent: configuration error: --listen: "
                                   "ECS_SECRETS_LISTEN 0.0.0.0:4577 is not loopback: it needs "
                                   "ECS_SECRETS_TLS_CERT and ECS_SECRETS_TLS_KEY (answers carry "
                                   "secret values)"),
                       "%s", out);
    char state[128];
    snprintf(state, sizeof state, "%s/state", dir);
    char *run[] = {"ecs-secrets-agent", "--config",    "/dev/null", "--listen",
                   "0.0.0.0:4577",      "--state-dir", state,       NULL};
    pid = spawn(run, NULL, &errfd);
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 2, "%s", out);
    cr_assert_not_null(strstr(out, "is not loopback: it needs ECS_SECRETS_TLS_CERT"), "%s", out);

    /* a certificate and its key (and another key) */
    char cmd[1024], cert[128], key[128], other[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(other, sizeof other, "%s/other-key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -days 2 -keyout %s -out %s 2>/dev/null && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null",
             key, cert, other);
    cr_assert_eq(system(cmd), 0);
    char *check[] = {"ecs-secrets-agent",
                     "--config",
                     "/dev/null",
                     "--listen",
                     "0.0.0.0:4577",
                     "--state-dir",
                     state,
                     "--tls-cert",
                     cert,
                     "--tls-key",
                     key,
                     "--check-config",
                     NULL};
    pid = spawn(check, NULL, &errfd);
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 0, "%s", out);
    char want[512];
    snprintf(want, sizeof want,
             "# check: listener 0.0.0.0:4577 is not loopback; scheme https (TLS 1.2 or later), "
             "certificate %s: subject /CN=127.0.0.1, names IP:127.0.0.1, valid until ",
             cert);
    cr_assert_not_null(strstr(out, want), "%s", out);
    cr_assert_not_null(strstr(out, "ECS_SECRETS_TLS_CERT="), "%s", out);
    cr_assert_not_null(strstr(out, "# configuration OK"), "%s", out);

    char *bad[] = {"ecs-secrets-agent",
                   "--config",
                   "/dev/null",
                   "--listen",
                   (char *)free_listen(),
                   "--state-dir",
                   state,
                   "--tls-cert",
                   cert,
                   "--tls-key",
                   other,
                   NULL};
    pid = spawn(bad, NULL, &errfd);
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 1, "%s", out);
    snprintf(want, sizeof want,
             "listener TLS (ECS_SECRETS_TLS_CERT, ECS_SECRETS_TLS_KEY): key %s does not belong "
             "to the certificate %s",
             other, cert);
    cr_assert_not_null(strstr(out, want), "%s", out);
}

Test(daemon, refuses_state_dir_owned_by_someone_else)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to chown");
    char state[128];
    snprintf(state, sizeof state, "%s/foreign", dir);
    cr_assert_eq(mkdir(state, 0700), 0);
    cr_assert_eq(chown(state, 65534, 65534), 0);
    char *argv[] = {"ecs-secrets-agent", "--config", "/dev/null", "--state-dir", state, NULL};
    int errfd;
    pid_t pid = spawn(argv, NULL, &errfd);
    char out[4096];
    read_all(errfd, out, sizeof out);
    cr_assert_eq(wait_exit(pid), 1, "%s", out);
    cr_assert_not_null(strstr(out, "owned by uid 65534"), "%s", out);
}

/* systemctl reload: SIGHUP re-reads the file, applies the log level, refuses
 * the listen address; systemd hears RELOADING=1, then READY=1 with a STATUS=
 * that says how it went. */
Test(daemon, sighup_reloads_log_level_and_refuses_listen)
{
    char sock[100], state[128], conf[128], env_notify[160];
    snprintf(sock, sizeof sock, "%s/notify.sock", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(conf, sizeof conf, "%s/agent.conf", dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "ECS_LOGLEVEL=info\nECS_SECRETS_LISTEN=%s\n", free_listen());
    fclose(f);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    snprintf(env_notify, sizeof env_notify, "NOTIFY_SOCKET=%s", sock);

    char *argv[] = {"ecs-secrets-agent", "--config", conf, "--state-dir", state, NULL};
    char *env[] = {env_notify, NULL};
    int errfd;
    pid_t pid = spawn(argv, env, &errfd);
    char msg[512];
    do
        recv_notify(fd, msg, sizeof msg);
    while (!strstr(msg, "READY=1"));

    f = fopen(conf, "w");
    /* another loopback address (one off loopback would need TLS, and such a
     * reload is refused whole: test_reload.c) */
    fprintf(f, "ECS_LOGLEVEL=debug\nECS_SECRETS_LISTEN=127.0.0.2:%s\n",
            strchr(listen_arg, ':') + 1);
    fclose(f);
    cr_assert_eq(kill(pid, SIGHUP), 0);
    recv_notify(fd, msg, sizeof msg);
    cr_assert_not_null(strstr(msg, "RELOADING=1"), "first message after SIGHUP: %s", msg);
    cr_assert_not_null(strstr(msg, "MONOTONIC_USEC="), "%s", msg);
    recv_notify(fd, msg, sizeof msg);
    cr_assert_not_null(strstr(msg, "READY=1"), "second message after SIGHUP: %s", msg);
    cr_assert_not_null(strstr(msg, "STATUS=running"), "%s", msg);
    cr_assert_not_null(strstr(msg, "last reload: 1 applied, 1 need a restart"), "%s", msg);

    cr_assert_eq(kill(pid, SIGTERM), 0);
    int code = wait_exit(pid);
    static char out[65536];
    read_all(errfd, out, sizeof out);
    cr_assert_eq(code, 0, "exit code %d, output:\n%s", code, out);
    cr_assert_not_null(strstr(out, "ECS_LOGLEVEL: info -> debug"), "%s", out);
    cr_assert_not_null(strstr(out, "ECS_SECRETS_LISTEN changed"), "%s", out);
    cr_assert_not_null(strstr(out, "needs a restart"), "%s", out);
    close(fd);
}

/* Docker away at start: no READY=1, STATUS= says the agent waits for it and
 * keeps asking; once Docker answers, READY=1. */
Test(daemon, waits_for_docker_before_ready)
{
    char sock[100], state[128], env_notify[160], late[100], env_docker[160];
    snprintf(sock, sizeof sock, "%s/notify.sock", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(late, sizeof late, "%s/late-docker.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    snprintf(env_notify, sizeof env_notify, "NOTIFY_SOCKET=%s", sock);
    snprintf(env_docker, sizeof env_docker, "DOCKER_HOST=unix://%s", late);

    char *argv[] = {
        "ecs-secrets-agent",           "--config", "/dev/null", "--state-dir", state, "--listen",
        (char *)(char *)free_listen(), NULL};
    char *env[] = {env_notify, env_docker, NULL};
    int errfd;
    pid_t pid = spawn(argv, env, &errfd);
    char msg[512];
    int waiting = 0;
    /* two attempts at least (one every 2 s), never READY=1 meanwhile */
    while (waiting < 2) {
        recv_notify(fd, msg, sizeof msg);
        cr_assert_null(strstr(msg, "READY=1"), "READY=1 without Docker: %s", msg);
        if (strstr(msg, "STATUS=starting: waiting for Docker at unix://"))
            waiting++;
    }
    cr_assert_not_null(strstr(msg, late), "%s", msg);
    pid_t late_docker = fake_docker_at(late);
    for (int i = 0; i < 6 && !strstr(msg, "READY=1"); i++)
        recv_notify(fd, msg, sizeof msg);
    cr_assert_not_null(strstr(msg, "READY=1"), "no READY=1 once Docker answers: %s", msg);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int code = wait_exit(pid);
    static char out[65536];
    read_all(errfd, out, sizeof out);
    kill(-late_docker, SIGKILL);
    waitpid(late_docker, NULL, 0);
    cr_assert_eq(code, 0, "exit code %d, output:\n%s", code, out);
    cr_assert_not_null(strstr(out, "does not answer"), "%s", out);
    close(fd);
}
