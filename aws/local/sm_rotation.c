/* sm_rotation.c - the embedded Secrets Manager's rotation (sm_int.h):
 * RotationRules and their schedules, the built-in rotator, rotation hooks
 * (sm_hook.c runs them), RotateSecret / CancelRotateSecret and the
 * timer's al_sm_rotate_due. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aws/local/kms.h"
#include "aws/local/sm_hook.h"
#include "aws/local/sm_int.h"
#include "aws/local/sm_password.h"
#include "aws/region.h"
#include "common/alloc.h"
#include "common/secure.h"

/* ---- rotation: schedules ---- */

#define AL_SM_ROTATION_DAYS_MAX 1000
#define AL_SM_SCHEDULE_MAX 256
#define AL_SM_LAMBDA_ARN_MAX 2048
#define AL_SM_HOOK_NAME_MAX 64
#define PREVIOUS_ROTATION_MSG                                                                      \
    "A previous rotation isn't complete. That rotation will be reattempted."
#define NO_LAMBDA_MSG                                                                              \
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "       \
    "policy grants access to the principal secretsmanager.amazonaws.com."

typedef struct rules {
    bool present;
    int64_t days;         /* 0: none */
    const char *schedule; /* NULL: none */
    const char *window;   /* Duration, NULL: none */
} rules;

/* One item of a cron field: a star or '?', N, N-M, each optionally with a
 * step /S; names (JAN, MON) where names is given (index + lo is the
 * value). */
static bool cron_item(const char *s, size_t n, int lo, int hi, const char *const *names, int v,
                      bool *bad);

static int cron_value(const char *s, size_t n, int lo, const char *const *names, bool *bad)
{
    if (n == 0) {
        *bad = true;
        return -1;
    }
    if (names && n == 3)
        for (int i = 0; names[i]; i++)
            if (strncasecmp(s, names[i], 3) == 0)
                return lo + i;
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || x > 10000) {
            *bad = true;
            return -1;
        }
        x = x * 10 + (s[i] - '0');
    }
    return x;
}

static bool cron_item(const char *s, size_t n, int lo, int hi, const char *const *names, int v,
                      bool *bad)
{
    const char *slash = memchr(s, '/', n);
    size_t rn = slash ? (size_t)(slash - s) : n;
    int step = slash ? cron_value(slash + 1, n - rn - 1, 0, NULL, bad) : 1;
    int a = lo, b = hi;
    if (!(rn == 1 && (s[0] == '*' || s[0] == '?'))) {
        const char *dash = memchr(s, '-', rn);
        a = cron_value(s, dash ? (size_t)(dash - s) : rn, lo, names, bad);
        b = dash ? cron_value(dash + 1, rn - (size_t)(dash - s) - 1, lo, names, bad)
                 : (slash ? hi : a);
    }
    if (step < 1 || a < lo || b > hi || a > b)
        *bad = true;
    return !*bad && v >= a && v <= b && (v - a) % step == 0;
}

/* Does v match the comma-separated field f[0..n)? *bad on a syntax error. */
static bool cron_field(const char *f, size_t n, int lo, int hi, const char *const *names, int v,
                       bool *bad)
{
    bool any = false;
    while (n > 0) {
        const char *comma = memchr(f, ',', n);
        size_t len = comma ? (size_t)(comma - f) : n;
        any |= cron_item(f, len, lo, hi, names, v, bad);
        f += len + (comma ? 1 : 0);
        n -= len + (comma ? 1 : 0);
        if (comma && n == 0)
            *bad = true;
    }
    return any && !*bad;
}

typedef struct cron {
    const char *f[6];
    size_t n[6];
} cron;

static const char *const MONTHS[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                     "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const DAYS[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

/* Splits "cron(m h dom mon dow year)" into its six fields. */
static bool cron_split(const char *e, cron *c)
{
    size_t len = strlen(e);
    if (len < 7 || strncmp(e, "cron(", 5) != 0 || e[len - 1] != ')')
        return false;
    const char *p = e + 5, *end = e + len - 1;
    for (int i = 0; i < 6; i++) {
        while (p < end && *p == ' ')
            p++;
        const char *q = p;
        while (q < end && *q != ' ')
            q++;
        if (q == p)
            return false;
        c->f[i] = p;
        c->n[i] = (size_t)(q - p);
        p = q;
    }
    while (p < end && *p == ' ')
        p++;
    return p == end;
}

/* Does the hour of tm (its day, month, year, weekday, hour) match? */
static bool cron_hour_match(const cron *c, const struct tm *tm, bool *bad)
{
    return cron_field(c->f[5], c->n[5], 1970, 2199, NULL, tm->tm_year + 1900, bad) &&
           cron_field(c->f[3], c->n[3], 1, 12, MONTHS, tm->tm_mon + 1, bad) &&
           cron_field(c->f[2], c->n[2], 1, 31, NULL, tm->tm_mday, bad) &&
           cron_field(c->f[4], c->n[4], 1, 7, DAYS, tm->tm_wday + 1, bad) &&
           cron_field(c->f[1], c->n[1], 0, 23, NULL, tm->tm_hour, bad);
}

/* The first minute after t (UTC) the expression names, within 5 years; 0
 * when none or the expression is malformed. Hour by hour, then the minute
 * inside a matching hour. */
static double cron_next(const char *expr, double t)
{
    cron c;
    bool bad = false;
    if (!cron_split(expr, &c))
        return 0;
    time_t x = (time_t)t / 3600 * 3600 + 3600; /* from the next hour on */
    for (int h = 0; h < 24 * 366 * 5 && !bad; h++, x += 3600) {
        struct tm tm;
        gmtime_r(&x, &tm);
        if (!cron_hour_match(&c, &tm, &bad))
            continue;
        for (int m = 0; m < 60 && !bad; m++)
            if (cron_field(c.f[0], c.n[0], 0, 59, NULL, m, &bad))
                return (double)(x + m * 60);
    }
    return 0;
}

/* rate(N days) / rate(N hours): the period in seconds; 0 when malformed. */
static double rate_period(const char *e)
{
    unsigned n = 0;
    char unit[8] = "";
    int used = 0;
    if (sscanf(e, "rate(%u %7[a-z])%n", &n, unit, &used) != 2 || (size_t)used != strlen(e))
        return 0;
    if ((strcmp(unit, "days") == 0 || strcmp(unit, "day") == 0) && n >= 1 &&
        n <= AL_SM_ROTATION_DAYS_MAX)
        return n * 86400.0;
    if ((strcmp(unit, "hours") == 0 || strcmp(unit, "hour") == 0) && n >= 4 && n <= 23)
        return n * 3600.0;
    return 0;
}

/* When the next rotation after t falls by the schedule as AWS reads it
 * (0: no schedule). */
static double schedule_next(int64_t days, const char *schedule, double t)
{
    if (days > 0)
        return t + (double)days * 86400.0;
    if (schedule && strncmp(schedule, "rate(", 5) == 0)
        return rate_period(schedule) > 0 ? t + rate_period(schedule) : 0;
    if (schedule)
        return cron_next(schedule, t);
    return 0;
}

static int parse_rules(const es_json *req, double now, rules *ru, al_error *e)
{
    const es_json *r = es_json_get(req, "RotationRules");
    memset(ru, 0, sizeof *ru);
    if (!r || r->type == ES_JSON_NULL)
        return 0;
    if (r->type != ES_JSON_OBJECT)
        return al_fail(e, 400, "InvalidParameterException", "RotationRules must be an object.");
    ru->present = true;
    if (!al_opt_int(r, "AutomaticallyAfterDays", INT64_MIN, INT64_MAX, 0, &ru->days, e) ||
        !al_opt_str(r, "ScheduleExpression", &ru->schedule, e) ||
        !al_opt_str(r, "Duration", &ru->window, e))
        return -EINVAL;
    const es_json *days = es_json_get(r, "AutomaticallyAfterDays");
    if (days && days->type != ES_JSON_NULL && (ru->days < 1 || ru->days > AL_SM_ROTATION_DAYS_MAX))
        return al_fail(e, 400, "InvalidParameterException",
                       "RotationRules.AutomaticallyAfterDays must be within 1-%d.",
                       AL_SM_ROTATION_DAYS_MAX); /* as moto and LocalStack word it */
    if (ru->days && ru->schedule)
        return al_fail(e, 400, "InvalidParameterException",
                       "You cannot specify both rotation frequency and schedule expression "
                       "together."); /* AWS's words (terraform-provider-aws#33329) */
    if (!ru->days && !ru->schedule)
        return al_fail(e, 400, "InvalidParameterException",
                       "RotationRules needs AutomaticallyAfterDays or ScheduleExpression.");
    if (ru->schedule &&
        (strlen(ru->schedule) > AL_SM_SCHEDULE_MAX || schedule_next(0, ru->schedule, now) == 0))
        return al_fail(e, 400, "InvalidParameterException",
                       "The schedule expression %.256s is not valid: use rate(N days) (1-1000), "
                       "rate(N hours) (4-23) or cron(minutes hours day-of-month month "
                       "day-of-week year).",
                       ru->schedule);
    unsigned h = 0;
    int used = 0;
    if (ru->window && (sscanf(ru->window, "%uh%n", &h, &used) != 1 ||
                       (size_t)used != strlen(ru->window) || h < 1 || h > 24))
        return al_fail(e, 400, "InvalidParameterException",
                       "Duration must be a number of hours from 1h to 24h.");
    return 0;
}

/* ---- rotation: the state of the hooks in flight ---- */

typedef struct hook_run {
    bool used;
    char arn[ARN_MAX];
    char region[AW_REGION_MAX + 1];
    char token[AL_SM_TOKEN_MAX + 1];
    char exe[PATH_MAX];
    int step; /* index in STEPS */
    pid_t pid;
    double started;
} hook_run;

static const char *const STEPS[] = {"createSecret", "setSecret", "testSecret", "finishSecret"};

struct al_sm_state {
    char *rotation_dir, *state_dir, *endpoint;
    unsigned time_scale;        /* al_options.rotation_time_scale */
    al_rotation_event_fn event; /* al_options.rotation_event */
    void *event_arg;
    hook_run runs[AL_SM_HOOKS_MAX];
    bool polling; /* al_sm_hooks_poll in progress (a completion touches secrets) */
};

int al_sm_state_init(al_ctx *c, const al_options *opt)
{
    c->sm = es_calloc(1, sizeof *c->sm);
    if (!c->sm)
        return -ENOMEM;
    c->sm->rotation_dir = opt->rotation_dir ? es_strdup(opt->rotation_dir) : NULL;
    c->sm->state_dir = opt->state_dir ? es_strdup(opt->state_dir) : NULL;
    c->sm->time_scale = opt->rotation_time_scale;
    c->sm->event = opt->rotation_event;
    c->sm->event_arg = opt->rotation_event_arg;
    if ((opt->rotation_dir && !c->sm->rotation_dir) || (opt->state_dir && !c->sm->state_dir))
        return -ENOMEM;
    return 0;
}

/* When the next rotation after t falls here: the schedule's wait divided by
 * the time scale (al_options.rotation_time_scale), so that NextRotationDate
 * says when the rotation really happens (0: no schedule). */
static double next_rotation(al_ctx *c, int64_t days, const char *schedule, double t)
{
    double at = schedule_next(days, schedule, t);
    unsigned scale = c->sm->time_scale;
    return at > 0 && scale > 1 ? t + (at - t) / scale : at;
}

void al_sm_state_free(al_ctx *c)
{
    if (!c->sm)
        return;
    char why[128];
    for (size_t i = 0; i < AL_SM_HOOKS_MAX; i++)
        if (c->sm->runs[i].used)
            (void)al_sm_hook_poll(c->sm->runs[i].pid, 1, why, sizeof why);
    es_free(c->sm->rotation_dir);
    es_free(c->sm->state_dir);
    es_free(c->sm->endpoint);
    es_free(c->sm);
    c->sm = NULL;
}

int al_set_endpoint_url(al_ctx *c, const char *url)
{
    char *copy = url ? es_strdup(url) : NULL;
    if (url && !copy)
        return -ENOMEM;
    es_free(c->sm->endpoint);
    c->sm->endpoint = copy;
    return 0;
}

/* A rotation that did not go as asked, told to the daemon (which logs it). */
static void rotation_event(al_ctx *c, const char *arn, const char *step, const char *message)
{
    if (c->sm->event)
        c->sm->event(c->sm->event_arg, arn, step, message);
}

static hook_run *run_of(al_ctx *c, const char *arn)
{
    for (size_t i = 0; i < AL_SM_HOOKS_MAX; i++)
        if (c->sm->runs[i].used && strcmp(c->sm->runs[i].arn, arn) == 0)
            return &c->sm->runs[i];
    return NULL;
}

/* The executable a RotationLambdaARN of this region and account names, in
 * the hooks directory. -ENOENT (AWS's refusal for a function it cannot
 * invoke) when the ARN or the file is not one. */
static int hook_exe(al_ctx *c, const char *lambda, char *exe, size_t n)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "arn:%s:lambda:%s:%s:function:", al_partition(c), al_region(c),
             c->account);
    if (!c->sm->rotation_dir || strncmp(lambda, prefix, strlen(prefix)) != 0)
        return -ENOENT;
    const char *name = lambda + strlen(prefix);
    size_t len = strlen(name);
    if (len < 1 || len > AL_SM_HOOK_NAME_MAX)
        return -ENOENT;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
            return -ENOENT;
    if ((size_t)snprintf(exe, n, "%s/%s", c->sm->rotation_dir, name) >= n)
        return -ENOENT;
    return access(exe, X_OK) == 0 ? 0 : -ENOENT;
}

static int start_step(al_ctx *c, hook_run *run, char *why, size_t whylen)
{
    al_sm_hook_env env = {
        .endpoint_url = c->sm->endpoint, .state_dir = c->sm->state_dir, .region = run->region};
    run->started = al_now(c);
    return al_sm_hook_spawn(run->exe, &env, run->arn, run->token, STEPS[run->step], &run->pid, why,
                            whylen);
}

/* ---- rotation: the built-in rotator ---- */

/* The rotated value of cur (NULL: no current value): cur with a new
 * "password" when it is a JSON object holding a string one, else a new
 * password. Appended to out (a secret: the caller wipes it). */
static int rotated_value(const plain *cur, es_buf *out, al_error *e)
{
    al_sm_pw_opts o;
    al_sm_pw_defaults(&o);
    char *pw;
    int r = al_sm_random_password(&o, &pw, e);
    if (r < 0)
        return r;
    es_json *j = NULL;
    char why[64];
    if (cur && !cur->binary &&
        es_json_parse((const char *)cur->pt, cur->len, &es_json_default_limits, &j, why,
                      sizeof why) == 0 &&
        j->type == ES_JSON_OBJECT && es_json_get_str(j, "password")) {
        es_jw w;
        es_jw_init(&w, out);
        es_jw_obj(&w);
        for (size_t i = 0; i < j->u.object.n; i++) {
            es_jw_key(&w, j->u.object.keys[i]);
            if (strcmp(j->u.object.keys[i], "password") == 0)
                es_jw_str(&w, pw);
            else
                es_jw_value(&w, j->u.object.values[i]);
        }
        es_jw_obj_end(&w);
        r = es_jw_finish(&w);
    } else {
        r = es_buf_append_str(out, pw);
    }
    es_json_free_secret(j);
    es_free_secret_str(pw);
    return r < 0 ? al_fail_internal(e, "InternalServiceError") : 0;
}

/* Records a completed rotation: LastRotatedDate now, the next one from now
 * when scheduled, no failure. */
static int mark_rotated(al_ctx *c, const secret *s)
{
    double now = al_now(c);
    double next = s->rot_enabled ? next_rotation(c, s->rot_days, s->rot_schedule, now) : 0;
    sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET last_rotated=?1, "
                                            "next_rotation=?2, rotation_failure=NULL, changed=?1 "
                                            "WHERE arn=?3");
    if (!st)
        return -EIO;
    sqlite3_bind_double(st, 1, now);
    if (next > 0)
        sqlite3_bind_double(st, 2, next);
    sqlite3_bind_text(st, 3, s->arn, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* Inside a transaction: the new value under token, AWSPENDING, then
 * AWSCURRENT (the old version keeps AWSPREVIOUS), AWSPENDING removed. */
static int rotate_builtin(al_ctx *c, const secret *s, const char *token, al_error *e)
{
    char cur_vid[AL_SM_TOKEN_MAX + 1];
    plain cur;
    memset(&cur, 0, sizeof cur);
    int r = al_sm_stage_holder(c, s->arn, "AWSCURRENT", cur_vid, sizeof cur_vid);
    if (r == 0)
        r = al_sm_load_version(c, s, cur_vid, &cur);
    if (r < 0 && r != -ENOENT)
        return al_sm_value_error(e, r);
    es_buf nv;
    es_buf_init(&nv, AL_SM_VALUE_MAX + 1);
    r = rotated_value(r == 0 ? &cur : NULL, &nv, e);
    al_sm_plain_clear(&cur);
    if (r < 0) {
        es_buf_free_secret(&nv);
        return r;
    }
    value v = {.str = es_buf_cstr(&nv), .present = true};
    r = al_sm_version_exists(c, s->arn, token) ? -EEXIST : al_sm_insert_version(c, s, token, &v);
    es_buf_free_secret(&nv);
    if (r == -EEXIST)
        return al_fail(e, 400, "ResourceExistsException",
                       "You can't modify an existing version, you can only create a new version.");
    if (r == 0)
        r = al_sm_set_stage(c, s->arn, "AWSPENDING", token);
    if (r == 0)
        r = al_sm_move_stage(c, s->arn, "AWSCURRENT", token);
    if (r == 0)
        r = al_sm_remove_stage(c, s->arn, "AWSPENDING");
    if (r == 0)
        r = al_sm_prune_versions(c, s->arn);
    if (r == 0)
        r = mark_rotated(c, s);
    if (r == 0)
        r = al_sm_sync_replicas(c, s->arn);
    return r < 0 ? al_sm_value_error(e, r) : 0;
}

/* ---- rotation: hooks ---- */

static int set_failure(al_ctx *c, const char *arn, const char *why)
{
    return al_sm_exec2(c, "UPDATE sm_secret SET rotation_failure=?2 WHERE arn=?1", arn, why);
}

static void run_failed(al_ctx *c, hook_run *run, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg, "rotation step %s of %.200s failed: %.200s", STEPS[run->step],
             run->exe, why);
    char told[600];
    snprintf(told, sizeof told, "%s (AWSCURRENT unchanged, AWSPENDING kept)", msg);
    rotation_event(c, run->arn, STEPS[run->step], told);
    (void)set_failure(c, run->arn, msg);
    run->used = false;
}

/* finishSecret succeeded: AWSPENDING leaves the version the hook made
 * AWSCURRENT, and the rotation is recorded. */
static void run_finished(al_ctx *c, hook_run *run)
{
    secret s;
    char cur[AL_SM_TOKEN_MAX + 1] = "";
    run->used = false;
    if (al_region_enter(c, run->region) < 0)
        return;
    if (al_sm_find_secret(c, run->arn, &s) == 0) {
        if (al_db_begin(c->db) == 0) {
            int r = al_sm_stage_holder(c, s.arn, "AWSCURRENT", cur, sizeof cur);
            if (r == 0 && strcmp(cur, run->token) == 0)
                r = al_sm_remove_stage(c, s.arn, "AWSPENDING");
            if (r == 0)
                r = mark_rotated(c, &s);
            if (r == 0)
                r = al_sm_sync_replicas(c, s.arn);
            if (r < 0 || al_db_commit(c->db) < 0)
                al_db_rollback(c->db);
        }
        al_sm_secret_clear(&s);
    }
    al_region_leave(c);
}

/* Advances one run: its step still running, or the next started, or the
 * rotation finished or failed. 1 when something changed. */
static int run_advance(al_ctx *c, hook_run *run)
{
    char why[256] = "";
    int timed_out = al_now(c) - run->started > AL_SM_HOOK_STEP_TIMEOUT;
    int r = al_sm_hook_poll(run->pid, timed_out, why, sizeof why);
    if (r == 1)
        return 0;
    if (r < 0) {
        run_failed(c, run, why);
        return 1;
    }
    if (++run->step == (int)(sizeof STEPS / sizeof STEPS[0])) {
        run_finished(c, run);
        return 1;
    }
    if (start_step(c, run, why, sizeof why) < 0)
        run_failed(c, run, why);
    return 1;
}

/* Polls every run (not from inside a poll: a completion touches secrets). */
int al_sm_hooks_poll(al_ctx *c)
{
    if (c->sm->polling)
        return 0;
    c->sm->polling = true;
    char saved[AW_REGION_MAX + 1];
    snprintf(saved, sizeof saved, "%s", c->rq_region);
    int n = 0;
    for (size_t i = 0; i < AL_SM_HOOKS_MAX; i++)
        if (c->sm->runs[i].used)
            n += run_advance(c, &c->sm->runs[i]);
    if (saved[0])
        (void)al_region_enter(c, saved);
    c->sm->polling = false;
    return n;
}

/* Starts a rotation by the hook exe under token (its createSecret step). */
static int hook_start(al_ctx *c, const secret *s, const char *exe, const char *token, al_error *e)
{
    hook_run *run = NULL;
    for (size_t i = 0; i < AL_SM_HOOKS_MAX && !run; i++)
        if (!c->sm->runs[i].used)
            run = &c->sm->runs[i];
    if (!run)
        return al_fail(e, 400, "LimitExceededException",
                       "Too many rotations are in progress (at most %d); try again later.",
                       AL_SM_HOOKS_MAX);
    memset(run, 0, sizeof *run);
    snprintf(run->arn, sizeof run->arn, "%s", s->arn);
    snprintf(run->region, sizeof run->region, "%s", al_region(c));
    snprintf(run->token, sizeof run->token, "%s", token);
    snprintf(run->exe, sizeof run->exe, "%s", exe);
    char why[256];
    if (start_step(c, run, why, sizeof why) < 0) {
        rotation_event(c, s->arn, STEPS[0], why);
        return al_fail(e, 400, "AccessDeniedException", NO_LAMBDA_MSG);
    }
    run->used = true;
    return 0;
}

/* ---- RotateSecret / CancelRotateSecret ---- */

typedef struct rotate_req {
    const char *token, *lambda;
    rules ru;
    bool immediately;
} rotate_req;

static int parse_rotate(al_ctx *c, const es_json *req, rotate_req *q, al_error *e)
{
    int r;
    if (!al_opt_str(req, "ClientRequestToken", &q->token, e) ||
        !al_opt_str(req, "RotationLambdaARN", &q->lambda, e) ||
        !al_opt_bool(req, "RotateImmediately", true, &q->immediately, e))
        return -EINVAL;
    if (q->token && (r = al_sm_check_token(q->token, e)) < 0)
        return r;
    if (q->lambda && strlen(q->lambda) > AL_SM_LAMBDA_ARN_MAX)
        return al_fail(e, 400, "InvalidParameterException",
                       "RotationLambdaARN must be at most %d characters.", AL_SM_LAMBDA_ARN_MAX);
    if (q->lambda && !*q->lambda)
        q->lambda = NULL;
    return parse_rules(req, al_now(c), &q->ru, e);
}

/* Stores the rotation settings the request gives (rules, hook) into s and
 * the database. */
static int save_rotation(al_ctx *c, secret *s, const rotate_req *q)
{
    if (q->ru.present) {
        s->rot_enabled = true;
        s->rot_days = q->ru.days;
        es_free(s->rot_schedule);
        es_free(s->rot_window);
        s->rot_schedule = q->ru.schedule ? es_strdup(q->ru.schedule) : NULL;
        s->rot_window = q->ru.window ? es_strdup(q->ru.window) : NULL;
    }
    double next = s->rot_enabled ? next_rotation(c, s->rot_days, s->rot_schedule, al_now(c)) : 0;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "UPDATE sm_secret SET rotation_enabled=?1, rotation_lambda=?2, rotation_days=?3, "
               "rotation_schedule=?4, rotation_window=?5, next_rotation=?6 WHERE arn=?7");
    if (!st)
        return -EIO;
    sqlite3_bind_int(st, 1, s->rot_enabled ? 1 : 0);
    sqlite3_bind_text(st, 2, q->lambda ? q->lambda : s->rot_lambda, -1, SQLITE_STATIC);
    if (s->rot_days)
        sqlite3_bind_int64(st, 3, s->rot_days);
    sqlite3_bind_text(st, 4, s->rot_schedule, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, s->rot_window, -1, SQLITE_STATIC);
    if (next > 0)
        sqlite3_bind_double(st, 6, next);
    sqlite3_bind_text(st, 7, s->arn, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    return r;
}

/* The version id of a rotation: the caller's token, else the AWSPENDING
 * version a failed rotation left (reattempted, as AWS does), else new. */
static int rotation_token(al_ctx *c, const secret *s, const char *given, bool hook, char *out)
{
    char cur[AL_SM_TOKEN_MAX + 1] = "", pend[AL_SM_TOKEN_MAX + 1] = "";
    if (given) {
        snprintf(out, AL_SM_TOKEN_MAX + 1, "%s", given);
        return 0;
    }
    (void)al_sm_stage_holder(c, s->arn, "AWSCURRENT", cur, sizeof cur);
    if (hook && al_sm_stage_holder(c, s->arn, "AWSPENDING", pend, sizeof pend) == 0 &&
        strcmp(pend, cur) != 0) {
        snprintf(out, AL_SM_TOKEN_MAX + 1, "%s", pend);
        return 0;
    }
    return al_uuid(out) < 0 ? -EIO : 0;
}

static int builtin_change(al_ctx *c, secret *s, void *token, al_error *e)
{
    return rotate_builtin(c, s, token, e);
}

/* Rotates s now with its stored settings (its hook, or the built-in
 * rotator). Commits. */
static int rotate_now(al_ctx *c, secret *s, const char *given_token, char *token, al_error *e)
{
    char exe[PATH_MAX];
    bool hook = s->rot_lambda != NULL;
    if (hook && hook_exe(c, s->rot_lambda, exe, sizeof exe) < 0)
        return al_fail(e, 400, "AccessDeniedException", NO_LAMBDA_MSG);
    if (rotation_token(c, s, given_token, hook, token) < 0)
        return al_fail_internal(e, "InternalServiceError");
    if (hook)
        return hook_start(c, s, exe, token, e);
    return al_sm_change(c, s, builtin_change, token, e);
}

int al_sm_op_rotate_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e)
{
    rotate_req q;
    secret s;
    char exe[PATH_MAX], token[AL_SM_TOKEN_MAX + 1];
    int r = parse_rotate(c, req, &q, e);
    if (r < 0)
        return r;
    if ((r = al_sm_load_primary(c, principal, req, "secretsmanager:RotateSecret", true, &s, e)) < 0)
        return r;
    if (run_of(c, s.arn)) {
        r = al_fail(e, 400, "InvalidRequestException", PREVIOUS_ROTATION_MSG);
        goto out;
    }
    if (q.lambda && hook_exe(c, q.lambda, exe, sizeof exe) < 0) {
        r = al_fail(e, 400, "AccessDeniedException", NO_LAMBDA_MSG);
        goto out;
    }
    if (save_rotation(c, &s, &q) < 0 || al_sm_sync_replicas(c, s.arn) < 0) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if (q.lambda && !s.rot_lambda && !(s.rot_lambda = es_strdup(q.lambda))) {
        r = al_fail_internal(e, "InternalServiceError");
        goto out;
    }
    if (q.lambda && strcmp(s.rot_lambda, q.lambda) != 0) {
        es_free(s.rot_lambda);
        if (!(s.rot_lambda = es_strdup(q.lambda))) {
            r = al_fail_internal(e, "InternalServiceError");
            goto out;
        }
    }
    if (q.immediately && (r = rotate_now(c, &s, q.token, token, e)) < 0)
        goto out;
    al_sm_write_secret_ref(w, s.arn, s.name, q.immediately ? token : NULL);
    r = 0;
out:
    al_sm_secret_clear(&s);
    return r;
}

int al_sm_op_cancel_rotate_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                  al_error *e)
{
    secret s;
    int r = al_sm_load_primary(c, principal, req, "secretsmanager:CancelRotateSecret", true, &s, e);
    if (r < 0)
        return r;
    hook_run *run = run_of(c, s.arn);
    if (run) {
        char why[64];
        (void)al_sm_hook_poll(run->pid, 1, why, sizeof why);
        run->used = false;
    }
    sqlite3_stmt *st = al_db_prepare(
        c->db, "UPDATE sm_secret SET rotation_enabled=0, next_rotation=NULL WHERE arn=?");
    if (!st ||
        (sqlite3_bind_text(st, 1, s.arn, -1, SQLITE_STATIC), sqlite3_step(st)) != SQLITE_DONE) {
        al_db_release(c->db, st);
        al_sm_secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    al_db_release(c->db, st);
    if (al_sm_sync_replicas(c, s.arn) < 0) {
        al_sm_secret_clear(&s);
        return al_fail_internal(e, "InternalServiceError");
    }
    char pend[AL_SM_TOKEN_MAX + 1];
    bool pending = al_sm_stage_holder(c, s.arn, "AWSPENDING", pend, sizeof pend) == 0;
    al_sm_write_secret_ref(w, s.arn, s.name, pending ? pend : NULL);
    al_sm_secret_clear(&s);
    return 0;
}

/* A scheduled rotation of s due now, carried out (errors are logged: the
 * caller's operation goes on). 1 when one was started or done. */
int al_sm_rotate_if_due(al_ctx *c, secret *s, double now)
{
    if (!s->rot_enabled || s->next_rotation <= 0 || s->next_rotation > now || s->deletion > 0 ||
        s->primary_region || run_of(c, s->arn))
        return 0;
    char token[AL_SM_TOKEN_MAX + 1];
    al_error e;
    if (rotate_now(c, s, NULL, token, &e) < 0) {
        char told[AL_MESSAGE_MAX + 32];
        snprintf(told, sizeof told, "scheduled rotation: %s", e.message);
        rotation_event(c, s->arn, "schedule", told);
        (void)set_failure(c, s->arn, e.message);
        /* not again at every touch: the next try is the next period's */
        double next = next_rotation(c, s->rot_days, s->rot_schedule, now);
        sqlite3_stmt *st = al_db_prepare(c->db, "UPDATE sm_secret SET next_rotation=? WHERE arn=?");
        if (st) {
            sqlite3_bind_double(st, 1, next);
            sqlite3_bind_text(st, 2, s->arn, -1, SQLITE_STATIC);
            (void)sqlite3_step(st);
            al_db_release(c->db, st);
        }
        return 0;
    }
    return 1;
}

#define DUE_BATCH 32 /* rotations per call (the timer comes back for more) */

int al_sm_rotate_due(al_ctx *c, double now)
{
    int n = al_sm_hooks_poll(c);
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT arn, region FROM sm_secret WHERE "
                                            "rotation_enabled=1 AND next_rotation <= ? AND "
                                            "deletion IS NULL AND primary_region IS NULL "
                                            "ORDER BY next_rotation LIMIT ?2");
    if (!st)
        return -EIO;
    sqlite3_bind_double(st, 1, now);
    sqlite3_bind_int(st, 2, DUE_BATCH);
    char arns[DUE_BATCH][ARN_MAX], regions[DUE_BATCH][AW_REGION_MAX + 1];
    size_t k = 0;
    while (k < DUE_BATCH && sqlite3_step(st) == SQLITE_ROW) {
        snprintf(arns[k], ARN_MAX, "%s", sqlite3_column_text(st, 0));
        snprintf(regions[k++], AW_REGION_MAX + 1, "%s", sqlite3_column_text(st, 1));
    }
    al_db_release(c->db, st);
    for (size_t i = 0; i < k; i++) {
        secret s;
        if (al_region_enter(c, regions[i]) < 0)
            continue;
        if (al_sm_find_secret(c, arns[i], &s) == 0) {
            n += al_sm_rotate_if_due(c, &s, now);
            al_sm_secret_clear(&s);
        }
        al_region_leave(c);
    }
    return n;
}
