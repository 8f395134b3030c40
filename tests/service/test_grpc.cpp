// The Open Inference Protocol over gRPC, called by a small C++ client generated from the
// project's proto: health, metadata, inference with typed and raw contents (the same numbers as
// REST's JSON answer), the error statuses, grpc.health.v1, and SIGTERM finishing calls in
// progress. Like test_serving.cpp, no assertion depends on timing: where calls must be waiting,
// the batch window is long and the test watches the queue depth in /metrics.
#include <csignal>
#include <cstring>
#include <fstream>
#include <future>
#include <limits>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "dermcds/classifier.hpp"
#include "health.grpc.pb.h"
#include "open_inference.grpc.pb.h"
#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;

std::filesystem::path grpc_port_file() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  // start_server() empties this directory before the server starts, so the file is the server's.
  return work_dir() / "service-runs" / (std::string(info->test_suite_name()) + "." + info->name()) / "grpc.port";
}

struct GrpcServer {
  std::unique_ptr<ServerProcess> process;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<GRPCInferenceService::Stub> stub;
};

GrpcServer start_grpc_server(StartOptions options) {
  options.arguments.insert(options.arguments.end(), {"--grpc-port", "0", "--grpc-port-file", grpc_port_file().string()});
  GrpcServer server;
  server.process = start_server(options);
  const std::string port = file_text(grpc_port_file());
  server.channel = grpc::CreateChannel("127.0.0.1:" + port.substr(0, port.find('\n')), grpc::InsecureChannelCredentials());
  server.stub = GRPCInferenceService::NewStub(server.channel);
  return server;
}

const std::vector<std::string> kTiny = {"--model", "tiny", "--default-model", "tiny"};

GrpcServer start_grpc_server(std::vector<std::string> arguments) {
  return start_grpc_server(StartOptions{fixture_repository(), std::move(arguments), {}, true});
}

Tensor prepared(const std::vector<std::filesystem::path>& images) {
  ClassifierOptions options;
  options.package = fixture_repository() / "tiny" / "1";
  options.execution.provider = "cpu";
  const auto classifier = Classifier::create(options);
  Tensor batch;
  batch.shape = {static_cast<std::int64_t>(images.size()), 3, 64, 64};
  for (const auto& image : images) {
    const PreparedImage p = classifier->prepare(read_file_bytes(image));
    batch.data.insert(batch.data.end(), p.input.begin(), p.input.end());
  }
  return batch;
}

ModelInferRequest infer_request(const Tensor& tensor, bool raw) {
  ModelInferRequest request;
  request.set_model_name("tiny");
  request.set_id("case-19");
  auto* input = request.add_inputs();
  input->set_name("image");
  input->set_datatype("FP32");
  for (const auto d : tensor.shape) input->add_shape(d);
  if (raw) {
    std::string bytes(tensor.data.size() * sizeof(float), '\0');
    std::memcpy(bytes.data(), tensor.data.data(), bytes.size());
    request.add_raw_input_contents(std::move(bytes));
  } else {
    input->mutable_contents()->mutable_fp32_contents()->Add(tensor.data.begin(), tensor.data.end());
  }
  return request;
}

grpc::Status infer(const GrpcServer& server, const ModelInferRequest& request, ModelInferResponse& response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return server.stub->ModelInfer(&context, request, &response);
}

grpc::StatusCode infer_code(const GrpcServer& server, const ModelInferRequest& request, std::string* message = nullptr) {
  ModelInferResponse response;
  const grpc::Status status = infer(server, request, response);
  if (message) *message = status.error_message();
  return status.error_code();
}

TEST(Grpc, HealthAndMetadata) {
  const GrpcServer server = start_grpc_server(kTiny);
  {
    grpc::ClientContext context;
    inference::ServerLiveResponse live;
    ASSERT_TRUE(server.stub->ServerLive(&context, {}, &live).ok());
    EXPECT_TRUE(live.live());
  }
  {
    grpc::ClientContext context;
    inference::ServerReadyResponse ready;
    ASSERT_TRUE(server.stub->ServerReady(&context, {}, &ready).ok());
    EXPECT_TRUE(ready.ready());
  }
  auto model_ready = [&](const std::string& name, const std::string& version, bool& ready) {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name(name);
    request.set_version(version);
    inference::ModelReadyResponse response;
    const grpc::Status status = server.stub->ModelReady(&context, request, &response);
    ready = response.ready();
    return status.error_code();
  };
  bool ready = false;
  EXPECT_EQ(model_ready("tiny", "", ready), grpc::StatusCode::OK);
  EXPECT_TRUE(ready);
  EXPECT_EQ(model_ready("tiny", "2", ready), grpc::StatusCode::OK);  // in the repository, not loaded
  EXPECT_FALSE(ready);
  EXPECT_EQ(model_ready("nonexistent", "", ready), grpc::StatusCode::NOT_FOUND);

  {
    grpc::ClientContext context;
    inference::ServerMetadataResponse metadata;
    ASSERT_TRUE(server.stub->ServerMetadata(&context, {}, &metadata).ok());
    EXPECT_EQ(metadata.name(), "pms-derm-cds");
    EXPECT_FALSE(metadata.version().empty());
  }
  // The same model metadata as REST's.
  const json rest = body_of(client_for(*server.process)->Get("/v2/models/tiny"));
  grpc::ClientContext context;
  inference::ModelMetadataRequest request;
  request.set_name("tiny");
  inference::ModelMetadataResponse metadata;
  ASSERT_TRUE(server.stub->ModelMetadata(&context, request, &metadata).ok());
  EXPECT_EQ(metadata.name(), rest["name"]);
  EXPECT_EQ(metadata.platform(), rest["platform"]);
  ASSERT_EQ(metadata.versions_size(), 1);
  EXPECT_EQ(metadata.versions(0), "1");
  ASSERT_EQ(metadata.inputs_size(), 2);
  EXPECT_EQ(metadata.inputs(0).name(), "image");
  EXPECT_EQ(metadata.inputs(1).name(), "image_bytes");
  EXPECT_EQ(metadata.inputs(1).datatype(), "BYTES");
  EXPECT_EQ(metadata.inputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<std::int64_t>(metadata.inputs(0).shape().begin(), metadata.inputs(0).shape().end()),
            rest["inputs"][0]["shape"].get<std::vector<std::int64_t>>());
  ASSERT_EQ(metadata.outputs_size(), 1);
  EXPECT_EQ(metadata.outputs(0).name(), "logits");

  grpc::ClientContext unknown_context;
  request.set_name("unknown");
  EXPECT_EQ(server.stub->ModelMetadata(&unknown_context, request, &metadata).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(Grpc, StandardHealthServiceFollowsReadiness) {
  const GrpcServer server = start_grpc_server(kTiny);
  const auto health = grpc::health::v1::Health::NewStub(server.channel);
  for (const char* service : {"", "inference.GRPCInferenceService"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("no.such.Service");
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_EQ(health->Check(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(Grpc, TypedAndRawInferenceEqualRestsJsonAnswer) {
  const GrpcServer server = start_grpc_server(kTiny);
  const auto photos = real_photographs();
  const Tensor input = prepared({photos[0], photos[2]});
  const json body = {{"inputs", {{{"name", "image"}, {"shape", input.shape}, {"datatype", "FP32"}, {"data", input.data}}}}};
  const json rest = body_of(client_for(*server.process)->Post("/v2/models/tiny/infer", body.dump(), "application/json"));
  const auto expected = rest["outputs"][0]["data"].get<std::vector<float>>();
  ASSERT_EQ(expected.size(), 16u);
  EXPECT_NE(expected[0], expected[8]);  // two photographs, two answers

  ModelInferResponse typed;
  ASSERT_TRUE(infer(server, infer_request(input, false), typed).ok());
  EXPECT_EQ(typed.model_name(), "tiny");
  EXPECT_EQ(typed.model_version(), "1");
  EXPECT_EQ(typed.id(), "case-19");
  ASSERT_EQ(typed.outputs_size(), 1);
  EXPECT_EQ(typed.outputs(0).name(), "logits");
  EXPECT_EQ(typed.outputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<std::int64_t>(typed.outputs(0).shape().begin(), typed.outputs(0).shape().end()), (std::vector<std::int64_t>{2, 8}));
  EXPECT_EQ(typed.raw_output_contents_size(), 0);
  const auto& values = typed.outputs(0).contents().fp32_contents();
  EXPECT_EQ(std::vector<float>(values.begin(), values.end()), expected);

  ModelInferResponse raw;
  ASSERT_TRUE(infer(server, infer_request(input, true), raw).ok());
  ASSERT_EQ(raw.raw_output_contents_size(), 1);
  EXPECT_EQ(raw.outputs(0).contents().fp32_contents_size(), 0);
  const std::string& bytes = raw.raw_output_contents(0);
  ASSERT_EQ(bytes.size(), expected.size() * sizeof(float));
  std::vector<float> decoded(expected.size());
  std::memcpy(decoded.data(), bytes.data(), bytes.size());
  EXPECT_EQ(decoded, expected);

  // The classification extension: the top class of each photograph, as REST names it.
  ModelInferRequest top = infer_request(input, false);
  auto* output = top.add_outputs();
  output->set_name("logits");
  (*output->mutable_parameters())["classification"].set_int64_param(1);
  ModelInferResponse classified;
  ASSERT_TRUE(infer(server, top, classified).ok());
  ASSERT_EQ(classified.outputs(0).datatype(), "BYTES");
  ASSERT_EQ(classified.outputs(0).contents().bytes_contents_size(), 2);
  for (int row = 0; row < 2; ++row) {
    const auto first = expected.begin() + row * 8;
    const auto best = std::max_element(first, first + 8) - first;
    const std::string entry = classified.outputs(0).contents().bytes_contents(row);
    EXPECT_NE(entry.find(":" + std::to_string(best) + ":"), std::string::npos) << entry;
  }
}

TEST(Grpc, ImageBytesGiveTheLogitsOfTheSameTensor) {
  const GrpcServer server = start_grpc_server(kTiny);
  const auto photos = real_photographs();
  ModelInferResponse by_tensor;
  ASSERT_TRUE(infer(server, infer_request(prepared({photos[0], photos[1]}), false), by_tensor).ok());
  const auto& expected = by_tensor.outputs(0).contents().fp32_contents();

  ModelInferRequest request;
  request.set_model_name("tiny");
  auto* input = request.add_inputs();
  input->set_name("image_bytes");
  input->set_datatype("BYTES");
  input->add_shape(2);
  for (const auto& photo : {photos[0], photos[1]}) input->mutable_contents()->add_bytes_contents(file_text(photo));
  ModelInferResponse by_bytes;
  ASSERT_TRUE(infer(server, request, by_bytes).ok());
  const auto& logits = by_bytes.outputs(0).contents().fp32_contents();
  EXPECT_EQ(std::vector<float>(logits.begin(), logits.end()), std::vector<float>(expected.begin(), expected.end()));

  input->mutable_contents()->set_bytes_contents(1, "not an image");
  EXPECT_EQ(infer_code(server, request), grpc::StatusCode::INVALID_ARGUMENT);
  input->set_shape(0, 3);
  EXPECT_EQ(infer_code(server, request), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(Grpc, BadRequestsAreInvalidArgumentOrNotFound) {
  const GrpcServer server = start_grpc_server(kTiny);
  const Tensor ok = Tensor::zeros({1, 3, 64, 64});
  ASSERT_EQ(infer_code(server, infer_request(ok, true)), grpc::StatusCode::OK);

  auto expect_invalid = [&](ModelInferRequest request, const std::string& says) {
    std::string message;
    EXPECT_EQ(infer_code(server, request, &message), grpc::StatusCode::INVALID_ARGUMENT) << says;
    EXPECT_NE(message.find(says), std::string::npos) << message;
  };
  ModelInferRequest wrong_type = infer_request(ok, false);
  wrong_type.mutable_inputs(0)->set_datatype("FP64");
  expect_invalid(wrong_type, "datatype FP64");
  ModelInferRequest wrong_contents = infer_request(ok, false);
  wrong_contents.mutable_inputs(0)->mutable_contents()->add_int_contents(1);
  expect_invalid(wrong_contents, "fp32_contents");
  ModelInferRequest missing = infer_request(ok, false);
  missing.clear_inputs();
  expect_invalid(missing, "one input");
  ModelInferRequest wrong_name = infer_request(ok, false);
  wrong_name.mutable_inputs(0)->set_name("pixels");
  expect_invalid(wrong_name, "unknown input");
  ModelInferRequest short_values = infer_request(ok, false);
  short_values.mutable_inputs(0)->mutable_contents()->mutable_fp32_contents()->Truncate(100);
  expect_invalid(short_values, "100 values");
  ModelInferRequest truncated = infer_request(ok, true);
  truncated.mutable_raw_input_contents(0)->resize(1000);
  expect_invalid(truncated, "1000 bytes");
  ModelInferRequest both = infer_request(ok, true);
  both.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1.f);
  expect_invalid(both, "both");
  ModelInferRequest extra_raw = infer_request(ok, true);
  extra_raw.add_raw_input_contents("xxxx");
  expect_invalid(extra_raw, "raw_input_contents");
  ModelInferRequest not_finite = infer_request(ok, false);
  not_finite.mutable_inputs(0)->mutable_contents()->set_fp32_contents(3, std::numeric_limits<float>::infinity());
  expect_invalid(not_finite, "non-finite");
  ModelInferRequest negative = infer_request(ok, true);
  negative.mutable_inputs(0)->set_shape(0, -1);
  expect_invalid(negative, "shape [-1,3,64,64]");
  // Huge shapes with one image of data: refused by what they claim, before anything is allocated.
  for (const std::int64_t batch :
       {std::int64_t{1152921504606846977LL}, std::int64_t{1} << 40, std::int64_t{1} << 31, std::numeric_limits<std::int64_t>::max()}) {
    ModelInferRequest huge = infer_request(ok, true);
    huge.mutable_inputs(0)->set_shape(0, batch);
    expect_invalid(huge, "shape [" + std::to_string(batch) + ",3,64,64]");
  }
  ModelInferRequest unknown_output = infer_request(ok, false);
  unknown_output.add_outputs()->set_name("probabilities");
  expect_invalid(unknown_output, "unknown output");

  ModelInferRequest unknown_model = infer_request(ok, false);
  unknown_model.set_model_name("unknown");
  EXPECT_EQ(infer_code(server, unknown_model), grpc::StatusCode::NOT_FOUND);
  ModelInferRequest unloaded = infer_request(ok, false);
  unloaded.set_model_version("2");
  EXPECT_EQ(infer_code(server, unloaded), grpc::StatusCode::NOT_FOUND);
  ASSERT_EQ(infer_code(server, infer_request(ok, true)), grpc::StatusCode::OK);  // none the worse

  // Counted by protocol in the same metrics as REST.
  const std::string metrics = client_for(*server.process)->Get("/metrics")->body;
  EXPECT_NE(metrics.find("dermcds_inference_requests_total{model=\"tiny\",protocol=\"grpc\",result=\"ok\"} 2"), std::string::npos);
  EXPECT_NE(metrics.find("dermcds_inference_requests_total{model=\"tiny\",protocol=\"grpc\",result=\"invalid_argument\"}"),
            std::string::npos);
}

double queue_depth(const ServerProcess& server) {
  const auto result = client_for(server)->Get("/metrics");
  const std::string series = "dermcds_queue_depth{model=\"tiny\",version=\"1\",runtime=\"onnxruntime\"} ";
  const auto at = result ? result->body.find(series) : std::string::npos;
  return at == std::string::npos ? -1 : std::stod(result->body.substr(at + series.size()));
}

void wait_for_queue_depth(const ServerProcess& server, int depth) {
  while (queue_depth(server) != depth) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

std::vector<std::future<grpc::StatusCode>> infer_concurrently(const GrpcServer& server, int count) {
  std::vector<std::future<grpc::StatusCode>> calls;
  for (int i = 0; i < count; ++i)
    calls.push_back(std::async(std::launch::async, [&server] {
      return infer_code(server, infer_request(Tensor::zeros({1, 3, 64, 64}), true));
    }));
  return calls;
}

TEST(Grpc, FullQueueIsResourceExhausted) {
  const GrpcServer server = start_grpc_server(
      {"--model", "tiny", "--default-model", "tiny", "--max-batch-size", "64", "--max-queue-delay-ms", "3000", "--max-queue-size", "2"});
  auto waiting = infer_concurrently(server, 2);
  wait_for_queue_depth(*server.process, 2);
  EXPECT_EQ(infer_code(server, infer_request(Tensor::zeros({1, 3, 64, 64}), true)), grpc::StatusCode::RESOURCE_EXHAUSTED);
  for (auto& call : waiting) EXPECT_EQ(call.get(), grpc::StatusCode::OK);  // the queued calls are not harmed
}

TEST(Grpc, RequestPastItsTimeLimitIsDeadlineExceeded) {
  // A batch window longer than the request time limit: the limit passes first.
  const GrpcServer slow = start_grpc_server({"--model", "tiny", "--default-model", "tiny", "--max-batch-size", "8", "--max-queue-delay-ms",
                                             "2000", "--request-timeout-ms", "200"});
  EXPECT_EQ(infer_code(slow, infer_request(Tensor::zeros({1, 3, 64, 64}), true)), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(Grpc, SigtermFinishesCallsInProgress) {
  const GrpcServer server =
      start_grpc_server({"--model", "tiny", "--default-model", "tiny", "--max-batch-size", "64", "--max-queue-delay-ms", "10000"});
  auto in_progress = infer_concurrently(server, 3);
  wait_for_queue_depth(*server.process, 3);
  server.process->send_signal(SIGTERM);
  for (auto& call : in_progress) EXPECT_EQ(call.get(), grpc::StatusCode::OK);
  EXPECT_EQ(server.process->wait_for_exit(std::chrono::seconds(60)), 0);
}
// The serving rule (docs/lifecycle.md) holds on gRPC as on HTTP, since both ask the same model
// manager: version 5 (version 2 with its parity and lifecycle sections deleted) may not serve,
// so it answers NOT_FOUND as /v1/classify answers 404 (test_serving_rule.cpp). With
// --allow-unverified-models every gRPC answer carries the stamp HTTP answers carry in a header,
// as initial metadata.
TEST(Grpc, ServingRuleAndTheUnverifiedStampHoldAsOnHttp) {
  TemporaryDirectory tmp;
  const auto repository = copy_fixture_repository(tmp);
  {
    const auto dir = repository / "tiny" / "5";
    std::filesystem::copy(repository / "tiny" / "2", dir, std::filesystem::copy_options::recursive);
    json manifest = json::parse(std::ifstream(dir / "manifest.json"));
    manifest["version"] = "5";
    manifest.erase("parity");
    manifest.erase("lifecycle");
    std::ofstream(dir / "manifest.json") << manifest.dump(2);
  }
  ModelInferRequest request = infer_request(Tensor::zeros({1, 3, 64, 64}), true);
  request.set_model_version("5");
  {
    const GrpcServer server = start_grpc_server(StartOptions{repository, kTiny, {}, true});
    std::string message;
    EXPECT_EQ(infer_code(server, request, &message), grpc::StatusCode::NOT_FOUND) << message;
    const auto rest =
        client_for(*server.process)
            ->Post("/v2/models/tiny/versions/5/infer",
                   json{{"inputs",
                         {{{"name", "image"}, {"datatype", "FP32"}, {"shape", {1, 3, 64, 64}}, {"data", std::vector<float>(3 * 64 * 64)}}}}}
                       .dump(),
                   "application/json");
    EXPECT_EQ(status_of(rest), 404);
    grpc::ClientContext context;
    inference::ServerLiveResponse live;
    ASSERT_TRUE(server.stub->ServerLive(&context, {}, &live).ok());
    EXPECT_EQ(context.GetServerInitialMetadata().count("x-dermcds-unverified-models"), 0u);
  }
  std::vector<std::string> allowed = kTiny;
  allowed.push_back("--allow-unverified-models");
  const GrpcServer server = start_grpc_server(StartOptions{repository, allowed, {{"DERMCDS_ADMIN_KEY", "grpc-admin-key"}}, true});
  const auto stamp = [](const grpc::ClientContext& context) {
    const auto& metadata = context.GetServerInitialMetadata();
    const auto it = metadata.find("x-dermcds-unverified-models");
    return it == metadata.end() ? std::string("(none)") : std::string(it->second.data(), it->second.size());
  };
  {
    grpc::ClientContext context;
    inference::ServerLiveResponse live;
    ASSERT_TRUE(server.stub->ServerLive(&context, {}, &live).ok());
    EXPECT_EQ(stamp(context), "allowed");
  }
  {
    // An error answer carries it too.
    grpc::ClientContext context;
    inference::ModelMetadataRequest unknown;
    unknown.set_name("unknown");
    inference::ModelMetadataResponse metadata;
    EXPECT_EQ(server.stub->ModelMetadata(&context, unknown, &metadata).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(stamp(context), "allowed");
  }
  // Loaded by the development override, version 5 answers, stamped.
  const auto loaded = client_for(*server.process)
                          ->Post("/v2/repository/models/tiny/load", {{"Authorization", "Bearer grpc-admin-key"}},
                                 json{{"parameters", {{"version", "5"}}}}.dump(), "application/json");
  ASSERT_EQ(status_of(loaded), 200) << (loaded ? loaded->body : "");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  ModelInferResponse response;
  const grpc::Status status = server.stub->ModelInfer(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model_version(), "5");
  EXPECT_EQ(stamp(context), "allowed");
}

}  // namespace
}  // namespace dermcds::test
