#!/usr/bin/env bash
# service_bench for two pms-derm-cds binaries side by side in one run (issue 13: the HTTP layer
# must not make the service's figures worse). The binaries alternate ROUNDS times, one server at
# a time, so that drift on a shared machine hits both alike; each service_bench call prints its
# figures and writes JSON, and the summary at the end gives new/old ratios of the medians.
set -euo pipefail
usage() {
  echo "usage: bench/http_layer_compare.sh OLD_BINARY NEW_BINARY OUT_DIR [ROUNDS] -- SERVICE_BENCH_ARGS..."
  echo "Runs build/bin/service_bench --server OLD, then --server NEW, ROUNDS times (default 2)."
}
if [[ ${1:-} == --help || ${1:-} == -h ]]; then usage; exit 0; fi
if [[ $# -lt 3 ]]; then usage >&2; exit 64; fi
old=$1 new=$2 out=$3; shift 3
rounds=2
if [[ $# -gt 0 && $1 != -- ]]; then rounds=$1; shift; fi
[[ ${1:-} == -- ]] && shift
bench=${SERVICE_BENCH:-build/bin/service_bench}
mkdir -p "$out"
for ((r = 1; r <= rounds; ++r)); do
  for label in old new; do
    binary=$old; [[ $label == new ]] && binary=$new
    echo "== round $r: $label ($binary)"
    # service_bench exits 1 when its own goals are unmet; the comparison still wants its figures.
    "$bench" --server "$binary" --json-out "$out/$label-$r.json" "$@" || echo "(service_bench exited $?)"
  done
done
/usr/bin/python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from flat(v, prefix + k + ".")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield prefix + k, v
runs = {label: [dict(flat(json.load(open(f"{out}/{label}-{r}.json")))) for r in range(1, rounds + 1)] for label in ("old", "new")}
print(f"{'figure':55} {'old':>10} {'new':>10} {'new/old':>8}")
for key in runs["old"][0]:
    if not any(w in key for w in ("per_s", "p50", "p99", "ms", "rate")):
        continue
    o = statistics.median(r[key] for r in runs["old"] if key in r)
    n = statistics.median(r[key] for r in runs["new"] if key in r)
    print(f"{key:55} {o:10.2f} {n:10.2f} {n / o if o else float('nan'):8.3f}")
PY
