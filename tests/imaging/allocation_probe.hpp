// Records the largest single allocation made through operator new while a probe is alive, so a
// test can show that a decoder refused a huge header before allocating its pixel buffer.
// Covers C++ allocations only (std::vector and friends); libjpeg and libpng allocate with malloc,
// but only after our limit check. One probe at a time; not for concurrent use.
#pragma once

#include <cstddef>

namespace dermcds::testing {

class AllocationProbe {
 public:
  AllocationProbe();
  ~AllocationProbe();
  AllocationProbe(const AllocationProbe&) = delete;
  AllocationProbe& operator=(const AllocationProbe&) = delete;

  std::size_t largest() const;
};

}  // namespace dermcds::testing
