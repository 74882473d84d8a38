/* Unit tests: duration parse/format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "chroma_init/util.h"

static void parses_compose_durations(void **state)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } ok[] = {
        {"0", 0},          {"0s", 0},        {"500ms", 500},
        {"30s", 30000},    {"1m30s", 90000}, {"1h2m3s", 3723000},
        {"1.5s", 1500},    {"2m", 120000},   {"720h", 2592000000u},
        {"100us", 1},      {"1500us", 2},    {"30", 30000},
        {"1.5", 1500},     {".5s", 500},     {"+10s", 10000},
        {"1s500ms", 1500}, {"0.001s", 1},    {"1h0m0s", 3600000},
        {"2h", 7200000},   {"1.25m", 75000},
    };
    (void)state;
    for (size_t i = 0; i < CI_ARRAY_SIZE(ok); i++) {
        uint64_t ms = 12345;
        int r = ci_duration_parse(ok[i].in, &ms);
        if (r != 0 || ms != ok[i].ms)
            fail_msg("\"%s\": r=%d ms=%llu, want %llu", ok[i].in, r, (unsigned long long)ms,
                     (unsigned long long)ok[i].ms);
    }
}

static void rejects_garbage(void **state)
{
    static const char *const bad[] = {"",    "30x", "-1s", "s",    "1h2", "ms",  "1.s5",
                                      "1 s", " 1s", "1ns", "1d",   "--1", "1s ", "abc",
                                      "+",   ".",   "1e3", "0x10", "1S"};
    (void)state;
    for (size_t i = 0; i < CI_ARRAY_SIZE(bad); i++) {
        uint64_t ms;
        if (ci_duration_parse(bad[i], &ms) != -EINVAL) fail_msg("\"%s\" accepted", bad[i]);
    }
    {
        uint64_t ms;
        assert_int_equal(ci_duration_parse(NULL, &ms), -EINVAL);
    }
}

static void rejects_overflow(void **state)
{
    uint64_t ms;
    (void)state;
    assert_int_equal(ci_duration_parse("99999999999999999999s", &ms), -ERANGE);
    assert_int_equal(ci_duration_parse("9999999999999h", &ms), -ERANGE);
    assert_int_equal(ci_duration_parse("5124095576h5124095576h", &ms), -ERANGE);
    assert_int_equal(ci_duration_parse("99999999999999999999", &ms), -ERANGE);
}

static void formats(void **state)
{
    static const struct {
        uint64_t ms;
        const char *out;
    } cases[] = {
        {0, "0s"},
        {1, "1ms"},
        {500, "500ms"},
        {1000, "1s"},
        {1500, "1.5s"},
        {90000, "1m30s"},
        {3600000, "1h"},
        {3723000, "1h2m3s"},
        {3600001, "1h0m0.001s"},
        {60000, "1m"},
        {2592000000u, "720h"},
        {100, "100ms"},
        {3660000, "1h1m"},
    };
    char buf[64];
    (void)state;
    for (size_t i = 0; i < CI_ARRAY_SIZE(cases); i++) {
        uint64_t back;
        ci_duration_format(cases[i].ms, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].out);
        assert_int_equal(ci_duration_parse(buf, &back), 0);
        assert_true(back == cases[i].ms);
    }
    ci_duration_format(3723000, buf, 4);
    assert_string_equal(buf, "1h2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_compose_durations),
        cmocka_unit_test(rejects_garbage),
        cmocka_unit_test(rejects_overflow),
        cmocka_unit_test(formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
