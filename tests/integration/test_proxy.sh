#!/bin/bash
# PROXY protocol v2 to the backend, parsed by a real peer: HAProxy with
# accept-proxy in front of the echo backend logs the client's own address
# and port (not the gateway's), and data still flows.
set -u
. "$(dirname "$0")/lib.sh"
if ! command -v haproxy >/dev/null; then
	skip "haproxy not installed (apt-get install haproxy) for the PROXY v2 test"
	exit 0
fi
P=$T/pki
"$KTLSGW" pki init --test "$P" >/dev/null || { nok "pki init"; exit 1; }
start_backend echo echo
HP=$((20000 + ($$ * 7) % 20000))
cat > "$T/haproxy.cfg" <<CONF
global
  maxconn 200
  log stdout format raw local0
defaults
  mode tcp
  log global
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen pp
  bind 127.0.0.1:$HP accept-proxy
  log-format "haproxy-pp client=%ci:%cp proxied=%[fc_rcvd_proxy]"
  server echo 127.0.0.1:$echo_PORT
CONF
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
PIDS="$PIDS $!"
sleep 0.5
cat > "$T/gw.conf" <<CONF
[global]
workers = 2
state_dir = $T/state
revocation = off
admin_socket =
[listener pp]
listen = 127.0.0.1:0
cert = $P/server.pem
key = $P/server.key
client_ca = $P/client-ca.pem
trust = $P/ca.pem
backend = 127.0.0.1:$HP
proxy_protocol = v2
proxy_protocol_cert = yes
CONF
start_gw "$T/gw.conf" || { nok "gateway start"; exit 1; }
out=$( (printf 'through-haproxy\n'; sleep 0.7) | timeout 10 openssl s_client -quiet -no_ign_eof \
	-connect "127.0.0.1:$GW_pp" -CAfile "$P/ca.pem" -cert "$P/alice.pem" -cert_chain "$P/alice.pem" \
	-key "$P/alice.key" 2>&1)
sleep 0.5
client=$(grep -o 'access .*listener=pp client=[0-9.:]*' "$T/gw.log" | head -1 | sed 's/.*client=//')
if echo "$out" | grep -q "^through-haproxy$" && [ -n "$client" ] &&
   grep -q "haproxy-pp client=$client proxied=1" "$T/haproxy.log"; then
	ok "HAProxy accept-proxy parsed our PROXY v2 header: it logged the real client $client, data flowed"
else
	nok "PROXY v2 via HAProxy: client=$client haproxy: $(tail -2 "$T/haproxy.log") out: $(echo "$out" | tail -1)"
fi
res=$("$B/kg-loadgen" echo --connect "127.0.0.1:$GW_pp" --cert "$P/bob.pem" --key "$P/bob.key" \
	--cacert "$P/ca.pem" -c 4 --bytes 4194304 2>&1)
echo "$res" | grep -q '"ok":true' && ok "4 × 4 MiB echo through gateway + PROXY v2 + HAProxy intact" ||
	nok "bulk through HAProxy: $res"
stop_gw
rm -rf "$T"
