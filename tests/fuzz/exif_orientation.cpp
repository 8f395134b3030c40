// The three places an orientation is read from (core/src/exif_orientation.hpp). None of them
// may throw: malformed metadata is "no orientation".
#include "exif_orientation.hpp"
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dermcds;
  const auto check = [](std::optional<int> orientation) {
    // The header's promise: never negative. A LONG tag may hold any value up to INT_MAX (the
    // check once said <= 65535, which a LONG of 0x00060008 broke: regressions/exif_orientation).
    if (orientation && *orientation < 0) __builtin_trap();
  };
  check(detail::exif_orientation(fuzz::bytes(data, size)));
  check(detail::raw_profile_exif_orientation(fuzz::text(data, size)));
  check(detail::xmp_orientation(fuzz::text(data, size)));
  return 0;
}
