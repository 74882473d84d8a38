/* ci-helper: deterministic children for the process tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "exit")) return atoi(argv[2]);
    fprintf(stderr, "usage: ci-helper exit N\n");
    return 2;
}
