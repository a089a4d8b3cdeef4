#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

static char last[4096];
static es_log_level last_level;

static void sink(es_log_level l, const char *line, void *arg)
{
    (void)arg;
    last_level = l;
    snprintf(last, sizeof last, "%s", line);
}

Test(log, levels_filter)
{
    es_log_set_sink(sink, NULL);
    es_log_set_level(ES_LOG_WARN);
    last[0] = '\0';
    es_info("hidden");
    cr_assert_str_eq(last, "");
    es_err("shown %d", 1);
    cr_assert_str_eq(last, "shown 1");
    cr_assert_eq(last_level, ES_LOG_ERROR);
    es_log_set_sink(NULL, NULL);
}

Test(log, redaction_choke_point)
{
    es_log_set_sink(sink, NULL);
    es_log_set_level(ES_LOG_DEBUG);
    es_debug("req Authorization: AWS4-HMAC-SHA256 Credential=AKID/x, Signature=abcdef0123");
    cr_assert_null(strstr(last, "abcdef0123"), "%s", last);
    cr_assert_null(strstr(last, "AKID"), "%s", last);
    es_debug("url ?X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok123&x=1");
    cr_assert_null(strstr(last, "deadbeef"), "%s", last);
    cr_assert_null(strstr(last, "tok123"), "%s", last);
    cr_assert_not_null(strstr(last, "x=1"), "%s", last);
    es_debug("{\"SecretAccessKey\":\"wJalrXUtnFEMI\",\"SessionToken\":\"FQoG\",\"Other\":\"ok\"}");
    cr_assert_null(strstr(last, "wJalrXUtnFEMI"), "%s", last);
    cr_assert_null(strstr(last, "FQoG"), "%s", last);
    cr_assert_not_null(strstr(last, "\"Other\":\"ok\""), "%s", last);
    es_debug("aws_secret_access_key = abc/def+ghi");
    cr_assert_null(strstr(last, "abc/def+ghi"), "%s", last);
    /* the awslogs credentials path's id, as Docker quotes an unreachable URL */
    es_debug("Get \"http://169.254.170.2@127.0.0.1:9/v2/credentials/00aa11bb22\": dial tcp");
    cr_assert_null(strstr(last, "00aa11bb22"), "%s", last);
    cr_assert_not_null(strstr(last, "/v2/credentials/***\": dial tcp"), "%s", last);
    es_log_set_sink(NULL, NULL);
}

Test(log, newlines_cannot_forge_lines)
{
    es_log_set_sink(sink, NULL);
    es_log_set_level(ES_LOG_INFO);
    es_info("name=%s", "x\n2026-01-01T00:00:00Z error: forged");
    cr_assert_null(strchr(last, '\n'));
    es_log_set_sink(NULL, NULL);
}

Test(log, parse_levels)
{
    es_log_level l;
    cr_assert_eq(es_log_level_parse("DEBUG", &l), 0);
    cr_assert_eq(l, ES_LOG_DEBUG);
    cr_assert_eq(es_log_level_parse("warning", &l), 0);
    cr_assert_eq(l, ES_LOG_WARN);
    cr_assert_neq(es_log_level_parse("loud", &l), 0);
}
