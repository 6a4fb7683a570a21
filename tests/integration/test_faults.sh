#!/bin/bash
# Faults around the gateway: a backend that resets mid-stream or stops
# reading (memory must stay bounded), descriptor exhaustion (no spin, and
# service resumes), BPF unavailable (required refuses to start, best-effort
# serves with the state file), a revocation tag or lookup failing at handshake
# time under required (refused, logged, counted), and a full disk while
# persisting a revocation (refused, never acknowledged). A backend refusing connections and a
# read-only state directory are covered in test_core.sh and test_revoke.sh.
set -u
. "$(dirname "$0")/lib.sh"

make_pki
start_backend echo echo
"$B/kg-backend" --listen 127.0.0.1:0 --mode reset --bytes 1M --port-file "$T/rst.port" 2>/dev/null &
PIDS="$PIDS $!"
"$B/kg-backend" --listen 127.0.0.1:0 --mode stall --port-file "$T/stall.port" 2>/dev/null &
PIDS="$PIDS $!"
wait_file "$T/rst.port" && wait_file "$T/stall.port" || { nok "test backends"; exit 1; }
MPORT=$(free_port)
{
	global_conf "workers = 2
revocation = off
admin_socket = $T/admin.sock
metrics = 127.0.0.1:$MPORT"
	listener_conf edge "$echo_PORT"
	listener_conf rst "$(cat "$T/rst.port")"
	listener_conf stall "$(cat "$T/stall.port")" "idle_timeout = 30s"
} > "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway start"; exit 1; }

# --- backend resets mid-stream ----------------------------------------------------
c=$(metric ktlsgw_backend_errors_total ""); m=$(wc -l < "$T/gw.log")
out=$(loadgen echo "$GW_rst" bob --bytes 8M 2>&1)
sleep 0.3
c1=$(metric ktlsgw_backend_errors_total "")
if grep -q '"ok":false' <<<"$out" && [ "$c1" -gt "$c" ] &&
   tail -n +$((m + 1)) "$T/gw.log" | grep -q "access .*listener=rst .*reason=backend_error"; then
	ok "backend RST after 1 MiB: the client's stream ends (not silently truncated), reason=backend_error, backend_errors $c -> $c1"
else
	nok "backend reset: $out; counter $c -> $c1"
fi

# --- backend stops reading: memory stays bounded ---------------------------------------
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$GW_PID/status"; }
r0=$(rss)
loadgen upload "$GW_stall" bob --bytes 4G >"$T/stall.out" 2>&1 &
up=$!
sleep 4
r1=$(rss)
sleep 2
r2=$(rss)
kill "$up" 2>/dev/null; wait "$up" 2>/dev/null
grow=$(( (r2 > r1 ? r2 : r1) - r0 ))
if [ "$grow" -lt 8192 ]; then
	ok "backend not reading while a client pushes 4 GiB: gateway RSS $r0 -> $r1 -> $r2 KiB (+$grow KiB, bound 8 MiB)"
else
	nok "backpressure: RSS grew by $grow KiB ($r0 -> $r1 -> $r2)"
fi
# a client that resets while its backend is not reading is still noticed
sleep 0.5
fd0=$(ls "/proc/$GW_PID/fd" | wc -l); m=$(wc -l < "$T/gw.log")
loadgen echo "$GW_stall" bob --bytes 64M --abort-after 1M >"$T/stall2.out" 2>&1 &
ab=$!
sleep 1
fd1=$(ls "/proc/$GW_PID/fd" | wc -l)
wait "$ab" 2>/dev/null
sleep 0.5
fd2=$(ls "/proc/$GW_PID/fd" | wc -l)
if grep -q "aborted with RST" "$T/stall2.out" && [ "$fd2" -le "$fd0" ] &&
   tail -n +$((m + 1)) "$T/gw.log" | grep -q "access .*listener=stall .*reason=client_error"; then
	ok "a client RST under backpressure releases the connection at once (access log reason=client_error; descriptors $fd0 before, $fd2 after)"
else
	nok "client RST under backpressure: descriptors $fd0 -> $fd1 -> $fd2; $(cat "$T/stall2.out" | head -2)"
fi
stop_gw

# --- descriptor exhaustion ------------------------------------------------------------
{
	global_conf "workers = 1
revocation = off
admin_socket =
metrics = 127.0.0.1:$MPORT"
	listener_conf edge "$echo_PORT"
} > "$T/fd.conf"
rm -f "$T/gw.ready"
prlimit --nofile=40:40 "$KTLSGW" run -c "$T/fd.conf" --ready-file "$T/gw.ready" >"$T/fd.log" 2>&1 &
FDPID=$!
PIDS="$PIDS $FDPID"
wait_file "$T/gw.ready" || { nok "gateway under a 40-descriptor limit did not start: $(tail -3 "$T/fd.log")"; exit 1; }
FDPORT=$(awk '{print $2}' "$T/gw.ready" | sed 's/.*://')
fdbase=$(ls "/proc/$FDPID/fd" | wc -l)
holders=""
for i in $(seq 30); do
	s_hold "$FDPORT" bob "$T/fd.stop" &
	holders="$holders $!"
done
wait_log "accept: Too many open files" 200 "$T/fd.log"
ticks() { awk '{print $14 + $15}' "/proc/$FDPID/stat"; }
t0=$(ticks); sleep 2; t1=$(ticks)
errs=$(metric ktlsgw_accept_errors_total "")
if grep -q "accept: Too many open files; raise the open-file limit" "$T/fd.log" && [ "$errs" -gt 0 ] &&
   [ $((t1 - t0)) -le 40 ]; then
	ok "out of descriptors: logged with advice, accept_errors = $errs, $((t1 - t0)) CPU ticks in 2 s (no spin)"
else
	nok "EMFILE: accept_errors=$errs, $((t1 - t0)) ticks in 2 s; $(grep -m1 accept "$T/fd.log")"
fi
touch "$T/fd.stop"
wait $holders 2>/dev/null
n=100
while [ "$(ls "/proc/$FDPID/fd" | wc -l)" -gt "$fdbase" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
out=$(sclient "$FDPORT" alice)
if grep -q "^ping$" <<<"$out"; then
	ok "descriptors back: a new client is served again"
else
	nok "after EMFILE: $(tail -2 <<<"$out")"
fi
kill -TERM "$FDPID"; wait "$FDPID" 2>/dev/null

# --- BPF unavailable (an unprivileged start) ---------------------------------------------
if [ "$(id -u)" = 0 ]; then
	U=ktlsgw-test
	id "$U" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$U"
	D=$(mktemp -d /tmp/kg-nobpf.XXXXXX)
	chmod 755 "$D"
	cp -r "$P" "$D/pki"
	chown -R "$U" "$D/pki"
	mkdir -p "$D/state"
	echo "$(fp "$P/bob.pem") 1700000000 1 0 keyCompromise: test" > "$D/state/revoked"
	chown -R "$U" "$D/state"
	nobpf_conf() { # MODE
		GC_STATE=$D/state global_conf "workers = 1
bpf_pin_root = /sys/fs/bpf/ktlsgw-nobpf-$$
revocation = $1
admin_socket ="
		P=$D/pki listener_conf edge "$echo_PORT"
	}
	asuser() { timeout 20 setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups --inh-caps=-all --bounding-set=-all "$@"; }
	nobpf_conf required > "$D/req.conf"
	o=$(asuser "$KTLSGW" run -c "$D/req.conf" 2>&1); rc=$?
	if [ $rc -ne 0 ] && grep -q "revocation: .*Set \`revocation = best-effort\` in \[global\]" <<<"$o"; then
		ok "BPF unavailable, revocation = required: refuses to start (exit $rc) and names the way out"
	else
		nok "BPF unavailable, required: rc=$rc $(tail -2 <<<"$o")"
	fi
	nobpf_conf best-effort > "$D/be.conf"
	chown "$U" "$D"
	setpriv --reuid="$U" --regid="$(id -g "$U")" --clear-groups --inh-caps=-all --bounding-set=-all \
		"$KTLSGW" run -c "$D/be.conf" --ready-file "$D/ready" >"$D/be.log" 2>&1 &
	BEPID=$!
	PIDS="$PIDS $BEPID"
	if wait_file "$D/ready"; then
		BEPORT=$(awk '{print $2}' "$D/ready" | sed 's/.*://')
		a=$(sclient "$BEPORT" alice)
		b=$(sclient "$BEPORT" bob)
		if grep -q "BPF unavailable .*best-effort" "$D/be.log" && grep -q "^ping$" <<<"$a" &&
		   grep -q "certificate revoked" <<<"$b"; then
			ok "BPF unavailable, best-effort: starts with a warning, serves, and still refuses a revoked certificate from the state file"
		else
			nok "best-effort without BPF: $(grep -m1 revocation "$D/be.log"); alice: $(tail -1 <<<"$a"); bob: $(tail -1 <<<"$b")"
		fi
	else
		nok "best-effort without BPF did not start: $(tail -3 "$D/be.log")"
	fi
	kill -TERM "$BEPID" 2>/dev/null; wait "$BEPID" 2>/dev/null
	rm -rf "$D" "/sys/fs/bpf/ktlsgw-nobpf-$$"
else
	skip "BPF-unavailable case needs root to create the unprivileged start"
fi

# --- a revocation check that fails at handshake time (required: refused) -------
# KTLSGW_FAULT=revlookup / revtag make the revoked-map lookup / the socket tag
# fail with EIO; under revocation = required the client must be refused with
# a reject line and a counter, never let in unchecked or uncuttable.
if [ "$(id -u)" = 0 ]; then
	RFPINS=/sys/fs/bpf/ktlsgw-revfault-$$
	{
		GC_STATE=$T/state-rf global_conf "workers = 1
bpf_pin_root = $RFPINS
revocation = required
admin_socket =
metrics = 127.0.0.1:$MPORT"
		listener_conf edge "$echo_PORT"
	} > "$T/rf.conf"
	for fault in revlookup:"the revoked-map lookup" revtag:"tagging the client socket"; do
		what=${fault#*:}; fault=${fault%%:*}
		m=$(logmark)
		if ! KTLSGW_FAULT=$fault start_gw "$T/rf.conf"; then
			# only the refusal to start without BPF is a skip; any other
			# failure to start (a crash after the first lines) is a failure
			if logsince "$m" | grep -q "revocation: .*Set \`revocation = best-effort\`"; then
				skip "BPF revocation unavailable here for the $fault fault"
			else
				nok "gateway with KTLSGW_FAULT=$fault did not start"
			fi
			continue
		fi
		c=$(metric ktlsgw_handshake_rejects_total 'reason="revocation_unavailable"')
		a=$(sclient "$GW_edge" alice)
		if ! grep -q "^ping$" <<<"$a" &&
		   wait_since "$m" "revocation: $what failed \(Input/output error\) for .*refusing the client \(revocation = required\)" &&
		   wait_since "$m" "reject .*reason=revocation_unavailable" &&
		   [ "$(metric ktlsgw_handshake_rejects_total 'reason="revocation_unavailable"')" -gt "$c" ]; then
			ok "revocation = required, $what fails: the client is refused, logged (reject reason=revocation_unavailable) and counted"
		else
			nok "required, $fault fault: alice: $(tail -1 <<<"$a"); counter $c -> $(metric ktlsgw_handshake_rejects_total 'reason="revocation_unavailable"'); log: $(logsince "$m" | grep -E 'revocation|reject')"
		fi
		stop_gw
	done
	rm -rf "$RFPINS"
else
	skip "handshake-time revocation faults need root (BPF)"
fi

# --- disk full while persisting a revocation ----------------------------------------------
if [ "$(id -u)" = 0 ] && mkdir -p "$T/full" && mount -t tmpfs -o size=256k tmpfs "$T/full" 2>/dev/null; then
	PINS=/sys/fs/bpf/ktlsgw-full-$$
	trap 'cleanup; umount "$T/full" 2>/dev/null; rm -rf "$PINS"' EXIT
	sed -e "s|^state_dir = .*|state_dir = $T/full/state|; s|^revocation = off|bpf_pin_root = $PINS|" \
		-e "s|^metrics = .*||" "$T/gw.conf" > "$T/full.conf"
	if start_gw "$T/full.conf"; then
		dd if=/dev/zero of="$T/full/fill" bs=4k 2>/dev/null
		o=$("$KTLSGW" revoke add -c "$T/full.conf" --cert "$P/bob.pem" 2>&1); rc=$?
		l=$("$KTLSGW" revoke list -c "$T/full.conf" 2>&1)
		b=$(sclient "$GW_edge" bob)
		if [ $rc -ne 0 ] && grep -qi "no space left on device" <<<"$o" && ! grep -q "$(fp "$P/bob.pem")" <<<"$l" &&
		   grep -q "^ping$" <<<"$b"; then
			ok "disk full: revoke add fails (exit $rc: $(head -1 <<<"$o" | cut -c1-90)), nothing in the map, nothing acknowledged"
		else
			nok "disk full: rc=$rc $o; list: $l; bob: $(tail -1 <<<"$b")"
		fi
		rm -f "$T/full/fill"
		o=$("$KTLSGW" revoke add -c "$T/full.conf" --cert "$P/bob.pem" 2>&1); rc=$?
		b=$(sclient "$GW_edge" bob)
		if [ $rc -eq 0 ] && grep -q "certificate revoked" <<<"$b" && grep -q "$(fp "$P/bob.pem")" "$T/full/state/revoked"; then
			ok "space freed: the same revoke add succeeds, is on disk and enforced"
		else
			nok "after freeing space: rc=$rc $o; bob: $(tail -1 <<<"$b")"
		fi
		stop_gw
	else
		if grep -q "revocation:" "$T/gw.log"; then
			skip "BPF revocation unavailable here for the disk-full case"
		else
			nok "gateway with state on a small tmpfs did not start"
		fi
	fi
else
	skip "disk-full case needs root to mount a small tmpfs"
fi
echo "# faults: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
