/* Placeholder until the health subcommand lands. */
#include <stdio.h>

#include "chroma_init/cli.h"

int ci_cli_health(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "chroma-init: fatal: health is not implemented yet\n");
    return 2;
}
