#!/bin/bash
# The command line's JSON: `features -j`, `-j features` and `conn list -j`
# (options anywhere on the line) are valid JSON, with a live client whose
# certificate subject holds a double quote, a backslash and a newline; the
# JSON log lines of that connection parse too; errors with -j are JSON.
set -u
. "$(dirname "$0")/lib.sh"

P=$T/pki
"$KTLSGW" pki init --test "$P" >/dev/null || { nok "pki init"; exit 1; }
# the hostile subject: Ev"il\ CN<newline>line2
SUBJ=$'Ev"il\\ CN\nline2'
openssl ecparam -name prime256v1 -genkey -noout -out "$P/evil.key" &&
	openssl req -new -key "$P/evil.key" -subj $'/CN=Ev"il\\\\ CN\nline2' -out "$T/evil.csr" &&
	openssl x509 -req -in "$T/evil.csr" -CA "$P/client-ca.pem" -CAkey "$P/client-ca.key" \
		-set_serial 4242 -days 2 -out "$P/evil.pem" 2>/dev/null ||
	{ nok "a certificate with a hostile subject"; exit 1; }

# json_ok DESCRIPTION: stdin is one JSON document (python3 -m json.tool agrees)
json_ok() {
	if python3 -m json.tool >"$T/pretty" 2>"$T/pretty.err"; then
		ok "$1"
	else
		nok "$1: $(head -c 300 "$T/pretty.err")"
	fi
}

# (through files: a pipe would run json_ok, and its count, in a subshell)
"$KTLSGW" features -j >"$T/f1.json"
json_ok "features -j is JSON" <"$T/f1.json"
"$KTLSGW" -j features >"$T/f2.json"
json_ok "-j features is JSON" <"$T/f2.json"
"$KTLSGW" features --json >"$T/f3.json"
json_ok "features --json is JSON" <"$T/f3.json"

start_backend echo echo
cat > "$T/gw.conf" <<CONF
[global]
workers = 1
state_dir = $T/state
bpf_pin_root = /sys/fs/bpf/ktlsgw-test-cli-$$
revocation = best-effort
admin_socket = $T/admin.sock
log_format = json

$(listener_conf edge "$echo_PORT")
CONF
trap 'exec 3>&- 2>/dev/null; cleanup; rm -rf /sys/fs/bpf/ktlsgw-test-cli-$$' EXIT
start_gw "$T/gw.conf" || { nok "gateway starts"; exit 1; }
A="-s $T/admin.sock"

# a live session: stdin is a FIFO held open on fd 3, so the client stays
mkfifo "$T/in"
openssl s_client -quiet -connect "127.0.0.1:$GW_edge" -cert "$P/evil.pem" \
	-cert_chain "$P/client-ca.pem" -key "$P/evil.key" -CAfile "$P/ca.pem" \
	<"$T/in" >"$T/s.out" 2>"$T/s.err" &
S=$!
PIDS="$PIDS $S"
exec 3>"$T/in"
echo hello >&3
# established once the backend's echo is back
if grep -q -m1 '^hello$' < <(timeout 20 tail -n +1 -f "$T/s.out"); then
	ok "a client with subject $(printf %q "$SUBJ") is connected"
else
	nok "client did not connect: $(cat "$T/s.err")"
fi

# has_subject: stdin is a conn list answer with a connection of subject $SUBJ
has_subject() {
	python3 -c 'import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(c["subject"] == sys.argv[1] for c in d) else 1)' "$SUBJ"
}
for args in "conn list -j $A" "-j conn list $A" "conn list $A --json" "c l -j $A"; do
	# shellcheck disable=SC2086
	"$KTLSGW" $args >"$T/list.json"
	json_ok "ktlsgw $args is JSON" <"$T/list.json"
	has_subject <"$T/list.json" && ok "ktlsgw $args: the subject reads back exactly" ||
		nok "ktlsgw $args: subject lost: $(cat "$T/list.json")"
done

# the table keeps one row per connection: the newline is shown escaped
# shellcheck disable=SC2086
rows=$("$KTLSGW" conn list $A | wc -l)
# shellcheck disable=SC2086
[ "$rows" = 2 ] && "$KTLSGW" conn list $A | grep -qF 'Ev\"il\\ CN\nline2' &&
	ok "conn list table: one row, subject escaped" ||
	nok "conn list table: $rows lines: $("$KTLSGW" conn list $A)"

# stats through the parser, both ways
# shellcheck disable=SC2086
"$KTLSGW" stats -j $A >"$T/stats.json"
json_ok "stats -j is JSON" <"$T/stats.json"

# errors in JSON mode are JSON, with the exit code
"$KTLSGW" conn list -j -s "$T/nowhere.sock" >"$T/e.json"; rc=$?
[ $rc = 1 ] && grep -q '"exit":1' "$T/e.json" && json_ok "unreachable gateway: exit 1, JSON error" <"$T/e.json" ||
	nok "unreachable gateway: rc=$rc $(cat "$T/e.json")"
"$KTLSGW" features -j --bogus >"$T/e.json"; rc=$?
[ $rc = 2 ] && grep -q '"exit":2' "$T/e.json" && json_ok "unknown option: exit 2, JSON error" <"$T/e.json" ||
	nok "unknown option: rc=$rc $(cat "$T/e.json")"
"$KTLSGW" -j conn kill 999999 $A >"$T/e.json"; rc=$?
[ $rc = 1 ] && grep -q 'no connection 999999' "$T/e.json" &&
	json_ok "conn kill of an unknown ID: exit 1, JSON error" <"$T/e.json" ||
	nok "conn kill unknown: rc=$rc $(cat "$T/e.json")"

# end the session (s_client -quiet ignores EOF on stdin: stop it) and wait
# for its access log line: every log line is JSON
exec 3>&-
kill "$S" 2>/dev/null
wait "$S" 2>/dev/null
if grep -q -m1 '"event":"access"' < <(timeout 20 tail -n +1 -f "$T/gw.log"); then
	bad=$(python3 -c 'import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        json.loads(line)
    except ValueError:
        n += 1
        print(line.rstrip()[:200], file=sys.stderr)
print(n)' "$T/gw.log")
	python3 -c 'import json, sys
sys.exit(0 if any(json.loads(l).get("subject") == sys.argv[2] for l in open(sys.argv[1]) if "access" in l) else 1)' \
		"$T/gw.log" "$SUBJ" && [ "$bad" = 0 ] &&
		ok "JSON log: every line parses, the access line has the exact subject" ||
		nok "JSON log: $bad lines do not parse"
else
	nok "no access log line: $(tail -5 "$T/gw.log")"
fi

stop_gw
echo "# cli: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
