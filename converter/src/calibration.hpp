// Calibration for int8: the range of values each float activation takes on real inputs.
//
// The float model is run in TensorFlow Lite itself (its builtin kernels) with every activation
// tensor exposed as an output, over every calibration sample, twice: once for each tensor's
// minimum and maximum, once to fill a 2048-bin histogram over that span. A range is then chosen
// per tensor from the histogram by the requested method (converter.hpp, CalibrationMethod):
// for kMse the [lo, hi] minimizing the expected squared error of 8-bit quantization, clipping
// error of values outside plus rounding noise step^2 / 12 inside, searched by coordinate
// descent over lo and hi. Under kMse, per-image vectors (pooled features, gates, logits) keep
// their observed min/max (calibration.cpp says why).
#pragma once

#include <array>
#include <map>
#include <utility>
#include <vector>

#include "dermcds/converter.hpp"
#include "tflite_model.hpp"

namespace dermcds::converter {

struct TensorRange {
  float min = 0.0f;
  float max = 0.0f;
  float observed_min = 0.0f;  // before clipping by the method
  float observed_max = 0.0f;
  // The range each method would choose (indexed by CalibrationMethod), for per-tensor choice.
  std::array<std::pair<float, float>, 3> by_method{};
  // Mean of each channel (last dimension) over the calibration samples, for bias correction.
  std::vector<double> channel_mean;

  std::pair<float, float> range(CalibrationMethod method) const { return by_method[static_cast<std::size_t>(method)]; }
};

// tensor index -> range, for the model input and every float activation. Throws
// kInvalidArgument when a sample does not fit the model's input, kRuntimeFailure when TFLite
// cannot run the model.
std::map<int, TensorRange> calibrate(const TflModel& model, const CalibrationOptions& options,
                                     const std::function<void(const std::string&)>& progress);

}  // namespace dermcds::converter
