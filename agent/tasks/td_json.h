/* td_json.h - the small helpers the task-definition parsers share (taskdef.c,
 * td_runtime.c, td_volumes.c): ECS-shaped refusals, field paths, members,
 * typed readers with their refusals, the string-list writer. Private to
 * agent/tasks/. */
#ifndef AG_TD_JSON_H
#define AG_TD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/tasks/taskdef.h"
#include "common/json.h"

/* Fills e (code, message) and returns -EINVAL. */
int ag_td_bad(ag_td_error *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ServerException "out of memory"; returns -ENOMEM. */
int ag_td_nomem(ag_td_error *e);
/* A field path for messages; one longer than the buffer is cut short. */
void ag_td_pathf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A member that is absent or null counts as absent: NULL. */
const es_json *ag_td_member(const es_json *obj, const char *key);
bool ag_td_in_list(const char *s, const char *const *list, size_t n);
/* "key": [strings], nothing when v is NULL (an empty list stays present). */
void ag_td_w_strv(es_jw *w, const char *key, char *const *v, size_t n);

#define AG_TD_FIELD_PATH_MAX 200 /* a member's path in a message */

/* A string of at most max bytes, UTF-8, no NUL; empty refused unless
 * allow_empty. */
int ag_td_str_at(const es_json *j, const char *path, size_t max, bool allow_empty, char **out,
                 ag_td_error *e);
/* obj.key as a string; absent leaves *out NULL unless required. */
int ag_td_str_member(const es_json *obj, const char *path, const char *key, size_t max,
                     bool required, char **out, ag_td_error *e);
/* An integer between min and max. */
int ag_td_int_at(const es_json *j, const char *path, int64_t min, int64_t max, int64_t *out,
                 ag_td_error *e);
/* obj.key as an integer; *has false when absent. */
int ag_td_int_member(const es_json *obj, const char *path, const char *key, int64_t min,
                     int64_t max, bool *has, int64_t *out, ag_td_error *e);
int ag_td_bool_member(const es_json *obj, const char *path, const char *key, ag_opt_bool *out,
                      ag_td_error *e);
/* A list member: NULL when absent (*rc 0), else a checked array of at most
 * max entries; lpath receives its path. */
const es_json *ag_td_list_member(const es_json *obj, const char *path, const char *key, size_t max,
                                 char *lpath, size_t lpath_len, int *rc, ag_td_error *e);
/* obj's members must all be in names (n of them): a sub-member this agent
 * does not know is refused by name, as the top-level ones are. */
int ag_td_known_members(const es_json *obj, const char *path, const char *shape,
                        const char *const *names, size_t n, ag_td_error *e);

#endif
