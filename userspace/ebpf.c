/*
 * The BPF objects of revocation: load or open the pinned map, socket tags
 * and iterator, look up, tag, put, delete, scan. Knows no state file and
 * no policy (revoke.c).
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

#include "ebpf.h"
#include "log.h"
#include "revoke.skel.h"
#include "cut.skel.h"

struct kg_ebpf {
	struct kg_revoke_bpf *scan;
	struct kg_cut_bpf *cut;
	struct bpf_link *iter;		/* NULL when the pinned link is used */
	/* -1 until opened: a short-lived command on the pins opens the
	 * iterator only when it cuts, and never the tags. */
	int revoked_fd, tags_fd, iter_fd;
	bool destroy;
	bool on_pins;			/* the fds come from bpf_obj_get: ours to close */
	char pin_root[256];
};

/* Pinned by the gateway so the CLI can run the cut without loading programs. */
#define KG_PIN_ITER_CUT "iter_cut"
#define KG_PIN_ITER_SCAN "iter_scan"

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

void kg_ebpf_close(struct kg_ebpf *b)
{
	if (!b)
		return;
	if (b->on_pins) {
		if (b->revoked_fd >= 0)
			close(b->revoked_fd);
		/* After a load on the pins (kg_ebpf_iter_open), the iterator is
		 * the link's own fd. */
		if (b->iter_fd >= 0 && !b->iter)
			close(b->iter_fd);
	}
	bpf_link__destroy(b->iter);
	kg_cut_bpf__destroy(b->cut);
	kg_revoke_bpf__destroy(b->scan);
	free(b);
}

/*
 * The fast path for short-lived commands (revoke add|del|list): the running
 * (or last) gateway's map, by its pin. Nothing is loaded and the kernel's
 * BTF is not read: that parse is most of a command's cost (two objects,
 * thousands of reads of /sys/kernel/btf/vmlinux). NULL if not pinned.
 */
static struct kg_ebpf *kg_ebpf_open_pinned(const char *pin_root)
{
	char path[400];
	struct kg_ebpf *b;
	int fd;

	snprintf(path, sizeof(path), "%s/revoked", pin_root);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return NULL;
	}
	b->on_pins = true;
	b->revoked_fd = fd;
	b->tags_fd = -1;
	b->iter_fd = -1;
	snprintf(b->pin_root, sizeof(b->pin_root), "%s", pin_root);
	return b;
}

/* The id of the BPF object behind @fd (map, program or link), 0 if unknown. */
static __u32 kg_bpf_id(int fd)
{
	struct bpf_map_info mi = { 0 };
	__u32 len = sizeof(mi);

	/* id is the second field of every info struct; map_info is the
	 * smallest that has it and the kernel truncates to @len. */
	if (bpf_obj_get_info_by_fd(fd, &mi, &len))
		return 0;
	return mi.id;
}

/*
 * Does the pinned iterator @link_fd check the map @map_fd? A pin left from
 * an earlier map (pins removed by hand, then recreated) would cut nothing.
 * True when it cannot be told (no CAP_SYS_ADMIN for the id lookups): the
 * gateway replaces the pin at every start.
 */
static bool kg_iter_uses_map(int link_fd, int map_fd)
{
	struct bpf_link_info li = { 0 };
	struct bpf_prog_info pi = { 0 };
	__u32 ids[8], len, map_id, i;
	int prog_fd;
	bool uses = true;

	map_id = kg_bpf_id(map_fd);
	len = sizeof(li);
	if (!map_id || bpf_obj_get_info_by_fd(link_fd, &li, &len))
		return true;
	prog_fd = bpf_prog_get_fd_by_id(li.prog_id);
	if (prog_fd < 0)
		return true;
	pi.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
	pi.map_ids = (__u64)(uintptr_t)ids;
	len = sizeof(pi);
	if (!bpf_obj_get_info_by_fd(prog_fd, &pi, &len)) {
		uses = false;
		for (i = 0; i < pi.nr_map_ids && i < sizeof(ids) / sizeof(ids[0]); i++)
			if (ids[i] == map_id)
				uses = true;
	}
	close(prog_fd);
	return uses;
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

/*
 * The iterator for a command opened on the pins: the pinned link when it
 * checks the pinned map, else the programs are loaded here (once: the link
 * is pinned for the commands that follow).
 */
static int kg_ebpf_iter_open(struct kg_ebpf *b)
{
	static const char *const names[] = { KG_PIN_ITER_CUT, KG_PIN_ITER_SCAN };
	char path[400], err[512];
	size_t i;
	int fd, rc;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", b->pin_root, names[i]);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (kg_iter_uses_map(fd, b->revoked_fd)) {
			b->iter_fd = fd;
			b->destroy = i == 0;
			return 0;
		}
		kg_dbg("%s belongs to another map: replacing it", path);
		close(fd);
	}
	rc = kg_ebpf_load(b, err, sizeof(err));
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
	if (prefer_pinned) {
		b = kg_ebpf_open_pinned(pin_root);
		if (b) {
			*out = b;
			return 0;
		}
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

bool kg_ebpf_can_destroy(const struct kg_ebpf *b)
{
	return b && b->destroy;
}

int kg_ebpf_tag(struct kg_ebpf *b, int fd, const uint8_t fp[KG_FP_LEN], uint64_t conn_id)
{
	struct kg_sk_tag tag;

	memcpy(tag.sha256, fp, KG_FP_LEN);
	tag.conn_id = conn_id;
	if (bpf_map_update_elem(b->tags_fd, &fd, &tag, BPF_ANY))
		return -errno;
	return 0;
}

int kg_ebpf_revoked(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN], struct kg_revoke_val *val)
{
	struct kg_revoke_val v;

	if (!bpf_map_lookup_elem(b->revoked_fd, fp, &v)) {
		if (val)
			*val = v;
		return 1;
	}
	return errno == ENOENT ? 0 : -errno;
}

int kg_ebpf_put(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN], const struct kg_revoke_val *val)
{
	if (bpf_map_update_elem(b->revoked_fd, fp, val, BPF_ANY))
		return -errno;
	return 0;
}

int kg_ebpf_del(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN])
{
	if (bpf_map_delete_elem(b->revoked_fd, fp) && errno != ENOENT)
		return -errno;
	return 0;
}

int kg_ebpf_foreach(struct kg_ebpf *b,
		    int (*fn)(const uint8_t fp[KG_FP_LEN], const struct kg_revoke_val *v, void *arg),
		    void *arg)
{
	struct kg_fp_key key, next;
	struct kg_revoke_val v;
	void *prev = NULL;
	int rc;

	while (!bpf_map_get_next_key(b->revoked_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(b->revoked_fd, &key, &v))
			continue;	/* deleted meanwhile */
		rc = fn(key.sha256, &v, arg);
		if (rc)
			return rc;
	}
	return errno == ENOENT ? 0 : -errno;
}

int kg_ebpf_scan(struct kg_ebpf *b, struct kg_ebpf_hit *hits, size_t max)
{
	struct kg_sk_tag tags[64];
	size_t n = 0, i;
	ssize_t r;
	int fd;

	if (b->iter_fd < 0) {
		int rc = kg_ebpf_iter_open(b);

		if (rc)
			return rc;
	}
	fd = bpf_iter_create(b->iter_fd);
	if (fd < 0)
		return -errno;
	while ((r = read(fd, tags, sizeof(tags))) > 0) {
		for (i = 0; i < (size_t)r / sizeof(tags[0]) && n < max; i++, n++) {
			memcpy(hits[n].fp, tags[i].sha256, KG_FP_LEN);
			hits[n].conn_id = tags[i].conn_id;
		}
	}
	if (r < 0 && errno != EAGAIN) {
		r = -errno;
		close(fd);
		return (int)r;
	}
	close(fd);
	return (int)n;
}
