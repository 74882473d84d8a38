/* log: the init's own event lines stay within bounds, whatever the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chroma_init/log.h"

/* Runs ci_log_eventf with stderr redirected to a temp file; returns what was
 * written (caller frees) and its length. */
static char *capture_event(const char *service, const char *event, const char *msg, size_t *len)
{
    char path[] = "/tmp/ci-review-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    ci_log_eventf(CI_LOG_WARN, service, event, 1234, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    assert_true(n >= 0);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
    close(fd);
    *len = (size_t)n;
    return buf;
}

/* log.c ci_log_eventf (JSON): `off += snprintf(line + off, sizeof line - off,
 * ...)` is not clamped, so once a long service name filled the 4096-byte
 * line, off passes sizeof line, `sizeof line - off` wraps around and the
 * following snprintf / line[off++] write past the stack buffer (ASan:
 * stack-buffer-overflow; without ASan, write_all() then sends more than
 * 4096 bytes of stack to stderr). Service names have no length limit in
 * config.c (service_name_ok). */
static void json_event_with_long_service_name_stays_in_bounds(void **state)
{
    (void)state;
    size_t nlen = 4090;
    char *name = malloc(nlen + 1);
    assert_non_null(name);
    memset(name, 'a', nlen);
    name[nlen] = '\0';
    ci_log_setup(CI_LOG_JSON, true, false);
    size_t len = 0;
    char *out = capture_event(name, "started", "started, pid 1234", &len);
    ci_log_setup(CI_LOG_TEXT, false, false);
    assert_true(len <= 4096);
    assert_true(len >= 2);
    assert_int_equal(out[len - 1], '\n');
    assert_int_equal(out[len - 2], '}');
    free(out);
    free(name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_event_with_long_service_name_stays_in_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
