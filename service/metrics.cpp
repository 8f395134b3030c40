#include "metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "dermcds/error.hpp"

namespace dermcds::service {

namespace {

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// The shortest text that reads back as the same double ("0.005", not "0.0050000000000000001"),
// and the spellings of the infinities the format uses.
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buffer[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, v);
    if (std::strtod(buffer, nullptr) == v) break;
  }
  return buffer;
}

}  // namespace

MetricFamily::MetricFamily(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void MetricFamily::check_arity(const LabelValues& values) const {
  if (values.size() != label_names_.size())
    throw Error(ErrorCode::kInternal,
                "metric " + name_ + " takes " + std::to_string(label_names_.size()) + " labels, got " + std::to_string(values.size()));
}

std::string MetricFamily::label_text(const LabelValues& values, const std::string& extra) const {
  if (values.empty() && extra.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += label_names_[i] + "=\"" + escape_label_value(values[i]) + '"';
  }
  if (!extra.empty()) out += (values.empty() ? "" : ",") + extra;
  return out + "}";
}

void MetricFamily::render_header(std::string& out, const char* type) const {
  out += "# HELP " + name_ + ' ' + escape_help(help_) + '\n';
  out += "# TYPE " + name_ + ' ' + type + '\n';
}

void Counter::increment(const LabelValues& labels, double by) {
  check_arity(labels);
  std::lock_guard lock(mutex_);
  values_[labels] += by;
}

double Counter::value(const LabelValues& labels) const {
  std::lock_guard lock(mutex_);
  const auto it = values_.find(labels);
  return it == values_.end() ? 0.0 : it->second;
}

void Counter::render(std::string& out) const {
  render_header(out, "counter");
  std::lock_guard lock(mutex_);
  for (const auto& [labels, value] : values_) out += name_ + label_text(labels) + ' ' + number(value) + '\n';
}

void Gauge::set(const LabelValues& labels, double value) {
  check_arity(labels);
  std::lock_guard lock(mutex_);
  values_[labels] = value;
}

void Gauge::replace_all(std::map<LabelValues, double> values) {
  for (const auto& [labels, value] : values) check_arity(labels);
  std::lock_guard lock(mutex_);
  values_ = std::move(values);
}

void Gauge::render(std::string& out) const {
  render_header(out, "gauge");
  std::lock_guard lock(mutex_);
  for (const auto& [labels, value] : values_) out += name_ + label_text(labels) + ' ' + number(value) + '\n';
}

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds)
    : MetricFamily(std::move(name), std::move(help), std::move(label_names)), bounds_(std::move(bounds)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()) || bounds_.empty())
    throw Error(ErrorCode::kInternal, "histogram " + name_ + " needs ascending bucket bounds");
}

void Histogram::observe(const LabelValues& labels, double value) {
  check_arity(labels);
  const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mutex_);
  Series& s = series_[labels];
  if (s.counts.empty()) s.counts.assign(bounds_.size() + 1, 0);
  ++s.counts[bucket];
  s.sum += value;
  ++s.count;
}

Histogram::Series Histogram::series(const LabelValues& labels) const {
  std::lock_guard lock(mutex_);
  const auto it = series_.find(labels);
  return it == series_.end() ? Series{std::vector<std::uint64_t>(bounds_.size() + 1, 0), 0, 0} : it->second;
}

void Histogram::render(std::string& out) const {
  render_header(out, "histogram");
  std::lock_guard lock(mutex_);
  for (const auto& [labels, s] : series_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += s.counts[i];
      const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
      out += name_ + "_bucket" + label_text(labels, "le=\"" + le + '"') + ' ' + std::to_string(cumulative) + '\n';
    }
    out += name_ + "_sum" + label_text(labels) + ' ' + number(s.sum) + '\n';
    out += name_ + "_count" + label_text(labels) + ' ' + std::to_string(s.count) + '\n';
  }
}

Counter& MetricsRegistry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  auto family = std::make_unique<Counter>(std::move(name), std::move(help), std::move(label_names));
  Counter& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Gauge& MetricsRegistry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  auto family = std::make_unique<Gauge>(std::move(name), std::move(help), std::move(label_names));
  Gauge& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Histogram& MetricsRegistry::histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                      std::vector<double> bounds) {
  auto family = std::make_unique<Histogram>(std::move(name), std::move(help), std::move(label_names), std::move(bounds));
  Histogram& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

void MetricsRegistry::add_collector(std::function<void()> collector) { collectors_.push_back(std::move(collector)); }

std::string MetricsRegistry::render() const {
  for (const auto& collect : collectors_) collect();
  std::string out;
  for (const auto& family : families_) family->render(out);
  return out;
}

}  // namespace dermcds::service
