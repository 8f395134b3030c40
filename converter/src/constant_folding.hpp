// Evaluating ONNX nodes whose inputs are all known at conversion time: the shape arithmetic
// exporters emit (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), casts, and arithmetic on
// constants. A node the evaluator does not know is left for lowering.
#pragma once

#include <optional>
#include <vector>

#include "graph.hpp"

namespace dermcds::converter {

// The outputs of `node` if it can be evaluated now (inputs constant, or only their shapes
// needed), else nullopt. Throws kInvalidArgument for nodes that are malformed.
std::optional<std::vector<HostTensor>> try_fold(const Graph& graph, const Node& node);

}  // namespace dermcds::converter
