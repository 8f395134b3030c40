/* Stands in for ONNX Runtime's provider libraries (libonnxruntime_providers_shared.so,
 * ..._tensorrt.so, ..._cuda.so) the way a broken or mismatched installation does: the file is
 * there, but it lacks the entry points ONNX Runtime looks up, so loading the provider fails
 * inside ONNX Runtime with its own error message. */
int dermcds_fake_provider_library(void) { return 0; }
