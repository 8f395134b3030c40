// The Open Inference Protocol's JSON inference request (service/inference_protocol.cpp), checked
// against a small model signature so that well-formed requests are cheap to build.
#include "fuzz_target.hpp"
#include "inference_protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dermcds;
  static const service::ModelSignature signature = [] {
    service::ModelSignature s;
    s.input_name = "image";
    s.input_shape = {-1, 3, 4, 4};
    s.output_name = "logits";
    s.classes = 8;
    for (const char* code : {"MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"}) s.labels.push_back({code, code});
    return s;
  }();
  fuzz::refuses_cleanly([&] {
    const auto document = service::parse_request_document(fuzz::text(data, size));
    (void)service::requested_runtime(document);
    (void)service::read_infer_request(document, {}, signature);  // JSON tensors: no binary part
  });
  return 0;
}
