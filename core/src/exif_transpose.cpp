#include "exif_transpose.hpp"

#include <algorithm>
#include <cstddef>

namespace dermcds::detail {
namespace {

// Where output pixel (x, y) is read from: source = origin + x * step_x + y * step_y, in pixels
// of the stored image. Every orientation is such an affine map, so one loop serves all eight.
struct PixelWalk {
  std::ptrdiff_t origin;
  std::ptrdiff_t step_x;
  std::ptrdiff_t step_y;
};

PixelWalk walk_for(int orientation, std::ptrdiff_t w, std::ptrdiff_t h) {
  switch (orientation) {
    case 2:
      return {w - 1, -1, w};  // mirror left-right
    case 3:
      return {w * h - 1, -1, -w};  // rotate 180
    case 4:
      return {(h - 1) * w, 1, -w};  // mirror top-bottom
    case 5:
      return {0, w, 1};  // transpose: out(x, y) = in(y, x)
    case 6:
      return {(h - 1) * w, -w, 1};  // rotate 90 cw: out(x, y) = in(y, h-1-x)
    case 7:
      return {w * h - 1, -w, -1};  // transverse: out(x, y) = in(w-1-y, h-1-x)
    case 8:
      return {w - 1, w, -1};  // rotate 90 ccw: out(x, y) = in(w-1-y, x)
    default:
      return {0, 1, w};
  }
}

}  // namespace

RgbImage apply_exif_orientation(RgbImage image, int orientation) {
  if (orientation < 2 || orientation > 8) return image;
  const bool swaps_axes = orientation >= 5;
  RgbImage out;
  out.width = swaps_axes ? image.height : image.width;
  out.height = swaps_axes ? image.width : image.height;
  out.pixels.resize(image.pixels.size());

  const PixelWalk walk = walk_for(orientation, image.width, image.height);
  const std::uint8_t* src = image.pixels.data();
  std::uint8_t* dst = out.pixels.data();
  for (std::ptrdiff_t y = 0; y < out.height; ++y) {
    std::ptrdiff_t from = walk.origin + y * walk.step_y;
    for (std::ptrdiff_t x = 0; x < out.width; ++x, from += walk.step_x, dst += 3) {
      const std::uint8_t* p = src + 3 * from;
      std::copy(p, p + 3, dst);
    }
  }
  return out;
}

}  // namespace dermcds::detail
