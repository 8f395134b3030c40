// The TFLite runtime's public interface for code outside runtimes/tflite that needs to run an
// arbitrary .tflite model rather than a packaged classifier: the converter checks every file it
// writes with it (load, allocate tensors, one inference), and its tests and benchmarks run
// converted models through it. Classifiers are served through core/runtime.hpp instead.
//
// Ownership: a ModelRunner owns the model bytes, the TFLite interpreter and its delegates.
// Thread safety: one thread at a time per ModelRunner; separate runners are independent.
// Errors: dermcds::Error. A model TFLite 2.9 refuses (unknown operator or version, a kernel that
// fails to prepare, e.g. "CONCATENATION failed to prepare") is kUnsupportedModel with TFLite's
// own words, which name the operator and its node; bad bytes are kInvalidArgument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace dermcds::runtimes::tflite {

// The TensorFlow Lite library's version, "2.9.0".
std::string version();

struct RunnerOptions {
  bool xnnpack = true;        // false: TFLite's own (reference/optimized builtin) kernels only
  bool xnnpack_int8 = false;  // also hand int8 operators to XNNPACK
  int threads = 1;
};

// A node of the execution plan that no delegate took: it runs on TFLite's builtin kernels.
struct UndelegatedNode {
  int node = 0;
  int builtin_code = 0;     // TFLite's BuiltinOperator value
  std::string custom_name;  // for custom operators
};

enum class ElementType { kFloat32, kInt8, kUint8, kInt32, kInt64, kOther };

struct TensorDescription {
  std::string name;
  std::vector<std::int64_t> shape;
  ElementType type = ElementType::kOther;
  std::size_t bytes = 0;
};

class ModelRunner {
 public:
  // Loads the model, applies the delegate, allocates tensors (every kernel's prepare step).
  ModelRunner(std::vector<std::uint8_t> model, const RunnerOptions& options, const std::string& origin);
  ModelRunner(ModelRunner&&) noexcept;
  ModelRunner& operator=(ModelRunner&&) noexcept;
  ~ModelRunner();

  std::size_t input_count() const;
  std::size_t output_count() const;
  TensorDescription input(std::size_t index) const;
  TensorDescription output(std::size_t index) const;

  // Copies raw bytes into input `index` (size must match exactly).
  void set_input(std::size_t index, std::span<const std::byte> bytes);
  void set_input(std::size_t index, std::span<const float> values) { set_input(index, std::as_bytes(values)); }
  // Values into a float32 or int8 input (size must match its element count). An int8 input is
  // quantized with its own scale and zero point, exactly as the TFLite backend quantizes a served
  // image, so a tool that measures a model through this sees what the service computes.
  void set_input_values(std::size_t index, std::span<const float> values);
  // Fills every input with deterministic pseudo-random values in the input's natural range
  // (floats in [-1, 1], integers over their range): a sample for a smoke run.
  void set_sample_inputs(std::uint32_t seed);
  // Runs one inference; kRuntimeFailure with TFLite's words when a kernel fails.
  void invoke();
  std::vector<std::byte> output_bytes(std::size_t index) const;
  std::vector<float> output_floats(std::size_t index) const;  // kInvalidArgument unless float32
  // A float32 output as it is, an int8 one dequantized (the backend's rule); kInvalidArgument for
  // any other type.
  std::vector<float> output_values(std::size_t index) const;

  // Nodes left on TFLite's builtin kernels after the delegate took what it supports (all of
  // them without XNNPACK). Empty means fully delegated.
  const std::vector<UndelegatedNode>& undelegated() const;
  // The number of nodes in the model before delegation.
  int node_count() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dermcds::runtimes::tflite
