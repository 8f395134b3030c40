#include "bench_stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

namespace dermcds::bench {

namespace {
double nearest_rank(const std::vector<double>& sorted, double percentile) {
  const auto rank = static_cast<std::size_t>(std::ceil(percentile / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}
}  // namespace

Summary summarize(std::vector<double> samples) {
  Summary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.count = samples.size();
  s.min = samples.front();
  s.max = samples.back();
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(s.count);
  double squares = 0;
  for (double v : samples) squares += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(squares / static_cast<double>(s.count));
  s.median = nearest_rank(samples, 50);
  s.p90 = nearest_rank(samples, 90);
  s.p95 = nearest_rank(samples, 95);
  s.p99 = nearest_rank(samples, 99);
  s.p999 = nearest_rank(samples, 99.9);
  return s;
}

std::string format_summary(const Summary& s) {
  char line[200];
  std::snprintf(line, sizeof line, "min %8.3f  median %8.3f  p90 %8.3f  p99 %8.3f  max %8.3f  (n=%zu)", s.min, s.median, s.p90, s.p99,
                s.max, s.count);
  return line;
}

double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      double kib = 0;
      status >> kib;
      return kib / 1024.0;
    }
    status.ignore(1 << 12, '\n');
  }
  return 0;
}

}  // namespace dermcds::bench
