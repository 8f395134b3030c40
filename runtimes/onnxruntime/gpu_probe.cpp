#include "gpu_probe.hpp"

#include <dlfcn.h>

#include <array>
#include <cstdint>
#include <utility>

namespace dermcds::runtimes::onnxruntime {

namespace {

// A dlopen handle. Libraries are opened with RTLD_NODELETE, so closing only drops our reference.
class SharedLibrary {
 public:
  static SharedLibrary open(const std::string& name, std::string* error) {
    ::dlerror();
    void* handle = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!handle && error) {
      const char* why = ::dlerror();
      *error = why ? why : name + ": cannot be opened";
    }
    return SharedLibrary(handle);
  }
  ~SharedLibrary() {
    if (handle_) ::dlclose(handle_);
  }
  SharedLibrary(SharedLibrary&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;
  SharedLibrary& operator=(SharedLibrary&&) = delete;

  explicit operator bool() const { return handle_ != nullptr; }
  template <class Function>
  Function symbol(const char* name) const {
    return reinterpret_cast<Function>(::dlsym(handle_, name));
  }

 private:
  explicit SharedLibrary(void* handle) : handle_(handle) {}
  void* handle_ = nullptr;
};

// The CUDA driver API's C ABI (cuda.h), the few entry points and constants needed here.
using CUresult = int;
using CUdevice = int;
constexpr CUresult kCudaSuccess = 0;
constexpr int kComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kComputeCapabilityMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

struct CudaDriver {
  CUresult (*init)(unsigned int) = nullptr;
  CUresult (*device_count)(int*) = nullptr;
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*device_name)(char*, int, CUdevice) = nullptr;
  CUresult (*device_attribute)(int*, int, CUdevice) = nullptr;
  CUresult (*error_name)(CUresult, const char**) = nullptr;  // optional

  std::string describe(const char* call, CUresult result) const {
    const char* name = nullptr;
    if (error_name && error_name(result, &name) == kCudaSuccess && name)
      return std::string(call) + " failed with " + name + " (" + std::to_string(result) + ")";
    return std::string(call) + " failed with CUDA error " + std::to_string(result);
  }
};

}  // namespace

std::string LibraryVersion::text() const { return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch); }

LibraryVersion decode_tensorrt_version(int encoded) {
  if (encoded >= 100000) return {encoded / 10000, encoded / 100 % 100, encoded % 100};
  return {encoded / 1000, encoded / 100 % 10, encoded % 100};
}

ProbeResult<GpuIdentity> probe_cuda_device(int device_id, const std::string& driver_library) {
  std::string error;
  const SharedLibrary library = SharedLibrary::open(driver_library, &error);
  if (!library) return {std::nullopt, "no CUDA driver: " + error};

  CudaDriver cuda;
  cuda.init = library.symbol<decltype(cuda.init)>("cuInit");
  cuda.device_count = library.symbol<decltype(cuda.device_count)>("cuDeviceGetCount");
  cuda.device_get = library.symbol<decltype(cuda.device_get)>("cuDeviceGet");
  cuda.device_name = library.symbol<decltype(cuda.device_name)>("cuDeviceGetName");
  cuda.device_attribute = library.symbol<decltype(cuda.device_attribute)>("cuDeviceGetAttribute");
  cuda.error_name = library.symbol<decltype(cuda.error_name)>("cuGetErrorName");
  if (!cuda.init || !cuda.device_count || !cuda.device_get || !cuda.device_name || !cuda.device_attribute)
    return {std::nullopt, driver_library + " lacks the CUDA driver API (cuInit, cuDeviceGet, ...)"};

  if (const CUresult r = cuda.init(0); r != kCudaSuccess) return {std::nullopt, cuda.describe("cuInit", r)};
  int count = 0;
  if (const CUresult r = cuda.device_count(&count); r != kCudaSuccess) return {std::nullopt, cuda.describe("cuDeviceGetCount", r)};
  if (device_id < 0 || device_id >= count)
    return {std::nullopt, "no CUDA device " + std::to_string(device_id) + " (the driver reports " + std::to_string(count) + ")"};

  CUdevice device = 0;
  if (const CUresult r = cuda.device_get(&device, device_id); r != kCudaSuccess) return {std::nullopt, cuda.describe("cuDeviceGet", r)};
  std::array<char, 256> name{};
  if (const CUresult r = cuda.device_name(name.data(), static_cast<int>(name.size()), device); r != kCudaSuccess)
    return {std::nullopt, cuda.describe("cuDeviceGetName", r)};
  name.back() = '\0';
  GpuIdentity gpu{name.data(), 0, 0};
  if (const CUresult r = cuda.device_attribute(&gpu.compute_major, kComputeCapabilityMajor, device); r != kCudaSuccess)
    return {std::nullopt, cuda.describe("cuDeviceGetAttribute", r)};
  if (const CUresult r = cuda.device_attribute(&gpu.compute_minor, kComputeCapabilityMinor, device); r != kCudaSuccess)
    return {std::nullopt, cuda.describe("cuDeviceGetAttribute", r)};
  return {gpu, ""};
}

std::vector<std::string> default_tensorrt_libraries() { return {"libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so"}; }

ProbeResult<LibraryVersion> probe_tensorrt_version(const std::vector<std::string>& libraries) {
  std::string tried;
  for (const std::string& name : libraries) {
    std::string error;
    const SharedLibrary library = SharedLibrary::open(name, &error);
    if (!library) {
      tried += (tried.empty() ? "" : "; ") + error;
      continue;
    }
    using VersionFunction = std::int32_t (*)();
    const auto version = library.symbol<VersionFunction>("getInferLibVersion");
    if (!version) return {std::nullopt, name + " has no getInferLibVersion(): not a TensorRT library"};
    const auto major = library.symbol<VersionFunction>("getInferLibMajorVersion");
    const auto minor = library.symbol<VersionFunction>("getInferLibMinorVersion");
    const auto patch = library.symbol<VersionFunction>("getInferLibPatchVersion");
    if (major && minor && patch) return {LibraryVersion{major(), minor(), patch()}, ""};
    return {decode_tensorrt_version(version()), ""};
  }
  return {std::nullopt, "no TensorRT library: " + tried};
}

}  // namespace dermcds::runtimes::onnxruntime
