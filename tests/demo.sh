#!/bin/sh
# `make run`: a demo PKI, an HTTP backend and the gateway on an embedded
# default configuration, in the foreground. Ctrl-C stops both.
# KTLSGW_DEMO_PORT and KTLSGW_DEMO_BACKEND_PORT choose the ports (0: any
# free one); the lines printed name the ports really in use.
set -eu
B=${1:-build}
mkdir -p "$B/demo"
D=$(cd "$B/demo" && pwd -P)	# the configuration takes absolute paths only
PORT=${KTLSGW_DEMO_PORT:-8443}
BPORT=${KTLSGW_DEMO_BACKEND_PORT:-8080}
[ -f "$D/ca.pem" ] || "$B/ktlsgw" pki init "$D" >/dev/null

BACKEND= GW=
stop() {
	[ -z "$GW" ] || kill -"$1" "$GW" 2>/dev/null || true
}
trap 'stop INT' INT
trap 'stop TERM' TERM
# (wait: quietly, or sh reports the backend's SIGTERM as "Terminated")
trap '[ -z "$BACKEND" ] || { kill "$BACKEND" 2>/dev/null; wait "$BACKEND" 2>/dev/null; } || true' EXIT

# wait_for FILE PID: until FILE has content, or PID has gone
wait_for() {
	while [ ! -s "$1" ] && kill -0 "$2" 2>/dev/null; do sleep 0.1; done
	[ -s "$1" ]
}

rm -f "$D/backend.port" "$D/ready"
"$B/kg-backend" --listen "127.0.0.1:$BPORT" --mode http --port-file "$D/backend.port" &
BACKEND=$!
wait_for "$D/backend.port" "$BACKEND" || { echo "demo: the backend did not start" >&2; exit 1; }
BPORT=$(cat "$D/backend.port")

cat > "$D/ktlsgw.conf" <<CONF
; ktlsgw demo configuration (written by tests/demo.sh)
[global]
workers = auto
state_dir = $D/state
admin_socket = $D/admin.sock
bpf_pin_root = /sys/fs/bpf/ktlsgw-demo
; the demo also runs without root: then revocation is checked at handshake only
revocation = best-effort

[listener demo]
listen = 127.0.0.1:$PORT
cert = $D/server.pem
key = $D/server.key
client_ca = $D/client-ca.pem
trust = $D/ca.pem
backend = 127.0.0.1:$BPORT
CONF

"$B/ktlsgw" run -c "$D/ktlsgw.conf" --ready-file "$D/ready" &
GW=$!
if ! wait_for "$D/ready" "$GW"; then
	rc=0
	wait "$GW" || rc=$?
	exit "$rc"
fi
PORT=$(sed -n 's/^demo .*:\([0-9]*\)$/\1/p' "$D/ready")
cat <<MSG

ktlsgw demo: https://localhost:$PORT/ -> http backend 127.0.0.1:$BPORT
Try it from another terminal:

  curl --cert $D/alice.pem --key $D/alice.key --cacert $D/ca.pem https://localhost:$PORT/

Without a client certificate the gateway refuses the handshake:

  curl --cacert $D/ca.pem https://localhost:$PORT/

Live connections: $B/ktlsgw conn list -s $D/admin.sock
Configuration: $D/ktlsgw.conf. Ctrl-C stops the gateway and the backend.

MSG
# `wait` returns early when a trapped signal arrives: wait until it has gone
rc=0
while kill -0 "$GW" 2>/dev/null; do
	rc=0
	wait "$GW" || rc=$?
done
exit "$rc"
