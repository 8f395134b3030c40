#include "logging.hpp"

#include <chrono>
#include <ctime>
#include <memory>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "dermcds/clinical/audit_log.hpp"
#include "dermcds/error.hpp"

namespace dermcds::service {

namespace {

constexpr const char* kEventLogger = "dermcds.event";

// One clock format for the log and the audit trail (dermcds_clinical).
std::string timestamp(spdlog::log_clock::time_point time) { return clinical::utc_iso8601(time); }

std::string json_string(std::string_view text) {
  // Invalid UTF-8 is replaced rather than thrown on: a log line must never fail.
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string line_start(const spdlog::details::log_msg& msg) {
  const auto level = spdlog::level::to_string_view(msg.level);
  return "{\"ts\":\"" + timestamp(msg.time) + "\",\"level\":\"" + std::string(level.data(), level.size()) + "\"";
}

// Lines from the library's plain messages.
class MessageFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string line = line_start(msg) +
                             ",\"logger\":" + json_string(std::string_view(msg.logger_name.data(), msg.logger_name.size())) +
                             ",\"msg\":" + json_string(std::string_view(msg.payload.data(), msg.payload.size())) + "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<MessageFormatter>(); }
};

// Lines from log_event, whose payload is already a serialized JSON object: the timestamp and
// level are spliced in front of its fields.
class EventFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = line_start(msg);
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (payload.size() > 2) {
      line += ',';
      line.append(payload.substr(1));
    } else {
      line += '}';
    }
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<EventFormatter>(); }
};

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, std::unique_ptr<spdlog::formatter> formatter,
                                            spdlog::level::level_enum level) {
  // Both loggers write through stderr sinks, which share spdlog's console mutex: lines from the
  // two never interleave.
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

}  // namespace

void install_json_logging(std::string_view level_name) {
  const spdlog::level::level_enum level = spdlog::level::from_str(std::string(level_name));
  // from_str answers "off" for names it does not know.
  if (level == spdlog::level::off && level_name != "off")
    throw Error(ErrorCode::kInvalidArgument,
                "log level '" + std::string(level_name) + "' is not one of trace, debug, info, warn, error, critical, off");
  spdlog::drop(kEventLogger);
  spdlog::register_logger(make_logger(kEventLogger, std::make_unique<EventFormatter>(), level));
  spdlog::set_default_logger(make_logger("dermcds", std::make_unique<MessageFormatter>(), level));
}

void log_event(spdlog::level::level_enum level, std::string_view event, const nlohmann::ordered_json& fields) {
  const auto logger = spdlog::get(kEventLogger);
  if (!logger || !logger->should_log(level)) return;
  nlohmann::ordered_json line = {{"event", event}};
  if (fields.is_object())
    for (const auto& [key, value] : fields.items()) line[key] = value;
  logger->log(level, "{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::optional<long> LogRateLimiter::admit(const std::string& key) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  // Distinct keys are bounded by what requests can make differ; past that, forget the old ones.
  if (seen_.size() > 4096) seen_.clear();
  Seen& seen = seen_[key];
  if (seen.last != std::chrono::steady_clock::time_point{} && now - seen.last < interval_) {
    ++seen.held_back;
    return std::nullopt;
  }
  const long held_back = seen.held_back;
  seen = {now, 0};
  return held_back;
}

}  // namespace dermcds::service
