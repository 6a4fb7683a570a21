#!/bin/bash
# SIGHUP reloads under load with a ThreadSanitizer build: 1000 reloads (the
# count is the first argument), every one waited for, while clients
# handshake and stream. Passes when the soak passes (memory flat, every
# reload applied) and ThreadSanitizer reported nothing.
set -u
N=${1:-1000}
B=${2:-build}
cd "$(dirname "$0")/../.." || exit 1
GB=$B/tsan
make -s B="$GB" CFLAGS="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" "$GB/ktlsgw" ||
	{ echo "not ok - ThreadSanitizer build failed"; exit 1; }
L=$(mktemp -d /tmp/kg-tsan.XXXXXX)
trap 'rm -rf "$L"' EXIT
out=$(TSAN_OPTIONS="halt_on_error=0 exitcode=66 log_path=$L/tsan suppressions=$PWD/tests/soak/tsan.supp" \
	python3 tests/soak/reload.py "$GB/ktlsgw" "$B" "$N" 2>&1)
rc=$?
echo "# $out"
reports=$(cat "$L"/tsan.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer')
if [ "$rc" = 0 ] && [ "$reports" = 0 ]; then
	echo "ok - ThreadSanitizer: $N reloads under load, no report"
else
	cat "$L"/tsan.* 2>/dev/null | head -60
	echo "not ok - ThreadSanitizer reload soak: exit $rc, $reports reports"
	exit 1
fi
