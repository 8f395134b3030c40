// The fp16-weights pass: large float32 constants are stored as float16 and expanded back to
// float32 by a DEQUANTIZE operator when the interpreter prepares the model (XNNPACK folds it into
// its packed weights). Arithmetic stays float32; the file shrinks to about half. The number
// conversion itself is float16.hpp's; which candidates stay float32 is fp16_selection.hpp's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

#include "tflite_model.hpp"

namespace dermcds::converter {

// The constants the pass may store as float16, in tensor order: float32 filters and matrices
// (at least two dimensions above 1) with at least `min_elements` elements.
std::vector<int> fp16_candidates(const TflModel& model, std::int64_t min_elements);

// Stores every candidate except those in `keep_float32` as float16; returns how many it stored.
std::size_t store_weights_as_fp16(TflModel& model, std::int64_t min_elements, const std::set<int>& keep_float32 = {});

}  // namespace dermcds::converter
