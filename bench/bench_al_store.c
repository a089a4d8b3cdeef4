/* bench_al_store - operations per second of the embedded store, through
 * al_dispatch (JSON in, JSON out), on a fresh database in /tmp:
 *   PutParameter SecureString (one durable transaction + fsync each),
 *   GetParameter WithDecryption, GetParameters of 10, GetSecretValue,
 *   KMS Encrypt+Decrypt of 1 KiB.
 * Prints the figures; build without sanitizers to measure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/local/local.h"
#include "common/buf.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static al_ctx *c;
static es_buf out;

static void call(const char *target, const char *body)
{
    al_error e;
    es_buf_reset(&out);
    if (al_dispatch(c, target, NULL, body, strlen(body), &out, &e) < 0) {
        fprintf(stderr, "%s: %s %s\n", target, e.code, e.message);
        exit(1);
    }
}

static void report(const char *what, int n, double secs)
{
    printf("%-44s %8.0f ops/s  (%6.1f us/op, %d ops)\n", what, n / secs, secs / n * 1e6, n);
}

int main(void)
{
    char dir[] = "/tmp/bench-al-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
    char err[256];
    if (al_open(&o, &c, err, sizeof err) < 0) {
        fprintf(stderr, "al_open: %s\n", err);
        return 1;
    }
    es_buf_init(&out, AL_RESPONSE_MAX);
    char body[4096];
    const int N = 500;
    double t = now();
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof body,
                 "{\"Name\":\"/bench/app%d/db_password\",\"Type\":\"SecureString\",\"Value\":"
                 "\"value-%d-0123456789abcdef\"}",
                 i, i);
        call("AmazonSSM.PutParameter", body);
    }
    report("PutParameter SecureString (durable)", N, now() - t);
    const int R = 5000;
    t = now();
    for (int i = 0; i < R; i++) {
        snprintf(body, sizeof body,
                 "{\"Name\":\"/bench/app%d/db_password\",\"WithDecryption\":true}", i % N);
        call("AmazonSSM.GetParameter", body);
    }
    report("GetParameter WithDecryption", R, now() - t);
    t = now();
    for (int i = 0; i < R / 10; i++) {
        es_buf b;
        es_buf_init(&b, 4096);
        es_buf_append_str(&b, "{\"WithDecryption\":true,\"Names\":[");
        for (int j = 0; j < 10; j++)
            es_buf_printf(&b, "%s\"/bench/app%d/db_password\"", j ? "," : "", (i * 10 + j) % N);
        es_buf_append_str(&b, "]}");
        call("AmazonSSM.GetParameters", es_buf_cstr(&b));
        es_buf_free(&b);
    }
    report("GetParameters x10 WithDecryption", R / 10, now() - t);
    call("secretsmanager.CreateSecret", "{\"Name\":\"bench\",\"SecretString\":\"s\"}");
    t = now();
    for (int i = 0; i < R; i++)
        call("secretsmanager.GetSecretValue", "{\"SecretId\":\"bench\"}");
    report("GetSecretValue", R, now() - t);
    static char pt[1400];
    memset(pt, 'A', 1368); /* 1 KiB of zero bytes in base64 */
    pt[1368] = 0;
    snprintf(body, sizeof body, "{\"KeyId\":\"alias/aws/ssm\",\"Plaintext\":\"%s\"}", pt);
    t = now();
    for (int i = 0; i < R; i++)
        call("TrentService.Encrypt", body);
    report("KMS Encrypt 1 KiB", R, now() - t);
    al_close(c);
    es_buf_free_secret(&out);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
