// dermcds_classifier_* and dermcds_classify_*: a Classifier behind a C handle.
#include <cstring>
#include <limits>

#include "dermcds/model_repository.hpp"
#include "objects.hpp"
#include "status.hpp"

using dermcds::Error;
using dermcds::ErrorCode;
using dermcds::capi::guarded;
using dermcds::capi::require;

namespace {

dermcds_result* make_result(dermcds::ClassificationResult result) {
  std::string json = dermcds::to_json(result).dump();
  return new dermcds_result{std::move(result), std::move(json)};
}

// Copies `height` rows of `row_stride` bytes into a tightly packed image, after checking the
// geometry against the limits (RGB buffers never pass through the decoder that checks them).
dermcds::RgbImage copy_rgb(const uint8_t* pixels, int32_t width, int32_t height, size_t row_stride, const dermcds::DecodeLimits& limits) {
  if (width <= 0 || height <= 0)
    throw Error(ErrorCode::kInvalidImage, "RGB image of " + std::to_string(width) + "x" + std::to_string(height) + " pixels");
  const size_t row_bytes = static_cast<size_t>(width) * 3;
  if (row_stride < row_bytes)
    throw Error(ErrorCode::kInvalidArgument,
                "row stride " + std::to_string(row_stride) + " is less than 3 * width = " + std::to_string(row_bytes));
  const uint64_t pixel_count = static_cast<uint64_t>(width) * static_cast<uint64_t>(height);
  if (pixel_count > limits.max_pixels)
    throw Error(ErrorCode::kImageTooLarge, "RGB image of " + std::to_string(width) + "x" + std::to_string(height) +
                                               " pixels exceeds the limit of " + std::to_string(limits.max_pixels));
  dermcds::RgbImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(row_bytes * static_cast<size_t>(height));
  for (int32_t y = 0; y < height; ++y)
    std::memcpy(image.pixels.data() + row_bytes * static_cast<size_t>(y), pixels + row_stride * static_cast<size_t>(y), row_bytes);
  return image;
}

}  // namespace

extern "C" {

dermcds_status dermcds_classifier_open(const char* package_dir, const dermcds_options* options, dermcds_classifier** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(package_dir, "dermcds_classifier_open", "package_dir");
    require(out, "dermcds_classifier_open", "out");
    dermcds::ClassifierOptions classifier_options = options ? options->options : dermcds::ClassifierOptions{};
    classifier_options.package = dermcds::resolve_package_dir(package_dir);
    auto handle = std::make_unique<dermcds_classifier>();
    handle->classifier = dermcds::Classifier::create(classifier_options);
    handle->limits = classifier_options.limits;
    *out = handle.release();
  });
}

void dermcds_classifier_free(dermcds_classifier* classifier) { delete classifier; }

const char* dermcds_classifier_model_name(const dermcds_classifier* c) { return c ? c->classifier->manifest().name.c_str() : nullptr; }
const char* dermcds_classifier_model_version(const dermcds_classifier* c) {
  return c ? c->classifier->manifest().version.c_str() : nullptr;
}
const char* dermcds_classifier_runtime(const dermcds_classifier* c) { return c ? c->classifier->backend_info().runtime.c_str() : nullptr; }
const char* dermcds_classifier_provider(const dermcds_classifier* c) {
  return c ? c->classifier->backend_info().provider.c_str() : nullptr;
}
const char* dermcds_classifier_precision(const dermcds_classifier* c) {
  return c ? c->classifier->backend_info().precision.c_str() : nullptr;
}

dermcds_status dermcds_classify_encoded(const dermcds_classifier* classifier, const void* bytes, size_t size, dermcds_result** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(classifier, "dermcds_classify_encoded", "classifier");
    require(out, "dermcds_classify_encoded", "out");
    if (size > 0) require(bytes, "dermcds_classify_encoded", "bytes");
    const std::span encoded(static_cast<const std::uint8_t*>(bytes), size);
    *out = make_result(classifier->classifier->classify(encoded));
  });
}

dermcds_status dermcds_classify_rgb(const dermcds_classifier* classifier, const uint8_t* pixels, int32_t width, int32_t height,
                                    size_t row_stride, dermcds_result** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(classifier, "dermcds_classify_rgb", "classifier");
    require(pixels, "dermcds_classify_rgb", "pixels");
    require(out, "dermcds_classify_rgb", "out");
    *out = make_result(classifier->classifier->classify(copy_rgb(pixels, width, height, row_stride, classifier->limits)));
  });
}

}  // extern "C"
