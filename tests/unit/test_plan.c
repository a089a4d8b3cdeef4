/* The secret plan (agent/secrets/plan.h): one task definition's references,
 * parsed once at registration, become items pointing at de-duplicated
 * fetches, grouped by region for SSM and one call per Secrets Manager secret
 * version; the limit and a reference that was never parsed are refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/secrets/plan.h"
#include "common/buf.h"

#define ROLE "\"executionRoleArn\":\"arn:aws:iam::123456789012:role/exec\""
#define SM "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"

static ag_taskdef *parse(const char *body)
{
    ag_td_ctx ctx = {.region = "us-east-1", .account = "123456789012"};
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &ctx, &td, &e), 0, "%s", e.message);
    return td;
}

static const ag_plan_item *item(const ag_secret_plan *p, size_t container, const char *name)
{
    for (size_t i = 0; i < p->n_items; i++)
        if (p->items[i].container == container && strcmp(p->items[i].ref->name, name) == 0)
            return &p->items[i];
    cr_assert_fail("no item %zu/%s", container, name);
    return NULL;
}

Test(plan, dedupes_and_groups_as_the_backends_take_them)
{
    ag_taskdef *td = parse(
        "{\"family\":\"f\"," ROLE ",\"containerDefinitions\":["
        "{\"name\":\"a\",\"image\":\"busybox\",\"secrets\":["
        "{\"name\":\"P\",\"valueFrom\":\"/app/p\"},"
        "{\"name\":\"P_ARN\",\"valueFrom\":\"arn:aws:ssm:us-east-1:123456789012:parameter/app/p\"},"
        "{\"name\":\"P_V2\",\"valueFrom\":\"/app/p:2\"},"
        "{\"name\":\"P_WEST\",\"valueFrom\":\"arn:aws:ssm:us-west-2:123456789012:parameter/app/"
        "p\"},"
        "{\"name\":\"REF\",\"valueFrom\":\"/aws/reference/secretsmanager/db\"},"
        "{\"name\":\"PW\",\"valueFrom\":\"" SM ":password::\"},"
        "{\"name\":\"USER\",\"valueFrom\":\"" SM ":user::\"},"
        "{\"name\":\"OLD\",\"valueFrom\":\"" SM ":password:AWSPREVIOUS:\"}],"
        "\"logConfiguration\":{\"logDriver\":\"splunk\",\"secretOptions\":["
        "{\"name\":\"splunk-token\",\"valueFrom\":\"/app/p\"}]}},"
        "{\"name\":\"b\",\"image\":\"busybox\",\"essential\":false,"
        "\"repositoryCredentials\":{\"credentialsParameter\":\"" SM "\"}}]}");
    ag_secret_plan *p = NULL;
    char err[256] = "";
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p->n_items, 10);
    /* "/app/p" three ways (bare, ARN, a log option) is one fetch; ":2" and
     * another region are others; two json-keys of one secret version share
     * a GetSecretValue, AWSPREVIOUS is another */
    cr_assert_eq(item(p, 0, "P")->fetch, item(p, 0, "P_ARN")->fetch);
    cr_assert_eq(item(p, 0, "P")->fetch, item(p, 0, "splunk-token")->fetch);
    cr_assert_eq(item(p, 0, "splunk-token")->target, AG_SECRET_LOG);
    cr_assert_neq(item(p, 0, "P")->fetch, item(p, 0, "P_V2")->fetch);
    cr_assert_neq(item(p, 0, "P")->fetch, item(p, 0, "P_WEST")->fetch);
    cr_assert_eq(item(p, 0, "PW")->fetch, item(p, 0, "USER")->fetch);
    cr_assert_neq(item(p, 0, "PW")->fetch, item(p, 0, "OLD")->fetch);
    const ag_plan_item *reg = item(p, 1, "repositoryCredentials");
    cr_assert_eq(reg->target, AG_SECRET_REGISTRY);
    cr_assert_eq(reg->fetch, item(p, 0, "PW")->fetch, "the whole secret, as the json-keys' fetch");
    cr_assert_str_eq(p->fetches[item(p, 0, "P_V2")->fetch].ssm_request, "/app/p:2");
    cr_assert_str_eq(p->fetches[item(p, 0, "REF")->fetch].ssm_request,
                     "/aws/reference/secretsmanager/db");
    cr_assert_str_eq(p->fetches[item(p, 0, "P_WEST")->fetch].region, "us-west-2");
    /* fetches: /app/p, /app/p:2, west /app/p, the reference, SM current, SM
     * previous; SSM grouped by region (east: 3, west: 1), SM one call each */
    cr_assert_eq(p->n_fetches, 6);
    cr_assert_eq(p->n_ssm_groups, 2);
    size_t east = strcmp(p->ssm_groups[0].region, "us-east-1") == 0 ? 0 : 1;
    cr_assert_eq(p->ssm_groups[east].n, 3);
    cr_assert_eq(p->ssm_groups[1 - east].n, 1);
    cr_assert_eq(p->n_sm, 2);
    for (size_t i = 0; i < p->n_sm; i++)
        cr_assert_not(p->fetches[p->sm_fetches[i]].ssm);
    ag_secret_plan_free(p);
    ag_taskdef_free(td);
}

Test(plan, no_secrets_is_an_empty_plan)
{
    ag_taskdef *td =
        parse("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"x\"}]}");
    ag_secret_plan *p = NULL;
    char err[256];
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), 0);
    cr_assert_eq(p->n_items, 0);
    cr_assert_eq(p->n_fetches, 0);
    cr_assert_eq(p->n_ssm_groups + p->n_sm, 0);
    ag_secret_plan_free(p);
    ag_taskdef_free(td);
}

Test(plan, a_reference_registration_did_not_parse_is_refused)
{
    ag_taskdef *td =
        parse("{\"family\":\"f\"," ROLE ",\"containerDefinitions\":[{\"name\":\"a\","
              "\"image\":\"x\",\"secrets\":[{\"name\":\"P\",\"valueFrom\":\"/p\"}]}]}");
    /* as a definition built by hand, not by ag_taskdef_parse, would be */
    ag_valuefrom_clear(&td->containers[0].secrets[0].vf);
    ag_secret_plan *p = (ag_secret_plan *)0x1;
    char err[256] = "";
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), -EINVAL);
    cr_assert_eq(p, (ag_secret_plan *)0x1, "nothing handed out");
    cr_assert_not_null(strstr(err, "/p: not a parsed reference"), "%s", err);
    ag_taskdef_free(td);
}

Test(plan, more_references_than_the_limit_are_refused)
{
    /* registration caps each list; a hand-made definition past the plan's
     * limit is refused whole */
    ag_taskdef *td =
        parse("{\"family\":\"f\"," ROLE ",\"containerDefinitions\":[{\"name\":\"a\","
              "\"image\":\"x\",\"secrets\":[{\"name\":\"P\",\"valueFrom\":\"/p\"}]}]}");
    size_t real = td->containers[0].n_secrets;
    td->containers[0].n_secrets = AG_PLAN_ITEMS_MAX + 1;
    ag_secret_plan *p = NULL;
    char err[256] = "";
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "more than 1000 secrets"), "%s", err);
    td->containers[0].n_secrets = real;
    ag_taskdef_free(td);
}

/* A definition read back from the agent's store is parsed without a region
 * (agent/store/store.c): its bare names take the region the plan is built for,
 * and so does every consumer of the plan (the preflight's resource ARNs). */
Test(plan, bare_names_take_the_plan_region_when_registration_had_none)
{
    const char *body = "{\"family\":\"f\"," ROLE ",\"containerDefinitions\":[{\"name\":\"a\","
                       "\"image\":\"x\",\"secrets\":[{\"name\":\"P\",\"valueFrom\":\"/p\"},"
                       "{\"name\":\"S\",\"valueFrom\":\"db\"}]}]}";
    ag_taskdef *td = NULL;
    ag_td_error e = {0};
    cr_assert_eq(ag_taskdef_parse(body, strlen(body), &(ag_td_ctx){0}, &td, &e), 0, "%s",
                 e.message);
    ag_secret_plan *p = NULL;
    char err[256] = "";
    cr_assert_eq(ag_secret_plan_build(td, "eu-west-3", &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p->n_fetches, 2);
    for (size_t i = 0; i < p->n_fetches; i++)
        cr_assert_str_eq(p->fetches[i].region, "eu-west-3");
    cr_assert_eq(p->n_ssm_groups, 1);
    cr_assert_str_eq(p->ssm_groups[0].region, "eu-west-3");
    ag_secret_plan_free(p);
    ag_taskdef_free(td);
}

/* Expansion labels: a JSON secret shares the GetSecretValue of a secrets[]
 * entry naming the same version; an SSM path is a page series of its own,
 * one per region and path; the metadata's name finds the label. */
Test(plan, expansions_are_planned)
{
    ag_taskdef *td =
        parse("{\"family\":\"f\"," ROLE ",\"containerDefinitions\":["
              "{\"name\":\"a\",\"image\":\"busybox\",\"secrets\":["
              "{\"name\":\"PW\",\"valueFrom\":\"" SM ":password::\"},"
              "{\"name\":\"P\",\"valueFrom\":\"/app/prod\"}],"
              "\"dockerLabels\":{\"ecs-secrets.expand.DB_\":\"" SM "\","
              "\"ecs-secrets.expand.APP_\":\"/app/prod/\"}},"
              "{\"name\":\"b\",\"image\":\"busybox\",\"essential\":false,"
              "\"dockerLabels\":{\"ecs-secrets.expand.\":\"arn:aws:ssm:us-east-1:123456789012:"
              "parameter/app/prod/\"}}]}");
    ag_secret_plan *p = NULL;
    char err[256] = "";
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p->n_items, 5);
    const ag_plan_item *db = item(p, 0, "ecs-secrets.expand.DB_");
    const ag_plan_item *app = item(p, 0, "ecs-secrets.expand.APP_");
    const ag_plan_item *all = item(p, 1, "ecs-secrets.expand.");
    cr_expect_eq(db->target, AG_SECRET_ENV);
    cr_assert_not_null(db->expand);
    cr_expect_str_eq(db->expand->prefix, "DB_");
    cr_expect_null(item(p, 0, "PW")->expand);
    cr_expect_eq(db->fetch, item(p, 0, "PW")->fetch, "one GetSecretValue for the version");
    /* the path is not the parameter of the same name */
    cr_expect_neq(app->fetch, item(p, 0, "P")->fetch);
    cr_expect_eq(app->fetch, all->fetch, "the same path by name and by ARN: one series");
    const ag_plan_fetch *f = &p->fetches[app->fetch];
    cr_expect(f->ssm && f->ssm_path);
    cr_expect_str_eq(f->ssm_request, "/app/prod");
    cr_expect_str_eq(f->region, "us-east-1");
    cr_assert_eq(p->n_paths, 1);
    cr_expect_eq(p->path_fetches[0], app->fetch);
    cr_expect_eq(p->n_sm, 1);
    cr_assert_eq(p->n_ssm_groups, 1);
    cr_expect_eq(p->ssm_groups[0].n, 1, "only /app/prod the parameter is a GetParameters name");
    /* the metadata's name finds the label's reference */
    cr_expect_eq(ag_secret_ref_find(td, "a", AG_SECRET_ENV, "ecs-secrets.expand.DB_"), db->ref);
    cr_expect_eq(ag_secret_expand_find(td, "b", "ecs-secrets.expand."), all->expand);
    cr_expect_null(ag_secret_expand_find(td, "b", "ecs-secrets.expand.DB_"));
    ag_secret_plan_free(p);
    ag_taskdef_free(td);
}

/* Issue 20: every container's environmentFiles are the plan's, each
 * distinct object read once, in the order the containers name them. */
Test(plan, environment_files_are_planned)
{
    ag_taskdef *td =
        parse("{\"family\":\"f\"," ROLE ",\"containerDefinitions\":["
              "{\"name\":\"a\",\"image\":\"busybox\",\"environmentFiles\":["
              "{\"value\":\"arn:aws:s3:::envs/app.env\",\"type\":\"s3\"},"
              "{\"value\":\"arn:aws:s3:::envs/common.env\",\"type\":\"s3\"}]},"
              "{\"name\":\"b\",\"image\":\"busybox\",\"essential\":false,"
              "\"secrets\":[{\"name\":\"P\",\"valueFrom\":\"/app/p\"}],\"environmentFiles\":["
              "{\"value\":\"arn:aws:s3:::envs/common.env\",\"type\":\"s3\"},"
              "{\"value\":\"arn:aws:s3:::other/b.env\",\"type\":\"s3\"}]}]}");
    ag_secret_plan *p = NULL;
    char err[256] = "";
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p->n_items, 1, "the files are not secret items");
    cr_assert_eq(p->n_envfiles, 4);
    cr_assert_eq(p->n_objects, 3, "common.env, named by both containers, is read once");
    cr_assert_str_eq(p->objects[0]->value, "arn:aws:s3:::envs/app.env");
    cr_assert_str_eq(p->objects[1]->value, "arn:aws:s3:::envs/common.env");
    cr_assert_str_eq(p->objects[2]->value, "arn:aws:s3:::other/b.env");
    const size_t want[4][3] = {{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 1, 2}};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(p->envfiles[i].container, want[i][0], "envfile %zu", i);
        cr_assert_eq(p->envfiles[i].file, want[i][1], "envfile %zu", i);
        cr_assert_eq(p->envfiles[i].object, want[i][2], "envfile %zu", i);
    }
    ag_secret_plan_free(p);
    ag_taskdef_free(td);

    /* files alone make a plan with no secret item */
    td = parse("{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":"
               "\"busybox\",\"environmentFiles\":[{\"value\":\"arn:aws:s3:::envs/app.env\","
               "\"type\":\"s3\"}]}]}");
    cr_assert_eq(ag_secret_plan_build(td, "us-east-1", &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p->n_items, 0);
    cr_assert_eq(p->n_fetches, 0);
    cr_assert_eq(p->n_objects, 1);
    ag_secret_plan_free(p);
    ag_taskdef_free(td);
}
