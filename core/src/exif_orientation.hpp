// Reading the EXIF Orientation tag (0x0112 in IFD0) from the places Pillow 9.4 looks for it,
// so that decode_image() turns photographs upright exactly when PIL.ImageOps.exif_transpose
// does. Each function returns the tag's value, or nullopt when the tag is absent or the block
// cannot be parsed (malformed metadata never fails a decode; the pixels are still valid).
// The value is never negative: a BYTE or SHORT as stored, a LONG clamped to INT_MAX. It need not
// lie in 1..8; like Pillow, the caller applies only those and ignores any other value.
// Thread safety: reentrant.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace dermcds::detail {

// An EXIF block: the JPEG APP1 payload ("Exif\0\0" followed by a TIFF structure) or a bare TIFF
// structure as carried by the PNG eXIf chunk. Parsed with libexif.
std::optional<int> exif_orientation(std::span<const std::uint8_t> exif);

// ImageMagick's PNG text chunk "Raw profile type exif": "\nexif\n<length>\n" then the EXIF block
// in hexadecimal, split over lines.
std::optional<int> raw_profile_exif_orientation(std::string_view text);

// The XMP packet of a PNG (text chunk "XML:com.adobe.xmp"). Pillow takes the first digit after
// `tiff:Orientation="` or `tiff:Orientation>`, and only when the EXIF data has no Orientation.
std::optional<int> xmp_orientation(std::string_view xmp);

}  // namespace dermcds::detail
