#!/bin/bash
# kTLS on the origin leg: every TLS version × cipher toward a TLS origin
# (socat terminating TLS, our certificate required, in front of the echo
# backend) carries data both ways intact, with both legs offloaded: the
# access log says path=client-ktls,origin-ktls and /proc/net/tls_stat
# counts a software TX and RX context on both sockets of each connection;
# 256 MiB each way cost the gateway under 0.01% of them in rchar+wchar.
# An origin that refuses us after a TLS 1.3 handshake is caught on the
# offloaded leg (its alert is a control record there). Where the kernel has
# no tls ULP the same cells run on the userspace path. Last, the origin sits
# in a network namespace behind veth with 20 ms of netem delay each way.
set -u
. "$(dirname "$0")/../integration/lib.sh"

make_pki
start_backend echo echo
ktls_mode "kTLS origin leg"
if ! command -v socat >/dev/null; then
	nok "socat is missing (sh tests/deps.sh)"
	exit 1
fi
BYTES=${KG_KTLS_BYTES:-1048576}

# the origin leg toward socat: TLS, verified against the test CA, with
# alice's certificate (the origin requires one)
ORIGIN_MTLS="backend_tls = on
backend_ca = $P/ca.pem
backend_cert = $P/alice.pem
backend_key = $P/alice.key"
SPORT=$(free_port)
socat "OPENSSL-LISTEN:$SPORT,bind=127.0.0.1,reuseaddr,fork,cert=$P/server.pem,key=$P/server.key,cafile=$P/client-ca-chain.pem,verify=1" \
	"TCP:127.0.0.1:$echo_PORT" 2>"$T/socat.log" &
PIDS="$PIDS $!"
wait_listen "$SPORT" 600 || { nok "socat TLS origin did not start: $(cat "$T/socat.log")"; exit 1; }

cell() { # VERSION CIPHER(openssl name for 1.2 / suite for 1.3) LABEL
	local ver=$1 cipher=$2 label=$3 cfg=$T/cell.conf key
	if [ "$ver" = 1.3 ]; then key="backend_ciphersuites = $cipher"; else key="backend_ciphers = $cipher"; fi
	{
		global_conf "workers = 1
revocation = off
admin_socket ="
		listener_conf cell "$SPORT" "ktls = $KT
backend_tls = on
backend_ca = $P/ca.pem
backend_cert = $P/alice.pem
backend_key = $P/alice.key
backend_tls_min = $ver
backend_tls_max = $ver
$key"
	} > "$cfg"
	: > "$T/gw.log"
	start_gw "$cfg" || { nok "$label: gateway start"; return; }
	local tx0 rx0 tx1 rx1 res
	tx0=$(tls_stat TlsTxSw); rx0=$(tls_stat TlsRxSw)
	res=$(LG_TIMEOUT=600 loadgen echo "$GW_cell" bob -c 2 --bytes "$BYTES" 2>"$T/lg.err")
	tx1=$(tls_stat TlsTxSw); rx1=$(tls_stat TlsRxSw)
	stop_gw
	if ! echo "$res" | grep -q '"ok":true'; then
		nok "origin leg $label: data through the gateway: $res $(head -2 "$T/lg.err")"
		tail -5 "$T/gw.log"
		return
	fi
	local want="path=client-ktls,origin-ktls reason=done" n
	[ $MODE = ktls ] || want="path=client-userspace,origin-userspace reason=done"
	n=$(grep -c "access .*origin_tls=$ver .*$want" "$T/gw.log")
	if [ $MODE = ktls ]; then
		# 2 connections × 2 sockets, each with a TX and an RX context
		if [ "$n" = 2 ] && [ $((tx1 - tx0)) -ge 4 ] && [ $((rx1 - rx0)) -ge 4 ]; then
			ok "origin leg $label: ${BYTES} B each way on 2 connections intact, both legs offloaded TX+RX (TlsTxSw +$((tx1 - tx0)), TlsRxSw +$((rx1 - rx0)); $want)"
		else
			nok "origin leg $label: not offloaded on both legs: lines=$n TlsTxSw +$((tx1 - tx0)) TlsRxSw +$((rx1 - rx0)); $(grep -o 'origin_tls=[^ ]* origin_cipher=[^ ]*.*path=[a-z,-]*' "$T/gw.log" | sort | uniq -c | tr '\n' ' ')"
		fi
	else
		[ "$n" = 2 ] && ok "origin leg $label: intact on the userspace path (no kTLS here)" ||
			nok "origin leg $label: no access lines with $want: $(grep access "$T/gw.log" | tail -1)"
	fi
}

# KG_ORIGIN_PARTS: the parts to run (default all): cells zc refuse netns
# client revoke
want_part() {
	case " ${KG_ORIGIN_PARTS:-all} " in *" all "* | *" $1 "*) return 0 ;; esac
	return 1
}
# wait_conn_s SUBJECT SECONDS: wait_conn bounded by time, not by rounds (a
# CLI call takes seconds in an emulated VM)
wait_conn_s() {
	local end=$(($(date +%s) + $2))
	until "$KTLSGW" -j conn list --socket "$T/admin.sock" 2>/dev/null | tr '}' '\n' |
		grep "\"subject\": *\"$1\"" | grep -q '"state": *"established"'; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.5
	done
}

if want_part cells; then
cell 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 "TLS 1.2 AES-128-GCM"
cell 1.2 ECDHE-ECDSA-AES256-GCM-SHA384 "TLS 1.2 AES-256-GCM"
cell 1.2 ECDHE-ECDSA-CHACHA20-POLY1305 "TLS 1.2 CHACHA20-POLY1305"
cell 1.3 TLS_AES_128_GCM_SHA256 "TLS 1.3 AES-128-GCM"
cell 1.3 TLS_AES_256_GCM_SHA384 "TLS 1.3 AES-256-GCM"
cell 1.3 TLS_CHACHA20_POLY1305_SHA256 "TLS 1.3 CHACHA20-POLY1305"
fi

# Zero copy with TLS on both legs: the bytes go client kTLS RX → pipe →
# origin kTLS TX and back; the gateway's own reads and writes (rchar +
# wchar) must stay under 0.01% of what it proxied.
if [ $MODE = ktls ] && want_part zc; then
	MB=${KG_ZC_MB:-256}
	{
		global_conf "workers = 1
revocation = off
admin_socket ="
		listener_conf zc "$SPORT" "ktls = on
$ORIGIN_MTLS"
	} > "$T/zc.conf"
	: > "$T/gw.log"
	if start_gw "$T/zc.conf"; then
		io() { awk '/^rchar|^wchar/ {s += $2} END {print s}' "/proc/$GW_PID/io"; }
		before=$(io)
		res=$(LG_TIMEOUT=1500 loadgen echo "$GW_zc" bob --tls 1.3 -c 1 --bytes $((MB * 1024 * 1024)) 2>"$T/lg.err")
		after=$(io)
		moved=$((2 * MB * 1024 * 1024))
		used=$((after - before))
		if echo "$res" | grep -q '"ok":true' && wait_log "access .*path=client-ktls,origin-ktls reason=done" 600 &&
			[ $((used * 10000)) -lt "$moved" ]; then
			ok "zero copy, TLS on both legs: ${MB} MiB each way; gateway rchar+wchar grew by $used bytes = $(echo "scale=6; $used * 100 / $moved" | bc)% of the $moved bytes proxied"
		else
			nok "zero copy with TLS on both legs: res=$res $(head -1 "$T/lg.err"); rchar+wchar grew by $used for $moved bytes; $(grep access "$T/gw.log" | tail -1)"
		fi
		stop_gw
	else
		nok "gateway start (zero copy)"
	fi
fi

if want_part refuse; then
# An origin that wants a client certificate we do not present: with TLS 1.3
# it says so after our handshake, as an alert on the (offloaded) origin leg.
OPORT=$(free_port)
openssl s_server -accept "127.0.0.1:$OPORT" -cert "$P/server.pem" -key "$P/server.key" \
	-CAfile "$P/client-ca-chain.pem" -Verify 1 -verify_return_error -rev </dev/null >"$T/sserver.log" 2>&1 &
PIDS="$PIDS $!"
wait_listen "$OPORT" 600 || { nok "s_server did not start"; exit 1; }
{
	global_conf "workers = 1
revocation = off
admin_socket ="
	listener_conf refuse "$OPORT" "ktls = $KT
backend_tls = on
backend_ca = $P/ca.pem"
} > "$T/refuse.conf"
: > "$T/gw.log"
if start_gw "$T/refuse.conf"; then
	out=$(SC_TIMEOUT=120 sclient "$GW_refuse" bob -msg 2>&1)
	if echo "$out" | grep -q 'Alert \[length 0002\], warning close_notify' &&
		wait_log "access .*listener=refuse .*reason=backend_tls_failed detail=origin (sent )?alert certificate required" 600; then
		ok "origin refusing us after a TLS 1.3 handshake ($MODE origin leg): client got close_notify; $(grep -o 'backend_tls_failed: .*' "$T/gw.log" | head -1)"
	else
		nok "refusal on the $MODE origin leg: client: $(echo "$out" | grep -E 'Alert|error' | head -2 | tr '\n' ' '); log: $(grep -E 'access|error' "$T/gw.log" | tail -2)"
	fi
	stop_gw
else
	nok "gateway start (refusal)"
fi
fi

# The origin in a network namespace behind a veth pair with 20 ms of netem
# delay each way: connecting takes real time, and the origin leg is still
# offloaded (the ULP goes on once the connection is established and the
# handshake done). In the VM the modules come from the VM's own kernel tree.
netns_origin() {
	local ns=kgo$$ h=kgoh$$ n=kgon$$ a=10.213.$(($$ % 200)).1 b=10.213.$(($$ % 200)).2 nport eport
	if [ "$(id -u)" != 0 ]; then
		skip "origin behind veth + netem: needs root"
		return
	fi
	# inside the VM: the modules of its own kernel, from the unpacked
	# package (kernel-config/vm-run: $B/vm/KERNEL/root)
	for m in veth sch_netem; do
		modprobe "$m" 2>/dev/null && continue
		for d in "$PWD/$B"/vm/*/root "$PWD/$B"/vm/*/root/usr "$PWD/$B/vm/root"; do
			[ -d "$d/lib/modules/$(uname -r)" ] && modprobe -d "$d" "$m" 2>/dev/null && break
		done
	done
	if ! ip netns add "$ns" 2>"$T/netns.err"; then
		[ "${KG_IN_VM:-0}" = 1 ] && nok "ip netns add: $(cat "$T/netns.err")" ||
			skip "origin behind veth + netem: no network namespaces here ($(cat "$T/netns.err"))"
		return
	fi
	NETNS_CLEAN="ip netns del $ns; ip link del $h"
	ip link add "$h" type veth peer name "$n" && ip link set "$n" netns "$ns" &&
		ip addr add "$a/30" dev "$h" && ip link set "$h" up &&
		ip -n "$ns" addr add "$b/30" dev "$n" && ip -n "$ns" link set "$n" up &&
		ip -n "$ns" link set lo up
	if ! tc qdisc add dev "$h" root netem delay 20ms 2>"$T/netem.err" ||
		! ip netns exec "$ns" tc qdisc add dev "$n" root netem delay 20ms 2>>"$T/netem.err"; then
		eval "$NETNS_CLEAN" 2>/dev/null
		[ "${KG_IN_VM:-0}" = 1 ] && nok "netem: $(cat "$T/netem.err")" ||
			skip "origin behind veth + netem: no netem in kernel $(uname -r) ($(head -1 "$T/netem.err"))"
		return
	fi
	rm -f "$T/nsecho.port"
	ip netns exec "$ns" "$B/kg-backend" --listen 127.0.0.1:0 --mode echo --port-file "$T/nsecho.port" \
		2>"$T/nsecho.log" &
	PIDS="$PIDS $!"
	wait_file "$T/nsecho.port" 600 || { nok "echo backend in the namespace"; eval "$NETNS_CLEAN"; return; }
	eport=$(cat "$T/nsecho.port")
	nport=$(free_port)
	ip netns exec "$ns" socat "OPENSSL-LISTEN:$nport,bind=$b,reuseaddr,fork,cert=$P/server.pem,key=$P/server.key,cafile=$P/client-ca-chain.pem,verify=1" \
		"TCP:127.0.0.1:$eport" 2>"$T/nssocat.log" &
	PIDS="$PIDS $!"
	local n2=600
	until ip netns exec "$ns" ss -Hltn "sport = :$nport" | grep -q .; do
		[ $n2 -gt 0 ] || { nok "socat in the namespace did not start"; eval "$NETNS_CLEAN"; return; }
		sleep 0.1
		n2=$((n2 - 1))
	done
	{
		global_conf "workers = 1
revocation = off
admin_socket ="
		listener_conf far "$nport" "ktls = $KT
backend_tls = on
backend_ca = $P/ca.pem
backend_name = localhost
backend_cert = $P/alice.pem
backend_key = $P/alice.key" | sed "s/^backend = .*/backend = $b:$nport/"
	} > "$T/far.conf"
	: > "$T/gw.log"
	if start_gw "$T/far.conf"; then
		local res rtt want
		rtt=$( (tc qdisc show dev "$h"; ip netns exec "$ns" tc qdisc show dev "$n") | grep -o 'delay [0-9.]*ms' | tr '\n' ' ')
		res=$(LG_TIMEOUT=600 loadgen echo "$GW_far" bob -c 2 --bytes 1048576 2>"$T/lg.err")
		want="path=client-ktls,origin-ktls reason=done"
		[ $MODE = ktls ] || want="path=client-userspace,origin-userspace reason=done"
		if echo "$res" | grep -q '"ok":true' && [ "$(grep -c "access .*$want" "$T/gw.log")" = 2 ]; then
			ok "origin in a netns behind veth + 20 ms netem each way (qdiscs: $rtt): 2 × 1 MiB echo intact, $want"
		else
			nok "origin behind netem: $res $(head -1 "$T/lg.err"); $(grep -E 'access|error|warning' "$T/gw.log" | tail -2)"
		fi
		stop_gw
	else
		nok "gateway start (netns origin)"
	fi
	eval "$NETNS_CLEAN" 2>/dev/null
}
trap 'cleanup; eval "${NETNS_CLEAN:-}" 2>/dev/null; rm -rf "${PINS:-/nonexistent}"' EXIT
want_part netns && netns_origin

if want_part client; then
# Client mode (tls = off): plain TCP in, mTLS out, the origin leg offloaded.
{
	global_conf "workers = 1
revocation = off
admin_socket ="
	client_mode_conf local "$SPORT" "ktls = $KT"
} > "$T/local.conf"
: > "$T/gw.log"
if start_gw "$T/local.conf"; then
	want="path=client-plain,origin-ktls reason=done"
	[ $MODE = ktls ] || want="path=client-plain,origin-userspace reason=done"
	line=""
	if exec {fd}<>"/dev/tcp/127.0.0.1/$GW_local"; then
		printf 'hello through client mode\n' >&"$fd"
		read -r -t 120 line <&"$fd"
		exec {fd}>&-
	fi
	if [ "$line" = "hello through client mode" ] && wait_log "access .*listener=local .*$want" 600; then
		ok "client mode: plain TCP in, mTLS to the origin, the line came back; $want"
	else
		nok "client mode: got '$line'; $(grep -E 'access|error' "$T/gw.log" | tail -1)"
	fi
	stop_gw
else
	nok "gateway start (client mode)"
fi
fi

# A revocation cuts both legs of a connection whose origin leg is offloaded.
if [ "$(id -u)" = 0 ] && want_part revoke; then
	PINS=/sys/fs/bpf/ktlsgw-origin-$$
	{
		GC_STATE=$T/state-rev global_conf "workers = 1
bpf_pin_root = $PINS
revocation_scan_interval = 100ms
admin_socket = $T/admin.sock"
		listener_conf revo "$SPORT" "ktls = $KT
$ORIGIN_MTLS"
	} > "$T/revo.conf"
	: > "$T/gw.log"
	if start_gw "$T/revo.conf"; then
		# established sockets toward the origin and toward the gateway:
		# the origin leg, and the client's end of the client leg
		legs() { ss -Htn state established "( dport = :$SPORT or dport = :$GW_revo )" | wc -l; }
		# an established connection that sends nothing: a stream through
		# two emulated kTLS legs keeps the worker too busy for `conn list`
		# in the VM
		s_hold "$GW_revo" carol "$T/carol.stop" 2>"$T/carol.err" &
		if wait_conn_s carol 300; then
			before=$(legs)
			"$KTLSGW" revoke add --cert "$P/carol.pem" -c "$T/revo.conf" >"$T/rev.out" 2>&1
			n=600
			while [ "$(legs)" != 0 ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
			after=$(legs)
			pathre="path=client-ktls,origin-ktls"
			[ $MODE = ktls ] || pathre="path=client-userspace,origin-userspace"
			if [ "$before" -ge 2 ] && [ "$after" = 0 ] &&
				wait_log "access .*subject=\"carol\".*$pathre reason=revoked" 600; then
				ok "revocation cut both legs of carol's connection ($pathre): established sockets of both legs $before -> $after"
			else
				nok "revocation on the origin leg: legs $before -> $after; $(cat "$T/rev.out"); $(grep 'carol' "$T/gw.log" | tail -1)"
			fi
		else
			nok "carol's connection did not start: $(grep -E 'error|warning|access' "$T/gw.log" | tail -3)"
		fi
		touch "$T/carol.stop"
		stop_gw
	elif grep -q "revocation:" "$T/gw.log"; then
		skip "revocation on the origin leg: BPF unavailable: $(grep -m1 'revocation:' "$T/gw.log")"
	else
		nok "gateway start (revocation)"
	fi
fi

rm -rf "$T"
[ "$FAIL" -eq 0 ]
