#!/bin/bash
# How connections end. A protocol error after the handshake reaches the
# client as an alert then a FIN (no reset that could overtake it); a client
# that leaves mid-handshake is client_closed; a client stream cut short
# (FIN without close_notify) reaches the backend as a reset and is counted;
# peer-controlled text cannot forge log lines; a drain keeps revocation and
# the admin socket and the metrics working and a second signal (SIGINT or
# SIGTERM) ends it; a worker whose ring fails, or whose submission queue
# stays full, stops the whole process with exit 1.
set -u
. "$(dirname "$0")/lib.sh"

P=$T/pki
PINS=/sys/fs/bpf/ktlsgw-test-life-$$
"$KTLSGW" pki init --test "$P" >/dev/null || { nok "pki init"; exit 1; }
trap 'cleanup; rm -rf "$PINS"' EXIT

python3 tests/tools/endwatch.py "$T/ew.port" "$T/ew.log" 2>"$T/ew.err" &
PIDS="$PIDS $!"
wait_file "$T/ew.port" || { nok "endwatch backend starts"; exit 1; }
EW=$(cat "$T/ew.port")
touch "$T/ew.log"
MPORT=$(free_port)

rev_mode=required
[ "$(id -u)" = 0 ] || rev_mode=best-effort
cat > "$T/gw.conf" <<CONF
[global]
workers = 2
state_dir = $T/state
bpf_pin_root = $PINS
revocation = $rev_mode
revocation_scan_interval = 100ms
admin_socket = $T/admin.sock
metrics = 127.0.0.1:$MPORT
drain_timeout = 60s

$(listener_conf edge "$EW")
CONF
start_gw "$T/gw.conf" || { nok "gateway starts"; exit 1; }

probe() { # MODE [CERT-NAME]
	timeout 40 python3 tests/tools/tlsprobe.py "$1" "$GW_edge" "$P/ca.pem" "$P/${2:-alice}.pem" \
		"$P/${2:-alice}.key" 2>&1
}
# ends N: wait for the backend's Nth connection end, print it
ends() {
	local n=200
	while [ "$(wc -l < "$T/ew.log")" -lt "$1" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	sed -n "${1}p" "$T/ew.log"
}
closed() { metric ktlsgw_connections_closed_total "reason=\"$1\""; }
rejects() { metric ktlsgw_handshake_rejects_total "reason=\"$1\""; }

# --- a clean end: close_notify both ways, FIN to the backend -------------------
m=$(logmark)
out=$(probe clean)
if [[ "$out" == *"echo=ping"* && "$out" == *"close_notify"* && "$out" == *"end=fin"* ]] &&
	[ "$(ends 1)" = "fin 5" ] && wait_since "$m" "access .*reason=done" 200; then
	ok "close_notify from the client: backend sees a FIN, client gets close_notify then FIN ($out)"
else
	nok "clean end: client '$out', backend '$(ends 1)', log: $(logsince "$m" | grep access)"
fi

# --- a FIN without close_notify: truncation ---------------------------------
m=$(logmark); c=$(closed client_truncated)
out=$(probe truncate)
if [[ "$out" == *"echo=ping"* ]] && [ "$(ends 2)" = "rst 5" ] &&
	wait_since "$m" "access .*reason=client_truncated" 200 && [ "$(closed client_truncated)" -gt "$c" ]; then
	ok "FIN without close_notify: backend sees a reset, not a clean end; logged and counted as client_truncated"
else
	nok "truncation: client '$out', backend '$(ends 2)', counter $c -> $(closed client_truncated), log: $(logsince "$m" | grep access)"
fi
if logsince "$m" | grep "access .*reason=client_truncated" | grep -q 'reason=done'; then
	nok "a truncated stream is also logged as done"
fi

# --- a protocol error after the handshake: alert, then FIN ----------------------
m=$(logmark)
out=$(probe badrecord)
if [[ "$out" == *"echo=ping"* && "$out" == *"BAD_RECORD_MAC"* && "$out" == *"end=fin"* ]] &&
	[ "$(ends 3)" = "rst 5" ] && wait_since "$m" "access .*reason=client_error" 200; then
	ok "a forged record after the handshake: the client reads bad_record_mac, then a FIN ($out); the backend is reset"
else
	nok "protocol error: client '$out', backend '$(ends 3)', log: $(logsince "$m" | grep access)"
fi

# --- a client that leaves during the handshake --------------------------------
m=$(logmark); c=$(rejects client_closed); pe=$(rejects protocol_error)
exec 3<>"/dev/tcp/127.0.0.1/$GW_edge" && exec 3>&-
if wait_since "$m" 'reject .*reason=client_closed alert="none"' 200 && [ "$(rejects client_closed)" -gt "$c" ] &&
	[ "$(rejects protocol_error)" = "$pe" ]; then
	ok "connect and close (a health check): reject reason=client_closed, no alert, not a protocol_error"
else
	nok "health check: $(logsince "$m" | grep reject) (client_closed $c -> $(rejects client_closed), protocol_error $pe -> $(rejects protocol_error))"
fi

# --- peer-controlled text in the log ----------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/evil.key" \
	-subj $'/CN=evil" reason=done \\\\ \nforged=1' -out "$T/evil.csr" 2>/dev/null
printf 'extendedKeyUsage = clientAuth\nkeyUsage = digitalSignature\n' > "$T/evil.ext"
openssl x509 -req -in "$T/evil.csr" -CA "$P/client-ca.pem" -CAkey "$P/client-ca.key" -days 2 \
	-extfile "$T/evil.ext" -out "$T/evil-leaf.pem" 2>/dev/null
cat "$T/evil-leaf.pem" "$P/client-ca.pem" > "$P/evil.pem"
m=$(logmark)
out=$(probe clean evil)
if wait_since "$m" "access .*subject=" 200 && ! logsince "$m" | grep -q '^forged=1' &&
	[ "$(logsince "$m" | grep -c 'reason=done')" = 1 ] &&
	logsince "$m" | grep 'access' | grep -qF 'subject="evil\" reason=done \\ \nforged=1"'; then
	ok "a subject with a quote, a backslash, a newline and 'reason=done' is escaped: one access line"
else
	nok "log escaping: client '$out'; log: $(logsince "$m")"
fi

# --- a client that sends only its leaf (what curl --cert leaf.pem does) -------
out=$( (printf 'leaf\n'; sleep 1) | timeout 10 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$GW_edge" \
	-CAfile "$P/ca.pem" -cert "$P/alice-leaf.pem" -key "$P/alice.key" 2>&1)
grep -q '^leaf$' <<<"$out" && ok "a client sending only its leaf is served: the chain is completed from client_ca" ||
	nok "leaf-only client: $(tail -2 <<<"$out")"

# --- byte counters move while a stream runs ---------------------------------
b0=$(metric ktlsgw_bytes_in_total worker)
mkfifo "$T/hold.in"
timeout 60 python3 tests/tools/tlsprobe.py hold "$GW_edge" "$P/ca.pem" "$P/bob.pem" "$P/bob.key" \
	< "$T/hold.in" > "$T/hold.out" 2>&1 &
HOLD=$!
exec 4>"$T/hold.in"
for i in $(seq 20); do printf 'line %d of a long stream\n' "$i" >&4; done
n=100
while [ "$(metric ktlsgw_bytes_in_total worker)" -lt $((b0 + 5 + 20 * 20)) ] && [ $n -gt 0 ]; do
	sleep 0.1; n=$((n - 1))
done
b1=$(metric ktlsgw_bytes_in_total worker)
[ "$b1" -ge $((b0 + 405)) ] && ok "bytes_in moves while the connection is open ($b0 -> $b1)" ||
	nok "bytes_in stays at $b0 -> $b1 while a connection streams"

# hold_conn NAME WHO ACTIVE: WHO's TLS connection held open through the
# gateway (tlsprobe hold, fed through the fifo $T/NAME.in, which stays open
# on fd $HOLD_FD until the caller closes it); then wait (bounded) until
# ACTIVE connections are counted
hold_conn() {
	local n=100
	mkfifo "$T/$1.in"
	timeout 60 python3 tests/tools/tlsprobe.py hold "$GW_edge" "$P/ca.pem" "$P/$2.pem" "$P/$2.key" \
		< "$T/$1.in" > "$T/$1.out" 2>&1 &
	exec {HOLD_FD}>"$T/$1.in"
	printf '%s stays\n' "$2" >&"$HOLD_FD"
	while [ "$(metric ktlsgw_connections_active worker)" -lt "$3" ] && [ $n -gt 0 ]; do
		sleep 0.1; n=$((n - 1)); done
}

# --- slow admin and metrics clients cannot stall the main thread -------------
# The main thread also runs the revocation pass (the only live cut for an
# edit made with bpftool, and on kernels before 6.5 for every revocation):
# dave's connection is held open so that a pass can be seen to cut it while
# the slow clients are connected.
SLOWREV=""
if [ "$rev_mode" = required ] && command -v bpftool >/dev/null; then
	hold_conn slowrev dave 2
	SLOWREV=$HOLD_FD
fi
python3 tests/tools/slowclients.py "$MPORT" 100 0.8 "$T/slow.ready" 2>"$T/slow.err" &
SLOW=$!
PIDS="$PIDS $SLOW"
if wait_file "$T/slow.ready" 100; then
	worst=0
	for i in 1 2 3 4 5; do
		t0=$(date +%s%N)
		"$KTLSGW" stats -s "$T/admin.sock" >/dev/null 2>&1 || worst=99999
		el=$(( ($(date +%s%N) - t0) / 1000000 ))
		[ "$el" -gt "$worst" ] && worst=$el
	done
	# the figure is reported; the bound only separates "served" from
	# "waited for the slow clients" (seconds), whatever the machine's load
	[ "$worst" -lt 1000 ] && ok "100 clients dripping a metrics request: ktlsgw stats answered in ${worst} ms at worst (5 tries)" ||
		nok "with 100 slow metrics clients, ktlsgw stats took ${worst} ms"
	if [ -n "$SLOWREV" ]; then
		# a raw map edit: only the gateway's pass (main thread, every
		# 100 ms here) can cut it; the slow clients are dropped 2 s after
		# they connected, so this runs while they are there
		m=$(logmark)
		t0=$(date +%s%N)
		bpftool map update pinned "$PINS/revoked" key hex $(fp "$P/dave.pem" | sed 's/../& /g') \
			value hex 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		if wait_since "$m" "access .*subject=\"dave\".*reason=revoked" 200; then
			ok "with the 100 slow clients connected, the main thread's pass cut a bpftool revocation" \
				"($(( ($(date +%s%N) - t0) / 1000000 )) ms until the log line was seen)"
		else
			nok "revocation pass with slow clients: $(logsince "$m" | tail -3)"
		fi
		exec {SLOWREV}>&-
		"$KTLSGW" revoke del "$(fp "$P/dave.pem")" -c "$T/gw.conf" >/dev/null 2>&1 ||
			nok "revoke del dave: $("$KTLSGW" revoke del "$(fp "$P/dave.pem")" -c "$T/gw.conf" 2>&1)"
	fi
else
	nok "slow clients did not connect: $(cat "$T/slow.err")"
fi

# --- drain: revocation and the admin socket keep working; a 2nd signal ends it --
hold_conn hold2 carol 2
H2=$HOLD_FD
kill -TERM "$GW_PID"
wait_since 0 "SIGTERM: no new connections" 200 || nok "SIGTERM not logged"
if "$KTLSGW" stats -s "$T/admin.sock" >"$T/stats.out" 2>&1; then
	ok "during a drain the admin socket answers: $(head -c 80 "$T/stats.out")"
else
	nok "admin socket during a drain: $(cat "$T/stats.out")"
fi
if [ "$rev_mode" = required ]; then
	m=$(logmark)
	"$KTLSGW" revoke add --cert "$P/bob.pem" -c "$T/gw.conf" >"$T/rev.out" 2>&1
	if wait_since "$m" "access .*subject=\"bob\".*reason=revoked" 200; then
		ok "during a drain a revocation still cuts the live connection"
	else
		nok "revocation during a drain: $(cat "$T/rev.out"); log: $(logsince "$m")"
	fi
else
	skip "revocation during a drain needs root (BPF)"
fi
exec 4>&-
kill "$SLOW" 2>/dev/null
if kill -0 "$GW_PID" 2>/dev/null; then
	ok "the drain waits for the open connection"
else
	nok "the gateway ended its drain with a connection still open"
fi
t0=$(date +%s%N)
kill -INT "$GW_PID"
n=100
while kill -0 "$GW_PID" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
el=$(( ($(date +%s%N) - t0) / 1000000 ))
if ! kill -0 "$GW_PID" 2>/dev/null; then
	ok "SIGINT during a 60 s drain ends the process (${el} ms)"
else
	nok "SIGINT during a drain was ignored"
fi
wait "$GW_PID" 2>/dev/null
GW_PID=
exec {H2}>&-

# --- a second SIGTERM ends a drain as SIGINT does; the metrics answer meanwhile --
if start_gw "$T/gw.conf"; then
	hold_conn hold3 alice 1
	H3=$HOLD_FD
	m=$(logmark)
	kill -TERM "$GW_PID"
	wait_since "$m" "SIGTERM: no new connections" 200 || nok "first SIGTERM not logged"
	if curl -s --max-time 10 "127.0.0.1:$MPORT/metrics" | grep -q '^ktlsgw_connections_active{.*} 1$'; then
		ok "during a drain the metrics endpoint answers (the held connection is active)"
	else
		nok "metrics during a drain: $(curl -s --max-time 10 "127.0.0.1:$MPORT/metrics" | grep -m2 connections_active)"
	fi
	m=$(logmark)
	t0=$(date +%s%N)
	kill -TERM "$GW_PID"
	n=100
	while kill -0 "$GW_PID" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	el=$(( ($(date +%s%N) - t0) / 1000000 ))
	if ! kill -0 "$GW_PID" 2>/dev/null && logsince "$m" | grep -q "SIGTERM: closing every connection now"; then
		ok "a second SIGTERM during a 60 s drain ends the process (${el} ms)"
	else
		nok "a second SIGTERM during a drain was ignored: $(logsince "$m" | grep SIGTERM)"
		kill -KILL "$GW_PID" 2>/dev/null
	fi
	wait "$GW_PID" 2>/dev/null
	GW_PID=
	exec {H3}>&-
else
	nok "the gateway restarts for the second-SIGTERM drain"
fi

# fault_stops FAULT LOG-REGEX WHAT: with KTLSGW_FAULT=FAULT and clients
# connecting, the gateway must exit 1 with LOG-REGEX in its log (fail-stop:
# systemd restarts it), not keep running
fault_stops() {
	local fault=$1 re=$2 what=$3 port i n=300 rc
	: > "$T/gw.log"
	rm -f "$T/gw.ready"
	KTLSGW_FAULT=$fault "$KTLSGW" run -c "$T/gw.conf" --ready-file "$T/gw.ready" >>"$T/gw.log" 2>&1 &
	FPID=$!
	if wait_file "$T/gw.ready" 100; then
		port=$(awk '{print $2}' "$T/gw.ready"); port=${port##*:}
		for i in $(seq 40); do
			kill -0 "$FPID" 2>/dev/null || break
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
			sleep 0.2
		done
	fi
	while kill -0 "$FPID" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	if kill -0 "$FPID" 2>/dev/null; then
		kill -KILL "$FPID"
		nok "$what: the gateway kept running ($fault)"
		return
	fi
	wait "$FPID"
	rc=$?
	[ "$rc" = 1 ] && grep -q "$re" "$T/gw.log" &&
		ok "$what: the gateway stops with exit 1 and says why" ||
		nok "$what ($fault): exit $rc, log: $(tail -3 "$T/gw.log")"
}

# --- a worker whose io_uring fails stops the process -------------------------
sed -i "s|^admin_socket = .*|admin_socket = $T/admin2.sock|; s|^metrics = .*||" "$T/gw.conf"
fault_stops ring:4 "io_uring_enter: Input/output error; stopping the gateway (exit 1)" \
	"a failing io_uring"

# --- a worker whose submission queue stays full stops the process ------------
# KTLSGW_FAULT=sqfull:N: from each worker's Nth request for an SQE on, the
# ring looks full; kg_loop_sqe must give up after its bounded tries, not spin.
fault_stops sqfull:4 "io_uring submission queue stays full: .*; stopping the gateway (exit 1)" \
	"a submission queue that stays full"

# --- counters add up over every worker, beyond 256 ---------------------------
cat > "$T/many.conf" <<CONF
[global]
workers = 260
state_dir = $T/state-many
revocation = off
admin_socket = $T/many.sock

$(listener_conf edge "$EW")
CONF
: > "$T/gw.log"
if start_gw "$T/many.conf"; then
	"$B/kg-loadgen" handshake --connect "127.0.0.1:$GW_edge" --cert "$P/alice.pem" --key "$P/alice.key" \
		--cacert "$P/ca.pem" -n 400 -c 4 >"$T/many.out" 2>&1
	got=$("$KTLSGW" -j stats -s "$T/many.sock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections_total"])')
	[ "$got" = 400 ] && ok "260 workers: stats counts all 400 connections" ||
		nok "260 workers: stats counts $got of 400 connections ($(tail -c 200 "$T/many.out"))"
	stop_gw
else
	nok "260 workers: the gateway did not start"
fi

echo "# lifecycle: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
