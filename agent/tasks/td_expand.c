/* td_expand.c - the expansion labels of a container definition (td_expand.h). */
#include "agent/tasks/td_expand.h"
#include "agent/tasks/td_json.h"
#include "agent/tasks/taskdef.h"
#include "common/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CLIENT "ClientException"
#define LABEL_PATH_MAX (AG_TD_LABEL_KEY_MAX + 64)

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

bool ag_td_expand_prefix_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > AG_EXPAND_PREFIX_MAX || (n && s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

void ag_td_expand_free(ag_secret_expand *x, size_t n)
{
    for (size_t i = 0; x && i < n; i++) {
        es_free(x[i].prefix);
        if (x[i].ref) {
            es_free(x[i].ref->name);
            es_free(x[i].ref->value_from);
            ag_valuefrom_clear(&x[i].ref->vf);
            es_free(x[i].ref);
        }
    }
    es_free(x);
}

/* The SSM side: a path ending in '/', parsed without it as a parameter name
 * would be (the same region and account rules as secrets[]). */
static int parse_path(ag_secret_expand *x, const char *v, size_t n, const char *path,
                      const ag_td_ctx *ctx, ag_td_error *e)
{
    char why[256], trimmed[AG_VF_MAX + 1];
    if (n < 2 || n - 1 > AG_VF_MAX || v[n - 2] == '/')
        return ag_td_bad(e, CLIENT,
                         "%s: an SSM path must name a level below the root, as "
                         "/app/prod/ (one trailing '/')",
                         path);
    memcpy(trimmed, v, n - 1);
    trimmed[n - 1] = '\0';
    ag_valuefrom *vf = &x->ref->vf;
    int r = ag_valuefrom_parse(trimmed, ctx ? ctx->region : NULL, vf, why, sizeof why);
    if (r == AG_VF_E_NOMEM)
        return ag_td_nomem(e);
    if (r)
        return ag_td_bad(e, CLIENT, "%s: not an SSM path: %s", path, why);
    const char *refusal = NULL;
    if (vf->kind != AG_VF_SSM)
        refusal = "a path ending in '/' must be an SSM path, not a secret reference";
    else if (vf->ssm_label || vf->ssm_version)
        refusal = "an SSM path takes no ':version' or ':label' selector";
    else if (vf->ssm_name[0] != '/')
        refusal = "an SSM path must start with '/'";
    else if (vf->is_arn && ctx && ctx->account && strcmp(vf->account, ctx->account) != 0)
        refusal = "the SSM path is in another account than the task's";
    if (refusal)
        return ag_td_bad(e, CLIENT, "%s: %s", path, refusal);
    x->ssm_path = true;
    return 0;
}

/* The Secrets Manager side: an ARN (with the secrets[] tail, json-key empty)
 * or a name. */
static int parse_secret(ag_secret_expand *x, const char *v, const char *path, const ag_td_ctx *ctx,
                        ag_td_error *e)
{
    char why[256];
    ag_valuefrom *vf = &x->ref->vf;
    bool arn = strncmp(v, "arn:", 4) == 0;
    /* "/app/prod" is a valid secret name, but far more likely a path whose
     * '/' was forgotten: a secret named so is named by its ARN */
    if (v[0] == '/')
        return ag_td_bad(e, CLIENT,
                         "%s: an SSM path ends with '/' (a Secrets Manager secret whose name "
                         "starts with '/' is named by its ARN)",
                         path);
    int r = arn ? ag_valuefrom_parse(v, ctx ? ctx->region : NULL, vf, why, sizeof why)
                : ag_valuefrom_parse_secret(v, ctx ? ctx->region : NULL, vf, why, sizeof why);
    if (r == AG_VF_E_NOMEM)
        return ag_td_nomem(e);
    if (r)
        return ag_td_bad(e, CLIENT,
                         "%s: must be a Secrets Manager secret (ARN or name) or an SSM path "
                         "ending in '/': %s",
                         path, why);
    if (vf->kind != AG_VF_SECRETSMANAGER)
        return ag_td_bad(e, CLIENT,
                         "%s: a parameter is expanded by its path: end it with '/' (or name a "
                         "Secrets Manager secret)",
                         path);
    if (vf->json_key)
        return ag_td_bad(e, CLIENT,
                         "%s: an expansion takes every top-level key; leave the json-key part "
                         "empty (ARN::version-stage:version-id)",
                         path);
    return 0;
}

static int add_expand(ag_container_def *c, const ag_kv *label, const char *prefix,
                      const ag_td_ctx *ctx, ag_td_error *e)
{
    char path[LABEL_PATH_MAX];
    ag_td_pathf(path, sizeof path, "%s.dockerLabels[\"%s\"]", prefix, label->name);
    const char *pfx = label->name + strlen(AG_EXPAND_LABEL_PREFIX);
    if (!ag_td_expand_prefix_ok(pfx))
        return ag_td_bad(e, CLIENT,
                         "%s: the prefix must be empty or a variable name's start "
                         "([A-Za-z_][A-Za-z0-9_]*, at most %d characters)",
                         path, AG_EXPAND_PREFIX_MAX);
    ag_secret_expand *x = &c->expands[c->n_expands];
    if (!(x->prefix = es_strdup(pfx)) || !(x->ref = es_calloc(1, sizeof *x->ref)) ||
        !(x->ref->name = es_strdup(label->name)) ||
        !(x->ref->value_from = es_strdup(label->value))) {
        c->n_expands++; /* freed with the others */
        return ag_td_nomem(e);
    }
    c->n_expands++;
    const char *v = label->value;
    size_t n = strlen(v);
    if (n == 0)
        return ag_td_bad(e, CLIENT, "%s: the value is empty", path);
    return v[n - 1] == '/' ? parse_path(x, v, n, path, ctx, e) : parse_secret(x, v, path, ctx, e);
}

int ag_td_expand_parse(ag_container_def *c, const char *prefix, const ag_td_ctx *ctx,
                       ag_td_error *e)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_docker_labels; i++)
        n += has_prefix(c->docker_labels[i].name, AG_EXPAND_LABEL_PREFIX);
    if (n == 0)
        return 0;
    if (n > AG_EXPAND_LABELS_MAX)
        return ag_td_bad(e, CLIENT, "%s.dockerLabels: more than %d %s* labels", prefix,
                         AG_EXPAND_LABELS_MAX, AG_EXPAND_LABEL_PREFIX);
    if (!(c->expands = es_calloc(n, sizeof *c->expands)))
        return ag_td_nomem(e);
    int rc = 0;
    for (size_t i = 0; i < c->n_docker_labels && !rc; i++)
        if (has_prefix(c->docker_labels[i].name, AG_EXPAND_LABEL_PREFIX))
            rc = add_expand(c, &c->docker_labels[i], prefix, ctx, e);
    /* a task's secret metadata names an expansion by its label's key
     * (plan.h's ag_secret_ref_find): no secrets[] entry may be called so */
    for (size_t i = 0; i < c->n_secrets && !rc; i++)
        if (has_prefix(c->secrets[i].name, AG_EXPAND_LABEL_PREFIX))
            rc = ag_td_bad(e, CLIENT,
                           "%s.secrets[%zu].name: '%s' is reserved for the label of "
                           "the same name",
                           prefix, i, c->secrets[i].name);
    return rc;
}
