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
#include "json.h"
#include "ktls.h"
#include "log.h"

struct kg_feat {
	const char *name;
	bool ok;
	char detail[160];
};

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

static const char *kg_cell_by(const struct kg_ktls_cell *c)
{
	if (!c->kernel)
		return "none";
	return c->openssl ? "openssl" : "ktlsgw";
}

/* [{"name", "ok", "detail"}, …] of @n checks; NULL when out of memory. */
static struct json_object *kg_feat_json(const struct kg_feat *f, size_t n)
{
	struct json_object *a = json_object_new_array(), *o;
	size_t i;

	for (i = 0; a && i < n; i++) {
		o = kg_json_obj("sbs", "name", f[i].name, "ok", f[i].ok, "detail", f[i].detail);
		if (kg_json_array_add(a, o)) {
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

/* The kTLS cells, one object each; NULL when out of memory. */
static struct json_object *kg_cells_json(const struct kg_ktls_cell *c, size_t n)
{
	struct json_object *a = json_object_new_array(), *o;
	size_t i;

	for (i = 0; a && i < n; i++) {
		o = kg_json_obj("sssbss", "tls", c[i].version == TLS1_3_VERSION ? "1.3" : "1.2",
				"cipher", c[i].cipher, "dir", c[i].dir == KG_KTLS_TX ? "tx" : "rx",
				"offload", c[i].kernel, "by", kg_cell_by(&c[i]), "detail", c[i].why);
		if (kg_json_array_add(a, o)) {
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

#define KG_REKEY_YES "the kernel takes the next TLS 1.3 key (6.14+): ktlsgw follows KeyUpdates " \
	"both ways on the kernel path (ktlsgw_ktls_rekeys_total)"
#define KG_REKEY_NO "the kernel cannot rekey (before 6.14): a KeyUpdate on the kernel path ends " \
	"the connection cleanly (ktlsgw_keyupdate_ends_total)"
#define KG_REKEY_NONE "no kernel TLS here: OpenSSL answers KeyUpdates on the userspace path"

int kg_cmd_features(struct kg_cli *cli, int argc, char **argv)
{
	struct kg_ktls_cell cells[12];
	struct kg_feat ur[8], bf[8];
	size_t nc, nu, nb, i;
	char why[200];
	char rekey_why[160];
	const char *rekey;
	bool ulp, can_rekey;
	struct utsname u;

	uname(&u);
	ulp = kg_ktls_available(why, sizeof(why));
	can_rekey = ulp && kg_ktls_can_rekey(rekey_why, sizeof(rekey_why));
	rekey = can_rekey ? KG_REKEY_YES : ulp ? KG_REKEY_NO : KG_REKEY_NONE;
	nc = kg_ktls_matrix(cells, 12);
	nu = kg_feat_uring(ur);
	nb = kg_feat_bpf(bf);
	if (cli->json)
		return kg_cli_print_json(cli, kg_json_obj(
			"ssbsoooo", "kernel", u.release, "openssl", OpenSSL_version(OPENSSL_VERSION),
			"tls_ulp", ulp, "tls_ulp_detail", ulp ? "loaded" : why,
			"ktls", kg_cells_json(cells, nc),
			"rekey", kg_json_obj("bs", "kernel", can_rekey, "detail", rekey),
			"io_uring", kg_feat_json(ur, nu), "bpf", kg_feat_json(bf, nb)));
	printf("kernel %s, %s\n\n", u.release, OpenSSL_version(OPENSSL_VERSION));
	printf("kernel TLS (tls ULP): %s\n", ulp ? "available" : why);
	printf("  %-4s %-18s %-3s %-17s %s\n", "TLS", "cipher", "dir", "data path", "note");
	for (i = 0; i < nc; i++)
		printf("  %-4s %-18s %-3s %-17s %s\n", cells[i].version == TLS1_3_VERSION ? "1.3" : "1.2",
		       cells[i].cipher, cells[i].dir == KG_KTLS_TX ? "tx" : "rx", kg_cell_mode(&cells[i]),
		       cells[i].why);
	printf("  rekey (TLS 1.3 KeyUpdate): %s\n\n", rekey);
	printf("io_uring:\n");
	for (i = 0; i < nu; i++)
		printf("  %-3s %-32s %s\n", ur[i].ok ? "ok" : "NO", ur[i].name, ur[i].detail);
	printf("BPF (revocation):\n");
	for (i = 0; i < nb; i++)
		printf("  %-3s %-32s %s\n", bf[i].ok ? "ok" : "NO", bf[i].name, bf[i].detail);
	return KG_EXIT_OK;
}
