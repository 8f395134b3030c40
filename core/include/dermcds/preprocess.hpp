// Turning an RGB image into the network's input tensor, exactly as training did:
//   resize (shorter side to resize_size, Pillow's resampling) -> centre crop -> /255 -> normalize.
// This mirrors torchvision 0.14's Resize(int) + CenterCrop + ToTensor + Normalize applied to a
// PIL image; python/dermcds_export/reference_transform.py is the reference it is tested against.
// Thread safety: reentrant.
#pragma once

#include <array>
#include <span>

#include "dermcds/image.hpp"
#include "dermcds/tensor.hpp"

namespace dermcds {

enum class Interpolation { kBilinear, kBicubic };

std::string_view to_string(Interpolation interpolation) noexcept;

struct InputSpec {
  int crop_size = 224;    // the square the network sees
  int resize_size = 256;  // the shorter side is resized to this before the centre crop
  Interpolation interpolation = Interpolation::kBilinear;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
};

// Resize the shorter side to `size` keeping the aspect ratio, as torchvision computes the other
// side (truncated, not rounded), resampled as Pillow's Image.resize does for 8-bit RGB (bit for
// bit). Throws kInvalidArgument for a non-positive size or an image whose pixel buffer does not
// hold 3 * width * height bytes, kImageTooLarge when the result would exceed 2^28 pixels.
RgbImage resize_shorter_side(const RgbImage& image, int size, Interpolation interpolation);

// Centre crop with torchvision's offsets (Python round() of half the excess, ties to even).
// Throws kInvalidArgument when the crop is larger than the image.
RgbImage center_crop(const RgbImage& image, int size);

// Writes one preprocessed image, 3 * crop_size^2 floats, into `out` in the given layout
// (NCHW means CHW for the single image). Only the cropped part of the resized image is computed.
// Throws kInvalidArgument if `out` has the wrong size or the spec is unusable (crop_size < 1,
// resize_size < crop_size, a zero or non-finite std, a non-finite mean).
void preprocess_into(const RgbImage& image, const InputSpec& spec, TensorLayout layout, std::span<float> out);

// The same, as a batch-of-one tensor [1,3,S,S] or [1,S,S,3].
Tensor preprocess(const RgbImage& image, const InputSpec& spec, TensorLayout layout);

}  // namespace dermcds
