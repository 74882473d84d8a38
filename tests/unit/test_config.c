/* Unit tests: init.json loading, validation, defaults, interpolation, and the
 * `check` subcommand of the built binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "chroma_init/cli.h"
#include "chroma_init/config.h"
#include "chroma_init/util.h"

#define CONFIGS CI_TEST_DATA "/configs"
#define COMPOSE CI_TEST_DATA "/../../compose"

/* Reads a whole file (caller frees), asserting success. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Loads tests/data/configs/<rel> as "init.json"; asserts success. */
static ci_config_t *load_ok(const char *rel)
{
    char path[1024];
    size_t len;
    char *buf;
    ci_config_t *cfg = NULL;
    ci_error_t err;
    snprintf(path, sizeof(path), "%s/%s", CONFIGS, rel);
    buf = slurp(path, &len);
    if (ci_config_load_buffer("init.json", buf, len, &cfg, &err))
        fail_msg("%s: unexpected error: %s", rel, err.msg);
    free(buf);
    return cfg;
}

static const ci_service_conf_t *svc(const ci_config_t *cfg, const char *name)
{
    long i = ci_config_find(cfg, name);
    if (i < 0) fail_msg("no service %s", name);
    return &cfg->services[i];
}

static const char *env_get(char **env, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; env[i]; i++)
        if (!strncmp(env[i], key, n) && env[i][n] == '=') return env[i] + n + 1;
    return NULL;
}

/* ---- invalid configs: the exact message for each ------------------------------------- */

static const struct {
    const char *file, *msg;
} invalid[] = {
    {"certgen-bad-key-type.json",
     "init.json:3:67: services.cert-gen.certgen.key_type: invalid key_type \"rsa:1024\" (expected "
     "\"rsa:2048\", \"rsa:4096\", \"ec:P-256\", \"ec:P-384\" or \"ed25519\")"},
    {"certgen-bad-owner.json", "init.json:3:64: services.cert-gen.certgen.owner: invalid user "
                               "\"chroma:\" (expected \"user\" or \"user:group\")"},
    {"certgen-bad-renew-before.json", "init.json:3:71: services.cert-gen.certgen.renew_before: "
                                      "invalid duration \"30 days\" (expected "
                                      "e.g. \"500ms\", \"30s\", \"1m30s\")"},
    {"certgen-bad-subject.json",
     "init.json:3:66: services.cert-gen.certgen.subject: invalid subject \"O=Chroma\" (expected "
     "\"/K=V/K=V...\", e.g. \"/O=Chroma/C=US\")"},
    {"certgen-days-too-many.json",
     "init.json:3:63: services.cert-gen.certgen.days: must be between 1 and 36500, got 40000"},
    {"certgen-days-type.json",
     "init.json:3:63: services.cert-gen.certgen.days: expected an integer, got a string"},
    {"certgen-days-zero.json",
     "init.json:3:63: services.cert-gen.certgen.days: must be between 1 and 36500, got 0"},
    {"certgen-empty-domain-item.json",
     "init.json:3:65: services.cert-gen.certgen.domain: invalid domain list \"a,,b\": empty item"},
    {"certgen-missing-key.json",
     "init.json:3:29: services.cert-gen.certgen: missing required key \"key\""},
    {"certgen-not-object.json",
     "init.json:3:29: services.cert-gen.certgen: expected an object, got a boolean"},
    {"certgen-unknown-key.json",
     "init.json:3:55: services.cert-gen.certgen: unknown key \"domains\""},
    {"command-empty-array.json", "init.json:3:22: services.a.command: must not be empty"},
    {"command-empty-program.json", "init.json:3:23: services.a.command[0]: must not be empty"},
    {"command-empty-string.json", "init.json:3:22: services.a.command: must not be empty"},
    {"command-item-type.json",
     "init.json:3:31: services.a.command[1]: expected a string, got an integer"},
    {"command-wrong-type.json",
     "init.json:3:22: services.a.command: expected a string or an array, got an integer"},
    {"depends-bad-condition.json",
     "init.json:4:66: services.a.depends_on.b.condition: invalid condition \"service_ready\" "
     "(expected "
     "\"service_started\", \"service_healthy\" or \"service_completed_successfully\")"},
    {"depends-cycle-three.json",
     "init.json:4:46: services.a.depends_on: dependency cycle: a -> b -> c -> a"},
    {"depends-cycle.json", "init.json:3:46: services.a.depends_on: dependency cycle: a -> b -> a"},
    {"depends-healthy-without-healthcheck.json", "init.json:4:65: services.web.depends_on.api: "
                                                 "condition service_healthy needs a healthcheck on "
                                                 "\"api\""},
    {"depends-duplicate.json",
     "init.json:4:52: services.a.depends_on[1]: duplicate dependency \"b\""},
    {"depends-map-unknown-key.json",
     "init.json:4:53: services.a.depends_on.b: unknown key \"condtion\""},
    {"depends-map-value-type.json",
     "init.json:4:52: services.a.depends_on.b: expected an object, got a string"},
    {"depends-required-type.json",
     "init.json:4:65: services.a.depends_on.b.required: expected a boolean, got a string"},
    {"depends-self.json", "init.json:3:46: services.a.depends_on: dependency cycle: a -> a"},
    {"depends-unknown-map.json",
     "init.json:3:50: services.nginx.depends_on: unknown service \"db\""},
    {"depends-unknown.json",
     "init.json:4:50: services.nginx.depends_on: unknown service \"chroma\""},
    {"depends-wrong-type.json",
     "init.json:3:46: services.a.depends_on: expected an array or an object, got a string"},
    {"duration-empty.json", "init.json:3:53: services.a.stop_grace_period: invalid duration \"\" "
                            "(expected e.g. \"500ms\", \"30s\", \"1m30s\")"},
    {"duration-overflow.json", "init.json:3:53: services.a.stop_grace_period: duration "
                               "\"99999999999999999h\" is out of range"},
    {"duration-type.json",
     "init.json:3:53: services.a.stop_grace_period: expected a duration (a string "
     "or a number of seconds), got a boolean"},
    {"environment-bad-entry.json", "init.json:3:48: services.a.environment[0]: invalid environment "
                                   "entry \"=x\" (expected \"KEY=VALUE\")"},
    {"environment-list-item-type.json",
     "init.json:3:48: services.a.environment[0]: expected a string, got an integer"},
    {"environment-value-object.json",
     "init.json:3:53: services.a.environment.A: expected a string, a "
     "number or a boolean, got an object"},
    {"environment-wrong-type.json",
     "init.json:2:18: environment: expected an object or an array, got a string"},
    {"essential-type.json",
     "init.json:3:45: services.a.essential: expected a boolean, got a string"},
    {"healthcheck-bad-interval.json", "init.json:3:92: services.chromadb.healthcheck.interval: "
                                      "invalid duration \"30x\" (expected e.g. "
                                      "\"500ms\", \"30s\", \"1m30s\")"},
    {"healthcheck-cmd-without-command.json",
     "init.json:3:56: services.a.healthcheck.test: [\"CMD\"] needs a command"},
    {"healthcheck-disable-type.json",
     "init.json:3:59: services.a.healthcheck.disable: expected a boolean, got a string"},
    {"healthcheck-insecure-type.json",
     "init.json:3:78: services.a.healthcheck.insecure: expected a boolean, got an integer"},
    {"healthcheck-missing-test.json", "init.json:3:47: services.a.healthcheck: missing required "
                                      "key \"test\" (or \"disable\": true)"},
    {"healthcheck-none-with-args.json",
     "init.json:3:56: services.a.healthcheck.test: [\"NONE\"] takes no arguments"},
    {"healthcheck-retries-type.json",
     "init.json:3:77: services.a.healthcheck.retries: expected an integer, got a string"},
    {"healthcheck-retries-zero.json",
     "init.json:3:77: services.a.healthcheck.retries: must be at least 1, got 0"},
    {"healthcheck-shell-two-args.json", "init.json:3:56: services.a.healthcheck.test: "
                                        "[\"CMD-SHELL\", ...] takes exactly one argument"},
    {"healthcheck-start-interval-bad.json",
     "init.json:3:84: services.a.healthcheck.start_interval: invalid duration \"fast\" (expected "
     "e.g. "
     "\"500ms\", \"30s\", \"1m30s\")"},
    {"healthcheck-test-empty-array.json",
     "init.json:3:56: services.a.healthcheck.test: must not be empty"},
    {"healthcheck-test-empty-string.json",
     "init.json:3:56: services.a.healthcheck.test: must not be empty"},
    {"healthcheck-test-type.json",
     "init.json:3:56: services.a.healthcheck.test: expected a string or an array, got an integer"},
    {"healthcheck-unknown-key.json",
     "init.json:3:66: services.a.healthcheck: unknown key \"intervall\""},
    {"healthcheck-unknown-test-type.json",
     "init.json:3:56: services.a.healthcheck.test: unknown test type \"CURL\" (expected \"CMD\", "
     "\"CMD-SHELL\", \"HTTP\", \"TCP\" or \"NONE\")"},
    {"http-bad-fallback.json", "init.json:3:87: services.a.healthcheck.test[2]: invalid URL "
                               "\"localhost/b\": expected an http:// or https:// URL"},
    {"http-bad-host.json",
     "init.json:3:65: services.a.healthcheck.test[1]: invalid URL \"http://a b/\": invalid host"},
    {"http-bad-port.json", "init.json:3:65: services.a.healthcheck.test[1]: invalid URL "
                           "\"http://127.0.0.1:99999/\": invalid port"},
    {"http-bad-scheme.json", "init.json:3:65: services.a.healthcheck.test[1]: invalid URL "
                             "\"ftp://127.0.0.1/\": expected an http:// or https:// URL"},
    {"http-missing-host.json",
     "init.json:3:65: services.a.healthcheck.test[1]: invalid URL \"http:///api\": missing host"},
    {"http-no-url.json",
     "init.json:3:56: services.a.healthcheck.test: [\"HTTP\"] needs at least one URL"},
    {"http-port-zero.json", "init.json:3:65: services.a.healthcheck.test[1]: invalid URL "
                            "\"http://127.0.0.1:0/\": invalid port"},
    {"http-space-in-path.json", "init.json:3:65: services.a.healthcheck.test[1]: invalid URL "
                                "\"http://localhost/a b\": invalid character in path"},
    {"interp-bad-name.json",
     "init.json:3:31: services.a.command[1]: invalid interpolation format \"${1}\""},
    {"interp-in-duration.json",
     "init.json:3:53: services.a.stop_grace_period: invalid duration \"10x\" "
     "(expected e.g. \"500ms\", \"30s\", \"1m30s\")"},
    {"interp-required-missing.json", "init.json:3:65: services.cert-gen.certgen.domain: required "
                                     "variable CHROMA_DOMAIN is missing a "
                                     "value: set CHROMA_DOMAIN to the server name"},
    {"interp-required-top-env.json",
     "init.json:2:27: environment.DATA: required variable CI_TEST_UNSET_DATA is missing a value"},
    {"interp-unterminated.json",
     "init.json:3:47: services.a.working_dir: unterminated \"${\" in \"${HOME\""},
    {"log-bad-format.json",
     "init.json:2:21: log.format: invalid log format \"xml\" (expected \"text\" or \"json\")"},
    {"log-prefix-type.json", "init.json:2:21: log.prefix: expected a boolean, got a string"},
    {"log-unknown-key.json", "init.json:2:11: log: unknown key \"colour\""},
    {"on-unhealthy-bad.json", "init.json:3:48: services.a.on_unhealthy: invalid value \"kill\" "
                              "(expected \"none\" or \"restart\")"},
    {"reload-bad-signal.json",
     "init.json:3:70: services.a.reload.signal: invalid signal \"RELOAD\""},
    {"reload-missing-watch.json",
     "init.json:3:42: services.a.reload: missing required key \"watch\""},
    {"restart-bad.json",
     "init.json:3:43: services.a.restart: invalid restart policy \"sometimes\" (expected \"no\", "
     "\"always\", \"on-failure\", \"on-failure:N\" with N >= 1, or \"unless-stopped\")"},
    {"restart-bool.json", "init.json:3:43: services.a.restart: expected a string, got a boolean"},
    {"restart-on-failure-garbage.json",
     "init.json:3:43: services.a.restart: invalid restart policy \"on-failure:x\" (expected "
     "\"no\", "
     "\"always\", \"on-failure\", \"on-failure:N\" with N >= 1, or \"unless-stopped\")"},
    {"restart-on-failure-zero.json",
     "init.json:3:43: services.a.restart: invalid restart policy \"on-failure:0\" (expected "
     "\"no\", "
     "\"always\", \"on-failure\", \"on-failure:N\" with N >= 1, or \"unless-stopped\")"},
    {"service-bad-name.json",
     "init.json:3:5: services: invalid service name \"bad name\" (expected letters, digits, \"_\", "
     "\".\" or \"-\", starting with a letter or a digit)"},
    {"service-command-and-certgen.json",
     "init.json:3:10: services.a: \"command\" and \"certgen\" are mutually exclusive"},
    {"service-compose-image-key.json", "init.json:3:11: services.a: unknown key \"image\""},
    {"service-log-prefix-type.json",
     "init.json:3:46: services.a.log_prefix: expected a string, got an integer"},
    {"service-missing-command.json",
     "init.json:3:10: services.a: missing \"command\" (or \"certgen\")"},
    {"service-name-too-long.json",
     "init.json:1:15: services: service name too long (64 characters, at most 63)"},
    {"service-name-leading-dash.json", "init.json:3:5: services: invalid service name \"-a\" "
                                       "(expected letters, digits, \"_\", \".\" or "
                                       "\"-\", starting with a letter or a digit)"},
    {"service-not-object.json", "init.json:3:10: services.a: expected an object, got a string"},
    {"service-unknown-key.json", "init.json:3:36: services.nginx: unknown key \"restrat\""},
    {"services-empty.json", "init.json:1:14: services: at least one service is required"},
    {"services-not-object.json", "init.json:1:14: services: expected an object, got an array"},
    {"shutdown-timeout-bad.json",
     "init.json:2:23: shutdown_timeout: invalid duration \"9 s\" (expected "
     "e.g. \"500ms\", \"30s\", \"1m30s\")"},
    {"shutdown-timeout-negative.json",
     "init.json:2:23: shutdown_timeout: invalid duration -1 (expected "
     "e.g. \"500ms\", \"30s\", \"1m30s\")"},
    {"state-dir-type.json", "init.json:2:16: state_dir: expected a string, got an integer"},
    {"stop-signal-bad.json", "init.json:3:47: services.a.stop_signal: invalid signal \"SIGFOO\""},
    {"stop-signal-type.json", "init.json:3:47: services.a.stop_signal: expected a signal (a name "
                              "or a number), got a boolean"},
    {"stop-signal-zero.json", "init.json:3:47: services.a.stop_signal: invalid signal 0"},
    {"syntax-bad-token.json", "init.json:3:32: ']' expected near 'false'"},
    {"syntax-duplicate-key.json", "init.json:4:7: duplicate object key near '\"a\"'"},
    {"syntax-empty.json", "init.json:1:0: '[' or '{' expected near end of file"},
    {"syntax-trailing-comma.json", "init.json:3:31: string or '}' expected near '}'"},
    {"syntax-unterminated.json", "init.json:3:0: string or '}' expected near end of file"},
    {"tcp-bad-port.json", "init.json:3:64: services.a.healthcheck.test[1]: invalid address "
                          "\"localhost:http\": invalid port (expected \"host:port\")"},
    {"tcp-missing-port.json", "init.json:3:64: services.a.healthcheck.test[1]: invalid address "
                              "\"localhost\": missing port (expected \"host:port\")"},
    {"tcp-two-args.json",
     "init.json:3:56: services.a.healthcheck.test: [\"TCP\", ...] takes exactly one argument"},
    {"top-missing-services.json", "init.json:1:1: missing required key \"services\""},
    {"top-not-object.json", "init.json:1:1: expected an object at the top level, got an array"},
    {"top-unknown-key.json", "init.json:2:3: unknown key \"servics\""},
    {"unknown-key-control-char.json", "init.json:1:42: services.a: unknown key \"a?b\""},
    {"user-empty-name.json", "init.json:3:40: services.a.user: invalid user \":1000\" (expected "
                             "\"name\", \"uid\", \"uid:gid\" or \"name:group\")"},
    {"user-empty.json", "init.json:3:40: services.a.user: invalid user \"\" (expected \"name\", "
                        "\"uid\", \"uid:gid\" or \"name:group\")"},
    {"user-negative-uid.json", "init.json:3:40: services.a.user: invalid uid -1"},
    {"user-space.json",
     "init.json:3:40: services.a.user: invalid user \"bad user\" (expected \"name\", "
     "\"uid\", \"uid:gid\" or \"name:group\")"},
    {"user-too-many-colons.json",
     "init.json:3:40: services.a.user: invalid user \"a:b:c\" (expected "
     "\"name\", \"uid\", \"uid:gid\" or \"name:group\")"},
    {"user-type.json",
     "init.json:3:40: services.a.user: expected a string (or a numeric uid), got a boolean"},
    {"wait-for-file-empty.json", "init.json:3:67: services.a.wait_for.files[1]: must not be empty"},
    {"wait-for-files-empty.json", "init.json:3:54: services.a.wait_for.files: must not be empty"},
    {"wait-for-missing-files.json",
     "init.json:3:44: services.a.wait_for: missing required key \"files\""},
    {"wait-for-unknown-key.json", "init.json:3:62: services.a.wait_for: unknown key \"timout\""},
    {"working-dir-empty.json", "init.json:3:47: services.a.working_dir: must not be empty"},
};

static void invalid_configs_report_exact_errors(void **state)
{
    int failures = 0;
    (void)state;
    unsetenv("CHROMA_DOMAIN");
    unsetenv("CI_TEST_UNSET_DATA");
    unsetenv("CI_TEST_UNSET_GRACE");
    assert_true(CI_ARRAY_SIZE(invalid) >= 40);
    for (size_t i = 0; i < CI_ARRAY_SIZE(invalid); i++) {
        char path[1024];
        size_t len;
        char *buf;
        ci_config_t *cfg = (ci_config_t *)1;
        ci_error_t err;
        int r;
        snprintf(path, sizeof(path), "%s/invalid/%s", CONFIGS, invalid[i].file);
        buf = slurp(path, &len);
        r = ci_config_load_buffer("init.json", buf, len, &cfg, &err);
        free(buf);
        if (r != -EINVAL || cfg != NULL) {
            print_error("%s: r=%d, expected -EINVAL\n", invalid[i].file, r);
            failures++;
            ci_config_free(r == 0 ? cfg : NULL);
        } else if (strcmp(err.msg, invalid[i].msg)) {
            print_error("%s:\n  got  %s\n  want %s\n", invalid[i].file, err.msg, invalid[i].msg);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void every_invalid_file_is_in_the_table(void **state)
{
    FILE *p = popen("ls " CONFIGS "/invalid", "r");
    char line[512];
    size_t n = 0;
    (void)state;
    assert_non_null(p);
    while (fgets(line, sizeof(line), p)) {
        int found = 0;
        line[strcspn(line, "\n")] = '\0';
        for (size_t i = 0; i < CI_ARRAY_SIZE(invalid); i++)
            if (!strcmp(invalid[i].file, line)) found = 1;
        if (!found) fail_msg("%s has no expected message", line);
        n++;
    }
    pclose(p);
    assert_int_equal(n, CI_ARRAY_SIZE(invalid));
}

static void file_errors_name_the_path_as_given(void **state)
{
    ci_config_t *cfg = (ci_config_t *)1;
    ci_error_t err;
    (void)state;
    assert_int_equal(ci_config_load("/nonexistent/init.json", &cfg, &err), -ENOENT);
    assert_null(cfg);
    assert_string_equal(err.msg, "/nonexistent/init.json: cannot open: No such file or directory");
    assert_int_equal(ci_config_load(CONFIGS "/invalid/syntax-trailing-comma.json", &cfg, &err),
                     -EINVAL);
    assert_string_equal(err.msg, CONFIGS "/invalid/syntax-trailing-comma.json:3:31: string or '}' "
                                         "expected near '}'");
    assert_int_equal(ci_config_load(CONFIGS "/valid/minimal.json", &cfg, &err), 0);
    assert_string_equal(cfg->path, CONFIGS "/valid/minimal.json");
    ci_config_free(cfg);
}

static void buffers_need_no_terminator(void **state)
{
    const char text[] = "{\"services\": {\"a\": {\"command\": [\"true\"]}}}GARBAGE";
    ci_config_t *cfg;
    ci_error_t err;
    (void)state;
    assert_int_equal(ci_config_load_buffer("x", text, sizeof(text) - 1 - 7, &cfg, &err), 0);
    ci_config_free(cfg);
    assert_int_equal(ci_config_load_buffer("x", "{\"services\"\0:{}}", 16, &cfg, &err), -EINVAL);
    assert_null(cfg);
    ci_config_free(NULL);
}

/* Positions are 1-based lines and columns in characters (as jansson's syntax errors); keys are
 * matched as decoded segments (escapes, dots), and strings, numbers and literals are skipped. */
static void error_positions_follow_the_text(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"{\"services\": {\"a\": {\"command\": [\"\xc3\xa9\xe2\x98\x83\"], \"restart\": 5}}}",
         "x:1:51: services.a.restart: expected a string, got an integer"},
        {"{\r\n  \"services\": {\r\n    \"a\": {\"command\": [\"true\"],\r\n\t\"restart\": 5}}}",
         "x:4:13: services.a.restart: expected a string, got an integer"},
        {"{\"services\": {\"a\": {\"command\": [\"true\"]}, \"a.b\": {\"command\": [\"true\"], "
         "\"restart\": 1}}}",
         "x:1:83: services.a.b.restart: expected a string, got an integer"},
        {"{\"services\": {\"\\u0061x\": {\"command\": [\"true\"], \"restart\": 1}}}",
         "x:1:59: services.ax.restart: expected a string, got an integer"},
        {"{\"environment\": {\"A\": \"1\", \"\\ud83d\\ude00=\\u0041\": \"x\"}, \"services\": "
         "{\"a\": "
         "{\"command\": [\"true\"]}}}",
         "x:1:28: environment.\xf0\x9f\x98\x80=A: invalid variable name \"\xf0\x9f\x98\x80=A\""},
        {"{\"services\": {\"a\": {\"command\": [\"x\\\"]}{,:\", \"\\\\\", \"[{\"], "
         "\"environment\": "
         "{\"X\": \"[{\", \"Y\": 1.5e-3, \"Z\": true}, \"essential\": false, \"restart\": "
         "-1.5e3}}}",
         "x:1:141: services.a.restart: expected a string, got a number"},
        {"{\"services\": {\"x.y\": {\"command\": [\"true\"], \"depends_on\": [\"x\"]}, \"x\": "
         "{\"command\": [\"true\"], \"depends_on\": [\"x.y\"]}}}",
         "x:1:58: services.x.y.depends_on: dependency cycle: x.y -> x -> x.y"},
        {"{\"services\": {\"a\": {\"command\": [\"true\"], \"depends_on\": {\"b\": {}}}}}",
         "x:1:56: services.a.depends_on: unknown service \"b\""},
        {"\n\n  [\"x\"]", "x:3:3: expected an object at the top level, got an array"},
        {"{\"services\": {\"a\": {\"command\": [\"restrat\"], \"restrat\": 1}}}",
         "x:1:45: services.a: unknown key \"restrat\""},
        {"{\"log\": {\"format\": \"text\"}, \"services\": {\"a\": {\"command\": [\"true\"], "
         "\"healthcheck\": {\"test\": \"true\", \"format\": 1}}}}",
         "x:1:101: services.a.healthcheck: unknown key \"format\""},
    };
    (void)state;
    for (size_t i = 0; i < CI_ARRAY_SIZE(cases); i++) {
        ci_config_t *cfg = (ci_config_t *)1;
        ci_error_t err;
        int r = ci_config_load_buffer("x", cases[i].text, strlen(cases[i].text), &cfg, &err);
        if (r != -EINVAL) fail_msg("case %zu: r=%d, expected -EINVAL", i, r);
        assert_null(cfg);
        if (strcmp(err.msg, cases[i].msg))
            fail_msg("case %zu:\n  got  %s\n  want %s", i, err.msg, cases[i].msg);
    }
}

/* ---- valid configs -------------------------------------------------------------------- */

static void minimal_gets_every_default(void **state)
{
    ci_config_t *cfg = load_ok("valid/minimal.json");
    const ci_service_conf_t *s = svc(cfg, "app");
    (void)state;
    assert_string_equal(cfg->path, "init.json");
    assert_string_equal(cfg->state_dir, "/run/chroma-init");
    assert_int_equal(cfg->log_format, CI_LOG_TEXT);
    assert_true(cfg->log_prefix);
    assert_false(cfg->log_timestamps);
    assert_int_equal(cfg->shutdown_timeout_ms, 9000);
    assert_int_equal(cfg->environment_len, 0);
    assert_non_null(cfg->environment);
    assert_null(cfg->environment[0]);
    assert_int_equal(cfg->nservices, 1);
    assert_string_equal(s->name, "app");
    assert_int_equal(s->command_len, 1);
    assert_string_equal(s->command[0], "true");
    assert_null(s->command[1]);
    assert_false(s->command_shell);
    assert_false(s->is_certgen);
    assert_int_equal(s->environment_len, 0);
    assert_null(s->environment[0]);
    assert_null(s->working_dir);
    assert_null(s->user);
    assert_int_equal(s->ndepends_on, 0);
    assert_int_equal(s->healthcheck.kind, CI_HC_NONE);
    assert_int_equal(s->healthcheck.interval_ms, 30000);
    assert_int_equal(s->healthcheck.timeout_ms, 30000);
    assert_int_equal(s->healthcheck.start_period_ms, 0);
    assert_int_equal(s->healthcheck.start_interval_ms, 5000);
    assert_int_equal(s->healthcheck.retries, 3);
    assert_null(s->healthcheck.ca);
    assert_false(s->healthcheck.insecure);
    assert_int_equal(s->nwait_for_files, 0);
    assert_int_equal(s->wait_for_timeout_ms, 0);
    assert_int_equal(s->restart, CI_RESTART_NO);
    assert_int_equal(s->restart_max, -1);
    assert_false(s->on_unhealthy_restart);
    assert_int_equal(s->stop_signal, SIGTERM);
    assert_int_equal(s->stop_grace_ms, 10000);
    assert_int_equal(s->nreload_watch, 0);
    assert_int_equal(s->reload_signal, SIGHUP);
    assert_false(s->essential);
    assert_null(s->log_prefix);
    assert_int_equal(cfg->start_order[0], 0);
    assert_int_equal(cfg->wave[0], 0);
    assert_int_equal(cfg->nwaves, 1);
    ci_config_free(cfg);
}

static void full_config_reads_every_key(void **state)
{
    ci_config_t *cfg = load_ok("valid/full.json");
    const ci_service_conf_t *c = svc(cfg, "certs"), *a = svc(cfg, "api");
    (void)state;
    assert_string_equal(cfg->state_dir, "/tmp/ci-state");
    assert_int_equal(cfg->log_format, CI_LOG_JSON);
    assert_false(cfg->log_prefix);
    assert_true(cfg->log_timestamps);
    assert_int_equal(cfg->shutdown_timeout_ms, 20000);
    assert_int_equal(cfg->environment_len, 3);
    assert_string_equal(cfg->environment[0], "GREETING=hello");

    assert_true(c->is_certgen);
    assert_null(c->command);
    assert_string_equal(c->certgen.cert, "/certs/c.pem");
    assert_string_equal(c->certgen.key, "/certs/k.pem");
    assert_int_equal(c->certgen.ndomains, 3);
    assert_string_equal(c->certgen.domains[0], "example.com");
    assert_string_equal(c->certgen.domains[1], "127.0.0.1");
    assert_string_equal(c->certgen.domains[2], "localhost");
    assert_null(c->certgen.domains[3]);
    assert_string_equal(c->certgen.subject, "/CN=x/O=Acme\\/Inc/C=DE");
    assert_string_equal(c->certgen.key_type, "ec:P-256");
    assert_int_equal(c->certgen.days, 30);
    assert_int_equal(c->certgen.renew_before_ms, 240ull * 3600 * 1000);
    assert_string_equal(c->certgen.owner, "chroma:chroma");

    assert_true(a->command_shell);
    assert_int_equal(a->command_len, 3);
    assert_string_equal(a->command[0], "/bin/sh");
    assert_string_equal(a->command[1], "-c");
    assert_string_equal(a->command[2], "exec ./server --port 9000");
    assert_null(a->command[3]);
    /* Top-level merged under the service's, service values win. */
    assert_int_equal(a->environment_len, 6);
    assert_string_equal(a->environment[0], "GREETING=hi");
    assert_string_equal(a->environment[1], "PORT=9000");
    assert_string_equal(a->environment[2], "ONLY_TOP=1");
    assert_string_equal(a->environment[3], "DEBUG=true");
    assert_string_equal(a->environment[4], "RATIO=1.5");
    assert_string_equal(a->environment[5], "WORKERS=4");
    assert_string_equal(a->working_dir, "/srv");
    assert_string_equal(a->user, "1000:1000");
    assert_int_equal(a->ndepends_on, 1);
    assert_string_equal(a->depends_on[0].name, "certs");
    assert_int_equal(a->depends_on[0].index, 0);
    assert_int_equal(a->depends_on[0].condition, CI_COND_STARTED);
    assert_true(a->depends_on[0].required);
    assert_false(a->depends_on[0].restart);
    assert_int_equal(a->healthcheck.kind, CI_HC_HTTP);
    assert_int_equal(a->healthcheck.argc, 1);
    assert_string_equal(a->healthcheck.argv[0], "https://localhost:9000/health");
    assert_int_equal(a->healthcheck.interval_ms, 90000);
    assert_int_equal(a->healthcheck.timeout_ms, 2500);
    assert_int_equal(a->healthcheck.retries, 5);
    assert_int_equal(a->healthcheck.start_period_ms, 3723000);
    assert_int_equal(a->healthcheck.start_interval_ms, 250);
    assert_string_equal(a->healthcheck.ca, "/certs/c.pem");
    assert_true(a->healthcheck.insecure);
    assert_int_equal(a->nwait_for_files, 1);
    assert_string_equal(a->wait_for_files[0], "/certs/c.pem");
    assert_int_equal(a->wait_for_timeout_ms, 0);
    assert_int_equal(a->restart, CI_RESTART_ON_FAILURE);
    assert_int_equal(a->restart_max, 5);
    assert_true(a->on_unhealthy_restart);
    assert_int_equal(a->stop_signal, SIGQUIT);
    assert_int_equal(a->stop_grace_ms, 1500);
    assert_int_equal(a->nreload_watch, 2);
    assert_string_equal(a->reload_watch[1], "/certs/k.pem");
    assert_int_equal(a->reload_signal, 10);
    assert_true(a->essential);
    assert_string_equal(a->log_prefix, "API");
    ci_config_free(cfg);
}

static void certgen_defaults(void **state)
{
    ci_config_t *cfg = load_ok("valid/depends-map.json");
    const ci_certgen_conf_t *g = &svc(cfg, "cert-gen")->certgen;
    (void)state;
    assert_true(svc(cfg, "cert-gen")->is_certgen);
    assert_int_equal(g->ndomains, 1);
    assert_string_equal(g->domains[0], "localhost");
    assert_string_equal(g->subject, "/O=Chroma/C=US");
    assert_string_equal(g->key_type, "rsa:2048");
    assert_int_equal(g->days, 365);
    assert_int_equal(g->renew_before_ms, 0);
    assert_null(g->owner);
    ci_config_free(cfg);
}

static void zero_durations_mean_the_defaults(void **state)
{
    ci_config_t *cfg = load_ok("valid/healthcheck-zero-means-default.json");
    const ci_healthcheck_t *h = &svc(cfg, "a")->healthcheck;
    (void)state;
    assert_int_equal(h->interval_ms, 30000);
    assert_int_equal(h->timeout_ms, 30000);
    assert_int_equal(h->start_interval_ms, 5000);
    ci_config_free(cfg);
}

static void every_healthcheck_form(void **state)
{
    ci_config_t *cfg = load_ok("valid/healthchecks.json");
    const ci_healthcheck_t *h;
    (void)state;
    h = &svc(cfg, "cmd")->healthcheck;
    assert_int_equal(h->kind, CI_HC_CMD);
    assert_int_equal(h->argc, 3);
    assert_string_equal(h->argv[0], "curl");
    assert_string_equal(h->argv[2], "http://localhost/");
    assert_null(h->argv[3]);
    h = &svc(cfg, "shell")->healthcheck;
    assert_int_equal(h->kind, CI_HC_SHELL);
    assert_int_equal(h->argc, 3);
    assert_string_equal(h->argv[0], "/bin/sh");
    assert_string_equal(h->argv[1], "-c");
    assert_string_equal(h->argv[2], "curl -f http://localhost/ || exit 1");
    h = &svc(cfg, "plain")->healthcheck;
    assert_int_equal(h->kind, CI_HC_SHELL);
    assert_string_equal(h->argv[2], "pg_isready");
    assert_int_equal(svc(cfg, "none")->healthcheck.kind, CI_HC_NONE);
    assert_int_equal(svc(cfg, "disabled")->healthcheck.kind, CI_HC_NONE);
    assert_null(svc(cfg, "disabled")->healthcheck.argv);
    assert_int_equal(svc(cfg, "disabled-no-test")->healthcheck.kind, CI_HC_NONE);
    h = &svc(cfg, "http")->healthcheck;
    assert_int_equal(h->kind, CI_HC_HTTP);
    assert_int_equal(h->argc, 3);
    assert_string_equal(h->argv[0], "http://127.0.0.1:8000/api/v2/healthcheck");
    assert_string_equal(h->argv[1], "http://127.0.0.1:8000/api/v1/heartbeat");
    assert_string_equal(h->argv[2], "https://[::1]/x?y=1");
    assert_null(h->argv[3]);
    h = &svc(cfg, "tcp")->healthcheck;
    assert_int_equal(h->kind, CI_HC_TCP);
    assert_int_equal(h->argc, 1);
    assert_string_equal(h->argv[0], "127.0.0.1:5432");
    assert_string_equal(svc(cfg, "tcp6")->healthcheck.argv[0], "[::1]:5432");
    ci_config_free(cfg);
}

static void depends_on_list_form(void **state)
{
    ci_config_t *cfg = load_ok("valid/depends-list.json");
    const ci_service_conf_t *w = svc(cfg, "web");
    (void)state;
    assert_int_equal(w->ndepends_on, 2);
    assert_string_equal(w->depends_on[0].name, "db");
    assert_int_equal(w->depends_on[0].index, 1);
    assert_int_equal(w->depends_on[0].condition, CI_COND_STARTED);
    assert_true(w->depends_on[0].required);
    assert_false(w->depends_on[0].restart);
    assert_string_equal(w->depends_on[1].name, "cache");
    assert_int_equal(w->depends_on[1].index, 2);
    /* db (wave 0) -> cache (1) -> web (2) */
    assert_int_equal(cfg->start_order[0], 1);
    assert_int_equal(cfg->start_order[1], 2);
    assert_int_equal(cfg->start_order[2], 0);
    assert_int_equal(cfg->wave[0], 2);
    assert_int_equal(cfg->nwaves, 3);
    ci_config_free(cfg);
}

static void depends_on_map_form(void **state)
{
    ci_config_t *cfg = load_ok("valid/depends-map.json");
    const ci_service_conf_t *n = svc(cfg, "nginx");
    (void)state;
    assert_int_equal(n->ndepends_on, 3);
    assert_string_equal(n->depends_on[0].name, "cert-gen");
    assert_int_equal(n->depends_on[0].condition, CI_COND_COMPLETED);
    assert_true(n->depends_on[0].required);
    assert_string_equal(n->depends_on[1].name, "chromadb");
    assert_int_equal(n->depends_on[1].condition, CI_COND_HEALTHY);
    assert_false(n->depends_on[1].required);
    assert_true(n->depends_on[1].restart);
    assert_string_equal(n->depends_on[2].name, "sidecar");
    assert_int_equal(n->depends_on[2].index, 3);
    assert_int_equal(n->depends_on[2].condition, CI_COND_STARTED);
    /* Wave 0 in config order: cert-gen, chromadb, sidecar; then nginx. */
    assert_int_equal(cfg->start_order[0], 0);
    assert_int_equal(cfg->start_order[1], 1);
    assert_int_equal(cfg->start_order[2], 3);
    assert_int_equal(cfg->start_order[3], 2);
    ci_config_free(cfg);
}

static void interpolation_everywhere(void **state)
{
    ci_config_t *cfg;
    const ci_service_conf_t *a;
    (void)state;
    setenv("CI_TEST_DOMAIN", "db.example", 1);
    setenv("CI_TEST_EMPTY", "", 1);
    setenv("INHERITED", "from-process", 1);
    setenv("INHERITED_TOO", "also", 1);
    setenv("DATA", "process-data-is-shadowed", 1);
    unsetenv("CI_TEST_DATA_DIR");
    unsetenv("CI_TEST_UNSET_X");
    unsetenv("CI_TEST_GRACE");
    setenv("CI_TEST_PORT", "5555", 1);
    cfg = load_ok("valid/interpolation.json");
    a = svc(cfg, "app");
    assert_string_equal(env_get(cfg->environment, "DATA"), "/data");
    assert_string_equal(env_get(cfg->environment, "DOMAIN"), "db.example");
    assert_string_equal(env_get(cfg->environment, "EMPTY_OK"), "");
    assert_string_equal(env_get(cfg->environment, "PRICE"), "$5");
    assert_string_equal(env_get(cfg->environment, "INHERITED"), "from-process");
    /* Strings see the top-level environment first, then the process's. */
    assert_string_equal(a->command[2], "/data/db");
    assert_string_equal(a->command[4], "db.example");
    assert_string_equal(a->command[5], "/data");
    assert_string_equal(env_get(a->environment, "LOCAL"), "/data/local");
    assert_string_equal(env_get(a->environment, "INHERITED_TOO"), "also");
    assert_string_equal(env_get(a->environment, "DATA"), "/data/override");
    assert_string_equal(a->working_dir, "/data");
    assert_int_equal(a->stop_grace_ms, 3000);
    assert_string_equal(a->healthcheck.argv[0], "localhost:5555");
    ci_config_free(cfg);

    /* The top-level environment is interpolated against the process only. */
    setenv("CI_TEST_DATA_DIR", "/srv/x", 1);
    cfg = load_ok("valid/interpolation.json");
    assert_string_equal(svc(cfg, "app")->command[2], "/srv/x/db");
    ci_config_free(cfg);

    unsetenv("CI_TEST_DOMAIN");
    {
        size_t len;
        char *buf = slurp(CONFIGS "/valid/interpolation.json", &len);
        ci_error_t err;
        assert_int_equal(ci_config_load_buffer("init.json", buf, len, &cfg, &err), -EINVAL);
        assert_string_equal(err.msg, "init.json:4:15: environment.DOMAIN: required variable "
                                     "CI_TEST_DOMAIN is missing a value: set CI_TEST_DOMAIN");
        free(buf);
    }
}

static void reference_configs_load(void **state)
{
    static const char *const files[] = {COMPOSE "/init.json", COMPOSE "/init.envoy.json"};
    (void)state;
    unsetenv("CHROMA_DOMAIN");
    unsetenv("CHROMA_CERTS");
    unsetenv("CHROMA_DATA");
    unsetenv("CHROMA_PORT");
    for (size_t i = 0; i < CI_ARRAY_SIZE(files); i++) {
        ci_config_t *cfg;
        ci_error_t err;
        const ci_service_conf_t *db, *tls;
        if (ci_config_load(files[i], &cfg, &err)) fail_msg("%s", err.msg);
        assert_int_equal(cfg->nservices, 3);
        assert_string_equal(cfg->services[cfg->start_order[0]].name, "cert-gen");
        assert_string_equal(cfg->services[cfg->start_order[1]].name, "chromadb");
        db = svc(cfg, "chromadb");
        tls = &cfg->services[cfg->start_order[2]];
        assert_int_equal(db->healthcheck.kind, CI_HC_HTTP);
        assert_int_equal(db->healthcheck.argc, 2);
        assert_string_equal(db->healthcheck.argv[0], "http://127.0.0.1:8000/api/v2/healthcheck");
        assert_string_equal(db->healthcheck.argv[1], "http://127.0.0.1:8000/api/v1/heartbeat");
        assert_int_equal(db->healthcheck.interval_ms, 30000);
        assert_int_equal(db->healthcheck.timeout_ms, 10000);
        assert_int_equal(db->healthcheck.retries, 3);
        assert_int_equal(db->healthcheck.start_period_ms, 120000);
        assert_int_equal(db->healthcheck.start_interval_ms, 50);
        assert_int_equal(db->restart, CI_RESTART_UNLESS_STOPPED);
        assert_int_equal(tls->restart, CI_RESTART_UNLESS_STOPPED);
        assert_int_equal(tls->ndepends_on, 2);
        assert_int_equal(tls->depends_on[0].condition, CI_COND_COMPLETED);
        assert_int_equal(tls->depends_on[1].condition, CI_COND_HEALTHY);
        assert_int_equal(tls->nwait_for_files, 2);
        assert_string_equal(tls->wait_for_files[0], "/certs/servercert.pem");
        assert_int_equal(tls->nreload_watch, strcmp(tls->name, "nginx") ? 0 : 2);
        assert_string_equal(svc(cfg, "cert-gen")->certgen.domains[0], "localhost");
        ci_config_free(cfg);
    }
}

static void config_path_resolution(void **state)
{
    (void)state;
    setenv("CHROMA_INIT_CONFIG", "/from/env.json", 1);
    assert_string_equal(ci_cli_config_path("/explicit.json"), "/explicit.json");
    assert_string_equal(ci_cli_config_path(NULL), "/from/env.json");
    setenv("CHROMA_INIT_CONFIG", "", 1);
    assert_string_equal(ci_cli_config_path(NULL), "/etc/chroma-init/init.json");
    unsetenv("CHROMA_INIT_CONFIG");
    assert_string_equal(ci_cli_config_path(NULL), "/etc/chroma-init/init.json");
}

/* ---- the built binary ------------------------------------------------------------------ */

typedef struct run {
    int status;
    char out[65536];
    char err[4096];
} run_t;

static void read_fd(int fd, char *buf, size_t len)
{
    size_t n = 0;
    ssize_t r;
    lseek(fd, 0, SEEK_SET);
    while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
}

/* Runs CI_BINARY with argv (NULL-terminated), capturing stdout and stderr. */
static void run_binary(run_t *res, const char *const *args)
{
    char outp[] = "/tmp/ci-check-out-XXXXXX", errp[] = "/tmp/ci-check-err-XXXXXX";
    int ofd = mkstemp(outp), efd = mkstemp(errp);
    pid_t pid;
    assert_true(ofd >= 0 && efd >= 0);
    unlink(outp);
    unlink(errp);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[16] = {CI_BINARY};
        size_t i;
        for (i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
        argv[i + 1] = NULL;
        dup2(ofd, 1);
        dup2(efd, 2);
        execv(CI_BINARY, (char *const *)argv);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &res->status, 0), pid);
    read_fd(ofd, res->out, sizeof(res->out));
    read_fd(efd, res->err, sizeof(res->err));
    close(ofd);
    close(efd);
}

static void check_prints_resolved_config_and_order(void **state)
{
    static const char *const args[] = {"check", "--config", COMPOSE "/init.json", NULL};
    run_t *res = calloc(1, sizeof(*res));
    (void)state;
    unsetenv("CHROMA_DOMAIN");
    unsetenv("CHROMA_CERTS");
    run_binary(res, args);
    assert_true(WIFEXITED(res->status));
    if (WEXITSTATUS(res->status) != 0) fail_msg("exit %d: %s", WEXITSTATUS(res->status), res->err);
    assert_non_null(strstr(res->out, "\nstart order: cert-gen \xe2\x86\x92 chromadb \xe2\x86\x92 "
                                     "nginx\n  wave 1: cert-gen, chromadb\n  wave 2: nginx\n"));
    assert_non_null(strstr(res->out, "\"start_interval\": \"50ms\""));
    assert_non_null(strstr(res->out, "\"/certs/servercert.pem\""));
    assert_string_equal(res->err, "");
    free(res);
}

static void check_json_is_one_document(void **state)
{
    static const char *const args[] = {"check", "--json", "--config", COMPOSE "/init.json", NULL};
    run_t *res = calloc(1, sizeof(*res));
    json_t *doc, *order, *waves, *nginx;
    json_error_t jerr;
    (void)state;
    run_binary(res, args);
    assert_true(WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0);
    doc = json_loads(res->out, 0, &jerr);
    if (!doc) fail_msg("not JSON: %s", jerr.text);
    order = json_object_get(doc, "start_order");
    assert_int_equal(json_array_size(order), 3);
    assert_string_equal(json_string_value(json_array_get(order, 0)), "cert-gen");
    assert_string_equal(json_string_value(json_array_get(order, 2)), "nginx");
    waves = json_object_get(doc, "waves");
    assert_int_equal(json_array_size(waves), 2);
    assert_int_equal(json_array_size(json_array_get(waves, 0)), 2);
    nginx = json_object_get(json_object_get(doc, "services"), "nginx");
    assert_string_equal(json_string_value(json_object_get(nginx, "restart")), "unless-stopped");
    assert_string_equal(json_string_value(json_object_get(nginx, "stop_signal")), "SIGQUIT");
    json_decref(doc);
    free(res);
}

static void check_bad_config_exits_2_with_the_message(void **state)
{
    static const char *const args[] = {"check", "--config",
                                       CONFIGS "/invalid/healthcheck-bad-interval.json", NULL};
    static const char *const usage1[] = {"check", "--frobnicate", NULL};
    static const char *const usage2[] = {"check", "--config", NULL};
    run_t *res = calloc(1, sizeof(*res));
    (void)state;
    run_binary(res, args);
    assert_true(WIFEXITED(res->status));
    assert_int_equal(WEXITSTATUS(res->status), 2);
    assert_string_equal(res->err, CONFIGS "/invalid/healthcheck-bad-interval.json:3:92: "
                                          "services.chromadb.healthcheck.interval: invalid "
                                          "duration \"30x\" (expected e.g. \"500ms\", \"30s\", "
                                          "\"1m30s\")\n");
    assert_string_equal(res->out, "");
    run_binary(res, usage1);
    assert_int_equal(WEXITSTATUS(res->status), 2);
    assert_non_null(strstr(res->err, "usage: chroma-init check"));
    run_binary(res, usage2);
    assert_int_equal(WEXITSTATUS(res->status), 2);
    assert_non_null(strstr(res->err, "usage: chroma-init check"));
    free(res);
}

static void check_uses_the_environment_path(void **state)
{
    static const char *const args[] = {"check", NULL};
    run_t *res = calloc(1, sizeof(*res));
    (void)state;
    setenv("CHROMA_INIT_CONFIG", CONFIGS "/valid/depends-list.json", 1);
    run_binary(res, args);
    unsetenv("CHROMA_INIT_CONFIG");
    assert_int_equal(WEXITSTATUS(res->status), 0);
    assert_non_null(strstr(res->out, "start order: db \xe2\x86\x92 cache \xe2\x86\x92 web\n"));
    free(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(invalid_configs_report_exact_errors),
        cmocka_unit_test(every_invalid_file_is_in_the_table),
        cmocka_unit_test(file_errors_name_the_path_as_given),
        cmocka_unit_test(buffers_need_no_terminator),
        cmocka_unit_test(error_positions_follow_the_text),
        cmocka_unit_test(minimal_gets_every_default),
        cmocka_unit_test(full_config_reads_every_key),
        cmocka_unit_test(certgen_defaults),
        cmocka_unit_test(every_healthcheck_form),
        cmocka_unit_test(zero_durations_mean_the_defaults),
        cmocka_unit_test(depends_on_list_form),
        cmocka_unit_test(depends_on_map_form),
        cmocka_unit_test(interpolation_everywhere),
        cmocka_unit_test(reference_configs_load),
        cmocka_unit_test(config_path_resolution),
        cmocka_unit_test(check_prints_resolved_config_and_order),
        cmocka_unit_test(check_json_is_one_document),
        cmocka_unit_test(check_bad_config_exits_2_with_the_message),
        cmocka_unit_test(check_uses_the_environment_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
