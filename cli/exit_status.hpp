// Process exit statuses of the dermcds tool, documented in docs/cli.md.
#pragma once

#include <stdexcept>

#include "dermcds/error.hpp"

namespace dermcds::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitCheckFailed = 1;  // the command ran, and a check it made failed
inline constexpr int kExitUsage = 2;        // bad command line (CLI11's own parse errors too)

// Thrown by a command that ran to the end but whose check failed (a parity bound broken): main()
// prints the message and exits with kExitCheckFailed.
class CheckFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The one place an ErrorCode becomes an exit status.
int exit_status_for(ErrorCode code) noexcept;

}  // namespace dermcds::cli
