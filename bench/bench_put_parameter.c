/* bench_put_parameter - PutParameter SecureString rate against the embedded
 * endpoints, through the project's own AWS client (aws/client.h: SigV4,
 * libcurl keep-alive). Every call is a durable commit in the store (SQLite
 * WAL, synchronous=FULL) plus a KMS encryption.
 *
 *   bench_put_parameter URL CREDENTIALS-FILE [N]   a running daemon (the
 *       credentials file it wrote, profile ecs-secrets-agent)
 *   bench_put_parameter                           an in-process store and
 *       listener on a temporary directory, on the same loop
 *
 * Two runs of N distinct names each: one call in flight, then 8 in flight.
 * Prints calls/s, median and p99 latency. Figures, not a test. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/local/auth.h"
#include "aws/local/local.h"
#include "aws/listener.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/secure.h"

#define N_MAX 100000
#define INFLIGHT_MAX 64

static uv_loop_t loop;
static aw_client *cli;
static aw_sigv4_creds creds;
static int n_total, next, done_count, failed, inflight_want, run_no;
static uint64_t *lat_ns;
static uint64_t t_run0, t_run1;
static char first_error[600];

typedef struct call_ctx {
    int i;
    uint64_t t0;
} call_ctx;

static void start_one(void);

static void on_put(void *arg, const aw_error *err, aw_http_response *resp)
{
    (void)resp;
    call_ctx *c = arg;
    lat_ns[c->i] = uv_hrtime() - c->t0;
    if (err) {
        if (!failed++)
            aw_error_format(err, first_error, sizeof first_error);
    }
    es_free(c);
    done_count++;
    if (done_count == n_total) {
        t_run1 = uv_hrtime();
        return;
    }
    start_one();
}

static void start_one(void)
{
    if (next >= n_total)
        return;
    call_ctx *c = es_calloc(1, sizeof *c);
    if (!c)
        exit(1);
    c->i = next++;
    char body[256];
    int len = snprintf(body, sizeof body,
                       "{\"Name\":\"/bench/put/r%d/p%06d\",\"Type\":\"SecureString\","
                       "\"Value\":\"value-%06d-0123456789abcdef0123456789\",\"Overwrite\":false}",
                       run_no, c->i, c->i);
    aw_call call = {
        .service = AW_SVC_SSM, .operation = "PutParameter", .body = body, .body_len = (size_t)len};
    c->t0 = uv_hrtime();
    if (aw_call_start(cli, &creds, &call, on_put, c) < 0) {
        fprintf(stderr, "aw_call_start failed\n");
        exit(1);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void run(int n, int inflight)
{
    n_total = n;
    next = done_count = failed = 0;
    inflight_want = inflight;
    run_no++;
    first_error[0] = 0;
    t_run0 = uv_hrtime();
    for (int k = 0; k < inflight; k++)
        start_one();
    while (done_count < n_total)
        uv_run(&loop, UV_RUN_ONCE);
    double secs = (double)(t_run1 - t_run0) / 1e9;
    qsort(lat_ns, (size_t)n, sizeof *lat_ns, cmp_u64);
    printf(
        "PutParameter SecureString, %2d in flight: %8.0f calls/s  median %7.3f ms  p99 %7.3f ms  "
        "(%d calls, %d failed)\n",
        inflight, n / secs, (double)lat_ns[n / 2] / 1e6,
        (double)lat_ns[(size_t)((double)n * 0.99)] / 1e6, n, failed);
    if (failed)
        printf("  first failure: %s\n", first_error);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = es_malloc(65536);
    *len = text ? fread(text, 1, 65535, f) : 0;
    fclose(f);
    if (text)
        text[*len] = 0;
    return text;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : NULL;
    int n = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 2000;
    if (n < 10 || n > N_MAX) {
        fprintf(stderr, "N must be 10..%d\n", N_MAX);
        return 2;
    }
    lat_ns = es_calloc((size_t)n, sizeof *lat_ns);
    if (!lat_ns || uv_loop_init(&loop) != 0)
        return 1;

    char dir[] = "/tmp/bench-put-XXXXXX";
    al_ctx *store = NULL;
    aw_listener *srv = NULL;
    char local_url[64];
    char akid[AL_AKID_LEN + 1];
    char *secret = NULL;
    aw_credentials file_creds = {0};
    if (!url) {
        if (!mkdtemp(dir))
            return 1;
        al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
        char err[256];
        if (al_open(&o, &store, err, sizeof err) < 0 ||
            al_admin_init(store, dir, akid, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (al_admin_credentials(store, akid, &secret) < 0 ||
            aw_listener_start(&loop, "127.0.0.1", 0, NULL, &srv) < 0 || al_mount(store, srv) < 0)
            return 1;
        snprintf(local_url, sizeof local_url, "http://127.0.0.1:%d", aw_listener_port(srv));
        url = local_url;
        creds = (aw_sigv4_creds){akid, secret, NULL};
        printf("(in-process store and listener on %s, state %s)\n", url, dir);
    } else {
        if (argc < 3) {
            fprintf(stderr, "usage: %s [URL CREDENTIALS-FILE [N]]\n", argv[0]);
            return 2;
        }
        size_t len = 0;
        char *text = read_file(argv[2], &len);
        if (!text || aw_creds_parse_ini(text, len, AL_AUTH_PROFILE, 0, &file_creds) < 0) {
            fprintf(stderr, "cannot read profile %s from %s\n", AL_AUTH_PROFILE, argv[2]);
            return 1;
        }
        es_free_secret_str(text);
        creds = aw_credentials_view(&file_creds);
    }

    aw_client_config cc = {.region = "us-east-1", .max_attempts = 1};
    cc.endpoint_override[AW_SVC_SSM] = url;
    if (aw_client_create(&loop, &cc, &cli) < 0)
        return 1;
    run(n, 1);
    run(n, 8);
    aw_client_close(cli, NULL, NULL);
    aw_listener_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop) == 0 ? 0 : 1;
    al_close(store);
    es_free_secret_str(secret);
    aw_credentials_clear(&file_creds);
    es_free(lat_ns);
    if (store) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        rc |= system(cmd) != 0;
    }
    return rc;
}
