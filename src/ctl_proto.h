/* ctl_proto: the client side of the control socket, shared by `chroma-init
 * ctl` and `chroma-init health`. Private to src/ (like sup_internal.h). */
#ifndef CHROMA_INIT_CTL_PROTO_H
#define CHROMA_INIT_CTL_PROTO_H

#include <jansson.h>
#include <stddef.h>

#define CI_CTL_SOCKET_NAME "ctl.sock"
#define CI_CTL_DEFAULT_SOCKET "/run/chroma-init/ctl.sock"
#define CI_CTL_TIMEOUT_MS 5000

/* The socket to talk to: explicit_socket, then $CHROMA_INIT_SOCKET, then
 * <state_dir>/ctl.sock of the config (config_path: explicit or NULL, resolved
 * with ci_cli_config_path), then CI_CTL_DEFAULT_SOCKET when the config cannot
 * be loaded. Returns a new string (caller frees) or NULL when out of memory. */
char *ci_ctl_socket_path(const char *explicit_socket, const char *config_path);

/* Sends request (borrowed) as one line and reads one reply line, within
 * timeout_ms in all. Returns 0 with *reply set (caller decrefs; a JSON object,
 * ok or not), or a negative errno with err set, e.g. "unable to connect to
 * /run/chroma-init/ctl.sock: no such file or directory". */
int ci_ctl_call(const char *path, json_t *request, int timeout_ms, json_t **reply, char *err,
                size_t errlen);

/* The connection options both commands take: --socket PATH, --config FILE
 * (or --opt=VALUE). Returns 1 when argv[*i] was one (and advances *i past
 * its value), 0 when it is something else, -1 when its value is missing. */
int ci_ctl_conn_option(int argc, char **argv, int *i, const char **socket, const char **config);

#endif
