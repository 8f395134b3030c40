// Decoding encoded lesion photographs (JPEG, PNG) into 8-bit RGB.
//
// Conventions, chosen to match how the training pipeline reads images with Pillow
// (python/dermcds_export/reference_transform.py is the reference; docs/preprocessing.md has the
// details and the measured agreement, bit-exact on the test corpus):
//  - EXIF orientation is applied, as PIL.ImageOps.exif_transpose does: from the first Exif APP1
//    segment of a JPEG; from a PNG's eXIf chunk, "Raw profile type exif" text or XMP.
//  - Grayscale is replicated to three channels; CMYK/YCCK JPEGs are converted as Pillow does.
//  - Alpha and tRNS transparency are dropped (not composited), as Image.convert("RGB") does.
//  - 16-bit samples keep their high byte.
//  - The pixel count is checked against DecodeLimits from the header, before any pixel buffer
//    is allocated, so a small file that claims huge dimensions is refused cheaply.
//  - Damaged data is refused rather than patched: a truncated JPEG or PNG, or a JPEG whose
//    entropy-coded data libjpeg can only decode by filling in blocks.
// Errors: throws dermcds::Error with kUnsupportedFormat, kInvalidImage or kImageTooLarge.
// Thread safety: all functions are reentrant.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace dermcds {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // row-major, interleaved R,G,B; size 3 * width * height
};

enum class ImageFormat { kJpeg, kPng };

std::string_view to_string(ImageFormat format) noexcept;

struct DecodeLimits {
  // Pillow refuses images over 2 x 89,478,485 pixels; a dermoscope or phone photo is far below
  // 64 megapixels, so anything above is treated as hostile or broken input.
  std::uint64_t max_pixels = 64ull * 1000 * 1000;
};

// Identifies the format from the leading bytes. Throws kUnsupportedFormat (naming what the bytes
// look like, where known) or kInvalidImage for empty input.
ImageFormat sniff_image_format(std::span<const std::uint8_t> bytes);

RgbImage decode_image(std::span<const std::uint8_t> bytes, const DecodeLimits& limits = {});

}  // namespace dermcds
