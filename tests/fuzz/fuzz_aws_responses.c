/* Fuzzes the parsers of AWS answers: the expat XML picker (STS), and the
 * SSM (GetParameters and GetParametersByPath's pages), Secrets Manager and
 * STS result parsers, and S3's GetBucketLocation answer. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/endpoint.h"
#include "aws/s3.h"
#include "aws/secretsmanager.h"
#include "aws/ssm.h"
#include "aws/sts.h"
#include "aws/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    aw_ssm_result r;
    if (aw_ssm_parse_result(s, size, &r) == 0) {
        for (size_t i = 0; i < r.n_params; i++)
            if (!r.params[i].name || !r.params[i].value)
                __builtin_trap();
        /* GetParametersByPath's page token: absent or 1..AW_SSM_NEXT_TOKEN_MAX */
        if (r.next_token && (!*r.next_token || strlen(r.next_token) > AW_SSM_NEXT_TOKEN_MAX))
            __builtin_trap();
        aw_ssm_result_clear(&r);
    }
    aw_secret_value v;
    if (aw_sm_parse_value(s, size, &v) == 0) {
        if (!v.string && !v.is_binary)
            __builtin_trap();
        aw_secret_value_clear(&v);
    }
    aw_sts_credentials c;
    if (aw_sts_parse_assume_role(s, size, &c) == 0) {
        if (!c.access_key_id || !c.secret_access_key || !c.session_token)
            __builtin_trap();
        aw_sts_credentials_clear(&c);
    }
    aw_sts_identity id;
    if (aw_sts_parse_caller_identity(s, size, &id) == 0)
        aw_sts_identity_clear(&id);
    char region[AW_REGION_MAX + 1];
    if (aw_s3_parse_location(s, size, region, sizeof region) == 0 && !aw_region_valid(region))
        __builtin_trap();
    static const char *const paths[] = {"a", "a/b", "ErrorResponse/Error/Code"};
    char *vals[3];
    if (aw_xml_pick(s, size, paths, 3, vals) == 0)
        aw_xml_pick_free(vals, 3);
    return 0;
}
