#!/usr/bin/env bash
# build-image.sh — builds the microVM kernel and initramfs from Debian's generic kernel
# package and the static tenant-agent (called by `make vm-image` / `make vm-image-debug`).
#
# Usage: guest-agent/build-image.sh AGENT OUTDIR [BUSYBOX]
#   AGENT    the static tenant-agent binary; it becomes /init
#   OUTDIR   where vmlinuz and initramfs.img go (cache in OUTDIR/cache)
#   BUSYBOX  optional static busybox: adds /bin/busybox and its applet links, and the
#            image is written as initramfs-debug.img (for tests and debugging)
#
# Steps: resolve the kernel package that linux-image-amd64 depends on, `apt-get
# download` it (skipped when the .deb is cached), `dpkg -x` it, pick the modules the
# guest needs plus everything they depend on (from modules.dep), `depmod -b`, write
# /lib/modules/load.list in dependency order, and pack a reproducible gzip'ed newc cpio
# (sorted names, owner 0:0, every mtime SOURCE_DATE_EPOCH).
# shellcheck disable=SC2012 # ls lists Debian package files and kernel versions: no blanks
set -euo pipefail

agent=${1:?usage: build-image.sh AGENT OUTDIR [BUSYBOX]}
out=${2:?usage: build-image.sh AGENT OUTDIR [BUSYBOX]}
busybox=${3:-}
src=$(cd "$(dirname "$0")/.." && pwd)
cache=${VM_CACHE:-$out/cache}
mkdir -p "$cache"
say() { echo "vm-image: $*"; }

# The modules the guest loads: virtio transport and console (the agent's channel),
# virtio-net, both share filesystems (9p and virtiofs), and overlay (the writable
# skeleton over a read-only root that lacks a mount point), and virtio_balloon (free page
# reporting: what the guest frees goes back to the host). Their dependencies are
# found below, not listed here.
WANTED="virtio_ring virtio virtio_mmio virtio_pci virtio_pci_legacy_dev virtio_pci_modern_dev
virtio_console virtio_net netfs fscache 9pnet 9pnet_virtio 9p fuse virtiofs overlay
virtio_balloon"

# ---- the kernel package ----
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1.*-amd64$/ { print $2; exit }')
if [[ -z $pkg ]]; then
	pkg=$(ls "$cache"/linux-image-6.1*-amd64_*.deb 2>/dev/null | sed -n '1s|.*/\(linux-image-[^_]*\)_.*|\1|p')
	[[ -n $pkg ]] || { say "cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
	say "apt cannot resolve linux-image-amd64; using the cached $pkg"
fi
deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -1 || true)
if [[ -z $deb ]]; then
	say "downloading $pkg (about 65 MB)"
	(cd "$cache" || exit 1; apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed as root' || true)
	deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -1 || true)
	[[ -n $deb ]] || { say "apt-get download $pkg failed" >&2; exit 1; }
else
	say "using cached ${deb##*/}"
fi
root=$cache/${pkg}
if [[ ! -f $root/.unpacked ]]; then
	say "unpacking ${deb##*/}"
	rm -rf "$root"
	dpkg -x "$deb" "$root"
	# The package ships no modules.dep (its postinst runs depmod): make one here.
	depmod -b "$root" "$(ls "$root/lib/modules" | head -1)"
	touch "$root/.unpacked"
fi
kver=$(ls "$root/lib/modules" | head -1)
moddir=$root/lib/modules/$kver
[[ -f $root/boot/vmlinuz-$kver && -f $moddir/modules.dep ]] ||
	{ say "$deb has no vmlinuz or modules.dep" >&2; exit 1; }
say "kernel $kver"

# ---- module selection, in dependency order ----
# modules.dep: "kernel/path/name.ko[.xz]: dep1.ko dep2.ko ...". A depth-first walk
# emits each module after all it depends on.
declare -A path_of deps_of builtin
while IFS= read -r line; do
	file=${line%%:*}
	name=${file##*/}
	name=${name%%.ko*}
	name=${name//-/_}
	path_of[$name]=$file
	deps_of[$name]=${line#*:}
done <"$moddir/modules.dep"
while IFS= read -r file; do
	name=${file##*/}
	name=${name%%.ko*}
	builtin[${name//-/_}]=1
done <"$moddir/modules.builtin"

order=()
declare -A state
visit() { # NAME: appends NAME after its dependencies (cycle: error)
	local n=$1 d dn
	[[ ${state[$n]:-} == "done" ]] && return 0
	[[ ${state[$n]:-} == active ]] && { say "dependency cycle at $n" >&2; exit 1; }
	state[$n]=active
	for d in ${deps_of[$n]}; do
		dn=${d##*/}
		dn=${dn%%.ko*}
		visit "${dn//-/_}"
	done
	state[$n]="done"
	order+=("$n")
}
for m in $WANTED; do
	if [[ -n ${path_of[$m]:-} ]]; then
		visit "$m"
	elif [[ -n ${builtin[$m]:-} ]]; then
		say "$m is built into the kernel"
	else
		say "module $m is in neither modules.dep nor modules.builtin of $kver" >&2
		exit 1
	fi
done
say "modules (${#order[@]}, load order): ${order[*]}"

# ---- the initramfs tree ----
name=initramfs.img
[[ -n $busybox ]] && name=initramfs-debug.img
stage=$out/stage-${name%.img}
rm -rf "$stage"
mkdir -p "$stage"/{dev,proc,sys,run,tmp,etc,sysroot,lib/modules/"$kver"}
install -m 0755 "$agent" "$stage/init"
: >"$stage/lib/modules/load.list"
for m in "${order[@]}"; do
	rel=${path_of[$m]}
	mkdir -p "$stage/lib/modules/$kver/${rel%/*}"
	case $rel in
	*.ko.xz) xz -dc "$moddir/$rel" >"$stage/lib/modules/$kver/${rel%.xz}"; rel=${rel%.xz} ;;
	*.ko.zst) zstd -qdc "$moddir/$rel" >"$stage/lib/modules/$kver/${rel%.zst}"; rel=${rel%.zst} ;;
	*) cp "$moddir/$rel" "$stage/lib/modules/$kver/$rel" ;;
	esac
	echo "/lib/modules/$kver/$rel" >>"$stage/lib/modules/load.list"
done
cp "$moddir/modules.builtin" "$moddir/modules.order" "$stage/lib/modules/$kver/"
[[ -f $moddir/modules.builtin.modinfo ]] && cp "$moddir/modules.builtin.modinfo" "$stage/lib/modules/$kver/"
depmod -b "$stage" "$kver"
if [[ $(id -u) == 0 ]]; then
	mknod -m 0600 "$stage/dev/console" c 5 1
	mknod -m 0666 "$stage/dev/null" c 1 3
fi
if [[ -n $busybox ]]; then
	mkdir -p "$stage/bin"
	install -m 0755 "$busybox" "$stage/bin/busybox"
	for applet in sh cat echo ls sleep true false id env mount ps kill head wc nc uname; do
		ln -s busybox "$stage/bin/$applet"
	done
	say "debug image: busybox at /bin"
fi
chmod 0755 "$stage" "$stage"/{dev,proc,sys,run,etc,sysroot,lib}
chmod 1777 "$stage/tmp"

# ---- reproducible archive ----
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || echo 0)}
find "$stage" -exec touch -h -d "@$epoch" {} +
tmpimg=$out/.$name.tmp
(cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$tmpimg"
mv "$tmpimg" "$out/$name"
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$kver" >"$out/kernel-release"
rm -rf "$stage"
say "wrote $out/vmlinuz ($(stat -c %s "$out/vmlinuz") bytes) and $out/$name ($(stat -c %s "$out/$name") bytes, sha256 $(sha256sum "$out/$name" | cut -c1-16)...)"
