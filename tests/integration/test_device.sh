#!/bin/bash
# The device benchmark bundle (make device-bundle, bench/device/run.sh) on
# this machine: it builds, stays under 64 MiB, and its script runs every
# contender through the bundled loader, checks that each one refuses a client
# without a certificate, and records a cell for each (kTLS cells say
# unavailable where the kernel has no tls ULP). A smoke run (short cells, one
# round, one worker): its numbers are not measurements and nothing is
# asserted about them beyond being there.
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { skip "device bundle: needs root (the bundle script loads the tls module)"; exit 0; }

# one bundle build at a time in a build directory (it is staged there)
if ! flock "$B/.device-bundle.lock" make -s device-bundle B="$B" >"$T/bundle.out" 2>&1; then
	nok "make device-bundle: $(tail -5 "$T/bundle.out")"
	exit 1
fi
# a copy: a parallel run may rebuild the bundle in the build directory
cp "$B/device-bundle.tar.gz" "$T/bundle.tgz" 2>/dev/null
TGZ=$T/bundle.tgz
size=$(stat -c %s "$TGZ")
[ "$size" -le $((64 * 1024 * 1024)) ] && ok "device bundle built: $((size / 1024)) KiB (limit 64 MiB)" ||
	nok "device bundle is $size bytes, over 64 MiB"

mkdir -p "$T/dev"
tar xzf "$TGZ" -C "$T/dev"
# a bare environment: the contenders run from the bundle's bin/ (run.sh adds
# only the system's sbin directories, for modprobe)
KG_DEVICE_QUICK=1 KG_DEVICE_ROUNDS=1 KG_DEVICE_WORKERS=1 KG_DEVICE_DEADLINE_S=240 \
	timeout 400 env -i PATH=/usr/bin:/bin HOME=/root KG_DEVICE_QUICK=1 KG_DEVICE_ROUNDS=1 \
	KG_DEVICE_WORKERS=1 KG_DEVICE_DEADLINE_S=240 bash "$T/dev/kg-device/run.sh" "$T/out" >"$T/run.out" 2>&1
rc=$?
tab=$T/out/table.md
if [ $rc = 0 ] && [ -s "$tab" ]; then
	ok "bench/device/run.sh finished (exit 0) and wrote table.md"
else
	nok "bench/device/run.sh exit $rc: $(tail -5 "$T/run.out")"
	exit 1
fi
grep -q "Failed cells (0)" "$tab" && ok "device smoke run: no failed cell" ||
	nok "device smoke run: failed cells: $(sed -n '/## Failed cells/,$p' "$tab" | head -8)"
if grep -q "ktlsgw-user=refused nginx=refused haproxy=refused stunnel=refused" "$tab"; then
	ok "every contender refuses a client without a certificate"
else
	nok "a contender served a client without a certificate: $(grep 'Client certificate required' "$tab")"
fi
# one number per userspace contender and mode (the bulk MB/s and handshakes/s rows)
missing=""
for row in "upload | MB/s" "download | MB/s" "echo | MB/s" "handshake | handshakes/s" "rr | p99"; do
	line=$(grep "^| ${row}[^|]* | 1 |" "$tab")
	n=$(echo "$line" | awk -F'|' '{ c = 0; for (i = 6; i <= 9; i++) if ($i ~ /^ *[0-9.]+ *$/) c++; print c }')
	[ "$n" = 4 ] || missing="$missing [$line]"
done
[ -z "$missing" ] && ok "a figure for ktlsgw (userspace), nginx, HAProxy and stunnel in every mode" ||
	nok "cells without a figure:$missing"
rows=$(grep -c '^| [a-z]* | [^|]* | 1 |' "$tab")	# every metric at W=1
if grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; then
	[ "$(grep -c '^| [a-z]* | [^|]* | 1 | [0-9]' "$tab")" = "$rows" ] && ok "kTLS here: every offloaded cell ran" ||
		nok "kTLS is available but offloaded cells did not run: $(grep '^| [a-z]* | [^|]* | 1 | [^0-9]' "$tab" | head -3)"
else
	[ "$(grep -c '^| [a-z]* | [^|]* | 1 | unavailable |' "$tab")" = "$rows" ] &&
		ok "no kTLS in this kernel: every kTLS cell says unavailable, none is estimated" ||
		nok "no kTLS here, yet a kTLS cell is not marked unavailable: $(grep '^| upload' "$tab" | head -1)"
fi
[ "$FAIL" -eq 0 ]
