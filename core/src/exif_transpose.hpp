// Turning a decoded image upright according to its EXIF Orientation value, with the same
// transposition PIL.ImageOps.exif_transpose picks for each value:
//   2 mirror left-right, 3 rotate 180, 4 mirror top-bottom, 5 transpose (mirror about the main
//   diagonal), 6 rotate 90 clockwise, 7 transverse (mirror about the anti-diagonal),
//   8 rotate 90 counter-clockwise. Any other value leaves the image as stored.
// Thread safety: reentrant.
#pragma once

#include "dermcds/image.hpp"

namespace dermcds::detail {

RgbImage apply_exif_orientation(RgbImage image, int orientation);

}  // namespace dermcds::detail
