/* `ktlsgw features`: what this kernel and OpenSSL offer, with the reason
 * for everything that is missing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <liburing.h>
#include <bpf/btf.h>
#include <openssl/ssl.h>
#include <openssl/opensslv.h>

#include "cli.h"
#include "caps.h"
#include "ktls.h"
#include "log.h"

struct kg_feat {
	const char *name;
	bool ok;
	char detail[160];
};

static bool kg_kernel_at_least(int maj, int min)
{
	struct utsname u;
	int a = 0, b = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &a, &b) != 2)
		return false;
	return a > maj || (a == maj && b >= min);
}

static size_t kg_feat_uring(struct kg_feat *f)
{
	static const struct { int op; const char *name; } ops[] = {
		{ IORING_OP_ACCEPT, "io_uring ACCEPT (multishot)" },
		{ IORING_OP_POLL_ADD, "io_uring POLL_ADD (multishot)" },
		{ IORING_OP_POLL_REMOVE, "io_uring POLL_REMOVE" },
		{ IORING_OP_TIMEOUT, "io_uring TIMEOUT" },
		{ IORING_OP_READ, "io_uring READ" },
		{ IORING_OP_ASYNC_CANCEL, "io_uring ASYNC_CANCEL" },
	};
	struct io_uring_probe *p = io_uring_get_probe();
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		f[i].name = ops[i].name;
		f[i].ok = p && io_uring_opcode_supported(p, ops[i].op);
		snprintf(f[i].detail, sizeof(f[i].detail), "%s", f[i].ok ? "supported" :
			 p ? "not supported by this kernel" :
			 "io_uring unavailable (kernel.io_uring_disabled or seccomp)");
	}
	if (p)
		io_uring_free_probe(p);
	return i;
}

static size_t kg_feat_bpf(struct kg_feat *f)
{
	struct btf *btf = btf__load_vmlinux_btf();
	struct statfs sf;
	size_t n = 0;

	f[n].name = "BTF (/sys/kernel/btf/vmlinux)";
	f[n].ok = btf != NULL;
	snprintf(f[n].detail, sizeof(f[n].detail), "%s", btf ? "present" :
		 "absent: CONFIG_DEBUG_INFO_BTF=y is needed for field names and CO-RE");
	n++;
	f[n].name = "bpffs (/sys/fs/bpf)";
	f[n].ok = !statfs("/sys/fs/bpf", &sf) && sf.f_type == BPF_FS_MAGIC;
	snprintf(f[n].detail, sizeof(f[n].detail), "%s", f[n].ok ? "mounted" :
		 "not mounted (ktlsgw mounts it when it runs as root)");
	n++;
	f[n].name = "iter/tcp + bpf_sk_storage";
	f[n].ok = btf && btf__find_by_name(btf, "bpf_iter__tcp") > 0;
	snprintf(f[n].detail, sizeof(f[n].detail), "%s", f[n].ok ? "present (kernel 5.9+)" :
		 "absent: live connections cannot be found by the kernel");
	n++;
	f[n].name = "bpf_sock_destroy() kfunc";
	f[n].ok = btf && btf__find_by_name_kind(btf, "bpf_sock_destroy", BTF_KIND_FUNC) > 0;
	snprintf(f[n].detail, sizeof(f[n].detail), "%s", f[n].ok ?
		 "present: revoked sockets are aborted in the kernel" :
		 "absent (kernel < 6.5): the gateway closes revoked connections itself");
	n++;
	btf__free(btf);
	return n;
}

static const char *kg_cell_mode(const struct kg_ktls_cell *c)
{
	if (!c->kernel)
		return "userspace";
	return c->openssl ? "kernel (OpenSSL)" : "kernel (ktlsgw)";
}

int kg_cmd_features(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_ktls_cell cells[12];
	struct kg_feat ur[8], bf[8];
	size_t nc, nu, nb, i;
	char why[200];
	bool ulp, rekey = kg_kernel_at_least(6, 14);
	struct utsname u;

	if (argc > 0 && kg_cli_is_help(argv[0])) {
		printf("Usage: %s [-j] features\n  What this kernel and OpenSSL offer: kTLS per "
		       "version, cipher and direction, rekey, io_uring operations, BPF hooks.\n",
		       cli->prog);
		return KG_EXIT_OK;
	}
	uname(&u);
	ulp = kg_ktls_available(why, sizeof(why));
	nc = kg_ktls_matrix(cells, 12);
	nu = kg_feat_uring(ur);
	nb = kg_feat_bpf(bf);
	if (cli->json) {
		printf("{\"kernel\":\"%s\",\"openssl\":\"%s\",\"tls_ulp\":%s,\"tls_ulp_detail\":\"%s\","
		       "\"ktls\":[", u.release, OpenSSL_version(OPENSSL_VERSION), ulp ? "true" : "false",
		       ulp ? "loaded" : why);
		for (i = 0; i < nc; i++)
			printf("%s{\"tls\":\"%s\",\"cipher\":\"%s\",\"dir\":\"%s\",\"offload\":%s,"
			       "\"by\":\"%s\",\"detail\":\"%s\"}", i ? "," : "",
			       cells[i].version == TLS1_3_VERSION ? "1.3" : "1.2", cells[i].cipher,
			       cells[i].dir == KG_KTLS_TX ? "tx" : "rx", cells[i].kernel ? "true" : "false",
			       cells[i].kernel ? (cells[i].openssl ? "openssl" : "ktlsgw") : "none",
			       cells[i].why);
		printf("],\"rekey\":{\"kernel\":%s,\"detail\":\"%s\"},\"io_uring\":[", rekey ? "true" : "false",
		       rekey ? "kernel can rekey TLS 1.3 (6.14+); ktlsgw still ends the connection on "
		       "a KeyUpdate" : "kernel < 6.14: a client KeyUpdate ends the connection cleanly");
		for (i = 0; i < nu; i++)
			printf("%s{\"name\":\"%s\",\"ok\":%s,\"detail\":\"%s\"}", i ? "," : "", ur[i].name,
			       ur[i].ok ? "true" : "false", ur[i].detail);
		printf("],\"bpf\":[");
		for (i = 0; i < nb; i++)
			printf("%s{\"name\":\"%s\",\"ok\":%s,\"detail\":\"%s\"}", i ? "," : "", bf[i].name,
			       bf[i].ok ? "true" : "false", bf[i].detail);
		printf("]}\n");
		return KG_EXIT_OK;
	}
	printf("kernel %s, %s\n\n", u.release, OpenSSL_version(OPENSSL_VERSION));
	printf("kernel TLS (tls ULP): %s\n", ulp ? "available" : why);
	printf("  %-4s %-18s %-3s %-17s %s\n", "TLS", "cipher", "dir", "data path", "note");
	for (i = 0; i < nc; i++)
		printf("  %-4s %-18s %-3s %-17s %s\n", cells[i].version == TLS1_3_VERSION ? "1.3" : "1.2",
		       cells[i].cipher, cells[i].dir == KG_KTLS_TX ? "tx" : "rx", kg_cell_mode(&cells[i]),
		       cells[i].why);
	printf("  rekey (TLS 1.3 KeyUpdate): %s\n\n", rekey ?
	       "kernel 6.14+ can rekey; ktlsgw ends the connection cleanly (counted)" :
	       "not in this kernel (< 6.14): a KeyUpdate ends the connection cleanly (counted)");
	printf("io_uring:\n");
	for (i = 0; i < nu; i++)
		printf("  %-3s %-32s %s\n", ur[i].ok ? "ok" : "NO", ur[i].name, ur[i].detail);
	printf("BPF (revocation):\n");
	for (i = 0; i < nb; i++)
		printf("  %-3s %-32s %s\n", bf[i].ok ? "ok" : "NO", bf[i].name, bf[i].detail);
	return KG_EXIT_OK;
}
