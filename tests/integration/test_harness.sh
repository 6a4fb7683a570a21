#!/bin/bash
# The test harness itself. The kTLS VM must start from an interactive
# terminal without anything in it being stopped by the terminal (SIGTTOU),
# from a checkout anywhere (also under /tmp, which is a tmpfs in the guest),
# and a VM run that fails in any way must fail the kTLS suite, never shrink
# to the host's cells.
set -u
. "$(dirname "$0")/lib.sh"
VMRUN=$PWD/kernel-config/vm-run
export KG_VM_DIR=${KG_VM_DIR:-$(realpath -m "$B/vm")}

if [ "${KG_SKIP_VM:-0}" = 1 ]; then
	skip "vm-run from a terminal (KG_SKIP_VM=1)"
else
	# A directory under /tmp with a marker; vm-run runs in a pseudo-terminal
	# (script), as from a shell prompt. Whatever stops on the terminal is
	# seen at once: no fixed wait.
	W=$T/under-tmp
	mkdir -p "$W"
	echo "marker $$" > "$W/marker"
	(cd "$W" && exec script -qefc "$VMRUN -t 900 -- cat marker" /dev/null) </dev/null >"$T/vm.out" 2>&1 &
	V=$!
	stopped=
	while kill -0 "$V" 2>/dev/null && [ -z "$stopped" ]; do
		stopped=$(for p in $(descendants "$V"); do
			ps -o stat=,comm= -p "$p" 2>/dev/null | awk '$1 ~ /^T/ {print $2}'
		done | head -1)
		sleep 0.2
	done
	if [ -n "$stopped" ]; then
		nok "vm-run from a terminal: '$stopped' was stopped by the terminal (SIGTTOU/SIGTTIN)"
		kill -KILL $(descendants "$V") 2>/dev/null
		wait "$V" 2>/dev/null
	else
		wait "$V"; rc=$?
		if [ "$rc" = 0 ] && grep -q "^marker $$" "$T/vm.out"; then
			ok "vm-run from a terminal, in a directory under /tmp: the guest ran there and nothing stopped"
		else
			nok "vm-run from a terminal under /tmp: exit $rc: $(tail -5 "$T/vm.out" | tr '\r\n' '  ')"
		fi
	fi
fi

# vm-run failing before the VM even boots (here: its directory cannot be
# made, exit 1 under set -e) must fail the kTLS suite.
out=$(KG_SKIP_VM=0 KG_VM_KERNELS=bookworm KG_VM_DIR=/proc/no-such-dir/vm KG_KTLS_BYTES=65536 bash tests/integration/test_ktls.sh 2>&1); rc=$?
if grep -q "^not ok - .*vm-run" <<<"$out"; then
	ok "a vm-run that exits 1 fails the kTLS suite ($(grep -m1 '^not ok - .*vm-run' <<<"$out" | cut -c1-100))"
else
	nok "a failing vm-run did not fail the kTLS suite (exit $rc): $(tail -3 <<<"$out" | tr '\n' ' ')"
fi
rm -rf "$T"
echo "# harness: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
