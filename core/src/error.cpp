#include "dermcds/error.hpp"

namespace dermcds {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kUnsupportedFormat: return "unsupported_format";
    case ErrorCode::kInvalidImage: return "invalid_image";
    case ErrorCode::kImageTooLarge: return "image_too_large";
    case ErrorCode::kInvalidPackage: return "invalid_package";
    case ErrorCode::kModelMismatch: return "model_mismatch";
    case ErrorCode::kUnsupportedModel: return "unsupported_model";
    case ErrorCode::kRuntimeUnavailable: return "runtime_unavailable";
    case ErrorCode::kRuntimeFailure: return "runtime_failure";
    case ErrorCode::kIoError: return "io_error";
    case ErrorCode::kResourceExhausted: return "resource_exhausted";
    case ErrorCode::kDeadlineExceeded: return "deadline_exceeded";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace dermcds
