#include "dermcds/preprocess.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "dermcds/error.hpp"
#include "pillow_resample.hpp"

namespace dermcds {
namespace {

// Bounds the resized image: the longer side scales with the shorter, so a 1-pixel-high strip
// resized to 384 would otherwise ask for billions of columns.
constexpr std::int64_t kMaxResizedSide = std::int64_t{1} << 30;
constexpr std::int64_t kMaxResizedPixels = std::int64_t{1} << 28;

void check_image(const RgbImage& image, std::string_view what) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != 3 * static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height))
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": image of " + std::to_string(image.width) + " x " +
                                                 std::to_string(image.height) + " holds " + std::to_string(image.pixels.size()) +
                                                 " bytes, not 3 per pixel");
}

struct Size {
  int width;
  int height;
};

// torchvision 0.14 Resize(int) on a PIL image: the shorter side becomes `size` and the longer
// int(size * longer / shorter), truncated; Python divides two integers into a correctly
// rounded double, as IEEE division of these exactly representable operands does.
Size resized_size(const RgbImage& image, int size) {
  const bool portrait = image.width <= image.height;
  const int shorter = portrait ? image.width : image.height;
  const int longer = portrait ? image.height : image.width;
  const double exact = static_cast<double>(std::int64_t{size} * longer) / shorter;
  if (exact >= static_cast<double>(kMaxResizedSide))
    throw Error(ErrorCode::kImageTooLarge, "resizing a " + std::to_string(image.width) + " x " + std::to_string(image.height) +
                                               " image to a shorter side of " + std::to_string(size) + " would make the longer side " +
                                               std::to_string(static_cast<std::int64_t>(exact)) + " pixels");
  const int scaled = static_cast<int>(exact);
  return portrait ? Size{size, scaled} : Size{scaled, size};
}

// torchvision's CenterCrop offset, int(round(excess / 2.0)): Python rounds halves to even.
int center_offset(int length, int crop) {
  const int excess = length - crop;
  const int half = excess / 2;
  return (excess % 2 == 0 || half % 2 == 0) ? half : half + 1;
}

void check_spec(const InputSpec& spec) {
  if (spec.crop_size <= 0) throw Error(ErrorCode::kInvalidArgument, "crop_size must be positive, not " + std::to_string(spec.crop_size));
  // torchvision would pad the missing border with black; a model never trained on that.
  if (spec.resize_size < spec.crop_size)
    throw Error(ErrorCode::kInvalidArgument,
                "resize_size " + std::to_string(spec.resize_size) + " is smaller than crop_size " + std::to_string(spec.crop_size));
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(spec.mean[c]) || !std::isfinite(spec.std[c]) || spec.std[c] == 0.0f)
      throw Error(ErrorCode::kInvalidArgument, "normalisation of channel " + std::to_string(c) + " needs a finite mean " +
                                                   "and a finite non-zero std, not mean " + std::to_string(spec.mean[c]) + ", std " +
                                                   std::to_string(spec.std[c]));
  }
}

// ToTensor then Normalize for every possible byte, in float32 and in torchvision's operation
// order: (v / 255 - mean) / std, each step rounded to float.
using ChannelTable = std::array<float, 256>;
std::array<ChannelTable, 3> normalization_tables(const InputSpec& spec) {
  std::array<ChannelTable, 3> tables;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      const float scaled = static_cast<float>(v) / 255.0f;
      tables[c][v] = (scaled - spec.mean[c]) / spec.std[c];
    }
  }
  return tables;
}

}  // namespace

std::string_view to_string(Interpolation interpolation) noexcept {
  switch (interpolation) {
    case Interpolation::kBilinear:
      return "bilinear";
    case Interpolation::kBicubic:
      return "bicubic";
  }
  return "unknown";
}

RgbImage resize_shorter_side(const RgbImage& image, int size, Interpolation interpolation) {
  check_image(image, "resize");
  if (size <= 0) throw Error(ErrorCode::kInvalidArgument, "resize size must be positive, not " + std::to_string(size));
  const Size out = resized_size(image, size);
  if (std::int64_t{out.width} * out.height > kMaxResizedPixels)
    throw Error(ErrorCode::kImageTooLarge,
                "resized image would be " + std::to_string(out.width) + " x " + std::to_string(out.height) + " pixels");
  return detail::pillow_resample(image, {out.width, out.height, interpolation, {0, 0, out.width, out.height}});
}

RgbImage center_crop(const RgbImage& image, int size) {
  check_image(image, "center crop");
  if (size <= 0 || size > image.width || size > image.height)
    throw Error(ErrorCode::kInvalidArgument, "cannot centre-crop " + std::to_string(size) + " x " + std::to_string(size) + " from a " +
                                                 std::to_string(image.width) + " x " + std::to_string(image.height) + " image");
  const int left = center_offset(image.width, size);
  const int top = center_offset(image.height, size);
  RgbImage out;
  out.width = out.height = size;
  out.pixels.resize(3 * static_cast<std::size_t>(size) * static_cast<std::size_t>(size));
  const std::size_t row_bytes = 3 * static_cast<std::size_t>(size);
  const std::size_t in_stride = 3 * static_cast<std::size_t>(image.width);
  for (int y = 0; y < size; ++y) {
    const std::uint8_t* from = image.pixels.data() + static_cast<std::size_t>(top + y) * in_stride + 3 * static_cast<std::size_t>(left);
    std::copy(from, from + row_bytes, out.pixels.begin() + static_cast<std::ptrdiff_t>(y * row_bytes));
  }
  return out;
}

void preprocess_into(const RgbImage& image, const InputSpec& spec, TensorLayout layout, std::span<float> out) {
  check_image(image, "preprocess");
  check_spec(spec);
  const int size = spec.crop_size;
  const std::size_t plane = static_cast<std::size_t>(size) * static_cast<std::size_t>(size);
  if (out.size() != 3 * plane)
    throw Error(ErrorCode::kInvalidArgument, "preprocess: output holds " + std::to_string(out.size()) + " floats, a " +
                                                 std::to_string(size) + " x " + std::to_string(size) + " RGB input needs " +
                                                 std::to_string(3 * plane));

  // Resize then centre-crop, computing only the cropped part of the resized image.
  const Size resized = resized_size(image, spec.resize_size);
  const detail::PixelWindow crop{center_offset(resized.width, size), center_offset(resized.height, size), size, size};
  const RgbImage cropped = detail::pillow_resample(image, {resized.width, resized.height, spec.interpolation, crop});

  const auto tables = normalization_tables(spec);
  const std::uint8_t* p = cropped.pixels.data();
  if (layout == TensorLayout::kNCHW) {
    float* r = out.data();
    float* g = r + plane;
    float* b = g + plane;
    for (std::size_t i = 0; i < plane; ++i, p += 3) {
      r[i] = tables[0][p[0]];
      g[i] = tables[1][p[1]];
      b[i] = tables[2][p[2]];
    }
  } else {
    float* o = out.data();
    for (std::size_t i = 0; i < plane; ++i, p += 3, o += 3) {
      o[0] = tables[0][p[0]];
      o[1] = tables[1][p[1]];
      o[2] = tables[2][p[2]];
    }
  }
}

Tensor preprocess(const RgbImage& image, const InputSpec& spec, TensorLayout layout) {
  check_spec(spec);  // before sizing the tensor from it
  const std::int64_t s = spec.crop_size;
  Tensor tensor =
      Tensor::zeros(layout == TensorLayout::kNCHW ? std::vector<std::int64_t>{1, 3, s, s} : std::vector<std::int64_t>{1, s, s, 3});
  preprocess_into(image, spec, layout, tensor.data);
  return tensor;
}

}  // namespace dermcds
