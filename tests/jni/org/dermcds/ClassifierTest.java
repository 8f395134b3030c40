package org.dermcds;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.Assume;
import org.junit.Test;

/**
 * The Java binding end to end, as an Android app uses it: open a package, classify encoded
 * photographs and RGB pixels, read what ran, handle errors.
 *
 * <p>References: the tiny packages' numpy probabilities (tests/core/make_tiny_packages.py via
 * tests/capi/make_c_reference.py), pixels decoded by Java's own ImageIO, and for the int8
 * MobileNetV3 package the C++ command-line tool on the same photographs.
 *
 * <p>System properties (set by bindings/jni/CMakeLists.txt): dermcds.tiny (the tiny repository),
 * dermcds.reference (reference.txt), dermcds.repository (models/), dermcds.cli (the dermcds
 * binary), dermcds.photos (real photographs), dermcds.work (a scratch directory).
 */
public class ClassifierTest {
  private static final int CLASSES = 8;
  private static final double REFERENCE_BOUND = 1e-4;

  private static String property(String name) {
    String value = System.getProperty(name);
    if (value == null) throw new IllegalStateException("system property " + name + " is not set");
    return value;
  }

  private static String tinyPackage(String name) {
    return Paths.get(property("dermcds.tiny"), name, "1").toString();
  }

  /** One line of reference.txt: "encoded PATH p0..p7" or "rgb FILE WIDTH HEIGHT p0..p7". */
  private static final class Reference {
    final String kind;
    final String path;
    final double[] probabilities = new double[CLASSES];

    Reference(String line) {
      String[] fields = line.trim().split("\\s+");
      kind = fields[0];
      path = fields[1];
      int first = kind.equals("rgb") ? 4 : 2;
      for (int c = 0; c < CLASSES; ++c) probabilities[c] = Double.parseDouble(fields[first + c]);
    }
  }

  private static List<Reference> encodedReferences() throws IOException {
    List<Reference> references = new ArrayList<>();
    for (String line : Files.readAllLines(Paths.get(property("dermcds.reference")))) {
      if (line.startsWith("encoded ")) references.add(new Reference(line));
    }
    assertTrue("reference.txt has too few photographs", references.size() >= 4);
    return references;
  }

  private static double worstDifference(ClassificationResult result, double[] expected) {
    double worst = 0;
    for (int c = 0; c < expected.length; ++c) worst = Math.max(worst, Math.abs(result.probability(c) - expected[c]));
    return worst;
  }

  /** Packed RGB bytes of an image as Java's ImageIO decodes it (an independent decoder). */
  private static byte[] javaDecodedRgb(BufferedImage image, int rowStride) {
    byte[] rgb = new byte[rowStride * image.getHeight()];
    for (int y = 0; y < image.getHeight(); ++y) {
      for (int x = 0; x < image.getWidth(); ++x) {
        int argb = image.getRGB(x, y);
        int at = y * rowStride + 3 * x;
        rgb[at] = (byte) (argb >> 16);
        rgb[at + 1] = (byte) (argb >> 8);
        rgb[at + 2] = (byte) argb;
      }
    }
    return rgb;
  }

  @Test
  public void classifiesPhotographsLikeTheNumpyReference() throws IOException {
    try (Classifier classifier = Classifier.open(tinyPackage("tiny"))) {
      assertEquals("tiny", classifier.modelName());
      assertEquals("onnxruntime", classifier.runtime());
      List<float[]> seen = new ArrayList<>();
      for (Reference reference : encodedReferences()) {
        ClassificationResult result = classifier.classify(Files.readAllBytes(Paths.get(reference.path)));
        assertEquals(CLASSES, result.classCount());
        assertTrue(reference.path + ": " + worstDifference(result, reference.probabilities),
            worstDifference(result, reference.probabilities) <= REFERENCE_BOUND);
        assertEquals("MEL", result.classCodes().get(0));
        assertEquals("Squamous cell carcinoma", result.classNames().get(7));
        assertEquals("onnxruntime", result.runtime());
        assertEquals("cpu", result.provider());
        assertEquals("fp32", result.precision());
        assertTrue(result.fallbacks().isEmpty());
        assertTrue(result.json().contains("\"triage\":{\"tier\":\"" + result.triageTier() + "\""));
        float[] p = result.probabilities();
        for (int c = 0; c < CLASSES; ++c) assertTrue(p[c] <= p[result.top1()]);
        seen.add(p);
      }
      assertDifferBetweenImages(seen, 0.1);
    }
  }

  @Test
  public void pixelsDecodedByJavaGiveTheReferenceAnswer() throws IOException {
    // PNG is lossless, so ImageIO and the library's libpng must agree on every pixel; a padded
    // row stride (as camera buffers have) must not change anything.
    try (Classifier classifier = Classifier.open(tinyPackage("tiny"))) {
      int pngs = 0;
      for (Reference reference : encodedReferences()) {
        if (!reference.path.endsWith(".png")) continue;
        ++pngs;
        BufferedImage image = ImageIO.read(new File(reference.path));
        int width = image.getWidth(), height = image.getHeight();
        ClassificationResult packed = classifier.classifyRgb(javaDecodedRgb(image, 3 * width), width, height, 3 * width);
        assertTrue(reference.path, worstDifference(packed, reference.probabilities) <= REFERENCE_BOUND);
        ClassificationResult padded = classifier.classifyRgb(javaDecodedRgb(image, 3 * width + 5), width, height, 3 * width + 5);
        assertArrayEquals(packed.probabilities(), padded.probabilities(), 0.0f);
        ClassificationResult encoded = classifier.classify(Files.readAllBytes(Paths.get(reference.path)));
        assertArrayEquals(encoded.probabilities(), packed.probabilities(), 0.0f);
      }
      assertTrue("no PNG photographs in the reference", pngs >= 2);
    }
  }

  /**
   * The Android configuration: the int8 MobileNetV3-Large package on TensorFlow Lite. The same
   * Java calls on a phone run the arm64 build of the same libraries.
   */
  @Test
  public void mobileNetV3Int8PackageAsAnAndroidAppRunsIt() throws Exception {
    // The newest version, promoted or not: whether it passed its parity gate is the lifecycle's
    // business (tests/parity, tests/lifecycle); the binding must carry whatever it computes.
    Path model = newestVersion(Paths.get(property("dermcds.repository"), "derm-mnv3-large"));
    ClassifierOptions options = new ClassifierOptions().runtime("tflite").precision("int8").provider("auto");
    Classifier classifier;
    try {
      classifier = Classifier.open(model.toString(), options);
    } catch (DermCdsException e) {
      Assume.assumeTrue(model + " has no int8 TFLite artifact: " + e.getMessage(), e.status() != Status.NOT_FOUND);
      throw e;
    }
    try (Classifier c = classifier) {
      List<float[]> seen = new ArrayList<>();
      for (String photo : new String[] {"coffee.png", "chelsea.png", "rocket.jpg", "astronaut.png"}) {
        Path path = Paths.get(property("dermcds.photos"), photo);
        ClassificationResult result = c.classify(Files.readAllBytes(path));
        assertEquals("tflite", result.runtime());
        assertEquals("int8", result.precision());
        assertEquals("derm-mnv3-large", result.modelName());
        assertEquals(model.getFileName().toString(), result.modelVersion());
        assertTrue(result.provider(), result.provider().equals("xnnpack") || result.provider().equals("builtin"));
        double sum = 0;
        for (float p : result.probabilities()) sum += p;
        assertEquals(1.0, sum, 1e-4);
        // Bit for bit what the C++ tool answers with the same package and options: the binding
        // adds nothing and loses nothing.
        assertArrayEquals(photo, cliProbabilities(model, path), rounded(result.probabilities()), 1e-12);
        seen.add(result.probabilities());
      }
      assertDifferBetweenImages(seen, 1e-3);
    }
  }

  @Test
  public void failuresCarryTheirStatusAndMessage() throws IOException {
    expectStatus(Status.NOT_FOUND, "/nonexistent/models/x", () -> Classifier.open("/nonexistent/models/x/1"));
    expectStatus(Status.MODEL_MISMATCH, "model.onnx", () -> Classifier.open(tinyPackage("tiny-wrong-size")));
    expectStatus(Status.INVALID_ARGUMENT, "fp8", () -> Classifier.open(tinyPackage("tiny"), new ClassifierOptions().precision("fp8")));
    expectStatus(Status.INVALID_ARGUMENT, "tensorrt:trt_fp16",
        () -> Classifier.open(tinyPackage("tiny"), new ClassifierOptions().providerOption("tensorrt:trt_fp16", "1")));
    Classifier classifier = Classifier.open(tinyPackage("tiny"), new ClassifierOptions().maxPixels(10_000));
    expectStatus(Status.UNSUPPORTED_FORMAT, "not a JPEG or PNG",
        () -> classifier.classify("hello, this is text".getBytes(StandardCharsets.US_ASCII)));
    expectStatus(Status.INVALID_IMAGE, "truncated", () -> classifier.classify(new byte[] {(byte) 0xff, (byte) 0xd8, (byte) 0xff}));
    expectStatus(Status.IMAGE_TOO_LARGE, "over the limit of 10000 pixels",
        () -> classifier.classify(Files.readAllBytes(Paths.get(encodedReferences().get(0).path))));
    try {
      classifier.classifyRgb(new byte[10], 4, 4, 12);
      fail("accepted 10 bytes for a 4x4 image");
    } catch (IllegalArgumentException expected) {
      assertTrue(expected.getMessage(), expected.getMessage().contains("does not fit 10 bytes"));
    }
    classifier.close();
    classifier.close(); // closing twice is harmless
    try {
      classifier.classify(new byte[] {1});
      fail("a closed classifier classified");
    } catch (IllegalStateException expected) {
      assertTrue(expected.getMessage().contains("closed"));
    }
  }

  @Test
  public void tensorRTRequestFallsBackToTheCpuAndSaysWhy() throws IOException {
    try (Classifier classifier = Classifier.open(tinyPackage("tiny"), new ClassifierOptions().provider("tensorrt"))) {
      assertEquals("cpu", classifier.provider());
      Reference reference = encodedReferences().get(0);
      ClassificationResult result = classifier.classify(Files.readAllBytes(Paths.get(reference.path)));
      assertEquals("cpu", result.provider());
      assertEquals(2, result.fallbacks().size());
      assertTrue(result.fallbacks().get(0), result.fallbacks().get(0).startsWith("tensorrt: "));
      assertTrue(result.fallbacks().get(1), result.fallbacks().get(1).startsWith("cuda: "));
      assertTrue(worstDifference(result, reference.probabilities) <= REFERENCE_BOUND);
    }
  }

  @Test
  public void oneClassifierServesManyThreads() throws Exception {
    List<Reference> references = encodedReferences();
    try (Classifier classifier = Classifier.open(tinyPackage("tiny"))) {
      List<float[]> expected = new ArrayList<>();
      for (Reference r : references) expected.add(classifier.classify(Files.readAllBytes(Paths.get(r.path))).probabilities());
      ExecutorService pool = Executors.newFixedThreadPool(4);
      List<Future<float[]>> answers = new ArrayList<>();
      for (int round = 0; round < 3; ++round) {
        for (Reference r : references) {
          answers.add(pool.submit(() -> classifier.classify(Files.readAllBytes(Paths.get(r.path))).probabilities()));
        }
      }
      for (int i = 0; i < answers.size(); ++i) assertArrayEquals(expected.get(i % references.size()), answers.get(i).get(), 0.0f);
      pool.shutdown();
    }
  }

  @Test
  public void packagePathsWithAnyCharactersOpen() throws IOException {
    // Strings cross JNI as UTF-8, not "modified UTF-8": a path outside the BMP must survive.
    Path root = Paths.get(property("dermcds.work"), "läsion-模型-\uD83E\uDE7A");
    Path copy = root.resolve("tiny").resolve("1");
    Files.createDirectories(copy);
    try (Stream<Path> files = Files.list(Paths.get(tinyPackage("tiny")))) {
      for (Path file : (Iterable<Path>) files::iterator) {
        Files.copy(file, copy.resolve(file.getFileName()), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    try (Classifier classifier = Classifier.open(root.resolve("tiny").toString())) {
      assertEquals("tiny", classifier.modelName());
    }
    expectStatus(Status.NOT_FOUND, "模型", () -> Classifier.open(root.resolve("absent").toString()));
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private interface Call {
    Object run() throws Exception;
  }

  private static void expectStatus(Status status, String messagePart, Call call) {
    try {
      call.run();
      fail("expected " + status);
    } catch (DermCdsException e) {
      assertEquals(e.getMessage(), status, e.status());
      assertTrue(e.getMessage(), e.getMessage().contains(messagePart));
    } catch (Exception e) {
      throw new AssertionError("expected DermCdsException " + status + ", got " + e, e);
    }
  }

  private static void assertDifferBetweenImages(List<float[]> results, double minimumSpread) {
    double spread = 0;
    for (float[] p : results) {
      for (int c = 0; c < p.length; ++c) spread = Math.max(spread, Math.abs(p[c] - results.get(0)[c]));
    }
    assertTrue("the model answers the same for every image (spread " + spread + ")", spread > minimumSpread);
  }

  /** The highest-numbered version directory of a model (run make models if there is none). */
  private static Path newestVersion(Path model) throws IOException {
    assertTrue(model + " is missing: run make models", Files.isDirectory(model));
    try (Stream<Path> entries = Files.list(model)) {
      return entries.filter(p -> p.getFileName().toString().matches("[0-9]+") && Files.exists(p.resolve("manifest.json")))
          .max((a, b) -> Long.compare(Long.parseLong(a.getFileName().toString()), Long.parseLong(b.getFileName().toString())))
          .orElseThrow(() -> new AssertionError(model + " has no version: run make models"));
    }
  }

  private static final Pattern PROBABILITY = Pattern.compile("\"probability\":\\s*([-0-9.eE+]+)");

  /** The probabilities `dermcds classify --json` prints (7 decimals, docs/result.md). */
  private static double[] cliProbabilities(Path model, Path image) throws IOException, InterruptedException {
    Process process = new ProcessBuilder(property("dermcds.cli"), "classify", "--model", model.toString(), "--runtime", "tflite",
        "--precision", "int8", "--json", image.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String json;
    try (InputStream out = process.getInputStream()) {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      out.transferTo(bytes);
      json = bytes.toString(StandardCharsets.UTF_8);
    }
    assertEquals("dermcds classify failed", 0, process.waitFor());
    String block = json.substring(json.indexOf("\"probabilities\""), json.indexOf("\"top1\""));
    List<Double> values = new ArrayList<>();
    Matcher m = PROBABILITY.matcher(block);
    while (m.find()) values.add(Double.parseDouble(m.group(1)));
    assertNotEquals(0, values.size());
    return values.stream().mapToDouble(Double::doubleValue).toArray();
  }

  /** Probabilities as the JSON document rounds them, to compare with the CLI's text. */
  private static double[] rounded(float[] probabilities) {
    double[] out = new double[probabilities.length];
    for (int i = 0; i < out.length; ++i) out[i] = Math.round(probabilities[i] * 1e7) / 1e7;
    return out;
  }
}
