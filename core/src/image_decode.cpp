#include <algorithm>
#include <array>
#include <cstdio>
#include <string>

#include "decoded_image.hpp"
#include "dermcds/error.hpp"
#include "dermcds/image.hpp"
#include "exif_transpose.hpp"
#include "jpeg_decoder.hpp"
#include "png_decoder.hpp"

namespace dermcds {
namespace {

using namespace std::string_view_literals;  // signatures contain NUL bytes

constexpr std::array<std::uint8_t, 8> kPngSignature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr std::array<std::uint8_t, 3> kJpegSignature = {0xFF, 0xD8, 0xFF};

bool has_prefix(std::span<const std::uint8_t> bytes, std::string_view prefix, std::size_t offset = 0) {
  if (bytes.size() < offset + prefix.size()) return false;
  return std::equal(prefix.begin(), prefix.end(), bytes.begin() + static_cast<std::ptrdiff_t>(offset),
                    [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; });
}

template <std::size_t N>
bool has_prefix(std::span<const std::uint8_t> bytes, const std::array<std::uint8_t, N>& signature) {
  return bytes.size() >= N && std::equal(signature.begin(), signature.end(), bytes.begin());
}

// Formats people send by mistake, named so the error says what the file is.
std::string_view recognise_other_format(std::span<const std::uint8_t> bytes) {
  if (has_prefix(bytes, "GIF87a"sv) || has_prefix(bytes, "GIF89a"sv)) return "GIF";
  if (has_prefix(bytes, "BM"sv) && bytes.size() >= 18) {
    // The DIB header that follows the 14-byte file header starts with its own size.
    const unsigned dib_size = bytes[14] | bytes[15] << 8 | bytes[16] << 16 | static_cast<unsigned>(bytes[17]) << 24;
    if (dib_size == 12 || dib_size == 40 || dib_size == 52 || dib_size == 56 || dib_size == 64 || dib_size == 108 || dib_size == 124)
      return "BMP";
  }
  if (has_prefix(bytes, "II*\0"sv) || has_prefix(bytes, "MM\0*"sv)) return "TIFF";
  if (has_prefix(bytes, "II+\0"sv) || has_prefix(bytes, "MM\0+"sv)) return "BigTIFF";
  if (has_prefix(bytes, "RIFF"sv) && has_prefix(bytes, "WEBP"sv, 8)) return "WebP";
  if (has_prefix(bytes, "ftyp"sv, 4)) {
    if (has_prefix(bytes, "avif"sv, 8) || has_prefix(bytes, "avis"sv, 8)) return "AVIF";
    if (has_prefix(bytes, "heic"sv, 8) || has_prefix(bytes, "heix"sv, 8) || has_prefix(bytes, "heim"sv, 8) ||
        has_prefix(bytes, "heis"sv, 8) || has_prefix(bytes, "hevc"sv, 8) || has_prefix(bytes, "hevx"sv, 8) ||
        has_prefix(bytes, "mif1"sv, 8) || has_prefix(bytes, "msf1"sv, 8))
      return "HEIF/HEIC";
    return "ISO media (MP4/QuickTime)";
  }
  if (has_prefix(bytes, "\0\0\0\x0CjP  \r\n\x87\n"sv) || has_prefix(bytes, std::array<std::uint8_t, 4>{0xFF, 0x4F, 0xFF, 0x51}))
    return "JPEG 2000";
  if (has_prefix(bytes, std::array<std::uint8_t, 2>{0xFF, 0x0A}) || has_prefix(bytes, "\0\0\0\x0CJXL \r\n\x87\n"sv)) return "JPEG XL";
  if (has_prefix(bytes, "%PDF"sv)) return "PDF";
  if (has_prefix(bytes, "DICM"sv, 128)) return "DICOM";
  return {};
}

std::string leading_bytes_hex(std::span<const std::uint8_t> bytes) {
  std::string hex;
  const std::size_t count = std::min<std::size_t>(bytes.size(), 8);
  for (std::size_t i = 0; i < count; ++i) {
    char byte[4];
    std::snprintf(byte, sizeof byte, i == 0 ? "%02x" : " %02x", bytes[i]);
    hex += byte;
  }
  return hex;
}

}  // namespace

std::string_view to_string(ImageFormat format) noexcept {
  switch (format) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
  }
  return "unknown";
}

ImageFormat sniff_image_format(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) throw Error(ErrorCode::kInvalidImage, "empty image data (0 bytes)");
  if (has_prefix(bytes, kJpegSignature)) return ImageFormat::kJpeg;
  if (has_prefix(bytes, kPngSignature)) return ImageFormat::kPng;
  // A prefix of a signature is a file cut short, not a foreign format.
  const auto is_start_of = [&](const auto& signature) {
    return bytes.size() < signature.size() && std::equal(bytes.begin(), bytes.end(), signature.begin());
  };
  if (is_start_of(kJpegSignature) || is_start_of(kPngSignature))
    throw Error(ErrorCode::kInvalidImage, std::string("truncated ") + (is_start_of(kJpegSignature) ? "JPEG" : "PNG") + ": only " +
                                              std::to_string(bytes.size()) + " bytes");
  const std::string_view other = recognise_other_format(bytes);
  if (!other.empty())
    throw Error(ErrorCode::kUnsupportedFormat, "unsupported format: " + std::string(other) + " (only JPEG and PNG are decoded)");
  throw Error(ErrorCode::kUnsupportedFormat, "unsupported format: not a JPEG or PNG image (first bytes: " + leading_bytes_hex(bytes) + ")");
}

RgbImage decode_image(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  const ImageFormat format = sniff_image_format(bytes);
  detail::DecodedImage decoded = format == ImageFormat::kJpeg ? detail::decode_jpeg(bytes, limits) : detail::decode_png(bytes, limits);
  if (!decoded.orientation) return std::move(decoded.image);
  return detail::apply_exif_orientation(std::move(decoded.image), *decoded.orientation);
}

namespace detail {

void check_dimensions(std::uint64_t width, std::uint64_t height, const DecodeLimits& limits, std::string_view format) {
  const std::string size = std::to_string(width) + " x " + std::to_string(height);
  if (width == 0 || height == 0) throw Error(ErrorCode::kInvalidImage, std::string(format) + " header gives an empty image, " + size);
  // Both factors are below 2^32, so the product cannot overflow.
  const std::uint64_t pixels = width * height;
  if (pixels > limits.max_pixels)
    throw Error(ErrorCode::kImageTooLarge, std::string(format) + " image is " + size + " pixels (" + std::to_string(pixels) +
                                               "), over the limit of " + std::to_string(limits.max_pixels) + " pixels");
}

}  // namespace detail
}  // namespace dermcds
