#include "grpc_status.hpp"

#include "http_status.hpp"

namespace dermcds::service {

grpc::StatusCode grpc_code_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kUnsupportedFormat:
    case ErrorCode::kInvalidImage:
    case ErrorCode::kImageTooLarge:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kRuntimeUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case ErrorCode::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    // The serving rule: the version exists but may not serve (HTTP 409).
    case ErrorCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    // A full disk or quota (HTTP 507): gRPC's code for "the file system is out of space".
    case ErrorCode::kNoSpace:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kInvalidPackage:
    case ErrorCode::kModelMismatch:
    case ErrorCode::kUnsupportedModel:
    case ErrorCode::kRuntimeFailure:
    case ErrorCode::kIoError:
    case ErrorCode::kPermissionDenied:  // the server's own files: not the caller's permission
    case ErrorCode::kInternal:
      return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

grpc::Status grpc_status_for(const Error& error) {
  // One rule for which messages may reach a client, shared with HTTP (http_status.hpp).
  if (!message_is_public(error.code())) return {grpc::StatusCode::INTERNAL, "internal server error"};
  return {grpc_code_for(error.code()), error.what()};
}

}  // namespace dermcds::service
