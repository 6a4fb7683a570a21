#!/bin/bash
# Soak: mixed load on one gateway for SECONDS — full handshakes, bulk echo,
# idle holders, revocations that cut live connections (and un-revocations),
# SIGHUP reloads and `conn kill` — under AddressSanitizer+UBSan (MODE=asan)
# or valgrind memcheck (MODE=valgrind). Afterwards the descriptor count and
# RSS must be back to their level after warm-up, the loads must only fail
# where a cut or kill was aimed at them, and the sanitizer or valgrind must
# report zero errors and zero leaks at exit.
#
#   tests/soak/soak.sh MODE SECONDS [BUILD]   (make soak runs both modes)
set -u
MODE=${1:-asan}
SECS=${2:-600}
B=${3:-build}
cd "$(dirname "$0")/../.." || exit 1
T=$(mktemp -d /tmp/kg-soak.XXXXXX)
. tests/integration/lib.sh
PINS=/sys/fs/bpf/ktlsgw-soak-$$
fail=0
say() { echo "soak[$MODE]: $*"; }
bad() { echo "not ok - soak[$MODE]: $*"; fail=1; }
trap 'cleanup; rm -rf "$PINS"' EXIT

case $MODE in
asan)
	GB=$B/asan
	# the lock: test_reload.sh builds the same ASan binary (make -j test)
	flock "$B/asan.lock" make -s B="$GB" CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		"$GB/ktlsgw" || { bad "ASan build failed"; exit 1; }
	# a bounded quarantine so RSS says something (ASan keeps freed memory
	# there to catch use-after-free); the RSS bound below allows for it
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23:log_path=$T/asan:quarantine_size_mb=16
	SLACK=$((36 * 1024))
	HS_TIMEOUT=5s
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$T/ubsan
	# the full binary itself (build/ktlsgw is the libc-only front that execs it)
	RUN=("$GB/libexec/ktlsgw")
	;;
valgrind)
	command -v valgrind >/dev/null || { bad "valgrind missing (sh tests/deps.sh)"; exit 1; }
	SLACK=4096
	# under valgrind on a busy machine a handshake can take 20 s and more:
	# the load must not be cut by the gateway's own handshake deadline
	HS_TIMEOUT=120s
	# workers block in poll(2) rather than io_uring_enter(2), which valgrind
	# does not know to be blocking (it would stall every other thread)
	export KTLSGW_WAIT_POLL=1
	RUN=(valgrind --quiet --error-exitcode=23 --suppressions=tests/soak/valgrind.supp --leak-check=full --show-leak-kinds=definite,indirect
	     --errors-for-leak-kinds=definite,indirect --track-fds=no --log-file="$T/valgrind.%p" "$B/libexec/ktlsgw")
	;;
*)
	echo "usage: $0 asan|valgrind SECONDS [BUILD]" >&2
	exit 2
	;;
esac
make -s B="$B" all || { bad "build failed"; exit 1; }
make_pki
start_backend echo echo || { bad "the echo backend did not start"; exit 1; }
REV=off
[ "$(id -u)" = 0 ] && REV=required
{
	global_conf "workers = 2
bpf_pin_root = $PINS
revocation = $REV
revocation_scan_interval = 250ms
admin_socket = $T/admin.sock"
	listener_conf edge "$echo_PORT" "handshake_timeout = $HS_TIMEOUT
connect_timeout = $HS_TIMEOUT"
} > "$T/gw.conf"
"${RUN[@]}" run -c "$T/gw.conf" --ready-file "$T/ready" >"$T/gw.log" 2>&1 &
GW=$!
PIDS="$PIDS $GW"
wait_file "$T/ready" 600 || { bad "gateway did not start: $(tail -5 "$T/gw.log")"; exit 1; }
PORT=$(awk '{print $2}' "$T/ready" | sed 's/.*://')
# the gateway's own pid (valgrind runs it as its child on some setups)
GWP=$GW
LG() { # MODE CERT [args]
	local m=$1 c=$2
	shift 2
	loadgen "$m" "$PORT" "$c" "$@"
}
fds() { ls "/proc/$GWP/fd" 2>/dev/null | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$GWP/status" 2>/dev/null; }

# warm-up: every path once, then the baseline
LG handshake alice -c 2 --duration 2 >/dev/null 2>&1
LG echo alice -c 2 --bytes 4M >/dev/null 2>&1
sleep 1
fd0=$(fds); rss0=$(rss)
say "baseline after warm-up: $fd0 descriptors, RSS $rss0 KiB; running $SECS s"

end=$(( $(date +%s) + SECS ))
rounds=0 hs_fail=0 bulk_fail=0 revokes=0 reloads=0 kills=0
while [ "$(date +%s)" -lt "$end" ]; do
	rounds=$((rounds + 1))
	LG handshake alice -c 2 --duration 4 >"$T/hs.out" 2>&1 &
	h=$!
	LG echo carol -c 2 --bytes 32M >"$T/bulk.out" 2>&1 &
	e=$!
	# bob holds the idle connections: the kill below must hit only them,
	# never one of alice's handshake-load connections
	LG idle bob -c 20 --duration 4 >/dev/null 2>&1 &
	i=$!
	# dave streams and gets revoked (when BPF is there) then un-revoked
	LG echo dave --bytes 100G >"$T/dave.out" 2>&1 &
	d=$!
	sleep 1
	if [ "$REV" = required ]; then
		"$B/ktlsgw" revoke add -c "$T/gw.conf" --cert "$P/dave.pem" >/dev/null 2>&1 && revokes=$((revokes + 1))
	fi
	kill -HUP "$GW" && reloads=$((reloads + 1))
	# kill one of bob's idle connections
	for try in $(seq 60); do	# valgrind: the idle handshakes take a while
		id=$("$B/ktlsgw" -j conn list --socket "$T/admin.sock" 2>/dev/null |
			grep -o '"id":[0-9]*,"worker":[0-9]*,"listener":"edge","server_name":"","client":"[^"]*","subject":"bob"' |
			head -1 | sed 's/"id":\([0-9]*\).*/\1/')
		[ -n "$id" ] && break
		sleep 0.2
	done
	[ -n "$id" ] && "$B/ktlsgw" conn kill "$id" --socket "$T/admin.sock" >/dev/null 2>&1 && kills=$((kills + 1))
	wait $h
	if ! grep -q '"ok":true' "$T/hs.out"; then
		hs_fail=$((hs_fail + 1))
		say "round $rounds: the handshake run failed: $(tail -c 600 "$T/hs.out")"
	fi
	wait $e
	if ! grep -q '"ok":true' "$T/bulk.out"; then
		bulk_fail=$((bulk_fail + 1))
		say "round $rounds: the bulk run failed: $(tail -c 600 "$T/bulk.out")"
	fi
	wait $i
	[ "$REV" = required ] || kill "$d" 2>/dev/null
	wait $d
	[ "$REV" = required ] && "$B/ktlsgw" revoke del -c "$T/gw.conf" "$(fp "$P/dave.pem")" >/dev/null 2>&1
done
say "$rounds rounds: $revokes revocations, $reloads reloads, $kills kills; handshake runs failed: $hs_fail, bulk runs failed: $bulk_fail"
[ "$hs_fail" -eq 0 ] || bad "$hs_fail handshake runs had failures (nothing aimed at them)"
[ "$bulk_fail" -eq 0 ] || bad "$bulk_fail bulk runs had failures (nothing aimed at them)"
# connections saying goodbye may linger up to 3 s: wait for the count to
# come back (10 s at most) rather than for a fixed time
for try in $(seq 100); do
	[ "$(fds)" -le "$fd0" ] && break
	sleep 0.1
done
fd1=$(fds); rss1=$(rss)
say "after the load: $fd1 descriptors (baseline $fd0), RSS $rss1 KiB (baseline $rss0)"
[ "$fd1" -eq "$fd0" ] || bad "descriptors $fd0 -> $fd1"
# allocator caches may keep a little; a leak over this many rounds would not fit
[ "$rss1" -le $((rss0 + rss0 / 4 + SLACK)) ] || bad "RSS $rss0 -> $rss1 KiB (bound: +25% + $SLACK KiB)"
kill -TERM "$GW"
wait "$GW"; rc=$?
if [ "$MODE" = asan ]; then
	if ls "$T"/asan* "$T"/ubsan* >/dev/null 2>&1; then
		bad "sanitizer reports: $(cat "$T"/asan* "$T"/ubsan* | head -30)"
	fi
else
	# errors and leaks are "==PID==" lines; "--PID-- WARNING: unhandled eBPF
	# command" only says valgrind does not model that bpf(2) command
	if grep -q "^==[0-9]*==" "$T"/valgrind.* 2>/dev/null; then
		bad "valgrind reports: $(grep -h "^==" "$T"/valgrind.* | head -40)"
	fi
fi
[ "$rc" -eq 0 ] || bad "gateway exit status $rc (23 = sanitizer/valgrind errors); log: $(tail -3 "$T/gw.log")"
if [ "$fail" -eq 0 ]; then
	echo "ok - soak[$MODE] $SECS s: $rounds rounds, $revokes revocations, $reloads reloads, $kills kills; descriptors $fd0 -> $fd1, RSS $rss0 -> $rss1 KiB; zero sanitizer/valgrind errors and leaks"
	rm -rf "$T"
fi
exit $fail
