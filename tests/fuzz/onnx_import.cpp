// The converter's ONNX import (converter/src/onnx_import.cpp): protobuf parsing, the ONNX checker,
// shape inference and our graph building.
#include "onnx_import.hpp"
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  dermcds::fuzz::refuses_cleanly([&] { (void)dermcds::converter::import_onnx(dermcds::fuzz::bytes(data, size), "fuzz.onnx"); });
  return 0;
}
