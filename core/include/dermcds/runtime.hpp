// The runtime interface: every inference runtime (ONNX Runtime, TensorFlow Lite, ...) is one
// InferenceBackend implementation in its own folder under runtimes/, described by one
// RuntimeDescriptor. Nothing outside runtimes/ knows which runtimes exist: what differs between
// them (providers, which artifact `auto` prefers on which machine, input layout, protocol
// platform name) is read from the descriptors that compiled_runtimes() lists.
//
// Ownership: a backend owns its runtime session and every handle under it; destroying the
// backend releases them. Backends never keep pointers to the request's memory after return.
// Thread safety: run() is NOT required to be safe to call concurrently; callers (Classifier)
// serialize it. info() and input_layout() are safe at any time.
// Errors: create and run throw dermcds::Error (kRuntimeUnavailable, kRuntimeFailure,
// kModelMismatch, kInvalidArgument).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dermcds/tensor.hpp"

namespace dermcds {

// How to execute; the meaning of `provider` belongs to each runtime: "auto" (the runtime's best
// available) or one of its descriptor's `providers`.
struct ExecutionOptions {
  std::string provider = "auto";
  int threads = 0;  // intra-op threads; 0 lets the runtime choose
  int device_id = 0;
  // Provider-specific settings passed through from configuration, e.g. "trt_fp16" = "1",
  // "trt_engine_cache_dir" = "/var/cache/dermcds/trt". Unknown keys are an error.
  std::map<std::string, std::string> provider_options;
};

// What a backend actually runs with, reported in every result.
struct BackendInfo {
  std::string runtime;          // "onnxruntime"
  std::string runtime_version;  // "1.30.0"
  std::string provider;         // the provider that actually executes: "cpu", "cuda", "xnnpack"
  std::string precision;        // of the artifact: "fp32", "fp16", "int8"
  // One entry per provider that was asked for (or preferred) but could not be used, and why.
  std::vector<std::string> fallbacks;
};

struct BackendRequest {
  std::filesystem::path model_file;  // already verified against the manifest's sha256
  std::string precision;             // as recorded in the manifest
  std::string input_name;            // the manifest's tensor names
  std::string output_name;
  // The model's second output, its out-of-distribution score [N,1] (manifest safety.ood.output,
  // docs/safety.md); empty for a package without the guard.
  std::string ood_output_name;
  int input_size = 0;   // square image side the model expects
  int num_classes = 0;  // width of the logits output
  ExecutionOptions options;
};

// Everything one inference returns.
struct InferenceOutputs {
  Tensor logits;     // [N, classes]
  Tensor ood_score;  // [N, 1]; empty (no shape) when the request named no ood_output_name
};

class InferenceBackend {
 public:
  virtual ~InferenceBackend() = default;
  InferenceBackend() = default;
  InferenceBackend(const InferenceBackend&) = delete;
  InferenceBackend& operator=(const InferenceBackend&) = delete;

  virtual const BackendInfo& info() const = 0;
  virtual TensorLayout input_layout() const = 0;
  // Largest batch one run() accepts; 0 means no limit (dynamic batch dimension).
  virtual int max_batch() const { return 0; }

  // `images` is a batch [N,3,S,S] or [N,S,S,3] in input_layout(); returns logits [N, classes].
  virtual Tensor run(const Tensor& images) = 0;
  // run() plus the guard output. Backends that can read a second output override this; the
  // default suits a model without one.
  virtual InferenceOutputs run_outputs(const Tensor& images) { return {run(images), {}}; }
};

// The kind of machine `auto` chooses an artifact for (this_machine()).
enum class MachineKind {
  kServer,     // x86-64, or any machine with an NVIDIA GPU (discrete, or a Jetson's)
  kMobileCpu,  // an ARM CPU without a GPU: phones and small boards
};

// What this machine is, probed once: aarch64 without /dev/nvidia0 or /dev/nvhost-ctrl-gpu is
// kMobileCpu, everything else kServer.
MachineKind this_machine();
// Whether an NVIDIA GPU's device node exists here (probed once): where none does, a runtime's
// "auto" provider can only execute on the CPU.
bool this_machine_has_nvidia_gpu();

// Ranks RuntimeDescriptor::preference returns. They are compared across runtimes, so each
// runtime places its precisions in these bands rather than counting from 0:
inline constexpr int kPreferNative = 10;    // the artifact built for this kind of machine
inline constexpr int kPreferSecond = 20;    // the same runtime at another precision
inline constexpr int kPreferPortable = 30;  // another runtime that also runs well here
inline constexpr int kPreferLast = 50;      // runs, but nothing else was there

// One runtime compiled into this build: everything the rest of derm-cds may know about it.
struct RuntimeDescriptor {
  std::string_view name;      // "onnxruntime": the manifest's artifact "runtime"
  std::string_view platform;  // Open Inference Protocol model "platform": "onnxruntime_onnx"
  TensorLayout layout;        // input layout of this runtime's artifacts and of run()
  // Execution providers this build can ask for, in the order the parity validator tries them
  // (all of them, also those that may fall back on this machine); "auto" is always accepted too.
  std::span<const std::string_view> providers;
  // Those of `providers` that run on an accelerator device: they take ExecutionOptions' device_id
  // and the device's provider_options (the parity validator passes its GPU settings only to them).
  std::span<const std::string_view> device_providers = {};
  // How much `auto` wants an artifact of this runtime at `precision` on a machine of this kind:
  // lower is preferred (the kPrefer* bands); ties go to the artifact listed first in the manifest.
  int (*preference)(MachineKind machine, std::string_view precision);
  // Whether the runtime's library works on this machine (not whether a GPU is present).
  bool (*available)();
  std::string (*version)();
  std::unique_ptr<InferenceBackend> (*create)(const BackendRequest& request);
};

// The runtimes compiled into this build, by name. Defined by the registry CMake generates from
// the folders under runtimes/ (runtimes/CMakeLists.txt).
std::span<const RuntimeDescriptor* const> compiled_runtimes();

// nullptr when no runtime of that name is compiled in.
const RuntimeDescriptor* find_runtime(std::string_view name);

}  // namespace dermcds
