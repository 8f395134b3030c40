// The Open Inference Protocol (KServe v2) JSON documents for our classifiers: model metadata,
// inference requests (JSON tensors) and responses. Pure functions, no I/O.
//
// A derm-cds model has one input, the preprocessed image batch (FP32, [N,3,S,S] or [N,S,S,3] in
// the artifact's layout), and one output, the logits (FP32, [N, classes]). Requests are checked
// against exactly that: input name, datatype, shape and element count; anything else is
// kInvalidArgument with a message naming the field. Tensor data may be flat or nested, as the
// protocol allows. Binary tensor data (an extension) is refused with a clear message.
// Triton's classification extension is supported: an output requested with
// {"parameters": {"classification": k}} returns, per image, the k largest logits as BYTES
// "value:index:label" strings.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dermcds/manifest.hpp"
#include "dermcds/tensor.hpp"

namespace dermcds::service {

// What a client needs to know to call one model version.
struct ModelSignature {
  std::string input_name;
  std::vector<std::int64_t> input_shape;  // batch dimension -1
  std::string output_name;
  std::string ood_output_name;  // the safety guard's [N,1] output; "" for a package without it
  int classes = 0;
  std::vector<Label> labels;
};

ModelSignature signature_of(const Manifest& manifest, TensorLayout layout);

struct RequestedOutput {
  std::string name;
  int classification = 0;  // > 0: Triton's classification extension, top-k per image
};

struct InferRequest {
  std::optional<std::string> id;
  Tensor input;
  std::vector<RequestedOutput> outputs;  // empty: every output, as raw tensors
  std::string runtime;                   // the "runtime" request parameter, "" when absent
};

// An inference request document, parsed once. Throws kInvalidArgument for malformed JSON or a
// document that is not an object.
nlohmann::json parse_request_document(std::string_view body);

// The server-specific "runtime" request parameter, "" when absent: which instance (and so which
// input layout) the request is for, needed before the input can be checked.
std::string requested_runtime(const nlohmann::json& document);

// Throws kInvalidArgument (wrong input name, datatype, shape or element count, unknown output,
// binary data).
InferRequest read_infer_request(const nlohmann::json& document, const ModelSignature& signature);
InferRequest parse_infer_request(std::string_view body, const ModelSignature& signature);

nlohmann::ordered_json infer_response(const std::string& model_name, const std::string& model_version,
                                      const InferRequest& request, const Tensor& logits,
                                      const ModelSignature& signature, const Tensor* ood_score = nullptr);

// "onnxruntime_onnx" (Triton's platform name for ONNX models on ONNX Runtime), else the runtime's name.
std::string platform_of(std::string_view runtime);

nlohmann::ordered_json model_metadata(const std::string& name, const std::vector<std::string>& versions,
                                      std::string_view runtime, const ModelSignature& signature);

}  // namespace dermcds::service
