/* mount.c - the embedded services on the signed listener (local.h al_mount):
 * the authenticator the listener asks (the store keeps the access keys), the
 * JSON 1.1 routes of SSM, Secrets Manager, KMS and ECR, the query route of IAM and
 * STS, the REST route of S3. The listener (aws/listener.h) knows none of them. */
#include "aws/local/local.h"

#include <errno.h>
#include <string.h>

#include "aws/local/auth.h"
#include "aws/local/match.h"
#include "aws/local/query.h"
#include "aws/local/s3.h"

static int precheck(void *arg, const char *authorization, const char *amz_date, const char *token,
                    time_t now, aw_listener_error *e)
{
    return al_precheck(arg, authorization, amz_date, token, now, e);
}

static int verify(void *arg, const aw_listener_request *rq, const char *signing_name, time_t now,
                  char principal[AW_LISTENER_PRINCIPAL_MAX], char region[AW_REGION_MAX + 1],
                  aw_listener_error *e)
{
    return al_verify(arg, rq, signing_name, now, principal, AW_LISTENER_PRINCIPAL_MAX, region, e);
}

void al_mount_auth(al_ctx *c, aw_listener *l)
{
    aw_listener_set_auth(l, &(aw_listener_auth){.precheck = precheck, .verify = verify, .arg = c});
}

/* One call of SSM, Secrets Manager or KMS, in its credential scope's region. */
static int serve_json(void *arg, const aw_listener_call *k, es_buf *out, aw_listener_error *e)
{
    return al_match_dispatch(arg, k, out, e); /* AllowedPattern matched off the loop */
}

static int serve_query(void *arg, const aw_listener_request *rq, time_t now, es_buf *out)
{
    return al_query_serve(arg, rq, now, out);
}

/* A query request refused from its head: the query protocol's (IAM, STS)
 * error answer, XML in its own codes (MissingAuthenticationToken, 403), as
 * al_query_serve answers them; the service is the credential scope's. */
static int query_error(void *arg, const aw_listener_request *rq, const aw_listener_error *head_err,
                       es_buf *out)
{
    (void)arg;
    const char *authz = al_request_header(rq, "authorization");
    const char *service = authz && strstr(authz, "/iam/aws4_request") ? "iam" : "sts";
    al_error e = *head_err;
    al_query_error_from_json(&e);
    if (al_query_error_xml(service, &e, out) < 0)
        return -ENOMEM;
    return e.status ? e.status : 400;
}

/* S3's REST requests (s3.h): verified and answered in S3's XML. */
static void serve_rest(void *arg, const aw_listener_request *rq, const aw_listener_error *head_err,
                       time_t now, aw_rest_answer *a)
{
    al_s3_serve(arg, rq, head_err, now, a);
}

int al_mount(al_ctx *c, aw_listener *l)
{
    /* target prefix, signing name, the error message's key */
    static const struct {
        const char *prefix, *signing_name, *message_key;
    } services[] = {
        {"AmazonSSM.", "ssm", NULL},
        {"secretsmanager.", "secretsmanager", "Message"},
        {"TrentService.", "kms", NULL},
        {"AmazonEC2ContainerRegistry_V20150921.", "ecr", NULL},
    };
    int rc = al_match_enable(c, aw_listener_loop(l));
    if (rc < 0)
        return rc;
    al_mount_auth(c, l);
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        aw_json_route r = {.target_prefix = services[i].prefix,
                           .signing_name = services[i].signing_name,
                           .message_key = services[i].message_key,
                           .knows = al_knows_target,
                           .fn = serve_json,
                           .arg = c};
        rc = aw_listener_add_json_route(l, &r);
        if (rc < 0)
            return rc;
    }
    aw_listener_set_query_route(
        l, &(aw_query_route){.serve = serve_query, .error = query_error, .arg = c});
    aw_listener_set_rest_route(l, &(aw_rest_route){.serve = serve_rest, .arg = c});
    return 0;
}
