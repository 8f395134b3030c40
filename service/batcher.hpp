// Dynamic batching: requests for one loaded model are gathered into one inference.
//
// A DynamicBatcher owns one worker thread and a bounded queue. Callers decode and preprocess on
// their own threads (Classifier::prepare), then submit(); the worker takes the oldest request,
// waits until max_batch_size images are queued or the oldest has waited max_queue_delay,
// whichever comes first, and runs everything it took as one classify_batch() (images) or one
// infer() (Open Inference Protocol tensors). While it runs, new requests queue up and form the
// next batch, so under load batches fill without waiting.
//
// Bounded queue: submit() throws kResourceExhausted when max_queue_size requests are waiting, so
// that overload answers "retry later" at once instead of growing latency without bound.
// Deadlines: a request still queued at its deadline is answered kDeadlineExceeded, not run.
// Errors: callers check each request before submit() (sizes, values); should a batch still
// fail, each of its requests is run alone, so one bad request never fails the others.
//
// Ownership: holds a shared reference to its classifier. Destruction refuses nothing: it runs
// every request still queued, then joins the worker.
// Thread safety: submit(), queue_depth(), accepting() and flush() may be called concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "dermcds/classifier.hpp"

namespace dermcds::service {

using Deadline = std::chrono::steady_clock::time_point;

struct BatchingOptions {
  int max_batch_size = 8;  // images per inference; 1 turns batching off
  std::chrono::microseconds max_queue_delay{std::chrono::milliseconds(5)};
  int max_queue_size = 64;  // requests waiting (not counting the batch being run)
};

// What one executed batch looked like, for metrics.
struct BatchReport {
  int images = 0;
  int requests = 0;
  double inference_ms = 0;
  std::vector<double> queue_ms;  // per request: from submit() to the start of its batch
};

struct ClassifiedImage {
  ClassificationResult result;
  double queue_ms = 0;
};

struct InferredTensor {
  Tensor logits;     // [N, classes] for the request's N images
  Tensor ood_score;  // [N, 1]: the safety guard's output; empty for a package without it
  double queue_ms = 0;
  int batch_images = 0;  // images in the inference that served it (other requests' included)
};

class DynamicBatcher {
 public:
  using Listener = std::function<void(const BatchReport&)>;

  // `listener` runs on the worker thread after each batch; it must not throw or block.
  DynamicBatcher(std::shared_ptr<const Classifier> classifier, BatchingOptions options, Listener listener = {});
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  std::future<ClassifiedImage> submit(PreparedImage image, Deadline deadline);
  // `images`: [N,3,S,S] or [N,S,S,3] in the classifier's input layout. Throws kInvalidArgument
  // when it is not, before queueing.
  std::future<InferredTensor> submit(Tensor images, Deadline deadline);

  int queue_depth() const;
  // False while the queue is full: lets callers refuse before spending time on decoding.
  bool accepting() const;
  // Stops waiting for batches to fill: everything queued now and later runs as soon as the
  // worker is free. For shutdown, where nothing more is coming.
  void flush();

  const BatchingOptions& options() const { return options_; }

 private:
  struct ImageWork {
    PreparedImage image;
    std::promise<ClassifiedImage> promise;
  };
  struct TensorWork {
    Tensor images;
    std::promise<InferredTensor> promise;
  };
  struct Job {
    std::variant<ImageWork, TensorWork> work;
    int images = 1;
    std::chrono::steady_clock::time_point enqueued;
    Deadline deadline;
  };

  void enqueue(Job job);
  void run();
  std::vector<Job> take_batch();
  void execute(std::vector<Job>& batch);
  // Each runs one inference for its jobs and returns how to answer them; execute() answers only
  // after reporting the batch, so that whoever sees an answer also sees its batch in the metrics.
  using Delivery = std::function<void()>;
  Delivery run_images(const std::vector<Job*>& jobs, BatchReport& report);
  Delivery run_tensors(const std::vector<Job*>& jobs, BatchReport& report);
  // After a batch of several requests failed: runs each request alone (with `run`), so that an
  // error reaches only the request that caused it, never the others batched with it.
  Delivery run_each_alone(const std::vector<Job*>& jobs, BatchReport& report,
                          Delivery (DynamicBatcher::*run)(const std::vector<Job*>&, BatchReport&));

  std::shared_ptr<const Classifier> classifier_;
  BatchingOptions options_;
  int max_images_;  // options_.max_batch_size, capped by the model's own batch limit
  Listener listener_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  int queued_images_ = 0;
  bool flushing_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace dermcds::service
