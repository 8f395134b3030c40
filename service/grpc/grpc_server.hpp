// The Open Inference Protocol over gRPC (inference.GRPCInferenceService) and gRPC's standard
// health service (grpc.health.v1.Health), on Debian's gRPC for C++.
//
// A transport only: every request is read with the rules of inference_protocol.hpp and run by
// run_protocol_inference(), so gRPC serves the same models, through the same batch queues and
// checks, with the same metrics (protocol "grpc") as REST. dermcds::Error becomes a gRPC status
// (grpc_status.cpp): INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE (not ready, shutting down),
// RESOURCE_EXHAUSTED (full queue), DEADLINE_EXCEEDED (the request's or the client's deadline).
//
// This header includes no gRPC header, so that the rest of the service does not depend on it.
//
// Ownership: holds a reference to the ServiceContext, which must outlive it.
// Lifecycle: start() binds and serves on gRPC's own threads; stop() (any thread, any number of
// times, non-blocking) refuses new calls and lets those in progress finish within the grace
// period; wait() returns once it has stopped. The destructor stops and waits.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace dermcds::service {

struct ServiceContext;

class GrpcServer {
 public:
  GrpcServer(ServiceContext& context, std::string host, int port);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Binds and starts serving; returns the port. Throws kIoError naming host and port.
  int start();
  void stop(std::chrono::milliseconds grace);
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dermcds::service
