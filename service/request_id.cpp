#include "request_id.hpp"

#include <algorithm>
#include <cstdint>
#include <random>

namespace dermcds::service {

namespace {

bool is_plausible_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

std::string random_id() {
  // One generator per thread, seeded from the OS, so ids are unpredictable across restarts and
  // request threads never contend for a lock.
  thread_local std::mt19937_64 generator{[] {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ device();
  }()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t bits = generator();
    for (int i = 0; i < 16; ++i, bits >>= 4) id[static_cast<std::size_t>(half * 16 + i)] = kHex[bits & 0xf];
  }
  return id;
}

}  // namespace

std::string make_request_id(std::string_view offered) { return is_plausible_id(offered) ? std::string(offered) : random_id(); }

}  // namespace dermcds::service
