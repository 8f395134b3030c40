#include "inference_protocol.hpp"

#include <algorithm>
#include <numeric>

#include "dermcds/error.hpp"
#include "dermcds/runtime.hpp"

namespace dermcds::service {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::kInvalidArgument, message); }

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

// Row-major elements of flat or nested data, checked to be numbers.
void flatten(const json& data, std::vector<float>& out, int depth) {
  if (depth > 8) bad("input data is nested deeper than any tensor this model takes");
  for (const json& element : data) {
    if (element.is_number()) out.push_back(element.get<float>());
    else if (element.is_array()) flatten(element, out, depth + 1);
    else bad("input data holds a " + std::string(element.type_name()) + " where FP32 numbers belong");
  }
}

const json* find(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

bool binary_requested(const json* parameters) {
  if (!parameters || !parameters->is_object()) return false;
  if (parameters->contains("binary_data_size")) return true;
  const json* flag = find(*parameters, "binary_data");
  return flag && flag->is_boolean() && flag->get<bool>();
}

}  // namespace

ModelSignature signature_of(const Manifest& manifest, TensorLayout layout) {
  const std::int64_t s = manifest.input.crop_size;
  ModelSignature sig;
  sig.input_name = manifest.input_name;
  sig.input_shape = layout == TensorLayout::kNCHW ? std::vector<std::int64_t>{-1, 3, s, s} : std::vector<std::int64_t>{-1, s, s, 3};
  sig.output_name = manifest.output_name;
  if (manifest.ood) sig.ood_output_name = manifest.ood->output;
  sig.classes = static_cast<int>(manifest.labels.size());
  sig.labels = manifest.labels;
  return sig;
}

json parse_request_document(std::string_view body) {
  json document = json::parse(body, nullptr, false);
  if (document.is_discarded()) bad("the request body is not valid JSON");
  if (!document.is_object()) bad("the request body must be a JSON object with \"inputs\"");
  return document;
}

std::string requested_runtime(const json& document) {
  const json* parameters = find(document, "parameters");
  const json* runtime = parameters && parameters->is_object() ? find(*parameters, "runtime") : nullptr;
  if (!runtime) return "";
  if (!runtime->is_string()) bad("parameter \"runtime\" must be a string");
  return runtime->get<std::string>();
}

InferRequest parse_infer_request(std::string_view body, const ModelSignature& signature) {
  return read_infer_request(parse_request_document(body), signature);
}

InferRequest read_infer_request(const json& document, const ModelSignature& signature) {
  InferRequest request;

  if (const json* id = find(document, "id")) {
    if (!id->is_string()) bad("\"id\" must be a string");
    request.id = id->get<std::string>();
  }
  if (const json* parameters = find(document, "parameters")) {
    if (!parameters->is_object()) bad("\"parameters\" must be an object");
    if (binary_requested(parameters)) bad("binary tensor data is not supported; send the tensors as JSON");
    request.runtime = requested_runtime(document);
  }

  const json* inputs = find(document, "inputs");
  if (!inputs || !inputs->is_array() || inputs->empty()) bad("\"inputs\" must be a non-empty array");
  if (inputs->size() != 1)
    bad("this model takes one input, \"" + signature.input_name + "\"; the request has " + std::to_string(inputs->size()));
  const json& input = inputs->front();
  if (!input.is_object()) bad("each input must be an object");
  const json* name = find(input, "name");
  if (!name || !name->is_string()) bad("the input has no \"name\"");
  if (name->get<std::string>() != signature.input_name)
    bad("unknown input \"" + name->get<std::string>() + "\"; this model's input is \"" + signature.input_name + "\"");
  const json* datatype = find(input, "datatype");
  if (!datatype || !datatype->is_string()) bad("input \"" + signature.input_name + "\" has no \"datatype\"");
  if (datatype->get<std::string>() != "FP32")
    bad("input \"" + signature.input_name + "\" has datatype " + datatype->get<std::string>() + "; this model takes FP32");
  if (binary_requested(find(input, "parameters"))) bad("binary tensor data is not supported; send the tensors as JSON");

  const json* shape = find(input, "shape");
  if (!shape || !shape->is_array()) bad("input \"" + signature.input_name + "\" has no \"shape\"");
  for (const json& d : *shape) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0) bad("\"shape\" must list non-negative integers");
    request.input.shape.push_back(d.get<std::int64_t>());
  }
  const auto& expected = signature.input_shape;
  const bool shape_ok = request.input.shape.size() == expected.size() && !request.input.shape.empty() &&
                        request.input.shape[0] >= 1 &&
                        std::equal(expected.begin() + 1, expected.end(), request.input.shape.begin() + 1);
  if (!shape_ok)
    bad("input \"" + signature.input_name + "\" has shape " + shape_text(request.input.shape) + "; this model takes " +
        shape_text(expected) + " (-1: any batch size of at least 1)");

  const json* data = find(input, "data");
  if (!data || !data->is_array()) bad("input \"" + signature.input_name + "\" has no \"data\" array");
  const std::int64_t count = Tensor::element_count(request.input.shape);
  request.input.data.reserve(static_cast<std::size_t>(count));
  flatten(*data, request.input.data, 0);
  if (static_cast<std::int64_t>(request.input.data.size()) != count)
    bad("input \"" + signature.input_name + "\" has " + std::to_string(request.input.data.size()) +
        " values; its shape " + shape_text(request.input.shape) + " needs " + std::to_string(count));

  if (const json* outputs = find(document, "outputs")) {
    if (!outputs->is_array()) bad("\"outputs\" must be an array");
    for (const json& output : *outputs) {
      const json* output_name = output.is_object() ? find(output, "name") : nullptr;
      if (!output_name || !output_name->is_string()) bad("each requested output needs a \"name\"");
      const bool guard = !signature.ood_output_name.empty() && output_name->get<std::string>() == signature.ood_output_name;
      if (output_name->get<std::string>() != signature.output_name && !guard)
        bad("unknown output \"" + output_name->get<std::string>() + "\"; this model's output is \"" + signature.output_name + "\"" +
            (signature.ood_output_name.empty() ? "" : " or \"" + signature.ood_output_name + "\""));
      RequestedOutput requested{output_name->get<std::string>(), 0};
      if (const json* parameters = find(output, "parameters")) {
        if (binary_requested(parameters)) bad("binary tensor data is not supported; ask for JSON outputs");
        if (const json* k = parameters->is_object() ? find(*parameters, "classification") : nullptr) {
          if (!k->is_number_integer() || k->get<int>() < 1) bad("\"classification\" must be a positive integer");
          requested.classification = std::min(k->get<int>(), signature.classes);
        }
      }
      request.outputs.push_back(requested);
    }
  }
  return request;
}

nlohmann::ordered_json infer_response(const std::string& model_name, const std::string& model_version,
                                      const InferRequest& request, const Tensor& logits, const ModelSignature& signature,
                                      const Tensor* ood_score) {
  nlohmann::ordered_json response;
  response["model_name"] = model_name;
  response["model_version"] = model_version;
  if (request.id) response["id"] = *request.id;
  std::vector<RequestedOutput> outputs = request.outputs;
  if (outputs.empty()) {
    outputs.push_back({signature.output_name, 0});
    if (!signature.ood_output_name.empty()) outputs.push_back({signature.ood_output_name, 0});
  }
  const std::int64_t rows = logits.shape.at(0);
  const auto classes = static_cast<std::size_t>(logits.shape.at(1));
  response["outputs"] = nlohmann::ordered_json::array();
  for (const RequestedOutput& output : outputs) {
    nlohmann::ordered_json tensor;
    tensor["name"] = output.name;
    if (output.name == signature.ood_output_name && !signature.ood_output_name.empty()) {
      // The guard output is a score, not class logits: always a raw [N,1] tensor.
      tensor["datatype"] = "FP32";
      tensor["shape"] = ood_score ? ood_score->shape : std::vector<std::int64_t>{rows, 1};
      tensor["data"] = ood_score ? ood_score->data : std::vector<float>{};
    } else if (output.classification == 0) {
      tensor["datatype"] = "FP32";
      tensor["shape"] = logits.shape;
      tensor["data"] = logits.data;
    } else {
      // Triton's classification output: per row, the k largest values as "value:index:label".
      nlohmann::ordered_json strings = nlohmann::ordered_json::array();
      for (std::int64_t r = 0; r < rows; ++r) {
        const float* row = logits.data.data() + static_cast<std::size_t>(r) * classes;
        std::vector<std::size_t> order(classes);
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::stable_sort(order.begin(), order.end(), [row](std::size_t a, std::size_t b) { return row[a] > row[b]; });
        for (int k = 0; k < output.classification; ++k) {
          const std::size_t i = order[static_cast<std::size_t>(k)];
          strings.push_back(std::to_string(row[i]) + ":" + std::to_string(i) + ":" + signature.labels.at(i).code);
        }
      }
      tensor["datatype"] = "BYTES";
      tensor["shape"] = {rows, output.classification};
      tensor["data"] = std::move(strings);
    }
    response["outputs"].push_back(std::move(tensor));
  }
  return response;
}

// The runtime's own name for the protocol's "platform" (its descriptor), or its name.
std::string platform_of(std::string_view runtime) {
  const RuntimeDescriptor* descriptor = find_runtime(runtime);
  return std::string(descriptor ? descriptor->platform : runtime);
}

nlohmann::ordered_json model_metadata(const std::string& name, const std::vector<std::string>& versions,
                                      std::string_view runtime, const ModelSignature& signature) {
  nlohmann::ordered_json metadata;
  metadata["name"] = name;
  metadata["versions"] = versions;
  metadata["platform"] = platform_of(runtime);
  metadata["inputs"] = {{{"name", signature.input_name}, {"datatype", "FP32"}, {"shape", signature.input_shape}}};
  metadata["outputs"] = {{{"name", signature.output_name}, {"datatype", "FP32"}, {"shape", {-1, signature.classes}}}};
  if (!signature.ood_output_name.empty())
    metadata["outputs"].push_back({{"name", signature.ood_output_name}, {"datatype", "FP32"}, {"shape", {-1, 1}}});
  return metadata;
}

}  // namespace dermcds::service
