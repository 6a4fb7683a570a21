#!/bin/bash
# kg-device: ktlsgw on its kTLS path and on its userspace path against
# nginx (stream), HAProxy and stunnel, on the machine this runs on, with
# nothing taken from it but the kernel, bash and coreutils: every binary and
# library comes from the bundle (make device-bundle, bench/device/bundle.sh).
#
#   run.sh OUTDIR        (root: modprobe tls, all ports on 127.0.0.1)
#
# Writes OUTDIR/results.jsonl (one line per cell, checks and A/B included),
# table.md (medians, ratios), system.txt, features.json/.txt, run.log, logs/.
#
# What runs, interleaved (rounds outermost; within a round, for each worker
# count and mode, the contenders take turns, in an order rotated per round):
#   contenders  ktlsgw-ktls (ktls = on: a connection that cannot be offloaded
#               is refused; every cell checks the access log's path=),
#               ktlsgw-user (ktls = off), nginx, haproxy, stunnel
#   workers     1, 4, 8: worker processes/threads; with enough cores each
#               proxy is pinned to that many CPUs (taskset), clients and
#               backends to the upper half of the CPUs (stunnel has no worker
#               count: the pinning is its limit)
#   modes       upload, download, echo (bulk, fixed bytes per connection),
#               handshake (full mTLS TLS 1.3 handshakes/s), rr (64-byte
#               request/response, p50/p99)
#   CPU         utime+stime of the proxy's processes (/proc/PID/stat) before
#               and after each cell: CPU s per GiB (bulk), ms per handshake,
#               µs per request
#   A/B         ktls_ab: splice through a pipe, recv+send, IORING_OP_SPLICE
#               on kTLS sockets (and plain TCP as a baseline), io-wq threads
#               counted
#
# Bounded: every step runs under timeout(1); a cell is started only if its
# timeout fits before the deadline (KG_DEVICE_DEADLINE_S, default 440 s),
# cells left over are recorded as skipped; a watchdog ends the run 30 s after
# the deadline. A failed step is recorded as failed and the run goes on; a
# cell that cannot run (no kTLS) says unavailable. No number is estimated.
#
# Settings (environment):
#   KG_DEVICE_QUICK=1        short cells (a smoke test, numbers not comparable)
#   KG_DEVICE_WORKERS        "1 4 8"
#   KG_DEVICE_ROUNDS         2
#   KG_DEVICE_CELL_S         seconds per handshake/rr cell (1.5; quick 0.5)
#   KG_DEVICE_BULK_MIB       MiB per bulk connection (256; quick 32); echo: half
#   KG_DEVICE_AB_S           seconds per A/B cell (1; quick 0.3)
#   KG_DEVICE_DEADLINE_S     440
set -u
D=$(cd "$(dirname "$0")" && pwd)
if [ $# != 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p "$1" || exit 1
O=$(cd "$1" && pwd)
mkdir -p "$O/logs"
SECONDS=0
QUICK=${KG_DEVICE_QUICK:-0}
WORKERS=${KG_DEVICE_WORKERS:-1 4 8}
ROUNDS=${KG_DEVICE_ROUNDS:-2}
if [ "$QUICK" = 1 ]; then
	DUR=${KG_DEVICE_CELL_S:-0.5} BULK_MIB=${KG_DEVICE_BULK_MIB:-32} AB_S=${KG_DEVICE_AB_S:-0.3}
else
	DUR=${KG_DEVICE_CELL_S:-1.5} BULK_MIB=${KG_DEVICE_BULK_MIB:-256} AB_S=${KG_DEVICE_AB_S:-1}
fi
DEADLINE=${KG_DEVICE_DEADLINE_S:-440}
BULK_TO=20				# seconds a bulk cell may take
DUR_TO=$(awk -v d="$DUR" 'BEGIN { printf "%d", d + 15 }')
AB_TO=90				# the whole A/B
CONTENDERS="ktlsgw-ktls ktlsgw-user nginx haproxy stunnel"
MODES="upload download echo handshake rr"
export OPENSSL_CONF=$D/etc/openssl.cnf
export PATH=$PATH:/usr/sbin:/sbin:/usr/bin:/bin
T=$(mktemp -d /tmp/kg-device-run.XXXXXX) || exit 1
RES=$O/results.jsonl
: > "$RES"
: > "$O/run.log"

log() { printf '[%3ds] %s\n' "$SECONDS" "$*" | tee -a "$O/run.log" >&2; }
jstr() { # a JSON string body: no quotes, backslashes or control characters
	printf '%s' "$1" | tr '\000-\037"\\' ' ' | cut -c1-400
}
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN { if (b + 0 == 0) print "null"; else printf f "\n", a / b }'; }
jnum() { # KEY JSON -> the number, or empty
	printf '%s' "$2" | grep -o "\"$1\":-\?[0-9.e+]*" | head -1 | cut -d: -f2
}
record() { echo "$1" >> "$RES"; }

# --- the table: medians over the rounds, from results.jsonl alone ---------------
write_table() {
	awk -v elapsed="$SECONDS" -v rounds="$ROUNDS" -v contenders="$CONTENDERS" -v modes="$MODES" -v workers="$WORKERS" '
	function jget(s, k,   m, pat) {
		pat = "\"" k "\":(\"[^\"]*\"|-?[0-9.eE+]+|true|false|null)"
		if (!match(s, pat))
			return ""
		m = substr(s, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
		gsub(/"/, "", m)
		return m
	}
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		if (n == 0)
			return ""
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
			}
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function fmt(v) {
		if (v == "")
			return ""
		return v + 0 >= 100 ? sprintf("%.0f", v) : v + 0 >= 10 ? sprintf("%.1f", v) : sprintf("%.2f", v)
	}
	function cell(mode, key, w, c,   id) {
		id = mode SUBSEP key SUBSEP w SUBSEP c
		if (id in vals)
			return fmt(median(vals[id])) (nok[mode, w, c] < rounds ? " (" nok[mode, w, c] "/" rounds ")" : "")
		if (unav[mode, w, c])
			return "unavailable"
		if (skip[mode, w, c] && !nfail2[mode, w, c])
			return "skipped"
		if (nfail[mode, w, c])
			return "failed"
		return "—"
	}
	function ratio(mode, key, w, c, lower,   id, best, v, p, m, i) {
		id = mode SUBSEP key SUBSEP w SUBSEP c
		if (!(id in vals))
			return "—"
		v = median(vals[id])
		best = ""
		for (i = 1; i <= npeer; i++) {
			p = mode SUBSEP key SUBSEP w SUBSEP peer[i]
			if (!(p in vals))
				continue
			m = median(vals[p])
			if (best == "" || (lower ? m < best : m > best))
				best = m
		}
		if (best == "" || best + 0 == 0)
			return "—"
		return sprintf("%.2f", v / best)
	}
	$0 ~ /"section":"system"/ { sys = $0 }
	$0 ~ /"section":"ktls"/ { kt = $0 }
	$0 ~ /"section":"plan"/ { plan = $0 }
	$0 ~ /"section":"check"/ { check = check " " jget($0, "contender") "=" (jget($0, "refuses_client_without_cert") == "true" ? "refused" : "SERVED") }
	$0 ~ /"section":"matrix"/ {
		mode = jget($0, "mode"); w = jget($0, "workers"); c = jget($0, "contender")
		ncells++
		if (jget($0, "ok") != "true") {
			if (jget($0, "unavailable") == "true") { unav[mode, w, c] = 1; nunav++ }
			else if (jget($0, "skipped") == "true") { skip[mode, w, c] = 1; nskip++ }
			else { nfail[mode, w, c]++; nfail2[mode, w, c]++; nbad++; bad[nbad] = $0 }
			next
		}
		nok[mode, w, c]++
		for (i = 1; i <= nkeys; i++) {
			split(keys[i], kk, ":")
			if (kk[1] != mode)
				continue
			v = jget($0, kk[2])
			if (v != "" && v != "null")
				vals[mode, kk[2], w, c] = vals[mode, kk[2], w, c] " " v
		}
	}
	$0 ~ /"section":"ab"/ { nab++; ab[nab] = $0 }
	BEGIN {
		nc = split(contenders, con, " "); nw = split(workers, ws, " ")
		npeer = split("nginx haproxy stunnel", peer, " ")
		nkeys = split("upload:mbytes_per_s_sent:MB/s ↑,download:mbytes_per_s_received:MB/s ↑," \
			"echo:mbytes_per_s_received:MB/s ↑,handshake:rate:handshakes/s ↑,rr:p50_us:p50 µs ↓," \
			"rr:p99_us:p99 µs ↓,upload:cpu_s_per_gib:CPU s/GiB ↓,download:cpu_s_per_gib:CPU s/GiB ↓," \
			"echo:cpu_s_per_gib:CPU s/GiB ↓,handshake:cpu_ms_per_handshake:CPU ms/handshake ↓," \
			"rr:cpu_us_per_request:CPU µs/request ↓", keys, ",")
	}
	END {
		split(jget(sys, "uname"), un, " ")
		printf "# ktlsgw on the device — %s\n\n", un[3]
		printf "Machine: %s, %s CPUs (%s threads per core), %s; kernel `%s`.\n", jget(sys, "cpu"), jget(sys, "nproc"), jget(sys, "threads_per_core"), jget(sys, "memory"), jget(sys, "uname")
		printf "OpenSSL: %s (bundled; the system has %s). Bundle: ktlsgw %s.\n", jget(sys, "openssl_bundled"), jget(sys, "openssl_system"), jget(sys, "bundle")
		printf "kTLS: %s (modprobe tls: exit %s %s; tcp_available_ulp: %s).\n", jget(kt, "tls_ulp") == "true" ? "**available**" : "**not available**: every ktlsgw-ktls cell and every kTLS A/B cell is reported unavailable, nothing is estimated", jget(kt, "modprobe_tls_rc"), jget(kt, "modprobe_tls"), jget(kt, "tcp_available_ulp")
		printf "Run: %s rounds, workers {%s}, %s cells planned, %s recorded (%d unavailable, %d skipped for time, %d failed), %d s in all; handshake/rr cells %s s, bulk %s MiB a connection (echo half), A/B %s s a cell%s; proxies pinned to W CPUs: %s.\n", jget(plan, "rounds"), workers, jget(plan, "cells"), ncells + 0, nunav, nskip, nbad, elapsed, jget(plan, "cell_seconds"), jget(plan, "bulk_mib_per_conn"), jget(plan, "ab_seconds"), jget(plan, "quick") == "1" ? " (QUICK mode: a smoke test, not a measurement)" : "", jget(plan, "pinned")
		printf "Client certificate required:%s.\n\n", check
		printf "Each cell: the median over the rounds that succeeded; (k/n): only k of the n rounds gave a value (the others failed or were skipped for time). ktlsgw-ktls: ktls = on, every connection checked on path=ktls in the access log; ktlsgw-user: ktls = off (path=userspace). Peers run their own userspace TLS. Both ktlsgw contenders write an access log line per connection (log_level info, to a file); the peers log nothing. CPU: utime+stime of all the proxy'"'"'s processes during the cell.\n\n"
		printf "| mode | metric | W |"
		for (i = 1; i <= nc; i++) printf " %s |", con[i]
		printf " kTLS / best peer | user / best peer |\n|---|---|---|"
		for (i = 1; i <= nc + 2; i++) printf "---|"
		printf "\n"
		for (k = 1; k <= nkeys; k++) {
			split(keys[k], kk, ":")
			lower = kk[3] ~ /↓/
			for (j = 1; j <= nw; j++) {
				printf "| %s | %s | %s |", kk[1], kk[3], ws[j]
				for (i = 1; i <= nc; i++) printf " %s |", cell(kk[1], kk[2], ws[j], con[i])
				printf " %s | %s |\n", ratio(kk[1], kk[2], ws[j], "ktlsgw-ktls", lower), ratio(kk[1], kk[2], ws[j], "ktlsgw-user", lower)
			}
		}
		printf "\n## Data path A/B (ktls_ab: a relay process between a kTLS socket and a plain one)\n\n"
		printf "rx: the relay reads the kTLS socket (the kernel decrypts); tx: it writes one (the kernel encrypts). CPU: the relay process (wait4), io-wq included; \"outside the thread\": what ran on other threads than the relay'"'"'s own (io-wq workers).\n\n"
		printf "| TLS | dir | method | MB/s | relay CPU s/GiB | CPU s outside the thread | iou-wrk threads (max) |\n|---|---|---|---|---|---|---|\n"
		for (i = 1; i <= nab; i++) {
			s = ab[i]
			if (jget(s, "method") == "")
				printf "| — | — | — | failed: %s | | | |\n", jget(s, "error")
			else if (jget(s, "ok") == "true")
				printf "| %s | %s | %s | %.1f | %.3f | %.3f | %s |\n", jget(s, "tls"), jget(s, "dir"), jget(s, "method"), jget(s, "mbytes_per_s"), jget(s, "cpu_s_per_gib"), jget(s, "relay_cpu_s") - jget(s, "relay_main_thread_cpu_s"), jget(s, "iou_wrk_threads_max")
			else if (jget(s, "unavailable") == "true") {
				printf "| %s | %s | %s | unavailable | | | |\n", jget(s, "tls"), jget(s, "dir"), jget(s, "method")
				if (!abwhy) abwhy = jget(s, "error")
			} else
				printf "| %s | %s | %s | failed: %s | | | |\n", jget(s, "tls"), jget(s, "dir"), jget(s, "method"), jget(s, "error")
		}
		if (abwhy)
			printf "\nUnavailable: %s\n", abwhy
		if (!nab)
			printf "| — | — | — | did not run | | | |\n"
		printf "\n## Failed cells (%d)\n\n", nbad
		for (i = 1; i <= nbad && i <= 40; i++)
			printf "- r%s W=%s %s %s: %s\n", jget(bad[i], "round"), jget(bad[i], "workers"), jget(bad[i], "mode"), jget(bad[i], "contender"), jget(bad[i], "error")
		if (nbad > 40)
			printf "- … %d more in results.jsonl\n", nbad - 40
		printf "\nRaw cells: results.jsonl. Machine: system.txt. Kernel and OpenSSL features: features.txt, bpftool-features.json. Progress: run.log.\n"
	}' "$RES" > "$O/table.md"
}

# --- processes: every one started here is stopped on exit ----------------------
ALLPIDS=""
WATCHDOG=""
declare -A PID PIDS_OF STARTED
stop_all() {
	local p n
	[ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
	for p in $ALLPIDS; do kill "$p" 2>/dev/null; done
	for n in 1 2 3 4 5 6 7 8 9 10; do
		local alive=0
		for p in $ALLPIDS; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.3
	done
	for p in $ALLPIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
}
FINISHED=0
on_exit() {
	stop_all
	[ $FINISHED = 1 ] || log "run interrupted: the table has what ran so far"
	write_table 2>>"$O/run.log"
	for f in "$T"/*.log "$T"/*.err; do
		[ -e "$f" ] && tail -n 40 "$f" > "$O/logs/$(basename "$f")"
	done
	rm -rf "$T"
	log "done in ${SECONDS}s: $O/table.md"
}
trap on_exit EXIT
trap 'exit 143' TERM INT HUP
# the watchdog: past the deadline plus a margin, end the run (its EXIT trap
# still stops everything and writes the table)
(
	for _ in $(seq 1 $((DEADLINE + 30))); do
		sleep 1
		kill -0 $$ 2>/dev/null || exit 0
	done
	kill -TERM $$ 2>/dev/null
) </dev/null >/dev/null 2>&1 &
WATCHDOG=$!

# --- the machine -----------------------------------------------------------------
NCPU=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
[ -n "$MODEL" ] || MODEL=$(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1)
TPC=$(lscpu 2>/dev/null | sed -n 's/^Thread(s) per core: *//p' | head -1)
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
OSSL=$("$D/bin/openssl" version 2>&1 | head -1)
SYS_OSSL=$(command -v openssl >/dev/null && openssl version 2>&1 | head -1 || echo "none")
CLK=$(getconf CLK_TCK 2>/dev/null || echo 100)
ulimit -n "$(ulimit -Hn)" 2>/dev/null
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "uname -a: $(uname -a)"
	echo "cpu: $MODEL"
	echo "nproc: $NCPU, threads per core: ${TPC:-?}, memory: $MEM"
	echo "openssl (bundled): $OSSL"
	echo "openssl (system): $SYS_OSSL"
	echo "os: $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}")"
	echo "bundle: $(sed -n 's/^ktlsgw: //p' "$D/MANIFEST" 2>/dev/null)"
	echo
	lscpu 2>/dev/null
} > "$O/system.txt"
record "{\"section\":\"system\",\"uname\":\"$(jstr "$(uname -a)")\",\"cpu\":\"$(jstr "$MODEL")\",\"nproc\":$NCPU,\"threads_per_core\":\"$(jstr "${TPC:-?}")\",\"memory\":\"$MEM\",\"openssl_bundled\":\"$(jstr "$OSSL")\",\"openssl_system\":\"$(jstr "$SYS_OSSL")\",\"bundle\":\"$(jstr "$(sed -n 's/^ktlsgw: //p' "$D/MANIFEST" 2>/dev/null)")\"}"
log "machine: $MODEL, $NCPU CPUs, $(uname -r)"

# --- kTLS ------------------------------------------------------------------------
if command -v modprobe >/dev/null; then
	MODPROBE=$(timeout 20 modprobe tls 2>&1 </dev/null); MODPROBE_RC=$?
else
	MODPROBE="modprobe not found"; MODPROBE_RC=127
fi
ULP=$(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null)
timeout 20 "$D/bin/ktlsgw" -j features > "$O/features.json" 2>&1 </dev/null
timeout 20 "$D/bin/ktlsgw" features > "$O/features.txt" 2>&1 </dev/null
timeout 20 "$D/bin/bpftool" -j feature probe kernel > "$O/bpftool-features.json" 2>/dev/null </dev/null ||
	echo '{"error":"bpftool feature probe failed"}' > "$O/bpftool-features.json"
KTLS=0
grep -q '"tls_ulp":true' "$O/features.json" && KTLS=1
record "{\"section\":\"ktls\",\"modprobe_tls_rc\":$MODPROBE_RC,\"modprobe_tls\":\"$(jstr "$MODPROBE")\",\"tcp_available_ulp\":\"$(jstr "$ULP")\",\"tls_ulp\":$([ $KTLS = 1 ] && echo true || echo false)}"
if [ $KTLS = 1 ]; then
	log "kTLS: tls ULP present (modprobe tls: rc $MODPROBE_RC)"
else
	log "kTLS: NOT available (modprobe tls: rc $MODPROBE_RC $MODPROBE; ULPs: $ULP): kTLS cells are reported unavailable"
fi

# --- CPUs: proxy on 0..W-1, clients and backends on the upper half ------------------
MAXW=1
for w in $WORKERS; do [ "$w" -gt $MAXW ] && MAXW=$w; done
if [ "$NCPU" -ge $((2 * MAXW)) ]; then
	PIN=1
	CLIENT_CPUS="$((NCPU / 2))-$((NCPU - 1))"
	TSC="$D/bin/taskset -c $CLIENT_CPUS"
else
	PIN=0
	TSC=""
fi
HALF=$((NCPU / 2)); [ $HALF -ge 1 ] || HALF=1
eff() { # W -> the workers that can really run at once: min(W, cores for the proxy)
	if [ $PIN = 1 ] || [ "$1" -le $HALF ]; then echo "$1"; else echo $HALF; fi
}
tsp() { [ $PIN = 1 ] && echo "$D/bin/taskset -c 0-$(($1 - 1))"; }
log "pinning: $([ $PIN = 1 ] && echo "proxy on CPUs 0..W-1, clients and backends on $CLIENT_CPUS" || echo "off ($NCPU CPUs < 2 x $MAXW workers)")"

# --- PKI, ports, backends ------------------------------------------------------------
. "$D/peers.sh"
P=$T/pki
cp -r "$D/pki" "$P"
if ! "$D/bin/openssl" verify -CAfile "$P/ca.pem" "$P/server.pem" >/dev/null 2>&1; then
	# the bundle's certificates are not valid at this machine's clock
	log "PKI: the bundled certificates do not verify here ($(date -u)): generating a new test PKI"
	rm -rf "$P"
	timeout 60 "$D/bin/ktlsgw" pki init --test "$P" >/dev/null 2>&1 </dev/null
	cat "$P/server.key" "$P/server.pem" > "$P/server-combined.pem"
fi
CRED="--cert $P/alice.pem --key $P/alice.key --cacert $P/ca.pem"
S=$BULK_MIB
start_backend() { # NAME MODE [ARGS]
	local name=$1 mode=$2 n=200
	shift 2
	$TSC "$D/bin/kg-backend" --listen 127.0.0.1:0 --mode "$mode" --port-file "$T/$name.port" "$@" \
		</dev/null >/dev/null 2>"$T/backend-$name.err" &
	ALLPIDS="$ALLPIDS $!"
	while [ ! -s "$T/$name.port" ] && [ $n -gt 0 ]; do sleep 0.05; n=$((n - 1)); done
	[ -s "$T/$name.port" ]
}
if ! start_backend sink sink --bytes "${S}M" || ! start_backend source source --bytes "${S}M" ||
	! start_backend echo echo; then
	log "FATAL: kg-backend did not start: $(tail -c 300 "$T"/backend-*.err | tr '\n' ' ')"
	record "{\"section\":\"fatal\",\"error\":\"kg-backend did not start\"}"
	exit 1
fi
BSINK=$(cat "$T/sink.port"); BSRC=$(cat "$T/source.port"); BECHO=$(cat "$T/echo.port")

# --- the A/B first (short, and independent of the proxies) ----------------------------
log "A/B: splice / recv+send / IORING_OP_SPLICE, ${AB_S}s a cell"
AB_OUT=$(timeout $AB_TO "$D/bin/ktls_ab" --seconds "$AB_S" 2>"$T/ktls_ab.err" </dev/null); AB_RC=$?
printf '%s\n' "$AB_OUT" | grep '^{' | sed 's/^{/{"section":"ab",/' >> "$RES"
[ $AB_RC = 0 ] || record "{\"section\":\"ab\",\"ok\":false,\"exit\":$AB_RC,\"error\":\"ktls_ab $([ $AB_RC = 124 ] && echo "timed out after ${AB_TO}s" || echo "exit $AB_RC"): $(jstr "$(tail -c 300 "$T/ktls_ab.err")")\"}"
log "A/B: $(printf '%s\n' "$AB_OUT" | grep -c '"ok":true') cells ran, $(printf '%s\n' "$AB_OUT" | grep -c '"unavailable":true') unavailable (rc $AB_RC)"

# --- the contenders: one instance per contender and worker count, all started now ---------
declare -A FRONT
NGX_LOAD="load_module $D/lib/nginx/ngx_stream_module.so;"
NGX_EXTRA=""
[ "$(id -u)" = 0 ] && NGX_EXTRA="user root;"	# no lookup of "nobody" in the target's NSS
children() { # PID -> its child processes (nginx workers)
	local f line
	for f in /proc/[0-9]*/stat; do
		{ read -r line < "$f"; } 2>/dev/null || continue
		line=${line##*) }
		set -- $line
		[ "${2:-}" = "$PPID_WANTED" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
	done
}
start_instance() { # CONTENDER W
	local c=$1 w=$2 key="$1-w$2" be n=200 ts
	ts=$(tsp "$w")
	for be in sink source echo; do port FRONT[$key.$be] || return 1; done
	case $c in
	ktlsgw-ktls)
		# info: the access log, whose path= tells what was offloaded
		peer_conf_ktlsgw "$key" "$w" on info > "$T/$key.conf"
		$ts "$D/bin/ktlsgw" run -c "$T/$key.conf" </dev/null >/dev/null 2>"$T/$key.log" & ;;
	ktlsgw-user)
		peer_conf_ktlsgw "$key" "$w" off info > "$T/$key.conf"
		$ts "$D/bin/ktlsgw" run -c "$T/$key.conf" </dev/null >/dev/null 2>"$T/$key.log" & ;;
	nginx)
		peer_conf_nginx "$key" "$w" > "$T/$key.conf"
		$ts "$D/bin/nginx" -p "$T/" -c "$T/$key.conf" -e "$T/$key.err" </dev/null >/dev/null 2>&1 & ;;
	haproxy)
		peer_conf_haproxy "$key" "$w" > "$T/$key.conf"
		$ts "$D/bin/haproxy" -f "$T/$key.conf" -db </dev/null >/dev/null 2>"$T/$key.log" & ;;
	stunnel)
		peer_conf_stunnel "$key" > "$T/$key.conf"
		$ts "$D/bin/stunnel" "$T/$key.conf" </dev/null >/dev/null 2>"$T/$key.err" & ;;
	esac
	PID[$key]=$!
	ALLPIDS="$ALLPIDS $!"
	while ! port_busy "${FRONT[$key.echo]}" && kill -0 "${PID[$key]}" 2>/dev/null && [ $n -gt 0 ]; do
		sleep 0.1; n=$((n - 1)); done
	port_busy "${FRONT[$key.echo]}" || port_busy "${FRONT[$key.echo]}" || return 1
	sleep 0.2
	PPID_WANTED=${PID[$key]}
	PIDS_OF[$key]="${PID[$key]} $(children | tr '\n' ' ')"
	ALLPIDS="$ALLPIDS ${PIDS_OF[$key]}"
	return 0
}
for w in $WORKERS; do
	for c in $CONTENDERS; do
		key="$c-w$w"
		if [ $c = ktlsgw-ktls ] && [ $KTLS = 0 ]; then
			STARTED[$key]="unavailable: no kTLS in this kernel (tls ULP missing)"
			continue
		fi
		if start_instance "$c" "$w"; then
			STARTED[$key]=ok
		else
			STARTED[$key]="did not start: $(tail -q -n 3 "$T/$key".{log,err} 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
			log "WARNING: $key ${STARTED[$key]}"
		fi
	done
done
log "instances: $(for k in "${!STARTED[@]}"; do [ "${STARTED[$k]}" = ok ] && echo "$k"; done | sort | tr '\n' ' ')"

# Each peer must demand a client certificate (checked once per contender).
for c in $CONTENDERS; do
	key="$c-w$(set -- $WORKERS; echo "$1")"
	[ "${STARTED[$key]}" = ok ] || continue
	got=$( (echo certcheck; sleep 0.5) | timeout 5 "$D/bin/openssl" s_client -quiet \
		-connect "127.0.0.1:${FRONT[$key.echo]}" -CAfile "$P/ca.pem" 2>/dev/null)
	refused=true
	case $got in *certcheck*) refused=false; log "WARNING: $c served a client without a certificate" ;; esac
	record "{\"section\":\"check\",\"contender\":\"$c\",\"refuses_client_without_cert\":$refused}"
done

# --- the cells ---------------------------------------------------------------------
cpu_ticks() { # PID... -> utime + stime of these processes, in clock ticks
	local s=0 p line
	for p in "$@"; do
		{ read -r line < "/proc/$p/stat"; } 2>/dev/null || continue
		line=${line##*) }
		set -- $line
		s=$((s + ${12} + ${13}))
	done
	echo $s
}
paths_since() { # LOGFILE OFFSET -> JSON object of path= counts in the access lines after OFFSET
	tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -o 'path=[a-z-]*' | sort | uniq -c |
		awk 'BEGIN { printf "{" } { sub(/path=/, "", $2); printf "%s\"%s\":%d", (n++ ? "," : ""), $2, $1 } END { printf "}" }'
}
NCELLS=0
run_cell() { # ROUND W CONTENDER MODE -> one line in results.jsonl
	local r=$1 w=$2 c=$3 mode=$4 key="$3-w$2" e be conns args to res rc err
	local head cpu0 cpu1 off0=0 t0 t1 paths="" extra="" ok=true
	e=$(eff "$w")
	case $mode in
	upload) be=sink conns=$((2 * e)) args="upload --no-half-close --bytes ${S}M" to=$BULK_TO ;;
	download) be=source conns=$((2 * e)) args="download --no-half-close --bytes ${S}M" to=$BULK_TO ;;
	echo) be=echo conns=$((2 * e)) args="echo --no-half-close --bytes $((S / 2))M" to=$BULK_TO ;;
	handshake) be=echo conns=$((4 * e)) args="handshake --tls 1.3 --duration $DUR" to=$DUR_TO ;;
	rr) be=echo conns=8 args="rr --duration $DUR" to=$DUR_TO ;;
	esac
	head="\"section\":\"matrix\",\"round\":$r,\"workers\":$w,\"contender\":\"$c\",\"mode\":\"$mode\",\"conns\":$conns,\"pinned\":$([ $PIN = 1 ] && echo true || echo false)"
	NCELLS=$((NCELLS + 1))
	if [ "${STARTED[$key]}" != ok ]; then
		case ${STARTED[$key]} in unavailable*) extra=",\"unavailable\":true" ;; esac
		record "{$head,\"ok\":false$extra,\"error\":\"$(jstr "${STARTED[$key]}")\"}"
		return
	fi
	if [ $((SECONDS + to)) -gt "$DEADLINE" ]; then
		record "{$head,\"ok\":false,\"skipped\":true,\"error\":\"time budget: not started (${SECONDS}s elapsed, deadline ${DEADLINE}s)\"}"
		return
	fi
	case $c in ktlsgw-*) off0=$(stat -c %s "$T/$key.log" 2>/dev/null || echo 0) ;; esac
	cpu0=$(cpu_ticks ${PIDS_OF[$key]})
	t0=$SECONDS
	# shellcheck disable=SC2086
	res=$(timeout "$to" $TSC "$D/bin/kg-loadgen" $args -c "$conns" \
		--connect "127.0.0.1:${FRONT[$key.$be]}" $CRED 2>"$T/lg.err" </dev/null); rc=$?
	case $c in ktlsgw-*) sleep 0.15 ;; esac	# the access lines of the last closes
	cpu1=$(cpu_ticks ${PIDS_OF[$key]})
	if [ $rc != 0 ] || ! printf '%s' "$res" | grep -q '"ok":true'; then
		err=$(tail -n 1 "$T/lg.err" | cut -c1-300)
		[ $rc = 124 ] && err="timed out after ${to}s; $err"
		kill -0 "${PID[$key]}" 2>/dev/null || err="the proxy exited; $err"
		record "{$head,\"ok\":false,\"exit\":$rc,\"error\":\"$(jstr "$err")\"}"
		log "r$r w$w $mode $c: FAILED ($(jstr "$err" | cut -c1-120))"
		return
	fi
	local cpu_s bytes
	cpu_s=$(fdiv $((cpu1 - cpu0)) "$CLK" %.2f)
	case $mode in
	upload|download|echo)
		bytes=$(( $(jnum bytes_sent "$res") + $(jnum bytes_received "$res") ))
		extra=",\"gib\":$(fdiv "$bytes" 1073741824),\"cpu_s_per_gib\":$(fdiv "$cpu_s" "$(fdiv "$bytes" 1073741824 %.6f)")"
		;;
	handshake) extra=",\"cpu_ms_per_handshake\":$(awk -v h="$(jnum handshakes "$res")" -v c="$cpu_s" 'BEGIN { if (h > 0) printf "%.3f", c * 1000 / h; else print "null" }')" ;;
	rr) extra=",\"cpu_us_per_request\":$(awk -v q="$(jnum requests "$res")" -v c="$cpu_s" 'BEGIN { if (q > 0) printf "%.2f", c * 1e6 / q; else print "null" }')" ;;
	esac
	case $c in
	ktlsgw-*)
		paths=$(paths_since "$T/$key.log" "$off0")
		local want=userspace n_all n_want
		[ $c = ktlsgw-ktls ] && want=ktls
		n_all=$(printf '%s' "$paths" | grep -o ':[0-9]*' | tr -d : | awk '{ s += $1 } END { print s + 0 }')
		n_want=$(printf '%s' "$paths" | grep -o "\"$want\":[0-9]*" | cut -d: -f2)
		extra="$extra,\"paths\":$paths"
		if [ "$n_all" = 0 ] || [ "${n_want:-0}" != "$n_all" ]; then
			ok=false
			extra="$extra,\"error\":\"access log: expected every connection on path=$want, got $(jstr "$paths")\""
		fi
		;;
	esac
	record "{$head,\"ok\":$ok,\"proxy_cpu_s\":$cpu_s$extra,\"loadgen_seconds\":$((SECONDS - t0)),\"run\":$res}"
	log "r$r w$w $mode $c: $(printf '%s' "$res" | grep -o '"\(mbytes_per_s\|rate\|p99_us\)":[0-9.]*' | tr '\n' ' ')cpu ${cpu_s}s$([ $ok = true ] || echo " NOT ON THE EXPECTED PATH: $paths")"
}

# The budget: duration cells last DUR each; bulk cells move a fixed volume
# (their time depends on the path's speed, so the deadline is what bounds them).
NC=$(echo $CONTENDERS | wc -w)
NPLAN=$(( ROUNDS * $(echo $WORKERS | wc -w) * $(echo $MODES | wc -w) * NC ))
NDUR=$(( ROUNDS * $(echo $WORKERS | wc -w) * 2 * NC ))
BULK_GIB=0
for w in $WORKERS; do BULK_GIB=$((BULK_GIB + ROUNDS * NC * 3 * 2 * $(eff "$w") * S)); done
BULK_GIB=$(fdiv "$BULK_GIB" 1024 %.1f)
log "cells: $NPLAN ($ROUNDS rounds x workers {$WORKERS} x $(echo $MODES | wc -w) modes x $NC contenders): $NDUR handshake/rr cells x ${DUR}s = $(awk -v n="$NDUR" -v d="$DUR" 'BEGIN { printf "%.0f", n * d }')s of load; $((NPLAN - NDUR)) bulk cells moving ${BULK_GIB} GiB in all (${S} MiB a connection, at most ${BULK_TO}s a cell); deadline ${DEADLINE}s from the start, ${SECONDS}s gone"
record "{\"section\":\"plan\",\"cells\":$NPLAN,\"duration_cells\":$NDUR,\"bulk_cells\":$((NPLAN - NDUR)),\"bulk_gib_total\":$BULK_GIB,\"setup_s\":$SECONDS,\"rounds\":$ROUNDS,\"workers\":\"$WORKERS\",\"cell_seconds\":$DUR,\"bulk_mib_per_conn\":$S,\"ab_seconds\":$AB_S,\"deadline_s\":$DEADLINE,\"quick\":$QUICK,\"pinned\":$([ $PIN = 1 ] && echo true || echo false)}"
for r in $(seq 1 "$ROUNDS"); do
	# contenders take turns; the first of a round is a different one each round
	set -- $CONTENDERS
	k=$(( (r - 1) % $# ))
	order=$(for i in $(seq 0 $(($# - 1))); do j=$(( (i + k) % $# + 1 )); echo "${!j}"; done | tr '\n' ' ')
	for w in $WORKERS; do
		for mode in $MODES; do
			for c in $order; do run_cell "$r" "$w" "$c" "$mode"; done
		done
	done
done
FINISHED=1
log "cells done: $NCELLS"
# (the EXIT trap stops everything and writes the table)
