#!/usr/bin/python3
"""Writes the images and the Pillow/torchvision reference outputs the imaging tests compare against.

Run with Debian's interpreter (Pillow 9.4, torchvision 0.14); CTest runs it as the setup fixture
of tests/imaging. Every reference comes from python/dermcds_export/reference_transform.py, the
pipeline training uses, so the C++ decoder and preprocessor are held to what the models saw.

Output (under --out):
  cases/<name>.<ext>    encoded inputs: real photographs and synthetic edge cases
  ref/<name>.rgb        load_rgb() output, raw 8-bit RGB, row-major
  ref/<name>.<spec>.resized.rgb   torchvision Resize(shorter side) output, raw 8-bit RGB
  ref/<name>.<spec>.f32 the final tensor [3, S, S], raw little-endian float32
  sweep/...             random images and their resizes to many sizes (both filters)
  invalid/...           inputs that must be refused, with what Pillow does with them
  manifest.json         what is where, with the expected sizes
"""

import argparse
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.transforms import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
from dermcds_export import reference_transform as ref  # noqa: E402

SPECS = {
    # EfficientNet-B4 (server) and MobileNetV3 (mobile) inputs, each with both filters.
    "b4_bilinear": {"crop": 380, "resize": 384, "interpolation": "bilinear"},
    "b4_bicubic": {"crop": 380, "resize": 384, "interpolation": "bicubic"},
    "mobile_bilinear": {"crop": 224, "resize": 256, "interpolation": "bilinear"},
    "mobile_bicubic": {"crop": 224, "resize": 256, "interpolation": "bicubic"},
}
PHOTO_SPECS = list(SPECS)
SYNTHETIC_SPECS = ["mobile_bicubic"]  # decoding cases: the resize is covered elsewhere
GEOMETRY_SPECS = ["b4_bilinear", "mobile_bicubic"]
MAX_STORED_RESIZE_PIXELS = 1_500_000


# --- hand-made PNGs: Pillow cannot write interlaced, 2/4-bit grey or 16-bit colour PNGs ------

def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def pack_rows(samples: np.ndarray, bit_depth: int) -> list:
    """samples: (h, w, channels) integers -> one packed byte string per row (no filter byte)."""
    h, w, c = samples.shape
    rows = []
    for y in range(h):
        flat = samples[y].reshape(-1).astype(np.uint32)
        if bit_depth == 16:
            rows.append(flat.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(flat.astype(np.uint8).tobytes())
        else:
            per_byte = 8 // bit_depth
            padded = np.zeros(-(-len(flat) // per_byte) * per_byte, dtype=np.uint32)
            padded[: len(flat)] = flat
            groups = padded.reshape(-1, per_byte)
            packed = np.zeros(len(groups), dtype=np.uint32)
            for i in range(per_byte):
                packed |= groups[:, i] << (8 - bit_depth * (i + 1))
            rows.append(packed.astype(np.uint8).tobytes())
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def encode_png(samples, bit_depth, color_type, interlace=False, palette=None, trns=None,
               before_idat=(), after_idat=()) -> bytes:
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, _ = samples.shape
    raw = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        raw += b"".join(b"\0" + row for row in pack_rows(sub, bit_depth))
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0,
                                                                1 if interlace else 0))
    if palette is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    for tag, data in before_idat:
        out += png_chunk(tag, data)
    out += png_chunk(b"IDAT", zlib.compress(raw, 6))
    for tag, data in after_idat:
        out += png_chunk(tag, data)
    return out + png_chunk(b"IEND", b"")


def png_chunks(data: bytes) -> list:
    chunks, pos = [], 8
    while pos < len(data):
        length, = struct.unpack(">I", data[pos:pos + 4])
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def assemble_png(chunks) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(png_chunk(tag, body) for tag, body in chunks)


# --- synthetic content -----------------------------------------------------------------------

def photo_patch(path, box, size=None) -> Image.Image:
    """A crop of a real photograph: realistic texture and colour for the synthetic cases."""
    image = Image.open(path).convert("RGB").crop(box)
    return image.resize(size, Image.BICUBIC) if size else image


def gradient_noise(w, h, seed, channels=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 127 // max(w + h - 2, 1))],
                    -1)[:, :, :channels]
    noisy = base + rng.integers(-40, 41, size=base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def exif_with_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    exif[0x010F] = "derm-cds test"  # Make, so the block holds more than the one tag
    return exif


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def jpeg_segments(data: bytes):
    """(offset, marker, length) of each marker segment before the first SOS."""
    pos, out = 2, []
    while pos < len(data):
        marker = data[pos + 1]
        length, = struct.unpack(">H", data[pos + 2:pos + 4])
        out.append((pos, marker, length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return out


def set_adobe_transform(data: bytes, transform: int) -> bytes:
    for pos, marker, length in jpeg_segments(data):
        if marker == 0xEE and data[pos + 4:pos + 9] == b"Adobe":
            body = bytearray(data)
            body[pos + 4 + 11] = transform
            return bytes(body)
    raise RuntimeError("no Adobe segment")


def strip_segment(data: bytes, wanted: int) -> bytes:
    for pos, marker, length in jpeg_segments(data):
        if marker == wanted:
            return data[:pos] + data[pos + 2 + length:]
    raise RuntimeError(f"no segment {wanted:#x}")


def set_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    for pos, marker, length in jpeg_segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            body = bytearray(data)
            body[pos + 5:pos + 9] = struct.pack(">HH", height, width)
            return bytes(body)
    raise RuntimeError("no SOF")


def set_jpeg_precision(data: bytes, bits: int) -> bytes:
    for pos, marker, length in jpeg_segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            return data[:pos + 4] + bytes([bits]) + data[pos + 5:]
    raise RuntimeError("no SOF")


def scan_start(data: bytes) -> int:
    pos, marker, length = jpeg_segments(data)[-1]
    return pos + 2 + length


# --- the cases -------------------------------------------------------------------------------

def decode_cases(photos: Path, grace_hopper: Path):
    """Yields (name, category, bytes, specs)."""
    for name in ["rocket.jpg", "retina.jpg", "hubble_deep_field.jpg", "astronaut.png", "chelsea.png", "coffee.png",
                 "motorcycle_left.png", "camera.png", "palette_color.png", "green_palette.png", "ihc.png"]:
        all_specs = name in ("rocket.jpg", "retina.jpg", "chelsea.png")
        yield (f"photo_{Path(name).stem}", "photo", (photos / name).read_bytes(),
               PHOTO_SPECS if all_specs else GEOMETRY_SPECS)
    yield "photo_grace_hopper", "photo", grace_hopper.read_bytes(), PHOTO_SPECS
    # Real files in the less common PNG modes: RGBA, bilevel, small palettes.
    for name in ["logo.png", "horse.png", "checker_bilevel.png", "foo3x5x4indexed.png", "palette_gray.png",
                 "microaneurysms.png"]:
        yield f"file_{Path(name).stem}", "png", (photos / name).read_bytes(), ["mobile_bicubic"]

    chelsea = photos / "chelsea.png"
    # Non-square so every orientation gives a different picture.
    base = photo_patch(chelsea, (20, 10, 320, 210))
    for value in range(1, 9):
        yield (f"orientation_jpeg_{value}", "orientation",
               jpeg_bytes(base, quality=92, exif=exif_with_orientation(value)), SYNTHETIC_SPECS)
    for value in (3, 6, 8):
        yield (f"orientation_png_exif_{value}", "orientation", png_bytes(base, exif=exif_with_orientation(value)),
               SYNTHETIC_SPECS)
    # Value 9 is out of range: nothing to do, as in Pillow.
    yield ("orientation_jpeg_9_ignored", "orientation", jpeg_bytes(base, exif=exif_with_orientation(9)),
           ["mobile_bicubic"])
    # Pillow reads the first Exif APP1 only.
    first = jpeg_bytes(base, exif=exif_with_orientation(6))
    app1 = next((pos, length) for pos, marker, length in jpeg_segments(first) if marker == 0xE1)
    second = (b"\xff\xe1" + struct.pack(">H", 2 + len(exif_with_orientation(3).tobytes()))
              + exif_with_orientation(3).tobytes())
    yield ("orientation_jpeg_two_exif_segments", "orientation",
           first[:app1[0] + 2 + app1[1]] + second + first[app1[0] + 2 + app1[1]:], ["mobile_bicubic"])

    # PNG orientation from the other places Pillow looks.
    plain = png_bytes(base)
    chunks = png_chunks(plain)
    tiff = exif_with_orientation(8).tobytes()[6:]
    after = [c for c in chunks if c[0] != b"IEND"] + [(b"eXIf", tiff), (b"IEND", b"")]
    yield "orientation_png_exif_after_idat", "orientation", assemble_png(after), ["mobile_bicubic"]
    hexdata = (b"Exif\0\0" + exif_with_orientation(6).tobytes()[6:]).hex()
    profile = ("\nexif\n" + f"{len(hexdata) // 2:8d}\n"
               + "\n".join(hexdata[i:i + 72] for i in range(0, len(hexdata), 72)) + "\n")
    raw_profile = ([chunks[0], (b"zTXt", b"Raw profile type exif\0\0" + zlib.compress(profile.encode("latin-1")))]
                   + chunks[1:])
    yield "orientation_png_raw_profile", "orientation", assemble_png(raw_profile), ["mobile_bicubic"]
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="5"/></rdf:RDF></x:xmpmeta>')
    with_xmp = [chunks[0], (b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp.encode())] + chunks[1:]
    yield "orientation_png_xmp", "orientation", assemble_png(with_xmp), ["mobile_bicubic"]
    xmp_element = xmp.replace(' tiff:Orientation="5"/>', "><tiff:Orientation>7</tiff:Orientation></rdf:Description>")
    with_both = [chunks[0], (b"eXIf", exif_with_orientation(1).tobytes()[6:]),
                 (b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp_element.encode())] + chunks[1:]
    yield "orientation_png_exif_wins_over_xmp", "orientation", assemble_png(with_both), ["mobile_bicubic"]
    without_tag = Image.Exif()
    without_tag[0x010F] = "no orientation"
    with_xmp_fallback = [chunks[0], (b"eXIf", without_tag.tobytes()[6:]),
                         (b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp_element.encode())] + chunks[1:]
    yield "orientation_png_xmp_fallback", "orientation", assemble_png(with_xmp_fallback), ["mobile_bicubic"]
    # Orientation stored as a LONG rather than a SHORT (a hand-written big-endian TIFF): 6 turns
    # the picture as a SHORT would, 0x00060008 (a fuzz finding, tests/fuzz/regressions/) is
    # outside 1..8 and changes nothing, as in Pillow.
    for value in (6, 0x00060008):
        long_tiff = struct.pack(">2sHIHHHII", b"MM", 42, 8, 1, 0x0112, 4, 1, value) + struct.pack(">I", 0)
        yield (f"orientation_png_exif_long_{value}", "orientation",
               assemble_png([chunks[0], (b"eXIf", long_tiff)] + chunks[1:]), ["mobile_bicubic"])

    # JPEG colour models and codings.
    cmyk = base.convert("CMYK")
    cmyk_data = jpeg_bytes(cmyk, quality=90)
    yield "jpeg_cmyk_adobe", "jpeg", cmyk_data, SYNTHETIC_SPECS
    # Every (C, K) pair once, nearly losslessly: exercises the rounding of Pillow's formula.
    levels = np.arange(256, dtype=np.uint8)
    c_plane, k_plane = np.meshgrid(levels, levels)
    all_levels = Image.fromarray(np.dstack([c_plane, k_plane, 255 - c_plane, k_plane]), "CMYK")
    yield "jpeg_cmyk_all_levels", "jpeg", jpeg_bytes(all_levels, quality=100, subsampling=0), ["mobile_bicubic"]
    yield "jpeg_cmyk_no_adobe_marker", "jpeg", strip_segment(cmyk_data, 0xEE), ["mobile_bicubic"]
    # Same coefficients, declared YCCK: libjpeg converts YCCK->CMYK, then Pillow's formula.
    yield "jpeg_ycck", "jpeg", set_adobe_transform(cmyk_data, 2), SYNTHETIC_SPECS
    yield "jpeg_grayscale", "jpeg", jpeg_bytes(base.convert("L"), quality=90), SYNTHETIC_SPECS
    yield "jpeg_progressive", "jpeg", jpeg_bytes(base, quality=85, progressive=True), SYNTHETIC_SPECS
    yield ("jpeg_progressive_444", "jpeg", jpeg_bytes(base, quality=95, progressive=True, subsampling=0),
           ["mobile_bicubic"])
    yield "jpeg_subsampling_444", "jpeg", jpeg_bytes(base, quality=95, subsampling=0), ["mobile_bicubic"]
    yield "jpeg_subsampling_422", "jpeg", jpeg_bytes(base, quality=80, subsampling=1), ["mobile_bicubic"]
    yield "jpeg_optimized_q30", "jpeg", jpeg_bytes(base, quality=30, optimize=True), ["mobile_bicubic"]
    # Bytes after EOI are ignored by both.
    yield "jpeg_trailing_garbage", "jpeg", jpeg_bytes(base) + b"\0" * 100 + b"trailer", ["mobile_bicubic"]

    # PNG colour types, bit depths, transparency, interlacing.
    rgb = np.asarray(base)
    grey = np.asarray(base.convert("L"))
    h, w = grey.shape
    rng = np.random.default_rng(7)
    alpha = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
    yield "png_rgb", "png", png_bytes(base), SYNTHETIC_SPECS
    yield "png_rgba", "png", png_bytes(Image.fromarray(np.dstack([rgb, alpha]), "RGBA")), SYNTHETIC_SPECS
    yield "png_la", "png", png_bytes(Image.fromarray(np.dstack([grey, alpha]), "LA")), ["mobile_bicubic"]
    yield "png_grey8", "png", png_bytes(base.convert("L")), ["mobile_bicubic"]
    yield "png_grey1", "png", encode_png(grey >> 7, 1, 0), ["mobile_bicubic"]
    yield "png_grey2", "png", encode_png(grey >> 6, 2, 0), ["mobile_bicubic"]
    yield "png_grey4", "png", encode_png(grey >> 4, 4, 0), ["mobile_bicubic"]
    grey16 = grey.astype(np.uint16) * 256 + rng.integers(0, 256, size=grey.shape).astype(np.uint16)
    rgb16 = rgb.astype(np.uint16) * 256 + rng.integers(0, 256, size=rgb.shape).astype(np.uint16)
    yield "png_grey16", "png", encode_png(grey16, 16, 0), SYNTHETIC_SPECS
    yield "png_rgb16", "png", encode_png(rgb16, 16, 2), SYNTHETIC_SPECS
    yield "png_rgba16", "png", encode_png(np.dstack([rgb16, alpha.astype(np.uint16) * 257]), 16, 6), ["mobile_bicubic"]
    yield "png_la16", "png", encode_png(np.dstack([grey16, alpha.astype(np.uint16) * 257]), 16, 4), ["mobile_bicubic"]
    yield "png_grey_trns", "png", encode_png(grey, 8, 0, trns=struct.pack(">H", int(grey[0, 0]))), ["mobile_bicubic"]
    yield ("png_grey16_trns", "png", encode_png(grey16, 16, 0, trns=struct.pack(">H", int(grey16[0, 0]))),
           ["mobile_bicubic"])
    yield ("png_rgb_trns", "png", encode_png(rgb, 8, 2, trns=struct.pack(">HHH", *map(int, rgb[0, 0]))),
           ["mobile_bicubic"])
    quantized = base.quantize(colors=200)
    indices = np.asarray(quantized)
    pal = np.asarray(quantized.getpalette()[:3 * 200]).reshape(-1, 3)
    yield "png_palette", "png", encode_png(indices, 8, 3, palette=pal), ["mobile_bicubic"]
    yield "png_palette_trns", "png", encode_png(indices, 8, 3, palette=pal, trns=bytes(range(0, 200))), SYNTHETIC_SPECS
    small = base.quantize(colors=16)
    small_pal = np.asarray(small.getpalette()[:48]).reshape(-1, 3)
    yield ("png_palette4", "png", encode_png(np.asarray(small), 4, 3, palette=small_pal, trns=b"\x00\x80"),
           ["mobile_bicubic"])
    yield ("png_palette4_interlaced", "png", encode_png(np.asarray(small), 4, 3, palette=small_pal, interlace=True),
           ["mobile_bicubic"])
    # Indices beyond PLTE: Pillow reads index i as (i, i, i).
    yield "png_palette_short_plte", "png", encode_png(indices, 8, 3, palette=pal[:120]), ["mobile_bicubic"]
    yield "png_rgb_interlaced", "png", encode_png(rgb, 8, 2, interlace=True), SYNTHETIC_SPECS
    yield ("png_rgba16_interlaced", "png",
           encode_png(np.dstack([rgb16, alpha.astype(np.uint16) * 257]), 16, 6, interlace=True), ["mobile_bicubic"])
    yield "png_grey2_interlaced", "png", encode_png(grey >> 6, 2, 0, interlace=True), ["mobile_bicubic"]
    yield ("png_grey16_exif_6", "png",
           encode_png(grey16, 16, 0, before_idat=[(b"eXIf", exif_with_orientation(6).tobytes()[6:])]),
           ["mobile_bicubic"])

    # Geometry: tiny, odd, extreme aspect ratios, upscaling, exactly the target size.
    for fmt in ("jpeg", "png"):
        encode = (lambda im: jpeg_bytes(im, quality=95)) if fmt == "jpeg" else png_bytes
        yield (f"geometry_{fmt}_1x1", "geometry", encode(Image.fromarray(np.array([[[200, 30, 90]]], np.uint8))),
               GEOMETRY_SPECS)
        yield f"geometry_{fmt}_odd_333x257", "geometry", encode(photo_patch(chelsea, (0, 0, 333, 257))), GEOMETRY_SPECS
        yield (f"geometry_{fmt}_wide_2000x21", "geometry", encode(Image.fromarray(gradient_noise(2000, 21, 1))),
               GEOMETRY_SPECS)
        yield (f"geometry_{fmt}_tall_17x900", "geometry", encode(Image.fromarray(gradient_noise(17, 900, 2))),
               GEOMETRY_SPECS)
        yield (f"geometry_{fmt}_upscale_61x47", "geometry", encode(photo_patch(chelsea, (100, 50, 161, 97))),
               GEOMETRY_SPECS)
    yield ("geometry_png_exact_384x384", "geometry", png_bytes(photo_patch(photos / "astronaut.png", (0, 0, 384, 384))),
           GEOMETRY_SPECS)
    yield ("geometry_png_exact_256x300", "geometry",
           png_bytes(photo_patch(photos / "astronaut.png", (10, 10, 266, 310))), GEOMETRY_SPECS)
    yield ("geometry_png_crop_tie_385x387", "geometry",
           png_bytes(photo_patch(photos / "coffee.png", (0, 0, 385, 387))), GEOMETRY_SPECS)
    yield ("geometry_jpeg_2mp_1632x1224", "geometry",
           jpeg_bytes(photo_patch(photos / "motorcycle_left.png", (0, 0, 667, 500), (1632, 1224)), quality=90),
           PHOTO_SPECS)


def invalid_cases(photos: Path, grace_hopper: Path, scratch: Path):
    """Yields (name, bytes, expected error code, substring of our message)."""
    jpeg = grace_hopper.read_bytes()
    png = (photos / "chelsea.png").read_bytes()
    yield "empty", b"", "invalid_image", "empty"
    yield "text", b"Patient: Jane Doe\nThis is not an image.\n", "unsupported_format", "not a JPEG or PNG"
    yield "html", b"<!DOCTYPE html><html><body>error 404</body></html>", "unsupported_format", "not a JPEG or PNG"
    small = photo_patch(photos / "chelsea.png", (0, 0, 40, 30))
    for fmt, label in (("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("WEBP", "WebP")):
        buffer = io.BytesIO()
        small.save(buffer, fmt)
        yield f"format_{fmt.lower()}", buffer.getvalue(), "unsupported_format", f"unsupported format: {label}"
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + b"\0" * 64
    yield "format_heic", heic, "unsupported_format", "unsupported format: HEIF/HEIC"
    yield "jpeg_signature_only", jpeg[:2], "invalid_image", "truncated"
    yield "png_signature_only", png[:8], "invalid_image", "truncated PNG"
    yield "jpeg_truncated_photos_sample", (photos / "truncated.jpg").read_bytes(), "invalid_image", "truncated JPEG"
    for fraction in (0.1, 0.5, 0.9):
        yield (f"jpeg_truncated_{int(fraction * 100)}pct", jpeg[: int(len(jpeg) * fraction)], "invalid_image",
               "truncated JPEG")
    yield "jpeg_missing_eoi", jpeg[:-2], "invalid_image", "truncated JPEG"
    progressive = jpeg_bytes(Image.open(grace_hopper), progressive=True)
    yield "jpeg_progressive_truncated", progressive[: len(progressive) * 2 // 3], "invalid_image", "truncated JPEG"
    # A small progressive JPEG whose first (DC) scan is repeated 1200 times: each scan costs a
    # pass over the coefficients, the classic way to make a tiny file take minutes.
    tiny = jpeg_bytes(photo_patch(photos / "chelsea.png", (0, 0, 16, 16)), progressive=True)
    first_scan = scan_start(tiny) - 2 - jpeg_segments(tiny)[-1][2]
    end = first_scan + 2
    while not (tiny[end] == 0xFF and tiny[end + 1] not in (0x00, *range(0xD0, 0xD8))):
        end += 1
    yield ("jpeg_too_many_scans", tiny[:end] + tiny[first_scan:end] * 1200 + tiny[end:], "invalid_image",
           "more than 1000 scans")
    yield "jpeg_header_only", jpeg[: scan_start(jpeg)], "invalid_image", "truncated JPEG"
    # EOI in the middle of the entropy-coded data, then nothing: libjpeg would grey-fill the rest.
    cut = scan_start(jpeg) + 5000
    yield "jpeg_eoi_mid_scan", jpeg[:cut] + b"\xff\xd9", "invalid_image", "corrupt JPEG"
    yield "jpeg_bad_sof", set_jpeg_size(jpeg, 0, 0), "invalid_image", "JPEG"
    yield "jpeg_60000x60000", set_jpeg_size(jpeg, 60000, 60000), "image_too_large", "60000 x 60000"
    yield "jpeg_12bit", set_jpeg_precision(jpeg, 12), "invalid_image", "precision"
    for fraction in (0.3, 0.7):
        yield (f"png_truncated_{int(fraction * 100)}pct", png[: int(len(png) * fraction)], "invalid_image",
               "truncated PNG")
    yield "png_missing_iend", png[:-12], "invalid_image", "truncated PNG"
    corrupt = bytearray(png)
    idat = png.index(b"IDAT")
    corrupt[idat + 200] ^= 0x55
    yield "png_idat_crc_mismatch", bytes(corrupt), "invalid_image", "corrupt PNG"
    chunks = png_chunks(png)
    ihdr = bytearray(chunks[0][1])
    ihdr[8] = 7  # bit depth 7
    yield "png_bad_bit_depth", assemble_png([(b"IHDR", bytes(ihdr))] + chunks[1:]), "invalid_image", "corrupt PNG"
    # Valid CRCs, a tiny IDAT and a header claiming 10^10 pixels: refused before any allocation.
    huge = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) + \
        png_chunk(b"IDAT", zlib.compress(b"\0" * 301)) + png_chunk(b"IEND", b"")
    yield "png_100000x100000", huge, "image_too_large", "100000 x 100000"
    compressor = zlib.compressobj(9)
    bomb_rows = b"".join(compressor.compress(b"\0" * (1 + 3 * 9000)) for _ in range(9000)) + compressor.flush()
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)) + \
        png_chunk(b"IDAT", bomb_rows) + png_chunk(b"IEND", b"")
    yield "png_9000x9000_bomb", bomb, "image_too_large", "9000 x 9000"
    # A tiny file whose second chunk declares 2 GB of text: libpng would allocate it before
    # reading a byte of it (a fuzz finding); refused with the size named.
    claims = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)) + \
        struct.pack(">I", 0x7A000000) + b"tEXtComment\0" + b"x" * 64
    yield "png_text_chunk_claims_2gb", claims, "invalid_image", "bytes of memory"


def pillow_outcome(data: bytes) -> str:
    try:
        image = ref.load_rgb(data)
        return f"decodes ({image.width}x{image.height})"
    except Exception as error:  # noqa: BLE001 - recording whatever Pillow raises
        return f"{type(error).__name__}: {error}"


def spec_transform(spec):
    return ref.make_transform(spec["crop"], spec["resize"], spec["interpolation"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--photos", required=True, type=Path, help="folder of sample photographs (.deps/photos)")
    parser.add_argument("--grace-hopper", required=True, type=Path, help="matplotlib's grace_hopper.jpg")
    args = parser.parse_args()

    for sub in ("cases", "ref", "sweep", "invalid"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    manifest = {"specs": {name: dict(spec, mean=list(ref.IMAGENET_MEAN), std=list(ref.IMAGENET_STD))
                          for name, spec in SPECS.items()},
                "cases": [], "sweep": [], "invalid": []}

    cases = list(decode_cases(args.photos, args.grace_hopper))
    for index, (name, category, data, specs) in enumerate(cases, 1):
        ext = "jpg" if data[:2] == b"\xff\xd8" else "png"
        (args.out / "cases" / f"{name}.{ext}").write_bytes(data)
        opened = Image.open(io.BytesIO(data))
        image = ref.load_rgb(data)
        np.asarray(image).tofile(args.out / "ref" / f"{name}.rgb")
        entry = {"name": name, "category": category, "file": f"cases/{name}.{ext}", "pillow_mode": opened.mode,
                 "orientation": opened.getexif().get(0x0112), "width": image.width, "height": image.height,
                 "rgb": f"ref/{name}.rgb", "preprocess": []}
        for spec_name in specs:
            spec = SPECS[spec_name]
            resized = F.resize(image, spec["resize"], interpolation=ref._INTERPOLATION[spec["interpolation"]])
            check = {"spec": spec_name, "resized_width": resized.width, "resized_height": resized.height,
                     "tensor": f"ref/{name}.{spec_name}.f32"}
            # The full resize of an extreme aspect ratio is tens of megabytes; its centre is
            # still checked through the tensor.
            if resized.width * resized.height <= MAX_STORED_RESIZE_PIXELS:
                check["resized"] = f"ref/{name}.{spec_name}.resized.rgb"
                np.asarray(resized).tofile(args.out / check["resized"])
            spec_transform(spec)(image).numpy().astype("<f4").tofile(args.out / check["tensor"])
            entry["preprocess"].append(check)
        manifest["cases"].append(entry)
        print(f"[{index}/{len(cases)}] {name}: {opened.mode} {image.width}x{image.height}", flush=True)

    # Resize sweep: random-content images through torchvision's Resize at many scale factors.
    rng = np.random.default_rng(2024)
    sizes = [(1, 1), (2, 3), (5, 4), (16, 9), (37, 23), (64, 64), (97, 61), (128, 300), (301, 173), (640, 427),
             (1000, 999), (33, 1000)]
    targets = [1, 2, 3, 7, 16, 45, 64, 100, 224, 255, 384, 401]
    for index, (w, h) in enumerate(sizes):
        pixels = gradient_noise(w, h, index) if index % 2 else rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        source = f"sweep/src_{w}x{h}.rgb"
        pixels.tofile(args.out / source)
        for target in rng.choice(targets, size=4, replace=False):
            for interpolation in ("bilinear", "bicubic"):
                resized = F.resize(Image.fromarray(pixels), int(target),
                                   interpolation=ref._INTERPOLATION[interpolation])
                if resized.width * resized.height > MAX_STORED_RESIZE_PIXELS // 4:
                    continue
                out = f"sweep/{w}x{h}_to_{target}_{interpolation}.rgb"
                np.asarray(resized).tofile(args.out / out)
                manifest["sweep"].append({"source": source, "width": w, "height": h, "size": int(target),
                                          "interpolation": interpolation, "out_width": resized.width,
                                          "out_height": resized.height, "resized": out})
    print(f"sweep: {len(manifest['sweep'])} resizes", flush=True)

    for name, data, code, message in invalid_cases(args.photos, args.grace_hopper, args.out):
        (args.out / "invalid" / f"{name}.bin").write_bytes(data)
        manifest["invalid"].append({"name": name, "file": f"invalid/{name}.bin", "error": code, "message": message,
                                    "pillow": pillow_outcome(data)})
    print(f"invalid: {len(manifest['invalid'])} inputs", flush=True)

    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
