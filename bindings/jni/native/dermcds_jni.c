/* JNI glue for org.dermcds.Classifier, over the C API only (include/dermcds/dermcds.h): the same
 * code runs in a desktop JVM and in an Android app (built with the NDK, docs/android.md).
 *
 * Every failure becomes an org.dermcds.DermCdsException carrying the C status and message; no
 * native call returns with an error unreported. Classes and method IDs are looked up once in
 * JNI_OnLoad, on the thread that loads the library, which on Android is the one whose class
 * loader can see the app's classes. Strings cross as real UTF-8 (String.getBytes / new String),
 * not JNI's "modified UTF-8", so file paths with any characters survive. */
#include <jni.h>
#include <stdlib.h>
#include <string.h>

#include "dermcds/dermcds.h"
#include "org_dermcds_Classifier.h"

static jclass string_class;
static jclass exception_class;
static jclass result_class;
static jmethodID exception_init;
static jmethodID result_init;
static jmethodID string_from_bytes; /* String(byte[], String charsetName) */
static jmethodID string_get_bytes;  /* byte[] String.getBytes(String charsetName) */
static jstring utf8_name;           /* "UTF-8", a global reference */

#define RESULT_SIGNATURE                                                                             \
  "(Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;"      \
  "Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/String;[FILjava/lang/String;[Ljava/lang/String;" \
  "Ljava/lang/String;Ljava/lang/String;[Ljava/lang/String;[D[D[Ljava/lang/String;)V"

static jclass global_class(JNIEnv* env, const char* name) {
  jclass local = (*env)->FindClass(env, name);
  if (!local) return NULL;
  jclass global = (*env)->NewGlobalRef(env, local);
  (*env)->DeleteLocalRef(env, local);
  return global;
}

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void* reserved) {
  (void)reserved;
  JNIEnv* env = NULL;
  if ((*vm)->GetEnv(vm, (void**)&env, JNI_VERSION_1_6) != JNI_OK) return JNI_ERR;
  if (dermcds_abi_version() != DERMCDS_ABI_VERSION) return JNI_ERR; /* libdermcds.so from another release */
  string_class = global_class(env, "java/lang/String");
  exception_class = global_class(env, "org/dermcds/DermCdsException");
  result_class = global_class(env, "org/dermcds/ClassificationResult");
  if (!string_class || !exception_class || !result_class) return JNI_ERR;
  exception_init = (*env)->GetMethodID(env, exception_class, "<init>", "(ILjava/lang/String;)V");
  result_init = (*env)->GetMethodID(env, result_class, "<init>", RESULT_SIGNATURE);
  string_from_bytes = (*env)->GetMethodID(env, string_class, "<init>", "([BLjava/lang/String;)V");
  string_get_bytes = (*env)->GetMethodID(env, string_class, "getBytes", "(Ljava/lang/String;)[B");
  if (!exception_init || !result_init || !string_from_bytes || !string_get_bytes) return JNI_ERR;
  jstring name = (*env)->NewStringUTF(env, "UTF-8");
  if (!name) return JNI_ERR;
  utf8_name = (*env)->NewGlobalRef(env, name);
  (*env)->DeleteLocalRef(env, name);
  return JNI_VERSION_1_6;
}

/* ---- strings --------------------------------------------------------------------------------- */

/* A Java string from UTF-8; NULL (with an exception pending) if the JVM is out of memory. */
static jstring to_java(JNIEnv* env, const char* utf8) {
  if (!utf8) utf8 = "";
  const jsize length = (jsize)strlen(utf8);
  jbyteArray bytes = (*env)->NewByteArray(env, length);
  if (!bytes) return NULL;
  (*env)->SetByteArrayRegion(env, bytes, 0, length, (const jbyte*)utf8);
  jstring text = (*env)->NewObject(env, string_class, string_from_bytes, bytes, utf8_name);
  (*env)->DeleteLocalRef(env, bytes);
  return text;
}

/* A NUL-terminated UTF-8 copy of a Java string, to free(); NULL with an exception pending. */
static char* from_java(JNIEnv* env, jstring text) {
  if (!text) {
    jclass npe = (*env)->FindClass(env, "java/lang/NullPointerException");
    if (npe) (*env)->ThrowNew(env, npe, "a string argument is null");
    return NULL;
  }
  jbyteArray bytes = (*env)->CallObjectMethod(env, text, string_get_bytes, utf8_name);
  if (!bytes) return NULL;
  const jsize length = (*env)->GetArrayLength(env, bytes);
  char* copy = malloc((size_t)length + 1);
  if (copy) {
    (*env)->GetByteArrayRegion(env, bytes, 0, length, (jbyte*)copy);
    copy[length] = '\0';
  } else {
    jclass oom = (*env)->FindClass(env, "java/lang/OutOfMemoryError");
    if (oom) (*env)->ThrowNew(env, oom, "copying a string for derm-cds");
  }
  (*env)->DeleteLocalRef(env, bytes);
  return copy;
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* Throws DermCdsException for a failed status (unless an exception is already pending). */
static void throw_status(JNIEnv* env, dermcds_status status) {
  if ((*env)->ExceptionCheck(env)) return;
  jstring message = to_java(env, dermcds_last_error_message());
  if (!message) return;
  jobject exception = (*env)->NewObject(env, exception_class, exception_init, (jint)status, message);
  if (exception) (*env)->Throw(env, exception);
}

/* ---- results --------------------------------------------------------------------------------- */

typedef const char* (*indexed_text)(const dermcds_result*, size_t);

static jobjectArray text_array(JNIEnv* env, const dermcds_result* result, size_t count, indexed_text text) {
  jobjectArray array = (*env)->NewObjectArray(env, (jsize)count, string_class, NULL);
  for (size_t i = 0; array && i < count; ++i) {
    jstring element = to_java(env, text(result, i));
    if (!element) return NULL;
    (*env)->SetObjectArrayElement(env, array, (jsize)i, element);
    (*env)->DeleteLocalRef(env, element);
  }
  return array;
}

/* An org.dermcds.ClassificationResult holding copies of everything in `result`. */
static jobject to_java_result(JNIEnv* env, const dermcds_result* result) {
  if ((*env)->PushLocalFrame(env, 32) != 0) return NULL;
  const size_t classes = dermcds_result_class_count(result);
  jfloatArray probabilities = (*env)->NewFloatArray(env, (jsize)classes);
  if (probabilities) (*env)->SetFloatArrayRegion(env, probabilities, 0, (jsize)classes, dermcds_result_probabilities(result));
  jstring model_name = to_java(env, dermcds_result_model_name(result));
  jstring model_version = to_java(env, dermcds_result_model_version(result));
  jstring runtime = to_java(env, dermcds_result_runtime(result));
  jstring runtime_version = to_java(env, dermcds_result_runtime_version(result));
  jstring provider = to_java(env, dermcds_result_provider(result));
  jstring precision = to_java(env, dermcds_result_precision(result));
  jobjectArray codes = text_array(env, result, classes, dermcds_result_class_code);
  jobjectArray names = text_array(env, result, classes, dermcds_result_class_name);
  jstring tier = to_java(env, dermcds_result_triage_tier(result));
  jobjectArray fallbacks = text_array(env, result, dermcds_result_fallback_count(result), dermcds_result_fallback);
  jstring json = to_java(env, dermcds_result_json(result));
  jstring status = to_java(env, dermcds_result_assessment_status(result));
  const size_t reasons = dermcds_result_reason_count(result);
  jobjectArray reason_codes = text_array(env, result, reasons, dermcds_result_reason_code);
  jobjectArray reason_messages = text_array(env, result, reasons, dermcds_result_reason_message);
  jdoubleArray reason_scores = (*env)->NewDoubleArray(env, (jsize)reasons);
  jdoubleArray reason_thresholds = (*env)->NewDoubleArray(env, (jsize)reasons);
  for (size_t i = 0; reason_scores && reason_thresholds && i < reasons; ++i) {
    const jdouble score = dermcds_result_reason_score(result, i), threshold = dermcds_result_reason_threshold(result, i);
    (*env)->SetDoubleArrayRegion(env, reason_scores, (jsize)i, 1, &score);
    (*env)->SetDoubleArrayRegion(env, reason_thresholds, (jsize)i, 1, &threshold);
  }
  jobject object = NULL;
  if (!(*env)->ExceptionCheck(env)) {
    object = (*env)->NewObject(env, result_class, result_init, model_name, model_version, runtime, runtime_version, provider, precision,
                               codes, names, probabilities, (jint)dermcds_result_top1(result), tier, fallbacks, json, status, reason_codes,
                               reason_scores, reason_thresholds, reason_messages);
  }
  return (*env)->PopLocalFrame(env, object);
}

/* Converts and frees `result`; throws for a failed `status`. */
static jobject finish(JNIEnv* env, dermcds_status status, dermcds_result* result) {
  if (status != DERMCDS_OK) {
    throw_status(env, status);
    return NULL;
  }
  jobject object = to_java_result(env, result);
  dermcds_result_free(result);
  return object;
}

/* ---- natives --------------------------------------------------------------------------------- */

/* Applies one string setting; false (with an exception pending) if it failed. */
static int set_text(JNIEnv* env, dermcds_options* options, jstring value, dermcds_status (*setter)(dermcds_options*, const char*)) {
  char* text = from_java(env, value);
  if (!text) return 0;
  const dermcds_status status = setter(options, text);
  free(text);
  if (status != DERMCDS_OK) throw_status(env, status);
  return status == DERMCDS_OK;
}

static int set_provider_options(JNIEnv* env, dermcds_options* options, jobjectArray keys, jobjectArray values) {
  const jsize count = keys ? (*env)->GetArrayLength(env, keys) : 0;
  for (jsize i = 0; i < count; ++i) {
    char* key = from_java(env, (*env)->GetObjectArrayElement(env, keys, i));
    char* value = key ? from_java(env, (*env)->GetObjectArrayElement(env, values, i)) : NULL;
    dermcds_status status = DERMCDS_OK;
    if (key && value) status = dermcds_options_set_provider_option(options, key, value);
    free(key);
    free(value);
    if ((*env)->ExceptionCheck(env)) return 0;
    if (status != DERMCDS_OK) {
      throw_status(env, status);
      return 0;
    }
  }
  return 1;
}

JNIEXPORT jlong JNICALL Java_org_dermcds_Classifier_nativeOpen(JNIEnv* env, jclass cls, jstring package_dir, jstring runtime,
                                                               jstring precision, jstring provider, jint threads, jint device_id,
                                                               jlong max_pixels, jobjectArray option_keys, jobjectArray option_values) {
  (void)cls;
  dermcds_options* options = NULL;
  dermcds_status status = dermcds_options_create(&options);
  if (status != DERMCDS_OK) {
    throw_status(env, status);
    return 0;
  }
  dermcds_classifier* classifier = NULL;
  int ok = set_text(env, options, runtime, dermcds_options_set_runtime) &&
           set_text(env, options, precision, dermcds_options_set_precision) &&
           set_text(env, options, provider, dermcds_options_set_provider) && set_provider_options(env, options, option_keys, option_values);
  if (ok && (status = dermcds_options_set_threads(options, threads)) != DERMCDS_OK) ok = 0;
  if (ok && (status = dermcds_options_set_device_id(options, device_id)) != DERMCDS_OK) ok = 0;
  if (ok && max_pixels > 0 && (status = dermcds_options_set_max_pixels(options, (uint64_t)max_pixels)) != DERMCDS_OK) ok = 0;
  if (ok) {
    char* dir = from_java(env, package_dir);
    if (dir) {
      status = dermcds_classifier_open(dir, options, &classifier);
      free(dir);
      if (status != DERMCDS_OK) ok = 0;
    } else {
      ok = 0;
    }
  }
  if (!ok) throw_status(env, status);
  dermcds_options_free(options);
  return (jlong)(intptr_t)classifier;
}

JNIEXPORT void JNICALL Java_org_dermcds_Classifier_nativeClose(JNIEnv* env, jclass cls, jlong handle) {
  (void)env;
  (void)cls;
  dermcds_classifier_free((dermcds_classifier*)(intptr_t)handle);
}

JNIEXPORT jstring JNICALL Java_org_dermcds_Classifier_nativeDescribe(JNIEnv* env, jclass cls, jlong handle, jint what) {
  (void)cls;
  const dermcds_classifier* classifier = (const dermcds_classifier*)(intptr_t)handle;
  switch (what) {
    case 0:
      return to_java(env, dermcds_classifier_model_name(classifier));
    case 1:
      return to_java(env, dermcds_classifier_model_version(classifier));
    case 2:
      return to_java(env, dermcds_classifier_runtime(classifier));
    case 3:
      return to_java(env, dermcds_classifier_provider(classifier));
    case 4:
      return to_java(env, dermcds_classifier_precision(classifier));
    default:
      return NULL;
  }
}

JNIEXPORT jobject JNICALL Java_org_dermcds_Classifier_nativeClassifyEncoded(JNIEnv* env, jclass cls, jlong handle, jbyteArray encoded) {
  (void)cls;
  const jsize size = (*env)->GetArrayLength(env, encoded);
  jbyte* bytes = (*env)->GetByteArrayElements(env, encoded, NULL);
  if (!bytes) return NULL;
  dermcds_result* result = NULL;
  const dermcds_status status = dermcds_classify_encoded((const dermcds_classifier*)(intptr_t)handle, bytes, (size_t)size, &result);
  (*env)->ReleaseByteArrayElements(env, encoded, bytes, JNI_ABORT); /* read only: nothing to copy back */
  return finish(env, status, result);
}

JNIEXPORT jobject JNICALL Java_org_dermcds_Classifier_nativeClassifyRgb(JNIEnv* env, jclass cls, jlong handle, jbyteArray rgb, jint width,
                                                                        jint height, jint row_stride) {
  (void)cls;
  jbyte* pixels = (*env)->GetByteArrayElements(env, rgb, NULL);
  if (!pixels) return NULL;
  dermcds_result* result = NULL;
  const dermcds_status status =
      dermcds_classify_rgb((const dermcds_classifier*)(intptr_t)handle, (const uint8_t*)pixels, width, height, (size_t)row_stride, &result);
  (*env)->ReleaseByteArrayElements(env, rgb, pixels, JNI_ABORT);
  return finish(env, status, result);
}
