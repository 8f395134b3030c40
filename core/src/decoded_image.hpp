// Private to the image decoders: what a format decoder hands back to decode_image(), and the
// pixel-limit check every decoder runs between reading the header and allocating pixels.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "dermcds/image.hpp"

namespace dermcds::detail {

struct DecodedImage {
  RgbImage image;  // as stored in the file, before any EXIF orientation is applied
  // Value of the EXIF Orientation tag (0x0112) when the file carries one, in whatever range the
  // file says; only 2..8 change the pixels, as in PIL.ImageOps.exif_transpose.
  std::optional<int> orientation;
};

// Throws kImageTooLarge when width x height exceeds limits.max_pixels, and kInvalidImage for a
// zero dimension. `format` names the container in the message ("JPEG", "PNG").
void check_dimensions(std::uint64_t width, std::uint64_t height, const DecodeLimits& limits, std::string_view format);

}  // namespace dermcds::detail
