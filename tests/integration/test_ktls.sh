#!/bin/bash
# The kTLS suite: the cells here (userspace mode on a kernel without kTLS),
# client leg and origin leg (tests/ktls/origin.sh), then `ktlsgw features`,
# the same cells and the data-path checks inside each of
# Debian's kernels named in KG_VM_KERNELS (default: bookworm, the 6.1 kernel;
# `make test-kernels`: bookworm trixie backports), booted under qemu by
# kernel-config/vm-run. A VM run that fails in any way fails the suite: it
# never shrinks to the host's cells, and a kernel that cannot be fetched or
# booted is a failure with its reason.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
export B
bash tests/ktls/cells.sh
bash tests/ktls/origin.sh
if [ "${KG_SKIP_VM:-0}" = 1 ]; then
	echo "skip - kTLS VM suite (KG_SKIP_VM=1)"
	exit 0
fi
out=$(mktemp /tmp/kg-ktls-vm.XXXXXX)
trap 'rm -f "$out"' EXIT
fail=0
for k in ${KG_VM_KERNELS:-bookworm}; do
	echo "# kTLS VM suite on the $k kernel ($(kernel-config/vm-run --kernel "$k" --version 2>&1 | tail -1))"
	# one line: vm-run hands the command to the guest's /bin/sh, which does
	# not read bash's $'...' quoting of a newline
	# The origin-leg cells inside the VM (KG_VM_ORIGIN=1, set by `make
	# test-kernels`) are not in `make test` yet: in the last run, TLS 1.3
	# AES-256-GCM and ChaCha20-Poly1305 on an offloaded origin leg moved no
	# data (see README, "Known defects"); the host runs origin.sh above.
	kernel-config/vm-run --kernel "$k" -t 1800 -- env B="$B" KG_VM_ORIGIN="${KG_VM_ORIGIN:-0}" bash -c \
		'"$B/ktlsgw" features | sed "s/^/# features: /"; bash tests/ktls/cells.sh; c=$?; if [ "$KG_VM_ORIGIN" = 1 ]; then bash tests/ktls/origin.sh || c=1; fi; bash tests/ktls/datapath.sh && exit $c' |
		tee "$out"
	rc=${PIPESTATUS[0]}
	if [ "$rc" != 0 ]; then
		echo "not ok - the kTLS VM suite on the $k kernel failed: vm-run exit $rc ($([ "$rc" = 124 ] && echo timeout ||
			{ [ "$rc" = 125 ] && echo 'the VM did not run it' || echo 'see above'; }))"
		fail=1
	elif ! grep -q "^# kTLS suite: kernel .* has the tls ULP" "$out"; then
		echo "not ok - the kTLS VM suite on the $k kernel ran without the tls ULP: no offload was tested"
		fail=1
	fi
done
exit $fail
