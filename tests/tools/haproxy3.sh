#!/bin/sh
# Build HAProxy 3.0 for the PROXY v2 CN test, once per machine, into
# /var/cache/ktlsgw/haproxy-3.0.11 (KG_HAPROXY3_DIR), like the VM kernels
# (tests/deps.sh builds it; test_proxy.sh calls this again, which does
# nothing when it is there). Prints the binary's path.
# Debian 12's HAProxy 2.6 parses PROXY v2 but has no way to read a TLV
# (fc_pp_tlv arrived in 2.9), so the CN part of the test needs a newer one:
# Debian 13's source tarball from the Debian archive, checked against the
# SHA-256 its Sources index lists. Built without TLS (not needed there),
# with Lua to read the sub-TLVs of PP2_TYPE_SSL. About a minute on 2 cores.
set -eu
V=3.0.11
SHA256=a133e2d550c5fd9a849b5c7ab17bb945bcdad209ca140d41f45ebf31943ae783
URL=http://deb.debian.org/debian/pool/main/h/haproxy/haproxy_$V.orig.tar.gz
OUT=${KG_HAPROXY3_DIR:-/var/cache/ktlsgw/haproxy-$V}
if [ -x "$OUT/haproxy" ]; then
	echo "$OUT/haproxy"
	exit 0
fi
# one build at a time (deps.sh and test runs of several checkouts share it)
mkdir -p "$(dirname "$OUT")"
if [ -z "${KG_HAPROXY3_LOCKED:-}" ]; then
	KG_HAPROXY3_LOCKED=1 exec flock "$OUT.lock" sh "$0" "$@"
fi
if [ -x "$OUT/haproxy" ]; then
	echo "$OUT/haproxy"
	exit 0
fi
[ -r /usr/include/lua5.4/lua.h ] || { echo "haproxy3: liblua5.4-dev missing (sh tests/deps.sh)" >&2; exit 1; }
mkdir -p "$OUT"
tgz=$OUT/haproxy_$V.orig.tar.gz
if ! echo "$SHA256  $tgz" | sha256sum -c --status 2>/dev/null; then
	curl -fsS --retry 3 --max-time 300 -o "$tgz" "$URL"
	echo "$SHA256  $tgz" | sha256sum -c --status ||
		{ echo "haproxy3: $tgz does not match its SHA-256" >&2; rm -f "$tgz"; exit 1; }
fi
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
tar xzf "$tgz" -C "$OUT/src" --strip-components=1
make -s -C "$OUT/src" -j"$(nproc)" TARGET=linux-glibc USE_LUA=1 LUA_INC=/usr/include/lua5.4 \
	LUA_LIB_NAME=lua5.4 USE_OPENSSL= USE_PCRE2= >"$OUT/build.log" 2>&1 ||
	{ tail -20 "$OUT/build.log" >&2; exit 1; }
cp "$OUT/src/haproxy" "$OUT/haproxy.tmp"
mv "$OUT/haproxy.tmp" "$OUT/haproxy"
rm -rf "$OUT/src"
echo "$OUT/haproxy"
