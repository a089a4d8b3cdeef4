/* ssm.h - Systems Manager Parameter Store reads: GetParameters (up to 10
 * names a call, WithDecryption=true), GetParameter, and a batching helper
 * that splits N names into ceil(N/10) GetParameters calls, all in flight at
 * once, and merges their answers.
 *
 * Results are valid during the callback only; values are secrets and are
 * wiped when the callback returns. A callback that keeps a value steals it
 * (sets the pointer to NULL) and wipes it itself. */
#ifndef ES_AWS_SSM_H
#define ES_AWS_SSM_H

#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"
#include "common/json.h"

#define AW_SSM_NAMES_PER_CALL 10
#define AW_SSM_NAME_MAX 2048
#define AW_SSM_BATCH_MAX 1000 /* names per batch */

typedef struct aw_ssm_parameter {
    char *name;
    char *type;  /* String, StringList, SecureString */
    char *value; /* secret */
    int64_t version;
    char *arn;
    char *selector;      /* NULL when absent */
    char *source_result; /* NULL when absent */
    char *data_type;
    double last_modified; /* epoch seconds, 0 when absent */
} aw_ssm_parameter;

typedef struct aw_ssm_result {
    aw_ssm_parameter *params;
    size_t n_params;
    char **invalid; /* names SSM did not find */
    size_t n_invalid;
} aw_ssm_result;

/* err NULL on success. res valid during the call. */
typedef void (*aw_ssm_cb)(void *arg, const aw_error *err, aw_ssm_result *res);

/* 1..10 names, each 1..AW_SSM_NAME_MAX; region NULL for the client's. */
int aw_ssm_get_parameters(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                          const char *const *names, size_t n, aw_ssm_cb cb, void *arg);
/* One name; "not found" is the service error ParameterNotFound. */
int aw_ssm_get_parameter(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                         const char *name, aw_ssm_cb cb, void *arg);
/* 1..AW_SSM_BATCH_MAX names: ceil(n/10) calls at once; one merged result,
 * or the first error once every call has ended. */
int aw_ssm_get_parameters_batch(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                                const char *const *names, size_t n, aw_ssm_cb cb, void *arg);

/* Parses a GetParameters / GetParameter answer (exposed for tests and the
 * fuzz driver). 0, -EPROTO (not the expected shape), -ENOMEM. */
int aw_ssm_parse_result(const char *body, size_t len, aw_ssm_result *out);
/* Wipes values and frees everything; leaves *r empty. */
void aw_ssm_result_clear(aw_ssm_result *r);

/* DescribeParameters' filter on exact names, written into an open object:
 * "ParameterFilters":[{"Key":"Name","Option":"Equals","Values":[ ... then
 * the caller writes each name with es_jw_str, then closes with _end. */
void aw_ssm_name_filter_begin(es_jw *w);
void aw_ssm_name_filter_end(es_jw *w);

#endif
