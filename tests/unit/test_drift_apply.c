/* Applying a drift round to a task (agent/secrets/drift.c's apply_task, a static
 * function: the file is included). A secret drift can never judge (an SSM
 * reference resolved before its secret's version id was recorded) is marked
 * looked-at with no verdict, so that the service census, which waits for
 * every task's first check before it says "all current", does not wait for
 * ever; a secret drift can judge but whose source gave no answer stays
 * pending. */
#include <criterion/criterion.h>

#include "../../agent/secrets/drift.c"

Test(drift_apply, unjudgeable_secret_is_looked_at_without_verdict)
{
    ag_drift d = {.region = (char *)"us-east-1"};
    round r = {.d = &d};
    apply_ctx a = {.r = &r, .now = 1700000000};
    ag_secret_meta m[2] = {
        {.target = AG_SECRET_ENV,
         .name = (char *)"REF",
         .value_from = (char *)"/aws/reference/secretsmanager/prod/db",
         .version = (char *)"0"},
        /* checkable, but this round has no answer for it */
        {.target = AG_SECRET_ENV,
         .name = (char *)"P",
         .value_from = (char *)"/prod/p",
         .version = (char *)"3"},
    };
    /* the views the engine binds from the task definition (parsed there) */
    ag_valuefrom vf[2] = {0};
    char err[256];
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(ag_valuefrom_parse(m[i].value_from, "us-east-1", &vf[i], err, sizeof err), 0);
        m[i].vf = &vf[i];
    }
    ag_task t = {.last_status = AG_TASK_RUNNING, .secrets = m, .n_secrets = 2};
    cr_assert_eq(apply_task(&a, &t), 0);
    cr_assert_eq(m[0].drift, AG_DRIFT_UNKNOWN, "no verdict");
    cr_assert_eq(m[0].drift_checked_at, 1700000000, "but looked at");
    cr_assert_eq(m[1].drift, AG_DRIFT_UNKNOWN);
    cr_assert_eq(m[1].drift_checked_at, 0, "still awaits its first answer");
    cr_assert_eq(a.stale, 0);
    for (size_t i = 0; i < 2; i++)
        ag_valuefrom_clear(&vf[i]);
}

Test(drift_apply, secret_without_its_definition_is_unknown)
{
    /* a task whose definition the engine could not load has no parsed
     * reference: drift gives no verdict rather than parse value_from */
    ag_drift d = {.region = (char *)"us-east-1"};
    round r = {.d = &d};
    apply_ctx a = {.r = &r, .now = 1700000000};
    ag_secret_meta m = {.target = AG_SECRET_ENV,
                        .name = (char *)"P",
                        .value_from = (char *)"/prod/p",
                        .version = (char *)"3"};
    ag_task t = {.last_status = AG_TASK_RUNNING, .secrets = &m, .n_secrets = 1};
    cr_assert_eq(collect(&r, &t), 0);
    cr_assert_eq(r.n, 0, "nothing to ask");
    cr_assert_eq(apply_task(&a, &t), 0);
    cr_assert_eq(m.drift, AG_DRIFT_UNKNOWN);
    cr_assert_eq(m.drift_checked_at, 1700000000);
}
