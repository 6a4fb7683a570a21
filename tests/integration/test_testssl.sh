#!/bin/bash
# testssl.sh (Debian's package) against the gateway with a default listener
# (only the required keys, the demo PKI): no finding rated MEDIUM or worse.
# The demo root is a private CA, so it is handed to testssl with --add-ca.
# The checks that rate findings run (-p protocols, -s cipher categories,
# -f forward secrecy, -P server preferences, -S server defaults and the
# certificate, -U vulnerabilities); the per-cipher listing (-e) and the
# client simulations (-c) rate nothing (INFO only) and would double the
# time. The whole default scan, by hand:
#   testssl --add-ca build/demo/ca.pem 127.0.0.1:8443   (while make run runs)
set -u
. "$(dirname "$0")/lib.sh"
if ! command -v testssl >/dev/null; then
	nok "testssl missing: sh tests/deps.sh installs testssl.sh"
	exit 1
fi
make_pki ""
start_backend http http
# its own pin root: the default one (/sys/fs/bpf/ktlsgw) belongs to the
# machine's gateway, not to a test
PINS=/sys/fs/bpf/ktlsgw-testssl-$$
trap 'cleanup; rm -rf "$PINS"' EXIT
{
	global_conf "revocation = best-effort
bpf_pin_root = $PINS
admin_socket ="
	listener_conf demo "$http_PORT"
} > "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway start"; exit 1; }
timeout 600 testssl --quiet --color 0 --warnings batch --add-ca "$P/ca.pem" -p -s -f -P -S -U \
	--jsonfile "$T/testssl.json" "127.0.0.1:$GW_demo" >"$T/testssl.txt" 2>&1
rc=$?
if [ "$rc" = 124 ]; then
	nok "testssl did not finish in 600 s: its JSON would be partial ($(tail -2 "$T/testssl.txt"))"
	exit 1
fi
if [ ! -s "$T/testssl.json" ]; then
	nok "testssl produced no JSON (exit $rc): $(tail -5 "$T/testssl.txt")"
	exit 1
fi
# one finding per JSON object: count severities, list MEDIUM and worse
count() { grep -c "\"severity\" *: *\"$1\"" "$T/testssl.json"; }
summary="OK $(count OK), INFO $(count INFO), LOW $(count LOW), MEDIUM $(count MEDIUM), HIGH $(count HIGH), CRITICAL $(count CRITICAL), WARN $(count WARN)"
bad=$(tr -d '\n' < "$T/testssl.json" | grep -o '{[^}]*"severity" *: *"\(MEDIUM\|HIGH\|CRITICAL\)"[^}]*}')
if [ "$(count OK)" -ge 20 ] && [ -z "$bad" ]; then
	ok "testssl.sh: no finding MEDIUM or worse ($summary)"
else
	nok "testssl.sh findings ($summary): $bad"
fi
grep -E "^ (TLS 1|SSLv|TLS 1.1|TLS 1.2|TLS 1.3) " "$T/testssl.txt" | sed 's/^/# /'
stop_gw
echo "# testssl: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
