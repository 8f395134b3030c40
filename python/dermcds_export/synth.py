"""Synthetic lesion image sets with ISIC 2019 ground truth (validation, calibration, tests).

`python -m dermcds_export synth --out DIR --count N [--seed S] [--format png|jpeg|mixed]
[--shorter-side MIN MAX]` writes N lesion images drawn by lesions.py (balanced over the eight
classes, in a seeded random order) and DIR/ground_truth.csv in the layout of the ISIC 2019
training ground truth: a header `image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK`, then one row per image
with its name (no extension, as ISIC writes it) and a one-hot class. DIR/synth.json records the
seed, the generator's digest and what was drawn in each image. The same arguments always give the
same files.

--shorter-side bounds the canvases' shorter side (default: the generator's 300-640 pixels). The
validation set draws it from 380, so that every lesion of it is a photograph the largest model
input (EfficientNet-B4's 380) accepts: a smaller one is refused as too small (docs/safety.md),
which is a test of its own and not what a parity or evaluation set measures.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import lesions
from .files import replace_durably, write_text_atomically

FORMATS = ("png", "jpeg", "mixed")
JPEG_QUALITY = 92
GROUND_TRUTH = "ground_truth.csv"
CSV_COLUMNS = ("image",) + lesions.LABELS + ("UNK",)


def generator_digest() -> str:
    return hashlib.sha256(Path(lesions.__file__).read_bytes()).hexdigest()


def image_name(seed: int, index: int) -> str:
    return f"SYN_{seed}_{index:06d}"


def write_set(out: Path, count: int, seed: int = 0, image_format: str = "png",
              shorter_side: Optional[Sequence[int]] = None) -> list:
    """Writes the set; returns one record per image (name, file, label, drawn features)."""
    if count < 1:
        raise ValueError(f"--count must be at least 1, not {count}")
    if image_format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, not {image_format!r}")
    if shorter_side is not None:
        low, high = (int(v) for v in shorter_side)
        if not 16 <= low <= high:
            raise ValueError(f"--shorter-side must be MIN MAX with 16 <= MIN <= MAX, not {low} {high}")
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for index, label in enumerate(lesions.dataset_labels(seed, count)):
        rng = lesions.sample_rng(seed, index)
        # The canvas size is the generator's first draw, so bounding it changes only the size:
        # the default bounds give the images render_lesion draws on its own.
        size = lesions.random_canvas_size(rng, (low, high)) if shorter_side is not None else None
        image, info = lesions.render_lesion(rng, label, size)
        jpeg = image_format == "jpeg" or (image_format == "mixed" and index % 2 == 1)
        name = image_name(seed, index)
        file = f"{name}.jpg" if jpeg else f"{name}.png"
        tmp = out / f".{file}.tmp"
        if jpeg:
            image.save(tmp, format="JPEG", quality=JPEG_QUALITY)
        else:
            image.save(tmp, format="PNG")
        replace_durably(tmp, out / file)
        records.append({"image": name, "file": file, "label": label, "width": info.width, "height": info.height,
                        "radius": round(info.radius, 4), "asymmetry": round(info.asymmetry, 4),
                        "irregularity": round(info.irregularity, 4), "edge_width": round(info.edge_width, 4),
                        "colours": [list(c) for c in info.colours], "structures": info.structures,
                        "skin_tone": list(info.skin_tone), "hairs": info.hairs})
        if (index + 1) % 16 == 0 or index + 1 == count:
            print(f"[synth] {index + 1}/{count} images", file=sys.stderr, flush=True)

    lines = [",".join(CSV_COLUMNS)]
    for record in records:
        onehot = ["1.0" if code == record["label"] else "0.0" for code in lesions.LABELS]
        lines.append(",".join([record["image"]] + onehot + ["0.0"]))
    write_text_atomically(out / GROUND_TRUTH, "\n".join(lines) + "\n")
    write_text_atomically(out / "synth.json", json.dumps({
        "generator": "dermcds_export.lesions", "generator_sha256": generator_digest(), "seed": seed,
        "count": count, "format": image_format,
        "shorter_side": list(shorter_side) if shorter_side else None, "labels": list(lesions.LABELS),
        "images": records}, indent=1) + "\n")
    return records


def read_ground_truth(path: Path) -> dict:
    """image name -> class code, from an ISIC 2019 style ground-truth CSV."""
    rows = path.read_text().splitlines()
    header = rows[0].split(",")
    if header[0] != "image":
        raise ValueError(f"{path}: first column must be 'image', not {header[0]!r}")
    out = {}
    for row in rows[1:]:
        cells = row.split(",")
        hot = [header[i] for i, v in enumerate(cells[1:], 1) if float(v) == 1.0]
        if len(hot) != 1:
            raise ValueError(f"{path}: row {cells[0]!r} is not one-hot")
        out[cells[0]] = hot[0]
    return out


def run(args: argparse.Namespace) -> int:
    write_set(Path(args.out), args.count, args.seed, args.format, args.shorter_side)
    print(f"[synth] wrote {args.count} images and {GROUND_TRUTH} to {args.out}", file=sys.stderr)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="synthetic lesion images with ISIC 2019 ground truth",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory to write into (created if missing)")
    parser.add_argument("--count", required=True, type=int, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--format", choices=FORMATS, default="png",
                        help="image files: png, jpeg (quality 92) or mixed (alternating); default png")
    parser.add_argument("--shorter-side", nargs=2, type=int, metavar=("MIN", "MAX"),
                        help="bounds of the canvases' shorter side in pixels (default 300 640)")
    parser.set_defaults(func=run)
