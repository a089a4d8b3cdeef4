/* Fuzzes the role files of the embedded IAM (aws/local/iam.h): the input is
 * written as one roles/<name>.json and the directory loaded. A load either
 * succeeds or names the file in its error; a failed load keeps the roles of
 * the last good one (all or nothing). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aws/local/iam.h"
#include "aws/local/local.h"

static al_ctx *ctx;
static char dir[] = "/tmp/fuzz-alr-XXXXXX";
static char roles[sizeof dir + 8];

static al_ctx *store(void)
{
    if (ctx)
        return ctx;
    if (!mkdtemp(dir))
        abort();
    snprintf(roles, sizeof roles, "%s/roles", dir);
    if (mkdir(roles, 0700) < 0)
        abort();
    al_options o = {.state_dir = dir, .region = "us-east-1", .account = "123456789012"};
    char err[256];
    if (al_open(&o, &ctx, err, sizeof err) != 0)
        abort();
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    al_ctx *c = store();
    char path[128];
    snprintf(path, sizeof path, "%s/fuzz.json", roles);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    char err[1024] = "";
    int r = al_iam_load_roles_dir(c, roles, err, sizeof err);
    if (r < 0 && strncmp(err, "fuzz.json: ", 11) != 0)
        __builtin_trap(); /* every refusal names the file */
    if (r == 0) {
        /* a loaded role has its trust policy and can be compiled */
        al_iam_role role;
        al_iam_policies pol;
        if (al_iam_role_get(c, "fuzz", &role) == 0) {
            if (!role.trust)
                __builtin_trap();
            al_iam_role_clear(&role);
        }
        if (al_iam_role_policies(c, "fuzz", &pol) == 0)
            al_iam_policies_clear(&pol);
    }
    return 0;
}
