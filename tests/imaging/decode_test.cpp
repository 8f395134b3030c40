// decode_image() against Pillow 9.4 (reference_transform.load_rgb) on real photographs and
// synthetic edge cases, and its refusal of broken, foreign and oversized input.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "allocation_probe.hpp"
#include "dermcds/error.hpp"
#include "dermcds/image.hpp"
#include "reference_data.hpp"

namespace dermcds::testing {
namespace {

std::span<const std::uint8_t> as_bytes(std::string_view text) { return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}; }

// Decodes every case of a category and requires Pillow's exact pixels.
void expect_category_matches_pillow(const std::string& category, std::size_t minimum_cases) {
  const auto cases = reference_data().in_category(category);
  ASSERT_GE(cases.size(), minimum_cases) << "reference data lacks " << category << " cases";
  for (const DecodeCase* c : cases) {
    SCOPED_TRACE(c->name);
    const auto bytes = read_bytes(c->file);
    RgbImage decoded;
    try {
      decoded = decode_image(bytes);
    } catch (const Error& error) {
      ADD_FAILURE() << c->name << " (Pillow mode " << c->pillow_mode << ") refused: " << error.what();
      continue;
    }
    ASSERT_EQ(decoded.width, c->width);
    ASSERT_EQ(decoded.height, c->height);
    const RgbImage expected = read_rgb(c->rgb, c->width, c->height);
    const DiffStats stats = compare(decoded.pixels, expected.pixels);
    std::printf("[ decode   ] %-40s %-5s %5dx%-5d %s\n", c->name.c_str(), c->pillow_mode.c_str(), c->width, c->height,
                stats.summary().c_str());
    EXPECT_TRUE(stats.exact()) << c->name << ": " << stats.summary();
  }
}

TEST(DecodeMatchesPillow, Photographs) { expect_category_matches_pillow("photo", 12); }

TEST(DecodeMatchesPillow, EveryExifOrientationFromJpegAndPng) { expect_category_matches_pillow("orientation", 20); }

TEST(DecodeMatchesPillow, JpegCmykYcckGreyProgressiveSubsampling) { expect_category_matches_pillow("jpeg", 10); }

TEST(DecodeMatchesPillow, PngDepthsPalettesTransparencyInterlacing) { expect_category_matches_pillow("png", 25); }

TEST(DecodeMatchesPillow, TinyOddAndExtremeSizes) { expect_category_matches_pillow("geometry", 14); }

// The orientation cases must really differ: a decoder that ignored EXIF would still match
// Pillow on orientation 1, so check that the rotated ones changed shape or content.
TEST(DecodeMatchesPillow, OrientationsProduceEightDistinctImages) {
  const auto& data = reference_data();
  std::vector<RgbImage> images;
  for (int value = 1; value <= 8; ++value)
    images.push_back(decode_image(read_bytes(data.named("orientation_jpeg_" + std::to_string(value)).file)));
  EXPECT_EQ(images[0].width, 300);
  EXPECT_EQ(images[0].height, 200);
  for (int value = 5; value <= 8; ++value) {
    EXPECT_EQ(images[value - 1].width, 200) << "orientation " << value << " swaps the axes";
    EXPECT_EQ(images[value - 1].height, 300);
  }
  for (std::size_t a = 0; a < images.size(); ++a)
    for (std::size_t b = a + 1; b < images.size(); ++b)
      EXPECT_FALSE(images[a].width == images[b].width && images[a].pixels == images[b].pixels)
          << "orientations " << a + 1 << " and " << b + 1 << " decode identically";
}

TEST(DecodeRefusesBadInput, EachWithItsErrorCodeAndAMessageNamingTheProblem) {
  const auto& invalid = reference_data().invalid;
  ASSERT_GE(invalid.size(), 25u);
  for (const InvalidCase& c : invalid) {
    SCOPED_TRACE(c.name);
    const auto bytes = read_bytes(c.file);
    try {
      const RgbImage image = decode_image(bytes);
      ADD_FAILURE() << c.name << " decoded to " << image.width << "x" << image.height << ", expected " << c.error;
    } catch (const Error& error) {
      std::printf("[ refuse   ] %-30s %-18s \"%s\"  (Pillow: %s)\n", c.name.c_str(), std::string(to_string(error.code())).c_str(),
                  error.what(), c.pillow.substr(0, 60).c_str());
      EXPECT_EQ(to_string(error.code()), c.error) << error.what();
      EXPECT_NE(std::string(error.what()).find(c.message), std::string::npos)
          << "message \"" << error.what() << "\" lacks \"" << c.message << "\"";
    }
  }
}

TEST(DecodeRefusesBadInput, HugeHeadersBeforeAllocatingPixels) {
  const auto& data = reference_data();
  for (const char* name : {"png_100000x100000", "jpeg_60000x60000", "png_9000x9000_bomb"}) {
    SCOPED_TRACE(name);
    const InvalidCase* c = nullptr;
    for (const auto& candidate : data.invalid)
      if (candidate.name == name) c = &candidate;
    ASSERT_NE(c, nullptr);
    const auto bytes = read_bytes(c->file);
    AllocationProbe probe;
    EXPECT_THROW(
        {
          try {
            decode_image(bytes);
          } catch (const Error& error) {
            EXPECT_EQ(error.code(), ErrorCode::kImageTooLarge) << error.what();
            throw;
          }
        },
        Error);
    std::printf("[ refuse   ] %-30s largest C++ allocation %zu bytes\n", name, probe.largest());
    EXPECT_LT(probe.largest(), std::size_t{1} << 20) << "largest C++ allocation while refusing " << name;
  }
}

TEST(DecodeLimits, PixelLimitIsInclusiveForJpegAndPng) {
  const auto& data = reference_data();
  for (const char* name : {"photo_grace_hopper", "photo_chelsea"}) {
    SCOPED_TRACE(name);
    const DecodeCase& c = data.named(name);
    const auto bytes = read_bytes(c.file);
    const std::uint64_t pixels = static_cast<std::uint64_t>(c.width) * static_cast<std::uint64_t>(c.height);
    EXPECT_EQ(decode_image(bytes, DecodeLimits{pixels}).width, c.width);
    try {
      decode_image(bytes, DecodeLimits{pixels - 1});
      ADD_FAILURE() << "limit of " << pixels - 1 << " pixels not enforced";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kImageTooLarge);
      EXPECT_NE(std::string(error.what()).find(std::to_string(pixels - 1)), std::string::npos) << error.what();
    }
  }
}

TEST(SniffImageFormat, RecognisesJpegAndPng) {
  EXPECT_EQ(sniff_image_format(as_bytes("\xFF\xD8\xFF\xE0")), ImageFormat::kJpeg);
  EXPECT_EQ(sniff_image_format(as_bytes("\x89PNG\r\n\x1A\n\0\0")), ImageFormat::kPng);
  EXPECT_EQ(to_string(ImageFormat::kJpeg), "JPEG");
  EXPECT_EQ(to_string(ImageFormat::kPng), "PNG");
}

TEST(SniffImageFormat, NamesOtherFormatsInTheMessage) {
  const std::string bmp_header = std::string("BM") + std::string(12, '\0') + std::string("\x28\0\0\0", 4);
  const std::pair<std::string, std::string> samples[] = {
      {"GIF89a\x01\0\x01\0", "GIF"},
      {"GIF87a\x01\0\x01\0", "GIF"},
      {bmp_header, "BMP"},
      {std::string("II*\0\x08\0\0\0", 8), "TIFF"},
      {std::string("MM\0*\0\0\0\x08", 8), "TIFF"},
      {std::string("RIFF\x24\0\0\0WEBPVP8 ", 16), "WebP"},
      {std::string("\0\0\0\x18"
                   "ftypheic\0\0\0\0",
                   16),
       "HEIF/HEIC"},
      {std::string("\0\0\0\x1C"
                   "ftypavif\0\0\0\0",
                   16),
       "AVIF"},
      {"%PDF-1.7\n", "PDF"},
  };
  for (const auto& [bytes, name] : samples) {
    try {
      sniff_image_format(as_bytes(bytes));
      ADD_FAILURE() << name << " accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kUnsupportedFormat);
      EXPECT_EQ(std::string(error.what()).rfind("unsupported format: " + name, 0), 0u) << error.what();
    }
  }
}

TEST(SniffImageFormat, EmptyAndUnknownBytes) {
  try {
    sniff_image_format({});
    ADD_FAILURE() << "empty input accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidImage);
  }
  try {
    sniff_image_format(as_bytes("hello world"));
    ADD_FAILURE() << "text accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnsupportedFormat);
    EXPECT_NE(std::string(error.what()).find("68 65 6c 6c"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace dermcds::testing
