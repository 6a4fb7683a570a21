#!/bin/bash
# Gateway core: real TLS clients (openssl s_client, curl, gnutls-cli) through
# the gateway to real backends; every rejection gets its alert and the
# backend never sees a rejected client; bulk transfers arrive intact.
set -u
. "$(dirname "$0")/lib.sh"

make_pki
cat "$P/client-ca.pem" "$P/rsa-client-ca.pem" > "$P/both-client-ca.pem"
cat "$P/ca.pem" "$P/rsa-ca.pem" > "$P/both-roots.pem"

start_backend echo echo
start_backend strict echo
start_backend http http

{
	global_conf "workers = 2
bpf_pin_root = /sys/fs/bpf/ktlsgw-test-core-$$
revocation = best-effort"
	LC_CLIENT_CA=$P/both-client-ca.pem LC_TRUST=$P/both-roots.pem listener_conf ec "$echo_PORT"
	LC_CERT=$P/rsa-server.pem LC_KEY=$P/rsa-server.key LC_CLIENT_CA=$P/both-client-ca.pem \
		LC_TRUST=$P/both-roots.pem listener_conf rsa "$echo_PORT"
	listener_conf http "$http_PORT"
	echo "; only the demo intermediate may issue clients; its root is the anchor"
	listener_conf strict "$strict_PORT" "handshake_timeout = 1s"
	LC_CLIENT_CA=$P/deep-client-ca.pem LC_TRUST=$P/deep-root.pem listener_conf deep3 "$strict_PORT" "verify_depth = 3"
	LC_CLIENT_CA=$P/deep-client-ca.pem LC_TRUST=$P/deep-root.pem listener_conf deep4 "$echo_PORT" "verify_depth = 4"
	listener_conf down 1
} > "$T/gw.conf"
start_gw "$T/gw.conf" || { nok "gateway starts"; exit 1; }
ok "gateway starts with 7 listeners"

# --- good clients: echo through the gateway ------------------------------
# strict: the server certificate must verify for "localhost"
V="-servername localhost -verify_return_error"

for ver in -tls1_2 -tls1_3; do
	for who in alice bob rsa-client; do
		for srv in ec rsa; do
			port=$(eval echo "\$GW_$srv")
			out=$(CA=$P/both-roots.pem sclient "$port" "$who" $V $ver)
			if echo "$out" | grep -q "^ping\$"; then
				ok "s_client $ver client=$who server=$srv: echo through the gateway"
			else
				nok "s_client $ver client=$who server=$srv: $(echo "$out" | tail -3 | tr '\n' ' ')"
			fi
		done
	done
done

for ver in 1.2 1.3; do
	for who in alice bob; do
		out=$(timeout 10 curl -sS --tlsv$ver --tls-max $ver --cert "$P/$who.pem" --key "$P/$who.key" \
			--cacert "$P/ca.pem" "https://localhost:$GW_http/" 2>&1)
		if [ "$out" = "hello from the ktlsgw demo backend" ]; then
			ok "curl TLS $ver client=$who: HTTP response through the gateway"
		else
			nok "curl TLS $ver client=$who: $out"
		fi
	done
done

if command -v gnutls-cli >/dev/null; then
	for prio in "NORMAL:-VERS-ALL:+VERS-TLS1.2" "NORMAL:-VERS-ALL:+VERS-TLS1.3"; do
		for who in alice bob; do
			for srv in ec rsa; do
				port=$(eval echo "\$GW_$srv")
				out=$( (printf 'gnutls-%s\n' "$port"; sleep 0.7) | timeout 10 gnutls-cli \
					--x509cafile "$P/both-roots.pem" --x509certfile "$P/$who.pem" \
					--x509keyfile "$P/$who.key" --priority "$prio" -p "$port" localhost 2>&1)
				if echo "$out" | grep -q "^gnutls-$port"; then
					ok "gnutls-cli ${prio##*+} client=$who server=$srv: echo"
				else
					nok "gnutls-cli ${prio##*+} client=$who server=$srv: $(echo "$out" | grep -i -m3 'error\|alert\|fail' | tr '\n' ' ')"
				fi
			done
		done
	done
else
	skip "gnutls-cli not installed (apt-get install gnutls-bin)"
fi

# --- rejections: the alert the client sees, a log line, no backend --------
reject_case() { # NAME PORT CERT TLSFLAG EXPECTED_ALERT_REGEX LOG_REASON
	local name=$1 port=$2 cert=$3 ver=$4 want=$5 reason=$6 out
	local before
	before=$(wc -l < "$T/gw.log")
	out=$(sclient "$port" "$cert" $V "$ver")
	if echo "$out" | grep -qiE "$want"; then
		# only the log lines this attempt produced
		if tail -n +$((before + 1)) "$T/gw.log" | grep -q "reject .*reason=$reason"; then
			ok "reject $name $ver: client sees '$want', log says reason=$reason"
		else
			nok "reject $name $ver: no 'reason=$reason' line in the gateway log"
		fi
	else
		nok "reject $name $ver: expected '$want', got: $(echo "$out" | grep -iE 'alert|error' | head -2 | tr '\n' ' ')"
	fi
}

reject_case "no certificate" "$GW_strict" "" -tls1_3 "alert certificate required" no_certificate
reject_case "no certificate" "$GW_strict" "" -tls1_2 "alert handshake failure" no_certificate
for ver in -tls1_2 -tls1_3; do
	reject_case "unrelated CA" "$GW_strict" "$P/stranger.pem" $ver "alert unknown ca" unknown_ca
	reject_case "signed by the root, not the client CA" "$GW_strict" "$P/rootsigned.pem" $ver "alert unknown ca" unknown_ca
	reject_case "self-signed" "$GW_strict" "$P/selfsigned.pem" $ver "alert unknown ca" unknown_ca
	reject_case "expired" "$GW_strict" "$P/expired.pem" $ver "alert certificate expired" certificate_expired
	reject_case "not yet valid" "$GW_strict" "$P/notyet.pem" $ver "alert bad certificate" bad_certificate
	reject_case "EKU serverAuth only" "$GW_strict" "$P/serverauth.pem" $ver "alert unsupported certificate" unsupported_certificate
	reject_case "RSA chain from another CA" "$GW_strict" "$P/rsa-client.pem" $ver "alert unknown ca" unknown_ca
	reject_case "chain deeper than verify_depth" "$GW_deep3" "$P/deep.pem" $ver "alert unknown ca" unknown_ca
done

fp_stranger=$(fp "$P/stranger.pem")
if grep "reject .*reason=unknown_ca" "$T/gw.log" | grep -q "sha256=$fp_stranger" &&
   grep "reject .*sha256=$fp_stranger" "$T/gw.log" | grep -q 'subject="CN=stranger'; then
	ok "rejection log line names client, subject, issuer, serial and fingerprint"
else
	nok "rejection log line lacks the certificate details"
fi
out=$(sclient "$GW_deep4" deep $V -tls1_3)
echo "$out" | grep -q "^ping\$" && ok "4 intermediates pass with verify_depth = 4" ||
	nok "deep chain with verify_depth = 4: $(echo "$out" | tail -2 | tr '\n' ' ')"

# Handshake timeout: a client that never speaks is cut after handshake_timeout.
start=$(date +%s%N)
timeout 8 bash -c "exec 3<>/dev/tcp/127.0.0.1/$GW_strict; cat <&3 >/dev/null" 2>/dev/null
el=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $el -ge 900 ] && [ $el -lt 5000 ] && grep -q "reason=handshake_timeout" "$T/gw.log"; then
	ok "silent client closed after handshake_timeout (${el} ms)"
else
	nok "handshake_timeout: closed after ${el} ms"
fi

n=$(backend_count strict)
[ "$n" = 0 ] && ok "backend of the strict listener never saw a connection" ||
	nok "backend of the strict listener saw $n connections"

# --- backend down: the client gets a clean close, the log says why --------
out=$(sclient "$GW_down" alice $V -tls1_3)
if grep -q "listener=down .*connect failed: Connection refused" "$T/gw.log" &&
   grep -q "listener=down .*reason=backend_connect_failed" "$T/gw.log"; then
	ok "backend refusing: client closed cleanly, logged with the backend address"
else
	nok "backend refusing: $(grep 'listener=down' "$T/gw.log" | tail -2)"
fi

# --- access log ------------------------------------------------------------
fp_alice=$(fp "$P/alice.pem")
if grep -E "access .*listener=ec .*subject=\"alice\" sha256=$fp_alice tls=1\.[23] cipher=[A-Z0-9_-]+ bytes_in=[0-9]+ bytes_out=[0-9]+ duration_ms=[0-9]+ path=userspace reason=done" "$T/gw.log" >/dev/null; then
	ok "access log: client, subject, fingerprint, bytes, duration, path, reason"
else
	nok "access log line format: $(grep access "$T/gw.log" | head -1)"
fi

# --- bulk: 1 GiB each way over many connections, checksummed --------------
res=$(loadgen echo "$GW_ec" alice -c 16 --bytes $((64 * 1024 * 1024)) 2>"$T/lg.err")
if echo "$res" | grep -q '"ok":true' && echo "$res" | grep -q "\"bytes_received\":$((1024 * 1024 * 1024))"; then
	ok "1 GiB each way over 16 connections arrives intact (SHA-256 compared): $res"
else
	nok "bulk echo: $res $(head -5 "$T/lg.err")"
fi
res=$(CA=$P/both-roots.pem LG_TIMEOUT=300 loadgen echo "$GW_rsa" bob -c 64 --bytes $((1024 * 1024)) --tls 1.2 2>"$T/lg.err")
echo "$res" | grep -q '"ok":true' && ok "64 concurrent TLS 1.2 RSA connections, 1 MiB each, intact" ||
	nok "64 connections: $res $(head -3 "$T/lg.err")"

# --- a private key readable by others is refused ----------------------------
cp "$P/server.key" "$T/open.key"; chmod 644 "$T/open.key"
sed "s|^key = .*server.key|key = $T/open.key|" "$T/gw.conf" > "$T/open.conf"
"$KTLSGW" run -c "$T/open.conf" --check 2>"$T/open.err"
rc=$?
if [ $rc = 2 ] && grep -q "open.key is readable by other users (mode 0644); run \`chmod 600" "$T/open.err"; then
	ok "a world-readable private key is refused with FILE:LINE and the chmod to run"
else
	nok "world-readable key: rc=$rc $(cat "$T/open.err")"
fi

# --- exit status for a bad config -----------------------------------------
printf '[listener x]\nlisten = 127.0.0.1:0\ncolour = red\n' > "$T/bad.conf"
"$KTLSGW" run -c "$T/bad.conf" 2>"$T/bad.err"
rc=$?
if [ $rc = 2 ] && grep -q "bad.conf:3: unknown key 'colour'" "$T/bad.err"; then
	ok "bad config: exit 2, FILE:LINE named"
else
	nok "bad config: rc=$rc $(cat "$T/bad.err")"
fi

stop_gw
if grep -q "stopped" "$T/gw.log"; then ok "SIGTERM stops the gateway"; else nok "SIGTERM"; fi
rm -rf "/sys/fs/bpf/ktlsgw-test-core-$$"
echo "# data path on this host: $(grep -q tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && echo 'kernel has the tls ULP' || echo 'userspace TLS (this kernel has no kTLS)')"
[ "$FAIL" = 0 ] || { echo "--- gateway log tail"; tail -30 "$T/gw.log"; }
rm -rf "$T"
