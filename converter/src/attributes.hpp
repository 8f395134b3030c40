// Typed access to an ONNX node's attributes, with the ONNX defaults supplied by the caller.
//
// Every lowering reads a node's attributes through one Attributes object and finishes with
// check_all_read(): an attribute the lowering did not ask for is one whose meaning it does not
// implement, so it is an error naming the node, not something to ignore.
// Errors: kUnsupportedModel for unknown attributes, kInvalidArgument for attributes of the wrong
// type (a malformed model).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "graph.hpp"

namespace dermcds::converter {

class Attributes {
 public:
  explicit Attributes(const Node& node) : node_(node) {}

  bool has(const std::string& name) const;
  std::int64_t get_int(const std::string& name, std::int64_t fallback);
  float get_float(const std::string& name, float fallback);
  std::string get_string(const std::string& name, const std::string& fallback);
  std::vector<std::int64_t> get_ints(const std::string& name, const std::vector<std::int64_t>& fallback = {});
  std::vector<float> get_floats(const std::string& name, const std::vector<float>& fallback = {});
  std::optional<std::int64_t> find_int(const std::string& name);
  std::optional<std::vector<std::int64_t>> find_ints(const std::string& name);
  std::optional<HostTensor> find_tensor(const std::string& name);
  // Marks an attribute as understood without reading it (e.g. one that only restates the shape
  // of an input, like Conv's kernel_shape, after it was checked).
  void accept(const std::string& name) { read_.insert(name); }

  void check_all_read() const;

 private:
  const onnx::AttributeProto* lookup(const std::string& name, onnx::AttributeProto::AttributeType type);

  const Node& node_;
  std::set<std::string> read_;
};

// Converts an ONNX TensorProto held inline (Constant values, initializers) into a HostTensor.
// Throws kUnsupportedModel for external data and element types we cannot hold.
HostTensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& what);

}  // namespace dermcds::converter
