/* test_envfile.c - ECS environment files: the reading of one file (ECS's
 * rules and our limits) and the precedence between environment, files and
 * secrets. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/secrets/envfile.h"

/* The entries of env joined with '|' (for one assertion). */
static const char *joined(const es_buf *env)
{
    static char s[4096];
    size_t k = 0;
    for (size_t at = 0; at < env->len && k + 1 < sizeof s; at++)
        s[k++] = env->data[at] ? env->data[at] : '|';
    s[k] = '\0';
    return s;
}

static const char *parsed(const char *text)
{
    es_buf env;
    es_buf_init(&env, AG_ENVFILE_ENV_MAX);
    char err[256] = "";
    cr_assert_eq(ag_envfile_parse(text, strlen(text), &env, err, sizeof err), 0, "%s", err);
    const char *s = joined(&env);
    es_buf_free_secret(&env);
    return s;
}

Test(envfile, ecs_rules)
{
    cr_assert_str_eq(parsed(""), "");
    cr_assert_str_eq(parsed("A=1\nB=2"), "A=1|B=2|", "no newline at the end");
    cr_assert_str_eq(parsed("# comment=x\n\nA=1\r\n\n#B=2\n"), "A=1|",
                     "comments, blank lines and CRLF");
    cr_assert_str_eq(parsed("URL=http://h/?a=b\n"), "URL=http://h/?a=b|", "split at the first '='");
    cr_assert_str_eq(parsed("Q=\"quoted\" 'as is'\n"), "Q=\"quoted\" 'as is'|", "no quoting");
    cr_assert_str_eq(parsed("NOEQUALS\n=novalue\nEMPTY=\nA=1\n"), "A=1|",
                     "a line without a name, '=' or value is skipped, as ECS does");
    cr_assert_str_eq(parsed("A=1\nB=2\nA=3\n"), "B=2|A=3|", "a later line wins");
    cr_assert_str_eq(parsed(" A=1\n"), " A=1|", "nothing is trimmed");
}

Test(envfile, limits_and_bad_input)
{
    es_buf env;
    es_buf_init(&env, AG_ENVFILE_ENV_MAX);
    char err[256];
    cr_assert_eq(ag_envfile_parse("A=1\nB=x\0y\n", 10, &env, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "NUL"));
    cr_assert_eq(env.len, 0);
    static char big[AG_ENVFILE_BYTES_MAX + 2];
    memset(big, 'x', sizeof big);
    cr_assert_eq(ag_envfile_parse(big, sizeof big, &env, err, sizeof err), -EMSGSIZE);
    char name[AG_ENVFILE_NAME_MAX + 8];
    memset(name, 'N', AG_ENVFILE_NAME_MAX + 1);
    snprintf(name + AG_ENVFILE_NAME_MAX + 1, sizeof name - (AG_ENVFILE_NAME_MAX + 1), "=v\n");
    cr_assert_eq(ag_envfile_parse(name, strlen(name), &env, err, sizeof err), -EMSGSIZE);
    cr_assert(strstr(err, "line 1"), "%s", err);
    cr_assert_null(strstr(err, "NNNN"), "a refusal never quotes the file");
    static char many[(AG_ENVFILE_VARS_MAX + 1) * 16];
    size_t k = 0;
    for (int i = 0; i <= AG_ENVFILE_VARS_MAX; i++)
        k += (size_t)snprintf(many + k, sizeof many - k, "V%d=1\n", i);
    cr_assert_eq(ag_envfile_parse(many, k, &env, err, sizeof err), -EMSGSIZE);
    cr_assert_eq(env.len, 0, "nothing is kept of a refused file");
    es_buf_free_secret(&env);
}

Test(envfile, precedence)
{
    const char *texts[] = {"SHARED=one\nBOTH=file-one\nDB=from-file\n",
                           "BOTH=file-two\nSECOND=two\nSHARED=two\n"};
    es_buf files[2];
    char err[256];
    for (int i = 0; i < 2; i++) {
        es_buf_init(&files[i], AG_ENVFILE_ENV_MAX);
        cr_assert_eq(ag_envfile_parse(texts[i], strlen(texts[i]), &files[i], err, sizeof err), 0);
    }
    /* SHARED is in environment, DB a secret's name: both win over the files */
    const char *taken[] = {"SHARED", "DB"};
    es_buf out;
    es_buf_init(&out, AG_ENVFILE_ENV_MAX);
    cr_assert_eq(ag_envfile_merge(files, 2, taken, 2, &out), 0);
    cr_assert_str_eq(joined(&out), "BOTH=file-one|SECOND=two|", "the first file wins");
    es_buf_free_secret(&out);
    es_buf_free_secret(&files[0]);
    es_buf_free_secret(&files[1]);
}
