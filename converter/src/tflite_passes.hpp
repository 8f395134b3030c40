// Clean-ups on the lowered TFLite model:
//  - RELU / RELU6 / RELU_N1_TO_1 after an operator with a fused_activation_function slot (conv,
//    fully connected, add, sub, mul, pools) become that slot: one kernel instead of two, and for
//    int8 one requantization instead of two; after a CONCATENATION (whose TFLite 2.9 kernel takes
//    no fused activation) it moves into the operators producing the concatenated parts, or stays
//    its own operator;
//  - chains of RESHAPEs collapse into one, and RESHAPEs that change nothing disappear;
//  - operators whose outputs nothing reads are removed, then unused tensors.
#pragma once

#include <cstddef>

#include "tflite_model.hpp"

namespace dermcds::converter {

struct TflPassReport {
  std::size_t fused_activations = 0;
  std::size_t removed_reshapes = 0;
  std::size_t removed_dead = 0;
};

TflPassReport optimize_tflite(TflModel& model);

}  // namespace dermcds::converter
