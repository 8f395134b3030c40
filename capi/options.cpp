// dermcds_options_*: ClassifierOptions filled in from C. Names are checked when the classifier
// opens (Classifier::create), where every runtime and provider rule lives; here only what C
// itself can get wrong (NULL pointers, negative counts).
#include "objects.hpp"
#include "status.hpp"

using dermcds::Error;
using dermcds::ErrorCode;
using dermcds::capi::guarded;
using dermcds::capi::require;

extern "C" {

dermcds_status dermcds_options_create(dermcds_options** out) {
  if (out) *out = nullptr;
  return guarded([&] {
    require(out, "dermcds_options_create", "out");
    *out = new dermcds_options{};
  });
}

void dermcds_options_free(dermcds_options* options) { delete options; }

dermcds_status dermcds_options_set_runtime(dermcds_options* options, const char* runtime) {
  return guarded([&] {
    require(options, "dermcds_options_set_runtime", "options");
    require(runtime, "dermcds_options_set_runtime", "runtime");
    options->options.runtime = runtime;
  });
}

dermcds_status dermcds_options_set_precision(dermcds_options* options, const char* precision) {
  return guarded([&] {
    require(options, "dermcds_options_set_precision", "options");
    require(precision, "dermcds_options_set_precision", "precision");
    const std::string value = precision;
    if (value != "auto" && value != "fp32" && value != "fp16" && value != "int8")
      throw Error(ErrorCode::kInvalidArgument, "precision '" + value + "' is not one of auto, fp32, fp16, int8");
    options->options.precision = value;
  });
}

dermcds_status dermcds_options_set_provider(dermcds_options* options, const char* provider) {
  return guarded([&] {
    require(options, "dermcds_options_set_provider", "options");
    require(provider, "dermcds_options_set_provider", "provider");
    options->options.execution.provider = provider;
  });
}

dermcds_status dermcds_options_set_threads(dermcds_options* options, int32_t threads) {
  return guarded([&] {
    require(options, "dermcds_options_set_threads", "options");
    if (threads < 0)
      throw Error(ErrorCode::kInvalidArgument, "thread count must be 0 (automatic) or positive, not " + std::to_string(threads));
    options->options.execution.threads = threads;
  });
}

dermcds_status dermcds_options_set_device_id(dermcds_options* options, int32_t device_id) {
  return guarded([&] {
    require(options, "dermcds_options_set_device_id", "options");
    if (device_id < 0) throw Error(ErrorCode::kInvalidArgument, "device id must be 0 or positive, not " + std::to_string(device_id));
    options->options.execution.device_id = device_id;
  });
}

dermcds_status dermcds_options_set_provider_option(dermcds_options* options, const char* key, const char* value) {
  return guarded([&] {
    require(options, "dermcds_options_set_provider_option", "options");
    require(key, "dermcds_options_set_provider_option", "key");
    require(value, "dermcds_options_set_provider_option", "value");
    options->options.execution.provider_options[key] = value;
  });
}

dermcds_status dermcds_options_set_max_pixels(dermcds_options* options, uint64_t max_pixels) {
  return guarded([&] {
    require(options, "dermcds_options_set_max_pixels", "options");
    if (max_pixels == 0) throw Error(ErrorCode::kInvalidArgument, "the pixel limit must be positive");
    options->options.limits.max_pixels = max_pixels;
  });
}

}  // extern "C"
