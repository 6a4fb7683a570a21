/*
 * The BPF objects of revocation, loaded with libbpf: the programs, the maps
 * created and pinned, the iterator attached and pinned. What is done on
 * the pins (look up, tag, put, delete, scan) is ebpf_pin.c's. Knows no
 * state file and no policy (revoke.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ebpf_int.h"
#include "log.h"
#include "revoke.h"
#include "revoke.skel.h"
#include "cut.skel.h"

static int kg_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	kg_dbg("libbpf: %s", msg);
	return 0;
}

static int kg_mkdir_p(const char *path, mode_t mode)
{
	char tmp[256], *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* bpffs must be mounted at /sys/fs/bpf for pins to outlive the process. */
static int kg_bpffs_ensure(char *err, size_t errlen)
{
	struct statfs sf;

	if (!statfs("/sys/fs/bpf", &sf) && sf.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
		int e = errno;

		snprintf(err, errlen, "bpffs is not mounted on /sys/fs/bpf and mounting it failed (%s); "
			 "run `mount -t bpf bpf /sys/fs/bpf` as root, or give ktlsgw CAP_SYS_ADMIN",
			 strerror(e));
		return -e;
	}
	return 0;
}

int kg_ebpf_pin_iter(struct kg_ebpf *b)
{
	char path[400];
	int rc;

	if (!b->iter)
		return 0;
	snprintf(path, sizeof(path), "%s/" KG_PIN_ITER_CUT, b->pin_root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" KG_PIN_ITER_SCAN, b->pin_root);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", b->pin_root,
		 b->destroy ? KG_PIN_ITER_CUT : KG_PIN_ITER_SCAN);
	rc = bpf_link__pin(b->iter, path);
	return rc < 0 ? rc : 0;
}

/*
 * Load both objects on the maps pinned under b->pin_root (created and
 * pinned if missing) and attach the iterator: the aborting one where the
 * kernel has bpf_sock_destroy, else the reporting one. This is the part that
 * reads the kernel's BTF. Fds already open on the pins are kept.
 */
static int kg_ebpf_load(struct kg_ebpf *b, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = b->pin_root);
	int rc;

	b->scan = kg_revoke_bpf__open_opts(&oo);
	if (!b->scan) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(-rc));
		return rc;
	}
	rc = kg_revoke_bpf__load(b->scan);
	if (rc) {
		snprintf(err, errlen, "cannot load the revocation BPF programs: %s%s", strerror(-rc),
			 rc == -EPERM ? "; run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON "
			 "(and check kernel.unprivileged_bpf_disabled)" :
			 "; the kernel needs CONFIG_BPF_SYSCALL, BTF and iter/tcp (5.9+): "
			 "see kernel-config/check");
		return rc;
	}
	if (b->revoked_fd < 0)
		b->revoked_fd = bpf_map__fd(b->scan->maps.revoked);
	if (b->tags_fd < 0)
		b->tags_fd = bpf_map__fd(b->scan->maps.sk_tags);

	/* The aborting iterator is optional: kernels before 6.5 lack the kfunc. */
	b->cut = kg_cut_bpf__open_opts(&oo);
	if (b->cut && kg_cut_bpf__load(b->cut)) {
		kg_cut_bpf__destroy(b->cut);
		b->cut = NULL;
	}
	if (b->cut) {
		b->iter = bpf_program__attach_iter(b->cut->progs.kg_cut, NULL);
		if (!b->iter) {
			kg_cut_bpf__destroy(b->cut);
			b->cut = NULL;
		}
	}
	b->destroy = b->iter != NULL;
	if (!b->iter)
		b->iter = bpf_program__attach_iter(b->scan->progs.kg_scan, NULL);
	if (!b->iter) {
		rc = -errno;
		snprintf(err, errlen, "cannot attach the iter/tcp program: %s; the kernel needs "
			 "BPF iterators (5.9+)", strerror(-rc));
		return rc ? rc : -EINVAL;
	}
	b->iter_fd = bpf_link__fd(b->iter);
	return 0;
}

/* What kg_ebpf_load() made (kg_ebpf_close). */
static void kg_ebpf_unload(struct kg_ebpf *b)
{
	bpf_link__destroy(b->iter);
	kg_cut_bpf__destroy(b->cut);
	kg_revoke_bpf__destroy(b->scan);
}

/*
 * A command on the pins that found no pinned iterator for the map: the
 * programs are loaded here (once: the link is pinned for the commands that
 * follow).
 */
static int kg_ebpf_load_iter(struct kg_ebpf *b)
{
	char err[512];
	int rc = kg_ebpf_load(b, err, sizeof(err));

	if (rc) {
		kg_warn("%s", err);
		return rc;
	}
	if (kg_ebpf_pin_iter(b))
		kg_dbg("cannot pin the revocation iterator under %s", b->pin_root);
	return 0;
}

int kg_ebpf_open(const char *pin_root, bool prefer_pinned, struct kg_ebpf **out, char *err,
		 size_t errlen)
{
	struct kg_ebpf *b;
	int rc;

	*out = NULL;
	libbpf_set_print(kg_libbpf_print);
	if (prefer_pinned && !kg_ebpf_open_pins(pin_root, false, &b)) {
		b->load_iter = kg_ebpf_load_iter;
		b->unload = kg_ebpf_unload;
		*out = b;
		return 0;
	}
	rc = kg_bpffs_ensure(err, errlen);
	if (rc)
		return rc;
	rc = kg_mkdir_p(pin_root, 0700);
	if (rc) {
		snprintf(err, errlen, "cannot create the pin directory %s: %s", pin_root, strerror(-rc));
		return rc;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->revoked_fd = b->tags_fd = b->iter_fd = -1;
	b->unload = kg_ebpf_unload;
	snprintf(b->pin_root, sizeof(b->pin_root), "%s", pin_root);
	rc = kg_ebpf_load(b, err, errlen);
	if (rc)
		goto fail;
	/* A command that had to load (no gateway has run on these pins) leaves
	 * the iterator pinned next to the maps, so the next one does not. */
	if (prefer_pinned && kg_ebpf_pin_iter(b))
		kg_dbg("cannot pin the revocation iterator under %s", pin_root);
	*out = b;
	return 0;
fail:
	kg_ebpf_close(b);
	return rc;
}

int kg_revoker_open(const char *pin_root, const char *state_dir, bool cli,
		    struct kg_revoker **out, char *err, size_t errlen)
{
	struct kg_revoker *r;
	int rc;

	rc = kg_revoker_open_state(state_dir, &r, err, errlen);
	if (rc)
		return rc;
	rc = kg_ebpf_open(pin_root, cli, &r->bpf, err, errlen);
	if (!rc && !cli && kg_ebpf_pin_iter(r->bpf))
		kg_warn("cannot pin the revocation iterator under %s", pin_root);
	if (rc) {
		kg_revoker_close(r);
		return rc;
	}
	*out = r;
	return 0;
}
