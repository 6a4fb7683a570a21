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
	int revoked_fd, tags_fd, iter_fd;
	bool destroy, owns_fds;
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
	if (b->owns_fds) {
		close(b->revoked_fd);
		close(b->tags_fd);
		close(b->iter_fd);
	}
	bpf_link__destroy(b->iter);
	kg_cut_bpf__destroy(b->cut);
	kg_revoke_bpf__destroy(b->scan);
	free(b);
}

/* The fast path for short-lived commands: everything already pinned. */
static struct kg_ebpf *kg_ebpf_open_pinned(const char *pin_root)
{
	char path[400];
	struct kg_ebpf *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->owns_fds = true;
	snprintf(b->pin_root, sizeof(b->pin_root), "%s", pin_root);
	snprintf(path, sizeof(path), "%s/revoked", pin_root);
	b->revoked_fd = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/sk_tags", pin_root);
	b->tags_fd = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/" KG_PIN_ITER_CUT, pin_root);
	b->iter_fd = bpf_obj_get(path);
	b->destroy = b->iter_fd >= 0;
	if (b->iter_fd < 0) {
		snprintf(path, sizeof(path), "%s/" KG_PIN_ITER_SCAN, pin_root);
		b->iter_fd = bpf_obj_get(path);
	}
	if (b->revoked_fd < 0 || b->tags_fd < 0 || b->iter_fd < 0) {
		if (b->revoked_fd >= 0)
			close(b->revoked_fd);
		if (b->tags_fd >= 0)
			close(b->tags_fd);
		if (b->iter_fd >= 0)
			close(b->iter_fd);
		free(b);
		return NULL;
	}
	return b;
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

int kg_ebpf_open(const char *pin_root, bool prefer_pinned, struct kg_ebpf **out, char *err,
		 size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_root);
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
	snprintf(b->pin_root, sizeof(b->pin_root), "%s", pin_root);
	b->scan = kg_revoke_bpf__open_opts(&oo);
	if (!b->scan) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the BPF object: %s", strerror(-rc));
		goto fail;
	}
	rc = kg_revoke_bpf__load(b->scan);
	if (rc) {
		snprintf(err, errlen, "cannot load the revocation BPF programs: %s%s", strerror(-rc),
			 rc == -EPERM ? "; run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON "
			 "(and check kernel.unprivileged_bpf_disabled)" :
			 "; the kernel needs CONFIG_BPF_SYSCALL, BTF and iter/tcp (5.9+): "
			 "see kernel-config/check");
		goto fail;
	}
	b->revoked_fd = bpf_map__fd(b->scan->maps.revoked);
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
	if (b->iter)
		b->iter_fd = bpf_link__fd(b->iter);
	if (!b->iter) {
		rc = -errno;
		snprintf(err, errlen, "cannot attach the iter/tcp program: %s; the kernel needs "
			 "BPF iterators (5.9+)", strerror(-rc));
		goto fail;
	}
	*out = b;
	return 0;
fail:
	kg_ebpf_close(b);
	return rc ? rc : -EINVAL;
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
