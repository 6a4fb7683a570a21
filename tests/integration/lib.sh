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

# ktls_mode WHAT: MODE=ktls where the kernel has the tls ULP (loading the
# module if need be), else MODE=userspace, said in one line; inside the VM
# a missing ULP fails. KT is the ktls key the cells use.
ktls_mode() {
	if grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null || modprobe tls 2>/dev/null; then
		MODE=ktls
		echo "# $1: kernel $(uname -r) has the tls ULP: checking real offload"
	elif [ "${KG_IN_VM:-0}" = 1 ]; then
		nok "$1: the VM's kernel $(uname -r) has no tls ULP (modules not loaded?)"
		exit 1
	else
		MODE=userspace
		echo "# $1: kernel $(uname -r) has no tls ULP: the same cells run on the userspace path"
	fi
	KT=$([ $MODE = ktls ] && echo on || echo auto)
}

# tls_stat NAME: a counter of /proc/net/tls_stat (0 without kTLS)
tls_stat() {
	awk -v k="$1" '$1 == k {print $2}' /proc/net/tls_stat 2>/dev/null || echo 0
}

# free_port: a TCP port on 127.0.0.1 that nothing holds now (the kernel's
# pick), for a listener whose configuration needs a fixed port (metrics)
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# metric NAME LABEL-MATCH: sum of a Prometheus series over workers ($MPORT)
metric() {
	curl -s "127.0.0.1:$MPORT/metrics" | grep "^$1{" | grep -- "$2" | awk '{s += $2} END {print s + 0}'
}

# make_pki [--test]: the demo PKI (with --test, default: also the test
# certificates) in $P = $T/pki; a failure ends the test
make_pki() {
	P=$T/pki
	"$KTLSGW" pki init ${1---test} "$P" >/dev/null || { nok "pki init"; exit 1; }
}

# global_conf [EXTRA-LINES]: a [global] section with its state in $T/state
# (GC_STATE: another directory)
global_conf() {
	printf '[global]\nstate_dir = %s\n%s\n' "${GC_STATE:-$T/state}" "${1:-}"
}

# listener_conf NAME BACKEND-PORT [EXTRA-LINES]: a [listener] on an
# ephemeral port with the test PKI in $P (server cert, client CA, root);
# LC_CERT, LC_KEY, LC_CLIENT_CA and LC_TRUST name other files
listener_conf() {
	cat <<CONF
[listener $1]
listen = 127.0.0.1:0
cert = ${LC_CERT:-$P/server.pem}
key = ${LC_KEY:-$P/server.key}
client_ca = ${LC_CLIENT_CA:-$P/client-ca.pem}
trust = ${LC_TRUST:-$P/ca.pem}
backend = 127.0.0.1:$2
${3:-}
CONF
}

# client_mode_conf NAME ORIGIN-PORT [EXTRA]: a client-mode listener (tls =
# off: plain TCP in) whose origin leg is mTLS to "localhost" on ORIGIN-PORT
# with alice's certificate
client_mode_conf() {
	cat <<CONF
[listener $1]
listen = 127.0.0.1:0
tls = off
backend = 127.0.0.1:$2
backend_tls = on
backend_ca = $P/ca.pem
backend_name = localhost
backend_cert = $P/alice.pem
backend_key = $P/alice.key
${3:-}
CONF
}

# cert_args CERT: s_client arguments presenting CERT: a name in $P (alice),
# a .pem path (its key next to it), or nothing for ""; the certificate file
# is its own chain (-cert_chain), as the test PKI's leaves are sent alone
cert_args() {
	local c=$1
	[ -n "$c" ] || return 0
	case $c in
	*.pem) ;;
	*) c=$P/$c.pem ;;
	esac
	echo "-cert $c -cert_chain $c -key ${c%.pem}.key"
}

# s_talk LINE [s_client args...]: openssl s_client sends LINE and keeps its
# stdin open until LINE comes back or the connection ends (at most
# ${SC_TIMEOUT:-10} s), then closes it (close_notify). Prints everything
# s_client printed; an echo through the gateway shows as LINE alone.
s_talk() {
	local line=$1 f pid fd
	shift
	f=$(mktemp -u "$T/s_talk.XXXXXX")
	mkfifo "$f.in"
	timeout "${SC_TIMEOUT:-10}" openssl s_client -no_ign_eof "$@" <"$f.in" >"$f.out" 2>&1 &
	pid=$!
	exec {fd}>"$f.in"
	printf '%s\n' "$line" >&"$fd"
	while kill -0 "$pid" 2>/dev/null && ! grep -qxF -- "$line" "$f.out"; do sleep 0.05; done
	exec {fd}>&-
	wait "$pid"
	cat "$f.out"
	rm -f "$f.in" "$f.out"
}

# sclient PORT CERT [s_client args...]: one round trip of "ping" as CERT
# (see cert_args) to 127.0.0.1:PORT, server checked against ${CA:-$P/ca.pem};
# prints s_client's output (-quiet: the echo, errors and alerts)
sclient() {
	local port=$1 cert=$2
	shift 2
	# shellcheck disable=SC2046
	s_talk ping -quiet -no_ign_eof -connect "127.0.0.1:$port" -CAfile "${CA:-$P/ca.pem}" \
		$(cert_args "$cert") "$@"
}

# s_hold PORT CERT STOP-FILE: a client (run it in the background) that
# holds its connection open, sending nothing, until STOP-FILE exists
s_hold() {
	# Also stop once the stop file's directory is gone: a caller that
	# touched it and cleaned up before this loop looked would hold the
	# test's output pipe open for ever.
	# shellcheck disable=SC2046
	(while [ ! -e "$3" ] && [ -d "$(dirname "$3")" ]; do sleep 0.1; done) |
		timeout 300 openssl s_client -quiet -no_ign_eof \
		-connect "127.0.0.1:$1" -CAfile "${CA:-$P/ca.pem}" $(cert_args "$2") >/dev/null 2>&1
}

# loadgen MODE PORT CERT [args...]: kg-loadgen as CERT (a name in $P),
# for at most ${LG_TIMEOUT:-600} s
loadgen() {
	local mode=$1 port=$2 c=$3
	shift 3
	timeout "${LG_TIMEOUT:-600}" "$B/kg-loadgen" "$mode" --connect "127.0.0.1:$port" --cert "$P/$c.pem" --key "$P/$c.key" \
		--cacert "${CA:-$P/ca.pem}" "$@"
}

# wait_gone PID [TENTHS]: wait for PID to exit (default 5 s); false if it
# is still there
wait_gone() {
	local n=${2:-50}
	while kill -0 "$1" 2>/dev/null && [ "$n" -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	! kill -0 "$1" 2>/dev/null
}

# wait_log REGEX [TENTHS] [FILE]: wait for a line of the gateway log (or
# FILE) matching REGEX (default 10 s)
wait_log() {
	local n=${2:-100} f=${3:-$T/gw.log}
	until grep -Eq -- "$1" "$f" 2>/dev/null; do
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}

# wait_conn SUBJECT|REGEX [TENTHS]: wait until `conn list -j` on the admin
# socket ${ADMIN:-$T/admin.sock} shows an established connection of that
# subject (a plain name) or matching that regex (10 s)
wait_conn() {
	local n=${2:-100} re=$1
	case $re in *'"'*) ;; *) re="\"subject\": *\"$re\"" ;; esac
	until "$KTLSGW" -j conn list --socket "${ADMIN:-$T/admin.sock}" 2>/dev/null | tr '}' '\n' |
		grep -- "$re" | grep -q '"state": *"established"'; do
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}

# wait_listen PORT [TENTHS]: wait for a TCP listener on PORT (10 s)
wait_listen() {
	local n=${2:-100}
	until ss -Hltn "sport = :$1" | grep -q .; do
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}

# logmark: the gateway log's length now; logsince MARK: what came after it
logmark() { wc -l < "$T/gw.log"; }
logsince() { tail -n +$(($1 + 1)) "$T/gw.log"; }
# wait_since MARK REGEX [TENTHS]: wait for a log line after MARK (10 s)
wait_since() {
	local n=${3:-100}
	until logsince "$1" | grep -Eq -- "$2"; do
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}

# descendants PID: the pids of every process below PID, children first
descendants() {
	local c
	for c in $(pgrep -P "$1"); do
		echo "$c"
		descendants "$c"
	done
}
