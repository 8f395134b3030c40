"""The one sha256 of a file the pipeline records (checkpoints, artifacts, image sets), and how a
file is named in what the pipeline records: never by a path of the machine that built it."""

import hashlib
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[2]


def portable_path(path: Path) -> Optional[str]:
    """`path` relative to the repository root when it lies inside it, else None: packages name
    a file outside the repository by its file name and sha256 only (docs/model-package.md)."""
    for candidate in (Path(path).absolute(), Path(path).resolve()):
        try:
            return candidate.relative_to(REPO_ROOT).as_posix()
        except ValueError:
            continue
    return None


def resolve_recorded_path(recorded: str) -> Path:
    """A path as recorded by portable_path (older packages: absolute), back to a file here."""
    path = Path(recorded)
    return path if path.is_absolute() else REPO_ROOT / path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
