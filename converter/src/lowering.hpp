// Lowering: ONNX nodes (NCHW semantics) -> TFLite operators (NHWC kernels).
//
// lower_graph() walks the graph in order and hands each node to the lowering registered for its
// op_type (lower_*.cpp). A lowering reads its inputs through the LoweringContext in the layout
// its TFLite operator needs (layout.hpp), emits operators, and defines its outputs with the
// layout they come out in. An op_type without a lowering, or a lowering that meets an attribute
// or input form it does not implement, is a kUnsupportedModel error naming the node.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "graph.hpp"
#include "layout.hpp"
#include "tflite_model.hpp"

namespace dermcds::converter {

class LoweringContext {
 public:
  LoweringContext(const Graph& graph, TflModel& model) : graph_(graph), model_(model) {}

  const Graph& graph() const { return graph_; }
  TflModel& model() { return model_; }

  bool is_constant(const std::string& name) const { return graph_.is_constant(name); }
  const HostTensor& constant(const std::string& name) const { return graph_.constant(name); }
  // The ONNX shape of a value: a constant's own, or what lowering computed for an activation.
  Shape shape_of(const std::string& name) const;
  std::size_t rank_of(const std::string& name) const { return shape_of(name).size(); }
  // The layout an activation was lowered in (identity for constants).
  Perm layout_of(const std::string& name) const;

  // The TFLite tensor holding `name` in layout `perm`, converting (TRANSPOSE or RESHAPE) or, for
  // constants, materializing the permuted data on first use. Conversions are cached.
  int tensor_in_layout(const std::string& name, const Perm& perm);
  int tensor_identity(const std::string& name) { return tensor_in_layout(name, identity_perm(rank_of(name))); }
  int tensor_channels_last(const std::string& name) { return tensor_in_layout(name, channels_last_perm(rank_of(name))); }
  // The tensor in whatever layout it already has.
  int tensor_as_is(const std::string& name);

  // Creates the TFLite tensor for ONNX value `name` of `onnx_shape`, stored in layout `perm`.
  int define(const std::string& name, const Shape& onnx_shape, const Perm& perm);
  // Makes ONNX value `name` refer to an existing tensor (operators that only relabel dimensions).
  void alias(const std::string& name, int tensor, const Perm& perm, const Shape& onnx_shape);

  // Intermediate tensors and constants the lowering creates. Names derive from `base`.
  int intermediate(const std::string& base, const Shape& tflite_shape);
  int float_constant(const std::string& base, const Shape& tflite_shape, std::span<const float> values);
  int int32_vector(const std::string& base, std::span<const std::int32_t> values);
  int scalar_constant(const std::string& base, float value) { return float_constant(base, {}, std::span<const float>(&value, 1)); }

  // Emits a RESHAPE of tensor `input` to `tflite_shape`, into `output` (or a new intermediate).
  int reshape(int input, const Shape& tflite_shape, const std::string& base, int output = -1);
  int transpose(int input, const Perm& tflite_perm, const std::string& base, int output = -1);

  Shape tflite_shape(int tensor) const;
  std::string unique_name(const std::string& base);

  // Records that `name` deliberately differs in shape from ONNX shape inference (ONNX Runtime's
  // semantics followed where ONNX 1.12's inference disagrees); values computed from it are not
  // checked against inference either.
  void mark_shape_divergence(const std::string& name) { diverged_.insert(name); }
  bool shape_diverged(const std::string& name) const { return diverged_.count(name) != 0; }

 private:
  struct Lowered {
    int tensor = -1;
    Perm perm;
    Shape onnx_shape;
  };

  const Graph& graph_;
  TflModel& model_;
  std::unordered_map<std::string, Lowered> lowered_;
  std::map<std::pair<std::string, Perm>, int> layout_cache_;
  std::unordered_map<std::string, int> name_counts_;
  std::set<std::string> diverged_;
};

using LowerFn = std::function<void(LoweringContext&, const Node&)>;
using LoweringTable = std::unordered_map<std::string, LowerFn>;

// Each lower_*.cpp registers the op_types it implements.
void register_conv_lowerings(LoweringTable& table);
void register_pool_lowerings(LoweringTable& table);
void register_elementwise_lowerings(LoweringTable& table);
void register_linear_lowerings(LoweringTable& table);
void register_shape_lowerings(LoweringTable& table);
void register_reduce_lowerings(LoweringTable& table);

// The op_types the converter can lower, sorted (for error messages and documentation).
std::vector<std::string> supported_operators();

struct LoweringOptions {
  // Keep rank-4 graph inputs in NCHW instead of NHWC (tests of layout-sensitive lowerings).
  bool channels_first_inputs = false;
};

TflModel lower_graph(const Graph& graph, const LoweringOptions& options = {});

// Helpers shared by the lowerings.
std::int32_t to_int32(std::int64_t value, const Node& node, const std::string& what);
std::vector<std::int32_t> to_int32(const Shape& shape);
[[noreturn]] void unsupported(const Node& node, const std::string& why);
[[noreturn]] void malformed(const Node& node, const std::string& why);
// The input must be a constant; otherwise unsupported(), naming which input.
const HostTensor& require_constant(LoweringContext& ctx, const Node& node, std::size_t input, const std::string& what);

}  // namespace dermcds::converter
