// JPEG decoding (libjpeg-turbo through core/src/jpeg_decoder.cpp), EXIF orientation included.
#include "fuzz_target.hpp"
#include "jpeg_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A small pixel limit keeps each run fast; the limit check itself is part of what is fuzzed.
  const dermcds::DecodeLimits limits{1u << 22};
  dermcds::fuzz::refuses_cleanly([&] { (void)dermcds::detail::decode_jpeg(dermcds::fuzz::bytes(data, size), limits); });
  return 0;
}
