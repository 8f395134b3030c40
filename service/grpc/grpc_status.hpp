// dermcds::Error -> gRPC status, the gRPC edge's counterpart of http_status.hpp.
#pragma once

#include <grpcpp/support/status.h>

#include "dermcds/error.hpp"

namespace dermcds::service {

// INVALID_ARGUMENT for bad input, NOT_FOUND, UNAVAILABLE (no version ready, runtime missing),
// RESOURCE_EXHAUSTED (full queue), DEADLINE_EXCEEDED; INTERNAL for our own failures, whose
// message (internals) is not sent, as for HTTP's 500.
grpc::StatusCode grpc_code_for(ErrorCode code) noexcept;
grpc::Status grpc_status_for(const Error& error);

}  // namespace dermcds::service
