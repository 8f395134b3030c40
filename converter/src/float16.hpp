// IEEE 754 binary16 <-> binary32, bit-exact and independent of compiler support for _Float16.
#pragma once

#include <cstdint>

namespace dermcds::converter {

// Round to nearest, ties to even; overflow becomes infinity, NaN stays NaN.
std::uint16_t float_to_half(float value);
float half_to_float(std::uint16_t bits);

}  // namespace dermcds::converter
