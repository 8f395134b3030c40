// Stand-in for artifact_conversion.cpp in builds without the converter.
#include "artifact_conversion.hpp"
#include "dermcds/error.hpp"
#include "dermcds/pipeline/model_build.hpp"

namespace dermcds::pipeline {

void convert_package_to_tflite(const ArtifactConversion& c) {
  throw Error(ErrorCode::kRuntimeUnavailable, "this build of dermcds has no ONNX -> TFLite converter, so no " + c.precision +
                                                  " TFLite artifact can be made (configure with DERMCDS_BUILD_CONVERTER=ON)");
}

void quantize_package_to_onnx_int8(const ArtifactConversion&) {
  throw Error(ErrorCode::kRuntimeUnavailable,
              "this build of dermcds has no converter, so no ONNX int8 artifact can be made (configure with DERMCDS_BUILD_CONVERTER=ON)");
}

std::size_t onnx_int8_min_calibration_images() { return 0; }

bool converter_compiled_in() { return false; }

std::string converter_version() { return {}; }

}  // namespace dermcds::pipeline
