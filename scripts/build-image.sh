#!/usr/bin/env bash
# Builds the pms-derm-cds container image (deploy/container/Containerfile, docs/deploy.md):
#   1. a Debian 12 base from Debian's own packages: debootstrap --variant=minbase into
#      .cache/image/rootfs (once; cached), imported with `podman import` as
#      localhost/dermcds-debian12:bookworm. No image registry is used.
#   2. `podman build --isolation=chroot` of the Containerfile on that base (crun cannot run
#      containers on our build machines; chroot isolation needs no runtime).
# The image holds the service binary, the pinned ONNX Runtime and TFLite libraries and the
# Debian libraries they link; models are mounted at /models.
#
# usage: scripts/build-image.sh [--tag TAG]      (default tag: localhost/pms-derm-cds:1)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tag=localhost/pms-derm-cds:1
base=localhost/dermcds-debian12:bookworm
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) shift; tag=${1:?--tag needs a value} ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
say() { printf 'build-image: %s\n' "$*" >&2; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian package $tool; scripts/debian-packages.txt)"
done
[ -f "$root/.deps/onnxruntime/lib/x64/libonnxruntime.so.1" ] || die "run 'make setup' first (.deps/onnxruntime is missing)"

cache=$root/.cache/image
if ! podman image exists "$base"; then
  if [ ! -f "$cache/rootfs.complete" ]; then
    mirror=$("$root/scripts/provision.sh" --print-mirror)
    say "debootstrap --variant=minbase bookworm (a few minutes, once)"
    rm -rf "$cache/rootfs" && mkdir -p "$cache"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$cache/rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $cache/debootstrap.log"
    rm -rf "$cache/rootfs/var/cache/apt/archives/"*.deb
    touch "$cache/rootfs.complete"
  fi
  say "importing the base as $base"
  tar -C "$cache/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
fi
say "podman build $tag"
SECONDS=0
podman build --isolation=chroot --build-arg "BASE=$base" -f "$root/deploy/container/Containerfile" -t "$tag" "$root"
say "built $tag in ${SECONDS} s: $(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
