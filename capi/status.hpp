// Statuses and the per-thread last error of the C API. dermcds::ErrorCode maps to dermcds_status
// here and nowhere else (to_status); names come from dermcds::to_string(ErrorCode), so the C
// API, the CLI and the service name every error the same way.
#pragma once

#include <new>
#include <string>

#include "dermcds/dermcds.h"
#include "dermcds/error.hpp"

namespace dermcds::capi {

dermcds_status to_status(ErrorCode code) noexcept;

// Records the message as the calling thread's last error and returns `status`.
dermcds_status fail(dermcds_status status, const std::string& message) noexcept;

// Installs derm-cds's logger on first use (logging.cpp).
void ensure_logging() noexcept;

// Runs `body`, turning every exception into a status and a last-error message: nothing thrown in
// the core crosses the C boundary.
template <class Body>
dermcds_status guarded(Body&& body) noexcept {
  ensure_logging();
  try {
    body();
    return DERMCDS_OK;
  } catch (const Error& e) {
    return fail(to_status(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(DERMCDS_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(DERMCDS_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(DERMCDS_INTERNAL, "internal error: unknown exception");
  }
}

}  // namespace dermcds::capi
