/* Placeholder until the ctl subcommand lands. */
#include <stdio.h>

#include "chroma_init/cli.h"

int ci_cli_ctl(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "chroma-init: fatal: ctl is not implemented yet\n");
    return 2;
}
