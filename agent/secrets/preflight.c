/* preflight.c - see preflight.h. */
#include "agent/secrets/preflight.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include <expat.h>

#include "agent/tasks/task.h"
#include "agent/secrets/valuefrom.h"
#include "aws/ssm.h"
#include "aws/xml.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secure.h"

#define ACT_SSM "ssm:GetParameters"
#define ACT_PATH "ssm:GetParametersByPath"
#define ACT_SM "secretsmanager:GetSecretValue"
#define ACT_KMS "kms:Decrypt"
#define ACT_S3_GET "s3:GetObject"
#define ACT_S3_LOCATION "s3:GetBucketLocation"
#define ACT_ECR_TOKEN "ecr:GetAuthorizationToken"
#define ACT_ECR_IMAGE "ecr:BatchGetImage"
#define ACT_ECR_LAYER "ecr:GetDownloadUrlForLayer"
#define SIM_ACTION "SimulatePrincipalPolicy"
#define VIA_SSM "ssm"
#define VIA_SM "secretsmanager"

struct ag_preflight {
    aw_client *client;
    aw_creds *creds;
    al_ctx *embedded;
    char *region, *account;
    ag_preflight_stats stats;
    bool warned_simulate, warned_creds;
    size_t in_flight; /* operations not yet freed: the close waits for them */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* ------------------------------------------------------------------ pairs */

static bool streq_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

int ag_pf_pairs_add(ag_pf_pairs *p, const char *action, const char *resource, const char *via)
{
    if (!p || !action || !resource || !*resource || strlen(resource) > AG_PF_RESOURCE_MAX)
        return -EINVAL;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].action, action) == 0 && strcmp(p->v[i].resource, resource) == 0 &&
            streq_null(p->v[i].via, via))
            return 0;
    if (p->n >= AG_PF_PAIRS_MAX)
        return -E2BIG;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        ag_pf_pair *v = es_realloc(p->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    char *r = es_strdup(resource);
    if (!r)
        return -ENOMEM;
    p->v[p->n++] = (ag_pf_pair){.action = action, .resource = r, .via = via, .missing = false};
    return 1;
}

void ag_pf_pairs_clear(ag_pf_pairs *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        es_free(p->v[i].resource);
    es_free(p->v);
    memset(p, 0, sizeof *p);
}

size_t ag_pf_pairs_missing(const ag_pf_pairs *p)
{
    size_t n = 0;
    for (size_t i = 0; p && i < p->n; i++)
        n += p->v[i].missing;
    return n;
}

size_t ag_preflight_reason(char *out, size_t outlen, const char *role_arn, const ag_pf_pairs *p)
{
    size_t missing = ag_pf_pairs_missing(p);
    es_buf b;
    /* past the cap ag_reason_clip cuts anyway: build a little more than it keeps */
    es_buf_init(&b, AG_STOPPED_REASON_MAX * 4);
    es_buf_printf(&b, "the execution role %s is missing %zu permission%s:",
                  role_arn ? role_arn : "(none)", missing, missing == 1 ? "" : "s");
    size_t k = 0;
    for (size_t i = 0; p && i < p->n; i++) {
        if (!p->v[i].missing)
            continue;
        if (es_buf_printf(&b, "%s %s on %s%s", k++ ? ";" : "", p->v[i].action, p->v[i].resource,
                          p->v[i].absent ? " (which does not exist: check its name and region)"
                                         : "") < 0)
            break; /* full: the clip below ends it with "..." */
    }
    size_t n = ag_reason_secrets(out, outlen, "%s", b.data ? es_buf_cstr(&b) : "");
    es_buf_free(&b);
    return n;
}

bool ag_pf_key_is_aws_alias(const char *key_ref)
{
    if (!key_ref)
        return false;
    if (strncmp(key_ref, "alias/aws/", 10) == 0)
        return true;
    if (strncmp(key_ref, "arn:", 4) != 0)
        return false;
    const char *res = key_ref;
    for (int i = 0; i < 5 && res; i++) {
        res = strchr(res, ':');
        if (res)
            res++;
    }
    return res && strncmp(res, "alias/aws/", 10) == 0 && strstr(key_ref, ":kms:") != NULL;
}

bool ag_pf_secret_arn_complete(const char *arn)
{
    if (!arn || strncmp(arn, "arn:", 4) != 0)
        return false;
    const char *sec = strstr(arn, ":secret:");
    if (!sec)
        return false;
    const char *name = sec + 8;
    size_t n = strlen(name);
    if (n < 8 || name[n - 7] != '-')
        return false;
    for (size_t i = n - 6; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* ------------------------------------------- SimulatePrincipalPolicy answer */

#define SIM_MEMBER                                                                                 \
    "SimulatePrincipalPolicyResponse/SimulatePrincipalPolicyResult/EvaluationResults/member"
#define SIM_RS SIM_MEMBER "/ResourceSpecificResults/member"

typedef struct sim_parse {
    XML_Parser x;
    es_buf path;
    size_t stack[AW_XML_MAX_DEPTH + 1];
    size_t depth;
    es_buf text;
    bool in_text;
    /* the member being read */
    char *action, *resource, *decision;
    char *rs_resource, *rs_decision; /* the ResourceSpecificResults member being read */
    bool had_rs;
    ag_pf_sim_result *out;
    size_t n, cap;
    int err;
} sim_parse;

static void sim_fail(sim_parse *s, int err)
{
    if (!s->err)
        s->err = err;
    XML_StopParser(s->x, XML_FALSE);
}

static int sim_emit(sim_parse *s, const char *resource, const char *decision)
{
    if (!s->action || !resource || !decision)
        return AG_PF_SIM_E_INCOMPLETE;
    if (s->n >= AG_PF_SIM_RESULTS_MAX)
        return AG_PF_SIM_E_TOO_MANY;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        ag_pf_sim_result *v = es_realloc(s->out, cap * sizeof *v);
        if (!v)
            return AG_PF_SIM_E_NOMEM;
        s->out = v;
        s->cap = cap;
    }
    ag_pf_sim_result *r = &s->out[s->n];
    r->action = es_strdup(s->action);
    r->resource = es_strdup(resource);
    r->decision = es_strdup(decision);
    if (!r->action || !r->resource || !r->decision) {
        es_free(r->action);
        es_free(r->resource);
        es_free(r->decision);
        return AG_PF_SIM_E_NOMEM;
    }
    s->n++;
    return 0;
}

static void sim_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    sim_parse *s = ud;
    if (s->err)
        return;
    if (s->depth >= AW_XML_MAX_DEPTH) {
        sim_fail(s, AG_PF_SIM_E_XML);
        return;
    }
    s->stack[s->depth++] = s->path.len;
    if ((s->path.len && es_buf_append_char(&s->path, '/') < 0) ||
        es_buf_append_str(&s->path, name) < 0) {
        sim_fail(s, AG_PF_SIM_E_XML);
        return;
    }
    es_buf_reset(&s->text);
    s->in_text = true;
}

static void take(char **slot, es_buf *text, sim_parse *s)
{
    char *v = es_strndup(text->data ? text->data : "", text->len);
    if (!v) {
        sim_fail(s, AG_PF_SIM_E_NOMEM);
        return;
    }
    es_free(*slot);
    *slot = v;
}

static void sim_end(void *ud, const XML_Char *name)
{
    (void)name;
    sim_parse *s = ud;
    if (s->err || s->depth == 0)
        return;
    const char *p = es_buf_cstr(&s->path);
    if (strcmp(p, SIM_MEMBER "/EvalActionName") == 0)
        take(&s->action, &s->text, s);
    else if (strcmp(p, SIM_MEMBER "/EvalResourceName") == 0)
        take(&s->resource, &s->text, s);
    else if (strcmp(p, SIM_MEMBER "/EvalDecision") == 0)
        take(&s->decision, &s->text, s);
    else if (strcmp(p, SIM_RS "/EvalResourceName") == 0)
        take(&s->rs_resource, &s->text, s);
    else if (strcmp(p, SIM_RS "/EvalResourceDecision") == 0)
        take(&s->rs_decision, &s->text, s);
    else if (strcmp(p, SIM_RS) == 0) {
        /* the action is read before its ResourceSpecificResults in AWS's
         * answers; keep them until the member ends */
        s->had_rs = true;
        int r = 0;
        if (s->action)
            r = sim_emit(s, s->rs_resource, s->rs_decision);
        else
            r = AG_PF_SIM_E_INCOMPLETE;
        es_free(s->rs_resource);
        es_free(s->rs_decision);
        s->rs_resource = s->rs_decision = NULL;
        if (r)
            sim_fail(s, r);
    } else if (strcmp(p, SIM_MEMBER) == 0) {
        int r = s->had_rs ? 0 : sim_emit(s, s->resource, s->decision);
        es_free(s->action);
        es_free(s->resource);
        es_free(s->decision);
        s->action = s->resource = s->decision = NULL;
        s->had_rs = false;
        if (r)
            sim_fail(s, r);
    }
    es_buf_reset(&s->text);
    s->in_text = false;
    s->depth--;
    s->path.len = s->stack[s->depth];
    s->path.data[s->path.len] = '\0';
}

static void sim_text(void *ud, const XML_Char *t, int len)
{
    sim_parse *s = ud;
    if (s->err || !s->in_text || len <= 0)
        return;
    if (es_buf_append(&s->text, t, (size_t)len) < 0)
        sim_fail(s, AG_PF_SIM_E_XML);
}

static void sim_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                        const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    sim_fail(ud, AG_PF_SIM_E_XML);
}

void ag_pf_sim_results_free(ag_pf_sim_result *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++) {
        es_free(r[i].action);
        es_free(r[i].resource);
        es_free(r[i].decision);
    }
    es_free(r);
}

int ag_pf_parse_simulate(const char *doc, size_t len, ag_pf_sim_result **out, size_t *n)
{
    if (!doc || len > AW_XML_MAX_BYTES || len > (size_t)INT32_MAX)
        return AG_PF_SIM_E_XML;
    sim_parse s;
    memset(&s, 0, sizeof s);
    es_buf_init(&s.path, AW_XML_MAX_PATH_LEN);
    es_buf_init(&s.text, AW_XML_MAX_TEXT);
    s.x = XML_ParserCreate("UTF-8");
    if (!s.x)
        return AG_PF_SIM_E_NOMEM;
    XML_SetUserData(s.x, &s);
    XML_SetElementHandler(s.x, sim_start, sim_end);
    XML_SetCharacterDataHandler(s.x, sim_text);
    XML_SetStartDoctypeDeclHandler(s.x, sim_doctype);
    if (es_buf_append_char(&s.path, 'x') == 0) /* so that path.data is never NULL */
        es_buf_reset(&s.path);
    else
        s.err = AG_PF_SIM_E_NOMEM;
    if (!s.err && XML_Parse(s.x, doc, (int)len, XML_TRUE) == XML_STATUS_ERROR && !s.err)
        s.err = AG_PF_SIM_E_XML;
    XML_ParserFree(s.x);
    es_buf_free(&s.path);
    es_buf_free(&s.text);
    es_free(s.action);
    es_free(s.resource);
    es_free(s.decision);
    es_free(s.rs_resource);
    es_free(s.rs_decision);
    if (s.err) {
        ag_pf_sim_results_free(s.out, s.n);
        return s.err;
    }
    *out = s.out;
    *n = s.n;
    return 0;
}

/* ------------------------------------------------------------ the run */

/* LK_PATH: an expansion's SSM path, looked up as DescribeParameters with a
 * recursive Path filter for the keys of the SecureStrings under it */
typedef enum lk_kind { LK_PARAM, LK_SECRET, LK_KEY, LK_PATH } lk_kind;

typedef struct lookup {
    struct op *op;
    lk_kind kind;
    char *region;
    char *name;      /* PARAM: the SSM name; SECRET: the secret id; KEY: the key reference */
    char *param_arn; /* PARAM: the resource of its ssm:GetParameters; PATH: of its
                        ssm:GetParametersByPath (the path without its trailing '/') */
    char *given_arn; /* SECRET: the ARN as written, when complete */
    const char *via; /* PARAM/SECRET: the kms:ViaService of its key; KEY: its own */
    /* answers */
    bool ok;
    bool absent;      /* PARAM: a complete answer (every page) did not name it */
    char *arn;        /* SECRET: the full ARN; KEY: the key ARN */
    char *key_ref;    /* PARAM/SECRET: the key that encrypts it (NULL: none / AWS managed) */
    bool customer;    /* KEY: KeyManager CUSTOMER */
    char **path_keys; /* PATH: the distinct customer keys under it (AG_PF_PATH_KEYS_MAX) */
    size_t n_path_keys;
    char *next_token; /* PATH: the page to ask next */
    unsigned pages;   /* PATH: calls made, at most AG_PF_DESCRIBE_PAGES_MAX */
} lookup;

typedef struct sim_call {
    struct op *op;
    const char *action, *via;
    size_t *pairs; /* indexes into op->pairs */
    size_t n;
} sim_call;

/* One DescribeParameters call: up to AG_PF_DESCRIBE_BATCH parameter
 * lookups of one region. */
typedef struct pbatch {
    struct op *op;
    const char *region; /* the first lookup's */
    size_t lk[AG_PF_DESCRIBE_BATCH];
    size_t n;
    char *next_token; /* the answer's NextToken while names are unanswered */
    unsigned pages;   /* calls made, at most AG_PF_DESCRIBE_PAGES_MAX */
} pbatch;

typedef enum op_state { ST_CREDS, ST_LOOKUPS, ST_KEYS, ST_SIMULATE, ST_DONE } op_state;
static const char *const state_names[] = {"creds", "lookups", "keys", "simulate", "done"};

typedef struct op {
    ag_preflight *p;
    const char *role_arn;
    ag_preflight_cb cb;
    void *arg;
    uv_timer_t finish;
    op_state state;
    aw_credentials host; /* wiped at the end */
    lookup *lk;          /* PARAM and SECRET lookups */
    size_t n_lk;
    pbatch *batches; /* the PARAM lookups, grouped */
    size_t n_batches;
    lookup *keys;
    size_t n_keys;
    sim_call *sims;
    size_t n_sims;
    size_t pending;
    ag_pf_pairs pairs;
    ag_pf_pairs s3; /* the environment files' and ECR images' pairs, known from the plan alone */
    ag_pf_outcome outcome;
    bool simulate_failed;
    bool no_role; /* the execution role does not exist (IAM said so) */
    char reason[AG_REASON_BUF];
} op;

int ag_preflight_create(const ag_preflight_config *cfg, ag_preflight **out)
{
    if (!cfg || !cfg->client || !cfg->creds || !cfg->region || !cfg->account || !out)
        return -EINVAL;
    ag_preflight *p = es_calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->client = cfg->client;
    p->creds = cfg->creds;
    p->embedded = cfg->embedded;
    p->region = es_strdup(cfg->region);
    p->account = es_strdup(cfg->account);
    if (!p->region || !p->account) {
        ag_preflight_free(p);
        return -ENOMEM;
    }
    *out = p;
    return 0;
}

static void preflight_destroy(ag_preflight *p)
{
    void (*closed)(void *) = p->closed;
    void *arg = p->closed_arg;
    es_free(p->region);
    es_free(p->account);
    es_free(p);
    if (closed)
        closed(arg);
}

void ag_preflight_close(ag_preflight *p, void (*closed)(void *arg), void *arg)
{
    if (!p || p->closing)
        return;
    p->closing = true;
    p->closed = closed;
    p->closed_arg = arg;
    /* each run in flight ends at its next step (stopping()); the last one
     * to end frees p (op_free_cb) */
    if (!p->in_flight)
        preflight_destroy(p);
}

void ag_preflight_free(ag_preflight *p)
{
    ag_preflight_close(p, NULL, NULL);
}

void ag_preflight_get_stats(const ag_preflight *p, ag_preflight_stats *out)
{
    *out = p->stats;
}

static void lookup_clear(lookup *l)
{
    es_free(l->region);
    es_free(l->name);
    es_free(l->param_arn);
    es_free(l->given_arn);
    es_free(l->arn);
    es_free(l->key_ref);
    for (size_t i = 0; i < l->n_path_keys; i++)
        es_free(l->path_keys[i]);
    es_free(l->path_keys);
    es_free(l->next_token);
}

static void op_free_cb(uv_handle_t *h)
{
    op *o = h->data;
    ag_preflight *p = o->p;
    p->in_flight--;
    for (size_t i = 0; i < o->n_lk; i++)
        lookup_clear(&o->lk[i]);
    for (size_t i = 0; i < o->n_keys; i++)
        lookup_clear(&o->keys[i]);
    for (size_t i = 0; i < o->n_sims; i++)
        es_free(o->sims[i].pairs);
    es_free(o->lk);
    for (size_t i = 0; i < o->n_batches; i++)
        es_free(o->batches[i].next_token);
    es_free(o->batches);
    es_free(o->keys);
    es_free(o->sims);
    ag_pf_pairs_clear(&o->pairs);
    ag_pf_pairs_clear(&o->s3);
    aw_credentials_clear(&o->host);
    es_free(o);
    if (p->closing && !p->in_flight)
        preflight_destroy(p);
}

static void on_finish(uv_timer_t *t)
{
    op *o = t->data;
    ag_preflight *p = o->p;
    switch (o->outcome) {
    case AG_PF_OK:
        p->stats.ok++;
        break;
    case AG_PF_MISSING:
        p->stats.missing++;
        break;
    case AG_PF_SKIPPED:
    case AG_PF_STOPPED:
        p->stats.skipped++;
        break;
    }
    o->cb(o->arg, o->outcome, o->outcome == AG_PF_MISSING ? o->reason : NULL);
    uv_close((uv_handle_t *)&o->finish, op_free_cb);
}

/* The one transition of a run's state: creds -> lookups -> keys -> simulate
 * (aws mode) -> done, or done from anywhere. Logged old -> new (debug). */
static void set_state(op *o, op_state to)
{
    op_state from = o->state;
    if (to != ST_DONE && to != from + 1) {
        es_err("preflight of %s: state %s -> %s refused", o->role_arn, state_names[from],
               state_names[to]);
        return;
    }
    o->state = to;
    es_debug("preflight of %s: %s -> %s", o->role_arn, state_names[from], state_names[to]);
}

static void finish(op *o, ag_pf_outcome outcome)
{
    set_state(o, ST_DONE);
    o->outcome = outcome;
    if (outcome == AG_PF_MISSING && o->no_role)
        ag_reason_secrets(o->reason, sizeof o->reason,
                          "the execution role %s does not exist (check its name and account)",
                          o->role_arn);
    else if (outcome == AG_PF_MISSING)
        ag_preflight_reason(o->reason, sizeof o->reason, o->role_arn, &o->pairs);
    uv_timer_start(&o->finish, on_finish, 0, 0);
}

/* The preflight is closing: the run ends here, before it asks anything
 * more of the credentials provider or the client (closing too). Called
 * where a run would go on to its next step. */
static bool stopping(op *o)
{
    if (!o->p->closing)
        return false;
    finish(o, AG_PF_STOPPED);
    return true;
}

/* The outcome once every pair has its decision. */
static void conclude(op *o)
{
    finish(o, ag_pf_pairs_missing(&o->pairs) ? AG_PF_MISSING : AG_PF_OK);
}

/* ---- metadata calls ---- */

static int json_body(es_buf *b, const char *k1, const char *v1)
{
    es_jw w;
    es_jw_init(&w, b);
    es_jw_obj(&w);
    es_jw_kstr(&w, k1, v1);
    es_jw_obj_end(&w);
    return es_jw_finish(&w);
}

/* DescribeParameters for a batch: one Name Equals filter with every name,
 * and MaxResults as large as the batch (AWS's default page is 10). */
static int describe_parameters_body(es_buf *b, const op *o, const pbatch *pb)
{
    es_jw w;
    es_jw_init(&w, b);
    es_jw_obj(&w);
    aw_ssm_name_filter_begin(&w);
    for (size_t i = 0; i < pb->n; i++)
        es_jw_str(&w, o->lk[pb->lk[i]].name);
    aw_ssm_name_filter_end(&w);
    es_jw_kint(&w, "MaxResults", AG_PF_DESCRIBE_BATCH);
    if (pb->next_token)
        es_jw_kstr(&w, "NextToken", pb->next_token);
    es_jw_obj_end(&w);
    return es_jw_finish(&w);
}

static char *dup_str(const es_json *obj, const char *key)
{
    const char *s = obj ? es_json_get_str(obj, key) : NULL;
    return s && *s ? es_strdup(s) : NULL;
}

/* Reads what a lookup's answer says. */
static void read_answer(lookup *l, const char *body, size_t len)
{
    es_json *j = NULL;
    if (es_json_parse(body, len, &es_json_default_limits, &j, NULL, 0) != 0)
        return;
    switch (l->kind) {
    case LK_PARAM: /* answered by batch (on_batch) */
    case LK_PATH:  /* answered page by page (on_path_lookup) */
        break;
    case LK_SECRET:
        l->arn = dup_str(j, "ARN");
        l->key_ref = dup_str(j, "KmsKeyId");
        l->ok = l->arn != NULL;
        break;
    case LK_KEY: {
        const es_json *m = es_json_get(j, "KeyMetadata");
        const char *mgr = m ? es_json_get_str(m, "KeyManager") : NULL;
        l->arn = dup_str(m, "Arn");
        l->customer = mgr && strcmp(mgr, "CUSTOMER") == 0;
        l->ok = l->arn != NULL;
        break;
    }
    }
    es_json_free(j);
}

static void phase_done(op *o);

static void on_lookup(void *arg, const aw_error *err, aw_http_response *resp)
{
    lookup *l = arg;
    op *o = l->op;
    if (err) {
        /* the fetch will say what is wrong with it; we only lose this pair */
        es_debug("preflight: %s lookup of %s in %s: %s %s",
                 l->kind == LK_PARAM    ? "parameter"
                 : l->kind == LK_SECRET ? "secret"
                                        : "key",
                 l->name, l->region, err->code, err->kind == AW_ERR_SERVICE ? "" : "(no answer)");
    } else {
        read_answer(l, resp->body.data ? resp->body.data : "", resp->body.len);
    }
    if (--o->pending == 0)
        phase_done(o);
}

/* "/a" and "a" name one parameter. */
static bool same_param(const char *a, const char *b)
{
    return strcmp(a[0] == '/' ? a + 1 : a, b[0] == '/' ? b + 1 : b) == 0;
}

static int start_batch(op *o, pbatch *pb);

static void on_batch(void *arg, const aw_error *err, aw_http_response *resp)
{
    pbatch *pb = arg;
    op *o = pb->op;
    es_json *j = NULL;
    if (err) {
        /* the fetch will say what is wrong; only these key pairs are lost */
        es_debug("preflight: DescribeParameters of %zu names in %s: %s %s", pb->n, pb->region,
                 err->code, err->kind == AW_ERR_SERVICE ? "" : "(no answer)");
    } else if (es_json_parse(resp->body.data ? resp->body.data : "", resp->body.len,
                             &es_json_default_limits, &j, NULL, 0) == 0) {
        /* a name left out of every page (missing) keeps no key: its kms
         * pair is dropped, its ssm pair stays */
        const es_json *ps = es_json_get(j, "Parameters");
        for (size_t i = 0; ps && i < es_json_len(ps); i++) {
            const es_json *p = es_json_at(ps, i);
            const char *name = es_json_get_str(p, "Name");
            const char *type = es_json_get_str(p, "Type");
            for (size_t k = 0; name && k < pb->n; k++) {
                lookup *l = &o->lk[pb->lk[k]];
                if (l->ok || !same_param(l->name, name))
                    continue;
                l->ok = true;
                if (type && strcmp(type, "SecureString") == 0)
                    l->key_ref = dup_str(p, "KeyId");
            }
        }
        /* DescribeParameters filters page by page and may answer a short
         * page with a NextToken: follow it while names are unanswered */
        const char *tok = es_json_get_str(j, "NextToken");
        bool open = false;
        for (size_t k = 0; k < pb->n && !open; k++)
            open = !o->lk[pb->lk[k]].ok;
        es_free(pb->next_token);
        pb->next_token = NULL;
        if (tok && *tok && open && pb->pages < AG_PF_DESCRIBE_PAGES_MAX && !o->p->closing &&
            (pb->next_token = es_strdup(tok)) && start_batch(o, pb) == 0) {
            es_json_free(j);
            return; /* still pending */
        }
        /* the last page: a name no page answered does not exist (as the
         * host sees it); past the page cap nothing is said */
        for (size_t k = 0; open && !(tok && *tok) && k < pb->n; k++)
            o->lk[pb->lk[k]].absent = !o->lk[pb->lk[k]].ok;
    }
    es_json_free(j);
    if (--o->pending == 0)
        phase_done(o);
}

static int start_batch(op *o, pbatch *pb)
{
    es_buf body;
    es_buf_init(&body, (size_t)AG_PF_DESCRIBE_BATCH * (AG_VF_MAX * 2 + 8) + 256);
    int r = describe_parameters_body(&body, o, pb);
    if (r == 0) {
        aw_sigv4_creds c = aw_credentials_view(&o->host);
        aw_call call = {.service = AW_SVC_SSM,
                        .region = pb->region,
                        .operation = "DescribeParameters",
                        .body = es_buf_cstr(&body),
                        .body_len = body.len};
        r = aw_call_start(o->p->client, &c, &call, on_batch, pb);
    }
    es_buf_free(&body);
    if (r == 0) {
        o->p->stats.lookups++;
        pb->pages++;
    }
    return r;
}

/* Groups the parameter lookups by region, AG_PF_DESCRIBE_BATCH a call. */
static int plan_batches(op *o)
{
    o->batches = es_calloc(o->n_lk ? o->n_lk : 1, sizeof *o->batches);
    if (!o->batches)
        return -ENOMEM;
    for (size_t i = 0; i < o->n_lk; i++) {
        lookup *l = &o->lk[i];
        if (l->kind != LK_PARAM)
            continue;
        pbatch *pb = NULL;
        for (size_t k = 0; k < o->n_batches && !pb; k++)
            if (o->batches[k].n < AG_PF_DESCRIBE_BATCH &&
                strcmp(o->batches[k].region, l->region) == 0)
                pb = &o->batches[k];
        if (!pb) {
            pb = &o->batches[o->n_batches++];
            pb->op = o;
            pb->region = l->region;
        }
        pb->lk[pb->n++] = i;
    }
    return 0;
}

static int start_lookup(op *o, lookup *l)
{
    static const aw_service svc[] = {AW_SVC_SSM, AW_SVC_SECRETSMANAGER, AW_SVC_KMS};
    static const char *const opname[] = {"DescribeParameters", "DescribeSecret", "DescribeKey"};
    static const char *const key[] = {NULL, "SecretId", "KeyId"};
    es_buf body;
    es_buf_init(&body, AG_VF_MAX * 2 + 256);
    int r = json_body(&body, key[l->kind], l->name);
    if (r == 0) {
        aw_sigv4_creds c = aw_credentials_view(&o->host);
        aw_call call = {.service = svc[l->kind],
                        .region = l->region,
                        .operation = opname[l->kind],
                        .body = es_buf_cstr(&body),
                        .body_len = body.len};
        r = aw_call_start(o->p->client, &c, &call, on_lookup, l);
    }
    es_buf_free(&body);
    if (r == 0)
        o->p->stats.lookups++;
    return r;
}

/* Notes the customer key of one SecureString under a path. */
static void path_key(lookup *l, const char *key)
{
    if (!key || ag_pf_key_is_aws_alias(key) || l->n_path_keys == AG_PF_PATH_KEYS_MAX)
        return;
    for (size_t i = 0; i < l->n_path_keys; i++)
        if (strcmp(l->path_keys[i], key) == 0)
            return;
    if (!l->path_keys && !(l->path_keys = es_calloc(AG_PF_PATH_KEYS_MAX, sizeof *l->path_keys)))
        return;
    if ((l->path_keys[l->n_path_keys] = es_strdup(key)))
        l->n_path_keys++;
}

static int start_path_lookup(op *o, lookup *l);

/* A page of DescribeParameters under a path: the SecureStrings' keys; the
 * next page while there is one (up to AG_PF_DESCRIBE_PAGES_MAX). A failure
 * drops only the kms pairs (the fetch will say what is wrong). */
static void on_path_lookup(void *arg, const aw_error *err, aw_http_response *resp)
{
    lookup *l = arg;
    op *o = l->op;
    es_json *j = NULL;
    if (err) {
        es_debug("preflight: DescribeParameters under %s/ in %s: %s", l->name, l->region,
                 err->code);
    } else if (es_json_parse(resp->body.data ? resp->body.data : "", resp->body.len,
                             &es_json_default_limits, &j, NULL, 0) == 0) {
        const es_json *ps = es_json_get(j, "Parameters");
        for (size_t i = 0; ps && i < es_json_len(ps); i++) {
            const es_json *p = es_json_at(ps, i);
            const char *type = es_json_get_str(p, "Type");
            if (type && strcmp(type, "SecureString") == 0)
                path_key(l, es_json_get_str(p, "KeyId"));
        }
        const char *tok = es_json_get_str(j, "NextToken");
        es_free(l->next_token);
        l->next_token = NULL;
        if (tok && *tok && l->pages < AG_PF_DESCRIBE_PAGES_MAX && !o->p->closing &&
            (l->next_token = es_strdup(tok)) && start_path_lookup(o, l) == 0) {
            es_json_free(j);
            return; /* still pending */
        }
        l->ok = true;
    }
    es_json_free(j);
    if (--o->pending == 0)
        phase_done(o);
}

static int start_path_lookup(op *o, lookup *l)
{
    es_buf body;
    es_buf_init(&body, AG_VF_MAX * 2 + AW_SSM_NEXT_TOKEN_MAX + 256);
    es_jw w;
    es_jw_init(&w, &body);
    es_jw_obj(&w);
    es_jw_key(&w, "ParameterFilters");
    es_jw_arr(&w);
    es_jw_obj(&w);
    es_jw_kstr(&w, "Key", "Path");
    es_jw_kstr(&w, "Option", "Recursive");
    es_jw_key(&w, "Values");
    es_jw_arr(&w);
    es_jw_str(&w, l->name);
    es_jw_arr_end(&w);
    es_jw_obj_end(&w);
    es_jw_arr_end(&w);
    es_jw_kint(&w, "MaxResults", AG_PF_DESCRIBE_BATCH);
    if (l->next_token)
        es_jw_kstr(&w, "NextToken", l->next_token);
    es_jw_obj_end(&w);
    int r = es_jw_finish(&w);
    if (r == 0) {
        aw_sigv4_creds c = aw_credentials_view(&o->host);
        aw_call call = {.service = AW_SVC_SSM,
                        .region = l->region,
                        .operation = "DescribeParameters",
                        .body = es_buf_cstr(&body),
                        .body_len = body.len};
        r = aw_call_start(o->p->client, &c, &call, on_path_lookup, l);
    }
    es_buf_free(&body);
    if (r == 0) {
        o->p->stats.lookups++;
        l->pages++;
    }
    return r;
}

/* Starts every lookup of the array (parameters by batch); false when none
 * is in flight. */
static bool start_all(op *o, lookup *v, size_t n)
{
    o->pending = 1; /* this function itself */
    for (size_t i = 0; i < n; i++) {
        if (v[i].kind == LK_PARAM)
            continue;
        o->pending++;
        if ((v[i].kind == LK_PATH ? start_path_lookup(o, &v[i]) : start_lookup(o, &v[i])) < 0)
            o->pending--;
    }
    for (size_t i = 0; v == o->lk && i < o->n_batches; i++) {
        o->pending++;
        if (start_batch(o, &o->batches[i]) < 0)
            o->pending--;
    }
    return --o->pending > 0;
}

/* The region of a key reference: an ARN's own, else the lookup's. */
static int key_region(const char *ref, const char *dflt, char *out, size_t n)
{
    if (strncmp(ref, "arn:", 4) == 0) {
        const char *p = ref;
        for (int i = 0; i < 3 && p; i++) {
            p = strchr(p, ':');
            if (p)
                p++;
        }
        const char *e = p ? strchr(p, ':') : NULL;
        if (e && e > p && (size_t)(e - p) < n) {
            snprintf(out, n, "%.*s", (int)(e - p), p);
            return 0;
        }
    }
    return (size_t)snprintf(out, n, "%s", dflt) < n ? 0 : -EMSGSIZE;
}

/* Adds the lookup of key_ref (decrypting through via) unless known. */
static int add_key(op *o, const char *key_ref, const char *dflt_region, const char *via)
{
    char region[AG_VF_REGION_MAX + 1];
    if (key_region(key_ref, dflt_region, region, sizeof region) < 0)
        return 0;
    for (size_t k = 0; k < o->n_keys; k++)
        if (strcmp(o->keys[k].name, key_ref) == 0 && strcmp(o->keys[k].region, region) == 0 &&
            strcmp(o->keys[k].via, via) == 0)
            return 0;
    lookup *k = &o->keys[o->n_keys];
    k->op = o;
    k->kind = LK_KEY;
    k->via = via;
    k->region = es_strdup(region);
    k->name = es_strdup(key_ref);
    if (!k->region || !k->name) {
        lookup_clear(k);
        memset(k, 0, sizeof *k);
        return -ENOMEM;
    }
    o->n_keys++;
    return 0;
}

/* After the parameters, paths and secrets: the keys that encrypt them. */
static int plan_keys(op *o)
{
    size_t cap = o->n_lk;
    for (size_t i = 0; i < o->n_lk; i++)
        cap += o->lk[i].n_path_keys;
    o->keys = es_calloc(cap ? cap : 1, sizeof *o->keys);
    if (!o->keys)
        return -ENOMEM;
    int r = 0;
    for (size_t i = 0; i < o->n_lk && r == 0; i++) {
        lookup *l = &o->lk[i];
        for (size_t k = 0; l->ok && k < l->n_path_keys && r == 0; k++)
            r = add_key(o, l->path_keys[k], l->region, l->via);
        if (l->ok && l->key_ref && !ag_pf_key_is_aws_alias(l->key_ref) && r == 0)
            r = add_key(o, l->key_ref, l->region, l->via);
    }
    return r;
}

/* Every pair, in the order of the references: parameters, secrets, keys. */
static int collect_pairs(op *o)
{
    int r = 0;
    for (size_t i = 0; i < o->n_lk && r >= 0; i++) {
        lookup *l = &o->lk[i];
        if (l->kind == LK_PARAM &&
            (r = ag_pf_pairs_add(&o->pairs, ACT_SSM, l->param_arn, NULL)) > 0)
            o->pairs.v[o->pairs.n - 1].absent = l->absent;
        if (l->kind == LK_PATH)
            r = ag_pf_pairs_add(&o->pairs, ACT_PATH, l->param_arn, NULL);
    }
    for (size_t i = 0; i < o->n_lk && r >= 0; i++) {
        lookup *l = &o->lk[i];
        if (l->kind != LK_SECRET)
            continue;
        /* unknown secret: without its full ARN nothing can be said */
        const char *arn = l->ok ? l->arn : l->given_arn;
        if (arn)
            r = ag_pf_pairs_add(&o->pairs, ACT_SM, arn, NULL);
    }
    for (size_t i = 0; i < o->s3.n && r >= 0; i++)
        r = ag_pf_pairs_add(&o->pairs, o->s3.v[i].action, o->s3.v[i].resource, NULL);
    for (size_t i = 0; i < o->n_keys && r >= 0; i++) {
        lookup *k = &o->keys[i];
        if (k->ok && k->customer)
            r = ag_pf_pairs_add(&o->pairs, ACT_KMS, k->arn, k->via);
    }
    return r < 0 ? r : 0;
}

/* ---- evaluation ---- */

/* NAME of arn:aws:iam::ACCOUNT:role/PATH/NAME in our account, or false. */
static void evaluate_embedded(op *o)
{
    ag_preflight *p = o->p;
    for (size_t i = 0; i < o->pairs.n; i++) {
        ag_pf_pair *pr = &o->pairs.v[i];
        char via[96];
        if (pr->via) {
            /* the key's region: its ARN's */
            char region[AG_VF_REGION_MAX + 1];
            key_region(pr->resource, p->region, region, sizeof region);
            snprintf(via, sizeof via, "%s.%s.amazonaws.com", pr->via, region);
        }
        int r = al_role_may(p->embedded, p->account, o->role_arn, pr->action, pr->resource,
                            pr->via ? via : NULL);
        if (r == -EACCES) {
            pr->missing = true;
        } else if (r == -ENOENT) {
            /* the embedded IAM has every role of its account: this one is not */
            o->no_role = true;
            finish(o, AG_PF_MISSING);
            return;
        } else if (r == -EXDEV || r == -EINVAL) {
            /* another account's role, or not a role ARN: AssumeRole will say */
            finish(o, AG_PF_SKIPPED);
            return;
        } else if (r < 0) {
            es_warn("preflight: cannot evaluate %s on %s: %s; left to the fetch", pr->action,
                    pr->resource, strerror(-r));
            finish(o, AG_PF_SKIPPED);
            return;
        }
    }
    conclude(o);
}

static void on_simulate(void *arg, const aw_error *err, aw_http_response *resp)
{
    sim_call *s = arg;
    op *o = s->op;
    ag_preflight *p = o->p;
    if (err && p->closing) {
        /* canceled by the stop: no warning; the run ends STOPPED below */
    } else if (err && err->kind == AW_ERR_SERVICE && aw_error_is(err, "NoSuchEntity")) {
        /* IAM simulated for a role it does not have */
        o->no_role = true;
    } else if (err) {
        if (!o->simulate_failed && !p->warned_simulate) {
            p->warned_simulate = true;
            char detail[AW_ERROR_MESSAGE_MAX + 128];
            aw_error_format(err, detail, sizeof detail);
            es_warn("preflight: the host cannot call iam:SimulatePrincipalPolicy (%s); "
                    "execution role permissions are left to AWS",
                    detail);
        }
        o->simulate_failed = true;
    } else if (!o->simulate_failed) {
        ag_pf_sim_result *res = NULL;
        size_t n = 0;
        int r =
            ag_pf_parse_simulate(resp->body.data ? resp->body.data : "", resp->body.len, &res, &n);
        if (r < 0) {
            es_warn("preflight: unreadable SimulatePrincipalPolicy answer (%d); left to AWS", r);
            o->simulate_failed = true;
        }
        for (size_t i = 0; r == 0 && i < n; i++) {
            /* (an S3 object's bucket policy may grant what the role's own
             * policies do not: S3 is among those with resource policies) */
            /* (ECR repositories have repository policies; GetAuthorizationToken
             * is asked on "*", which no resource policy covers) */
            bool ssm = strcmp(res[i].action, ACT_SSM) == 0 ||
                       strcmp(res[i].action, ACT_PATH) == 0 ||
                       strcmp(res[i].action, ACT_ECR_TOKEN) == 0;
            bool explicit_deny = strcmp(res[i].decision, "explicitDeny") == 0;
            bool implicit_deny = strcmp(res[i].decision, "implicitDeny") == 0;
            /* resource and key policies are not in the simulation: an
             * implicit deny is final only where there are none */
            bool missing = explicit_deny || (implicit_deny && ssm);
            for (size_t k = 0; k < s->n; k++) {
                ag_pf_pair *pr = &o->pairs.v[s->pairs[k]];
                if (strcmp(pr->action, res[i].action) == 0 &&
                    strcmp(pr->resource, res[i].resource) == 0)
                    pr->missing = pr->missing || missing;
            }
        }
        ag_pf_sim_results_free(res, n);
    }
    if (--o->pending > 0 || stopping(o))
        return;
    if (o->no_role)
        finish(o, AG_PF_MISSING);
    else if (o->simulate_failed)
        finish(o, AG_PF_SKIPPED);
    else
        conclude(o);
}

static int simulate_body(const op *o, const sim_call *s, es_buf *b)
{
    char key[64];
    int r = 0;
    if ((r = aw_form_append(b, "Action", SIM_ACTION)) < 0 ||
        (r = aw_form_append(b, "Version", "2010-05-08")) < 0 ||
        (r = aw_form_append(b, "PolicySourceArn", o->role_arn)) < 0 ||
        (r = aw_form_append(b, "ActionNames.member.1", s->action)) < 0)
        return r;
    for (size_t i = 0; i < s->n; i++) {
        snprintf(key, sizeof key, "ResourceArns.member.%zu", i + 1);
        if ((r = aw_form_append(b, key, o->pairs.v[s->pairs[i]].resource)) < 0)
            return r;
    }
    if (s->via) {
        char via[96], region[AG_VF_REGION_MAX + 1];
        key_region(o->pairs.v[s->pairs[0]].resource, o->p->region, region, sizeof region);
        snprintf(via, sizeof via, "%s.%s.amazonaws.com", s->via, region);
        if ((r = aw_form_append(b, "ContextEntries.member.1.ContextKeyName", "kms:ViaService")) <
                0 ||
            (r = aw_form_append(b, "ContextEntries.member.1.ContextKeyType", "string")) < 0 ||
            (r = aw_form_append(b, "ContextEntries.member.1.ContextKeyValues.member.1", via)) < 0 ||
            (r = aw_form_append(b, "ContextEntries.member.2.ContextKeyName", "kms:CallerAccount")) <
                0 ||
            (r = aw_form_append(b, "ContextEntries.member.2.ContextKeyType", "string")) < 0 ||
            (r = aw_form_append(b, "ContextEntries.member.2.ContextKeyValues.member.1",
                                o->p->account)) < 0)
            return r;
    }
    return 0;
}

/* Groups the pairs by (action, via, key region) in batches of
 * AG_PF_SIM_BATCH resources. */
static int plan_simulations(op *o)
{
    o->sims = es_calloc(o->pairs.n ? o->pairs.n : 1, sizeof *o->sims);
    if (!o->sims)
        return -ENOMEM;
    for (size_t i = 0; i < o->pairs.n; i++) {
        ag_pf_pair *pr = &o->pairs.v[i];
        sim_call *s = NULL;
        for (size_t k = 0; k < o->n_sims && !s; k++) {
            sim_call *c = &o->sims[k];
            if (c->n < AG_PF_SIM_BATCH && strcmp(c->action, pr->action) == 0 &&
                streq_null(c->via, pr->via)) {
                char r1[AG_VF_REGION_MAX + 1], r2[AG_VF_REGION_MAX + 1];
                key_region(o->pairs.v[c->pairs[0]].resource, "", r1, sizeof r1);
                key_region(pr->resource, "", r2, sizeof r2);
                if (!pr->via || strcmp(r1, r2) == 0)
                    s = c;
            }
        }
        if (!s) {
            s = &o->sims[o->n_sims++];
            s->op = o;
            s->action = pr->action;
            s->via = pr->via;
            if (!(s->pairs = es_calloc(AG_PF_SIM_BATCH, sizeof *s->pairs)))
                return -ENOMEM;
        }
        s->pairs[s->n++] = i;
    }
    return 0;
}

static void evaluate_aws(op *o)
{
    if (plan_simulations(o) < 0) {
        finish(o, AG_PF_SKIPPED);
        return;
    }
    set_state(o, ST_SIMULATE);
    o->pending = 1;
    for (size_t i = 0; i < o->n_sims; i++) {
        es_buf body;
        es_buf_init(&body, (size_t)AG_PF_SIM_BATCH * (AG_PF_RESOURCE_MAX * 3 + 64) + 4096);
        int r = simulate_body(o, &o->sims[i], &body);
        if (r == 0) {
            aw_sigv4_creds c = aw_credentials_view(&o->host);
            aw_call call = {.service = AW_SVC_IAM,
                            .region = NULL,
                            .operation = SIM_ACTION,
                            .body = es_buf_cstr(&body),
                            .body_len = body.len};
            o->pending++;
            r = aw_call_start(o->p->client, &c, &call, on_simulate, &o->sims[i]);
            if (r < 0)
                o->pending--;
            else
                o->p->stats.simulations++;
        }
        es_buf_free(&body);
        if (r < 0)
            o->simulate_failed = true;
    }
    if (--o->pending > 0)
        return;
    finish(o, o->simulate_failed               ? AG_PF_SKIPPED
              : ag_pf_pairs_missing(&o->pairs) ? AG_PF_MISSING
                                               : AG_PF_OK);
}

static void evaluate(op *o)
{
    if (collect_pairs(o) < 0) {
        finish(o, AG_PF_SKIPPED);
        return;
    }
    if (o->pairs.n == 0) {
        finish(o, AG_PF_OK);
        return;
    }
    if (o->p->embedded)
        evaluate_embedded(o);
    else
        evaluate_aws(o);
}

/* The one transition function of the lookups. */
static void phase_done(op *o)
{
    if (stopping(o))
        return;
    switch (o->state) {
    case ST_LOOKUPS:
        if (plan_keys(o) < 0) {
            finish(o, AG_PF_SKIPPED);
            return;
        }
        set_state(o, ST_KEYS);
        if (start_all(o, o->keys, o->n_keys))
            return;
        evaluate(o);
        return;
    case ST_KEYS:
        evaluate(o);
        return;
    case ST_CREDS:
    case ST_SIMULATE:
    case ST_DONE:
        return;
    }
}

static void on_host_creds(void *arg, const aw_error *err, const aw_credentials *creds)
{
    op *o = arg;
    if (stopping(o))
        return;
    if (err || aw_credentials_copy(creds, &o->host) < 0) {
        if (!o->p->warned_creds) {
            o->p->warned_creds = true;
            es_warn("preflight: no host credentials for the metadata lookups (%s); "
                    "execution role permissions are left to AWS",
                    err ? err->code : "out of memory");
        }
        finish(o, AG_PF_SKIPPED);
        return;
    }
    set_state(o, ST_LOOKUPS);
    if (plan_batches(o) < 0) {
        finish(o, AG_PF_SKIPPED);
        return;
    }
    if (start_all(o, o->lk, o->n_lk))
        return;
    phase_done(o);
}

/* ---- planning ---- */

/* One of the plan's fetches (plan.h; its reference parsed at registration).
 * repositoryCredentials' credentialsParameter is a secret's ARN or name,
 * fetched with GetSecretValue (S15). Fetches that differ only by an SSM
 * selector or a secret's version are one lookup. */
static int add_fetch(op *o, const ag_plan_fetch *f)
{
    ag_preflight *p = o->p;
    ag_valuefrom vf = *f->vf; /* a view: owns nothing, is not cleared */
    int r = 0;
    const char *region = f->region;
    vf.region = region; /* a bare name's region, as the plan settled it */
    lk_kind kind = f->ssm_path ? LK_PATH : vf.kind == AG_VF_SSM ? LK_PARAM : LK_SECRET;
    const char *name = kind == LK_SECRET ? vf.secret_id : vf.ssm_name;
    /* "/a" (an ARN's parameter/a) and "a" are one parameter: ask by "a" */
    if (kind == LK_PARAM && name[0] == '/' && !strchr(name + 1, '/'))
        name++;
    /* the service that decrypts for the role: SSM for SecureStrings and
     * references (as the embedded store sees it), else Secrets Manager */
    const char *via = vf.kind == AG_VF_SECRETSMANAGER ? VIA_SM : VIA_SSM;
    for (size_t i = 0; i < o->n_lk; i++) {
        lookup *l = &o->lk[i];
        if (l->kind == kind && strcmp(l->region, region) == 0 && strcmp(l->name, name) == 0 &&
            strcmp(l->via, via) == 0)
            return 0; /* one lookup per distinct thing */
    }
    lookup *l = &o->lk[o->n_lk];
    l->op = o;
    l->kind = kind;
    l->via = via;
    l->region = es_strdup(region);
    l->name = es_strdup(name);
    if (!l->region || !l->name) {
        r = -ENOMEM;
    } else if (kind == LK_PARAM || kind == LK_PATH) {
        char arn[AG_PF_RESOURCE_MAX + 1];
        if (ag_valuefrom_resource_arn(&vf, p->account, arn, sizeof arn) < 0 ||
            !(l->param_arn = es_strdup(arn)))
            r = -ENOMEM;
    } else if (vf.kind == AG_VF_SECRETSMANAGER && ag_pf_secret_arn_complete(vf.secret_id)) {
        if (!(l->given_arn = es_strdup(vf.secret_id)))
            r = -ENOMEM;
    }
    if (r < 0) {
        lookup_clear(l);
        memset(l, 0, sizeof *l);
    } else {
        o->n_lk++;
    }
    return r;
}

/* An environment file's object: s3:GetObject on it, s3:GetBucketLocation
 * on its bucket (what ECS documents the execution role needs: the agent
 * asks where the bucket is, then reads the object). */
static int add_object(op *o, const ag_env_file *f)
{
    char bucket[AG_ENVFILE_PARTITION_MAX + AW_S3_BUCKET_MAX + 16];
    int r = ag_pf_pairs_add(&o->s3, ACT_S3_GET, f->value, NULL);
    if (r >= 0 && (r = ag_env_file_bucket_arn(f, bucket, sizeof bucket)) == 0)
        r = ag_pf_pairs_add(&o->s3, ACT_S3_LOCATION, bucket, NULL);
    return r < 0 ? r : 0;
}

/* An image pulled from ECR: ecr:GetAuthorizationToken on "*" (the token
 * is the account's, not a repository's), ecr:BatchGetImage and
 * ecr:GetDownloadUrlForLayer on its repository, as the managed
 * AmazonECSTaskExecutionRolePolicy grants them. */
static int add_ecr(op *o, const ag_plan_ecr *e)
{
    char arn[AG_ECR_ARN_MAX];
    int r = ag_ecr_repository_arn(&e->image, arn, sizeof arn);
    if (r == 0 && (r = ag_pf_pairs_add(&o->s3, ACT_ECR_TOKEN, "*", NULL)) >= 0 &&
        (r = ag_pf_pairs_add(&o->s3, ACT_ECR_IMAGE, arn, NULL)) >= 0)
        r = ag_pf_pairs_add(&o->s3, ACT_ECR_LAYER, arn, NULL);
    return r < 0 ? r : 0;
}

int ag_preflight_start(ag_preflight *p, const ag_secret_plan *plan, const char *role_arn,
                       ag_preflight_cb cb, void *arg)
{
    if (!p || !plan || !role_arn || !cb)
        return -EINVAL;
    if (p->closing)
        return -ECANCELED;
    size_t total = plan->n_fetches;
    if (total > AG_PF_PAIRS_MAX)
        return -EINVAL;
    op *o = es_calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->p = p;
    o->role_arn = role_arn;
    o->cb = cb;
    o->arg = arg;
    o->lk = es_calloc(total ? total : 1, sizeof *o->lk);
    if (!o->lk) {
        es_free(o);
        return -ENOMEM;
    }
    int r = 0;
    for (size_t i = 0; i < plan->n_fetches && r == 0; i++)
        r = add_fetch(o, &plan->fetches[i]);
    for (size_t i = 0; i < plan->n_objects && r == 0; i++)
        r = add_object(o, plan->objects[i]);
    for (size_t i = 0; i < plan->n_ecr && r == 0; i++)
        r = add_ecr(o, &plan->ecr[i]);
    if (r < 0) {
        for (size_t i = 0; i < o->n_lk; i++)
            lookup_clear(&o->lk[i]);
        ag_pf_pairs_clear(&o->s3);
        es_free(o->lk);
        es_free(o);
        return r;
    }
    uv_timer_init(aw_client_loop(p->client), &o->finish);
    o->finish.data = o;
    p->in_flight++;
    p->stats.runs++;
    /* a new run starts in ST_CREDS (zeroed) */
    if (o->n_lk == 0 && o->s3.n == 0) {
        finish(o, AG_PF_OK);
        return 0;
    }
    r = aw_creds_get(p->creds, on_host_creds, o);
    if (r < 0)
        finish(o, AG_PF_SKIPPED);
    return 0;
}
