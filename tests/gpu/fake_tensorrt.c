/* A stand-in for libnvinfer's version entry points. Built with FAKE_TENSORRT_8 it answers as
 * TensorRT 8.6.1 does (only getInferLibVersion, encoded major*1000 + minor*100 + patch);
 * otherwise as TensorRT 10.3.0 (getInferLibVersion encoded (major*100 + minor)*100 + patch, and
 * the separate major/minor/patch functions TensorRT 10 added). */
#include <stdint.h>

#ifdef FAKE_TENSORRT_8
int32_t getInferLibVersion(void) { return 8601; }
#else
int32_t getInferLibVersion(void) { return 100300; }
int32_t getInferLibMajorVersion(void) { return 10; }
int32_t getInferLibMinorVersion(void) { return 3; }
int32_t getInferLibPatchVersion(void) { return 0; }
#endif
