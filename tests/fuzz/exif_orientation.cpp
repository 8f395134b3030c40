// The three places an orientation is read from (core/src/exif_orientation.hpp). None of them
// may throw: malformed metadata is "no orientation".
#include "exif_orientation.hpp"
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dermcds;
  const auto check = [](std::optional<int> orientation) {
    if (orientation && (*orientation < 0 || *orientation > 65535)) __builtin_trap();
  };
  check(detail::exif_orientation(fuzz::bytes(data, size)));
  check(detail::raw_profile_exif_orientation(fuzz::text(data, size)));
  check(detail::xmp_orientation(fuzz::text(data, size)));
  return 0;
}
