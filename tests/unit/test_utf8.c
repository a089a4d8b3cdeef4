/* common/utf8.h: the strict validator task definitions and XML answers use. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/utf8.h"

static bool ok(const char *s)
{
    return es_utf8_valid(s, strlen(s));
}

Test(utf8, accepts_every_length)
{
    cr_assert(ok(""));
    cr_assert(ok("plain ASCII"));
    cr_assert(ok("caf\xc3\xa9"));      /* U+00E9 */
    cr_assert(ok("\xe2\x82\xac"));     /* U+20AC */
    cr_assert(ok("\xf0\x9f\x94\x91")); /* U+1F511 */
    cr_assert(ok("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    cr_assert_eq(es_utf8_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
    cr_assert_eq(es_utf8_len((const unsigned char *)"A", 1), 1);
}

Test(utf8, refuses_what_rfc_3629_and_xml_refuse)
{
    cr_assert_not(ok("\xc0\x80"), "overlong NUL");
    cr_assert_not(ok("\xc1\xbf"), "overlong 2-byte");
    cr_assert_not(ok("\xe0\x80\x80"), "overlong 3-byte");
    cr_assert_not(ok("\xf0\x80\x80\x80"), "overlong 4-byte");
    cr_assert_not(ok("\xed\xa0\x80"), "a surrogate");
    cr_assert_not(ok("\xf4\x90\x80\x80"), "past U+10FFFF");
    cr_assert_not(ok("\xef\xbf\xbe"), "U+FFFE");
    cr_assert_not(ok("\xef\xbf\xbf"), "U+FFFF");
    cr_assert_not(ok("\x80"), "a lone continuation byte");
    cr_assert_not(ok("\xff"), "not a lead byte");
    cr_assert_not(ok("ok \xe2\x82"), "cut short at the end");
    cr_assert_not(ok("\xe2\x28\xa1"), "a continuation that is not one");
    cr_assert_eq(es_utf8_len((const unsigned char *)"\xe2\x82\xac", 2), 0, "n counts");
}
