// What the C API's opaque handles are, and the helpers every entry point shares.
#pragma once

#include <memory>
#include <string>

#include "dermcds/classifier.hpp"
#include "dermcds/dermcds.h"
#include "dermcds/error.hpp"
#include "dermcds/result.hpp"

struct dermcds_options {
  dermcds::ClassifierOptions options;
};

struct dermcds_classifier {
  std::unique_ptr<dermcds::Classifier> classifier;
  dermcds::DecodeLimits limits;  // also applied to RGB buffers, which are never decoded
};

// Immutable once made: threads may read it concurrently.
struct dermcds_result {
  dermcds::ClassificationResult result;
  std::string json;
};

namespace dermcds::capi {

// Throws kInvalidArgument naming the function and parameter when `pointer` is NULL.
inline void require(const void* pointer, const char* function, const char* parameter) {
  if (!pointer) throw Error(ErrorCode::kInvalidArgument, std::string(function) + ": " + parameter + " is NULL");
}

}  // namespace dermcds::capi
