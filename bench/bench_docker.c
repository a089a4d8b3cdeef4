/* bench_docker - the Docker client against one long-lived curl process.
 *
 *   bench_docker [unix:///path/docker.sock] [cycles]
 * (default host: $ES_TEST_DOCKER_HOST; default 200 cycles)
 *
 * Runs `cycles` sequential create+start+remove cycles (containers bench-N,
 * image local/busybox:latest, network none) through dk_client (in two halves
 * around the curl run), and the same 3*cycles requests through ONE curl
 * process (--unix-socket, chained with
 * `next` in a config file, so it keeps one connection alive), and prints both
 * wall-clock totals, their ratio (goal <= 1.0) and the client's own CPU time
 * per request (goal <= 50 us). Every answer's status is checked on both
 * sides, so a run that failed requests does not report figures.
 *
 * Ten unmeasured cycles warm dockerd up first (BENCH_DOCKER_WARMUP=N
 * changes the count). The order is floor, client, curl, client, libuv floor:
 * each half of the client follows a run of as many cycles by another client
 * (dockerd still reaps the shims of the containers just removed), and the
 * halves straddle curl so that a steady drift of dockerd's speed favours
 * neither side.
 *
 * For reference it also prints the CPU per request of curl (its start-up,
 * measured on a one-ping curl, subtracted), of a "floor" client: the same
 * requests by blocking write()+read() on one socket, no event loop, and of a
 * "libuv floor": the same requests and parser through a bare uv_pipe_t on
 * this loop. Every request makes the process sleep until dockerd answers
 * (tens to hundreds of ms), and waking it up again is charged to it: the
 * floor is that cost, the libuv floor adds the event loop's, and what the
 * client costs above the libuv floor is the client's own.
 *
 * dockerd's time per request is most of every figure here, and with its data
 * root on a disk it moves with the disk's fsync latency (creates took
 * 170-410 ms from one minute to the next on the development VM): run the
 * bench against a dockerd whose --data-root is on tmpfs (bench/docker_bench.sh
 * sets one up), where a create takes about 13 ms.
 *
 * BENCH_DOCKER_SPLIT=1 also prints where the CPU of a request goes (poll to
 * result, result to poll; the floor's read and the rest), at the price of two
 * system calls per request. BENCH_DOCKER_CLIENT_ONLY=1 runs the client alone
 * (no curl, no floor) with the split: a run for a profiler or an A/B test
 * (under callgrind with --collect-atstart=no, only its measured cycles are
 * collected). BENCH_DOCKER_PAIRED=1 alternates cycles between the client and
 * the blocking floor and prints each operation's mean latency on both sides:
 * whether the client makes dockerd's answers come later, free of drift.
 * BENCH_DOCKER_ROUNDS=N repeats the client-curl-client sandwich N times,
 * sums the totals and prints each round's ratio with their mean and
 * standard error: a single round's ratio moves by a few per cent with
 * dockerd and runc, while the two clients differ by well under one.
 *
 * The containers run `sleep 3600`, so every remove (force=1) kills a running
 * container on both sides: with a command that exits at once, the faster
 * client's remove races the exit and costs dockerd more. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

/* Under callgrind (--collect-atstart=no) only the client's measured
 * cycles are collected; elsewhere these are no-ops. */
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#endif

#include "common/http.h"
#include "docker/docker.h"

#include <sys/socket.h>
#include <sys/un.h>

#define IMAGE "local/busybox:latest"

static uv_loop_t *loop;
static dk_client *cli;
static int cycles = 200;
static int cur, stop_at, failed;
static bool finished;
static const char *cmd[] = {"/bin/sleep", "3600"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_of(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double cpu_s(void)
{
    return cpu_of(RUSAGE_SELF);
}

/* user time of this process alone: printed beside the total so that the
 * part spent in our code and libuv shows apart from the kernel's */
static double user_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
}

static void next_cycle(void);

/* per operation (create, start, remove): summed latency, for both sides */
static double op_t0, client_op[3], curl_op[3];

/* ---- where a request's CPU goes. The thread's CPU clock is read before
 * each poll (a uv_prepare handle) and when a result reaches its callback:
 *  - wait: from "about to poll" to the callback: epoll_wait's sleep and
 *    wake-up, the read, parsing the answer, the result's delivery;
 *  - send: from the callback to the next poll: building and writing the
 *    next request, the loop's own turn.
 * The floor client's time is split the same way: its blocking read (sleep,
 * wake-up and the copy) and the rest (write, parse). */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uv_prepare_t prep;
static double t_prep = -1, t_cb = -1, split_wait, split_send;
/* the split costs two system calls per request: only on request
 * (BENCH_DOCKER_SPLIT=1, or BENCH_DOCKER_CLIENT_ONLY=1), never in the
 * figures compared against the goal */
static bool split_on;

static void on_prepare(uv_prepare_t *h)
{
    (void)h;
    double t = thread_cpu();
    if (t_cb >= 0)
        split_send += t - t_cb;
    t_cb = -1;
    t_prep = t;
}

static void split_mark(void)
{
    if (!split_on)
        return;
    double t = thread_cpu();
    if (t_prep >= 0)
        split_wait += t - t_prep;
    t_prep = -1;
    t_cb = t;
}

static void op_mark(int op)
{
    split_mark();
    double t = now_s();
    client_op[op] += t - op_t0;
    op_t0 = t;
}

static void fail(const char *what, const dk_result *r)
{
    fprintf(stderr, "bench: %s bench-%d: %s %s\n", what, cur, dk_strerror(r->err),
            r->message ? r->message : "");
    failed++;
    finished = true;
}

static void on_remove(void *ud, const dk_result *r)
{
    (void)ud;
    op_mark(2);
    if (r->err)
        return fail("remove", r);
    cur++;
    next_cycle();
}

/* The containers' names, formatted before any timed run (as curl's config
 * file and the floor's requests are): the figures are the client's, not the
 * driver's printf. */
static char (*names)[16];
static const char *name;

static void on_start(void *ud, const dk_result *r)
{
    (void)ud;
    op_mark(1);
    if (r->err)
        return fail("start", r);
    if (dk_container_remove(cli, name, true, on_remove, NULL) < 0)
        failed++, finished = true;
}

static void on_create(void *ud, const dk_result *r, const char *id)
{
    (void)ud;
    (void)id;
    op_mark(0);
    if (r->err)
        return fail("create", r);
    if (dk_container_start(cli, name, on_start, NULL) < 0)
        failed++, finished = true;
}

static void next_cycle(void)
{
    if (cur == stop_at) {
        finished = true;
        return;
    }
    name = names[cur];
    dk_create_spec s = {
        .name = name, .image = IMAGE, .cmd = cmd, .ncmd = 2, .network_mode = "none"};
    op_t0 = now_s();
    if (dk_container_create(cli, &s, on_create, NULL) < 0)
        failed++, finished = true;
}

static void on_ping(void *ud, const dk_result *r)
{
    *(int *)ud = r->err ? r->err : 1;
}

static int pings_left;

static void on_seq_ping(void *ud, const dk_result *r)
{
    (void)ud;
    if (r->err) {
        failed++;
        pings_left = 0;
        return;
    }
    if (--pings_left > 0)
        dk_ping(cli, on_seq_ping, NULL);
}

static void on_cleanup(void *ud, const dk_result *r)
{
    (void)r;
    (*(int *)ud)--;
}

/* Removes leftovers bench-0..N-1 (404 is fine): before the first run, and
 * after a run that failed. A run that succeeded removed every container it
 * made, and a burst of DELETEs between the runs would only make dockerd's
 * load differ from one run to the next. */
static void cleanup(void)
{
    int pending = 0;
    for (int i = 0; i < cycles; i++) {
        char n[64];
        snprintf(n, sizeof(n), "bench-%d", i);
        if (dk_container_remove(cli, n, true, on_cleanup, &pending) == 0)
            pending++;
    }
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
}

/* Runs cycles cur..end-1 through the client, adding wall and CPU time. */
static double client_user, floor_user;

static int client_half(int end, double *wall, double *cpu)
{
    stop_at = end;
    finished = false;
    double t0 = now_s(), c0 = cpu_s(), u0 = user_s();
    t_prep = t_cb = -1;
    CALLGRIND_TOGGLE_COLLECT;
    next_cycle();
    while (!finished)
        uv_run(loop, UV_RUN_ONCE);
    CALLGRIND_TOGGLE_COLLECT;
    *wall += now_s() - t0;
    *cpu += cpu_s() - c0;
    client_user += user_s() - u0;
    if (failed)
        cleanup();
    return failed ? -1 : 0;
}

static int run_curl(const char *path, double *secs)
{
    char cfg[] = "/tmp/bench_docker_curl_XXXXXX";
    int fd = mkstemp(cfg);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    const char *body =
        "{\\\"Image\\\":\\\"" IMAGE "\\\",\\\"Cmd\\\":[\\\"/bin/sleep\\\",\\\"3600\\\"],"
        "\\\"HostConfig\\\":{\\\"NetworkMode\\\":\\\"none\\\"}}";
    for (int i = 0; i < cycles; i++) {
        const char *common =
            "silent\noutput = \"/dev/null\"\nwrite-out = \"%{http_code} %{time_total}\\n\"\n";
        fprintf(f,
                "%sunix-socket = \"%s\"\nrequest = \"POST\"\n"
                "header = \"Content-Type: application/json\"\ndata = \"%s\"\n"
                "url = \"http://docker/v1.41/containers/create?name=bench-%d\"\nnext\n",
                common, path, body, i);
        fprintf(f,
                "%sunix-socket = \"%s\"\nrequest = \"POST\"\n"
                "url = \"http://docker/v1.41/containers/bench-%d/start\"\nnext\n",
                common, path, i);
        fprintf(f,
                "%sunix-socket = \"%s\"\nrequest = \"DELETE\"\n"
                "url = \"http://docker/v1.41/containers/bench-%d?force=1&v=1\"\n%s",
                common, path, i, i + 1 < cycles ? "next\n" : "");
    }
    fclose(f);
    char cmdline[512];
    snprintf(cmdline, sizeof(cmdline), "curl -K %s", cfg);
    double t0 = now_s();
    FILE *p = popen(cmdline, "r");
    if (!p) {
        unlink(cfg);
        return -errno;
    }
    char line[64];
    int n = 0, bad = 0;
    while (fgets(line, sizeof(line), p)) {
        char *end = NULL;
        int code = (int)strtol(line, &end, 10);
        curl_op[n % 3] += strtod(end, NULL);
        int want = n % 3 == 0 ? 201 : 204;
        if (code != want) {
            if (bad++ < 5)
                fprintf(stderr, "bench: curl request %d answered %d\n", n, code);
        }
        n++;
    }
    int st = pclose(p);
    *secs = now_s() - t0;
    unlink(cfg);
    if (st != 0 || n != 3 * cycles || bad) {
        fprintf(stderr, "bench: curl run failed (exit %d, %d answers, %d unexpected)\n", st, n,
                bad);
        return -EIO;
    }
    return 0;
}

/* ---- the floor: a blocking client that does nothing but write() and read()
 * on one kept-alive socket (no event loop, nothing allocated per request).
 * Its CPU per request is what one sleep-and-wake of a process waiting for
 * dockerd costs on this machine: no client that waits can go below it. */

static double floor_read;

static int floor_one(int fd, es_http_parser *p, const char *req, size_t n, int want)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, req + off, n - off);
        if (w <= 0)
            return -EIO;
        off += (size_t)w;
    }
    es_http_parser_reset(p);
    char buf[4096];
    for (;;) {
        double t = split_on ? thread_cpu() : 0;
        ssize_t r = read(fd, buf, sizeof(buf));
        if (split_on)
            floor_read += thread_cpu() - t;
        if (r <= 0)
            return -EIO;
        size_t off = 0;
        for (;;) {
            size_t used = 0;
            int rc = es_http_parser_feed(p, buf + off, (size_t)r - off, &used);
            off += used;
            if (rc == ES_HTTP_HEADERS)
                continue;
            if (rc == ES_HTTP_DONE)
                return es_http_parser_status(p) == want ? 0 : -EPROTO;
            if (rc < 0)
                return -EPROTO;
            break; /* need more */
        }
    }
}

/* Every request of the floors, formatted before any timed run. */
typedef struct {
    char text[3][512];
    int len[3];
} cycle_req;
static cycle_req *floor_req;
static const int floor_want[3] = {201, 204, 204};

static int floor_requests(void)
{
    static const char body[] = "{\"Image\":\"" IMAGE "\",\"Cmd\":[\"/bin/sleep\",\"3600\"],"
                               "\"HostConfig\":{\"NetworkMode\":\"none\"}}";
    floor_req = calloc((size_t)cycles, sizeof(*floor_req));
    if (!floor_req)
        return -ENOMEM;
    for (int i = 0; i < cycles; i++) {
        cycle_req *q = &floor_req[i];
        q->len[0] = snprintf(q->text[0], sizeof(q->text[0]),
                             "POST /v1.41/containers/create?name=bench-%d HTTP/1.1\r\nHost: "
                             "docker\r\nContent-Type: application/json\r\nContent-Length: "
                             "%zu\r\n\r\n%s",
                             i, sizeof(body) - 1, body);
        q->len[1] = snprintf(q->text[1], sizeof(q->text[1]),
                             "POST /v1.41/containers/bench-%d/start HTTP/1.1\r\nHost: "
                             "docker\r\nContent-Length: 0\r\n\r\n",
                             i);
        q->len[2] = snprintf(q->text[2], sizeof(q->text[2]),
                             "DELETE /v1.41/containers/bench-%d?force=1&v=1 HTTP/1.1\r\n"
                             "Host: docker\r\n\r\n",
                             i);
    }
    return 0;
}

/* The blocking floor's connection and answer parser. */
static int floor_open(const char *path, int *fd_out, es_http_parser **p_out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = -errno;
        if (fd >= 0)
            close(fd);
        return e;
    }
    if (es_http_parser_create(ES_HTTP_RESPONSE, NULL, p_out) < 0) {
        close(fd);
        return -ENOMEM;
    }
    *fd_out = fd;
    return 0;
}

static int run_floor(const char *path, double *secs, double *cpu)
{
    int fd = -1;
    es_http_parser *p = NULL;
    int oe = floor_open(path, &fd, &p);
    if (oe < 0)
        return oe;
    int e = 0;
    double t0 = now_s(), c0 = cpu_s(), u0 = user_s();
    for (int i = 0; i < cycles && !e; i++)
        for (int k = 0; k < 3 && !e; k++)
            e = floor_one(fd, p, floor_req[i].text[k], (size_t)floor_req[i].len[k], floor_want[k]);
    *cpu = cpu_s() - c0;
    floor_user = user_s() - u0;
    *secs = now_s() - t0;
    es_http_parser_free(p);
    close(fd);
    if (e)
        fprintf(stderr, "bench: floor client failed: %d\n", e);
    return e;
}

/* ---- paired: cycles alternate between the client (even) and the blocking
 * floor (odd), so that any drift of dockerd's speed reaches both alike; the
 * mean latency of each operation on both sides shows whether the client
 * makes dockerd's answers come later than a bare HTTP client does.
 * BENCH_DOCKER_PAIRED=1; a diagnostic, apart from the figures above. */
static int run_paired(const char *path)
{
    int fd = -1;
    es_http_parser *p = NULL;
    int oe = floor_open(path, &fd, &p);
    if (oe < 0)
        return oe;
    double floor_op[3] = {0};
    memset(client_op, 0, sizeof(client_op));
    int e = 0;
    for (int i = 0; i < cycles && !e; i++) {
        if (i % 2 == 0) {
            cur = i;
            stop_at = i + 1;
            finished = false;
            next_cycle();
            while (!finished)
                uv_run(loop, UV_RUN_ONCE);
            e = failed ? -EIO : 0;
            continue;
        }
        for (int k = 0; k < 3 && !e; k++) {
            double t = now_s();
            e = floor_one(fd, p, floor_req[i].text[k], (size_t)floor_req[i].len[k], floor_want[k]);
            floor_op[k] += now_s() - t;
        }
    }
    es_http_parser_free(p);
    close(fd);
    if (e) {
        fprintf(stderr, "bench: paired run failed at cycle %d: %d\n", cur, e);
        return e;
    }
    int nc = (cycles + 1) / 2, nf = cycles / 2;
    double ct = 0, ft = 0;
    for (int k = 0; k < 3; k++)
        ct += client_op[k] / nc, ft += floor_op[k] / nf;
    printf("bench_docker: paired, %d cycles alternating client/floor: mean create/start/remove "
           "client %.2f/%.2f/%.2f ms, floor %.2f/%.2f/%.2f ms; cycle ratio %.3f\n",
           cycles, client_op[0] * 1e3 / nc, client_op[1] * 1e3 / nc, client_op[2] * 1e3 / nc,
           floor_op[0] * 1e3 / nf, floor_op[1] * 1e3 / nf, floor_op[2] * 1e3 / nf, ct / ft);
    return 0;
}

/* ---- the libuv floor: the same preformatted requests and the same parser,
 * through a bare uv_pipe_t on this loop (uv_try_write, a read callback),
 * with none of the client (no queue, pool, timer, allocation, JSON). What
 * the client costs above it is the client's own; what it costs above the
 * blocking floor is the event loop's. */
static struct {
    uv_pipe_t pipe;
    uv_connect_t creq;
    es_http_parser *p;
    int i, k, err;
    bool done;
    char buf[4096];
} uvf;

static void uvf_end(int err)
{
    uvf.err = err;
    uvf.done = true;
    uv_read_stop((uv_stream_t *)&uvf.pipe);
}

static void uvf_send(void)
{
    const cycle_req *q = &floor_req[uvf.i];
    uv_buf_t b = uv_buf_init((char *)q->text[uvf.k], (unsigned)q->len[uvf.k]);
    es_http_parser_reset(uvf.p);
    if (uv_try_write((uv_stream_t *)&uvf.pipe, &b, 1) != q->len[uvf.k])
        uvf_end(-EIO); /* a request of a few hundred bytes: all or nothing here */
}

static void uvf_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    (void)h;
    (void)n;
    *b = uv_buf_init(uvf.buf, sizeof(uvf.buf));
}

static void uvf_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)s;
    if (nread == 0 || uvf.done)
        return;
    if (nread < 0)
        return uvf_end((int)nread);
    /* fed again after the head even with nothing left: an answer without
     * a body (204) is complete then */
    for (size_t off = 0;;) {
        size_t used = 0;
        int rc = es_http_parser_feed(uvf.p, b->base + off, (size_t)nread - off, &used);
        off += used;
        if (rc == ES_HTTP_HEADERS)
            continue;
        if (rc < 0)
            return uvf_end(-EPROTO);
        if (rc != ES_HTTP_DONE)
            return; /* more to come */
        if (es_http_parser_status(uvf.p) != floor_want[uvf.k])
            return uvf_end(-EPROTO);
        if (++uvf.k == 3) {
            uvf.k = 0;
            if (++uvf.i == cycles)
                return uvf_end(0);
        }
        uvf_send();
        return;
    }
}

static void uvf_connected(uv_connect_t *cr, int status)
{
    (void)cr;
    if (status < 0)
        return uvf_end(status);
    int e = uv_read_start((uv_stream_t *)&uvf.pipe, uvf_alloc, uvf_read);
    if (e < 0)
        return uvf_end(e);
    uvf.done = true; /* connected: the timed part starts in run_uv_floor */
}

static int run_uv_floor(const char *path, double *secs, double *cpu)
{
    if (es_http_parser_create(ES_HTTP_RESPONSE, NULL, &uvf.p) < 0)
        return -ENOMEM;
    uv_pipe_init(loop, &uvf.pipe, 0);
    uv_pipe_connect(&uvf.creq, &uvf.pipe, path, uvf_connected);
    while (!uvf.done)
        uv_run(loop, UV_RUN_ONCE);
    if (!uvf.err) {
        uvf.done = false;
        double t0 = now_s(), c0 = cpu_s();
        uvf_send();
        while (!uvf.done)
            uv_run(loop, UV_RUN_ONCE);
        *cpu = cpu_s() - c0;
        *secs = now_s() - t0;
    }
    uv_close((uv_handle_t *)&uvf.pipe, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    es_http_parser_free(uvf.p);
    if (uvf.err)
        fprintf(stderr, "bench: libuv floor failed at cycle %d request %d: %s\n", uvf.i, uvf.k,
                uv_strerror(uvf.err));
    return uvf.err;
}

/* The CPU of one curl process that sends a single /_ping: its start-up,
 * subtracted from the long run's CPU to get curl's cost per request. */
static double curl_startup_cpu(const char *path)
{
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        char cmdline[512];
        snprintf(cmdline, sizeof(cmdline),
                 "curl -s -o /dev/null --unix-socket '%s' http://docker/_ping", path);
        double k0 = cpu_of(RUSAGE_CHILDREN);
        if (system(cmdline) != 0)
            return 0;
        double c = cpu_of(RUSAGE_CHILDREN) - k0;
        if (c < best)
            best = c;
    }
    return best;
}

/* A count from the environment: dflt when unset or empty, -1 (after saying
 * why) when it is not a number in [min, 100000]. */
static int env_count(const char *var, int dflt, int min)
{
    const char *v = getenv(var);
    if (!v || !*v)
        return dflt;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < min || n > 100000) {
        fprintf(stderr, "bench: %s=%s: not a count from %d to 100000\n", var, v, min);
        return -1;
    }
    return (int)n;
}

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : getenv("ES_TEST_DOCKER_HOST");
    if (argc > 2)
        cycles = (int)strtol(argv[2], NULL, 10);
    if (!host || strncmp(host, "unix://", 7) != 0 || cycles <= 0) {
        fprintf(stderr, "usage: bench_docker unix:///path/docker.sock [cycles]\n"
                        "       (or set ES_TEST_DOCKER_HOST)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    names = calloc((size_t)cycles, sizeof(*names));
    if (!names)
        return 1;
    for (int i = 0; i < cycles; i++)
        snprintf(names[i], sizeof(names[i]), "bench-%d", i);
    loop = uv_default_loop();
    split_on = getenv("BENCH_DOCKER_SPLIT") || getenv("BENCH_DOCKER_CLIENT_ONLY");
    uv_prepare_init(loop, &prep);
    if (split_on)
        uv_prepare_start(&prep, on_prepare);
    uv_unref((uv_handle_t *)&prep);
    dk_options o = {.host = host, .timeout_ms = 60000};
    if (dk_client_create(loop, &o, &cli) < 0)
        return 1;
    int ping = 0;
    dk_ping(cli, on_ping, &ping);
    while (!ping)
        uv_run(loop, UV_RUN_ONCE);
    if (ping < 0) {
        fprintf(stderr, "bench: ping %s: %s\n", host, dk_strerror(ping));
        return 1;
    }
    cleanup();

    /* warm-up, not measured: dockerd's first creates after a start are
     * slower, which would weigh on the first half only */
    double warm_s = 0, warm_cpu = 0;
    int measured = cycles;
    int warm = env_count("BENCH_DOCKER_WARMUP", 10, 0);
    int rounds = env_count("BENCH_DOCKER_ROUNDS", 1, 1);
    if (warm < 0 || rounds < 0)
        return 2;
    cycles = cycles < warm ? cycles : warm;
    if (client_half(cycles, &warm_s, &warm_cpu) < 0)
        return 1;
    cur = 0;
    cycles = measured;
    client_user = split_wait = split_send = 0;
    memset(client_op, 0, sizeof(client_op));

    bool client_only = getenv("BENCH_DOCKER_CLIENT_ONLY") != NULL;
    /* floor, client, curl, client. The client's two halves straddle the
     * curl run so that a drift of dockerd's speed during the run favours
     * neither side; the floor runs first so that each half follows a run of
     * as many cycles by another client, as the curl run follows the first
     * half: dockerd works through the same backlog (the shims and layers of
     * the containers just removed) before each of them. */
    double floor_s = 0, floor_cpu = 0;
    if (floor_requests() < 0)
        return 1;
    if (getenv("BENCH_DOCKER_PAIRED")) {
        int pe = run_paired(host + 7);
        if (pe < 0)
            cleanup();
        return pe < 0 ? 1 : 0;
    }
    if (!client_only) {
        if (run_floor(host + 7, &floor_s, &floor_cpu) < 0) {
            cleanup();
            return 1;
        }
    }
    double client_s = 0, client_cpu = 0;
    if (client_only) {
        /* for a profiler: nothing but the client in this process */
        if (client_half(cycles, &client_s, &client_cpu) < 0)
            return 1;
        printf("bench_docker: client only, %d requests: CPU %.1f us/request; split %.1f us "
               "poll to result, %.1f us result to poll\n",
               3 * cycles, client_cpu * 1e6 / (3 * cycles), split_wait * 1e6 / (3 * cycles),
               split_send * 1e6 / (3 * cycles));
        return 0;
    }
    /* Each round is client half, curl, client half. More than one round
     * (BENCH_DOCKER_ROUNDS=N) sums the totals and shows each round's ratio
     * and their spread: one round's ratio moves by a few per cent with
     * dockerd and runc, far more than the two clients' difference. */
    double curl_s = 0, curl_cpu = 0, first_half = 0, first_op[3] = {0};
    double ratio_sum = 0, ratio_sq = 0;
    for (int r = 0; r < rounds; r++) {
        double cs = 0, ks = 0, before[3];
        cur = 0;
        memcpy(before, client_op, sizeof(before));
        if (client_half(cycles / 2, &cs, &client_cpu) < 0)
            return 1;
        first_half += cs;
        for (int k = 0; k < 3; k++)
            first_op[k] += client_op[k] - before[k];
        double k0 = cpu_of(RUSAGE_CHILDREN);
        int e = run_curl(host + 7, &ks);
        curl_cpu += cpu_of(RUSAGE_CHILDREN) - k0;
        if (e < 0) {
            cleanup();
            return 1;
        }
        if (client_half(cycles, &cs, &client_cpu) < 0)
            return 1;
        client_s += cs;
        curl_s += ks;
        ratio_sum += cs / ks;
        ratio_sq += (cs / ks) * (cs / ks);
        if (rounds > 1)
            printf("  round %d: dk_client %.3f s, curl %.3f s, ratio %.3f\n", r + 1, cs, ks,
                   cs / ks);
    }
    double uvf_s = 0, uvf_cpu = 0;
    if (run_uv_floor(host + 7, &uvf_s, &uvf_cpu) < 0) {
        cleanup();
        return 1;
    }
    double curl_start = curl_startup_cpu(host + 7);
    fprintf(stderr, "bench: client halves %.3f s + %.3f s around curl %.3f s\n", first_half,
            client_s - first_half, curl_s);
    int h1 = cycles / 2 * rounds, h2 = cycles * rounds - h1;
    fprintf(
        stderr,
        "bench: client create/start/remove ms, first half %.2f/%.2f/%.2f, second %.2f/%.2f/%.2f\n",
        first_op[0] * 1e3 / h1, first_op[1] * 1e3 / h1, first_op[2] * 1e3 / h1,
        (client_op[0] - first_op[0]) * 1e3 / h2, (client_op[1] - first_op[1]) * 1e3 / h2,
        (client_op[2] - first_op[2]) * 1e3 / h2);

    /* the same client on a hot path: sequential /_ping, answered at once,
     * so the CPU does not go idle between requests */
    int npings = 3 * cycles;
    pings_left = npings;
    double p0 = now_s(), pc0 = cpu_s();
    dk_ping(cli, on_seq_ping, NULL);
    while (pings_left > 0)
        uv_run(loop, UV_RUN_ONCE);
    double ping_s = now_s() - p0, ping_cpu = cpu_s() - pc0;
    uv_close((uv_handle_t *)&prep, NULL);

    dk_stats st;
    dk_client_stats(cli, &st);
    dk_client_free(cli);
    uv_run(loop, UV_RUN_DEFAULT);
    /* the client's and curl's figures are over every round, the floors'
     * over one run of the cycles */
    int nreq = 3 * cycles * rounds, nfloor = 3 * cycles, ncyc = cycles * rounds;
    printf("bench_docker: %d create+start+remove cycles = %d requests", cycles, 3 * cycles);
    if (rounds > 1)
        printf(", %d rounds: %d requests per side", rounds, nreq);
    printf("\n");
    printf("  dk_client : %8.3f s total, %7.3f ms/request\n", client_s, client_s * 1e3 / nreq);
    printf("  curl      : %8.3f s total, %7.3f ms/request (one process, keep-alive)\n", curl_s,
           curl_s * 1e3 / nreq);
    printf("  mean latency create/start/remove: dk_client %.2f/%.2f/%.2f ms, "
           "curl %.2f/%.2f/%.2f ms\n",
           client_op[0] * 1e3 / ncyc, client_op[1] * 1e3 / ncyc, client_op[2] * 1e3 / ncyc,
           curl_op[0] * 1e3 / ncyc, curl_op[1] * 1e3 / ncyc, curl_op[2] * 1e3 / ncyc);
    printf("  ratio dk_client/curl = %.3f (goal <= 1.0)", client_s / curl_s);
    if (rounds > 1) {
        double mean = ratio_sum / rounds;
        double var = (ratio_sq - rounds * mean * mean) / (rounds - 1);
        printf(" over %d rounds; per round mean %.3f, standard error %.3f", rounds, mean,
               var > 0 ? sqrt(var / rounds) : 0.0);
    }
    printf("\n");
    printf("  dk_client CPU = %.1f us/request (goal <= 50 us; user+kernel of this process; "
           "user %.1f us)\n",
           client_cpu * 1e6 / nreq, client_user * 1e6 / nreq);
    if (split_on)
        printf("  dk_client CPU split: %.1f us from poll to result (sleep, wake-up, read, "
               "parse), %.1f us from result to poll (next request, write)\n",
               split_wait * 1e6 / nreq, split_send * 1e6 / nreq);
    printf("  dk_client hot path: %d sequential /_ping: %.1f us/request wall, %.1f us CPU\n",
           npings, ping_s * 1e6 / npings, ping_cpu * 1e6 / npings);
    printf("  floor (blocking write+read, no loop) CPU = %.1f us/request (user %.1f us; %.3f s "
           "wall)\n",
           floor_cpu * 1e6 / nfloor, floor_user * 1e6 / nfloor, floor_s);
    printf("  libuv floor (bare uv_pipe_t, same requests and parser) CPU = %.1f us/request "
           "(%.3f s wall)\n",
           uvf_cpu * 1e6 / nfloor, uvf_s);
    if (split_on)
        printf("  floor CPU split: %.1f us in read (sleep, wake-up, copy), %.1f us the rest\n",
               floor_read * 1e6 / nfloor, (floor_cpu - floor_read) * 1e6 / nfloor);
    printf("  curl CPU = %.1f us/request (whole process %.1f us/request, minus a one-ping "
           "curl's %.1f ms start-up)\n",
           (curl_cpu - rounds * curl_start) * 1e6 / nreq, curl_cpu * 1e6 / nreq, curl_start * 1e3);
    printf("  connections opened: %llu, reused: %llu, requests retried: %llu\n",
           (unsigned long long)st.connects, (unsigned long long)st.reused,
           (unsigned long long)st.retries);
    return 0;
}
