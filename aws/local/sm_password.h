/* sm_password.h - Secrets Manager's GetRandomPassword, and the generator the
 * built-in rotator uses (the operation's defaults). */
#ifndef AL_SM_PASSWORD_H
#define AL_SM_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/local/internal.h"

#define AL_SM_PASSWORD_MAX 4096
#define AL_SM_PASSWORD_DEFAULT 32
/* AWS's punctuation set: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ */
#define AL_SM_PUNCTUATION "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

typedef struct al_sm_pw_opts {
    size_t length;
    const char *exclude; /* ExcludeCharacters, NULL: none */
    bool no_numbers, no_punctuation, no_upper, no_lower, space, each_type;
} al_sm_pw_opts;

/* GetRandomPassword's defaults: 32 characters of every type but space, one
 * of each at least. */
void al_sm_pw_defaults(al_sm_pw_opts *o);
/* Draws a password into out[o->length + 1] (es_malloc'ed, wipe with
 * es_free_secret_str). -EINVAL with e filled (InvalidParameterException)
 * when no character is left to draw from or the length cannot hold one of
 * each type; -EIO when the RNG failed. */
int al_sm_random_password(const al_sm_pw_opts *o, char **out, al_error *e);

int al_sm_get_random_password(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e);

#endif
