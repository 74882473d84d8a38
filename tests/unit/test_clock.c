#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "chroma_init/util.h"

static void monotonic_never_goes_back(void **state)
{
    (void)state;
    uint64_t a = ci_now_us();
    uint64_t b = ci_now_us();
    assert_true(b >= a);
    assert_true(ci_now_ms() >= a / 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(monotonic_never_goes_back)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
