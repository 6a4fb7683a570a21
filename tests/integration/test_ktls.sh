#!/bin/bash
# The kTLS suite: the cells here (userspace mode on a kernel without kTLS),
# client leg and origin leg (tests/ktls/origin.sh), then `ktlsgw features`,
# the same cells and the data-path checks inside each of Debian's kernels
# named in KG_VM_KERNELS, booted under qemu by kernel-config/vm-run:
#   - default (`make test`): bookworm (6.1), with the origin-leg cells, and
#     backports (the newest trixie-backports kernel, which can rekey);
#   - `make test-kernels`: bookworm, trixie (6.12) and backports, each with
#     the origin-leg cells (KG_VM_ORIGIN=1).
# The VMs run side by side (each emulated CPU is one host thread), the
# host's cells meanwhile, and the VMs' reports are printed in order after. A VM run that fails in any way fails the
# suite: it never shrinks to the host's cells. Bookworm's kernel is
# required (tests/deps.sh fetches it); another kernel that could not be
# fetched (no archive reachable) is a skip with its reason; one that was
# fetched but fails to boot or to pass is a failure.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
export B
D=$(mktemp -d /tmp/kg-ktls-vm.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$D"' EXIT

# vm_suite KERNEL ORIGIN: the suite inside KERNEL's VM; its report in
# $D/KERNEL.out, vm-run's exit status in $D/KERNEL.rc.
vm_suite() {
	local k=$1 origin=$2
	# one line: vm-run hands the command to the guest's /bin/sh, which does
	# not read bash's $'...' quoting of a newline
	kernel-config/vm-run --kernel "$k" -t 1500 -- env B="$B" KG_VM_ORIGIN="$origin" bash -c \
		'"$B/ktlsgw" features | sed "s/^/# features: /"; bash tests/ktls/cells.sh; c=$?; if [ "$KG_VM_ORIGIN" = 1 ]; then bash tests/ktls/origin.sh || c=1; fi; bash tests/ktls/datapath.sh && exit $c' \
		>"$D/$k.out" 2>&1
	echo $? >"$D/$k.rc"
}

kernels=${KG_VM_KERNELS:-bookworm backports}
[ "${KG_SKIP_VM:-0}" = 1 ] && kernels=""
run=""
fail=0
for k in $kernels; do
	if [ "$k" != bookworm ]; then
		kernel-config/vm-run --kernel "$k" --fetch >"$D/$k.fetch" 2>&1
		frc=$?
		# 125: the archive did not answer or has no such kernel (a skip);
		# anything else is a fault of ours (a failure)
		if [ "$frc" = 125 ]; then
			echo "skip - kTLS VM suite on the $k kernel: it could not be fetched ($(tail -1 "$D/$k.fetch")); sh tests/deps.sh or make test-kernels fetches it when the archive is reachable"
			continue
		elif [ "$frc" != 0 ]; then
			echo "not ok - fetching the $k kernel failed: exit $frc: $(tail -2 "$D/$k.fetch" | tr '\n' ' ')"
			fail=1
			continue
		fi
	fi
	origin=${KG_VM_ORIGIN:-}
	[ -n "$origin" ] || { [ "$k" = bookworm ] && origin=1 || origin=0; }
	vm_suite "$k" "$origin" &
	run="$run $k"
done
# the host's cells while the VMs boot and run
bash tests/ktls/cells.sh
bash tests/ktls/origin.sh
if [ "${KG_SKIP_VM:-0}" = 1 ]; then
	echo "skip - kTLS VM suite (KG_SKIP_VM=1)"
	exit 0
fi
wait
for k in $run; do
	echo "# kTLS VM suite on the $k kernel ($(kernel-config/vm-run --kernel "$k" --version 2>&1 | tail -1))"
	cat "$D/$k.out"
	rc=$(cat "$D/$k.rc" 2>/dev/null || echo 125)
	if [ "$rc" != 0 ]; then
		echo "not ok - the kTLS VM suite on the $k kernel failed: vm-run exit $rc ($([ "$rc" = 124 ] && echo timeout ||
			{ [ "$rc" = 125 ] && echo 'the VM did not run it' || echo 'see above'; }))"
		fail=1
	elif ! grep -q "^# kTLS suite: kernel .* has the tls ULP" "$D/$k.out"; then
		echo "not ok - the kTLS VM suite on the $k kernel ran without the tls ULP: no offload was tested"
		fail=1
	fi
done
exit $fail
