/* The embedded ECR (aws/local/ecr.h): GetAuthorizationToken answers ECR's
 * shape with the configured registry's USERNAME:PASSWORD as the token,
 * authorised as ecr:GetAuthorizationToken on "*"; registryIds of another
 * account, no registry configured, and a credentials file that is missing,
 * readable by others or not one line are refused, naming the file and never
 * its content; the agent's parser reads the answer back. */
#include "al_helpers.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "aws/ecr.h"
#include "aws/local/ecr.h"

#define TGT "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
#define PASSWORD "reg-Pa55-w0rd"

static char cred_path[600];

static void write_cred(const char *content, mode_t mode)
{
    snprintf(cred_path, sizeof cred_path, "%s/ecr-credentials", T.dir);
    unlink(cred_path);
    int fd = open(cred_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    cr_assert_eq(chmod(cred_path, mode), 0);
}

static void with_registry(void)
{
    write_cred("reguser:" PASSWORD "\n", 0600);
    T.ecr_registry = "127.0.0.1:5000";
    T.ecr_credentials_file = cred_path;
    alt_reopen();
}

TestSuite(al_ecr, .init = alt_setup, .fini = alt_teardown);

Test(al_ecr, token_is_the_registry_user)
{
    with_registry();
    ok(TGT, "{}");
    cr_assert_str_eq(T.last_action, "ecr:GetAuthorizationToken");
    cr_assert_str_eq(T.last_resource, "*");
    aw_ecr_token t;
    cr_assert_eq(aw_ecr_parse_token(T.out.data, T.out.len, &t), 0, "%s", es_buf_cstr(&T.out));
    cr_assert_str_eq(t.username, "reguser");
    cr_assert_str_eq(t.password, PASSWORD);
    cr_assert_eq(t.expires_at, (int64_t)T.now + AL_ECR_TOKEN_TTL_S);
    cr_assert_str_eq(t.proxy_endpoint, "https://127.0.0.1:5000");
    aw_ecr_token_clear(&t);
    /* the account's own registry asked by id, as ECS's agent asks */
    ok(TGT, "{\"registryIds\":[\"123456789012\"]}");
    /* the file is read at each call: a new password without a restart */
    write_cred("reguser:new-" PASSWORD, 0640);
    ok(TGT, "{}");
    cr_assert_eq(aw_ecr_parse_token(T.out.data, T.out.len, &t), 0);
    cr_assert_str_eq(t.password, "new-" PASSWORD);
    aw_ecr_token_clear(&t);
}

Test(al_ecr, refusals)
{
    fails(TGT, "{}", "InvalidParameterException"); /* no registry configured */
    cr_assert(strstr(T.err.message, "ECS_SECRETS_ECR_REGISTRY"), "%s", T.err.message);
    with_registry();
    fails(TGT, "{\"registryIds\":[\"210987654321\"]}", "InvalidParameterException");
    cr_assert(strstr(T.err.message, "account 123456789012 only, not 210987654321"), "%s",
              T.err.message);
    fails(TGT, "{\"registryIds\":[\"12345\"]}", "InvalidParameterException");
    fails(TGT, "{\"registryIds\":[]}", "InvalidParameterException");
    fails(TGT, "{\"registryIds\":\"123456789012\"}", "InvalidParameterException");
    T.deny_action = "ecr:GetAuthorizationToken";
    int st = call(TGT, "{}");
    cr_assert_eq(st, 400);
    cr_assert_str_eq(T.err.code, "AccessDeniedException");
    T.deny_action = NULL;
    static const struct {
        const char *content;
        mode_t mode;
        const char *why;
    } bad[] = {
        {"reguser:" PASSWORD, 0644, "readable by others"},
        {PASSWORD, 0600, "is not one USERNAME:PASSWORD line"},
        {":" PASSWORD, 0600, "is not one USERNAME:PASSWORD line"},
        {"reguser:", 0600, "is not one USERNAME:PASSWORD line"},
        {"reguser:" PASSWORD "\nother:x", 0600, "is not one USERNAME:PASSWORD line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_cred(bad[i].content, bad[i].mode);
        fails(TGT, "{}", "ServerException");
        cr_assert(strstr(T.err.message, cred_path) && strstr(T.err.message, bad[i].why), "%zu: %s",
                  i, T.err.message);
        cr_assert_null(strstr(T.err.message, PASSWORD), "%zu: no password in the error", i);
    }
    unlink(cred_path);
    fails(TGT, "{}", "ServerException");
    cr_assert(strstr(T.err.message, "No such file"), "%s", T.err.message);
    char big[AL_ECR_CREDENTIALS_MAX + 16];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[3] = ':';
    write_cred(big, 0600);
    fails(TGT, "{}", "ServerException");
    cr_assert(strstr(T.err.message, "too large"), "%s", T.err.message);
}
