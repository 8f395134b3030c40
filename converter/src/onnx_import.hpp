// Reading an ONNX model into the converter's Graph.
//
// The model is parsed with protobuf, validated with the ONNX checker, given a fixed batch of 1
// where its first input dimension is symbolic (recorded in Graph::dynamic_batch_inputs), and
// run through ONNX shape inference (with data propagation, so shape arithmetic such as
// x.view(x.size(0), -1) resolves). Constant nodes and initializers become constants.
//
// Errors (all naming `origin`): kInvalidArgument for bytes that are not a well-formed ONNX
// model (empty, truncated, failing the checker or shape inference); kUnsupportedModel for
// models outside what the converter handles (opset, operator domains, external data, dynamic
// dimensions other than the batch).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "graph.hpp"

namespace dermcds::converter {

// Opsets whose operator semantics the lowerings implement.
inline constexpr std::int64_t kMinOpset = 11;
inline constexpr std::int64_t kMaxOpset = 17;

Graph import_onnx(std::span<const std::uint8_t> bytes, const std::string& origin);

}  // namespace dermcds::converter
