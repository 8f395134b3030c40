#include "dermcds/tensor.hpp"

namespace dermcds {

std::string_view to_string(TensorLayout layout) noexcept {
  switch (layout) {
    case TensorLayout::kNCHW:
      return "NCHW";
    case TensorLayout::kNHWC:
      return "NHWC";
  }
  return "unknown";
}

}  // namespace dermcds
