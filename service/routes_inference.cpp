// Submitting work to a model's batcher on behalf of one HTTP request.
#include <chrono>
#include <span>

#include "dermcds/error.hpp"
#include "routes.hpp"

namespace dermcds::service {

namespace {

template <typename Answer>
Answer await(std::future<Answer>& future, Deadline deadline, int timeout_ms) {
  if (future.wait_until(deadline) == std::future_status::timeout)
    throw Error(ErrorCode::kDeadlineExceeded,
                "no answer within the request time limit of " + std::to_string(timeout_ms) + " ms; the service is overloaded");
  return future.get();
}

template <typename Input>
auto submit_counted(const LoadedVersion& version, const ServedInstance& instance, Input input, ServiceMetrics& metrics, Deadline deadline) {
  try {
    return instance.batcher->submit(std::move(input), deadline);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kResourceExhausted) metrics.queue_rejections.increment({version.name(), version.version()});
    throw;
  }
}

}  // namespace

Deadline request_deadline(const ServiceConfig& config) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(config.request_timeout_ms);
}

void require_queue_space(const LoadedVersion& version, const ServedInstance& instance, ServiceMetrics& metrics) {
  if (instance.batcher->accepting()) return;
  metrics.queue_rejections.increment({version.name(), version.version()});
  throw Error(ErrorCode::kResourceExhausted, "model " + version.name() + "/" + version.version() + " has a full queue; retry shortly");
}

ClassifiedImage classify_in_batch(const LoadedVersion& version, const ServedInstance& instance, PreparedImage image,
                                  const ServiceContext& context, Deadline deadline) {
  auto future = submit_counted(version, instance, std::move(image), context.metrics, deadline);
  return await(future, deadline, context.config.request_timeout_ms);
}

InferredTensor infer_in_batch(const LoadedVersion& version, const ServedInstance& instance, Tensor images, const ServiceContext& context,
                              Deadline deadline) {
  auto future = submit_counted(version, instance, std::move(images), context.metrics, deadline);
  return await(future, deadline, context.config.request_timeout_ms);
}

ProtocolAnswer run_protocol_inference(const ServiceContext& context, std::string_view protocol, const std::string& model,
                                      const std::string& version, const std::string& runtime, const ProtocolReader& read,
                                      Deadline deadline) {
  const auto started = std::chrono::steady_clock::now();
  const std::string protocol_label(protocol);
  // Labelled with served models' names only: a client's arbitrary names would grow the metrics.
  std::string model_label = "(unknown)";
  try {
    ProtocolAnswer out;
    out.version = context.models.serving(model, version);
    model_label = out.version->name();
    const ServedInstance& instance = out.version->instance(runtime);
    out.runtime = instance.classifier->backend_info().runtime;
    out.signature = signature_of(out.version->manifest(), instance.classifier->input_layout());
    // Every check, sizes first, happens here, on the caller's thread: a request that joins a
    // batch is one the model can run, so it cannot fail the others in it.
    out.request = read(out.signature, TensorLimits{context.config.max_request_images});
    require_queue_space(*out.version, instance, context.metrics);
    if (!out.request.encoded_images.empty()) {
      // image_bytes: decoded and preprocessed exactly as /v1/classify does, into the tensor.
      Tensor& tensor = out.request.input;
      tensor.shape = out.signature.input_shape;
      tensor.shape[0] = static_cast<std::int64_t>(out.request.encoded_images.size());
      for (const std::string& encoded : out.request.encoded_images) {
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(encoded.data());
        const PreparedImage prepared = instance.classifier->prepare(std::span<const std::uint8_t>(bytes, encoded.size()));
        tensor.data.insert(tensor.data.end(), prepared.input.begin(), prepared.input.end());
      }
      out.request.encoded_images.clear();
    }
    out.answer = infer_in_batch(*out.version, instance, std::move(out.request.input), context, deadline);
    context.metrics.protocol_requests.increment({model_label, protocol_label, "ok"});
    context.metrics.protocol_duration.observe({protocol_label},
                                              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return out;
  } catch (const Error& e) {
    context.metrics.protocol_requests.increment({model_label, protocol_label, std::string(to_string(e.code()))});
    throw;
  }
}

}  // namespace dermcds::service
