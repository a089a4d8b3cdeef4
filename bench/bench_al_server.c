/* bench_al_server - requests per second through the embedded endpoints'
 * listener: one keep-alive connection on loopback, each request a SigV4-
 * signed GetParameter WithDecryption (the client signs in its own thread, as
 * the CLI would; the server verifies, dispatches, decrypts, answers).
 * Prints the figure; build without sanitizers to measure. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "aws/local/auth.h"
#include "aws/local/local.h"
#include "aws/listener.h"
#include "aws/sigv4.h"
#include "common/buf.h"

#define N 3000

static int port;
static char akid[AL_AKID_LEN + 1], secret[64];
static uv_async_t done;
static aw_listener *srv;
static double elapsed;
static int ok_count;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *client(void *arg)
{
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(1);
    }
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    const char *body = "{\"Name\":\"/bench/p\",\"WithDecryption\":true}";
    char hash[65];
    aw_sigv4_sha256_hex(body, strlen(body), hash);
    aw_header h[] = {{"Host", host},
                     {"Content-Type", "application/x-amz-json-1.1"},
                     {"X-Amz-Target", "AmazonSSM.GetParameter"}};
    aw_sigv4_input in = {"POST", "/", NULL, h, 3, hash, false};
    aw_signer *s = aw_signer_create();
    aw_sigv4_creds creds = {akid, secret, NULL};
    static char buf[1 << 16];
    double t0 = now();
    for (int i = 0; i < N; i++) {
        aw_sigv4_result res;
        if (aw_signer_sign(s, &creds, "us-east-1", "ssm", time(NULL), &in, &res) != 0)
            exit(1);
        es_buf req;
        es_buf_init(&req, 1 << 16);
        es_buf_printf(&req,
                      "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-amz-json-1.1\r\n"
                      "X-Amz-Target: AmazonSSM.GetParameter\r\nX-Amz-Date: %s\r\nAuthorization: "
                      "%s\r\nContent-Length: %zu\r\n\r\n%s",
                      host, res.amz_date, es_buf_cstr(&res.authorization), strlen(body), body);
        es_buf_free_secret(&res.authorization);
        if (send(fd, req.data, req.len, 0) != (ssize_t)req.len)
            exit(1);
        es_buf_free(&req);
        /* read one answer: head + Content-Length body */
        size_t have = 0;
        for (;;) {
            ssize_t n = recv(fd, buf + have, sizeof buf - have - 1, 0);
            if (n <= 0)
                exit(1);
            have += (size_t)n;
            buf[have] = 0;
            char *end = strstr(buf, "\r\n\r\n");
            char *cl = strcasestr(buf, "content-length: ");
            if (end && cl && have >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10))
                break;
        }
        ok_count += strncmp(buf, "HTTP/1.1 200", 12) == 0;
    }
    elapsed = now() - t0;
    aw_signer_free(s);
    close(fd);
    uv_async_send(&done);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    aw_listener_close(srv, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

int main(void)
{
    char dir[] = "/tmp/bench-als-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
    char err[256];
    al_ctx *c;
    if (al_open(&o, &c, err, sizeof err) < 0 || al_admin_init(c, dir, akid, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char path[128], text[1024];
    snprintf(path, sizeof path, "%s/%s", dir, AL_CREDENTIALS_FILE);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = 0;
    const char *sk = strstr(text, "aws_secret_access_key = ");
    if (!sk)
        return 1;
    snprintf(secret, sizeof secret, "%.*s", AL_SECRET_LEN, sk + 24);
    es_buf out;
    es_buf_init(&out, 1 << 16);
    al_error e;
    const char *put = "{\"Name\":\"/bench/p\",\"Type\":\"SecureString\",\"Value\":\"v\"}";
    if (al_dispatch(c, "AmazonSSM.PutParameter", NULL, put, strlen(put), &out, &e) < 0)
        return 1;
    es_buf_free(&out);
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (aw_listener_start(&loop, "127.0.0.1", 0, NULL, &srv) < 0 || al_mount(c, srv) < 0)
        return 1;
    port = aw_listener_port(srv);
    uv_async_init(&loop, &done, on_done);
    pthread_t th;
    pthread_create(&th, NULL, client, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    uv_loop_close(&loop);
    al_close(c);
    printf("signed GetParameter WithDecryption over HTTP keep-alive: %8.0f req/s (%6.1f us/req, "
           "%d/%d answered 200)\n",
           N / elapsed, elapsed / N * 1e6, ok_count, N);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 && ok_count == N ? 0 : 1;
}
