#!/bin/sh
# Run libFuzzer targets one after the other, each for a bounded time.
#
#   sh tests/fuzz/run.sh FUZZ_DIR SECONDS TARGET...
#
# FUZZ_DIR holds the binaries (fuzz_TARGET, from `make fuzz-build`). Each
# target starts from a copy of tests/fuzz/corpus/TARGET in
# FUZZ_DIR/corpus/TARGET, where the inputs it finds are kept for the next
# run (the tree stays clean). One at a time and single-process: the
# machine is shared. Prints one line per target, then the crashing input
# of each failure; exits 1 if any target crashed, leaked or hung.
#
# Reproduce a failure: FUZZ_DIR/fuzz_TARGET FUZZ_DIR/artifacts/TARGET/crash-...
# Strict checks (see fuzz_admin.c, fuzz_cli_args.c) are on by default.

set -u

if [ $# -lt 3 ]; then
	echo "usage: $0 FUZZ_DIR SECONDS TARGET..." >&2
	exit 2
fi
dir=$1
secs=$2
shift 2
here=$(dirname "$0")

# the converse checks (an input the gateway refuses must be refused by the
# CLI too, every valid ID accepted) are on unless KG_FUZZ_STRICT=0
KG_FUZZ_STRICT=${KG_FUZZ_STRICT:-1}
export KG_FUZZ_STRICT

# a stack trace for UBSan reports too; the fuzzer's own options decide the rest
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export UBSAN_OPTIONS

fail=0
failures=
printf '%-12s %12s %8s %8s  %s\n' TARGET RUNS SECONDS RUNS/S RESULT
for t in "$@"; do
	bin=$dir/fuzz_$t
	corpus=$dir/corpus/$t
	art=$dir/artifacts/$t
	log=$dir/logs/$t.log
	if [ ! -x "$bin" ]; then
		printf '%-12s %12s %8s %8s  %s\n' "$t" - - - "FAIL: $bin missing"
		fail=1
		continue
	fi
	mkdir -p "$corpus" "$art" "$dir/logs"
	if [ -d "$here/corpus/$t" ]; then
		cp -R "$here/corpus/$t/." "$corpus/"
	fi
	dict=
	if [ -f "$here/$t.dict" ]; then
		dict=-dict=$here/$t.dict
	fi
	start=$(date +%s)
	# -timeout: an input that takes 10 s is a hang, and a failure
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" $dict "$corpus" >"$log" 2>&1
	rc=$?
	took=$(( $(date +%s) - start ))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	runs=${runs:-0}
	rate=$(( runs / (took > 0 ? took : 1) ))
	if [ "$rc" -eq 0 ]; then
		result=ok
	else
		fail=1
		input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		result="FAIL (exit $rc): ${input:-no input saved, see $log}"
		failures="$failures $t"
	fi
	printf '%-12s %12s %8s %8s  %s\n' "$t" "$runs" "$took" "$rate" "$result"
done

for t in $failures; do
	log=$dir/logs/$t.log
	echo
	echo "---- $t: $log"
	# the sanitizer's or the harness's verdict, and the input that caused it
	grep -E 'ERROR: |SUMMARY: |check failed: |runtime error: |Test unit written to' "$log" |
		head -n 20
	input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ -n "$input" ]; then
		echo "reproduce: $dir/fuzz_$t $input"
	fi
done
exit $fail
