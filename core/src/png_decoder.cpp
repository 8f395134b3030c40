#include "png_decoder.hpp"

#include <png.h>

#include <array>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "dermcds/error.hpp"
#include "exif_orientation.hpp"

namespace dermcds::detail {
namespace {

// The PNG specification's own bound on width and height; libpng's default user limit (one
// million) would refuse big headers with a generic error before our pixel-limit check runs.
constexpr png_uint_32 kPngMaxDimension = 0x7FFFFFFF;
// The most libpng may allocate at once beyond the file's own size. libpng allocates a chunk at
// its declared length before reading it, and neither png_set_chunk_malloc_max nor a build limit
// stops that in Debian's libpng 1.6.39: a 134-byte file declaring a 2 GB tEXt chunk took 2 GB
// (fuzz finding, tests/fuzz/regressions/png_decode). No chunk holds more than the file; rows,
// zlib state and decompressed text chunks stay far below this.
constexpr std::size_t kAllocationHeadroom = std::size_t{64} << 20;

struct ReadState {
  std::span<const std::uint8_t> bytes;
  std::size_t position = 0;
  bool ran_out = false;
  std::size_t refused_allocation = 0;  // bytes of an allocation over the limit, 0: none
  char message[256] = {};
};

// libpng's allocator, bounded: a refusal (nullptr) makes libpng raise its "out of memory" error.
png_voidp bounded_malloc(png_structp png, png_alloc_size_t size) {
  ReadState& state = *static_cast<ReadState*>(png_get_mem_ptr(png));
  if (size > state.bytes.size() + kAllocationHeadroom) {
    state.refused_allocation = size;
    return nullptr;
  }
  return std::malloc(size);
}
void bounded_free(png_structp, png_voidp pointer) { std::free(pointer); }

ReadState& read_state(png_structp png) { return *static_cast<ReadState*>(png_get_error_ptr(png)); }

// libpng's error callback must not return; png_longjmp lands in PngReader::guarded().
[[noreturn]] void on_error(png_structp png, png_const_charp message) {
  std::snprintf(read_state(png).message, sizeof read_state(png).message, "%s", message);
  png_longjmp(png, 1);
}

// libpng's default prints warnings (including benign errors, e.g. a bad iCCP profile) to
// stderr; they do not affect the pixels.
void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, std::size_t count) {
  ReadState& state = *static_cast<ReadState*>(png_get_io_ptr(png));
  if (count > state.bytes.size() - state.position) {
    state.ran_out = true;
    png_error(png, "unexpected end of data");
  }
  std::memcpy(out, state.bytes.data() + state.position, count);
  state.position += count;
}

// Owns a libpng read struct with its two info structs (chunks before and after the image data).
// Every libpng call goes through guarded(): it arms the longjmp target, and the frames a longjmp
// skips (libpng's and the lambda's) own nothing with a destructor. Lambdas passed to guarded()
// must not create C++ objects.
class PngReader {
 public:
  explicit PngReader(std::span<const std::uint8_t> bytes) {
    state_.bytes = bytes;
    png_ = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &state_, on_error, on_warning, &state_, bounded_malloc, bounded_free);
    if (png_ != nullptr) info_ = png_create_info_struct(png_);
    if (info_ != nullptr) end_info_ = png_create_info_struct(png_);
    if (end_info_ == nullptr) {
      destroy();
      throw std::bad_alloc();
    }
    png_set_read_fn(png_, &state_, on_read);
    png_set_user_limits(png_, kPngMaxDimension, kPngMaxDimension);
  }
  ~PngReader() { destroy(); }
  PngReader(const PngReader&) = delete;
  PngReader& operator=(const PngReader&) = delete;

  png_structp png() const { return png_; }
  png_infop info() const { return info_; }
  png_infop end_info() const { return end_info_; }

  template <typename Call>
  void guarded(Call&& call) {
    if (setjmp(png_jmpbuf(png_)) != 0) throw_error();
    call();
  }

 private:
  [[noreturn]] void throw_error() const {
    if (state_.ran_out) throw Error(ErrorCode::kInvalidImage, "truncated PNG: the data ends before the image is complete");
    if (state_.refused_allocation)
      throw Error(ErrorCode::kInvalidImage, "corrupt PNG: it asks for " + std::to_string(state_.refused_allocation) +
                                                " bytes of memory, more than a " + std::to_string(state_.bytes.size()) +
                                                "-byte file can need");
    throw Error(ErrorCode::kInvalidImage, std::string("corrupt PNG: ") + state_.message);
  }
  void destroy() noexcept {
    if (png_ != nullptr) png_destroy_read_struct(&png_, info_ != nullptr ? &info_ : nullptr, end_info_ != nullptr ? &end_info_ : nullptr);
  }

  ReadState state_;
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
  png_infop end_info_ = nullptr;
};

struct Header {
  png_uint_32 width = 0;
  png_uint_32 height = 0;
  int bit_depth = 0;
  int color_type = 0;
};

// Pillow's "P" images start from a greyscale palette (entry i is (i, i, i)) that PLTE
// overwrites, so indices past the end of PLTE read as grey.
std::array<std::uint8_t, 3 * 256> expanded_palette(const png_color* entries, int count) {
  std::array<std::uint8_t, 3 * 256> palette{};
  for (int i = 0; i < 256; ++i) palette[3 * i] = palette[3 * i + 1] = palette[3 * i + 2] = static_cast<std::uint8_t>(i);
  for (int i = 0; i < count && i < 256; ++i) {
    palette[3 * i] = entries[i].red;
    palette[3 * i + 1] = entries[i].green;
    palette[3 * i + 2] = entries[i].blue;
  }
  return palette;
}

// Text and eXIf chunks, whether before or after IDAT, in file order; later ones win, as later
// keys overwrite earlier ones in Pillow's info dictionary.
struct OrientationSources {
  std::span<const std::uint8_t> exif;
  std::string_view raw_profile;
  std::string_view xmp;
};

void collect_sources(png_structp png, png_infop info, OrientationSources& sources) {
  png_bytep exif = nullptr;
  png_uint_32 exif_size = 0;
  if (png_get_eXIf_1(png, info, &exif_size, &exif) != 0 && exif != nullptr) sources.exif = {exif, exif_size};
  png_textp texts = nullptr;
  int text_count = 0;
  png_get_text(png, info, &texts, &text_count);
  for (int i = 0; i < text_count; ++i) {
    const std::string_view key = texts[i].key;
    const std::size_t length = texts[i].compression >= PNG_ITXT_COMPRESSION_NONE ? texts[i].itxt_length : texts[i].text_length;
    const std::string_view value(texts[i].text != nullptr ? texts[i].text : "", texts[i].text != nullptr ? length : 0);
    if (key == "Raw profile type exif") sources.raw_profile = value;
    if (key == "XML:com.adobe.xmp") sources.xmp = value;
  }
}

std::optional<int> find_orientation(const OrientationSources& sources) {
  std::optional<int> orientation;
  if (!sources.exif.empty()) {
    orientation = exif_orientation(sources.exif);
  } else if (!sources.raw_profile.empty()) {
    orientation = raw_profile_exif_orientation(sources.raw_profile);
  }
  if (!orientation && !sources.xmp.empty()) orientation = xmp_orientation(sources.xmp);
  return orientation;
}

}  // namespace

DecodedImage decode_png(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  PngReader reader(bytes);
  png_structp png = reader.png();
  png_infop info = reader.info();

  Header header;
  reader.guarded([&] {
    png_read_info(png, info);
    png_get_IHDR(png, info, &header.width, &header.height, &header.bit_depth, &header.color_type, nullptr, nullptr, nullptr);
  });
  check_dimensions(header.width, header.height, limits, "PNG");

  const bool palette = header.color_type == PNG_COLOR_TYPE_PALETTE;
  const bool grey = (header.color_type & PNG_COLOR_MASK_COLOR) == 0;
  std::array<std::uint8_t, 3 * 256> palette_rgb{};
  std::size_t row_bytes = 0;
  reader.guarded([&] {
    if (palette) {
      png_colorp entries = nullptr;
      int count = 0;
      png_get_PLTE(png, info, &entries, &count);
      palette_rgb = expanded_palette(entries, count);
      png_set_packing(png);  // one index per byte, values unchanged
    } else {
      if (header.bit_depth == 16) png_set_strip_16(png);                      // keeps the high byte
      if (grey && header.bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);  // scales, leaves tRNS alone
      if ((header.color_type & PNG_COLOR_MASK_ALPHA) != 0) png_set_strip_alpha(png);
      if (grey) png_set_gray_to_rgb(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    row_bytes = png_get_rowbytes(png, info);
  });
  const std::size_t width = header.width;
  const std::size_t height = header.height;
  if (row_bytes != (palette ? width : 3 * width))
    throw Error(ErrorCode::kInternal,
                "libpng produced rows of " + std::to_string(row_bytes) + " bytes for a " + std::to_string(width) + "-pixel-wide PNG");

  DecodedImage decoded;
  RgbImage& image = decoded.image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.pixels.resize(3 * width * height);
  std::vector<std::uint8_t> indices(palette ? width * height : 0);
  std::uint8_t* const target = palette ? indices.data() : image.pixels.data();
  std::vector<png_bytep> rows(height);
  for (std::size_t y = 0; y < height; ++y) rows[y] = target + y * row_bytes;

  png_infop end_info = reader.end_info();
  png_bytepp row_pointers = rows.data();
  reader.guarded([&] {
    png_read_image(png, row_pointers);
    png_read_end(png, end_info);
  });

  if (palette) {
    std::uint8_t* out = image.pixels.data();
    for (const std::uint8_t index : indices) {
      std::memcpy(out, &palette_rgb[3 * static_cast<std::size_t>(index)], 3);
      out += 3;
    }
  }

  OrientationSources sources;
  collect_sources(png, info, sources);
  collect_sources(png, end_info, sources);
  decoded.orientation = find_orientation(sources);
  return decoded;
}

}  // namespace dermcds::detail
