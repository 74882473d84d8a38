/* probe_tls: the functions behind the probe part of ci_tls_api_t (see
 * include/chroma_init/tls.h for their contracts). Internal to the module. */
#ifndef CHROMA_INIT_PROBE_TLS_H
#define CHROMA_INIT_PROBE_TLS_H

#include "chroma_init/tls.h"

ci_tls_conn_t *ci_probe_tls_conn_new(const char *ca, bool insecure, const char *host,
                                     bool host_is_ip, char *err, size_t errlen);
int ci_probe_tls_conn_handshake(ci_tls_conn_t *c);
int ci_probe_tls_conn_feed(ci_tls_conn_t *c, const char *buf, size_t len);
size_t ci_probe_tls_conn_pending(ci_tls_conn_t *c);
int ci_probe_tls_conn_take_out(ci_tls_conn_t *c, char *buf, size_t len);
int ci_probe_tls_conn_write(ci_tls_conn_t *c, const char *buf, size_t len);
int ci_probe_tls_conn_read(ci_tls_conn_t *c, char *buf, size_t len);
void ci_probe_tls_conn_error(ci_tls_conn_t *c, char *buf, size_t len);
void ci_probe_tls_conn_free(ci_tls_conn_t *c);
void ci_probe_tls_cleanup(void);

#endif
