# Shared helpers for the integration tests (bash). Real processes on
# 127.0.0.1, ephemeral ports, hard timeouts; every test case reports
# "ok - NAME" or "not ok - NAME: why" and run.sh prints the totals.

B=${B:-build}
KTLSGW=${KTLSGW:-$B/ktlsgw}
T=${T:-$(mktemp -d /tmp/kg-it.XXXXXX)}
PASS=0
FAIL=0
SKIP=0
PIDS=""

ok()   { PASS=$((PASS + 1)); echo "ok - $*"; }
nok()  { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
skip() { SKIP=$((SKIP + 1)); echo "skip - $*"; }

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# wait_file FILE [TENTHS]: wait for FILE to exist and be non-empty.
wait_file() {
	local f=$1 n=${2:-100}
	while [ $n -gt 0 ]; do
		[ -s "$f" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# start_backend NAME MODE: sets ${NAME}_PORT, count in $T/NAME.count
start_backend() {
	local name=$1 mode=$2
	rm -f "$T/$name.port" "$T/$name.count"
	"$B/kg-backend" --listen 127.0.0.1:0 --mode "$mode" --port-file "$T/$name.port" \
		--count-file "$T/$name.count" 2>"$T/$name.log" &
	PIDS="$PIDS $!"
	wait_file "$T/$name.port" || { echo "backend $name did not start" >&2; return 1; }
	eval "${name}_PORT=$(cat "$T/$name.port")"
}

backend_count() {
	local c
	c=$(cat "$T/$1.count" 2>/dev/null || echo 0)
	echo "${c:-0}"
}

# start_gw CONFIG: starts the gateway; sets GW_PID and <LISTENER>_ADDR vars.
start_gw() {
	local conf=$1 line name addr
	rm -f "$T/gw.ready"
	"$KTLSGW" run -c "$conf" --ready-file "$T/gw.ready" >>"$T/gw.log" 2>&1 &
	GW_PID=$!
	PIDS="$PIDS $GW_PID"
	wait_file "$T/gw.ready" 100 || { echo "gateway did not start:" >&2; tail -20 "$T/gw.log" >&2; return 1; }
	while read -r name addr; do
		eval "GW_${name}=${addr##*:}"
	done < "$T/gw.ready"
}

stop_gw() {
	[ -n "${GW_PID:-}" ] || return 0
	kill -TERM "$GW_PID" 2>/dev/null || true
	local n=100
	while kill -0 "$GW_PID" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	kill -KILL "$GW_PID" 2>/dev/null || true
	wait "$GW_PID" 2>/dev/null || true
	GW_PID=
}

# fp FILE: lower-case hex SHA-256 fingerprint as the openssl CLI computes it.
fp() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# metric NAME LABEL-MATCH: sum of a Prometheus series over workers ($MPORT)
metric() {
	curl -s "127.0.0.1:$MPORT/metrics" | grep "^$1{" | grep -- "$2" | awk '{s += $2} END {print s + 0}'
}

# listener_conf NAME BACKEND-PORT [EXTRA-LINES]: a [listener] on an
# ephemeral port with the test PKI in $P (server cert, client CA, root)
listener_conf() {
	cat <<CONF
[listener $1]
listen = 127.0.0.1:0
cert = $P/server.pem
key = $P/server.key
client_ca = $P/client-ca.pem
trust = $P/ca.pem
backend = 127.0.0.1:$2
${3:-}
CONF
}

# descendants PID: the pids of every process below PID, children first
descendants() {
	local c
	for c in $(pgrep -P "$1"); do
		echo "$c"
		descendants "$c"
	done
}
