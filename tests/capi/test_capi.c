/* The C API, exercised from C (this file is compiled as C11, so dermcds.h is checked as C too).
 *
 * Classifies real photographs with the tiny ONNX package of tests/core and compares against the
 * numpy reference, through both encoded bytes and RGB buffers decoded by Pillow; checks every
 * error path returns its status and a message; runs classifiers from several threads.
 *
 * usage: test_capi CASE REPOSITORY REFERENCE
 *   REPOSITORY  the tiny packages' repository (tests/core/make_tiny_packages.py)
 *   REFERENCE   reference.txt written by make_c_reference.py
 * Exit status 0 when every check of CASE passed. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dermcds/dermcds.h"

#define CLASSES 8
#define MAX_REFERENCES 16

static int failures = 0;
static const char* repository = NULL;
static const char* reference_path = NULL;

#define CHECK(condition)                                                            \
  do {                                                                              \
    if (!(condition)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

/* Checks a call's status, printing the library's message when it is not the expected one. */
#define CHECK_STATUS(call, expected)                                                                                        \
  do {                                                                                                                      \
    dermcds_status status_ = (call);                                                                                        \
    if (status_ != (expected)) {                                                                                            \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, #call, dermcds_status_name(status_), \
              dermcds_status_name(expected), dermcds_last_error_message());                                                 \
      ++failures;                                                                                                           \
    }                                                                                                                       \
  } while (0)

#define CHECK_CONTAINS(text, part)                                                                                  \
  do {                                                                                                              \
    const char* text_ = (text);                                                                                     \
    if (!text_ || !strstr(text_, (part))) {                                                                         \
      fprintf(stderr, "%s:%d: '%s' does not contain '%s'\n", __FILE__, __LINE__, text_ ? text_ : "(null)", (part)); \
      ++failures;                                                                                                   \
    }                                                                                                               \
  } while (0)

/* ---- reference data ------------------------------------------------------------------------ */

typedef struct reference {
  char kind[16]; /* "encoded" or "rgb" */
  char path[1024];
  int width, height; /* rgb only */
  double probabilities[CLASSES];
} reference;

static int read_references(reference* out, int capacity) {
  FILE* file = fopen(reference_path, "r");
  if (!file) {
    fprintf(stderr, "cannot open %s\n", reference_path);
    exit(2);
  }
  int count = 0;
  while (count < capacity) {
    reference* r = &out[count];
    if (fscanf(file, "%15s %1023s", r->kind, r->path) != 2) break;
    r->width = r->height = 0;
    if (strcmp(r->kind, "rgb") == 0 && fscanf(file, "%d %d", &r->width, &r->height) != 2) break;
    int read = 0;
    for (int c = 0; c < CLASSES; ++c) read += fscanf(file, "%lf", &r->probabilities[c]);
    if (read != CLASSES) break;
    ++count;
  }
  fclose(file);
  return count;
}

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* file = fopen(path, "rb");
  if (!file) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  fseek(file, 0, SEEK_END);
  const long length = ftell(file);
  fseek(file, 0, SEEK_SET);
  unsigned char* bytes = malloc((size_t)length > 0 ? (size_t)length : 1);
  *size = fread(bytes, 1, (size_t)length, file);
  fclose(file);
  return bytes;
}

static char* package(const char* name) {
  static char paths[4][1200];
  static int next = 0;
  char* path = paths[next++ % 4];
  snprintf(path, sizeof paths[0], "%s/%s/1", repository, name);
  return path;
}

static dermcds_classifier* open_tiny(const dermcds_options* options) {
  dermcds_classifier* classifier = NULL;
  CHECK_STATUS(dermcds_classifier_open(package("tiny"), options, &classifier), DERMCDS_OK);
  if (!classifier) exit(1);
  return classifier;
}

static double worst_difference(const dermcds_result* result, const double* expected) {
  double worst = 0;
  for (int c = 0; c < CLASSES; ++c) {
    const double d = fabs((double)dermcds_result_probability(result, (size_t)c) - expected[c]);
    if (d > worst) worst = d;
  }
  return worst;
}

static dermcds_result* classify_reference(const dermcds_classifier* classifier, const reference* r) {
  size_t size = 0;
  unsigned char* bytes = read_file(r->path, &size);
  dermcds_result* result = NULL;
  if (strcmp(r->kind, "rgb") == 0) {
    CHECK(size == (size_t)r->width * (size_t)r->height * 3);
    CHECK_STATUS(dermcds_classify_rgb(classifier, bytes, r->width, r->height, (size_t)r->width * 3, &result), DERMCDS_OK);
  } else {
    CHECK_STATUS(dermcds_classify_encoded(classifier, bytes, size, &result), DERMCDS_OK);
  }
  free(bytes);
  return result;
}

/* ---- cases ---------------------------------------------------------------------------------- */

static void test_versions_and_status_names(void) {
  CHECK(dermcds_abi_version() == DERMCDS_ABI_VERSION);
  CHECK(strcmp(dermcds_version(), "") != 0);
  CHECK(strcmp(dermcds_status_name(DERMCDS_OK), "ok") == 0);
  CHECK(strcmp(dermcds_status_name(DERMCDS_INVALID_IMAGE), "invalid_image") == 0);
  CHECK(strcmp(dermcds_status_name(DERMCDS_NOT_FOUND), "not_found") == 0);
  CHECK(strcmp(dermcds_status_name(DERMCDS_RUNTIME_UNAVAILABLE), "runtime_unavailable") == 0);
  CHECK(strcmp(dermcds_status_name(DERMCDS_OUT_OF_MEMORY), "out_of_memory") == 0);
  CHECK(strcmp(dermcds_status_name((dermcds_status)999), "unknown") == 0);
}

static void test_encoded_images_match_reference(void) {
  reference references[MAX_REFERENCES];
  const int count = read_references(references, MAX_REFERENCES);
  CHECK(count >= 4);
  dermcds_classifier* classifier = open_tiny(NULL);
  CHECK(strcmp(dermcds_classifier_model_name(classifier), "tiny") == 0);
  CHECK(strcmp(dermcds_classifier_runtime(classifier), "onnxruntime") == 0);

  float first[CLASSES];
  double spread = 0;
  int encoded = 0;
  for (int i = 0; i < count; ++i) {
    if (strcmp(references[i].kind, "encoded") != 0) continue;
    dermcds_result* result = classify_reference(classifier, &references[i]);
    if (!result) continue;
    CHECK(dermcds_result_class_count(result) == CLASSES);
    const double worst = worst_difference(result, references[i].probabilities);
    if (worst > 1e-4) fprintf(stderr, "%s: worst difference %g\n", references[i].path, worst);
    CHECK(worst <= 1e-4);

    const float* p = dermcds_result_probabilities(result);
    size_t best = 0;
    for (size_t c = 1; c < CLASSES; ++c)
      if (p[c] > p[best]) best = c;
    CHECK(dermcds_result_top1(result) == best);
    if (encoded++ == 0) memcpy(first, p, sizeof first);
    for (int c = 0; c < CLASSES; ++c)
      if (fabs((double)(p[c] - first[c])) > spread) spread = fabs((double)(p[c] - first[c]));

    CHECK(strcmp(dermcds_result_class_code(result, 0), "MEL") == 0);
    CHECK(strcmp(dermcds_result_class_name(result, 7), "Squamous cell carcinoma") == 0);
    CHECK(dermcds_result_class_code(result, CLASSES) == NULL);
    CHECK(dermcds_result_probability(result, CLASSES) == -1.0f);
    CHECK(strcmp(dermcds_result_model_name(result), "tiny") == 0);
    CHECK(strcmp(dermcds_result_model_version(result), "1") == 0);
    CHECK(strcmp(dermcds_result_runtime(result), "onnxruntime") == 0);
    CHECK(strncmp(dermcds_result_runtime_version(result), "1.30", 4) == 0);
    CHECK(strcmp(dermcds_result_provider(result), "cpu") == 0);
    CHECK(strcmp(dermcds_result_precision(result), "fp32") == 0);
    CHECK(dermcds_result_fallback_count(result) == 0);
    const char* tier = dermcds_result_triage_tier(result);
    CHECK(strcmp(tier, "urgent_referral") == 0 || strcmp(tier, "dermatology_review") == 0 || strcmp(tier, "routine") == 0);
    CHECK_CONTAINS(dermcds_result_json(result), "\"execution_provider\":\"cpu\"");
    CHECK_CONTAINS(dermcds_result_json(result), tier);
    dermcds_result_free(result);
  }
  CHECK(encoded >= 4);
  /* The reference only means something if the model answers differently for different images. */
  CHECK(spread > 0.1);
  dermcds_classifier_free(classifier);
}

static void test_rgb_buffers_match_reference(void) {
  reference references[MAX_REFERENCES];
  const int count = read_references(references, MAX_REFERENCES);
  dermcds_classifier* classifier = open_tiny(NULL);
  int rgb = 0;
  for (int i = 0; i < count; ++i) {
    const reference* r = &references[i];
    if (strcmp(r->kind, "rgb") != 0) continue;
    ++rgb;
    dermcds_result* packed = classify_reference(classifier, r);
    if (!packed) continue;
    CHECK(worst_difference(packed, r->probabilities) <= 1e-4);

    /* The same pixels with padded rows (as camera buffers have) give exactly the same answer. */
    size_t size = 0;
    unsigned char* pixels = read_file(r->path, &size);
    const size_t row = (size_t)r->width * 3, stride = row + 13;
    unsigned char* padded = calloc(stride * (size_t)r->height, 1);
    for (int y = 0; y < r->height; ++y) memcpy(padded + stride * (size_t)y, pixels + row * (size_t)y, row);
    dermcds_result* strided = NULL;
    CHECK_STATUS(dermcds_classify_rgb(classifier, padded, r->width, r->height, stride, &strided), DERMCDS_OK);
    if (strided) CHECK(memcmp(dermcds_result_probabilities(strided), dermcds_result_probabilities(packed), CLASSES * sizeof(float)) == 0);
    dermcds_result_free(strided);
    dermcds_result_free(packed);
    free(padded);
    free(pixels);
  }
  CHECK(rgb >= 2);
  dermcds_classifier_free(classifier);
}

static void test_errors_have_statuses_and_messages(void) {
  dermcds_classifier* classifier = (dermcds_classifier*)&failures; /* must be overwritten with NULL */
  CHECK_STATUS(dermcds_classifier_open("/nonexistent/model/1", NULL, &classifier), DERMCDS_NOT_FOUND);
  CHECK(classifier == NULL);
  CHECK_CONTAINS(dermcds_last_error_message(), "/nonexistent/model");
  CHECK_STATUS(dermcds_classifier_open(package("tiny-wrong-size"), NULL, &classifier), DERMCDS_MODEL_MISMATCH);
  CHECK_CONTAINS(dermcds_last_error_message(), "model.onnx");
  CHECK_STATUS(dermcds_classifier_open(NULL, NULL, &classifier), DERMCDS_INVALID_ARGUMENT);
  CHECK_CONTAINS(dermcds_last_error_message(), "package_dir is NULL");

  dermcds_options* options = NULL;
  CHECK_STATUS(dermcds_options_create(&options), DERMCDS_OK);
  CHECK_STATUS(dermcds_options_set_precision(options, "fp8"), DERMCDS_INVALID_ARGUMENT);
  CHECK_CONTAINS(dermcds_last_error_message(), "fp8");
  CHECK_STATUS(dermcds_options_set_threads(options, -1), DERMCDS_INVALID_ARGUMENT);
  CHECK_STATUS(dermcds_options_set_runtime(options, "coreml"), DERMCDS_OK); /* checked at open */
  CHECK_STATUS(dermcds_classifier_open(package("tiny"), options, &classifier), DERMCDS_RUNTIME_UNAVAILABLE);
  CHECK_CONTAINS(dermcds_last_error_message(), "coreml");
  CHECK_STATUS(dermcds_options_set_runtime(options, "auto"), DERMCDS_OK);
  CHECK_STATUS(dermcds_options_set_provider_option(options, "tensorrt:trt_fp16", "1"), DERMCDS_OK);
  CHECK_STATUS(dermcds_classifier_open(package("tiny"), options, &classifier), DERMCDS_INVALID_ARGUMENT);
  CHECK_CONTAINS(dermcds_last_error_message(), "tensorrt:trt_fp16");
  dermcds_options_free(options);

  CHECK_STATUS(dermcds_options_create(&options), DERMCDS_OK);
  CHECK_STATUS(dermcds_options_set_max_pixels(options, 1000), DERMCDS_OK);
  classifier = open_tiny(options);
  dermcds_options_free(options); /* the classifier keeps what it needs */

  dermcds_result* result = NULL;
  const char text[] = "hello, this is text";
  CHECK_STATUS(dermcds_classify_encoded(classifier, text, sizeof text - 1, &result), DERMCDS_UNSUPPORTED_FORMAT);
  CHECK(result == NULL);
  CHECK_STATUS(dermcds_classify_encoded(classifier, NULL, 0, &result), DERMCDS_INVALID_IMAGE);
  const unsigned char truncated_jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F'};
  CHECK_STATUS(dermcds_classify_encoded(classifier, truncated_jpeg, sizeof truncated_jpeg, &result), DERMCDS_INVALID_IMAGE);
  CHECK_STATUS(dermcds_classify_encoded(NULL, text, sizeof text, &result), DERMCDS_INVALID_ARGUMENT);
  CHECK_CONTAINS(dermcds_last_error_message(), "classifier is NULL");

  reference references[MAX_REFERENCES];
  read_references(references, MAX_REFERENCES);
  size_t size = 0;
  unsigned char* photo = read_file(references[0].path, &size);
  CHECK_STATUS(dermcds_classify_encoded(classifier, photo, size, &result), DERMCDS_IMAGE_TOO_LARGE);
  free(photo);

  unsigned char pixels[64 * 3 * 64] = {0};
  CHECK_STATUS(dermcds_classify_rgb(classifier, pixels, 40, 40, 40 * 3, &result), DERMCDS_IMAGE_TOO_LARGE);
  CHECK_STATUS(dermcds_classify_rgb(classifier, pixels, 20, 20, 20 * 3 - 1, &result), DERMCDS_INVALID_ARGUMENT);
  CHECK_CONTAINS(dermcds_last_error_message(), "stride");
  CHECK_STATUS(dermcds_classify_rgb(classifier, pixels, 0, 20, 60, &result), DERMCDS_INVALID_IMAGE);
  CHECK_STATUS(dermcds_classify_rgb(classifier, NULL, 20, 20, 60, &result), DERMCDS_INVALID_ARGUMENT);
  CHECK(result == NULL);
  dermcds_classifier_free(classifier);

  /* Releasing nothing is allowed. */
  dermcds_options_free(NULL);
  dermcds_classifier_free(NULL);
  dermcds_result_free(NULL);
  CHECK(dermcds_result_class_count(NULL) == 0);
  CHECK(dermcds_result_json(NULL) == NULL);
}

static void test_results_outlive_their_classifier(void) {
  reference references[MAX_REFERENCES];
  read_references(references, MAX_REFERENCES);
  dermcds_classifier* classifier = open_tiny(NULL);
  dermcds_result* result = classify_reference(classifier, &references[0]);
  dermcds_classifier_free(classifier);
  CHECK(result && worst_difference(result, references[0].probabilities) <= 1e-4);
  CHECK(result && strcmp(dermcds_result_model_name(result), "tiny") == 0);
  dermcds_result_free(result);
}

static void test_provider_fallback_is_reported(void) {
  dermcds_options* options = NULL;
  CHECK_STATUS(dermcds_options_create(&options), DERMCDS_OK);
  CHECK_STATUS(dermcds_options_set_provider(options, "tensorrt"), DERMCDS_OK);
  dermcds_classifier* classifier = open_tiny(options);
  dermcds_options_free(options);
  CHECK(strcmp(dermcds_classifier_provider(classifier), "cpu") == 0);

  reference references[MAX_REFERENCES];
  read_references(references, MAX_REFERENCES);
  dermcds_result* result = classify_reference(classifier, &references[0]);
  CHECK(result && strcmp(dermcds_result_provider(result), "cpu") == 0);
  CHECK(dermcds_result_fallback_count(result) == 2);
  CHECK(strncmp(dermcds_result_fallback(result, 0), "tensorrt: ", 10) == 0);
  CHECK(strncmp(dermcds_result_fallback(result, 1), "cuda: ", 6) == 0);
  CHECK(dermcds_result_fallback(result, 2) == NULL);
  CHECK(result && worst_difference(result, references[0].probabilities) <= 1e-4);
  dermcds_result_free(result);
  dermcds_classifier_free(classifier);
}

/* -- threads: one classifier shared by four threads, each also failing on purpose, must give the
 *    answers a single thread gets and keep its own last error. */
typedef struct worker {
  const dermcds_classifier* classifier;
  const reference* references;
  int count;
  int index;
  float probabilities[MAX_REFERENCES][CLASSES];
  int errors;
  char last_error[256];
} worker;

static void* work(void* argument) {
  worker* w = argument;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < w->count; ++i) {
      const reference* r = &w->references[(i + w->index) % w->count];
      if (strcmp(r->kind, "encoded") != 0) continue;
      size_t size = 0;
      unsigned char* bytes = read_file(r->path, &size);
      dermcds_result* result = NULL;
      if (dermcds_classify_encoded(w->classifier, bytes, size, &result) == DERMCDS_OK) {
        memcpy(w->probabilities[(i + w->index) % w->count], dermcds_result_probabilities(result), sizeof w->probabilities[0]);
        dermcds_result_free(result);
      } else {
        ++w->errors;
      }
      free(bytes);
    }
  }
  /* A failure of this thread's own, whose message must not leak into other threads: the
   * message quotes the first bytes, and the first byte is the thread's digit. */
  char junk[32];
  snprintf(junk, sizeof junk, "%d: junk from a thread", w->index);
  dermcds_result* result = NULL;
  dermcds_classify_encoded(w->classifier, junk, strlen(junk), &result);
  snprintf(w->last_error, sizeof w->last_error, "%s", dermcds_last_error_message());
  return NULL;
}

static void test_one_classifier_many_threads(void) {
  reference references[MAX_REFERENCES];
  const int count = read_references(references, MAX_REFERENCES);
  dermcds_classifier* classifier = open_tiny(NULL);
  float expected[MAX_REFERENCES][CLASSES];
  for (int i = 0; i < count; ++i) {
    if (strcmp(references[i].kind, "encoded") != 0) continue;
    dermcds_result* result = classify_reference(classifier, &references[i]);
    if (result) memcpy(expected[i], dermcds_result_probabilities(result), sizeof expected[i]);
    dermcds_result_free(result);
  }

  enum { kThreads = 4 };
  static worker workers[kThreads];
  pthread_t threads[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    workers[t] = (worker){.classifier = classifier, .references = references, .count = count, .index = t};
    CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0);
  }
  for (int t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
  for (int t = 0; t < kThreads; ++t) {
    CHECK(workers[t].errors == 0);
    for (int i = 0; i < count; ++i)
      if (strcmp(references[i].kind, "encoded") == 0) CHECK(memcmp(workers[t].probabilities[i], expected[i], sizeof expected[i]) == 0);
    char own[64];
    snprintf(own, sizeof own, "not a JPEG or PNG image (first bytes: %02x 3a", '0' + t);
    CHECK_CONTAINS(workers[t].last_error, own);
  }
  dermcds_classifier_free(classifier);
}

/* -- logging: warnings reach the app's callback, and stop when the level says so. */
typedef struct log_record {
  int warnings;
  char first[512];
} log_record;

static void record_log(dermcds_log_level level, const char* message, void* user_data) {
  log_record* record = user_data;
  if (level == DERMCDS_LOG_WARNING && record->warnings++ == 0) snprintf(record->first, sizeof record->first, "%s", message);
}

static void test_log_callback_receives_fallback_warnings(void) {
  log_record record = {0, ""};
  dermcds_set_log_callback(record_log, &record);
  dermcds_options* options = NULL;
  CHECK_STATUS(dermcds_options_create(&options), DERMCDS_OK);
  CHECK_STATUS(dermcds_options_set_provider(options, "cuda"), DERMCDS_OK);
  dermcds_classifier* classifier = open_tiny(options);
  CHECK(record.warnings >= 1);
  CHECK_CONTAINS(record.first, "cuda");
  dermcds_classifier_free(classifier);

  const int before = record.warnings;
  dermcds_set_log_level(DERMCDS_LOG_OFF);
  classifier = open_tiny(options);
  CHECK(record.warnings == before);
  dermcds_classifier_free(classifier);
  dermcds_options_free(options);
  dermcds_set_log_level(DERMCDS_LOG_WARNING);
  dermcds_set_log_callback(NULL, NULL);
}

typedef struct named_case {
  const char* name;
  void (*run)(void);
} named_case;

static const named_case cases[] = {
    {"versions_and_status_names", test_versions_and_status_names},
    {"encoded_images_match_reference", test_encoded_images_match_reference},
    {"rgb_buffers_match_reference", test_rgb_buffers_match_reference},
    {"errors_have_statuses_and_messages", test_errors_have_statuses_and_messages},
    {"results_outlive_their_classifier", test_results_outlive_their_classifier},
    {"provider_fallback_is_reported", test_provider_fallback_is_reported},
    {"one_classifier_many_threads", test_one_classifier_many_threads},
    {"log_callback_receives_fallback_warnings", test_log_callback_receives_fallback_warnings},
};

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s CASE REPOSITORY REFERENCE\ncases:", argv[0]);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) fprintf(stderr, " %s", cases[i].name);
    fprintf(stderr, "\n");
    return 2;
  }
  repository = argv[2];
  reference_path = argv[3];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    if (strcmp(cases[i].name, argv[1]) != 0) continue;
    cases[i].run();
    if (failures) fprintf(stderr, "%s: %d check(s) failed\n", argv[1], failures);
    return failures ? 1 : 0;
  }
  fprintf(stderr, "unknown case '%s'\n", argv[1]);
  return 2;
}
