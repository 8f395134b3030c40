package org.dermcds;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How a {@link Classifier} runs its model; every setting has a default. Android apps typically
 * set {@code runtime("tflite").precision("int8")} and, to try the device's accelerator,
 * {@code provider("nnapi")} (which falls back to XNNPACK where NNAPI cannot run the model).
 * Not thread-safe; the classifier copies what it needs when it opens.
 */
public final class ClassifierOptions {
  String runtime = "auto";
  String precision = "auto";
  String provider = "auto";
  int threads = 0;
  int deviceId = 0;
  long maxPixels = 0; // 0: the library's default
  final Map<String, String> providerOptions = new LinkedHashMap<>();

  /** "auto", "onnxruntime" or "tflite". */
  public ClassifierOptions runtime(String runtime) {
    this.runtime = runtime;
    return this;
  }

  /** "auto", "fp32", "fp16" or "int8": which artifact of the package to run. */
  public ClassifierOptions precision(String precision) {
    this.precision = precision;
    return this;
  }

  /** onnxruntime: auto, cpu, cuda, tensorrt; tflite: auto, xnnpack, builtin, nnapi. */
  public ClassifierOptions provider(String provider) {
    this.provider = provider;
    return this;
  }

  /** Inference threads; 0 lets the runtime choose. */
  public ClassifierOptions threads(int threads) {
    this.threads = threads;
    return this;
  }

  /** GPU device for cuda/tensorrt. */
  public ClassifierOptions deviceId(int deviceId) {
    this.deviceId = deviceId;
    return this;
  }

  /** Images with more pixels are refused with IMAGE_TOO_LARGE. */
  public ClassifierOptions maxPixels(long maxPixels) {
    this.maxPixels = maxPixels;
    return this;
  }

  /** A provider option "<provider>:<name>" (docs/edge.md) or a runtime's own key. */
  public ClassifierOptions providerOption(String key, String value) {
    providerOptions.put(key, value);
    return this;
  }

  Map<String, String> providerOptions() {
    return Collections.unmodifiableMap(providerOptions);
  }
}
