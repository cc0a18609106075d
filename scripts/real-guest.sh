#!/usr/bin/env bash
# The real-guest tier (issue 11): fetch Debian's cloud kernel and busybox-static with
# `apt-get download` (nothing is installed), unpack them, build hvcert's initramfs from the
# kernel package's own modules, and boot the real-guest profiles (fixtures/guests/real/).
# Minutes per profile on a nested host; never part of `cargo test` or `hvcert certify`.
#
#   scripts/real-guest.sh                      fetch if needed, run debian-cloud-none
#   scripts/real-guest.sh --fetch              fetch and build the initramfs only
#   scripts/real-guest.sh PROFILE... [-- hvcert real-guest options]
#
# Files go to $HVCERT_REAL_KERNEL_DIR (default target/real-guest):
#   kernel/     the unpacked linux-image-<version>-cloud-amd64 package (boot/, lib/modules/)
#   busybox/    the unpacked busybox-static package
#   initramfs.cpio
# Results go to target/real-guest-out/ (PROFILE.console.log, PROFILE.json).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${HVCERT_REAL_KERNEL_DIR:-target/real-guest}
export HVCERT_REAL_KERNEL_DIR=$dir
fetch_only=false
profiles=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    --fetch) fetch_only=true ;;
    --) shift; extra=("$@"); break ;;
    *) profiles+=(--profile "$1") ;;
    esac
    shift
done

fetch() {
    mkdir -p "$dir/debs"
    # linux-image-cloud-amd64 is a metapackage: download the versioned kernel it depends on.
    local pkg
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends:/ {print $2; exit}')
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends:/ {print $2; exit}')
    fi
    [ -n "$pkg" ] || { echo "real-guest: apt knows no linux-image-cloud-amd64 (Debian sources needed)" >&2; exit 2; }
    (cd "$dir/debs" && apt-get download -qq "$pkg" busybox-static)
    rm -rf "$dir/kernel" "$dir/busybox"
    dpkg-deb -x "$dir"/debs/linux-image-*.deb "$dir/kernel"
    dpkg-deb -x "$dir"/debs/busybox-static_*.deb "$dir/busybox"
}

if ! ls "$dir"/kernel/boot/vmlinuz-* >/dev/null 2>&1 || [ ! -x "$dir/busybox/bin/busybox" ]; then
    fetch
fi

cargo build --release -q -p certify --bin hvcert
hvcert=target/release/hvcert
if [ ! -s "$dir/initramfs.cpio" ] || [ "$fetch_only" = true ]; then
    "$hvcert" initramfs --kernel-tree "$dir/kernel" --busybox "$dir/busybox/bin/busybox" \
        -o "$dir/initramfs.cpio"
fi
[ "$fetch_only" = true ] && exit 0

[ ${#profiles[@]} -gt 0 ] || profiles=(--profile debian-cloud-none)
exec "$hvcert" real-guest "${profiles[@]}" --real-kernel-dir "$dir" \
    --out target/real-guest-out "${extra[@]}"
