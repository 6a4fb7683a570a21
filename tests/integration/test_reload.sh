#!/bin/bash
# CRL files and SIGHUP: a CRL-listed client gets certificate_revoked; a stale
# CRL is refused (or accepted with crl_stale = warn); SIGHUP swaps the server
# certificate and the CRL while a long transfer goes on intact; a broken
# certificate on SIGHUP keeps the old configuration serving.
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
rm -rf "$T"
