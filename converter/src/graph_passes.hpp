// Rewrites of the ONNX graph before lowering, each exact in float arithmetic up to rounding:
//  - constant folding (constant_folding.hpp), including the shape arithmetic exporters emit;
//  - removal of Identity and inference-time Dropout;
//  - BatchNormalization folded into the Conv that feeds it;
//  - x * HardSigmoid(x; 1/6, 1/2) recognized as HardSwish(x) (torch exports hardswish that way
//    before opset 14);
//  - x * 0.5 * (1 + Erf(x / sqrt 2)) recognized as Gelu(x) (torch's nn.GELU before opset 20);
//  - LayerNormalization decomposed into the ReduceMean/Sub/Mul/Sqrt/Div nodes defining it;
//  - removal of nodes whose outputs nothing uses.
#pragma once

#include <cstddef>

#include "graph.hpp"

namespace dermcds::converter {

struct SimplifyReport {
  std::size_t folded_nodes = 0;
  std::size_t removed_pass_through = 0;
  std::size_t folded_batch_norms = 0;
  std::size_t fused_hard_swish = 0;
  std::size_t fused_gelu = 0;
  std::size_t decomposed_layer_norms = 0;
  std::size_t removed_dead = 0;
};

SimplifyReport simplify_graph(Graph& graph);

}  // namespace dermcds::converter
