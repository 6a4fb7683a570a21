#!/bin/bash
# Hostile clients. Each case asserts what the client sees (alert or close),
# the gateway's log line and its Prometheus counter, while a good client
# keeps doing verified request/response round trips on the same gateway the
# whole time: at the end it must report zero errors.
set -u
. "$(dirname "$0")/lib.sh"

make_pki
start_backend echo echo
MPORT=$(free_port)
{
	global_conf "workers = 2
revocation = off
admin_socket = $T/admin.sock
metrics = 127.0.0.1:$MPORT"
	listener_conf edge "$echo_PORT" "handshake_timeout = 2s"
	LC_CLIENT_CA=$P/deep-client-ca.pem LC_TRUST=$P/deep-root.pem listener_conf deep3 "$echo_PORT" "verify_depth = 3"
	listener_conf tight "$echo_PORT" "max_connections = 5"
} > "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway start"; exit 1; }

# the good client: 2 connections of verified round trips until the battery
# is over (it creates $T/good.stop), however long that takes
LG_TIMEOUT=900 loadgen rr "$GW_edge" carol -c 2 --until-file "$T/good.stop" >"$T/good.out" 2>"$T/good.err" &
GOOD=$!

rejects() { metric ktlsgw_handshake_rejects_total "reason=\"$1\""; }
# raw BYTES-COMMAND: send raw bytes to edge; prints what came back (hex)
raw() { eval "$1" | timeout 10 socat -t3 - "TCP:127.0.0.1:$GW_edge" 2>/dev/null | od -An -tx1 | tr -d ' \n'; }
# case NAME REASON LOG-REGEX COMMAND...: run, then check counter + log
check() {
	local name=$1 reason=$2 re=$3 m0=$4 c0=$5 seen=$6
	local c1 n=50
	# the counter moves once the gateway has closed the connection
	while c1=$(rejects "$reason"); [ "$c1" -le "$c0" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	if [ "$seen" = yes ] && [ "$c1" -gt "$c0" ] && logsince "$m0" | grep -Eq "$re"; then
		ok "$name: closed, logged, ktlsgw_handshake_rejects_total{reason=\"$reason\"} $c0 -> $c1"
	else
		nok "$name: seen=$seen counter $c0 -> $c1, log: $(logsince "$m0" | tail -2)"
	fi
}

# --- not TLS at all ----------------------------------------------------------
m=$(logmark); c=$(rejects not_tls)
back=$(raw "head -c 3000 /dev/urandom")
seen=$([ ${#back} -le 20 ] && echo yes || echo no)	# at most an alert, never data
check "3000 random bytes" not_tls "reject .*reason=not_tls" "$m" "$c" "$seen"

m=$(logmark); c=$(rejects not_tls)
back=$(raw "printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'")
seen=$(! grep -qi "48545450" <<<"$back" && echo yes || echo no)	# no "HTTP" answer
check "plaintext HTTP request" not_tls "reject .*reason=not_tls .*detail=http request" "$m" "$c" "$seen"

# --- malformed TLS -----------------------------------------------------------
# a real ClientHello, recorded from openssl s_client
SP=$((MPORT + 1))
timeout 5 socat -u "TCP-LISTEN:$SP,reuseaddr" "OPEN:$T/ch.bin,creat,trunc" &
sleep 0.3
timeout 3 openssl s_client -connect "127.0.0.1:$SP" </dev/null >/dev/null 2>&1
wait $! 2>/dev/null
[ -s "$T/ch.bin" ] || nok "could not record a ClientHello"

m=$(logmark); c=$(rejects protocol_error)
back=$(raw "head -c 60 '$T/ch.bin'")
seen=$([ "${back:0:2}" = 15 ] && echo yes || echo no)	# an alert record
check "truncated ClientHello, then EOF (alert decode_error)" protocol_error \
	"reject .*reason=protocol_error alert=\"decode error\"" "$m" "$c" "$seen"

m=$(logmark); c=$(rejects protocol_error)
back=$(raw "{ printf '\x16\x03\x01\xff\xff'; head -c 70000 /dev/zero; }")
seen=$([ "$back" = 15030300020216 ] && echo yes || echo no)	# fatal record_overflow
check "oversized record (65535 bytes, alert record_overflow)" protocol_error \
	"reject .*reason=protocol_error alert=\"record overflow\"" "$m" "$c" "$seen"

m=$(logmark); c=$(rejects protocol_error)
back=$(raw "{ printf '\x16\x03\x01\x40\x00\x01\xff\xff\xff'; head -c 16380 /dev/zero; }")
seen=$([ "${back:0:2}" = 15 ] && echo yes || echo no)
check "ClientHello claiming 16 MiB (refused before buffering it)" protocol_error \
	"reject .*reason=protocol_error .*detail=excessive message size" "$m" "$c" "$seen"

# wait_counter REASON TARGET TENTHS: poll the reject counter; prints elapsed ms
wait_counter() {
	local t0 n=$3
	t0=$(date +%s%N)
	while [ "$(rejects "$1")" -lt "$2" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

# truncated ClientHello held open: cut at handshake_timeout (2 s)
m=$(logmark); c=$(rejects handshake_timeout)
{ head -c 60 "$T/ch.bin"; sleep 6; } | timeout 10 socat -t0.2 - "TCP:127.0.0.1:$GW_edge" >/dev/null 2>&1 &
hold=$!
el=$(wait_counter handshake_timeout $((c + 1)) 80)
check "truncated ClientHello held open: closed after ${el} ms (handshake_timeout = 2s)" handshake_timeout \
	"reject .*reason=handshake_timeout" "$m" "$c" "$([ $el -ge 1500 ] && [ $el -lt 5000 ] && echo yes || echo no)"
kill $hold 2>/dev/null

# slowloris: 30 connections dripping a ClientHello one byte every 300 ms.
# This shell opens them all at once (/dev/tcp, no process per connection)
# and one process drips with builtins, so on a loaded machine the clock
# measures the gateway, not how fast 30 client processes start.
m=$(logmark); c=$(rejects handshake_timeout)
read -ra hex <<<"$(od -An -tx1 -v -N40 "$T/ch.bin" | tr '\n' ' ')"
conns=()
for i in $(seq 30); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$GW_edge" && conns+=("$fd")
done
(
	trap '' PIPE
	for h in "${hex[@]}"; do
		for fd in "${conns[@]}"; do printf "\\x$h" >&"$fd" 2>/dev/null; done
		sleep 0.3
	done
) &
drips=$!
el=$(wait_counter handshake_timeout $((c + 30)) 100)
c1=$(rejects handshake_timeout)
if [ $((c1 - c)) -ge 30 ] && [ $el -lt 6000 ] && [ "$(logsince "$m" | grep -c 'reason=handshake_timeout')" -ge 30 ]; then
	ok "slowloris: 30 dripping handshakes all cut at handshake_timeout within ${el} ms (counter $c -> $c1)"
else
	nok "slowloris: counter $c -> $c1 in ${el} ms"
fi
kill $drips 2>/dev/null
for fd in "${conns[@]}"; do exec {fd}>&-; done

# --- certificates --------------------------------------------------------------
certcase() { # NAME PORT CERT REASON ALERT-TEXT [CHAIN]
	local name=$1 port=$2 cert=$3 reason=$4 alert=$5 chain=${6:-$P/$3.pem}
	local m c out
	m=$(logmark); c=$(rejects "$reason")
	out=$(sclient "$port" "$cert" -cert_chain "$chain")
	check "$name (client sees '$alert')" "$reason" "reject .*reason=$reason" "$m" "$c" \
		"$(grep -q "$alert" <<<"$out" && ! grep -q '^ping$' <<<"$out" && echo yes || echo no)"
}
for i in $(seq 98); do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
		-subj "/CN=pad$i" -days 1 2>/dev/null
done > "$T/pad.pem"
cat "$P/alice.pem" "$T/pad.pem" > "$T/chain100.pem"
certcase "a 100-certificate chain" "$GW_edge" alice unknown_ca "alert unknown ca" "$T/chain100.pem"
logsince 0 | grep -q "reason=unknown_ca .*detail=certificate verify failed: certificate chain too long" &&
	ok "the padded chain is named in the log: certificate chain too long" ||
	nok "padded chain: no 'certificate chain too long' detail"
certcase "a chain deeper than verify_depth" "$GW_deep3" deep unknown_ca "alert unknown ca"
certcase "a self-signed client certificate" "$GW_edge" selfsigned unknown_ca "alert unknown ca"
certcase "a certificate for serverAuth only (wrong key usage)" "$GW_edge" serverauth \
	unsupported_certificate "alert unsupported certificate"
certcase "a not-yet-valid certificate" "$GW_edge" notyet bad_certificate "alert bad certificate"

# --- after the handshake -----------------------------------------------------------
closes() { metric ktlsgw_connections_closed_total "reason=\"$1\""; }
wait_closes() { # REASON ABOVE: until closes{REASON} is above ABOVE (60 s at most)
	local n=600
	while [ "$(closes "$1")" -le "$2" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
}

m=$(logmark); c=$(closes client_error)
# each line goes to s_client only once the one before has had its answer
# (its own read, so "R" is a command), whatever the speed of the machine
mkfifo "$T/reneg.in"
timeout 120 openssl s_client -tls1_2 -no_ign_eof -connect "127.0.0.1:$GW_edge" -CAfile "$P/ca.pem" \
	$(cert_args alice) <"$T/reneg.in" >"$T/reneg.out" 2>&1 &
RP=$!
exec 8>"$T/reneg.in"
# (a write after s_client has gone would be SIGPIPE: in a subshell)
(printf 'before\n' >&8) 2>/dev/null
n=1200
until grep -q "^before$" "$T/reneg.out" 2>/dev/null || ! kill -0 $RP 2>/dev/null || [ $n = 0 ]; do
	sleep 0.1; n=$((n - 1)); done
(printf 'R\n' >&8) 2>/dev/null
n=1200
until grep -q "no renegotiation" "$T/reneg.out" 2>/dev/null || ! kill -0 $RP 2>/dev/null || [ $n = 0 ]; do
	sleep 0.1; n=$((n - 1)); done
(printf 'after\n' >&8) 2>/dev/null
exec 8>&-
wait $RP
out=$(cat "$T/reneg.out")
wait_closes client_error "$c"; c1=$(closes client_error)
if grep -q "^before$" <<<"$out" && grep -q "RENEGOTIATING" <<<"$out" && grep -q "no renegotiation" <<<"$out" &&
   ! grep -q "^after$" <<<"$out" && [ "$c1" -gt "$c" ] &&
   logsince "$m" | grep -q "access .*subject=\"alice\" .*tls=1.2 .*reason=client_error"; then
	ok "TLS 1.2 renegotiation refused (no_renegotiation), connection ended, logged, closed{client_error} $c -> $c1"
else
	nok "renegotiation: counter $c -> $c1; $(grep -E 'RENEG|renegotiation|after' <<<"$out" | head -3)"
fi

# KeyUpdate flood on TLS 1.3 (userspace path: OpenSSL answers each one)
m=$(logmark)
out=$( (printf 'before\n'; sleep 0.3; for i in $(seq 200); do printf 'K\n'; sleep 0.01; done; sleep 1; printf 'after\n'; sleep 0.5) |
	timeout 20 openssl s_client -tls1_3 -no_ign_eof -connect "127.0.0.1:$GW_edge" -CAfile "$P/ca.pem" \
	$(cert_args alice) 2>&1)
wait_since "$m" "access .*subject=\"alice\" .*tls=1.3 .*reason=" 50
kus=$(grep -c "KEYUPDATE" <<<"$out")
if grep -q "^before$" <<<"$out" && grep -q "^after$" <<<"$out" && [ "$kus" -ge 150 ] &&
   logsince "$m" | grep -q "access .*subject=\"alice\" .*tls=1.3 .*reason=done"; then
	ok "a flood of $kus KeyUpdate requests on TLS 1.3: answered, data still intact, clean close logged"
else
	nok "KeyUpdate flood ($kus sent): $(tail -3 <<<"$out"); $(logsince "$m" | tail -1)"
fi

# the client resets mid-transfer
m=$(logmark); c=$(closes client_error)
loadgen echo "$GW_edge" bob --bytes 64M --abort-after 8M >"$T/abort.out" 2>&1
wait_closes client_error "$c"; c1=$(closes client_error)
if grep -q "aborted with RST" "$T/abort.out" && [ "$c1" -gt "$c" ] &&
   logsince "$m" | grep -q "access .*subject=\"bob\" .*reason=client_error"; then
	ok "client RST mid-transfer: logged reason=client_error, closed{client_error} $c -> $c1"
else
	nok "client RST: counter $c -> $c1; $(logsince "$m" | grep access | tail -1)"
fi

# --- a connection flood beyond max_connections -----------------------------------
# 40 clients that hold their connection until told; counted once 35 have
# been refused (or after 60 s)
kill -0 "$GOOD" 2>/dev/null && ok "the good client is still running when the flood starts" ||
	nok "the good client has already finished when the flood starts: $(cat "$T/good.out" "$T/good.err" | head -3)"
m=$(logmark); c=$(rejects max_connections)
t0=$(date +%s%N)
holders=""
for i in $(seq 40); do
	s_hold "$GW_tight" bob "$T/flood.stop" &
	holders="$holders $!"
done
n=600
while [ "$(rejects max_connections)" -lt $((c + 35)) ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
active=$("$KTLSGW" -j stats --socket "$T/admin.sock" 2>/dev/null | grep -o '"connections_active":[0-9]*' | cut -d: -f2)
# the refusal line is logged at most once a second: bound it by how long the
# refusals took (40 clients start slowly on a loaded machine)
secs=$(( ($(date +%s%N) - t0 + 999999999) / 1000000000 ))
touch "$T/flood.stop"
wait $holders 2>/dev/null
c1=$(rejects max_connections)
lines=$(logsince "$m" | grep -c "listener tight: max_connections (5) reached")
if [ "$((c1 - c))" -ge 30 ] && [ "${active:-99}" -le 7 ] && [ "${active:-0}" -ge 6 ] && [ "$lines" -ge 1 ] &&
   [ "$lines" -le $((secs + 1)) ] && [ "$lines" -lt "$((c1 - c))" ]; then
	ok "40 connections on a listener with max_connections = 5: $((c1 - c)) refused at once (counter), $active active (5 + the good client's 2), $lines log line(s) in $secs s (rate-limited)"
else
	nok "flood: refused $((c1 - c)), active $active, $lines log lines in $secs s"
fi

# --- the good client was never disturbed ---------------------------------------------
touch "$T/good.stop"
wait $GOOD
if grep -q '"errors":0,"ok":true' "$T/good.out"; then
	ok "the good client ran throughout without a single error: $(cut -c1-120 "$T/good.out")"
else
	nok "the good client was disturbed: $(cat "$T/good.out" "$T/good.err" | head -5)"
fi
if kill -0 "$GW_PID" 2>/dev/null; then ok "the gateway is still running"; else nok "the gateway died"; fi
stop_gw
echo "# hostile: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
