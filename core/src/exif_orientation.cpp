#include "exif_orientation.hpp"

#include <libexif/exif-data.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace dermcds::detail {
namespace {

constexpr std::uint8_t kExifHeader[] = {'E', 'x', 'i', 'f', 0, 0};

struct ExifDataUnref {
  void operator()(ExifData* data) const noexcept { exif_data_unref(data); }
};
using ExifDataPtr = std::unique_ptr<ExifData, ExifDataUnref>;

bool starts_with_exif_header(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= sizeof kExifHeader && std::equal(std::begin(kExifHeader), std::end(kExifHeader), bytes.begin());
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Python's bytes.fromhex: pairs of hex digits, whitespace allowed between pairs only.
std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view text) {
  std::vector<std::uint8_t> bytes;
  bytes.reserve(text.size() / 2);
  std::size_t i = 0;
  while (i < text.size()) {
    if (is_ascii_space(text[i])) {
      ++i;
      continue;
    }
    if (i + 1 >= text.size()) return std::nullopt;
    const int high = hex_digit(text[i]);
    const int low = hex_digit(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    bytes.push_back(static_cast<std::uint8_t>(high * 16 + low));
    i += 2;
  }
  return bytes;
}

}  // namespace

std::optional<int> exif_orientation(std::span<const std::uint8_t> exif) {
  // libexif only accepts the APP1 layout; the PNG eXIf chunk holds the bare TIFF structure.
  std::vector<std::uint8_t> with_header;
  if (!starts_with_exif_header(exif)) {
    with_header.reserve(sizeof kExifHeader + exif.size());
    with_header.insert(with_header.end(), std::begin(kExifHeader), std::end(kExifHeader));
    with_header.insert(with_header.end(), exif.begin(), exif.end());
    exif = with_header;
  }
  if (exif.size() > 0xFFFFFFFFu) return std::nullopt;

  ExifDataPtr data(exif_data_new());
  if (!data) return std::nullopt;
  // Read the tags as stored: the default options would "fix" the data to the specification,
  // adding or dropping entries, and drop tags libexif does not know.
  exif_data_unset_option(data.get(), EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_unset_option(data.get(), EXIF_DATA_OPTION_IGNORE_UNKNOWN_TAGS);
  exif_data_load_data(data.get(), exif.data(), static_cast<unsigned int>(exif.size()));

  const ExifEntry* entry = exif_content_get_entry(data->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
  if (entry == nullptr || entry->data == nullptr || entry->components != 1) return std::nullopt;
  const ExifByteOrder order = exif_data_get_byte_order(data.get());
  switch (entry->format) {
    case EXIF_FORMAT_SHORT:
      if (entry->size < 2) return std::nullopt;
      return exif_get_short(entry->data, order);
    case EXIF_FORMAT_LONG:
      if (entry->size < 4) return std::nullopt;
      return static_cast<int>(std::min<ExifLong>(exif_get_long(entry->data, order), 0x7FFFFFFF));
    case EXIF_FORMAT_BYTE:
      if (entry->size < 1) return std::nullopt;
      return entry->data[0];
    default:
      return std::nullopt;
  }
}

std::optional<int> raw_profile_exif_orientation(std::string_view text) {
  // The hex data starts after the third line break ("", "exif", "<length>", data...).
  std::size_t start = 0;
  for (int line = 0; line < 3; ++line) {
    const std::size_t newline = text.find('\n', start);
    if (newline == std::string_view::npos) return std::nullopt;
    start = newline + 1;
  }
  std::string hex;
  hex.reserve(text.size() - start);
  for (char c : text.substr(start))
    if (c != '\n') hex.push_back(c);
  const auto bytes = parse_hex(hex);
  if (!bytes || bytes->empty()) return std::nullopt;
  return exif_orientation(*bytes);
}

std::optional<int> xmp_orientation(std::string_view xmp) {
  constexpr std::string_view kName = "tiff:Orientation";
  for (std::size_t at = xmp.find(kName); at != std::string_view::npos; at = xmp.find(kName, at + 1)) {
    std::string_view rest = xmp.substr(at + kName.size());
    if (rest.starts_with("=\"")) {
      rest.remove_prefix(2);
    } else if (rest.starts_with(">")) {
      rest.remove_prefix(1);
    } else {
      continue;
    }
    if (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') return rest.front() - '0';
  }
  return std::nullopt;
}

}  // namespace dermcds::detail
