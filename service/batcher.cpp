#include "batcher.hpp"

#include <algorithm>
#include <cstring>

#include "dermcds/error.hpp"

namespace dermcds::service {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double, std::milli>(to - from).count(); }

template <typename Promise>
void fail(Promise& promise, std::exception_ptr error) {
  try {
    promise.set_exception(std::move(error));
  } catch (const std::future_error&) {
    // Already answered: nothing more to tell.
  }
}

}  // namespace

DynamicBatcher::DynamicBatcher(std::shared_ptr<const Classifier> classifier, BatchingOptions options, Listener listener)
    : classifier_(std::move(classifier)), options_(options), listener_(std::move(listener)) {
  if (!classifier_) throw Error(ErrorCode::kInternal, "DynamicBatcher needs a classifier");
  if (options_.max_batch_size < 1) throw Error(ErrorCode::kInvalidArgument, "max_batch_size must be at least 1");
  if (options_.max_queue_size < 1) throw Error(ErrorCode::kInvalidArgument, "max_queue_size must be at least 1");
  if (options_.max_queue_delay.count() < 0) throw Error(ErrorCode::kInvalidArgument, "max_queue_delay must not be negative");
  max_images_ = classifier_->max_batch() > 0 ? std::min(options_.max_batch_size, classifier_->max_batch()) : options_.max_batch_size;
  worker_ = std::thread([this] { run(); });
}

DynamicBatcher::~DynamicBatcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

std::future<ClassifiedImage> DynamicBatcher::submit(PreparedImage image, Deadline deadline) {
  Job job{ImageWork{std::move(image), {}}, 1, Clock::now(), deadline};
  auto future = std::get<ImageWork>(job.work).promise.get_future();
  enqueue(std::move(job));
  return future;
}

std::future<InferredTensor> DynamicBatcher::submit(Tensor images, Deadline deadline) {
  const int size = classifier_->manifest().input.crop_size;
  const std::vector<std::int64_t> tail = classifier_->input_layout() == TensorLayout::kNCHW ? std::vector<std::int64_t>{3, size, size}
                                                                                            : std::vector<std::int64_t>{size, size, 3};
  // Tensors from different requests are concatenated, so each must be exactly a batch of this
  // model's images; Classifier::infer would only find out after others were mixed in.
  if (images.shape.size() != 4 || images.shape[0] < 1 || !std::equal(tail.begin(), tail.end(), images.shape.begin() + 1) ||
      Tensor::checked_element_count(images.shape) != static_cast<std::int64_t>(images.data.size()))
    throw Error(ErrorCode::kInvalidArgument, "input tensor is not a batch of [" + std::to_string(tail[0]) + "," + std::to_string(tail[1]) +
                                                 "," + std::to_string(tail[2]) + "] images");
  const int count = static_cast<int>(images.shape[0]);
  Job job{TensorWork{std::move(images), {}}, count, Clock::now(), deadline};
  auto future = std::get<TensorWork>(job.work).promise.get_future();
  enqueue(std::move(job));
  return future;
}

void DynamicBatcher::enqueue(Job job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw Error(ErrorCode::kRuntimeUnavailable, "this model version is being unloaded");
    if (static_cast<int>(queue_.size()) >= options_.max_queue_size)
      throw Error(ErrorCode::kResourceExhausted,
                  "the model's queue is full (" + std::to_string(options_.max_queue_size) + " requests waiting); retry shortly");
    queued_images_ += job.images;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

int DynamicBatcher::queue_depth() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(queue_.size());
}

bool DynamicBatcher::accepting() const {
  std::lock_guard lock(mutex_);
  return !stopping_ && static_cast<int>(queue_.size()) < options_.max_queue_size;
}

void DynamicBatcher::flush() {
  {
    std::lock_guard lock(mutex_);
    flushing_ = true;
  }
  wake_.notify_all();
}

void DynamicBatcher::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, and everything queued has run
    // The batch window is measured from the oldest request's arrival, so a request never waits
    // for a batch longer than max_queue_delay, however busy the worker was when it came.
    const auto window_end = queue_.front().enqueued + options_.max_queue_delay;
    wake_.wait_until(lock, window_end, [this] { return queued_images_ >= max_images_ || stopping_ || flushing_; });
    std::vector<Job> batch = take_batch();
    lock.unlock();
    execute(batch);
    lock.lock();
  }
}

std::vector<DynamicBatcher::Job> DynamicBatcher::take_batch() {
  std::vector<Job> batch;
  int images = 0;
  // Always at least one request, even one larger than a batch: it runs alone.
  while (!queue_.empty() && (batch.empty() || images + queue_.front().images <= max_images_)) {
    images += queue_.front().images;
    queued_images_ -= queue_.front().images;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void DynamicBatcher::execute(std::vector<Job>& batch) {
  const auto start = Clock::now();
  std::vector<Job*> images, tensors;
  for (Job& job : batch) {
    if (start > job.deadline) {
      const auto expired = std::make_exception_ptr(
          Error(ErrorCode::kDeadlineExceeded, "the request waited " + std::to_string(static_cast<long>(ms_between(job.enqueued, start))) +
                                                  " ms for the model, beyond its time limit"));
      std::visit([&](auto& work) { fail(work.promise, expired); }, job.work);
      continue;
    }
    (std::holds_alternative<ImageWork>(job.work) ? images : tensors).push_back(&job);
  }
  BatchReport report;
  for (Job* job : images) report.queue_ms.push_back(ms_between(job->enqueued, start));
  for (Job* job : tensors) report.queue_ms.push_back(ms_between(job->enqueued, start));
  std::vector<Delivery> deliveries;
  if (!images.empty()) deliveries.push_back(run_images(images, report));
  if (!tensors.empty()) deliveries.push_back(run_tensors(tensors, report));
  if (listener_ && report.requests > 0) listener_(report);
  for (const Delivery& deliver : deliveries) deliver();
}

DynamicBatcher::Delivery DynamicBatcher::run_images(const std::vector<Job*>& jobs, BatchReport& report) {
  const auto start = Clock::now();
  std::vector<PreparedImage> inputs;
  inputs.reserve(jobs.size());
  for (Job* job : jobs) inputs.push_back(std::move(std::get<ImageWork>(job->work).image));
  try {
    auto results = std::make_shared<std::vector<ClassificationResult>>(classifier_->classify_batch(inputs));
    report.images += static_cast<int>(jobs.size());
    report.requests += static_cast<int>(jobs.size());
    report.inference_ms += ms_between(start, Clock::now());
    return [jobs, results, start] {
      for (std::size_t i = 0; i < jobs.size(); ++i)
        std::get<ImageWork>(jobs[i]->work).promise.set_value({std::move((*results)[i]), ms_between(jobs[i]->enqueued, start)});
    };
  } catch (...) {
    if (jobs.size() == 1)
      return [job = jobs.front(), error = std::current_exception()] { fail(std::get<ImageWork>(job->work).promise, error); };
    // One request may be what failed the batch: each runs alone, so only its own caller hears
    // of its error (the images are back in their jobs for that).
    for (std::size_t i = 0; i < jobs.size(); ++i) std::get<ImageWork>(jobs[i]->work).image = std::move(inputs[i]);
    return run_each_alone(jobs, report, &DynamicBatcher::run_images);
  }
}

DynamicBatcher::Delivery DynamicBatcher::run_tensors(const std::vector<Job*>& jobs, BatchReport& report) {
  const auto start = Clock::now();
  try {
    Tensor batch;
    if (jobs.size() == 1) {
      batch = std::move(std::get<TensorWork>(jobs.front()->work).images);
    } else {
      batch.shape = std::get<TensorWork>(jobs.front()->work).images.shape;
      batch.shape[0] = 0;
      for (Job* job : jobs) {
        const Tensor& t = std::get<TensorWork>(job->work).images;
        batch.shape[0] += t.shape[0];
        batch.data.insert(batch.data.end(), t.data.begin(), t.data.end());
      }
    }
    const int total = static_cast<int>(batch.shape[0]);
    auto outputs = std::make_shared<const InferenceOutputs>(classifier_->infer_outputs(batch));
    const Tensor* logits = &outputs->logits;
    report.images += total;
    report.requests += static_cast<int>(jobs.size());
    report.inference_ms += ms_between(start, Clock::now());
    return [jobs, outputs, logits, total, start] {
      const auto classes = static_cast<std::size_t>(logits->shape[1]);
      std::size_t row = 0;
      for (Job* job : jobs) {
        InferredTensor answer;
        answer.logits.shape = {job->images, logits->shape[1]};
        const auto begin = logits->data.begin() + static_cast<std::ptrdiff_t>(row * classes);
        answer.logits.data.assign(begin, begin + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(job->images) * classes));
        if (!outputs->ood_score.data.empty()) {
          answer.ood_score.shape = {job->images, 1};
          const auto first = outputs->ood_score.data.begin() + static_cast<std::ptrdiff_t>(row);
          answer.ood_score.data.assign(first, first + job->images);
        }
        answer.queue_ms = ms_between(job->enqueued, start);
        answer.batch_images = total;
        row += static_cast<std::size_t>(job->images);
        std::get<TensorWork>(job->work).promise.set_value(std::move(answer));
      }
    };
  } catch (...) {
    if (jobs.size() == 1)
      return [job = jobs.front(), error = std::current_exception()] { fail(std::get<TensorWork>(job->work).promise, error); };
    // As for images: the batch was a copy, each request's tensor is still in its job.
    return run_each_alone(jobs, report, &DynamicBatcher::run_tensors);
  }
}

DynamicBatcher::Delivery DynamicBatcher::run_each_alone(const std::vector<Job*>& jobs, BatchReport& report,
                                                        Delivery (DynamicBatcher::*run)(const std::vector<Job*>&, BatchReport&)) {
  std::vector<Delivery> each;
  each.reserve(jobs.size());
  for (Job* job : jobs) each.push_back((this->*run)({job}, report));
  return [each = std::move(each)] {
    for (const Delivery& deliver : each) deliver();
  };
}

}  // namespace dermcds::service
