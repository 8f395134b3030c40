#include "artifact_conversion.hpp"

#include "dermcds/converter.hpp"
#include "dermcds/pipeline/model_build.hpp"

namespace dermcds::pipeline {

void convert_package_to_tflite(const ArtifactConversion& c) {
  converter::PackageConversion request;
  request.package_dir = c.package_dir;
  request.precision = converter::parse_precision(c.precision);
  request.calibration_dir = c.calibration_dir;
  request.calibration_limit = c.calibration_limit;
  request.progress = c.progress;
  converter::convert_package(request);
}

void quantize_package_to_onnx_int8(const ArtifactConversion& c) {
  converter::PackageConversion request;
  request.package_dir = c.package_dir;
  request.precision = converter::Precision::kInt8;
  request.calibration_dir = c.calibration_dir;
  request.calibration_limit = c.calibration_limit;
  request.progress = c.progress;
  converter::quantize_package_onnx_int8(request);
}

std::size_t onnx_int8_min_calibration_images() { return converter::kMinOnnxInt8CalibrationImages; }

bool converter_compiled_in() { return true; }

std::string converter_version() { return DERMCDS_CONVERTER_VERSION; }

}  // namespace dermcds::pipeline
