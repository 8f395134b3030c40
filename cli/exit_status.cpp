#include "exit_status.hpp"

namespace dermcds::cli {

int exit_status_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return kExitUsage;
    case ErrorCode::kNotFound:
      return 3;
    case ErrorCode::kUnsupportedFormat:
    case ErrorCode::kInvalidImage:
    case ErrorCode::kImageTooLarge:
      return 4;
    case ErrorCode::kInvalidPackage:
    case ErrorCode::kModelMismatch:
    case ErrorCode::kFailedPrecondition:
      return 5;
    case ErrorCode::kUnsupportedModel:
      return 6;
    case ErrorCode::kRuntimeUnavailable:
    case ErrorCode::kRuntimeFailure:
      return 7;
    case ErrorCode::kIoError:
    case ErrorCode::kNoSpace:
      return 8;  // the name (no_space) tells which
    case ErrorCode::kPermissionDenied:
      return 10;
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kDeadlineExceeded:
      return 9;
    case ErrorCode::kInternal:
      return 70;
  }
  return 70;
}

}  // namespace dermcds::cli
