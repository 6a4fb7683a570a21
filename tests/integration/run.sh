#!/bin/bash
# Runs every integration test script (tests/integration/test_*.sh) and
# prints one closing line: "N passed, N failed, N skipped".
set -u
B=${1:-build}
export B
cd "$(dirname "$0")/../.." || exit 1
pass=0 fail=0 skipped=0
for t in tests/integration/test_*.sh; do
	echo "# $t"
	out=$(mktemp)
	t0=$SECONDS
	# no test reads the terminal; one that tried would be stopped (SIGTTIN)
	# in the background process group `timeout` makes
	# 30 min for one script (the kTLS suite runs two emulated VMs side by
	# side, each bounded at 25 min); CI gives the whole run 90
	timeout 1800 bash "$t" </dev/null 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^ok - ' "$out")
	f=$(grep -c '^not ok - ' "$out")
	s=$(grep -c '^skip - ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $t exited with $rc"
		f=1
	fi
	echo "# $t: $((SECONDS - t0)) s"
	pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + s))
	rm -f "$out"
done
echo "integration: $pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
