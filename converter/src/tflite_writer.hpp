// Serializing a TflModel into a .tflite flatbuffer (schema v3, identifier "TFL3").
#pragma once

#include <cstdint>
#include <vector>

#include "tflite_model.hpp"

namespace dermcds::converter {

// Checks the model's internal consistency (tensor indices, every activation written once before
// it is read) and serializes it. Throws kInternal when a check fails: that is a converter bug.
std::vector<std::uint8_t> serialize_tflite(const TflModel& model);

// Removes tensors no operator, input or output refers to, renumbering the rest.
void remove_unused_tensors(TflModel& model);

}  // namespace dermcds::converter
