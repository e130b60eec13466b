#!/usr/bin/env bash
# tests/integration/test_volume_host.sh — a volume's host side (storage/volume.c, issue
# 13 part 2) with real loop devices and real ext4, driven by volume_probe as tenantd
# will drive it: the image is sparse and made on first use; the mount is nosuid, nodev
# (noexec as declared) in a place only root reaches, its root the service's uid; data
# outlives a close and an open; writing three times the size ends in ENOSPC and the
# host's free space drops by at most the size; a crash's leftovers (a mount, a loop
# device) are coped with on the next open; e2fsck stops a broken image before the
# kernel mounts it; close leaves no mount and no loop device, and never the image gone.
set -u
cd "${SRCDIR:-.}" || exit 1
BUILD=${BUILD:-build}
# shellcheck source=tests/lib/tap.sh
source tests/lib/tap.sh
probe=$BUILD/tests/integration/volume_probe
require_built "$probe"
[[ $(id -u) -eq 0 ]] || skip_all "NOT ROOT: loop devices and mounts need root; nothing was tested"
[[ -c /dev/loop-control ]] || skip_all "NO /dev/loop-control: volumes need loop devices; nothing was tested"
command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null ||
	skip_all "NO e2fsprogs (mkfs.ext4, e2fsck): apt-get install e2fsprogs; nothing was tested"

tmp=$(mktemp -d /tmp/tenantd-volhost.XXXXXX)
storage=$tmp/storage
tenant=tvh-$$
# Every mount and loop device of this test goes, whatever happened.
cleanup() {
	local m l
	for m in /run/tenantd-volumes/"$tenant"/*; do
		[[ -d $m ]] && { umount -l "$m" 2>/dev/null; rmdir "$m" 2>/dev/null; }
	done
	rmdir /run/tenantd-volumes/"$tenant" 2>/dev/null
	for l in $(losetup -nO NAME -j "$storage/$tenant/data.img" 2>/dev/null) \
		$(losetup -nO NAME -j "$storage/$tenant/bad.img" 2>/dev/null) \
		$(losetup -nO NAME -j "$storage/$tenant/due.img" 2>/dev/null); do
		losetup -d "$l" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

loops() { losetup -nO NAME -j "$1" | wc -l; }
mnt=/run/tenantd-volumes/$tenant/data
img=$storage/$tenant/data.img

out=$("$probe" open "$storage" "$tenant" data 64M 1234:2345 2>&1)
rc=$?
check "open makes the volume and prints its mount point ($out)" '[[ $rc == 0 && $out == "$mnt" ]]'
check "the image is STORAGE/TENANT/NAME.img, root's, 0600, 64M and sparse" \
	'[[ $(stat -c "%u %a %s" "$img") == "0 600 67108864" && $(du -k "$img" | cut -f1) -lt 16384 ]]'
check "the storage directories are root's and 0700" \
	'[[ $(stat -c "%u %a" "$storage" "$storage/$tenant" | sort -u) == "0 700" ]]'
check "the mount point's directories are root's and 0700" \
	'[[ $(stat -c "%u %a" /run/tenantd-volumes /run/tenantd-volumes/"$tenant" | sort -u) == "0 700" ]]'
opts=$(findmnt -no FSTYPE,OPTIONS "$mnt")
check "mounted ext4 nosuid,nodev from a loop device ($opts)" \
	'[[ $opts == ext4* && $opts == *nosuid* && $opts == *nodev* && $opts != *noexec* ]]'
check "one loop device holds the image" '[[ $(loops "$img") == 1 ]]'
check "the tenant's view, the directory data, belongs to the service's uid:gid" '[[ $(stat -c "%u:%g" "$mnt/data") == 1234:2345 ]]'
check "the file system's root (and lost+found) stays root's, 0700" '[[ $(stat -c "%u:%g %a" "$mnt") == "0:0 700" ]]'
echo "kept across restarts" >"$mnt/data/marker" && sync

out=$("$probe" close "$tenant" data 2>&1)
rc=$?
check "close succeeds" '[[ $rc == 0 ]]'
check "and leaves no mount, no mount point, no loop device" \
	'! findmnt "$mnt" >/dev/null && [[ ! -e $mnt && $(loops "$img") == 0 ]]'
check "and keeps the image" '[[ -f $img ]]'

out=$("$probe" open "$storage" "$tenant" data 64M 1234:2345 noexec 2>&1)
rc=$?
check "the volume opens again (noexec this time)" '[[ $rc == 0 ]]'
check "its data is still there" '[[ $(cat "$mnt/data/marker" 2>&1) == "kept across restarts" ]]'
check "mounted noexec as declared" '[[ $(findmnt -no OPTIONS "$mnt") == *noexec* ]]'

# Three times the size: the volume fills, the host's disk does not.
before=$(df -k --output=avail "$storage" | tail -1)
out=$(dd if=/dev/zero of="$mnt/data/fill" bs=1M count=192 conv=fsync 2>&1)
rc=$?
after=$(df -k --output=avail "$storage" | tail -1)
check "writing 3x the size ends in ENOSPC" '[[ $rc != 0 && $out == *"No space left on device"* ]]'
check "the host's free space dropped by at most the size ($((before - after)) KiB)" \
	'[[ $((before - after)) -le 65536 ]]'
rm -f "$mnt/data/fill"

# A crash: the mount and its loop device stay behind, nobody closes them.
out=$("$probe" open "$storage" "$tenant" data 64M 1234:2345 2>&1)
rc=$?
check "an open over a stale mount copes ($out)" '[[ $rc == 0 ]]'
check "with one mount and one loop device, not two" \
	'[[ $(findmnt -n "$mnt" | wc -l) == 1 && $(loops "$img") == 1 ]]'
check "and the data" '[[ $(cat "$mnt/data/marker" 2>&1) == "kept across restarts" ]]'

# A second holder of the image: it is never mounted twice.
loop=$(losetup -nO NAME -j "$img")
"$probe" close "$tenant" data
exec {hold}<"$img"
held=$(losetup --show -f "$img")
out=$("$probe" open "$storage" "$tenant" data 64M 1234:2345 2>&1)
rc=$?
check "an image attached by someone else is refused, not mounted twice ($out)" \
	'[[ $rc == 1 && $out == *"still attached"* ]] && ! findmnt "$mnt" >/dev/null'
losetup -d "$held"
exec {hold}<&-
check "(the loop device of the earlier open, $loop, detached itself)" '[[ $(loops "$img") == 0 ]]'

# A file system due for a check (its mount count past the maximum, as tune2fs sets it)
# is checked before the mount: e2fsck resets the count, the mount makes it 1. Mounted
# without the check, it would be 6.
"$probe" open "$storage" "$tenant" due 16M 0:0 >/dev/null 2>&1
"$probe" close "$tenant" due
tune2fs -c 1 -C 5 "$storage/$tenant/due.img" >/dev/null 2>&1
out=$("$probe" open "$storage" "$tenant" due 16M 0:0 2>&1)
"$probe" close "$tenant" due
count=$(dumpe2fs -h "$storage/$tenant/due.img" 2>/dev/null | sed -n 's/^Mount count: *//p')
check "a file system due for a check is checked before it is mounted (mount count 5 of 1 -> ${count:-none}; $out)" \
	'[[ $count == 1 ]]'

# A broken image: e2fsck refuses it before the kernel sees it.
"$probe" open "$storage" "$tenant" bad 16M 0:0 >/dev/null 2>&1
"$probe" close "$tenant" bad
dd if=/dev/urandom of="$storage/$tenant/bad.img" bs=1k seek=1 count=2 conv=notrunc 2>/dev/null
out=$("$probe" open "$storage" "$tenant" bad 16M 0:0 2>&1)
rc=$?
check "a broken image is refused with e2fsck's word ($out)" '[[ $rc == 1 && $out == *e2fsck* ]]'
check "and is neither mounted nor attached" \
	'! findmnt /run/tenantd-volumes/"$tenant"/bad >/dev/null && [[ $(loops "$storage/$tenant/bad.img") == 0 ]]'
check "and not deleted" '[[ -f $storage/$tenant/bad.img ]]'

done_testing
