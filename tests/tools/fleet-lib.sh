# The test fleet on loopback, shared by tests/integration/test_fleet.sh,
# bench/fleet-latency and tests/tools/fleet-up.sh (bash, sourced; needs $B,
# the build directory).
#
#   fleet_up DIR PKI   a 3-node NATS cluster with JetStream (file store under
#                      DIR), TLS with client certificates and one account with
#                      two users (writer: may change the bucket; reader: may
#                      only read and watch it), then 3 gateways, each with its
#                      own ports, pin root, state dir, admin socket and
#                      metrics port; the first creates the bucket with 3
#                      replicas. The gateways' backend: $FLEET_BACKEND.
#   fleet_down         stops what fleet_up started (by PID) and removes pins.
#
# Ports are free ports of 127.0.0.1 picked at start (NATS routes need them
# known in advance, so port 0 does not do for those). Node N (1..3): NATS
# client port FLEET_NATS[N], route FLEET_ROUTE[N], monitor FLEET_MON[N];
# gateway N: DIR/gwN/{gw.conf,gw.log,admin.sock,state}, metrics port
# FLEET_METRICS[N], listener port FLEET_PORT[N], pins $FLEET_PINS-N.

FLEET_BUCKET=${FLEET_BUCKET:-kg-revoked-test}
FLEET_PINS=${FLEET_PINS:-/sys/fs/bpf/ktlsgw-test-fleet-$$}
FLEET_DIR=
declare -a FLEET_NATS FLEET_ROUTE FLEET_MON FLEET_METRICS FLEET_PORT
declare -a FLEET_NATS_PID FLEET_GW_PID

# fleet_ports N: N distinct free TCP ports of 127.0.0.1, one a line (bound
# together so that none repeats, then released)
fleet_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PY
}

# NATS TLS: a small CA, a server certificate for 127.0.0.1 (also used for
# the routes) and one client certificate for the gateways and the CLI.
# Users: writer and reader, with random passwords in DIR/{writer,reader}.creds
# ("user:password", which `creds` in [fleet] accepts besides .creds files).
fleet_tls() {
	local d=$1/tls
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=kg-test-nats-ca -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null || return 1
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -out "$d/server.pem" 2>/dev/null \
		-extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n') ||
		return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kg-gateway \
		-keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null || return 1
	openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -out "$d/client.pem" 2>/dev/null \
		-extfile <(printf 'extendedKeyUsage=clientAuth\n') || return 1
	printf 'writer:w%s\n' "$(openssl rand -hex 12)" > "$1/writer.creds"
	printf 'reader:r%s\n' "$(openssl rand -hex 12)" > "$1/reader.creds"
	chmod 600 "$1"/*.creds
}

# The reader may use JetStream's API to read and watch, nothing that
# changes the bucket: no publish to its subjects ($KV.<bucket>.>: puts and
# delete markers alike, so an un-revoke needs the writer too), no stream
# create/update/delete/purge/message delete, no deleting others' consumers.
fleet_nats_conf() { # DIR N
	local d=$1 n=$2 wpass rpass i routes=""
	wpass=$(cut -d: -f2- "$d/writer.creds")
	rpass=$(cut -d: -f2- "$d/reader.creds")
	for i in 1 2 3; do routes="$routes, nats-route://127.0.0.1:${FLEET_ROUTE[$i]}"; done
	mkdir -p "$d/nats$n"
	cat > "$d/nats$n/nats.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:${FLEET_NATS[$n]}
http: 127.0.0.1:${FLEET_MON[$n]}
jetstream { store_dir: "$d/nats$n/js", max_memory_store: 64MB, max_file_store: 256MB }
tls {
  cert_file: "$d/tls/server.pem"
  key_file: "$d/tls/server.key"
  ca_file: "$d/tls/ca.pem"
  verify: true
  timeout: 5
}
cluster {
  name: kg-test
  listen: 127.0.0.1:${FLEET_ROUTE[$n]}
  routes: [ ${routes#, } ]
}
accounts {
  FLEET {
    jetstream: enabled
    users: [
      { user: writer, password: "$wpass" }
      { user: reader, password: "$rpass",
        permissions: { publish: { deny: [ "\$KV.$FLEET_BUCKET.>",
          "\$JS.API.STREAM.CREATE.>", "\$JS.API.STREAM.UPDATE.>", "\$JS.API.STREAM.DELETE.>",
          "\$JS.API.STREAM.PURGE.>", "\$JS.API.STREAM.MSG.DELETE.>", "\$JS.API.CONSUMER.DELETE.>" ] } } }
    ]
  }
  SYS { users: [ { user: sys, password: "s$(openssl rand -hex 12)" } ] }
}
system_account: SYS
CONF
}

fleet_nats_start() { # N
	nats-server -c "$FLEET_DIR/nats$1/nats.conf" >>"$FLEET_DIR/nats$1/nats.log" 2>&1 &
	FLEET_NATS_PID[$1]=$!
}

fleet_nats_stop() { # N [SIGNAL]
	local p=${FLEET_NATS_PID[$1]:-}
	[ -n "$p" ] || return 0
	kill "-${2:-TERM}" "$p" 2>/dev/null
	{ wait "$p"; } 2>/dev/null
	FLEET_NATS_PID[$1]=
}

# fleet_jsz N QUERY: node N's JetStream monitoring page
fleet_jsz() { curl -s --max-time 5 "127.0.0.1:${FLEET_MON[$1]}/jsz?$2" 2>/dev/null; }

# fleet_nats_ready [TENTHS]: every running node answers, and JetStream's
# meta group has a leader (so a stream with 3 replicas can be served).
fleet_nats_ready() {
	local n=${1:-600} i up
	while [ "$n" -gt 0 ]; do
		up=0
		for i in 1 2 3; do
			[ -n "${FLEET_NATS_PID[$i]:-}" ] || continue
			kill -0 "${FLEET_NATS_PID[$i]}" 2>/dev/null || {
				echo "fleet: nats-server n$i exited: $(tail -2 "$FLEET_DIR/nats$i/nats.log")" >&2
				return 1
			}
			fleet_jsz "$i" "" | grep -q '"meta_cluster"' || { up=0; break; }
			up=$((up + 1))
		done
		if [ "$up" -gt 0 ]; then
			for i in 1 2 3; do
				[ -n "${FLEET_NATS_PID[$i]:-}" ] || continue
				fleet_jsz "$i" "" | grep -q '"leader": *"n[123]"' && return 0
			done
		fi
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# fleet_stream_leader: the node number (1..3) leading the bucket's stream,
# as a running node's monitor reports it; empty if none knows
fleet_stream_leader() {
	local i
	for i in 1 2 3; do
		[ -n "${FLEET_NATS_PID[$i]:-}" ] || continue
		fleet_jsz "$i" "accounts=true&streams=true" | python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
for a in j.get("account_details") or []:
    for s in a.get("stream_detail") or []:
        if s.get("name") == "KV_" + sys.argv[1]:
            l = (s.get("cluster") or {}).get("leader", "")
            if l.startswith("n"):
                print(l[1:])
                sys.exit(0)
sys.exit(1)' "$FLEET_BUCKET" && return 0
	done
	return 1
}

fleet_gw_conf() { # N PKI [CREDS]
	local d=$FLEET_DIR n=$1 p=$2 creds=${3:-$FLEET_DIR/writer.creds}
	cat <<CONF
[global]
workers = 1
state_dir = $d/gw$n/state
bpf_pin_root = $FLEET_PINS-$n
revocation_scan_interval = 100ms
admin_socket = $d/gw$n/admin.sock
metrics = 127.0.0.1:${FLEET_METRICS[$n]}

[listener edge]
listen = 127.0.0.1:0
cert = $p/server.pem
key = $p/server.key
client_ca = $p/client-ca.pem
trust = $p/ca.pem
backend = 127.0.0.1:$FLEET_BACKEND

[fleet]
servers = tls://127.0.0.1:${FLEET_NATS[1]},tls://127.0.0.1:${FLEET_NATS[2]},tls://127.0.0.1:${FLEET_NATS[3]}
bucket = $FLEET_BUCKET
replicas = 3
node = gw$n
tls_ca = $d/tls/ca.pem
tls_cert = $d/tls/client.pem
tls_key = $d/tls/client.key
creds = $creds
CONF
}

# fleet_gw_start N [TENTHS]: returns once gateway N has bound its listener
# (which it does after reading the bucket); FLEET_PORT[N] is that port
fleet_gw_start() {
	local d=$FLEET_DIR n=$1 t=${2:-600}
	rm -f "$d/gw$n/ready"
	"$B/ktlsgw" run -c "$d/gw$n/gw.conf" --ready-file "$d/gw$n/ready" >>"$d/gw$n/gw.log" 2>&1 &
	FLEET_GW_PID[$n]=$!
	while [ ! -s "$d/gw$n/ready" ] && [ "$t" -gt 0 ]; do
		kill -0 "${FLEET_GW_PID[$n]}" 2>/dev/null || return 1
		sleep 0.1
		t=$((t - 1))
	done
	[ -s "$d/gw$n/ready" ] || return 1
	FLEET_PORT[$n]=$(awk '{print $2}' "$d/gw$n/ready" | sed 's/.*://')
}

fleet_gw_stop() { # N [SIGNAL]
	local p=${FLEET_GW_PID[$1]:-} t=300
	[ -n "$p" ] || return 0
	{
		kill "-${2:-TERM}" "$p"
		while kill -0 "$p" && [ $t -gt 0 ]; do sleep 0.1; t=$((t - 1)); done
		kill -KILL "$p"
		wait "$p"
	} 2>/dev/null	# nor the shell's "Killed" notice
	FLEET_GW_PID[$1]=
}

# fleet_nats_up DIR: the three NATS nodes of fleet_up (ports picked here)
fleet_nats_up() {
	local n ports
	FLEET_DIR=$1
	mkdir -p "$FLEET_DIR"
	mapfile -t ports < <(fleet_ports 12)
	[ "${#ports[@]}" = 12 ] || return 1
	for n in 1 2 3; do
		FLEET_NATS[$n]=${ports[$((n - 1))]}
		FLEET_ROUTE[$n]=${ports[$((n + 2))]}
		FLEET_MON[$n]=${ports[$((n + 5))]}
		FLEET_METRICS[$n]=${ports[$((n + 8))]}
	done
	fleet_tls "$FLEET_DIR" || { echo "fleet: cannot make the NATS certificates" >&2; return 1; }
	for n in 1 2 3; do fleet_nats_conf "$FLEET_DIR" $n; fleet_nats_start $n; done
	fleet_nats_ready || { echo "fleet: the NATS cluster elected no JetStream leader" >&2; return 1; }
}

fleet_up() { # DIR PKI
	local n
	fleet_nats_up "$1" || return 1
	for n in 1 2 3; do
		mkdir -p "$FLEET_DIR/gw$n"
		fleet_gw_conf $n "$2" > "$FLEET_DIR/gw$n/gw.conf"
		fleet_gw_start $n || {
			echo "fleet: gateway $n did not start:" >&2
			tail -5 "$FLEET_DIR/gw$n/gw.log" >&2
			return 1
		}
	done
}

fleet_down() {
	local n
	for n in 1 2 3; do fleet_gw_stop $n; done
	for n in 1 2 3; do fleet_nats_stop $n; done
	for n in 1 2 3; do rm -rf "$FLEET_PINS-$n"; done
}
