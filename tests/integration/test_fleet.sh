#!/bin/bash
# Fleet-wide revocation on NATS JetStream: three gateways (A, B, C = 1, 2, 3)
# share one revocation list in a KV bucket with 3 replicas on a 3-node NATS
# cluster with TLS and accounts, all started here on 127.0.0.1. A revocation
# on A resets a live stream on C and spares another certificate's stream;
# the reader user cannot change the bucket (neither revoke nor un-revoke);
# killing the stream's leader during 100 revocations loses none; a stopped
# gateway catches up before its first client; with all of NATS down a
# revocation still cuts on A, stays pending across kill -9, and reaches B and
# C when NATS returns; un-revokes travel the same ways.
set -u
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	skip "fleet revocation tests need root (BPF, bpffs)"
	exit 0
fi
if ! command -v nats-server >/dev/null; then
	skip "nats-server is not installed (tests/deps.sh installs it)"
	exit 0
fi

make_pki
start_backend echo echo
. "$(dirname "$0")/../tools/fleet-lib.sh"
FLEET_BACKEND=$echo_PORT
FLEET_PINS=/sys/fs/bpf/ktlsgw-test-fleet-$$
D=$T/fleet
declare -A SPID	# stream name -> pid
trap 'for p in "${SPID[@]}"; do kill "$p" 2>/dev/null; done; fleet_down; cleanup' EXIT

if ! fleet_up "$D" "$P" 2>"$T/fleet-up.err"; then
	nok "test fleet up: $(cat "$T/fleet-up.err")"
	for n in 1 2 3; do tail -3 "$D/gw$n/gw.log" "$D/nats$n/nats.log" 2>/dev/null; done
	exit 1
fi
if grep -q "revocation: .*cut by" "$D/gw1/gw.log"; then :; else
	skip "BPF revocation unavailable here: $(grep -m1 'revocation:' "$D/gw1/gw.log")"
	exit 0
fi
ok "fleet up: 3 NATS nodes (JetStream, TLS, accounts) on ports ${FLEET_NATS[*]}, gateways on ${FLEET_PORT[*]}"

KG=$KTLSGW
conf() { echo "$D/gw$1/gw.conf"; }
fp_of() { fp "$P/$1.pem"; }

# fl_stream NAME NODE CERT: a live stream through gateway NODE, one line
# every 0.2 s (at most 10 min), echoed back into $T/NAME.out
fl_stream() {
	# shellcheck disable=SC2046
	(i=0; while [ $i -lt 3000 ]; do echo "line $i" || exit 0; sleep 0.2; i=$((i + 1)); done) |
		timeout 900 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:${FLEET_PORT[$2]}" \
			-CAfile "$P/ca.pem" $(cert_args "$3") >"$T/$1.out" 2>"$T/$1.err" &
	SPID[$1]=$!
}
lines() { cat "$T/$1.out" 2>/dev/null | grep -c '^line '; }
# fl_flowing NAME [TENTHS]: NAME's echo has grown by 3 lines (30 s)
fl_flowing() {
	local n=${2:-300} l0
	l0=$(lines "$1")
	until [ "$(lines "$1")" -ge $((l0 + 3)) ]; do
		kill -0 "${SPID[$1]}" 2>/dev/null || return 1
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}
# fl_reset NAME [TENTHS]: NAME's client ended with a connection reset (60 s)
fl_reset() {
	wait_gone "${SPID[$1]}" "${2:-600}" && grep -q "errno=104" "$T/$1.err"
}
fl_stop() { kill "${SPID[$1]}" 2>/dev/null; wait "${SPID[$1]}" 2>/dev/null; unset "SPID[$1]"; }
refused() { sclient "${FLEET_PORT[$1]}" "$2" | grep -q "alert certificate revoked"; }
accepted() { sclient "${FLEET_PORT[$1]}" "$2" | grep -qx ping; }
# has NODE FP: FP is in gateway NODE's revocation list (its state file)
has() { "$KG" revoke list -c "$(conf "$1")" 2>/dev/null | grep -q "^$2"; }
# until_true TENTHS CMD...: poll CMD every 0.1 s
until_true() {
	local n=$1
	shift
	until "$@"; do
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}
not() { ! "$@"; }
# count NODE FILE: how many fingerprints of FILE gateway NODE has revoked
count() { "$KG" revoke list -c "$(conf "$1")" 2>/dev/null | cut -c1-64 | grep -cxFf "$2"; }
count_is() { [ "$(count "$1" "$2")" = "$3" ]; }
# status NODE FIELD: a field of `fleet status` (its text form: one
# "field value" line each; no interpreter started per poll)
status() {
	"$KG" fleet status -c "$(conf "$1")" 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'
}
status_is() { [ "$(status "$1" "$2")" = "$3" ]; }
metric_of() { curl -s --max-time 5 "127.0.0.1:${FLEET_METRICS[$1]}/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
bucket_state() { # FP [CONFIG]: revoked / unrevoked / absent, as NATS has it
	local s
	s=$("$KG" -j fleet list -c "${2:-$(conf 1)}" 2>/dev/null | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["sha256"] == sys.argv[1]:
        print(r["state"])' "$1")
	echo "${s:-absent}"
}

# --- the bucket ------------------------------------------------------------
repl=$(fleet_jsz 1 "accounts=true&streams=true&config=true" | python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details") or []:
    for s in a.get("stream_detail") or []:
        if s["name"] == "KV_" + sys.argv[1]:
            print(s["config"]["num_replicas"], s["config"]["storage"])' "$FLEET_BUCKET")
[ "$repl" = "3 file" ] && ok "bucket $FLEET_BUCKET created by the first gateway: 3 replicas, file store" ||
	nok "bucket stream: '$repl'"
bad=""
for n in 1 2 3; do
	status_is $n connected true && status_is $n synced true || bad="$bad $n"
done
if [ -z "$bad" ]; then
	ok "fleet status: every gateway connected and synced ($("$KG" fleet status -c "$(conf 3)" | tr -s ' ' | tr '\n' ';'))"
else
	nok "fleet status of gateway(s)$bad: $("$KG" fleet status -c "$(conf ${bad##* })" 2>&1 | tr '\n' ';')"
fi

# --- cross-node revocation -------------------------------------------------
fl_stream alice3 3 alice
fl_stream bob3 3 bob
if fl_flowing alice3 && fl_flowing bob3; then
	ok "live streams of alice and bob through gateway C"
else
	nok "streams through C did not flow: $(cat "$T/alice3.err" "$T/bob3.err" | tail -4)"
fi
out=$("$KG" revoke add --cert "$P/alice.pem" --reason "keyCompromise: fleet test" -c "$(conf 1)" 2>&1)
echo "$out" | grep -q "fleet: written in bucket" && ok "revoke add on A wrote the bucket: $(echo "$out" | tr '\n' ' ')" ||
	nok "revoke add on A: $out"
echo "$out" | grep -q "by this node's gateway, revision [0-9]" &&
	ok "the write went through A's running gateway (same credentials, its NATS connection)" ||
	nok "revoke add on A did not use A's gateway: $out"
if fl_reset alice3; then
	ok "alice's live stream through C was reset (RST: $(grep -o 'errno=104' "$T/alice3.err"))"
else
	nok "alice's stream on C was not reset: $(tail -2 "$T/alice3.err")"
fi
if fl_flowing bob3; then
	ok "bob's stream on C, the bystander, kept flowing ($(lines bob3) lines echoed)"
else
	nok "bob's stream on C was disturbed: $(tail -2 "$T/bob3.err")"
fi
# C has cut, so C has it; B may be a moment behind
# A revocation from the bucket reaches B's map before its state file, but
# one s_client on a loaded machine can fail for its own reasons: poll the
# handshake too (an un-revoke, below, leaves the state file first and the
# map second, so there the poll is needed)
until_true 300 has 2 "$(fp_of alice)" && until_true 100 refused 2 alice && refused 3 alice &&
	ok "alice's new handshakes on B and C get certificate_revoked" || nok "alice not refused on B/C"
# the log line follows the cut (map first, then the state file, then the line)
wait_log "fleet: revoked sha256=$(fp_of alice) \(from gw1" 300 "$D/gw3/gw.log" &&
	ok "C's log names the change and its origin: $(grep -m1 -o "fleet: revoked sha256=$(fp_of alice).*" "$D/gw3/gw.log" | cut -c1-60)…" ||
	nok "no fleet line in C's log"
applied_ge1() { [ "$(metric_of 3 ktlsgw_fleet_updates_applied_total)" -ge 1 ] 2>/dev/null; }
until_true 100 applied_ge1
lag=$(status 3 lag_ms)
applied=$(metric_of 3 ktlsgw_fleet_updates_applied_total)
if [ "$(metric_of 3 ktlsgw_fleet_connected)" = 1 ] && [ "${applied:-0}" -ge 1 ] &&
   [ -n "$(metric_of 3 ktlsgw_fleet_pending)" ] && [ "$(metric_of 3 ktlsgw_fleet_apply_lag_seconds_count)" -ge 1 ]; then
	ok "C's metrics: connected 1, updates applied $applied, pending $(metric_of 3 ktlsgw_fleet_pending), apply lag histogram; status lag ${lag} ms"
else
	nok "C's fleet metrics: $(curl -s "127.0.0.1:${FLEET_METRICS[3]}/metrics" | grep fleet | head -5)"
fi

if command -v promtool >/dev/null; then
	curl -s --max-time 5 "127.0.0.1:${FLEET_METRICS[3]}/metrics" > "$T/metrics3.txt"
	if promtool check metrics < "$T/metrics3.txt" > "$T/promtool.out" 2>&1; then
		ok "C's metrics page with the fleet's series passes promtool check metrics"
	else
		nok "promtool: $(head -5 "$T/promtool.out")"
	fi
fi

# --- security: the reader cannot change the bucket -------------------------
fleet_gw_conf 3 "$P" "$D/reader.creds" > "$D/reader.conf"
rfp=$(openssl rand -hex 32)
out=$("$KG" revoke add "$rfp" -c "$D/reader.conf" 2>&1)
rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q "NATS refused" && [ "$(bucket_state "$rfp")" = absent ]; then
	ok "reader's revoke is refused by NATS, exit 1, not in the bucket: $(echo "$out" | tail -1 | cut -c1-110)…"
else
	nok "reader's revoke: rc=$rc $out; bucket: $(bucket_state "$rfp")"
fi
"$KG" revoke del "$rfp" --state-dir "$D/gw3/state" --pin-root "$FLEET_PINS-3" >/dev/null 2>&1
out=$("$KG" revoke del "$(fp_of alice)" -c "$D/reader.conf" 2>&1)
rc=$?
if [ $rc = 1 ] && echo "$out" | grep -q "stays revoked" && [ "$(bucket_state "$(fp_of alice)")" = revoked ] &&
   has 3 "$(fp_of alice)" && refused 3 alice; then
	ok "reader's un-revoke is refused too and changes nothing, in the bucket or on C"
else
	nok "reader's un-revoke: rc=$rc $out"
fi
if [ "$(bucket_state "$(fp_of alice)" "$D/reader.conf")" = revoked ]; then
	ok "the reader may read the bucket (fleet list)"
else
	nok "reader cannot list the bucket: $("$KG" fleet list -c "$D/reader.conf" 2>&1)"
fi

# --- un-revoke --------------------------------------------------------------
out=$("$KG" revoke del "$(fp_of alice)" -c "$(conf 1)" 2>&1)
if until_true 300 not has 3 "$(fp_of alice)" && until_true 300 not has 2 "$(fp_of alice)" &&
   until_true 100 accepted 3 alice && until_true 100 accepted 2 alice; then
	ok "un-revoke on A propagates: B and C accept alice again"
else
	nok "un-revoke did not propagate: $out"
fi

# --- kill the stream leader during a burst of 100 revocations ---------------
for i in $(seq 100); do openssl rand -hex 32; done > "$T/burst.fps"
leader=$(fleet_stream_leader)
(while read -r f; do
	timeout 60 "$KG" revoke add "$f" --reason "burst" -c "$(conf 1)" >>"$T/burst.out" 2>&1 </dev/null
	echo "$f $?" >>"$T/burst.done"
done <"$T/burst.fps") &
BURST=$!
done_ge() { [ "$(cat "$T/burst.done" 2>/dev/null | wc -l)" -ge "$1" ]; }
until_true 1200 done_ge 20
since() { echo "$1 ${EPOCHREALTIME/,/.}" | awk '{ printf "%.1f", $2 - $1 }'; }
t_kill=${EPOCHREALTIME/,/.}
if [ -n "$leader" ]; then
	fleet_nats_stop "$leader" KILL
	ok "killed the stream leader n$leader (kill -9) after $(wc -l <"$T/burst.done") of 100 revocations"
else
	nok "no stream leader found to kill"
fi
wait $BURST
t_end=${EPOCHREALTIME/,/.}
bad=$(awk '$2 != 0' "$T/burst.done" | wc -l)
pend=$(grep -c "recorded as pending" "$T/burst.out")
[ "$bad" = 0 ] && ok "all 100 revoke add commands succeeded ($pend recorded as pending while the stream re-elected)" ||
	nok "$bad revoke add commands failed: $(grep -v 'written in bucket' "$T/burst.out" | tail -3)"
[ -n "$leader" ] && fleet_nats_start "$leader"
for n in 1 2 3; do
	if until_true 1800 count_is $n "$T/burst.fps" 100; then
		ok "gateway $n has all 100 revocations ($(since "$t_kill") s after the kill, $(since "$t_end") s after the last revoke add returned)"
	else
		nok "gateway $n has $(count $n "$T/burst.fps") of 100 revocations"
	fi
done
fleet_nats_ready || nok "NATS did not recover after the leader kill"
new=$(fleet_stream_leader)
# in_bucket CONF: how many of the burst a fresh reader of the bucket sees
in_bucket() { "$KG" fleet list -c "$1" 2>/dev/null | cut -c1-64 | grep -cxFf "$T/burst.fps"; }
bucket_is_100() { [ "$(in_bucket "$(conf 2)")" = 100 ]; }
n_first=$(in_bucket "$(conf 2)")
if until_true 300 bucket_is_100; then
	ok "the bucket holds all 100 (stream leader now n${new:-?}; first read $n_first)"
else
	"$KG" fleet list -c "$(conf 2)" 2>&1 | cut -c1-64 >"$T/bucket.now"
	missing=$(grep -vxFf "$T/bucket.now" "$T/burst.fps" | head -3 | tr '\n' ' ')
	nok "the bucket holds $(in_bucket "$(conf 2)") of 100 after 30 s (first read $n_first; missing: $missing; stream leader n${new:-?}; $(grep -F "${missing%% *}" "$T/burst.out" | head -1 | cut -c1-200))"
	for n in 1 2 3; do grep -i "warn\|error\|lost\|reset" "$D/nats$n/nats.log" | tail -3 | sed "s/^/# n$n: /"; done
fi

# --- stop C, revoke 10, start C ---------------------------------------------
fleet_gw_stop 3
{ fp_of carol; fp_of dave; for i in $(seq 8); do openssl rand -hex 32; done; } > "$T/ten.fps"
bad=0
while read -r f; do
	"$KG" revoke add "$f" --reason "while C was down" -c "$(conf 1)" >/dev/null 2>&1 || bad=$((bad + 1))
done <"$T/ten.fps"
[ $bad = 0 ] || nok "$bad of the 10 revocations failed on A"
mark=$(wc -l <"$D/gw3/gw.log")
if fleet_gw_start 3; then
	got=$(count 3 "$T/ten.fps")
	first_client_refused=no
	refused 3 carol && refused 3 dave && first_client_refused=yes
	order=$(tail -n +$((mark + 1)) "$D/gw3/gw.log" | grep -n "fleet: bucket .* read\|listener edge: listening" |
		cut -d: -f1 | tr '\n' ' ')
	read -r l_sync l_listen _ <<<"$order"
	if [ "$got" = 10 ] && [ "$first_client_refused" = yes ] && [ -n "${l_listen:-}" ] &&
	   [ "${l_sync:-0}" -lt "$l_listen" ]; then
		ok "C restarted: all 10 read from the bucket before its listener opened (log lines $l_sync < $l_listen); its first clients carol and dave refused"
	else
		nok "C after restart: $got of 10, first clients refused: $first_client_refused, log order '$order'"
	fi
else
	nok "gateway C did not restart: $(tail -3 "$D/gw3/gw.log")"
fi

# --- all of NATS down ------------------------------------------------------
for n in 1 2 3; do fl_stream erin$n $n erin; done
for n in 1 2 3; do fl_flowing erin$n || nok "erin's stream through gateway $n did not flow"; done
for n in 1 2 3; do fleet_nats_stop $n; done
if until_true 600 status_is 1 connected false && until_true 600 status_is 2 connected false &&
   until_true 600 status_is 3 connected false; then
	ok "all NATS nodes stopped; every gateway reports connected false"
else
	nok "gateways still report connected: $(status 1 connected) $(status 2 connected) $(status 3 connected)"
fi
out=$("$KG" revoke add --cert "$P/erin.pem" -c "$(conf 1)" 2>&1)
rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "recorded as pending" &&
	ok "revoke add with NATS down: exit 0, the CLI says pending: $(echo "$out" | tail -1 | cut -c1-100)…" ||
	nok "revoke add with NATS down: rc=$rc $out"
fl_reset erin1 && ok "erin's stream on A was cut at once (RST)" || nok "erin on A not cut: $(tail -2 "$T/erin1.err")"
fl_flowing erin2 && fl_flowing erin3 && ok "erin's streams on B and C flow on (they cannot know yet)" ||
	nok "erin on B/C stopped early"
out=$("$KG" revoke del "$(fp_of carol)" -c "$(conf 1)" 2>&1)
echo "$out" | grep -q "recorded as pending" && accepted 1 carol && refused 2 carol &&
	ok "un-revoke of carol with NATS down: accepted on A at once, pending; B still refuses" ||
	nok "un-revoke with NATS down: $out"
until_true 100 status_is 1 pending 2 && [ "$(metric_of 1 ktlsgw_fleet_pending)" = 2 ] &&
	ok "A: fleet status pending 2, ktlsgw_fleet_pending 2" ||
	nok "A pending: status $(status 1 pending), metric $(metric_of 1 ktlsgw_fleet_pending)"
fleet_gw_stop 1 KILL
if fleet_gw_start 1; then
	if grep -q "fleet: NATS unreachable" "$D/gw1/gw.log" && refused 1 erin && accepted 1 carol &&
	   status_is 1 pending 2; then
		ok "kill -9 A, start A with NATS down: starts from its state file (says so), erin refused, carol accepted, 2 pending"
	else
		nok "A after kill -9: pending $(status 1 pending); $(grep 'fleet:' "$D/gw1/gw.log" | tail -2)"
	fi
else
	nok "A did not start with NATS down: $(tail -3 "$D/gw1/gw.log")"
fi
t_back=${EPOCHREALTIME/,/.}
for n in 1 2 3; do fleet_nats_start $n; done
fleet_nats_ready || nok "NATS did not come back"
if fl_reset erin2 1200 && fl_reset erin3 1200; then
	ok "NATS back: A published its pending revocation and erin's streams on B and C were reset ($(since "$t_back") s after the NATS start)"
else
	nok "erin's streams on B/C not reset: $(tail -1 "$T/erin2.err") / $(tail -1 "$T/erin3.err")"
fi
refused 2 erin && refused 3 erin && ok "B and C refuse erin's new handshakes" || nok "erin not refused on B/C"
if until_true 600 not has 2 "$(fp_of carol)" && until_true 600 not has 3 "$(fp_of carol)" &&
   until_true 100 accepted 2 carol && until_true 100 accepted 3 carol; then
	ok "the pending un-revoke of carol reached B and C: they accept carol again"
else
	nok "carol's un-revoke did not arrive"
fi
until_true 300 status_is 1 pending 0 && [ "$(bucket_state "$(fp_of erin)")" = revoked ] &&
	[ "$(bucket_state "$(fp_of carol)")" = unrevoked ] &&
	ok "A: nothing pending any more; the bucket has erin revoked and carol un-revoked" ||
	nok "after NATS returned: A pending $(status 1 pending), erin $(bucket_state "$(fp_of erin)"), carol $(bucket_state "$(fp_of carol)")"
for s in "${!SPID[@]}"; do fl_stop "$s"; done
for n in 1 2 3; do
	kill -0 "${FLEET_GW_PID[$n]}" 2>/dev/null || nok "gateway $n died: $(tail -3 "$D/gw$n/gw.log")"
done
exit 0
