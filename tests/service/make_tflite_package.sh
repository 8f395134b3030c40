#!/usr/bin/env bash
# Writes a repository with one package, tiny/1, carrying both the ONNX model and its TFLite fp32
# conversion (dermcds convert --package), for the service's TFLite tests.
# Its parity evidence comes from a real run (TFLite fp32 against ONNX Runtime fp32 on IMAGES), so
# that it may serve (docs/lifecycle.md, "The serving rule").
# usage: make_tflite_package.sh DERMCDS FIXTURE_REPOSITORY OUT_REPOSITORY IMAGES
set -euo pipefail
dermcds=${1:?usage: make_tflite_package.sh DERMCDS FIXTURE_REPOSITORY OUT_REPOSITORY}
fixture=${2:?missing FIXTURE_REPOSITORY}
out=${3:?missing OUT_REPOSITORY}
images=${4:?missing IMAGES}
rm -rf "$out"
mkdir -p "$out/tiny"
cp -r "$fixture/tiny/1" "$out/tiny/1"
"$dermcds" convert --package "$out/tiny/1" --precision fp32
"$dermcds" parity "$out/tiny/1" --images "$images" --no-torch --threads 1 >/dev/null
