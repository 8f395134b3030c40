// The fp16-weights pass: large float32 constants are stored as float16 and expanded back to
// float32 by a DEQUANTIZE operator when the interpreter prepares the model (XNNPACK folds it into
// its packed weights). Arithmetic stays float32; the file shrinks to about half. The number
// conversion itself is float16.hpp's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tflite_model.hpp"

namespace dermcds::converter {

// Returns the number of constants converted (those with at least `min_elements` elements).
std::size_t store_weights_as_fp16(TflModel& model, std::int64_t min_elements);

}  // namespace dermcds::converter
