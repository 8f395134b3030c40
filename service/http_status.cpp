#include "http_status.hpp"

namespace dermcds::service {

int http_status_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupportedFormat:  // the bytes are no image we decode; 415 is for the header
    case ErrorCode::kInvalidImage:
    case ErrorCode::kImageTooLarge:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kRuntimeUnavailable:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kNoSpace:
      return 507;  // Insufficient Storage: the server could not store what it had to
    case ErrorCode::kInvalidPackage:
    case ErrorCode::kModelMismatch:
    case ErrorCode::kUnsupportedModel:
    case ErrorCode::kRuntimeFailure:
    case ErrorCode::kIoError:
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

bool message_is_public(ErrorCode code) noexcept { return http_status_for(code) != 500; }

bool wants_retry_after(int status) noexcept { return status == 503; }

}  // namespace dermcds::service
