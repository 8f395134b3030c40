/* A stand-in for the CUDA driver (libcuda.so.1) with the entry points gpu_probe.cpp uses, so the
 * probe and the engine-cache key can be tested on machines without a GPU. It reports one device,
 * named like a Jetson's integrated GPU, with compute capability 8.7. Built with
 * FAKE_CUDA_NO_DEVICE, cuInit fails as it does on a machine whose driver finds no GPU. */
#define FAKE_CUDA_ERROR_NO_DEVICE 100
#define FAKE_CUDA_ERROR_INVALID_DEVICE 101

static const char kDeviceName[] = "NVIDIA Jetson AGX Orin (fake)";

int cuInit(unsigned int flags) {
  (void)flags;
#ifdef FAKE_CUDA_NO_DEVICE
  return FAKE_CUDA_ERROR_NO_DEVICE;
#else
  return 0;
#endif
}

int cuDeviceGetCount(int* count) {
  *count = 1;
  return 0;
}

int cuDeviceGet(int* device, int ordinal) {
  if (ordinal != 0) return FAKE_CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return 0;
}

int cuDeviceGetName(char* name, int length, int device) {
  if (device != 0) return FAKE_CUDA_ERROR_INVALID_DEVICE;
  int i = 0;
  for (; i + 1 < length && kDeviceName[i]; ++i) name[i] = kDeviceName[i];
  name[i] = '\0';
  return 0;
}

int cuDeviceGetAttribute(int* value, int attribute, int device) {
  if (device != 0) return FAKE_CUDA_ERROR_INVALID_DEVICE;
  switch (attribute) {
    case 75:
      *value = 8;
      return 0; /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR */
    case 76:
      *value = 7;
      return 0; /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR */
    default:
      return 1; /* CUDA_ERROR_INVALID_VALUE */
  }
}

int cuGetErrorName(int error, const char** name) {
  switch (error) {
    case FAKE_CUDA_ERROR_NO_DEVICE:
      *name = "CUDA_ERROR_NO_DEVICE";
      return 0;
    case FAKE_CUDA_ERROR_INVALID_DEVICE:
      *name = "CUDA_ERROR_INVALID_DEVICE";
      return 0;
    default:
      return 1;
  }
}
