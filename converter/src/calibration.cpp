#include "calibration.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "dermcds/error.hpp"
#include "dermcds/tflite_model_runner.hpp"
#include "tflite_writer.hpp"

namespace dermcds::converter {

namespace {

constexpr int kBins = 2048;

struct Statistics {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  double lo = 0, hi = 0;  // histogram span, always containing 0
  std::vector<double> counts;
  std::vector<double> channel_sum;  // per channel (last dimension), filled with the histogram
  double positions = 0;             // values per channel seen

  // The lowest float is the converter's stand-in for minus infinity (the padding of max pools);
  // it is not a value the tensor takes on.
  static bool sentinel(float x) { return x == std::numeric_limits<float>::lowest(); }

  void observe_range(const float* v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      if (sentinel(v[i])) continue;
      min = std::min(min, v[i]);
      max = std::max(max, v[i]);
    }
  }
  void start_histogram() {
    lo = std::min(0.0, static_cast<double>(min));
    hi = std::max(0.0, static_cast<double>(max));
    if (hi - lo < 1e-12) hi = lo + 1e-12;
    counts.assign(kBins, 0.0);
  }
  void observe_values(const float* v, std::size_t n, std::size_t channels) {
    const double scale = kBins / (hi - lo);
    if (channels == 0 || n % channels != 0) channels = 1;
    if (channel_sum.size() != channels) channel_sum.assign(channels, 0.0);
    positions += static_cast<double>(n / channels);
    for (std::size_t i = 0; i < n; ++i) {
      if (sentinel(v[i])) continue;
      channel_sum[i % channels] += v[i];
      const int b = static_cast<int>((static_cast<double>(v[i]) - lo) * scale);
      counts[static_cast<std::size_t>(std::clamp(b, 0, kBins - 1))] += 1.0;
    }
  }
  double bin_center(int b) const { return lo + (b + 0.5) * (hi - lo) / kBins; }
};

// Expected squared error of quantizing the histogram to 256 levels over [a, b], with prefix
// sums so that each candidate costs O(1).
class ErrorModel {
 public:
  explicit ErrorModel(const Statistics& s) : s_(s) {
    n_.assign(kBins + 1, 0.0);
    sx_.assign(kBins + 1, 0.0);
    sxx_.assign(kBins + 1, 0.0);
    for (int b = 0; b < kBins; ++b) {
      const double c = s.counts[static_cast<std::size_t>(b)], x = s.bin_center(b);
      n_[static_cast<std::size_t>(b + 1)] = n_[static_cast<std::size_t>(b)] + c;
      sx_[static_cast<std::size_t>(b + 1)] = sx_[static_cast<std::size_t>(b)] + c * x;
      sxx_[static_cast<std::size_t>(b + 1)] = sxx_[static_cast<std::size_t>(b)] + c * x * x;
    }
  }

  double error(double a, double b) const {
    const int first_inside = bin_at_or_above(a), past_inside = bin_at_or_above(b);
    const auto i = static_cast<std::size_t>(first_inside), j = static_cast<std::size_t>(past_inside);
    // Below a: sum c (x - a)^2; above b: sum c (x - b)^2.
    const double below = sxx_[i] - 2 * a * sx_[i] + a * a * n_[i];
    const double above = (sxx_[kBins] - sxx_[j]) - 2 * b * (sx_[kBins] - sx_[j]) + b * b * (n_[kBins] - n_[j]);
    const double step = (b - a) / 255.0;
    const double inside = (n_[j] - n_[i]) * step * step / 12.0;
    return below + above + inside;
  }

 private:
  // First bin whose center is >= v.
  int bin_at_or_above(double v) const {
    const double position = (v - s_.lo) / (s_.hi - s_.lo) * kBins - 0.5;
    return std::clamp(static_cast<int>(std::ceil(position)), 0, kBins);
  }
  const Statistics& s_;
  std::vector<double> n_, sx_, sxx_;
};

std::pair<double, double> mse_range(const Statistics& s) {
  const ErrorModel model(s);
  double a = s.lo, b = s.hi;
  constexpr int kSteps = 400;
  for (int round = 0; round < 3; ++round) {
    if (b > 0) {
      double best = model.error(a, b), best_b = b;
      for (int k = 1; k <= kSteps; ++k) {
        const double candidate = s.hi * k / kSteps;
        const double e = model.error(a, candidate);
        if (e < best) best = e, best_b = candidate;
      }
      b = best_b;
    }
    if (a < 0) {
      double best = model.error(a, b), best_a = a;
      for (int k = 1; k <= kSteps; ++k) {
        const double candidate = s.lo * k / kSteps;
        const double e = model.error(candidate, b);
        if (e < best) best = e, best_a = candidate;
      }
      a = best_a;
    }
  }
  return {a, b};
}

double quantile(const Statistics& s, double fraction) {
  double total = 0;
  for (double c : s.counts) total += c;
  const double target = fraction * total;
  double seen = 0;
  for (int b = 0; b < kBins; ++b) {
    seen += s.counts[static_cast<std::size_t>(b)];
    if (seen >= target) return s.lo + (b + 1.0) * (s.hi - s.lo) / kBins;
  }
  return s.hi;
}

std::pair<float, float> method_range(const Statistics& s, CalibrationMethod method, double percentile) {
  double a = s.lo, b = s.hi;
  switch (method) {
    case CalibrationMethod::kMinMax:
      break;
    case CalibrationMethod::kPercentile: {
      const double p = percentile / 100.0;
      a = std::min(0.0, quantile(s, 1.0 - p));
      b = std::max(0.0, quantile(s, p));
      break;
    }
    case CalibrationMethod::kMse:
      std::tie(a, b) = mse_range(s);
      break;
  }
  return {static_cast<float>(a), static_cast<float>(b)};
}

TensorRange choose_range(const Statistics& s, CalibrationMethod method, double percentile) {
  TensorRange r;
  r.observed_min = s.min;
  r.observed_max = s.max;
  for (CalibrationMethod m : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kMse})
    r.by_method[static_cast<std::size_t>(m)] = method_range(s, m, percentile);
  std::tie(r.min, r.max) = r.range(method);
  if (s.positions > 0)
    for (double sum : s.channel_sum) r.channel_mean.push_back(sum / s.positions);
  return r;
}

}  // namespace

std::map<int, TensorRange> calibrate(const TflModel& model, const CalibrationOptions& options,
                                     const std::function<void(const std::string&)>& progress) {
  if (model.inputs.size() != 1) throw Error(ErrorCode::kUnsupportedModel, "int8 calibration supports models with one input");
  if (options.samples.empty()) throw Error(ErrorCode::kInvalidArgument, "int8 calibration needs at least one sample");
  if (options.method == CalibrationMethod::kPercentile && !(options.percentile > 50.0 && options.percentile <= 100.0))
    throw Error(ErrorCode::kInvalidArgument, "calibration percentile must be in (50, 100]");
  const int input = model.inputs[0];
  const TflTensor& input_tensor = model.tensors[static_cast<std::size_t>(input)];
  const std::vector<std::int64_t> input_shape(input_tensor.shape.begin(), input_tensor.shape.end());
  for (std::size_t i = 0; i < options.samples.size(); ++i)
    if (options.samples[i].shape != input_shape || options.samples[i].data.size() != static_cast<std::size_t>(input_tensor.element_count()))
      throw Error(ErrorCode::kInvalidArgument, "calibration sample " + std::to_string(i) + " does not have the model input's shape (" +
                                                   std::to_string(input_tensor.element_count()) + " values, NHWC)");

  // The same model with every float activation as an output.
  TflModel instrumented = model;
  std::vector<int> observed;
  for (std::size_t t = 0; t < model.tensors.size(); ++t) {
    const TflTensor& tensor = model.tensors[t];
    if (tensor.is_constant() || tensor.type != TensorType::FLOAT32 || model.is_model_input(static_cast<int>(t))) continue;
    observed.push_back(static_cast<int>(t));
  }
  instrumented.outputs = observed;
  // TFLite's own kernels, no delegate: every activation is a model output here, and each output
  // would end an XNNPACK partition.
  runtimes::tflite::RunnerOptions runner_options;
  runner_options.xnnpack = false;
  runner_options.threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
  runtimes::tflite::ModelRunner runner(serialize_tflite(instrumented), runner_options, "calibration model");

  std::map<int, Statistics> stats;
  auto run_sample = [&](const Tensor& sample, bool histogram) {
    runner.set_input_values(0, sample.data);
    runner.invoke();
    Statistics& in = stats[input];
    const auto channels_of = [&](int t) {
      const TflTensor& tensor = model.tensors[static_cast<std::size_t>(t)];
      return tensor.shape.empty() ? std::size_t{1} : static_cast<std::size_t>(std::max(1, tensor.shape.back()));
    };
    histogram ? in.observe_values(sample.data.data(), sample.data.size(), channels_of(input))
              : in.observe_range(sample.data.data(), sample.data.size());
    for (std::size_t o = 0; o < observed.size(); ++o) {
      const std::vector<float> values = runner.output_floats(o);
      Statistics& s = stats[observed[o]];
      histogram ? s.observe_values(values.data(), values.size(), channels_of(observed[o])) : s.observe_range(values.data(), values.size());
    }
  };
  const std::size_t count = options.samples.size();
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1)
      for (auto& [t, s] : stats) s.start_histogram();
    for (std::size_t i = 0; i < count; ++i) {
      run_sample(options.samples[i], pass == 1);
      if (progress && ((i + 1) % 25 == 0 || i + 1 == count))
        progress("calibrating (" + std::string(pass == 0 ? "ranges" : "histograms") + "): " + std::to_string(i + 1) + "/" +
                 std::to_string(count) + " samples");
    }
  }

  std::map<int, TensorRange> ranges;
  for (const auto& [t, s] : stats) {
    // MSE weighs every element alike, which suits feature maps (many redundant positions) but
    // not per-image vectors: after global pooling each element is a feature the classifier reads,
    // the largest ones carry the decision, and clipping them changes classes. Vectors (one value
    // per channel: the pooled features, squeeze-and-excitation gates, logits) keep their full
    // observed range.
    const TflTensor& tensor = model.tensors[static_cast<std::size_t>(t)];
    const bool vector = !tensor.shape.empty() && tensor.element_count() == tensor.shape.back();
    CalibrationMethod method = options.method;
    if (method == CalibrationMethod::kMse && vector) method = CalibrationMethod::kMinMax;
    ranges[t] = choose_range(s, method, options.percentile);
  }
  return ranges;
}

}  // namespace dermcds::converter
