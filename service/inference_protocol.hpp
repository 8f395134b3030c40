// The Open Inference Protocol (KServe v2) for our classifiers: the rules every transport shares
// (REST with JSON tensors, REST with the binary tensor extension, gRPC in service/grpc/), and
// the REST documents themselves. Pure functions, no I/O.
//
// A derm-cds model has one input, the preprocessed image batch (FP32, [N,3,S,S] or [N,S,S,3] in
// the artifact's layout), and one output, the logits (FP32, [N, classes]), plus, in a package
// with the safety guard (manifest "ood"), the guard's score (FP32, [N, 1]). A request is checked
// against exactly that, in this order, before anything is allocated for its data: input name,
// datatype, shape (rank, non-negative dimensions, an element count that fits in int64, the
// model's image shape, at most TensorLimits::max_images images), then the amount of data sent
// (values, or bytes = elements x 4). FP32 values must be finite. Anything else is
// kInvalidArgument with a message naming the field and both numbers.
//
// REST: tensor data may be flat or nested JSON numbers, or (the binary tensor extension) raw
// little-endian bytes after the JSON header, whose length the Inference-Header-Content-Length
// header gives; each binary input says its size in parameters.binary_data_size. An output is
// returned in binary when it asks for parameters.binary_data, or the request for
// parameters.binary_data_output; the response then carries its own header length.
// Instead of the tensor, a request may send encoded photographs (JPEG or PNG) as the BYTES
// input "image_bytes", shape [N]: binary data (binary extension or gRPC raw contents, each element
// a 4-byte little-endian length and the bytes) or gRPC bytes_contents. The caller decodes and
// preprocesses them exactly as /v1/classify does (Classifier::prepare).
// Triton's classification extension is supported: an output requested with
// {"parameters": {"classification": k}} returns, per image, the k largest logits as BYTES
// "value:index:label" strings.
#pragma once

#include <cstdint>
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
  std::string image_input_name;           // the BYTES input of encoded photographs, "image_bytes"
  std::vector<std::int64_t> input_shape;  // batch dimension -1
  std::string output_name;
  std::string ood_output_name;  // the safety guard's [N,1] output; "" for a package without it
  int classes = 0;
  std::vector<Label> labels;
};

ModelSignature signature_of(const Manifest& manifest, TensorLayout layout);

// Limits a request is checked against besides the model's shape (ServiceConfig::max_request_images).
struct TensorLimits {
  std::int64_t max_images = 64;
};

struct RequestedOutput {
  std::string name;
  int classification = 0;  // > 0: Triton's classification extension, top-k per image
  bool binary = false;     // REST: returned as raw bytes after the JSON header
};

struct InferRequest {
  std::optional<std::string> id;
  Tensor input;
  std::vector<RequestedOutput> outputs;  // empty: every output, as raw tensors
  std::string runtime;                   // the "runtime" request parameter, "" when absent
  bool binary_outputs = false;           // REST: parameters.binary_data_output
  // The image_bytes input: encoded photographs, for the caller to decode into `input`.
  std::vector<std::string> encoded_images;
};

// --- rules shared by every transport --------------------------------------------------------

// An input as declared before its data is looked at.
struct InputDeclaration {
  std::string_view name;
  std::string_view datatype;
  std::vector<std::int64_t> shape;
};

// Checks name, datatype and shape against the model and the limits; returns the element count
// (for image_bytes, the number of photographs).
std::int64_t check_input_declaration(const InputDeclaration& input, const ModelSignature& signature, const TensorLimits& limits);

// The tensor from raw little-endian FP32 bytes (binary extension, gRPC raw_input_contents):
// the byte count is compared with elements x 4 before anything is allocated; non-finite
// values are refused.
Tensor tensor_from_raw(std::vector<std::int64_t> shape, std::int64_t elements, std::string_view bytes, const std::string& input_name);
// The tensor from values already decoded (gRPC fp32_contents), with the same checks.
Tensor tensor_from_values(std::vector<std::int64_t> shape, std::int64_t elements, const float* values, std::size_t count,
                          const std::string& input_name);

// The elements of a BYTES tensor in the protocol's raw encoding (a 4-byte little-endian length
// before each), checked to be exactly `elements` that fill `bytes` to the end.
std::vector<std::string> bytes_elements(std::string_view bytes, std::int64_t elements, const std::string& input_name);

// A requested output, checked: its name, and classification k (given: must be >= 1; capped at
// the class count).
RequestedOutput check_requested_output(std::string_view name, std::optional<std::int64_t> classification, bool binary,
                                       const ModelSignature& signature);

// One output of an answer, in the protocol's terms.
struct OutputTensor {
  std::string name;
  std::string datatype;  // "FP32" or "BYTES"
  std::vector<std::int64_t> shape;
  std::vector<float> fp32;         // datatype FP32
  std::vector<std::string> bytes;  // datatype BYTES
  bool binary = false;
};
// Every output when none is requested: the logits, and the safety guard's score when the
// package has one (ood_score: the batcher's [N,1] tensor; null or empty for a package without it).
std::vector<OutputTensor> output_tensors(const InferRequest& request, const Tensor& logits, const ModelSignature& signature,
                                         const Tensor* ood_score = nullptr);
// The protocol's raw encoding: FP32 little-endian, BYTES as a 4-byte little-endian length
// before each element.
std::string raw_bytes(const OutputTensor& output);

// --- REST --------------------------------------------------------------------------------------

// An inference request body split into the JSON document and the binary section after it.
// `header_length` is the Inference-Header-Content-Length header when present: a decimal byte
// count no larger than the body. Throws kInvalidArgument for malformed JSON, a document that
// is not an object or a header length that is not one or lies beyond the body.
struct RequestBody {
  nlohmann::json document;
  std::string_view binary;  // into the caller's body
};
RequestBody split_request_body(std::string_view body, const std::optional<std::string>& header_length);
nlohmann::json parse_request_document(std::string_view body);

// The server-specific "runtime" request parameter, "" when absent: which instance (and so which
// input layout) the request is for, needed before the input can be checked.
std::string requested_runtime(const nlohmann::json& document);

// Throws kInvalidArgument (wrong input name, datatype, shape or element count, unknown output,
// binary sizes that disagree with the shape or the body).
InferRequest read_infer_request(const nlohmann::json& document, std::string_view binary, const ModelSignature& signature,
                                const TensorLimits& limits = {});
InferRequest parse_infer_request(std::string_view body, const ModelSignature& signature, const TensorLimits& limits = {});

// The response: the JSON document, and when an output is binary, its bytes after it.
struct ResponseBody {
  std::string body;
  std::optional<std::size_t> header_length;  // set when binary outputs follow the JSON
};
ResponseBody infer_response_body(const std::string& model_name, const std::string& model_version, const InferRequest& request,
                                 const Tensor& logits, const ModelSignature& signature, const Tensor* ood_score = nullptr);
nlohmann::ordered_json infer_response(const std::string& model_name, const std::string& model_version, const InferRequest& request,
                                      const Tensor& logits, const ModelSignature& signature, const Tensor* ood_score = nullptr);

// "onnxruntime_onnx" (Triton's platform name for ONNX models on ONNX Runtime), else the runtime's name.
std::string platform_of(std::string_view runtime);

nlohmann::ordered_json model_metadata(const std::string& name, const std::vector<std::string>& versions, std::string_view runtime,
                                      const ModelSignature& signature);

}  // namespace dermcds::service
