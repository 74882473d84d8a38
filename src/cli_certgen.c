/* Placeholder until the certgen subcommand lands. */
#include <stdio.h>

#include "chroma_init/cli.h"

int ci_cli_certgen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "chroma-init: fatal: certgen is not implemented yet\n");
    return 2;
}
