/* `ktlsgw pki init DIR`: a demo PKI to try the gateway (and run the tests) with. */
#include <stdio.h>

#include "cli.h"
#include "json.h"
#include "pki.h"

static int kg_cmd_pki_init(struct kg_cli *cli, int argc, char **argv)
{
	const char *dir = argv[0];

	if (kg_pki_init(dir, cli->opt[KG_OPT_TEST] != NULL))
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "pki init %s failed (see above)", dir);
	if (cli->json)
		return kg_cli_print_json(cli, kg_json_obj("sb", "dir", dir, "ok", true));
	printf("demo PKI written to %s (root CA ca.pem, client CA client-ca.pem, server "
	       "server.pem, clients alice.pem and bob.pem)\n", dir);
	return KG_EXIT_OK;
}

const struct kg_cmd kg_pki_cmds[] = {
	{ "init", kg_cmd_pki_init, NULL, "[--test] DIR",
	  "write a demo PKI (root, client CA, server, two clients)",
	  "Made with the OpenSSL library: root CA, client-issuing intermediate, a server\n"
	  "certificate for localhost, 127.0.0.1 and ::1, clients alice (ECDSA) and bob (RSA).\n",
	  KG_OPTF(KG_OPT_TEST), 1, 1 },
	{ 0 }
};
