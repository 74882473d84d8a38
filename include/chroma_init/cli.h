/* cli: the subcommands of the chroma-init binary. Each returns the process
 * exit code (0 ok, 1 failure, 2 bad usage or bad config). argv[0] is the
 * subcommand name. */
#ifndef CHROMA_INIT_CLI_H
#define CHROMA_INIT_CLI_H

int ci_cli_check(int argc, char **argv);
/* certgen lives in the TLS module (tls.h): main() reaches it through ci_tls_load(). */
int ci_cli_certgen(int argc, char **argv);
int ci_cli_ctl(int argc, char **argv);
int ci_cli_health(int argc, char **argv);
/* The default mode: supervise the services of a config, or one command after "--". */
int ci_cli_run(int argc, char **argv);

/* Resolves the config path: explicit, then $CHROMA_INIT_CONFIG, then /etc/chroma-init/init.json. */
const char *ci_cli_config_path(const char *explicit_path);

#endif
