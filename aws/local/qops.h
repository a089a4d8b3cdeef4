/* qops.h - the query-protocol operation tables (IAM, STS); internal to
 * aws/local. Each operation writes the inside of its <ActionResult> element
 * (nothing for operations without one) or fills e. */
#ifndef AL_QOPS_H
#define AL_QOPS_H

#include <stdbool.h>

#include "aws/local/local.h"
#include "aws/local/query.h"

typedef int (*al_qop_fn)(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e);

typedef struct al_qop {
    const char *name;
    al_qop_fn fn;
    bool has_result; /* false: the answer is <XResponse> with metadata only */
} al_qop;

extern const al_qop al_iam_qops[];
extern const al_qop al_iam_user_qops[]; /* iam_users.c: users, groups, access keys */
extern const al_qop al_iam_sim_qops[];  /* iam_simulate.c: SimulatePrincipalPolicy */
extern const al_qop al_sts_qops[];

#endif
