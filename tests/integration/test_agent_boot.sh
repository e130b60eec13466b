#!/usr/bin/env bash
# test_agent_boot.sh — boots the real microVM image (Debian kernel + initramfs with
# tenant-agent as /init) under raw QEMU (-M microvm, TCG) and drives the agent over
# its virtio-serial port with tests/integration/agent_client: ready, hello, a refused
# symlinked mount target, setup with a read-only 9p share and network, exec sessions
# (stdout, stderr, stdin, exit code, uid), the service, stats, health checks (tcp, exec
# and http against busybox httpd, a listener that is not HTTP and a closed port), signals,
# garbage and a 10 MB line, then shutdown, after which QEMU must exit by itself.
# Also checks that the initramfs builds reproducibly.
#
# Needs qemu-system-x86_64 and the debug image (make vm-image-debug, which this test
# runs when the image is missing; it downloads Debian's kernel package once). Skips
# loudly otherwise. Starts one QEMU, kills only that PID, removes its temp dir.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
client=$BUILD/tests/integration/agent_client
agent=$BUILD/guest-agent/tenant-agent
vm=$BUILD/vm

# shellcheck source=tests/lib/tap.sh

source "$(dirname "$0")/../lib/tap.sh"

command -v qemu-system-x86_64 >/dev/null ||
	skip_all "NO QEMU (qemu-system-x86_64 missing; make test-deps installs it): the guest agent was not booted"
require_built "$client" "$agent"
if [[ ! -f $vm/initramfs-debug.img || ! -f $vm/vmlinuz || $agent -nt $vm/initramfs-debug.img ]]; then
	echo "# building the debug VM image (make vm-image-debug)"
	make --no-print-directory vm-image-debug >"$BUILD/vm-image-debug.log" 2>&1 ||
		skip_all "NO VM IMAGE: make vm-image-debug failed (see $BUILD/vm-image-debug.log; it needs apt and busybox-static): the guest agent was not booted"
fi

tmp=$(mktemp -d /tmp/ag-boot.XXXXXX)
qpid=
cleanup() {
	if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null
		sleep 0.5
		kill -9 "$qpid" 2>/dev/null
	fi
	[[ -n ${KEEP_TMP:-} ]] && cp "$tmp/console.log" /tmp/ag-last-console.log 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/share" "$tmp/evil"
echo "hello from the host" >"$tmp/share/hello.txt"
ln -s /etc "$tmp/evil/evil"

# boot_vm: starts QEMU in the background (sets qpid) and waits up to 90 s for the agent's
# "ready" on the console. Under TCG on a loaded host the kernel hangs before /init when
# its TSC calibration against the emulated PIT fails: it is told the host's TSC rate, as
# vm.c tells it (tsc_early_khz, tsc=reliable), and a hung boot is still retried once.
khz=$("$client" --tsc-khz)
tsc=""
[[ $khz =~ ^[1-9][0-9]*$ ]] && tsc=" tsc_early_khz=$khz tsc=reliable"
boot_vm() {
	rm -f "$tmp/console.log" "$tmp/agent.sock"
	# pit/pic/rtc on: without the PIT the kernel cannot calibrate its TSC under TCG.
	qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -m 256 -smp 1 \
		-no-user-config -nodefaults -display none -monitor none -no-reboot \
		-serial "file:$tmp/console.log" \
		-kernel "$vm/vmlinuz" -initrd "$vm/initramfs-debug.img" \
		-append "console=ttyS0 panic=-1$tsc" \
		-device virtio-serial-device \
		-chardev "socket,id=agent,path=$tmp/agent.sock,server=on,wait=off" \
		-device virtserialport,chardev=agent,name=org.tenantd.agent.0 \
		-fsdev "local,id=fs0,path=$tmp/share,security_model=none,readonly=on" \
		-device virtio-9p-device,fsdev=fs0,mount_tag=t0 \
		-fsdev "local,id=fs1,path=$tmp/evil,security_model=none,readonly=on" \
		-device virtio-9p-device,fsdev=fs1,mount_tag=t1 \
		-netdev user,id=n0,restrict=on -device virtio-net-device,netdev=n0 \
		>"$tmp/qemu.out" 2>&1 &
	qpid=$!
	for _ in $(seq 900); do
		grep -q "tenant-agent: ready" "$tmp/console.log" 2>/dev/null && return 0
		kill -0 "$qpid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

stop_vm() {
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=
}

start=$(date +%s%N)
if ! boot_vm; then
	echo "# first boot did not reach the agent in 90 s; console tail:"
	tail -5 "$tmp/console.log" 2>/dev/null | sed 's/^/#   /'
	stop_vm
	start=$(date +%s%N)
	boot_vm || echo "# second boot did not reach the agent either"
fi

timeout -k 5 600 "$client" "$tmp/agent.sock" >"$tmp/client.tap" 2>"$tmp/client.err"
crc=$?
grep -v '^1\.\.' "$tmp/client.tap"
_tap_n=$((_tap_n + $(grep -cE "^(not )?ok " "$tmp/client.tap"))) # the client's results are this script's too
check "agent_client finished (status $crc)" '[[ $crc -eq 0 ]]'

# After shutdown the guest powers off and QEMU (-no-reboot) exits by itself.
for _ in $(seq 300); do
	kill -0 "$qpid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$qpid" 2>/dev/null; then
	fail "QEMU exits by itself after shutdown"
else
	wait "$qpid"
	qrc=$?
	check "QEMU exits by itself after shutdown (status $qrc)" '[[ $qrc -eq 0 ]]'
	qpid=
fi
echo "# boot to power-off: $((($(date +%s%N) - start) / 1000000)) ms wall"
check "the console shows the agent ready" 'grep -q "tenant-agent: ready" "$tmp/console.log"'
check "the console shows no panic or oops" '! grep -qiE "kernel panic|oops|segfault" "$tmp/console.log"'
if [[ $crc -ne 0 ]]; then
	# On stderr too: tests/run-tests shows a failing suite's stderr.
	{
		sed 's/^/console: /' "$tmp/console.log" | tail -25
		sed 's/^/client: /' "$tmp/client.err" | tail -5
		sed 's/^/qemu: /' "$tmp/qemu.out" | tail -5
	} | tee /dev/stderr | sed 's/^/# /'
fi

# Reproducible initramfs: two builds from the same inputs, same bytes.
cache=$vm/cache
if [[ -d $cache ]]; then
	for i in 1 2; do
		VM_CACHE=$cache SOURCE_DATE_EPOCH=1700000000 guest-agent/build-image.sh "$agent" \
			"$tmp/img$i" >"$tmp/img$i.log" 2>&1 || true
	done
	a=$(sha256sum <"$tmp/img1/initramfs.img" 2>/dev/null | cut -c1-64)
	b=$(sha256sum <"$tmp/img2/initramfs.img" 2>/dev/null | cut -c1-64)
	check "the initramfs builds reproducibly (sha256 ${a:0:16}...)" '[[ -n $a && $a == "$b" ]]'
fi
done_testing
