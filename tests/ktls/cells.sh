#!/bin/bash
# kTLS cells: every TLS version × cipher carries data both ways through the
# gateway intact; the offload is confirmed by /proc/net/tls_stat and by the
# gateway's access log (path=ktls). Where the kernel has no tls ULP the same
# cells run on the userspace path, and the suite says so in one line.
set -u
. "$(dirname "$0")/../integration/lib.sh"

make_pki
start_backend echo echo
ktls_mode "kTLS suite"
BYTES=${KG_KTLS_BYTES:-4194304}

cell() { # VERSION CIPHER(openssl name for 1.2 / suite for 1.3) LABEL
	local ver=$1 cipher=$2 label=$3 cfg=$T/cell.conf key
	if [ "$ver" = 1.3 ]; then key="ciphersuites = $cipher"; else key="ciphers = $cipher"; fi
	{
		global_conf "workers = 1
revocation = off"
		listener_conf cell "$echo_PORT" "tls_min = $ver
tls_max = $ver
$key
ktls = $KT"
	} > "$cfg"
	: > "$T/gw.log"
	start_gw "$cfg" || { nok "$label: gateway start"; return; }
	local tx0 rx0 tx1 rx1 res
	tx0=$(tls_stat TlsTxSw); rx0=$(tls_stat TlsRxSw)
	res=$(LG_TIMEOUT=300 loadgen echo "$GW_cell" alice --tls "$ver" \
		$([ "$ver" = 1.3 ] && echo --ciphersuites "$cipher" || echo --ciphers "$cipher") \
		-c 2 --bytes "$BYTES" 2>"$T/lg.err")
	tx1=$(tls_stat TlsTxSw); rx1=$(tls_stat TlsRxSw)
	stop_gw
	if ! echo "$res" | grep -q '"ok":true'; then
		nok "$label: data through the gateway: $res $(head -2 "$T/lg.err")"
		tail -5 "$T/gw.log"
		return
	fi
	if [ $MODE = ktls ]; then
		local n
		n=$(grep -c "access .*path=ktls reason=done" "$T/gw.log")
		if [ "$n" = 2 ] && [ $((tx1 - tx0)) -ge 2 ] && [ $((rx1 - rx0)) -ge 2 ]; then
			ok "$label: ${BYTES} B each way on 2 connections intact, offloaded TX+RX (tls_stat TlsTxSw +$((tx1 - tx0)), TlsRxSw +$((rx1 - rx0)); access log path=ktls)"
		else
			nok "$label: not offloaded both ways: path lines=$n TlsTxSw +$((tx1 - tx0)) TlsRxSw +$((rx1 - rx0)); $(grep -o 'path=[a-z-]*' "$T/gw.log" | sort | uniq -c | tr '\n' ' ')"
		fi
	else
		grep -q "access .*path=userspace reason=done" "$T/gw.log" &&
			ok "$label: intact on the userspace path (no kTLS here)" ||
			nok "$label: no access line with path=userspace"
	fi
}

cell 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 "TLS 1.2 AES-128-GCM"
cell 1.2 ECDHE-ECDSA-AES256-GCM-SHA384 "TLS 1.2 AES-256-GCM"
cell 1.2 ECDHE-ECDSA-CHACHA20-POLY1305 "TLS 1.2 CHACHA20-POLY1305"
cell 1.3 TLS_AES_128_GCM_SHA256 "TLS 1.3 AES-128-GCM"
cell 1.3 TLS_AES_256_GCM_SHA384 "TLS 1.3 AES-256-GCM"
cell 1.3 TLS_CHACHA20_POLY1305_SHA256 "TLS 1.3 CHACHA20-POLY1305"
rm -rf "$T"
[ "$FAIL" -eq 0 ]
