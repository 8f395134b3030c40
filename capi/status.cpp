#include "status.hpp"

namespace dermcds::capi {

namespace {
thread_local std::string last_error;
}

dermcds_status to_status(ErrorCode code) noexcept {
  switch (code) {  // no default: the compiler names any ErrorCode added without a status
    case ErrorCode::kInvalidArgument:
      return DERMCDS_INVALID_ARGUMENT;
    case ErrorCode::kNotFound:
      return DERMCDS_NOT_FOUND;
    case ErrorCode::kUnsupportedFormat:
      return DERMCDS_UNSUPPORTED_FORMAT;
    case ErrorCode::kInvalidImage:
      return DERMCDS_INVALID_IMAGE;
    case ErrorCode::kImageTooLarge:
      return DERMCDS_IMAGE_TOO_LARGE;
    case ErrorCode::kInvalidPackage:
      return DERMCDS_INVALID_PACKAGE;
    case ErrorCode::kModelMismatch:
      return DERMCDS_MODEL_MISMATCH;
    case ErrorCode::kUnsupportedModel:
      return DERMCDS_UNSUPPORTED_MODEL;
    case ErrorCode::kRuntimeUnavailable:
      return DERMCDS_RUNTIME_UNAVAILABLE;
    case ErrorCode::kRuntimeFailure:
      return DERMCDS_RUNTIME_FAILURE;
    case ErrorCode::kIoError:
      return DERMCDS_IO_ERROR;
    case ErrorCode::kResourceExhausted:
      return DERMCDS_RESOURCE_EXHAUSTED;
    case ErrorCode::kDeadlineExceeded:
      return DERMCDS_DEADLINE_EXCEEDED;
    case ErrorCode::kInternal:
      return DERMCDS_INTERNAL;
    case ErrorCode::kPermissionDenied:
      return DERMCDS_PERMISSION_DENIED;
    case ErrorCode::kNoSpace:
      return DERMCDS_NO_SPACE;
    case ErrorCode::kFailedPrecondition:
      return DERMCDS_FAILED_PRECONDITION;
  }
  return DERMCDS_INTERNAL;
}

dermcds_status fail(dermcds_status status, const std::string& message) noexcept {
  try {
    last_error = message;
  } catch (...) {
    last_error.clear();  // no memory for the message; the status still tells
  }
  return status;
}

}  // namespace dermcds::capi

using dermcds::ErrorCode;

extern "C" {

const char* dermcds_status_name(dermcds_status status) {
  if (status == DERMCDS_OK) return "ok";
  if (status == DERMCDS_OUT_OF_MEMORY) return "out_of_memory";
  // The inverse of to_status, so names can never disagree with the mapping.
  for (int code = static_cast<int>(ErrorCode::kInvalidArgument); code <= static_cast<int>(dermcds::kLastErrorCode); ++code)
    if (dermcds::capi::to_status(static_cast<ErrorCode>(code)) == status) return dermcds::to_string(static_cast<ErrorCode>(code)).data();
  return "unknown";
}

const char* dermcds_last_error_message(void) { return dermcds::capi::last_error.c_str(); }

}  // extern "C"
