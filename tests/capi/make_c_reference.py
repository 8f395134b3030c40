"""Writes the C API tests' reference data in a form C reads with fscanf.

From the tiny packages' numpy reference (tests/core/make_tiny_packages.py, probabilities computed
with Pillow + torchvision + numpy, none of our C++), writes:

  reference.txt   one line per photograph: "encoded <path> <p0> ... <p7>", then for some of
                  them "rgb <file> <width> <height> <p0> ... <p7>", where <file> holds the
                  photograph's pixels as Pillow decodes them (EXIF orientation applied), packed
                  RGB rows. Both kinds must give the same probabilities.

usage: make_c_reference.py TINY_DIR OUT_DIR
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
from dermcds_export.reference_transform import load_rgb  # noqa: E402

RGB_IMAGES = 3  # the first few photographs also go in as decoded pixels


def main():
    tiny_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(tiny_dir, "tiny_reference.json")) as f:
        references = json.load(f)
    lines = []
    for index, reference in enumerate(references):
        probabilities = " ".join(repr(float(p)) for p in reference["probabilities"])
        lines.append(f"encoded {reference['image']} {probabilities}")
        if index < RGB_IMAGES:
            pixels = np.asarray(load_rgb(reference["image"]), dtype=np.uint8)
            height, width, _ = pixels.shape
            raw = os.path.join(out_dir, f"image{index}.rgb")
            with open(raw, "wb") as f:
                f.write(np.ascontiguousarray(pixels).tobytes())
            lines.append(f"rgb {raw} {width} {height} {probabilities}")
    with open(os.path.join(out_dir, "reference.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
