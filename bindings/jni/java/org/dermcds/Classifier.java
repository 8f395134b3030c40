package org.dermcds;

import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A derm-cds model package opened for classification: the Java face of include/dermcds/dermcds.h.
 *
 * <pre>
 * try (Classifier classifier = Classifier.open(packageDir,
 *         new ClassifierOptions().runtime("tflite").precision("int8"))) {
 *   ClassificationResult result = classifier.classify(jpegBytes);
 * }
 * </pre>
 *
 * <p>Threads: {@link #classify} may be called from many threads at once. {@link #close} waits
 * for classifications in progress and makes later calls fail with IllegalStateException.
 *
 * <p>Errors: every failure of the library is a {@link DermCdsException} with its status.
 *
 * <p>The native libraries are libdermcds_jni.so and libdermcds.so (on Android, under
 * jniLibs/arm64-v8a); they are loaded when this class is first used.
 */
public final class Classifier implements AutoCloseable {
  static {
    System.loadLibrary("dermcds_jni");
  }

  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private long handle; // dermcds_classifier*, 0 once closed; guarded by lock

  private Classifier(long handle) {
    this.handle = handle;
  }

  /** Opens a package directory (repository/name/version) or a model directory (its active version). */
  public static Classifier open(String packageDir) {
    return open(packageDir, new ClassifierOptions());
  }

  public static Classifier open(String packageDir, ClassifierOptions options) {
    if (packageDir == null || options == null) throw new NullPointerException("packageDir and options must not be null");
    Map<String, String> providerOptions = options.providerOptions();
    String[] keys = providerOptions.keySet().toArray(new String[0]);
    String[] values = providerOptions.values().toArray(new String[0]);
    return new Classifier(nativeOpen(packageDir, options.runtime, options.precision, options.provider, options.threads,
        options.deviceId, options.maxPixels, keys, values));
  }

  /** Classifies an encoded JPEG or PNG photograph. */
  public ClassificationResult classify(byte[] encodedImage) {
    if (encodedImage == null) throw new NullPointerException("encodedImage must not be null");
    lock.readLock().lock();
    try {
      return nativeClassifyEncoded(openHandle(), encodedImage);
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * Classifies 8-bit RGB pixels: {@code height} rows of {@code width} R,G,B triples, each row
   * {@code rowStride} bytes after the previous one (at least 3 * width).
   */
  public ClassificationResult classifyRgb(byte[] rgb, int width, int height, int rowStride) {
    if (rgb == null) throw new NullPointerException("rgb must not be null");
    if (width <= 0 || height <= 0 || rowStride < 3L * width || (long) rowStride * (height - 1) + 3L * width > rgb.length) {
      throw new IllegalArgumentException(
          "an RGB image of " + width + "x" + height + " with row stride " + rowStride + " does not fit " + rgb.length + " bytes");
    }
    lock.readLock().lock();
    try {
      return nativeClassifyRgb(openHandle(), rgb, width, height, rowStride);
    } finally {
      lock.readLock().unlock();
    }
  }

  public String modelName() { return describe(0); }
  public String modelVersion() { return describe(1); }
  public String runtime() { return describe(2); }
  /** The execution provider that runs the model after any fallback. */
  public String provider() { return describe(3); }
  public String precision() { return describe(4); }

  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (handle != 0) nativeClose(handle);
      handle = 0;
    } finally {
      lock.writeLock().unlock();
    }
  }

  private long openHandle() {
    if (handle == 0) throw new IllegalStateException("the classifier is closed");
    return handle;
  }

  private String describe(int what) {
    lock.readLock().lock();
    try {
      return nativeDescribe(openHandle(), what);
    } finally {
      lock.readLock().unlock();
    }
  }

  private static native long nativeOpen(String packageDir, String runtime, String precision, String provider, int threads,
      int deviceId, long maxPixels, String[] optionKeys, String[] optionValues);
  private static native void nativeClose(long handle);
  private static native String nativeDescribe(long handle, int what);
  private static native ClassificationResult nativeClassifyEncoded(long handle, byte[] encodedImage);
  private static native ClassificationResult nativeClassifyRgb(long handle, byte[] rgb, int width, int height, int rowStride);
}
