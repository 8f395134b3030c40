#!/usr/bin/env bash
# The conformance suite's package: tiny/1 from tests/core (its ONNX model) plus, where a dermcds
# with the converter is at hand, its TFLite fp32 conversion, so every compiled runtime has an
# artifact of the same network to run. The cross build passes the host's dermcds.
# usage: make_packages.sh TINY_REPOSITORY OUT_REPOSITORY [DERMCDS_WITH_CONVERTER]
set -euo pipefail
tiny=${1:?usage: make_packages.sh TINY_REPOSITORY OUT_REPOSITORY [DERMCDS]}
out=${2:?missing OUT_REPOSITORY}
dermcds=${3:-}
rm -rf "$out"
mkdir -p "$out/tiny"
cp -r "$tiny/tiny/1" "$out/tiny/1"
if [[ -n "$dermcds" ]]; then
  "$dermcds" convert --package "$out/tiny/1" --precision fp32
else
  echo "make_packages.sh: no dermcds with the converter; the package has its ONNX artifact only" >&2
fi
