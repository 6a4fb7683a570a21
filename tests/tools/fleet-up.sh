#!/bin/bash
# One command for the test fleet, to try fleet-wide revocation by hand:
# a demo PKI, an echo backend, 3 NATS nodes (JetStream, TLS, accounts) and 3
# gateways on 127.0.0.1, as tests/integration/test_fleet.sh uses them.
# Prints what to type, then runs until Ctrl-C and stops everything it
# started. Needs root (BPF) and nats-server (tests/deps.sh).
#   tests/tools/fleet-up.sh [BUILD_DIR]
set -u
B=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
T=$(mktemp -d /tmp/kg-fleet.XXXXXX)
FLEET_PINS=/sys/fs/bpf/ktlsgw-fleet-up-$$
. tests/tools/fleet-lib.sh
BACKEND=
stop() {
	fleet_down
	[ -n "$BACKEND" ] && kill "$BACKEND" 2>/dev/null
	wait 2>/dev/null
	echo "stopped; files left in $T"
}
trap stop EXIT
trap 'exit 0' INT TERM

"$B/ktlsgw" pki init --test "$T/pki" >/dev/null || exit 1
"$B/kg-backend" --listen 127.0.0.1:0 --mode echo --port-file "$T/bport" 2>/dev/null &
BACKEND=$!
n=100
until [ -s "$T/bport" ] || [ $n = 0 ]; do sleep 0.05; n=$((n - 1)); done
FLEET_BACKEND=$(cat "$T/bport")
fleet_up "$T/fleet" "$T/pki" || exit 1
fleet_gw_conf 3 "$T/pki" "$T/fleet/reader.creds" > "$T/fleet/reader.conf"
D=$T/fleet
cat <<TXT
test fleet up in $T
  NATS (TLS, users writer/reader): ${FLEET_NATS[*]}   monitoring: ${FLEET_MON[*]}
  gateways A B C: listeners ${FLEET_PORT[*]}, metrics ${FLEET_METRICS[*]}
  configurations: $D/gw1/gw.conf $D/gw2/gw.conf $D/gw3/gw.conf (reader: $D/reader.conf)

  $B/ktlsgw revoke add --cert $T/pki/alice.pem -c $D/gw1/gw.conf
  $B/ktlsgw fleet status -c $D/gw3/gw.conf
  $B/ktlsgw fleet list -c $D/reader.conf
  openssl s_client -connect 127.0.0.1:${FLEET_PORT[3]} -CAfile $T/pki/ca.pem \\
      -cert $T/pki/alice.pem -cert_chain $T/pki/alice.pem -key $T/pki/alice.key
Ctrl-C stops it all (or a day passes).
TXT
i=0
while [ $i -lt 86400 ]; do	# a day at most
	i=$((i + 1))
	for n in 1 2 3; do
		kill -0 "${FLEET_GW_PID[$n]:-0}" 2>/dev/null || { echo "gateway $n exited: $(tail -2 "$D/gw$n/gw.log")"; exit 1; }
	done
	sleep 1
done
