#!/bin/bash
# Operating it: `conn list` shows live sessions with fingerprint and data path,
# `conn kill` ends one, `stats` counts, the metrics page passes promtool and
# every rejection reason moves its own counter, SIGTERM drains.
set -u
. "$(dirname "$0")/lib.sh"

make_pki
start_backend echo echo
MPORT=$(free_port)
{
	global_conf "workers = 2
bpf_pin_root = /sys/fs/bpf/ktlsgw-test-admin-$$
revocation = best-effort
admin_socket = $T/admin.sock
metrics = 127.0.0.1:$MPORT
drain_timeout = 20s"
	listener_conf edge "$echo_PORT" "handshake_timeout = 1s"
	listener_conf limited "$echo_PORT" "max_connections = 2
max_lifetime = 2s"
	listener_conf rated "$echo_PORT" "handshake_rate = 2"
} > "$T/gw.conf"
trap 'cleanup; rm -rf /sys/fs/bpf/ktlsgw-test-admin-$$' EXIT
start_gw "$T/gw.conf" || { nok "gateway starts"; exit 1; }
A="-s $T/admin.sock"

[ "$(stat -c %a "$T/admin.sock")" = 600 ] && ok "admin socket is mode 0600" || nok "admin socket mode $(stat -c %a "$T/admin.sock")"

# a live openssl session (stdin held open)
( printf 'hello\n'; sleep 30 ) | openssl s_client -quiet -connect "127.0.0.1:$GW_edge" $(cert_args alice) \
	-CAfile "$P/ca.pem" >"$T/s.out" 2>&1 &
S=$!
wait_log "^hello$" 100 "$T/s.out"
out=$("$KTLSGW" conn list $A)
if echo "$out" | grep -qE "alice +$(fp "$P/alice.pem") +1\.3 +TLS_AES_256_GCM_SHA384 +(userspace|ktls)"; then
	ok "conn list shows the live openssl session with its fingerprint and data path"
else
	nok "conn list: $out"
fi
id=$("$KTLSGW" -j conn list $A | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
"$KTLSGW" -j conn list $A | grep -q "\"state\":\"established\"" && ok "conn list -j: $("$KTLSGW" -j conn list $A | cut -c1-160)..." || nok "conn list -j"
"$KTLSGW" conn kill "$id" $A >/dev/null
wait_gone "$S" 30
if ! kill -0 $S 2>/dev/null && grep -q "conn=$id .*reason=killed" "$T/gw.log"; then
	ok "conn kill $id ended it (client gone, access log reason=killed)"
else
	kill $S 2>/dev/null; nok "conn kill: $(grep "conn=$id" "$T/gw.log")"
fi
"$KTLSGW" conn kill 999999 $A 2>"$T/e"; rc=$?
[ $rc = 1 ] && grep -q "no connection 999999" "$T/e" && ok "conn kill of an unknown ID: exit 1, says so" || nok "conn kill unknown: rc=$rc"

# --- each rejection reason moves its own counter --------------------------
try() { # CERT (empty = none) [s_client args]: true when the echo came back
	local c=$1
	shift
	sclient "$GW_edge" "$c" "$@" | grep -q "^ping$"
}
for case in "no_certificate:" "unknown_ca:stranger" "certificate_expired:expired" \
	    "bad_certificate:notyet" "unsupported_certificate:serverauth"; do
	reason=${case%%:*}
	cert=${case#*:}
	before=$(metric ktlsgw_handshake_rejects_total "reason=\"$reason\"")
	try "$cert"
	after=$(metric ktlsgw_handshake_rejects_total "reason=\"$reason\"")
	[ "$after" = $((before + 1)) ] && ok "metric ktlsgw_handshake_rejects_total{reason=\"$reason\"} $before -> $after" ||
		nok "reason $reason: $before -> $after"
done
before=$(metric ktlsgw_handshake_rejects_total 'reason="handshake_timeout"')
timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$GW_edge; cat <&3 >/dev/null" 2>/dev/null
after=$(metric ktlsgw_handshake_rejects_total 'reason="handshake_timeout"')
[ "$after" = $((before + 1)) ] && ok "metric reason=\"handshake_timeout\" $before -> $after" || nok "timeout counter $before -> $after"

curl -s "127.0.0.1:$MPORT/metrics" > "$T/metrics.txt"
if command -v promtool >/dev/null; then
	if promtool check metrics < "$T/metrics.txt" > "$T/promtool.out" 2>&1; then
		ok "metrics page passes promtool check metrics ($(grep -c '^ktlsgw_' "$T/metrics.txt") samples)"
	else
		nok "promtool: $(head -5 "$T/promtool.out")"
	fi
else
	skip "promtool not installed (apt-get install prometheus)"
fi
grep -q '^ktlsgw_data_path_total{worker="[01]",path="\(userspace\|ktls\)",tls="1.3",cipher="AES-256-GCM"} [1-9]' "$T/metrics.txt" &&
	ok "data path counted per TLS version and cipher" || nok "no data path sample"
"$KTLSGW" stats $A | grep -Eq "^handshakes_ok +[1-9]" && ok "stats: $("$KTLSGW" -j stats $A | cut -c1-120)..." || nok "stats"

# --- limits: max_connections (all workers together) and max_lifetime --------
# the two idle connections stay until the third has been tried, however
# slow the machine
loadgen idle "$GW_limited" alice -c 2 --until-file "$T/idle.stop" >/dev/null 2>"$T/idle.err" &
I=$!
wait_log "connections open" 600 "$T/idle.err"
out=$(SC_TIMEOUT=120 sclient "$GW_limited" bob)
touch "$T/idle.stop"
wait $I
if ! echo "$out" | grep -q "^ping$" && grep -q "listener limited: max_connections (2) reached" "$T/gw.log"; then
	ok "max_connections = 2: the third connection is closed at once and logged"
else
	nok "max_connections: $(echo "$out" | tail -1)"
fi
( printf 'x\n'; sleep 4 ) | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$GW_limited" \
	-CAfile "$P/ca.pem" $(cert_args bob) >/dev/null 2>&1
line=$(grep 'subject="bob".*reason=max_lifetime' "$T/gw.log" | tail -1)
el=$(echo "$line" | grep -o 'duration_ms=[0-9]*' | cut -d= -f2)
if [ -n "$el" ] && [ "$el" -ge 2000 ] && [ "$el" -lt 3500 ]; then
	ok "max_lifetime = 2s: an established connection was closed after ${el} ms, reason=max_lifetime"
else
	nok "max_lifetime: $(grep bob "$T/gw.log" | tail -1)"
fi

# --- handshake_rate -----------------------------------------------------------
before=$(metric ktlsgw_handshake_rejects_total 'reason="rate_limited"')
res=$(loadgen handshake "$GW_rated" alice -c 1 -n 20 2>/dev/null)
after=$(metric ktlsgw_handshake_rejects_total 'reason="rate_limited"')
done_hs=$(echo "$res" | grep -o '"handshakes":[0-9]*' | cut -d: -f2)
if [ "${done_hs:-0}" -ge 1 ] && [ "${done_hs:-0}" -le 6 ] && [ $((after - before)) -ge 14 ] &&
   grep -q "listener rated: handshake_rate (2/s) exceeded" "$T/gw.log"; then
	ok "handshake_rate = 2: a burst of 20 got $done_hs through, $((after - before)) closed (rate_limited counted, logged once a second)"
else
	nok "handshake_rate: handshakes=$done_hs rate_limited $before -> $after"
fi

# --- SIGTERM drains ----------------------------------------------------------
# the probe of a late client must be able to see an accepted connection
if try alice; then early=accepted; else early=refused; fi
[ $early = accepted ] && ok "before SIGTERM the late-client probe is accepted (the probe can tell)" ||
	nok "the late-client probe is $early on a running gateway: it cannot tell accepted from refused"
loadgen echo "$GW_edge" alice --bytes 300000000 >"$T/drain.out" 2>&1 &
L=$!
# SIGTERM once the transfer is established, the probe once the drain began
n=100
until "$KTLSGW" -j conn list $A 2>/dev/null | grep -q '"state":"established"' || [ $n -le 0 ]; do
	sleep 0.1; n=$((n - 1))
done
kill -TERM "$GW_PID"
wait_log "draining"
if try alice; then late=accepted; else late=refused; fi
wait $L
wait "$GW_PID" 2>/dev/null
if grep -q '"ok":true' "$T/drain.out" && [ $late = refused ] && grep -q "draining" "$T/gw.log"; then
	ok "SIGTERM: new connections refused, the running 300 MB transfer finished intact"
else
	nok "drain: late=$late $(cat "$T/drain.out")"
fi
GW_PID=
rm -rf "$T"
