#!/bin/sh
# `make run`: a demo PKI, an HTTP backend and the gateway on an embedded
# default configuration, in the foreground. Ctrl-C stops both.
set -eu
B=${1:-build}
D=$B/demo
PORT=${KTLSGW_DEMO_PORT:-8443}
BPORT=${KTLSGW_DEMO_BACKEND_PORT:-8080}
mkdir -p "$D"
[ -f "$D/ca.pem" ] || "$B/ktlsgw" pki init "$D" >/dev/null
cat > "$D/ktlsgw.conf" <<CONF
; ktlsgw demo configuration (written by tests/demo.sh)
[global]
workers = auto
state_dir = $D/state
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
"$B/kg-backend" --listen "127.0.0.1:$BPORT" --mode http &
BACKEND=$!
trap 'kill $BACKEND 2>/dev/null || true' EXIT INT TERM
cat <<MSG

ktlsgw demo: https://localhost:$PORT/ -> http backend 127.0.0.1:$BPORT
Try it from another terminal:

  curl --cert $D/alice.pem --key $D/alice.key --cacert $D/ca.pem https://localhost:$PORT/

Without a client certificate the gateway refuses the handshake:

  curl --cacert $D/ca.pem https://localhost:$PORT/

Configuration: $D/ktlsgw.conf. Ctrl-C stops the gateway and the backend.

MSG
"$B/ktlsgw" run -c "$D/ktlsgw.conf"
