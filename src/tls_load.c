/* tls_load: finds and loads chroma-init-tls.so on first use (see tls.h). */
#include "chroma_init/tls.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const ci_tls_api_t *api; /* process-wide, set once loaded */

/* Opens path and checks the table. Returns it, or NULL with err set. On
 * success the handle stays open until exit. */
static const ci_tls_api_t *open_module(const char *path, char *err, size_t errlen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(err, errlen, "%s", why ? why : path);
        return NULL;
    }
    ci_tls_entry_fn entry;
    *(void **)&entry = dlsym(h, CI_TLS_ENTRY);
    if (!entry) {
        snprintf(err, errlen, "%s: no symbol %s", path, CI_TLS_ENTRY);
        goto fail;
    }
    const ci_tls_api_t *t = entry();
    if (!t || t->version != CI_TLS_API_VERSION) {
        snprintf(err, errlen, "%s: API version %u, expected %u", path, t ? t->version : 0u,
                 CI_TLS_API_VERSION);
        goto fail;
    }
    return t;

fail:
    dlclose(h);
    return NULL;
}

const ci_tls_api_t *ci_tls_load(char *err, size_t errlen)
{
    if (api) return api;
    const char *env = getenv("CHROMA_INIT_TLS_MODULE");
    if (env && *env) return api = open_module(env, err, errlen);

    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        snprintf(err, errlen, "cannot read /proc/self/exe: %s", n < 0 ? strerror(errno) : "empty");
        return NULL;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    char cand[2][PATH_MAX + 64];
    snprintf(cand[0], sizeof(cand[0]), "%s/%s", exe, CI_TLS_MODULE_NAME);
    snprintf(cand[1], sizeof(cand[1]), "%s/../lib/chroma-init/%s", exe, CI_TLS_MODULE_NAME);
    for (size_t i = 0; i < 2; i++) {
        if (access(cand[i], F_OK) < 0 && errno == ENOENT) continue;
        return api = open_module(cand[i], err, errlen);
    }
    snprintf(err, errlen, "not found in %s, %s (set CHROMA_INIT_TLS_MODULE)", cand[0], cand[1]);
    return NULL;
}

const ci_tls_api_t *ci_tls_loaded(void)
{
    return api;
}
