#!/bin/bash
# Least privilege: with [global] user the gateway binds, loads BPF and reads
# keys as root, then runs as that user with only cap_dac_read_search and
# cap_bpf (effective, permitted and bounding sets) and no way back. It still
# serves, refuses and cuts revoked certificates, and reloads root-only keys
# on SIGHUP. A missing user is a clear configuration error.
set -u
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	skip "dropping privileges needs to start as root"
	exit 0
fi
U=ktlsgw-test
id "$U" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$U" ||
	{ nok "cannot create the test user $U"; exit 1; }
UID_U=$(id -u "$U")

P=$T/pki
PINS=/sys/fs/bpf/ktlsgw-privs-$$
STATE=$T/state
make_pki
chmod 600 "$P"/*.key
start_backend echo echo
cp "$P/server.pem" "$T/srv.pem"; cp "$P/server.key" "$T/srv.key"; chmod 600 "$T/srv.key"

{
	GC_STATE=$STATE global_conf "workers = 2
bpf_pin_root = $PINS
revocation_scan_interval = 100ms
admin_socket = $T/admin.sock
user = $U"
	LC_CERT=$T/srv.pem LC_KEY=$T/srv.key listener_conf edge "$echo_PORT"
} > "$T/gw.conf"
trap 'cleanup; rm -rf "$PINS"' EXIT

if ! start_gw "$T/gw.conf"; then
	if grep -q "revocation:" "$T/gw.log"; then
		skip "BPF revocation unavailable here: $(grep -m1 'revocation:' "$T/gw.log")"
		exit 0
	fi
	nok "gateway with user = $U starts: $(tail -3 "$T/gw.log")"; exit 1
fi

st=/proc/$GW_PID/status
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "$st")
gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "$st")
groups=$(awk '/^Groups:/ {$1=""; print}' "$st" | xargs)
want_gid=$(id -g "$U")
if [ "$uids" = "$UID_U $UID_U $UID_U $UID_U" ] && [ "$gids" = "$want_gid $want_gid $want_gid $want_gid" ] &&
   [ "$groups" = "$want_gid" ]; then
	ok "runs as $U: real, effective, saved and fs uid/gid, no other groups"
else
	nok "uid/gid after the drop: Uid $uids Gid $gids Groups $groups"
fi
# cap_dac_read_search = bit 2, cap_bpf = bit 39
want=$(printf '%016x' $(( (1 << 2) | (1 << 39) )))
eff=$(awk '/^CapEff:/ {print $2}' "$st"); prm=$(awk '/^CapPrm:/ {print $2}' "$st")
bnd=$(awk '/^CapBnd:/ {print $2}' "$st"); nnp=$(awk '/^NoNewPrivs:/ {print $2}' "$st")
if [ "$eff" = "$want" ] && [ "$prm" = "$want" ] && [ "$bnd" = "$want" ] && [ "$nnp" = 1 ]; then
	ok "capabilities: effective = permitted = bounding = cap_dac_read_search,cap_bpf; no_new_privs"
else
	nok "capabilities: CapEff $eff CapPrm $prm CapBnd $bnd NoNewPrivs $nnp (want $want)"
fi
# every worker thread too: capabilities are per thread
bad_threads=0
for t in /proc/$GW_PID/task/*; do
	[ "$(awk '/^CapEff:/ {print $2}' "$t/status")" = "$want" ] || bad_threads=$((bad_threads + 1))
	[ "$(awk '/^Uid:/ {print $2}' "$t/status")" = "$UID_U" ] || bad_threads=$((bad_threads + 1))
done
if [ "$bad_threads" -eq 0 ] && [ "$(ls /proc/$GW_PID/task | wc -l)" -ge 3 ]; then
	ok "every thread ($(ls /proc/$GW_PID/task | wc -l)) runs as $U with the same capabilities"
else
	nok "$bad_threads thread fields differ"
fi
if grep -q "running as user $U (uid $UID_U); capabilities kept: cap_dac_read_search, cap_bpf" "$T/gw.log"; then
	ok "the drop is logged with the capabilities kept"
else
	nok "no drop line: $(grep -i 'user' "$T/gw.log" | tail -2)"
fi

if sclient "$GW_edge" alice | grep -q "^ping$"; then ok "serves mTLS after the drop"; else nok "no echo after the drop"; fi

# a live connection with bob, then revoke bob with the root CLI
loadgen echo "$GW_edge" bob --bytes 100000000000 >"$T/bob.out" 2>"$T/bob.err" &
lg=$!
wait_conn bob
if "$KTLSGW" revoke add -c "$T/gw.conf" --cert "$P/bob.pem" >"$T/rev.out" 2>&1; then
	:
else
	nok "revoke add: $(cat "$T/rev.out")"
fi
wait_gone "$lg" 50
if ! kill -0 "$lg" 2>/dev/null && grep -qiE "reset|abort" "$T/bob.err"; then
	ok "revoke add cuts bob's live connection to the unprivileged gateway ($(cat "$T/rev.out" | head -1))"
else
	kill "$lg"; nok "bob's connection survived the revocation: $(cat "$T/bob.err")"
fi
wait "$lg" 2>/dev/null
out=$(sclient "$GW_edge" bob)
if grep -q "certificate revoked" <<<"$out" && ! grep -q "^ping$" <<<"$out"; then
	ok "a new handshake with bob is refused (certificate_revoked): the map lookup works as $U"
else
	nok "bob after revocation: $(tail -3 <<<"$out")"
fi
if ! grep -q "cannot tag" "$T/gw.log"; then
	ok "sockets are tagged for revocation as $U (no 'cannot tag' warning)"
else
	nok "$(grep -m1 'cannot tag' "$T/gw.log")"
fi
owner=$(stat -c %U "$STATE/revoked")
if [ "$owner" = "$U" ] && grep -q "$(fp "$P/bob.pem")" "$STATE/revoked"; then
	ok "the state file written by the root CLI stays owned by $U"
else
	nok "state file owner $owner: $(ls -l "$STATE")"
fi

# SIGHUP reads a new root-only key (0600, owned by root)
"$KTLSGW" pki init --test "$T/pki2" >/dev/null
cp "$T/pki2/server.pem" "$T/srv.pem"; cp "$T/pki2/server.key" "$T/srv.key"; chmod 600 "$T/srv.key"
cat "$P/ca.pem" "$T/pki2/ca.pem" > "$T/both.pem"
kill -HUP "$GW_PID"
sleep 1
newfp=$(fp "$T/pki2/server.pem")
served=$( (sleep 0.5) | timeout 10 openssl s_client -connect "127.0.0.1:$GW_edge" -CAfile "$T/both.pem" \
	-cert "$P/alice.pem" -cert_chain "$P/alice.pem" -key "$P/alice.key" 2>/dev/null |
	openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
if [ "$served" = "$newfp" ] && grep -q "SIGHUP: configuration reloaded" "$T/gw.log"; then
	ok "SIGHUP as $U reloads a root-only (0600) key and serves the new certificate"
else
	nok "SIGHUP reload as $U: served $served want $newfp; $(grep SIGHUP "$T/gw.log" | tail -1)"
fi
stop_gw

# a user that does not exist: FILE:LINE, the next step, nothing served
sed -i "s/^user = .*/user = no-such-user-kg/" "$T/gw.conf"
o=$("$KTLSGW" run -c "$T/gw.conf" 2>&1); rc=$?
if [ $rc -eq 2 ] && grep -q "gw.conf:7: user = no-such-user-kg: no such user; create it (useradd" <<<"$o"; then
	ok "user = no-such-user: refused with FILE:LINE and the useradd line (exit $rc)"
else
	nok "unknown user: rc=$rc $(tail -2 <<<"$o")"
fi

echo "# privs: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
