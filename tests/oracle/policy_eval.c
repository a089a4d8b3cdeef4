/* policy_eval - the C side of the differential test against iam-simulate.
 *
 * Reads one JSON object per line on stdin:
 *   {"identity": ["<policy json>", ...], "boundary": [...] (optional),
 *    "resource": "<policy json>" (optional), "principal": "arn:...",
 *    "action": "svc:Action", "resource_arn": "arn:...",
 *    "context": {"key": "value" | ["v1", "v2"]}}
 * and prints one line per case: Allowed, ExplicitlyDenied, ImplicitlyDenied
 * or "error <message>" when a policy does not parse. */
#include "aws/policy.h"
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (1u << 20)
#define MAX_POLICIES 16
#define MAX_CTX 64
#define MAX_CTX_VALUES 64

static aw_policy_limits lim;

static int load(const es_json *arr, aw_policy_kind kind, aw_policy **out, size_t *n, char *err,
                size_t errlen)
{
    *n = 0;
    if (!arr)
        return 0;
    if (arr->type != ES_JSON_ARRAY || arr->u.array.n > MAX_POLICIES) {
        snprintf(err, errlen, "bad policy list");
        return -1;
    }
    for (size_t i = 0; i < arr->u.array.n; i++) {
        const es_json *s = arr->u.array.items[i];
        if (s->type != ES_JSON_STRING) {
            snprintf(err, errlen, "policy must be a JSON string");
            return -1;
        }
        int rc =
            aw_policy_parse(s->u.string.s, s->u.string.len, kind, NULL, &lim, &out[i], err, errlen);
        if (rc)
            return rc;
        (*n)++;
    }
    return 0;
}

static void one(const char *line, size_t len)
{
    es_json *j = NULL;
    char err[512];
    aw_policy *id[MAX_POLICIES] = {0}, *pb[MAX_POLICIES] = {0}, *rp[1] = {0};
    size_t nid = 0, npb = 0, nrp = 0;
    es_json_limits jl = es_json_default_limits;
    if (es_json_parse(line, len, &jl, &j, err, sizeof err)) {
        printf("error input: %s\n", err);
        return;
    }
    const es_json *rpj = es_json_get(j, "resource");
    es_json rparr = {.type = ES_JSON_ARRAY};
    es_json *rpitems[1];
    if (rpj && rpj->type == ES_JSON_STRING) {
        rpitems[0] = (es_json *)rpj;
        rparr.u.array.items = rpitems;
        rparr.u.array.n = 1;
    }
    if (load(es_json_get(j, "identity"), AW_POLICY_IDENTITY, id, &nid, err, sizeof err) ||
        load(es_json_get(j, "boundary"), AW_POLICY_BOUNDARY, pb, &npb, err, sizeof err) ||
        load(rparr.u.array.n ? &rparr : NULL, AW_POLICY_RESOURCE, rp, &nrp, err, sizeof err)) {
        printf("error %s\n", err);
        goto out;
    }
    aw_ctx_entry ctx[MAX_CTX];
    const char *vals[MAX_CTX][MAX_CTX_VALUES];
    size_t nctx = 0;
    const es_json *c = es_json_get(j, "context");
    if (c && c->type == ES_JSON_OBJECT) {
        for (size_t i = 0; i < c->u.object.n && nctx < MAX_CTX; i++) {
            const es_json *v = c->u.object.values[i];
            aw_ctx_entry *e = &ctx[nctx];
            e->key = c->u.object.keys[i];
            e->values = vals[nctx];
            if (v->type == ES_JSON_ARRAY) {
                e->multi = true;
                e->n = 0;
                for (size_t k = 0; k < v->u.array.n && k < MAX_CTX_VALUES; k++)
                    if (v->u.array.items[k]->type == ES_JSON_STRING)
                        vals[nctx][e->n++] = v->u.array.items[k]->u.string.s;
            } else if (v->type == ES_JSON_STRING) {
                e->multi = false;
                e->n = 1;
                vals[nctx][0] = v->u.string.s;
            } else {
                continue;
            }
            nctx++;
        }
    }
    aw_request req = {
        .principal_arn = es_json_get_str(j, "principal"),
        .action = es_json_get_str(j, "action"),
        .resource = es_json_get_str(j, "resource_arn"),
        .resource_account = es_json_get_str(j, "resource_account"),
        .ctx = ctx,
        .nctx = nctx,
    };
    aw_policy_set set = {
        .identity = (const aw_policy *const *)id,
        .n_identity = nid,
        .boundary = (const aw_policy *const *)pb,
        .n_boundary = npb,
        .resource = nrp ? rp[0] : NULL,
    };
    aw_decision d;
    if (aw_policy_evaluate(&set, &req, &d)) {
        printf("error evaluate: bad request\n");
        goto out;
    }
    char msg[1024];
    aw_decision_message(&req, &d, msg, sizeof msg);
    printf("%s %s\n", aw_decision_kind_name(d.kind), msg);
out:
    for (size_t i = 0; i < MAX_POLICIES; i++) {
        aw_policy_free(id[i]);
        aw_policy_free(pb[i]);
    }
    aw_policy_free(rp[0]);
    es_json_free(j);
}

int main(void)
{
    lim = aw_policy_resource_limits;
    lim.max_bytes = 64 * 1024;
    char *line = malloc(MAX_LINE);
    if (!line)
        return 1;
    while (fgets(line, MAX_LINE, stdin)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len)
            continue;
        one(line, len);
        fflush(stdout);
    }
    free(line);
    return 0;
}
