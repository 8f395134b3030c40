// A parity policy ("policy.parity" object) laid over the defaults (pipeline/src/parity_policy.cpp),
// then written back out.
#include <nlohmann/json.hpp>

#include "dermcds/pipeline/parity_policy.hpp"
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto document = nlohmann::json::parse(dermcds::fuzz::text(data, size), nullptr, false);
  if (document.is_discarded()) return 0;
  dermcds::fuzz::refuses_cleanly([&] {
    auto policy = dermcds::pipeline::ParityPolicy::defaults();
    policy.overlay(document, "fuzz policy", dermcds::ErrorCode::kInvalidArgument);
    (void)policy.to_json().dump();
  });
  return 0;
}
