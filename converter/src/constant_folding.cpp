#include "constant_folding.hpp"

#include <cmath>
#include <functional>
#include <numeric>
#include <unordered_map>

#include "attributes.hpp"
#include "dermcds/error.hpp"
#include "layout.hpp"

namespace dermcds::converter {

namespace {

using Inputs = std::vector<const HostTensor*>;
using Evaluator = std::function<std::vector<HostTensor>(const Node&, Attributes&, const Inputs&, const Graph&)>;

[[noreturn]] void bad(const Node& node, const std::string& why) { throw Error(ErrorCode::kInvalidArgument, node.label() + ": " + why); }

int axis_or_bad(const Node& node, std::int64_t axis, std::size_t rank) {
  try {
    return normalize_axis(axis, rank);
  } catch (const std::out_of_range& e) {
    bad(node, e.what());
  }
}

std::vector<HostTensor> one(HostTensor t) {
  std::vector<HostTensor> v;
  v.push_back(std::move(t));
  return v;
}

HostTensor elementwise(const Node& node, const HostTensor& a, const HostTensor& b, const std::function<double(double, double)>& f,
                       const std::function<std::int64_t(std::int64_t, std::int64_t)>& fi) {
  Shape shape;
  try {
    shape = broadcast_shapes(a.shape, b.shape);
  } catch (const std::invalid_argument& e) {
    bad(node, e.what());
  }
  const HostTensor ba = broadcast_to(a, shape), bb = broadcast_to(b, shape);
  if (!a.is_float() && !b.is_float()) {
    std::vector<std::int64_t> out(ba.ints.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = fi(ba.ints[i], bb.ints[i]);
    return HostTensor::from_ints(shape, std::move(out));
  }
  std::vector<float> out(static_cast<std::size_t>(element_count(shape)));
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<float>(f(ba.as_double(static_cast<std::int64_t>(i)), bb.as_double(static_cast<std::int64_t>(i))));
  return HostTensor::from_floats(shape, std::move(out));
}

HostTensor unary(const HostTensor& a, const std::function<double(double)>& f) {
  std::vector<float> out(static_cast<std::size_t>(a.size()));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(f(a.as_double(static_cast<std::int64_t>(i))));
  return HostTensor::from_floats(a.shape, std::move(out));
}

std::vector<std::int64_t> axes_input_or_attribute(const Graph& graph, Attributes& attributes, const Inputs& in, std::size_t index) {
  if (graph.opset >= 13) return in.size() > index && in[index] ? in[index]->to_ints() : std::vector<std::int64_t>{};
  return attributes.get_ints("axes", {});
}

const std::unordered_map<std::string, Evaluator>& evaluators() {
  static const std::unordered_map<std::string, Evaluator> table = {
      {"Identity", [](const Node&, Attributes&, const Inputs& in, const Graph&) { return one(*in[0]); }},
      {"Cast",
       [](const Node& node, Attributes& a, const Inputs& in, const Graph&) {
         const std::int64_t to = a.get_int("to", 0);
         switch (to) {
           case onnx::TensorProto::FLOAT:
           case onnx::TensorProto::DOUBLE:
           case onnx::TensorProto::FLOAT16:
             return one(HostTensor::from_floats(in[0]->shape, in[0]->to_floats()));
           case onnx::TensorProto::INT64:
           case onnx::TensorProto::INT32:
           case onnx::TensorProto::INT16:
           case onnx::TensorProto::INT8:
           case onnx::TensorProto::UINT8:
             return one(HostTensor::from_ints(in[0]->shape, in[0]->to_ints()));
           case onnx::TensorProto::BOOL: {
             std::vector<std::int64_t> v(static_cast<std::size_t>(in[0]->size()));
             for (std::size_t i = 0; i < v.size(); ++i) v[i] = in[0]->as_double(static_cast<std::int64_t>(i)) != 0.0;
             return one(HostTensor::from_ints(in[0]->shape, std::move(v)));
           }
           default:
             bad(node, "casts to type " + std::to_string(to));
         }
       }},
      {"Shape",
       [](const Node&, Attributes& a, const Inputs& in, const Graph&) {
         const auto rank = static_cast<std::int64_t>(in[0]->shape.size());
         std::int64_t start = a.get_int("start", 0), end = a.get_int("end", rank);
         if (start < 0) start += rank;
         if (end < 0) end += rank;
         start = std::clamp<std::int64_t>(start, 0, rank);
         end = std::clamp<std::int64_t>(end, start, rank);
         std::vector<std::int64_t> dims(in[0]->shape.begin() + start, in[0]->shape.begin() + end);
         return one(HostTensor::from_ints({static_cast<std::int64_t>(dims.size())}, dims));
       }},
      {"Size", [](const Node&, Attributes&, const Inputs& in, const Graph&) { return one(HostTensor::from_ints({}, {in[0]->size()})); }},
      {"Gather",
       [](const Node& node, Attributes& a, const Inputs& in, const Graph&) {
         const HostTensor& data = *in[0];
         const HostTensor& indices = *in[1];
         const int axis = axis_or_bad(node, a.get_int("axis", 0), data.shape.size());
         const std::int64_t dim = data.shape[static_cast<std::size_t>(axis)];
         const std::int64_t outer = std::accumulate(data.shape.begin(), data.shape.begin() + axis, std::int64_t{1}, std::multiplies<>());
         const std::int64_t inner = std::accumulate(data.shape.begin() + axis + 1, data.shape.end(), std::int64_t{1}, std::multiplies<>());
         Shape shape(data.shape.begin(), data.shape.begin() + axis);
         shape.insert(shape.end(), indices.shape.begin(), indices.shape.end());
         shape.insert(shape.end(), data.shape.begin() + axis + 1, data.shape.end());
         std::vector<std::int64_t> picked;
         for (std::int64_t idx : indices.to_ints()) {
           if (idx < -dim || idx >= dim) bad(node, "index " + std::to_string(idx) + " is out of range");
           picked.push_back(idx < 0 ? idx + dim : idx);
         }
         HostTensor out;
         out.kind = data.kind;
         out.shape = shape;
         for (std::int64_t o = 0; o < outer; ++o)
           for (std::int64_t idx : picked)
             for (std::int64_t i = 0; i < inner; ++i) {
               const std::int64_t src = (o * dim + idx) * inner + i;
               if (data.is_float())
                 out.floats.push_back(data.floats[static_cast<std::size_t>(src)]);
               else
                 out.ints.push_back(data.ints[static_cast<std::size_t>(src)]);
             }
         return one(std::move(out));
       }},
      {"Unsqueeze",
       [](const Node& node, Attributes& a, const Inputs& in, const Graph& g) {
         const std::vector<std::int64_t> axes = axes_input_or_attribute(g, a, in, 1);
         Shape shape = in[0]->shape;
         const std::size_t rank = shape.size() + axes.size();
         std::vector<int> normalized;
         for (std::int64_t ax : axes) normalized.push_back(axis_or_bad(node, ax, rank));
         std::sort(normalized.begin(), normalized.end());
         for (int ax : normalized) shape.insert(shape.begin() + ax, 1);
         return one(reshape(*in[0], shape));
       }},
      {"Squeeze",
       [](const Node& node, Attributes& a, const Inputs& in, const Graph& g) {
         const std::vector<std::int64_t> axes = axes_input_or_attribute(g, a, in, 1);
         const Shape& s = in[0]->shape;
         std::vector<bool> drop(s.size(), axes.empty());
         if (axes.empty())
           for (std::size_t d = 0; d < s.size(); ++d) drop[d] = s[d] == 1;
         for (std::int64_t ax : axes) drop[static_cast<std::size_t>(axis_or_bad(node, ax, s.size()))] = true;
         Shape shape;
         for (std::size_t d = 0; d < s.size(); ++d)
           if (!drop[d]) shape.push_back(s[d]);
         return one(reshape(*in[0], shape));
       }},
      {"Concat",
       [](const Node& node, Attributes& a, const Inputs& in, const Graph&) {
         const int axis = axis_or_bad(node, a.get_int("axis", 0), in[0]->shape.size());
         Shape shape = in[0]->shape;
         shape[static_cast<std::size_t>(axis)] = 0;
         bool floats = false;
         for (const HostTensor* t : in) {
           shape[static_cast<std::size_t>(axis)] += t->shape[static_cast<std::size_t>(axis)];
           floats = floats || t->is_float();
         }
         const std::int64_t outer = std::accumulate(shape.begin(), shape.begin() + axis, std::int64_t{1}, std::multiplies<>());
         HostTensor out;
         out.kind = floats ? HostTensor::Kind::kFloat : HostTensor::Kind::kInt;
         out.shape = shape;
         for (std::int64_t o = 0; o < outer; ++o)
           for (const HostTensor* t : in) {
             const std::int64_t block = t->size() / std::max<std::int64_t>(outer, 1);
             for (std::int64_t i = 0; i < block; ++i) {
               if (floats)
                 out.floats.push_back(static_cast<float>(t->as_double(o * block + i)));
               else
                 out.ints.push_back(t->ints[static_cast<std::size_t>(o * block + i)]);
             }
           }
         return one(std::move(out));
       }},
      {"Reshape",
       [](const Node& node, Attributes& a, const Inputs& in, const Graph&) {
         const bool allow_zero = a.get_int("allowzero", 0) != 0;
         std::vector<std::int64_t> dims = in[1]->to_ints();
         std::int64_t known = 1;
         int infer = -1;
         for (std::size_t i = 0; i < dims.size(); ++i) {
           if (dims[i] == 0 && !allow_zero) dims[i] = in[0]->shape.at(i);
           if (dims[i] == -1)
             infer = static_cast<int>(i);
           else
             known *= dims[i];
         }
         if (infer >= 0) {
           if (known == 0) bad(node, "cannot infer a -1 dimension next to a 0");
           dims[static_cast<std::size_t>(infer)] = in[0]->size() / known;
         }
         if (element_count(dims) != in[0]->size()) bad(node, "cannot reshape " + shape_text(in[0]->shape) + " to " + shape_text(dims));
         return one(reshape(*in[0], dims));
       }},
      {"Flatten",
       [](const Node&, Attributes& a, const Inputs& in, const Graph&) {
         const auto rank = static_cast<std::int64_t>(in[0]->shape.size());
         std::int64_t axis = a.get_int("axis", 1);
         if (axis < 0) axis += rank;
         const std::int64_t outer =
             std::accumulate(in[0]->shape.begin(), in[0]->shape.begin() + axis, std::int64_t{1}, std::multiplies<>());
         return one(reshape(*in[0], {outer, in[0]->size() / std::max<std::int64_t>(outer, 1)}));
       }},
      {"Transpose",
       [](const Node&, Attributes& a, const Inputs& in, const Graph&) {
         std::vector<std::int64_t> p = a.get_ints("perm", {});
         if (p.empty())
           for (std::size_t i = in[0]->shape.size(); i-- > 0;) p.push_back(static_cast<std::int64_t>(i));
         return one(transpose(*in[0], Perm(p.begin(), p.end())));
       }},
      {"Add", [](const Node& n, Attributes&, const Inputs& in,
                 const Graph&) { return one(elementwise(n, *in[0], *in[1], std::plus<double>(), std::plus<std::int64_t>())); }},
      {"Sub", [](const Node& n, Attributes&, const Inputs& in,
                 const Graph&) { return one(elementwise(n, *in[0], *in[1], std::minus<double>(), std::minus<std::int64_t>())); }},
      {"Mul", [](const Node& n, Attributes&, const Inputs& in,
                 const Graph&) { return one(elementwise(n, *in[0], *in[1], std::multiplies<double>(), std::multiplies<std::int64_t>())); }},
      {"Div",
       [](const Node& n, Attributes&, const Inputs& in, const Graph&) {
         return one(elementwise(n, *in[0], *in[1], std::divides<double>(), [&](std::int64_t x, std::int64_t y) {
           if (y == 0) bad(n, "integer division by zero");
           return x / y;
         }));
       }},
      {"Neg",
       [](const Node&, Attributes&, const Inputs& in, const Graph&) {
         if (!in[0]->is_float()) {
           std::vector<std::int64_t> v = in[0]->ints;
           for (auto& x : v) x = -x;
           return one(HostTensor::from_ints(in[0]->shape, v));
         }
         return one(unary(*in[0], [](double x) { return -x; }));
       }},
      {"Sqrt",
       [](const Node&, Attributes&, const Inputs& in, const Graph&) { return one(unary(*in[0], [](double x) { return std::sqrt(x); })); }},
      {"Reciprocal",
       [](const Node&, Attributes&, const Inputs& in, const Graph&) { return one(unary(*in[0], [](double x) { return 1.0 / x; })); }},
      {"Floor",
       [](const Node&, Attributes&, const Inputs& in, const Graph&) { return one(unary(*in[0], [](double x) { return std::floor(x); })); }},
      // Where / Equal / Expand / Not / Mod: the shape arithmetic torch.onnx writes around
      // class-token expansion (ViT) and window masks (Swin). Booleans are held as 0/1 integers.
      {"Equal",
       [](const Node& n, Attributes&, const Inputs& in, const Graph&) {
         HostTensor r = elementwise(
             n, *in[0], *in[1], [](double x, double y) { return x == y ? 1.0 : 0.0; },
             [](std::int64_t x, std::int64_t y) -> std::int64_t { return x == y ? 1 : 0; });
         return one(HostTensor::from_ints(r.shape, r.to_ints()));
       }},
      {"Not",
       [](const Node&, Attributes&, const Inputs& in, const Graph&) {
         std::vector<std::int64_t> v = in[0]->to_ints();
         for (auto& x : v) x = x == 0 ? 1 : 0;
         return one(HostTensor::from_ints(in[0]->shape, std::move(v)));
       }},
      {"Mod",
       [](const Node& n, Attributes& a, const Inputs& in, const Graph&) {
         if (a.get_int("fmod", 0) != 0 || in[0]->is_float() || in[1]->is_float()) bad(n, "only integer Mod with fmod = 0 is folded");
         return one(elementwise(
             n, *in[0], *in[1], [](double x, double) { return x; },
             [&](std::int64_t x, std::int64_t y) {
               if (y == 0) bad(n, "integer modulo by zero");
               const std::int64_t r = x % y;
               return r != 0 && ((r < 0) != (y < 0)) ? r + y : r;  // the sign of the divisor, as numpy
             }));
       }},
      {"Where",
       [](const Node& n, Attributes&, const Inputs& in, const Graph&) {
         Shape shape;
         try {
           shape = broadcast_shapes(broadcast_shapes(in[0]->shape, in[1]->shape), in[2]->shape);
         } catch (const std::invalid_argument& e) {
           bad(n, e.what());
         }
         const HostTensor c = broadcast_to(*in[0], shape), x = broadcast_to(*in[1], shape), y = broadcast_to(*in[2], shape);
         const std::vector<std::int64_t> take = c.to_ints();
         if (x.is_float() || y.is_float()) {
           std::vector<float> v(take.size());
           for (std::size_t i = 0; i < v.size(); ++i)
             v[i] =
                 static_cast<float>(take[i] != 0 ? x.as_double(static_cast<std::int64_t>(i)) : y.as_double(static_cast<std::int64_t>(i)));
           return one(HostTensor::from_floats(shape, std::move(v)));
         }
         std::vector<std::int64_t> v(take.size());
         for (std::size_t i = 0; i < v.size(); ++i) v[i] = take[i] != 0 ? x.ints[i] : y.ints[i];
         return one(HostTensor::from_ints(shape, std::move(v)));
       }},
      {"Expand",
       [](const Node& n, Attributes&, const Inputs& in, const Graph&) {
         Shape shape;
         try {
           shape = broadcast_shapes(in[0]->shape, in[1]->to_ints());
         } catch (const std::invalid_argument& e) {
           bad(n, e.what());
         }
         return one(broadcast_to(*in[0], shape));
       }},
      {"ConstantOfShape",
       [](const Node&, Attributes& a, const Inputs& in, const Graph&) {
         const Shape shape = in[0]->to_ints();
         const std::optional<HostTensor> value = a.find_tensor("value");
         if (value && !value->is_float())
           return one(
               HostTensor::from_ints(shape, std::vector<std::int64_t>(static_cast<std::size_t>(element_count(shape)), value->ints.at(0))));
         const float v = value ? value->floats.at(0) : 0.0f;
         return one(HostTensor::from_floats(shape, std::vector<float>(static_cast<std::size_t>(element_count(shape)), v)));
       }},
      {"Range",
       [](const Node& node, Attributes&, const Inputs& in, const Graph&) {
         const double start = in[0]->as_double(0), limit = in[1]->as_double(0), delta = in[2]->as_double(0);
         if (delta == 0) bad(node, "delta is 0");
         const auto n = static_cast<std::int64_t>(std::max(0.0, std::ceil((limit - start) / delta)));
         if (in[0]->is_float()) {
           std::vector<float> v;
           for (std::int64_t i = 0; i < n; ++i) v.push_back(static_cast<float>(start + static_cast<double>(i) * delta));
           return one(HostTensor::from_floats({n}, v));
         }
         std::vector<std::int64_t> v;
         for (std::int64_t i = 0; i < n; ++i) v.push_back(in[0]->ints[0] + i * in[2]->ints[0]);
         return one(HostTensor::from_ints({n}, v));
       }},
  };
  return table;
}

}  // namespace

std::optional<std::vector<HostTensor>> try_fold(const Graph& graph, const Node& node) {
  const auto it = evaluators().find(node.op_type);
  if (it == evaluators().end()) return std::nullopt;
  std::vector<HostTensor> shape_holders;
  shape_holders.reserve(1);
  Inputs inputs;
  for (std::size_t i = 0; i < node.inputs.size(); ++i) {
    const std::string& name = node.inputs[i];
    if (name.empty()) {
      inputs.push_back(nullptr);
      continue;
    }
    if (graph.is_constant(name)) {
      inputs.push_back(&graph.constant(name));
      continue;
    }
    // Shape and Size need only the (static) shape of their input.
    const Value& v = graph.value(name);
    if ((node.op_type == "Shape" || node.op_type == "Size") && i == 0 && v.shape_known) {
      HostTensor placeholder;
      placeholder.shape = v.shape;  // contents never read
      shape_holders.push_back(std::move(placeholder));
      inputs.push_back(&shape_holders.back());
      continue;
    }
    return std::nullopt;
  }
  if (inputs.empty() || !inputs[0]) return std::nullopt;
  Attributes attributes(node);
  std::vector<HostTensor> out = it->second(node, attributes, inputs, graph);
  attributes.check_all_read();
  return out;
}

}  // namespace dermcds::converter
