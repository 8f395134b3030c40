// The ONNX model as the converter works on it: nodes in topological order, every value's
// element type and static shape (from ONNX shape inference), constants in memory. Graph passes
// (graph_passes.hpp) rewrite it in ONNX semantics; lowering (lowering.hpp) turns it into TFLite.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <onnx/onnx_pb.h>

#include "host_tensor.hpp"

namespace dermcds::converter {

// ONNX TensorProto.DataType values the converter distinguishes.
inline constexpr int kOnnxFloat = 1;
inline constexpr int kOnnxInt64 = 7;

struct Value {
  std::string name;
  int elem_type = 0;         // ONNX TensorProto.DataType
  Shape shape;               // static; the batch dimension is fixed to 1
  bool shape_known = false;  // false where ONNX shape inference left the shape open
  std::optional<HostTensor> constant;
};

struct Node {
  std::string name;  // never empty: import names unnamed nodes "<op_type>_<index>"
  std::string op_type;
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, onnx::AttributeProto> attributes;

  // "node 'Conv_3' (Conv)": how every error message names a node.
  std::string label() const { return "node '" + name + "' (" + op_type + ")"; }
  bool has_input(std::size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
};

struct Graph {
  std::string name;
  std::int64_t opset = 0;
  std::vector<Node> nodes;  // topological order
  std::unordered_map<std::string, Value> values;
  std::vector<std::string> inputs;  // runtime inputs (initializers excluded)
  std::vector<std::string> outputs;
  // Inputs whose first dimension was symbolic in the file (a dynamic batch).
  std::vector<std::string> dynamic_batch_inputs;

  const Value& value(const std::string& name) const;
  Value& value(const std::string& name);
  bool is_constant(const std::string& name) const;
  const HostTensor& constant(const std::string& name) const;
  // Indices of the nodes that read `name`.
  std::vector<std::size_t> consumers(const std::string& name) const;
  bool is_graph_output(const std::string& name) const;
};

}  // namespace dermcds::converter
