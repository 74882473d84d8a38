/* Placeholder until the run subcommand lands. */
#include <stdio.h>

#include "chroma_init/cli.h"

int ci_cli_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "chroma-init: fatal: run is not implemented yet\n");
    return 2;
}
