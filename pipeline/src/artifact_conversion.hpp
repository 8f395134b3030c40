// The lifecycle's use of the converter (ONNX -> TFLite, ONNX -> ONNX int8), kept behind this seam so that
// libdermcds_pipeline builds without the converter (the sanitizer build leaves it out).
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

namespace dermcds::pipeline {

// One conversion of a package's ONNX artifact: to TFLite, or to ONNX int8.
struct ArtifactConversion {
  std::filesystem::path package_dir;
  std::string precision;                  // TFLite: "fp32", "fp16", "int8"
  std::filesystem::path calibration_dir;  // int8 and TFLite fp16
  std::size_t calibration_limit = 0;
  std::function<void(const std::string&)> progress;
};

// Converts the package's ONNX artifact and records model_<precision>.tflite in its manifest.
// Throws kRuntimeUnavailable in a build without the converter, else the converter's errors.
void convert_package_to_tflite(const ArtifactConversion& conversion);

// Quantizes the package's ONNX fp32 artifact into ONNX int8 (QDQ, model_int8.onnx) on the
// calibration images and records it in the manifest (docs/converter.md, "ONNX int8 (QDQ)").
// `conversion.precision` is ignored. Errors as convert_package_to_tflite.
void quantize_package_to_onnx_int8(const ArtifactConversion& conversion);

// The fewest calibration images the ONNX int8 quantizer accepts (the converter's rule, asked here
// so that a build refuses a small set before it exports or trains anything).
std::size_t onnx_int8_min_calibration_images();

bool converter_compiled_in();

}  // namespace dermcds::pipeline
