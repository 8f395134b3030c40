/* derm-cds C API: classify skin-lesion photographs with a derm-cds model package, from C and from
 * anything that can call C (JNI on Android, Swift, Python's ctypes). The library is
 * libdermcds.so; docs/c-api.md has a walk-through, docs/result.md the meaning of every field.
 *
 * Conventions
 *
 *  Objects   Every object is an opaque handle created by a function of this API and released by
 *            its _free function: dermcds_options_free, dermcds_classifier_free,
 *            dermcds_result_free. Passing NULL to a _free function does nothing. Objects are
 *            independent: a result stays valid after its classifier is freed.
 *
 *  Errors    Functions that can fail return dermcds_status. DERMCDS_OK (0) means success; output
 *            parameters are written only on success (and set to NULL on failure).
 *            dermcds_last_error_message() then says what went wrong, naming the file, option or
 *            parameter at fault. Bad input (a corrupt image, a tampered package, a wrong option)
 *            is always a status, never a crash; no C++ exception crosses this API.
 *
 *  Strings   Input strings are NUL-terminated UTF-8 and copied before the call returns. Returned
 *            strings belong to the object they came from and stay valid until it is freed.
 *
 *  Threads   A classifier may be used by many threads at once; decoding and preprocessing run on
 *            each caller's thread, inference is serialized inside. An options object must not be
 *            modified by two threads at once. Results are immutable: any thread may read them.
 *            The last error message is per thread. The log callback may be called on any thread
 *            that is inside a call to this API, and must not call back into it.
 *
 *  Versions  DERMCDS_ABI_VERSION changes whenever a declaration here changes incompatibly; it is
 *            also the library's soname suffix (libdermcds.so.1). Compare it with
 *            dermcds_abi_version() at start-up when loading the library dynamically.
 */
#ifndef DERMCDS_DERMCDS_H_
#define DERMCDS_DERMCDS_H_

#include <stddef.h>
#include <stdint.h>

#if defined(DERMCDS_BUILDING_LIBRARY)
#define DERMCDS_API __attribute__((visibility("default")))
#else
#define DERMCDS_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define DERMCDS_ABI_VERSION 1

/* The opaque objects (see "Objects" above). */
typedef struct dermcds_options dermcds_options;
typedef struct dermcds_classifier dermcds_classifier;
typedef struct dermcds_result dermcds_result;

/* ---- status ---------------------------------------------------------------------------------- */

/* Stable numeric values: they are part of the ABI. */
typedef enum dermcds_status {
  DERMCDS_OK = 0,
  DERMCDS_INVALID_ARGUMENT = 1,    /* a parameter or option is wrong */
  DERMCDS_NOT_FOUND = 2,           /* a package, file, version or artifact does not exist */
  DERMCDS_UNSUPPORTED_FORMAT = 3,  /* bytes that are not a JPEG or PNG image */
  DERMCDS_INVALID_IMAGE = 4,       /* an image that is empty, truncated or corrupt */
  DERMCDS_IMAGE_TOO_LARGE = 5,     /* more pixels than the configured limit */
  DERMCDS_INVALID_PACKAGE = 6,     /* a package that is malformed, tampered with or incomplete */
  DERMCDS_MODEL_MISMATCH = 7,      /* a model whose inputs or outputs disagree with its manifest */
  DERMCDS_UNSUPPORTED_MODEL = 8,   /* an operator or attribute that is not supported */
  DERMCDS_RUNTIME_UNAVAILABLE = 9, /* no runtime of this build can run the package here */
  DERMCDS_RUNTIME_FAILURE = 10,    /* the inference runtime failed */
  DERMCDS_IO_ERROR = 11,           /* reading a file failed */
  DERMCDS_RESOURCE_EXHAUSTED = 12, /* a capacity limit was reached */
  DERMCDS_DEADLINE_EXCEEDED = 13,  /* a time limit passed */
  DERMCDS_INTERNAL = 14,           /* a bug in derm-cds */
  DERMCDS_OUT_OF_MEMORY = 15,      /* an allocation failed */
  DERMCDS_PERMISSION_DENIED = 16,  /* the operating system refused access to a file */
  DERMCDS_NO_SPACE = 17,           /* a write did not fit: disk full, quota or file size limit */
  DERMCDS_FAILED_PRECONDITION = 18 /* a package version that may not serve (no evidence, rejected) */
} dermcds_status;

/* "ok", "invalid_image", ...: the names derm-cds's JSON errors use. "unknown" for other values. */
DERMCDS_API const char* dermcds_status_name(dermcds_status status);

/* What the calling thread's last failed call reported ("" if none failed yet). */
DERMCDS_API const char* dermcds_last_error_message(void);

DERMCDS_API uint32_t dermcds_abi_version(void);
DERMCDS_API const char* dermcds_version(void); /* the derm-cds release, "0.1.0" */

/* ---- logging --------------------------------------------------------------------------------- */

typedef enum dermcds_log_level {
  DERMCDS_LOG_DEBUG = 0,
  DERMCDS_LOG_INFO = 1,
  DERMCDS_LOG_WARNING = 2,
  DERMCDS_LOG_ERROR = 3,
  DERMCDS_LOG_OFF = 4
} dermcds_log_level;

typedef void (*dermcds_log_callback)(dermcds_log_level level, const char* message, void* user_data);

/* By default warnings and errors (a GPU provider that fell back, say) go to stderr. A callback
 * receives them instead (an Android app forwards them to logcat); NULL restores stderr. */
DERMCDS_API void dermcds_set_log_level(dermcds_log_level level);
DERMCDS_API void dermcds_set_log_callback(dermcds_log_callback callback, void* user_data);

/* ---- options --------------------------------------------------------------------------------- */

/* How to run a model. Every setting has a default; a classifier can be opened without options. */

DERMCDS_API dermcds_status dermcds_options_create(dermcds_options** out);
DERMCDS_API void dermcds_options_free(dermcds_options* options);

/* "auto" (default) or a runtime of this build: "onnxruntime", "tflite". */
DERMCDS_API dermcds_status dermcds_options_set_runtime(dermcds_options* options, const char* runtime);
/* "auto" (default), "fp32", "fp16" or "int8": which artifact of the package to run. */
DERMCDS_API dermcds_status dermcds_options_set_precision(dermcds_options* options, const char* precision);
/* Execution provider, by runtime. onnxruntime: auto, cpu, cuda, tensorrt; tflite: auto, xnnpack,
 * builtin, nnapi. A provider that cannot run here falls back; results say so. */
DERMCDS_API dermcds_status dermcds_options_set_provider(dermcds_options* options, const char* provider);
/* Inference threads; 0 (default) lets the runtime choose. */
DERMCDS_API dermcds_status dermcds_options_set_threads(dermcds_options* options, int32_t threads);
/* GPU device for cuda/tensorrt; default 0. */
DERMCDS_API dermcds_status dermcds_options_set_device_id(dermcds_options* options, int32_t device_id);
/* A provider option "<provider>:<name>" (docs/edge.md), e.g. "tensorrt:trt_fp16_enable" = "1".
 * Checked when the classifier is opened. Setting a key again replaces its value. */
DERMCDS_API dermcds_status dermcds_options_set_provider_option(dermcds_options* options, const char* key, const char* value);
/* Images with more pixels than this are refused (DERMCDS_IMAGE_TOO_LARGE); default 64 million. */
DERMCDS_API dermcds_status dermcds_options_set_max_pixels(dermcds_options* options, uint64_t max_pixels);

/* ---- classifier ------------------------------------------------------------------------------ */

/* Opens a model package: a version directory <repository>/<name>/<version>, or a model directory
 * <repository>/<name> (its active version). The package is verified (every artifact's sha256)
 * before any of it is loaded. `options` may be NULL (all defaults); it is not kept. */
DERMCDS_API dermcds_status dermcds_classifier_open(const char* package_dir, const dermcds_options* options, dermcds_classifier** out);
DERMCDS_API void dermcds_classifier_free(dermcds_classifier* classifier);

/* What the classifier runs; the strings live as long as the classifier. */
DERMCDS_API const char* dermcds_classifier_model_name(const dermcds_classifier* classifier);
DERMCDS_API const char* dermcds_classifier_model_version(const dermcds_classifier* classifier);
DERMCDS_API const char* dermcds_classifier_runtime(const dermcds_classifier* classifier);
DERMCDS_API const char* dermcds_classifier_provider(const dermcds_classifier* classifier);
DERMCDS_API const char* dermcds_classifier_precision(const dermcds_classifier* classifier);

/* Classifies an encoded JPEG or PNG photograph (EXIF orientation applied). */
DERMCDS_API dermcds_status dermcds_classify_encoded(const dermcds_classifier* classifier, const void* bytes, size_t size,
                                                    dermcds_result** out);

/* Classifies 8-bit RGB pixels: `height` rows of `width` R,G,B triples, each row starting
 * `row_stride` bytes after the previous one (row_stride >= 3 * width). For camera frames an app
 * has already decoded; the pixels are used as they are (no EXIF orientation). */
DERMCDS_API dermcds_status dermcds_classify_rgb(const dermcds_classifier* classifier, const uint8_t* pixels, int32_t width, int32_t height,
                                                size_t row_stride, dermcds_result** out);

/* ---- result ---------------------------------------------------------------------------------- */

DERMCDS_API void dermcds_result_free(dermcds_result* result);

/* Classes in the package's label order. Index-taking functions return NULL (strings) or -1
 * (probability) for an index >= dermcds_result_class_count(). */
DERMCDS_API size_t dermcds_result_class_count(const dermcds_result* result);
DERMCDS_API const char* dermcds_result_class_code(const dermcds_result* result, size_t index); /* "MEL" */
DERMCDS_API const char* dermcds_result_class_name(const dermcds_result* result, size_t index); /* "Melanoma" */
DERMCDS_API float dermcds_result_probability(const dermcds_result* result, size_t index);
/* All class_count probabilities at once. */
DERMCDS_API const float* dermcds_result_probabilities(const dermcds_result* result);
/* Index of the most probable class. */
DERMCDS_API size_t dermcds_result_top1(const dermcds_result* result);
/* The triage tier the package's policy assigns: "urgent_referral", "dermatology_review", "routine". */
DERMCDS_API const char* dermcds_result_triage_tier(const dermcds_result* result);

/* Exactly what produced the result. */
DERMCDS_API const char* dermcds_result_model_name(const dermcds_result* result);
DERMCDS_API const char* dermcds_result_model_version(const dermcds_result* result);
DERMCDS_API const char* dermcds_result_runtime(const dermcds_result* result);         /* "tflite" */
DERMCDS_API const char* dermcds_result_runtime_version(const dermcds_result* result); /* "2.9.0" */
DERMCDS_API const char* dermcds_result_provider(const dermcds_result* result);        /* "xnnpack" */
DERMCDS_API const char* dermcds_result_precision(const dermcds_result* result);       /* "int8" */
/* Providers that were asked for but could not run, each "<provider>: <why>". */
DERMCDS_API size_t dermcds_result_fallback_count(const dermcds_result* result);
DERMCDS_API const char* dermcds_result_fallback(const dermcds_result* result, size_t index);

/* Whether the image can be assessed at all (docs/safety.md): 1 "assessable", 0 "not_assessable"
 * (the photograph failed a quality check or does not look like a skin lesion). When 0, the triage
 * tier reads "not assessable: retake the photograph" and no tier is suggested. Added in 0.2.0,
 * without changing DERMCDS_ABI_VERSION (additive). */
DERMCDS_API int dermcds_result_assessable(const dermcds_result* result);
/* "assessable" or "not_assessable". */
DERMCDS_API const char* dermcds_result_assessment_status(const dermcds_result* result);
/* Why the image is not assessable, one reason per failed check, in the order of docs/safety.md.
 * Index-taking functions return NULL (strings) or NaN (numbers) for index >= reason_count. */
DERMCDS_API size_t dermcds_result_reason_count(const dermcds_result* result);
DERMCDS_API const char* dermcds_result_reason_code(const dermcds_result* result, size_t index); /* "blurred" */
DERMCDS_API double dermcds_result_reason_score(const dermcds_result* result, size_t index);
DERMCDS_API double dermcds_result_reason_threshold(const dermcds_result* result, size_t index);
DERMCDS_API const char* dermcds_result_reason_message(const dermcds_result* result, size_t index);
/* The model's out-of-distribution score; NaN for a package without the guard. */
DERMCDS_API double dermcds_result_ood_score(const dermcds_result* result);

/* The whole result as the JSON document of docs/result.md (timings included). */
DERMCDS_API const char* dermcds_result_json(const dermcds_result* result);

#ifdef __cplusplus
}
#endif

#endif /* DERMCDS_DERMCDS_H_ */
