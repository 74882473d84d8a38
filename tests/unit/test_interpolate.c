/* Unit tests: Compose-style interpolation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/util.h"

/* Variables: SET=value, EMPTY="", NUM=42; everything else unset. */
static const char *lookup(void *data, const char *name)
{
    (void)data;
    if (!strcmp(name, "SET")) return "value";
    if (!strcmp(name, "EMPTY")) return "";
    if (!strcmp(name, "NUM")) return "42";
    return NULL;
}

static void expands(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain", "plain"},
        {"${SET}", "value"},
        {"$SET", "value"},
        {"a${SET}b", "avalueb"},
        {"$SET/x", "value/x"},
        {"${UNSET}", ""},
        {"$UNSET-x", "-x"},
        {"${UNSET:-d}", "d"},
        {"${EMPTY:-d}", "d"},
        {"${SET:-d}", "value"},
        {"${UNSET-d}", "d"},
        {"${EMPTY-d}", ""},
        {"${SET:+alt}", "alt"},
        {"${EMPTY:+alt}", ""},
        {"${EMPTY+alt}", "alt"},
        {"${UNSET+alt}", ""},
        {"${SET:?must}", "value"},
        {"${EMPTY?must}", ""},
        {"$$", "$"},
        {"$${SET}", "${SET}"},
        {"$$SET", "$SET"},
        {"cost: 5$", "cost: 5$"},
        {"$1 and $ x", "$1 and $ x"},
        {"${UNSET:-${SET}}", "value"},
        {"${UNSET:-${ALSO:-deep}}", "deep"},
        {"${UNSET:-a:b/c}", "a:b/c"},
        {"http://127.0.0.1:${NUM}/x", "http://127.0.0.1:42/x"},
        {"${UNSET:-$$}", "$"},
        {"${UNSET:-}", ""},
        {"daemon off;", "daemon off;"},
    };
    (void)state;
    for (size_t i = 0; i < CI_ARRAY_SIZE(cases); i++) {
        char *out = NULL, err[256];
        int r = ci_interpolate(cases[i].in, lookup, NULL, &out, err, sizeof(err));
        if (r) fail_msg("\"%s\": %s", cases[i].in, err);
        if (strcmp(out, cases[i].out)) fail_msg("\"%s\" -> \"%s\"", cases[i].in, out);
        free(out);
    }
}

static void errors(void **state)
{
    static const struct {
        const char *in, *err;
    } cases[] = {
        {"${UNSET:?set it}", "required variable UNSET is missing a value: set it"},
        {"${EMPTY:?set it}", "required variable EMPTY is missing a value: set it"},
        {"${UNSET?}", "required variable UNSET is missing a value"},
        {"${UNSET:?need ${SET}}", "required variable UNSET is missing a value: need value"},
        {"abc${SET", "unterminated \"${\" in \"abc${SET\""},
        {"${", "unterminated \"${\" in \"${\""},
        {"${}", "invalid interpolation format \"${}\""},
        {"${1A}", "invalid interpolation format \"${1A}\""},
        {"${A B}", "invalid interpolation format \"${A B}\""},
        {"${A:x}", "invalid interpolation format \"${A:x}\""},
        {"${UNSET:-${X:?inner}}", "required variable X is missing a value: inner"},
    };
    (void)state;
    for (size_t i = 0; i < CI_ARRAY_SIZE(cases); i++) {
        char *out = (char *)"sentinel", err[256];
        int r = ci_interpolate(cases[i].in, lookup, NULL, &out, err, sizeof(err));
        if (r != -EINVAL) fail_msg("\"%s\" accepted", cases[i].in);
        assert_null(out);
        assert_string_equal(err, cases[i].err);
    }
}

static void null_lookup_means_unset(void **state)
{
    char *out, err[64];
    (void)state;
    assert_int_equal(ci_interpolate("${X:-d}$Y.", NULL, NULL, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "d.");
    free(out);
}

static void deep_nesting_is_bounded(void **state)
{
    char in[4096], *out = NULL, err[128];
    size_t n = 0;
    (void)state;
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(in + n, sizeof(in) - n, "${A:-");
    for (int i = 0; i < 100; i++) in[n++] = '}';
    in[n] = '\0';
    assert_int_equal(ci_interpolate(in, lookup, NULL, &out, err, sizeof(err)), -EINVAL);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expands),
        cmocka_unit_test(errors),
        cmocka_unit_test(null_lookup_means_unset),
        cmocka_unit_test(deep_nesting_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
