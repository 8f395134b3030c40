// Resampling 8-bit RGB exactly as Pillow 9.4's Image.resize() does with its BILINEAR and
// BICUBIC filters, which is what torchvision's Resize applies to PIL images during training.
// Our own implementation of the algorithm, bit for bit:
//  - Per axis and output sample i: centre c = (i + 0.5) * scale with scale = in / out. The
//    filter (triangle of radius 1, or Keys cubic with a = -0.5 and radius 2) is stretched by the
//    scale when shrinking (antialiasing), so its support is radius * max(scale, 1). It covers
//    input samples int(c - support + 0.5) .. int(c + support + 0.5) - 1, clipped to the image;
//    sample j weighs filter((j - c + 0.5) / max(scale, 1)), the weights are divided by their sum
//    in double precision, then stored as fixed point with 22 fractional bits, rounded half away
//    from zero.
//  - A horizontal pass (only when the width changes) into an 8-bit intermediate image, then a
//    vertical pass (only when the height changes). Each output value is
//    clamp((2^21 + sum(sample * weight)) >> 22, 0, 255), summed in 32-bit integers.
// `window` lets a caller compute only part of the resized image (the centre crop); values in
// it are those of the full resize, and nothing outside it is computed.
// Thread safety: reentrant. Errors: kInvalidArgument for inconsistent sizes.
#pragma once

#include "dermcds/image.hpp"
#include "dermcds/preprocess.hpp"

namespace dermcds::detail {

// A rectangle of the resized image, in its pixel coordinates.
struct PixelWindow {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

struct ResampleRequest {
  int out_width = 0;  // size of the full resized image
  int out_height = 0;
  Interpolation interpolation = Interpolation::kBilinear;
  PixelWindow window;  // the part of it to produce; must lie inside out_width x out_height
};

RgbImage pillow_resample(const RgbImage& input, const ResampleRequest& request);

}  // namespace dermcds::detail
