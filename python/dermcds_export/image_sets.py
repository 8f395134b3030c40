"""The image sets the model lifecycle uses, produced at build time (docs/validation-images.md).

`python -m dermcds_export image-set --name validation --out DIR` fills DIR with the set named in
data/validation/image-sets.json: synthetic lesions drawn by our own generator (synth.py, with the set's
seed, count, format and canvas bounds) and, for the validation set, the real
photographs listed in data/validation/real_photographs.json, each copied from the Debian package
that ships it after its sha256 is checked. DIR/image-set.json lists every file with its sha256 and
origin. A second run with the same definitions and generator code does nothing; otherwise the set
is built beside DIR and swapped in whole, so DIR never holds half a set.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from .errors import InvalidInput, NotFound
from .files import replace_durably
from .hashing import sha256_file

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = REPO_ROOT / "data" / "validation" / "image-sets.json"
INDEX = "image-set.json"


def _generator_digest() -> str:
    """The code that decides the synthetic images: the lesion generator and the set writer."""
    from . import synth

    digest = hashlib.sha256()
    digest.update(synth.generator_digest().encode())
    digest.update(Path(synth.__file__).read_bytes())
    return digest.hexdigest()


def _photographs(definition: dict, definitions_path: Path) -> list:
    name = definition.get("real_photographs")
    if not name:
        return []
    return json.loads((definitions_path.parent / name).read_text())["photographs"]


def _resolve(source_path: str) -> Path:
    path = Path(source_path)
    return path if path.is_absolute() else REPO_ROOT / path


def _stamp(name: str, definition: dict, photographs: list) -> str:
    text = json.dumps({"name": name, "definition": definition, "photographs": photographs,
                       "generator": _generator_digest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def build(name: str, out: Path, definitions_path: Path = DEFINITIONS) -> Path:
    definitions = json.loads(definitions_path.read_text())
    if name not in definitions["sets"]:
        raise InvalidInput(f"no image set {name!r} in {definitions_path} (sets: {', '.join(definitions['sets'])})")
    definition = definitions["sets"][name]
    photographs = _photographs(definition, definitions_path)
    stamp = _stamp(name, definition, photographs)
    index_path = out / INDEX
    if index_path.exists():
        try:
            if json.loads(index_path.read_text()).get("stamp") == stamp:
                print(f"image-set: {name} in {out} is up to date", file=sys.stderr)
                return out
        except ValueError:
            pass  # a damaged index: rebuild

    if out.exists() and any(out.iterdir()) and not index_path.exists():
        raise InvalidInput(f"{out} holds files but no {INDEX}: not an image set this tool made, so it is left alone")
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        files = []
        synthetic = definition.get("synthetic")
        if synthetic:
            print(f"image-set: drawing {synthetic['count']} synthetic lesions (seed {synthetic['seed']})",
                  file=sys.stderr, flush=True)
            from . import synth

            synth.write_set(staging, synthetic["count"], synthetic["seed"], synthetic.get("format", "png"),
                            synthetic.get("shorter_side"))
            for path in sorted(staging.iterdir()):
                if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                    files.append({"file": path.name, "sha256": sha256_file(path), "origin": "synthetic",
                                  "seed": synthetic["seed"]})
        for photo in photographs:
            source = _resolve(photo["source_path"])
            if not source.is_file():
                raise NotFound(f"{source} is missing: install Debian's {photo['package']} "
                               f"{photo['package_version']} (or run scripts/provision.sh)")
            actual = sha256_file(source)
            if actual != photo["sha256"]:
                raise InvalidInput(f"{source} has sha256 {actual}, real_photographs.json records {photo['sha256']} "
                                   f"({photo['package']} {photo['package_version']})")
            shutil.copyfile(source, staging / photo["file"])
            files.append({"file": photo["file"], "sha256": actual, "origin": "real photograph",
                          "package": photo["package"], "package_version": photo["package_version"],
                          "package_path": photo["package_path"], "licence": photo["licence"]})
        index = {"format": "dermcds-image-set", "name": name, "stamp": stamp, "definition": definition,
                 "images": len(files), "files": files}
        (staging / INDEX).write_text(json.dumps(index, indent=2) + "\n")
        if out.exists():
            retired = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, retired)
            replace_durably(staging, out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            replace_durably(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"image-set: {name}: {len(files)} images in {out}", file=sys.stderr)
    return out


def run(args: argparse.Namespace) -> int:
    build(args.name, Path(args.out), Path(args.definitions))
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("image-set", help="materialise a validation or calibration image set",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="set name in the definitions (validation, calibration)")
    parser.add_argument("--out", required=True, help="directory to fill")
    parser.add_argument("--definitions", default=str(DEFINITIONS), help="image-sets.json (default: the repository's)")
    parser.set_defaults(func=run)
