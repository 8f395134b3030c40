// Shared by the benchmark tools: timing samples and their summary statistics.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace dermcds::bench {

using Clock = std::chrono::steady_clock;

inline double elapsed_ms(Clock::time_point start, Clock::time_point end = Clock::now()) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

struct Summary {
  std::size_t count = 0;
  double min = 0, mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0, p999 = 0, max = 0, stddev = 0;
};

// Percentiles by the nearest-rank method on a sorted copy; empty input gives zeros.
Summary summarize(std::vector<double> samples);

// "min 1.23  median 1.40  p90 1.52  p99 1.80  max 2.01  (n=200)", all in milliseconds.
std::string format_summary(const Summary& s);

// Peak resident set size of this process so far, in MiB (from /proc/self/status VmHWM).
double peak_rss_mib();

}  // namespace dermcds::bench
