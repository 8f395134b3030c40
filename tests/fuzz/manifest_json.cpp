// manifest.json: JSON parsing, then parse_manifest's field checks (core/src/manifest.cpp).
#include <nlohmann/json.hpp>

#include "dermcds/manifest.hpp"
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto document = nlohmann::json::parse(dermcds::fuzz::text(data, size), nullptr, false);
  if (document.is_discarded()) return 0;  // not JSON: read_manifest refuses it before parse_manifest
  dermcds::fuzz::refuses_cleanly([&] { (void)dermcds::parse_manifest(document, "fuzz manifest.json"); });
  return 0;
}
