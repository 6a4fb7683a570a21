/* `ktlsgw fingerprint CERT`: the SHA-256 that revocation keys on, as
 * openssl prints it, so an operator can check one against the other. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "verify.h"

int kg_cmd_fingerprint(struct kg_cli *cli, int argc, char **argv)
{
	const char *path = argv[0];
	char out[KG_FP_COLON_LEN];
	uint8_t fp[KG_FP_LEN];
	int rc;

	rc = kg_fp_file(path, fp);
	if (rc)
		return kg_cli_error(cli, KG_EXIT_RUNTIME, "%s: %s", path, rc == -EPROTO ?
				    "no PEM or DER certificate in the file" : strerror(-rc));
	kg_fp_format(fp, cli->opt[KG_OPT_COLONS] != NULL, out, sizeof(out));
	if (cli->json)
		return kg_cli_print_json(cli, kg_json_obj("ss", "file", path, "sha256", out));
	printf("%s\n", out);
	return KG_EXIT_OK;
}
