#!/bin/bash
# CRL files and SIGHUP: a CRL-listed client gets certificate_revoked; a stale
# CRL is refused (or accepted with crl_stale = warn); SIGHUP swaps the server
# certificate and the CRL while a long transfer goes on intact; a broken
# certificate on SIGHUP keeps the old configuration serving; a reload that
# runs out of memory at any of its allocations does too, ASan-clean.
set -u
. "$(dirname "$0")/lib.sh"

make_pki
start_backend echo echo
cp "$P/server.pem" "$T/srv.pem"; cp "$P/server.key" "$T/srv.key"
cp "$P/client-ca.crl.pem" "$T/crl.pem"
conf() { # CRL_STALE
	{
		global_conf "workers = 2
revocation = off"
		LC_CERT=$T/srv.pem LC_KEY=$T/srv.key listener_conf edge "$echo_PORT" "crl = $T/crl.pem
crl_stale = ${1:-reject}"
	} > "$T/gw.conf"
}
cat "$P/ca.pem" "$P/rsa-ca.pem" > "$P/both.pem"
CA=$P/both.pem	# the server certificate changes from the EC to the RSA root
conf
start_gw "$T/gw.conf" || { nok "gateway with a CRL starts"; exit 1; }

sclient "$GW_edge" alice | grep -q "^ping$" && ok "CRL: a client not on the CRL passes" || nok "CRL: alice refused"
out=$(sclient "$GW_edge" erin)
echo "$out" | grep -q "alert certificate revoked" && grep -q "reject .*subject=\"CN=erin.*\|reject .*reason=certificate_revoked" "$T/gw.log" &&
	ok "CRL: a client on the CRL gets certificate_revoked" || nok "CRL: erin: $(echo "$out" | tail -1)"

# --- SIGHUP during a long transfer: new server cert + empty CRL --------------
loadgen echo "$GW_edge" alice --bytes 400000000 >"$T/long.out" 2>"$T/long.err" &
L=$!
sleep 0.5
cp "$P/rsa-server.pem" "$T/srv.pem"; cp "$P/rsa-server.key" "$T/srv.key"
cp "$P/client-ca-empty.crl.pem" "$T/crl.pem"
kill -HUP "$GW_PID"
sleep 0.5
grep -q "SIGHUP: configuration reloaded" "$T/gw.log" && ok "SIGHUP reloads the configuration" ||
	nok "SIGHUP: $(grep SIGHUP "$T/gw.log")"
subj=$(echo | timeout 5 openssl s_client -connect "127.0.0.1:$GW_edge" $(cert_args alice) \
	-CAfile "$P/both.pem" 2>/dev/null |
	openssl x509 -noout -issuer 2>/dev/null)
echo "$subj" | grep -q "RSA root" && ok "new connections get the new server certificate ($subj)" ||
	nok "server certificate after SIGHUP: $subj"
sclient "$GW_edge" erin | grep -q "^ping$" && ok "the reloaded (empty) CRL lets erin in" || nok "CRL reload"
wait $L
grep -q '"ok":true' "$T/long.out" && ok "a 400 MB transfer running across the reload arrived intact" ||
	nok "transfer across reload: $(cat "$T/long.out" "$T/long.err")"

# --- a broken certificate on SIGHUP keeps the old one --------------------------
echo "not a certificate" > "$T/srv.pem"
kill -HUP "$GW_PID"
sleep 0.5
if grep -q "SIGHUP: .*srv.pem.*the running configuration stays in force" "$T/gw.log" &&
   sclient "$GW_edge" alice | grep -q "^ping$"; then
	ok "broken certificate on SIGHUP: error logged with FILE:LINE, old configuration still serving"
else
	nok "broken reload: $(grep SIGHUP "$T/gw.log" | tail -1)"
fi
stop_gw

# --- stale CRL ---------------------------------------------------------------
cp "$P/rsa-server.pem" "$T/srv.pem"
cp "$P/client-ca-stale.crl.pem" "$T/crl.pem"
conf reject
: > "$T/gw.log"
start_gw "$T/gw.conf" || nok "start with a stale CRL"
out=$(sclient "$GW_edge" alice)
if ! echo "$out" | grep -q "^ping$" && grep -q "reason=crl_unusable" "$T/gw.log"; then
	ok "stale CRL with crl_stale = reject: clients refused (reason=crl_unusable)"
else
	nok "stale CRL reject: $(echo "$out" | tail -1) $(grep reject "$T/gw.log" | tail -1)"
fi
stop_gw
conf warn
: > "$T/gw.log"
start_gw "$T/gw.conf" || nok "start with crl_stale = warn"
if sclient "$GW_edge" alice | grep -q "^ping$" && grep -q "past its nextUpdate; accepting" "$T/gw.log" &&
   sclient "$GW_edge" erin | grep -q "alert certificate revoked"; then
	ok "stale CRL with crl_stale = warn: accepted with a warning, its entries still enforced"
else
	nok "stale CRL warn: $(grep -i crl "$T/gw.log" | tail -2)"
fi
stop_gw

# --- a reload that runs out of memory ------------------------------------------
# On the soak's AddressSanitizer build (soak.sh builds it the same way, under
# the same lock), KTLSGW_FAULT=reload_alloc:N fails the Nth allocation of the
# reloads (1: the snapshot array, 2: the configuration's generation, 3: the
# listener's snapshot): the old configuration serves on, the next SIGHUP
# applies, and at exit the sanitizer reports no double free, no use of freed
# memory and no leak.
GB=$B/asan
cp "$P/client-ca.crl.pem" "$T/crl.pem"
conf reject
mkdir -p "$B"
if flock "$B/asan.lock" make -s B="$GB" CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	"$GB/ktlsgw" >"$T/asan-build.log" 2>&1; then
	for n in 1 2 3; do
		: > "$T/gw.log"
		if ! ASAN_OPTIONS=detect_leaks=1:exitcode=23:log_path=$T/asan.$n \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$T/ubsan.$n \
			KTLSGW=$GB/ktlsgw KTLSGW_FAULT=reload_alloc:$n start_gw "$T/gw.conf"; then
			nok "ASan gateway with KTLSGW_FAULT=reload_alloc:$n did not start: $(tail -2 "$T/gw.log")"
			continue
		fi
		m=$(logmark)
		kill -HUP "$GW_PID"
		wait_since "$m" "SIGHUP: " 300
		a=$(sclient "$GW_edge" alice)
		m2=$(logmark)
		kill -HUP "$GW_PID"
		wait_since "$m2" "SIGHUP: " 300
		b=$(sclient "$GW_edge" alice)
		kill -TERM "$GW_PID"
		wait_gone "$GW_PID" 600
		wait "$GW_PID"
		rc=$?
		GW_PID=
		if logsince "$m" | head -1 | grep -q "SIGHUP: out of memory; the running configuration stays in force" &&
		   grep -q "^ping$" <<<"$a" && logsince "$m2" | grep -q "SIGHUP: configuration reloaded" &&
		   grep -q "^ping$" <<<"$b" && [ "$rc" = 0 ] && ! ls "$T"/asan."$n".* "$T"/ubsan."$n".* >/dev/null 2>&1; then
			ok "reload allocation $n fails: the old configuration serves, the next SIGHUP applies, ASan clean at exit"
		else
			nok "reload_alloc:$n: exit $rc; log: $(grep SIGHUP "$T/gw.log" | tr '\n' ' '); alice: $(tail -1 <<<"$a") / $(tail -1 <<<"$b"); $(cat "$T"/asan."$n".* "$T"/ubsan."$n".* 2>/dev/null | grep -m3 -E 'ERROR|SUMMARY|runtime error')"
		fi
	done
else
	nok "the ASan build failed: $(tail -3 "$T/asan-build.log")"
fi
rm -rf "$T"
