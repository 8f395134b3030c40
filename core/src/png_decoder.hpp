// PNG decoding with libpng 1.6, producing the pixels Pillow 9.4's Image.convert("RGB") gives:
// 16-bit samples keep their high byte, 1/2/4-bit greyscale is scaled to 0..255, greyscale is
// replicated, alpha channels and tRNS transparency are dropped (not composited), palettes are
// expanded (an index past the end of PLTE reads as grey (i, i, i), Pillow's default palette).
// Gamma, colour profiles and sBIT are ignored, as Pillow ignores them.
//
// EXIF Orientation, in Pillow's order of preference: the eXIf chunk, else ImageMagick's
// "Raw profile type exif" text chunk; then, only when neither has the tag, an XMP
// tiff:Orientation in the "XML:com.adobe.xmp" text chunk. Chunks after the image data count.
//
// Any error, including a CRC mismatch or data that ends before IEND, throws kInvalidImage
// (stricter than Pillow, which accepts a file cut after its last image row).
#pragma once

#include <cstdint>
#include <span>

#include "decoded_image.hpp"

namespace dermcds::detail {

DecodedImage decode_png(std::span<const std::uint8_t> bytes, const DecodeLimits& limits);

}  // namespace dermcds::detail
