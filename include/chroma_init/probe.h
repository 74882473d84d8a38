/* probe: native health probes, ["HTTP", url, ...fallbacks] and ["TCP", "host:port"].
 *
 * They run inside the libuv event loop: no fork, no curl. Names are resolved
 * with uv_getaddrinfo and every address is tried in order; https:// runs
 * OpenSSL over memory BIOs driven by the loop's reads and writes, through
 * chroma-init-tls.so (tls.h), loaded at the first https:// probe; when it
 * cannot be loaded the probe fails with the reason ("TLS: unable to load
 * chroma-init-tls.so: ...").
 *
 * HTTP: GET (HTTP/1.1, Host, Connection: close, User-Agent: chroma-init);
 * healthy on 2xx/3xx (like `curl -f`; redirects are not followed). A 404 or
 * 410 moves on to the next URL; any other status, a connection or TLS error,
 * a malformed response, or the overall timeout (one timer for the whole probe,
 * across fallbacks) is a failure, and res->output says why. TCP: healthy when
 * the connection is established. */
#ifndef CHROMA_INIT_PROBE_H
#define CHROMA_INIT_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "chroma_init/config.h"

typedef struct ci_probe ci_probe_t;

typedef struct ci_probe_result {
    bool ok;          /* healthy */
    int http_status;  /* last HTTP status seen, 0 if none */
    size_t url_index; /* HTTP: index in hc->argv of the URL that answered (ok: remember it) */
    /* One line for the health log, e.g. "HTTP 200 OK from http://...",
     * "connect: connection refused (http://127.0.0.1:8000/...)",
     * "timeout after 10s (http://...)", "TLS: certificate verify failed: ...". */
    char output[512];
} ci_probe_result_t;

typedef void (*ci_probe_cb)(ci_probe_t *probe, const ci_probe_result_t *res, void *data);

/* Starts one probe on loop. hc (kind CI_HC_HTTP or CI_HC_TCP) is borrowed and
 * must outlive the probe. first_url: index in hc->argv of the URL to try first
 * (the one remembered from the last success; the others follow in config
 * order; out of range means 0). cb is called exactly once, from the loop and
 * never from inside this call, unless ci_probe_cancel() is called first; the
 * probe frees itself after cb returns (its handles close asynchronously).
 * *out (may be NULL) receives the probe, valid until cb runs or cancel.
 * Returns 0, or a negative errno (-EINVAL for a kind that is not a native
 * probe or no target), and then cb is never called. A bad URL is not an error
 * here: it is reported through cb as a failed probe. */
int ci_probe_start(uv_loop_t *loop, const ci_healthcheck_t *hc, size_t first_url, ci_probe_cb cb,
                   void *data, ci_probe_t **out);

/* Cancels a running probe, in any state: cb will not be called; handles are
 * closed and memory freed asynchronously (run the loop to let them close).
 * Must not be called once cb has run. */
void ci_probe_cancel(ci_probe_t *probe);

/* Frees process-wide caches (one SSL_CTX per (ca, insecure), reloaded when
 * the CA file changes, kept by the TLS module if loaded) at exit. Call with no
 * probe running. */
void ci_probe_cleanup(void);

#endif
