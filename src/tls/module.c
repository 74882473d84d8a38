/* module: the one exported symbol of chroma-init-tls.so (everything else in
 * the module has hidden visibility). */
#include "chroma_init/certgen.h"
#include "chroma_init/cli.h"
#include "chroma_init/tls.h"
#include "probe_tls.h"

const ci_tls_api_t *ci_tls_module_api(void) __attribute__((visibility("default")));

static const ci_tls_api_t table = {
    .version = CI_TLS_API_VERSION,
    .cli_certgen = ci_cli_certgen,
    .certgen_not_after = ci_certgen_not_after,
    .conn_new = ci_probe_tls_conn_new,
    .conn_handshake = ci_probe_tls_conn_handshake,
    .conn_feed = ci_probe_tls_conn_feed,
    .conn_pending = ci_probe_tls_conn_pending,
    .conn_take_out = ci_probe_tls_conn_take_out,
    .conn_write = ci_probe_tls_conn_write,
    .conn_read = ci_probe_tls_conn_read,
    .conn_error = ci_probe_tls_conn_error,
    .conn_free = ci_probe_tls_conn_free,
    .cleanup = ci_probe_tls_cleanup,
};

/* Returns the table (static storage, valid while the module is loaded). */
const ci_tls_api_t *ci_tls_module_api(void)
{
    return &table;
}
