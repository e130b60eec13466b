#!/usr/bin/env bash
# make-test-initramfs.sh BASE OUT GUEST — OUT becomes BASE (the real initramfs, for its
# kernel modules) followed by a cpio archive whose /init is GUEST (tests/vm/test-guest):
# the kernel unpacks both, and the later /init wins. The appended archive starts on a
# 4-byte boundary, as the kernel's unpacker requires of an uncompressed cpio.
set -eu
base=$1 out=$2 guest=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$guest" "$work/init"
chmod 755 "$work/init"
cp "$base" "$out.tmp"
size=$(stat -c %s "$out.tmp")
pad=$(((4 - size % 4) % 4))
[[ $pad -eq 0 ]] || head -c "$pad" /dev/zero >>"$out.tmp"
(cd "$work" && echo init | cpio --quiet -o -H newc -R 0:0) >>"$out.tmp"
mv "$out.tmp" "$out"
