"""The parity report's plot: per-class distributions of the absolute probability differences.

`python -m dermcds_export parity-plot --report parity.json --out parity.png` reads the report
`dermcds parity` writes (with its per-image probabilities) and draws one panel per compared pair:
for every class, the spread of |p_candidate - p_reference| over the images (box and points), on a
log scale, with the pair's max_abs_diff bound as a dashed line.
"""

import argparse
import json
from pathlib import Path

from .errors import InvalidInput, NotFound
from .files import replace_durably

# Differences below this are drawn at this value: a log axis has no place for exact zeros.
FLOOR = 1e-9


def pair_differences(report: dict, pair: dict):
    """Per class, the differences over the images both subjects answered."""
    classes = len(report["labels"])
    out = [[] for _ in range(classes)]
    for row in report["per_image"]:
        ref = row["probabilities"].get(pair["reference"])
        cand = row["probabilities"].get(pair["candidate"])
        if ref is None or cand is None:
            continue
        for c in range(classes):
            out[c].append(max(abs(cand[c] - ref[c]), FLOOR))
    return out


def plot(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = report["pairs"]
    labels = report["labels"]
    rows = max(1, len(pairs))
    figure, axes = plt.subplots(rows, 1, figsize=(9, 2.6 * rows + 0.8), squeeze=False)
    package = report["package"]
    figure.suptitle(f"{package['name']} v{package['version']}: |p_candidate - p_reference| per class "
                    f"({report['images']['count']} images)", fontsize=11)
    for axis, pair in zip(axes[:, 0], pairs):
        differences = pair_differences(report, pair)
        positions = list(range(1, len(labels) + 1))
        axis.boxplot([d if d else [FLOOR] for d in differences], positions=positions, widths=0.5,
                     showfliers=False, medianprops={"color": "black"})
        for x, values in zip(positions, differences):
            # Deterministic horizontal spread, so the same report always gives the same picture.
            jitter = [x + 0.18 * (((i * 0.618034) % 1.0) - 0.5) for i in range(len(values))]
            axis.scatter(jitter, values, s=6, alpha=0.45, color="tab:blue", linewidths=0)
        bound = (pair.get("bounds") or {}).get("max_abs_diff")
        if bound:
            axis.axhline(bound, color="tab:red", linestyle="--", linewidth=1, label=f"bound {bound:g}")
            axis.legend(loc="upper right", fontsize=8)
        axis.set_yscale("log")
        top = max([bound or 0.0] + [max(d) for d in differences if d])
        axis.set_ylim(FLOOR / 2, max(1e-3, top) * 3)
        axis.set_xticks(positions)
        axis.set_xticklabels(labels, fontsize=8)
        verdict = "pass" if pair["passed"] else "FAIL"
        axis.set_title(f"{pair['candidate']} vs {pair['reference']}: max {pair['max_abs_diff']:.3g}, "
                       f"triage agreement {100 * pair['triage_agreement']:.1f}% [{verdict}]", fontsize=9)
        axis.grid(axis="y", which="major", alpha=0.3)
    if not pairs:
        axes[0, 0].text(0.5, 0.5, "no pair compared", ha="center", va="center")
        axes[0, 0].set_axis_off()
    figure.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    figure.savefig(tmp, dpi=90)
    plt.close(figure)
    replace_durably(tmp, out)


def run(args: argparse.Namespace) -> int:
    path = Path(args.report)
    if not path.is_file():
        raise NotFound(f"no parity report at {path}")
    report = json.loads(path.read_text())
    if "per_image" not in report:
        raise InvalidInput(f"{path} has no per-image probabilities (dermcds parity --report writes them)")
    plot(report, Path(args.out))
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("parity-plot", help="PNG of a parity report's per-class differences",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", required=True, help="parity.json written by dermcds parity --report")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.set_defaults(func=run)
