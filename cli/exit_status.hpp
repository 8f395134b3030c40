// Process exit statuses of the dermcds tool, documented in docs/cli.md.
#pragma once

#include "dermcds/error.hpp"

namespace dermcds::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitCheckFailed = 1;  // the command ran, and a check it made failed
inline constexpr int kExitUsage = 2;        // bad command line (CLI11's own parse errors too)

// The one place an ErrorCode becomes an exit status.
int exit_status_for(ErrorCode code) noexcept;

}  // namespace dermcds::cli
