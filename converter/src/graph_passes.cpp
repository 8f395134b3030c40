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
  report.removed_dead = remove_dead_nodes(graph);
  return report;
}

}  // namespace dermcds::converter
