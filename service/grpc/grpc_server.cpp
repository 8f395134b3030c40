#include "grpc_server.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "dermcds/error.hpp"
#include "grpc_status.hpp"
#include "health.grpc.pb.h"
#include "open_inference.grpc.pb.h"
#include "routes.hpp"

namespace dermcds::service {

namespace {

using inference::GRPCInferenceService;
using inference::InferParameter;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::kInvalidArgument, message); }

// With --allow-unverified-models every HTTP answer carries X-Dermcds-Unverified-Models: allowed
// (service.cpp); every gRPC answer carries the same in its initial metadata (lower case, as gRPC
// requires).
void mark_unverified(grpc::ServerContext* call, const ServiceContext& context) {
  if (context.config.allow_unverified_models) call->AddInitialMetadata("x-dermcds-unverified-models", "allowed");
}

// Runs `body`, translating what it throws into the call's status: the module edge for errors.
template <typename Body>
grpc::Status answer(Body&& body) {
  try {
    body();
    return grpc::Status::OK;
  } catch (...) {
    // Errors as they are; filesystem and system errors by their code, bad_alloc as
    // kResourceExhausted, anything else kInternal (error.hpp), as the HTTP routes do.
    return grpc_status_for(current_exception_as_error());
  }
}

std::optional<std::int64_t> int_parameter(const google::protobuf::Map<std::string, InferParameter>& parameters, const std::string& key) {
  const auto it = parameters.find(key);
  if (it == parameters.end()) return std::nullopt;
  switch (it->second.parameter_choice_case()) {
    case InferParameter::kInt64Param:
      return it->second.int64_param();
    case InferParameter::kUint64Param:
      return static_cast<std::int64_t>(std::min<std::uint64_t>(it->second.uint64_param(), INT64_MAX));
    default:
      bad("parameter \"" + key + "\" must be an integer (int64_param)");
  }
}

std::string string_parameter(const google::protobuf::Map<std::string, InferParameter>& parameters, const std::string& key) {
  const auto it = parameters.find(key);
  if (it == parameters.end()) return "";
  if (it->second.parameter_choice_case() != InferParameter::kStringParam) bad("parameter \"" + key + "\" must be a string (string_param)");
  return it->second.string_param();
}

bool has_other_contents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() || c.uint_contents_size() || c.uint64_contents_size() ||
         c.fp64_contents_size() || c.bytes_contents_size();
}

// The request, checked with the rules every transport shares (inference_protocol.hpp).
InferRequest read_grpc_request(const ModelInferRequest& in, const ModelSignature& signature, const TensorLimits& limits) {
  InferRequest request;
  if (!in.id().empty()) request.id = in.id();
  request.runtime = string_parameter(in.parameters(), "runtime");
  if (in.inputs_size() != 1)
    bad("this model takes one input, \"" + signature.input_name + "\"; the request has " + std::to_string(in.inputs_size()));
  const bool raw = in.raw_input_contents_size() > 0;
  if (raw && in.raw_input_contents_size() != in.inputs_size())
    bad("raw_input_contents has " + std::to_string(in.raw_input_contents_size()) + " entries for " + std::to_string(in.inputs_size()) +
        " input");
  const auto& input = in.inputs(0);
  InputDeclaration declared{input.name(), input.datatype(), {input.shape().begin(), input.shape().end()}};
  const std::int64_t count = check_input_declaration(declared, signature, limits);
  if (declared.name == signature.image_input_name) {
    // Encoded photographs: raw (length-prefixed) or one bytes_contents element each.
    const auto& c = input.contents();
    const std::string& name = signature.image_input_name;
    if (c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() || c.uint_contents_size() || c.uint64_contents_size() ||
        c.fp32_contents_size() || c.fp64_contents_size())
      bad("input \"" + name + "\" is BYTES; its photographs belong in bytes_contents or raw_input_contents");
    if (raw) {
      if (c.bytes_contents_size()) bad("input \"" + name + "\" has both contents and raw_input_contents");
      request.encoded_images = bytes_elements(in.raw_input_contents(0), count, name);
    } else {
      if (c.bytes_contents_size() != count)
        bad("input \"" + name + "\" has " + std::to_string(c.bytes_contents_size()) + " bytes_contents elements; its shape [" +
            std::to_string(count) + "] needs " + std::to_string(count));
      request.encoded_images.assign(c.bytes_contents().begin(), c.bytes_contents().end());
    }
    request.input.shape = std::move(declared.shape);
  } else {
    if (has_other_contents(input.contents()))
      bad("input \"" + signature.input_name + "\" is FP32; its values belong in fp32_contents or raw_input_contents");
    if (raw) {
      if (input.contents().fp32_contents_size()) bad("input \"" + signature.input_name + "\" has both contents and raw_input_contents");
      request.input = tensor_from_raw(std::move(declared.shape), count, in.raw_input_contents(0), signature.input_name);
    } else {
      const auto& values = input.contents().fp32_contents();
      request.input = tensor_from_values(std::move(declared.shape), count, values.data(), static_cast<std::size_t>(values.size()),
                                         signature.input_name);
    }
  }
  for (const auto& output : in.outputs())
    request.outputs.push_back(check_requested_output(output.name(), int_parameter(output.parameters(), "classification"), raw, signature));
  // Raw in, raw out (the outputs' `binary` flag): a client that sends raw bytes reads them.
  request.binary_outputs = raw;
  return request;
}

void write_grpc_response(const ProtocolAnswer& answer, ModelInferResponse& out) {
  out.set_model_name(answer.version->name());
  out.set_model_version(answer.version->version());
  if (answer.request.id) out.set_id(*answer.request.id);
  for (const OutputTensor& tensor : output_tensors(answer.request, answer.answer.logits, answer.signature, &answer.answer.ood_score)) {
    auto* output = out.add_outputs();
    output->set_name(tensor.name);
    output->set_datatype(tensor.datatype);
    for (const std::int64_t d : tensor.shape) output->add_shape(d);
    if (tensor.binary) {
      out.add_raw_output_contents(raw_bytes(tensor));
    } else if (tensor.datatype == "FP32") {
      output->mutable_contents()->mutable_fp32_contents()->Add(tensor.fp32.begin(), tensor.fp32.end());
    } else {
      for (const std::string& s : tensor.bytes) output->mutable_contents()->add_bytes_contents(s);
    }
  }
}

class InferenceService final : public GRPCInferenceService::Service {
 public:
  explicit InferenceService(ServiceContext& context) : context_(context) {}

  grpc::Status ServerLive(grpc::ServerContext* call, const inference::ServerLiveRequest*, inference::ServerLiveResponse* out) override {
    mark_unverified(call, context_);
    out->set_live(true);
    return grpc::Status::OK;
  }

  grpc::Status ServerReady(grpc::ServerContext* call, const inference::ServerReadyRequest*, inference::ServerReadyResponse* out) override {
    mark_unverified(call, context_);
    out->set_ready(context_.ready());
    return grpc::Status::OK;
  }

  grpc::Status ModelReady(grpc::ServerContext* call, const inference::ModelReadyRequest* in, inference::ModelReadyResponse* out) override {
    mark_unverified(call, context_);
    return answer([&] {
      const std::optional<bool> ready = context_.models.model_ready(in->name(), in->version());
      if (!ready)
        throw Error(ErrorCode::kNotFound,
                    "unknown model \"" + in->name() + "\"" + (in->version().empty() ? "" : " version " + in->version()));
      out->set_ready(*ready && !context_.shutting_down.load());
    });
  }

  grpc::Status ServerMetadata(grpc::ServerContext* call, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* out) override {
    mark_unverified(call, context_);
    out->set_name("pms-derm-cds");
    out->set_version(DERMCDS_VERSION);
    out->add_extensions("classification");
    return grpc::Status::OK;
  }

  grpc::Status ModelMetadata(grpc::ServerContext* call, const inference::ModelMetadataRequest* in,
                             inference::ModelMetadataResponse* out) override {
    mark_unverified(call, context_);
    return answer([&] {
      // One document for every transport (routes_v2.cpp), copied into the message.
      const auto metadata = served_model_metadata(context_, in->name(), in->version());
      out->set_name(metadata["name"].get<std::string>());
      for (const auto& v : metadata["versions"]) out->add_versions(v.get<std::string>());
      out->set_platform(metadata["platform"].get<std::string>());
      for (const char* side : {"inputs", "outputs"})
        for (const auto& t : metadata[side]) {
          auto* tensor = std::string_view(side) == "inputs" ? out->add_inputs() : out->add_outputs();
          tensor->set_name(t["name"].get<std::string>());
          tensor->set_datatype(t["datatype"].get<std::string>());
          for (const auto& d : t["shape"]) tensor->add_shape(d.get<std::int64_t>());
        }
    });
  }

  grpc::Status ModelInfer(grpc::ServerContext* call, const ModelInferRequest* in, ModelInferResponse* out) override {
    mark_unverified(call, context_);
    return answer([&] {
      // The earlier of the server's own time limit and the client's deadline.
      const Deadline deadline = std::min(request_deadline(context_.config), call_deadline(*call));
      const ProtocolAnswer result = run_protocol_inference(
          context_, "grpc", in->model_name(), in->model_version(), string_parameter(in->parameters(), "runtime"),
          [&](const ModelSignature& signature, const TensorLimits& limits) { return read_grpc_request(*in, signature, limits); }, deadline);
      write_grpc_response(result, *out);
    });
  }

 private:
  static Deadline call_deadline(const grpc::ServerContext& call) {
    const auto client = call.deadline();  // system_clock; "infinite" when the client set none
    const auto now = std::chrono::system_clock::now();
    if (client - now > std::chrono::hours(24)) return Deadline::max();
    return std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(client - now);
  }

  ServiceContext& context_;
};

// grpc.health.v1: answers from the same readiness as /v2/health/ready, at the moment it is
// asked (models load and unload through the admin API at any time).
class HealthService final : public grpc::health::v1::Health::Service {
 public:
  using Response = grpc::health::v1::HealthCheckResponse;
  explicit HealthService(ServiceContext& context) : context_(context) {}

  grpc::Status Check(grpc::ServerContext* call, const grpc::health::v1::HealthCheckRequest* in, Response* out) override {
    mark_unverified(call, context_);
    const auto status = status_of(in->service());
    if (!status) return {grpc::StatusCode::NOT_FOUND, "unknown service \"" + in->service() + "\""};
    out->set_status(*status);
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* call, const grpc::health::v1::HealthCheckRequest* in,
                     grpc::ServerWriter<Response>* writer) override {
    mark_unverified(call, context_);
    // The standard's Watch: the status now, then every change. Polled: readiness is a predicate
    // over the model manager, with no event to wait on; a probe is not a hot path.
    std::optional<Response::ServingStatus> last;
    while (!call->IsCancelled()) {
      const Response::ServingStatus now = status_of(in->service()).value_or(Response::SERVICE_UNKNOWN);
      if (now != last) {
        Response response;
        response.set_status(now);
        if (!writer->Write(response)) break;
        last = now;
      }
      if (context_.shutting_down.load() && now != Response::SERVING) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return grpc::Status::OK;
  }

 private:
  std::optional<Response::ServingStatus> status_of(const std::string& service) const {
    if (!service.empty() && service != GRPCInferenceService::service_full_name()) return std::nullopt;
    return context_.ready() ? Response::SERVING : Response::NOT_SERVING;
  }

  ServiceContext& context_;
};

}  // namespace

struct GrpcServer::Impl {
  Impl(ServiceContext& context, std::string host, int port)
      : context(context), host(std::move(host)), port(port), inference(context), health(context) {}

  ServiceContext& context;
  std::string host;
  int port;
  InferenceService inference;
  HealthService health;
  std::mutex mutex;  // guards server's start against stop, and the rest below
  std::unique_ptr<grpc::Server> server;
  bool stop_requested = false;
  std::thread stopper;  // runs Shutdown(), which blocks until the calls in progress are done

  void begin_shutdown(std::chrono::milliseconds grace) {  // under mutex, with a server
    stopper = std::thread([server = server.get(), grace] {
      // New calls are refused at once; those in progress finish, or are cancelled at the deadline.
      server->Shutdown(std::chrono::system_clock::now() + grace);
    });
  }
};

GrpcServer::GrpcServer(ServiceContext& context, std::string host, int port)
    : impl_(std::make_unique<Impl>(context, std::move(host), port)) {}

GrpcServer::~GrpcServer() {
  stop(std::chrono::milliseconds(0));
  wait();
}

int GrpcServer::start() {
  grpc::ServerBuilder builder;
  const std::string address =
      (impl_->host.find(':') != std::string::npos ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port);
  int bound = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound);
  // The configured body limit applies to gRPC messages as it does to HTTP bodies.
  const auto limit = std::min<std::uint64_t>(impl_->context.config.max_body_bytes, INT32_MAX);
  builder.SetMaxReceiveMessageSize(static_cast<int>(limit));
  builder.RegisterService(&impl_->inference);
  builder.RegisterService(&impl_->health);
  std::lock_guard lock(impl_->mutex);
  if (impl_->server) throw Error(ErrorCode::kInternal, "the gRPC server was started twice");
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || bound == 0) {
    impl_->server.reset();
    throw Error(ErrorCode::kIoError, "cannot listen for gRPC on " + address + " (in use, or not an address of this machine)");
  }
  if (impl_->stop_requested) impl_->begin_shutdown(std::chrono::milliseconds(0));  // stopped before it started
  return bound;
}

void GrpcServer::stop(std::chrono::milliseconds grace) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->stop_requested) return;
  impl_->stop_requested = true;
  if (impl_->server) impl_->begin_shutdown(grace);
}

void GrpcServer::wait() {
  grpc::Server* server = nullptr;
  {
    std::lock_guard lock(impl_->mutex);
    server = impl_->server.get();
  }
  if (server) server->Wait();  // returns once Shutdown() has finished
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopper.joinable()) impl_->stopper.join();
}

}  // namespace dermcds::service
