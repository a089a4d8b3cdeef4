/* The Docker socket proxy (docker/proxy.c) between a blocking client and a
 * fake dockerd (a blocking unix socket the test accepts on), the proxy's
 * loop running in a thread of its own. Every byte the fake receives or the
 * client reads is compared with what was sent. */
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "agent/intake/docker.h"
#include "docker/proxy.h"

#define BIG (64u * 1024u * 1024u)

static uv_loop_t loop;
static uv_async_t stopper;
static pthread_t thread;
static dk_proxy *px;
static bool running;
static dk_proxy_stats final_stats;
static char dir[64], ppath[108], upath[108];
static int ufd = -1; /* the fake dockerd's listening socket */

/* what the create callbacks saw (read after the loop thread ended) */
static dk_proxy_peer seen_peer;
static char seen_query[256], seen_body[1024];

static void *loop_main(void *arg)
{
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_stop(uv_async_t *a)
{
    dk_proxy_get_stats(px, &final_stats);
    dk_proxy_close(px, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void start_proxy(dk_proxy_options o)
{
    o.path = ppath;
    o.upstream = upath;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(dk_proxy_start(&loop, &o, &px), 0);
    uv_async_init(&loop, &stopper, on_stop);
    cr_assert_eq(pthread_create(&thread, NULL, loop_main, NULL), 0);
    running = true;
}

static void stop_proxy(void)
{
    if (!running)
        return;
    running = false;
    uv_async_send(&stopper);
    pthread_join(thread, NULL);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
}

static void listen_up(void)
{
    ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", upath);
    cr_assert_eq(bind(ufd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(ufd, 64), 0);
}

static void timeouts(int fd)
{
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect %s: %s", path,
                 strerror(errno));
    timeouts(fd);
    return fd;
}

/* The connection the proxy made to the fake dockerd. */
static int accept_up(void)
{
    struct pollfd pf = {.fd = ufd, .events = POLLIN};
    cr_assert_eq(poll(&pf, 1, 5000), 1, "the proxy did not connect upstream");
    int fd = accept4(ufd, NULL, NULL, SOCK_CLOEXEC);
    cr_assert(fd >= 0);
    timeouts(fd);
    return fd;
}

static bool readable_within(int fd, int ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    return poll(&pf, 1, ms) == 1;
}

/* Nothing arrives on fd but, perhaps, the end of the connection. */
static bool only_eof(int fd)
{
    char b;
    return !readable_within(fd, 100) || recv(fd, &b, 1, 0) <= 0;
}

static void send_all(int fd, const void *d, size_t n)
{
    const char *p = d;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        cr_assert(w > 0, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* Reads exactly n bytes. */
static void recv_n(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        cr_assert(r > 0, "recv after %zu of %zu bytes: %s", got, n, r ? strerror(errno) : "EOF");
        got += (size_t)r;
    }
    buf[n] = '\0';
}

/* Reads exactly strlen(want) bytes and compares them. */
static void expect_bytes(int fd, const char *want)
{
    size_t n = strlen(want);
    char *buf = malloc(n + 1);
    recv_n(fd, buf, n);
    cr_assert_str_eq(buf, want);
    free(buf);
}

/* Reads until EOF (or at most max-1 bytes); the bytes as a string. */
static size_t recv_eof(int fd, char *buf, size_t max)
{
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + got, max - 1 - got, 0);
        cr_assert(r >= 0, "recv: %s", strerror(errno));
        if (r == 0 || got + (size_t)r >= max - 1) {
            got += (size_t)r;
            break;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    return got;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/es-proxy-XXXXXX");
    cr_assert(mkdtemp(dir));
    snprintf(ppath, sizeof ppath, "%s/proxy.sock", dir);
    snprintf(upath, sizeof upath, "%s/docker.sock", dir);
    memset(&seen_peer, 0, sizeof seen_peer);
    seen_query[0] = seen_body[0] = '\0';
}

static void teardown(void)
{
    stop_proxy();
    if (ufd >= 0)
        close(ufd);
    ufd = -1;
    unlink(ppath);
    unlink(upath);
    rmdir(dir);
}

TestSuite(docker_proxy, .init = setup, .fini = teardown, .timeout = 120);

static const char PING[] = "GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: t\r\n\r\n";
static const char PONG[] = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK";

Test(docker_proxy, passes_requests_through_and_keeps_the_connection)
{
    listen_up();
    start_proxy((dk_proxy_options){0});
    struct stat st;
    cr_assert_eq(stat(ppath, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0660, "mode %o", st.st_mode & 0777);
    int c = connect_to(ppath), u = accept_up();
    for (int i = 0; i < 3; i++) {
        send_str(c, PING);
        expect_bytes(u, PING);
        send_str(u, PONG);
        expect_bytes(c, PONG);
    }
    /* a bodiless answer whose head ends a read, then one with no length */
    send_str(c, "DELETE /containers/x HTTP/1.1\r\nHost: d\r\n\r\n");
    expect_bytes(u, "DELETE /containers/x HTTP/1.1\r\nHost: d\r\n\r\n");
    send_str(u, "HTTP/1.1 204 No Content\r\n\r\n");
    expect_bytes(c, "HTTP/1.1 204 No Content\r\n\r\n");
    send_str(c, PING);
    expect_bytes(u, PING);
    cr_assert_not(readable_within(ufd, 100), "keep-alive must not open a second connection");
    close(c);
    char buf[16];
    cr_assert_eq(recv_eof(u, buf, sizeof buf), 0, "the client's close reaches dockerd");
    close(u);
    stop_proxy();
    cr_assert_eq(final_stats.accepted, 1);
    cr_assert_eq(final_stats.requests, 5);
    /* sockets with room take each forward at once: nothing waits in a
     * uv_write (whose completion costs an epoll_ctl) */
    cr_assert_eq(final_stats.writes_queued, 0, "%llu writes queued",
                 (unsigned long long)final_stats.writes_queued);
}

Test(docker_proxy, streams_chunked_bodies_both_ways)
{
    listen_up();
    start_proxy((dk_proxy_options){0});
    int c = connect_to(ppath), u = accept_up();
    const char *head = "POST /build HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_str(c, head);
    send_str(c, "5\r\nhel");
    expect_bytes(u, head);
    expect_bytes(u, "5\r\nhel"); /* forwarded before the body ends */
    send_str(c, "lo\r\n0\r\n\r\n");
    expect_bytes(u, "lo\r\n0\r\n\r\n");
    send_str(u, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    expect_bytes(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    send_str(u, "0\r\n\r\n");
    expect_bytes(c, "0\r\n\r\n");
    send_str(c, PING); /* the connection goes on */
    expect_bytes(u, PING);
    send_str(u, PONG);
    expect_bytes(c, PONG);
    close(c);
    close(u);
}

Test(docker_proxy, hijacked_stream_passes_half_close)
{
    listen_up();
    start_proxy((dk_proxy_options){0});
    int c = connect_to(ppath), u = accept_up();
    const char *req = "POST /v1.41/containers/x/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
                      "Host: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
    const char *resp = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                       "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
    send_str(c, req);
    expect_bytes(u, req);
    send_str(u, resp);
    send_all(u, "\x01\0\0\0\0\0\0\x03hi\n", 11);
    expect_bytes(c, resp);
    char frame[12];
    recv_n(c, frame, 11);
    cr_assert_eq(memcmp(frame, "\x01\0\0\0\0\0\0\x03hi\n", 11), 0);
    /* raw bytes that would not parse as HTTP, then the CLI's CloseWrite */
    send_str(c, "GARBAGE \r\n\r\n stdin");
    shutdown(c, SHUT_WR);
    char buf[64];
    cr_assert_eq(recv_eof(u, buf, sizeof buf), 18, "got '%s'", buf);
    cr_assert_str_eq(buf, "GARBAGE \r\n\r\n stdin");
    /* the other direction still works after the half-close */
    send_str(u, "late output");
    shutdown(u, SHUT_WR);
    cr_assert_eq(recv_eof(c, buf, sizeof buf), 11);
    cr_assert_str_eq(buf, "late output");
    close(c);
    close(u);
    stop_proxy();
    cr_assert_eq(final_stats.upgrades, 1);
}

/* ------------------------------------------------------- backpressure */

typedef struct writer {
    int fd;
    size_t n;
} writer;

static void *write_big(void *arg)
{
    writer *w = arg;
    char *buf = malloc(65536);
    for (size_t i = 0; i < 65536; i++)
        buf[i] = (char)(i * 7);
    for (size_t sent = 0; sent < w->n;) {
        size_t n = w->n - sent < 65536 ? w->n - sent : 65536;
        ssize_t r = send(w->fd, buf, n, MSG_NOSIGNAL);
        if (r <= 0)
            break;
        sent += (size_t)r;
    }
    free(buf);
    return NULL;
}

/* Reads n bytes slowly, checking write_big's pattern. */
static void read_big_slowly(int fd, size_t n)
{
    char *buf = malloc(65536);
    size_t at = 0;
    usleep(300 * 1000); /* the writer fills every buffer on the way first */
    while (at < n) {
        ssize_t r = recv(fd, buf, 65536, 0);
        cr_assert(r > 0, "after %zu of %zu bytes: %s", at, n, r ? strerror(errno) : "EOF");
        for (ssize_t i = 0; i < r; i++)
            cr_assert_eq(buf[i], (char)(((at + (size_t)i) % 65536) * 7), "byte %zu", at + i);
        at += (size_t)r;
        if ((at / 65536) % 64 == 0)
            usleep(2000);
    }
    free(buf);
}

/* What one connection may hold: both directions' queues and a read each. */
#define HELD_MAX (2 * 2 * (DK_PROXY_MAX_QUEUED + DK_PROXY_BULK_CHUNK))

Test(docker_proxy, a_large_answer_to_a_slow_reader_stays_bounded)
{
    listen_up();
    start_proxy((dk_proxy_options){0});
    int c = connect_to(ppath), u = accept_up();
    send_str(c, "GET /containers/x/archive?path=/f HTTP/1.1\r\nHost: d\r\n\r\n");
    char head[128];
    recv_n(u, head, strlen("GET /containers/x/archive?path=/f HTTP/1.1\r\nHost: d\r\n\r\n"));
    char rh[128];
    snprintf(rh, sizeof rh,
             "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n"
             "Content-Length: %u\r\n\r\n",
             BIG);
    send_str(u, rh);
    pthread_t t;
    writer w = {.fd = u, .n = BIG};
    pthread_create(&t, NULL, write_big, &w);
    expect_bytes(c, rh);
    read_big_slowly(c, BIG);
    pthread_join(t, NULL);
    close(c);
    close(u);
    stop_proxy();
    cr_assert(final_stats.paused > 0, "the proxy never stopped reading dockerd");
    cr_assert_leq(final_stats.buffered_peak, HELD_MAX, "held %llu bytes",
                  (unsigned long long)final_stats.buffered_peak);
    cr_assert_geq(final_stats.bytes_down, BIG);
}

Test(docker_proxy, a_large_upload_to_a_slow_dockerd_stays_bounded)
{
    listen_up();
    start_proxy((dk_proxy_options){0});
    int c = connect_to(ppath), u = accept_up();
    char rh[128];
    snprintf(rh, sizeof rh,
             "PUT /containers/x/archive?path=/ HTTP/1.1\r\nHost: d\r\n"
             "Content-Type: application/x-tar\r\nContent-Length: %u\r\n\r\n",
             BIG);
    send_str(c, rh);
    pthread_t t;
    writer w = {.fd = c, .n = BIG};
    pthread_create(&t, NULL, write_big, &w);
    expect_bytes(u, rh);
    read_big_slowly(u, BIG);
    pthread_join(t, NULL);
    send_str(u, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    expect_bytes(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    close(c);
    close(u);
    stop_proxy();
    cr_assert(final_stats.paused > 0);
    cr_assert_leq(final_stats.buffered_peak, HELD_MAX, "held %llu bytes",
                  (unsigned long long)final_stats.buffered_peak);
}

/* ------------------------------------------------------------ creates */

static void rewrite_create(void *ud, dk_proxy_call *call, const dk_proxy_create *req)
{
    (void)ud;
    seen_peer = req->peer;
    snprintf(seen_query, sizeof seen_query, "%s", req->query);
    snprintf(seen_body, sizeof seen_body, "%.*s", (int)req->len, req->body);
    const char *nb = "{\"Image\":\"local/busybox:latest\",\"Env\":[\"A=1\",\"ADDED=yes\"]}";
    cr_assert_eq(dk_proxy_create_forward(call, nb, strlen(nb)), 0);
}

static void refuse_create(void *ud, dk_proxy_call *call, const dk_proxy_create *req)
{
    (void)ud;
    (void)req;
    cr_assert_eq(dk_proxy_create_refuse(call, 403, "ResourceInitializationError: \"no\""), 0);
}

Test(docker_proxy, a_create_is_handed_to_the_callback_and_rewritten)
{
    listen_up();
    start_proxy((dk_proxy_options){.on_create = rewrite_create});
    int c = connect_to(ppath), u = accept_up();
    const char *body = "{\"Image\":\"local/busybox:latest\",\"Env\":[\"A=1\"]}";
    char req[512];
    /* chunked, in two pieces: the body is collected whole all the same */
    snprintf(req, sizeof req,
             "POST /v1.41/containers/create?name=web HTTP/1.1\r\nHost: docker\r\n"
             "X-Custom: kept\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%.10s",
             strlen(body), body);
    send_str(c, req);
    cr_assert_not(readable_within(u, 100), "a create goes on only once read whole");
    snprintf(req, sizeof req, "%s\r\n0\r\n\r\n", body + 10);
    send_str(c, req);
    const char *nb = "{\"Image\":\"local/busybox:latest\",\"Env\":[\"A=1\",\"ADDED=yes\"]}";
    char want[512];
    snprintf(want, sizeof want,
             "POST /v1.41/containers/create?name=web HTTP/1.1\r\nHost: docker\r\n"
             "X-Custom: kept\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(nb), nb);
    expect_bytes(u, want);
    const char *created = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                          "Content-Length: 30\r\n\r\n{\"Id\":\"abc\",\"Warnings\":null}\n\n";
    send_str(u, created);
    expect_bytes(c, created);
    send_str(c, PING);
    expect_bytes(u, PING);
    close(c);
    close(u);
    stop_proxy();
    cr_assert(seen_peer.known);
    cr_assert_eq(seen_peer.uid, getuid());
    cr_assert_eq(seen_peer.pid, getpid());
    cr_assert_str_eq(seen_query, "name=web");
    cr_assert_str_eq(seen_body, body);
    cr_assert_eq(final_stats.creates, 1);
}

Test(docker_proxy, a_refused_create_is_answered_in_dockerds_shape)
{
    listen_up();
    start_proxy((dk_proxy_options){.on_create = refuse_create});
    int c = connect_to(ppath), u = accept_up();
    send_str(c, "POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{}");
    const char *msg = "{\"message\":\"ResourceInitializationError: \\\"no\\\"\"}\n";
    char want[256];
    snprintf(want, sizeof want,
             "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %zu"
             "\r\n\r\n%s",
             strlen(msg), msg);
    expect_bytes(c, want);
    cr_assert_not(readable_within(u, 100), "nothing of a refused create reaches dockerd");
    send_str(c, PING); /* the connection stays usable */
    expect_bytes(u, PING);
    send_str(u, PONG);
    expect_bytes(c, PONG);
    close(c);
    close(u);
    stop_proxy();
    cr_assert_eq(final_stats.creates_refused, 1);
}

/* The agent's intake (agent/intake/docker.h) behind the proxy: a create
 * without ecs-secrets.* labels reaches dockerd byte for byte, whatever its
 * formatting; labels that cannot be read are refused before dockerd. (The
 * injection itself, with the resolver: tests/integration/test_docker_intake.sh.) */
Test(docker_proxy, the_intake_passes_creates_without_labels_untouched)
{
    ag_intake_docker_config ic = {.region = "us-east-1", .account = "123456789012"};
    ag_intake_docker *x = NULL;
    char err[256];
    cr_assert_eq(ag_intake_docker_create(&ic, &x, err, sizeof err), 0);
    listen_up();
    start_proxy((dk_proxy_options){
        .on_create = ag_intake_docker_on_create, .on_cancel = ag_intake_docker_on_cancel, .ud = x});
    int c = connect_to(ppath), u = accept_up();
    const char *body =
        "{ \"Image\" : \"busybox\",\n \"Env\":[\"A=\\u0041\"], \"StopTimeout\": 1.0e1,"
        " \"Labels\": {\"ecs-secrets\":\"not ours\", \"x\":\"y\"} }";
    char req[1024];
    snprintf(req, sizeof req,
             "POST /v1.43/containers/create?name=plain HTTP/1.1\r\nHost: docker\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    send_str(c, req);
    expect_bytes(u, req);
    send_str(u, PONG);
    expect_bytes(c, PONG);
    /* a body dockerd would refuse anyway goes on too (dockerd answers) */
    snprintf(req, sizeof req,
             "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: 3\r\n\r\n{x}");
    send_str(c, req);
    expect_bytes(u, req);
    send_str(u, PONG);
    expect_bytes(c, PONG);
    /* labels asking for secrets without a role: 400, nothing to dockerd */
    const char *bad = "{\"Labels\":{\"ecs-secrets.secret.DB\":\"/db\"}}";
    snprintf(req, sizeof req,
             "POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(bad), bad);
    send_str(c, req);
    char got[1024];
    size_t n = 0;
    while (n < 12) {
        ssize_t r = read(c, got + n, sizeof got - 1 - n);
        cr_assert_gt(r, 0);
        n += (size_t)r;
    }
    got[n] = '\0';
    cr_assert(strncmp(got, "HTTP/1.1 400 ", 13) == 0, "%s", got);
    cr_assert_not(readable_within(u, 100), "nothing of a refused create reaches dockerd");
    close(c);
    close(u);
    stop_proxy();
    ag_intake_docker_stats st;
    ag_intake_docker_get_stats(x, &st);
    cr_assert_eq(st.creates, 3);
    cr_assert_eq(st.refused, 1);
    cr_assert_eq(st.injected, 0);
    ag_intake_docker_free(x);
}

Test(docker_proxy, a_create_body_past_its_maximum_is_refused_with_413)
{
    listen_up();
    start_proxy((dk_proxy_options){.on_create = rewrite_create, .max_create = 64});
    int c = connect_to(ppath), u = accept_up();
    send_str(c, "POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 100\r\n\r\n");
    char buf[512];
    recv_eof(c, buf, sizeof buf);
    cr_assert(strncmp(buf, "HTTP/1.1 413 ", 13) == 0, "%s", buf);
    cr_assert(strstr(buf, "\r\n\r\n{\"message\":\"containers/create body too large"), "%s", buf);
    /* chunked, so that only the body itself shows its size */
    int c2 = connect_to(ppath), u2 = accept_up();
    send_str(c2, "POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "50\r\n");
    char big[81];
    memset(big, 'x', 80);
    big[80] = '\0';
    send_str(c2, big);
    recv_eof(c2, buf, sizeof buf);
    cr_assert(strncmp(buf, "HTTP/1.1 413 ", 13) == 0, "%s", buf);
    cr_assert(only_eof(u2), "nothing of it reaches dockerd");
    close(c);
    close(u);
    close(c2);
    close(u2);
}

Test(docker_proxy, an_oversized_head_is_refused_with_400)
{
    listen_up();
    start_proxy((dk_proxy_options){.max_head = 4096});
    int c = connect_to(ppath), u = accept_up();
    char big[6000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    send_str(c, "GET /info HTTP/1.1\r\nX-Big: ");
    send_str(c, big);
    char buf[512];
    recv_eof(c, buf, sizeof buf);
    cr_assert(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s", buf);
    cr_assert(strstr(buf, "Connection: close\r\n"), "%s", buf);
    cr_assert(strstr(buf, "{\"message\":\"request head too large"), "%s", buf);
    cr_assert(only_eof(u), "nothing of it reaches dockerd");
    close(c);
    close(u);
    stop_proxy();
    cr_assert_eq(final_stats.bad_requests, 1);
}

Test(docker_proxy, dockerd_down_answers_502_and_the_proxy_serves_when_it_is_back)
{
    start_proxy((dk_proxy_options){0});
    int c = connect_to(ppath);
    send_str(c, PING);
    char buf[512];
    recv_eof(c, buf, sizeof buf);
    cr_assert(strncmp(buf, "HTTP/1.1 502 Bad Gateway\r\n", 26) == 0, "%s", buf);
    char want[256];
    snprintf(want, sizeof want,
             "{\"message\":\"Cannot connect to the Docker daemon at unix://%s. Is the docker "
             "daemon running?\"}\n",
             upath);
    cr_assert(strstr(buf, want), "%s", buf);
    close(c);
    listen_up();
    c = connect_to(ppath);
    int u = accept_up();
    send_str(c, PING);
    expect_bytes(u, PING);
    send_str(u, PONG);
    expect_bytes(c, PONG);
    close(c);
    close(u);
}

Test(docker_proxy, a_client_gone_mid_stream_closes_its_upstream)
{
    listen_up();
    start_proxy((dk_proxy_options){0});
    int c = connect_to(ppath), u = accept_up();
    send_str(c, "GET /events HTTP/1.1\r\nHost: d\r\n\r\n");
    expect_bytes(u, "GET /events HTTP/1.1\r\nHost: d\r\n\r\n");
    send_str(u, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n");
    expect_bytes(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n");
    close(c);
    char buf[16];
    cr_assert(readable_within(u, 5000));
    cr_assert_leq(recv(u, buf, sizeof buf, 0), 0, "dockerd sees the client leave");
    close(u);
    /* and the other way round */
    c = connect_to(ppath);
    u = accept_up();
    send_str(c, "GET /events HTTP/1.1\r\nHost: d\r\n\r\n");
    expect_bytes(u, "GET /events HTTP/1.1\r\nHost: d\r\n\r\n");
    close(u);
    cr_assert(readable_within(c, 5000));
    cr_assert_leq(recv(c, buf, sizeof buf, 0), 0);
    close(c);
    usleep(200 * 1000); /* the proxy sees the close */
    stop_proxy();
    cr_assert_eq(final_stats.active, 0);
}

/* Bytes kept past a read (a head in part, a request waiting for the answer
 * before it) hold chunks of their size, not the 64 KiB read chunks. */
Test(docker_proxy, bytes_kept_between_reads_hold_chunks_of_their_size)
{
    enum { N = 40 };
    listen_up();
    start_proxy((dk_proxy_options){0});
    int c[N], u[N];
    for (int i = 0; i < N; i++) {
        c[i] = connect_to(ppath);
        u[i] = accept_up();
        if (i % 2) {
            send_str(c[i], "GET /_ping HTTP/1.1\r\nHost: d\r\nUser-"); /* a head in part */
        } else {
            /* a second request before the first's answer: waits unparsed */
            send_str(c[i], PING);
            expect_bytes(u[i], PING);
            send_str(c[i], PING);
        }
    }
    usleep(200 * 1000); /* the proxy has read them all */
    stop_proxy();
    for (int i = 0; i < N; i++) {
        close(c[i]);
        close(u[i]);
    }
    cr_assert_eq(final_stats.active, N);
    cr_assert_lt(final_stats.buffered, (uint64_t)N * 1024, "%llu bytes held for %d connections",
                 (unsigned long long)final_stats.buffered, N);
}

/* The client leaves in the middle of a body it was reading: the proxy's
 * next forward to it fails at once (or its queued write does), the
 * connection closes, and dockerd's writer sees its peer gone. */
Test(docker_proxy, a_client_gone_mid_body_stops_dockerds_writer)
{
    listen_up();
    start_proxy((dk_proxy_options){0});
    int c = connect_to(ppath), u = accept_up();
    const char *rq = "GET /containers/x/archive?path=/f HTTP/1.1\r\nHost: d\r\n\r\n";
    send_str(c, rq);
    expect_bytes(u, rq);
    char rh[128];
    snprintf(rh, sizeof rh, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", BIG);
    send_str(u, rh);
    expect_bytes(c, rh);
    char *buf = calloc(1, 65536);
    send_all(u, buf, 65536);
    recv_n(c, buf, 1000); /* a part of the body, then gone */
    close(c);
    /* dockerd goes on writing until the proxy's close reaches it */
    ssize_t r;
    size_t sent = 0;
    while ((r = send(u, buf, 65536, MSG_NOSIGNAL)) > 0 && sent < BIG)
        sent += (size_t)r;
    cr_assert_lt(r, 0, "dockerd wrote %zu bytes to a client that left", sent);
    cr_assert(errno == EPIPE || errno == ECONNRESET, "send: %s", strerror(errno));
    free(buf);
    close(u);
    usleep(100 * 1000);
    stop_proxy();
    cr_assert_eq(final_stats.active, 0);
    cr_assert_lt(final_stats.bytes_down, (uint64_t)BIG);
}

Test(docker_proxy, a_stale_socket_is_replaced_but_a_live_one_is_not)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", ppath);
    cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(s, 1), 0);
    uv_loop_t l;
    uv_loop_init(&l);
    dk_proxy *p = NULL;
    dk_proxy_options o = {.path = ppath, .upstream = upath};
    cr_assert_eq(dk_proxy_start(&l, &o, &p), -EADDRINUSE);
    close(s); /* the file stays, nothing listens */
    cr_assert_eq(dk_proxy_start(&l, &o, &p), 0);
    dk_proxy_close(p, NULL, NULL);
    uv_run(&l, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&l), 0);
    struct stat st;
    cr_assert_neq(stat(ppath, &st), 0, "the close removes the socket");
    FILE *f = fopen(ppath, "w"); /* not a socket: never removed */
    fclose(f);
    uv_loop_init(&l);
    cr_assert_eq(dk_proxy_start(&l, &o, &p), -EEXIST);
    uv_run(&l, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&l), 0);
}

Test(docker_proxy, recognises_containers_create_as_dockerd_routes_it)
{
    cr_assert(dk_proxy_is_create("POST", "/containers/create"));
    cr_assert(dk_proxy_is_create("POST", "/containers/create?name=x"));
    cr_assert(dk_proxy_is_create("POST", "/v1.41/containers/create?name=x"));
    cr_assert(dk_proxy_is_create("POST", "/v1/containers/create"));
    cr_assert(dk_proxy_is_create("POST", "/v1.0000000000000000000000000000000000000000000000000000"
                                         "0000000041/containers/create"));
    cr_assert(dk_proxy_is_create("POST", "/v1.41/containers/%63reate"));
    cr_assert(dk_proxy_is_create("POST", "/containers%2Fcreate"));
    cr_assert(dk_proxy_is_create("POST", "http://docker/v1.41/containers/create"));
    cr_assert_not(dk_proxy_is_create("GET", "/containers/create"));
    cr_assert_not(dk_proxy_is_create("POST", "/containers/created"));
    cr_assert_not(dk_proxy_is_create("POST", "/v/containers/create"));
    cr_assert_not(dk_proxy_is_create("POST", "/vx/containers/create"));
    cr_assert_not(dk_proxy_is_create("POST", "/containers/x/start"));
    cr_assert_not(dk_proxy_is_create("POST", "/images/create"));
    cr_assert_not(dk_proxy_is_create("POST", "containers/create"));
}
