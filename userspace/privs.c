/*
 * The privilege drop: become [global] user, keep cap_bpf and
 * cap_dac_read_search, set no_new_privs. Called once, before any worker.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "privs.h"

bool kg_cap_known(int cap)
{
	return prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0;
}

static int kg_capset(uint64_t keep)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

int kg_privs_drop(const char *user, uint64_t keep, const char *const *chown_paths,
		  char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int cap, rc, last;

	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (rc || !res) {
		snprintf(err, errlen, "user = %s: %s; create it (useradd --system --no-create-home "
			 "--shell /usr/sbin/nologin %s) or remove the line", user,
			 rc ? strerror(rc) : "no such user", user);
		return rc ? -rc : -ENOENT;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "user = %s is root (uid 0): nothing would be dropped; name an "
			 "unprivileged account", user);
		return -EINVAL;
	}
	if (geteuid() != 0) {
		if (geteuid() == pw.pw_uid)
			return 0;	/* started as that user already (systemd User=) */
		snprintf(err, errlen, "user = %s: switching users needs ktlsgw to start as root "
			 "(running as uid %u)", user, (unsigned)geteuid());
		return -EPERM;
	}
	for (; chown_paths && *chown_paths; chown_paths++)
		if (chown(*chown_paths, pw.pw_uid, pw.pw_gid) && errno != ENOENT) {
			rc = -errno;
			snprintf(err, errlen, "cannot give %s to user %s: %s", *chown_paths, user,
				 strerror(errno));
			return rc;
		}
	/* Shrink the bounding set while CAP_SETPCAP is still ours: nothing the
	 * process executes later can regain what is dropped here. */
	for (last = 0; kg_cap_known(last + 1); last++)
		;
	for (cap = 0; cap <= last; cap++)
		if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) {
			rc = -errno;
			snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s",
				 cap, strerror(errno));
			return rc;
		}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || setgroups(1, &pw.pw_gid) ||
	    setgid(pw.pw_gid) || setuid(pw.pw_uid)) {
		rc = -errno;
		snprintf(err, errlen, "cannot become user %s (uid %u, gid %u): %s", user,
			 (unsigned)pw.pw_uid, (unsigned)pw.pw_gid, strerror(errno));
		return rc;
	}
	(void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	rc = kg_capset(keep);
	if (rc) {
		snprintf(err, errlen, "cannot keep the capabilities 0x%llx as user %s: %s",
			 (unsigned long long)keep, user, strerror(-rc));
		return rc;
	}
	/* Not even a setuid binary run later could gain privileges back. */
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (setuid(0) == 0) {	/* paranoia: the switch must be irreversible */
		snprintf(err, errlen, "user = %s: could switch back to root; refusing to run", user);
		return -EPERM;
	}
	return 0;
}
