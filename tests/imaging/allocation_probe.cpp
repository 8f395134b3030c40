#include "allocation_probe.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {

std::atomic<bool> probing{false};
std::atomic<std::size_t> largest_allocation{0};

void* allocate(std::size_t size) {
  if (probing.load(std::memory_order_relaxed)) {
    std::size_t seen = largest_allocation.load(std::memory_order_relaxed);
    while (size > seen && !largest_allocation.compare_exchange_weak(seen, size, std::memory_order_relaxed)) {
    }
  }
  return std::malloc(size == 0 ? 1 : size);
}

}  // namespace

// Replacements of the global allocation functions for this test binary. All of them are
// replaced together, new with malloc and delete with free, so that a sanitizer runtime's own
// versions never see a pointer from the other family.
void* operator new(std::size_t size) {
  if (void* p = allocate(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace dermcds::testing {

AllocationProbe::AllocationProbe() {
  largest_allocation.store(0);
  probing.store(true);
}

AllocationProbe::~AllocationProbe() { probing.store(false); }

std::size_t AllocationProbe::largest() const { return largest_allocation.load(); }

}  // namespace dermcds::testing
