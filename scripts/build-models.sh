#!/usr/bin/env bash
# Prepares the model repository the service and the tests use: the server model
# (EfficientNet-B4, ONNX) and the mobile model (MobileNetV3-Large, ONNX). Packages that exist
# are kept; the demo checkpoints are cached by content hash, so a second run does no work.
#
# usage: scripts/build-models.sh DERMCDS_BINARY REPOSITORY
set -euo pipefail
dermcds=${1:?usage: build-models.sh DERMCDS_BINARY REPOSITORY}
repository=${2:?usage: build-models.sh DERMCDS_BINARY REPOSITORY}

for arch in efficientnet_b4 mobilenet_v3_large; do
  case "$arch" in
    efficientnet_b4) name=derm-effnet-b4 ;;
    mobilenet_v3_large) name=derm-mnv3-large ;;
  esac
  if "$dermcds" models verify "$repository/$name" >/dev/null 2>&1; then
    echo "build-models: $name is present and intact" >&2
  else
    "$dermcds" models export --arch "$arch" --repository "$repository" --name "$name"
  fi
done
