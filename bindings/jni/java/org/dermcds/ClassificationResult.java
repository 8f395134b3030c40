package org.dermcds;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * One photograph's reading: a probability per class, the triage tier, and exactly which model,
 * runtime, execution provider and precision produced it (docs/result.md). Immutable.
 */
public final class ClassificationResult {
  private final String modelName;
  private final String modelVersion;
  private final String runtime;
  private final String runtimeVersion;
  private final String provider;
  private final String precision;
  private final String[] classCodes;
  private final String[] classNames;
  private final float[] probabilities;
  private final int top1;
  private final String triageTier;
  private final String[] fallbacks;
  private final String json;
  private final String assessmentStatus;
  private final String[] reasonCodes;
  private final double[] reasonScores;
  private final double[] reasonThresholds;
  private final String[] reasonMessages;

  /** Made by the native code from a dermcds_result. */
  ClassificationResult(String modelName, String modelVersion, String runtime, String runtimeVersion, String provider,
      String precision, String[] classCodes, String[] classNames, float[] probabilities, int top1, String triageTier,
      String[] fallbacks, String json, String assessmentStatus, String[] reasonCodes, double[] reasonScores,
      double[] reasonThresholds, String[] reasonMessages) {
    this.modelName = modelName;
    this.modelVersion = modelVersion;
    this.runtime = runtime;
    this.runtimeVersion = runtimeVersion;
    this.provider = provider;
    this.precision = precision;
    this.classCodes = classCodes;
    this.classNames = classNames;
    this.probabilities = probabilities;
    this.top1 = top1;
    this.triageTier = triageTier;
    this.fallbacks = fallbacks;
    this.json = json;
    this.assessmentStatus = assessmentStatus;
    this.reasonCodes = reasonCodes;
    this.reasonScores = reasonScores;
    this.reasonThresholds = reasonThresholds;
    this.reasonMessages = reasonMessages;
  }

  public String modelName() { return modelName; }
  public String modelVersion() { return modelVersion; }
  /** "onnxruntime" or "tflite". */
  public String runtime() { return runtime; }
  public String runtimeVersion() { return runtimeVersion; }
  /** The execution provider that actually ran: "cpu", "xnnpack", "nnapi", "cuda", "tensorrt". */
  public String provider() { return provider; }
  /** "fp32", "fp16" or "int8". */
  public String precision() { return precision; }
  public int classCount() { return probabilities.length; }
  /** Class codes in the package's label order: "MEL", "NV", ... */
  public List<String> classCodes() { return Collections.unmodifiableList(Arrays.asList(classCodes)); }
  public List<String> classNames() { return Collections.unmodifiableList(Arrays.asList(classNames)); }
  /** A copy of the probabilities, in label order. */
  public float[] probabilities() { return probabilities.clone(); }
  public float probability(int classIndex) { return probabilities[classIndex]; }
  public int top1() { return top1; }
  public String top1Code() { return classCodes[top1]; }
  /**
   * "urgent_referral", "dermatology_review" or "routine" (the package's triage policy); "not assessable:
   * retake the photograph" when {@link #assessable()} is false.
   */
  public String triageTier() { return triageTier; }
  /** Providers asked for that could not run, each "provider: why". */
  public List<String> fallbacks() { return Collections.unmodifiableList(Arrays.asList(fallbacks)); }
  /** Whether the image can be assessed at all (docs/safety.md). */
  public boolean assessable() { return "assessable".equals(assessmentStatus); }
  /** "assessable" or "not_assessable". */
  public String assessmentStatus() { return assessmentStatus; }
  /** Codes of the failed checks: "out_of_distribution", "blurred", "overexposed", "underexposed", "monochrome", "too_small". */
  public List<String> reasonCodes() { return Collections.unmodifiableList(Arrays.asList(reasonCodes)); }
  public List<String> reasonMessages() { return Collections.unmodifiableList(Arrays.asList(reasonMessages)); }
  public double reasonScore(int index) { return reasonScores[index]; }
  public double reasonThreshold(int index) { return reasonThresholds[index]; }
  /** The whole result as docs/result.md's JSON document. */
  public String json() { return json; }

  @Override
  public String toString() {
    return modelName + "/" + modelVersion + " on " + runtime + " (" + provider + ", " + precision + "): " + top1Code() + " "
        + probabilities[top1] + ", " + triageTier;
  }
}
