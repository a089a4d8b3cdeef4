/* bench_al_authz - the cost of authorising embedded calls (aws/local/authz.h):
 * GetParameters WithDecryption of one SecureString under a customer key
 * (two decisions: ssm:GetParameters and kms:Decrypt) through al_dispatch,
 *   - with no hook (the store alone),
 *   - as the administrator (account root),
 *   - as an assumed-role session whose role has the seed's inline policy and
 *     AmazonECSTaskExecutionRolePolicy attached (policies compiled once and
 *     kept while the database is unchanged: authz.c),
 * and al_authz_check alone for the session. Build without sanitizers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/local/authz.h"
#include "aws/local/local.h"
#include "aws/local/query.h"
#include "common/buf.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static al_ctx *c;
static es_buf out;

static void call(const char *principal, const char *target, const char *body)
{
    al_error e;
    es_buf_reset(&out);
    if (al_dispatch(c, target, principal, body, strlen(body), &out, &e) < 0) {
        fprintf(stderr, "%s: %s %s\n", target, e.code, e.message);
        exit(1);
    }
}

static void query(const char *body)
{
    al_error e;
    es_buf_reset(&out);
    if (al_query_dispatch(c, "iam", "arn:aws:iam::123456789012:root", body, strlen(body), &out,
                          &e) < 0) {
        fprintf(stderr, "%s: %s %s\n", body, e.code, e.message);
        exit(1);
    }
}

static void report(const char *what, int n, double secs)
{
    printf("%-52s %8.0f ops/s  (%6.1f us/op, %d ops)\n", what, n / secs, secs / n * 1e6, n);
}

int main(void)
{
    char dir[] = "/tmp/bench-alz-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
    char err[256];
    if (al_open(&o, &c, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    es_buf_init(&out, AL_RESPONSE_MAX);
    const char *root = "arn:aws:iam::123456789012:root";
    const char *sess = "arn:aws:sts::123456789012:assumed-role/exec/task";
    call(root, "TrentService.CreateKey", "{}");
    char key[64];
    const char *k = strstr(es_buf_cstr(&out), "\"KeyId\":\"");
    snprintf(key, sizeof key, "%.36s", k + 9);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"Name\":\"/test/database_password\",\"Type\":\"SecureString\",\"Value\":\"v\","
             "\"KeyId\":\"%s\"}",
             key);
    call(root, "AmazonSSM.PutParameter", body);
    query("Action=CreateRole&RoleName=exec&AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-"
          "10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B"
          "%22Service%22%3A%22ecs-tasks.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole"
          "%22%7D%5D%7D");
    query("Action=AttachRolePolicy&RoleName=exec&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2F"
          "service-role%2FAmazonECSTaskExecutionRolePolicy");
    char pol[2048], form[4096];
    snprintf(pol, sizeof pol,
             "%%7B%%22Version%%22%%3A%%222012-10-17%%22%%2C%%22Statement%%22%%3A%%5B%%7B%%22Effect"
             "%%22%%3A%%22Allow%%22%%2C%%22Action%%22%%3A%%5B%%22ssm%%3AGetParameters%%22%%2C%%22"
             "kms%%3ADecrypt%%22%%5D%%2C%%22Resource%%22%%3A%%5B%%22arn%%3Aaws%%3Assm%%3Aus-east-1"
             "%%3A123456789012%%3Aparameter%%2Ftest%%2Fdatabase_password%%22%%2C%%22arn%%3Aaws%%3A"
             "kms%%3Aus-east-1%%3A123456789012%%3Akey%%2F%s%%22%%5D%%7D%%5D%%7D",
             key);
    snprintf(form, sizeof form, "Action=PutRolePolicy&RoleName=exec&PolicyName=s&PolicyDocument=%s",
             pol);
    query(form);
    const char *get = "{\"Names\":[\"/test/database_password\"],\"WithDecryption\":true}";
    int n = 20000;
    double t = now();
    for (int i = 0; i < n; i++)
        call(root, "AmazonSSM.GetParameters", get);
    report("GetParameters+decrypt, no hook", n, now() - t);
    al_authz_install(c);
    t = now();
    for (int i = 0; i < n; i++)
        call(root, "AmazonSSM.GetParameters", get);
    report("GetParameters+decrypt, as root", n, now() - t);
    t = now();
    for (int i = 0; i < n; i++)
        call(sess, "AmazonSSM.GetParameters", get);
    report("GetParameters+decrypt, as a role session", n, now() - t);
    char why[512], karn[128];
    snprintf(karn, sizeof karn, "arn:aws:kms:us-east-1:123456789012:key/%s", key);
    t = now();
    for (int i = 0; i < n; i++)
        if (al_authz_check(c, sess, "kms:Decrypt", karn, why, sizeof why) != 0)
            return 1;
    report("al_authz_check (session, kms:Decrypt)", n, now() - t);
    es_buf_free_secret(&out);
    al_close(c);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
