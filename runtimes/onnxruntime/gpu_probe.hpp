// Which GPU and which TensorRT this process would use, found without linking CUDA or TensorRT:
// the CUDA driver (libcuda.so.1) and libnvinfer are opened with dlopen, and only when a TensorRT
// engine cache needs its key. Machines and builds without them are unaffected.
//
// Both libraries stay loaded once opened (RTLD_NODELETE): ONNX Runtime's TensorRT provider loads
// them anyway, and unloading an initialised CUDA driver is not something to do casually.
// Errors: none thrown; a probe that fails says why in `error` (library missing, no device, ...).
// Thread safety: reentrant (the CUDA driver API is thread-safe).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace dermcds::runtimes::onnxruntime {

struct GpuIdentity {
  std::string name;  // as the driver reports it: "NVIDIA GeForce RTX 4090", "Orin"
  int compute_major = 0;
  int compute_minor = 0;
};

struct LibraryVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string text() const;  // "10.3.0"
};

template <class T>
struct ProbeResult {
  std::optional<T> value;
  std::string error;  // set when value is empty
};

inline constexpr std::string_view kCudaDriverLibrary = "libcuda.so.1";
// TensorRT 10 first, then 8 (JetPack 5), then the unversioned development name.
std::vector<std::string> default_tensorrt_libraries();

ProbeResult<GpuIdentity> probe_cuda_device(int device_id, const std::string& driver_library);

// The first of `libraries` that loads, asked for its version (getInferLibVersion and, where the
// library has them, getInferLib{Major,Minor,Patch}Version).
ProbeResult<LibraryVersion> probe_tensorrt_version(const std::vector<std::string>& libraries);

// getInferLibVersion()'s single integer: major*1000 + minor*100 + patch up to TensorRT 9,
// (major*100 + minor)*100 + patch from TensorRT 10.
LibraryVersion decode_tensorrt_version(int encoded);

}  // namespace dermcds::runtimes::onnxruntime
