#!/usr/bin/env bash
# Runs every libFuzzer target in BIN_DIR for SECONDS each (make fuzz; docs/testing.md, "Fuzzing").
# Seeds: tests/fuzz/corpus/<name>/ (read only); new inputs go to WORK_DIR/corpus/<name>/, so the
# committed corpus stays small. Prints each target's executions per second and coverage, and
# exits non-zero if any target finds a crash, a leak, a timeout or an out-of-memory; the
# offending inputs are left in WORK_DIR/findings/<name>/ for tests/fuzz/regressions/<name>/.
set -euo pipefail

usage() {
  echo "usage: scripts/run-fuzz.sh BIN_DIR SECONDS WORK_DIR"
  echo "Runs each fuzz_* binary in BIN_DIR for SECONDS seconds; fails on any finding."
}
if [[ ${1:-} == --help || ${1:-} == -h ]]; then usage; exit 0; fi
if [[ $# -ne 3 ]]; then usage >&2; exit 64; fi
bin_dir=$1 seconds=$2 work=$3
if ! [[ $seconds =~ ^[0-9]+$ ]] || (( seconds < 1 )); then echo "run-fuzz: SECONDS must be a positive integer, not '$seconds'" >&2; exit 64; fi
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir=$root/tests/fuzz
shopt -s nullglob
targets=("$bin_dir"/fuzz_*)
if (( ${#targets[@]} == 0 )); then echo "run-fuzz: no fuzz_* binaries in $bin_dir" >&2; exit 66; fi

mkdir -p "$work"
failed=()
printf '%-22s %10s %8s %8s %8s  %s\n' target runs exec/s cov ft result
for binary in "${targets[@]}"; do
  name=$(basename "$binary"); name=${name#fuzz_}
  corpus=$work/corpus/$name findings=$work/findings/$name log=$work/$name.log
  mkdir -p "$corpus" "$findings"
  dict=()
  case $name in
    *_json) dict=(-dict="$fuzz_dir/dictionaries/json.dict") ;;
    jpeg_decode|exif_orientation) dict=(-dict="$fuzz_dir/dictionaries/jpeg.dict") ;;
    png_decode) dict=(-dict="$fuzz_dir/dictionaries/png.dict") ;;
    multipart) dict=(-dict="$fuzz_dir/dictionaries/multipart.dict") ;;
  esac
  seeds=("$fuzz_dir/corpus/$name")
  [[ -d $fuzz_dir/regressions/$name ]] && seeds+=("$fuzz_dir/regressions/$name")
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$findings/" "${dict[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  # The last status line: "#123 DONE cov: 456 ft: 789 corp: ... exec/s: 321 rss: ..."
  line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$line")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$line")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$line")
  eps=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$line")
  found=("$findings"/*)
  result=ok
  if (( rc != 0 )) || (( ${#found[@]} > 0 )); then result="FAILED (rc $rc, ${#found[@]} finding(s) in $findings; log $log)"; failed+=("$name"); fi
  printf '%-22s %10s %8s %8s %8s  %s\n' "$name" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
if (( ${#failed[@]} > 0 )); then
  echo "run-fuzz: findings in: ${failed[*]}" >&2
  for name in "${failed[@]}"; do grep -m3 -E 'ERROR: |SUMMARY: |runtime error' "$work/$name.log" >&2 || true; done
  exit 1
fi
echo "run-fuzz: ${#targets[@]} targets, ${seconds} s each, no findings"
