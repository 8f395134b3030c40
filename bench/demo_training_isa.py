"""Does pinning PyTorch's CPU kernels to one instruction set make demo training byte-identical?

Issue 9 item 5. Trains a shortened demo recipe (same code path as the real one: rendering,
training, batch-norm recalibration, head refit) once per configuration, each in its own process
with the ISA limits set before torch is imported, and prints per configuration the sha256 of the
trained tensors and the CPU seconds it took. Configurations:

  default    nothing set (ATen's own choice; oneDNN picks the best ISA of this CPU)
  avx2       ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 (what dermcds_export pins)
  avx512     ATEN_CPU_CAPABILITY=avx512, ONEDNN_MAX_CPU_ISA=AVX512_CORE

Two runs of one configuration must agree (determinism on one machine); whether a configuration
agrees across CPUs needs a second CPU model (run this there and compare the digests).

    PYTHONPATH=python /usr/bin/python3 bench/demo_training_isa.py [--arch mobilenet_v3_large] [--full]
"""

import argparse
import json
import os
import subprocess
import sys

CONFIGS = {
    "default": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
}

CHILD = r"""
import dataclasses, hashlib, json, sys, time
from dermcds_export import demo_training as d
recipe = d.recipe_for(sys.argv[1])
if sys.argv[2] != "full":
    recipe = dataclasses.replace(recipe, train_images=256, epochs=1, head_images=32, recal_images=16, eval_images=8)
cpu = d._cpu_seconds()
state, report = d.train(recipe)
digest = hashlib.sha256()
for k in sorted(state):
    digest.update(k.encode() + state[k].contiguous().numpy().tobytes())
print(json.dumps({"sha256": digest.hexdigest(), "cpu_s": round(d._cpu_seconds() - cpu, 1),
                  "train_s": report["timings_s"]["train"], "isa": report.get("cpu", {})}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="mobilenet_v3_large")
    parser.add_argument("--full", action="store_true", help="the whole recipe (minutes per run) instead of a short one")
    parser.add_argument("--configs", nargs="*", default=["default", "default", "avx2", "avx2", "avx512"])
    args = parser.parse_args()
    results = []
    for name in args.configs:
        pinned = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
        env = {k: v for k, v in os.environ.items() if k not in pinned}
        env.update(CONFIGS[name])
        env["DERMCDS_ISA_PIN"] = "off" if name == "default" else "as-set"
        out = subprocess.run([sys.executable, "-c", CHILD, args.arch, "full" if args.full else "short"], env=env,
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        result = dict(json.loads(out.strip().splitlines()[-1]), config=name)
        print(json.dumps(result), flush=True)
        results.append(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
