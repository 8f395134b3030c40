#include "dermcds/error.hpp"

#include <cerrno>
#include <filesystem>
#include <new>

namespace dermcds {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kUnsupportedFormat:
      return "unsupported_format";
    case ErrorCode::kInvalidImage:
      return "invalid_image";
    case ErrorCode::kImageTooLarge:
      return "image_too_large";
    case ErrorCode::kInvalidPackage:
      return "invalid_package";
    case ErrorCode::kModelMismatch:
      return "model_mismatch";
    case ErrorCode::kUnsupportedModel:
      return "unsupported_model";
    case ErrorCode::kRuntimeUnavailable:
      return "runtime_unavailable";
    case ErrorCode::kRuntimeFailure:
      return "runtime_failure";
    case ErrorCode::kIoError:
      return "io_error";
    case ErrorCode::kResourceExhausted:
      return "resource_exhausted";
    case ErrorCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kNoSpace:
      return "no_space";
    case ErrorCode::kFailedPrecondition:
      return "failed_precondition";
  }
  return "unknown";
}

ErrorCode error_code_for_errno(int error) noexcept {
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return ErrorCode::kNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
      return ErrorCode::kPermissionDenied;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return ErrorCode::kNoSpace;
    case ENOMEM:
      return ErrorCode::kResourceExhausted;
    default:
      return ErrorCode::kIoError;
  }
}

ErrorCode error_code_for(const std::error_code& ec) noexcept {
  if (ec.category() == std::system_category() || ec.category() == std::generic_category()) return error_code_for_errno(ec.value());
  return ErrorCode::kIoError;
}

Error system_error(const std::error_code& ec, const std::string& what) { return Error(error_code_for(ec), what + ": " + ec.message()); }

Error errno_error(int error, const std::string& what) { return system_error(std::error_code(error, std::generic_category()), what); }

Error current_exception_as_error() {
  try {
    throw;
  } catch (const Error& e) {
    return e;
  } catch (const std::filesystem::filesystem_error& e) {
    // Its what() already names the paths and the system's message.
    return Error(error_code_for(e.code()), e.what());
  } catch (const std::system_error& e) {
    return Error(error_code_for(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInternal, e.what());
  } catch (...) {
    return Error(ErrorCode::kInternal, "an exception of unknown type");
  }
}

}  // namespace dermcds
