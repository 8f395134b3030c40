// JPEG decoding with libjpeg-turbo, configured as Pillow 9.4 configures the same library:
// default (islow) IDCT, fancy upsampling, libjpeg's own colour-space detection. Greyscale is
// replicated to RGB; CMYK and YCCK are read with Adobe's inverted polarity and converted with
// Pillow's CMYK->RGB formula. The EXIF Orientation comes from the first "Exif" APP1 segment, the
// one Pillow reads.
//
// Damaged data is refused, never patched: besides libjpeg's errors, its "premature end of
// file" warning (libjpeg would pad the image with grey; Pillow raises "image file is truncated")
// and its corrupt-entropy-data warnings (bad Huffman code, data segment cut by a marker, missing
// restart marker) throw kInvalidImage. Harmless warnings (extraneous bytes between markers, an
// unknown JFIF revision) are ignored, as Pillow ignores them.
#pragma once

#include <cstdint>
#include <span>

#include "decoded_image.hpp"

namespace dermcds::detail {

DecodedImage decode_jpeg(std::span<const std::uint8_t> bytes, const DecodeLimits& limits);

}  // namespace dermcds::detail
