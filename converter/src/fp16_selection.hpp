// Which weights an fp16 model keeps float32 (docs/converter.md, "fp16"). float16 rounds every
// weight by up to 2^-11 of its value; through a network near a decision boundary that moves a
// probability past the requirement on some checkpoints and not on others, so the choice is
// measured on the calibration samples in TensorFlow Lite, never fixed in a list.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "dermcds/converter.hpp"
#include "tflite_model.hpp"

namespace dermcds::converter {

struct Fp16Selection {
  std::set<int> float32_tensors;  // indices into the model's tensors
  double all_rounded_max_abs_diff = 0;
  double chosen_max_abs_diff = 0;
  bool goal_met = false;
};

// `model`: the float32 model, before store_weights_as_fp16; `samples`: NHWC model inputs (at
// least one). Candidates are kept float32 smallest first (the small early filters and the head
// are the ones whose rounding moves the answers most, bench/fp16_sensitivity.py), in growing
// steps up to options.max_float32_fraction of the candidates' elements, until the largest
// probability difference is within options.max_abs_diff. When no step reaches it, the step that
// came closest is chosen and goal_met is false.
Fp16Selection choose_float32_weights(const TflModel& model, std::int64_t min_elements, const std::vector<Tensor>& samples,
                                     const Fp16Options& options, const std::function<void(const std::string&)>& progress);

}  // namespace dermcds::converter
