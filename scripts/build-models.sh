#!/usr/bin/env bash
# Prepares the model repository the service and the tests use, through the model lifecycle
# (docs/lifecycle.md): `dermcds models build` builds a new package version only when its inputs
# changed (checkpoint, export pipeline, converter, calibration set) and says so otherwise. Every
# new version is gated by a parity run on the validation images; one that passes is promoted,
# one that fails is kept as a rejected candidate and this script fails.
#
#   derm-mnv3-large  MobileNetV3-Large (mobile): ONNX + TFLite fp32, fp16, int8 (calibration set)
#   derm-effnet-b4   EfficientNet-B4 (server):   ONNX
#
# The validation and calibration image sets (data/validation/image-sets.json) are made first, in
# .cache/image-sets/; they too are rebuilt only when their definition or generator changes.
#
# usage: scripts/build-models.sh DERMCDS_BINARY REPOSITORY
set -euo pipefail
dermcds=${1:?usage: build-models.sh DERMCDS_BINARY REPOSITORY}
repository=${2:?usage: build-models.sh DERMCDS_BINARY REPOSITORY}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${DERMCDS_PYTHON:-/usr/bin/python3}
sets=$root/.cache/image-sets
policies=$root/data/validation/policies

for set in validation calibration; do
  PYTHONPATH=$root/python "$python" -m dermcds_export image-set --name "$set" --out "$sets/$set"
done

status=0
build() { # NAME ARCH [options...]
  local name=$1 arch=$2
  shift 2
  echo "build-models: $name" >&2
  "$dermcds" models build --arch "$arch" --name "$name" --repository "$repository" \
    --images "$sets/validation" --policy "$policies/$name.json" --promote "$@" || status=$?
}
build derm-mnv3-large mobilenet_v3_large --tflite fp32,fp16,int8 --calibration "$sets/calibration"
build derm-effnet-b4 efficientnet_b4
exit $status
