#!/usr/bin/env bash
# The GPU check of docs/edge.md: `pack DIR` here, `run` on the GPU machine. The work is done by
# scripts/gpu_check.py (Python standard library only, so any python3 runs it: the GPU machine's
# own holds onnxruntime and the CUDA libraries the check probes).
#
# usage: scripts/gpu-check.sh pack DIR
#        scripts/gpu-check.sh run [--carry DIR] [--out FILE] [--work DIR] [--python PY] [--iterations N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=$(command -v python3 || true)
[ -n "$python" ] || { echo "gpu-check: error: python3 is needed" >&2; exit 2; }
exec "$python" "$here/gpu_check.py" "$@"
