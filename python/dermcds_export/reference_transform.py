"""The image pipeline the models are trained and exported with.

This is the reference the C++ decoder and preprocessor (core/src/image_decode.cpp,
core/src/preprocess.cpp) are tested against, so every choice here is one the C++ side makes too:

- EXIF orientation is applied (PIL.ImageOps.exif_transpose).
- 16-bit greyscale keeps the high byte of each sample. Pillow opens such PNGs in mode "I;16"/"I",
  and its own convert("RGB") clips those values to 255 instead of scaling them, which would turn
  most 16-bit photographs white; 16-bit colour PNGs are already reduced to their high byte by
  Pillow's decoder, so both paths agree.
- Everything else goes through Image.convert("RGB"): alpha is dropped, palettes expanded,
  greyscale replicated, CMYK converted with Pillow's formula.
- Resize(shorter side) + CenterCrop + ToTensor + Normalize from torchvision 0.14, which on PIL
  images resizes with Pillow's Image.resize.
"""

import io
import os
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import transforms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_INTERPOLATION = {
    "bilinear": transforms.InterpolationMode.BILINEAR,
    "bicubic": transforms.InterpolationMode.BICUBIC,
}


def load_rgb(source: Union[str, bytes, "os.PathLike"]) -> Image.Image:
    """Opens an image file or encoded bytes as 8-bit RGB, the way derm-cds decodes it."""
    image = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        high_bytes = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
        image = Image.fromarray(high_bytes, mode="L")
    return image.convert("RGB")


def make_transform(size: int, shorter_side: int, interpolation: str = "bilinear",
                   mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
    """PIL RGB image -> float32 tensor [3, size, size], normalized."""
    if interpolation not in _INTERPOLATION:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATION)}, not {interpolation!r}")
    return transforms.Compose([
        transforms.Resize(shorter_side, interpolation=_INTERPOLATION[interpolation]),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def transform_from_manifest_input(spec: dict):
    """The transform described by a manifest's "input" object (docs/model-package.md)."""
    resize = spec["resize"]
    if resize.get("policy") != "shorter_side_then_center_crop":
        raise ValueError(f"unsupported resize policy {resize.get('policy')!r}")
    return make_transform(spec["size"], resize["shorter_side"], resize["interpolation"],
                          spec["mean"], spec["std"])


def preprocess_file(source, spec: dict) -> torch.Tensor:
    """One image file -> [3, S, S] tensor, exactly as derm-cds preprocesses it."""
    return transform_from_manifest_input(spec)(load_rgb(source))
