/* alloc.h - the one allocation wrapper of the project.
 *
 * Every module allocates through these so that tests can make the Nth
 * allocation fail (es_alloc_fail_after) and prove that each error path
 * releases what it took. They return NULL on failure like malloc; callers
 * turn that into -ENOMEM. */
#ifndef ES_COMMON_ALLOC_H
#define ES_COMMON_ALLOC_H

#include <stddef.h>

void *es_malloc(size_t n);
void *es_calloc(size_t count, size_t size);
void *es_realloc(void *p, size_t n);
char *es_strdup(const char *s);
char *es_strndup(const char *s, size_t n);
void es_free(void *p);

/* Tests only: make allocations fail once `n` more have succeeded; a negative
 * n turns injection off. */
void es_alloc_fail_after(long n);

#endif
