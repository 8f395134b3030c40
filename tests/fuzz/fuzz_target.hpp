// Shared by the fuzz targets (tests/fuzz/CMakeLists.txt). A target calls the function under test
// and catches dermcds::Error, the documented way to refuse bad input; anything else escaping
// (another exception type, a crash, a sanitizer report, a leak) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dermcds/error.hpp"

namespace dermcds::fuzz {

inline std::span<const std::uint8_t> bytes(const std::uint8_t* data, std::size_t size) { return {data, size}; }
inline std::string_view text(const std::uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

template <typename F>
void refuses_cleanly(F&& f) {
  try {
    f();
  } catch (const Error&) {
    // bad input refused with a named error: what the code promises
  }
}

}  // namespace dermcds::fuzz
