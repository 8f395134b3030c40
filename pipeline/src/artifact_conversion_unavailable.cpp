// Stand-in for artifact_conversion.cpp in builds without the converter.
#include "artifact_conversion.hpp"
#include "dermcds/error.hpp"
#include "dermcds/pipeline/model_build.hpp"

namespace dermcds::pipeline {

void convert_package_to_tflite(const TfliteConversion& c) {
  throw Error(ErrorCode::kRuntimeUnavailable, "this build of dermcds has no ONNX -> TFLite converter, so no " + c.precision +
                                                  " TFLite artifact can be made (configure with DERMCDS_BUILD_CONVERTER=ON)");
}

bool converter_compiled_in() { return false; }

std::string converter_version() { return {}; }

}  // namespace dermcds::pipeline
