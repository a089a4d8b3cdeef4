/* ssm.h - Systems Manager Parameter Store reads: GetParameters (up to 10
 * names a call, WithDecryption=true), GetParameter, a batching helper
 * that splits N names into ceil(N/10) GetParameters calls, all in flight at
 * once, and merges their answers, and GetParametersByPath's page series
 * (every parameter under a path, recursively, one merged result).
 *
 * Results are valid during the callback only; values are secrets and are
 * wiped when the callback returns. A callback that keeps a value steals it
 * (sets the pointer to NULL) and wipes it itself. */
#ifndef ES_AWS_SSM_H
#define ES_AWS_SSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"
#include "common/json.h"

#define AW_SSM_NAMES_PER_CALL 10
#define AW_SSM_NAME_MAX 2048
#define AW_SSM_BATCH_MAX 1000       /* names per batch */
#define AW_SSM_PATH_PAGE 10         /* GetParametersByPath MaxResults: AWS's maximum */
#define AW_SSM_PATH_PARAMS_MAX 1000 /* parameters one path series gathers at most */
/* Pages one series asks for at most: AWS may answer short or empty pages with
 * a NextToken (filters, limits), so twice the full pages; a series still
 * paging after that fails instead of looping on a service that never ends. */
#define AW_SSM_PATH_PAGES_MAX (2 * AW_SSM_PATH_PARAMS_MAX / AW_SSM_PATH_PAGE)
#define AW_SSM_NEXT_TOKEN_MAX 4096 /* a NextToken as answered */

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
    char *next_token; /* GetParametersByPath: the next page's, NULL on the last */
    bool truncated;   /* a path series stopped at its max_params with more left */
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

/* GetParametersByPath of path (1..AW_SSM_NAME_MAX, starting with '/'),
 * Recursive, WithDecryption as decrypt, AW_SSM_PATH_PAGE a page, page after
 * page (NextToken) until the last, into one result. At most max_params
 * (1..AW_SSM_PATH_PARAMS_MAX) parameters: with more under the path the
 * result holds the first max_params and truncated is set. The first error
 * ends the series (no partial result); so do more than
 * AW_SSM_PATH_PAGES_MAX pages or a page longer than asked (AW_ERR_RESPONSE).
 * creds and path are copied (later pages sign with the copy, wiped at the
 * end). */
int aw_ssm_get_parameters_by_path(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                                  const char *path, bool decrypt, size_t max_params, aw_ssm_cb cb,
                                  void *arg);

/* Parses a GetParameters / GetParameter / GetParametersByPath answer (exposed for tests and the
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
