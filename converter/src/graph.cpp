#include "graph.hpp"

#include <algorithm>

#include "dermcds/error.hpp"

namespace dermcds::converter {

const Value& Graph::value(const std::string& name) const {
  const auto it = values.find(name);
  if (it == values.end()) throw Error(ErrorCode::kInvalidArgument, "the model uses value '" + name + "', which nothing defines");
  return it->second;
}

Value& Graph::value(const std::string& name) {
  const auto it = values.find(name);
  if (it == values.end()) throw Error(ErrorCode::kInvalidArgument, "the model uses value '" + name + "', which nothing defines");
  return it->second;
}

bool Graph::is_constant(const std::string& name) const {
  const auto it = values.find(name);
  return it != values.end() && it->second.constant.has_value();
}

const HostTensor& Graph::constant(const std::string& name) const {
  const Value& v = value(name);
  if (!v.constant) throw Error(ErrorCode::kInternal, "value '" + name + "' is not a constant");
  return *v.constant;
}

std::vector<std::size_t> Graph::consumers(const std::string& name) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (std::find(nodes[i].inputs.begin(), nodes[i].inputs.end(), name) != nodes[i].inputs.end()) out.push_back(i);
  return out;
}

bool Graph::is_graph_output(const std::string& name) const { return std::find(outputs.begin(), outputs.end(), name) != outputs.end(); }

}  // namespace dermcds::converter
