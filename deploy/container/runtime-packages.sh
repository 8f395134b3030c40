#!/bin/sh
# Prints the Debian packages that own the shared libraries BINARY links, one per line, sorted, for
# the runtime stage of the Containerfile to install. Libraries under SKIP (the pinned runtimes we
# copy in ourselves) are left out.
#
# Debian 12 has a merged /usr: ldd may name /lib/x86_64-linux-gnu/libjpeg.so.62 while dpkg
# registered /usr/lib/x86_64-linux-gnu/libjpeg.so.62 (or the other way round), so both spellings
# are asked. A library no package owns is an error, not a silent gap: the image would build and
# then fail to start.
#
# usage: runtime-packages.sh BINARY SKIP
set -eu
binary=$1 skip=$2
libs=$(ldd "$binary" | awk '/=> \//{print $3}')
[ -n "$libs" ] || { echo "runtime-packages: ldd found no libraries in $binary" >&2; exit 1; }
owners=""
for lib in $libs; do
  case "$lib" in "$skip"/*) continue ;; esac
  real=$(readlink -f "$lib")
  owner=""
  for path in "$lib" "$real" "/usr${lib#/usr}" "/usr${real#/usr}" "${lib#/usr}" "${real#/usr}"; do
    owner=$(dpkg -S "$path" 2>/dev/null | cut -d: -f1 | head -n1)
    [ -n "$owner" ] && break
  done
  [ -n "$owner" ] || { echo "runtime-packages: no Debian package owns $lib" >&2; exit 1; }
  owners="$owners$owner
"
done
printf '%s' "$owners" | sort -u
