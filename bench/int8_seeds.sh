#!/bin/sh
# int8 against ONNX Runtime fp32 for several checkpoints of the demo MobileNetV3-Large recipe
# (issue 9: the goal must hold on any seed of the recipe, not only on the shipped checkpoint).
#
#   bench/int8_seeds.sh [demo | SEED | CHECKPOINT.pt] ...      (default: demo 1 2 3 4)
#
# For each checkpoint: trains it if it is not cached (python -m dermcds_export train-demo
# [--seed N]; a checkpoint file is taken as it is), exports a package, converts it to TFLite fp32
# and int8 (100 calibration lesions, seed 101, with the sensitivity report), and runs
# int8_quality_bench on 200 held-out lesions drawn with seed 303 (never used for training,
# calibration or the tests). Needs build/bin/{dermcds,int8_quality_bench}. Writes under
# $INT8_SEEDS_DIR (default build/int8-seeds): per checkpoint NAME.txt and NAME.json, and with
# INT8_REPORT=1 the full sensitivity table NAME-report.md (twice the conversion time).
# docs/converter.md has the figures.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${INT8_SEEDS_DIR:-$root/build/int8-seeds}
bin=$root/build/bin
python=${DERMCDS_PYTHON:-/usr/bin/python3}
export PYTHONPATH="$root/python"
mkdir -p "$out"
[ $# -gt 0 ] || set -- demo 1 2 3 4

images() {  # DIR COUNT SEED
  if [ ! -f "$1/.complete" ]; then
    rm -rf "$1"
    "$python" -m dermcds_export synth --out "$1" --count "$2" --seed "$3" >/dev/null
    touch "$1/.complete"
  fi
}
images "$out/calibration" 100 101
images "$out/heldout" 200 303

for subject in "$@"; do
  case $subject in
    demo) name=demo; checkpoint=$("$python" -m dermcds_export train-demo --arch mobilenet_v3_large) ;;
    *.pt) name=$(basename "$subject" .pt); checkpoint=$subject ;;
    *) name=seed$subject; checkpoint=$("$python" -m dermcds_export train-demo --arch mobilenet_v3_large --seed "$subject") ;;
  esac
  echo "== $name: $checkpoint" >&2
  # A package lives at REPOSITORY/NAME/VERSION, and tools refuse one whose manifest names another.
  package=$out/derm-int8-$name/1
  rm -rf "${out:?}/derm-int8-$name" "$out/$name-check"
  "$python" -m dermcds_export export --arch mobilenet_v3_large --checkpoint "$checkpoint" --out "$package" \
    --name "derm-int8-$name" --version 1 --check-dir "$out/$name-check" >/dev/null
  "$bin/dermcds" convert --package "$package" --precision fp32 >/dev/null
  if [ "${INT8_REPORT:-0}" = 1 ]; then
    "$bin/dermcds" convert --package "$package" --precision int8 --calibration "$out/calibration" --report "$out/$name-report.md"
  else
    "$bin/dermcds" convert --package "$package" --precision int8 --calibration "$out/calibration"
  fi
  "$bin/int8_quality_bench" --package "$package" --images "$out/heldout" --json-out "$out/$name.json" >"$out/$name.txt" ||
    { cat "$out/$name.txt"; echo "int8_quality_bench failed on $name" >&2; exit 1; }
  cat "$out/$name.txt"
done
