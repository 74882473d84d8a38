/* Placeholder until the check subcommand lands. */
#include <stdio.h>

#include "chroma_init/cli.h"

int ci_cli_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "chroma-init: fatal: check is not implemented yet\n");
    return 2;
}
