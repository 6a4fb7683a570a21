#!/bin/bash
# PROXY protocol v2 to the backend, parsed by a real peer: HAProxy with
# accept-proxy in front of the echo backend logs the client's own address
# and port (not the gateway's), and data still flows; HAProxy 3.0 also logs
# the client CN, TLS version, cipher and fingerprint from the header.
set -u
. "$(dirname "$0")/lib.sh"
if ! command -v haproxy >/dev/null; then
	skip "haproxy not installed (apt-get install haproxy) for the PROXY v2 test"
	exit 0
fi
make_pki
start_backend echo echo
HP=$(free_port)
# haproxy_cfg PORT LOG-FORMAT [GLOBAL-LINE]: HAProxy taking PROXY v2 on
# PORT in front of the echo backend, one log line per connection
haproxy_cfg() {
	cat <<CONF
global
  maxconn 200
  log stdout format raw local0
${3:-}
defaults
  mode tcp
  log global
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen pp
  bind 127.0.0.1:$1 accept-proxy
  log-format "$2"
  server echo 127.0.0.1:$echo_PORT
CONF
}
haproxy_cfg "$HP" "haproxy-pp client=%ci:%cp proxied=%[fc_rcvd_proxy]" > "$T/haproxy.cfg"
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
PIDS="$PIDS $!"
wait_listen "$HP"
{
	global_conf "workers = 2
revocation = off
admin_socket ="
	listener_conf pp "$HP" "proxy_protocol = v2
proxy_protocol_cert = yes"
} > "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway start"; exit 1; }
out=$(sclient "$GW_pp" alice)
wait_log "access .*listener=pp client="
client=$(grep -o 'access .*listener=pp client=[0-9.:]*' "$T/gw.log" | head -1 | sed 's/.*client=//')
wait_log "haproxy-pp client=$client " 50 "$T/haproxy.log"
if echo "$out" | grep -q "^ping$" && [ -n "$client" ] &&
   grep -q "haproxy-pp client=$client proxied=1" "$T/haproxy.log"; then
	ok "HAProxy accept-proxy parsed our PROXY v2 header: it logged the real client $client, data flowed"
else
	nok "PROXY v2 via HAProxy: client=$client haproxy: $(tail -2 "$T/haproxy.log") out: $(echo "$out" | tail -1)"
fi
res=$(loadgen echo "$GW_pp" bob -c 4 --bytes 4194304 2>&1)
echo "$res" | grep -q '"ok":true' && ok "4 × 4 MiB echo through gateway + PROXY v2 + HAProxy intact" ||
	nok "bulk through HAProxy: $res"
stop_gw

# The CN (and fingerprint) from the header, logged by HAProxy itself: 2.6
# cannot read TLVs, so this part runs HAProxy 3.0 built from Debian's source.
if ! HAPROXY3=$(sh tests/tools/haproxy3.sh 2>"$T/haproxy3-build.log"); then
	nok "building HAProxy 3.0 for the CN check failed: $(tail -3 "$T/haproxy3-build.log")"
	exit 1
fi
HP3=$((HP + 1))
haproxy_cfg "$HP3" "haproxy3-pp client=%ci:%cp cn=%[lua.pp2_ssl(0x22)] version=%[lua.pp2_ssl(0x21)] cipher=%[lua.pp2_ssl(0x23)] sha256=%[fc_pp_tlv(0xE0),hex,lower]" \
	"  lua-load $PWD/tests/tools/pp2_ssl.lua" > "$T/haproxy3.cfg"
"$HAPROXY3" -f "$T/haproxy3.cfg" -db >"$T/haproxy3.log" 2>&1 &
PIDS="$PIDS $!"
wait_listen "$HP3"
# HAProxy 3.0 refuses any TLV over 1024 bytes, so no certificate TLV here
sed -i "s/^backend = .*/backend = 127.0.0.1:$HP3/; s/^proxy_protocol_cert = yes/proxy_protocol_cert = no/" "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway start (HAProxy 3.0 backend)"; exit 1; }
for who in alice bob; do
	out=$(sclient "$GW_pp" "$who")
	wait_log "access .*listener=pp client=[0-9.:]* subject=\"$who\""
	client=$(grep -o "access .*listener=pp client=[0-9.:]* subject=\"$who\"" "$T/gw.log" | tail -1 |
		sed 's/.*client=//; s/ .*//')
	wait_log "haproxy3-pp client=$client " 50 "$T/haproxy3.log"
	if grep -q "^ping$" <<<"$out" && [ -n "$client" ] &&
	   grep -q "haproxy3-pp client=$client cn=$who version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 sha256=$(fp "$P/$who.pem")" "$T/haproxy3.log"; then
		ok "HAProxy 3.0 accept-proxy logged the real client $client, CN $who, version, cipher and fingerprint"
	else
		nok "HAProxy 3.0 log for $who (client=$client): $(tail -2 "$T/haproxy3.log") out: $(tail -1 <<<"$out")"
	fi
done
stop_gw
rm -rf "$T"
