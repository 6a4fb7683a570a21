/*
 * The BPF objects of revocation by their pins: open the pinned map and
 * iterator, look up, tag, put, delete, walk, scan. Raw bpf(2) calls and
 * libc only, so the front binary (front.c) revokes without libbpf or the
 * kernel's BTF; loading the programs is ebpf.c's.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "ebpf_int.h"
#include "log.h"

/* Every caller zeroes its whole attr with memset (a "= { 0 }" may leave
 * the union's tail beyond its first member unset, and the kernel refuses a
 * non-zero tail with EINVAL). */
static int kg_bpf(enum bpf_cmd cmd, union bpf_attr *a)
{
	return (int)syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static int kg_bpf_obj_get(const char *path)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.pathname = (uint64_t)(uintptr_t)path;
	return kg_bpf(BPF_OBJ_GET, &a);
}

/* BPF_MAP_LOOKUP_ELEM, _UPDATE_ELEM, _DELETE_ELEM, _GET_NEXT_KEY: 0 or -1 with errno */
static int kg_bpf_map_op(enum bpf_cmd cmd, int fd, const void *key, void *value, uint64_t flags)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(uintptr_t)key;
	if (cmd == BPF_MAP_GET_NEXT_KEY)
		a.next_key = (uint64_t)(uintptr_t)value;
	else
		a.value = (uint64_t)(uintptr_t)value;
	a.flags = flags;
	return kg_bpf(cmd, &a) < 0 ? -1 : 0;
}

static int kg_bpf_info(int fd, void *info, uint32_t *len)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = (uint32_t)fd;
	a.info.info_len = *len;
	a.info.info = (uint64_t)(uintptr_t)info;
	if (kg_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0)
		return -1;
	*len = a.info.info_len;
	return 0;
}

/* The id of the BPF object behind @fd (map, program or link), 0 if unknown. */
static uint32_t kg_bpf_id(int fd)
{
	struct bpf_map_info mi = { 0 };
	uint32_t len = sizeof(mi);

	/* id is the second field of every info struct; map_info is the
	 * smallest that has it and the kernel truncates to @len. */
	if (kg_bpf_info(fd, &mi, &len))
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
	union bpf_attr a;
	uint32_t ids[8], len, map_id, i;
	int prog_fd;
	bool uses = true;

	map_id = kg_bpf_id(map_fd);
	len = sizeof(li);
	if (!map_id || kg_bpf_info(link_fd, &li, &len))
		return true;
	memset(&a, 0, sizeof(a));
	a.prog_id = li.prog_id;
	prog_fd = kg_bpf(BPF_PROG_GET_FD_BY_ID, &a);
	if (prog_fd < 0)
		return true;
	pi.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
	pi.map_ids = (uint64_t)(uintptr_t)ids;
	len = sizeof(pi);
	if (!kg_bpf_info(prog_fd, &pi, &len)) {
		uses = false;
		for (i = 0; i < pi.nr_map_ids && i < sizeof(ids) / sizeof(ids[0]); i++)
			if (ids[i] == map_id)
				uses = true;
	}
	close(prog_fd);
	return uses;
}

int kg_ebpf_iter_pinned(struct kg_ebpf *b)
{
	static const char *const names[] = { KG_PIN_ITER_CUT, KG_PIN_ITER_SCAN };
	char path[400];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", b->pin_root, names[i]);
		fd = kg_bpf_obj_get(path);
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
	return -ENOENT;
}

/*
 * The fast path for short-lived commands (revoke add|del|list): the running
 * (or last) gateway's map, by its pin. Nothing is loaded and the kernel's
 * BTF is not read: that parse is most of a command's cost (two objects,
 * thousands of reads of /sys/kernel/btf/vmlinux).
 */
int kg_ebpf_open_pins(const char *pin_root, bool with_iter, struct kg_ebpf **out)
{
	char path[400];
	struct kg_ebpf *b;
	int fd, rc;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/revoked", pin_root);
	fd = kg_bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	b->on_pins = true;
	b->revoked_fd = fd;
	b->tags_fd = -1;
	b->iter_fd = -1;
	snprintf(b->pin_root, sizeof(b->pin_root), "%s", pin_root);
	if (with_iter) {
		rc = kg_ebpf_iter_pinned(b);
		if (rc) {
			kg_ebpf_close(b);
			return rc;
		}
	}
	*out = b;
	return 0;
}

void kg_ebpf_close(struct kg_ebpf *b)
{
	if (!b)
		return;
	if (b->on_pins) {
		if (b->revoked_fd >= 0)
			close(b->revoked_fd);
		/* After a load on the pins, the iterator is the link's own fd. */
		if (b->iter_fd >= 0 && !b->iter)
			close(b->iter_fd);
	}
	if (b->unload)
		b->unload(b);
	free(b);
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
	if (kg_bpf_map_op(BPF_MAP_UPDATE_ELEM, b->tags_fd, &fd, &tag, BPF_ANY))
		return -errno;
	return 0;
}

int kg_ebpf_revoked(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN], struct kg_revoke_val *val)
{
	struct kg_revoke_val v;

	if (!kg_bpf_map_op(BPF_MAP_LOOKUP_ELEM, b->revoked_fd, fp, &v, 0)) {
		if (val)
			*val = v;
		return 1;
	}
	return errno == ENOENT ? 0 : -errno;
}

int kg_ebpf_put(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN], const struct kg_revoke_val *val)
{
	if (kg_bpf_map_op(BPF_MAP_UPDATE_ELEM, b->revoked_fd, fp, (void *)val, BPF_ANY))
		return -errno;
	return 0;
}

int kg_ebpf_del(struct kg_ebpf *b, const uint8_t fp[KG_FP_LEN])
{
	if (kg_bpf_map_op(BPF_MAP_DELETE_ELEM, b->revoked_fd, fp, NULL, 0) && errno != ENOENT)
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

	while (!kg_bpf_map_op(BPF_MAP_GET_NEXT_KEY, b->revoked_fd, prev, &next, 0)) {
		key = next;
		prev = &key;
		if (kg_bpf_map_op(BPF_MAP_LOOKUP_ELEM, b->revoked_fd, &key, &v, 0))
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
	union bpf_attr a;
	size_t n = 0, i;
	ssize_t r;
	int fd;

	if (b->iter_fd < 0 && kg_ebpf_iter_pinned(b)) {
		int rc = b->load_iter ? b->load_iter(b) : -ENOENT;

		if (rc)
			return rc;
	}
	memset(&a, 0, sizeof(a));
	a.iter_create.link_fd = (uint32_t)b->iter_fd;
	fd = kg_bpf(BPF_ITER_CREATE, &a);
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
