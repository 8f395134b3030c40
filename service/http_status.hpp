// The one mapping from dermcds::ErrorCode to HTTP status codes (docs/service.md, "Errors").
#pragma once

#include "dermcds/error.hpp"

namespace dermcds::service {

int http_status_for(ErrorCode code) noexcept;

// Whether an error's own message may go back to the caller. Errors a caller caused (a bad image,
// an unknown model, a full queue) say what is wrong; failures inside the server (a package, a
// runtime, a file, a bug) can name paths and internals, so the caller gets a generic sentence
// with the request id and only the log keeps the detail.
bool message_is_public(ErrorCode code) noexcept;

// Statuses that tell a client to come back later carry a Retry-After header.
bool wants_retry_after(int status) noexcept;

}  // namespace dermcds::service
