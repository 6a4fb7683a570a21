#!/bin/bash
# Packaging: `make install` honours PREFIX and DESTDIR, the systemd unit
# passes `systemd-analyze verify`, the man pages render with `man -l`.
set -u
. "$(dirname "$0")/lib.sh"
D=$T/dest
if make -s install DESTDIR="$D" PREFIX=/usr/local B="$B" >"$T/install.log" 2>&1 &&
   [ -x "$D/usr/local/sbin/ktlsgw" ] && [ -x "$D/usr/local/libexec/ktlsgw/ktlsgw" ] &&
   [ -f "$D/usr/local/share/man/man8/ktlsgw.8" ] &&
   [ -f "$D/usr/local/share/man/man5/ktlsgw.conf.5" ] && [ -f "$D/usr/local/lib/systemd/system/ktlsgw.service" ]; then
	ok "make install DESTDIR=… PREFIX=/usr/local installs the binary, man pages and unit"
else
	nok "make install: $(tail -3 "$T/install.log")"
fi
# the installed front finds the installed full binary (../libexec/ktlsgw/ktlsgw)
if out=$("$D/usr/local/sbin/ktlsgw" version 2>&1) && [ "$out" = "$("$B/libexec/ktlsgw" version)" ]; then
	ok "the installed ktlsgw runs the installed full binary: $out"
else
	nok "installed ktlsgw version: $out"
fi
for page in ktlsgw.8 ktlsgw.conf.5; do
	out=$(MANWIDTH=80 man --warnings -l "userspace/dist/$page" 2>"$T/man.err")
	if echo "$out" | grep -q "^NAME" && [ ! -s "$T/man.err" ]; then
		ok "man -l $page renders ($(echo "$out" | grep -c .) lines)"
	else
		nok "man -l $page: $(head -3 "$T/man.err")"
	fi
done
if command -v systemd-analyze >/dev/null; then
	# the installed unit names $PREFIX/sbin/ktlsgw; verify a copy installed
	# with PREFIX pointing at this build so the binary exists
	mkdir -p "$T/unit"
	sed "s|/usr/local/sbin/ktlsgw|$(realpath "$B")/ktlsgw|g" "$D/usr/local/lib/systemd/system/ktlsgw.service" \
		> "$T/unit/ktlsgw.service"
	if out=$(systemd-analyze verify --man=no "$T/unit/ktlsgw.service" 2>&1) && [ -z "$out" ]; then
		ok "systemd-analyze verify accepts ktlsgw.service"
	else
		nok "systemd-analyze verify: $out"
	fi
else
	skip "systemd-analyze not installed"
fi
rm -rf "$T"
