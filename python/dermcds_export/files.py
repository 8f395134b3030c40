"""Replacing a file or a directory so that a reader, or the machine after a crash or a SIGKILL,
sees the old version or the new one, never a part: the rule core/src/file_util.cpp applies on
the C++ side. os.replace alone is atomic for readers but not durable: after a power loss the
rename may survive while the data it points to does not."""

import os
from pathlib import Path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(finished: Path, path: Path) -> None:
    """Moves the finished temporary file or directory `finished` over `path`: its data first
    (every file and folder inside a directory), then the rename, then the parent directory."""
    finished = Path(finished)
    if finished.is_dir():
        for folder, _, files in os.walk(finished):
            for name in files:
                _fsync(Path(folder) / name)
            _fsync(Path(folder))
    else:
        _fsync(finished)
    os.replace(finished, path)
    _fsync(Path(path).parent)


def write_text_atomically(path: Path, text: str) -> None:
    """`text` into `path` through a hidden sibling of this process; on failure `path` is unchanged
    and the sibling is gone."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        replace_durably(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
