// The ONNX Runtime backend's sessions share the process's one intra-op thread pool (ONNX
// Runtime's global thread pools, runtimes/onnxruntime/ort_api.hpp), observed from outside
// through the process's thread count in /proc/self/task: a pool of N intra-op threads is N-1
// worker threads (the calling thread is the N-th, as ONNX Runtime documents for
// intra_op_num_threads), created with the pool. A session with a thread count of its own must
// still get its own pool; that half is the negative control showing the count sees pools.
//
// One test per process (gtest_discover_tests): the first session of a process sizes the pool.
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "dermcds/classifier.hpp"
#include "dermcds/file_bytes.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

std::size_t process_threads() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// The thread count once exited threads are gone from /proc/self/task. A joined thread can stay
// listed for a moment after join() returns (under qemu-user the host thread finishes after the
// guest's join), so a count that should fall is read again until it does, for at most 10 s.
std::size_t threads_once_settled(std::size_t expected) {
  std::size_t n = process_threads();
  for (int i = 0; i < 200 && n > expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    n = process_threads();
  }
  return n;
}

std::unique_ptr<Classifier> open_tiny(int threads) {
  ClassifierOptions options;
  options.package = test::work_dir() / "core" / "repository" / "tiny" / "1";
  options.runtime = "onnxruntime";
  options.execution.provider = "cpu";
  options.execution.threads = threads;
  return Classifier::create(options);
}

void expect_same_answers(const ClassificationResult& a, const ClassificationResult& b) {
  ASSERT_EQ(a.probabilities.size(), b.probabilities.size());
  for (std::size_t i = 0; i < a.probabilities.size(); ++i) EXPECT_NEAR(a.probabilities[i], b.probabilities[i], 1e-5);
}

TEST(SharedThreadPool, SessionsWithTheSameThreadCountShareOnePoolAndOthersGetTheirOwn) {
  constexpr int kShared = 3, kOwn = 4;
  const auto photos = test::real_photographs();
  const auto image = read_file_bytes(photos[0]);
  const auto other_image = read_file_bytes(photos[2]);

  const std::size_t before = process_threads();
  const auto first = open_tiny(kShared);
  const std::size_t with_one = process_threads();
  // The first session creates the process's pool: kShared - 1 workers (ONNX Runtime may add
  // threads of its own, never fewer).
  EXPECT_GE(with_one - before, std::size_t{kShared - 1});

  // Version 2 warming while version 1 serves, and a third model: no new threads at all.
  auto second = open_tiny(kShared);
  const auto third = open_tiny(kShared);
  EXPECT_EQ(process_threads(), with_one);

  // Sessions on the shared pool run concurrently and answer as one session alone does; the
  // answers differ between the images, so the comparison means something.
  const ClassificationResult alone = first->classify(image);
  ClassificationResult from_second, from_third;
  std::thread a([&] { from_second = second->classify(image); });
  std::thread b([&] { from_third = third->classify(image); });
  a.join();
  b.join();
  expect_same_answers(alone, from_second);
  expect_same_answers(alone, from_third);
  const ClassificationResult other = first->classify(other_image);
  double spread = 0;
  for (std::size_t i = 0; i < alone.probabilities.size(); ++i)
    spread = std::max(spread, double(std::abs(alone.probabilities[i] - other.probabilities[i])));
  EXPECT_GT(spread, 0.05);

  // Unloading a session on the shared pool leaves the pool to the others.
  second.reset();
  EXPECT_EQ(threads_once_settled(with_one), with_one);
  expect_same_answers(alone, third->classify(image));

  // Negative control: another thread count cannot use the shared pool, so that session brings
  // its own kOwn - 1 workers (spinning off, not observable here) and takes them when it goes.
  auto own = open_tiny(kOwn);
  EXPECT_EQ(process_threads(), with_one + (kOwn - 1));
  expect_same_answers(alone, own->classify(image));
  own.reset();
  EXPECT_EQ(threads_once_settled(with_one), with_one);
}

}  // namespace
}  // namespace dermcds
