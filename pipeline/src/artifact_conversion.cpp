#include "artifact_conversion.hpp"

#include "dermcds/converter.hpp"
#include "dermcds/pipeline/model_build.hpp"

namespace dermcds::pipeline {

void convert_package_to_tflite(const TfliteConversion& c) {
  converter::PackageConversion request;
  request.package_dir = c.package_dir;
  request.precision = converter::parse_precision(c.precision);
  request.calibration_dir = c.calibration_dir;
  request.calibration_limit = c.calibration_limit;
  request.progress = c.progress;
  converter::convert_package(request);
}

bool converter_compiled_in() { return true; }

std::string converter_version() { return DERMCDS_CONVERTER_VERSION; }

}  // namespace dermcds::pipeline
