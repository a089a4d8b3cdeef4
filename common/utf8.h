/* utf8.h - strict UTF-8: the one validator for text the project accepts
 * from outside and keeps (task definitions) or writes into XML answers.
 *
 * Strict as RFC 3629 and XML 1.0 want it: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing past U+10FFFF, and not the noncharacters U+FFFE
 * and U+FFFF. (The JSON writer, common/json.c, keeps yajl's own, looser rule
 * on purpose: it must accept whatever yajl's parser handed over.) */
#ifndef ES_COMMON_UTF8_H
#define ES_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid sequence at s[0..n) (1 for ASCII), 0 when invalid or
 * cut short. n >= 1. */
size_t es_utf8_len(const unsigned char *s, size_t n);
/* true when s[0..n) is all valid sequences. */
bool es_utf8_valid(const char *s, size_t n);

#endif
