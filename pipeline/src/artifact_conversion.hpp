// The lifecycle's use of the ONNX -> TFLite converter, kept behind this seam so that
// libdermcds_pipeline builds without the converter (the sanitizer build leaves it out).
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

namespace dermcds::pipeline {

struct TfliteConversion {
  std::filesystem::path package_dir;
  std::string precision;                  // "fp32", "fp16", "int8"
  std::filesystem::path calibration_dir;  // int8
  std::size_t calibration_limit = 0;
  std::function<void(const std::string&)> progress;
};

// Converts the package's ONNX artifact and records model_<precision>.tflite in its manifest.
// Throws kRuntimeUnavailable in a build without the converter, else the converter's errors.
void convert_package_to_tflite(const TfliteConversion& conversion);

bool converter_compiled_in();

}  // namespace dermcds::pipeline
