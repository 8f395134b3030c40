#include "jpeg_decoder.hpp"

// jpeglib.h needs size_t and FILE declared before it.
#include <cstddef>
#include <cstdio>
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <csetjmp>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dermcds/error.hpp"
#include "exif_orientation.hpp"

namespace dermcds::detail {
namespace {

// A progressive JPEG may hold any number of scans, each a full pass over the coefficients; a
// small file with thousands of scans costs minutes of CPU. Real encoders write at most a few
// dozen.
constexpr int kMaxScans = 1000;

// libjpeg calls error_exit for fatal errors and must not return from it; we longjmp back into
// Decompressor::guarded(). The jpeg_error_mgr must be the first member: libjpeg only knows it.
struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

ErrorManager& error_manager(j_common_ptr cinfo) { return *reinterpret_cast<ErrorManager*>(cinfo->err); }

[[noreturn]] void fail_with(j_common_ptr cinfo, const char* message) {
  ErrorManager& errors = error_manager(cinfo);
  std::snprintf(errors.message, sizeof errors.message, "%s", message);
  std::longjmp(errors.jump, 1);
}

[[noreturn]] void on_error_exit(j_common_ptr cinfo) {
  ErrorManager& errors = error_manager(cinfo);
  (*cinfo->err->format_message)(cinfo, errors.message);
  std::longjmp(errors.jump, 1);
}

// Warnings after which libjpeg carries on with pixels it made up.
bool is_damage_warning(int code) {
  switch (code) {
    case JWRN_JPEG_EOF:       // ran out of data; libjpeg inserts a fake EOI and pads
    case JWRN_HIT_MARKER:     // entropy-coded segment cut short
    case JWRN_HUFF_BAD_CODE:  // undecodable entropy data, block zeroed
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:  // lost restart-marker sync, rows skipped or repeated
      return true;
    default:
      return false;
  }
}

void on_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  if (is_damage_warning(cinfo->err->msg_code)) {
    error_manager(cinfo).truncated = cinfo->err->msg_code == JWRN_JPEG_EOF;
    on_error_exit(cinfo);
  }
  ++cinfo->err->num_warnings;
}

// libjpeg's default prints to stderr; a library has no business writing there.
void on_output_message(j_common_ptr) {}

void on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxScans)
    fail_with(cinfo, "progressive JPEG has more than 1000 scans");
}

// Owns one jpeg_decompress_struct. Every libjpeg call goes through guarded(), which arms the
// longjmp target; the frames a longjmp skips (libjpeg's and the lambda's) own nothing with a
// destructor, so no C++ object is leaked or left half-destroyed, and the libjpeg state itself is
// released by the destructor. Lambdas passed to guarded() must not create C++ objects.
class Decompressor {
 public:
  explicit Decompressor(std::span<const std::uint8_t> bytes) {
    cinfo_.err = jpeg_std_error(&errors_.base);
    errors_.base.error_exit = on_error_exit;
    errors_.base.emit_message = on_emit_message;
    errors_.base.output_message = on_output_message;
    errors_.message[0] = '\0';
    errors_.truncated = false;
    progress_.progress_monitor = on_progress;
    try {
      guarded([&] {
        jpeg_create_decompress(&cinfo_);
        cinfo_.progress = &progress_;
        jpeg_mem_src(&cinfo_, bytes.data(), static_cast<unsigned long>(bytes.size()));
      });
    } catch (...) {
      jpeg_destroy_decompress(&cinfo_);  // safe on a half-created struct: it checks cinfo_.mem
      throw;
    }
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo_); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  jpeg_decompress_struct& cinfo() { return cinfo_; }

  template <typename Call>
  void guarded(Call&& call) {
    if (setjmp(errors_.jump) != 0) throw_error();
    call();
  }

 private:
  [[noreturn]] void throw_error() const {
    if (errors_.truncated) throw Error(ErrorCode::kInvalidImage, "truncated JPEG: the data ends before the image is complete");
    // libjpeg's corruption warnings already start with "Corrupt JPEG data: ".
    std::string_view detail = errors_.message;
    if (detail.starts_with("Corrupt JPEG data: ")) detail.remove_prefix(19);
    throw Error(ErrorCode::kInvalidImage, "corrupt JPEG: " + std::string(detail));
  }

  jpeg_decompress_struct cinfo_{};
  ErrorManager errors_{};
  jpeg_progress_mgr progress_{};
};

// libjpeg hands out CMYK with Adobe's polarity (0 = full ink), which Pillow inverts on reading
// ("CMYK;I"). Pillow's CMYK->RGB then gives each channel (255 - K) scaled by (255 - C), dividing
// the product by 255 in its rounding integer form ((t >> 8) + t) >> 8 with t = a * b + 128.
void adobe_cmyk_row_to_rgb(const std::uint8_t* stored, std::uint8_t* rgb, std::size_t width) {
  for (std::size_t x = 0; x < width; ++x, stored += 4, rgb += 3) {
    const unsigned not_k = stored[3];  // Pillow's K is 255 - stored[3]
    for (int c = 0; c < 3; ++c) {
      const unsigned ink = 255u - stored[c];  // Pillow's C, M or Y
      const unsigned t = ink * not_k + 128u;
      rgb[c] = static_cast<std::uint8_t>(not_k - (((t >> 8) + t) >> 8));
    }
  }
}

std::optional<int> orientation_from_markers(const jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr marker = cinfo.marker_list; marker != nullptr; marker = marker->next) {
    if (marker->marker != JPEG_APP0 + 1 || marker->data_length < 5) continue;
    if (std::memcmp(marker->data, "Exif\0", 5) != 0) continue;
    // Pillow reads the first Exif segment only, even when it cannot be parsed.
    return exif_orientation({marker->data, marker->data_length});
  }
  return std::nullopt;
}

}  // namespace

DecodedImage decode_jpeg(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  Decompressor decompressor(bytes);
  jpeg_decompress_struct& cinfo = decompressor.cinfo();

  int header_status = 0;
  decompressor.guarded([&] {
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    header_status = jpeg_read_header(&cinfo, FALSE);
  });
  if (header_status != JPEG_HEADER_OK) throw Error(ErrorCode::kInvalidImage, "corrupt JPEG: the data holds no image (tables only)");

  check_dimensions(cinfo.image_width, cinfo.image_height, limits, "JPEG");
  const bool cmyk = cinfo.num_components == 4;
  if (cinfo.num_components != 1 && cinfo.num_components != 3 && !cmyk)
    throw Error(ErrorCode::kUnsupportedFormat, "unsupported JPEG: " + std::to_string(cinfo.num_components) + " colour components");
  // libjpeg replicates greyscale itself and turns YCCK into CMYK.
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;

  DecodedImage decoded;
  decoded.orientation = orientation_from_markers(cinfo);
  RgbImage& image = decoded.image;
  image.width = static_cast<int>(cinfo.image_width);
  image.height = static_cast<int>(cinfo.image_height);
  const std::size_t width = cinfo.image_width;
  const std::size_t row_bytes = 3 * width;
  image.pixels.resize(row_bytes * cinfo.image_height);

  // Buffers the loop below needs, created outside guarded() so a longjmp skips no destructor.
  std::vector<std::uint8_t> cmyk_row(cmyk ? 4 * width : 0);
  std::uint8_t* const pixels = image.pixels.data();
  std::uint8_t* const cmyk_buffer = cmyk_row.data();

  decompressor.guarded([&] {
    jpeg_start_decompress(&cinfo);
    while (cinfo.output_scanline < cinfo.output_height) {
      std::uint8_t* out = pixels + row_bytes * cinfo.output_scanline;
      JSAMPROW row = cmyk ? cmyk_buffer : out;
      if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) fail_with(reinterpret_cast<j_common_ptr>(&cinfo), "no scanline read");
      if (cmyk) adobe_cmyk_row_to_rgb(cmyk_buffer, out, width);
    }
    // Reads up to EOI, so data cut after the last scanline is still reported as truncated.
    jpeg_finish_decompress(&cinfo);
  });
  return decoded;
}

}  // namespace dermcds::detail
