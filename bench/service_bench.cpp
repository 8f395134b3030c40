// Serving throughput and latency of pms-derm-cds under load, with dynamic batching on and off,
// side by side in one run with an offline batched run of the same model at the same batch size.
//
//   offline   ONNX Runtime through Classifier::infer on a ready batch of N preprocessed images:
//             no HTTP, no decoding, no queue. The throughput a server could at best reach.
//   served    the real pms-derm-cds binary on loopback (service/harness), started twice:
//             batching on (--max-batch-size N) and off (--no-batching). For each:
//               single    one client, one request at a time: the single-request latency
//               saturated C clients in a closed loop: the served throughput
//               half load requests arriving at a fixed rate of half the saturated throughput;
//                         latency counted from each request's scheduled time, so a late start
//                         is part of the latency (no coordinated omission)
//
// The goals (docs/service.md): served throughput with batching >= 0.9x the offline batched
// throughput, and p99 at half load <= 2x the single-request latency (median).
//
// --protocols measures the Open Inference Protocol's transports instead, on one server with
// batching off (so that no request waits for a batch to fill), each sending the same
// preprocessed tensor of one image: REST with JSON numbers, REST with the binary tensor
// extension, and gRPC with raw_input_contents; alternating round by round with an offline
// Classifier::infer of the same tensor. Overhead = end-to-end p50 minus the offline inference
// p50, as a share of the latter; the goal for binary and gRPC is <= 5%.
//
// --mixed-with MODEL measures two models on one server instead (batching on): saturated phases
// of the main model alone, of MODEL alone, and mixed (every client alternates between the two),
// round by round. If the two models' sessions did not slow each other down, a mixed request
// would cost what it costs alone, so the mixed throughput would be the harmonic mean of the two
// single-model throughputs; the goal (issue 14) is mixed >= 0.9x that.
// The load generator shares the machine with the server; on a small machine that costs the
// server some CPU, which the figures include.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_stats.hpp"
#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/model_repository.hpp"
#include "open_inference.grpc.pb.h"
#include "server_process.hpp"

namespace {

using dermcds::bench::Clock;
using dermcds::bench::elapsed_ms;
using dermcds::bench::summarize;
using dermcds::bench::Summary;
using nlohmann::ordered_json;

struct Options {
  std::string model = "models/derm-effnet-b4";
  std::string image = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";
  int batch = 8;
  double delay_ms = 5;
  int clients = 0;  // 0: twice the batch size, enough to keep a batch forming while one runs
  double seconds = 15;
  int single_requests = 40;
  int rounds = 3;
  int threads = 0;
  std::string server;
  std::string json_out;
  bool protocols = false;
  std::string mixed_with;  // a second model: measure the mixed phase instead
};

// Answers received in one load phase.
struct Load {
  double seconds = 0;
  int ok = 0;
  int failed = 0;
  std::vector<double> latency_ms;  // of the successful requests
  double throughput() const { return seconds > 0 ? ok / seconds : 0; }
};

class Endpoint {
 public:
  Endpoint(const dermcds::service::harness::ServerProcess& server, std::string body, std::string path = "/v1/classify")
      : server_(server), body_(std::move(body)), path_(std::move(path)) {}

  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>(server_.host(), server_.port());
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);  // the body would otherwise wait for the server's delayed ACK of the headers
    c->set_read_timeout(std::chrono::seconds(120));
    return c;
  }
  bool classify(httplib::Client& client) const {
    const auto result = client.Post(path_, body_, "image/jpeg");
    return result && result->status == 200;
  }

 private:
  const dermcds::service::harness::ServerProcess& server_;
  std::string body_;
  std::string path_;
};

void record(Load& load, std::mutex& mutex, bool ok, double ms) {
  std::lock_guard lock(mutex);
  if (ok) {
    ++load.ok;
    load.latency_ms.push_back(ms);
  } else {
    ++load.failed;
  }
}

Load sequential(const Endpoint& endpoint, int count) {
  Load load;
  std::mutex mutex;
  const auto client = endpoint.client();
  for (int i = 0; i < 3; ++i) endpoint.classify(*client);  // connection and caches
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    const auto t = Clock::now();
    const bool ok = endpoint.classify(*client);
    record(load, mutex, ok, elapsed_ms(t));
  }
  load.seconds = elapsed_ms(start) / 1e3;
  return load;
}

// `clients` threads in a closed loop for `seconds`; each calls `connect()` once for its own
// connection, which returns the call to repeat (true when answered).
template <typename Connect>
Load closed_loop_with(int clients, double seconds, const Connect& connect) {
  Load load;
  std::mutex mutex;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      auto call = connect();
      while (Clock::now() < end) {
        const auto t = Clock::now();
        const bool ok = call();
        record(load, mutex, ok, elapsed_ms(t));
      }
    });
  for (auto& t : threads) t.join();
  load.seconds = elapsed_ms(start) / 1e3;
  return load;
}

// Each client sends to the endpoints in turn, client c starting at endpoint c, so that with
// two endpoints half the requests in flight go to each.
Load closed_loop(const std::vector<const Endpoint*>& endpoints, int clients, double seconds) {
  std::atomic<int> started{0};
  return closed_loop_with(clients, seconds, [&endpoints, &started] {
    const std::size_t c = static_cast<std::size_t>(started++);
    auto connections = std::make_shared<std::vector<std::unique_ptr<httplib::Client>>>();
    for (const Endpoint* endpoint : endpoints) connections->push_back(endpoint->client());
    return [&endpoints, connections, next = c % endpoints.size()]() mutable {
      const bool ok = endpoints[next]->classify(*(*connections)[next]);
      next = (next + 1) % endpoints.size();
      return ok;
    };
  });
}

Load closed_loop(const Endpoint& endpoint, int clients, double seconds) { return closed_loop({&endpoint}, clients, seconds); }

Load open_loop(const Endpoint& endpoint, double rate, double seconds, int workers) {
  Load load;
  std::mutex mutex;
  const auto start = Clock::now() + std::chrono::milliseconds(50);
  const auto total = static_cast<long>(rate * seconds);
  std::atomic<long> next{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      const auto client = endpoint.client();
      for (long i = next++; i < total; i = next++) {
        const auto scheduled = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / rate));
        std::this_thread::sleep_until(scheduled);
        const bool ok = endpoint.classify(*client);
        record(load, mutex, ok, elapsed_ms(scheduled));
      }
    });
  for (auto& t : threads) t.join();
  load.seconds = elapsed_ms(start) / 1e3;
  return load;
}

ordered_json load_json(const Load& load) {
  const Summary s = summarize(load.latency_ms);
  return {{"requests_ok", load.ok},  {"requests_failed", load.failed},
          {"seconds", load.seconds}, {"throughput_per_s", load.throughput()},
          {"p50_ms", s.median},      {"p90_ms", s.p90},
          {"p99_ms", s.p99},         {"max_ms", s.max}};
}

void print_load(const char* name, const Load& load) {
  const Summary s = summarize(load.latency_ms);
  std::printf("  %-34s %8.2f img/s   p50 %8.1f ms   p99 %8.1f ms   (%d ok, %d failed)\n", name, load.throughput(), s.median, s.p99, load.ok,
              load.failed);
}

// Adds a round's answers to a phase's total.
void accumulate(Load& total, const Load& round) {
  total.seconds += round.seconds;
  total.ok += round.ok;
  total.failed += round.failed;
  total.latency_ms.insert(total.latency_ms.end(), round.latency_ms.begin(), round.latency_ms.end());
}

// The offline reference: ONNX Runtime through Classifier::infer on ready tensors.
class Offline {
 public:
  Offline(const Options& options, const std::filesystem::path& package, const std::vector<std::uint8_t>& bytes) {
    dermcds::ClassifierOptions classifier_options;
    classifier_options.package = package;
    classifier_options.runtime = "onnxruntime";
    classifier_options.execution.threads = options.threads;
    classifier_ = dermcds::Classifier::create(classifier_options);
    const auto prepared = classifier_->prepare(bytes);
    const std::int64_t s = classifier_->manifest().input.crop_size;
    single_ = {{1, 3, s, s}, prepared.input};
    batch_ = {{options.batch, 3, s, s}, {}};
    for (int i = 0; i < options.batch; ++i) batch_.data.insert(batch_.data.end(), prepared.input.begin(), prepared.input.end());
    for (int i = 0; i < 2; ++i) {  // first runs allocate and tune; not measured
      classifier_->infer(batch_);
      classifier_->infer(single_);
    }
  }
  // Whole batches for at least `seconds`; each batch's images count as answered.
  Load batches(double seconds) const {
    Load load;
    const auto start = Clock::now();
    while (elapsed_ms(start) < seconds * 1e3) {
      const auto t = Clock::now();
      classifier_->infer(batch_);
      load.ok += static_cast<int>(batch_.shape[0]);
      load.latency_ms.push_back(elapsed_ms(t));  // per batch
    }
    load.seconds = elapsed_ms(start) / 1e3;
    return load;
  }
  Load singles(int count) const {
    Load load;
    const auto start = Clock::now();
    for (int i = 0; i < count; ++i) {
      const auto t = Clock::now();
      classifier_->infer(single_);
      ++load.ok;
      load.latency_ms.push_back(elapsed_ms(t));
    }
    load.seconds = elapsed_ms(start) / 1e3;
    return load;
  }

 private:
  std::unique_ptr<dermcds::Classifier> classifier_;
  dermcds::Tensor single_, batch_;
};

std::unique_ptr<dermcds::service::harness::ServerProcess> start_server(const Options& options, const std::filesystem::path& package,
                                                                       bool batching, const std::filesystem::path& work, int clients,
                                                                       const std::string& also_model = "") {
  const std::filesystem::path model_dir = package.parent_path();
  dermcds::service::harness::ServerOptions server_options;
  server_options.binary = options.server;
  server_options.work_dir = work / (batching ? "batching-on" : "batching-off");
  const std::string models = model_dir.filename().string() + (also_model.empty() ? "" : "," + also_model);
  server_options.arguments = {"--repository",
                              model_dir.parent_path().string(),
                              "--model",
                              models,
                              "--default-model",
                              model_dir.filename().string(),
                              "--no-banner",
                              "--log-level",
                              "warn",
                              "--max-queue-size",
                              "4096",
                              "--http-threads",
                              std::to_string(std::max(64, 2 * clients + 8)),
                              "--threads",
                              std::to_string(options.threads),
                              "--warmup-runs",
                              "2"};
  if (batching) {
    server_options.arguments.insert(server_options.arguments.end(), {"--max-batch-size", std::to_string(options.batch),
                                                                     "--max-queue-delay-ms", std::to_string(options.delay_ms)});
  } else {
    server_options.arguments.push_back("--no-batching");
  }
  return std::make_unique<dermcds::service::harness::ServerProcess>(server_options);
}

struct Served {
  Load single, saturated, half;
  double half_rate = 0;
};

ordered_json served_json(const Served& s) {
  return {{"single", load_json(s.single)},
          {"saturated", load_json(s.saturated)},
          {"half_load_rate_per_s", s.half_rate},
          {"half_load", load_json(s.half)}};
}

int run(const Options& options) {
  const std::filesystem::path package = dermcds::resolve_package_dir(options.model);
  const auto bytes = dermcds::read_file_bytes(options.image);
  const std::string body(bytes.begin(), bytes.end());
  const std::filesystem::path work = std::filesystem::temp_directory_path() / ("service-bench-" + std::to_string(::getpid()));
  const int clients = options.clients > 0 ? options.clients : 2 * options.batch;
  const auto manifest = dermcds::read_manifest(package);
  const double round_seconds = options.seconds / options.rounds;
  std::printf(
      "service_bench: %s/%s (%dx%d), batch %d, queue delay %.1f ms, %d clients, %.0f s per phase and mode "
      "in %d rounds, image %s\n",
      manifest.name.c_str(), manifest.version.c_str(), manifest.input.crop_size, manifest.input.crop_size, options.batch, options.delay_ms,
      clients, options.seconds, options.rounds, options.image.c_str());

  // Both servers and the offline session stay up for the whole run, and every phase alternates
  // between them round by round, so that drift in the machine's load affects all three alike.
  const Offline offline(options, package, bytes);
  std::printf("starting pms-derm-cds twice (batching on, off) ...\n");
  std::fflush(stdout);
  const auto server_on = start_server(options, package, true, work, clients);
  const auto server_off = start_server(options, package, false, work, clients);
  const Endpoint on_endpoint(*server_on, body), off_endpoint(*server_off, body);
  Served on, off;
  const Endpoint* endpoints[2] = {&on_endpoint, &off_endpoint};
  Served* served[2] = {&on, &off};
  Load offline_single, offline_batches;

  for (int m = 0; m < 2; ++m) closed_loop(*endpoints[m], clients, 2.0);  // warm-up under load, not measured
  const int singles = std::max(1, options.single_requests / options.rounds);
  for (int r = 0; r < options.rounds; ++r) {
    std::printf("round %d/%d: single requests, then saturation ...\n", r + 1, options.rounds);
    std::fflush(stdout);
    accumulate(offline_single, offline.singles(singles));
    for (int m = 0; m < 2; ++m) accumulate(served[m]->single, sequential(*endpoints[m], singles));
    accumulate(offline_batches, offline.batches(round_seconds));
    for (int m = 0; m < 2; ++m) accumulate(served[m]->saturated, closed_loop(*endpoints[m], clients, round_seconds));
  }
  for (int m = 0; m < 2; ++m) served[m]->half_rate = served[m]->saturated.throughput() / 2;
  for (int r = 0; r < options.rounds; ++r) {
    std::printf("round %d/%d: half load ...\n", r + 1, options.rounds);
    std::fflush(stdout);
    for (int m = 0; m < 2; ++m) accumulate(served[m]->half, open_loop(*endpoints[m], served[m]->half_rate, round_seconds, clients));
  }
  const bool clean = server_on->stop() == 0 && server_off->stop() == 0;
  std::filesystem::remove_all(work);
  if (!clean) throw dermcds::Error(dermcds::ErrorCode::kInternal, "pms-derm-cds did not exit cleanly");

  const Summary batch_s = summarize(offline_batches.latency_ms);
  std::printf("\nresults (throughput in images per second; latency per request)\n");
  std::printf("  %-34s %8.2f img/s   batch p50 %6.1f ms   p99 %6.1f ms\n",
              ("offline ONNX Runtime, batch " + std::to_string(options.batch)).c_str(), offline_batches.throughput(), batch_s.median,
              batch_s.p99);
  print_load("offline ONNX Runtime, batch 1", offline_single);
  for (const auto& [name, mode] : {std::pair{"batching on", &on}, std::pair{"batching off", &off}}) {
    std::printf(" served, %s:\n", name);
    print_load("single request (1 client)", mode->single);
    print_load(("saturated (" + std::to_string(clients) + " clients)").c_str(), mode->saturated);
    char half[64];
    std::snprintf(half, sizeof half, "half load (%.2f req/s)", mode->half_rate);
    print_load(half, mode->half);
  }
  const double throughput_ratio = on.saturated.throughput() / offline_batches.throughput();
  const double latency_ratio = summarize(on.half.latency_ms).p99 / summarize(on.single.latency_ms).median;
  const double off_latency_ratio = summarize(off.half.latency_ms).p99 / summarize(off.single.latency_ms).median;
  std::printf("\nserved (batching on) / offline batched throughput: %.3f   (goal >= 0.9)\n", throughput_ratio);
  std::printf("served (batching off) / offline batched throughput: %.3f\n", off.saturated.throughput() / offline_batches.throughput());
  std::printf("p99 at half load / single-request p50, batching on: %.2f   (goal <= 2)\n", latency_ratio);
  std::printf("p99 at half load / single-request p50, batching off: %.2f\n", off_latency_ratio);

  if (!options.json_out.empty()) {
    const ordered_json report = {
        {"model", manifest.name + "/" + manifest.version},
        {"image", options.image},
        {"batch", options.batch},
        {"queue_delay_ms", options.delay_ms},
        {"clients", clients},
        {"seconds_per_phase", options.seconds},
        {"rounds", options.rounds},
        {"offline",
         {{"batch_throughput_per_s", offline_batches.throughput()},
          {"batch_p50_ms", batch_s.median},
          {"batch_p99_ms", batch_s.p99},
          {"single", load_json(offline_single)}}},
        {"served_batching_on", served_json(on)},
        {"served_batching_off", served_json(off)},
        {"ratio_served_to_offline_throughput", throughput_ratio},
        {"ratio_half_load_p99_to_single_p50", latency_ratio},
    };
    std::ofstream(options.json_out) << report.dump(2) << "\n";
  }
  return 0;
}

// --- --protocols: JSON vs binary vs gRPC ------------------------------------------------------

// One transport's way of sending the tensor and checking the answer.
class Transport {
 public:
  virtual ~Transport() = default;
  // A connection for one client thread; infer() returns the logits (empty on failure).
  struct Connection {
    virtual ~Connection() = default;
    virtual std::vector<float> infer() = 0;
  };
  virtual std::unique_ptr<Connection> connect() const = 0;
};

std::unique_ptr<httplib::Client> http_client(const dermcds::service::harness::ServerProcess& server) {
  auto c = std::make_unique<httplib::Client>(server.host(), server.port());
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_read_timeout(std::chrono::seconds(120));
  return c;
}

class RestJson final : public Transport {
 public:
  RestJson(const dermcds::service::harness::ServerProcess& server, const std::string& model, const dermcds::Tensor& tensor)
      : server_(server), path_("/v2/models/" + model + "/infer") {
    body_ = nlohmann::json{{"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", tensor.shape}, {"data", tensor.data}}}}}.dump();
  }
  struct Client final : Connection {
    const RestJson& t;
    std::unique_ptr<httplib::Client> http;
    Client(const RestJson& t) : t(t), http(http_client(t.server_)) {}
    std::vector<float> infer() override {
      const auto r = http->Post(t.path_, t.body_, "application/json");
      if (!r || r->status != 200) return {};
      return nlohmann::json::parse(r->body)["outputs"][0]["data"].get<std::vector<float>>();
    }
  };
  std::unique_ptr<Connection> connect() const override { return std::make_unique<Client>(*this); }
  std::size_t body_bytes() const { return body_.size(); }

 private:
  const dermcds::service::harness::ServerProcess& server_;
  std::string path_, body_;
};

class RestBinary final : public Transport {
 public:
  RestBinary(const dermcds::service::harness::ServerProcess& server, const std::string& model, const dermcds::Tensor& tensor)
      : server_(server), path_("/v2/models/" + model + "/infer") {
    const std::size_t bytes = tensor.data.size() * sizeof(float);
    body_ =
        nlohmann::json{
            {"inputs", {{{"name", "image"}, {"datatype", "FP32"}, {"shape", tensor.shape}, {"parameters", {{"binary_data_size", bytes}}}}}},
            {"outputs", {{{"name", "logits"}, {"parameters", {{"binary_data", true}}}}}}}
            .dump();
    header_length_ = std::to_string(body_.size());
    body_.append(reinterpret_cast<const char*>(tensor.data.data()), bytes);
  }
  struct Client final : Connection {
    const RestBinary& t;
    std::unique_ptr<httplib::Client> http;
    Client(const RestBinary& t) : t(t), http(http_client(t.server_)) {}
    std::vector<float> infer() override {
      const auto r = http->Post(t.path_, {{"Inference-Header-Content-Length", t.header_length_}}, t.body_, "application/octet-stream");
      if (!r || r->status != 200) return {};
      const std::size_t header = std::stoul(r->get_header_value("Inference-Header-Content-Length"));
      std::vector<float> out((r->body.size() - header) / sizeof(float));
      std::memcpy(out.data(), r->body.data() + header, out.size() * sizeof(float));
      return out;
    }
  };
  std::unique_ptr<Connection> connect() const override { return std::make_unique<Client>(*this); }

 private:
  const dermcds::service::harness::ServerProcess& server_;
  std::string path_, body_, header_length_;
};

class Grpc final : public Transport {
 public:
  Grpc(int port, const std::string& model, const dermcds::Tensor& tensor) : address_("127.0.0.1:" + std::to_string(port)) {
    request_.set_model_name(model);
    auto* input = request_.add_inputs();
    input->set_name("image");
    input->set_datatype("FP32");
    for (const auto d : tensor.shape) input->add_shape(d);
    request_.add_raw_input_contents(std::string(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size() * sizeof(float)));
  }
  struct Client final : Connection {
    const Grpc& t;
    std::unique_ptr<inference::GRPCInferenceService::Stub> stub;
    explicit Client(const Grpc& t) : t(t) {
      // A channel per client, as separate processes would have: no shared HTTP/2 connection.
      grpc::ChannelArguments arguments;
      arguments.SetInt("grpc.use_local_subchannel_pool", 1);
      stub = inference::GRPCInferenceService::NewStub(grpc::CreateCustomChannel(t.address_, grpc::InsecureChannelCredentials(), arguments));
    }
    std::vector<float> infer() override {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      inference::ModelInferResponse response;
      if (!stub->ModelInfer(&context, t.request_, &response).ok() || response.raw_output_contents_size() != 1) return {};
      const std::string& raw = response.raw_output_contents(0);
      std::vector<float> out(raw.size() / sizeof(float));
      std::memcpy(out.data(), raw.data(), out.size() * sizeof(float));
      return out;
    }
  };
  std::unique_ptr<Connection> connect() const override { return std::make_unique<Client>(*this); }

 private:
  std::string address_;
  inference::ModelInferRequest request_;
};

// Sequential requests on one connection; every answer must equal `expected` exactly.
Load protocol_sequential(const Transport& transport, int count, const std::vector<float>& expected, int& mismatches) {
  Load load;
  std::mutex mutex;
  const auto connection = transport.connect();
  connection->infer();  // connection set-up, not measured
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    const auto t = Clock::now();
    const std::vector<float> answer = connection->infer();
    if (!answer.empty() && answer != expected) ++mismatches;
    record(load, mutex, !answer.empty(), elapsed_ms(t));
  }
  load.seconds = elapsed_ms(start) / 1e3;
  return load;
}

Load protocol_closed_loop(const Transport& transport, int clients, double seconds) {
  return closed_loop_with(clients, seconds, [&transport] {
    return [connection = std::shared_ptr<Transport::Connection>(transport.connect())] { return !connection->infer().empty(); };
  });
}

int run_protocols(const Options& options) {
  const std::filesystem::path package = dermcds::resolve_package_dir(options.model);
  const auto manifest = dermcds::read_manifest(package);
  const std::filesystem::path work = std::filesystem::temp_directory_path() / ("service-bench-" + std::to_string(::getpid()));
  const std::filesystem::path model_dir = package.parent_path();
  const int clients = options.clients > 0 ? options.clients : 4;
  std::printf(
      "service_bench --protocols: %s/%s (%dx%d), one image per request, batching off, %d sequential requests "
      "per transport and %.0f s saturated (%d clients) in %d rounds\n",
      manifest.name.c_str(), manifest.version.c_str(), manifest.input.crop_size, manifest.input.crop_size, options.single_requests,
      options.seconds, clients, options.rounds);

  // The offline reference and the tensor every transport sends: one preprocessed photograph.
  dermcds::ClassifierOptions classifier_options;
  classifier_options.package = package;
  classifier_options.runtime = "onnxruntime";
  classifier_options.execution.threads = options.threads;
  const auto classifier = dermcds::Classifier::create(classifier_options);
  const auto prepared = classifier->prepare(dermcds::read_file_bytes(options.image));
  const std::int64_t s = classifier->manifest().input.crop_size;
  const dermcds::Tensor tensor{{1, 3, s, s}, prepared.input};
  for (int i = 0; i < 3; ++i) classifier->infer(tensor);

  dermcds::service::harness::ServerOptions server_options;
  server_options.binary = options.server;
  server_options.work_dir = work / "protocols";
  const auto grpc_port_file = work / "grpc.port";
  server_options.arguments = {"--repository",
                              model_dir.parent_path().string(),
                              "--model",
                              model_dir.filename().string(),
                              "--default-model",
                              model_dir.filename().string(),
                              "--no-banner",
                              "--log-level",
                              "warn",
                              "--no-batching",
                              "--threads",
                              std::to_string(options.threads),
                              "--warmup-runs",
                              "2",
                              "--grpc-port",
                              "0",
                              "--grpc-port-file",
                              grpc_port_file.string()};
  std::printf("starting pms-derm-cds with gRPC ...\n");
  std::fflush(stdout);
  auto server = std::make_unique<dermcds::service::harness::ServerProcess>(server_options);
  const auto port_bytes = dermcds::read_file_bytes(grpc_port_file);
  const int grpc_port = std::stoi(std::string(port_bytes.begin(), port_bytes.end()));

  const std::string model = model_dir.filename().string();
  const RestJson json_transport(*server, model, tensor);
  const RestBinary binary_transport(*server, model, tensor);
  const Grpc grpc_transport(grpc_port, model, tensor);
  const std::vector<std::pair<const char*, const Transport*>> transports = {
      {"rest_json", &json_transport}, {"rest_binary", &binary_transport}, {"grpc", &grpc_transport}};
  // Every transport must give the same logits; the first answer is the reference.
  const std::vector<float> expected = json_transport.connect()->infer();
  if (expected.empty()) throw dermcds::Error(dermcds::ErrorCode::kInternal, "the JSON request failed");

  std::vector<Load> sequential_loads(transports.size()), saturated(transports.size());
  Load offline;
  int mismatches = 0;
  const int per_round = std::max(1, options.single_requests / options.rounds);
  for (int r = 0; r < options.rounds; ++r) {
    std::printf("round %d/%d ...\n", r + 1, options.rounds);
    std::fflush(stdout);
    {
      const auto start = Clock::now();
      for (int i = 0; i < per_round; ++i) {
        const auto t = Clock::now();
        classifier->infer(tensor);
        ++offline.ok;
        offline.latency_ms.push_back(elapsed_ms(t));
      }
      offline.seconds += elapsed_ms(start) / 1e3;
    }
    for (std::size_t i = 0; i < transports.size(); ++i)
      accumulate(sequential_loads[i], protocol_sequential(*transports[i].second, per_round, expected, mismatches));
    for (std::size_t i = 0; i < transports.size(); ++i)
      accumulate(saturated[i], protocol_closed_loop(*transports[i].second, clients, options.seconds / options.rounds));
  }
  const bool clean = server->stop() == 0;
  std::filesystem::remove_all(work);
  if (!clean) throw dermcds::Error(dermcds::ErrorCode::kInternal, "pms-derm-cds did not exit cleanly");
  if (mismatches > 0)
    throw dermcds::Error(dermcds::ErrorCode::kInternal,
                         std::to_string(mismatches) + " answers differed from the JSON answer for the same tensor");

  const Summary offline_s = summarize(offline.latency_ms);
  std::printf("\nresults (latency per request of one image; throughput in images per second)\n");
  std::printf("  %-22s p50 %8.2f ms   p99 %8.2f ms   %8.2f img/s\n", "offline inference", offline_s.median, offline_s.p99,
              offline.throughput());
  ordered_json report = {
      {"model", manifest.name + "/" + manifest.version}, {"image", options.image},       {"clients", clients}, {"rounds", options.rounds},
      {"json_body_bytes", json_transport.body_bytes()},  {"offline", load_json(offline)}};
  for (std::size_t i = 0; i < transports.size(); ++i) {
    const Summary e2e = summarize(sequential_loads[i].latency_ms);
    const double overhead = (e2e.median - offline_s.median) / offline_s.median;
    std::printf("  %-22s p50 %8.2f ms   p99 %8.2f ms   saturated %8.2f img/s   overhead %+6.1f%% of inference%s\n", transports[i].first,
                e2e.median, e2e.p99, saturated[i].throughput(), 100 * overhead,
                std::string(transports[i].first) == "rest_json" ? "" : "   (goal <= 5%)");
    report[transports[i].first] = {
        {"sequential", load_json(sequential_loads[i])}, {"saturated", load_json(saturated[i])}, {"overhead_of_inference_p50", overhead}};
  }
  if (!options.json_out.empty()) std::ofstream(options.json_out) << report.dump(2) << "\n";
  return 0;
}

// --- --mixed-with: two models on one server -----------------------------------------------

int run_mixed(const Options& options) {
  const std::filesystem::path package = dermcds::resolve_package_dir(options.model);
  const std::filesystem::path repository = package.parent_path().parent_path();
  const std::filesystem::path other_package = dermcds::resolve_package_dir((repository / options.mixed_with).string());
  if (other_package.parent_path().parent_path() != repository)
    throw dermcds::Error(dermcds::ErrorCode::kInvalidArgument, "--mixed-with must name a model of the same repository");
  const auto bytes = dermcds::read_file_bytes(options.image);
  const std::string body(bytes.begin(), bytes.end());
  const std::filesystem::path work = std::filesystem::temp_directory_path() / ("service-bench-" + std::to_string(::getpid()));
  const int clients = options.clients > 0 ? options.clients : 2 * options.batch;
  const auto manifest = dermcds::read_manifest(package);
  const auto other = dermcds::read_manifest(other_package);
  const double round_seconds = options.seconds / options.rounds;
  std::printf(
      "service_bench --mixed-with: %s/%s and %s/%s on one server, batch %d, queue delay %.1f ms, %d clients, "
      "%.0f s per phase in %d rounds, threads %d, image %s\n",
      manifest.name.c_str(), manifest.version.c_str(), other.name.c_str(), other.version.c_str(), options.batch, options.delay_ms, clients,
      options.seconds, options.rounds, options.threads, options.image.c_str());
  std::fflush(stdout);

  const auto server = start_server(options, package, true, work, clients, other.name);
  const Endpoint first(*server, body, "/v1/classify?model=" + manifest.name);
  const Endpoint second(*server, body, "/v1/classify?model=" + other.name);
  const std::vector<const Endpoint*> phases[3] = {{&first}, {&second}, {&first, &second}};
  const char* names[3] = {manifest.name.c_str(), other.name.c_str(), "mixed"};
  Load loads[3];
  for (const auto& endpoints : phases) closed_loop(endpoints, clients, 2.0);  // warm-up under load, not measured
  for (int r = 0; r < options.rounds; ++r) {
    std::printf("round %d/%d: %s alone, %s alone, mixed ...\n", r + 1, options.rounds, names[0], names[1]);
    std::fflush(stdout);
    for (int p = 0; p < 3; ++p) accumulate(loads[p], closed_loop(phases[p], clients, round_seconds));
  }
  const bool clean = server->stop() == 0;
  std::filesystem::remove_all(work);
  if (!clean) throw dermcds::Error(dermcds::ErrorCode::kInternal, "pms-derm-cds did not exit cleanly");

  // Without interference a mixed pair of requests costs 1/T1 + 1/T2 seconds.
  const double expected = 2 / (1 / loads[0].throughput() + 1 / loads[1].throughput());
  const double ratio = loads[2].throughput() / expected;
  std::printf("\nresults (saturated, %d clients; throughput in requests per second)\n", clients);
  for (int p = 0; p < 3; ++p) print_load((std::string(names[p]) + (p < 2 ? " alone" : " (alternating)")).c_str(), loads[p]);
  std::printf("  %-34s %8.2f img/s\n", "expected mixed (harmonic mean)", expected);
  std::printf("\nmixed / expected from the single-model phases: %.3f   (goal >= 0.9)\n", ratio);

  if (!options.json_out.empty()) {
    const ordered_json report = {
        {"models", {manifest.name + "/" + manifest.version, other.name + "/" + other.version}},
        {"image", options.image},
        {"batch", options.batch},
        {"queue_delay_ms", options.delay_ms},
        {"clients", clients},
        {"threads", options.threads},
        {"seconds_per_phase", options.seconds},
        {"rounds", options.rounds},
        {"alone_first", load_json(loads[0])},
        {"alone_second", load_json(loads[1])},
        {"mixed", load_json(loads[2])},
        {"expected_mixed_throughput_per_s", expected},
        {"ratio_mixed_to_expected", ratio},
    };
    std::ofstream(options.json_out) << report.dump(2) << "\n";
  }
  return 0;
}

std::string default_server_binary() {
  // The benchmark is built next to pms-derm-cds (build/bin).
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "pms-derm-cds" : (self.parent_path() / "pms-derm-cds").string();
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  options.server = default_server_binary();
  CLI::App app{
      "service_bench: pms-derm-cds throughput and p50/p99 latency under load, dynamic batching on and off, "
      "against an offline batched ONNX Runtime run of the same model"};
  app.add_option("-m,--model", options.model, "Model directory (its active version) or package directory")->capture_default_str();
  app.add_option("--image", options.image, "JPEG photograph every request sends")->check(CLI::ExistingFile)->capture_default_str();
  app.add_option("--batch", options.batch, "Batch size: the service's --max-batch-size and the offline batch")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--delay-ms", options.delay_ms, "The service's --max-queue-delay-ms with batching on")->capture_default_str();
  app.add_option("--clients", options.clients, "Concurrent clients when saturating (0: twice the batch)")->capture_default_str();
  app.add_option("--seconds", options.seconds, "Duration of each load phase per mode (summed over the rounds)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--single-requests", options.single_requests, "Sequential requests for the single-request latency")
      ->check(CLI::Range(5, 100000))
      ->capture_default_str();
  app.add_option("--rounds", options.rounds, "Rounds each phase is split into, alternating offline, batching on and off")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Inference threads (0: the runtime's choice), offline and served")->capture_default_str();
  app.add_option("--server", options.server, "The pms-derm-cds binary")->capture_default_str();
  app.add_option("--json-out", options.json_out, "Also write the figures as JSON here");
  app.add_flag("--protocols", options.protocols,
               "Measure the Open Inference Protocol transports instead: REST JSON, REST binary and gRPC, one image "
               "per request, against offline inference (--clients default 4)");
  app.add_option("--mixed-with", options.mixed_with,
                 "Measure two models on one server instead: --model alone, this model (of the same repository) alone, "
                 "and both interleaved");
  CLI11_PARSE(app, argc, argv);
  try {
    if (options.protocols && !options.mixed_with.empty())
      throw dermcds::Error(dermcds::ErrorCode::kInvalidArgument, "--protocols and --mixed-with are separate measurements");
    if (!options.mixed_with.empty()) return run_mixed(options);
    return options.protocols ? run_protocols(options) : run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "service_bench: %s\n", e.what());
    return 1;
  }
}
