/* certgen_not_after: ci_certgen_not_after for the core, through the TLS
 * module (the real one is in src/tls/certgen.c, inside chroma-init-tls.so).
 *
 * Temporary: its only caller is the supervisor's renewal schedule, which is
 * to read notAfter without OpenSSL; until then, calling it maps OpenSSL into
 * the init. Delete this file with that call. */
#include <errno.h>

#include "chroma_init/certgen.h"
#include "chroma_init/log.h"
#include "chroma_init/tls.h"

int ci_certgen_not_after(const char *cert_path, int64_t *out)
{
    char err[512];
    const ci_tls_api_t *t = ci_tls_load(err, sizeof(err));
    if (!t) {
        static bool warned;
        if (!warned)
            ci_log_eventf(CI_LOG_WARN, NULL, "tls-module", -1,
                          "unable to load " CI_TLS_MODULE_NAME ": %s", err);
        warned = true;
        return -ENOSYS;
    }
    return t->certgen_not_after(cert_path, out);
}
