/* cli_common: helpers shared by the subcommands. */
#include <stdlib.h>

#include "chroma_init/cli.h"

const char *ci_cli_config_path(const char *explicit_path)
{
    const char *env;
    if (explicit_path && *explicit_path) return explicit_path;
    env = getenv("CHROMA_INIT_CONFIG");
    if (env && *env) return env;
    return "/etc/chroma-init/init.json";
}
