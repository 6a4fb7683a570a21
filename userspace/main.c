/* The ktlsgw binary: everything is a command of cli.c. */
#include "cli.h"

int main(int argc, char **argv)
{
	return kg_cli_main(argc, argv);
}
