/* td_json.h - the small helpers the task-definition parsers share (taskdef.c,
 * td_runtime.c): ECS-shaped refusals, field paths, members, the string-list
 * writer. Private to agent/tasks/. */
#ifndef AG_TD_JSON_H
#define AG_TD_JSON_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
