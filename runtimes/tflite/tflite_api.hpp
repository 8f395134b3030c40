// RAII over the TensorFlow Lite 2.9 C API, and the XNNPACK delegate declarations its package
// does not ship.
//
// Interpreter owns, in destruction order, the interpreter, its options, the delegate and the
// model (and the model bytes when built from memory): TFLite requires the delegate and the model
// data to outlive the interpreter. Errors TFLite reports through its error reporter are kept and
// included in the dermcds::Error thrown (kRuntimeFailure, kInvalidArgument).
// Thread safety: an Interpreter is used by one thread at a time; separate Interpreters are
// independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tensorflow/lite/c/c_api.h>

// ---- XNNPACK delegate (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h, not shipped) ----
//
// Where the layout comes from: TensorFlow 2.9's xnnpack_delegate.h declares
// TfLiteXNNPackDelegateOptions as { int32_t num_threads; uint32_t flags; } (the weights_cache
// pointer arrived in 2.10, and later versions add more). The library we link,
// libtensorflowlite_c.so 2.9.0 from the tfjs-tflite-node package (scripts/deps.lock), confirms it
// in its machine code: TfLiteXNNPackDelegateOptionsDefault returns the struct in one 64-bit
// register (x86_64: `xor eax,eax; ret`; arm64: `mov x0,#0; ret`) and TfLiteXNNPackDelegateCreate
// copies exactly 8 bytes from *options. The static_assert keeps our declaration at that size,
// and library_supported() refuses any library that is not 2.9.x, whose struct may differ, before
// anything is passed to it.
extern "C" {
struct DermcdsXnnpackOptions {
  std::int32_t num_threads;  // 0 or negative: no thread pool
  std::uint32_t flags;       // kXnnpackFlag* bits
};
TfLiteDelegate* TfLiteXNNPackDelegateCreate(const DermcdsXnnpackOptions* options);
void TfLiteXNNPackDelegateDelete(TfLiteDelegate* delegate);
}
static_assert(sizeof(DermcdsXnnpackOptions) == 8, "TF 2.9's TfLiteXNNPackDelegateOptions is 8 bytes");

namespace dermcds::runtimes::tflite {

// XNNPACK delegate flags (TF 2.9): accelerate signed int8 (QS8) / unsigned uint8 (QU8) operators.
// Without them XNNPACK takes only float operators and int8 models run on TFLite's own kernels.
inline constexpr std::uint32_t kXnnpackFlagQs8 = 0x1;
inline constexpr std::uint32_t kXnnpackFlagQu8 = 0x2;

// "2.9.0": TfLiteVersion() of the loaded library.
std::string version();

// Whether `version` is one whose XNNPACK options layout the declarations above reproduce: 2.9.x.
bool supported_version(std::string_view version);
// supported_version(version()): the runtime's available(). Interpreters refuse to start otherwise
// (kRuntimeUnavailable).
bool library_supported();

enum class Accelerator { kNone, kXnnpack, kNnapi };

struct InterpreterOptions {
  int threads = 0;  // 0: TFLite's default (one thread for its own kernels)
  Accelerator accelerator = Accelerator::kNone;
  std::uint32_t xnnpack_flags = 0;
  // Not owned; added after the accelerator, so its Prepare sees the execution plan the
  // accelerator left (tflite_model_runner.cpp uses it to find undelegated nodes).
  TfLiteDelegate* plan_observer = nullptr;
};

class Interpreter {
 public:
  // Throws kNotFound / kInvalidArgument (not a TFLite model) / kRuntimeFailure (TFLite refuses
  // it: unknown operator versions, bad tensors; or the accelerator fails), with TFLite's words.
  static Interpreter from_file(const std::filesystem::path& path, const InterpreterOptions& options);
  static Interpreter from_buffer(std::vector<std::uint8_t> bytes, const InterpreterOptions& options, const std::string& origin);

  Interpreter(Interpreter&&) noexcept;
  Interpreter& operator=(Interpreter&&) noexcept;
  ~Interpreter();

  int input_count() const;
  int output_count() const;
  TfLiteTensor* input(int index);
  const TfLiteTensor* output(int index) const;
  void invoke();

  // Messages TFLite reported so far (warnings included).
  const std::string& messages() const;

 private:
  struct State;
  explicit Interpreter(std::unique_ptr<State> state);
  static std::unique_ptr<State> build(std::unique_ptr<State> state, const InterpreterOptions& options, const std::string& origin);
  std::unique_ptr<State> state_;
};

// Shape of a tensor as TFLite reports it.
std::vector<std::int64_t> tensor_shape(const TfLiteTensor* tensor);
const char* type_name(TfLiteType type);

// The one rule for a float or int8 tensor interface, shared by the backend and ModelRunner so
// that what the converter measures is what the service computes: int8 values are quantized with
// the tensor's scale and zero point, rounded to nearest and clamped to [-128, 127], and
// dequantized as scale * (q - zero_point). Both handle the tensor's first `count` values; other
// element types are kInvalidArgument.
// How many values such a tensor holds: its elements for float32 and int8, 0 for any other type.
std::size_t value_count(const TfLiteTensor* tensor);
void write_values(TfLiteTensor* tensor, const float* values, std::size_t count);
void read_values(const TfLiteTensor* tensor, float* out, std::size_t count);

}  // namespace dermcds::runtimes::tflite
