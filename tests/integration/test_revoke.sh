#!/bin/bash
# Revocation: the pinned BPF map refuses new handshakes (certificate_revoked,
# also with an offered session) and cuts live connections (RST) while other
# clients keep streaming; raw bpftool edits are enforced and adopted;
# revocations survive kill -9 and the loss of the pins.
set -u
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	skip "revocation tests need root (BPF, bpffs)"
	exit 0
fi

P=$T/pki
PINS=/sys/fs/bpf/ktlsgw-test-$$
STATE=$T/state
make_pki
start_backend echo echo

{
	GC_STATE=$STATE global_conf "workers = 2
bpf_pin_root = $PINS
revocation_scan_interval = 100ms
admin_socket = $T/admin.sock"
	listener_conf edge "$echo_PORT"
} > "$T/gw.conf"
cleanup_pins() { rm -rf "$PINS"; }
trap 'cleanup; cleanup_pins' EXIT

if ! start_gw "$T/gw.conf"; then
	if grep -q "revocation:" "$T/gw.log"; then
		skip "BPF revocation unavailable here: $(grep -m1 'revocation:' "$T/gw.log")"
		exit 0
	fi
	nok "gateway starts"; exit 1
fi
ok "gateway starts with BPF revocation ($(grep -o 'cut by [^,]*' "$T/gw.log" | head -1))"

LG() { # NAME CERT BYTES
	loadgen echo "$GW_edge" "$2" --bytes "$3" >"$T/$1.out" 2>"$T/$1.err"
}
REV="$KTLSGW revoke"
RC="-c $T/gw.conf"

# The gateway issues no tickets, so get a real TLS 1.3 session ticket for
# alice from an openssl s_server with the same certificate, to offer later.
SPORT=$(free_port)
openssl s_server -quiet -accept "127.0.0.1:$SPORT" -cert "$P/server.pem" -key "$P/server.key" \
	-CAfile "$P/client-ca-chain.pem" -Verify 3 -naccept 1 -rev >/dev/null 2>&1 &
sleep 0.5
(printf 'ping\n'; sleep 0.5) | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$SPORT" \
	-CAfile "$P/ca.pem" $(cert_args alice) -tls1_3 -sess_out "$T/alice.sess" >/dev/null 2>&1

# --- live cut through the CLI ---------------------------------------------
LG alice alice 100000000000 &
A=$!
LG carol carol 400000000 &
C=$!
wait_conn alice
out=$($REV add --cert "$P/alice.pem" --reason "keyCompromise: test" $RC)
echo "$out" | grep -q "^revoked $(fp "$P/alice.pem")" && ok "revoke add --cert: $out" || nok "revoke add: $out"
wait_gone "$A" 50
if ! kill -0 $A 2>/dev/null && grep -qiE "reset|abort" "$T/alice.err"; then
	ok "revoked client's live stream was cut with an RST ($(head -1 "$T/alice.err" | cut -c1-80))"
else
	kill $A 2>/dev/null
	nok "revoked client kept streaming: $(cat "$T/alice.err")"
fi
wait $C
if grep -q '"ok":true' "$T/carol.out"; then
	ok "other client streamed on undisturbed and its data verified: $(cat "$T/carol.out")"
else
	nok "other client was disturbed: $(cat "$T/carol.out" "$T/carol.err")"
fi
grep -q "subject=\"alice\".*reason=revoked" "$T/gw.log" && ok "access log says reason=revoked" ||
	nok "no reason=revoked in the access log"

# --- new handshakes ---------------------------------------------------------
for ver in -tls1_2 -tls1_3; do
	out=$(sclient "$GW_edge" alice $ver)
	echo "$out" | grep -q "alert certificate revoked" &&
		ok "revoked certificate's new $ver handshake gets certificate_revoked" ||
		nok "revoked $ver handshake: $(echo "$out" | tail -2)"
done
out=$(sclient "$GW_edge" alice -tls1_3 -sess_in "$T/alice.sess")
if [ -s "$T/alice.sess" ] && echo "$out" | grep -q "alert certificate revoked" &&
   ! echo "$out" | grep -q "^Reused"; then
	ok "an offered TLS 1.3 session ticket does not bypass revocation"
else
	nok "session offer: $(echo "$out" | tail -2)"
fi
grep -q "reject .*reason=certificate_revoked .*sha256=$(fp "$P/alice.pem")" "$T/gw.log" &&
	ok "rejection logged with reason=certificate_revoked and the fingerprint" ||
	nok "no certificate_revoked rejection line"

# --- raw bpftool edit ------------------------------------------------------
LG dave dave 100000000000 &
D=$!
wait_conn dave
hexkey=$(fp "$P/dave.pem" | sed 's/../& /g')
bpftool map update pinned "$PINS/revoked" key hex $hexkey value hex 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
wait_gone "$D" 50
if ! kill -0 $D 2>/dev/null && grep -qiE "reset|abort" "$T/dave.err"; then
	ok "raw 'bpftool map update pinned .../revoked' cut the live connection"
else
	kill $D 2>/dev/null
	nok "bpftool revocation not enforced: $(cat "$T/dave.err")"
fi
sleep 1.2
$REV list $RC | grep -q "$(fp "$P/dave.pem").*added with bpftool" &&
	ok "bpftool-added revocation adopted into the state file" ||
	nok "bpftool entry not adopted: $($REV list $RC)"
bpftool map dump pinned "$PINS/revoked" | grep -q '"revoked_at"' &&
	ok "bpftool map dump shows named fields (BTF)" || nok "bpftool dump lacks field names"

# --- durability ------------------------------------------------------------
kill -9 "$GW_PID"; wait "$GW_PID" 2>/dev/null; GW_PID=
start_gw "$T/gw.conf" || nok "restart after kill -9"
sclient "$GW_edge" alice -tls1_3 | grep -q "alert certificate revoked" &&
	ok "revoke, kill -9, restart: still revoked" || nok "revocation lost after kill -9"
stop_gw
rm -rf "$PINS"
start_gw "$T/gw.conf" || nok "restart without pins"
if sclient "$GW_edge" alice -tls1_3 | grep -q "alert certificate revoked" &&
   bpftool map dump pinned "$PINS/revoked" | grep -q '"revoked_at"'; then
	ok "revoke, remove the pins, restart: still revoked (map rebuilt from the state file)"
else
	nok "revocation lost with the pins"
fi
sclient "$GW_edge" dave -tls1_3 | grep -q "alert certificate revoked" &&
	ok "the adopted bpftool revocation survived too" || nok "adopted revocation lost"

# --- del, list, errors -------------------------------------------------------
$REV del "$(fp "$P/alice.pem" | sed 's/../&:/g; s/:$//' | tr a-f A-F)" $RC >/dev/null &&
	sclient "$GW_edge" alice -tls1_3 | grep -q "^ping$" &&
	ok "revoke del (colons, upper case) lets the certificate in again" || nok "revoke del"
out=$("$KTLSGW" -j revoke list $RC)
echo "$out" | grep -q "^\[{\"sha256\":\"$(fp "$P/dave.pem")\",\"revoked_at\":\"[0-9T:-]*Z\",\"reason\":\"unspecified\",\"live_cut\":true" &&
	ok "revoke list -j: $out" || nok "revoke list -j: $out"
$REV add nothex $RC 2>"$T/e"; rc=$?
[ $rc = 2 ] && grep -q "not a SHA-256 fingerprint" "$T/e" && ok "bad fingerprint: exit 2 with advice" ||
	nok "bad fingerprint: rc=$rc $(cat "$T/e")"

# A state directory that cannot be written: refused, not falsely acknowledged.
RO=$T/ro
mkdir -p "$RO" && mount -t tmpfs -o size=64k tmpfs "$RO" && cp "$STATE/revoked" "$RO/" 2>/dev/null
if mountpoint -q "$RO"; then
	touch "$RO/revoked.lock"
	mount -o remount,ro "$RO"
	$REV add --cert "$P/carol.pem" --state-dir "$RO" --pin-root "$PINS" >/dev/null 2>"$T/e"; rc=$?
	r=$(bpftool map lookup pinned "$PINS/revoked" key hex $(fp "$P/carol.pem" | sed 's/../& /g') 2>&1)
	if [ $rc = 1 ] && grep -q "NOT recorded" "$T/e" && echo "$r" | grep -qi "not found\|no such"; then
		ok "read-only state directory: revocation refused, map untouched"
	else
		nok "read-only state: rc=$rc $(cat "$T/e") map: $r"
	fi
	umount "$RO"
else
	skip "cannot mount a tmpfs for the read-only state test"
fi

# --- the CLI on a running gateway's pins -----------------------------------------
# A command opens the pinned map (add also the pinned iterator) and loads
# nothing: reading the kernel's BTF to load the programs is what made every
# command slow. strace shows what it opens.
if ! command -v strace >/dev/null 2>&1; then
	skip "strace is not installed (tests/deps.sh installs it): cannot check what the CLI opens"
else
	CAROL=$(fp "$P/carol.pem")
	for c in "add --cert $P/carol.pem" "list" "del $CAROL"; do
		# shellcheck disable=SC2086
		strace -f -qq -e trace=openat,bpf -o "$T/strace" $REV $c $RC >/dev/null 2>"$T/e"; rc=$?
		if [ $rc = 0 ] && grep -q "BPF_OBJ_GET.*$PINS/revoked\"" "$T/strace" &&
		   ! grep -q /sys/kernel/btf/vmlinux "$T/strace" && ! grep -q BPF_PROG_LOAD "$T/strace"; then
			ok "revoke ${c%% *} on the gateway's pins: no open of /sys/kernel/btf/vmlinux, no program load"
		else
			nok "revoke ${c%% *} on the pins: rc=$rc $(cat "$T/e"); vmlinux opened" \
				"$(grep -c /sys/kernel/btf/vmlinux "$T/strace") times," \
				"$(grep -c BPF_PROG_LOAD "$T/strace") program loads"
		fi
	done

	# Durable first, in one flush: the entry is appended to the state file
	# and fdatasynced before the map is touched (no rewrite, no rename).
	durable_first() { # STRACE_FILE (strace without -f: no pid column)
		awk -v state="$T/state/revoked" '
		/BPF_MAP_UPDATE_ELEM/ { if (!u) u = NR }
		u { next }
		index($0, "openat(") && index($0, "\"" state "\"") && /O_APPEND/ { o = NR }
		/^write\(/ && o && !w { w = NR }
		/^fdatasync\(/ { n++; if (w && !s) s = NR }
		/^(fsync|rename)\(/ { bad = 1 }
		END { exit !(o && w && s && u && n == 1 && !bad && s < u) }' "$1"
	}
	strace -qq -e trace=openat,write,fsync,fdatasync,rename,bpf -o "$T/strace" \
		$REV add --cert "$P/carol.pem" $RC >/dev/null 2>"$T/e"; rc=$?
	if [ $rc = 0 ] && durable_first "$T/strace"; then
		ok "revoke add: one line appended to the state file and fdatasynced (one flush), then the map updated"
	else
		nok "revoke add order: rc=$rc $(cat "$T/e") $(tr '\n' ';' <"$T/strace")"
	fi
	$REV del "$CAROL" $RC >/dev/null || nok "revoke del carol"

	# `revoke add|del FINGERPRINT` is done by the front itself
	# (userspace/front.c): no exec of the full binary, no library but libc
	# (what makes it quick to start), the same durable-first order and the
	# same output as the full binary.
	strace -qq -e trace=execve,openat,write,fsync,fdatasync,rename,bpf -o "$T/strace" \
		$REV add "$CAROL" $RC --reason "keyCompromise: front test" >"$T/out" 2>"$T/e"; rc=$?
	libs=$(grep -o '"[^"]*\.so[.0-9]*"' "$T/strace" | sort -u | tr -d '"' | tr '\n' ' ')
	execs=$(grep -c '^execve(' "$T/strace")
	if [ $rc = 0 ] && [ "$execs" = 1 ] && [ "$libs" = "/lib/x86_64-linux-gnu/libc.so.6 " ] &&
	   durable_first "$T/strace" && grep -q "^revoked $CAROL (keyCompromise); 0 live sockets" "$T/out"; then
		ok "revoke add FINGERPRINT: done by the front (1 execve, only libc loaded), durable first: $(cat "$T/out")"
	else
		nok "revoke add by the front: rc=$rc $(cat "$T/out" "$T/e"); $execs execve, libraries: $libs"
	fi
	strace -qq -e trace=execve -o "$T/strace" $REV del "$CAROL" $RC >"$T/out" 2>"$T/e"; rc=$?
	if [ $rc = 0 ] && [ "$(grep -c '^execve(' "$T/strace")" = 1 ] &&
	   grep -q "^$CAROL is no longer revoked" "$T/out" &&
	   [ -z "$($REV list $RC | grep "^$CAROL")" ]; then
		ok "revoke del FINGERPRINT: done by the front: $(cat "$T/out")"
	else
		nok "revoke del by the front: rc=$rc $(cat "$T/out" "$T/e"); $(grep -c '^execve(' "$T/strace") execve"
	fi
	# what the front does not do is handed over, arguments intact: -j (JSON)
	strace -qq -e trace=execve -o "$T/strace" $REV add "$CAROL" $RC -j >"$T/out" 2>"$T/e"; rc=$?
	if [ $rc = 0 ] && grep -q "^execve(\"[^\"]*/libexec/ktlsgw\", \[\"$KTLSGW\", \"revoke\", \"add\"" "$T/strace" &&
	   python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); sys.exit(not d["revoked"])' "$T/out"; then
		ok "revoke add -j: the front hands it to the full binary (execve libexec/ktlsgw, same argv), JSON answer"
	else
		nok "revoke add -j: rc=$rc $(cat "$T/out" "$T/e"); $(grep '^execve' "$T/strace" | tr '\n' ';')"
	fi
	$REV del "$CAROL" $RC >/dev/null || nok "revoke del carol"

	# Which command lines the front does and which it hands over. A handed
	# over command shows as a second execve, made to fail here (strace
	# inject: the first execve it counts is the front's) so that nothing
	# runs behind it.
	front_does() { # ARGS...: 0 if the front did it without an exec
		strace -qq -e trace=execve -e inject=execve:error=ENOENT:when=1+ -o "$T/strace" \
			"$KTLSGW" "$@" >"$T/out" 2>"$T/e"
		[ "$(grep -c '^execve(' "$T/strace")" = 1 ]
	}
	{ cat "$T/gw.conf"; printf '[fleet]\nservers = nats://127.0.0.1:9\n'; } > "$T/fleet.conf"
	# a misspelt section and a key outside any section: config.c refuses both
	{ cat "$T/gw.conf"; printf '[Fleet]\nservers = nats://127.0.0.1:9\n'; } > "$T/Fleet.conf"
	{ echo "workers = 1"; cat "$T/gw.conf"; } > "$T/nosection.conf"
	bad=""
	for args in "-c $T/gw.conf revoke add $CAROL" "revoke del --config=$T/gw.conf $CAROL" \
		    "revoke add $CAROL --reason=superseded --state-dir $T/state --pin-root $PINS" \
		    "revoke del $CAROL --state-dir=$T/state --pin-root=$PINS"; do
		# shellcheck disable=SC2086
		front_does $args || bad="$bad [$args: $(cat "$T/e")]"
	done
	for args in "revoke add $CAROL -c $T/fleet.conf" "revoke add $CAROL -c $T/gw.conf -j" \
		    "revoke add --cert $P/carol.pem -c $T/gw.conf" "rev add $CAROL -c $T/gw.conf" \
		    "revoke add $CAROL -c $T/gw.conf --reas x" "revoke add $CAROL -c $T/none.conf" \
		    "revoke add $CAROL --state-dir $T/state --pin-root $PINS-none" "revoke list -c $T/gw.conf" \
		    "revoke add $CAROL -c $T/gw.conf extra" "version" "revoke del $CAROL -c $T/Fleet.conf" \
		    "revoke add $CAROL -c $T/nosection.conf"; do
		# shellcheck disable=SC2086
		if front_does $args || ! grep -q "cannot run the gateway binary" "$T/e"; then
			bad="$bad [handed over? $args: $(cat "$T/e")]"
		fi
	done
	if [ -z "$bad" ] && ! $REV list $RC | grep -q "^$CAROL"; then
		ok "the front does revoke add|del FINGERPRINT with -c, --config=, --state-dir, --pin-root" \
			"anywhere; hands over [fleet], [Fleet], keys outside a section, -j, --cert, prefixes," \
			"unknown options, no pins, other commands"
	else
		nok "front or full binary:$bad; list: $($REV list $RC | grep "^$CAROL")"
	fi
	# the full binary it runs must be owned by root (or us) and writable by no one else
	mkdir -p "$T/inst/libexec"
	cp "$KTLSGW" "$T/inst/ktlsgw"
	cp "$(dirname "$KTLSGW")/libexec/ktlsgw" "$T/inst/libexec/ktlsgw"
	chmod o+w "$T/inst/libexec/ktlsgw"
	out1=$("$T/inst/ktlsgw" version 2>&1); rc1=$?
	chmod o-w "$T/inst/libexec/ktlsgw"
	out2=$("$T/inst/ktlsgw" version 2>&1); rc2=$?
	if [ $rc1 = 1 ] && echo "$out1" | grep -q "writable by others" && [ $rc2 = 0 ] &&
	   [ "$out2" = "$("$KTLSGW" version)" ]; then
		ok "the front refuses a world-writable full binary ($out1), runs it once fixed"
	else
		nok "front trust check: rc=$rc1 $out1 / rc=$rc2 $out2"
	fi
fi

# --- no gateway has ever run on these pins -----------------------------------------
# The CLI loads the programs itself, pins the maps and the iterator, and the
# command after it takes the pins.
PINS2=$PINS-cold
trap 'cleanup; cleanup_pins; rm -rf "$PINS2"' EXIT
COLD="--state-dir $T/state-cold --pin-root $PINS2"
# shellcheck disable=SC2086
if $REV add --cert "$P/carol.pem" $COLD >"$T/out" 2>"$T/e" && [ -e "$PINS2/revoked" ] &&
   { [ -e "$PINS2/iter_cut" ] || [ -e "$PINS2/iter_scan" ]; } &&
   grep -q "^$(fp "$P/carol.pem") " "$T/state-cold/revoked"; then
	ok "no pins: revoke add loads, pins the map and the iterator, records: $(cat "$T/out")"
else
	nok "no pins: revoke add: $(cat "$T/out" "$T/e"); pins: $(ls "$PINS2" 2>&1)"
fi
if command -v strace >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	strace -f -qq -e trace=openat,bpf -o "$T/strace" $REV add --cert "$P/carol.pem" $COLD \
		>/dev/null 2>"$T/e"; rc=$?
	if [ $rc = 0 ] && ! grep -q /sys/kernel/btf/vmlinux "$T/strace" &&
	   ! grep -q BPF_PROG_LOAD "$T/strace" && grep -q BPF_ITER_CREATE "$T/strace"; then
		ok "the next command on those pins loads nothing and cuts through the pinned iterator"
	else
		nok "second command on the CLI's pins: rc=$rc $(cat "$T/e");" \
			"$(grep -c /sys/kernel/btf/vmlinux "$T/strace") opens of vmlinux"
	fi
fi
rm -rf "$PINS2"

stop_gw
rm -rf "$T"
