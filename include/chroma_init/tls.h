/* tls: the OpenSSL half of chroma-init, as a loadable module.
 *
 * PID 1 must not map libssl/libcrypto (about 1.7 MB of RSS) unless it needs
 * TLS, so everything that uses OpenSSL lives in chroma-init-tls.so (sources
 * in src/tls/): the `certgen` subcommand (a separate process) and the
 * https:// side of the health probes. The core loads it with ci_tls_load()
 * the first time it needs it and calls it through the versioned table below;
 * the module exports one symbol, CI_TLS_ENTRY, which returns the table.
 *
 * Probe connections run OpenSSL over memory buffers: the caller moves bytes
 * between its socket and the connection (conn_feed: socket -> TLS,
 * conn_pending/conn_take_out: TLS -> socket) and drives it with
 * conn_handshake, conn_write and conn_read. Return codes: 0 or a byte count,
 * -EAGAIN when TLS needs more bytes from the peer (flush the output, wait for
 * input), -EPROTO on a TLS error (conn_error then says why). */
#ifndef CHROMA_INIT_TLS_H
#define CHROMA_INIT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CI_TLS_API_VERSION 1u
#define CI_TLS_ENTRY "ci_tls_module_api"
#define CI_TLS_MODULE_NAME "chroma-init-tls.so"

typedef struct ci_tls_conn ci_tls_conn_t;

typedef struct ci_tls_api {
    unsigned version; /* CI_TLS_API_VERSION */

    /* `chroma-init certgen ...` (argv[0] is "certgen"): the process exit code. */
    int (*cli_certgen)(int argc, char **argv);
    /* notAfter of the PEM certificate at path (see ci_certgen_not_after). */
    int (*certgen_not_after)(const char *cert_path, int64_t *out);

    /* A client connection to host (a name, or an IP literal when host_is_ip),
     * verified against the CA file ca (NULL: the system store) unless
     * insecure. Contexts are cached per (ca, insecure) and reloaded when the
     * CA file changes. NULL on error, with err set (e.g. "cannot load CA file
     * X: ..."). Caller frees with conn_free. */
    ci_tls_conn_t *(*conn_new)(const char *ca, bool insecure, const char *host, bool host_is_ip,
                               char *err, size_t errlen);
    /* Advances the handshake: 0 done, -EAGAIN, -EPROTO. */
    int (*conn_handshake)(ci_tls_conn_t *c);
    /* Bytes read from the socket. 0, or -EIO. */
    int (*conn_feed)(ci_tls_conn_t *c, const char *buf, size_t len);
    /* Bytes waiting to be written to the socket. */
    size_t (*conn_pending)(ci_tls_conn_t *c);
    /* Takes up to len of them into buf: the count (> 0), or -EIO. */
    int (*conn_take_out)(ci_tls_conn_t *c, char *buf, size_t len);
    /* Sends application data (all of it): 0, or -EPROTO. */
    int (*conn_write)(ci_tls_conn_t *c, const char *buf, size_t len);
    /* Receives application data: a count > 0, 0 at close_notify, -EAGAIN, -EPROTO. */
    int (*conn_read)(ci_tls_conn_t *c, char *buf, size_t len);
    /* Why the last -EPROTO happened, e.g. "certificate verify failed: ...",
     * "unexpected end of stream". Clears the error queue. */
    void (*conn_error)(ci_tls_conn_t *c, char *buf, size_t len);
    void (*conn_free)(ci_tls_conn_t *c);

    /* Frees the process-wide context cache. Call with no connection open. */
    void (*cleanup)(void);
} ci_tls_api_t;

typedef const ci_tls_api_t *(*ci_tls_entry_fn)(void);

/* Loads chroma-init-tls.so (once; a failure is retried on the next call):
 * $CHROMA_INIT_TLS_MODULE when set (only that), else next to the executable,
 * else <exe dir>/../lib/chroma-init/. Returns the table (borrowed, valid
 * until exit), or NULL with err set ("...: cannot open shared object file:
 * No such file or directory", "not found in A, B", "API version 2, expected 1"). */
const ci_tls_api_t *ci_tls_load(char *err, size_t errlen);

/* The table if the module is already loaded, else NULL (never loads it). */
const ci_tls_api_t *ci_tls_loaded(void);

#endif
