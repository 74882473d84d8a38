/* Unit tests: signal names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>

#include "chroma_init/util.h"

static void parses_names_and_numbers(void **state)
{
    (void)state;
    assert_int_equal(ci_signal_parse("SIGQUIT"), SIGQUIT);
    assert_int_equal(ci_signal_parse("QUIT"), SIGQUIT);
    assert_int_equal(ci_signal_parse("quit"), SIGQUIT);
    assert_int_equal(ci_signal_parse("sigterm"), SIGTERM);
    assert_int_equal(ci_signal_parse("SIGHUP"), SIGHUP);
    assert_int_equal(ci_signal_parse("USR1"), SIGUSR1);
    assert_int_equal(ci_signal_parse("SIGWINCH"), SIGWINCH);
    assert_int_equal(ci_signal_parse("3"), 3);
    assert_int_equal(ci_signal_parse("15"), SIGTERM);
    assert_int_equal(ci_signal_parse("SIGRTMIN"), SIGRTMIN);
    assert_int_equal(ci_signal_parse("SIGRTMIN+2"), SIGRTMIN + 2);
    assert_int_equal(ci_signal_parse("RTMAX-1"), SIGRTMAX - 1);
    char num[16];
    snprintf(num, sizeof(num), "%d", SIGRTMAX);
    assert_int_equal(ci_signal_parse(num), SIGRTMAX);
}

static void rejects_bad(void **state)
{
    static const char *const bad[] = {"",          "0",           "-1",      "65",
                                      "999",       "SIG",         "SIGFOO",  "TERM ",
                                      "SIGRTMIN+", "SIGRTMIN+99", "RTMAX+1", "1x"};
    (void)state;
    for (size_t i = 0; i < CI_ARRAY_SIZE(bad); i++)
        if (ci_signal_parse(bad[i]) != -EINVAL) fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(ci_signal_parse(NULL), -EINVAL);
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(ci_signal_name(SIGQUIT), "SIGQUIT");
    assert_string_equal(ci_signal_name(SIGTERM), "SIGTERM");
    assert_string_equal(ci_signal_name(SIGABRT), "SIGABRT");
    assert_string_equal(ci_signal_name(SIGCHLD), "SIGCHLD");
    assert_string_equal(ci_signal_name(SIGRTMIN), "SIGRTMIN");
    assert_string_equal(ci_signal_name(SIGRTMIN + 3), "SIGRTMIN+3");
    assert_int_equal(ci_signal_parse(ci_signal_name(SIGRTMIN + 3)), SIGRTMIN + 3);
    for (int s = 1; s <= SIGRTMAX; s++) assert_int_equal(ci_signal_parse(ci_signal_name(s)), s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_names_and_numbers),
        cmocka_unit_test(rejects_bad),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
