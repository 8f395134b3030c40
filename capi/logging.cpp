// derm-cds logs through spdlog's default logger. A library must not write to an app's stdout, so
// on first use the C API installs a logger whose one sink hands each message to the app's
// callback, or to stderr when there is none, at warning level unless the app says otherwise.
#include <cstdio>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "status.hpp"

namespace dermcds::capi {

namespace {

dermcds_log_level to_c(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return DERMCDS_LOG_DEBUG;
    case spdlog::level::info:
      return DERMCDS_LOG_INFO;
    case spdlog::level::warn:
      return DERMCDS_LOG_WARNING;
    case spdlog::level::err:
    case spdlog::level::critical:
      return DERMCDS_LOG_ERROR;
    case spdlog::level::off:
    case spdlog::level::n_levels:
      break;
  }
  return DERMCDS_LOG_OFF;
}

spdlog::level::level_enum to_spdlog(dermcds_log_level level) {
  switch (level) {
    case DERMCDS_LOG_DEBUG:
      return spdlog::level::debug;
    case DERMCDS_LOG_INFO:
      return spdlog::level::info;
    case DERMCDS_LOG_WARNING:
      return spdlog::level::warn;
    case DERMCDS_LOG_ERROR:
      return spdlog::level::err;
    case DERMCDS_LOG_OFF:
      return spdlog::level::off;
  }
  return spdlog::level::warn;
}

// base_sink serializes sink_it_ with its mutex, so the callback is never entered twice at once.
class AppSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_callback(dermcds_log_callback callback, void* user_data) {
    const std::lock_guard lock(mutex_);
    callback_ = callback;
    user_data_ = user_data;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    const std::string text(message.payload.data(), message.payload.size());
    if (callback_) {
      callback_(to_c(message.level), text.c_str(), user_data_);
    } else {
      std::fprintf(stderr, "dermcds: %s: %s\n", spdlog::level::to_string_view(message.level).data(), text.c_str());
    }
  }
  void flush_() override { std::fflush(stderr); }

 private:
  dermcds_log_callback callback_ = nullptr;
  void* user_data_ = nullptr;
};

std::shared_ptr<AppSink>& app_sink() {
  static std::shared_ptr<AppSink> sink;
  return sink;
}

}  // namespace

void ensure_logging() noexcept {
  static std::once_flag once;
  try {
    std::call_once(once, [] {
      app_sink() = std::make_shared<AppSink>();
      auto logger = std::make_shared<spdlog::logger>("dermcds", app_sink());
      logger->set_level(spdlog::level::warn);
      spdlog::set_default_logger(std::move(logger));
    });
  } catch (...) {
    // Without memory for a logger the previous default stays; classification is unaffected.
  }
}

}  // namespace dermcds::capi

extern "C" {

void dermcds_set_log_level(dermcds_log_level level) {
  dermcds::capi::ensure_logging();
  spdlog::set_level(dermcds::capi::to_spdlog(level));
}

void dermcds_set_log_callback(dermcds_log_callback callback, void* user_data) {
  dermcds::capi::ensure_logging();
  if (const auto& sink = dermcds::capi::app_sink()) sink->set_callback(callback, user_data);
}

}  // extern "C"
