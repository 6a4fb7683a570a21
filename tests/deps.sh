#!/bin/sh
# Install what ktlsgw needs to build, run and test on Debian 12.
# Idempotent: installs only the packages that are missing.
set -eu
PKGS="make gcc clang pkg-config libssl-dev liburing-dev libcmocka-dev \
libbpf-dev libjson-c-dev libnats-dev nats-server bpftool openssl curl gnutls-bin socat iproute2 procps bc prometheus man-db haproxy \
liblua5.4-dev testssl.sh valgrind libclang-rt-14-dev util-linux python3 strace \
qemu-system-x86 busybox-static kmod xz-utils zstd nginx libnginx-mod-stream stunnel4"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
# the kernel packages the kTLS VM boots (bookworm's 6.1, trixie's 6.12 and
# the newest in trixie-backports): downloaded here, so that nothing has to be
# installed while the tests run
fetch_vm_kernel() {
	# bookworm's is what `make test` boots: without it the set-up fails;
	# the other two serve `make test-kernels`, which fetches what is missing
	$SUDO bash "$(dirname "$0")/../kernel-config/vm-run" --kernel bookworm --fetch
	for k in trixie backports; do
		$SUDO bash "$(dirname "$0")/../kernel-config/vm-run" --kernel "$k" --fetch ||
			echo "deps: the $k kernel could not be fetched now; make test-kernels will try again" >&2
	done
}
# HAProxy 3.0 from Debian's source (the PROXY v2 CN test): built once per
# machine, not in every test run
build_haproxy3() {
	$SUDO sh "$(dirname "$0")/tools/haproxy3.sh" >/dev/null ||
		echo "deps: HAProxy 3.0 could not be built now; test_proxy.sh will try again" >&2
}
if [ -z "$missing" ]; then
	fetch_vm_kernel
	build_haproxy3
	exit 0
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fetch_vm_kernel
build_haproxy3
# prometheus is installed for promtool (the metrics test), haproxy as a
# PROXY v2 peer, nginx as a TLS origin and nats-server for the fleet test
# (the tests run their own instances): their services are not wanted on a
# build machine
for s in prometheus haproxy nginx nats-server; do
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		$SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
	else
		$SUDO service "$s" stop >/dev/null 2>&1 || true
	fi
done
