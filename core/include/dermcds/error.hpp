// The one error vocabulary of derm-cds.
//
// Library code reports failure by throwing dermcds::Error, which carries an ErrorCode and a
// message that names the thing at fault (the file, field, node or parameter). Each code is
// mapped to a process exit status once (cli/exit_status.cpp) and to an HTTP status once
// (service/http_status.cpp); the C API maps it to dermcds_status (capi/).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace dermcds {

enum class ErrorCode {
  kInvalidArgument = 1,  // a caller's parameter is wrong: a flag, an option, a config value
  kNotFound,             // a file, model, version or artifact does not exist
  kUnsupportedFormat,    // bytes that are not an image format we decode
  kInvalidImage,         // an image that is empty, truncated or corrupt
  kImageTooLarge,        // header dimensions beyond the configured pixel limit
  kInvalidPackage,       // a model package that is malformed, tampered with or incomplete
  kModelMismatch,        // a model whose inputs or outputs do not match its manifest
  kUnsupportedModel,     // an operator or attribute the converter does not handle
  kRuntimeUnavailable,   // a runtime or execution provider not present on this machine
  kRuntimeFailure,       // the runtime failed while loading or running a model
  kIoError,              // reading or writing a file failed
  kResourceExhausted,    // a queue or capacity limit was reached
  kDeadlineExceeded,     // a time limit passed
  kInternal,             // one of our own invariants did not hold: a bug
  // Added later (values are stable; the C API and exit statuses map each one):
  kPermissionDenied,    // the operating system refused access to a file or directory
  kNoSpace,             // a write did not fit: the disk is full, or a quota or file size limit was hit
  kFailedPrecondition,  // valid, but the state forbids it: a version that may not serve (serving_rule.hpp)
};

inline constexpr ErrorCode kLastErrorCode = ErrorCode::kFailedPrecondition;

// Stable lower_snake_case name, used in JSON error bodies and logs ("invalid_image").
std::string_view to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// The one translation of operating-system errors (errno values, std::error_code of the system or
// generic category) into the vocabulary: ENOENT/ENOTDIR -> kNotFound, EACCES/EPERM/EROFS ->
// kPermissionDenied, ENOSPC/EDQUOT/EFBIG -> kNoSpace, ENOMEM -> kResourceExhausted, anything else
// kIoError. Module edges use it so that a full disk never reads as an internal error.
ErrorCode error_code_for_errno(int error) noexcept;
ErrorCode error_code_for(const std::error_code& ec) noexcept;
// `what` + ": " + the system's message, with the code above.
Error system_error(const std::error_code& ec, const std::string& what);
Error errno_error(int error, const std::string& what);

// Anything caught at a module edge as an Error: an Error as it is, std::filesystem_error and
// std::system_error by their error code, std::bad_alloc as kResourceExhausted, anything else as
// kInternal (a bug). Call it from inside a catch block only.
Error current_exception_as_error();

}  // namespace dermcds
