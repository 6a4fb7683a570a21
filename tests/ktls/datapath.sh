#!/bin/bash
# kTLS data path facts (run inside the kTLS VM by tests/ktls/run.sh):
# zero-copy (gateway rchar+wchar < 1% of the bytes proxied), close_notify in
# each direction, a client KeyUpdate ends cleanly and is counted, a flood of
# control records costs no CPU once it stops, and revoking a certificate cuts
# an offloaded connection (kernel without bpf_sock_destroy: the gateway does),
# and an idle offloaded connection costs at most 1 KiB of the gateway's
# anonymous memory (600 more with 600 open).
set -u
. "$(dirname "$0")/../integration/lib.sh"

if ! grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && ! modprobe tls 2>/dev/null; then
	if [ "${KG_IN_VM:-0}" = 1 ]; then
		nok "kTLS data path: the VM's kernel $(uname -r) has no tls ULP"
		exit 1
	fi
	echo "# kTLS data path: no tls ULP in kernel $(uname -r): these checks run in the kTLS VM"
	skip "kTLS data path checks (no tls ULP here)"
	exit 0
fi
make_pki
start_backend echo echo
start_backend src source
PINS=/sys/fs/bpf/ktlsgw-ktls-$$
{
	global_conf "workers = 1
bpf_pin_root = $PINS
revocation_scan_interval = 100ms
admin_socket = $T/admin.sock"
	listener_conf echo "$echo_PORT" "ktls = on"
	listener_conf src "$src_PORT" "ktls = on"
} > "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway start"; exit 1; }
io() { awk '/^rchar|^wchar/ {s += $2} END {print s}' "/proc/$GW_PID/io"; }

# --- zero copy -------------------------------------------------------------
MB=${KG_ZC_MB:-256}
before=$(io)
res=$(LG_TIMEOUT=900 loadgen echo "$GW_echo" alice --tls 1.3 -c 1 \
	--bytes $((MB * 1024 * 1024)) 2>"$T/lg.err")
after=$(io)
moved=$((2 * MB * 1024 * 1024))
used=$((after - before))
if echo "$res" | grep -q '"ok":true' && grep -q "path=ktls reason=done" "$T/gw.log" &&
   [ $((used * 100)) -lt "$moved" ]; then
	ok "zero copy: ${MB} MiB each way over one offloaded connection; gateway rchar+wchar grew by $used bytes = $(echo "scale=4; $used * 100 / $moved" | bc)% of the $moved bytes proxied"
else
	nok "zero copy: res=$res rchar+wchar grew by $used for $moved bytes"
fi

# --- close_notify in each direction ------------------------------------------
# client first: echo half-closes with close_notify, the backend sees EOF, answers
# its FIN, the client then gets our close_notify (loadgen checks a clean end).
res=$(LG_TIMEOUT=120 loadgen echo "$GW_echo" alice -c 1 --bytes 65536 2>&1)
echo "$res" | grep -q '"ok":true' && ok "client close_notify propagates as a half-close; the client gets close_notify back" ||
	nok "client close_notify: $res"
# backend first: the source backend sends 1 MiB then FIN; the client must see
# close_notify (SSL_ERROR_ZERO_RETURN), not a bare EOF
res=$(LG_TIMEOUT=120 loadgen download "$GW_src" alice -c 1 --bytes 1048576 2>&1)
echo "$res" | grep -q '"ok":true' && ok "backend FIN becomes a close_notify from the kernel TLS socket" ||
	nok "backend close: $res"

# --- KeyUpdate from the client ------------------------------------------------
tls_stat() { awk -v k="$1" '$1 == k {print $2}' /proc/net/tls_stat 2>/dev/null; }
stat_of() { # FIELD: the gateway's counter from `ktlsgw stats -j`
	"$B/ktlsgw" -j stats --socket "$T/admin.sock" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
if "$B/ktlsgw" -j features | grep -q '"rekey":{"kernel":true'; then
	# --- KeyUpdates followed in the kernel (6.14+) ---------------------------
	# 256 MiB each way through one offloaded TLS 1.3 connection while the
	# client sends 1000 KeyUpdates, every other one with update_requested
	# (each answered by our own KeyUpdate): intact, counted by the gateway
	# and by the kernel, and still zero-copy.
	KU=${KG_KEYUPDATES:-1000}
	rx0=$(stat_of ktls_rekeys_rx); tx0=$(stat_of ktls_rekeys_tx)
	krx0=$(tls_stat TlsRxRekeyOk); ktx0=$(tls_stat TlsTxRekeyOk)
	before=$(io)
	res=$(LG_TIMEOUT=1500 loadgen echo "$GW_echo" alice --tls 1.3 -c 1 --bytes $((MB * 1024 * 1024)) \
		--keyupdate "$KU" 2>"$T/lg.err")
	after=$(io)
	rx=$(($(stat_of ktls_rekeys_rx) - rx0)); tx=$(($(stat_of ktls_rekeys_tx) - tx0))
	krx=$(($(tls_stat TlsRxRekeyOk) - krx0)); ktx=$(($(tls_stat TlsTxRekeyOk) - ktx0))
	used=$((after - before))
	# Requests that arrive while our answer is still owed get that one
	# answer (RFC 8446 §4.6.3: "respond with a single update"), so our own
	# KeyUpdates number between 1 and KU/2, the same in the kernel's count.
	if echo "$res" | grep -q "\"keyupdates_sent\":$KU,.*\"ok\":true" && [ "$rx" = "$KU" ] &&
	   [ "$krx" = "$KU" ] && [ "$tx" = "$ktx" ] && [ "$tx" -ge 1 ] && [ "$tx" -le $((KU / 2)) ] &&
	   [ $((used * 10000)) -lt "$moved" ]; then
		ok "rekey on kernel $(uname -r): ${MB} MiB each way intact through $KU client KeyUpdates ($((KU / 2)) with update_requested, answered by $tx of ours); ktlsgw_ktls_rekeys_total rx=$rx tx=$tx = kernel TlsRxRekeyOk +$krx TlsTxRekeyOk +$ktx; rchar+wchar +$used bytes = $(echo "scale=4; $used * 100 / $moved" | bc)% of $moved"
	else
		nok "rekey: res=$res $(tail -2 "$T/lg.err"); gateway rx=$rx tx=$tx; kernel rx=$krx tx=$ktx; rchar+wchar +$used; $(grep -i keyupdate "$T/gw.log" | tail -2)"
	fi
else
	# --- a KeyUpdate this kernel cannot follow (before 6.14) -----------------
	# s_client reads its input from a fifo: "hello" first, and the KeyUpdate
	# ("k") only once the echo of hello is back, whatever the speed of the VM
	mkfifo "$T/ku.in"
	timeout 120 openssl s_client -connect "127.0.0.1:$GW_echo" -tls1_3 $(cert_args alice) \
		-CAfile "$P/ca.pem" <"$T/ku.in" >"$T/ku.out" 2>&1 &
	KUP=$!
	exec 7>"$T/ku.in"
	printf 'hello\n' >&7
	n=600
	until grep -q "^hello" "$T/ku.out" || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
	printf 'k\n' >&7
	n=600
	until grep -q "reason=keyupdate_unsupported" "$T/gw.log" || [ $n = 0 ]; do sleep 0.1; n=$((n - 1)); done
	exec 7>&-
	wait $KUP
	if grep -q "KeyUpdate received" "$T/gw.log" && grep -q "reason=keyupdate_unsupported" "$T/gw.log" &&
	   grep -q "^hello" "$T/ku.out" && [ "$(stat_of keyupdate_ends)" -ge 1 ]; then
		ok "client KeyUpdate on kernel $(uname -r) (no rekey): connection ended cleanly, logged and counted"
	else
		nok "KeyUpdate: $(grep -i keyupdate "$T/gw.log" | tail -2) / $(tail -3 "$T/ku.out")"
	fi
	# the rekey run of newer kernels, here: it ends at the first KeyUpdate,
	# after the bytes before it, counted once
	e0=$(stat_of keyupdate_ends)
	res=$(LG_TIMEOUT=600 loadgen echo "$GW_echo" alice --tls 1.3 -c 1 --bytes 16M --keyupdate 1000 2>"$T/lg.err")
	e1=$(stat_of keyupdate_ends)
	if echo "$res" | grep -q '"ok":false' && [ $((e1 - e0)) = 1 ] &&
	   [ "$(grep -c 'reason=keyupdate_unsupported' "$T/gw.log")" -ge 2 ]; then
		ok "the 1000-KeyUpdate run on kernel $(uname -r) ends at the first KeyUpdate, counted once ($(echo "$res" | grep -o '"bytes_received":[0-9]*') before it)"
	else
		nok "KeyUpdate run without rekey: $res; keyupdate_ends +$((e1 - e0))"
	fi
fi

# --- control-record flood -----------------------------------------------------
cpu() { awk '{print $14 + $15}' "/proc/$GW_PID/stat"; }
N=${KG_FLOOD:-20000}
loadgen flood "$GW_echo" alice -n "$N" --duration 4 >"$T/flood.out" 2>"$T/flood.err" &
FL=$!
# under TCG on a busy host the alerts alone can take minutes: wait for the
# flood to be over, however long, before measuring the idle CPU
while ! grep -q "round trip ok" "$T/flood.err" && kill -0 $FL 2>/dev/null; do sleep 0.1; done
# A spin never stops; a guest whose host is overloaded can charge a burst
# of ticks to whatever ran last. So: up to three 3 s windows, and the
# gateway must be idle (at most 30 ticks) in one of them.
used=""
for _ in 1 2 3; do
	c0=$(cpu)
	sleep 3
	c1=$(cpu)
	used="$used $((c1 - c0))"
	[ $((c1 - c0)) -le 30 ] && break
done
wait $FL
if grep -q '"ok":true' "$T/flood.out" && [ $((c1 - c0)) -le 30 ]; then
	ok "flood of $N alert records consumed, connection still works, then gateway CPU ticks per 3 s of idle:$used (no spin)"
else
	nok "flood: $(cat "$T/flood.out" "$T/flood.err" | tail -2) cpu ticks in three 3 s windows:$used"
fi

# --- revocation cuts an offloaded connection (6.1: no bpf_sock_destroy) -------
if grep -q "revocation: .* loaded" "$T/gw.log"; then
	loadgen echo "$GW_echo" carol --bytes 100000000000 >"$T/carol.out" 2>"$T/carol.err" &
	C=$!
	wait_conn carol 600
	t0=${EPOCHREALTIME/./}
	"$KTLSGW" revoke add --cert "$P/carol.pem" -c "$T/gw.conf" >"$T/rev.out"
	wait_gone "$C" 100
	t1=${EPOCHREALTIME/./}
	if ! kill -0 $C 2>/dev/null && grep -q "subject=\"carol\".*path=ktls reason=revoked" "$T/gw.log"; then
		ok "revocation cut an offloaded kTLS+splice connection ($(grep -o 'cut by [^,]*' "$T/gw.log" | head -1); $(cat "$T/rev.out"); from the start of revoke add to the client gone: $(((t1 - t0) / 1000)) ms, a TCG time, not a performance figure)"
	else
		kill $C 2>/dev/null
		nok "kTLS revocation cut: $(cat "$T/rev.out") $(grep carol "$T/gw.log" | tail -2)"
	fi
else
	skip "revocation in the VM: $(grep -m1 'revocation' "$T/gw.log")"
fi
stop_gw

# --- idle memory per connection, offloaded and not (a size, not a timing) -----
# The 1 KiB goal itself, offloaded. What an offloaded connection keeps is in
# the worker's slab (slab.h): struct kg_conn (432 bytes), its CN (32 when
# shorter than that) and, on a kernel that can rekey (6.14 and later), its
# two traffic secrets (128). What moves from run to run is not per
# connection (the connection table doubling at 1,024 slots, what the
# worker's malloc arena keeps after the handshakes: +24 to +136 KiB between
# two batches of 300 in the 7.3 VM, 2026-11-29), so the offloaded figure is
# taken over 600 connections: 0.57 KiB on 6.1 and 0.64 on 7.3 (2026-11-29,
# one run each). The userspace figure only shows the method sees
# connections, and 100 do for that.
N_IDLE=${KG_IDLE_CONNS:-600}
N_IDLE_US=${KG_IDLE_CONNS_US:-100}
IDLE_MAX_KIB=1.0
KG_IDLE_MODES=on bash "$(dirname "$0")/../../bench/ktls-idle-mem" "$B" "$N_IDLE" >"$T/idle.jsonl" 2>"$T/idle.err"
KG_IDLE_MODES=off bash "$(dirname "$0")/../../bench/ktls-idle-mem" "$B" "$N_IDLE_US" >>"$T/idle.jsonl" 2>>"$T/idle.err"
# the marginal cost in anonymous pages: with 2N connections open minus with
# N, / N (PSS and private clean pages fall while the client maps the same
# libraries, and the first batch can see the allocator return memory)
kib() { grep "\"path\":\"$1\"" "$T/idle.jsonl" | grep -o '"marginal_anon_kib_per_conn":-\?[0-9.]*' | cut -d: -f2; }
kt=$(kib ktls) us=$(kib userspace)
# the userspace figure shows the method sees connections at all; the
# offloaded one must not be under 0.3 KiB either, below what the slab alone
# holds for each (0.45 KiB on 6.1: struct kg_conn and the CN)
# both runs must have held every connection (each loadgen says ok)
okruns=$(grep -c '"ok":true.*"ok":true' "$T/idle.jsonl")
if [ -n "$kt" ] && [ -n "$us" ] && [ "$okruns" = 2 ] &&
   [ "$(echo "$kt <= $IDLE_MAX_KIB" | bc -l)" = 1 ] && [ "$(echo "$kt >= 0.3" | bc -l)" = 1 ] &&
   [ "$(echo "$us >= 5" | bc -l)" = 1 ]; then
	ok "idle memory: $N_IDLE more idle connections cost $kt KiB each offloaded ($N_IDLE_US more: $us KiB each on the userspace path; the gateway's anonymous memory with 2N open minus with N, / N; the bound is $IDLE_MAX_KIB KiB offloaded)"
else
	nok "idle memory offloaded: ktls=${kt:-?} KiB ($N_IDLE) userspace=${us:-?} KiB ($N_IDLE_US) per connection (bound $IDLE_MAX_KIB KiB); $(tail -c 400 "$T/idle.jsonl" "$T/idle.err")"
fi
rm -rf "$T" "$PINS"
[ "$FAIL" -eq 0 ]
