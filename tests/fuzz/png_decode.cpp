// PNG decoding (libpng through core/src/png_decoder.cpp), eXIf/text-chunk orientation included.
#include "fuzz_target.hpp"
#include "png_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const dermcds::DecodeLimits limits{1u << 22};
  dermcds::fuzz::refuses_cleanly([&] { (void)dermcds::detail::decode_png(dermcds::fuzz::bytes(data, size), limits); });
  return 0;
}
