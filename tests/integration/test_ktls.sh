#!/bin/bash
# The kTLS suite: the cells here (userspace mode on a kernel without kTLS),
# then the cells and the data-path checks inside Debian's 6.1 kernel (kTLS
# module) booted under qemu by kernel-config/vm-run. A VM run that fails in
# any way fails the suite: it never shrinks to the host's cells.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
export B
bash tests/ktls/cells.sh
if [ "${KG_SKIP_VM:-0}" = 1 ]; then
	echo "skip - kTLS VM suite (KG_SKIP_VM=1)"
	exit 0
fi
out=$(mktemp /tmp/kg-ktls-vm.XXXXXX)
trap 'rm -f "$out"' EXIT
kernel-config/vm-run -t 1800 -- bash -c 'bash tests/ktls/cells.sh; c=$?; bash tests/ktls/datapath.sh && exit $c' |
	tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ]; then
	echo "not ok - the kTLS VM suite failed: vm-run exit $rc ($([ "$rc" = 124 ] && echo timeout ||
		{ [ "$rc" = 125 ] && echo 'the VM did not run it' || echo 'see above'; }))"
	exit 1
fi
if ! grep -q "^# kTLS suite: kernel .* has the tls ULP" "$out"; then
	echo "not ok - the kTLS VM suite ran without the tls ULP: no offload was tested"
	exit 1
fi
exit 0
