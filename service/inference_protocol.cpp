#include "inference_protocol.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "dermcds/error.hpp"
#include "dermcds/runtime.hpp"

namespace dermcds::service {

// Raw tensors are little-endian on the wire; every target we build for is too, so bytes are
// copied as they are. A big-endian port would have to swap here.
static_assert(std::endian::native == std::endian::little, "the binary tensor code assumes a little-endian host");

namespace {

using json = nlohmann::json;

constexpr std::int64_t kFp32Bytes = 4;

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::kInvalidArgument, message); }

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

const json* find(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

constexpr int kMaxNesting = 8;  // deeper than any tensor this model takes

// Counts the numbers of flat or nested data, checking their types, without storing any: the
// count is compared with the shape before the tensor is allocated.
std::int64_t count_values(const json& data, int depth) {
  if (depth > kMaxNesting) bad("input data is nested deeper than any tensor this model takes");
  std::int64_t count = 0;
  for (const json& element : data) {
    if (element.is_number())
      ++count;
    else if (element.is_array())
      count += count_values(element, depth + 1);
    else
      bad("input data holds a " + std::string(element.type_name()) + " where FP32 numbers belong");
  }
  return count;
}

// Row-major values of flat or nested data (already counted and type-checked), each one
// checked to be a finite FP32 number: 1e39 would become infinity, and infinity NaN logits.
void flatten(const json& data, std::vector<float>& out, const std::string& input_name) {
  for (const json& element : data) {
    if (element.is_array()) {
      flatten(element, out, input_name);
      continue;
    }
    const double value = element.get<double>();
    if (!(std::fabs(value) <= std::numeric_limits<float>::max()))
      bad("input \"" + input_name + "\" holds " + element.dump() + " at element " + std::to_string(out.size()) +
          ", which is not a finite FP32 number");
    out.push_back(static_cast<float>(value));
  }
}

void require_finite(const std::vector<float>& values, const std::string& input_name) {
  const auto it = std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
  if (it != values.end())
    bad("input \"" + input_name + "\" holds a non-finite value (" + std::to_string(*it) + ") at element " +
        std::to_string(it - values.begin()));
}

// A parameter that must be a boolean when present.
bool flag(const json* parameters, const char* key, const std::string& where) {
  if (!parameters) return false;
  const json* value = find(*parameters, key);
  if (!value) return false;
  if (!value->is_boolean()) bad(where + " parameter \"" + key + "\" must be true or false");
  return value->get<bool>();
}

const json* parameters_of(const json& object, const std::string& where) {
  const json* parameters = find(object, "parameters");
  if (parameters && !parameters->is_object()) bad(where + " \"parameters\" must be an object");
  return parameters;
}

std::string top_entry(float value, std::size_t index, const Label& label) {
  return std::to_string(value) + ":" + std::to_string(index) + ":" + label.code;
}

}  // namespace

ModelSignature signature_of(const Manifest& manifest, TensorLayout layout) {
  const std::int64_t s = manifest.input.crop_size;
  ModelSignature sig;
  sig.input_name = manifest.input_name;
  sig.image_input_name = "image_bytes";
  sig.input_shape = layout == TensorLayout::kNCHW ? std::vector<std::int64_t>{-1, 3, s, s} : std::vector<std::int64_t>{-1, s, s, 3};
  sig.output_name = manifest.output_name;
  if (manifest.ood) sig.ood_output_name = manifest.ood->output;
  sig.classes = static_cast<int>(manifest.labels.size());
  sig.labels = manifest.labels;
  return sig;
}

// --- rules shared by every transport --------------------------------------------------------

std::int64_t check_input_declaration(const InputDeclaration& input, const ModelSignature& signature, const TensorLimits& limits) {
  if (input.name == signature.image_input_name) {
    const std::string& name = signature.image_input_name;
    if (input.datatype != "BYTES")
      bad("input \"" + name + "\" has datatype " + std::string(input.datatype) + "; it takes BYTES (encoded JPEG or PNG)");
    if (input.shape.size() != 1 || input.shape[0] < 1)
      bad("input \"" + name + "\" has shape " + shape_text(input.shape) + "; it takes [N], one element per photograph");
    if (input.shape[0] > limits.max_images)
      bad("input \"" + name + "\" has shape " + shape_text(input.shape) + ", " + std::to_string(input.shape[0]) +
          " photographs; a request may carry at most " + std::to_string(limits.max_images) + " (max_request_images)");
    return input.shape[0];
  }
  if (input.name != signature.input_name)
    bad("unknown input \"" + std::string(input.name) + "\"; this model's inputs are \"" + signature.input_name + "\" (FP32 tensor) and \"" +
        signature.image_input_name + "\" (BYTES, encoded photographs)");
  const std::string& name = signature.input_name;
  if (input.datatype.empty()) bad("input \"" + name + "\" has no datatype");
  if (input.datatype != "FP32") bad("input \"" + name + "\" has datatype " + std::string(input.datatype) + "; this model takes FP32");
  const std::vector<std::int64_t>& shape = input.shape;
  const std::optional<std::int64_t> count = Tensor::checked_element_count(shape);
  if (!count && std::none_of(shape.begin(), shape.end(), [](std::int64_t d) { return d < 0; }))
    bad("input \"" + name + "\" has shape " + shape_text(shape) + ", whose element count does not fit in a 64-bit integer");
  const auto& expected = signature.input_shape;
  const bool shape_ok = count && shape.size() == expected.size() && !shape.empty() && shape[0] >= 1 &&
                        std::equal(expected.begin() + 1, expected.end(), shape.begin() + 1);
  if (!shape_ok)
    bad("input \"" + name + "\" has shape " + shape_text(shape) + "; this model takes " + shape_text(expected) +
        " (-1: any batch size of at least 1)");
  if (shape[0] > limits.max_images)
    bad("input \"" + name + "\" has shape " + shape_text(shape) + ", a batch of " + std::to_string(shape[0]) +
        " images; a request may carry at most " + std::to_string(limits.max_images) + " (max_request_images)");
  return *count;
}

Tensor tensor_from_raw(std::vector<std::int64_t> shape, std::int64_t elements, std::string_view bytes, const std::string& input_name) {
  // elements <= max_images x one image, far below the overflow of x 4.
  const auto expected = static_cast<std::uint64_t>(elements) * kFp32Bytes;
  if (bytes.size() != expected)
    bad("input \"" + input_name + "\" has " + std::to_string(bytes.size()) + " bytes of data; its shape " + shape_text(shape) +
        " of FP32 needs " + std::to_string(expected));
  Tensor tensor{std::move(shape), std::vector<float>(static_cast<std::size_t>(elements))};
  if (!bytes.empty()) std::memcpy(tensor.data.data(), bytes.data(), bytes.size());
  require_finite(tensor.data, input_name);
  return tensor;
}

Tensor tensor_from_values(std::vector<std::int64_t> shape, std::int64_t elements, const float* values, std::size_t count,
                          const std::string& input_name) {
  if (count != static_cast<std::uint64_t>(elements))
    bad("input \"" + input_name + "\" has " + std::to_string(count) + " values; its shape " + shape_text(shape) + " needs " +
        std::to_string(elements));
  Tensor tensor{std::move(shape), std::vector<float>(values, values + count)};
  require_finite(tensor.data, input_name);
  return tensor;
}

std::vector<std::string> bytes_elements(std::string_view bytes, std::int64_t elements, const std::string& input_name) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (std::int64_t i = 0; i < elements; ++i) {
    if (bytes.size() - at < 4)
      bad("input \"" + input_name + "\": element " + std::to_string(i) + " of " + std::to_string(elements) +
          " has no 4-byte length; the data ends after " + std::to_string(bytes.size()) + " bytes");
    std::uint32_t length = 0;
    std::memcpy(&length, bytes.data() + at, 4);
    at += 4;
    if (length > bytes.size() - at)
      bad("input \"" + input_name + "\": element " + std::to_string(i) + " claims " + std::to_string(length) + " bytes but only " +
          std::to_string(bytes.size() - at) + " remain");
    out.emplace_back(bytes.substr(at, length));
    at += length;
  }
  if (at != bytes.size())
    bad("input \"" + input_name + "\": " + std::to_string(bytes.size() - at) + " bytes remain after its " + std::to_string(elements) +
        " elements");
  return out;
}

RequestedOutput check_requested_output(std::string_view name, std::optional<std::int64_t> classification, bool binary,
                                       const ModelSignature& signature) {
  const bool guard = !signature.ood_output_name.empty() && name == signature.ood_output_name;
  if (name != signature.output_name && !guard)
    bad("unknown output \"" + std::string(name) + "\"; this model's output is \"" + signature.output_name + "\"" +
        (signature.ood_output_name.empty() ? "" : " or \"" + signature.ood_output_name + "\""));
  RequestedOutput requested{std::string(name), 0, binary};
  if (classification) {
    if (*classification < 1) bad("\"classification\" must be a positive integer");
    // The guard output is a score, not class logits: it is always the raw [N,1] tensor.
    if (!guard) requested.classification = static_cast<int>(std::min<std::int64_t>(*classification, signature.classes));
  }
  return requested;
}

std::vector<OutputTensor> output_tensors(const InferRequest& request, const Tensor& logits, const ModelSignature& signature,
                                         const Tensor* ood_score) {
  std::vector<RequestedOutput> outputs = request.outputs;
  if (outputs.empty()) {
    outputs.push_back({signature.output_name, 0, request.binary_outputs});
    if (!signature.ood_output_name.empty()) outputs.push_back({signature.ood_output_name, 0, request.binary_outputs});
  }
  const std::int64_t rows = logits.shape.at(0);
  const auto classes = static_cast<std::size_t>(logits.shape.at(1));
  std::vector<OutputTensor> tensors;
  for (const RequestedOutput& output : outputs) {
    OutputTensor tensor;
    tensor.name = output.name;
    tensor.binary = output.binary;
    if (!signature.ood_output_name.empty() && output.name == signature.ood_output_name) {
      // The safety guard's score per image, [N,1].
      tensor.datatype = "FP32";
      tensor.shape = ood_score ? ood_score->shape : std::vector<std::int64_t>{rows, 1};
      if (ood_score) tensor.fp32 = ood_score->data;
    } else if (output.classification == 0) {
      tensor.datatype = "FP32";
      tensor.shape = logits.shape;
      tensor.fp32 = logits.data;
    } else {
      // Triton's classification output: per row, the k largest values as "value:index:label".
      for (std::int64_t r = 0; r < rows; ++r) {
        const float* row = logits.data.data() + static_cast<std::size_t>(r) * classes;
        std::vector<std::size_t> order(classes);
        std::iota(order.begin(), order.end(), std::size_t{0});
        std::stable_sort(order.begin(), order.end(), [row](std::size_t a, std::size_t b) { return row[a] > row[b]; });
        for (int k = 0; k < output.classification; ++k) {
          const std::size_t i = order[static_cast<std::size_t>(k)];
          tensor.bytes.push_back(top_entry(row[i], i, signature.labels.at(i)));
        }
      }
      tensor.datatype = "BYTES";
      tensor.shape = {rows, output.classification};
    }
    tensors.push_back(std::move(tensor));
  }
  return tensors;
}

std::string raw_bytes(const OutputTensor& output) {
  std::string out;
  if (output.datatype == "FP32") {
    out.resize(output.fp32.size() * sizeof(float));
    if (!out.empty()) std::memcpy(out.data(), output.fp32.data(), out.size());
    return out;
  }
  for (const std::string& element : output.bytes) {
    const auto length = static_cast<std::uint32_t>(element.size());
    char prefix[4];
    std::memcpy(prefix, &length, 4);
    out.append(prefix, 4);
    out += element;
  }
  return out;
}

// --- REST --------------------------------------------------------------------------------------

json parse_request_document(std::string_view body) {
  json document = json::parse(body, nullptr, false);
  if (document.is_discarded()) bad("the request body is not valid JSON");
  if (!document.is_object()) bad("the request body must be a JSON object with \"inputs\"");
  return document;
}

RequestBody split_request_body(std::string_view body, const std::optional<std::string>& header_length) {
  if (!header_length) return {parse_request_document(body), {}};
  std::uint64_t length = 0;
  const char* end = header_length->data() + header_length->size();
  const auto [stop, error] = std::from_chars(header_length->data(), end, length);
  if (header_length->empty() || error != std::errc{} || stop != end)
    bad("Inference-Header-Content-Length \"" + *header_length + "\" is not a byte count");
  if (length > body.size())
    bad("Inference-Header-Content-Length is " + *header_length + " but the body has only " + std::to_string(body.size()) + " bytes");
  return {parse_request_document(body.substr(0, length)), body.substr(length)};
}

std::string requested_runtime(const json& document) {
  const json* parameters = find(document, "parameters");
  const json* runtime = parameters && parameters->is_object() ? find(*parameters, "runtime") : nullptr;
  if (!runtime) return "";
  if (!runtime->is_string()) bad("parameter \"runtime\" must be a string");
  return runtime->get<std::string>();
}

InferRequest parse_infer_request(std::string_view body, const ModelSignature& signature, const TensorLimits& limits) {
  return read_infer_request(parse_request_document(body), {}, signature, limits);
}

InferRequest read_infer_request(const json& document, std::string_view binary, const ModelSignature& signature,
                                const TensorLimits& limits) {
  InferRequest request;

  if (const json* id = find(document, "id")) {
    if (!id->is_string()) bad("\"id\" must be a string");
    request.id = id->get<std::string>();
  }
  if (const json* parameters = parameters_of(document, "the request's")) {
    request.runtime = requested_runtime(document);
    request.binary_outputs = flag(parameters, "binary_data_output", "the request's");
  }

  const json* inputs = find(document, "inputs");
  if (!inputs || !inputs->is_array() || inputs->empty()) bad("\"inputs\" must be a non-empty array");
  if (inputs->size() != 1)
    bad("this model takes one input, \"" + signature.input_name + "\"; the request has " + std::to_string(inputs->size()));
  const json& input = inputs->front();
  if (!input.is_object()) bad("each input must be an object");
  const json* name = find(input, "name");
  if (!name || !name->is_string()) bad("the input has no \"name\"");
  const json* datatype = find(input, "datatype");
  if (datatype && !datatype->is_string()) bad("the input's \"datatype\" must be a string");
  const json* shape = find(input, "shape");
  if (!shape || !shape->is_array()) bad("input \"" + name->get<std::string>() + "\" has no \"shape\"");
  InputDeclaration declared{
      name->get_ref<const std::string&>(), datatype ? std::string_view(datatype->get_ref<const std::string&>()) : std::string_view{}, {}};
  for (const json& d : *shape) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0) bad("\"shape\" must list non-negative integers");
    declared.shape.push_back(d.get<std::int64_t>());
  }
  const std::int64_t count = check_input_declaration(declared, signature, limits);
  const bool images = declared.name == signature.image_input_name;
  const std::string& input_name = images ? signature.image_input_name : signature.input_name;

  const json* input_parameters = parameters_of(input, "input \"" + input_name + "\"");
  const json* binary_size = input_parameters ? find(*input_parameters, "binary_data_size") : nullptr;
  const json* data = find(input, "data");
  if (images) {
    // Photographs are bytes, not text: JSON strings cannot carry them (the protocol has no
    // base64 rule), so they come as binary data.
    if (!binary_size)
      bad("input \"" + input_name +
          "\" must be sent as binary data (parameters.binary_data_size and "
          "Inference-Header-Content-Length), each photograph a 4-byte little-endian length and its bytes");
    if (data) bad("input \"" + input_name + "\" has both \"data\" and \"binary_data_size\"");
    if (!binary_size->is_number_unsigned() || binary_size->get<std::uint64_t>() != binary.size())
      bad("input \"" + input_name + "\" has binary_data_size " + binary_size->dump() + " but " + std::to_string(binary.size()) +
          " bytes follow the JSON header (Inference-Header-Content-Length)");
    request.encoded_images = bytes_elements(binary, count, input_name);
    request.input.shape = std::move(declared.shape);
  } else if (binary_size) {
    // The binary tensor extension: this input's bytes follow the JSON header, in input order.
    if (!binary_size->is_number_unsigned()) bad("input \"" + input_name + "\": \"binary_data_size\" must be a non-negative integer");
    if (data) bad("input \"" + input_name + "\" has both \"data\" and \"binary_data_size\"");
    const std::uint64_t size = binary_size->get<std::uint64_t>();
    if (size > binary.size())
      bad("input \"" + input_name + "\" has binary_data_size " + std::to_string(size) + " but only " + std::to_string(binary.size()) +
          " bytes follow the JSON header (Inference-Header-Content-Length)");
    if (size != binary.size())
      bad(std::to_string(binary.size()) + " bytes follow the JSON header but the inputs' binary_data_size add up to " +
          std::to_string(size));
    request.input = tensor_from_raw(std::move(declared.shape), count, binary.substr(0, size), input_name);
  } else {
    if (!binary.empty()) bad(std::to_string(binary.size()) + " bytes follow the JSON header but no input has \"binary_data_size\"");
    if (!data || !data->is_array()) bad("input \"" + input_name + "\" has no \"data\" array (nor \"binary_data_size\")");
    const std::int64_t sent = count_values(*data, 0);
    if (sent != count)
      bad("input \"" + input_name + "\" has " + std::to_string(sent) + " values; its shape " + shape_text(declared.shape) + " needs " +
          std::to_string(count));
    request.input.shape = std::move(declared.shape);
    request.input.data.reserve(static_cast<std::size_t>(count));
    flatten(*data, request.input.data, input_name);
  }

  if (const json* outputs = find(document, "outputs")) {
    if (!outputs->is_array()) bad("\"outputs\" must be an array");
    for (const json& output : *outputs) {
      const json* output_name = output.is_object() ? find(output, "name") : nullptr;
      if (!output_name || !output_name->is_string()) bad("each requested output needs a \"name\"");
      const json* parameters = parameters_of(output, "output \"" + output_name->get<std::string>() + "\"");
      std::optional<std::int64_t> classification;
      if (const json* k = parameters ? find(*parameters, "classification") : nullptr) {
        if (!k->is_number_integer()) bad("\"classification\" must be a positive integer");
        classification = k->get<std::int64_t>();
      }
      // An output's own binary_data decides; without it, the request's binary_data_output.
      const bool binary_output =
          parameters && parameters->contains("binary_data") ? flag(parameters, "binary_data", "output") : request.binary_outputs;
      request.outputs.push_back(
          check_requested_output(output_name->get_ref<const std::string&>(), classification, binary_output, signature));
    }
  }
  return request;
}

namespace {

nlohmann::ordered_json response_document(const std::string& model_name, const std::string& model_version, const InferRequest& request,
                                         const std::vector<OutputTensor>& outputs) {
  nlohmann::ordered_json response;
  response["model_name"] = model_name;
  response["model_version"] = model_version;
  if (request.id) response["id"] = *request.id;
  response["outputs"] = nlohmann::ordered_json::array();
  for (const OutputTensor& output : outputs) {
    nlohmann::ordered_json tensor;
    tensor["name"] = output.name;
    tensor["datatype"] = output.datatype;
    tensor["shape"] = output.shape;
    if (output.binary) {
      const std::size_t size = output.datatype == "FP32" ? output.fp32.size() * sizeof(float) : raw_bytes(output).size();
      tensor["parameters"] = {{"binary_data_size", size}};
    } else if (output.datatype == "FP32") {
      tensor["data"] = output.fp32;
    } else {
      tensor["data"] = output.bytes;
    }
    response["outputs"].push_back(std::move(tensor));
  }
  return response;
}

}  // namespace

nlohmann::ordered_json infer_response(const std::string& model_name, const std::string& model_version, const InferRequest& request,
                                      const Tensor& logits, const ModelSignature& signature, const Tensor* ood_score) {
  return response_document(model_name, model_version, request, output_tensors(request, logits, signature, ood_score));
}

ResponseBody infer_response_body(const std::string& model_name, const std::string& model_version, const InferRequest& request,
                                 const Tensor& logits, const ModelSignature& signature, const Tensor* ood_score) {
  const std::vector<OutputTensor> outputs = output_tensors(request, logits, signature, ood_score);
  ResponseBody out;
  out.body = response_document(model_name, model_version, request, outputs).dump();
  if (std::none_of(outputs.begin(), outputs.end(), [](const OutputTensor& o) { return o.binary; })) return out;
  out.header_length = out.body.size();
  for (const OutputTensor& output : outputs)
    if (output.binary) out.body += raw_bytes(output);
  return out;
}

// The runtime's own name for the protocol's "platform" (its descriptor), or its name.
std::string platform_of(std::string_view runtime) {
  const RuntimeDescriptor* descriptor = find_runtime(runtime);
  return std::string(descriptor ? descriptor->platform : runtime);
}

nlohmann::ordered_json model_metadata(const std::string& name, const std::vector<std::string>& versions, std::string_view runtime,
                                      const ModelSignature& signature) {
  nlohmann::ordered_json metadata;
  metadata["name"] = name;
  metadata["versions"] = versions;
  metadata["platform"] = platform_of(runtime);
  // One of the two per request: the preprocessed tensor, or encoded photographs.
  metadata["inputs"] = {{{"name", signature.input_name}, {"datatype", "FP32"}, {"shape", signature.input_shape}},
                        {{"name", signature.image_input_name}, {"datatype", "BYTES"}, {"shape", {-1}}}};
  metadata["outputs"] = {{{"name", signature.output_name}, {"datatype", "FP32"}, {"shape", {-1, signature.classes}}}};
  if (!signature.ood_output_name.empty())
    metadata["outputs"].push_back({{"name", signature.ood_output_name}, {"datatype", "FP32"}, {"shape", {-1, 1}}});
  return metadata;
}

}  // namespace dermcds::service
