// Timestamps for reports and lifecycle records.
#pragma once

#include <string>

namespace dermcds::pipeline {

// The current time in UTC, ISO 8601 to the second: "2026-11-24T15:00:00Z".
std::string utc_timestamp();

}  // namespace dermcds::pipeline
