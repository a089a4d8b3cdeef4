/* Fuzzes the valueFrom classifier: no crash, and every success is coherent. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/secrets/valuefrom.h"
#include "aws/arn.h"
#include "common/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AG_VF_MAX + 16)
        return 0;
    char *s = es_strndup((const char *)data, size);
    if (!s)
        return 0;
    ag_valuefrom v;
    char err[256];
    if (ag_valuefrom_parse(s, "us-east-1", &v, err, sizeof err) == 0) {
        if (!v.partition || !v.region || !v.account)
            __builtin_trap();
        switch (v.kind) {
        case AG_VF_SSM:
            if (!v.ssm_name || !*v.ssm_name || strchr(v.ssm_name, ':'))
                __builtin_trap();
            break;
        case AG_VF_SSM_REFERENCE:
        case AG_VF_SECRETSMANAGER:
            if (!v.secret_id || !*v.secret_id)
                __builtin_trap();
            break;
        }
        /* an ARN's parts come from the input, and aws/arn.h reads them alike */
        if (v.is_arn) {
            static aw_arn a;
            if (!strstr(s, v.region) || !strstr(s, v.account) || aw_arn_parse_str(s, &a) != 0 ||
                strcmp(a.region, v.region) != 0 || strcmp(a.account, v.account) != 0)
                __builtin_trap();
            if (v.kind == AG_VF_SECRETSMANAGER) {
                char id[AW_ARN_MAX + 1];
                if (aw_arn_secret_id(&a, id, sizeof id) != 0 || strcmp(id, v.secret_id) != 0 ||
                    strcmp(a.json_key, v.json_key ? v.json_key : "") != 0 ||
                    strcmp(a.version_stage, v.version_stage ? v.version_stage : "") != 0 ||
                    strcmp(a.version_id, v.version_id ? v.version_id : "") != 0)
                    __builtin_trap();
            }
        }
        char arn[AG_VF_MAX * 2 + 64];
        if (ag_valuefrom_resource_arn(&v, "123456789012", arn, sizeof arn) != 0 ||
            strncmp(arn, "arn:", 4) != 0)
            __builtin_trap();
        ag_valuefrom_clear(&v);
    } else if (!err[0]) {
        __builtin_trap(); /* every refusal says why */
    }
    es_free(s);
    return 0;
}
