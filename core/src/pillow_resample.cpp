#include "pillow_resample.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dermcds/error.hpp"

namespace dermcds::detail {
namespace {

constexpr int kPrecisionBits = 22;  // 32 - 8 - 2: room for 8-bit samples and negative lobes
constexpr std::int32_t kRoundingBias = std::int32_t{1} << (kPrecisionBits - 1);

// The expressions below keep Pillow's operation order, so every double rounds identically.
double triangle(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double keys_cubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Filter {
  double (*weight)(double);
  double radius;
};

Filter filter_for(Interpolation interpolation) {
  return interpolation == Interpolation::kBicubic ? Filter{keys_cubic, 2.0} : Filter{triangle, 1.0};
}

std::int32_t to_fixed_point(double weight) {
  const double scaled = weight * (1 << kPrecisionBits);
  return static_cast<std::int32_t>(weight < 0 ? -0.5 + scaled : 0.5 + scaled);
}

std::uint8_t clip8(std::int32_t sum) { return static_cast<std::uint8_t>(std::clamp<std::int32_t>(sum >> kPrecisionBits, 0, 255)); }

// Filter taps for output samples [begin, begin + count) of one axis.
struct AxisWeights {
  int stride = 0;                     // weights stored per output sample (Pillow's ksize)
  std::vector<int> first;             // first input sample each output sample reads
  std::vector<int> taps;              // how many consecutive input samples it reads
  std::vector<std::int32_t> weights;  // taps[i] fixed-point weights from weights[i * stride]

  int input_begin() const { return *std::min_element(first.begin(), first.end()); }
  int input_end() const {
    int end = 0;
    for (std::size_t i = 0; i < first.size(); ++i) end = std::max(end, first[i] + taps[i]);
    return end;
  }
};

AxisWeights axis_weights(int in_size, int out_size, int begin, int count, Filter filter) {
  // Pillow passes the source box to C as floats, so sizes beyond 2^24 are rounded first.
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter.radius * filter_scale;
  const double inverse_filter_scale = 1.0 / filter_scale;

  // Far beyond any real downscale (a 64-megapixel image to one pixel is a factor of 8000), and
  // it keeps the tap count and the weight table within int and memory.
  if (support > (1 << 20))
    throw Error(ErrorCode::kInvalidArgument, "resample: downscaling " + std::to_string(in_size) + " samples to " +
                                                 std::to_string(out_size) + " is beyond the supported factor");
  AxisWeights axis;
  axis.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  axis.first.resize(static_cast<std::size_t>(count));
  axis.taps.resize(static_cast<std::size_t>(count));
  axis.weights.assign(static_cast<std::size_t>(count) * static_cast<std::size_t>(axis.stride), 0);
  std::vector<double> k(static_cast<std::size_t>(axis.stride));

  for (int i = 0; i < count; ++i) {
    const double center = (begin + i + 0.5) * scale;
    const int first = std::max(static_cast<int>(center - support + 0.5), 0);
    const int last = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int taps = last - first;
    double sum = 0.0;
    for (int j = 0; j < taps; ++j) {
      k[j] = filter.weight((j + first - center + 0.5) * inverse_filter_scale);
      sum += k[j];
    }
    std::int32_t* out = &axis.weights[static_cast<std::size_t>(i) * axis.stride];
    for (int j = 0; j < taps; ++j) out[j] = to_fixed_point(sum != 0.0 ? k[j] / sum : k[j]);
    axis.first[i] = first;
    axis.taps[i] = taps;
  }
  return axis;
}

// Rows [row_begin, row_end) of `input`, resampled horizontally into `out` (3 * columns bytes
// per row).
void horizontal_pass(const RgbImage& input, int row_begin, int row_end, const AxisWeights& columns, std::uint8_t* out) {
  const std::size_t in_stride = 3 * static_cast<std::size_t>(input.width);
  const std::size_t count = columns.first.size();
  for (int y = row_begin; y < row_end; ++y) {
    const std::uint8_t* row = input.pixels.data() + static_cast<std::size_t>(y) * in_stride;
    for (std::size_t x = 0; x < count; ++x, out += 3) {
      const std::int32_t* k = &columns.weights[x * columns.stride];
      const std::uint8_t* p = row + 3 * static_cast<std::size_t>(columns.first[x]);
      std::int32_t r = kRoundingBias, g = kRoundingBias, b = kRoundingBias;
      for (int t = 0, taps = columns.taps[x]; t < taps; ++t, p += 3) {
        r += p[0] * k[t];
        g += p[1] * k[t];
        b += p[2] * k[t];
      }
      out[0] = clip8(r);
      out[1] = clip8(g);
      out[2] = clip8(b);
    }
  }
}

// `source` points at input row `source_row0`; rows are `stride` bytes apart and hold
// `row_bytes` bytes of interest. Output rows are row_bytes apart.
void vertical_pass(const std::uint8_t* source, std::size_t stride, int source_row0, std::size_t row_bytes, const AxisWeights& rows,
                   std::uint8_t* out) {
  std::vector<std::int32_t> sums(row_bytes);
  for (std::size_t y = 0; y < rows.first.size(); ++y, out += row_bytes) {
    std::fill(sums.begin(), sums.end(), kRoundingBias);
    const std::int32_t* k = &rows.weights[y * rows.stride];
    const std::uint8_t* row = source + static_cast<std::size_t>(rows.first[y] - source_row0) * stride;
    for (int t = 0, taps = rows.taps[y]; t < taps; ++t, row += stride) {
      const std::int32_t weight = k[t];
      for (std::size_t i = 0; i < row_bytes; ++i) sums[i] += row[i] * weight;
    }
    for (std::size_t i = 0; i < row_bytes; ++i) out[i] = clip8(sums[i]);
  }
}

void check_request(const RgbImage& input, const ResampleRequest& request) {
  const PixelWindow& w = request.window;
  if (input.width <= 0 || input.height <= 0 ||
      input.pixels.size() != 3 * static_cast<std::size_t>(input.width) * static_cast<std::size_t>(input.height))
    throw Error(ErrorCode::kInvalidArgument, "resample: image of " + std::to_string(input.width) + " x " + std::to_string(input.height) +
                                                 " with " + std::to_string(input.pixels.size()) + " bytes is inconsistent");
  if (request.out_width <= 0 || request.out_height <= 0 || w.width <= 0 || w.height <= 0 || w.x < 0 || w.y < 0 ||
      w.x > request.out_width - w.width || w.y > request.out_height - w.height)
    throw Error(ErrorCode::kInvalidArgument, "resample: window " + std::to_string(w.width) + " x " + std::to_string(w.height) + " at (" +
                                                 std::to_string(w.x) + ", " + std::to_string(w.y) + ") does not fit in " +
                                                 std::to_string(request.out_width) + " x " + std::to_string(request.out_height));
}

}  // namespace

RgbImage pillow_resample(const RgbImage& input, const ResampleRequest& request) {
  check_request(input, request);
  const Filter filter = filter_for(request.interpolation);
  const PixelWindow& window = request.window;
  // Pillow skips a pass whose size does not change; that pass would not be the identity.
  const bool horizontal = request.out_width != input.width;
  const bool vertical = request.out_height != input.height;

  AxisWeights rows;
  int row_begin = window.y;
  int row_end = window.y + window.height;
  if (vertical) {
    rows = axis_weights(input.height, request.out_height, window.y, window.height, filter);
    row_begin = rows.input_begin();
    row_end = rows.input_end();
  }

  const std::size_t in_stride = 3 * static_cast<std::size_t>(input.width);
  const std::size_t row_bytes = 3 * static_cast<std::size_t>(window.width);
  std::vector<std::uint8_t> intermediate;
  const std::uint8_t* source =
      input.pixels.data() + static_cast<std::size_t>(row_begin) * in_stride + 3 * static_cast<std::size_t>(window.x);
  std::size_t source_stride = in_stride;
  if (horizontal) {
    const AxisWeights columns = axis_weights(input.width, request.out_width, window.x, window.width, filter);
    intermediate.resize(row_bytes * static_cast<std::size_t>(row_end - row_begin));
    horizontal_pass(input, row_begin, row_end, columns, intermediate.data());
    source = intermediate.data();
    source_stride = row_bytes;
  }

  RgbImage out;
  out.width = window.width;
  out.height = window.height;
  out.pixels.resize(row_bytes * static_cast<std::size_t>(window.height));
  if (vertical) {
    vertical_pass(source, source_stride, row_begin, row_bytes, rows, out.pixels.data());
  } else {
    for (int y = 0; y < window.height; ++y)
      std::memcpy(out.pixels.data() + static_cast<std::size_t>(y) * row_bytes, source + static_cast<std::size_t>(y) * source_stride,
                  row_bytes);
  }
  return out;
}

}  // namespace dermcds::detail
