#!/bin/bash
# The kTLS suite: the cells here (userspace mode on a kernel without kTLS),
# then the cells and the data-path checks inside Debian's 6.1 kernel (kTLS
# module) booted under qemu by kernel-config/vm-run.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
export B
bash tests/ktls/cells.sh
if [ "${KG_SKIP_VM:-0}" = 1 ]; then
	echo "skip - kTLS VM suite (KG_SKIP_VM=1)"
	exit 0
fi
kernel-config/vm-run -t 1800 -- bash -c 'bash tests/ktls/cells.sh; bash tests/ktls/datapath.sh'
rc=$?
if [ $rc = 125 ] || [ $rc = 124 ]; then
	echo "not ok - the kTLS VM did not complete (vm-run exit $rc)"
fi
exit 0
