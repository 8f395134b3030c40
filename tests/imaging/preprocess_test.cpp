// resize_shorter_side / center_crop / preprocess against torchvision 0.14 on PIL images
// (Pillow 9.4's resampler), element by element, plus hand-computed properties.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "dermcds/error.hpp"
#include "dermcds/preprocess.hpp"
#include "reference_data.hpp"

namespace dermcds::testing {
namespace {

// One 8-bit level in normalised units, for the loosest channel (smallest std).
float one_level(const InputSpec& spec) { return 1.0f / 255.0f / std::min({spec.std[0], spec.std[1], spec.std[2]}); }

const InputSpec& spec_named(const std::string& name) { return reference_data().specs.at(name); }

RgbImage uniform_image(int width, int height, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  RgbImage image{width, height, {}};
  for (int i = 0; i < width * height; ++i) image.pixels.insert(image.pixels.end(), {r, g, b});
  return image;
}

// An image whose pixel (x, y) is (x, y, 7): lets a crop's position be read off its pixels.
RgbImage coordinate_image(int width, int height) {
  RgbImage image{width, height, {}};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      image.pixels.insert(image.pixels.end(), {static_cast<std::uint8_t>(x), static_cast<std::uint8_t>(y), 7});
  return image;
}

TEST(ResizeMatchesPillow, ShorterSideOfEveryReferenceImage) {
  std::size_t checked = 0;
  for (const DecodeCase& c : reference_data().cases) {
    const RgbImage source = read_rgb(c.rgb, c.width, c.height);
    for (const PreprocessCheck& check : c.checks) {
      if (!check.resized) continue;
      SCOPED_TRACE(c.name + " " + check.spec);
      const InputSpec& spec = spec_named(check.spec);
      const RgbImage resized = resize_shorter_side(source, spec.resize_size, spec.interpolation);
      ASSERT_EQ(resized.width, check.resized_width);
      ASSERT_EQ(resized.height, check.resized_height);
      const RgbImage expected = read_rgb(*check.resized, check.resized_width, check.resized_height);
      const DiffStats stats = compare(resized.pixels, expected.pixels);
      std::printf("[ resize   ] %-40s %-16s %5dx%-5d -> %5dx%-5d %s\n", c.name.c_str(), check.spec.c_str(), c.width, c.height,
                  resized.width, resized.height, stats.summary().c_str());
      EXPECT_TRUE(stats.exact()) << stats.summary();
      ++checked;
    }
  }
  EXPECT_GE(checked, 80u);
}

TEST(ResizeMatchesPillow, SweepOfSizesAndScaleFactors) {
  const auto& sweep = reference_data().sweep;
  ASSERT_GE(sweep.size(), 60u);
  std::size_t exact = 0;
  for (const SweepCase& s : sweep) {
    SCOPED_TRACE(s.resized.filename().string());
    const RgbImage source = read_rgb(s.source, s.width, s.height);
    const RgbImage resized = resize_shorter_side(source, s.size, s.interpolation);
    ASSERT_EQ(resized.width, s.out_width);
    ASSERT_EQ(resized.height, s.out_height);
    const DiffStats stats = compare(resized.pixels, read_rgb(s.resized, s.out_width, s.out_height).pixels);
    EXPECT_TRUE(stats.exact()) << stats.summary();
    exact += stats.exact();
  }
  std::printf("[ sweep    ] %zu of %zu resizes bit-exact\n", exact, sweep.size());
}

// Tensor from Pillow's own decoded pixels: isolates resize + crop + ToTensor + Normalize.
TEST(PreprocessMatchesTorchvision, NchwTensorsFromReferencePixels) {
  std::size_t checked = 0;
  for (const DecodeCase& c : reference_data().cases) {
    const RgbImage source = read_rgb(c.rgb, c.width, c.height);
    for (const PreprocessCheck& check : c.checks) {
      SCOPED_TRACE(c.name + " " + check.spec);
      const InputSpec& spec = spec_named(check.spec);
      const Tensor tensor = preprocess(source, spec, TensorLayout::kNCHW);
      ASSERT_EQ(tensor.shape, (std::vector<std::int64_t>{1, 3, spec.crop_size, spec.crop_size}));
      const DiffStats stats = compare(tensor.data, read_floats(check.tensor));
      EXPECT_TRUE(stats.exact()) << stats.summary();
      ++checked;
    }
  }
  EXPECT_GE(checked, 100u);
}

TEST(PreprocessMatchesTorchvision, NhwcTensorsAreTheSameValuesTransposed) {
  std::size_t checked = 0;
  for (const DecodeCase& c : reference_data().cases) {
    if (c.category != "photo" && c.category != "geometry") continue;
    const RgbImage source = read_rgb(c.rgb, c.width, c.height);
    for (const PreprocessCheck& check : c.checks) {
      SCOPED_TRACE(c.name + " " + check.spec);
      const InputSpec& spec = spec_named(check.spec);
      const Tensor tensor = preprocess(source, spec, TensorLayout::kNHWC);
      ASSERT_EQ(tensor.shape, (std::vector<std::int64_t>{1, spec.crop_size, spec.crop_size, 3}));
      const DiffStats stats = compare(tensor.data, chw_to_hwc(read_floats(check.tensor), spec.crop_size));
      EXPECT_TRUE(stats.exact()) << stats.summary();
      ++checked;
    }
  }
  EXPECT_GE(checked, 40u);
}

// The whole path from encoded bytes, held to the acceptance floor (within one 8-bit level
// everywhere, mean abs diff <= 1e-3); the component tests above demand bit-exactness.
TEST(PreprocessMatchesTorchvision, EndToEndFromEncodedFiles) {
  std::size_t exact = 0, checked = 0;
  for (const DecodeCase& c : reference_data().cases) {
    const RgbImage decoded = decode_image(read_bytes(c.file));
    for (const PreprocessCheck& check : c.checks) {
      SCOPED_TRACE(c.name + " " + check.spec);
      const InputSpec& spec = spec_named(check.spec);
      for (const TensorLayout layout : {TensorLayout::kNCHW, TensorLayout::kNHWC}) {
        std::vector<float> expected = read_floats(check.tensor);
        if (layout == TensorLayout::kNHWC) expected = chw_to_hwc(expected, spec.crop_size);
        std::vector<float> out(expected.size());
        preprocess_into(decoded, spec, layout, out);
        const DiffStats stats = compare(out, expected);
        if (layout == TensorLayout::kNCHW)
          std::printf("[ tensor   ] %-40s %-16s %s\n", c.name.c_str(), check.spec.c_str(), stats.summary().c_str());
        EXPECT_LE(stats.max_abs, one_level(spec) * 1.0001) << stats.summary();
        EXPECT_LE(stats.mean_abs, 1e-3) << stats.summary();
        exact += stats.exact();
        ++checked;
      }
    }
  }
  std::printf("[ tensor   ] %zu of %zu end-to-end tensors bit-exact\n", exact, checked);
  EXPECT_GE(checked, 200u);
}

TEST(ResizeShorterSide, LongerSideIsTruncatedNotRounded) {
  // 640 * 256 / 427 = 383.70: torchvision keeps 383.
  EXPECT_EQ(resize_shorter_side(uniform_image(640, 427, 1, 2, 3), 256, Interpolation::kBilinear).width, 383);
  const RgbImage portrait = resize_shorter_side(uniform_image(427, 640, 1, 2, 3), 256, Interpolation::kBicubic);
  EXPECT_EQ(portrait.width, 256);
  EXPECT_EQ(portrait.height, 383);
  const RgbImage square = resize_shorter_side(uniform_image(99, 99, 1, 2, 3), 384, Interpolation::kBilinear);
  EXPECT_EQ(square.width, 384);
  EXPECT_EQ(square.height, 384);
}

TEST(ResizeShorterSide, UniformColourSurvivesEveryScale) {
  // The weights of each output sample sum to one, so a flat image stays flat, up or down.
  for (const auto interpolation : {Interpolation::kBilinear, Interpolation::kBicubic}) {
    for (const auto& [w, h, size] : {std::tuple{97, 61, 384}, std::tuple{1000, 700, 224}, std::tuple{3, 5, 7}}) {
      const RgbImage resized = resize_shorter_side(uniform_image(w, h, 255, 0, 131), size, interpolation);
      for (std::size_t i = 0; i < resized.pixels.size(); i += 3) {
        ASSERT_EQ(resized.pixels[i], 255);
        ASSERT_EQ(resized.pixels[i + 1], 0);
        ASSERT_EQ(resized.pixels[i + 2], 131);
      }
    }
  }
}

TEST(ResizeShorterSide, RefusesAbsurdAspectRatios) {
  // Shorter side 1 -> 384 would make the longer side 384 * 3,000,000 pixels.
  try {
    resize_shorter_side(uniform_image(3000000, 1, 0, 0, 0), 384, Interpolation::kBilinear);
    ADD_FAILURE() << "absurd resize accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kImageTooLarge) << error.what();
  }
}

TEST(CenterCrop, OffsetsRoundHalfToEvenAsPythonDoes) {
  // excess 3 -> round(1.5) = 2; excess 1 -> round(0.5) = 0; excess 5 -> round(2.5) = 2;
  // excess 4 -> 2; excess 0 -> 0.
  const std::tuple<int, int, int> cases[] = {{5, 2, 2}, {4, 3, 0}, {7, 2, 2}, {6, 2, 2}, {9, 2, 4}, {3, 3, 0}};
  for (const auto& [length, crop, offset] : cases) {
    SCOPED_TRACE(std::to_string(length) + " crop " + std::to_string(crop));
    const RgbImage horizontal = center_crop(coordinate_image(length, crop + 1), crop);
    EXPECT_EQ(horizontal.pixels[0], offset) << "left";
    const RgbImage vertical = center_crop(coordinate_image(crop + 1, length), crop);
    EXPECT_EQ(vertical.pixels[1], offset) << "top";
  }
}

TEST(CenterCrop, RefusesACropLargerThanTheImage) {
  EXPECT_THROW(center_crop(uniform_image(10, 20, 0, 0, 0), 11), Error);
  EXPECT_THROW(center_crop(uniform_image(10, 20, 0, 0, 0), 0), Error);
}

TEST(Preprocess, NormalisesAsToTensorThenNormalize) {
  // No resampling (the image already has the crop size), so every element is
  // (v / 255 - mean) / std; hand-computed in double for v = 255, 0, 128.
  InputSpec spec;
  spec.crop_size = spec.resize_size = 4;
  const Tensor tensor = preprocess(uniform_image(4, 4, 255, 0, 128), spec, TensorLayout::kNCHW);
  EXPECT_NEAR(tensor.data[0], (1.0 - 0.485) / 0.229, 1e-6);
  EXPECT_NEAR(tensor.data[16], (0.0 - 0.456) / 0.224, 1e-6);
  EXPECT_NEAR(tensor.data[32], (128.0 / 255.0 - 0.406) / 0.225, 1e-6);
  EXPECT_FLOAT_EQ(tensor.data[15], tensor.data[0]);
}

TEST(Preprocess, RefusesInconsistentArguments) {
  const RgbImage image = uniform_image(50, 40, 1, 2, 3);
  InputSpec spec;
  std::vector<float> out(3 * 224 * 224);
  EXPECT_NO_THROW(preprocess_into(image, spec, TensorLayout::kNCHW, out));

  auto expect_invalid = [&](const RgbImage& img, const InputSpec& s, std::size_t out_size, const char* what) {
    std::vector<float> buffer(out_size);
    try {
      preprocess_into(img, s, TensorLayout::kNCHW, buffer);
      ADD_FAILURE() << what << " accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << what << ": " << error.what();
    }
  };
  expect_invalid(image, spec, out.size() - 1, "output one float short");
  InputSpec small_resize = spec;
  small_resize.resize_size = 200;
  expect_invalid(image, small_resize, out.size(), "resize smaller than crop");
  InputSpec zero_std = spec;
  zero_std.std[1] = 0.0f;
  expect_invalid(image, zero_std, out.size(), "zero std");
  RgbImage broken = image;
  broken.pixels.pop_back();
  expect_invalid(broken, spec, out.size(), "pixel buffer of the wrong size");
  InputSpec no_crop = spec;
  no_crop.crop_size = 0;
  EXPECT_THROW(preprocess(image, no_crop, TensorLayout::kNCHW), Error);
}

TEST(Preprocess, InterpolationNames) {
  EXPECT_EQ(to_string(Interpolation::kBilinear), "bilinear");
  EXPECT_EQ(to_string(Interpolation::kBicubic), "bicubic");
}

}  // namespace
}  // namespace dermcds::testing
