/* The query protocol: form decoding with its limits, the XML writer's
 * escaping, and the dispatcher's envelope and errors. */
#include "iam_helpers.h"

#include <stdarg.h>

#include "common/secure.h"

TestSuite(al_query, .init = alt_setup, .fini = alt_teardown);

static al_form *parse_ok(const char *s)
{
    al_form *f = NULL;
    int r = al_form_parse(s, strlen(s), &f);
    cr_assert_eq(r, 0, "%s -> %d", s, r);
    return f;
}

static int parse_err(const char *s, size_t n)
{
    al_form *f = NULL;
    int r = al_form_parse(s, n, &f);
    cr_assert_null(f);
    return r;
}

Test(al_query, form_decoding)
{
    al_form *f = parse_ok("Action=CreateRole&RoleName=a%2Bb+c&Empty=&Flag&Tags.member.2=two&"
                          "Tags.member.1=one&&Doc=%7B%22x%22%3A1%7D");
    cr_assert_str_eq(al_form_get(f, "Action"), "CreateRole");
    cr_assert_str_eq(al_form_get(f, "RoleName"), "a+b c");
    cr_assert_str_eq(al_form_get(f, "Empty"), "");
    cr_assert_str_eq(al_form_get(f, "Flag"), "");
    cr_assert_str_eq(al_form_get(f, "Doc"), "{\"x\":1}");
    cr_assert_str_eq(al_form_member(f, "Tags", 1), "one");
    cr_assert_str_eq(al_form_member(f, "Tags", 2), "two");
    cr_assert_null(al_form_member(f, "Tags", 3));
    cr_assert_null(al_form_get(f, "action"), "keys are case-sensitive");
    cr_assert_eq(al_form_count(f), 7);
    al_form_free(f);
    f = parse_ok("");
    cr_assert_eq(al_form_count(f), 0);
    al_form_free(f);
    al_form_free(NULL);
}

Test(al_query, form_bad_input)
{
    cr_assert_eq(parse_err("A=%", 3), -EINVAL);
    cr_assert_eq(parse_err("A=%4", 4), -EINVAL);
    cr_assert_eq(parse_err("A=%zz", 5), -EINVAL);
    cr_assert_eq(parse_err("A=%00", 5), -EINVAL, "decoded NUL");
    cr_assert_eq(parse_err("A=x\0y", 5), -EINVAL, "raw NUL");
    cr_assert_eq(parse_err("=x", 2), -EINVAL, "empty key");
    cr_assert_eq(parse_err("A=1&A=2", 7), -EINVAL, "repeated key");
    /* limits */
    es_buf b;
    es_buf_init(&b, AL_FORM_MAX_BYTES * 2);
    for (int i = 0; i < AL_FORM_MAX_PARAMS + 1; i++)
        es_buf_printf(&b, "%sk%d=v", i ? "&" : "", i);
    cr_assert_eq(parse_err(b.data, b.len), -E2BIG);
    es_buf_reset(&b);
    for (int i = 0; i < AL_FORM_MAX_PARAMS; i++)
        es_buf_printf(&b, "%sk%d=v", i ? "&" : "", i);
    al_form *f = parse_ok(es_buf_cstr(&b));
    cr_assert_eq(al_form_count(f), AL_FORM_MAX_PARAMS);
    al_form_free(f);
    es_buf_reset(&b);
    for (int i = 0; i < AL_FORM_KEY_MAX + 1; i++)
        es_buf_append_char(&b, 'k');
    es_buf_append_str(&b, "=v");
    cr_assert_eq(parse_err(b.data, b.len), -E2BIG, "key too long");
    es_buf_reset(&b);
    es_buf_append_str(&b, "A=");
    while (b.len <= AL_FORM_MAX_BYTES)
        es_buf_append_char(&b, 'x');
    cr_assert_eq(parse_err(b.data, b.len), -EMSGSIZE);
    es_buf_free(&b);
}

static const char *xw_text(const char *s, size_t n)
{
    es_buf_reset(&T.out);
    al_xw w;
    al_xw_init(&w, &T.out);
    al_xw_text(&w, s, n);
    cr_assert_eq(w.err, 0);
    return es_buf_cstr(&T.out);
}

Test(al_query, xml_escaping)
{
    cr_assert_str_eq(xw_text("a&b<c>d\"e'f", 11), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    cr_assert_str_eq(xw_text("x\ty\nz\r", 6), "x&#9;y&#10;z&#13;");
    cr_assert_str_eq(xw_text("a\x01"
                             "b\x7f",
                             4),
                     "a\xef\xbf\xbd"
                     "b\xef\xbf\xbd");
    cr_assert_str_eq(xw_text("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9),
                     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "valid UTF-8 kept");
    cr_assert_str_eq(xw_text("\xc3(", 2), "\xef\xbf\xbd(", "truncated sequence");
    cr_assert_str_eq(xw_text("\xc0\xaf", 2), "\xef\xbf\xbd\xef\xbf\xbd", "overlong");
    cr_assert_str_eq(xw_text("\xed\xa0\x80", 3), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
                     "surrogate");
    cr_assert_str_eq(xw_text("\xef\xbf\xbe", 3), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "U+FFFE");
    es_buf_reset(&T.out);
    al_xw w;
    al_xw_init(&w, &T.out);
    al_xw_elem_urlenc(&w, "D", "{\"a\": \"b/c*\"}");
    al_xw_elem_time(&w, "T", 1700000000.5);
    cr_assert_str_eq(es_buf_cstr(&T.out),
                     "<D>%7B%22a%22%3A%20%22b%2Fc%2A%22%7D</D><T>2023-11-14T22:13:20Z</T>");
}

Test(al_query, xml_writer_limit)
{
    es_buf small;
    es_buf_init(&small, 16);
    al_xw w;
    al_xw_init(&w, &small);
    al_xw_elem(&w, "Name", "a value longer than sixteen bytes");
    cr_assert_eq(w.err, -EMSGSIZE);
    es_buf_free(&small);
}

Test(al_query, dispatcher_errors)
{
    const char *b = "Version=2010-05-08";
    cr_assert_lt(al_query_dispatch(T.ctx, "iam", ROOT, b, strlen(b), &T.out, &T.err), 0);
    cr_assert_str_eq(T.err.code, "MissingAction");
    qfail(400, "InvalidAction", "iam", "NoSuchThing", NULL);
    qfail(400, "InvalidAction", "sts", "CreateRole", NULL);
    b = "Action=GetRole&Version=2011-06-15&RoleName=x";
    cr_assert_lt(al_query_dispatch(T.ctx, "iam", ROOT, b, strlen(b), &T.out, &T.err), 0);
    cr_assert_str_eq(T.err.code, "InvalidAction", "wrong version");
    cr_assert_lt(al_query_dispatch(T.ctx, "s3", ROOT, b, strlen(b), &T.out, &T.err), 0);
    b = "Action=GetRole&RoleName=%zz";
    cr_assert_lt(al_query_dispatch(T.ctx, "iam", ROOT, b, strlen(b), &T.out, &T.err), 0);
    cr_assert_str_eq(T.err.code, "MalformedQueryString");
    cr_assert_eq(T.out.len, 0);
    cr_assert(al_query_is_action("iam", "CreateRole"));
    cr_assert(al_query_is_action("sts", "AssumeRole"));
    cr_assert_not(al_query_is_action("sts", "CreateRole"));
    cr_assert_not(al_query_is_action("iam", NULL));
}

Test(al_query, error_document)
{
    qfail(404, "NoSuchEntity", "iam", "GetRole", "RoleName", "missing", NULL);
    es_buf_reset(&T.out);
    cr_assert_eq(al_query_error_xml("iam", &T.err, &T.out), 0);
    const char *x = es_buf_cstr(&T.out);
    cr_assert_eq(strncmp(x,
                         "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"
                         "<Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role "
                         "with name missing cannot be found.</Message></Error><RequestId>",
                         strlen("<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/"
                                "\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>"
                                "The role with name missing cannot be found.</Message></Error>"
                                "<RequestId>")),
                 0, "%s", x);
    cr_assert_not_null(strstr(x, "</RequestId></ErrorResponse>"));
}
