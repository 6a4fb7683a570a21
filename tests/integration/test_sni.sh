#!/bin/bash
# SNI groups: [sni LISTENER HOST] gives a server name its own certificate and
# its own client CA (a CDN edge with per-domain client CAs). A client of one
# domain's CA is refused on another domain; names that match no group get
# the listener's own certificate; wildcards cover one label; the access log
# and `conn list` name the group; configuration mistakes name the line.
set -u
. "$(dirname "$0")/lib.sh"

make_pki
start_backend echo echo

# A server certificate for the api domain (and the wildcard group), issued
# by the demo root so one CA file verifies every server certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-keyout "$T/api.key" -out "$T/api.pem" -subj /CN=api.example.test \
	-addext "subjectAltName=DNS:api.example.test,DNS:*.wild.test" \
	-CA "$P/ca.pem" -CAkey "$P/ca.key" 2>/dev/null || { nok "make the api certificate"; exit 1; }
chmod 600 "$T/api.key"
cat "$P/ca.pem" "$P/rsa-ca.pem" > "$T/roots.pem"

{
	global_conf "workers = 2
revocation = off
admin_socket = $T/admin.sock"
	listener_conf edge "$echo_PORT"
	cat <<CONF

; the api domain takes clients of the RSA client CA only
[sni edge api.example.test]
cert = $T/api.pem
key = $T/api.key
client_ca = $P/rsa-client-ca.pem
trust = $P/rsa-ca.pem

[sni edge *.wild.test]
cert = $T/api.pem
key = $T/api.key
client_ca = $P/rsa-client-ca.pem
trust = $P/rsa-ca.pem
CONF
} > "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway with SNI groups starts"; exit 1; }

# sclient CLIENT [SNI]: one round trip; prints s_client's output
sclient() {
	local c=$1 sni=${2:-}
	local args=(-noservername)
	[ -n "$sni" ] && args=(-servername "$sni")
	# shellcheck disable=SC2046
	s_talk "ping-$c" -connect "127.0.0.1:$GW_edge" -CAfile "$T/roots.pem" "${args[@]}" $(cert_args "$c")
}
served_cn() { sed -n 's/^subject=.*CN *= *\([^,]*\).*/\1/p' | head -1; }

out=$(sclient rsa-client api.example.test)
if grep -q "ping-rsa-client" <<<"$out" && [ "$(served_cn <<<"$out")" = api.example.test ]; then
	ok "SNI api.example.test: its own certificate, its client CA's client gets through"
else
	nok "SNI api.example.test with the RSA client: $(tail -5 <<<"$out")"
fi
if grep -A3 "Acceptable client certificate CA names" <<<"$out" | grep -q "RSA client CA"; then
	ok "SNI api.example.test: CertificateRequest names the group's client CA"
else
	nok "CertificateRequest CA names for api.example.test: $(grep -A3 'Acceptable client' <<<"$out")"
fi

out=$(sclient alice api.example.test)
if ! grep -q "ping-alice" <<<"$out" && grep -q "unknown ca" <<<"$out" &&
   grep -q "reject .*server_name=api.example.test .*reason=unknown_ca.*subject=\"[^\"]*alice" "$T/gw.log"; then
	ok "SNI api.example.test: a client of the default CA is refused (unknown_ca, logged with the server name)"
else
	nok "alice on api.example.test was not refused as unknown_ca: $(tail -3 <<<"$out"; grep reject "$T/gw.log" | tail -2)"
fi

out=$(sclient alice)
if grep -q "ping-alice" <<<"$out" && [ "$(served_cn <<<"$out")" = localhost ]; then
	ok "no SNI: the listener's own certificate and client CA (alice gets through)"
else
	nok "no SNI with alice: $(served_cn <<<"$out") $(tail -3 <<<"$out")"
fi
out=$(sclient rsa-client other.example.test)
if ! grep -q "ping-rsa-client" <<<"$out" && [ "$(served_cn <<<"$out")" = localhost ]; then
	ok "an unknown server name falls back to the listener: RSA client refused there"
else
	nok "unknown SNI: $(served_cn <<<"$out") $(tail -3 <<<"$out")"
fi

out=$(sclient rsa-client X.Wild.Test)
if grep -q "ping-rsa-client" <<<"$out" && [ "$(served_cn <<<"$out")" = api.example.test ]; then
	ok "wildcard *.wild.test covers X.Wild.Test (case-insensitive)"
else
	nok "wildcard group: $(served_cn <<<"$out") $(tail -3 <<<"$out")"
fi
out=$(sclient rsa-client a.b.wild.test)
if ! grep -q "ping-rsa-client" <<<"$out" && [ "$(served_cn <<<"$out")" = localhost ]; then
	ok "wildcard covers one label only: a.b.wild.test gets the listener's certificate"
else
	nok "a.b.wild.test: $(served_cn <<<"$out") $(tail -3 <<<"$out")"
fi
if grep -q "access .*listener=edge server_name=api.example.test .*subject=\"[^\"]*[Rr][Ss][Aa]" "$T/gw.log"; then
	ok "access log names the SNI group"
else
	nok "no access line with server_name=api.example.test: $(grep access "$T/gw.log" | tail -2)"
fi

# conn list shows the group of a live connection
(printf 'hold\n'; sleep 3) | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$GW_edge" \
	-servername api.example.test -CAfile "$T/roots.pem" $(cert_args rsa-client) >/dev/null 2>&1 &
hold=$!
wait_conn '"server_name": *"api.example.test"'
if "$KTLSGW" -j conn list --socket "$T/admin.sock" 2>&1 | grep -q '"server_name":"api.example.test"'; then
	ok "conn list shows server_name of a live connection"
else
	nok "conn list: $("$KTLSGW" -j conn list --socket "$T/admin.sock" 2>&1 | head -c 400)"
fi
wait "$hold"
stop_gw

# configuration mistakes: FILE:LINE and the next step, exit 2
bad() { # NAME SECTION-TEXT EXPECTED-REGEX
	{ sed -n '1,/^backend/p' "$T/gw.conf"; printf '%s\n' "$2"; } > "$T/bad.conf"
	local o rc
	o=$("$KTLSGW" run -c "$T/bad.conf" --check 2>&1); rc=$?
	if [ $rc -eq 2 ] && grep -Eq "$3" <<<"$o"; then ok "config: $1"; else nok "config $1: rc=$rc $o"; fi
}
bad "[sni] of an unknown listener" "[sni nosuch api.example.test]
cert = $T/api.pem
key = $T/api.key
client_ca = $P/rsa-client-ca.pem" "bad.conf:[0-9]+: \[sni nosuch api.example.test\]: there is no \[listener nosuch\]"
bad "backend cannot be set per server name" "[sni edge api.example.test]
backend = 127.0.0.1:1" "bad.conf:[0-9]+: 'backend' cannot be set per server name"
bad "[sni] without client_ca" "[sni edge api.example.test]
cert = $T/api.pem
key = $T/api.key" "has no 'client_ca'"
bad "a server name that is not a DNS name" "[sni edge 1.2.3.4:443]" "is not a DNS name"
bad "an SNI group whose key does not match its cert" "[sni edge api.example.test]
cert = $T/api.pem
key = $P/server.key
client_ca = $P/rsa-client-ca.pem" "bad.conf:[0-9]+: key = .* does not match cert"

echo "# sni: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
