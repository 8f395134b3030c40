// Prometheus metrics: counters, gauges and histograms with labels, rendered in the text
// exposition format (version 0.0.4) that GET /metrics serves.
//
// Families are created once at start-up and live as long as the registry; the references the
// registry hands out stay valid. Recording is thread-safe (a mutex per family: the service
// records a handful of samples per request, far from where a lock would show).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace dermcds::service {

using LabelValues = std::vector<std::string>;  // in the order of the family's label names

class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, std::vector<std::string> label_names);
  virtual ~MetricFamily() = default;
  MetricFamily(const MetricFamily&) = delete;
  MetricFamily& operator=(const MetricFamily&) = delete;
  virtual void render(std::string& out) const = 0;
  const std::string& name() const { return name_; }

 protected:
  // `{a="x",b="y"}` with values escaped as the format requires; `extra` is appended (le="...").
  std::string label_text(const LabelValues& values, const std::string& extra = {}) const;
  void check_arity(const LabelValues& values) const;
  void render_header(std::string& out, const char* type) const;

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  mutable std::mutex mutex_;
};

class Counter final : public MetricFamily {
 public:
  using MetricFamily::MetricFamily;
  void increment(const LabelValues& labels, double by = 1.0);
  double value(const LabelValues& labels) const;
  void render(std::string& out) const override;

 private:
  std::map<LabelValues, double> values_;
};

class Gauge final : public MetricFamily {
 public:
  using MetricFamily::MetricFamily;
  void set(const LabelValues& labels, double value);
  // Replaces every series at once: for gauges refreshed from current state at scrape time, so
  // that series of things that went away (an unloaded model) disappear.
  void replace_all(std::map<LabelValues, double> values);
  void render(std::string& out) const override;

 private:
  std::map<LabelValues, double> values_;
};

class Histogram final : public MetricFamily {
 public:
  // `bounds`: ascending upper bounds of the buckets; +Inf is implied.
  Histogram(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds);
  void observe(const LabelValues& labels, double value);
  void render(std::string& out) const override;

  struct Series {
    std::vector<std::uint64_t> counts;  // per bucket, not cumulative
    double sum = 0;
    std::uint64_t count = 0;
  };
  Series series(const LabelValues& labels) const;

 private:
  std::vector<double> bounds_;
  std::map<LabelValues, Series> series_;
};

class MetricsRegistry {
 public:
  Counter& counter(std::string name, std::string help, std::vector<std::string> label_names);
  Gauge& gauge(std::string name, std::string help, std::vector<std::string> label_names);
  Histogram& histogram(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds);
  // Runs before each render(), to refresh gauges that mirror current state.
  void add_collector(std::function<void()> collector);
  std::string render() const;

 private:
  std::vector<std::unique_ptr<MetricFamily>> families_;
  std::vector<std::function<void()>> collectors_;
};

}  // namespace dermcds::service
