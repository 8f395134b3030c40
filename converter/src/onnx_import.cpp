#include "onnx_import.hpp"

#include <climits>
#include <map>
#include <set>

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include "attributes.hpp"
#include "dermcds/error.hpp"

namespace dermcds::converter {

namespace {

onnx::ModelProto parse_model(std::span<const std::uint8_t> bytes, const std::string& origin) {
  if (bytes.empty()) throw Error(ErrorCode::kInvalidArgument, origin + ": the file is empty, not an ONNX model");
  if (bytes.size() > static_cast<std::size_t>(INT_MAX))
    throw Error(ErrorCode::kUnsupportedModel, origin + ": larger than 2 GiB, which a single ONNX protobuf cannot be");
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(ErrorCode::kInvalidArgument, origin + ": not a valid ONNX model (the protobuf does not parse: truncated or corrupt file)");
  if (!model.has_graph() || model.graph().node_size() == 0)
    throw Error(ErrorCode::kInvalidArgument, origin + ": not an ONNX model with a graph (no nodes; truncated or not ONNX)");
  return model;
}

std::int64_t check_opsets(const onnx::ModelProto& model, const std::string& origin) {
  std::int64_t opset = -1;
  for (const auto& import : model.opset_import())
    if (import.domain().empty() || import.domain() == "ai.onnx") opset = import.version();
  if (opset < 0) throw Error(ErrorCode::kInvalidArgument, origin + ": the model imports no version of the default ONNX operator set");
  if (opset < kMinOpset || opset > kMaxOpset)
    throw Error(ErrorCode::kUnsupportedModel, origin + ": opset " + std::to_string(opset) + " is outside the supported range " +
                                                  std::to_string(kMinOpset) + "-" + std::to_string(kMaxOpset) +
                                                  "; re-export with opset_version in that range");
  for (int i = 0; i < model.graph().node_size(); ++i) {
    const auto& node = model.graph().node(i);
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      throw Error(ErrorCode::kUnsupportedModel, origin + ": node '" + node.name() + "' (" + node.op_type() + ") is from operator domain '" +
                                                    node.domain() + "', which the converter does not support");
  }
  return opset;
}

void check_no_external_data(const onnx::ModelProto& model, const std::string& origin) {
  for (const auto& init : model.graph().initializer())
    if (init.data_location() == onnx::TensorProto::EXTERNAL || init.external_data_size() > 0)
      throw Error(ErrorCode::kUnsupportedModel,
                  origin + ": initializer '" + init.name() +
                      "' keeps its data in an external file; save the model with its weights inside the .onnx file");
}

// Fixes a symbolic batch dimension to 1; any other symbolic dimension is an error, because
// TFLite tensors (and our layout decisions) need static shapes.
void fix_input_shapes(onnx::ModelProto& model, Graph& graph, const std::string& origin) {
  std::set<std::string> initializers;
  for (const auto& init : model.graph().initializer()) initializers.insert(init.name());
  for (auto& input : *model.mutable_graph()->mutable_input()) {
    if (initializers.count(input.name())) continue;
    if (!input.type().has_tensor_type() || !input.type().tensor_type().has_shape())
      throw Error(ErrorCode::kUnsupportedModel, origin + ": input '" + input.name() + "' has no tensor shape");
    auto* shape = input.mutable_type()->mutable_tensor_type()->mutable_shape();
    for (int d = 0; d < shape->dim_size(); ++d) {
      auto* dim = shape->mutable_dim(d);
      if (dim->has_dim_value() && dim->dim_value() > 0) continue;
      if (d != 0)
        throw Error(ErrorCode::kUnsupportedModel, origin + ": input '" + input.name() + "' has a dynamic dimension at axis " +
                                                      std::to_string(d) +
                                                      (dim->has_dim_param() ? " ('" + dim->dim_param() + "')" : std::string()) +
                                                      "; only the batch dimension may be dynamic: export with a fixed image size");
      dim->set_dim_value(1);
      graph.dynamic_batch_inputs.push_back(input.name());
    }
  }
}

const std::set<std::string> kConvolutions = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"};
const std::set<std::string> kPools = {"MaxPool", "AveragePool", "LpPool", "MaxRoiPool"};

std::string node_label(const onnx::NodeProto& node, int index, const std::string& origin) {
  return origin + ": node " + (node.name().empty() ? "#" + std::to_string(index) : "'" + node.name() + "'") + " (" + node.op_type() + ")";
}

// ONNX infers shapes inside control-flow bodies (If, Loop, Scan) and model-local functions too,
// where the checks below cannot see. The converter lowers neither (a classifier's graph is
// straight-line), so both are refused before inference ever runs on them.
void check_straight_line(const onnx::ModelProto& model, const std::string& origin) {
  if (model.functions_size() > 0)
    throw Error(ErrorCode::kUnsupportedModel,
                origin + ": the model defines local function '" + model.functions(0).name() +
                    "'; the converter supports only plain graphs: export without export_modules_as_functions");
  const onnx::GraphProto& graph = model.graph();
  for (int index = 0; index < graph.node_size(); ++index)
    for (const auto& a : graph.node(index).attribute())
      if (a.has_g() || a.graphs_size() > 0)
        throw Error(ErrorCode::kUnsupportedModel, node_label(graph.node(index), index, origin) + ": attribute '" + a.name() +
                                                      "' is a subgraph; the converter supports no control flow (If, Loop, Scan)");
}

// ONNX's own shape inference for convolutions and pools (onnx::convPoolShapeInference in
// Debian's libonnx) indexes `pads`, `strides` and `dilations` by the kernel's spatial rank
// without checking their lengths, and crashed the converter on a fuzzed model (weights of rank 5
// with 4 pads: tests/fuzz/regressions/onnx_import). So their lengths are checked here first, as
// the operators' specifications define them: `pads` 2 per spatial axis, the others 1 per axis.
void check_conv_pool_attributes(const onnx::GraphProto& graph, const std::string& origin) {
  std::map<std::string, int> rank;  // known ranks: graph inputs, initializers, Constant nodes
  for (const auto& input : graph.input())
    if (input.type().has_tensor_type() && input.type().tensor_type().has_shape())
      rank[input.name()] = input.type().tensor_type().shape().dim_size();
  for (const auto& init : graph.initializer()) rank[init.name()] = init.dims_size();
  for (int index = 0; index < graph.node_size(); ++index) {
    const onnx::NodeProto& node = graph.node(index);
    if (node.op_type() == "Constant" && node.output_size() == 1)  // weights may come from one
      for (const auto& a : node.attribute())
        if (a.name() == "value" && a.has_t()) rank[node.output(0)] = a.t().dims_size();
    const bool conv = kConvolutions.count(node.op_type()) > 0;
    if (!conv && !kPools.count(node.op_type())) continue;
    const std::string what = node_label(node, index, origin);
    // The same inference divides by each stride: a fuzzed Conv with strides [0, 2] stopped the
    // converter with SIGFPE (tests/fuzz/regressions/onnx_import). Strides, dilations and kernel
    // sizes are at least 1 by the operators' specifications.
    for (const auto& a : node.attribute()) {
      if (a.name() != "strides" && a.name() != "dilations" && a.name() != "kernel_shape") continue;
      for (const std::int64_t v : a.ints())
        if (v < 1)
          throw Error(ErrorCode::kInvalidArgument,
                      what + ": " + a.name() + " holds " + std::to_string(v) + "; every value must be at least 1");
    }
    const auto rank_of = [&](int input) {
      if (node.input_size() <= input) return -1;
      const auto r = rank.find(node.input(input));
      return r == rank.end() ? -1 : r->second;
    };
    int spatial = -1;
    const int weight_input = node.op_type() == "QLinearConv" ? 3 : 1;
    if (conv && rank_of(weight_input) >= 0) {
      if (rank_of(weight_input) < 3)
        throw Error(ErrorCode::kInvalidArgument, what + " has weights of rank " + std::to_string(rank_of(weight_input)) +
                                                     "; a convolution's weights have rank 3 or more");
      spatial = rank_of(weight_input) - 2;
    }
    for (const auto& a : node.attribute())
      if (a.name() == "kernel_shape") {
        if (spatial >= 0 && a.ints_size() != spatial)
          throw Error(ErrorCode::kInvalidArgument, what + ": kernel_shape has " + std::to_string(a.ints_size()) + " values for " +
                                                       std::to_string(spatial) + " spatial axes of its weights");
        spatial = a.ints_size();
      }
    if (spatial < 0) continue;  // nothing to check against: ONNX's inference refuses it cleanly
    if (rank_of(0) >= 0 && rank_of(0) != spatial + 2)
      throw Error(ErrorCode::kInvalidArgument, what + ": input of rank " + std::to_string(rank_of(0)) + " for " + std::to_string(spatial) +
                                                   " spatial axes (rank " + std::to_string(spatial + 2) + " expected)");
    for (const auto& a : node.attribute()) {
      const bool pads = a.name() == "pads";
      if (!pads && a.name() != "strides" && a.name() != "dilations" && a.name() != "output_padding") continue;
      const int expected = pads ? 2 * spatial : spatial;
      if (a.ints_size() != expected)
        throw Error(ErrorCode::kInvalidArgument, what + ": " + a.name() + " has " + std::to_string(a.ints_size()) + " values, " +
                                                     std::to_string(expected) + " expected for " + std::to_string(spatial) +
                                                     " spatial axes");
    }
  }
}

bool read_type(const onnx::TypeProto& type, Value& value) {
  if (!type.has_tensor_type()) return false;
  value.elem_type = type.tensor_type().elem_type();
  if (!type.tensor_type().has_shape()) return true;
  Shape shape;
  for (const auto& dim : type.tensor_type().shape().dim()) {
    if (!dim.has_dim_value()) return true;  // unknown: lowering computes it
    shape.push_back(dim.dim_value());
  }
  value.shape = std::move(shape);
  value.shape_known = true;
  return true;
}

HostTensor constant_node_value(const Node& node) {
  Attributes attributes(node);
  std::optional<HostTensor> value = attributes.find_tensor("value");
  if (!value) {
    if (auto f = attributes.get_floats("value_floats"); attributes.has("value_floats"))
      value = HostTensor::from_floats({static_cast<std::int64_t>(f.size())}, f);
    else if (attributes.has("value_float"))
      value = HostTensor::scalar(attributes.get_float("value_float", 0.0f));
    else if (attributes.has("value_ints")) {
      auto v = attributes.get_ints("value_ints");
      value = HostTensor::from_ints({static_cast<std::int64_t>(v.size())}, v);
    } else if (attributes.has("value_int"))
      value = HostTensor::from_ints({}, {attributes.get_int("value_int", 0)});
  }
  attributes.check_all_read();  // value_string, sparse_value: not something a vision model needs
  if (!value) throw Error(ErrorCode::kInvalidArgument, node.label() + " has no value");
  return *value;
}

}  // namespace

Graph import_onnx(std::span<const std::uint8_t> bytes, const std::string& origin) {
  onnx::ModelProto model = parse_model(bytes, origin);
  Graph graph;
  graph.opset = check_opsets(model, origin);
  check_no_external_data(model, origin);
  fix_input_shapes(model, graph, origin);
  check_straight_line(model, origin);
  check_conv_pool_attributes(model.graph(), origin);
  try {
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*error_mode=*/1, /*data_prop=*/true));
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, origin + ": ONNX shape inference fails: " + e.what());
  }
  // After inference, which also fills in output shapes a writer left out (the checker insists
  // on them).
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, origin + ": the ONNX checker rejects the model: " + e.what());
  }

  const onnx::GraphProto& g = model.graph();
  graph.name = g.name();
  for (const auto& init : g.initializer()) {
    Value v;
    v.name = init.name();
    v.elem_type = init.data_type();
    v.constant = tensor_from_proto(init, origin + ": initializer '" + init.name() + "'");
    v.shape = v.constant->shape;
    v.shape_known = true;
    graph.values[v.name] = std::move(v);
  }
  auto declare = [&](const onnx::ValueInfoProto& info) {
    Value& v = graph.values[info.name()];
    if (v.constant) return;
    v.name = info.name();
    read_type(info.type(), v);
  };
  for (const auto& input : g.input()) {
    if (graph.values.count(input.name()) && graph.values[input.name()].constant) continue;  // initializer with a declared input
    declare(input);
    if (graph.values[input.name()].elem_type != kOnnxFloat)
      throw Error(ErrorCode::kUnsupportedModel, origin + ": input '" + input.name() + "' is not float32");
    graph.inputs.push_back(input.name());
  }
  for (const auto& info : g.value_info()) declare(info);
  for (const auto& output : g.output()) {
    declare(output);
    graph.outputs.push_back(output.name());
  }
  if (graph.inputs.empty()) throw Error(ErrorCode::kUnsupportedModel, origin + ": the model has no runtime input");

  for (int i = 0; i < g.node_size(); ++i) {
    const auto& proto = g.node(i);
    Node node;
    node.op_type = proto.op_type();
    node.name = proto.name().empty() ? proto.op_type() + "_" + std::to_string(i) : proto.name();
    node.inputs.assign(proto.input().begin(), proto.input().end());
    node.outputs.assign(proto.output().begin(), proto.output().end());
    for (const auto& attribute : proto.attribute()) node.attributes[attribute.name()] = attribute;
    for (const std::string& input : node.inputs)
      if (!input.empty() && !graph.values.count(input)) graph.values[input].name = input;  // defined by an earlier node without value_info
    for (const std::string& output : node.outputs) {
      if (output.empty()) continue;
      Value& v = graph.values[output];
      v.name = output;
    }
    if (node.op_type == "Constant") {
      Value& v = graph.values[node.outputs.at(0)];
      v.constant = constant_node_value(node);
      v.elem_type = v.constant->is_float() ? kOnnxFloat : kOnnxInt64;
      v.shape = v.constant->shape;
      v.shape_known = true;
      continue;
    }
    graph.nodes.push_back(std::move(node));
  }
  return graph;
}

}  // namespace dermcds::converter
