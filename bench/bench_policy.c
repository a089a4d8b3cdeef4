/* bench_policy - evaluations per second of a 10-statement policy with
 * conditions (plus a KMS-style key policy) against 1,000 generated
 * requests. Prints the figure; build without sanitizers to measure. */
#include "aws/policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NREQ 1000
#define ROUNDS 2000

static const char policy[] =
    "{\"Version\":\"2012-10-17\",\"Statement\":["
    "{\"Sid\":\"Params\",\"Effect\":\"Allow\",\"Action\":[\"ssm:GetParameters\",\"ssm:"
    "GetParameter\"],"
    "\"Resource\":\"arn:aws:ssm:*:123456789012:parameter/app/*\","
    "\"Condition\":{\"StringEquals\":{\"aws:PrincipalTag/team\":[\"platform\",\"data\"]}}},"
    "{\"Sid\":\"Secrets\",\"Effect\":\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\","
    "\"Resource\":\"arn:aws:secretsmanager:*:123456789012:secret:${aws:PrincipalTag/team}/*\","
    "\"Condition\":{\"StringLike\":{\"secretsmanager:VersionStage\":\"AWS*\"}}},"
    "{\"Sid\":\"Key\",\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\",\"Resource\":\"arn:aws:kms:*:"
    "123456789012:key/*\","
    "\"Condition\":{\"StringLike\":{\"kms:ViaService\":[\"ssm.*.amazonaws.com\",\"secretsmanager.*."
    "amazonaws.com\"]}}},"
    "{\"Sid\":\"Net\",\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\","
    "\"Condition\":{\"NotIpAddressIfExists\":{\"aws:SourceIp\":[\"10.0.0.0/8\",\"192.168.0.0/"
    "16\",\"2001:db8::/32\"]}}},"
    "{\"Sid\":\"Tls\",\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\","
    "\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"false\"}}},"
    "{\"Sid\":\"Window\",\"Effect\":\"Deny\",\"Action\":\"ssm:*\",\"Resource\":\"*\","
    "\"Condition\":{\"DateGreaterThan\":{\"aws:CurrentTime\":\"2030-01-01T00:00:00Z\"}}},"
    "{\"Sid\":\"Mfa\",\"Effect\":\"Deny\",\"Action\":\"ssm:PutParameter\",\"Resource\":\"*\","
    "\"Condition\":{\"NumericGreaterThan\":{\"aws:MultiFactorAuthAge\":\"3600\"}}},"
    "{\"Sid\":\"Tags\",\"Effect\":\"Deny\",\"Action\":\"secretsmanager:*\",\"Resource\":\"*\","
    "\"Condition\":{\"ForAnyValue:StringEquals\":{\"aws:TagKeys\":[\"forbidden\",\"legacy\"]}}},"
    "{\"Sid\":\"Prod\",\"Effect\":\"Deny\",\"Action\":[\"ssm:Get*\",\"secretsmanager:Get*\"],"
    "\"Resource\":[\"arn:aws:ssm:*:*:parameter/prod/*\",\"arn:aws:secretsmanager:*:*:secret:prod/"
    "*\"],"
    "\"Condition\":{\"ArnNotLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::*:role/prod-*\"}}},"
    "{\"Sid\":\"Logs\",\"Effect\":\"Allow\",\"NotAction\":[\"iam:*\",\"organizations:*\"],"
    "\"Resource\":\"arn:aws:logs:*:123456789012:log-group:/ecs/*\"}"
    "]}";

typedef struct req_store {
    char action[64], resource[160], team[16], ip[40], stage[16], via[64], tls[8];
    const char *vals[16][2];
    aw_ctx_entry ctx[10];
    aw_request r;
} req_store;

static uint64_t rnd_state = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (unsigned)(rnd_state % n);
}

static void make(req_store *s)
{
    static const char *const teams[] = {"platform", "data", "web", "prod"};
    static const char *const regions[] = {"us-east-1", "eu-west-1", "ap-northeast-1"};
    static const char *const ips[] = {"10.1.2.3", "192.168.4.5", "203.0.113.9", "2001:db8::7"};
    static const char *const stages[] = {"AWSCURRENT", "AWSPREVIOUS", "custom"};
    static const char *const tagkeys[] = {"team", "legacy", "env"};
    static const char *const when[] = {"2026-11-29T12:00:00Z"};
    static const char *const age[] = {"300"};
    static const char *const parn[] = {"arn:aws:iam::123456789012:role/ecsTaskExecutionRole"};
    const char *region = regions[rnd(3)];
    const char *team = teams[rnd(4)];
    switch (rnd(4)) {
    case 0:
        snprintf(s->action, sizeof s->action, "ssm:GetParameters");
        snprintf(s->resource, sizeof s->resource,
                 "arn:aws:ssm:%s:123456789012:parameter/%s/db_password_%u", region,
                 rnd(2) ? "app" : "prod", rnd(100));
        break;
    case 1:
        snprintf(s->action, sizeof s->action, "secretsmanager:GetSecretValue");
        snprintf(s->resource, sizeof s->resource,
                 "arn:aws:secretsmanager:%s:123456789012:secret:%s/token-%u-AbCdEf", region, team,
                 rnd(100));
        break;
    case 2:
        snprintf(s->action, sizeof s->action, "kms:Decrypt");
        snprintf(s->resource, sizeof s->resource,
                 "arn:aws:kms:%s:123456789012:key/1234abcd-12ab-34cd-56ef-%012u", region,
                 rnd(1000));
        break;
    default:
        snprintf(s->action, sizeof s->action, "logs:PutLogEvents");
        snprintf(s->resource, sizeof s->resource,
                 "arn:aws:logs:%s:123456789012:log-group:/ecs/app-%u:log-stream:x", region,
                 rnd(100));
        break;
    }
    snprintf(s->team, sizeof s->team, "%s", team);
    snprintf(s->ip, sizeof s->ip, "%s", ips[rnd(4)]);
    snprintf(s->stage, sizeof s->stage, "%s", stages[rnd(3)]);
    snprintf(s->via, sizeof s->via, "%s.%s.amazonaws.com", rnd(2) ? "ssm" : "secretsmanager",
             region);
    snprintf(s->tls, sizeof s->tls, "%s", rnd(10) ? "true" : "false");
    size_t n = 0;
#define KV(k, v, cnt, m)                                                                           \
    do {                                                                                           \
        s->ctx[n] = (aw_ctx_entry){.key = (k), .values = (v), .n = (cnt), .multi = (m)};           \
        n++;                                                                                       \
    } while (0)
    s->vals[0][0] = s->team;
    KV("aws:PrincipalTag/team", s->vals[0], 1, false);
    s->vals[1][0] = s->ip;
    KV("aws:SourceIp", s->vals[1], 1, false);
    s->vals[2][0] = s->stage;
    KV("secretsmanager:VersionStage", s->vals[2], 1, false);
    s->vals[3][0] = s->via;
    KV("kms:ViaService", s->vals[3], 1, false);
    s->vals[4][0] = s->tls;
    KV("aws:SecureTransport", s->vals[4], 1, false);
    KV("aws:CurrentTime", when, 1, false);
    KV("aws:MultiFactorAuthAge", age, 1, false);
    KV("aws:PrincipalArn", parn, 1, false);
    s->vals[5][0] = tagkeys[rnd(3)];
    s->vals[5][1] = tagkeys[rnd(3)];
    KV("aws:TagKeys", s->vals[5], rnd(3), true);
#undef KV
    s->r = (aw_request){
        .principal_arn = "arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/task-1",
        .action = s->action,
        .resource = s->resource,
        .ctx = s->ctx,
        .nctx = n,
    };
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of this thread: the per-core figure, independent of how busy a
 * shared machine is */
static double cpu(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

int main(void)
{
    aw_policy *p = NULL;
    char err[256];
    if (aw_policy_parse(policy, strlen(policy), AW_POLICY_IDENTITY, "bench", NULL, &p, err,
                        sizeof err)) {
        fprintf(stderr, "parse: %s\n", err);
        return 1;
    }
    req_store *reqs = calloc(NREQ, sizeof *reqs);
    if (!reqs)
        return 1;
    for (size_t i = 0; i < NREQ; i++)
        make(&reqs[i]);
    const aw_policy *ids[1] = {p};
    aw_policy_set set = {.identity = ids, .n_identity = 1};
    size_t tally[3] = {0};
    aw_decision d;
    for (size_t i = 0; i < NREQ; i++) { /* warm-up and decision mix */
        if (aw_policy_evaluate(&set, &reqs[i].r, &d))
            return 1;
        tally[d.kind]++;
    }
    double t0 = now(), c0 = cpu();
    size_t evals = 0;
    for (int round = 0; round < ROUNDS; round++)
        for (size_t i = 0; i < NREQ; i++) {
            aw_policy_evaluate(&set, &reqs[i].r, &d);
            evals++;
        }
    double dt = now() - t0, ct = cpu() - c0;
    /* parse+compile cost, for reference */
    double t1 = now();
    int parses = 0;
    while (now() - t1 < 0.5) {
        aw_policy *q = NULL;
        aw_policy_parse(policy, strlen(policy), AW_POLICY_IDENTITY, NULL, NULL, &q, NULL, 0);
        aw_policy_free(q);
        parses++;
    }
    double pt = now() - t1;
    printf("policy: %zu statements, %zu bytes; requests: %d (allowed %zu, explicit deny %zu, "
           "implicit deny %zu)\n",
           aw_policy_statement_count(p), strlen(policy), NREQ, tally[0], tally[1], tally[2]);
    printf("evaluate: %zu evaluations in %.3f s CPU = %.0f evaluations/s per core (%.0f ns "
           "each); wall %.3f s = %.0f/s\n",
           evals, ct, (double)evals / ct, ct / (double)evals * 1e9, dt, (double)evals / dt);
    printf("parse+compile: %.0f documents/s\n", parses / pt);
    aw_policy_free(p);
    free(reqs);
    return 0;
}
