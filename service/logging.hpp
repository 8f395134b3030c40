// Structured logs: one JSON object per line on stderr.
//
//   {"ts":"2026-03-01T10:15:02.123Z","level":"info","event":"request","request_id":"9f2c...",
//    "method":"POST","route":"/v1/classify","status":200,"duration_ms":61.2,"model":"derm-effnet-b4"}
//
// Messages the library logs through spdlog (model loads, provider fallbacks) come out as
// {"ts","level","logger","msg"} lines on the same stream.
// What is never logged: image bytes, multipart file names, and the messages of errors caused by
// an image (see http_server.cpp); nothing that could identify a patient reaches the log.
// Thread safety: log_event may be called from any thread once install_json_logging has run.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/common.h>
#include <nlohmann/json.hpp>

namespace dermcds::service {

// Makes JSON lines the format of the default spdlog logger and of log_event; `level` is one of
// trace, debug, info, warn, error, critical, off. Throws kInvalidArgument for another level.
void install_json_logging(std::string_view level);

// One structured line: {"ts", "level", "event", ...fields}.
void log_event(spdlog::level::level_enum level, std::string_view event, const nlohmann::ordered_json& fields = {});

// Repeated identical errors (a 503 per request while a model is down, the same failing file)
// would bury the log: at most one line per key per interval is let through, and that line
// carries how many were held back since the last one. Thread safe.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(std::chrono::steady_clock::duration interval = std::chrono::seconds(1)) : interval_(interval) {}
  // nullopt: hold this one back. Else: write it, with this many held back before it.
  std::optional<long> admit(const std::string& key);

 private:
  struct Seen {
    std::chrono::steady_clock::time_point last{};
    long held_back = 0;
  };
  std::chrono::steady_clock::duration interval_;
  std::mutex mutex_;
  std::map<std::string, Seen> seen_;
};

}  // namespace dermcds::service
