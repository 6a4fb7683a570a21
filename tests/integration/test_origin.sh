#!/bin/bash
# The origin leg (backend_tls = on): the gateway verifies the client, then
# speaks TLS (mTLS with backend_cert) to the origin. Real origins: Debian's
# nginx with ssl_verify_client on, whose access log names our certificate
# for each proxied request, and `openssl s_server -Verify 1`. Each refusal
# (origin certificate from an unknown CA, for another name, expired; an
# origin refusing our certificate) with what the client saw, the log line
# and the counter. Then client_auth = optional (curl without a certificate,
# the PROXY v2 header saying so; a rogue certificate still refused) and
# client mode (tls = off: curl over plain HTTP reaching nginx over mTLS).
set -u
. "$(dirname "$0")/lib.sh"
if ! command -v nginx >/dev/null; then
	skip "nginx not installed (sh tests/deps.sh) for the origin test"
	exit 0
fi
make_pki
MPORT=$(free_port)
# a loaded machine makes handshakes slow: bounds, not delays (s_talk and
# curl return as soon as the exchange is over)
export SC_TIMEOUT=${SC_TIMEOUT:-60}

# free_port: a TCP port nobody listens on now, for the origins that need
# one in their configuration
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- the origins ------------------------------------------------------------

# nginx as an unprivileged instance of its own: conf, pid, logs and temp
# files under $T/nginx, listening on 127.0.0.1 only, requiring a client
# certificate from the demo client CA
NG=$T/nginx
mkdir -p "$NG/tmp"
NGINX_PORT=$(free_port)
cat > "$NG/nginx.conf" <<CONF
daemon off;
$([ "$(id -u)" = 0 ] && echo "user $(id -un);")
worker_processes 1;
pid $NG/nginx.pid;
error_log $NG/error.log info;
events { worker_connections 64; }
http {
  client_body_temp_path $NG/tmp/body;
  proxy_temp_path $NG/tmp/proxy;
  fastcgi_temp_path $NG/tmp/fastcgi;
  uwsgi_temp_path $NG/tmp/uwsgi;
  scgi_temp_path $NG/tmp/scgi;
  log_format origin 'origin-access subject="\$ssl_client_s_dn" verify=\$ssl_client_verify request="\$request"';
  access_log $NG/access.log origin;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $P/server.pem;
    ssl_certificate_key $P/server.key;
    ssl_client_certificate $P/client-ca-chain.pem;
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      return 200 "origin saw \$ssl_client_s_dn\n";
    }
  }
}
CONF
nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" >"$NG/stderr.log" 2>&1 &
PIDS="$PIDS $!"
if ! wait_listen "$NGINX_PORT" 300; then
	nok "nginx did not start: $(tail -3 "$NG/stderr.log" "$NG/error.log" 2>/dev/null | tr '\n' ' ')"
	exit 1
fi

# start_sserver NAME CERT [s_server args...]: `openssl s_server -Verify 1`
# with CERT (a name in $P) as an origin that echoes lines reversed; sets
# ${NAME}_PORT, its output in $T/NAME.log
start_sserver() {
	local name=$1 cert=$2 port
	shift 2
	port=$(free_port)
	openssl s_server -accept "127.0.0.1:$port" -cert "$P/$cert.pem" -key "$P/$cert.key" \
		-CAfile "$P/client-ca-chain.pem" -Verify 1 -verify_return_error -rev "$@" \
		</dev/null >"$T/$name.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_listen "$port" 300 || { nok "s_server $name did not start: $(tail -2 "$T/$name.log")"; exit 1; }
	eval "${name}_PORT=$port"
}
start_sserver sgood server
start_sserver sexpired origin-expired

# an echo origin for bulk transfers: socat terminating TLS (our
# certificate required) in front of kg-backend's echo
start_backend echo echo
SOCAT_PORT=$(free_port)
socat "OPENSSL-LISTEN:$SOCAT_PORT,bind=127.0.0.1,reuseaddr,fork,cert=$P/server.pem,key=$P/server.key,cafile=$P/client-ca-chain.pem,verify=1" \
	"TCP:127.0.0.1:$echo_PORT" 2>"$T/socat.log" &
PIDS="$PIDS $!"
wait_listen "$SOCAT_PORT" 300 || { nok "socat TLS echo did not start: $(cat "$T/socat.log")"; exit 1; }

# a backend that reports what the PROXY v2 header says of the client
rm -f "$T/pp2.port"
python3 tests/tools/pp2_http.py "$T/pp2.port" "$T/pp2.log" 2>"$T/pp2.err" &
PIDS="$PIDS $!"
wait_file "$T/pp2.port" 300 || { nok "PROXY v2 backend did not start: $(cat "$T/pp2.err")"; exit 1; }
PP2_PORT=$(cat "$T/pp2.port")

# ---- the gateway: one listener per case -------------------------------------

# origin NAME PORT [EXTRA]: a listener toward a TLS origin on PORT, verified
# against the demo root, presenting alice's certificate
origin() {
	listener_conf "$1" "$2" "backend_tls = on
backend_ca = $P/ca.pem
backend_cert = ${OC:-$P/alice.pem}
backend_key = ${OK:-$P/alice.key}
${3:-}"
}
{
	global_conf "workers = 2
revocation = off
admin_socket =
metrics = 127.0.0.1:$MPORT"
	origin nginx "$NGINX_PORT" "backend_name = localhost"
	origin sserver "$sgood_PORT"
	origin bulk "$SOCAT_PORT"
	origin tls12 "$sgood_PORT" "backend_tls_max = 1.2
backend_ciphers = ECDHE-ECDSA-AES128-GCM-SHA256"
	origin unknownca "$sgood_PORT" | sed "s|^backend_ca = .*|backend_ca = $P/stranger-ca.pem|"
	origin wrongname "$sgood_PORT" "backend_name = wrong.example.com"
	origin expired "$sexpired_PORT"
	# no backend_cert: the origin asks for one (TLS 1.3: after our Finished)
	listener_conf nocert "$sgood_PORT" "backend_tls = on
backend_ca = $P/ca.pem"
	# a certificate the origin does not know, in TLS 1.2 (refused in the handshake)
	OC=$P/stranger.pem OK=$P/stranger.key origin rogue12 "$sgood_PORT" "backend_tls_max = 1.2"
	OC=$P/stranger.pem OK=$P/stranger.key origin rogue13 "$sgood_PORT"
	listener_conf optional "$PP2_PORT" "client_auth = optional
proxy_protocol = v2"
	client_mode_conf client "$NGINX_PORT"
} > "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway start"; exit 1; }

# ---- origin mTLS ------------------------------------------------------------

# curl as bob → gateway (verifies bob) → nginx (verifies alice, our backend_cert)
mark=$(logmark)
out=$(timeout 60 curl -sS --cacert "$P/ca.pem" --cert "$P/bob.pem" --key "$P/bob.key" \
	"https://127.0.0.1:$GW_nginx/first" 2>&1)
wait_log 'origin-access .*request="GET /first' 100 "$NG/access.log"
line=$(grep 'request="GET /first' "$NG/access.log")
if [ "$out" = "origin saw CN=alice,O=ktlsgw demo" ] && echo "$line" | grep -q 'subject="CN=alice,O=ktlsgw demo" verify=SUCCESS'; then
	ok "nginx (ssl_verify_client on) served a request through the gateway and logged our certificate: $line"
else
	nok "origin mTLS to nginx: curl: $out; nginx: $line; gateway: $(logsince "$mark" | tail -3)"
fi
if wait_since "$mark" 'access .*listener=nginx .*subject="bob".*origin_tls=1\.3 .*path=client-userspace,origin-userspace reason=done'; then
	ok "access line names both legs: $(logsince "$mark" | grep -o 'origin_tls=.*reason=done')"
else
	nok "access line for the nginx request: $(logsince "$mark" | grep access | tail -1)"
fi

# several requests, several clients: each shows up in nginx's log as ours
for i in 1 2 3 4 5; do
	timeout 60 curl -sS -o /dev/null --cacert "$P/ca.pem" --cert "$P/alice.pem" --key "$P/alice.key" \
		"https://127.0.0.1:$GW_nginx/req$i" &
done
wait_log 'request="GET /req5' 300 "$NG/access.log"
n=0
for i in 1 2 3 4 5; do
	wait_log "request=\"GET /req$i " 300 "$NG/access.log" && n=$((n + 1))
done
if [ "$n" = 5 ] && [ "$(grep -c 'request="GET /req' "$NG/access.log")" = \
	"$(grep 'request="GET /req' "$NG/access.log" | grep -c 'subject="CN=alice,O=ktlsgw demo" verify=SUCCESS')" ]; then
	ok "5 parallel requests: nginx logged our client certificate for every one"
else
	nok "parallel requests: $n of 5 logged: $(grep 'request="GET /req' "$NG/access.log" | tr '\n' ' ')"
fi

out=$(sclient "$GW_sserver" bob)
if echo "$out" | grep -qx gnip && wait_log "depth=0 O = ktlsgw demo, CN = alice" 50 "$T/sgood.log"; then
	ok "openssl s_server -Verify 1 as the origin: it verified alice (our backend_cert) and answered through the gateway"
else
	nok "s_server origin: client saw: $(echo "$out" | tail -2 | tr '\n' ' '); s_server: $(tail -3 "$T/sgood.log" | tr '\n' ' ')"
fi
out=$(sclient "$GW_tls12" bob)
if echo "$out" | grep -qx gnip &&
	wait_log 'access .*listener=tls12 .*origin_tls=1\.2 origin_cipher=ECDHE-ECDSA-AES128-GCM-SHA256 ' 100; then
	ok "legs may differ: client TLS 1.3, origin TLS 1.2 with backend_ciphers"
else
	nok "TLS 1.2 origin leg: $(echo "$out" | tail -1); $(grep 'listener=tls12' "$T/gw.log" | tail -1)"
fi

# bulk both ways, checked byte for byte by the load generator
res=$(loadgen echo "$GW_bulk" bob -c 4 --bytes 4194304 2>&1)
if echo "$res" | grep -q '"ok":true'; then
	ok "4 × 4 MiB echo with TLS on both legs (client → gateway → socat TLS origin) intact"
else
	nok "bulk with TLS on both legs: $res"
fi

# ---- refusals on the origin side -------------------------------------------

# refused NAME DETAIL-REGEX WHAT: the client (bob, verified) sends a line
# through listener NAME and must get no answer but a clean close (a
# close_notify alert, then EOF); the gateway must log backend_tls_failed
# with a detail matching DETAIL-REGEX
refused() {
	local name=$1 re=$2 what=$3 out mark port
	mark=$(logmark)
	port=$(eval echo "\$GW_$name")
	out=$(sclient "$port" bob -msg 2>&1)
	if ! echo "$out" | grep -q 'Alert \[length 0002\], warning close_notify' || echo "$out" | grep -qx gnip; then
		nok "$what: the client did not get a clean close: $(echo "$out" | grep -E 'Alert|gnip|error' | tr '\n' ' ') / $(echo "$out" | tail -3 | tr '\n' ' ')"
		return
	fi
	if wait_since "$mark" "error: conn=.* listener=$name .*backend_tls_failed: $re" &&
		wait_since "$mark" "access .*listener=$name .*reason=backend_tls_failed detail=$re"; then
		ok "$what: client got close_notify and EOF; log: $(logsince "$mark" | grep -o "backend_tls_failed: .*" | head -1)"
	else
		nok "$what: log: $(logsince "$mark" | tail -3)"
	fi
}
refused unknownca "origin certificate refused \(unknown_ca\): self-signed certificate in certificate chain \(certificate of \"localhost\"\)" \
	"origin certificate from an unknown CA"
refused wrongname "origin certificate does not name 'wrong\.example\.com'" "origin certificate for another name"
refused expired "origin certificate refused \(certificate_expired\): certificate has expired \(certificate of \"origin-expired\"\)" \
	"expired origin certificate"
refused nocert "origin sent alert certificate required \(no backend_cert configured\)" \
	"origin asking for a client certificate we do not have (TLS 1.3: after the handshake)"
refused rogue12 "origin sent alert unknown CA \(it refused backend_cert\)" \
	"origin refusing our certificate in a TLS 1.2 handshake"
refused rogue13 "origin sent alert unknown CA \(it refused backend_cert\)" \
	"origin refusing our certificate after a TLS 1.3 handshake"
c=$(metric ktlsgw_backend_tls_failures_total '')
c2=$(metric ktlsgw_connections_closed_total 'reason="backend_tls_failed"')
if [ "$c" = 6 ] && [ "$c2" = 6 ]; then
	ok "ktlsgw_backend_tls_failures_total and connections_closed_total{reason=\"backend_tls_failed\"} count the 6 refusals"
else
	nok "refusal counters: backend_tls_failures_total=$c closed{backend_tls_failed}=$c2 (want 6)"
fi

# ---- client_auth = optional ---------------------------------------------------

mark=$(logmark)
out=$(timeout 60 curl -sS --cacert "$P/ca.pem" "https://127.0.0.1:$GW_optional/anon" 2>&1)
if [ "$out" = "pp2 tls=yes cert=no verify=1 cn=- version=TLSv1.3" ] &&
	wait_since "$mark" 'access .*listener=optional .*subject="-" sha256=- .*reason=done'; then
	ok "optional: curl without a certificate got through; the backend's PROXY v2 says no certificate ($out); logged subject=\"-\""
else
	nok "optional without a certificate: curl: $out; gateway: $(logsince "$mark" | tail -2)"
fi
out=$(timeout 60 curl -sS --cacert "$P/ca.pem" --cert "$P/bob.pem" --key "$P/bob.key" \
	"https://127.0.0.1:$GW_optional/bob" 2>&1)
if [ "$out" = "pp2 tls=yes cert=yes verify=0 cn=bob version=TLSv1.3" ]; then
	ok "optional: a client with a good certificate is verified and named in PROXY v2 ($out)"
else
	nok "optional with bob's certificate: $out"
fi
mark=$(logmark)
out=$(sclient "$GW_optional" stranger 2>&1)
if echo "$out" | grep -q "alert unknown ca" && wait_since "$mark" "reject .*listener=optional .*reason=unknown_ca .*stranger"; then
	ok "optional: a certificate from a rogue CA is still refused with unknown_ca"
else
	nok "optional with a rogue certificate: client: $(echo "$out" | grep -i alert | head -1); $(logsince "$mark" | tail -1)"
fi
mark=$(logmark)
out=$(sclient "$GW_optional" expired 2>&1)
if echo "$out" | grep -q "alert certificate expired" && wait_since "$mark" "reject .*listener=optional .*reason=certificate_expired"; then
	ok "optional: an expired certificate is still refused with certificate_expired"
else
	nok "optional with an expired certificate: $(echo "$out" | grep -i alert | head -1); $(logsince "$mark" | tail -1)"
fi

# ---- client mode: tls = off ------------------------------------------------------

mark=$(logmark)
out=$(timeout 60 curl -sS "http://127.0.0.1:$GW_client/plain" 2>&1)
wait_log 'request="GET /plain' 100 "$NG/access.log"
line=$(grep 'request="GET /plain' "$NG/access.log")
if [ "$out" = "origin saw CN=alice,O=ktlsgw demo" ] && echo "$line" | grep -q 'subject="CN=alice,O=ktlsgw demo" verify=SUCCESS' &&
	wait_since "$mark" 'access .*listener=client .*subject="-" .*tls=- .*path=client-plain,origin-userspace reason=done'; then
	ok "client mode: curl over plain HTTP reached nginx over mTLS as alice: $line"
else
	nok "client mode: curl: $out; nginx: $line; gateway: $(logsince "$mark" | tail -2)"
fi
stop_gw

# ---- revocation cuts both legs ----------------------------------------------------

if [ "$(id -u)" != 0 ]; then
	skip "revocation through a TLS origin needs root (BPF, bpffs)"
	exit 0
fi
PINS=/sys/fs/bpf/ktlsgw-origin-$$
trap 'cleanup; rm -rf "$PINS"' EXIT
{
	GC_STATE=$T/state-rev global_conf "workers = 2
bpf_pin_root = $PINS
revocation_scan_interval = 100ms
admin_socket = $T/admin.sock"
	origin revo "$SOCAT_PORT"
} > "$T/gw-rev.conf"
: > "$T/gw.log"
if ! start_gw "$T/gw-rev.conf"; then
	if grep -q "revocation:" "$T/gw.log"; then
		skip "BPF revocation unavailable here: $(grep -m1 'revocation:' "$T/gw.log")"
		exit 0
	fi
	nok "gateway with revocation starts: $(tail -2 "$T/gw.log")"
	exit 1
fi
legs() { ss -Htn state established "( dport = :$SOCAT_PORT )" | wc -l; }
loadgen echo "$GW_revo" carol --bytes 100000000000 >"$T/carol.out" 2>"$T/carol.err" &
LGP=$!
if ! wait_conn carol 600; then
	nok "carol's stream through the TLS origin did not start: $(cat "$T/carol.err")"
	kill "$LGP" 2>/dev/null
	exit 1
fi
before=$(legs)
out=$("$KTLSGW" revoke add --cert "$P/carol.pem" -c "$T/gw-rev.conf" 2>&1)
wait_gone "$LGP" 300
n=50
while [ "$(legs)" != 0 ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
after=$(legs)
if ! kill -0 "$LGP" 2>/dev/null && grep -qiE "reset|abort" "$T/carol.err" && [ "$before" -ge 1 ] &&
	[ "$after" = 0 ] && wait_log 'access .*listener=revo .*subject="carol".*reason=revoked'; then
	ok "revoke add cut both legs: the client got an RST, the origin leg is gone (established to the origin: $before -> $after)"
else
	kill "$LGP" 2>/dev/null
	nok "revocation through a TLS origin: $out; client: $(head -1 "$T/carol.err"); origin legs $before -> $after; $(grep 'listener=revo' "$T/gw.log" | tail -1)"
fi
stop_gw
