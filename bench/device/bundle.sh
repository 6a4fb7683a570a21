#!/bin/bash
# Build the self-contained device benchmark bundle (make device-bundle):
#
#   BUILD/device-bundle.tar.gz  ->  kg-device/
#     run.sh, peers.sh       the benchmark (bench/device/run.sh) and the
#                            proxies' configuration templates (bench/peers.sh)
#     bin/NAME               wrappers: run libexec/NAME through the bundled
#                            dynamic loader with --library-path lib
#     libexec/               ktlsgw (the full binary, not the front) kg-loadgen kg-backend ktls_ab nginx haproxy
#                            stunnel openssl bpftool taskset (ELF, as built or
#                            as Debian ships them)
#     lib/                   every shared library they load (ldd), the loader
#                            ld-linux-x86-64.so.2, nginx's stream module
#     etc/openssl.cnf        so that the target's own OpenSSL config is not read
#     pki/                   the test PKI (ktlsgw pki init --test) + server-combined.pem
#     MANIFEST               versions, build commit, sha256 of every file
#
# The target's distribution and glibc are unknown, so nothing is taken from
# it: every binary runs through the bundled loader. Missing peers are
# installed from Debian packages first. Fails if the bundle exceeds 64 MiB
# or if a bundled binary resolves a library outside the bundle.
set -eu
B=$(realpath "${1:-build}")
cd "$(dirname "$0")/../.."
MAX_BYTES=$((64 * 1024 * 1024))
STAGE=$B/device-bundle
D=$STAGE/kg-device
OUT_TGZ=$B/device-bundle.tar.gz
say() { printf '  %-8s %s\n' "$1" "$2"; }

for f in libexec/ktlsgw kg-loadgen kg-backend ktls_ab; do
	[ -x "$B/$f" ] || { echo "device-bundle: $B/$f missing (make all $B/ktls_ab first)" >&2; exit 1; }
done

# --- the peers, from Debian packages ----------------------------------------
need=""
command -v nginx >/dev/null || need="$need nginx-light"
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need="$need libnginx-mod-stream"
command -v haproxy >/dev/null || need="$need haproxy"
command -v stunnel4 >/dev/null || need="$need stunnel4"
command -v taskset >/dev/null || need="$need util-linux"
command -v bpftool >/dev/null || need="$need bpftool"
if [ -n "$need" ]; then
	say APT "$need"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -qq </dev/null >&2
	# shellcheck disable=SC2086
	timeout 600 apt-get install -y -qq --no-install-recommends $need </dev/null >/dev/null
	# the packages start their services: not wanted on a build machine
	for s in nginx haproxy; do service "$s" stop >/dev/null 2>&1 || true; done
fi

rm -rf "$STAGE" "$OUT_TGZ"
mkdir -p "$D/bin" "$D/libexec" "$D/lib/nginx" "$D/etc"

# --- binaries -----------------------------------------------------------------
declare -A SRC=(
	[ktlsgw]=$B/libexec/ktlsgw [kg-loadgen]=$B/kg-loadgen [kg-backend]=$B/kg-backend [ktls_ab]=$B/ktls_ab
	[nginx]=$(command -v nginx) [haproxy]=$(command -v haproxy) [stunnel]=$(command -v stunnel4)
	[openssl]=$(command -v openssl) [bpftool]=$(command -v bpftool) [taskset]=$(command -v taskset)
)
for name in "${!SRC[@]}"; do
	src=$(readlink -f "${SRC[$name]}")
	file -L "$src" | grep -q 'ELF 64-bit' || { echo "device-bundle: $src is not an ELF binary" >&2; exit 1; }
	cp "$src" "$D/libexec/$name"
	strip --strip-debug "$D/libexec/$name"
	# the wrapper: the bundled loader, the bundled libraries, never the target's
	cat > "$D/bin/$name" <<EOF
#!/bin/sh
d=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$d/lib/ld-linux-x86-64.so.2" --library-path "\$d/lib" --argv0 "\$0" "\$d/libexec/$name" "\$@"
EOF
	chmod 0755 "$D/bin/$name"
done
cp /usr/lib/nginx/modules/ngx_stream_module.so "$D/lib/nginx/"

# --- shared libraries: the closure ldd reports, and the loader ----------------
LOADER=""
for f in "$D"/libexec/* "$D"/lib/nginx/*.so; do
	ldd "$f" | while read -r a b c _; do
		case "$a" in linux-vdso.so.*|linux-gate.so.*) continue ;; esac
		if [ "$b" = "=>" ]; then
			[ -e "$c" ] || { echo "device-bundle: $f needs $a, not found" >&2; exit 1; }
			[ -e "$D/lib/$a" ] || cp -L "$c" "$D/lib/$a"
		elif [ -e "$a" ]; then	# the loader: /lib64/ld-linux-x86-64.so.2 (0x...)
			[ -e "$D/lib/$(basename "$a")" ] || cp -L "$a" "$D/lib/$(basename "$a")"
		fi
	done
done
LOADER=$D/lib/ld-linux-x86-64.so.2
[ -x "$LOADER" ] || { echo "device-bundle: no ld-linux-x86-64.so.2 collected (not x86-64?)" >&2; exit 1; }
# glibc loads libgcc_s on demand (thread cancellation, backtraces): not in ldd
for extra in libgcc_s.so.1; do
	p=$(ldconfig -p | awk -v n="$extra" '$1 == n && /x86-64/ {print $NF; exit}')
	[ -n "$p" ] && [ ! -e "$D/lib/$extra" ] && cp -L "$p" "$D/lib/$extra"
done

# Every library must resolve inside the bundle through the bundled loader.
for f in "$D"/libexec/* "$D"/lib/nginx/*.so; do
	bad=$(env -i "$LOADER" --library-path "$D/lib" --list "$f" 2>&1 |
		awk -v d="$D/lib/" '$2 == "=>" && index($3, d) != 1 && $1 !~ /^linux-vdso/ {print $1 " -> " $3}')
	[ -z "$bad" ] || { echo "device-bundle: $f resolves outside the bundle: $bad" >&2; exit 1; }
done

# --- OpenSSL configuration, PKI, scripts --------------------------------------
cat > "$D/etc/openssl.cnf" <<'EOF'
# The bundle's OpenSSL configuration (OPENSSL_CONF points here): built-in
# defaults only, whatever the target's own configuration says.
EOF
env -i OPENSSL_CONF="$D/etc/openssl.cnf" "$D/bin/ktlsgw" pki init --test "$D/pki" >/dev/null
cat "$D/pki/server.key" "$D/pki/server.pem" > "$D/pki/server-combined.pem"
install -m 0755 bench/device/run.sh "$D/run.sh"
install -m 0644 bench/peers.sh "$D/peers.sh"

# Each wrapper must start the program (prints a version or usage).
for name in "${!SRC[@]}"; do
	case $name in
	ktlsgw) args=version ;; nginx) args=-v ;; haproxy) args=-v ;; stunnel) args=-version ;;
	openssl) args=version ;; bpftool) args=version ;; taskset) args=-V ;; *) args=--help ;;
	esac
	env -i PATH=/usr/bin:/bin OPENSSL_CONF="$D/etc/openssl.cnf" timeout 10 "$D/bin/$name" $args >/dev/null 2>&1 </dev/null ||
		{ echo "device-bundle: $D/bin/$name $args failed" >&2; exit 1; }
done

{
	echo "kg-device bundle"
	echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)"
	echo "ktlsgw: $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "packages:"
	dpkg-query -W -f='  ${Package} ${Version}\n' libc6 libssl3 openssl nginx-light nginx-core nginx \
		libnginx-mod-stream haproxy stunnel4 bpftool liburing2 libinih1 libbpf1 util-linux 2>/dev/null |
		awk 'NF == 2'
	echo "sha256:"
	(cd "$D" && find . -type f ! -name MANIFEST | sort | xargs sha256sum | sed 's/^/  /')
} > "$D/MANIFEST"

tar -C "$STAGE" -czf "$OUT_TGZ" kg-device
size=$(stat -c %s "$OUT_TGZ")
say BUNDLE "$OUT_TGZ ($((size / 1024)) KiB, unpacked $(du -sk "$D" | cut -f1) KiB)"
if [ "$size" -gt $MAX_BYTES ]; then
	echo "device-bundle: $OUT_TGZ is $size bytes, over the 64 MiB limit" >&2
	rm -f "$OUT_TGZ"
	exit 1
fi
