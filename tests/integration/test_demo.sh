#!/bin/bash
# `make run`, the newcomer's first command, started exactly as it is typed
# (ports from the environment, 0 = any free one): the curl line it prints
# gets the backend's reply through the gateway, the line without a client
# certificate is refused, and Ctrl-C (SIGINT to its process group) stops the
# gateway and the backend.
set -u
. "$(dirname "$0")/lib.sh"

KTLSGW_DEMO_PORT=0 KTLSGW_DEMO_BACKEND_PORT=0 setsid make -s run B="$B" >"$T/demo.out" 2>&1 &
DEMO=$!
PIDS="$PIDS $DEMO"
wait_for() { # FILE REGEX TENTHS: until a line matches or the demo has gone
	local n=$3
	while ! grep -q "$2" "$1" && kill -0 "$DEMO" 2>/dev/null && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	grep -q "$2" "$1"
}
if ! wait_for "$T/demo.out" "^  curl --cert" 600; then
	nok "make run printed no curl line: $(tail -5 "$T/demo.out")"
	kill -KILL -- -"$DEMO" 2>/dev/null
	exit 1
fi
with=$(grep -m1 "^  curl --cert" "$T/demo.out")
without=$(grep -m1 "^  curl --cacert" "$T/demo.out")
out=$(eval "timeout 20 ${with# *} -sS" 2>&1)
if [ "$out" = "hello from the ktlsgw demo backend" ]; then
	ok "make run: the printed curl line gets the backend's reply through the gateway"
else
	nok "make run: '${with# *}' answered: $out"
fi
out=$(eval "timeout 20 ${without# *} -sS" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && ! grep -q "hello from" <<<"$out" &&
   wait_for "$T/demo.out" "reject .*reason=no_certificate" 100; then
	ok "make run: the line without a client certificate is refused (curl exit $rc: $(head -1 <<<"$out" | cut -c1-70)), logged reason=no_certificate"
else
	nok "make run: without a certificate: exit $rc: $out; log: $(grep reject "$T/demo.out" | tail -1)"
fi
# Ctrl-C: SIGINT to the whole foreground process group
procs=$(descendants "$DEMO")
kill -INT -- -"$DEMO"
alive() { for p in $procs; do ps -o comm= -p "$p" 2>/dev/null; done | tr '\n' ' '; }
n=200
while { kill -0 "$DEMO" 2>/dev/null || [ -n "$(alive)" ]; } && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
left=$(alive)
if ! kill -0 "$DEMO" 2>/dev/null && [ -z "$left" ]; then
	ok "make run: Ctrl-C stops the gateway and the backend"
else
	nok "make run: after Ctrl-C still running: ${left:-make}"
	kill -KILL -- -"$DEMO" 2>/dev/null
fi
wait "$DEMO" 2>/dev/null
echo "# demo: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
