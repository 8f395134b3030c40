// Submitting work to a model's batcher on behalf of one HTTP request.
#include <chrono>

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
auto submit_counted(const LoadedVersion& version, const ServedInstance& instance, Input input, ServiceMetrics& metrics,
                    Deadline deadline) {
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
  throw Error(ErrorCode::kResourceExhausted, "model " + version.name() + "/" + version.version() +
                                                 " has a full queue; retry shortly");
}

ClassifiedImage classify_in_batch(const LoadedVersion& version, const ServedInstance& instance, PreparedImage image,
                                  const ServiceContext& context, Deadline deadline) {
  auto future = submit_counted(version, instance, std::move(image), context.metrics, deadline);
  return await(future, deadline, context.config.request_timeout_ms);
}

InferredTensor infer_in_batch(const LoadedVersion& version, const ServedInstance& instance, Tensor images,
                              const ServiceContext& context, Deadline deadline) {
  auto future = submit_counted(version, instance, std::move(images), context.metrics, deadline);
  return await(future, deadline, context.config.request_timeout_ms);
}

}  // namespace dermcds::service
