/* Fuzzes the SimulatePrincipalPolicy answer parser (agent/secrets/preflight.h) and
 * checks what it promises: on success every result has an action, a
 * resource and a decision, at most AG_PF_SIM_RESULTS_MAX of them; on
 * failure one of its error codes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/secrets/preflight.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_pf_sim_result *r = NULL;
    size_t n = 0;
    int rc = ag_pf_parse_simulate((const char *)data, size, &r, &n);
    if (rc != 0) {
        if (rc != AG_PF_SIM_E_XML && rc != AG_PF_SIM_E_TOO_MANY && rc != AG_PF_SIM_E_INCOMPLETE &&
            rc != AG_PF_SIM_E_NOMEM)
            __builtin_trap();
        if (r || n)
            __builtin_trap(); /* out-params untouched */
        return 0;
    }
    if (n > AG_PF_SIM_RESULTS_MAX || (n && !r))
        __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (!r[i].action || !r[i].resource || !r[i].decision)
            __builtin_trap();
    ag_pf_sim_results_free(r, n);
    return 0;
}
