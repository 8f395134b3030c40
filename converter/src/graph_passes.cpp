#include "graph_passes.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "attributes.hpp"
#include "constant_folding.hpp"

namespace dermcds::converter {

namespace {

void replace_uses(Graph& graph, const std::string& from, const std::string& to) {
  for (Node& node : graph.nodes)
    for (std::string& input : node.inputs)
      if (input == from) input = to;
}

int producer_of(const Graph& graph, const std::string& value) {
  for (std::size_t i = 0; i < graph.nodes.size(); ++i)
    for (const std::string& out : graph.nodes[i].outputs)
      if (out == value) return static_cast<int>(i);
  return -1;
}

bool output_used(const Graph& graph, const std::string& value) {
  return !value.empty() && (graph.is_graph_output(value) || !graph.consumers(value).empty());
}

void erase_marked(Graph& graph, const std::vector<bool>& remove) {
  std::vector<Node> kept;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i)
    if (!remove[i]) kept.push_back(std::move(graph.nodes[i]));
  graph.nodes = std::move(kept);
}

std::size_t fold_constants(Graph& graph) {
  std::vector<bool> remove(graph.nodes.size(), false);
  std::size_t folded = 0;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    std::optional<std::vector<HostTensor>> outputs = try_fold(graph, node);
    if (!outputs) continue;
    for (std::size_t o = 0; o < node.outputs.size() && o < outputs->size(); ++o) {
      if (node.outputs[o].empty()) continue;
      Value& v = graph.value(node.outputs[o]);
      v.constant = std::move((*outputs)[o]);
      v.shape = v.constant->shape;
      v.shape_known = true;
      v.elem_type = v.constant->is_float() ? kOnnxFloat : kOnnxInt64;
    }
    remove[i] = true;
    ++folded;
  }
  erase_marked(graph, remove);
  return folded;
}

bool is_inference_pass_through(const Graph& graph, const Node& node) {
  if (node.op_type == "Identity") return true;
  if (node.op_type != "Dropout") return false;
  if (node.outputs.size() > 1 && output_used(graph, node.outputs[1])) return false;
  if (node.has_input(2)) {
    if (!graph.is_constant(node.inputs[2])) return false;
    const HostTensor& training = graph.constant(node.inputs[2]);
    if (training.size() != 1 || training.as_int(0) != 0) return false;
  }
  return true;
}

std::size_t remove_pass_through(Graph& graph) {
  std::size_t removed = 0;
  for (std::size_t i = 0; i < graph.nodes.size();) {
    const Node& node = graph.nodes[i];
    if (!is_inference_pass_through(graph, node) || node.inputs.empty() || node.outputs.empty()) {
      ++i;
      continue;
    }
    const std::string in = node.inputs[0], out = node.outputs[0];
    if (graph.is_graph_output(out)) {
      // Let the producer of `in` write `out` directly, when `in` is just an intermediate.
      const int p = producer_of(graph, in);
      if (p < 0 || graph.is_graph_output(in)) {
        ++i;
        continue;
      }
      for (std::string& o : graph.nodes[static_cast<std::size_t>(p)].outputs)
        if (o == in) o = out;
      replace_uses(graph, in, out);
    } else {
      replace_uses(graph, out, in);
    }
    graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    ++removed;
  }
  return removed;
}

std::size_t fold_batch_norms(Graph& graph) {
  std::vector<bool> remove(graph.nodes.size(), false);
  std::size_t folded = 0;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& bn = graph.nodes[i];
    if (bn.op_type != "BatchNormalization" || bn.inputs.size() < 5) continue;
    if (bn.attributes.count("training_mode") && bn.attributes.at("training_mode").i() != 0) continue;
    // An attribute the fold does not know is left to the lowering, which refuses it by name.
    if (std::any_of(bn.attributes.begin(), bn.attributes.end(),
                    [](const auto& a) { return a.first != "epsilon" && a.first != "momentum" && a.first != "training_mode"; }))
      continue;
    bool extra_outputs_used = false;
    for (std::size_t o = 1; o < bn.outputs.size(); ++o) extra_outputs_used = extra_outputs_used || output_used(graph, bn.outputs[o]);
    if (extra_outputs_used) continue;
    if (!std::all_of(bn.inputs.begin() + 1, bn.inputs.begin() + 5, [&](const std::string& n) { return graph.is_constant(n); })) continue;
    const std::string& x = bn.inputs[0];
    const int p = producer_of(graph, x);
    if (p < 0 || graph.is_graph_output(x) || graph.consumers(x).size() != 1) continue;
    Node& conv = graph.nodes[static_cast<std::size_t>(p)];
    if (conv.op_type != "Conv" || conv.inputs.size() < 2 || !graph.is_constant(conv.inputs[1])) continue;
    if (conv.has_input(2) && !graph.is_constant(conv.inputs[2])) continue;
    const HostTensor& w = graph.constant(conv.inputs[1]);
    if (!w.is_float() || w.shape.empty()) continue;
    const std::int64_t outputs = w.shape[0];
    const std::vector<float> scale = graph.constant(bn.inputs[1]).to_floats(), bias = graph.constant(bn.inputs[2]).to_floats(),
                             mean = graph.constant(bn.inputs[3]).to_floats(), var = graph.constant(bn.inputs[4]).to_floats();
    if (static_cast<std::int64_t>(scale.size()) != outputs || bias.size() != scale.size() || mean.size() != scale.size() ||
        var.size() != scale.size())
      continue;
    const float epsilon = bn.attributes.count("epsilon") ? bn.attributes.at("epsilon").f() : 1e-5f;
    std::vector<float> conv_bias(static_cast<std::size_t>(outputs), 0.0f);
    if (conv.has_input(2)) conv_bias = graph.constant(conv.inputs[2]).to_floats();

    HostTensor new_w = w;
    const std::int64_t per_output = w.size() / outputs;
    std::vector<float> new_b(static_cast<std::size_t>(outputs));
    for (std::int64_t o = 0; o < outputs; ++o) {
      const auto c = static_cast<std::size_t>(o);
      const float k = scale[c] / std::sqrt(var[c] + epsilon);
      for (std::int64_t j = 0; j < per_output; ++j) new_w.floats[static_cast<std::size_t>(o * per_output + j)] *= k;
      new_b[c] = (conv_bias[c] - mean[c]) * k + bias[c];
    }
    const std::string w_name = conv.name + "_bn_folded_weight", b_name = conv.name + "_bn_folded_bias";
    graph.values[w_name] = Value{w_name, kOnnxFloat, new_w.shape, true, new_w};
    graph.values[b_name] = Value{b_name, kOnnxFloat, {outputs}, true, HostTensor::from_floats({outputs}, new_b)};
    conv.inputs.resize(3);
    conv.inputs[1] = w_name;
    conv.inputs[2] = b_name;
    conv.outputs[0] = bn.outputs[0];
    remove[i] = true;
    ++folded;
  }
  erase_marked(graph, remove);
  return folded;
}

bool near(float a, float b) { return std::fabs(a - b) < 1e-6f; }

std::size_t fuse_hard_swish(Graph& graph) {
  std::vector<bool> remove(graph.nodes.size(), false);
  std::size_t fused = 0;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& mul = graph.nodes[i];
    if (mul.op_type != "Mul" || mul.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& h = mul.inputs[static_cast<std::size_t>(side)];
      const std::string& x = mul.inputs[static_cast<std::size_t>(1 - side)];
      const int p = producer_of(graph, h);
      if (p < 0 || remove[static_cast<std::size_t>(p)]) continue;
      const Node& hs = graph.nodes[static_cast<std::size_t>(p)];
      if (hs.op_type != "HardSigmoid" || hs.inputs.at(0) != x || graph.consumers(h).size() != 1 || graph.is_graph_output(h)) continue;
      const float alpha = hs.attributes.count("alpha") ? hs.attributes.at("alpha").f() : 0.2f;
      const float beta = hs.attributes.count("beta") ? hs.attributes.at("beta").f() : 0.5f;
      if (!near(alpha, 1.0f / 6.0f) || !near(beta, 0.5f)) continue;
      mul.op_type = "HardSwish";
      mul.inputs = {x};
      mul.attributes.clear();
      remove[static_cast<std::size_t>(p)] = true;
      ++fused;
      break;
    }
  }
  erase_marked(graph, remove);
  return fused;
}

// The one consumer of `value` if it is `op_type` and `value` is nothing else's (nor an output).
int sole_consumer(const Graph& graph, const std::string& value, const char* op_type) {
  const std::vector<std::size_t> users = graph.consumers(value);
  if (users.size() != 1 || graph.is_graph_output(value) || graph.nodes[users[0]].op_type != op_type) return -1;
  return static_cast<int>(users[0]);
}

// The other input of binary `node` when one of its inputs is `value`; "" otherwise.
std::string other_input(const Node& node, const std::string& value) {
  if (node.inputs.size() != 2) return "";
  if (node.inputs[0] == value) return node.inputs[1];
  if (node.inputs[1] == value) return node.inputs[0];
  return "";
}

bool is_scalar_constant(const Graph& graph, const std::string& name, float expected, float tolerance) {
  if (name.empty() || !graph.is_constant(name)) return false;
  const HostTensor& c = graph.constant(name);
  return c.is_float() && c.size() == 1 && std::fabs(c.to_floats()[0] - expected) <= tolerance;
}

// x * 0.5 * (1 + Erf(x / sqrt(2))), as torch.onnx writes nn.GELU() (Div, Erf, Add, Mul, Mul; or
// the 0.5 multiplied into x first), becomes one Gelu node: TFLite's GELU computes exactly that.
std::size_t fuse_gelu(Graph& graph) {
  std::vector<bool> remove(graph.nodes.size(), false);
  std::size_t fused = 0;
  for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& erf = graph.nodes[i];
    if (erf.op_type != "Erf" || erf.inputs.size() != 1 || !erf.attributes.empty()) continue;
    const int d = producer_of(graph, erf.inputs[0]);
    if (d < 0 || remove[static_cast<std::size_t>(d)] || graph.consumers(erf.inputs[0]).size() != 1) continue;
    const Node& scale = graph.nodes[static_cast<std::size_t>(d)];
    if (scale.inputs.size() != 2) continue;
    const std::string& x = scale.inputs[0];
    const bool divides = scale.op_type == "Div" && is_scalar_constant(graph, scale.inputs[1], std::sqrt(2.0f), 1e-6f);
    const bool multiplies = scale.op_type == "Mul" && is_scalar_constant(graph, scale.inputs[1], 1.0f / std::sqrt(2.0f), 1e-6f);
    if (!divides && !multiplies) continue;
    const int a = sole_consumer(graph, erf.outputs[0], "Add");
    if (a < 0 || !is_scalar_constant(graph, other_input(graph.nodes[static_cast<std::size_t>(a)], erf.outputs[0]), 1.0f, 0.0f)) continue;
    const std::string& one_plus = graph.nodes[static_cast<std::size_t>(a)].outputs[0];
    const int m1 = sole_consumer(graph, one_plus, "Mul");
    if (m1 < 0) continue;
    const std::string partner = other_input(graph.nodes[static_cast<std::size_t>(m1)], one_plus);
    std::vector<int> chain{d, static_cast<int>(i), a};
    int last = -1;
    if (partner == x) {  // (x * (1 + erf)) * 0.5
      const int m2 = sole_consumer(graph, graph.nodes[static_cast<std::size_t>(m1)].outputs[0], "Mul");
      if (m2 < 0 || !is_scalar_constant(
                        graph, other_input(graph.nodes[static_cast<std::size_t>(m2)], graph.nodes[static_cast<std::size_t>(m1)].outputs[0]),
                        0.5f, 0.0f))
        continue;
      chain.push_back(m1);
      last = m2;
    } else {  // (x * 0.5) * (1 + erf)
      const int h = producer_of(graph, partner);
      if (h < 0 || graph.consumers(partner).size() != 1 || graph.nodes[static_cast<std::size_t>(h)].op_type != "Mul" ||
          !is_scalar_constant(graph, other_input(graph.nodes[static_cast<std::size_t>(h)], x), 0.5f, 0.0f))
        continue;
      chain.push_back(h);
      last = m1;
    }
    if (std::any_of(chain.begin(), chain.end(), [&](int n) { return remove[static_cast<std::size_t>(n)]; })) continue;
    Node& gelu = graph.nodes[static_cast<std::size_t>(last)];
    gelu.op_type = "Gelu";
    gelu.inputs = {x};
    gelu.attributes.clear();
    for (int n : chain) remove[static_cast<std::size_t>(n)] = true;
    ++fused;
  }
  erase_marked(graph, remove);
  return fused;
}

// LayerNormalization (opset 17) as the nodes it is defined by, which the converter lowers already
// and which torch.onnx writes for nn.LayerNorm at older opsets: ReduceMean, Sub, Mul (square),
// ReduceMean, Add epsilon, Sqrt, Div, Mul scale, Add bias. A form it does not cover (unknown
// shapes, stash_type other than float, the optional Mean / InvStdDev outputs in use) is left as
// it is, and lowering refuses it with the node's name.
std::size_t decompose_layer_norms(Graph& graph) {
  std::vector<Node> out;
  std::size_t decomposed = 0;
  for (Node& node : graph.nodes) {
    const bool extra_outputs_used = std::any_of(node.outputs.begin() + (node.outputs.empty() ? 0 : 1), node.outputs.end(),
                                                [&](const std::string& o) { return output_used(graph, o); });
    if (node.op_type != "LayerNormalization" || node.inputs.size() < 2 || node.inputs[0].empty() || extra_outputs_used ||
        graph.is_constant(node.inputs[0]) || !graph.value(node.inputs[0]).shape_known) {
      out.push_back(std::move(node));
      continue;
    }
    std::int64_t axis = -1, stash_type = 1;
    float epsilon = 1e-5f;
    bool understood = true;
    for (const auto& [name, attribute] : node.attributes) {
      if (name == "axis")
        axis = attribute.i();
      else if (name == "epsilon")
        epsilon = attribute.f();
      else if (name == "stash_type")
        stash_type = attribute.i();
      else
        understood = false;
    }
    const Shape shape = graph.value(node.inputs[0]).shape;
    const auto rank = static_cast<std::int64_t>(shape.size());
    if (axis < 0) axis += rank;
    if (!understood || stash_type != 1 || axis < 0 || axis >= rank) {
      out.push_back(std::move(node));
      continue;
    }
    onnx::AttributeProto axes;
    axes.set_name("axes");
    axes.set_type(onnx::AttributeProto::INTS);
    for (std::int64_t a = axis; a < rank; ++a) axes.add_ints(a);
    Shape reduced = shape;
    for (std::int64_t a = axis; a < rank; ++a) reduced[static_cast<std::size_t>(a)] = 1;
    const std::string base = node.name + "_decomposed";
    auto value = [&](const std::string& suffix, const Shape& value_shape) {
      const std::string name = base + "_" + suffix;
      graph.values[name] = Value{name, kOnnxFloat, value_shape, true, std::nullopt};
      return name;
    };
    auto emit = [&](const std::string& op, std::vector<std::string> inputs, const std::string& output, bool reduce) {
      Node n;
      n.name = output + "_node";
      n.op_type = op;
      n.inputs = std::move(inputs);
      n.outputs = {output};
      if (reduce) n.attributes["axes"] = axes;
      out.push_back(std::move(n));
    };
    const std::string& x = node.inputs[0];
    const std::string eps = base + "_epsilon";
    graph.values[eps] = Value{eps, kOnnxFloat, {}, true, HostTensor::scalar(epsilon)};
    const std::string mean = value("mean", reduced), centred = value("centred", shape), square = value("square", shape),
                      variance = value("variance", reduced), shifted = value("variance_eps", reduced),
                      deviation = value("deviation", reduced), normalized = value("normalized", shape);
    emit("ReduceMean", {x}, mean, true);
    emit("Sub", {x, mean}, centred, false);
    emit("Mul", {centred, centred}, square, false);
    emit("ReduceMean", {square}, variance, true);
    emit("Add", {variance, eps}, shifted, false);
    emit("Sqrt", {shifted}, deviation, false);
    emit("Div", {centred, deviation}, normalized, false);
    const bool has_bias = node.has_input(2);
    const std::string scaled = has_bias ? value("scaled", shape) : node.outputs.at(0);
    emit("Mul", {normalized, node.inputs[1]}, scaled, false);
    if (has_bias) emit("Add", {scaled, node.inputs[2]}, node.outputs.at(0), false);
    ++decomposed;
  }
  graph.nodes = std::move(out);
  return decomposed;
}

std::size_t remove_dead_nodes(Graph& graph) {
  std::set<std::string> needed(graph.outputs.begin(), graph.outputs.end());
  std::vector<bool> remove(graph.nodes.size(), false);
  std::size_t removed = 0;
  for (std::size_t i = graph.nodes.size(); i-- > 0;) {
    const Node& node = graph.nodes[i];
    const bool used = std::any_of(node.outputs.begin(), node.outputs.end(), [&](const std::string& o) { return needed.count(o) != 0; });
    if (!used) {
      remove[i] = true;
      ++removed;
      continue;
    }
    for (const std::string& in : node.inputs) needed.insert(in);
  }
  erase_marked(graph, remove);
  return removed;
}

}  // namespace

SimplifyReport simplify_graph(Graph& graph) {
  SimplifyReport report;
  report.removed_pass_through = remove_pass_through(graph);
  report.folded_nodes = fold_constants(graph);
  report.removed_pass_through += remove_pass_through(graph);
  report.folded_batch_norms = fold_batch_norms(graph);
  report.fused_hard_swish = fuse_hard_swish(graph);
  report.fused_gelu = fuse_gelu(graph);
  report.decomposed_layer_norms = decompose_layer_norms(graph);
  report.removed_dead = remove_dead_nodes(graph);
  return report;
}

}  // namespace dermcds::converter
