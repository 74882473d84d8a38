/* Unit tests: dependency graph (built from structs, no JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chroma_init/graph.h"

#define MAXS 8

typedef struct fixture {
    ci_config_t cfg;
    ci_service_conf_t svcs[MAXS];
    ci_dep_t deps[MAXS][MAXS];
} fixture_t;

/* spec: "a:b,c;b:;c:b" = a depends on b and c, b on nothing, c on b. Strings borrowed. */
static void build(fixture_t *f, char *spec)
{
    char *save = NULL;
    memset(f, 0, sizeof(*f));
    f->cfg.services = f->svcs;
    for (char *item = strtok_r(spec, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        ci_service_conf_t *s = &f->svcs[f->cfg.nservices];
        char *colon = strchr(item, ':'), *save2 = NULL;
        *colon = '\0';
        s->name = item;
        s->depends_on = f->deps[f->cfg.nservices];
        for (char *d = strtok_r(colon + 1, ",", &save2); d; d = strtok_r(NULL, ",", &save2))
            s->depends_on[s->ndepends_on++].name = d;
        f->cfg.nservices++;
    }
}

/* Resolves spec; on success renders the order as "a b c|0 0 1", else the error. */
static void resolve(const char *spec, char *out, size_t len)
{
    fixture_t f;
    char buf[256];
    size_t order[MAXS];
    unsigned wave[MAXS];
    ci_error_t err;
    size_t n = 0;
    snprintf(buf, sizeof(buf), "%s", spec);
    build(&f, buf);
    if (ci_graph_resolve(&f.cfg, order, wave, &err)) {
        if (strlen(err.msg) < len) strcpy(out, err.msg);
        return;
    }
    for (size_t i = 0; i < f.cfg.nservices; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? " " : "", f.svcs[order[i]].name);
    n += (size_t)snprintf(out + n, len - n, "|");
    for (size_t i = 0; i < f.cfg.nservices; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%u", i ? " " : "", wave[i]);
}

struct spec_case {
    const char *spec, *want;
};

/* Each spec resolved: the waves or the error, as resolve() renders them. */
static void check_cases(const struct spec_case *cases, size_t n)
{
    char out[512];
    for (size_t i = 0; i < n; i++) {
        resolve(cases[i].spec, out, sizeof(out));
        if (strcmp(out, cases[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].spec, out, cases[i].want);
    }
}

static void orders_in_waves(void **state)
{
    static const struct spec_case cases[] = {
        {"a:", "a|0"},
        {"a:;b:;c:", "a b c|0 0 0"},
        {"nginx:cert-gen,chromadb;cert-gen:;chromadb:", "cert-gen chromadb nginx|1 0 0"},
        {"a:b;b:c;c:", "c b a|2 1 0"},
        {"a:c;b:;c:b;d:", "b d c a|2 0 1 0"},
        {"x:a,b;a:;b:a", "a b x|2 0 1"},
    };
    (void)state;
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void errors(void **state)
{
    static const struct spec_case cases[] = {
        {"nginx:chroma;chromadb:", "services.nginx.depends_on: unknown service \"chroma\""},
        {"a:a", "services.a.depends_on: dependency cycle: a -> a"},
        {"a:b;b:a", "services.a.depends_on: dependency cycle: a -> b -> a"},
        {"a:b;b:c;c:a", "services.a.depends_on: dependency cycle: a -> b -> c -> a"},
        {"x:a;a:b;b:a", "services.a.depends_on: dependency cycle: a -> b -> a"},
        {"ok:;a:ok,b;b:ok,a", "services.a.depends_on: dependency cycle: a -> b -> a"},
    };
    (void)state;
    check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void resolves_indices_and_allows_null_outputs(void **state)
{
    fixture_t f;
    char spec[] = "web:db,cache;db:;cache:db";
    ci_error_t err;
    (void)state;
    build(&f, spec);
    assert_int_equal(ci_graph_resolve(&f.cfg, NULL, NULL, &err), 0);
    assert_int_equal(f.svcs[0].depends_on[0].index, 1);
    assert_int_equal(f.svcs[0].depends_on[1].index, 2);
    assert_int_equal(f.svcs[2].depends_on[0].index, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(orders_in_waves),
        cmocka_unit_test(errors),
        cmocka_unit_test(resolves_indices_and_allows_null_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
